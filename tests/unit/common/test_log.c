/* test_log.c: the log emitter: exact lines, value rules, fixed msg texts, level filter, and lines the auditor accepts */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "rly.h"
#include "log.h"
#include "logmsg.h"
#include "audit.h"

#define TS_MS 1795930728123LL /* 2026-11-29T05:38:48.123Z */
#define TS "{\"ts\":\"2026-11-29T05:38:48.123Z\""

static char line[4096];

static const char *fmt(rly_log_level_t level, const char *event, const char *as, const char *outcome, long ms, const char *msg,
                       int with_version)
{
    int n = rly_log_format(line, sizeof(line), level, event, as, outcome, ms, msg, with_version, TS_MS);
    assert_true(n > 0 && (size_t)n < sizeof(line));
    assert_int_equal(line[n - 1], '\n');
    line[n] = '\0';
    return line;
}

/* the line without its '\n', checked by a fresh auditor */
static const char *audit_why(const char *text)
{
    rly_audit_t *a = rly_audit_new();
    const char *why = NULL;
    size_t len = strlen(text);
    assert_non_null(a);
    if (len > 0 && text[len - 1] == '\n')
        len--;
    rly_audit_line(a, text, len, &why);
    rly_audit_free(a);
    return why;
}

static void test_level_names(void **state)
{
    rly_log_level_t level = RLY_LOG_ERROR;
    (void)state;
    assert_int_equal(rly_log_level_parse("debug", &level), 0);
    assert_int_equal(level, RLY_LOG_DEBUG);
    assert_int_equal(rly_log_level_parse("info", &level), 0);
    assert_int_equal(level, RLY_LOG_INFO);
    assert_int_equal(rly_log_level_parse("warn", &level), 0);
    assert_int_equal(level, RLY_LOG_WARN);
    assert_int_equal(rly_log_level_parse("error", &level), 0);
    assert_int_equal(level, RLY_LOG_ERROR);
    assert_int_equal(rly_log_level_parse("INFO", &level), -1);
    assert_int_equal(rly_log_level_parse("warning", &level), -1);
    assert_int_equal(rly_log_level_parse("", &level), -1);
    assert_int_equal(rly_log_level_parse(NULL, &level), -1);
    assert_int_equal(level, RLY_LOG_ERROR);
    assert_string_equal(rly_log_level_name(RLY_LOG_DEBUG), "debug");
    assert_string_equal(rly_log_level_name(RLY_LOG_WARN), "warn");
    assert_null(rly_log_level_name((rly_log_level_t)42));
}

static void test_format_flow(void **state)
{
    (void)state;
    assert_string_equal(fmt(RLY_LOG_INFO, "callback", "auth.atlassian.com", "ok", 12, NULL, 0), TS
                        ",\"level\":\"info\",\"event\":\"callback\",\"as\":\"auth.atlassian.com\",\"outcome\":\"ok\",\"ms\":12}\n");
    assert_string_equal(
        fmt(RLY_LOG_WARN, "pickup", "auth.atlassian.com", "store_down", 0, NULL, 0),
        TS ",\"level\":\"warn\",\"event\":\"pickup\",\"as\":\"auth.atlassian.com\",\"outcome\":\"store_down\",\"ms\":0}\n");
    /* as NULL: no key; ms < 0: no key */
    assert_string_equal(fmt(RLY_LOG_ERROR, "callback", NULL, "bad_state", -1, NULL, 0),
                        TS ",\"level\":\"error\",\"event\":\"callback\",\"outcome\":\"bad_state\"}\n");
    assert_string_equal(fmt(RLY_LOG_DEBUG, "session_create", "login.microsoftonline.com", "ok", 1234567, NULL, 0),
                        TS ",\"level\":\"debug\",\"event\":\"session_create\",\"as\":\"login.microsoftonline.com\","
                           "\"outcome\":\"ok\",\"ms\":1234567}\n");
}

static void test_format_lifecycle(void **state)
{
    (void)state;
    assert_string_equal(fmt(RLY_LOG_INFO, "start", NULL, NULL, -1, "listening", 1),
                        TS ",\"level\":\"info\",\"event\":\"start\",\"msg\":\"listening\",\"version\":\"" RLY_VERSION "\"}\n");
    assert_string_equal(fmt(RLY_LOG_INFO, "stop", NULL, NULL, -1, "stopped", 0),
                        TS ",\"level\":\"info\",\"event\":\"stop\",\"msg\":\"stopped\"}\n");
    assert_string_equal(fmt(RLY_LOG_WARN, "store", NULL, NULL, -1, NULL, 0), TS ",\"level\":\"warn\",\"event\":\"store\"}\n");
}

static void test_format_ts(void **state)
{
    static const struct {
        long long unix_ms;
        const char *ts;
    } cases[] = {
        {0, "1970-01-01T00:00:00.000Z"},
        {5, "1970-01-01T00:00:00.005Z"},
        {-1, "1970-01-01T00:00:00.000Z"},
        {951782400999LL, "2000-02-29T00:00:00.999Z"},
        {TS_MS, "2026-11-29T05:38:48.123Z"},
        {253402300799999LL, "9999-12-31T23:59:59.999Z"},
        {1000LL * 86400 * 365 * 20000, "9999-12-31T23:59:59.999Z"},
    };
    char expect[128];
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int n = snprintf(expect, sizeof(expect), "{\"ts\":\"%s\",\"level\":\"info\",\"event\":\"e\"}\n", cases[i].ts);
        assert_int_equal(rly_log_format(line, sizeof(line), RLY_LOG_INFO, "e", NULL, NULL, -1, NULL, 0, cases[i].unix_ms), n);
        line[n] = '\0';
        assert_string_equal(line, expect);
        assert_null(audit_why(line));
    }
    /* an unknown level is written as error (never dropped, never an invalid level) */
    assert_string_equal(fmt((rly_log_level_t)9, "e", NULL, NULL, -1, NULL, 0), TS ",\"level\":\"error\",\"event\":\"e\"}\n");
}

static void test_invalid_values(void **state)
{
    static const char *const bad_idents[] = {
        "Callback",
        "call back",
        "",
        "callback!",
        "call-back",
        "a.b",
        "abcdefghijklmnopqrstuvwxyz0123456", /* 33 */
        "0123456789abcdef0123",              /* a hex token */
        "\"},\"ip\":\"1.2.3.4",
    };
    static const char *const bad_hosts[] = {
        "",
        "Auth.Atlassian.com",
        "auth..atlassian.com",
        ".auth.atlassian.com",
        "auth.atlassian.com.",
        "auth.atlassian.com:443",
        "auth.atlassian.com/authorize",
        "[::1]",
        "[2001:db8::1]",
        "127.0.0.1",
        "203.0.113.7",
        "127.0.0.1.nip.io",
        "x-10.0.0.1.example",
        "a_b.example",
        "jane@example.com",
        "0123456789abcdef0123456789abcdef.example",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example", /* a 64-byte label */
        "*.com",                                                                    /* a wildcard over one label */
        "*.",
        "*okta.com",
        "acme.*.okta.com",
        "*.*.okta.com",
        "Unlisted",
    };
    char long_host[300];
    (void)state;

    for (size_t i = 0; i < sizeof(bad_idents) / sizeof(bad_idents[0]); i++) {
        assert_string_equal(fmt(RLY_LOG_INFO, bad_idents[i], NULL, bad_idents[i], -1, NULL, 0),
                            TS ",\"level\":\"info\",\"event\":\"invalid\",\"outcome\":\"invalid\"}\n");
    }
    for (size_t i = 0; i < sizeof(bad_hosts) / sizeof(bad_hosts[0]); i++) {
        assert_string_equal(fmt(RLY_LOG_INFO, "callback", bad_hosts[i], "ok", 3, NULL, 0),
                            TS ",\"level\":\"info\",\"event\":\"callback\",\"as\":\"invalid\",\"outcome\":\"ok\",\"ms\":3}\n");
    }
    assert_string_equal(fmt(RLY_LOG_INFO, NULL, NULL, NULL, -1, NULL, 0), TS ",\"level\":\"info\",\"event\":\"invalid\"}\n");

    /* 253 bytes is the longest host, 254 is one too many */
    memset(long_host, 'a', sizeof(long_host));
    for (size_t i = 63; i < 253; i += 64)
        long_host[i] = '.';
    long_host[253] = '\0';
    fmt(RLY_LOG_INFO, "callback", long_host, "ok", -1, NULL, 0);
    assert_non_null(strstr(line, long_host));
    /* a wildcard over the longest host: 255 bytes */
    {
        char wild[RLY_AS_ID_MAX + 1];
        memcpy(wild, "*.", 2);
        memcpy(wild + 2, long_host, 254); /* 253 bytes and the NUL */
        assert_int_equal(strlen(wild), RLY_AS_ID_MAX);
        assert_non_null(strstr(fmt(RLY_LOG_INFO, "callback", wild, "ok", -1, NULL, 0), wild));
        assert_null(audit_why(line));
    }
    long_host[253] = 'a';
    long_host[254] = '\0';
    assert_null(strstr(fmt(RLY_LOG_INFO, "callback", long_host, "ok", -1, NULL, 0), "aaaa"));

    /* 32 bytes is the longest identifier */
    assert_non_null(strstr(fmt(RLY_LOG_INFO, "abcdefghijklmnopqrstuvwxyz_01234", NULL, NULL, -1, NULL, 0),
                           "\"event\":\"abcdefghijklmnopqrstuvwxyz_01234\""));
}

static void test_good_hosts(void **state)
{
    static const char *const hosts[] = {
        "auth.atlassian.com",
        "login.microsoftonline.com",
        "accounts.google.com",
        "localhost",
        "dev-7o4b1cm2ozjkacl6.us.auth0.com",
        "cognito-idp.us-east-1.amazonaws.com",
        "1.2.3.4.5.example", /* a dotted number of five groups is not an address */
        "xn--bcher-kva.example",
        "*.okta.com", /* AS identifiers: wildcard entries as written, and a relay without an allow-list */
        "*.my.salesforce.com",
        "unlisted",
    };
    char expect[512];
    (void)state;
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        snprintf(expect, sizeof(expect), "\"as\":\"%s\"", hosts[i]);
        assert_non_null(strstr(fmt(RLY_LOG_INFO, "callback", hosts[i], "ok", 1, NULL, 0), expect));
        assert_null(audit_why(line));
    }
}

/* every text on the list is written as it is, and the auditor accepts it */
static void test_listed_msgs(void **state)
{
    size_t n;
    const char *const *texts = rly_logmsg_list(&n);
    char expect[512];
    (void)state;
    for (size_t i = 0; i != n; ++i) {
        snprintf(expect, sizeof(expect), TS ",\"level\":\"warn\",\"event\":\"store_down\",\"msg\":\"%s\"}\n", texts[i]);
        assert_string_equal(fmt(RLY_LOG_WARN, "store_down", NULL, NULL, -1, texts[i], 0), expect);
        assert_null(audit_why(line));
        /* the same text from another buffer: it is the words that count, not where they are */
        char copy[RLY_LOGMSG_MAX + 1];
        snprintf(copy, sizeof(copy), "%s", texts[i]);
        assert_string_equal(fmt(RLY_LOG_WARN, "store_down", NULL, NULL, -1, copy, 0), expect);
    }
}

/* a text that is not on the list is never written: the placeholder (on the list) stands for it */
static void test_unlisted_msg(void **state)
{
    static const char *const unlisted[] = {
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        "Mozilla/5.0 (X11; Linux x86_64) ...",
        "acme.okta.com",
        "callback from acme.okta.com",
        "client 203.0.113.7",
        "jane.doe@example.com",
        "shutting down",
        "fatal error",
        "invalid",
        "",
        "listening ",
        "Listening",
        "listenin",
        "the Redis connection was lost: 10.0.0.7:6379",
        "a\"b\\c\nd\re\tf\x01g\x1fh\x7fi/j", /* controls and quotes: nothing to escape any more */
        "x\",\"ip\":\"y",                    /* a msg that tries to close the string and add a key */
        "caf\xc3\xa9",                       /* not ASCII */
        "bad \xff byte",
        "(not a fixed text: withheld) ",
    };
    const char *expect = TS ",\"level\":\"info\",\"event\":\"start\",\"msg\":\"" RLY_LOGMSG_WITHHELD "\"}\n";
    char msg[4096];
    (void)state;

    assert_non_null(rly_logmsg_find(RLY_LOGMSG_WITHHELD, strlen(RLY_LOGMSG_WITHHELD)));
    for (size_t i = 0; i != sizeof(unlisted) / sizeof(unlisted[0]); ++i) {
        assert_string_equal(fmt(RLY_LOG_INFO, "start", NULL, NULL, -1, unlisted[i], 0), expect);
        assert_null(audit_why(line));
    }
    /* long texts: 200 bytes (the longest a listed text may be), 201, and far more */
    memset(msg, 'm', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    assert_string_equal(fmt(RLY_LOG_INFO, "start", NULL, NULL, -1, msg, 0), expect);
    msg[RLY_LOGMSG_MAX + 1] = '\0';
    assert_string_equal(fmt(RLY_LOG_INFO, "start", NULL, NULL, -1, msg, 0), expect);
    msg[RLY_LOGMSG_MAX] = '\0';
    assert_string_equal(fmt(RLY_LOG_INFO, "start", NULL, NULL, -1, msg, 0), expect);
    /* a listed text followed by more: not the listed text */
    snprintf(msg, sizeof(msg), "listening%s", " on 203.0.113.7:443");
    assert_string_equal(fmt(RLY_LOG_INFO, "start", NULL, NULL, -1, msg, 0), expect);
    /* with the version, on a flow line too */
    assert_string_equal(fmt(RLY_LOG_INFO, "start", NULL, NULL, -1, "acme.okta.com", 1),
                        TS ",\"level\":\"info\",\"event\":\"start\",\"msg\":\"" RLY_LOGMSG_WITHHELD "\",\"version\":\"" RLY_VERSION
                           "\"}\n");
    assert_null(audit_why(line));
    assert_string_equal(fmt(RLY_LOG_INFO, "callback", "*.okta.com", "ok", 5, "acme.okta.com", 0),
                        TS ",\"level\":\"info\",\"event\":\"callback\",\"as\":\"*.okta.com\",\"outcome\":\"ok\",\"ms\":5,"
                           "\"msg\":\"" RLY_LOGMSG_WITHHELD "\"}\n");
    assert_null(audit_why(line));
}

static void test_buffer_too_small(void **state)
{
    const char *expect = TS ",\"level\":\"info\",\"event\":\"e\"}\n";
    char small[128];
    size_t n = strlen(expect);
    (void)state;
    assert_int_equal(rly_log_format(small, 0, RLY_LOG_INFO, "e", NULL, NULL, -1, NULL, 0, TS_MS), -1);
    assert_int_equal(rly_log_format(small, 10, RLY_LOG_INFO, "e", NULL, NULL, -1, NULL, 0, TS_MS), -1);
    assert_int_equal(rly_log_format(small, n - 1, RLY_LOG_INFO, "e", NULL, NULL, -1, NULL, 0, TS_MS), -1);
    /* no NUL is written: n bytes are enough for the line */
    memset(small, '#', sizeof(small));
    assert_int_equal(rly_log_format(small, n, RLY_LOG_INFO, "e", NULL, NULL, -1, NULL, 0, TS_MS), (int)n);
    assert_memory_equal(small, expect, n);
    assert_int_equal(small[n], '#');
}

/* reads what is in the pipe now */
static size_t drain(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    ssize_t r;
    while (len < cap - 1 && (r = read(fd, buf + len, cap - 1 - len)) > 0)
        len += (size_t)r;
    buf[len] = '\0';
    return len;
}

static int pipe_nonblocking(int fds[2])
{
    if (pipe(fds) != 0)
        return -1;
    return fcntl(fds[0], F_SETFL, O_NONBLOCK);
}

/* checks one emitted line: a ts, then the rest exactly; returns the next line */
static const char *expect_line(const char *p, const char *rest)
{
    const char *nl = strchr(p, '\n');
    assert_non_null(nl);
    assert_memory_equal(p, "{\"ts\":\"", 7);
    assert_true(strlen(p) > 7 + 25);
    assert_int_equal(p[7 + 24], '"');
    assert_int_equal(p[7 + 23], 'Z');
    assert_int_equal(p[7 + 10], 'T');
    assert_memory_equal(p + 7 + 25, rest, strlen(rest));
    assert_ptr_equal(p + 7 + 25 + strlen(rest) - 1, nl);
    {
        rly_audit_t *a = rly_audit_new();
        const char *why = NULL;
        assert_int_equal(rly_audit_line(a, p, (size_t)(nl - p), &why), 0);
        rly_audit_free(a);
    }
    return nl + 1;
}

static void test_level_filter(void **state)
{
    int fds[2];
    char out[8192];
    const char *p;
    (void)state;

    assert_int_equal(pipe_nonblocking(fds), 0);
    rly_log_init(RLY_LOG_WARN, fds[1]);
    rly_log_event(RLY_LOG_DEBUG, "callback", "auth.atlassian.com", "ok", 1);
    rly_log_event(RLY_LOG_INFO, "callback", "auth.atlassian.com", "ok", 2);
    rly_log_msg(RLY_LOG_INFO, "start", "listening", 1);
    errno = ENOENT;
    rly_log_event(RLY_LOG_WARN, "callback", "auth.atlassian.com", "store_down", 3);
    assert_int_equal(errno, ENOENT); /* the emitter keeps the caller's errno */
    rly_log_msg(RLY_LOG_ERROR, "stop", "stopped", 1);
    rly_log_event(RLY_LOG_ERROR, "pickup", NULL, NULL, -1);

    drain(fds[0], out, sizeof(out));
    p = expect_line(out, ",\"level\":\"warn\",\"event\":\"callback\",\"as\":\"auth.atlassian.com\",\"outcome\":\"store_down\","
                         "\"ms\":3}\n");
    p = expect_line(p, ",\"level\":\"error\",\"event\":\"stop\",\"msg\":\"stopped\",\"version\":\"" RLY_VERSION "\"}\n");
    /* a flow event without an outcome says so */
    p = expect_line(p, ",\"level\":\"error\",\"event\":\"pickup\",\"outcome\":\"invalid\"}\n");
    assert_string_equal(p, "");

    rly_log_init(RLY_LOG_DEBUG, fds[1]);
    rly_log_event(RLY_LOG_DEBUG, "callback", "auth.atlassian.com", "ok", 1);
    drain(fds[0], out, sizeof(out));
    expect_line(out, ",\"level\":\"debug\",\"event\":\"callback\",\"as\":\"auth.atlassian.com\",\"outcome\":\"ok\",\"ms\":1}\n");

    rly_log_init(RLY_LOG_ERROR, fds[1]);
    rly_log_event(RLY_LOG_WARN, "callback", "auth.atlassian.com", "ok", 1);
    assert_int_equal(drain(fds[0], out, sizeof(out)), 0);

    rly_log_init(RLY_LOG_INFO, 1);
    close(fds[0]);
    close(fds[1]);
}

/* every line in out passes the auditor; returns how many there are */
static int audited_lines(rly_audit_t *a, const char *out)
{
    int lines = 0;
    for (const char *p = out, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
        const char *why = NULL;
        assert_int_equal(rly_audit_line(a, p, (size_t)(nl - p), &why), 0);
        lines++;
    }
    return lines;
}

#define THREADS 4
#define LINES_PER_THREAD 100

static void *log_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < LINES_PER_THREAD; i++)
        rly_log_event(RLY_LOG_INFO, "callback", "auth.atlassian.com", "ok", i);
    return NULL;
}

/* THREADS threads of fn log into the pipe rfd reads (the log's fd now); every line they wrote is there, whole */
static void expect_threads_lines(void *(*fn)(void *), int rfd, rly_audit_t *a)
{
    static char out[THREADS * LINES_PER_THREAD * 160];
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, fn, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    rly_log_init(RLY_LOG_INFO, 1);
    drain(rfd, out, sizeof(out));
    assert_int_equal(audited_lines(a, out), THREADS * LINES_PER_THREAD);
}

/* lines from many threads never interleave: each one is a single write(2) */
static void test_threads(void **state)
{
    rly_audit_t *a = rly_audit_new();
    int fds[2];
    (void)state;

    assert_int_equal(pipe_nonblocking(fds), 0);
    rly_log_init(RLY_LOG_INFO, fds[1]);
    expect_threads_lines(log_many, fds[0], a);
    rly_audit_free(a);
    close(fds[0]);
    close(fds[1]);
}

/* the emitter remembers accepted values per key: a host accepted as "as" is still no "event", and a near miss of a
 * remembered value is checked in full */
static void test_memo(void **state)
{
    char buf[512];
    (void)state;
    for (int round = 0; round != 3; ++round) {
        assert_true(rly_log_format(buf, sizeof(buf), RLY_LOG_INFO, "callback", "auth.atlassian.com", "authorized", 1, NULL, 0, 0) >
                    0);
        assert_non_null(strstr(buf, "\"as\":\"auth.atlassian.com\""));
        assert_true(rly_log_format(buf, sizeof(buf), RLY_LOG_INFO, "auth.atlassian.com", "authorized", "auth.atlassian.com", 1,
                                   NULL, 0, 0) > 0);
        assert_non_null(strstr(buf, "\"event\":\"invalid\""));
        assert_non_null(strstr(buf, "\"outcome\":\"invalid\""));
        assert_null(strstr(buf, "\"as\":\"invalid\"")); /* "authorized" is a host name too */
        /* one more character: an address now, not the remembered host */
        assert_true(rly_log_format(buf, sizeof(buf), RLY_LOG_INFO, "callback", "auth.atlassian.com@10.0.0.1", "authorized", 1, NULL,
                                   0, 0) > 0);
        assert_non_null(strstr(buf, "\"as\":\"invalid\""));
        assert_true(rly_log_format(buf, sizeof(buf), RLY_LOG_INFO, "callback", "auth.atlassian.co", "authorizedX", 1, NULL, 0, 0) >
                    0);
        assert_non_null(strstr(buf, "\"as\":\"auth.atlassian.co\""));
        assert_non_null(strstr(buf, "\"outcome\":\"invalid\""));
    }
    /* more distinct accepted values than the memo holds: each still written as given */
    for (int i = 0; i != 40; ++i) {
        char host[32], want[48];
        snprintf(host, sizeof(host), "as%d.example.com", i);
        snprintf(want, sizeof(want), "\"as\":\"%s\"", host);
        assert_true(rly_log_format(buf, sizeof(buf), RLY_LOG_INFO, "callback", host, "authorized", 1, NULL, 0, 0) > 0);
        assert_non_null(strstr(buf, want));
    }
}

/* a batching thread writes nothing until it flushes, then whole lines; lines of batching threads never interleave */
static void *log_many_batched(void *arg)
{
    (void)arg;
    rly_log_batch(1);
    for (int i = 0; i < LINES_PER_THREAD; i++) {
        rly_log_event(RLY_LOG_INFO, "callback", "auth.atlassian.com", "ok", i);
        if (i % 7 == 6)
            rly_log_flush();
    }
    rly_log_batch(0); /* flushes the rest */
    return NULL;
}

static void test_batch(void **state)
{
    static char out[THREADS * LINES_PER_THREAD * 160];
    rly_audit_t *a = rly_audit_new();
    int fds[2];
    (void)state;

    assert_int_equal(pipe_nonblocking(fds), 0);
    rly_log_init(RLY_LOG_INFO, fds[1]);

    /* one thread: held until the flush, then all of them at once */
    rly_log_batch(1);
    rly_log_event(RLY_LOG_INFO, "callback", "auth.atlassian.com", "ok", 1);
    rly_log_msg(RLY_LOG_WARN, "store_down", "the Redis connection was lost", 0);
    assert_int_equal(drain(fds[0], out, sizeof(out)), 0);
    rly_log_flush();
    assert_true(drain(fds[0], out, sizeof(out)) > 0);
    const char *p =
        expect_line(out, ",\"level\":\"info\",\"event\":\"callback\",\"as\":\"auth.atlassian.com\",\"outcome\":\"ok\",\"ms\":1}\n");
    p = expect_line(p, ",\"level\":\"warn\",\"event\":\"store_down\",\"msg\":\"the Redis connection was lost\"}\n");
    assert_string_equal(p, "");
    /* more than the batch holds: written in whole lines as it fills, the rest at the flush */
    for (int i = 0; i < 100; i++)
        rly_log_event(RLY_LOG_INFO, "pickup", "auth.atlassian.com", "delivered", i);
    size_t early = drain(fds[0], out, sizeof(out));
    assert_true(early > 0);
    assert_int_equal(out[early - 1], '\n');
    rly_log_batch(0);
    drain(fds[0], out + early, sizeof(out) - early);
    assert_int_equal(audited_lines(a, out), 100);
    /* off again: at once */
    rly_log_event(RLY_LOG_INFO, "callback", "auth.atlassian.com", "ok", 2);
    assert_true(drain(fds[0], out, sizeof(out)) > 0);

    /* several batching threads */
    expect_threads_lines(log_many_batched, fds[0], a);
    rly_audit_free(a);
    close(fds[0]);
    close(fds[1]);
}

/* a small deterministic generator (xorshift) for the round trip */
static uint32_t rng_state = 2463534242u;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* strings that are often nearly valid identifiers or hosts: digits and dots for addresses, hex for tokens */
static void random_value(char *buf, size_t cap)
{
    static const char *const alphabets[] = {"abcdef0123456789", "0123456789.", "abcdefxyz0123456789.-_", "abc019.-_:[]@/?AZ \"\\"};
    const char *alphabet = alphabets[rng() % 4];
    size_t alen = strlen(alphabet), n = rng() % 4 == 0 ? rng() % (cap - 1) : rng() % 40;
    for (size_t i = 0; i < n; i++)
        buf[i] = alphabet[rng() % alen];
    buf[n] = '\0';
}

/* every line the emitter can write passes the auditor */
static void test_round_trip(void **state)
{
    static const char *const events[] = {"start", "stop", "session_create", "callback", "pickup", "ack", "invalid", "x"};
    static const char *const hosts[] = {
        "auth.atlassian.com", "*.okta.com", "unlisted", "localhost", "127.0.0.1", "[::1]", "a.b", "*.com", NULL};
    static const char *const outcomes[] = {"ok", "store_down", "bad_state", "expired", "conflict", "Denied", NULL};
    static const char *const msgs[] = {"listening",           "the Redis connection was lost",
                                       "shutting down",       "authrelay " RLY_VERSION,
                                       "acme.okta.com",       "",
                                       "tab\tand \"quotes\"", NULL};
    rly_audit_t *a = rly_audit_new();
    char event[64], host[300], outcome[64], msg[300];
    const char *why;
    int n;
    (void)state;

    for (size_t l = 0; l < 4; l++) {
        for (size_t e = 0; e < sizeof(events) / sizeof(events[0]); e++) {
            for (size_t h = 0; h < sizeof(hosts) / sizeof(hosts[0]); h++) {
                for (size_t o = 0; o < sizeof(outcomes) / sizeof(outcomes[0]); o++) {
                    for (size_t m = 0; m < sizeof(msgs) / sizeof(msgs[0]); m++) {
                        n = rly_log_format(line, sizeof(line), (rly_log_level_t)l, events[e], hosts[h], outcomes[o],
                                           (long)(e * 1000 + o) - 3, msgs[m], (int)(m & 1), TS_MS + (long long)(h * 977));
                        assert_true(n > 0);
                        assert_int_equal(rly_audit_line(a, line, (size_t)n - 1, &why), 0);
                    }
                }
            }
        }
    }
    for (int i = 0; i < 50000; i++) {
        random_value(event, sizeof(event));
        random_value(host, sizeof(host));
        random_value(outcome, sizeof(outcome));
        random_value(msg, sizeof(msg));
        n = rly_log_format(line, sizeof(line), (rly_log_level_t)(rng() % 5), event, rng() % 8 == 0 ? NULL : host,
                           rng() % 8 == 0 ? NULL : outcome, (long)(rng() % 100000) - 10, rng() % 2 == 0 ? NULL : msg,
                           (int)(rng() & 1), (long long)(rng() % 4000000000u) * 1000 + rng() % 1000);
        assert_true(n > 0);
        why = NULL;
        if (rly_audit_line(a, line, (size_t)n - 1, &why) != 0)
            fail_msg("auditor refuses (%s): %s", why, line);
    }
    rly_audit_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_level_names),  cmocka_unit_test(test_format_flow),    cmocka_unit_test(test_format_lifecycle),
        cmocka_unit_test(test_format_ts),    cmocka_unit_test(test_invalid_values), cmocka_unit_test(test_good_hosts),
        cmocka_unit_test(test_listed_msgs),  cmocka_unit_test(test_unlisted_msg),   cmocka_unit_test(test_buffer_too_small),
        cmocka_unit_test(test_level_filter), cmocka_unit_test(test_threads),        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_memo),         cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
