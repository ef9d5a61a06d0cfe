/* flow_bench.c: libcurl-multi load generator that prints authrelay's flow, callback and long-poll figures (not a test) */
#include <curl/curl.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "rly.h"

#define BODY_MAX 16384            /* largest response body kept for parsing; longer ones count as errors */
#define METRICS_MAX (1024 * 1024) /* largest /metrics page read */
#define POLL_URL_MAX 1024
#define BASE_URL_MAX 256
#define CALLBACK_URL_MAX (BASE_URL_MAX + RLY_CODE_MAX + RLY_STATE_MAX + 64)
#define DRAIN_EXTRA_SECS 5 /* after the deadline, in-flight flows get the long-poll wait plus this to finish */
#define WAKE_READY_SECS 15 /* wake: how long to wait for the admin's gauge to show every pickup waiting */

typedef enum { MODE_FLOW, MODE_CALLBACKS, MODE_HOLD, MODE_WAKE } bench_mode_t;
typedef enum { PH_CREATE, PH_PICKUP, PH_CALLBACK, PH_DELETE, PH_COUNT } phase_t;

static const char *const phase_names[PH_COUNT] = {"create", "pickup", "callback", "delete"};
static const long phase_expected[PH_COUNT] = {201, 200, 303, 204};

/* every session gets a return_uri, so a good callback answers 303 */
static const char body_flow[] = "{\"authorization_server\":\"https://auth.atlassian.com/authorize\","
                                "\"return_uri\":\"https://qorus.example.com:8011/grant\"}";
/* callbacks-only sessions are never deleted: the shortest TTL (--ttl) lets the store forget them soon */
static const char body_short_fmt[] = "{\"authorization_server\":\"https://auth.atlassian.com/authorize\","
                                     "\"return_uri\":\"https://qorus.example.com:8011/grant\",\"ttl\":%ld}";

typedef struct st_opts_t {
    const char *url;
    bench_mode_t mode;
    int http1;
    long concurrency, duration, flows, streams, connections, wait, sessions, hold, hold_secs, code_len, browser_delay_ms;
    const char *callback_url; /* where the "browser" sends the callbacks (another replica); NULL: --url */
    const char *admin_url;    /* wake: the --url replica's admin listener, for authrelay_waiting_pickups */
    long wake, wake_rate;
    long ttl;              /* callbacks-only: the sessions' ttl */
    const char *urls_file; /* callbacks-only: write the callback paths here instead of calling back */
} opts_t;

/* latency samples in microseconds (signed: a wake can precede the callback's response) */
typedef struct st_samples_t {
    int64_t *v;
    size_t n, cap;
} samples_t;

typedef struct st_errors_t {
    unsigned long transport[PH_COUNT][CURL_LAST];
    unsigned long status[PH_COUNT][600];
    unsigned long bad_body[PH_COUNT]; /* not the JSON expected (or too long) */
    unsigned long mismatch;           /* pickup 200 with another code, state or status */
    unsigned long aborted;            /* flows still unfinished when the drain time ran out */
    unsigned long early;              /* wake: a pickup answered before its callback was sent */
} errors_t;

struct st_bench_t;
struct st_flow_t;

typedef struct st_xfer_t {
    CURL *h;
    struct st_flow_t *flow;
    phase_t phase;
    int active;
    uint64_t started;
    int keep;   /* the body is kept (create, pickup, metrics) */
    char *body; /* malloc'ed, BODY_MAX + 1 at most */
    size_t len, cap;
    int overflow;
} xfer_t;

typedef struct st_flow_t {
    struct st_bench_t *bench;
    xfer_t x[PH_COUNT];
    unsigned gen; /* bumped on every (re)start: stale browser entries are skipped */
    int live;     /* a flow (or slot) is in progress */
    int created;  /* hold mode: the session exists */
    int browser;  /* 0: callback not due yet, 1: queued, 2: sent */
    int pickup_ok, callback_ok;
    uint64_t t_start, t_callback_sent, t_callback, t_pickup;
    struct curl_slist *auth; /* Authorization and Prefer of the pickup and the delete; owned */
    char poll_url[POLL_URL_MAX];
    char state[RLY_STATE_MAX + 1];
    char *code; /* flow mode: this flow's code, malloc'ed code_len + 1 */
} flow_t;

typedef struct st_browser_t {
    flow_t *flow;
    unsigned gen;
    uint64_t at;
} browser_t;

typedef struct st_bench_t {
    opts_t o;
    CURLM *multi;
    struct curl_slist *resolve, *json_ct;
    char base[BASE_URL_MAX];
    char cb_base[BASE_URL_MAX]; /* base of the callbacks: --callback-url, else --url */
    char sessions_url[BASE_URL_MAX + 16];
    char prefer[32];
    char body_short[256]; /* callbacks-only creation body, with --ttl */
    json_tokener *tok;
    uint64_t rng;
    flow_t *flows;
    size_t nflows;
    browser_t *q; /* ring of callbacks to send once their pickup is on the wire */
    size_t qcap, qhead, qlen;
    errors_t err;
    samples_t lat[PH_COUNT], flow, wake, code;
    uint64_t t0, deadline, last_done;
    unsigned long started, completed, live;
    int stopping;
    long connects, sockets_open, sockets_peak;
    unsigned long xfers, xfers_h2;
    /* callbacks-only and hold */
    int phase;              /* 0 creating, 1 main (callbacks / holding), 2 releasing */
    size_t issued, done_ct; /* creations (or deletions) started / finished */
    char (*states)[RLY_STATE_MAX + 1];
    size_t nstates, used_states;
    char *fixed_code;
    unsigned long pickups_sent;
    uint64_t t_create0, t_create1, t_hold;
    int holding_printed;
    /* wake */
    xfer_t admin; /* GET metrics_url, plain HTTP */
    char metrics_url[BASE_URL_MAX + 16];
    long waiting_seen; /* the last authrelay_waiting_pickups read, -1 before any */
    uint64_t t_ready_wait, t_next_metrics, t_fire0;
    unsigned long early, lost;
    samples_t loop; /* time of one pass over curl's transfers while the callbacks go out: the timestamps' resolution */
} bench_t;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void oom(void)
{
    fputs("flow_bench: out of memory\n", stderr);
    exit(1);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int64_t us_between(uint64_t from, uint64_t to)
{
    return ((int64_t)to - (int64_t)from) / 1000;
}

/* xorshift64*: fast and good enough for fake codes */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void samples_add(samples_t *s, int64_t v)
{
    if (s->n == s->cap) {
        size_t cap = s->cap != 0 ? s->cap * 2 : 4096;
        int64_t *p = realloc(s->v, cap * sizeof(*p));
        if (p == NULL)
            oom();
        s->v = p;
        s->cap = cap;
    }
    s->v[s->n++] = v;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* the p-th percentile in milliseconds of sorted samples */
static double pct(const samples_t *s, double p)
{
    if (s->n == 0)
        return 0;
    size_t i = (size_t)(p / 100.0 * (double)s->n);
    if (i >= s->n)
        i = s->n - 1;
    return (double)s->v[i] / 1000.0;
}

static void samples_row(const char *name, samples_t *s)
{
    if (s->n == 0) {
        printf("  %-22s %9s\n", name, "-");
        return;
    }
    qsort(s->v, s->n, sizeof(*s->v), cmp_i64);
    printf("  %-22s %9.2f %9.2f %9.2f %9.2f %10zu\n", name, pct(s, 50), pct(s, 90), pct(s, 99), pct(s, 100), s->n);
}

/* a JWT-looking code of len base64url characters: header "." payload "." signature */
static void make_code(uint64_t *rng, char *dst, size_t len)
{
    static const char header[] = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImJlbmNoIn0.";
    static const char cs[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t hlen = sizeof(header) - 1, i = 0;
    if (len > hlen + 16) {
        memcpy(dst, header, hlen);
        i = hlen;
    }
    size_t dot = len - len / 3; /* the signature is the last third */
    while (i < len) {
        uint64_t r = rng_next(rng);
        for (int k = 0; k != 10 && i < len; ++k, r >>= 6)
            dst[i++] = cs[r & 63];
    }
    if (dot > hlen + 1 && dot < len - 1)
        dst[dot] = '.';
    dst[len] = '\0';
}

static int is_b64url(const char *s, size_t n)
{
    for (size_t i = 0; i != n; ++i) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

/* 1 if url is http(s) to a loopback host: certificate checks are off, so nothing else is ever contacted */
static int url_loopback(const char *url, char *host_out, size_t host_cap, long *port_out)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    int ok = 0;
    if (u == NULL)
        oom();
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK || curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
        goto Exit;
    if (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0)
        goto Exit;
    if (strcmp(host, "localhost") != 0 && strncmp(host, "127.", 4) != 0 && strcmp(host, "[::1]") != 0)
        goto Exit;
    if (host_out != NULL) {
        if (strlen(host) >= host_cap)
            goto Exit;
        memcpy(host_out, host, strlen(host) + 1);
    }
    if (port_out != NULL)
        *port_out = strtol(port, NULL, 10);
    ok = 1;
Exit:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return ok;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    xfer_t *x = userdata;
    size_t n = size * nmemb;
    if (!x->keep)
        return n;
    if (x->len + n > (x->flow != NULL ? BODY_MAX : METRICS_MAX)) {
        x->overflow = 1;
        return n;
    }
    if (x->len + n + 1 > x->cap) {
        size_t cap = x->cap != 0 ? x->cap : 1024;
        while (cap < x->len + n + 1)
            cap *= 2;
        char *p = realloc(x->body, cap);
        if (p == NULL)
            oom();
        x->body = p;
        x->cap = cap;
    }
    memcpy(x->body + x->len, ptr, n);
    x->len += n;
    x->body[x->len] = '\0';
    return n;
}

static void queue_push(bench_t *b, flow_t *f, uint64_t at)
{
    if (b->qlen == b->qcap) {
        size_t cap = b->qcap != 0 ? b->qcap * 2 : 256;
        browser_t *q = malloc(cap * sizeof(*q));
        if (q == NULL)
            oom();
        for (size_t i = 0; i != b->qlen; ++i)
            q[i] = b->q[(b->qhead + i) % b->qcap];
        free(b->q);
        b->q = q;
        b->qcap = cap;
        b->qhead = 0;
    }
    b->q[(b->qhead + b->qlen) % b->qcap] = (browser_t){f, f->gen, at};
    ++b->qlen;
}

/* CURLOPT_PREREQFUNCTION of pickups: called as the request goes out on its connection. The browser's callback is sent
 * only after that, so the long-poll is (normally) already waiting when the code arrives. */
static int on_pickup_prereq(void *clientp, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
    xfer_t *x = clientp;
    flow_t *f = x->flow;
    bench_t *b = f->bench;
    (void)primary_ip;
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    ++b->pickups_sent;
    if (b->o.mode == MODE_FLOW && f->browser == 0) {
        f->browser = 1;
        queue_push(b, f, now_ns() + (uint64_t)b->o.browser_delay_ms * 1000000u);
    }
    return CURL_PREREQFUNC_OK;
}

/* socket accounting: curl's own count (CURLINFO_NUM_CONNECTS) misses transfers that are removed unfinished */
static curl_socket_t on_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    bench_t *b = clientp;
    (void)purpose;
    curl_socket_t fd = socket(addr->family, addr->socktype, addr->protocol);
    if (fd != CURL_SOCKET_BAD) {
        ++b->connects;
        if (++b->sockets_open > b->sockets_peak)
            b->sockets_peak = b->sockets_open;
    }
    return fd;
}

static int on_close_socket(void *clientp, curl_socket_t fd)
{
    bench_t *b = clientp;
    --b->sockets_open;
    return close(fd);
}

static CURL *xfer_handle(bench_t *b, xfer_t *x)
{
    if (x->h != NULL)
        return x->h;
    CURL *h = curl_easy_init();
    if (h == NULL)
        oom();
    x->keep = x->phase == PH_CREATE || x->phase == PH_PICKUP;
    curl_easy_setopt(h, CURLOPT_PRIVATE, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    /* the dev certificate is self-signed; every URL used is checked to be loopback */
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, b->o.http1 ? (long)CURL_HTTP_VERSION_1_1 : (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(h, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(h, CURLOPT_RESOLVE, b->resolve);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, b);
    curl_easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    curl_easy_setopt(h, CURLOPT_CLOSESOCKETDATA, b);
    if (b->o.mode == MODE_HOLD || b->o.mode == MODE_WAKE)
        curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 4096L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, x->phase == PH_PICKUP ? (b->o.wait + 15) * 1000L : 15000L);
    switch (x->phase) {
    case PH_CREATE:
        curl_easy_setopt(h, CURLOPT_URL, b->sessions_url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, b->json_ct);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, b->o.mode == MODE_CALLBACKS ? b->body_short : body_flow);
        break;
    case PH_PICKUP:
        curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, on_pickup_prereq);
        curl_easy_setopt(h, CURLOPT_PREREQDATA, x);
        break;
    case PH_DELETE:
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
        break;
    default:
        break;
    }
    x->h = h;
    return h;
}

/* starts x; url and headers replace the previous ones when not NULL (curl copies the URL, borrows the list) */
static void xfer_start(bench_t *b, xfer_t *x, const char *url, struct curl_slist *headers)
{
    CURL *h = xfer_handle(b, x);
    if (url != NULL)
        curl_easy_setopt(h, CURLOPT_URL, url);
    if (headers != NULL)
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    x->len = 0;
    x->overflow = 0;
    x->started = now_ns();
    x->active = 1;
    if (curl_multi_add_handle(b->multi, h) != CURLM_OK) {
        fputs("flow_bench: curl_multi_add_handle failed\n", stderr);
        exit(1);
    }
}

static void xfer_stop(bench_t *b, xfer_t *x)
{
    if (x->active) {
        curl_multi_remove_handle(b->multi, x->h);
        x->active = 0;
    }
}

static void xfer_free(bench_t *b, xfer_t *x)
{
    xfer_stop(b, x);
    if (x->h != NULL)
        curl_easy_cleanup(x->h);
    x->h = NULL;
    free(x->body);
    x->body = NULL;
    x->len = x->cap = 0;
}

/* 0 when the transfer got the expected status; else counts the error */
static int expect(bench_t *b, const xfer_t *x, CURLcode rc, long status)
{
    if (rc != CURLE_OK) {
        ++b->err.transport[x->phase][rc];
        return -1;
    }
    if (status != phase_expected[x->phase]) {
        ++b->err.status[x->phase][status >= 0 && status < 600 ? status : 0];
        return -1;
    }
    return 0;
}

static json_object *parse_body(bench_t *b, const xfer_t *x)
{
    if (x->overflow || x->len == 0 || x->len > BODY_MAX)
        return NULL;
    json_tokener_reset(b->tok);
    json_object *o = json_tokener_parse_ex(b->tok, x->body, (int)x->len);
    if (o != NULL && json_tokener_get_error(b->tok) != json_tokener_success) {
        json_object_put(o);
        o = NULL;
    }
    if (o != NULL && !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        o = NULL;
    }
    return o;
}

/* a string member, or NULL */
static const char *member(json_object *o, const char *key, size_t *len)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    *len = (size_t)json_object_get_string_len(v);
    return json_object_get_string(v);
}

/* reads a 201 of POST /v1/sessions into f: state, poll_url and the pickup headers */
static int parse_session(bench_t *b, flow_t *f, const xfer_t *x)
{
    json_object *o = parse_body(b, x);
    const char *state, *poll_url, *token;
    size_t state_len, poll_len, token_len;
    char hdr[128];
    if (o == NULL || (state = member(o, "state", &state_len)) == NULL || (poll_url = member(o, "poll_url", &poll_len)) == NULL ||
        (token = member(o, "poll_token", &token_len)) == NULL)
        goto Bad;
    if (state_len == 0 || state_len > RLY_STATE_MAX || !is_b64url(state, state_len) || token_len != RLY_POLL_TOKEN_LEN ||
        !is_b64url(token, token_len) || poll_len >= sizeof(f->poll_url) || strlen(poll_url) != poll_len ||
        !url_loopback(poll_url, NULL, 0, NULL))
        goto Bad;
    memcpy(f->state, state, state_len + 1);
    memcpy(f->poll_url, poll_url, poll_len + 1);
    curl_slist_free_all(f->auth);
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", token);
    f->auth = curl_slist_append(NULL, hdr);
    if (f->auth == NULL || curl_slist_append(f->auth, b->prefer) == NULL)
        oom();
    json_object_put(o);
    return 0;
Bad:
    json_object_put(o);
    ++b->err.bad_body[x->phase];
    return -1;
}

/* the pickup's 200 must carry exactly this flow's code and state */
static int verify_pickup(bench_t *b, const flow_t *f, const xfer_t *x)
{
    json_object *o = parse_body(b, x);
    const char *status, *code, *state;
    size_t status_len, code_len, state_len;
    if (o == NULL) {
        ++b->err.bad_body[x->phase];
        return -1;
    }
    int ok = (status = member(o, "status", &status_len)) != NULL && strcmp(status, "authorized") == 0 &&
             (code = member(o, "code", &code_len)) != NULL && code_len == (size_t)b->o.code_len &&
             memcmp(code, f->code, code_len) == 0 && (state = member(o, "state", &state_len)) != NULL &&
             strcmp(state, f->state) == 0;
    json_object_put(o);
    if (!ok) {
        ++b->err.mismatch;
        return -1;
    }
    return 0;
}

static void start_callback(bench_t *b, flow_t *f, const char *code)
{
    char url[CALLBACK_URL_MAX];
    int n = snprintf(url, sizeof(url), "%s/qorus-oauth2-redirect?code=%s&state=%s", b->cb_base, code, f->state);
    if (n < 0 || (size_t)n >= sizeof(url)) {
        fputs("flow_bench: callback URL too long\n", stderr);
        exit(1);
    }
    xfer_start(b, &f->x[PH_CALLBACK], url, NULL);
}

/* sends the callbacks whose pickup is on the wire (and whose --browser-delay is over) */
static void start_browsers(bench_t *b)
{
    uint64_t t = now_ns();
    while (b->qlen != 0) {
        browser_t e = b->q[b->qhead];
        int stale = e.flow->gen != e.gen || e.flow->browser != 1;
        if (!stale && e.at > t)
            break;
        b->qhead = (b->qhead + 1) % b->qcap;
        --b->qlen;
        if (stale)
            continue;
        e.flow->browser = 2;
        start_callback(b, e.flow, e.flow->code);
    }
}

/* ---- full flow ---- */

static void flow_start(bench_t *b, flow_t *f)
{
    if (b->stopping || (b->o.flows > 0 && b->started >= (unsigned long)b->o.flows))
        return;
    ++b->started;
    ++b->live;
    f->live = 1;
    ++f->gen;
    f->browser = 0;
    f->pickup_ok = f->callback_ok = 0;
    f->t_start = now_ns();
    xfer_start(b, &f->x[PH_CREATE], NULL, NULL);
}

static void flow_end(bench_t *b, flow_t *f)
{
    for (int i = 0; i != PH_COUNT; ++i)
        xfer_stop(b, &f->x[i]);
    ++f->gen;
    if (f->live) {
        f->live = 0;
        --b->live;
    }
}

static void flow_fail(bench_t *b, flow_t *f)
{
    flow_end(b, f);
    flow_start(b, f);
}

static void flow_done(bench_t *b, xfer_t *x, CURLcode rc, long status)
{
    flow_t *f = x->flow;
    uint64_t t = now_ns();
    switch (x->phase) {
    case PH_CREATE:
        if (expect(b, x, rc, status) != 0 || parse_session(b, f, x) != 0) {
            flow_fail(b, f);
            return;
        }
        samples_add(&b->lat[PH_CREATE], us_between(x->started, t));
        make_code(&b->rng, f->code, (size_t)b->o.code_len);
        xfer_start(b, &f->x[PH_PICKUP], f->poll_url, f->auth);
        return;
    case PH_PICKUP:
        if (rc == CURLE_OK && status == 202) {
            /* the wait ran out without the code: a lost wake-up; poll again, as an instance would */
            ++b->err.status[PH_PICKUP][202];
            xfer_start(b, x, NULL, NULL);
            return;
        }
        if (expect(b, x, rc, status) != 0 || verify_pickup(b, f, x) != 0) {
            flow_fail(b, f);
            return;
        }
        f->t_pickup = t;
        f->pickup_ok = 1;
        break;
    case PH_CALLBACK:
        if (expect(b, x, rc, status) != 0) {
            flow_fail(b, f);
            return;
        }
        samples_add(&b->lat[PH_CALLBACK], us_between(x->started, t));
        f->t_callback_sent = x->started;
        f->t_callback = t;
        f->callback_ok = 1;
        break;
    case PH_DELETE:
        if (expect(b, x, rc, status) != 0) {
            flow_fail(b, f);
            return;
        }
        samples_add(&b->lat[PH_DELETE], us_between(x->started, t));
        samples_add(&b->flow, us_between(f->t_start, t));
        samples_add(&b->wake, us_between(f->t_callback, f->t_pickup));
        samples_add(&b->code, us_between(f->t_callback_sent, f->t_pickup));
        ++b->completed;
        b->last_done = t;
        flow_end(b, f);
        flow_start(b, f);
        return;
    default:
        return;
    }
    if (f->pickup_ok && f->callback_ok)
        xfer_start(b, &f->x[PH_DELETE], f->poll_url, f->auth);
}

/* 1 when the run is over */
static int flow_tick(bench_t *b)
{
    uint64_t t = now_ns();
    if (!b->stopping &&
        (interrupted || (b->deadline != 0 && t >= b->deadline) || (b->o.flows > 0 && b->started >= (unsigned long)b->o.flows))) {
        b->stopping = 1;
        b->deadline = t; /* the drain starts now */
    }
    if (b->stopping && b->live != 0 && t >= b->deadline + (uint64_t)(b->o.wait + DRAIN_EXTRA_SECS) * 1000000000u) {
        for (size_t i = 0; i != b->nflows; ++i) {
            if (b->flows[i].live) {
                ++b->err.aborted;
                flow_end(b, &b->flows[i]);
            }
        }
    }
    return b->stopping && b->live == 0;
}

/* ---- callbacks only: pre-create sessions, then one fresh state per callback ---- */

static void create_next(bench_t *b, flow_t *f, size_t total)
{
    if (b->issued < total && !interrupted) {
        ++b->issued;
        f->live = 1;
        xfer_start(b, &f->x[PH_CREATE], NULL, NULL);
    } else {
        f->live = 0;
    }
}

static void callback_next(bench_t *b, flow_t *f)
{
    if (b->stopping || b->used_states == b->nstates) {
        f->live = 0;
        return;
    }
    f->live = 1;
    memcpy(f->state, b->states[b->used_states++], sizeof(f->state));
    start_callback(b, f, b->fixed_code);
}

static void callbacks_done(bench_t *b, xfer_t *x, CURLcode rc, long status)
{
    flow_t *f = x->flow;
    uint64_t t = now_ns();
    if (x->phase == PH_CREATE) {
        if (expect(b, x, rc, status) == 0 && parse_session(b, f, x) == 0) {
            samples_add(&b->lat[PH_CREATE], us_between(x->started, t));
            memcpy(b->states[b->nstates++], f->state, sizeof(f->state));
        }
        create_next(b, f, (size_t)b->o.sessions);
        return;
    }
    if (expect(b, x, rc, status) == 0) {
        samples_add(&b->lat[PH_CALLBACK], us_between(x->started, t));
        ++b->completed;
        b->last_done = t;
    }
    callback_next(b, f);
}

static int callbacks_tick(bench_t *b)
{
    uint64_t t = now_ns();
    size_t busy = 0;
    for (size_t i = 0; i != b->nflows; ++i)
        busy += b->flows[i].live != 0;
    if (b->phase == 0) {
        if (busy != 0)
            return 0;
        b->t_create1 = t;
        if (interrupted || b->nstates == 0 || b->o.urls_file != NULL)
            return 1;
        b->phase = 1;
        b->t0 = t;
        b->deadline = b->o.duration > 0 ? t + (uint64_t)b->o.duration * 1000000000u : 0;
        for (size_t i = 0; i != b->nflows; ++i)
            callback_next(b, &b->flows[i]);
        return 0;
    }
    if (!b->stopping && (interrupted || (b->deadline != 0 && t >= b->deadline)))
        b->stopping = 1;
    return busy == 0;
}

/* ---- hold: N sessions, N waiting long-polls, then release and delete ---- */

static void hold_create_next(bench_t *b)
{
    while (b->issued < b->nflows && b->live < (unsigned long)b->o.concurrency && !interrupted) {
        flow_t *f = &b->flows[b->issued++];
        ++b->live;
        f->live = 1;
        if (b->phase == 0)
            xfer_start(b, &f->x[PH_CREATE], NULL, NULL);
        else if (f->created)
            xfer_start(b, &f->x[PH_DELETE], f->poll_url, f->auth);
        else {
            --b->live;
            f->live = 0;
        }
    }
}

static void hold_done(bench_t *b, xfer_t *x, CURLcode rc, long status)
{
    flow_t *f = x->flow;
    uint64_t t = now_ns();
    if (x->phase == PH_PICKUP) {
        /* any answer while holding is early (the wait is longer than the hold): an error whatever it says */
        if (rc != CURLE_OK)
            ++b->err.transport[PH_PICKUP][rc];
        else
            ++b->err.status[PH_PICKUP][status >= 0 && status < 600 ? status : 0];
        return;
    }
    if (x->phase == PH_CREATE) {
        if (expect(b, x, rc, status) == 0 && parse_session(b, f, x) == 0) {
            samples_add(&b->lat[PH_CREATE], us_between(x->started, t));
            f->created = 1;
            ++b->nstates;
        }
        xfer_free(b, x); /* thousands of idle easy handles cost memory on our side */
    } else {
        if (expect(b, x, rc, status) == 0)
            samples_add(&b->lat[PH_DELETE], us_between(x->started, t));
        xfer_free(b, x);
    }
    f->live = 0;
    --b->live;
    hold_create_next(b);
}

static int hold_tick(bench_t *b)
{
    uint64_t t = now_ns();
    if (b->phase == 0) {
        if (b->live != 0 || b->issued < b->nflows)
            return interrupted && b->live == 0;
        b->t_create1 = t;
        b->phase = 1;
        b->t0 = t;
        for (size_t i = 0; i != b->nflows; ++i)
            if (b->flows[i].created)
                xfer_start(b, &b->flows[i].x[PH_PICKUP], b->flows[i].poll_url, b->flows[i].auth);
        return 0;
    }
    if (b->phase == 1) {
        if (!b->holding_printed && b->pickups_sent >= b->nstates) {
            b->holding_printed = 1;
            b->t_hold = t;
            printf("HOLDING %zu pickups on %ld connections (all sent %.2f s after the first)\n", b->nstates, b->sockets_open,
                   (double)(t - b->t0) / 1e9);
            fflush(stdout);
        }
        int over = interrupted || (b->holding_printed && t >= b->t_hold + (uint64_t)b->o.hold_secs * 1000000000u) ||
                   t >= b->t0 + (uint64_t)(b->o.wait - 1) * 1000000000u;
        if (!over)
            return 0;
        interrupted = 0; /* a signal ends the hold; the sessions are still deleted */
        for (size_t i = 0; i != b->nflows; ++i)
            xfer_free(b, &b->flows[i].x[PH_PICKUP]);
        b->phase = 2;
        b->issued = 0;
        b->live = 0;
        hold_create_next(b);
        return 0;
    }
    return b->live == 0 && (b->issued == b->nflows || interrupted);
}

/* ---- wake: N pickups waiting on --url, then N callbacks (to --callback-url) at a steady pace ---- */

/* phase 0 creates the sessions, phase 3 deletes them: at most -c requests at once */
static void wake_next(bench_t *b)
{
    while (b->issued < b->nflows && b->live < (unsigned long)b->o.concurrency && !interrupted) {
        flow_t *f = &b->flows[b->issued++];
        if (b->phase == 0) {
            xfer_start(b, &f->x[PH_CREATE], NULL, NULL);
        } else if (f->created) {
            xfer_start(b, &f->x[PH_DELETE], f->poll_url, f->auth);
        } else {
            continue;
        }
        f->live = 1;
        ++b->live;
    }
}

static void wake_flow_over(bench_t *b, flow_t *f)
{
    for (int p = PH_PICKUP; p <= PH_CALLBACK; ++p)
        xfer_stop(b, &f->x[p]);
    if (f->live) {
        f->live = 0;
        --b->live;
    }
}

static void admin_start(bench_t *b)
{
    xfer_t *x = &b->admin;
    if (x->h == NULL) {
        CURL *h = curl_easy_init();
        if (h == NULL)
            oom();
        x->keep = 1;
        curl_easy_setopt(h, CURLOPT_PRIVATE, x);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
        curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 2000L);
        curl_easy_setopt(h, CURLOPT_URL, b->metrics_url);
        x->h = h;
    }
    x->len = 0;
    x->overflow = 0;
    x->started = now_ns();
    x->active = 1;
    if (curl_multi_add_handle(b->multi, x->h) != CURLM_OK) {
        fputs("flow_bench: curl_multi_add_handle failed\n", stderr);
        exit(1);
    }
}

/* reads authrelay_waiting_pickups from the admin listener's /metrics */
static void admin_done(bench_t *b, CURLcode rc, long status)
{
    static const char name[] = "authrelay_waiting_pickups ";
    const xfer_t *x = &b->admin;
    if (rc != CURLE_OK || status != 200 || x->overflow || x->body == NULL)
        return;
    for (const char *line = x->body; line != NULL && *line != '\0';) {
        if (strncmp(line, name, sizeof(name) - 1) == 0) {
            b->waiting_seen = strtol(line + sizeof(name) - 1, NULL, 10);
            return;
        }
        line = strchr(line, '\n');
        if (line != NULL)
            ++line;
    }
}

static void wake_done(bench_t *b, xfer_t *x, CURLcode rc, long status)
{
    flow_t *f = x->flow;
    uint64_t t = now_ns();
    switch (x->phase) {
    case PH_CREATE:
        if (expect(b, x, rc, status) == 0 && parse_session(b, f, x) == 0) {
            samples_add(&b->lat[PH_CREATE], us_between(x->started, t));
            make_code(&b->rng, f->code, (size_t)b->o.code_len);
            f->created = 1;
            ++b->nstates;
        }
        f->live = 0;
        --b->live;
        wake_next(b);
        return;
    case PH_DELETE:
        if (expect(b, x, rc, status) == 0)
            samples_add(&b->lat[PH_DELETE], us_between(x->started, t));
        f->live = 0;
        --b->live;
        wake_next(b);
        return;
    case PH_PICKUP:
        if (f->browser != 2) {
            /* answered while it should still be waiting: whatever it says, the wake-up was not measured */
            ++b->err.early;
            f->browser = 3; /* its callback is no longer sent */
            wake_flow_over(b, f);
            return;
        }
        if (rc == CURLE_OK && status == 202) {
            ++b->err.status[PH_PICKUP][202]; /* the wait ran out: a lost wake-up */
            wake_flow_over(b, f);
            return;
        }
        if (expect(b, x, rc, status) != 0 || verify_pickup(b, f, x) != 0) {
            wake_flow_over(b, f);
            return;
        }
        f->t_pickup = t;
        f->pickup_ok = 1;
        break;
    case PH_CALLBACK:
        if (expect(b, x, rc, status) != 0) {
            wake_flow_over(b, f); /* its pickup would only wait out its time */
            return;
        }
        samples_add(&b->lat[PH_CALLBACK], us_between(x->started, t));
        f->t_callback_sent = x->started;
        f->t_callback = t;
        f->callback_ok = 1;
        break;
    default:
        return;
    }
    if (f->pickup_ok && f->callback_ok) {
        samples_add(&b->wake, us_between(f->t_callback, f->t_pickup));
        samples_add(&b->code, us_between(f->t_callback_sent, f->t_pickup));
        ++b->completed;
        b->last_done = t;
        wake_flow_over(b, f);
    }
}

/* ends the measurement (or an interrupted run) and deletes the sessions */
static void wake_release(bench_t *b)
{
    for (size_t i = 0; i != b->nflows; ++i)
        wake_flow_over(b, &b->flows[i]);
    b->qlen = 0;
    interrupted = 0; /* a signal ends the run early; the sessions are still deleted */
    b->phase = 3;
    b->issued = 0;
    b->live = 0;
    wake_next(b);
}

static int wake_tick(bench_t *b)
{
    uint64_t t = now_ns();
    switch (b->phase) {
    case 0: /* creating */
        if (b->live != 0 || (b->issued < b->nflows && !interrupted))
            return 0;
        b->t_create1 = t;
        if (interrupted) {
            wake_release(b);
            return 0;
        }
        b->phase = 1;
        b->t0 = t;
        for (size_t i = 0; i != b->nflows; ++i) {
            flow_t *f = &b->flows[i];
            if (!f->created)
                continue;
            f->live = 1;
            ++b->live;
            xfer_start(b, &f->x[PH_PICKUP], f->poll_url, f->auth);
        }
        return 0;
    case 1: /* until every pickup waits */
        if (interrupted) {
            wake_release(b);
            return 0;
        }
        if (b->pickups_sent < b->nstates && t < b->t0 + (uint64_t)WAKE_READY_SECS * 1000000000u)
            return 0;
        if (b->t_ready_wait == 0)
            b->t_ready_wait = t;
        if (b->o.admin_url != NULL) {
            if (b->waiting_seen < (long)b->nstates && t < b->t_ready_wait + (uint64_t)WAKE_READY_SECS * 1000000000u) {
                if (!b->admin.active && t >= b->t_next_metrics) {
                    b->t_next_metrics = t + 50000000u;
                    admin_start(b);
                }
                return 0;
            }
            if (b->admin.active)
                return 0; /* the last read is still on its way; its handle must be idle before the measurement */
        } else if (t < b->t_ready_wait + 500000000u) {
            return 0;
        }
        b->phase = 2;
        b->t_fire0 = t;
        size_t k = 0;
        for (size_t i = 0; i != b->nflows; ++i) {
            flow_t *f = &b->flows[i];
            if (!f->live || f->browser != 0)
                continue;
            f->browser = 1;
            queue_push(b, f, t + (uint64_t)k * 1000000000u / (uint64_t)b->o.wake_rate);
            ++k;
        }
        printf("WAITING %ld pickups (relay gauge; %lu sent, %lu still open here), firing %zu callbacks at %ld/s\n", b->waiting_seen,
               b->pickups_sent, b->live, k, b->o.wake_rate);
        fflush(stdout);
        return 0;
    case 2: /* callbacks going out, pickups answering */
        if (interrupted || b->live == 0) {
            b->t_hold = t;
            wake_release(b);
        }
        return 0;
    default: /* deleting */
        return b->live == 0 && (b->issued == b->nflows || interrupted);
    }
}

/* ---- driver ---- */

static void on_done(bench_t *b, CURL *h, CURLcode rc)
{
    char *priv = NULL;
    long status = 0, version = 0;
    curl_easy_getinfo(h, CURLINFO_PRIVATE, &priv);
    xfer_t *x = (xfer_t *)priv;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (x == &b->admin) {
        curl_multi_remove_handle(b->multi, h);
        x->active = 0;
        admin_done(b, rc, status);
        return;
    }
    curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &version);
    ++b->xfers;
    if (version == CURL_HTTP_VERSION_2_0)
        ++b->xfers_h2;
    curl_multi_remove_handle(b->multi, h);
    x->active = 0;
    switch (b->o.mode) {
    case MODE_FLOW:
        flow_done(b, x, rc, status);
        break;
    case MODE_CALLBACKS:
        callbacks_done(b, x, rc, status);
        break;
    case MODE_HOLD:
        hold_done(b, x, rc, status);
        break;
    case MODE_WAKE:
        wake_done(b, x, rc, status);
        break;
    }
}

static void run(bench_t *b, int (*tick)(bench_t *))
{
    for (;;) {
        int running;
        uint64_t t = now_ns();
        curl_multi_perform(b->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(b->multi, &left)) != NULL)
            if (m->msg == CURLMSG_DONE)
                on_done(b, m->easy_handle, m->data.result);
        if (b->o.mode == MODE_WAKE && b->phase == 2)
            samples_add(&b->loop, us_between(t, now_ns()));
        start_browsers(b);
        if (tick(b))
            break;
        curl_multi_poll(b->multi, NULL, 0, b->qlen != 0 ? 1 : 20, NULL);
    }
}

static unsigned long errors_total(const errors_t *e)
{
    unsigned long n = e->mismatch + e->aborted + e->early;
    for (int p = 0; p != PH_COUNT; ++p) {
        n += e->bad_body[p];
        for (int i = 0; i != CURL_LAST; ++i)
            n += e->transport[p][i];
        for (int i = 0; i != 600; ++i)
            n += e->status[p][i];
    }
    return n;
}

static void print_errors(const errors_t *e)
{
    unsigned long total = errors_total(e);
    printf("errors: %lu\n", total);
    if (total == 0)
        return;
    for (int p = 0; p != PH_COUNT; ++p) {
        for (int i = 0; i != CURL_LAST; ++i)
            if (e->transport[p][i] != 0)
                printf("  %-8s transport: %s: %lu\n", phase_names[p], curl_easy_strerror((CURLcode)i), e->transport[p][i]);
        for (int i = 0; i != 600; ++i)
            if (e->status[p][i] != 0)
                printf("  %-8s HTTP %d (want %ld): %lu\n", phase_names[p], i, phase_expected[p], e->status[p][i]);
        if (e->bad_body[p] != 0)
            printf("  %-8s unexpected body: %lu\n", phase_names[p], e->bad_body[p]);
    }
    if (e->mismatch != 0)
        printf("  pickup   200 with another code/state: %lu\n", e->mismatch);
    if (e->aborted != 0)
        printf("  flows unfinished when the drain time ran out: %lu\n", e->aborted);
    if (e->early != 0)
        printf("  pickup   answered before its callback was sent: %lu\n", e->early);
}

static void print_protocol(const bench_t *b)
{
    printf("transfers: %lu (%lu over HTTP/2), connections opened: %ld (at most %ld at once)\n", b->xfers, b->xfers_h2, b->connects,
           b->sockets_peak);
}

static const char *proto_name(const bench_t *b)
{
    return b->o.http1 ? "h1" : "h2";
}

static void report_flow(bench_t *b)
{
    double secs = b->completed != 0 ? (double)(b->last_done - b->t0) / 1e9 : 0;
    double rate = secs > 0 ? (double)b->completed / secs : 0;
    size_t early = 0;
    for (size_t i = 0; i != b->wake.n; ++i)
        early += b->wake.v[i] < 0;
    printf("flows completed: %lu in %.2f s = %.1f flows/s\n", b->completed, secs, rate);
    print_protocol(b);
    print_errors(&b->err);
    printf("latency (ms)                 p50       p90       p99       max    samples\n");
    samples_row("flow (create..delete)", &b->flow);
    samples_row("wake (303 -> 200)", &b->wake);
    samples_row("code (callback -> 200)", &b->code);
    samples_row("create", &b->lat[PH_CREATE]);
    samples_row("callback", &b->lat[PH_CALLBACK]);
    samples_row("delete", &b->lat[PH_DELETE]);
    printf("pickups answered before the callback's 303 arrived (negative wake): %zu\n", early);
    printf("RESULT mode=flow proto=%s c=%ld flows=%lu secs=%.2f rate=%.1f errors=%lu flow_p50=%.2f flow_p90=%.2f "
           "flow_p99=%.2f flow_max=%.2f wake_p50=%.2f wake_p90=%.2f wake_p99=%.2f wake_max=%.2f code_p50=%.2f code_p99=%.2f "
           "conns=%ld split=%d\n",
           proto_name(b), b->o.concurrency, b->completed, secs, rate, errors_total(&b->err), pct(&b->flow, 50), pct(&b->flow, 90),
           pct(&b->flow, 99), pct(&b->flow, 100), pct(&b->wake, 50), pct(&b->wake, 90), pct(&b->wake, 99), pct(&b->wake, 100),
           pct(&b->code, 50), pct(&b->code, 99), b->connects, b->o.callback_url != NULL);
}

/* --urls: one callback path a line, each with its own fresh code; 0 or -1 (said on stderr) */
static int write_urls(bench_t *b)
{
    FILE *fp = fopen(b->o.urls_file, "w");
    char *code = malloc((size_t)b->o.code_len + 1);
    int ok = fp != NULL && code != NULL;
    for (size_t i = 0; ok && i != b->nstates; ++i) {
        make_code(&b->rng, code, (size_t)b->o.code_len);
        ok = fprintf(fp, "/qorus-oauth2-redirect?code=%s&state=%s\n", code, b->states[i]) > 0;
    }
    if (fp != NULL && fclose(fp) != 0)
        ok = 0;
    free(code);
    if (!ok)
        fprintf(stderr, "flow_bench: cannot write %s\n", b->o.urls_file);
    return ok ? 0 : -1;
}

static void report_urls(bench_t *b)
{
    double csecs = (double)(b->t_create1 - b->t_create0) / 1e9;
    double crate = csecs > 0 ? (double)b->nstates / csecs : 0;
    printf("sessions created: %zu in %.2f s = %.1f sessions/s; their callback paths are in %s\n", b->nstates, csecs, crate,
           b->o.urls_file);
    print_protocol(b);
    print_errors(&b->err);
    printf("RESULT mode=urls proto=%s c=%ld created=%zu create_rate=%.1f errors=%lu\n", proto_name(b), b->o.concurrency, b->nstates,
           crate, errors_total(&b->err));
}

static void report_callbacks(bench_t *b)
{
    double csecs = (double)(b->t_create1 - b->t_create0) / 1e9;
    double crate = csecs > 0 ? (double)b->nstates / csecs : 0;
    double secs = b->completed != 0 ? (double)(b->last_done - b->t0) / 1e9 : 0;
    double rate = secs > 0 ? (double)b->completed / secs : 0;
    samples_t *cl = &b->lat[PH_CALLBACK], *cr = &b->lat[PH_CREATE];
    printf("sessions created: %zu in %.2f s = %.1f sessions/s\n", b->nstates, csecs, crate);
    printf("callbacks (303): %lu in %.2f s = %.1f requests/s%s\n", b->completed, secs, rate,
           b->used_states == b->nstates && b->nstates != 0 ? " (ran out of sessions: raise --sessions)" : "");
    print_protocol(b);
    print_errors(&b->err);
    printf("latency (ms)                 p50       p90       p99       max    samples\n");
    samples_row("create", cr);
    samples_row("callback", cl);
    printf("RESULT mode=callbacks proto=%s c=%ld created=%zu create_rate=%.1f callbacks=%lu secs=%.2f rate=%.1f errors=%lu "
           "cb_p50=%.2f cb_p90=%.2f cb_p99=%.2f cb_max=%.2f create_p50=%.2f create_p99=%.2f exhausted=%d split=%d\n",
           proto_name(b), b->o.concurrency, b->nstates, crate, b->completed, secs, rate, errors_total(&b->err), pct(cl, 50),
           pct(cl, 90), pct(cl, 99), pct(cl, 100), pct(cr, 50), pct(cr, 99), b->used_states == b->nstates,
           b->o.callback_url != NULL);
}

static void report_hold(bench_t *b)
{
    double csecs = (double)(b->t_create1 - b->t_create0) / 1e9;
    double ssecs = b->holding_printed ? (double)(b->t_hold - b->t0) / 1e9 : 0;
    printf("sessions created: %zu in %.2f s; pickups held: %lu (all sent in %.2f s)\n", b->nstates, csecs,
           b->holding_printed ? (unsigned long)b->nstates : 0ul, ssecs);
    print_protocol(b);
    print_errors(&b->err);
    printf("RESULT mode=hold proto=%s n=%ld created=%zu held=%d send_secs=%.2f errors=%lu conns=%ld\n", proto_name(b), b->o.hold,
           b->nstates, b->holding_printed, ssecs, errors_total(&b->err), b->connects);
}

static void report_wake(bench_t *b)
{
    double csecs = (double)(b->t_create1 - b->t_create0) / 1e9;
    double fsecs = b->t_hold > b->t_fire0 ? (double)(b->t_hold - b->t_fire0) / 1e9 : 0;
    size_t early = 0;
    for (size_t i = 0; i != b->wake.n; ++i)
        early += b->wake.v[i] < 0;
    printf("sessions created: %zu in %.2f s; pickups sent: %lu; relay gauge before the callbacks: %ld waiting\n", b->nstates, csecs,
           b->pickups_sent, b->waiting_seen);
    printf("callbacks to %s at %ld/s; woken pickups with their code: %lu of %zu in %.2f s\n", b->cb_base, b->o.wake_rate,
           b->completed, b->nstates, fsecs);
    print_protocol(b);
    print_errors(&b->err);
    printf("latency (ms)                 p50       p90       p99       max    samples\n");
    samples_row("wake (303 -> 200)", &b->wake);
    samples_row("code (callback -> 200)", &b->code);
    samples_row("callback (303)", &b->lat[PH_CALLBACK]);
    samples_row("create", &b->lat[PH_CREATE]);
    samples_row("delete", &b->lat[PH_DELETE]);
    samples_row("client loop pass", &b->loop);
    printf("pickups answered before the callback's 303 arrived (negative wake): %zu\n", early);
    printf("RESULT mode=wake proto=%s n=%ld created=%zu waiting=%ld pace=%ld woken=%lu errors=%lu wake_p50=%.3f wake_p90=%.3f "
           "wake_p99=%.3f wake_max=%.3f code_p50=%.3f code_p90=%.3f code_p99=%.3f code_max=%.3f cb_p50=%.3f cb_p99=%.3f "
           "negative=%zu loop_p50=%.3f loop_p99=%.3f loop_max=%.3f split=%d conns=%ld\n",
           proto_name(b), b->o.wake, b->nstates, b->waiting_seen, b->o.wake_rate, b->completed, errors_total(&b->err),
           pct(&b->wake, 50), pct(&b->wake, 90), pct(&b->wake, 99), pct(&b->wake, 100), pct(&b->code, 50), pct(&b->code, 90),
           pct(&b->code, 99), pct(&b->code, 100), pct(&b->lat[PH_CALLBACK], 50), pct(&b->lat[PH_CALLBACK], 99), early,
           pct(&b->loop, 50), pct(&b->loop, 99), pct(&b->loop, 100), b->o.callback_url != NULL, b->connects);
}

static void usage(FILE *fp)
{
    fputs("usage: flow_bench [options]\n"
          "  --url URL            relay base URL, loopback only (default https://localhost:8443)\n"
          "  -c, --concurrency C  concurrent flows / requests (default 50)\n"
          "  -d, --duration SEC   run time (default 10; 0 = until -n flows)\n"
          "  -n, --flows N        stop after N flows (default: none)\n"
          "  --http1              HTTP/1.1 instead of HTTP/2 (over TLS)\n"
          "  --streams S          HTTP/2 streams per connection before curl opens another (default 10; hold: 100)\n"
          "  --connections K      HTTP/2 connections at most (default: requests in flight / streams; HTTP/1.1: no cap)\n"
          "  --wait SEC           Prefer: wait=SEC of the pickups (default 10; hold: 30)\n"
          "  --code-len N         length of the fake JWT code, 64..8192 (default 1024)\n"
          "  --browser-delay MS   delay between the pickup going out and the callback (default 0)\n"
          "  --callbacks-only     pre-create --sessions sessions, then callbacks, each with a fresh state\n"
          "  --sessions M         sessions pre-created by --callbacks-only (default 50000)\n"
          "  --ttl SEC            --callbacks-only: the sessions' ttl (default 60)\n"
          "  --urls FILE          --callbacks-only: create the sessions, write one callback path a line to FILE\n"
          "                       (/qorus-oauth2-redirect?code=<fresh code>&state=<the session's>) and stop\n"
          "  --hold N             create N sessions and keep N pickups waiting (prints HOLDING), then delete them\n"
          "  --hold-secs SEC      how long to hold (default 5; a SIGINT/SIGTERM ends it early)\n"
          "  --callback-url URL   send the callbacks (the browser) to this relay replica, loopback only (default: --url)\n"
          "  --wake N             wake latency: N sessions and N waiting pickups on --url, then N callbacks (to\n"
          "                       --callback-url) at --wake-rate per second; prints WAITING, then the latencies\n"
          "  --wake-rate R        callbacks per second of --wake (default 200)\n"
          "  --admin-url URL      --wake: the admin listener of --url, loopback (http://127.0.0.1:9090); the callbacks\n"
          "                       start once its authrelay_waiting_pickups shows every pickup waiting\n",
          fp);
}

static int number(const char *s, long min, long max, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "flow_bench: bad number: %s\n", s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_args(opts_t *o, int argc, char **argv)
{
    enum {
        O_URL = 256,
        O_HTTP1,
        O_STREAMS,
        O_CONNS,
        O_WAIT,
        O_CODE,
        O_DELAY,
        O_CBONLY,
        O_SESSIONS,
        O_HOLD,
        O_HOLDSECS,
        O_CBURL,
        O_ADMIN,
        O_WAKE,
        O_WAKERATE,
        O_TTL,
        O_URLS
    };
    static const struct option longopts[] = {{"url", required_argument, NULL, O_URL},
                                             {"concurrency", required_argument, NULL, 'c'},
                                             {"duration", required_argument, NULL, 'd'},
                                             {"flows", required_argument, NULL, 'n'},
                                             {"http1", no_argument, NULL, O_HTTP1},
                                             {"streams", required_argument, NULL, O_STREAMS},
                                             {"connections", required_argument, NULL, O_CONNS},
                                             {"wait", required_argument, NULL, O_WAIT},
                                             {"code-len", required_argument, NULL, O_CODE},
                                             {"browser-delay", required_argument, NULL, O_DELAY},
                                             {"callbacks-only", no_argument, NULL, O_CBONLY},
                                             {"sessions", required_argument, NULL, O_SESSIONS},
                                             {"hold", required_argument, NULL, O_HOLD},
                                             {"hold-secs", required_argument, NULL, O_HOLDSECS},
                                             {"callback-url", required_argument, NULL, O_CBURL},
                                             {"admin-url", required_argument, NULL, O_ADMIN},
                                             {"wake", required_argument, NULL, O_WAKE},
                                             {"wake-rate", required_argument, NULL, O_WAKERATE},
                                             {"ttl", required_argument, NULL, O_TTL},
                                             {"urls", required_argument, NULL, O_URLS},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int ch, duration_set = 0;
    *o = (opts_t){"https://localhost:8443", MODE_FLOW, 0, 50, 10, 0, 0, 0, -1, 50000, 0, 5, 1024, 0, NULL, NULL, 0, 200, 60, NULL};
    while ((ch = getopt_long(argc, argv, "c:d:n:h", longopts, NULL)) != -1) {
        int r = 0;
        switch (ch) {
        case O_URL:
            o->url = optarg;
            break;
        case 'c':
            r = number(optarg, 1, 100000, &o->concurrency);
            break;
        case 'd':
            r = number(optarg, 0, 86400, &o->duration);
            duration_set = 1;
            break;
        case 'n':
            r = number(optarg, 1, 100000000, &o->flows);
            break;
        case O_HTTP1:
            o->http1 = 1;
            break;
        case O_STREAMS:
            r = number(optarg, 1, 1000, &o->streams);
            break;
        case O_CONNS:
            r = number(optarg, 1, 100000, &o->connections);
            break;
        case O_WAIT:
            r = number(optarg, 1, 300, &o->wait);
            break;
        case O_CODE:
            r = number(optarg, 64, RLY_CODE_MAX, &o->code_len);
            break;
        case O_DELAY:
            r = number(optarg, 0, 60000, &o->browser_delay_ms);
            break;
        case O_CBONLY:
            o->mode = MODE_CALLBACKS;
            break;
        case O_SESSIONS:
            r = number(optarg, 1, 10000000, &o->sessions);
            break;
        case O_HOLD:
            o->mode = MODE_HOLD;
            r = number(optarg, 1, 1000000, &o->hold);
            break;
        case O_HOLDSECS:
            r = number(optarg, 1, 3600, &o->hold_secs);
            break;
        case O_CBURL:
            o->callback_url = optarg;
            break;
        case O_ADMIN:
            o->admin_url = optarg;
            break;
        case O_WAKE:
            o->mode = MODE_WAKE;
            r = number(optarg, 1, 1000000, &o->wake);
            break;
        case O_WAKERATE:
            r = number(optarg, 1, 100000, &o->wake_rate);
            break;
        case O_TTL:
            r = number(optarg, RLY_TTL_MIN, 86400, &o->ttl);
            break;
        case O_URLS:
            o->urls_file = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
        if (r != 0)
            return -1;
    }
    if (optind != argc) {
        usage(stderr);
        return -1;
    }
    if (o->urls_file != NULL && o->mode != MODE_CALLBACKS) {
        fputs("flow_bench: --urls goes with --callbacks-only\n", stderr);
        return -1;
    }
    if (o->flows > 0 && !duration_set)
        o->duration = 0;
    int many = o->mode == MODE_HOLD || o->mode == MODE_WAKE;
    if (o->streams == 0)
        o->streams = many ? 100 : 10;
    if (o->connections == 0 && !o->http1) {
        /* requests in flight at once: a flow has at most two (pickup and callback) */
        long inflight = o->mode == MODE_HOLD   ? o->hold
                        : o->mode == MODE_WAKE ? o->wake
                        : o->mode == MODE_FLOW ? 2 * o->concurrency
                                               : o->concurrency;
        o->connections = (inflight + o->streams - 1) / o->streams;
    }
    if (o->wait < 0)
        o->wait = many ? 30 : 10;
    if (o->mode == MODE_WAKE && o->wake / o->wake_rate + WAKE_READY_SECS + 5 >= o->wait) {
        fputs("flow_bench: --wake N takes N / --wake-rate seconds to fire, plus up to 15 s to get ready: raise --wait\n", stderr);
        return -1;
    }
    if (o->mode == MODE_HOLD && o->hold_secs >= o->wait) {
        fputs("flow_bench: --hold-secs must be shorter than --wait\n", stderr);
        return -1;
    }
    return 0;
}

static int setup(bench_t *b)
{
    char host[128], entry[160];
    long port = 0;
    size_t n = strlen(b->o.url);
    while (n != 0 && b->o.url[n - 1] == '/')
        --n;
    if (n == 0 || n >= sizeof(b->base)) {
        fputs("flow_bench: bad --url\n", stderr);
        return -1;
    }
    memcpy(b->base, b->o.url, n);
    b->base[n] = '\0';
    if (!url_loopback(b->base, host, sizeof(host), &port)) {
        fputs("flow_bench: --url must be http(s) to a loopback address (certificate checks are off)\n", stderr);
        return -1;
    }
    memcpy(b->cb_base, b->base, n + 1);
    if (b->o.callback_url != NULL) {
        size_t m = strlen(b->o.callback_url);
        long cb_port = 0;
        while (m != 0 && b->o.callback_url[m - 1] == '/')
            --m;
        if (m == 0 || m >= sizeof(b->cb_base)) {
            fputs("flow_bench: bad --callback-url\n", stderr);
            return -1;
        }
        memcpy(b->cb_base, b->o.callback_url, m);
        b->cb_base[m] = '\0';
        if (!url_loopback(b->cb_base, NULL, 0, &cb_port)) {
            fputs("flow_bench: --callback-url must be http(s) to a loopback address (certificate checks are off)\n", stderr);
            return -1;
        }
        if (cb_port != port) {
            snprintf(entry, sizeof(entry), "localhost:%ld:127.0.0.1", cb_port);
            if ((b->resolve = curl_slist_append(b->resolve, entry)) == NULL)
                oom();
        }
    }
    if (b->o.admin_url != NULL) {
        size_t m = strlen(b->o.admin_url);
        while (m != 0 && b->o.admin_url[m - 1] == '/')
            --m;
        if (m == 0 || m >= BASE_URL_MAX || !url_loopback(b->o.admin_url, NULL, 0, NULL)) {
            fputs("flow_bench: --admin-url must be http to a loopback address\n", stderr);
            return -1;
        }
        snprintf(b->metrics_url, sizeof(b->metrics_url), "%.*s/metrics", (int)m, b->o.admin_url);
    }
    b->waiting_seen = -1;
    snprintf(b->sessions_url, sizeof(b->sessions_url), "%s/v1/sessions", b->base);
    snprintf(b->prefer, sizeof(b->prefer), "Prefer: wait=%ld", b->o.wait);
    snprintf(b->body_short, sizeof(b->body_short), body_short_fmt, b->o.ttl);
    /* the dev relay's URLs say "localhost": pin it to 127.0.0.1 so no ::1 attempt or resolver is involved */
    snprintf(entry, sizeof(entry), "localhost:%ld:127.0.0.1", port);
    if ((b->resolve = curl_slist_append(b->resolve, entry)) == NULL ||
        (b->json_ct = curl_slist_append(NULL, "Content-Type: application/json")) == NULL)
        oom();
    if ((b->tok = json_tokener_new_ex(RLY_JSON_DEPTH_MAX)) == NULL || (b->multi = curl_multi_init()) == NULL)
        oom();
    curl_multi_setopt(b->multi, CURLMOPT_PIPELINING, b->o.http1 ? (long)CURLPIPE_NOTHING : (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(b->multi, CURLMOPT_MAX_CONCURRENT_STREAMS, b->o.streams);
    /* without a cap, curl 7.88 opens a new connection for nearly every transfer added while the others are full */
    curl_multi_setopt(b->multi, CURLMOPT_MAX_HOST_CONNECTIONS, b->o.connections);
    b->nflows = b->o.mode == MODE_HOLD ? (size_t)b->o.hold : b->o.mode == MODE_WAKE ? (size_t)b->o.wake : (size_t)b->o.concurrency;
    if ((b->flows = calloc(b->nflows, sizeof(*b->flows))) == NULL)
        oom();
    for (size_t i = 0; i != b->nflows; ++i) {
        flow_t *f = &b->flows[i];
        f->bench = b;
        for (int p = 0; p != PH_COUNT; ++p) {
            f->x[p].flow = f;
            f->x[p].phase = (phase_t)p;
        }
        if ((b->o.mode == MODE_FLOW || b->o.mode == MODE_WAKE) && (f->code = malloc((size_t)b->o.code_len + 1)) == NULL)
            oom();
    }
    b->rng = (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ULL;
    if (b->o.mode == MODE_CALLBACKS) {
        if ((b->states = malloc((size_t)b->o.sessions * sizeof(*b->states))) == NULL ||
            (b->fixed_code = malloc((size_t)b->o.code_len + 1)) == NULL)
            oom();
        make_code(&b->rng, b->fixed_code, (size_t)b->o.code_len);
    }
    return 0;
}

static void teardown(bench_t *b)
{
    for (size_t i = 0; i != b->nflows; ++i) {
        for (int p = 0; p != PH_COUNT; ++p)
            xfer_free(b, &b->flows[i].x[p]);
        curl_slist_free_all(b->flows[i].auth);
        free(b->flows[i].code);
    }
    free(b->flows);
    xfer_free(b, &b->admin);
    free(b->loop.v);
    free(b->states);
    free(b->fixed_code);
    free(b->q);
    for (int p = 0; p != PH_COUNT; ++p)
        free(b->lat[p].v);
    free(b->flow.v);
    free(b->wake.v);
    free(b->code.v);
    curl_multi_cleanup(b->multi);
    curl_slist_free_all(b->resolve);
    curl_slist_free_all(b->json_ct);
    json_tokener_free(b->tok);
}

int main(int argc, char **argv)
{
    static bench_t bench;
    bench_t *b = &bench;
    struct sigaction sa;
    int status = 1;

    if (parse_args(&b->o, argc, argv) != 0)
        return 2;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    if (setup(b) != 0)
        goto Exit;

    switch (b->o.mode) {
    case MODE_FLOW:
        printf("flow_bench: full flow, %s, %ld concurrent, %lds%s, wait=%ld, code %ld bytes, <=%ld streams/connection, <=%ld "
               "connections\n",
               b->o.http1 ? "HTTP/1.1" : "HTTP/2", b->o.concurrency, b->o.duration, b->o.flows > 0 ? " (or -n flows)" : "",
               b->o.wait, b->o.code_len, b->o.streams, b->o.connections);
        printf("flow_bench: sessions, pickups and deletes to %s, callbacks to %s\n", b->base, b->cb_base);
        fflush(stdout);
        b->t0 = now_ns();
        b->deadline = b->o.duration > 0 ? b->t0 + (uint64_t)b->o.duration * 1000000000u : 0;
        for (size_t i = 0; i != b->nflows; ++i)
            flow_start(b, &b->flows[i]);
        run(b, flow_tick);
        report_flow(b);
        break;
    case MODE_CALLBACKS:
        printf("flow_bench: callbacks only, %s, %ld concurrent, %lds, %ld sessions pre-created, code %ld bytes\n",
               b->o.http1 ? "HTTP/1.1" : "HTTP/2", b->o.concurrency, b->o.duration, b->o.sessions, b->o.code_len);
        printf("flow_bench: sessions created on %s, callbacks to %s\n", b->base, b->cb_base);
        fflush(stdout);
        b->t_create0 = now_ns();
        for (size_t i = 0; i != b->nflows; ++i)
            create_next(b, &b->flows[i], (size_t)b->o.sessions);
        run(b, callbacks_tick);
        if (b->o.urls_file == NULL) {
            report_callbacks(b);
        } else {
            report_urls(b);
            if (write_urls(b) != 0)
                goto Exit;
        }
        break;
    case MODE_HOLD:
        printf("flow_bench: hold %ld waiting pickups, %s, wait=%ld, up to %ld streams/connection\n", b->o.hold,
               b->o.http1 ? "HTTP/1.1" : "HTTP/2", b->o.wait, b->o.streams);
        fflush(stdout);
        b->t_create0 = now_ns();
        hold_create_next(b);
        run(b, hold_tick);
        report_hold(b);
        break;
    case MODE_WAKE:
        printf("flow_bench: wake latency, %s, %ld pickups waiting on %s (wait=%ld, <=%ld streams/connection), callbacks to %s "
               "at %ld/s, code %ld bytes\n",
               b->o.http1 ? "HTTP/1.1" : "HTTP/2", b->o.wake, b->base, b->o.wait, b->o.streams, b->cb_base, b->o.wake_rate,
               b->o.code_len);
        fflush(stdout);
        b->t_create0 = now_ns();
        wake_next(b);
        run(b, wake_tick);
        report_wake(b);
        break;
    }
    fflush(stdout);
    status = errors_total(&b->err) == 0 ? 0 : 3;
Exit:
    teardown(b);
    curl_global_cleanup();
    return status;
}
