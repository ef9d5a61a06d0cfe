/* respond.c: building responses: security headers, JSON bodies and errors, HTML pages, redirects */
#include <stdio.h>
#include <string.h>
#include "respond.h"

#define CSP "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

static void add_page_headers(h2o_req_t *req, const char *csp, size_t csplen)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("content-security-policy"), 0, NULL, csp, csplen);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("cross-origin-opener-policy"), 0, NULL,
                          H2O_STRLIT("same-origin"));
}

const char *relay_status_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 303:
        return "See Other";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 413:
        return "Payload Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

int relay_content_type_is(h2o_req_t *req, const char *type)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (i == -1)
        return 0;
    h2o_iovec_t v = req->headers.entries[i].value;
    size_t n = strlen(type), end = 0;
    while (end != v.len && v.base[end] != ';' && v.base[end] != ' ' && v.base[end] != '\t')
        ++end;
    return end == n && h2o_lcstris(v.base, end, type, n);
}

void relay_add_security_headers(h2o_req_t *req, int is_html)
{
    h2o_headers_t *h = &req->res.headers;
    h2o_add_header(&req->pool, h, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_add_header_by_str(&req->pool, h, H2O_STRLIT("referrer-policy"), 0, NULL, H2O_STRLIT("no-referrer"));
    h2o_add_header_by_str(&req->pool, h, H2O_STRLIT("x-content-type-options"), 0, NULL, H2O_STRLIT("nosniff"));
    h2o_add_header_by_str(&req->pool, h, H2O_STRLIT("x-frame-options"), 0, NULL, H2O_STRLIT("DENY"));
    if (req->scheme == &H2O_URL_SCHEME_HTTPS)
        h2o_add_header(&req->pool, h, H2O_TOKEN_STRICT_TRANSPORT_SECURITY, NULL, H2O_STRLIT("max-age=31536000"));
    if (is_html)
        add_page_headers(req, H2O_STRLIT(CSP));
}

static void send_body(h2o_req_t *req, int status, const char *reason, const char *type, size_t typelen, const char *body,
                      size_t len)
{
    req->res.status = status;
    req->res.reason = reason != NULL ? reason : relay_status_reason(status);
    if (type != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type, typelen);
    /* h2o_send_inline does not set Content-Length in libh2o 2.2.5 */
    req->res.content_length = len;
    h2o_send_inline(req, body, len);
}

void relay_respond_json(h2o_req_t *req, int status, const char *reason, const char *json, size_t len)
{
    relay_add_security_headers(req, 0);
    if (status == 204) {
        send_body(req, status, reason, NULL, 0, "", 0);
        return;
    }
    send_body(req, status, reason, H2O_STRLIT("application/json"), json, len);
}

void relay_respond_error(h2o_req_t *req, int status, const char *reason, const char *code, const char *description, int retry_after)
{
    char body[512];
    /* code and description are fixed texts of ours: no escaping needed beyond what they contain (none) */
    int n = snprintf(body, sizeof(body), "{\"error\":\"%s\",\"error_description\":\"%s\"}", code, description);
    if (n < 0 || (size_t)n >= sizeof(body))
        n = snprintf(body, sizeof(body), "{\"error\":\"server_error\",\"error_description\":\"internal error\"}");
    if (retry_after > 0) {
        char ra[16];
        int m = snprintf(ra, sizeof(ra), "%d", retry_after);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, h2o_strdup(&req->pool, ra, m).base, m);
    }
    relay_respond_json(req, status, reason, body, (size_t)n);
}

void relay_respond_html(h2o_req_t *req, int status, const char *reason, const char *html, size_t len)
{
    relay_add_security_headers(req, 1);
    send_body(req, status, reason, H2O_STRLIT("text/html; charset=utf-8"), html, len);
}

void relay_respond_html_csp(h2o_req_t *req, int status, const char *html, size_t len, const char *csp)
{
    relay_add_security_headers(req, 0);
    add_page_headers(req, csp, strlen(csp));
    send_body(req, status, NULL, H2O_STRLIT("text/html; charset=utf-8"), html, len);
}

void relay_respond_redirect(h2o_req_t *req, const char *location, size_t len)
{
    relay_add_security_headers(req, 0);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL, location, len);
    send_body(req, 303, "See Other", NULL, 0, "", 0);
}
