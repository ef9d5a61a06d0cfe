/* event.c: a flow event, beside the log: one log line and one counter */
#include "event.h"
#include "log.h"
#include "metrics.h"

void relay_event(rly_log_level_t level, const char *event, const char *as, const char *outcome, long ms)
{
    rly_log_event(level, event, as, outcome, ms);
    relay_metrics_count(event, outcome, as);
}
