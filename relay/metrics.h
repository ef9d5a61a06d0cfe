/* metrics.h: counters, the wake-latency histogram and gauges, rendered in the Prometheus text format */
#ifndef RELAY_METRICS_H
#define RELAY_METRICS_H

#include <stddef.h>

/*
 * Counts one flow event under (event, outcome, as): event and outcome that the log's rules refuse are counted as
 * "invalid", as the log writes them; as may be NULL or "" (no label value). Thread-safe; at most 1,024 series.
 */
void relay_metrics_count(const char *event, const char *outcome, const char *as);
/* the time from a callback's completing write to the woken pickup's answer */
void relay_metrics_observe_wake(double seconds);
void relay_metrics_waiting(int delta);
long relay_metrics_waiting_now(void);
/* one request on the public listener, HTTP/2 or not (operators watch the mix: HTTP/2 is where Rapid Reset lives) */
void relay_metrics_request(int http2);
/* the public listener's connections: one opened (+1) or closed (-1) */
void relay_metrics_connections(int delta);
/* accepting paused: at --max-connections (descriptors = 0) or out of descriptors (EMFILE, ENFILE: descriptors = 1) */
void relay_metrics_accept_paused(int descriptors);
/* a connection closed before its first request: its PROXY protocol header was missing or malformed */
void relay_metrics_proxy_refused(void);
/* renders everything into a malloc'ed buffer (caller frees); NULL when out of memory; store_up is the store's readiness */
char *relay_metrics_render(int store_up, int shutting_down, size_t *len);

#endif
