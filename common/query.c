/* query.c: application/x-www-form-urlencoded parser (query strings and form bodies); no I/O, no allocation */
#include <limits.h>
#include <string.h>

#include "query.h"

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* decodes src[0..len) ('+' is a space, %XX escapes) to dst + *used; -1 on a bad escape, a full dst, or a NUL byte unless
 * allow_nul */
static int decode(const char *src, size_t len, char *dst, size_t cap, size_t *used, rly_str_t *out, int allow_nul)
{
    size_t i = 0, o = *used;

    out->base = dst + o;
    while (i < len) {
        unsigned char c = (unsigned char)src[i];
        if (c == '%') {
            int hi, lo;
            if (len - i < 3 || (hi = hexval((unsigned char)src[i + 1])) < 0 || (lo = hexval((unsigned char)src[i + 2])) < 0)
                return -1;
            c = (unsigned char)(hi << 4 | lo);
            i += 3;
        } else {
            if (c == '+')
                c = ' ';
            i++;
        }
        if ((c == '\0' && !allow_nul) || o >= cap)
            return -1;
        dst[o++] = (char)c;
    }
    out->len = o - *used;
    *used = o;
    return 0;
}

static int next(const char *src, size_t len, size_t *pos, char *buf, size_t bufcap, size_t *used, rly_qparam_t *param,
                int allow_nul)
{
    while (*pos < len) {
        const char *seg = src + *pos, *amp, *eq;
        size_t seglen, namelen;

        amp = memchr(seg, '&', len - *pos);
        seglen = amp != NULL ? (size_t)(amp - seg) : len - *pos;
        *pos += seglen + 1; /* may step one past len at the end; the loop condition handles it */
        if (seglen == 0)
            continue;
        eq = memchr(seg, '=', seglen);
        namelen = eq != NULL ? (size_t)(eq - seg) : seglen;
        if (decode(seg, namelen, buf, bufcap, used, &param->name, allow_nul) != 0)
            return -1;
        if (eq != NULL) {
            if (decode(eq + 1, seglen - namelen - 1, buf, bufcap, used, &param->value, allow_nul) != 0)
                return -1;
        } else {
            param->value.base = buf + *used;
            param->value.len = 0;
        }
        return 1;
    }
    return 0;
}

int rly_query_next(const char *src, size_t len, size_t *pos, char *buf, size_t bufcap, size_t *used, rly_qparam_t *param)
{
    return next(src, len, pos, buf, bufcap, used, param, 1);
}

int rly_query_parse(const char *src, size_t len, char *buf, size_t bufcap, rly_qparam_t *params, size_t maxparams)
{
    size_t pos = 0, used = 0, n = 0;
    rly_qparam_t p;
    int r;

    if (buf == NULL && len != 0)
        return -1;
    while ((r = next(src, len, &pos, buf, bufcap, &used, &p, 0)) == 1) {
        if (n >= maxparams || n >= INT_MAX)
            return -1;
        params[n++] = p;
    }
    return r == 0 ? (int)n : -1;
}

const rly_qparam_t *rly_query_find(const rly_qparam_t *params, size_t n, const char *name, size_t *count)
{
    const rly_qparam_t *first = NULL;
    size_t namelen = strlen(name), i, found = 0;

    for (i = 0; i != n; i++) {
        if (params[i].name.len == namelen && memcmp(params[i].name.base, name, namelen) == 0) {
            if (first == NULL)
                first = &params[i];
            found++;
        }
    }
    if (count != NULL)
        *count = found;
    return first;
}
