/* test_bind.c: unit tests of the 1.1 browser cookie, CSRF token and start token (common/bind.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "b64url.h"
#include "bind.h"

/* computed independently (Python hmac, hashlib and cryptography's HKDF) from master 00..1f, cookie random part 00..0f and
 * session id 10..1f */
#define KAT_COOKIE "AAECAwQFBgcICQoLDA0OD5DvYxR-dPVfsj3acFy6XNg"
#define KAT_CSRF "7Bbsj0ToQxS2flaWL1VWmj9WDYxAUG9NRYiBUowf2q4"
#define KAT_COOKIE_HASH "ea70e578f6dc99ed75d336b75d9349695fd11fec11968b623cbd92254b90c3c8"
#define KAT_START_HASH_OF_KAT_COOKIE "6637b6261c92d1d347e1ce2d183d486184c4c13c52f3440e3eec331cfe4fd7b5"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void pattern(uint8_t *p, size_t n, uint8_t start)
{
    for (size_t i = 0; i != n; ++i)
        p[i] = (uint8_t)(start + i);
}

static void from_hex(uint8_t *out, size_t cap, const char *hex)
{
    assert_int_equal(strlen(hex), cap * 2);
    for (size_t i = 0; i != cap; ++i) {
        char b[3] = {hex[2 * i], hex[2 * i + 1], '\0'}, *end;
        out[i] = (uint8_t)strtol(b, &end, 16);
        assert_true(*end == '\0');
    }
}

/* a keyring of the given masters, each master[i] = pattern(starts[i]) */
static void make_ring(rly_keyring_t *kr, const uint8_t *starts, size_t n)
{
    memset(kr, 0, sizeof(*kr));
    for (size_t i = 0; i != n; ++i) {
        uint8_t master[32];
        char id[8] = {'k', (char)('0' + i), '\0'};
        pattern(master, sizeof(master), starts[i]);
        assert_int_equal(rly_key_derive(&kr->keys[i], id, master), 0);
    }
    kr->count = n;
}

static void new_cookie(const rly_keyring_t *kr, char cookie[RLY_COOKIE_LEN + 1])
{
    assert_int_equal(rly_cookie_new(kr, cookie), 0);
    assert_int_equal(strlen(cookie), RLY_COOKIE_LEN);
    assert_true(rly_b64url_is_charset(cookie, RLY_COOKIE_LEN));
}

static void test_cookie_known_answer(void **unused)
{
    (void)unused;
    rly_keyring_t kr;
    uint8_t hash[32], expect[32];
    static const uint8_t start = 0x00;

    make_ring(&kr, &start, 1);
    assert_int_equal(rly_cookie_verify(&kr, KAT_COOKIE, RLY_COOKIE_LEN), 0);
    rly_cookie_hash(KAT_COOKIE, RLY_COOKIE_LEN, hash);
    from_hex(expect, sizeof(expect), KAT_COOKIE_HASH);
    assert_memory_equal(hash, expect, 32);
    /* the start token's hash of the same text differs (one label per purpose) */
    rly_start_token_hash(KAT_COOKIE, RLY_COOKIE_LEN, hash);
    from_hex(expect, sizeof(expect), KAT_START_HASH_OF_KAT_COOKIE);
    assert_memory_equal(hash, expect, 32);
}

static void test_cookie_round_trip(void **unused)
{
    (void)unused;
    rly_keyring_t kr;
    char cookie[RLY_COOKIE_LEN + 1], other[RLY_COOKIE_LEN + 1];
    uint8_t raw[32], h1[32], h2[32];

    assert_int_equal(rly_keyring_ephemeral(&kr), 0);
    for (int i = 0; i != 100; ++i) {
        new_cookie(&kr, cookie);
        assert_int_equal(rly_cookie_verify(&kr, cookie, RLY_COOKIE_LEN), 0);
        assert_int_equal(rly_b64url_decode(raw, sizeof(raw), cookie, RLY_COOKIE_LEN), 32);
        new_cookie(&kr, other);
        assert_string_not_equal(cookie, other); /* 16 random bytes each */
        assert_memory_not_equal(raw, other, 16);
        rly_cookie_hash(cookie, RLY_COOKIE_LEN, h1);
        rly_cookie_hash(other, RLY_COOKIE_LEN, h2);
        assert_memory_not_equal(h1, h2, 32);
    }
    assert_string_equal(RLY_COOKIE_NAME, "__Host-authrelay");
}

/* every character of a cookie replaced by every other base64url character, every bit of its bytes flipped: refused */
static void test_cookie_tampered(void **unused)
{
    (void)unused;
    rly_keyring_t kr;
    char cookie[RLY_COOKIE_LEN + 1], forged[RLY_COOKIE_LEN + 1];
    uint8_t raw[32];

    assert_int_equal(rly_keyring_ephemeral(&kr), 0);
    new_cookie(&kr, cookie);
    for (size_t pos = 0; pos != RLY_COOKIE_LEN; ++pos) {
        for (size_t c = 0; c != 64; ++c) {
            if (alphabet[c] == cookie[pos])
                continue;
            memcpy(forged, cookie, sizeof(forged));
            forged[pos] = alphabet[c];
            assert_int_equal(rly_cookie_verify(&kr, forged, RLY_COOKIE_LEN), -1);
        }
    }
    assert_int_equal(rly_b64url_decode(raw, sizeof(raw), cookie, RLY_COOKIE_LEN), 32);
    for (size_t i = 0; i != sizeof(raw); ++i) {
        for (int bit = 0; bit != 8; ++bit) {
            raw[i] ^= (uint8_t)(1 << bit);
            rly_b64url_encode(forged, raw, sizeof(raw));
            assert_int_equal(rly_cookie_verify(&kr, forged, RLY_COOKIE_LEN), -1);
            raw[i] ^= (uint8_t)(1 << bit);
        }
    }
    rly_b64url_encode(forged, raw, sizeof(raw));
    assert_int_equal(rly_cookie_verify(&kr, forged, RLY_COOKIE_LEN), 0);
}

static void test_cookie_lengths_and_charset(void **unused)
{
    (void)unused;
    rly_keyring_t kr;
    char cookie[RLY_COOKIE_LEN + 1], longer[RLY_COOKIE_LEN + 8], forged[RLY_COOKIE_LEN + 1];
    static const char bad[] = {'+', '/', '=', '.', ' ', '%', '\0', '\n', ';', (char)0xc3};

    assert_int_equal(rly_keyring_ephemeral(&kr), 0);
    new_cookie(&kr, cookie);
    for (size_t len = 0; len != RLY_COOKIE_LEN; ++len)
        assert_int_equal(rly_cookie_verify(&kr, cookie, len), -1);
    memcpy(longer, cookie, RLY_COOKIE_LEN);
    for (size_t extra = 1; extra != 5; ++extra) {
        memset(longer + RLY_COOKIE_LEN, 'A', extra);
        assert_int_equal(rly_cookie_verify(&kr, longer, RLY_COOKIE_LEN + extra), -1);
    }
    longer[RLY_COOKIE_LEN] = '=';
    assert_int_equal(rly_cookie_verify(&kr, longer, RLY_COOKIE_LEN + 1), -1);
    for (size_t pos = 0; pos != RLY_COOKIE_LEN; ++pos) {
        for (size_t i = 0; i != sizeof(bad); ++i) {
            memcpy(forged, cookie, sizeof(forged));
            forged[pos] = bad[i];
            assert_int_equal(rly_cookie_verify(&kr, forged, RLY_COOKIE_LEN), -1);
        }
    }
    /* the last character carries 2 bits that must be zero: the other spellings of the same bytes are refused */
    {
        const char *p = strchr(alphabet, cookie[RLY_COOKIE_LEN - 1]);
        size_t v = (size_t)(p - alphabet);
        assert_int_equal(v & 3, 0);
        for (size_t low = 1; low != 4; ++low) {
            memcpy(forged, cookie, sizeof(forged));
            forged[RLY_COOKIE_LEN - 1] = alphabet[v | low];
            assert_int_equal(rly_cookie_verify(&kr, forged, RLY_COOKIE_LEN), -1);
        }
    }
}

/* a cookie of another key ring is refused; after a rotation the previous key's cookies still verify; a key dropped from
 * the ring no longer does; new cookies are minted under the first key */
static void test_cookie_rotation(void **unused)
{
    (void)unused;
    rly_keyring_t old_ring, new_ring, rotated, three, other, dropped;
    char cookie_old[RLY_COOKIE_LEN + 1], cookie_new[RLY_COOKIE_LEN + 1], cookie_other[RLY_COOKIE_LEN + 1];
    static const uint8_t old_start[] = {0x10}, new_start[] = {0x80}, rotated_starts[] = {0x80, 0x10},
                         three_starts[] = {0xc0, 0x80, 0x10}, other_start[] = {0x33};

    make_ring(&old_ring, old_start, 1);
    make_ring(&new_ring, new_start, 1);
    make_ring(&rotated, rotated_starts, 2);
    make_ring(&three, three_starts, 3);
    make_ring(&other, other_start, 1);

    new_cookie(&other, cookie_other);
    assert_int_equal(rly_cookie_verify(&other, cookie_other, RLY_COOKIE_LEN), 0);
    assert_int_equal(rly_cookie_verify(&old_ring, cookie_other, RLY_COOKIE_LEN), -1);
    assert_int_equal(rly_cookie_verify(&three, cookie_other, RLY_COOKIE_LEN), -1);

    new_cookie(&old_ring, cookie_old);
    assert_int_equal(rly_cookie_verify(&rotated, cookie_old, RLY_COOKIE_LEN), 0);
    assert_int_equal(rly_cookie_verify(&three, cookie_old, RLY_COOKIE_LEN), 0);
    assert_int_equal(rly_cookie_verify(&new_ring, cookie_old, RLY_COOKIE_LEN), -1);
    dropped = three;
    dropped.count = 2; /* [0xc0, 0x80]: the key of cookie_old left the ring */
    assert_int_equal(rly_cookie_verify(&dropped, cookie_old, RLY_COOKIE_LEN), -1);

    new_cookie(&rotated, cookie_new);
    assert_int_equal(rly_cookie_verify(&new_ring, cookie_new, RLY_COOKIE_LEN), 0);
    assert_int_equal(rly_cookie_verify(&old_ring, cookie_new, RLY_COOKIE_LEN), -1);
    assert_int_equal(rly_cookie_verify(&dropped, cookie_new, RLY_COOKIE_LEN), 0);

    /* the cookie key is its own: a cookie is not a MAC under the state, data or CSRF key of the same master */
    rly_keyring_t swapped = old_ring;
    memcpy(swapped.keys[0].cookie_key, swapped.keys[0].state_key, 32);
    assert_int_equal(rly_cookie_verify(&swapped, cookie_old, RLY_COOKIE_LEN), -1);
    memcpy(swapped.keys[0].cookie_key, old_ring.keys[0].csrf_key, 32);
    assert_int_equal(rly_cookie_verify(&swapped, cookie_old, RLY_COOKIE_LEN), -1);
}

static void test_empty_ring(void **unused)
{
    (void)unused;
    rly_keyring_t kr, empty;
    char cookie[RLY_COOKIE_LEN + 1], csrf[RLY_CSRF_LEN + 1];
    uint8_t sid[RLY_SESSION_ID_BYTES];

    memset(&empty, 0, sizeof(empty));
    pattern(sid, sizeof(sid), 0x10);
    memset(cookie, 'x', sizeof(cookie));
    assert_int_equal(rly_cookie_new(&empty, cookie), -1);
    assert_int_equal(cookie[0], '\0');
    memset(csrf, 'x', sizeof(csrf));
    assert_int_equal(rly_csrf_new(&empty, sid, KAT_COOKIE, RLY_COOKIE_LEN, csrf), -1);
    assert_int_equal(csrf[0], '\0');
    assert_int_equal(rly_keyring_ephemeral(&kr), 0);
    new_cookie(&kr, cookie);
    assert_int_equal(rly_cookie_verify(&empty, cookie, RLY_COOKIE_LEN), -1);
    assert_int_equal(rly_csrf_new(&kr, sid, cookie, RLY_COOKIE_LEN, csrf), 0);
    assert_int_equal(rly_csrf_verify(&empty, sid, cookie, RLY_COOKIE_LEN, csrf, RLY_CSRF_LEN), -1);
}

static void test_csrf_known_answer(void **unused)
{
    (void)unused;
    rly_keyring_t kr;
    uint8_t sid[RLY_SESSION_ID_BYTES];
    char csrf[RLY_CSRF_LEN + 1];
    static const uint8_t start = 0x00;

    make_ring(&kr, &start, 1);
    pattern(sid, sizeof(sid), 0x10);
    assert_int_equal(rly_csrf_new(&kr, sid, KAT_COOKIE, RLY_COOKIE_LEN, csrf), 0);
    assert_string_equal(csrf, KAT_CSRF);
    assert_int_equal(rly_csrf_verify(&kr, sid, KAT_COOKIE, RLY_COOKIE_LEN, KAT_CSRF, RLY_CSRF_LEN), 0);
    /* deterministic */
    assert_int_equal(rly_csrf_new(&kr, sid, KAT_COOKIE, RLY_COOKIE_LEN, csrf), 0);
    assert_string_equal(csrf, KAT_CSRF);
}

/* the token of (session, cookie) is refused for any other session or cookie, and with any byte changed */
static void test_csrf_binding(void **unused)
{
    (void)unused;
    rly_keyring_t kr;
    uint8_t sid[RLY_SESSION_ID_BYTES], sid2[RLY_SESSION_ID_BYTES], raw[32];
    char cookie[RLY_COOKIE_LEN + 1], cookie2[RLY_COOKIE_LEN + 1], csrf[RLY_CSRF_LEN + 1], csrf2[RLY_CSRF_LEN + 1],
        forged[RLY_CSRF_LEN + 1];

    assert_int_equal(rly_keyring_ephemeral(&kr), 0);
    pattern(sid, sizeof(sid), 0x20);
    new_cookie(&kr, cookie);
    new_cookie(&kr, cookie2);
    assert_int_equal(rly_csrf_new(&kr, sid, cookie, RLY_COOKIE_LEN, csrf), 0);
    assert_int_equal(strlen(csrf), RLY_CSRF_LEN);
    assert_true(rly_b64url_is_charset(csrf, RLY_CSRF_LEN));
    assert_int_equal(rly_csrf_verify(&kr, sid, cookie, RLY_COOKIE_LEN, csrf, RLY_CSRF_LEN), 0);

    /* another cookie, another session: another token, and this one refused for them */
    assert_int_equal(rly_csrf_verify(&kr, sid, cookie2, RLY_COOKIE_LEN, csrf, RLY_CSRF_LEN), -1);
    assert_int_equal(rly_csrf_new(&kr, sid, cookie2, RLY_COOKIE_LEN, csrf2), 0);
    assert_string_not_equal(csrf, csrf2);
    for (size_t i = 0; i != RLY_SESSION_ID_BYTES; ++i) {
        for (int bit = 0; bit != 8; ++bit) {
            memcpy(sid2, sid, sizeof(sid));
            sid2[i] ^= (uint8_t)(1 << bit);
            assert_int_equal(rly_csrf_verify(&kr, sid2, cookie, RLY_COOKIE_LEN, csrf, RLY_CSRF_LEN), -1);
        }
    }
    /* a cookie one character shorter or changed */
    assert_int_equal(rly_csrf_verify(&kr, sid, cookie, RLY_COOKIE_LEN - 1, csrf, RLY_CSRF_LEN), -1);
    memcpy(cookie2, cookie, sizeof(cookie2));
    cookie2[0] = cookie2[0] == 'A' ? 'B' : 'A';
    assert_int_equal(rly_csrf_verify(&kr, sid, cookie2, RLY_COOKIE_LEN, csrf, RLY_CSRF_LEN), -1);

    /* every bit of the token */
    assert_int_equal(rly_b64url_decode(raw, sizeof(raw), csrf, RLY_CSRF_LEN), 32);
    for (size_t i = 0; i != sizeof(raw); ++i) {
        for (int bit = 0; bit != 8; ++bit) {
            raw[i] ^= (uint8_t)(1 << bit);
            rly_b64url_encode(forged, raw, sizeof(raw));
            assert_int_equal(rly_csrf_verify(&kr, sid, cookie, RLY_COOKIE_LEN, forged, RLY_CSRF_LEN), -1);
            raw[i] ^= (uint8_t)(1 << bit);
        }
    }
    /* every character */
    for (size_t pos = 0; pos != RLY_CSRF_LEN; ++pos) {
        for (size_t c = 0; c != 64; ++c) {
            if (alphabet[c] == csrf[pos])
                continue;
            memcpy(forged, csrf, sizeof(forged));
            forged[pos] = alphabet[c];
            assert_int_equal(rly_csrf_verify(&kr, sid, cookie, RLY_COOKIE_LEN, forged, RLY_CSRF_LEN), -1);
        }
    }
    /* lengths */
    for (size_t len = 0; len != RLY_CSRF_LEN; ++len)
        assert_int_equal(rly_csrf_verify(&kr, sid, cookie, RLY_COOKIE_LEN, csrf, len), -1);
    char longer[RLY_CSRF_LEN + 2];
    memcpy(longer, csrf, RLY_CSRF_LEN);
    longer[RLY_CSRF_LEN] = 'A';
    assert_int_equal(rly_csrf_verify(&kr, sid, cookie, RLY_COOKIE_LEN, longer, RLY_CSRF_LEN + 1), -1);
}

static void test_csrf_rotation(void **unused)
{
    (void)unused;
    rly_keyring_t old_ring, rotated, three, other;
    uint8_t sid[RLY_SESSION_ID_BYTES];
    char csrf[RLY_CSRF_LEN + 1], csrf2[RLY_CSRF_LEN + 1];
    static const uint8_t old_start[] = {0x10}, rotated_starts[] = {0x80, 0x10}, three_starts[] = {0xc0, 0x80, 0x10},
                         other_start[] = {0x33};

    make_ring(&old_ring, old_start, 1);
    make_ring(&rotated, rotated_starts, 2);
    make_ring(&three, three_starts, 3);
    make_ring(&other, other_start, 1);
    pattern(sid, sizeof(sid), 0x5a);
    assert_int_equal(rly_csrf_new(&old_ring, sid, KAT_COOKIE, RLY_COOKIE_LEN, csrf), 0);
    assert_int_equal(rly_csrf_verify(&rotated, sid, KAT_COOKIE, RLY_COOKIE_LEN, csrf, RLY_CSRF_LEN), 0);
    assert_int_equal(rly_csrf_verify(&three, sid, KAT_COOKIE, RLY_COOKIE_LEN, csrf, RLY_CSRF_LEN), 0);
    assert_int_equal(rly_csrf_verify(&other, sid, KAT_COOKIE, RLY_COOKIE_LEN, csrf, RLY_CSRF_LEN), -1);
    three.count = 2;
    assert_int_equal(rly_csrf_verify(&three, sid, KAT_COOKIE, RLY_COOKIE_LEN, csrf, RLY_CSRF_LEN), -1);
    /* a rotated ring signs with its first key */
    assert_int_equal(rly_csrf_new(&rotated, sid, KAT_COOKIE, RLY_COOKIE_LEN, csrf2), 0);
    assert_string_not_equal(csrf, csrf2);
    assert_int_equal(rly_csrf_verify(&old_ring, sid, KAT_COOKIE, RLY_COOKIE_LEN, csrf2, RLY_CSRF_LEN), -1);
    assert_int_equal(rly_csrf_verify(&three, sid, KAT_COOKIE, RLY_COOKIE_LEN, csrf2, RLY_CSRF_LEN), 0);
}

static void test_start_token(void **unused)
{
    (void)unused;
    char text[RLY_START_TOKEN_LEN + 1], text2[RLY_START_TOKEN_LEN + 1];
    uint8_t hash[32], hash2[32], again[32], raw[32], cookie_hash[32];

    for (int i = 0; i != 50; ++i) {
        assert_int_equal(rly_start_token_new(text, hash), 0);
        assert_int_equal(strlen(text), RLY_START_TOKEN_LEN);
        assert_int_equal(rly_b64url_decode(raw, sizeof(raw), text, RLY_START_TOKEN_LEN), 32);
        rly_start_token_hash(text, RLY_START_TOKEN_LEN, again);
        assert_memory_equal(hash, again, 32);
        /* the hash is not the token, and not the cookie hash of the same text */
        assert_memory_not_equal(hash, raw, 32);
        rly_cookie_hash(text, RLY_START_TOKEN_LEN, cookie_hash);
        assert_memory_not_equal(hash, cookie_hash, 32);
        assert_int_equal(rly_start_token_new(text2, hash2), 0);
        assert_string_not_equal(text, text2);
        assert_memory_not_equal(hash, hash2, 32);
        /* a shorter or changed presented token hashes to something else */
        rly_start_token_hash(text, RLY_START_TOKEN_LEN - 1, again);
        assert_memory_not_equal(hash, again, 32);
        text[5] = text[5] == 'A' ? 'B' : 'A';
        rly_start_token_hash(text, RLY_START_TOKEN_LEN, again);
        assert_memory_not_equal(hash, again, 32);
    }
    /* any length, the empty text included */
    rly_start_token_hash("", 0, again);
    rly_start_token_hash("x", 1, hash);
    assert_memory_not_equal(hash, again, 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cookie_known_answer), cmocka_unit_test(test_cookie_round_trip),
        cmocka_unit_test(test_cookie_tampered),     cmocka_unit_test(test_cookie_lengths_and_charset),
        cmocka_unit_test(test_cookie_rotation),     cmocka_unit_test(test_empty_ring),
        cmocka_unit_test(test_csrf_known_answer),   cmocka_unit_test(test_csrf_binding),
        cmocka_unit_test(test_csrf_rotation),       cmocka_unit_test(test_start_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
