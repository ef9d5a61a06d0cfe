/* fuzz_callback.c: libFuzzer target for the callback parameters (rly_callback_parse) and the form-urlencoded parser */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "callback.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                                                \
    do {                                                                                                                           \
        if (!(cond))                                                                                                               \
            abort();                                                                                                               \
    } while (0)

/* s lies inside [lo, lo + cap) */
static int within(rly_str_t s, const char *lo, size_t cap)
{
    return s.base >= lo && s.len <= cap && (size_t)(s.base - lo) <= cap - s.len;
}

static void fuzz_query(const char *src, size_t size)
{
    /* a buffer of exactly the input's size (the contract: bufcap >= len is always enough), heap-allocated so that ASan
     * sees any write past it, and a small parameter array so that the "too many" path is reached */
    char *buf = malloc(size != 0 ? size : 1);
    rly_qparam_t params[8];
    int n, i;

    if (buf == NULL)
        return;
    n = rly_query_parse(src, size, buf, size, params, 8);
    CHECK(n >= -1 && n <= 8);
    for (i = 0; i < n; i++) {
        CHECK(within(params[i].name, buf, size));
        CHECK(within(params[i].value, buf, size));
        CHECK(memchr(params[i].name.base, '\0', params[i].name.len) == NULL);
        CHECK(memchr(params[i].value.base, '\0', params[i].value.len) == NULL);
    }
    if (n > 0) {
        size_t count;
        const rly_qparam_t *p = rly_query_find(params, (size_t)n, "state", &count);
        CHECK((p == NULL) == (count == 0));
    }
    /* a buffer that is too small must be refused, never overrun */
    if (size > 1)
        (void)rly_query_parse(src, size, buf, size / 2, params, 8);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *src = (const char *)data;
    rly_callback_t *cb;
    const char *errstr = NULL;
    size_t i;

    fuzz_query(src, size);

    if ((cb = malloc(sizeof(*cb))) == NULL)
        return 0;
    switch (rly_callback_parse(cb, src, size, &errstr)) {
    case RLY_CALLBACK_OK:
        CHECK(cb->state.base != NULL && cb->state.len >= 1 && cb->state.len <= RLY_STATE_MAX);
        CHECK(within(cb->state, cb->_buf, sizeof(cb->_buf)));
        for (i = 0; i < cb->state.len; i++) {
            unsigned char c = (unsigned char)cb->state.base[i];
            CHECK((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-');
        }
        CHECK((cb->code.base == NULL) != (cb->error.base == NULL));
        if (cb->code.base != NULL) {
            CHECK(cb->code.len >= 1 && cb->code.len <= RLY_CODE_MAX && within(cb->code, cb->_buf, sizeof(cb->_buf)));
            CHECK(cb->error_description.base == NULL && cb->error_uri.base == NULL);
            for (i = 0; i < cb->code.len; i++)
                CHECK(cb->code.base[i] >= 0x20 && cb->code.base[i] < 0x7f); /* VSCHAR: a space is one (RFC 6749 A.11) */
        } else {
            CHECK(cb->error.len >= 1 && cb->error.len <= RLY_ERROR_MAX && within(cb->error, cb->_buf, sizeof(cb->_buf)));
            for (i = 0; i < cb->error.len; i++)
                CHECK(cb->error.base[i] >= 0x20 && cb->error.base[i] < 0x7f && cb->error.base[i] != '"' &&
                      cb->error.base[i] != '\\');
        }
        if (cb->error_description.base != NULL)
            CHECK(cb->error_description.len <= RLY_ERROR_DESCRIPTION_MAX &&
                  within(cb->error_description, cb->_buf, sizeof(cb->_buf)));
        if (cb->error_uri.base != NULL)
            CHECK(cb->error_uri.len <= RLY_ERROR_URI_MAX && within(cb->error_uri, cb->_buf, sizeof(cb->_buf)));
        if (cb->iss.base != NULL)
            CHECK(cb->iss.len <= RLY_ISS_MAX && within(cb->iss, cb->_buf, sizeof(cb->_buf)));
        /* the extra parameters: at most 32, inside the buffer, names of the rule, no NUL; counted drops only */
        CHECK(cb->nparams <= RLY_CALLBACK_PARAMS_MAX);
        for (size_t k = 0; k != cb->nparams; ++k) {
            CHECK(within(cb->params[k].name, cb->_buf, sizeof(cb->_buf)) &&
                  within(cb->params[k].value, cb->_buf, sizeof(cb->_buf)));
            CHECK(cb->params[k].name.len >= 1 && cb->params[k].name.len <= 64);
            CHECK(memchr(cb->params[k].value.base, '\0', cb->params[k].value.len) == NULL);
            for (size_t j = 0; j != k; ++j)
                CHECK(cb->params[j].name.len != cb->params[k].name.len ||
                      memcmp(cb->params[j].name.base, cb->params[k].name.base, cb->params[k].name.len) != 0);
        }
        CHECK(cb->params_dropped <= size);
        break;
    case RLY_CALLBACK_BAD_STATE:
    case RLY_CALLBACK_BAD_REQUEST:
        CHECK(errstr != NULL && errstr[0] != '\0');
        CHECK(cb->state.base == NULL && cb->code.base == NULL && cb->error.base == NULL);
        break;
    default:
        abort();
    }
    free(cb);
    return 0;
}
