/* test_ratelimit.c: unit tests of relay/ratelimit.c: capacity, refill, per-address buckets, IPv6 /64, eviction */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>
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

/* a flood of addresses neither crashes nor pins the table: the least recently seen entries are evicted */
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
        sin->sin_addr.s_addr = htonl(0x0a000000u + i);    /* 10.0.0.0 and up */
        allowed += take(rl, &last, T0 + 1 + i / 4, NULL); /* 25 s in all: less than a token's refill time */
    }
    assert_int_equal(allowed, N); /* every new address starts with a full bucket */
    /* the last one is remembered: its token is spent */
    assert_false(take(rl, &last, T0 + N / 4, NULL));
    /* the first was evicted (least recently seen) and starts over: without eviction it would have 0.42 tokens */
    assert_true(take(rl, &first, T0 + N / 4, NULL));
    assert_false(take(rl, &first, T0 + N / 4, NULL));
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
        cmocka_unit_test(test_capacity),       cmocka_unit_test(test_refill),
        cmocka_unit_test(test_time_backwards), cmocka_unit_test(test_addresses_independent),
        cmocka_unit_test(test_ipv6_prefix),    cmocka_unit_test(test_v4_mapped),
        cmocka_unit_test(test_other_families), cmocka_unit_test(test_many_addresses),
        cmocka_unit_test(test_free_null),
    };
    return cmocka_run_group_tests_name("ratelimit", tests, NULL, NULL);
}
