/* relay.h: the running relay: process-wide state, per-thread workers, and the request helpers the routes share */
#ifndef RELAY_H
#define RELAY_H

#include <pthread.h>
#include <stdatomic.h>
#include <h2o.h>
#include "config.h"
#include "keys.h"
#include "store.h"

typedef struct st_relay_t relay_t;
typedef struct st_relay_worker_t relay_worker_t;
struct st_relay_waiters_t;
struct st_relay_ratelimit_t;

/* process-wide, read-only after start except the atomics */
struct st_relay_t {
    relay_config_t *config;
    _Atomic(const rly_keyring_t *) keys; /* the current key ring; replaced whole on SIGHUP, old ones kept */
    SSL_CTX *ssl_ctx;                    /* NULL with --plain; the main thread's reference (workers hold their own) */
    store_backend_t *store;
    struct st_relay_ratelimit_t *ratelimit; /* NULL when off */
    h2o_globalconf_t globalconf;
    char *redirect_uri; /* <public-url>/qorus-oauth2-redirect */
    char *discovery_json;
    size_t discovery_json_len;
    relay_worker_t *workers;
    size_t nworkers;
    atomic_int shutting_down;
};

/* one per thread: its own loop, h2o context, listener and store handle; nothing here is touched by other threads but
 * through the receivers */
struct st_relay_worker_t {
    relay_t *relay;
    size_t index;
    pthread_t tid;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
    store_t *store;
    struct st_relay_waiters_t *waiters;
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t control; /* shutdown and stop messages */
    h2o_timeout_t *wait_timeouts;       /* [0..wait_max] seconds, initialized on first use */
    uint8_t *wait_timeouts_ready;
    atomic_long inflight; /* requests between the handler and the end of their response */
    atomic_int stop;
};

extern relay_t relay_global;

/* the current key ring: keys[0] signs and encrypts, every key verifies and decrypts (valid for the whole request) */
const rly_keyring_t *relay_keys(void);

/* the worker owning the current thread's h2o context */
relay_worker_t *relay_worker_of(h2o_req_t *req);
/* the worker's timeout list for waits of this many seconds (<= wait_max) */
h2o_timeout_t *relay_wait_timeout(relay_worker_t *w, unsigned seconds);
/* the peer address of the request's connection (for the rate limiter only; never logged or stored) */
socklen_t relay_peer_address(h2o_req_t *req, struct sockaddr_storage *ss);
/* 1 if allowed by the rate limiter (or it is off); else sets *retry_after */
int relay_rate_allowed(h2o_req_t *req, int *retry_after);

/*
 * An in-flight operation on behalf of a request that may outlive it (an asynchronous store call, a waiting pickup).
 * relay_op_new mallocs size bytes (the route's struct starting with relay_op_t super) and links a guard into req->pool
 * whose dispose clears op->req and calls op->on_req_gone. The op is freed by relay_op_free, exactly once, by whoever
 * finishes it; after that the guard is inert.
 */
typedef struct st_relay_op_t relay_op_t;
struct st_relay_op_t {
    h2o_req_t *req; /* NULL once the request has gone */
    relay_worker_t *worker;
    uint64_t started_at; /* h2o_now at the start of the request */
    void (*on_req_gone)(relay_op_t *op);
    struct st_relay_op_guard_t *_guard;
};
void *relay_op_new(h2o_req_t *req, size_t size);
void relay_op_free(relay_op_t *op);
/* milliseconds since the request started (the "ms" of its log line) */
long relay_op_elapsed(const relay_op_t *op);

/* responses: every one carries the security headers of protocol.md and a Content-Length */
void relay_respond_json(h2o_req_t *req, int status, const char *reason, const char *json, size_t len);
/* {"error": code, "error_description": description}; retry_after > 0 adds Retry-After */
void relay_respond_error(h2o_req_t *req, int status, const char *reason, const char *code, const char *description,
                         int retry_after);
void relay_respond_html(h2o_req_t *req, int status, const char *reason, const char *html, size_t len);
void relay_respond_redirect(h2o_req_t *req, const char *location, size_t len);
/* the headers every response gets; is_html adds the Content-Security-Policy */
void relay_add_security_headers(h2o_req_t *req, int is_html);
const char *relay_status_reason(int status);
/* 1 if the request's Content-Type is the media type given (parameters such as charset allowed) */
int relay_content_type_is(h2o_req_t *req, const char *type);

/* routes (one file each) */
int relay_route_discovery(h2o_req_t *req);
int relay_route_create(h2o_req_t *req);
int relay_route_callback(h2o_req_t *req);
int relay_route_pickup(h2o_req_t *req, const char *sid_text, size_t sid_len);
int relay_route_delete(h2o_req_t *req, const char *sid_text, size_t sid_len);

/* wakes this worker's pickups waiting on a session the store reports completed */
void relay_pickup_notify(relay_worker_t *w, const uint8_t sid[RLY_SESSION_ID_BYTES]);

/* the whole server: returns the process exit status (0 after a clean shutdown, 1 on a start-up failure) */
int relay_serve(relay_config_t *cfg);
/* the public listener's request handler (the router) */
int relay_on_req(h2o_handler_t *self, h2o_req_t *req);
/* TLS: a server SSL_CTX (TLS 1.2+, ALPN h2 and http/1.1) from the configured PEM files, or for --dev without files an
 * ephemeral self-signed certificate for localhost. NULL with a message in err on failure. */
SSL_CTX *relay_tls_new(const relay_config_t *cfg, char *err, size_t errlen);
/* takes a new connection of the public listener: TLS handshake, then HTTP/2 (with the stream-reset guard) or HTTP/1.1 */
void relay_accept(relay_worker_t *w, h2o_socket_t *sock);
/* the admin listener on its own thread; 0 / -1 */
int relay_admin_start(relay_t *r, char *err, size_t errlen);
void relay_admin_stop(relay_t *r);

/* milliseconds since the epoch (wall clock), for values shared across replicas */
int64_t relay_unix_ms(void);

#endif
