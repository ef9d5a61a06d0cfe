/* raw.c: raw client connections for the integration tests (see raw.h) */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include "harness.h"
#include "raw.h"

static SSL_CTX *client_ctx(void)
{
    static SSL_CTX *ctx;
    if (ctx == NULL) {
        static const unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
        ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn));
    }
    return ctx;
}

/* waits for the descriptor to be readable (POLLIN) or writable (POLLOUT) until the deadline (rly_now seconds) */
static int wait_fd(int fd, short events, double deadline)
{
    for (;;) {
        double left = deadline - rly_now();
        if (left <= 0)
            return -1;
        struct pollfd pfd = {fd, events, 0};
        int n = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

int rly_raw_connect(rly_raw_t *c, unsigned short port, const char *src)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    int on = 1;
    c->ssl = NULL;
    signal(SIGPIPE, SIG_IGN); /* a write to a connection the relay closed is an error here, not a signal */
    if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1)
        return -1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    if (src != NULL) {
        struct sockaddr_in from = {.sin_family = AF_INET};
        if (inet_pton(AF_INET, src, &from.sin_addr) != 1 || bind(c->fd, (struct sockaddr *)&from, sizeof(from)) != 0)
            goto Error;
    }
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS)
        goto Error;
    /* loopback: the kernel completes the connection (or queues it in the backlog) at once */
    if (wait_fd(c->fd, POLLOUT, rly_now() + 2) != 0)
        goto Error;
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
        goto Error;
    return 0;
Error:
    close(c->fd);
    c->fd = -1;
    return -1;
}

int rly_raw_handshake(rly_raw_t *c, long timeout_ms)
{
    double deadline = rly_now() + (double)timeout_ms / 1000;
    if (c->ssl == NULL) {
        c->ssl = SSL_new(client_ctx());
        SSL_set_fd(c->ssl, c->fd);
        SSL_set_tlsext_host_name(c->ssl, "localhost");
    }
    for (;;) {
        int r = SSL_connect(c->ssl);
        if (r == 1)
            return 0;
        int e = SSL_get_error(c->ssl, r);
        ERR_clear_error();
        if (e == SSL_ERROR_WANT_READ) {
            if (wait_fd(c->fd, POLLIN, deadline) != 0)
                return -1;
        } else if (e == SSL_ERROR_WANT_WRITE) {
            if (wait_fd(c->fd, POLLOUT, deadline) != 0)
                return -1;
        } else {
            return -1;
        }
    }
}

int rly_raw_write(rly_raw_t *c, const void *buf, size_t len)
{
    double deadline = rly_now() + 5;
    size_t off = 0;
    while (off < len) {
        ssize_t n;
        if (c->ssl != NULL) {
            int r = SSL_write(c->ssl, (const char *)buf + off, (int)(len - off));
            if (r > 0) {
                off += (size_t)r;
                continue;
            }
            int e = SSL_get_error(c->ssl, r);
            ERR_clear_error();
            if ((e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) ||
                wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline) != 0)
                return -1;
            continue;
        }
        if ((n = send(c->fd, (const char *)buf + off, len - off, MSG_NOSIGNAL)) > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        if (wait_fd(c->fd, POLLOUT, deadline) != 0)
            return -1;
    }
    return 0;
}

int rly_raw_open(rly_raw_t *c, unsigned short port, const char *src, const void *pre, size_t pre_len, int tls, long timeout_ms)
{
    if (rly_raw_connect(c, port, src) != 0)
        return -1;
    if ((pre != NULL && rly_raw_write(c, pre, pre_len) != 0) || (tls && rly_raw_handshake(c, timeout_ms) != 0)) {
        rly_raw_close(c);
        return -1;
    }
    return 0;
}

size_t rly_raw_read(rly_raw_t *c, char *buf, size_t cap, long timeout_ms, const char *until, int *closed)
{
    size_t len = 0;
    int eof = 0;
    double deadline = rly_now() + (double)timeout_ms / 1000;
    while (len + 1 < cap && !eof) {
        ssize_t n;
        if (c->ssl != NULL) {
            int r = SSL_read(c->ssl, buf + len, (int)(cap - 1 - len));
            if (r > 0) {
                n = r;
            } else {
                int e = SSL_get_error(c->ssl, r);
                ERR_clear_error();
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                    n = -1;
                    errno = EAGAIN;
                } else {
                    n = 0; /* close_notify, EOF, reset */
                }
            }
        } else {
            n = recv(c->fd, buf + len, cap - 1 - len, 0);
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                n = 0;
        }
        if (n > 0) {
            len += (size_t)n;
            buf[len] = '\0';
            if (until != NULL && strstr(buf, until) != NULL)
                break;
            continue;
        }
        if (n == 0) {
            eof = 1;
            break;
        }
        if (wait_fd(c->fd, POLLIN, deadline) != 0)
            break;
    }
    buf[len] = '\0';
    if (closed != NULL)
        *closed = eof;
    return len;
}

void rly_raw_close(rly_raw_t *c)
{
    if (c->ssl != NULL)
        SSL_free(c->ssl);
    if (c->fd >= 0)
        close(c->fd);
    c->ssl = NULL;
    c->fd = -1;
}

int rly_raw_status(const char *buf)
{
    if (strncmp(buf, "HTTP/1.1 ", 9) != 0 && strncmp(buf, "HTTP/1.0 ", 9) != 0)
        return 0;
    int status = 0;
    for (int i = 9; i != 12; ++i) {
        if (buf[i] < '0' || buf[i] > '9')
            return 0;
        status = status * 10 + (buf[i] - '0');
    }
    return status;
}

int rly_raw_get(unsigned short port, const char *src, const void *pre, size_t pre_len, int tls, const char *path, const char *extra)
{
    rly_raw_t c;
    char req[2048], resp[8192];
    if (rly_raw_open(&c, port, src, pre, pre_len, tls, 5000) != 0)
        return 0;
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: %s\r\n%sConnection: close\r\n\r\n", path,
                     RLY_TEST_UA, extra != NULL ? extra : "");
    int status = 0;
    if (n > 0 && (size_t)n < sizeof(req) && rly_raw_write(&c, req, (size_t)n) == 0) {
        rly_raw_read(&c, resp, sizeof(resp), 5000, "\r\n\r\n", NULL);
        status = rly_raw_status(resp);
    }
    rly_raw_close(&c);
    return status;
}

double rly_proc_cpu(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    /* the fields after the command's closing parenthesis: state is field 3, utime 14, stime 15 */
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    unsigned long long ut = 0, st = 0;
    int field = 2;
    for (char *q = p + 1; *q != '\0' && field < 15; ++q) {
        if (*q == ' ') {
            ++field;
            char *end;
            unsigned long long v = strtoull(q + 1, &end, 10);
            if (field == 14)
                ut = v;
            else if (field == 15)
                st = v;
        }
    }
    long hz = sysconf(_SC_CLK_TCK);
    return hz > 0 ? (double)(ut + st) / (double)hz : -1;
}
