/* jsonstr.h: one JSON string literal, quoted and escaped, for the writers that build JSON by hand (log lines, results) */
#ifndef RLY_JSONSTR_H
#define RLY_JSONSTR_H

#include <stddef.h>
#include <sys/types.h>

/* the most bytes rly_json_quote writes for len input bytes */
#define RLY_JSON_QUOTED_MAX(len) (2 + 6 * (len))

/*
 * Writes "src" (len bytes) as a JSON string into dst, at most cap bytes, no NUL: '"' and '\\' escaped, \b \f \n \r \t
 * as such, other controls and DEL as \u00XX (json-c's escapes, plus DEL). Returns the bytes written, or -1 (dst
 * partly written) if they do not fit.
 */
ssize_t rly_json_quote(char *dst, size_t cap, const char *src, size_t len);

#endif
