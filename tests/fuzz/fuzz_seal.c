/* fuzz_seal.c: libFuzzer target for opening a sealed result (rly_unseal, common/seal.c) and for seal/unseal round trips */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "b64url.h"
#include "seal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                                                \
    do {                                                                                                                           \
        if (!(cond))                                                                                                               \
            abort();                                                                                                               \
    } while (0)

#define SID "AAECAwQFBgcICQoLDA0ODw" /* the AAD: the session id text */
#define OTHER_SID "AAECAwQFBgcICQoLDA0OEA"

/* the instance's key pair: private 00..1f (X25519 clamps it); the corpus holds results sealed to its public key */
static const uint8_t priv[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                                 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
static const uint8_t other_priv[32] = {0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a,
                                       0x8b, 0x8c, 0x8d, 0x8e, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x94, 0x95,
                                       0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f};
static uint8_t pub[32];

/* the public key of priv, once: sealed with priv as the ephemeral key, a result carries its public key in clear after the
 * version byte */
static void init(void)
{
    static int done;
    static const uint8_t any_recipient[32] = {9}; /* the X25519 base point: a valid public key */
    uint8_t raw[RLY_SEAL_OVERHEAD];
    char *s;

    if (done)
        return;
    CHECK((s = rly_seal(any_recipient, "", 0, (const uint8_t *)"", 0, priv, priv)) != NULL);
    CHECK(rly_b64url_decode(raw, sizeof(raw), s, strlen(s)) == RLY_SEAL_OVERHEAD && raw[0] == 0x01);
    memcpy(pub, raw + 1, 32);
    free(s);
    done = 1;
}

/* the input as a sealed result: what opens was sealed to pub for SID; it opens with nothing else */
static void fuzz_unseal(const char *src, size_t size)
{
    uint8_t raw[64], *pt, *again;
    size_t ptlen = (size_t)-1, n = (size_t)-1;

    if ((pt = rly_unseal(priv, SID, sizeof(SID) - 1, src, size, &ptlen)) == NULL) {
        CHECK(ptlen == (size_t)-1); /* untouched on failure */
        return;
    }
    /* base64url of version 1, a 32-byte ephemeral key, a 12-byte nonce, the ciphertext and a 16-byte tag */
    CHECK(size == RLY_B64URL_ENCODED_LEN(RLY_SEAL_OVERHEAD + ptlen));
    CHECK(rly_b64url_is_charset(src, size));
    CHECK(rly_b64url_decode(raw, sizeof(raw), src, 64) == 48 && raw[0] == 0x01);
    CHECK(pt[ptlen] == '\0');
    /* the tag binds the session id and the recipient */
    CHECK(rly_unseal(priv, OTHER_SID, sizeof(OTHER_SID) - 1, src, size, &n) == NULL && n == (size_t)-1);
    CHECK(rly_unseal(other_priv, SID, sizeof(SID) - 1, src, size, &n) == NULL && n == (size_t)-1);
    /* the same again opens to the same bytes */
    CHECK((again = rly_unseal(priv, SID, sizeof(SID) - 1, src, size, &n)) != NULL && n == ptlen && memcmp(again, pt, ptlen) == 0);
    free(again);
    free(pt);
}

/*
 * The input as a plaintext, sealed to pub with an ephemeral key and nonce taken from the input (fixed ones when it is
 * short): it opens to itself, with the same ephemeral key and nonce it seals to the same text, and with one character
 * changed (the position and mask from the input) it does not open.
 */
static void fuzz_round_trip(const uint8_t *data, size_t size)
{
    uint8_t eph[32], nonce[12], *pt;
    size_t ptlen = 0, n;
    char *sealed, *again;

    memcpy(eph, priv, sizeof(eph));
    memset(nonce, 0x42, sizeof(nonce));
    if (size >= 44) {
        memcpy(eph, data, sizeof(eph));
        memcpy(nonce, data + 32, sizeof(nonce));
    }
    CHECK((sealed = rly_seal(pub, SID, sizeof(SID) - 1, data, size, eph, nonce)) != NULL);
    n = strlen(sealed);
    CHECK(n == RLY_B64URL_ENCODED_LEN(RLY_SEAL_OVERHEAD + size));
    CHECK((pt = rly_unseal(priv, SID, sizeof(SID) - 1, sealed, n, &ptlen)) != NULL);
    CHECK(ptlen == size && (size == 0 || memcmp(pt, data, size) == 0) && pt[size] == '\0');
    free(pt);
    CHECK((again = rly_seal(pub, SID, sizeof(SID) - 1, data, size, eph, nonce)) != NULL && strcmp(again, sealed) == 0);
    free(again);
    /* one character changed, anywhere */
    {
        size_t pos = size != 0 ? data[size - 1] * 31u % n : 0;
        char mask = (char)(size > 1 && data[size - 2] != 0 ? data[size - 2] : 1);
        sealed[pos] = (char)(sealed[pos] ^ mask);
        ptlen = (size_t)-1;
        CHECK(rly_unseal(priv, SID, sizeof(SID) - 1, sealed, n, &ptlen) == NULL && ptlen == (size_t)-1);
    }
    free(sealed);
}

/*
 * One of the two per input, by its first byte, so that each execution does the X25519 work of one, and most the cheaper:
 * a first byte below 0x20 (never the first of a sealed result, which is base64url: 'A' for the version byte 1) makes the
 * rest of the input a plaintext for the round trip (four seals and opens: about twelve X25519 scalar multiplications,
 * OpenSSL's raw private keys computing their public key too); any other input, the empty one too, is opened as a sealed
 * result (three multiplications when it passes the format checks, none when it fails them early).
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *src;

    init();
    if (size != 0 && data[0] < 0x20) {
        fuzz_round_trip(data + 1, size - 1);
        return 0;
    }
    /* a copy of exactly the input's size, so that ASan sees any read past it */
    if ((src = malloc(size != 0 ? size : 1)) == NULL)
        return 0;
    if (size != 0)
        memcpy(src, data, size);
    fuzz_unseal(src, size);
    free(src);
    return 0;
}
