/* fuzz_lock.c: libFuzzer target for opening a locked result (rly_unlock) on arbitrary input */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "b64url.h"
#include "lock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                                                \
    do {                                                                                                                           \
        if (!(cond))                                                                                                               \
            abort();                                                                                                               \
    } while (0)

#define SID "AAECAwQFBgcICQoLDA0ODw"
#define RELEASE "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8" /* the key 00..1f, base64url */

/*
 * Input: one mode byte, then text. Mode even: the text is a locked value, opened with the fixed release key (the corpus
 * holds values locked under it, so the fuzzer reaches the tag check with well-formed input). Mode odd: the text's first
 * RLY_RELEASE_KEY_LEN bytes (fewer if it is shorter) are the release key, the rest the locked value.
 * Checks: what opens was locked under that key for that session, byte for byte: locking the plaintext again with the same
 * key and nonce gives the input exactly (so no second spelling of a locked value opens). And any input, locked as a
 * plaintext under the fixed key, opens to itself.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data + 1, *release = RELEASE, *locked;
    size_t len, release_len = RLY_RELEASE_KEY_LEN, locked_len, outlen = 0, n = 0;
    uint8_t key[32], first[15];
    char *pt, *again;

    if (size == 0)
        return 0;
    len = size - 1;
    locked = text;
    locked_len = len;
    if ((data[0] & 1) != 0) {
        release = text;
        release_len = len < RLY_RELEASE_KEY_LEN ? len : RLY_RELEASE_KEY_LEN;
        locked = text + release_len;
        locked_len = len - release_len;
    }
    if ((pt = rly_unlock(release, release_len, SID, locked, locked_len, &outlen)) != NULL) {
        CHECK(outlen + RLY_LOCK_OVERHEAD <= locked_len);
        CHECK(pt[outlen] == '\0');
        CHECK(rly_b64url_decode(key, sizeof(key), release, release_len) == 32);
        /* the version byte and the nonce are in the first 15 bytes, the first 20 characters */
        CHECK(locked_len >= 20 && rly_b64url_decode(first, sizeof(first), locked, 20) == 15);
        CHECK(first[0] == 0x01);
        again = rly_lock_with(key, first + 1, SID, pt, outlen, &n);
        CHECK(again != NULL && n == locked_len && memcmp(again, locked, n) == 0);
        free(again);
        free(pt);
    }
    /* any bytes lock and open again */
    static const uint8_t fixed_key[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                                          16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
    static const uint8_t nonce[12] = {0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b};
    if ((again = rly_lock_with(fixed_key, nonce, SID, (const char *)data, size, &n)) != NULL) {
        CHECK(n == RLY_B64URL_ENCODED_LEN(RLY_LOCK_OVERHEAD + size));
        CHECK((pt = rly_unlock(RELEASE, RLY_RELEASE_KEY_LEN, SID, again, n, &outlen)) != NULL);
        CHECK(outlen == size && memcmp(pt, data, size) == 0 && pt[size] == '\0');
        free(pt);
        free(again);
    } else {
        CHECK(size > RLY_LOCK_PLAINTEXT_MAX);
    }
    return 0;
}
