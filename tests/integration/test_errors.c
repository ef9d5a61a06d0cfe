/* test_errors.c: every documented error status of protocol.md for bad input, over HTTP/1.1 and HTTP/2 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"

static rly_relay_t relay;

static int group_setup(void **state)
{
    (void)state;
    static const char *const extra[] = {"--rate-limit", "0", "--allow-as", "auth.atlassian.com", NULL};
    return rly_relay_start(&relay, extra);
}

static int group_teardown(void **state)
{
    (void)state;
    return rly_relay_finish(&relay);
}

static const char *const json_ct[] = {"Content-Type: application/json", NULL};

static rly_response_t *post_sessions(int v, const char *const *hdrs, const char *body, size_t len)
{
    rly_request_t q = {
        .method = "POST", .url = rly_url(&relay, "/v1/sessions"), .headers = hdrs, .body = body, .body_len = len, .version = v};
    return rly_do(&q);
}

/* an API error: status, application/json, {"error": code, "error_description": "..."} (code NULL: any) */
static void expect_api_error_at(const rly_response_t *res, long status, const char *code, int v, const char *what, int line)
{
    if (res->status != status)
        fail_msg("line %d: %s: expected %ld, got %ld %s; body: %.300s", line, what, status, res->status, res->error, res->body);
    if (res->version != v)
        fail_msg("line %d: %s: wrong HTTP version %d", line, what, res->version);
    const char *ct = rly_header(res, "Content-Type");
    if (ct == NULL || strncmp(ct, "application/json", 16) != 0)
        fail_msg("line %d: %s: error body is not application/json (%s)", line, what, ct != NULL ? ct : "no Content-Type");
    if (!rly_is_error_body(res, code))
        fail_msg("line %d: %s: expected {\"error\": \"%s\", \"error_description\": ...}, got %.300s", line, what,
                 code != NULL ? code : "*", res->body);
}
#define expect_api_error(res, status, code, v, what) expect_api_error_at(res, status, code, v, what, __LINE__)

/* a callback answer that is an error: status, an HTML page, neither code nor state in it */
static void expect_cb_error_at(const rly_response_t *res, long status, int v, const char *code, const char *st, const char *what,
                               int line)
{
    if (res->status != status)
        fail_msg("line %d: %s: expected %ld, got %ld %s; body: %.300s", line, what, status, res->status, res->error, res->body);
    if (res->version != v)
        fail_msg("line %d: %s: wrong HTTP version %d", line, what, res->version);
    const char *ct = rly_header(res, "Content-Type");
    if (ct == NULL || strncmp(ct, "text/html", 9) != 0)
        fail_msg("line %d: %s: a callback answer must be an HTML page or a 303, got Content-Type %s", line, what,
                 ct != NULL ? ct : "(none)");
    if (rly_header(res, "Location") != NULL)
        fail_msg("line %d: %s: an error page with a Location header", line, what);
    if (code != NULL && *code != '\0' && rly_response_contains(res, code))
        fail_msg("line %d: %s: the response carries the code", line, what);
    if (st != NULL && *st != '\0' && rly_response_contains(res, st))
        fail_msg("line %d: %s: the response carries the state", line, what);
}
#define expect_cb_error(res, status, v, code, st, what) expect_cb_error_at(res, status, v, code, st, what, __LINE__)

/* nothing was stored: the session still answers 202 pending */
static void expect_still_pending_at(const rly_session_t *s, int v, const char *what, int line)
{
    rly_response_t *p = rly_pickup(s, v, -1);
    if (p->status != 202)
        fail_msg("line %d: after %s the session should still be pending (202), got %ld: %.300s", line, what, p->status, p->body);
    RLY_EXPECT_STR(rly_jstr(rly_json(p), "status"), "pending");
}
#define expect_still_pending(s, v, what) expect_still_pending_at(s, v, what, __LINE__)

/* ---- POST /v1/sessions ---- */

static void test_create_not_json(void **state)
{
    int v = rly_version(state);
    const char *bodies[] = {"not json",
                            "{",
                            "",
                            "{\"authorization_server\": \"" RLY_TEST_AS "\"} trailing",
                            "{\"authorization_server\": \"" RLY_TEST_AS "\",}",
                            "{'authorization_server': '" RLY_TEST_AS "'}",
                            "[]",
                            "null",
                            "\"" RLY_TEST_AS "\"",
                            "{\"authorization_server\": \"https://auth.atlassian.com/\xff\xfe\"}"};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        expect_api_error(post_sessions(v, json_ct, bodies[i], strlen(bodies[i])), 400, "invalid_request", v, bodies[i]);
}

static void test_create_too_deep(void **state)
{
    int v = rly_version(state);
    size_t depths[] = {20, 64, 1000};
    for (size_t i = 0; i < 3; i++) {
        char *body = rly_strf("{\"authorization_server\": \"%s\", \"x\": %s1%s}", RLY_TEST_AS, rly_repeat('[', depths[i]),
                              rly_repeat(']', depths[i]));
        expect_api_error(post_sessions(v, json_ct, body, strlen(body)), 400, "invalid_request", v, "deep nesting");
    }
    /* shallow unknown members are fine */
    char *body = rly_strf("{\"authorization_server\": \"%s\", \"x\": [[[1]]]}", RLY_TEST_AS);
    RLY_EXPECT(post_sessions(v, json_ct, body, strlen(body)), 201, v);
}

static void test_create_wrong_types(void **state)
{
    int v = rly_version(state);
    const char *bodies[] = {
        "{}",
        "{\"return_uri\": \"" RLY_TEST_RETURN "\"}",
        "{\"authorization_server\": 5}",
        "{\"authorization_server\": null}",
        "{\"authorization_server\": true}",
        "{\"authorization_server\": [\"" RLY_TEST_AS "\"]}",
        "{\"authorization_server\": {\"url\": \"" RLY_TEST_AS "\"}}",
        "{\"authorization_server\": \"" RLY_TEST_AS "\", \"return_uri\": true}",
        "{\"authorization_server\": \"" RLY_TEST_AS "\", \"return_uri\": 1}",
        "{\"authorization_server\": \"" RLY_TEST_AS "\", \"ttl\": \"600\"}",
        "{\"authorization_server\": \"" RLY_TEST_AS "\", \"ttl\": 120.5}",
        "{\"authorization_server\": \"" RLY_TEST_AS "\", \"ttl\": true}",
        "{\"authorization_server\": \"" RLY_TEST_AS "\", \"seal_key\": 12}",
        "{\"authorization_server\": \"" RLY_TEST_AS "\", \"seal_key\": [\"x\"]}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        expect_api_error(post_sessions(v, json_ct, bodies[i], strlen(bodies[i])), 400, "invalid_request", v, bodies[i]);
}

static void test_create_bad_urls(void **state)
{
    int v = rly_version(state);
    const char *as[] = {
        "not a url",
        "auth.atlassian.com/authorize",
        "/authorize",
        "ftp://auth.atlassian.com/authorize",
        "javascript:alert(1)",
        "https://",
        "https:///authorize",
        "http://auth.atlassian.com/authorize", /* plain http to a non-loopback host */
        "https://auth.atlassian.com/authorize#frag",
        "https://auth.atlas sian.com/authorize",
    };
    for (size_t i = 0; i < sizeof(as) / sizeof(as[0]); i++) {
        char *body = rly_strf("{\"authorization_server\": \"%s\"}", as[i]);
        expect_api_error(post_sessions(v, json_ct, body, strlen(body)), 400, "invalid_request", v, body);
    }
    const char *ret[] = {
        "http://qorus.example.com:8011/grant", /* plain http to a non-loopback host */
        "https://qorus.example.com:8011/grant#tab",
        "/grant",
        "qorus.example.com/grant",
        "javascript:alert(1)",
        "data:text/html,hello",
        "ftp://qorus.example.com/grant",
        "https://",
    };
    for (size_t i = 0; i < sizeof(ret) / sizeof(ret[0]); i++) {
        char *body = rly_strf("{\"authorization_server\": \"%s\", \"return_uri\": \"%s\"}", RLY_TEST_AS, ret[i]);
        expect_api_error(post_sessions(v, json_ct, body, strlen(body)), 400, "invalid_request", v, body);
    }
    /* return_uri: at most 2048 bytes */
    const char *prefix = "https://qorus.example.com/grant?x=";
    char *ok = rly_strf("%s%s", prefix, rly_repeat('a', 2048 - strlen(prefix)));
    char *body = rly_strf("{\"authorization_server\": \"%s\", \"return_uri\": \"%s\"}", RLY_TEST_AS, ok);
    RLY_EXPECT(post_sessions(v, json_ct, body, strlen(body)), 201, v);
    char *too_long = rly_strf("%s%s", prefix, rly_repeat('a', 2049 - strlen(prefix)));
    body = rly_strf("{\"authorization_server\": \"%s\", \"return_uri\": \"%s\"}", RLY_TEST_AS, too_long);
    expect_api_error(post_sessions(v, json_ct, body, strlen(body)), 400, "invalid_request", v, "return_uri of 2049 bytes");

    /* seal_key: base64url of exactly 32 bytes */
    const char *keys[] = {"",
                          "abc",
                          "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                          "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                          "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",
                          "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        body = rly_strf("{\"authorization_server\": \"%s\", \"seal_key\": \"%s\"}", RLY_TEST_AS, keys[i]);
        expect_api_error(post_sessions(v, json_ct, body, strlen(body)), 400, "invalid_request", v, body);
    }
}

static void test_create_http_loopback_as_not_in_production(void **state)
{
    int v = rly_version(state);
    /* http AS only to loopback AND only in dev mode; this relay is not --dev (and 127.0.0.1 is not allow-listed) */
    const char *body = "{\"authorization_server\": \"http://127.0.0.1:9/authorize\"}";
    rly_response_t *res = post_sessions(v, json_ct, body, strlen(body));
    if (res->status != 400 && res->status != 403)
        fail_msg("http loopback AS outside dev mode: expected 400 (or 403), got %ld", res->status);
    assert_true(rly_is_error_body(res, res->status == 400 ? "invalid_request" : "authorization_server_not_allowed"));
}

static void test_create_ttl_bounds(void **state)
{
    int v = rly_version(state);
    const char *bad[] = {"59", "601", "0", "-1", "-600", "86400", "4294967356", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *body = rly_strf("{\"authorization_server\": \"%s\", \"ttl\": %s}", RLY_TEST_AS, bad[i]);
        expect_api_error(post_sessions(v, json_ct, body, strlen(body)), 400, "invalid_request", v, body);
    }
    const char *good[] = {"60", "600"};
    for (size_t i = 0; i < 2; i++) {
        rly_session_t s;
        RLY_EXPECT(rly_create(&relay, v, rly_strf("{\"authorization_server\": \"%s\", \"ttl\": %s}", RLY_TEST_AS, good[i]), &s),
                   201, v);
        assert_true(s.expires_in <= strtol(good[i], NULL, 10) && s.expires_in >= strtol(good[i], NULL, 10) - 2);
    }
}

static void test_create_allow_list(void **state)
{
    int v = rly_version(state);
    const char *denied[] = {"https://evil.example/authorize", "https://auth.atlassian.com.evil.example/authorize",
                            "https://evil-auth.atlassian.com/authorize", "https://atlassian.com/authorize",
                            "https://login.microsoftonline.com/common/oauth2/v2.0/authorize"};
    for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
        char *body = rly_strf("{\"authorization_server\": \"%s\", \"return_uri\": \"%s\"}", denied[i], RLY_TEST_RETURN);
        expect_api_error(post_sessions(v, json_ct, body, strlen(body)), 403, "authorization_server_not_allowed", v, denied[i]);
    }
    /* userinfo must not smuggle a host past the allow-list */
    const char *trick = "{\"authorization_server\": \"https://auth.atlassian.com@evil.example/authorize\"}";
    rly_response_t *res = post_sessions(v, json_ct, trick, strlen(trick));
    if (res->status != 400 && res->status != 403)
        fail_msg("AS with userinfo auth.atlassian.com@evil.example: expected 403 or 400, got %ld", res->status);
    /* the host is compared lower-cased */
    const char *upper = "{\"authorization_server\": \"https://AUTH.Atlassian.COM/authorize\"}";
    RLY_EXPECT(post_sessions(v, json_ct, upper, strlen(upper)), 201, v);

    /* discovery lists the allow-list */
    rly_request_t q = {.url = rly_url(&relay, "/.well-known/authrelay"), .version = v};
    rly_response_t *d = rly_do(&q);
    RLY_EXPECT(d, 200, v);
    json_object *a;
    assert_true(json_object_object_get_ex(rly_json(d), "authorization_servers", &a));
    assert_true(json_object_is_type(a, json_type_array));
    assert_int_equal(json_object_array_length(a), 1);
    RLY_EXPECT_STR(json_object_get_string(json_object_array_get_idx(a, 0)), "auth.atlassian.com");
}

/* a valid creation body of exactly n bytes */
static char *body_of_size(size_t n)
{
    char *head = rly_strf("{\"authorization_server\": \"%s\", \"pad\": \"", RLY_TEST_AS);
    size_t fixed = strlen(head) + 2;
    return rly_strf("%s%s\"}", head, rly_repeat('p', n - fixed));
}

static void test_create_body_too_large(void **state)
{
    int v = rly_version(state);
    char *ok = body_of_size(8192);
    assert_int_equal(strlen(ok), 8192);
    RLY_EXPECT(post_sessions(v, json_ct, ok, 8192), 201, v);
    size_t sizes[] = {8193, 65536, 1 << 20};
    for (size_t i = 0; i < 3; i++) {
        char *big = body_of_size(sizes[i]);
        rly_response_t *res = post_sessions(v, json_ct, big, sizes[i]);
        RLY_EXPECT(res, 413, v);
        const char *ct = rly_header(res, "Content-Type");
        if (ct != NULL && strncmp(ct, "application/json", 16) == 0)
            assert_true(rly_is_error_body(res, NULL));
    }
}

static void test_create_content_type(void **state)
{
    int v = rly_version(state);
    char *body = rly_strf("{\"authorization_server\": \"%s\"}", RLY_TEST_AS);
    const char *bad[] = {"Content-Type: text/plain", "Content-Type: application/x-www-form-urlencoded", "Content-Type: text/json",
                         "Content-Type: application/jsonx", "Content-Type: multipart/form-data; boundary=x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *hdrs[] = {bad[i], NULL};
        rly_response_t *res = post_sessions(v, hdrs, body, strlen(body));
        RLY_EXPECT(res, 415, v);
        const char *ct = rly_header(res, "Content-Type");
        if (ct != NULL && strncmp(ct, "application/json", 16) == 0)
            assert_true(rly_is_error_body(res, NULL));
    }
    /* a parameter does not change the media type */
    const char *hdrs[] = {"Content-Type: application/json; charset=utf-8", NULL};
    RLY_EXPECT(post_sessions(v, hdrs, body, strlen(body)), 201, v);
}

static void test_create_rate_limited(void **state)
{
    (void)state;
    rly_relay_t limited;
    static const char *const extra[] = {"--rate-limit", "5", NULL};
    assert_int_equal(rly_relay_start(&limited, extra), 0);
    rly_session_t s[5];
    for (int i = 0; i < 5; i++)
        RLY_EXPECT(rly_create(&limited, i % 2 ? RLY_H2 : RLY_H1, "{\"authorization_server\": \"" RLY_TEST_AS "\"}", &s[i]), 201, 0);
    for (int v = RLY_H1; v <= RLY_H2; v++) {
        rly_response_t *res = rly_create(&limited, v, "{\"authorization_server\": \"" RLY_TEST_AS "\"}", NULL);
        expect_api_error(res, 429, "slow_down", v, "6th creation within a minute");
        const char *ra = rly_header(res, "Retry-After");
        assert_non_null(ra);
        char *end;
        long secs = strtol(ra, &end, 10);
        if (end == ra || *end != '\0' || secs < 1 || secs > 60)
            fail_msg("Retry-After should be delay-seconds within a minute, got \"%s\"", ra);
    }
    /* pickups are not session creations nor callbacks: still served */
    RLY_EXPECT(rly_pickup(&s[0], RLY_H1, -1), 202, RLY_H1);
    RLY_EXPECT(rly_pickup(&s[1], RLY_H2, -1), 202, RLY_H2);
    assert_int_equal(rly_relay_stop(&limited), 0);
    rly_relay_cleanup(&limited);
}

/* ---- callback ---- */

/* tmpl with every "{S}" replaced by st; arena-owned */
static char *subst_state(const char *tmpl, const char *st)
{
    char *out = rly_strf("%s", "");
    const char *p = tmpl, *hit;
    while ((hit = strstr(p, "{S}")) != NULL) {
        out = rly_strf("%s%.*s%s", out, (int)(hit - p), p, st);
        p = hit + 3;
    }
    return rly_strf("%s%s", out, p);
}

/* a bad callback for a fresh session: 400, an HTML page without code or state, nothing stored */
static void cb_bad(int v, const char *what, const char *tmpl, const char *code)
{
    rly_session_t s;
    rly_create_ok(&relay, v, &s);
    char *query = subst_state(tmpl, s.state);
    rly_response_t *res = rly_callback(&relay, v, NULL, query);
    expect_cb_error(res, 400, v, code, s.state, what);
    expect_still_pending(&s, v, what);
}

static void test_cb_state_missing_or_repeated(void **state)
{
    int v = rly_version(state);
    rly_session_t s;
    rly_create_ok(&relay, v, &s);
    expect_cb_error(rly_callback(&relay, v, NULL, "code=c0de-missing-state"), 400, v, "c0de-missing-state", NULL, "no state");
    expect_cb_error(rly_callback(&relay, v, NULL, NULL), 400, v, NULL, NULL, "no query at all");
    expect_cb_error(rly_callback(&relay, v, NULL, "code=c0de-empty-state&state="), 400, v, "c0de-empty-state", NULL, "empty state");
    expect_still_pending(&s, v, "callbacks without a state");
    cb_bad(v, "state twice", "code=c0de-state-twice&state={S}&state={S}", "c0de-state-twice");
    rly_session_t other;
    rly_create_ok(&relay, v, &other);
    char *q = rly_strf("code=c0de-two-states&state=%s&state=%s", s.state, other.state);
    expect_cb_error(rly_callback(&relay, v, NULL, q), 400, v, "c0de-two-states", s.state, "two different states");
    expect_still_pending(&s, v, "two states");
    expect_still_pending(&other, v, "two states");
}

static void test_cb_state_forged_or_truncated(void **state)
{
    int v = rly_version(state);
    rly_session_t s;
    rly_create_ok(&relay, v, &s);
    size_t n = strlen(s.state);
    assert_true(n > 8);
    /* forged: same charset and length, one MAC character changed */
    char *forged = rly_strf("%s", s.state);
    forged[n - 6] = forged[n - 6] == 'A' ? 'B' : 'A';
    expect_cb_error(rly_callback(&relay, v, NULL, rly_query("code", "c0de-forged", "state", forged, NULL)), 400, v, "c0de-forged",
                    s.state, "forged state");
    /* forged: the session part changed */
    char *forged2 = rly_strf("%s", s.state);
    forged2[3] = forged2[3] == 'x' ? 'y' : 'x';
    expect_cb_error(rly_callback(&relay, v, NULL, rly_query("code", "c0de-forged2", "state", forged2, NULL)), 400, v,
                    "c0de-forged2", s.state, "state with another session id");
    /* truncated */
    size_t cuts[] = {1, 4, n / 2};
    for (size_t i = 0; i < 3; i++) {
        char *t = rly_strf("%.*s", (int)(n - cuts[i]), s.state);
        expect_cb_error(rly_callback(&relay, v, NULL, rly_query("code", "c0de-trunc", "state", t, NULL)), 400, v, "c0de-trunc",
                        NULL, "truncated state");
    }
    /* extended, and outside the charset */
    expect_cb_error(rly_callback(&relay, v, NULL, rly_query("code", "c0de-ext", "state", rly_strf("%sA", s.state), NULL)), 400, v,
                    "c0de-ext", NULL, "state with an extra character");
    expect_cb_error(
        rly_callback(&relay, v, NULL, rly_query("code", "c0de-plus", "state", rly_strf("%.*s+", (int)(n - 1), s.state), NULL)), 400,
        v, "c0de-plus", NULL, "state with a character outside the charset");
    expect_cb_error(rly_callback(&relay, v, NULL, rly_query("code", "c0de-long", "state", rly_repeat('A', 129), NULL)), 400, v,
                    "c0de-long", NULL, "state of 129 characters");
    expect_still_pending(&s, v, "forged and truncated states");
}

static void test_cb_code_error_combinations(void **state)
{
    int v = rly_version(state);
    cb_bad(v, "code and error", "code=c0de-and-error&error=access_denied&state={S}", "c0de-and-error");
    cb_bad(v, "neither code nor error", "state={S}", NULL);
    cb_bad(v, "neither code nor error but a description", "state={S}&error_description=nothing", NULL);
    cb_bad(v, "code twice", "code=c0de-twice&state={S}&code=c0de-twice", "c0de-twice");
    cb_bad(v, "two different codes", "code=c0de-one&state={S}&code=c0de-two", "c0de-one");
    cb_bad(v, "error twice", "error=access_denied&state={S}&error=access_denied", NULL);
}

static void test_cb_sizes_and_charsets(void **state)
{
    int v = rly_version(state);
    char *code = rly_repeat('c', 8193);
    cb_bad(v, "code of 8193 bytes", rly_strf("code=%s&state={S}", code), code);
    cb_bad(v, "error with a quote", "error=access%22denied&state={S}", NULL);
    cb_bad(v, "error with a backslash", "error=access%5Cdenied&state={S}", NULL);
    cb_bad(v, "error with a control character", "error=access%0Adenied&state={S}", NULL);
    cb_bad(v, "error with a non-ASCII byte", "error=access%C3%A9denied&state={S}", NULL);
    cb_bad(v, "error_description of 1025 bytes",
           rly_strf("error=access_denied&error_description=%s&state={S}", rly_repeat('d', 1025)), NULL);

    /* the limits themselves are fine: 1024-byte description */
    rly_session_t s;
    rly_create_ok(&relay, v, &s);
    char *desc = rly_repeat('d', 1024);
    RLY_EXPECT(
        rly_callback(&relay, v, NULL, rly_query("error", "access_denied", "error_description", desc, "state", s.state, NULL)), 303,
        v);
    rly_response_t *p = rly_pickup(&s, v, -1);
    RLY_EXPECT(p, 200, v);
    RLY_EXPECT_STR(rly_jstr(rly_json(p), "error_description"), desc);
}

static void test_cb_unknown_session(void **state)
{
    int v = rly_version(state);
    rly_session_t s;
    rly_create_ok(&relay, v, &s);
    RLY_EXPECT(rly_delete(&s, v), 204, v);
    expect_cb_error(rly_callback(&relay, v, NULL, rly_query("code", "c0de-gone", "state", s.state, NULL)), 410, v, "c0de-gone",
                    s.state, "state of a deleted session");
    expect_cb_error(rly_callback(&relay, v, NULL, rly_query("error", "access_denied", "state", s.state, NULL)), 410, v, NULL,
                    s.state, "error for a deleted session");
    RLY_EXPECT(rly_pickup(&s, v, -1), 404, v);
}

static void test_cb_replay(void **state)
{
    int v = rly_version(state);
    rly_session_t s;
    rly_create_ok(&relay, v, &s);
    char *first = rly_token("first-"), *second = rly_token("second-");
    RLY_EXPECT(rly_callback(&relay, v, NULL, rly_query("code", first, "state", s.state, NULL)), 303, v);
    expect_cb_error(rly_callback(&relay, v, NULL, rly_query("code", second, "state", s.state, NULL)), 409, v, second, s.state,
                    "second code");
    expect_cb_error(rly_callback(&relay, v, NULL, rly_query("code", first, "state", s.state, NULL)), 409, v, first, s.state,
                    "same code again");
    expect_cb_error(rly_callback(&relay, v, NULL, rly_query("error", "access_denied", "state", s.state, NULL)), 409, v, NULL,
                    s.state, "error after success");
    rly_response_t *p = rly_pickup(&s, v, -1);
    RLY_EXPECT(p, 200, v);
    RLY_EXPECT_STR(rly_jstr(rly_json(p), "status"), "authorized");
    RLY_EXPECT_STR(rly_jstr(rly_json(p), "code"), first);
    /* after the pickup too */
    expect_cb_error(rly_callback(&relay, v, NULL, rly_query("code", second, "state", s.state, NULL)), 409, v, second, s.state,
                    "code after pickup");
    p = rly_pickup(&s, v, -1);
    RLY_EXPECT(p, 200, v);
    RLY_EXPECT_STR(rly_jstr(rly_json(p), "code"), first);
}

/* "state=<S>&code=<code>&pad=ppp..." of exactly n bytes */
static char *padded_query(const char *st, const char *code, size_t n)
{
    char *base = rly_strf("state=%s&code=%s&pad=", st, code);
    return rly_strf("%s%s", base, rly_repeat('p', n - strlen(base)));
}

static void test_cb_query_limit_boundaries(void **state)
{
    int v = rly_version(state);
    static const char *const hdrs[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    rly_session_t s;
    /* a query of exactly 16 KiB is served; one byte more is 414 */
    rly_create_ok(&relay, v, &s);
    RLY_EXPECT(rly_callback(&relay, v, NULL, padded_query(s.state, "c0de-16k", 16385)), 414, v);
    expect_still_pending(&s, v, "a query of 16385 bytes");
    rly_response_t *res = rly_callback(&relay, v, NULL, padded_query(s.state, "c0de-16k", 16384));
    RLY_EXPECT(res, 303, v);
    /* the same for a form_post body: 16 KiB served, one byte more 413 */
    rly_create_ok(&relay, v, &s);
    char *body = padded_query(s.state, "c0de-form-16k", 16385);
    rly_request_t q = {.method = "POST",
                       .url = rly_url(&relay, "/qorus-oauth2-redirect"),
                       .headers = hdrs,
                       .body = body,
                       .body_len = strlen(body),
                       .version = v};
    RLY_EXPECT(rly_do(&q), 413, v);
    expect_still_pending(&s, v, "a form body of 16385 bytes");
    q.body = body = padded_query(s.state, "c0de-form-16k", 16384);
    q.body_len = strlen(body);
    RLY_EXPECT(rly_do(&q), 303, v);
    RLY_EXPECT_STR(rly_jstr(rly_json(rly_pickup(&s, v, -1)), "code"), "c0de-form-16k");
}

static void test_cb_query_too_long(void **state)
{
    int v = rly_version(state);
    rly_session_t s;
    rly_create_ok(&relay, v, &s);
    char *code = rly_repeat('q', 16384);
    rly_response_t *res = rly_callback(&relay, v, NULL, rly_query("state", s.state, "code", code, NULL));
    assert_int_equal(res->status, 414);
    assert_false(rly_response_contains(res, s.state));
    expect_still_pending(&s, v, "a query string over 16 KiB");

    /* form_post body over the same limit: 413 */
    static const char *const hdrs[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    char *body = rly_query("state", s.state, "code", code, NULL);
    rly_request_t q = {.method = "POST",
                       .url = rly_url(&relay, "/qorus-oauth2-redirect"),
                       .headers = hdrs,
                       .body = body,
                       .body_len = strlen(body),
                       .version = v};
    res = rly_do(&q);
    assert_int_equal(res->status, 413);
    assert_false(rly_response_contains(res, s.state));
    expect_still_pending(&s, v, "a form body over 16 KiB");
}

/* ---- pickup ---- */

static void expect_unauthorized(const rly_response_t *res, int v, const char *what)
{
    if (res->status != 401)
        fail_msg("%s: expected 401, got %ld: %.300s", what, res->status, res->body);
    assert_int_equal(res->version, v);
    const char *w = rly_header(res, "WWW-Authenticate");
    if (w == NULL || strncmp(w, "Bearer", 6) != 0)
        fail_msg("%s: 401 without WWW-Authenticate: Bearer (got %s)", what, w != NULL ? w : "none");
    const char *ct = rly_header(res, "Content-Type");
    if (ct != NULL && strncmp(ct, "application/json", 16) == 0 && !rly_is_error_body(res, NULL))
        fail_msg("%s: malformed error body %.300s", what, res->body);
}

static rly_response_t *get_with(const char *url, int v, const char *method, const char *auth)
{
    const char *hdrs[] = {auth, NULL};
    rly_request_t q = {.method = method, .url = url, .headers = auth != NULL ? hdrs : NULL, .version = v};
    return rly_do(&q);
}

static void test_pickup_unauthorized(void **state)
{
    int v = rly_version(state);
    rly_session_t s, other;
    rly_create_ok(&relay, v, &s);
    rly_create_ok(&relay, v, &other);
    const char *bad[] = {
        NULL,
        "Authorization: Bearer",
        "Authorization: Bearer ",
        rly_strf("Authorization: Bearer %s", rly_repeat('A', 43)),
        rly_strf("Authorization: Bearer %s", other.poll_token),
        rly_strf("Authorization: Bearer %.42s", s.poll_token),
        rly_strf("Authorization: Bearer %sA", s.poll_token),
        rly_strf("Authorization: Basic %s", s.poll_token),
        rly_strf("Authorization: %s", s.poll_token),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_unauthorized(get_with(s.poll_url, v, "GET", bad[i]), v, bad[i] != NULL ? bad[i] : "no Authorization");
        expect_unauthorized(get_with(s.poll_url, v, "DELETE", bad[i]), v, bad[i] != NULL ? bad[i] : "DELETE, no Authorization");
    }
    /* nothing was deleted, and the right token still works */
    RLY_EXPECT(rly_pickup(&s, v, -1), 202, v);
    RLY_EXPECT(rly_pickup(&other, v, -1), 202, v);
}

static void test_pickup_unknown_session(void **state)
{
    int v = rly_version(state);
    rly_session_t s;
    rly_create_ok(&relay, v, &s);
    const char *auth = rly_strf("Authorization: Bearer %s", s.poll_token);
    /* well-formed ids of no session, and garbage ids */
    const char *ids[] = {"AAAAAAAAAAAAAAAAAAAAAA", rly_token("") /* 24 chars */, "not-a-session", "x",
                         rly_repeat('A', 200),     "AAAAAAAAAAAAAAAAAAAAA="};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        char *url = rly_url(&relay, rly_strf("/v1/sessions/%s", ids[i]));
        rly_response_t *res = get_with(url, v, "GET", auth);
        expect_api_error(res, 404, NULL, v, url);
        expect_api_error(get_with(url, v, "DELETE", auth), 404, NULL, v, url);
        /* decided: authentication first: no bearer is 401 whatever the id */
        expect_unauthorized(get_with(url, v, "GET", NULL), v, url);
    }
    /* the same id with one character changed */
    char *near = rly_strf("%s", s.session);
    near[5] = near[5] == 'A' ? 'B' : 'A';
    expect_api_error(get_with(rly_url(&relay, rly_strf("/v1/sessions/%s", near)), v, "GET", auth), 404, NULL, v, "near id");
}

static void test_pickup_wait_clamped(void **state)
{
    int v = rly_version(state);
    rly_session_t s;
    rly_create_ok(&relay, v, &s);
    char *code = rly_token("code-");
    /* wait_max is 30: a wait of 31 is clamped to 30 and Preference-Applied says so; the callback ends the wait early */
    const char *hdrs[] = {rly_strf("Authorization: Bearer %s", s.poll_token), "Prefer: wait=31", NULL};
    rly_request_t reqs[2] = {
        {.url = s.poll_url, .headers = hdrs, .version = v, .timeout_ms = 40000},
        {.url = rly_strf("%s?%s", rly_url(&relay, "/qorus-oauth2-redirect"), rly_query("code", code, "state", s.state, NULL)),
         .version = v,
         .start_ms = 300},
    };
    rly_response_t res[2];
    assert_int_equal(rly_http_multi(reqs, 2, res, 0, NULL, NULL), 0);
    RLY_EXPECT(&res[1], 303, v);
    RLY_EXPECT(&res[0], 200, v);
    RLY_EXPECT_STR(rly_header(&res[0], "Preference-Applied"), "wait=30");
    assert_true(res[0].done_at < 5.0);
    rly_response_free(&res[0]);
    rly_response_free(&res[1]);
}

static void test_pickup_wait_malformed(void **state)
{
    int v = rly_version(state);
    rly_session_t s;
    rly_create_ok(&relay, v, &s);
    const char *prefs[] = {"Prefer: wait=abc", "Prefer: wait=-1", "Prefer: wait=", "Prefer: respond-async"};
    for (size_t i = 0; i < sizeof(prefs) / sizeof(prefs[0]); i++) {
        const char *hdrs[] = {rly_strf("Authorization: Bearer %s", s.poll_token), prefs[i], NULL};
        rly_request_t q = {.url = s.poll_url, .headers = hdrs, .version = v, .timeout_ms = 10000};
        rly_response_t *res = rly_do(&q);
        /* RFC 7240: a preference that cannot be understood is ignored; never an error, never a long wait */
        if (res->status != 202)
            fail_msg("%s: expected 202, got %ld", prefs[i], res->status);
        if (res->elapsed > 1.5)
            fail_msg("%s: waited %.2f s", prefs[i], res->elapsed);
    }
}

/* ---- methods and paths ---- */

static int allow_has(const char *allow, const char *method)
{
    size_t n = strlen(method);
    for (const char *p = allow; p != NULL && *p != '\0';) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e != '\0' && *e != ',' && *e != ' ')
            e++;
        if ((size_t)(e - p) == n && strncmp(p, method, n) == 0)
            return 1;
        p = e;
    }
    return 0;
}

static void expect_405_at(const rly_response_t *res, int v, const char *const *allowed, const char *const *not_allowed,
                          const char *what, int line)
{
    if (res->status != 405)
        fail_msg("line %d: %s: expected 405, got %ld", line, what, res->status);
    if (res->version != v)
        fail_msg("line %d: %s: wrong HTTP version", line, what);
    const char *allow = rly_header(res, "Allow");
    if (allow == NULL)
        fail_msg("line %d: %s: 405 without Allow", line, what);
    for (size_t i = 0; allowed[i] != NULL; i++)
        if (!allow_has(allow, allowed[i]))
            fail_msg("line %d: %s: Allow \"%s\" lacks %s", line, what, allow, allowed[i]);
    for (size_t i = 0; not_allowed[i] != NULL; i++)
        if (allow_has(allow, not_allowed[i]))
            fail_msg("line %d: %s: Allow \"%s\" lists %s", line, what, allow, not_allowed[i]);
}
#define expect_405(res, v, allowed, not_allowed, what) expect_405_at(res, v, allowed, not_allowed, what, __LINE__)

static void test_methods(void **state)
{
    int v = rly_version(state);
    rly_session_t s;
    rly_create_ok(&relay, v, &s);
    const char *auth = rly_strf("Authorization: Bearer %s", s.poll_token);
    char *coll = rly_url(&relay, "/v1/sessions");
    static const char *const post[] = {"POST", NULL}, *const not_post[] = {"GET", "PUT", "DELETE", "PATCH", NULL};
    static const char *const get_del[] = {"GET", "DELETE", NULL}, *const not_get_del[] = {"POST", "PUT", "PATCH", NULL};
    static const char *const get_post[] = {"GET", "POST", NULL}, *const not_get_post[] = {"PUT", "DELETE", "PATCH", NULL};
    static const char *const get[] = {"GET", NULL}, *const not_get[] = {"POST", "PUT", "DELETE", "PATCH", NULL};

    const char *m_coll[] = {"GET", "PUT", "DELETE", "PATCH"};
    for (size_t i = 0; i < 4; i++) {
        const char *hdrs[] = {"Content-Type: application/json", NULL};
        const char *body = strcmp(m_coll[i], "GET") == 0 || strcmp(m_coll[i], "DELETE") == 0 ? NULL : "{}";
        rly_request_t q = {.method = m_coll[i], .url = coll, .headers = hdrs, .body = body, .body_len = body ? 2 : 0, .version = v};
        expect_405(rly_do(&q), v, post, not_post, rly_strf("%s /v1/sessions", m_coll[i]));
    }
    const char *m_sess[] = {"PATCH", "PUT", "POST"};
    for (size_t i = 0; i < 3; i++) {
        const char *hdrs[] = {auth, "Content-Type: application/json", NULL};
        rly_request_t q = {.method = m_sess[i], .url = s.poll_url, .headers = hdrs, .body = "{}", .body_len = 2, .version = v};
        expect_405(rly_do(&q), v, get_del, not_get_del, rly_strf("%s on a session", m_sess[i]));
    }
    RLY_EXPECT(rly_pickup(&s, v, -1), 202, v); /* untouched */

    const char *cbs[] = {"/qorus-oauth2-redirect", "/v1/callback"};
    for (size_t i = 0; i < 2; i++) {
        rly_request_t q = {.method = "PUT", .url = rly_url(&relay, cbs[i]), .body = "x=1", .body_len = 3, .version = v};
        expect_405(rly_do(&q), v, get_post, not_get_post, rly_strf("PUT %s", cbs[i]));
        rly_request_t d = {.method = "DELETE", .url = rly_url(&relay, cbs[i]), .version = v};
        expect_405(rly_do(&d), v, get_post, not_get_post, rly_strf("DELETE %s", cbs[i]));
    }
    const char *hdrs[] = {"Content-Type: application/json", NULL};
    rly_request_t q = {.method = "POST",
                       .url = rly_url(&relay, "/.well-known/authrelay"),
                       .headers = hdrs,
                       .body = "{}",
                       .body_len = 2,
                       .version = v};
    expect_405(rly_do(&q), v, get, not_get, "POST discovery");
}

static void test_unknown_paths(void **state)
{
    int v = rly_version(state);
    const char *paths[] = {"/",
                           "/nope",
                           "/v1",
                           "/v1/",
                           "/v2/sessions",
                           "/v1/sessionsX",
                           "/qorus-oauth2-redirect/x",
                           "/.well-known/other",
                           "/.well-known/authrelay/x",
                           "/metrics",
                           "/v1/callbacks"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        rly_request_t q = {.url = rly_url(&relay, paths[i]), .version = v};
        rly_response_t *res = rly_do(&q);
        if (res->status != 404)
            fail_msg("GET %s: expected 404, got %ld", paths[i], res->status);
        assert_int_equal(res->version, v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLY_TEST_BOTH(test_create_not_json),
        RLY_TEST_BOTH(test_create_too_deep),
        RLY_TEST_BOTH(test_create_wrong_types),
        RLY_TEST_BOTH(test_create_bad_urls),
        RLY_TEST_BOTH(test_create_http_loopback_as_not_in_production),
        RLY_TEST_BOTH(test_create_ttl_bounds),
        RLY_TEST_BOTH(test_create_allow_list),
        RLY_TEST_BOTH(test_create_body_too_large),
        RLY_TEST_BOTH(test_create_content_type),
        RLY_TEST(test_create_rate_limited),
        RLY_TEST_BOTH(test_cb_state_missing_or_repeated),
        RLY_TEST_BOTH(test_cb_state_forged_or_truncated),
        RLY_TEST_BOTH(test_cb_code_error_combinations),
        RLY_TEST_BOTH(test_cb_sizes_and_charsets),
        RLY_TEST_BOTH(test_cb_unknown_session),
        RLY_TEST_BOTH(test_cb_replay),
        RLY_TEST_BOTH(test_cb_query_too_long),
        RLY_TEST_BOTH(test_cb_query_limit_boundaries),
        RLY_TEST_BOTH(test_pickup_unauthorized),
        RLY_TEST_BOTH(test_pickup_unknown_session),
        RLY_TEST_BOTH(test_pickup_wait_malformed),
        RLY_TEST_BOTH(test_methods),
        RLY_TEST_BOTH(test_unknown_paths),
        RLY_TEST_BOTH(test_pickup_wait_clamped),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
