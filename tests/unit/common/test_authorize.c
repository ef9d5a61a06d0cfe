/* test_authorize.c: unit tests of the authorize URL of a 1.1 flow (common/authorize.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "authorize.h"

#define STATE "AxAREhMUFRYXGBkaGxwdHh8h67YDUgvdphpePTeDwXEV"
#define REDIRECT "https://relay.example/qorus-oauth2-redirect"
#define TAIL "response_type=code&redirect_uri=https%3A%2F%2Frelay.example%2Fqorus-oauth2-redirect&state=" STATE

static rly_param_t param(const char *name, const char *value)
{
    return (rly_param_t){name, strlen(name), value, strlen(value)};
}

/* the URL built from as_url and params, compared with expect (and its length) */
static void assert_url(const char *as_url, const rly_param_t *params, size_t n, const char *redirect, const char *state,
                       const char *expect)
{
    size_t len = 12345;
    char *url = rly_authorize_url(as_url, strlen(as_url), params, n, redirect, state, &len);

    assert_non_null(url);
    assert_string_equal(url, expect);
    assert_int_equal(len, strlen(expect));
    free(url);
}

static void test_order(void **unused)
{
    (void)unused;
    rly_param_t p[] = {param("client_id", "abc"), param("scope", "read:jira-work offline_access"),
                       param("audience", "api.atlassian.com"), param("prompt", "consent")};

    /* the parameters in the order given, then ours */
    assert_url("https://auth.atlassian.com/authorize", p, 4, REDIRECT, STATE,
               "https://auth.atlassian.com/authorize?client_id=abc&scope=read%3Ajira-work%20offline_access"
               "&audience=api.atlassian.com&prompt=consent&" TAIL);
    rly_param_t q[] = {p[3], p[0]};
    assert_url("https://auth.atlassian.com/authorize", q, 2, REDIRECT, STATE,
               "https://auth.atlassian.com/authorize?prompt=consent&client_id=abc&" TAIL);
    /* none: ours alone */
    assert_url("https://auth.atlassian.com/authorize", NULL, 0, REDIRECT, STATE, "https://auth.atlassian.com/authorize?" TAIL);
}

static void test_existing_query(void **unused)
{
    (void)unused;
    rly_param_t p[] = {param("client_id", "abc")};

    /* a query already there is kept as given, and continued with '&' */
    assert_url("https://login.example.com/oauth2/authorize?tenant=acme&x=%2F", p, 1, REDIRECT, STATE,
               "https://login.example.com/oauth2/authorize?tenant=acme&x=%2F&client_id=abc&" TAIL);
    assert_url("https://login.example.com/authorize?p=B2C_1_signin", NULL, 0, REDIRECT, STATE,
               "https://login.example.com/authorize?p=B2C_1_signin&" TAIL);
    /* ending in '?' or '&': nothing added before the first parameter */
    assert_url("https://login.example.com/authorize?", p, 1, REDIRECT, STATE,
               "https://login.example.com/authorize?client_id=abc&" TAIL);
    assert_url("https://login.example.com/authorize?a=1&", p, 1, REDIRECT, STATE,
               "https://login.example.com/authorize?a=1&client_id=abc&" TAIL);
    assert_url("https://login.example.com/authorize?", NULL, 0, REDIRECT, STATE, "https://login.example.com/authorize?" TAIL);
    /* a '?' is only looked for, not parsed: the URL is the instance's, as given */
    assert_url("http://127.0.0.1:9000/authorize", p, 1, REDIRECT, STATE, "http://127.0.0.1:9000/authorize?client_id=abc&" TAIL);
}

static void test_encoding(void **unused)
{
    (void)unused;
    char all[96], expect[400];
    size_t n = 0;

    /* every printable ASCII character: all but ALPHA DIGIT - . _ ~ percent-encoded, upper-case hex, space as %20 */
    for (int c = 0x20; c != 0x7f; ++c)
        all[n++] = (char)c;
    all[n] = '\0';
    rly_param_t p[] = {param("v", all), param("a.b_c-d~", "x")};
    int w =
        snprintf(expect, sizeof(expect),
                 "https://as.example/a?v=%%20%%21%%22%%23%%24%%25%%26%%27%%28%%29%%2A%%2B%%2C-.%%2F0123456789%%3A%%3B%%3C%%3D%%3E"
                 "%%3F%%40ABCDEFGHIJKLMNOPQRSTUVWXYZ%%5B%%5C%%5D%%5E_%%60abcdefghijklmnopqrstuvwxyz%%7B%%7C%%7D~"
                 "&a.b_c-d~=x&%s",
                 TAIL);
    assert_true(w > 0 && (size_t)w < sizeof(expect));
    assert_url("https://as.example/a", p, 2, REDIRECT, STATE, expect);
    /* bytes beyond ASCII and controls too (the parser never lets them through, the encoder does not rely on it) */
    rly_param_t q[] = {param("n\xc3\xa9", "\x01\x7f\xff"), param("e", "")};
    assert_url("https://as.example/a", q, 2, REDIRECT, STATE, "https://as.example/a?n%C3%A9=%01%7F%FF&e=&" TAIL);
    /* a NUL inside a counted value is encoded, not an end */
    rly_param_t z[] = {{"k", 1, "a\0b", 3}};
    assert_url("https://as.example/a", z, 1, REDIRECT, STATE, "https://as.example/a?k=a%00b&" TAIL);
    /* the redirect URI and the state are encoded like the rest */
    assert_url("https://as.example/a", NULL, 0, "http://[::1]:8443/v1/callback?x=1&y", "s t",
               "https://as.example/a?response_type=code&redirect_uri=http%3A%2F%2F%5B%3A%3A1%5D%3A8443%2Fv1%2Fcallback%3Fx%3D1%26y"
               "&state=s%20t");
}

/* the protocol's largest inputs: an AS URL of RLY_URL_MAX, 32 parameters and 4096 bytes all encoded, the longest state
 * and redirect URI; the length is exact, and the worst case fits RLY_AUTHORIZE_URL_MAX */
static void test_largest(void **unused)
{
    (void)unused;
    static char as_url[RLY_URL_MAX + 1], buf[RLY_AUTHORIZE_PARAMS_MAX + 2 * RLY_AUTHORIZE_PARAMS_COUNT_MAX],
        redirect[RLY_URL_MAX + 1], state[RLY_STATE_MAX + 1];
    rly_param_t p[RLY_AUTHORIZE_PARAMS_COUNT_MAX];
    size_t used = 0, per = RLY_AUTHORIZE_PARAMS_MAX / RLY_AUTHORIZE_PARAMS_COUNT_MAX, len = 0;

    memcpy(as_url, "https://", 8);
    memset(as_url + 8, 'a', RLY_URL_MAX - 8);
    memcpy(redirect, "https://", 8);
    memset(redirect + 8, '/', RLY_URL_MAX - 8);
    memset(state, '/', RLY_STATE_MAX);
    for (size_t i = 0; i != RLY_AUTHORIZE_PARAMS_COUNT_MAX; ++i) {
        char *name = buf + used;
        memset(name, ':', 8);
        name[8] = '\0';
        used += 9;
        char *value = buf + used;
        memset(value, ' ', per - 8);
        value[per - 8] = '\0';
        used += per - 8 + 1;
        p[i] = (rly_param_t){name, 8, value, per - 8};
    }
    char *url = rly_authorize_url(as_url, RLY_URL_MAX, p, RLY_AUTHORIZE_PARAMS_COUNT_MAX, redirect, state, &len);
    assert_non_null(url);
    size_t expect = RLY_URL_MAX + 1 + 3 * RLY_AUTHORIZE_PARAMS_MAX + 2 * RLY_AUTHORIZE_PARAMS_COUNT_MAX +
                    strlen("response_type=code&redirect_uri=&state=") + strlen("https%3A%2F%2F") + 3 * (RLY_URL_MAX - 8) +
                    3 * RLY_STATE_MAX;
    assert_int_equal(len, expect);
    assert_int_equal(strlen(url), len);
    assert_true(len <= RLY_AUTHORIZE_URL_MAX);
    assert_memory_equal(url + RLY_URL_MAX, "?%3A%3A", 7);
    free(url);
    /* beyond it: refused, not truncated */
    static char huge[RLY_AUTHORIZE_URL_MAX + 2];
    memset(huge, 'a', sizeof(huge) - 1);
    len = 777;
    assert_null(rly_authorize_url(huge, sizeof(huge) - 1, NULL, 0, REDIRECT, STATE, &len));
    assert_int_equal(len, 777);
    rly_param_t big = {"x", 1, huge, RLY_AUTHORIZE_URL_MAX / 3};
    assert_null(rly_authorize_url("https://as.example/", 19, &big, 1, REDIRECT, STATE, &len));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_existing_query),
        cmocka_unit_test(test_encoding),
        cmocka_unit_test(test_largest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
