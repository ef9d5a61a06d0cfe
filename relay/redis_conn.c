/* redis_conn.c: Redis connections on an h2o loop: endpoints, Sentinel, handshake, timeouts, reconnects, up/down state */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <hiredis/async.h>
#include <openssl/crypto.h>
#include "addr.h"
#include "ids.h"
#include "redis_conn.h"
#include "redis_loop.h"

#define SENTINELS_MAX 16
#define TICK_MS 50
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000
#define READY_TIMEOUT_MS 250
#define DEFAULT_TIMEOUT_MS 1000

typedef struct st_endpoint_t {
    char *host; /* NULL with a unix socket */
    int port;
    char *path;
} endpoint_t;

struct st_relay_redis_target_t {
    endpoint_t direct; /* without Sentinel */
    endpoint_t sentinels[SENTINELS_MAX];
    size_t nsentinels;
    char *master;
    char *username; /* NULL: AUTH with the password alone */
    char *password;
    int db;
    unsigned command_timeout_ms, connect_timeout_ms;
    atomic_int conns, conns_up; /* connections open on the target; those of them up */
    pthread_mutex_t ready_mutex;
    redisContext *ready_ctx; /* the probe's blocking connection (the admin thread's) */
};

/*
 * A connection's state, with its transitions (all on the connection's loop):
 *
 *   DOWN --(open; the retry time after a failure)--> RESOLVING (with Sentinels: asking them in turn) or CONNECTING
 *   RESOLVING --(a Sentinel named the primary)--> CONNECTING
 *   CONNECTING --(the handshake's last reply: PING answered, or the hello channel's SUBSCRIBE confirmed)--> UP (on_up)
 *   RESOLVING, CONNECTING, UP --(an error, a refused handshake, the connect timeout, a late reply, a lost connection,
 *                                READONLY or MASTERDOWN)--> DOWN (on_down if it was UP), a retry scheduled with backoff
 *   any --(relay_redis_conn_close)--> CLOSED (nothing is scheduled any more; then freed)
 *
 * Outside DOWN and CLOSED, ac (RESOLVING: sentinel_ac) is the hiredis context in use, and its data points back here;
 * a context given up has its data cleared before it is freed, so its late callbacks know they are stale.
 */
typedef enum en_conn_state_t { CONN_DOWN, CONN_RESOLVING, CONN_CONNECTING, CONN_UP, CONN_CLOSED } conn_state_t;

/* what the handshake's replies are: a step (AUTH, SELECT), the Sentinel ROLE check, the last one (PING) */
enum { HANDSHAKE_STEP, HANDSHAKE_ROLE, HANDSHAKE_LAST };

struct st_relay_redis_conn_t {
    relay_redis_target_t *target;
    h2o_loop_t *loop;
    const char *hello; /* a subscriber connection's hello channel; NULL for a command connection */
    const relay_redis_callbacks_t *cb;
    void *ctx;
    conn_state_t state;
    int was_up; /* has been up at least once (on_up's again) */
    redisAsyncContext *ac;
    redisAsyncContext *sentinel_ac;
    size_t sentinel_next; /* the next Sentinel to ask */
    endpoint_t resolved;  /* the primary a Sentinel named (host malloc'ed) */
    uint64_t retry_at;
    unsigned backoff_ms;
    h2o_timeout_t command_timeout, connect_timeout, tick;
    h2o_timeout_entry_t connect_entry; /* armed from the start of a connection attempt until UP */
    h2o_timeout_entry_t tick_entry;    /* armed while DOWN: waits for retry_at */
};

static void conn_connect(relay_redis_conn_t *c);
static void conn_fail(relay_redis_conn_t *c, const char *why);
static void ask_next_sentinel(relay_redis_conn_t *c);

/* ---- the target ---- */

static void endpoint_free(endpoint_t *ep)
{
    free(ep->host);
    free(ep->path);
    ep->host = ep->path = NULL;
}

/* the strings a parser points at, as a NUL-terminated copy; NULL when out of memory */
static char *copy(const char *s, size_t len)
{
    char *p = malloc(len + 1);
    if (p != NULL) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

static void secret_free(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static int endpoint_from_hostport(endpoint_t *ep, const rly_hostport_t *hp)
{
    if ((ep->host = copy(hp->host, hp->host_len)) == NULL)
        return -1;
    ep->port = hp->port;
    return 0;
}

void relay_redis_target_free(relay_redis_target_t *t)
{
    if (t->ready_ctx != NULL)
        redisFree(t->ready_ctx);
    endpoint_free(&t->direct);
    for (size_t i = 0; i != t->nsentinels; ++i)
        endpoint_free(&t->sentinels[i]);
    secret_free(t->password);
    secret_free(t->username);
    free(t->master);
    pthread_mutex_destroy(&t->ready_mutex);
    free(t);
}

#define OUT_OF_MEMORY "out of memory"

/* the endpoints of opts into t; 0, or -1 with a message in err (the parsers' fixed texts: never the password) */
static int target_parse(relay_redis_target_t *t, const relay_redis_target_options_t *opts, char *err, size_t errlen)
{
    const char *what, *errstr;
    rly_redis_url_t url;
    if (opts->sentinels != NULL) {
        size_t len = strlen(opts->sentinels), pos = 0;
        rly_hostport_t hp;
        int r;
        what = "bad --redis-sentinel address list";
        while ((r = rly_hostport_list_next(opts->sentinels, len, &pos, &hp, &errstr)) == 1) {
            if (t->nsentinels == SENTINELS_MAX) {
                errstr = "too many addresses";
                goto Error;
            }
            if (endpoint_from_hostport(&t->sentinels[t->nsentinels], &hp) != 0) {
                what = NULL;
                errstr = OUT_OF_MEMORY;
                goto Error;
            }
            ++t->nsentinels;
        }
        if (r != 0)
            goto Error;
        what = NULL;
        errstr = "--redis-sentinel needs addresses and --redis-master";
        if (opts->master == NULL)
            goto Error;
        errstr = OUT_OF_MEMORY;
        if ((t->master = strdup(opts->master)) == NULL)
            goto Error;
        return 0;
    }
    what = "bad --redis URL";
    errstr = "none given";
    if (opts->url == NULL || rly_redis_url_parse(opts->url, strlen(opts->url), &url, &errstr) != 0)
        goto Error;
    what = NULL;
    errstr = OUT_OF_MEMORY;
    if (url.is_unix ? (t->direct.path = copy(url.path, url.path_len)) == NULL : endpoint_from_hostport(&t->direct, &url.hp) != 0)
        goto Error;
    /* an ACL user: AUTH user password */
    if (url.username != NULL && (t->username = copy(url.username, url.username_len)) == NULL)
        goto Error;
    if (t->password == NULL && url.password != NULL && (t->password = copy(url.password, url.password_len)) == NULL)
        goto Error;
    t->db = (int)url.db;
    return 0;
Error:
    if (what != NULL)
        snprintf(err, errlen, "%s: %s", what, errstr);
    else
        snprintf(err, errlen, "%s", errstr);
    return -1;
}

relay_redis_target_t *relay_redis_target_new(const relay_redis_target_options_t *opts, char *err, size_t errlen)
{
    relay_redis_target_t *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        snprintf(err, errlen, OUT_OF_MEMORY);
        return NULL;
    }
    pthread_mutex_init(&t->ready_mutex, NULL);
    t->command_timeout_ms = opts->command_timeout_ms != 0 ? opts->command_timeout_ms : DEFAULT_TIMEOUT_MS;
    t->connect_timeout_ms = opts->connect_timeout_ms != 0 ? opts->connect_timeout_ms : DEFAULT_TIMEOUT_MS;
    if (opts->password != NULL && (t->password = strdup(opts->password)) == NULL) {
        snprintf(err, errlen, OUT_OF_MEMORY);
        goto Error;
    }
    if (target_parse(t, opts, err, errlen) != 0)
        goto Error;
    if (opts->username != NULL) {
        secret_free(t->username);
        if ((t->username = strdup(opts->username)) == NULL) {
            snprintf(err, errlen, OUT_OF_MEMORY);
            goto Error;
        }
    }
    return t;
Error:
    relay_redis_target_free(t);
    return NULL;
}

/* AUTH's arguments: 2 or 3 of them (with a user name) */
static int auth_argv(const relay_redis_target_t *t, const char *argv[3], size_t lens[3])
{
    int argc = 0;
    argv[argc] = "AUTH";
    lens[argc++] = 4;
    if (t->username != NULL) {
        argv[argc] = t->username;
        lens[argc++] = strlen(t->username);
    }
    argv[argc] = t->password;
    lens[argc++] = strlen(t->password);
    return argc;
}

/* a blocking connection for the probe, to the primary (asking the Sentinels first when there are some) */
static redisContext *ready_connect(relay_redis_target_t *t)
{
    struct timeval tv = {0, READY_TIMEOUT_MS * 1000};
    endpoint_t ep = t->direct;
    char host[256] = "";
    redisContext *c = NULL;
    if (t->nsentinels != 0) {
        ep.host = NULL;
        for (size_t i = 0; i != t->nsentinels && ep.host == NULL; ++i) {
            redisContext *s = redisConnectWithTimeout(t->sentinels[i].host, t->sentinels[i].port, tv);
            if (s != NULL && s->err == 0 && redisSetTimeout(s, tv) == REDIS_OK) {
                redisReply *r = redisCommand(s, "SENTINEL get-master-addr-by-name %s", t->master);
                unsigned long long port;
                if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
                    r->element[1]->type == REDIS_REPLY_STRING && r->element[0]->len < sizeof(host) &&
                    rly_parse_uint(r->element[1]->str, r->element[1]->len, 65535, &port) == 0 && port != 0) {
                    memcpy(host, r->element[0]->str, r->element[0]->len + 1);
                    ep.host = host;
                    ep.port = (int)port;
                }
                freeReplyObject(r);
            }
            if (s != NULL)
                redisFree(s);
        }
        if (ep.host == NULL)
            goto Error;
    }
    c = ep.path != NULL ? redisConnectUnixWithTimeout(ep.path, tv) : redisConnectWithTimeout(ep.host, ep.port, tv);
    if (c == NULL || c->err != 0 || redisSetTimeout(c, tv) != REDIS_OK)
        goto Error;
    if (t->password != NULL) {
        const char *argv[3];
        size_t lens[3];
        int argc = auth_argv(t, argv, lens);
        redisReply *r = redisCommandArgv(c, argc, argv, lens);
        int ok = r != NULL && r->type != REDIS_REPLY_ERROR;
        freeReplyObject(r);
        if (!ok)
            goto Error;
    }
    return c;
Error:
    if (c != NULL)
        redisFree(c);
    return NULL;
}

int relay_redis_target_ready(relay_redis_target_t *t)
{
    int ok = 0;
    pthread_mutex_lock(&t->ready_mutex);
    for (int attempt = 0; attempt != 2 && !ok; ++attempt) {
        if (t->ready_ctx == NULL && (t->ready_ctx = ready_connect(t)) == NULL)
            break;
        redisReply *r = redisCommand(t->ready_ctx, "PING");
        int answered = r != NULL;
        ok = answered && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
        freeReplyObject(r);
        if (!ok) {
            /* a stale connection (Redis restarted) earns one fresh try; a timeout does not (the budget is spent) */
            int timed_out = !answered && t->ready_ctx->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
            redisFree(t->ready_ctx);
            t->ready_ctx = NULL;
            if (timed_out)
                break;
        }
    }
    pthread_mutex_unlock(&t->ready_mutex);
    /* every connection must be up too: a user with a connection down answers 503 or cannot be woken */
    return ok && atomic_load(&t->conns_up) == atomic_load(&t->conns);
}

/* ---- deadlines ---- */

static void on_deadline(h2o_timeout_entry_t *entry)
{
    relay_redis_deadline_t *d = H2O_STRUCT_FROM_MEMBER(relay_redis_deadline_t, _entry, entry);
    /* replies come in order: this one is late, so the connection is stuck; failing it answers everything in flight */
    conn_fail(d->_conn, d->_conn->hello != NULL ? "a Redis subscription timed out" : "a Redis command timed out");
}

static void deadline_arm(relay_redis_conn_t *c, relay_redis_deadline_t *d)
{
    d->_conn = c;
    d->_entry.cb = on_deadline;
    h2o_timeout_link(c->loop, &c->command_timeout, &d->_entry);
}

void relay_redis_deadline_clear(relay_redis_deadline_t *d)
{
    if (h2o_timeout_is_linked(&d->_entry))
        h2o_timeout_unlink(&d->_entry);
}

/* ---- state ---- */

static const endpoint_t *endpoint_of(relay_redis_conn_t *c)
{
    return c->target->nsentinels != 0 ? &c->resolved : &c->target->direct;
}

static void set_state(relay_redis_conn_t *c, conn_state_t state)
{
    if ((c->state == CONN_UP) != (state == CONN_UP))
        atomic_fetch_add(&c->target->conns_up, state == CONN_UP ? 1 : -1);
    c->state = state;
}

static void schedule_retry(relay_redis_conn_t *c)
{
    unsigned b = c->backoff_ms;
    uint32_t r = 0;
    rly_random(&r, sizeof(r));
    /* capped exponential backoff with jitter: half the step fixed, half random */
    c->retry_at = h2o_now(c->loop) + b / 2 + (b != 0 ? r % (b / 2 + 1) : 0);
    c->backoff_ms = b * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : b * 2;
    if (!h2o_timeout_is_linked(&c->tick_entry))
        h2o_timeout_link(c->loop, &c->tick, &c->tick_entry);
}

static void on_tick(h2o_timeout_entry_t *entry)
{
    relay_redis_conn_t *c = H2O_STRUCT_FROM_MEMBER(relay_redis_conn_t, tick_entry, entry);
    if (c->state != CONN_DOWN)
        return;
    if (h2o_now(c->loop) >= c->retry_at)
        conn_connect(c);
    else
        h2o_timeout_link(c->loop, &c->tick, &c->tick_entry);
}

/* gives up the hiredis contexts in use (their callbacks run now, or after the current callback: they see DOWN) */
static void drop(relay_redis_conn_t *c, conn_state_t state)
{
    redisAsyncContext *ac = c->ac, *sac = c->sentinel_ac;
    c->ac = NULL;
    c->sentinel_ac = NULL;
    if (h2o_timeout_is_linked(&c->connect_entry))
        h2o_timeout_unlink(&c->connect_entry);
    set_state(c, state);
    if (c->target->nsentinels != 0) {
        free(c->resolved.host);
        c->resolved.host = NULL;
    }
    /* hiredis answers what is in flight while freeing (at once, or after the callback we may be in) */
    if (ac != NULL) {
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    if (sac != NULL) {
        sac->data = NULL;
        redisAsyncFree(sac);
    }
}

/* drops the connection and schedules a reconnect; on_down first (it was up), then what is in flight is answered with
 * NULL replies */
static void conn_fail(relay_redis_conn_t *c, const char *why)
{
    if (c->state == CONN_DOWN || c->state == CONN_CLOSED)
        return;
    int was_up = c->state == CONN_UP;
    set_state(c, CONN_DOWN); /* nothing can be sent from on_down */
    schedule_retry(c);
    if (was_up)
        c->cb->on_down(c->ctx, why);
    drop(c, CONN_DOWN);
}

static void became_up(relay_redis_conn_t *c)
{
    if (h2o_timeout_is_linked(&c->connect_entry))
        h2o_timeout_unlink(&c->connect_entry);
    set_state(c, CONN_UP);
    c->backoff_ms = BACKOFF_MIN_MS;
    int again = c->was_up;
    c->was_up = 1;
    c->cb->on_up(c->ctx, again);
}

int relay_redis_conn_is_up(const relay_redis_conn_t *conn)
{
    return conn != NULL && conn->state == CONN_UP;
}

/* ---- hiredis callbacks ---- */

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    relay_redis_conn_t *c = ac->data;
    (void)status;
    if (c == NULL)
        return;
    /* hiredis frees ac after this returns */
    if (c->ac == ac)
        c->ac = NULL;
    if (c->sentinel_ac == ac)
        c->sentinel_ac = NULL;
    conn_fail(c, "the Redis connection was lost");
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    relay_redis_conn_t *c = ac->data;
    if (c == NULL || status == REDIS_OK)
        return;
    /* hiredis frees ac after this returns */
    if (c->ac == ac)
        c->ac = NULL;
    if (c->sentinel_ac == ac)
        c->sentinel_ac = NULL;
    conn_fail(c, "cannot connect to Redis");
}

static void on_connect_timeout(h2o_timeout_entry_t *entry)
{
    relay_redis_conn_t *c = H2O_STRUCT_FROM_MEMBER(relay_redis_conn_t, connect_entry, entry);
    conn_fail(c, "connecting to Redis timed out");
}

static void on_handshake(redisAsyncContext *ac, void *_reply, void *privdata)
{
    redisReply *reply = _reply;
    relay_redis_conn_t *c = ac->data;
    intptr_t what = (intptr_t)privdata;
    if (c == NULL || reply == NULL)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        conn_fail(c, strncasecmp(reply->str, "NOAUTH", 6) == 0 || strncasecmp(reply->str, "WRONGPASS", 9) == 0 ||
                             strncasecmp(reply->str, "ERR invalid password", 20) == 0
                         ? "Redis refused the password"
                         : "Redis refused the connection set-up");
        return;
    }
    if (what == HANDSHAKE_ROLE) {
        /* ROLE with Sentinel: a primary answers ["master", ...] */
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0 || reply->element[0]->type != REDIS_REPLY_STRING ||
            strcmp(reply->element[0]->str, "master") != 0)
            conn_fail(c, "the server Sentinel named is not a primary");
        return;
    }
    if (what == HANDSHAKE_LAST)
        became_up(c);
}

/* every pub/sub reply of a subscriber connection: SUBSCRIBE and UNSUBSCRIBE confirmations, messages */
static void on_pubsub(redisAsyncContext *ac, void *_reply, void *privdata)
{
    redisReply *reply = _reply;
    relay_redis_conn_t *c = ac->data;
    (void)privdata;
    if (c == NULL || reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING || reply->element[1]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = reply->element[0]->str, *channel = reply->element[1]->str;
    size_t len = reply->element[1]->len;
    if (len == strlen(c->hello) && memcmp(channel, c->hello, len) == 0) {
        if (strcmp(kind, "subscribe") == 0 && c->state == CONN_CONNECTING)
            became_up(c);
        return;
    }
    c->cb->on_message(c->ctx, kind, channel, len);
}

static void on_command_reply(redisAsyncContext *ac, void *_reply, void *privdata)
{
    relay_redis_command_t *cmd = privdata;
    redisReply *reply = _reply;
    (void)ac;
    relay_redis_deadline_clear(&cmd->_deadline);
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR &&
        (strncmp(reply->str, "READONLY", 8) == 0 || strncmp(reply->str, "MASTERDOWN", 10) == 0)) {
        /* a demoted primary: find the new one */
        conn_fail(cmd->_deadline._conn, "the Redis server is not a writable primary");
    }
    cmd->cb(cmd, reply);
}

/* ---- connecting ---- */

static redisAsyncContext *open_async(relay_redis_conn_t *c, const endpoint_t *ep, redisConnectCallback *on_conn,
                                     redisDisconnectCallback *on_disconn)
{
    redisAsyncContext *ac = ep->path != NULL ? redisAsyncConnectUnix(ep->path) : redisAsyncConnect(ep->host, ep->port);
    if (ac == NULL)
        return NULL;
    if (ac->err != 0 || relay_redis_attach(ac, c->loop) != 0) {
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = c;
    redisAsyncSetConnectCallback(ac, on_conn);
    redisAsyncSetDisconnectCallback(ac, on_disconn);
    return ac;
}

/* connects to the primary (known, or just named by a Sentinel) and queues the handshake */
static void connect_primary(relay_redis_conn_t *c)
{
    relay_redis_target_t *t = c->target;
    set_state(c, CONN_CONNECTING);
    if ((c->ac = open_async(c, endpoint_of(c), on_connect, on_disconnect)) == NULL) {
        conn_fail(c, "cannot connect to Redis");
        return;
    }
    if (t->password != NULL) {
        const char *argv[3];
        size_t lens[3];
        int argc = auth_argv(t, argv, lens);
        redisAsyncCommandArgv(c->ac, on_handshake, (void *)(intptr_t)HANDSHAKE_STEP, argc, argv, lens);
    }
    if (t->nsentinels != 0)
        redisAsyncCommand(c->ac, on_handshake, (void *)(intptr_t)HANDSHAKE_ROLE, "ROLE");
    if (c->hello != NULL) {
        const char *argv[] = {"SUBSCRIBE", c->hello};
        size_t lens[] = {9, strlen(c->hello)};
        redisAsyncCommandArgv(c->ac, on_pubsub, NULL, 2, argv, lens);
    } else {
        if (t->db != 0)
            redisAsyncCommand(c->ac, on_handshake, (void *)(intptr_t)HANDSHAKE_STEP, "SELECT %d", t->db);
        redisAsyncCommand(c->ac, on_handshake, (void *)(intptr_t)HANDSHAKE_LAST, "PING");
    }
}

static void on_sentinel_reply(redisAsyncContext *ac, void *_reply, void *privdata)
{
    redisReply *reply = _reply;
    relay_redis_conn_t *c = ac->data;
    unsigned long long port;
    (void)privdata;
    if (c == NULL || reply == NULL)
        return;
    int named = reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 && reply->element[0]->type == REDIS_REPLY_STRING &&
                reply->element[1]->type == REDIS_REPLY_STRING &&
                rly_parse_uint(reply->element[1]->str, reply->element[1]->len, 65535, &port) == 0 && port != 0;
    if (named) {
        free(c->resolved.host);
        c->resolved.host = strdup(reply->element[0]->str);
        c->resolved.port = (int)port;
        c->resolved.path = NULL;
    }
    /* done with this Sentinel either way (hiredis disconnects once this callback returns) */
    ac->data = NULL;
    c->sentinel_ac = NULL;
    redisAsyncDisconnect(ac);
    if (named && c->resolved.host != NULL)
        connect_primary(c);
    else
        ask_next_sentinel(c);
}

static void on_sentinel_connect(const redisAsyncContext *ac, int status)
{
    relay_redis_conn_t *c = ac->data;
    if (c == NULL || status == REDIS_OK)
        return;
    c->sentinel_ac = NULL; /* hiredis frees it */
    ask_next_sentinel(c);
}

static void on_sentinel_disconnect(const redisAsyncContext *ac, int status)
{
    relay_redis_conn_t *c = ac->data;
    (void)status;
    if (c == NULL)
        return;
    c->sentinel_ac = NULL;
    ask_next_sentinel(c);
}

/* asks the Sentinels in turn for the primary's address; after a full round without an answer, backs off */
static void ask_next_sentinel(relay_redis_conn_t *c)
{
    relay_redis_target_t *t = c->target;
    while (c->sentinel_next < t->nsentinels) {
        redisAsyncContext *ac = open_async(c, &t->sentinels[c->sentinel_next++], on_sentinel_connect, on_sentinel_disconnect);
        if (ac == NULL)
            continue;
        c->sentinel_ac = ac;
        redisAsyncCommand(ac, on_sentinel_reply, NULL, "SENTINEL get-master-addr-by-name %s", t->master);
        return;
    }
    conn_fail(c, "no Sentinel named a primary");
}

static void conn_connect(relay_redis_conn_t *c)
{
    h2o_timeout_link(c->loop, &c->connect_timeout, &c->connect_entry);
    if (c->target->nsentinels != 0) {
        set_state(c, CONN_RESOLVING);
        c->sentinel_next = 0;
        ask_next_sentinel(c);
    } else {
        connect_primary(c);
    }
}

/* ---- the connection ---- */

relay_redis_conn_t *relay_redis_conn_open(relay_redis_target_t *target, h2o_loop_t *loop, const char *hello_channel,
                                          const relay_redis_callbacks_t *cb, void *ctx)
{
    relay_redis_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->target = target;
    c->loop = loop;
    c->hello = hello_channel;
    c->cb = cb;
    c->ctx = ctx;
    c->state = CONN_DOWN;
    c->backoff_ms = BACKOFF_MIN_MS;
    h2o_timeout_init(loop, &c->command_timeout, target->command_timeout_ms);
    h2o_timeout_init(loop, &c->connect_timeout, target->connect_timeout_ms);
    h2o_timeout_init(loop, &c->tick, TICK_MS);
    c->connect_entry.cb = on_connect_timeout;
    c->tick_entry.cb = on_tick;
    atomic_fetch_add(&target->conns, 1);
    /* connect now; while Redis is away the user answers 503, and the connection keeps trying */
    conn_connect(c);
    return c;
}

void relay_redis_conn_close(relay_redis_conn_t *c)
{
    drop(c, CONN_CLOSED);
    if (h2o_timeout_is_linked(&c->tick_entry))
        h2o_timeout_unlink(&c->tick_entry);
    /* the user's deadlines still armed (subscriptions waiting for their confirmation): the loop outlives us */
    while (!h2o_linklist_is_empty(&c->command_timeout._entries))
        h2o_timeout_unlink(H2O_STRUCT_FROM_MEMBER(h2o_timeout_entry_t, _link, c->command_timeout._entries.next));
    free(c->resolved.host);
    atomic_fetch_sub(&c->target->conns, 1);
    h2o_timeout_dispose(c->loop, &c->command_timeout);
    h2o_timeout_dispose(c->loop, &c->connect_timeout);
    h2o_timeout_dispose(c->loop, &c->tick);
    free(c);
}

/* ---- commands and subscriptions ---- */

void relay_redis_command_formatted(relay_redis_conn_t *conn, relay_redis_command_t *cmd, const char *resp, size_t len)
{
    if (conn->state != CONN_UP || redisAsyncFormattedCommand(conn->ac, on_command_reply, cmd, resp, len) != REDIS_OK) {
        cmd->cb(cmd, NULL);
        return;
    }
    deadline_arm(conn, &cmd->_deadline);
}

int relay_redis_subscribe(relay_redis_conn_t *conn, const char *verb, const char *channel, size_t len,
                          relay_redis_deadline_t *deadline)
{
    const char *argv[] = {verb, channel};
    size_t lens[] = {strlen(verb), len};
    if (conn->state != CONN_UP || redisAsyncCommandArgv(conn->ac, on_pubsub, NULL, 2, argv, lens) != REDIS_OK)
        return -1;
    relay_redis_deadline_clear(deadline);
    deadline_arm(conn, deadline);
    return 0;
}
