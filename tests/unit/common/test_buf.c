/* test_buf.c: unit tests of the bounded append buffer (common/buf.c) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"

static void assert_content(const rly_buf_t *b, const char *expect)
{
    assert_int_equal(b->len, strlen(expect));
    assert_non_null(b->base);
    assert_memory_equal(b->base, expect, b->len);
    assert_int_equal(b->base[b->len], '\0');
}

static void test_max_exactly(void **state)
{
    rly_buf_t b;

    (void)state;
    rly_buf_init(&b, 10);
    assert_null(b.base);
    assert_int_equal(b.len, 0);
    rly_buf_add(&b, "0123456789", 10);
    assert_int_equal(b.err, RLY_BUF_OK);
    assert_content(&b, "0123456789");
    assert_true(b.cap <= 11); /* never more than max and the NUL */
    /* one more byte: refused, the content kept as it was */
    rly_buf_addc(&b, 'x');
    assert_int_equal(b.err, RLY_BUF_TOO_BIG);
    assert_content(&b, "0123456789");
    rly_buf_free(&b);
    assert_null(b.base);
    assert_int_equal(b.max, 10);

    /* max reached in small steps */
    rly_buf_init(&b, 100);
    for (int i = 0; i != 100; ++i)
        rly_buf_addc(&b, (char)('a' + i % 26));
    assert_int_equal(b.err, RLY_BUF_OK);
    assert_int_equal(b.len, 100);
    assert_true(b.cap == 101);
    rly_buf_add(&b, "y", 1);
    assert_int_equal(b.err, RLY_BUF_TOO_BIG);
    assert_int_equal(b.len, 100);
    rly_buf_free(&b);

    /* max 0: only nothing fits */
    rly_buf_init(&b, 0);
    rly_buf_add(&b, "", 0);
    assert_int_equal(b.err, RLY_BUF_OK);
    rly_buf_addc(&b, 'a');
    assert_int_equal(b.err, RLY_BUF_TOO_BIG);
    rly_buf_free(&b);

    /* an all-zero buffer is an empty one with max 0 */
    memset(&b, 0, sizeof(b));
    rly_buf_adds(&b, "a");
    assert_int_equal(b.err, RLY_BUF_TOO_BIG);
    rly_buf_free(&b);
}

static void test_sticky_error(void **state)
{
    rly_buf_t b;

    (void)state;
    rly_buf_init(&b, 8);
    rly_buf_adds(&b, "abc");
    rly_buf_adds(&b, "defghi"); /* 9 > 8 */
    assert_int_equal(b.err, RLY_BUF_TOO_BIG);
    /* every later append is a no-op, even one that would fit */
    rly_buf_adds(&b, "d");
    rly_buf_addc(&b, 'e');
    rly_buf_addf(&b, "%d", 1);
    rly_buf_add(&b, "", 0);
    assert_int_equal(rly_buf_reserve(&b, 1), -1);
    assert_content(&b, "abc");
    assert_int_equal(b.err, RLY_BUF_TOO_BIG);
    /* reset clears it and keeps the storage */
    {
        char *base = b.base;
        rly_buf_reset(&b);
        assert_int_equal(b.err, RLY_BUF_OK);
        assert_content(&b, "");
        assert_ptr_equal(b.base, base);
    }
    rly_buf_adds(&b, "12345678");
    assert_content(&b, "12345678");
    /* take refuses an errored buffer and frees it */
    rly_buf_addc(&b, '9');
    assert_null(rly_buf_take(&b, NULL));
    assert_null(b.base);
    assert_int_equal(b.err, RLY_BUF_OK);
    assert_int_equal(b.len, 0);
}

static void test_fixed(void **state)
{
    char storage[8];
    rly_buf_t b;

    (void)state;
    memset(storage, '#', sizeof(storage));
    rly_buf_init_fixed(&b, storage, sizeof(storage));
    assert_ptr_equal(b.base, storage);
    assert_int_equal(b.max, 7);
    assert_int_equal(storage[0], '\0');
    rly_buf_adds(&b, "abc");
    rly_buf_addf(&b, "%s", "defg"); /* exactly the 7 bytes there are, and the NUL */
    assert_int_equal(b.err, RLY_BUF_OK);
    assert_content(&b, "abcdefg");
    assert_ptr_equal(b.base, storage); /* never reallocated */
    rly_buf_addc(&b, 'h');
    assert_int_equal(b.err, RLY_BUF_TOO_BIG);
    assert_string_equal(storage, "abcdefg");
    /* a fixed buffer is never handed over nor freed */
    assert_null(rly_buf_take(&b, NULL));
    rly_buf_free(&b);
    assert_ptr_equal(b.base, storage);
    assert_int_equal(b.len, 0);
    assert_int_equal(storage[0], '\0');
    /* a format that does not fit leaves the content NUL-terminated */
    rly_buf_adds(&b, "ab");
    rly_buf_addf(&b, "%s", "cdefghijk");
    assert_int_equal(b.err, RLY_BUF_TOO_BIG);
    assert_content(&b, "ab");
    rly_buf_free_wipe(&b);
    assert_ptr_equal(b.base, storage);
    assert_int_equal(storage[1], '\0');

    /* no storage at all */
    rly_buf_init_fixed(&b, storage, 0);
    rly_buf_add(&b, "", 0);
    assert_int_equal(b.err, RLY_BUF_OK);
    rly_buf_addc(&b, 'a');
    assert_int_equal(b.err, RLY_BUF_TOO_BIG);
}

static void test_raw(void **state)
{
    char storage[9];
    rly_buf_t b;

    (void)state;
    memset(storage, '#', sizeof(storage));
    rly_buf_init_raw(&b, storage, 8);
    assert_int_equal(b.max, 8);
    rly_buf_adds(&b, "abcd");
    rly_buf_add(&b, "efgh", 4); /* all 8 bytes: no NUL is kept */
    assert_int_equal(b.err, RLY_BUF_OK);
    assert_int_equal(b.len, 8);
    assert_memory_equal(storage, "abcdefgh#", 9);
    rly_buf_addc(&b, 'i');
    assert_int_equal(b.err, RLY_BUF_TOO_BIG);
    assert_memory_equal(storage, "abcdefgh#", 9);

    /* addf needs room for vsnprintf's NUL */
    memset(storage, '#', sizeof(storage));
    rly_buf_init_raw(&b, storage, 8);
    rly_buf_addf(&b, "%s", "abcdefg");
    assert_int_equal(b.err, RLY_BUF_OK);
    assert_int_equal(b.len, 7);
    rly_buf_addf(&b, "%s", "h");
    assert_int_equal(b.err, RLY_BUF_TOO_BIG);
    assert_int_equal(b.len, 7);
    assert_int_equal(storage[8], '#');

    rly_buf_init_raw(&b, storage, 0);
    rly_buf_addc(&b, 'a');
    assert_int_equal(b.err, RLY_BUF_TOO_BIG);
}

static void test_take_free(void **state)
{
    rly_buf_t b;
    size_t len = 99;
    char *p;

    (void)state;
    /* an empty buffer that never allocated hands over a malloc'ed "" */
    rly_buf_init(&b, 16);
    p = rly_buf_take(&b, &len);
    assert_non_null(p);
    assert_string_equal(p, "");
    assert_int_equal(len, 0);
    free(p);

    rly_buf_adds(&b, "hello");
    {
        char *base = b.base;
        p = rly_buf_take(&b, &len);
        assert_ptr_equal(p, base); /* no copy: the storage itself */
    }
    assert_string_equal(p, "hello");
    assert_int_equal(len, 5);
    /* left empty as after init, with its max, and usable again */
    assert_null(b.base);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.max, 16);
    rly_buf_adds(&b, "again");
    assert_content(&b, "again");
    free(p);
    rly_buf_free_wipe(&b);
    assert_null(b.base);
    assert_int_equal(b.max, 16);
    rly_buf_free(&b); /* twice is harmless */
}

static void test_addf_growing(void **state)
{
    rly_buf_t b;
    char expect[8192];
    size_t n = 0;

    (void)state;
    rly_buf_init(&b, 1 << 20);
    for (int i = 0; i != 1000; ++i) {
        rly_buf_addf(&b, "%d,", i);
        n += (size_t)snprintf(expect + n, sizeof(expect) - n, "%d,", i);
    }
    assert_int_equal(b.err, RLY_BUF_OK);
    assert_content(&b, expect);
    /* one format much larger than the room there is */
    rly_buf_reset(&b);
    memset(expect, 'z', 5000);
    expect[5000] = '\0';
    rly_buf_adds(&b, "<");
    rly_buf_addf(&b, "%s>", expect);
    assert_int_equal(b.err, RLY_BUF_OK);
    assert_int_equal(b.len, 5002);
    assert_int_equal(b.base[0], '<');
    assert_int_equal(b.base[5001], '>');
    assert_int_equal(b.base[5002], '\0');
    rly_buf_free(&b);

    /* a format past max: refused, the content kept and NUL-terminated */
    rly_buf_init(&b, 100);
    rly_buf_addf(&b, "%s", "0123456789");
    rly_buf_addf(&b, "%.*s", 91, expect);
    assert_int_equal(b.err, RLY_BUF_TOO_BIG);
    assert_content(&b, "0123456789");
    rly_buf_reset(&b);
    rly_buf_addf(&b, "%.*s", 100, expect); /* max exactly */
    assert_int_equal(b.err, RLY_BUF_OK);
    assert_int_equal(b.len, 100);
    rly_buf_free(&b);
}

static void test_reserve_tail_commit(void **state)
{
    rly_buf_t b;
    size_t room;
    char *tail, *base;

    (void)state;
    rly_buf_init(&b, 1000);
    assert_null(rly_buf_tail(&b, &room));
    assert_int_equal(room, 0);
    rly_buf_commit(&b, 0);
    assert_int_equal(b.err, RLY_BUF_OK);
    /* reserving the worst case: one allocation, then appends of that much never move it */
    assert_int_equal(rly_buf_reserve(&b, 500), 0);
    assert_true(b.cap >= 501);
    base = b.base;
    assert_content(&b, "");
    for (int i = 0; i != 500; ++i)
        rly_buf_addc(&b, 'r');
    assert_ptr_equal(b.base, base);
    assert_int_equal(b.len, 500);
    assert_int_equal(rly_buf_reserve(&b, 500), 0);
    assert_int_equal(rly_buf_reserve(&b, 501), -1);
    assert_int_equal(b.err, RLY_BUF_TOO_BIG);
    rly_buf_free(&b);

    /* the reserve of a result: exactly max and the NUL */
    rly_buf_init(&b, 300);
    assert_int_equal(rly_buf_reserve(&b, 300), 0);
    assert_int_equal(b.cap, 301);
    tail = rly_buf_tail(&b, &room);
    assert_ptr_equal(tail, b.base);
    assert_int_equal(room, 300);
    memcpy(tail, "in place", 8);
    rly_buf_commit(&b, 8);
    assert_content(&b, "in place");
    tail = rly_buf_tail(&b, &room);
    assert_int_equal(room, 292);
    rly_buf_commit(&b, (ssize_t)room + 1); /* more than the room: an error, not an overrun */
    assert_int_equal(b.err, RLY_BUF_TOO_BIG);
    assert_content(&b, "in place");
    rly_buf_reset(&b);
    rly_buf_commit(&b, -1); /* the writer did not fit */
    assert_int_equal(b.err, RLY_BUF_TOO_BIG);
    assert_null(rly_buf_tail(&b, &room));
    rly_buf_free(&b);

    /* a raw buffer's room is all of it */
    {
        char raw[4];
        rly_buf_init_raw(&b, raw, sizeof(raw));
        assert_ptr_equal(rly_buf_tail(&b, &room), raw);
        assert_int_equal(room, 4);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_max_exactly),
        cmocka_unit_test(test_sticky_error),
        cmocka_unit_test(test_fixed),
        cmocka_unit_test(test_raw),
        cmocka_unit_test(test_take_free),
        cmocka_unit_test(test_addf_growing),
        cmocka_unit_test(test_reserve_tail_commit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
