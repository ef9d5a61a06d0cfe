/* result_json.c: the JSON result a pickup returns, written directly (byte for byte what json-c writes) */
#include <stdio.h>
#include <string.h>
#include "buf.h"
#include "jsonstr.h"
#include "result_json.h"

/*
 * The result JSON, written directly: building json-c objects for four members cost a tenth of the callback path. The
 * values are the callback's parameters, which rly_callback_parse admits only as printable ASCII; rly_json_quote escapes
 * them as json-c would (tests/unit/relay/test_result_json.c checks the bytes against json-c's). The buffer is reserved
 * for the worst case once and the document is written in place into it, then committed at once.
 */

/* writes ,"name":"value" (without the comma for the first member) into dst, at most cap bytes, as rly_json_quote does:
 * the bytes written, or -1 if they do not fit */
static ssize_t jmember(char *dst, size_t cap, int first, const char *name, const char *v, size_t len)
{
    size_t n = 0;
    ssize_t q;

    if (cap < 2) /* a comma and a colon at least */
        return -1;
    if (!first)
        dst[n++] = ',';
    if ((q = rly_json_quote(dst + n, cap - n - 1, name, strlen(name))) < 0)
        return -1;
    n += (size_t)q;
    dst[n++] = ':';
    if ((q = rly_json_quote(dst + n, cap - n, v, len)) < 0)
        return -1;
    return (ssize_t)(n + (size_t)q);
}

/* the bytes one member can take: its name (at most 17) and value quoted, a comma and a colon */
static size_t jcap(const rly_str_t *s)
{
    return s != NULL && s->base != NULL ? 2 + RLY_JSON_QUOTED_MAX(17) + RLY_JSON_QUOTED_MAX(s->len) : 0;
}

/* ,"params":{"name":"value",...} and ,"params_dropped":N when there are any; the bytes written, or -1 */
static ssize_t jparams(char *dst, size_t cap, const relay_result_params_t *extra)
{
    size_t n = 0;
    ssize_t q;
    if (extra == NULL)
        return 0;
    if (extra->n != 0) {
        static const char head[] = ",\"params\":{";
        if (cap < sizeof(head))
            return -1;
        memcpy(dst, head, sizeof(head) - 1);
        n = sizeof(head) - 1;
        for (size_t i = 0; i != extra->n; ++i) {
            const rly_qparam_t *p = &extra->params[i];
            if (i != 0 && n < cap)
                dst[n++] = ',';
            if ((q = rly_json_quote(dst + n, cap - n, p->name.base, p->name.len)) < 0 || (size_t)q + 1 > cap - n)
                return -1;
            n += (size_t)q;
            dst[n++] = ':';
            if ((q = rly_json_quote(dst + n, cap - n, p->value.base, p->value.len)) < 0)
                return -1;
            n += (size_t)q;
        }
        if (n == cap)
            return -1;
        dst[n++] = '}';
    }
    if (extra->dropped != 0) {
        int m = snprintf(dst + n, cap - n, ",\"params_dropped\":%zu", extra->dropped);
        if (m < 0 || (size_t)m >= cap - n)
            return -1;
        n += (size_t)m;
    }
    return (ssize_t)n;
}

/* the bytes jparams can take */
static size_t jparams_cap(const relay_result_params_t *extra)
{
    size_t cap = 0;
    if (extra == NULL)
        return 0;
    cap += 16 + 32; /* ,"params":{ } and ,"params_dropped":N */
    for (size_t i = 0; i != extra->n; ++i)
        cap += 2 + RLY_JSON_QUOTED_MAX(extra->params[i].name.len) + RLY_JSON_QUOTED_MAX(extra->params[i].value.len);
    return cap;
}

char *relay_result_json(const char *state, size_t state_len, const rly_str_t *code, const rly_str_t *iss, const rly_str_t *error,
                        const rly_str_t *error_description, const rly_str_t *error_uri, const relay_result_params_t *extra,
                        size_t *len)
{
    rly_str_t st = {state, state_len};
    size_t cap =
        64 + jcap(&st) + jcap(code) + jcap(iss) + jcap(error) + jcap(error_description) + jcap(error_uri) + jparams_cap(extra);
    const rly_str_t *opt[] = {error, error_description, error_uri};
    const char *names[] = {"error", "error_description", "error_uri"};
    rly_buf_t b;
    size_t room, n = 0;
    ssize_t m = 0;
    char *p;

    rly_buf_init(&b, cap);
    if (rly_buf_reserve(&b, cap) != 0) /* the one allocation */
        return NULL;
    /* the whole document written in place into the room reserved, then committed at once */
    p = rly_buf_tail(&b, &room);
    p[n++] = '{';
    if (code != NULL && code->base != NULL) {
        if (m >= 0 && (m = jmember(p + n, room - n, 1, "status", "authorized", 10)) >= 0)
            n += (size_t)m;
        if (m >= 0 && (m = jmember(p + n, room - n, 0, "code", code->base, code->len)) >= 0)
            n += (size_t)m;
        if (m >= 0 && (m = jmember(p + n, room - n, 0, "state", state, state_len)) >= 0)
            n += (size_t)m;
        if (m >= 0 && iss != NULL && iss->base != NULL && (m = jmember(p + n, room - n, 0, "iss", iss->base, iss->len)) >= 0)
            n += (size_t)m;
    } else {
        if ((m = jmember(p + n, room - n, 1, "status", "denied", 6)) >= 0)
            n += (size_t)m;
        for (size_t i = 0; i != 3 && m >= 0; ++i)
            if (opt[i] != NULL && opt[i]->base != NULL &&
                (m = jmember(p + n, room - n, 0, names[i], opt[i]->base, opt[i]->len)) >= 0)
                n += (size_t)m;
        /* RFC 9207: a client checks iss on errors too */
        if (m >= 0 && iss != NULL && iss->base != NULL && (m = jmember(p + n, room - n, 0, "iss", iss->base, iss->len)) >= 0)
            n += (size_t)m;
    }
    if (m >= 0 && (m = jparams(p + n, room - n, extra)) >= 0)
        n += (size_t)m;
    if (m >= 0 && n < room)
        p[n++] = '}';
    else
        m = -1; /* cannot happen: the room is the worst case */
    rly_buf_commit(&b, m >= 0 ? (ssize_t)n : -1);
    return rly_buf_take(&b, len); /* hands the reserved storage over: no copy; NULL after an error */
}

char *relay_locked_json(const char *locked, size_t locked_len, size_t *len)
{
    static const char head[] = "{\"status\":\"locked\",\"locked\":\"";
    rly_buf_t b;
    /* locked is base64url: nothing in it needs escaping */
    rly_buf_init(&b, sizeof(head) + locked_len + 2);
    rly_buf_add(&b, head, sizeof(head) - 1);
    rly_buf_add(&b, locked, locked_len);
    rly_buf_add(&b, "\"}", 2);
    return rly_buf_take(&b, len);
}
