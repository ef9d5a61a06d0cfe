/* ratelimit.h: per-client-address token buckets for session creation and callbacks, per replica, in memory */
#ifndef RELAY_RATELIMIT_H
#define RELAY_RATELIMIT_H

#include <stdint.h>
#include <sys/socket.h>

typedef struct st_relay_ratelimit_t relay_ratelimit_t;

/* per_min > 0 requests per minute per address, bursting to per_min. NULL on failure. Addresses are never kept: only a
 * keyed hash (SHA-256 under a random per-process salt) of the address (an IPv6 address by its /64) */
relay_ratelimit_t *relay_ratelimit_new(unsigned per_min);
void relay_ratelimit_free(relay_ratelimit_t *rl);
/* takes one token for the address; 1 allowed, 0 limited with *retry_after the seconds until a token is back */
int relay_ratelimit_take(relay_ratelimit_t *rl, const struct sockaddr *sa, socklen_t salen, int64_t now_ms, int *retry_after);

#endif
