/* test_client.c: unit tests of the pure parts of the client protocol (common/client.c): URL, PKCE, options, retries */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

#define AS "https://auth.atlassian.com/authorize"
#define REDIRECT "https://relay.example/qorus-oauth2-redirect"

static rly_client_opts_t opts;
static char err[512];

/* parses a NULL-terminated list of arguments into opts; returns what rly_client_parse_args returns */
static int parse(const char *first, ...)
{
    char *argv[64];
    int argc = 0;
    va_list ap;

    va_start(ap, first);
    for (const char *a = first; a != NULL; a = va_arg(ap, const char *)) {
        assert_true(argc < 63);
        argv[argc++] = (char *)a;
    }
    va_end(ap);
    argv[argc] = NULL;
    err[0] = '\0';
    int r = rly_client_parse_args(&opts, argc, argv, err, sizeof(err));
    if (r != 0) {
        assert_int_equal(r, -1);
        assert_true(err[0] != '\0');
        assert_null(strchr(err, '\n'));
    }
    return r;
}

#define BASE "--relay", "https://relay.example", "--authorize-url", AS, "--client-id", "cid"

static void expect_usage(int r, const char *needle)
{
    assert_int_equal(r, -1);
    if (strstr(err, needle) == NULL)
        fail_msg("expected \"%s\" in \"%s\"", needle, err);
}

static void test_url_atlassian(void **state)
{
    (void)state;
    assert_int_equal(parse(BASE, "--scope", "read:jira-work", "--scope", "offline_access", "--audience", "api.atlassian.com",
                           "--prompt", "consent", NULL),
                     0);
    char *u = rly_client_authorize_url(&opts, REDIRECT, "St4te_-x", NULL);
    assert_non_null(u);
    assert_string_equal(u, AS "?audience=api.atlassian.com&client_id=cid&scope=read%3Ajira-work%20offline_access"
                              "&redirect_uri=https%3A%2F%2Frelay.example%2Fqorus-oauth2-redirect&state=St4te_-x"
                              "&response_type=code&prompt=consent");
    free(u);
}

static void test_url_minimal_and_query(void **state)
{
    (void)state;
    char *u;

    /* no audience, scope or prompt: left out */
    assert_int_equal(parse(BASE, NULL), 0);
    u = rly_client_authorize_url(&opts, REDIRECT, "s", NULL);
    assert_string_equal(u, AS "?client_id=cid&redirect_uri=https%3A%2F%2Frelay.example%2Fqorus-oauth2-redirect&state=s"
                              "&response_type=code");
    free(u);

    /* an authorize URL with a query of its own gets '&'; one ending in '?' or '&' gets nothing */
    static const struct {
        const char *as, *want_prefix;
    } cases[] = {{"https://as.example/authorize?tenant=a%20b", "https://as.example/authorize?tenant=a%20b&client_id=cid&"},
                 {"https://as.example/authorize?", "https://as.example/authorize?client_id=cid&"},
                 {"https://as.example/authorize?x=1&", "https://as.example/authorize?x=1&client_id=cid&"}};
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(parse("--relay", "https://relay.example", "--authorize-url", cases[i].as, "--client-id", "cid", NULL), 0);
        u = rly_client_authorize_url(&opts, REDIRECT, "s", NULL);
        assert_non_null(u);
        if (strncmp(u, cases[i].want_prefix, strlen(cases[i].want_prefix)) != 0)
            fail_msg("%s does not start with %s", u, cases[i].want_prefix);
        free(u);
    }
}

static void test_url_params_encoding_pkce(void **state)
{
    (void)state;
    assert_int_equal(parse("--relay", "https://relay.example", "--authorize-url", AS, "--client-id", "c i/d&x=y", "--scope", "a+b",
                           "--param", "login_hint=jo@example.com", "--param", "we ird=v=1&2 ~.-_", "--param", "empty=", "--prompt",
                           "consent", NULL),
                     0);
    char *u = rly_client_authorize_url(&opts, REDIRECT, "s", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    assert_non_null(u);
    assert_string_equal(u, AS "?client_id=c%20i%2Fd%26x%3Dy&scope=a%2Bb&redirect_uri=https%3A%2F%2Frelay.example%2Fqorus-oauth2-"
                              "redirect&state=s&response_type=code&prompt=consent&login_hint=jo%40example.com"
                              "&we%20ird=v%3D1%262%20~.-_&empty=&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
                              "&code_challenge_method=S256");
    free(u);
}

static void test_pct_encode(void **state)
{
    (void)state;
    char buf[64];
    size_t len = 0;

    assert_int_equal(rly_client_pct_encode(buf, sizeof(buf), &len, "Az09-._~ /?#\xc3\xa9%", 15), 0);
    assert_string_equal(buf, "Az09-._~%20%2F%3F%23%C3%A9%25");
    assert_int_equal(len, strlen(buf));
    /* appends */
    assert_int_equal(rly_client_pct_encode(buf, sizeof(buf), &len, "+", 1), 0);
    assert_string_equal(buf, "Az09-._~%20%2F%3F%23%C3%A9%25%2B");
    /* too small: -1, never an overflow */
    char small[4];
    len = 0;
    assert_int_equal(rly_client_pct_encode(small, sizeof(small), &len, "abc", 3), 0);
    assert_string_equal(small, "abc");
    len = 0;
    assert_int_equal(rly_client_pct_encode(small, sizeof(small), &len, "abcd", 4), -1);
    len = 0;
    assert_int_equal(rly_client_pct_encode(small, sizeof(small), &len, " ", 1), 0);
    assert_string_equal(small, "%20");
    len = 0;
    assert_int_equal(rly_client_pct_encode(small, sizeof(small), &len, "a ", 2), -1);
    len = 0;
    assert_int_equal(rly_client_pct_encode(small, sizeof(small), &len, "", 0), 0);
    assert_string_equal(small, "");
}

static void test_pkce(void **state)
{
    (void)state;
    char ch[RLY_PKCE_CHALLENGE_LEN + 1], v1[RLY_PKCE_VERIFIER_LEN + 1], v2[RLY_PKCE_VERIFIER_LEN + 1];

    /* RFC 7636 appendix B */
    static const char verifier[] = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    rly_pkce_challenge(verifier, strlen(verifier), ch);
    assert_string_equal(ch, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");

    assert_int_equal(rly_pkce_verifier(v1), 0);
    assert_int_equal(rly_pkce_verifier(v2), 0);
    assert_int_equal(strlen(v1), 43);
    assert_int_equal(strlen(v2), 43);
    assert_string_not_equal(v1, v2);
    for (size_t i = 0; i != 43; i++) /* RFC 7636 4.1: unreserved characters only */
        assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~", v1[i]));
    rly_pkce_challenge(v1, strlen(v1), ch);
    assert_int_equal(strlen(ch), 43);
}

static void test_retry_after(void **state)
{
    (void)state;
    time_t now = curl_getdate("Sun, 06 Nov 1994 08:49:37 GMT", NULL);
    assert_true(now > 0);

    assert_int_equal(rly_client_retry_after("5", now), 5);
    assert_int_equal(rly_client_retry_after(" 7 \r\n", now), 7);
    assert_int_equal(rly_client_retry_after("0", now), 0);
    assert_int_equal(rly_client_retry_after("300", now), 300);
    assert_int_equal(rly_client_retry_after("301", now), RLY_CLIENT_RETRY_AFTER_MAX);
    assert_int_equal(rly_client_retry_after("99999999999999999999999", now), RLY_CLIENT_RETRY_AFTER_MAX);
    assert_int_equal(rly_client_retry_after(NULL, now), -1);
    assert_int_equal(rly_client_retry_after("", now), -1);
    assert_int_equal(rly_client_retry_after("  ", now), -1);
    assert_int_equal(rly_client_retry_after("5s", now), -1);
    assert_int_equal(rly_client_retry_after("-1", now), -1);
    assert_int_equal(rly_client_retry_after("1.5", now), -1);
    assert_int_equal(rly_client_retry_after("soon", now), -1);
    /* HTTP-date: relative to now, never negative, capped */
    assert_int_equal(rly_client_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now), 10);
    assert_int_equal(rly_client_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), 0);
    assert_int_equal(rly_client_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), 0);
    assert_int_equal(rly_client_retry_after("Mon, 07 Nov 1994 08:49:37 GMT", now), RLY_CLIENT_RETRY_AFTER_MAX);
}

static void test_backoff_bounds(void **state)
{
    (void)state;
    static const uint32_t rnds[] = {0, 1, 2, 12345, 0x7fffffff, 0xfffffffe, 0xffffffff};
    long prev_max = 0;

    assert_int_equal(rly_client_backoff_ms(0, 0), RLY_CLIENT_BACKOFF_BASE_MS / 2);
    for (unsigned a = 0; a != 200; a++) {
        long d = RLY_CLIENT_BACKOFF_BASE_MS;
        for (unsigned i = 0; i != a && d < RLY_CLIENT_BACKOFF_CAP_MS; i++)
            d *= 2;
        if (d > RLY_CLIENT_BACKOFF_CAP_MS)
            d = RLY_CLIENT_BACKOFF_CAP_MS;
        assert_true(d >= prev_max); /* never shrinks */
        prev_max = d;
        for (size_t j = 0; j != sizeof(rnds) / sizeof(rnds[0]); j++) {
            long v = rly_client_backoff_ms(a, rnds[j]);
            if (v < d / 2 || v > d || v > RLY_CLIENT_BACKOFF_CAP_MS)
                fail_msg("attempt %u rnd %u: %ld not in [%ld, %ld]", a, rnds[j], v, d / 2, d);
        }
    }
    assert_int_equal(rly_client_backoff_ms(1000000, 0), RLY_CLIENT_BACKOFF_CAP_MS / 2);
    assert_int_equal(rly_client_backoff_ms(0xffffffffu, 0xffffffffu) <= RLY_CLIENT_BACKOFF_CAP_MS, 1);
}

static void test_args_ok(void **state)
{
    (void)state;
    assert_int_equal(parse("--relay", "https://relay.example/", "--authorize-url=" AS, "--client-id", "cid", "--scope", "a",
                           "--scope=b", "--audience", "api.atlassian.com", "--prompt", "consent", "--param", "k=v", "--return-uri",
                           "https://qorus.example.com:8011/grant", "--seal", "--token-url",
                           "https://auth.atlassian.com/oauth/token", "--client-secret-file", "/dev/null", "--pkce", "--ttl", "120",
                           "--cacert", "/tmp/ca.pem", "--timeout", "5", NULL),
                     0);
    assert_string_equal(opts.relay, "https://relay.example/");
    assert_string_equal(opts.authorize_url, AS);
    assert_string_equal(opts.client_id, "cid");
    assert_int_equal(opts.nscopes, 2);
    assert_string_equal(opts.scopes[0], "a");
    assert_string_equal(opts.scopes[1], "b");
    assert_string_equal(opts.audience, "api.atlassian.com");
    assert_string_equal(opts.prompt, "consent");
    assert_int_equal(opts.nparams, 1);
    assert_string_equal(opts.params[0], "k=v");
    assert_string_equal(opts.return_uri, "https://qorus.example.com:8011/grant");
    assert_true(opts.seal && opts.pkce && !opts.insecure && !opts.help);
    assert_string_equal(opts.token_url, "https://auth.atlassian.com/oauth/token");
    assert_string_equal(opts.client_secret_file, "/dev/null");
    assert_int_equal(opts.ttl, 120);
    assert_string_equal(opts.cacert, "/tmp/ca.pem");
    assert_int_equal(opts.timeout, 5);

    /* defaults */
    assert_int_equal(parse(BASE, NULL), 0);
    assert_int_equal(opts.ttl, 0);
    assert_int_equal(opts.timeout, RLY_CLIENT_TIMEOUT_DEFAULT);
    assert_null(opts.audience);
    assert_null(opts.token_url);

    /* http only to loopback hosts; --insecure with a loopback relay */
    assert_int_equal(
        parse("--relay", "http://127.0.0.1:8443", "--authorize-url", "http://localhost:9000/authorize", "--client-id", "c", NULL),
        0);
    assert_int_equal(parse("--relay", "https://[::1]:8443", "--insecure", "--authorize-url", "http://[::1]/a", "--client-id", "c",
                           "--token-url", "http://127.0.0.2/token", "--pkce", NULL),
                     0);
    assert_true(opts.insecure);
    assert_int_equal(parse("--relay", "https://localhost:8443", "--insecure", "--authorize-url", AS, "--client-id", "c", NULL), 0);

    /* --help wins over anything else */
    assert_int_equal(parse("--bogus", NULL), -1);
    assert_int_equal(parse("--help", "--bogus", NULL), 0);
    assert_true(opts.help);
    assert_int_equal(parse("--relay", "x", "-h", NULL), 0);
    assert_true(opts.help);
}

static void test_args_errors(void **state)
{
    (void)state;
    expect_usage(parse("--authorize-url", AS, "--client-id", "c", NULL), "--relay URL is required");
    expect_usage(parse("--relay", "https://r.example", "--client-id", "c", NULL), "--authorize-url URL is required");
    expect_usage(parse("--relay", "https://r.example", "--authorize-url", AS, NULL), "--client-id ID is required");
    expect_usage(parse("--relay", "http://relay.example", "--authorize-url", AS, "--client-id", "c", NULL),
                 "--relay: http:// is accepted only for a loopback host");
    expect_usage(parse("--relay", "http://10.0.0.1:8443", "--authorize-url", AS, "--client-id", "c", NULL), "loopback");
    expect_usage(parse("--relay", "https://r.example", "--authorize-url", "http://as.example/authorize", "--client-id", "c", NULL),
                 "--authorize-url: http:// is accepted only for a loopback host");
    expect_usage(parse("--relay", "ftp://r.example", "--authorize-url", AS, "--client-id", "c", NULL), "--relay: ");
    expect_usage(parse("--relay", "https://r.example/#x", "--authorize-url", AS, "--client-id", "c", NULL), "fragment");
    expect_usage(parse("--relay", "https://u:p@r.example", "--authorize-url", AS, "--client-id", "c", NULL), "userinfo");
    expect_usage(parse("--relay", "https://r.example/?a=1", "--authorize-url", AS, "--client-id", "c", NULL), "no query");
    expect_usage(parse("--relay", "relay.example", "--authorize-url", AS, "--client-id", "c", NULL), "--relay: ");
    expect_usage(parse(BASE, "--insecure", NULL), "--insecure is accepted only for a loopback relay");
    expect_usage(parse(BASE, "--return-uri", "http://qorus.example.com/grant", NULL), "--return-uri: ");
    expect_usage(parse(BASE, "--token-url", "http://as.example/token", "--pkce", NULL), "--token-url: ");
    expect_usage(parse(BASE, "--token-url", "https://as.example/token", NULL), "--client-secret-file FILE, --pkce");
    expect_usage(parse(BASE, "--client-secret-file", "/dev/null", NULL), "only with --token-url");
    expect_usage(parse(BASE, "--param", "novalue", NULL), "expected k=v");
    expect_usage(parse(BASE, "--param", "=v", NULL), "expected k=v");
    expect_usage(parse(BASE, "--param", "state=x", NULL), "state is set by the client");
    expect_usage(parse(BASE, "--param", "redirect_uri=https://evil.example", NULL), "redirect_uri is set by the client");
    expect_usage(parse(BASE, "--param", "code_challenge=x", NULL), "code_challenge is set");
    expect_usage(parse(BASE, "--ttl", "59", NULL), "--ttl");
    expect_usage(parse(BASE, "--ttl", "86401", NULL), "--ttl");
    expect_usage(parse(BASE, "--ttl", "6O", NULL), "--ttl");
    expect_usage(parse(BASE, "--ttl", "-60", NULL), "--ttl");
    expect_usage(parse(BASE, "--ttl", "60", "--ttl", "70", NULL), "--ttl given twice");
    expect_usage(parse(BASE, "--timeout", "0", NULL), "--timeout");
    expect_usage(parse(BASE, "--timeout", "99999999999999999999", NULL), "--timeout");
    expect_usage(parse(BASE, "--client-id", "d", NULL), "--client-id given twice");
    expect_usage(parse(BASE, "--audience", NULL), "--audience needs a value");
    expect_usage(parse(BASE, "--audience", "", NULL), "--audience: empty value");
    expect_usage(parse(BASE, "--audience=", NULL), "--audience: empty value");
    expect_usage(parse(BASE, "--seal=yes", NULL), "--seal takes no value");
    expect_usage(parse(BASE, "--sealed", NULL), "unknown option: --sealed");
    expect_usage(parse(BASE, "-x", NULL), "unexpected argument: -x");
    expect_usage(parse(BASE, "stray", NULL), "unexpected argument: stray");

    char *argv[2 * RLY_CLIENT_ARGS_MAX + 8];
    int argc = 0;
    argv[argc++] = "--relay";
    argv[argc++] = "https://r.example";
    argv[argc++] = "--authorize-url";
    argv[argc++] = AS;
    argv[argc++] = "--client-id";
    argv[argc++] = "c";
    for (int i = 0; i <= RLY_CLIENT_ARGS_MAX; i++) {
        argv[argc++] = "--scope";
        argv[argc++] = "s";
    }
    assert_int_equal(rly_client_parse_args(&opts, argc - 2, argv, err, sizeof(err)), 0);
    assert_int_equal(rly_client_parse_args(&opts, argc, argv, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--scope given more than"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_atlassian),
        cmocka_unit_test(test_url_minimal_and_query),
        cmocka_unit_test(test_url_params_encoding_pkce),
        cmocka_unit_test(test_pct_encode),
        cmocka_unit_test(test_pkce),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_backoff_bounds),
        cmocka_unit_test(test_args_ok),
        cmocka_unit_test(test_args_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
