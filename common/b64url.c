/* b64url.c: base64url encoding and strict decoding without padding (RFC 4648 section 5) */
#include "b64url.h"

#include <limits.h>

static const char alphabet[64] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* value of a base64url character, or -1 */
static int value_of(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

size_t rly_b64url_encode(char *dst, const uint8_t *src, size_t n)
{
    size_t i = 0, o = 0;

    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 | src[i + 2];
        dst[o++] = alphabet[v >> 18];
        dst[o++] = alphabet[(v >> 12) & 63];
        dst[o++] = alphabet[(v >> 6) & 63];
        dst[o++] = alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)src[i] << 16;
        dst[o++] = alphabet[v >> 18];
        dst[o++] = alphabet[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8;
        dst[o++] = alphabet[v >> 18];
        dst[o++] = alphabet[(v >> 12) & 63];
        dst[o++] = alphabet[(v >> 6) & 63];
    }
    dst[o] = '\0';
    return o;
}

ssize_t rly_b64url_decode(uint8_t *dst, size_t dstcap, const char *src, size_t n)
{
    size_t rem = n % 4, outlen = n / 4 * 3 + (rem == 0 ? 0 : rem - 1), i = 0, o = 0;
    int v[4];

    if (rem == 1 || outlen > dstcap || outlen > (size_t)SSIZE_MAX)
        return -1;
    for (; i + 4 <= n; i += 4) {
        for (size_t k = 0; k < 4; ++k)
            if ((v[k] = value_of((unsigned char)src[i + k])) < 0)
                return -1;
        dst[o++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
        dst[o++] = (uint8_t)((v[1] & 15) << 4 | v[2] >> 2);
        dst[o++] = (uint8_t)((v[2] & 3) << 6 | v[3]);
    }
    if (rem != 0) {
        for (size_t k = 0; k < rem; ++k)
            if ((v[k] = value_of((unsigned char)src[i + k])) < 0)
                return -1;
        /* the bits after the last whole byte must be zero, or two texts would decode to the same bytes */
        if (rem == 2 && (v[1] & 15) != 0)
            return -1;
        if (rem == 3 && (v[2] & 3) != 0)
            return -1;
        dst[o++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
        if (rem == 3)
            dst[o++] = (uint8_t)((v[1] & 15) << 4 | v[2] >> 2);
    }
    return (ssize_t)o;
}

int rly_b64url_is_charset(const char *src, size_t n)
{
    for (size_t i = 0; i != n; ++i)
        if (value_of((unsigned char)src[i]) < 0)
            return 0;
    return 1;
}
