/* test_op.c: relay/op.c without sockets: the guard that tells an operation its request has gone */
#include "loopback.h"
#include "op.h"

typedef struct st_test_op_t {
    relay_op_t super;
    int gone_calls;
    h2o_req_t *req_seen_when_gone; /* op->req as on_req_gone saw it */
    void *guard_seen_when_gone;
    char payload[100];
} test_op_t;

static int gone_total; /* calls of on_gone, whatever the op */

static void on_gone(relay_op_t *op)
{
    test_op_t *t = (test_op_t *)op;
    ++gone_total;
    ++t->gone_calls;
    t->req_seen_when_gone = op->req;
    t->guard_seen_when_gone = op->_guard;
}

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

/* a request that reached the handler (relay_on_req is not needed for an op) */
static lb_conn_t *new_request(lb_relay_t *lb)
{
    return lb_conn_new(lb, "GET", "/op", NULL, NULL);
}

static void test_new(void **state)
{
    lb_relay_t *lb = *state;
    lb_run_for(lb, 5);
    lb_conn_t *c = new_request(lb);
    test_op_t *t = relay_op_new(&c->req, sizeof(*t));
    assert_non_null(t);
    assert_ptr_equal(t->super.req, &c->req);
    assert_ptr_equal(t->super.worker, &lb->worker); /* through the request's context, as relay_worker_of */
    assert_int_equal(t->super.started_at, h2o_now(lb_loop(lb)));
    assert_null(t->super.on_req_gone);
    assert_non_null(t->super._guard);
    /* the rest of the route's struct is zeroed */
    for (size_t i = 0; i != sizeof(t->payload); ++i)
        assert_int_equal(t->payload[i], 0);
    relay_op_free(&t->super);
    lb_conn_free(c);
}

/* the request goes first: on_req_gone runs once, from the pool's disposal, with op->req already cleared; the op lives
 * on until its owner frees it */
static void test_request_gone(void **state)
{
    lb_relay_t *lb = *state;
    lb_conn_t *c = new_request(lb);
    test_op_t *t = relay_op_new(&c->req, sizeof(*t));
    assert_non_null(t);
    t->super.on_req_gone = on_gone;
    t->req_seen_when_gone = &c->req;
    t->guard_seen_when_gone = t; /* anything non-NULL */
    assert_int_equal(t->gone_calls, 0);
    lb_conn_free(c);
    assert_int_equal(t->gone_calls, 1);
    assert_null(t->req_seen_when_gone);
    assert_null(t->guard_seen_when_gone);
    assert_null(t->super.req);
    assert_null(t->super._guard);
    relay_op_free(&t->super); /* the guard is gone: nothing to unlink */
}

/* no on_req_gone: the disposal only clears op->req */
static void test_request_gone_without_callback(void **state)
{
    lb_relay_t *lb = *state;
    lb_conn_t *c = new_request(lb);
    test_op_t *t = relay_op_new(&c->req, sizeof(*t));
    assert_non_null(t);
    lb_conn_free(c);
    assert_null(t->super.req);
    assert_null(t->super._guard);
    assert_int_equal(t->gone_calls, 0);
    relay_op_free(&t->super);
}

/* the op is freed first: the guard is inert, the request's disposal touches nothing (under ASan a write or call through
 * the freed op would be reported) */
static void test_free_first(void **state)
{
    lb_relay_t *lb = *state;
    lb_conn_t *c = new_request(lb);
    test_op_t *t = relay_op_new(&c->req, sizeof(*t));
    assert_non_null(t);
    t->super.on_req_gone = on_gone;
    int before = gone_total;
    relay_op_free(&t->super);
    lb_conn_free(c);
    assert_int_equal(gone_total, before);
}

/* several ops on one request: each guard answers for its own op */
static void test_several(void **state)
{
    lb_relay_t *lb = *state;
    lb_conn_t *c = new_request(lb);
    test_op_t *a = relay_op_new(&c->req, sizeof(*a));
    test_op_t *b = relay_op_new(&c->req, sizeof(*b));
    test_op_t *d = relay_op_new(&c->req, sizeof(*d));
    assert_true(a != NULL && b != NULL && d != NULL);
    a->super.on_req_gone = on_gone;
    b->super.on_req_gone = on_gone;
    d->super.on_req_gone = on_gone;
    relay_op_free(&b->super);
    lb_conn_free(c);
    assert_int_equal(a->gone_calls, 1);
    assert_int_equal(d->gone_calls, 1);
    relay_op_free(&a->super);
    relay_op_free(&d->super);
}

/* an on_req_gone that frees its op (what a waiting pickup does) is safe: under ASan and LSan, neither a use after free
 * nor a leak */
static int freed_in_gone;

static void on_gone_free(relay_op_t *op)
{
    ++freed_in_gone;
    relay_op_free(op);
}

static void test_gone_frees(void **state)
{
    lb_relay_t *lb = *state;
    lb_conn_t *c = new_request(lb);
    test_op_t *t = relay_op_new(&c->req, sizeof(*t));
    assert_non_null(t);
    t->super.on_req_gone = on_gone_free;
    freed_in_gone = 0;
    lb_conn_free(c);
    assert_int_equal(freed_in_gone, 1);
}

/* elapsed time follows the loop's clock from the request's start */
static void test_elapsed(void **state)
{
    lb_relay_t *lb = *state;
    lb_conn_t *c = new_request(lb);
    lb_run_for(lb, 1);
    test_op_t *t = relay_op_new(&c->req, sizeof(*t));
    assert_non_null(t);
    assert_true(relay_op_elapsed(&t->super) < 20);
    lb_run_for(lb, 60);
    long ms = relay_op_elapsed(&t->super);
    assert_true(ms >= 55 && ms < 5000);
    relay_op_free(&t->super);
    lb_conn_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_gone_without_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_several, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gone_frees, setup, teardown),
        cmocka_unit_test_setup_teardown(test_elapsed, setup, teardown),
    };
    return cmocka_run_group_tests_name("op", tests, NULL, NULL);
}
