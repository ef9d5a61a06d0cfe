/*
 * hold_conns.c: what one idle TLS long-poll costs the relay in memory. Creates N version-1 sessions (the relay needs
 * --allow-unbound; or reads N "poll_url poll_token" lines from --urls), reads the relay's VmRSS, opens N separate TLS
 * connections (ALPN h2 or http/1.1), sends on each one pickup (GET poll_url, Authorization: Bearer, Prefer: wait=W)
 * and keeps it waiting, reads VmRSS again once every pickup is out (and, with --admin-port, once the relay's
 * authrelay_waiting_pickups gauge shows them all), then closes everything. Loopback only, no certificate checks.
 * Prints, last:
 *   RESULT hold_conns proto=h1|h2 conns=N rss_before_kib=B rss_after_kib=A per_conn_kib=P held=H answered=X errors=E
 *          rss_closed_kib=C
 * per_conn_kib is (A - B) / N; held counts the pickups still unanswered when A was read (it must equal N for the
 * figure to mean anything), answered those the relay answered early, errors failed connections or requests.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define CONNS_MAX 100000
#define URL_PATH_MAX 256   /* a poll_url's path */
#define TOKEN_MAX 128      /* a poll token */
#define RESPONSE_MAX 65536 /* a create response, headers and body */
#define CREATE_BATCH 64    /* create requests pipelined on the creating connection */
#define IO_TIMEOUT_SECS 20 /* blocking reads and writes (session creation, admin) */
#define ADMIN_WAIT_SECS 20 /* longest wait for the gauge to show every pickup */
#define REQUEST_MAX 1024   /* a pickup request, either protocol */

static const char create_body[] = "{\"authorization_server\":\"https://auth.atlassian.com/authorize\","
                                  "\"return_uri\":\"https://qorus.example.com:8011/grant\"}";

typedef struct st_opts_t {
    const char *host, *urls, *save;
    int port, admin_port, h2;
    long pid, conns, wait, parallel, settle_ms, hold_secs;
} opts_t;

typedef struct st_session_t {
    char path[URL_PATH_MAX];
    char token[TOKEN_MAX];
} session_t;

typedef enum en_conn_state_t { C_IDLE, C_CONNECTING, C_HANDSHAKE, C_SENDING, C_HELD, C_ANSWERED, C_FAILED } conn_state_t;

typedef struct st_conn_t {
    int fd;
    SSL *ssl;
    conn_state_t state;
    uint32_t events;       /* what epoll watches now */
    char req[REQUEST_MAX]; /* the pickup request (h2: preface, SETTINGS, HEADERS), sent from req_off */
    size_t req_len, req_off;
    int settings_ack; /* h2: a SETTINGS ACK owed */
    /* h2: the frame being read: its header, then what remains of its payload */
    uint8_t fhdr[9];
    size_t fhdr_have, payload_left;
} conn_t;

static opts_t opts = {"127.0.0.1", NULL, NULL, 0, 0, 1, 0, 1000, 30, 64, 1000, 0};
static session_t *sessions;
static conn_t *conns;
static SSL_CTX *ctx;
static int epfd = -1;
static long n_held, n_answered, n_errors, n_open;
static char first_error[200];

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void note_error(const char *what)
{
    ++n_errors;
    if (first_error[0] == '\0')
        snprintf(first_error, sizeof(first_error), "%s", what);
}

/* VmRSS of opts.pid in KiB, or -1 */
static long rss_kib(void)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof(path), "/proc/%ld/status", opts.pid);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return -1;
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(fp);
    return kib;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (rlim_t)opts.conns + 32 > rl.rlim_cur)
        fprintf(stderr, "hold_conns: warning: RLIMIT_NOFILE is %lu, fewer than --conns %ld + 32\n", (unsigned long)rl.rlim_cur,
                opts.conns);
}

static int tcp_connect(int nonblocking)
{
    struct sockaddr_in sin = {0};
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)opts.port);
    if (inet_pton(AF_INET, opts.host, &sin.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
    if (fd == -1)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (!nonblocking) {
        struct timeval tv = {IO_TIMEOUT_SECS, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- session creation: one blocking HTTP/1.1 connection, CREATE_BATCH requests pipelined at a time ---- */

/* the string value of "name" in a flat JSON object (slashes unescaped), or -1 */
static int json_member(const char *body, size_t len, const char *name, char *out, size_t outlen)
{
    char key[64];
    int kl = snprintf(key, sizeof(key), "\"%s\":\"", name);
    const char *p = memmem(body, len, key, (size_t)kl);
    if (p == NULL)
        return -1;
    p += kl;
    size_t o = 0;
    for (const char *end = body + len; p != end && *p != '"'; ++p) {
        if (*p == '\\' && p + 1 != end)
            ++p;
        if (o + 1 >= outlen)
            return -1;
        out[o++] = *p;
    }
    out[o] = '\0';
    return p != body + len ? 0 : -1;
}

/* reads one HTTP/1.1 response with a Content-Length from a blocking SSL into buf (which may hold earlier bytes:
 * *have); returns the response's length, its status in *status and its body, or -1 */
static long read_response(SSL *ssl, char *buf, size_t *have, int *status, const char **body, size_t *body_len)
{
    for (;;) {
        char *eoh = memmem(buf, *have, "\r\n\r\n", 4);
        if (eoh != NULL) {
            size_t hlen = (size_t)(eoh - buf) + 4;
            long clen = -1;
            if (*have < 12 || memcmp(buf, "HTTP/1.1 ", 9) != 0)
                return -1;
            *status = (int)strtol(buf + 9, NULL, 10);
            for (char *l = memchr(buf, '\n', hlen); l != NULL && l < eoh; l = memchr(l + 1, '\n', (size_t)(eoh - l))) {
                if (strncasecmp(l + 1, "content-length:", 15) == 0)
                    clen = strtol(l + 16, NULL, 10);
            }
            if (clen < 0)
                return -1;
            if (*have >= hlen + (size_t)clen) {
                *body = buf + hlen;
                *body_len = (size_t)clen;
                return (long)(hlen + (size_t)clen);
            }
        }
        if (*have == RESPONSE_MAX)
            return -1;
        int n = SSL_read(ssl, buf + *have, (int)(RESPONSE_MAX - *have));
        if (n <= 0)
            return -1;
        *have += (size_t)n;
    }
}

static SSL *blocking_tls(int *fd_out, const char *alpn, unsigned alpn_len)
{
    int fd = tcp_connect(0);
    if (fd == -1)
        return NULL;
    SSL *ssl = SSL_new(ctx);
    SSL_set_tlsext_host_name(ssl, "localhost");
    SSL_set_alpn_protos(ssl, (const unsigned char *)alpn, alpn_len);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) != 1) {
        SSL_free(ssl);
        close(fd);
        return NULL;
    }
    *fd_out = fd;
    return ssl;
}

static int create_sessions(void)
{
    static const char alpn_h1[] = "\x08http/1.1";
    char req[512];
    int req_len = snprintf(req, sizeof(req),
                           "POST /v1/sessions HTTP/1.1\r\nHost: localhost:%d\r\nContent-Type: application/json\r\n"
                           "Content-Length: %zu\r\n\r\n%s",
                           opts.port, sizeof(create_body) - 1, create_body);
    char *buf = malloc(RESPONSE_MAX), *batch = malloc((size_t)req_len * CREATE_BATCH);
    int fd = -1, ret = -1;
    SSL *ssl = NULL;
    if (buf == NULL || batch == NULL)
        goto Exit;
    for (int i = 0; i != CREATE_BATCH; ++i)
        memcpy(batch + (size_t)i * (size_t)req_len, req, (size_t)req_len);
    for (long done = 0; done < opts.conns;) {
        if (ssl == NULL && (ssl = blocking_tls(&fd, alpn_h1, sizeof(alpn_h1) - 1)) == NULL) {
            fprintf(stderr, "hold_conns: cannot open a TLS connection to %s:%d for session creation\n", opts.host, opts.port);
            goto Exit;
        }
        long n = opts.conns - done < CREATE_BATCH ? opts.conns - done : CREATE_BATCH;
        if (SSL_write(ssl, batch, (int)((size_t)req_len * (size_t)n)) <= 0) {
            fprintf(stderr, "hold_conns: session creation: write failed\n");
            goto Exit;
        }
        size_t have = 0;
        for (long i = 0; i != n; ++i) {
            int status;
            const char *body;
            size_t body_len;
            char url[1024];
            long rlen = read_response(ssl, buf, &have, &status, &body, &body_len);
            if (rlen < 0) {
                fprintf(stderr, "hold_conns: session creation: no complete response (after %ld sessions)\n", done);
                goto Exit;
            }
            if (status != 201) {
                fprintf(stderr, "hold_conns: session creation answered %d: %.*s%s\n", status, (int)body_len, body,
                        status == 400 ? " (is the relay started with --allow-unbound?)" : "");
                goto Exit;
            }
            session_t *s = &sessions[done];
            const char *path;
            if (json_member(body, body_len, "poll_url", url, sizeof(url)) != 0 ||
                json_member(body, body_len, "poll_token", s->token, sizeof(s->token)) != 0 || strncmp(url, "https://", 8) != 0 ||
                (path = strchr(url + 8, '/')) == NULL || strlen(path) >= sizeof(s->path)) {
                fprintf(stderr, "hold_conns: session creation: unexpected answer: %.*s\n", (int)body_len, body);
                goto Exit;
            }
            memcpy(s->path, path, strlen(path) + 1);
            ++done;
            memmove(buf, buf + rlen, have - (size_t)rlen);
            have -= (size_t)rlen;
        }
    }
    ret = 0;
Exit:
    if (ssl != NULL) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    if (fd != -1)
        close(fd);
    free(buf);
    free(batch);
    return ret;
}

/* --urls FILE: lines "poll_url poll_token" */
static int read_sessions(void)
{
    FILE *fp = fopen(opts.urls, "r");
    char line[1024], url[1024];
    long n = 0;
    if (fp == NULL) {
        fprintf(stderr, "hold_conns: cannot open %s\n", opts.urls);
        return -1;
    }
    while (n != opts.conns && fgets(line, sizeof(line), fp) != NULL) {
        char *sp = strchr(line, ' '), *path;
        if (sp == NULL)
            continue;
        *sp = '\0';
        memcpy(url, line, (size_t)(sp - line) + 1);
        char *tok = sp + 1;
        tok[strcspn(tok, " \r\n")] = '\0';
        if (strncmp(url, "https://", 8) != 0 || (path = strchr(url + 8, '/')) == NULL || strlen(path) >= URL_PATH_MAX ||
            strlen(tok) >= TOKEN_MAX || *tok == '\0')
            continue;
        memcpy(sessions[n].path, path, strlen(path) + 1);
        memcpy(sessions[n].token, tok, strlen(tok) + 1);
        ++n;
    }
    fclose(fp);
    if (n != opts.conns) {
        fprintf(stderr, "hold_conns: %s has %ld usable lines, --conns is %ld\n", opts.urls, n, opts.conns);
        return -1;
    }
    return 0;
}

static int save_sessions(void)
{
    FILE *fp = fopen(opts.save, "w");
    if (fp == NULL)
        return -1;
    for (long i = 0; i != opts.conns; ++i)
        fprintf(fp, "https://localhost:%d%s %s\n", opts.port, sessions[i].path, sessions[i].token);
    return fclose(fp);
}

/* ---- the held connections ---- */

/* HPACK: an integer with an n-bit prefix, first byte ORed with flags */
static size_t hpack_int(uint8_t *p, uint8_t flags, int nbits, size_t v)
{
    size_t max = ((size_t)1 << nbits) - 1, n = 0;
    if (v < max) {
        p[n++] = flags | (uint8_t)v;
        return n;
    }
    p[n++] = flags | (uint8_t)max;
    for (v -= max; v >= 128; v >>= 7)
        p[n++] = (uint8_t)(0x80 | (v & 0x7f));
    p[n++] = (uint8_t)v;
    return n;
}

/* a literal header field (no Huffman): with incremental indexing (as nghttp2 does for most fields) or never indexed
 * (as nghttp2 does for authorization); the name from the static table (name_index) or literal */
static size_t hpack_field(uint8_t *p, int indexing, size_t name_index, const char *name, const char *value)
{
    size_t n = indexing ? hpack_int(p, 0x40, 6, name_index) : hpack_int(p, 0x10, 4, name_index);
    if (name_index == 0) {
        n += hpack_int(p + n, 0, 7, strlen(name));
        memcpy(p + n, name, strlen(name));
        n += strlen(name);
    }
    n += hpack_int(p + n, 0, 7, strlen(value));
    memcpy(p + n, value, strlen(value));
    return n + strlen(value);
}

static size_t frame_header(uint8_t *p, size_t len, uint8_t type, uint8_t flags, uint32_t stream)
{
    p[0] = (uint8_t)(len >> 16), p[1] = (uint8_t)(len >> 8), p[2] = (uint8_t)len;
    p[3] = type, p[4] = flags;
    p[5] = (uint8_t)(stream >> 24), p[6] = (uint8_t)(stream >> 16), p[7] = (uint8_t)(stream >> 8), p[8] = (uint8_t)stream;
    return 9;
}

static void build_request(conn_t *c, const session_t *s)
{
    char authority[64], auth[TOKEN_MAX + 16], prefer[32];
    snprintf(authority, sizeof(authority), "localhost:%d", opts.port);
    snprintf(auth, sizeof(auth), "Bearer %s", s->token);
    snprintf(prefer, sizeof(prefer), "wait=%ld", opts.wait);
    if (!opts.h2) {
        int n = snprintf(c->req, sizeof(c->req),
                         "GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nPrefer: %s\r\nAccept: application/json\r\n\r\n",
                         s->path, authority, auth, prefer);
        c->req_len = (size_t)n;
        return;
    }
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    uint8_t *p = (uint8_t *)c->req, block[REQUEST_MAX / 2];
    size_t n = 0, b = 0;
    memcpy(p, preface, sizeof(preface) - 1);
    n = sizeof(preface) - 1;
    n += frame_header(p + n, 0, 0x4, 0, 0);                       /* SETTINGS, all defaults */
    block[b++] = 0x82;                                            /* :method GET */
    block[b++] = 0x87;                                            /* :scheme https */
    b += hpack_field(block + b, 1, 1, NULL, authority);           /* :authority */
    b += hpack_field(block + b, 0, 4, NULL, s->path);             /* :path, not indexed */
    b += hpack_field(block + b, 0, 23, NULL, auth);               /* authorization, never indexed */
    b += hpack_field(block + b, 1, 0, "prefer", prefer);          /* prefer */
    b += hpack_field(block + b, 1, 19, NULL, "application/json"); /* accept */
    n += frame_header(p + n, b, 0x1, 0x5, 1);                     /* HEADERS, END_STREAM | END_HEADERS, stream 1 */
    memcpy(p + n, block, b);
    c->req_len = n + b;
}

static void watch(conn_t *c, uint32_t events)
{
    if (c->events == events)
        return;
    struct epoll_event ev = {events, {.ptr = c}};
    epoll_ctl(epfd, c->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c->fd, &ev);
    c->events = events;
}

static void conn_fail(conn_t *c, const char *what)
{
    if (c->state == C_HELD)
        --n_held;
    if (c->state == C_CONNECTING || c->state == C_HANDSHAKE || c->state == C_SENDING)
        --n_open;
    c->state = C_FAILED;
    note_error(what);
    if (c->fd != -1) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
}

static void conn_answered(conn_t *c, const char *what)
{
    if (c->state == C_HELD) {
        --n_held;
        ++n_answered;
        c->state = C_ANSWERED;
        if (first_error[0] == '\0')
            snprintf(first_error, sizeof(first_error), "a pickup was answered early: %s", what);
    }
}

/* SSL_get_error after a call that did not complete: 0 when it wants I/O (watched), -1 on a failure */
static int want_io(conn_t *c, int ret)
{
    switch (SSL_get_error(c->ssl, ret)) {
    case SSL_ERROR_WANT_READ:
        watch(c, EPOLLIN);
        return 0;
    case SSL_ERROR_WANT_WRITE:
        watch(c, EPOLLIN | EPOLLOUT);
        return 0;
    default:
        return -1;
    }
}

/* h2: what the server sent (SETTINGS get their ACK; a HEADERS, RST_STREAM or GOAWAY ends the hold) */
static void h2_input(conn_t *c, const uint8_t *p, size_t len)
{
    while (len != 0) {
        if (c->payload_left != 0) {
            size_t n = len < c->payload_left ? len : c->payload_left;
            p += n, len -= n, c->payload_left -= n;
            continue;
        }
        size_t n = 9 - c->fhdr_have < len ? 9 - c->fhdr_have : len;
        memcpy(c->fhdr + c->fhdr_have, p, n);
        c->fhdr_have += n, p += n, len -= n;
        if (c->fhdr_have != 9)
            break;
        c->fhdr_have = 0;
        c->payload_left = (size_t)c->fhdr[0] << 16 | (size_t)c->fhdr[1] << 8 | c->fhdr[2];
        uint8_t type = c->fhdr[3], flags = c->fhdr[4];
        if (type == 0x4 && !(flags & 0x1))
            c->settings_ack = 1;
        else if (type == 0x1)
            conn_answered(c, "HEADERS");
        else if (type == 0x3)
            conn_answered(c, "RST_STREAM");
        else if (type == 0x7)
            conn_answered(c, "GOAWAY");
    }
}

static void conn_io(conn_t *c)
{
    int ret;
    switch (c->state) {
    case C_CONNECTING: {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            conn_fail(c, "connect failed");
            return;
        }
        c->state = C_HANDSHAKE;
    } /* fall through */
    case C_HANDSHAKE:
        ERR_clear_error();
        if ((ret = SSL_do_handshake(c->ssl)) != 1) {
            if (want_io(c, ret) != 0)
                conn_fail(c, "TLS handshake failed");
            return;
        }
        {
            const unsigned char *alpn;
            unsigned alpn_len;
            SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
            if (!(opts.h2 ? alpn_len == 2 && memcmp(alpn, "h2", 2) == 0 : alpn_len == 0 || memcmp(alpn, "http/1.1", 8) == 0)) {
                conn_fail(c, "the server did not select the protocol asked for (ALPN)");
                return;
            }
        }
        c->state = C_SENDING;
        /* fall through */
    case C_SENDING:
        while (c->req_off != c->req_len) {
            ERR_clear_error();
            if ((ret = SSL_write(c->ssl, c->req + c->req_off, (int)(c->req_len - c->req_off))) <= 0) {
                if (want_io(c, ret) != 0)
                    conn_fail(c, "write failed");
                return;
            }
            c->req_off += (size_t)ret;
        }
        c->state = C_HELD;
        --n_open;
        ++n_held;
        watch(c, EPOLLIN);
        /* then read what already came */
        /* fall through */
    case C_HELD:
    case C_ANSWERED:
        for (;;) {
            uint8_t buf[4096];
            ERR_clear_error();
            if ((ret = SSL_read(c->ssl, buf, sizeof(buf))) <= 0) {
                int e = SSL_get_error(c->ssl, ret);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                    break;
                if (c->state == C_HELD)
                    conn_fail(c, e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL ? "the relay closed a held connection"
                                                                                      : "TLS read failed");
                else
                    conn_fail(c, "closed after its answer");
                return;
            }
            if (opts.h2) {
                h2_input(c, buf, (size_t)ret);
            } else {
                char what[32];
                snprintf(what, sizeof(what), "%.12s", (const char *)buf);
                conn_answered(c, what);
            }
        }
        if (c->settings_ack) {
            uint8_t ack[9];
            frame_header(ack, 0, 0x4, 0x1, 0);
            if (SSL_write(c->ssl, ack, sizeof(ack)) == (int)sizeof(ack))
                c->settings_ack = 0;
        }
        break;
    default:
        break;
    }
}

static int conn_start(conn_t *c, const session_t *s)
{
    static const char alpn_h1[] = "\x08http/1.1", alpn_h2[] = "\x02h2";
    build_request(c, s);
    if ((c->fd = tcp_connect(1)) == -1) {
        note_error(errno == EMFILE || errno == ENFILE ? "out of descriptors (raise ulimit -n)" : "connect failed");
        c->state = C_FAILED;
        return -1;
    }
    c->ssl = SSL_new(ctx);
    SSL_set_tlsext_host_name(c->ssl, "localhost");
    if (opts.h2)
        SSL_set_alpn_protos(c->ssl, (const unsigned char *)alpn_h2, sizeof(alpn_h2) - 1);
    else
        SSL_set_alpn_protos(c->ssl, (const unsigned char *)alpn_h1, sizeof(alpn_h1) - 1);
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_connect_state(c->ssl);
    c->state = C_CONNECTING;
    ++n_open;
    watch(c, EPOLLOUT | EPOLLIN);
    return 0;
}

static void poll_once(int timeout_ms)
{
    struct epoll_event evs[256];
    int n = epoll_wait(epfd, evs, 256, timeout_ms);
    for (int i = 0; i < n; ++i) {
        conn_t *c = evs[i].data.ptr;
        if (c->fd != -1)
            conn_io(c);
    }
}

/* authrelay_waiting_pickups from the admin listener's /metrics, or -1 */
static long waiting_gauge(void)
{
    struct sockaddr_in sin = {0};
    char req[128], *buf = malloc(1 << 20);
    size_t have = 0;
    long v = -1;
    int fd;
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)opts.admin_port);
    inet_pton(AF_INET, opts.host, &sin.sin_addr);
    if (buf == NULL || (fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
        free(buf);
        return -1;
    }
    struct timeval tv = {IO_TIMEOUT_SECS, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int n = snprintf(req, sizeof(req), "GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n", opts.host);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 && write(fd, req, (size_t)n) == n) {
        ssize_t r;
        while (have < (1 << 20) - 1 && (r = read(fd, buf + have, (1 << 20) - 1 - have)) > 0)
            have += (size_t)r;
        buf[have] = '\0';
        const char *p = strstr(buf, "\nauthrelay_waiting_pickups ");
        if (p != NULL)
            v = strtol(p + sizeof("\nauthrelay_waiting_pickups ") - 1, NULL, 10);
    }
    close(fd);
    free(buf);
    return v;
}

static void usage(FILE *fp)
{
    fprintf(fp, "usage: hold_conns --port PORT --pid PID [--proto h1|h2] [--conns N] [--wait W] [--host ADDR]\n"
                "                  [--parallel P] [--settle MS] [--admin-port PORT] [--hold-secs S]\n"
                "                  [--urls FILE | --save FILE]\n"
                "  --proto      h2 (default) or h1: the ALPN offered on every connection\n"
                "  --conns      separate TLS connections, one held pickup each (default 1000)\n"
                "  --wait       the Prefer: wait=W asked (default 30; the relay caps it at its --wait-max)\n"
                "  --parallel   handshakes in progress at once (default 64)\n"
                "  --settle     milliseconds between the last pickup sent and the reading of VmRSS (default 1000)\n"
                "  --admin-port the relay's admin listener: VmRSS is read once authrelay_waiting_pickups >= N\n"
                "  --hold-secs  keep the pickups waiting this much longer after the reading (default 0)\n"
                "  --urls       take 'poll_url poll_token' lines from FILE instead of creating sessions\n"
                "  --save       write the created sessions to FILE in that format\n");
}

static long num_arg(const char *s, long min, long max, const char *name)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "hold_conns: bad %s: %s\n", name, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"port", required_argument, NULL, 'p'},
                                             {"pid", required_argument, NULL, 'P'},
                                             {"proto", required_argument, NULL, 'x'},
                                             {"conns", required_argument, NULL, 'n'},
                                             {"wait", required_argument, NULL, 'w'},
                                             {"host", required_argument, NULL, 'H'},
                                             {"parallel", required_argument, NULL, 'j'},
                                             {"settle", required_argument, NULL, 's'},
                                             {"admin-port", required_argument, NULL, 'a'},
                                             {"hold-secs", required_argument, NULL, 'k'},
                                             {"urls", required_argument, NULL, 'u'},
                                             {"save", required_argument, NULL, 'S'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'p':
            opts.port = (int)num_arg(optarg, 1, 65535, "--port");
            break;
        case 'P':
            opts.pid = num_arg(optarg, 1, 1L << 30, "--pid");
            break;
        case 'x':
            if (strcmp(optarg, "h1") != 0 && strcmp(optarg, "h2") != 0) {
                fprintf(stderr, "hold_conns: --proto is h1 or h2\n");
                return 2;
            }
            opts.h2 = strcmp(optarg, "h2") == 0;
            break;
        case 'n':
            opts.conns = num_arg(optarg, 1, CONNS_MAX, "--conns");
            break;
        case 'w':
            opts.wait = num_arg(optarg, 0, 100000, "--wait");
            break;
        case 'H':
            opts.host = optarg;
            break;
        case 'j':
            opts.parallel = num_arg(optarg, 1, 10000, "--parallel");
            break;
        case 's':
            opts.settle_ms = num_arg(optarg, 0, 600000, "--settle");
            break;
        case 'a':
            opts.admin_port = (int)num_arg(optarg, 1, 65535, "--admin-port");
            break;
        case 'k':
            opts.hold_secs = num_arg(optarg, 0, 86400, "--hold-secs");
            break;
        case 'u':
            opts.urls = optarg;
            break;
        case 'S':
            opts.save = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (opts.port == 0 || opts.pid == 0 || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (rss_kib() < 0) {
        fprintf(stderr, "hold_conns: cannot read /proc/%ld/status\n", opts.pid);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();

    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF); /* every connection a full handshake: separate clients */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);         /* this side's memory: 10,000 idle connections */
    sessions = calloc((size_t)opts.conns, sizeof(*sessions));
    conns = calloc((size_t)opts.conns, sizeof(*conns));
    if (ctx == NULL || sessions == NULL || conns == NULL || (epfd = epoll_create1(EPOLL_CLOEXEC)) == -1) {
        fprintf(stderr, "hold_conns: out of memory\n");
        return 1;
    }

    double t0 = now();
    if (opts.urls != NULL ? read_sessions() != 0 : create_sessions() != 0)
        return 1;
    if (opts.urls == NULL)
        printf("created %ld sessions in %.1f s\n", opts.conns, now() - t0);
    if (opts.save != NULL && save_sessions() != 0) {
        fprintf(stderr, "hold_conns: cannot write %s\n", opts.save);
        return 1;
    }
    usleep(300 * 1000); /* the creating connection's close reaches the relay */
    long rss_before = rss_kib();

    /* connect, handshake and send, opts.parallel connections in progress at once */
    t0 = now();
    long next = 0;
    while (next != opts.conns || n_open != 0) {
        while (next != opts.conns && n_open < opts.parallel) {
            conn_start(&conns[next], &sessions[next]);
            ++next;
        }
        poll_once(100);
        if (now() - t0 > opts.wait + 60.0) {
            note_error("connections still opening after --wait + 60 s");
            break;
        }
    }
    double t_sent = now();
    printf("HOLDING %ld pickups (%s, Prefer: wait=%ld) on %ld TLS connections, opened in %.1f s\n", n_held,
           opts.h2 ? "HTTP/2" : "HTTP/1.1", opts.wait, opts.conns, t_sent - t0);
    fflush(stdout);
    /* settle: the relay reads the last requests and parks them */
    while (now() - t_sent < opts.settle_ms / 1000.0)
        poll_once(50);
    if (opts.admin_port != 0) {
        long g = -1;
        while ((g = waiting_gauge()) < n_held && now() - t_sent < ADMIN_WAIT_SECS)
            poll_once(200);
        printf("authrelay_waiting_pickups %ld\n", g);
    }
    poll_once(0);
    long rss_after = rss_kib();
    long held = n_held;
    if (now() - t0 > (double)opts.wait)
        fprintf(stderr, "hold_conns: warning: the first pickups went out %.0f s ago, beyond wait=%ld\n", now() - t0, opts.wait);
    for (double t_end = now() + (double)opts.hold_secs; now() < t_end;)
        poll_once(200);

    for (long i = 0; i != opts.conns; ++i) {
        conn_t *c = &conns[i];
        if (c->fd != -1)
            close(c->fd);
        if (c->ssl != NULL)
            SSL_free(c->ssl);
    }
    sleep(1);
    long rss_closed = rss_kib();
    if (first_error[0] != '\0')
        printf("first problem: %s\n", first_error);
    printf("RESULT hold_conns proto=%s conns=%ld rss_before_kib=%ld rss_after_kib=%ld per_conn_kib=%.1f held=%ld answered=%ld "
           "errors=%ld rss_closed_kib=%ld\n",
           opts.h2 ? "h2" : "h1", opts.conns, rss_before, rss_after, (double)(rss_after - rss_before) / (double)opts.conns, held,
           n_answered, n_errors, rss_closed);
    free(sessions);
    free(conns);
    SSL_CTX_free(ctx);
    return held == opts.conns && n_errors == 0 ? 0 : 3;
}
