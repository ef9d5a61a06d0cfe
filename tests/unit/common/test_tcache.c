/* test_tcache.c: the per-thread contexts give the same answers as OpenSSL's one-shot calls, per key, per thread */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <openssl/hmac.h>
#include "keys.h"
#include "seal.h"
#include "tcache.h"

static void key_of(uint8_t key[32], int n)
{
    for (int i = 0; i != 32; ++i)
        key[i] = (uint8_t)(n * 31 + i);
}

/* the cached context's MAC of msg under key */
static void cached_mac(const uint8_t key[32], const char *msg, uint8_t out[32])
{
    EVP_MAC_CTX *ctx = rly_tc_hmac_sha256(key);
    size_t len = 0;
    assert_non_null(ctx);
    assert_int_equal(EVP_MAC_update(ctx, (const uint8_t *)msg, strlen(msg)), 1);
    assert_int_equal(EVP_MAC_final(ctx, out, &len, 32), 1);
    assert_int_equal(len, 32);
}

static void expect_hmac(const uint8_t key[32], const char *msg)
{
    uint8_t want[32], got[32];
    unsigned int wantlen = 0;
    assert_non_null(HMAC(EVP_sha256(), key, 32, (const uint8_t *)msg, strlen(msg), want, &wantlen));
    cached_mac(key, msg, got);
    assert_memory_equal(got, want, 32);
}

/* more keys than slots, in turns, each message twice: always the one-shot answer (never another key's, never a state
 * left over from the previous message) */
static void test_hmac_matches_one_shot(void **unused)
{
    (void)unused;
    uint8_t keys[2 * RLY_KEYS_MAX + 3][32];
    const char *msgs[] = {"", "authrelay state v1", "a longer message, longer than one SHA-256 block of sixty-four bytes: yes"};
    for (int k = 0; k != (int)(sizeof(keys) / sizeof(keys[0])); ++k)
        key_of(keys[k], k);
    for (int round = 0; round != 3; ++round)
        for (size_t k = 0; k != sizeof(keys) / sizeof(keys[0]); ++k)
            for (size_t m = 0; m != sizeof(msgs) / sizeof(msgs[0]); ++m) {
                expect_hmac(keys[k], msgs[m]);
                expect_hmac(keys[k], msgs[m]);
                expect_hmac(keys[(k + 1) % 2], msgs[m]); /* the two hottest keys between the others */
            }
}

/* encryption with the thread's contexts, decryption with them again: round trips under several keys; a wrong key, AAD
 * or tag is refused and the context still works afterwards */
static void test_gcm_round_trips(void **unused)
{
    (void)unused;
    uint8_t k1[32], k2[32], nonce[12] = {1, 2, 3}, ct[64 + 16], pt[64];
    const char *msg = "the result JSON, or a meta";
    size_t n = strlen(msg);
    key_of(k1, 1);
    key_of(k2, 2);
    for (int i = 0; i != 4; ++i) {
        const uint8_t *key = i % 2 ? k2 : k1;
        nonce[11] = (uint8_t)i;
        assert_int_equal(rly_aes256gcm_encrypt(key, nonce, "aad", 3, (const uint8_t *)msg, n, ct), 0);
        assert_int_equal(rly_aes256gcm_decrypt(i % 2 ? k1 : k2, nonce, "aad", 3, ct, n + 16, pt), -1); /* other key */
        assert_int_equal(rly_aes256gcm_decrypt(key, nonce, "aaa", 3, ct, n + 16, pt), -1);             /* other AAD */
        ct[n] ^= 1;
        assert_int_equal(rly_aes256gcm_decrypt(key, nonce, "aad", 3, ct, n + 16, pt), -1); /* bad tag */
        ct[n] ^= 1;
        memset(pt, 0, sizeof(pt));
        assert_int_equal(rly_aes256gcm_decrypt(key, nonce, "aad", 3, ct, n + 16, pt), 0);
        assert_memory_equal(pt, msg, n);
    }
    /* the same key and nonce give the same ciphertext (deterministic once both are set): nothing carried over */
    uint8_t again[64 + 16];
    nonce[11] = 9;
    assert_int_equal(rly_aes256gcm_encrypt(k1, nonce, "aad", 3, (const uint8_t *)msg, n, ct), 0);
    assert_int_equal(rly_aes256gcm_encrypt(k2, nonce, "aad", 3, (const uint8_t *)msg, n, again), 0);
    assert_memory_not_equal(ct, again, n + 16);
    assert_int_equal(rly_aes256gcm_encrypt(k1, nonce, "aad", 3, (const uint8_t *)msg, n, again), 0);
    assert_memory_equal(ct, again, n + 16);
}

/* a fresh context per message, as OpenSSL's documentation does it: the reference for the kept, keyed contexts */
static void fresh_encrypt(const uint8_t key[32], const uint8_t nonce[12], const uint8_t *aad, int aadlen, const uint8_t *pt,
                          int len, uint8_t *out)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0;
    assert_non_null(ctx);
    assert_int_equal(EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce), 1);
    if (aadlen != 0)
        assert_int_equal(EVP_EncryptUpdate(ctx, NULL, &n, aad, aadlen), 1);
    if (len != 0)
        assert_int_equal(EVP_EncryptUpdate(ctx, out, &n, pt, len), 1);
    assert_int_equal(EVP_EncryptFinal_ex(ctx, out + len, &n), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, out + len), 1);
    EVP_CIPHER_CTX_free(ctx);
}

/* many messages of every length under a few keys, in turns: the kept contexts give exactly the fresh contexts' bytes */
static void test_gcm_matches_fresh_contexts(void **unused)
{
    (void)unused;
    uint8_t keys[3][32], nonce[12], aad[40], pt[300], want[300 + 16], got[300 + 16];
    for (int k = 0; k != 3; ++k)
        key_of(keys[k], 10 + k);
    for (int i = 0; i != 300; ++i) {
        const uint8_t *key = keys[i % 3];
        int len = i, aadlen = i % 41;
        for (int j = 0; j != 12; ++j)
            nonce[j] = (uint8_t)(i * 7 + j);
        for (int j = 0; j != aadlen; ++j)
            aad[j] = (uint8_t)(i + j);
        for (int j = 0; j != len; ++j)
            pt[j] = (uint8_t)(i * 3 + j);
        fresh_encrypt(key, nonce, aad, aadlen, pt, len, want);
        assert_int_equal(rly_aes256gcm_encrypt(key, nonce, aad, (size_t)aadlen, pt, (size_t)len, got), 0);
        assert_memory_equal(got, want, (size_t)len + 16);
        uint8_t back[300];
        assert_int_equal(rly_aes256gcm_decrypt(key, nonce, aad, (size_t)aadlen, got, (size_t)len + 16, back), 0);
        if (len != 0)
            assert_memory_equal(back, pt, (size_t)len);
    }
}

/* random bytes: never the same twice, the pool refills, more than 64 at once is refused */
static void test_random(void **unused)
{
    (void)unused;
    uint8_t seen[200][12], big[65];
    for (int i = 0; i != 200; ++i) { /* 2,400 bytes: the pool refills several times */
        assert_int_equal(rly_tc_random(seen[i], 12), 0);
        for (int j = 0; j != i; ++j)
            assert_memory_not_equal(seen[i], seen[j], 12);
    }
    assert_int_equal(rly_tc_random(big, 64), 0);
    assert_int_equal(rly_tc_random(big, 65), -1);
    assert_int_equal(rly_tc_random(big, 0), 0);
}

#define THREADS 4

static void *thread_main(void *arg)
{
    int *failures = arg;
    uint8_t key[32], want[32], got[32];
    unsigned int wantlen = 0;
    for (int i = 0; i != 2000; ++i) {
        key_of(key, i % 5);
        const char *msg = i % 2 ? "odd" : "even";
        HMAC(EVP_sha256(), key, 32, (const uint8_t *)msg, strlen(msg), want, &wantlen);
        EVP_MAC_CTX *ctx = rly_tc_hmac_sha256(key);
        size_t len = 0;
        if (ctx == NULL || EVP_MAC_update(ctx, (const uint8_t *)msg, strlen(msg)) != 1 || EVP_MAC_final(ctx, got, &len, 32) != 1 ||
            memcmp(got, want, 32) != 0)
            ++*failures;
    }
    return NULL;
}

/* threads at once, each on its own contexts (freed at thread exit: the sanitizer build would report a leak) */
static void test_threads(void **unused)
{
    (void)unused;
    pthread_t t[THREADS];
    int failures[THREADS] = {0};
    for (int i = 0; i != THREADS; ++i)
        assert_int_equal(pthread_create(&t[i], NULL, thread_main, &failures[i]), 0);
    for (int i = 0; i != THREADS; ++i) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(failures[i], 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hmac_matches_one_shot),
        cmocka_unit_test(test_gcm_round_trips),
        cmocka_unit_test(test_gcm_matches_fresh_contexts),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
