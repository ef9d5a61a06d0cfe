/* authorize.h: the authorization server's authorize URL the relay sends the browser to after Continue (protocol 1.1) */
#ifndef RLY_AUTHORIZE_H
#define RLY_AUTHORIZE_H

#include "rly.h"

/* the longest URL rly_authorize_url builds from inputs within the protocol's limits (an authorization_server of
 * RLY_URL_MAX, RLY_AUTHORIZE_PARAMS_MAX bytes of parameters, each byte percent-encoded, a redirect_uri of RLY_URL_MAX and a
 * state of RLY_STATE_MAX) */
#define RLY_AUTHORIZE_URL_MAX                                                                                                      \
    (RLY_URL_MAX + 3 * RLY_AUTHORIZE_PARAMS_MAX + 2 * RLY_AUTHORIZE_PARAMS_COUNT_MAX +                                             \
     sizeof("&response_type=code&redirect_uri=&state=") - 1 + 3 * (RLY_URL_MAX + RLY_STATE_MAX))

/*
 * authorization_server (as given; a '?' already in it means '&' is used, and nothing when it already ends in '?' or '&'),
 * then each param in order, then response_type=code, redirect_uri, state; names and values percent-encoded (everything
 * but RFC 3986 unreserved: ALPHA DIGIT - . _ ~; upper-case hex digits, a space as %20). redirect_uri and state are
 * NUL-terminated texts. malloc'ed NUL-terminated (caller frees), length in *len; NULL when out of memory (or when the URL
 * would be longer than RLY_AUTHORIZE_URL_MAX).
 */
char *rly_authorize_url(const char *as_url, size_t as_len, const rly_param_t *params, size_t nparams, const char *redirect_uri,
                        const char *state, size_t *len);

#endif
