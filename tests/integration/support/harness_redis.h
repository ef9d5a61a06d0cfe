/* harness_redis.h: redis-server and redis-sentinel processes, a blocking Redis client and cross-replica flows for the tests */
#ifndef RLY_HARNESS_REDIS_H
#define RLY_HARNESS_REDIS_H

#include <stddef.h>
#include <sys/types.h>
#include <hiredis/hiredis.h>
#include "harness.h"

#define RLY_SENTINEL_MASTER "m" /* the name the Sentinels monitor */

typedef struct st_rly_redis_t {
    char dir[256];       /* its --dir (dump.rdb for rly_redis_shutdown_save), log and config */
    char log_path[320];  /* its stdout and stderr */
    char conf_path[320]; /* Sentinels: the config file (Sentinel rewrites it) */
    char password[128];  /* requirepass, "" for none */
    char url[64];        /* redis://127.0.0.1:<port> */
    char addr[32];       /* 127.0.0.1:<port> */
    unsigned short port;
    unsigned short replicaof; /* a replica's primary port, else 0 */
    int sentinel;
    pid_t pid; /* 0 while not running */
} rly_redis_t;

/*
 * Prepares a redis-server (temporary dir, free loopback port; password may be NULL) without starting it: the port has
 * nothing listening until rly_redis_launch. 0 / -1.
 */
int rly_redis_prepare(rly_redis_t *r, const char *password);
/*
 * Starts (or starts again, on the same port and dir) `redis-server --port P --bind 127.0.0.1 --save '' --appendonly no
 * --dir D` (plus --requirepass, --replicaof) or `redis-sentinel CONF`, and waits until it answers PING (10 s). The
 * child dies with the test program (PR_SET_PDEATHSIG). 0 / -1 (with its log on stderr).
 */
int rly_redis_launch(rly_redis_t *r);
/* rly_redis_prepare + rly_redis_launch (a new port if the first one was taken meanwhile) */
int rly_redis_start(rly_redis_t *r, const char *password);
/* a replica of primary (--replicaof 127.0.0.1 <primary port>), started and in sync (master_link_status:up, 10 s) */
int rly_redis_start_replica(rly_redis_t *r, const rly_redis_t *primary);
/* kill -9, reaped */
void rly_redis_kill(rly_redis_t *r);
/* SIGTERM (no save: --save ''), 5 s, then SIGKILL; reaped */
void rly_redis_stop(rly_redis_t *r);
/* SHUTDOWN SAVE: the data survives into the next rly_redis_launch (dump.rdb in its dir); reaped; 0 / -1 */
int rly_redis_shutdown_save(rly_redis_t *r);
/* stops it if running and forgets it (its dir goes with the process temporary dir) */
void rly_redis_cleanup(rly_redis_t *r);

/* a blocking hiredis connection (AUTH done when it has a password; timeout_ms for connect and every command), or NULL;
 * the caller frees it with redisFree */
redisContext *rly_redis_connect(const rly_redis_t *r, long timeout_ms);
/* one command on a fresh connection (2 s timeout); the reply is arena-owned; NULL if there was no reply */
redisReply *rly_redis_command(const rly_redis_t *r, const char *fmt, ...);
/* the Redis key of a session (its id as the API shows it): "authrelay:{" base64url(rly_store_key(id)) "}", arena-owned;
 * NULL if session is not a session id */
const char *rly_redis_key_of(const char *session);
/* every key (SCAN ... MATCH pattern), arena-owned; *n receives the count; NULL on failure */
char **rly_redis_scan(const rly_redis_t *r, const char *pattern, size_t *n);

/*
 * Starts argv (argv[0] looked up in PATH) in the background with stdout and stderr appended to log, e.g. `redis-cli -p P
 * monitor`; the child dies with the test program. Its pid, or -1. End it with rly_bg_stop.
 */
pid_t rly_bg_start(char *const argv[], const char *log);
/* SIGTERM, 5 s, SIGKILL; reaped */
void rly_bg_stop(pid_t pid);

/* ---- Sentinel ---- */

typedef struct st_rly_sentinels_t {
    rly_redis_t primary, replica, sentinel[3];
    char addrs[128]; /* "127.0.0.1:S1,127.0.0.1:S2,127.0.0.1:S3": the value of --redis-sentinel */
} rly_sentinels_t;

/*
 * A primary, one replica in sync and 3 Sentinels (`sentinel monitor m 127.0.0.1 P 2`, down-after-milliseconds 1000,
 * failover-timeout 5000) that each know the replica and the two other Sentinels (20 s). 0 / -1.
 */
int rly_sentinels_start(rly_sentinels_t *s);
/* the primary port Sentinel i names for RLY_SENTINEL_MASTER, or 0 */
unsigned short rly_sentinels_primary(const rly_sentinels_t *s, size_t i);
/* seconds until every running Sentinel names port as the primary, or -1 after timeout_ms */
double rly_sentinels_wait_primary(const rly_sentinels_t *s, unsigned short port, long timeout_ms);
void rly_sentinels_cleanup(rly_sentinels_t *s);

/* ---- relays on Redis ---- */

/* status of GET <admin_url><path> (1 s timeout), 0 when nothing answered */
long rly_admin_status(const rly_relay_t *r, const char *path);
/* seconds until GET <admin_url><path> answers status, or -1 after timeout_ms */
double rly_wait_admin(const rly_relay_t *r, const char *path, long status, long timeout_ms);

/*
 * One whole flow across relays: a session created on c; a pickup with Prefer: wait=10 on p from the start; the callback
 * with a fresh code on b after delay_ms. Fails the test unless the callback answers 303 and the pickup 200 with exactly
 * that code and state. Returns the rendezvous latency: seconds from sending the callback (a new connection: TCP and TLS
 * handshakes included) to the pickup's response.
 */
double rly_flow(const rly_relay_t *c, const rly_relay_t *p, const rly_relay_t *b, int version, long delay_ms);

#endif
