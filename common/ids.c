/* ids.c: session ids and poll tokens from OpenSSL's CSPRNG, SHA-256 token hashes, constant-time comparison */
#include "ids.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "b64url.h"

int rly_random(void *buf, size_t n)
{
    uint8_t *p = buf;

    while (n != 0) {
        int chunk = n > INT_MAX ? INT_MAX : (int)n;
        if (RAND_bytes(p, chunk) != 1)
            return -1;
        p += chunk;
        n -= (size_t)chunk;
    }
    return 0;
}

int rly_session_new(uint8_t raw[RLY_SESSION_ID_BYTES], char text[RLY_SESSION_ID_LEN + 1])
{
    if (rly_random(raw, RLY_SESSION_ID_BYTES) != 0)
        return -1;
    rly_b64url_encode(text, raw, RLY_SESSION_ID_BYTES);
    return 0;
}

int rly_session_parse(const char *text, size_t len, uint8_t raw[RLY_SESSION_ID_BYTES])
{
    uint8_t tmp[RLY_SESSION_ID_BYTES];

    if (len != RLY_SESSION_ID_LEN || rly_b64url_decode(tmp, sizeof(tmp), text, len) != RLY_SESSION_ID_BYTES)
        return -1;
    memcpy(raw, tmp, sizeof(tmp));
    return 0;
}

/* SHA-256, fetched once: EVP_sha256() is looked up again (under a lock) on every use */
static EVP_MD *sha256_fetched;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256_fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
}

int rly_sha256_parts(const void *a, size_t alen, const void *b, size_t blen, uint8_t hash[32])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int hashlen = 0;
    int ok;

    pthread_once(&sha256_once, sha256_fetch);
    ok = ctx != NULL && EVP_DigestInit_ex(ctx, sha256_fetched != NULL ? sha256_fetched : EVP_sha256(), NULL) == 1 &&
         EVP_DigestUpdate(ctx, a, alen) == 1 && (blen == 0 || EVP_DigestUpdate(ctx, b, blen) == 1) &&
         EVP_DigestFinal_ex(ctx, hash, &hashlen) == 1 && hashlen == 32;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}

static int sha256(const void *data, size_t len, uint8_t hash[32])
{
    return rly_sha256_parts(data, len, NULL, 0, hash);
}

#define STORE_KEY_LABEL "authrelay store key v1"

int rly_store_key(const uint8_t sid[RLY_SESSION_ID_BYTES], uint8_t key[RLY_SESSION_ID_BYTES])
{
    uint8_t hash[32];
    if (rly_sha256_parts(STORE_KEY_LABEL, sizeof(STORE_KEY_LABEL), sid, RLY_SESSION_ID_BYTES, hash) != 0)
        return -1;
    memcpy(key, hash, RLY_SESSION_ID_BYTES);
    OPENSSL_cleanse(hash, sizeof(hash));
    return 0;
}

int rly_poll_token_new(char text[RLY_POLL_TOKEN_LEN + 1], uint8_t hash[32])
{
    uint8_t raw[RLY_POLL_TOKEN_BYTES];
    int ret = -1;

    if (rly_random(raw, sizeof(raw)) != 0)
        goto Exit;
    rly_b64url_encode(text, raw, sizeof(raw));
    if (sha256(text, RLY_POLL_TOKEN_LEN, hash) != 0) {
        OPENSSL_cleanse(text, RLY_POLL_TOKEN_LEN + 1);
        goto Exit;
    }
    ret = 0;
Exit:
    OPENSSL_cleanse(raw, sizeof(raw));
    return ret;
}

void rly_poll_token_hash(const char *text, size_t len, uint8_t hash[32])
{
    if (sha256(text, len, hash) == 0)
        return;
    /* SHA-256 fails only when OpenSSL cannot allocate: a random hash matches no stored one, so the caller answers 401 */
    if (rly_random(hash, 32) != 0)
        abort();
}

int rly_hash_equal(const uint8_t a[32], const uint8_t b[32])
{
    return CRYPTO_memcmp(a, b, 32) == 0;
}
