/* buf.h: one bounded append buffer (curl's dynbuf): a hard maximum and a sticky error, for logs, metrics, JSON, URLs */
#ifndef RLY_BUF_H
#define RLY_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/types.h>

/*
 * A buffer grows (malloc/realloc) up to max bytes of content; an append that would pass max, or that fails to allocate,
 * sets err, and every later append is a no-op: check once at the end. The content is NUL-terminated whenever base is not
 * NULL (the NUL is not counted in len and not in max). Initialize with rly_buf_init, or point it at caller storage with
 * rly_buf_init_fixed (then it never allocates: max is that storage's size minus one for the NUL) or rly_buf_init_raw
 * (never allocates and keeps no NUL: max is the whole size, for counted bytes such as a line handed to write(2)).
 * A buffer of all zeroes is a valid empty buffer with max 0.
 */
typedef struct st_rly_buf_t {
    char *base;
    size_t len;
    size_t cap; /* allocated bytes (including the NUL's) */
    size_t max; /* content limit */
    int err;    /* RLY_BUF_OK, or why appends stopped */
    int _fixed; /* whose storage: RLY_BUF__HEAP, RLY_BUF__FIXED (the caller's) or RLY_BUF__RAW (the caller's, no NUL) */
} rly_buf_t;

enum { RLY_BUF_OK = 0, RLY_BUF_TOO_BIG, RLY_BUF_NOMEM };
enum { RLY_BUF__HEAP = 0, RLY_BUF__FIXED, RLY_BUF__RAW };

void rly_buf_init(rly_buf_t *b, size_t max);
void rly_buf_init_fixed(rly_buf_t *b, char *storage, size_t size);
void rly_buf_init_raw(rly_buf_t *b, char *storage, size_t size);
/* makes room for n more bytes now (so later appends of that much cannot fail); 0 / -1 (err set) */
int rly_buf_reserve(rly_buf_t *b, size_t n);
static inline void rly_buf_add(rly_buf_t *b, const void *p, size_t n);
static inline void rly_buf_adds(rly_buf_t *b, const char *s);
static inline void rly_buf_addc(rly_buf_t *b, char c);
/* printf-style; on a raw buffer it needs room for the NUL vsnprintf writes after the text */
__attribute__((format(printf, 2, 3))) void rly_buf_addf(rly_buf_t *b, const char *fmt, ...);
__attribute__((format(printf, 2, 0))) void rly_buf_vaddf(rly_buf_t *b, const char *fmt, va_list ap);
/*
 * For writers that format in place (rly_json_quote, percent-encoding): the room after the content that is there now, in
 * *room (not counting the NUL's byte; reserve first to have more), or NULL with *room 0 when err is set or nothing is
 * allocated. Then rly_buf_commit with the bytes written there (at most *room), or a negative n when they did not fit,
 * which sets err (RLY_BUF_TOO_BIG).
 */
static inline char *rly_buf_tail(rly_buf_t *b, size_t *room);
static inline void rly_buf_commit(rly_buf_t *b, ssize_t n);
/* back to empty, keeping the storage and clearing err */
void rly_buf_reset(rly_buf_t *b);
/* the content, malloc'ed and NUL-terminated: the caller owns it and frees it; the buffer is left empty (as after init).
 * NULL if err is set (the buffer is freed then too) or for a fixed buffer. No copy: the buffer's own storage is handed
 * over (an empty buffer that never allocated returns a malloc'ed "") */
char *rly_buf_take(rly_buf_t *b, size_t *len);
/* frees what the buffer allocated (wiping nothing); the buffer is left empty, with its max */
void rly_buf_free(rly_buf_t *b);
/* rly_buf_free after wiping the whole storage (cap bytes; a fixed one too): for buffers that held secrets. Storage given
 * up by an earlier growth (realloc) is not wiped: reserve the worst case first where that matters */
void rly_buf_free_wipe(rly_buf_t *b);

/* the appends are inline (the log line and the result JSON are hot paths): what fits is done here, the rest (growth,
 * errors) goes to rly_buf__add and rly_buf__commit, which are not for direct use */
void rly_buf__add(rly_buf_t *b, const void *p, size_t n);
void rly_buf__commit(rly_buf_t *b, ssize_t n);

static inline void rly_buf_add(rly_buf_t *b, const void *p, size_t n)
{
    if (b->err != RLY_BUF_OK || n == 0 || n > b->max - b->len || b->len + n + (b->_fixed != RLY_BUF__RAW) > b->cap) {
        rly_buf__add(b, p, n);
        return;
    }
    memcpy(b->base + b->len, p, n);
    b->len += n;
    if (b->_fixed != RLY_BUF__RAW)
        b->base[b->len] = '\0';
}

static inline void rly_buf_adds(rly_buf_t *b, const char *s)
{
    rly_buf_add(b, s, strlen(s));
}

static inline void rly_buf_addc(rly_buf_t *b, char c)
{
    rly_buf_add(b, &c, 1);
}

static inline char *rly_buf_tail(rly_buf_t *b, size_t *room)
{
    size_t r;

    if (b->err != RLY_BUF_OK || b->base == NULL) {
        *room = 0;
        return NULL;
    }
    r = b->cap - b->len - (b->_fixed != RLY_BUF__RAW);
    *room = r < b->max - b->len ? r : b->max - b->len;
    return b->base + b->len;
}

static inline void rly_buf_commit(rly_buf_t *b, ssize_t n)
{
    if (b->err != RLY_BUF_OK || n <= 0 || b->base == NULL || (size_t)n > b->max - b->len ||
        b->len + (size_t)n + (b->_fixed != RLY_BUF__RAW) > b->cap) {
        rly_buf__commit(b, n);
        return;
    }
    b->len += (size_t)n;
    if (b->_fixed != RLY_BUF__RAW)
        b->base[b->len] = '\0';
}

#endif
