/* jsonstr.c: JSON string literals */
#include "jsonstr.h"

#include <string.h>

/* appends k bytes at *n if they fit in cap; 0 / -1 */
static int put(char *dst, size_t cap, size_t *n, const char *s, size_t k)
{
    if (cap - *n < k)
        return -1;
    memcpy(dst + *n, s, k);
    *n += k;
    return 0;
}

ssize_t rly_json_quote(char *dst, size_t cap, const char *src, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;

    if (put(dst, cap, &n, "\"", 1) != 0)
        return -1;
    for (size_t i = 0; i != len;) {
        /* a run of bytes that need no escape is copied at once (a code or a result is mostly one such run) */
        size_t j = i;
        while (j != len && (unsigned char)src[j] >= 0x20 && src[j] != 0x7f && src[j] != '"' && src[j] != '\\')
            ++j;
        if (j != i) {
            if (put(dst, cap, &n, src + i, j - i) != 0)
                return -1;
            i = j;
            continue;
        }
        unsigned char c = (unsigned char)src[i++];
        char esc[2] = {'\\', (char)c};
        int r;
        if (c == '"' || c == '\\') {
            r = put(dst, cap, &n, esc, 2);
        } else if (c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t') {
            esc[1] = c == '\b' ? 'b' : c == '\f' ? 'f' : c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            r = put(dst, cap, &n, esc, 2);
        } else {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            r = put(dst, cap, &n, u, sizeof(u));
        }
        if (r != 0)
            return -1;
    }
    if (put(dst, cap, &n, "\"", 1) != 0)
        return -1;
    return (ssize_t)n;
}
