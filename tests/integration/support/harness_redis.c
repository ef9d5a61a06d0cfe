/* harness_redis.c: redis-server and redis-sentinel processes, a blocking Redis client and cross-replica flows for the tests */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "harness_redis.h"
#include "b64url.h"
#include "ids.h"

#define PROCS_MAX 32

static rly_redis_t *procs[PROCS_MAX];

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- processes ---- */

static void kill_all(void)
{
    for (size_t i = 0; i < PROCS_MAX; i++) {
        if (procs[i] != NULL && procs[i]->pid > 0) {
            kill(procs[i]->pid, SIGKILL);
            waitpid(procs[i]->pid, NULL, 0);
            procs[i]->pid = 0;
        }
    }
}

static void proc_register(rly_redis_t *r)
{
    static int registered;
    if (!registered) {
        rly_tmpdir(); /* its removal was registered first, so it runs after kill_all */
        atexit(kill_all);
        registered = 1;
    }
    for (size_t i = 0; i < PROCS_MAX; i++)
        if (procs[i] == r)
            return;
    for (size_t i = 0; i < PROCS_MAX; i++) {
        if (procs[i] == NULL) {
            procs[i] = r;
            return;
        }
    }
    fputs("harness: too many Redis processes\n", stderr);
    abort();
}

static void proc_unregister(rly_redis_t *r)
{
    for (size_t i = 0; i < PROCS_MAX; i++)
        if (procs[i] == r)
            procs[i] = NULL;
}

/* fork + exec with stdout and stderr appended to log; the child gets SIGKILL when the test program dies */
static pid_t spawn_bg(char *const argv[], const char *log)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* the child: only async-signal-safe calls until exec */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    int in = open("/dev/null", O_RDONLY), out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (in < 0 || out < 0)
        _exit(127);
    dup2(in, 0);
    dup2(out, 1);
    dup2(out, 2);
    close_range(3, ~0U, 0);
    sigset_t empty;
    sigemptyset(&empty);
    sigprocmask(SIG_SETMASK, &empty, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    execvp(argv[0], argv);
    _exit(127);
}

pid_t rly_bg_start(char *const argv[], const char *log)
{
    return spawn_bg(argv, log);
}

void rly_bg_stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    double deadline = rly_now() + 5.0;
    while (waitpid(pid, NULL, WNOHANG) == 0) {
        if (rly_now() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return;
        }
        sleep_ms(5);
    }
}

/* 1 if the process exited (then reaped, pid 0) */
static int reap(rly_redis_t *r)
{
    if (r->pid <= 0)
        return 1;
    pid_t w = waitpid(r->pid, NULL, WNOHANG);
    if (w == r->pid || (w < 0 && errno == ECHILD)) {
        r->pid = 0;
        return 1;
    }
    return 0;
}

static int wait_exit(rly_redis_t *r, long timeout_ms)
{
    double deadline = rly_now() + (double)timeout_ms / 1000.0;
    while (!reap(r)) {
        if (rly_now() >= deadline)
            return -1;
        sleep_ms(5);
    }
    return 0;
}

int rly_redis_prepare(rly_redis_t *r, const char *password)
{
    static int n;
    memset(r, 0, sizeof(*r));
    snprintf(r->dir, sizeof(r->dir), "%s/redis-%d", rly_tmpdir(), ++n);
    if (mkdir(r->dir, 0700) != 0) {
        perror("harness: mkdir");
        return -1;
    }
    snprintf(r->log_path, sizeof(r->log_path), "%s/redis.log", r->dir);
    snprintf(r->conf_path, sizeof(r->conf_path), "%s/sentinel.conf", r->dir);
    if (password != NULL && snprintf(r->password, sizeof(r->password), "%s", password) >= (int)sizeof(r->password))
        return -1;
    if ((r->port = rly_free_port()) == 0) {
        fputs("harness: no free port for Redis\n", stderr);
        return -1;
    }
    snprintf(r->url, sizeof(r->url), "redis://127.0.0.1:%u", (unsigned)r->port);
    snprintf(r->addr, sizeof(r->addr), "127.0.0.1:%u", (unsigned)r->port);
    proc_register(r);
    return 0;
}

redisContext *rly_redis_connect(const rly_redis_t *r, long timeout_ms)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    if (c == NULL)
        return NULL;
    if (c->err != 0 || redisSetTimeout(c, tv) != REDIS_OK)
        goto Error;
    if (r->password[0] != '\0') {
        redisReply *rep = redisCommand(c, "AUTH %s", r->password);
        int ok = rep != NULL && rep->type != REDIS_REPLY_ERROR;
        freeReplyObject(rep);
        if (!ok)
            goto Error;
    }
    return c;
Error:
    redisFree(c);
    return NULL;
}

static void reply_destroy(void *p)
{
    freeReplyObject(p);
}

/* one command on a fresh connection (2 s timeout); the caller frees the reply; NULL without one */
static redisReply *command_v(const rly_redis_t *r, const char *fmt, va_list ap)
{
    redisContext *c = rly_redis_connect(r, 2000);
    if (c == NULL)
        return NULL;
    redisReply *rep = redisvCommand(c, fmt, ap);
    redisFree(c);
    return rep;
}

static redisReply *command_once(const rly_redis_t *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = command_v(r, fmt, ap);
    va_end(ap);
    return rep;
}

redisReply *rly_redis_command(const rly_redis_t *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = command_v(r, fmt, ap);
    va_end(ap);
    return rep != NULL ? rly_keep_with(rep, reply_destroy) : NULL;
}

static int answers_ping(const rly_redis_t *r)
{
    redisContext *c = rly_redis_connect(r, 300);
    if (c == NULL)
        return 0;
    redisReply *rep = redisCommand(c, "PING");
    int ok = rep != NULL && rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "PONG") == 0;
    freeReplyObject(rep);
    redisFree(c);
    return ok;
}

static void print_log(const rly_redis_t *r, const char *why)
{
    char *log = rly_read_file(r->log_path, NULL);
    fprintf(stderr, "harness: %s %s; its log:\n%s\n", r->sentinel ? "redis-sentinel" : "redis-server", why,
            log != NULL ? log : "(none)");
}

int rly_redis_launch(rly_redis_t *r)
{
    char port[8], primary[8];
    snprintf(port, sizeof(port), "%u", (unsigned)r->port);
    snprintf(primary, sizeof(primary), "%u", (unsigned)r->replicaof);
    char *argv[24];
    size_t n = 0;
    if (r->sentinel) {
        argv[n++] = "redis-sentinel";
        argv[n++] = r->conf_path;
    } else {
        char *fixed[] = {"redis-server", "--port", port,    "--bind", "127.0.0.1", "--save", "",
                         "--appendonly", "no",     "--dir", r->dir};
        for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
            argv[n++] = fixed[i];
        if (r->password[0] != '\0') {
            argv[n++] = "--requirepass";
            argv[n++] = r->password;
            if (r->replicaof != 0) {
                argv[n++] = "--masterauth";
                argv[n++] = r->password;
            }
        }
        if (r->replicaof != 0) {
            argv[n++] = "--replicaof";
            argv[n++] = "127.0.0.1";
            argv[n++] = primary;
        }
    }
    argv[n] = NULL;
    if (r->pid > 0) {
        fputs("harness: Redis already running\n", stderr);
        return -1;
    }
    if ((r->pid = spawn_bg(argv, r->log_path)) < 0) {
        r->pid = 0;
        perror("harness: fork");
        return -1;
    }
    double deadline = rly_now() + 10.0;
    while (rly_now() < deadline) {
        if (reap(r)) {
            print_log(r, "exited during start-up");
            return -1;
        }
        if (answers_ping(r))
            return 0;
        sleep_ms(20);
    }
    print_log(r, "did not answer PING within 10 s");
    rly_redis_kill(r);
    return -1;
}

int rly_redis_start(rly_redis_t *r, const char *password)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        if (rly_redis_prepare(r, password) != 0)
            return -1;
        if (rly_redis_launch(r) == 0)
            return 0;
        char *log = rly_read_file(r->log_path, NULL);
        if (log == NULL || strstr(log, "Address already in use") == NULL)
            return -1;
        proc_unregister(r); /* lost a race for the port: again with another */
    }
    return -1;
}

/* 1 if the INFO section has the line "name:value" */
static int info_has(const rly_redis_t *r, const char *section, const char *name, const char *value)
{
    redisReply *rep = command_once(r, "INFO %s", section);
    int found = 0;
    if (rep != NULL && rep->type == REDIS_REPLY_STRING) {
        char line[128];
        snprintf(line, sizeof(line), "%s:%s\r\n", name, value);
        found = strstr(rep->str, line) != NULL;
    }
    freeReplyObject(rep);
    return found;
}

int rly_redis_start_replica(rly_redis_t *r, const rly_redis_t *primary)
{
    if (rly_redis_prepare(r, primary->password[0] != '\0' ? primary->password : NULL) != 0)
        return -1;
    r->replicaof = primary->port;
    if (rly_redis_launch(r) != 0)
        return -1;
    double deadline = rly_now() + 10.0;
    while (rly_now() < deadline) {
        if (info_has(r, "replication", "master_link_status", "up"))
            return 0;
        sleep_ms(50);
    }
    print_log(r, "(replica) did not sync with its primary within 10 s");
    return -1;
}

void rly_redis_kill(rly_redis_t *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0);
        r->pid = 0;
    }
}

void rly_redis_stop(rly_redis_t *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGTERM);
        if (wait_exit(r, 5000) != 0)
            rly_redis_kill(r);
    }
}

int rly_redis_shutdown_save(rly_redis_t *r)
{
    if (r->pid <= 0)
        return -1;
    redisContext *c = rly_redis_connect(r, 5000);
    if (c == NULL)
        return -1;
    redisReply *rep = redisCommand(c, "SHUTDOWN SAVE"); /* no reply: the server went away */
    int refused = rep != NULL && rep->type == REDIS_REPLY_ERROR;
    if (refused)
        fprintf(stderr, "harness: SHUTDOWN SAVE refused: %s\n", rep->str);
    freeReplyObject(rep);
    redisFree(c);
    if (refused || wait_exit(r, 10000) != 0) {
        rly_redis_kill(r);
        return -1;
    }
    return 0;
}

void rly_redis_cleanup(rly_redis_t *r)
{
    rly_redis_stop(r);
    proc_unregister(r);
}

char **rly_redis_scan(const rly_redis_t *r, const char *pattern, size_t *np)
{
    redisContext *c = rly_redis_connect(r, 2000);
    if (c == NULL)
        return NULL;
    size_t n = 0, cap = 64;
    char **keys = malloc(cap * sizeof(*keys));
    if (keys == NULL)
        abort();
    char cursor[32] = "0";
    int ok = 1;
    do {
        redisReply *rep = redisCommand(c, "SCAN %s MATCH %s COUNT 100", cursor, pattern);
        if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 || rep->element[0]->type != REDIS_REPLY_STRING ||
            rep->element[1]->type != REDIS_REPLY_ARRAY || rep->element[0]->len >= sizeof(cursor)) {
            freeReplyObject(rep);
            ok = 0;
            break;
        }
        memcpy(cursor, rep->element[0]->str, rep->element[0]->len + 1);
        for (size_t i = 0; i < rep->element[1]->elements; i++) {
            const redisReply *k = rep->element[1]->element[i];
            if (n + 1 >= cap) {
                cap *= 2;
                char **k2 = realloc(keys, cap * sizeof(*keys));
                if (k2 == NULL)
                    abort();
                keys = k2;
            }
            keys[n++] = rly_strf("%.*s", (int)k->len, k->str);
        }
        freeReplyObject(rep);
    } while (strcmp(cursor, "0") != 0);
    redisFree(c);
    keys[n] = NULL;
    rly_keep(keys);
    *np = n;
    return ok ? keys : NULL;
}

/* ---- Sentinel ---- */

/* the number of elements of the array a Sentinel answers to SENTINEL <sub> <master>, or (size_t)-1 */
static size_t sentinel_count(const rly_redis_t *r, const char *sub)
{
    redisReply *rep = command_once(r, "SENTINEL %s %s", sub, RLY_SENTINEL_MASTER);
    size_t n = rep != NULL && rep->type == REDIS_REPLY_ARRAY ? rep->elements : (size_t)-1;
    freeReplyObject(rep);
    return n;
}

int rly_sentinels_start(rly_sentinels_t *s)
{
    memset(s, 0, sizeof(*s));
    if (rly_redis_start(&s->primary, NULL) != 0 || rly_redis_start_replica(&s->replica, &s->primary) != 0)
        return -1;
    size_t off = 0;
    for (size_t i = 0; i < 3; i++) {
        rly_redis_t *t = &s->sentinel[i];
        if (rly_redis_prepare(t, NULL) != 0)
            return -1;
        t->sentinel = 1;
        FILE *f = fopen(t->conf_path, "w");
        if (f == NULL) {
            perror("harness: sentinel.conf");
            return -1;
        }
        fprintf(f,
                "port %u\nbind 127.0.0.1\ndaemonize no\ndir %s\nlogfile \"\"\n"
                "sentinel monitor " RLY_SENTINEL_MASTER " 127.0.0.1 %u 2\n"
                "sentinel down-after-milliseconds " RLY_SENTINEL_MASTER " 1000\n"
                "sentinel failover-timeout " RLY_SENTINEL_MASTER " 5000\n",
                (unsigned)t->port, t->dir, (unsigned)s->primary.port);
        fclose(f);
        if (rly_redis_launch(t) != 0)
            return -1;
        off += (size_t)snprintf(s->addrs + off, sizeof(s->addrs) - off, "%s%s", i > 0 ? "," : "", t->addr);
    }
    /* each Sentinel must know the replica (first INFO of the primary) and the two others (hello messages, every 2 s) */
    double deadline = rly_now() + 20.0;
    while (rly_now() < deadline) {
        int ready = 1;
        for (size_t i = 0; i < 3 && ready; i++) {
            ready = sentinel_count(&s->sentinel[i], "replicas") == 1 && sentinel_count(&s->sentinel[i], "sentinels") == 2;
        }
        if (ready)
            return 0;
        sleep_ms(100);
    }
    fputs("harness: the Sentinels did not discover the replica and each other within 20 s\n", stderr);
    for (size_t i = 0; i < 3; i++)
        print_log(&s->sentinel[i], "log");
    return -1;
}

unsigned short rly_sentinels_primary(const rly_sentinels_t *s, size_t i)
{
    redisReply *rep = command_once(&s->sentinel[i], "SENTINEL get-master-addr-by-name " RLY_SENTINEL_MASTER);
    long port = 0;
    if (rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 && rep->element[1]->type == REDIS_REPLY_STRING)
        port = strtol(rep->element[1]->str, NULL, 10);
    freeReplyObject(rep);
    return port > 0 && port < 65536 ? (unsigned short)port : 0;
}

double rly_sentinels_wait_primary(const rly_sentinels_t *s, unsigned short port, long timeout_ms)
{
    double t0 = rly_now(), deadline = t0 + (double)timeout_ms / 1000.0;
    while (rly_now() < deadline) {
        int all = 1;
        for (size_t i = 0; i < 3 && all; i++)
            all = s->sentinel[i].pid <= 0 || rly_sentinels_primary(s, i) == port;
        if (all)
            return rly_now() - t0;
        sleep_ms(100);
    }
    return -1;
}

void rly_sentinels_cleanup(rly_sentinels_t *s)
{
    for (size_t i = 0; i < 3; i++)
        rly_redis_cleanup(&s->sentinel[i]);
    rly_redis_cleanup(&s->replica);
    rly_redis_cleanup(&s->primary);
}

/* ---- relays on Redis ---- */

long rly_admin_status(const rly_relay_t *r, const char *path)
{
    char url[256];
    snprintf(url, sizeof(url), "%s%s", r->admin_url, path);
    rly_request_t q = {.url = url, .timeout_ms = 1000};
    rly_response_t res;
    long status = rly_http_req(&q, &res);
    rly_response_free(&res);
    return status;
}

double rly_wait_admin(const rly_relay_t *r, const char *path, long status, long timeout_ms)
{
    double t0 = rly_now(), deadline = t0 + (double)timeout_ms / 1000.0;
    for (;;) {
        if (rly_admin_status(r, path) == status)
            return rly_now() - t0;
        if (rly_now() >= deadline)
            return -1;
        sleep_ms(20);
    }
}

double rly_flow(const rly_relay_t *c, const rly_relay_t *p, const rly_relay_t *b, int version, long delay_ms)
{
    rly_session_t s;
    rly_create_ok(c, version, &s);
    const char *code = rly_token("code-");
    const char *hdrs[] = {rly_strf("Authorization: Bearer %s", s.poll_token), "Prefer: wait=10", NULL};
    rly_request_t q[2] = {
        {.url = rly_strf("%s/v1/sessions/%s", p->public_url, s.session), .headers = hdrs, .version = version, .timeout_ms = 20000},
        {.url = rly_strf("%s/qorus-oauth2-redirect?%s", b->public_url, rly_query("code", code, "state", s.state, NULL)),
         .version = version,
         .start_ms = delay_ms}};
    rly_response_t *res = rly_responses(2);
    int rc = rly_http_multi(q, 2, res, 0, NULL, NULL);
    const char *what = rly_strf("flow over %s (create on :%u, pickup waiting on :%u, callback on :%u)",
                                version == RLY_H2 ? "h2" : "http/1.1", (unsigned)c->port, (unsigned)p->port, (unsigned)b->port);
    if (rc != 0)
        fail_msg("%s: the requests did not finish: pickup %ld %s, callback %ld %s", what, res[0].status, res[0].error,
                 res[1].status, res[1].error);
    if (res[1].status != 303 || res[1].version != version)
        fail_msg("%s: the callback answered %ld (HTTP version %d) after %.3f s; body: %.300s", what, res[1].status, res[1].version,
                 res[1].elapsed, res[1].body);
    const char *loc = rly_header(&res[1], "Location");
    if (loc == NULL || strstr(loc, "status=success") == NULL)
        fail_msg("%s: callback Location is %s", what, loc != NULL ? loc : "(none)");
    if (res[0].status != 200 || res[0].version != version)
        fail_msg("%s: the pickup answered %ld (HTTP version %d) after %.3f s; body: %.300s", what, res[0].status, res[0].version,
                 res[0].elapsed, res[0].body);
    json_object *o = rly_json(&res[0]);
    RLY_EXPECT_STR(rly_jstr(o, "status"), "authorized");
    RLY_EXPECT_STR(rly_jstr(o, "code"), code);
    RLY_EXPECT_STR(rly_jstr(o, "state"), s.state);
    double sent = (double)delay_ms / 1000.0;
    if (res[0].done_at < sent)
        fail_msg("flow: the pickup answered %.3f s into the flow, before the callback was sent", res[0].done_at);
    return res[0].done_at - sent;
}

const char *rly_redis_key_of(const char *session)
{
    uint8_t sid[RLY_SESSION_ID_BYTES], key[RLY_SESSION_ID_BYTES];
    char text[RLY_SESSION_ID_LEN + 1];
    if (session == NULL || rly_session_parse(session, strlen(session), sid) != 0 || rly_store_key(sid, key) != 0)
        return NULL;
    rly_b64url_encode(text, key, sizeof(key));
    return rly_strf("authrelay:{%s}", text);
}
