/* test_router.c: relay/router.c without sockets: HTTP/1 framing, methods and Allow, 404, the 16 KiB query limit, exact paths,
 * admission */
#include "loopback.h"

#define SOME_ID "AAAAAAAAAAAAAAAAAAAAAA" /* a well-formed session id (22 base64url characters) */

static int setup(void **state)
{
    *state = lb_relay_new(NULL);
    return 0;
}

static int setup_rate_limited(void **state)
{
    lb_options_t opts = {.rate_limit = 2};
    *state = lb_relay_new(&opts);
    return 0;
}

static int teardown(void **state)
{
    lb_relay_free(*state);
    return 0;
}

/* a 405 with the Allow of the path: JSON on the API, the HTML page on the browser's paths */
static void assert_not_allowed(lb_relay_t *lb, const char *method, const char *path, const char *allow, int html)
{
    lb_conn_t *c = lb_fetch(lb, method, path, NULL, NULL);
    assert_int_equal(c->status, 405);
    assert_int_equal(lb_header_count(c, "allow"), 1);
    lb_assert_header(c, "allow", allow);
    assert_string_equal(c->req.res.reason, "Method Not Allowed");
    if (html) {
        lb_assert_header(c, "content-type", "text/html; charset=utf-8");
        assert_non_null(lb_header(c, "content-security-policy"));
        assert_non_null(strstr(c->body, "<html"));
    } else {
        lb_assert_json_error(c, 405, "invalid_request");
        assert_null(lb_header(c, "content-security-policy"));
    }
    lb_assert_header(c, "cache-control", "no-store");
    lb_conn_free(c);
}

static void test_method_not_allowed(void **state)
{
    lb_relay_t *lb = *state;
    assert_not_allowed(lb, "GET", RELAY_PATH_SESSIONS, "POST", 0);
    assert_not_allowed(lb, "DELETE", RELAY_PATH_SESSIONS, "POST", 0);
    assert_not_allowed(lb, "POST", RELAY_PATH_DISCOVERY, "GET", 0);
    assert_not_allowed(lb, "PATCH", RELAY_PATH_DISCOVERY, "GET", 0);
    assert_not_allowed(lb, "POST", RELAY_PATH_SESSIONS "/" SOME_ID, "GET, DELETE", 0);
    assert_not_allowed(lb, "PUT", RELAY_PATH_SESSIONS "/" SOME_ID, "GET, DELETE", 0);
    assert_not_allowed(lb, "PUT", RELAY_PATH_CALLBACK, "GET, POST", 1);
    assert_not_allowed(lb, "DELETE", RELAY_PATH_CALLBACK "?code=x&state=y", "GET, POST", 1);
    assert_not_allowed(lb, "OPTIONS", RELAY_PATH_CALLBACK_ALIAS, "GET, POST", 1);
#ifdef RELAY_PATH_START
    assert_not_allowed(lb, "PUT", RELAY_PATH_START, "GET, POST", 1);
#endif
}

static void assert_not_found(lb_relay_t *lb, const char *method, const char *path)
{
    lb_conn_t *c = lb_fetch(lb, method, path, NULL, NULL);
    if (c->status != 404)
        fail_msg("%s %s: %d, not 404", method, path, c->status);
    lb_assert_json_error(c, 404, "not_found");
    assert_null(lb_header(c, "allow"));
    lb_assert_header(c, "cache-control", "no-store");
    lb_conn_free(c);
}

/* the paths are matched exactly: no prefix, suffix, trailing slash, case or normalization leads to a route */
static void test_not_found(void **state)
{
    lb_relay_t *lb = *state;
    assert_not_found(lb, "GET", "/");
    assert_not_found(lb, "GET", "/index.html");
    assert_not_found(lb, "GET", RELAY_PATH_DISCOVERY "/");
    assert_not_found(lb, "GET", RELAY_PATH_DISCOVERY "x");
    assert_not_found(lb, "GET", "/.WELL-KNOWN/authrelay");
    assert_not_found(lb, "POST", "/v1/sessionsx");
    assert_not_found(lb, "POST", "/v1/Sessions");
    assert_not_found(lb, "POST", "/v1//sessions");
    assert_not_found(lb, "GET", "/v1/sessions/");
    assert_not_found(lb, "GET", RELAY_PATH_SESSIONS "/" SOME_ID "/");
    assert_not_found(lb, "GET", RELAY_PATH_SESSIONS "/" SOME_ID "/x");
    assert_not_found(lb, "GET", RELAY_PATH_CALLBACK "/");
    assert_not_found(lb, "GET", "/v1/callback/x?code=a&state=b");
    assert_not_found(lb, "GET", "/v1/./sessions");
    assert_not_found(lb, "DELETE", "/v2/sessions/" SOME_ID);
}

/* exact paths reach their routes, with or without a query */
static void test_dispatch(void **state)
{
    lb_relay_t *lb = *state;

    lb_conn_t *c = lb_fetch(lb, "GET", RELAY_PATH_DISCOVERY, NULL, NULL);
    assert_int_equal(c->status, 200);
    assert_int_equal(c->body_len, lb->relay.discovery_json_len);
    assert_memory_equal(c->body, lb->relay.discovery_json, c->body_len);
    lb_conn_free(c);
    c = lb_fetch(lb, "GET", RELAY_PATH_DISCOVERY "?x=1", NULL, NULL);
    assert_int_equal(c->status, 200);
    lb_conn_free(c);

    /* the sessions path goes to creation: no content type is its 415 */
    c = lb_fetch(lb, "POST", RELAY_PATH_SESSIONS, "{}", NULL);
    lb_assert_json_error(c, 415, "invalid_request");
    lb_conn_free(c);

    /* a session's path goes to pickup and delete: no bearer is their 401 */
    c = lb_fetch(lb, "GET", RELAY_PATH_SESSIONS "/" SOME_ID, NULL, NULL);
    lb_assert_json_error(c, 401, "invalid_token");
    lb_assert_header(c, "www-authenticate", "Bearer");
    lb_conn_free(c);
    c = lb_fetch(lb, "DELETE", RELAY_PATH_SESSIONS "/" SOME_ID "?x", NULL, NULL);
    lb_assert_json_error(c, 401, "invalid_token");
    lb_conn_free(c);
    /* a segment that is not a session id still reaches the route, which answers 404 */
    c = lb_fetch(lb, "GET", RELAY_PATH_SESSIONS "/nope", NULL, "authorization", "Bearer x", NULL);
    lb_assert_json_error(c, 404, "not_found");
    lb_conn_free(c);

    /* both callback paths, GET and POST, reach the callback: a bad state is its 400 page */
    const char *paths[] = {RELAY_PATH_CALLBACK "?code=abc&state=bad", RELAY_PATH_CALLBACK_ALIAS "?code=abc&state=bad"};
    for (size_t i = 0; i != 2; ++i) {
        c = lb_fetch(lb, "GET", paths[i], NULL, NULL);
        assert_int_equal(c->status, 400);
        lb_assert_header(c, "content-type", "text/html; charset=utf-8");
        lb_conn_free(c);
    }
    c = lb_fetch(lb, "POST", RELAY_PATH_CALLBACK, "code=abc&state=bad", "content-type", "application/x-www-form-urlencoded", NULL);
    assert_int_equal(c->status, 400);
    lb_conn_free(c);
    assert_true(lb_log_has(lb, "\"event\":\"callback\"", "\"outcome\":\"bad_state\"", NULL));
}

/* a query string of n bytes on path */
static char *with_query(const char *path, size_t n)
{
    size_t plen = strlen(path);
    char *s = malloc(plen + 1 + n + 1);
    assert_non_null(s);
    memcpy(s, path, plen);
    s[plen] = '?';
    memset(s + plen + 1, 'a', n);
    s[plen + 1 + n] = '\0';
    return s;
}

/* 414 above 16 KiB of query: the HTML page on the callback (a browser's), JSON elsewhere; 16 KiB itself passes */
static void test_uri_too_long(void **state)
{
    lb_relay_t *lb = *state;
    char *p;

    p = with_query(RELAY_PATH_CALLBACK, RLY_QUERY_MAX + 1);
    lb_conn_t *c = lb_fetch(lb, "GET", p, NULL, NULL);
    assert_int_equal(c->status, 414);
    assert_string_equal(c->req.res.reason, "URI Too Long");
    lb_assert_header(c, "content-type", "text/html; charset=utf-8");
    assert_non_null(lb_header(c, "content-security-policy"));
    lb_conn_free(c);
    free(p);
    assert_true(lb_log_has(lb, "\"event\":\"callback\"", "\"outcome\":\"uri_too_long\"", NULL));

    /* even with a method the callback refuses: the length is checked first */
    p = with_query(RELAY_PATH_CALLBACK_ALIAS, RLY_QUERY_MAX + 100);
    c = lb_fetch(lb, "PUT", p, NULL, NULL);
    assert_int_equal(c->status, 414);
    lb_assert_header(c, "content-type", "text/html; charset=utf-8");
    lb_conn_free(c);
    free(p);

    const char *api[] = {RELAY_PATH_DISCOVERY, RELAY_PATH_SESSIONS, RELAY_PATH_SESSIONS "/" SOME_ID, "/nowhere"};
    for (size_t i = 0; i != sizeof(api) / sizeof(api[0]); ++i) {
        p = with_query(api[i], RLY_QUERY_MAX + 1);
        c = lb_fetch(lb, "GET", p, NULL, NULL);
        lb_assert_json_error(c, 414, "invalid_request");
        lb_conn_free(c);
        free(p);
    }
    assert_true(lb_log_has(lb, "\"event\":\"request\"", "\"outcome\":\"uri_too_long\"", NULL));

    /* exactly 16 KiB: routed (discovery answers, the callback rejects the query itself) */
    p = with_query(RELAY_PATH_DISCOVERY, RLY_QUERY_MAX);
    c = lb_fetch(lb, "GET", p, NULL, NULL);
    assert_int_equal(c->status, 200);
    lb_conn_free(c);
    free(p);
    p = with_query(RELAY_PATH_CALLBACK, RLY_QUERY_MAX);
    c = lb_fetch(lb, "GET", p, NULL, NULL);
    assert_int_equal(c->status, 400);
    lb_conn_free(c);
    free(p);
}

/* every request is counted in flight until its pool is disposed (the drain at shutdown waits on it) */
static void test_inflight(void **state)
{
    lb_relay_t *lb = *state;
    lb_conn_t *a = lb_fetch(lb, "GET", RELAY_PATH_DISCOVERY, NULL, NULL);
    lb_conn_t *b = lb_fetch(lb, "GET", "/nowhere", NULL, NULL);
    assert_int_equal(atomic_load(&lb->worker.inflight), 2);
    assert_int_equal(relay_inflight(&lb->relay), 2);
    lb_conn_free(a);
    assert_int_equal(relay_inflight(&lb->relay), 1);
    lb_conn_free(b);
    assert_int_equal(relay_inflight(&lb->relay), 0);
}

static void assert_slow_down(lb_conn_t *c, int html)
{
    assert_int_equal(c->status, 429);
    const char *ra = lb_header(c, "retry-after");
    assert_non_null(ra);
    char *end;
    long secs = strtol(ra, &end, 10);
    assert_true(*end == '\0' && secs >= 1 && secs <= 60);
    if (html) {
        lb_assert_header(c, "content-type", "text/html; charset=utf-8");
        assert_non_null(strstr(c->body, "Too many requests"));
    } else {
        lb_assert_json_error(c, 429, "slow_down");
    }
}

/* with a limit of 2 a minute, creation and callbacks share the address's bucket; pickup, discovery and 404s do not
 * take from it; another address has its own */
static void test_rate_limit(void **state)
{
    lb_relay_t *lb = *state;
    const char *body = "{\"authorization_server\":\"https://auth.example.com/authorize\"}";
    lb_conn_t *c;

    for (int i = 0; i != 2; ++i) {
        c = lb_fetch(lb, "POST", RELAY_PATH_SESSIONS, body, "content-type", "application/json", NULL);
        assert_int_equal(c->status, 201);
        lb_conn_free(c);
    }
    c = lb_fetch(lb, "POST", RELAY_PATH_SESSIONS, body, "content-type", "application/json", NULL);
    assert_slow_down(c, 0);
    lb_conn_free(c);
    assert_int_equal(store_memory_count(lb->relay.store), 2); /* the refused one created nothing */
    assert_true(lb_log_has(lb, "\"event\":\"session_create\"", "\"outcome\":\"rate_limited\"", NULL));

    c = lb_fetch(lb, "GET", RELAY_PATH_CALLBACK "?code=abc&state=bad", NULL, NULL);
    assert_slow_down(c, 1);
    lb_conn_free(c);
    c = lb_fetch(lb, "POST", RELAY_PATH_CALLBACK_ALIAS, "code=abc&state=bad", "content-type", "application/x-www-form-urlencoded",
                 NULL);
    assert_slow_down(c, 1);
    lb_conn_free(c);
    assert_true(lb_log_has(lb, "\"event\":\"callback\"", "\"outcome\":\"rate_limited\"", NULL));
#ifdef RELAY_PATH_START
    /* the start page shares the bucket too */
    c = lb_fetch(lb, "GET", RELAY_PATH_START "?t=x", NULL, NULL);
    assert_slow_down(c, 1);
    lb_conn_free(c);
#endif

    /* not limited: pickup, delete, discovery, unknown paths, wrong methods */
    for (int i = 0; i != 5; ++i) {
        c = lb_fetch(lb, "GET", RELAY_PATH_SESSIONS "/" SOME_ID, NULL, "authorization", "Bearer x", NULL);
        lb_assert_json_error(c, 404, "not_found");
        lb_conn_free(c);
        c = lb_fetch(lb, "DELETE", RELAY_PATH_SESSIONS "/" SOME_ID, NULL, NULL);
        assert_int_equal(c->status, 401);
        lb_conn_free(c);
        c = lb_fetch(lb, "GET", RELAY_PATH_DISCOVERY, NULL, NULL);
        assert_int_equal(c->status, 200);
        lb_conn_free(c);
        c = lb_fetch(lb, "GET", RELAY_PATH_SESSIONS, NULL, NULL);
        assert_int_equal(c->status, 405);
        lb_conn_free(c);
    }

    /* another client address: a bucket of its own */
    lb_set_peer(lb, "198.51.100.7");
    c = lb_fetch(lb, "POST", RELAY_PATH_SESSIONS, body, "content-type", "application/json", NULL);
    assert_int_equal(c->status, 201);
    lb_conn_free(c);
    c = lb_fetch(lb, "GET", RELAY_PATH_CALLBACK "?code=abc&state=bad", NULL, NULL);
    assert_int_equal(c->status, 400);
    lb_conn_free(c);
    c = lb_fetch(lb, "GET", RELAY_PATH_CALLBACK "?code=abc&state=bad", NULL, NULL);
    assert_slow_down(c, 1);
    lb_conn_free(c);
}

/* without a limiter (the default here) nothing is ever 429 */
static void test_no_rate_limit(void **state)
{
    lb_relay_t *lb = *state;
    assert_null(lb->relay.ratelimit);
    for (int i = 0; i != 50; ++i) {
        lb_conn_t *c = lb_fetch(lb, "GET", RELAY_PATH_CALLBACK "?code=abc&state=bad", NULL, NULL);
        assert_int_equal(c->status, 400);
        lb_conn_free(c);
    }
}

/* ---- HTTP/1 framing (RFC 9112 6.1, 6.3, 3.2) ---- */

#define GET_HEAD "GET " RELAY_PATH_DISCOVERY " HTTP/1.1\r\n"
#define SMUGGLED "GET " RELAY_PATH_DISCOVERY " HTTP/1.1\r\nHost: relay.test\r\n\r\n"

static void assert_framing_ok(const char *raw)
{
    const char *why = relay_http1_framing_error(raw, strlen(raw));
    if (why != NULL)
        fail_msg("refused (%s): %s", why, raw);
}

static void assert_framing_refused(const char *raw, const char *why)
{
    const char *got = relay_http1_framing_error(raw, strlen(raw));
    if (got == NULL)
        fail_msg("accepted: %s", raw);
    if (strcmp(got, why) != 0)
        fail_msg("refused for \"%s\", expected \"%s\": %s", got, why, raw);
}

/* the head parser alone, on the bytes as they arrive (h2o has lower-cased the names in place by then; mixed case here) */
static void test_framing_error(void **state)
{
    (void)state;
    assert_framing_ok(GET_HEAD "Host: relay.test\r\n\r\n");
    assert_framing_ok(GET_HEAD "host: relay.test:8443\r\n\r\n" SMUGGLED); /* what follows is not looked at */
    assert_framing_ok("\r\n" GET_HEAD "Host: relay.test\r\n\r\n");        /* one empty line before, as picohttpparser takes */
    assert_framing_ok("POST /v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}");
    assert_framing_ok("POST /v1/sessions HTTP/1.1\r\nHost: [::1]:443\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n");
    assert_framing_ok("GET / HTTP/1.0\nHost: relay.test\n\n"); /* bare LF, as h2o takes */

    assert_framing_refused(GET_HEAD "Host: relay.test\r\nContent-Length: 0\r\nContent-Length: 40\r\n\r\n",
                           "more than one Content-Length header field");
    /* equal values too: RFC 9112 6.3 would let them collapse, a relay behind a proxy refuses them */
    assert_framing_refused(GET_HEAD "Host: relay.test\r\ncontent-length: 5\r\nCONTENT-LENGTH: 5\r\n\r\nhello",
                           "more than one Content-Length header field");
    assert_framing_refused(GET_HEAD "Host: relay.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                           "both Content-Length and Transfer-Encoding");
    assert_framing_refused(GET_HEAD "Transfer-Encoding: chunked\r\nHost: relay.test\r\nContent-Length: 5\r\n\r\n",
                           "both Content-Length and Transfer-Encoding");
    assert_framing_refused(GET_HEAD "Host: relay.test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                           "more than one Transfer-Encoding header field");
    /* h2o would take the last one (chunked) and ignore gzip */
    assert_framing_refused(GET_HEAD "Host: relay.test\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
                           "Transfer-Encoding must be chunked");
    assert_framing_refused(GET_HEAD "Host: relay.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                           "Transfer-Encoding must be chunked");
    assert_framing_refused(GET_HEAD "Host: relay.test\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
                           "Transfer-Encoding must be chunked");
    assert_framing_refused("POST /v1/sessions HTTP/1.0\r\nHost: relay.test\r\nTransfer-Encoding: chunked\r\n\r\n",
                           "Transfer-Encoding in an HTTP/1.0 request");
    assert_framing_refused(GET_HEAD "\r\n", "no Host header field");
    assert_framing_refused("GET / HTTP/1.0\r\nAccept: */*\r\n\r\n", "no Host header field");
    assert_framing_refused(GET_HEAD "X-Host: relay.test\r\n\r\n", "no Host header field");
    assert_framing_refused(GET_HEAD "Host: relay.test\r\nHost: relay.test\r\n\r\n", "more than one Host header field");
    assert_framing_refused(GET_HEAD "Host: relay.test\r\nHost: evil.test\r\n\r\n", "more than one Host header field");
    const char *bad_hosts[] = {"", "relay.test/x", "user@relay.test", "relay test", "relay.test\\", "relay.test?", "r\x80"};
    for (size_t i = 0; i != sizeof(bad_hosts) / sizeof(bad_hosts[0]); ++i) {
        char raw[128];
        snprintf(raw, sizeof(raw), GET_HEAD "Host: %s\r\n\r\n", bad_hosts[i]);
        assert_framing_refused(raw, "the Host header field is not a host and port");
    }
    assert_framing_refused(GET_HEAD "Host: relay.test\r\nX-A: 1\r\n  continued\r\n\r\n",
                           "a header field is folded over several lines");
    assert_framing_refused(GET_HEAD "Host: relay.test\r\n", "the request head cannot be read"); /* incomplete */
    assert_framing_refused("", "the request head cannot be read");
}

/* a fake socket whose input buffer holds the request as received: what get_socket gives the router for HTTP/1 */
static h2o_socket_t *framing_sock;

static h2o_socket_t *framing_get_socket(h2o_conn_t *conn)
{
    (void)conn;
    return framing_sock;
}

static const h2o_conn_callbacks_t framing_callbacks = {
    .get_sockname = lb_get_sockname, .get_peername = lb_get_peername, .get_socket = framing_get_socket};

/* GET discovery processed by relay_on_req on a keep-alive HTTP/1.x connection (version) whose input holds raw */
static lb_conn_t *framing_fetch(lb_relay_t *lb, int version, const char *raw)
{
    size_t len = strlen(raw);
    framing_sock = calloc(1, sizeof(*framing_sock));
    assert_non_null(framing_sock);
    h2o_buffer_init(&framing_sock->input, &h2o_socket_buffer_prototype);
    h2o_iovec_t buf = h2o_buffer_reserve(&framing_sock->input, len + 1);
    assert_non_null(buf.base);
    memcpy(buf.base, raw, len);
    framing_sock->input->size += len;

    lb_conn_t *c = lb_conn_new(lb, "GET", RELAY_PATH_DISCOVERY, NULL, NULL);
    c->super.callbacks = &framing_callbacks;
    c->req.version = version;
    c->req.http1_is_persistent = version < 0x200;
    lb_process(c);
    if (!lb_wait(c, LB_WAIT_MS))
        fail_msg("no response within %d ms", LB_WAIT_MS);
    assert_int_equal(c->sends, 1);

    h2o_buffer_dispose(&framing_sock->input);
    free(framing_sock);
    framing_sock = NULL;
    return c;
}

/* the router refuses an ambiguous head before anything else with 400 and closes the connection; a good one is routed on a
 * connection that stays open; HTTP/2 is left to h2o's own framing */
static void test_framing_refused(void **state)
{
    lb_relay_t *lb = *state;
    const char *bad[] = {
        GET_HEAD "Host: relay.test\r\nContent-Length: 0\r\nContent-Length: 40\r\n\r\n" SMUGGLED,
        GET_HEAD "Host: relay.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" SMUGGLED,
        GET_HEAD "\r\n" SMUGGLED,
        GET_HEAD "Host: relay.test\r\nHost: other.test\r\n\r\n",
    };
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        lb_conn_t *c = framing_fetch(lb, 0x101, bad[i]);
        lb_assert_json_error(c, 400, "invalid_request");
        assert_int_equal(c->req.http1_is_persistent, 0);
        lb_assert_header(c, "cache-control", "no-store");
        lb_conn_free(c);
    }
    assert_true(lb_log_has(lb, "\"event\":\"request\"", "\"outcome\":\"bad_framing\"", NULL));

    lb_conn_t *c = framing_fetch(lb, 0x101, GET_HEAD "Host: relay.test\r\n\r\n");
    assert_int_equal(c->status, 200);
    assert_int_equal(c->req.http1_is_persistent, 1);
    lb_conn_free(c);

    /* an HTTP/2 stream never has its connection's input read as an HTTP/1 head */
    c = framing_fetch(lb, 0x200, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    assert_int_equal(c->status, 200);
    lb_conn_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_framing_error),
        cmocka_unit_test_setup_teardown(test_framing_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_method_not_allowed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dispatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uri_too_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inflight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit, setup_rate_limited, teardown),
        cmocka_unit_test_setup_teardown(test_no_rate_limit, setup, teardown),
    };
    return cmocka_run_group_tests_name("router", tests, NULL, NULL);
}
