/* event.h: a flow event, beside the log: one log line and one counter */
#ifndef RELAY_EVENT_H
#define RELAY_EVENT_H

#include "log.h"

/*
 * One flow event: written to the log (rly_log_event, filtered by level) and counted under (event, outcome, as) whatever
 * the level (relay_metrics_count); as may be NULL. Values follow the log's rules (log.h). Thread-safe.
 */
void relay_event(rly_log_level_t level, const char *event, const char *as, const char *outcome, long ms);

#endif
