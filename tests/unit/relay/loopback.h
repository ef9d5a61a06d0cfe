/* loopback.h: the public listener's handler driven without sockets: one relay, one worker, a fake connection per request */
#ifndef RELAY_TEST_LOOPBACK_H
#define RELAY_TEST_LOOPBACK_H

/*
 * The harness of h2o's t/00unit (test.c, "h2o_loopback_create"), written against the installed libh2o 2.2.5, which does
 * not export it. Use (this header includes cmocka and its prerequisites):
 *
 *     lb_relay_t *lb = lb_relay_new(NULL);            // relay_t + one relay_worker_t, memory store, ephemeral keys
 *     lb_conn_t *c = lb_fetch(lb, "GET", "/.well-known/authrelay", NULL, NULL);
 *     assert_int_equal(c->status, 200);                // status, headers (lb_header), body (c->body, c->body_len)
 *     lb_conn_free(c);                                 // disposes the request's pool, as h2o does after a response
 *     lb_relay_free(lb);                               // asserts no request is still in flight, frees everything
 *
 * The worker is set up as serve.c sets up its own: an h2o context on a fresh evloop, the global configuration with one
 * handler, the wait-timeout tables, a waiter table, and the memory store opened on that loop with relay_waiters_notify
 * as its notifier. A request goes through h2o_process_request (so the path, query_at and scheme are h2o's) to the one
 * handler, which calls relay_on_req, or the function a test put in the connection's on_req (lb_conn_new, then
 * lb_process: the respond tests). The response arrives through the connection's final ostream, as in t/00unit; lb_wait
 * runs the loop (bounded) until it has.
 * Log lines go to a memory file (lb_log_has). Everything is on the test's thread.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>
#include <h2o.h>
#include "b64url.h"
#include "ids.h"
#include "keys.h"
#include "log.h"
#include "ratelimit.h"
#include "router.h"
#include "routes.h"
#include "state.h"
#include "store.h"
#include "waiters.h"
#include "worker.h"

/*
 * libh2o 2.2.5 leaks in two places the harness reaches (store_conformance.h says the same): per-thread free lists
 * (h2o_mem_alloc_recycle) and the evloop flavour of h2o_multithread_destroy_queue, which never frees its queue (one for
 * the context, one for the store handle). Unit tests run without LSAN_OPTIONS, so the suppressions are compiled in.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:h2o_mem_alloc_recycle\nleak:h2o_multithread_create_queue\n";
}

#define LB_PUBLIC_URL "https://relay.test"
#define LB_WAIT_MAX 30
#define LB_SESSION_TTL_MAX 600
#define LB_WAIT_MS 5000           /* bound on a response that needs no timer */
#define LB_BODY_MAX (1024 * 1024) /* a response body larger than this fails the test */
#define LB_HEADERS_MAX 16         /* request headers given to lb_start */
/* the variadic lists (headers, log fragments) end with NULL: the compiler checks it */
#define LB_SENTINEL __attribute__((sentinel))

typedef struct st_lb_options_t {
    const char *allow_as[4]; /* the allow-list; NULL-terminated, empty: any https AS */
    unsigned rate_limit;     /* per address per minute; 0 off */
} lb_options_t;

typedef struct st_lb_relay_t {
    relay_config_t config;
    char public_url[64];
    char allow_as[4][64];
    rly_keyring_t keys;
    relay_t relay;
    relay_worker_t worker;
    int log_fd;              /* a memory file: every log line of the test */
    struct sockaddr_in peer; /* the client address of the next requests */
} lb_relay_t;

typedef int (*lb_handler_cb)(h2o_handler_t *self, h2o_req_t *req);

/* a fake connection carrying one request; its final ostream collects the response */
typedef struct st_lb_conn_t {
    h2o_conn_t super;
    lb_relay_t *lb;
    lb_handler_cb on_req;
    struct sockaddr_in peer;
    h2o_ostream_t _ostr_final;
    int done;   /* the final part of the response arrived */
    int sends;  /* calls to the final ostream (more than one after done: a second response) */
    int status; /* as of the first send */
    char *body; /* malloc'ed, NUL-terminated */
    size_t body_len;
    uint64_t started_at; /* h2o_now when the request was processed */
    uint64_t done_at;
    h2o_req_t req; /* last: large, with its own constructor */
} lb_conn_t;

static inline h2o_loop_t *lb_loop(lb_relay_t *lb)
{
    return lb->worker.ctx.loop;
}

static socklen_t lb_get_sockname(h2o_conn_t *conn, struct sockaddr *sa)
{
    (void)conn;
    struct sockaddr_in *sin = (struct sockaddr_in *)sa;
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(0x7f000001);
    sin->sin_port = htons(8443);
    return sizeof(*sin);
}

static socklen_t lb_get_peername(h2o_conn_t *conn, struct sockaddr *sa)
{
    lb_conn_t *c = (lb_conn_t *)conn;
    memcpy(sa, &c->peer, sizeof(c->peer));
    return sizeof(c->peer);
}

static const h2o_conn_callbacks_t lb_conn_callbacks = {.get_sockname = lb_get_sockname, .get_peername = lb_get_peername};

/* the one handler of the configuration: relay_on_req, unless the connection names another function */
static int lb_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    lb_conn_t *c = (lb_conn_t *)req->conn;
    return c->on_req(self, req);
}

static void lb_on_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt, h2o_send_state_t state)
{
    lb_conn_t *c = H2O_STRUCT_FROM_MEMBER(lb_conn_t, _ostr_final, self);
    if (c->sends++ == 0)
        c->status = req->res.status;
    for (size_t i = 0; i != bufcnt; ++i) {
        if (c->body_len + bufs[i].len > LB_BODY_MAX)
            fail_msg("response body larger than %d bytes", LB_BODY_MAX);
        char *grown = realloc(c->body, c->body_len + bufs[i].len + 1);
        assert_non_null(grown);
        c->body = grown;
        memcpy(c->body + c->body_len, bufs[i].base, bufs[i].len);
        c->body_len += bufs[i].len;
        c->body[c->body_len] = '\0';
    }
    if (h2o_send_state_is_in_progress(state)) {
        h2o_proceed_response(req);
    } else {
        c->done = 1;
        c->done_at = h2o_now(c->lb->worker.ctx.loop);
    }
}

/* the relay, its worker, the memory store and the discovery document; opts may be NULL */
static inline lb_relay_t *lb_relay_new(const lb_options_t *opts)
{
    lb_relay_t *lb = calloc(1, sizeof(*lb));
    assert_non_null(lb);
    relay_t *r = &lb->relay;
    relay_worker_t *w = &lb->worker;

    lb->log_fd = memfd_create("loopback-log", MFD_CLOEXEC);
    assert_true(lb->log_fd >= 0);
    rly_log_init(RLY_LOG_DEBUG, lb->log_fd);

    relay_config_t *cfg = &lb->config;
    snprintf(lb->public_url, sizeof(lb->public_url), "%s", LB_PUBLIC_URL);
    cfg->public_url = lb->public_url;
    cfg->dev = 1;           /* http to a loopback AS allowed */
    cfg->allow_unbound = 1; /* version-1 sessions (no authorize_params): the flows these tests drive */
    cfg->plain = 0;
    cfg->session_ttl_max = LB_SESSION_TTL_MAX;
    cfg->wait_max = LB_WAIT_MAX;
    cfg->threads = 1;
    cfg->shutdown_grace = 1;
    cfg->log_level = RLY_LOG_DEBUG;
    if (opts != NULL) {
        for (size_t i = 0; i != sizeof(opts->allow_as) / sizeof(opts->allow_as[0]) && opts->allow_as[i] != NULL; ++i) {
            snprintf(lb->allow_as[i], sizeof(lb->allow_as[i]), "%s", opts->allow_as[i]);
            cfg->allow_as[cfg->allow_as_count++] = lb->allow_as[i];
        }
        cfg->rate_limit = opts->rate_limit;
    }

    assert_int_equal(rly_keyring_ephemeral(&lb->keys), 0);
    r->config = cfg;
    atomic_store(&r->keys, &lb->keys);
    assert_non_null(r->store = store_memory_new());
    if (cfg->rate_limit != 0)
        assert_non_null(r->ratelimit = relay_ratelimit_new(cfg->rate_limit));
    assert_int_equal(relay_discovery_init(r), 0);

    h2o_config_init(&r->globalconf);
    r->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("authrelay"));
    r->globalconf.max_request_entity_size = 1024 * 1024;
    h2o_hostconf_t *host = h2o_config_register_host(&r->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(pathconf, sizeof(*handler));
    handler->on_req = lb_on_req;

    r->workers = w;
    r->nworkers = 1;
    w->relay = r;
    w->index = 0;
    h2o_context_init(&w->ctx, h2o_evloop_create(), &r->globalconf);
    assert_int_equal(relay_worker_init_tables(w, cfg->wait_max), 0);
    assert_non_null(w->waiters = relay_waiters_new());
    assert_non_null(w->store = r->store->open(r->store, w->ctx.loop, relay_waiters_notify, w->waiters));

    lb->peer.sin_family = AF_INET;
    lb->peer.sin_addr.s_addr = htonl(0xc0000201); /* 192.0.2.1 */
    lb->peer.sin_port = htons(55555);
    return lb;
}

/* every request must have been freed (lb_conn_free) before */
static inline void lb_relay_free(lb_relay_t *lb)
{
    relay_t *r = &lb->relay;
    relay_worker_t *w = &lb->worker;
    h2o_loop_t *loop = w->ctx.loop;

    assert_int_equal(atomic_load(&w->inflight), 0);
    assert_int_equal(relay_waiters_count(w->waiters), 0);
    w->store->close(w->store);
    relay_waiters_free(w->waiters);
    for (unsigned i = 0; i <= r->config->wait_max; ++i)
        if (w->wait_timeouts_ready[i])
            h2o_timeout_dispose(loop, &w->wait_timeouts[i]);
    free(w->wait_timeouts);
    free(w->wait_timeouts_ready);
    h2o_context_dispose(&w->ctx);
    h2o_evloop_run(loop, 0); /* disposes of the sockets the queues closed */
    h2o_evloop_destroy(loop);
    h2o_config_dispose(&r->globalconf);
    r->store->destroy(r->store);
    relay_ratelimit_free(r->ratelimit);
    free(r->redirect_uri);
    free(r->discovery_json);
    rly_log_init(RLY_LOG_INFO, 1);
    close(lb->log_fd);
    OPENSSL_cleanse(&lb->keys, sizeof(lb->keys));
    free(lb);
}

/* the client address of the requests made from now on (dotted IPv4) */
static inline void lb_set_peer(lb_relay_t *lb, const char *addr)
{
    assert_int_equal(inet_pton(AF_INET, addr, &lb->peer.sin_addr), 1);
}

/*
 * A connection with its request built but not processed: method, path (with its query), body (NULL: none; its length
 * is strlen) and headers as name, value pairs ending with NULL (names lower-case). HTTP/1.1 over https.
 */
static inline lb_conn_t *lb_conn_newv(lb_relay_t *lb, const char *method, const char *path, const char *body, va_list headers)
{
    lb_conn_t *c = (lb_conn_t *)h2o_create_connection(sizeof(*c), &lb->worker.ctx, lb->relay.globalconf.hosts,
                                                      (struct timeval){0, 0}, &lb_conn_callbacks);
    memset((char *)c + sizeof(c->super), 0, offsetof(lb_conn_t, req) - sizeof(c->super));
    c->lb = lb;
    c->on_req = relay_on_req;
    c->peer = lb->peer;
    h2o_init_request(&c->req, &c->super, NULL);
    c->req._ostr_top = &c->_ostr_final;
    c->_ostr_final.do_send = lb_on_send;

    h2o_req_t *req = &c->req;
    req->version = 0x101;
    req->input.scheme = &H2O_URL_SCHEME_HTTPS;
    req->input.method = h2o_strdup(&req->pool, method, strlen(method));
    req->input.path = h2o_strdup(&req->pool, path, strlen(path));
    if (body != NULL)
        req->entity = h2o_strdup(&req->pool, body, strlen(body));
    const char *name;
    for (size_t n = 0; (name = va_arg(headers, const char *)) != NULL; ++n) {
        const char *value = va_arg(headers, const char *);
        assert_true(n < LB_HEADERS_MAX);
        assert_non_null(value);
        h2o_iovec_t lname = h2o_strdup(&req->pool, name, strlen(name));
        h2o_strtolower(lname.base, lname.len);
        h2o_add_header_by_str(&req->pool, &req->headers, lname.base, lname.len, 1, NULL, value, strlen(value));
    }
    return c;
}

LB_SENTINEL static inline lb_conn_t *lb_conn_new(lb_relay_t *lb, const char *method, const char *path, const char *body, ...)
{
    va_list ap;
    va_start(ap, body);
    lb_conn_t *c = lb_conn_newv(lb, method, path, body, ap);
    va_end(ap);
    return c;
}

/* hands the request to h2o, which calls the handler; the response may have arrived when this returns */
static inline void lb_process(lb_conn_t *c)
{
    c->started_at = h2o_now(c->lb->worker.ctx.loop);
    h2o_process_request(&c->req);
}

/* runs the loop until c's response arrived or ms milliseconds passed; 1 arrived, 0 not */
static inline int lb_wait(lb_conn_t *c, uint64_t ms)
{
    h2o_loop_t *loop = c->lb->worker.ctx.loop;
    h2o_evloop_run(loop, 0); /* updates h2o_now */
    uint64_t until = h2o_now(loop) + ms;
    while (!c->done) {
        uint64_t now = h2o_now(loop);
        if (now >= until)
            break;
        h2o_evloop_run(loop, (int32_t)(until - now < 10 ? until - now : 10));
    }
    return c->done;
}

/* runs the loop for ms milliseconds whatever happens */
static inline void lb_run_for(lb_relay_t *lb, uint64_t ms)
{
    h2o_loop_t *loop = lb_loop(lb);
    h2o_evloop_run(loop, 0);
    uint64_t until = h2o_now(loop) + ms;
    for (uint64_t now; (now = h2o_now(loop)) < until;)
        h2o_evloop_run(loop, (int32_t)(until - now < 10 ? until - now : 10));
}

/* a request processed by relay_on_req, not waited for (a long-poll) */
LB_SENTINEL static inline lb_conn_t *lb_start(lb_relay_t *lb, const char *method, const char *path, const char *body, ...)
{
    va_list ap;
    va_start(ap, body);
    lb_conn_t *c = lb_conn_newv(lb, method, path, body, ap);
    va_end(ap);
    lb_process(c);
    return c;
}

/* a request processed by relay_on_req whose response must arrive within LB_WAIT_MS */
LB_SENTINEL static inline lb_conn_t *lb_fetch(lb_relay_t *lb, const char *method, const char *path, const char *body, ...)
{
    va_list ap;
    va_start(ap, body);
    lb_conn_t *c = lb_conn_newv(lb, method, path, body, ap);
    va_end(ap);
    lb_process(c);
    if (!lb_wait(c, LB_WAIT_MS))
        fail_msg("%s %.80s: no response within %d ms", method, path, LB_WAIT_MS);
    assert_int_equal(c->sends, 1); /* one final send; h2o asserts against a second response */
    return c;
}

/* disposes of the request (its pool: guards run, the in-flight count drops) and the connection */
static inline void lb_conn_free(lb_conn_t *c)
{
    h2o_dispose_request(&c->req);
    free(c->body);
    free(c);
}

/* the value of the response header name (NUL-terminated, in the request's pool), or NULL; the first of several */
static inline const char *lb_header(lb_conn_t *c, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&c->req.res.headers, name, strlen(name), -1);
    if (i == -1)
        return NULL;
    h2o_iovec_t v = c->req.res.headers.entries[i].value;
    return h2o_strdup(&c->req.pool, v.base, v.len).base;
}

/* asserts the response has the header name with exactly this value (the first of several) */
static inline void lb_assert_header(lb_conn_t *c, const char *name, const char *value)
{
    const char *v = lb_header(c, name);
    if (v == NULL)
        fail_msg("no %s header (expected \"%s\")", name, value);
    if (strcmp(v, value) != 0)
        fail_msg("%s: \"%s\", expected \"%s\"", name, v, value);
}

static inline size_t lb_header_count(lb_conn_t *c, const char *name)
{
    size_t n = 0;
    for (ssize_t i = -1; (i = h2o_find_header_by_str(&c->req.res.headers, name, strlen(name), i)) != -1;)
        ++n;
    return n;
}

/* the response body as a JSON object (the caller puts it); fails the test if it is not one */
static inline json_object *lb_json(lb_conn_t *c)
{
    assert_non_null(c->body);
    json_object *o = json_tokener_parse(c->body);
    if (o == NULL || !json_object_is_type(o, json_type_object))
        fail_msg("not a JSON object: %.200s", c->body);
    return o;
}

/* a string member, or NULL when absent or not a string; borrowed from o */
static inline const char *lb_json_str(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* an integer member, or -1 when absent or not an integer */
static inline long lb_json_int(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
        return -1;
    return (long)json_object_get_int64(v);
}

/* asserts the string member key of o is value */
static inline void lb_assert_json_str(json_object *o, const char *key, const char *value)
{
    const char *v = lb_json_str(o, key);
    if (v == NULL)
        fail_msg("no string member %s (expected \"%s\")", key, value);
    if (strcmp(v, value) != 0)
        fail_msg("%s: \"%s\", expected \"%s\"", key, v, value);
}

/* asserts the error body {"error": code, "error_description": <non-empty>} of a JSON error response */
static inline void lb_assert_json_error(lb_conn_t *c, int status, const char *code)
{
    assert_int_equal(c->status, status);
    lb_assert_header(c, "content-type", "application/json");
    json_object *o = lb_json(c);
    assert_non_null(lb_json_str(o, "error"));
    lb_assert_json_str(o, "error", code);
    const char *d = lb_json_str(o, "error_description");
    assert_true(d != NULL && d[0] != '\0');
    json_object_put(o);
}

/* 1 if a log line written since the relay started contains every one of the given fragments (NULL-terminated) */
LB_SENTINEL static inline int lb_log_has(lb_relay_t *lb, ...)
{
    off_t size = lseek(lb->log_fd, 0, SEEK_END);
    assert_true(size >= 0);
    char *text = malloc((size_t)size + 1);
    assert_non_null(text);
    assert_int_equal(pread(lb->log_fd, text, (size_t)size, 0), size);
    text[size] = '\0';
    int found = 0;
    for (char *line = text, *end; !found && *line != '\0'; line = end + (*end != '\0')) {
        end = strchr(line, '\n');
        if (end == NULL)
            end = line + strlen(line);
        *end = '\0';
        va_list ap;
        va_start(ap, lb);
        found = 1;
        for (const char *frag; (frag = va_arg(ap, const char *)) != NULL;)
            if (strstr(line, frag) == NULL)
                found = 0;
        va_end(ap);
        if (end != text + size)
            *end = '\n';
    }
    free(text);
    return found;
}

/* 1 if the log (all of it) contains s anywhere */
static inline int lb_log_contains(lb_relay_t *lb, const char *s)
{
    return lb_log_has(lb, s, NULL);
}

/* a session as POST /v1/sessions returned it */
typedef struct st_lb_session_t {
    char id[RLY_SESSION_ID_LEN + 1];
    uint8_t sid[RLY_SESSION_ID_BYTES];
    char state[RLY_STATE_MAX + 1];
    char token[RLY_POLL_TOKEN_LEN + 1];
    char path[64]; /* /v1/sessions/<id> */
} lb_session_t;

/* creates a session with the JSON body given; fails the test unless the answer is 201 */
static inline void lb_create(lb_relay_t *lb, const char *body, lb_session_t *s)
{
    lb_conn_t *c = lb_fetch(lb, "POST", RELAY_PATH_SESSIONS, body, "content-type", "application/json", NULL);
    if (c->status != 201)
        fail_msg("create: %d %.200s", c->status, c->body != NULL ? c->body : "");
    json_object *o = lb_json(c);
    const char *id = lb_json_str(o, "session"), *state = lb_json_str(o, "state"), *token = lb_json_str(o, "poll_token");
    assert_non_null(id);
    assert_non_null(state);
    assert_non_null(token);
    assert_int_equal(strlen(id), RLY_SESSION_ID_LEN);
    assert_true(strlen(state) <= RLY_STATE_MAX);
    assert_int_equal(strlen(token), RLY_POLL_TOKEN_LEN);
    memcpy(s->id, id, RLY_SESSION_ID_LEN + 1);
    memcpy(s->state, state, strlen(state) + 1);
    memcpy(s->token, token, RLY_POLL_TOKEN_LEN + 1);
    assert_int_equal(rly_session_parse(s->id, RLY_SESSION_ID_LEN, s->sid), 0);
    snprintf(s->path, sizeof(s->path), RELAY_PATH_SESSIONS "/%s", s->id);
    json_object_put(o);
    lb_conn_free(c);
}

/* "Bearer <token>" into buf */
static inline const char *lb_bearer(char *buf, size_t cap, const char *token)
{
    snprintf(buf, cap, "Bearer %s", token);
    return buf;
}

/* what the store holds for a session (by its id): the status of a get, and a copy of the record's fixed fields */
typedef struct st_lb_stored_t {
    int calls;
    store_status_t status;
    store_record_t rec; /* meta and result pointers cleared (borrowed for the callback only) */
    int has_result;
} lb_stored_t;

static void lb_on_stored(void *ctx, store_status_t status, const store_record_t *rec)
{
    lb_stored_t *st = ctx;
    ++st->calls;
    st->status = status;
    if (rec != NULL) {
        st->rec = *rec;
        st->has_result = rec->result != NULL;
        st->rec.meta = NULL;
        st->rec.result = NULL;
    }
}

static inline store_status_t lb_stored(lb_relay_t *lb, const uint8_t sid[RLY_SESSION_ID_BYTES], lb_stored_t *st)
{
    uint8_t key[RLY_SESSION_ID_BYTES];
    memset(st, 0, sizeof(*st));
    assert_int_equal(rly_store_key(sid, key), 0);
    lb->worker.store->get(lb->worker.store, key, lb_on_stored, st);
    assert_int_equal(st->calls, 1); /* the memory store answers before the call returns */
    return st->status;
}

#endif
