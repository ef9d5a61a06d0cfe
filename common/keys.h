/* keys.h: the relay's key file (named 32-byte keys, newest first), derived sub-keys, data-key encryption */
#ifndef RLY_KEYS_H
#define RLY_KEYS_H

#include "rly.h"

#define RLY_KEYS_MAX 3
#define RLY_KEY_ID_MAX 32

typedef struct st_rly_key_t {
    char id[RLY_KEY_ID_MAX + 1]; /* [A-Za-z0-9_-], from the file */
    uint8_t state_key[32];       /* HKDF-SHA256(master, info "authrelay state mac v1") */
    uint8_t data_key[32];        /* HKDF-SHA256(master, info "authrelay data key v1") */
    uint8_t cookie_key[32];      /* HKDF-SHA256(master, info "authrelay flow cookie v1"): the browser cookie's MAC (1.1) */
    uint8_t csrf_key[32];        /* HKDF-SHA256(master, info "authrelay csrf token v1"): the confirmation page's CSRF token */
    uint8_t ticket_key[32];      /* HKDF-SHA256(master, info "authrelay tls ticket v1"): TLS session ticket keys (rly_ticket_key) */
} rly_key_t;

/* keys[0] signs states, cookies and CSRF tokens and encrypts; every key verifies and decrypts. One derived key per
 * purpose, never one key for two. Plain data: copy freely. */
typedef struct st_rly_keyring_t {
    size_t count;
    rly_key_t keys[RLY_KEYS_MAX];
} rly_keyring_t;

/*
 * Key file format (JSON, mode 0600):
 *   {"version": 1, "keys": [{"id": "k20261129T053800", "key": "<base64url of 32 bytes>"}, ...]}
 * 1 to RLY_KEYS_MAX keys, ids unique.
 * Loads a key file. Its owner and mode are checked on the opened file (PostgreSQL's rule for ssl_key_file): owned by the
 * process's user with no group or other permission (0600, 0400), or owned by root with at most group read (0640, 0440);
 * anything else, and any permission for others, is refused. On failure returns -1 and writes a message (never key
 * material) to err.
 */
int rly_keyring_load(rly_keyring_t *kr, const char *path, char *err, size_t errlen);
/* one fresh random key, id "ephemeral" (for --dev); 0 / -1 */
int rly_keyring_ephemeral(rly_keyring_t *kr);
/* derives a key entry from 32 bytes of master key (used by load, ephemeral and tests); 0 / -1 (HKDF failed: *key wiped) */
int rly_key_derive(rly_key_t *key, const char *id, const uint8_t master[32]);
/*
 * keygen: rotate == 0 writes a new file with one key and refuses to overwrite an existing file;
 * rotate != 0 reads the existing file (whatever its mode), puts a new key first and keeps at most RLY_KEYS_MAX keys, replacing the
 * file atomically (temporary file + rename, mode 0600). 0 / -1 with a message in err.
 */
int rly_keygen(const char *path, int rotate, char *err, size_t errlen);

/*
 * TLS session tickets: every replica with the same key file derives the same ticket key for a period of
 * RLY_TICKET_PERIOD seconds (period = unix time / RLY_TICKET_PERIOD), so a ticket from one replica resumes on another.
 * rly_ticket_key: 80 bytes of HKDF-SHA256(key->ticket_key, info "authrelay tls ticket v1 period <decimal period>"),
 * split into the name a ticket carries in clear (16 bytes), its AES-256-CBC key (32) and its HMAC-SHA256 key (32).
 * 0 / -1 (HKDF failed: outputs wiped). Key material: never log it, cleanse copies.
 */
#define RLY_TICKET_PERIOD 3600
int rly_ticket_key(const rly_key_t *key, uint64_t period, uint8_t name[16], uint8_t aes[32], uint8_t hmac[32]);

/* AES-256-GCM under keys[0].data_key with a random 12-byte nonce: out = 0x01 || nonce || ct || tag.
 * out must hold len + RLY_DATA_OVERHEAD bytes. Returns the output length, or -1. */
#define RLY_DATA_OVERHEAD (1 + 12 + 16)
long rly_data_encrypt(const rly_keyring_t *kr, const void *aad, size_t aadlen, const uint8_t *pt, size_t len, uint8_t *out);
/* tries every key; out must hold len bytes. Returns the plaintext length, or -1 (no key opens it, or malformed). */
long rly_data_decrypt(const rly_keyring_t *kr, const void *aad, size_t aadlen, const uint8_t *in, size_t len, uint8_t *out);

#endif
