/* test_lock.c: unit tests of the locked result (common/lock.c), and the generator and check of tests/vectors/locked.json */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/crypto.h>

#include "b64url.h"
#include "buf.h"
#include "jsonstr.h"
#include "lock.h"
#include "seal.h"

#define VECTORS_PATH RLY_SOURCE_DIR "/tests/vectors/locked.json"
#define SID1 "AAECAwQFBgcICQoLDA0ODw" /* session id bytes 00..0f */
#define SID2 "EBESExQVFhcYGRobHB0eHw" /* session id bytes 10..1f */

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

/* unlock must fail, and leave *outlen alone */
static void assert_unlock_fails(const char *release, size_t release_len, const char *sid, const char *locked, size_t len)
{
    size_t outlen = 12345;
    char *pt = rly_unlock(release, release_len, sid, locked, len, &outlen);

    if (pt != NULL) {
        free(pt);
        fail_msg("unlocked what should not open (%zu characters)", len);
    }
    assert_int_equal(outlen, 12345);
}

/* unlock must give pt back, NUL-terminated */
static void assert_unlocks_to(const char *release, const char *sid, const char *locked, size_t len, const char *pt, size_t ptlen)
{
    size_t outlen = 0;
    char *back = rly_unlock(release, strlen(release), sid, locked, len, &outlen);

    assert_non_null(back);
    assert_int_equal(outlen, ptlen);
    assert_memory_equal(back, pt, ptlen);
    assert_int_equal(back[ptlen], '\0');
    OPENSSL_cleanse(back, ptlen);
    free(back);
}

static void test_round_trip(void **unused)
{
    (void)unused;
    static const size_t lens[] = {0, 1, 15, 16, 17, 145, 4096, 8192 + 200, 100000};
    char *pt = malloc(100000);

    assert_non_null(pt);
    for (size_t i = 0; i != 100000; ++i)
        pt[i] = (char)(0x20 + i % 95);
    for (size_t i = 0; i != sizeof(lens) / sizeof(lens[0]); ++i) {
        char release[RLY_RELEASE_KEY_LEN + 1], release2[RLY_RELEASE_KEY_LEN + 1];
        size_t len = lens[i], outlen = 0, outlen2 = 0;
        uint8_t key[32];
        char *locked = rly_lock(SID1, pt, len, release, &outlen);
        assert_non_null(locked);
        assert_int_equal(outlen, RLY_B64URL_ENCODED_LEN(RLY_LOCK_OVERHEAD + len));
        assert_int_equal(strlen(locked), outlen);
        assert_true(rly_b64url_is_charset(locked, outlen));
        assert_int_equal(locked[0], 'A'); /* version byte 0x01 */
        assert_int_equal(strlen(release), RLY_RELEASE_KEY_LEN);
        assert_int_equal(rly_b64url_decode(key, sizeof(key), release, RLY_RELEASE_KEY_LEN), 32);
        assert_unlocks_to(release, SID1, locked, outlen, pt, len);
        /* a fresh key and nonce every time */
        char *again = rly_lock(SID1, pt, len, release2, &outlen2);
        assert_non_null(again);
        assert_string_not_equal(release, release2);
        assert_memory_not_equal(locked, again, 17); /* the nonce differs */
        assert_unlock_fails(release2, RLY_RELEASE_KEY_LEN, SID1, locked, outlen);
        assert_unlock_fails(release, RLY_RELEASE_KEY_LEN, SID1, again, outlen2);
        free(again);
        free(locked);
    }
    free(pt);
}

/* 0x01 || nonce || ct || tag, with the session id text as AAD, through the AES-256-GCM helper of seal.c */
static void test_layout(void **unused)
{
    (void)unused;
    uint8_t key[32], nonce[12], raw[RLY_LOCK_OVERHEAD + 64], out[64];
    const char *pt = "{\"status\":\"authorized\",\"code\":\"abc\"}";
    size_t len = strlen(pt), outlen = 0, outlen2 = 0;
    char release[RLY_RELEASE_KEY_LEN + 1];

    pattern(key, sizeof(key), 0x11);
    pattern(nonce, sizeof(nonce), 0x77);
    char *locked = rly_lock_with(key, nonce, SID1, pt, len, &outlen);
    char *again = rly_lock_with(key, nonce, SID1, pt, len, &outlen2);
    assert_non_null(locked);
    assert_non_null(again);
    assert_string_equal(locked, again); /* deterministic */
    assert_int_equal(rly_b64url_decode(raw, sizeof(raw), locked, outlen), RLY_LOCK_OVERHEAD + len);
    assert_int_equal(raw[0], 0x01);
    assert_memory_equal(raw + 1, nonce, 12);
    assert_int_equal(rly_aes256gcm_decrypt(key, nonce, SID1, RLY_SESSION_ID_LEN, raw + 13, len + 16, out), 0);
    assert_memory_equal(out, pt, len);
    assert_int_equal(rly_aes256gcm_decrypt(key, nonce, SID2, RLY_SESSION_ID_LEN, raw + 13, len + 16, out), -1);
    rly_b64url_encode(release, key, 32);
    assert_unlocks_to(release, SID1, locked, outlen, pt, len);
    free(again);
    free(locked);
}

/* every bit of the locked bytes flipped: refused */
static void test_tamper(void **unused)
{
    (void)unused;
    char release[RLY_RELEASE_KEY_LEN + 1], forged[RLY_B64URL_ENCODED_LEN(RLY_LOCK_OVERHEAD + 40) + 1];
    uint8_t raw[RLY_LOCK_OVERHEAD + 40];
    char pt[40];
    size_t outlen = 0;

    memset(pt, 'p', sizeof(pt));
    char *locked = rly_lock(SID1, pt, sizeof(pt), release, &outlen);
    assert_non_null(locked);
    assert_int_equal(rly_b64url_decode(raw, sizeof(raw), locked, outlen), sizeof(raw));
    for (size_t i = 0; i != sizeof(raw); ++i) {
        for (int bit = 0; bit != 8; ++bit) {
            raw[i] ^= (uint8_t)(1 << bit);
            size_t n = rly_b64url_encode(forged, raw, sizeof(raw));
            assert_unlock_fails(release, RLY_RELEASE_KEY_LEN, SID1, forged, n);
            raw[i] ^= (uint8_t)(1 << bit);
        }
    }
    size_t n = rly_b64url_encode(forged, raw, sizeof(raw));
    assert_string_equal(forged, locked);
    assert_unlocks_to(release, SID1, forged, n, pt, sizeof(pt));
    /* every bit of the release key */
    uint8_t key[32];
    char other[RLY_RELEASE_KEY_LEN + 1];
    assert_int_equal(rly_b64url_decode(key, sizeof(key), release, RLY_RELEASE_KEY_LEN), 32);
    for (size_t i = 0; i != sizeof(key); ++i) {
        for (int bit = 0; bit != 8; ++bit) {
            key[i] ^= (uint8_t)(1 << bit);
            rly_b64url_encode(other, key, sizeof(key));
            assert_unlock_fails(other, RLY_RELEASE_KEY_LEN, SID1, locked, outlen);
            key[i] ^= (uint8_t)(1 << bit);
        }
    }
    free(locked);
}

static void test_wrong_session(void **unused)
{
    (void)unused;
    char release[RLY_RELEASE_KEY_LEN + 1], sid[RLY_SESSION_ID_LEN + 2];
    const char *pt = "{\"status\":\"denied\",\"error\":\"access_denied\"}";
    size_t outlen = 0;
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    char *locked = rly_lock(SID1, pt, strlen(pt), release, &outlen);
    assert_non_null(locked);
    assert_unlock_fails(release, RLY_RELEASE_KEY_LEN, SID2, locked, outlen);
    /* any one character of the session id changed */
    for (size_t pos = 0; pos != RLY_SESSION_ID_LEN; ++pos) {
        memcpy(sid, SID1, RLY_SESSION_ID_LEN + 1);
        sid[pos] = alphabet[(size_t)(strchr(alphabet, sid[pos]) - alphabet + 1) % 64];
        assert_unlock_fails(release, RLY_RELEASE_KEY_LEN, sid, locked, outlen);
    }
    /* a session id text of another length: refused both ways */
    memcpy(sid, SID1, RLY_SESSION_ID_LEN);
    sid[RLY_SESSION_ID_LEN] = 'A';
    sid[RLY_SESSION_ID_LEN + 1] = '\0';
    assert_unlock_fails(release, RLY_RELEASE_KEY_LEN, sid, locked, outlen);
    sid[RLY_SESSION_ID_LEN - 1] = '\0';
    assert_unlock_fails(release, RLY_RELEASE_KEY_LEN, sid, locked, outlen);
    assert_unlock_fails(release, RLY_RELEASE_KEY_LEN, "", locked, outlen);
    char release2[RLY_RELEASE_KEY_LEN + 1];
    assert_null(rly_lock(sid, pt, strlen(pt), release2, &outlen));
    assert_int_equal(release2[0], '\0');
    assert_null(rly_lock("", pt, strlen(pt), release2, &outlen));
    assert_null(rly_lock(NULL, pt, strlen(pt), release2, &outlen));
    assert_unlocks_to(release, SID1, locked, strlen(locked), pt, strlen(pt));
    free(locked);
}

static void test_malformed(void **unused)
{
    (void)unused;
    char release[RLY_RELEASE_KEY_LEN + 1], text[RLY_RELEASE_KEY_LEN + 8];
    const char *pt = "hello";
    size_t outlen = 0;
    uint8_t raw[RLY_LOCK_OVERHEAD + 5];
    char forged[RLY_B64URL_ENCODED_LEN(RLY_LOCK_OVERHEAD + 5) + 4];

    char *locked = rly_lock(SID1, pt, 5, release, &outlen);
    assert_non_null(locked);
    /* release: every other length, padding, another alphabet, the other spellings of its last character */
    for (size_t len = 0; len != RLY_RELEASE_KEY_LEN; ++len)
        assert_unlock_fails(release, len, SID1, locked, outlen);
    memcpy(text, release, RLY_RELEASE_KEY_LEN);
    text[RLY_RELEASE_KEY_LEN] = '=';
    assert_unlock_fails(text, RLY_RELEASE_KEY_LEN + 1, SID1, locked, outlen);
    text[RLY_RELEASE_KEY_LEN] = 'A';
    assert_unlock_fails(text, RLY_RELEASE_KEY_LEN + 1, SID1, locked, outlen);
    {
        static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        size_t v = (size_t)(strchr(alphabet, release[RLY_RELEASE_KEY_LEN - 1]) - alphabet);
        assert_int_equal(v & 3, 0);
        for (size_t low = 1; low != 4; ++low) {
            memcpy(text, release, RLY_RELEASE_KEY_LEN + 1);
            text[RLY_RELEASE_KEY_LEN - 1] = alphabet[v | low];
            assert_unlock_fails(text, RLY_RELEASE_KEY_LEN, SID1, locked, outlen);
        }
        memcpy(text, release, RLY_RELEASE_KEY_LEN + 1);
        text[3] = '+';
        assert_unlock_fails(text, RLY_RELEASE_KEY_LEN, SID1, locked, outlen);
    }
    /* locked: empty, shorter than the overhead, every truncation, padding, a trailing character, a bad version */
    assert_unlock_fails(release, RLY_RELEASE_KEY_LEN, SID1, "", 0);
    for (size_t len = 1; len != outlen; ++len)
        assert_unlock_fails(release, RLY_RELEASE_KEY_LEN, SID1, locked, len);
    assert_int_equal(rly_b64url_decode(raw, sizeof(raw), locked, outlen), sizeof(raw));
    for (size_t len = 0; len != RLY_LOCK_OVERHEAD; ++len) {
        size_t n = rly_b64url_encode(forged, raw, len);
        assert_unlock_fails(release, RLY_RELEASE_KEY_LEN, SID1, forged, n);
    }
    memcpy(forged, locked, outlen);
    forged[outlen] = '=';
    assert_unlock_fails(release, RLY_RELEASE_KEY_LEN, SID1, forged, outlen + 1);
    forged[outlen] = 'A';
    assert_unlock_fails(release, RLY_RELEASE_KEY_LEN, SID1, forged, outlen + 1);
    for (unsigned v = 0; v != 256; ++v) {
        if (v == 1)
            continue;
        raw[0] = (uint8_t)v;
        size_t n = rly_b64url_encode(forged, raw, sizeof(raw));
        assert_unlock_fails(release, RLY_RELEASE_KEY_LEN, SID1, forged, n);
    }
    /* longer than any locked result: refused before anything is read or allocated */
    size_t huge = RLY_B64URL_ENCODED_LEN(RLY_LOCK_OVERHEAD + RLY_LOCK_PLAINTEXT_MAX) + 1;
    char *big = malloc(huge);
    assert_non_null(big);
    memset(big, 'A', huge);
    assert_unlock_fails(release, RLY_RELEASE_KEY_LEN, SID1, big, huge);
    free(big);
    /* a plaintext over the limit is not locked */
    char *large = calloc(1, RLY_LOCK_PLAINTEXT_MAX + 1);
    assert_non_null(large);
    assert_null(rly_lock(SID1, large, RLY_LOCK_PLAINTEXT_MAX + 1, text, &outlen));
    assert_int_equal(text[0], '\0');
    char *max = rly_lock(SID1, large, RLY_LOCK_PLAINTEXT_MAX, text, &outlen);
    assert_non_null(max);
    assert_unlocks_to(text, SID1, max, outlen, large, RLY_LOCK_PLAINTEXT_MAX);
    free(max);
    free(large);
    free(locked);
}

/*
 * The test vectors, generated here from fixed keys and nonces: `RLY_WRITE_VECTORS=1 ./unit_common_test_lock` writes
 * tests/vectors/locked.json; without it, test_vectors_reproducible checks that the committed file is exactly what this
 * generator writes, and test_vectors checks every vector against lock.c.
 */
typedef struct st_valid_t {
    const char *description;
    uint8_t key[32];
    uint8_t nonce[12];
    const char *aad;
    const char *pt;
    char release[RLY_RELEASE_KEY_LEN + 1];
    char *locked;
    size_t locked_len;
} valid_t;

static void add_quoted(rly_buf_t *b, const char *s)
{
    size_t room, len = strlen(s);
    char *t;

    assert_int_equal(rly_buf_reserve(b, RLY_JSON_QUOTED_MAX(len)), 0);
    t = rly_buf_tail(b, &room);
    assert_non_null(t);
    rly_buf_commit(b, rly_json_quote(t, room, s, len));
}

static void add_hex(rly_buf_t *b, const uint8_t *p, size_t n)
{
    rly_buf_addc(b, '"');
    for (size_t i = 0; i != n; ++i)
        rly_buf_addf(b, "%02x", p[i]);
    rly_buf_addc(b, '"');
}

static void add_vector(rly_buf_t *b, int first, const char *description, int valid, const valid_t *v, const char *release,
                       const char *aad, const char *locked)
{
    rly_buf_adds(b, first ? "\n  {\n    \"description\": " : ",\n  {\n    \"description\": ");
    add_quoted(b, description);
    rly_buf_adds(b, valid ? ",\n    \"valid\": true" : ",\n    \"valid\": false");
    if (valid) {
        rly_buf_adds(b, ",\n    \"key\": ");
        add_hex(b, v->key, 32);
    }
    rly_buf_adds(b, ",\n    \"release\": ");
    add_quoted(b, release);
    if (valid) {
        rly_buf_adds(b, ",\n    \"nonce\": ");
        add_hex(b, v->nonce, 12);
    }
    rly_buf_adds(b, ",\n    \"aad\": ");
    add_quoted(b, aad);
    if (valid) {
        rly_buf_adds(b, ",\n    \"plaintext\": ");
        add_quoted(b, v->pt);
    }
    rly_buf_adds(b, ",\n    \"locked\": ");
    add_quoted(b, locked);
    rly_buf_adds(b, "\n  }");
}

/* the locked text of raw bytes (malloc'ed) */
static char *encode(const uint8_t *raw, size_t len)
{
    char *s = malloc(RLY_B64URL_ENCODED_LEN(len) + 1);
    assert_non_null(s);
    rly_b64url_encode(s, raw, len);
    return s;
}

/* the raw bytes of v's locked text (malloc'ed), their length in *len */
static uint8_t *decode(const valid_t *v, size_t *len)
{
    uint8_t *raw = malloc(RLY_B64URL_DECODED_MAX(v->locked_len));
    assert_non_null(raw);
    ssize_t n = rly_b64url_decode(raw, RLY_B64URL_DECODED_MAX(v->locked_len), v->locked, v->locked_len);
    assert_true(n >= RLY_LOCK_OVERHEAD);
    *len = (size_t)n;
    return raw;
}

/* an invalid vector: v's raw bytes changed by edit (at byte pos: xor with x; or cut to len when x == 0) */
static void add_edited(rly_buf_t *b, const char *description, const valid_t *v, size_t pos, uint8_t x, size_t cut)
{
    size_t len;
    uint8_t *raw = decode(v, &len);
    if (x != 0)
        raw[pos] ^= x;
    if (cut != 0)
        len = cut;
    char *s = encode(raw, len);
    add_vector(b, 0, description, 0, NULL, v->release, v->aad, s);
    free(s);
    free(raw);
}

static char *generate(size_t *outlen)
{
    static char code[4097], big[4400];
    valid_t v[4] = {
        {.description = "authorized result", .aad = SID1},
        {.description = "denied result", .aad = SID2},
        {.description = "authorized result with a 4096-character code and extra callback parameters", .aad = SID1},
        {.description = "empty plaintext", .aad = SID2},
    };
    rly_buf_t b;

    for (size_t i = 0; i != 4096; ++i)
        code[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."[i % 65];
    code[4096] = '\0';
    int n = snprintf(big, sizeof(big),
                     "{\"status\":\"authorized\",\"code\":\"%s\",\"state\":\"BBAREhMUFRYXGBkaGxwdHh8A0KRfT1ieo4tItOIXRKjg\","
                     "\"iss\":\"https://appcenter.intuit.com\",\"params\":{\"realmId\":\"9130356813469666\"}}",
                     code);
    assert_true(n > 0 && (size_t)n < sizeof(big));
    v[0].pt = "{\"status\":\"authorized\",\"code\":\"SplxlOBeZQQYbYS6WxSbIA\",\"state\":"
              "\"AxAREhMUFRYXGBkaGxwdHh8h67YDUgvdphpePTeDwXEV\",\"iss\":\"https://auth.atlassian.com\"}";
    v[1].pt = "{\"status\":\"denied\",\"error\":\"access_denied\",\"error_description\":\"User denied access\"}";
    v[2].pt = big;
    v[3].pt = "";
    for (size_t i = 0; i != 4; ++i) {
        pattern(v[i].key, 32, (uint8_t)(0x40 * i));
        pattern(v[i].nonce, 12, (uint8_t)(0x40 * i + 0x20));
        rly_b64url_encode(v[i].release, v[i].key, 32);
        v[i].locked = rly_lock_with(v[i].key, v[i].nonce, v[i].aad, v[i].pt, strlen(v[i].pt), &v[i].locked_len);
        assert_non_null(v[i].locked);
    }

    rly_buf_init(&b, 1024 * 1024);
    rly_buf_addc(&b, '[');
    for (size_t i = 0; i != 4; ++i)
        add_vector(&b, i == 0, v[i].description, 1, &v[i], v[i].release, v[i].aad, v[i].locked);

    /* must fail: each refers to a valid vector above (numbered from 1) */
    add_vector(&b, 0, "must fail: wrong release key (vector 1 with the release key of vector 2)", 0, NULL, v[1].release, v[0].aad,
               v[0].locked);
    add_vector(&b, 0, "must fail: wrong session id, another session's id as aad (vector 1)", 0, NULL, v[0].release, SID2,
               v[0].locked);
    {
        size_t len;
        uint8_t *raw = decode(&v[0], &len);
        free(raw);
        add_edited(&b, "must fail: last byte of the tag flipped (vector 1)", &v[0], len - 1, 0x01, 0);
        add_edited(&b, "must fail: first tag byte flipped (vector 1)", &v[0], len - 16, 0x80, 0);
    }
    add_edited(&b, "must fail: one ciphertext bit flipped (vector 1)", &v[0], 13, 0x01, 0);
    add_edited(&b, "must fail: one nonce bit flipped (vector 1)", &v[0], 1, 0x04, 0);
    add_edited(&b, "must fail: unknown version byte 0x02, the rest intact (the tag does not cover the version byte) (vector 1)",
               &v[0], 0, 0x03, 0);
    add_edited(&b, "must fail: version byte 0x00 (vector 1)", &v[0], 0, 0x01, 0);
    add_edited(&b, "must fail: truncated to 28 bytes, shorter than the 29-byte overhead (vector 4)", &v[3], 0, 0, 28);
    {
        size_t len;
        uint8_t *raw = decode(&v[1], &len);
        free(raw);
        add_edited(&b, "must fail: last byte cut off (vector 2)", &v[1], 0, 0, len - 1);
        add_edited(&b, "must fail: the whole tag cut off (vector 2)", &v[1], 0, 0, len - 16);
    }
    {
        /* the same bytes spelled otherwise: the last character's unused low bits set */
        static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        size_t i, k;
        for (i = 0; i != 4 && v[i].locked_len % 4 == 0; ++i)
            ;
        assert_true(i != 4);
        char *s = strdup(v[i].locked), desc[160];
        assert_non_null(s);
        k = (size_t)(strchr(alphabet, s[v[i].locked_len - 1]) - alphabet);
        s[v[i].locked_len - 1] = alphabet[k | 1];
        snprintf(desc, sizeof(desc),
                 "must fail: locked not canonical base64url, a non-zero unused bit in the last character (vector %zu)", i + 1);
        add_vector(&b, 0, desc, 0, NULL, v[i].release, v[i].aad, s);
        free(s);
        /* padding */
        assert_non_null(s = malloc(v[i].locked_len + 3));
        memcpy(s, v[i].locked, v[i].locked_len);
        memcpy(s + v[i].locked_len, "==", 3);
        s[v[i].locked_len + (v[i].locked_len % 4 == 2 ? 2 : 1)] = '\0';
        snprintf(desc, sizeof(desc), "must fail: locked with base64 padding (vector %zu)", i + 1);
        add_vector(&b, 0, desc, 0, NULL, v[i].release, v[i].aad, s);
        free(s);
        /* the standard base64 alphabet */
        for (i = 0; i != 4 && strpbrk(v[i].locked, "-_") == NULL; ++i)
            ;
        assert_true(i != 4);
        assert_non_null(s = strdup(v[i].locked));
        for (char *p = s; *p != '\0'; ++p)
            *p = *p == '-' ? '+' : *p == '_' ? '/' : *p;
        snprintf(desc, sizeof(desc), "must fail: locked in the standard base64 alphabet ('+' and '/') (vector %zu)", i + 1);
        add_vector(&b, 0, desc, 0, NULL, v[i].release, v[i].aad, s);
        free(s);
        /* the release key: a non-zero unused bit, padding, 31 bytes */
        char rel[RLY_RELEASE_KEY_LEN + 2];
        memcpy(rel, v[0].release, sizeof(v[0].release));
        k = (size_t)(strchr(alphabet, rel[RLY_RELEASE_KEY_LEN - 1]) - alphabet);
        rel[RLY_RELEASE_KEY_LEN - 1] = alphabet[k | 1];
        add_vector(&b, 0, "must fail: release key not canonical base64url, a non-zero unused bit in the last character (vector 1)",
                   0, NULL, rel, v[0].aad, v[0].locked);
        memcpy(rel, v[0].release, RLY_RELEASE_KEY_LEN);
        memcpy(rel + RLY_RELEASE_KEY_LEN, "=", 2);
        add_vector(&b, 0, "must fail: release key with base64 padding (vector 1)", 0, NULL, rel, v[0].aad, v[0].locked);
        rly_b64url_encode(rel, v[0].key, 31);
        add_vector(&b, 0, "must fail: release key of 31 bytes, the first 31 of vector 1's", 0, NULL, rel, v[0].aad, v[0].locked);
    }
    rly_buf_adds(&b, "\n]\n");

    for (size_t i = 0; i != 4; ++i)
        free(v[i].locked);
    char *text = rly_buf_take(&b, outlen);
    assert_non_null(text);
    return text;
}

static void test_vectors_reproducible(void **unused)
{
    (void)unused;
    size_t len, filelen;
    char *text = generate(&len);
    const char *write = getenv("RLY_WRITE_VECTORS");
    FILE *fp;

    if (write != NULL && strcmp(write, "1") == 0) {
        assert_non_null(fp = fopen(VECTORS_PATH, "wb"));
        assert_int_equal(fwrite(text, 1, len, fp), len);
        assert_int_equal(fclose(fp), 0);
        print_message("wrote %s\n", VECTORS_PATH);
    }
    char *file = malloc(len + 2);
    assert_non_null(file);
    if ((fp = fopen(VECTORS_PATH, "rb")) == NULL)
        fail_msg("cannot read %s", VECTORS_PATH);
    filelen = fread(file, 1, len + 1, fp);
    fclose(fp);
    if (filelen != len || memcmp(file, text, len) != 0)
        fail_msg("%s is not what the generator writes (RLY_WRITE_VECTORS=1 rewrites it)", VECTORS_PATH);
    free(file);
    free(text);
}

static const char *member(json_object *v, const char *name)
{
    json_object *m;

    if (!json_object_object_get_ex(v, name, &m) || !json_object_is_type(m, json_type_string))
        fail_msg("vector member \"%s\" missing or not a string", name);
    return json_object_get_string(m);
}

static void check_valid_vector(json_object *v)
{
    uint8_t key[32], nonce[12], keyback[32];
    const char *aad = member(v, "aad"), *pt = member(v, "plaintext"), *locked = member(v, "locked"),
               *release = member(v, "release");
    size_t len = 0, ptlen = strlen(pt);

    from_hex(key, 32, member(v, "key"));
    from_hex(nonce, 12, member(v, "nonce"));
    assert_int_equal(strlen(aad), RLY_SESSION_ID_LEN);
    /* the release key is the key's base64url */
    assert_int_equal(strlen(release), RLY_RELEASE_KEY_LEN);
    assert_int_equal(rly_b64url_decode(keyback, 32, release, RLY_RELEASE_KEY_LEN), 32);
    assert_memory_equal(keyback, key, 32);
    /* locking the fixed inputs gives exactly the vector, and it opens */
    char *mine = rly_lock_with(key, nonce, aad, pt, ptlen, &len);
    assert_non_null(mine);
    assert_string_equal(mine, locked);
    assert_int_equal(len, strlen(locked));
    free(mine);
    assert_unlocks_to(release, aad, locked, strlen(locked), pt, ptlen);
    /* the ciphertext opens through the plain AES-256-GCM helper too */
    size_t cap = RLY_B64URL_DECODED_MAX(strlen(locked));
    uint8_t *raw = malloc(cap), *out = malloc(cap);
    assert_non_null(raw);
    assert_non_null(out);
    ssize_t rawlen = rly_b64url_decode(raw, cap, locked, strlen(locked));
    assert_int_equal(rawlen, RLY_LOCK_OVERHEAD + ptlen);
    assert_int_equal(raw[0], 0x01);
    assert_memory_equal(raw + 1, nonce, 12);
    assert_int_equal(rly_aes256gcm_decrypt(key, nonce, aad, strlen(aad), raw + 13, (size_t)rawlen - 13, out), 0);
    assert_memory_equal(out, pt, ptlen);
    free(out);
    free(raw);
    /* a plaintext is a result object (or empty) */
    if (ptlen != 0) {
        json_object *o = json_tokener_parse(pt);
        assert_non_null(o);
        json_object_put(o);
    }
}

static void test_vectors(void **unused)
{
    (void)unused;
    json_object *doc = json_object_from_file(VECTORS_PATH);
    size_t valid = 0, invalid = 0, longest = 0;
    int authorized = 0, denied = 0;

    if (doc == NULL)
        fail_msg("cannot read %s", VECTORS_PATH);
    assert_true(json_object_is_type(doc, json_type_array));
    for (size_t i = 0; i != json_object_array_length(doc); ++i) {
        json_object *v = json_object_array_get_idx(doc, i), *flag;
        const char *aad = member(v, "aad"), *locked = member(v, "locked"), *release = member(v, "release");

        assert_true(strlen(member(v, "description")) > 0);
        assert_true(json_object_object_get_ex(v, "valid", &flag) && json_object_is_type(flag, json_type_boolean));
        if (json_object_get_boolean(flag)) {
            const char *pt = member(v, "plaintext");
            check_valid_vector(v);
            ++valid;
            authorized |= strstr(pt, "\"status\":\"authorized\"") != NULL;
            denied |= strstr(pt, "\"status\":\"denied\"") != NULL;
            if (strlen(pt) > longest)
                longest = strlen(pt);
        } else {
            assert_unlock_fails(release, strlen(release), aad, locked, strlen(locked));
            ++invalid;
        }
    }
    json_object_put(doc);
    assert_true(valid >= 3);
    assert_true(invalid >= 10);
    assert_true(authorized && denied);
    assert_true(longest >= 4096);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),    cmocka_unit_test(test_layout),    cmocka_unit_test(test_tamper),
        cmocka_unit_test(test_wrong_session), cmocka_unit_test(test_malformed), cmocka_unit_test(test_vectors_reproducible),
        cmocka_unit_test(test_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
