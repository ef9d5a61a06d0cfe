/* tcache.h: per-thread OpenSSL objects kept across calls, so that the hot paths neither fetch nor allocate */
#ifndef RLY_TCACHE_H
#define RLY_TCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

/*
 * OpenSSL 3 looks an algorithm up (a property query under a lock) and allocates a context on every one-shot call
 * (HMAC(), EVP_aes_256_gcm() in an init, RAND_bytes through the DRBG). A worker thread runs the callback path tens of
 * thousands of times a second, so each thread keeps its own ready contexts instead. Everything is freed and wiped when
 * the thread exits; nothing is shared between threads. Each function returns NULL / -1 only when OpenSSL fails.
 */

/* an AES-256-GCM context keyed with key, with a 12-byte IV, for encryption (enc 1) or decryption (enc 0); the caller
 * sets only the nonce with EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, enc) before each use (the key schedule is
 * reused across calls) */
EVP_CIPHER_CTX *rly_tc_gcm(const uint8_t key[32], int enc);
/* an HMAC-SHA256 context keyed with key and ready for EVP_MAC_update (the key schedule is reused across calls) */
EVP_MAC_CTX *rly_tc_hmac_sha256(const uint8_t key[32]);
/* n (at most 64) bytes from the CSPRNG, drawn from a per-thread pool refilled by RAND_bytes; 0 / -1 */
int rly_tc_random(void *out, size_t n);

#endif
