/* seal.h: sealing a result to an instance's X25519 key (protocol.md, "Sealing"), and AES-256-GCM helpers */
#ifndef RLY_SEAL_H
#define RLY_SEAL_H

#include "rly.h"

#define RLY_SEAL_ALGORITHM "X25519-HKDF-SHA256-A256GCM"
#define RLY_SEAL_OVERHEAD (1 + 32 + 12 + 16)

/* generates an X25519 key pair; 0 / -1 */
int rly_x25519_keypair(uint8_t priv[32], uint8_t pub[32]);

/* Seals pt to recipient R with session id text as AAD: returns a malloc'ed NUL-terminated base64url string (caller
 * frees), or NULL on failure. eph_priv and nonce NULL: fresh random (production); non-NULL: fixed (test vectors). */
char *rly_seal(const uint8_t recipient[32], const char *aad, size_t aadlen, const uint8_t *pt, size_t ptlen,
               const uint8_t *eph_priv, const uint8_t *nonce);
/* Opens a sealed string with the recipient's private key. Returns a malloc'ed plaintext (NUL-terminated for
 * convenience, *ptlen excludes the NUL) or NULL if malformed or the tag fails. Caller frees. */
uint8_t *rly_unseal(const uint8_t priv[32], const char *aad, size_t aadlen, const char *sealed, size_t sealedlen, size_t *ptlen);

/* HKDF-SHA256 (RFC 5869) of ikm with salt (saltlen 0: none) and a text info into outlen bytes; 0 / -1 */
int rly_hkdf_sha256(uint8_t *out, size_t outlen, const uint8_t *ikm, size_t ikmlen, const uint8_t *salt, size_t saltlen,
                    const char *info);

/* AES-256-GCM with a 16-byte tag appended to ct; 0 / -1 (decrypt: -1 also on a bad tag) */
int rly_aes256gcm_encrypt(const uint8_t key[32], const uint8_t nonce[12], const void *aad, size_t aadlen, const uint8_t *pt,
                          size_t len, uint8_t *ct_tag);
int rly_aes256gcm_decrypt(const uint8_t key[32], const uint8_t nonce[12], const void *aad, size_t aadlen, const uint8_t *ct_tag,
                          size_t len_with_tag, uint8_t *pt);

#endif
