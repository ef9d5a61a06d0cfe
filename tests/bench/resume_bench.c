/*
 * resume_bench.c: callbacks per second over new TLS connections, each resuming the session of its thread's previous
 * connection (TLS 1.3 tickets or TLS 1.2 session ids), or with --full none of them (a full handshake every time).
 * Each connection sends one request, the next line of --paths with "Connection: close", reads the answer to the end
 * and closes; its status is counted. Loopback only, no certificate checks (benchmark certificates are self-signed).
 * Prints one line: RESULT resume_bench mode=resumed|full conns=N secs=S rate=R resumed=K ok=O bad_status=B errors=E
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define PATH_MAX_LEN 16384 /* longest request path taken from --paths */
#define THREADS_MAX 256
#define IO_TIMEOUT_SECS 10

typedef struct st_opts_t {
    int port;
    const char *paths_file, *sni;
    long threads, seconds, conns;
    int full;
} opts_t;

typedef struct st_worker_t {
    pthread_t tid;
    /* the newest session the server gave this thread, serialized (i2d): offered by each next connection as a fresh
     * object, since OpenSSL will not offer again an SSL_SESSION object it has resumed once (h2o 2.2.5 sends no new
     * ticket on a resumed TLS 1.3 handshake, so its ticket is offered again: the server takes it) */
    unsigned char *last;
    int last_len;
    unsigned long done, resumed, ok, bad_status, errors;
} worker_t;

static opts_t opts;
static SSL_CTX *ctx;
static char **paths;
static size_t npaths;
static atomic_size_t next_path;
static double deadline;
static int ex_worker; /* SSL ex_data index of the connection's worker_t */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* OpenSSL hands over every session it may resume (a TLS 1.3 ticket arrives after the handshake): keep the newest */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    worker_t *w = SSL_get_ex_data(ssl, ex_worker);
    unsigned char *der = NULL;
    int len;
    if (w == NULL || !SSL_SESSION_is_resumable(sess) || (len = i2d_SSL_SESSION(sess, &der)) <= 0)
        return 0;
    OPENSSL_free(w->last);
    w->last = der;
    w->last_len = len;
    return 0; /* not kept: OpenSSL frees it */
}

static int tcp_connect(void)
{
    struct sockaddr_in sin;
    struct timeval tv = {IO_TIMEOUT_SECS, 0};
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)opts.port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* one connection, one request; 0 when an answer came (its status counted), -1 on a transport or TLS error */
static int one_callback(worker_t *w, const char *path)
{
    char req[PATH_MAX_LEN + 128], buf[16384];
    size_t got = 0;
    int status = 0, ret = -1, fd = tcp_connect(), n;
    SSL *ssl = NULL;
    SSL_SESSION *offer = NULL;
    if (fd < 0)
        return -1;
    if ((ssl = SSL_new(ctx)) == NULL)
        goto Exit;
    SSL_set_ex_data(ssl, ex_worker, w);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, opts.sni);
    if (!opts.full && w->last != NULL) {
        const unsigned char *p = w->last;
        if ((offer = d2i_SSL_SESSION(NULL, &p, w->last_len)) != NULL)
            SSL_set_session(ssl, offer);
    }
    if (SSL_connect(ssl) != 1)
        goto Exit;
    if (SSL_session_reused(ssl))
        ++w->resumed;
    n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, opts.sni);
    if (n < 0 || (size_t)n >= sizeof(req) || SSL_write(ssl, req, n) != n)
        goto Exit;
    /* to the end: the server closes after the answer; a TLS 1.3 ticket comes in on the way */
    while ((n = SSL_read(ssl, buf, (int)sizeof(buf))) > 0) {
        if (got == 0 && n >= 12 && memcmp(buf, "HTTP/1.", 7) == 0)
            status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
        got += (size_t)n;
    }
    if (status == 0)
        goto Exit;
    if (status >= 200 && status < 400)
        ++w->ok;
    else
        ++w->bad_status;
    ret = 0;
Exit:
    if (ssl != NULL) {
        SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN); /* no close_notify exchange: just close */
        SSL_free(ssl);
    }
    SSL_SESSION_free(offer);
    close(fd);
    ERR_clear_error();
    return ret;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&next_path, 1);
        if (i >= npaths || (opts.conns > 0 && i >= (size_t)opts.conns) || now() >= deadline)
            break;
        if (one_callback(w, paths[i]) != 0)
            ++w->errors;
        ++w->done;
    }
    return NULL;
}

static int load_paths(const char *file)
{
    FILE *fp = fopen(file, "r");
    char *line = NULL;
    size_t cap = 0, have = 0;
    ssize_t n;
    if (fp == NULL) {
        fprintf(stderr, "resume_bench: cannot open %s\n", file);
        return -1;
    }
    while ((n = getline(&line, &cap, fp)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0 || n > PATH_MAX_LEN || line[0] != '/')
            continue;
        if (npaths == have) {
            have = have != 0 ? 2 * have : 4096;
            if ((paths = realloc(paths, have * sizeof(*paths))) == NULL)
                abort();
        }
        if ((paths[npaths++] = strdup(line)) == NULL)
            abort();
    }
    free(line);
    fclose(fp);
    if (npaths == 0) {
        fprintf(stderr, "resume_bench: no paths in %s\n", file);
        return -1;
    }
    return 0;
}

static void usage(FILE *fp)
{
    fputs("usage: resume_bench --port PORT --paths FILE [--threads T] [-d SECS] [-n CONNS] [--full] [--sni NAME]\n"
          "  --port PORT     TLS port on 127.0.0.1\n"
          "  --paths FILE    request paths, one a line (flow_bench --urls); each is sent once\n"
          "  --threads T     connections at once, one thread each (default 4)\n"
          "  -d SECS         run time (default 5)\n"
          "  -n CONNS        stop after CONNS connections (default: the paths or the time, what ends first)\n"
          "  --full          never offer a session: a full handshake every time\n"
          "  --sni NAME      server name sent and Host header (default localhost)\n",
          fp);
}

static int number(const char *s, long min, long max, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "resume_bench: bad number: %s\n", s);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"port", required_argument, NULL, 'p'},
                                             {"paths", required_argument, NULL, 'f'},
                                             {"threads", required_argument, NULL, 't'},
                                             {"full", no_argument, NULL, 'F'},
                                             {"sni", required_argument, NULL, 's'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    static worker_t workers[THREADS_MAX];
    long port = 0;
    int ch;
    opts = (opts_t){0, NULL, "localhost", 4, 5, 0, 0};
    while ((ch = getopt_long(argc, argv, "d:n:h", longopts, NULL)) != -1) {
        int r = 0;
        switch (ch) {
        case 'p':
            r = number(optarg, 1, 65535, &port);
            break;
        case 'f':
            opts.paths_file = optarg;
            break;
        case 't':
            r = number(optarg, 1, THREADS_MAX, &opts.threads);
            break;
        case 'd':
            r = number(optarg, 1, 3600, &opts.seconds);
            break;
        case 'n':
            r = number(optarg, 1, 100000000, &opts.conns);
            break;
        case 'F':
            opts.full = 1;
            break;
        case 's':
            opts.sni = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
        if (r != 0)
            return 2;
    }
    if (optind != argc || port == 0 || opts.paths_file == NULL) {
        usage(stderr);
        return 2;
    }
    opts.port = (int)port;
    signal(SIGPIPE, SIG_IGN);
    if (load_paths(opts.paths_file) != 0)
        return 1;
    if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
        return 1;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF); /* a server may close without close_notify */
    /* sessions are kept by hand, per thread (on_new_session), never in OpenSSL's cache */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    ex_worker = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);

    double t0 = now();
    deadline = t0 + (double)opts.seconds;
    for (long i = 0; i != opts.threads; ++i)
        if (pthread_create(&workers[i].tid, NULL, worker_main, &workers[i]) != 0) {
            fputs("resume_bench: pthread_create failed\n", stderr);
            return 1;
        }
    unsigned long done = 0, resumed = 0, ok = 0, bad = 0, errors = 0;
    for (long i = 0; i != opts.threads; ++i) {
        pthread_join(workers[i].tid, NULL);
        done += workers[i].done;
        resumed += workers[i].resumed;
        ok += workers[i].ok;
        bad += workers[i].bad_status;
        errors += workers[i].errors;
        OPENSSL_free(workers[i].last);
    }
    double secs = now() - t0;
    printf("resume_bench: %lu connections (%s) in %.2f s over %ld threads: %.1f/s; resumed %lu; answers 2xx/3xx %lu, other "
           "%lu; errors %lu%s\n",
           done, opts.full ? "full handshakes" : "resuming the previous session", secs, opts.threads,
           secs > 0 ? (double)ok / secs : 0, resumed, ok, bad, errors,
           next_path >= npaths ? " (ran out of paths: the run was shorter)" : "");
    printf("RESULT resume_bench mode=%s conns=%lu secs=%.2f rate=%.1f resumed=%lu ok=%lu bad_status=%lu errors=%lu\n",
           opts.full ? "full" : "resumed", done, secs, secs > 0 ? (double)ok / secs : 0, resumed, ok, bad, errors);
    for (size_t i = 0; i != npaths; ++i)
        free(paths[i]);
    free(paths);
    SSL_CTX_free(ctx);
    return errors == 0 ? 0 : 3;
}
