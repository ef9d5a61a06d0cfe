/* state.h: the OAuth `state` codec: session id plus a MAC under the relay's key */
#ifndef RLY_STATE_H
#define RLY_STATE_H

#include "keys.h"

/*
 * state = base64url(v || session id (16 bytes) || HMAC-SHA256(state_key, "authrelay state v1" || v || session id)[0..16])
 * 33 bytes, 44 characters, only [A-Za-z0-9_-]. v = 0x01 + flags (0x01 to 0x04), so the flags are signed under the MAC:
 *  - RLY_STATE_DIRECT: the session has no seal key, so a callback may complete it without reading it first. The flag says
 *    only that the instance did not ask for sealing.
 *  - RLY_STATE_BOUND: the session is a protocol 1.1 bound flow (its callback needs the browser cookie the session holds).
 * A state of version 1.0 (0x01 plain, 0x02 direct) verifies exactly as before.
 */
#define RLY_STATE_LEN 44
#define RLY_STATE_DIRECT 1u
#define RLY_STATE_BOUND 2u
#define RLY_STATE_FLAGS (RLY_STATE_DIRECT | RLY_STATE_BOUND) /* every flag there is */

/* writes the state of a session signed by kr->keys[0] (NUL-terminated) into out; returns RLY_STATE_LEN, or 0 (empty out)
 * if kr is empty or the MAC failed */
size_t rly_state_encode(const rly_keyring_t *kr, const uint8_t sid[RLY_SESSION_ID_BYTES], char out[RLY_STATE_LEN + 1]);
/* verifies a presented state against every key (constant-time compare); on success writes the session id.
 * 0 valid, -1 forged, truncated, mangled or signed by no key in kr. Never touches the store. */
int rly_state_verify(const rly_keyring_t *kr, const char *state, size_t len, uint8_t sid[RLY_SESSION_ID_BYTES]);
/* the same with flags (RLY_STATE_DIRECT, RLY_STATE_BOUND, both, or 0): encode signs them into the state (0, empty out, for
 * a bit outside RLY_STATE_FLAGS), verify reads them back (flags may be NULL) */
size_t rly_state_encode_flags(const rly_keyring_t *kr, const uint8_t sid[RLY_SESSION_ID_BYTES], unsigned flags,
                              char out[RLY_STATE_LEN + 1]);
int rly_state_verify_flags(const rly_keyring_t *kr, const char *state, size_t len, uint8_t sid[RLY_SESSION_ID_BYTES],
                           unsigned *flags);

#endif
