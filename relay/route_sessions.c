/* route_sessions.c: discovery (GET /.well-known/authrelay) and session creation (POST /v1/sessions) */
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include "ids.h"
#include "meta.h"
#include "event.h"
#include "op.h"
#include "respond.h"
#include "routes.h"
#include "bind.h"
#include "session_req.h"
#include "state.h"

/* "<public-url><path>", malloc'ed */
static char *public_url_of(const relay_config_t *cfg, const char *path)
{
    size_t n = strlen(cfg->public_url), m = strlen(path);
    char *url = malloc(n + m + 1);
    if (url != NULL) {
        memcpy(url, cfg->public_url, n);
        memcpy(url + n, path, m + 1);
    }
    return url;
}

int relay_discovery_init(relay_t *r)
{
    const relay_config_t *cfg = r->config;
    char *sessions = public_url_of(cfg, RELAY_PATH_SESSIONS);
    if ((r->redirect_uri = public_url_of(cfg, RELAY_PATH_CALLBACK)) == NULL || sessions == NULL) {
        free(sessions);
        return -1;
    }
    json_object *o = json_object_new_object(), *as = json_object_new_array(), *seal = json_object_new_array();
    for (size_t i = 0; i != cfg->allow_as_count; ++i)
        json_object_array_add(as, json_object_new_string(cfg->allow_as[i]));
    json_object_array_add(seal, json_object_new_string("X25519-HKDF-SHA256-A256GCM"));
    json_object_object_add(o, "version", json_object_new_string(RLY_PROTOCOL_VERSION));
    json_object_object_add(o, "redirect_uri", json_object_new_string(r->redirect_uri));
    json_object_object_add(o, "sessions_endpoint", json_object_new_string(sessions));
    json_object_object_add(o, "session_ttl_max", json_object_new_int((int)cfg->session_ttl_max));
    json_object_object_add(o, "wait_max", json_object_new_int((int)cfg->wait_max));
    json_object_object_add(o, "authorization_servers", as);
    json_object_object_add(o, "seal_algorithms", seal);
    json_object_object_add(o, "unbound_sessions", json_object_new_boolean(cfg->allow_unbound));
    size_t len;
    const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    r->discovery_json = strndup(s, len);
    r->discovery_json_len = len;
    json_object_put(o);
    free(sessions);
    return r->discovery_json != NULL ? 0 : -1;
}

int relay_route_discovery(h2o_req_t *req)
{
    relay_t *r = relay_worker_of(req)->relay;
    relay_respond_json(req, 200, NULL, r->discovery_json, r->discovery_json_len);
    return 0;
}

/* Retry-After when the relay holds --sessions-max sessions: room comes back as flows complete or expire */
#define FULL_RETRY_AFTER 30

typedef struct st_create_t {
    relay_op_t super;
    char sid_text[RLY_SESSION_ID_LEN + 1];
    char state[RLY_STATE_LEN + 1]; /* version 1 only: a 1.1 state is minted when the user confirms */
    char token[RLY_POLL_TOKEN_LEN + 1];
    char start_token[RLY_START_TOKEN_LEN + 1]; /* 1.1: the start link's token; "" for version 1 */
    char as_id[RLY_AS_ID_MAX + 1];
    unsigned ttl;
} create_t;

static void on_created(void *ctx, store_status_t status, const store_record_t *rec)
{
    create_t *c = ctx;
    h2o_req_t *req = c->super.req;
    (void)rec;
    if (req == NULL)
        goto Exit;
    if (status == STORE_FULL) {
        relay_event(RLY_LOG_WARN, "session_create", c->as_id, "full", relay_op_elapsed(&c->super));
        relay_respond_error(req, 503, NULL, "temporarily_unavailable", "the relay holds as many sessions as it may; retry later",
                            FULL_RETRY_AFTER);
        goto Exit;
    }
    if (status != STORE_OK) {
        relay_event(RLY_LOG_WARN, "session_create", c->as_id, "unavailable", relay_op_elapsed(&c->super));
        relay_respond_error(req, 503, NULL, "temporarily_unavailable", "the rendezvous store is unavailable; retry shortly", 2);
        goto Exit;
    }
    relay_t *r = c->super.worker->relay;
    const char *base = r->config->public_url;
    char poll_url[1024], start_url[1024];
    snprintf(poll_url, sizeof(poll_url), "%s" RELAY_PATH_SESSIONS "/%s", base, c->sid_text);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "session", json_object_new_string(c->sid_text));
    if (c->start_token[0] != '\0') {
        snprintf(start_url, sizeof(start_url), "%s" RELAY_PATH_START "?t=%s", base, c->start_token);
        json_object_object_add(o, "start_url", json_object_new_string(start_url));
    } else {
        json_object_object_add(o, "state", json_object_new_string(c->state));
    }
    json_object_object_add(o, "redirect_uri", json_object_new_string(r->redirect_uri));
    json_object_object_add(o, "poll_url", json_object_new_string(poll_url));
    json_object_object_add(o, "poll_token", json_object_new_string(c->token));
    json_object_object_add(o, "expires_in", json_object_new_int((int)c->ttl));
    size_t len;
    const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    h2o_iovec_t body = h2o_strdup(&req->pool, s, len);
    json_object_put(o);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL, h2o_strdup(&req->pool, poll_url, strlen(poll_url)).base,
                   strlen(poll_url));
    relay_event(RLY_LOG_INFO, "session_create", c->as_id, "created", relay_op_elapsed(&c->super));
    relay_respond_json(req, 201, NULL, body.base, body.len);
Exit:
    OPENSSL_cleanse(c->token, sizeof(c->token));
    OPENSSL_cleanse(c->start_token, sizeof(c->start_token));
    relay_op_free(&c->super);
}

int relay_route_create(h2o_req_t *req)
{
    relay_t *r = relay_worker_of(req)->relay;
    if (req->entity.len > RLY_SESSION_BODY_MAX) {
        relay_event(RLY_LOG_INFO, "session_create", NULL, "too_large", 0);
        relay_respond_error(req, 413, NULL, "invalid_request", "the request body is larger than 8 KiB", 0);
        return 0;
    }
    if (!relay_content_type_is(req, "application/json")) {
        relay_event(RLY_LOG_INFO, "session_create", NULL, "bad_media_type", 0);
        relay_respond_error(req, 415, NULL, "invalid_request", "the request body must be application/json", 0);
        return 0;
    }

    const relay_config_t *cfg = r->config;
    rly_session_policy_t pol = {cfg->dev,
                                cfg->session_ttl_max,
                                (const char *const *)cfg->allow_as,
                                cfg->allow_as_count,
                                (const char *const *)cfg->allow_client_id,
                                cfg->allow_client_id_count,
                                cfg->allow_unbound};
    rly_session_req_t sreq;
    const char *errstr = "invalid request";
    switch (rly_session_req_parse(req->entity.base, req->entity.len, &pol, &sreq, &errstr)) {
    case RLY_SREQ_OK:
        break;
    case RLY_SREQ_NOT_ALLOWED:
        relay_event(RLY_LOG_INFO, "session_create", NULL, "not_allowed", 0);
        relay_respond_error(req, 403, NULL, "authorization_server_not_allowed", errstr, 0);
        return 0;
    case RLY_SREQ_CLIENT_NOT_ALLOWED:
        relay_event(RLY_LOG_INFO, "session_create", NULL, "client_not_allowed", 0);
        relay_respond_error(req, 403, NULL, "client_not_allowed", errstr, 0);
        return 0;
    default:
        relay_event(RLY_LOG_INFO, "session_create", NULL, "invalid", 0);
        relay_respond_error(req, 400, NULL, "invalid_request", errstr, 0);
        return 0;
    }

    create_t *c = relay_op_new(req, sizeof(*c));
    if (c == NULL)
        goto Error;
    uint8_t meta[RELAY_META_MAX], sid[RLY_SESSION_ID_BYTES], start_ref[RELAY_START_REF_LEN];
    store_record_t rec = {0};
    long metalen;
    if (rly_session_new(sid, c->sid_text) != 0 || rly_store_key(sid, rec.key) != 0 ||
        rly_poll_token_new(c->token, rec.token_hash) != 0)
        goto Error;
    if (sreq.bound) {
        /* 1.1: no state yet; the start link's token, kept as a hash, and its entry naming the session (encrypted) */
        if (rly_start_token_new(c->start_token, rec.start_hash) != 0 ||
            relay_start_ref_seal(relay_keys(r), rec.start_hash, sid, start_ref) != 0)
            goto Error;
        rec.bound = 1;
        rec.start_ref = start_ref;
        rec.start_ref_len = sizeof(start_ref);
    } else if (rly_state_encode_flags(relay_keys(r), sid, sreq.has_seal_key ? 0 : RLY_STATE_DIRECT, c->state) != RLY_STATE_LEN) {
        /* version 1: without a seal key a callback can write the result at once, and the state says so (under its MAC) */
        goto Error;
    }
    rec.sealed = sreq.has_seal_key;
    memcpy(rec.as_id, sreq.as_id, sizeof(rec.as_id));
    memcpy(c->as_id, sreq.as_id, sizeof(c->as_id));
    if ((metalen = relay_meta_seal(relay_keys(r), c->sid_text, &sreq, meta)) < 0)
        goto Error;
    rec.meta = meta;
    rec.meta_len = (size_t)metalen;
    c->ttl = sreq.ttl;
    c->super.worker->store->create(c->super.worker->store, &rec, sreq.ttl, cfg->sessions_max, on_created, c);
    return 0;

Error:
    if (c != NULL)
        relay_op_free(&c->super);
    relay_respond_error(req, 500, NULL, "server_error", "internal error", 0);
    return 0;
}
