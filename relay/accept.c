/* accept.c: the public listener's connection layer: TLS handshake, ALPN dispatch, the HTTP/2 stream-reset guard, and
 * the per-client rate limit */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include "accept.h"
#include "forwarded.h"
#include "log.h"
#include "metrics.h"
#include "proxy.h"
#include "ratelimit.h"
#include <h2o/http1.h>
#include <h2o/http2.h>
#include <h2o/http2_scheduler.h>

/*
 * libh2o 2.2.5 predates the HTTP/2 "Rapid Reset" (CVE-2023-44487) and "MadeYouReset" (CVE-2025-8671) disclosures: a
 * client that opens streams and has them cancelled at once, by its own RST_STREAM or by a frame that makes the server
 * reset the stream (WINDOW_UPDATE 0, an oversized header block, a refused stream...), is served without limit, and one
 * connection keeps every core busy. The guard sits in front of h2o's frame parser (h2o_http2_conn_t::_read_expect,
 * which h2o calls once per frame) and keeps, per connection:
 *   - a token bucket of streams ended early: every stream a frame opened or found live and that is gone when h2o is
 *     done with the frame, whoever reset it (a response is only ever completed by h2o's writer, never while a frame
 *     is parsed, so a stream that ends inside the parser was cancelled). A client that empties the bucket gets
 *     GOAWAY(ENHANCE_YOUR_CALM) through h2o's own error path, and the connection is closed. Legitimate clients
 *     cancel a stream now and then, far below the refill rate.
 *   - a count of the streams opened over the connection's life (RELAY_H2_STREAMS_PER_CONN): then a graceful GOAWAY
 *     (NO_ERROR), as h2o's shutdown sends: the streams taken are answered, later ones are not processed, and the
 *     client opens a new connection, which passes the accept path (connection cap, handshake) again.
 *   - a count of CONTINUATION frames in the current header block (RELAY_H2_CONTINUATIONS_MAX): h2o caps the block's
 *     bytes but not its frames, and empty CONTINUATION frames cost CPU only.
 * Requests running at once on a connection are h2o's max_concurrent_requests_per_connection (serve.c): that bounds
 * the long-polls one connection can hold.
 */
#define RESET_BUDGET 200           /* streams a connection may have ended early in a burst */
#define RESET_REFILL_PER_SEC 100.0 /* given back per second */

/*
 * Debian ships h2o/http2_internal.h without the khash.h it includes, so the head of libh2o 2.2.5's h2o_http2_conn_t is
 * mirrored here, as far as the write buffer. install_reset_guard checks the mirror against the live connection
 * (its socket and context fields) before it trusts it, and installs nothing when they disagree.
 */
#if !(H2O_VERSION_MAJOR == 2 && H2O_VERSION_MINOR == 2 && H2O_VERSION_PATCH == 5)
#error "the HTTP/2 reset guard mirrors libh2o 2.2.5's h2o_http2_conn_t: check the layout for this version"
#endif
typedef struct st_h2o_http2_conn_t h2o_http2_conn_t;
typedef ssize_t (*read_expect_cb)(h2o_http2_conn_t *conn, const uint8_t *src, size_t len, const char **err_desc);
typedef struct st_hpack_table_t {
    void *entries;
    size_t num_entries, entry_capacity, entry_start_index, hpack_size, hpack_capacity, hpack_max_capacity;
} hpack_table_t;
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
    h2o_buffer_t *_http1_req_input;
    hpack_table_t _input_header_table;
    ssize_t _input_window; /* h2o_http2_window_t */
    hpack_table_t _output_header_table;
    h2o_linklist_t _pending_reqs;
    h2o_timeout_entry_t _timeout_entry;
    h2o_buffer_t *_headers_unparsed;
    struct {
        h2o_buffer_t *buf; /* the frames to write next */
    } _write;
};
enum { CONN_STATE_OPEN, CONN_STATE_HALF_CLOSED }; /* h2o_http2_conn_state_t */
/* exported by libh2o 2.2.5, declared in the http2_internal.h Debian cannot compile */
void h2o_http2_encode_goaway_frame(h2o_buffer_t **buf, uint32_t last_stream_id, int errnum, h2o_iovec_t additional_data);
void h2o_http2_conn_request_write(h2o_http2_conn_t *conn);

typedef struct st_reset_guard_t {
    read_expect_cb inner; /* h2o's parser for the next input; h2o replaces it as it goes, the guard follows */
    double tokens;
    uint64_t last_ms;
    uint32_t streams;       /* opened over the connection's life */
    uint32_t continuations; /* CONTINUATION frames of the current header block */
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

/* the token bucket: RESET_REFILL_PER_SEC tokens a second, at most RESET_BUDGET */
static void refill(reset_guard_t *g, uint64_t now)
{
    g->tokens += (double)(now - g->last_ms) * (RESET_REFILL_PER_SEC / 1000.0);
    if (g->tokens > RESET_BUDGET)
        g->tokens = RESET_BUDGET;
    g->streams = 0;
    g->continuations = 0;
    g->last_ms = now;
}

static ssize_t guarded_read_expect(h2o_http2_conn_t *conn, const uint8_t *src, size_t len, const char **err_desc)
{
    reset_guard_t *g = conn->sock->on_close.data;
    /* everything but the connection preface is a frame: 3 bytes length, 1 byte type */
    int type = len >= 9 && memcmp(src, "PRI", 3) != 0 ? src[3] : -1;
    if (type == 0x1) { /* HEADERS: a new header block */
        g->continuations = 0;
    } else if (type == 0x9 && ++g->continuations > RELAY_H2_CONTINUATIONS_MAX) {
        *err_desc = "too many CONTINUATION frames";
        return H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM;
    }
    if (g->tokens < 1) {
        /* refill first: the budget may have come back since the last early end */
        refill(g, h2o_now(conn->super.ctx->loop));
        if (g->tokens < 1) {
            *err_desc = "too many streams reset";
            return H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM;
        }
    }
    uint32_t open = conn->num_streams.pull.open;
    ssize_t ret = g->inner(conn, src, len, err_desc);
    /* streams a frame opened (a HEADERS frame opens one: trailers, which would count too, are not sent to this
     * relay) or found live, and that are gone after it, ended early; a stream whose response is complete is already
     * gone, so a client (libcurl) that resets it costs nothing */
    uint32_t opened = type == 0x1;
    if (ret > 0 && conn->num_streams.pull.open < open + opened) {
        refill(g, h2o_now(conn->super.ctx->loop));
        g->tokens -= open + opened - conn->num_streams.pull.open;
    }
    if (opened && ++g->streams == RELAY_H2_STREAMS_PER_CONN && conn->state == CONN_STATE_OPEN) {
        /* what h2o's graceful shutdown does for one connection: GOAWAY(NO_ERROR) naming the last stream it takes, no
         * new stream after it, the connection closed once the streams it took are answered; the client goes on with
         * a new connection and loses nothing */
        h2o_http2_encode_goaway_frame(&conn->_write.buf, conn->pull_stream_ids.max_open, 0, (h2o_iovec_t){NULL, 0});
        h2o_http2_conn_request_write(conn);
        conn->state = CONN_STATE_HALF_CLOSED;
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
    /* the input header table's largest size is h2o's own SETTINGS_HEADER_TABLE_SIZE (4096), which no client changes */
    if (conn == NULL || conn->sock != sock || conn->super.ctx != ctx || conn->_read_expect == NULL ||
        conn->_input_header_table.hpack_max_capacity != 4096 || conn->_write.buf == NULL) {
        static int warned;
        if (!warned++)
            rly_log_msg(RLY_LOG_WARN, "http2_guard", "HTTP/2 reset guard not installed: libh2o layout differs", 0);
        free(g);
        return;
    }
    g->inner = conn->_read_expect;
    g->tokens = RESET_BUDGET;
    g->streams = 0;
    g->continuations = 0;
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
    /* a reference to the TLS context the handshake uses: h2o makes the SSL object from it only when the client's first
     * bytes arrive, and a reload (SIGHUP) may drop the worker's own reference meanwhile; NULL with --plain */
    SSL_CTX *ssl_ctx;
} accept_data_t;

static void accept_data_free(accept_data_t *data)
{
    if (data->ssl_ctx != NULL)
        SSL_CTX_free(data->ssl_ctx);
    free(data);
}

static void on_handshake_timeout(h2o_timeout_entry_t *entry)
{
    accept_data_t *data = H2O_STRUCT_FROM_MEMBER(accept_data_t, timeout, entry);
    h2o_socket_t *sock = data->sock;
    accept_data_free(data);
    sock->data = NULL;
    h2o_socket_close(sock);
}

static void on_handshake_complete(h2o_socket_t *sock, const char *err)
{
    accept_data_t *data = sock->data;
    relay_worker_t *w = data->worker;
    struct timeval connected_at = data->connected_at;
    h2o_timeout_unlink(&data->timeout);
    accept_data_free(data); /* the SSL object holds its own reference now */
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

static void on_proxy_read(h2o_socket_t *sock, const char *err)
{
    accept_data_t *data = sock->data;
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    ssize_t n = err == NULL ? rly_proxy_parse(sock->input->bytes, sock->input->size, &ss, &sslen) : -1;
    if (n == 0 && sock->input->size < RLY_PROXY_HEADER_MAX)
        return; /* more to come, within the handshake timeout */
    if (n <= 0) {
        if (err == NULL)
            relay_metrics_proxy_refused();
        h2o_timeout_unlink(&data->timeout);
        accept_data_free(data);
        sock->data = NULL;
        h2o_socket_close(sock);
        return;
    }
    h2o_buffer_consume(&sock->input, (size_t)n);
    if (sslen != 0)
        h2o_socket_setpeername(sock, (struct sockaddr *)&ss, sslen);
    memset(&ss, 0, sizeof(ss));
    h2o_socket_read_stop(sock);
    relay_worker_t *w = data->worker;
    if (w->accept_ctx.ssl_ctx == NULL) {
        struct timeval connected_at = data->connected_at;
        h2o_timeout_unlink(&data->timeout);
        accept_data_free(data);
        sock->data = NULL;
        h2o_http1_accept(&w->accept_ctx, sock, connected_at); /* it takes what came after the header */
        return;
    }
    h2o_socket_ssl_handshake(sock, data->ssl_ctx, NULL, on_handshake_complete);
}

/*
 * Memory back to the system after connections close. glibc returns freed memory only from the top of each arena on its
 * own (M_TRIM_THRESHOLD); the memory of 10,000 closed TLS long-polls sits between what survives them and stays in RSS
 * (220 MB). When a worker's connections have dropped by TRIM_DROP since their high point, the worker calls malloc_trim
 * within a second (at most once a second), which gives back every free page of every arena. tests/bench/README.md,
 * "Memory per idle TLS long-poll".
 */
#define TRIM_DROP 1024

/* per worker thread (each runs its own connections' callbacks) */
static __thread struct {
    relay_worker_t *worker;
    unsigned high; /* the most connections since the last trim */
    h2o_timeout_entry_t entry;
} trim;

static void on_trim(h2o_timeout_entry_t *entry)
{
    (void)entry;
    malloc_trim(0);
    trim.high = trim.worker->connections;
}

static void count_for_trim(relay_worker_t *w)
{
    if (w->connections > trim.high) {
        trim.high = w->connections;
    } else if (w->connections + TRIM_DROP <= trim.high && !h2o_timeout_is_linked(&trim.entry)) {
        trim.worker = w;
        trim.entry.cb = on_trim;
        h2o_timeout_link(w->ctx.loop, &w->ctx.one_sec_timeout, &trim.entry);
    }
}

static void on_accept(h2o_socket_t *listener, const char *error);

static void on_connection_close(void *data)
{
    relay_worker_t *w = data;
    --w->connections;
    count_for_trim(w);
    relay_metrics_connections(-1);
    if (w->accept_paused && w->connections < w->max_connections && w->listener != NULL) {
        h2o_timeout_unlink(&w->accept_retry);
        w->accept_paused = 0;
        h2o_socket_read_start(w->listener, on_accept);
    }
}

void relay_accept(relay_worker_t *w, h2o_socket_t *sock)
{
    struct timeval connected_at;
    gettimeofday(&connected_at, NULL);
    /* counted until the socket closes, whoever closes it; the HTTP/2 guard chains this hook */
    ++w->connections;
    count_for_trim(w);
    relay_metrics_connections(1);
    sock->on_close.cb = on_connection_close;
    sock->on_close.data = w;
    if (w->accept_ctx.ssl_ctx == NULL && !w->relay->config->proxy_protocol) {
        h2o_http1_accept(&w->accept_ctx, sock, connected_at);
        return;
    }
    accept_data_t *data = malloc(sizeof(*data));
    if (data == NULL) {
        h2o_socket_close(sock);
        return;
    }
    *data = (accept_data_t){w, sock, connected_at, {0}, w->accept_ctx.ssl_ctx};
    if (data->ssl_ctx != NULL)
        SSL_CTX_up_ref(data->ssl_ctx);
    data->timeout.cb = on_handshake_timeout;
    /* the PROXY header and the TLS handshake share the handshake timeout */
    h2o_timeout_link(w->ctx.loop, &w->ctx.handshake_timeout, &data->timeout);
    sock->data = data;
    if (w->relay->config->proxy_protocol)
        h2o_socket_read_start(sock, on_proxy_read);
    else
        h2o_socket_ssl_handshake(sock, data->ssl_ctx, NULL, on_handshake_complete);
}

/* stops reading the listener: at the cap until a connection closes; out of descriptors, also until a retry timer, as a
 * descriptor may come back elsewhere in the process. A listener left readable would make the loop spin. */
static void pause_accepting(relay_worker_t *w, int descriptors)
{
    if (!w->accept_paused) {
        w->accept_paused = 1;
        h2o_socket_read_stop(w->listener);
        relay_metrics_accept_paused(descriptors);
    }
    if (descriptors && !h2o_timeout_is_linked(&w->accept_retry))
        h2o_timeout_link(w->ctx.loop, &w->accept_retry_timeout, &w->accept_retry);
}

static void on_accept(h2o_socket_t *listener, const char *error)
{
    relay_worker_t *w = listener->data;
    if (error != NULL)
        return;
    for (int i = 0; i != 16; ++i) {
        if (w->connections >= w->max_connections) {
            pause_accepting(w, 0);
            return;
        }
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                pause_accepting(w, 1);
            if (errno == ECONNABORTED || errno == EINTR)
                continue;
            return; /* EAGAIN: all taken */
        }
        relay_accept(w, sock);
    }
}

static void on_accept_retry(h2o_timeout_entry_t *entry)
{
    relay_worker_t *w = H2O_STRUCT_FROM_MEMBER(relay_worker_t, accept_retry, entry);
    if (w->accept_paused && w->listener != NULL && w->connections < w->max_connections) {
        w->accept_paused = 0;
        h2o_socket_read_start(w->listener, on_accept);
    }
}

unsigned relay_accept_default_max(unsigned long nofile, size_t nworkers)
{
    unsigned long reserved = RELAY_CONNECTIONS_HEADROOM + RELAY_CONNECTIONS_PER_WORKER_FDS * (unsigned long)nworkers;
    if (nofile <= reserved)
        return 1;
    return nofile - reserved > 1000000 ? 1000000 : (unsigned)(nofile - reserved);
}

void relay_accept_start(relay_worker_t *w)
{
    h2o_timeout_init(w->ctx.loop, &w->accept_retry_timeout, RELAY_ACCEPT_RETRY_MS);
    w->accept_retry = (h2o_timeout_entry_t){0};
    w->accept_retry.cb = on_accept_retry;
    w->listener->data = w;
    h2o_socket_read_start(w->listener, on_accept);
}

void relay_accept_stop(relay_worker_t *w)
{
    h2o_timeout_unlink(&w->accept_retry);
    if (w->listener != NULL) {
        h2o_socket_read_stop(w->listener);
        h2o_socket_close(w->listener);
        w->listener = NULL;
    }
    w->accept_paused = 0;
}

/* the client's address for the limiter: the peer's (or the PROXY header's), or, from a --trusted-proxy peer, what its
 * Forwarded / X-Forwarded-For lines say (forwarded.h); 0 when there is none */
static socklen_t client_address(h2o_req_t *req, const relay_t *r, struct sockaddr_storage *ss)
{
    enum { LINES_MAX = 8 }; /* header lines of each kind looked at */
    rly_str_t fwd[LINES_MAX], xff[LINES_MAX];
    size_t nfwd = 0, nxff = 0;
    socklen_t len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)ss);
    if (len == 0 || r->ntrusted == 0)
        return len;
    for (size_t i = 0; i != req->headers.size; ++i) {
        const h2o_header_t *h = &req->headers.entries[i];
        if (h2o_lcstris(h->name->base, h->name->len, H2O_STRLIT("forwarded")) && nfwd != LINES_MAX)
            fwd[nfwd++] = (rly_str_t){h->value.base, h->value.len};
        else if (h->name == &H2O_TOKEN_X_FORWARDED_FOR->buf && nxff != LINES_MAX)
            xff[nxff++] = (rly_str_t){h->value.base, h->value.len};
    }
    struct sockaddr_storage client;
    socklen_t client_len;
    if (rly_forwarded_client((struct sockaddr *)ss, r->trusted, r->ntrusted, fwd, nfwd, xff, nxff, &client, &client_len) == 0) {
        *ss = client;
        len = client_len;
    }
    memset(&client, 0, sizeof(client));
    return len;
}

int relay_accept_rate_allowed(h2o_req_t *req, int *retry_after)
{
    relay_t *r = relay_worker_of(req)->relay;
    relay_ratelimit_t *rl = r->ratelimit;
    struct sockaddr_storage ss;
    socklen_t len;
    if (rl == NULL || req->conn->callbacks->get_peername == NULL)
        return 1;
    if ((len = client_address(req, r, &ss)) == 0)
        return 1;
    int ok = relay_ratelimit_take(rl, (struct sockaddr *)&ss, len, (int64_t)h2o_now(req->conn->ctx->loop), retry_after);
    memset(&ss, 0, sizeof(ss));
    return ok;
}
