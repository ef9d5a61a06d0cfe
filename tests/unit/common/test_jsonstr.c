/* test_jsonstr.c: unit tests of common/jsonstr.c (JSON string literals) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <json-c/json.h>
#include "jsonstr.h"

/* the rule written byte by byte, as the first version did: the reference for the run-copying one */
static size_t reference(char *dst, const char *src, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    dst[n++] = '"';
    for (size_t i = 0; i != len; ++i) {
        unsigned char c = (unsigned char)src[i];
        if (c == '"' || c == '\\') {
            dst[n++] = '\\';
            dst[n++] = (char)c;
        } else if (c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t') {
            dst[n++] = '\\';
            dst[n++] = c == '\b' ? 'b' : c == '\f' ? 'f' : c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(dst + n, "\\u00", 4);
            dst[n + 4] = hex[c >> 4];
            dst[n + 5] = hex[c & 15];
            n += 6;
        } else {
            dst[n++] = (char)c;
        }
    }
    dst[n++] = '"';
    return n;
}

static void test_escapes(void **state)
{
    (void)state;
    char out[64];
    ssize_t n = rly_json_quote(out, sizeof(out), "a\"b\\c\n\x01\x7f\xc3\xa9", 10);
    assert_int_equal(n, 25);
    assert_memory_equal(out, "\"a\\\"b\\\\c\\n\\u0001\\u007f\xc3\xa9\"", 25);
    assert_int_equal(rly_json_quote(out, sizeof(out), "", 0), 2);
    assert_memory_equal(out, "\"\"", 2);
}

/* exactly the room needed fits; one byte less is -1, wherever the cut falls (in a run, in an escape, the quotes) */
static void test_capacity(void **state)
{
    (void)state;
    static const char src[] = "code-123\"x\ty\x02zzzz";
    char want[128], out[128];
    size_t len = sizeof(src) - 1, need = reference(want, src, len);
    assert_int_equal(rly_json_quote(out, need, src, len), (ssize_t)need);
    assert_memory_equal(out, want, need);
    for (size_t cap = 0; cap != need; ++cap)
        assert_int_equal(rly_json_quote(out, cap, src, len), -1);
}

/* random inputs: the same bytes as the reference, and json-c reads back the input */
static void test_random_against_reference(void **state)
{
    (void)state;
    srand(7);
    for (int round = 0; round != 2000; ++round) {
        char src[300], want[RLY_JSON_QUOTED_MAX(300)], out[RLY_JSON_QUOTED_MAX(300)];
        size_t len = (size_t)(rand() % 300);
        for (size_t i = 0; i != len; ++i) /* mostly printable ASCII, now and then anything but NUL */
            src[i] = rand() % 8 == 0 ? (char)(1 + rand() % 255) : (char)(0x20 + rand() % 95);
        size_t need = reference(want, src, len);
        ssize_t n = rly_json_quote(out, sizeof(out), src, len);
        assert_int_equal(n, (ssize_t)need);
        assert_memory_equal(out, want, need);
        out[n] = '\0';
        /* valid UTF-8 only is JSON: check the round trip on the ASCII inputs */
        int ascii = 1;
        for (size_t i = 0; i != len; ++i)
            ascii &= (unsigned char)src[i] < 0x80;
        if (ascii) {
            json_object *o = json_tokener_parse(out);
            assert_non_null(o);
            assert_int_equal(json_object_get_string_len(o), (int)len);
            assert_memory_equal(json_object_get_string(o), src, len);
            json_object_put(o);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_capacity),
        cmocka_unit_test(test_random_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
