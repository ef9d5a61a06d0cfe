/* ids.h: random identifiers from the CSPRNG and poll-token hashing */
#ifndef RLY_IDS_H
#define RLY_IDS_H

#include "rly.h"

/* fills buf with n bytes from OpenSSL's CSPRNG; returns 0, or -1 if the CSPRNG failed */
int rly_random(void *buf, size_t n);
/* a new session: raw id and its base64url text (NUL-terminated, RLY_SESSION_ID_LEN chars); 0 / -1 */
int rly_session_new(uint8_t raw[RLY_SESSION_ID_BYTES], char text[RLY_SESSION_ID_LEN + 1]);
/* parses a session id text (exactly 22 base64url chars, canonical); 0 / -1 */
int rly_session_parse(const char *text, size_t len, uint8_t raw[RLY_SESSION_ID_BYTES]);
/*
 * The session's name in the store: SHA-256("authrelay store key v1" NUL || session id), first 16 bytes. The store (Redis
 * keys, pub/sub messages, the memory table) never sees a session id, only this; a session id is 128 random bits, so the
 * name cannot be turned back into one, and it needs no key (stable across key rotations and replicas). 0 / -1.
 */
int rly_store_key(const uint8_t sid[RLY_SESSION_ID_BYTES], uint8_t key[RLY_SESSION_ID_BYTES]);
/* a new poll token as base64url text (NUL-terminated) and its SHA-256 hash; 0 / -1 */
int rly_poll_token_new(char text[RLY_POLL_TOKEN_LEN + 1], uint8_t hash[32]);
/* SHA-256 of a presented token text (any length); the store keeps only this */
void rly_poll_token_hash(const char *text, size_t len, uint8_t hash[32]);
/* SHA-256 of a then b (blen may be 0); 0 / -1 (OpenSSL could not allocate) */
int rly_sha256_parts(const void *a, size_t alen, const void *b, size_t blen, uint8_t hash[32]);
/* constant-time comparison of two 32-byte hashes: 1 equal, 0 not */
int rly_hash_equal(const uint8_t a[32], const uint8_t b[32]);

#endif
