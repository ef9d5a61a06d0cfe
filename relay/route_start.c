/* route_start.c: the confirmation of a 1.1 flow: GET /v1/start?t= (the page) and POST /v1/start (Continue or Cancel) */
#include <stdlib.h>
#include <string.h>
#include "authorize.h"
#include "b64url.h"
#include "bind.h"
#include "browser.h"
#include "event.h"
#include "ids.h"
#include "meta.h"
#include "op.h"
#include "pages.h"
#include "query.h"
#include "respond.h"
#include "result_json.h"
#include "routes.h"
#include "state.h"

/*
 * GET:  get_start (the token's reference) -> get (the session) -> the page; nothing changes in the store.
 * POST: get_start -> CSRF check -> confirm (consumes the token, records the cookie's hash; atomic, first POST wins) ->
 *       Continue: the state, then 303 to the AS; Cancel: complete as denied, then the "cancelled" page.
 */
typedef struct st_start_t {
    relay_op_t super;
    int is_post;
    int cancel;
    uint8_t token_hash[32];
    char token[RLY_START_TOKEN_LEN + 1];
    uint8_t sid[RLY_SESSION_ID_BYTES];
    char sid_text[RLY_SESSION_ID_LEN + 1];
    uint8_t key[RLY_SESSION_ID_BYTES];
    char cookie[RLY_COOKIE_LEN + 1];
    int cookie_new; /* minted by this request: set it on the response */
    char csrf[RLY_CSRF_LEN + 1];
    char as_id[RLY_AS_ID_MAX + 1];
    relay_meta_t meta;
    int meta_open;
} start_t;

static void finish(start_t *s)
{
    if (s->meta_open)
        relay_meta_wipe(&s->meta);
    relay_op_free(&s->super);
}

static relay_t *relay_of(start_t *s)
{
    return s->super.worker->relay;
}

static void respond_page(start_t *s, h2o_req_t *req, int status, relay_page_t page, const char *outcome)
{
    relay_event(RLY_LOG_INFO, "confirm", s->as_id[0] != '\0' ? s->as_id : NULL, outcome, relay_op_elapsed(&s->super));
    relay_respond_page(req, status, page, NULL, 0, status == 503 ? 2 : 0);
}

static void respond_store_status(start_t *s, h2o_req_t *req, store_status_t status)
{
    if (status == STORE_UNAVAILABLE)
        respond_page(s, req, 503, RELAY_PAGE_RETRY, "unavailable");
    else
        respond_page(s, req, 410, RELAY_PAGE_START_GONE, "gone");
}

/* the value of a parameter that must appear exactly once, or a NULL base */
static rly_str_t once(const rly_qparam_t *params, int n, const char *name)
{
    size_t count;
    const rly_qparam_t *p = rly_query_find(params, (size_t)n, name, &count);
    return p != NULL && count == 1 ? p->value : (rly_str_t){NULL, 0};
}

/* the first value of an authorize parameter, or NULL */
static const rly_param_t *param(const relay_meta_t *m, const char *name)
{
    for (size_t i = 0; i != m->nparams; ++i)
        if (m->params[i].name_len == strlen(name) && memcmp(m->params[i].name, name, m->params[i].name_len) == 0)
            return &m->params[i];
    return NULL;
}

static void show_page(start_t *s, h2o_req_t *req)
{
    const rly_param_t *scope = param(&s->meta, "scope"), *audience = param(&s->meta, "audience");
    /* the AS host as the instance wrote it (the log and the store know only its anonymous identifier) */
    const char *host, *port, *path;
    size_t host_len = 0, reg_off, port_len, path_len;
    int port_default;
    char as_host[RLY_AS_HOST_MAX + 3];
    if (relay_url_display_split(s->meta.authorization_server, s->meta.authorization_server_len, &host, &host_len, &reg_off, &port,
                                &port_len, &port_default, &path, &path_len) != 0 ||
        host_len >= sizeof(as_host))
        host_len = 0;
    memcpy(as_host, host_len != 0 ? host : "", host_len);
    as_host[host_len] = '\0';
    if (rly_csrf_new(relay_keys(relay_of(s)), s->sid, s->cookie, RLY_COOKIE_LEN, s->csrf) != 0) {
        respond_page(s, req, 500, RELAY_PAGE_RETRY, "error");
        return;
    }
    relay_confirm_view_t v = {s->meta.return_uri,
                              s->meta.return_uri_len,
                              as_host,
                              scope != NULL ? scope->value : NULL,
                              scope != NULL ? scope->value_len : 0,
                              audience != NULL ? audience->value : NULL,
                              audience != NULL ? audience->value_len : 0,
                              s->meta.label_len != 0 ? s->meta.label : NULL,
                              s->meta.label_len,
                              s->token,
                              s->csrf};
    relay_event(RLY_LOG_INFO, "confirm", s->as_id, "shown", relay_op_elapsed(&s->super));
    relay_respond_confirm(req, &v);
}

/* the session may be confirmed: bound, this token, not confirmed nor completed */
static int confirmable(start_t *s, const store_record_t *rec)
{
    return rec->bound && rly_hash_equal(rec->start_hash, s->token_hash) && !rec->confirmed && rec->result == NULL;
}

static int open_meta(start_t *s, const store_record_t *rec)
{
    if (!s->meta_open && relay_meta_open(relay_keys(relay_of(s)), s->sid_text, rec->meta, rec->meta_len, &s->meta) != 0)
        return -1;
    s->meta_open = 1;
    return 0;
}

static void on_session(void *ctx, store_status_t status, const store_record_t *rec)
{
    start_t *s = ctx;
    h2o_req_t *req = s->super.req;
    if (req == NULL)
        goto Exit;
    if (status != STORE_OK) {
        respond_store_status(s, req, status);
        goto Exit;
    }
    memcpy(s->as_id, rec->as_id, sizeof(s->as_id));
    if (!confirmable(s, rec) || open_meta(s, rec) != 0) {
        respond_page(s, req, 410, RELAY_PAGE_START_GONE, "gone");
        goto Exit;
    }
    show_page(s, req);
Exit:
    finish(s);
}

static void on_cancelled(void *ctx, store_status_t status, const store_record_t *rec)
{
    start_t *s = ctx;
    h2o_req_t *req = s->super.req;
    (void)rec;
    if (req == NULL)
        goto Exit;
    if (status != STORE_OK) {
        respond_store_status(s, req, status);
        goto Exit;
    }
    respond_page(s, req, 200, RELAY_PAGE_CANCELLED, "cancelled");
Exit:
    finish(s);
}

/* Cancel: the session completes as denied, with the plain (not locked) denied object */
static void cancel(start_t *s, h2o_req_t *req)
{
    static const rly_str_t denied = {"access_denied", sizeof("access_denied") - 1};
    uint8_t cookie_hash[32];
    size_t jlen, bloblen;
    char *json = relay_result_json(NULL, 0, NULL, NULL, &denied, NULL, NULL, NULL, &jlen);
    uint8_t *blob = json != NULL ? relay_result_seal(relay_keys(relay_of(s)), s->sid_text, &s->meta, json, jlen, &bloblen) : NULL;
    free(json);
    if (blob == NULL) {
        respond_page(s, req, 500, RELAY_PAGE_RETRY, "error");
        finish(s);
        return;
    }
    rly_cookie_hash(s->cookie, RLY_COOKIE_LEN, cookie_hash);
    store_t *store = s->super.worker->store;
    store->complete(store, s->key, blob, bloblen, relay_unix_ms(), s->meta.has_seal_key, cookie_hash, on_cancelled, s);
    free(blob);
}

/* Continue: mint the state and send the browser to the AS */
static void proceed(start_t *s, h2o_req_t *req)
{
    relay_t *r = relay_of(s);
    char state[RLY_STATE_LEN + 1];
    unsigned flags = RLY_STATE_BOUND | (s->meta.has_seal_key ? 0 : RLY_STATE_DIRECT);
    size_t len;
    char *url = NULL;
    if (rly_state_encode_flags(relay_keys(r), s->sid, flags, state) != RLY_STATE_LEN ||
        (url = rly_authorize_url(s->meta.authorization_server, s->meta.authorization_server_len, s->meta.params, s->meta.nparams,
                                 r->redirect_uri, state, &len)) == NULL) {
        respond_page(s, req, 500, RELAY_PAGE_RETRY, "error");
        return;
    }
    relay_event(RLY_LOG_INFO, "confirm", s->as_id, "confirmed", relay_op_elapsed(&s->super));
    h2o_iovec_t loc = h2o_strdup(&req->pool, url, len);
    free(url);
    relay_respond_redirect(req, loc.base, loc.len);
}

static void on_confirmed(void *ctx, store_status_t status, const store_record_t *rec)
{
    start_t *s = ctx;
    h2o_req_t *req = s->super.req;
    if (req == NULL)
        goto Exit;
    if (status != STORE_OK) {
        respond_store_status(s, req, status == STORE_CONFLICT ? STORE_NOT_FOUND : status);
        goto Exit;
    }
    memcpy(s->as_id, rec->as_id, sizeof(s->as_id));
    if (open_meta(s, rec) != 0) {
        respond_page(s, req, 410, RELAY_PAGE_START_GONE, "gone");
        goto Exit;
    }
    if (s->cancel) {
        cancel(s, req);
        return;
    }
    proceed(s, req);
Exit:
    finish(s);
}

static void on_ref(void *ctx, store_status_t status, const store_record_t *rec)
{
    start_t *s = ctx;
    h2o_req_t *req = s->super.req;
    store_t *store = s->super.worker->store;
    if (req == NULL)
        goto Exit;
    if (status != STORE_OK) {
        respond_store_status(s, req, status);
        goto Exit;
    }
    if (relay_start_ref_open(relay_keys(relay_of(s)), s->token_hash, rec->start_ref, rec->start_ref_len, s->sid) != 0 ||
        rly_store_key(s->sid, s->key) != 0) {
        respond_page(s, req, 410, RELAY_PAGE_START_GONE, "gone");
        goto Exit;
    }
    rly_b64url_encode(s->sid_text, s->sid, sizeof(s->sid));
    if (!s->is_post) {
        store->get(store, s->key, on_session, s);
        return;
    }
    if (rly_csrf_verify(relay_keys(relay_of(s)), s->sid, s->cookie, RLY_COOKIE_LEN, s->csrf, strlen(s->csrf)) != 0) {
        respond_page(s, req, 403, RELAY_PAGE_START_REFUSED, "refused");
        goto Exit;
    }
    uint8_t cookie_hash[32];
    rly_cookie_hash(s->cookie, RLY_COOKIE_LEN, cookie_hash);
    store->confirm(store, s->key, s->token_hash, cookie_hash, on_confirmed, s);
    return;
Exit:
    finish(s);
}

/* answers what can be answered without the store (0 and the op started, or -1 answered) */
static int begin(h2o_req_t *req, start_t **out, int is_post)
{
    relay_t *r = relay_worker_of(req)->relay;
    const char *src;
    size_t len;
    if (is_post) {
        if (req->entity.len > RLY_SESSION_BODY_MAX) {
            relay_event(RLY_LOG_INFO, "confirm", NULL, "too_large", 0);
            relay_respond_page(req, 413, RELAY_PAGE_TOO_LARGE, NULL, 0, 0);
            return -1;
        }
        if (!relay_content_type_is(req, "application/x-www-form-urlencoded")) {
            relay_event(RLY_LOG_INFO, "confirm", NULL, "bad_media_type", 0);
            relay_respond_page(req, 415, RELAY_PAGE_BAD_REQUEST, NULL, 0, 0);
            return -1;
        }
        src = req->entity.base;
        len = req->entity.len;
    } else {
        src = req->query_at != SIZE_MAX ? req->path.base + req->query_at + 1 : "";
        len = req->query_at != SIZE_MAX ? req->path.len - req->query_at - 1 : 0;
    }
    rly_qparam_t params[8];
    char *buf = h2o_mem_alloc_pool(&req->pool, len + 1);
    int n = rly_query_parse(src, len, buf, len + 1, params, sizeof(params) / sizeof(params[0]));
    rly_str_t t = n >= 0 ? once(params, n, "t") : (rly_str_t){NULL, 0};
    rly_str_t csrf = n >= 0 && is_post ? once(params, n, "csrf") : (rly_str_t){NULL, 0};
    rly_str_t action = n >= 0 && is_post ? once(params, n, "action") : (rly_str_t){NULL, 0};
    int cancel = action.base != NULL && action.len == 6 && memcmp(action.base, "cancel", 6) == 0;
    int proceed_ = action.base != NULL && action.len == 8 && memcmp(action.base, "continue", 8) == 0;
    if (t.base == NULL || t.len != RLY_START_TOKEN_LEN ||
        (is_post && (csrf.base == NULL || csrf.len != RLY_CSRF_LEN || (!cancel && !proceed_)))) {
        relay_event(RLY_LOG_INFO, "confirm", NULL, "bad_request", 0);
        relay_respond_page(req, 400, RELAY_PAGE_BAD_REQUEST, NULL, 0, 0);
        return -1;
    }

    char cookie[RLY_COOKIE_LEN + 1];
    int has_cookie = relay_browser_cookie(req, relay_keys(r), cookie);
    if (is_post && (!has_cookie || !relay_browser_same_origin(req, r->config->public_url))) {
        /* no browser cookie, or a cross-origin POST: nothing changes */
        relay_event(RLY_LOG_INFO, "confirm", NULL, "refused", 0);
        relay_respond_page(req, 403, RELAY_PAGE_START_REFUSED, NULL, 0, 0);
        return -1;
    }
    start_t *s = relay_op_new(req, sizeof(*s));
    if (s == NULL) {
        relay_respond_page(req, 500, RELAY_PAGE_RETRY, NULL, 0, 0);
        return -1;
    }
    s->is_post = is_post;
    s->cancel = cancel;
    memcpy(s->token, t.base, t.len);
    rly_start_token_hash(t.base, t.len, s->token_hash);
    if (is_post)
        memcpy(s->csrf, csrf.base, csrf.len);
    if (has_cookie) {
        memcpy(s->cookie, cookie, sizeof(cookie));
    } else if (rly_cookie_new(relay_keys(r), s->cookie) == 0) {
        /* the first relay page that finds the browser without a cookie sets it (its life: the longest session's) */
        relay_browser_set_cookie(req, s->cookie, r->config->session_ttl_max);
    } else {
        relay_op_free(&s->super);
        relay_respond_page(req, 500, RELAY_PAGE_RETRY, NULL, 0, 0);
        return -1;
    }
    *out = s;
    return 0;
}

int relay_route_start(h2o_req_t *req)
{
    int is_post = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"));
    start_t *s;
    if (begin(req, &s, is_post) != 0)
        return 0;
    store_t *store = s->super.worker->store;
    store->get_start(store, s->token_hash, on_ref, s);
    return 0;
}
