/* test_query.c: unit tests of the form-urlencoded parser (common/query.c) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "query.h"

#define MAXP RLY_QUERY_PARAMS_MAX

static char buf[RLY_QUERY_MAX];
static rly_qparam_t params[MAXP + 1];

static int parse(const char *s)
{
    return rly_query_parse(s, strlen(s), buf, sizeof(buf), params, MAXP);
}

static void assert_str(rly_str_t s, const char *expected)
{
    assert_int_equal(s.len, strlen(expected));
    assert_memory_equal(s.base, expected, s.len);
}

/* every decoded string points into buf */
static void assert_in_buf(int n)
{
    int i;

    for (i = 0; i < n; i++) {
        assert_true(params[i].name.base >= buf && params[i].name.base + params[i].name.len <= buf + sizeof(buf));
        assert_true(params[i].value.base >= buf && params[i].value.base + params[i].value.len <= buf + sizeof(buf));
    }
}

static void test_basic(void **state)
{
    (void)state;
    assert_int_equal(parse("code=abc&state=xyz"), 2);
    assert_str(params[0].name, "code");
    assert_str(params[0].value, "abc");
    assert_str(params[1].name, "state");
    assert_str(params[1].value, "xyz");
    assert_in_buf(2);
}

static void test_empty_input(void **state)
{
    (void)state;
    assert_int_equal(parse(""), 0);
    assert_int_equal(rly_query_parse(NULL, 0, NULL, 0, NULL, 0), 0);
}

static void test_plus_and_percent(void **state)
{
    (void)state;
    assert_int_equal(parse("a+b=c+d%20e&%41%62=%7e%7E&x=%2f%2F%2b"), 3);
    assert_str(params[0].name, "a b");
    assert_str(params[0].value, "c d e");
    assert_str(params[1].name, "Ab");
    assert_str(params[1].value, "~~");
    assert_str(params[2].name, "x");
    assert_str(params[2].value, "//+"); /* %2b is a literal plus, not a space */
    assert_int_equal(parse("a=%26%3D"), 1);
    assert_str(params[0].value, "&=");
    assert_int_equal(parse("a=%C3%A9"), 1); /* bytes >= 0x80 pass through */
    assert_str(params[0].value, "\xc3\xa9");
    assert_in_buf(1);
}

static void test_bad_percent(void **state)
{
    (void)state;
    assert_int_equal(parse("a=%"), -1);
    assert_int_equal(parse("a=%4"), -1);
    assert_int_equal(parse("a=%4&b=1"), -1);
    assert_int_equal(parse("a=%zz"), -1);
    assert_int_equal(parse("a=%g1"), -1);
    assert_int_equal(parse("a=%1g"), -1);
    assert_int_equal(parse("a=% 1"), -1);
    assert_int_equal(parse("%=1"), -1);
    assert_int_equal(parse("a%=1"), -1);
    assert_int_equal(parse("ok=1&a=%"), -1);
}

static void test_nul(void **state)
{
    (void)state;
    assert_int_equal(parse("a=%00"), -1);
    assert_int_equal(parse("%00=a"), -1);
    assert_int_equal(parse("a=x%00y"), -1);
    /* a raw NUL byte inside the input */
    assert_int_equal(rly_query_parse("a=x\0y", 5, buf, sizeof(buf), params, MAXP), -1);
    assert_int_equal(rly_query_parse("a\0=1", 4, buf, sizeof(buf), params, MAXP), -1);
}

static void test_empty_segments(void **state)
{
    (void)state;
    assert_int_equal(parse("a=1&&b=2"), 2);
    assert_str(params[0].name, "a");
    assert_str(params[1].name, "b");
    assert_str(params[1].value, "2");
    assert_int_equal(parse("&&&"), 0);
    assert_int_equal(parse("&a=1&"), 1);
    assert_str(params[0].value, "1");
}

static void test_no_equals_and_empty_parts(void **state)
{
    (void)state;
    assert_int_equal(parse("flag&x=&=v&a=b=c"), 4);
    assert_str(params[0].name, "flag");
    assert_non_null(params[0].value.base);
    assert_int_equal(params[0].value.len, 0);
    assert_str(params[1].name, "x");
    assert_int_equal(params[1].value.len, 0);
    assert_int_equal(params[2].name.len, 0);
    assert_str(params[2].value, "v");
    assert_str(params[3].name, "a");
    assert_str(params[3].value, "b=c");
    assert_in_buf(4);
}

static void test_too_many(void **state)
{
    char q[8 * (MAXP + 1) + 16];
    size_t len = 0;
    int i;

    (void)state;
    /* exactly MAXP parameters, with empty segments in between that do not count */
    for (i = 0; i < MAXP; i++) {
        q[len++] = 'p';
        q[len++] = (char)('0' + i % 10);
        q[len++] = '=';
        q[len++] = '1';
        q[len++] = '&';
        q[len++] = '&';
    }
    assert_int_equal(rly_query_parse(q, len, buf, sizeof(buf), params, MAXP), MAXP);
    /* one more */
    q[len++] = 'z';
    assert_int_equal(rly_query_parse(q, len, buf, sizeof(buf), params, MAXP), -1);
    /* a small maxparams */
    assert_int_equal(rly_query_parse("a&b&c", 5, buf, sizeof(buf), params, 2), -1);
    assert_int_equal(rly_query_parse("a&b", 3, buf, sizeof(buf), params, 2), 2);
    assert_int_equal(rly_query_parse("a", 1, buf, sizeof(buf), params, 0), -1);
}

static void test_bufcap(void **state)
{
    char small[8];

    (void)state;
    /* "ab=c%64" decodes to 4 bytes: "ab" and "cd" */
    assert_int_equal(rly_query_parse("ab=c%64", 7, small, 4, params, MAXP), 1);
    assert_str(params[0].name, "ab");
    assert_str(params[0].value, "cd");
    assert_int_equal(rly_query_parse("ab=c%64", 7, small, 3, params, MAXP), -1);
    /* bufcap == len is always enough */
    assert_int_equal(rly_query_parse("a=b&c=d", 7, small, 7, params, MAXP), 2);
    assert_int_equal(rly_query_parse("a", 1, NULL, 0, params, MAXP), -1);
}

static void test_find(void **state)
{
    const rly_qparam_t *p;
    size_t count = 99;

    (void)state;
    assert_int_equal(parse("state=1&code=x&state=2&st=3&states=4"), 5);
    p = rly_query_find(params, 5, "state", &count);
    assert_ptr_equal(p, &params[0]);
    assert_int_equal(count, 2);
    assert_str(p->value, "1");
    p = rly_query_find(params, 5, "code", NULL);
    assert_ptr_equal(p, &params[1]);
    assert_null(rly_query_find(params, 5, "error", &count));
    assert_int_equal(count, 0);
    assert_null(rly_query_find(params, 0, "state", &count));
    assert_int_equal(count, 0);
    /* names compare after decoding */
    assert_int_equal(parse("st%61te=1"), 1);
    assert_non_null(rly_query_find(params, 1, "state", NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_empty_input),
        cmocka_unit_test(test_plus_and_percent),
        cmocka_unit_test(test_bad_percent),
        cmocka_unit_test(test_nul),
        cmocka_unit_test(test_empty_segments),
        cmocka_unit_test(test_no_equals_and_empty_parts),
        cmocka_unit_test(test_too_many),
        cmocka_unit_test(test_bufcap),
        cmocka_unit_test(test_find),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
