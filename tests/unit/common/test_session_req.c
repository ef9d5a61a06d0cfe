/* test_session_req.c: unit tests of the POST /v1/sessions body validation (common/session_req.c) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "session_req.h"

#define AS "\"authorization_server\":\"https://auth.atlassian.com/authorize\""
#define KEY32 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8" /* bytes 0..31 */

static const char *const allow_list[] = {"auth.atlassian.com", "[::1]"};
static const rly_session_policy_t pol_any = {0, 600, NULL, 0, NULL, 0, 1};
static const rly_session_policy_t pol_list = {0, 600, allow_list, 2, NULL, 0, 1};
static const rly_session_policy_t pol_dev = {1, 3600, NULL, 0, NULL, 0, 1};

static rly_session_req_t req;
static const char *errstr;
static char body[RLY_SESSION_BODY_MAX + 64];

static rly_session_req_status_t parse_pol_n(const rly_session_policy_t *pol, const char *s, size_t len)
{
    rly_session_req_status_t st;

    errstr = NULL;
    memset(&req, 0xa5, sizeof(req));
    st = rly_session_req_parse(s, len, pol, &req, &errstr);
    if (st != RLY_SREQ_OK) {
        static const rly_session_req_t zero;
        assert_non_null(errstr);
        assert_null(strstr(errstr, "evil"));
        assert_memory_equal(&req, &zero, sizeof(req)); /* nothing half-filled is left behind */
    }
    return st;
}

static rly_session_req_status_t parse_pol(const rly_session_policy_t *pol, const char *s)
{
    return parse_pol_n(pol, s, strlen(s));
}

static rly_session_req_status_t parse(const char *s)
{
    return parse_pol(&pol_any, s);
}

/* body = "{" AS ",\"pad\":\"" + n 'x' + "\"}" */
static const char *padded(size_t n)
{
    static const char head[] = "{" AS ",\"pad\":\"";
    size_t hl = sizeof(head) - 1;

    assert_true(hl + n + 3 <= sizeof(body));
    memcpy(body, head, hl);
    memset(body + hl, 'x', n);
    memcpy(body + hl + n, "\"}", 3);
    return body;
}

static void test_minimal(void **state)
{
    (void)state;
    assert_int_equal(parse("{" AS "}"), RLY_SREQ_OK);
    assert_string_equal(req.as_host, "auth.atlassian.com");
    assert_int_equal(req.return_uri_len, 0);
    assert_string_equal(req.return_uri, "");
    assert_int_equal(req.has_seal_key, 0);
    assert_int_equal(req.ttl, RLY_TTL_DEFAULT);
    /* JSON whitespace around the value is allowed */
    assert_int_equal(parse(" \t\r\n{ " AS " }\r\n"), RLY_SREQ_OK);
}

static void test_full(void **state)
{
    static const uint8_t key[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                                    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};

    (void)state;
    assert_int_equal(
        parse("{" AS ",\"return_uri\":\"https://qorus.example.com:8011/grant?x=1\",\"seal_key\":\"" KEY32 "\",\"ttl\":300}"),
        RLY_SREQ_OK);
    assert_string_equal(req.as_host, "auth.atlassian.com");
    assert_string_equal(req.return_uri, "https://qorus.example.com:8011/grant?x=1");
    assert_int_equal(req.return_uri_len, strlen("https://qorus.example.com:8011/grant?x=1"));
    assert_int_equal(req.has_seal_key, 1);
    assert_memory_equal(req.seal_key, key, 32);
    assert_int_equal(req.ttl, 300);
    /* escaped JSON strings are unescaped before the checks */
    assert_int_equal(parse("{\"authorization_server\":\"https:\\/\\/AUTH.atlassian.com\\/authorize\",\"return_uri\":"
                           "\"http:\\u002F\\u002Flocalhost:8011/grant\"}"),
                     RLY_SREQ_OK);
    assert_string_equal(req.as_host, "auth.atlassian.com");
    assert_string_equal(req.return_uri, "http://localhost:8011/grant");
}

static void test_not_json(void **state)
{
    (void)state;
    assert_int_equal(parse("hello"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS), RLY_SREQ_INVALID);
    assert_int_equal(parse("{\"authorization_server\":}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{/*c*/" AS "}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{authorization_server:\"https://auth.atlassian.com/\"}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("\xef\xbb\xbf{" AS "}"), RLY_SREQ_INVALID); /* a BOM */
    assert_int_equal(parse(""), RLY_SREQ_INVALID);
    assert_int_equal(parse_pol_n(&pol_any, NULL, 0), RLY_SREQ_INVALID);
}

static void test_not_strict_json(void **state)
{
    (void)state;
    /* json-c accepts these even in strict mode; RFC 8259 does not */
    assert_int_equal(parse("{'authorization_server':'https://auth.atlassian.com/'}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"x\":'y'}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"x\":Infinity}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"x\":-Infinity}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"x\":NaN}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"x\":1.}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"x\":-01}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"x\":\"a\tb\"}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"x\":\"a\x01"
                           "b\"}"),
                     RLY_SREQ_INVALID);
    /* while these are valid */
    assert_int_equal(parse("{" AS ",\"x\":[-0,0.5,1E+2,-1.5e-3,true,false,null,\"\\\\\\\"\\u0000\"]}"), RLY_SREQ_OK);
}

static void test_trailing_garbage(void **state)
{
    (void)state;
    assert_int_equal(parse("{" AS "} x"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS "}{}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS "}}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS "}\f"), RLY_SREQ_INVALID);
    assert_int_equal(parse_pol_n(&pol_any, "{" AS "}\0", sizeof("{" AS "}")), RLY_SREQ_INVALID);
}

static void test_top_level_not_object(void **state)
{
    (void)state;
    assert_int_equal(parse("[{" AS "}]"), RLY_SREQ_INVALID);
    assert_int_equal(parse("[]"), RLY_SREQ_INVALID);
    assert_int_equal(parse("\"https://auth.atlassian.com/\""), RLY_SREQ_INVALID);
    assert_int_equal(parse("null"), RLY_SREQ_INVALID);
    assert_int_equal(parse("600"), RLY_SREQ_INVALID);
    assert_int_equal(parse("true"), RLY_SREQ_INVALID);
}

/* "{" AS ",\"x\":" + (depth - 1) '[' + ']'s + "}": depth levels counting the top-level object */
static const char *nested(size_t depth)
{
    static const char head[] = "{" AS ",\"x\":";
    size_t hl = sizeof(head) - 1, n = depth - 1;

    assert_true(hl + 2 * n + 2 <= sizeof(body));
    memcpy(body, head, hl);
    memset(body + hl, '[', n);
    memset(body + hl + n, ']', n);
    memcpy(body + hl + 2 * n, "}", 2);
    return body;
}

static void test_depth(void **state)
{
    (void)state;
    assert_int_equal(parse(nested(RLY_JSON_DEPTH_MAX)), RLY_SREQ_OK);
    assert_int_equal(parse(nested(RLY_JSON_DEPTH_MAX + 1)), RLY_SREQ_INVALID);
    assert_string_equal(errstr, "the body nests too deep");
    assert_int_equal(parse(nested(RLY_JSON_DEPTH_MAX + 2)), RLY_SREQ_INVALID);
    assert_int_equal(parse(nested(1000)), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"x\":{\"a\":{\"b\":[{\"c\":[]}]}}}"), RLY_SREQ_OK);
}

static void test_utf8(void **state)
{
    (void)state;
    assert_int_equal(parse("{" AS ",\"x\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}"), RLY_SREQ_OK);
    assert_int_equal(parse("{" AS ",\"x\":\"\xff\"}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"x\":\"\xc3\x28\"}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"x\":\"\xc3\"}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"x\":\"\xe2\x82\"}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"\x80\":1}"), RLY_SREQ_INVALID);
    /* non-ASCII in a URL is valid JSON but not a valid URL */
    assert_int_equal(parse("{\"authorization_server\":\"https://b\xc3\xbc"
                           "cher.example/\"}"),
                     RLY_SREQ_INVALID);
}

static void test_wrong_types(void **state)
{
    (void)state;
    assert_int_equal(parse("{\"authorization_server\":123}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{\"authorization_server\":true}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{\"authorization_server\":[\"https://auth.atlassian.com/\"]}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{\"authorization_server\":{\"url\":\"https://auth.atlassian.com/\"}}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"return_uri\":1}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"return_uri\":[]}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"seal_key\":1}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"seal_key\":[\"" KEY32 "\"]}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"ttl\":\"600\"}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"ttl\":600.0}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"ttl\":1e2}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"ttl\":6E2}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"ttl\":true}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"ttl\":[600]}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"ttl\":{}}"), RLY_SREQ_INVALID);
}

static void test_ttl(void **state)
{
    static const rly_session_policy_t pol_short = {0, 300, NULL, 0, NULL, 0, 1};

    (void)state;
    assert_int_equal(parse("{" AS ",\"ttl\":59}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"ttl\":60}"), RLY_SREQ_OK);
    assert_int_equal(req.ttl, 60);
    assert_int_equal(parse("{" AS ",\"ttl\":600}"), RLY_SREQ_OK); /* ttl_max of pol_any */
    assert_int_equal(req.ttl, 600);
    assert_int_equal(parse("{" AS ",\"ttl\":601}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"ttl\":0}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"ttl\":-0}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"ttl\":-600}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"ttl\":4294967896}"), RLY_SREQ_INVALID); /* 600 + 2^32 */
    assert_int_equal(parse("{" AS ",\"ttl\":9223372036854775807}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"ttl\":18446744073709552216}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"ttl\":99999999999999999999999999}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"ttl\":-99999999999999999999999999}"), RLY_SREQ_INVALID);
    /* the policy's maximum */
    assert_int_equal(parse_pol(&pol_dev, "{" AS ",\"ttl\":3600}"), RLY_SREQ_OK);
    assert_int_equal(req.ttl, 3600);
    assert_int_equal(parse_pol(&pol_dev, "{" AS ",\"ttl\":3601}"), RLY_SREQ_INVALID);
    /* default: min(600, ttl_max) */
    assert_int_equal(parse_pol(&pol_dev, "{" AS "}"), RLY_SREQ_OK);
    assert_int_equal(req.ttl, 600);
    assert_int_equal(parse_pol(&pol_short, "{" AS "}"), RLY_SREQ_OK);
    assert_int_equal(req.ttl, 300);
    assert_int_equal(parse_pol(&pol_short, "{" AS ",\"ttl\":301}"), RLY_SREQ_INVALID);
    assert_int_equal(parse_pol(&pol_short, "{" AS ",\"ttl\":300}"), RLY_SREQ_OK);
    assert_int_equal(req.ttl, 300);
}

static void test_seal_key(void **state)
{
    (void)state;
    assert_int_equal(parse("{" AS ",\"seal_key\":\"" KEY32 "\"}"), RLY_SREQ_OK);
    assert_int_equal(req.has_seal_key, 1);
    /* 31 and 33 bytes */
    assert_int_equal(parse("{" AS ",\"seal_key\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg\"}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"seal_key\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g\"}"), RLY_SREQ_INVALID);
    /* padding, standard base64 characters, whitespace, non-canonical trailing bits */
    assert_int_equal(parse("{" AS ",\"seal_key\":\"" KEY32 "=\"}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"seal_key\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdH+8\"}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"seal_key\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdH/8\"}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"seal_key\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd Hh8\"}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"seal_key\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9\"}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"seal_key\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh\\u0000\"}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"seal_key\":\"\"}"), RLY_SREQ_INVALID);
}

static void test_urls(void **state)
{
    (void)state;
    assert_int_equal(parse("{\"authorization_server\":\"http://auth.atlassian.com/authorize\"}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{\"authorization_server\":\"http://localhost:9000/authorize\"}"), RLY_SREQ_INVALID);
    assert_int_equal(parse_pol(&pol_dev, "{\"authorization_server\":\"http://localhost:9000/authorize\"}"), RLY_SREQ_OK);
    assert_string_equal(req.as_host, "localhost");
    assert_int_equal(parse("{\"authorization_server\":\"https://user@auth.atlassian.com/\"}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{\"authorization_server\":\"https://auth.atlassian.com/#x\"}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{\"authorization_server\":\"\"}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{\"authorization_server\":\"https://auth.atlassian.com/\\u0000.evil.com\"}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"return_uri\":\"http://qorus.example.com/grant\"}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"return_uri\":\"https://qorus.example.com/grant#x\"}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"return_uri\":\"\"}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"return_uri\":\"https://qorus.example.com/\\u0000evil\"}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"return_uri\":\"http://127.0.0.1:8011/grant\"}"), RLY_SREQ_OK);
    assert_string_equal(req.return_uri, "http://127.0.0.1:8011/grant");
}

static void test_return_uri_length(void **state)
{
    static const char head[] = "{" AS ",\"return_uri\":\"https://qorus.example.com/";
    size_t hl = sizeof(head) - 1, path = RLY_RETURN_URI_MAX - strlen("https://qorus.example.com/");

    (void)state;
    memcpy(body, head, hl);
    memset(body + hl, 'p', path);
    memcpy(body + hl + path, "\"}", 3);
    assert_int_equal(parse(body), RLY_SREQ_OK);
    assert_int_equal(req.return_uri_len, RLY_RETURN_URI_MAX);
    assert_int_equal(strlen(req.return_uri), RLY_RETURN_URI_MAX);
    memset(body + hl, 'p', path + 1);
    memcpy(body + hl + path + 1, "\"}", 3);
    assert_int_equal(parse(body), RLY_SREQ_INVALID);
}

static void test_allow_list(void **state)
{
    (void)state;
    assert_int_equal(parse_pol(&pol_list, "{" AS "}"), RLY_SREQ_OK);
    assert_int_equal(parse_pol(&pol_list, "{\"authorization_server\":\"https://AUTH.Atlassian.com:443/x\"}"), RLY_SREQ_OK);
    assert_string_equal(req.as_host, "auth.atlassian.com");
    assert_int_equal(parse_pol(&pol_list, "{\"authorization_server\":\"https://[::1]/authorize\"}"), RLY_SREQ_OK);
    assert_int_equal(parse_pol(&pol_list, "{\"authorization_server\":\"https://login.evil.com/authorize\"}"), RLY_SREQ_NOT_ALLOWED);
    assert_int_equal(parse_pol(&pol_list, "{\"authorization_server\":\"https://auth.atlassian.com.evil.com/\"}"),
                     RLY_SREQ_NOT_ALLOWED);
    assert_int_equal(parse_pol(&pol_list, "{\"authorization_server\":\"https://evil-auth.atlassian.com/\"}"), RLY_SREQ_NOT_ALLOWED);
    assert_int_equal(parse_pol(&pol_list, "{\"authorization_server\":\"https://atlassian.com/\"}"), RLY_SREQ_NOT_ALLOWED);
    /* an invalid authorization server is 400 before the allow-list, and so is any other malformed member */
    assert_int_equal(parse_pol(&pol_list, "{\"authorization_server\":\"http://login.evil.com/\"}"), RLY_SREQ_INVALID);
    assert_int_equal(parse_pol(&pol_list, "{\"authorization_server\":\"https://login.evil.com/\",\"ttl\":1}"), RLY_SREQ_INVALID);
    /* an empty allow-list allows any https authorization server */
    assert_int_equal(parse_pol(&pol_any, "{\"authorization_server\":\"https://login.example.org/authorize\"}"), RLY_SREQ_OK);
    assert_string_equal(req.as_host, "login.example.org");
}

static void test_null_members(void **state)
{
    (void)state;
    assert_int_equal(parse("{\"authorization_server\":null}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"return_uri\":null,\"seal_key\":null,\"ttl\":null}"), RLY_SREQ_OK);
    assert_int_equal(req.return_uri_len, 0);
    assert_int_equal(req.has_seal_key, 0);
    assert_int_equal(req.ttl, RLY_TTL_DEFAULT);
}

static void test_unknown_members(void **state)
{
    (void)state;
    assert_int_equal(parse("{\"client_id\":\"abc\"," AS ",\"scope\":[\"read\",\"write\"],\"nested\":{\"ttl\":1,\"ttl\":2,"
                           "\"authorization_server\":5},\"n\":null,\"TTL\":\"x\",\"Return_Uri\":7}"),
                     RLY_SREQ_OK);
    assert_string_equal(req.as_host, "auth.atlassian.com");
    assert_int_equal(req.ttl, RLY_TTL_DEFAULT);
    assert_int_equal(req.return_uri_len, 0);
}

static void test_duplicates(void **state)
{
    (void)state;
    assert_int_equal(parse("{" AS "," AS "}"), RLY_SREQ_INVALID);
    assert_string_equal(errstr, "the body has a duplicated member");
    assert_int_equal(parse("{\"authorization_server\":\"https://login.evil.com/\"," AS "}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"ttl\":60,\"ttl\":600}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"ttl\":null,\"ttl\":600}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"x\":1,\"x\":1}"), RLY_SREQ_INVALID);
    /* the same name spelled with escapes */
    assert_int_equal(parse("{" AS ",\"ttl\":60,\"tt\\u006c\":600}"), RLY_SREQ_INVALID);
    assert_int_equal(parse("{" AS ",\"seal_key\":null,\"seal\\u005fkey\":null}"), RLY_SREQ_INVALID);
    /* a key cut at an escaped NUL would alias a known member */
    assert_int_equal(parse("{" AS ",\"ttl\\u0000junk\":300}"), RLY_SREQ_INVALID);
    /* different names, and a name that appears as a value, are not duplicates */
    assert_int_equal(parse("{" AS ",\"ttl\":60,\"x\":\"ttl\",\"y\":{\"ttl\":1},\"z\":[\"ttl\",{\"ttl\":2}]}"), RLY_SREQ_OK);
    assert_int_equal(req.ttl, 60);
    assert_int_equal(parse("{" AS ",\"a\\\"b\":1,\"a\\\\\":2,\"a\":3}"), RLY_SREQ_OK);
}

static void test_body_size(void **state)
{
    size_t base = strlen(padded(0));

    (void)state;
    padded(RLY_SESSION_BODY_MAX - base);
    assert_int_equal(strlen(body), RLY_SESSION_BODY_MAX);
    assert_int_equal(parse(body), RLY_SREQ_OK);
    padded(RLY_SESSION_BODY_MAX + 1 - base);
    assert_int_equal(strlen(body), RLY_SESSION_BODY_MAX + 1);
    assert_int_equal(parse(body), RLY_SREQ_INVALID);
    assert_string_equal(errstr, "the body is too large");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_not_json),
        cmocka_unit_test(test_not_strict_json),
        cmocka_unit_test(test_trailing_garbage),
        cmocka_unit_test(test_top_level_not_object),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_seal_key),
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_return_uri_length),
        cmocka_unit_test(test_allow_list),
        cmocka_unit_test(test_null_members),
        cmocka_unit_test(test_unknown_members),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_body_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
