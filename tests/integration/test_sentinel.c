/* test_sentinel.c: two relays find the primary through 3 Sentinels and follow a failover after the primary is killed */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "harness_redis.h"

static rly_sentinels_t sentinels;
static rly_relay_t relay_a, relay_b;
static double setup_s;

static int group_setup(void **state)
{
    (void)state;
    char keys[256];
    double t0 = rly_now();
    if (rly_test_keygen(keys, sizeof(keys)) != 0 || rly_sentinels_start(&sentinels) != 0)
        return -1;
    const char *const extra[] = {
        "--redis-sentinel", sentinels.addrs, "--redis-master", RLY_SENTINEL_MASTER, "--rate-limit", "0", NULL};
    if (rly_relay_start_keys(&relay_a, keys, extra) != 0 || rly_relay_start_keys(&relay_b, keys, extra) != 0)
        return -1;
    if (rly_wait_admin(&relay_a, "/readyz", 200, 8000) < 0 || rly_wait_admin(&relay_b, "/readyz", 200, 8000) < 0) {
        fputs("the relays did not get ready through the Sentinels\n", stderr);
        return -1;
    }
    setup_s = rly_now() - t0;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = rly_relay_finish(&relay_a);
    rc |= rly_relay_finish(&relay_b);
    rly_sentinels_cleanup(&sentinels);
    return rc;
}

static rly_response_t *pickup_on(const rly_relay_t *r, const rly_session_t *s, int v)
{
    const char *hdrs[] = {rly_strf("Authorization: Bearer %s", s->poll_token), NULL};
    rly_request_t q = {.url = rly_strf("%s/v1/sessions/%s", r->public_url, s->session), .headers = hdrs, .version = v};
    return rly_do(&q);
}

/* 1 if the Redis at r holds the session's key */
static int holds(const rly_redis_t *r, const rly_session_t *s)
{
    redisReply *rep = rly_redis_command(r, "EXISTS %s", rly_redis_key_of(s->session));
    return rep != NULL && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
}

static void test_failover(void **state)
{
    (void)state;
    if (rly_sentinels_primary(&sentinels, 0) != sentinels.primary.port)
        fail_msg("Sentinel 1 does not name the primary");
    /* flows through the Sentinel-named primary, across replicas */
    rly_flow(&relay_a, &relay_b, &relay_a, RLY_H2, 200);
    rly_flow(&relay_b, &relay_a, &relay_a, RLY_H1, 200);

    /* a completed session, replicated before the primary dies, survives the failover */
    rly_session_t kept;
    rly_create_ok(&relay_a, RLY_H2, &kept);
    char *code = rly_token("code-");
    RLY_EXPECT(rly_callback(&relay_b, RLY_H1, NULL, rly_query("code", code, "state", kept.state, NULL)), 303, RLY_H1);
    if (!holds(&sentinels.primary, &kept))
        fail_msg("the session is not on the primary");
    double deadline = rly_now() + 5.0;
    while (!holds(&sentinels.replica, &kept) && rly_now() < deadline)
        nanosleep(&(struct timespec){0, 20000000L}, NULL);
    if (!holds(&sentinels.replica, &kept))
        fail_msg("the session did not reach the replica within 5 s");

    double t0 = rly_now();
    rly_redis_kill(&sentinels.primary);
    double down_a = rly_wait_admin(&relay_a, "/readyz", 503, 5000), down_b = rly_wait_admin(&relay_b, "/readyz", 503, 5000);
    if (down_a < 0 || down_b < 0)
        fail_msg("/readyz did not turn 503 after the primary was killed (A %.3f s, B %.3f s)", down_a, down_b);
    double promoted = rly_sentinels_wait_primary(&sentinels, sentinels.replica.port, 15000);
    if (promoted < 0)
        fail_msg("the Sentinels did not promote the replica within 15 s");
    promoted = rly_now() - t0;
    double ra = rly_wait_admin(&relay_a, "/readyz", 200, 10000), rb = rly_wait_admin(&relay_b, "/readyz", 200, 10000);
    double ready = rly_now() - t0;
    if (ra < 0 || rb < 0)
        fail_msg("the relays did not follow the new primary within 10 s of the promotion (A %.3f s, B %.3f s)", ra, rb);
    if (rly_admin_status(&relay_a, "/healthz") != 200 || rly_admin_status(&relay_b, "/healthz") != 200)
        fail_msg("/healthz is not 200 after the failover");

    /* new flows complete across both replicas, on the new primary */
    rly_session_t fresh;
    rly_create_ok(&relay_b, RLY_H2, &fresh);
    if (!holds(&sentinels.replica, &fresh))
        fail_msg("a session created after the failover is not on the promoted replica");
    double lat = 0;
    for (int mask = 0; mask < 8; mask++) {
        const rly_relay_t *c = mask & 4 ? &relay_b : &relay_a, *p = mask & 2 ? &relay_b : &relay_a,
                          *b = mask & 1 ? &relay_b : &relay_a;
        double l = rly_flow(c, p, b, mask % 2 ? RLY_H1 : RLY_H2, 200);
        if (l > lat)
            lat = l;
    }
    /* the result written before the failover is still there */
    rly_response_t *res = pickup_on(&relay_b, &kept, RLY_H2);
    RLY_EXPECT(res, 200, RLY_H2);
    RLY_EXPECT_STR(rly_jstr(rly_json(res), "code"), code);
    if (!rly_relay_running(&relay_a) || !rly_relay_running(&relay_b))
        fail_msg("a relay exited during the failover");
    print_message("  set-up %.1f s; after kill -9 of the primary: unready A %.2f s B %.2f s, promoted at %.2f s, both relays "
                  "ready at %.2f s; 8 flows after, slowest rendezvous %.0f ms\n",
                  setup_s, down_a, down_b, promoted, ready, lat * 1000.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLY_TEST(test_failover),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
