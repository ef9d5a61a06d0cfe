/* route_pickup.c: GET /v1/sessions/{session} (pickup, long-polled with Prefer: wait=N) and DELETE (acknowledge) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ids.h"
#include "meta.h"
#include "metrics.h"
#include "relay.h"
#include "waiters.h"

typedef struct st_pickup_t {
    relay_op_t super;
    uint8_t sid[RLY_SESSION_ID_BYTES]; /* the session's store key (rly_store_key), not its id */
    char sid_text[RLY_SESSION_ID_LEN + 1];
    uint8_t token_hash[32];
    char as_host[RLY_AS_HOST_MAX + 1];
    int is_delete;
    unsigned wait; /* seconds, as applied */
    relay_waiter_t waiter;
    h2o_timeout_entry_t timeout;
    int watching;  /* a watch was requested for this pickup */
    int busy;      /* a store call is outstanding: its callback finishes the op */
    int timed_out; /* the wait is over: answer whatever the store says now */
    int woken;     /* the store notified a completion while we waited */
    int verified;  /* the poll token matched the stored hash */
    int reread;    /* woken while a read was in flight: read again before waiting */
} pickup_t;

static void on_get(void *ctx, store_status_t status, const store_record_t *rec);
static void wait_for_result(pickup_t *p);

/* a pickup already waiting rides out a store outage until its wait ends (then it reads once more and answers) */
static int keeps_waiting(pickup_t *p)
{
    return p->verified && !p->is_delete && h2o_timeout_is_linked(&p->timeout) && !p->timed_out &&
           !atomic_load(&relay_global.shutting_down);
}

/* leaves the waiter table, the timer and the subscription */
static void stop_waiting(pickup_t *p)
{
    relay_worker_t *w = p->super.worker;
    if (h2o_linklist_is_linked(&p->waiter._link))
        relay_waiters_remove(w->waiters, &p->waiter);
    if (h2o_timeout_is_linked(&p->timeout)) {
        h2o_timeout_unlink(&p->timeout);
        relay_metrics_waiting(-1);
    }
    if (p->watching) {
        p->watching = 0;
        if (!relay_waiters_has(w->waiters, p->sid))
            w->store->unwatch(w->store, p->sid);
    }
}

static void finish(pickup_t *p)
{
    stop_waiting(p);
    relay_op_free(&p->super);
}

static void on_marked(void *ctx, store_status_t status, const store_record_t *rec);

/* reads the session: the first read checks the token; later ones (after a wake-up or the wait) go straight to
 * mark_read, which delivers a result in the same round trip */
static void get(pickup_t *p)
{
    store_t *store = p->super.worker->store;
    p->busy = 1;
    if (p->verified)
        store->mark_read(store, p->sid, on_marked, p);
    else
        store->get(store, p->sid, on_get, p);
}

static void on_req_gone(relay_op_t *op)
{
    pickup_t *p = (pickup_t *)op;
    stop_waiting(p);
    if (!p->busy)
        relay_op_free(op);
}

static void on_wake(relay_waiter_t *waiter)
{
    pickup_t *p = H2O_STRUCT_FROM_MEMBER(pickup_t, waiter, waiter);
    p->woken = 1;
    /* one store call at a time: a wake-up during a read is served by reading again when that read comes back */
    if (p->busy) {
        p->reread = 1;
        return;
    }
    get(p);
}

static void on_timeout(h2o_timeout_entry_t *entry)
{
    pickup_t *p = H2O_STRUCT_FROM_MEMBER(pickup_t, timeout, entry);
    relay_metrics_waiting(-1);
    p->timed_out = 1;
    if (h2o_linklist_is_linked(&p->waiter._link))
        relay_waiters_remove(p->super.worker->waiters, &p->waiter);
    /* a read in flight answers for the timeout when it comes back (timed_out is set) */
    if (!p->busy)
        get(p);
}

static void respond_pending(pickup_t *p, h2o_req_t *req, const store_record_t *rec)
{
    char body[96];
    long expires_in = (long)((rec->expires_in_ms + 999) / 1000);
    int n = snprintf(body, sizeof(body), "{\"status\":\"pending\",\"expires_in\":%ld}", expires_in);
    relay_event(RLY_LOG_DEBUG, "pickup", p->as_host, "pending", relay_op_elapsed(&p->super));
    relay_respond_json(req, 202, NULL, h2o_strdup(&req->pool, body, (size_t)n).base, (size_t)n);
}

static void on_marked(void *ctx, store_status_t status, const store_record_t *rec)
{
    pickup_t *p = ctx;
    h2o_req_t *req = p->super.req;
    p->busy = 0;
    if (req == NULL)
        goto Exit;
    if (status == STORE_NOT_FOUND) {
        relay_event(RLY_LOG_INFO, "pickup", p->as_host, "not_found", relay_op_elapsed(&p->super));
        relay_respond_error(req, 404, NULL, "not_found", "unknown or expired session", 0);
        goto Exit;
    }
    if (status == STORE_UNAVAILABLE && keeps_waiting(p)) {
        wait_for_result(p);
        return;
    }
    if (status != STORE_OK) {
        relay_event(RLY_LOG_WARN, "pickup", p->as_host, "unavailable", relay_op_elapsed(&p->super));
        relay_respond_error(req, 503, NULL, "temporarily_unavailable", "the rendezvous store is unavailable; retry shortly", 2);
        goto Exit;
    }
    if (rec->result == NULL) {
        /* still pending (a wake-up for someone else's write, or the wait is over) */
        on_get(ctx, status, rec);
        return;
    }
    size_t len;
    char *json = relay_result_open(relay_keys(), p->sid_text, rec->result, rec->result_len, &len);
    if (json == NULL) {
        relay_event(RLY_LOG_WARN, "pickup", p->as_host, "undecryptable", relay_op_elapsed(&p->super));
        relay_respond_error(req, 404, NULL, "not_found", "unknown or expired session", 0);
        goto Exit;
    }
    h2o_iovec_t body = h2o_strdup(&req->pool, json, len);
    OPENSSL_cleanse(json, len);
    free(json);
    if (p->woken && rec->completed_at != 0)
        relay_metrics_observe_wake((double)(relay_unix_ms() - rec->completed_at) / 1000.0);
    relay_event(RLY_LOG_INFO, "pickup", p->as_host, "delivered", relay_op_elapsed(&p->super));
    relay_respond_json(req, 200, NULL, body.base, body.len);
Exit:
    finish(p);
}

static void on_watched(void *ctx, store_status_t status, const store_record_t *rec)
{
    pickup_t *p = ctx;
    (void)rec;
    p->busy = 0;
    if (p->super.req == NULL) {
        finish(p);
        return;
    }
    if (status != STORE_OK) {
        relay_event(RLY_LOG_WARN, "pickup", p->as_host, "unavailable", relay_op_elapsed(&p->super));
        relay_respond_error(p->super.req, 503, NULL, "temporarily_unavailable", "the rendezvous store is unavailable", 2);
        finish(p);
        return;
    }
    /* subscribed: read again, so a result that landed in between is not missed */
    get(p);
}

static void wait_for_result(pickup_t *p)
{
    relay_worker_t *w = p->super.worker;
    if (p->reread) {
        /* woken while the last read was in flight: that read may predate the completion */
        p->reread = 0;
        get(p);
        return;
    }
    if (!h2o_linklist_is_linked(&p->waiter._link))
        relay_waiters_add(w->waiters, &p->waiter);
    if (!h2o_timeout_is_linked(&p->timeout)) {
        h2o_timeout_link(w->ctx.loop, relay_wait_timeout(w, p->wait), &p->timeout);
        relay_metrics_waiting(1);
    }
    if (!p->watching) {
        p->watching = 1;
        p->busy = 1;
        w->store->watch(w->store, p->sid, on_watched, p);
    }
}

static void on_removed(void *ctx, store_status_t status, const store_record_t *rec)
{
    pickup_t *p = ctx;
    h2o_req_t *req = p->super.req;
    (void)rec;
    p->busy = 0;
    if (req != NULL) {
        if (status == STORE_OK) {
            relay_event(RLY_LOG_INFO, "delete", p->as_host, "deleted", relay_op_elapsed(&p->super));
            relay_respond_json(req, 204, NULL, "", 0);
        } else if (status == STORE_NOT_FOUND) {
            relay_event(RLY_LOG_INFO, "delete", p->as_host, "not_found", relay_op_elapsed(&p->super));
            relay_respond_error(req, 404, NULL, "not_found", "unknown or expired session", 0);
        } else {
            relay_event(RLY_LOG_WARN, "delete", p->as_host, "unavailable", relay_op_elapsed(&p->super));
            relay_respond_error(req, 503, NULL, "temporarily_unavailable", "the rendezvous store is unavailable", 2);
        }
    }
    finish(p);
}

static void on_get(void *ctx, store_status_t status, const store_record_t *rec)
{
    pickup_t *p = ctx;
    h2o_req_t *req = p->super.req;
    const char *event = p->is_delete ? "delete" : "pickup";
    p->busy = 0;
    if (req == NULL)
        goto Exit;
    if (status == STORE_NOT_FOUND) {
        relay_event(RLY_LOG_INFO, event, p->as_host[0] ? p->as_host : NULL, "not_found", relay_op_elapsed(&p->super));
        relay_respond_error(req, 404, NULL, "not_found", "unknown or expired session", 0);
        goto Exit;
    }
    if (status == STORE_UNAVAILABLE && keeps_waiting(p)) {
        wait_for_result(p);
        return;
    }
    if (status != STORE_OK) {
        relay_event(RLY_LOG_WARN, event, NULL, "unavailable", relay_op_elapsed(&p->super));
        relay_respond_error(req, 503, NULL, "temporarily_unavailable", "the rendezvous store is unavailable; retry shortly", 2);
        goto Exit;
    }
    memcpy(p->as_host, rec->as_host, sizeof(p->as_host));
    if (!p->verified && !rly_hash_equal(rec->token_hash, p->token_hash)) {
        relay_event(RLY_LOG_INFO, event, p->as_host, "unauthorized", relay_op_elapsed(&p->super));
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, H2O_STRLIT("Bearer"));
        relay_respond_error(req, 401, NULL, "invalid_token", "missing or wrong poll token", 0);
        goto Exit;
    }
    p->verified = 1;
    if (p->is_delete) {
        p->busy = 1;
        p->super.worker->store->remove(p->super.worker->store, p->sid, on_removed, p);
        return;
    }
    if (rec->result != NULL) {
        stop_waiting(p);
        p->busy = 1;
        p->super.worker->store->mark_read(p->super.worker->store, p->sid, on_marked, p);
        return;
    }
    if (p->timed_out || p->wait == 0 || atomic_load(&relay_global.shutting_down)) {
        respond_pending(p, req, rec);
        goto Exit;
    }
    wait_for_result(p);
    return;
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
        size_t pos = 0;
        while (pos < v.len) {
            while (pos < v.len && (v.base[pos] == ' ' || v.base[pos] == ',' || v.base[pos] == ';' || v.base[pos] == '\t'))
                ++pos;
            size_t start = pos;
            while (pos < v.len && v.base[pos] != ',' && v.base[pos] != ';')
                ++pos;
            size_t end = pos;
            while (end > start && (v.base[end - 1] == ' ' || v.base[end - 1] == '\t'))
                --end;
            if (end - start > 5 && h2o_lcstris(v.base + start, 5, H2O_STRLIT("wait="))) {
                long n = 0;
                size_t d = start + 5;
                if (d < end && v.base[d] == '"' && end - d >= 2 && v.base[end - 1] == '"') {
                    ++d;
                    --end;
                }
                if (d == end || end - d > 6)
                    continue;
                for (; d != end; ++d) {
                    if (v.base[d] < '0' || v.base[d] > '9')
                        break;
                    n = n * 10 + (v.base[d] - '0');
                }
                if (d == end)
                    return n;
            }
        }
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
    uint8_t sid[RLY_SESSION_ID_BYTES];
    if (rly_session_parse(sid_text, sid_len, sid) != 0) {
        relay_event(RLY_LOG_INFO, event, NULL, "not_found", 0);
        relay_respond_error(req, 404, NULL, "not_found", "unknown or expired session", 0);
        return 0;
    }
    pickup_t *p = relay_op_new(req, sizeof(*p));
    if (p == NULL || rly_store_key(sid, p->sid) != 0) {
        if (p != NULL)
            relay_op_free(&p->super);
        relay_respond_error(req, 500, NULL, "server_error", "internal error", 0);
        return 0;
    }
    p->super.on_req_gone = on_req_gone;
    p->is_delete = is_delete;
    memcpy(p->waiter.sid, p->sid, sizeof(p->sid)); /* waiters, like the store, know the session by its store key */
    memcpy(p->sid_text, sid_text, RLY_SESSION_ID_LEN);
    p->waiter.on_wake = on_wake;
    p->timeout.cb = on_timeout;
    rly_poll_token_hash(token.base, token.len, p->token_hash);
    if (!is_delete) {
        long want = preferred_wait(req);
        if (want >= 0) {
            p->wait = want > (long)relay_global.config->wait_max ? relay_global.config->wait_max : (unsigned)want;
            char applied[32];
            int n = snprintf(applied, sizeof(applied), "wait=%u", p->wait);
            h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("preference-applied"), 0, NULL,
                                  h2o_strdup(&req->pool, applied, (size_t)n).base, (size_t)n);
        }
    }
    get(p);
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

void relay_pickup_notify(relay_worker_t *w, const uint8_t sid[RLY_SESSION_ID_BYTES])
{
    if (sid != NULL)
        relay_waiters_wake(w->waiters, sid);
    else
        relay_waiters_wake_all(w->waiters); /* the store reconnected: every waiter reads again */
}
