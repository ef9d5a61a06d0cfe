/* serve.c: the server's life: keys, store, TLS, worker threads with SO_REUSEPORT listeners, signals, graceful shutdown */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include "accept.h"
#include "admin.h"
#include "listen.h"
#include "log.h"
#include "ratelimit.h"
#include "router.h"
#include "routes.h"
#include "serve.h"
#include "tls.h"
#include "waiters.h"
#include "worker.h"

/* the one relay of the process: its workers reach it through their relay pointer, nothing else names it */
static relay_t relay;

/* what the main thread asks of a worker */
typedef struct st_control_t {
    h2o_multithread_message_t super;
    enum { CONTROL_SHUTDOWN, CONTROL_SET_TLS } type;
    SSL_CTX *ssl_ctx; /* CONTROL_SET_TLS: a reference the worker takes over */
} control_t;

static void on_control(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    relay_worker_t *w = H2O_STRUCT_FROM_MEMBER(relay_worker_t, control, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        control_t *m = H2O_STRUCT_FROM_MEMBER(control_t, super.link, messages->next);
        h2o_linklist_unlink(&m->super.link);
        switch (m->type) {
        case CONTROL_SHUTDOWN:
            /* stop accepting, send GOAWAY / close idle, answer the waiters now */
            relay_accept_stop(w);
            h2o_context_request_shutdown(&w->ctx);
            relay_waiters_wake_all(w->waiters);
            break;
        case CONTROL_SET_TLS: {
            /* new connections get the new certificate; established ones keep theirs (each SSL holds its context) */
            SSL_CTX *old = w->accept_ctx.ssl_ctx;
            w->accept_ctx.ssl_ctx = m->ssl_ctx;
            SSL_CTX_free(old);
        } break;
        }
        free(m);
    }
}

static int send_control(relay_worker_t *w, int type, SSL_CTX *ssl_ctx)
{
    control_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return -1;
    m->type = type;
    m->ssl_ctx = ssl_ctx;
    h2o_multithread_send_message(&w->control, &m->super);
    return 0;
}

/* every key ring ever loaded: requests in flight may still read an older one, so none is freed before exit */
static struct {
    rly_keyring_t **rings;
    size_t count;
} keyrings;

static const rly_keyring_t *keep_keyring(rly_keyring_t *kr)
{
    rly_keyring_t **rings = realloc(keyrings.rings, (keyrings.count + 1) * sizeof(*rings));
    if (rings == NULL)
        return NULL;
    keyrings.rings = rings;
    keyrings.rings[keyrings.count++] = kr;
    return kr;
}

/* SIGHUP: reloads the key file and the TLS certificate and key; what fails to load is kept as it was */
static void reload(relay_t *r)
{
    const relay_config_t *cfg = r->config;
    char err[512];
    int failed = 0, reloaded = 0;

    if (cfg->keys != NULL) {
        rly_keyring_t *kr = malloc(sizeof(*kr));
        if (kr == NULL || rly_keyring_load(kr, cfg->keys, err, sizeof(err)) != 0) {
            fprintf(stderr, "authrelay: reload: %s\n", kr == NULL ? "out of memory" : err);
            free(kr);
            failed = 1;
        } else if (keep_keyring(kr) == NULL) {
            free(kr);
            failed = 1;
        } else {
            atomic_store_explicit(&r->keys, kr, memory_order_release);
            reloaded = 1;
        }
    }
    if (r->ssl_ctx != NULL && cfg->tls_cert != NULL) {
        SSL_CTX *ctx = relay_tls_new(cfg, &r->keys, err, sizeof(err));
        if (ctx == NULL) {
            fprintf(stderr, "authrelay: reload: %s\n", err);
            failed = 1;
        } else {
            for (size_t i = 0; i != r->nworkers; ++i) {
                SSL_CTX_up_ref(ctx);
                if (send_control(&r->workers[i], CONTROL_SET_TLS, ctx) != 0)
                    SSL_CTX_free(ctx);
            }
            SSL_CTX_free(r->ssl_ctx);
            r->ssl_ctx = ctx;
            reloaded = 1;
        }
    }
    if (failed)
        rly_log_msg(RLY_LOG_WARN, "reload", "reload failed: kept the previous keys or certificate (details on stderr)", 0);
    else if (reloaded)
        rly_log_msg(RLY_LOG_INFO, "reload", "reloaded keys and certificate", 0);
    else
        rly_log_msg(RLY_LOG_INFO, "reload", "nothing to reload (ephemeral keys and certificate)", 0);
}

static int worker_init(relay_t *r, relay_worker_t *w, int fd)
{
    h2o_context_init(&w->ctx, h2o_evloop_create(), &r->globalconf);
    w->accept_ctx.ctx = &w->ctx;
    w->accept_ctx.hosts = r->globalconf.hosts;
    w->accept_ctx.ssl_ctx = r->ssl_ctx;
    if (r->ssl_ctx != NULL)
        SSL_CTX_up_ref(r->ssl_ctx); /* the worker's own reference, swapped on reload */
    w->listener = h2o_evloop_socket_create(w->ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    w->max_connections = (unsigned)((r->max_connections + r->nworkers - 1) / r->nworkers);
    w->queue = h2o_multithread_create_queue(w->ctx.loop);
    h2o_multithread_register_receiver(w->queue, &w->control, on_control);
    if (relay_worker_init_tables(w, r->config->wait_max) != 0 || (w->waiters = relay_waiters_new()) == NULL)
        return -1;
    /* completions reported by the store wake this worker's waiters directly */
    if ((w->store = r->store->open(r->store, w->ctx.loop, relay_waiters_notify, w->waiters)) == NULL)
        return -1;
    relay_accept_start(w);
    return 0;
}

/* start-up handshake between the main thread and the threads it starts */
static struct {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    size_t done, failed;
} startup = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

static void startup_report(int failed)
{
    pthread_mutex_lock(&startup.mutex);
    ++startup.done;
    startup.failed += failed != 0;
    pthread_cond_broadcast(&startup.cond);
    pthread_mutex_unlock(&startup.mutex);
}

/* waits until n threads reported; returns how many failed */
static size_t startup_wait(size_t n)
{
    pthread_mutex_lock(&startup.mutex);
    while (startup.done < n)
        pthread_cond_wait(&startup.cond, &startup.mutex);
    size_t failed = startup.failed;
    pthread_mutex_unlock(&startup.mutex);
    return failed;
}

typedef struct st_worker_start_t {
    relay_worker_t *w;
    int fd;
} worker_start_t;

static void *worker_main(void *arg)
{
    worker_start_t *start = arg;
    relay_worker_t *w = start->w;
    /* the loop, the context and every socket are made on the thread that runs them: libh2o keeps per-thread
     * allocators (socket buffers, memory pools) that must not be shared */
    /* socket input buffers of 4 KiB, not h2o's 8 KiB: an HTTP/1.1 request keeps its input buffer until it is answered,
     * a long-poll for its whole wait, and this relay's requests are a few hundred bytes. 4 KiB is the least h2o reads
     * into, so the buffers stay recycled (tests/bench/README.md, "Memory per idle TLS long-poll") */
    h2o_socket_buffer_prototype._initial_buf.capacity = H2O_SOCKET_INITIAL_INPUT_BUFFER_SIZE;
    int failed = worker_init(w->relay, w, start->fd);
    free(start);
    startup_report(failed);
    if (failed)
        return NULL;
    rly_log_batch(1);
    while (!atomic_load(&w->stop)) {
        h2o_evloop_run(w->ctx.loop, INT32_MAX);
        rly_log_flush();
    }
    rly_log_batch(0);
    return NULL;
}

/* the Redis password: --redis-password-file, else AUTHRELAY_REDIS_PASSWORD, else the URL's; malloc'ed or NULL */
static char *redis_password(const relay_config_t *cfg, char *err, size_t errlen, int *failed)
{
    *failed = 0;
    if (cfg->redis_password_file != NULL) {
        char buf[1024];
        FILE *fp = fopen(cfg->redis_password_file, "r");
        size_t n = fp != NULL ? fread(buf, 1, sizeof(buf) - 1, fp) : 0;
        if (fp == NULL || ferror(fp) || n == 0) {
            snprintf(err, errlen, "cannot read --redis-password-file");
            if (fp != NULL)
                fclose(fp);
            *failed = 1;
            return NULL;
        }
        fclose(fp);
        while (n != 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
            --n;
        char *pw = strndup(buf, n);
        OPENSSL_cleanse(buf, sizeof(buf));
        return pw;
    }
    const char *env = getenv("AUTHRELAY_REDIS_PASSWORD");
    return env != NULL && *env != '\0' ? strdup(env) : NULL;
}

static store_backend_t *open_redis(const relay_config_t *cfg, char *err, size_t errlen)
{
    int failed;
    char *password = redis_password(cfg, err, errlen, &failed);
    if (failed)
        return NULL;
    store_redis_options_t opts = {cfg->redis, cfg->redis_sentinel, cfg->redis_master, password, 1000, 1000, cfg->redis_username};
    store_backend_t *b = store_redis_new(&opts, err, errlen);
    if (password != NULL) {
        OPENSSL_cleanse(password, strlen(password));
        free(password);
    }
    return b;
}

/* the descriptor limit, raised to the hard limit first (as servers do: the soft limit is often a low default) */
static unsigned long nofile_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 1048576 ? 1048576 : rl.rlim_max;
        if (want > rl.rlim_cur) {
            struct rlimit raised = {want, rl.rlim_max};
            if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
                rl.rlim_cur = want;
        }
    }
    return rl.rlim_cur == RLIM_INFINITY ? 1048576 : (unsigned long)rl.rlim_cur;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int relay_serve(relay_config_t *cfg)
{
    relay_t *r = &relay;
    char err[512];
    int *fds = NULL, status = 1;
    sigset_t sigs;

    memset(r, 0, sizeof(*r));
    r->config = cfg;
    rly_log_init(cfg->log_level, STDOUT_FILENO);
    signal(SIGPIPE, SIG_IGN);

    /* everything that can fail is done before the first port is bound */
    rly_keyring_t *kr = calloc(1, sizeof(*kr));
    if (kr == NULL || keep_keyring(kr) == NULL) {
        free(kr);
        goto Exit;
    }
    if (cfg->keys != NULL) {
        if (rly_keyring_load(kr, cfg->keys, err, sizeof(err)) != 0) {
            fprintf(stderr, "authrelay: %s\n", err);
            goto Exit;
        }
    } else if (rly_keyring_ephemeral(kr) != 0) {
        fprintf(stderr, "authrelay: cannot make ephemeral keys\n");
        goto Exit;
    }
    atomic_store(&r->keys, kr);
    if (cfg->redis != NULL || cfg->redis_sentinel != NULL) {
        if ((r->store = open_redis(cfg, err, sizeof(err))) == NULL) {
            fprintf(stderr, "authrelay: %s\n", err);
            goto Exit;
        }
    } else if ((r->store = store_memory_new()) == NULL) {
        goto Exit;
    }
    if (!cfg->plain && (r->ssl_ctx = relay_tls_new(cfg, &r->keys, err, sizeof(err))) == NULL) {
        fprintf(stderr, "authrelay: %s\n", err);
        goto Exit;
    }
    if (cfg->rate_limit != 0 && (r->ratelimit = relay_ratelimit_new(cfg->rate_limit)) == NULL)
        goto Exit;
    if (cfg->trusted_proxy_count != 0) {
        if ((r->trusted = calloc(cfg->trusted_proxy_count, sizeof(*r->trusted))) == NULL)
            goto Exit;
        for (const char *why; r->ntrusted != cfg->trusted_proxy_count; ++r->ntrusted) {
            const char *s = cfg->trusted_proxy[r->ntrusted];
            if (rly_cidr_parse(s, strlen(s), &r->trusted[r->ntrusted], &why) != 0)
                goto Exit; /* checked by the configuration already */
        }
    }
    if (relay_discovery_init(r) != 0)
        goto Exit;

    h2o_config_init(&r->globalconf);
    r->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("authrelay"));
    /* bodies up to 1 MiB reach the routes, which answer 413 above their own limits with the proper headers */
    r->globalconf.max_request_entity_size = 1024 * 1024;
    /* no h2c upgrade on a --plain listener: HTTP/2 only over TLS */
    r->globalconf.http1.upgrade_to_http2 = 0;
    /* requests running at once on one HTTP/2 connection, and so its long-polls; more wait in h2o's queue, itself bounded
     * by the 100 streams h2o lets a connection open */
    r->globalconf.http2.max_concurrent_requests_per_connection = RELAY_H2_CONCURRENT_REQUESTS;
    h2o_hostconf_t *host = h2o_config_register_host(&r->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(pathconf, sizeof(*handler));
    handler->on_req = relay_on_req;

    /* signals are taken by the main thread only */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    r->nworkers = cfg->threads;
    r->max_connections = cfg->max_connections != 0 ? cfg->max_connections : relay_accept_default_max(nofile_limit(), r->nworkers);
    r->workers = calloc(r->nworkers, sizeof(*r->workers));
    fds = malloc(r->nworkers * sizeof(*fds));
    if (r->workers == NULL || fds == NULL)
        goto Exit;
    for (size_t i = 0; i != r->nworkers; ++i) {
        if ((fds[i] = rly_listen((const struct sockaddr *)&cfg->listen.ss, cfg->listen.len, cfg->listen.text,
                                 RLY_LISTEN_REUSEPORT | RLY_LISTEN_NODELAY, 0, err, sizeof(err))) == -1) {
            fprintf(stderr, "authrelay: %s\n", err);
            goto Exit;
        }
    }
    if (relay_admin_start(r, err, sizeof(err)) != 0) {
        fprintf(stderr, "authrelay: %s\n", err);
        goto Exit;
    }
    for (size_t i = 0; i != r->nworkers; ++i) {
        relay_worker_t *w = &r->workers[i];
        worker_start_t *start = malloc(sizeof(*start));
        w->relay = r;
        w->index = i;
        if (start == NULL)
            goto Exit;
        *start = (worker_start_t){w, fds[i]};
        if (pthread_create(&w->tid, NULL, worker_main, start) != 0) {
            fprintf(stderr, "authrelay: cannot start worker %zu\n", i);
            goto Exit;
        }
    }
    if (startup_wait(r->nworkers) != 0) {
        fprintf(stderr, "authrelay: a worker thread failed to start\n");
        goto Exit;
    }
    rly_log_msg(RLY_LOG_INFO, "start", cfg->dev ? "listening (development mode)" : "listening", 1);

    for (;;) {
        int sig;
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            reload(r);
            continue;
        }
        break;
    }

    /* drain: not ready, no new connections, waiting pickups answered now, in-flight requests finished */
    rly_log_msg(RLY_LOG_INFO, "shutdown", "draining", 0);
    atomic_store(&r->shutting_down, 1);
    for (size_t i = 0; i != r->nworkers; ++i)
        send_control(&r->workers[i], CONTROL_SHUTDOWN, NULL);
    for (long waited = 0; relay_inflight(r) != 0 && waited < (long)cfg->shutdown_grace * 1000; waited += 20)
        sleep_ms(20);
    if (relay_inflight(r) != 0)
        rly_log_msg(RLY_LOG_WARN, "shutdown", "grace period over with requests in flight", 0);
    for (size_t i = 0; i != r->nworkers; ++i) {
        atomic_store(&r->workers[i].stop, 1);
        h2o_multithread_send_message(&r->workers[i].control, NULL);
        pthread_join(r->workers[i].tid, NULL);
    }
    relay_admin_stop();
    rly_log_msg(RLY_LOG_INFO, "stop", "stopped", 0);
    status = 0;
Exit:
    free(fds);
    return status;
}
