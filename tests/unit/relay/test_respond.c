/* test_respond.c: relay/respond.c without sockets: security headers, Content-Length, Retry-After, media types, reasons */
#include "loopback.h"
#include "respond.h"

#define CSP "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
#define JSON_BODY "{\"hello\":\"world\"}"
#define HTML_BODY "<!doctype html><html><body>hi</body></html>"
#define LOCATION "https://app.example/grant?status=success"

static int setup(void **state)
{
    *state = lb_relay_new(NULL);
    return 0;
}

static int teardown(void **state)
{
    lb_relay_free(*state);
    return 0;
}

static int on_json(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    relay_respond_json(req, 200, NULL, H2O_STRLIT(JSON_BODY));
    return 0;
}

static int on_json_reason(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    relay_respond_json(req, 202, "Queued", H2O_STRLIT(JSON_BODY));
    return 0;
}

static int on_no_content(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    relay_respond_json(req, 204, NULL, "", 0);
    return 0;
}

static int on_html(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    relay_respond_html(req, 200, NULL, H2O_STRLIT(HTML_BODY));
    return 0;
}

#define OWN_CSP "default-src 'none'; script-src 'sha256-abc'; style-src 'unsafe-inline'; frame-ancestors 'none'"

static int on_html_csp(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    relay_respond_html_csp(req, 200, H2O_STRLIT(HTML_BODY), OWN_CSP);
    return 0;
}

static int on_redirect(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    relay_respond_redirect(req, H2O_STRLIT(LOCATION));
    return 0;
}

static int on_error_retry(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    relay_respond_error(req, 503, NULL, "temporarily_unavailable", "the store is down", 7);
    return 0;
}

static int on_error_retry_1(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    relay_respond_error(req, 429, NULL, "slow_down", "wait", 1);
    return 0;
}

static int on_error(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    relay_respond_error(req, 409, NULL, "conflict", "already done", 0);
    return 0;
}

/* a description longer than the error body's buffer: a generic body, never a truncated JSON document */
static int on_error_too_long(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    char desc[600];
    memset(desc, 'x', sizeof(desc) - 1);
    desc[sizeof(desc) - 1] = '\0';
    relay_respond_error(req, 400, NULL, "invalid_request", desc, 0);
    return 0;
}

/* answers with the given handler over https (or http) and checks the one response */
static lb_conn_t *answer(lb_relay_t *lb, lb_handler_cb on_req, int https)
{
    lb_conn_t *c = lb_conn_new(lb, "GET", "/anything", NULL, NULL);
    c->on_req = on_req;
    if (!https)
        c->req.input.scheme = &H2O_URL_SCHEME_HTTP;
    lb_process(c);
    assert_true(c->done); /* answered before the handler returned */
    assert_int_equal(c->sends, 1);
    return c;
}

/* the headers of protocol.md's "Security headers", each exactly once; HSTS only over TLS */
static void assert_security_headers(lb_conn_t *c, int https)
{
    assert_int_equal(lb_header_count(c, "cache-control"), 1);
    lb_assert_header(c, "cache-control", "no-store");
    assert_int_equal(lb_header_count(c, "referrer-policy"), 1);
    lb_assert_header(c, "referrer-policy", "no-referrer");
    assert_int_equal(lb_header_count(c, "x-content-type-options"), 1);
    lb_assert_header(c, "x-content-type-options", "nosniff");
    assert_int_equal(lb_header_count(c, "x-frame-options"), 1);
    lb_assert_header(c, "x-frame-options", "DENY");
    if (https) {
        assert_int_equal(lb_header_count(c, "strict-transport-security"), 1);
        lb_assert_header(c, "strict-transport-security", "max-age=31536000");
    } else {
        assert_null(lb_header(c, "strict-transport-security"));
    }
    /* pages only */
    if (lb_header(c, "content-security-policy") == NULL)
        assert_null(lb_header(c, "cross-origin-opener-policy"));
    /* no CORS, ever */
    assert_null(lb_header(c, "access-control-allow-origin"));
}

static void test_json(void **state)
{
    lb_relay_t *lb = *state;
    lb_conn_t *c = answer(lb, on_json, 1);
    assert_int_equal(c->status, 200);
    assert_string_equal(c->req.res.reason, "OK");
    assert_security_headers(c, 1);
    assert_int_equal(lb_header_count(c, "content-type"), 1);
    lb_assert_header(c, "content-type", "application/json");
    assert_null(lb_header(c, "content-security-policy"));
    assert_int_equal(c->req.res.content_length, sizeof(JSON_BODY) - 1);
    assert_int_equal(c->body_len, sizeof(JSON_BODY) - 1);
    assert_string_equal(c->body, JSON_BODY);
    lb_conn_free(c);

    c = answer(lb, on_json, 0);
    assert_security_headers(c, 0);
    lb_conn_free(c);

    /* a reason given is used as is */
    c = answer(lb, on_json_reason, 1);
    assert_int_equal(c->status, 202);
    assert_string_equal(c->req.res.reason, "Queued");
    lb_conn_free(c);
}

static void test_no_content(void **state)
{
    lb_relay_t *lb = *state;
    lb_conn_t *c = answer(lb, on_no_content, 1);
    assert_int_equal(c->status, 204);
    assert_string_equal(c->req.res.reason, "No Content");
    assert_security_headers(c, 1);
    assert_null(lb_header(c, "content-type"));
    assert_int_equal(c->req.res.content_length, 0);
    assert_int_equal(c->body_len, 0);
    lb_conn_free(c);
}

/* HTML pages: the security headers and the Content-Security-Policy */
static void test_html(void **state)
{
    lb_relay_t *lb = *state;
    for (int https = 0; https != 2; ++https) {
        lb_conn_t *c = answer(lb, on_html, https);
        assert_int_equal(c->status, 200);
        assert_security_headers(c, https);
        lb_assert_header(c, "content-type", "text/html; charset=utf-8");
        assert_int_equal(lb_header_count(c, "content-security-policy"), 1);
        lb_assert_header(c, "content-security-policy", CSP);
        assert_int_equal(lb_header_count(c, "cross-origin-opener-policy"), 1);
        lb_assert_header(c, "cross-origin-opener-policy", "same-origin");
        assert_int_equal(c->req.res.content_length, sizeof(HTML_BODY) - 1);
        assert_string_equal(c->body, HTML_BODY);
        lb_conn_free(c);
    }
}

/* the two pages of protocol 1.1 with a policy of their own: that one replaces the default, the rest is the same */
static void test_html_own_csp(void **state)
{
    lb_relay_t *lb = *state;
    lb_conn_t *c = answer(lb, on_html_csp, 1);
    assert_int_equal(c->status, 200);
    assert_string_equal(c->req.res.reason, "OK");
    assert_security_headers(c, 1);
    lb_assert_header(c, "content-type", "text/html; charset=utf-8");
    assert_int_equal(lb_header_count(c, "content-security-policy"), 1);
    lb_assert_header(c, "content-security-policy", OWN_CSP);
    lb_assert_header(c, "cross-origin-opener-policy", "same-origin");
    assert_int_equal(c->req.res.content_length, sizeof(HTML_BODY) - 1);
    assert_string_equal(c->body, HTML_BODY);
    lb_conn_free(c);
}

/* a redirect: 303 with Location, the security headers, no CSP (no page), an empty body with its length */
static void test_redirect(void **state)
{
    lb_relay_t *lb = *state;
    lb_conn_t *c = answer(lb, on_redirect, 1);
    assert_int_equal(c->status, 303);
    assert_string_equal(c->req.res.reason, "See Other");
    assert_security_headers(c, 1);
    assert_int_equal(lb_header_count(c, "location"), 1);
    lb_assert_header(c, "location", LOCATION);
    assert_null(lb_header(c, "content-security-policy"));
    assert_null(lb_header(c, "content-type"));
    assert_int_equal(c->req.res.content_length, 0);
    assert_int_equal(c->body_len, 0);
    lb_conn_free(c);
}

static void test_error(void **state)
{
    lb_relay_t *lb = *state;
    lb_conn_t *c = answer(lb, on_error_retry, 1);
    assert_int_equal(c->status, 503);
    assert_string_equal(c->req.res.reason, "Service Unavailable");
    assert_security_headers(c, 1);
    assert_int_equal(lb_header_count(c, "retry-after"), 1);
    lb_assert_header(c, "retry-after", "7");
    assert_string_equal(c->body, "{\"error\":\"temporarily_unavailable\",\"error_description\":\"the store is down\"}");
    assert_int_equal(c->req.res.content_length, c->body_len);
    lb_conn_free(c);

    c = answer(lb, on_error_retry_1, 1);
    assert_int_equal(c->status, 429);
    assert_string_equal(c->req.res.reason, "Too Many Requests");
    lb_assert_header(c, "retry-after", "1");
    lb_conn_free(c);

    c = answer(lb, on_error, 1);
    assert_int_equal(c->status, 409);
    assert_string_equal(c->req.res.reason, "Conflict");
    assert_null(lb_header(c, "retry-after"));
    lb_assert_json_error(c, 409, "conflict");
    lb_conn_free(c);

    c = answer(lb, on_error_too_long, 1);
    assert_int_equal(c->status, 400);
    lb_assert_json_error(c, 400, "server_error");
    assert_int_equal(c->req.res.content_length, c->body_len);
    lb_conn_free(c);
}

/* 1 if a request whose Content-Type is value (NULL: none) is of the media type */
static int type_is(const char *value, const char *type)
{
    h2o_req_t req;
    h2o_init_request(&req, NULL, NULL);
    if (value != NULL)
        h2o_add_header(&req.pool, &req.headers, H2O_TOKEN_CONTENT_TYPE, NULL, value, strlen(value));
    int is = relay_content_type_is(&req, type);
    h2o_mem_clear_pool(&req.pool);
    return is;
}

static void test_content_type_is(void **state)
{
    (void)state;
    const char *json = "application/json";
    assert_true(type_is("application/json", json));
    assert_true(type_is("application/json; charset=utf-8", json));
    assert_true(type_is("application/json;charset=UTF-8", json));
    assert_true(type_is("application/json ; charset=utf-8", json));
    assert_true(type_is("application/json\t;x=y", json));
    assert_true(type_is("Application/JSON", json));
    assert_true(type_is("APPLICATION/JSON; CHARSET=UTF-8", json));
    assert_false(type_is(NULL, json));
    assert_false(type_is("", json));
    assert_false(type_is(";", json));
    assert_false(type_is("application/jso", json));
    assert_false(type_is("application/jsonx", json));
    assert_false(type_is("application/json-patch+json", json));
    assert_false(type_is("application/problem+json", json));
    assert_false(type_is("text/json", json));
    assert_false(type_is("text/plain", json));
    assert_false(type_is(" application/json", json));
    assert_false(type_is("application/x-www-form-urlencoded", json));

    const char *form = "application/x-www-form-urlencoded";
    assert_true(type_is("application/x-www-form-urlencoded", form));
    assert_true(type_is("application/x-www-form-urlencoded; charset=UTF-8", form));
    assert_true(type_is("Application/X-WWW-Form-Urlencoded", form));
    assert_false(type_is("multipart/form-data; boundary=x", form));
    assert_false(type_is("application/json", form));
}

static void test_status_reason(void **state)
{
    (void)state;
    static const struct {
        int status;
        const char *reason;
    } table[] = {{200, "OK"},
                 {201, "Created"},
                 {202, "Accepted"},
                 {204, "No Content"},
                 {303, "See Other"},
                 {400, "Bad Request"},
                 {401, "Unauthorized"},
                 {403, "Forbidden"},
                 {404, "Not Found"},
                 {405, "Method Not Allowed"},
                 {409, "Conflict"},
                 {410, "Gone"},
                 {413, "Payload Too Large"},
                 {414, "URI Too Long"},
                 {415, "Unsupported Media Type"},
                 {429, "Too Many Requests"},
                 {500, "Internal Server Error"},
                 {503, "Service Unavailable"}};
    for (size_t i = 0; i != sizeof(table) / sizeof(table[0]); ++i)
        assert_string_equal(relay_status_reason(table[i].status), table[i].reason);
    assert_string_equal(relay_status_reason(0), "Unknown");
    assert_string_equal(relay_status_reason(299), "Unknown");
    assert_string_equal(relay_status_reason(999), "Unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_html, setup, teardown),
        cmocka_unit_test_setup_teardown(test_html_own_csp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redirect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error, setup, teardown),
        cmocka_unit_test(test_content_type_is),
        cmocka_unit_test(test_status_reason),
    };
    return cmocka_run_group_tests_name("respond", tests, NULL, NULL);
}
