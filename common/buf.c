/* buf.c: the bounded append buffer: grows to a maximum, remembers its first error, never writes past its storage */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "buf.h"

#define BUF_FIRST 64 /* the first allocation of a growing buffer */

#define HEAP RLY_BUF__HEAP
#define FIXED RLY_BUF__FIXED
#define RAW RLY_BUF__RAW

/* the NUL's byte: 1 unless the buffer is raw */
static size_t nul_of(const rly_buf_t *b)
{
    return b->_fixed != RAW;
}

void rly_buf_init(rly_buf_t *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max < SIZE_MAX - 1 ? max : SIZE_MAX - 1;
}

void rly_buf_init_fixed(rly_buf_t *b, char *storage, size_t size)
{
    memset(b, 0, sizeof(*b));
    b->_fixed = FIXED;
    if (size != 0) {
        b->base = storage;
        b->cap = size;
        b->max = size - 1;
        b->base[0] = '\0';
    }
}

void rly_buf_init_raw(rly_buf_t *b, char *storage, size_t size)
{
    memset(b, 0, sizeof(*b));
    b->_fixed = RAW;
    b->base = size != 0 ? storage : NULL;
    b->cap = size;
    b->max = size;
}

/* room for n more bytes (and the NUL): 0, or -1 with err set */
static int grow(rly_buf_t *b, size_t n)
{
    size_t need, cap;
    char *p;

    if (b->err != RLY_BUF_OK)
        return -1;
    if (n > b->max - b->len) {
        b->err = RLY_BUF_TOO_BIG;
        return -1;
    }
    need = b->len + n + nul_of(b);
    if (need <= b->cap)
        return 0;
    if (b->_fixed != HEAP) { /* cannot happen: a fixed buffer's max fits its storage */
        b->err = RLY_BUF_TOO_BIG;
        return -1;
    }
    if ((cap = b->cap) == 0) {
        cap = need > BUF_FIRST ? need : BUF_FIRST; /* a first reserve takes what it asks for */
    } else {
        while (cap < need && cap <= SIZE_MAX / 2)
            cap *= 2;
    }
    if (cap > b->max + 1)
        cap = b->max + 1;
    if (cap < need)
        cap = need;
    if ((p = b->base == NULL ? malloc(cap) : realloc(b->base, cap)) == NULL) {
        b->err = RLY_BUF_NOMEM;
        return -1;
    }
    if (b->base == NULL)
        p[0] = '\0';
    b->base = p;
    b->cap = cap;
    return 0;
}

/* the fast path of every append: it fits the storage there is */
static inline int room_for(rly_buf_t *b, size_t n)
{
    if (b->err == RLY_BUF_OK && n <= b->max - b->len && b->len + n + nul_of(b) <= b->cap)
        return 0;
    return grow(b, n);
}

int rly_buf_reserve(rly_buf_t *b, size_t n)
{
    return room_for(b, n);
}

void rly_buf__add(rly_buf_t *b, const void *p, size_t n)
{
    if (n == 0 || room_for(b, n) != 0)
        return;
    memcpy(b->base + b->len, p, n);
    b->len += n;
    if (b->_fixed != RAW)
        b->base[b->len] = '\0';
}

void rly_buf_vaddf(rly_buf_t *b, const char *fmt, va_list ap)
{
    size_t room;
    va_list aq;
    int n;

    if (b->err != RLY_BUF_OK)
        return;
    /* first into the room there is (vsnprintf's NUL included), formatting again only after a growth */
    room = b->base != NULL ? b->cap - b->len : 0;
    va_copy(aq, ap);
    n = vsnprintf(room != 0 ? b->base + b->len : NULL, room, fmt, aq);
    va_end(aq);
    if (n < 0) {
        b->err = RLY_BUF_TOO_BIG; /* more than INT_MAX bytes */
        goto Error;
    }
    if ((size_t)n < room && (size_t)n <= b->max - b->len) {
        b->len += (size_t)n;
        return;
    }
    if (b->_fixed == RAW || grow(b, (size_t)n) != 0) {
        if (b->err == RLY_BUF_OK)
            b->err = RLY_BUF_TOO_BIG;
        goto Error;
    }
    vsnprintf(b->base + b->len, b->cap - b->len, fmt, ap);
    b->len += (size_t)n;
    return;

Error:
    /* a cut-off attempt may have overwritten the NUL after the content */
    if (b->base != NULL && b->_fixed != RAW)
        b->base[b->len] = '\0';
}

void rly_buf_addf(rly_buf_t *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    rly_buf_vaddf(b, fmt, ap);
    va_end(ap);
}

void rly_buf__commit(rly_buf_t *b, ssize_t n)
{
    if (b->err != RLY_BUF_OK || n == 0)
        return;
    /* the writer did not fit, or claims more than the room there was: an error, never an overrun */
    b->err = RLY_BUF_TOO_BIG;
    if (b->base != NULL && b->_fixed != RAW)
        b->base[b->len] = '\0';
}

void rly_buf_reset(rly_buf_t *b)
{
    b->len = 0;
    b->err = RLY_BUF_OK;
    if (b->base != NULL && b->_fixed != RAW)
        b->base[0] = '\0';
}

char *rly_buf_take(rly_buf_t *b, size_t *len)
{
    char *p;

    if (b->_fixed != HEAP)
        return NULL;
    if (b->err != RLY_BUF_OK) {
        rly_buf_free(b);
        return NULL;
    }
    if ((p = b->base) == NULL) {
        if ((p = malloc(1)) == NULL)
            return NULL;
        p[0] = '\0';
    }
    if (len != NULL)
        *len = b->len;
    b->base = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

void rly_buf_free(rly_buf_t *b)
{
    if (b->_fixed == HEAP) {
        free(b->base);
        b->base = NULL;
        b->cap = 0;
    }
    rly_buf_reset(b);
}

void rly_buf_free_wipe(rly_buf_t *b)
{
    if (b->base != NULL)
        explicit_bzero(b->base, b->cap);
    rly_buf_free(b);
}
