/* rly.h: small types and limits shared by every module of authrelay */
#ifndef RLY_H
#define RLY_H

#include <stddef.h>
#include <stdint.h>

#define RLY_VERSION "1.0.0"
#define RLY_PROTOCOL_VERSION "1.1"

#define RLY_SESSION_ID_BYTES 16
#define RLY_SESSION_ID_LEN 22 /* base64url of 16 bytes, no padding */
#define RLY_POLL_TOKEN_BYTES 32
#define RLY_POLL_TOKEN_LEN 43 /* base64url of 32 bytes, no padding */
#define RLY_STATE_MAX 128
#define RLY_CODE_MAX 8192
#define RLY_ERROR_DESCRIPTION_MAX 1024
#define RLY_ERROR_MAX 256
#define RLY_ERROR_URI_MAX 2048
#define RLY_ISS_MAX 2048
#define RLY_RETURN_URI_MAX 2048
#define RLY_AS_HOST_MAX 253
#define RLY_AS_ID_MAX (2 + RLY_AS_HOST_MAX) /* an AS identifier: an allow-list entry ("*." and a host at most) or "unlisted" */
#define RLY_AS_UNLISTED "unlisted"          /* the AS identifier of a relay without an allow-list */
#define RLY_QUERY_MAX 16384                 /* query strings and form bodies; longer: 414 / 413 */
#define RLY_SESSION_BODY_MAX 8192           /* POST /v1/sessions body */
#define RLY_JSON_DEPTH_MAX 16
#define RLY_TTL_MIN 60
#define RLY_TTL_DEFAULT 600
#define RLY_AFTER_READ_TTL 60 /* the first 200 cuts the remaining life to this */
#define RLY_URL_MAX 2048      /* authorization_server and other URLs an instance gives */

/* protocol 1.1 session members */
#define RLY_AUTHORIZE_PARAMS_COUNT_MAX 32 /* members of authorize_params */
#define RLY_AUTHORIZE_PARAMS_MAX 4096     /* bytes of authorize_params' names and values, in all */
#define RLY_AUTHORIZE_PARAM_NAME_MAX 64   /* bytes of one name, [A-Za-z0-9._-] */
#define RLY_LABEL_MAX 64                  /* bytes of label (UTF-8) */

/* a borrowed byte string; not NUL-terminated unless said so */
typedef struct st_rly_str_t {
    const char *base;
    size_t len;
} rly_str_t;

/* one parameter of an authorize request (protocol 1.1 authorize_params): name and value, each NUL-terminated at its
 * length; borrowed from whoever holds the texts (rly_session_req_t's params_buf, the relay's meta) */
typedef struct st_rly_param_t {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} rly_param_t;

#endif
