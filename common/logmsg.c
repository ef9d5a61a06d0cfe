/* logmsg.c: the relay's fixed log texts, the only msg values the log emitter writes and `authrelay audit` accepts */
#include <string.h>
#include "logmsg.h"

/*
 * Every text the relay passes to rly_log_msg, and nothing else: a msg is the relay's own words, never anything taken
 * from a request, a peer or the environment. A new rly_log_msg call needs its text here (tests/unit/common/test_logmsg.c
 * reads the sources and says which is missing); until then the emitter writes RLY_LOGMSG_WITHHELD in its place.
 */
static const char *const texts[] = {
    RLY_LOGMSG_WITHHELD,
    /* relay/serve.c: start, reload, shutdown, stop */
    "listening",
    "listening (development mode)",
    "reload failed: kept the previous keys or certificate (details on stderr)",
    "reloaded keys and certificate",
    "nothing to reload (ephemeral keys and certificate)",
    "draining",
    "grace period over with requests in flight",
    "stopped",
    /* relay/accept.c: http2_guard */
    "HTTP/2 reset guard not installed: libh2o layout differs",
    /* relay/store_redis.c: store_up */
    "Redis reconnected",
    "Redis subscriber reconnected",
    /* relay/redis_conn.c: the why of a connection's failure, logged as store_down by relay/store_redis.c */
    "a Redis command timed out",
    "a Redis subscription timed out",
    "the Redis connection was lost",
    "cannot connect to Redis",
    "connecting to Redis timed out",
    "Redis refused the password",
    "Redis refused the connection set-up",
    "the server Sentinel named is not a primary",
    "the Redis server is not a writable primary",
    "no Sentinel named a primary",
};

const char *const *rly_logmsg_list(size_t *n)
{
    *n = sizeof(texts) / sizeof(texts[0]);
    return texts;
}

const char *rly_logmsg_find(const char *s, size_t n)
{
    if (s == NULL || n > RLY_LOGMSG_MAX)
        return NULL;
    for (size_t i = 0; i != sizeof(texts) / sizeof(texts[0]); ++i) {
        if (strlen(texts[i]) == n && memcmp(texts[i], s, n) == 0)
            return texts[i];
    }
    return NULL;
}
