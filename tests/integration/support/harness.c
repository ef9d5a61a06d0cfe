/* harness.c: relay processes, TLS material and libcurl HTTP/1.1 + HTTP/2 helpers for the integration tests */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include "harness.h"

extern char **environ;

int rly_v1 = RLY_H1, rly_v2 = RLY_H2;

#define BODY_MAX (8u << 20)
#define RELAYS_MAX 16

/* ---- small utilities ---- */

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fputs("harness: out of memory\n", stderr);
        abort();
    }
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (p == NULL) {
        fputs("harness: out of memory\n", stderr);
        abort();
    }
    return p;
}

static char *xstrndup(const char *s, size_t n)
{
    char *d = xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

double rly_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

char *rly_token(const char *prefix)
{
    static const char cs[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char rnd[24];
    char tail[25];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        abort();
    for (size_t i = 0; i < sizeof(rnd); i++)
        tail[i] = cs[rnd[i] & 63];
    tail[24] = '\0';
    return rly_strf("%s%s", prefix, tail);
}

int rly_is_b64url(const char *s)
{
    if (s == NULL || *s == '\0')
        return 0;
    for (; *s != '\0'; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
            return 0;
    return 1;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- arena ---- */

typedef struct st_arena_item_t {
    void *p;
    void (*fn)(void *);
} arena_item_t;

static arena_item_t *arena;
static size_t arena_len, arena_cap;

static void *arena_add(void *p, void (*fn)(void *))
{
    if (arena_len == arena_cap) {
        arena_cap = arena_cap ? arena_cap * 2 : 64;
        arena = xrealloc(arena, arena_cap * sizeof(*arena));
    }
    arena[arena_len].p = p;
    arena[arena_len].fn = fn;
    arena_len++;
    return p;
}

void *rly_keep(void *p)
{
    return arena_add(p, free);
}

void *rly_keep_with(void *p, void (*fn)(void *))
{
    return arena_add(p, fn);
}

void rly_arena_free(void)
{
    while (arena_len > 0) {
        arena_len--;
        arena[arena_len].fn(arena[arena_len].p);
    }
}

int rly_test_teardown(void **state)
{
    (void)state;
    rly_arena_free();
    return 0;
}

int rly_version(void **state)
{
    if (state == NULL || *state == NULL)
        return RLY_H1;
    return *(int *)*state;
}

char *rly_strf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    char *s = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return rly_keep(s);
}

char *rly_repeat(char c, size_t n)
{
    char *s = xmalloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return rly_keep(s);
}

static void esc_append(char **buf, size_t *len, size_t *cap, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (*len + 4 > *cap) {
            *cap = *cap * 2 + 64;
            *buf = xrealloc(*buf, *cap);
        }
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
            c == '~') {
            (*buf)[(*len)++] = (char)c;
        } else {
            (*buf)[(*len)++] = '%';
            (*buf)[(*len)++] = hex[c >> 4];
            (*buf)[(*len)++] = hex[c & 15];
        }
    }
    (*buf)[*len] = '\0';
}

static void raw_append(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > *cap) {
        *cap = *cap * 2 + n + 64;
        *buf = xrealloc(*buf, *cap);
    }
    memcpy(*buf + *len, s, n + 1);
    *len += n;
}

char *rly_esc(const char *s)
{
    size_t len = 0, cap = 64;
    char *buf = xmalloc(cap);
    buf[0] = '\0';
    esc_append(&buf, &len, &cap, s);
    return rly_keep(buf);
}

char *rly_query(const char *k, ...)
{
    size_t len = 0, cap = 256;
    char *buf = xmalloc(cap);
    buf[0] = '\0';
    va_list ap;
    va_start(ap, k);
    for (; k != NULL; k = va_arg(ap, const char *)) {
        const char *v = va_arg(ap, const char *);
        if (len > 0)
            raw_append(&buf, &len, &cap, "&");
        raw_append(&buf, &len, &cap, k);
        raw_append(&buf, &len, &cap, "=");
        esc_append(&buf, &len, &cap, v);
    }
    va_end(ap);
    return rly_keep(buf);
}

/* ---- processes ---- */

static rly_relay_t *relays[RELAYS_MAX];
static char tmpdir[128];
static char **child_env;

const char *rly_bin(void)
{
    const char *b = getenv("AUTHRELAY_BIN");
    if (b == NULL || *b == '\0') {
        fputs("harness: AUTHRELAY_BIN is not set (run through ctest, or export it)\n", stderr);
        exit(1);
    }
    return b;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void at_exit(void)
{
    for (size_t i = 0; i < RELAYS_MAX; i++) {
        if (relays[i] != NULL && relays[i]->pid > 0) {
            kill(relays[i]->pid, SIGKILL);
            waitpid(relays[i]->pid, NULL, 0);
            relays[i]->pid = 0;
        }
    }
    const char *keep = getenv("RLY_KEEP_TMP");
    if (tmpdir[0] != '\0' && (keep == NULL || *keep == '\0' || strcmp(keep, "0") == 0))
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *rly_tmpdir(void)
{
    if (tmpdir[0] == '\0') {
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/authrelay-itest-XXXXXX");
        if (mkdtemp(tmpdir) == NULL) {
            perror("harness: mkdtemp");
            exit(1);
        }
        atexit(at_exit);
    }
    return tmpdir;
}

/* the environment for children: ours without AUTHRELAY_* (option twins must not leak into the relay) */
static char **env_for_child(void)
{
    if (child_env == NULL) {
        size_t n = 0, j = 0;
        while (environ[n] != NULL)
            n++;
        child_env = xmalloc((n + 1) * sizeof(*child_env));
        for (size_t i = 0; i < n; i++)
            if (strncmp(environ[i], "AUTHRELAY_", 10) != 0)
                child_env[j++] = environ[i];
        child_env[j] = NULL;
    }
    return child_env;
}

static pid_t spawn(char *const argv[], const char *out, const char *err)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t empty, def;
    pid_t pid = -1;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawnattr_init(&attr);
    sigemptyset(&empty);
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    sigaddset(&def, SIGTERM);
    sigaddset(&def, SIGINT);
    sigaddset(&def, SIGHUP);
    posix_spawnattr_setsigmask(&attr, &empty);
    posix_spawnattr_setsigdefault(&attr, &def);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    int rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv, env_for_child());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        fprintf(stderr, "harness: cannot run %s: %s\n", argv[0], strerror(rc));
        return -1;
    }
    return pid;
}

static int decode_status(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

/* waits at most timeout_ms for pid; returns its decoded status or -1 (still running) */
static int wait_pid(pid_t pid, long timeout_ms)
{
    double deadline = rly_now() + (double)timeout_ms / 1000.0;
    for (;;) {
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            return decode_status(st);
        if (w < 0 && errno != EINTR)
            return -1;
        if (rly_now() >= deadline)
            return -1;
        sleep_ms(5);
    }
}

char *rly_read_file(const char *path, size_t *lenp)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t len = 0, cap = 4096;
    char *buf = xmalloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len - 1 == 0) {
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
    }
    fclose(f);
    buf[len] = '\0';
    if (lenp != NULL)
        *lenp = len;
    return rly_keep(buf);
}

int rly_run(char *const argv[], long timeout_ms, char **out, char **err)
{
    static unsigned counter;
    char outp[256], errp[256];
    counter++;
    snprintf(outp, sizeof(outp), "%s/run-%u.out", rly_tmpdir(), counter);
    snprintf(errp, sizeof(errp), "%s/run-%u.err", rly_tmpdir(), counter);
    pid_t pid = spawn(argv, outp, errp);
    if (pid < 0)
        return -1;
    int rc = wait_pid(pid, timeout_ms);
    if (rc < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fprintf(stderr, "harness: %s timed out\n", argv[0]);
    }
    if (out != NULL) {
        *out = rly_read_file(outp, NULL);
        if (*out == NULL)
            *out = rly_strf("%s", "");
    }
    if (err != NULL) {
        *err = rly_read_file(errp, NULL);
        if (*err == NULL)
            *err = rly_strf("%s", "");
    }
    return rc;
}

unsigned short rly_free_port(void)
{
    static unsigned short given[64];
    static size_t ngiven;
    for (int attempt = 0; attempt < 20; attempt++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            return 0;
        struct sockaddr_in a;
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = 0;
        socklen_t alen = sizeof(a);
        if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
            close(fd);
            return 0;
        }
        close(fd);
        unsigned short port = ntohs(a.sin_port);
        int dup = 0;
        for (size_t i = 0; i < ngiven; i++)
            dup |= given[i] == port;
        if (dup)
            continue;
        if (ngiven < sizeof(given) / sizeof(given[0]))
            given[ngiven++] = port;
        return port;
    }
    return 0;
}

static int port_accepts(unsigned short port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/* ---- relays ---- */

static void relay_register(rly_relay_t *r)
{
    for (size_t i = 0; i < RELAYS_MAX; i++)
        if (relays[i] == r)
            return;
    for (size_t i = 0; i < RELAYS_MAX; i++) {
        if (relays[i] == NULL) {
            relays[i] = r;
            return;
        }
    }
    fputs("harness: too many relays\n", stderr);
    abort();
}

static void relay_unregister(rly_relay_t *r)
{
    for (size_t i = 0; i < RELAYS_MAX; i++)
        if (relays[i] == r)
            relays[i] = NULL;
}

static const char *cert_for_port(long port)
{
    for (size_t i = 0; i < RELAYS_MAX; i++)
        if (relays[i] != NULL && relays[i]->port == port && relays[i]->cert[0] != '\0')
            return relays[i]->cert;
    return NULL;
}

static int relay_prepare(rly_relay_t *r, int dev, const char *keys)
{
    static int n;
    memset(r, 0, sizeof(*r));
    r->exit_status = -1;
    r->dev = dev;
    snprintf(r->dir, sizeof(r->dir), "%s/relay-%d", rly_tmpdir(), ++n);
    if (mkdir(r->dir, 0700) != 0) {
        perror("harness: mkdir");
        return -1;
    }
    snprintf(r->out_path, sizeof(r->out_path), "%s/stdout.log", r->dir);
    snprintf(r->err_path, sizeof(r->err_path), "%s/stderr.log", r->dir);
    r->port = rly_free_port();
    r->admin_port = rly_free_port();
    if (r->port == 0 || r->admin_port == 0) {
        fputs("harness: no free port\n", stderr);
        return -1;
    }
    snprintf(r->public_url, sizeof(r->public_url), "https://localhost:%u", (unsigned)r->port);
    snprintf(r->admin_url, sizeof(r->admin_url), "http://127.0.0.1:%u", (unsigned)r->admin_port);
    if (dev)
        return 0;

    snprintf(r->cert, sizeof(r->cert), "%s/cert.pem", r->dir);
    snprintf(r->key, sizeof(r->key), "%s/key.pem", r->dir);
    snprintf(r->keys, sizeof(r->keys), "%s/keys.json", r->dir);
    char *err = NULL;
    if (rly_make_certificate(r->cert, r->key) != 0)
        return -1;
    if (keys != NULL) {
        /* a key file shared with other relays: each verifies the states the others sign */
        if (strlen(keys) >= sizeof(r->keys)) {
            fputs("harness: key file path too long\n", stderr);
            return -1;
        }
        memcpy(r->keys, keys, strlen(keys) + 1);
        return 0;
    }
    char *keygen[] = {(char *)rly_bin(), "keygen", r->keys, NULL};
    if (rly_run(keygen, 10000, NULL, &err) != 0) {
        fprintf(stderr, "harness: authrelay keygen failed: %s\n", err != NULL ? err : "");
        return -1;
    }
    return 0;
}

/* collects the relay if it exited; 1 exited, 0 running */
static int relay_reap(rly_relay_t *r)
{
    if (r->pid <= 0)
        return 1;
    int st;
    pid_t w = waitpid(r->pid, &st, WNOHANG);
    if (w == r->pid) {
        r->exit_status = decode_status(st);
        r->pid = 0;
        return 1;
    }
    return 0;
}

static int relay_launch(rly_relay_t *r, const char *const *fixed, size_t nfixed, const char *const *extra)
{
    size_t nextra = 0;
    while (extra != NULL && extra[nextra] != NULL)
        nextra++;
    char **argv = xmalloc((nfixed + nextra + 1) * sizeof(*argv));
    for (size_t i = 0; i < nfixed; i++)
        argv[i] = (char *)fixed[i];
    for (size_t i = 0; i < nextra; i++)
        argv[nfixed + i] = (char *)extra[i];
    argv[nfixed + nextra] = NULL;
    r->pid = spawn(argv, r->out_path, r->err_path);
    free(argv);
    if (r->pid < 0) {
        r->pid = 0;
        return -1;
    }
    relay_register(r);

    char *health = rly_admin_url(r, "/healthz");
    double deadline = rly_now() + 10.0;
    while (rly_now() < deadline) {
        if (relay_reap(r)) {
            char *err = rly_relay_stderr(r, NULL);
            if (strstr(err, "Address already in use") != NULL)
                return -2; /* another process took a port between rly_free_port and the bind: the caller retries */
            fprintf(stderr, "harness: the relay exited with status %d during start-up; its stderr:\n%s\n", r->exit_status, err);
            return -1;
        }
        rly_response_t res;
        rly_request_t q = {.url = health, .timeout_ms = 1000};
        long status = rly_http_req(&q, &res);
        rly_response_free(&res);
        if (status == 200 && port_accepts(r->port))
            return 0;
        sleep_ms(50);
    }
    fprintf(stderr, "harness: the relay did not answer %s within 10 s; its stderr:\n%s\n", health, rly_relay_stderr(r, NULL));
    rly_relay_stop(r);
    return -1;
}

/* new free ports for a relay that lost a race for its ports */
static int relay_new_ports(rly_relay_t *r)
{
    r->port = rly_free_port();
    r->admin_port = rly_free_port();
    r->exit_status = -1;
    snprintf(r->public_url, sizeof(r->public_url), "https://localhost:%u", (unsigned)r->port);
    snprintf(r->admin_url, sizeof(r->admin_url), "http://127.0.0.1:%u", (unsigned)r->admin_port);
    return r->port != 0 && r->admin_port != 0 ? 0 : -1;
}

int rly_harness_unbound = 1;

static int relay_start(rly_relay_t *r, int dev, const char *keys, const char *const *extra)
{
    if (relay_prepare(r, dev, keys) != 0)
        return -1;
    for (int attempt = 0;; attempt++) {
        char listen[32], admin[32];
        snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)r->port);
        snprintf(admin, sizeof(admin), "127.0.0.1:%u", (unsigned)r->admin_port);
        const char *fixed[] = {rly_bin(), "serve",      "--listen",     listen,        "--admin-listen",
                               admin,     "--tls-cert", r->cert,        "--tls-key",   r->key,
                               "--keys",  r->keys,      "--public-url", r->public_url, "--allow-unbound"};
        const char *fixed_dev[] = {rly_bin(), "serve", "--dev", "--listen", listen, "--admin-listen", admin, "--allow-unbound"};
        size_t nfixed = dev ? sizeof(fixed_dev) / sizeof(fixed_dev[0]) : sizeof(fixed) / sizeof(fixed[0]);
        int rc = relay_launch(r, dev ? fixed_dev : fixed, nfixed - (rly_harness_unbound ? 0 : 1), extra);
        if (rc != -2)
            return rc;
        if (attempt == 4 || relay_new_ports(r) != 0) {
            fputs("harness: no free ports for the relay after 5 attempts\n", stderr);
            return -1;
        }
    }
}

int rly_relay_start(rly_relay_t *r, const char *const *extra)
{
    return relay_start(r, 0, NULL, extra);
}

int rly_relay_start_keys(rly_relay_t *r, const char *keys, const char *const *extra)
{
    return relay_start(r, 0, keys, extra);
}

int rly_relay_start_dev(rly_relay_t *r, const char *const *extra)
{
    return relay_start(r, 1, NULL, extra);
}

int rly_make_certificate(const char *cert, const char *key)
{
    char *err = NULL;
    char *openssl[] = {"openssl",
                       "req",
                       "-x509",
                       "-newkey",
                       "ec",
                       "-pkeyopt",
                       "ec_paramgen_curve:prime256v1",
                       "-nodes",
                       "-days",
                       "2",
                       "-subj",
                       "/CN=localhost",
                       "-addext",
                       "subjectAltName=DNS:localhost,IP:127.0.0.1",
                       "-keyout",
                       (char *)key,
                       "-out",
                       (char *)cert,
                       NULL};
    if (rly_run(openssl, 20000, NULL, &err) != 0) {
        fprintf(stderr, "harness: openssl req failed: %s\n", err != NULL ? err : "");
        return -1;
    }
    return 0;
}

int rly_test_keygen(char *path, size_t cap)
{
    static int n;
    char *err = NULL;
    if (snprintf(path, cap, "%s/shared-keys-%d.json", rly_tmpdir(), ++n) >= (int)cap)
        return -1;
    char *argv[] = {(char *)rly_bin(), "keygen", path, NULL};
    if (rly_run(argv, 10000, NULL, &err) != 0) {
        fprintf(stderr, "harness: authrelay keygen failed: %s\n", err != NULL ? err : "");
        return -1;
    }
    return 0;
}

int rly_relay_running(rly_relay_t *r)
{
    return !relay_reap(r);
}

void rly_relay_signal(rly_relay_t *r, int sig)
{
    if (r->pid > 0)
        kill(r->pid, sig);
}

int rly_relay_wait(rly_relay_t *r, long timeout_ms)
{
    double deadline = rly_now() + (double)timeout_ms / 1000.0;
    for (;;) {
        if (relay_reap(r))
            return r->exit_status;
        if (rly_now() >= deadline)
            return -1;
        sleep_ms(5);
    }
}

int rly_relay_stop(rly_relay_t *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGTERM);
        if (rly_relay_wait(r, 15000) < 0) {
            fputs("harness: the relay ignored SIGTERM for 15 s; killing it\n", stderr);
            kill(r->pid, SIGKILL);
            rly_relay_wait(r, 5000);
        }
    }
    return r->exit_status;
}

void rly_relay_cleanup(rly_relay_t *r)
{
    rly_relay_stop(r);
    relay_unregister(r);
}

int rly_relay_finish(rly_relay_t *r)
{
    int rc = rly_relay_stop(r);
    rly_relay_cleanup(r);
    rly_arena_free();
    if (rc != 0)
        fprintf(stderr, "harness: the relay exited with status %d after SIGTERM (expected 0)\n", rc);
    return rc == 0 ? 0 : -1;
}

char *rly_relay_stdout(const rly_relay_t *r, size_t *len)
{
    char *s = rly_read_file(r->out_path, len);
    return s != NULL ? s : rly_strf("%s", "");
}

char *rly_relay_stderr(const rly_relay_t *r, size_t *len)
{
    char *s = rly_read_file(r->err_path, len);
    return s != NULL ? s : rly_strf("%s", "");
}

char *rly_url(const rly_relay_t *r, const char *path)
{
    return rly_strf("%s%s", r->public_url, path);
}

char *rly_admin_url(const rly_relay_t *r, const char *path)
{
    return rly_strf("%s%s", r->admin_url, path);
}

/* ---- HTTP ---- */

typedef struct st_xfer_t {
    rly_response_t *resp;
    struct curl_slist *headers, *resolve;
    size_t body_cap;
    double t0;
    char errbuf[CURL_ERROR_SIZE];
} xfer_t;

static void curl_init_once(void)
{
    static int done;
    if (!done) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        done = 1;
    }
}

static void headers_clear(rly_response_t *resp)
{
    for (size_t i = 0; i < resp->nheaders; i++) {
        free(resp->headers[i].name);
        free(resp->headers[i].value);
    }
    free(resp->headers);
    resp->headers = NULL;
    resp->nheaders = 0;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
    xfer_t *x = ud;
    size_t total = size * nitems, len = total;
    while (len > 0 && (buf[len - 1] == '\r' || buf[len - 1] == '\n'))
        len--;
    if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        /* a new response (after a 1xx): forget the previous headers */
        headers_clear(x->resp);
        return total;
    }
    const char *colon = memchr(buf, ':', len);
    if (colon == NULL)
        return total;
    const char *v = colon + 1, *end = buf + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    rly_response_t *resp = x->resp;
    resp->headers = xrealloc(resp->headers, (resp->nheaders + 1) * sizeof(*resp->headers));
    resp->headers[resp->nheaders].name = xstrndup(buf, (size_t)(colon - buf));
    resp->headers[resp->nheaders].value = xstrndup(v, (size_t)(end - v));
    resp->nheaders++;
    return total;
}

static size_t on_body(char *buf, size_t size, size_t nitems, void *ud)
{
    xfer_t *x = ud;
    rly_response_t *resp = x->resp;
    size_t n = size * nitems;
    if (resp->body_len + n > BODY_MAX)
        return 0;
    if (resp->body_len + n + 1 > x->body_cap) {
        x->body_cap = (resp->body_len + n + 1) * 2;
        resp->body = xrealloc(resp->body, x->body_cap);
    }
    memcpy(resp->body + resp->body_len, buf, n);
    resp->body_len += n;
    resp->body[resp->body_len] = '\0';
    return n;
}

static CURL *xfer_setup(xfer_t *x, const rly_request_t *q, rly_response_t *resp)
{
    curl_init_once();
    memset(x, 0, sizeof(*x));
    memset(resp, 0, sizeof(*resp));
    x->resp = resp;
    CURL *h = curl_easy_init();
    if (h == NULL)
        abort();
    curl_easy_setopt(h, CURLOPT_URL, q->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, q->timeout_ms > 0 ? q->timeout_ms : 15000L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, RLY_TEST_UA);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_PRIVATE, x);
    if (q->pipewait)
        curl_easy_setopt(h, CURLOPT_PIPEWAIT, 1L);
    const char *verbose = getenv("RLY_CURL_VERBOSE"); /* debugging: libcurl's trace on stderr */
    if (verbose != NULL && *verbose != '\0' && strcmp(verbose, "0") != 0)
        curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, q->version == RLY_H2 ? (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_1_1);

    const char *method = q->method != NULL ? q->method : "GET";
    if (q->body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->body);
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }

    x->headers = curl_slist_append(NULL, "Expect:");
    for (size_t i = 0; q->headers != NULL && q->headers[i] != NULL; i++)
        x->headers = curl_slist_append(x->headers, q->headers[i]);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->headers);

    /* localhost:<port> goes to 127.0.0.1; trust the certificate of the relay on that port */
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL, *scheme = NULL;
    if (curl_url_set(u, CURLUPART_URL, q->url, 0) == CURLUE_OK) {
        curl_url_get(u, CURLUPART_HOST, &host, 0);
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    }
    if (host != NULL && port != NULL && strcasecmp(host, "localhost") == 0) {
        char entry[128];
        snprintf(entry, sizeof(entry), "localhost:%s:127.0.0.1", port);
        x->resolve = curl_slist_append(NULL, entry);
        curl_easy_setopt(h, CURLOPT_RESOLVE, x->resolve);
    }
    if (scheme != NULL && strcasecmp(scheme, "https") == 0) {
        if (q->insecure) {
            curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
            curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
        } else {
            const char *ca = q->cainfo;
            if (ca == NULL && port != NULL)
                ca = cert_for_port(strtol(port, NULL, 10));
            if (ca != NULL)
                curl_easy_setopt(h, CURLOPT_CAINFO, ca);
        }
    }
    curl_free(host);
    curl_free(port);
    curl_free(scheme);
    curl_url_cleanup(u);
    x->t0 = rly_now();
    return h;
}

static void xfer_finish(xfer_t *x, CURL *h, CURLcode rc)
{
    rly_response_t *resp = x->resp;
    resp->elapsed = rly_now() - x->t0;
    if (resp->body == NULL) {
        resp->body = xmalloc(1);
        resp->body[0] = '\0';
    }
    if (rc != CURLE_OK) {
        resp->status = 0;
        snprintf(resp->error, sizeof(resp->error), "%s", x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(rc));
    } else {
        long code = 0, ver = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &ver);
        curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &resp->new_connections);
        resp->status = code;
        resp->version = ver == CURL_HTTP_VERSION_2_0 ? RLY_H2 : ver == CURL_HTTP_VERSION_1_1 ? RLY_H1 : 0;
    }
    curl_slist_free_all(x->headers);
    curl_slist_free_all(x->resolve);
    x->headers = x->resolve = NULL;
    curl_easy_cleanup(h);
}

long rly_http_req(const rly_request_t *req, rly_response_t *resp)
{
    xfer_t x;
    CURL *h = xfer_setup(&x, req, resp);
    CURLcode rc = curl_easy_perform(h);
    xfer_finish(&x, h, rc);
    return resp->status;
}

long rly_http(const char *method, const char *url, const char *const *headers, const void *body, size_t len, int version,
              rly_response_t *resp)
{
    rly_request_t q = {.method = method, .url = url, .headers = headers, .body = body, .body_len = len, .version = version};
    return rly_http_req(&q, resp);
}

void rly_response_free(rly_response_t *resp)
{
    headers_clear(resp);
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
}

static void response_destroy(void *p)
{
    rly_response_free(p);
    free(p);
}

rly_response_t *rly_do(const rly_request_t *req)
{
    rly_response_t *resp = xmalloc(sizeof(*resp));
    rly_http_req(req, resp);
    return arena_add(resp, response_destroy);
}

typedef struct st_resp_array_t {
    size_t n;
    rly_response_t r[];
} resp_array_t;

static void resp_array_destroy(void *p)
{
    resp_array_t *a = p;
    for (size_t i = 0; i < a->n; i++)
        rly_response_free(&a->r[i]);
    free(a);
}

rly_response_t *rly_responses(size_t n)
{
    resp_array_t *a = calloc(1, sizeof(*a) + n * sizeof(a->r[0]));
    if (a == NULL)
        abort();
    a->n = n;
    arena_add(a, resp_array_destroy);
    return a->r;
}

/*
 * HTTP/1.1 and HTTP/2 transfers run in two multi handles, so two connection caches: libcurl 7.88 may otherwise send a
 * request that wants HTTP/2 over an HTTP/1.1 connection of the same host that is still busy ("Multiplexed connection
 * found"), pipelining it behind a waiting pickup and mixing up the two responses.
 */
int rly_http_multi(const rly_request_t *reqs, size_t n, rly_response_t *resps, long action_ms, void (*action)(void *ud), void *ud)
{
    curl_init_once();
    CURLM *m[2] = {curl_multi_init(), curl_multi_init()};
    xfer_t *x = calloc(n, sizeof(*x));
    CURL **h = calloc(n, sizeof(*h));
    int *state = calloc(n, sizeof(*state)); /* 0 waiting, 1 running, 2 done */
    if (m[0] == NULL || m[1] == NULL || x == NULL || h == NULL || state == NULL)
        abort();
    long deadline_ms = action != NULL ? action_ms + 5000 : 5000;
    for (size_t i = 0; i < n; i++) {
        long end = reqs[i].start_ms + (reqs[i].timeout_ms > 0 ? reqs[i].timeout_ms : 15000) + 5000;
        if (end > deadline_ms)
            deadline_ms = end;
        memset(&resps[i], 0, sizeof(resps[i]));
    }
    double t0 = rly_now();
    size_t done = 0;
    int acted = action == NULL;
    while (done < n || !acted) {
        long el = (long)((rly_now() - t0) * 1000.0);
        if (!acted && el >= action_ms) {
            action(ud);
            acted = 1;
        }
        for (size_t i = 0; i < n; i++) {
            if (state[i] == 0 && el >= reqs[i].start_ms) {
                h[i] = xfer_setup(&x[i], &reqs[i], &resps[i]);
                curl_multi_add_handle(m[reqs[i].version == RLY_H2], h[i]);
                state[i] = 1;
            }
        }
        for (size_t k = 0; k < 2; k++) {
            int running;
            curl_multi_perform(m[k], &running);
            CURLMsg *msg;
            int left;
            while ((msg = curl_multi_info_read(m[k], &left)) != NULL) {
                if (msg->msg != CURLMSG_DONE)
                    continue;
                for (size_t i = 0; i < n; i++) {
                    if (state[i] == 1 && h[i] == msg->easy_handle) {
                        CURLcode rc = msg->data.result;
                        curl_multi_remove_handle(m[k], h[i]);
                        xfer_finish(&x[i], h[i], rc);
                        resps[i].done_at = rly_now() - t0;
                        state[i] = 2;
                        done++;
                        break;
                    }
                }
            }
        }
        if (el > deadline_ms)
            break;
        curl_multi_poll(m[0], NULL, 0, 2, NULL);
        curl_multi_poll(m[1], NULL, 0, 2, NULL);
    }
    int ok = done == n ? 0 : -1;
    for (size_t i = 0; i < n; i++) {
        if (state[i] == 1) {
            curl_multi_remove_handle(m[reqs[i].version == RLY_H2], h[i]);
            xfer_finish(&x[i], h[i], CURLE_OPERATION_TIMEDOUT);
        } else if (state[i] == 0) {
            resps[i].body = xmalloc(1);
            resps[i].body[0] = '\0';
            snprintf(resps[i].error, sizeof(resps[i].error), "never started");
        }
    }
    curl_multi_cleanup(m[0]);
    curl_multi_cleanup(m[1]);
    free(x);
    free(h);
    free(state);
    return ok;
}

const char *rly_header_n(const rly_response_t *resp, const char *name, size_t n)
{
    for (size_t i = 0; i < resp->nheaders; i++)
        if (strcasecmp(resp->headers[i].name, name) == 0 && n-- == 0)
            return resp->headers[i].value;
    return NULL;
}

const char *rly_header(const rly_response_t *resp, const char *name)
{
    return rly_header_n(resp, name, 0);
}

size_t rly_header_count(const rly_response_t *resp, const char *name)
{
    size_t c = 0;
    for (size_t i = 0; i < resp->nheaders; i++)
        c += strcasecmp(resp->headers[i].name, name) == 0;
    return c;
}

int rly_response_contains(const rly_response_t *resp, const char *needle)
{
    size_t nl = strlen(needle);
    if (nl == 0)
        return 1;
    if (resp->body != NULL && memmem(resp->body, resp->body_len, needle, nl) != NULL)
        return 1;
    for (size_t i = 0; i < resp->nheaders; i++)
        if (strstr(resp->headers[i].name, needle) != NULL || strstr(resp->headers[i].value, needle) != NULL)
            return 1;
    return 0;
}

/* ---- JSON ---- */

static void json_destroy(void *p)
{
    json_object_put(p);
}

json_object *rly_json(const rly_response_t *resp)
{
    if (resp->body == NULL || resp->body_len == 0)
        return NULL;
    json_tokener *tok = json_tokener_new_ex(64);
    if (tok == NULL)
        return NULL;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tok, resp->body, (int)resp->body_len);
    int ok = o != NULL && json_tokener_get_error(tok) == json_tokener_success;
    if (ok) {
        for (size_t i = json_tokener_get_parse_end(tok); i < resp->body_len; i++)
            if (strchr(" \t\r\n", resp->body[i]) == NULL)
                ok = 0;
    }
    json_tokener_free(tok);
    if (!ok) {
        json_object_put(o);
        return NULL;
    }
    return arena_add(o, json_destroy);
}

const char *rly_jstr(json_object *o, const char *key)
{
    json_object *v;
    if (o == NULL || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

int rly_jint(json_object *o, const char *key, int64_t *out)
{
    json_object *v;
    if (o == NULL || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v) ||
        !json_object_is_type(v, json_type_int))
        return -1;
    *out = json_object_get_int64(v);
    return 0;
}

int rly_jkeys_exactly(json_object *o, const char *const *keys)
{
    if (o == NULL || !json_object_is_type(o, json_type_object))
        return 0;
    size_t n = 0;
    for (; keys[n] != NULL; n++)
        if (!json_object_object_get_ex(o, keys[n], NULL))
            return 0;
    return (size_t)json_object_object_length(o) == n;
}

int rly_is_error_body(const rly_response_t *resp, const char *code)
{
    static const char *const keys[] = {"error", "error_description", NULL};
    json_object *o = rly_json(resp);
    if (!rly_jkeys_exactly(o, keys))
        return 0;
    const char *e = rly_jstr(o, "error"), *d = rly_jstr(o, "error_description");
    if (e == NULL || d == NULL || *d == '\0')
        return 0;
    return code == NULL || strcmp(e, code) == 0;
}

/* ---- protocol helpers ---- */

static void copy_member(char *dst, size_t cap, json_object *o, const char *key)
{
    const char *v = rly_jstr(o, key);
    if (v != NULL && strlen(v) < cap)
        memcpy(dst, v, strlen(v) + 1);
}

rly_response_t *rly_create(const rly_relay_t *r, int version, const char *json, rly_session_t *s)
{
    static const char *const hdrs[] = {"Content-Type: application/json", NULL};
    rly_request_t q = {.method = "POST",
                       .url = rly_url(r, "/v1/sessions"),
                       .headers = hdrs,
                       .body = json,
                       .body_len = strlen(json),
                       .version = version};
    rly_response_t *res = rly_do(&q);
    if (s != NULL) {
        memset(s, 0, sizeof(*s));
        s->expires_in = -1;
        if (res->status == 201) {
            json_object *o = rly_json(res);
            copy_member(s->session, sizeof(s->session), o, "session");
            copy_member(s->state, sizeof(s->state), o, "state");
            copy_member(s->poll_token, sizeof(s->poll_token), o, "poll_token");
            copy_member(s->poll_url, sizeof(s->poll_url), o, "poll_url");
            copy_member(s->redirect_uri, sizeof(s->redirect_uri), o, "redirect_uri");
            rly_jint(o, "expires_in", &s->expires_in);
        }
    }
    return res;
}

static void create_ok(const rly_relay_t *r, int version, const char *json, rly_session_t *s)
{
    rly_response_t *res = rly_create(r, version, json, s);
    if (res->status != 201)
        fail_msg("POST /v1/sessions: expected 201, got %ld (%s) %s", res->status, res->error, res->body);
    if (s->session[0] == '\0' || s->state[0] == '\0' || s->poll_token[0] == '\0' || s->poll_url[0] == '\0')
        fail_msg("POST /v1/sessions: 201 without session/state/poll_token/poll_url: %s", res->body);
}

void rly_create_ok(const rly_relay_t *r, int version, rly_session_t *s)
{
    create_ok(r, version, "{\"authorization_server\": \"" RLY_TEST_AS "\", \"return_uri\": \"" RLY_TEST_RETURN "\"}", s);
}

void rly_create_ok_noreturn(const rly_relay_t *r, int version, rly_session_t *s)
{
    create_ok(r, version, "{\"authorization_server\": \"" RLY_TEST_AS "\"}", s);
}

rly_response_t *rly_pickup(const rly_session_t *s, int version, int wait)
{
    const char *hdrs[3] = {rly_strf("Authorization: Bearer %s", s->poll_token), NULL, NULL};
    if (wait >= 0)
        hdrs[1] = rly_strf("Prefer: wait=%d", wait);
    rly_request_t q = {
        .url = s->poll_url, .headers = hdrs, .version = version, .timeout_ms = (wait > 0 ? wait : 0) * 1000L + 15000};
    return rly_do(&q);
}

rly_response_t *rly_delete(const rly_session_t *s, int version)
{
    const char *hdrs[2] = {rly_strf("Authorization: Bearer %s", s->poll_token), NULL};
    rly_request_t q = {.method = "DELETE", .url = s->poll_url, .headers = hdrs, .version = version};
    return rly_do(&q);
}

rly_response_t *rly_callback(const rly_relay_t *r, int version, const char *path, const char *query)
{
    if (path == NULL)
        path = "/qorus-oauth2-redirect";
    rly_request_t q = {.url = query != NULL ? rly_strf("%s%s?%s", r->public_url, path, query) : rly_url(r, path),
                       .version = version};
    return rly_do(&q);
}

long long rly_metric(const rly_relay_t *r, const char *series)
{
    rly_request_t q = {.url = rly_admin_url(r, "/metrics"), .timeout_ms = 2000};
    rly_response_t res;
    long long value = -1;
    int found = 0;
    if (rly_http_req(&q, &res) == 200 && res.body != NULL) {
        size_t n = strlen(series);
        for (const char *p = res.body; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p != NULL ? p + 1 : NULL) {
            if (strncmp(p, series, n) == 0 && p[n] == ' ') {
                value = strtoll(p + n + 1, NULL, 10);
                found = 1;
                break;
            }
        }
    }
    rly_response_free(&res);
    if (!found)
        fail_msg("no series %s in %s's /metrics", series, r->admin_url);
    return value;
}
