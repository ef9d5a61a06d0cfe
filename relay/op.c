/* op.c: in-flight operations that may outlive their request, guarded through the request's memory pool */
#include <stdlib.h>
#include <string.h>
#include "op.h"

struct st_relay_op_guard_t {
    relay_op_t *op;
};

static void on_guard_dispose(void *p)
{
    struct st_relay_op_guard_t *guard = p;
    relay_op_t *op = guard->op;
    if (op == NULL)
        return;
    op->req = NULL;
    op->_guard = NULL;
    if (op->on_req_gone != NULL)
        op->on_req_gone(op);
}

void *relay_op_new(h2o_req_t *req, size_t size)
{
    relay_op_t *op = calloc(1, size);
    if (op == NULL)
        return NULL;
    op->req = req;
    op->worker = relay_worker_of(req);
    op->started_at = h2o_now(req->conn->ctx->loop);
    op->_guard = h2o_mem_alloc_shared(&req->pool, sizeof(*op->_guard), on_guard_dispose);
    op->_guard->op = op;
    return op;
}

void relay_op_free(relay_op_t *op)
{
    if (op->_guard != NULL)
        op->_guard->op = NULL;
    free(op);
}

long relay_op_elapsed(const relay_op_t *op)
{
    return (long)(h2o_now(op->worker->ctx.loop) - op->started_at);
}
