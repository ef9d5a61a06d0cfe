/* waiters.h: a worker's table of waiting pickups, by the session's store key; the store's notifications land here */
#ifndef RELAY_WAITERS_H
#define RELAY_WAITERS_H

#include <h2o.h>
#include "rly.h"

typedef struct st_relay_waiter_t relay_waiter_t;
struct st_relay_waiter_t {
    uint8_t key[RLY_SESSION_ID_BYTES];  /* the session's store key (rly_store_key), as the store names it */
    void (*on_wake)(relay_waiter_t *w); /* the waiter is already out of the table when this runs */
    h2o_linklist_t _link;
};

typedef struct st_relay_waiters_t relay_waiters_t;

relay_waiters_t *relay_waiters_new(void);
void relay_waiters_free(relay_waiters_t *t); /* the table must be empty */
void relay_waiters_add(relay_waiters_t *t, relay_waiter_t *w);
/* no-op if w is not in the table */
void relay_waiters_remove(relay_waiters_t *t, relay_waiter_t *w);
/* 1 if some waiter of this session is in the table */
int relay_waiters_has(relay_waiters_t *t, const uint8_t key[RLY_SESSION_ID_BYTES]);
/* takes every waiter of the session out of the table and calls its on_wake */
void relay_waiters_wake(relay_waiters_t *t, const uint8_t key[RLY_SESSION_ID_BYTES]);
/* the same for every waiter (shutdown) */
void relay_waiters_wake_all(relay_waiters_t *t);
/* the store's notification callback (store_notify_cb) with the table as its context: a session completed (wake its
 * waiters), or key is NULL after the store reconnected (wake every waiter: each reads again) */
void relay_waiters_notify(void *waiters, const uint8_t key[RLY_SESSION_ID_BYTES]);
size_t relay_waiters_count(relay_waiters_t *t);

#endif
