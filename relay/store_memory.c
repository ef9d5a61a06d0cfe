/* store_memory.c: the embedded rendezvous store: a locked hash table with TTLs, wake-ups across worker threads */
#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "store.h"

#define INITIAL_BUCKETS 1024
#define EXPIRE_BATCH 64 /* expired entries a create reclaims at most, unless the store is full without them */

/*
 * Entries sit in a hash table by key and in a binary min-heap by expiry. Every create first reclaims expired entries
 * from the heap's top (at most EXPIRE_BATCH, or all of them when the store would be full otherwise): the cost is a
 * heap operation per entry over its life, never a walk over the table, so the count of live sessions is exact and
 * cheap even while a flood meets the limit.
 */

typedef struct st_entry_t {
    struct st_entry_t *next;
    uint8_t key[RLY_SESSION_ID_BYTES];
    uint8_t token_hash[32];
    char as_id[RLY_AS_ID_MAX + 1];
    uint8_t *meta;
    size_t meta_len;
    uint8_t *result;
    size_t result_len;
    int64_t completed_at;
    int64_t expires_at; /* monotonic ms */
    size_t heap_i;      /* its place in the backend's expiry heap */
    int read;
    int sealed;
    int is_start; /* a start token's entry: key holds the token hash's first bytes, meta the reference */
    int bound;
    int confirmed;
    uint8_t start_hash[32];
    uint8_t cookie_hash[32];
} entry_t;

typedef struct st_memory_handle_t memory_handle_t;

typedef struct st_memory_backend_t {
    store_backend_t super;
    pthread_mutex_t mutex;
    entry_t **buckets;
    size_t nbuckets;
    size_t count;    /* entries in the table */
    size_t sessions; /* of which sessions (not a start token's entry): live ones, and expired ones not yet reclaimed */
    entry_t **heap;  /* every entry, by expires_at: heap[0] expires first */
    size_t heap_len, heap_cap;
    memory_handle_t *handles; /* every open handle, for wake-ups */
} memory_backend_t;

struct st_memory_handle_t {
    store_t super;
    memory_backend_t *backend;
    memory_handle_t *next; /* in backend->handles, under the mutex */
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t receiver;
    store_notify_cb on_notify;
    void *notify_ctx;
};

typedef struct st_notify_message_t {
    h2o_multithread_message_t super;
    uint8_t key[RLY_SESSION_ID_BYTES];
} notify_message_t;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t bucket_of(const memory_backend_t *b, const uint8_t key[RLY_SESSION_ID_BYTES])
{
    uint64_t h;
    memcpy(&h, key, sizeof(h)); /* store keys are hashes: any 8 bytes hash well */
    return (size_t)(h & (b->nbuckets - 1));
}

static void entry_free(entry_t *e)
{
    free(e->meta);
    free(e->result);
    free(e);
}

/* ---- the expiry heap; with the mutex held ---- */

static void heap_set(memory_backend_t *b, size_t i, entry_t *e)
{
    b->heap[i] = e;
    e->heap_i = i;
}

static void heap_up(memory_backend_t *b, size_t i)
{
    entry_t *e = b->heap[i];
    while (i != 0) {
        size_t parent = (i - 1) / 2;
        if (b->heap[parent]->expires_at <= e->expires_at)
            break;
        heap_set(b, i, b->heap[parent]);
        i = parent;
    }
    heap_set(b, i, e);
}

static void heap_down(memory_backend_t *b, size_t i)
{
    entry_t *e = b->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= b->heap_len)
            break;
        if (child + 1 < b->heap_len && b->heap[child + 1]->expires_at < b->heap[child]->expires_at)
            ++child;
        if (b->heap[child]->expires_at >= e->expires_at)
            break;
        heap_set(b, i, b->heap[child]);
        i = child;
    }
    heap_set(b, i, e);
}

/* room for n more entries; 0 / -1 (out of memory) */
static int heap_reserve(memory_backend_t *b, size_t n)
{
    if (b->heap_len + n <= b->heap_cap)
        return 0;
    size_t cap = b->heap_cap * 2 > b->heap_len + n ? b->heap_cap * 2 : b->heap_len + n;
    entry_t **heap = realloc(b->heap, cap * sizeof(*heap));
    if (heap == NULL)
        return -1;
    b->heap = heap;
    b->heap_cap = cap;
    return 0;
}

/* after heap_reserve */
static void heap_push(memory_backend_t *b, entry_t *e)
{
    heap_set(b, b->heap_len++, e);
    heap_up(b, e->heap_i);
}

static void heap_remove(memory_backend_t *b, entry_t *e)
{
    entry_t *last = b->heap[--b->heap_len];
    if (last == e)
        return;
    heap_set(b, e->heap_i, last);
    heap_up(b, last->heap_i);
    heap_down(b, last->heap_i);
}

/* unlinks the entry at slot (in its bucket) from the table and the heap, and frees it */
static void drop(memory_backend_t *b, entry_t **slot)
{
    entry_t *e = *slot;
    *slot = e->next;
    heap_remove(b, e);
    --b->count;
    if (!e->is_start)
        --b->sessions;
    entry_free(e);
}

/* reclaims expired entries, the first to expire first: at most limit of them (0: all) */
static void expire(memory_backend_t *b, int64_t now, size_t limit)
{
    for (size_t n = 0; b->heap_len != 0 && b->heap[0]->expires_at <= now && (limit == 0 || n != limit); ++n) {
        entry_t *e = b->heap[0], **slot = &b->buckets[bucket_of(b, e->key)];
        while (*slot != e)
            slot = &(*slot)->next;
        drop(b, slot);
    }
}

static void grow(memory_backend_t *b)
{
    size_t n = b->nbuckets * 2;
    entry_t **buckets = calloc(n, sizeof(*buckets));
    if (buckets == NULL)
        return; /* keep the longer chains; correctness does not depend on the size */
    entry_t **old = b->buckets;
    size_t oldn = b->nbuckets;
    b->buckets = buckets;
    b->nbuckets = n;
    for (size_t i = 0; i != oldn; ++i) {
        entry_t *e = old[i];
        while (e != NULL) {
            entry_t *next = e->next;
            size_t j = bucket_of(b, e->key);
            e->next = b->buckets[j];
            b->buckets[j] = e;
            e = next;
        }
    }
    free(old);
}

/* the live entry of a session, or NULL; unlinks it when expired; with the mutex held */
static entry_t **find(memory_backend_t *b, const uint8_t key[RLY_SESSION_ID_BYTES], int64_t now)
{
    entry_t **slot = &b->buckets[bucket_of(b, key)];
    for (; *slot != NULL; slot = &(*slot)->next) {
        entry_t *e = *slot;
        if (memcmp(e->key, key, RLY_SESSION_ID_BYTES) != 0)
            continue;
        if (e->expires_at <= now) {
            drop(b, slot);
            return NULL;
        }
        return slot;
    }
    return NULL;
}

/* the live session (not a start token's entry) of a store key, or NULL; with the mutex held */
static entry_t **find_session(memory_backend_t *b, const uint8_t key[RLY_SESSION_ID_BYTES], int64_t now)
{
    entry_t **slot = find(b, key, now);
    return slot != NULL && !(*slot)->is_start ? slot : NULL;
}

/* a copy of an entry that outlives the mutex, for the callback */
typedef struct st_snapshot_t {
    store_record_t rec;
    uint8_t *buf;
} snapshot_t;

static int snapshot(snapshot_t *s, const entry_t *e, int64_t now)
{
    memset(s, 0, sizeof(*s));
    s->buf = malloc(e->meta_len + e->result_len + 1);
    if (s->buf == NULL)
        return -1;
    memcpy(s->rec.key, e->key, sizeof(e->key));
    memcpy(s->rec.token_hash, e->token_hash, sizeof(e->token_hash));
    memcpy(s->rec.as_id, e->as_id, sizeof(e->as_id));
    if (e->meta_len != 0)
        memcpy(s->buf, e->meta, e->meta_len);
    s->rec.meta = s->buf;
    s->rec.meta_len = e->meta_len;
    if (e->result != NULL) {
        memcpy(s->buf + e->meta_len, e->result, e->result_len);
        s->rec.result = s->buf + e->meta_len;
        s->rec.result_len = e->result_len;
    }
    s->rec.completed_at = e->completed_at;
    s->rec.expires_in_ms = e->expires_at - now;
    s->rec.read = e->read;
    s->rec.sealed = e->sealed;
    s->rec.bound = e->bound;
    s->rec.confirmed = e->confirmed;
    memcpy(s->rec.start_hash, e->start_hash, sizeof(e->start_hash));
    memcpy(s->rec.cookie_hash, e->cookie_hash, sizeof(e->cookie_hash));
    if (e->is_start) {
        /* a start token's entry carries only the reference */
        s->rec.start_ref = s->rec.meta;
        s->rec.start_ref_len = s->rec.meta_len;
        s->rec.meta = NULL;
        s->rec.meta_len = 0;
    }
    return 0;
}

static void notify_all(memory_backend_t *b, const uint8_t key[RLY_SESSION_ID_BYTES])
{
    /* with the mutex held: the handle list cannot change under us */
    for (memory_handle_t *h = b->handles; h != NULL; h = h->next) {
        notify_message_t *m = malloc(sizeof(*m));
        if (m == NULL)
            continue; /* the waiter still gets its answer when its wait times out */
        memset(m, 0, sizeof(*m));
        memcpy(m->key, key, RLY_SESSION_ID_BYTES);
        h2o_multithread_send_message(&h->receiver, &m->super);
    }
}

static void on_messages(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    memory_handle_t *h = H2O_STRUCT_FROM_MEMBER(memory_handle_t, receiver, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        notify_message_t *m = H2O_STRUCT_FROM_MEMBER(notify_message_t, super.link, messages->next);
        h2o_linklist_unlink(&m->super.link);
        h->on_notify(h->notify_ctx, m->key);
        free(m);
    }
}

/* runs cb with a snapshot of the entry at slot (or with status and no record) after releasing the mutex */
static void finish(memory_backend_t *b, entry_t *e, int64_t now, store_status_t status, store_cb cb, void *ctx)
{
    snapshot_t s;
    int have = e != NULL && snapshot(&s, e, now) == 0;
    pthread_mutex_unlock(&b->mutex);
    if (e != NULL && !have) {
        cb(ctx, STORE_UNAVAILABLE, NULL); /* out of memory: the caller answers 503 */
        return;
    }
    cb(ctx, status, have ? &s.rec : NULL);
    if (have)
        free(s.buf);
}

/* a new entry named by name (16 bytes) holding a copy of data; NULL when out of memory */
static entry_t *entry_new(const uint8_t *name, const uint8_t *data, size_t len)
{
    entry_t *e = calloc(1, sizeof(*e));
    if (e == NULL || (len != 0 && (e->meta = malloc(len)) == NULL)) {
        free(e);
        return NULL;
    }
    memcpy(e->key, name, sizeof(e->key));
    if (len != 0)
        memcpy(e->meta, data, len);
    e->meta_len = len;
    return e;
}

/* links e into the table and the heap (room reserved); with the mutex held */
static void insert(memory_backend_t *b, entry_t *e)
{
    if (b->count >= b->nbuckets)
        grow(b);
    size_t i = bucket_of(b, e->key);
    e->next = b->buckets[i];
    b->buckets[i] = e;
    ++b->count;
    if (!e->is_start)
        ++b->sessions;
    heap_push(b, e);
}

static void op_create(store_t *self, const store_record_t *rec, unsigned ttl, unsigned max, store_cb cb, void *ctx)
{
    memory_backend_t *b = ((memory_handle_t *)self)->backend;
    entry_t *e = entry_new(rec->key, rec->meta, rec->meta_len), *start = NULL;
    if (e == NULL || (rec->bound && (start = entry_new(rec->start_hash, rec->start_ref, rec->start_ref_len)) == NULL)) {
        if (e != NULL)
            entry_free(e);
        cb(ctx, STORE_UNAVAILABLE, NULL);
        return;
    }
    memcpy(e->token_hash, rec->token_hash, sizeof(e->token_hash));
    memcpy(e->as_id, rec->as_id, sizeof(e->as_id));
    e->sealed = rec->sealed != 0;
    e->bound = rec->bound != 0;
    memcpy(e->start_hash, rec->start_hash, sizeof(e->start_hash));

    int64_t now = now_ms();
    e->expires_at = now + (int64_t)ttl * 1000;
    if (start != NULL) {
        start->is_start = 1;
        start->expires_at = e->expires_at;
    }
    pthread_mutex_lock(&b->mutex);
    expire(b, now, EXPIRE_BATCH);
    if (max != 0 && b->sessions >= max)
        expire(b, now, 0); /* full unless expired ones are left: reclaim them all to know */
    store_status_t status = STORE_OK;
    if (max != 0 && b->sessions >= max)
        status = STORE_FULL;
    else if (heap_reserve(b, 2) != 0)
        status = STORE_UNAVAILABLE; /* out of memory */
    if (status != STORE_OK) {
        pthread_mutex_unlock(&b->mutex);
        entry_free(e);
        if (start != NULL)
            entry_free(start);
        cb(ctx, status, NULL);
        return;
    }
    insert(b, e);
    if (start != NULL)
        insert(b, start);
    finish(b, e, now, STORE_OK, cb, ctx);
}

static void op_get_start(store_t *self, const uint8_t token_hash[32], store_cb cb, void *ctx)
{
    memory_backend_t *b = ((memory_handle_t *)self)->backend;
    int64_t now = now_ms();
    pthread_mutex_lock(&b->mutex);
    entry_t **slot = find(b, token_hash, now);
    entry_t *e = slot != NULL && (*slot)->is_start ? *slot : NULL;
    finish(b, e, now, e != NULL ? STORE_OK : STORE_NOT_FOUND, cb, ctx);
}

static void op_confirm(store_t *self, const uint8_t key[RLY_SESSION_ID_BYTES], const uint8_t start_hash[32],
                       const uint8_t cookie_hash[32], store_cb cb, void *ctx)
{
    memory_backend_t *b = ((memory_handle_t *)self)->backend;
    int64_t now = now_ms();
    pthread_mutex_lock(&b->mutex);
    entry_t **slot = find_session(b, key, now);
    entry_t *e = slot != NULL ? *slot : NULL;
    if (e == NULL) {
        finish(b, NULL, now, STORE_NOT_FOUND, cb, ctx);
        return;
    }
    if (!e->bound || e->confirmed || e->result != NULL || memcmp(e->start_hash, start_hash, 32) != 0) {
        finish(b, e, now, STORE_CONFLICT, cb, ctx);
        return;
    }
    snapshot_t before;
    if (snapshot(&before, e, now) != 0) {
        pthread_mutex_unlock(&b->mutex);
        cb(ctx, STORE_UNAVAILABLE, NULL);
        return;
    }
    e->confirmed = 1;
    memcpy(e->cookie_hash, cookie_hash, 32);
    pthread_mutex_unlock(&b->mutex);
    cb(ctx, STORE_OK, &before.rec);
    free(before.buf);
}

static void op_get(store_t *self, const uint8_t key[RLY_SESSION_ID_BYTES], store_cb cb, void *ctx)
{
    memory_backend_t *b = ((memory_handle_t *)self)->backend;
    int64_t now = now_ms();
    pthread_mutex_lock(&b->mutex);
    entry_t **slot = find_session(b, key, now);
    finish(b, slot != NULL ? *slot : NULL, now, slot != NULL ? STORE_OK : STORE_NOT_FOUND, cb, ctx);
}

static void op_complete(store_t *self, const uint8_t key[RLY_SESSION_ID_BYTES], const uint8_t *result, size_t len,
                        int64_t completed_at, int sealed, const uint8_t *cookie_hash, store_cb cb, void *ctx)
{
    memory_backend_t *b = ((memory_handle_t *)self)->backend;
    uint8_t *copy = malloc(len != 0 ? len : 1);
    if (copy == NULL) {
        cb(ctx, STORE_UNAVAILABLE, NULL);
        return;
    }
    memcpy(copy, result, len);
    int64_t now = now_ms();
    pthread_mutex_lock(&b->mutex);
    entry_t **slot = find_session(b, key, now);
    if (slot == NULL) {
        free(copy);
        finish(b, NULL, now, STORE_NOT_FOUND, cb, ctx);
        return;
    }
    entry_t *e = *slot;
    if (e->result != NULL) {
        free(copy);
        finish(b, e, now, STORE_CONFLICT, cb, ctx);
        return;
    }
    if (e->bound && (!e->confirmed || cookie_hash == NULL || memcmp(e->cookie_hash, cookie_hash, 32) != 0)) {
        free(copy);
        finish(b, e, now, STORE_FORBIDDEN, cb, ctx);
        return;
    }
    if (e->sealed && !sealed) {
        free(copy);
        finish(b, e, now, STORE_SEAL_REQUIRED, cb, ctx);
        return;
    }
    e->result = copy;
    e->result_len = len;
    e->completed_at = completed_at;
    notify_all(b, key);
    finish(b, e, now, STORE_OK, cb, ctx);
}

static void op_mark_read(store_t *self, const uint8_t key[RLY_SESSION_ID_BYTES], store_cb cb, void *ctx)
{
    memory_backend_t *b = ((memory_handle_t *)self)->backend;
    int64_t now = now_ms();
    pthread_mutex_lock(&b->mutex);
    entry_t **slot = find_session(b, key, now);
    if (slot == NULL) {
        finish(b, NULL, now, STORE_NOT_FOUND, cb, ctx);
        return;
    }
    entry_t *e = *slot;
    if (e->result != NULL && !e->read) {
        e->read = 1;
        if (e->expires_at > now + RLY_AFTER_READ_TTL * 1000) {
            e->expires_at = now + RLY_AFTER_READ_TTL * 1000;
            heap_up(b, e->heap_i); /* sooner */
        }
    }
    finish(b, e, now, STORE_OK, cb, ctx);
}

static void op_remove(store_t *self, const uint8_t key[RLY_SESSION_ID_BYTES], store_cb cb, void *ctx)
{
    memory_backend_t *b = ((memory_handle_t *)self)->backend;
    int64_t now = now_ms();
    pthread_mutex_lock(&b->mutex);
    entry_t **slot = find_session(b, key, now);
    if (slot == NULL) {
        finish(b, NULL, now, STORE_NOT_FOUND, cb, ctx);
        return;
    }
    drop(b, slot);
    finish(b, NULL, now, STORE_OK, cb, ctx);
}

static void op_watch(store_t *self, const uint8_t key[RLY_SESSION_ID_BYTES], store_cb cb, void *ctx)
{
    (void)self;
    (void)key;
    /* every completion is broadcast to every handle: watching is implicit */
    cb(ctx, STORE_OK, NULL);
}

static void op_unwatch(store_t *self, const uint8_t key[RLY_SESSION_ID_BYTES])
{
    (void)self;
    (void)key;
}

static void op_close(store_t *self)
{
    memory_handle_t *h = (memory_handle_t *)self;
    memory_backend_t *b = h->backend;
    pthread_mutex_lock(&b->mutex);
    for (memory_handle_t **p = &b->handles; *p != NULL; p = &(*p)->next) {
        if (*p == h) {
            *p = h->next;
            break;
        }
    }
    pthread_mutex_unlock(&b->mutex);
    /* drop messages that arrived after the last loop iteration */
    while (!h2o_linklist_is_empty(&h->receiver._messages)) {
        notify_message_t *m = H2O_STRUCT_FROM_MEMBER(notify_message_t, super.link, h->receiver._messages.next);
        h2o_linklist_unlink(&m->super.link);
        free(m);
    }
    h2o_multithread_unregister_receiver(h->queue, &h->receiver);
    h2o_multithread_destroy_queue(h->queue);
    free(h);
}

static store_t *backend_open(store_backend_t *self, h2o_loop_t *loop, store_notify_cb on_notify, void *notify_ctx)
{
    memory_backend_t *b = (memory_backend_t *)self;
    memory_handle_t *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->super = (store_t){op_create, op_get,     op_complete, op_mark_read, op_remove,
                         op_watch,  op_unwatch, op_close,    op_get_start, op_confirm};
    h->backend = b;
    h->on_notify = on_notify;
    h->notify_ctx = notify_ctx;
    h->queue = h2o_multithread_create_queue(loop);
    h2o_multithread_register_receiver(h->queue, &h->receiver, on_messages);
    pthread_mutex_lock(&b->mutex);
    h->next = b->handles;
    b->handles = h;
    pthread_mutex_unlock(&b->mutex);
    return &h->super;
}

static int backend_ready(store_backend_t *self)
{
    (void)self;
    return 1;
}

static void backend_destroy(store_backend_t *self)
{
    memory_backend_t *b = (memory_backend_t *)self;
    assert(b->handles == NULL);
    for (size_t i = 0; i != b->nbuckets; ++i) {
        entry_t *e = b->buckets[i];
        while (e != NULL) {
            entry_t *next = e->next;
            entry_free(e);
            e = next;
        }
    }
    free(b->buckets);
    free(b->heap);
    pthread_mutex_destroy(&b->mutex);
    free(b);
}

store_backend_t *store_memory_new(void)
{
    memory_backend_t *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->super = (store_backend_t){"memory", backend_open, backend_ready, backend_destroy};
    if ((b->buckets = calloc(INITIAL_BUCKETS, sizeof(*b->buckets))) == NULL) {
        free(b);
        return NULL;
    }
    b->nbuckets = INITIAL_BUCKETS;
    pthread_mutex_init(&b->mutex, NULL);
    return &b->super;
}

size_t store_memory_count(store_backend_t *backend)
{
    memory_backend_t *b = (memory_backend_t *)backend;
    pthread_mutex_lock(&b->mutex);
    size_t n = b->count;
    pthread_mutex_unlock(&b->mutex);
    return n;
}
