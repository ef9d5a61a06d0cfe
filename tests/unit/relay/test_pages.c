/* test_pages.c: unit tests of relay/pages.c's HTML escaping: every special character, NUL, truncation at capacity */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>
#include "pages.h"

/* escapes src (len bytes) into a buffer of cap bytes guarded on both sides; checks the return value and termination */
static size_t escape(char *out, size_t cap, const char *src, size_t len)
{
    char buf[1024 + 2];
    assert_true(cap + 2 <= sizeof(buf));
    memset(buf, 0x5a, sizeof(buf));
    size_t n = relay_html_escape(buf + 1, cap, src, len);
    assert_int_equal((unsigned char)buf[0], 0x5a);
    assert_int_equal((unsigned char)buf[cap + 1], 0x5a); /* nothing written past the capacity */
    if (cap == 0) {
        assert_int_equal(n, 0);
        assert_int_equal((unsigned char)buf[1], 0x5a); /* not even a NUL */
        out[0] = '\0';
        return 0;
    }
    assert_true(n < cap);
    assert_int_equal(buf[1 + n], '\0');
    assert_int_equal(strlen(buf + 1), n);
    memcpy(out, buf + 1, n + 1);
    return n;
}

static void test_escapes_every_special(void **state)
{
    (void)state;
    char out[256];
    const char in[] = "a&b<c>d\"e'f";
    size_t n = escape(out, sizeof(out), in, strlen(in));
    assert_string_equal(out, "a&amp;b&lt;c&gt;d&quot;e&#39;f");
    assert_int_equal(n, strlen(out));

    n = escape(out, sizeof(out), "<script>alert('x')</script>", 27);
    assert_string_equal(out, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;");
    assert_null(strchr(out, '<'));
    assert_null(strchr(out, '>'));
    assert_null(strchr(out, '"'));
    assert_null(strchr(out, '\''));
    (void)n;

    /* an already escaped text is escaped again (no double-decoding tricks) */
    escape(out, sizeof(out), "&amp;", 5);
    assert_string_equal(out, "&amp;amp;");
}

static void test_plain_text_unchanged(void **state)
{
    (void)state;
    char out[256];
    const char in[] = "access_denied: The user said no. (code 42) UTF-8 \xc3\xa9";
    assert_int_equal(escape(out, sizeof(out), in, strlen(in)), strlen(in));
    assert_string_equal(out, in);
    assert_int_equal(escape(out, sizeof(out), "", 0), 0);
    assert_string_equal(out, "");
}

static void test_drops_nul(void **state)
{
    (void)state;
    char out[64];
    const char in[] = {'a', '\0', 'b', '\0', '\0', '<', '\0'};
    size_t n = escape(out, sizeof(out), in, sizeof(in));
    assert_string_equal(out, "ab&lt;");
    assert_int_equal(n, 6);
}

/* the output stops before an entity that does not fit whole, and is always terminated */
static void test_truncation(void **state)
{
    (void)state;
    char out[64];
    /* "a" + "&amp;" needs 6 bytes and a NUL */
    assert_int_equal(escape(out, 7, "a&b", 3), 6);
    assert_string_equal(out, "a&amp;");
    for (size_t cap = 2; cap != 7; ++cap) {
        assert_int_equal(escape(out, cap, "a&b", 3), 1);
        assert_string_equal(out, "a");
    }
    assert_int_equal(escape(out, 8, "a&b", 3), 7);
    assert_string_equal(out, "a&amp;b");
    assert_int_equal(escape(out, 1, "abc", 3), 0);
    assert_string_equal(out, "");
    assert_int_equal(escape(out, 0, "abc", 3), 0);

    /* every capacity: the output is a prefix of the full escape ending on an entity boundary */
    const char in[] = "x<'\"&>y";
    char full[64];
    size_t fulln = escape(full, sizeof(full), in, strlen(in));
    assert_string_equal(full, "x&lt;&#39;&quot;&amp;&gt;y");
    for (size_t cap = 1; cap <= fulln + 1; ++cap) {
        size_t n = escape(out, cap, in, strlen(in));
        assert_memory_equal(out, full, n);
        assert_true(n == 0 || full[n] == '\0' || full[n] == '&' || full[n] == 'y'); /* cut between units */
        const char *amp = strrchr(out, '&');
        if (amp != NULL)
            assert_non_null(strchr(amp, ';')); /* no half entity */
    }
}

/* truncation does not leave half of a UTF-8 character (the page is UTF-8) */
static void test_truncation_utf8(void **state)
{
    (void)state;
    char out[64];
    const char in[] = "ab\xc3\xa9"
                      "c\xe2\x82\xac"
                      "d"; /* a b é c € d */
    assert_int_equal(escape(out, 4, in, strlen(in)), 2);
    assert_string_equal(out, "ab");
    assert_int_equal(escape(out, 5, in, strlen(in)), 4);
    assert_string_equal(out, "ab\xc3\xa9");
    assert_int_equal(escape(out, 7, in, strlen(in)), 5);
    assert_string_equal(out, "ab\xc3\xa9"
                             "c");
    assert_int_equal(escape(out, 8, in, strlen(in)), 5);
    assert_int_equal(escape(out, 9, in, strlen(in)), 8);
    assert_string_equal(out, "ab\xc3\xa9"
                             "c\xe2\x82\xac");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escapes_every_special),
        cmocka_unit_test(test_plain_text_unchanged),
        cmocka_unit_test(test_drops_nul),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_truncation_utf8),
    };
    return cmocka_run_group_tests_name("pages", tests, NULL, NULL);
}
