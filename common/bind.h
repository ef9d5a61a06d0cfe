/* bind.h: what binds a protocol 1.1 flow to one browser: the browser cookie, the CSRF token, the start token */
#ifndef RLY_BIND_H
#define RLY_BIND_H

#include "keys.h"

/*
 * The browser cookie (protocol.md, "The browser cookie"): 32 bytes, r (16 random bytes) followed by a MAC of r under the
 * relay's cookie key, so that any replica tells a cookie it minted from a made-up one without a store read; a session
 * stores only its hash. The CSRF token of the confirmation page is an HMAC of (session, cookie) under the CSRF key. The
 * start token is 32 random bytes; the store keeps only its hash. All texts are base64url without padding, canonical.
 * Minting uses kr->keys[0]; verifying tries every key of kr (rotation keeps flows in progress), compares in constant
 * time and never touches the store.
 */
#define RLY_COOKIE_NAME "__Host-authrelay"
#define RLY_COOKIE_LEN 43      /* base64url of 32 bytes */
#define RLY_CSRF_LEN 43        /* base64url of 32 bytes */
#define RLY_START_TOKEN_LEN 43 /* base64url of 32 random bytes */

/* a new browser cookie under kr->keys[0].cookie_key: base64url(r || HMAC-SHA256(cookie_key, "authrelay cookie v1" ||
 * r)[0..16]), r = 16 random bytes, NUL-terminated into out; 0, or -1 (empty kr, CSPRNG or MAC failure: out is "") */
int rly_cookie_new(const rly_keyring_t *kr, char out[RLY_COOKIE_LEN + 1]);
/* 0 if the text (len bytes, not NUL-terminated) is a cookie minted under any key of kr (every key tried, constant-time
 * compare), else -1 (another length, not canonical base64url, a MAC of no key in kr) */
int rly_cookie_verify(const rly_keyring_t *kr, const char *cookie, size_t len);
/* what a session stores of the cookie: SHA-256("authrelay cookie hash v1" NUL || cookie text) */
void rly_cookie_hash(const char *cookie, size_t len, uint8_t hash[32]);

/* CSRF token of (session, cookie): base64url(HMAC-SHA256(csrf_key, "authrelay csrf v1" || sid (16 bytes) || cookie
 * text)) under kr->keys[0], NUL-terminated into out; 0, or -1 (empty kr, MAC failure: out is "") */
int rly_csrf_new(const rly_keyring_t *kr, const uint8_t sid[RLY_SESSION_ID_BYTES], const char *cookie, size_t cookie_len,
                 char out[RLY_CSRF_LEN + 1]);
/* 0 if csrf (len bytes) is the token of (sid, cookie) under any key of kr (every key tried, constant-time compare), else
 * -1 */
int rly_csrf_verify(const rly_keyring_t *kr, const uint8_t sid[RLY_SESSION_ID_BYTES], const char *cookie, size_t cookie_len,
                    const char *csrf, size_t len);

/* a new start token (32 random bytes, base64url, NUL-terminated) and its hash SHA-256("authrelay start token v1" NUL ||
 * text); 0, or -1 (text is "") */
int rly_start_token_new(char text[RLY_START_TOKEN_LEN + 1], uint8_t hash[32]);
/* the hash of a presented start token text (any length), as rly_start_token_new gives it */
void rly_start_token_hash(const char *text, size_t len, uint8_t hash[32]);

#endif
