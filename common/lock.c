/* lock.c: AES-256-GCM under a one-time release key, bound to the session id: the locked result of a 1.1 flow */
#include "lock.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "b64url.h"
#include "tcache.h"

#define LOCK_VERSION 0x01
#define KEY_LEN 32
#define NONCE_LEN 12
#define TAG_LEN 16
#define LOCKED_MAX RLY_B64URL_ENCODED_LEN(RLY_LOCK_OVERHEAD + RLY_LOCK_PLAINTEXT_MAX)

/*
 * A release key is used once and must not outlive the call: not the per-thread contexts of tcache.h, which keep a key
 * (and would push the data key's context out of the thread's few slots on every callback), but a context of its own,
 * freed (and so wiped by OpenSSL) before returning. Only the cipher is looked up once.
 */
static EVP_CIPHER *gcm_fetched;
static pthread_once_t gcm_once = PTHREAD_ONCE_INIT;

static void gcm_fetch(void)
{
    gcm_fetched = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

/* AES-256-GCM of in (len bytes) into out, with the session id text as AAD; enc 1: out gets ct || tag (len + TAG_LEN
 * bytes); enc 0: in is ct || tag, len counts the tag, out gets len - TAG_LEN bytes (wiped on failure). 0 / -1 */
static int gcm(int enc, const uint8_t key[KEY_LEN], const uint8_t nonce[NONCE_LEN], const char *sid_text, const uint8_t *in,
               size_t len, uint8_t *out)
{
    EVP_CIPHER_CTX *ctx = NULL;
    size_t ptlen = enc ? len : len - TAG_LEN;
    uint8_t tag[TAG_LEN];
    int outl = 0, finl = 0, ret = -1;

    if ((!enc && len < TAG_LEN) || ptlen > INT_MAX)
        return -1;
    pthread_once(&gcm_once, gcm_fetch);
    if (gcm_fetched == NULL || (ctx = EVP_CIPHER_CTX_new()) == NULL ||
        EVP_CipherInit_ex(ctx, gcm_fetched, NULL, NULL, NULL, enc) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, enc) != 1 ||
        EVP_CipherUpdate(ctx, NULL, &outl, (const uint8_t *)sid_text, RLY_SESSION_ID_LEN) != 1)
        goto Exit;
    outl = 0;
    if (!enc) {
        memcpy(tag, in + ptlen, TAG_LEN);
        if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, tag) != 1)
            goto Exit;
    }
    if (ptlen != 0 && EVP_CipherUpdate(ctx, out, &outl, in, (int)ptlen) != 1)
        goto Exit;
    /* decrypting, the tag is checked here; until then out holds unauthenticated plaintext */
    if (EVP_CipherFinal_ex(ctx, ptlen != 0 ? out + outl : tag, &finl) != 1 || (size_t)outl + (size_t)finl != ptlen)
        goto Exit;
    if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, out + ptlen) != 1)
        goto Exit;
    ret = 0;
Exit:
    if (ret != 0 && !enc && ptlen != 0)
        OPENSSL_cleanse(out, ptlen);
    EVP_CIPHER_CTX_free(ctx);
    return ret;
}

/* a session id text: exactly RLY_SESSION_ID_LEN characters before the NUL */
static int is_sid_text(const char *sid_text)
{
    return sid_text != NULL && strnlen(sid_text, RLY_SESSION_ID_LEN + 1) == RLY_SESSION_ID_LEN;
}

char *rly_lock_with(const uint8_t key[32], const uint8_t nonce[12], const char *sid_text, const char *pt, size_t len,
                    size_t *outlen)
{
    size_t rawlen = RLY_LOCK_OVERHEAD + len, n;
    uint8_t *raw = NULL;
    char *out = NULL;

    if (!is_sid_text(sid_text) || len > RLY_LOCK_PLAINTEXT_MAX || (raw = malloc(rawlen)) == NULL)
        goto Exit;
    raw[0] = LOCK_VERSION;
    memcpy(raw + 1, nonce, NONCE_LEN);
    if (gcm(1, key, nonce, sid_text, (const uint8_t *)pt, len, raw + 1 + NONCE_LEN) != 0 ||
        (out = malloc(RLY_B64URL_ENCODED_LEN(rawlen) + 1)) == NULL)
        goto Exit;
    n = rly_b64url_encode(out, raw, rawlen);
    *outlen = n;
Exit:
    free(raw);
    return out;
}

char *rly_lock(const char *sid_text, const char *pt, size_t len, char release[RLY_RELEASE_KEY_LEN + 1], size_t *outlen)
{
    uint8_t fresh[KEY_LEN + NONCE_LEN]; /* the key, then the nonce */
    char *out = NULL;

    release[0] = '\0';
    if (rly_tc_random(fresh, sizeof(fresh)) != 0)
        goto Exit;
    if ((out = rly_lock_with(fresh, fresh + KEY_LEN, sid_text, pt, len, outlen)) == NULL)
        goto Exit;
    rly_b64url_encode(release, fresh, KEY_LEN);
Exit:
    OPENSSL_cleanse(fresh, sizeof(fresh));
    return out;
}

char *rly_unlock(const char *release, size_t release_len, const char *sid_text, const char *locked, size_t locked_len,
                 size_t *outlen)
{
    uint8_t key[KEY_LEN], *raw = NULL;
    size_t cap = RLY_B64URL_DECODED_MAX(locked_len), ptlen;
    char *pt = NULL;
    ssize_t rawlen;

    if (!is_sid_text(sid_text) || release_len != RLY_RELEASE_KEY_LEN ||
        rly_b64url_decode(key, sizeof(key), release, release_len) != KEY_LEN)
        goto Error;
    if (locked_len > LOCKED_MAX || (raw = malloc(cap)) == NULL)
        goto Error;
    if ((rawlen = rly_b64url_decode(raw, cap, locked, locked_len)) < RLY_LOCK_OVERHEAD || raw[0] != LOCK_VERSION)
        goto Error;
    ptlen = (size_t)rawlen - RLY_LOCK_OVERHEAD;
    if ((pt = malloc(ptlen + 1)) == NULL ||
        gcm(0, key, raw + 1, sid_text, raw + 1 + NONCE_LEN, ptlen + TAG_LEN, (uint8_t *)pt) != 0)
        goto Error;
    pt[ptlen] = '\0';
    *outlen = ptlen;
    goto Exit;
Error:
    free(pt); /* wiped by gcm on failure */
    pt = NULL;
Exit:
    OPENSSL_cleanse(key, sizeof(key));
    free(raw);
    return pt;
}
