/* query.h: application/x-www-form-urlencoded parser (query strings and form bodies); no I/O, no allocation */
#ifndef RLY_QUERY_H
#define RLY_QUERY_H

#include "rly.h"

#define RLY_QUERY_PARAMS_MAX 64

typedef struct st_rly_qparam_t {
    rly_str_t name;  /* decoded, points into the caller's buffer */
    rly_str_t value; /* decoded, points into the caller's buffer */
} rly_qparam_t;

/*
 * Parses src[0..len) ('&'-separated name=value pairs, '+' is a space, %XX escapes). Empty segments ("a=1&&b=2") are skipped;
 * a name without '=' has an empty value. Decoded bytes go to buf (bufcap >= len is always enough).
 * Returns the number of parameters (>= 0), or -1 on a bad percent escape, a NUL byte after decoding, more than maxparams
 * parameters, or bufcap too small.
 */
int rly_query_parse(const char *src, size_t len, char *buf, size_t bufcap, rly_qparam_t *params, size_t maxparams);

/*
 * One parameter at a time: the next non-empty one of src from *pos (0 to start; advanced), its name and value decoded
 * into buf at *used (advanced; the decoded bytes of a whole src never exceed len). Unlike rly_query_parse, a NUL byte is
 * kept (the caller judges it) and there is no count limit. 1 found, 0 no more, -1 a bad percent escape or buf full.
 */
int rly_query_next(const char *src, size_t len, size_t *pos, char *buf, size_t bufcap, size_t *used, rly_qparam_t *param);

/* the first parameter called name (NUL-terminated) and how many there are (*count may be NULL); NULL if none */
const rly_qparam_t *rly_query_find(const rly_qparam_t *params, size_t n, const char *name, size_t *count);

#endif
