/* waiters.c: a worker's table of waiting pickups: a hash table of intrusive lists keyed by store key */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include "waiters.h"

#define NBUCKETS 16384 /* fixed: 10,000 waiters per worker keep chains short */

struct st_relay_waiters_t {
    size_t count;
    h2o_linklist_t buckets[NBUCKETS];
};

static h2o_linklist_t *bucket(relay_waiters_t *t, const uint8_t key[RLY_SESSION_ID_BYTES])
{
    uint64_t h;
    memcpy(&h, key, sizeof(h)); /* random ids */
    return &t->buckets[h % NBUCKETS];
}

relay_waiters_t *relay_waiters_new(void)
{
    relay_waiters_t *t = malloc(sizeof(*t));
    if (t == NULL)
        return NULL;
    t->count = 0;
    for (size_t i = 0; i != NBUCKETS; ++i)
        h2o_linklist_init_anchor(&t->buckets[i]);
    return t;
}

void relay_waiters_free(relay_waiters_t *t)
{
    if (t == NULL)
        return;
    assert(t->count == 0);
    free(t);
}

void relay_waiters_add(relay_waiters_t *t, relay_waiter_t *w)
{
    assert(!h2o_linklist_is_linked(&w->_link));
    h2o_linklist_insert(bucket(t, w->key), &w->_link);
    ++t->count;
}

void relay_waiters_remove(relay_waiters_t *t, relay_waiter_t *w)
{
    if (!h2o_linklist_is_linked(&w->_link))
        return;
    h2o_linklist_unlink(&w->_link);
    --t->count;
}

int relay_waiters_has(relay_waiters_t *t, const uint8_t key[RLY_SESSION_ID_BYTES])
{
    h2o_linklist_t *anchor = bucket(t, key);
    for (h2o_linklist_t *l = anchor->next; l != anchor; l = l->next) {
        relay_waiter_t *w = H2O_STRUCT_FROM_MEMBER(relay_waiter_t, _link, l);
        if (memcmp(w->key, key, RLY_SESSION_ID_BYTES) == 0)
            return 1;
    }
    return 0;
}

/* moves the matching waiters (all when key is NULL) of one bucket to out */
static void take(relay_waiters_t *t, h2o_linklist_t *anchor, const uint8_t *key, h2o_linklist_t *out)
{
    h2o_linklist_t *l = anchor->next;
    while (l != anchor) {
        h2o_linklist_t *next = l->next;
        relay_waiter_t *w = H2O_STRUCT_FROM_MEMBER(relay_waiter_t, _link, l);
        if (key == NULL || memcmp(w->key, key, RLY_SESSION_ID_BYTES) == 0) {
            h2o_linklist_unlink(l);
            h2o_linklist_insert(out, l);
            --t->count;
        }
        l = next;
    }
}

/* calls on_wake for each waiter of a private list; each leaves the list first (on_wake may add it back to the table) */
static void run(h2o_linklist_t *woken)
{
    while (!h2o_linklist_is_empty(woken)) {
        relay_waiter_t *w = H2O_STRUCT_FROM_MEMBER(relay_waiter_t, _link, woken->next);
        h2o_linklist_unlink(&w->_link);
        w->on_wake(w);
    }
}

void relay_waiters_wake(relay_waiters_t *t, const uint8_t key[RLY_SESSION_ID_BYTES])
{
    h2o_linklist_t woken;
    if (t->count == 0) /* most completions are for another worker's or replica's waiter */
        return;
    h2o_linklist_init_anchor(&woken);
    take(t, bucket(t, key), key, &woken);
    run(&woken);
}

void relay_waiters_wake_all(relay_waiters_t *t)
{
    h2o_linklist_t woken;
    h2o_linklist_init_anchor(&woken);
    for (size_t i = 0; i != NBUCKETS; ++i)
        take(t, &t->buckets[i], NULL, &woken);
    run(&woken);
}

size_t relay_waiters_count(relay_waiters_t *t)
{
    return t->count;
}

void relay_waiters_notify(void *waiters, const uint8_t key[RLY_SESSION_ID_BYTES])
{
    if (key != NULL)
        relay_waiters_wake(waiters, key);
    else
        relay_waiters_wake_all(waiters);
}
