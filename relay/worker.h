/* worker.h: the running relay's process-wide state and its per-thread workers: what routes reach from their request */
#ifndef RELAY_WORKER_H
#define RELAY_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <h2o.h>
#include "addr.h"
#include "config.h"
#include "keys.h"
#include "store.h"

struct st_relay_waiters_t;
struct st_relay_ratelimit_t;

/* process-wide: filled before the workers start, read-only after that except the atomics */
typedef struct st_relay_t {
    relay_config_t *config;
    _Atomic(const rly_keyring_t *) keys; /* the current key ring; replaced whole on SIGHUP, old ones kept */
    SSL_CTX *ssl_ctx;                    /* NULL with --plain; the main thread's reference (workers hold their own) */
    store_backend_t *store;
    struct st_relay_ratelimit_t *ratelimit; /* NULL when off; used by the connection layer (accept.c) */
    rly_cidr_t *trusted;                    /* --trusted-proxy, parsed */
    size_t ntrusted;
    h2o_globalconf_t globalconf;
    char *redirect_uri; /* <public-url>/qorus-oauth2-redirect; set by relay_discovery_init */
    char *discovery_json;
    size_t discovery_json_len;
    struct st_relay_worker_t *workers;
    size_t nworkers;
    unsigned long max_connections; /* --max-connections, or its default; each worker takes its share */
    atomic_int shutting_down;
} relay_t;

/* one per thread: its own loop, h2o context, listener and store handle; nothing here is touched by other threads but
 * through the receivers and the atomics */
typedef struct st_relay_worker_t {
    relay_t *relay;
    size_t index;
    pthread_t tid;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
    unsigned connections, max_connections; /* open on the public listener, and the cap (accept.c) */
    int accept_paused;                     /* listener not read: at the cap, or out of descriptors */
    h2o_timeout_t accept_retry_timeout;
    h2o_timeout_entry_t accept_retry;
    store_t *store;
    struct st_relay_waiters_t *waiters;
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t control; /* shutdown and stop messages */
    h2o_timeout_t *wait_timeouts;       /* [0..wait_max] seconds, initialized on first use */
    uint8_t *wait_timeouts_ready;
    atomic_long inflight; /* requests between the handler and the end of their response */
    atomic_int stop;
} relay_worker_t;

/* the worker owning the request's h2o context (every public-listener context is a worker's) */
static inline relay_worker_t *relay_worker_of(h2o_req_t *req)
{
    return H2O_STRUCT_FROM_MEMBER(relay_worker_t, ctx, req->conn->ctx);
}

/* the current key ring: keys[0] signs and encrypts, every key verifies and decrypts; valid for the whole request (rings
 * replaced on SIGHUP are kept until exit) */
static inline const rly_keyring_t *relay_keys(relay_t *r)
{
    return atomic_load_explicit(&r->keys, memory_order_acquire);
}

/* 1 once the relay drains (SIGTERM): waits end early, readiness is down */
static inline int relay_shutting_down(relay_t *r)
{
    return atomic_load_explicit(&r->shutting_down, memory_order_relaxed);
}

/* allocates the worker's tables (wait timeouts for 0..wait_max seconds); 0 / -1 */
int relay_worker_init_tables(relay_worker_t *w, unsigned wait_max);
/* the worker's timeout list for waits of this many seconds (<= wait_max) */
h2o_timeout_t *relay_worker_wait_timeout(relay_worker_t *w, unsigned seconds);
/* counts the request in w->inflight until its pool is disposed (the drain at shutdown waits for these) */
void relay_worker_track(relay_worker_t *w, h2o_req_t *req);
/* requests in flight on every worker of the relay */
long relay_inflight(relay_t *r);

/* milliseconds since the epoch (wall clock), for values shared across replicas */
int64_t relay_unix_ms(void);

#endif
