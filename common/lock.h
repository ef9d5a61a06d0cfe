/* lock.h: the locked result of a protocol 1.1 flow (protocol.md, "The callback in 1.1"), opened only with its release key */
#ifndef RLY_LOCK_H
#define RLY_LOCK_H

#include "rly.h"

/*
 * locked = base64url(0x01 || nonce (12 bytes) || ct || tag (16 bytes)), ct||tag = AES-256-GCM(release key, nonce, pt,
 * aad = the session id text: 22 ASCII characters). The release key is 32 bytes, base64url (43 characters): the relay
 * hands it to the browser and forgets it. Texts are base64url without padding and canonical; anything else is refused.
 */
#define RLY_RELEASE_KEY_LEN 43
#define RLY_LOCK_OVERHEAD (1 + 12 + 16)
#define RLY_LOCK_PLAINTEXT_MAX (1024 * 1024) /* a result is a few KiB; this bound only stops abuse */

/* locks pt (len bytes) under a fresh random release key (written, NUL-terminated, to release) and a fresh random nonce;
 * the locked text, malloc'ed and NUL-terminated (caller frees), its length in *outlen; NULL on failure (sid_text not 22
 * characters, len over RLY_LOCK_PLAINTEXT_MAX, CSPRNG, OpenSSL or malloc failure; release is "" then). The key exists only
 * in release when this returns. */
char *rly_lock(const char *sid_text, const char *pt, size_t len, char release[RLY_RELEASE_KEY_LEN + 1], size_t *outlen);
/* the same with the key and nonce given (test vectors) */
char *rly_lock_with(const uint8_t key[32], const uint8_t nonce[12], const char *sid_text, const char *pt, size_t len,
                    size_t *outlen);
/* opens a locked text (locked_len bytes) with the release key text (release_len bytes) for the session whose id text is
 * sid_text (NUL-terminated); the plaintext malloc'ed and NUL-terminated (caller wipes and frees), its length (without the
 * NUL) in *outlen; NULL (and *outlen untouched) for a wrong key, a tampered or malformed text, another session, or when
 * out of memory */
char *rly_unlock(const char *release, size_t release_len, const char *sid_text, const char *locked, size_t locked_len,
                 size_t *outlen);

#endif
