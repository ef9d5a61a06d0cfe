/* log.c: the one log emitter: checks each value against its rule and writes JSON lines, one per write(2) or one loop pass's
 * lines per write(2) on a batching thread */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "rly.h"
#include "audit.h"
#include "buf.h"
#include "jsonstr.h"
#include "log.h"
#include "logmsg.h"

#define LOG_LINE_MAX 2048 /* the longest line: a 255-byte AS identifier, two identifiers, a listed msg, the version */
#define LOG_INVALID "invalid"

static atomic_int min_level = RLY_LOG_INFO;
static atomic_int out_fd = 1;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int rly_log_level_parse(const char *s, rly_log_level_t *level)
{
    if (s == NULL)
        return -1;
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *level = (rly_log_level_t)i;
            return 0;
        }
    }
    return -1;
}

const char *rly_log_level_name(rly_log_level_t level)
{
    if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
        return NULL;
    return level_names[level];
}

void rly_log_init(rly_log_level_t level, int fd)
{
    atomic_store(&min_level, (int)level);
    atomic_store(&out_fd, fd);
}

/* event, outcome and as are written only if the auditor would accept them: one schema, kept in audit.c */
/*
 * Values repeat (a handful of events and outcomes, the AS identifiers in use), so a thread remembers the last ones the
 * rules accepted: the rules are a pure function of key and value, and a remembered value is compared in full.
 */
#define MEMO_SLOTS 16
static _Thread_local struct {
    struct {
        char key; /* the key's first letter: "event", "outcome" and "as" differ in it; 0: empty */
        unsigned char len;
        char value[RLY_AS_ID_MAX + 1];
    } slots[MEMO_SLOTS];
    unsigned next;
} memo;

static int value_ok(const char *key, const char *s)
{
    size_t n;
    if (s == NULL)
        return 0;
    n = strlen(s);
    if (n <= RLY_AS_ID_MAX) {
        for (unsigned i = 0; i != MEMO_SLOTS; ++i)
            if (memo.slots[i].key == key[0] && memo.slots[i].len == n && memcmp(memo.slots[i].value, s, n) == 0)
                return 1;
    }
    if (!rly_audit_value_ok(key, s, n))
        return 0;
    if (n <= RLY_AS_ID_MAX) {
        unsigned i = memo.next++ % MEMO_SLOTS;
        memo.slots[i].key = key[0];
        memo.slots[i].len = (unsigned char)n;
        memcpy(memo.slots[i].value, s, n);
    }
    return 1;
}

/* msg: one of the fixed texts of logmsg.c as it is; any other text is never written: the placeholder stands for it */
static const char *listed_msg(const char *s)
{
    const char *text = rly_logmsg_find(s, strnlen(s, RLY_LOGMSG_MAX + 1));
    return text != NULL ? text : RLY_LOGMSG_WITHHELD;
}

/* writes value as width decimal digits, zero padded (width 0: as many as needed), ending at end; returns the start */
static char *digits(char *end, unsigned long long value, int width)
{
    char *p = end;
    do {
        *--p = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0);
    while (end - p < width)
        *--p = '0';
    return p;
}

static void put_uint(rly_buf_t *o, unsigned long long value)
{
    char buf[20], *p = digits(buf + sizeof(buf), value, 0);
    rly_buf_add(o, p, (size_t)(buf + sizeof(buf) - p));
}

static void put_json_string(rly_buf_t *o, const char *s)
{
    size_t room;
    char *tail = rly_buf_tail(o, &room);
    rly_buf_commit(o, tail != NULL ? rly_json_quote(tail, room, s, strlen(s)) : -1);
}

static void put_member(rly_buf_t *o, const char *key, const char *value)
{
    rly_buf_add(o, ",\"", 2);
    rly_buf_adds(o, key);
    rly_buf_add(o, "\":", 2);
    put_json_string(o, value);
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ", quoted, written in one append */
static void put_ts(rly_buf_t *o, long long unix_ms)
{
    char ts[] = "\"0000-00-00T00:00:00.000Z\"";
    struct tm tm;
    time_t secs;
    if (unix_ms < 0)
        unix_ms = 0;
    secs = (time_t)(unix_ms / 1000);
    if (gmtime_r(&secs, &tm) == NULL || tm.tm_year + 1900 > 9999) {
        rly_buf_adds(o, "\"9999-12-31T23:59:59.999Z\"");
        return;
    }
    digits(ts + 5, (unsigned long long)(tm.tm_year + 1900), 4);
    digits(ts + 8, (unsigned long long)(tm.tm_mon + 1), 2);
    digits(ts + 11, (unsigned long long)tm.tm_mday, 2);
    digits(ts + 14, (unsigned long long)tm.tm_hour, 2);
    digits(ts + 17, (unsigned long long)tm.tm_min, 2);
    digits(ts + 20, (unsigned long long)tm.tm_sec, 2);
    digits(ts + 24, (unsigned long long)(unix_ms % 1000), 3);
    rly_buf_add(o, ts, sizeof(ts) - 1);
}

int rly_log_format(char *buf, size_t cap, rly_log_level_t level, const char *event, const char *as, const char *outcome, long ms,
                   const char *msg, int with_version, long long unix_ms)
{
    rly_buf_t o;
    const char *level_name = rly_log_level_name(level);

    rly_buf_init_raw(&o, buf, cap); /* no NUL: the line goes to write(2) with its length */
    rly_buf_add(&o, "{\"ts\":", 6);
    put_ts(&o, unix_ms);
    /* an out-of-range level is never dropped by the filter; call it an error */
    put_member(&o, "level", level_name != NULL ? level_name : "error");
    put_member(&o, "event", value_ok("event", event) ? event : LOG_INVALID);
    if (as != NULL)
        put_member(&o, "as", value_ok("as", as) ? as : LOG_INVALID);
    if (outcome != NULL)
        put_member(&o, "outcome", value_ok("outcome", outcome) ? outcome : LOG_INVALID);
    if (ms >= 0) {
        rly_buf_add(&o, ",\"ms\":", 6);
        put_uint(&o, (unsigned long long)ms);
    }
    if (msg != NULL)
        put_member(&o, "msg", listed_msg(msg));
    if (with_version)
        put_member(&o, "version", RLY_VERSION);
    rly_buf_add(&o, "}\n", 2);

    if (o.err != RLY_BUF_OK)
        return -1;
    return (int)o.len;
}

static long long now_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* writes all of p[0..n); a partial write or EINTR continues where it stopped */
static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

/*
 * A thread that runs an event loop may batch: its lines of one loop pass are written together by rly_log_flush at the
 * end of the pass. At most PIPE_BUF bytes of whole lines per write, so that lines of several threads never interleave
 * on a pipe. Other threads (and a batching thread's line that does not fit) write one line per write(2).
 */
#define LOG_BATCH_MAX 4096
static _Thread_local struct {
    int on;
    size_t len;
    char buf[LOG_BATCH_MAX];
} batch;

void rly_log_flush(void)
{
    if (batch.len != 0) {
        int saved_errno = errno;
        write_all(atomic_load_explicit(&out_fd, memory_order_relaxed), batch.buf, batch.len);
        batch.len = 0;
        errno = saved_errno;
    }
}

void rly_log_batch(int on)
{
    if (!on)
        rly_log_flush();
    batch.on = on;
}

static void emit(rly_log_level_t level, const char *event, const char *as, const char *outcome, long ms, const char *msg,
                 int with_version)
{
    char line[LOG_LINE_MAX];
    int saved_errno = errno;
    int n;

    if ((int)level < atomic_load_explicit(&min_level, memory_order_relaxed))
        goto Exit;
    if ((n = rly_log_format(line, sizeof(line), level, event, as, outcome, ms, msg, with_version, now_ms())) < 0)
        goto Exit;
    if (batch.on) {
        if (batch.len + (size_t)n > sizeof(batch.buf))
            rly_log_flush();
        if ((size_t)n <= sizeof(batch.buf)) {
            memcpy(batch.buf + batch.len, line, (size_t)n);
            batch.len += (size_t)n;
            goto Exit;
        }
    }
    write_all(atomic_load_explicit(&out_fd, memory_order_relaxed), line, (size_t)n);

Exit:
    errno = saved_errno;
}

void rly_log_event(rly_log_level_t level, const char *event, const char *as, const char *outcome, long ms)
{
    /* a flow event always has an outcome: a missing one is written as "invalid" */
    emit(level, event, as, outcome != NULL ? outcome : "", ms, NULL, 0);
}

void rly_log_msg(rly_log_level_t level, const char *event, const char *msg, int with_version)
{
    emit(level, event, NULL, NULL, -1, msg, with_version);
}
