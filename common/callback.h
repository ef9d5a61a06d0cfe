/* callback.h: validation of the authorization server's redirect (RFC 6749 section 4.1.2, RFC 9207); no I/O */
#ifndef RLY_CALLBACK_H
#define RLY_CALLBACK_H

#include "query.h"

#define RLY_CALLBACK_PARAMS_MAX 32 /* extra parameters carried in a result */

typedef struct st_rly_callback_t {
    rly_str_t state;             /* always set on success */
    rly_str_t code;              /* set for an authorized result (base == NULL otherwise) */
    rly_str_t error;             /* set for a denied result */
    rly_str_t error_description; /* optional */
    rly_str_t error_uri;         /* optional */
    rly_str_t iss;               /* optional, with code or error */
    /* every other parameter (protocol.md "Callback parameters beyond RFC 6749"), exactly as decoded, in query order */
    rly_qparam_t params[RLY_CALLBACK_PARAMS_MAX];
    size_t nparams;
    size_t params_dropped; /* occurrences left out: a repeated name (each), a bad name or value, any beyond the first 32 */
    /* storage for the decoded parameters; the rly_str_t above point into it */
    char _buf[RLY_QUERY_MAX];
} rly_callback_t;

typedef enum en_rly_callback_status_t {
    RLY_CALLBACK_OK = 0,
    RLY_CALLBACK_BAD_STATE,   /* state missing, repeated, longer than RLY_STATE_MAX, or outside [A-Za-z0-9_-] */
    RLY_CALLBACK_BAD_REQUEST, /* anything else: bad encoding, code and error both or neither, repeated, too long, bad charset */
} rly_callback_status_t;

/*
 * Parses and checks a query string or form body (len <= RLY_QUERY_MAX, else RLY_CALLBACK_BAD_REQUEST).
 * Rules: state exactly once; exactly one of code / error, each at most once; code 1..RLY_CODE_MAX bytes of VSCHAR
 * (0x20-0x7e, RFC 6749 appendix A.11); error 1..RLY_ERROR_MAX bytes of the RFC 6749 error charset (%x20-21 / %x23-5B / %x5D-7E);
 * error_description at most once, at most RLY_ERROR_DESCRIPTION_MAX bytes, same charset; error_uri at most once, at most
 * RLY_ERROR_URI_MAX bytes of visible ASCII; iss at most once, at most RLY_ISS_MAX bytes of visible ASCII;
 * error_description / error_uri only with error. Every other parameter is an extra one: the first RLY_CALLBACK_PARAMS_MAX
 * occurrences in query order are candidates, and a candidate is kept in params when its name is [A-Za-z0-9._-]{1,64}, its
 * value UTF-8 without control characters (Cc), and its name occurs only once in the whole query; every other occurrence
 * is counted in params_dropped. There is no limit on the number of parameters but the length.
 * On failure *errstr is a fixed English text naming the rule broken (never echoes input).
 */
rly_callback_status_t rly_callback_parse(rly_callback_t *cb, const char *src, size_t len, const char **errstr);
/* wipes what a parse of len source bytes decoded (decoded text is never longer than its source): far cheaper than
 * cleansing the whole structure */
void rly_callback_wipe(rly_callback_t *cb, size_t len);

#endif
