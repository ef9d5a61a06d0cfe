/* bind.c: the 1.1 browser cookie (random part and a MAC), the CSRF token (HMAC of session and cookie), start tokens */
#include "bind.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "b64url.h"
#include "ids.h"
#include "tcache.h"

#define COOKIE_LABEL "authrelay cookie v1"
#define COOKIE_HASH_LABEL "authrelay cookie hash v1" /* hashed with its NUL */
#define CSRF_LABEL "authrelay csrf v1"
#define START_HASH_LABEL "authrelay start token v1" /* hashed with its NUL */
#define COOKIE_RANDOM 16
#define COOKIE_MAC 16
#define COOKIE_RAW (COOKIE_RANDOM + COOKIE_MAC)
#define CSRF_RAW 32
#define START_RAW 32

/* HMAC-SHA256 under key of the parts a (alen) || b (blen) || c (clen) into mac (32 bytes), on the thread's context for
 * that key (no fetch, no allocation per call); 0 / -1 */
static int hmac3(const uint8_t key[32], const void *a, size_t alen, const void *b, size_t blen, const void *c, size_t clen,
                 uint8_t mac[32])
{
    uint8_t full[EVP_MAX_MD_SIZE];
    size_t fulllen = 0;
    EVP_MAC_CTX *ctx;
    int ret = -1;

    if ((ctx = rly_tc_hmac_sha256(key)) == NULL || EVP_MAC_update(ctx, a, alen) != 1 ||
        (blen != 0 && EVP_MAC_update(ctx, b, blen) != 1) || (clen != 0 && EVP_MAC_update(ctx, c, clen) != 1) ||
        EVP_MAC_final(ctx, full, &fulllen, sizeof(full)) != 1 || fulllen != 32)
        goto Exit;
    memcpy(mac, full, 32);
    ret = 0;
Exit:
    OPENSSL_cleanse(full, sizeof(full));
    return ret;
}

/* SHA-256(label with its NUL || text); 0 / -1 */
static int labelled_hash(const char *label, size_t labellen, const char *text, size_t len, uint8_t hash[32])
{
    return rly_sha256_parts(label, labellen + 1, text, len, hash);
}

/* the hash of a presented text: SHA-256 fails only when OpenSSL cannot allocate, and then a random hash, which matches no
 * stored one, makes the caller refuse what it was checking */
static void presented_hash(const char *label, size_t labellen, const char *text, size_t len, uint8_t hash[32])
{
    if (labelled_hash(label, labellen, text, len, hash) != 0 && rly_random(hash, 32) != 0)
        abort();
}

/* the MAC part of a cookie whose random part is r */
static int cookie_mac(const uint8_t key[32], const uint8_t r[COOKIE_RANDOM], uint8_t mac[COOKIE_MAC])
{
    uint8_t full[32];
    int ret = hmac3(key, COOKIE_LABEL, sizeof(COOKIE_LABEL) - 1, r, COOKIE_RANDOM, NULL, 0, full);

    if (ret == 0)
        memcpy(mac, full, COOKIE_MAC);
    OPENSSL_cleanse(full, sizeof(full));
    return ret;
}

int rly_cookie_new(const rly_keyring_t *kr, char out[RLY_COOKIE_LEN + 1])
{
    uint8_t raw[COOKIE_RAW];
    int ret = -1;

    out[0] = '\0';
    if (kr->count == 0 || rly_tc_random(raw, COOKIE_RANDOM) != 0 ||
        cookie_mac(kr->keys[0].cookie_key, raw, raw + COOKIE_RANDOM) != 0)
        goto Exit;
    rly_b64url_encode(out, raw, sizeof(raw));
    ret = 0;
Exit:
    OPENSSL_cleanse(raw, sizeof(raw));
    return ret;
}

int rly_cookie_verify(const rly_keyring_t *kr, const char *cookie, size_t len)
{
    uint8_t raw[COOKIE_RAW], mac[COOKIE_MAC];
    int match = 0;

    if (len != RLY_COOKIE_LEN || rly_b64url_decode(raw, sizeof(raw), cookie, len) != COOKIE_RAW)
        return -1;
    /* every key, without stopping at the first match */
    for (size_t i = 0; i != kr->count && i != RLY_KEYS_MAX; ++i) {
        if (cookie_mac(kr->keys[i].cookie_key, raw, mac) != 0)
            continue;
        match |= CRYPTO_memcmp(mac, raw + COOKIE_RANDOM, COOKIE_MAC) == 0;
    }
    OPENSSL_cleanse(mac, sizeof(mac));
    OPENSSL_cleanse(raw, sizeof(raw));
    return match ? 0 : -1;
}

void rly_cookie_hash(const char *cookie, size_t len, uint8_t hash[32])
{
    presented_hash(COOKIE_HASH_LABEL, sizeof(COOKIE_HASH_LABEL) - 1, cookie, len, hash);
}

static int csrf_mac(const uint8_t key[32], const uint8_t sid[RLY_SESSION_ID_BYTES], const char *cookie, size_t cookie_len,
                    uint8_t mac[CSRF_RAW])
{
    return hmac3(key, CSRF_LABEL, sizeof(CSRF_LABEL) - 1, sid, RLY_SESSION_ID_BYTES, cookie, cookie_len, mac);
}

int rly_csrf_new(const rly_keyring_t *kr, const uint8_t sid[RLY_SESSION_ID_BYTES], const char *cookie, size_t cookie_len,
                 char out[RLY_CSRF_LEN + 1])
{
    uint8_t mac[CSRF_RAW];
    int ret = -1;

    out[0] = '\0';
    if (kr->count == 0 || csrf_mac(kr->keys[0].csrf_key, sid, cookie, cookie_len, mac) != 0)
        goto Exit;
    rly_b64url_encode(out, mac, sizeof(mac));
    ret = 0;
Exit:
    OPENSSL_cleanse(mac, sizeof(mac));
    return ret;
}

int rly_csrf_verify(const rly_keyring_t *kr, const uint8_t sid[RLY_SESSION_ID_BYTES], const char *cookie, size_t cookie_len,
                    const char *csrf, size_t len)
{
    uint8_t raw[CSRF_RAW], mac[CSRF_RAW];
    int match = 0;

    if (len != RLY_CSRF_LEN || rly_b64url_decode(raw, sizeof(raw), csrf, len) != CSRF_RAW)
        return -1;
    for (size_t i = 0; i != kr->count && i != RLY_KEYS_MAX; ++i) {
        if (csrf_mac(kr->keys[i].csrf_key, sid, cookie, cookie_len, mac) != 0)
            continue;
        match |= CRYPTO_memcmp(mac, raw, CSRF_RAW) == 0;
    }
    OPENSSL_cleanse(mac, sizeof(mac));
    OPENSSL_cleanse(raw, sizeof(raw));
    return match ? 0 : -1;
}

int rly_start_token_new(char text[RLY_START_TOKEN_LEN + 1], uint8_t hash[32])
{
    uint8_t raw[START_RAW];
    int ret = -1;

    text[0] = '\0';
    if (rly_tc_random(raw, sizeof(raw)) != 0)
        goto Exit;
    rly_b64url_encode(text, raw, sizeof(raw));
    if (labelled_hash(START_HASH_LABEL, sizeof(START_HASH_LABEL) - 1, text, RLY_START_TOKEN_LEN, hash) != 0) {
        OPENSSL_cleanse(text, RLY_START_TOKEN_LEN + 1);
        goto Exit;
    }
    ret = 0;
Exit:
    OPENSSL_cleanse(raw, sizeof(raw));
    return ret;
}

void rly_start_token_hash(const char *text, size_t len, uint8_t hash[32])
{
    presented_hash(START_HASH_LABEL, sizeof(START_HASH_LABEL) - 1, text, len, hash);
}
