/* store_conformance.h: the rendezvous store contract of relay/store.h as cmocka tests, written once for every back-end */
#ifndef RELAY_TEST_STORE_CONFORMANCE_H
#define RELAY_TEST_STORE_CONFORMANCE_H

/*
 * Use (this header includes cmocka and its prerequisites):
 *
 *     static store_backend_t *make(void) { return store_xxx_new(...); }
 *     int main(void)
 *     {
 *         const struct CMUnitTest tests[] = {STORE_CONFORMANCE_TESTS, ...back-end specific tests...};
 *         store_conformance_use(make);
 *         return cmocka_run_group_tests_name("store_xxx", tests, NULL, NULL);
 *     }
 *
 * Each test gets a fresh back-end from the factory, an h2o evloop and a handle opened on it, and starts once the handle
 * answers (conf_wait_up: a network back-end connects after open; a factory returning NULL fails the test). Teardown
 * closes the handle and destroys the loop, so a back-end must unlink everything it put on the loop. The store is driven only
 * through store_t ops with callbacks: the loop runs until each callback has fired, within a bound (a test fails, it
 * never hangs). Store keys (what the store names a session by) are fresh random bytes, so tests do not see each other's
 * sessions in a shared server.
 * Worker threads never call cmocka asserts (they longjmp): they record what they saw and the main thread asserts.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "ids.h"
#include "store.h"

#define CONF_WAIT_MS 5000       /* bound on one operation's callback or one notification */
#define CONF_BULK_WAIT_MS 60000 /* bound on a batch of operations */
#define CONF_TTL 600
#define CONF_MANY 20000
#define CONF_RACE_ROUNDS 200
#define CONF_NOTES_MAX 64
#define CONF_RESULT_LEN 16384 /* larger than any real result blob (codes are at most 8 KiB) */

/*
 * libh2o 2.2.5 leaks in two places the tests reach: per-thread free lists (h2o_mem_alloc_recycle) never released when a
 * thread ends (tests/lsan.supp says the same for the integration tests), and the evloop flavour of
 * h2o_multithread_destroy_queue never frees the queue it was given (fixed in later h2o), one per handle opened. Unit
 * tests run without LSAN_OPTIONS, so the suppressions are compiled in. Harmless without LeakSanitizer.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:h2o_mem_alloc_recycle\nleak:h2o_multithread_create_queue\n";
}

/* the back-end under test, set by store_conformance_use() before the tests run */
static store_backend_t *(*conf_make)(void);
/* empties a store shared between tests (a Redis server), for the tests that count every live session; NULL: every
 * back-end from conf_make starts empty */
static void (*conf_empty)(void);

static void store_conformance_use(store_backend_t *(*make)(void))
{
    conf_make = make;
}

static void store_conformance_use_empty(void (*empty)(void))
{
    conf_empty = empty;
}

static int64_t conf_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* runs loop until *counter reaches target or timeout_ms pass; 0, or -1 on time-out. No asserts: threads use it */
static int conf_pump(h2o_evloop_t *loop, const int *counter, int target, int timeout_ms)
{
    int64_t deadline = conf_now_ms() + timeout_ms;
    while (*counter < target) {
        int64_t left = deadline - conf_now_ms();
        if (left <= 0)
            return -1;
        h2o_evloop_run(loop, left < 10 ? (int32_t)left : 10);
    }
    return 0;
}

/* runs loop for ms milliseconds whatever happens (lets a duplicate callback or an expiry show) */
static void conf_run_for(h2o_evloop_t *loop, int ms)
{
    int64_t deadline = conf_now_ms() + ms;
    for (int64_t left; (left = deadline - conf_now_ms()) > 0;)
        h2o_evloop_run(loop, left < 10 ? (int32_t)left : 10);
}

/* one operation's outcome: the callback's arguments, copied (rec is borrowed for the callback only) */
typedef struct st_conf_op_t {
    int calls;
    store_status_t status;
    int has_rec;
    store_record_t rec; /* meta and result point at the copies below */
    uint8_t *meta, *result, *start_ref;
    pthread_t thread; /* where the callback ran */
} conf_op_t;

static void conf_op_cb(void *ctx, store_status_t status, const store_record_t *rec)
{
    conf_op_t *op = ctx;
    op->thread = pthread_self();
    if (op->calls++ != 0)
        return; /* counted: the test fails on a second call */
    op->status = status;
    if (rec == NULL)
        return;
    op->rec = *rec;
    op->rec.meta = op->rec.result = op->rec.start_ref = NULL;
    if (rec->start_ref != NULL) {
        if ((op->start_ref = malloc(rec->start_ref_len + 1)) == NULL)
            return;
        memcpy(op->start_ref, rec->start_ref, rec->start_ref_len);
        op->rec.start_ref = op->start_ref;
    }
    if ((op->meta = malloc(rec->meta_len + 1)) == NULL)
        return;
    if (rec->meta_len != 0)
        memcpy(op->meta, rec->meta, rec->meta_len);
    op->rec.meta = op->meta;
    if (rec->result != NULL) {
        if ((op->result = malloc(rec->result_len + 1)) == NULL)
            return;
        if (rec->result_len != 0)
            memcpy(op->result, rec->result, rec->result_len);
        op->rec.result = op->result;
    }
    op->has_rec = 1;
}

static void conf_op_free(conf_op_t *op)
{
    free(op->meta);
    free(op->result);
    free(op->start_ref);
    memset(op, 0, sizeof(*op));
}

/* what a handle's on_notify saw */
typedef struct st_conf_notes_t {
    int count;     /* with a store key */
    int count_any; /* with NULL: "anything may have completed" */
    int off_thread;
    pthread_t thread;
    uint8_t keys[CONF_NOTES_MAX][RLY_SESSION_ID_BYTES];
} conf_notes_t;

static void conf_on_notify(void *ctx, const uint8_t key[RLY_SESSION_ID_BYTES])
{
    conf_notes_t *n = ctx;
    if (!pthread_equal(n->thread, pthread_self()))
        ++n->off_thread;
    if (key == NULL) {
        ++n->count_any;
        return;
    }
    if (n->count < CONF_NOTES_MAX)
        memcpy(n->keys[n->count], key, RLY_SESSION_ID_BYTES);
    ++n->count;
}

/* how many notifications named key */
static int conf_notes_of(const conf_notes_t *n, const uint8_t key[RLY_SESSION_ID_BYTES])
{
    int found = 0;
    for (int i = 0; i < n->count && i < CONF_NOTES_MAX; ++i)
        found += memcmp(n->keys[i], key, RLY_SESSION_ID_BYTES) == 0;
    return found;
}

/* waits until a fresh handle answers (a network back-end connects after open and answers STORE_UNAVAILABLE until
 * then): probes with a get of an unknown session until it is NOT_FOUND; 0, or -1 after CONF_WAIT_MS. No asserts */
static int conf_wait_up(h2o_evloop_t *loop, store_t *store)
{
    int64_t deadline = conf_now_ms() + CONF_WAIT_MS;
    uint8_t key[RLY_SESSION_ID_BYTES];
    if (rly_random(key, sizeof(key)) != 0)
        return -1;
    for (;;) {
        conf_op_t op = {0};
        store->get(store, key, conf_op_cb, &op);
        int timed_out = conf_pump(loop, &op.calls, 1, CONF_WAIT_MS);
        store_status_t st = op.status;
        conf_op_free(&op);
        if (timed_out)
            return -1;
        if (st == STORE_NOT_FOUND)
            return 0;
        if (conf_now_ms() >= deadline)
            return -1;
        conf_run_for(loop, 20);
    }
}

typedef struct st_conf_fixture_t {
    store_backend_t *backend;
    h2o_evloop_t *loop;
    store_t *store;
    conf_notes_t notes;
} conf_fixture_t;

static int conf_setup(void **state)
{
    conf_fixture_t *fx = calloc(1, sizeof(*fx));
    if (fx == NULL || conf_make == NULL)
        goto Error;
    fx->notes.thread = pthread_self();
    if ((fx->backend = conf_make()) == NULL)
        goto Error;
    if ((fx->loop = h2o_evloop_create()) == NULL)
        goto Error;
    if ((fx->store = fx->backend->open(fx->backend, fx->loop, conf_on_notify, &fx->notes)) == NULL)
        goto Error;
    if (conf_wait_up(fx->loop, fx->store) != 0) {
        fx->store->close(fx->store);
        h2o_evloop_run(fx->loop, 0);
        goto Error;
    }
    *state = fx;
    return 0;
Error:
    if (fx != NULL) {
        if (fx->loop != NULL)
            h2o_evloop_destroy(fx->loop);
        if (fx->backend != NULL)
            fx->backend->destroy(fx->backend);
        free(fx);
    }
    return -1;
}

static int conf_teardown(void **state)
{
    conf_fixture_t *fx = *state;
    fx->store->close(fx->store);
    h2o_evloop_run(fx->loop, 0); /* disposes of the sockets the handle closed */
    h2o_evloop_destroy(fx->loop);
    fx->backend->destroy(fx->backend);
    free(fx);
    return 0;
}

/* a session record with every field set; the record points into the struct: do not copy it */
typedef struct st_conf_session_t {
    store_record_t rec;
    uint8_t meta[200];
} conf_session_t;

static void conf_session_init(conf_session_t *s, const char *as_id)
{
    memset(s, 0, sizeof(*s));
    assert_int_equal(rly_random(s->rec.key, sizeof(s->rec.key)), 0);
    assert_int_equal(rly_random(s->rec.token_hash, sizeof(s->rec.token_hash)), 0);
    assert_int_equal(rly_random(s->meta, sizeof(s->meta)), 0);
    s->meta[0] = 0; /* binary: NULs inside and at both ends */
    s->meta[100] = 0;
    s->meta[sizeof(s->meta) - 1] = 0;
    assert_true(strlen(as_id) <= RLY_AS_HOST_MAX);
    memcpy(s->rec.as_id, as_id, strlen(as_id) + 1);
    s->rec.meta = s->meta;
    s->rec.meta_len = sizeof(s->meta);
}

/* waits for op's callback on the fixture's loop: exactly one call, on this (the loop's) thread */
static void conf_await(conf_fixture_t *fx, conf_op_t *op)
{
    if (conf_pump(fx->loop, &op->calls, 1, CONF_WAIT_MS) != 0)
        fail_msg("the store callback did not run within %d ms", CONF_WAIT_MS);
    h2o_evloop_run(fx->loop, 0); /* a second call would show now */
    assert_int_equal(op->calls, 1);
    assert_true(pthread_equal(op->thread, pthread_self()));
    if (op->status != STORE_OK && op->status != STORE_CONFLICT && op->status != STORE_SEAL_REQUIRED &&
        op->status != STORE_FORBIDDEN)
        assert_false(
            op->has_rec); /* rec is NULL unless STORE_OK (or the stored record with CONFLICT / SEAL_REQUIRED / FORBIDDEN) */
}

/* create with a limit of max live sessions (0: none) */
static store_status_t conf_create_max(conf_fixture_t *fx, const conf_session_t *s, unsigned ttl, unsigned max)
{
    conf_op_t op = {0};
    fx->store->create(fx->store, &s->rec, ttl, max, conf_op_cb, &op);
    conf_await(fx, &op);
    store_status_t st = op.status;
    conf_op_free(&op);
    return st;
}

static store_status_t conf_create(conf_fixture_t *fx, const conf_session_t *s, unsigned ttl)
{
    return conf_create_max(fx, s, ttl, 0);
}

/* op receives the record; the caller frees it with conf_op_free */
static store_status_t conf_get(conf_fixture_t *fx, const uint8_t key[RLY_SESSION_ID_BYTES], conf_op_t *op)
{
    memset(op, 0, sizeof(*op));
    fx->store->get(fx->store, key, conf_op_cb, op);
    conf_await(fx, op);
    return op->status;
}

/* op (NULL: not wanted) receives what the callback got; sealed: whether the result is sealed to the instance */
static store_status_t conf_complete_as(conf_fixture_t *fx, const uint8_t key[RLY_SESSION_ID_BYTES], const uint8_t *result,
                                       size_t len, int64_t completed_at, int sealed, conf_op_t *op)
{
    conf_op_t local;
    if (op == NULL)
        op = &local;
    memset(op, 0, sizeof(*op));
    fx->store->complete(fx->store, key, result, len, completed_at, sealed, NULL, conf_op_cb, op);
    conf_await(fx, op);
    store_status_t st = op->status;
    if (op == &local)
        conf_op_free(&local);
    return st;
}

/* an unsealed result */
static store_status_t conf_complete(conf_fixture_t *fx, const uint8_t key[RLY_SESSION_ID_BYTES], const uint8_t *result, size_t len,
                                    int64_t completed_at, conf_op_t *op)
{
    return conf_complete_as(fx, key, result, len, completed_at, 0, op);
}

/* op (NULL: not wanted) receives the record */
static store_status_t conf_mark_read(conf_fixture_t *fx, const uint8_t key[RLY_SESSION_ID_BYTES], conf_op_t *op)
{
    conf_op_t local;
    if (op == NULL)
        op = &local;
    memset(op, 0, sizeof(*op));
    fx->store->mark_read(fx->store, key, conf_op_cb, op);
    conf_await(fx, op);
    store_status_t st = op->status;
    if (op == &local)
        conf_op_free(&local);
    return st;
}

static store_status_t conf_remove(conf_fixture_t *fx, const uint8_t key[RLY_SESSION_ID_BYTES])
{
    conf_op_t op = {0};
    fx->store->remove(fx->store, key, conf_op_cb, &op);
    conf_await(fx, &op);
    store_status_t st = op.status;
    conf_op_free(&op);
    return st;
}

static store_status_t conf_watch(conf_fixture_t *fx, const uint8_t key[RLY_SESSION_ID_BYTES])
{
    conf_op_t op = {0};
    fx->store->watch(fx->store, key, conf_op_cb, &op);
    conf_await(fx, &op);
    store_status_t st = op.status;
    conf_op_free(&op);
    return st;
}

/* remaining life of a live session, read with get */
static int64_t conf_expires_in(conf_fixture_t *fx, const uint8_t key[RLY_SESSION_ID_BYTES], int *read)
{
    conf_op_t op;
    assert_int_equal(conf_get(fx, key, &op), STORE_OK);
    assert_true(op.has_rec);
    int64_t ms = op.rec.expires_in_ms;
    if (read != NULL)
        *read = op.rec.read;
    conf_op_free(&op);
    return ms;
}

static void conf_fill_result(uint8_t *buf, size_t len, uint8_t seed)
{
    for (size_t i = 0; i != len; ++i)
        buf[i] = (uint8_t)(i * 31 + seed); /* binary, with NULs */
}

/* create, then get returns every field as stored, pending */
static void conf_test_create_get(void **state)
{
    conf_fixture_t *fx = *state;
    char long_host[RLY_AS_HOST_MAX + 1];
    const char *hosts[] = {"auth.atlassian.com", long_host};
    memset(long_host, 'a', RLY_AS_HOST_MAX);
    for (size_t i = 61; i < RLY_AS_HOST_MAX; i += 62)
        long_host[i] = '.'; /* labels of 61 bytes: a valid host name of the maximum length */
    long_host[RLY_AS_HOST_MAX] = '\0';

    for (size_t h = 0; h != sizeof(hosts) / sizeof(hosts[0]); ++h) {
        conf_session_t s;
        conf_session_init(&s, hosts[h]);
        assert_int_equal(conf_create(fx, &s, CONF_TTL), STORE_OK);

        conf_op_t op;
        assert_int_equal(conf_get(fx, s.rec.key, &op), STORE_OK);
        assert_true(op.has_rec);
        assert_memory_equal(op.rec.key, s.rec.key, RLY_SESSION_ID_BYTES);
        assert_memory_equal(op.rec.token_hash, s.rec.token_hash, sizeof(s.rec.token_hash));
        assert_string_equal(op.rec.as_id, hosts[h]);
        assert_int_equal(op.rec.meta_len, sizeof(s.meta));
        assert_memory_equal(op.rec.meta, s.meta, sizeof(s.meta));
        assert_null(op.rec.result);
        assert_int_equal(op.rec.result_len, 0);
        assert_int_equal(op.rec.completed_at, 0);
        assert_int_equal(op.rec.read, 0);
        assert_true(op.rec.expires_in_ms <= (int64_t)CONF_TTL * 1000);
        assert_true(op.rec.expires_in_ms > (int64_t)CONF_TTL * 1000 - 5000);
        conf_op_free(&op);
    }
}

static void conf_test_get_unknown(void **state)
{
    conf_fixture_t *fx = *state;
    conf_session_t s;
    conf_session_init(&s, "auth.example.com"); /* never created */
    conf_op_t op;
    assert_int_equal(conf_get(fx, s.rec.key, &op), STORE_NOT_FOUND);
    assert_false(op.has_rec);
    conf_op_free(&op);
}

/* complete stores the result and completed_at; the rest of the record is untouched */
static void conf_test_complete(void **state)
{
    conf_fixture_t *fx = *state;
    static uint8_t result[CONF_RESULT_LEN];
    conf_fill_result(result, sizeof(result), 7);
    conf_session_t s;
    conf_session_init(&s, "auth.atlassian.com");
    assert_int_equal(conf_create(fx, &s, CONF_TTL), STORE_OK);
    assert_int_equal(conf_complete(fx, s.rec.key, result, sizeof(result), 1764395000123, NULL), STORE_OK);

    conf_op_t op;
    assert_int_equal(conf_get(fx, s.rec.key, &op), STORE_OK);
    assert_true(op.has_rec);
    assert_non_null(op.rec.result);
    assert_int_equal(op.rec.result_len, sizeof(result));
    assert_memory_equal(op.rec.result, result, sizeof(result));
    assert_int_equal(op.rec.completed_at, 1764395000123);
    assert_int_equal(op.rec.read, 0);
    assert_memory_equal(op.rec.token_hash, s.rec.token_hash, sizeof(s.rec.token_hash));
    assert_string_equal(op.rec.as_id, "auth.atlassian.com");
    assert_int_equal(op.rec.meta_len, sizeof(s.meta));
    assert_memory_equal(op.rec.meta, s.meta, sizeof(s.meta));
    assert_true(op.rec.expires_in_ms > (int64_t)CONF_TTL * 1000 - 5000); /* completing does not shorten the life */
    conf_op_free(&op);
}

/* the write answers with the record, so that a callback needs no read before it: meta, AS, token hash, the result */
static void conf_test_complete_record(void **state)
{
    conf_fixture_t *fx = *state;
    const uint8_t result[] = "D the result, encrypted";
    conf_session_t s;
    conf_session_init(&s, "auth.atlassian.com");
    assert_int_equal(conf_create(fx, &s, CONF_TTL), STORE_OK);
    conf_op_t op;
    assert_int_equal(conf_complete(fx, s.rec.key, result, sizeof(result), 1764395000777, &op), STORE_OK);
    assert_true(op.has_rec);
    assert_memory_equal(op.rec.key, s.rec.key, sizeof(s.rec.key));
    assert_string_equal(op.rec.as_id, "auth.atlassian.com");
    assert_memory_equal(op.rec.token_hash, s.rec.token_hash, sizeof(s.rec.token_hash));
    assert_int_equal(op.rec.meta_len, sizeof(s.meta));
    assert_memory_equal(op.rec.meta, s.meta, sizeof(s.meta));
    assert_non_null(op.rec.result);
    assert_int_equal(op.rec.result_len, sizeof(result));
    assert_memory_equal(op.rec.result, result, sizeof(result));
    assert_int_equal(op.rec.completed_at, 1764395000777);
    assert_int_equal(op.rec.sealed, 0);
    assert_int_equal(op.rec.read, 0);
    assert_true(op.rec.expires_in_ms >= 0); /* may be 0: not read by a write */
    conf_op_free(&op);
}

/* a session created sealed takes only a sealed result: an unsealed one is refused, nothing written, nobody woken */
static void conf_test_complete_sealed(void **state)
{
    conf_fixture_t *fx = *state;
    const uint8_t plain[] = "D under the data key", sealed[] = "S sealed to the instance";
    conf_session_t s, open;
    conf_session_init(&s, "auth.atlassian.com");
    s.rec.sealed = 1;
    conf_session_init(&open, "auth.atlassian.com");
    assert_int_equal(conf_create(fx, &s, CONF_TTL), STORE_OK);
    assert_int_equal(conf_create(fx, &open, CONF_TTL), STORE_OK);

    conf_op_t op;
    assert_int_equal(conf_get(fx, s.rec.key, &op), STORE_OK);
    assert_int_equal(op.rec.sealed, 1);
    conf_op_free(&op);
    assert_int_equal(conf_get(fx, open.rec.key, &op), STORE_OK);
    assert_int_equal(op.rec.sealed, 0);
    conf_op_free(&op);

    assert_int_equal(conf_complete_as(fx, s.rec.key, plain, sizeof(plain), 1000, 0, &op), STORE_SEAL_REQUIRED);
    assert_true(op.has_rec); /* with the record: the caller seals to the key in its meta */
    assert_int_equal(op.rec.sealed, 1);
    assert_null(op.rec.result);
    assert_int_equal(op.rec.meta_len, sizeof(s.meta));
    assert_memory_equal(op.rec.meta, s.meta, sizeof(s.meta));
    conf_op_free(&op);
    conf_run_for(fx->loop, 50);
    assert_int_equal(conf_notes_of(&fx->notes, s.rec.key), 0);
    assert_int_equal(conf_get(fx, s.rec.key, &op), STORE_OK);
    assert_null(op.rec.result);
    assert_int_equal(op.rec.completed_at, 0);
    conf_op_free(&op);

    assert_int_equal(conf_complete_as(fx, s.rec.key, sealed, sizeof(sealed), 2000, 1, &op), STORE_OK);
    assert_int_equal(op.rec.sealed, 1);
    conf_op_free(&op);
    assert_int_equal(conf_get(fx, s.rec.key, &op), STORE_OK);
    assert_int_equal(op.rec.result_len, sizeof(sealed));
    assert_memory_equal(op.rec.result, sealed, sizeof(sealed));
    assert_int_equal(op.rec.completed_at, 2000);
    conf_op_free(&op);
    /* first writer still wins, sealed or not */
    assert_int_equal(conf_complete_as(fx, s.rec.key, sealed, sizeof(sealed), 3000, 1, NULL), STORE_CONFLICT);
    assert_int_equal(conf_complete_as(fx, s.rec.key, plain, sizeof(plain), 3000, 0, NULL), STORE_CONFLICT);
    /* an unsealed session takes a sealed result too (the flag only ever asks for more) */
    assert_int_equal(conf_complete_as(fx, open.rec.key, sealed, sizeof(sealed), 4000, 1, NULL), STORE_OK);
}

/* first writer wins: a second complete is CONFLICT and changes nothing */
static void conf_test_complete_twice(void **state)
{
    conf_fixture_t *fx = *state;
    const uint8_t first[] = "first result", second[] = "second, different result";
    conf_session_t s;
    conf_session_init(&s, "auth.atlassian.com");
    assert_int_equal(conf_create(fx, &s, CONF_TTL), STORE_OK);
    assert_int_equal(conf_complete(fx, s.rec.key, first, sizeof(first), 1000, NULL), STORE_OK);

    conf_op_t op;
    assert_int_equal(conf_complete(fx, s.rec.key, second, sizeof(second), 2000, &op), STORE_CONFLICT);
    if (op.has_rec) { /* the stored record */
        assert_int_equal(op.rec.result_len, sizeof(first));
        assert_memory_equal(op.rec.result, first, sizeof(first));
        assert_int_equal(op.rec.completed_at, 1000);
    }
    conf_op_free(&op);

    assert_int_equal(conf_get(fx, s.rec.key, &op), STORE_OK);
    assert_int_equal(op.rec.result_len, sizeof(first));
    assert_memory_equal(op.rec.result, first, sizeof(first));
    assert_int_equal(op.rec.completed_at, 1000);
    conf_op_free(&op);
    /* and a third time */
    assert_int_equal(conf_complete(fx, s.rec.key, second, sizeof(second), 3000, NULL), STORE_CONFLICT);
}

static void conf_test_complete_unknown(void **state)
{
    conf_fixture_t *fx = *state;
    const uint8_t result[] = "result";
    conf_session_t s;
    conf_session_init(&s, "auth.example.com");
    assert_int_equal(conf_complete(fx, s.rec.key, result, sizeof(result), 1000, NULL), STORE_NOT_FOUND);
    /* and it did not create the session */
    conf_op_t op;
    assert_int_equal(conf_get(fx, s.rec.key, &op), STORE_NOT_FOUND);
    conf_op_free(&op);
}

/* the first delivery cuts the remaining life to at most RLY_AFTER_READ_TTL; a second one does not extend it */
static void conf_test_mark_read(void **state)
{
    conf_fixture_t *fx = *state;
    const uint8_t result[] = "result";
    conf_session_t s;
    conf_session_init(&s, "auth.atlassian.com");
    assert_int_equal(conf_create(fx, &s, CONF_TTL), STORE_OK);
    assert_int_equal(conf_complete(fx, s.rec.key, result, sizeof(result), 1000, NULL), STORE_OK);

    conf_op_t mr;
    assert_int_equal(conf_mark_read(fx, s.rec.key, &mr), STORE_OK); /* the record, like get, in the same round trip */
    assert_true(mr.has_rec);
    assert_memory_equal(mr.rec.key, s.rec.key, RLY_SESSION_ID_BYTES);
    assert_memory_equal(mr.rec.token_hash, s.rec.token_hash, sizeof(s.rec.token_hash));
    assert_int_equal(mr.rec.result_len, sizeof(result));
    assert_memory_equal(mr.rec.result, result, sizeof(result));
    assert_int_equal(mr.rec.completed_at, 1000);
    assert_true(mr.rec.expires_in_ms <= (int64_t)RLY_AFTER_READ_TTL * 1000);
    conf_op_free(&mr);
    int read = 0;
    int64_t first = conf_expires_in(fx, s.rec.key, &read);
    assert_int_equal(read, 1);
    assert_true(first <= (int64_t)RLY_AFTER_READ_TTL * 1000);
    assert_true(first > (int64_t)RLY_AFTER_READ_TTL * 1000 - 5000);

    conf_run_for(fx->loop, 250);
    assert_int_equal(conf_mark_read(fx, s.rec.key, NULL), STORE_OK);
    int64_t second = conf_expires_in(fx, s.rec.key, &read);
    assert_int_equal(read, 1);
    assert_true(second <= first - 200); /* idempotent: the clock kept running, not reset to a fresh 60 s */

    /* the result is still there for a re-fetch */
    conf_op_t op;
    assert_int_equal(conf_get(fx, s.rec.key, &op), STORE_OK);
    assert_int_equal(op.rec.result_len, sizeof(result));
    assert_memory_equal(op.rec.result, result, sizeof(result));
    conf_op_free(&op);

    conf_session_t unknown;
    conf_session_init(&unknown, "auth.example.com");
    assert_int_equal(conf_mark_read(fx, unknown.rec.key, NULL), STORE_NOT_FOUND);
}

/* a session with less than RLY_AFTER_READ_TTL left keeps its shorter life */
static void conf_test_mark_read_short(void **state)
{
    conf_fixture_t *fx = *state;
    const uint8_t result[] = "result";
    conf_session_t s;
    conf_session_init(&s, "auth.atlassian.com");
    assert_int_equal(conf_create(fx, &s, 2), STORE_OK);
    int64_t before = conf_expires_in(fx, s.rec.key, NULL);
    assert_true(before <= 2000);
    assert_true(before > 0);
    assert_int_equal(conf_complete(fx, s.rec.key, result, sizeof(result), 1000, NULL), STORE_OK);
    assert_int_equal(conf_mark_read(fx, s.rec.key, NULL), STORE_OK);
    int read = 0;
    int64_t after = conf_expires_in(fx, s.rec.key, &read);
    assert_int_equal(read, 1);
    assert_true(after <= before); /* not extended to 60 s */
    assert_true(after > 0);
}

/* mark_read of a pending session (a woken pickup re-reading before the result landed) leaves it as it is */
static void conf_test_mark_read_pending(void **state)
{
    conf_fixture_t *fx = *state;
    const uint8_t result[] = "result";
    conf_session_t s;
    conf_session_init(&s, "auth.atlassian.com");
    assert_int_equal(conf_create(fx, &s, CONF_TTL), STORE_OK);
    conf_op_t mr;
    assert_int_equal(conf_mark_read(fx, s.rec.key, &mr), STORE_OK);
    assert_true(mr.has_rec);
    assert_null(mr.rec.result);
    assert_int_equal(mr.rec.read, 0);
    assert_memory_equal(mr.rec.token_hash, s.rec.token_hash, sizeof(s.rec.token_hash));
    assert_true(mr.rec.expires_in_ms > (int64_t)CONF_TTL * 1000 - 5000);
    conf_op_free(&mr);
    int read = 1;
    assert_true(conf_expires_in(fx, s.rec.key, &read) > (int64_t)CONF_TTL * 1000 - 5000); /* not cut */
    assert_int_equal(read, 0);

    /* the delivery after the completion is the first one: it cuts */
    assert_int_equal(conf_complete(fx, s.rec.key, result, sizeof(result), 1000, NULL), STORE_OK);
    assert_int_equal(conf_mark_read(fx, s.rec.key, NULL), STORE_OK);
    assert_true(conf_expires_in(fx, s.rec.key, &read) <= (int64_t)RLY_AFTER_READ_TTL * 1000);
    assert_int_equal(read, 1);
}

/* after the TTL, the session is gone for every operation */
static void conf_test_expiry(void **state)
{
    conf_fixture_t *fx = *state;
    const uint8_t result[] = "result";
    conf_session_t pending, done;
    conf_session_init(&pending, "auth.atlassian.com");
    conf_session_init(&done, "auth.atlassian.com");
    assert_int_equal(conf_create(fx, &pending, 1), STORE_OK);
    assert_int_equal(conf_create(fx, &done, 1), STORE_OK);
    assert_int_equal(conf_complete(fx, done.rec.key, result, sizeof(result), 1000, NULL), STORE_OK);
    assert_true(conf_expires_in(fx, pending.rec.key, NULL) <= 1000);

    conf_run_for(fx->loop, 1150);

    conf_op_t op;
    assert_int_equal(conf_get(fx, pending.rec.key, &op), STORE_NOT_FOUND);
    conf_op_free(&op);
    assert_int_equal(conf_get(fx, done.rec.key, &op), STORE_NOT_FOUND);
    conf_op_free(&op);
    assert_int_equal(conf_complete(fx, pending.rec.key, result, sizeof(result), 2000, NULL), STORE_NOT_FOUND);
    assert_int_equal(conf_mark_read(fx, done.rec.key, NULL), STORE_NOT_FOUND);
    assert_int_equal(conf_remove(fx, pending.rec.key), STORE_NOT_FOUND);
    assert_int_equal(conf_remove(fx, done.rec.key), STORE_NOT_FOUND);
}

/* remove deletes; a later callback (complete) finds nothing */
static void conf_test_remove(void **state)
{
    conf_fixture_t *fx = *state;
    const uint8_t result[] = "result";
    conf_session_t s, other;
    conf_session_init(&s, "auth.atlassian.com");
    conf_session_init(&other, "auth.atlassian.com");
    assert_int_equal(conf_create(fx, &s, CONF_TTL), STORE_OK);
    assert_int_equal(conf_create(fx, &other, CONF_TTL), STORE_OK);
    assert_int_equal(conf_remove(fx, s.rec.key), STORE_OK);

    conf_op_t op;
    assert_int_equal(conf_get(fx, s.rec.key, &op), STORE_NOT_FOUND);
    conf_op_free(&op);
    assert_int_equal(conf_remove(fx, s.rec.key), STORE_NOT_FOUND);
    assert_int_equal(conf_complete(fx, s.rec.key, result, sizeof(result), 1000, NULL), STORE_NOT_FOUND);
    /* the other session is untouched */
    assert_int_equal(conf_get(fx, other.rec.key, &op), STORE_OK);
    assert_memory_equal(op.rec.token_hash, other.rec.token_hash, sizeof(other.rec.token_hash));
    conf_op_free(&op);
    /* a completed session can be removed too (the instance's acknowledgement) */
    assert_int_equal(conf_complete(fx, other.rec.key, result, sizeof(result), 1000, NULL), STORE_OK);
    assert_int_equal(conf_remove(fx, other.rec.key), STORE_OK);
    assert_int_equal(conf_get(fx, other.rec.key, &op), STORE_NOT_FOUND);
    conf_op_free(&op);
}

static void conf_test_remove_unknown(void **state)
{
    conf_fixture_t *fx = *state;
    conf_session_t s;
    conf_session_init(&s, "auth.example.com");
    assert_int_equal(conf_remove(fx, s.rec.key), STORE_NOT_FOUND);
}

static void conf_test_watch(void **state)
{
    conf_fixture_t *fx = *state;
    conf_session_t s;
    conf_session_init(&s, "auth.atlassian.com");
    assert_int_equal(conf_create(fx, &s, CONF_TTL), STORE_OK);
    assert_int_equal(conf_watch(fx, s.rec.key), STORE_OK);
    fx->store->unwatch(fx->store, s.rec.key); /* immediate: no callback */
    assert_int_equal(conf_watch(fx, s.rec.key), STORE_OK);
    fx->store->unwatch(fx->store, s.rec.key);
    conf_run_for(fx->loop, 20);
    assert_int_equal(fx->notes.count, 0); /* nothing completed */
    assert_int_equal(fx->notes.off_thread, 0);
}

/* a completion on the watching handle itself notifies it, on its loop, with the session's store key */
static void conf_test_notify_same_handle(void **state)
{
    conf_fixture_t *fx = *state;
    const uint8_t result[] = "result";
    conf_session_t s;
    conf_session_init(&s, "auth.atlassian.com");
    assert_int_equal(conf_create(fx, &s, CONF_TTL), STORE_OK);
    assert_int_equal(conf_watch(fx, s.rec.key), STORE_OK);
    assert_int_equal(conf_complete(fx, s.rec.key, result, sizeof(result), 1000, NULL), STORE_OK);
    if (conf_pump(fx->loop, &fx->notes.count, 1, CONF_WAIT_MS) != 0)
        fail_msg("no notification within %d ms", CONF_WAIT_MS);
    conf_run_for(fx->loop, 20);
    assert_int_equal(conf_notes_of(&fx->notes, s.rec.key), fx->notes.count); /* only this session */
    assert_true(fx->notes.count >= 1);
    assert_int_equal(fx->notes.off_thread, 0);
    fx->store->unwatch(fx->store, s.rec.key);
}

/* a handle of another thread, on that thread's loop */
typedef struct st_conf_remote_t {
    store_backend_t *backend;
    const uint8_t *key;
    const uint8_t *result;
    size_t result_len;
    int failed;       /* open or a wait failed */
    int wrong_thread; /* a callback ran off this thread */
    store_status_t complete_status, get_status;
    int get_saw_result;
    conf_notes_t notes;
} conf_remote_t;

static void *conf_remote_complete(void *arg)
{
    conf_remote_t *r = arg;
    h2o_evloop_t *loop = h2o_evloop_create();
    r->notes.thread = pthread_self();
    store_t *store = r->backend->open(r->backend, loop, conf_on_notify, &r->notes);
    if (store == NULL || conf_wait_up(loop, store) != 0) {
        r->failed = 1;
        if (store != NULL)
            store->close(store);
        goto Exit;
    }
    conf_op_t op = {0};
    store->complete(store, r->key, r->result, r->result_len, 4242, 0, NULL, conf_op_cb, &op);
    if (conf_pump(loop, &op.calls, 1, CONF_WAIT_MS) != 0)
        r->failed = 1;
    r->wrong_thread |= !pthread_equal(op.thread, pthread_self());
    r->complete_status = op.status;
    conf_op_free(&op);

    store->get(store, r->key, conf_op_cb, &op);
    if (conf_pump(loop, &op.calls, 1, CONF_WAIT_MS) != 0)
        r->failed = 1;
    r->wrong_thread |= !pthread_equal(op.thread, pthread_self());
    r->get_status = op.status;
    r->get_saw_result = op.has_rec && op.rec.result_len == r->result_len && memcmp(op.rec.result, r->result, r->result_len) == 0;
    conf_op_free(&op);
    store->close(store);
Exit:
    h2o_evloop_run(loop, 0);
    h2o_evloop_destroy(loop);
    return NULL;
}

/* a completion from another handle on another thread's loop notifies the watching handle on its own loop */
static void conf_test_notify_other_thread(void **state)
{
    conf_fixture_t *fx = *state;
    const uint8_t result[] = "completed elsewhere";
    conf_session_t s;
    conf_session_init(&s, "auth.atlassian.com");
    assert_int_equal(conf_create(fx, &s, CONF_TTL), STORE_OK);
    assert_int_equal(conf_watch(fx, s.rec.key), STORE_OK);

    conf_remote_t r = {.backend = fx->backend, .key = s.rec.key, .result = result, .result_len = sizeof(result)};
    pthread_t tid;
    assert_int_equal(pthread_create(&tid, NULL, conf_remote_complete, &r), 0);
    int timed_out = conf_pump(fx->loop, &fx->notes.count, 1, CONF_WAIT_MS);
    assert_int_equal(pthread_join(tid, NULL), 0);
    if (timed_out)
        fail_msg("no notification from the other thread within %d ms", CONF_WAIT_MS);
    conf_run_for(fx->loop, 20);

    assert_false(r.failed);
    assert_false(r.wrong_thread);
    assert_int_equal(r.complete_status, STORE_OK);
    assert_int_equal(r.get_status, STORE_OK);
    assert_true(r.get_saw_result);
    assert_int_equal(r.notes.off_thread, 0);
    assert_true(conf_notes_of(&fx->notes, s.rec.key) >= 1);
    assert_int_equal(conf_notes_of(&fx->notes, s.rec.key), fx->notes.count);
    assert_int_equal(fx->notes.off_thread, 0); /* delivered on the main loop */

    /* and the main handle reads what the other one wrote */
    conf_op_t op;
    assert_int_equal(conf_get(fx, s.rec.key, &op), STORE_OK);
    assert_int_equal(op.rec.result_len, sizeof(result));
    assert_memory_equal(op.rec.result, result, sizeof(result));
    assert_int_equal(op.rec.completed_at, 4242);
    conf_op_free(&op);
    fx->store->unwatch(fx->store, s.rec.key);
}

/* one of many concurrent operations */
typedef struct st_conf_bulk_t {
    store_record_t rec;
    uint8_t meta[8];
    int *done;
    int calls;
    store_status_t status;
    int match; /* the record is this session's */
} conf_bulk_t;

static void conf_bulk_cb(void *ctx, store_status_t status, const store_record_t *rec)
{
    conf_bulk_t *b = ctx;
    ++*b->done;
    ++b->calls;
    b->status = status;
    b->match = rec != NULL && memcmp(rec->key, b->rec.key, RLY_SESSION_ID_BYTES) == 0 &&
               memcmp(rec->token_hash, b->rec.token_hash, sizeof(b->rec.token_hash)) == 0 && rec->meta_len == sizeof(b->meta) &&
               memcmp(rec->meta, b->meta, sizeof(b->meta)) == 0;
}

static void conf_bulk_reset(conf_bulk_t *items, size_t n)
{
    for (size_t i = 0; i != n; ++i) {
        items[i].calls = 0;
        items[i].status = STORE_UNAVAILABLE;
        items[i].match = 0;
    }
}

/* many sessions in flight at once (table growth in the memory store, pipelining in Redis), each retrievable */
static void conf_test_many(void **state)
{
    conf_fixture_t *fx = *state;
    conf_bulk_t *items = calloc(CONF_MANY, sizeof(*items));
    int done = 0;
    assert_non_null(items);
    for (size_t i = 0; i != CONF_MANY; ++i) {
        conf_bulk_t *b = &items[i];
        assert_int_equal(rly_random(b->rec.key, sizeof(b->rec.key)), 0);
        assert_int_equal(rly_random(b->rec.token_hash, sizeof(b->rec.token_hash)), 0);
        assert_int_equal(rly_random(b->meta, sizeof(b->meta)), 0);
        memcpy(b->rec.as_id, "auth.atlassian.com", sizeof("auth.atlassian.com"));
        b->rec.meta = b->meta;
        b->rec.meta_len = sizeof(b->meta);
        b->done = &done;
    }

    conf_bulk_reset(items, CONF_MANY);
    for (size_t i = 0; i != CONF_MANY; ++i)
        fx->store->create(fx->store, &items[i].rec, CONF_TTL, 0, conf_bulk_cb, &items[i]);
    if (conf_pump(fx->loop, &done, CONF_MANY, CONF_BULK_WAIT_MS) != 0)
        fail_msg("%d of %d creates answered", done, CONF_MANY);
    for (size_t i = 0; i != CONF_MANY; ++i) {
        assert_int_equal(items[i].calls, 1);
        assert_int_equal(items[i].status, STORE_OK);
    }

    done = 0;
    conf_bulk_reset(items, CONF_MANY);
    for (size_t i = 0; i != CONF_MANY; ++i)
        fx->store->get(fx->store, items[i].rec.key, conf_bulk_cb, &items[i]);
    if (conf_pump(fx->loop, &done, CONF_MANY, CONF_BULK_WAIT_MS) != 0)
        fail_msg("%d of %d gets answered", done, CONF_MANY);
    for (size_t i = 0; i != CONF_MANY; ++i) {
        assert_int_equal(items[i].calls, 1);
        assert_int_equal(items[i].status, STORE_OK);
        assert_true(items[i].match);
    }

    done = 0;
    conf_bulk_reset(items, CONF_MANY);
    for (size_t i = 0; i != CONF_MANY; ++i)
        fx->store->remove(fx->store, items[i].rec.key, conf_bulk_cb, &items[i]);
    if (conf_pump(fx->loop, &done, CONF_MANY, CONF_BULK_WAIT_MS) != 0)
        fail_msg("%d of %d removes answered", done, CONF_MANY);
    for (size_t i = 0; i != CONF_MANY; ++i) {
        assert_int_equal(items[i].calls, 1);
        assert_int_equal(items[i].status, STORE_OK);
    }
    free(items);
}

/* two threads, each with its own loop and handle, complete the same sessions at the same moment */
typedef struct st_conf_racer_t {
    store_backend_t *backend;
    pthread_barrier_t *barrier;
    const conf_session_t *sessions;
    uint8_t result[16];
    const uint8_t *other_result;
    int failed;
    int wrong_thread;
    int calls[CONF_RACE_ROUNDS];
    store_status_t status[CONF_RACE_ROUNDS];
    int conflict_rec[CONF_RACE_ROUNDS]; /* CONFLICT: 1 rec holds the other's result, 0 something else, -1 no rec */
    conf_notes_t notes;
} conf_racer_t;

static void *conf_racer_main(void *arg)
{
    conf_racer_t *r = arg;
    h2o_evloop_t *loop = h2o_evloop_create();
    r->notes.thread = pthread_self();
    store_t *store = r->backend->open(r->backend, loop, conf_on_notify, &r->notes);
    if (store != NULL && conf_wait_up(loop, store) != 0) {
        store->close(store);
        store = NULL;
    }
    r->failed = store == NULL;
    for (size_t i = 0; i != CONF_RACE_ROUNDS; ++i) {
        pthread_barrier_wait(r->barrier); /* every round, even after a failure: the other thread waits here too */
        if (store == NULL)
            continue;
        conf_op_t op = {0};
        store->complete(store, r->sessions[i].rec.key, r->result, sizeof(r->result), (int64_t)i + 1, 0, NULL, conf_op_cb, &op);
        if (conf_pump(loop, &op.calls, 1, CONF_WAIT_MS) != 0)
            r->failed = 1;
        h2o_evloop_run(loop, 0);
        r->wrong_thread |= op.calls != 0 && !pthread_equal(op.thread, pthread_self());
        r->calls[i] = op.calls;
        r->status[i] = op.status;
        if (op.status == STORE_CONFLICT)
            r->conflict_rec[i] = !op.has_rec ? -1
                                             : op.rec.result_len == sizeof(r->result) &&
                                                   memcmp(op.rec.result, r->other_result, sizeof(r->result)) == 0;
        conf_op_free(&op);
    }
    if (store != NULL)
        store->close(store);
    h2o_evloop_run(loop, 0);
    h2o_evloop_destroy(loop);
    return NULL;
}

static void conf_test_concurrent_complete(void **state)
{
    conf_fixture_t *fx = *state;
    conf_session_t *sessions = calloc(CONF_RACE_ROUNDS, sizeof(*sessions));
    conf_racer_t *racers = calloc(2, sizeof(*racers));
    pthread_barrier_t barrier;
    pthread_t tids[2];
    assert_non_null(sessions);
    assert_non_null(racers);
    for (size_t i = 0; i != CONF_RACE_ROUNDS; ++i) {
        conf_session_init(&sessions[i], "auth.atlassian.com");
        assert_int_equal(conf_create(fx, &sessions[i], CONF_TTL), STORE_OK);
    }
    assert_int_equal(pthread_barrier_init(&barrier, NULL, 2), 0);
    for (size_t t = 0; t != 2; ++t) {
        racers[t].backend = fx->backend;
        racers[t].barrier = &barrier;
        racers[t].sessions = sessions;
        memset(racers[t].result, t == 0 ? 'A' : 'B', sizeof(racers[t].result));
        racers[t].other_result = racers[1 - t].result;
    }
    for (size_t t = 0; t != 2; ++t)
        assert_int_equal(pthread_create(&tids[t], NULL, conf_racer_main, &racers[t]), 0);
    for (size_t t = 0; t != 2; ++t)
        assert_int_equal(pthread_join(tids[t], NULL), 0);
    pthread_barrier_destroy(&barrier);

    for (size_t t = 0; t != 2; ++t) {
        assert_false(racers[t].failed);
        assert_false(racers[t].wrong_thread);
        assert_int_equal(racers[t].notes.off_thread, 0);
    }
    for (size_t i = 0; i != CONF_RACE_ROUNDS; ++i) {
        assert_int_equal(racers[0].calls[i], 1);
        assert_int_equal(racers[1].calls[i], 1);
        int ok = (racers[0].status[i] == STORE_OK) + (racers[1].status[i] == STORE_OK);
        int conflict = (racers[0].status[i] == STORE_CONFLICT) + (racers[1].status[i] == STORE_CONFLICT);
        if (ok != 1 || conflict != 1)
            fail_msg("round %zu: %d OK and %d CONFLICT", i, ok, conflict);
        size_t winner = racers[0].status[i] == STORE_OK ? 0 : 1;
        assert_int_not_equal(racers[1 - winner].conflict_rec[i], 0); /* a CONFLICT's record holds the winner's result */

        conf_op_t op;
        assert_int_equal(conf_get(fx, sessions[i].rec.key, &op), STORE_OK);
        assert_int_equal(op.rec.result_len, sizeof(racers[winner].result));
        assert_memory_equal(op.rec.result, racers[winner].result, sizeof(racers[winner].result));
        assert_int_equal(op.rec.completed_at, (int64_t)i + 1);
        conf_op_free(&op);
    }
    free(racers);
    free(sessions);
}

/* every callback of a mixed batch runs exactly once */
static void conf_test_callbacks_once(void **state)
{
    enum { N = 50, KINDS = 9 };
    conf_fixture_t *fx = *state;
    const uint8_t result[] = "result";
    conf_session_t *s = calloc(N, sizeof(*s));
    conf_bulk_t *ops = calloc((size_t)N * KINDS, sizeof(*ops));
    int done = 0;
    assert_non_null(s);
    assert_non_null(ops);
    for (size_t i = 0; i != (size_t)N * KINDS; ++i) {
        ops[i].done = &done;
        ops[i].status = STORE_UNAVAILABLE;
    }
    for (size_t i = 0; i != N; ++i) {
        conf_session_t unknown;
        conf_bulk_t *o = &ops[i * KINDS];
        conf_session_init(&s[i], "auth.atlassian.com");
        conf_session_init(&unknown, "auth.atlassian.com");
        fx->store->create(fx->store, &s[i].rec, CONF_TTL, 0, conf_bulk_cb, &o[0]);
        fx->store->get(fx->store, s[i].rec.key, conf_bulk_cb, &o[1]);
        fx->store->watch(fx->store, s[i].rec.key, conf_bulk_cb, &o[2]);
        fx->store->complete(fx->store, s[i].rec.key, result, sizeof(result), 1000, 0, NULL, conf_bulk_cb, &o[3]);
        fx->store->complete(fx->store, s[i].rec.key, result, sizeof(result), 2000, 0, NULL, conf_bulk_cb, &o[4]);
        fx->store->mark_read(fx->store, s[i].rec.key, conf_bulk_cb, &o[5]);
        fx->store->get(fx->store, unknown.rec.key, conf_bulk_cb, &o[6]);
        fx->store->remove(fx->store, s[i].rec.key, conf_bulk_cb, &o[7]);
        fx->store->remove(fx->store, s[i].rec.key, conf_bulk_cb, &o[8]);
        fx->store->unwatch(fx->store, s[i].rec.key);
    }
    if (conf_pump(fx->loop, &done, N * KINDS, CONF_BULK_WAIT_MS) != 0)
        fail_msg("%d of %d callbacks ran", done, N * KINDS);
    conf_run_for(fx->loop, 50);
    assert_int_equal(done, N * KINDS);
    static const store_status_t expected[KINDS] = {STORE_OK, STORE_OK,        STORE_OK, STORE_OK,       STORE_CONFLICT,
                                                   STORE_OK, STORE_NOT_FOUND, STORE_OK, STORE_NOT_FOUND};
    for (size_t i = 0; i != (size_t)N * KINDS; ++i) {
        assert_int_equal(ops[i].calls, 1);
        if (ops[i].status != expected[i % KINDS])
            fail_msg("session %zu, operation %zu: status %d, expected %d", i / KINDS, i % KINDS, (int)ops[i].status,
                     (int)expected[i % KINDS]);
    }
    free(ops);
    free(s);
}

/* ---- 1.1: bound sessions ---- */

/* a bound session: start_hash, and the start token's entry holding ref */
static void conf_bound_init(conf_session_t *s, uint8_t *ref, size_t ref_len)
{
    conf_session_init(s, "auth.atlassian.com");
    assert_int_equal(rly_random(s->rec.start_hash, sizeof(s->rec.start_hash)), 0);
    assert_int_equal(rly_random(ref, ref_len), 0);
    ref[0] = 0; /* binary */
    s->rec.bound = 1;
    s->rec.start_ref = ref;
    s->rec.start_ref_len = ref_len;
}

static store_status_t conf_confirm(conf_fixture_t *fx, const uint8_t key[RLY_SESSION_ID_BYTES], const uint8_t start_hash[32],
                                   const uint8_t cookie_hash[32], conf_op_t *op)
{
    conf_op_t local;
    if (op == NULL)
        op = &local;
    memset(op, 0, sizeof(*op));
    fx->store->confirm(fx->store, key, start_hash, cookie_hash, conf_op_cb, op);
    conf_await(fx, op);
    store_status_t st = op->status;
    if (op == &local)
        conf_op_free(&local);
    return st;
}

static store_status_t conf_complete_cookie(conf_fixture_t *fx, const uint8_t key[RLY_SESSION_ID_BYTES], const uint8_t *cookie_hash)
{
    conf_op_t op = {0};
    static const uint8_t result[] = "locked result";
    fx->store->complete(fx->store, key, result, sizeof(result), 42, 0, cookie_hash, conf_op_cb, &op);
    conf_await(fx, &op);
    store_status_t st = op.status;
    conf_op_free(&op);
    return st;
}

/* the start token's entry leads to its reference; the record says bound, with the start hash, unconfirmed */
static void conf_test_bound_start(void **state)
{
    conf_fixture_t *fx = *state;
    conf_session_t s;
    uint8_t ref[45], other[32];
    conf_bound_init(&s, ref, sizeof(ref));
    assert_int_equal(conf_create(fx, &s, CONF_TTL), STORE_OK);
    conf_op_t op = {0};
    fx->store->get_start(fx->store, s.rec.start_hash, conf_op_cb, &op);
    conf_await(fx, &op);
    assert_int_equal(op.status, STORE_OK);
    assert_int_equal(op.rec.start_ref_len, sizeof(ref));
    assert_memory_equal(op.rec.start_ref, ref, sizeof(ref));
    conf_op_free(&op);
    assert_int_equal(rly_random(other, sizeof(other)), 0);
    fx->store->get_start(fx->store, other, conf_op_cb, &op);
    conf_await(fx, &op);
    assert_int_equal(op.status, STORE_NOT_FOUND);
    conf_op_free(&op);
    /* a session's key is not a start token's and the reverse */
    fx->store->get_start(fx->store, s.rec.key, conf_op_cb, &op);
    conf_await(fx, &op);
    assert_int_equal(op.status, STORE_NOT_FOUND);
    conf_op_free(&op);
    assert_int_equal(conf_get(fx, s.rec.start_hash, &op), STORE_NOT_FOUND);
    conf_op_free(&op);
    assert_int_equal(conf_get(fx, s.rec.key, &op), STORE_OK);
    assert_true(op.rec.bound);
    assert_false(op.rec.confirmed);
    assert_memory_equal(op.rec.start_hash, s.rec.start_hash, 32);
    conf_op_free(&op);
}

/* confirm: the first caller with the right start hash wins; the cookie hash is recorded */
static void conf_test_bound_confirm(void **state)
{
    conf_fixture_t *fx = *state;
    conf_session_t s, plain;
    uint8_t ref[45], cookie[32], wrong[32];
    conf_bound_init(&s, ref, sizeof(ref));
    assert_int_equal(rly_random(cookie, sizeof(cookie)), 0);
    assert_int_equal(rly_random(wrong, sizeof(wrong)), 0);
    assert_int_equal(conf_create(fx, &s, CONF_TTL), STORE_OK);
    assert_int_equal(conf_confirm(fx, s.rec.key, wrong, cookie, NULL), STORE_CONFLICT);
    conf_op_t op;
    assert_int_equal(conf_confirm(fx, s.rec.key, s.rec.start_hash, cookie, &op), STORE_OK);
    assert_true(op.has_rec);
    assert_false(op.rec.confirmed); /* the record before the change */
    assert_int_equal(op.rec.meta_len, sizeof(s.meta));
    conf_op_free(&op);
    assert_int_equal(conf_confirm(fx, s.rec.key, s.rec.start_hash, wrong, NULL), STORE_CONFLICT);
    assert_int_equal(conf_get(fx, s.rec.key, &op), STORE_OK);
    assert_true(op.rec.confirmed);
    assert_memory_equal(op.rec.cookie_hash, cookie, 32);
    conf_op_free(&op);
    /* an unbound session cannot be confirmed; an unknown one is not found */
    conf_session_init(&plain, "auth.atlassian.com");
    assert_int_equal(conf_create(fx, &plain, CONF_TTL), STORE_OK);
    assert_int_equal(conf_confirm(fx, plain.rec.key, plain.rec.start_hash, cookie, NULL), STORE_CONFLICT);
    assert_int_equal(conf_confirm(fx, wrong, s.rec.start_hash, cookie, NULL), STORE_NOT_FOUND);
}

/* many confirmations in flight at once: exactly one wins */
static void conf_test_bound_confirm_once(void **state)
{
    conf_fixture_t *fx = *state;
    conf_session_t s;
    uint8_t ref[45], cookies[16][32];
    conf_op_t ops[16];
    conf_bound_init(&s, ref, sizeof(ref));
    assert_int_equal(conf_create(fx, &s, CONF_TTL), STORE_OK);
    memset(ops, 0, sizeof(ops));
    for (size_t i = 0; i != 16; ++i) {
        assert_int_equal(rly_random(cookies[i], 32), 0);
        fx->store->confirm(fx->store, s.rec.key, s.rec.start_hash, cookies[i], conf_op_cb, &ops[i]);
    }
    int won = 0;
    for (size_t i = 0; i != 16; ++i) {
        conf_await(fx, &ops[i]);
        if (ops[i].status == STORE_OK)
            ++won;
        else
            assert_int_equal(ops[i].status, STORE_CONFLICT);
        conf_op_free(&ops[i]);
    }
    assert_int_equal(won, 1);
}

/* complete: a bound session takes a result only with the confirming browser's cookie hash; nothing written otherwise;
 * completed, it is a conflict whatever the cookie */
static void conf_test_bound_complete(void **state)
{
    conf_fixture_t *fx = *state;
    conf_session_t s;
    uint8_t ref[45], cookie[32], other[32];
    conf_bound_init(&s, ref, sizeof(ref));
    assert_int_equal(rly_random(cookie, sizeof(cookie)), 0);
    assert_int_equal(rly_random(other, sizeof(other)), 0);
    assert_int_equal(conf_create(fx, &s, CONF_TTL), STORE_OK);
    assert_int_equal(conf_complete_cookie(fx, s.rec.key, cookie), STORE_FORBIDDEN); /* not confirmed */
    assert_int_equal(conf_confirm(fx, s.rec.key, s.rec.start_hash, cookie, NULL), STORE_OK);
    assert_int_equal(conf_complete_cookie(fx, s.rec.key, NULL), STORE_FORBIDDEN);
    assert_int_equal(conf_complete_cookie(fx, s.rec.key, other), STORE_FORBIDDEN);
    conf_op_t op;
    assert_int_equal(conf_get(fx, s.rec.key, &op), STORE_OK);
    assert_null(op.rec.result); /* nothing was written */
    conf_op_free(&op);
    assert_int_equal(conf_complete_cookie(fx, s.rec.key, cookie), STORE_OK);
    assert_int_equal(conf_complete_cookie(fx, s.rec.key, other), STORE_CONFLICT);
    assert_int_equal(conf_complete_cookie(fx, s.rec.key, cookie), STORE_CONFLICT);
}

/* ---- the limit on live sessions ---- */

static void conf_start_empty(void)
{
    if (conf_empty != NULL)
        conf_empty();
}

/* creates up to max succeed, the next is STORE_FULL and writes nothing, a removed session frees its room; a bound
 * session counts once (its start token's entry is not a session); max 0 is no limit, a larger max room again */
static void conf_test_max(void **state)
{
    conf_fixture_t *fx = *state;
    enum { MAX = 5 };
    conf_session_t s[MAX], bound, more, extra;
    uint8_t ref[45];
    conf_start_empty();
    for (size_t i = 0; i != MAX - 1; ++i) {
        conf_session_init(&s[i], "auth.atlassian.com");
        assert_int_equal(conf_create_max(fx, &s[i], CONF_TTL, MAX), STORE_OK);
    }
    conf_bound_init(&bound, ref, sizeof(ref));
    assert_int_equal(conf_create_max(fx, &bound, CONF_TTL, MAX), STORE_OK);

    conf_session_init(&more, "auth.atlassian.com");
    assert_int_equal(conf_create_max(fx, &more, CONF_TTL, MAX), STORE_FULL);
    assert_int_equal(conf_create_max(fx, &more, CONF_TTL, MAX), STORE_FULL); /* and again: a refusal takes no room */
    conf_op_t op;
    assert_int_equal(conf_get(fx, more.rec.key, &op), STORE_NOT_FOUND); /* nothing written */
    conf_op_free(&op);
    /* the sessions already there go on: read, completed, read */
    const uint8_t result[] = "result";
    assert_int_equal(conf_complete(fx, s[0].rec.key, result, sizeof(result), 1000, NULL), STORE_OK);
    assert_int_equal(conf_mark_read(fx, s[0].rec.key, NULL), STORE_OK);
    assert_int_equal(conf_get(fx, bound.rec.key, &op), STORE_OK);
    conf_op_free(&op);

    assert_int_equal(conf_remove(fx, s[1].rec.key), STORE_OK);
    assert_int_equal(conf_create_max(fx, &more, CONF_TTL, MAX), STORE_OK);
    assert_int_equal(conf_get(fx, more.rec.key, &op), STORE_OK);
    conf_op_free(&op);
    conf_session_init(&extra, "auth.atlassian.com");
    assert_int_equal(conf_create_max(fx, &extra, CONF_TTL, MAX), STORE_FULL);
    assert_int_equal(conf_remove(fx, bound.rec.key), STORE_OK); /* a bound session's room too */
    assert_int_equal(conf_create_max(fx, &extra, CONF_TTL, MAX), STORE_OK);

    conf_session_t again;
    conf_session_init(&again, "auth.atlassian.com");
    assert_int_equal(conf_create_max(fx, &again, CONF_TTL, MAX), STORE_FULL);
    assert_int_equal(conf_create_max(fx, &again, CONF_TTL, MAX + 1), STORE_OK);
    conf_session_t unlimited;
    conf_session_init(&unlimited, "auth.atlassian.com");
    assert_int_equal(conf_create_max(fx, &unlimited, CONF_TTL, MAX + 1), STORE_FULL);
    assert_int_equal(conf_create_max(fx, &unlimited, CONF_TTL, 0), STORE_OK);
}

/* expired sessions free their room by themselves, without any read or removal of them */
static void conf_test_max_expiry(void **state)
{
    conf_fixture_t *fx = *state;
    enum { MAX = 3 };
    conf_session_t s[MAX], late[MAX], more;
    conf_start_empty();
    for (size_t i = 0; i != MAX; ++i) {
        conf_session_init(&s[i], "auth.atlassian.com");
        assert_int_equal(conf_create_max(fx, &s[i], 1, MAX), STORE_OK);
    }
    conf_session_init(&more, "auth.atlassian.com");
    assert_int_equal(conf_create_max(fx, &more, CONF_TTL, MAX), STORE_FULL);
    conf_run_for(fx->loop, 1100);
    for (size_t i = 0; i != MAX; ++i) {
        conf_session_init(&late[i], "auth.atlassian.com");
        assert_int_equal(conf_create_max(fx, &late[i], CONF_TTL, MAX), STORE_OK);
    }
    assert_int_equal(conf_create_max(fx, &more, CONF_TTL, MAX), STORE_FULL);
}

/* creates in flight at once on two handles of one store (two worker threads, or two replicas on one Redis): exactly
 * max of them succeed, the others are STORE_FULL */
static void conf_test_max_shared(void **state)
{
    conf_fixture_t *fx = *state;
    enum { MAX = 150, EACH = 100 };
    conf_start_empty();
    conf_notes_t notes = {.thread = pthread_self()};
    store_t *second = fx->backend->open(fx->backend, fx->loop, conf_on_notify, &notes);
    assert_non_null(second);
    assert_int_equal(conf_wait_up(fx->loop, second), 0);
    conf_bulk_t *items = calloc(2 * EACH, sizeof(*items));
    assert_non_null(items);
    int done = 0;
    for (size_t i = 0; i != 2 * EACH; ++i) {
        conf_bulk_t *b = &items[i];
        assert_int_equal(rly_random(b->rec.key, sizeof(b->rec.key)), 0);
        assert_int_equal(rly_random(b->rec.token_hash, sizeof(b->rec.token_hash)), 0);
        memcpy(b->rec.as_id, "auth.atlassian.com", sizeof("auth.atlassian.com"));
        b->rec.meta = b->meta;
        b->rec.meta_len = sizeof(b->meta);
        b->done = &done;
    }
    conf_bulk_reset(items, 2 * EACH);
    for (size_t i = 0; i != EACH; ++i) { /* interleaved: each handle's commands go out as they are made */
        fx->store->create(fx->store, &items[2 * i].rec, CONF_TTL, MAX, conf_bulk_cb, &items[2 * i]);
        second->create(second, &items[2 * i + 1].rec, CONF_TTL, MAX, conf_bulk_cb, &items[2 * i + 1]);
    }
    if (conf_pump(fx->loop, &done, 2 * EACH, CONF_BULK_WAIT_MS) != 0)
        fail_msg("%d of %d creates answered", done, 2 * EACH);
    int ok = 0, full = 0, ok_second = 0;
    for (size_t i = 0; i != 2 * EACH; ++i) {
        assert_int_equal(items[i].calls, 1);
        ok += items[i].status == STORE_OK;
        ok_second += items[i].status == STORE_OK && i % 2 == 1;
        full += items[i].status == STORE_FULL;
    }
    assert_int_equal(ok, MAX);
    assert_int_equal(full, 2 * EACH - MAX);
    assert_true(ok_second > 0 && ok_second < ok); /* both handles took part */
    free(items);
    second->close(second);
    h2o_evloop_run(fx->loop, 0);
}

/* every conformance test, for a back-end's CMUnitTest array */
#define STORE_CONFORMANCE_TEST(f) cmocka_unit_test_setup_teardown(f, conf_setup, conf_teardown)
#define STORE_CONFORMANCE_TESTS                                                                                                    \
    STORE_CONFORMANCE_TEST(conf_test_create_get), STORE_CONFORMANCE_TEST(conf_test_get_unknown),                                   \
        STORE_CONFORMANCE_TEST(conf_test_complete), STORE_CONFORMANCE_TEST(conf_test_complete_twice),                              \
        STORE_CONFORMANCE_TEST(conf_test_complete_record), STORE_CONFORMANCE_TEST(conf_test_complete_sealed),                      \
        STORE_CONFORMANCE_TEST(conf_test_complete_unknown), STORE_CONFORMANCE_TEST(conf_test_mark_read),                           \
        STORE_CONFORMANCE_TEST(conf_test_mark_read_short), STORE_CONFORMANCE_TEST(conf_test_mark_read_pending),                    \
        STORE_CONFORMANCE_TEST(conf_test_expiry), STORE_CONFORMANCE_TEST(conf_test_remove),                                        \
        STORE_CONFORMANCE_TEST(conf_test_remove_unknown), STORE_CONFORMANCE_TEST(conf_test_watch),                                 \
        STORE_CONFORMANCE_TEST(conf_test_notify_same_handle), STORE_CONFORMANCE_TEST(conf_test_notify_other_thread),               \
        STORE_CONFORMANCE_TEST(conf_test_many), STORE_CONFORMANCE_TEST(conf_test_concurrent_complete),                             \
        STORE_CONFORMANCE_TEST(conf_test_callbacks_once), STORE_CONFORMANCE_TEST(conf_test_bound_start),                           \
        STORE_CONFORMANCE_TEST(conf_test_bound_confirm), STORE_CONFORMANCE_TEST(conf_test_bound_confirm_once),                     \
        STORE_CONFORMANCE_TEST(conf_test_bound_complete), STORE_CONFORMANCE_TEST(conf_test_max),                                   \
        STORE_CONFORMANCE_TEST(conf_test_max_expiry), STORE_CONFORMANCE_TEST(conf_test_max_shared)

#endif
