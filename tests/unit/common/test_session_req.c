/* test_session_req.c: unit tests of the POST /v1/sessions body validation (common/session_req.c) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
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
    assert_string_equal(req.as_id, "unlisted"); /* no allow-list: the host is never the identifier */
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
    assert_string_equal(req.as_id, "unlisted");
    assert_string_equal(req.return_uri, "https://qorus.example.com:8011/grant?x=1");
    assert_int_equal(req.return_uri_len, strlen("https://qorus.example.com:8011/grant?x=1"));
    assert_int_equal(req.has_seal_key, 1);
    assert_memory_equal(req.seal_key, key, 32);
    assert_int_equal(req.ttl, 300);
    /* escaped JSON strings are unescaped before the checks */
    assert_int_equal(parse("{\"authorization_server\":\"https:\\/\\/AUTH.atlassian.com\\/authorize\",\"return_uri\":"
                           "\"http:\\u002F\\u002Flocalhost:8011/grant\"}"),
                     RLY_SREQ_OK);
    assert_string_equal(req.authorization_server, "https://AUTH.atlassian.com/authorize");
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
    assert_string_equal(req.as_id, "unlisted");
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
    assert_string_equal(req.as_id, "auth.atlassian.com"); /* the entry that matched */
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
    assert_string_equal(req.as_id, "unlisted");
}

/* wildcard entries: one label or more before the suffix, never the bare suffix; the most specific entry is the identifier,
 * never the host it matched */
static void test_allow_list_wildcards(void **state)
{
    static const char *const entries[] = {"*.okta.com", "*.my.salesforce.com", "*.salesforce.com", "login.salesforce.com",
                                          "auth.atlassian.com"};
    rly_session_policy_t pol = {0, 600, entries, 5, NULL, 0, 1};
    (void)state;
    assert_int_equal(parse_pol(&pol, "{\"authorization_server\":\"https://acme.okta.com/oauth2/v1/authorize\"}"), RLY_SREQ_OK);
    assert_string_equal(req.as_id, "*.okta.com");
    assert_int_equal(parse_pol(&pol, "{\"authorization_server\":\"https://a.b.okta.com/authorize\"}"), RLY_SREQ_OK);
    assert_string_equal(req.as_id, "*.okta.com");
    assert_int_equal(parse_pol(&pol, "{\"authorization_server\":\"https://okta.com/authorize\"}"), RLY_SREQ_NOT_ALLOWED);
    assert_int_equal(parse_pol(&pol, "{\"authorization_server\":\"https://evilokta.com/authorize\"}"), RLY_SREQ_NOT_ALLOWED);
    assert_int_equal(parse_pol(&pol, "{\"authorization_server\":\"https://okta.com.evil.example/authorize\"}"),
                     RLY_SREQ_NOT_ALLOWED);
    /* the longest suffix wins; an exact entry wins over any wildcard */
    assert_int_equal(parse_pol(&pol, "{\"authorization_server\":\"https://acme.my.salesforce.com/services/oauth2/authorize\"}"),
                     RLY_SREQ_OK);
    assert_string_equal(req.as_id, "*.my.salesforce.com");
    assert_int_equal(parse_pol(&pol, "{\"authorization_server\":\"https://acme.lightning.salesforce.com/x\"}"), RLY_SREQ_OK);
    assert_string_equal(req.as_id, "*.salesforce.com");
    assert_int_equal(parse_pol(&pol, "{\"authorization_server\":\"https://login.salesforce.com/services/oauth2/authorize\"}"),
                     RLY_SREQ_OK);
    assert_string_equal(req.as_id, "login.salesforce.com");
    assert_int_equal(parse_pol(&pol, "{\"authorization_server\":\"https://auth.atlassian.com/authorize\"}"), RLY_SREQ_OK);
    assert_string_equal(req.as_id, "auth.atlassian.com");
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
    assert_string_equal(req.as_id, "unlisted");
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

/* ---- protocol 1.1: bound sessions ---- */

#define RU "\"return_uri\":\"https://qorus.example.com:8011/grant\""
#define CID "\"client_id\":\"abc\""
#define AP(members) "\"authorize_params\":{" members "}"
#define BOUND(members) "{" AS "," RU "," AP(members) "}"

static const char *const clients[] = {"abc", "Qorus-App.1"};
static const rly_session_policy_t pol_11 = {0, 600, NULL, 0, NULL, 0, 0};
static const rly_session_policy_t pol_clients = {0, 600, allow_list, 2, clients, 2, 0};
static const rly_session_policy_t pol_clients_unbound = {0, 600, allow_list, 2, clients, 2, 1};

static rly_session_req_status_t parse11(const char *s)
{
    return parse_pol(&pol_11, s);
}

/* every parameter's texts lie in params_buf, NUL-terminated at their lengths, one after the other */
static void assert_params_in_buf(void)
{
    size_t used = 0;

    for (size_t i = 0; i != req.nparams; ++i) {
        const rly_param_t *p = &req.params[i];
        assert_ptr_equal(p->name, req.params_buf + used);
        assert_int_equal(strlen(p->name), p->name_len);
        used += p->name_len + 1;
        assert_ptr_equal(p->value, req.params_buf + used);
        assert_int_equal(p->value[p->value_len], '\0');
        used += p->value_len + 1;
    }
    assert_int_equal(req.params_buf_len, used);
    assert_true(used <= sizeof(req.params_buf));
}

static void assert_param(size_t i, const char *name, const char *value)
{
    assert_true(i < req.nparams);
    assert_string_equal(req.params[i].name, name);
    assert_int_equal(req.params[i].name_len, strlen(name));
    assert_int_equal(req.params[i].value_len, strlen(value));
    assert_memory_equal(req.params[i].value, value, strlen(value));
}

static void test_bound_minimal(void **state)
{
    (void)state;
    assert_int_equal(parse11(BOUND(CID)), RLY_SREQ_OK);
    assert_int_equal(req.bound, 1);
    assert_string_equal(req.authorization_server, "https://auth.atlassian.com/authorize");
    assert_int_equal(req.authorization_server_len, strlen("https://auth.atlassian.com/authorize"));
    assert_string_equal(req.return_uri, "https://qorus.example.com:8011/grant");
    assert_int_equal(req.nparams, 1);
    assert_param(0, "client_id", "abc");
    assert_params_in_buf();
    assert_int_equal(req.label_len, 0);
    assert_string_equal(req.label, "");
    assert_int_equal(req.has_seal_key, 0);
    assert_int_equal(req.ttl, RLY_TTL_DEFAULT);
}

static void test_bound_full(void **state)
{
    (void)state;
    assert_int_equal(
        parse11("{\"authorization_server\":\"https:\\/\\/AUTH.atlassian.com\\/authorize?x=1\",\"label\":\"Qorus "
                "caf\\u00e9 \xf0\x9f\x98\x80\",\"ttl\":300,\"seal_key\":\"" KEY32 "\"," RU ",\"authorize_params\":{"
                "\"audience\":\"api.atlassian.com\",\"client_id\":\"Qorus-App.1\",\"scope\":\"read:jira-work "
                "offline_access\",\"prompt\":\"consent\",\"code_challenge\":\"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\","
                "\"code_challenge_method\":\"S256\",\"response_mode\":\"form_post\",\"x.y_z-1\":\"\\\"q\\\" \\\\ ~\","
                "\"empty\":\"\"}}"),
        RLY_SREQ_OK);
    assert_int_equal(req.bound, 1);
    assert_string_equal(req.authorization_server, "https://AUTH.atlassian.com/authorize?x=1"); /* as given, unescaped */
    assert_string_equal(req.label, "Qorus caf\xc3\xa9 \xf0\x9f\x98\x80");
    assert_int_equal(req.label_len, strlen("Qorus caf\xc3\xa9 \xf0\x9f\x98\x80"));
    assert_int_equal(req.ttl, 300);
    assert_int_equal(req.has_seal_key, 1);
    /* in the order of the body */
    assert_int_equal(req.nparams, 9);
    assert_param(0, "audience", "api.atlassian.com");
    assert_param(1, "client_id", "Qorus-App.1");
    assert_param(2, "scope", "read:jira-work offline_access");
    assert_param(3, "prompt", "consent");
    assert_param(4, "code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    assert_param(5, "code_challenge_method", "S256");
    assert_param(6, "response_mode", "form_post");
    assert_param(7, "x.y_z-1", "\"q\" \\ ~");
    assert_param(8, "empty", "");
    assert_params_in_buf();
}

/* without authorize_params: refused unless the relay takes version-1 sessions, and then exactly a version-1 session */
static void test_unbound(void **state)
{
    (void)state;
    assert_int_equal(parse11("{" AS "," RU "}"), RLY_SREQ_INVALID);
    assert_string_equal(errstr, "authorize_params is required (protocol 1.1)");
    assert_int_equal(parse11("{" AS "}"), RLY_SREQ_INVALID);
    assert_string_equal(errstr, "authorize_params is required (protocol 1.1)");
    assert_int_equal(parse11("{" AS ",\"authorize_params\":null," RU "}"), RLY_SREQ_INVALID);
    assert_string_equal(errstr, "authorize_params is required (protocol 1.1)");
    /* the same bodies where version 1 is allowed */
    assert_int_equal(parse("{" AS ",\"return_uri\":\"https://qorus.example.com/grant?tab=1\",\"label\":\"\\u200b\","
                           "\"client_id\":5}"),
                     RLY_SREQ_OK);
    assert_int_equal(req.bound, 0);
    assert_int_equal(req.nparams, 0);
    assert_int_equal(req.params_buf_len, 0);
    assert_int_equal(req.label_len, 0); /* a label is a 1.1 member: ignored in version 1, like any unknown member */
    assert_string_equal(req.return_uri, "https://qorus.example.com/grant?tab=1");
    assert_int_equal(parse("{" AS ",\"authorize_params\":null}"), RLY_SREQ_OK);
    assert_int_equal(req.bound, 0);
    /* a client allow-list does not apply to version-1 sessions */
    assert_int_equal(parse_pol(&pol_clients_unbound, "{" AS "}"), RLY_SREQ_OK);
    /* while authorize_params, when given, makes it a bound session even where version 1 is allowed */
    assert_int_equal(parse(BOUND(CID)), RLY_SREQ_OK);
    assert_int_equal(req.bound, 1);
    assert_int_equal(parse("{" AS "," AP(CID) "}"), RLY_SREQ_INVALID);
    assert_string_equal(errstr, "return_uri is required (protocol 1.1)");
}

static void test_authorize_params_type(void **state)
{
    (void)state;
    const char *bodies[] = {"{" AS "," RU ",\"authorize_params\":\"client_id=abc\"}", "{" AS "," RU ",\"authorize_params\":[]}",
                            "{" AS "," RU ",\"authorize_params\":[{" CID "}]}", "{" AS "," RU ",\"authorize_params\":1}",
                            "{" AS "," RU ",\"authorize_params\":true}"};
    for (size_t i = 0; i != sizeof(bodies) / sizeof(bodies[0]); ++i) {
        assert_int_equal(parse11(bodies[i]), RLY_SREQ_INVALID);
        assert_string_equal(errstr, "authorize_params is not an object");
        assert_int_equal(parse(bodies[i]), RLY_SREQ_INVALID); /* also where version 1 is allowed */
    }
    assert_int_equal(parse11(BOUND("")), RLY_SREQ_INVALID);
    assert_string_equal(errstr, "authorize_params.client_id is missing");
    /* the key spelled with an escape is the same member */
    assert_int_equal(parse11("{" AS "," RU ",\"authorize\\u005fparams\":{" CID "}}"), RLY_SREQ_OK);
    assert_int_equal(req.bound, 1);
    assert_param(0, "client_id", "abc");
    /* twice, however spelled */
    assert_int_equal(parse11("{" AS "," RU "," AP(CID) "," AP(CID) "}"), RLY_SREQ_INVALID);
    assert_int_equal(parse11("{" AS "," RU "," AP(CID) ",\"authorize\\u005fparams\":{" CID "}}"), RLY_SREQ_INVALID);
    assert_string_equal(errstr, "the body has a duplicated member");
    /* a nested member of that name is not it */
    assert_int_equal(parse11("{" AS "," RU ",\"x\":{" AP(CID) "}}"), RLY_SREQ_INVALID);
    assert_string_equal(errstr, "authorize_params is required (protocol 1.1)");
}

static void test_authorize_params_duplicates(void **state)
{
    (void)state;
    assert_int_equal(parse11(BOUND(CID "," CID)), RLY_SREQ_INVALID);
    assert_string_equal(errstr, "authorize_params has a duplicated member");
    assert_int_equal(parse11(BOUND(CID ",\"client_id\":\"evil\"")), RLY_SREQ_INVALID);
    assert_int_equal(parse11(BOUND("\"scope\":\"a\"," CID ",\"sc\\u006fpe\":\"b\"")), RLY_SREQ_INVALID);
    assert_string_equal(errstr, "authorize_params has a duplicated member");
    /* a name cut at an escaped NUL would alias another */
    assert_int_equal(parse11(BOUND(CID ",\"client_id\\u0000evil\":\"x\"")), RLY_SREQ_INVALID);
    assert_int_equal(parse11(BOUND("\"client_id\\u0000\":\"evil\"")), RLY_SREQ_INVALID);
    /* names that differ only in case are different names (the reserved ones aside) */
    assert_int_equal(parse11(BOUND(CID ",\"scope\":\"a\",\"Scope\":\"b\"")), RLY_SREQ_OK);
    assert_int_equal(req.nparams, 3);
    /* duplicates inside other members' objects are still no concern */
    assert_int_equal(parse11("{" AS "," RU ",\"x\":{\"a\":1,\"a\":2}," AP(CID) ",\"y\":{\"client_id\":1,\"client_id\":2}}"),
                     RLY_SREQ_OK);
    assert_int_equal(req.nparams, 1);
}

/* {AS, RU, authorize_params: {client_id: "abc", p1: "v", ..., p<n-1>: "v"}} */
static const char *with_params(size_t n)
{
    size_t len = 0;
    int w = snprintf(body, sizeof(body), "{" AS "," RU ",\"authorize_params\":{" CID);
    assert_true(w > 0);
    len = (size_t)w;
    for (size_t i = 1; i < n; ++i) {
        w = snprintf(body + len, sizeof(body) - len, ",\"p%zu\":\"v\"", i);
        assert_true(w > 0 && (size_t)w < sizeof(body) - len);
        len += (size_t)w;
    }
    assert_true(len + 3 <= sizeof(body));
    memcpy(body + len, "}}", 3);
    return body;
}

static void test_authorize_params_count(void **state)
{
    (void)state;
    assert_int_equal(parse11(with_params(RLY_AUTHORIZE_PARAMS_COUNT_MAX)), RLY_SREQ_OK);
    assert_int_equal(req.nparams, RLY_AUTHORIZE_PARAMS_COUNT_MAX);
    assert_param(0, "client_id", "abc");
    assert_param(31, "p31", "v");
    assert_params_in_buf();
    assert_int_equal(parse11(with_params(RLY_AUTHORIZE_PARAMS_COUNT_MAX + 1)), RLY_SREQ_INVALID);
    assert_string_equal(errstr, "authorize_params has more than 32 members");
    assert_int_equal(parse11(with_params(100)), RLY_SREQ_INVALID);
}

/* authorize_params of client_id "abc" and one more member "x" whose value makes total bytes of names and values */
static const char *with_total(size_t total)
{
    static const char head[] = "{" AS "," RU ",\"authorize_params\":{" CID ",\"x\":\"";
    size_t hl = sizeof(head) - 1, vlen = total - strlen("client_id") - strlen("abc") - strlen("x");

    assert_true(hl + vlen + 4 <= sizeof(body));
    memcpy(body, head, hl);
    memset(body + hl, 'v', vlen);
    memcpy(body + hl + vlen, "\"}}", 4);
    return body;
}

static void test_authorize_params_size(void **state)
{
    (void)state;
    assert_int_equal(parse11(with_total(RLY_AUTHORIZE_PARAMS_MAX)), RLY_SREQ_OK);
    assert_int_equal(req.nparams, 2);
    assert_int_equal(req.params[1].value_len, RLY_AUTHORIZE_PARAMS_MAX - 13);
    assert_params_in_buf();
    assert_int_equal(parse11(with_total(RLY_AUTHORIZE_PARAMS_MAX + 1)), RLY_SREQ_INVALID);
    assert_string_equal(errstr, "authorize_params has more than 4096 bytes of names and values");
    assert_int_equal(parse11(with_total(RLY_AUTHORIZE_PARAMS_MAX + 1000)), RLY_SREQ_INVALID);

    /* the largest set: 32 members and 4096 bytes; names of 64 bytes */
    size_t len = 0, total = 0;
    int w = snprintf(body, sizeof(body), "{" AS "," RU ",\"authorize_params\":{" CID);
    len = (size_t)w;
    total = 12;
    for (size_t i = 1; i != RLY_AUTHORIZE_PARAMS_COUNT_MAX; ++i) {
        char name[65];
        memset(name, 'n', 64);
        name[64] = '\0';
        name[0] = (char)('A' + i % 26);
        name[1] = (char)('a' + i / 26);
        size_t vlen = i + 1 == RLY_AUTHORIZE_PARAMS_COUNT_MAX ? RLY_AUTHORIZE_PARAMS_MAX - total - 64 : 60;
        w = snprintf(body + len, sizeof(body) - len, ",\"%s\":\"%*s\"", name, (int)vlen, "");
        assert_true(w > 0 && (size_t)w < sizeof(body) - len);
        len += (size_t)w;
        total += 64 + vlen;
    }
    assert_int_equal(total, RLY_AUTHORIZE_PARAMS_MAX);
    memcpy(body + len, "}}", 3);
    assert_int_equal(parse11(body), RLY_SREQ_OK);
    assert_int_equal(req.nparams, RLY_AUTHORIZE_PARAMS_COUNT_MAX);
    assert_int_equal(req.params_buf_len, RLY_AUTHORIZE_PARAMS_MAX + 2 * RLY_AUTHORIZE_PARAMS_COUNT_MAX);
    assert_params_in_buf();
}

static void test_authorize_params_names(void **state)
{
    char name[70];

    (void)state;
    memset(name, 'a', sizeof(name));
    for (size_t n = 1; n <= 66; ++n) {
        int w = snprintf(body, sizeof(body), BOUND(CID ",\"%.*s\":\"v\""), (int)n, name);
        assert_true(w > 0);
        assert_int_equal(parse11(body), n <= 64 ? RLY_SREQ_OK : RLY_SREQ_INVALID);
        if (n > 64)
            assert_string_equal(errstr, "authorize_params has a name outside [A-Za-z0-9._-]{1,64}");
    }
    assert_int_equal(parse11(BOUND(CID ",\"\":\"v\"")), RLY_SREQ_INVALID);
    assert_string_equal(errstr, "authorize_params has a name outside [A-Za-z0-9._-]{1,64}");
    const char *bad[] = {"a b", "a/b", "a~b",         "a+b",       "a%20",      "a:b",    "a=b",    "a&b", "a?b",
                         "a#b", "a[]", "caf\xc3\xa9", "a\\u0009b", "a\\u007fb", "a\\\"b", "a\\\\b", "a,b", "@evil"};
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        int w = snprintf(body, sizeof(body), BOUND(CID ",\"%s\":\"v\""), bad[i]);
        assert_true(w > 0);
        assert_int_equal(parse11(body), RLY_SREQ_INVALID);
        assert_string_equal(errstr, "authorize_params has a name outside [A-Za-z0-9._-]{1,64}");
    }
    assert_int_equal(parse11(BOUND(CID ",\"AZaz09._-\":\"v\",\"-\":\"v\",\"_\":\"v\",\".\":\"v\",\"9\":\"v\"")), RLY_SREQ_OK);
    assert_int_equal(req.nparams, 6);
}

static void test_authorize_params_values(void **state)
{
    (void)state;
    const char *not_strings[] = {"1", "1.5", "true", "false", "null", "[]", "[\"a\"]", "{}", "{\"a\":\"b\"}"};
    for (size_t i = 0; i != sizeof(not_strings) / sizeof(not_strings[0]); ++i) {
        int w = snprintf(body, sizeof(body), BOUND(CID ",\"scope\":%s"), not_strings[i]);
        assert_true(w > 0);
        assert_int_equal(parse11(body), RLY_SREQ_INVALID);
        assert_string_equal(errstr, "authorize_params has a value that is not a string");
        w = snprintf(body, sizeof(body), BOUND("\"client_id\":%s"), not_strings[i]);
        assert_int_equal(parse11(body), RLY_SREQ_INVALID);
    }
    const char *bad[] = {"a\\u0009b",   "a\\nb",      "\\u0000", "a\\u001fb", "a\\u007fb",
                         "caf\xc3\xa9", "caf\\u00e9", "\\u0085", "\\u2028",   "\xf0\x9f\x98\x80"};
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        int w = snprintf(body, sizeof(body), BOUND(CID ",\"scope\":\"%s\""), bad[i]);
        assert_true(w > 0);
        assert_int_equal(parse11(body), RLY_SREQ_INVALID);
        assert_string_equal(errstr, "authorize_params has a value that is not printable ASCII");
    }
    /* every printable ASCII character, some escaped */
    assert_int_equal(parse11(BOUND(CID ",\"v\":\" !\\\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\\\]^_`abcdefghij"
                                       "klmnopqrstuvwxyz{|}~\\u0041\\/\"")),
                     RLY_SREQ_OK);
    assert_param(1, "v", " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~A/");
}

static void test_authorize_params_reserved(void **state)
{
    (void)state;
    const char *reserved[] = {"redirect_uri", "state", "response_type", "Redirect_URI",
                              "STATE",        "State", "RESPONSE_TYPE", "redirect\\u005furi"};
    for (size_t i = 0; i != sizeof(reserved) / sizeof(reserved[0]); ++i) {
        int w = snprintf(body, sizeof(body), BOUND(CID ",\"%s\":\"https://evil.example/\""), reserved[i]);
        assert_true(w > 0);
        assert_int_equal(parse11(body), RLY_SREQ_INVALID);
        assert_string_equal(errstr, "authorize_params must not contain redirect_uri, state or response_type");
        w = snprintf(body, sizeof(body), BOUND("\"%s\":\"code\"," CID), reserved[i]);
        assert_int_equal(parse11(body), RLY_SREQ_INVALID);
    }
    assert_int_equal(parse11(BOUND(CID ",\"response_type\":\"code\"")), RLY_SREQ_INVALID);
    /* client_id and response_mode only in lower case */
    assert_int_equal(parse11(BOUND(CID ",\"Client_Id\":\"evil\"")), RLY_SREQ_INVALID);
    assert_string_equal(errstr, "authorize_params has client_id or response_mode in another letter case");
    assert_int_equal(parse11(BOUND("\"CLIENT_ID\":\"abc\"")), RLY_SREQ_INVALID);
    assert_int_equal(parse11(BOUND(CID ",\"RESPONSE_MODE\":\"fragment\"")), RLY_SREQ_INVALID);
    assert_string_equal(errstr, "authorize_params has client_id or response_mode in another letter case");
    /* names that only contain them are other parameters */
    assert_int_equal(parse11(BOUND(CID ",\"state2\":\"x\",\"x_state\":\"x\",\"redirect_uri_hint\":\"x\",\"client_ids\":\"x\"")),
                     RLY_SREQ_OK);
    assert_int_equal(req.nparams, 5);
}

static void test_response_mode(void **state)
{
    (void)state;
    assert_int_equal(parse11(BOUND(CID ",\"response_mode\":\"query\"")), RLY_SREQ_OK);
    assert_param(1, "response_mode", "query");
    assert_int_equal(parse11(BOUND("\"response_mode\":\"form_post\"," CID)), RLY_SREQ_OK);
    assert_param(0, "response_mode", "form_post");
    const char *bad[] = {"fragment", "",          "Query",         "FORM_POST",   "form_post ",
                         " query",   "query.jwt", "form_post.jwt", "web_message", "queryx"};
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        int w = snprintf(body, sizeof(body), BOUND(CID ",\"response_mode\":\"%s\""), bad[i]);
        assert_true(w > 0);
        assert_int_equal(parse11(body), RLY_SREQ_INVALID);
        assert_string_equal(errstr, "authorize_params.response_mode must be query or form_post");
    }
}

static void test_client_id(void **state)
{
    (void)state;
    assert_int_equal(parse11(BOUND("\"scope\":\"read\"")), RLY_SREQ_INVALID);
    assert_string_equal(errstr, "authorize_params.client_id is missing");
    assert_int_equal(parse11(BOUND("\"client_id\":\"\"")), RLY_SREQ_INVALID);
    assert_string_equal(errstr, "authorize_params.client_id is empty");
    assert_int_equal(parse11(BOUND("\"client_id\":null")), RLY_SREQ_INVALID);
    assert_string_equal(errstr, "authorize_params has a value that is not a string");

    /* the allow-list: exact matches only */
    assert_int_equal(parse_pol(&pol_clients, BOUND(CID)), RLY_SREQ_OK);
    assert_int_equal(parse_pol(&pol_clients, BOUND("\"client_id\":\"Qorus-App.1\"")), RLY_SREQ_OK);
    const char *others[] = {"ABC", "abcd", "ab", "Qorus-App.", "Qorus-App.11", "evil", " abc", "abc "};
    for (size_t i = 0; i != sizeof(others) / sizeof(others[0]); ++i) {
        int w = snprintf(body, sizeof(body), BOUND("\"client_id\":\"%s\""), others[i]);
        assert_true(w > 0);
        assert_int_equal(parse_pol(&pol_clients, body), RLY_SREQ_CLIENT_NOT_ALLOWED);
        assert_string_equal(errstr, "the client_id is not allowed");
    }
    /* any client without a list */
    assert_int_equal(parse11(BOUND("\"client_id\":\"evil\"")), RLY_SREQ_OK);

    /* malformed first (400), then the authorization server (403), then the client (403) */
    assert_int_equal(parse_pol(&pol_clients, BOUND("\"client_id\":\"evil\",\"state\":\"x\"")), RLY_SREQ_INVALID);
    assert_int_equal(parse_pol(&pol_clients, "{" AS "," AP("\"client_id\":\"evil\"") "}"), RLY_SREQ_INVALID);
    assert_int_equal(parse_pol(&pol_clients, "{" AS "," RU "," AP("\"client_id\":\"evil\"") ",\"label\":\"\"}"), RLY_SREQ_INVALID);
    assert_int_equal(
        parse_pol(&pol_clients, "{\"authorization_server\":\"https://login.evil.com/\"," RU "," AP("\"client_id\":\"evil\"") "}"),
        RLY_SREQ_NOT_ALLOWED);
    assert_int_equal(parse_pol(&pol_clients, "{\"authorization_server\":\"https://login.evil.com/\"," RU "," AP(CID) "}"),
                     RLY_SREQ_NOT_ALLOWED);
    assert_int_equal(parse_pol(&pol_clients, "{\"authorization_server\":\"https://login.evil.com/\"," RU "," AP(CID) ",\"ttl\":1}"),
                     RLY_SREQ_INVALID);
    /* version 1 is refused under this policy whatever the client */
    assert_int_equal(parse_pol(&pol_clients, "{" AS "," RU "}"), RLY_SREQ_INVALID);
}

static void test_bound_return_uri(void **state)
{
    (void)state;
    assert_int_equal(parse11("{" AS "," AP(CID) "}"), RLY_SREQ_INVALID);
    assert_string_equal(errstr, "return_uri is required (protocol 1.1)");
    assert_int_equal(parse11("{" AS ",\"return_uri\":null," AP(CID) "}"), RLY_SREQ_INVALID);
    assert_string_equal(errstr, "return_uri is required (protocol 1.1)");
    /* a query, even an empty one, only for bound sessions */
    const char *with_query[] = {"https://qorus.example.com/grant?x=1", "https://qorus.example.com/grant?",
                                "https://qorus.example.com?x", "http://127.0.0.1:8011/grant?status=1"};
    for (size_t i = 0; i != sizeof(with_query) / sizeof(with_query[0]); ++i) {
        int w = snprintf(body, sizeof(body), "{" AS ",\"return_uri\":\"%s\"," AP(CID) "}", with_query[i]);
        assert_true(w > 0);
        assert_int_equal(parse11(body), RLY_SREQ_INVALID);
        assert_string_equal(errstr, "return_uri must not have a query (protocol 1.1)");
        w = snprintf(body, sizeof(body), "{" AS ",\"return_uri\":\"%s\"}", with_query[i]);
        assert_int_equal(parse(body), RLY_SREQ_OK); /* version 1 */
        assert_string_equal(req.return_uri, with_query[i]);
    }
    /* userinfo: refused for every session (the URL check), so for bound ones too */
    const char *with_userinfo[] = {"https://user@qorus.example.com/grant", "https://user:pw@qorus.example.com/grant",
                                   "https://@qorus.example.com/grant"};
    for (size_t i = 0; i != sizeof(with_userinfo) / sizeof(with_userinfo[0]); ++i) {
        int w = snprintf(body, sizeof(body), "{" AS ",\"return_uri\":\"%s\"," AP(CID) "}", with_userinfo[i]);
        assert_true(w > 0);
        assert_int_equal(parse11(body), RLY_SREQ_INVALID);
        w = snprintf(body, sizeof(body), "{" AS ",\"return_uri\":\"%s\"}", with_userinfo[i]);
        assert_int_equal(parse(body), RLY_SREQ_INVALID);
    }
    /* a fragment as before; ports, paths and loopback http stay fine */
    assert_int_equal(parse11("{" AS ",\"return_uri\":\"https://qorus.example.com/grant#x\"," AP(CID) "}"), RLY_SREQ_INVALID);
    assert_int_equal(parse11("{" AS ",\"return_uri\":\"http://127.0.0.1:8011/grant/oauth\"," AP(CID) "}"), RLY_SREQ_OK);
    assert_int_equal(parse11("{" AS ",\"return_uri\":\"https://[::1]:8011\"," AP(CID) "}"), RLY_SREQ_OK);
    assert_string_equal(req.return_uri, "https://[::1]:8011");
}

/* {AS, RU, authorize_params, "label": "<label>"} with the label's bytes as given (raw UTF-8 or JSON escapes) */
static rly_session_req_status_t parse_label(const char *label)
{
    int w = snprintf(body, sizeof(body), "{" AS "," RU "," AP(CID) ",\"label\":\"%s\"}", label);
    assert_true(w > 0 && (size_t)w < sizeof(body));
    return parse11(body);
}

/* UTF-8 of one code point into out (NUL-terminated) */
static void utf8_of(uint32_t cp, char out[5])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = '\0';
    } else if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        out[2] = '\0';
    } else if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        out[3] = '\0';
    } else {
        out[0] = (char)(0xf0 | cp >> 18);
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[3] = (char)(0x80 | (cp & 0x3f));
        out[4] = '\0';
    }
}

static void test_label(void **state)
{
    char label[200];

    (void)state;
    assert_int_equal(parse_label("Qorus production"), RLY_SREQ_OK);
    assert_string_equal(req.label, "Qorus production");
    assert_int_equal(req.label_len, 16);
    /* 64 bytes, ASCII or not; 65 refused */
    memset(label, 'a', 64);
    label[64] = '\0';
    assert_int_equal(parse_label(label), RLY_SREQ_OK);
    assert_int_equal(req.label_len, 64);
    assert_string_equal(req.label, label);
    label[64] = 'a';
    label[65] = '\0';
    assert_int_equal(parse_label(label), RLY_SREQ_INVALID);
    assert_string_equal(errstr, "label must be 1 to 64 bytes");
    for (size_t i = 0; i != 32; ++i)
        memcpy(label + 2 * i, "\xc3\xa9", 2);
    label[64] = '\0';
    assert_int_equal(parse_label(label), RLY_SREQ_OK);
    assert_int_equal(req.label_len, 64);
    memset(label, 'a', 63);
    memcpy(label + 63, "\xc3\xa9", 3); /* 65 bytes, 64 characters */
    assert_int_equal(parse_label(label), RLY_SREQ_INVALID);
    assert_string_equal(errstr, "label must be 1 to 64 bytes");
    /* the same 64 bytes as JSON escapes count as their UTF-8 */
    for (size_t i = 0; i != 32; ++i)
        memcpy(label + 6 * i, "\\u00e9", 6);
    label[192] = '\0';
    assert_int_equal(parse_label(label), RLY_SREQ_OK);
    assert_int_equal(req.label_len, 64);
    assert_int_equal(parse_label(""), RLY_SREQ_INVALID);
    assert_string_equal(errstr, "label must be 1 to 64 bytes");
    /* absent, null, or another type */
    assert_int_equal(parse11("{" AS "," RU "," AP(CID) ",\"label\":null}"), RLY_SREQ_OK);
    assert_int_equal(req.label_len, 0);
    assert_int_equal(parse11("{" AS "," RU "," AP(CID) ",\"label\":1}"), RLY_SREQ_INVALID);
    assert_string_equal(errstr, "label is not a string");
    assert_int_equal(parse11("{" AS "," RU "," AP(CID) ",\"label\":[\"a\"]}"), RLY_SREQ_INVALID);

    /* Cc, Cf, Zl, Zp: raw and escaped */
    const char *refused[] = {"a\\u0000b",
                             "a\\tb",
                             "a\\nb",
                             "\\u001f",
                             "\\u007f",
                             "\xc2\x85",
                             "\\u0085",
                             "\\u009f",
                             "a\xe2\x80\x8b"
                             "b",
                             "\\u200b",
                             "\\u200d",
                             "\\u200e",
                             "\\u202e",
                             "\\u2066",
                             "\\ufeff",
                             "\xc2\xad",
                             "\\u061c",
                             "\xe2\x80\xa8",
                             "\\u2028",
                             "\xe2\x80\xa9",
                             "\\u2029",
                             "\xf3\xa0\x80\x81",
                             "\\udb40\\udc01",
                             "\xf0\x93\x90\xb9", /* U+13439: Cf since Unicode 15.0 */
                             "\xf0\x9d\x85\xb3"};
    for (size_t i = 0; i != sizeof(refused) / sizeof(refused[0]); ++i) {
        if (parse_label(refused[i]) != RLY_SREQ_INVALID)
            fail_msg("label %zu accepted", i);
        assert_string_equal(errstr, "label contains control, format or line separator characters");
    }
    /* other characters, spaces of category Zs included */
    const char *accepted[] = {"Qorus \xe2\x80\x94 prod",
                              "\xf0\x9f\x98\x80",
                              "\xe6\x97\xa5\xe6\x9c\xac",
                              "\\u00a0",
                              "\\u3000",
                              "\\u00ac\\u00ae",
                              "\\u061b\\u061d",
                              "\xef\xbf\xbd",
                              "<script>&amp;\\\"'",
                              "\xf4\x8f\xbf\xbf",
                              "\xf0\x93\x91\x80" /* U+13440 */};
    for (size_t i = 0; i != sizeof(accepted) / sizeof(accepted[0]); ++i)
        if (parse_label(accepted[i]) != RLY_SREQ_OK)
            fail_msg("label %zu refused: %s", i, errstr);
    /* an escaped lone surrogate: json-c turns it into U+FFFD, which is an ordinary character */
    assert_int_equal(parse_label("\\ud800"), RLY_SREQ_OK);
    assert_string_equal(req.label, "\xef\xbf\xbd");
    /* raw bytes that are not UTF-8 never reach the label check: json-c refuses the body */
    assert_int_equal(parse_label("\xff"), RLY_SREQ_INVALID);
    assert_int_equal(parse_label("\xc0\xaf"), RLY_SREQ_INVALID);
    assert_int_equal(parse_label("\xed\xa0\x80"), RLY_SREQ_INVALID);
    assert_int_equal(parse_label("\xe2\x80"), RLY_SREQ_INVALID);
}

/* the Cf table, at the edges of each of its ranges, and every code point up to U+3000 */
static void test_label_format_table(void **state)
{
    static const uint32_t cf[][2] = {
        {0x00ad, 0x00ad},   {0x0600, 0x0605},   {0x061c, 0x061c},   {0x06dd, 0x06dd},   {0x070f, 0x070f},   {0x0890, 0x0891},
        {0x08e2, 0x08e2},   {0x180e, 0x180e},   {0x200b, 0x200f},   {0x202a, 0x202e},   {0x2060, 0x2064},   {0x2066, 0x206f},
        {0xfeff, 0xfeff},   {0xfff9, 0xfffb},   {0x110bd, 0x110bd}, {0x110cd, 0x110cd}, {0x13430, 0x1343f}, {0x1bca0, 0x1bca3},
        {0x1d173, 0x1d17a}, {0xe0001, 0xe0001}, {0xe0020, 0xe007f},
    };
    char label[8];
    size_t n = sizeof(cf) / sizeof(cf[0]), count = 0;

    (void)state;
    for (size_t i = 0; i != n; ++i)
        count += cf[i][1] - cf[i][0] + 1;
    assert_int_equal(count, 170); /* Unicode 15.0.0 */
    for (uint32_t cp = 0; cp <= 0x10ffff; ++cp) {
        int in = 0, edge = cp <= 0x3000;
        for (size_t i = 0; i != n; ++i) {
            in |= cp >= cf[i][0] && cp <= cf[i][1];
            edge |= cp + 1 >= cf[i][0] && cp <= cf[i][1] + 1;
        }
        if (!edge || (cp >= 0xd800 && cp <= 0xdfff) || cp == '"' || cp == '\\')
            continue;
        int expect_ok = !in && !(cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029);
        utf8_of(cp, label);
        if ((parse_label(label) == RLY_SREQ_OK) != expect_ok)
            fail_msg("U+%04X: expected %s", (unsigned)cp, expect_ok ? "accepted" : "refused");
    }
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
        cmocka_unit_test(test_allow_list_wildcards),
        cmocka_unit_test(test_null_members),
        cmocka_unit_test(test_unknown_members),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_body_size),
        cmocka_unit_test(test_bound_minimal),
        cmocka_unit_test(test_bound_full),
        cmocka_unit_test(test_unbound),
        cmocka_unit_test(test_authorize_params_type),
        cmocka_unit_test(test_authorize_params_duplicates),
        cmocka_unit_test(test_authorize_params_count),
        cmocka_unit_test(test_authorize_params_size),
        cmocka_unit_test(test_authorize_params_names),
        cmocka_unit_test(test_authorize_params_values),
        cmocka_unit_test(test_authorize_params_reserved),
        cmocka_unit_test(test_response_mode),
        cmocka_unit_test(test_client_id),
        cmocka_unit_test(test_bound_return_uri),
        cmocka_unit_test(test_label),
        cmocka_unit_test(test_label_format_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
