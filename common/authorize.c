/* authorize.c: the authorize URL of a 1.1 flow: the authorization server's URL, the instance's parameters, then ours */
#include "authorize.h"

#include <string.h>

#include "buf.h"

static int is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == '~';
}

/* percent-encodes s (len bytes) onto b, in place after its content (room reserved by the caller) */
static void add_encoded(rly_buf_t *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t room, n = 0;
    char *t = rly_buf_tail(b, &room);

    if (t == NULL)
        return;
    for (size_t i = 0; i != len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (room - n < 3) {
            rly_buf_commit(b, -1);
            return;
        }
        if (is_unreserved(c)) {
            t[n++] = (char)c;
        } else {
            t[n++] = '%';
            t[n++] = hex[c >> 4];
            t[n++] = hex[c & 15];
        }
    }
    rly_buf_commit(b, (ssize_t)n);
}

/* name=value, both percent-encoded, after sep (if not NUL) */
static void add_param(rly_buf_t *b, char sep, const char *name, size_t name_len, const char *value, size_t value_len)
{
    if (sep != '\0')
        rly_buf_addc(b, sep);
    add_encoded(b, name, name_len);
    rly_buf_addc(b, '=');
    add_encoded(b, value, value_len);
}

char *rly_authorize_url(const char *as_url, size_t as_len, const rly_param_t *params, size_t nparams, const char *redirect_uri,
                        const char *state, size_t *len)
{
    size_t ru_len = strlen(redirect_uri), st_len = strlen(state), need = as_len;
    char sep = '?';
    rly_buf_t b;

    /* the worst case (every byte encoded; a separator and '=' a parameter), reserved at once: one allocation, no copy left
     * behind by a growth */
    for (size_t i = 0; i != nparams; i++) {
        if (params[i].name_len > RLY_AUTHORIZE_URL_MAX || params[i].value_len > RLY_AUTHORIZE_URL_MAX)
            return NULL;
        need += 3 * (params[i].name_len + params[i].value_len) + 2;
        if (need > RLY_AUTHORIZE_URL_MAX)
            return NULL;
    }
    if (as_len > RLY_AUTHORIZE_URL_MAX || ru_len > RLY_AUTHORIZE_URL_MAX || st_len > RLY_AUTHORIZE_URL_MAX)
        return NULL;
    need += sizeof("&response_type=code&redirect_uri=&state=") - 1 + 3 * (ru_len + st_len);
    if (need > RLY_AUTHORIZE_URL_MAX)
        return NULL;
    rly_buf_init(&b, need);
    if (rly_buf_reserve(&b, need) != 0)
        return NULL;

    rly_buf_add(&b, as_url, as_len);
    if (memchr(as_url, '?', as_len) != NULL)
        sep = as_url[as_len - 1] == '?' || as_url[as_len - 1] == '&' ? '\0' : '&';
    for (size_t i = 0; i != nparams; i++) {
        add_param(&b, sep, params[i].name, params[i].name_len, params[i].value, params[i].value_len);
        sep = '&';
    }
    add_param(&b, sep, "response_type", sizeof("response_type") - 1, "code", 4);
    add_param(&b, '&', "redirect_uri", sizeof("redirect_uri") - 1, redirect_uri, ru_len);
    add_param(&b, '&', "state", sizeof("state") - 1, state, st_len);
    return rly_buf_take(&b, len); /* NULL, and freed, if anything did not fit */
}
