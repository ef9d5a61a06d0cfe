/* buf.h: one bounded append buffer (curl's dynbuf): a hard maximum and a sticky error, for logs, metrics, JSON, URLs */
#ifndef RLY_BUF_H
#define RLY_BUF_H

#include <stdarg.h>
#include <stddef.h>

/*
 * A buffer grows (malloc/realloc) up to max bytes of content; an append that would pass max, or that fails to allocate,
 * sets err, and every later append is a no-op: check once at the end. The content is NUL-terminated whenever base is not
 * NULL (the NUL is not counted in len and not in max). Initialize with rly_buf_init, or point it at caller storage with
 * rly_buf_init_fixed (then it never allocates: max is that storage's size minus one for the NUL).
 */
typedef struct st_rly_buf_t {
    char *base;
    size_t len;
    size_t cap; /* allocated bytes (including the NUL's) */
    size_t max; /* content limit */
    int err;    /* RLY_BUF_OK, or why appends stopped */
    int _fixed; /* base is the caller's storage */
} rly_buf_t;

enum { RLY_BUF_OK = 0, RLY_BUF_TOO_BIG, RLY_BUF_NOMEM };

void rly_buf_init(rly_buf_t *b, size_t max);
void rly_buf_init_fixed(rly_buf_t *b, char *storage, size_t size);
/* makes room for n more bytes now (so later appends of that much cannot fail); 0 / -1 (err set) */
int rly_buf_reserve(rly_buf_t *b, size_t n);
void rly_buf_add(rly_buf_t *b, const void *p, size_t n);
void rly_buf_adds(rly_buf_t *b, const char *s);
void rly_buf_addc(rly_buf_t *b, char c);
__attribute__((format(printf, 2, 3))) void rly_buf_addf(rly_buf_t *b, const char *fmt, ...);
void rly_buf_vaddf(rly_buf_t *b, const char *fmt, va_list ap);
/* back to empty, keeping the storage and clearing err */
void rly_buf_reset(rly_buf_t *b);
/* the content, malloc'ed and NUL-terminated: the caller owns it and frees it; the buffer is left empty (as after init).
 * NULL if err is set (the buffer is freed then too) or for a fixed buffer. */
char *rly_buf_take(rly_buf_t *b, size_t *len);
/* frees what the buffer allocated (wiping nothing); the buffer is left empty */
void rly_buf_free(rly_buf_t *b);

#endif
