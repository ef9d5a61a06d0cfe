/* store.h: the rendezvous store seam: sessions with a TTL, one-shot results, wake-ups; back-ends memory and redis */
#ifndef RELAY_STORE_H
#define RELAY_STORE_H

#include <stdint.h>
#include <stddef.h>
#include <h2o.h>
#include "rly.h"

/*
 * What a session is in the store. Nothing here is a secret in plaintext: the poll token is a hash, meta (return_uri,
 * seal key) and result are ciphertexts the store never opens, the AS host is the anonymous identifier protocol.md allows.
 */
typedef struct st_store_record_t {
    uint8_t key[RLY_SESSION_ID_BYTES]; /* the store key: rly_store_key of the session id, never the id itself */
    uint8_t token_hash[32];
    char as_id[RLY_AS_ID_MAX + 1];
    const uint8_t *meta; /* encrypted under the data key; borrowed */
    size_t meta_len;
    const uint8_t *result; /* NULL while pending; borrowed */
    size_t result_len;
    int64_t completed_at;   /* unix ms of the completing write, 0 while pending */
    int64_t expires_in_ms;  /* remaining life */
    int read;               /* the result has been delivered once (life cut to RLY_AFTER_READ_TTL) */
    int sealed;             /* created with a seal key: the store takes only a sealed result */
    int bound;              /* a 1.1 flow: confirmed in one browser, completed only with that browser's cookie */
    uint8_t start_hash[32]; /* bound: the start token's hash (create sets it) */
    int confirmed;          /* bound: the start token was consumed; cookie_hash is the confirming browser's */
    uint8_t cookie_hash[32];
    const uint8_t *start_ref; /* create: what the start token's entry holds (bound only); get_start: what it held; borrowed */
    size_t start_ref_len;
} store_record_t;

typedef enum en_store_status_t {
    STORE_OK = 0,
    STORE_NOT_FOUND,     /* unknown or expired */
    STORE_CONFLICT,      /* complete: already completed; the first result stands */
    STORE_UNAVAILABLE,   /* the store is down or did not answer in time */
    STORE_SEAL_REQUIRED, /* complete: an unsealed result for a session created sealed; nothing written */
    STORE_FORBIDDEN,     /* complete: a bound session, unconfirmed or confirmed by another browser's cookie; nothing written */
    STORE_FULL,          /* create: the store holds its maximum number of live sessions; nothing written */
} store_status_t;

typedef struct st_store_t store_t;
typedef struct st_store_backend_t store_backend_t;

/* rec and everything it points to are borrowed for the duration of the callback only; rec is NULL unless STORE_OK (or
 * STORE_CONFLICT / STORE_SEAL_REQUIRED from complete) */
typedef void (*store_cb)(void *ctx, store_status_t status, const store_record_t *rec);
/* a session completed somewhere (this worker, another thread, another replica): runs on the worker's loop; key NULL
 * means "anything may have completed" (after the store reconnected): re-check every waiter */
typedef void (*store_notify_cb)(void *ctx, const uint8_t key[RLY_SESSION_ID_BYTES]);

struct st_store_backend_t {
    const char *name;
    /* a per-thread handle bound to loop; notifications for watched sessions arrive through on_notify on that loop */
    store_t *(*open)(store_backend_t *self, h2o_loop_t *loop, store_notify_cb on_notify, void *notify_ctx);
    /* 1 if the store answers now (readyz; must not block longer than 250 ms) */
    int (*ready)(store_backend_t *self);
    void (*destroy)(store_backend_t *self);
};

/*
 * Per-thread operations. Each callback runs exactly once, on the handle's loop; it may run before the call returns.
 * A session is named by its store key (key, rec->key: rly_store_key of the session id; the store never sees the id).
 * create:   stores rec (result ignored) with a TTL of ttl seconds; STORE_OK or STORE_UNAVAILABLE; STORE_FULL (nothing
 *           written) when max is not 0 and the store already holds max live sessions. Live sessions are those created
 *           and neither expired nor removed, counted across every handle of the store (memory: the process; Redis:
 *           every replica on that Redis); a start token's entry is not a session.
 * get:      the record; STORE_NOT_FOUND when unknown or expired.
 * create:   for a bound record, also an entry under the start token's hash holding rec->start_ref, with the same TTL.
 * get_start: the entry of a start token's hash: rec->start_ref only (the rest of rec is empty); STORE_NOT_FOUND.
 * confirm:  a bound session whose start_hash matches and that is neither confirmed nor completed becomes confirmed by
 *           cookie_hash (atomically: the first caller wins); rec is the record before the change. STORE_CONFLICT if it
 *           was confirmed or completed already, or the start hash differs; STORE_NOT_FOUND if gone.
 * complete: sets the result if the session is pending (first writer wins) and wakes watchers everywhere; rec is then
 *           the record with the result (so a callback needs no read before it: one round trip to Redis; its
 *           expires_in_ms may be 0, not read).
 *           STORE_CONFLICT if it already had one (rec then holds the stored record), STORE_NOT_FOUND if gone,
 *           STORE_SEAL_REQUIRED (with the record, nothing written) if the session was created sealed and sealed is 0;
 *           STORE_FORBIDDEN (with the record, nothing written) if the session is bound and not confirmed by cookie_hash
 *           (NULL: no cookie presented). An already completed session is STORE_CONFLICT before any of these.
 * mark_read: the record, like get; if it has a result, the first call cuts the remaining life to at most
 *           RLY_AFTER_READ_TTL (idempotent). A pending session is left as it is.
 * remove:   deletes; STORE_OK or STORE_NOT_FOUND.
 * watch / unwatch: start / stop notifications for a session on this handle; watch calls back once notifications are
 *           guaranteed (so a read after it cannot miss a completion); unwatch is immediate.
 */
struct st_store_t {
    void (*create)(store_t *self, const store_record_t *rec, unsigned ttl, unsigned max, store_cb cb, void *ctx);
    void (*get)(store_t *self, const uint8_t key[RLY_SESSION_ID_BYTES], store_cb cb, void *ctx);
    void (*complete)(store_t *self, const uint8_t key[RLY_SESSION_ID_BYTES], const uint8_t *result, size_t len,
                     int64_t completed_at, int sealed, const uint8_t *cookie_hash, store_cb cb, void *ctx);
    void (*mark_read)(store_t *self, const uint8_t key[RLY_SESSION_ID_BYTES], store_cb cb, void *ctx);
    void (*remove)(store_t *self, const uint8_t key[RLY_SESSION_ID_BYTES], store_cb cb, void *ctx);
    void (*watch)(store_t *self, const uint8_t key[RLY_SESSION_ID_BYTES], store_cb cb, void *ctx);
    void (*unwatch)(store_t *self, const uint8_t key[RLY_SESSION_ID_BYTES]);
    void (*close)(store_t *self);
    void (*get_start)(store_t *self, const uint8_t token_hash[32], store_cb cb, void *ctx);
    void (*confirm)(store_t *self, const uint8_t key[RLY_SESSION_ID_BYTES], const uint8_t start_hash[32],
                    const uint8_t cookie_hash[32], store_cb cb, void *ctx);
};

/* the embedded back-end: one process, shared by every worker thread */
store_backend_t *store_memory_new(void);
/* number of entries held, sessions and start tokens' entries, expired ones not yet reclaimed included (tests) */
size_t store_memory_count(store_backend_t *backend);

/* the Redis back-end (store_redis.c); every string is borrowed for the call only */
typedef struct st_store_redis_options_t {
    const char *url;             /* redis://[:password@]host:port[/db] or unix:///path; NULL with sentinels */
    const char *sentinels;       /* "host:port,host:port"; NULL without */
    const char *master;          /* the Sentinel master name */
    const char *password;        /* overrides the URL's; NULL: the URL's or none */
    unsigned command_timeout_ms; /* a command not answered by then fails the connection (hiredis 0.14 has no timeouts) */
    unsigned connect_timeout_ms;
    const char *username; /* an ACL user; overrides the URL's; NULL: the URL's or none */
} store_redis_options_t;
/* NULL with a message in err (never the password) */
store_backend_t *store_redis_new(const store_redis_options_t *opts, char *err, size_t errlen);

#endif
