/* state.h: the OAuth `state` codec: session id plus a MAC under the relay's key */
#ifndef RLY_STATE_H
#define RLY_STATE_H

#include "keys.h"

/*
 * state = base64url(0x01 || session id (16 bytes) || HMAC-SHA256(state_key, "authrelay state v1" || 0x01 || session id)[0..16])
 * 33 bytes, 44 characters, only [A-Za-z0-9_-].
 */
#define RLY_STATE_LEN 44

/* writes the state of a session signed by kr->keys[0] (NUL-terminated) into out; returns RLY_STATE_LEN, or 0 (empty out)
 * if kr is empty or the MAC failed */
size_t rly_state_encode(const rly_keyring_t *kr, const uint8_t sid[RLY_SESSION_ID_BYTES], char out[RLY_STATE_LEN + 1]);
/* verifies a presented state against every key (constant-time compare); on success writes the session id.
 * 0 valid, -1 forged, truncated, mangled or signed by no key in kr. Never touches the store. */
int rly_state_verify(const rly_keyring_t *kr, const char *state, size_t len, uint8_t sid[RLY_SESSION_ID_BYTES]);

#endif
