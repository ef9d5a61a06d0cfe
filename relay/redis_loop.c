/* redis_loop.c: drives a hiredis async context from an h2o evloop (after newer h2o's lib/common/redis.c) */
#include <stdlib.h>
#include "redis_loop.h"

typedef struct st_redis_socket_t {
    redisAsyncContext *ac;
    h2o_socket_t *sock;
} redis_socket_t;

static void on_read(h2o_socket_t *sock, const char *err)
{
    redis_socket_t *p = sock->data;
    (void)err; /* hiredis finds the error itself when it reads */
    redisAsyncHandleRead(p->ac);
}

static void on_write(h2o_socket_t *sock, const char *err)
{
    redis_socket_t *p = sock->data;
    (void)err;
    redisAsyncHandleWrite(p->ac);
}

static void add_read(void *privdata)
{
    redis_socket_t *p = privdata;
    if (!h2o_socket_is_reading(p->sock))
        h2o_socket_read_start(p->sock, on_read);
}

static void del_read(void *privdata)
{
    redis_socket_t *p = privdata;
    if (h2o_socket_is_reading(p->sock))
        h2o_socket_read_stop(p->sock);
}

static void add_write(void *privdata)
{
    redis_socket_t *p = privdata;
    if (!h2o_socket_is_writing(p->sock))
        h2o_socket_notify_write(p->sock, on_write);
}

static void cleanup(void *privdata)
{
    redis_socket_t *p = privdata;
    /* h2o closes the descriptor: hiredis must not close it again */
    p->ac->c.fd = -1;
    h2o_socket_read_stop(p->sock);
    h2o_socket_close(p->sock);
    free(p);
}

int relay_redis_attach(redisAsyncContext *ac, h2o_loop_t *loop)
{
    redis_socket_t *p = malloc(sizeof(*p));
    if (p == NULL)
        return -1;
    p->ac = ac;
    p->sock = h2o_evloop_socket_create(loop, ac->c.fd, H2O_SOCKET_FLAG_DONT_READ);
    p->sock->data = p;
    ac->ev.data = p;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = NULL;
    ac->ev.cleanup = cleanup;
    return 0;
}
