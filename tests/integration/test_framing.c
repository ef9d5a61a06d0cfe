/* test_framing.c: HTTP/1.1 message framing on the public listener (RFC 9112 6.1, 6.3, 3.2), over raw sockets, over TLS and
 * over --plain: a request with two Content-Length fields, Content-Length beside Transfer-Encoding, a Transfer-Encoding
 * h2o would misread, or no or two Host fields gets 400 and the connection is closed, so the bytes sent after it (a
 * smuggled request) are never answered; a keep-alive pair still works; HTTP/2 streams whose DATA differs from their
 * content-length are reset by h2o */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "harness.h"

#define DISCOVERY "/.well-known/authrelay"
#define GET_HEAD "GET " DISCOVERY " HTTP/1.1\r\n"
/* what a front proxy that framed the first request differently would pass on as part of its body */
#define SMUGGLED "GET " DISCOVERY " HTTP/1.1\r\nHost: localhost\r\n\r\n"
#define READ_MAX 65536

static rly_relay_t tls_relay, plain_relay;

typedef struct st_target_t {
    rly_relay_t *relay;
    int tls;
} target_t;

static target_t over_tls = {&tls_relay, 1}, over_plain = {&plain_relay, 0};

static int group_setup(void **state)
{
    (void)state;
    static const char *const plain[] = {"--plain", NULL};
    if (rly_relay_start(&tls_relay, NULL) != 0)
        return -1;
    return rly_relay_start_dev(&plain_relay, plain);
}

static int group_teardown(void **state)
{
    (void)state;
    int a = rly_relay_finish(&tls_relay), b = rly_relay_finish(&plain_relay);
    return a == 0 && b == 0 ? 0 : -1;
}

/* ---- a raw connection: TCP, or TLS with ALPN alpn (wire format) ---- */

typedef struct st_conn_t {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
} conn_t;

static void conn_open(conn_t *c, const target_t *t, const char *alpn, size_t alpnlen)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(t->relay->port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(c->fd >= 0);
    if (connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
        fail_msg("connect to 127.0.0.1:%u: %s", (unsigned)t->relay->port, strerror(errno));
    if (t->tls) {
        assert_non_null(c->ctx = SSL_CTX_new(TLS_client_method()));
        SSL_CTX_set_options(c->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF); /* a close without close_notify reads as EOF too */
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
        assert_int_equal(SSL_CTX_load_verify_locations(c->ctx, t->relay->cert, NULL), 1);
        assert_non_null(c->ssl = SSL_new(c->ctx));
        SSL_set_tlsext_host_name(c->ssl, "localhost");
        assert_int_equal(SSL_set1_host(c->ssl, "localhost"), 1);
        assert_int_equal(SSL_set_alpn_protos(c->ssl, (const unsigned char *)alpn, (unsigned)alpnlen), 0);
        SSL_set_fd(c->ssl, c->fd);
        if (SSL_connect(c->ssl) != 1)
            fail_msg("TLS handshake with the relay failed: %s", ERR_error_string(ERR_get_error(), NULL));
    }
    /* from here on reads are polled */
    assert_int_equal(fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK), 0);
}

static void conn_close(conn_t *c)
{
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    close(c->fd);
}

static void conn_send(conn_t *c, const void *data, size_t len)
{
    const char *p = data;
    while (len != 0) {
        ssize_t n;
        if (c->ssl != NULL) {
            int r = SSL_write(c->ssl, p, (int)len);
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                    struct pollfd pfd = {c->fd, e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, 0};
                    poll(&pfd, 1, 1000);
                    continue;
                }
                fail_msg("SSL_write failed (%d)", e);
            }
            n = r;
        } else {
            n = write(c->fd, p, len);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                struct pollfd pfd = {c->fd, POLLOUT, 0};
                poll(&pfd, 1, 1000);
                continue;
            }
            if (n <= 0)
                fail_msg("write failed: %s", strerror(errno));
        }
        p += n;
        len -= (size_t)n;
    }
}

/*
 * Reads what the relay sends into buf (up to cap - 1 bytes, NUL-terminated, *len its length) for at most timeout_ms or,
 * with until_eof == 0, until stop(buf, *len) says enough. Returns 1 if the relay closed the connection (EOF, or a reset
 * after it closed), 0 if not within the time.
 */
static int conn_read(conn_t *c, char *buf, size_t cap, size_t *len, long timeout_ms, int (*stop)(const char *, size_t))
{
    double deadline = rly_now() + timeout_ms / 1000.0;
    for (;;) {
        if (stop != NULL && stop(buf, *len))
            return 0;
        ssize_t n;
        if (c->ssl != NULL) {
            int r = SSL_read(c->ssl, buf + *len, (int)(cap - 1 - *len));
            if (r > 0) {
                n = r;
            } else {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_ZERO_RETURN)
                    return 1;
                if (e == SSL_ERROR_SYSCALL && (errno == ECONNRESET || errno == 0))
                    return 1;
                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                    fail_msg("SSL_read failed (%d): %s", e, ERR_error_string(ERR_get_error(), NULL));
                n = -1;
                errno = EAGAIN;
            }
        } else {
            n = read(c->fd, buf + *len, cap - 1 - *len);
            if (n == 0 || (n < 0 && errno == ECONNRESET))
                return 1;
        }
        if (n > 0) {
            *len += (size_t)n;
            buf[*len] = '\0';
            if (*len == cap - 1)
                fail_msg("more than %zu bytes from the relay", cap - 1);
            continue;
        }
        if (errno != EAGAIN && errno != EINTR)
            fail_msg("read failed: %s", strerror(errno));
        double left = deadline - rly_now();
        if (left <= 0)
            return 0;
        struct pollfd pfd = {c->fd, POLLIN, 0};
        poll(&pfd, 1, (int)(left * 1000) + 1);
    }
}

/* the number of HTTP/1.1 responses in what was read, walked by their Content-Length (the relay sends one on each); a
 * response cut short counts, bytes that are no response count as one more */
static size_t count_responses(const char *buf)
{
    size_t n = 0;
    const char *p = buf;
    while (*p != '\0') {
        ++n;
        const char *end = strstr(p, "\r\n\r\n"), *cl = strcasestr(p, "\r\nContent-Length:");
        if (strncmp(p, "HTTP/1.", 7) != 0 || end == NULL || cl == NULL || cl > end)
            break;
        size_t body = strtoul(cl + 17, NULL, 10);
        p = end + 4 + body > p + strlen(p) ? p + strlen(p) : end + 4 + body;
    }
    return n;
}

/* 1 if the head of the response at buf has the header line "name: value" (case-insensitive) */
static int has_header(const char *buf, const char *name, const char *value)
{
    const char *end = strstr(buf, "\r\n\r\n");
    size_t nlen = strlen(name), vlen = strlen(value);
    for (const char *p = strstr(buf, "\r\n"); p != NULL && p < end; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (*v == ' ')
                ++v;
            if (strncasecmp(v, value, vlen) == 0 && v[vlen] == '\r')
                return 1;
        }
    }
    return 0;
}

/*
 * Sends req on a new connection and reads for up to 5 s: exactly one response, a 400 with Connection: close and the
 * JSON invalid_request body (json == 0: h2o's own 400, whose body is text), and then the connection closed by the relay:
 * what followed the request (a smuggled one) was never answered.
 */
static void expect_refused_at(const target_t *t, const char *req, size_t reqlen, int json, const char *what, int line)
{
    conn_t c;
    char *buf = rly_keep(malloc(READ_MAX));
    size_t len = 0;
    buf[0] = '\0';
    conn_open(&c, t, "\x08http/1.1", 9);
    conn_send(&c, req, reqlen);
    int closed = conn_read(&c, buf, READ_MAX, &len, 5000, NULL);
    conn_close(&c);
    const char *over = t->tls ? "TLS" : "--plain";
    if (strncmp(buf, "HTTP/1.1 400 ", 13) != 0)
        fail_msg("line %d: %s over %s: expected 400, got:\n%.1500s", line, what, over, buf);
    if (count_responses(buf) != 1)
        fail_msg("line %d: %s over %s: %zu responses on one connection (the bytes after the request were answered):\n%.3000s", line,
                 what, over, count_responses(buf), buf);
    if (!has_header(buf, "Connection", "close"))
        fail_msg("line %d: %s over %s: the 400 does not say Connection: close:\n%.1500s", line, what, over, buf);
    if (!closed)
        fail_msg("line %d: %s over %s: the relay kept the connection open for 5 s after the 400", line, what, over);
    const char *body = strstr(buf, "\r\n\r\n");
    if (!json)
        return;
    rly_response_t res = {.body = (char *)body + 4, .body_len = strlen(body + 4)};
    if (!rly_is_error_body(&res, "invalid_request"))
        fail_msg("line %d: %s over %s: not an invalid_request error body: %.500s", line, what, over, body + 4);
}
#define expect_refused(t, req, what) expect_refused_at(t, req, strlen(req), 1, what, __LINE__)
/* refused by h2o before the handler (it has always been): 400 and close all the same */
#define expect_refused_by_h2o(t, req, what) expect_refused_at(t, req, strlen(req), 0, what, __LINE__)

/* Content-Length twice, unequal: h2o took the first one, a front proxy may take the last; either way one 400, then close */
static void test_two_content_lengths(void **state)
{
    const target_t *t = *state;
    /* the last value covers the smuggled request: h2o 2.2.5 read an empty body and answered the rest as a second request */
    expect_refused(
        t, rly_strf(GET_HEAD "Host: localhost\r\nContent-Length: 0\r\nContent-Length: %zu\r\n\r\n%s", strlen(SMUGGLED), SMUGGLED),
        "Content-Length: 0 then the smuggled request's length");
    /* the first value covers it: h2o read it as the body; the connection must still close */
    expect_refused(
        t, rly_strf(GET_HEAD "Host: localhost\r\nContent-Length: %zu\r\nContent-Length: 0\r\n\r\n%s", strlen(SMUGGLED), SMUGGLED),
        "the smuggled request's length then Content-Length: 0");
    /* equal values: RFC 9112 6.3 lets a recipient collapse them; the relay refuses them too */
    expect_refused(t, GET_HEAD "Host: localhost\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n" SMUGGLED,
                   "Content-Length: 0 twice");
    expect_refused(t,
                   "POST /v1/sessions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                   "Content-Length: 2\r\n\r\n{}" SMUGGLED,
                   "a creation with Content-Length: 2 twice");
}

/* Content-Length beside Transfer-Encoding: chunked (h2o reads chunked; a proxy reading Content-Length sees one request) */
static void test_content_length_and_chunked(void **state)
{
    const target_t *t = *state;
    const char *chunked_end = "0\r\n\r\n";
    expect_refused(t,
                   rly_strf(GET_HEAD "Host: localhost\r\nContent-Length: %zu\r\nTransfer-Encoding: chunked\r\n\r\n%s%s",
                            strlen(chunked_end) + strlen(SMUGGLED), chunked_end, SMUGGLED),
                   "Content-Length then Transfer-Encoding");
    expect_refused(t,
                   rly_strf(GET_HEAD "Transfer-Encoding: chunked\r\nHost: localhost\r\nContent-Length: %zu\r\n\r\n%s%s",
                            strlen(chunked_end) + strlen(SMUGGLED), chunked_end, SMUGGLED),
                   "Transfer-Encoding then Content-Length");
}

/* a Transfer-Encoding h2o would misread: two fields (it takes the last), or a list */
static void test_transfer_encodings(void **state)
{
    const target_t *t = *state;
    expect_refused(t, GET_HEAD "Host: localhost\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" SMUGGLED,
                   "Transfer-Encoding gzip then chunked");
    expect_refused(t,
                   GET_HEAD "Host: localhost\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" SMUGGLED,
                   "Transfer-Encoding chunked twice");
    expect_refused_by_h2o(t, GET_HEAD "Host: localhost\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" SMUGGLED,
                          "Transfer-Encoding gzip, chunked");
    expect_refused(t,
                   "GET " DISCOVERY " HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "0\r\n\r\n" SMUGGLED,
                   "Transfer-Encoding in HTTP/1.0");
}

/* Host: none, two, or not a host */
static void test_host(void **state)
{
    const target_t *t = *state;
    expect_refused(t, GET_HEAD "\r\n" SMUGGLED, "no Host");
    expect_refused(t, GET_HEAD "Accept: */*\r\n\r\n" SMUGGLED, "no Host, another field");
    expect_refused(t, GET_HEAD "Host: localhost\r\nHost: localhost\r\n\r\n" SMUGGLED, "Host twice");
    expect_refused(t, GET_HEAD "Host: localhost\r\nHost: evil.example\r\n\r\n" SMUGGLED, "two different Hosts");
    expect_refused(t, GET_HEAD "Host: localhost/x\r\n\r\n" SMUGGLED, "a Host with a path");
}

/* complete responses are discovery documents: JSON objects that end the read so far */
static int two_responses(const char *buf, size_t len)
{
    return count_responses(buf) == 2 && len != 0 && buf[len - 1] == '}';
}

static int one_response(const char *buf, size_t len)
{
    return count_responses(buf) == 1 && len != 0 && buf[len - 1] == '}';
}

/* the control: well-framed requests, pipelined and then one after the other, are answered on one connection kept open */
static void test_keep_alive(void **state)
{
    const target_t *t = *state;
    conn_t c;
    char *buf = rly_keep(malloc(READ_MAX));
    size_t len = 0;
    buf[0] = '\0';
    conn_open(&c, t, "\x08http/1.1", 9);
    conn_send(&c, SMUGGLED SMUGGLED, 2 * strlen(SMUGGLED));
    if (conn_read(&c, buf, READ_MAX, &len, 5000, two_responses) != 0 || count_responses(buf) != 2)
        fail_msg("two pipelined requests: expected two responses on an open connection, got:\n%.3000s", buf);
    if (strncmp(buf, "HTTP/1.1 200 ", 13) != 0 || strstr(buf, "}HTTP/1.1 200 ") == NULL)
        fail_msg("expected two 200s:\n%.3000s", buf);
    if (!has_header(buf, "Connection", "keep-alive"))
        fail_msg("expected Connection: keep-alive:\n%.1500s", buf);
    /* a body with one Content-Length and then a request after it, on the same connection */
    len = 0;
    buf[0] = '\0';
    conn_send(&c, GET_HEAD "Host: localhost\r\nContent-Length: 3\r\n\r\nabc",
              strlen(GET_HEAD "Host: localhost\r\nContent-Length: 3\r\n\r\nabc"));
    if (conn_read(&c, buf, READ_MAX, &len, 5000, one_response) != 0 || strncmp(buf, "HTTP/1.1 200 ", 13) != 0)
        fail_msg("a request with a body on the kept connection:\n%.3000s", buf);
    len = 0;
    buf[0] = '\0';
    conn_send(&c, GET_HEAD "Host: localhost\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
              strlen(GET_HEAD "Host: localhost\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"));
    if (conn_read(&c, buf, READ_MAX, &len, 5000, one_response) != 0 || strncmp(buf, "HTTP/1.1 200 ", 13) != 0)
        fail_msg("a chunked request on the kept connection:\n%.3000s", buf);
    /* and the connection is still open a moment later */
    len = 0;
    buf[0] = '\0';
    if (conn_read(&c, buf, READ_MAX, &len, 300, NULL) != 0 || len != 0)
        fail_msg("the relay closed a keep-alive connection or sent more: %.500s", buf);
    conn_close(&c);
}

/* ---- HTTP/2: h2o checks a stream's DATA against its content-length ---- */

static size_t frame_head(uint8_t *p, size_t len, uint8_t type, uint8_t flags, uint32_t stream)
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

/* an HPACK literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2); names and values < 127 bytes */
static size_t hpack_literal(uint8_t *p, const char *name, const char *value)
{
    size_t n = 0, nlen = strlen(name), vlen = strlen(value);
    p[n++] = 0x00;
    p[n++] = (uint8_t)nlen;
    memcpy(p + n, name, nlen);
    n += nlen;
    p[n++] = (uint8_t)vlen;
    memcpy(p + n, value, vlen);
    return n + vlen;
}

/* POST /v1/sessions on stream 1 with content-length: declared and a DATA frame of body; what the relay answers on stream
 * 1: the frame type of HEADERS (1) or RST_STREAM (3) and *code its error code, or -1 (nothing within 5 s, or GOAWAY) */
static int h2_post(const target_t *t, const char *declared, const char *body, uint32_t *code)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    uint8_t out[1024], block[512];
    size_t n = 0, bn = 0;
    conn_t c;

    memcpy(out, preface, sizeof(preface) - 1);
    n = sizeof(preface) - 1;
    n += frame_head(out + n, 0, 0x4, 0, 0); /* SETTINGS, empty */
    bn += hpack_literal(block + bn, ":method", "POST");
    bn += hpack_literal(block + bn, ":scheme", "https");
    bn += hpack_literal(block + bn, ":authority", "localhost");
    bn += hpack_literal(block + bn, ":path", "/v1/sessions");
    bn += hpack_literal(block + bn, "content-type", "application/json");
    bn += hpack_literal(block + bn, "content-length", declared);
    n += frame_head(out + n, bn, 0x1, 0x4, 1); /* HEADERS, END_HEADERS */
    memcpy(out + n, block, bn);
    n += bn;
    n += frame_head(out + n, strlen(body), 0x0, 0x1, 1); /* DATA, END_STREAM */
    memcpy(out + n, body, strlen(body));
    n += strlen(body);

    conn_open(&c, t, "\x02h2", 3);
    const unsigned char *alpn;
    unsigned alpnlen;
    SSL_get0_alpn_selected(c.ssl, &alpn, &alpnlen);
    if (alpnlen != 2 || memcmp(alpn, "h2", 2) != 0)
        fail_msg("the relay did not negotiate h2");
    conn_send(&c, out, n);

    uint8_t *in = rly_keep(malloc(READ_MAX));
    size_t len = 0, at = 0;
    int result = -1;
    double deadline = rly_now() + 5;
    while (result == -1 && rly_now() < deadline) {
        int closed = conn_read(&c, (char *)in, READ_MAX, &len, 200, NULL);
        while (len - at >= 9) {
            size_t flen = ((size_t)in[at] << 16) | ((size_t)in[at + 1] << 8) | in[at + 2];
            uint8_t type = in[at + 3];
            uint32_t stream =
                ((uint32_t)(in[at + 5] & 0x7f) << 24) | ((uint32_t)in[at + 6] << 16) | ((uint32_t)in[at + 7] << 8) | in[at + 8];
            if (len - at < 9 + flen)
                break;
            if (stream == 1 && type == 0x1) {
                result = 1;
            } else if (stream == 1 && type == 0x3 && flen == 4) {
                const uint8_t *e = in + at + 9;
                *code = ((uint32_t)e[0] << 24) | ((uint32_t)e[1] << 16) | ((uint32_t)e[2] << 8) | e[3];
                result = 3;
            } else if (type == 0x7) {
                deadline = 0; /* GOAWAY */
            }
            at += 9 + flen;
        }
        if (closed)
            break;
    }
    conn_close(&c);
    return result;
}

static void test_h2_content_length(void **state)
{
    const target_t *t = *state;
    uint32_t code = 0;
    /* the control: DATA as long as declared reaches the relay, which answers (HEADERS) */
    assert_int_equal(h2_post(t, "2", "{}", &code), 1);
    /* shorter and longer DATA than declared: RST_STREAM PROTOCOL_ERROR (1), no response */
    code = 0;
    assert_int_equal(h2_post(t, "10", "{}", &code), 3);
    assert_int_equal(code, 1);
    code = 0;
    assert_int_equal(h2_post(t, "1", "{}", &code), 3);
    assert_int_equal(code, 1);
}

#define OVER_BOTH(f)                                                                                                               \
    {#f "@tls", f, NULL, rly_test_teardown, &over_tls},                                                                            \
    {                                                                                                                              \
#f "@plain", f, NULL, rly_test_teardown, &over_plain                                                                       \
    }

int main(void)
{
    const struct CMUnitTest tests[] = {
        OVER_BOTH(test_keep_alive),
        OVER_BOTH(test_two_content_lengths),
        OVER_BOTH(test_content_length_and_chunked),
        OVER_BOTH(test_transfer_encodings),
        OVER_BOTH(test_host),
        {"test_h2_content_length@tls", test_h2_content_length, NULL, rly_test_teardown, &over_tls},
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
