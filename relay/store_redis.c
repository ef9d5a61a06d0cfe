/* store_redis.c: the Redis rendezvous store: Lua check-and-set scripts, records, per-session pub/sub wake-ups */
#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include "b64url.h"
#include "ids.h"
#include "log.h"
#include "redis_conn.h"
#include "store.h"

/*
 * Built on redis_conn.c, which keeps one command and one subscriber connection per handle up (endpoints, Sentinel,
 * handshake, timeouts, reconnects). Here: what the store means in Redis. A session is one hash named after its store
 * key (rly_store_key: a hash of the session id, never the id itself), with a TTL; every state change is one script.
 *
 * The live sessions of every replica are counted in one sorted set, INDEX: member a session's Redis key, score its
 * expiry (Redis TIME, unix ms). The create script reclaims expired members (at most INDEX_BATCH a call, ZCOUNT covers
 * the rest), refuses when the live ones reach the limit, else writes the session and adds it; deletion removes it; the
 * first read moves its score to the shortened expiry. So the count is exact, in the same round trip and atomically
 * with the create, at O(log n) per session. A session evicted by a maxmemory policy other than noeviction still
 * counts until its expiry. INDEX carries the latest expiry as its TTL. One key for every session: the relay needs
 * a single primary (standalone or Sentinel, as redis_conn.c connects), never a Cluster.
 */

#define REDIS_KEY_PREFIX "authrelay:{"
#define REDIS_KEY_LEN (sizeof(REDIS_KEY_PREFIX) - 1 + RLY_SESSION_ID_LEN + 1)
#define CHANNEL "authrelay:done"         /* every subscriber connection's hello channel: its confirmation means "up" */
#define CHANNEL_PREFIX "authrelay:done:" /* + a session's store key (base64url): one channel a session, published once */
#define CHANNEL_LEN (sizeof(CHANNEL_PREFIX) - 1 + RLY_SESSION_ID_LEN)
#define WATCH_BUCKETS 4096
#define INDEX "authrelay:sessions" /* the live sessions' sorted set (above) */
#define INDEX_BATCH "100"          /* expired members a create removes at most */

/* ---- the scripts: every state change is one atomic script; the session is one hash with a TTL ---- */

enum {
    SCRIPT_CREATE,
    SCRIPT_GET,
    SCRIPT_COMPLETE,
    SCRIPT_MARK_READ,
    SCRIPT_DELETE,
    SCRIPT_START_SET,
    SCRIPT_START_GET,
    SCRIPT_CONFIRM,
    SCRIPT_COUNT
};

/*
 * A session's hash: th token hash, as AS host, meta, res result, cat completed at, rd read, sk sealed; 1.1: bd bound, sh
 * start token hash, ck the confirming browser cookie's hash (set when the start token is consumed). Every script that
 * answers a record answers these ten fields then the remaining life (RECORD below). A start token's own hash holds only
 * sr, the reference to its session (an encrypted session id); the two kinds never share a field, so neither reads as
 * the other.
 */
#define FIELDS "'th', 'as', 'meta', 'res', 'cat', 'rd', 'sk', 'bd', 'sh', 'ck'"
#define RECORD "v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10]"
#define NFIELDS 10

static const char *const scripts[SCRIPT_COUNT] = {
    /*
     * KEYS[1] session, KEYS[2] INDEX; ARGV token hash, AS host, meta, ttl ms, sealed ("1" / ""), bound ("1" / ""), start
     * hash, the limit ("0": none). 1 created; 0 full, nothing written. Under noeviction at maxmemory the first HSET fails
     * with OOM (unless the ZREM of expired members came first, which frees memory): an error, nothing of the session
     * written.
     */
    [SCRIPT_CREATE] = "local t = redis.call('TIME')\n"
                      "local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
                      "local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, " INDEX_BATCH ")\n"
                      "if #old > 0 then redis.call('ZREM', KEYS[2], unpack(old)) end\n"
                      "local max = tonumber(ARGV[8])\n"
                      "if max > 0 then\n"
                      "  local live = redis.call('ZCARD', KEYS[2])\n"
                      "  if #old == " INDEX_BATCH " then live = live - redis.call('ZCOUNT', KEYS[2], '-inf', now) end\n"
                      "  if live >= max then return 0 end\n"
                      "end\n"
                      "redis.call('HSET', KEYS[1], 'th', ARGV[1], 'as', ARGV[2], 'meta', ARGV[3])\n"
                      "if ARGV[5] == '1' then redis.call('HSET', KEYS[1], 'sk', '1') end\n"
                      "if ARGV[6] == '1' then redis.call('HSET', KEYS[1], 'bd', '1', 'sh', ARGV[7]) end\n"
                      "local ttl = tonumber(ARGV[4])\n"
                      "redis.call('PEXPIRE', KEYS[1], ttl)\n"
                      "redis.call('ZADD', KEYS[2], now + ttl, KEYS[1])\n"
                      "if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end\n"
                      "return 1\n",
    [SCRIPT_GET] = "local v = redis.call('HMGET', KEYS[1], " FIELDS ")\n"
                   "if not v[1] then return false end\n"
                   "return {" RECORD ", redis.call('PTTL', KEYS[1])}\n",
    /*
     * The callback's write, the hot path: ARGV result, completed_at, sealed ("1" / ""), the session's channel, the cookie
     * hash presented ("": none). First writer wins, then the session's subscribers are woken (the channel names the
     * session; the message "1" says nothing). Answers the HMGET's own table with the outcome appended, {record fields,
     * outcome}: 1 written (the record without the result, which the caller has), 2 already completed, 3 a sealed session
     * and an unsealed result, 4 a bound session not confirmed by that cookie (3 and 4: nothing written); 0 unknown.
     * Lean on purpose (see "Redis CPU per callback" in docs/internals.md): three calls, no table built, no PTTL (the
     * remaining life is not needed here: 0); every argument is copied into Lua and hashed byte by byte, so nothing is
     * passed that the script can do without.
     */
    [SCRIPT_COMPLETE] = "local v = redis.call('HMGET', KEYS[1], " FIELDS ")\n"
                        "if not v[1] then return 0 end\n"
                        "if v[4] then v[11] = 2\n"
                        "elseif v[8] and v[10] ~= ARGV[5] then v[11] = 4\n"
                        "elseif v[7] and ARGV[3] ~= '1' then v[11] = 3\n"
                        "else\n"
                        "  redis.call('HSET', KEYS[1], 'res', ARGV[1], 'cat', ARGV[2])\n"
                        "  redis.call('PUBLISH', ARGV[4], '1')\n"
                        "  v[11] = 1\n"
                        "end\n"
                        "return v\n",
    /* KEYS[2] INDEX; ARGV life after the first read, ms (the index follows a shortened life) */
    [SCRIPT_MARK_READ] =
        "local v = redis.call('HMGET', KEYS[1], " FIELDS ")\n"
        "if not v[1] then return false end\n"
        "if v[4] and not v[6] then\n"
        "  redis.call('HSET', KEYS[1], 'rd', '1')\n"
        "  if redis.call('PTTL', KEYS[1]) > tonumber(ARGV[1]) then\n"
        "    redis.call('PEXPIRE', KEYS[1], ARGV[1])\n"
        "    local t = redis.call('TIME')\n"
        "    redis.call('ZADD', KEYS[2], 'XX', t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[1]), KEYS[1])\n"
        "  end\n"
        "  v[6] = '1'\n"
        "end\n"
        "return {" RECORD ", redis.call('PTTL', KEYS[1])}\n",
    /* KEYS[2] INDEX */
    [SCRIPT_DELETE] = "redis.call('ZREM', KEYS[2], KEYS[1])\n"
                      "return redis.call('DEL', KEYS[1])\n",
    /* KEYS[1] a start token's key; ARGV the reference, ttl ms */
    [SCRIPT_START_SET] = "redis.call('HSET', KEYS[1], 'sr', ARGV[1])\n"
                         "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
                         "return 1\n",
    [SCRIPT_START_GET] = "return redis.call('HGET', KEYS[1], 'sr')\n",
    /*
     * ARGV the start token's hash, the cookie hash: a bound session, pending, not confirmed, of that start token becomes
     * confirmed by the cookie (the first caller wins: the token is consumed). Answers {outcome, record before}: 1
     * confirmed, 2 not (confirmed or completed already, or another token); 0 unknown.
     */
    [SCRIPT_CONFIRM] = "local v = redis.call('HMGET', KEYS[1], " FIELDS ")\n"
                       "if not v[1] then return 0 end\n"
                       "local outcome = 1\n"
                       "if not v[8] or v[10] or v[4] or v[9] ~= ARGV[1] then outcome = 2\n"
                       "else redis.call('HSET', KEYS[1], 'ck', ARGV[2]) end\n"
                       "return {outcome, " RECORD ", redis.call('PTTL', KEYS[1])}\n",
};

/* ---- types ---- */

typedef struct st_redis_backend_t {
    store_backend_t super;
    relay_redis_target_t *target;
    char sha[SCRIPT_COUNT][41];
} redis_backend_t;

typedef struct st_redis_handle_t {
    store_t super;
    redis_backend_t *b;
    store_notify_cb on_notify;
    void *notify_ctx;
    relay_redis_conn_t *cmd, *sub;             /* NULL once closing */
    struct st_watch_t *watches[WATCH_BUCKETS]; /* the sessions this handle is subscribed to (or wants to be) */
} redis_handle_t;

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
    int wanted;                      /* watched (not unwatched since) */
    int renotify;                    /* subscribed again after a reconnect: read again once confirmed */
    watch_req_t *pending;            /* watch callbacks waiting for the confirmation, newest first */
    relay_redis_deadline_t deadline; /* armed while a SUBSCRIBE or UNSUBSCRIBE is unanswered */
} watch_t;

/*
 * A script call in flight: one allocation, the struct and the EVALSHA command itself in RESP, which hiredis copies into
 * its output buffer as it is (redisAsyncFormattedCommand: no argv, no formatting, no allocation of its own for the
 * command). Kept until the reply: a NOSCRIPT sends the same arguments again behind EVAL, and a completing write answers
 * with its own result, which lies in resp.
 */
typedef struct st_redis_cmd_t {
    relay_redis_command_t super;
    redis_handle_t *h;
    int script;
    store_cb cb;
    void *ctx;
    int retried; /* EVAL after NOSCRIPT */
    uint8_t key[RLY_SESSION_ID_BYTES];
    size_t nelems;    /* elements of the RESP array */
    size_t tail_at;   /* where the elements after the script's hash begin (numkeys, keys, arguments): EVAL's tail too */
    size_t arg_at[2]; /* where the first two extra arguments' bytes begin (complete: the result, completed_at) */
    size_t arg_len[2];
    size_t len;
    char resp[]; /* nothing secret: key names, hashes, ciphertexts */
} redis_cmd_t;

/* ---- RESP: the commands are formatted here (a RESP array of bulk strings is simple), bounded by RESP_ARGS_MAX ---- */

#define RESP_ARGS_MAX 16

static size_t resp_digits(size_t n)
{
    size_t d = 1;
    while (n >= 10) {
        n /= 10;
        ++d;
    }
    return d;
}

/* the size of argc bulk strings of lens[] bytes as one RESP array */
static size_t resp_size(size_t argc, const size_t *lens)
{
    size_t n = 1 + resp_digits(argc) + 2;
    for (size_t i = 0; i != argc; ++i)
        n += 1 + resp_digits(lens[i]) + 2 + lens[i] + 2;
    return n;
}

/* type ('*' an array's header, '$' a bulk string's) and n in decimal, CRLF; returns the end */
static char *resp_header(char *p, char type, size_t n)
{
    char digits[20];
    size_t i = sizeof(digits);
    do {
        digits[--i] = (char)('0' + n % 10);
        n /= 10;
    } while (n != 0);
    *p++ = type;
    memcpy(p, digits + i, sizeof(digits) - i);
    p += sizeof(digits) - i;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* one bulk string; returns the end */
static char *resp_bulk(char *p, const void *data, size_t len)
{
    p = resp_header(p, '$', len);
    if (len != 0)
        memcpy(p, data, len);
    p += len;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* ---- commands ---- */

static void cmd_finish(redis_cmd_t *cmd, store_status_t status, const store_record_t *rec)
{
    /* rec may point into cmd->resp (a completing write's own result): freed after the callback */
    cmd->cb(cmd->ctx, status, rec);
    free(cmd);
}

/* sends the command again as EVAL with the script's text (after NOSCRIPT); 0, or -1 out of memory */
static int cmd_send_eval(redis_cmd_t *cmd)
{
    const char *text = scripts[cmd->script];
    size_t text_len = strlen(text), tail_len = cmd->len - cmd->tail_at;
    size_t lens[] = {4, text_len};
    /* resp_size(2, lens) counts the header of a 2-element array: nelems may have more digits */
    char *eval = malloc(resp_size(2, lens) - resp_digits(2) + resp_digits(cmd->nelems) + tail_len);
    if (eval == NULL)
        return -1;
    char *p = resp_header(eval, '*', cmd->nelems);
    p = resp_bulk(p, "EVAL", 4);
    p = resp_bulk(p, text, text_len);
    memcpy(p, cmd->resp + cmd->tail_at, tail_len);
    relay_redis_command_formatted(cmd->h->cmd, &cmd->super, eval, (size_t)(p - eval) + tail_len);
    free(eval); /* copied by hiredis (or the callback already ran) */
    return 0;
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

/* the fields of FIELDS in e[0..NFIELDS) into rec (remaining life 0); 0 / -1 */
static int parse_fields(redisReply *const *e, const uint8_t key[RLY_SESSION_ID_BYTES], store_record_t *rec)
{
    const char *f[NFIELDS];
    size_t len[NFIELDS];
    for (size_t i = 0; i != NFIELDS; ++i)
        if (bulk(e[i], &f[i], &len[i]) != 0)
            return -1;
    /* th, as, meta are always there; sh and ck are hashes when there */
    if (f[0] == NULL || len[0] != 32 || f[1] == NULL || len[1] > RLY_AS_ID_MAX || f[2] == NULL || (f[8] != NULL && len[8] != 32) ||
        (f[9] != NULL && len[9] != 32))
        return -1;
    memset(rec, 0, sizeof(*rec));
    memcpy(rec->key, key, RLY_SESSION_ID_BYTES);
    memcpy(rec->token_hash, f[0], 32);
    memcpy(rec->as_id, f[1], len[1]);
    rec->meta = (const uint8_t *)f[2];
    rec->meta_len = len[2];
    rec->result = (const uint8_t *)f[3];
    rec->result_len = len[3];
    rec->completed_at = f[4] != NULL ? number(f[4], len[4]) : 0;
    rec->read = f[5] != NULL;
    rec->sealed = f[6] != NULL;
    rec->bound = f[7] != NULL;
    if (f[8] != NULL)
        memcpy(rec->start_hash, f[8], 32);
    if (f[9] != NULL) {
        rec->confirmed = 1;
        memcpy(rec->cookie_hash, f[9], 32);
    }
    return 0;
}

/* the record in elements first..first+NFIELDS of a reply: the fields of FIELDS, then the remaining life; 0 / -1 */
static int parse_record(const redisReply *r, size_t first, const uint8_t key[RLY_SESSION_ID_BYTES], store_record_t *rec)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != first + NFIELDS + 1 ||
        r->element[first + NFIELDS]->type != REDIS_REPLY_INTEGER || parse_fields(r->element + first, key, rec) != 0)
        return -1;
    long long ttl = r->element[first + NFIELDS]->integer;
    rec->expires_in_ms = ttl > 0 ? ttl : 0;
    return 0;
}

/* {outcome, record} with outcome in 1..max; the outcome, or 0 when the reply is not that */
static long long outcome_record(const redisReply *reply, long long max, const uint8_t key[RLY_SESSION_ID_BYTES],
                                store_record_t *rec)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0 || reply->element[0]->type != REDIS_REPLY_INTEGER ||
        reply->element[0]->integer < 1 || reply->element[0]->integer > max || parse_record(reply, 1, key, rec) != 0)
        return 0;
    return reply->element[0]->integer;
}

static void on_reply(relay_redis_command_t *super, redisReply *reply)
{
    redis_cmd_t *cmd = (redis_cmd_t *)super;
    uint8_t key[RLY_SESSION_ID_BYTES];
    store_record_t rec;

    if (reply == NULL) { /* the connection is down, went away or timed out */
        cmd_finish(cmd, STORE_UNAVAILABLE, NULL);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        /* the script cache was flushed (or this is a new primary): send the script itself once; this callback runs
         * again with its reply */
        if (!cmd->retried && strncmp(reply->str, "NOSCRIPT", 8) == 0 && cmd->h->cmd != NULL /* not closing */) {
            cmd->retried = 1;
            if (cmd_send_eval(cmd) == 0)
                return;
        }
        /* any other error; after READONLY or MASTERDOWN (a demoted primary) the connection looks for the primary */
        cmd_finish(cmd, STORE_UNAVAILABLE, NULL);
        return;
    }
    memcpy(key, cmd->key, sizeof(key));
    switch (cmd->script) {
    case SCRIPT_CREATE:
        if (reply->type != REDIS_REPLY_INTEGER)
            cmd_finish(cmd, STORE_UNAVAILABLE, NULL);
        else
            cmd_finish(cmd, reply->integer == 1 ? STORE_OK : STORE_FULL, NULL);
        return;
    case SCRIPT_GET:
    case SCRIPT_MARK_READ:
        if (reply->type == REDIS_REPLY_NIL) {
            cmd_finish(cmd, STORE_NOT_FOUND, NULL);
        } else if (parse_record(reply, 0, key, &rec) == 0) {
            cmd_finish(cmd, STORE_OK, &rec);
        } else {
            cmd_finish(cmd, STORE_UNAVAILABLE, NULL);
        }
        return;
    case SCRIPT_COMPLETE: {
        static const store_status_t statuses[] = {STORE_UNAVAILABLE, STORE_OK, STORE_CONFLICT, STORE_SEAL_REQUIRED,
                                                  STORE_FORBIDDEN};
        long long outcome;
        if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 0) {
            cmd_finish(cmd, STORE_NOT_FOUND, NULL);
        } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == NFIELDS + 1 &&
                   reply->element[NFIELDS]->type == REDIS_REPLY_INTEGER && (outcome = reply->element[NFIELDS]->integer) >= 1 &&
                   outcome <= 4 && parse_fields(reply->element, key, &rec) == 0) {
            /* {record fields, outcome} */
            if (outcome == 1) {
                /* written: the result is the caller's, still in this command (the first extra argument); then completed_at */
                rec.result = (const uint8_t *)cmd->resp + cmd->arg_at[0];
                rec.result_len = cmd->arg_len[0];
                rec.completed_at = number(cmd->resp + cmd->arg_at[1], cmd->arg_len[1]);
            }
            cmd_finish(cmd, statuses[outcome], &rec);
        } else {
            cmd_finish(cmd, STORE_UNAVAILABLE, NULL);
        }
    }
        return;
    case SCRIPT_CONFIRM: {
        long long outcome;
        if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 0)
            cmd_finish(cmd, STORE_NOT_FOUND, NULL);
        else if ((outcome = outcome_record(reply, 2, key, &rec)) != 0)
            cmd_finish(cmd, outcome == 1 ? STORE_OK : STORE_CONFLICT, &rec);
        else
            cmd_finish(cmd, STORE_UNAVAILABLE, NULL);
    }
        return;
    case SCRIPT_START_SET:
        cmd_finish(cmd, reply->type == REDIS_REPLY_INTEGER ? STORE_OK : STORE_UNAVAILABLE, NULL);
        return;
    case SCRIPT_START_GET:
        if (reply->type == REDIS_REPLY_NIL) {
            cmd_finish(cmd, STORE_NOT_FOUND, NULL);
        } else if (reply->type == REDIS_REPLY_STRING) {
            memset(&rec, 0, sizeof(rec));
            rec.start_ref = (const uint8_t *)reply->str;
            rec.start_ref_len = reply->len;
            cmd_finish(cmd, STORE_OK, &rec);
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

/*
 * A script's call on the session's Redis key (and INDEX, for the scripts that keep it) with extra arguments (at most
 * RESP_ARGS_MAX - 5): EVALSHA, formatted in RESP straight into the command's one allocation, so callers' buffers are
 * borrowed for the call only. NULL when out of memory.
 */
static redis_cmd_t *cmd_new(redis_handle_t *h, int script, const uint8_t key[RLY_SESSION_ID_BYTES], size_t nargs, const void **args,
                            const size_t *lens, store_cb cb, void *ctx)
{
    char rkey[REDIS_KEY_LEN];
    memcpy(rkey, REDIS_KEY_PREFIX, sizeof(REDIS_KEY_PREFIX) - 1);
    rly_b64url_encode(rkey + sizeof(REDIS_KEY_PREFIX) - 1, key, RLY_SESSION_ID_BYTES);
    rkey[REDIS_KEY_LEN - 1] = '}';

    const void *all[RESP_ARGS_MAX];
    size_t all_lens[RESP_ARGS_MAX], n = 0;
    int indexed = script == SCRIPT_CREATE || script == SCRIPT_MARK_READ || script == SCRIPT_DELETE;
    all[n] = "EVALSHA";
    all_lens[n++] = 7;
    all[n] = h->b->sha[script];
    all_lens[n++] = 40;
    all[n] = indexed ? "2" : "1";
    all_lens[n++] = 1;
    all[n] = rkey;
    all_lens[n++] = REDIS_KEY_LEN;
    if (indexed) {
        all[n] = INDEX;
        all_lens[n++] = sizeof(INDEX) - 1;
    }
    size_t first = n;
    assert(n + nargs <= RESP_ARGS_MAX);
    for (size_t i = 0; i != nargs; ++i) {
        all[n] = args[i];
        all_lens[n++] = lens[i];
    }

    size_t size = resp_size(n, all_lens);
    redis_cmd_t *cmd = malloc(offsetof(redis_cmd_t, resp) + size);
    if (cmd == NULL)
        return NULL;
    *cmd = (redis_cmd_t){.super.cb = on_reply, .h = h, .script = script, .cb = cb, .ctx = ctx, .nelems = n, .len = size};
    memcpy(cmd->key, key, RLY_SESSION_ID_BYTES);
    char *p = resp_header(cmd->resp, '*', n);
    for (size_t i = 0; i != n; ++i) {
        p = resp_bulk(p, all[i], all_lens[i]);
        if (i == 1)
            cmd->tail_at = (size_t)(p - cmd->resp);
        if (i >= first && i < first + 2) {
            cmd->arg_at[i - first] = (size_t)(p - cmd->resp) - 2 - all_lens[i];
            cmd->arg_len[i - first] = all_lens[i];
        }
    }
    assert((size_t)(p - cmd->resp) == size);
    return cmd;
}

/* runs a script (cmd_new); cb runs exactly once */
static void run_script(redis_handle_t *h, int script, const uint8_t key[RLY_SESSION_ID_BYTES], size_t nargs, const void **args,
                       const size_t *lens, store_cb cb, void *ctx)
{
    redis_cmd_t *cmd;
    if (!relay_redis_conn_is_up(h->cmd) || (cmd = cmd_new(h, script, key, nargs, args, lens, cb, ctx)) == NULL) {
        cb(ctx, STORE_UNAVAILABLE, NULL);
        return;
    }
    /* on_reply runs once: with the reply, or NULL (UNAVAILABLE) if the connection fails or the reply is late */
    relay_redis_command_formatted(h->cmd, &cmd->super, cmd->resp, cmd->len);
}

/* ---- per-session subscriptions ---- */

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
    *slot = w;
    return w;
}

static void watch_free(watch_t *w)
{
    watch_t **slot = watch_slot(w->h, w->key);
    assert(*slot == w && w->pending == NULL);
    *slot = w->next;
    relay_redis_deadline_clear(&w->deadline);
    free(w);
}

/* sends SUBSCRIBE or UNSUBSCRIBE for the session's channel, due within the command timeout (or the subscriber
 * connection is failed); 0 / -1 */
static int watch_send(watch_t *w, const char *verb)
{
    redis_handle_t *h = w->h;
    char channel[CHANNEL_LEN + 1];
    channel_of(w->key, channel);
    if (!relay_redis_conn_is_up(h->sub))
        return -1;
    return relay_redis_subscribe(h->sub, verb, channel, CHANNEL_LEN, &w->deadline);
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
    relay_redis_deadline_clear(&w->deadline);
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
 * back (watches_up subscribes what is still wanted). The watch callbacks waiting for a confirmation run now. */
static void watches_down(redis_handle_t *h)
{
    watch_req_t *all = NULL;
    for (size_t i = 0; i != WATCH_BUCKETS; ++i) {
        watch_t **slot = &h->watches[i];
        while (*slot != NULL) {
            watch_t *w = *slot;
            relay_redis_deadline_clear(&w->deadline);
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

/* ---- what the connections tell the handle ---- */

/*
 * Up again (subscribed again, or able to read again): completions may have been missed while down, so every waiter
 * reads again; the subscriber first subscribes every watched session again (each is read once more when its
 * subscription is confirmed, in case a completion came in between).
 */
static void on_cmd_up(void *ctx, int again)
{
    redis_handle_t *h = ctx;
    if (again)
        rly_log_msg(RLY_LOG_INFO, "store_up", "Redis reconnected", 0);
    h->on_notify(h->notify_ctx, NULL);
}

static void on_sub_up(void *ctx, int again)
{
    redis_handle_t *h = ctx;
    if (again)
        rly_log_msg(RLY_LOG_INFO, "store_up", "Redis subscriber reconnected", 0);
    watches_up(h);
    h->on_notify(h->notify_ctx, NULL);
}

static void on_cmd_down(void *ctx, const char *why)
{
    (void)ctx;
    rly_log_msg(RLY_LOG_WARN, "store_down", why, 0);
}

static void on_sub_down(void *ctx, const char *why)
{
    rly_log_msg(RLY_LOG_WARN, "store_down", why, 0);
    watches_down(ctx);
}

/* the subscriber connection's pub/sub replies for the sessions' channels */
static void on_sub_message(void *ctx, const char *kind, const char *channel, size_t len)
{
    redis_handle_t *h = ctx;
    uint8_t key[RLY_SESSION_ID_BYTES];
    if (len != CHANNEL_LEN || memcmp(channel, CHANNEL_PREFIX, sizeof(CHANNEL_PREFIX) - 1) != 0 ||
        rly_session_parse(channel + sizeof(CHANNEL_PREFIX) - 1, RLY_SESSION_ID_LEN, key) != 0)
        return;
    if (strcmp(kind, "message") == 0)
        h->on_notify(h->notify_ctx, key);
    else if (strcmp(kind, "subscribe") == 0)
        on_watch_reply(h, key, 1);
    else if (strcmp(kind, "unsubscribe") == 0)
        on_watch_reply(h, key, 0);
}

static const relay_redis_callbacks_t cmd_callbacks = {on_cmd_up, on_cmd_down, NULL};
static const relay_redis_callbacks_t sub_callbacks = {on_sub_up, on_sub_down, on_sub_message};

/* ---- store operations ---- */

/* a bound session's creation: the session, then its start token's entry (a key of its own, so in its own Cluster slot:
 * two commands, not one script) */
typedef struct st_create_t {
    redis_handle_t *h;
    store_cb cb;
    void *ctx;
    uint8_t start_key[RLY_SESSION_ID_BYTES];
    char ttl_ms[24];
    size_t ref_len;
    uint8_t ref[]; /* the start reference */
} create_t;

static void on_start_set(void *ctx, store_status_t status, const store_record_t *rec)
{
    create_t *c = ctx;
    (void)rec;
    c->cb(c->ctx, status, NULL);
    free(c);
}

static void on_session_set(void *ctx, store_status_t status, const store_record_t *rec)
{
    create_t *c = ctx;
    (void)rec;
    if (status != STORE_OK) {
        on_start_set(c, status, NULL);
        return;
    }
    const void *args[] = {c->ref, c->ttl_ms};
    size_t lens[] = {c->ref_len, strlen(c->ttl_ms)};
    run_script(c->h, SCRIPT_START_SET, c->start_key, 2, args, lens, on_start_set, c);
}

static void op_create(store_t *self, const store_record_t *rec, unsigned ttl, unsigned max, store_cb cb, void *ctx)
{
    redis_handle_t *h = (redis_handle_t *)self;
    char ttl_ms[24], max_text[24];
    int n = snprintf(ttl_ms, sizeof(ttl_ms), "%llu", (unsigned long long)ttl * 1000);
    int m = snprintf(max_text, sizeof(max_text), "%u", max);
    const void *args[] = {rec->token_hash, rec->as_id, rec->meta, ttl_ms, "1", "1", rec->start_hash, max_text};
    size_t lens[] = {
        32, strlen(rec->as_id), rec->meta_len, (size_t)n, rec->sealed ? 1 : 0, rec->bound ? 1 : 0, rec->bound ? 32 : 0, (size_t)m};
    if (!rec->bound) {
        run_script(h, SCRIPT_CREATE, rec->key, 8, args, lens, cb, ctx);
        return;
    }
    create_t *c = malloc(sizeof(*c) + rec->start_ref_len);
    if (c == NULL) {
        cb(ctx, STORE_UNAVAILABLE, NULL);
        return;
    }
    *c = (create_t){h, cb, ctx, {0}, {0}, rec->start_ref_len};
    memcpy(c->start_key, rec->start_hash, sizeof(c->start_key));
    memcpy(c->ttl_ms, ttl_ms, (size_t)n + 1);
    memcpy(c->ref, rec->start_ref, rec->start_ref_len);
    run_script(h, SCRIPT_CREATE, rec->key, 8, args, lens, on_session_set, c);
}

static void op_get_start(store_t *self, const uint8_t token_hash[32], store_cb cb, void *ctx)
{
    run_script((redis_handle_t *)self, SCRIPT_START_GET, token_hash, 0, NULL, NULL, cb, ctx);
}

static void op_confirm(store_t *self, const uint8_t key[RLY_SESSION_ID_BYTES], const uint8_t start_hash[32],
                       const uint8_t cookie_hash[32], store_cb cb, void *ctx)
{
    const void *args[] = {start_hash, cookie_hash};
    size_t lens[] = {32, 32};
    run_script((redis_handle_t *)self, SCRIPT_CONFIRM, key, 2, args, lens, cb, ctx);
}

static void op_get(store_t *self, const uint8_t key[RLY_SESSION_ID_BYTES], store_cb cb, void *ctx)
{
    run_script((redis_handle_t *)self, SCRIPT_GET, key, 0, NULL, NULL, cb, ctx);
}

static void op_complete(store_t *self, const uint8_t key[RLY_SESSION_ID_BYTES], const uint8_t *result, size_t len,
                        int64_t completed_at, int sealed, const uint8_t *cookie_hash, store_cb cb, void *ctx)
{
    char cat[24], channel[CHANNEL_LEN + 1];
    int n = snprintf(cat, sizeof(cat), "%lld", (long long)completed_at);
    channel_of(key, channel);
    /* the result first, completed_at second: on_reply finds them there (arg_at) */
    const void *args[] = {result, cat, "1", channel, cookie_hash != NULL ? cookie_hash : (const uint8_t *)""};
    size_t lens[] = {len, (size_t)n, sealed ? 1 : 0, CHANNEL_LEN, cookie_hash != NULL ? 32 : 0};
    run_script((redis_handle_t *)self, SCRIPT_COMPLETE, key, 5, args, lens, cb, ctx);
}

static void op_mark_read(store_t *self, const uint8_t key[RLY_SESSION_ID_BYTES], store_cb cb, void *ctx)
{
    char ms[24];
    int n = snprintf(ms, sizeof(ms), "%d", RLY_AFTER_READ_TTL * 1000);
    const void *args[] = {ms};
    size_t lens[] = {(size_t)n};
    run_script((redis_handle_t *)self, SCRIPT_MARK_READ, key, 1, args, lens, cb, ctx);
}

static void op_remove(store_t *self, const uint8_t key[RLY_SESSION_ID_BYTES], store_cb cb, void *ctx)
{
    run_script((redis_handle_t *)self, SCRIPT_DELETE, key, 0, NULL, NULL, cb, ctx);
}

static void op_watch(store_t *self, const uint8_t key[RLY_SESSION_ID_BYTES], store_cb cb, void *ctx)
{
    redis_handle_t *h = (redis_handle_t *)self;
    watch_t *w = watch_get(h, key);
    if (w == NULL) {
        /* out of memory: the waiter still reads, and reads again when its wait ends */
        cb(ctx, STORE_OK, NULL);
        return;
    }
    w->wanted = 1;
    if (!relay_redis_conn_is_up(h->sub)) {
        /* subscribed when the connection is back (watches_up), and then read again: wait meanwhile */
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

static void op_unwatch(store_t *self, const uint8_t key[RLY_SESSION_ID_BYTES])
{
    redis_handle_t *h = (redis_handle_t *)self;
    watch_t *w = watch_find(h, key);
    if (w == NULL)
        return;
    w->wanted = 0;
    if (w->state == SUB_NONE)
        watch_free(w);
    else if (w->state == SUB_ACTIVE)
        watch_leave(w);
    /* JOINING: unsubscribed when the SUBSCRIBE is answered; LEAVING: already on its way */
}

static void op_close(store_t *self)
{
    redis_handle_t *h = (redis_handle_t *)self;
    relay_redis_conn_t *cmd = h->cmd, *sub = h->sub;
    /* what the callbacks run from here on do finds the store down */
    h->cmd = NULL;
    h->sub = NULL;
    relay_redis_conn_close(cmd); /* commands in flight: UNAVAILABLE */
    relay_redis_conn_close(sub);
    watches_down(h); /* the watch callbacks waiting for a confirmation run */
    for (size_t i = 0; i != WATCH_BUCKETS; ++i) {
        while (h->watches[i] != NULL) {
            watch_t *w = h->watches[i];
            h->watches[i] = w->next;
            free(w);
        }
    }
    free(h);
}

/* ---- the back-end ---- */

static store_t *backend_open(store_backend_t *self, h2o_loop_t *loop, store_notify_cb on_notify, void *notify_ctx)
{
    redis_backend_t *b = (redis_backend_t *)self;
    redis_handle_t *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->super = (store_t){.create = op_create,
                         .get = op_get,
                         .complete = op_complete,
                         .mark_read = op_mark_read,
                         .remove = op_remove,
                         .watch = op_watch,
                         .unwatch = op_unwatch,
                         .close = op_close,
                         .get_start = op_get_start,
                         .confirm = op_confirm};
    h->b = b;
    h->on_notify = on_notify;
    h->notify_ctx = notify_ctx;
    /* both connect now; while Redis is away the relay runs and answers 503, and the connections keep trying */
    if ((h->cmd = relay_redis_conn_open(b->target, loop, NULL, &cmd_callbacks, h)) == NULL ||
        (h->sub = relay_redis_conn_open(b->target, loop, CHANNEL, &sub_callbacks, h)) == NULL)
        goto Error;
    return &h->super;
Error:
    if (h->cmd != NULL)
        relay_redis_conn_close(h->cmd);
    free(h);
    return NULL;
}

static int backend_ready(store_backend_t *self)
{
    return relay_redis_target_ready(((redis_backend_t *)self)->target);
}

static void backend_destroy(store_backend_t *self)
{
    redis_backend_t *b = (redis_backend_t *)self;
    relay_redis_target_free(b->target);
    free(b);
}

store_backend_t *store_redis_new(const store_redis_options_t *opts, char *err, size_t errlen)
{
    relay_redis_target_options_t topts = {opts->url,      opts->sentinels,          opts->master,
                                          opts->password, opts->command_timeout_ms, opts->connect_timeout_ms,
                                          opts->username};
    redis_backend_t *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    b->super = (store_backend_t){"redis", backend_open, backend_ready, backend_destroy};
    if ((b->target = relay_redis_target_new(&topts, err, errlen)) == NULL) {
        free(b);
        return NULL;
    }
    for (size_t i = 0; i != SCRIPT_COUNT; ++i) {
        unsigned char md[20];
        unsigned mdlen;
        EVP_Digest(scripts[i], strlen(scripts[i]), md, &mdlen, EVP_sha1(), NULL);
        for (size_t j = 0; j != 20; ++j)
            snprintf(b->sha[i] + 2 * j, 3, "%02x", md[j]);
    }
    return &b->super;
}
