/* routes.h: the public endpoints, one file each (route_*.c); the router dispatches to them */
#ifndef RELAY_ROUTES_H
#define RELAY_ROUTES_H

#include <h2o.h>
#include "worker.h"

#define RELAY_PATH_CALLBACK "/qorus-oauth2-redirect" /* the redirect URI registered at the AS */
#define RELAY_PATH_CALLBACK_ALIAS "/v1/callback"
#define RELAY_PATH_DISCOVERY "/.well-known/authrelay"
#define RELAY_PATH_SESSIONS "/v1/sessions"
#define RELAY_PATH_START "/v1/start" /* 1.1: the confirmation page and its forms */

/* route_sessions.c: builds redirect_uri and the discovery document into r (once, before the workers start); 0 / -1 */
int relay_discovery_init(relay_t *r);
/* each answers the request (now or later) and returns 0, as an h2o handler does */
int relay_route_discovery(h2o_req_t *req);
int relay_route_create(h2o_req_t *req);
int relay_route_callback(h2o_req_t *req);
int relay_route_start(h2o_req_t *req); /* GET and POST */
/* key_text: the {session} path segment, borrowed */
int relay_route_pickup(h2o_req_t *req, const char *sid_text, size_t sid_len);
int relay_route_delete(h2o_req_t *req, const char *sid_text, size_t sid_len);

#endif
