/* test_seal.c: unit tests of sealing to an X25519 key and the AES-256-GCM helpers (common/seal.c), and the seal test vectors */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "b64url.h"
#include "seal.h"

#define VECTORS_PATH RLY_SOURCE_DIR "/tests/vectors/seal.json"
#define SID "AAECAwQFBgcICQoLDA0ODw"

static void from_hex(uint8_t *out, size_t cap, const char *hex)
{
    size_t n = strlen(hex);

    assert_int_equal(n, cap * 2);
    for (size_t i = 0; i != cap; ++i) {
        char b[3] = {hex[2 * i], hex[2 * i + 1], '\0'}, *end;
        out[i] = (uint8_t)strtol(b, &end, 16);
        assert_true(*end == '\0');
    }
}

static void pattern(uint8_t *p, size_t n, uint8_t start)
{
    for (size_t i = 0; i != n; ++i)
        p[i] = (uint8_t)(start + i);
}

/* X25519 and HKDF through other OpenSSL entry points than seal.c uses, to check the vectors' intermediate values */
static void ref_public(const uint8_t priv[32], uint8_t pub[32])
{
    EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, 32);
    size_t len = 32;

    assert_non_null(pkey);
    assert_int_equal(EVP_PKEY_get_raw_public_key(pkey, pub, &len), 1);
    EVP_PKEY_free(pkey);
}

static void ref_x25519(const uint8_t priv[32], const uint8_t peer[32], uint8_t out[32])
{
    EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, 32);
    EVP_PKEY *peerkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, 32);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
    size_t len = 32;

    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_derive_init(ctx), 1);
    assert_int_equal(EVP_PKEY_derive_set_peer(ctx, peerkey), 1);
    assert_int_equal(EVP_PKEY_derive(ctx, out, &len), 1);
    assert_int_equal(len, 32);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(peerkey);
    EVP_PKEY_free(pkey);
}

static void ref_hkdf(const uint8_t ikm[32], const uint8_t salt[64], uint8_t out[32])
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    size_t len = 32;

    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_derive_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()), 1);
    assert_int_equal(EVP_PKEY_CTX_set1_hkdf_salt(ctx, salt, 64), 1);
    assert_int_equal(EVP_PKEY_CTX_set1_hkdf_key(ctx, ikm, 32), 1);
    assert_int_equal(EVP_PKEY_CTX_add1_hkdf_info(ctx, (const unsigned char *)"authrelay seal v1", 17), 1);
    assert_int_equal(EVP_PKEY_derive(ctx, out, &len), 1);
    assert_int_equal(len, 32);
    EVP_PKEY_CTX_free(ctx);
}

/* unseal must fail, and leave *ptlen alone */
static void assert_unseal_fails(const uint8_t priv[32], const char *aad, size_t aadlen, const char *sealed, size_t len)
{
    size_t ptlen = 12345;
    uint8_t *pt = rly_unseal(priv, aad, aadlen, sealed, len, &ptlen);

    if (pt != NULL) {
        free(pt);
        fail_msg("unsealed what should not open (%zu characters)", len);
    }
    assert_int_equal(ptlen, 12345);
}

static void test_keypair(void **unused)
{
    (void)unused;
    uint8_t priv[32], pub[32], priv2[32], pub2[32], derived[32];

    assert_int_equal(rly_x25519_keypair(priv, pub), 0);
    ref_public(priv, derived);
    assert_memory_equal(pub, derived, 32);
    assert_int_equal(rly_x25519_keypair(priv2, pub2), 0);
    assert_memory_not_equal(priv, priv2, 32);
    assert_memory_not_equal(pub, pub2, 32);
}

static void test_round_trip(void **unused)
{
    (void)unused;
    static const size_t lens[] = {0, 1, 15, 16, 17, 145, 4096, 8192 + 200};
    static uint8_t pt[8192 + 200];
    uint8_t priv[32], pub[32];

    assert_int_equal(rly_x25519_keypair(priv, pub), 0);
    pattern(pt, sizeof(pt), 0x20);
    for (size_t i = 0; i != sizeof(lens) / sizeof(lens[0]); ++i) {
        size_t len = lens[i], ptlen = 0;
        char *sealed = rly_seal(pub, SID, strlen(SID), pt, len, NULL, NULL);
        assert_non_null(sealed);
        assert_int_equal(strlen(sealed), RLY_B64URL_ENCODED_LEN(RLY_SEAL_OVERHEAD + len));
        assert_true(rly_b64url_is_charset(sealed, strlen(sealed)));
        assert_int_equal(sealed[0], 'A'); /* version byte 0x01 */
        uint8_t *back = rly_unseal(priv, SID, strlen(SID), sealed, strlen(sealed), &ptlen);
        assert_non_null(back);
        assert_int_equal(ptlen, len);
        assert_memory_equal(back, pt, len);
        assert_int_equal(back[len], '\0');
        /* a fresh ephemeral key and nonce every time */
        char *again = rly_seal(pub, SID, strlen(SID), pt, len, NULL, NULL);
        assert_non_null(again);
        assert_string_not_equal(sealed, again);
        assert_memory_not_equal(sealed, again, 44); /* the ephemeral public key differs */
        free(again);
        free(back);
        free(sealed);
    }
}

static void test_fixed_inputs_are_deterministic(void **unused)
{
    (void)unused;
    uint8_t priv[32], pub[32], eph[32], nonce[12], raw[RLY_SEAL_OVERHEAD + 5], eph_pub[32];
    const char *pt = "hello";

    assert_int_equal(rly_x25519_keypair(priv, pub), 0);
    pattern(eph, sizeof(eph), 0x40);
    pattern(nonce, sizeof(nonce), 0x60);
    char *a = rly_seal(pub, SID, strlen(SID), (const uint8_t *)pt, 5, eph, nonce);
    char *b = rly_seal(pub, SID, strlen(SID), (const uint8_t *)pt, 5, eph, nonce);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(a, b);
    /* layout: 0x01 || eph.public || nonce || ct || tag */
    assert_int_equal(rly_b64url_decode(raw, sizeof(raw), a, strlen(a)), sizeof(raw));
    assert_int_equal(raw[0], 0x01);
    ref_public(eph, eph_pub);
    assert_memory_equal(raw + 1, eph_pub, 32);
    assert_memory_equal(raw + 33, nonce, 12);
    free(a);
    free(b);
}

static void test_tamper(void **unused)
{
    (void)unused;
    uint8_t priv[32], pub[32], pt[100], raw[RLY_SEAL_OVERHEAD + 100];
    char forged[RLY_B64URL_ENCODED_LEN(RLY_SEAL_OVERHEAD + 100) + 1];

    assert_int_equal(rly_x25519_keypair(priv, pub), 0);
    pattern(pt, sizeof(pt), 0x11);
    char *sealed = rly_seal(pub, SID, strlen(SID), pt, sizeof(pt), NULL, NULL);
    assert_non_null(sealed);
    assert_int_equal(rly_b64url_decode(raw, sizeof(raw), sealed, strlen(sealed)), sizeof(raw));
    for (size_t i = 0; i != sizeof(raw); ++i) {
        for (int bit = 0; bit != 8; ++bit) {
            raw[i] ^= (uint8_t)(1 << bit);
            size_t n = rly_b64url_encode(forged, raw, sizeof(raw));
            assert_unseal_fails(priv, SID, strlen(SID), forged, n);
            raw[i] ^= (uint8_t)(1 << bit);
        }
    }
    /* the untouched value still opens */
    size_t n = rly_b64url_encode(forged, raw, sizeof(raw)), ptlen;
    assert_string_equal(forged, sealed);
    uint8_t *back = rly_unseal(priv, SID, strlen(SID), forged, n, &ptlen);
    assert_non_null(back);
    free(back);
    free(sealed);
}

static void test_wrong_aad_and_key(void **unused)
{
    (void)unused;
    uint8_t priv[32], pub[32], priv2[32], pub2[32];
    const char *pt = "{\"status\":\"authorized\",\"code\":\"abc\",\"state\":\"xyz\"}";

    assert_int_equal(rly_x25519_keypair(priv, pub), 0);
    assert_int_equal(rly_x25519_keypair(priv2, pub2), 0);
    char *sealed = rly_seal(pub, SID, strlen(SID), (const uint8_t *)pt, strlen(pt), NULL, NULL);
    assert_non_null(sealed);
    size_t len = strlen(sealed), ptlen;

    assert_unseal_fails(priv, "AAECAwQFBgcICQoLDA0ODg", 22, sealed, len);
    assert_unseal_fails(priv, SID, strlen(SID) - 1, sealed, len);
    assert_unseal_fails(priv, SID "A", strlen(SID) + 1, sealed, len);
    assert_unseal_fails(priv, NULL, 0, sealed, len);
    assert_unseal_fails(priv2, SID, strlen(SID), sealed, len);
    /* with the public key instead of the private key */
    assert_unseal_fails(pub, SID, strlen(SID), sealed, len);

    uint8_t *back = rly_unseal(priv, SID, strlen(SID), sealed, len, &ptlen);
    assert_non_null(back);
    assert_string_equal((char *)back, pt);
    free(back);
    free(sealed);
}

static void test_truncated_and_malformed(void **unused)
{
    (void)unused;
    uint8_t priv[32], pub[32], pt[20], raw[RLY_SEAL_OVERHEAD + 20];
    char text[RLY_B64URL_ENCODED_LEN(RLY_SEAL_OVERHEAD + 20) + 8];

    assert_int_equal(rly_x25519_keypair(priv, pub), 0);
    pattern(pt, sizeof(pt), 0x55);
    char *sealed = rly_seal(pub, SID, strlen(SID), pt, sizeof(pt), NULL, NULL);
    assert_non_null(sealed);
    size_t len = strlen(sealed);

    for (size_t n = 0; n != len; ++n)
        assert_unseal_fails(priv, SID, strlen(SID), sealed, n);
    /* whole bytes cut off the end, down to nothing */
    assert_int_equal(rly_b64url_decode(raw, sizeof(raw), sealed, len), sizeof(raw));
    for (size_t n = 0; n != sizeof(raw); ++n)
        assert_unseal_fails(priv, SID, strlen(SID), text, rly_b64url_encode(text, raw, n));
    /* a byte more */
    memcpy(text, sealed, len);
    memcpy(text + len, "AA", 2);
    assert_unseal_fails(priv, SID, strlen(SID), text, len + 2);
    /* padding, standard base64 characters, whitespace */
    memcpy(text, sealed, len);
    memcpy(text + len, "==", 2);
    assert_unseal_fails(priv, SID, strlen(SID), text, len + 2);
    memcpy(text, sealed, len);
    text[len] = '\n';
    assert_unseal_fails(priv, SID, strlen(SID), text, len + 1);
    for (size_t i = 0; i != len; ++i) {
        if (sealed[i] == '-' || sealed[i] == '_') {
            memcpy(text, sealed, len);
            text[i] = sealed[i] == '-' ? '+' : '/';
            assert_unseal_fails(priv, SID, strlen(SID), text, len);
        }
    }
    /* other version bytes */
    for (int v = 0; v != 256; ++v) {
        if (v == 1)
            continue;
        raw[0] = (uint8_t)v;
        assert_unseal_fails(priv, SID, strlen(SID), text, rly_b64url_encode(text, raw, sizeof(raw)));
    }
    free(sealed);
}

/* points of small order on Curve25519 (and their non-canonical encodings): X25519 with them is all zero */
static const char *low_order_points[] = {
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000080",
};

static void test_low_order_points(void **unused)
{
    (void)unused;
    uint8_t priv[32], pub[32], point[32], raw[RLY_SEAL_OVERHEAD + 4];
    char text[RLY_B64URL_ENCODED_LEN(RLY_SEAL_OVERHEAD + 4) + 1];

    assert_int_equal(rly_x25519_keypair(priv, pub), 0);
    memset(raw, 0, sizeof(raw));
    raw[0] = 0x01;
    for (size_t i = 0; i != sizeof(low_order_points) / sizeof(low_order_points[0]); ++i) {
        from_hex(point, sizeof(point), low_order_points[i]);
        /* as the recipient: nothing is sealed */
        char *sealed = rly_seal(point, SID, strlen(SID), (const uint8_t *)"code", 4, NULL, NULL);
        assert_null(sealed);
        /* as the ephemeral key of a sealed value: not opened */
        memcpy(raw + 1, point, 32);
        assert_unseal_fails(priv, SID, strlen(SID), text, rly_b64url_encode(text, raw, sizeof(raw)));
    }
    /* a regular key seals */
    char *sealed = rly_seal(pub, SID, strlen(SID), (const uint8_t *)"code", 4, NULL, NULL);
    assert_non_null(sealed);
    free(sealed);
}

static void test_aes256gcm(void **unused)
{
    (void)unused;
    uint8_t key[32] = {0}, nonce[12] = {0}, pt[16] = {0}, ct[32], expect[32], back[16];

    /* "The Galois/Counter Mode of Operation", test cases 13 and 14 */
    from_hex(expect, 16, "530f8afbc74536b9a963b4f1c4cb738b");
    assert_int_equal(rly_aes256gcm_encrypt(key, nonce, NULL, 0, NULL, 0, ct), 0);
    assert_memory_equal(ct, expect, 16);
    assert_int_equal(rly_aes256gcm_decrypt(key, nonce, NULL, 0, ct, 16, back), 0);

    from_hex(expect, 32, "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919");
    assert_int_equal(rly_aes256gcm_encrypt(key, nonce, NULL, 0, pt, 16, ct), 0);
    assert_memory_equal(ct, expect, 32);
    memset(back, 0xaa, sizeof(back));
    assert_int_equal(rly_aes256gcm_decrypt(key, nonce, NULL, 0, ct, 32, back), 0);
    assert_memory_equal(back, pt, 16);

    /* a bad tag fails and leaves no unauthenticated plaintext behind */
    const char *secret = "secret plaintext";
    pattern(key, sizeof(key), 0x90);
    assert_int_equal(rly_aes256gcm_encrypt(key, nonce, "aad", 3, (const uint8_t *)secret, 16, ct), 0);
    assert_int_equal(rly_aes256gcm_decrypt(key, nonce, "aad", 3, ct, 32, back), 0);
    assert_memory_equal(back, secret, 16);
    ct[31] ^= 0x80;
    memset(back, 0xaa, sizeof(back));
    assert_int_equal(rly_aes256gcm_decrypt(key, nonce, "aad", 3, ct, 32, back), -1);
    for (size_t i = 0; i != sizeof(back); ++i)
        assert_int_not_equal(back[i], (uint8_t)secret[i]);
    ct[31] ^= 0x80;
    /* the AAD is authenticated */
    assert_int_equal(rly_aes256gcm_decrypt(key, nonce, "aaa", 3, ct, 32, back), -1);
    assert_int_equal(rly_aes256gcm_decrypt(key, nonce, NULL, 0, ct, 32, back), -1);
    /* shorter than a tag */
    assert_int_equal(rly_aes256gcm_decrypt(key, nonce, "aad", 3, ct + 17, 15, back), -1);
    assert_int_equal(rly_aes256gcm_decrypt(key, nonce, "aad", 3, ct, 32, back), 0);
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
    uint8_t rpriv[32], rpub[32], epriv[32], epub[32], shared[32], key[32], nonce[12], got[32], salt[64];
    const char *aad = member(v, "aad"), *pt = member(v, "plaintext"), *sealed = member(v, "sealed");
    size_t ptlen = 0;

    from_hex(rpriv, 32, member(v, "recipient_private"));
    from_hex(rpub, 32, member(v, "recipient_public"));
    from_hex(epriv, 32, member(v, "ephemeral_private"));
    from_hex(epub, 32, member(v, "ephemeral_public"));
    from_hex(shared, 32, member(v, "shared_secret"));
    from_hex(key, 32, member(v, "key"));
    from_hex(nonce, 12, member(v, "nonce"));

    /* the intermediate values, computed without seal.c */
    ref_public(rpriv, got);
    assert_memory_equal(got, rpub, 32);
    ref_public(epriv, got);
    assert_memory_equal(got, epub, 32);
    ref_x25519(epriv, rpub, got);
    assert_memory_equal(got, shared, 32);
    ref_x25519(rpriv, epub, got);
    assert_memory_equal(got, shared, 32);
    memcpy(salt, epub, 32);
    memcpy(salt + 32, rpub, 32);
    ref_hkdf(shared, salt, got);
    assert_memory_equal(got, key, 32);

    /* sealing the fixed inputs gives exactly the vector */
    char *mine = rly_seal(rpub, aad, strlen(aad), (const uint8_t *)pt, strlen(pt), epriv, nonce);
    assert_non_null(mine);
    assert_string_equal(mine, sealed);
    free(mine);

    /* and it opens to the plaintext */
    uint8_t *back = rly_unseal(rpriv, aad, strlen(aad), sealed, strlen(sealed), &ptlen);
    assert_non_null(back);
    assert_int_equal(ptlen, strlen(pt));
    assert_memory_equal(back, pt, ptlen);
    free(back);

    /* the ciphertext opens with the vector's key through the plain AES-256-GCM helper too */
    size_t rawcap = RLY_B64URL_DECODED_MAX(strlen(sealed));
    uint8_t *raw = malloc(rawcap), *out = malloc(rawcap);
    assert_non_null(raw);
    assert_non_null(out);
    ssize_t rawlen = rly_b64url_decode(raw, rawcap, sealed, strlen(sealed));
    assert_int_equal(rawlen, RLY_SEAL_OVERHEAD + strlen(pt));
    assert_memory_equal(raw + 33, nonce, 12);
    assert_int_equal(rly_aes256gcm_decrypt(key, nonce, aad, strlen(aad), raw + 45, (size_t)rawlen - 45, out), 0);
    assert_memory_equal(out, pt, strlen(pt));
    free(out);
    free(raw);
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
        uint8_t rpriv[32], rpub[32], got[32];
        const char *aad = member(v, "aad"), *sealed = member(v, "sealed");

        assert_true(strlen(member(v, "description")) > 0);
        assert_true(json_object_object_get_ex(v, "valid", &flag) && json_object_is_type(flag, json_type_boolean));
        from_hex(rpriv, 32, member(v, "recipient_private"));
        from_hex(rpub, 32, member(v, "recipient_public"));
        ref_public(rpriv, got);
        assert_memory_equal(got, rpub, 32);
        if (json_object_get_boolean(flag)) {
            const char *pt = member(v, "plaintext");
            check_valid_vector(v);
            ++valid;
            authorized |= strstr(pt, "\"status\":\"authorized\"") != NULL;
            denied |= strstr(pt, "\"status\":\"denied\"") != NULL;
            if (strlen(pt) > longest)
                longest = strlen(pt);
        } else {
            assert_unseal_fails(rpriv, aad, strlen(aad), sealed, strlen(sealed));
            ++invalid;
        }
    }
    json_object_put(doc);
    assert_true(valid >= 3);
    assert_true(invalid >= 2);
    assert_true(authorized && denied);
    assert_true(longest >= 4096);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keypair),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_fixed_inputs_are_deterministic),
        cmocka_unit_test(test_tamper),
        cmocka_unit_test(test_wrong_aad_and_key),
        cmocka_unit_test(test_truncated_and_malformed),
        cmocka_unit_test(test_low_order_points),
        cmocka_unit_test(test_aes256gcm),
        cmocka_unit_test(test_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
