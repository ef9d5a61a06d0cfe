/* route_pickup.c: GET /v1/sessions/{session} (pickup, long-polled with Prefer: wait=N) and DELETE (acknowledge) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "event.h"
#include "ids.h"
#include "meta.h"
#include "metrics.h"
#include "op.h"
#include "prefer.h"
#include "respond.h"
#include "routes.h"
#include "waiters.h"

/*
 * A pickup's life. The state says which store call is in flight (none only in WAITING):
 *
 *   VERIFYING     get (checks the poll token) --+-- 401 / 404 / 503 ........................... answered
 *                                               +-- DELETE ...................................... REMOVING
 *                                               +-- a result ............................. READING (mark_read)
 *                                               +-- pending, no wait (or it is over) ........... answered 202
 *                                               +-- pending, a wait: joins the waiter table, arms the timer,
 *                                                   subscribes ................................... SUBSCRIBING
 *   SUBSCRIBING   watch --+-- confirmed: read again, so a result that landed meanwhile is seen ... READING
 *                         +-- failed ........................................................ answered 503
 *   READING       mark_read --+-- a result (leaves the table, the timer and the subscription) .. answered 200
 *                             +-- 404, or 503 when not waiting any more ........................ answered
 *                             +-- store down while the wait runs: ride it out ................... WAITING
 *                             +-- pending: wait over (or draining) ............................ answered 202
 *                             +-- pending: the wait goes on .................................... WAITING
 *   READING_STALE as READING, but a wake-up came while the read was in flight, so "pending" may predate the
 *                 completion: read again ............................................................ READING
 *   WAITING       a wake-up (the store saw a completion, or reconnected) or the timer ............... READING
 *   REMOVING      remove --> 204 / 404 / 503 ...................................................... answered
 *
 * "answered" frees the op. When the request goes away first, the op leaves the table, the timer and the subscription
 * at once and is freed then in WAITING, else by the callback of the store call in flight.
 * Facts that are not states: wait_over (the timer fired: the next read answers with what it finds), woken (a wake-up
 * came: a delivery then feeds the wake-latency histogram), subscribed (a watch is held and must be released).
 */
typedef enum en_pickup_state_t {
    PICKUP_VERIFYING,
    PICKUP_SUBSCRIBING,
    PICKUP_READING,
    PICKUP_READING_STALE,
    PICKUP_WAITING,
    PICKUP_REMOVING,
} pickup_state_t;

/* one per waiting pickup, for as long as it waits: kept small (tests/bench/README.md, "Memory per idle TLS long-poll") */
typedef struct st_pickup_t {
    relay_op_t super;
    relay_waiter_t waiter; /* its key is the session's store key (rly_store_key), not its id: the store calls use it too */
    h2o_timeout_entry_t timeout;
    uint8_t token_hash[32];
    char *as_id; /* malloc'ed at the first read (an AS identifier is up to 255 bytes, most are short); NULL before */
    char sid_text[RLY_SESSION_ID_LEN + 1];
    uint8_t state; /* pickup_state_t */
    unsigned wait; /* seconds, as applied */
    unsigned is_delete : 1;
    unsigned wait_over : 1;
    unsigned woken : 1;
    unsigned subscribed : 1;
} pickup_t;

static const char *event_of(const pickup_t *p)
{
    return p->is_delete ? "delete" : "pickup";
}

static const char *as_of(const pickup_t *p)
{
    return p->as_id;
}

static void pickup_free(pickup_t *p)
{
    free(p->as_id);
    relay_op_free(&p->super);
}

/* leaves the waiter table, the timer and the subscription */
static void stop_waiting(pickup_t *p)
{
    relay_worker_t *w = p->super.worker;
    relay_waiters_remove(w->waiters, &p->waiter);
    if (h2o_timeout_is_linked(&p->timeout)) {
        h2o_timeout_unlink(&p->timeout);
        relay_metrics_waiting(-1);
    }
    if (p->subscribed) {
        p->subscribed = 0;
        if (!relay_waiters_has(w->waiters, p->waiter.key))
            w->store->unwatch(w->store, p->waiter.key);
    }
}

static void finish(pickup_t *p)
{
    stop_waiting(p);
    pickup_free(p);
}

/* the one answer to a store status that ends a pickup or a delete: 404 for an unknown or expired session, 503 when the
 * store is down */
static void answer_store_status(pickup_t *p, h2o_req_t *req, store_status_t status)
{
    long ms = relay_op_elapsed(&p->super);
    if (status == STORE_NOT_FOUND) {
        relay_event(RLY_LOG_INFO, event_of(p), as_of(p), "not_found", ms);
        relay_respond_error(req, 404, NULL, "not_found", "unknown or expired session", 0);
    } else {
        relay_event(RLY_LOG_WARN, event_of(p), as_of(p), "unavailable", ms);
        relay_respond_error(req, 503, NULL, "temporarily_unavailable", "the rendezvous store is unavailable; retry shortly", 2);
    }
}

static void on_read(void *ctx, store_status_t status, const store_record_t *rec);
static void on_watched(void *ctx, store_status_t status, const store_record_t *rec);
static void on_removed(void *ctx, store_status_t status, const store_record_t *rec);

/* reads the session once the token is verified: mark_read, which delivers a result in the same round trip */
static void read_session(pickup_t *p)
{
    store_t *store = p->super.worker->store;
    p->state = PICKUP_READING;
    store->mark_read(store, p->waiter.key, on_read, p);
}

/* joins the waiter table, arms the timer and subscribes (each once); or reads again after a stale read */
static void wait_for_result(pickup_t *p)
{
    relay_worker_t *w = p->super.worker;
    if (p->state == PICKUP_READING_STALE) {
        read_session(p);
        return;
    }
    p->state = PICKUP_WAITING;
    if (!h2o_linklist_is_linked(&p->waiter._link))
        relay_waiters_add(w->waiters, &p->waiter);
    if (!h2o_timeout_is_linked(&p->timeout)) {
        h2o_timeout_link(w->ctx.loop, relay_worker_wait_timeout(w, p->wait), &p->timeout);
        relay_metrics_waiting(1);
    }
    if (!p->subscribed) {
        p->subscribed = 1;
        p->state = PICKUP_SUBSCRIBING;
        w->store->watch(w->store, p->waiter.key, on_watched, p);
    }
}

/* a pickup already waiting rides out a store outage until its wait ends (then it reads once more and answers) */
static int rides_out_outage(pickup_t *p)
{
    return p->state != PICKUP_VERIFYING && !p->is_delete && h2o_timeout_is_linked(&p->timeout) && !p->wait_over &&
           !relay_shutting_down(p->super.worker->relay);
}

static void on_req_gone(relay_op_t *op)
{
    pickup_t *p = (pickup_t *)op;
    stop_waiting(p);
    if (p->state == PICKUP_WAITING)
        pickup_free(p);
}

static void on_wake(relay_waiter_t *waiter)
{
    pickup_t *p = H2O_STRUCT_FROM_MEMBER(pickup_t, waiter, waiter);
    p->woken = 1;
    switch (p->state) {
    case PICKUP_WAITING:
        read_session(p);
        break;
    case PICKUP_READING:
        /* one store call at a time: the read in flight may predate the completion, so read again when it is back */
        p->state = PICKUP_READING_STALE;
        break;
    default:
        break; /* SUBSCRIBING reads once confirmed; READING_STALE reads again already */
    }
}

static void on_timeout(h2o_timeout_entry_t *entry)
{
    pickup_t *p = H2O_STRUCT_FROM_MEMBER(pickup_t, timeout, entry);
    relay_metrics_waiting(-1);
    p->wait_over = 1;
    relay_waiters_remove(p->super.worker->waiters, &p->waiter);
    /* a read in flight answers for the timeout when it comes back (wait_over is set) */
    if (p->state == PICKUP_WAITING)
        read_session(p);
}

static void respond_pending(pickup_t *p, h2o_req_t *req, const store_record_t *rec)
{
    char body[96];
    long expires_in = (long)((rec->expires_in_ms + 999) / 1000);
    int n = snprintf(body, sizeof(body), "{\"status\":\"pending\",\"expires_in\":%ld}", expires_in);
    relay_event(RLY_LOG_DEBUG, "pickup", as_of(p), "pending", relay_op_elapsed(&p->super));
    relay_respond_json(req, 202, NULL, h2o_strdup(&req->pool, body, (size_t)n).base, (size_t)n);
}

static void deliver(pickup_t *p, h2o_req_t *req, const store_record_t *rec)
{
    size_t len;
    char *json = relay_result_open(relay_keys(p->super.worker->relay), p->sid_text, rec->result, rec->result_len, &len);
    if (json == NULL) {
        relay_event(RLY_LOG_WARN, "pickup", as_of(p), "undecryptable", relay_op_elapsed(&p->super));
        relay_respond_error(req, 404, NULL, "not_found", "unknown or expired session", 0);
        return;
    }
    h2o_iovec_t body = h2o_strdup(&req->pool, json, len);
    OPENSSL_cleanse(json, len);
    free(json);
    if (p->woken && rec->completed_at != 0)
        relay_metrics_observe_wake((double)(relay_unix_ms() - rec->completed_at) / 1000.0);
    relay_event(RLY_LOG_INFO, "pickup", as_of(p), "delivered", relay_op_elapsed(&p->super));
    relay_respond_json(req, 200, NULL, body.base, body.len);
}

static void on_read(void *ctx, store_status_t status, const store_record_t *rec)
{
    pickup_t *p = ctx;
    h2o_req_t *req = p->super.req;
    if (req == NULL)
        goto Exit;
    if (status == STORE_UNAVAILABLE && rides_out_outage(p)) {
        wait_for_result(p);
        return;
    }
    if (status != STORE_OK) {
        answer_store_status(p, req, status);
        goto Exit;
    }
    if (p->state == PICKUP_VERIFYING) {
        if (p->as_id == NULL && (p->as_id = strndup(rec->as_id, RLY_AS_ID_MAX)) == NULL) {
            relay_respond_error(req, 500, NULL, "server_error", "internal error", 0);
            goto Exit;
        }
        if (!rly_hash_equal(rec->token_hash, p->token_hash)) {
            relay_event(RLY_LOG_INFO, event_of(p), as_of(p), "unauthorized", relay_op_elapsed(&p->super));
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, H2O_STRLIT("Bearer"));
            relay_respond_error(req, 401, NULL, "invalid_token", "missing or wrong poll token", 0);
            goto Exit;
        }
        if (p->is_delete) {
            p->state = PICKUP_REMOVING;
            p->super.worker->store->remove(p->super.worker->store, p->waiter.key, on_removed, p);
            return;
        }
        if (rec->result != NULL) {
            /* mark_read cuts the session's life and answers with the result */
            read_session(p);
            return;
        }
    } else if (rec->result != NULL) {
        deliver(p, req, rec);
        goto Exit;
    }
    /* pending */
    if (p->state != PICKUP_READING_STALE && (p->wait_over || p->wait == 0 || relay_shutting_down(p->super.worker->relay))) {
        respond_pending(p, req, rec);
        goto Exit;
    }
    wait_for_result(p);
    return;
Exit:
    finish(p);
}

static void on_watched(void *ctx, store_status_t status, const store_record_t *rec)
{
    pickup_t *p = ctx;
    (void)rec;
    if (p->super.req == NULL)
        goto Exit;
    if (status != STORE_OK) {
        answer_store_status(p, p->super.req, STORE_UNAVAILABLE);
        goto Exit;
    }
    /* subscribed: read again, so a result that landed in between is not missed */
    read_session(p);
    return;
Exit:
    finish(p);
}

static void on_removed(void *ctx, store_status_t status, const store_record_t *rec)
{
    pickup_t *p = ctx;
    h2o_req_t *req = p->super.req;
    (void)rec;
    if (req == NULL)
        goto Exit;
    if (status != STORE_OK) {
        answer_store_status(p, req, status);
        goto Exit;
    }
    relay_event(RLY_LOG_INFO, "delete", as_of(p), "deleted", relay_op_elapsed(&p->super));
    relay_respond_json(req, 204, NULL, "", 0);
Exit:
    finish(p);
}

/* the token of "Authorization: Bearer <token>", or a NULL base */
static h2o_iovec_t bearer(h2o_req_t *req)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (i == -1)
        return h2o_iovec_init(NULL, 0);
    h2o_iovec_t v = req->headers.entries[i].value;
    if (v.len < 7 || !h2o_lcstris(v.base, 6, H2O_STRLIT("bearer")) || v.base[6] != ' ')
        return h2o_iovec_init(NULL, 0);
    size_t off = 7;
    while (off != v.len && v.base[off] == ' ')
        ++off;
    size_t end = v.len;
    while (end != off && v.base[end - 1] == ' ')
        --end;
    if (end == off)
        return h2o_iovec_init(NULL, 0);
    return h2o_iovec_init(v.base + off, end - off);
}

/* the wait asked with Prefer: wait=N (RFC 7240), or -1 when none */
static long preferred_wait(h2o_req_t *req)
{
    ssize_t i = -1;
    while ((i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("prefer"), i)) != -1) {
        h2o_iovec_t v = req->headers.entries[i].value;
        long n = rly_prefer_wait(v.base, v.len); /* common/prefer.c */
        if (n >= 0)
            return n;
    }
    return -1;
}

static int start(h2o_req_t *req, const char *sid_text, size_t sid_len, int is_delete)
{
    const char *event = is_delete ? "delete" : "pickup";
    h2o_iovec_t token = bearer(req);
    if (token.base == NULL) {
        relay_event(RLY_LOG_INFO, event, NULL, "unauthorized", 0);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, H2O_STRLIT("Bearer"));
        relay_respond_error(req, 401, NULL, "invalid_token", "missing or wrong poll token", 0);
        return 0;
    }
    relay_t *r = relay_worker_of(req)->relay;
    uint8_t sid[RLY_SESSION_ID_BYTES];
    if (rly_session_parse(sid_text, sid_len, sid) != 0) {
        relay_event(RLY_LOG_INFO, event, NULL, "not_found", 0);
        relay_respond_error(req, 404, NULL, "not_found", "unknown or expired session", 0);
        return 0;
    }
    pickup_t *p = relay_op_new(req, sizeof(*p));
    if (p == NULL || rly_store_key(sid, p->waiter.key) != 0) {
        if (p != NULL)
            pickup_free(p);
        relay_respond_error(req, 500, NULL, "server_error", "internal error", 0);
        return 0;
    }
    p->super.on_req_gone = on_req_gone;
    p->is_delete = is_delete;
    p->state = PICKUP_VERIFYING;
    memcpy(p->sid_text, sid_text, RLY_SESSION_ID_LEN);
    p->waiter.on_wake = on_wake;
    p->timeout.cb = on_timeout;
    rly_poll_token_hash(token.base, token.len, p->token_hash);
    if (!is_delete) {
        long want = preferred_wait(req);
        if (want >= 0) {
            p->wait = want > (long)r->config->wait_max ? r->config->wait_max : (unsigned)want;
            char applied[32];
            int n = snprintf(applied, sizeof(applied), "wait=%u", p->wait);
            h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("preference-applied"), 0, NULL,
                                  h2o_strdup(&req->pool, applied, (size_t)n).base, (size_t)n);
        }
    }
    p->super.worker->store->get(p->super.worker->store, p->waiter.key, on_read, p);
    return 0;
}

int relay_route_pickup(h2o_req_t *req, const char *sid_text, size_t sid_len)
{
    return start(req, sid_text, sid_len, 0);
}

int relay_route_delete(h2o_req_t *req, const char *sid_text, size_t sid_len)
{
    return start(req, sid_text, sid_len, 1);
}
