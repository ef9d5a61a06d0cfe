/* test_store_memory.c: relay/store_memory.c through the store conformance suite, plus what only the memory store shows */
#include "store_conformance.h"

static store_backend_t *make_memory(void)
{
    return store_memory_new();
}

static void test_identity(void **state)
{
    conf_fixture_t *fx = *state;
    assert_string_equal(fx->backend->name, "memory");
    assert_int_equal(fx->backend->ready(fx->backend), 1);
    assert_int_equal(store_memory_count(fx->backend), 0);
}

/* the count follows creates and removes, and grows past the initial table size */
static void test_count_and_growth(void **state)
{
    conf_fixture_t *fx = *state;
    enum { N = 5000 };
    conf_session_t *s = calloc(N, sizeof(*s));
    assert_non_null(s);
    for (size_t i = 0; i != N; ++i) {
        conf_session_init(&s[i], "auth.atlassian.com");
        assert_int_equal(conf_create(fx, &s[i], CONF_TTL), STORE_OK);
    }
    assert_int_equal(store_memory_count(fx->backend), N);
    for (size_t i = 0; i != N; ++i) {
        conf_op_t op;
        assert_int_equal(conf_get(fx, s[i].rec.key, &op), STORE_OK);
        assert_memory_equal(op.rec.token_hash, s[i].rec.token_hash, sizeof(s[i].rec.token_hash));
        conf_op_free(&op);
    }
    for (size_t i = 0; i != N; i += 2)
        assert_int_equal(conf_remove(fx, s[i].rec.key), STORE_OK);
    assert_int_equal(store_memory_count(fx->backend), N / 2);
    for (size_t i = 0; i != N; ++i) {
        conf_op_t op;
        assert_int_equal(conf_get(fx, s[i].rec.key, &op), i % 2 == 0 ? STORE_NOT_FOUND : STORE_OK);
        conf_op_free(&op);
    }
    free(s);
}

/* expired sessions are swept (memory is given back), not only hidden */
static void test_sweep(void **state)
{
    conf_fixture_t *fx = *state;
    conf_session_t s[10], late;
    for (size_t i = 0; i != 10; ++i) {
        conf_session_init(&s[i], "auth.atlassian.com");
        assert_int_equal(conf_create(fx, &s[i], 1), STORE_OK);
    }
    assert_int_equal(store_memory_count(fx->backend), 10);
    conf_run_for(fx->loop, 1100);
    /* the next create reclaims them */
    conf_session_init(&late, "auth.atlassian.com");
    assert_int_equal(conf_create(fx, &late, CONF_TTL), STORE_OK);
    assert_int_equal(store_memory_count(fx->backend), 1);
}

/* the expiry heap under creates, first reads (a shorter life) and removals in any order: after the short-lived ones
 * expired, the next create reclaims exactly them, and the limit counts exactly the others */
static void test_expiry_heap(void **state)
{
    conf_fixture_t *fx = *state;
    enum { N = 300 };
    const uint8_t result[] = "result";
    conf_session_t *s = calloc(N, sizeof(*s));
    assert_non_null(s);
    size_t live = 0;
    for (size_t i = 0; i != N; ++i) {
        conf_session_init(&s[i], "auth.atlassian.com");
        unsigned ttl = i % 3 == 0 ? 1 : (unsigned)(600 - i); /* every third expires soon, the others in descending order */
        assert_int_equal(conf_create(fx, &s[i], ttl), STORE_OK);
    }
    for (size_t i = 0; i != N; ++i) {
        if (i % 3 == 0)
            continue;
        if (i % 5 == 0) {
            assert_int_equal(conf_remove(fx, s[i].rec.key), STORE_OK);
        } else {
            if (i % 7 == 0) { /* read: cut to RLY_AFTER_READ_TTL, moved up in the heap */
                assert_int_equal(conf_complete(fx, s[i].rec.key, result, sizeof(result), 1000, NULL), STORE_OK);
                assert_int_equal(conf_mark_read(fx, s[i].rec.key, NULL), STORE_OK);
            }
            ++live;
        }
    }
    assert_int_equal(store_memory_count(fx->backend), live + N / 3);
    conf_run_for(fx->loop, 1100);
    conf_session_t late;
    conf_session_init(&late, "auth.atlassian.com");
    assert_int_equal(conf_create_max(fx, &late, CONF_TTL, (unsigned)live + 1), STORE_OK); /* all N / 3 reclaimed */
    assert_int_equal(store_memory_count(fx->backend), live + 1);
    conf_session_t more;
    conf_session_init(&more, "auth.atlassian.com");
    assert_int_equal(conf_create_max(fx, &more, CONF_TTL, (unsigned)live + 1), STORE_FULL);
    for (size_t i = 0; i != N; ++i) {
        conf_op_t op;
        int gone = i % 3 == 0 || i % 5 == 0;
        assert_int_equal(conf_get(fx, s[i].rec.key, &op), gone ? STORE_NOT_FOUND : STORE_OK);
        conf_op_free(&op);
    }
    free(s);
}

/* closing a handle with notifications still queued frees them (the sanitizer build checks for leaks) and never calls
 * its on_notify afterwards; the memory store's callbacks run before the call returns, so the loop need not run here */
static void test_close_with_pending_notifications(void **state)
{
    conf_fixture_t *fx = *state;
    const uint8_t result[] = "result";
    conf_notes_t second_notes = {.thread = pthread_self()};
    store_t *second = fx->backend->open(fx->backend, fx->loop, conf_on_notify, &second_notes);
    assert_non_null(second);
    for (size_t i = 0; i != 5; ++i) {
        conf_session_t s;
        conf_op_t op = {0};
        conf_session_init(&s, "auth.atlassian.com");
        fx->store->create(fx->store, &s.rec, CONF_TTL, 0, conf_op_cb, &op);
        assert_int_equal(op.calls, 1);
        assert_int_equal(op.status, STORE_OK);
        conf_op_free(&op);
        fx->store->complete(fx->store, s.rec.key, result, sizeof(result), 1000, 0, NULL, conf_op_cb, &op);
        assert_int_equal(op.calls, 1);
        assert_int_equal(op.status, STORE_OK);
        conf_op_free(&op);
    }
    second->close(second); /* 5 messages still queued for it */
    /* the first handle still gets its 5 */
    if (conf_pump(fx->loop, &fx->notes.count, 5, CONF_WAIT_MS) != 0)
        fail_msg("%d of 5 notifications", fx->notes.count);
    conf_run_for(fx->loop, 20);
    assert_int_equal(fx->notes.count, 5);
    assert_int_equal(second_notes.count, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        STORE_CONFORMANCE_TESTS,
        STORE_CONFORMANCE_TEST(test_identity),
        STORE_CONFORMANCE_TEST(test_count_and_growth),
        STORE_CONFORMANCE_TEST(test_sweep),
        STORE_CONFORMANCE_TEST(test_expiry_heap),
        STORE_CONFORMANCE_TEST(test_close_with_pending_notifications),
    };
    store_conformance_use(make_memory);
    store_conformance_use_empty(NULL); /* each test's back-end is a new, empty table */
    return cmocka_run_group_tests_name("store_memory", tests, NULL, NULL);
}
