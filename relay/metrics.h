/* metrics.h: counters, the wake-latency histogram and gauges, rendered in the Prometheus text format */
#ifndef RELAY_METRICS_H
#define RELAY_METRICS_H

#include <stddef.h>
#include "log.h"

/* distinct AS label values beyond this are counted as "other" (no allow-list means any host could appear) */
#define RELAY_METRICS_AS_MAX 64

/* one flow event: written to the log and counted under (event, outcome, as); as may be NULL */
void relay_event(rly_log_level_t level, const char *event, const char *as, const char *outcome, long ms);
/* the time from a callback's completing write to the woken pickup's answer */
void relay_metrics_observe_wake(double seconds);
void relay_metrics_waiting(int delta);
long relay_metrics_waiting_now(void);
/* one request on the public listener, HTTP/2 or not (operators watch the mix: HTTP/2 is where Rapid Reset lives) */
void relay_metrics_request(int http2);
/* renders everything into a malloc'ed buffer (caller frees); store_up is the store's readiness */
char *relay_metrics_render(int store_up, int shutting_down, size_t *len);

#endif
