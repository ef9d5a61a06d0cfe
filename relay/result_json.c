/* result_json.c: the JSON result a pickup returns, written directly (byte for byte what json-c writes) */
#include <stdlib.h>
#include <string.h>
#include "jsonstr.h"
#include "result_json.h"

/*
 * The result JSON, written directly: building json-c objects for four members cost a tenth of the callback path. The
 * values are the callback's parameters, which rly_callback_parse admits only as printable ASCII; rly_json_quote escapes
 * them as json-c would (tests/unit/relay/test_result_json.c checks the bytes against json-c's).
 */
typedef struct st_jbuf_t {
    char *p;
    size_t len, cap;
} jbuf_t;

/* ,"name":"value" (without the comma for the first member); the buffer is sized for the worst case */
static void jmember(jbuf_t *b, const char *name, const char *v, size_t len)
{
    if (b->len > 1)
        b->p[b->len++] = ',';
    b->len += (size_t)rly_json_quote(b->p + b->len, b->cap - b->len, name, strlen(name));
    b->p[b->len++] = ':';
    b->len += (size_t)rly_json_quote(b->p + b->len, b->cap - b->len, v, len);
}

/* the bytes one member can take: its name (at most 17) and value quoted, a comma and a colon */
static size_t jcap(const rly_str_t *s)
{
    return s != NULL && s->base != NULL ? 2 + RLY_JSON_QUOTED_MAX(17) + RLY_JSON_QUOTED_MAX(s->len) : 0;
}

char *relay_result_json(const char *state, size_t state_len, const rly_str_t *code, const rly_str_t *iss, const rly_str_t *error,
                        const rly_str_t *error_description, const rly_str_t *error_uri, size_t *len)
{
    rly_str_t st = {state, state_len};
    size_t cap = 64 + jcap(&st) + jcap(code) + jcap(iss) + jcap(error) + jcap(error_description) + jcap(error_uri);
    jbuf_t b = {malloc(cap), 0, cap};
    if (b.p == NULL)
        return NULL;
    b.p[b.len++] = '{';
    if (code != NULL && code->base != NULL) {
        jmember(&b, "status", "authorized", 10);
        jmember(&b, "code", code->base, code->len);
        jmember(&b, "state", state, state_len);
        if (iss != NULL && iss->base != NULL)
            jmember(&b, "iss", iss->base, iss->len);
    } else {
        jmember(&b, "status", "denied", 6);
        const rly_str_t *opt[] = {error, error_description, error_uri};
        const char *names[] = {"error", "error_description", "error_uri"};
        for (size_t i = 0; i != 3; ++i)
            if (opt[i] != NULL && opt[i]->base != NULL)
                jmember(&b, names[i], opt[i]->base, opt[i]->len);
    }
    b.p[b.len++] = '}';
    b.p[b.len] = '\0';
    *len = b.len;
    return b.p;
}

