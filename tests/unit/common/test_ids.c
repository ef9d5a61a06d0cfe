/* test_ids.c: unit tests of session ids, poll tokens and their hashes (common/ids.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "b64url.h"
#include "ids.h"

static void from_hex(uint8_t *out, const char *hex)
{
    for (size_t i = 0; hex[2 * i] != '\0'; ++i) {
        char b[3] = {hex[2 * i], hex[2 * i + 1], '\0'};
        out[i] = (uint8_t)strtol(b, NULL, 16);
    }
}

static void test_random(void **unused)
{
    (void)unused;
    uint8_t a[64], b[64], zeros[64] = {0};

    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    assert_int_equal(rly_random(a, sizeof(a)), 0);
    assert_int_equal(rly_random(b, sizeof(b)), 0);
    assert_memory_not_equal(a, zeros, sizeof(a));
    assert_memory_not_equal(a, b, sizeof(a));
    assert_int_equal(rly_random(a, 0), 0);
}

static void test_session_new_and_parse(void **unused)
{
    (void)unused;
    uint8_t raw[RLY_SESSION_ID_BYTES], raw2[RLY_SESSION_ID_BYTES], back[RLY_SESSION_ID_BYTES];
    char text[RLY_SESSION_ID_LEN + 1], text2[RLY_SESSION_ID_LEN + 1];

    assert_int_equal(rly_session_new(raw, text), 0);
    assert_int_equal(strlen(text), RLY_SESSION_ID_LEN);
    assert_true(rly_b64url_is_charset(text, RLY_SESSION_ID_LEN));
    assert_int_equal(rly_session_parse(text, RLY_SESSION_ID_LEN, back), 0);
    assert_memory_equal(back, raw, sizeof(raw));

    assert_int_equal(rly_session_new(raw2, text2), 0);
    assert_memory_not_equal(raw, raw2, sizeof(raw));
    assert_string_not_equal(text, text2);
}

static void test_session_parse_known(void **unused)
{
    (void)unused;
    uint8_t raw[RLY_SESSION_ID_BYTES], expect[RLY_SESSION_ID_BYTES];

    for (size_t i = 0; i != sizeof(expect); ++i)
        expect[i] = (uint8_t)i;
    assert_int_equal(rly_session_parse("AAECAwQFBgcICQoLDA0ODw", 22, raw), 0);
    assert_memory_equal(raw, expect, sizeof(raw));
}

static void test_session_parse_rejects(void **unused)
{
    (void)unused;
    uint8_t raw[RLY_SESSION_ID_BYTES], orig[RLY_SESSION_ID_BYTES];
    const char *good = "AAECAwQFBgcICQoLDA0ODw";

    memset(raw, 0xaa, sizeof(raw));
    memcpy(orig, raw, sizeof(raw));
    assert_int_equal(rly_session_parse(good, 21, raw), -1);
    assert_int_equal(rly_session_parse("AAECAwQFBgcICQoLDA0ODwA", 23, raw), -1);
    assert_int_equal(rly_session_parse("AAECAwQFBgcICQoLDA0ODwAA", 24, raw), -1);
    assert_int_equal(rly_session_parse("", 0, raw), -1);
    assert_int_equal(rly_session_parse("AAECAwQFBgcICQoLDA0OD+", 22, raw), -1);
    assert_int_equal(rly_session_parse("AAECAwQFBgcICQoLDA0OD=", 22, raw), -1);
    assert_int_equal(rly_session_parse("AAECAwQF.gcICQoLDA0ODw", 22, raw), -1);
    /* non-canonical: "Dx" has trailing bits that "Dw" has not */
    assert_int_equal(rly_session_parse("AAECAwQFBgcICQoLDA0ODx", 22, raw), -1);
    assert_memory_equal(raw, orig, sizeof(raw)); /* untouched on failure */
}

static void test_poll_token(void **unused)
{
    (void)unused;
    char text[RLY_POLL_TOKEN_LEN + 1], text2[RLY_POLL_TOKEN_LEN + 1];
    uint8_t hash[32], hash2[32], again[32], raw[RLY_POLL_TOKEN_BYTES];

    assert_int_equal(rly_poll_token_new(text, hash), 0);
    assert_int_equal(strlen(text), RLY_POLL_TOKEN_LEN);
    assert_int_equal(rly_b64url_decode(raw, sizeof(raw), text, RLY_POLL_TOKEN_LEN), RLY_POLL_TOKEN_BYTES);
    rly_poll_token_hash(text, strlen(text), again);
    assert_memory_equal(hash, again, 32);
    assert_true(rly_hash_equal(hash, again));

    assert_int_equal(rly_poll_token_new(text2, hash2), 0);
    assert_string_not_equal(text, text2);
    assert_false(rly_hash_equal(hash, hash2));

    /* a token one character short or long hashes differently */
    rly_poll_token_hash(text, RLY_POLL_TOKEN_LEN - 1, again);
    assert_false(rly_hash_equal(hash, again));
}

static void test_poll_token_hash_is_sha256(void **unused)
{
    (void)unused;
    uint8_t hash[32], expect[32];

    /* FIPS 180-2 test vectors */
    from_hex(expect, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    rly_poll_token_hash("abc", 3, hash);
    assert_memory_equal(hash, expect, 32);
    from_hex(expect, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    rly_poll_token_hash("", 0, hash);
    assert_memory_equal(hash, expect, 32);
}

static void test_hash_equal(void **unused)
{
    (void)unused;
    uint8_t a[32], b[32];

    for (size_t i = 0; i != 32; ++i)
        a[i] = (uint8_t)(i * 7);
    memcpy(b, a, 32);
    assert_int_equal(rly_hash_equal(a, b), 1);
    for (size_t i = 0; i != 32; ++i) {
        for (int bit = 0; bit != 8; ++bit) {
            b[i] ^= (uint8_t)(1 << bit);
            assert_int_equal(rly_hash_equal(a, b), 0);
            b[i] ^= (uint8_t)(1 << bit);
        }
    }
    assert_int_equal(rly_hash_equal(a, b), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_session_new_and_parse),
        cmocka_unit_test(test_session_parse_known),
        cmocka_unit_test(test_session_parse_rejects),
        cmocka_unit_test(test_poll_token),
        cmocka_unit_test(test_poll_token_hash_is_sha256),
        cmocka_unit_test(test_hash_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
