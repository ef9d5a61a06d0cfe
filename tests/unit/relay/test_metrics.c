/* test_metrics.c: unit tests of relay/metrics.c (and relay_event of relay/event.c): event counters, AS label cap, wake histogram,
 * gauges, label hygiene */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "event.h"
#include "metrics.h"
#include "rly.h"

/*
 * The metrics are process-wide: each test uses its own event names and measures differences, so the tests do not
 * depend on each other except where said (the AS cap is global; the counter-table flood runs last).
 */

static char *render(int store_up, int shutting_down)
{
    size_t len = 0;
    char *text = relay_metrics_render(store_up, shutting_down, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    assert_true(len > 0 && text[len - 1] == '\n');
    return text;
}

/* the value on the line "<series> <value>", or -1 when there is no such line */
static long long value_of(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *line = text; *line != '\0';) {
        const char *end = strchr(line, '\n');
        if (end == NULL)
            end = line + strlen(line);
        if ((size_t)(end - line) > n && memcmp(line, series, n) == 0 && line[n] == ' ') {
            char *stop;
            long long v = strtoll(line + n + 1, &stop, 10);
            assert_true(stop == end);
            return v;
        }
        line = *end == '\n' ? end + 1 : end;
    }
    return -1;
}

static long long counter(const char *text, const char *event, const char *outcome, const char *as)
{
    char series[512];
    snprintf(series, sizeof(series), "authrelay_events_total{event=\"%s\",outcome=\"%s\",as=\"%s\"}", event, outcome, as);
    return value_of(text, series);
}

/* the sum of every counter line of the event, and the number of those lines */
static long long sum_of_event(const char *text, const char *event, size_t *lines)
{
    char prefix[128];
    long long sum = 0;
    snprintf(prefix, sizeof(prefix), "authrelay_events_total{event=\"%s\",", event);
    *lines = 0;
    for (const char *p = text; (p = strstr(p, prefix)) != NULL; ++p) {
        const char *sp = strchr(p, '}');
        assert_non_null(sp);
        sum += strtoll(sp + 2, NULL, 10);
        ++*lines;
    }
    return sum;
}

static void test_event_counts(void **state)
{
    (void)state;
    for (int i = 0; i != 3; ++i)
        relay_event(RLY_LOG_INFO, "tc_counts", "auth.example.com", "ok", 5);
    relay_event(RLY_LOG_WARN, "tc_counts", "auth.example.com", "failed", 5);
    relay_event(RLY_LOG_INFO, "tc_counts", NULL, "ok", -1);
    relay_event(RLY_LOG_INFO, "tc_counts", NULL, "ok", 0);
    relay_event(RLY_LOG_INFO, "tc_counts", "", "ok", 0); /* an empty AS is no AS */
    relay_event(RLY_LOG_INFO, "tc_other", "auth.example.com", "ok", 1);

    char *text = render(1, 0);
    assert_int_equal(counter(text, "tc_counts", "ok", "auth.example.com"), 3);
    assert_int_equal(counter(text, "tc_counts", "failed", "auth.example.com"), 1);
    assert_int_equal(counter(text, "tc_counts", "ok", ""), 3);
    assert_int_equal(counter(text, "tc_other", "ok", "auth.example.com"), 1);
    assert_int_equal(counter(text, "tc_counts", "failed", ""), -1); /* never seen: no line */
    assert_non_null(strstr(text, "# TYPE authrelay_events_total counter\n"));
    free(text);

    relay_event(RLY_LOG_INFO, "tc_counts", "auth.example.com", "ok", 5);
    text = render(1, 0);
    assert_int_equal(counter(text, "tc_counts", "ok", "auth.example.com"), 4);
    free(text);
}

/* relay_event (event.c) writes one log line and counts once; relay_metrics_count counts alone, with the log's rules */
static void test_event_and_count(void **state)
{
    int p[2], devnull;
    char line[512];
    ssize_t n;

    (void)state;
    assert_int_equal(pipe(p), 0);
    rly_log_init(RLY_LOG_INFO, p[1]);
    relay_event(RLY_LOG_INFO, "tc_event", "auth.example.com", "ok", 7);
    relay_event(RLY_LOG_DEBUG, "tc_event", "auth.example.com", "ok", 7); /* below the level: counted, not written */
    assert_true((devnull = open("/dev/null", O_WRONLY | O_CLOEXEC)) >= 0);
    rly_log_init(RLY_LOG_ERROR, devnull);
    close(p[1]);
    n = read(p[0], line, sizeof(line) - 1);
    assert_true(n > 0);
    line[n] = '\0';
    close(p[0]);
    assert_non_null(strstr(line, "\"event\":\"tc_event\",\"as\":\"auth.example.com\",\"outcome\":\"ok\",\"ms\":7}\n"));
    assert_int_equal(strchr(line, '\n') - line, n - 1); /* one line */

    relay_metrics_count("tc_count", "ok", "auth.example.com");
    relay_metrics_count("tc_count", "ok", NULL);
    relay_metrics_count("tc_count", "not ok", "auth.example.com");
    relay_metrics_count("tc count", "ok", "auth.example.com");

    char *text = render(1, 0);
    assert_int_equal(counter(text, "tc_event", "ok", "auth.example.com"), 2);
    assert_int_equal(counter(text, "tc_count", "ok", "auth.example.com"), 1);
    assert_int_equal(counter(text, "tc_count", "ok", ""), 1);
    assert_int_equal(counter(text, "tc_count", "invalid", "auth.example.com"), 1);
    assert_true(counter(text, "invalid", "ok", "auth.example.com") >= 1);
    free(text);
}

typedef struct st_hist_t {
    long long buckets[13]; /* the 12 bounds and +Inf */
    long long count;
} hist_t;

static const char *const bounds[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
                                     "0.1",    "0.25",  "0.5",    "1",     "2.5",  "+Inf"};

static hist_t histogram(void)
{
    hist_t h;
    char *text = render(1, 0);
    char series[96];
    for (size_t i = 0; i != 13; ++i) {
        snprintf(series, sizeof(series), "authrelay_wake_latency_seconds_bucket{le=\"%s\"}", bounds[i]);
        h.buckets[i] = value_of(text, series);
        assert_true(h.buckets[i] >= 0);
        if (i != 0)
            assert_true(h.buckets[i] >= h.buckets[i - 1]); /* cumulative */
    }
    h.count = value_of(text, "authrelay_wake_latency_seconds_count");
    assert_int_equal(h.buckets[12], h.count); /* +Inf is the count */
    assert_non_null(strstr(text, "# TYPE authrelay_wake_latency_seconds histogram\n"));
    assert_non_null(strstr(text, "\nauthrelay_wake_latency_seconds_sum "));
    free(text);
    return h;
}

static void test_histogram(void **state)
{
    (void)state;
    hist_t before = histogram();
    relay_metrics_observe_wake(0.0001);
    relay_metrics_observe_wake(-1); /* a clock step: counted as 0 */
    relay_metrics_observe_wake(0.003);
    relay_metrics_observe_wake(0.3);
    relay_metrics_observe_wake(0.5); /* on a bound: le is "less or equal" */
    relay_metrics_observe_wake(100);
    hist_t after = histogram();
    /* observations at or below each bound: 0.0001, 0 | 0.003 | 0.3 | 0.5 | 100 */
    static const long long expected[13] = {2, 2, 2, 3, 3, 3, 3, 3, 3, 5, 5, 5, 6};
    for (size_t i = 0; i != 13; ++i)
        if (after.buckets[i] - before.buckets[i] != expected[i])
            fail_msg("le=%s grew by %lld, expected %lld", bounds[i], after.buckets[i] - before.buckets[i], expected[i]);
    assert_int_equal(after.count - before.count, 6);
}

static void test_gauges(void **state)
{
    (void)state;
    long before = relay_metrics_waiting_now();
    relay_metrics_waiting(3);
    relay_metrics_waiting(-1);
    assert_int_equal(relay_metrics_waiting_now(), before + 2);
    char *text = render(1, 0);
    assert_int_equal(value_of(text, "authrelay_waiting_pickups"), before + 2);
    assert_int_equal(value_of(text, "authrelay_store_up"), 1);
    assert_int_equal(value_of(text, "authrelay_shutting_down"), 0);
    assert_non_null(strstr(text, "# TYPE authrelay_waiting_pickups gauge\n"));
    assert_int_equal(value_of(text, "authrelay_build_info{version=\"" RLY_VERSION "\"}"), 1);
    free(text);
    relay_metrics_waiting(-2);
    text = render(0, 1);
    assert_int_equal(value_of(text, "authrelay_waiting_pickups"), before);
    assert_int_equal(value_of(text, "authrelay_store_up"), 0);
    assert_int_equal(value_of(text, "authrelay_shutting_down"), 1);
    free(text);
}

/* requests by HTTP major version */
static void test_requests_by_version(void **state)
{
    (void)state;
    char *text = render(1, 0);
    long long v1 = value_of(text, "authrelay_http_requests_total{version=\"1\"}"),
              v2 = value_of(text, "authrelay_http_requests_total{version=\"2\"}");
    assert_non_null(strstr(text, "# TYPE authrelay_http_requests_total counter\n"));
    free(text);
    relay_metrics_request(1);
    relay_metrics_request(1);
    relay_metrics_request(0);
    text = render(1, 0);
    assert_int_equal(value_of(text, "authrelay_http_requests_total{version=\"1\"}"), v1 + 1);
    assert_int_equal(value_of(text, "authrelay_http_requests_total{version=\"2\"}"), v2 + 2);
    free(text);
}

/* the AS label is the anonymous identifier the routes pass (an allow-list entry or "unlisted"); anything else, such as a
 * host with a port or in capitals, is "invalid": label values are bounded by the allow-list, no first-come table */
static void test_as_labels(void **state)
{
    (void)state;
    relay_event(RLY_LOG_INFO, "tc_as", "*.okta.com", "ok", 0);
    relay_event(RLY_LOG_INFO, "tc_as", "*.okta.com", "ok", 0);
    relay_event(RLY_LOG_INFO, "tc_as", "unlisted", "ok", 0);
    relay_event(RLY_LOG_INFO, "tc_as", "auth.atlassian.com", "ok", 0);
    relay_event(RLY_LOG_INFO, "tc_as", "Acme.Okta.com", "ok", 0);
    relay_event(RLY_LOG_INFO, "tc_as", "acme.okta.com:443", "ok", 0);
    char *text = render(1, 0);
    assert_int_equal(counter(text, "tc_as", "ok", "*.okta.com"), 2);
    assert_int_equal(counter(text, "tc_as", "ok", "unlisted"), 1);
    assert_int_equal(counter(text, "tc_as", "ok", "auth.atlassian.com"), 1);
    assert_int_equal(counter(text, "tc_as", "ok", "invalid"), 2);
    assert_int_equal(counter(text, "tc_as", "ok", "Acme.Okta.com"), -1);
    free(text);
}

static int label_char_ok(char c)
{
    /* identifiers, host names, wildcard entries ("*.okta.com") and IPv6 literals ("[::1]") */
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-' || c == '*' || c == '[' ||
           c == ']' || c == ':';
}

/* every label value of the render is within [a-z0-9_.*:[]-] (le's "+Inf" aside); returns the number of values checked */
static size_t check_labels(const char *text)
{
    size_t checked = 0;
    for (const char *line = text; *line != '\0';) {
        const char *end = strchr(line, '\n');
        assert_non_null(end);
        if (*line != '#') {
            const char *open = memchr(line, '{', (size_t)(end - line));
            if (open != NULL) {
                const char *close = memchr(open, '}', (size_t)(end - open));
                assert_non_null(close);
                for (const char *p = open + 1; p < close;) {
                    const char *eq = memchr(p, '=', (size_t)(close - p));
                    assert_non_null(eq);
                    assert_int_equal(eq[1], '"');
                    const char *v = eq + 2, *q = memchr(v, '"', (size_t)(close - v));
                    assert_non_null(q);
                    int is_le = eq - p == 2 && memcmp(p, "le", 2) == 0;
                    if (!(is_le && q - v == 4 && memcmp(v, "+Inf", 4) == 0))
                        for (const char *c = v; c != q; ++c)
                            if (!label_char_ok(*c))
                                fail_msg("label value with 0x%02x: %.*s", (unsigned char)*c, (int)(end - line), line);
                    ++checked;
                    p = q + 1;
                    if (p < close) {
                        assert_int_equal(*p, ',');
                        ++p;
                    }
                }
                assert_int_equal(close[1], ' ');
            }
        }
        line = end + 1;
    }
    return checked;
}

/* whatever a caller passes, no label carries anything but identifier and host-name characters */
static void test_label_hygiene(void **state)
{
    (void)state;
    relay_event(RLY_LOG_INFO, "tc_labels", "auth.example.com", "ok", 0);
    relay_event(RLY_LOG_INFO, "tc_labels", "Evil\"} 1\nauthrelay_store_up{x=\"", "ok", 0);
    relay_event(RLY_LOG_INFO, "tc_labels", "[::1]", "ok", 0);
    relay_event(RLY_LOG_INFO, "tc_labels", "AUTH.EXAMPLE.COM", "ok", 0);
    relay_event(RLY_LOG_INFO, "tc_labels", "auth.example.com", "ok\nstolen 1", 0);
    relay_event(RLY_LOG_INFO, "tc_labels bad\"", "auth.example.com", "ok", 0);
    relay_event(RLY_LOG_INFO, "tc_labels_event_name_far_longer_than_32_bytes", "auth.example.com", "ok", 0);
    relay_event(RLY_LOG_INFO, "tc_labels", "user@auth.example.com", "ok", 0);
    char *text = render(1, 0);
    assert_true(check_labels(text) > 13);
    /* the hostile values did not land as themselves, and did not inject a series */
    assert_null(strstr(text, "Evil"));
    assert_null(strstr(text, "stolen"));
    assert_null(strstr(text, "::1"));
    assert_null(strstr(text, "user@"));
    assert_null(strstr(text, "far_longer"));
    assert_int_equal(value_of(text, "authrelay_store_up"), 1);
    assert_int_equal(counter(text, "tc_labels", "ok", "auth.example.com"), 1);
    /* every event was still counted */
    size_t lines;
    long long labelled = sum_of_event(text, "tc_labels", &lines);
    long long invalid_event = counter(text, "invalid", "ok", "auth.example.com");
    assert_true(invalid_event >= 2);
    assert_int_equal(labelled + 2, 8);
    free(text);
}

/* an IP address as the AS (a loopback AS in dev mode) is not written as a label: the auditor takes it for a client's */
static void test_ip_as_not_a_label(void **state)
{
    (void)state;
    relay_event(RLY_LOG_INFO, "tc_ip", "127.0.0.1", "ok", 0);
    char *text = render(1, 0);
    assert_null(strstr(text, "127.0.0.1"));
    size_t lines;
    assert_int_equal(sum_of_event(text, "tc_ip", &lines), 1);
    free(text);
}

#define THREADS 4
#define PER_THREAD 2000

static void *event_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i != PER_THREAD; ++i) {
        relay_event(RLY_LOG_DEBUG, "tc_threads", "auth.example.com", "ok", 0);
        relay_metrics_waiting(1);
        relay_metrics_waiting(-1);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t tids[THREADS];
    long before = relay_metrics_waiting_now();
    for (size_t i = 0; i != THREADS; ++i)
        assert_int_equal(pthread_create(&tids[i], NULL, event_thread, NULL), 0);
    for (size_t i = 0; i != THREADS; ++i)
        assert_int_equal(pthread_join(tids[i], NULL), 0);
    char *text = render(1, 0);
    assert_int_equal(counter(text, "tc_threads", "ok", "auth.example.com"), THREADS * PER_THREAD);
    assert_int_equal(relay_metrics_waiting_now(), before);
    free(text);
}

/* more distinct series than the table holds: no crash, the render stays well-formed and bounded (runs last) */
static void test_counter_table_full(void **state)
{
    (void)state;
    char outcome[32];
    for (int i = 0; i != 1500; ++i) {
        snprintf(outcome, sizeof(outcome), "flood_%d", i);
        relay_event(RLY_LOG_INFO, "tc_flood", "auth.example.com", outcome, 0);
    }
    char *text = render(1, 0);
    size_t lines;
    long long sum = sum_of_event(text, "tc_flood", &lines);
    assert_true(lines < 1500);
    assert_int_equal(sum, (long long)lines);
    check_labels(text);
    assert_int_equal(value_of(text, "authrelay_store_up"), 1);
    free(text);
}

static int setup(void **state)
{
    (void)state;
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    rly_log_init(RLY_LOG_ERROR, fd); /* nothing reaches the test's output; the fd stays open for the process */
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* the label tests run before the AS cap fills the table: a bad host must not take a slot of its own */
        cmocka_unit_test(test_event_counts),
        cmocka_unit_test(test_event_and_count),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_gauges),
        cmocka_unit_test(test_requests_by_version),
        cmocka_unit_test(test_label_hygiene),
        cmocka_unit_test(test_ip_as_not_a_label),
        cmocka_unit_test(test_as_labels),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_counter_table_full),
    };
    return cmocka_run_group_tests_name("metrics", tests, setup, NULL);
}
