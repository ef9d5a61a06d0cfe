/* tcache.c: per-thread OpenSSL contexts (AES-256-GCM, HMAC-SHA256 per key) and a per-thread pool of random bytes */
#include "tcache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "keys.h"

/* per kind: the key file's keys, and room for the next file's after a reload; HMAC keys are three a key-file key (state
 * MAC, cookie, CSRF token) */
#define GCM_SLOTS (2 * RLY_KEYS_MAX)
#define HMAC_SLOTS (3 * 2 * RLY_KEYS_MAX)
#define POOL_BYTES 384

typedef struct st_hmac_slot_t {
    uint8_t key[32];
    EVP_MAC_CTX *ctx;
} hmac_slot_t;

typedef struct st_gcm_slot_t {
    uint8_t key[32];
    EVP_CIPHER_CTX *ctx[2]; /* decrypt, encrypt; keyed */
} gcm_slot_t;

typedef struct st_tcache_t {
    gcm_slot_t gcm[GCM_SLOTS];
    size_t gcm_next;
    hmac_slot_t hmac[HMAC_SLOTS];
    size_t hmac_next; /* the slot replaced next when a key is new */
    uint8_t pool[POOL_BYTES];
    size_t pool_used; /* bytes of pool already handed out (POOL_BYTES: empty) */
} tcache_t;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t tkey;
static int tkey_ok;
static EVP_CIPHER *gcm_cipher;
static EVP_MAC *hmac_mac;

static void tcache_free(void *p)
{
    tcache_t *c = p;
    for (size_t i = 0; i != GCM_SLOTS; ++i) {
        EVP_CIPHER_CTX_free(c->gcm[i].ctx[0]);
        EVP_CIPHER_CTX_free(c->gcm[i].ctx[1]);
    }
    for (size_t i = 0; i != HMAC_SLOTS; ++i)
        EVP_MAC_CTX_free(c->hmac[i].ctx);
    OPENSSL_cleanse(c, sizeof(*c));
    free(c);
}

static void init_once(void)
{
    tkey_ok = pthread_key_create(&tkey, tcache_free) == 0;
    gcm_cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    hmac_mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

static tcache_t *tcache(void)
{
    tcache_t *c;
    pthread_once(&once, init_once);
    if (!tkey_ok)
        return NULL;
    if ((c = pthread_getspecific(tkey)) != NULL)
        return c;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return NULL;
    c->pool_used = POOL_BYTES;
    if (pthread_setspecific(tkey, c) != 0) {
        free(c);
        return NULL;
    }
    return c;
}

EVP_CIPHER_CTX *rly_tc_gcm(const uint8_t key[32], int enc)
{
    tcache_t *c = tcache();
    gcm_slot_t *s = NULL;
    enc = enc != 0;
    if (c == NULL || gcm_cipher == NULL)
        return NULL;
    for (size_t i = 0; i != GCM_SLOTS && s == NULL; ++i)
        if (c->gcm[i].ctx[0] != NULL && CRYPTO_memcmp(c->gcm[i].key, key, 32) == 0)
            s = &c->gcm[i];
    if (s == NULL) {
        /* a key not seen on this thread: key both directions once (the AES key schedule and GCM's table) */
        s = &c->gcm[c->gcm_next];
        c->gcm_next = (c->gcm_next + 1) % GCM_SLOTS;
        for (int e = 0; e != 2; ++e) {
            EVP_CIPHER_CTX_free(s->ctx[e]);
            s->ctx[e] = EVP_CIPHER_CTX_new();
        }
        OPENSSL_cleanse(s->key, sizeof(s->key));
        for (int e = 0; e != 2; ++e) {
            if (s->ctx[e] == NULL || EVP_CipherInit_ex(s->ctx[e], gcm_cipher, NULL, NULL, NULL, e) != 1 ||
                EVP_CIPHER_CTX_ctrl(s->ctx[e], EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) != 1 ||
                EVP_CipherInit_ex(s->ctx[e], NULL, NULL, key, NULL, e) != 1) {
                EVP_CIPHER_CTX_free(s->ctx[0]);
                EVP_CIPHER_CTX_free(s->ctx[1]);
                s->ctx[0] = s->ctx[1] = NULL;
                return NULL;
            }
        }
        memcpy(s->key, key, 32);
    }
    return s->ctx[enc];
}

EVP_MAC_CTX *rly_tc_hmac_sha256(const uint8_t key[32])
{
    tcache_t *c = tcache();
    if (c == NULL || hmac_mac == NULL)
        return NULL;
    for (size_t i = 0; i != HMAC_SLOTS; ++i) {
        hmac_slot_t *s = &c->hmac[i];
        if (s->ctx != NULL && CRYPTO_memcmp(s->key, key, 32) == 0)
            return EVP_MAC_init(s->ctx, NULL, 0, NULL) == 1 ? s->ctx : NULL; /* same key: restart, key schedule kept */
    }
    hmac_slot_t *s = &c->hmac[c->hmac_next];
    c->hmac_next = (c->hmac_next + 1) % HMAC_SLOTS;
    EVP_MAC_CTX_free(s->ctx);
    OPENSSL_cleanse(s->key, sizeof(s->key));
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    if ((s->ctx = EVP_MAC_CTX_new(hmac_mac)) == NULL || EVP_MAC_init(s->ctx, key, 32, params) != 1) {
        EVP_MAC_CTX_free(s->ctx);
        s->ctx = NULL;
        return NULL;
    }
    memcpy(s->key, key, 32);
    return s->ctx;
}

int rly_tc_random(void *out, size_t n)
{
    tcache_t *c = tcache();
    if (n > 64)
        return -1;
    if (c == NULL)
        return RAND_bytes(out, (int)n) == 1 ? 0 : -1;
    if (POOL_BYTES - c->pool_used < n) {
        if (RAND_bytes(c->pool, POOL_BYTES) != 1)
            return -1;
        c->pool_used = 0;
    }
    memcpy(out, c->pool + c->pool_used, n);
    OPENSSL_cleanse(c->pool + c->pool_used, n); /* handed out once, never again */
    c->pool_used += n;
    return 0;
}
