/* test_callback.c: unit tests of the authorization server redirect validation (common/callback.c) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "callback.h"

static rly_callback_t cb;
static const char *errstr;
static char q[RLY_QUERY_MAX + 64];

static rly_callback_status_t parse_n(const char *s, size_t len)
{
    rly_callback_status_t st;

    errstr = NULL;
    st = rly_callback_parse(&cb, s, len, &errstr);
    if (st == RLY_CALLBACK_OK) {
        assert_non_null(cb.state.base);
        assert_true(cb.state.len >= 1 && cb.state.len <= RLY_STATE_MAX);
        assert_true((cb.code.base == NULL) != (cb.error.base == NULL));
    } else {
        /* a fixed text, and nothing is left for the caller to store by mistake */
        assert_non_null(errstr);
        assert_null(strstr(errstr, "SECRET"));
        assert_null(cb.state.base);
        assert_null(cb.code.base);
        assert_null(cb.error.base);
        assert_null(cb.error_description.base);
        assert_null(cb.error_uri.base);
        assert_null(cb.iss.base);
    }
    return st;
}

static rly_callback_status_t parse(const char *s)
{
    return parse_n(s, strlen(s));
}

static void assert_str(rly_str_t s, const char *expected)
{
    assert_non_null(s.base);
    assert_int_equal(s.len, strlen(expected));
    assert_memory_equal(s.base, expected, s.len);
}

/* q = prefix followed by n copies of c followed by suffix */
static const char *build(const char *prefix, char c, size_t n, const char *suffix)
{
    size_t plen = strlen(prefix), slen = strlen(suffix);

    assert_true(plen + n + slen < sizeof(q));
    memcpy(q, prefix, plen);
    memset(q + plen, c, n);
    memcpy(q + plen + n, suffix, slen + 1);
    return q;
}

static void test_code_ok(void **state)
{
    (void)state;
    assert_int_equal(parse("code=SplxlOBeZQQYbYS6WxSbIA&state=xyz_-09AZ"), RLY_CALLBACK_OK);
    assert_str(cb.code, "SplxlOBeZQQYbYS6WxSbIA");
    assert_str(cb.state, "xyz_-09AZ");
    assert_null(cb.error.base);
    assert_null(cb.error_description.base);
    assert_null(cb.iss.base);
    /* unknown parameters are ignored, even repeated; iss is kept */
    assert_int_equal(parse("foo=1&state=s&foo=2&code=c%2Fd&iss=https%3A%2F%2Fauth.atlassian.com&session_state=x"), RLY_CALLBACK_OK);
    assert_str(cb.code, "c/d");
    assert_str(cb.iss, "https://auth.atlassian.com");
}

static void test_code_vschar(void **state)
{
    (void)state;
    /* RFC 6749 A.11: a code is VSCHAR, space included ("+" and %20 both decode to it) */
    assert_int_equal(parse("code=a+b&state=s"), RLY_CALLBACK_OK);
    assert_int_equal(cb.code.len, 3);
    assert_memory_equal(cb.code.base, "a b", 3);
    assert_int_equal(parse("code=a%20b&state=s"), RLY_CALLBACK_OK);
    assert_memory_equal(cb.code.base, "a b", 3);
    /* control bytes and DEL are not VSCHAR */
    assert_int_equal(parse("code=a%09b&state=s"), RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse("code=a%7Fb&state=s"), RLY_CALLBACK_BAD_REQUEST);
}

static void test_error_ok(void **state)
{
    (void)state;
    assert_int_equal(parse("error=access_denied&error_description=The+user+said+no%21&error_uri=https%3A%2F%2Fas%2Fe&state=s"),
                     RLY_CALLBACK_OK);
    assert_null(cb.code.base);
    assert_str(cb.error, "access_denied");
    assert_str(cb.error_description, "The user said no!");
    assert_str(cb.error_uri, "https://as/e");
    assert_str(cb.state, "s");
    /* the error charset includes space */
    assert_int_equal(parse("error=odd+but+legal&state=s"), RLY_CALLBACK_OK);
    assert_str(cb.error, "odd but legal");
}

static void test_atlassian_jwt_code(void **state)
{
    static char code[6200];
    size_t i;
    int n;

    (void)state;
    /* header.payload.signature of base64url characters, about 6 KiB as Atlassian sends */
    n = (int)sizeof(code) - 1;
    for (i = 0; i < (size_t)n; i++)
        code[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[i % 64];
    code[0] = 'e';
    code[1] = 'y';
    code[2] = 'J';
    code[200] = '.';
    code[6000] = '.';
    code[n] = '\0';
    memcpy(q, "code=", 5);
    memcpy(q + 5, code, (size_t)n);
    memcpy(q + 5 + n, "&state=abc", 11);
    assert_int_equal(parse(q), RLY_CALLBACK_OK);
    assert_int_equal(cb.code.len, (size_t)n);
    assert_memory_equal(cb.code.base, code, (size_t)n);
}

static void test_code_limits(void **state)
{
    (void)state;
    assert_int_equal(parse(build("state=s&code=", 'a', RLY_CODE_MAX, "")), RLY_CALLBACK_OK);
    assert_int_equal(cb.code.len, RLY_CODE_MAX);
    assert_int_equal(parse(build("state=s&code=", 'a', RLY_CODE_MAX + 1, "")), RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse("state=s&code="), RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse("state=s&code"), RLY_CALLBACK_BAD_REQUEST);
    /* VSCHAR only (space is allowed: see test_code_vschar) */
    assert_int_equal(parse("state=s&code=a%7F"), RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse("state=s&code=a%0A"), RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse("state=s&code=%C3%A9"), RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse("state=s&code=a%22%5C%7E"), RLY_CALLBACK_OK);
}

static void test_state_rules(void **state)
{
    (void)state;
    assert_int_equal(parse("code=c"), RLY_CALLBACK_BAD_STATE);
    assert_int_equal(parse("code=c&state="), RLY_CALLBACK_BAD_STATE);
    assert_int_equal(parse("code=c&state"), RLY_CALLBACK_BAD_STATE);
    assert_int_equal(parse("code=c&state=a&state=a"), RLY_CALLBACK_BAD_STATE);
    assert_int_equal(parse("code=c&state=a.b"), RLY_CALLBACK_BAD_STATE);
    assert_int_equal(parse("code=c&state=a+b"), RLY_CALLBACK_BAD_STATE);
    assert_int_equal(parse("code=c&state=a%2Bb"), RLY_CALLBACK_BAD_STATE);
    assert_int_equal(parse("code=c&state=a%3Db"), RLY_CALLBACK_BAD_STATE);
    assert_int_equal(parse(build("code=c&state=", 'A', RLY_STATE_MAX, "")), RLY_CALLBACK_OK);
    assert_int_equal(cb.state.len, RLY_STATE_MAX);
    assert_int_equal(parse(build("code=c&state=", 'A', RLY_STATE_MAX + 1, "")), RLY_CALLBACK_BAD_STATE);
    /* a percent-encoded state decodes first */
    assert_int_equal(parse("code=c&state=%41b"), RLY_CALLBACK_OK);
    assert_str(cb.state, "Ab");
}

static void test_code_error_both_neither(void **state)
{
    (void)state;
    assert_int_equal(parse("state=s&code=c&error=access_denied"), RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse("state=s"), RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse("state=s&error_description=x"), RLY_CALLBACK_BAD_REQUEST);
}

static void test_repeated(void **state)
{
    (void)state;
    assert_int_equal(parse("state=s&code=c&code=c"), RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse("state=s&code=c&code=d"), RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse("state=s&error=a&error=b"), RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse("state=s&error=a&error_description=x&error_description=y"), RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse("state=s&error=a&error_uri=x&error_uri=y"), RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse("state=s&code=c&iss=x&iss=x"), RLY_CALLBACK_BAD_REQUEST);
    /* repeated under another spelling: names compare after decoding */
    assert_int_equal(parse("state=s&code=c&c%6Fde=d"), RLY_CALLBACK_BAD_REQUEST);
}

static void test_error_charset(void **state)
{
    (void)state;
    assert_int_equal(parse("state=s&error=a%22b"), RLY_CALLBACK_BAD_REQUEST); /* quote */
    assert_int_equal(parse("state=s&error=a%5Cb"), RLY_CALLBACK_BAD_REQUEST); /* backslash */
    assert_int_equal(parse("state=s&error=a%0Ab"), RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse("state=s&error=a%7Fb"), RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse("state=s&error=%C3%A9"), RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse("state=s&error="), RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse("state=s&error=a&error_description=%22"), RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse("state=s&error=a&error_description=%5C"), RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse("state=s&error=a&error_description=%09"), RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse("state=s&error=a&error_description=%3Cb%3E+%26+%27ok%27"), RLY_CALLBACK_OK);
    assert_str(cb.error_description, "<b> & 'ok'");
    assert_int_equal(parse(build("state=s&error=", 'e', RLY_ERROR_MAX, "")), RLY_CALLBACK_OK);
    assert_int_equal(parse(build("state=s&error=", 'e', RLY_ERROR_MAX + 1, "")), RLY_CALLBACK_BAD_REQUEST);
}

static void test_error_optional_limits(void **state)
{
    (void)state;
    assert_int_equal(parse(build("state=s&error=x&error_description=", 'd', RLY_ERROR_DESCRIPTION_MAX, "")), RLY_CALLBACK_OK);
    assert_int_equal(cb.error_description.len, RLY_ERROR_DESCRIPTION_MAX);
    assert_int_equal(parse(build("state=s&error=x&error_description=", 'd', RLY_ERROR_DESCRIPTION_MAX + 1, "")),
                     RLY_CALLBACK_BAD_REQUEST);
    /* a percent-encoded description is measured after decoding: 1024 spaces as "+" and as "%20" */
    assert_int_equal(parse(build("state=s&error=x&error_description=", '+', RLY_ERROR_DESCRIPTION_MAX, "")), RLY_CALLBACK_OK);
    assert_int_equal(parse(build("state=s&error=x&error_description=", '+', RLY_ERROR_DESCRIPTION_MAX, "%20")),
                     RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse(build("state=s&error=x&error_uri=", 'u', RLY_ERROR_URI_MAX, "")), RLY_CALLBACK_OK);
    assert_int_equal(parse(build("state=s&error=x&error_uri=", 'u', RLY_ERROR_URI_MAX + 1, "")), RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse("state=s&error=x&error_uri=a+b"), RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse(build("state=s&code=c&iss=", 'i', RLY_ISS_MAX, "")), RLY_CALLBACK_OK);
    assert_int_equal(cb.iss.len, RLY_ISS_MAX);
    assert_int_equal(parse(build("state=s&code=c&iss=", 'i', RLY_ISS_MAX + 1, "")), RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse("state=s&code=c&iss=a+b"), RLY_CALLBACK_BAD_REQUEST);
}

static void test_error_fields_only_with_error(void **state)
{
    (void)state;
    assert_int_equal(parse("state=s&code=c&error_description=x"), RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse("state=s&code=c&error_uri=https%3A%2F%2Fx"), RLY_CALLBACK_BAD_REQUEST);
}

static void test_bad_encoding(void **state)
{
    (void)state;
    assert_int_equal(parse("state=s&code=%"), RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse("state=s&code=%4"), RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse("state=s&code=%zz"), RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse("state=s&code=%00"), RLY_CALLBACK_BAD_REQUEST);
    /* an encoding error anywhere, even in an unknown parameter, rejects the whole request */
    assert_int_equal(parse("state=s&code=c&junk=%"), RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse_n("state=s&code=c\0", 15), RLY_CALLBACK_BAD_REQUEST);
}

/* no limit on the number of parameters but the length: extra ones beyond the first 32 are dropped and counted */
static void test_param_count(void **state)
{
    size_t len;
    int i;

    (void)state;
    /* state + code + 62 occurrences of one extra name: all dropped (a repeated name), the flow completes */
    memcpy(q, "state=s&code=c", 14);
    len = 14;
    for (i = 0; i < 63; i++) {
        memcpy(q + len, "&x=1", 4);
        len += 4;
    }
    assert_int_equal(parse_n(q, len), RLY_CALLBACK_OK);
    assert_int_equal(cb.nparams, 0);
    assert_int_equal(cb.params_dropped, 63);

    /* 40 distinct names: the first 32 kept in query order, 8 dropped */
    len = (size_t)snprintf(q, sizeof(q), "state=s&code=c");
    for (i = 0; i < 40; i++)
        len += (size_t)snprintf(q + len, sizeof(q) - len, "&p%d=v%d", i, i);
    assert_int_equal(parse_n(q, len), RLY_CALLBACK_OK);
    assert_int_equal(cb.nparams, 32);
    assert_int_equal(cb.params_dropped, 8);
    assert_int_equal(cb.params[0].name.len, 2);
    assert_memory_equal(cb.params[0].name.base, "p0", 2);
    assert_memory_equal(cb.params[31].name.base, "p31", 3);

    /* a name repeated beyond the 32nd occurrence spoils its kept occurrence too */
    len = (size_t)snprintf(q, sizeof(q), "state=s&code=c");
    for (i = 0; i < 32; i++)
        len += (size_t)snprintf(q + len, sizeof(q) - len, "&p%d=v", i);
    len += (size_t)snprintf(q + len, sizeof(q) - len, "&p0=again");
    assert_int_equal(parse_n(q, len), RLY_CALLBACK_OK);
    assert_int_equal(cb.nparams, 31);
    assert_int_equal(cb.params_dropped, 2);
}

/* extra parameters: exactly as decoded when they follow the rules, else dropped and counted; known ones never among them */
static void test_extra_params(void **state)
{
    (void)state;
    assert_int_equal(parse("realmId=9130&state=s&code=c&accounts-server=https%3A%2F%2Faccounts.zoho.eu&location=eu&"
                           "hd=example.com&u=%C3%A9t%C3%A9+ok&iss=https%3A%2F%2Fas.example"),
                     RLY_CALLBACK_OK);
    assert_int_equal(cb.nparams, 5);
    assert_int_equal(cb.params_dropped, 0);
    assert_memory_equal(cb.params[0].name.base, "realmId", 7);
    assert_memory_equal(cb.params[0].value.base, "9130", 4);
    assert_int_equal(cb.params[1].value.len, strlen("https://accounts.zoho.eu"));
    assert_memory_equal(cb.params[1].value.base, "https://accounts.zoho.eu", cb.params[1].value.len);
    assert_int_equal(cb.params[4].value.len, strlen("\xc3\xa9t\xc3\xa9 ok"));
    assert_memory_equal(cb.params[4].value.base, "\xc3\xa9t\xc3\xa9 ok", cb.params[4].value.len);
    assert_int_equal(cb.iss.len, strlen("https://as.example"));

    /* each rule: a repeated name (every occurrence), a bad name, a control character, invalid UTF-8, a NUL byte, an
     * empty name; an empty value is fine */
    assert_int_equal(parse("state=s&code=c&a=1&a=2&b%20c=1&ctl=%01&c1=%C2%85&utf=%C3%28&nul=x%00y&=v&empty="), RLY_CALLBACK_OK);
    assert_int_equal(cb.nparams, 1);
    assert_memory_equal(cb.params[0].name.base, "empty", 5);
    assert_int_equal(cb.params[0].value.len, 0);
    assert_int_equal(cb.params_dropped, 8);
    /* a name of 64 is kept, of 65 dropped */
    char name65[66];
    memset(name65, 'n', 65);
    name65[65] = '\0';
    char query[256];
    snprintf(query, sizeof(query), "state=s&error=access_denied&%.64s=1&%s=2", name65, name65);
    assert_int_equal(parse(query), RLY_CALLBACK_OK);
    assert_int_equal(cb.nparams, 1);
    assert_int_equal(cb.params[0].name.len, 64);
    assert_int_equal(cb.params_dropped, 1);
    /* a NUL in a known parameter is still a bad request */
    assert_int_equal(parse_n("state=s&code=c%00d", 18), RLY_CALLBACK_BAD_REQUEST);
}

static void test_length_limit(void **state)
{
    const char *prefix = "state=s&code=c&pad=";

    (void)state;
    build(prefix, 'p', RLY_QUERY_MAX - strlen(prefix), "");
    assert_int_equal(strlen(q), RLY_QUERY_MAX);
    assert_int_equal(parse(q), RLY_CALLBACK_OK);
    build(prefix, 'p', RLY_QUERY_MAX + 1 - strlen(prefix), "");
    assert_int_equal(parse(q), RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse(""), RLY_CALLBACK_BAD_STATE);
    assert_int_equal(parse_n(NULL, 0), RLY_CALLBACK_BAD_STATE);
}

static void test_errstr_does_not_echo(void **state)
{
    (void)state;
    assert_int_equal(parse("state=SECRET&code=SECRET&error=SECRET"), RLY_CALLBACK_BAD_REQUEST);
    assert_int_equal(parse("state=SECRET.&code=SECRET"), RLY_CALLBACK_BAD_STATE);
    assert_int_equal(parse("state=s&code=SECRET%"), RLY_CALLBACK_BAD_REQUEST);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_code_ok),
        cmocka_unit_test(test_code_vschar),
        cmocka_unit_test(test_error_ok),
        cmocka_unit_test(test_atlassian_jwt_code),
        cmocka_unit_test(test_code_limits),
        cmocka_unit_test(test_state_rules),
        cmocka_unit_test(test_code_error_both_neither),
        cmocka_unit_test(test_repeated),
        cmocka_unit_test(test_error_charset),
        cmocka_unit_test(test_error_optional_limits),
        cmocka_unit_test(test_error_fields_only_with_error),
        cmocka_unit_test(test_bad_encoding),
        cmocka_unit_test(test_param_count),
        cmocka_unit_test(test_extra_params),
        cmocka_unit_test(test_length_limit),
        cmocka_unit_test(test_errstr_does_not_echo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
