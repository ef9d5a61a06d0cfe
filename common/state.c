/* state.c: the OAuth state codec: version, session id and a truncated HMAC-SHA256 under the relay's state key */
#include "state.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "b64url.h"
#include "tcache.h"

/* the version byte is STATE_VERSION + flags: 0x01 a callback reads the session first (its result may have to be sealed),
 * 0x02 (RLY_STATE_DIRECT) the session has no seal key: a callback completes it without a read; 0x03 and 0x04 the same for
 * a 1.1 bound flow (RLY_STATE_BOUND) */
#define STATE_VERSION 0x01
#define STATE_VERSION_LAST (STATE_VERSION + RLY_STATE_FLAGS)
#define STATE_LABEL "authrelay state v1"
#define MAC_LEN 16
#define RAW_LEN (1 + RLY_SESSION_ID_BYTES + MAC_LEN)

/* HMAC-SHA256(key, STATE_LABEL || version || sid), truncated to MAC_LEN bytes; 0 / -1 */
static int state_mac(const uint8_t key[32], uint8_t version, const uint8_t sid[RLY_SESSION_ID_BYTES], uint8_t mac[MAC_LEN])
{
    uint8_t msg[sizeof(STATE_LABEL) - 1 + 1 + RLY_SESSION_ID_BYTES], full[EVP_MAX_MD_SIZE];
    size_t fulllen = 0;
    EVP_MAC_CTX *ctx;
    int ret = -1;

    memcpy(msg, STATE_LABEL, sizeof(STATE_LABEL) - 1);
    msg[sizeof(STATE_LABEL) - 1] = version;
    memcpy(msg + sizeof(STATE_LABEL), sid, RLY_SESSION_ID_BYTES);
    /* the thread's HMAC context for this key (no fetch, no allocation per state) */
    if ((ctx = rly_tc_hmac_sha256(key)) == NULL || EVP_MAC_update(ctx, msg, sizeof(msg)) != 1 ||
        EVP_MAC_final(ctx, full, &fulllen, sizeof(full)) != 1 || fulllen != 32)
        goto Exit;
    memcpy(mac, full, MAC_LEN);
    ret = 0;
Exit:
    OPENSSL_cleanse(full, sizeof(full));
    return ret;
}

size_t rly_state_encode_flags(const rly_keyring_t *kr, const uint8_t sid[RLY_SESSION_ID_BYTES], unsigned flags,
                              char out[RLY_STATE_LEN + 1])
{
    uint8_t raw[RAW_LEN];

    out[0] = '\0';
    if (kr->count == 0 || (flags & ~RLY_STATE_FLAGS) != 0)
        return 0;
    raw[0] = (uint8_t)(STATE_VERSION + flags);
    memcpy(raw + 1, sid, RLY_SESSION_ID_BYTES);
    if (state_mac(kr->keys[0].state_key, raw[0], sid, raw + 1 + RLY_SESSION_ID_BYTES) != 0)
        return 0;
    return rly_b64url_encode(out, raw, sizeof(raw));
}

size_t rly_state_encode(const rly_keyring_t *kr, const uint8_t sid[RLY_SESSION_ID_BYTES], char out[RLY_STATE_LEN + 1])
{
    return rly_state_encode_flags(kr, sid, 0, out);
}

int rly_state_verify_flags(const rly_keyring_t *kr, const char *state, size_t len, uint8_t sid[RLY_SESSION_ID_BYTES],
                           unsigned *flags)
{
    uint8_t raw[RAW_LEN], mac[MAC_LEN];
    int match = 0;

    if (len != RLY_STATE_LEN || rly_b64url_decode(raw, sizeof(raw), state, len) != RAW_LEN || raw[0] < STATE_VERSION ||
        raw[0] > STATE_VERSION_LAST)
        return -1;
    /* every key is tried, without stopping at the first match; the MAC covers the version byte, so the flags it carries
     * cannot be changed either */
    for (size_t i = 0; i != kr->count && i != RLY_KEYS_MAX; ++i) {
        if (state_mac(kr->keys[i].state_key, raw[0], raw + 1, mac) != 0)
            continue;
        match |= CRYPTO_memcmp(mac, raw + 1 + RLY_SESSION_ID_BYTES, MAC_LEN) == 0;
    }
    OPENSSL_cleanse(mac, sizeof(mac));
    if (!match)
        return -1;
    memcpy(sid, raw + 1, RLY_SESSION_ID_BYTES);
    if (flags != NULL)
        *flags = (unsigned)(raw[0] - STATE_VERSION);
    return 0;
}

int rly_state_verify(const rly_keyring_t *kr, const char *state, size_t len, uint8_t sid[RLY_SESSION_ID_BYTES])
{
    return rly_state_verify_flags(kr, state, len, sid, NULL);
}
