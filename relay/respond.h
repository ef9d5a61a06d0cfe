/* respond.h: building responses: security headers, JSON bodies and errors, HTML, redirects */
#ifndef RELAY_RESPOND_H
#define RELAY_RESPOND_H

#include <h2o.h>

/* every response carries the security headers of protocol.md and a Content-Length; every argument is borrowed for the
 * call only (bodies are copied by h2o_send_inline) */
void relay_respond_json(h2o_req_t *req, int status, const char *reason, const char *json, size_t len);
/* {"error": code, "error_description": description} (fixed texts of ours); retry_after > 0 adds Retry-After */
void relay_respond_error(h2o_req_t *req, int status, const char *reason, const char *code, const char *description,
                         int retry_after);
void relay_respond_html(h2o_req_t *req, int status, const char *reason, const char *html, size_t len);
/* the same with its own Content-Security-Policy (the two pages of protocol 1.1 that need another one) */
void relay_respond_html_csp(h2o_req_t *req, int status, const char *html, size_t len, const char *csp);
void relay_respond_redirect(h2o_req_t *req, const char *location, size_t len);
/* the headers every response gets; is_html adds the default Content-Security-Policy and Cross-Origin-Opener-Policy */
void relay_add_security_headers(h2o_req_t *req, int is_html);
const char *relay_status_reason(int status);
/* 1 if the request's Content-Type is the media type given (parameters such as charset allowed) */
int relay_content_type_is(h2o_req_t *req, const char *type);

#endif
