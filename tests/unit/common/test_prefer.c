/* test_prefer.c: unit tests of the Prefer: wait=N parser (common/prefer.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "prefer.h"

typedef struct st_case_t {
    const char *value;
    long wait;
} case_t;

static const case_t cases[] = {
    /* the plain forms */
    {"wait=0", 0},
    {"wait=5", 5},
    {"wait=30", 30},
    {"wait=999999", 999999},
    {"wait=000030", 30},
    {"WAIT=7", 7},
    {"Wait=8", 8},
    {"wait=\"12\"", 12},
    /* among other preferences and parameters: the first wait that parses wins */
    {"respond-async, wait=0", 0},
    {"respond-async; wait=3", 3},
    {"wait=5;foo=bar", 5},
    {"return=minimal,wait=9,wait=2", 9},
    {"wait=soon, wait=4", 4},
    {"wait=5 x, wait=7", 7},
    {" \t,;wait=6 \t", 6},
    /* no wait preference */
    {"", -1},
    {"   ", -1},
    {"wait", -1},
    {"wait=", -1},
    {"wait=soon", -1},
    {"wait=-1", -1},
    {"wait=+1", -1},
    {"wait=1.5", -1},
    {"wait=1000000", -1},
    {"wait=0000001", -1},
    {"wait = 5", -1},
    {"wait =5", -1},
    {"await=9", -1},
    {"wait:9", -1},
    {"wait=\"\"", -1},
    {"wait=\"12", -1},
    {"wait=12\"", -1},
    {"wait=\"\"\"", -1},
    {"respond-async", -1},
    {",,;;", -1},
};

static void test_table(void **unused)
{
    (void)unused;
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        long got = rly_prefer_wait(cases[i].value, strlen(cases[i].value));
        if (got != cases[i].wait)
            fail_msg("\"%s\": %ld, want %ld", cases[i].value, got, cases[i].wait);
    }
}

/* the value is (ptr, len): nothing past len is read, a NUL byte is just a byte that is no digit */
static void test_length_bound(void **unused)
{
    (void)unused;
    static const char digits[] = "wait=12345";
    char *exact = malloc(6); /* exactly "wait=1": ASan would catch a read past it */

    assert_non_null(exact);
    memcpy(exact, digits, 6);
    assert_int_equal(rly_prefer_wait(exact, 6), 1);
    assert_int_equal(rly_prefer_wait(exact, 5), -1);
    assert_int_equal(rly_prefer_wait(exact, 0), -1);
    free(exact);
    assert_int_equal(rly_prefer_wait(digits, 8), 123);
    assert_int_equal(rly_prefer_wait("wait=1\0", 7), -1);
    assert_int_equal(rly_prefer_wait("wait=1\0, wait=2", 15), 2);
}

/* every wait from 0 to 999999 written plainly, quoted and upper-cased reads back */
static void test_every_wait(void **unused)
{
    (void)unused;
    char buf[32];

    for (long n = 0; n <= 999999; n += n < 1000 ? 1 : 997) {
        int len = snprintf(buf, sizeof(buf), "wait=%ld", n);
        assert_int_equal(rly_prefer_wait(buf, (size_t)len), n);
        len = snprintf(buf, sizeof(buf), "WAIT=\"%ld\"", n);
        assert_int_equal(rly_prefer_wait(buf, (size_t)len), n);
    }
    assert_int_equal(rly_prefer_wait("wait=999999", 11), 999999);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_length_bound),
        cmocka_unit_test(test_every_wait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
