/* worker.c: per-worker helpers: wait timeouts, the in-flight count, the wall clock */
#include <stdlib.h>
#include <time.h>
#include "worker.h"

int relay_worker_init_tables(relay_worker_t *w, unsigned wait_max)
{
    w->wait_timeouts = calloc((size_t)wait_max + 1, sizeof(*w->wait_timeouts));
    w->wait_timeouts_ready = calloc((size_t)wait_max + 1, 1);
    return w->wait_timeouts != NULL && w->wait_timeouts_ready != NULL ? 0 : -1;
}

h2o_timeout_t *relay_worker_wait_timeout(relay_worker_t *w, unsigned seconds)
{
    if (!w->wait_timeouts_ready[seconds]) {
        h2o_timeout_init(w->ctx.loop, &w->wait_timeouts[seconds], (uint64_t)seconds * 1000);
        w->wait_timeouts_ready[seconds] = 1;
    }
    return &w->wait_timeouts[seconds];
}

static void on_inflight_dispose(void *p)
{
    relay_worker_t *w = *(relay_worker_t **)p;
    atomic_fetch_sub(&w->inflight, 1);
}

void relay_worker_track(relay_worker_t *w, h2o_req_t *req)
{
    relay_worker_t **guard = h2o_mem_alloc_shared(&req->pool, sizeof(*guard), on_inflight_dispose);
    *guard = w;
    atomic_fetch_add(&w->inflight, 1);
}

long relay_inflight(relay_t *r)
{
    long n = 0;
    for (size_t i = 0; i != r->nworkers; ++i)
        n += atomic_load(&r->workers[i].inflight);
    return n;
}

int64_t relay_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
