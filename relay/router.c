/* router.c: the public listener's one handler: HTTP/1 framing, limits, admission, then dispatch by exact path and method */
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

/* picohttpparser's request parser, the one libh2o 2.2.5 parses HTTP/1 requests with: libh2o-evloop exports it, Debian
 * ships no picohttpparser.h, so the declarations are repeated here as deps/picohttpparser/picohttpparser.h of h2o 2.2.5
 * has them (name == NULL: a continuation line, obs-fold) */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path, size_t *path_len,
                      int *minor_version, struct phr_header *headers, size_t *num_headers, size_t last_len);

/* a Host value: uri-host [":" port] of RFC 3986 (reg-name, IPv4 or IP-literal characters), not empty */
static int is_host_value(const char *s, size_t len)
{
    static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=%:[]";
    if (len == 0)
        return 0;
    for (size_t i = 0; i != len; ++i)
        if (s[i] == '\0' || strchr(allowed, s[i]) == NULL)
            return 0;
    return 1;
}

const char *relay_http1_framing_error(const char *raw, size_t len)
{
    struct phr_header headers[H2O_MAX_HEADERS];
    size_t num_headers = H2O_MAX_HEADERS, method_len, path_len, content_length = 0, transfer_encoding = 0, host = 0;
    const char *method, *path;
    const struct phr_header *host_header = NULL;
    int minor_version;

    /* the same bytes and bounds h2o parsed (http1.c handle_incoming_request), so the same fields */
    if (phr_parse_request(raw, len < H2O_MAX_REQLEN ? len : H2O_MAX_REQLEN, &method, &method_len, &path, &path_len, &minor_version,
                          headers, &num_headers, 0) < 0)
        return "the request head cannot be read";
    for (size_t i = 0; i != num_headers; ++i) {
        const struct phr_header *h = headers + i;
        if (h->name == NULL)
            return "a header field is folded over several lines";
        if (h2o_lcstris(h->name, h->name_len, H2O_STRLIT("content-length"))) {
            ++content_length;
        } else if (h2o_lcstris(h->name, h->name_len, H2O_STRLIT("transfer-encoding"))) {
            ++transfer_encoding;
            if (!h2o_lcstris(h->value, h->value_len, H2O_STRLIT("chunked")))
                return "Transfer-Encoding must be chunked";
        } else if (h2o_lcstris(h->name, h->name_len, H2O_STRLIT("host"))) {
            ++host;
            host_header = h;
        }
    }
    if (content_length > 1)
        return "more than one Content-Length header field";
    if (transfer_encoding > 1)
        return "more than one Transfer-Encoding header field";
    if (transfer_encoding != 0 && content_length != 0)
        return "both Content-Length and Transfer-Encoding";
    if (transfer_encoding != 0 && minor_version == 0)
        return "Transfer-Encoding in an HTTP/1.0 request";
    if (host == 0)
        return "no Host header field";
    if (host > 1)
        return "more than one Host header field";
    if (!is_host_value(host_header->value, host_header->value_len))
        return "the Host header field is not a host and port";
    return NULL;
}

/*
 * HTTP/1.x: libh2o 2.2.5 keeps Content-Length, Transfer-Encoding and Host out of req->headers, reads the body by the
 * first Content-Length (by chunked when Transfer-Encoding is present, the last one winning), keeps the connection alive
 * and takes what follows as the next request. So the head is read again from the connection's input buffer, where the
 * request still starts (h2o consumes it only once the response was sent), and a head whose framing is ambiguous gets
 * 400 and the connection closed: the bytes after it are never read as a request. 1 answered, 0 go on. HTTP/2 has its
 * own framing (h2o resets a stream whose DATA differs from its content-length).
 */
static int framing_refused(h2o_req_t *req)
{
    const char *why;

    if (req->version >= 0x200 || req->conn->callbacks->get_socket == NULL)
        return 0; /* HTTP/2, or a connection without a socket (the unit tests' loopback) */
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock == NULL || sock->input == NULL)
        why = "the request head cannot be read";
    else if ((why = relay_http1_framing_error(sock->input->bytes, sock->input->size)) == NULL)
        return 0;
    req->http1_is_persistent = 0; /* Connection: close, and h2o closes once the response is sent */
    relay_event(RLY_LOG_INFO, "request", NULL, "bad_framing", 0);
    relay_respond_error(req, 400, NULL, "invalid_request", why, 0);
    return 1;
}

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
    if (framing_refused(req))
        return 0;

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
