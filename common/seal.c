/* seal.c: X25519 + HKDF-SHA256 + AES-256-GCM sealing of results to an instance's key, and the AES-256-GCM helpers */
#include "seal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "b64url.h"
#include "tcache.h"

#define SEAL_VERSION 0x01
#define SEAL_INFO "authrelay seal v1"
#define NONCE_LEN 12
#define TAG_LEN 16
/* a sealed result holds a code of at most RLY_CODE_MAX plus a few short members; this bound only stops abuse */
#define SEAL_PLAINTEXT_MAX (1024 * 1024)

int rly_hkdf_sha256(uint8_t *out, size_t outlen, const uint8_t *ikm, size_t ikmlen, const uint8_t *salt, size_t saltlen,
                    const char *info)
{
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *ctx = NULL;
    OSSL_PARAM params[5], *p = params;
    int ret = -1;

    if ((kdf = EVP_KDF_fetch(NULL, "HKDF", NULL)) == NULL || (ctx = EVP_KDF_CTX_new(kdf)) == NULL)
        goto Exit;
    *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikmlen);
    if (saltlen != 0)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, saltlen);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info));
    *p = OSSL_PARAM_construct_end();
    if (EVP_KDF_derive(ctx, out, outlen, params) != 1)
        goto Exit;
    ret = 0;
Exit:
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return ret;
}

/* the public key of an X25519 private key */
static int x25519_public(const uint8_t priv[32], uint8_t pub[32])
{
    EVP_PKEY *pkey = NULL;
    size_t len = 32;
    int ret = -1;

    if ((pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, 32)) == NULL)
        goto Exit;
    if (EVP_PKEY_get_raw_public_key(pkey, pub, &len) != 1 || len != 32)
        goto Exit;
    ret = 0;
Exit:
    EVP_PKEY_free(pkey);
    return ret;
}

/* X25519(priv, peer) into shared; -1 on failure or an all-zero result (peer is a low-order point) */
static int x25519(const uint8_t priv[32], const uint8_t peer[32], uint8_t shared[32])
{
    static const uint8_t zeros[32];
    EVP_PKEY *pkey = NULL, *peerkey = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    size_t len = 32;
    int ret = -1;

    if ((pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, 32)) == NULL ||
        (peerkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, 32)) == NULL ||
        (ctx = EVP_PKEY_CTX_new(pkey, NULL)) == NULL)
        goto Exit;
    if (EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer(ctx, peerkey) != 1 || EVP_PKEY_derive(ctx, shared, &len) != 1 ||
        len != 32)
        goto Exit;
    if (CRYPTO_memcmp(shared, zeros, 32) == 0)
        goto Exit;
    ret = 0;
Exit:
    if (ret != 0)
        OPENSSL_cleanse(shared, 32);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(peerkey);
    EVP_PKEY_free(pkey);
    return ret;
}

/* the AES-256-GCM key of a sealed message: HKDF-SHA256(ikm, salt = eph_pub || recipient, info = SEAL_INFO) */
static int seal_key(const uint8_t priv[32], const uint8_t peer[32], const uint8_t eph_pub[32], const uint8_t recipient[32],
                    uint8_t key[32])
{
    uint8_t ikm[32], salt[64];
    int ret = -1;

    if (x25519(priv, peer, ikm) != 0)
        goto Exit;
    memcpy(salt, eph_pub, 32);
    memcpy(salt + 32, recipient, 32);
    if (rly_hkdf_sha256(key, 32, ikm, sizeof(ikm), salt, sizeof(salt), SEAL_INFO) != 0)
        goto Exit;
    ret = 0;
Exit:
    OPENSSL_cleanse(ikm, sizeof(ikm));
    return ret;
}

int rly_x25519_keypair(uint8_t priv[32], uint8_t pub[32])
{
    EVP_PKEY *pkey = NULL;
    size_t privlen = 32, publen = 32;
    int ret = -1;

    if ((pkey = EVP_PKEY_Q_keygen(NULL, NULL, "X25519")) == NULL)
        goto Exit;
    if (EVP_PKEY_get_raw_private_key(pkey, priv, &privlen) != 1 || privlen != 32 ||
        EVP_PKEY_get_raw_public_key(pkey, pub, &publen) != 1 || publen != 32)
        goto Exit;
    ret = 0;
Exit:
    if (ret != 0)
        OPENSSL_cleanse(priv, 32);
    EVP_PKEY_free(pkey);
    return ret;
}

char *rly_seal(const uint8_t recipient[32], const char *aad, size_t aadlen, const uint8_t *pt, size_t ptlen,
               const uint8_t *eph_priv, const uint8_t *nonce)
{
    uint8_t priv[32], pub[32], key[32], *raw = NULL;
    size_t rawlen = RLY_SEAL_OVERHEAD + ptlen;
    char *out = NULL;

    if (ptlen > SEAL_PLAINTEXT_MAX)
        goto Exit;
    if (eph_priv != NULL) {
        memcpy(priv, eph_priv, 32);
        if (x25519_public(priv, pub) != 0)
            goto Exit;
    } else if (rly_x25519_keypair(priv, pub) != 0) {
        goto Exit;
    }
    if (seal_key(priv, recipient, pub, recipient, key) != 0)
        goto Exit;
    if ((raw = malloc(rawlen)) == NULL)
        goto Exit;
    raw[0] = SEAL_VERSION;
    memcpy(raw + 1, pub, 32);
    if (nonce != NULL)
        memcpy(raw + 33, nonce, NONCE_LEN);
    else if (RAND_bytes(raw + 33, NONCE_LEN) != 1)
        goto Exit;
    if (rly_aes256gcm_encrypt(key, raw + 33, aad, aadlen, pt, ptlen, raw + 1 + 32 + NONCE_LEN) != 0)
        goto Exit;
    if ((out = malloc(RLY_B64URL_ENCODED_LEN(rawlen) + 1)) == NULL)
        goto Exit;
    rly_b64url_encode(out, raw, rawlen);
Exit:
    OPENSSL_cleanse(priv, sizeof(priv));
    OPENSSL_cleanse(key, sizeof(key));
    free(raw);
    return out;
}

uint8_t *rly_unseal(const uint8_t priv[32], const char *aad, size_t aadlen, const char *sealed, size_t sealedlen, size_t *ptlen)
{
    uint8_t recipient[32], key[32], *raw = NULL, *pt = NULL;
    ssize_t rawlen;
    size_t len;

    if (sealedlen > RLY_B64URL_ENCODED_LEN(RLY_SEAL_OVERHEAD + SEAL_PLAINTEXT_MAX))
        goto Error;
    if ((raw = malloc(RLY_B64URL_DECODED_MAX(sealedlen))) == NULL)
        goto Error;
    if ((rawlen = rly_b64url_decode(raw, RLY_B64URL_DECODED_MAX(sealedlen), sealed, sealedlen)) < RLY_SEAL_OVERHEAD ||
        raw[0] != SEAL_VERSION)
        goto Error;
    len = (size_t)rawlen - RLY_SEAL_OVERHEAD;
    if (x25519_public(priv, recipient) != 0 || seal_key(priv, raw + 1, raw + 1, recipient, key) != 0)
        goto Error;
    if ((pt = malloc(len + 1)) == NULL)
        goto Error;
    if (rly_aes256gcm_decrypt(key, raw + 33, aad, aadlen, raw + 1 + 32 + NONCE_LEN, len + TAG_LEN, pt) != 0)
        goto Error;
    pt[len] = '\0';
    *ptlen = len;
    goto Exit;
Error:
    free(pt);
    pt = NULL;
Exit:
    OPENSSL_cleanse(key, sizeof(key));
    free(raw);
    return pt;
}

int rly_aes256gcm_encrypt(const uint8_t key[32], const uint8_t nonce[12], const void *aad, size_t aadlen, const uint8_t *pt,
                          size_t len, uint8_t *ct_tag)
{
    EVP_CIPHER_CTX *ctx = NULL;
    int outl = 0, finl = 0, ret = -1;

    if (len > INT_MAX || aadlen > INT_MAX)
        goto Exit;
    /* the thread's context for this key: AES-256-GCM, 12-byte IV, key schedule done; a new nonce starts a message */
    if ((ctx = rly_tc_gcm(key, 1)) == NULL || EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, 1) != 1)
        goto Exit;
    if (aadlen != 0 && EVP_EncryptUpdate(ctx, NULL, &outl, aad, (int)aadlen) != 1)
        goto Exit;
    outl = 0;
    if (len != 0 && EVP_EncryptUpdate(ctx, ct_tag, &outl, pt, (int)len) != 1)
        goto Exit;
    if (EVP_EncryptFinal_ex(ctx, ct_tag + outl, &finl) != 1 || (size_t)outl + (size_t)finl != len)
        goto Exit;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, ct_tag + len) != 1)
        goto Exit;
    ret = 0;
Exit:
    return ret;
}

int rly_aes256gcm_decrypt(const uint8_t key[32], const uint8_t nonce[12], const void *aad, size_t aadlen, const uint8_t *ct_tag,
                          size_t len_with_tag, uint8_t *pt)
{
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t tag[TAG_LEN];
    size_t len;
    int outl = 0, finl = 0, ret = -1;

    if (len_with_tag < TAG_LEN || len_with_tag - TAG_LEN > INT_MAX || aadlen > INT_MAX)
        return -1;
    len = len_with_tag - TAG_LEN;
    memcpy(tag, ct_tag + len, TAG_LEN);
    if ((ctx = rly_tc_gcm(key, 0)) == NULL || EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, 0) != 1)
        goto Exit;
    if (aadlen != 0 && EVP_DecryptUpdate(ctx, NULL, &outl, aad, (int)aadlen) != 1)
        goto Exit;
    outl = 0;
    if (len != 0 && EVP_DecryptUpdate(ctx, pt, &outl, ct_tag, (int)len) != 1)
        goto Exit;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, tag) != 1)
        goto Exit;
    /* the tag is checked here; until then pt holds unauthenticated plaintext */
    if (EVP_DecryptFinal_ex(ctx, len != 0 ? pt + outl : tag, &finl) != 1 || (size_t)outl + (size_t)finl != len)
        goto Exit;
    ret = 0;
Exit:
    if (ret != 0 && len != 0)
        OPENSSL_cleanse(pt, len);
    return ret;
}
