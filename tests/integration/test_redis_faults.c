/* test_redis_faults.c: Redis killed, absent at start, paused, restarted under a waiting pickup, or behind a password */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include "harness_redis.h"

static char keys[256];
static rly_redis_t redis;
static rly_relay_t relay_a, relay_b, relay_c;

static int group_setup(void **state)
{
    (void)state;
    return rly_test_keygen(keys, sizeof(keys));
}

/* each test has its own Redis and relays: every relay must still run and exit 0 on SIGTERM (no crash) */
static int teardown(void **state)
{
    (void)state;
    int rc = 0;
    rly_relay_t *relays[] = {&relay_a, &relay_b, &relay_c};
    for (size_t i = 0; i < 3; i++) {
        if (relays[i]->dir[0] == '\0')
            continue;
        if (rly_relay_stop(relays[i]) != 0) {
            fprintf(stderr, "relay %c: exit status %d (expected 0 after SIGTERM); its stderr:\n%s\n", (int)('A' + i),
                    relays[i]->exit_status, rly_relay_stderr(relays[i], NULL));
            rc = -1;
        }
        rly_relay_cleanup(relays[i]);
        memset(relays[i], 0, sizeof(*relays[i]));
    }
    rly_redis_cleanup(&redis);
    memset(&redis, 0, sizeof(redis));
    rly_arena_free();
    return rc;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* starts r on the shared key file and the Redis at url, with more options (NULL-terminated, may be NULL) */
static void start_relay(rly_relay_t *r, const char *url, const char *const *more)
{
    const char *extra[16] = {"--redis", url, "--rate-limit", "0"};
    size_t n = 4;
    for (size_t i = 0; more != NULL && more[i] != NULL && n < 15; i++)
        extra[n++] = more[i];
    extra[n] = NULL;
    if (rly_relay_start_keys(r, keys, extra) != 0)
        fail_msg("the relay did not start");
}

/* fails with what the relays and Redis are doing when /readyz of A and B does not turn 200 within timeout_ms */
static void expect_ready(long timeout_ms, const char *what)
{
    double da = rly_wait_admin(&relay_a, "/readyz", 200, timeout_ms), db = rly_wait_admin(&relay_b, "/readyz", 200, timeout_ms);
    if (da >= 0 && db >= 0)
        return;
    int ra = rly_relay_running(&relay_a), rb = rly_relay_running(&relay_b);
    fail_msg("%s: /readyz did not turn 200 within %ld ms: A %ld (%s), B %ld (%s), redis-server %s; A's stderr: %.500s; B's "
             "stderr: %.500s",
             what, timeout_ms, rly_admin_status(&relay_a, "/readyz"), ra ? "running" : "exited",
             rly_admin_status(&relay_b, "/readyz"), rb ? "running" : "exited",
             redis.pid > 0 && kill(redis.pid, 0) == 0 ? "running" : "gone", rly_relay_stderr(&relay_a, NULL),
             rly_relay_stderr(&relay_b, NULL));
}

static void start_all(void)
{
    if (rly_redis_start(&redis, NULL) != 0)
        fail_msg("redis-server did not start");
    start_relay(&relay_a, redis.url, NULL);
    start_relay(&relay_b, redis.url, NULL);
    expect_ready(5000, "the relays on a fresh Redis");
}

static void expect_running(rly_relay_t *r, const char *name)
{
    if (!rly_relay_running(r))
        fail_msg("relay %s exited with status %d; its stderr:\n%s", name, r->exit_status, rly_relay_stderr(r, NULL));
}

/* a 503 that says when to retry, answered within max_s */
static void expect_503(const rly_response_t *res, int v, double max_s, const char *what)
{
    if (res->status != 503)
        fail_msg("%s: expected 503, got %ld %s after %.3f s; body: %.300s", what, res->status, res->error, res->elapsed, res->body);
    if (v != 0 && res->version != v)
        fail_msg("%s: answered over HTTP version %d, expected %d", what, res->version, v);
    const char *ra = rly_header(res, "Retry-After");
    if (ra == NULL || strspn(ra, "0123456789") != strlen(ra) || *ra == '\0')
        fail_msg("%s: 503 without a Retry-After in seconds (%s)", what, ra != NULL ? ra : "none");
    if (res->elapsed > max_s)
        fail_msg("%s: the 503 took %.3f s (expected < %.1f s)", what, res->elapsed, max_s);
}

static void expect_503_json(const rly_response_t *res, int v, double max_s, const char *what)
{
    expect_503(res, v, max_s, what);
    if (!rly_is_error_body(res, "temporarily_unavailable"))
        fail_msg("%s: the 503 body is not a temporarily_unavailable error: %.300s", what, res->body);
}

static void expect_503_page(const rly_response_t *res, int v, double max_s, const char *what)
{
    expect_503(res, v, max_s, what);
    const char *ct = rly_header(res, "Content-Type");
    if (ct == NULL || strncasecmp(ct, "text/html", 9) != 0)
        fail_msg("%s: the 503 is not an HTML page (Content-Type %s)", what, ct != NULL ? ct : "none");
}

/* method on the session's URL at relay r, with the bearer */
static rly_response_t *on(const rly_relay_t *r, const rly_session_t *s, const char *method, int v, int wait)
{
    const char *hdrs[3] = {rly_strf("Authorization: Bearer %s", s->poll_token), NULL, NULL};
    if (wait >= 0)
        hdrs[1] = rly_strf("Prefer: wait=%d", wait);
    rly_request_t q = {.method = method,
                       .url = rly_strf("%s/v1/sessions/%s", r->public_url, s->session),
                       .headers = hdrs,
                       .version = v,
                       .timeout_ms = (wait > 0 ? wait : 0) * 1000L + 15000};
    return rly_do(&q);
}

static rly_response_t *create(const rly_relay_t *r, int v)
{
    static const char body[] = "{\"authorization_server\": \"" RLY_TEST_AS "\"}";
    static const char *const hdrs[] = {"Content-Type: application/json", NULL};
    rly_request_t q = {
        .method = "POST", .url = rly_url(r, "/v1/sessions"), .headers = hdrs, .body = body, .body_len = strlen(body), .version = v};
    return rly_do(&q);
}

static rly_response_t *callback(const rly_relay_t *r, const rly_session_t *s, const char *code, int v)
{
    return rly_callback(r, v, NULL, rly_query("code", code, "state", s->state, NULL));
}

/* (a) kill -9 mid-flow: both replicas go unready, store requests get prompt 503s, health stays; then recovery */
static void test_kill9_mid_flow(void **state)
{
    (void)state;
    start_all();
    rly_session_t pending, done;
    rly_create_ok(&relay_a, RLY_H2, &pending);
    RLY_EXPECT(on(&relay_b, &pending, "GET", RLY_H2, 0), 202, RLY_H2);
    rly_create_ok(&relay_b, RLY_H1, &done);
    char *code = rly_token("code-");
    RLY_EXPECT(callback(&relay_a, &done, code, RLY_H1), 303, RLY_H1);

    double t0 = rly_now();
    rly_redis_kill(&redis);
    double da = rly_wait_admin(&relay_a, "/readyz", 503, 3000), db = rly_wait_admin(&relay_b, "/readyz", 503, 3000);
    double unready = rly_now() - t0;
    if (da < 0 || db < 0 || unready > 2.0)
        fail_msg("/readyz did not turn 503 on both replicas within 2 s of kill -9 (A %.3f s, B %.3f s)", da, db);

    expect_503_json(create(&relay_a, RLY_H1), RLY_H1, 1.5, "create on A, Redis down");
    expect_503_json(create(&relay_b, RLY_H2), RLY_H2, 1.5, "create on B, Redis down");
    rly_response_t *cb = callback(&relay_b, &pending, rly_token("code-"), RLY_H1);
    expect_503_page(cb, RLY_H1, 1.5, "callback on B, Redis down");
    if (rly_response_contains(cb, pending.state))
        fail_msg("the 503 page carries the state");
    expect_503_page(callback(&relay_a, &pending, rly_token("code-"), RLY_H2), RLY_H2, 1.5, "callback on A, Redis down");
    expect_503_json(on(&relay_a, &done, "GET", RLY_H2, -1), RLY_H2, 1.5, "pickup on A, Redis down");
    expect_503_json(on(&relay_b, &done, "GET", RLY_H1, 5), RLY_H1, 1.5, "waiting pickup on B, Redis down");
    expect_503_json(on(&relay_b, &pending, "DELETE", RLY_H2, -1), RLY_H2, 1.5, "delete on B, Redis down");
    if (rly_admin_status(&relay_a, "/healthz") != 200 || rly_admin_status(&relay_b, "/healthz") != 200)
        fail_msg("/healthz is not 200 while Redis is down");
    expect_running(&relay_a, "A");
    expect_running(&relay_b, "B");

    /* Redis back on the same port, empty (no persistence) */
    if (rly_redis_launch(&redis) != 0)
        fail_msg("redis-server did not restart");
    double t1 = rly_now();
    da = rly_wait_admin(&relay_a, "/readyz", 200, 8000);
    db = rly_wait_admin(&relay_b, "/readyz", 200, 8000);
    double ready = rly_now() - t1;
    if (da < 0 || db < 0 || ready > 5.0)
        fail_msg("/readyz did not return to 200 on both replicas within 5 s of the restart (A %.3f s, B %.3f s)", da, db);
    /* the sessions died with Redis: the relays say so rather than fail */
    RLY_EXPECT(callback(&relay_a, &pending, rly_token("code-"), RLY_H1), 410, RLY_H1);
    RLY_EXPECT(on(&relay_b, &done, "GET", RLY_H2, -1), 404, RLY_H2);
    /* new flows complete end to end, across replicas */
    double lat = rly_flow(&relay_a, &relay_b, &relay_a, RLY_H2, 200);
    lat += rly_flow(&relay_b, &relay_a, &relay_b, RLY_H1, 200);
    rly_flow(&relay_a, &relay_a, &relay_b, RLY_H2, 200);
    print_message("  unready %.2f s after kill -9; ready %.2f s after the restart; two flows after recovery (%.0f ms)\n", unready,
                  ready, lat * 1000.0);
    expect_running(&relay_a, "A");
    expect_running(&relay_b, "B");
}

/* (b) the relays start while nothing listens on the Redis port, and get ready once Redis is there */
static void test_start_without_redis(void **state)
{
    (void)state;
    if (rly_redis_prepare(&redis, NULL) != 0)
        fail_msg("no port for Redis");
    start_relay(&relay_a, redis.url, NULL);
    start_relay(&relay_b, redis.url, NULL);
    if (rly_admin_status(&relay_a, "/healthz") != 200 || rly_admin_status(&relay_b, "/healthz") != 200)
        fail_msg("/healthz is not 200 without Redis");
    for (int i = 0; i < 3; i++) {
        long a = rly_admin_status(&relay_a, "/readyz"), b = rly_admin_status(&relay_b, "/readyz");
        if (a != 503 || b != 503)
            fail_msg("/readyz without Redis: A %ld, B %ld (expected 503)", a, b);
    }
    expect_503_json(create(&relay_a, RLY_H2), RLY_H2, 1.5, "create on A before Redis ever ran");
    expect_running(&relay_a, "A");
    expect_running(&relay_b, "B");

    if (rly_redis_launch(&redis) != 0)
        fail_msg("redis-server did not start");
    double t1 = rly_now();
    double da = rly_wait_admin(&relay_a, "/readyz", 200, 8000), db = rly_wait_admin(&relay_b, "/readyz", 200, 8000);
    double ready = rly_now() - t1;
    if (da < 0 || db < 0 || ready > 5.0)
        fail_msg("/readyz did not turn 200 within 5 s of Redis starting (A %.3f s, B %.3f s)", da, db);
    rly_flow(&relay_a, &relay_b, &relay_a, RLY_H2, 200);
    rly_flow(&relay_b, &relay_a, &relay_a, RLY_H1, 200);
    print_message("  ready %.2f s after Redis started\n", ready);
}

/* (c) CLIENT PAUSE: store requests fail after the 1 s command timeout rather than hang; afterwards all is well */
static void test_client_pause(void **state)
{
    (void)state;
    start_all();
    rly_session_t s;
    rly_create_ok(&relay_a, RLY_H2, &s);
    redisReply *rep = rly_redis_command(&redis, "CLIENT PAUSE 3000 ALL");
    if (rep == NULL || rep->type != REDIS_REPLY_STATUS)
        fail_msg("CLIENT PAUSE failed: %s", rep != NULL && rep->str != NULL ? rep->str : "no reply");
    double t0 = rly_now();

    static const char body[] = "{\"authorization_server\": \"" RLY_TEST_AS "\"}";
    static const char *const ctype[] = {"Content-Type: application/json", NULL};
    const char *auth[] = {rly_strf("Authorization: Bearer %s", s.poll_token), NULL};
    rly_request_t q[3] = {
        {.method = "POST",
         .url = rly_url(&relay_a, "/v1/sessions"),
         .headers = ctype,
         .body = body,
         .body_len = strlen(body),
         .version = RLY_H2},
        {.url = rly_strf("%s/v1/sessions/%s", relay_b.public_url, s.session), .headers = auth, .version = RLY_H1},
        {.url = rly_strf("%s/qorus-oauth2-redirect?%s", relay_b.public_url,
                         rly_query("code", rly_token("code-"), "state", s.state, NULL)),
         .version = RLY_H2,
         .start_ms = 100},
    };
    rly_response_t *res = rly_responses(3);
    rly_http_multi(q, 3, res, 0, NULL, NULL);
    const char *what[] = {"create on A during CLIENT PAUSE", "pickup on B during CLIENT PAUSE",
                          "callback on B during CLIENT PAUSE"};
    for (size_t i = 0; i < 3; i++) {
        if (i == 2)
            expect_503_page(&res[i], RLY_H2, 2.0, what[i]);
        else
            expect_503_json(&res[i], q[i].version, 2.0, what[i]);
        if (res[i].elapsed < 0.5)
            fail_msg("%s: 503 after %.3f s, before the 1 s command timeout could have expired", what[i], res[i].elapsed);
    }
    if (rly_admin_status(&relay_a, "/healthz") != 200)
        fail_msg("/healthz is not 200 during CLIENT PAUSE");
    double paused_for = rly_now() - t0;

    /* after the pause: ready again, flows complete, and the session made before the pause is intact */
    double da = rly_wait_admin(&relay_a, "/readyz", 200, 10000), db = rly_wait_admin(&relay_b, "/readyz", 200, 10000);
    double ready = rly_now() - t0;
    if (da < 0 || db < 0)
        fail_msg("/readyz did not return to 200 after the pause (A %.3f s, B %.3f s)", da, db);
    if (ready > 8.0)
        fail_msg("/readyz returned to 200 only %.3f s after a 3 s pause began", ready);
    char *code = rly_token("code-");
    RLY_EXPECT(callback(&relay_b, &s, code, RLY_H1), 303, RLY_H1);
    rly_response_t *p = on(&relay_a, &s, "GET", RLY_H2, 0);
    RLY_EXPECT(p, 200, RLY_H2);
    RLY_EXPECT_STR(rly_jstr(rly_json(p), "code"), code);
    rly_flow(&relay_a, &relay_b, &relay_b, RLY_H2, 200);
    rly_flow(&relay_b, &relay_a, &relay_b, RLY_H1, 200);
    print_message("  during the pause: create %.3f s, pickup %.3f s, callback %.3f s (all 503); ready %.2f s after the pause "
                  "began (requests done at %.2f s)\n",
                  res[0].elapsed, res[1].elapsed, res[2].elapsed, ready, paused_for);
    expect_running(&relay_a, "A");
    expect_running(&relay_b, "B");
}

/*
 * After an outage, /readyz 200 says the replica serves again: a pickup that asks to wait must then be accepted (202
 * once its wait is over), not refused with 503. Each replica's workers run their own subscriber connections, so many
 * fresh connections are used to reach every worker.
 */
static void test_ready_means_pickups_can_wait(void **state)
{
    (void)state;
    start_all();
    enum { N = 16, ROUNDS = 3 };
    size_t refused = 0;
    char detail[512] = "";
    for (int round = 0; round < ROUNDS; round++) {
        rly_redis_kill(&redis);
        if (rly_wait_admin(&relay_a, "/readyz", 503, 3000) < 0 || rly_wait_admin(&relay_b, "/readyz", 503, 3000) < 0)
            fail_msg("/readyz did not turn 503");
        sleep_ms(2500); /* long enough for the reconnect backoff to reach its 2 s cap */
        if (rly_redis_launch(&redis) != 0)
            fail_msg("redis-server did not restart");
        expect_ready(8000, "after Redis came back");
        double t_ready = rly_now();
        rly_session_t s;
        rly_create_ok(&relay_a, RLY_H1, &s);
        const char *hdrs[] = {rly_strf("Authorization: Bearer %s", s.poll_token), "Prefer: wait=1", NULL};
        rly_request_t q[N];
        for (size_t i = 0; i < N; i++)
            q[i] = (rly_request_t){.url = rly_strf("%s/v1/sessions/%s", (i % 2 ? &relay_b : &relay_a)->public_url, s.session),
                                   .headers = hdrs,
                                   .version = RLY_H1};
        rly_response_t *res = rly_responses(N);
        double t_sent = rly_now();
        rly_http_multi(q, N, res, 0, NULL, NULL);
        for (size_t i = 0; i < N; i++) {
            if (res[i].status == 202)
                continue;
            if (res[i].status != 503)
                fail_msg("a waiting pickup after the recovery: %ld %s %.300s", res[i].status, res[i].error, res[i].body);
            if (refused++ == 0)
                snprintf(detail, sizeof(detail),
                         "round %d: pickup with Prefer: wait=1 on relay %c answered 503 after %.3f s, sent %.3f s after /readyz "
                         "of both replicas was 200",
                         round + 1, i % 2 ? 'B' : 'A', res[i].elapsed, t_sent - t_ready);
        }
    }
    if (refused != 0)
        fail_msg("%zu of %d waiting pickups got 503 although /readyz said ready; first: %s", refused, ROUNDS * N, detail);
}

static void restart_keeping_data(void *ud)
{
    (void)ud;
    if (rly_redis_shutdown_save(&redis) != 0 || rly_redis_launch(&redis) != 0)
        fprintf(stderr, "test: the Redis restart failed\n");
}

static void kill_redis(void *ud)
{
    (void)ud;
    rly_redis_kill(&redis);
}

/* (d) a pickup waits while Redis restarts: it is answered, never later than its wait */
static void test_waiting_pickup_across_restart(void **state)
{
    (void)state;
    start_all();
    for (int v = RLY_H1; v <= RLY_H2; v++) {
        /* Redis restarts (data kept) under the waiting pickup; the callback lands after the recovery */
        rly_session_t s;
        rly_create_ok(&relay_a, v, &s);
        char *code = rly_token("code-");
        const char *hdrs[] = {rly_strf("Authorization: Bearer %s", s.poll_token), "Prefer: wait=10", NULL};
        rly_request_t q[2] = {
            {.url = rly_strf("%s/v1/sessions/%s", relay_b.public_url, s.session),
             .headers = hdrs,
             .version = v,
             .timeout_ms = 20000},
            {.url = rly_strf("%s/qorus-oauth2-redirect?%s", relay_a.public_url, rly_query("code", code, "state", s.state, NULL)),
             .version = v,
             .start_ms = 4000},
        };
        rly_response_t *res = rly_responses(2);
        if (rly_http_multi(q, 2, res, 500, restart_keeping_data, NULL) != 0)
            fail_msg("the pickup or the callback did not finish (pickup %ld %s, callback %ld %s)", res[0].status, res[0].error,
                     res[1].status, res[1].error);
        if (redis.pid <= 0)
            fail_msg("Redis did not restart");
        RLY_EXPECT(&res[1], 303, v);
        if (res[0].done_at > 11.5)
            fail_msg("the waiting pickup (wait=10) answered after %.3f s", res[0].done_at);
        const char *outcome = "";
        if (res[0].status == 200) {
            RLY_EXPECT_STR(rly_jstr(rly_json(&res[0]), "code"), code);
            if (res[0].done_at < 4.0)
                fail_msg("the pickup answered 200 at %.3f s, before the callback was sent", res[0].done_at);
            outcome = "200 with the code, woken by the callback after the recovery";
        } else if (res[0].status == 503 || res[0].status == 202) {
            outcome = res[0].status == 503 ? "503" : "202";
            rly_response_t *again = on(&relay_b, &s, "GET", v, 0);
            RLY_EXPECT(again, 200, v);
            RLY_EXPECT_STR(rly_jstr(rly_json(again), "code"), code);
        } else {
            fail_msg("the waiting pickup across the restart: %ld %s %.300s", res[0].status, res[0].error, res[0].body);
        }
        print_message("  %s: waiting pickup across a restart: %s at %.2f s\n", v == RLY_H2 ? "h2" : "http/1.1", outcome,
                      res[0].done_at);

        /* Redis dies under the waiting pickup and stays away past its wait: 503 or 202, on time */
        rly_session_t s2;
        rly_create_ok(&relay_a, v, &s2);
        const char *hdrs2[] = {rly_strf("Authorization: Bearer %s", s2.poll_token), "Prefer: wait=3", NULL};
        rly_request_t q2 = {.url = rly_strf("%s/v1/sessions/%s", relay_b.public_url, s2.session),
                            .headers = hdrs2,
                            .version = v,
                            .timeout_ms = 10000};
        res = rly_responses(1);
        rly_http_multi(&q2, 1, res, 300, kill_redis, NULL);
        if (res[0].status != 503 && res[0].status != 202)
            fail_msg("a waiting pickup while Redis is down: expected 503 or 202, got %ld %s %.300s", res[0].status, res[0].error,
                     res[0].body);
        if (res[0].done_at > 4.5)
            fail_msg("a waiting pickup (wait=3) with Redis down answered after %.3f s", res[0].done_at);
        print_message("  %s: waiting pickup, Redis killed and away: %ld at %.2f s\n", v == RLY_H2 ? "h2" : "http/1.1",
                      res[0].status, res[0].done_at);
        expect_running(&relay_a, "A");
        expect_running(&relay_b, "B");
        if (rly_redis_launch(&redis) != 0)
            fail_msg("redis-server did not restart");
        expect_ready(8000, "after Redis came back under a waiting pickup");
        /* /readyz does not cover the subscriber connections (see test_ready_means_pickups_can_wait): give them their
         * backoff's worth of time, so the next round starts with every connection up */
        sleep_ms(2500);
    }
}

static char *write_secret(const char *name, const char *text)
{
    char *path = rly_strf("%s/%s", rly_tmpdir(), name);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        fail_msg("cannot write %s", path);
    chmod(path, 0600);
    fprintf(f, "%s\n", text);
    fclose(f);
    return path;
}

static void expect_secret_absent(rly_relay_t *r, const char *name, const char *secret)
{
    size_t len;
    char *path = rly_strf("/proc/%d/cmdline", (int)r->pid);
    char *cmdline = rly_read_file(path, &len);
    if (cmdline == NULL)
        fail_msg("cannot read %s", path);
    if (memmem(cmdline, len, secret, strlen(secret)) != NULL)
        fail_msg("relay %s's command line (ps) shows the Redis password", name);
    char *out = rly_relay_stdout(r, &len);
    if (memmem(out, len, secret, strlen(secret)) != NULL)
        fail_msg("relay %s's stdout shows the Redis password", name);
    char *err = rly_relay_stderr(r, &len);
    if (memmem(err, len, secret, strlen(secret)) != NULL)
        fail_msg("relay %s's stderr shows the Redis password", name);
}

/* (e) Redis with requirepass: the right password from a file works; a wrong one leaves the relay unready; neither leaks */
static void test_password(void **state)
{
    (void)state;
    char *pw = rly_token("pw-"), *wrong = rly_token("wrong-");
    if (rly_redis_start(&redis, pw) != 0)
        fail_msg("redis-server did not start");
    /* Redis does refuse without the password */
    rly_redis_t anon = redis;
    anon.password[0] = '\0';
    redisContext *c = rly_redis_connect(&anon, 2000);
    if (c == NULL)
        fail_msg("cannot connect to Redis");
    redisReply *rep = redisCommand(c, "PING");
    int refused = rep != NULL && rep->type == REDIS_REPLY_ERROR;
    freeReplyObject(rep);
    redisFree(c);
    if (!refused)
        fail_msg("Redis answered PING without the password");

    const char *const good[] = {"--redis-password-file", write_secret("redis-password", pw), NULL};
    const char *const bad[] = {"--redis-password-file", write_secret("redis-password-wrong", wrong), NULL};
    start_relay(&relay_a, redis.url, good);
    start_relay(&relay_b, redis.url, good);
    start_relay(&relay_c, redis.url, bad);
    if (rly_wait_admin(&relay_a, "/readyz", 200, 5000) < 0 || rly_wait_admin(&relay_b, "/readyz", 200, 5000) < 0)
        fail_msg("the relays with the right password did not get ready");
    rly_flow(&relay_a, &relay_b, &relay_a, RLY_H2, 200);
    rly_flow(&relay_b, &relay_a, &relay_a, RLY_H1, 200);

    /* the wrong password: never ready, 503s, alive */
    for (int i = 0; i < 5; i++) {
        long st = rly_admin_status(&relay_c, "/readyz");
        if (st != 503)
            fail_msg("/readyz with a wrong Redis password: %ld (expected 503)", st);
    }
    expect_503_json(create(&relay_c, RLY_H2), RLY_H2, 1.5, "create with a wrong Redis password");
    rly_session_t s;
    rly_create_ok(&relay_a, RLY_H1, &s);
    expect_503_page(callback(&relay_c, &s, rly_token("code-"), RLY_H1), RLY_H1, 1.5, "callback with a wrong Redis password");
    expect_503_json(on(&relay_c, &s, "GET", RLY_H1, 2), RLY_H1, 1.5, "pickup with a wrong Redis password");
    if (rly_admin_status(&relay_c, "/healthz") != 200)
        fail_msg("/healthz is not 200 with a wrong Redis password");
    expect_running(&relay_c, "C");

    expect_secret_absent(&relay_a, "A", pw);
    expect_secret_absent(&relay_b, "B", pw);
    expect_secret_absent(&relay_c, "C", wrong);
    expect_secret_absent(&relay_c, "C", pw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_kill9_mid_flow, teardown),
        cmocka_unit_test_teardown(test_start_without_redis, teardown),
        cmocka_unit_test_teardown(test_client_pause, teardown),
        cmocka_unit_test_teardown(test_waiting_pickup_across_restart, teardown),
        cmocka_unit_test_teardown(test_password, teardown),
        cmocka_unit_test_teardown(test_ready_means_pickups_can_wait, teardown),
    };
    const char *only = getenv("RLY_TEST_FILTER"); /* e.g. RLY_TEST_FILTER=test_kill9_mid_flow, to repeat one test */
    if (only != NULL && *only != '\0')
        cmocka_set_test_filter(only);
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
