/* test_sessions_max.c: --sessions-max on the real relay: a flood stops at the limit with 503 + Retry-After while flows
 * already started complete; the limit is shared by two replicas on one Redis; Redis out of memory is a 503 too */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "harness_redis.h"

#define MAX 20
#define MAX_TEXT "20"
#define FLOOD 60 /* creations sent at once, well past the limit */
#define MINIMAL "{\"authorization_server\": \"" RLY_TEST_AS "\", \"return_uri\": \"" RLY_TEST_RETURN "\"}"
#define FULL_SERIES "authrelay_events_total{event=\"session_create\",outcome=\"full\",as=\"unlisted\"}"
#define UNAVAILABLE_SERIES "authrelay_events_total{event=\"session_create\",outcome=\"unavailable\",as=\"unlisted\"}"

static rly_redis_t redis, small;     /* small: the one driven to maxmemory */
static rly_relay_t relay_a, relay_b; /* on redis */
static rly_relay_t relay_m;          /* on its memory store */
static rly_relay_t relay_s;          /* on small, with the default --sessions-max */

static int group_setup(void **state)
{
    (void)state;
    char keys[256];
    if (rly_test_keygen(keys, sizeof(keys)) != 0 || rly_redis_start(&redis, NULL) != 0 || rly_redis_start(&small, NULL) != 0)
        return -1;
    const char *const on_redis[] = {"--redis", redis.url, "--rate-limit", "0", "--sessions-max", MAX_TEXT, NULL};
    const char *const on_memory[] = {"--rate-limit", "0", "--sessions-max", MAX_TEXT, NULL};
    const char *const on_small[] = {"--redis", small.url, "--rate-limit", "0", NULL};
    if (rly_relay_start_keys(&relay_a, keys, on_redis) != 0 || rly_relay_start_keys(&relay_b, keys, on_redis) != 0 ||
        rly_relay_start_keys(&relay_m, keys, on_memory) != 0 || rly_relay_start_keys(&relay_s, keys, on_small) != 0)
        return -1;
    if (rly_wait_admin(&relay_a, "/readyz", 200, 5000) < 0 || rly_wait_admin(&relay_b, "/readyz", 200, 5000) < 0 ||
        rly_wait_admin(&relay_s, "/readyz", 200, 5000) < 0) {
        fputs("the relays did not get ready on Redis\n", stderr);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = rly_relay_finish(&relay_a);
    rc |= rly_relay_finish(&relay_b);
    rc |= rly_relay_finish(&relay_m);
    rc |= rly_relay_finish(&relay_s);
    rly_redis_cleanup(&redis);
    rly_redis_cleanup(&small);
    return rc;
}

/* fails the test unless resp is a 503 with the protocol's error body and a Retry-After in seconds */
static void expect_503(const rly_response_t *resp)
{
    RLY_EXPECT(resp, 503, 0);
    if (!rly_is_error_body(resp, "temporarily_unavailable"))
        fail_msg("the 503 body is not the protocol's error body: %.300s", resp->body);
    const char *ra = rly_header(resp, "Retry-After");
    if (ra == NULL || *ra == '\0' || strspn(ra, "0123456789") != strlen(ra) || strtol(ra, NULL, 10) < 1)
        fail_msg("a 503 without a Retry-After in seconds");
}

/* DELETE every session a 201 among the first n responses described */
static void delete_created(const rly_response_t *res, size_t n, int v)
{
    for (size_t i = 0; i < n; i++) {
        if (res[i].status != 201)
            continue;
        json_object *o = rly_json(&res[i]);
        rly_session_t s = {0};
        const char *url = rly_jstr(o, "poll_url"), *token = rly_jstr(o, "poll_token");
        assert_non_null(url);
        assert_non_null(token);
        snprintf(s.poll_url, sizeof(s.poll_url), "%s", url);
        snprintf(s.poll_token, sizeof(s.poll_token), "%s", token);
        RLY_EXPECT(rly_delete(&s, v), 204, 0);
    }
}

/*
 * FLOOD creations at once, round robin over the relays given, while the flow s (created on relays[0] before) goes on:
 * its pickup waits from the start, its callback lands on the last relay half way through the flood. Every creation is
 * a 201 or the limit's 503 (counted per relay in full_on); the flow completes with its code. *out receives the FLOOD
 * responses (arena-owned: delete_created removes the sessions). Returns how many were created.
 */
static int flood(const rly_relay_t *const *relays, size_t nrelays, const rly_session_t *s, int v, int *full_on,
                 rly_response_t **out)
{
    enum { EXTRA = 2 };
    rly_request_t q[FLOOD + EXTRA];
    rly_response_t *res = rly_responses(FLOOD + EXTRA);
    static const char *const json[] = {"Content-Type: application/json", NULL};
    const char *code = rly_token("code-");
    for (size_t i = 0; i < FLOOD; i++)
        q[i] = (rly_request_t){.method = "POST",
                               .url = rly_url(relays[i % nrelays], "/v1/sessions"),
                               .headers = json,
                               .body = MINIMAL,
                               .body_len = strlen(MINIMAL),
                               .version = v,
                               .start_ms = (long)(i * 5)};
    q[FLOOD] = (rly_request_t){.url = rly_url(relays[nrelays - 1], rly_strf("/qorus-oauth2-redirect?%s",
                                                                            rly_query("code", code, "state", s->state, NULL))),
                               .version = v,
                               .start_ms = FLOOD * 5 / 2};
    const char *bearer[] = {rly_strf("Authorization: Bearer %s", s->poll_token), "Prefer: wait=10", NULL};
    q[FLOOD + 1] = (rly_request_t){.url = s->poll_url, .headers = bearer, .version = v, .timeout_ms = 20000};
    if (rly_http_multi(q, FLOOD + EXTRA, res, 0, NULL, NULL) != 0)
        fail_msg("the flood did not finish");

    int created = 0;
    for (size_t i = 0; i < FLOOD; i++) {
        if (res[i].status == 201) {
            created++;
            continue;
        }
        expect_503(&res[i]);
        full_on[i % nrelays]++;
    }
    RLY_EXPECT(&res[FLOOD], 303, 0);
    RLY_EXPECT(&res[FLOOD + 1], 200, 0);
    RLY_EXPECT_STR(rly_jstr(rly_json(&res[FLOOD + 1]), "code"), code);
    *out = res;
    return created;
}

/* one relay on its memory store: the flood stops at the limit, the flow created before completes; its acknowledgement
 * makes room for exactly one more */
static void test_memory(void **state)
{
    int v = rly_version(state), full[1] = {0};
    const rly_relay_t *relays[] = {&relay_m};
    rly_session_t s, more, refused;
    rly_response_t *res;
    rly_create_ok(&relay_m, v, &s);
    int created = flood(relays, 1, &s, v, full, &res);
    print_message("  memory store over %s: %d of %d creations went through at --sessions-max %d with one flow there, %d got 503\n",
                  v == RLY_H2 ? "h2" : "http/1.1", created, FLOOD, MAX, full[0]);
    assert_int_equal(created, MAX - 1);
    assert_int_equal(full[0], FLOOD - (MAX - 1));
    /* the flow's session still counts (read: 60 s left) until it is acknowledged */
    expect_503(rly_create(&relay_m, v, MINIMAL, &refused));
    RLY_EXPECT(rly_delete(&s, v), 204, 0);
    rly_create_ok(&relay_m, v, &more);
    expect_503(rly_create(&relay_m, v, MINIMAL, &refused));
    RLY_EXPECT(rly_delete(&more, v), 204, 0);
    delete_created(res, FLOOD, v);
    assert_true(rly_metric(&relay_m, FULL_SERIES) >= FLOOD - (MAX - 1) + 2);
}

/* two replicas on one Redis share the limit: the flood over both stops at MAX in all, each refuses some; a flow
 * created on A completes through B's callback and A's pickup meanwhile */
static void test_redis_shared(void **state)
{
    int v = rly_version(state), full[2] = {0, 0};
    const rly_relay_t *relays[] = {&relay_a, &relay_b};
    rly_session_t s, more, refused;
    rly_response_t *res;
    rly_create_ok(&relay_a, v, &s);
    int created = flood(relays, 2, &s, v, full, &res);
    print_message("  two replicas on one Redis over %s: %d of %d creations went through at --sessions-max %d with one flow "
                  "there, 503 from A %d, from B %d\n",
                  v == RLY_H2 ? "h2" : "http/1.1", created, FLOOD, MAX, full[0], full[1]);
    assert_int_equal(created, MAX - 1);
    assert_true(full[0] > 0 && full[1] > 0);
    expect_503(rly_create(&relay_b, v, MINIMAL, &refused));
    RLY_EXPECT(rly_delete(&s, v), 204, 0); /* acknowledged on A: room on B */
    rly_create_ok(&relay_b, v, &more);
    expect_503(rly_create(&relay_a, v, MINIMAL, &refused));
    RLY_EXPECT(rly_delete(&more, v), 204, 0);
    delete_created(res, FLOOD, v);
    assert_true(rly_metric(&relay_a, FULL_SERIES) >= 1 && rly_metric(&relay_b, FULL_SERIES) >= 1);
    /* the index holds only what is live: nothing now */
    redisReply *n = rly_redis_command(&redis, "ZCARD authrelay:sessions");
    assert_non_null(n);
    assert_int_equal(n->type, REDIS_REPLY_INTEGER);
    assert_int_equal(n->integer, 0);
}

/* used_memory of a Redis, bytes (-1 if unknown) */
static long long used_memory(const rly_redis_t *r)
{
    redisReply *info = rly_redis_command(r, "INFO memory");
    const char *p = info != NULL && info->type == REDIS_REPLY_STRING ? info->str : NULL;
    if (p == NULL || (p = strstr(p, "\nused_memory:")) == NULL)
        return -1;
    return strtoll(p + strlen("\nused_memory:"), NULL, 10);
}

/* Redis at maxmemory with noeviction (what the deploy helper ships) refuses writes with OOM: creation is a 503 with
 * Retry-After, never a 500 or a crash; the relay stays ready, an earlier flow still reads its session; room again,
 * creation works */
static void test_redis_oom(void **state)
{
    int v = rly_version(state);
    rly_session_t s, t;
    rly_create_ok(&relay_s, v, &s);
    long long used = used_memory(&small);
    assert_true(used > 0);
    RLY_EXPECT_STR(rly_redis_command(&small, "CONFIG SET maxmemory-policy noeviction")->str, "OK");
    RLY_EXPECT_STR(rly_redis_command(&small, "CONFIG SET maxmemory %lld", used + 200 * 1024)->str, "OK");
    int created = 0, refused = 0;
    for (int i = 0; i < 5000 && refused == 0; i++) {
        rly_response_t *r = rly_create(&relay_s, v, MINIMAL, &t);
        if (r->status == 201) {
            created++;
            continue;
        }
        expect_503(r);
        refused++;
    }
    print_message("  Redis at maxmemory (used_memory + 200 KiB, noeviction) over %s: %d sessions created, then 503\n",
                  v == RLY_H2 ? "h2" : "http/1.1", created);
    assert_true(created > 0 && refused == 1);
    for (int i = 0; i < 5; i++)
        expect_503(rly_create(&relay_s, v, MINIMAL, &t));
    assert_true(rly_metric(&relay_s, UNAVAILABLE_SERIES) >= 6);
    assert_true(rly_relay_running(&relay_s));
    RLY_EXPECT(rly_pickup(&s, v, 0), 202, 0); /* reads go on */
    assert_int_equal(rly_admin_status(&relay_s, "/readyz"), 200);

    RLY_EXPECT_STR(rly_redis_command(&small, "CONFIG SET maxmemory 0")->str, "OK");
    rly_create_ok(&relay_s, v, &t);
    RLY_EXPECT_STR(rly_redis_command(&small, "FLUSHALL")->str, "OK");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLY_TEST_BOTH(test_memory),
        RLY_TEST_BOTH(test_redis_shared),
        RLY_TEST_BOTH(test_redis_oom),
    };
    return cmocka_run_group_tests_name("sessions_max", tests, group_setup, group_teardown);
}
