/* meta.h: what a session remembers about its instance (return_uri, seal key), encrypted under the data key */
#ifndef RELAY_META_H
#define RELAY_META_H

#include "keys.h"
#include "session_req.h"

typedef struct st_relay_meta_t {
    int has_seal_key;
    uint8_t seal_key[32];
    char return_uri[RLY_RETURN_URI_MAX + 1]; /* "" when none */
    size_t return_uri_len;
} relay_meta_t;

#define RELAY_META_MAX (1 + 32 + RLY_RETURN_URI_MAX + RLY_DATA_OVERHEAD)

/* encrypts the meta of a session request into out (RELAY_META_MAX bytes) bound to the session id; length or -1 */
long relay_meta_seal(const rly_keyring_t *kr, const char *sid_text, const rly_session_req_t *sreq, uint8_t *out);
/* opens it; 0 / -1 (meta wiped) */
int relay_meta_open(const rly_keyring_t *kr, const char *sid_text, const uint8_t *in, size_t len, relay_meta_t *meta);
/* wipes what relay_meta_open wrote (the seal key and the return_uri's bytes, not the whole 2 KiB buffer) */
void relay_meta_wipe(relay_meta_t *meta);
/* result blobs: 'S' + sealed base64url text, or 'D' + data-key ciphertext of the result JSON, bound to the session id */
uint8_t *relay_result_seal(const rly_keyring_t *kr, const char *sid_text, const relay_meta_t *meta, const char *json, size_t len,
                           size_t *outlen);
/* the JSON a pickup returns for a stored result blob (malloc'ed, caller frees), or NULL if it cannot be opened */
char *relay_result_open(const rly_keyring_t *kr, const char *sid_text, const uint8_t *blob, size_t len, size_t *outlen);

#endif
