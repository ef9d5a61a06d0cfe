/* test_store_redis.c: relay/store_redis.c through the store conformance suite against a real redis-server, plus faults */
#include "store_redis.c" /* the RESP formatter and cmd_new are static (h2o's t/00unit way) */
#include "store_conformance.h"
#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include "b64url.h"
#include "log.h"

static struct {
    char dir[64];
    int port;
    pid_t pid;
    char url[64];
} server;

static int free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd != -1 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd != -1)
        close(fd);
    return port;
}

static redisContext *client(void)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", server.port, tv);
    if (c != NULL && c->err != 0) {
        redisFree(c);
        return NULL;
    }
    return c;
}

static int server_start(void)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", server.port);
    char *argv[] = {"redis-server", "--port", port,    "--bind",   "127.0.0.1",  "--save",  "",
                    "--appendonly", "no",     "--dir", server.dir, "--loglevel", "warning", NULL};
    /* the server dies with this test (PR_SET_PDEATHSIG): a test that crashes must not leave it holding ctest's pipes,
     * which ctest would report as a timeout instead of the crash */
    pid_t parent = getpid();
    if ((server.pid = fork()) < 0)
        return -1;
    if (server.pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(127);
        execvp("redis-server", argv);
        _exit(127);
    }
    for (int i = 0; i != 100; ++i) {
        redisContext *c = client();
        if (c != NULL) {
            redisReply *r = redisCommand(c, "PING");
            int ok = r != NULL && r->type == REDIS_REPLY_STATUS;
            freeReplyObject(r);
            redisFree(c);
            if (ok)
                return 0;
        }
        usleep(50000);
    }
    return -1;
}

static void server_stop(void)
{
    if (server.pid > 0) {
        kill(server.pid, SIGKILL);
        waitpid(server.pid, NULL, 0);
        server.pid = 0;
    }
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(server.dir, sizeof(server.dir), "/tmp/authrelay-redis-XXXXXX");
    if (mkdtemp(server.dir) == NULL || (server.port = free_port()) < 0)
        return -1;
    snprintf(server.url, sizeof(server.url), "redis://127.0.0.1:%d/0", server.port);
    return server_start();
}

static int group_teardown(void **state)
{
    (void)state;
    server_stop();
    rmdir(server.dir);
    return 0;
}

static store_backend_t *make_redis(void)
{
    char err[256];
    store_redis_options_t opts = {server.url, NULL, NULL, NULL, 500, 500, NULL};
    return store_redis_new(&opts, err, sizeof(err));
}

static void command(const char *cmd)
{
    redisContext *c = client();
    assert_non_null(c);
    redisReply *r = redisCommand(c, cmd);
    assert_non_null(r);
    freeReplyObject(r);
    redisFree(c);
}

/* a session is one hash named with its store key in braces (one Cluster slot), with a TTL, holding no plaintext */
static void test_layout(void **state)
{
    conf_fixture_t *fx = *state;
    conf_session_t s;
    conf_session_init(&s, "auth.atlassian.com");
    assert_int_equal(conf_create(fx, &s, 120), STORE_OK);
    char rkey[64], key_text[RLY_SESSION_ID_LEN + 1];
    rly_b64url_encode(key_text, s.rec.key, sizeof(s.rec.key));
    snprintf(rkey, sizeof(rkey), "authrelay:{%s}", key_text);
    redisContext *c = client();
    assert_non_null(c);
    redisReply *r = redisCommand(c, "PTTL %s", rkey);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_true(r->integer > 110000 && r->integer <= 120000);
    freeReplyObject(r);
    r = redisCommand(c, "TYPE %s", rkey);
    assert_string_equal(r->str, "hash");
    freeReplyObject(r);
    redisFree(c);
}

/* one reply of a fresh connection: an integer, or -2 when the reply is nil, -3 when it is anything else */
static long long integer_of(const char *fmt, const char *key)
{
    redisContext *c = client();
    assert_non_null(c);
    redisReply *r = redisCommand(c, fmt, key);
    assert_non_null(r);
    long long n = r->type == REDIS_REPLY_INTEGER ? r->integer : r->type == REDIS_REPLY_NIL ? -2 : -3;
    if (r->type == REDIS_REPLY_STRING) { /* ZSCORE: a number as a string */
        char *end;
        n = strtoll(r->str, &end, 10);
        if (end == r->str)
            n = -3;
    }
    freeReplyObject(r);
    redisFree(c);
    return n;
}

static long long unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void flush_all(void)
{
    command("FLUSHALL");
}

/* the live sessions' index: a sorted set authrelay:sessions of the sessions' Redis keys (hashes, never an id) scored
 * with their expiry, with a TTL; the first read moves the score to the shortened life; deletion removes the member */
static void test_index(void **state)
{
    conf_fixture_t *fx = *state;
    const uint8_t result[] = "result";
    conf_session_t s, t;
    conf_session_init(&s, "auth.atlassian.com");
    conf_session_init(&t, "auth.atlassian.com");
    flush_all();
    long long t0 = unix_ms();
    assert_int_equal(conf_create_max(fx, &s, 120, 10), STORE_OK);
    assert_int_equal(conf_create_max(fx, &t, 90, 10), STORE_OK);
    char rkey[64], key_text[RLY_SESSION_ID_LEN + 1];
    rly_b64url_encode(key_text, s.rec.key, sizeof(s.rec.key));
    snprintf(rkey, sizeof(rkey), "authrelay:{%s}", key_text);

    redisContext *c = client();
    assert_non_null(c);
    redisReply *r = redisCommand(c, "TYPE authrelay:sessions");
    assert_string_equal(r->str, "zset");
    freeReplyObject(r);
    r = redisCommand(c, "ZRANGE authrelay:sessions 0 -1");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 2);
    for (size_t i = 0; i != r->elements; ++i) /* the members are Redis keys of sessions, nothing else */
        assert_int_equal(integer_of("EXISTS %s", r->element[i]->str), 1);
    freeReplyObject(r);
    redisFree(c);
    long long score = integer_of("ZSCORE authrelay:sessions %s", rkey);
    assert_true(score >= t0 + 119000 && score <= unix_ms() + 120000);
    long long pttl = integer_of("PTTL %s", "authrelay:sessions"); /* the latest expiry */
    assert_true(pttl > 115000 && pttl <= 120000);

    assert_int_equal(conf_complete(fx, s.rec.key, result, sizeof(result), 1000, NULL), STORE_OK);
    assert_int_equal(conf_mark_read(fx, s.rec.key, NULL), STORE_OK);
    score = integer_of("ZSCORE authrelay:sessions %s", rkey);
    assert_true(score <= unix_ms() + RLY_AFTER_READ_TTL * 1000 && score > unix_ms() + RLY_AFTER_READ_TTL * 1000 - 5000);
    assert_int_equal(conf_remove(fx, s.rec.key), STORE_OK);
    assert_int_equal(integer_of("ZSCORE authrelay:sessions %s", rkey), -2);
    assert_int_equal(integer_of("ZCARD %s", "authrelay:sessions"), 1);
}

/* Redis at maxmemory with noeviction refuses writes (OOM): a create is STORE_UNAVAILABLE, nothing half written, and
 * the sessions already there are still read; below the limit again, creates succeed */
static void test_oom(void **state)
{
    conf_fixture_t *fx = *state;
    conf_session_t s;
    conf_session_init(&s, "auth.atlassian.com");
    flush_all();
    assert_int_equal(conf_create_max(fx, &s, CONF_TTL, 1000), STORE_OK);
    command("CONFIG SET maxmemory-policy noeviction");
    command("CONFIG SET maxmemory 1"); /* below what it uses now: every write that may grow memory fails */
    conf_session_t more;
    conf_session_init(&more, "auth.atlassian.com");
    assert_int_equal(conf_create_max(fx, &more, CONF_TTL, 1000), STORE_UNAVAILABLE);
    conf_op_t op;
    assert_int_equal(conf_get(fx, more.rec.key, &op), STORE_NOT_FOUND);
    conf_op_free(&op);
    assert_int_equal(conf_get(fx, s.rec.key, &op), STORE_OK);
    conf_op_free(&op);
    command("CONFIG SET maxmemory 0");
    assert_int_equal(conf_create_max(fx, &more, CONF_TTL, 1000), STORE_OK);
    assert_int_equal(integer_of("ZCARD %s", "authrelay:sessions"), 2);
}

/* EVALSHA falls back to EVAL after the script cache is flushed */
static void test_noscript(void **state)
{
    conf_fixture_t *fx = *state;
    conf_session_t s;
    conf_session_init(&s, "auth.atlassian.com");
    command("SCRIPT FLUSH");
    assert_int_equal(conf_create(fx, &s, CONF_TTL), STORE_OK);
    conf_op_t op;
    assert_int_equal(conf_get(fx, s.rec.key, &op), STORE_OK);
    conf_op_free(&op);
}

/* the callback's write after a flushed script cache: NOSCRIPT, then the same arguments behind EVAL (the tail of the
 * formatted command reused); written once, first writer still wins, the record answers with the caller's result */
static void test_noscript_complete(void **state)
{
    conf_fixture_t *fx = *state;
    static uint8_t result[CONF_RESULT_LEN];
    conf_fill_result(result, sizeof(result), 3);
    conf_session_t s;
    conf_session_init(&s, "auth.atlassian.com");
    assert_int_equal(conf_create(fx, &s, CONF_TTL), STORE_OK);
    command("SCRIPT FLUSH");
    conf_op_t op;
    assert_int_equal(conf_complete(fx, s.rec.key, result, sizeof(result), 1764395000999, &op), STORE_OK);
    assert_int_equal(op.rec.result_len, sizeof(result));
    assert_memory_equal(op.rec.result, result, sizeof(result));
    assert_int_equal(op.rec.completed_at, 1764395000999);
    assert_memory_equal(op.rec.meta, s.meta, sizeof(s.meta));
    conf_op_free(&op);
    command("SCRIPT FLUSH");
    assert_int_equal(conf_complete(fx, s.rec.key, (const uint8_t *)"other", 5, 2000, &op), STORE_CONFLICT);
    assert_int_equal(op.rec.result_len, sizeof(result));
    assert_memory_equal(op.rec.result, result, sizeof(result));
    conf_op_free(&op);
    assert_int_equal(conf_get(fx, s.rec.key, &op), STORE_OK);
    assert_int_equal(op.rec.result_len, sizeof(result));
    assert_memory_equal(op.rec.result, result, sizeof(result));
    assert_int_equal(op.rec.completed_at, 1764395000999);
    conf_op_free(&op);
}

/* RESP bytes, exactly: headers, empty and binary bulk strings, and resp_size at every digit boundary */
static void test_resp_bytes(void **state)
{
    (void)state;
    char buf[256];
    char *p = resp_header(buf, '*', 3);
    p = resp_bulk(p, "SET", 3);
    p = resp_bulk(p, "", 0);
    p = resp_bulk(p, "a\r\n\0b", 5);
    static const char want[] = "*3\r\n$3\r\nSET\r\n$0\r\n\r\n$5\r\na\r\n\0b\r\n";
    assert_int_equal(p - buf, sizeof(want) - 1);
    assert_memory_equal(buf, want, sizeof(want) - 1);
    size_t lens[] = {3, 0, 5};
    assert_int_equal(resp_size(3, lens), sizeof(want) - 1);
    static const size_t ns[] = {0, 9, 10, 99, 100, 999, 1000, 16384, 4294967296u};
    for (size_t i = 0; i != sizeof(ns) / sizeof(ns[0]); ++i) {
        char expect[32];
        int n = snprintf(expect, sizeof(expect), "$%zu\r\n", ns[i]);
        assert_int_equal(resp_header(buf, '$', ns[i]) - buf, n);
        assert_memory_equal(buf, expect, (size_t)n);
        assert_int_equal(resp_digits(ns[i]), (size_t)n - 3);
    }
}

/* the commands as formatted here are byte for byte what hiredis's own formatter makes of the same arguments (the
 * callback's write with a binary result holding CRLFs, no cookie; a create with the index key); arg_at finds the
 * result and completed_at, tail_at the arguments after the hash */
static void test_resp_commands(void **state)
{
    (void)state;
    redis_backend_t b = {0};
    memcpy(b.sha[SCRIPT_COMPLETE], "0123456789abcdef0123456789abcdef01234567", 41);
    memcpy(b.sha[SCRIPT_CREATE], "76543210fedcba9876543210fedcba9876543210", 41);
    redis_handle_t h = {.b = &b};
    uint8_t key[RLY_SESSION_ID_BYTES], result[3000];
    for (size_t i = 0; i != sizeof(key); ++i)
        key[i] = (uint8_t)(i * 7);
    for (size_t i = 0; i != sizeof(result); ++i)
        result[i] = (uint8_t)(i % 3 == 0 ? '\r' : i % 3 == 1 ? '\n' : i);
    char rkey[REDIS_KEY_LEN + 1], channel[CHANNEL_LEN + 1];
    memcpy(rkey, REDIS_KEY_PREFIX, sizeof(REDIS_KEY_PREFIX) - 1);
    rly_b64url_encode(rkey + sizeof(REDIS_KEY_PREFIX) - 1, key, sizeof(key));
    rkey[REDIS_KEY_LEN - 1] = '}';
    channel_of(key, channel);

    const void *args[] = {result, "1764395000123", "1", channel, ""};
    size_t lens[] = {sizeof(result), 13, 1, CHANNEL_LEN, 0};
    redis_cmd_t *cmd = cmd_new(&h, SCRIPT_COMPLETE, key, 5, args, lens, NULL, NULL);
    assert_non_null(cmd);
    const char *argv[] = {"EVALSHA", b.sha[SCRIPT_COMPLETE], "1", rkey, (const char *)result, "1764395000123", "1", channel, ""};
    size_t argvlen[] = {7, 40, 1, REDIS_KEY_LEN, sizeof(result), 13, 1, CHANNEL_LEN, 0};
    char *ref;
    int reflen = redisFormatCommandArgv(&ref, 9, argv, argvlen);
    assert_true(reflen > 0);
    assert_int_equal(cmd->len, (size_t)reflen);
    assert_memory_equal(cmd->resp, ref, (size_t)reflen);
    assert_int_equal(cmd->nelems, 9);
    assert_memory_equal(cmd->resp + cmd->tail_at, "$1\r\n1\r\n$34\r\nauthrelay:{", 23); /* numkeys, then the key */
    assert_int_equal(cmd->arg_len[0], sizeof(result));
    assert_memory_equal(cmd->resp + cmd->arg_at[0], result, sizeof(result));
    assert_int_equal(cmd->arg_len[1], 13);
    assert_memory_equal(cmd->resp + cmd->arg_at[1], "1764395000123", 13);
    assert_memory_equal(cmd->key, key, sizeof(key));
    redisFreeCommand(ref);
    free(cmd);

    uint8_t token_hash[32] = {1, 2, 3};
    const void *cargs[] = {token_hash, "auth.atlassian.com", "meta", "600000", "", "", "", "0"};
    size_t clens[] = {32, 18, 4, 6, 0, 0, 0, 1};
    assert_non_null(cmd = cmd_new(&h, SCRIPT_CREATE, key, 8, cargs, clens, NULL, NULL));
    const char *cargv[] = {"EVALSHA",
                           b.sha[SCRIPT_CREATE],
                           "2",
                           rkey,
                           INDEX,
                           (const char *)token_hash,
                           "auth.atlassian.com",
                           "meta",
                           "600000",
                           "",
                           "",
                           "",
                           "0"};
    size_t cargvlen[] = {7, 40, 1, REDIS_KEY_LEN, sizeof(INDEX) - 1, 32, 18, 4, 6, 0, 0, 0, 1};
    assert_true((reflen = redisFormatCommandArgv(&ref, 13, cargv, cargvlen)) > 0);
    assert_int_equal(cmd->len, (size_t)reflen);
    assert_memory_equal(cmd->resp, ref, (size_t)reflen);
    assert_int_equal(cmd->nelems, 13);
    redisFreeCommand(ref);
    free(cmd);
}

/* a Redis that stops answering trips the command timeout: UNAVAILABLE in about the timeout, then it recovers */
static void test_command_timeout(void **state)
{
    conf_fixture_t *fx = *state;
    conf_session_t s;
    conf_session_init(&s, "auth.atlassian.com");
    command("CLIENT PAUSE 1500 ALL");
    int64_t t0 = conf_now_ms();
    assert_int_equal(conf_create(fx, &s, CONF_TTL), STORE_UNAVAILABLE);
    int64_t took = conf_now_ms() - t0;
    assert_true(took >= 400 && took < 1400);
    /* reconnects (the pause ends at 1.5 s) and answers again */
    conf_run_for(fx->loop, 1300);
    assert_int_equal(conf_wait_up(fx->loop, fx->store), 0);
    assert_int_equal(conf_create(fx, &s, CONF_TTL), STORE_OK);
}

/* Redis restarts: operations fail fast while it is away, the handle reconnects by itself, and the subscriber's return
 * is announced ("anything may have completed") so waiters re-read */
static void test_restart(void **state)
{
    conf_fixture_t *fx = *state;
    conf_session_t s;
    conf_session_init(&s, "auth.atlassian.com");
    int any_before = fx->notes.count_any;
    server_stop();
    conf_run_for(fx->loop, 100);
    int64_t t0 = conf_now_ms();
    assert_int_equal(conf_create(fx, &s, CONF_TTL), STORE_UNAVAILABLE);
    assert_true(conf_now_ms() - t0 < 100);
    /* a waiter may still wait: it reads again when the subscriber is back (count_any below) or when its wait ends */
    assert_int_equal(conf_watch(fx, s.rec.key), STORE_OK);
    assert_int_equal(fx->backend->ready(fx->backend), 0);
    assert_int_equal(server_start(), 0);
    assert_int_equal(conf_wait_up(fx->loop, fx->store), 0);
    conf_run_for(fx->loop, 200);
    assert_true(fx->notes.count_any > any_before);
    assert_int_equal(conf_create(fx, &s, CONF_TTL), STORE_OK);
    assert_int_equal(fx->backend->ready(fx->backend), 1);
}

/* subscribers of a session's channel, as Redis counts them */
static long long numsub(const uint8_t key[RLY_SESSION_ID_BYTES])
{
    char text[RLY_SESSION_ID_LEN + 1];
    rly_b64url_encode(text, key, RLY_SESSION_ID_BYTES);
    redisContext *c = client();
    assert_non_null(c);
    redisReply *r = redisCommand(c, "PUBSUB NUMSUB authrelay:done:%s", text);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 2);
    long long n = r->element[1]->integer;
    freeReplyObject(r);
    redisFree(c);
    return n;
}

static long long channels_of_sessions(void)
{
    redisContext *c = client();
    assert_non_null(c);
    redisReply *r = redisCommand(c, "PUBSUB CHANNELS authrelay:done:*");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    long long n = (long long)r->elements;
    freeReplyObject(r);
    redisFree(c);
    return n;
}

/* only watched sessions are subscribed, one channel each: a completion reaches the handles that wait for it and no
 * other; unwatching unsubscribes */
static void test_channels(void **state)
{
    conf_fixture_t *fx = *state;
    const uint8_t result[] = "result";
    conf_session_t s, t;
    conf_session_init(&s, "auth.atlassian.com");
    conf_session_init(&t, "auth.atlassian.com");
    assert_int_equal(conf_create(fx, &s, CONF_TTL), STORE_OK);
    assert_int_equal(conf_create(fx, &t, CONF_TTL), STORE_OK);
    assert_int_equal(channels_of_sessions(), 0);
    assert_int_equal(conf_watch(fx, s.rec.key), STORE_OK);
    assert_int_equal(numsub(s.rec.key), 1); /* confirmed before the watch called back */
    assert_int_equal(numsub(t.rec.key), 0);
    assert_int_equal(conf_watch(fx, s.rec.key), STORE_OK); /* twice: still one subscription */
    assert_int_equal(numsub(s.rec.key), 1);

    assert_int_equal(conf_complete(fx, t.rec.key, result, sizeof(result), 1000, NULL), STORE_OK);
    conf_run_for(fx->loop, 50);
    assert_int_equal(fx->notes.count, 0); /* t is nobody's here */
    assert_int_equal(conf_complete(fx, s.rec.key, result, sizeof(result), 1000, NULL), STORE_OK);
    if (conf_pump(fx->loop, &fx->notes.count, 1, CONF_WAIT_MS) != 0)
        fail_msg("no notification within %d ms", CONF_WAIT_MS);
    assert_int_equal(conf_notes_of(&fx->notes, s.rec.key), 1);

    fx->store->unwatch(fx->store, s.rec.key);
    for (int i = 0; i != 50 && numsub(s.rec.key) != 0; ++i)
        conf_run_for(fx->loop, 10);
    assert_int_equal(numsub(s.rec.key), 0);
    assert_int_equal(channels_of_sessions(), 0);
}

/* watched again while its UNSUBSCRIBE is in flight: subscribed again after the UNSUBSCRIBE is answered (hiredis 0.14
 * would drop a SUBSCRIBE that crossed it), and notified */
static void test_watch_while_leaving(void **state)
{
    conf_fixture_t *fx = *state;
    const uint8_t result[] = "result";
    conf_session_t s;
    conf_session_init(&s, "auth.atlassian.com");
    assert_int_equal(conf_create(fx, &s, CONF_TTL), STORE_OK);
    for (int round = 0; round != 20; ++round) {
        assert_int_equal(conf_watch(fx, s.rec.key), STORE_OK);
        fx->store->unwatch(fx->store, s.rec.key); /* UNSUBSCRIBE sent, not answered yet */
    }
    conf_op_t op = {0};
    fx->store->unwatch(fx->store, s.rec.key);
    fx->store->watch(fx->store, s.rec.key, conf_op_cb, &op);
    conf_await(fx, &op);
    assert_int_equal(op.status, STORE_OK);
    conf_op_free(&op);
    assert_int_equal(numsub(s.rec.key), 1);
    assert_int_equal(conf_complete(fx, s.rec.key, result, sizeof(result), 1000, NULL), STORE_OK);
    if (conf_pump(fx->loop, &fx->notes.count, 1, CONF_WAIT_MS) != 0)
        fail_msg("no notification after watching again while leaving");
    assert_int_equal(conf_notes_of(&fx->notes, s.rec.key), 1);
    fx->store->unwatch(fx->store, s.rec.key);
}

/* after Redis restarts, the watched sessions are subscribed again and read once more (a completion may have come in
 * between); a completion after that notifies as before */
static void test_restart_resubscribes(void **state)
{
    conf_fixture_t *fx = *state;
    const uint8_t result[] = "result";
    conf_session_t s;
    conf_session_init(&s, "auth.atlassian.com");
    assert_int_equal(conf_watch(fx, s.rec.key), STORE_OK);
    server_stop();
    conf_run_for(fx->loop, 100);
    assert_int_equal(server_start(), 0);
    assert_int_equal(conf_wait_up(fx->loop, fx->store), 0);
    for (int i = 0; i != 100 && conf_notes_of(&fx->notes, s.rec.key) == 0; ++i)
        conf_run_for(fx->loop, 20);
    assert_int_equal(conf_notes_of(&fx->notes, s.rec.key), 1); /* the re-read once subscribed again */
    assert_int_equal(numsub(s.rec.key), 1);
    assert_int_equal(conf_create(fx, &s, CONF_TTL), STORE_OK);
    assert_int_equal(conf_complete(fx, s.rec.key, result, sizeof(result), 1000, NULL), STORE_OK);
    for (int i = 0; i != 100 && conf_notes_of(&fx->notes, s.rec.key) < 2; ++i)
        conf_run_for(fx->loop, 20);
    assert_int_equal(conf_notes_of(&fx->notes, s.rec.key), 2);
    fx->store->unwatch(fx->store, s.rec.key);
}

/* a Redis that stops answering a SUBSCRIBE: the watch still calls back, in about the command timeout, and the waiter
 * reads (nothing hangs); the subscriber reconnects afterwards */
static void test_subscribe_timeout(void **state)
{
    conf_fixture_t *fx = *state;
    conf_session_t s;
    conf_session_init(&s, "auth.atlassian.com");
    command("CLIENT PAUSE 1500 ALL");
    int64_t t0 = conf_now_ms();
    assert_int_equal(conf_watch(fx, s.rec.key), STORE_OK);
    int64_t took = conf_now_ms() - t0;
    assert_true(took >= 400 && took < 1400);
    conf_run_for(fx->loop, 1300);
    assert_int_equal(conf_wait_up(fx->loop, fx->store), 0);
    for (int i = 0; i != 100 && numsub(s.rec.key) != 1; ++i)
        conf_run_for(fx->loop, 20);
    assert_int_equal(numsub(s.rec.key), 1); /* still wanted: subscribed once the connection is back */
    fx->store->unwatch(fx->store, s.rec.key);
}

/* connections of a Redis ACL user, as CLIENT LIST counts them */
static int clients_of(const char *user)
{
    char needle[64];
    redisContext *c = client();
    assert_non_null(c);
    redisReply *r = redisCommand(c, "CLIENT LIST");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    int n = 0;
    snprintf(needle, sizeof(needle), " user=%s ", user);
    for (const char *p = r->str; (p = strstr(p, needle)) != NULL; ++p)
        ++n;
    freeReplyObject(r);
    redisFree(c);
    return n;
}

/* a user name in the URL logs in with AUTH user password (Redis ACLs; the configuration still refuses user names), on
 * the handle's connections and on the readiness probe's; a wrong password keeps the store unready */
static void test_acl_user(void **state)
{
    char url[128], err[256];
    (void)state;
    command("ACL SETUSER authrelay-acl on >acl-secret ~* &* +@all");

    snprintf(url, sizeof(url), "redis://authrelay-acl:wrong@127.0.0.1:%d/0", server.port);
    store_redis_options_t bad = {url, NULL, NULL, NULL, 500, 500, NULL};
    store_backend_t *b = store_redis_new(&bad, err, sizeof(err));
    assert_non_null(b);
    assert_int_equal(b->ready(b), 0);
    b->destroy(b);

    snprintf(url, sizeof(url), "redis://authrelay-acl:acl-secret@127.0.0.1:%d/0", server.port);
    store_redis_options_t opts = {url, NULL, NULL, NULL, 500, 500, NULL};
    assert_non_null(b = store_redis_new(&opts, err, sizeof(err)));
    h2o_evloop_t *loop = h2o_evloop_create();
    conf_notes_t notes = {.thread = pthread_self()};
    store_t *store = b->open(b, loop, conf_on_notify, &notes);
    assert_non_null(store);
    assert_int_equal(conf_wait_up(loop, store), 0);
    for (int i = 0; i != 100 && !b->ready(b); ++i)
        conf_run_for(loop, 20);
    assert_int_equal(b->ready(b), 1);
    assert_int_equal(clients_of("authrelay-acl"), 3); /* command, subscriber, probe */

    store->close(store);
    h2o_evloop_run(loop, 0);
    h2o_evloop_destroy(loop);
    b->destroy(b);

    /* the user given apart (--redis-username) overrides the URL's, which has none here */
    snprintf(url, sizeof(url), "redis://:acl-secret@127.0.0.1:%d/0", server.port);
    store_redis_options_t named = {url, NULL, NULL, NULL, 500, 500, "authrelay-acl"};
    assert_non_null(b = store_redis_new(&named, err, sizeof(err)));
    for (int i = 0; i != 50 && !b->ready(b); ++i)
        usleep(20000);
    assert_int_equal(b->ready(b), 1);
    b->destroy(b);
    store_redis_options_t unnamed = {url, NULL, NULL, NULL, 500, 500, NULL};
    assert_non_null(b = store_redis_new(&unnamed, err, sizeof(err)));
    assert_int_equal(b->ready(b), 0); /* the default user has another password */
    b->destroy(b);
    command("ACL DELUSER authrelay-acl");
}

/* Redis on a unix socket that is not there: every attempt fails before it starts (hiredis says so at once, unlike a
 * refused TCP connection); the store answers UNAVAILABLE, keeps retrying with backoff, is not ready and closes cleanly */
static void test_unix_socket_absent(void **state)
{
    char err[256];
    (void)state;
    store_redis_options_t opts = {"unix:///nonexistent/authrelay-test.sock", NULL, NULL, NULL, 200, 200, NULL};
    store_backend_t *b = store_redis_new(&opts, err, sizeof(err));
    assert_non_null(b);
    h2o_evloop_t *loop = h2o_evloop_create();
    conf_notes_t notes = {.thread = pthread_self()};
    store_t *store = b->open(b, loop, conf_on_notify, &notes);
    assert_non_null(store);
    conf_run_for(loop, 1000); /* retries and connect timeouts */
    conf_op_t op = {0};
    uint8_t key[RLY_SESSION_ID_BYTES] = {1};
    store->get(store, key, conf_op_cb, &op);
    assert_int_equal(op.calls, 1);
    assert_int_equal(op.status, STORE_UNAVAILABLE);
    assert_int_equal(b->ready(b), 0);
    store->close(store);
    h2o_evloop_run(loop, 0);
    h2o_evloop_destroy(loop);
    b->destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        STORE_CONFORMANCE_TESTS,
        STORE_CONFORMANCE_TEST(test_layout),
        STORE_CONFORMANCE_TEST(test_index),
        STORE_CONFORMANCE_TEST(test_oom),
        STORE_CONFORMANCE_TEST(test_noscript),
        STORE_CONFORMANCE_TEST(test_noscript_complete),
        STORE_CONFORMANCE_TEST(test_command_timeout),
        STORE_CONFORMANCE_TEST(test_restart),
        STORE_CONFORMANCE_TEST(test_channels),
        STORE_CONFORMANCE_TEST(test_watch_while_leaving),
        STORE_CONFORMANCE_TEST(test_restart_resubscribes),
        STORE_CONFORMANCE_TEST(test_subscribe_timeout),
        cmocka_unit_test(test_resp_bytes),
        cmocka_unit_test(test_resp_commands),
        cmocka_unit_test(test_acl_user),
        cmocka_unit_test(test_unix_socket_absent),
    };
    signal(SIGPIPE, SIG_IGN);
    rly_log_init(RLY_LOG_ERROR, open("/dev/null", O_WRONLY)); /* store_down / store_up lines are expected here */
    store_conformance_use(make_redis);
    store_conformance_use_empty(flush_all);
    return cmocka_run_group_tests_name("store_redis", tests, group_setup, group_teardown);
}
