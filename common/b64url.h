/* b64url.h: base64url without padding (RFC 4648 section 5) */
#ifndef RLY_B64URL_H
#define RLY_B64URL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* characters needed for n bytes, without the terminating NUL */
#define RLY_B64URL_ENCODED_LEN(n) (((n) / 3) * 4 + (((n) % 3) == 0 ? 0 : ((n) % 3) + 1))
/* bytes needed to decode n characters (an upper bound) */
#define RLY_B64URL_DECODED_MAX(n) (((n) / 4) * 3 + 3)

/* Writes RLY_B64URL_ENCODED_LEN(n) characters and a NUL to dst (caller sizes dst). Returns the length written (no NUL). */
size_t rly_b64url_encode(char *dst, const uint8_t *src, size_t n);
/* Decodes n characters of src into dst (capacity dstcap). Rejects padding, characters outside [A-Za-z0-9_-], a length of
 * 4k+1, non-zero trailing bits (non-canonical input) and output larger than dstcap. Returns the decoded length, or -1. */
ssize_t rly_b64url_decode(uint8_t *dst, size_t dstcap, const char *src, size_t n);
/* 1 if every one of the n characters is in [A-Za-z0-9_-] */
int rly_b64url_is_charset(const char *src, size_t n);

#endif
