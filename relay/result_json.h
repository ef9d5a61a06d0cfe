/* result_json.h: the JSON result a pickup returns, written from a callback's decoded parameters */
#ifndef RELAY_RESULT_JSON_H
#define RELAY_RESULT_JSON_H

#include "query.h"
#include "rly.h"

/* the callback's extra parameters (protocol.md "Callback parameters beyond RFC 6749"), borrowed */
typedef struct st_relay_result_params_t {
    const rly_qparam_t *params;
    size_t n;
    size_t dropped;
} relay_result_params_t;

/*
 * {"status":"authorized","code","state","iss"?,"params"?,"params_dropped"?} or
 * {"status":"denied","error","error_description"?,"error_uri"?,"iss"?,"params"?,"params_dropped"?}: code non-NULL (with
 * a base) means authorized; "params" only with at least one parameter, "params_dropped" only when not zero (extra may be
 * NULL: none). Values are borrowed; the result is malloc'ed (caller wipes and frees), NUL terminated, its length in *len;
 * NULL when out of memory.
 */
char *relay_result_json(const char *state, size_t state_len, const rly_str_t *code, const rly_str_t *iss, const rly_str_t *error,
                        const rly_str_t *error_description, const rly_str_t *error_uri, const relay_result_params_t *extra,
                        size_t *len);

/* 1.1: {"status":"locked","locked":"<locked>"} for a locked text (base64url, borrowed); malloc'ed as above, NULL when
 * out of memory */
char *relay_locked_json(const char *locked, size_t locked_len, size_t *len);

#endif
