/* test_b64url.c: unit tests of the base64url codec (common/b64url.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "b64url.h"

typedef struct st_vector_t {
    const char *raw;
    const char *text;
} vector_t;

/* RFC 4648 section 10, padding removed, plus the two characters where base64url differs from base64 */
static const vector_t vectors[] = {
    {"", ""},
    {"f", "Zg"},
    {"fo", "Zm8"},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg"},
    {"fooba", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy"},
    {"\xfb\xff\xbf", "-_-_"},
    {"\xff", "_w"},
    {"\xfb\xf0", "-_A"},
    {"\x00\x10\x83\x10\x51\x87\x20\x92\x8b\x30\xd3\x8f\x41\x14\x93\x51\x55\x97\x61\x96\x9b\x71\xd7\x9f\x82\x18\xa3\x92\x59\xa7\xa2"
     "\x9a\xab\xb2\xdb\xaf\xc3\x1c\xb3\xd3\x5d\xb7\xe3\x9e\xbb\xf3\xdf\xbf",
     "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"},
};

static size_t raw_len(const vector_t *v)
{
    /* the raw strings may hold NUL: their length is that of the decoded text */
    size_t n = strlen(v->text);
    return n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
}

static void test_rfc4648_encode(void **unused)
{
    (void)unused;
    for (size_t i = 0; i != sizeof(vectors) / sizeof(vectors[0]); ++i) {
        char out[128];
        memset(out, 'x', sizeof(out));
        size_t n = rly_b64url_encode(out, (const uint8_t *)vectors[i].raw, raw_len(&vectors[i]));
        assert_int_equal(n, strlen(vectors[i].text));
        assert_int_equal(n, RLY_B64URL_ENCODED_LEN(raw_len(&vectors[i])));
        assert_string_equal(out, vectors[i].text);
    }
}

static void test_rfc4648_decode(void **unused)
{
    (void)unused;
    for (size_t i = 0; i != sizeof(vectors) / sizeof(vectors[0]); ++i) {
        uint8_t out[128];
        size_t n = strlen(vectors[i].text);
        assert_int_equal(rly_b64url_decode(out, sizeof(out), vectors[i].text, n), raw_len(&vectors[i]));
        assert_memory_equal(out, vectors[i].raw, raw_len(&vectors[i]));
        /* exactly the needed capacity is enough, one byte less is not */
        assert_int_equal(rly_b64url_decode(out, raw_len(&vectors[i]), vectors[i].text, n), raw_len(&vectors[i]));
        if (raw_len(&vectors[i]) != 0)
            assert_int_equal(rly_b64url_decode(out, raw_len(&vectors[i]) - 1, vectors[i].text, n), -1);
        assert_true(RLY_B64URL_DECODED_MAX(n) >= raw_len(&vectors[i]));
    }
}

static void test_round_trip_all_lengths(void **unused)
{
    (void)unused;
    uint8_t raw[64], back[64 + 3];
    char text[RLY_B64URL_ENCODED_LEN(64) + 1];

    for (size_t len = 0; len <= 64; ++len) {
        for (int pass = 0; pass != 3; ++pass) {
            for (size_t i = 0; i != len; ++i)
                raw[i] = pass == 0 ? 0x00 : pass == 1 ? 0xff : (uint8_t)(i * 97 + len * 13 + 5);
            size_t n = rly_b64url_encode(text, raw, len);
            assert_int_equal(n, RLY_B64URL_ENCODED_LEN(len));
            assert_int_equal(text[n], '\0');
            assert_int_equal(strlen(text), n);
            assert_true(rly_b64url_is_charset(text, n));
            assert_int_not_equal(n % 4, 1);
            memset(back, 0xaa, sizeof(back));
            assert_int_equal(rly_b64url_decode(back, sizeof(back), text, n), len);
            assert_memory_equal(back, raw, len);
            assert_int_equal(back[len], 0xaa); /* nothing written past the output */
        }
    }
}

static void test_every_byte_value(void **unused)
{
    (void)unused;
    uint8_t raw[256], back[256];
    char text[RLY_B64URL_ENCODED_LEN(256) + 1];

    for (size_t i = 0; i != 256; ++i)
        raw[i] = (uint8_t)i;
    size_t n = rly_b64url_encode(text, raw, sizeof(raw));
    assert_int_equal(n, 342);
    assert_int_equal(rly_b64url_decode(back, sizeof(back), text, n), 256);
    assert_memory_equal(back, raw, 256);
}

static void test_rejects_padding(void **unused)
{
    (void)unused;
    uint8_t out[16];
    static const char *padded[] = {"Zg==", "Zm8=", "Zg=", "Zm9vYg==", "Zm9vYmE=", "====", "Zm9v===="};

    for (size_t i = 0; i != sizeof(padded) / sizeof(padded[0]); ++i)
        assert_int_equal(rly_b64url_decode(out, sizeof(out), padded[i], strlen(padded[i])), -1);
}

static void test_rejects_every_foreign_byte(void **unused)
{
    (void)unused;
    uint8_t out[16];
    char text[] = "Zm9vYmFy";

    for (int c = 0; c != 256; ++c) {
        int allowed = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
        char one = (char)c;
        assert_int_equal(rly_b64url_is_charset(&one, 1), allowed);
        if (allowed)
            continue;
        /* at each position of a group of four */
        for (size_t pos = 0; pos != 4; ++pos) {
            char t[sizeof(text)];
            memcpy(t, text, sizeof(text));
            t[4 + pos] = (char)c;
            assert_int_equal(rly_b64url_decode(out, sizeof(out), t, 8), -1);
            assert_false(rly_b64url_is_charset(t, 8));
        }
        /* and in a final group of two and three characters */
        char t2[] = {'Z', 'm', '9', 'v', 'Z', (char)c};
        assert_int_equal(rly_b64url_decode(out, sizeof(out), t2, sizeof(t2)), -1);
        char t3[] = {'Z', 'm', '9', 'v', 'Z', 'm', (char)c};
        assert_int_equal(rly_b64url_decode(out, sizeof(out), t3, sizeof(t3)), -1);
    }
    /* the standard base64 characters in particular */
    assert_int_equal(rly_b64url_decode(out, sizeof(out), "+_-_", 4), -1);
    assert_int_equal(rly_b64url_decode(out, sizeof(out), "-/-_", 4), -1);
    /* an embedded NUL counts as a character */
    assert_int_equal(rly_b64url_decode(out, sizeof(out), "Zm9v\0mFy", 8), -1);
}

static void test_rejects_length_4k_plus_1(void **unused)
{
    (void)unused;
    uint8_t out[64];
    const char *text = "Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFy";

    for (size_t n = 1; n < strlen(text); n += 4)
        assert_int_equal(rly_b64url_decode(out, sizeof(out), text, n), -1);
    /* every other length of an all-'A' text is canonical */
    const char *zeros = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for (size_t n = 0; n <= strlen(zeros); ++n)
        assert_int_equal(rly_b64url_decode(out, sizeof(out), zeros, n),
                         n % 4 == 1 ? -1 : (ssize_t)(n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1)));
}

static void test_rejects_non_canonical(void **unused)
{
    (void)unused;
    uint8_t out[16];
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    /* "Zg" is "f"; "Zh".."Zv" carry the same byte with non-zero trailing bits */
    for (int v = 0; v != 64; ++v) {
        char t[2] = {'Z', alphabet[v]};
        ssize_t r = rly_b64url_decode(out, sizeof(out), t, 2);
        if ((v & 15) == 0) {
            assert_int_equal(r, 1);
        } else {
            assert_int_equal(r, -1);
        }
    }
    /* "Zm8" is "fo"; the last character's two low bits must be zero */
    for (int v = 0; v != 64; ++v) {
        char t[3] = {'Z', 'm', alphabet[v]};
        ssize_t r = rly_b64url_decode(out, sizeof(out), t, 3);
        if ((v & 3) == 0) {
            assert_int_equal(r, 2);
        } else {
            assert_int_equal(r, -1);
        }
    }
    assert_int_equal(rly_b64url_decode(out, sizeof(out), "Zm9vYh", 6), -1);
    assert_int_equal(rly_b64url_decode(out, sizeof(out), "Zm9vYmF", 7), -1);
}

static void test_empty(void **unused)
{
    (void)unused;
    uint8_t out[1] = {0x5a};
    char text[1] = {'x'};

    assert_int_equal(rly_b64url_encode(text, NULL, 0), 0);
    assert_int_equal(text[0], '\0');
    assert_int_equal(rly_b64url_decode(out, 0, "", 0), 0);
    assert_int_equal(out[0], 0x5a);
    assert_true(rly_b64url_is_charset("", 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_encode),
        cmocka_unit_test(test_rfc4648_decode),
        cmocka_unit_test(test_round_trip_all_lengths),
        cmocka_unit_test(test_every_byte_value),
        cmocka_unit_test(test_rejects_padding),
        cmocka_unit_test(test_rejects_every_foreign_byte),
        cmocka_unit_test(test_rejects_length_4k_plus_1),
        cmocka_unit_test(test_rejects_non_canonical),
        cmocka_unit_test(test_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
