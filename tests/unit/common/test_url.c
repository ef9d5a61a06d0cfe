/* test_url.c: unit tests of the authorization_server and return_uri checks (common/url.c) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "addr.h"
#include "url.h"

static char host[RLY_AS_HOST_MAX + 1];
static const char *errstr;
static char big[4096];

static int as(const char *url, int allow_http_loopback)
{
    int r;

    errstr = NULL;
    memset(host, 'X', sizeof(host));
    r = rly_url_check_as(url, strlen(url), allow_http_loopback, host, sizeof(host), &errstr);
    if (r != 0) {
        assert_int_equal(r, -1);
        assert_non_null(errstr);
        assert_null(strstr(errstr, "evil"));
    }
    return r;
}

static int ret(const char *url)
{
    int r;

    errstr = NULL;
    r = rly_url_check_return(url, strlen(url), &errstr);
    if (r != 0) {
        assert_int_equal(r, -1);
        assert_non_null(errstr);
        assert_null(strstr(errstr, "evil"));
    }
    return r;
}

/* big = prefix + n copies of c + suffix */
static const char *build(const char *prefix, char c, size_t n, const char *suffix)
{
    size_t plen = strlen(prefix), slen = strlen(suffix);

    assert_true(plen + n + slen < sizeof(big));
    memcpy(big, prefix, plen);
    memset(big + plen, c, n);
    memcpy(big + plen + n, suffix, slen + 1);
    return big;
}

static void test_as_https_ok(void **state)
{
    (void)state;
    assert_int_equal(as("https://auth.atlassian.com/authorize", 0), 0);
    assert_string_equal(host, "auth.atlassian.com");
    assert_int_equal(as("https://auth.atlassian.com/authorize?audience=api.atlassian.com&prompt=consent", 0), 0);
    assert_string_equal(host, "auth.atlassian.com");
    assert_int_equal(as("https://auth.atlassian.com", 0), 0);
    assert_string_equal(host, "auth.atlassian.com");
    assert_int_equal(as("https://as.example:8443/oauth/authorize", 0), 0);
    assert_string_equal(host, "as.example"); /* without the port */
    assert_int_equal(as("https://as.example:65535?x", 0), 0);
    assert_string_equal(host, "as.example");
    assert_int_equal(as("https://192.0.2.1/authorize", 0), 0);
    assert_string_equal(host, "192.0.2.1");
    assert_int_equal(as("https://[2001:db8::1]:443/authorize", 0), 0);
    assert_string_equal(host, "[2001:db8::1]");
}

static void test_as_host_lowered(void **state)
{
    (void)state;
    assert_int_equal(as("HTTPS://Auth.Atlassian.COM/Authorize", 0), 0);
    assert_string_equal(host, "auth.atlassian.com");
    assert_int_equal(as("https://[2001:DB8::A]/", 0), 0);
    assert_string_equal(host, "[2001:db8::a]");
}

static void test_as_http(void **state)
{
    (void)state;
    /* never to a public host */
    assert_int_equal(as("http://auth.atlassian.com/authorize", 0), -1);
    assert_int_equal(as("http://auth.atlassian.com/authorize", 1), -1);
    /* to loopback only in dev mode */
    assert_int_equal(as("http://localhost:8080/authorize", 0), -1);
    assert_int_equal(as("http://localhost:8080/authorize", 1), 0);
    assert_string_equal(host, "localhost");
    assert_int_equal(as("http://LocalHost/authorize", 1), 0);
    assert_string_equal(host, "localhost");
    assert_int_equal(as("http://127.0.0.1:9999/a", 1), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(as("http://127.10.20.30/a", 1), 0);
    assert_int_equal(as("http://[::1]:9000/authorize", 0), -1);
    assert_int_equal(as("http://[::1]:9000/authorize", 1), 0);
    assert_string_equal(host, "[::1]");
    /* https to loopback is fine without dev mode */
    assert_int_equal(as("https://localhost/authorize", 0), 0);
}

static void test_as_loopback_lookalikes(void **state)
{
    (void)state;
    assert_int_equal(as("http://127.0.0.1.evil.com/", 1), -1);
    assert_int_equal(as("http://localhost.evil.com/", 1), -1);
    assert_int_equal(as("http://evil.com/localhost", 1), -1);
    assert_int_equal(as("http://evil.com?127.0.0.1", 1), -1);
    assert_int_equal(as("http://127.0.0.1@evil.com/", 1), -1);
    assert_int_equal(as("http://localhost:80@evil.com/", 1), -1);
    assert_int_equal(as("http://evil.com\\@localhost/", 1), -1);
    assert_int_equal(as("http://[::ffff:127.0.0.1]/", 1), -1);
    assert_int_equal(as("http://[::2]/", 1), -1);
    assert_int_equal(as("http://128.0.0.1/", 1), -1);
    assert_int_equal(as("http://localhost./", 1), -1);
    assert_int_equal(as("http://localhos/", 1), -1);
    /* other spellings of 127.0.0.1 that libcurl (and browsers) would rewrite are not canonical */
    assert_int_equal(as("http://127.1/", 1), -1);
    assert_int_equal(as("http://2130706433/", 1), -1);
    assert_int_equal(as("http://0x7f.0.0.1/", 1), -1);
    assert_int_equal(as("http://0177.0.0.1/", 1), -1);
    assert_int_equal(as("http://127.0.0.01/", 1), -1);
    assert_int_equal(as("https://127.1/", 0), -1);
    assert_int_equal(as("http://[0:0:0:0:0:0:0:1]/", 1), -1);
    assert_int_equal(as("http://[::1%25lo]/", 1), -1);
    assert_int_equal(as("http://local%68ost/", 1), -1);
}

static void test_as_userinfo(void **state)
{
    (void)state;
    assert_int_equal(as("https://user:pw@auth.atlassian.com/authorize", 0), -1);
    assert_int_equal(as("https://user@auth.atlassian.com/authorize", 0), -1);
    assert_int_equal(as("https://@auth.atlassian.com/authorize", 0), -1);
    assert_int_equal(as("https://auth.atlassian.com@evil.com/", 0), -1);
    /* an '@' after the authority is only path or query */
    assert_int_equal(as("https://auth.atlassian.com/a@b?c=d@e", 0), 0);
    assert_string_equal(host, "auth.atlassian.com");
}

static void test_as_fragment(void **state)
{
    (void)state;
    assert_int_equal(as("https://auth.atlassian.com/authorize#x", 0), -1);
    assert_int_equal(as("https://auth.atlassian.com/authorize#", 0), -1);
    assert_int_equal(as("https://auth.atlassian.com#", 0), -1);
    assert_int_equal(as("https://auth.atlassian.com/?a=b#c", 0), -1);
}

static void test_as_bytes(void **state)
{
    (void)state;
    assert_int_equal(as("https://auth.atlassian.com/a b", 0), -1);
    assert_int_equal(as(" https://auth.atlassian.com/", 0), -1);
    assert_int_equal(as("https://auth.atlassian.com/ ", 0), -1);
    assert_int_equal(as("https://auth.atlassian.com/\t", 0), -1);
    assert_int_equal(as("https://auth.atlassian.com/\r\nX-Evil: 1", 0), -1);
    assert_int_equal(as("https://auth.atlassian.com/\x7f", 0), -1);
    assert_int_equal(as("https://auth.atlassian.com/\x80", 0), -1);
    assert_int_equal(as("https://b\xc3\xbc"
                        "cher.example/",
                        0),
                     -1);
    /* a NUL byte inside the given length */
    assert_int_equal(rly_url_check_as("https://a.example/\0x", 20, 0, host, sizeof(host), &errstr), -1);
    assert_int_equal(rly_url_check_return("https://a.example/\0x", 20, &errstr), -1);
    /* only len bytes count: the same text cut before the NUL is fine */
    assert_int_equal(rly_url_check_as("https://a.example/\0x", 18, 0, host, sizeof(host), &errstr), 0);
    assert_string_equal(host, "a.example");
}

static void test_as_host_missing_or_bad(void **state)
{
    (void)state;
    assert_int_equal(as("https://", 0), -1);
    assert_int_equal(as("https:///authorize", 0), -1);
    assert_int_equal(as("https://:443/authorize", 0), -1);
    assert_int_equal(as("https://?x=1", 0), -1);
    assert_int_equal(as("https:/auth.atlassian.com/", 0), -1);
    assert_int_equal(as("https:auth.atlassian.com", 0), -1);
    assert_int_equal(as("//auth.atlassian.com/", 0), -1);
    assert_int_equal(as("auth.atlassian.com", 0), -1);
    assert_int_equal(as("", 0), -1);
    assert_int_equal(as("https://a..b/", 0), -1);
    assert_int_equal(as("https://.a/", 0), -1);
    assert_int_equal(as("https://a.b\\c/", 0), -1);
    assert_int_equal(as("https://a.b\\evil.com", 0), -1);
    assert_int_equal(as("https://ex%41mple.com/", 0), -1);
    assert_int_equal(as("https://[::1/", 0), -1);
    assert_int_equal(as("https://[not-ipv6]/", 0), -1);
    assert_int_equal(as("https://[]/", 0), -1);
    assert_int_equal(as("https://[::1]x/", 0), -1);
    /* ports */
    assert_int_equal(as("https://a.example:/", 0), -1);
    assert_int_equal(as("https://a.example:0/", 0), -1);
    assert_int_equal(as("https://a.example:65536/", 0), -1);
    assert_int_equal(as("https://a.example:123456/", 0), -1);
    assert_int_equal(as("https://a.example:44x/", 0), -1);
    assert_int_equal(as("https://a.example:443:443/", 0), -1);
}

static void test_as_scheme(void **state)
{
    (void)state;
    assert_int_equal(as("ftp://auth.atlassian.com/", 0), -1);
    assert_int_equal(as("ftp://localhost/", 1), -1);
    assert_int_equal(as("javascript://auth.atlassian.com/%0aalert(1)", 0), -1);
    assert_int_equal(as("httpx://auth.atlassian.com/", 0), -1);
    assert_int_equal(as("https:\\\\auth.atlassian.com/", 0), -1);
    assert_int_equal(as("data:text/html,x", 0), -1);
}

static void test_as_lengths(void **state)
{
    const char *prefix = "https://a.example/";

    (void)state;
    assert_int_equal(as(build(prefix, 'p', 2048 - strlen(prefix), ""), 0), 0);
    assert_int_equal(as(build(prefix, 'p', 2049 - strlen(prefix), ""), 0), -1);
}

/* url = "https://" + a host of hostlen characters in labels of at most 63 + "/x" */
static const char *url_with_host(char *url, size_t hostlen)
{
    size_t len = 8, i;

    memcpy(url, "https://", 8);
    for (i = 0; i < hostlen; i++)
        url[len++] = (i + 1) % 64 == 0 && i + 1 != hostlen ? '.' : (char)('a' + i % 26);
    memcpy(url + len, "/x", 3);
    return url;
}

static void test_as_host_length(void **state)
{
    char url[600];

    (void)state;
    assert_int_equal(as(url_with_host(url, RLY_AS_HOST_MAX), 0), 0);
    assert_int_equal(strlen(host), RLY_AS_HOST_MAX);
    assert_memory_equal(host, url + 8, RLY_AS_HOST_MAX);
    assert_int_equal(as(url_with_host(url, RLY_AS_HOST_MAX + 1), 0), -1);
    assert_int_equal(ret(url_with_host(url, RLY_AS_HOST_MAX)), 0);
    assert_int_equal(ret(url_with_host(url, RLY_AS_HOST_MAX + 1)), -1);
}

static void test_as_hostcap(void **state)
{
    char small[10];

    (void)state;
    assert_int_equal(rly_url_check_as("https://a.example/", 18, 0, small, sizeof(small), &errstr), 0);
    assert_string_equal(small, "a.example");
    assert_int_equal(rly_url_check_as("https://ab.example/", 19, 0, small, sizeof(small), &errstr), -1);
}

static void test_return(void **state)
{
    (void)state;
    assert_int_equal(ret("https://qorus.example.com:8011/grant"), 0);
    assert_int_equal(ret("https://qorus.example.com:8011/grant?tab=oauth&x=1"), 0);
    assert_int_equal(ret("http://localhost:8011/grant"), 0);
    assert_int_equal(ret("http://127.0.0.1:8011/grant"), 0);
    assert_int_equal(ret("http://[::1]:8011/grant"), 0);
    assert_int_equal(ret("http://qorus.example.com:8011/grant"), -1);
    assert_int_equal(ret("http://localhost.evil.com/grant"), -1);
    assert_int_equal(ret("http://127.0.0.1.evil.com/grant"), -1);
    assert_int_equal(ret("https://qorus.example.com/grant#tab"), -1);
    assert_int_equal(ret("https://user:pw@qorus.example.com/grant"), -1);
    assert_int_equal(ret("https://qorus.example.com/gr ant"), -1);
    assert_int_equal(ret("https:///grant"), -1);
    assert_int_equal(ret("/grant"), -1);
    assert_int_equal(ret("javascript:alert(1)"), -1);
    assert_int_equal(ret("ftp://qorus.example.com/"), -1);
    assert_int_equal(ret(""), -1);
    assert_int_equal(rly_url_check_return(NULL, 0, &errstr), -1);
}

static void test_return_length(void **state)
{
    const char *prefix = "https://qorus.example.com/";

    (void)state;
    assert_int_equal(ret(build(prefix, 'p', RLY_RETURN_URI_MAX - strlen(prefix), "")), 0);
    assert_int_equal(ret(build(prefix, 'p', RLY_RETURN_URI_MAX + 1 - strlen(prefix), "")), -1);
}

static void test_is_loopback(void **state)
{
    /* "::1" without brackets too: the URL hosts seen here are bracketed, rly_hostport_t hosts are not */
    static const char *yes[] = {"localhost",       "LOCALHOST", "LocalHost", "127.0.0.1",         "127.0.0.0",
                                "127.255.255.255", "127.1.2.3", "[::1]",     "[0:0:0:0:0:0:0:1]", "::1"};
    static const char *no[] = {"",
                               "localhost.",
                               "localhost.evil.com",
                               "127.0.0.1.evil.com",
                               "evil.127.0.0.1",
                               "127.0.0",
                               "127.0.0.1.",
                               "127.0.0.256",
                               "127.0.0.1000",
                               "0127.0.0.1",
                               "127.00.0.1",
                               "128.0.0.1",
                               "126.0.0.1",
                               "127.0.0.-1",
                               "127.0.0.1:80",
                               "[::2]",
                               "[::ffff:127.0.0.1]",
                               "[::1",
                               "localhos",
                               "localhostx",
                               "1.127.0.0",
                               "[]",
                               "[::1%25lo]",
                               "127.0.0.0x1"};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        assert_int_equal(rly_host_is_loopback(yes[i], strlen(yes[i])), 1);
    for (i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        assert_int_equal(rly_host_is_loopback(no[i], strlen(no[i])), 0);
    /* length-bounded: "localhost" followed by more bytes that are not counted */
    assert_int_equal(rly_host_is_loopback("localhost.evil.com", 9), 1);
    assert_int_equal(rly_host_is_loopback("localhost", 8), 0);
}

/* allow-list entries: exact hosts and IP literals, or "*." and a suffix of two labels or more */
static void test_as_entries(void **state)
{
    static const char *const yes[] = {"auth.atlassian.com", "localhost",           "127.0.0.1",      "[::1]",
                                      "*.okta.com",         "*.my.salesforce.com", "a-b.c0.example", "x.y"};
    static const char *const no[] = {
        "",           "*",          "*.",         "*.com",      "**.okta.com", "*okta.com", "a.*.com",     "Okta.com",
        "*.Okta.com", "-a.example", "a-.example", "a..b",       ".a.b",        "a.b.",      "a b.example", "auth.example:443",
        "[::1",       "[::1]:80",   "*.[::1]",    "a_b.example"};
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (!rly_url_as_entry_ok(yes[i], strlen(yes[i])))
            fail_msg("%s should be a valid entry", yes[i]);
    for (i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (rly_url_as_entry_ok(no[i], strlen(no[i])))
            fail_msg("%s should not be a valid entry", no[i]);
}

static void test_as_match(void **state)
{
    static const char *const entries[] = {"*.okta.com", "*.example.okta.com", "id.example.okta.com", "auth.atlassian.com"};
    (void)state;
    assert_string_equal(rly_url_as_match("acme.okta.com", entries, 4), "*.okta.com");
    assert_string_equal(rly_url_as_match("a.b.okta.com", entries, 4), "*.okta.com");
    assert_string_equal(rly_url_as_match("x.example.okta.com", entries, 4), "*.example.okta.com");
    assert_string_equal(rly_url_as_match("id.example.okta.com", entries, 4), "id.example.okta.com");
    assert_string_equal(rly_url_as_match("auth.atlassian.com", entries, 4), "auth.atlassian.com");
    assert_null(rly_url_as_match("okta.com", entries, 4));
    assert_null(rly_url_as_match("evilokta.com", entries, 4));
    assert_null(rly_url_as_match("okta.com.evil.com", entries, 4));
    assert_null(rly_url_as_match("atlassian.com", entries, 4));
    assert_null(rly_url_as_match("xauth.atlassian.com", entries, 4));
    assert_null(rly_url_as_match("acme.okta.com", entries, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_as_https_ok),    cmocka_unit_test(test_as_host_lowered),
        cmocka_unit_test(test_as_http),        cmocka_unit_test(test_as_loopback_lookalikes),
        cmocka_unit_test(test_as_userinfo),    cmocka_unit_test(test_as_fragment),
        cmocka_unit_test(test_as_bytes),       cmocka_unit_test(test_as_host_missing_or_bad),
        cmocka_unit_test(test_as_scheme),      cmocka_unit_test(test_as_lengths),
        cmocka_unit_test(test_as_host_length), cmocka_unit_test(test_as_hostcap),
        cmocka_unit_test(test_return),         cmocka_unit_test(test_return_length),
        cmocka_unit_test(test_is_loopback),    cmocka_unit_test(test_as_entries),
        cmocka_unit_test(test_as_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
