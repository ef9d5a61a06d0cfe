/* test_client.c: unit tests of the pure parts of the client protocol (common/client.c): URL, authorize_params, PKCE, options,
 * retries, the return listener's HTTP, the pasted release */
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
    /* --unbound: a name outside the 1.1 rules of authorize_params is sent as it is, percent-encoded */
    assert_int_equal(parse("--relay", "https://relay.example", "--authorize-url", AS, "--client-id", "c i/d&x=y", "--scope", "a+b",
                           "--param", "login_hint=jo@example.com", "--param", "we ird=v=1&2 ~.-_", "--param", "empty=", "--prompt",
                           "consent", "--unbound", NULL),
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
                           "--cacert", "/tmp/ca.pem", "--timeout", "5", "--no-listen", "--label", "Qorus prod", NULL),
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
    assert_true(opts.no_listen && !opts.unbound);
    assert_string_equal(opts.label, "Qorus prod");

    /* defaults: protocol 1.1 with a listener on an ephemeral port */
    assert_int_equal(parse(BASE, NULL), 0);
    assert_int_equal(opts.ttl, 0);
    assert_int_equal(opts.timeout, RLY_CLIENT_TIMEOUT_DEFAULT);
    assert_null(opts.audience);
    assert_null(opts.token_url);
    assert_null(opts.return_uri);
    assert_null(opts.label);
    assert_false(opts.unbound || opts.no_listen);
    assert_int_equal(opts.listen_port, 0);
    assert_int_equal(opts.paste_fd, 0);

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

static void test_args_modes(void **state)
{
    (void)state;
    /* 1.1 with a listener: its port; --unbound: version 1 with --return-uri (a query allowed), as before */
    assert_int_equal(parse(BASE, "--listen-port", "8400", "--label", "Qorus \xc3\xa9t\xc3\xa9", NULL), 0);
    assert_int_equal(opts.listen_port, 8400);
    assert_int_equal(parse(BASE, "--listen-port=65535", NULL), 0);
    assert_int_equal(parse(BASE, "--unbound", "--return-uri", "https://qorus.example.com:8011/grant?tab=oauth", NULL), 0);
    assert_true(opts.unbound);
    assert_int_equal(parse(BASE, "--unbound", NULL), 0);
    assert_null(opts.return_uri);
    assert_int_equal(parse(BASE, "--no-listen", "--return-uri", "http://127.0.0.1:8011/grant", NULL), 0);

    expect_usage(parse(BASE, "--return-uri", "https://qorus.example.com:8011/grant", NULL),
                 "--return-uri goes with --no-listen or --unbound");
    expect_usage(parse(BASE, "--no-listen", NULL), "--no-listen needs --return-uri URI");
    expect_usage(parse(BASE, "--no-listen", "--return-uri", "https://q.example/grant", "--listen-port", "8400", NULL),
                 "--listen-port is for the return listener: not with --no-listen");
    expect_usage(parse(BASE, "--no-listen", "--return-uri", "https://q.example/grant?tab=oauth", NULL),
                 "--return-uri: a protocol 1.1 return_uri has no query");
    expect_usage(parse(BASE, "--no-listen", "--return-uri", "https://u@q.example/grant", NULL), "--return-uri: ");
    expect_usage(parse(BASE, "--unbound", "--no-listen", NULL), "--no-listen is for protocol 1.1 flows: not with --unbound");
    expect_usage(parse(BASE, "--unbound", "--listen-port", "8400", NULL), "--listen-port is for protocol 1.1 flows");
    expect_usage(parse(BASE, "--unbound", "--label", "x", NULL), "--label is for protocol 1.1 flows");
    expect_usage(parse(BASE, "--listen-port", "0", NULL), "--listen-port: not a port number");
    expect_usage(parse(BASE, "--listen-port", "65536", NULL), "--listen-port: not a port number");
    expect_usage(parse(BASE, "--listen-port", "80a", NULL), "--listen-port: not a port number");
    expect_usage(parse(BASE, "--listen-port", "1", "--listen-port", "2", NULL), "--listen-port given twice");
    expect_usage(parse(BASE, "--unbound=1", NULL), "--unbound takes no value");

    /* the label: UTF-8 of at most 64 bytes without Cc, Cf, Zl, Zp */
    expect_usage(parse(BASE, "--label", "tab\there", NULL), "--label: no control");
    expect_usage(parse(BASE, "--label", "bidi \xe2\x80\xae", NULL), "--label: no control");
    expect_usage(parse(BASE, "--label", "line\xe2\x80\xa8sep", NULL), "--label: no control");
    expect_usage(parse(BASE, "--label", "\xff", NULL), "--label: not UTF-8");
    char long_label[RLY_LABEL_MAX + 2];
    memset(long_label, 'x', sizeof(long_label) - 1);
    long_label[sizeof(long_label) - 1] = '\0';
    expect_usage(parse(BASE, "--label", long_label, NULL), "--label: at most 64 bytes");
    long_label[RLY_LABEL_MAX] = '\0';
    assert_int_equal(parse(BASE, "--label", long_label, NULL), 0);
}

static void test_args_authorize_params(void **state)
{
    (void)state;
    /* the 1.1 rules of authorize_params, checked before anything is sent */
    assert_int_equal(
        parse(BASE, "--param", "response_mode=form_post", "--param", "login_hint=jo@example.com", "--param", "x.y-z_1=", NULL), 0);
    expect_usage(parse(BASE, "--param", "we ird=v", NULL), "--param: a name is 1 to 64 of A-Z a-z 0-9 . _ -");
    expect_usage(parse(BASE, "--param", "k=caf\xc3\xa9", NULL), "--param k: only printable ASCII");
    expect_usage(parse(BASE, "--param", "k=tab\tx", NULL), "--param k: only printable ASCII");
    expect_usage(parse(BASE, "--param", "k=1", "--param", "k=2", NULL), "--param k given twice");
    expect_usage(parse(BASE, "--scope", "caf\xc3\xa9", NULL), "--scope: only printable ASCII");
    expect_usage(parse(BASE, "--audience", "a\x01", NULL), "--audience: only printable ASCII");
    expect_usage(parse("--relay", "https://r.example", "--authorize-url", AS, "--client-id", "c\xc3\xa9", NULL),
                 "--client-id: only printable ASCII");
    /* reserved names in any letter case */
    expect_usage(parse(BASE, "--param", "Redirect_URI=https://evil.example", NULL), "Redirect_URI is set by the client");
    expect_usage(parse(BASE, "--param", "STATE=x", NULL), "STATE is set by the client");
    expect_usage(parse(BASE, "--param", "Response_Type=token", NULL), "is set by the client");

    /* at most 32 members: client_id + 31 params passes, one more does not; the 4 KiB of names and values */
    char *argv[2 * 40 + 8], names[40][16];
    int argc = 0;
    argv[argc++] = "--relay";
    argv[argc++] = "https://r.example";
    argv[argc++] = "--authorize-url";
    argv[argc++] = AS;
    argv[argc++] = "--client-id";
    argv[argc++] = "c";
    for (int i = 0; i != 32; i++) {
        snprintf(names[i], sizeof(names[i]), "p%d=v", i);
        argv[argc++] = "--param";
        argv[argc++] = names[i];
    }
    assert_int_equal(rly_client_parse_args(&opts, argc - 2, argv, err, sizeof(err)), 0);
    assert_int_equal(rly_client_parse_args(&opts, argc, argv, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "too many authorize parameters"));
    static char big[RLY_AUTHORIZE_PARAMS_MAX + 8];
    memset(big, 'v', sizeof(big) - 1);
    memcpy(big, "k=", 2);
    big[RLY_AUTHORIZE_PARAMS_MAX - strlen("client_id") - 1 - 1 + 2] = '\0'; /* k + value + client_id + c = 4096 */
    assert_int_equal(parse("--relay", "https://r.example", "--authorize-url", AS, "--client-id", "c", "--param", big, NULL), 0);
    size_t blen = strlen(big);
    big[blen] = 'v';
    big[blen + 1] = '\0'; /* one byte more */
    expect_usage(parse("--relay", "https://r.example", "--authorize-url", AS, "--client-id", "c", "--param", big, NULL),
                 "longer than 4096 bytes");
    /* --unbound: none of these rules (the URL is built here, percent-encoded) */
    assert_int_equal(parse(BASE, "--unbound", "--param", "k=caf\xc3\xa9", "--param", "we ird=1", NULL), 0);
}

static void test_authorize_params(void **state)
{
    (void)state;
    char *j;

    assert_int_equal(parse(BASE, "--scope", "read:jira-work", "--scope", "offline_access", "--audience", "api.atlassian.com",
                           "--prompt", "consent", "--param", "login_hint=jo@example.com", "--param", "response_mode=form_post",
                           NULL),
                     0);
    j = rly_client_authorize_params(&opts, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    assert_non_null(j);
    assert_string_equal(j,
                        "{\"audience\":\"api.atlassian.com\",\"client_id\":\"cid\",\"scope\":\"read:jira-work offline_access\","
                        "\"prompt\":\"consent\",\"login_hint\":\"jo@example.com\",\"response_mode\":\"form_post\","
                        "\"code_challenge\":\"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\",\"code_challenge_method\":\"S256\"}");
    free(j);

    /* only client_id; JSON escaping of what needs it */
    assert_int_equal(parse("--relay", "https://r.example", "--authorize-url", AS, "--client-id", "a\"b\\c/d", NULL), 0);
    j = rly_client_authorize_params(&opts, NULL);
    assert_string_equal(j, "{\"client_id\":\"a\\\"b\\\\c/d\"}");
    free(j);
}

static void test_paste_tokens(void **state)
{
    (void)state;
    rly_str_t t[2];
    static const char both[] = "  AAECAwQFBgcICQoLDA0ODw \t key_43_chars\r";

    assert_int_equal(rly_client_paste_tokens(both, strlen(both), t), 2);
    assert_int_equal(t[0].len, 22);
    assert_memory_equal(t[0].base, "AAECAwQFBgcICQoLDA0ODw", 22);
    assert_int_equal(t[1].len, 12);
    assert_memory_equal(t[1].base, "key_43_chars", 12);
    assert_int_equal(rly_client_paste_tokens("one", 3, t), 1);
    assert_int_equal(t[0].len, 3);
    assert_int_equal(rly_client_paste_tokens("", 0, t), 0);
    assert_int_equal(rly_client_paste_tokens(" \t\r", 3, t), 0);
    assert_int_equal(rly_client_paste_tokens("a b c", 5, t), -1);
}

/* ---- the return listener's HTTP ---- */

#define SID "AAECAwQFBgcICQoLDA0ODw"
#define REL "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8" /* 32 bytes 00..1f */
#define REL2 "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8"

static void test_head_parse(void **state)
{
    (void)state;
    rly_client_http_req_t r;
    static const char ok[] =
        "POST /authrelay/return?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8400\r\ncontent-length:  12 \r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nExpect: 100-continue\r\nX-Empty:\r\n\r\nsession=abc&";

    assert_int_equal(rly_client_http_head_parse(ok, strlen(ok), &r), strlen(ok) - 12);
    assert_int_equal(r.method.len, 4);
    assert_memory_equal(r.method.base, "POST", 4);
    assert_int_equal(r.path.len, strlen("/authrelay/return"));
    assert_memory_equal(r.path.base, "/authrelay/return", r.path.len);
    assert_int_equal(r.query.len, 3);
    assert_memory_equal(r.query.base, "x=1", 3);
    assert_int_equal(r.host.len, 14);
    assert_memory_equal(r.host.base, "127.0.0.1:8400", 14);
    assert_int_equal(r.content_length, 12);
    assert_int_equal(r.content_type.len, strlen("application/x-www-form-urlencoded"));
    assert_true(r.expect_continue);
    assert_false(r.chunked);

    static const char get[] = "GET /authrelay/done HTTP/1.0\r\n\r\n";
    assert_int_equal(rly_client_http_head_parse(get, strlen(get), &r), strlen(get));
    assert_null(r.host.base);
    assert_null(r.query.base);
    assert_int_equal(r.content_length, -1);

    /* incomplete, at every length short of the blank line */
    for (size_t n = 0; n != strlen(get) - 1; n++)
        assert_int_equal(rly_client_http_head_parse(get, n, &r), -2);

    static const char *const bad[] = {
        "GET /x HTTP/2.0\r\n\r\n",
        "GET http://127.0.0.1/x HTTP/1.1\r\n\r\n",
        "GET  /x HTTP/1.1\r\n\r\n",
        "GET /x HTTP/1.1 \r\n\r\n",
        "G(T /x HTTP/1.1\r\n\r\n",
        "GET /x\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        "GET /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        "GET /x HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n",
        "GET /x HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n",
        "GET /x HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "GET /x HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
        "GET /x HTTP/1.1\r\nNo colon\r\n\r\n",
        "GET /x HTTP/1.1\r\n: v\r\n\r\n",
        "GET /x HTTP/1.1\r\nA: b\nC: d\r\n\r\n",
        "GET /x HTTP/1.1\r\nA: b\rC: d\r\n\r\n",
        "GET /x HTTP/1.1\r\nA: \x01\r\n\r\n",
        "\r\nGET /x HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); i++)
        if (rly_client_http_head_parse(bad[i], strlen(bad[i]), &r) != -1)
            fail_msg("accepted: %s", bad[i]);
    static const char nul[] = "GET /x HTTP/1.1\r\nA: b\0c\r\n\r\n";
    assert_int_equal(rly_client_http_head_parse(nul, sizeof(nul) - 1, &r), -1);
    static const char te[] = "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_int_equal(rly_client_http_head_parse(te, strlen(te), &r), strlen(te));
    assert_true(r.chunked);
}

/* serves one request (head and body in one text) and returns the response (static storage) and what serve returned */
static const char *serve(rly_client_return_t *rs, const char *text, int *got)
{
    static char storage[8192];
    rly_buf_t out;
    rly_client_http_req_t req;
    ssize_t h = rly_client_http_head_parse(text, strlen(text), &req);

    assert_true(h > 0);
    rly_buf_init_fixed(&out, storage, sizeof(storage));
    *got = rly_client_return_serve(rs, &req, text + h, strlen(text) - (size_t)h, &out);
    assert_int_equal(out.err, RLY_BUF_OK);
    return storage;
}

static const char *post(const char *host, const char *ctype, const char *body)
{
    static char text[4096];
    snprintf(text, sizeof(text), "POST /authrelay/return HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n%s",
             host, ctype, strlen(body), body);
    return text;
}

#define FORM "application/x-www-form-urlencoded"
#define HOST "127.0.0.1:8400"

static void expect_status(const char *resp, int status)
{
    char line[32];
    snprintf(line, sizeof(line), "HTTP/1.1 %d ", status);
    if (strncmp(resp, line, strlen(line)) != 0)
        fail_msg("expected %d, got: %.200s", status, resp);
    /* every answer: the whole response, closed, not cached, the pages' headers */
    assert_non_null(strstr(resp, "\r\nConnection: close\r\n"));
    assert_non_null(strstr(resp, "\r\nCache-Control: no-store\r\n"));
    assert_non_null(strstr(resp, "\r\nReferrer-Policy: no-referrer\r\n"));
    assert_non_null(strstr(resp, "\r\nX-Frame-Options: DENY\r\n"));
    assert_non_null(strstr(resp, "\r\nContent-Security-Policy: default-src 'none';"));
    const char *body = strstr(resp, "\r\n\r\n");
    const char *cl = strstr(resp, "\r\nContent-Length: ");
    assert_non_null(body);
    assert_non_null(cl);
    assert_int_equal(strtol(cl + 18, NULL, 10), strlen(body + 4));
    /* nothing of the request is echoed */
    assert_null(strstr(resp, REL));
    assert_null(strstr(resp, REL2));
    assert_null(strstr(resp, SID));
}

static void test_return_serve(void **state)
{
    (void)state;
    rly_client_return_t rs;
    const char *resp;
    int got;

    memset(&rs, 0, sizeof(rs));
    memcpy(rs.session, SID, sizeof(SID));
    snprintf(rs.host, sizeof(rs.host), HOST);

    /* a release for another session: 400, nothing kept, counted */
    resp = serve(&rs, post(HOST, FORM, "session=BBECAwQFBgcICQoLDA0ODw&status=success&message=&release=" REL), &got);
    expect_status(resp, 400);
    assert_int_equal(got, 0);
    assert_int_equal(rs.foreign, 1);
    assert_string_equal(rs.release, "");
    resp = serve(&rs, post(HOST, FORM, "session=short&release=" REL), &got);
    expect_status(resp, 400);
    assert_int_equal(rs.foreign, 2);

    /* malformed forms: nothing kept */
    static const char *const bad[] = {
        "release=" REL,
        "session=" SID,
        "session=" SID "&release=" REL "&session=" SID,
        "session=" SID "&release=" REL "&release=" REL,
        "session=" SID "&release=" REL "&status=success&status=error",
        "session=" SID "&release=" REL "x",
        "session=" SID "&release=" REL "%",
        "session=" SID "&release=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9", /* not canonical */
        "session=" SID "&release=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+",
    };
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); i++) {
        resp = serve(&rs, post(HOST, FORM, bad[i]), &got);
        expect_status(resp, 400);
        assert_int_equal(got, 0);
        assert_string_equal(rs.release, "");
    }
    /* wrong Host (DNS rebinding), media type, method, path, no length */
    expect_status(serve(&rs, post("localhost:8400", FORM, "session=" SID "&release=" REL), &got), 400);
    expect_status(serve(&rs, post("127.0.0.1:8401", FORM, "session=" SID "&release=" REL), &got), 400);
    expect_status(serve(&rs, post(HOST, "text/plain", "session=" SID "&release=" REL), &got), 415);
    expect_status(serve(&rs, post(HOST, "application/x-www-form-urlencodedX", "session=" SID "&release=" REL), &got), 415);
    resp = serve(&rs, "GET /authrelay/return HTTP/1.1\r\nHost: " HOST "\r\n\r\n", &got);
    expect_status(resp, 405);
    assert_non_null(strstr(resp, "\r\nAllow: POST\r\n"));
    expect_status(serve(&rs, "GET / HTTP/1.1\r\nHost: " HOST "\r\n\r\n", &got), 404);
    expect_status(serve(&rs, "GET /authrelay/return/x HTTP/1.1\r\nHost: " HOST "\r\n\r\n", &got), 404);
    expect_status(serve(&rs, "POST /authrelay/return HTTP/1.1\r\nHost: " HOST "\r\nContent-Type: " FORM "\r\n\r\n", &got), 411);
    expect_status(serve(&rs, "POST /authrelay/return HTTP/1.1\r\nHost: " HOST "\r\nTransfer-Encoding: chunked\r\n\r\n", &got), 411);
    assert_string_equal(rs.release, "");

    /* the done page before anything arrived */
    resp = serve(&rs, "GET /authrelay/done HTTP/1.1\r\nHost: " HOST "\r\n\r\n", &got);
    expect_status(resp, 200);
    assert_non_null(strstr(resp, "Waiting for the sign-in"));

    /* this session's release (with a charset parameter, as some browsers send): kept, 303 to the done page */
    resp = serve(&rs, post(HOST, FORM "; charset=UTF-8", "session=" SID "&status=success&message=&release=" REL), &got);
    expect_status(resp, 303);
    assert_non_null(strstr(resp, "\r\nLocation: /authrelay/done\r\n"));
    assert_int_equal(got, 1);
    assert_string_equal(rs.release, REL);
    assert_true(rs.success);
    /* the same form again (a resubmission): 303 again, nothing new; another release: 400 and the first one stays */
    resp = serve(&rs, post(HOST, FORM, "session=" SID "&status=success&message=&release=" REL), &got);
    expect_status(resp, 303);
    assert_int_equal(got, 0);
    resp = serve(&rs, post(HOST, FORM, "session=" SID "&status=success&message=&release=" REL2), &got);
    expect_status(resp, 400);
    assert_int_equal(got, 0);
    assert_string_equal(rs.release, REL);

    resp = serve(&rs, "GET /authrelay/done?status=error HTTP/1.1\r\nHost: " HOST "\r\n\r\n", &got);
    expect_status(resp, 200);
    assert_non_null(strstr(resp, "<h1>Sign-in complete</h1>"));
    assert_non_null(strstr(resp, "Content-Type: text/html; charset=utf-8"));
    assert_true(rs.done_served);
    resp = serve(&rs, "POST /authrelay/done HTTP/1.1\r\nHost: " HOST "\r\nContent-Length: 0\r\n\r\n", &got);
    expect_status(resp, 405);
    assert_non_null(strstr(resp, "\r\nAllow: GET\r\n"));

    /* a denial comes back with status=error: the done page says so */
    memset(rs.release, 0, sizeof(rs.release));
    resp = serve(&rs, post(HOST, FORM, "session=" SID "&status=error&message=access_denied&release=" REL2), &got);
    expect_status(resp, 303);
    assert_false(rs.success);
    resp = serve(&rs, "GET /authrelay/done HTTP/1.1\r\nHost: " HOST "\r\n\r\n", &got);
    assert_non_null(strstr(resp, "<h1>Sign-in not granted</h1>"));

    /* the error pages */
    static const int codes[] = {400, 408, 413, 431, 500};
    for (size_t i = 0; i != sizeof(codes) / sizeof(codes[0]); i++) {
        static char storage[4096];
        rly_buf_t out;
        rly_buf_init_fixed(&out, storage, sizeof(storage));
        rly_client_return_error(codes[i], &out);
        assert_int_equal(out.err, RLY_BUF_OK);
        expect_status(storage, codes[i]);
    }
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
        cmocka_unit_test(test_args_modes),
        cmocka_unit_test(test_args_authorize_params),
        cmocka_unit_test(test_authorize_params),
        cmocka_unit_test(test_paste_tokens),
        cmocka_unit_test(test_head_parse),
        cmocka_unit_test(test_return_serve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
