/* callback.c: validation of the authorization server's redirect parameters (RFC 6749 section 4.1.2, RFC 9207) */
#include <string.h>

#include <openssl/crypto.h>

#include "callback.h"

/* state: [A-Za-z0-9_-] */
static int is_state_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* visible ASCII: %x21-7E */
static int is_vchar(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e;
}

/* RFC 6749 error, error_description: %x20-21 / %x23-5B / %x5D-7E (no '"', no '\') */
/* RFC 6749 appendix A.11: code = 1*VSCHAR, VSCHAR = %x20-7E (space included) */
static int is_vschar(unsigned char c)
{
    return c >= 0x20 && c <= 0x7e;
}

static int is_error_char(unsigned char c)
{
    return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\';
}

static int all_chars(rly_str_t s, int (*ok)(unsigned char))
{
    size_t i;

    for (i = 0; i != s.len; i++)
        if (!ok((unsigned char)s.base[i]))
            return 0;
    return 1;
}

/*
 * Looks up an optional parameter: 0 absent, 1 present once with minlen..maxlen bytes all accepted by ok (stored in *out),
 * -1 repeated, too short or long, or a byte outside the charset.
 */
static int optional_param(const rly_callback_t *cb, size_t n, const char *name, size_t minlen, size_t maxlen,
                          int (*ok)(unsigned char), rly_str_t *out)
{
    const rly_qparam_t *p;
    size_t count;

    if ((p = rly_query_find(cb->_params, n, name, &count)) == NULL)
        return 0;
    if (count != 1 || p->value.len < minlen || p->value.len > maxlen || !all_chars(p->value, ok))
        return -1;
    *out = p->value;
    return 1;
}

/* the result fields only: _params and _buf are large and overwritten by the parse anyway */
static void clear_results(rly_callback_t *cb)
{
    memset(&cb->state, 0, sizeof(cb->state));
    memset(&cb->code, 0, sizeof(cb->code));
    memset(&cb->error, 0, sizeof(cb->error));
    memset(&cb->error_description, 0, sizeof(cb->error_description));
    memset(&cb->error_uri, 0, sizeof(cb->error_uri));
    memset(&cb->iss, 0, sizeof(cb->iss));
}

rly_callback_status_t rly_callback_parse(rly_callback_t *cb, const char *src, size_t len, const char **errstr)
{
    rly_callback_status_t ret = RLY_CALLBACK_BAD_REQUEST;
    int parsed, has_code, has_error, r;
    size_t n;

    clear_results(cb);

    if (len > RLY_QUERY_MAX) {
        *errstr = "the callback parameters are too long";
        goto Error;
    }
    if ((parsed = rly_query_parse(src, len, cb->_buf, sizeof(cb->_buf), cb->_params, RLY_QUERY_PARAMS_MAX)) < 0) {
        *errstr = "the callback parameters are badly encoded or too many";
        goto Error;
    }
    n = (size_t)parsed;

    if ((r = optional_param(cb, n, "state", 1, RLY_STATE_MAX, is_state_char, &cb->state)) != 1) {
        *errstr = r == 0 ? "the state parameter is missing" : "the state parameter is repeated, too long or malformed";
        ret = RLY_CALLBACK_BAD_STATE;
        goto Error;
    }

    if ((has_code = optional_param(cb, n, "code", 1, RLY_CODE_MAX, is_vschar, &cb->code)) < 0) {
        *errstr = "the code parameter is repeated, empty, too long or has invalid characters";
        goto Error;
    }
    if ((has_error = optional_param(cb, n, "error", 1, RLY_ERROR_MAX, is_error_char, &cb->error)) < 0) {
        *errstr = "the error parameter is repeated, empty, too long or has invalid characters";
        goto Error;
    }
    if (has_code == has_error) {
        *errstr = has_code ? "both code and error are present" : "neither code nor error is present";
        goto Error;
    }
    if ((r = optional_param(cb, n, "error_description", 0, RLY_ERROR_DESCRIPTION_MAX, is_error_char, &cb->error_description)) < 0) {
        *errstr = "the error_description parameter is repeated, too long or has invalid characters";
        goto Error;
    }
    if (r == 1 && !has_error) {
        *errstr = "error_description is present without error";
        goto Error;
    }
    if ((r = optional_param(cb, n, "error_uri", 0, RLY_ERROR_URI_MAX, is_vchar, &cb->error_uri)) < 0) {
        *errstr = "the error_uri parameter is repeated, too long or has invalid characters";
        goto Error;
    }
    if (r == 1 && !has_error) {
        *errstr = "error_uri is present without error";
        goto Error;
    }
    if (optional_param(cb, n, "iss", 0, RLY_ISS_MAX, is_vchar, &cb->iss) < 0) {
        *errstr = "the iss parameter is repeated, too long or has invalid characters";
        goto Error;
    }
    return RLY_CALLBACK_OK;

Error:
    clear_results(cb);
    return ret;
}

void rly_callback_wipe(rly_callback_t *cb, size_t len)
{
    OPENSSL_cleanse(cb->_buf, len < sizeof(cb->_buf) ? len : sizeof(cb->_buf));
    clear_results(cb);
}
