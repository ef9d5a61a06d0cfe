/* session_req.h: validation of the POST /v1/sessions request body; no I/O */
#ifndef RLY_SESSION_REQ_H
#define RLY_SESSION_REQ_H

#include "rly.h"

typedef struct st_rly_session_policy_t {
    int allow_http_loopback;     /* dev mode: http authorization servers on loopback */
    unsigned ttl_max;            /* session_ttl_max */
    const char *const *allow_as; /* entries (rly_url_as_entry_ok), lower-case; NULL / 0: any https AS */
    size_t allow_as_count;
    const char *const *allow_client_id; /* (1.1) OAuth client ids served, compared exactly; NULL / 0: any */
    size_t allow_client_id_count;
    int allow_unbound; /* (1.1) also accept version-1 sessions (no authorize_params) */
} rly_session_policy_t;

/* sizes of the 1.1 members' storage: every name and value of authorize_params with its NUL */
#define RLY_AUTHORIZE_PARAMS_BUF (RLY_AUTHORIZE_PARAMS_MAX + 2 * RLY_AUTHORIZE_PARAMS_COUNT_MAX)

/*
 * A checked request. Large (about 10 KiB) and self-referencing: params[] point into params_buf of the same struct, so
 * pass it by pointer and do not copy it by value (a copy's params would point into the original).
 */
typedef struct st_rly_session_req_t {
    char as_id[RLY_AS_ID_MAX + 1]; /* the anonymous AS identifier: the allow-list entry that matched, or "unlisted" */
    char return_uri[RLY_RETURN_URI_MAX + 1];
    size_t return_uri_len; /* 0: none given (never for a bound session) */
    int has_seal_key;
    uint8_t seal_key[32];
    unsigned ttl;
    /* protocol 1.1 */
    int bound;                                          /* authorize_params present: a bound flow; the members below are set */
    char authorization_server[RLY_URL_MAX + 1];         /* the URL as given (JSON-unescaped), for the authorize URL */
    size_t authorization_server_len;                    /* set for every accepted request, bound or not */
    rly_param_t params[RLY_AUTHORIZE_PARAMS_COUNT_MAX]; /* authorize_params in the order of the body; into params_buf */
    size_t nparams;                                     /* 0 unless bound; then >= 1 (client_id is required) */
    char params_buf[RLY_AUTHORIZE_PARAMS_BUF];          /* name NUL value NUL, one parameter after the other */
    size_t params_buf_len;                              /* bytes of params_buf in use */
    char label[RLY_LABEL_MAX + 1];                      /* "" when absent */
    size_t label_len;                                   /* 0 when absent */
} rly_session_req_t;

typedef enum en_rly_session_req_status_t {
    RLY_SREQ_OK = 0,
    RLY_SREQ_INVALID,            /* 400 invalid_request */
    RLY_SREQ_NOT_ALLOWED,        /* 403 authorization_server_not_allowed */
    RLY_SREQ_CLIENT_NOT_ALLOWED, /* 403 client_not_allowed (1.1) */
} rly_session_req_status_t;

/*
 * Parses body (strict JSON, UTF-8 validated, depth at most RLY_JSON_DEPTH_MAX, a top-level object, len <=
 * RLY_SESSION_BODY_MAX else INVALID). Members: authorization_server (string, required), return_uri (string), seal_key
 * (string, base64url of exactly 32 bytes), ttl (integer, RLY_TTL_MIN..ttl_max; default min(RLY_TTL_DEFAULT, ttl_max));
 * a member given as JSON null counts as absent; unknown members ignored; a duplicated member is INVALID.
 *
 * Protocol 1.1 (protocol.md, "Session creation, 1.1 members"):
 *  - authorize_params (object): names [A-Za-z0-9._-]{1,64}, string values of printable ASCII (0x20..0x7e), at most
 *    RLY_AUTHORIZE_PARAMS_COUNT_MAX members and RLY_AUTHORIZE_PARAMS_MAX bytes of names and values in all, no name twice;
 *    client_id required and non-empty; redirect_uri, state, response_type refused (in any letter case, as are client_id
 *    and response_mode in another case than lower); response_mode, if present, query or form_post. Its presence makes the
 *    session bound (out->bound). Absent: a version-1 session exactly as before when pol->allow_unbound, else INVALID.
 *  - a bound session requires return_uri, without userinfo and without a query (not even an empty one);
 *  - label (string, bound sessions only; ignored otherwise like any unknown member): 1..RLY_LABEL_MAX bytes of valid UTF-8
 *    without characters of the general categories Cc, Cf, Zl, Zp.
 * Malformed requests are INVALID first; then the allow-lists: NOT_ALLOWED (authorization server), then
 * CLIENT_NOT_ALLOWED (client_id not in pol->allow_client_id, when that list is not empty).
 * On success *out is filled (see rly_session_req_t); on failure it is all zeroes.
 * *errstr: a fixed English text for error_description (never echoes input).
 */
rly_session_req_status_t rly_session_req_parse(const char *body, size_t len, const rly_session_policy_t *pol,
                                               rly_session_req_t *out, const char **errstr);

#endif
