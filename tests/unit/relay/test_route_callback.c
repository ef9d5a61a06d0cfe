/* test_route_callback.c: relay/route_callback.c without sockets: the redirect URI on the memory store */
#include "loopback.h"
#include "seal.h"

#define AS_URL "https://auth.example.com/authorize"
#define RETURN_URI "https://qorus.example.com:8011/grant"
#define WITH_RETURN "{\"authorization_server\":\"" AS_URL "\",\"return_uri\":\"" RETURN_URI "\"}"
#define WITHOUT_RETURN "{\"authorization_server\":\"" AS_URL "\"}"
#define CODE "SplxlOBeZQQYbYS6WxSbIA.eyJjb2RlIjoxfQ"
#define FORM "application/x-www-form-urlencoded"
#define HTML "text/html; charset=utf-8"

static int setup(void **state)
{
    *state = lb_relay_new(NULL);
    return 0;
}

static int teardown(void **state)
{
    lb_relay_free(*state);
    return 0;
}

/* GET <callback path>?<query> */
static lb_conn_t *callback(lb_relay_t *lb, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static lb_conn_t *callback(lb_relay_t *lb, const char *path, const char *fmt, ...)
{
    char query[RLY_QUERY_MAX + 64], url[RLY_QUERY_MAX + 128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(query, sizeof(query), fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof(query));
    snprintf(url, sizeof(url), "%s?%s", path, query);
    return lb_fetch(lb, "GET", url, NULL, NULL);
}

/* GET <callback path>?<query>, the query a template whose every "{S}" is the state */
static lb_conn_t *callback_tmpl(lb_relay_t *lb, const char *path, const char *tmpl, const char *st)
{
    char query[1024];
    size_t n = 0, slen = strlen(st);
    for (const char *p = tmpl; *p != '\0';) {
        if (strncmp(p, "{S}", 3) == 0) {
            assert_true(n + slen < sizeof(query));
            memcpy(query + n, st, slen);
            n += slen;
            p += 3;
        } else {
            assert_true(n + 1 < sizeof(query));
            query[n++] = *p++;
        }
    }
    query[n] = '\0';
    return callback(lb, path, "%s", query);
}

/* the pickup's answer for a session: status and (for 200) the result object, which the caller puts */
static int pickup(lb_relay_t *lb, const lb_session_t *s, json_object **result)
{
    char auth[128];
    lb_conn_t *c = lb_fetch(lb, "GET", s->path, NULL, "authorization", lb_bearer(auth, sizeof(auth), s->token), NULL);
    int status = c->status;
    *result = status == 200 ? lb_json(c) : NULL;
    lb_conn_free(c);
    return status;
}

/* the session is still pending: nothing was stored */
static void assert_pending(lb_relay_t *lb, const lb_session_t *s)
{
    lb_stored_t stored;
    assert_int_equal(lb_stored(lb, s->sid, &stored), STORE_OK);
    assert_false(stored.has_result);
    json_object *o;
    assert_int_equal(pickup(lb, s, &o), 202);
}

/* a browser's page: HTML, the security headers with the CSP, and nothing of the code or the state */
static void assert_page(lb_conn_t *c, int status, const lb_session_t *s, const char *title)
{
    if (c->status != status)
        fail_msg("%d, not %d: %.300s", c->status, status, c->body != NULL ? c->body : "");
    lb_assert_header(c, "content-type", HTML);
    assert_non_null(lb_header(c, "content-security-policy"));
    lb_assert_header(c, "cross-origin-opener-policy", "same-origin");
    lb_assert_header(c, "cache-control", "no-store");
    lb_assert_header(c, "x-frame-options", "DENY");
    lb_assert_header(c, "referrer-policy", "no-referrer");
    assert_null(lb_header(c, "location"));
    assert_int_equal(c->req.res.content_length, c->body_len);
    if (title != NULL)
        assert_non_null(strstr(c->body, title));
    assert_null(strstr(c->body, CODE));
    if (s != NULL)
        assert_null(strstr(c->body, s->state));
}

/* a 303 to where the session registered, with the security headers, no body, nothing of the code or the state */
static void assert_redirect(lb_conn_t *c, const char *location, const lb_session_t *s)
{
    if (c->status != 303)
        fail_msg("%d, not 303: %.300s", c->status, c->body != NULL ? c->body : "");
    assert_int_equal(lb_header_count(c, "location"), 1);
    lb_assert_header(c, "location", location);
    assert_null(strstr(location, s->state));
    lb_assert_header(c, "cache-control", "no-store");
    lb_assert_header(c, "referrer-policy", "no-referrer");
    assert_null(lb_header(c, "content-security-policy"));
    assert_int_equal(c->body_len, 0);
}

/* code and state: 303 back to return_uri with status=success; the result waits for the pickup */
static void test_success_redirect(void **state)
{
    lb_relay_t *lb = *state;
    lb_session_t s;
    lb_create(lb, WITH_RETURN, &s);
    lb_conn_t *c = callback(lb, RELAY_PATH_CALLBACK, "code=%s&state=%s&iss=https%%3A%%2F%%2Fauth.example.com", CODE, s.state);
    assert_redirect(c, RETURN_URI "?status=success", &s);
    lb_conn_free(c);

    lb_stored_t stored;
    assert_int_equal(lb_stored(lb, s.sid, &stored), STORE_OK);
    assert_true(stored.has_result);
    assert_true(stored.rec.completed_at > 0);

    json_object *o;
    assert_int_equal(pickup(lb, &s, &o), 200);
    lb_assert_json_str(o, "status", "authorized");
    lb_assert_json_str(o, "code", CODE);
    lb_assert_json_str(o, "state", s.state);
    lb_assert_json_str(o, "iss", "https://auth.example.com");
    json_object_put(o);

    assert_true(lb_log_has(lb, "\"event\":\"callback\"", "\"as\":\"unlisted\"", "\"outcome\":\"authorized\"", NULL));
    assert_false(lb_log_contains(lb, CODE));
    assert_false(lb_log_contains(lb, s.state));
}

/* the alias path, and a return_uri with a query of its own: status is appended with '&' */
static void test_success_alias_and_query(void **state)
{
    lb_relay_t *lb = *state;
    lb_session_t s;
    lb_create(lb, "{\"authorization_server\":\"" AS_URL "\",\"return_uri\":\"" RETURN_URI "?tab=oauth&x=1\"}", &s);
    lb_conn_t *c = callback(lb, RELAY_PATH_CALLBACK_ALIAS, "state=%s&code=%s", s.state, CODE);
    assert_redirect(c, RETURN_URI "?tab=oauth&x=1&status=success", &s);
    lb_conn_free(c);
}

/* the AS's error: 303 with status=error&message=<error, percent-encoded>; the pickup gets the denial */
static void test_denied_redirect(void **state)
{
    lb_relay_t *lb = *state;
    lb_session_t s;
    lb_create(lb, WITH_RETURN, &s);
    lb_conn_t *c =
        callback(lb, RELAY_PATH_CALLBACK, "error=access_denied&error_description=The%%20user%%20said%%20no&state=%s", s.state);
    assert_redirect(c, RETURN_URI "?status=error&message=access_denied", &s);
    lb_conn_free(c);
    json_object *o;
    assert_int_equal(pickup(lb, &s, &o), 200);
    lb_assert_json_str(o, "status", "denied");
    lb_assert_json_str(o, "error", "access_denied");
    lb_assert_json_str(o, "error_description", "The user said no");
    assert_null(lb_json_str(o, "code"));
    json_object_put(o);
    assert_true(lb_log_has(lb, "\"event\":\"callback\"", "\"outcome\":\"denied\"", NULL));

    /* an error outside the unreserved characters is percent-encoded in the redirect */
    lb_create(lb, WITH_RETURN, &s);
    c = callback(lb, RELAY_PATH_CALLBACK, "error=invalid%%20scope%%26x%%3D1&state=%s", s.state);
    assert_redirect(c, RETURN_URI "?status=error&message=invalid%20scope%26x%3D1", &s);
    lb_conn_free(c);
}

/* without a return_uri: a 200 page; a denial shows the AS's error, escaped */
static void test_no_return_uri(void **state)
{
    lb_relay_t *lb = *state;
    lb_session_t s;
    lb_create(lb, WITHOUT_RETURN, &s);
    lb_conn_t *c = callback(lb, RELAY_PATH_CALLBACK, "code=%s&state=%s", CODE, s.state);
    assert_page(c, 200, &s, "Authorization complete");
    lb_conn_free(c);
    json_object *o;
    assert_int_equal(pickup(lb, &s, &o), 200);
    lb_assert_json_str(o, "code", CODE);
    json_object_put(o);

    lb_create(lb, WITHOUT_RETURN, &s);
    c = callback(lb, RELAY_PATH_CALLBACK, "error=%%3Cb%%3Eno%%3C%%2Fb%%3E&state=%s", s.state);
    assert_page(c, 200, &s, "Authorization not granted");
    assert_non_null(strstr(c->body, "&lt;b&gt;no&lt;/b&gt;"));
    assert_null(strstr(c->body, "<b>"));
    lb_conn_free(c);
}

/* a state that is missing, repeated, malformed, mangled or signed by another key: 400, nothing stored */
static void test_bad_state(void **state)
{
    lb_relay_t *lb = *state;
    lb_session_t s;
    lb_create(lb, WITH_RETURN, &s);

    char mangled[RLY_STATE_MAX + 1], foreign[RLY_STATE_LEN + 1];
    memcpy(mangled, s.state, sizeof(mangled));
    mangled[10] = mangled[10] == 'A' ? 'B' : 'A';
    rly_keyring_t other;
    assert_int_equal(rly_keyring_ephemeral(&other), 0);
    assert_int_equal(rly_state_encode_flags(&other, s.sid, RLY_STATE_DIRECT, foreign), RLY_STATE_LEN);

    const char *queries[] = {"code=" CODE,
                             "code=" CODE "&state=",
                             "code=" CODE "&state=bad",
                             "code=" CODE "&state={S}&state={S}",
                             "code=" CODE "&state={S}!",
                             "code=" CODE "&STATE={S}"};
    for (size_t i = 0; i != sizeof(queries) / sizeof(queries[0]); ++i) {
        lb_conn_t *c = callback_tmpl(lb, RELAY_PATH_CALLBACK, queries[i], s.state);
        assert_page(c, 400, &s, "Invalid authorization response");
        lb_conn_free(c);
    }
    lb_conn_t *c = callback(lb, RELAY_PATH_CALLBACK, "code=%s&state=%s", CODE, mangled);
    assert_page(c, 400, &s, NULL);
    lb_conn_free(c);
    c = callback(lb, RELAY_PATH_CALLBACK, "code=%s&state=%s", CODE, foreign);
    assert_page(c, 400, &s, NULL);
    lb_conn_free(c);
    /* no query at all */
    c = lb_fetch(lb, "GET", RELAY_PATH_CALLBACK, NULL, NULL);
    assert_page(c, 400, NULL, NULL);
    lb_conn_free(c);
    assert_pending(lb, &s);
    assert_true(lb_log_has(lb, "\"event\":\"callback\"", "\"outcome\":\"bad_state\"", NULL));
}

/* a valid state but a request RFC 6749 does not allow: 400, nothing stored */
static void test_bad_request(void **state)
{
    lb_relay_t *lb = *state;
    lb_session_t s;
    lb_create(lb, WITH_RETURN, &s);
    char *big = malloc(RLY_CODE_MAX + 2);
    assert_non_null(big);
    memset(big, 'c', RLY_CODE_MAX + 1);
    big[RLY_CODE_MAX + 1] = '\0';
    const char *queries[] = {"state={S}",                                    /* neither code nor error */
                             "code=" CODE "&error=access_denied&state={S}",  /* both */
                             "code=" CODE "&code=" CODE "&state={S}",        /* code twice */
                             "error=access_denied&error=x&state={S}",        /* error twice */
                             "error=%22quoted%22&state={S}",                 /* outside the error charset */
                             "code=" CODE "&error_description=x&state={S}"}; /* a description without an error */
    for (size_t i = 0; i != sizeof(queries) / sizeof(queries[0]); ++i) {
        lb_conn_t *c = callback_tmpl(lb, RELAY_PATH_CALLBACK, queries[i], s.state);
        assert_page(c, 400, &s, "Invalid authorization response");
        lb_conn_free(c);
    }
    lb_conn_t *c = callback(lb, RELAY_PATH_CALLBACK, "code=%s&state=%s", big, s.state);
    assert_page(c, 400, &s, NULL);
    lb_conn_free(c);
    free(big);
    assert_pending(lb, &s);
    assert_true(lb_log_has(lb, "\"event\":\"callback\"", "\"outcome\":\"bad_request\"", NULL));
}

/* a verified state of a session the store does not have (never created, deleted): 410 on both write paths */
static void test_unknown_session(void **state)
{
    lb_relay_t *lb = *state;
    uint8_t sid[RLY_SESSION_ID_BYTES];
    char text[RLY_SESSION_ID_LEN + 1], st[RLY_STATE_LEN + 1];
    assert_int_equal(rly_session_new(sid, text), 0);
    for (unsigned flags = 0; flags <= RLY_STATE_DIRECT; ++flags) {
        assert_int_equal(rly_state_encode_flags(&lb->keys, sid, flags, st), RLY_STATE_LEN);
        lb_conn_t *c = callback(lb, RELAY_PATH_CALLBACK, "code=%s&state=%s", CODE, st);
        assert_page(c, 410, NULL, "Authorization expired");
        assert_string_equal(c->req.res.reason, "Gone");
        lb_conn_free(c);
    }
    assert_int_equal(store_memory_count(lb->relay.store), 0);
    assert_true(lb_log_has(lb, "\"event\":\"callback\"", "\"outcome\":\"expired\"", NULL));

    /* cancelled by the instance */
    lb_session_t s;
    char auth[128];
    lb_create(lb, WITH_RETURN, &s);
    lb_conn_t *c = lb_fetch(lb, "DELETE", s.path, NULL, "authorization", lb_bearer(auth, sizeof(auth), s.token), NULL);
    assert_int_equal(c->status, 204);
    lb_conn_free(c);
    c = callback(lb, RELAY_PATH_CALLBACK, "code=%s&state=%s", CODE, s.state);
    assert_page(c, 410, &s, NULL);
    lb_conn_free(c);
}

/* a second callback for a completed session: 409, and the first result stands */
static void test_replay(void **state)
{
    lb_relay_t *lb = *state;
    lb_session_t s;
    lb_create(lb, WITH_RETURN, &s);
    lb_conn_t *c = callback(lb, RELAY_PATH_CALLBACK, "code=%s&state=%s", CODE, s.state);
    assert_int_equal(c->status, 303);
    lb_conn_free(c);
    c = callback(lb, RELAY_PATH_CALLBACK, "code=second&state=%s", s.state);
    assert_page(c, 409, &s, "Authorization already completed");
    assert_string_equal(c->req.res.reason, "Conflict");
    lb_conn_free(c);
    c = callback(lb, RELAY_PATH_CALLBACK_ALIAS, "error=access_denied&state=%s", s.state);
    assert_page(c, 409, &s, NULL);
    lb_conn_free(c);
    json_object *o;
    assert_int_equal(pickup(lb, &s, &o), 200);
    lb_assert_json_str(o, "status", "authorized");
    lb_assert_json_str(o, "code", CODE);
    json_object_put(o);
    assert_true(lb_log_has(lb, "\"event\":\"callback\"", "\"outcome\":\"replay\"", NULL));
}

/* response_mode=form_post: the same parameters in an urlencoded POST body */
static void test_form_post(void **state)
{
    lb_relay_t *lb = *state;
    lb_session_t s;
    char body[512];
    lb_create(lb, WITH_RETURN, &s);
    snprintf(body, sizeof(body), "code=%s&state=%s", CODE, s.state);
    lb_conn_t *c = lb_fetch(lb, "POST", RELAY_PATH_CALLBACK, body, "content-type", FORM "; charset=UTF-8", NULL);
    assert_redirect(c, RETURN_URI "?status=success", &s);
    lb_conn_free(c);
    json_object *o;
    assert_int_equal(pickup(lb, &s, &o), 200);
    lb_assert_json_str(o, "code", CODE);
    json_object_put(o);

    /* the body is what counts, not the query */
    lb_create(lb, WITH_RETURN, &s);
    snprintf(body, sizeof(body), "error=access_denied&state=%s", s.state);
    char path[256];
    snprintf(path, sizeof(path), RELAY_PATH_CALLBACK_ALIAS "?code=%s&state=%s", CODE, s.state);
    c = lb_fetch(lb, "POST", path, body, "content-type", FORM, NULL);
    assert_redirect(c, RETURN_URI "?status=error&message=access_denied", &s);
    lb_conn_free(c);
}

/* a POST that is not a form: 415, a form over 16 KiB: 413; nothing stored */
static void test_form_post_refused(void **state)
{
    lb_relay_t *lb = *state;
    lb_session_t s;
    char body[512];
    lb_create(lb, WITH_RETURN, &s);
    snprintf(body, sizeof(body), "code=%s&state=%s", CODE, s.state);
    const char *types[] = {"application/json", "text/plain", "multipart/form-data; boundary=x"};
    for (size_t i = 0; i != sizeof(types) / sizeof(types[0]); ++i) {
        lb_conn_t *c = lb_fetch(lb, "POST", RELAY_PATH_CALLBACK, body, "content-type", types[i], NULL);
        assert_page(c, 415, &s, NULL);
        assert_string_equal(c->req.res.reason, "Unsupported Media Type");
        lb_conn_free(c);
    }
    lb_conn_t *c = lb_fetch(lb, "POST", RELAY_PATH_CALLBACK, body, NULL);
    assert_page(c, 415, &s, NULL);
    lb_conn_free(c);
    assert_true(lb_log_has(lb, "\"event\":\"callback\"", "\"outcome\":\"bad_media_type\"", NULL));

    char *big = malloc(RLY_QUERY_MAX + 2);
    assert_non_null(big);
    int n = snprintf(big, RLY_QUERY_MAX + 2, "state=%s&code=", s.state);
    memset(big + n, 'c', RLY_QUERY_MAX + 1 - (size_t)n);
    big[RLY_QUERY_MAX + 1] = '\0';
    c = lb_fetch(lb, "POST", RELAY_PATH_CALLBACK, big, "content-type", FORM, NULL);
    assert_page(c, 413, &s, "Request too large");
    lb_conn_free(c);
    free(big);
    assert_pending(lb, &s);
}

/* a sealed session: the callback reads the session first, seals the result to the instance's key, and redirects */
static void test_sealed(void **state)
{
    lb_relay_t *lb = *state;
    uint8_t priv[32], pub[32];
    char pub_text[64], body[512];
    assert_int_equal(rly_x25519_keypair(priv, pub), 0);
    rly_b64url_encode(pub_text, pub, sizeof(pub));
    snprintf(body, sizeof(body), "{\"authorization_server\":\"" AS_URL "\",\"return_uri\":\"" RETURN_URI "\",\"seal_key\":\"%s\"}",
             pub_text);
    lb_session_t s;
    lb_create(lb, body, &s);
    lb_conn_t *c = callback(lb, RELAY_PATH_CALLBACK, "code=%s&state=%s", CODE, s.state);
    assert_redirect(c, RETURN_URI "?status=success", &s);
    lb_conn_free(c);

    json_object *o;
    assert_int_equal(pickup(lb, &s, &o), 200);
    lb_assert_json_str(o, "status", "sealed");
    const char *sealed = lb_json_str(o, "sealed");
    assert_non_null(sealed);
    assert_null(strstr(sealed, CODE));
    size_t ptlen;
    uint8_t *pt = rly_unseal(priv, s.id, strlen(s.id), sealed, strlen(sealed), &ptlen);
    assert_non_null(pt);
    json_object *inner = json_tokener_parse((const char *)pt);
    assert_non_null(inner);
    lb_assert_json_str(inner, "status", "authorized");
    lb_assert_json_str(inner, "code", CODE);
    json_object_put(inner);
    free(pt);
    json_object_put(o);
}

/* a sealed session reached with a "direct" state (one minted before its flag changed): the store refuses the unsealed
 * write, and the callback seals the result and writes it again */
static void test_sealed_direct_state(void **state)
{
    lb_relay_t *lb = *state;
    uint8_t priv[32], pub[32];
    char pub_text[64], body[512], direct[RLY_STATE_LEN + 1];
    assert_int_equal(rly_x25519_keypair(priv, pub), 0);
    rly_b64url_encode(pub_text, pub, sizeof(pub));
    snprintf(body, sizeof(body), "{\"authorization_server\":\"" AS_URL "\",\"seal_key\":\"%s\"}", pub_text);
    lb_session_t s;
    lb_create(lb, body, &s);
    assert_int_equal(rly_state_encode_flags(&lb->keys, s.sid, RLY_STATE_DIRECT, direct), RLY_STATE_LEN);
    lb_conn_t *c = callback(lb, RELAY_PATH_CALLBACK, "code=%s&state=%s", CODE, direct);
    assert_page(c, 200, &s, "Authorization complete");
    lb_conn_free(c);

    json_object *o;
    assert_int_equal(pickup(lb, &s, &o), 200);
    lb_assert_json_str(o, "status", "sealed");
    const char *sealed = lb_json_str(o, "sealed");
    assert_non_null(sealed);
    size_t ptlen;
    uint8_t *pt = rly_unseal(priv, s.id, strlen(s.id), sealed, strlen(sealed), &ptlen);
    assert_non_null(pt);
    assert_non_null(strstr((const char *)pt, CODE));
    free(pt);
    json_object_put(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_success_redirect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_success_alias_and_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_denied_redirect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_return_uri, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_form_post, setup, teardown),
        cmocka_unit_test_setup_teardown(test_form_post_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sealed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sealed_direct_state, setup, teardown),
    };
    return cmocka_run_group_tests_name("route_callback", tests, NULL, NULL);
}
