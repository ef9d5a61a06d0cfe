/* test_bound.c: protocol 1.1 (bound flows) against the real binary, over HTTP/1.1 and HTTP/2: session creation, the
 * confirmation page and its forms, the callback bound to the confirming browser, the locked result, Cancel, the limits */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bind.h"
#include "bound.h"
#include "harness.h"
#include "ids.h"
#include "keys.h"
#include "lock.h"
#include "state.h"

static rly_relay_t relay;

static int group_setup(void **state)
{
    (void)state;
    static const char *const extra[] = {"--rate-limit",       "0", "--allow-client-id", RLY_TEST_CLIENT_ID, "--allow-client-id",
                                        "qorus-other-client", NULL};
    rly_harness_unbound = 0; /* the default: version-1 sessions refused */
    return rly_relay_start(&relay, extra);
}

static int group_teardown(void **state)
{
    (void)state;
    rly_relay_stop(&relay);
    /* everything these flows logged is clean for the auditor */
    char *aout = NULL, *aerr = NULL;
    char *argv[] = {(char *)rly_bin(), "audit", relay.out_path, NULL};
    int audit = rly_run(argv, 10000, &aout, &aerr);
    if (audit != 0)
        fprintf(stderr, "authrelay audit of the 1.1 log exited %d:\n%s%s\n", audit, aout != NULL ? aout : "",
                aerr != NULL ? aerr : "");
    int rc = rly_relay_finish(&relay);
    return audit != 0 ? -1 : rc;
}

/* a pickup's locked answer opened with the release key: exactly the version-1 result object */
static void expect_locked_authorized(const rly_bound_t *b, const char *code, int v)
{
    rly_response_t *p = rly_pickup(&b->s, v, 0);
    RLY_EXPECT(p, 200, v);
    static const char *const locked_keys[] = {"status", "locked", NULL};
    assert_true(rly_jkeys_exactly(rly_json(p), locked_keys));
    assert_false(rly_response_contains(p, code)); /* the code is not readable without the release key */
    json_object *o = rly_bound_open(b, p);
    assert_non_null(o);
    RLY_EXPECT_STR(rly_jstr(o, "status"), "authorized");
    RLY_EXPECT_STR(rly_jstr(o, "code"), code);
    RLY_EXPECT_STR(rly_jstr(o, "state"), b->state);
}

static void test_discovery_says_1_1(void **state)
{
    int v = rly_version(state);
    rly_request_t q = {.url = rly_url(&relay, "/.well-known/authrelay"), .version = v};
    rly_response_t *res = rly_do(&q);
    RLY_EXPECT(res, 200, v);
    RLY_EXPECT_STR(rly_jstr(rly_json(res), "version"), "1.1");
    json_object *u;
    assert_true(json_object_object_get_ex(rly_json(res), "unbound_sessions", &u));
    assert_true(json_object_is_type(u, json_type_boolean));
    assert_false(json_object_get_boolean(u));
}

static void test_create_has_start_url_and_no_state(void **state)
{
    int v = rly_version(state);
    rly_bound_t b;
    rly_response_t *res = rly_bound_create(&relay, v, "\"label\": \"Qorus prod\"", &b);
    RLY_EXPECT(res, 201, v);
    static const char *const keys[] = {"session", "start_url", "poll_url", "poll_token", "expires_in", "redirect_uri", NULL};
    assert_true(rly_jkeys_exactly(rly_json(res), keys));
    RLY_EXPECT_STR(b.start_url, rly_strf("%s/v1/start?t=%s", rly_url(&relay, ""), b.token));
    assert_int_equal(strlen(b.token), RLY_START_TOKEN_LEN);
    assert_true(rly_is_b64url(b.token));
}

static void test_version1_refused_by_default(void **state)
{
    int v = rly_version(state);
    rly_response_t *res =
        rly_create(&relay, v, "{\"authorization_server\": \"" RLY_TEST_AS "\", \"return_uri\": \"" RLY_TEST_RETURN "\"}", NULL);
    RLY_EXPECT(res, 400, v);
    assert_true(rly_is_error_body(res, "invalid_request"));
}

static void test_full_flow(void **state)
{
    int v = rly_version(state);
    rly_bound_t b;
    rly_bound_create_ok(&relay, v, "\"label\": \"Qorus <prod> & \\\"test\\\"\"", &b);

    /* the page: the cookie is set, the destination first, the label escaped and marked unverified */
    rly_response_t *page = rly_bound_start_page(&relay, v, &b);
    RLY_EXPECT(page, 200, v);
    assert_int_equal(strlen(b.cookie), RLY_COOKIE_LEN);
    const char *sc = rly_header(page, "Set-Cookie");
    assert_non_null(sc);
    assert_non_null(strstr(sc, "; Path=/"));
    assert_non_null(strstr(sc, "; Secure"));
    assert_non_null(strstr(sc, "; HttpOnly"));
    assert_non_null(strstr(sc, "; SameSite=None"));
    assert_non_null(strstr(sc, "Max-Age="));
    assert_int_equal(strlen(b.csrf), RLY_CSRF_LEN);
    const char *dest = strstr(page->body, "qorus.<b>example.com</b><b>:8011</b>");
    const char *as = strstr(page->body, "auth.atlassian.com");
    const char *label = strstr(page->body, "Qorus &lt;prod&gt; &amp; &quot;test&quot;");
    assert_non_null(dest);
    assert_non_null(as);
    assert_non_null(label);
    assert_true(dest < as && as < label);
    assert_non_null(strstr(page->body, "read:jira-work offline_access"));
    assert_non_null(strstr(page->body, "not verified"));
    RLY_EXPECT_STR(rly_header(page, "Cross-Origin-Opener-Policy"), "same-origin");
    const char *csp = rly_header(page, "Content-Security-Policy");
    assert_non_null(csp);
    assert_null(strstr(csp, "form-action"));
    assert_non_null(strstr(csp, "default-src 'none'"));

    /* a reload leaves the token usable, and keeps the cookie */
    char cookie[64];
    snprintf(cookie, sizeof(cookie), "%s", b.cookie);
    RLY_EXPECT(rly_bound_start_page(&relay, v, &b), 200, v);
    RLY_EXPECT_STR(b.cookie, cookie);

    /* Continue: 303 to the AS with every parameter, and the state */
    rly_response_t *go = rly_bound_confirm(&relay, v, &b, "continue");
    RLY_EXPECT(go, 303, v);
    assert_true(strncmp(b.location, RLY_TEST_AS "?", strlen(RLY_TEST_AS) + 1) == 0);
    assert_non_null(strstr(b.location, "client_id=" RLY_TEST_CLIENT_ID));
    assert_non_null(strstr(b.location, "scope=read%3Ajira-work%20offline_access"));
    assert_non_null(strstr(b.location, "response_type=code"));
    assert_non_null(strstr(b.location, rly_strf("redirect_uri=%s", rly_esc(rly_url(&relay, "/qorus-oauth2-redirect")))));
    assert_true(rly_is_b64url(b.state));

    /* the page and a second POST are gone now */
    RLY_EXPECT(rly_bound_start_page(&relay, v, &b), 410, v);
    RLY_EXPECT(rly_bound_confirm(&relay, v, &b, "continue"), 410, v);

    /* the callback in this browser: the delivery page, which POSTs the release key to the return_uri */
    char *code = rly_token("code-");
    rly_response_t *cb = rly_bound_callback(&relay, v, &b, rly_query("code", code, "state", b.state, NULL), b.cookie);
    RLY_EXPECT(cb, 200, v);
    RLY_EXPECT_STR(b.deliver_to, RLY_TEST_BOUND_RETURN);
    assert_int_equal(strlen(b.release), RLY_RELEASE_KEY_LEN);
    RLY_EXPECT_STR(rly_form_value(cb->body, "session"), b.s.session);
    RLY_EXPECT_STR(rly_form_value(cb->body, "status"), "success");
    assert_false(rly_response_contains(cb, code));
    csp = rly_header(cb, "Content-Security-Policy");
    assert_non_null(csp);
    assert_non_null(strstr(csp, "script-src 'sha256-"));
    assert_null(strstr(csp, "form-action"));
    assert_null(rly_header(cb, "Location"));
    RLY_EXPECT_STR(rly_header(cb, "Cross-Origin-Opener-Policy"), "same-origin");

    expect_locked_authorized(&b, code, v);
    /* the callback again: 409, the first result stands, with or without the cookie (as in version 1) */
    RLY_EXPECT(rly_bound_callback(&relay, v, &b, rly_query("code", "other", "state", b.state, NULL), b.cookie), 409, v);
    RLY_EXPECT(rly_bound_callback(&relay, v, &b, rly_query("code", "other", "state", b.state, NULL), NULL), 409, v);
}

static void test_callback_from_another_browser(void **state)
{
    int v = rly_version(state);
    rly_bound_t b, other;
    rly_bound_create_ok(&relay, v, NULL, &b);
    rly_bound_confirm_ok(&relay, v, &b);
    /* another browser with a valid cookie of its own */
    rly_bound_create_ok(&relay, v, NULL, &other);
    RLY_EXPECT(rly_bound_start_page(&relay, v, &other), 200, v);
    assert_string_not_equal(other.cookie, b.cookie);

    char *q = rly_query("code", "attacker-code", "state", b.state, NULL);
    rly_response_t *none = rly_bound_callback(&relay, v, &b, q, NULL);
    RLY_EXPECT(none, 403, v);
    assert_non_null(strstr(none->body, "another browser"));
    RLY_EXPECT(rly_bound_callback(&relay, v, &b, q, other.cookie), 403, v);
    RLY_EXPECT(rly_bound_callback(&relay, v, &b, q, "not-a-cookie"), 403, v);
    /* nothing was stored */
    RLY_EXPECT(rly_pickup(&b.s, v, 0), 202, v);
    /* the real browser then completes */
    char *code = rly_token("code-");
    RLY_EXPECT(rly_bound_callback(&relay, v, &b, rly_query("code", code, "state", b.state, NULL), b.cookie), 200, v);
    expect_locked_authorized(&b, code, v);
}

static void test_callback_before_confirmation(void **state)
{
    int v = rly_version(state);
    rly_bound_t b;
    rly_bound_create_ok(&relay, v, NULL, &b);
    RLY_EXPECT(rly_bound_start_page(&relay, v, &b), 200, v);
    /* a state for the session, minted with the relay's own key file: still 403 before Continue */
    rly_keyring_t kr;
    char err[256], st[RLY_STATE_LEN + 1];
    uint8_t sid[RLY_SESSION_ID_BYTES];
    assert_int_equal(rly_keyring_load(&kr, relay.keys, err, sizeof(err)), 0);
    assert_int_equal(rly_session_parse(b.s.session, strlen(b.s.session), sid), 0);
    assert_int_equal(rly_state_encode_flags(&kr, sid, RLY_STATE_BOUND | RLY_STATE_DIRECT, st), RLY_STATE_LEN);
    RLY_EXPECT(rly_bound_callback(&relay, v, &b, rly_query("code", "c", "state", st, NULL), b.cookie), 403, v);
    /* and a version-1 state for it does not skip the binding either */
    assert_int_equal(rly_state_encode_flags(&kr, sid, RLY_STATE_DIRECT, st), RLY_STATE_LEN);
    RLY_EXPECT(rly_bound_callback(&relay, v, &b, rly_query("code", "c", "state", st, NULL), b.cookie), 403, v);
    RLY_EXPECT(rly_pickup(&b.s, v, 0), 202, v);
}

static void test_cancel(void **state)
{
    int v = rly_version(state);
    rly_bound_t b;
    rly_bound_create_ok(&relay, v, NULL, &b);
    RLY_EXPECT(rly_bound_start_page(&relay, v, &b), 200, v);
    rly_response_t *res = rly_bound_confirm(&relay, v, &b, "cancel");
    RLY_EXPECT(res, 200, v);
    assert_null(rly_header(res, "Location"));
    assert_non_null(strstr(res->body, "cancelled"));
    rly_response_t *p = rly_pickup(&b.s, v, 0);
    RLY_EXPECT(p, 200, v);
    static const char *const keys[] = {"status", "error", NULL};
    assert_true(rly_jkeys_exactly(rly_json(p), keys));
    RLY_EXPECT_STR(rly_jstr(rly_json(p), "status"), "denied");
    RLY_EXPECT_STR(rly_jstr(rly_json(p), "error"), "access_denied");
    RLY_EXPECT(rly_bound_start_page(&relay, v, &b), 410, v);
    RLY_EXPECT(rly_bound_confirm(&relay, v, &b, "continue"), 410, v);
}

static void test_denied_at_the_as(void **state)
{
    int v = rly_version(state);
    rly_bound_t b;
    rly_bound_create_ok(&relay, v, NULL, &b);
    rly_bound_confirm_ok(&relay, v, &b);
    rly_response_t *cb = rly_bound_callback(
        &relay, v, &b, rly_query("error", "access_denied", "error_description", "no", "state", b.state, NULL), b.cookie);
    RLY_EXPECT(cb, 200, v);
    RLY_EXPECT_STR(rly_form_value(cb->body, "status"), "error");
    RLY_EXPECT_STR(rly_form_value(cb->body, "message"), "access_denied");
    rly_response_t *p = rly_pickup(&b.s, v, 0);
    RLY_EXPECT(p, 200, v);
    json_object *o = rly_bound_open(&b, p);
    assert_non_null(o);
    RLY_EXPECT_STR(rly_jstr(o, "status"), "denied");
    RLY_EXPECT_STR(rly_jstr(o, "error"), "access_denied");
    RLY_EXPECT_STR(rly_jstr(o, "error_description"), "no");
}

/* the confirmation POST: no cookie, another browser's cookie, a tampered cookie, a CSRF token of another session, a
 * foreign or opaque Origin; each 403 and the token still usable */
static void test_confirm_refusals(void **state)
{
    int v = rly_version(state);
    rly_bound_t b, other;
    rly_bound_create_ok(&relay, v, NULL, &b);
    RLY_EXPECT(rly_bound_start_page(&relay, v, &b), 200, v);
    rly_bound_create_ok(&relay, v, NULL, &other);
    RLY_EXPECT(rly_bound_start_page(&relay, v, &other), 200, v);

    rly_bound_t t = b;
    t.cookie[0] = '\0';
    RLY_EXPECT(rly_bound_confirm(&relay, v, &t, "continue"), 403, v);
    t = b;
    snprintf(t.cookie, sizeof(t.cookie), "%s", other.cookie); /* a valid cookie, but not the one the CSRF token was made for */
    RLY_EXPECT(rly_bound_confirm(&relay, v, &t, "continue"), 403, v);
    t = b;
    t.cookie[5] = t.cookie[5] == 'A' ? 'B' : 'A';
    RLY_EXPECT(rly_bound_confirm(&relay, v, &t, "continue"), 403, v);
    t = b;
    snprintf(t.csrf, sizeof(t.csrf), "%s", other.csrf);
    RLY_EXPECT(rly_bound_confirm(&relay, v, &t, "continue"), 403, v);
    t = b;
    t.csrf[10] = t.csrf[10] == 'A' ? 'B' : 'A';
    RLY_EXPECT(rly_bound_confirm(&relay, v, &t, "continue"), 403, v);
    RLY_EXPECT(rly_bound_confirm(&relay, v, &b, "maybe"), 400, v);

    static const char *const origins[] = {"https://evil.example", "null", "https://localhost", NULL};
    for (size_t i = 0; origins[i] != NULL; ++i) {
        rly_request_t q = rly_bound_confirm_request(&relay, v, &b, "continue");
        ((const char **)q.headers)[1] = rly_strf("Origin: %s", origins[i]);
        RLY_EXPECT(rly_do(&q), 403, v);
    }
    /* "Origin: null" is what a browser sends from a no-referrer page: accepted only with its own Sec-Fetch-Site saying
     * same-origin, never cross-site */
    static const char *const sites[] = {"cross-site", "same-site", "none", NULL};
    for (size_t i = 0; sites[i] != NULL; ++i) {
        rly_request_t q = rly_bound_confirm_request(&relay, v, &b, "continue");
        const char **h = rly_keep(calloc(5, sizeof(*h)));
        memcpy(h, q.headers, 3 * sizeof(*h));
        h[1] = "Origin: null";
        h[3] = rly_strf("Sec-Fetch-Site: %s", sites[i]);
        q.headers = h;
        RLY_EXPECT(rly_do(&q), 403, v);
    }
    /* none of that changed anything: the real confirmation still works, here as a browser sends it */
    rly_request_t q = rly_bound_confirm_request(&relay, v, &b, "continue");
    const char **h = rly_keep(calloc(5, sizeof(*h)));
    memcpy(h, q.headers, 3 * sizeof(*h));
    h[1] = "Origin: null";
    h[3] = "Sec-Fetch-Site: same-origin";
    q.headers = h;
    RLY_EXPECT(rly_bound_start_page(&relay, v, &b), 200, v);
    RLY_EXPECT(rly_do(&q), 303, v);
}

static void test_confirm_origin_header_forms(void **state)
{
    int v = rly_version(state);
    rly_bound_t b;
    rly_bound_create_ok(&relay, v, NULL, &b);
    /* without an Origin (older browsers, non-browser clients) the cookie and the CSRF token still decide */
    RLY_EXPECT(rly_bound_start_page(&relay, v, &b), 200, v);
    rly_request_t q = rly_bound_confirm_request(&relay, v, &b, "continue");
    ((const char **)q.headers)[1] = "Sec-Fetch-Site: same-origin"; /* in place of the Origin */
    RLY_EXPECT(rly_do(&q), 303, v);
}

/* the first valid POST consumes the token: 16 concurrent Continues, exactly one 303 */
static void test_start_token_single_use(void **state)
{
    (void)state;
    rly_bound_t b;
    rly_bound_create_ok(&relay, RLY_H2, NULL, &b);
    RLY_EXPECT(rly_bound_start_page(&relay, RLY_H2, &b), 200, RLY_H2);
    const rly_relay_t *relays[] = {&relay};
    int ok, gone;
    rly_bound_confirm_race(relays, 1, &b, 16, &ok, &gone);
    assert_int_equal(ok, 1);
    assert_int_equal(gone, 15);
}

static void test_start_token_unknown(void **state)
{
    int v = rly_version(state);
    rly_request_t q = {.url = rly_url(&relay, rly_strf("/v1/start?t=%s", rly_token("x") + 0)), .version = v};
    rly_response_t *res = rly_do(&q);
    assert_true(res->status == 400 || res->status == 410);
    q.url = rly_url(&relay, "/v1/start?t=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    RLY_EXPECT(rly_do(&q), 410, v);
    q.url = rly_url(&relay, "/v1/start");
    RLY_EXPECT(rly_do(&q), 400, v);
    q.method = "PUT";
    RLY_EXPECT(rly_do(&q), 405, v);
}

static void test_two_flows_one_browser(void **state)
{
    int v = rly_version(state);
    rly_bound_t a, b;
    rly_bound_create_ok(&relay, v, NULL, &a);
    rly_bound_create_ok(&relay, v, NULL, &b);
    RLY_EXPECT(rly_bound_start_page(&relay, v, &a), 200, v);
    snprintf(b.cookie, sizeof(b.cookie), "%s", a.cookie); /* one browser: one cookie for both tabs */
    RLY_EXPECT(rly_bound_start_page(&relay, v, &b), 200, v);
    RLY_EXPECT_STR(b.cookie, a.cookie);
    RLY_EXPECT(rly_bound_confirm(&relay, v, &a, "continue"), 303, v);
    RLY_EXPECT(rly_bound_confirm(&relay, v, &b, "continue"), 303, v);
    /* completed in the other order */
    RLY_EXPECT(rly_bound_callback(&relay, v, &b, rly_query("code", "code-b", "state", b.state, NULL), b.cookie), 200, v);
    RLY_EXPECT(rly_bound_callback(&relay, v, &a, rly_query("code", "code-a", "state", a.state, NULL), a.cookie), 200, v);
    expect_locked_authorized(&a, "code-a", v);
    expect_locked_authorized(&b, "code-b", v);
}

static void test_form_post_callback(void **state)
{
    int v = rly_version(state);
    rly_bound_t b;
    rly_bound_create_ok(&relay, v, "\"ttl\": 300", &b);
    rly_bound_confirm_ok(&relay, v, &b);
    const char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded", rly_strf("Cookie: " RLY_COOKIE_NAME "=%s", b.cookie),
                          NULL};
    char *body = rly_query("code", "posted-code", "state", b.state, NULL);
    rly_request_t q = {.method = "POST",
                       .url = rly_url(&relay, "/qorus-oauth2-redirect"),
                       .headers = hdrs,
                       .body = body,
                       .body_len = strlen(body),
                       .version = v};
    rly_response_t *res = rly_do(&q);
    RLY_EXPECT(res, 200, v);
    char *release = rly_form_value(res->body, "release");
    assert_non_null(release);
    snprintf(b.release, sizeof(b.release), "%s", release);
    expect_locked_authorized(&b, "posted-code", v);
}

static void test_limits(void **state)
{
    int v = rly_version(state);
    rly_bound_t b;
    /* a client not on --allow-client-id */
    const char *json = "{\"authorization_server\": \"" RLY_TEST_AS "\", \"return_uri\": \"" RLY_TEST_BOUND_RETURN "\", "
                       "\"authorize_params\": {\"client_id\": \"someone-else\"}}";
    rly_response_t *res = rly_create(&relay, v, json, NULL);
    RLY_EXPECT(res, 403, v);
    assert_true(rly_is_error_body(res, "client_not_allowed"));
    /* the relay's own parameters cannot be set */
    static const char *const own[] = {"redirect_uri", "state", "response_type", NULL};
    RLY_EXPECT(rly_bound_create(&relay, v, NULL, &b), 201, v); /* the baseline */
    for (size_t i = 0; own[i] != NULL; ++i) {
        char *body = rly_strf("{\"authorization_server\": \"" RLY_TEST_AS "\", \"return_uri\": \"" RLY_TEST_BOUND_RETURN "\", "
                              "\"authorize_params\": {\"client_id\": \"" RLY_TEST_CLIENT_ID "\", \"%s\": \"x\"}}",
                              own[i]);
        RLY_EXPECT(rly_create(&relay, v, body, NULL), 400, v);
    }
    /* a return_uri with a query, a label too long, a bad response_mode */
    RLY_EXPECT(rly_create(&relay, v,
                          "{\"authorization_server\": \"" RLY_TEST_AS "\", \"return_uri\": \"" RLY_TEST_RETURN "\", "
                          "\"authorize_params\": {\"client_id\": \"" RLY_TEST_CLIENT_ID "\"}}",
                          NULL),
               400, v);
    RLY_EXPECT(rly_bound_create(&relay, v, rly_strf("\"label\": \"%s\"", rly_repeat('l', 65)), &b), 400, v);
    RLY_EXPECT(rly_bound_create(&relay, v, rly_strf("\"label\": \"%s\"", rly_repeat('l', 64)), &b), 201, v);
    RLY_EXPECT(rly_bound_create(&relay, v, "\"label\": \"a\\u200bb\"", &b), 400, v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLY_TEST_BOTH(test_discovery_says_1_1),
        RLY_TEST_BOTH(test_create_has_start_url_and_no_state),
        RLY_TEST_BOTH(test_version1_refused_by_default),
        RLY_TEST_BOTH(test_full_flow),
        RLY_TEST_BOTH(test_callback_from_another_browser),
        RLY_TEST_BOTH(test_callback_before_confirmation),
        RLY_TEST_BOTH(test_cancel),
        RLY_TEST_BOTH(test_denied_at_the_as),
        RLY_TEST_BOTH(test_confirm_refusals),
        RLY_TEST_BOTH(test_confirm_origin_header_forms),
        RLY_TEST(test_start_token_single_use),
        RLY_TEST_BOTH(test_start_token_unknown),
        RLY_TEST_BOTH(test_two_flows_one_browser),
        RLY_TEST_BOTH(test_form_post_callback),
        RLY_TEST_BOTH(test_limits),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
