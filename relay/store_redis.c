/* store_redis.c: the Redis rendezvous store: Lua check-and-set, pub/sub wake-ups, timeouts, reconnects, Sentinel */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "b64url.h"
#include "ids.h"
#include "log.h"
#include "redis_loop.h"
#include "store.h"

#define KEY_PREFIX "authrelay:{"
#define KEY_LEN (sizeof(KEY_PREFIX) - 1 + RLY_SESSION_ID_LEN + 1)
#define CHANNEL "authrelay:done"         /* every subscriber connection's first subscription: its confirmation means "up" */
#define CHANNEL_PREFIX "authrelay:done:" /* + a session's store key (base64url): one channel a session, published once */
#define CHANNEL_LEN (sizeof(CHANNEL_PREFIX) - 1 + RLY_SESSION_ID_LEN)
#define WATCH_BUCKETS 4096
#define SENTINELS_MAX 16
#define TICK_MS 50
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000
#define READY_TIMEOUT_MS 250

/* ---- the scripts: every state change is one atomic script; the session is one hash with a TTL ---- */

enum { SCRIPT_CREATE, SCRIPT_GET, SCRIPT_COMPLETE, SCRIPT_MARK_READ, SCRIPT_DELETE, SCRIPT_COUNT };

static const char *const scripts[SCRIPT_COUNT] = {
    /* KEYS[1] session; ARGV token hash, AS host, meta, ttl ms, sealed ("1" / "") */
    [SCRIPT_CREATE] = "redis.call('HSET', KEYS[1], 'th', ARGV[1], 'as', ARGV[2], 'meta', ARGV[3])\n"
                      "if ARGV[5] == '1' then redis.call('HSET', KEYS[1], 'sk', '1') end\n"
                      "redis.call('PEXPIRE', KEYS[1], ARGV[4])\n"
                      "return 1\n",
    [SCRIPT_GET] = "local v = redis.call('HMGET', KEYS[1], 'th', 'as', 'meta', 'res', 'cat', 'rd', 'sk')\n"
                   "if not v[1] then return false end\n"
                   "return {v[1], v[2], v[3], v[4], v[5], v[6], v[7], redis.call('PTTL', KEYS[1])}\n",
    /*
     * ARGV result, completed_at, sealed ("1" / ""), the session's channel, a message: first writer wins, then wake the
     * session's subscribers (the channel names the session; the message says nothing).
     * Answers {outcome, record}: 1 written (the record without the result, which the caller has), 2 already completed,
     * 3 a sealed session and an unsealed result (nothing written); 0 unknown. The record's remaining life is not read
     * (0): nobody needs it here, and every call in a script costs.
     */
    [SCRIPT_COMPLETE] = "local v = redis.call('HMGET', KEYS[1], 'th', 'as', 'meta', 'res', 'cat', 'rd', 'sk')\n"
                        "if not v[1] then return 0 end\n"
                        "local outcome = 1\n"
                        "if v[4] then outcome = 2\n"
                        "elseif v[7] and ARGV[3] ~= '1' then outcome = 3\n"
                        "else\n"
                        "  redis.call('HSET', KEYS[1], 'res', ARGV[1], 'cat', ARGV[2])\n"
                        "  redis.call('PUBLISH', ARGV[4], ARGV[5])\n"
                        "end\n"
                        "return {outcome, v[1], v[2], v[3], v[4], v[5], v[6], v[7], 0}\n",
    /* ARGV life after the first read, ms */
    [SCRIPT_MARK_READ] = "local v = redis.call('HMGET', KEYS[1], 'th', 'as', 'meta', 'res', 'cat', 'rd', 'sk')\n"
                         "if not v[1] then return false end\n"
                         "if v[4] and not v[6] then\n"
                         "  redis.call('HSET', KEYS[1], 'rd', '1')\n"
                         "  if redis.call('PTTL', KEYS[1]) > tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end\n"
                         "  v[6] = '1'\n"
                         "end\n"
                         "return {v[1], v[2], v[3], v[4], v[5], v[6], v[7], redis.call('PTTL', KEYS[1])}\n",
    [SCRIPT_DELETE] = "return redis.call('DEL', KEYS[1])\n",
};

/* ---- types ---- */

typedef struct st_endpoint_t {
    char *host; /* NULL with a unix socket */
    int port;
    char *path;
} endpoint_t;

typedef struct st_redis_backend_t {
    store_backend_t super;
    endpoint_t direct; /* without Sentinel */
    endpoint_t sentinels[SENTINELS_MAX];
    size_t nsentinels;
    char *master;
    char *password;
    int db;
    unsigned command_timeout_ms, connect_timeout_ms;
    char sha[SCRIPT_COUNT][41];
    atomic_int handles, handles_up, subs_up; /* worker handles; their command and subscriber connections up */
    pthread_mutex_t ready_mutex;
    redisContext *ready_ctx; /* the admin thread's blocking connection for /readyz */
} redis_backend_t;

typedef struct st_redis_handle_t redis_handle_t;

enum { CONN_DOWN, CONN_RESOLVING, CONN_CONNECTING, CONN_UP };

typedef struct st_redis_conn_t {
    redis_handle_t *h;
    int is_sub;
    int state;
    redisAsyncContext *ac;
    redisAsyncContext *sentinel_ac;
    size_t sentinel_next;
    endpoint_t resolved; /* the primary a Sentinel named (host malloc'ed) */
    uint64_t retry_at;
    unsigned backoff_ms;
    int was_up;
    h2o_timeout_entry_t connect_timer;
} redis_conn_t;

struct st_redis_handle_t {
    store_t super;
    redis_backend_t *b;
    h2o_loop_t *loop;
    store_notify_cb on_notify;
    void *notify_ctx;
    redis_conn_t cmd, sub;
    h2o_timeout_t command_timeout, connect_timeout, tick;
    h2o_timeout_entry_t tick_entry;
    int closing;
    struct st_watch_t *watches[WATCH_BUCKETS]; /* the sessions this handle is subscribed to (or wants to be) */
};

/*
 * A session's subscription on a handle's subscriber connection. Only the sessions somebody waits for here are
 * subscribed, so a completion is published to the replicas that wait for it and to nobody else. hiredis 0.14 drops
 * a channel's callback when an UNSUBSCRIBE reply arrives, even one that crossed a new SUBSCRIBE of the same channel:
 * so a channel is never subscribed again before its UNSUBSCRIBE is answered (LEAVING, then JOINING).
 */
enum { SUB_NONE, SUB_JOINING, SUB_ACTIVE, SUB_LEAVING };

typedef struct st_watch_req_t {
    struct st_watch_req_t *next;
    store_cb cb;
    void *ctx;
} watch_req_t;

typedef struct st_watch_t {
    struct st_watch_t *next; /* in its bucket */
    redis_handle_t *h;
    uint8_t key[RLY_SESSION_ID_BYTES];
    int state;
    int wanted;                /* watched (not unwatched since) */
    int renotify;              /* subscribed again after a reconnect: read again once confirmed */
    watch_req_t *pending;      /* watch callbacks waiting for the confirmation, newest first */
    h2o_timeout_entry_t timer; /* armed while a SUBSCRIBE or UNSUBSCRIBE is unanswered */
} watch_t;

typedef struct st_redis_cmd_t {
    redis_handle_t *h;
    int script;
    store_cb cb;
    void *ctx;
    h2o_timeout_entry_t timer;
    int retried; /* EVAL after NOSCRIPT */
    int argc;
    const char *argv[10];
    size_t argvlen[10];
    char *buf; /* owns the bytes argv points to */
} redis_cmd_t;

static void conn_connect(redis_conn_t *c);
static void conn_fail(redis_conn_t *c, const char *why);

static uint64_t now_ms(redis_handle_t *h)
{
    return h2o_now(h->loop);
}

/* ---- commands ---- */

static void cmd_finish(redis_cmd_t *cmd, store_status_t status, const store_record_t *rec)
{
    if (h2o_timeout_is_linked(&cmd->timer))
        h2o_timeout_unlink(&cmd->timer);
    /* rec may point into cmd->buf (a completing write's own result): freed after the callback. Nothing secret in buf:
     * hashes and ciphertexts */
    cmd->cb(cmd->ctx, status, rec);
    free(cmd->buf);
    free(cmd);
}

static int bulk(const redisReply *r, const char **p, size_t *len)
{
    if (r->type == REDIS_REPLY_NIL) {
        *p = NULL;
        *len = 0;
        return 0;
    }
    if (r->type != REDIS_REPLY_STRING)
        return -1;
    *p = r->str;
    *len = r->len;
    return 0;
}

static long long number(const char *s, size_t len)
{
    long long n = 0;
    for (size_t i = 0; i != len; ++i) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        n = n * 10 + (s[i] - '0');
    }
    return len != 0 ? n : -1;
}

/* the record in elements first..first+7 of a reply: {th, as, meta, res, cat, rd, sk, pttl}; 0 / -1 */
static int parse_record(const redisReply *r, size_t first, const uint8_t sid[RLY_SESSION_ID_BYTES], store_record_t *rec)
{
    const char *th, *as, *meta, *res, *cat, *rd, *sk;
    size_t thlen, aslen, metalen, reslen, catlen, rdlen, sklen;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != first + 8)
        return -1;
    redisReply **e = r->element + first;
    if (bulk(e[0], &th, &thlen) != 0 || bulk(e[1], &as, &aslen) != 0 || bulk(e[2], &meta, &metalen) != 0 ||
        bulk(e[3], &res, &reslen) != 0 || bulk(e[4], &cat, &catlen) != 0 || bulk(e[5], &rd, &rdlen) != 0 ||
        bulk(e[6], &sk, &sklen) != 0 || e[7]->type != REDIS_REPLY_INTEGER)
        return -1;
    if (th == NULL || thlen != 32 || as == NULL || aslen > RLY_AS_HOST_MAX || meta == NULL)
        return -1;
    memset(rec, 0, sizeof(*rec));
    memcpy(rec->sid, sid, RLY_SESSION_ID_BYTES);
    memcpy(rec->token_hash, th, 32);
    memcpy(rec->as_host, as, aslen);
    rec->meta = (const uint8_t *)meta;
    rec->meta_len = metalen;
    rec->result = (const uint8_t *)res;
    rec->result_len = reslen;
    rec->completed_at = cat != NULL ? number(cat, catlen) : 0;
    rec->read = rd != NULL;
    rec->sealed = sk != NULL;
    rec->expires_in_ms = e[7]->integer > 0 ? e[7]->integer : 0;
    return 0;
}

static void on_reply(redisAsyncContext *ac, void *_reply, void *privdata)
{
    redis_cmd_t *cmd = privdata;
    redisReply *reply = _reply;
    redis_handle_t *h = cmd->h;
    uint8_t sid[RLY_SESSION_ID_BYTES];
    store_record_t rec;

    if (reply == NULL) { /* the connection went away (or timed out and was freed) */
        cmd_finish(cmd, STORE_UNAVAILABLE, NULL);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        if (!cmd->retried && strncmp(reply->str, "NOSCRIPT", 8) == 0) {
            /* the script cache was flushed (or this is a new primary): send the script itself once */
            cmd->retried = 1;
            cmd->argv[0] = "EVAL";
            cmd->argvlen[0] = 4;
            cmd->argv[1] = scripts[cmd->script];
            cmd->argvlen[1] = strlen(scripts[cmd->script]);
            if (redisAsyncCommandArgv(ac, on_reply, cmd, cmd->argc, cmd->argv, cmd->argvlen) == REDIS_OK)
                return;
        } else if (strncmp(reply->str, "READONLY", 8) == 0 || strncmp(reply->str, "MASTERDOWN", 10) == 0) {
            /* a demoted primary: find the new one */
            conn_fail(&h->cmd, "the Redis server is not a writable primary");
        }
        cmd_finish(cmd, STORE_UNAVAILABLE, NULL);
        return;
    }
    memcpy(sid, cmd->buf, sizeof(sid)); /* the raw id leads buf */
    switch (cmd->script) {
    case SCRIPT_CREATE:
        cmd_finish(cmd, reply->type == REDIS_REPLY_INTEGER ? STORE_OK : STORE_UNAVAILABLE, NULL);
        return;
    case SCRIPT_GET:
    case SCRIPT_MARK_READ:
        if (reply->type == REDIS_REPLY_NIL) {
            cmd_finish(cmd, STORE_NOT_FOUND, NULL);
        } else if (parse_record(reply, 0, sid, &rec) == 0) {
            cmd_finish(cmd, STORE_OK, &rec);
        } else {
            cmd_finish(cmd, STORE_UNAVAILABLE, NULL);
        }
        return;
    case SCRIPT_COMPLETE:
        if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 0) {
            cmd_finish(cmd, STORE_NOT_FOUND, NULL);
        } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements != 0 && reply->element[0]->type == REDIS_REPLY_INTEGER &&
                   reply->element[0]->integer >= 1 && reply->element[0]->integer <= 3 && parse_record(reply, 1, sid, &rec) == 0) {
            long long outcome = reply->element[0]->integer;
            if (outcome == 1) {
                /* written: the result is the caller's, still in this command's buffer (argv[4]); completed_at argv[5] */
                rec.result = (const uint8_t *)cmd->argv[4];
                rec.result_len = cmd->argvlen[4];
                rec.completed_at = number(cmd->argv[5], cmd->argvlen[5]);
            }
            cmd_finish(cmd, outcome == 1 ? STORE_OK : outcome == 2 ? STORE_CONFLICT : STORE_SEAL_REQUIRED, &rec);
        } else {
            cmd_finish(cmd, STORE_UNAVAILABLE, NULL);
        }
        return;
    case SCRIPT_DELETE:
        if (reply->type != REDIS_REPLY_INTEGER)
            cmd_finish(cmd, STORE_UNAVAILABLE, NULL);
        else
            cmd_finish(cmd, reply->integer == 1 ? STORE_OK : STORE_NOT_FOUND, NULL);
        return;
    default:
        cmd_finish(cmd, STORE_UNAVAILABLE, NULL);
        return;
    }
}

static void on_command_timeout(h2o_timeout_entry_t *entry)
{
    redis_cmd_t *cmd = H2O_STRUCT_FROM_MEMBER(redis_cmd_t, timer, entry);
    /* replies come in order: the oldest command is late, so the connection is stuck; failing it answers every
     * command in flight (UNAVAILABLE) and reconnects */
    conn_fail(&cmd->h->cmd, "a Redis command timed out");
}

/*
 * Runs a script on the session's key with extra arguments. The raw session id, the key and the arguments are copied
 * into one buffer the command owns, so callers' buffers are borrowed for the call only.
 */
static void run_script(redis_handle_t *h, int script, const uint8_t sid[RLY_SESSION_ID_BYTES], size_t nargs, const void **args,
                       const size_t *lens, store_cb cb, void *ctx)
{
    if (h->cmd.state != CONN_UP) {
        cb(ctx, STORE_UNAVAILABLE, NULL);
        return;
    }
    size_t total = RLY_SESSION_ID_BYTES + KEY_LEN + 1;
    for (size_t i = 0; i != nargs; ++i)
        total += lens[i];
    redis_cmd_t *cmd = calloc(1, sizeof(*cmd));
    char *buf = malloc(total);
    if (cmd == NULL || buf == NULL) {
        free(cmd);
        free(buf);
        cb(ctx, STORE_UNAVAILABLE, NULL);
        return;
    }
    cmd->h = h;
    cmd->script = script;
    cmd->cb = cb;
    cmd->ctx = ctx;
    cmd->buf = buf;
    cmd->timer.cb = on_command_timeout;

    memcpy(buf, sid, RLY_SESSION_ID_BYTES);
    char *key = buf + RLY_SESSION_ID_BYTES, *p;
    memcpy(key, KEY_PREFIX, sizeof(KEY_PREFIX) - 1);
    rly_b64url_encode(key + sizeof(KEY_PREFIX) - 1, sid, RLY_SESSION_ID_BYTES);
    key[KEY_LEN - 1] = '}';
    p = key + KEY_LEN;
    cmd->argv[0] = "EVALSHA";
    cmd->argvlen[0] = 7;
    cmd->argv[1] = h->b->sha[script];
    cmd->argvlen[1] = 40;
    cmd->argv[2] = "1";
    cmd->argvlen[2] = 1;
    cmd->argv[3] = key;
    cmd->argvlen[3] = KEY_LEN;
    cmd->argc = 4;
    for (size_t i = 0; i != nargs; ++i) {
        memcpy(p, args[i], lens[i]);
        cmd->argv[cmd->argc] = p;
        cmd->argvlen[cmd->argc++] = lens[i];
        p += lens[i];
    }
    if (redisAsyncCommandArgv(h->cmd.ac, on_reply, cmd, cmd->argc, cmd->argv, cmd->argvlen) != REDIS_OK) {
        cmd_finish(cmd, STORE_UNAVAILABLE, NULL);
        return;
    }
    h2o_timeout_link(h->loop, &h->command_timeout, &cmd->timer);
}

/* ---- per-session subscriptions ---- */

static void conn_fail(redis_conn_t *c, const char *why);

static void channel_of(const uint8_t key[RLY_SESSION_ID_BYTES], char channel[CHANNEL_LEN + 1])
{
    memcpy(channel, CHANNEL_PREFIX, sizeof(CHANNEL_PREFIX) - 1);
    rly_b64url_encode(channel + sizeof(CHANNEL_PREFIX) - 1, key, RLY_SESSION_ID_BYTES);
}

static watch_t **watch_slot(redis_handle_t *h, const uint8_t key[RLY_SESSION_ID_BYTES])
{
    uint64_t v;
    memcpy(&v, key, sizeof(v)); /* store keys are hashes */
    watch_t **slot = &h->watches[v % WATCH_BUCKETS];
    while (*slot != NULL && memcmp((*slot)->key, key, RLY_SESSION_ID_BYTES) != 0)
        slot = &(*slot)->next;
    return slot;
}

static watch_t *watch_find(redis_handle_t *h, const uint8_t key[RLY_SESSION_ID_BYTES])
{
    return *watch_slot(h, key);
}

static void on_watch_timeout(h2o_timeout_entry_t *entry)
{
    watch_t *w = H2O_STRUCT_FROM_MEMBER(watch_t, timer, entry);
    /* replies come in order: this one is late, so the subscriber connection is stuck */
    conn_fail(&w->h->sub, "a Redis subscription timed out");
}

static watch_t *watch_get(redis_handle_t *h, const uint8_t key[RLY_SESSION_ID_BYTES])
{
    watch_t **slot = watch_slot(h, key);
    if (*slot != NULL)
        return *slot;
    watch_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->h = h;
    memcpy(w->key, key, RLY_SESSION_ID_BYTES);
    w->timer.cb = on_watch_timeout;
    *slot = w;
    return w;
}

static void watch_free(watch_t *w)
{
    watch_t **slot = watch_slot(w->h, w->key);
    assert(*slot == w && w->pending == NULL);
    *slot = w->next;
    if (h2o_timeout_is_linked(&w->timer))
        h2o_timeout_unlink(&w->timer);
    free(w);
}

static void on_message(redisAsyncContext *ac, void *_reply, void *privdata);

/* sends SUBSCRIBE or UNSUBSCRIBE for the session's channel and arms its timer; 0 / -1 */
static int watch_send(watch_t *w, const char *verb)
{
    redis_handle_t *h = w->h;
    char channel[CHANNEL_LEN + 1];
    channel_of(w->key, channel);
    const char *argv[] = {verb, channel};
    size_t lens[] = {strlen(verb), CHANNEL_LEN};
    if (h->sub.ac == NULL || redisAsyncCommandArgv(h->sub.ac, on_message, NULL, 2, argv, lens) != REDIS_OK)
        return -1;
    if (h2o_timeout_is_linked(&w->timer))
        h2o_timeout_unlink(&w->timer);
    h2o_timeout_link(h->loop, &h->command_timeout, &w->timer);
    return 0;
}

/* unwatched while subscribed: UNSUBSCRIBE (freed when it is answered), or free at once if it cannot be sent */
static void watch_leave(watch_t *w)
{
    if (watch_send(w, "UNSUBSCRIBE") == 0)
        w->state = SUB_LEAVING;
    else
        watch_free(w);
}

/* runs the watch callbacks in the order the watches came in; w may be gone when it returns */
static void run_pending(watch_req_t *list)
{
    watch_req_t *prev = NULL;
    while (list != NULL) { /* newest first: reverse */
        watch_req_t *next = list->next;
        list->next = prev;
        prev = list;
        list = next;
    }
    while (prev != NULL) {
        watch_req_t *next = prev->next;
        store_cb cb = prev->cb;
        void *ctx = prev->ctx;
        free(prev);
        cb(ctx, STORE_OK, NULL);
        prev = next;
    }
}

/* a SUBSCRIBE or UNSUBSCRIBE of a session's channel was answered */
static void on_watch_reply(redis_handle_t *h, const uint8_t key[RLY_SESSION_ID_BYTES], int subscribed)
{
    watch_t *w = watch_find(h, key);
    if (w == NULL || w->state != (subscribed ? SUB_JOINING : SUB_LEAVING))
        return; /* from before a reconnect */
    if (h2o_timeout_is_linked(&w->timer))
        h2o_timeout_unlink(&w->timer);
    if (!subscribed) {
        if (!w->wanted) {
            watch_free(w);
        } else if (watch_send(w, "SUBSCRIBE") == 0) { /* watched again while leaving */
            w->state = SUB_JOINING;
        } else {
            w->state = SUB_NONE;
            watch_req_t *list = w->pending;
            w->pending = NULL;
            run_pending(list);
        }
        return;
    }
    w->state = SUB_ACTIVE;
    int renotify = w->renotify;
    w->renotify = 0;
    watch_req_t *list = w->pending;
    w->pending = NULL;
    run_pending(list); /* each may watch or unwatch again */
    if (renotify)
        h->on_notify(h->notify_ctx, key);
    if ((w = watch_find(h, key)) != NULL && !w->wanted && w->state == SUB_ACTIVE)
        watch_leave(w);
}

/* the subscriber connection is down: every subscription is gone with it; waiters wait on and read again when it is
 * back (became_up subscribes what is still wanted). The watch callbacks waiting for a confirmation run now. */
static void watches_down(redis_handle_t *h)
{
    watch_req_t *all = NULL;
    for (size_t i = 0; i != WATCH_BUCKETS; ++i) {
        watch_t **slot = &h->watches[i];
        while (*slot != NULL) {
            watch_t *w = *slot;
            if (h2o_timeout_is_linked(&w->timer))
                h2o_timeout_unlink(&w->timer);
            w->state = SUB_NONE;
            w->renotify = 0;
            while (w->pending != NULL) {
                watch_req_t *r = w->pending;
                w->pending = r->next;
                r->next = all;
                all = r;
            }
            if (!w->wanted) {
                *slot = w->next;
                free(w);
            } else {
                slot = &w->next;
            }
        }
    }
    run_pending(all);
}

/* the subscriber connection is up again: subscribe every session still watched, and read it again once confirmed */
static void watches_up(redis_handle_t *h)
{
    for (size_t i = 0; i != WATCH_BUCKETS; ++i) {
        for (watch_t *w = h->watches[i]; w != NULL; w = w->next) {
            if (w->wanted && w->state == SUB_NONE && watch_send(w, "SUBSCRIBE") == 0) {
                w->state = SUB_JOINING;
                w->renotify = 1;
            }
        }
    }
}

/* ---- store operations ---- */

static void op_create(store_t *self, const store_record_t *rec, unsigned ttl, store_cb cb, void *ctx)
{
    char ttl_ms[24];
    int n = snprintf(ttl_ms, sizeof(ttl_ms), "%u", ttl * 1000);
    const void *args[] = {rec->token_hash, rec->as_host, rec->meta, ttl_ms, "1"};
    size_t lens[] = {32, strlen(rec->as_host), rec->meta_len, (size_t)n, rec->sealed ? 1 : 0};
    run_script((redis_handle_t *)self, SCRIPT_CREATE, rec->sid, 5, args, lens, cb, ctx);
}

static void op_get(store_t *self, const uint8_t sid[RLY_SESSION_ID_BYTES], store_cb cb, void *ctx)
{
    run_script((redis_handle_t *)self, SCRIPT_GET, sid, 0, NULL, NULL, cb, ctx);
}

static void op_complete(store_t *self, const uint8_t sid[RLY_SESSION_ID_BYTES], const uint8_t *result, size_t len,
                        int64_t completed_at, int sealed, store_cb cb, void *ctx)
{
    char cat[24], channel[CHANNEL_LEN + 1];
    int n = snprintf(cat, sizeof(cat), "%lld", (long long)completed_at);
    channel_of(sid, channel);
    const void *args[] = {result, cat, "1", channel, "1"};
    size_t lens[] = {len, (size_t)n, sealed ? 1 : 0, CHANNEL_LEN, 1};
    run_script((redis_handle_t *)self, SCRIPT_COMPLETE, sid, 5, args, lens, cb, ctx);
}

static void op_mark_read(store_t *self, const uint8_t sid[RLY_SESSION_ID_BYTES], store_cb cb, void *ctx)
{
    char ms[24];
    int n = snprintf(ms, sizeof(ms), "%d", RLY_AFTER_READ_TTL * 1000);
    const void *args[] = {ms};
    size_t lens[] = {(size_t)n};
    run_script((redis_handle_t *)self, SCRIPT_MARK_READ, sid, 1, args, lens, cb, ctx);
}

static void op_remove(store_t *self, const uint8_t sid[RLY_SESSION_ID_BYTES], store_cb cb, void *ctx)
{
    run_script((redis_handle_t *)self, SCRIPT_DELETE, sid, 0, NULL, NULL, cb, ctx);
}

static void op_watch(store_t *self, const uint8_t sid[RLY_SESSION_ID_BYTES], store_cb cb, void *ctx)
{
    redis_handle_t *h = (redis_handle_t *)self;
    watch_t *w = watch_get(h, sid);
    if (w == NULL) {
        /* out of memory: the waiter still reads, and reads again when its wait ends */
        cb(ctx, STORE_OK, NULL);
        return;
    }
    w->wanted = 1;
    if (h->sub.state != CONN_UP) {
        /* subscribed when the connection is back (became_up), and then read again: wait meanwhile */
        cb(ctx, STORE_OK, NULL);
        return;
    }
    switch (w->state) {
    case SUB_ACTIVE:
        cb(ctx, STORE_OK, NULL);
        return;
    case SUB_NONE:
        if (watch_send(w, "SUBSCRIBE") != 0) {
            cb(ctx, STORE_OK, NULL);
            return;
        }
        w->state = SUB_JOINING;
        break;
    default: /* JOINING; LEAVING subscribes again when the UNSUBSCRIBE is answered */
        break;
    }
    watch_req_t *r = malloc(sizeof(*r));
    if (r == NULL) {
        cb(ctx, STORE_OK, NULL);
        return;
    }
    *r = (watch_req_t){w->pending, cb, ctx};
    w->pending = r;
}

static void op_unwatch(store_t *self, const uint8_t sid[RLY_SESSION_ID_BYTES])
{
    redis_handle_t *h = (redis_handle_t *)self;
    watch_t *w = watch_find(h, sid);
    if (w == NULL)
        return;
    w->wanted = 0;
    if (w->state == SUB_NONE)
        watch_free(w);
    else if (w->state == SUB_ACTIVE)
        watch_leave(w);
    /* JOINING: unsubscribed when the SUBSCRIBE is answered; LEAVING: already on its way */
}

/* ---- connections ---- */

static const endpoint_t *target(redis_conn_t *c)
{
    return c->h->b->nsentinels != 0 ? &c->resolved : &c->h->b->direct;
}

static void set_state(redis_conn_t *c, int state)
{
    redis_backend_t *b = c->h->b;
    if ((c->state == CONN_UP) != (state == CONN_UP))
        atomic_fetch_add(c->is_sub ? &b->subs_up : &b->handles_up, state == CONN_UP ? 1 : -1);
    c->state = state;
}

static void schedule_retry(redis_conn_t *c)
{
    unsigned b = c->backoff_ms;
    uint32_t r = 0;
    rly_random(&r, sizeof(r));
    /* capped exponential backoff with jitter: half the step fixed, half random */
    c->retry_at = now_ms(c->h) + b / 2 + (b != 0 ? r % (b / 2 + 1) : 0);
    c->backoff_ms = b * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : b * 2;
}

/* drops the connection (if any) and schedules a reconnect; every command in flight is answered UNAVAILABLE */
static void conn_fail(redis_conn_t *c, const char *why)
{
    redisAsyncContext *ac = c->ac, *sac = c->sentinel_ac;
    int was_up = c->state == CONN_UP;
    if (c->state == CONN_DOWN && ac == NULL && sac == NULL)
        return;
    c->ac = NULL;
    c->sentinel_ac = NULL;
    if (h2o_timeout_is_linked(&c->connect_timer))
        h2o_timeout_unlink(&c->connect_timer);
    set_state(c, CONN_DOWN);
    if (c->h->b->nsentinels != 0) {
        free(c->resolved.host);
        c->resolved.host = NULL;
    }
    if (!c->h->closing) {
        if (was_up)
            rly_log_msg(RLY_LOG_WARN, "store_down", why, 0);
        schedule_retry(c);
    }
    /* hiredis answers the pending callbacks while freeing; they see the state DOWN already */
    if (ac != NULL) {
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    if (sac != NULL) {
        sac->data = NULL;
        redisAsyncFree(sac);
    }
    if (c->is_sub)
        watches_down(c->h);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    redis_conn_t *c = ac->data;
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
    redis_conn_t *c = ac->data;
    if (c == NULL || status == REDIS_OK)
        return;
    /* hiredis frees ac after this returns */
    if (c->ac == ac)
        c->ac = NULL;
    if (c->sentinel_ac == ac)
        c->sentinel_ac = NULL;
    conn_fail(c, "cannot connect to Redis");
}

static void became_up(redis_conn_t *c)
{
    if (h2o_timeout_is_linked(&c->connect_timer))
        h2o_timeout_unlink(&c->connect_timer);
    set_state(c, CONN_UP);
    c->backoff_ms = BACKOFF_MIN_MS;
    if (c->was_up)
        rly_log_msg(RLY_LOG_INFO, "store_up", c->is_sub ? "Redis subscriber reconnected" : "Redis reconnected", 0);
    c->was_up = 1;
    /* back (subscribed again, or able to read again): completions may have been missed while down, so every waiter
     * reads again; the subscriber first subscribes every watched session again (each is read once more when its
     * subscription is confirmed, in case a completion came in between) */
    if (c->is_sub)
        watches_up(c->h);
    c->h->on_notify(c->h->notify_ctx, NULL);
}

static void on_handshake(redisAsyncContext *ac, void *_reply, void *privdata)
{
    redisReply *reply = _reply;
    redis_conn_t *c = ac->data;
    intptr_t last = (intptr_t)privdata;
    if (c == NULL || reply == NULL)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        conn_fail(c, strncasecmp(reply->str, "NOAUTH", 6) == 0 || strncasecmp(reply->str, "WRONGPASS", 9) == 0 ||
                             strncasecmp(reply->str, "ERR invalid password", 20) == 0
                         ? "Redis refused the password"
                         : "Redis refused the connection set-up");
        return;
    }
    if (privdata == (void *)2) {
        /* ROLE with Sentinel: a primary answers ["master", ...] */
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0 || reply->element[0]->type != REDIS_REPLY_STRING ||
            strcmp(reply->element[0]->str, "master") != 0)
            conn_fail(c, "the server Sentinel named is not a primary");
        return;
    }
    if (last == 1 && !c->is_sub)
        became_up(c);
}

static void on_message(redisAsyncContext *ac, void *_reply, void *privdata)
{
    redisReply *reply = _reply;
    redis_conn_t *c = ac->data;
    uint8_t key[RLY_SESSION_ID_BYTES];
    (void)privdata;
    if (c == NULL || reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING || reply->element[1]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = reply->element[0]->str, *channel = reply->element[1]->str;
    size_t len = reply->element[1]->len;
    int is_control = len == sizeof(CHANNEL) - 1 && memcmp(channel, CHANNEL, len) == 0;
    if (is_control) {
        if (strcmp(kind, "subscribe") == 0)
            became_up(c);
        return;
    }
    if (len != CHANNEL_LEN || memcmp(channel, CHANNEL_PREFIX, sizeof(CHANNEL_PREFIX) - 1) != 0 ||
        rly_session_parse(channel + sizeof(CHANNEL_PREFIX) - 1, RLY_SESSION_ID_LEN, key) != 0)
        return;
    if (strcmp(kind, "message") == 0)
        c->h->on_notify(c->h->notify_ctx, key);
    else if (strcmp(kind, "subscribe") == 0)
        on_watch_reply(c->h, key, 1);
    else if (strcmp(kind, "unsubscribe") == 0)
        on_watch_reply(c->h, key, 0);
}

static void on_connect_timeout(h2o_timeout_entry_t *entry)
{
    redis_conn_t *c = H2O_STRUCT_FROM_MEMBER(redis_conn_t, connect_timer, entry);
    conn_fail(c, "connecting to Redis timed out");
}

static redisAsyncContext *open_async(redis_conn_t *c, const endpoint_t *ep)
{
    redisAsyncContext *ac = ep->path != NULL ? redisAsyncConnectUnix(ep->path) : redisAsyncConnect(ep->host, ep->port);
    if (ac == NULL)
        return NULL;
    if (ac->err != 0 || relay_redis_attach(ac, c->h->loop) != 0) {
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = c;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return ac;
}

/* connects to the primary (known, or just named by a Sentinel) and queues the set-up commands */
static void connect_primary(redis_conn_t *c)
{
    redis_backend_t *b = c->h->b;
    if ((c->ac = open_async(c, target(c))) == NULL) {
        conn_fail(c, "cannot connect to Redis");
        return;
    }
    set_state(c, CONN_CONNECTING);
    if (b->password != NULL) {
        const char *argv[] = {"AUTH", b->password};
        size_t lens[] = {4, strlen(b->password)};
        redisAsyncCommandArgv(c->ac, on_handshake, (void *)0, 2, argv, lens);
    }
    if (b->nsentinels != 0)
        redisAsyncCommand(c->ac, on_handshake, (void *)2, "ROLE");
    if (c->is_sub) {
        redisAsyncCommand(c->ac, on_message, NULL, "SUBSCRIBE %s", CHANNEL);
    } else {
        if (b->db != 0)
            redisAsyncCommand(c->ac, on_handshake, (void *)0, "SELECT %d", b->db);
        redisAsyncCommand(c->ac, on_handshake, (void *)1, "PING");
    }
}

static void ask_next_sentinel(redis_conn_t *c);

static void on_sentinel_reply(redisAsyncContext *ac, void *_reply, void *privdata)
{
    redisReply *reply = _reply;
    redis_conn_t *c = ac->data;
    (void)privdata;
    if (c == NULL || reply == NULL)
        return;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 && reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_STRING) {
        long long port = number(reply->element[1]->str, reply->element[1]->len);
        free(c->resolved.host);
        c->resolved.host = strdup(reply->element[0]->str);
        c->resolved.port = (int)port;
        c->resolved.path = NULL;
        /* done with this Sentinel */
        ac->data = NULL;
        c->sentinel_ac = NULL;
        redisAsyncDisconnect(ac);
        if (c->resolved.host != NULL && port > 0 && port < 65536) {
            connect_primary(c);
            return;
        }
    } else {
        ac->data = NULL;
        c->sentinel_ac = NULL;
        redisAsyncDisconnect(ac);
    }
    ask_next_sentinel(c);
}

static void on_sentinel_connect(const redisAsyncContext *ac, int status)
{
    redis_conn_t *c = ac->data;
    if (c == NULL || status == REDIS_OK)
        return;
    c->sentinel_ac = NULL; /* hiredis frees it */
    ask_next_sentinel(c);
}

static void on_sentinel_disconnect(const redisAsyncContext *ac, int status)
{
    redis_conn_t *c = ac->data;
    (void)status;
    if (c == NULL)
        return;
    c->sentinel_ac = NULL;
    ask_next_sentinel(c);
}

/* asks the Sentinels in turn for the primary's address; after a full round without an answer, backs off */
static void ask_next_sentinel(redis_conn_t *c)
{
    redis_backend_t *b = c->h->b;
    while (c->sentinel_next < b->nsentinels) {
        const endpoint_t *ep = &b->sentinels[c->sentinel_next++];
        redisAsyncContext *ac = redisAsyncConnect(ep->host, ep->port);
        if (ac == NULL)
            continue;
        if (ac->err != 0 || relay_redis_attach(ac, c->h->loop) != 0) {
            redisAsyncFree(ac);
            continue;
        }
        ac->data = c;
        redisAsyncSetConnectCallback(ac, on_sentinel_connect);
        redisAsyncSetDisconnectCallback(ac, on_sentinel_disconnect);
        c->sentinel_ac = ac;
        redisAsyncCommand(ac, on_sentinel_reply, NULL, "SENTINEL get-master-addr-by-name %s", b->master);
        return;
    }
    conn_fail(c, "no Sentinel named a primary");
}

static void conn_connect(redis_conn_t *c)
{
    h2o_timeout_link(c->h->loop, &c->h->connect_timeout, &c->connect_timer);
    if (c->h->b->nsentinels != 0) {
        set_state(c, CONN_RESOLVING);
        c->sentinel_next = 0;
        ask_next_sentinel(c);
    } else {
        connect_primary(c);
    }
}

static void on_tick(h2o_timeout_entry_t *entry)
{
    redis_handle_t *h = H2O_STRUCT_FROM_MEMBER(redis_handle_t, tick_entry, entry);
    uint64_t now = now_ms(h);
    redis_conn_t *conns[] = {&h->cmd, &h->sub};
    for (size_t i = 0; i != 2; ++i) {
        if (conns[i]->state == CONN_DOWN && now >= conns[i]->retry_at)
            conn_connect(conns[i]);
    }
    h2o_timeout_link(h->loop, &h->tick, &h->tick_entry);
}

static void op_close(store_t *self)
{
    redis_handle_t *h = (redis_handle_t *)self;
    h->closing = 1;
    if (h2o_timeout_is_linked(&h->tick_entry))
        h2o_timeout_unlink(&h->tick_entry);
    conn_fail(&h->cmd, "closing");
    conn_fail(&h->sub, "closing");
    watches_down(h); /* if the subscriber was down already */
    for (size_t i = 0; i != WATCH_BUCKETS; ++i) {
        while (h->watches[i] != NULL) {
            watch_t *w = h->watches[i];
            h->watches[i] = w->next;
            free(w);
        }
    }
    free(h->cmd.resolved.host);
    free(h->sub.resolved.host);
    atomic_fetch_sub(&h->b->handles, 1);
    /* the loop outlives the handle: take our timeout lists off it */
    h2o_timeout_dispose(h->loop, &h->command_timeout);
    h2o_timeout_dispose(h->loop, &h->connect_timeout);
    h2o_timeout_dispose(h->loop, &h->tick);
    free(h);
}

/* ---- the back-end ---- */

static store_t *backend_open(store_backend_t *self, h2o_loop_t *loop, store_notify_cb on_notify, void *notify_ctx)
{
    redis_backend_t *b = (redis_backend_t *)self;
    redis_handle_t *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->super = (store_t){op_create, op_get, op_complete, op_mark_read, op_remove, op_watch, op_unwatch, op_close};
    h->b = b;
    h->loop = loop;
    h->on_notify = on_notify;
    h->notify_ctx = notify_ctx;
    h2o_timeout_init(loop, &h->command_timeout, b->command_timeout_ms);
    h2o_timeout_init(loop, &h->connect_timeout, b->connect_timeout_ms);
    h2o_timeout_init(loop, &h->tick, TICK_MS);
    h->tick_entry.cb = on_tick;
    redis_conn_t *conns[] = {&h->cmd, &h->sub};
    for (size_t i = 0; i != 2; ++i) {
        conns[i]->h = h;
        conns[i]->is_sub = i == 1;
        conns[i]->state = CONN_DOWN;
        conns[i]->backoff_ms = BACKOFF_MIN_MS;
        conns[i]->connect_timer.cb = on_connect_timeout;
    }
    atomic_fetch_add(&b->handles, 1);
    /* connect now; while Redis is away the relay runs and answers 503, and the tick keeps trying */
    conn_connect(&h->cmd);
    conn_connect(&h->sub);
    h2o_timeout_link(loop, &h->tick, &h->tick_entry);
    return &h->super;
}

/* a blocking connection for the admin thread, to the primary (asking the Sentinels first when there are some) */
static redisContext *ready_connect(redis_backend_t *b)
{
    struct timeval tv = {0, READY_TIMEOUT_MS * 1000};
    endpoint_t ep = b->direct;
    char host[256] = "";
    if (b->nsentinels != 0) {
        ep.host = NULL;
        for (size_t i = 0; i != b->nsentinels && ep.host == NULL; ++i) {
            redisContext *s = redisConnectWithTimeout(b->sentinels[i].host, b->sentinels[i].port, tv);
            if (s != NULL && s->err == 0 && redisSetTimeout(s, tv) == REDIS_OK) {
                redisReply *r = redisCommand(s, "SENTINEL get-master-addr-by-name %s", b->master);
                if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
                    r->element[1]->type == REDIS_REPLY_STRING && r->element[0]->len < sizeof(host)) {
                    memcpy(host, r->element[0]->str, r->element[0]->len + 1);
                    ep.host = host;
                    ep.port = (int)number(r->element[1]->str, r->element[1]->len);
                }
                freeReplyObject(r);
            }
            if (s != NULL)
                redisFree(s);
        }
        if (ep.host == NULL)
            return NULL;
    }
    redisContext *c = ep.path != NULL ? redisConnectUnixWithTimeout(ep.path, tv) : redisConnectWithTimeout(ep.host, ep.port, tv);
    if (c == NULL || c->err != 0 || redisSetTimeout(c, tv) != REDIS_OK)
        goto Error;
    if (b->password != NULL) {
        redisReply *r = redisCommand(c, "AUTH %s", b->password);
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

static int backend_ready(store_backend_t *self)
{
    redis_backend_t *b = (redis_backend_t *)self;
    int ok = 0;
    pthread_mutex_lock(&b->ready_mutex);
    for (int attempt = 0; attempt != 2 && !ok; ++attempt) {
        if (b->ready_ctx == NULL && (b->ready_ctx = ready_connect(b)) == NULL)
            break;
        redisReply *r = redisCommand(b->ready_ctx, "PING");
        int answered = r != NULL;
        ok = answered && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
        freeReplyObject(r);
        if (!ok) {
            /* a stale connection (Redis restarted) earns one fresh try; a timeout does not (the budget is spent) */
            int timed_out = !answered && b->ready_ctx->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
            redisFree(b->ready_ctx);
            b->ready_ctx = NULL;
            if (timed_out)
                break;
        }
    }
    pthread_mutex_unlock(&b->ready_mutex);
    /* every worker's command and subscriber connections must be up too, or its requests would get 503 or its pickups
     * could not be woken */
    return ok && atomic_load(&b->handles_up) == atomic_load(&b->handles) && atomic_load(&b->subs_up) == atomic_load(&b->handles);
}

static void endpoint_free(endpoint_t *ep)
{
    free(ep->host);
    free(ep->path);
}

static void backend_destroy(store_backend_t *self)
{
    redis_backend_t *b = (redis_backend_t *)self;
    if (b->ready_ctx != NULL)
        redisFree(b->ready_ctx);
    endpoint_free(&b->direct);
    for (size_t i = 0; i != b->nsentinels; ++i)
        endpoint_free(&b->sentinels[i]);
    if (b->password != NULL) {
        OPENSSL_cleanse(b->password, strlen(b->password));
        free(b->password);
    }
    free(b->master);
    pthread_mutex_destroy(&b->ready_mutex);
    free(b);
}

/* "host:port" or "[v6]:port" into ep; 0 / -1 */
static int parse_hostport(const char *s, size_t len, endpoint_t *ep)
{
    const char *colon = NULL;
    for (size_t i = len; i != 0; --i) {
        if (s[i - 1] == ':') {
            colon = s + i - 1;
            break;
        }
    }
    if (colon == NULL || colon == s)
        return -1;
    const char *h = s, *hend = colon;
    if (*h == '[') {
        if (hend[-1] != ']')
            return -1;
        ++h;
        --hend;
    }
    long long port = number(colon + 1, (size_t)(s + len - colon - 1));
    if (port < 1 || port > 65535 || hend <= h)
        return -1;
    ep->host = strndup(h, (size_t)(hend - h));
    ep->port = (int)port;
    return ep->host != NULL ? 0 : -1;
}

/* redis://[:password@]host:port[/db] or unix:///path (already checked by the configuration) */
static int parse_url(redis_backend_t *b, const char *url)
{
    if (strncmp(url, "unix://", 7) == 0) {
        b->direct.path = strdup(url + 7);
        return b->direct.path != NULL ? 0 : -1;
    }
    if (strncmp(url, "redis://", 8) != 0)
        return -1;
    const char *p = url + 8, *at = strrchr(p, '@'), *slash;
    if (at != NULL) {
        if (*p != ':')
            return -1;
        if (b->password == NULL && (b->password = strndup(p + 1, (size_t)(at - p - 1))) == NULL)
            return -1;
        p = at + 1;
    }
    slash = strchr(p, '/');
    if (parse_hostport(p, slash != NULL ? (size_t)(slash - p) : strlen(p), &b->direct) != 0)
        return -1;
    if (slash != NULL && slash[1] != '\0') {
        long long db = number(slash + 1, strlen(slash + 1));
        if (db < 0 || db > 1000000)
            return -1;
        b->db = (int)db;
    }
    return 0;
}

store_backend_t *store_redis_new(const store_redis_options_t *opts, char *err, size_t errlen)
{
    redis_backend_t *b = calloc(1, sizeof(*b));
    if (b == NULL)
        goto OOM;
    b->super = (store_backend_t){"redis", backend_open, backend_ready, backend_destroy};
    pthread_mutex_init(&b->ready_mutex, NULL);
    b->command_timeout_ms = opts->command_timeout_ms != 0 ? opts->command_timeout_ms : 1000;
    b->connect_timeout_ms = opts->connect_timeout_ms != 0 ? opts->connect_timeout_ms : 1000;
    if (opts->password != NULL && (b->password = strdup(opts->password)) == NULL)
        goto OOM;
    if (opts->sentinels != NULL) {
        const char *s = opts->sentinels;
        while (*s != '\0') {
            const char *end = strchr(s, ',');
            size_t len = end != NULL ? (size_t)(end - s) : strlen(s);
            if (b->nsentinels == SENTINELS_MAX || parse_hostport(s, len, &b->sentinels[b->nsentinels]) != 0) {
                snprintf(err, errlen, "bad --redis-sentinel address list");
                goto Error;
            }
            ++b->nsentinels;
            s += len + (end != NULL);
        }
        if (b->nsentinels == 0 || opts->master == NULL || (b->master = strdup(opts->master)) == NULL) {
            snprintf(err, errlen, "--redis-sentinel needs addresses and --redis-master");
            goto Error;
        }
    } else if (opts->url == NULL || parse_url(b, opts->url) != 0) {
        snprintf(err, errlen, "bad --redis URL");
        goto Error;
    }
    for (size_t i = 0; i != SCRIPT_COUNT; ++i) {
        unsigned char md[20];
        unsigned mdlen;
        EVP_Digest(scripts[i], strlen(scripts[i]), md, &mdlen, EVP_sha1(), NULL);
        for (size_t j = 0; j != 20; ++j)
            snprintf(b->sha[i] + 2 * j, 3, "%02x", md[j]);
    }
    return &b->super;
OOM:
    snprintf(err, errlen, "out of memory");
Error:
    if (b != NULL)
        backend_destroy(&b->super);
    return NULL;
}
