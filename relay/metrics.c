/* metrics.c: counters, the wake-latency histogram and gauges, rendered in the Prometheus text format */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include "audit.h"
#include "buf.h"
#include "metrics.h"
#include "rly.h"

#define COUNTERS_MAX 1024
#define RENDER_FIRST 8192        /* the first allocation of the rendered text */
#define RENDER_MAX (1024 * 1024) /* its limit: 1,024 counters of at most ~400 bytes and the fixed series fit */

typedef struct st_counter_t {
    char event[33], outcome[33], as[RLY_AS_ID_MAX + 1];
    unsigned long long value;
} counter_t;

static const double wake_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
#define NBOUNDS (sizeof(wake_bounds) / sizeof(wake_bounds[0]))

static struct {
    pthread_mutex_t mutex;
    counter_t counters[COUNTERS_MAX];
    size_t ncounters;
    unsigned long long wake_buckets[NBOUNDS + 1];
    unsigned long long wake_count;
    double wake_sum;
    atomic_long waiting;
    atomic_ullong requests[2]; /* on the public listener: HTTP/1.x, HTTP/2 */
    atomic_long connections;
    atomic_ullong accept_paused[2]; /* at the cap, out of descriptors */
    atomic_ullong proxy_refused;
} m = {.mutex = PTHREAD_MUTEX_INITIALIZER};

static void copy(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* a label value as the log would write it: "invalid" unless the auditor accepts it (one schema for logs and metrics: no
 * address, no per-flow value, nothing that breaks the exposition format) */
static const char *checked(const char *key, const char *value)
{
    return value != NULL && rly_audit_value_ok(key, value, strlen(value)) ? value : "invalid";
}

/* the label value for an AS: its identifier, an allow-list entry or "unlisted" (protocol.md "Anonymous logs"), so the
 * label values are bounded by the allow-list; anything else (a bug) is "invalid" */
static const char *as_label(const char *as)
{
    if (as == NULL || *as == '\0')
        return "";
    return checked("as", as);
}

void relay_metrics_count(const char *event, const char *outcome, const char *as)
{
    event = checked("event", event);
    outcome = checked("outcome", outcome);
    pthread_mutex_lock(&m.mutex);
    const char *label = as_label(as);
    size_t i;
    for (i = 0; i != m.ncounters; ++i) {
        counter_t *c = &m.counters[i];
        if (strcmp(c->event, event) == 0 && strcmp(c->outcome, outcome) == 0 && strcmp(c->as, label) == 0)
            break;
    }
    if (i == m.ncounters && m.ncounters != COUNTERS_MAX) {
        counter_t *c = &m.counters[m.ncounters++];
        copy(c->event, sizeof(c->event), event);
        copy(c->outcome, sizeof(c->outcome), outcome);
        copy(c->as, sizeof(c->as), label);
    }
    if (i != COUNTERS_MAX)
        ++m.counters[i].value;
    pthread_mutex_unlock(&m.mutex);
}

void relay_metrics_observe_wake(double seconds)
{
    if (seconds < 0)
        seconds = 0;
    pthread_mutex_lock(&m.mutex);
    size_t i = 0;
    while (i != NBOUNDS && seconds > wake_bounds[i])
        ++i;
    ++m.wake_buckets[i];
    ++m.wake_count;
    m.wake_sum += seconds;
    pthread_mutex_unlock(&m.mutex);
}

void relay_metrics_waiting(int delta)
{
    atomic_fetch_add(&m.waiting, delta);
}

long relay_metrics_waiting_now(void)
{
    return atomic_load(&m.waiting);
}

void relay_metrics_request(int http2)
{
    atomic_fetch_add_explicit(&m.requests[http2 != 0], 1, memory_order_relaxed);
}

void relay_metrics_connections(int delta)
{
    atomic_fetch_add_explicit(&m.connections, delta, memory_order_relaxed);
}

void relay_metrics_accept_paused(int descriptors)
{
    atomic_fetch_add_explicit(&m.accept_paused[descriptors != 0], 1, memory_order_relaxed);
}

void relay_metrics_proxy_refused(void)
{
    atomic_fetch_add_explicit(&m.proxy_refused, 1, memory_order_relaxed);
}

char *relay_metrics_render(int store_up, int shutting_down, size_t *len)
{
    rly_buf_t o;

    rly_buf_init(&o, RENDER_MAX);
    if (rly_buf_reserve(&o, RENDER_FIRST) != 0)
        return NULL;
    rly_buf_addf(&o, "# HELP authrelay_events_total Flow events by event, outcome and authorization server host.\n"
                     "# TYPE authrelay_events_total counter\n");
    pthread_mutex_lock(&m.mutex);
    for (size_t i = 0; i != m.ncounters; ++i) {
        const counter_t *c = &m.counters[i];
        /* label values are identifiers and host names: nothing to escape */
        rly_buf_addf(&o, "authrelay_events_total{event=\"%s\",outcome=\"%s\",as=\"%s\"} %llu\n", c->event, c->outcome, c->as,
                     c->value);
    }
    rly_buf_addf(&o, "# HELP authrelay_wake_latency_seconds Time from a callback's write to the woken pickup's answer.\n"
                     "# TYPE authrelay_wake_latency_seconds histogram\n");
    unsigned long long cumulative = 0;
    for (size_t i = 0; i != NBOUNDS; ++i) {
        cumulative += m.wake_buckets[i];
        rly_buf_addf(&o, "authrelay_wake_latency_seconds_bucket{le=\"%g\"} %llu\n", wake_bounds[i], cumulative);
    }
    cumulative += m.wake_buckets[NBOUNDS];
    rly_buf_addf(&o, "authrelay_wake_latency_seconds_bucket{le=\"+Inf\"} %llu\n", cumulative);
    rly_buf_addf(&o, "authrelay_wake_latency_seconds_sum %.6f\nauthrelay_wake_latency_seconds_count %llu\n", m.wake_sum,
                 m.wake_count);
    pthread_mutex_unlock(&m.mutex);
    rly_buf_addf(&o,
                 "# HELP authrelay_http_requests_total Requests on the public listener by HTTP major version.\n"
                 "# TYPE authrelay_http_requests_total counter\n"
                 "authrelay_http_requests_total{version=\"1\"} %llu\nauthrelay_http_requests_total{version=\"2\"} %llu\n",
                 (unsigned long long)atomic_load(&m.requests[0]), (unsigned long long)atomic_load(&m.requests[1]));
    rly_buf_addf(&o,
                 "# HELP authrelay_waiting_pickups Pickups waiting for a callback now.\n# TYPE authrelay_waiting_pickups gauge\n"
                 "authrelay_waiting_pickups %ld\n",
                 relay_metrics_waiting_now());
    rly_buf_addf(&o,
                 "# HELP authrelay_connections Open connections on the public listener.\n# TYPE authrelay_connections gauge\n"
                 "authrelay_connections %ld\n"
                 "# HELP authrelay_accept_paused_total Times accepting paused: at --max-connections, or out of descriptors.\n"
                 "# TYPE authrelay_accept_paused_total counter\n"
                 "authrelay_accept_paused_total{reason=\"max_connections\"} %llu\n"
                 "authrelay_accept_paused_total{reason=\"descriptors\"} %llu\n"
                 "# HELP authrelay_proxy_refused_total Connections closed for a missing or malformed PROXY protocol header.\n"
                 "# TYPE authrelay_proxy_refused_total counter\n"
                 "authrelay_proxy_refused_total %llu\n",
                 atomic_load(&m.connections), (unsigned long long)atomic_load(&m.accept_paused[0]),
                 (unsigned long long)atomic_load(&m.accept_paused[1]), (unsigned long long)atomic_load(&m.proxy_refused));
    rly_buf_addf(
        &o,
        "# HELP authrelay_store_up 1 if the rendezvous store answers.\n# TYPE authrelay_store_up gauge\nauthrelay_store_up %d\n",
        store_up ? 1 : 0);
    rly_buf_addf(&o,
                 "# HELP authrelay_shutting_down 1 while draining for shutdown.\n# TYPE authrelay_shutting_down gauge\n"
                 "authrelay_shutting_down %d\n",
                 shutting_down ? 1 : 0);
    rly_buf_addf(&o,
                 "# HELP authrelay_build_info Build information.\n# TYPE authrelay_build_info gauge\n"
                 "authrelay_build_info{version=\"%s\"} 1\n",
                 RLY_VERSION);
    return rly_buf_take(&o, len); /* NULL if it failed */
}
