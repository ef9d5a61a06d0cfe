/* admin.c: the admin listener (plain HTTP, its own thread): /healthz, /readyz, /metrics */
#include <errno.h>
#include <stdint.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "metrics.h"
#include "admin.h"
#include "listen.h"
#include "respond.h"

static struct {
    relay_t *relay; /* borrowed from relay_admin_start to relay_admin_stop */
    h2o_globalconf_t conf;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t wakeup;
    pthread_t tid;
    atomic_int stop;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int ready;
} admin = {.mutex = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void respond_text(h2o_req_t *req, int status, const char *type, const char *body, size_t len)
{
    relay_add_security_headers(req, 0);
    req->res.status = status;
    req->res.reason = relay_status_reason(status);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type, strlen(type));
    req->res.content_length = len;
    h2o_send_inline(req, body, len);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    relay_t *r = admin.relay;
    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    int is_get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"));

    if (h2o_memis(req->path.base, plen, H2O_STRLIT("/healthz"))) {
        if (!is_get)
            goto Error;
        respond_text(req, 200, "text/plain; charset=utf-8", H2O_STRLIT("ok\n"));
    } else if (h2o_memis(req->path.base, plen, H2O_STRLIT("/readyz"))) {
        if (!is_get)
            goto Error;
        if (atomic_load(&r->shutting_down))
            respond_text(req, 503, "text/plain; charset=utf-8", H2O_STRLIT("shutting down\n"));
        else if (!r->store->ready(r->store))
            respond_text(req, 503, "text/plain; charset=utf-8", H2O_STRLIT("store unavailable\n"));
        else
            respond_text(req, 200, "text/plain; charset=utf-8", H2O_STRLIT("ready\n"));
    } else if (h2o_memis(req->path.base, plen, H2O_STRLIT("/metrics"))) {
        if (!is_get)
            goto Error;
        size_t len;
        char *text = relay_metrics_render(r->store->ready(r->store), atomic_load(&r->shutting_down), &len);
        if (text == NULL) {
            respond_text(req, 500, "text/plain; charset=utf-8", H2O_STRLIT("out of memory\n"));
            return 0;
        }
        h2o_iovec_t body = h2o_strdup(&req->pool, text, len);
        free(text);
        respond_text(req, 200, "text/plain; version=0.0.4; charset=utf-8", body.base, body.len);
    } else {
        respond_text(req, 404, "text/plain; charset=utf-8", H2O_STRLIT("not found\n"));
    }
    return 0;
Error: /* the one error: a method other than GET */
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET"));
    respond_text(req, 405, "text/plain; charset=utf-8", H2O_STRLIT("method not allowed\n"));
    return 0;
}

static void on_accept(h2o_socket_t *listener, const char *error)
{
    if (error != NULL)
        return;
    h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
    if (sock != NULL)
        h2o_accept(&admin.accept_ctx, sock);
}

static void on_wakeup(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    (void)messages;
}

/* the admin thread makes its loop, context and sockets itself (libh2o's allocators are per thread) */
static void *admin_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    h2o_config_init(&admin.conf);
    admin.conf.http1.upgrade_to_http2 = 0; /* plain HTTP/1.1 only: no h2c upgrade, which would bypass the reset guard */
    admin.conf.server_name = h2o_iovec_init(H2O_STRLIT("authrelay"));
    h2o_hostconf_t *host = h2o_config_register_host(&admin.conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(pathconf, sizeof(*handler));
    handler->on_req = on_req;
    h2o_context_init(&admin.ctx, h2o_evloop_create(), &admin.conf);
    admin.accept_ctx.ctx = &admin.ctx;
    admin.accept_ctx.hosts = admin.conf.hosts;
    admin.listener = h2o_evloop_socket_create(admin.ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    admin.queue = h2o_multithread_create_queue(admin.ctx.loop);
    h2o_multithread_register_receiver(admin.queue, &admin.wakeup, on_wakeup);
    h2o_socket_read_start(admin.listener, on_accept);
    pthread_mutex_lock(&admin.mutex);
    admin.ready = 1;
    pthread_cond_broadcast(&admin.cond);
    pthread_mutex_unlock(&admin.mutex);
    while (!atomic_load(&admin.stop))
        h2o_evloop_run(admin.ctx.loop, INT32_MAX);
    return NULL;
}

int relay_admin_start(relay_t *r, char *err, size_t errlen)
{
    const relay_addr_t *addr = &r->config->admin_listen;
    admin.relay = r;
    int fd = rly_listen((const struct sockaddr *)&addr->ss, addr->len, addr->text, 0, 64, err, errlen);
    if (fd == -1)
        return -1;
    if (pthread_create(&admin.tid, NULL, admin_main, (void *)(intptr_t)fd) != 0) {
        snprintf(err, errlen, "cannot start the admin thread");
        return -1;
    }
    /* the wake-up receiver must exist before relay_admin_stop can use it */
    pthread_mutex_lock(&admin.mutex);
    while (!admin.ready)
        pthread_cond_wait(&admin.cond, &admin.mutex);
    pthread_mutex_unlock(&admin.mutex);
    return 0;
}

void relay_admin_stop(void)
{
    atomic_store(&admin.stop, 1);
    h2o_multithread_send_message(&admin.wakeup, NULL);
    pthread_join(admin.tid, NULL);
}
