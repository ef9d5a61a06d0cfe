/* test_abuse.c: bounds on what one outsider can consume: HTTP/2 streams (server-side resets, CONTINUATION floods,
 * streams per connection) and connections (--max-connections, running out of descriptors) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "harness.h"
#include "raw.h"

/* runs the HTTP/2 abuse tool (tests/bench/rapid_reset.c) against the relay; its RESULT line, arena-owned */
static const char *h2_abuse(const rly_relay_t *r, const char *mode, const char *seconds)
{
    const char *tool = getenv("RLY_RAPID_RESET");
    assert_non_null(tool);
    char *port = rly_strf("%u", r->port), *out = NULL;
    char *const argv[] = {(char *)tool, "--port", port, "--mode", (char *)mode, "--seconds", (char *)seconds, NULL};
    assert_int_equal(rly_run(argv, 30000, &out, NULL), 0);
    const char *line = strstr(out, "RESULT rapid_reset");
    assert_non_null(line);
    return line;
}

static double field(const char *line, const char *name)
{
    const char *p = strstr(line, name);
    assert_non_null(p);
    return strtod(p + strlen(name), NULL);
}

static void discovery_ok(const rly_relay_t *r, int version)
{
    rly_response_t *res = rly_do(&(rly_request_t){.url = rly_url(r, "/.well-known/authrelay"), .version = version});
    assert_int_equal(res->status, 200);
}

/* MadeYouReset (CVE-2025-8671): WINDOW_UPDATE 0 on each new stream makes the server reset it; the resets count in the
 * same budget as the client's own, and the connection gets GOAWAY(ENHANCE_YOUR_CALM) within a second */
static void test_h2_window_update_zero(void **state)
{
    (void)state;
    rly_relay_t r;
    static const char *const extra[] = {"--rate-limit", "0", "--threads", "2", NULL};
    assert_int_equal(rly_relay_start(&r, extra), 0);
    const char *res = h2_abuse(&r, "wu0", "2");
    assert_true(field(res, "goaways=") > 0);
    assert_true(field(res, "first_goaway_ms=") < 1000);
    assert_int_equal((int)field(res, "goaway_code="), 11);
    discovery_ok(&r, RLY_H2);
    /* the client's own resets stay limited too */
    res = h2_abuse(&r, "rst", "1");
    assert_true(field(res, "goaways=") > 0);
    assert_true(field(res, "first_goaway_ms=") < 1000);
    discovery_ok(&r, RLY_H2);
    assert_int_equal(rly_relay_finish(&r), 0);
}

/* empty CONTINUATION frames add no bytes to a header block, so h2o's size cap never ends one: the frame count does */
static void test_h2_continuation_flood(void **state)
{
    (void)state;
    rly_relay_t r;
    static const char *const extra[] = {"--rate-limit", "0", NULL};
    assert_int_equal(rly_relay_start(&r, extra), 0);
    const char *res = h2_abuse(&r, "continuation", "1");
    assert_true(field(res, "goaways=") > 0);
    assert_true(field(res, "first_goaway_ms=") < 1000);
    assert_int_equal((int)field(res, "goaway_code="), 11);
    discovery_ok(&r, RLY_H2);
    assert_int_equal(rly_relay_finish(&r), 0);
}

/* streams that complete normally are not resets, but one connection does not get to open streams without end: after
 * RELAY_H2_STREAMS_PER_CONN (10,000) it gets a graceful GOAWAY (NO_ERROR), every stream up to its last id is answered,
 * and the client opens another connection */
static void test_h2_streams_per_connection(void **state)
{
    (void)state;
    rly_relay_t r;
    static const char *const extra[] = {"--rate-limit", "0", NULL};
    assert_int_equal(rly_relay_start(&r, extra), 0);
    const char *res = h2_abuse(&r, "streams", "3");
    assert_true(field(res, "goaways=") > 0);
    assert_true(field(res, "streams=") >= 10000);
    assert_int_equal((int)field(res, "goaway_code="), 0);
    assert_int_equal((int)field(res, "lost="), 0);
    discovery_ok(&r, RLY_H2);
    assert_int_equal(rly_relay_finish(&r), 0);
}

static void read_waiting(void *ud)
{
    const rly_relay_t *r = ((void **)ud)[0];
    *(long long *)((void **)ud)[1] = rly_metric(r, "authrelay_waiting_pickups");
}

/* one HTTP/2 connection runs RELAY_H2_CONCURRENT_REQUESTS (16) requests at once: 20 long-polls on it park 16 waiters,
 * the other 4 wait in h2o's queue and run when the first ones end */
static void test_h2_long_polls_per_connection(void **state)
{
    (void)state;
    rly_relay_t r;
    static const char *const extra[] = {"--rate-limit", "0", "--threads", "1", NULL};
    assert_int_equal(rly_relay_start(&r, extra), 0);
    rly_session_t s;
    rly_create_ok(&r, RLY_H2, &s);
    const char *auth[] = {rly_strf("Authorization: Bearer %s", s.poll_token), "Prefer: wait=2", NULL};
    enum { N = 20 };
    rly_request_t reqs[N];
    rly_response_t res[N];
    for (size_t i = 0; i != N; ++i)
        reqs[i] = (rly_request_t){.url = s.poll_url, .headers = auth, .version = RLY_H2, .pipewait = 1, .timeout_ms = 15000};
    long long waiting = -1;
    void *ud[2] = {&r, &waiting};
    assert_int_equal(rly_http_multi(reqs, N, res, 1000, read_waiting, ud), 0);
    long conns = 0;
    int late = 0;
    for (size_t i = 0; i != N; ++i) {
        RLY_EXPECT(&res[i], 202, RLY_H2);
        conns += res[i].new_connections;
        late += res[i].done_at > 3.0;
        rly_response_free(&res[i]);
    }
    assert_int_equal(conns, 1);
    assert_int_equal(waiting, 16);
    assert_int_equal(late, 4);
    assert_int_equal(rly_relay_finish(&r), 0);
}

/* TLS connections with a completed handshake, n of them from conns[0]; returns how many completed within timeout_ms */
static int open_tls(rly_raw_t *conns, int n, unsigned short port, long timeout_ms)
{
    int ok = 0;
    for (int i = 0; i != n; ++i) {
        conns[i].fd = -1;
        conns[i].ssl = NULL;
        if (rly_raw_connect(&conns[i], port, NULL) != 0)
            continue;
        if (rly_raw_handshake(&conns[i], timeout_ms) == 0)
            ++ok;
    }
    return ok;
}

/* one request on a connection whose handshake was done: the status */
static int request_on(rly_raw_t *c)
{
    static const char req[] = "GET /.well-known/authrelay HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    char buf[4096];
    if (rly_raw_write(c, req, sizeof(req) - 1) != 0)
        return 0;
    rly_raw_read(c, buf, sizeof(buf), 5000, "\r\n\r\n", NULL);
    return rly_raw_status(buf);
}

/* --max-connections: at the cap the relay stops accepting (the kernel's backlog holds newcomers, nothing spins), the
 * open connections keep being served, and the first one that closes lets a waiting one in */
static void test_max_connections(void **state)
{
    (void)state;
    rly_relay_t r;
    static const char *const extra[] = {"--max-connections", "4", "--threads", "1", NULL};
    assert_int_equal(rly_relay_start(&r, extra), 0);
    /* the harness's own readiness probe may still be closing: let it go */
    usleep(200000);
    rly_raw_t conns[6];
    assert_int_equal(open_tls(conns, 4, r.port, 5000), 4);
    /* the fifth and sixth are queued by the kernel: no handshake */
    assert_int_equal(open_tls(conns + 4, 2, r.port, 1000), 0);
    assert_true(rly_metric(&r, "authrelay_accept_paused_total{reason=\"max_connections\"}") >= 1);
    assert_int_equal(rly_metric(&r, "authrelay_connections"), 4);
    /* an open connection is served */
    assert_int_equal(request_on(&conns[0]), 200);
    rly_raw_close(&conns[0]);
    /* its place goes to a waiting one */
    assert_int_equal(rly_raw_handshake(&conns[4], 5000), 0);
    assert_int_equal(request_on(&conns[4]), 200);
    for (int i = 0; i != 6; ++i)
        rly_raw_close(&conns[i]);
    assert_int_equal(rly_relay_finish(&r), 0);
}

/* starts a relay whose descriptor limit (soft and hard) is 64, through a wrapper script */
static void start_with_64_descriptors(rly_relay_t *r, const char *const *extra)
{
    const char *bin = rly_bin();
    char *bin_saved = rly_strf("%s", bin);
    char *wrapper = rly_strf("%s/authrelay-ulimit64", rly_tmpdir());
    FILE *fp = fopen(wrapper, "w");
    assert_non_null(fp);
    fprintf(fp, "#!/bin/sh\nulimit -n 64 || exit 1\nexec '%s' \"$@\"\n", bin_saved);
    fclose(fp);
    assert_int_equal(chmod(wrapper, 0700), 0);
    setenv("AUTHRELAY_BIN", wrapper, 1);
    int rc = rly_relay_start(r, extra);
    setenv("AUTHRELAY_BIN", bin_saved, 1);
    assert_int_equal(rc, 0);
}

/* out of descriptors (EMFILE) with the cap set above the limit: the worker stops reading its listener instead of
 * spinning on it, retries now and then, keeps serving, and takes a new connection once others close */
static void test_descriptors_exhausted(void **state)
{
    (void)state;
    rly_relay_t r;
    static const char *const extra[] = {"--max-connections", "1000", "--threads", "1", "--rate-limit", "0", NULL};
    start_with_64_descriptors(&r, extra);
    enum { N = 100 };
    rly_raw_t conns[N];
    int ok = open_tls(conns, N, r.port, 300);
    assert_true(ok > 10);
    assert_true(ok < N);
    double cpu0 = rly_proc_cpu(r.pid), t0 = rly_now();
    assert_true(cpu0 >= 0);
    sleep(2);
    double cpu = rly_proc_cpu(r.pid) - cpu0, wall = rly_now() - t0;
    printf("  out of descriptors: %d of %d connections accepted; relay CPU %.1f %% over %.1f s\n", ok, N, 100 * cpu / wall, wall);
    assert_true(cpu / wall < 0.10);
    /* the accepted ones are served */
    int served = 0;
    for (int i = 0; i != N && served == 0; ++i)
        if (conns[i].ssl != NULL && SSL_is_init_finished(conns[i].ssl))
            served = request_on(&conns[i]);
    assert_int_equal(served, 200);
    for (int i = 0; i != N; ++i)
        rly_raw_close(&conns[i]);
    /* descriptors are back: a new connection is served, and the admin listener (out of descriptors too until now) says
     * what happened */
    usleep(300000);
    assert_true(rly_metric(&r, "authrelay_accept_paused_total{reason=\"descriptors\"}") >= 1);
    rly_raw_t c;
    assert_int_equal(rly_raw_open(&c, r.port, NULL, NULL, 0, 1, 3000), 0);
    assert_int_equal(request_on(&c), 200);
    rly_raw_close(&c);
    assert_int_equal(rly_relay_finish(&r), 0);
}

/* the default cap comes from the descriptor limit, with headroom: under ulimit -n 64 the relay pauses at its cap before
 * it runs out, and never reports running out */
static void test_default_cap_from_limit(void **state)
{
    (void)state;
    rly_relay_t r;
    static const char *const extra[] = {"--threads", "1", "--rate-limit", "0", NULL};
    start_with_64_descriptors(&r, extra);
    enum { N = 60 };
    rly_raw_t conns[N];
    int ok = open_tls(conns, N, r.port, 300);
    printf("  ulimit -n 64: %d of %d connections accepted\n", ok, N);
    assert_true(ok >= 16);
    assert_true(ok < N);
    double cpu0 = rly_proc_cpu(r.pid), t0 = rly_now();
    sleep(1);
    assert_true((rly_proc_cpu(r.pid) - cpu0) / (rly_now() - t0) < 0.10);
    assert_true(rly_metric(&r, "authrelay_accept_paused_total{reason=\"max_connections\"}") >= 1);
    assert_int_equal(rly_metric(&r, "authrelay_accept_paused_total{reason=\"descriptors\"}"), 0);
    /* the relay still reaches its store and answers a full request on a new connection once some close */
    for (int i = 0; i != N; ++i)
        rly_raw_close(&conns[i]);
    discovery_ok(&r, RLY_H1);
    assert_int_equal(rly_relay_finish(&r), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLY_TEST(test_h2_window_update_zero),        RLY_TEST(test_h2_continuation_flood), RLY_TEST(test_h2_streams_per_connection),
        RLY_TEST(test_h2_long_polls_per_connection), RLY_TEST(test_max_connections),       RLY_TEST(test_descriptors_exhausted),
        RLY_TEST(test_default_cap_from_limit),
    };
    return cmocka_run_group_tests_name("abuse", tests, NULL, NULL);
}
