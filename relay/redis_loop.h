/* redis_loop.h: drives a hiredis async context from an h2o evloop */
#ifndef RELAY_REDIS_LOOP_H
#define RELAY_REDIS_LOOP_H

#include <h2o.h>
#include <hiredis/async.h>

/* attaches ac (fresh from redisAsyncConnect*) to loop; 0 / -1 (out of memory: the caller frees ac) */
int relay_redis_attach(redisAsyncContext *ac, h2o_loop_t *loop);

#endif
