/* test_waiters.c: unit tests of relay/waiters.c: add/remove/has/count, wake by session, wake_all, re-adding in on_wake */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>
#include "waiters.h"

/* ids sharing their first 8 bytes modulo 2^24 land in one bucket of any power-of-two table up to 2^24 entries (the
 * table hashes the first 8 bytes; relay/waiters.c has 16384 buckets) */
#define SAME_BUCKET_STRIDE ((uint64_t)1 << 24)

typedef struct st_test_waiter_t {
    relay_waiter_t super;
    relay_waiters_t *table;
    int woken;
    int readd;                    /* on_wake puts it back into the table this many times */
    int in_table;                 /* relay_waiters_has for its session, seen inside on_wake */
    size_t count_in;              /* relay_waiters_count, seen inside on_wake */
    relay_waiter_t *remove_other; /* on_wake removes this one */
} test_waiter_t;

static void on_wake(relay_waiter_t *w)
{
    test_waiter_t *t = (test_waiter_t *)w;
    ++t->woken;
    t->in_table = relay_waiters_has(t->table, w->key);
    t->count_in = relay_waiters_count(t->table);
    if (t->remove_other != NULL)
        relay_waiters_remove(t->table, t->remove_other);
    if (t->readd > 0) {
        --t->readd;
        relay_waiters_add(t->table, w);
    }
}

/* a session id whose first 8 bytes hold prefix (in memory order, as the table reads them) and whose rest is tail */
static void make_sid(uint8_t sid[RLY_SESSION_ID_BYTES], uint64_t prefix, uint64_t tail)
{
    memcpy(sid, &prefix, 8);
    memcpy(sid + 8, &tail, 8);
}

static void waiter_init(test_waiter_t *w, relay_waiters_t *t, uint64_t prefix, uint64_t tail)
{
    memset(w, 0, sizeof(*w));
    make_sid(w->super.key, prefix, tail);
    w->super.on_wake = on_wake;
    w->table = t;
}

static void test_add_remove_has_count(void **state)
{
    (void)state;
    relay_waiters_t *t = relay_waiters_new();
    test_waiter_t a, b, c;
    uint8_t other[RLY_SESSION_ID_BYTES];
    assert_non_null(t);
    waiter_init(&a, t, 0x1111, 1);
    waiter_init(&b, t, 0x1111, 1); /* same session as a */
    waiter_init(&c, t, 0x2222, 2);
    make_sid(other, 0x3333, 3);

    assert_int_equal(relay_waiters_count(t), 0);
    assert_false(relay_waiters_has(t, a.super.key));
    relay_waiters_add(t, &a.super);
    relay_waiters_add(t, &b.super);
    relay_waiters_add(t, &c.super);
    assert_int_equal(relay_waiters_count(t), 3);
    assert_true(relay_waiters_has(t, a.super.key));
    assert_true(relay_waiters_has(t, c.super.key));
    assert_false(relay_waiters_has(t, other));

    relay_waiters_remove(t, &a.super);
    assert_int_equal(relay_waiters_count(t), 2);
    assert_true(relay_waiters_has(t, a.super.key)); /* b still waits on it */
    relay_waiters_remove(t, &b.super);
    assert_false(relay_waiters_has(t, a.super.key));
    assert_true(relay_waiters_has(t, c.super.key));
    relay_waiters_remove(t, &c.super);
    assert_int_equal(relay_waiters_count(t), 0);
    assert_false(relay_waiters_has(t, c.super.key));
    assert_int_equal(a.woken + b.woken + c.woken, 0);

    /* a removed waiter can be added again */
    relay_waiters_add(t, &a.super);
    assert_int_equal(relay_waiters_count(t), 1);
    relay_waiters_remove(t, &a.super);
    relay_waiters_free(t);
}

/* waking one session wakes exactly its waiters, even among ids colliding in the table */
static void test_wake_one_session(void **state)
{
    (void)state;
    relay_waiters_t *t = relay_waiters_new();
    assert_non_null(t);
    const uint64_t p = 0x0123456789abcdefULL;
    test_waiter_t mine[3], same_prefix, same_bucket, same_bucket2, elsewhere;
    for (size_t i = 0; i != 3; ++i)
        waiter_init(&mine[i], t, p, 42);
    waiter_init(&same_prefix, t, p, 43);                          /* first 8 bytes equal, different session */
    waiter_init(&same_bucket, t, p + SAME_BUCKET_STRIDE, 42);     /* same bucket, different first 8 bytes */
    waiter_init(&same_bucket2, t, p + 5 * SAME_BUCKET_STRIDE, 7); /* and another */
    waiter_init(&elsewhere, t, p + 1, 42);                        /* another bucket */

    relay_waiters_add(t, &same_prefix.super);
    relay_waiters_add(t, &mine[0].super);
    relay_waiters_add(t, &same_bucket.super);
    relay_waiters_add(t, &mine[1].super);
    relay_waiters_add(t, &elsewhere.super);
    relay_waiters_add(t, &mine[2].super);
    relay_waiters_add(t, &same_bucket2.super);
    assert_int_equal(relay_waiters_count(t), 7);

    relay_waiters_wake(t, mine[0].super.key);
    for (size_t i = 0; i != 3; ++i) {
        assert_int_equal(mine[i].woken, 1);
        assert_false(mine[i].in_table); /* every waiter of the session left the table before the first on_wake */
        assert_int_equal(mine[i].count_in, 4);
    }
    assert_int_equal(same_prefix.woken, 0);
    assert_int_equal(same_bucket.woken, 0);
    assert_int_equal(same_bucket2.woken, 0);
    assert_int_equal(elsewhere.woken, 0);
    assert_int_equal(relay_waiters_count(t), 4);
    assert_true(relay_waiters_has(t, same_prefix.super.key));
    assert_true(relay_waiters_has(t, same_bucket.super.key));
    assert_true(relay_waiters_has(t, same_bucket2.super.key));
    assert_true(relay_waiters_has(t, elsewhere.super.key));
    assert_false(relay_waiters_has(t, mine[0].super.key));

    /* waking again finds nobody; the woken ones are unlinked, so removing them is a no-op */
    relay_waiters_wake(t, mine[0].super.key);
    for (size_t i = 0; i != 3; ++i) {
        assert_int_equal(mine[i].woken, 1);
        relay_waiters_remove(t, &mine[i].super);
    }
    assert_int_equal(relay_waiters_count(t), 4);

    /* the colliding ones wake one session at a time */
    relay_waiters_wake(t, same_bucket.super.key);
    assert_int_equal(same_bucket.woken, 1);
    assert_int_equal(same_bucket2.woken + same_prefix.woken + elsewhere.woken, 0);
    assert_int_equal(relay_waiters_count(t), 3);

    relay_waiters_remove(t, &same_prefix.super);
    relay_waiters_remove(t, &same_bucket2.super);
    relay_waiters_remove(t, &elsewhere.super);
    assert_int_equal(relay_waiters_count(t), 0);
    relay_waiters_free(t);
}

static void test_wake_all(void **state)
{
    (void)state;
    relay_waiters_t *t = relay_waiters_new();
    assert_non_null(t);
    enum { N = 100 };
    test_waiter_t w[N];
    for (size_t i = 0; i != N; ++i) {
        waiter_init(&w[i], t, i % 7 * SAME_BUCKET_STRIDE + i % 3, i);
        relay_waiters_add(t, &w[i].super);
    }
    assert_int_equal(relay_waiters_count(t), N);
    relay_waiters_wake_all(t);
    for (size_t i = 0; i != N; ++i) {
        assert_int_equal(w[i].woken, 1);
        assert_int_equal(w[i].count_in, 0); /* all left the table before the first on_wake */
    }
    assert_int_equal(relay_waiters_count(t), 0);
    relay_waiters_wake_all(t); /* an empty table: nothing happens */
    for (size_t i = 0; i != N; ++i)
        assert_int_equal(w[i].woken, 1);
    relay_waiters_free(t);
}

/* a waiter that re-adds itself inside on_wake (a pickup that waits again) is not woken twice by the same call */
static void test_readd_in_on_wake(void **state)
{
    (void)state;
    relay_waiters_t *t = relay_waiters_new();
    assert_non_null(t);
    test_waiter_t a, b;
    waiter_init(&a, t, 0xfeed, 1);
    waiter_init(&b, t, 0xfeed, 1);
    a.readd = 1;
    b.readd = 1;
    relay_waiters_add(t, &a.super);
    relay_waiters_add(t, &b.super);

    relay_waiters_wake(t, a.super.key);
    assert_int_equal(a.woken, 1);
    assert_int_equal(b.woken, 1);
    assert_int_equal(relay_waiters_count(t), 2); /* both back in the table */
    assert_true(relay_waiters_has(t, a.super.key));

    /* a later call wakes them again */
    relay_waiters_wake(t, a.super.key);
    assert_int_equal(a.woken, 2);
    assert_int_equal(b.woken, 2);
    assert_int_equal(relay_waiters_count(t), 0);

    /* the same for wake_all */
    a.readd = 1;
    relay_waiters_add(t, &a.super);
    relay_waiters_wake_all(t);
    assert_int_equal(a.woken, 3);
    assert_int_equal(relay_waiters_count(t), 1);
    relay_waiters_wake_all(t);
    assert_int_equal(a.woken, 4);
    assert_int_equal(relay_waiters_count(t), 0);
    relay_waiters_free(t);
}

/* removing a waiter that is not in the table changes nothing */
static void test_remove_unlinked(void **state)
{
    (void)state;
    relay_waiters_t *t = relay_waiters_new();
    assert_non_null(t);
    test_waiter_t never, twice, other;
    waiter_init(&never, t, 0xabc, 1);
    waiter_init(&twice, t, 0xabc, 1);
    waiter_init(&other, t, 0xabc, 2);
    relay_waiters_remove(t, &never.super); /* zero-initialised: never added */
    assert_int_equal(relay_waiters_count(t), 0);

    relay_waiters_add(t, &twice.super);
    relay_waiters_add(t, &other.super);
    relay_waiters_remove(t, &twice.super);
    relay_waiters_remove(t, &twice.super);
    relay_waiters_remove(t, &never.super);
    assert_int_equal(relay_waiters_count(t), 1);
    assert_true(relay_waiters_has(t, other.super.key));
    assert_false(relay_waiters_has(t, twice.super.key));

    /* a removed waiter is not woken */
    relay_waiters_wake(t, twice.super.key);
    assert_int_equal(twice.woken, 0);
    relay_waiters_wake_all(t);
    assert_int_equal(twice.woken, 0);
    assert_int_equal(other.woken, 1);
    assert_int_equal(relay_waiters_count(t), 0);
    relay_waiters_free(t);
}

/* an on_wake that removes another waiter of the table (its pickup went away meanwhile) */
static void test_remove_other_in_on_wake(void **state)
{
    (void)state;
    relay_waiters_t *t = relay_waiters_new();
    assert_non_null(t);
    test_waiter_t a, other;
    waiter_init(&a, t, 0x77, 1);
    waiter_init(&other, t, 0x88, 1);
    a.remove_other = &other.super;
    relay_waiters_add(t, &a.super);
    relay_waiters_add(t, &other.super);
    relay_waiters_wake(t, a.super.key);
    assert_int_equal(a.woken, 1);
    assert_int_equal(relay_waiters_count(t), 0);
    assert_false(relay_waiters_has(t, other.super.key));
    relay_waiters_wake_all(t);
    assert_int_equal(other.woken, 0);
    relay_waiters_free(t);
}

static void test_free_null(void **state)
{
    (void)state;
    relay_waiters_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_remove_has_count),
        cmocka_unit_test(test_wake_one_session),
        cmocka_unit_test(test_wake_all),
        cmocka_unit_test(test_readd_in_on_wake),
        cmocka_unit_test(test_remove_unlinked),
        cmocka_unit_test(test_remove_other_in_on_wake),
        cmocka_unit_test(test_free_null),
    };
    return cmocka_run_group_tests_name("waiters", tests, NULL, NULL);
}
