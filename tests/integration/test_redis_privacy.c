/* test_redis_privacy.c: what two replicas put into Redis and their logs: no plaintext secret, a TTL on every key */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "b64url.h"
#include "bind.h"
#include "bound.h"
#include "harness_redis.h"
#include "ids.h"
#include "seal.h"

#define TTL 120
#define KEY_PREFIX "authrelay:{"
#define KEY_LEN (sizeof(KEY_PREFIX) - 1 + 22 + 1)

enum { PENDING, COMPLETED, DENIED, SEALED, SEALED_READ, READ, WAITING, KINDS };
static const int per_kind[KINDS] = {
    [PENDING] = 6, [COMPLETED] = 6, [DENIED] = 3, [SEALED] = 4, [SEALED_READ] = 1, [READ] = 3, [WAITING] = 4};
#define FLOWS_MAX 80

typedef struct st_flow_t {
    int kind, side, version, read;
    rly_session_t s;
    char *key; /* its Redis key, from the store key (never the session id); malloc'ed: flows outlive a test's arena */
    char *code, *ret, *desc;
} flow_t;

/* where a needle must never appear */
enum { IN_STORE = 1, IN_LOG = 2, IN_STDERR = 4, IN_MONITOR = 8 };
typedef struct st_needle_t {
    char *p;
    size_t len;
    int where;
    const char *what;
} needle_t;

static rly_redis_t redis;
static rly_relay_t relay_a, relay_b;
static pid_t monitor_pid;
static char monitor_log[320];
static flow_t flows[FLOWS_MAX];
static size_t nflows;
static needle_t needles[FLOWS_MAX * 10 + 8];
static size_t nneedles;
static uint8_t seal_priv[32];
static char seal_pub[RLY_B64URL_ENCODED_LEN(32) + 1];

static void need(const void *p, size_t len, int where, const char *what)
{
    if (p == NULL || len == 0 || nneedles == sizeof(needles) / sizeof(needles[0]))
        return;
    needle_t *n = &needles[nneedles++];
    n->p = malloc(len);
    memcpy(n->p, p, len);
    n->len = len;
    n->where = where;
    n->what = what;
}

static void need_str(const char *s, int where, const char *what)
{
    if (s != NULL)
        need(s, strlen(s), where, what);
}

static const rly_relay_t *side(int b)
{
    return b ? &relay_b : &relay_a;
}

static int group_setup(void **state)
{
    (void)state;
    char keys[256];
    if (rly_test_keygen(keys, sizeof(keys)) != 0 || rly_redis_start(&redis, NULL) != 0)
        return -1;
    /* every command the relays send, as Redis sees it */
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)redis.port);
    snprintf(monitor_log, sizeof(monitor_log), "%s/monitor.log", redis.dir);
    char *argv[] = {"redis-cli", "-h", "127.0.0.1", "-p", port, "monitor", NULL};
    if ((monitor_pid = rly_bg_start(argv, monitor_log)) < 0)
        return -1;
    const char *const extra[] = {"--redis", redis.url, "--rate-limit", "0", "--log-level", "debug", NULL};
    if (rly_relay_start_keys(&relay_a, keys, extra) != 0 || rly_relay_start_keys(&relay_b, keys, extra) != 0)
        return -1;
    if (rly_wait_admin(&relay_a, "/readyz", 200, 5000) < 0 || rly_wait_admin(&relay_b, "/readyz", 200, 5000) < 0)
        return -1;
    uint8_t pub[32];
    if (rly_x25519_keypair(seal_priv, pub) != 0)
        return -1;
    rly_b64url_encode(seal_pub, pub, 32);
    need_str("127.0.0.1", IN_STORE | IN_LOG, "the client address");
    need_str(RLY_TEST_UA, IN_STORE | IN_LOG | IN_STDERR | IN_MONITOR, "the user agent");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = rly_relay_finish(&relay_a);
    rc |= rly_relay_finish(&relay_b);
    rly_bg_stop(monitor_pid);
    rly_redis_cleanup(&redis);
    for (size_t i = 0; i < nneedles; i++)
        free(needles[i].p);
    for (size_t i = 0; i < nflows; i++) {
        free(flows[i].code);
        free(flows[i].ret);
        free(flows[i].desc);
        free(flows[i].key);
    }
    return rc;
}

/* a new session of this kind on side, its secrets remembered as needles */
static flow_t *new_flow(int kind, int b, int v)
{
    flow_t *f = &flows[nflows++];
    memset(f, 0, sizeof(*f));
    f->kind = kind;
    f->side = b;
    f->version = v;
    char *tok = rly_token("ret");
    f->ret = strdup(nflows % 2 ? rly_strf("http://127.0.0.1:8011/grant?flow=%s", tok)
                               : rly_strf("https://qorus-%s.example:8011/grant?tab=oauth", tok));
    const char *seal = kind == SEALED || kind == SEALED_READ ? rly_strf(", \"seal_key\": \"%s\"", seal_pub) : "";
    const char *body =
        rly_strf("{\"authorization_server\": \"%s\", \"return_uri\": \"%s\", \"ttl\": %d%s}", RLY_TEST_AS, f->ret, TTL, seal);
    rly_response_t *res = rly_create(side(b), v, body, &f->s);
    RLY_EXPECT(res, 201, v);
    f->code = kind == DENIED ? NULL : strdup(rly_token("code-"));
    f->desc = kind == DENIED ? strdup(rly_token("desc-")) : NULL;

    int all = IN_STORE | IN_LOG | IN_STDERR | IN_MONITOR;
    need_str(f->code, all, "a code");
    need_str(f->desc, all, "an error_description");
    need_str(f->s.state, all, "a state");
    need_str(f->s.poll_token, all, "a poll token");
    need_str(f->ret, all, "a return_uri");
    need_str(tok, all, "a return_uri's unique part");
    /* the store knows a session only by its store key, a hash of the id */
    need_str(f->s.session, IN_STORE | IN_LOG | IN_STDERR | IN_MONITOR, "a session id");
    const char *key = rly_redis_key_of(f->s.session);
    if (key == NULL || (f->key = strdup(key)) == NULL)
        fail_msg("the relay answered a session id that is not one: %s", f->s.session);
    uint8_t sid[RLY_SESSION_ID_BYTES];
    if (rly_session_parse(f->s.session, strlen(f->s.session), sid) == 0)
        need(sid, sizeof(sid), IN_STORE, "a session id's raw bytes");
    uint8_t raw[48];
    ssize_t n = rly_b64url_decode(raw, sizeof(raw), f->s.poll_token, strlen(f->s.poll_token));
    if (n > 0)
        need(raw, (size_t)n, IN_STORE, "a poll token's raw bytes");
    return f;
}

static rly_response_t *callback(const flow_t *f)
{
    const char *q = f->kind == DENIED ? rly_query("error", "access_denied", "error_description", f->desc, "state", f->s.state, NULL)
                                      : rly_query("code", f->code, "state", f->s.state, NULL);
    return rly_callback(side(!f->side), f->version, NULL, q);
}

static rly_request_t pickup_req(const flow_t *f, int wait)
{
    const char **hdrs = rly_keep(calloc(3, sizeof(*hdrs)));
    hdrs[0] = rly_strf("Authorization: Bearer %s", f->s.poll_token);
    hdrs[1] = wait >= 0 ? rly_strf("Prefer: wait=%d", wait) : NULL;
    return (rly_request_t){.url = rly_strf("%s/v1/sessions/%s", side(!f->side)->public_url, f->s.session),
                           .headers = hdrs,
                           .version = f->version,
                           .timeout_ms = 20000};
}

static const needle_t *find_needle(const void *hay, size_t len, int where)
{
    for (size_t i = 0; i < nneedles; i++)
        if ((needles[i].where & where) != 0 && memmem(hay, len, needles[i].p, needles[i].len) != NULL)
            return &needles[i];
    return NULL;
}

/* checks every key in Redis; on a violation, why into err and -1 */
static int scan_store(char *err, size_t cap, size_t *nkeys)
{
    size_t n;
    char **keys = rly_redis_scan(&redis, "*", &n);
    if (keys == NULL) {
        snprintf(err, cap, "SCAN failed");
        return -1;
    }
    *nkeys = n;
    redisContext *c = rly_redis_connect(&redis, 2000);
    if (c == NULL) {
        snprintf(err, cap, "cannot connect to Redis");
        return -1;
    }
    int rc = -1;
    const needle_t *nd;
    redisReply *rep = NULL;
    for (size_t k = 0; k < n; k++) {
        const char *key = keys[k];
        if (strcmp(key, "authrelay:sessions") == 0) { /* the live sessions' index: a sorted set of sessions' keys */
            rep = redisCommand(c, "ZRANGE %s 0 -1", key);
            for (size_t i = 0; rep != NULL && rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
                size_t j = 0;
                while (j < nflows && strcmp(rep->element[i]->str, flows[j].key) != 0)
                    j++;
                if (j == nflows) {
                    snprintf(err, cap, "key %s: member %zu is not the key of a session of this test", key, i);
                    goto Exit;
                }
            }
            freeReplyObject(rep);
            rep = redisCommand(c, "PTTL %s", key);
            if (rep == NULL || rep->type != REDIS_REPLY_INTEGER || rep->integer <= 0 || rep->integer > TTL * 1000LL) {
                snprintf(err, cap, "key %s: no TTL, or longer than a session's", key);
                goto Exit;
            }
            freeReplyObject(rep);
            rep = NULL;
            --*nkeys; /* not a session's */
            continue;
        }
        flow_t *f = NULL;
        for (size_t i = 0; i < nflows && f == NULL; i++)
            if (strcmp(key, flows[i].key) == 0)
                f = &flows[i];
        if (strncmp(key, KEY_PREFIX, sizeof(KEY_PREFIX) - 1) != 0 || strlen(key) != KEY_LEN || key[KEY_LEN - 1] != '}' ||
            f == NULL) {
            snprintf(err, cap, "key %s is not authrelay:{<the store key of a session of this test>}", key);
            goto Exit;
        }
        if ((nd = find_needle(key, strlen(key), IN_STORE)) != NULL) {
            snprintf(err, cap, "key %s contains %s", key, nd->what);
            goto Exit;
        }
        rep = redisCommand(c, "TYPE %s", key);
        if (rep == NULL || rep->type != REDIS_REPLY_STATUS || strcmp(rep->str, "hash") != 0) {
            snprintf(err, cap, "key %s: TYPE is not hash", key);
            goto Exit;
        }
        freeReplyObject(rep);
        rep = redisCommand(c, "PTTL %s", key);
        long long max = (f->read ? 60 : TTL) * 1000LL;
        if (rep == NULL || rep->type != REDIS_REPLY_INTEGER || rep->integer <= 0 || rep->integer > max) {
            snprintf(err, cap, "key %s (%s): PTTL %lld, expected 1..%lld", key, f->read ? "read" : "unread",
                     rep != NULL && rep->type == REDIS_REPLY_INTEGER ? rep->integer : -99, max);
            goto Exit;
        }
        freeReplyObject(rep);
        rep = redisCommand(c, "HGETALL %s", key);
        if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements == 0) {
            snprintf(err, cap, "key %s: HGETALL failed", key);
            goto Exit;
        }
        for (size_t i = 0; i < rep->elements; i++) {
            const redisReply *e = rep->element[i];
            if (e->type == REDIS_REPLY_STRING && (nd = find_needle(e->str, e->len, IN_STORE)) != NULL) {
                snprintf(err, cap, "key %s: hash %s %zu contains %s", key, i % 2 ? "value" : "field", i / 2, nd->what);
                goto Exit;
            }
        }
        freeReplyObject(rep);
        rep = redisCommand(c, "DUMP %s", key);
        if (rep == NULL || rep->type != REDIS_REPLY_STRING) {
            snprintf(err, cap, "key %s: DUMP failed", key);
            goto Exit;
        }
        if ((nd = find_needle(rep->str, rep->len, IN_STORE)) != NULL) {
            snprintf(err, cap, "key %s: its DUMP contains %s", key, nd->what);
            goto Exit;
        }
        freeReplyObject(rep);
        rep = NULL;
    }
    rc = 0;
Exit:
    freeReplyObject(rep);
    redisFree(c);
    return rc;
}

typedef struct st_scan_ctx_t {
    int rc;
    size_t nkeys;
    char err[512];
} scan_ctx_t;

static void scan_action(void *ud)
{
    scan_ctx_t *x = ud;
    x->rc = scan_store(x->err, sizeof(x->err), &x->nkeys);
}

/* a pickup that did not get its 200: says what it got instead and whose that was */
static void report_crossed(flow_t **waiting, size_t nwaiting, const rly_response_t *res, size_t i)
{
    const rly_response_t *r = &res[i];
    const char *loc = rly_header(r, "Location");
    char whose[256] = "no flow of this test";
    for (size_t j = 0; j < nflows && loc != NULL; j++)
        if (strncmp(loc, flows[j].ret, strlen(flows[j].ret)) == 0)
            snprintf(whose, sizeof(whose), "flow %zu's return_uri (kind %d, %s)", j, flows[j].kind,
                     &flows[j] == waiting[i] ? "this flow" : "another flow");
    fail_msg("waiting pickup %zu of %zu (GET %s over %s, sent at 0 s) got %ld over HTTP version %d at %.3f s, Location: %s = %s; "
             "its callback (to %s, sent at 2 s) got %ld over HTTP version %d at %.3f s; body: %.200s",
             i, nwaiting, waiting[i]->s.poll_url, waiting[i]->version == RLY_H2 ? "h2" : "http/1.1", r->status, r->version,
             r->done_at, loc != NULL ? loc : "(none)", whose, side(!waiting[i]->side) == &relay_a ? "A" : "B",
             res[nwaiting + i].status, res[nwaiting + i].version, res[nwaiting + i].done_at, r->body);
}

/* flows of every kind in progress on both replicas; the store is scanned while pickups wait and after */
static void test_store_holds_no_plaintext(void **state)
{
    (void)state;
    flow_t *waiting[8];
    size_t nwaiting = 0;
    for (int kind = 0; kind < KINDS; kind++) {
        for (int i = 0; i < per_kind[kind]; i++) {
            flow_t *f = new_flow(kind, (int)(nflows % 2), nflows % 3 == 0 ? RLY_H1 : RLY_H2);
            switch (kind) {
            case COMPLETED:
            case SEALED:
                RLY_EXPECT(callback(f), 303, f->version);
                break;
            case DENIED:
                RLY_EXPECT(callback(f), 303, f->version);
                break;
            case SEALED_READ:
            case READ: {
                RLY_EXPECT(callback(f), 303, f->version);
                rly_request_t q = pickup_req(f, -1);
                rly_response_t *res = rly_do(&q);
                RLY_EXPECT(res, 200, f->version);
                json_object *o = rly_json(res);
                if (kind == READ) {
                    RLY_EXPECT_STR(rly_jstr(o, "code"), f->code);
                } else {
                    RLY_EXPECT_STR(rly_jstr(o, "status"), "sealed");
                    const char *sealed = rly_jstr(o, "sealed");
                    size_t ptlen = 0;
                    uint8_t *pt = sealed != NULL
                                      ? rly_unseal(seal_priv, f->s.session, strlen(f->s.session), sealed, strlen(sealed), &ptlen)
                                      : NULL;
                    if (pt == NULL)
                        fail_msg("cannot unseal the sealed result");
                    rly_response_t plain = {.body = (char *)rly_keep(pt), .body_len = ptlen};
                    RLY_EXPECT_STR(rly_jstr(rly_json(&plain), "code"), f->code);
                }
                f->read = 1;
            } break;
            case WAITING:
                waiting[nwaiting++] = f;
                break;
            default:
                break;
            }
        }
    }

    /* pickups wait on one replica; the store is scanned; then the callbacks land on the other */
    rly_request_t q[16];
    rly_response_t *res = rly_responses(2 * nwaiting);
    for (size_t i = 0; i < nwaiting; i++) {
        flow_t *f = waiting[i];
        q[i] = pickup_req(f, 8);
        q[i].url = rly_strf("%s/v1/sessions/%s", side(f->side)->public_url, f->s.session);
        q[nwaiting + i] = (rly_request_t){.url = rly_strf("%s/qorus-oauth2-redirect?%s", side(!f->side)->public_url,
                                                          rly_query("code", f->code, "state", f->s.state, NULL)),
                                          .version = f->version,
                                          .start_ms = 2000};
    }
    scan_ctx_t during = {.rc = -1};
    if (rly_http_multi(q, 2 * nwaiting, res, 1200, scan_action, &during) != 0)
        fail_msg("the waiting pickups did not finish");
    if (during.rc != 0)
        fail_msg("while pickups waited: %s", during.err);
    if (during.nkeys != nflows)
        fail_msg("while pickups waited: %zu keys in Redis, expected one a session: %zu", during.nkeys, nflows);
    for (size_t i = 0; i < nwaiting; i++) {
        /* any HTTP version: in one curl multi batch, a request may reuse another's idle HTTP/1.1 connection */
        RLY_EXPECT(&res[nwaiting + i], 303, 0);
        if (res[i].status != 200)
            report_crossed(waiting, nwaiting, res, i);
        RLY_EXPECT_STR(rly_jstr(rly_json(&res[i]), "code"), waiting[i]->code);
        waiting[i]->read = 1;
    }

    scan_ctx_t after = {.rc = -1};
    scan_action(&after);
    if (after.rc != 0)
        fail_msg("after the pickups: %s", after.err);
    if (after.nkeys != nflows)
        fail_msg("after the pickups: %zu keys in Redis, expected %zu", after.nkeys, nflows);
    print_message("  %zu sessions (pending, completed, denied, sealed, read, woken): %zu keys scanned twice, %zu needles\n", nflows,
                  after.nkeys, nneedles);
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* the logs of both replicas and every command Redis received */
static void test_logs_hold_no_plaintext(void **state)
{
    (void)state;
    size_t creates = 0;
    for (int i = 0; i < 2; i++) {
        const rly_relay_t *r = side(i);
        size_t len, elen;
        char *out = rly_relay_stdout(r, &len), *err = rly_relay_stderr(r, &elen);
        const needle_t *nd;
        if ((nd = find_needle(out, len, IN_LOG)) != NULL)
            fail_msg("relay %c's log contains %s (%.*s)", 'A' + i, nd->what, (int)nd->len, nd->p);
        if ((nd = find_needle(err, elen, IN_STDERR)) != NULL)
            fail_msg("relay %c's stderr contains %s", 'A' + i, nd->what);
        creates += count(out, "\"event\":\"session_create\"");
        char *aout = NULL, *aerr = NULL;
        char *argv[] = {(char *)rly_bin(), "audit", (char *)r->out_path, NULL};
        int rc = rly_run(argv, 20000, &aout, &aerr);
        if (rc != 0)
            fail_msg("authrelay audit of relay %c's log exited %d: %s %s", 'A' + i, rc, aout, aerr);
    }
    if (creates != nflows)
        fail_msg("the two logs show %zu session creations, expected %zu", creates, nflows);

    size_t mlen;
    char *mon = rly_read_file(monitor_log, &mlen);
    if (mon == NULL || count(mon, "EVALSHA") + count(mon, "\"EVAL\"") == 0)
        fail_msg("redis-cli monitor captured no command of the relays");
    const needle_t *nd = find_needle(mon, mlen, IN_MONITOR);
    if (nd != NULL)
        fail_msg("a command sent to Redis contains %s", nd->what);
    print_message("  logs: %zu session creations over both replicas, audit clean; MONITOR: %zu bytes, clean\n", creates, mlen);
}

/* 1.1 flows over both replicas: the start token, the browser cookie, the CSRF token, the label, the authorize parameters
 * and the release key reach neither the store (hashes and ciphertexts only), nor the logs, nor a command sent to Redis */
static void test_bound_flows_hold_no_plaintext(void **state)
{
    (void)state;
    int all = IN_STORE | IN_LOG | IN_STDERR | IN_MONITOR;
    for (int i = 0; i < 4; i++) {
        const rly_relay_t *a = side(i % 2), *b = side(!(i % 2));
        int v = i < 2 ? RLY_H1 : RLY_H2;
        char *label = rly_token("label-"), *client = rly_token("client-"), *scope = rly_token("scope-");
        rly_bound_t fl;
        rly_bound_create_ok(a, v,
                            rly_strf("\"ttl\": %d, \"label\": \"%s\", \"authorize_params\": {\"client_id\": \"%s\", "
                                     "\"scope\": \"%s\"}",
                                     TTL, label, client, scope),
                            &fl);
        snprintf(fl.start_url, sizeof(fl.start_url), "%s/v1/start?t=%s", b->public_url, fl.token);
        rly_bound_confirm_ok(b, v, &fl);
        char *code = rly_token("bound-code-");
        RLY_EXPECT(rly_bound_callback(a, v, &fl, rly_query("code", code, "state", fl.state, NULL), fl.cookie), 200, v);
        const char *const texts[][2] = {{fl.token, "a start token"},
                                        {fl.cookie, "a browser cookie"},
                                        {fl.csrf, "a CSRF token"},
                                        {fl.release, "a release key"},
                                        {fl.state, "a 1.1 state"},
                                        {label, "a label"},
                                        {client, "a client_id"},
                                        {scope, "a scope"},
                                        {code, "a code"},
                                        {fl.s.session, "a session id"},
                                        {fl.s.poll_token, "a poll token"}};
        for (size_t k = 0; k != sizeof(texts) / sizeof(texts[0]); ++k)
            need_str(texts[k][0], all, texts[k][1]);
        uint8_t raw[48];
        ssize_t n = rly_b64url_decode(raw, sizeof(raw), fl.token, strlen(fl.token));
        need(raw, n > 0 ? (size_t)n : 0, IN_STORE, "a start token's raw bytes");
        n = rly_b64url_decode(raw, sizeof(raw), fl.release, strlen(fl.release));
        need(raw, n > 0 ? (size_t)n : 0, IN_STORE, "a release key's raw bytes");
        /* the session and its start token's entry are this test's keys */
        flow_t *f = &flows[nflows++];
        memset(f, 0, sizeof(*f));
        f->key = strdup(rly_redis_key_of(fl.s.session));
        uint8_t th[32];
        char text[RLY_SESSION_ID_LEN + 1];
        rly_start_token_hash(fl.token, strlen(fl.token), th);
        rly_b64url_encode(text, th, RLY_SESSION_ID_BYTES);
        f = &flows[nflows++];
        memset(f, 0, sizeof(*f));
        f->key = strdup(rly_strf("authrelay:{%s}", text));
    }
    char err[512];
    size_t nkeys;
    if (scan_store(err, sizeof(err), &nkeys) != 0)
        fail_msg("1.1 flows: %s", err);
    for (int i = 0; i < 2; i++) {
        size_t len, elen;
        char *out = rly_relay_stdout(side(i), &len), *serr = rly_relay_stderr(side(i), &elen);
        const needle_t *nd;
        if ((nd = find_needle(out, len, IN_LOG)) != NULL)
            fail_msg("relay %c's log contains %s", 'A' + i, nd->what);
        if ((nd = find_needle(serr, elen, IN_STDERR)) != NULL)
            fail_msg("relay %c's stderr contains %s", 'A' + i, nd->what);
    }
    size_t mlen;
    char *mon = rly_read_file(monitor_log, &mlen);
    const needle_t *nd = mon != NULL ? find_needle(mon, mlen, IN_MONITOR) : NULL;
    if (mon == NULL || nd != NULL)
        fail_msg("a command sent to Redis contains %s", nd != NULL ? nd->what : "(no monitor log)");
    print_message("  1.1: %zu keys scanned, logs and MONITOR clean\n", nkeys);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLY_TEST(test_store_holds_no_plaintext),
        RLY_TEST(test_logs_hold_no_plaintext),
        RLY_TEST(test_bound_flows_hold_no_plaintext),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
