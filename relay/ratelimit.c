/* ratelimit.c: token buckets per client, per network and per replica; set-associative tables of keyed address hashes */
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "ids.h"
#include "ratelimit.h"

#define CLIENT_SETS 4096
#define GROUP_SETS 1024
#define WAYS 4
#define NLOCKS 64

typedef struct st_bucket_t {
    uint64_t key; /* 0: free */
    double tokens;
    int64_t last_ms;
} bucket_t;

/* a bucket's size and refill rate */
typedef struct st_level_t {
    double capacity, per_ms;
} level_t;

struct st_relay_ratelimit_t {
    level_t client, group, global;
    uint8_t key[16]; /* SipHash key */
    pthread_mutex_t client_locks[NLOCKS], group_locks[NLOCKS], global_lock;
    bucket_t global_bucket;
    bucket_t clients[CLIENT_SETS][WAYS];
    bucket_t groups[GROUP_SETS][WAYS];
};

static void set_level(level_t *l, double per_min)
{
    l->capacity = per_min;
    l->per_ms = per_min / 60000.0;
}

relay_ratelimit_t *relay_ratelimit_new(unsigned per_min)
{
    relay_ratelimit_t *rl;
    if (per_min == 0 || (rl = calloc(1, sizeof(*rl))) == NULL)
        return NULL;
    if (rly_random(rl->key, sizeof(rl->key)) != 0) {
        free(rl);
        return NULL;
    }
    set_level(&rl->client, per_min);
    set_level(&rl->group, (double)per_min * RELAY_RATELIMIT_GROUP_FACTOR);
    set_level(&rl->global, (double)per_min * RELAY_RATELIMIT_GLOBAL_FACTOR);
    rl->global_bucket.key = 1;
    rl->global_bucket.tokens = rl->global.capacity;
    for (size_t i = 0; i != NLOCKS; ++i) {
        pthread_mutex_init(&rl->client_locks[i], NULL);
        pthread_mutex_init(&rl->group_locks[i], NULL);
    }
    pthread_mutex_init(&rl->global_lock, NULL);
    return rl;
}

void relay_ratelimit_free(relay_ratelimit_t *rl)
{
    if (rl == NULL)
        return;
    for (size_t i = 0; i != NLOCKS; ++i) {
        pthread_mutex_destroy(&rl->client_locks[i]);
        pthread_mutex_destroy(&rl->group_locks[i]);
    }
    pthread_mutex_destroy(&rl->global_lock);
    free(rl);
}

/* SipHash-2-4 (Aumasson and Bernstein): a keyed 64-bit PRF, fast on short inputs */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                                                   \
    do {                                                                                                                           \
        v0 += v1;                                                                                                                  \
        v1 = ROTL(v1, 13);                                                                                                         \
        v1 ^= v0;                                                                                                                  \
        v0 = ROTL(v0, 32);                                                                                                         \
        v2 += v3;                                                                                                                  \
        v3 = ROTL(v3, 16);                                                                                                         \
        v3 ^= v2;                                                                                                                  \
        v0 += v3;                                                                                                                  \
        v3 = ROTL(v3, 21);                                                                                                         \
        v3 ^= v0;                                                                                                                  \
        v2 += v1;                                                                                                                  \
        v1 = ROTL(v1, 17);                                                                                                         \
        v1 ^= v2;                                                                                                                  \
        v2 = ROTL(v2, 32);                                                                                                         \
    } while (0)

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i)
        v = v << 8 | p[i];
    return v;
}

static uint64_t siphash24(const uint8_t k[16], const uint8_t *in, size_t len)
{
    uint64_t k0 = le64(k), k1 = le64(k + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1, v2 = 0x6c7967656e657261ULL ^ k0,
             v3 = 0x7465646279746573ULL ^ k1;
    size_t end = len - len % 8;

    for (size_t i = 0; i != end; i += 8) {
        uint64_t m = le64(in + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i != len % 8; ++i)
        b |= (uint64_t)in[end + i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static uint64_t keyed(relay_ratelimit_t *rl, const uint8_t *in, size_t len)
{
    uint64_t h = siphash24(rl->key, in, len);
    return h != 0 ? h : 1;
}

/* the client's key (/32, /64, or "another kind") and its network's (/24, /48, or the same "another kind") */
static void address_keys(relay_ratelimit_t *rl, const struct sockaddr *sa, socklen_t salen, uint64_t *client, uint64_t *group)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    uint8_t buf[1 + 8];
    const uint8_t *v4 = NULL;

    if (sa->sa_family == AF_INET && salen >= sizeof(struct sockaddr_in)) {
        v4 = (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6 && salen >= sizeof(struct sockaddr_in6)) {
        const uint8_t *a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
        if (memcmp(a, v4mapped, 12) == 0) {
            v4 = a + 12;
        } else {
            buf[0] = 6; /* one /64 is one client */
            memcpy(buf + 1, a, 8);
            *client = keyed(rl, buf, 9);
            buf[0] = 48; /* its /48 is its network */
            *group = keyed(rl, buf, 7);
            return;
        }
    } else {
        buf[0] = 0; /* unix sockets and the like share one bucket, and one network */
        *client = keyed(rl, buf, 1);
        buf[0] = 1;
        *group = keyed(rl, buf, 1);
        return;
    }
    buf[0] = 4;
    memcpy(buf + 1, v4, 4);
    *client = keyed(rl, buf, 5);
    buf[0] = 24; /* its /24 is its network */
    *group = keyed(rl, buf, 4);
}

/* the bucket's tokens at now, at most its capacity; a time before its last one counts as no time */
static double level_at(const bucket_t *b, const level_t *l, int64_t now_ms)
{
    double t = b->tokens;
    if (now_ms > b->last_ms)
        t += (double)(now_ms - b->last_ms) * l->per_ms;
    return t < l->capacity ? t : l->capacity;
}

/*
 * The bucket of key in a set, made if needed: a free slot starts full; in a full set the newcomer takes the slot of the
 * bucket that has refilled the most (the oldest of equals) and starts at that bucket's level.
 */
static bucket_t *find(bucket_t *set, uint64_t key, const level_t *l, int64_t now_ms)
{
    bucket_t *victim = NULL;
    double best = -1;

    for (size_t i = 0; i != WAYS; ++i) {
        bucket_t *b = &set[i];
        if (b->key == key)
            return b;
        double t = b->key == 0 ? l->capacity : level_at(b, l, now_ms);
        if (victim == NULL || t > best || (t == best && b->last_ms < victim->last_ms)) {
            best = t;
            victim = b;
        }
    }
    victim->key = key;
    victim->tokens = best;
    victim->last_ms = now_ms;
    return victim;
}

/* refills b to now; its level */
static double refill(bucket_t *b, const level_t *l, int64_t now_ms)
{
    b->tokens = level_at(b, l, now_ms);
    if (now_ms > b->last_ms)
        b->last_ms = now_ms;
    return b->tokens;
}

/* the milliseconds until b has one token */
static double wait_ms(double tokens, const level_t *l)
{
    return tokens >= 1 ? 0 : (1 - tokens) / l->per_ms;
}

int relay_ratelimit_take(relay_ratelimit_t *rl, const struct sockaddr *sa, socklen_t salen, int64_t now_ms, int *retry_after)
{
    uint64_t ckey, gkey;
    address_keys(rl, sa, salen, &ckey, &gkey);
    size_t cset = (size_t)(ckey % CLIENT_SETS), gset = (size_t)(gkey % GROUP_SETS);
    pthread_mutex_t *clk = &rl->client_locks[cset % NLOCKS], *glk = &rl->group_locks[gset % NLOCKS];
    int allowed;

    /* always in this order: a client lock, a network lock, the replica's */
    pthread_mutex_lock(clk);
    pthread_mutex_lock(glk);
    pthread_mutex_lock(&rl->global_lock);
    bucket_t *c = find(rl->clients[cset], ckey, &rl->client, now_ms), *g = find(rl->groups[gset], gkey, &rl->group, now_ms);
    double ct = refill(c, &rl->client, now_ms), gt = refill(g, &rl->group, now_ms),
           rt = refill(&rl->global_bucket, &rl->global, now_ms);
    if (ct >= 1 && gt >= 1 && rt >= 1) {
        c->tokens = ct - 1;
        g->tokens = gt - 1;
        rl->global_bucket.tokens = rt - 1;
        allowed = 1;
    } else {
        /* a denial takes nothing: the wait does not grow with every denied attempt */
        double w = wait_ms(ct, &rl->client), wg = wait_ms(gt, &rl->group), wr = wait_ms(rt, &rl->global);
        if (wg > w)
            w = wg;
        if (wr > w)
            w = wr;
        *retry_after = (int)(w / 1000) + 1;
        allowed = 0;
    }
    pthread_mutex_unlock(&rl->global_lock);
    pthread_mutex_unlock(glk);
    pthread_mutex_unlock(clk);
    return allowed;
}
