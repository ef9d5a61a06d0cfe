/* test_result_json.c: the callback's result JSON is byte for byte what json-c writes, and parses back to its values */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include "result_json.h"

/* what the relay wrote with json-c before: the oracle */
static char *with_json_c(const char *state, const rly_str_t *code, const rly_str_t *iss, const rly_str_t *error,
                         const rly_str_t *desc, const rly_str_t *uri, const relay_result_params_t *extra)
{
    json_object *o = json_object_new_object();
    if (code != NULL) {
        json_object_object_add(o, "status", json_object_new_string("authorized"));
        json_object_object_add(o, "code", json_object_new_string_len(code->base, (int)code->len));
        json_object_object_add(o, "state", json_object_new_string(state));
        if (iss != NULL)
            json_object_object_add(o, "iss", json_object_new_string_len(iss->base, (int)iss->len));
    } else {
        json_object_object_add(o, "status", json_object_new_string("denied"));
        json_object_object_add(o, "error", json_object_new_string_len(error->base, (int)error->len));
        if (desc != NULL)
            json_object_object_add(o, "error_description", json_object_new_string_len(desc->base, (int)desc->len));
        if (uri != NULL)
            json_object_object_add(o, "error_uri", json_object_new_string_len(uri->base, (int)uri->len));
        if (iss != NULL)
            json_object_object_add(o, "iss", json_object_new_string_len(iss->base, (int)iss->len));
    }
    if (extra != NULL && extra->n != 0) {
        json_object *params = json_object_new_object();
        for (size_t i = 0; i != extra->n; ++i) {
            char *name = strndup(extra->params[i].name.base, extra->params[i].name.len);
            json_object_object_add(params, name,
                                   json_object_new_string_len(extra->params[i].value.base, (int)extra->params[i].value.len));
            free(name);
        }
        json_object_object_add(o, "params", params);
    }
    if (extra != NULL && extra->dropped != 0)
        json_object_object_add(o, "params_dropped", json_object_new_int64((int64_t)extra->dropped));
    char *r = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return r;
}

static uint32_t rng_state = 88172645u;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* printable ASCII mostly, with quotes, backslashes, slashes and (rarely) controls */
static void fill(char *buf, size_t n)
{
    static const char special[] = "\"\\/ {}:,\x01\x1f\t\n\r\b\f";
    for (size_t i = 0; i != n; ++i)
        buf[i] = rng() % 5 == 0 ? special[rng() % (sizeof(special) - 1)] : (char)(0x20 + rng() % 95);
}

static void expect_same(const char *state, const rly_str_t *code, const rly_str_t *iss, const rly_str_t *error,
                        const rly_str_t *desc, const rly_str_t *uri, const relay_result_params_t *extra)
{
    size_t len = 0;
    char *got = relay_result_json(state, strlen(state), code, iss, error, desc, uri, extra, &len);
    char *want = with_json_c(state, code, iss, error, desc, uri, extra);
    assert_non_null(got);
    assert_int_equal(len, strlen(got));
    assert_string_equal(got, want);
    json_object *o = json_tokener_parse(got);
    assert_non_null(o);
    json_object *v = NULL;
    if (code != NULL) {
        assert_true(json_object_object_get_ex(o, "code", &v));
        assert_int_equal(json_object_get_string_len(v), code->len);
        assert_memory_equal(json_object_get_string(v), code->base, code->len);
    } else {
        assert_true(json_object_object_get_ex(o, "error", &v));
        assert_memory_equal(json_object_get_string(v), error->base, error->len);
    }
    json_object_put(o);
    free(got);
    free(want);
}

static void test_known(void **unused)
{
    (void)unused;
    rly_str_t code = {"abc\"def\\ghi/jkl", 15}, iss = {"https://auth.atlassian.com", 26};
    size_t len = 0;
    char *j = relay_result_json("STATE", 5, &code, &iss, NULL, NULL, NULL, NULL, &len);
    assert_string_equal(j, "{\"status\":\"authorized\",\"code\":\"abc\\\"def\\\\ghi/jkl\",\"state\":\"STATE\","
                           "\"iss\":\"https://auth.atlassian.com\"}");
    free(j);
    rly_str_t error = {"access_denied", 13}, desc = {"User \"said\" no", 14};
    j = relay_result_json("S", 1, NULL, NULL, &error, &desc, NULL, NULL, &len);
    assert_string_equal(j, "{\"status\":\"denied\",\"error\":\"access_denied\",\"error_description\":\"User \\\"said\\\" no\"}");
    free(j);
    /* an empty code is still a code (the parser refuses it before, but the writer does not care) */
    rly_str_t empty = {"", 0};
    j = relay_result_json("S", 1, &empty, NULL, NULL, NULL, NULL, NULL, &len);
    assert_string_equal(j, "{\"status\":\"authorized\",\"code\":\"\",\"state\":\"S\"}");
    free(j);
    /* a denial carries iss (RFC 9207), then the extra parameters exactly as decoded, then how many were dropped */
    rly_qparam_t params[2] = {{{"realmId", 7}, {"9130", 4}}, {{"u", 1}, {"\xc3\xa9t\xc3\xa9 \"q\"", 9}}};
    relay_result_params_t extra = {params, 2, 3};
    j = relay_result_json("S", 1, NULL, &iss, &error, NULL, NULL, &extra, &len);
    assert_string_equal(j, "{\"status\":\"denied\",\"error\":\"access_denied\",\"iss\":\"https://auth.atlassian.com\","
                           "\"params\":{\"realmId\":\"9130\",\"u\":\"\xc3\xa9t\xc3\xa9 \\\"q\\\"\"},\"params_dropped\":3}");
    free(j);
    relay_result_params_t none = {params, 0, 1};
    j = relay_result_json("S", 1, &empty, NULL, NULL, NULL, NULL, &none, &len);
    assert_string_equal(j, "{\"status\":\"authorized\",\"code\":\"\",\"state\":\"S\",\"params_dropped\":1}");
    free(j);
}

static void test_random_against_json_c(void **unused)
{
    (void)unused;
    static char a[9000], b[600], c[300], d[1100], e[600];
    for (int round = 0; round != 2000; ++round) {
        size_t na = rng() % (round % 50 == 0 ? sizeof(a) : 120), nb = rng() % sizeof(b), nc = 1 + rng() % (sizeof(c) - 1),
               nd = rng() % sizeof(d), ne = rng() % sizeof(e);
        fill(a, na);
        fill(b, nb);
        fill(c, nc);
        fill(d, nd);
        fill(e, ne);
        rly_str_t code = {a, na}, iss = {b, nb}, error = {c, nc}, desc = {d, nd}, uri = {e, ne};
        /* up to 32 extra parameters with distinct names, values cut from the random texts */
        rly_qparam_t params[32];
        char names[32][8];
        size_t np = rng() % 33;
        for (size_t i = 0; i != np; ++i) {
            int nl = snprintf(names[i], sizeof(names[i]), "p%zu", i);
            params[i].name = (rly_str_t){names[i], (size_t)nl};
            params[i].value = (rly_str_t){d, nd < 40 ? nd : rng() % 40};
        }
        relay_result_params_t extra = {params, np, rng() % 3};
        const relay_result_params_t *ex = round % 3 == 0 ? NULL : &extra;
        if (round % 2 == 0)
            expect_same("sTaTe_-09", &code, round % 4 == 0 ? &iss : NULL, NULL, NULL, NULL, ex);
        else
            expect_same("sTaTe_-09", NULL, round % 7 == 0 ? &iss : NULL, &error, round % 3 == 0 ? &desc : NULL,
                        round % 5 == 0 ? &uri : NULL, ex);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known),
        cmocka_unit_test(test_random_against_json_c),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
