/* ratelimit.h: token buckets per client, per network (IPv6 /48, IPv4 /24) and per replica, in memory */
#ifndef RELAY_RATELIMIT_H
#define RELAY_RATELIMIT_H

#include <stdint.h>
#include <sys/socket.h>

/* a network's allowance, in clients' (per_min): an IPv6 /48 or an IPv4 /24 may take 16 x per_min a minute in all */
#define RELAY_RATELIMIT_GROUP_FACTOR 16
/* the replica's allowance, in clients' (per_min): all clients together take at most 50 x per_min a minute */
#define RELAY_RATELIMIT_GLOBAL_FACTOR 50

typedef struct st_relay_ratelimit_t relay_ratelimit_t;

/*
 * per_min > 0 requests per minute per client, bursting to per_min. NULL on failure (the caller frees nothing).
 *
 * A request takes one token from each of three buckets, and only if all three have one (a denial takes none):
 *   - the client's: an IPv4 address (an IPv4-mapped IPv6 address is its IPv4 address), an IPv6 /64 (one host or one
 *     LAN: a /64 is what a single subscriber gets), or every other kind of address together: per_min a minute;
 *   - its network's: the IPv4 /24 or IPv6 /48 (a site's usual allocation) around it: RELAY_RATELIMIT_GROUP_FACTOR x
 *     per_min a minute, so that the 65,536 /64s of one /48 are not 65,536 clients. A NAT'ed office is one IPv4 address,
 *     one client, and is not touched by this; 16 busy hosts of one /24 or /48 together still get their full allowance;
 *   - the replica's: RELAY_RATELIMIT_GLOBAL_FACTOR x per_min a minute for everyone, so that a flood from many networks
 *     still caps the work (store writes, pages) a replica does. It is a circuit breaker: while it is empty every client
 *     is refused, the attacker's and the others alike; pickups and everything not rate-limited go on.
 * Each bucket holds a minute's allowance and refills continuously; a clock that goes backwards (another worker's loop
 * time) mints nothing.
 *
 * Tables: 16,384 clients (4096 sets of 4) and 4096 networks (1024 sets of 4), set by a keyed hash. A newcomer to a full
 * set takes the slot of the bucket that has refilled the most (a full one is the same as one never seen, so nothing is
 * lost) and starts at that bucket's level, never above: cycling through addresses to be evicted and come back fresh gives
 * at most what the table had already given back. So an attacker with one /64 or IPv4 address gets per_min a minute; with
 * a whole /48 or /24, 16 x per_min; with many networks, 50 x per_min for the replica, and everyone else waits with them
 * (Retry-After is then a second or so). Its floods cannot choose sets (the hash is keyed by a secret), and cannot push a
 * victim above its own limits: an evicted client starts at most where the evicting bucket was.
 *
 * Addresses are never kept: only a keyed hash (SipHash-2-4 under a random per-process key) of the client (/32, /64) and
 * of its network (/24, /48).
 */
relay_ratelimit_t *relay_ratelimit_new(unsigned per_min);
void relay_ratelimit_free(relay_ratelimit_t *rl);
/*
 * Takes one token for the client at sa (borrowed; a salen too short for its family makes it "another kind"); 1 allowed,
 * 0 limited with *retry_after the seconds until every bucket it needs has a token again. Thread-safe; about 100 ns.
 */
int relay_ratelimit_take(relay_ratelimit_t *rl, const struct sockaddr *sa, socklen_t salen, int64_t now_ms, int *retry_after);

#endif
