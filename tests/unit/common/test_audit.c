/* test_audit.c: the log auditor: schema, fixed msg texts, AS identifiers and allow-lists, patterns of identifying data,
 * totals and the audit command's output */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "rly.h"
#include "audit.h"
#include "logmsg.h"

#define TS "\"ts\":\"2026-11-29T05:38:48.123Z\""
#define HEAD "{" TS ",\"level\":\"info\","
#define FLOW(as, outcome) HEAD "\"event\":\"callback\",\"as\":\"" as "\",\"outcome\":\"" outcome "\",\"ms\":12}"
#define MSG(msg) HEAD "\"event\":\"start\",\"msg\":\"" msg "\"}"

#define SESSION_ID "Xq3vK9_pL2mN8rT1wY5zAb"                      /* 22 */
#define POLL_TOKEN "kQ9-fZx2Lr7vBn4TgYh1Wm8sPc0dJe6uAo3iKl5qNtU" /* 43 */
#define STATE "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_aBcDeF"     /* 44 */

/* what a browser sends, and what must never reach a msg */
#define UA_SHORT "Mozilla/5.0 (X11; Linux x86_64) ..."
#define UA_FULL "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"

/* the relay's --allow-as in the suites' relays (test_privacy, test_providers): an exact entry and a wildcard */
#define ALLOW_AS "auth.atlassian.com,*.okta.com"

/* the allow-list of the next auditors why_of makes (NULL: none, so any entry is an AS identifier) */
static const char *allow_as;

/* why a line is refused, or NULL when it is clean */
static const char *why_of(const char *line)
{
    rly_audit_t *a = rly_audit_new();
    const char *why = NULL;
    int ret;
    assert_non_null(a);
    if (allow_as != NULL)
        assert_int_equal(rly_audit_allow_as(a, allow_as, &why), 0);
    ret = rly_audit_line(a, line, strlen(line), &why);
    rly_audit_free(a);
    assert_true((ret == 0) == (why == NULL));
    return why;
}

static void expect_why(const char *line, const char *why)
{
    const char *got = why_of(line);
    if (got == NULL || strcmp(got, why) != 0)
        fail_msg("expected \"%s\", got \"%s\" for %s", why, got != NULL ? got : "(clean)", line);
}

static void expect_clean(const char *line)
{
    const char *got = why_of(line);
    if (got != NULL)
        fail_msg("expected clean, got \"%s\" for %s", got, line);
}

static void expect_violation(const char *line)
{
    if (why_of(line) == NULL)
        fail_msg("expected a violation for %s", line);
}

static void test_clean(void **state)
{
    (void)state;
    assert_int_equal(strlen(SESSION_ID), RLY_SESSION_ID_LEN);
    assert_int_equal(strlen(POLL_TOKEN), RLY_POLL_TOKEN_LEN);
    assert_int_equal(strlen(STATE), 44);

    expect_clean(FLOW("auth.atlassian.com", "ok"));
    expect_clean(FLOW("login.microsoftonline.com", "state_invalid"));
    expect_clean(FLOW("accounts.google.com", "ok"));
    expect_clean(FLOW("dev-7o4b1cm2ozjkacl6.us.auth0.com", "ok"));
    expect_clean(FLOW("cognito-idp.us-east-1.amazonaws.com", "ok"));
    expect_clean(FLOW("localhost", "ok"));
    expect_clean(FLOW("invalid", "invalid"));
    /* AS identifiers: wildcard entries as written, and the identifier of a relay without an allow-list */
    expect_clean(FLOW("*.okta.com", "ok"));
    expect_clean(FLOW("*.my.salesforce.com", "ok"));
    expect_clean(FLOW("unlisted", "ok"));
    expect_clean(HEAD "\"event\":\"start\",\"msg\":\"listening\",\"version\":\"1.0.0\"}");
    expect_clean(MSG("listening (development mode)"));
    expect_clean(HEAD "\"event\":\"store_down\",\"msg\":\"the Redis connection was lost\"}");
    expect_clean(HEAD "\"event\":\"http2_guard\",\"msg\":\"HTTP/2 reset guard not installed: libh2o layout differs\"}");
    expect_clean(MSG(RLY_LOGMSG_WITHHELD));
    /* an escape hides nothing, and changes nothing either: the decoded text is the listed one */
    expect_clean(MSG("listen\\u0069ng"));
    expect_clean("{" TS ",\"level\":\"warn\",\"event\":\"pickup\",\"outcome\":\"store_down\",\"ms\":0}");
    expect_clean("{" TS ",\"level\":\"debug\",\"event\":\"x\"}");
    expect_clean("{" TS ",\"level\":\"error\",\"event\":\"x\",\"ms\":9007199254740993}");
    expect_clean("{ " TS " , \"level\" : \"info\" , \"event\" : \"x\" }");
}

static void test_addresses(void **state)
{
    (void)state;
    expect_why(MSG("client 203.0.113.7 connected"), "IPv4 address");
    expect_why(MSG("10.0.0.1:8080"), "IPv4 address");
    expect_why(MSG("v1.2.3.4"), "IPv4 address");
    expect_why(MSG("from 1.2.3.4."), "IPv4 address");
    expect_why(FLOW("203.0.113.7", "ok"), "IPv4 address");
    expect_why(FLOW("127.0.0.1.nip.io", "ok"), "IPv4 address");
    expect_why(MSG("from 2001:db8::1"), "IPv6 address");
    expect_why(MSG("::1"), "IPv6 address");
    expect_why(MSG("::"), "IPv6 address");
    expect_why(MSG("fe80:0:0:0:2aa:ff:fe28:9c5a"), "IPv6 address");
    expect_why(MSG("mac 00:1a:2b:3c:4d:5e"), "IPv6 address");
    expect_why(FLOW("[2001:db8::1]", "ok"), "IPv6 address");
    expect_why(FLOW("[::1]", "ok"), "IPv6 address");
    expect_why(MSG("mail jane.doe@example.com now"), "e-mail address");
    expect_why(MSG("j+x@mail.example.org"), "e-mail address");
    /* an escape hides nothing: the decoded value is scanned too */
    expect_why(MSG("jane\\u0040example.com"), "e-mail address");
    expect_why(MSG("https:\\/\\/relay.example\\/v1\\/sessions"), "URL with path or query");
    expect_why(MSG("203\\u002e0.113.7"), "IPv4 address");
    /* not IPv4: five groups, an octet over 255, four digits; no pattern fires, only the list of texts refuses them */
    expect_why(MSG("1.2.3.4.5"), "unknown msg");
    expect_why(MSG("256.1.1.1"), "unknown msg");
    expect_why(MSG("1000.1.1.1"), "unknown msg");
    expect_why(MSG("1.2.3"), "unknown msg");
    expect_why(MSG("user@localhost"), "unknown msg");
}

static void test_tokens(void **state)
{
    (void)state;
    expect_why(MSG("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl"), "JWT-like token");
    expect_why(MSG("code eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."), "JWT-like token");
    expect_why(MSG("session " SESSION_ID), "long random token");
    expect_why(MSG(POLL_TOKEN), "long random token");
    expect_why(MSG("state=" STATE), "long random token");
    expect_why(FLOW("auth.atlassian.com", SESSION_ID), "long random token");
    expect_why(HEAD "\"event\":\"" SESSION_ID "\"}", "long random token");
    expect_why(MSG("hash 0123456789abcdef0123456789abcdef"), "long random token");
    expect_why(MSG("b64 QUJDREVGR0hJSktMTU5PUFFSU1RVVldY+/abc=="), "long random token");
    expect_why(MSG("see https://relay.example/v1/sessions/x"), "URL with path or query");
    expect_why(MSG("https://relay.example/"), "URL with path or query");
    expect_why(MSG("https://qorus.example.com:8011?status=success"), "URL with path or query");
    expect_why(MSG("http://localhost#frag"), "URL with path or query");
    expect_why(MSG("Authorization: Bearer abc"), "Bearer token");
    expect_why(MSG("bearer x"), "Bearer token");
    expect_why(MSG("Xq3vK9_pL2mN8rT1wY5z"), "long random token"); /* 20 characters */
    /* shorter runs, one-case runs and hex without digits are words, not tokens: no pattern fires, only the list */
    expect_why(MSG("Xq3vK9_pL2mN8rT1wY5 z"), "unknown msg");
    expect_why(MSG("lower-case-and-digits-0123456789-abc"), "unknown msg");
    expect_why(MSG("UPPER_CASE_AND_DIGITS_0123456789"), "unknown msg");
    expect_why(MSG("deadbeefdeadbeefdeadbeef"), "unknown msg");
}

static void test_schema(void **state)
{
    char big[600];
    (void)state;
    expect_why(HEAD "\"event\":\"callback\",\"ip\":\"x\"}", "unknown key");
    expect_why(HEAD "\"event\":\"callback\",\"ua\":\"curl\"}", "unknown key");
    expect_why(HEAD "\"event\":\"callback\",\"path\":\"x\"}", "unknown key");
    expect_why(HEAD "\"event\":\"callback\",\"TS\":\"x\"}", "unknown key");
    expect_why(HEAD "\"event\":\"callback\",\"\\u0061s\":\"x\"}", "unknown key");
    expect_why(HEAD "\"event\":\"callback\",\"as\\u0000x\":\"x\"}", "unknown key");
    expect_why(HEAD "\"event\":\"a\",\"event\":\"b\"}", "duplicate key");
    /* a duplicate cannot hide a value from the scan: the raw line is scanned as well */
    expect_violation(HEAD "\"event\":\"a\",\"msg\":\"203.0.113.7\",\"msg\":\"ok\"}");

    expect_why("{\"ts\":\"2026-11-29 05:38:48.123Z\",\"level\":\"info\",\"event\":\"x\"}", "bad ts");
    expect_why("{\"ts\":\"2026-11-29T05:38:48Z\",\"level\":\"info\",\"event\":\"x\"}", "bad ts");
    expect_why("{\"ts\":\"2026-13-29T05:38:48.123Z\",\"level\":\"info\",\"event\":\"x\"}", "bad ts");
    expect_why("{\"ts\":\"2026-11-29T25:38:48.123Z\",\"level\":\"info\",\"event\":\"x\"}", "bad ts");
    expect_why("{\"ts\":\"2026-11-29T05:38:48.123+00:00\",\"level\":\"info\",\"event\":\"x\"}", "bad ts");
    expect_why("{\"ts\":1795930728123,\"level\":\"info\",\"event\":\"x\"}", "bad ts");
    expect_why("{" TS ",\"level\":\"fatal\",\"event\":\"x\"}", "bad level");
    expect_why("{" TS ",\"level\":\"INFO\",\"event\":\"x\"}", "bad level");
    expect_why("{" TS ",\"level\":\"info\",\"event\":\"x\",\"ms\":1.5}", "bad ms");
    expect_why("{" TS ",\"level\":\"info\",\"event\":\"x\",\"ms\":\"12\"}", "bad ms");
    expect_why("{" TS ",\"level\":\"info\",\"event\":\"x\",\"ms\":-1}", "bad ms");
    expect_why("{" TS ",\"level\":\"info\",\"event\":\"x\",\"ms\":1e3}", "bad ms");
    expect_why("{" TS ",\"level\":\"info\",\"event\":\"x\",\"ms\":true}", "bad ms");
    expect_why("{" TS ",\"level\":\"info\",\"event\":\"x\",\"ms\":null}", "bad ms");
    expect_why(HEAD "\"event\":\"Callback\"}", "bad event");
    expect_why(HEAD "\"event\":\"\"}", "bad event");
    expect_why(HEAD "\"event\":\"abcdefghijklmnopqrstuvwxyz0123456\"}", "bad event");
    expect_why(HEAD "\"event\":\"x\",\"outcome\":\"not ok\"}", "bad outcome");
    expect_why(FLOW("Auth.Atlassian.com", "ok"), "bad as");
    expect_why(FLOW("auth..atlassian.com", "ok"), "bad as");
    expect_why(FLOW("auth.atlassian.com:443", "ok"), "bad as");
    expect_why(FLOW("auth-.atlassian.com", "ok"), "bad as");
    /* a wildcard is "*." and a suffix of two labels or more, as written in the allow-list */
    expect_why(FLOW("*.com", "ok"), "bad as");
    expect_why(FLOW("*.", "ok"), "bad as");
    expect_why(FLOW("*", "ok"), "bad as");
    expect_why(FLOW("*okta.com", "ok"), "bad as");
    expect_why(FLOW("**.okta.com", "ok"), "bad as");
    expect_why(FLOW("*.*.okta.com", "ok"), "bad as");
    expect_why(FLOW("acme.*.okta.com", "ok"), "bad as");
    expect_why(FLOW("*.Okta.com", "ok"), "bad as");
    expect_why(FLOW("Unlisted", "ok"), "bad as");
    expect_why(HEAD "\"event\":\"callback\",\"as\":7}", "bad as");
    expect_why(HEAD "\"event\":\"x\",\"version\":1}", "bad version");
    expect_why(HEAD "\"event\":\"x\",\"msg\":7}", "bad msg");
    {
        char m[202];
        memset(m, 'm', 201);
        m[201] = '\0';
        snprintf(big, sizeof(big), HEAD "\"event\":\"x\",\"msg\":\"%s\"}", m);
        expect_why(big, "bad msg");
        /* 200 characters: long enough, but not one of the relay's texts (before the list, any text this long passed) */
        m[200] = '\0';
        snprintf(big, sizeof(big), HEAD "\"event\":\"x\",\"msg\":\"%s\"}", m);
        expect_why(big, "unknown msg");
        /* 200 characters, 400 bytes: the limit is in characters */
        memset(m, 0, sizeof(m));
        for (int i = 0; i < 100; i++)
            memcpy(m + 2 * i, "\xc3\xa9", 2);
        char wide[600];
        snprintf(wide, sizeof(wide), HEAD "\"event\":\"x\",\"msg\":\"%s%s\"}", m, m);
        expect_why(wide, "unknown msg");
        snprintf(wide, sizeof(wide), HEAD "\"event\":\"x\",\"msg\":\"%s%sm\"}", m, m);
        expect_why(wide, "bad msg");
    }
    expect_why("{" TS ",\"level\":\"info\"}", "missing ts, level or event");
    expect_why("{\"level\":\"info\",\"event\":\"x\"}", "missing ts, level or event");
    expect_why("{}", "missing ts, level or event");

    expect_why(HEAD "\"event\":{\"a\":1}}", "nested value");
    expect_why(HEAD "\"event\":\"x\",\"msg\":[\"a\"]}", "nested value");
    expect_why("hello", "not a JSON object");
    expect_why("{", "not a JSON object");
    expect_why("[1]", "not a JSON object");
    expect_why("\"x\"", "not a JSON object");
    expect_why(HEAD "\"event\":\"x\"} ", "not a JSON object");
    expect_why(HEAD "\"event\":\"x\"}{}", "not a JSON object");
    expect_why(HEAD "\"event\":\"x\",}", "not a JSON object");
    expect_why(HEAD "\"event\":'x'}", "not a JSON object");
    expect_why(MSG("caf\xc3"), "not a JSON object");
    expect_why(MSG("raw\ttab"), "not a JSON object");
    expect_why(MSG("raw\\\ttab"), "not a JSON object");
    expect_why(MSG("raw\x01"), "not a JSON object");
    expect_clean("{" TS ",\t\"level\":\"info\",\r\"event\":\"x\"}"); /* whitespace between members is fine */
    expect_why("", "empty line");
}

static char *report_of(const rly_audit_t *a);
static long long row(const char *text, const char *section, const char *words);
#define PER_AS "per AS, event and outcome:"
#define PER_EVENT "per event and outcome:"

/* a msg is one of the relay's fixed texts: any other is a violation, identifying or not */
static void test_unknown_msg(void **state)
{
    (void)state;
    /* what a request could carry: a user agent, a tenant's host, a URL without a path */
    expect_why(MSG(UA_SHORT), "unknown msg");
    expect_violation(MSG(UA_FULL));
    expect_why(MSG("acme.okta.com"), "unknown msg");
    expect_why(MSG("callback from acme.okta.com"), "unknown msg");
    expect_why(MSG("sso.acme.com"), "unknown msg");
    expect_why(MSG("see https://auth.atlassian.com for details"), "unknown msg");
    /* texts that passed when any text did */
    expect_why(MSG("authrelay 1.0.0 starting"), "unknown msg");
    expect_why(MSG("1.0.0"), "unknown msg");
    expect_why(MSG("version 1.2.3.4.5"), "unknown msg");
    expect_why(MSG("tab\\tand \\\"quotes\\\" and \\u0001"), "unknown msg");
    expect_why(MSG("time 05:38:48 of day"), "unknown msg");
    expect_why(MSG("a 20-digit number 12345678901234567890"), "unknown msg");
    expect_why(MSG("lowercase words only: abcdefghijklmnopqrstuvwxyz"), "unknown msg");
    expect_why(MSG("invalid"), "unknown msg"); /* what the emitter wrote for a refused msg before the list */
    expect_why(MSG(""), "unknown msg");
    /* near misses of listed texts */
    expect_why(MSG("listening "), "unknown msg");
    expect_why(MSG(" listening"), "unknown msg");
    expect_why(MSG("Listening"), "unknown msg");
    expect_why(MSG("listenin"), "unknown msg");
    expect_why(MSG("listening\\u0000"), "unknown msg");
    expect_why(MSG("listening\\n"), "unknown msg");
    expect_why(MSG("the Redis connection was lost: 10.0.0.7:6379"), "IPv4 address"); /* a pattern says more */
    /* on a flow event too */
    expect_why(HEAD "\"event\":\"callback\",\"as\":\"auth.atlassian.com\",\"outcome\":\"ok\",\"msg\":\"" UA_SHORT "\"}",
               "unknown msg");
}

/* every text the relay logs passes, in the lines the relay writes them in */
static void test_listed_texts(void **state)
{
    size_t n;
    const char *const *texts = rly_logmsg_list(&n);
    char line[512];
    (void)state;
    assert_true(n > 1);
    for (size_t i = 0; i != n; ++i) {
        snprintf(line, sizeof(line), HEAD "\"event\":\"start\",\"msg\":\"%s\",\"version\":\"" RLY_VERSION "\"}", texts[i]);
        expect_clean(line);
        snprintf(line, sizeof(line), "{" TS ",\"level\":\"warn\",\"event\":\"store_down\",\"msg\":\"%s\"}", texts[i]);
        expect_clean(line);
    }
}

/* --allow-as: as is then one of the relay's entries or "unlisted", never a tenant's host that a wildcard matched */
static void test_allow_as(void **state)
{
    rly_audit_t *a;
    const char *why;
    char *text;
    char long_entry[300];
    (void)state;

    /* without an allow-list the auditor cannot tell a tenant's host from an exact entry: both are AS identifiers */
    expect_clean(FLOW("acme.okta.com", "ok"));

    allow_as = ALLOW_AS;
    expect_clean(FLOW("auth.atlassian.com", "ok"));
    expect_clean(FLOW("*.okta.com", "ok"));
    expect_clean(FLOW("unlisted", "ok"));
    expect_clean(MSG("listening"));
    expect_why(FLOW("acme.okta.com", "ok"), "bad as");
    expect_why(FLOW("okta.com", "ok"), "bad as");
    expect_why(FLOW("*.atlassian.com", "ok"), "bad as");
    expect_why(FLOW("login.microsoftonline.com", "ok"), "bad as");
    expect_why(FLOW("*.my.salesforce.com", "ok"), "bad as");
    expect_why(FLOW("invalid", "ok"), "bad as");
    expect_why(FLOW("auth.atlassian.co", "ok"), "bad as");
    expect_why(FLOW("auth.atlassian.comm", "ok"), "bad as");
    expect_why(FLOW("203.0.113.7", "ok"), "IPv4 address");
    allow_as = "auth.atlassian.com";
    expect_why(FLOW("*.okta.com", "ok"), "bad as");
    allow_as = NULL;

    /* repeated or comma-separated alike; lower-cased as the relay's --allow-as; a repeated entry counts once */
    a = rly_audit_new();
    assert_non_null(a);
    assert_int_equal(rly_audit_allow_as(a, "Auth.Atlassian.COM", &why), 0);
    assert_null(why);
    assert_int_equal(rly_audit_allow_as(a, "*.OKTA.com,auth.atlassian.com", &why), 0);
    assert_int_equal(rly_audit_allow_as(a, "[2001:db8::1],203.0.113.7", &why), 0); /* entries, though never logged */
    assert_int_equal(rly_audit_line(a, FLOW("*.okta.com", "ok"), strlen(FLOW("*.okta.com", "ok")), &why), 0);
    assert_int_equal(rly_audit_line(a, FLOW("auth.atlassian.com", "ok"), strlen(FLOW("auth.atlassian.com", "ok")), &why), 0);
    assert_int_equal(rly_audit_line(a, FLOW("acme.okta.com", "ok"), strlen(FLOW("acme.okta.com", "ok")), &why), -1);
    assert_string_equal(why, "bad as");
    /* a refused as is counted, never named */
    text = report_of(a);
    assert_int_equal(row(text, PER_AS, "*.okta.com"), 1);
    assert_int_equal(row(text, PER_AS, "auth.atlassian.com"), 1);
    assert_int_equal(row(text, PER_AS, "(invalid)"), 1);
    assert_null(strstr(text, "acme"));
    free(text);

    /* what is not an entry is refused, and said why */
    static const char *const bad[] = {
        "",
        ",",
        "auth.atlassian.com,",
        ",auth.atlassian.com",
        "auth.atlassian.com,,*.okta.com",
        "*.com",
        "*.",
        "*",
        "okta.*",
        "acme.*.okta.com",
        "auth.atlassian.com:443",
        "https://auth.atlassian.com",
        "auth.atlassian.com/authorize",
        "auth atlassian com",
        "auth_atlassian.com",
        "-auth.atlassian.com",
        "[::1]:443",
    };
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        why = NULL;
        if (rly_audit_allow_as(a, bad[i], &why) != -1)
            fail_msg("rly_audit_allow_as accepts \"%s\"", bad[i]);
        assert_non_null(why);
    }
    assert_int_equal(rly_audit_allow_as(a, "", &why), -1);
    assert_string_equal(why, "empty entry");
    assert_int_equal(rly_audit_allow_as(a, "*.com", &why), -1);
    assert_non_null(strstr(why, "not an allow-list entry"));
    memset(long_entry, 'a', sizeof(long_entry) - 1);
    long_entry[sizeof(long_entry) - 1] = '\0';
    assert_int_equal(rly_audit_allow_as(a, long_entry, &why), -1);
    rly_audit_free(a);

    /* a hard maximum of entries */
    a = rly_audit_new();
    assert_non_null(a);
    for (int i = 0;; ++i) {
        char entry[32];
        snprintf(entry, sizeof(entry), "as%d.example.com", i);
        if (rly_audit_allow_as(a, entry, &why) != 0) {
            assert_string_equal(why, "too many entries");
            assert_true(i >= 64); /* the relay's own maximum fits */
            break;
        }
        assert_true(i < 100000);
    }
    rly_audit_free(a);
}

static void test_nul_and_length(void **state)
{
    static const char with_nul[] = HEAD "\"event\":\"x\"\0}";
    rly_audit_t *a = rly_audit_new();
    const char *why = NULL;
    size_t cap = 64 * 1024 + 2;
    char *huge = malloc(cap);
    (void)state;

    assert_int_equal(rly_audit_line(a, with_nul, sizeof(with_nul) - 1, &why), -1);
    assert_string_equal(why, "not a JSON object");

    /* a clean line of exactly 64 KiB passes, one byte more does not */
    assert_non_null(huge);
    memset(huge, ' ', cap);
    memcpy(huge, HEAD "\"event\":\"x\"", strlen(HEAD "\"event\":\"x\""));
    huge[64 * 1024 - 1] = '}';
    assert_int_equal(rly_audit_line(a, huge, 64 * 1024, &why), 0);
    huge[64 * 1024 - 1] = ' ';
    huge[64 * 1024] = '}';
    assert_int_equal(rly_audit_line(a, huge, 64 * 1024 + 1, &why), -1);
    assert_string_equal(why, "line too long");
    free(huge);
    rly_audit_free(a);
}

static char *report_of(const rly_audit_t *a)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    assert_non_null(out);
    rly_audit_report(a, out);
    fclose(out);
    return text;
}

/* the count on the row whose words are `words` (single spaces) in the text from `section` on; -1 when none */
static long long row(const char *text, const char *section, const char *words)
{
    const char *p = strstr(text, section);
    char norm[512];
    if (p == NULL)
        return -1;
    while ((p = strchr(p, '\n')) != NULL && *++p != '\0' && *p != '\n') {
        size_t n = 0;
        const char *end = strchr(p, '\n');
        for (const char *c = p; c < end && n + 1 < sizeof(norm); c++) {
            if (*c != ' ')
                norm[n++] = *c;
            else if (n > 0 && norm[n - 1] != ' ')
                norm[n++] = ' ';
        }
        norm[n] = '\0';
        size_t wl = strlen(words);
        if (strncmp(norm, words, wl) == 0 && norm[wl] == ' ')
            return strtoll(norm + wl + 1, NULL, 10);
    }
    return -1;
}

static void test_totals(void **state)
{
    static const char *const lines[] = {
        FLOW("auth.atlassian.com", "ok"),
        FLOW("auth.atlassian.com", "ok"),
        FLOW("auth.atlassian.com", "state_invalid"),
        FLOW("login.microsoftonline.com", "ok"),
        FLOW("*.okta.com", "ok"),
        HEAD "\"event\":\"start\",\"msg\":\"listening\",\"version\":\"1.0.0\"}",
        FLOW("203.0.113.7", "ok"), /* a violation: counted, but never under its address */
        "not json 198.51.100.4",   /* a violation, in no total */
    };
    rly_audit_t *a = rly_audit_new();
    const char *why;
    char *text;
    (void)state;

    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        rly_audit_line(a, lines[i], strlen(lines[i]), &why);
    text = report_of(a);
    assert_memory_equal(text, "lines: 8, violations: 2\n", strlen("lines: 8, violations: 2\n"));
    assert_int_equal(row(text, PER_AS, "auth.atlassian.com"), 3);
    assert_int_equal(row(text, "auth.atlassian.com", "callback ok"), 2);
    assert_int_equal(row(text, "auth.atlassian.com", "callback state_invalid"), 1);
    assert_int_equal(row(text, PER_AS, "login.microsoftonline.com"), 1);
    assert_int_equal(row(text, PER_AS, "*.okta.com"), 1);
    assert_int_equal(row(text, PER_AS, "-"), 1);
    assert_int_equal(row(text, PER_AS, "(invalid)"), 1);
    assert_int_equal(row(text, PER_EVENT, "callback ok"), 5);
    assert_int_equal(row(text, PER_EVENT, "callback state_invalid"), 1);
    assert_int_equal(row(text, PER_EVENT, "start -"), 1);
    assert_int_equal(row(text, PER_AS, "(other)"), -1);
    assert_null(strstr(text, "203.0.113.7"));
    assert_null(strstr(text, "198.51.100.4"));
    free(text);
    rly_audit_free(a);
}

static void test_totals_cap(void **state)
{
    rly_audit_t *a = rly_audit_new();
    char line[256];
    const char *why;
    char *text;
    (void)state;

    for (int i = 0; i < 4100; i++) {
        int n = snprintf(line, sizeof(line), HEAD "\"event\":\"e%d\",\"outcome\":\"ok\"}", i);
        assert_int_equal(rly_audit_line(a, line, (size_t)n, &why), 0);
    }
    rly_audit_line(a, FLOW("auth.atlassian.com", "ok"), strlen(FLOW("auth.atlassian.com", "ok")), &why);
    rly_audit_line(a, HEAD "\"event\":\"e7\",\"outcome\":\"ok\"}", strlen(HEAD "\"event\":\"e7\",\"outcome\":\"ok\"}"), &why);
    text = report_of(a);
    assert_memory_equal(text, "lines: 4102, violations: 0\n", strlen("lines: 4102, violations: 0\n"));
    assert_int_equal(row(text, PER_AS, "-"), 4097); /* 4096 distinct keys, e7 twice */
    assert_int_equal(row(text, PER_AS, "(other)"), 5);
    assert_int_equal(row(text, PER_EVENT, "(other)"), 5);
    assert_int_equal(row(text, PER_EVENT, "e7 ok"), 2);
    assert_int_equal(row(text, PER_EVENT, "e4095 ok"), 1);
    assert_int_equal(row(text, PER_EVENT, "e4096 ok"), -1);
    free(text);
    rly_audit_free(a);
}

/* runs the audit command on text, with the allow-list allow (NULL: none); returns its exit value and its output in *out
 * (the caller frees) */
static int run_with(const char *allow, const char *text, size_t len, char **out)
{
    rly_audit_t *a = rly_audit_new();
    FILE *in = tmpfile(), *o;
    const char *why;
    size_t size = 0;
    int ret;
    assert_non_null(a);
    if (allow != NULL)
        assert_int_equal(rly_audit_allow_as(a, allow, &why), 0);
    assert_non_null(in);
    assert_int_equal(fwrite(text, 1, len, in), len);
    rewind(in);
    o = open_memstream(out, &size);
    assert_non_null(o);
    ret = rly_audit_run(a, in, o);
    fclose(o);
    fclose(in);
    rly_audit_free(a);
    return ret;
}

static int run_on(const char *text, size_t len, char **out)
{
    return run_with(NULL, text, len, out);
}

static void test_run_clean(void **state)
{
    const char *log = FLOW("auth.atlassian.com", "ok") "\n" FLOW("auth.atlassian.com", "ok") "\n" MSG("listening") "\n";
    char *out;
    (void)state;

    assert_int_equal(run_on(log, strlen(log), &out), 0);
    assert_memory_equal(out, "lines: 3, violations: 0\n", strlen("lines: 3, violations: 0\n"));
    assert_int_equal(row(out, PER_AS, "auth.atlassian.com"), 2);
    assert_int_equal(row(out, PER_EVENT, "start -"), 1);
    free(out);

    /* no final newline; an empty last line is no line */
    assert_int_equal(run_on(log, strlen(log) - 1, &out), 0);
    assert_non_null(strstr(out, "lines: 3, violations: 0\n"));
    free(out);
    {
        char with_blank[1024];
        int n = snprintf(with_blank, sizeof(with_blank), "%s\n", log);
        assert_int_equal(run_on(with_blank, (size_t)n, &out), 0);
        assert_non_null(strstr(out, "lines: 3, violations: 0\n"));
        free(out);
    }
    assert_int_equal(run_on("", 0, &out), 0);
    assert_string_equal(out, "lines: 0, violations: 0\n");
    free(out);
}

static void test_run_violations(void **state)
{
    const char *log = FLOW("auth.atlassian.com", "ok") "\n"                  /* 1 */
        MSG("client 203.0.113.7") "\n"                                       /* 2 */
                                  "\n"                                       /* 3: empty, not last */
        HEAD "\"event\":\"callback\",\"ip\":\"198.51.100.4\"}\n"             /* 4 */
        MSG("poll " POLL_TOKEN) "\n"                                         /* 5 */
                                "GET /v1/sessions/" SESSION_ID " HTTP/1.1\n" /* 6 */
        FLOW("auth.atlassian.com", "ok");                                    /* 7, no newline */
    char *out;
    (void)state;

    assert_int_equal(run_on(log, strlen(log), &out), 1);
    assert_non_null(strstr(out, "line 2: IPv4 address\n"));
    assert_non_null(strstr(out, "line 3: empty line\n"));
    assert_non_null(strstr(out, "line 4: unknown key\n"));
    assert_non_null(strstr(out, "line 5: long random token\n"));
    assert_non_null(strstr(out, "line 6: not a JSON object\n"));
    assert_null(strstr(out, "line 1:"));
    assert_null(strstr(out, "line 7:"));
    assert_non_null(strstr(out, "lines: 7, violations: 5\n"));
    assert_int_equal(row(out, PER_AS, "auth.atlassian.com"), 2);
    /* the offending text is never repeated */
    assert_null(strstr(out, "203.0.113.7"));
    assert_null(strstr(out, "198.51.100.4"));
    assert_null(strstr(out, POLL_TOKEN));
    assert_null(strstr(out, SESSION_ID));
    assert_null(strstr(out, "/v1/"));
    free(out);
}

#define LIFE(level, event, msg) "{" TS ",\"level\":\"" level "\",\"event\":\"" event "\",\"msg\":\"" msg "\"}"
#define AS_LINE(event, as, outcome) HEAD "\"event\":\"" event "\",\"as\":\"" as "\",\"outcome\":\"" outcome "\",\"ms\":3}"

/* the relay's own lines, as the suites' relays write them: clean, with and without the allow-list */
static const char *const relay_lines[] = {
    HEAD "\"event\":\"start\",\"msg\":\"listening\",\"version\":\"" RLY_VERSION "\"}",
    HEAD "\"event\":\"start\",\"msg\":\"listening (development mode)\",\"version\":\"" RLY_VERSION "\"}",
    LIFE("warn", "http2_guard", "HTTP/2 reset guard not installed: libh2o layout differs"),
    AS_LINE("session_create", "auth.atlassian.com", "ok"),
    AS_LINE("callback", "auth.atlassian.com", "ok"),
    AS_LINE("pickup", "auth.atlassian.com", "delivered"),
    AS_LINE("session_create", "*.okta.com", "ok"),
    AS_LINE("callback", "*.okta.com", "ok"),
    AS_LINE("session_create", "unlisted", "ok"),
    "{" TS ",\"level\":\"info\",\"event\":\"session_create\",\"outcome\":\"as_not_allowed\",\"ms\":1}",
    LIFE("warn", "store_down", "the Redis connection was lost"),
    LIFE("warn", "store_down", "a Redis command timed out"),
    LIFE("warn", "store_down", "a Redis subscription timed out"),
    LIFE("warn", "store_down", "the Redis server is not a writable primary"),
    "{" TS ",\"level\":\"warn\",\"event\":\"pickup\",\"as\":\"*.okta.com\",\"outcome\":\"store_down\",\"ms\":0}",
    LIFE("info", "store_up", "Redis reconnected"),
    LIFE("info", "store_up", "Redis subscriber reconnected"),
    LIFE("info", "reload", "reloaded keys and certificate"),
    LIFE("warn", "reload", "reload failed: kept the previous keys or certificate (details on stderr)"),
    LIFE("info", "reload", "nothing to reload (ephemeral keys and certificate)"),
    LIFE("info", "shutdown", "draining"),
    LIFE("warn", "shutdown", "grace period over with requests in flight"),
    LIFE("info", "stop", "stopped"),
};

/* lines, each ending in '\n', in one text (the caller frees) */
static char *join_lines(const char *const *lines, size_t n)
{
    char *text = NULL;
    size_t size = 0;
    FILE *o = open_memstream(&text, &size);
    assert_non_null(o);
    for (size_t i = 0; i != n; ++i)
        fprintf(o, "%s\n", lines[i]);
    fclose(o);
    return text;
}

static void test_run_relay_log(void **state)
{
    char *log = join_lines(relay_lines, sizeof(relay_lines) / sizeof(relay_lines[0]));
    char *out;
    (void)state;
    assert_int_equal(sizeof(relay_lines) / sizeof(relay_lines[0]), 23);
    assert_int_equal(run_on(log, strlen(log), &out), 0);
    assert_memory_equal(out, "lines: 23, violations: 0\n", strlen("lines: 23, violations: 0\n"));
    free(out);
    assert_int_equal(run_with(ALLOW_AS, log, strlen(log), &out), 0);
    assert_memory_equal(out, "lines: 23, violations: 0\n", strlen("lines: 23, violations: 0\n"));
    assert_int_equal(row(out, PER_AS, "auth.atlassian.com"), 3);
    assert_int_equal(row(out, PER_AS, "*.okta.com"), 3);
    assert_int_equal(row(out, PER_AS, "unlisted"), 1);
    assert_int_equal(row(out, PER_EVENT, "store_down -"), 4);
    free(out);
    free(log);
}

/* what must be flagged: a user agent and a host in msg, a tenant's host in as; never repeated in the output */
static void test_run_identifying(void **state)
{
    static const char *const lines[] = {
        AS_LINE("callback", "*.okta.com", "ok"),         /* 1 */
        LIFE("info", "start", UA_SHORT),                 /* 2 */
        LIFE("info", "start", UA_FULL),                  /* 3 */
        LIFE("warn", "store_down", "acme.okta.com"),     /* 4 */
        AS_LINE("callback", "acme.okta.com", "ok"),      /* 5 */
        AS_LINE("callback", "auth.atlassian.com", "ok"), /* 6 */
        LIFE("info", "start", "listening"),              /* 7 */
    };
    char *log = join_lines(lines, sizeof(lines) / sizeof(lines[0]));
    char *out;
    (void)state;

    assert_int_equal(run_with("auth.atlassian.com", log, strlen(log), &out), 1);
    assert_non_null(strstr(out, "line 1: bad as\n")); /* a wildcard not on this allow-list */
    assert_non_null(strstr(out, "lines: 7, violations: 5\n"));
    free(out);
    assert_int_equal(run_with("*.okta.com,auth.atlassian.com", log, strlen(log), &out), 1);
    assert_non_null(strstr(out, "line 2: unknown msg\n"));
    assert_non_null(strstr(out, "line 3: "));
    assert_non_null(strstr(out, "line 4: unknown msg\n"));
    assert_non_null(strstr(out, "line 5: bad as\n"));
    assert_null(strstr(out, "line 1:"));
    assert_null(strstr(out, "line 6:"));
    assert_null(strstr(out, "line 7:"));
    assert_non_null(strstr(out, "lines: 7, violations: 4\n"));
    assert_int_equal(row(out, PER_AS, "*.okta.com"), 1);
    assert_int_equal(row(out, PER_AS, "(invalid)"), 1);
    assert_null(strstr(out, "acme"));
    assert_null(strstr(out, "Mozilla"));
    free(out);
    /* without the allow-list, the tenant's host in as looks like an exact entry: only the msg lines are flagged */
    assert_int_equal(run_on(log, strlen(log), &out), 1);
    assert_null(strstr(out, "line 5:"));
    assert_non_null(strstr(out, "lines: 7, violations: 3\n"));
    free(out);
    free(log);
}

static void test_run_long_line(void **state)
{
    size_t big = 70 * 1024;
    char *log = malloc(big + 512);
    const char *good = FLOW("auth.atlassian.com", "ok");
    size_t n = 0;
    char *out;
    (void)state;

    assert_non_null(log);
    memcpy(log + n, good, strlen(good));
    n += strlen(good);
    log[n++] = '\n';
    memset(log + n, 'A', big);
    n += big;
    log[n++] = '\n';
    memcpy(log + n, good, strlen(good));
    n += strlen(good);
    log[n++] = '\n';
    assert_int_equal(run_on(log, n, &out), 1);
    assert_non_null(strstr(out, "line 2: line too long\n"));
    assert_null(strstr(out, "line 3:"));
    assert_non_null(strstr(out, "lines: 3, violations: 1\n"));
    assert_int_equal(row(out, PER_AS, "auth.atlassian.com"), 2);
    assert_null(strstr(out, "AAAA"));
    free(out);
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean),         cmocka_unit_test(test_addresses),       cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_schema),        cmocka_unit_test(test_unknown_msg),     cmocka_unit_test(test_listed_texts),
        cmocka_unit_test(test_allow_as),      cmocka_unit_test(test_nul_and_length),  cmocka_unit_test(test_totals),
        cmocka_unit_test(test_totals_cap),    cmocka_unit_test(test_run_clean),       cmocka_unit_test(test_run_violations),
        cmocka_unit_test(test_run_relay_log), cmocka_unit_test(test_run_identifying), cmocka_unit_test(test_run_long_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
