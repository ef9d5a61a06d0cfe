/* test_meta.c: unit tests of relay/meta.c: session meta and result blobs, bound to the session id, across key rotation */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include "ids.h"
#include "meta.h"
#include "seal.h"

static const char result_json[] = "{\"status\":\"authorized\",\"code\":\"eyJhbGciOi.code.sig\",\"state\":\"st-ate_1\"}";

static void keyring(rly_keyring_t *kr, size_t n, const uint8_t seeds[])
{
    memset(kr, 0, sizeof(*kr));
    for (size_t i = 0; i != n; ++i) {
        uint8_t master[32];
        char id[16];
        memset(master, seeds[i], sizeof(master));
        id[0] = 'k';
        id[1] = (char)('0' + seeds[i] % 10);
        id[2] = '\0';
        assert_int_equal(rly_key_derive(&kr->keys[i], id, master), 0);
    }
    kr->count = n;
}

static void new_sid(char text[RLY_SESSION_ID_LEN + 1])
{
    uint8_t raw[RLY_SESSION_ID_BYTES];
    assert_int_equal(rly_session_new(raw, text), 0);
    assert_int_equal(strlen(text), RLY_SESSION_ID_LEN);
}

static void sreq_init(rly_session_req_t *r, const char *return_uri, const uint8_t *seal_key)
{
    memset(r, 0, sizeof(*r));
    memcpy(r->as_id, "auth.atlassian.com", sizeof("auth.atlassian.com"));
    if (return_uri != NULL) {
        r->return_uri_len = strlen(return_uri);
        memcpy(r->return_uri, return_uri, r->return_uri_len + 1);
    }
    if (seal_key != NULL) {
        r->has_seal_key = 1;
        memcpy(r->seal_key, seal_key, 32);
    }
    r->ttl = 600;
}

/* seals and opens a session request's meta; returns the sealed length */
static long meta_round_trip(const rly_keyring_t *kr, const char *sid, const rly_session_req_t *r)
{
    uint8_t blob[RELAY_META_MAX];
    relay_meta_t m;
    long n = relay_meta_seal(kr, sid, r, blob);
    assert_true(n > 0);
    assert_true((size_t)n <= sizeof(blob));
    memset(&m, 0x5a, sizeof(m));
    assert_int_equal(relay_meta_open(kr, sid, blob, (size_t)n, &m), 0);
    assert_int_equal(m.has_seal_key, r->has_seal_key);
    if (r->has_seal_key)
        assert_memory_equal(m.seal_key, r->seal_key, 32);
    assert_int_equal(m.return_uri_len, r->return_uri_len);
    assert_memory_equal(m.return_uri, r->return_uri, r->return_uri_len);
    assert_int_equal(m.return_uri[m.return_uri_len], '\0');
    /* the return_uri is not there in plaintext */
    if (r->return_uri_len >= 8)
        assert_null(memmem(blob, (size_t)n, r->return_uri, r->return_uri_len));
    return n;
}

static void test_meta_round_trip(void **state)
{
    (void)state;
    rly_keyring_t kr;
    keyring(&kr, 1, (const uint8_t[]){1});
    char sid[RLY_SESSION_ID_LEN + 1];
    new_sid(sid);
    uint8_t pub[32], priv[32];
    assert_int_equal(rly_x25519_keypair(priv, pub), 0);
    rly_session_req_t r;

    sreq_init(&r, NULL, NULL); /* neither */
    assert_int_equal(meta_round_trip(&kr, sid, &r), 1 + RLY_DATA_OVERHEAD);
    sreq_init(&r, "https://qorus.example.com:8011/grant?x=1&y=%20", NULL);
    meta_round_trip(&kr, sid, &r);
    sreq_init(&r, NULL, pub);
    assert_int_equal(meta_round_trip(&kr, sid, &r), 1 + 32 + RLY_DATA_OVERHEAD);
    sreq_init(&r, "https://qorus.example.com:8011/grant", pub);
    meta_round_trip(&kr, sid, &r);

    /* the longest return_uri fits RELAY_META_V1_MAX (a version-1 meta at its largest) */
    char *longest = malloc(RLY_RETURN_URI_MAX + 1);
    assert_non_null(longest);
    memcpy(longest, "https://h.example/", 18);
    memset(longest + 18, 'a', RLY_RETURN_URI_MAX - 18);
    longest[RLY_RETURN_URI_MAX] = '\0';
    sreq_init(&r, longest, pub);
    assert_int_equal(meta_round_trip(&kr, sid, &r), RELAY_META_V1_MAX);
    free(longest);
}

/* meta opens only for its own session, unaltered, under a key of the ring */
static void test_meta_binding(void **state)
{
    (void)state;
    rly_keyring_t kr, other;
    keyring(&kr, 1, (const uint8_t[]){1});
    keyring(&other, 1, (const uint8_t[]){2});
    char sid[RLY_SESSION_ID_LEN + 1], sid2[RLY_SESSION_ID_LEN + 1];
    new_sid(sid);
    new_sid(sid2);
    rly_session_req_t r;
    sreq_init(&r, "https://qorus.example.com/grant", NULL);
    uint8_t blob[RELAY_META_MAX];
    long n = relay_meta_seal(&kr, sid, &r, blob);
    assert_true(n > 0);
    relay_meta_t m;

    assert_int_equal(relay_meta_open(&kr, sid2, blob, (size_t)n, &m), -1);   /* another session's */
    assert_int_equal(relay_meta_open(&other, sid, blob, (size_t)n, &m), -1); /* another relay's key */
    for (long i = 0; i != n; ++i) {                                          /* any altered byte */
        blob[i] ^= 0x01;
        assert_int_equal(relay_meta_open(&kr, sid, blob, (size_t)n, &m), -1);
        blob[i] ^= 0x01;
    }
    assert_int_equal(relay_meta_open(&kr, sid, blob, (size_t)n - 1, &m), -1); /* truncated */
    assert_int_equal(relay_meta_open(&kr, sid, blob, 0, &m), -1);
    uint8_t big[RELAY_META_MAX + 64] = {0};
    assert_int_equal(relay_meta_open(&kr, sid, big, sizeof(big), &m), -1); /* longer than any meta */
    assert_int_equal(relay_meta_open(&kr, sid, blob, (size_t)n, &m), 0);
    assert_string_equal(m.return_uri, "https://qorus.example.com/grant");

    /* a meta blob is not a result blob and vice versa (different AAD purpose) */
    size_t rlen;
    uint8_t *res = relay_result_seal(&kr, sid, &m, result_json, strlen(result_json), &rlen);
    assert_non_null(res);
    assert_int_equal(relay_meta_open(&kr, sid, res + 1, rlen - 1, &m), -1);
    uint8_t *as_result = malloc((size_t)n + 1);
    assert_non_null(as_result);
    as_result[0] = 'D';
    memcpy(as_result + 1, blob, (size_t)n);
    size_t outlen;
    assert_null(relay_result_open(&kr, sid, as_result, (size_t)n + 1, &outlen));
    free(as_result);
    free(res);
}

/* an over-long session id text is refused, not read past the AAD buffer */
static void test_overlong_sid(void **state)
{
    (void)state;
    rly_keyring_t kr;
    keyring(&kr, 1, (const uint8_t[]){1});
    char sid[RLY_SESSION_ID_LEN + 1];
    new_sid(sid);
    char longsid[200];
    memset(longsid, 'A', sizeof(longsid) - 1);
    longsid[sizeof(longsid) - 1] = '\0';
    rly_session_req_t r;
    sreq_init(&r, "https://qorus.example.com/grant", NULL);
    uint8_t blob[RELAY_META_MAX];
    relay_meta_t m;
    assert_true(relay_meta_seal(&kr, longsid, &r, blob) < 0);
    long n = relay_meta_seal(&kr, sid, &r, blob);
    assert_true(n > 0);
    assert_int_equal(relay_meta_open(&kr, longsid, blob, (size_t)n, &m), -1);
    memset(&m, 0, sizeof(m));
    size_t len;
    assert_null(relay_result_seal(&kr, longsid, &m, result_json, strlen(result_json), &len));
    uint8_t *res = relay_result_seal(&kr, sid, &m, result_json, strlen(result_json), &len);
    assert_non_null(res);
    assert_null(relay_result_open(&kr, longsid, res, len, &len));
    free(res);
}

/* without a seal key the result is stored under the data key: 'D' + ciphertext; it opens to the JSON */
static void test_result_data_key(void **state)
{
    (void)state;
    rly_keyring_t kr;
    keyring(&kr, 1, (const uint8_t[]){1});
    char sid[RLY_SESSION_ID_LEN + 1], sid2[RLY_SESSION_ID_LEN + 1];
    new_sid(sid);
    new_sid(sid2);
    relay_meta_t m;
    memset(&m, 0, sizeof(m));
    size_t len = 0, outlen = 0;
    uint8_t *blob = relay_result_seal(&kr, sid, &m, result_json, strlen(result_json), &len);
    assert_non_null(blob);
    assert_int_equal(blob[0], 'D');
    assert_int_equal(len, 1 + strlen(result_json) + RLY_DATA_OVERHEAD);
    assert_null(memmem(blob, len, "eyJhbGciOi", 10)); /* no plaintext code in the store */

    char *json = relay_result_open(&kr, sid, blob, len, &outlen);
    assert_non_null(json);
    assert_int_equal(outlen, strlen(result_json));
    assert_string_equal(json, result_json);
    free(json);

    assert_null(relay_result_open(&kr, sid2, blob, len, &outlen)); /* another session's */
    blob[len - 1] ^= 0x80;
    assert_null(relay_result_open(&kr, sid, blob, len, &outlen)); /* altered */
    blob[len - 1] ^= 0x80;
    assert_null(relay_result_open(&kr, sid, blob, len - 1, &outlen)); /* truncated */
    blob[0] = 'X';
    assert_null(relay_result_open(&kr, sid, blob, len, &outlen)); /* unknown kind */
    assert_null(relay_result_open(&kr, sid, blob, 1, &outlen));
    assert_null(relay_result_open(&kr, sid, blob, 0, &outlen));
    free(blob);
}

/* with a seal key the result is sealed to the instance: the relay hands out the sealed text, which only the instance
 * opens, with the session id text as AAD (protocol.md, "Sealing") */
static void test_result_sealed(void **state)
{
    (void)state;
    rly_keyring_t kr;
    keyring(&kr, 1, (const uint8_t[]){1});
    char sid[RLY_SESSION_ID_LEN + 1], sid2[RLY_SESSION_ID_LEN + 1];
    new_sid(sid);
    new_sid(sid2);
    uint8_t priv[32], pub[32], priv2[32], pub2[32];
    assert_int_equal(rly_x25519_keypair(priv, pub), 0);
    assert_int_equal(rly_x25519_keypair(priv2, pub2), 0);
    relay_meta_t m;
    memset(&m, 0, sizeof(m));
    m.has_seal_key = 1;
    memcpy(m.seal_key, pub, 32);

    size_t len = 0, outlen = 0;
    uint8_t *blob = relay_result_seal(&kr, sid, &m, result_json, strlen(result_json), &len);
    assert_non_null(blob);
    assert_int_equal(blob[0], 'S');
    assert_null(memmem(blob, len, "eyJhbGciOi", 10));

    /* the relay's own keys play no part: another keyring hands it out just the same */
    rly_keyring_t other;
    keyring(&other, 1, (const uint8_t[]){9});
    char *json = relay_result_open(&other, sid, blob, len, &outlen);
    assert_non_null(json);
    assert_int_equal(outlen, strlen(json));
    json_object *o = json_tokener_parse(json);
    assert_non_null(o);
    assert_int_equal(json_object_object_length(o), 2);
    json_object *status, *sealed;
    assert_true(json_object_object_get_ex(o, "status", &status));
    assert_string_equal(json_object_get_string(status), "sealed");
    assert_true(json_object_object_get_ex(o, "sealed", &sealed));
    const char *text = json_object_get_string(sealed);
    size_t textlen = (size_t)json_object_get_string_len(sealed);
    assert_int_equal(textlen, len - 1);
    assert_memory_equal(text, blob + 1, textlen);

    size_t ptlen = 0;
    uint8_t *pt = rly_unseal(priv, sid, strlen(sid), text, textlen, &ptlen);
    assert_non_null(pt);
    assert_int_equal(ptlen, strlen(result_json));
    assert_memory_equal(pt, result_json, ptlen);
    free(pt);
    assert_null(rly_unseal(priv, sid2, strlen(sid2), text, textlen, &ptlen)); /* bound to the session id */
    assert_null(rly_unseal(priv2, sid, strlen(sid), text, textlen, &ptlen));  /* only the instance's key opens it */
    json_object_put(o);
    free(json);
    free(blob);
}

/* a result stored under the previous key opens after rotation ([new, old]) and not once the old key is gone */
static void test_rotation(void **state)
{
    (void)state;
    rly_keyring_t old, rotated, new_only;
    keyring(&old, 1, (const uint8_t[]){1});
    keyring(&rotated, 2, (const uint8_t[]){2, 1});
    keyring(&new_only, 1, (const uint8_t[]){2});
    char sid[RLY_SESSION_ID_LEN + 1];
    new_sid(sid);
    relay_meta_t m;
    memset(&m, 0, sizeof(m));
    size_t len = 0, outlen = 0;

    uint8_t *blob = relay_result_seal(&old, sid, &m, result_json, strlen(result_json), &len);
    assert_non_null(blob);
    char *json = relay_result_open(&rotated, sid, blob, len, &outlen);
    assert_non_null(json);
    assert_string_equal(json, result_json);
    free(json);
    assert_null(relay_result_open(&new_only, sid, blob, len, &outlen));
    free(blob);

    /* and new results are written under the new key: the old relay cannot open them */
    blob = relay_result_seal(&rotated, sid, &m, result_json, strlen(result_json), &len);
    assert_non_null(blob);
    assert_null(relay_result_open(&old, sid, blob, len, &outlen));
    json = relay_result_open(&new_only, sid, blob, len, &outlen);
    assert_non_null(json);
    free(json);
    free(blob);

    /* the same for meta */
    rly_session_req_t r;
    sreq_init(&r, "https://qorus.example.com/grant", NULL);
    uint8_t mblob[RELAY_META_MAX];
    long n = relay_meta_seal(&old, sid, &r, mblob);
    assert_true(n > 0);
    assert_int_equal(relay_meta_open(&rotated, sid, mblob, (size_t)n, &m), 0);
    assert_string_equal(m.return_uri, "https://qorus.example.com/grant");
    assert_int_equal(relay_meta_open(&new_only, sid, mblob, (size_t)n, &m), -1);
}

/* a 1.1 meta: every member comes back as it went in, at the largest sizes too; any altered byte fails */
static void test_meta_bound(void **state)
{
    (void)state;
    rly_keyring_t kr;
    keyring(&kr, 1, (const uint8_t[]){1});
    char sid[RLY_SESSION_ID_LEN + 1];
    new_sid(sid);
    rly_session_req_t *r = malloc(sizeof(*r));
    relay_meta_t *m = malloc(sizeof(*m));
    uint8_t *blob = malloc(RELAY_META_MAX);
    assert_non_null(r);
    assert_non_null(m);
    assert_non_null(blob);
    sreq_init(r, "https://qorus.example.com:8011/grant", NULL);
    r->bound = 1;
    static const char as[] = "https://auth.atlassian.com/authorize?audience=api.atlassian.com";
    memcpy(r->authorization_server, as, sizeof(as));
    r->authorization_server_len = sizeof(as) - 1;
    static const char label[] = "Qorus \xc3\xa9 prod";
    memcpy(r->label, label, sizeof(label));
    r->label_len = sizeof(label) - 1;
    /* the largest parameter set: 32 members, 4 KiB of names and values */
    size_t used = 0;
    for (size_t i = 0; i != RLY_AUTHORIZE_PARAMS_COUNT_MAX; ++i) {
        rly_param_t *p = &r->params[i];
        char *name = r->params_buf + used;
        size_t nlen = (size_t)snprintf(name, 8, "p%zu", i);
        used += nlen + 1;
        size_t vlen = RLY_AUTHORIZE_PARAMS_MAX / RLY_AUTHORIZE_PARAMS_COUNT_MAX - nlen;
        char *value = r->params_buf + used;
        memset(value, 'a' + (int)(i % 26), vlen);
        value[vlen] = '\0';
        used += vlen + 1;
        *p = (rly_param_t){name, nlen, value, vlen};
    }
    r->nparams = RLY_AUTHORIZE_PARAMS_COUNT_MAX;
    long n = relay_meta_seal(&kr, sid, r, blob);
    assert_true(n > 0 && n <= RELAY_META_MAX);
    assert_int_equal(relay_meta_open(&kr, sid, blob, (size_t)n, m), 0);
    assert_true(m->bound);
    assert_false(m->has_seal_key);
    assert_string_equal(m->return_uri, "https://qorus.example.com:8011/grant");
    assert_string_equal(m->authorization_server, as);
    assert_int_equal(m->label_len, sizeof(label) - 1);
    assert_memory_equal(m->label, label, sizeof(label) - 1);
    assert_int_equal(m->nparams, RLY_AUTHORIZE_PARAMS_COUNT_MAX);
    for (size_t i = 0; i != m->nparams; ++i) {
        assert_int_equal(m->params[i].name_len, r->params[i].name_len);
        assert_memory_equal(m->params[i].name, r->params[i].name, r->params[i].name_len);
        assert_int_equal(m->params[i].value_len, r->params[i].value_len);
        assert_memory_equal(m->params[i].value, r->params[i].value, r->params[i].value_len);
    }
    relay_meta_wipe(m);
    assert_int_equal(m->nparams, 0);
    for (long i = 0; i < n; i += 97) {
        blob[i] ^= 0x40;
        assert_int_equal(relay_meta_open(&kr, sid, blob, (size_t)n, m), -1);
        blob[i] ^= 0x40;
    }
    free(blob);
    free(m);
    free(r);
}

/* the start token's reference opens only for its own token's hash, under a key of the ring */
static void test_start_ref(void **state)
{
    (void)state;
    rly_keyring_t kr, other;
    keyring(&kr, 1, (const uint8_t[]){1});
    keyring(&other, 1, (const uint8_t[]){2});
    uint8_t th[32], th2[32], sid[RLY_SESSION_ID_BYTES], back[RLY_SESSION_ID_BYTES], ref[RELAY_START_REF_LEN];
    char text[RLY_SESSION_ID_LEN + 1];
    memset(th, 7, sizeof(th));
    memset(th2, 8, sizeof(th2));
    assert_int_equal(rly_session_new(sid, text), 0);
    assert_int_equal(relay_start_ref_seal(&kr, th, sid, ref), 0);
    assert_null(memmem(ref, sizeof(ref), sid, sizeof(sid))); /* the store never sees the session id */
    assert_int_equal(relay_start_ref_open(&kr, th, ref, sizeof(ref), back), 0);
    assert_memory_equal(back, sid, sizeof(sid));
    assert_int_equal(relay_start_ref_open(&kr, th2, ref, sizeof(ref), back), -1);
    assert_int_equal(relay_start_ref_open(&other, th, ref, sizeof(ref), back), -1);
    assert_int_equal(relay_start_ref_open(&kr, th, ref, sizeof(ref) - 1, back), -1);
    ref[20] ^= 1;
    assert_int_equal(relay_start_ref_open(&kr, th, ref, sizeof(ref), back), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_meta_round_trip), cmocka_unit_test(test_meta_binding), cmocka_unit_test(test_overlong_sid),
        cmocka_unit_test(test_meta_bound),      cmocka_unit_test(test_start_ref),    cmocka_unit_test(test_result_data_key),
        cmocka_unit_test(test_result_sealed),   cmocka_unit_test(test_rotation),
    };
    return cmocka_run_group_tests_name("meta", tests, NULL, NULL);
}
