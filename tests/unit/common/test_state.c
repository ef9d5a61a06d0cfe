/* test_state.c: unit tests of the OAuth state codec (common/state.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "b64url.h"
#include "state.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void pattern(uint8_t *p, size_t n, uint8_t start)
{
    for (size_t i = 0; i != n; ++i)
        p[i] = (uint8_t)(start + i);
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

static void assert_rejected(const rly_keyring_t *kr, const char *state, size_t len)
{
    uint8_t sid[RLY_SESSION_ID_BYTES], orig[RLY_SESSION_ID_BYTES];

    memset(sid, 0x5a, sizeof(sid));
    memcpy(orig, sid, sizeof(sid));
    assert_int_equal(rly_state_verify(kr, state, len, sid), -1);
    assert_memory_equal(sid, orig, sizeof(sid)); /* nothing written on failure */
}

static void test_known_answer(void **unused)
{
    (void)unused;
    rly_keyring_t kr;
    uint8_t sid[RLY_SESSION_ID_BYTES], back[RLY_SESSION_ID_BYTES];
    char state[RLY_STATE_LEN + 1];
    static const uint8_t start = 0x00;

    /* computed independently (Python hmac + cryptography HKDF) from master 00..1f and session id 10..1f */
    make_ring(&kr, &start, 1);
    pattern(sid, sizeof(sid), 0x10);
    assert_int_equal(rly_state_encode(&kr, sid, state), RLY_STATE_LEN);
    assert_string_equal(state, "ARAREhMUFRYXGBkaGxwdHh8MCKVYz3L8t2QX2ELp2qwE");
    assert_int_equal(rly_state_verify(&kr, state, RLY_STATE_LEN, back), 0);
    assert_memory_equal(back, sid, sizeof(sid));
    /* the same with the flags (version bytes 0x02, 0x03, 0x04), computed the same way */
    assert_int_equal(rly_state_encode_flags(&kr, sid, RLY_STATE_DIRECT, state), RLY_STATE_LEN);
    assert_string_equal(state, "AhAREhMUFRYXGBkaGxwdHh-MboItqaEuMzNY-KQ9DT9F");
    assert_int_equal(rly_state_encode_flags(&kr, sid, RLY_STATE_BOUND, state), RLY_STATE_LEN);
    assert_string_equal(state, "AxAREhMUFRYXGBkaGxwdHh8h67YDUgvdphpePTeDwXEV");
    assert_int_equal(rly_state_encode_flags(&kr, sid, RLY_STATE_BOUND | RLY_STATE_DIRECT, state), RLY_STATE_LEN);
    assert_string_equal(state, "BBAREhMUFRYXGBkaGxwdHh8A0KRfT1ieo4tItOIXRKjg");
}

static void test_round_trip(void **unused)
{
    (void)unused;
    rly_keyring_t kr;
    uint8_t sid[RLY_SESSION_ID_BYTES], back[RLY_SESSION_ID_BYTES];
    char state[RLY_STATE_LEN + 1];

    assert_int_equal(rly_keyring_ephemeral(&kr), 0);
    for (int i = 0; i != 200; ++i) {
        pattern(sid, sizeof(sid), (uint8_t)(i * 11));
        sid[i % RLY_SESSION_ID_BYTES] ^= (uint8_t)i;
        assert_int_equal(rly_state_encode(&kr, sid, state), RLY_STATE_LEN);
        assert_int_equal(strlen(state), RLY_STATE_LEN);
        assert_true(rly_b64url_is_charset(state, RLY_STATE_LEN));
        memset(back, 0, sizeof(back));
        assert_int_equal(rly_state_verify(&kr, state, RLY_STATE_LEN, back), 0);
        assert_memory_equal(back, sid, sizeof(sid));
    }
}

static void test_every_character_changed(void **unused)
{
    (void)unused;
    rly_keyring_t kr;
    uint8_t sid[RLY_SESSION_ID_BYTES];
    char state[RLY_STATE_LEN + 1], forged[RLY_STATE_LEN + 1];

    assert_int_equal(rly_keyring_ephemeral(&kr), 0);
    pattern(sid, sizeof(sid), 0x42);
    assert_int_equal(rly_state_encode(&kr, sid, state), RLY_STATE_LEN);
    for (size_t pos = 0; pos != RLY_STATE_LEN; ++pos) {
        for (size_t c = 0; c != 64; ++c) {
            if (alphabet[c] == state[pos])
                continue;
            memcpy(forged, state, sizeof(state));
            forged[pos] = alphabet[c];
            assert_rejected(&kr, forged, RLY_STATE_LEN);
        }
    }
}

static void test_every_bit_flipped(void **unused)
{
    (void)unused;
    rly_keyring_t kr;
    uint8_t sid[RLY_SESSION_ID_BYTES], raw[33];
    char state[RLY_STATE_LEN + 1], forged[RLY_STATE_LEN + 1];

    assert_int_equal(rly_keyring_ephemeral(&kr), 0);
    pattern(sid, sizeof(sid), 0x99);
    assert_int_equal(rly_state_encode(&kr, sid, state), RLY_STATE_LEN);
    assert_int_equal(rly_b64url_decode(raw, sizeof(raw), state, RLY_STATE_LEN), 33);
    assert_int_equal(raw[0], 0x01);
    assert_memory_equal(raw + 1, sid, sizeof(sid));
    for (size_t i = 0; i != sizeof(raw); ++i) {
        for (int bit = 0; bit != 8; ++bit) {
            raw[i] ^= (uint8_t)(1 << bit);
            assert_int_equal(rly_b64url_encode(forged, raw, sizeof(raw)), RLY_STATE_LEN);
            assert_rejected(&kr, forged, RLY_STATE_LEN);
            raw[i] ^= (uint8_t)(1 << bit);
        }
    }
}

static void test_truncation_and_extension(void **unused)
{
    (void)unused;
    rly_keyring_t kr;
    uint8_t sid[RLY_SESSION_ID_BYTES];
    char state[RLY_STATE_LEN + 1], longer[RLY_STATE_LEN + 8];
    static const char *suffixes[] = {"A", "AA", "AAA", "AAAA", "-", "_", "\0"};

    assert_int_equal(rly_keyring_ephemeral(&kr), 0);
    pattern(sid, sizeof(sid), 0x07);
    assert_int_equal(rly_state_encode(&kr, sid, state), RLY_STATE_LEN);
    for (size_t len = 0; len != RLY_STATE_LEN; ++len)
        assert_rejected(&kr, state, len);
    for (size_t i = 0; i != sizeof(suffixes) / sizeof(suffixes[0]); ++i) {
        size_t n = suffixes[i][0] == '\0' ? 1 : strlen(suffixes[i]);
        memcpy(longer, state, RLY_STATE_LEN);
        memcpy(longer + RLY_STATE_LEN, suffixes[i], n);
        assert_rejected(&kr, longer, RLY_STATE_LEN + n);
    }
}

static void test_wrong_charset(void **unused)
{
    (void)unused;
    rly_keyring_t kr;
    uint8_t sid[RLY_SESSION_ID_BYTES];
    char state[RLY_STATE_LEN + 1], forged[RLY_STATE_LEN + 1];
    static const char bad[] = {'+', '/', '=', '.', ' ', '%', '\0', '\n', '~', (char)0xc3};

    assert_int_equal(rly_keyring_ephemeral(&kr), 0);
    pattern(sid, sizeof(sid), 0x30);
    assert_int_equal(rly_state_encode(&kr, sid, state), RLY_STATE_LEN);
    for (size_t pos = 0; pos != RLY_STATE_LEN; ++pos) {
        for (size_t i = 0; i != sizeof(bad); ++i) {
            memcpy(forged, state, sizeof(state));
            forged[pos] = bad[i];
            assert_rejected(&kr, forged, RLY_STATE_LEN);
        }
    }
    /* standard base64 of the same bytes, with padding */
    assert_rejected(&kr, "ARAREhMUFRYXGBkaGxwdHh8MCKVYz3L8t2QX2ELp2qwE====", 48);
}

/* a state built by hand: version v, the session, HMAC over label || v || session under kr's first key */
static void build_state(const rly_keyring_t *kr, uint8_t version, const uint8_t sid[RLY_SESSION_ID_BYTES],
                        char state[RLY_STATE_LEN + 1])
{
    uint8_t raw[33], msg[18 + 1 + RLY_SESSION_ID_BYTES], mac[32];
    unsigned int maclen = 0;
    memcpy(msg, "authrelay state v1", 18);
    msg[18] = version;
    memcpy(msg + 19, sid, RLY_SESSION_ID_BYTES);
    assert_non_null(HMAC(EVP_sha256(), kr->keys[0].state_key, 32, msg, sizeof(msg), mac, &maclen));
    raw[0] = version;
    memcpy(raw + 1, sid, RLY_SESSION_ID_BYTES);
    memcpy(raw + 17, mac, 16);
    rly_b64url_encode(state, raw, sizeof(raw));
}

static void test_other_version_with_valid_mac(void **unused)
{
    (void)unused;
    rly_keyring_t kr;
    uint8_t sid[RLY_SESSION_ID_BYTES], back[RLY_SESSION_ID_BYTES];
    char state[RLY_STATE_LEN + 1];
    unsigned flags = 99;

    assert_int_equal(rly_keyring_ephemeral(&kr), 0);
    pattern(sid, sizeof(sid), 0x61);
    /* well-formed MACs over unknown versions: still rejected */
    const uint8_t unknown[] = {0x00, 0x05, 0x06, 0x07, 0x08, 0x11, 0x81, 0xff};
    for (size_t i = 0; i != sizeof(unknown); ++i) {
        build_state(&kr, unknown[i], sid, state);
        assert_rejected(&kr, state, RLY_STATE_LEN);
    }
    /* the same construction with versions 0x01 and 0x02 is what the codec accepts: the test builds states correctly */
    build_state(&kr, 0x01, sid, state);
    assert_int_equal(rly_state_verify_flags(&kr, state, RLY_STATE_LEN, back, &flags), 0);
    assert_memory_equal(back, sid, sizeof(sid));
    assert_int_equal(flags, 0);
    build_state(&kr, 0x02, sid, state);
    assert_int_equal(rly_state_verify_flags(&kr, state, RLY_STATE_LEN, back, &flags), 0);
    assert_int_equal(flags, RLY_STATE_DIRECT);
    /* and 0x03, 0x04: the bound flag (protocol 1.1), without and with the direct one */
    build_state(&kr, 0x03, sid, state);
    assert_int_equal(rly_state_verify_flags(&kr, state, RLY_STATE_LEN, back, &flags), 0);
    assert_int_equal(flags, RLY_STATE_BOUND);
    build_state(&kr, 0x04, sid, state);
    assert_int_equal(rly_state_verify_flags(&kr, state, RLY_STATE_LEN, back, &flags), 0);
    assert_int_equal(flags, RLY_STATE_BOUND | RLY_STATE_DIRECT);
    assert_memory_equal(back, sid, sizeof(sid));
}

/* the four flag combinations: version bytes 0x01 to 0x04, each round-trips, and no state verifies with its version byte
 * switched to any other (every flag is under the MAC); a flag bit outside RLY_STATE_FLAGS is refused */
static void test_bound_flag(void **unused)
{
    (void)unused;
    rly_keyring_t kr;
    uint8_t sid[RLY_SESSION_ID_BYTES], back[RLY_SESSION_ID_BYTES], raw[33];
    char states[4][RLY_STATE_LEN + 1], forged[RLY_STATE_LEN + 1];
    unsigned flags;

    assert_int_equal(rly_keyring_ephemeral(&kr), 0);
    pattern(sid, sizeof(sid), 0x44);
    for (unsigned f = 0; f != 4; ++f) {
        assert_int_equal(rly_state_encode_flags(&kr, sid, f, states[f]), RLY_STATE_LEN);
        assert_int_equal(rly_b64url_decode(raw, sizeof(raw), states[f], RLY_STATE_LEN), 33);
        assert_int_equal(raw[0], 0x01 + f);
        flags = 99;
        memset(back, 0, sizeof(back));
        assert_int_equal(rly_state_verify_flags(&kr, states[f], RLY_STATE_LEN, back, &flags), 0);
        assert_int_equal(flags, f);
        assert_memory_equal(back, sid, sizeof(sid));
        assert_int_equal(rly_state_verify(&kr, states[f], RLY_STATE_LEN, back), 0);
        for (unsigned g = 0; g != f; ++g)
            assert_string_not_equal(states[f], states[g]);
    }
    for (unsigned f = 0; f != 4; ++f) {
        for (unsigned v = 0; v != 256; ++v) {
            assert_int_equal(rly_b64url_decode(raw, sizeof(raw), states[f], RLY_STATE_LEN), 33);
            if (v == raw[0])
                continue;
            raw[0] = (uint8_t)v;
            rly_b64url_encode(forged, raw, sizeof(raw));
            assert_rejected(&kr, forged, RLY_STATE_LEN);
        }
    }
    /* the bound flag switched off (or on) under the same MAC: rejected (0x03 <-> 0x01, 0x04 <-> 0x02) */
    assert_int_equal(rly_b64url_decode(raw, sizeof(raw), states[RLY_STATE_BOUND], RLY_STATE_LEN), 33);
    raw[0] = 0x01;
    rly_b64url_encode(forged, raw, sizeof(raw));
    assert_rejected(&kr, forged, RLY_STATE_LEN);
    assert_int_equal(rly_b64url_decode(raw, sizeof(raw), states[0], RLY_STATE_LEN), 33);
    raw[0] = 0x03;
    rly_b64url_encode(forged, raw, sizeof(raw));
    assert_rejected(&kr, forged, RLY_STATE_LEN);
    /* unknown flags */
    memset(forged, 'x', sizeof(forged));
    assert_int_equal(rly_state_encode_flags(&kr, sid, 4u, forged), 0);
    assert_int_equal(forged[0], '\0');
    assert_int_equal(rly_state_encode_flags(&kr, sid, RLY_STATE_BOUND | 8u, forged), 0);
    assert_int_equal(rly_state_encode_flags(&kr, sid, ~0u, forged), 0);
}

/* the direct flag round-trips, is covered by the MAC (a state cannot be switched between the two), and the plain verify
 * accepts both */
static void test_direct_flag(void **unused)
{
    (void)unused;
    rly_keyring_t kr;
    uint8_t sid[RLY_SESSION_ID_BYTES], back[RLY_SESSION_ID_BYTES], raw[33];
    char direct[RLY_STATE_LEN + 1], plain[RLY_STATE_LEN + 1], swapped[RLY_STATE_LEN + 1];
    unsigned flags = 99;

    assert_int_equal(rly_keyring_ephemeral(&kr), 0);
    pattern(sid, sizeof(sid), 0x33);
    assert_int_equal(rly_state_encode_flags(&kr, sid, RLY_STATE_DIRECT, direct), RLY_STATE_LEN);
    assert_int_equal(rly_state_encode_flags(&kr, sid, 0, plain), RLY_STATE_LEN);
    assert_string_not_equal(direct, plain);
    assert_int_equal(rly_state_verify_flags(&kr, direct, RLY_STATE_LEN, back, &flags), 0);
    assert_int_equal(flags, RLY_STATE_DIRECT);
    assert_memory_equal(back, sid, sizeof(sid));
    assert_int_equal(rly_state_verify_flags(&kr, plain, RLY_STATE_LEN, back, &flags), 0);
    assert_int_equal(flags, 0);
    assert_int_equal(rly_state_verify(&kr, direct, RLY_STATE_LEN, back), 0);
    assert_int_equal(rly_state_verify_flags(&kr, direct, RLY_STATE_LEN, back, NULL), 0);
    /* rly_state_encode is the read-first form */
    assert_int_equal(rly_state_encode(&kr, sid, swapped), RLY_STATE_LEN);
    assert_string_equal(swapped, plain);
    /* the version byte swapped under the same MAC, both ways: rejected */
    const char *from[] = {direct, plain};
    for (int k = 0; k != 2; ++k) {
        assert_int_equal(rly_b64url_decode(raw, sizeof(raw), from[k], RLY_STATE_LEN), 33);
        raw[0] ^= 0x03; /* 0x01 <-> 0x02 */
        rly_b64url_encode(swapped, raw, sizeof(raw));
        assert_rejected(&kr, swapped, RLY_STATE_LEN);
    }
}

static void test_key_rotation(void **unused)
{
    (void)unused;
    rly_keyring_t old_ring, new_ring, rotated, newer_only, three;
    uint8_t sid[RLY_SESSION_ID_BYTES], back[RLY_SESSION_ID_BYTES];
    char state[RLY_STATE_LEN + 1], state2[RLY_STATE_LEN + 1];
    static const uint8_t old_start[] = {0x10}, new_start[] = {0x80}, rotated_starts[] = {0x80, 0x10},
                         three_starts[] = {0xc0, 0x80, 0x10};

    make_ring(&old_ring, old_start, 1);
    make_ring(&new_ring, new_start, 1);
    make_ring(&rotated, rotated_starts, 2);
    make_ring(&three, three_starts, 3);
    pattern(sid, sizeof(sid), 0x21);

    /* signed by the old key: verifies with [new, old] and [newer, new, old], not with [new] */
    assert_int_equal(rly_state_encode(&old_ring, sid, state), RLY_STATE_LEN);
    assert_int_equal(rly_state_verify(&rotated, state, RLY_STATE_LEN, back), 0);
    assert_memory_equal(back, sid, sizeof(sid));
    assert_int_equal(rly_state_verify(&three, state, RLY_STATE_LEN, back), 0);
    assert_rejected(&new_ring, state, RLY_STATE_LEN);

    /* [new, old] signs with new */
    assert_int_equal(rly_state_encode(&rotated, sid, state2), RLY_STATE_LEN);
    assert_string_not_equal(state, state2);
    assert_int_equal(rly_state_verify(&new_ring, state2, RLY_STATE_LEN, back), 0);
    assert_rejected(&old_ring, state2, RLY_STATE_LEN);

    /* an old key dropped from the ring no longer verifies */
    newer_only = three;
    newer_only.count = 2;
    assert_rejected(&newer_only, state, RLY_STATE_LEN);
}

static void test_empty_ring(void **unused)
{
    (void)unused;
    rly_keyring_t kr, empty;
    uint8_t sid[RLY_SESSION_ID_BYTES];
    char state[RLY_STATE_LEN + 1];

    assert_int_equal(rly_keyring_ephemeral(&kr), 0);
    memset(&empty, 0, sizeof(empty));
    pattern(sid, sizeof(sid), 0x01);
    memset(state, 'x', sizeof(state));
    assert_int_equal(rly_state_encode(&empty, sid, state), 0);
    assert_int_equal(state[0], '\0');
    assert_int_equal(rly_state_encode(&kr, sid, state), RLY_STATE_LEN);
    assert_rejected(&empty, state, RLY_STATE_LEN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answer),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_every_character_changed),
        cmocka_unit_test(test_every_bit_flipped),
        cmocka_unit_test(test_truncation_and_extension),
        cmocka_unit_test(test_wrong_charset),
        cmocka_unit_test(test_other_version_with_valid_mac),
        cmocka_unit_test(test_direct_flag),
        cmocka_unit_test(test_bound_flag),
        cmocka_unit_test(test_key_rotation),
        cmocka_unit_test(test_empty_ring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
