/* meta.h: what a session remembers about its instance (return_uri, seal key; for a 1.1 flow also the AS URL, the
 * authorize parameters and the label), encrypted under the data key and bound to the session id */
#ifndef RELAY_META_H
#define RELAY_META_H

#include "keys.h"
#include "session_req.h"

typedef struct st_relay_meta_t {
    int has_seal_key;
    uint8_t seal_key[32];
    char return_uri[RLY_RETURN_URI_MAX + 1]; /* "" when none */
    size_t return_uri_len;
    int bound; /* a 1.1 flow: the members below are set */
    char authorization_server[RLY_URL_MAX + 1];
    size_t authorization_server_len;
    char label[RLY_LABEL_MAX + 1]; /* "" when none */
    size_t label_len;
    rly_param_t params[RLY_AUTHORIZE_PARAMS_COUNT_MAX]; /* point into params_buf */
    size_t nparams;
    char params_buf[RLY_AUTHORIZE_PARAMS_MAX + 2 * RLY_AUTHORIZE_PARAMS_COUNT_MAX];
    size_t params_buf_len;
} relay_meta_t;

/* a version-1 meta at its largest, and any meta at its largest (a 1.1 one: lengths of 2, 2, 1, 1 and 1 + 2 bytes a
 * parameter before the texts) */
#define RELAY_META_V1_MAX (1 + 32 + RLY_RETURN_URI_MAX + RLY_DATA_OVERHEAD)
#define RELAY_META_MAX                                                                                                             \
    (1 + 32 + 2 + RLY_RETURN_URI_MAX + 2 + RLY_URL_MAX + 1 + RLY_LABEL_MAX + 1 + 3 * RLY_AUTHORIZE_PARAMS_COUNT_MAX +              \
     RLY_AUTHORIZE_PARAMS_MAX + RLY_DATA_OVERHEAD)

/* what the start token's entry in the store holds: the session id, encrypted under the data key and bound to the token's
 * hash (so the store never sees a session id, and an entry cannot be moved to another token) */
#define RELAY_START_REF_LEN (RLY_SESSION_ID_BYTES + RLY_DATA_OVERHEAD)
int relay_start_ref_seal(const rly_keyring_t *kr, const uint8_t token_hash[32], const uint8_t sid[RLY_SESSION_ID_BYTES],
                         uint8_t out[RELAY_START_REF_LEN]);
/* 0 with the session id, or -1 (no key opens it, another token's, malformed) */
int relay_start_ref_open(const rly_keyring_t *kr, const uint8_t token_hash[32], const uint8_t *ref, size_t len,
                         uint8_t sid[RLY_SESSION_ID_BYTES]);

/* encrypts the meta of a session request into out (RELAY_META_MAX bytes) bound to the session id; length or -1 */
long relay_meta_seal(const rly_keyring_t *kr, const char *sid_text, const rly_session_req_t *sreq, uint8_t *out);
/* opens it; 0 / -1 (meta wiped) */
int relay_meta_open(const rly_keyring_t *kr, const char *sid_text, const uint8_t *in, size_t len, relay_meta_t *meta);
/* wipes what relay_meta_open wrote (the seal key and the texts' bytes, not the whole buffers) */
void relay_meta_wipe(relay_meta_t *meta);
/* result blobs: 'S' + sealed base64url text, or 'D' + data-key ciphertext of the result JSON, bound to the session id */
uint8_t *relay_result_seal(const rly_keyring_t *kr, const char *sid_text, const relay_meta_t *meta, const char *json, size_t len,
                           size_t *outlen);
/* the JSON a pickup returns for a stored result blob (malloc'ed, caller frees), or NULL if it cannot be opened */
char *relay_result_open(const rly_keyring_t *kr, const char *sid_text, const uint8_t *blob, size_t len, size_t *outlen);

#endif
