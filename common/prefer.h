/* prefer.h: the wait preference of a Prefer header value (RFC 7240, "wait=N"); no I/O, no allocation */
#ifndef RLY_PREFER_H
#define RLY_PREFER_H

#include <stddef.h>

/*
 * The first "wait=N" preference of one Prefer header value v[0..len) (the header's bytes, not NUL-terminated): the
 * preferences and their parameters are split at ',' and ';', blanks around them skipped; the name "wait" in any case,
 * N 1 to 6 decimal digits, optionally in double quotes. Returns N (0..999999), or -1 when the value holds no such
 * preference (a "wait=" with anything else after it is skipped, not an error).
 */
long rly_prefer_wait(const char *v, size_t len);

#endif
