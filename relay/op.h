/* op.h: in-flight operations on behalf of a request that may outlive it (an asynchronous store call, a waiting pickup) */
#ifndef RELAY_OP_H
#define RELAY_OP_H

#include <h2o.h>
#include "worker.h"

/*
 * relay_op_new mallocs size bytes (the route's struct, starting with relay_op_t super) and links a guard into req->pool
 * whose dispose clears op->req and calls op->on_req_gone. The op is freed by relay_op_free, exactly once, by whoever
 * finishes it; after that the guard is inert. Never hand a h2o_req_t * to an asynchronous callee: hand the op.
 */
typedef struct st_relay_op_t relay_op_t;
struct st_relay_op_t {
    h2o_req_t *req; /* NULL once the request has gone */
    relay_worker_t *worker;
    uint64_t started_at; /* h2o_now at the start of the request */
    void (*on_req_gone)(relay_op_t *op);
    struct st_relay_op_guard_t *_guard;
};

/* NULL when out of memory (the caller answers 500) */
void *relay_op_new(h2o_req_t *req, size_t size);
void relay_op_free(relay_op_t *op);
/* milliseconds since the request started (the "ms" of its log line) */
long relay_op_elapsed(const relay_op_t *op);

#endif
