/* test_providers.c: each provider's documented callback (tests/providers/<name>.json) replayed through the real relay */
/*
 * Version-1 sessions over HTTP/1.1 and HTTP/2, GET and, where the provider offers it, form_post; one sealed session; 1.1
 * bound flows (query and form_post). The pickup must hold exactly the fixture's params, byte for byte and in query order,
 * iss where the provider sends it, params_dropped where the fixture expects it. Shopify's hmac is computed as Shopify
 * computes it and verified from the pickup as an instance would. At the end no parameter value, code or tenant host is in
 * the relay's output, and `authrelay audit` of its log is clean and names the allow-list entries, wildcards as written.
 * docs/providers.md says where each fixture comes from.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "b64url.h"
#include "bind.h"
#include "bound.h"
#include "harness.h"
#include "query.h"
#include "seal.h"

#define NPROVIDERS 13
#define MAX_ALLOW 64
#define MAX_SECRETS 1024
#define MAX_KV 40

static const char *const provider_names[NPROVIDERS] = {"atlassian", "google",  "microsoft", "salesforce", "hubspot",
                                                       "zoho",      "intuit",  "shopify",   "slack",      "github",
                                                       "figma",     "klaviyo", "xero"};
static int provider_index[NPROVIDERS] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
static json_object *fixtures[NPROVIDERS]; /* parsed at group setup, released at group teardown */
static rly_relay_t relay;

/* every per-flow value sent; the log scan looks for each (malloc'ed, they outlive the arena) */
static char *secrets[MAX_SECRETS];
static size_t nsecrets;
/* the allow-list entries the flows matched: the audit's totals must name each */
static char *entries_seen[MAX_ALLOW];
static size_t nentries_seen;

static void remember(const char *s, size_t len)
{
    if (len >= 6 && nsecrets < MAX_SECRETS)
        secrets[nsecrets++] = strndup(s, len);
}

static void remember_entry(const char *entry)
{
    for (size_t i = 0; i != nentries_seen; ++i)
        if (strcmp(entries_seen[i], entry) == 0)
            return;
    if (nentries_seen < MAX_ALLOW)
        entries_seen[nentries_seen++] = strdup(entry);
}

/* ---- fixtures ---- */

static json_object *member(json_object *o, const char *key)
{
    json_object *v = NULL;
    return o != NULL && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *mstr(json_object *o, const char *key)
{
    json_object *v = member(o, key);
    return v != NULL && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* a case's member, or the fixture's when the case has none */
static const char *case_str(json_object *fx, json_object *c, const char *key)
{
    const char *v = mstr(c, key);
    return v != NULL ? v : mstr(fx, key);
}

static json_object *load_fixture(const char *name)
{
    const char *dir = getenv("RLY_SOURCE_DIR");
    char path[1024];
    if (dir == NULL) {
        fprintf(stderr, "RLY_SOURCE_DIR is not set (ctest sets it)\n");
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/tests/providers/%s.json", dir, name);
    size_t len;
    char *text = rly_read_file(path, &len);
    if (text == NULL) {
        fprintf(stderr, "cannot read %s\n", path);
        return NULL;
    }
    json_tokener *tok = json_tokener_new();
    json_object *o = json_tokener_parse_ex(tok, text, (int)len);
    if (o == NULL || json_tokener_get_error(tok) != json_tokener_success ||
        !json_object_is_type(member(o, "cases"), json_type_array))
        fprintf(stderr, "%s: not a fixture (JSON object with cases)\n", path);
    json_tokener_free(tok);
    return o;
}

/* s with every occurrence of from replaced by to, arena-owned */
static char *replace(const char *s, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to), n = 0;
    const char *p, *q;
    for (p = s; (p = strstr(p, from)) != NULL; p += fl)
        n++;
    char *out = rly_keep(malloc(strlen(s) + n * tl + 1)), *o = out;
    for (p = s; (q = strstr(p, from)) != NULL; p = q + fl) {
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, to, tl);
        o += tl;
    }
    memcpy(o, p, strlen(p) + 1);
    return out;
}

/* ---- Shopify's hmac: HMAC-SHA256 (hex) over name=value of every other parameter, sorted by name, joined with & ---- */

typedef struct st_kv_t {
    const char *name, *value;
    size_t nlen, vlen;
} kv_t;

static int kv_cmp(const void *a, const void *b)
{
    const kv_t *x = a, *y = b;
    size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
    int c = memcmp(x->name, y->name, n);
    return c != 0 ? c : (x->nlen > y->nlen) - (x->nlen < y->nlen);
}

static void hmac_hex(const char *secret, kv_t *kv, size_t n, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    size_t cap = 1, len = 0;
    qsort(kv, n, sizeof(*kv), kv_cmp);
    for (size_t i = 0; i != n; ++i)
        cap += kv[i].nlen + kv[i].vlen + 2;
    char *msg = rly_keep(malloc(cap));
    for (size_t i = 0; i != n; ++i) {
        if (kv[i].nlen == 4 && memcmp(kv[i].name, "hmac", 4) == 0)
            continue;
        if (len != 0)
            msg[len++] = '&';
        memcpy(msg + len, kv[i].name, kv[i].nlen);
        len += kv[i].nlen;
        msg[len++] = '=';
        memcpy(msg + len, kv[i].value, kv[i].vlen);
        len += kv[i].vlen;
    }
    assert_non_null(HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)msg, len, md, &mdlen));
    assert_int_equal(mdlen, 32);
    for (unsigned int i = 0; i != mdlen; ++i) {
        hex[2 * i] = "0123456789abcdef"[md[i] >> 4];
        hex[2 * i + 1] = "0123456789abcdef"[md[i] & 15];
    }
    hex[64] = '\0';
}

/* the AS's side: the hmac over the callback's decoded parameters as sent (the {hmac} placeholder left out) */
static char *shopify_sign(const char *secret, const char *query)
{
    size_t len = strlen(query);
    char *buf = rly_keep(malloc(len + 1));
    rly_qparam_t params[MAX_KV];
    kv_t kv[MAX_KV];
    int n = rly_query_parse(query, len, buf, len + 1, params, MAX_KV);
    assert_true(n > 0);
    for (int i = 0; i != n; ++i)
        kv[i] = (kv_t){params[i].name.base, params[i].value.base, params[i].name.len, params[i].value.len};
    char *hex = rly_keep(malloc(65));
    hmac_hex(secret, kv, (size_t)n, hex);
    return hex;
}

/* the instance's side: code, state and every param of the pickup but hmac, signed again; 1 if it matches params.hmac */
static int shopify_verify(const char *secret, json_object *result)
{
    json_object *params = member(result, "params");
    const char *given = mstr(params, "hmac"), *code = mstr(result, "code"), *st = mstr(result, "state");
    kv_t kv[MAX_KV];
    size_t n = 0;
    char hex[65];
    if (given == NULL || code == NULL || st == NULL || member(result, "params_dropped") != NULL)
        return 0; /* something the signature covers did not arrive: refuse */
    kv[n++] = (kv_t){"code", code, 4, strlen(code)};
    kv[n++] = (kv_t){"state", st, 5, strlen(st)};
    json_object_object_foreach(params, k, v)
    {
        if (n == MAX_KV)
            return 0;
        kv[n++] = (kv_t){k, json_object_get_string(v), strlen(k), (size_t)json_object_get_string_len(v)};
    }
    hmac_hex(secret, kv, n, hex);
    return strcmp(hex, given) == 0;
}

/* ---- one flow ---- */

typedef struct st_flow_t {
    const char *query; /* the callback as the provider sends it, state (and hmac) filled in */
    const char *hmac;  /* Shopify: the hmac in it, else NULL */
} flow_t;

static flow_t make_flow(json_object *fx, json_object *c, const char *state)
{
    flow_t f = {replace(mstr(c, "callback"), "{state}", state), NULL};
    const char *secret = mstr(fx, "hmac_secret");
    if (secret != NULL) {
        f.hmac = shopify_sign(secret, f.query);
        f.query = replace(f.query, "{hmac}", f.hmac);
    }
    /* every value of the callback is a secret of the flow: the log must hold none of them */
    size_t len = strlen(f.query);
    char *buf = rly_keep(malloc(len + 1));
    rly_qparam_t params[MAX_KV];
    int n = rly_query_parse(f.query, len, buf, len + 1, params, MAX_KV);
    assert_true(n > 0);
    for (int i = 0; i != n; ++i)
        if (!(params[i].name.len == 5 && memcmp(params[i].name.base, "error", 5) == 0)) /* RFC 6749 error codes are no secret */
            remember(params[i].value.base, params[i].value.len);
    return f;
}

/* GET with the query, or POST it as application/x-www-form-urlencoded (form_post); cookie NULL: none */
static rly_response_t *send_callback(int v, const char *mode, const char *query, const char *cookie)
{
    const char *hdrs[3] = {NULL, NULL, NULL};
    size_t nh = 0;
    if (cookie != NULL)
        hdrs[nh++] = rly_strf("Cookie: " RLY_COOKIE_NAME "=%s", cookie);
    if (strcmp(mode, "form_post") == 0) {
        hdrs[nh++] = "Content-Type: application/x-www-form-urlencoded";
        rly_request_t q = {.method = "POST",
                           .url = rly_url(&relay, "/qorus-oauth2-redirect"),
                           .headers = hdrs,
                           .body = query,
                           .body_len = strlen(query),
                           .version = v};
        return rly_do(&q);
    }
    assert_string_equal(mode, "query");
    rly_request_t q = {.url = rly_strf("%s?%s", rly_url(&relay, "/qorus-oauth2-redirect"), query), .headers = hdrs, .version = v};
    return rly_do(&q);
}

/* a string member equal to want, byte for byte */
static void expect_bytes(json_object *o, const char *key, const char *want, const char *what)
{
    json_object *v = member(o, key);
    if (v == NULL || !json_object_is_type(v, json_type_string))
        fail_msg("%s: the result has no string \"%s\"", what, key);
    size_t len = (size_t)json_object_get_string_len(v), wl = strlen(want);
    if (len != wl || memcmp(json_object_get_string(v), want, wl) != 0)
        fail_msg("%s: \"%s\" is \"%.300s\", expected \"%.300s\"", what, key, json_object_get_string(v), want);
}

/* the result object is exactly what the fixture expects: its members, params in query order, nothing more */
static void expect_result(json_object *o, json_object *expect, const char *state, const char *hmac, const char *what)
{
    const char *keys[10];
    size_t nk = 0;
    const char *status = mstr(expect, "status");
    assert_non_null(status);
    if (o == NULL || !json_object_is_type(o, json_type_object))
        fail_msg("%s: the result is not a JSON object", what);
    keys[nk++] = "status";
    expect_bytes(o, "status", status, what);
    if (strcmp(status, "authorized") == 0) {
        keys[nk++] = "code";
        keys[nk++] = "state";
        expect_bytes(o, "code", mstr(expect, "code"), what);
        expect_bytes(o, "state", state, what);
    }
    static const char *const optional[] = {"error", "error_description", "error_uri", "iss"};
    for (size_t i = 0; i != sizeof(optional) / sizeof(optional[0]); ++i) {
        const char *want = mstr(expect, optional[i]);
        if (want != NULL) {
            keys[nk++] = optional[i];
            expect_bytes(o, optional[i], want, what);
        }
    }
    json_object *want_params = member(expect, "params"), *got = member(o, "params");
    if (want_params != NULL && json_object_object_length(want_params) != 0) {
        keys[nk++] = "params";
        if (got == NULL || !json_object_is_type(got, json_type_object))
            fail_msg("%s: no params object", what);
        if (json_object_object_length(got) != json_object_object_length(want_params))
            fail_msg("%s: params has %d members, expected %d: %s", what, json_object_object_length(got),
                     json_object_object_length(want_params), json_object_to_json_string(got));
        /* the same names in the same (query) order, each value byte for byte */
        struct json_object_iterator gi = json_object_iter_begin(got), ge = json_object_iter_end(got);
        json_object_object_foreach(want_params, name, wv)
        {
            assert_false(json_object_iter_equal(&gi, &ge));
            const char *gname = json_object_iter_peek_name(&gi);
            if (strcmp(gname, name) != 0)
                fail_msg("%s: params member \"%s\" where \"%s\" was expected (query order)", what, gname, name);
            const char *want = json_object_get_string(wv);
            expect_bytes(got, name, strcmp(want, "{hmac}") == 0 ? hmac : want, what);
            json_object_iter_next(&gi);
        }
    }
    json_object *dropped = member(expect, "params_dropped");
    if (dropped != NULL) {
        keys[nk++] = "params_dropped";
        json_object *gd = member(o, "params_dropped");
        if (gd == NULL || !json_object_is_type(gd, json_type_int) || json_object_get_int64(gd) != json_object_get_int64(dropped))
            fail_msg("%s: params_dropped is %s, expected %lld", what, gd != NULL ? json_object_to_json_string(gd) : "absent",
                     (long long)json_object_get_int64(dropped));
    }
    keys[nk] = NULL;
    if (!rly_jkeys_exactly(o, keys))
        fail_msg("%s: the result has other members than expected: %.600s", what, json_object_to_json_string(o));
}

/* the 303 the browser gets back: return_uri with status=success, or status=error&message=<error> */
static void expect_return(const rly_response_t *res, json_object *expect, int v)
{
    RLY_EXPECT(res, 303, v);
    const char *error = mstr(expect, "error");
    RLY_EXPECT_STR(rly_header(res, "Location"),
                   error == NULL ? RLY_TEST_RETURN "&status=success" : rly_strf(RLY_TEST_RETURN "&status=error&message=%s", error));
}

/* a version-1 session for this case's authorization server; seal_pub (base64url) or NULL */
static void create_v1(json_object *fx, json_object *c, int v, const char *seal_pub, rly_session_t *s)
{
    const char *as = case_str(fx, c, "authorization_server");
    char *body = seal_pub != NULL ? rly_strf("{\"authorization_server\": \"%s\", \"return_uri\": \"%s\", \"seal_key\": \"%s\"}", as,
                                             RLY_TEST_RETURN, seal_pub)
                                  : rly_strf("{\"authorization_server\": \"%s\", \"return_uri\": \"%s\"}", as, RLY_TEST_RETURN);
    rly_response_t *res = rly_create(&relay, v, body, s);
    if (res->status != 201)
        fail_msg("%s: POST /v1/sessions got %ld: %s", as, res->status, res->body);
    remember(s->state, strlen(s->state));
    remember(s->poll_token, strlen(s->poll_token));
    remember(s->session, strlen(s->session));
    remember_entry(case_str(fx, c, "as_entry"));
}

static void replay_case(json_object *fx, json_object *c, const char *mode, int v)
{
    json_object *expect = member(c, "expect");
    const char *what = rly_strf("%s / %s / %s / %s", mstr(fx, "provider"), mstr(c, "name"), mode, v == RLY_H2 ? "h2" : "http/1.1");
    rly_session_t s;
    create_v1(fx, c, v, NULL, &s);
    flow_t f = make_flow(fx, c, s.state);
    rly_response_t *cb = send_callback(v, mode, f.query, NULL);
    json_object *rejected = member(expect, "http_status");
    if (rejected != NULL) {
        /* the relay refuses this callback and stores nothing: the pickup is still pending */
        RLY_EXPECT(cb, json_object_get_int(rejected), v);
        RLY_EXPECT(rly_pickup(&s, v, -1), 202, v);
        RLY_EXPECT(rly_delete(&s, v), 204, v);
        return;
    }
    expect_return(cb, expect, v);
    rly_response_t *p = rly_pickup(&s, v, -1);
    RLY_EXPECT(p, 200, v);
    json_object *o = rly_json(p);
    expect_result(o, expect, s.state, f.hmac, what);
    json_object *verify = member(c, "verify_hmac");
    if (verify != NULL && shopify_verify(mstr(fx, "hmac_secret"), o) != json_object_get_boolean(verify))
        fail_msg("%s: the instance's hmac check %s", what, json_object_get_boolean(verify) ? "failed" : "passed");
    RLY_EXPECT(rly_delete(&s, v), 204, v);
}

/* every case of one provider, in each mode it offers, over HTTP/1.1 and HTTP/2 */
static void test_provider(void **state)
{
    json_object *fx = fixtures[*(const int *)*state];
    assert_non_null(fx);
    json_object *cases = member(fx, "cases");
    assert_true(json_object_array_length(cases) > 0);
    for (size_t i = 0; i != json_object_array_length(cases); ++i) {
        json_object *c = json_object_array_get_idx(cases, i), *modes = member(c, "modes");
        assert_true(modes != NULL && json_object_array_length(modes) > 0);
        for (size_t m = 0; m != json_object_array_length(modes); ++m)
            for (int v = RLY_H1; v <= RLY_H2; ++v)
                replay_case(fx, c, json_object_get_string(json_object_array_get_idx(modes, m)), v);
    }
}

static json_object *fixture(const char *name)
{
    for (size_t i = 0; i != NPROVIDERS; ++i)
        if (strcmp(provider_names[i], name) == 0)
            return fixtures[i];
    fail_msg("no fixture %s", name);
    return NULL;
}

/* a sealed session: the result opened with the instance's private key is the same object */
static void test_sealed(void **state)
{
    (void)state;
    static const char *const names[] = {"intuit", "shopify"};
    for (size_t k = 0; k != sizeof(names) / sizeof(names[0]); ++k) {
        json_object *fx = fixture(names[k]), *c = json_object_array_get_idx(member(fx, "cases"), 0), *expect = member(c, "expect");
        for (int v = RLY_H1; v <= RLY_H2; ++v) {
            uint8_t priv[32], pub[32];
            char pubtext[RLY_B64URL_ENCODED_LEN(32) + 1];
            assert_int_equal(rly_x25519_keypair(priv, pub), 0);
            rly_b64url_encode(pubtext, pub, 32);
            rly_session_t s;
            create_v1(fx, c, v, pubtext, &s);
            flow_t f = make_flow(fx, c, s.state);
            expect_return(send_callback(v, "query", f.query, NULL), expect, v);
            rly_response_t *p = rly_pickup(&s, v, -1);
            RLY_EXPECT(p, 200, v);
            const char *sealed = mstr(rly_json(p), "sealed");
            assert_non_null(sealed);
            RLY_EXPECT_STR(mstr(rly_json(p), "status"), "sealed");
            size_t ptlen = 0;
            uint8_t *pt = rly_unseal(priv, s.session, strlen(s.session), sealed, strlen(sealed), &ptlen);
            assert_non_null(pt);
            rly_keep(pt);
            rly_response_t plain = {.body = (char *)pt, .body_len = ptlen};
            json_object *o = rly_json(&plain);
            expect_result(o, expect, s.state, f.hmac, rly_strf("sealed %s", names[k]));
            if (f.hmac != NULL)
                assert_true(shopify_verify(mstr(fx, "hmac_secret"), o));
        }
    }
}

/* ---- 1.1: the confirmation in the relay's page, the callback from the confirming browser, the locked result ---- */

static void bound_create(json_object *fx, json_object *c, int v, const char *mode, rly_bound_t *b)
{
    static const char *const hdrs[] = {"Content-Type: application/json", NULL};
    json_object *body = json_object_new_object(), *params = json_object_new_object();
    json_object_object_add(body, "authorization_server", json_object_new_string(case_str(fx, c, "authorization_server")));
    json_object_object_add(body, "return_uri", json_object_new_string(RLY_TEST_BOUND_RETURN));
    json_object_object_add(params, "client_id", json_object_new_string(RLY_TEST_CLIENT_ID));
    if (strcmp(mode, "form_post") == 0)
        json_object_object_add(params, "response_mode", json_object_new_string("form_post"));
    json_object_object_add(body, "authorize_params", params);
    char *text = rly_strf("%s", json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(body);
    rly_request_t q = {.method = "POST",
                       .url = rly_url(&relay, "/v1/sessions"),
                       .headers = hdrs,
                       .body = text,
                       .body_len = strlen(text),
                       .version = v};
    rly_response_t *res = rly_do(&q);
    RLY_EXPECT(res, 201, v);
    json_object *o = rly_json(res);
    memset(b, 0, sizeof(*b));
    snprintf(b->s.session, sizeof(b->s.session), "%s", mstr(o, "session"));
    snprintf(b->s.poll_token, sizeof(b->s.poll_token), "%s", mstr(o, "poll_token"));
    snprintf(b->s.poll_url, sizeof(b->s.poll_url), "%s", mstr(o, "poll_url"));
    snprintf(b->start_url, sizeof(b->start_url), "%s", mstr(o, "start_url"));
    const char *t = strstr(b->start_url, "?t=");
    assert_non_null(t);
    snprintf(b->token, sizeof(b->token), "%s", t + 3);
    remember_entry(case_str(fx, c, "as_entry"));
}

static void bound_flow(const char *name, size_t case_index, const char *mode)
{
    json_object *fx = fixture(name), *c = json_object_array_get_idx(member(fx, "cases"), case_index), *expect = member(c, "expect");
    assert_non_null(c);
    for (int v = RLY_H1; v <= RLY_H2; ++v) {
        const char *what = rly_strf("1.1 %s / %s / %s", name, mstr(c, "name"), mode);
        rly_bound_t b;
        bound_create(fx, c, v, mode, &b);
        rly_bound_confirm_ok(&relay, v, &b);
        /* Continue sent the browser to this provider's authorize endpoint, asking for the mode the fixture uses */
        const char *as = case_str(fx, c, "authorization_server");
        if (strncmp(b.location, as, strlen(as)) != 0)
            fail_msg("%s: Continue went to %s", what, b.location);
        if ((strstr(b.location, "response_mode=form_post") != NULL) != (strcmp(mode, "form_post") == 0))
            fail_msg("%s: the authorize URL does not ask for %s: %s", what, mode, b.location);
        const char *const bound_secrets[] = {b.token, b.cookie, b.csrf, b.state, b.s.session, b.s.poll_token};
        for (size_t i = 0; i != sizeof(bound_secrets) / sizeof(bound_secrets[0]); ++i)
            remember(bound_secrets[i], strlen(bound_secrets[i]));
        flow_t f = make_flow(fx, c, b.state);
        rly_response_t *cb = send_callback(v, mode, f.query, b.cookie);
        RLY_EXPECT(cb, 200, v);
        char *release = rly_form_value(cb->body, "release");
        assert_non_null(release);
        snprintf(b.release, sizeof(b.release), "%s", release);
        remember(b.release, strlen(b.release));
        rly_response_t *p = rly_pickup(&b.s, v, 0);
        RLY_EXPECT(p, 200, v);
        RLY_EXPECT_STR(mstr(rly_json(p), "status"), "locked");
        json_object *o = rly_bound_open(&b, p);
        if (o == NULL)
            fail_msg("%s: the locked result does not open with the release key", what);
        expect_result(o, expect, b.state, f.hmac, what);
        if (f.hmac != NULL && !shopify_verify(mstr(fx, "hmac_secret"), o))
            fail_msg("%s: the instance's hmac check failed", what);
    }
}

static void test_bound_form_post(void **state)
{
    (void)state;
    bound_flow("microsoft", 0, "form_post"); /* code, state, session_state */
    bound_flow("microsoft", 1, "form_post"); /* with client_info */
}

static void test_bound_query(void **state)
{
    (void)state;
    bound_flow("shopify", 0, "query");    /* a tenant host under *.myshopify.com, the hmac over the relay's state */
    bound_flow("google", 0, "query");     /* iss, scope, authuser, prompt */
    bound_flow("salesforce", 2, "query"); /* Experience Cloud site */
}

/* ---- the log: last, it stops the relay ---- */

static void test_log_holds_none_of_it(void **state)
{
    (void)state;
    /* the tenant hosts a wildcard entry matched name the customer: the log shows the entry, never the host */
    for (size_t i = 0; i != NPROVIDERS; ++i) {
        json_object *cases = member(fixtures[i], "cases");
        for (size_t k = 0; k != json_object_array_length(cases); ++k) {
            json_object *c = json_object_array_get_idx(cases, k);
            const char *entry = case_str(fixtures[i], c, "as_entry"), *as = case_str(fixtures[i], c, "authorization_server");
            if (entry[0] == '*') {
                const char *host = as + strlen("https://");
                remember(host, strcspn(host, "/:"));
            }
        }
    }
    int exit_status = rly_relay_stop(&relay);
    size_t len;
    char *out = rly_relay_stdout(&relay, &len), *err = rly_relay_stderr(&relay, NULL);
    assert_true(len > 0);
    assert_true(nsecrets > 100);
    for (size_t i = 0; i != nsecrets; ++i) {
        if (strstr(out, secrets[i]) != NULL)
            fail_msg("the relay's log contains \"%.80s\"", secrets[i]);
        if (strstr(err, secrets[i]) != NULL)
            fail_msg("the relay's stderr contains \"%.80s\"", secrets[i]);
    }
    /* every as in the log is an entry the flows matched (wildcards as written, never the tenant's host) */
    size_t nwild = 0;
    for (const char *p = out, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
        rly_response_t line = {.body = rly_strf("%.*s", (int)(nl - p), p), .body_len = (size_t)(nl - p)};
        const char *as = mstr(rly_json(&line), "as");
        if (as == NULL)
            continue;
        int known = 0;
        for (size_t i = 0; i != nentries_seen; ++i)
            known |= strcmp(entries_seen[i], as) == 0;
        if (!known)
            fail_msg("a log line names the AS \"%s\", which is no entry a flow matched", as);
        nwild += as[0] == '*';
    }
    assert_true(nwild > 0);
    /* `authrelay audit` of the whole log is clean, and its totals name every entry, wildcards included */
    char *aout = NULL, *aerr = NULL;
    char *argv[] = {(char *)rly_bin(), "audit", relay.out_path, NULL};
    int rc = rly_run(argv, 10000, &aout, &aerr);
    if (rc != 0)
        fail_msg("authrelay audit exited %d: %.2000s %.500s", rc, aout, aerr);
    for (size_t i = 0; i != nentries_seen; ++i)
        if (strstr(aout, entries_seen[i]) == NULL)
            fail_msg("the audit's totals do not name the allow-list entry %s:\n%.2000s", entries_seen[i], aout);
    if (exit_status != 0)
        fail_msg("the relay exited with status %d after SIGTERM", exit_status);
}

/* ---- group ---- */

static int group_setup(void **state)
{
    (void)state;
    static const char *extra[2 * MAX_ALLOW + 8];
    size_t n = 0;
    extra[n++] = "--rate-limit";
    extra[n++] = "0";
    extra[n++] = "--log-level";
    extra[n++] = "debug";
    for (size_t i = 0; i != NPROVIDERS; ++i) {
        if ((fixtures[i] = load_fixture(provider_names[i])) == NULL)
            return -1;
        json_object *allow = member(fixtures[i], "allow_as");
        for (size_t k = 0; allow != NULL && k != json_object_array_length(allow); ++k) {
            if (n + 3 > sizeof(extra) / sizeof(extra[0]))
                return -1;
            extra[n++] = "--allow-as";
            extra[n++] = json_object_get_string(json_object_array_get_idx(allow, k));
        }
    }
    extra[n] = NULL;
    int rc = rly_relay_start(&relay, extra); /* the harness adds --allow-unbound: version 1 and 1.1 sessions */
    rly_arena_free();
    return rc;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = rly_relay_finish(&relay);
    for (size_t i = 0; i != NPROVIDERS; ++i)
        if (fixtures[i] != NULL)
            json_object_put(fixtures[i]);
    for (size_t i = 0; i != nsecrets; ++i)
        free(secrets[i]);
    for (size_t i = 0; i != nentries_seen; ++i)
        free(entries_seen[i]);
    return rc;
}

/* one test per fixture, named after it; provider_names[i] must be name */
#define PROVIDER(i, name)                                                                                                          \
    {                                                                                                                              \
        "test_provider@" #name, test_provider, NULL, rly_test_teardown, &provider_index[i]                                         \
    }

int main(void)
{
    const struct CMUnitTest tests[] = {
        PROVIDER(0, atlassian),
        PROVIDER(1, google),
        PROVIDER(2, microsoft),
        PROVIDER(3, salesforce),
        PROVIDER(4, hubspot),
        PROVIDER(5, zoho),
        PROVIDER(6, intuit),
        PROVIDER(7, shopify),
        PROVIDER(8, slack),
        PROVIDER(9, github),
        PROVIDER(10, figma),
        PROVIDER(11, klaviyo),
        PROVIDER(12, xero),
        RLY_TEST(test_sealed),
        RLY_TEST(test_bound_form_post),
        RLY_TEST(test_bound_query),
        RLY_TEST(test_log_holds_none_of_it), /* last: it stops the relay */
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
