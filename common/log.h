/* log.h: the one log emitter: JSON lines on stdout whose keys are the allow-list of protocol.md */
#ifndef RLY_LOG_H
#define RLY_LOG_H

#include <stddef.h>

typedef enum en_rly_log_level_t {
    RLY_LOG_DEBUG = 0,
    RLY_LOG_INFO,
    RLY_LOG_WARN,
    RLY_LOG_ERROR,
} rly_log_level_t;

/* parses "debug" | "info" | "warn" | "error"; 0 / -1 */
int rly_log_level_parse(const char *s, rly_log_level_t *level);
const char *rly_log_level_name(rly_log_level_t level);

/* lines below level are dropped before formatting; fd is where lines go (1 in the relay; tests may pass a pipe) */
void rly_log_init(rly_log_level_t level, int fd);

/*
 * A flow event: {"ts":..., "level":..., "event":..., "as":..., "outcome":..., "ms":...}.
 * event and outcome must be identifiers [a-z0-9_]{1,32}; as must be an AS identifier (rly_url_as_entry_ok of url.h: the
 * allow-list entry that matched, a host or "*." and a suffix; or RLY_AS_UNLISTED) or NULL (key omitted): an IP address,
 * dotted or bracketed, is "invalid" since `authrelay audit` treats any address as a client's; ms < 0 omits the key. A value that
 * breaks its rule is replaced by "invalid", never written as given. One write(2) per line, or per loop pass on a thread that
 * batches (rly_log_batch); thread-safe.
 */
void rly_log_event(rly_log_level_t level, const char *event, const char *as, const char *outcome, long ms);
/*
 * A lifecycle event: {"ts", "level", "event", "msg"} and "version" when with_version. msg must be one of the fixed texts
 * of logmsg.c (the relay's own words, never anything from a request); any other text is written as RLY_LOGMSG_WITHHELD.
 */
void rly_log_msg(rly_log_level_t level, const char *event, const char *msg, int with_version);

/* on (1) the calling thread collects its lines until rly_log_flush, which its event loop calls after every pass (one
 * write(2) per pass instead of one per line); off (0) flushes and writes each line at once again */
void rly_log_batch(int on);
void rly_log_flush(void);

/* formats one line into buf (for tests and the emitter); returns its length including '\n', or -1 if it does not fit */
int rly_log_format(char *buf, size_t cap, rly_log_level_t level, const char *event, const char *as, const char *outcome, long ms,
                   const char *msg, int with_version, long long unix_ms);

#endif
