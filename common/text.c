/* text.c: character rules the parsers share: parameter names, printable ASCII, UTF-8 and the Unicode categories refused */
#include "text.h"

int rly_text_is_param_name(const char *s, size_t len)
{
    if (len == 0 || len > RLY_PARAM_NAME_MAX)
        return 0;
    for (size_t i = 0; i != len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int rly_text_is_printable_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i != len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

/*
 * General category Cf (Format) of Unicode 15.0.0, as ranges of code points, sorted: the lines "; Cf" of
 * https://www.unicode.org/Public/15.0.0/ucd/extracted/DerivedGeneralCategory.txt (170 code points; checked against ICU 72,
 * which implements Unicode 15.0, with u_charType() == U_FORMAT_CHAR).
 */
static const uint32_t format_chars[][2] = {
    {0x00ad, 0x00ad},   {0x0600, 0x0605},   {0x061c, 0x061c},   {0x06dd, 0x06dd},   {0x070f, 0x070f},   {0x0890, 0x0891},
    {0x08e2, 0x08e2},   {0x180e, 0x180e},   {0x200b, 0x200f},   {0x202a, 0x202e},   {0x2060, 0x2064},   {0x2066, 0x206f},
    {0xfeff, 0xfeff},   {0xfff9, 0xfffb},   {0x110bd, 0x110bd}, {0x110cd, 0x110cd}, {0x13430, 0x1343f}, {0x1bca0, 0x1bca3},
    {0x1d173, 0x1d17a}, {0xe0001, 0xe0001}, {0xe0020, 0xe007f},
};

int rly_unicode_is_format(uint32_t cp)
{
    size_t lo = 0, hi = sizeof(format_chars) / sizeof(format_chars[0]);

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < format_chars[mid][0])
            hi = mid;
        else if (cp > format_chars[mid][1])
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

int rly_unicode_is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

int64_t rly_utf8_next(const char *s, size_t len, size_t *i)
{
    const unsigned char *p = (const unsigned char *)s + *i;
    size_t left = len - *i, n;
    uint32_t cp;
    unsigned char lo = 0x80, hi = 0xbf; /* the range of the second byte */

    if (p[0] < 0x80) {
        *i += 1;
        return p[0];
    } else if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        n = 2;
        cp = p[0] & 0x1f;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        n = 3;
        cp = p[0] & 0x0f;
        if (p[0] == 0xe0)
            lo = 0xa0; /* overlong */
        else if (p[0] == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4;
        cp = p[0] & 0x07;
        if (p[0] == 0xf0)
            lo = 0x90; /* overlong */
        else if (p[0] == 0xf4)
            hi = 0x8f; /* beyond U+10FFFF */
    } else {
        return -1;
    }
    if (left < n || p[1] < lo || p[1] > hi)
        return -1;
    for (size_t k = 1; k != n; k++) {
        if ((p[k] & 0xc0) != 0x80)
            return -1;
        cp = cp << 6 | (p[k] & 0x3f);
    }
    *i += n;
    return cp;
}

int rly_text_is_utf8_without_controls(const char *s, size_t len)
{
    size_t i = 0;
    while (i != len) {
        int64_t cp = rly_utf8_next(s, len, &i);
        if (cp < 0 || rly_unicode_is_control((uint32_t)cp))
            return 0;
    }
    return 1;
}
