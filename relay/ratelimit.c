/* ratelimit.c: per-client-address token buckets in a set-associative table of keyed address hashes */
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include "ids.h"
#include "ratelimit.h"

#define NSETS 4096
#define WAYS 4
#define NLOCKS 64

typedef struct st_bucket_t {
    uint64_t key; /* 0: free */
    double tokens;
    int64_t last_ms;
} bucket_t;

struct st_relay_ratelimit_t {
    double capacity, per_ms;
    uint8_t salt[32];
    pthread_mutex_t locks[NLOCKS];
    bucket_t sets[NSETS][WAYS];
};

relay_ratelimit_t *relay_ratelimit_new(unsigned per_min)
{
    relay_ratelimit_t *rl = calloc(1, sizeof(*rl));
    if (rl == NULL)
        return NULL;
    if (rly_random(rl->salt, sizeof(rl->salt)) != 0) {
        free(rl);
        return NULL;
    }
    rl->capacity = per_min;
    rl->per_ms = per_min / 60000.0;
    for (size_t i = 0; i != NLOCKS; ++i)
        pthread_mutex_init(&rl->locks[i], NULL);
    return rl;
}

void relay_ratelimit_free(relay_ratelimit_t *rl)
{
    if (rl == NULL)
        return;
    for (size_t i = 0; i != NLOCKS; ++i)
        pthread_mutex_destroy(&rl->locks[i]);
    free(rl);
}

static uint64_t address_key(relay_ratelimit_t *rl, const struct sockaddr *sa, socklen_t salen)
{
    uint8_t buf[32 + 1 + 16], md[32];
    size_t n = 0;
    memcpy(buf, rl->salt, 32);
    n = 32;
    if (sa->sa_family == AF_INET && salen >= sizeof(struct sockaddr_in)) {
        buf[n++] = 4;
        memcpy(buf + n, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        n += 4;
    } else if (sa->sa_family == AF_INET6 && salen >= sizeof(struct sockaddr_in6)) {
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, v4mapped, 12) == 0) {
            buf[n++] = 4;
            memcpy(buf + n, a + 12, 4);
            n += 4;
        } else {
            buf[n++] = 6;
            memcpy(buf + n, a, 8); /* one /64 is one client */
            n += 8;
        }
    } else {
        buf[n++] = 0; /* unix sockets and the like share one bucket */
    }
    unsigned mdlen = 0;
    EVP_Digest(buf, n, md, &mdlen, EVP_sha256(), NULL);
    uint64_t key;
    memcpy(&key, md, sizeof(key));
    return key != 0 ? key : 1;
}

int relay_ratelimit_take(relay_ratelimit_t *rl, const struct sockaddr *sa, socklen_t salen, int64_t now_ms, int *retry_after)
{
    uint64_t key = address_key(rl, sa, salen);
    size_t set = (size_t)(key % NSETS);
    pthread_mutex_t *lock = &rl->locks[set % NLOCKS];
    int allowed;

    pthread_mutex_lock(lock);
    bucket_t *b = NULL, *victim = &rl->sets[set][0];
    for (size_t i = 0; i != WAYS; ++i) {
        bucket_t *c = &rl->sets[set][i];
        if (c->key == key) {
            b = c;
            break;
        }
        if (victim->key != 0 && (c->key == 0 || c->last_ms < victim->last_ms))
            victim = c;
    }
    if (b == NULL) {
        /* a new (or evicted: the least recently seen) address starts with a full bucket */
        b = victim;
        b->key = key;
        b->tokens = rl->capacity;
        b->last_ms = now_ms;
    }
    double tokens = b->tokens + (double)(now_ms - b->last_ms) * rl->per_ms;
    if (tokens > rl->capacity)
        tokens = rl->capacity;
    b->last_ms = now_ms;
    if (tokens >= 1) {
        b->tokens = tokens - 1;
        allowed = 1;
    } else {
        b->tokens = tokens;
        allowed = 0;
        *retry_after = (int)((1 - tokens) / rl->per_ms / 1000) + 1;
    }
    pthread_mutex_unlock(lock);
    return allowed;
}
