/* router.c: the public listener's one handler: limits, admission, then dispatch by exact path and method */
#include <string.h>
#include "accept.h"
#include "event.h"
#include "metrics.h"
#include "pages.h"
#include "respond.h"
#include "router.h"
#include "routes.h"
#include "worker.h"

#define PATH_SESSIONS RELAY_PATH_SESSIONS

static int method_is(h2o_req_t *req, const char *m)
{
    return h2o_memis(req->method.base, req->method.len, m, strlen(m));
}

static int not_allowed(h2o_req_t *req, const char *allow, int html)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow, strlen(allow));
    if (html)
        relay_respond_page(req, 405, RELAY_PAGE_METHOD, NULL, 0, 0);
    else
        relay_respond_error(req, 405, NULL, "invalid_request", "method not allowed", 0);
    return 0;
}

/* the connection layer's admission of a costly request (1 admitted; 0 answered 429) */
static int admitted(h2o_req_t *req, const char *event, int html)
{
    int retry_after;
    if (relay_accept_rate_allowed(req, &retry_after))
        return 1;
    relay_event(RLY_LOG_WARN, event, NULL, "rate_limited", 0);
    if (html)
        relay_respond_page(req, 429, RELAY_PAGE_SLOW_DOWN, NULL, 0, retry_after);
    else
        relay_respond_error(req, 429, NULL, "slow_down", "too many requests from this address; retry later", retry_after);
    return 0;
}

int relay_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    relay_worker_track(relay_worker_of(req), req);
    relay_metrics_request(req->version >= 0x200);

    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    const char *path = req->path.base;
    int is_callback =
        h2o_memis(path, plen, H2O_STRLIT(RELAY_PATH_CALLBACK)) || h2o_memis(path, plen, H2O_STRLIT(RELAY_PATH_CALLBACK_ALIAS));
    int is_start = h2o_memis(path, plen, H2O_STRLIT(RELAY_PATH_START));

    if (req->query_at != SIZE_MAX && req->path.len - req->query_at - 1 > RLY_QUERY_MAX) {
        /* browser paths get a page, the API a JSON error */
        relay_event(RLY_LOG_INFO, is_callback ? "callback" : is_start ? "confirm" : "request", NULL, "uri_too_long", 0);
        if (is_callback || is_start)
            relay_respond_page(req, 414, RELAY_PAGE_TOO_LARGE, NULL, 0, 0);
        else
            relay_respond_error(req, 414, NULL, "invalid_request", "the query string is longer than 16 KiB", 0);
        return 0;
    }

    if (is_callback) {
        if (!method_is(req, "GET") && !method_is(req, "POST"))
            return not_allowed(req, "GET, POST", 1);
        return admitted(req, "callback", 1) ? relay_route_callback(req) : 0;
    }
    if (is_start) {
        if (!method_is(req, "GET") && !method_is(req, "POST"))
            return not_allowed(req, "GET, POST", 1);
        return admitted(req, "confirm", 1) ? relay_route_start(req) : 0;
    }
    if (h2o_memis(path, plen, H2O_STRLIT(RELAY_PATH_DISCOVERY))) {
        if (method_is(req, "GET"))
            return relay_route_discovery(req);
        return not_allowed(req, "GET", 0);
    }
    if (h2o_memis(path, plen, H2O_STRLIT(PATH_SESSIONS))) {
        if (!method_is(req, "POST"))
            return not_allowed(req, "POST", 0);
        return admitted(req, "session_create", 0) ? relay_route_create(req) : 0;
    }
    if (plen > sizeof(PATH_SESSIONS) && memcmp(path, PATH_SESSIONS "/", sizeof(PATH_SESSIONS)) == 0 &&
        memchr(path + sizeof(PATH_SESSIONS), '/', plen - sizeof(PATH_SESSIONS)) == NULL) {
        const char *sid = path + sizeof(PATH_SESSIONS);
        size_t sidlen = plen - sizeof(PATH_SESSIONS);
        if (method_is(req, "GET"))
            return relay_route_pickup(req, sid, sidlen);
        if (method_is(req, "DELETE"))
            return relay_route_delete(req, sid, sidlen);
        return not_allowed(req, "GET, DELETE", 0);
    }
    relay_respond_error(req, 404, NULL, "not_found", "no such endpoint", 0);
    return 0;
}
