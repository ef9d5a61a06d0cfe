/* fuzz_query.c: libFuzzer target for the form-urlencoded parser: the streaming rly_query_next against rly_query_parse */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                                                \
    do {                                                                                                                           \
        if (!(cond))                                                                                                               \
            abort();                                                                                                               \
    } while (0)

/* s lies inside [lo, lo + cap) */
static int within(rly_str_t s, const char *lo, size_t cap)
{
    return s.base >= lo && s.len <= cap && (size_t)(s.base - lo) <= cap - s.len;
}

static int same(rly_str_t a, rly_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.base, b.base, a.len) == 0);
}

/* s percent-encoded (every byte but the unreserved ones) at out + n; returns the new length */
static size_t encode(char *out, size_t n, rly_str_t s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (size_t i = 0; i != s.len; ++i) {
        unsigned char c = (unsigned char)s.base[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
            c == '~') {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the input and the buffers of exactly the size the contract asks (bufcap >= len), heap-allocated so that ASan sees
     * any access past them */
    char *src = malloc(size != 0 ? size : 1), *buf = malloc(size != 0 ? size : 1), *pbuf = malloc(size != 0 ? size : 1);
    char *small = malloc(size / 2 + 1), *re = NULL, *rbuf = NULL;
    /* a parameter takes one byte of input at least: size + 1 entries are more than enough */
    rly_qparam_t *streamed = malloc((size + 1) * sizeof(*streamed)), *parsed = malloc((size + 1) * sizeof(*parsed)), p;
    size_t pos = 0, prev, used = 0, n = 0, k, spos = 0, sused = 0, sn = 0, relen = 0, rused = 0;
    int r, np, has_nul = 0, sr;

    if (src == NULL || buf == NULL || pbuf == NULL || small == NULL || streamed == NULL || parsed == NULL)
        goto Exit;
    if (size != 0)
        memcpy(src, data, size);

    /* streamed: every parameter decoded into buf, inside what was used so far, the walk always moving on */
    for (;;) {
        size_t used_before = used;
        prev = pos;
        r = rly_query_next(src, size, &pos, buf, size, &used, &p);
        CHECK(r >= -1 && r <= 1);
        if (r != 1)
            break;
        CHECK(pos > prev && pos <= size + 1 && used <= size && used >= used_before);
        CHECK(within(p.name, buf, used) && within(p.value, buf, used));
        CHECK(p.name.base == buf + used_before && p.value.base == p.name.base + p.name.len);
        CHECK(p.name.len + p.value.len == used - used_before);
        CHECK(n < size);
        has_nul |= memchr(p.name.base, '\0', p.name.len) != NULL || memchr(p.value.base, '\0', p.value.len) != NULL;
        streamed[n++] = p;
    }
    if (r == 0)
        CHECK(pos >= size);

    /* parsed at once: the same parameters when the stream saw no bad escape and no NUL byte, else a refusal */
    np = rly_query_parse(src, size, pbuf, size, parsed, size + 1);
    CHECK(np >= -1);
    if (r == 0 && !has_nul) {
        CHECK(np >= 0 && (size_t)np == n);
        for (k = 0; k != n; ++k) {
            CHECK(same(parsed[k].name, streamed[k].name) && same(parsed[k].value, streamed[k].value));
            CHECK(within(parsed[k].name, pbuf, size) && within(parsed[k].value, pbuf, size));
            /* at the same offsets of their buffers */
            CHECK(parsed[k].name.base - pbuf == streamed[k].name.base - buf);
        }
    } else {
        CHECK(np == -1);
    }
    /* a maximum of parameters: refused beyond it, the same below it */
    if (np > 0) {
        CHECK(rly_query_parse(src, size, pbuf, size, parsed, (size_t)np - 1) == -1);
        CHECK(rly_query_parse(src, size, pbuf, size, parsed, (size_t)np) == np);
    }

    /* a buffer of half the size: the same parameters as far as it goes, then -1 (never an overrun) */
    for (;;) {
        sr = rly_query_next(src, size, &spos, small, size / 2, &sused, &p);
        if (sr != 1)
            break;
        CHECK(sn < n && same(p.name, streamed[sn].name) && same(p.value, streamed[sn].value) && sused <= size / 2);
        ++sn;
    }
    CHECK(sr == -1 || (sr == 0 && r == 0 && sn == n));

    /* written back (name=value, percent-encoded, joined by '&'), the parameters parse to themselves */
    if (r == 0) {
        /* at most 3 bytes per decoded byte, an '=' and an '&' per parameter; decoded again, exactly used bytes */
        if ((re = malloc(3 * used + 2 * n + 1)) == NULL || (rbuf = malloc(used != 0 ? used : 1)) == NULL)
            goto Exit;
        for (k = 0; k != n; ++k) {
            if (k != 0)
                re[relen++] = '&';
            relen = encode(re, relen, streamed[k].name);
            re[relen++] = '=';
            relen = encode(re, relen, streamed[k].value);
        }
        pos = 0;
        for (k = 0; k != n; ++k) {
            CHECK(rly_query_next(re, relen, &pos, rbuf, used, &rused, &p) == 1);
            CHECK(same(p.name, streamed[k].name) && same(p.value, streamed[k].value));
        }
        CHECK(rly_query_next(re, relen, &pos, rbuf, used, &rused, &p) == 0 && rused == used);
    }

Exit:
    free(src);
    free(buf);
    free(pbuf);
    free(small);
    free(re);
    free(rbuf);
    free(streamed);
    free(parsed);
    return 0;
}
