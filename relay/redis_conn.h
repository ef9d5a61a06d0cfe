/* redis_conn.h: Redis connections on an h2o loop: endpoints, Sentinel, handshake, timeouts, reconnects, up/down state */
#ifndef RELAY_REDIS_CONN_H
#define RELAY_REDIS_CONN_H

#include <stddef.h>
#include <h2o.h>
#include <hiredis/hiredis.h>

/*
 * Two objects, as in newer h2o's lib/common/redis.c (the connection only; callers build their commands on it):
 * - relay_redis_target_t: where Redis is and how to log in (a URL, a unix socket, or Sentinels and a master name), the
 *   timeouts, and the blocking readiness probe. Shared by every thread: read-only once made, except its counters and
 *   the probe's connection, which are thread-safe.
 * - relay_redis_conn_t: one connection on one loop, kept up: it connects (asking the Sentinels first when there are
 *   some), logs in (AUTH, SELECT; ROLE with Sentinel), answers what is in flight when it fails, and reconnects with a
 *   capped, jittered backoff. Commands and subscriptions are the caller's; this file knows nothing of what they mean.
 */

/* every string is borrowed for the call only */
typedef struct st_relay_redis_target_options_t {
    const char *url;             /* redis://[[user]:password@]host:port[/db] or unix:///path; NULL with sentinels */
    const char *sentinels;       /* "host:port,host:port"; NULL without */
    const char *master;          /* the Sentinel master name */
    const char *password;        /* overrides the URL's; NULL: the URL's or none */
    unsigned command_timeout_ms; /* a reply not there by then fails the connection (hiredis 0.14 has no timeouts); 0: 1000 */
    unsigned connect_timeout_ms; /* resolving, connecting and the handshake; 0: 1000 */
    const char *username;        /* an ACL user (AUTH user password); overrides the URL's; NULL: the URL's or none */
} relay_redis_target_options_t;

typedef struct st_relay_redis_target_t relay_redis_target_t;

/* NULL with a message in err (never the password). The caller frees the target with relay_redis_target_free */
relay_redis_target_t *relay_redis_target_new(const relay_redis_target_options_t *opts, char *err, size_t errlen);
/* once every connection opened on it is closed */
void relay_redis_target_free(relay_redis_target_t *target);
/*
 * 1 if Redis answers a PING now on the probe's own blocking connection (to the primary a Sentinel names, when there
 * are Sentinels), each step bounded by 250 ms, and every connection opened on the target is up; else 0. Any thread
 * (/readyz); calls are serialised.
 */
int relay_redis_target_ready(relay_redis_target_t *target);

typedef struct st_relay_redis_conn_t relay_redis_conn_t;

/*
 * What a connection tells its user, on the connection's loop; never from inside relay_redis_conn_open or _close. The
 * callbacks may send (relay_redis_command_formatted, relay_redis_subscribe), not close the connection.
 * on_up:      DOWN -> UP: the handshake is done; commands (or subscriptions) can go. again: it had been up before (a
 *             reconnection).
 * on_down:    UP -> DOWN: the connection failed and a reconnect is scheduled; why is a fixed text (no secret). Commands
 *             in flight are answered with NULL replies: right after this returns, or just before it when Redis closed
 *             the connection. A connection attempt that fails before it was up says nothing: it is retried.
 * on_message: subscriber connections: a pub/sub reply ("message", "subscribe", "unsubscribe") for any channel but the
 *             hello channel; channel borrowed for the call. NULL for a command connection.
 */
typedef struct st_relay_redis_callbacks_t {
    void (*on_up)(void *ctx, int again);
    void (*on_down)(void *ctx, const char *why);
    void (*on_message)(void *ctx, const char *kind, const char *channel, size_t len);
} relay_redis_callbacks_t;

/*
 * A connection to target on loop, connecting now (it is down until on_up). hello_channel NULL: a command connection,
 * whose handshake ends with a PING (after SELECT). Otherwise a subscriber connection: its handshake ends with SUBSCRIBE
 * hello_channel (nothing is expected on it: its confirmation means up), and it takes only relay_redis_subscribe.
 * cb and hello_channel are borrowed for the connection's life. NULL when out of memory.
 */
relay_redis_conn_t *relay_redis_conn_open(relay_redis_target_t *target, h2o_loop_t *loop, const char *hello_channel,
                                          const relay_redis_callbacks_t *cb, void *ctx);
/* answers everything in flight (NULL replies, before it returns), takes the connection's timers off the loop and frees
 * it; no callback of cb runs */
void relay_redis_conn_close(relay_redis_conn_t *conn);
/* 1 if the handshake is done and the connection has not failed since; 0 for NULL */
int relay_redis_conn_is_up(const relay_redis_conn_t *conn);

/*
 * A reply the connection waits for, due within the command timeout; if it is late the connection is stuck (replies
 * come in order): it is failed and reconnected. Embedded in the caller's struct (zeroed: not armed); fields private.
 */
typedef struct st_relay_redis_deadline_t {
    h2o_timeout_entry_t _entry;
    relay_redis_conn_t *_conn;
} relay_redis_deadline_t;

/* disarms (a no-op when not armed) */
void relay_redis_deadline_clear(relay_redis_deadline_t *deadline);

typedef struct st_relay_redis_command_t relay_redis_command_t;
/* reply is borrowed for the call (NULL: the connection was down, failed or timed out, or is closing) */
typedef void (*relay_redis_reply_cb)(relay_redis_command_t *cmd, redisReply *reply);

/* a command in flight: embedded in the caller's per-command struct (no allocation here); cb is the caller's */
struct st_relay_redis_command_t {
    relay_redis_reply_cb cb;
    relay_redis_deadline_t _deadline;
};

/*
 * Sends a command, already in RESP (one array of bulk strings, resp[0..len)), on a command connection: cmd->cb runs
 * exactly once, with the reply or NULL, on the loop (at once, before this returns, when the connection is not up).
 * resp is borrowed for the call: hiredis copies it into its output buffer and formats nothing itself. cmd must live
 * until its callback; the callback may send cmd again (a retry). A READONLY or MASTERDOWN error (a demoted primary)
 * fails the connection, which then looks for the primary again; the callback still sees the error reply.
 */
void relay_redis_command_formatted(relay_redis_conn_t *conn, relay_redis_command_t *cmd, const char *resp, size_t len);

/*
 * Sends verb ("SUBSCRIBE" or "UNSUBSCRIBE") for channel on a subscriber connection and arms deadline (re-armed if it
 * was); the confirmation comes through on_message, where the caller clears the deadline. 0, or -1 with no connection
 * to send on (deadline untouched).
 */
int relay_redis_subscribe(relay_redis_conn_t *conn, const char *verb, const char *channel, size_t len,
                          relay_redis_deadline_t *deadline);

#endif
