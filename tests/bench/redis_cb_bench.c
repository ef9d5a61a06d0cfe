/* redis_cb_bench.c: Redis CPU per callback: the Redis store's complete (the callback's one command) against a real redis-server */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>
#include <h2o.h>
#include <hiredis/hiredis.h>
#include "addr.h"
#include "ids.h"
#include "store.h"

/*
 * What it does: N sessions are created through the store (store_redis.c, as the relay does), then N callbacks' writes
 * (store->complete with a result of RESULT_LEN bytes, unsealed, no cookie) run with W of them in flight on one handle,
 * as a busy worker pipelines them. Around the writes only: CONFIG RESETSTAT and INFO commandstats (usec_per_call of
 * what the writes sent), redis-server's CPU time from /proc/PID/stat (user + system) and this process's (getrusage).
 * Without --port it starts its own redis-server (--save '' --appendonly no) on a free loopback port and stops it.
 * Not a test: it prints figures (tests/bench/README.md, "Redis CPU per callback").
 */

typedef struct st_bench_t {
    store_t *store;
    h2o_evloop_t *loop;
    uint8_t (*keys)[RLY_SESSION_ID_BYTES];
    size_t n, window, next, done, failed, in_flight;
    int completing;
    uint8_t *result;
    size_t result_len;
} bench_t;

static void issue(bench_t *b);

static void on_notify(void *ctx, const uint8_t key[RLY_SESSION_ID_BYTES])
{
    (void)ctx;
    (void)key;
}

static void on_done(void *ctx, store_status_t status, const store_record_t *rec)
{
    bench_t *b = ctx;
    (void)rec;
    if (status != STORE_OK)
        ++b->failed;
    ++b->done;
    --b->in_flight;
}

static void issue(bench_t *b)
{
    while (b->next != b->n && b->in_flight != b->window) {
        size_t i = b->next++;
        ++b->in_flight;
        if (b->completing) {
            b->store->complete(b->store, b->keys[i], b->result, b->result_len, 1764395000000 + (int64_t)i, 0, NULL, on_done, b);
        } else {
            static const uint8_t meta[220] = {'m'}; /* about a real meta's size (encrypted return_uri and seal key) */
            store_record_t rec = {.meta = meta, .meta_len = sizeof(meta)};
            memcpy(rec.key, b->keys[i], sizeof(rec.key));
            memset(rec.token_hash, 't', sizeof(rec.token_hash));
            memcpy(rec.as_id, "auth.atlassian.com", sizeof("auth.atlassian.com"));
            b->store->create(b->store, &rec, 600, 0, on_done, b);
        }
    }
}

/* runs a phase to its end; 0, or -1 if it stalled for 10 s */
static int run_phase(bench_t *b, int completing)
{
    b->completing = completing;
    b->next = b->done = b->failed = b->in_flight = 0;
    size_t last = 0;
    time_t since = time(NULL);
    while (b->done != b->n) {
        issue(b);
        h2o_evloop_run(b->loop, 100);
        if (b->done != last) {
            last = b->done;
            since = time(NULL);
        } else if (time(NULL) - since > 10) {
            return -1;
        }
    }
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* user + system CPU seconds of a process, from /proc/PID/stat; -1 when unreadable */
static double proc_cpu(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    for (int field = 2; p != NULL && field < 14; ++field) /* utime is field 14 */
        p = strchr(p + 1, ' ');
    if (p == NULL)
        return -1;
    char *end;
    unsigned long long ut = strtoull(p + 1, &end, 10), st = strtoull(end, NULL, 10);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static redisReply *query(redisContext *c, const char *cmd)
{
    redisReply *r = redisCommand(c, cmd);
    if (r == NULL) {
        fprintf(stderr, "redis_cb_bench: %s: %s\n", cmd, c->errstr);
        exit(1);
    }
    return r;
}

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

static pid_t start_redis(int port, char *dir)
{
    char port_text[16];
    snprintf(port_text, sizeof(port_text), "%d", port);
    char *argv[] = {"redis-server", "--port", port_text, "--bind", "127.0.0.1",  "--save",  "",
                    "--appendonly", "no",     "--dir",   dir,      "--loglevel", "warning", NULL};
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
            _exit(127);
        execvp("redis-server", argv);
        _exit(127);
    }
    return pid;
}

static unsigned long long arg_number(const char *s, unsigned long long max)
{
    unsigned long long v;
    if (rly_parse_uint(s, strlen(s), max, &v) != 0 || v == 0) {
        fprintf(stderr, "redis_cb_bench: bad number %s\n", s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    int port = 0;
    bench_t b = {.n = 100000, .window = 64, .result_len = 1300};
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = (int)arg_number(argv[++i], 65535);
        else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            b.n = arg_number(argv[++i], 10000000);
        else if (strcmp(argv[i], "--window") == 0 && i + 1 < argc)
            b.window = arg_number(argv[++i], 100000);
        else if (strcmp(argv[i], "--result-len") == 0 && i + 1 < argc)
            b.result_len = arg_number(argv[++i], 1 << 20);
        else {
            fprintf(stderr, "usage: redis_cb_bench [--port P] [-n CALLBACKS] [--window IN_FLIGHT] [--result-len BYTES]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    char dir[] = "/tmp/redis-cb-bench-XXXXXX";
    pid_t child = 0;
    if (port == 0) {
        if (mkdtemp(dir) == NULL || (port = free_port()) < 0 || (child = start_redis(port, dir)) < 0) {
            fprintf(stderr, "redis_cb_bench: cannot start redis-server\n");
            return 1;
        }
    }
    redisContext *c = NULL;
    for (int i = 0; i != 100 && c == NULL; ++i) {
        struct timeval tv = {2, 0};
        c = redisConnectWithTimeout("127.0.0.1", port, tv);
        if (c != NULL && c->err != 0) {
            redisFree(c);
            c = NULL;
            usleep(50000);
        }
    }
    if (c == NULL) {
        fprintf(stderr, "redis_cb_bench: no Redis on port %d\n", port);
        return 1;
    }
    redisReply *r = query(c, "INFO server");
    const char *at = r->type == REDIS_REPLY_STRING ? strstr(r->str, "process_id:") : NULL;
    long redis_pid = at != NULL ? strtol(at + 11, NULL, 10) : -1;
    freeReplyObject(r);

    char url[64], err[256];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", port);
    store_redis_options_t opts = {url, NULL, NULL, NULL, 5000, 1000, NULL};
    store_backend_t *backend = store_redis_new(&opts, err, sizeof(err));
    if (backend == NULL) {
        fprintf(stderr, "redis_cb_bench: %s\n", err);
        return 1;
    }
    b.loop = h2o_evloop_create();
    b.store = backend->open(backend, b.loop, on_notify, NULL);
    b.keys = calloc(b.n, sizeof(*b.keys));
    b.result = malloc(b.result_len);
    if (b.store == NULL || b.keys == NULL || b.result == NULL)
        return 1;
    for (size_t i = 0; i != b.result_len; ++i)
        b.result[i] = (uint8_t)(i * 131 + 7); /* a ciphertext's bytes */
    for (size_t i = 0; i != b.n; ++i)
        rly_random(b.keys[i], sizeof(b.keys[i]));
    for (int i = 0; i != 100; ++i) /* up: the first command's answer */
        h2o_evloop_run(b.loop, 20);

    if (run_phase(&b, 0) != 0 || b.failed != 0) {
        fprintf(stderr, "redis_cb_bench: creating sessions failed (%zu)\n", b.failed);
        return 1;
    }
    sleep(2); /* Redis's incremental rehashing of the grown key space settles */
    {         /* the script is loaded (a NOSCRIPT and an EVAL on first use) before the measurement: one unknown session */
        bench_t warm = b;
        uint8_t unknown[RLY_SESSION_ID_BYTES];
        rly_random(unknown, sizeof(unknown));
        warm.keys = &unknown;
        warm.n = 1;
        if (run_phase(&warm, 1) != 0)
            return 1;
    }
    freeReplyObject(query(c, "CONFIG RESETSTAT"));
    double cpu0 = proc_cpu(redis_pid), self0 = self_cpu(), t0 = now_s();
    int stalled = run_phase(&b, 1);
    double t1 = now_s(), cpu1 = proc_cpu(redis_pid), self1 = self_cpu();
    r = query(c, "INFO commandstats");
    printf("callbacks %zu (window %zu, result %zu bytes): %.0f/s, %zu failed%s\n", b.n, b.window, b.result_len,
           (double)b.n / (t1 - t0), b.failed, stalled ? ", STALLED" : "");
    double usec = 0;
    for (const char *line = r->str; line != NULL && *line != '\0';) {
        const char *eol = strchr(line, '\n');
        size_t len = eol != NULL ? (size_t)(eol - line) : strlen(line);
        if (strncmp(line, "cmdstat_", 8) == 0 && strncmp(line, "cmdstat_config", 14) != 0) {
            printf("  %.*s\n", (int)(len > 0 && line[len - 1] == '\r' ? len - 1 : len), line);
            const char *u = strstr(line, "usec=");
            /* the script calls' usec include the commands they run inside (listed too): only those are summed */
            if (u != NULL && u < line + len &&
                (strncmp(line, "cmdstat_evalsha:", 16) == 0 || strncmp(line, "cmdstat_eval:", 13) == 0))
                usec += strtod(u + 5, NULL);
        }
        line = eol != NULL ? eol + 1 : NULL;
    }
    freeReplyObject(r);
    printf("Redis commandstats: %.2f us per callback (EVALSHA and EVAL usec / callbacks)\n", usec / (double)b.n);
    if (cpu0 >= 0 && cpu1 >= 0)
        printf("redis-server CPU: %.2f us per callback (/proc/%ld/stat, user + system)\n", (cpu1 - cpu0) * 1e6 / (double)b.n,
               redis_pid);
    printf("this process (the store's side: formatting, hiredis, replies): %.2f us per callback\n",
           (self1 - self0) * 1e6 / (double)b.n);

    b.store->close(b.store);
    h2o_evloop_run(b.loop, 0);
    backend->destroy(backend);
    redisFree(c);
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        rmdir(dir);
    }
    return b.failed != 0 || stalled ? 3 : 0;
}
