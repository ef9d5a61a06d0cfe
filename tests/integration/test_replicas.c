/* test_replicas.c: two relays on one Redis and one key file: any replica serves any step, wake-ups cross replicas */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bound.h"
#include "harness_redis.h"

#define FLOWS 300

static rly_redis_t redis;
static rly_relay_t relay_a, relay_b;

static int group_setup(void **state)
{
    (void)state;
    char keys[256];
    if (rly_test_keygen(keys, sizeof(keys)) != 0 || rly_redis_start(&redis, NULL) != 0)
        return -1;
    const char *const extra[] = {"--redis", redis.url, "--rate-limit", "0", NULL};
    if (rly_relay_start_keys(&relay_a, keys, extra) != 0 || rly_relay_start_keys(&relay_b, keys, extra) != 0)
        return -1;
    if (rly_wait_admin(&relay_a, "/readyz", 200, 5000) < 0 || rly_wait_admin(&relay_b, "/readyz", 200, 5000) < 0) {
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
    rly_redis_cleanup(&redis);
    return rc;
}

static const rly_relay_t *pick(int b)
{
    return b ? &relay_b : &relay_a;
}

static const char *name(const rly_relay_t *r)
{
    return r == &relay_a ? "A" : "B";
}

/* method on the session's URL at relay r (not at the relay that created it), with the bearer */
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

/* created on A, waiting on B, callback on A: B answers as soon as the callback has landed */
static void test_rendezvous_is_quick(void **state)
{
    (void)state;
    for (int v = RLY_H1; v <= RLY_H2; v++) {
        double worst = 0;
        for (int i = 0; i < 3; i++) {
            double lat = rly_flow(&relay_a, &relay_b, &relay_a, v, 500);
            if (lat > worst)
                worst = lat;
        }
        print_message("  rendezvous A->B over %s: slowest of 3 answered %.1f ms after the callback was sent\n",
                      v == RLY_H2 ? "h2" : "http/1.1", worst * 1000.0);
        if (worst > 0.5)
            fail_msg("the pickup on B answered %.3f s after the callback to A was sent (expected well under 1 s)", worst);
    }
}

/* every (create, pickup-wait, callback) over {A, B} */
static void test_every_permutation(void **state)
{
    int v = rly_version(state);
    double worst = 0;
    for (int mask = 0; mask < 8; mask++) {
        const rly_relay_t *c = pick(mask & 4), *p = pick(mask & 2), *b = pick(mask & 1);
        double lat = rly_flow(c, p, b, v, 250);
        if (lat > 0.5)
            fail_msg("create %s, pickup %s, callback %s: the pickup answered %.3f s after the callback was sent", name(c), name(p),
                     name(b), lat);
        if (lat > worst)
            worst = lat;
    }
    print_message("  8 permutations: slowest pickup answered %.1f ms after its callback was sent\n", worst * 1000.0);
}

/* a DELETE on one replica ends the session for the other: its callback gets 410 and its pickup 404 */
static void test_delete_on_other_replica(void **state)
{
    int v = rly_version(state);
    for (int first = 0; first < 2; first++) {
        const rly_relay_t *mine = pick(first), *other = pick(!first);
        rly_session_t s;
        rly_create_ok(mine, v, &s);
        RLY_EXPECT(on(mine, &s, "GET", v, 0), 202, v);
        RLY_EXPECT(on(other, &s, "DELETE", v, -1), 204, v);
        rly_response_t *cb = rly_callback(mine, v, NULL, rly_query("code", rly_token("code-"), "state", s.state, NULL));
        RLY_EXPECT(cb, 410, v);
        RLY_EXPECT(on(mine, &s, "GET", v, 0), 404, v);
        RLY_EXPECT(on(other, &s, "DELETE", v, -1), 404, v);
    }
}

/* the first result stands whichever replica a second callback lands on; a re-read on either replica gets it again */
static void test_first_writer_wins_across_replicas(void **state)
{
    int v = rly_version(state);
    rly_session_t s;
    rly_create_ok(&relay_a, v, &s);
    char *code1 = rly_token("code-"), *code2 = rly_token("code-");
    RLY_EXPECT(rly_callback(&relay_b, v, NULL, rly_query("code", code1, "state", s.state, NULL)), 303, v);
    RLY_EXPECT(rly_callback(&relay_a, v, NULL, rly_query("code", code2, "state", s.state, NULL)), 409, v);
    for (int i = 0; i < 2; i++) {
        rly_response_t *res = on(pick(i), &s, "GET", v, 0);
        RLY_EXPECT(res, 200, v);
        RLY_EXPECT_STR(rly_jstr(rly_json(res), "code"), code1);
    }
    RLY_EXPECT(on(&relay_b, &s, "DELETE", v, -1), 204, v);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* hundreds of concurrent flows over both replicas, each pickup waiting on the replica its callback does not reach */
static void test_concurrent_flows(void **state)
{
    (void)state;
    static const char *const ctype[] = {"Content-Type: application/json", NULL};
    static const char body[] = "{\"authorization_server\": \"" RLY_TEST_AS "\", \"return_uri\": \"" RLY_TEST_RETURN "\"}";
    rly_session_t *s = rly_keep(calloc(FLOWS, sizeof(*s)));
    char **codes = rly_keep(calloc(FLOWS, sizeof(*codes)));
    int *create_on = rly_keep(calloc(FLOWS, sizeof(int))), *wait_on = rly_keep(calloc(FLOWS, sizeof(int)));
    double t0 = rly_now();

    /* the sessions, created half on A and half on B */
    rly_request_t *q = rly_keep(calloc(2 * FLOWS, sizeof(*q)));
    for (size_t i = 0; i < FLOWS; i++) {
        create_on[i] = (int)(i % 2);
        wait_on[i] = (int)((i / 2) % 2);
        q[i] = (rly_request_t){.method = "POST",
                               .url = rly_url(pick(create_on[i]), "/v1/sessions"),
                               .headers = ctype,
                               .body = body,
                               .body_len = strlen(body),
                               .version = i % 3 == 0 ? RLY_H1 : RLY_H2,
                               .pipewait = 1,
                               .start_ms = (long)(i / 2)};
    }
    rly_response_t *res = rly_responses(FLOWS);
    if (rly_http_multi(q, FLOWS, res, 0, NULL, NULL) != 0)
        fail_msg("the session creations did not all finish");
    for (size_t i = 0; i < FLOWS; i++) {
        RLY_EXPECT(&res[i], 201, 0);
        json_object *o = rly_json(&res[i]);
        snprintf(s[i].session, sizeof(s[i].session), "%s", rly_jstr(o, "session"));
        snprintf(s[i].state, sizeof(s[i].state), "%s", rly_jstr(o, "state"));
        snprintf(s[i].poll_token, sizeof(s[i].poll_token), "%s", rly_jstr(o, "poll_token"));
        codes[i] = rly_token(rly_strf("code-%zu-", i));
    }
    double t_created = rly_now();

    /* every pickup waits first; the callbacks arrive later on the other replica */
    memset(q, 0, 2 * FLOWS * sizeof(*q));
    for (size_t i = 0; i < FLOWS; i++) {
        const char **hdrs = rly_keep(calloc(3, sizeof(*hdrs)));
        hdrs[0] = rly_strf("Authorization: Bearer %s", s[i].poll_token);
        hdrs[1] = "Prefer: wait=25";
        q[i] = (rly_request_t){.url = rly_strf("%s/v1/sessions/%s", pick(wait_on[i])->public_url, s[i].session),
                               .headers = hdrs,
                               .version = i % 3 == 1 ? RLY_H1 : RLY_H2,
                               .pipewait = 1,
                               .timeout_ms = 35000,
                               .start_ms = (long)(i * 2)};
        q[FLOWS + i] = (rly_request_t){.url = rly_strf("%s/qorus-oauth2-redirect?%s", pick(!wait_on[i])->public_url,
                                                       rly_query("code", codes[i], "state", s[i].state, NULL)),
                                       .version = i % 4 == 0 ? RLY_H1 : RLY_H2,
                                       .timeout_ms = 20000,
                                       .start_ms = 2500 + (long)(i * 3)};
    }
    res = rly_responses(2 * FLOWS);
    if (rly_http_multi(q, 2 * FLOWS, res, 0, NULL, NULL) != 0)
        fail_msg("the pickups and callbacks did not all finish");
    double worst = 0, early = 0;
    for (size_t i = 0; i < FLOWS; i++) {
        rly_response_t *pk = &res[i], *cb = &res[FLOWS + i];
        if (cb->status != 303)
            fail_msg("flow %zu: callback on %s: %ld %s %.200s", i, name(pick(!wait_on[i])), cb->status, cb->error, cb->body);
        if (pk->status != 200)
            fail_msg("flow %zu: pickup on %s: %ld %s %.200s", i, name(pick(wait_on[i])), pk->status, pk->error, pk->body);
        json_object *o = rly_json(pk);
        const char *code = rly_jstr(o, "code"), *st = rly_jstr(o, "state");
        if (code == NULL || strcmp(code, codes[i]) != 0 || st == NULL || strcmp(st, s[i].state) != 0)
            fail_msg("flow %zu: crossed result: got code %s state %s, expected code %s", i, code ? code : "(none)",
                     st ? st : "(none)", codes[i]);
        double lat = pk->done_at - cb->done_at;
        if (lat > worst)
            worst = lat;
        if (-lat > early)
            early = -lat;
    }
    if (worst > 2.0)
        fail_msg("a pickup answered %.3f s after its callback", worst);
    /* the codes are distinct, so each pickup got one code that nobody else got */
    char **sorted = rly_keep(calloc(FLOWS, sizeof(*sorted)));
    memcpy(sorted, codes, FLOWS * sizeof(*sorted));
    qsort(sorted, FLOWS, sizeof(*sorted), cmp_str);
    for (size_t i = 1; i < FLOWS; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0)
            fail_msg("two flows share the code %s", sorted[i]);
    double t_done = rly_now();

    /* a second read on the replica that answered none of the flow's steps so far gives the same result */
    size_t nre = 0;
    memset(q, 0, 2 * FLOWS * sizeof(*q));
    for (size_t i = 0; i < FLOWS; i += 7) {
        const char **hdrs = rly_keep(calloc(2, sizeof(*hdrs)));
        hdrs[0] = rly_strf("Authorization: Bearer %s", s[i].poll_token);
        q[nre++] = (rly_request_t){.url = rly_strf("%s/v1/sessions/%s", pick(!wait_on[i])->public_url, s[i].session),
                                   .headers = hdrs,
                                   .version = RLY_H2,
                                   .pipewait = 1};
    }
    res = rly_responses(nre);
    if (rly_http_multi(q, nre, res, 0, NULL, NULL) != 0)
        fail_msg("the re-reads did not all finish");
    for (size_t i = 0, j = 0; i < FLOWS; i += 7, j++) {
        RLY_EXPECT(&res[j], 200, RLY_H2);
        RLY_EXPECT_STR(rly_jstr(rly_json(&res[j]), "code"), codes[i]);
    }
    print_message("  %d flows: created in %.2f s, all rendezvous in %.2f s; slowest pickup %.1f ms after its callback (earliest "
                  "%.1f ms before the callback's response)\n",
                  FLOWS, t_created - t0, t_done - t_created, worst * 1000.0, early * 1000.0);
}

/* callbacks that land while the pickups are still being set up (first read, subscription, re-read): every pickup
 * gets its code, and the relay survives (a wake-up during a store read once started a second read of one pickup) */
static void test_callback_races_the_pickup(void **state)
{
    (void)state;
    enum { N = 200 };
    rly_session_t *s = rly_keep(calloc(N, sizeof(*s)));
    char **codes = rly_keep(calloc(N, sizeof(*codes)));
    for (size_t i = 0; i < N; i++) {
        rly_create_ok(pick((int)(i % 2)), RLY_H2, &s[i]);
        codes[i] = rly_token(rly_strf("race-%zu-", i));
    }
    rly_request_t *q = rly_keep(calloc(2 * N, sizeof(*q)));
    for (size_t i = 0; i < N; i++) {
        const char **hdrs = rly_keep(calloc(3, sizeof(*hdrs)));
        hdrs[0] = rly_strf("Authorization: Bearer %s", s[i].poll_token);
        hdrs[1] = "Prefer: wait=10";
        int wait_on = (int)((i / 2) % 2);
        q[i] = (rly_request_t){.url = rly_strf("%s/v1/sessions/%s", pick(wait_on)->public_url, s[i].session),
                               .headers = hdrs,
                               .version = RLY_H2,
                               .pipewait = 1,
                               .timeout_ms = 20000,
                               .start_ms = (long)i};
        q[N + i] = (rly_request_t){.url = rly_strf("%s/qorus-oauth2-redirect?%s", pick((int)(i % 3 == 0) ^ wait_on)->public_url,
                                                   rly_query("code", codes[i], "state", s[i].state, NULL)),
                                   .version = RLY_H2,
                                   .pipewait = 1,
                                   .timeout_ms = 20000,
                                   .start_ms = (long)i + (long)(i % 4)};
    }
    rly_response_t *res = rly_responses(2 * N);
    if (rly_http_multi(q, 2 * N, res, 0, NULL, NULL) != 0)
        fail_msg("the pickups and callbacks did not all finish");
    for (size_t i = 0; i < N; i++) {
        if (res[N + i].status != 303)
            fail_msg("flow %zu: callback: %ld %s", i, res[N + i].status, res[N + i].error);
        if (res[i].status != 200)
            fail_msg("flow %zu: pickup: %ld %s %.200s", i, res[i].status, res[i].error, res[i].body);
        const char *code = rly_jstr(rly_json(&res[i]), "code");
        if (code == NULL || strcmp(code, codes[i]) != 0)
            fail_msg("flow %zu: got code %s, expected %s", i, code ? code : "(none)", codes[i]);
    }
    if (!rly_relay_running(&relay_a) || !rly_relay_running(&relay_b))
        fail_msg("a relay died");
}

/* 1.1: every step on either replica: the start page on B, Continue on A, the callback on B, the pickup on A */
static void test_bound_flow_across_replicas(void **state)
{
    int v = rly_version(state);
    rly_bound_t b;
    rly_bound_create_ok(&relay_a, v, NULL, &b);
    snprintf(b.start_url, sizeof(b.start_url), "%s/v1/start?t=%s", relay_b.public_url, b.token);
    RLY_EXPECT(rly_bound_start_page(&relay_b, v, &b), 200, v);
    RLY_EXPECT(rly_bound_confirm(&relay_a, v, &b, "continue"), 303, v);
    /* the token is consumed for both */
    RLY_EXPECT(rly_bound_start_page(&relay_b, v, &b), 410, v);
    char *code = rly_token("code-");
    RLY_EXPECT(rly_bound_callback(&relay_b, v, &b, rly_query("code", code, "state", b.state, NULL), NULL), 403, v);
    RLY_EXPECT(rly_bound_callback(&relay_b, v, &b, rly_query("code", code, "state", b.state, NULL), b.cookie), 200, v);
    rly_response_t *res = on(&relay_a, &b.s, "GET", v, 0);
    RLY_EXPECT(res, 200, v);
    json_object *o = rly_bound_open(&b, res);
    assert_non_null(o);
    RLY_EXPECT_STR(rly_jstr(o, "code"), code);
}

/* 1.1: the first valid Continue consumes the start token, whichever replica serves it: 16 at once over both, one 303 */
static void test_start_token_single_use_across_replicas(void **state)
{
    (void)state;
    rly_bound_t b;
    rly_bound_create_ok(&relay_a, RLY_H2, NULL, &b);
    RLY_EXPECT(rly_bound_start_page(&relay_a, RLY_H2, &b), 200, RLY_H2);
    const rly_relay_t *relays[] = {&relay_a, &relay_b};
    int ok, gone;
    rly_bound_confirm_race(relays, 2, &b, 16, &ok, &gone);
    assert_int_equal(ok, 1);
    assert_int_equal(gone, 15);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLY_TEST(test_rendezvous_is_quick),
        RLY_TEST_BOTH(test_every_permutation),
        RLY_TEST_BOTH(test_delete_on_other_replica),
        RLY_TEST_BOTH(test_first_writer_wins_across_replicas),
        RLY_TEST(test_concurrent_flows),
        RLY_TEST(test_callback_races_the_pickup),
        RLY_TEST_BOTH(test_bound_flow_across_replicas),
        RLY_TEST(test_start_token_single_use_across_replicas),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
