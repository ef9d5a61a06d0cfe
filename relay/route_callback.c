/* route_callback.c: the redirect URI: GET /qorus-oauth2-redirect (alias /v1/callback) and its form_post twin */
#include <stdlib.h>
#include <string.h>
#include "b64url.h"
#include "bind.h"
#include "browser.h"
#include "callback.h"
#include "ids.h"
#include "lock.h"
#include "meta.h"
#include "event.h"
#include "op.h"
#include "pages.h"
#include "respond.h"
#include "result_json.h"
#include "routes.h"
#include "state.h"

typedef struct st_callback_t {
    relay_op_t super;
    uint8_t key[RLY_SESSION_ID_BYTES]; /* the session's name in the store */
    char sid_text[RLY_SESSION_ID_LEN + 1];
    char as_id[RLY_AS_ID_MAX + 1];
    int denied;
    int meta_open;                 /* meta holds the session's opened meta */
    char error[RLY_ERROR_MAX + 1]; /* the AS's error code, for the redirect */
    char *result_json;             /* plaintext result, wiped and freed when the store has answered */
    size_t result_json_len;
    int bound;                             /* a 1.1 flow: the result is locked, the store checks the cookie */
    int has_cookie;                        /* bound: the request carries a valid browser cookie (cookie_hash) */
    uint8_t cookie_hash[32];               /* bound: the browser cookie's hash */
    char release[RLY_RELEASE_KEY_LEN + 1]; /* bound: the key of the locked result, for the delivery page only */
    relay_meta_t meta;
} callback_t;

static void finish(callback_t *c)
{
    if (c->result_json != NULL) {
        OPENSSL_cleanse(c->result_json, c->result_json_len);
        free(c->result_json);
    }
    OPENSSL_cleanse(c->release, sizeof(c->release));
    relay_meta_wipe(&c->meta);
    relay_op_free(&c->super);
}

static void respond_store_down(callback_t *c, h2o_req_t *req)
{
    relay_event(RLY_LOG_WARN, "callback", c->as_id[0] ? c->as_id : NULL, "unavailable", relay_op_elapsed(&c->super));
    relay_respond_page(req, 503, RELAY_PAGE_RETRY, NULL, 0, 5);
}

/* appends "status=..." to the registered return_uri: the only redirect target there is */
static void redirect_back(callback_t *c, h2o_req_t *req)
{
    const relay_meta_t *m = &c->meta;
    size_t cap = m->return_uri_len + 64 + 3 * sizeof(c->error);
    char *loc = h2o_mem_alloc_pool(&req->pool, cap);
    size_t n = m->return_uri_len;
    memcpy(loc, m->return_uri, n);
    loc[n++] = memchr(m->return_uri, '?', m->return_uri_len) != NULL ? '&' : '?';
    if (!c->denied) {
        memcpy(loc + n, "status=success", 14);
        n += 14;
    } else {
        static const char hex[] = "0123456789ABCDEF";
        memcpy(loc + n, "status=error&message=", 21);
        n += 21;
        for (const char *p = c->error; *p != '\0'; ++p) {
            unsigned char ch = (unsigned char)*p;
            if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
                ch == '.' || ch == '~') {
                loc[n++] = (char)ch;
            } else {
                loc[n++] = '%';
                loc[n++] = hex[ch >> 4];
                loc[n++] = hex[ch & 15];
            }
        }
    }
    relay_respond_redirect(req, loc, n);
}

static void on_completed(void *ctx, store_status_t status, const store_record_t *rec);

/* 1.1: a callback without the browser that confirmed the flow (or before confirmation); nothing is stored */
static void respond_other_browser(callback_t *c, h2o_req_t *req)
{
    relay_event(RLY_LOG_INFO, "callback", c->as_id[0] ? c->as_id : NULL, "forbidden", relay_op_elapsed(&c->super));
    relay_respond_page(req, 403, RELAY_PAGE_OTHER_BROWSER, NULL, 0, 0);
}

/* 1.1: the page that POSTs the release key to the confirmed return_uri */
static void deliver(callback_t *c, h2o_req_t *req)
{
    relay_delivery_t d = {
        c->meta.return_uri, c->meta.return_uri_len, c->sid_text, c->denied ? "error" : "success", c->denied ? c->error : "",
        c->release};
    relay_respond_delivery(req, &d);
}

/* 1.1: replaces the result by its locked object {"status":"locked","locked":...} under a fresh release key; 0 / -1 */
static int lock_result(callback_t *c)
{
    size_t len;
    char *locked = rly_lock(c->sid_text, c->result_json, c->result_json_len, c->release, &len);
    if (locked == NULL)
        return -1;
    OPENSSL_cleanse(c->result_json, c->result_json_len);
    free(c->result_json);
    c->result_json = relay_locked_json(locked, len, &c->result_json_len);
    free(locked);
    return c->result_json != NULL ? 0 : -1;
}

/* opens the session's meta (return_uri, seal key) from its record once; 0, or -1 with the 410 answered */
static int open_meta(callback_t *c, h2o_req_t *req, const store_record_t *rec)
{
    if (c->meta_open)
        return 0;
    if (relay_meta_open(relay_keys(c->super.worker->relay), c->sid_text, rec->meta, rec->meta_len, &c->meta) != 0) {
        /* written under a key no longer in the key file */
        relay_event(RLY_LOG_WARN, "callback", c->as_id, "undecryptable", relay_op_elapsed(&c->super));
        relay_respond_page(req, 410, RELAY_PAGE_EXPIRED, NULL, 0, 0);
        return -1;
    }
    c->meta_open = 1;
    return 0;
}

/* encrypts the result for the store (sealed to the instance when the meta has its key, else under the data key) and
 * writes it; 0, or -1 with the 500 answered */
static int write_result(callback_t *c, h2o_req_t *req)
{
    size_t bloblen;
    uint8_t *blob =
        relay_result_seal(relay_keys(c->super.worker->relay), c->sid_text, &c->meta, c->result_json, c->result_json_len, &bloblen);
    if (blob == NULL) {
        relay_respond_page(req, 500, RELAY_PAGE_RETRY, NULL, 0, 0);
        return -1;
    }
    c->super.worker->store->complete(c->super.worker->store, c->key, blob, bloblen, relay_unix_ms(), c->meta.has_seal_key,
                                     c->bound && c->has_cookie ? c->cookie_hash : NULL, on_completed, c);
    free(blob);
    return 0;
}

static void on_completed(void *ctx, store_status_t status, const store_record_t *rec)
{
    callback_t *c = ctx;
    h2o_req_t *req = c->super.req;
    if (req == NULL)
        goto Exit;
    if (rec != NULL)
        memcpy(c->as_id, rec->as_id, sizeof(c->as_id));
    switch (status) {
    case STORE_OK:
        break;
    case STORE_CONFLICT:
        relay_event(RLY_LOG_INFO, "callback", c->as_id, "replay", relay_op_elapsed(&c->super));
        relay_respond_page(req, 409, RELAY_PAGE_USED, NULL, 0, 0);
        goto Exit;
    case STORE_NOT_FOUND:
        relay_event(RLY_LOG_INFO, "callback", c->as_id[0] ? c->as_id : NULL, "expired", relay_op_elapsed(&c->super));
        relay_respond_page(req, 410, RELAY_PAGE_EXPIRED, NULL, 0, 0);
        goto Exit;
    case STORE_FORBIDDEN:
        respond_other_browser(c, req);
        goto Exit;
    case STORE_SEAL_REQUIRED:
        /* an unsealed write for a session that wants sealing (a direct state minted before a change of its flag): the
         * store kept nothing; seal to the key in the meta and write once more (a sealed write is never refused so) */
        if (open_meta(c, req, rec) != 0)
            goto Exit;
        if (!c->meta.has_seal_key) { /* the store and the meta disagree */
            relay_respond_page(req, 500, RELAY_PAGE_RETRY, NULL, 0, 0);
            goto Exit;
        }
        if (write_result(c, req) == 0)
            return;
        goto Exit;
    default:
        respond_store_down(c, req);
        goto Exit;
    }
    /* the direct path learns the return_uri from the record the write answered with */
    if (open_meta(c, req, rec) != 0)
        goto Exit;
    relay_event(RLY_LOG_INFO, "callback", c->as_id, c->denied ? "denied" : "authorized", relay_op_elapsed(&c->super));
    if (c->bound)
        deliver(c, req);
    else if (c->meta.return_uri_len != 0)
        redirect_back(c, req);
    else if (c->denied)
        relay_respond_page(req, 200, RELAY_PAGE_DENIED, c->error, strlen(c->error), 0);
    else
        relay_respond_page(req, 200, RELAY_PAGE_DONE, NULL, 0, 0);
Exit:
    finish(c);
}

/* the read-first path (a session that may want its result sealed): the record, then the write */
static void on_session(void *ctx, store_status_t status, const store_record_t *rec)
{
    callback_t *c = ctx;
    h2o_req_t *req = c->super.req;
    if (req == NULL)
        goto Exit;
    if (status == STORE_NOT_FOUND) {
        relay_event(RLY_LOG_INFO, "callback", NULL, "expired", relay_op_elapsed(&c->super));
        relay_respond_page(req, 410, RELAY_PAGE_EXPIRED, NULL, 0, 0);
        goto Exit;
    }
    if (status != STORE_OK) {
        respond_store_down(c, req);
        goto Exit;
    }
    memcpy(c->as_id, rec->as_id, sizeof(c->as_id));
    if (rec->result != NULL) {
        relay_event(RLY_LOG_INFO, "callback", c->as_id, "replay", relay_op_elapsed(&c->super));
        relay_respond_page(req, 409, RELAY_PAGE_USED, NULL, 0, 0);
        goto Exit;
    }
    if (rec->bound && (!c->has_cookie || !rec->confirmed || !rly_hash_equal(rec->cookie_hash, c->cookie_hash))) {
        respond_other_browser(c, req); /* the store would refuse the write too */
        goto Exit;
    }
    if (open_meta(c, req, rec) != 0 || write_result(c, req) != 0)
        goto Exit;
    return;
Exit:
    finish(c);
}

int relay_route_callback(h2o_req_t *req)
{
    const char *src = NULL;
    size_t len = 0;
    relay_t *r = relay_worker_of(req)->relay;

    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        if (req->entity.len > RLY_QUERY_MAX) {
            relay_event(RLY_LOG_INFO, "callback", NULL, "too_large", 0);
            relay_respond_page(req, 413, RELAY_PAGE_TOO_LARGE, NULL, 0, 0);
            return 0;
        }
        if (!relay_content_type_is(req, "application/x-www-form-urlencoded")) {
            relay_event(RLY_LOG_INFO, "callback", NULL, "bad_media_type", 0);
            relay_respond_page(req, 415, RELAY_PAGE_BAD_REQUEST, NULL, 0, 0);
            return 0;
        }
        src = req->entity.base;
        len = req->entity.len;
    } else if (req->query_at != SIZE_MAX) {
        src = req->path.base + req->query_at + 1;
        len = req->path.len - req->query_at - 1;
    }

    rly_callback_t *cb = h2o_mem_alloc_pool(&req->pool, sizeof(*cb));
    const char *errstr = NULL;
    uint8_t sid[RLY_SESSION_ID_BYTES];
    unsigned flags = 0;
    callback_t *c = NULL;
    rly_callback_status_t st = rly_callback_parse(cb, src != NULL ? src : "", len, &errstr);
    if (st == RLY_CALLBACK_OK && rly_state_verify_flags(relay_keys(r), cb->state.base, cb->state.len, sid, &flags) != 0)
        st = RLY_CALLBACK_BAD_STATE;
    if (st != RLY_CALLBACK_OK) {
        rly_callback_wipe(cb, len);
        relay_event(RLY_LOG_INFO, "callback", NULL, st == RLY_CALLBACK_BAD_STATE ? "bad_state" : "bad_request", 0);
        relay_respond_page(req, 400, RELAY_PAGE_BAD_REQUEST, NULL, 0, 0);
        return 0;
    }

    char cookie[RLY_COOKIE_LEN + 1];
    int bound = (flags & RLY_STATE_BOUND) != 0, has_cookie = bound && relay_browser_cookie(req, relay_keys(r), cookie);
    if ((c = relay_op_new(req, sizeof(*c))) == NULL || rly_store_key(sid, c->key) != 0) {
        rly_callback_wipe(cb, len);
        goto Error;
    }
    if (bound) {
        /* 1.1: the store checks, inside its atomic write, that the session was confirmed by this browser's cookie; without
         * a cookie it still answers 409 for a completed session (as version 1 does), else 403 */
        c->bound = 1;
        c->has_cookie = has_cookie;
        if (has_cookie)
            rly_cookie_hash(cookie, RLY_COOKIE_LEN, c->cookie_hash);
        OPENSSL_cleanse(cookie, sizeof(cookie));
    }
    rly_b64url_encode(c->sid_text, sid, sizeof(sid));
    if (cb->error.base != NULL) {
        c->denied = 1;
        memcpy(c->error, cb->error.base, cb->error.len < RLY_ERROR_MAX ? cb->error.len : RLY_ERROR_MAX);
    }
    relay_result_params_t extra = {cb->params, cb->nparams, cb->params_dropped};
    c->result_json = relay_result_json(cb->state.base, cb->state.len, &cb->code, &cb->iss, &cb->error, &cb->error_description,
                                       &cb->error_uri, &extra, &c->result_json_len);
    /* the decoded parameters are in req->pool: wipe them now that the result is built */
    rly_callback_wipe(cb, len);
    if (c->result_json == NULL || (c->bound && lock_result(c) != 0))
        goto Error;
    if ((flags & RLY_STATE_DIRECT) != 0) {
        /* no seal key (the state says so under its MAC): encrypt under the data key and write, one round trip; the
         * store refuses it if the session wants sealing after all */
        if (write_result(c, req) != 0)
            finish(c);
        return 0;
    }
    c->super.worker->store->get(c->super.worker->store, c->key, on_session, c);
    return 0;

Error:
    if (c != NULL)
        finish(c);
    relay_respond_page(req, 500, RELAY_PAGE_RETRY, NULL, 0, 0);
    return 0;
}
