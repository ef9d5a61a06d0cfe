/* callback.c: validation of the authorization server's redirect parameters (RFC 6749 section 4.1.2, RFC 9207) */
#include <string.h>

#include <openssl/crypto.h>

#include "callback.h"
#include "text.h"

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

/* the parameters of RFC 6749 and RFC 9207 the relay reads itself; every other one is an extra parameter */
enum { P_STATE, P_CODE, P_ERROR, P_ERROR_DESCRIPTION, P_ERROR_URI, P_ISS, P_KNOWN };
static const char *const known_names[P_KNOWN] = {"state", "code", "error", "error_description", "error_uri", "iss"};

typedef struct st_seen_t {
    rly_str_t first[P_KNOWN]; /* each known parameter's first value */
    size_t count[P_KNOWN];
} seen_t;

/*
 * A known parameter: 0 absent, 1 present once with minlen..maxlen bytes all accepted by ok (stored in *out), -1 repeated,
 * too short or long, or a byte outside the charset.
 */
static int optional_param(const seen_t *seen, int which, size_t minlen, size_t maxlen, int (*ok)(unsigned char), rly_str_t *out)
{
    rly_str_t v = seen->first[which];
    if (seen->count[which] == 0)
        return 0;
    if (seen->count[which] != 1 || v.len < minlen || v.len > maxlen || !all_chars(v, ok))
        return -1;
    *out = v;
    return 1;
}

static int same(rly_str_t a, rly_str_t b)
{
    return a.len == b.len && memcmp(a.base, b.base, a.len) == 0;
}

/* reads every parameter: the known ones into seen, the extra ones into cb->params (0 / -1 badly encoded) */
static int read_params(rly_callback_t *cb, const char *src, size_t len, seen_t *seen)
{
    unsigned char bad[RLY_CALLBACK_PARAMS_MAX], repeated[RLY_CALLBACK_PARAMS_MAX];
    rly_qparam_t p;
    size_t pos = 0, used = 0, ncand = 0, k;
    int r;

    while ((r = rly_query_next(src, len, &pos, cb->_buf, sizeof(cb->_buf), &used, &p)) == 1) {
        for (k = 0; k != P_KNOWN && !(p.name.len == strlen(known_names[k]) && memcmp(p.name.base, known_names[k], p.name.len) == 0);
             ++k)
            ;
        if (k != P_KNOWN) {
            if (seen->count[k]++ == 0)
                seen->first[k] = p.value;
            continue;
        }
        /* an extra parameter: a candidate while there is room, else dropped; a repeated name spoils every occurrence */
        for (size_t j = 0; j != ncand; ++j)
            if (same(cb->params[j].name, p.name))
                repeated[j] = 1;
        if (ncand == RLY_CALLBACK_PARAMS_MAX) {
            cb->params_dropped++;
            continue;
        }
        cb->params[ncand] = p;
        bad[ncand] =
            !rly_text_is_param_name(p.name.base, p.name.len) || !rly_text_is_utf8_without_controls(p.value.base, p.value.len);
        repeated[ncand] = 0;
        for (size_t j = 0; j != ncand; ++j)
            if (same(cb->params[j].name, p.name))
                repeated[ncand] = 1;
        ncand++;
    }
    if (r < 0)
        return -1;
    for (size_t j = 0; j != ncand; ++j) {
        if (bad[j] || repeated[j])
            cb->params_dropped++;
        else
            cb->params[cb->nparams++] = cb->params[j];
    }
    return 0;
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
    cb->nparams = 0;
    cb->params_dropped = 0;
}

rly_callback_status_t rly_callback_parse(rly_callback_t *cb, const char *src, size_t len, const char **errstr)
{
    rly_callback_status_t ret = RLY_CALLBACK_BAD_REQUEST;
    int has_code, has_error, r;
    seen_t seen;

    clear_results(cb);
    memset(&seen, 0, sizeof(seen));

    if (len > RLY_QUERY_MAX) {
        *errstr = "the callback parameters are too long";
        goto Error;
    }
    if (read_params(cb, src, len, &seen) != 0) {
        *errstr = "the callback parameters are badly encoded";
        goto Error;
    }

    if ((r = optional_param(&seen, P_STATE, 1, RLY_STATE_MAX, is_state_char, &cb->state)) != 1) {
        *errstr = r == 0 ? "the state parameter is missing" : "the state parameter is repeated, too long or malformed";
        ret = RLY_CALLBACK_BAD_STATE;
        goto Error;
    }

    if ((has_code = optional_param(&seen, P_CODE, 1, RLY_CODE_MAX, is_vschar, &cb->code)) < 0) {
        *errstr = "the code parameter is repeated, empty, too long or has invalid characters";
        goto Error;
    }
    if ((has_error = optional_param(&seen, P_ERROR, 1, RLY_ERROR_MAX, is_error_char, &cb->error)) < 0) {
        *errstr = "the error parameter is repeated, empty, too long or has invalid characters";
        goto Error;
    }
    if (has_code == has_error) {
        *errstr = has_code ? "both code and error are present" : "neither code nor error is present";
        goto Error;
    }
    if ((r = optional_param(&seen, P_ERROR_DESCRIPTION, 0, RLY_ERROR_DESCRIPTION_MAX, is_error_char, &cb->error_description)) < 0) {
        *errstr = "the error_description parameter is repeated, too long or has invalid characters";
        goto Error;
    }
    if (r == 1 && !has_error) {
        *errstr = "error_description is present without error";
        goto Error;
    }
    if ((r = optional_param(&seen, P_ERROR_URI, 0, RLY_ERROR_URI_MAX, is_vchar, &cb->error_uri)) < 0) {
        *errstr = "the error_uri parameter is repeated, too long or has invalid characters";
        goto Error;
    }
    if (r == 1 && !has_error) {
        *errstr = "error_uri is present without error";
        goto Error;
    }
    if (optional_param(&seen, P_ISS, 0, RLY_ISS_MAX, is_vchar, &cb->iss) < 0) {
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
