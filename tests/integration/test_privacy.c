/* test_privacy.c: security headers on every response, nothing secret reflected or logged, the log schema and audit */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "bound.h"
#include "harness.h"

#define CSP "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
#define RETURN_HOST "privacy-return.example"
#define RETURN_URI "https://" RETURN_HOST ":8011/grant?tab=oauth"
#define ORIGIN "Origin: https://evil.example"

static rly_relay_t relay;

/* every per-flow value sent or received; the log scan looks for each (malloc'ed, outlive the arena) */
static char *secrets[4096];
static size_t nsecrets;

static void remember(const char *s)
{
    if (s != NULL && strlen(s) >= 6 && nsecrets < sizeof(secrets) / sizeof(secrets[0]))
        secrets[nsecrets++] = strdup(s);
}

static void remember_session(const rly_session_t *s)
{
    remember(s->session);
    remember(s->state);
    remember(s->poll_token);
}

static char *rly_metrics_text_before_stop; /* /metrics just before the relay stops (arena) */

/* a version-1 session at the AS given, with the test's return_uri; fails the test unless 201 */
static void rly_create_ok_as(const rly_relay_t *r, int v, const char *as, rly_session_t *s)
{
    rly_response_t *res =
        rly_create(r, v, rly_strf("{\"authorization_server\": \"%s\", \"return_uri\": \"" RLY_TEST_RETURN "\"}", as), s);
    RLY_EXPECT(res, 201, v);
}

static int group_setup(void **state)
{
    (void)state;
    /* an allow-list with a tenant wildcard: the log and the metrics say the entry that matched, never the tenant's host */
    static const char *const extra[] = {"--rate-limit",       "0",          "--log-level", "debug", "--allow-as",
                                        "auth.atlassian.com", "--allow-as", "*.okta.com",  NULL};
    return rly_relay_start(&relay, extra);
}

static int group_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < nsecrets; i++)
        free(secrets[i]);
    return rly_relay_finish(&relay);
}

static void create(int v, rly_session_t *s, int with_return)
{
    const char *body = with_return ? "{\"authorization_server\": \"" RLY_TEST_AS "\", \"return_uri\": \"" RETURN_URI "\"}"
                                   : "{\"authorization_server\": \"" RLY_TEST_AS "\"}";
    const char *hdrs[] = {"Content-Type: application/json", ORIGIN, NULL};
    rly_request_t q = {.method = "POST",
                       .url = rly_url(&relay, "/v1/sessions"),
                       .headers = hdrs,
                       .body = body,
                       .body_len = strlen(body),
                       .version = v};
    rly_response_t *res = rly_do(&q);
    RLY_EXPECT(res, 201, v);
    json_object *o = rly_json(res);
    memset(s, 0, sizeof(*s));
    snprintf(s->session, sizeof(s->session), "%s", rly_jstr(o, "session"));
    snprintf(s->state, sizeof(s->state), "%s", rly_jstr(o, "state"));
    snprintf(s->poll_token, sizeof(s->poll_token), "%s", rly_jstr(o, "poll_token"));
    snprintf(s->poll_url, sizeof(s->poll_url), "%s", rly_jstr(o, "poll_url"));
    remember_session(s);
}

static rly_response_t *request(int v, const char *method, const char *url, const char *auth, const char *ctype, const char *body)
{
    const char *hdrs[4] = {ORIGIN, NULL, NULL, NULL};
    size_t n = 1;
    if (auth != NULL)
        hdrs[n++] = auth;
    if (ctype != NULL)
        hdrs[n++] = ctype;
    rly_request_t q = {
        .method = method, .url = url, .headers = hdrs, .body = body, .body_len = body ? strlen(body) : 0, .version = v};
    return rly_do(&q);
}

static void expect_single_header(const rly_response_t *res, const char *name, const char *value, int prefix, const char *what)
{
    size_t n = rly_header_count(res, name);
    const char *got = rly_header(res, name);
    if (n != 1)
        fail_msg("%s (%ld): %s appears %zu times", what, res->status, name, n);
    if (prefix ? strncmp(got, value, strlen(value)) != 0 : strcmp(got, value) != 0)
        fail_msg("%s (%ld): %s is \"%s\", expected \"%s\"", what, res->status, name, got, value);
}

/* the security headers of protocol.md, no CORS, CSP on HTML, Content-Length on HTTP/1.1 */
static void check_headers(const rly_response_t *res, int v, const char *what)
{
    if (res->status == 0)
        fail_msg("%s: no response: %s", what, res->error);
    if (res->version != v)
        fail_msg("%s: HTTP version %d, expected %d", what, res->version, v);
    const char *cc = rly_header(res, "Cache-Control");
    if (rly_header_count(res, "Cache-Control") != 1 || cc == NULL || strstr(cc, "no-store") == NULL)
        fail_msg("%s (%ld): Cache-Control is \"%s\"", what, res->status, cc != NULL ? cc : "(none)");
    expect_single_header(res, "Referrer-Policy", "no-referrer", 0, what);
    expect_single_header(res, "X-Content-Type-Options", "nosniff", 0, what);
    expect_single_header(res, "X-Frame-Options", "DENY", 0, what);
    expect_single_header(res, "Strict-Transport-Security", "max-age=31536000", 1, what);
    for (size_t i = 0; i < res->nheaders; i++)
        if (strncasecmp(res->headers[i].name, "Access-Control-", 15) == 0)
            fail_msg("%s (%ld): CORS header %s: %s", what, res->status, res->headers[i].name, res->headers[i].value);
    const char *ct = rly_header(res, "Content-Type");
    if (ct != NULL && strncasecmp(ct, "text/html", 9) == 0)
        expect_single_header(res, "Content-Security-Policy", CSP, 0, what);
    if (v == RLY_H1 && res->status != 204 && res->status != 304) {
        const char *cl = rly_header(res, "Content-Length");
        if (cl == NULL)
            fail_msg("%s (%ld): HTTP/1.1 response without Content-Length", what, res->status);
        if (strtoull(cl, NULL, 10) != res->body_len)
            fail_msg("%s (%ld): Content-Length %s but %zu body bytes", what, res->status, cl, res->body_len);
        if (rly_header(res, "Transfer-Encoding") != NULL)
            fail_msg("%s (%ld): Transfer-Encoding with Content-Length", what, res->status);
    }
    if (res->status == 204 && res->body_len != 0)
        fail_msg("%s: 204 with a body", what);
}

/* a browser-facing response must not carry the code, the state or the poll token */
static void check_leaks(const rly_response_t *res, const rly_session_t *s, const char *code, const char *what)
{
    if (code != NULL && rly_response_contains(res, code))
        fail_msg("%s (%ld): the response carries the code", what, res->status);
    if (rly_response_contains(res, s->state))
        fail_msg("%s (%ld): the response carries the state", what, res->status);
    if (rly_response_contains(res, s->poll_token))
        fail_msg("%s (%ld): the response carries the poll token", what, res->status);
}

static void test_security_headers_everywhere(void **state)
{
    int v = rly_version(state);
    rly_session_t s, s2;
    create(v, &s, 1);
    create(v, &s2, 0);
    char *auth = rly_strf("Authorization: Bearer %s", s.poll_token), *auth2 = rly_strf("Authorization: Bearer %s", s2.poll_token);
    char *code = rly_token("priv-code-"), *code2 = rly_token("priv-code-");
    remember(code);
    remember(code2);
    const char *json = "Content-Type: application/json", *form = "Content-Type: application/x-www-form-urlencoded";
    char *cb = rly_url(&relay, "/qorus-oauth2-redirect");
    char *big = rly_strf("{\"authorization_server\": \"%s\", \"pad\": \"%s\"}", RLY_TEST_AS, rly_repeat('x', 9000));

    struct {
        const char *what;
        rly_response_t *res;
        long status;
    } cases[] = {
        {"discovery", request(v, "GET", rly_url(&relay, "/.well-known/authrelay"), NULL, NULL, NULL), 200},
        {"pickup pending", request(v, "GET", s.poll_url, auth, NULL, NULL), 202},
        {"callback 303",
         request(v, "GET", rly_strf("%s?%s", cb, rly_query("code", code, "state", s.state, NULL)), NULL, NULL, NULL), 303},
        {"callback 409",
         request(v, "GET", rly_strf("%s?%s", cb, rly_query("code", code2, "state", s.state, NULL)), NULL, NULL, NULL), 409},
        {"pickup 200", request(v, "GET", s.poll_url, auth, NULL, NULL), 200},
        {"delete 204", request(v, "DELETE", s.poll_url, auth, NULL, NULL), 204},
        {"callback 410",
         request(v, "GET", rly_strf("%s?%s", cb, rly_query("code", code2, "state", s.state, NULL)), NULL, NULL, NULL), 410},
        {"callback 200 page", request(v, "POST", cb, NULL, form, rly_query("code", code2, "state", s2.state, NULL)), 200},
        {"callback 400", request(v, "GET", rly_strf("%s?%s", cb, rly_query("code", code2, NULL)), NULL, NULL, NULL), 400},
        {"callback 414",
         request(v, "GET", rly_strf("%s?%s", cb, rly_query("state", s2.state, "code", rly_repeat('z', 17000), NULL)), NULL, NULL,
                 NULL),
         414},
        {"create 400", request(v, "POST", rly_url(&relay, "/v1/sessions"), NULL, json, "{}"), 400},
        {"create 413", request(v, "POST", rly_url(&relay, "/v1/sessions"), NULL, json, big), 413},
        {"create 415", request(v, "POST", rly_url(&relay, "/v1/sessions"), NULL, "Content-Type: text/plain", "{}"), 415},
        {"pickup 401", request(v, "GET", s2.poll_url, NULL, NULL, NULL), 401},
        {"pickup 404", request(v, "GET", s.poll_url, auth, NULL, NULL), 404},
        {"405", request(v, "PUT", rly_url(&relay, "/v1/sessions"), NULL, json, "{}"), 405},
        {"405 on a session", request(v, "PATCH", s2.poll_url, auth2, json, "{}"), 405},
        {"CORS preflight",
         request(v, "OPTIONS", rly_url(&relay, "/v1/sessions"), "Access-Control-Request-Method: POST", NULL, NULL), 405},
        {"404", request(v, "GET", rly_url(&relay, "/no/such/path"), NULL, NULL, NULL), 404},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (cases[i].res->status != cases[i].status)
            fail_msg("%s: expected %ld, got %ld (%s)", cases[i].what, cases[i].status, cases[i].res->status, cases[i].res->error);
        check_headers(cases[i].res, v, cases[i].what);
        if (strncmp(cases[i].what, "callback", 8) == 0) {
            check_leaks(cases[i].res, &s, code, cases[i].what);
            check_leaks(cases[i].res, &s2, code2, cases[i].what);
        }
    }
}

static void test_callback_responses_leak_nothing(void **state)
{
    int v = rly_version(state);
    rly_session_t s;
    create(v, &s, 1);
    char *desc = rly_token("priv-desc-");
    remember(desc);
    rly_response_t *res =
        rly_callback(&relay, v, NULL, rly_query("error", "access_denied", "error_description", desc, "state", s.state, NULL));
    RLY_EXPECT(res, 303, v);
    check_headers(res, v, "error callback");
    check_leaks(res, &s, NULL, "error callback");
    RLY_EXPECT_STR(rly_header(res, "Location"), RETURN_URI "&status=error&message=access_denied");
    assert_false(rly_response_contains(res, desc));

    /* no request parameter chooses the redirect target */
    rly_session_t s2;
    create(v, &s2, 1);
    char *code = rly_token("priv-code-");
    remember(code);
    res = rly_callback(&relay, v, NULL,
                       rly_query("code", code, "state", s2.state, "return_uri", "https://evil.example/", "redirect_uri",
                                 "https://evil.example/", "return_to", "https://evil.example/", NULL));
    RLY_EXPECT(res, 303, v);
    RLY_EXPECT_STR(rly_header(res, "Location"), RETURN_URI "&status=success");
    check_leaks(res, &s2, code, "callback with extra redirect parameters");
}

static void test_html_escaping(void **state)
{
    int v = rly_version(state);
    const char *script = "<script>alert(1)</script>";
    /* an error_description with markup, on the "done" page */
    rly_session_t s;
    create(v, &s, 0);
    rly_response_t *res =
        rly_callback(&relay, v, NULL, rly_query("error", "access_denied", "error_description", script, "state", s.state, NULL));
    RLY_EXPECT(res, 200, v);
    check_headers(res, v, "denied page");
    assert_null(strcasestr(res->body, "<script"));

    /* an error code with markup (valid in the RFC 6749 error charset): on the page and in the redirect */
    const char *img = "<img src=x onerror=alert(1)>";
    create(v, &s, 0);
    res = rly_callback(&relay, v, NULL, rly_query("error", img, "state", s.state, NULL));
    if (res->status != 200 && res->status != 400)
        fail_msg("error with markup: expected 200 (or 400), got %ld", res->status);
    check_headers(res, v, "error with markup");
    assert_null(strcasestr(res->body, "<img"));
    create(v, &s, 1);
    res = rly_callback(&relay, v, NULL, rly_query("error", img, "state", s.state, NULL));
    if (res->status == 303) {
        const char *loc = rly_header(res, "Location");
        assert_non_null(loc);
        if (strpbrk(loc, "<>\" '") != NULL)
            fail_msg("Location carries unencoded characters: %s", loc);
        assert_true(strncmp(loc, RETURN_URI "&status=error&message=", strlen(RETURN_URI "&status=error&message=")) == 0);
    } else if (res->status != 400) {
        fail_msg("error with markup and a return_uri: expected 303 (or 400), got %ld", res->status);
    }
    assert_null(strcasestr(res->body, "<img"));

    /* a bad request page must not echo its parameters */
    res = rly_callback(&relay, v, NULL, rly_query("code", script, NULL));
    RLY_EXPECT(res, 400, v);
    assert_null(strcasestr(res->body, "<script"));
    res = rly_callback(&relay, v, NULL, rly_query("state", script, "code", "x", NULL));
    RLY_EXPECT(res, 400, v);
    assert_null(strcasestr(res->body, "<script"));
}

static void test_pages_are_self_contained(void **state)
{
    int v = rly_version(state);
    rly_session_t s;
    create(v, &s, 0);
    rly_response_t *res = rly_callback(&relay, v, NULL, rly_query("code", rly_token("c"), "state", s.state, NULL));
    RLY_EXPECT(res, 200, v);
    check_headers(res, v, "done page");
    /* pages load nothing from elsewhere */
    const char *bad[] = {"<script", "src=", "href=\"http", "@import", "url(", "<link", "<iframe"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (strcasestr(res->body, bad[i]) != NULL)
            fail_msg("the done page contains %s", bad[i]);
}

/* ---- the log ---- */

static int is_ident(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (; *s != '\0'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

static int is_ts(const char *s)
{
    /* YYYY-MM-DDTHH:MM:SS.mmmZ */
    const char *pat = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (strlen(s) != strlen(pat))
        return 0;
    for (size_t i = 0; pat[i] != '\0'; i++)
        if (pat[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != pat[i])
            return 0;
    return 1;
}

static void check_log_line(const char *line, size_t len, size_t lineno, int *seen_as)
{
    static const char *const allowed[] = {"ts", "level", "event", "as", "outcome", "ms", "msg", "version"};
    rly_response_t fake = {.body = rly_strf("%.*s", (int)len, line), .body_len = len};
    json_object *o = rly_json(&fake);
    if (o == NULL || !json_object_is_type(o, json_type_object))
        fail_msg("log line %zu is not a JSON object: %.200s", lineno, fake.body);
    json_object_object_foreach(o, key, val)
    {
        int ok = 0;
        for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
            ok |= strcmp(key, allowed[i]) == 0;
        if (!ok)
            fail_msg("log line %zu has the key \"%s\"", lineno, key);
        if (strcmp(key, "ms") == 0) {
            if (!json_object_is_type(val, json_type_int) || json_object_get_int64(val) < 0)
                fail_msg("log line %zu: ms is not a non-negative integer", lineno);
        } else if (!json_object_is_type(val, json_type_string)) {
            fail_msg("log line %zu: %s is not a string", lineno, key);
        }
    }
    const char *ts = rly_jstr(o, "ts"), *level = rly_jstr(o, "level"), *event = rly_jstr(o, "event");
    if (ts == NULL || !is_ts(ts))
        fail_msg("log line %zu: bad ts %s", lineno, ts != NULL ? ts : "(none)");
    if (level == NULL ||
        (strcmp(level, "debug") != 0 && strcmp(level, "info") != 0 && strcmp(level, "warn") != 0 && strcmp(level, "error") != 0))
        fail_msg("log line %zu: bad level", lineno);
    if (event == NULL || !is_ident(event, 32))
        fail_msg("log line %zu: bad event", lineno);
    const char *outcome = rly_jstr(o, "outcome");
    if (json_object_object_get_ex(o, "outcome", NULL) && (outcome == NULL || !is_ident(outcome, 32)))
        fail_msg("log line %zu: bad outcome", lineno);
    const char *as = rly_jstr(o, "as");
    if (as != NULL) {
        for (const char *p = as; *p != '\0'; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '[' || *p == ']' ||
                  *p == ':' || *p == '*'))
                fail_msg("log line %zu: bad as", lineno);
        if (strcmp(as, "auth.atlassian.com") == 0)
            *seen_as |= 1;
        else if (strcmp(as, "*.okta.com") == 0)
            *seen_as |= 2;
        else
            fail_msg("log line %zu: as \"%s\" is neither allow-list entry", lineno, as);
    }
}

static void scan_for(const char *text, const char *name, const char *needle)
{
    if (strstr(text, needle) != NULL)
        fail_msg("the relay's %s contains \"%.80s\"", name, needle);
}

static void test_log_is_anonymous(void **state)
{
    (void)state;
    /* more traffic with identifying data: user agent (every request), return_uri, descriptions, bad input */
    for (int v = RLY_H1; v <= RLY_H2; v++) {
        rly_session_t s;
        create(v, &s, 1);
        char *code = rly_token("log-code-");
        remember(code);
        RLY_EXPECT(
            rly_callback(&relay, v, NULL, rly_query("code", code, "state", s.state, "iss", "https://auth.atlassian.com", NULL)),
            303, v);
        RLY_EXPECT(rly_pickup(&s, v, -1), 200, v);
        RLY_EXPECT(rly_delete(&s, v), 204, v);
        RLY_EXPECT(rly_callback(&relay, v, NULL, rly_query("code", code, "state", s.state, NULL)), 410, v);
        create(v, &s, 1);
        char *desc = rly_token("log-desc-");
        remember(desc);
        RLY_EXPECT(
            rly_callback(&relay, v, NULL, rly_query("error", "access_denied", "error_description", desc, "state", s.state, NULL)),
            303, v);
        RLY_EXPECT(rly_pickup(&s, v, 1), 200, v);
        create(v, &s, 0);
        RLY_EXPECT(rly_pickup(&s, v, 1), 202, v);
        char *forged = rly_strf("%s", s.state);
        forged[strlen(forged) - 3] = forged[strlen(forged) - 3] == 'Q' ? 'R' : 'Q';
        remember(forged);
        RLY_EXPECT(rly_callback(&relay, v, NULL, rly_query("code", code, "state", forged, NULL)), 400, v);
        const char *bad =
            "{\"authorization_server\": \"https://login.secret-tenant.example/authorize?tenant=leaky-tenant\", \"ttl\": 1}";
        RLY_EXPECT(rly_create(&relay, v, bad, NULL), 400, v);
        const char *wrong = rly_strf("Authorization: Bearer %s", rly_token("wrong-token-wrong-token-"));
        const char *hdrs[] = {wrong, NULL};
        rly_request_t q = {.url = s.poll_url, .headers = hdrs, .version = v};
        RLY_EXPECT(rly_do(&q), 401, v);
        remember(wrong + strlen("Authorization: Bearer "));
    }

    /* 1.1: the start token, the cookie, the CSRF token, the label, the authorize parameters and the release key are
     * secrets of the flow too */
    for (int v = RLY_H1; v <= RLY_H2; v++) {
        rly_bound_t b;
        char *label = rly_token("log-label-");
        remember(label);
        rly_bound_create_ok(&relay, v,
                            rly_strf("\"label\": \"%s\", \"authorize_params\": {\"client_id\": \"log-client-id\", "
                                     "\"scope\": \"log-scope-value\", \"code_challenge\": \"log-challenge\"}",
                                     label),
                            &b);
        rly_bound_confirm_ok(&relay, v, &b);
        char *code = rly_token("log-bound-code-");
        remember(code);
        RLY_EXPECT(rly_bound_callback(&relay, v, &b, rly_query("code", code, "state", b.state, NULL), NULL), 403, v);
        RLY_EXPECT(rly_bound_callback(&relay, v, &b, rly_query("code", code, "state", b.state, NULL), b.cookie), 200, v);
        RLY_EXPECT(rly_pickup(&b.s, v, 0), 200, v);
        const char *const secrets_1_1[] = {b.token, b.cookie, b.csrf, b.state, b.release, b.s.session, b.s.poll_token};
        for (size_t i = 0; i != sizeof(secrets_1_1) / sizeof(secrets_1_1[0]); ++i)
            remember(rly_strf("%s", secrets_1_1[i]));
    }
    remember("log-client-id");
    remember("log-scope-value");
    remember("log-challenge");

    /* a tenant of a wildcard entry: its host must not reach the log or the metrics */
    for (int v = RLY_H1; v <= RLY_H2; v++) {
        rly_session_t s;
        rly_create_ok_as(&relay, v, "https://acme-tenant.okta.com/oauth2/v1/authorize", &s);
        RLY_EXPECT(rly_callback(&relay, v, NULL, rly_query("code", "tenant-code", "state", s.state, NULL)), 303, v);
        RLY_EXPECT(rly_pickup(&s, v, -1), 200, v);
    }
    RLY_EXPECT(rly_create(&relay, RLY_H1, "{\"authorization_server\": \"https://okta.com/authorize\"}", NULL), 403, RLY_H1);
    remember("acme-tenant");
    rly_response_t metrics_res;
    rly_request_t mq = {.url = rly_admin_url(&relay, "/metrics")};
    assert_int_equal(rly_http_req(&mq, &metrics_res), 200);
    rly_metrics_text_before_stop = rly_keep(strdup(metrics_res.body));
    rly_response_free(&metrics_res);

    int exit_status = rly_relay_stop(&relay);
    size_t len;
    char *out = rly_relay_stdout(&relay, &len);
    char *err = rly_relay_stderr(&relay, NULL);
    assert_true(len > 0);

    /* every line: a JSON object with only the allowed keys */
    size_t lineno = 0;
    int seen_as = 0;
    for (const char *p = out; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        if (nl == NULL)
            fail_msg("the log does not end with a newline");
        lineno++;
        check_log_line(p, (size_t)(nl - p), lineno, &seen_as);
        p = nl + 1;
    }
    assert_true(lineno >= 10);
    if (seen_as != 3)
        fail_msg("the log does not name both allow-list entries auth.atlassian.com and *.okta.com (anonymous facts are what the "
                 "log is for)");
    /* the tenant behind the wildcard is named nowhere: not in the log, not in a metric label */
    char *metrics = rly_metrics_text_before_stop;
    if (metrics == NULL || strstr(metrics, "*.okta.com") == NULL)
        fail_msg("/metrics has no series for *.okta.com");
    if (strstr(metrics, "acme-tenant") != NULL)
        fail_msg("/metrics names the tenant acme-tenant");

    /* nothing identifying, anywhere */
    const char *outputs[2] = {out, err}, *names[2] = {"stdout", "stderr"};
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i < nsecrets; i++)
            scan_for(outputs[k], names[k], secrets[i]);
        const char *fixed[] = {
            RLY_TEST_UA,    "Qorus-Test-UA",         RETURN_URI, RETURN_HOST, "127.0.0.1", "evil.example", "leaky-tenant",
            "/v1/sessions", "qorus-oauth2-redirect", "Bearer"};
        for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
            scan_for(outputs[k], names[k], fixed[i]);
    }

    /* authrelay audit agrees */
    char *aout = NULL, *aerr = NULL;
    char *argv[] = {(char *)rly_bin(), "audit", relay.out_path, NULL};
    int rc = rly_run(argv, 10000, &aout, &aerr);
    if (rc != 0)
        fail_msg("authrelay audit exited %d: %s %s", rc, aout, aerr);
    assert_non_null(strstr(aout, "auth.atlassian.com")); /* totals per AS */
    if (exit_status != 0)
        fail_msg("the relay exited with status %d after SIGTERM (expected 0)", exit_status);
}

static void test_audit_flags_violations(void **state)
{
    (void)state;
    const char *path = rly_strf("%s/bad.log", rly_tmpdir());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"ts\":\"2026-01-01T00:00:00.000Z\",\"level\":\"info\",\"event\":\"callback\",\"as\":\"auth.atlassian.com\","
          "\"outcome\":\"success\","
          "\"ms\":3}\n",
          f);
    fputs("{\"ts\":\"2026-01-01T00:00:00.000Z\",\"level\":\"info\",\"event\":\"callback\",\"client\":\"198.51.100.77\"}\n", f);
    fputs("{\"ts\":\"2026-01-01T00:00:00.000Z\",\"level\":\"info\",\"event\":\"callback\",\"msg\":\"from 198.51.100.78\"}\n", f);
    fputs("not json at all\n", f);
    fclose(f);
    char *aout = NULL, *aerr = NULL;
    char *argv[] = {(char *)rly_bin(), "audit", (char *)path, NULL};
    int rc = rly_run(argv, 10000, &aout, &aerr);
    assert_int_equal(rc, 1);
    /* it reports violations without repeating the offending text */
    assert_null(strstr(aout, "198.51.100.77"));
    assert_null(strstr(aerr, "198.51.100.77"));
    assert_null(strstr(aout, "198.51.100.78"));
    assert_null(strstr(aerr, "198.51.100.78"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLY_TEST_BOTH(test_security_headers_everywhere),
        RLY_TEST_BOTH(test_callback_responses_leak_nothing),
        RLY_TEST_BOTH(test_html_escaping),
        RLY_TEST_BOTH(test_pages_are_self_contained),
        RLY_TEST(test_audit_flags_violations),
        RLY_TEST(test_log_is_anonymous), /* last: it stops the relay */
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
