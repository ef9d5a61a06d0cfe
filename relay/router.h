/* router.h: the public listener's one handler */
#ifndef RELAY_ROUTER_H
#define RELAY_ROUTER_H

#include <h2o.h>

/* limits, the connection layer's admission (rate limit), then dispatch by exact path and method to a route */
int relay_on_req(h2o_handler_t *self, h2o_req_t *req);
/* what makes an HTTP/1.x request head's framing ambiguous (RFC 9112 6.1, 6.3, 3.2: Content-Length twice, even equal;
 * Transfer-Encoding twice, other than chunked, beside Content-Length or in HTTP/1.0; no Host, two, or a bad value;
 * obs-fold), a fixed text; NULL if nothing. raw: the request as received, at least its head; borrowed, never written */
const char *relay_http1_framing_error(const char *raw, size_t len);

#endif
