/* fuzz_state.c: libFuzzer target for the OAuth state codec (rly_state_verify, rly_state_verify_flags, common/state.c) */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "b64url.h"
#include "state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                                                \
    do {                                                                                                                           \
        if (!(cond))                                                                                                               \
            abort();                                                                                                               \
    } while (0)

/*
 * The keyring: two keys, masters 00..1f ("k0", signs) and 40..5f ("k1", an older key that still verifies); the corpus
 * holds states signed by each (see tests/fuzz/README.md). other: a key of no ring here (80..9f).
 */
static rly_keyring_t ring, ring0, ring1, other;

static void make_key(rly_keyring_t *kr, const char *id, uint8_t start)
{
    uint8_t master[32];

    for (size_t i = 0; i != sizeof(master); ++i)
        master[i] = (uint8_t)(start + i);
    CHECK(rly_key_derive(&kr->keys[kr->count++], id, master) == 0);
}

static void init(void)
{
    static int done;

    if (done)
        return;
    make_key(&ring, "k0", 0x00);
    make_key(&ring, "k1", 0x40);
    make_key(&ring0, "k0", 0x00);
    make_key(&ring1, "k1", 0x40);
    make_key(&other, "other", 0x80);
    done = 1;
}

static int is_b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* the input as a presented state: what verifies was encoded by one of the ring's keys, byte for byte */
static void fuzz_verify(const char *src, size_t size)
{
    uint8_t sid[RLY_SESSION_ID_BYTES], sid2[RLY_SESSION_ID_BYTES], fill[RLY_SESSION_ID_BYTES];
    unsigned flags = 0xdead, flags2 = 0xbeef;
    char again[RLY_STATE_LEN + 1];
    int r, r2, by0, by1;

    memset(fill, 0x5a, sizeof(fill));
    memcpy(sid, fill, sizeof(sid));
    memcpy(sid2, fill, sizeof(sid2));
    r = rly_state_verify(&ring, src, size, sid);
    r2 = rly_state_verify_flags(&ring, src, size, sid2, &flags);
    CHECK(r == 0 || r == -1);
    CHECK(r == r2);
    if (r != 0) {
        /* a failure writes nothing */
        CHECK(memcmp(sid, fill, sizeof(sid)) == 0 && memcmp(sid2, fill, sizeof(sid2)) == 0 && flags == 0xdead);
        return;
    }
    CHECK(memcmp(sid, sid2, sizeof(sid)) == 0);
    CHECK(size == RLY_STATE_LEN && flags <= RLY_STATE_FLAGS);
    for (size_t i = 0; i != size; ++i)
        CHECK(is_b64url_char(src[i]));
    CHECK(rly_state_verify_flags(&ring, src, size, sid2, NULL) == 0);
    /* exactly the keys that signed it verify it alone; a key of no ring never does */
    by0 = rly_state_verify_flags(&ring0, src, size, sid2, &flags2) == 0;
    by1 = rly_state_verify_flags(&ring1, src, size, sid2, &flags2) == 0;
    CHECK(by0 || by1);
    CHECK(rly_state_verify(&other, src, size, sid2) == -1);
    /* encoded again with the key that signed it, it is the input exactly: no second spelling verifies */
    CHECK(rly_state_encode_flags(by0 ? &ring0 : &ring1, sid, flags, again) == RLY_STATE_LEN);
    CHECK(memcmp(again, src, RLY_STATE_LEN) == 0 && again[RLY_STATE_LEN] == '\0');
}

/*
 * The input's first 16 bytes (zero-padded) as a session id, the next byte as flags, the two after it as a position and a
 * bit mask: encoded, the state verifies to the same session id and flags; with one byte changed, shortened or lengthened
 * it does not; flags outside RLY_STATE_FLAGS are refused.
 */
static void fuzz_round_trip(const uint8_t *data, size_t size)
{
    uint8_t sid[RLY_SESSION_ID_BYTES] = {0}, back[RLY_SESSION_ID_BYTES];
    unsigned flags = size > 16 ? data[16] : 0, got = 0xdead;
    size_t pos = size > 17 ? data[17] % RLY_STATE_LEN : 0;
    char mask = (char)(size > 18 && data[18] != 0 ? data[18] : 1);
    char state[RLY_STATE_LEN + 2], plain[RLY_STATE_LEN + 1];
    size_t n;

    memcpy(sid, data, size < sizeof(sid) ? size : sizeof(sid));
    n = rly_state_encode_flags(&ring, sid, flags, state);
    if ((flags & ~RLY_STATE_FLAGS) != 0) {
        CHECK(n == 0 && state[0] == '\0');
        return;
    }
    CHECK(n == RLY_STATE_LEN && state[RLY_STATE_LEN] == '\0');
    CHECK(rly_b64url_is_charset(state, n));
    if (flags == 0) {
        CHECK(rly_state_encode(&ring, sid, plain) == RLY_STATE_LEN && memcmp(plain, state, sizeof(plain)) == 0);
    }
    CHECK(rly_state_verify_flags(&ring, state, n, back, &got) == 0);
    CHECK(memcmp(back, sid, sizeof(sid)) == 0 && got == flags);
    CHECK(rly_state_verify_flags(&ring0, state, n, back, &got) == 0);
    CHECK(rly_state_verify_flags(&ring1, state, n, back, NULL) == -1);
    CHECK(rly_state_verify(&other, state, n, back) == -1);
    /* shortened, or with one more character */
    CHECK(rly_state_verify(&ring, state, n - 1, back) == -1);
    state[RLY_STATE_LEN] = 'A';
    CHECK(rly_state_verify(&ring, state, n + 1, back) == -1);
    state[RLY_STATE_LEN] = '\0';
    /* one byte changed: another character of the alphabet (another 33 bytes) or a byte outside it */
    state[pos] = (char)(state[pos] ^ mask);
    CHECK(rly_state_verify_flags(&ring, state, n, back, &got) == -1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly the input's size, so that ASan sees any read past it */
    char *src = malloc(size != 0 ? size : 1);

    if (src == NULL)
        return 0;
    init();
    if (size != 0)
        memcpy(src, data, size);
    fuzz_verify(src, size);
    fuzz_round_trip(data, size);
    free(src);
    return 0;
}
