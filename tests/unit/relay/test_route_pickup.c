/* test_route_pickup.c: relay/route_pickup.c without sockets: the bearer, pending, long-polls woken and timed out, delete */
#include "loopback.h"
#include "metrics.h"

#define AS_URL "https://auth.example.com/authorize"
#define SESSION_BODY "{\"authorization_server\":\"" AS_URL "\",\"return_uri\":\"https://qorus.example.com/grant\"}"
#define CODE "code-1234567890"
#define SOME_ID "AAAAAAAAAAAAAAAAAAAAAA"

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

/* GET (or DELETE) the session's path with its bearer; prefer NULL: no Prefer header */
static lb_conn_t *start_pickup(lb_relay_t *lb, const char *method, const lb_session_t *s, const char *prefer)
{
    char auth[128];
    lb_bearer(auth, sizeof(auth), s->token);
    if (prefer != NULL)
        return lb_start(lb, method, s->path, NULL, "authorization", auth, "prefer", prefer, NULL);
    return lb_start(lb, method, s->path, NULL, "authorization", auth, NULL);
}

/* the same, answered within LB_WAIT_MS */
static lb_conn_t *pickup(lb_relay_t *lb, const char *method, const lb_session_t *s, const char *prefer)
{
    lb_conn_t *c = start_pickup(lb, method, s, prefer);
    if (!lb_wait(c, LB_WAIT_MS))
        fail_msg("%s %s: no answer", method, s->path);
    assert_int_equal(c->sends, 1);
    return c;
}

/* completes the session through the callback route (code CODE, or the given one) */
static void complete(lb_relay_t *lb, const lb_session_t *s, const char *code)
{
    char path[512];
    snprintf(path, sizeof(path), RELAY_PATH_CALLBACK "?code=%s&state=%s", code != NULL ? code : CODE, s->state);
    lb_conn_t *c = lb_fetch(lb, "GET", path, NULL, NULL);
    assert_int_equal(c->status, 303);
    lb_conn_free(c);
}

static void assert_unauthorized(lb_conn_t *c)
{
    lb_assert_json_error(c, 401, "invalid_token");
    assert_string_equal(c->req.res.reason, "Unauthorized");
    assert_int_equal(lb_header_count(c, "www-authenticate"), 1);
    lb_assert_header(c, "www-authenticate", "Bearer");
    lb_assert_header(c, "cache-control", "no-store");
}

/* a 202 pending answer; returns its expires_in */
static long assert_pending(lb_conn_t *c)
{
    if (c->status != 202)
        fail_msg("%d, not 202: %.200s", c->status, c->body != NULL ? c->body : "");
    lb_assert_header(c, "content-type", "application/json");
    json_object *o = lb_json(c);
    lb_assert_json_str(o, "status", "pending");
    long expires_in = lb_json_int(o, "expires_in");
    assert_int_equal(json_object_object_length(o), 2);
    json_object_put(o);
    assert_true(expires_in >= 0);
    return expires_in;
}

/* a 200 authorized answer with the given code */
static void assert_authorized(lb_conn_t *c, const lb_session_t *s, const char *code)
{
    if (c->status != 200)
        fail_msg("%d, not 200: %.200s", c->status, c->body != NULL ? c->body : "");
    lb_assert_header(c, "cache-control", "no-store");
    json_object *o = lb_json(c);
    lb_assert_json_str(o, "status", "authorized");
    lb_assert_json_str(o, "code", code);
    lb_assert_json_str(o, "state", s->state);
    json_object_put(o);
}

static void test_unauthorized(void **state)
{
    lb_relay_t *lb = *state;
    lb_session_t s, other;
    lb_create(lb, SESSION_BODY, &s);
    lb_create(lb, SESSION_BODY, &other);
    char wrong[128], basic[128];
    lb_bearer(wrong, sizeof(wrong), other.token);
    snprintf(basic, sizeof(basic), "Basic %s", s.token);

    const char *methods[] = {"GET", "DELETE"};
    for (size_t m = 0; m != 2; ++m) {
        lb_conn_t *c = lb_fetch(lb, methods[m], s.path, NULL, NULL);
        assert_unauthorized(c);
        lb_conn_free(c);
        const char *auths[] = {wrong, basic, "Bearer", "Bearer ", "Bearer    ", "Bearerx", "Bearer not-the-token"};
        for (size_t i = 0; i != sizeof(auths) / sizeof(auths[0]); ++i) {
            c = lb_fetch(lb, methods[m], s.path, NULL, "authorization", auths[i], "prefer", "wait=5", NULL);
            assert_unauthorized(c);
            lb_conn_free(c);
        }
    }
    /* nothing was deleted, and the right token works, its scheme in any case */
    lb_stored_t stored;
    assert_int_equal(lb_stored(lb, s.sid, &stored), STORE_OK);
    char lower[128];
    snprintf(lower, sizeof(lower), "bEARER   %s  ", s.token);
    lb_conn_t *c = lb_fetch(lb, "GET", s.path, NULL, "authorization", lower, NULL);
    assert_pending(c);
    lb_conn_free(c);
    assert_true(lb_log_has(lb, "\"event\":\"pickup\"", "\"outcome\":\"unauthorized\"", NULL));
    assert_true(lb_log_has(lb, "\"event\":\"delete\"", "\"outcome\":\"unauthorized\"", NULL));
    assert_false(lb_log_contains(lb, s.token));
    assert_false(lb_log_contains(lb, s.id));
}

static void test_not_found(void **state)
{
    lb_relay_t *lb = *state;
    const char *paths[] = {RELAY_PATH_SESSIONS "/short", RELAY_PATH_SESSIONS "/" SOME_ID "A",
                           RELAY_PATH_SESSIONS "/" SOME_ID "?wait", RELAY_PATH_SESSIONS "/AAAAAAAAAAAAAAAAAAAA!!",
                           RELAY_PATH_SESSIONS "/AAAAAAAAAAAAAAAAAAAAAB"};
    for (size_t i = 0; i != sizeof(paths) / sizeof(paths[0]); ++i) {
        lb_conn_t *c = lb_fetch(lb, "GET", paths[i], NULL, "authorization", "Bearer whatever", NULL);
        if (c->status != 404)
            fail_msg("%s: %d, not 404", paths[i], c->status);
        lb_assert_json_error(c, 404, "not_found");
        assert_null(lb_header(c, "www-authenticate"));
        lb_conn_free(c);
        c = lb_fetch(lb, "DELETE", paths[i], NULL, "authorization", "Bearer whatever", NULL);
        lb_assert_json_error(c, 404, "not_found");
        lb_conn_free(c);
    }
    assert_true(lb_log_has(lb, "\"event\":\"pickup\"", "\"outcome\":\"not_found\"", NULL));
}

/* nothing yet and no wait: 202 at once, with Preference-Applied only when Prefer asked */
static void test_pending(void **state)
{
    lb_relay_t *lb = *state;
    lb_session_t s;
    lb_create(lb, SESSION_BODY, &s);

    lb_conn_t *c = start_pickup(lb, "GET", &s, "wait=0");
    assert_true(c->done); /* no wait: answered before the handler returned */
    long expires_in = assert_pending(c);
    assert_true(expires_in > RLY_TTL_DEFAULT - 10 && expires_in <= RLY_TTL_DEFAULT);
    lb_assert_header(c, "preference-applied", "wait=0");
    lb_conn_free(c);

    c = pickup(lb, "GET", &s, NULL);
    assert_pending(c);
    assert_null(lb_header(c, "preference-applied"));
    lb_conn_free(c);

    c = pickup(lb, "GET", &s, "respond-async, wait=0");
    assert_pending(c);
    lb_assert_header(c, "preference-applied", "wait=0");
    lb_conn_free(c);

    /* a wait that is not a number is no preference */
    c = pickup(lb, "GET", &s, "wait=soon");
    assert_pending(c);
    assert_null(lb_header(c, "preference-applied"));
    lb_conn_free(c);
    assert_int_equal(relay_waiters_count(lb->worker.waiters), 0);
}

/* a long-poll answered by a callback on the same worker: the store's notification wakes the waiter (WAITING), which
 * reads again (READING) and delivers, long before its wait is over */
static void test_long_poll_woken(void **state)
{
    lb_relay_t *lb = *state;
    lb_session_t s;
    lb_create(lb, SESSION_BODY, &s);
    long waiting = relay_metrics_waiting_now();

    lb_conn_t *c = start_pickup(lb, "GET", &s, "wait=10");
    assert_false(lb_wait(c, 100));
    assert_int_equal(relay_waiters_count(lb->worker.waiters), 1);
    assert_int_equal(relay_metrics_waiting_now(), waiting + 1);
    assert_int_equal(c->sends, 0);

    complete(lb, &s, NULL);
    assert_true(lb_wait(c, 2000));
    assert_int_equal(c->sends, 1);
    assert_authorized(c, &s, CODE);
    lb_assert_header(c, "preference-applied", "wait=10");
    assert_true(c->done_at - c->started_at < 3000);
    assert_int_equal(relay_waiters_count(lb->worker.waiters), 0);
    assert_int_equal(relay_metrics_waiting_now(), waiting);
    lb_conn_free(c);
    assert_true(lb_log_has(lb, "\"event\":\"pickup\"", "\"outcome\":\"delivered\"", NULL));
}

/* a completion of another session does not answer the wait; two pickups of one session are both answered */
static void test_long_poll_keyed(void **state)
{
    lb_relay_t *lb = *state;
    lb_session_t s, other;
    lb_create(lb, SESSION_BODY, &s);
    lb_create(lb, SESSION_BODY, &other);

    lb_conn_t *a = start_pickup(lb, "GET", &s, "wait=10");
    lb_conn_t *b = start_pickup(lb, "GET", &s, "wait=10");
    assert_false(lb_wait(a, 50));
    assert_int_equal(relay_waiters_count(lb->worker.waiters), 2);

    complete(lb, &other, "other-code");
    lb_run_for(lb, 200);
    assert_false(a->done);
    assert_false(b->done);
    assert_int_equal(relay_waiters_count(lb->worker.waiters), 2);

    complete(lb, &s, NULL);
    assert_true(lb_wait(a, 2000));
    assert_true(lb_wait(b, 2000));
    assert_authorized(a, &s, CODE);
    assert_authorized(b, &s, CODE);
    assert_int_equal(relay_waiters_count(lb->worker.waiters), 0);
    lb_conn_free(a);
    lb_conn_free(b);

    lb_conn_t *c = pickup(lb, "GET", &other, NULL);
    assert_authorized(c, &other, "other-code");
    lb_conn_free(c);
}

/* nothing arrives: the wait's timer ends it with 202 */
static void test_long_poll_timeout(void **state)
{
    lb_relay_t *lb = *state;
    lb_session_t s;
    lb_create(lb, SESSION_BODY, &s);
    long waiting = relay_metrics_waiting_now();
    lb_conn_t *c = start_pickup(lb, "GET", &s, "wait=1");
    assert_false(lb_wait(c, 500));
    assert_int_equal(relay_metrics_waiting_now(), waiting + 1);
    assert_true(lb_wait(c, 3000));
    assert_pending(c);
    lb_assert_header(c, "preference-applied", "wait=1");
    uint64_t took = c->done_at - c->started_at;
    assert_true(took >= 950 && took < 3500);
    assert_int_equal(relay_waiters_count(lb->worker.waiters), 0);
    assert_int_equal(relay_metrics_waiting_now(), waiting);
    lb_conn_free(c);
}

/* a wait beyond wait_max is cut to it, and a result already there is answered at once */
static void test_wait_clamped(void **state)
{
    lb_relay_t *lb = *state;
    lb_session_t s;
    lb_create(lb, SESSION_BODY, &s);
    complete(lb, &s, NULL);
    lb_conn_t *c = start_pickup(lb, "GET", &s, "wait=999");
    assert_true(c->done);
    assert_authorized(c, &s, CODE);
    lb_assert_header(c, "preference-applied", "wait=30");
    lb_conn_free(c);
}

/* draining: a pickup that would wait is answered at once */
static void test_shutting_down(void **state)
{
    lb_relay_t *lb = *state;
    lb_session_t s;
    lb_create(lb, SESSION_BODY, &s);
    atomic_store(&lb->relay.shutting_down, 1);
    lb_conn_t *c = start_pickup(lb, "GET", &s, "wait=20");
    assert_true(c->done);
    assert_pending(c);
    lb_conn_free(c);
    assert_int_equal(relay_waiters_count(lb->worker.waiters), 0);
    atomic_store(&lb->relay.shutting_down, 0);
}

/* the instance gives up while waiting: the request's disposal takes the pickup out of the table and the timer, and frees
 * it (LeakSanitizer would report it); a later completion finds nobody */
static void test_request_gone_while_waiting(void **state)
{
    lb_relay_t *lb = *state;
    lb_session_t s;
    lb_create(lb, SESSION_BODY, &s);
    long waiting = relay_metrics_waiting_now();
    lb_conn_t *c = start_pickup(lb, "GET", &s, "wait=10");
    assert_false(lb_wait(c, 50));
    assert_int_equal(relay_waiters_count(lb->worker.waiters), 1);
    lb_conn_free(c);
    assert_int_equal(relay_waiters_count(lb->worker.waiters), 0);
    assert_int_equal(relay_metrics_waiting_now(), waiting);
    assert_int_equal(relay_inflight(&lb->relay), 0);
    complete(lb, &s, NULL);
    lb_run_for(lb, 50);
    /* the result is still there for the next pickup */
    c = pickup(lb, "GET", &s, NULL);
    assert_authorized(c, &s, CODE);
    lb_conn_free(c);
}

/* DELETE: 204 with no body; then the session is gone for pickup, delete and the callback */
static void test_delete(void **state)
{
    lb_relay_t *lb = *state;
    lb_session_t s;
    lb_create(lb, SESSION_BODY, &s);
    lb_conn_t *c = pickup(lb, "DELETE", &s, NULL);
    assert_int_equal(c->status, 204);
    assert_string_equal(c->req.res.reason, "No Content");
    assert_int_equal(c->body_len, 0);
    assert_null(lb_header(c, "content-type"));
    lb_assert_header(c, "cache-control", "no-store");
    lb_conn_free(c);
    assert_int_equal(store_memory_count(lb->relay.store), 0);
    assert_true(lb_log_has(lb, "\"event\":\"delete\"", "\"outcome\":\"deleted\"", NULL));

    c = pickup(lb, "GET", &s, "wait=0");
    lb_assert_json_error(c, 404, "not_found");
    lb_conn_free(c);
    c = pickup(lb, "DELETE", &s, NULL);
    lb_assert_json_error(c, 404, "not_found");
    lb_conn_free(c);
    char path[256];
    snprintf(path, sizeof(path), RELAY_PATH_CALLBACK "?code=x&state=%s", s.state);
    c = lb_fetch(lb, "GET", path, NULL, NULL);
    assert_int_equal(c->status, 410);
    lb_conn_free(c);

    /* a completed session is acknowledged the same way */
    lb_create(lb, SESSION_BODY, &s);
    complete(lb, &s, NULL);
    c = pickup(lb, "GET", &s, NULL);
    assert_authorized(c, &s, CODE);
    lb_conn_free(c);
    c = pickup(lb, "DELETE", &s, NULL);
    assert_int_equal(c->status, 204);
    lb_conn_free(c);
    c = pickup(lb, "GET", &s, NULL);
    assert_int_equal(c->status, 404);
    lb_conn_free(c);
}

/* deleted while a pickup waits: the wait ends with what the store says then, 404 */
static void test_delete_while_waiting(void **state)
{
    lb_relay_t *lb = *state;
    lb_session_t s;
    lb_create(lb, SESSION_BODY, &s);
    lb_conn_t *waiter = start_pickup(lb, "GET", &s, "wait=1");
    assert_false(lb_wait(waiter, 50));
    lb_conn_t *c = pickup(lb, "DELETE", &s, NULL);
    assert_int_equal(c->status, 204);
    lb_conn_free(c);
    assert_true(lb_wait(waiter, 3000));
    lb_assert_json_error(waiter, 404, "not_found");
    lb_conn_free(waiter);
}

/* the first 200 cuts the session's life to 60 s; a read within it returns the same result */
static void test_read_twice(void **state)
{
    lb_relay_t *lb = *state;
    lb_session_t s;
    lb_create(lb, SESSION_BODY, &s);
    complete(lb, &s, NULL);
    lb_stored_t stored;
    assert_int_equal(lb_stored(lb, s.sid, &stored), STORE_OK);
    assert_int_equal(stored.rec.read, 0);
    assert_true(stored.rec.expires_in_ms > RLY_AFTER_READ_TTL * 1000);

    lb_conn_t *first = pickup(lb, "GET", &s, NULL);
    assert_authorized(first, &s, CODE);
    assert_int_equal(lb_stored(lb, s.sid, &stored), STORE_OK);
    assert_int_equal(stored.rec.read, 1);
    assert_true(stored.rec.expires_in_ms <= RLY_AFTER_READ_TTL * 1000);

    lb_conn_t *second = pickup(lb, "GET", &s, "wait=5");
    assert_authorized(second, &s, CODE);
    assert_int_equal(second->body_len, first->body_len);
    assert_memory_equal(second->body, first->body, first->body_len);
    lb_conn_free(first);
    lb_conn_free(second);
    assert_false(lb_log_contains(lb, CODE));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unauthorized, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_poll_woken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_poll_keyed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_poll_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_clamped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutting_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_gone_while_waiting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_while_waiting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_twice, setup, teardown),
    };
    return cmocka_run_group_tests_name("route_pickup", tests, NULL, NULL);
}
