/* test_ratelimit.c: unit tests of relay/ratelimit.c: capacity, refill, per-client buckets (IPv4, IPv6 /64), the network
 * buckets (/24, /48), the replica's budget, eviction under floods, threads, and the time a take costs */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include "ratelimit.h"

#define T0 ((int64_t)1000000000) /* any start: the limiter only compares the times it is given */

typedef struct st_addr_t {
    struct sockaddr_storage ss;
    socklen_t len;
} addr_t;

static addr_t v4(const char *text)
{
    addr_t a;
    memset(&a, 0, sizeof(a));
    struct sockaddr_in *sin = (struct sockaddr_in *)&a.ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(40000);
    assert_int_equal(inet_pton(AF_INET, text, &sin->sin_addr), 1);
    a.len = sizeof(*sin);
    return a;
}

static addr_t v6(const char *text)
{
    addr_t a;
    memset(&a, 0, sizeof(a));
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a.ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(40000);
    assert_int_equal(inet_pton(AF_INET6, text, &sin6->sin6_addr), 1);
    a.len = sizeof(*sin6);
    return a;
}

static int take(relay_ratelimit_t *rl, const addr_t *a, int64_t now, int *retry_after)
{
    int ra = -1;
    int ok = relay_ratelimit_take(rl, (const struct sockaddr *)&a->ss, a->len, now, &ra);
    if (retry_after != NULL)
        *retry_after = ra;
    return ok;
}

/* takes until denied (at most limit + 1 times); returns the number allowed */
static int drain(relay_ratelimit_t *rl, const addr_t *a, int64_t now, int limit)
{
    int n = 0;
    while (n <= limit && take(rl, a, now, NULL))
        ++n;
    return n;
}

static void test_capacity(void **state)
{
    (void)state;
    relay_ratelimit_t *rl = relay_ratelimit_new(5);
    assert_non_null(rl);
    addr_t a = v4("192.0.2.1");
    for (int i = 0; i != 5; ++i)
        assert_true(take(rl, &a, T0 + i, NULL));
    int ra = -1;
    assert_false(take(rl, &a, T0 + 5, &ra));
    assert_in_range(ra, 1, 60);
    /* denials do not dig a hole: the retry time does not grow with every denied attempt */
    int ra2 = -1;
    assert_false(take(rl, &a, T0 + 6, &ra2));
    assert_in_range(ra2, 1, ra);
    /* Retry-After is honest: a token is back by then */
    assert_true(take(rl, &a, T0 + 6 + (int64_t)ra2 * 1000, NULL));
    relay_ratelimit_free(rl);
}

static void test_refill(void **state)
{
    (void)state;
    relay_ratelimit_t *rl = relay_ratelimit_new(5); /* one token per 12 s */
    assert_non_null(rl);
    addr_t a = v4("192.0.2.2");
    assert_int_equal(drain(rl, &a, T0, 10), 5);
    assert_false(take(rl, &a, T0 + 11000, NULL)); /* 0.92 of a token */
    assert_true(take(rl, &a, T0 + 12500, NULL));  /* one is back */
    assert_false(take(rl, &a, T0 + 12600, NULL));
    /* a long idle time refills up to the capacity, not beyond */
    assert_int_equal(drain(rl, &a, T0 + 3600 * 1000, 10), 5);
    /* a full minute gives the whole capacity back */
    assert_int_equal(drain(rl, &a, T0 + 3600 * 1000 + 60000, 10), 5);
    relay_ratelimit_free(rl);
}

/* a clock that goes backwards (another worker's loop time) does not mint tokens or break the bucket */
static void test_time_backwards(void **state)
{
    (void)state;
    relay_ratelimit_t *rl = relay_ratelimit_new(5);
    assert_non_null(rl);
    addr_t a = v4("192.0.2.3");
    assert_int_equal(drain(rl, &a, T0, 10), 5);
    assert_false(take(rl, &a, T0 - 100, NULL));
    assert_false(take(rl, &a, T0 + 100, NULL));
    relay_ratelimit_free(rl);
}

static void test_addresses_independent(void **state)
{
    (void)state;
    relay_ratelimit_t *rl = relay_ratelimit_new(3);
    assert_non_null(rl);
    addr_t a = v4("192.0.2.10"), b = v4("192.0.2.11"), c = v4("198.51.100.10");
    assert_int_equal(drain(rl, &a, T0, 10), 3);
    assert_int_equal(drain(rl, &b, T0, 10), 3);
    assert_int_equal(drain(rl, &c, T0, 10), 3);
    assert_false(take(rl, &a, T0, NULL));
    /* the port is not part of the client */
    addr_t a2 = v4("192.0.2.10");
    ((struct sockaddr_in *)&a2.ss)->sin_port = htons(1234);
    assert_false(take(rl, &a2, T0, NULL));
    relay_ratelimit_free(rl);
}

/* one IPv6 /64 is one client; different /64s are different clients */
static void test_ipv6_prefix(void **state)
{
    (void)state;
    relay_ratelimit_t *rl = relay_ratelimit_new(4);
    assert_non_null(rl);
    addr_t a1 = v6("2001:db8:1:2::1"), a2 = v6("2001:db8:1:2:ffff:ffff:ffff:ffff"), a3 = v6("2001:db8:1:2:dead:beef::7");
    addr_t other = v6("2001:db8:1:3::1"), far = v6("2001:db8:ffff:2::1");
    assert_true(take(rl, &a1, T0, NULL));
    assert_true(take(rl, &a2, T0, NULL));
    assert_true(take(rl, &a3, T0, NULL));
    assert_true(take(rl, &a1, T0, NULL));
    assert_false(take(rl, &a2, T0, NULL)); /* the /64 spent its 4 */
    assert_false(take(rl, &a3, T0, NULL));
    assert_int_equal(drain(rl, &other, T0, 10), 4);
    assert_int_equal(drain(rl, &far, T0, 10), 4);
    relay_ratelimit_free(rl);
}

/* a v4-mapped IPv6 address (dual-stack listener) is the IPv4 client */
static void test_v4_mapped(void **state)
{
    (void)state;
    relay_ratelimit_t *rl = relay_ratelimit_new(4);
    assert_non_null(rl);
    addr_t plain = v4("203.0.113.7"), mapped = v6("::ffff:203.0.113.7"), neighbour = v6("::ffff:203.0.113.8");
    assert_true(take(rl, &plain, T0, NULL));
    assert_true(take(rl, &mapped, T0, NULL));
    assert_true(take(rl, &plain, T0, NULL));
    assert_true(take(rl, &mapped, T0, NULL));
    assert_false(take(rl, &plain, T0, NULL));
    assert_false(take(rl, &mapped, T0, NULL));
    /* mapped addresses are not grouped by /64 like native IPv6: the neighbour is another client */
    assert_int_equal(drain(rl, &neighbour, T0, 10), 4);
    relay_ratelimit_free(rl);
}

/* addresses of other families (a unix socket behind a proxy) share one bucket; a short sockaddr does not overread */
static void test_other_families(void **state)
{
    (void)state;
    relay_ratelimit_t *rl = relay_ratelimit_new(2);
    assert_non_null(rl);
    addr_t u;
    memset(&u, 0, sizeof(u));
    ((struct sockaddr_un *)&u.ss)->sun_family = AF_UNIX;
    u.len = sizeof(sa_family_t);
    assert_int_equal(drain(rl, &u, T0, 10), 2);
    addr_t short6 = v6("2001:db8::1");
    short6.len = sizeof(struct sockaddr_in); /* too short for an IPv6 address: not trusted as one */
    assert_false(take(rl, &short6, T0, NULL));
    relay_ratelimit_free(rl);
}

/*
 * A flood of addresses neither crashes nor pins the table, and does not wash a drained client out of it: the old LRU
 * table evicted the first address here and gave it a fresh bucket. Now the newcomers are capped by their networks and
 * the replica's budget, and they evict the buckets that have refilled the most (their own, full ones), not the
 * drained one.
 */
static void test_many_addresses(void **state)
{
    (void)state;
    relay_ratelimit_t *rl = relay_ratelimit_new(1); /* one token a minute */
    assert_non_null(rl);
    addr_t first = v4("10.255.255.254");
    assert_true(take(rl, &first, T0, NULL));
    assert_false(take(rl, &first, T0, NULL));

    enum { N = 100000 };
    int allowed = 0;
    addr_t last = v4("10.0.0.0");
    for (uint32_t i = 0; i != N; ++i) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&last.ss;
        sin->sin_addr.s_addr = htonl(0x0a000000u + i);    /* 10.0.0.0 and up: 391 /24s */
        allowed += take(rl, &last, T0 + 1 + i / 4, NULL); /* 25 s in all: less than a token's refill time */
    }
    /* the replica's budget: 50 at once, then 50 a minute (about 21 in 25 s) */
    assert_in_range(allowed, 50, 50 + 21 + 1);
    /* the first is remembered: 0.42 of a token */
    assert_false(take(rl, &first, T0 + N / 4, NULL));
    relay_ratelimit_free(rl);
}

/* a table full of buckets that are in use: a drained client stays drained, whatever the newcomers */
static void test_flood_keeps_drained(void **state)
{
    (void)state;
    relay_ratelimit_t *rl = relay_ratelimit_new(2000); /* the replica's 100,000 are enough for everyone below */
    assert_non_null(rl);
    addr_t x = v4("192.0.2.77");
    assert_int_equal(drain(rl, &x, T0, 3000), 2000);
    /* 60,000 newcomers, 3.7 per slot of the client table, each taking a token: every set overflows */
    enum { N = 60000 };
    addr_t a = v4("10.0.0.0");
    int allowed = 0;
    for (uint32_t i = 0; i != N; ++i) {
        ((struct sockaddr_in *)&a.ss)->sin_addr.s_addr = htonl(0x0a000000u + i * 7);
        allowed += take(rl, &a, T0, NULL);
    }
    assert_int_equal(allowed, N);
    int ra = -1;
    assert_false(take(rl, &x, T0, &ra)); /* not evicted, not fresh */
    assert_in_range(ra, 1, 1);
    relay_ratelimit_free(rl);
}

/* the attack: one /48, 65,536 /64s, each of them a client with a full bucket; the /48 shares 16 x per_min */
static void test_ipv6_48_cycling(void **state)
{
    (void)state;
    relay_ratelimit_t *rl = relay_ratelimit_new(10);
    assert_non_null(rl);
    addr_t a = v6("2001:db8:aaaa::1");
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a.ss;
    int allowed = 0;
    for (uint32_t i = 0; i != 65536; ++i) {
        sin6->sin6_addr.s6_addr[6] = (uint8_t)(i >> 8); /* the fourth group: a new /64 each time */
        sin6->sin6_addr.s6_addr[7] = (uint8_t)i;
        allowed += take(rl, &a, T0 + i / 64, NULL); /* about a second in all: 2.7 tokens of refill */
    }
    assert_in_range(allowed, 160, 163);
    /* a fresh /64 of that /48 waits for its network, honestly */
    addr_t fresh = v6("2001:db8:aaaa:ffff::1");
    int ra = -1;
    assert_false(take(rl, &fresh, T0 + 1024, &ra));
    assert_in_range(ra, 1, 2);
    assert_true(take(rl, &fresh, T0 + 1024 + (int64_t)ra * 1000, NULL));
    /* a client in another /48, and one in a neighbouring /48, are not touched */
    addr_t other = v6("2001:db8:bbbb:1::1"), neighbour = v6("2001:db8:aaab::1");
    assert_int_equal(drain(rl, &other, T0 + 1024, 20), 10);
    assert_int_equal(drain(rl, &neighbour, T0 + 1024, 20), 10);
    relay_ratelimit_free(rl);
}

/* 16 busy hosts of one /48 get their full allowance; the network's bucket refills at 16 x per_min */
static void test_ipv6_48_allowance(void **state)
{
    (void)state;
    relay_ratelimit_t *rl = relay_ratelimit_new(10);
    assert_non_null(rl);
    addr_t a = v6("2001:db8:cccc::1");
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a.ss;
    for (int i = 0; i != 16; ++i) {
        sin6->sin6_addr.s6_addr[7] = (uint8_t)i;
        assert_int_equal(drain(rl, &a, T0, 20), 10);
    }
    sin6->sin6_addr.s6_addr[7] = 16;
    assert_int_equal(drain(rl, &a, T0, 20), 0);
    /* a minute later, the network has its 160 again and the 17th host its 10 */
    assert_int_equal(drain(rl, &a, T0 + 60000, 20), 10);
    relay_ratelimit_free(rl);
}

/* IPv4: a /24 is a network: 256 addresses share 16 x per_min; another /24 is not touched; mapped addresses too */
static void test_ipv4_24(void **state)
{
    (void)state;
    relay_ratelimit_t *rl = relay_ratelimit_new(10);
    assert_non_null(rl);
    addr_t a = v4("198.51.100.0");
    int allowed = 0;
    for (int i = 0; i != 256; ++i) {
        ((struct sockaddr_in *)&a.ss)->sin_addr.s_addr = htonl(0xc6336400u + (uint32_t)i);
        allowed += drain(rl, &a, T0, 20);
    }
    assert_int_equal(allowed, 160);
    addr_t mapped = v6("::ffff:198.51.100.99");
    assert_false(take(rl, &mapped, T0, NULL));
    addr_t other = v4("198.51.101.1");
    assert_int_equal(drain(rl, &other, T0, 20), 10);
    relay_ratelimit_free(rl);
}

/* one IPv4 address is limited as before: per_min at once, then per_min a minute, the network never in the way */
static void test_ipv4_one_address(void **state)
{
    (void)state;
    relay_ratelimit_t *rl = relay_ratelimit_new(60); /* one a second */
    assert_non_null(rl);
    addr_t a = v4("203.0.113.50");
    assert_int_equal(drain(rl, &a, T0, 100), 60);
    int allowed = 0;
    for (int k = 1; k <= 2400; ++k) /* every 250 ms for 10 minutes */
        allowed += take(rl, &a, T0 + k * 250, NULL);
    assert_in_range(allowed, 599, 601);
    relay_ratelimit_free(rl);
}

/* many networks at once: the replica's budget (50 x per_min) caps them all, then refuses a newcomer too */
static void test_global_budget(void **state)
{
    (void)state;
    relay_ratelimit_t *rl = relay_ratelimit_new(10);
    assert_non_null(rl);
    addr_t a = v6("2001:db8::1");
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a.ss;
    int allowed = 0;
    for (uint32_t i = 0; i != 5000; ++i) { /* 5000 /48s, one request each */
        sin6->sin6_addr.s6_addr[4] = (uint8_t)(i >> 8);
        sin6->sin6_addr.s6_addr[5] = (uint8_t)i;
        allowed += take(rl, &a, T0, NULL);
    }
    assert_int_equal(allowed, 500);
    /* an innocent client of its own network, IPv4 or IPv6, waits too, not long */
    addr_t innocent = v4("192.0.2.200"), innocent6 = v6("2001:db8:7777::1");
    int ra = -1;
    assert_false(take(rl, &innocent, T0, &ra));
    assert_int_equal(ra, 1);
    assert_false(take(rl, &innocent6, T0, NULL));
    /* 500 a minute: one every 120 ms */
    assert_true(take(rl, &innocent, T0 + 121, NULL));
    assert_false(take(rl, &innocent6, T0 + 121, NULL));
    assert_true(take(rl, &innocent6, T0 + 241, NULL));
    /* a minute later the budget is whole again */
    assert_int_equal(drain(rl, &innocent, T0 + 60241, 20), 10);
    relay_ratelimit_free(rl);
}

typedef struct st_worker_arg_t {
    relay_ratelimit_t *rl;
    int id, allowed;
} worker_arg_t;

static void *worker(void *p)
{
    worker_arg_t *w = p;
    addr_t a = v6("2001:db8::1");
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a.ss;
    for (uint32_t i = 0; i != 20000; ++i) { /* a /48 of its own each time: only the replica's budget binds */
        sin6->sin6_addr.s6_addr[0] = (uint8_t)(0x20 + w->id);
        sin6->sin6_addr.s6_addr[4] = (uint8_t)(i >> 8);
        sin6->sin6_addr.s6_addr[5] = (uint8_t)i;
        w->allowed += take(w->rl, &a, T0, NULL);
    }
    return NULL;
}

/* four threads at once: the replica's budget is spent exactly, no token lost or minted */
static void test_threads(void **state)
{
    (void)state;
    relay_ratelimit_t *rl = relay_ratelimit_new(100); /* 5000 for the replica */
    assert_non_null(rl);
    pthread_t t[4];
    worker_arg_t args[4];
    for (int i = 0; i != 4; ++i) {
        args[i] = (worker_arg_t){rl, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, worker, &args[i]), 0);
    }
    int allowed = 0;
    for (int i = 0; i != 4; ++i) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        allowed += args[i].allowed;
    }
    assert_int_equal(allowed, 5000);
    relay_ratelimit_free(rl);
}

/* what a take costs: printed (the figure in the report), and checked only against a loose bound */
static void test_speed(void **state)
{
    (void)state;
    relay_ratelimit_t *rl = relay_ratelimit_new(1000000);
    assert_non_null(rl);
    enum { N = 1000000, ADDRS = 4096 };
    addr_t v4a = v4("10.0.0.0"), v6a = v6("2001:db8::1");
    struct timespec t0, t1;
    double ns[2];
    for (int kind = 0; kind != 2; ++kind) {
        int allowed = 0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (uint32_t i = 0; i != N; ++i) {
            uint32_t n = i % ADDRS;
            if (kind == 0) {
                ((struct sockaddr_in *)&v4a.ss)->sin_addr.s_addr = htonl(0x0a000000u + n * 97);
                allowed += take(rl, &v4a, T0 + i / 100, NULL);
            } else {
                ((struct sockaddr_in6 *)&v6a.ss)->sin6_addr.s6_addr[5] = (uint8_t)n;
                ((struct sockaddr_in6 *)&v6a.ss)->sin6_addr.s6_addr[7] = (uint8_t)(n >> 8);
                allowed += take(rl, &v6a, T0 + i / 100, NULL);
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ns[kind] = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / N;
        assert_true(allowed > 0);
    }
    print_message("ratelimit: %.0f ns per take (IPv4, %d addresses), %.0f ns (IPv6)\n", ns[0], ADDRS, ns[1]);
    assert_true(ns[0] < 20000 && ns[1] < 20000);
    relay_ratelimit_free(rl);
}

static void test_free_null(void **state)
{
    (void)state;
    relay_ratelimit_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capacity),
        cmocka_unit_test(test_refill),
        cmocka_unit_test(test_time_backwards),
        cmocka_unit_test(test_addresses_independent),
        cmocka_unit_test(test_ipv6_prefix),
        cmocka_unit_test(test_v4_mapped),
        cmocka_unit_test(test_other_families),
        cmocka_unit_test(test_many_addresses),
        cmocka_unit_test(test_flood_keeps_drained),
        cmocka_unit_test(test_ipv6_48_cycling),
        cmocka_unit_test(test_ipv6_48_allowance),
        cmocka_unit_test(test_ipv4_24),
        cmocka_unit_test(test_ipv4_one_address),
        cmocka_unit_test(test_global_budget),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_speed),
        cmocka_unit_test(test_free_null),
    };
    return cmocka_run_group_tests_name("ratelimit", tests, NULL, NULL);
}
