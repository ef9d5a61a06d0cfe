/* accept.c: the public listener's connection layer: TLS handshake, ALPN dispatch, the HTTP/2 stream-reset guard, and
 * the per-client rate limit */
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include "accept.h"
#include "log.h"
#include "ratelimit.h"
#include <h2o/http1.h>
#include <h2o/http2.h>
#include <h2o/http2_scheduler.h>

/*
 * libh2o 2.2.5 predates the HTTP/2 "Rapid Reset" disclosure (CVE-2023-44487): a client that opens streams and resets
 * them at once is served without limit, and one connection keeps every core busy. The guard sits in front of h2o's
 * frame parser (h2o_http2_conn_t::_read_expect, which h2o calls once per frame) and keeps a token bucket of stream
 * resets per connection, charging only resets that cancel a live stream (one h2o was still serving); a client that
 * empties it gets GOAWAY(ENHANCE_YOUR_CALM) through h2o's own error path, and the connection is closed. Legitimate
 * clients cancel a stream now and then, far below the refill rate.
 */
#define RESET_BUDGET 200           /* resets a connection may make in a burst */
#define RESET_REFILL_PER_SEC 100.0 /* resets given back per second */

/*
 * Debian ships h2o/http2_internal.h without the khash.h it includes, so the head of libh2o 2.2.5's h2o_http2_conn_t is
 * mirrored here, as far as the frame parser pointer. install_reset_guard checks the mirror against the live connection
 * (its socket and context fields) before it trusts it, and installs nothing when they disagree.
 */
#if !(H2O_VERSION_MAJOR == 2 && H2O_VERSION_MINOR == 2 && H2O_VERSION_PATCH == 5)
#error "the HTTP/2 reset guard mirrors libh2o 2.2.5's h2o_http2_conn_t: check the layout for this version"
#endif
typedef struct st_h2o_http2_conn_t h2o_http2_conn_t;
typedef ssize_t (*read_expect_cb)(h2o_http2_conn_t *conn, const uint8_t *src, size_t len, const char **err_desc);
typedef struct st_num_streams_t {
    uint32_t open, half_closed, send_body;
} num_streams_t;
struct st_h2o_http2_conn_t {
    h2o_conn_t super;
    h2o_socket_t *sock;
    h2o_http2_settings_t peer_settings;
    void *streams; /* khash_t(h2o_http2_stream_t) * */
    struct {
        uint32_t max_open;
        uint32_t max_processed;
    } pull_stream_ids;
    struct {
        uint32_t max_open;
    } push_stream_ids;
    struct {
        num_streams_t priority, pull, push;
    } num_streams;
    h2o_http2_scheduler_node_t scheduler;
    int state; /* h2o_http2_conn_state_t */
    h2o_linklist_t _conns;
    read_expect_cb _read_expect;
};

typedef struct st_reset_guard_t {
    read_expect_cb inner; /* h2o's parser for the next input; h2o replaces it as it goes, the guard follows */
    double tokens;
    uint64_t last_ms;
    void (*prev_on_close)(void *data);
    void *prev_on_close_data;
} reset_guard_t;

static ssize_t guarded_read_expect(h2o_http2_conn_t *conn, const uint8_t *src, size_t len, const char **err_desc);

static void on_guard_close(void *data)
{
    reset_guard_t *g = data;
    void (*prev)(void *) = g->prev_on_close;
    void *prev_data = g->prev_on_close_data;
    free(g);
    if (prev != NULL)
        prev(prev_data);
}

/* streams the connection counts as live (requests received and not yet finished) */
static uint32_t live_streams(const h2o_http2_conn_t *conn)
{
    return conn->num_streams.pull.open + conn->num_streams.pull.half_closed + conn->num_streams.pull.send_body;
}

/* the token bucket: RESET_REFILL_PER_SEC tokens a second, at most RESET_BUDGET */
static void refill(reset_guard_t *g, uint64_t now)
{
    g->tokens += (double)(now - g->last_ms) * (RESET_REFILL_PER_SEC / 1000.0);
    if (g->tokens > RESET_BUDGET)
        g->tokens = RESET_BUDGET;
    g->last_ms = now;
}

static ssize_t guarded_read_expect(h2o_http2_conn_t *conn, const uint8_t *src, size_t len, const char **err_desc)
{
    reset_guard_t *g = conn->sock->on_close.data;
    /* everything but the connection preface is a frame: 3 bytes length, 1 byte type; 0x3 is RST_STREAM */
    int is_reset = len >= 9 && src[3] == 0x3 && memcmp(src, "PRI", 3) != 0;
    if (is_reset && g->tokens < 1) {
        /* refill first: the budget may have come back since the last reset */
        refill(g, h2o_now(conn->super.ctx->loop));
        if (g->tokens < 1) {
            *err_desc = "too many stream resets";
            return H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM;
        }
    }
    uint32_t live = is_reset ? live_streams(conn) : 0;
    ssize_t ret = g->inner(conn, src, len, err_desc);
    /* only a reset that cancelled a live stream costs: clients such as libcurl reset streams whose response they
     * already have (h2o then has nothing to cancel), and that is free */
    if (is_reset && ret > 0 && live_streams(conn) < live) {
        refill(g, h2o_now(conn->super.ctx->loop));
        g->tokens -= 1;
    }
    /* h2o switches parsers (preface, frames, CONTINUATION) by assigning _read_expect: keep the guard in front */
    if (conn->_read_expect != guarded_read_expect) {
        g->inner = conn->_read_expect;
        conn->_read_expect = guarded_read_expect;
    }
    return ret;
}

/* puts g (malloc'ed by the caller, taken over here) in front of the connection's frame parser */
static void install_reset_guard(h2o_socket_t *sock, h2o_context_t *ctx, reset_guard_t *g)
{
    h2o_http2_conn_t *conn = sock->data;
    if (conn == NULL || conn->sock != sock || conn->super.ctx != ctx || conn->_read_expect == NULL) {
        static int warned;
        if (!warned++)
            rly_log_msg(RLY_LOG_WARN, "http2_guard", "HTTP/2 reset guard not installed: libh2o layout differs", 0);
        free(g);
        return;
    }
    g->inner = conn->_read_expect;
    g->tokens = RESET_BUDGET;
    g->last_ms = h2o_now(conn->super.ctx->loop);
    g->prev_on_close = sock->on_close.cb;
    g->prev_on_close_data = sock->on_close.data;
    sock->on_close.cb = on_guard_close;
    sock->on_close.data = g;
    conn->_read_expect = guarded_read_expect;
}

typedef struct st_accept_data_t {
    relay_worker_t *worker;
    h2o_socket_t *sock;
    struct timeval connected_at;
    h2o_timeout_entry_t timeout;
} accept_data_t;

static void on_handshake_timeout(h2o_timeout_entry_t *entry)
{
    accept_data_t *data = H2O_STRUCT_FROM_MEMBER(accept_data_t, timeout, entry);
    h2o_socket_t *sock = data->sock;
    free(data);
    sock->data = NULL;
    h2o_socket_close(sock);
}

static void on_handshake_complete(h2o_socket_t *sock, const char *err)
{
    accept_data_t *data = sock->data;
    relay_worker_t *w = data->worker;
    struct timeval connected_at = data->connected_at;
    h2o_timeout_unlink(&data->timeout);
    free(data);
    sock->data = NULL;
    if (err != NULL) {
        h2o_socket_close(sock);
        return;
    }
    h2o_iovec_t proto = h2o_socket_ssl_get_selected_protocol(sock);
    if (h2o_memis(proto.base, proto.len, H2O_STRLIT("h2"))) {
        /* h2o_http2_accept parses input that came with the handshake at once. Input that is not the connection
         * preface would make it free the connection before the guard can be installed: such a client gets what h2o
         * gives it (the connection closed at once), here. After a valid preface h2o has its own preface to write, and
         * every error path waits for that write, so the connection is alive when the guard goes in. */
        static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        size_t n = sock->input->size < sizeof(preface) - 1 ? sock->input->size : sizeof(preface) - 1;
        if (n != 0 && memcmp(sock->input->bytes, preface, n) != 0) {
            h2o_socket_close(sock);
            return;
        }
        /* the guard's memory first: out of memory, the connection is refused rather than served unguarded */
        reset_guard_t *g = malloc(sizeof(*g));
        if (g == NULL) {
            h2o_socket_close(sock);
            return;
        }
        h2o_http2_accept(&w->accept_ctx, sock, connected_at);
        install_reset_guard(sock, &w->ctx, g);
    } else {
        h2o_http1_accept(&w->accept_ctx, sock, connected_at);
    }
}

void relay_accept(relay_worker_t *w, h2o_socket_t *sock)
{
    struct timeval connected_at;
    gettimeofday(&connected_at, NULL);
    if (w->accept_ctx.ssl_ctx == NULL) {
        h2o_http1_accept(&w->accept_ctx, sock, connected_at);
        return;
    }
    accept_data_t *data = malloc(sizeof(*data));
    if (data == NULL) {
        h2o_socket_close(sock);
        return;
    }
    *data = (accept_data_t){w, sock, connected_at, {0}};
    data->timeout.cb = on_handshake_timeout;
    h2o_timeout_link(w->ctx.loop, &w->ctx.handshake_timeout, &data->timeout);
    sock->data = data;
    h2o_socket_ssl_handshake(sock, w->accept_ctx.ssl_ctx, NULL, on_handshake_complete);
}

int relay_accept_rate_allowed(h2o_req_t *req, int *retry_after)
{
    relay_ratelimit_t *rl = relay_worker_of(req)->relay->ratelimit;
    struct sockaddr_storage ss;
    socklen_t len;
    if (rl == NULL || req->conn->callbacks->get_peername == NULL)
        return 1;
    if ((len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss)) == 0)
        return 1;
    int ok = relay_ratelimit_take(rl, (struct sockaddr *)&ss, len, (int64_t)h2o_now(req->conn->ctx->loop), retry_after);
    memset(&ss, 0, sizeof(ss));
    return ok;
}
