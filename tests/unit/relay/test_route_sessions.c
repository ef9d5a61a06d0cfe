/* test_route_sessions.c: relay/route_sessions.c without sockets: discovery and session creation, on the memory store */
#include "loopback.h"
#include "seal.h"

#define AS_URL "https://auth.example.com/authorize"
#define MINIMAL "{\"authorization_server\":\"" AS_URL "\"}"

static int setup(void **state)
{
    *state = lb_relay_new(NULL);
    return 0;
}

static int setup_allow_list(void **state)
{
    lb_options_t opts = {.allow_as = {"auth.example.com", "login.example.org", NULL}};
    *state = lb_relay_new(&opts);
    return 0;
}

static int teardown(void **state)
{
    lb_relay_free(*state);
    return 0;
}

static size_t stored_count(lb_relay_t *lb)
{
    return store_memory_count(lb->relay.store);
}

static lb_conn_t *post_json(lb_relay_t *lb, const char *body)
{
    return lb_fetch(lb, "POST", RELAY_PATH_SESSIONS, body, "content-type", "application/json", NULL);
}

static void assert_api_headers(lb_conn_t *c)
{
    lb_assert_header(c, "cache-control", "no-store");
    lb_assert_header(c, "x-content-type-options", "nosniff");
    lb_assert_header(c, "referrer-policy", "no-referrer");
    lb_assert_header(c, "x-frame-options", "DENY");
    lb_assert_header(c, "strict-transport-security", "max-age=31536000");
    assert_null(lb_header(c, "content-security-policy"));
    assert_null(lb_header(c, "access-control-allow-origin"));
    assert_int_equal(c->req.res.content_length, c->body_len);
}

/* the array member as strings joined by ',' into buf */
static const char *joined(json_object *o, const char *key, char *buf, size_t cap)
{
    json_object *a;
    assert_true(json_object_object_get_ex(o, key, &a) && json_object_is_type(a, json_type_array));
    buf[0] = '\0';
    for (size_t i = 0, n = 0; i != json_object_array_length(a); ++i) {
        json_object *e = json_object_array_get_idx(a, i);
        assert_true(json_object_is_type(e, json_type_string));
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", i == 0 ? "" : ",", json_object_get_string(e));
        assert_true(n < cap);
    }
    return buf;
}

static void test_discovery(void **state)
{
    lb_relay_t *lb = *state;
    lb_conn_t *c = lb_fetch(lb, "GET", RELAY_PATH_DISCOVERY, NULL, NULL);
    assert_int_equal(c->status, 200);
    lb_assert_header(c, "content-type", "application/json");
    assert_api_headers(c);
    json_object *o = lb_json(c);
    char buf[256];
    lb_assert_json_str(o, "version", RLY_PROTOCOL_VERSION);
    lb_assert_json_str(o, "redirect_uri", LB_PUBLIC_URL RELAY_PATH_CALLBACK);
    lb_assert_json_str(o, "sessions_endpoint", LB_PUBLIC_URL RELAY_PATH_SESSIONS);
    assert_int_equal(lb_json_int(o, "session_ttl_max"), LB_SESSION_TTL_MAX);
    assert_int_equal(lb_json_int(o, "wait_max"), LB_WAIT_MAX);
    assert_string_equal(joined(o, "authorization_servers", buf, sizeof(buf)), "");
    assert_string_equal(joined(o, "seal_algorithms", buf, sizeof(buf)), "X25519-HKDF-SHA256-A256GCM");
    json_object *unbound;
    assert_true(json_object_object_get_ex(o, "unbound_sessions", &unbound) && json_object_is_type(unbound, json_type_boolean));
    assert_true(json_object_get_boolean(unbound)); /* the harness allows version-1 sessions */
    json_object_put(o);
    /* redirect_uri is the one the routes use */
    assert_string_equal(lb->relay.redirect_uri, LB_PUBLIC_URL RELAY_PATH_CALLBACK);
    lb_conn_free(c);
}

/* the allow-list, entries as configured, in order */
static void test_discovery_allow_list(void **state)
{
    lb_relay_t *lb = *state;
    lb_conn_t *c = lb_fetch(lb, "GET", RELAY_PATH_DISCOVERY, NULL, NULL);
    assert_int_equal(c->status, 200);
    json_object *o = lb_json(c);
    char buf[256];
    assert_string_equal(joined(o, "authorization_servers", buf, sizeof(buf)), "auth.example.com,login.example.org");
    json_object_put(o);
    lb_conn_free(c);
}

static void test_create(void **state)
{
    lb_relay_t *lb = *state;
    lb_conn_t *c = post_json(lb, "{\"authorization_server\":\"" AS_URL "?x=1\",\"return_uri\":\"https://qorus.example.com:8011/"
                                 "grant\",\"ttl\":120,\"unknown\":[1,2]}");
    assert_int_equal(c->status, 201);
    assert_string_equal(c->req.res.reason, "Created");
    lb_assert_header(c, "content-type", "application/json");
    assert_api_headers(c);

    json_object *o = lb_json(c);
    const char *id = lb_json_str(o, "session"), *st = lb_json_str(o, "state"), *token = lb_json_str(o, "poll_token");
    assert_non_null(id);
    assert_non_null(st);
    assert_non_null(token);
    assert_int_equal(json_object_object_length(o), 6);
    uint8_t sid[RLY_SESSION_ID_BYTES], from_state[RLY_SESSION_ID_BYTES];
    assert_int_equal(rly_session_parse(id, strlen(id), sid), 0);
    assert_int_equal(strlen(token), RLY_POLL_TOKEN_LEN);
    lb_assert_json_str(o, "redirect_uri", LB_PUBLIC_URL RELAY_PATH_CALLBACK);
    char poll_url[128];
    snprintf(poll_url, sizeof(poll_url), LB_PUBLIC_URL RELAY_PATH_SESSIONS "/%s", id);
    lb_assert_json_str(o, "poll_url", poll_url);
    lb_assert_header(c, "location", poll_url);
    assert_int_equal(lb_json_int(o, "expires_in"), 120);

    /* the state is the session's, under the relay's key, and says "no seal key" */
    unsigned flags = 0;
    assert_int_equal(strlen(st), RLY_STATE_LEN);
    assert_int_equal(strspn(st, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), RLY_STATE_LEN);
    assert_int_equal(rly_state_verify_flags(&lb->keys, st, strlen(st), from_state, &flags), 0);
    assert_memory_equal(from_state, sid, sizeof(sid));
    assert_int_equal(flags, RLY_STATE_DIRECT);
    rly_keyring_t other;
    assert_int_equal(rly_keyring_ephemeral(&other), 0);
    assert_int_equal(rly_state_verify(&other, st, strlen(st), from_state), -1);

    /* the store holds it: the token's hash, the AS host, no result, the TTL asked */
    lb_stored_t stored;
    uint8_t hash[32];
    assert_int_equal(stored_count(lb), 1);
    assert_int_equal(lb_stored(lb, sid, &stored), STORE_OK);
    rly_poll_token_hash(token, strlen(token), hash);
    assert_memory_equal(stored.rec.token_hash, hash, sizeof(hash));
    assert_string_equal(stored.rec.as_id, "unlisted"); /* no allow-list: the anonymous identifier, never the host */
    assert_false(stored.has_result);
    assert_int_equal(stored.rec.sealed, 0);
    assert_true(stored.rec.meta_len > 0);
    assert_true(stored.rec.expires_in_ms > 115000 && stored.rec.expires_in_ms <= 120000);

    /* logged with its AS, and nothing of the flow's secrets */
    assert_true(lb_log_has(lb, "\"event\":\"session_create\"", "\"as\":\"unlisted\"", "\"outcome\":\"created\"", NULL));
    assert_false(lb_log_contains(lb, id));
    assert_false(lb_log_contains(lb, st));
    assert_false(lb_log_contains(lb, token));
    assert_false(lb_log_contains(lb, "qorus.example.com"));
    json_object_put(o);
    lb_conn_free(c);
}

/* the defaults, and every session its own id, state and token */
static void test_create_defaults(void **state)
{
    lb_relay_t *lb = *state;
    lb_session_t a, b;
    lb_create(lb, MINIMAL, &a);
    lb_create(lb, MINIMAL, &b);
    assert_string_not_equal(a.id, b.id);
    assert_string_not_equal(a.state, b.state);
    assert_string_not_equal(a.token, b.token);
    assert_int_equal(stored_count(lb), 2);

    lb_conn_t *c = post_json(lb, MINIMAL);
    json_object *o = lb_json(c);
    assert_int_equal(lb_json_int(o, "expires_in"), RLY_TTL_DEFAULT);
    json_object_put(o);
    lb_conn_free(c);

    /* a media type with parameters is application/json too */
    c = lb_fetch(lb, "POST", RELAY_PATH_SESSIONS, MINIMAL, "content-type", "application/json; charset=UTF-8", NULL);
    assert_int_equal(c->status, 201);
    lb_conn_free(c);
    assert_int_equal(stored_count(lb), 4);
}

/* with a seal key the state does not say "direct" and the store takes only a sealed result */
static void test_create_sealed(void **state)
{
    lb_relay_t *lb = *state;
    uint8_t priv[32], pub[32];
    char pub_text[64], body[256];
    assert_int_equal(rly_x25519_keypair(priv, pub), 0);
    rly_b64url_encode(pub_text, pub, sizeof(pub));
    snprintf(body, sizeof(body), "{\"authorization_server\":\"" AS_URL "\",\"seal_key\":\"%s\"}", pub_text);
    lb_session_t s;
    lb_create(lb, body, &s);
    unsigned flags = 99;
    uint8_t sid[RLY_SESSION_ID_BYTES];
    assert_int_equal(rly_state_verify_flags(&lb->keys, s.state, strlen(s.state), sid, &flags), 0);
    assert_int_equal(flags, 0);
    lb_stored_t stored;
    assert_int_equal(lb_stored(lb, s.sid, &stored), STORE_OK);
    assert_int_equal(stored.rec.sealed, 1);
}

/* a JSON document of exactly n bytes: MINIMAL padded with spaces */
static char *padded(size_t n)
{
    size_t m = sizeof(MINIMAL) - 1;
    assert_true(n >= m);
    char *s = malloc(n + 1);
    assert_non_null(s);
    memcpy(s, MINIMAL, m - 1);
    memset(s + m - 1, ' ', n - m);
    s[n - 1] = '}';
    s[n] = '\0';
    return s;
}

static void test_too_large(void **state)
{
    lb_relay_t *lb = *state;
    char *body = padded(RLY_SESSION_BODY_MAX + 1);
    lb_conn_t *c = post_json(lb, body);
    lb_assert_json_error(c, 413, "invalid_request");
    assert_string_equal(c->req.res.reason, "Payload Too Large");
    assert_api_headers(c);
    lb_conn_free(c);
    /* the size is checked before the media type */
    c = lb_fetch(lb, "POST", RELAY_PATH_SESSIONS, body, "content-type", "text/plain", NULL);
    assert_int_equal(c->status, 413);
    lb_conn_free(c);
    free(body);
    assert_int_equal(stored_count(lb), 0);
    assert_true(lb_log_has(lb, "\"event\":\"session_create\"", "\"outcome\":\"too_large\"", NULL));

    body = padded(RLY_SESSION_BODY_MAX);
    c = post_json(lb, body);
    assert_int_equal(c->status, 201);
    lb_conn_free(c);
    free(body);
    assert_int_equal(stored_count(lb), 1);
}

static void test_media_type(void **state)
{
    lb_relay_t *lb = *state;
    const char *types[] = {"text/plain", "application/x-www-form-urlencoded", "application/jsonp", "text/json",
                           "multipart/form-data; boundary=x"};
    lb_conn_t *c = lb_fetch(lb, "POST", RELAY_PATH_SESSIONS, MINIMAL, NULL);
    lb_assert_json_error(c, 415, "invalid_request");
    assert_string_equal(c->req.res.reason, "Unsupported Media Type");
    lb_conn_free(c);
    for (size_t i = 0; i != sizeof(types) / sizeof(types[0]); ++i) {
        c = lb_fetch(lb, "POST", RELAY_PATH_SESSIONS, MINIMAL, "content-type", types[i], NULL);
        lb_assert_json_error(c, 415, "invalid_request");
        lb_conn_free(c);
    }
    assert_int_equal(stored_count(lb), 0);
    assert_true(lb_log_has(lb, "\"event\":\"session_create\"", "\"outcome\":\"bad_media_type\"", NULL));
}

static void test_invalid(void **state)
{
    lb_relay_t *lb = *state;
    const char *bodies[] = {
        "",
        "not json",
        "[]",
        "{}",
        "null",
        "{\"authorization_server\":5}",
        "{\"authorization_server\":\"http://auth.example.com/authorize\"}",
        "{\"authorization_server\":\"auth.example.com\"}",
        "{\"authorization_server\":\"" AS_URL "#frag\"}",
        "{\"authorization_server\":\"" AS_URL "\",\"ttl\":59}",
        "{\"authorization_server\":\"" AS_URL "\",\"ttl\":601}",
        "{\"authorization_server\":\"" AS_URL "\",\"ttl\":\"120\"}",
        "{\"authorization_server\":\"" AS_URL "\",\"ttl\":120.5}",
        "{\"authorization_server\":\"" AS_URL "\",\"return_uri\":\"https://app.example/grant#x\"}",
        "{\"authorization_server\":\"" AS_URL "\",\"return_uri\":\"ftp://app.example/grant\"}",
        "{\"authorization_server\":\"" AS_URL "\",\"return_uri\":\"http://app.example/grant\"}",
        "{\"authorization_server\":\"" AS_URL "\",\"return_uri\":7}",
        "{\"authorization_server\":\"" AS_URL "\",\"seal_key\":\"short\"}",
        "{\"authorization_server\":\"" AS_URL "\",\"authorization_server\":\"" AS_URL "\"}",
        MINIMAL " x",
        "{\"authorization_server\":\"" AS_URL "\",\"x\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}",
    };
    for (size_t i = 0; i != sizeof(bodies) / sizeof(bodies[0]); ++i) {
        lb_conn_t *c = post_json(lb, bodies[i]);
        if (c->status != 400)
            fail_msg("%s: %d, not 400", bodies[i], c->status);
        lb_assert_json_error(c, 400, "invalid_request");
        assert_string_equal(c->req.res.reason, "Bad Request");
        lb_conn_free(c);
    }
    /* no body at all */
    lb_conn_t *c = lb_fetch(lb, "POST", RELAY_PATH_SESSIONS, NULL, "content-type", "application/json", NULL);
    lb_assert_json_error(c, 400, "invalid_request");
    lb_conn_free(c);
    assert_int_equal(stored_count(lb), 0);
    assert_true(lb_log_has(lb, "\"event\":\"session_create\"", "\"outcome\":\"invalid\"", NULL));
}

/* a version-1 session (no authorize_params) only with --allow-unbound */
static void test_unbound_needs_allowing(void **state)
{
    lb_relay_t *lb = *state;
    lb->config.allow_unbound = 0; /* the policy is read per request */
    lb_conn_t *c = post_json(lb, MINIMAL);
    lb_assert_json_error(c, 400, "invalid_request");
    lb_conn_free(c);
    assert_int_equal(stored_count(lb), 0);
    lb->config.allow_unbound = 1;
    c = post_json(lb, MINIMAL);
    assert_int_equal(c->status, 201);
    lb_conn_free(c);
    assert_int_equal(stored_count(lb), 1);
}

/* plain http to a loopback AS (and return_uri) only in dev mode */
static void test_dev_loopback(void **state)
{
    lb_relay_t *lb = *state;
    const char *body =
        "{\"authorization_server\":\"http://127.0.0.1:9000/authorize\",\"return_uri\":\"http://localhost:8011/grant\"}";
    lb_conn_t *c = post_json(lb, body);
    assert_int_equal(c->status, 201);
    lb_conn_free(c);
    lb->config.dev = 0; /* the policy is read per request */
    c = post_json(lb, body);
    lb_assert_json_error(c, 400, "invalid_request");
    lb_conn_free(c);
    assert_int_equal(stored_count(lb), 1);
}

static void test_allow_list(void **state)
{
    lb_relay_t *lb = *state;
    lb_conn_t *c = post_json(lb, MINIMAL);
    assert_int_equal(c->status, 201);
    lb_conn_free(c);
    c = post_json(lb, "{\"authorization_server\":\"https://AUTH.Example.COM/authorize\"}"); /* hosts compare lower-cased */
    assert_int_equal(c->status, 201);
    lb_conn_free(c);
    c = post_json(lb, "{\"authorization_server\":\"https://login.example.org/oauth2/authorize\"}");
    assert_int_equal(c->status, 201);
    lb_conn_free(c);
    assert_int_equal(stored_count(lb), 3);

    const char *refused[] = {"https://evil.example/authorize", "https://sub.auth.example.com/authorize",
                             "https://auth.example.com.evil.example/authorize", "https://example.com/authorize"};
    for (size_t i = 0; i != sizeof(refused) / sizeof(refused[0]); ++i) {
        char body[256];
        snprintf(body, sizeof(body), "{\"authorization_server\":\"%s\"}", refused[i]);
        c = post_json(lb, body);
        lb_assert_json_error(c, 403, "authorization_server_not_allowed");
        assert_string_equal(c->req.res.reason, "Forbidden");
        lb_conn_free(c);
    }
    /* a malformed request is 400 whatever its AS */
    c = post_json(lb, "{\"authorization_server\":\"https://evil.example/authorize\",\"ttl\":1}");
    lb_assert_json_error(c, 400, "invalid_request");
    lb_conn_free(c);
    assert_int_equal(stored_count(lb), 3);
    assert_true(lb_log_has(lb, "\"event\":\"session_create\"", "\"outcome\":\"not_allowed\"", NULL));
    assert_false(lb_log_contains(lb, "evil.example"));
}

/* at --sessions-max live sessions: 503 temporarily_unavailable with Retry-After, outcome "full", nothing stored; the
 * sessions already there go on (pickup, delete); a deleted one makes room */
static void test_full(void **state)
{
    lb_relay_t *lb = *state;
    lb_session_t s[2];
    char auth[128];
    lb->config.sessions_max = 2;
    lb_create(lb, MINIMAL, &s[0]);
    lb_create(lb, MINIMAL, &s[1]);
    for (int i = 0; i != 2; ++i) {
        lb_conn_t *c = post_json(lb, MINIMAL);
        lb_assert_json_error(c, 503, "temporarily_unavailable");
        lb_assert_header(c, "retry-after", "30");
        assert_api_headers(c);
        lb_conn_free(c);
    }
    assert_int_equal(stored_count(lb), 2);
    assert_true(lb_log_has(lb, "\"event\":\"session_create\"", "\"outcome\":\"full\"", "\"as\":\"unlisted\"", NULL));

    lb_conn_t *c = lb_fetch(lb, "GET", s[0].path, NULL, "authorization", lb_bearer(auth, sizeof(auth), s[0].token), NULL);
    assert_int_equal(c->status, 202);
    lb_conn_free(c);
    c = lb_fetch(lb, "DELETE", s[1].path, NULL, "authorization", lb_bearer(auth, sizeof(auth), s[1].token), NULL);
    assert_int_equal(c->status, 204);
    lb_conn_free(c);
    lb_session_t again;
    lb_create(lb, MINIMAL, &again);
    c = post_json(lb, MINIMAL);
    lb_assert_json_error(c, 503, "temporarily_unavailable");
    lb_conn_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_discovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discovery_allow_list, setup_allow_list, teardown),
        cmocka_unit_test_setup_teardown(test_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_sealed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_media_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unbound_needs_allowing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dev_loopback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allow_list, setup_allow_list, teardown),
        cmocka_unit_test_setup_teardown(test_full, setup, teardown),
    };
    return cmocka_run_group_tests_name("route_sessions", tests, NULL, NULL);
}
