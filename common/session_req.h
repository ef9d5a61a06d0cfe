/* session_req.h: validation of the POST /v1/sessions request body; no I/O */
#ifndef RLY_SESSION_REQ_H
#define RLY_SESSION_REQ_H

#include "rly.h"

typedef struct st_rly_session_policy_t {
    int allow_http_loopback;     /* dev mode: http authorization servers on loopback */
    unsigned ttl_max;            /* session_ttl_max */
    const char *const *allow_as; /* lower-case hosts; NULL / 0: any https AS */
    size_t allow_as_count;
} rly_session_policy_t;

typedef struct st_rly_session_req_t {
    char as_host[RLY_AS_HOST_MAX + 1]; /* lower-cased host of authorization_server */
    char return_uri[RLY_RETURN_URI_MAX + 1];
    size_t return_uri_len; /* 0: none given */
    int has_seal_key;
    uint8_t seal_key[32];
    unsigned ttl;
} rly_session_req_t;

typedef enum en_rly_session_req_status_t {
    RLY_SREQ_OK = 0,
    RLY_SREQ_INVALID,     /* 400 invalid_request */
    RLY_SREQ_NOT_ALLOWED, /* 403 authorization_server_not_allowed */
} rly_session_req_status_t;

/*
 * Parses body (strict JSON, UTF-8 validated, depth at most RLY_JSON_DEPTH_MAX, a top-level object, len <=
 * RLY_SESSION_BODY_MAX else INVALID). Members: authorization_server (string, required), return_uri (string), seal_key
 * (string, base64url of exactly 32 bytes), ttl (integer, RLY_TTL_MIN..ttl_max; default min(RLY_TTL_DEFAULT, ttl_max));
 * a member given as JSON null counts as absent; unknown members ignored; a duplicated member is INVALID.
 * *errstr: a fixed English text for error_description (never echoes input).
 */
rly_session_req_status_t rly_session_req_parse(const char *body, size_t len, const rly_session_policy_t *pol,
                                               rly_session_req_t *out, const char **errstr);

#endif
