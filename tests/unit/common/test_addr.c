/* test_addr.c: unit tests of the shared parsers (common/addr.c): integers, host:port, loopback, socket addresses,
 * Redis URLs, Sentinel lists */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>
#include <cmocka.h>

#include "addr.h"

/* s (NUL-terminated) through rly_hostport_parse; the result must point into s */
static int hp(const char *s, int need_port, rly_hostport_t *out, const char **errstr)
{
    size_t len = strlen(s);
    int r;

    *errstr = NULL;
    r = rly_hostport_parse(s, len, need_port, out, errstr);
    if (r == 0) {
        assert_true(out->host >= s && out->host + out->host_len <= s + len);
        assert_null(*errstr);
    } else {
        assert_int_equal(r, -1);
        assert_non_null(*errstr);
    }
    return r;
}

static void assert_host(const rly_hostport_t *h, const char *host, unsigned port, int is_ipv6)
{
    assert_int_equal(h->host_len, strlen(host));
    assert_memory_equal(h->host, host, h->host_len);
    assert_int_equal(h->port, port);
    assert_int_equal(h->is_ipv6, is_ipv6);
}

static void assert_hp_err(const char *s, int need_port, const char *why)
{
    rly_hostport_t h = {.host = "untouched", .host_len = 9, .is_ipv6 = 0, .port = 7};
    const char *es;

    if (hp(s, need_port, &h, &es) != -1)
        fail_msg("%s was accepted", s);
    if (strstr(es, why) == NULL)
        fail_msg("%s: \"%s\", expected \"%s\"", s, es, why);
    /* a failure leaves *out alone */
    assert_host(&h, "untouched", 7, 0);
}

static void test_parse_uint(void **state)
{
    unsigned long long n = 42;

    (void)state;
    assert_int_equal(rly_parse_uint("0", 1, 0, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(rly_parse_uint("007", 3, 100, &n), 0);
    assert_int_equal(n, 7);
    assert_int_equal(rly_parse_uint("65535", 5, 65535, &n), 0);
    assert_int_equal(n, 65535);
    assert_int_equal(rly_parse_uint("18446744073709551615", 20, ULLONG_MAX, &n), 0);
    assert_true(n == ULLONG_MAX);
    /* only len bytes count */
    assert_int_equal(rly_parse_uint("123abc", 3, 1000, &n), 0);
    assert_int_equal(n, 123);

    n = 42;
    assert_int_equal(rly_parse_uint("65536", 5, 65535, &n), -1);
    assert_int_equal(rly_parse_uint("18446744073709551616", 20, ULLONG_MAX, &n), -1); /* 2^64 */
    assert_int_equal(rly_parse_uint("99999999999999999999", 20, ULLONG_MAX, &n), -1);
    assert_int_equal(rly_parse_uint("000000000000000000001", 21, ULLONG_MAX, &n), -1); /* 21 digits */
    assert_int_equal(rly_parse_uint("", 0, 10, &n), -1);
    assert_int_equal(rly_parse_uint(NULL, 0, 10, &n), -1);
    assert_int_equal(rly_parse_uint("+1", 2, 10, &n), -1);
    assert_int_equal(rly_parse_uint("-1", 2, 10, &n), -1);
    assert_int_equal(rly_parse_uint(" 1", 2, 10, &n), -1);
    assert_int_equal(rly_parse_uint("1 ", 2, 10, &n), -1);
    assert_int_equal(rly_parse_uint("0x1", 3, 10, &n), -1);
    assert_int_equal(rly_parse_uint("1\0", 2, 10, &n), -1);
    assert_int_equal(rly_parse_uint("11", 2, 10, &n), -1);
    assert_int_equal(n, 42); /* untouched by failures */
}

static void test_hostport_ok(void **state)
{
    rly_hostport_t h;
    const char *es;
    char label63[80], label64[80], name253[300], name254[300];
    size_t i;

    (void)state;
    assert_int_equal(hp("relay.example.com:443", 1, &h, &es), 0);
    assert_host(&h, "relay.example.com", 443, 0);
    assert_int_equal(hp("relay.example.com", 0, &h, &es), 0);
    assert_host(&h, "relay.example.com", 0, 0);
    assert_int_equal(hp("Redis-1.Internal:6379", 1, &h, &es), 0);
    assert_host(&h, "Redis-1.Internal", 6379, 0);
    assert_int_equal(hp("localhost:1", 1, &h, &es), 0);
    assert_host(&h, "localhost", 1, 0);
    assert_int_equal(hp("192.0.2.1:65535", 1, &h, &es), 0);
    assert_host(&h, "192.0.2.1", 65535, 0);
    assert_int_equal(hp("1a.example", 0, &h, &es), 0);
    assert_int_equal(hp("x", 0, &h, &es), 0);
    /* a port of at most 5 digits, leading zeros allowed */
    assert_int_equal(hp("h:00080", 1, &h, &es), 0);
    assert_int_equal(h.port, 80);
    /* IPv6: between the brackets, without them */
    assert_int_equal(hp("[::1]:6379", 1, &h, &es), 0);
    assert_host(&h, "::1", 6379, 1);
    assert_int_equal(hp("[2001:db8::1]", 0, &h, &es), 0);
    assert_host(&h, "2001:db8::1", 0, 1);
    assert_int_equal(hp("[::ffff:192.0.2.1]:1", 1, &h, &es), 0);
    assert_host(&h, "::ffff:192.0.2.1", 1, 1);

    /* a label of 63, a name of 253 */
    memset(label63, 'a', 63);
    memcpy(label63 + 63, ".example", 9);
    assert_int_equal(hp(label63, 0, &h, &es), 0);
    memset(label64, 'a', 64);
    memcpy(label64 + 64, ".example", 9);
    assert_hp_err(label64, 0, "has an invalid host name");
    for (i = 0; i != 253; ++i)
        name253[i] = i % 4 == 3 ? '.' : 'b';
    name253[253] = '\0';
    assert_int_equal(hp(name253, 0, &h, &es), 0);
    assert_int_equal(h.host_len, 253);
    memcpy(name254, name253, 253);
    name254[253] = 'c';
    name254[254] = '\0';
    assert_hp_err(name254, 0, "has an invalid host name");
}

static void test_hostport_bad(void **state)
{
    static const char *const bad_names[] = {
        "a.example.", ".a.example", "a..example", "-a.example", "a-.example", "a.-b",      "a_b.example", "a b", "\xc3\xa9.example",
        "1.2.3",      "999.0.0.1",  "1.2.3.4.5",  "123",        "01.2.3.4",   "*.example", "a/b",         "a@b",
    };
    size_t i;

    (void)state;
    assert_hp_err("", 0, "has no host");
    assert_hp_err(":80", 1, "has an invalid host name");
    for (i = 0; i != sizeof(bad_names) / sizeof(bad_names[0]); ++i)
        assert_hp_err(bad_names[i], 0, "has an invalid host name");
    /* ports */
    assert_hp_err("h", 1, "needs a port: host:port");
    assert_hp_err("[::1]", 1, "needs a port");
    assert_hp_err("h:0", 1, "has an invalid port (1..65535)");
    assert_hp_err("h:65536", 1, "has an invalid port");
    assert_hp_err("h:99999", 1, "has an invalid port");
    assert_hp_err("h:000080", 1, "has an invalid port"); /* 6 digits */
    assert_hp_err("h:", 0, "has an invalid port");
    assert_hp_err("h:8a", 0, "has an invalid port");
    assert_hp_err("h:-1", 0, "has an invalid port");
    assert_hp_err("h: 80", 0, "has an invalid port");
    /* IPv6 */
    assert_hp_err("::1", 0, "has an IPv6 address outside brackets");
    assert_hp_err("::1:6379", 1, "has an IPv6 address outside brackets");
    assert_hp_err("h:1:2", 1, "has an IPv6 address outside brackets");
    assert_hp_err("[::1", 0, "has an invalid [IPv6] address");
    assert_hp_err("[]", 0, "has an invalid [IPv6] address");
    assert_hp_err("[]:1", 1, "has an invalid [IPv6] address");
    assert_hp_err("[fe80::1%eth0]:1", 1, "has an invalid [IPv6] address");
    assert_hp_err("[fe80::1%25eth0]", 0, "has an invalid [IPv6] address");
    assert_hp_err("[192.0.2.1]", 0, "has an invalid [IPv6] address");
    assert_hp_err("[::g]", 0, "has an invalid [IPv6] address");
    assert_hp_err("[::1]x", 0, "has junk after the host");
    assert_hp_err("[::1]]:1", 0, "has junk after the host");
    assert_hp_err("[::1]:", 0, "has an invalid port");
    assert_hp_err("[::1]:0", 0, "has an invalid port");
    {
        rly_hostport_t h;
        const char *es;
        /* a NUL inside the length is never part of a host */
        assert_int_equal(rly_hostport_parse("a\0b:1", 5, 1, &h, &es), -1);
        assert_int_equal(rly_hostport_parse("[::1\0]:1", 8, 1, &h, &es), -1);
        assert_int_equal(rly_hostport_parse("h:1\0", 4, 1, &h, &es), -1);
        /* only len bytes count */
        assert_int_equal(rly_hostport_parse("h:12345", 4, 1, &h, &es), 0);
        assert_int_equal(h.port, 12);
        assert_int_equal(rly_hostport_parse(NULL, 0, 0, &h, &es), -1);
    }
}

static void test_hostport_split(void **state)
{
    rly_hostport_t h;
    const char *es;

    (void)state;
    /* no DNS-name rule: URLs take '_' */
    assert_int_equal(rly_hostport_split("my_host.example:8443", 20, 0, &h, &es), 0);
    assert_host(&h, "my_host.example", 8443, 0);
    assert_int_equal(rly_hostport_split("[::1]:1", 7, 1, &h, &es), 0);
    assert_host(&h, "::1", 1, 1);
    /* -1: the host; -2: what follows it */
    assert_int_equal(rly_hostport_split("", 0, 0, &h, &es), -1);
    assert_int_equal(rly_hostport_split(":443", 4, 0, &h, &es), -1);
    assert_string_equal(es, "has no host");
    assert_int_equal(rly_hostport_split("::1", 3, 0, &h, &es), -1);
    assert_int_equal(rly_hostport_split("[::1", 4, 0, &h, &es), -1);
    assert_int_equal(rly_hostport_split("[x]", 3, 0, &h, &es), -1);
    assert_int_equal(rly_hostport_split("a:1:2", 5, 0, &h, &es), -2);
    assert_int_equal(rly_hostport_split("a:0", 3, 0, &h, &es), -2);
    assert_int_equal(rly_hostport_split("[::1]x", 6, 0, &h, &es), -2);
    assert_int_equal(rly_hostport_split("a", 1, 1, &h, &es), -2);
}

static void test_host_is_loopback(void **state)
{
    static const char *const yes[] = {"localhost", "LOCALHOST", "LocalHost", "127.0.0.1",       "127.0.0.0", "127.255.255.255",
                                      "127.1.2.3", "::1",       "[::1]",     "0:0:0:0:0:0:0:1", "[0::1]"};
    static const char *const no[] = {"",
                                     "localhost.",
                                     "localhost.evil.com",
                                     "localhos",
                                     "127.0.0.1.",
                                     "127.0.0.1.evil.com",
                                     "127.0.0",
                                     "127.0.0.256",
                                     "127.256.0.1",
                                     "0127.0.0.1",
                                     "127.00.0.1",
                                     "128.0.0.1",
                                     "126.255.255.255",
                                     "127.0.0.1:80",
                                     "[127.0.0.1]",
                                     "::2",
                                     "[::2]",
                                     "::ffff:127.0.0.1",
                                     "[::ffff:127.0.0.1]",
                                     "[::1",
                                     "::1]",
                                     "[::1]:80",
                                     "[::1%25lo]",
                                     "::1%lo",
                                     "[]",
                                     "0.0.0.0",
                                     "::"};
    size_t i;

    (void)state;
    for (i = 0; i != sizeof(yes) / sizeof(yes[0]); ++i)
        if (rly_host_is_loopback(yes[i], strlen(yes[i])) != 1)
            fail_msg("%s is loopback", yes[i]);
    for (i = 0; i != sizeof(no) / sizeof(no[0]); ++i)
        if (rly_host_is_loopback(no[i], strlen(no[i])) != 0)
            fail_msg("%s is not loopback", no[i]);
    /* length-bounded */
    assert_int_equal(rly_host_is_loopback("localhost.evil.com", 9), 1);
    assert_int_equal(rly_host_is_loopback("localhost", 8), 0);
    assert_int_equal(rly_host_is_loopback("::1\0", 4), 0);
    assert_int_equal(rly_host_is_loopback("127.0.0.1\0", 10), 0);
    assert_int_equal(rly_host_is_loopback(NULL, 0), 0);
}

static void test_sockaddr_is_loopback(void **state)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    static const char *const v4_yes[] = {"127.0.0.1", "127.255.255.255", "127.0.0.0"};
    static const char *const v4_no[] = {"128.0.0.1", "0.0.0.0", "10.0.0.1", "126.255.255.255"};
    static const char *const v6_yes[] = {"::1", "::ffff:127.0.0.1", "::ffff:127.255.255.255"};
    static const char *const v6_no[] = {"::", "::2", "::ffff:10.0.0.1", "::127.0.0.1", "fe80::1", "2001:db8::1"};
    size_t i;

    (void)state;
    for (i = 0; i != sizeof(v4_yes) / sizeof(v4_yes[0]); ++i) {
        assert_int_equal(inet_pton(AF_INET, v4_yes[i], &sin.sin_addr), 1);
        assert_int_equal(rly_sockaddr_is_loopback((struct sockaddr *)&sin), 1);
    }
    for (i = 0; i != sizeof(v4_no) / sizeof(v4_no[0]); ++i) {
        assert_int_equal(inet_pton(AF_INET, v4_no[i], &sin.sin_addr), 1);
        assert_int_equal(rly_sockaddr_is_loopback((struct sockaddr *)&sin), 0);
    }
    for (i = 0; i != sizeof(v6_yes) / sizeof(v6_yes[0]); ++i) {
        assert_int_equal(inet_pton(AF_INET6, v6_yes[i], &sin6.sin6_addr), 1);
        if (rly_sockaddr_is_loopback((struct sockaddr *)&sin6) != 1)
            fail_msg("%s is loopback", v6_yes[i]);
    }
    for (i = 0; i != sizeof(v6_no) / sizeof(v6_no[0]); ++i) {
        assert_int_equal(inet_pton(AF_INET6, v6_no[i], &sin6.sin6_addr), 1);
        if (rly_sockaddr_is_loopback((struct sockaddr *)&sin6) != 0)
            fail_msg("%s is not loopback", v6_no[i]);
    }
    assert_int_equal(rly_sockaddr_is_loopback((struct sockaddr *)&sun), 0);
    assert_int_equal(rly_sockaddr_is_loopback(NULL), 0);
}

/* s through rly_sockaddr_parse into ss (filled with 0xAA first, to see that the rest is zeroed) */
static int sa(const char *s, struct sockaddr_storage *ss, socklen_t *len, const char **errstr)
{
    memset(ss, 0xAA, sizeof(*ss));
    *errstr = NULL;
    return rly_sockaddr_parse(s, strlen(s), ss, len, errstr);
}

static void assert_sa_err(const char *s, const char *why)
{
    struct sockaddr_storage ss;
    socklen_t len = 77;
    const char *es;
    size_t i;

    if (sa(s, &ss, &len, &es) != -1)
        fail_msg("%s was accepted", s);
    if (strstr(es, why) == NULL)
        fail_msg("%s: \"%s\", expected \"%s\"", s, es, why);
    assert_int_equal(len, 77);
    for (i = 0; i != sizeof(ss); ++i)
        assert_int_equal(((unsigned char *)&ss)[i], 0xAA);
}

static void test_sockaddr_parse(void **state)
{
    struct sockaddr_storage ss, zero;
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
    socklen_t len;
    const char *es;
    char text[INET6_ADDRSTRLEN];

    (void)state;
    memset(&zero, 0, sizeof(zero));
    assert_int_equal(sa("192.0.2.1:8443", &ss, &len, &es), 0);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(ntohs(sin->sin_port), 8443);
    assert_string_equal(inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text)), "192.0.2.1");
    assert_memory_equal(sin->sin_zero, &zero, sizeof(sin->sin_zero));
    assert_memory_equal((char *)&ss + sizeof(*sin), &zero, sizeof(ss) - sizeof(*sin));

    assert_int_equal(sa("LocalHost:1", &ss, &len, &es), 0);
    assert_int_equal(sin->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    assert_int_equal(ntohs(sin->sin_port), 1);
    assert_int_equal(sa("0.0.0.0:65535", &ss, &len, &es), 0);
    assert_int_equal(sin->sin_addr.s_addr, htonl(INADDR_ANY));

    assert_int_equal(sa("[::1]:8443", &ss, &len, &es), 0);
    assert_int_equal(len, sizeof(struct sockaddr_in6));
    assert_int_equal(sin6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(sin6->sin6_port), 8443);
    assert_true(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
    assert_int_equal(sin6->sin6_flowinfo, 0);
    assert_int_equal(sin6->sin6_scope_id, 0);
    assert_int_equal(sa("[::ffff:127.0.0.1]:1", &ss, &len, &es), 0);
    assert_int_equal(rly_sockaddr_is_loopback((struct sockaddr *)&ss), 1);

    assert_sa_err("", "expected ADDR:PORT");
    assert_sa_err("192.0.2.1", "expected ADDR:PORT, e.g. 127.0.0.1:8443, [::1]:8443 or localhost:8443");
    assert_sa_err("::1:80", "IPv6 addresses go in brackets: [v6]:port");
    assert_sa_err("example.com:80", "the address must be IPv4 a.b.c.d, [IPv6] or localhost (no DNS lookups)");
    assert_sa_err("localhost.:80", "no DNS lookups");
    assert_sa_err("1.2.3:80", "no DNS lookups");
    assert_sa_err(":80", "no DNS lookups");
    assert_sa_err("192.0.2.1:0", "invalid port: expected a port in 1..65535");
    assert_sa_err("192.0.2.1:65536", "invalid port");
    assert_sa_err("192.0.2.1:", "invalid port");
    assert_sa_err("[::1]", "invalid port: expected [v6]:port with a port in 1..65535");
    assert_sa_err("[::1]:", "invalid port");
    assert_sa_err("[::1]x80", "invalid port");
    assert_sa_err("[::1]:0", "invalid port");
    assert_sa_err("[::1", "invalid IPv6 address: expected [v6]:port, e.g. [::1]:8443");
    assert_sa_err("[fe80::1%1]:80", "invalid IPv6 address");
    assert_sa_err("[localhost]:80", "invalid IPv6 address");
    assert_int_equal(rly_sockaddr_parse("127.0.0.1:80\0", 13, &ss, &len, &es), -1);
}

/* s through rly_redis_url_parse; what it returns points into s; a failure never echoes a password */
static int redis(const char *s, rly_redis_url_t *u, const char **errstr)
{
    size_t len = strlen(s);
    int r;

    *errstr = NULL;
    memset(u, 0x55, sizeof(*u));
    r = rly_redis_url_parse(s, len, u, errstr);
    if (r == 0) {
        if (u->is_unix) {
            assert_true(u->path > s && u->path + u->path_len == s + len);
        } else {
            assert_true(u->hp.host > s && u->hp.host + u->hp.host_len <= s + len);
        }
        if (u->username != NULL)
            assert_true(u->username > s && u->username + u->username_len <= s + len);
        if (u->password != NULL)
            assert_true(u->password > s && u->password + u->password_len <= s + len && u->password_len != 0);
    } else {
        assert_int_equal(r, -1);
        assert_non_null(*errstr);
        assert_null(strstr(*errstr, "s3cret"));
    }
    return r;
}

static void assert_redis_err(const char *s, const char *why)
{
    rly_redis_url_t u;
    const char *es;

    if (redis(s, &u, &es) != -1)
        fail_msg("%s was accepted", s);
    if (strstr(es, why) == NULL)
        fail_msg("%s: \"%s\", expected \"%s\"", s, es, why);
}

static void assert_str(const char *p, size_t len, const char *expect)
{
    assert_non_null(p);
    assert_int_equal(len, strlen(expect));
    assert_memory_equal(p, expect, len);
}

static void test_redis_url(void **state)
{
    rly_redis_url_t u;
    const char *es;

    (void)state;
    assert_int_equal(redis("redis://localhost:6379", &u, &es), 0);
    assert_int_equal(u.is_unix, 0);
    assert_null(u.path);
    assert_host(&u.hp, "localhost", 6379, 0);
    assert_null(u.username);
    assert_null(u.password);
    assert_int_equal(u.db, 0);

    assert_int_equal(redis("redis://:s3cret@redis.internal:6380/15", &u, &es), 0);
    assert_host(&u.hp, "redis.internal", 6380, 0);
    assert_null(u.username);
    assert_str(u.password, u.password_len, "s3cret");
    assert_int_equal(u.db, 15);

    /* ACL users: user:password@ */
    assert_int_equal(redis("redis://relay:s3cret@10.0.0.1:6379/0", &u, &es), 0);
    assert_str(u.username, u.username_len, "relay");
    assert_str(u.password, u.password_len, "s3cret");
    assert_host(&u.hp, "10.0.0.1", 6379, 0);
    assert_int_equal(u.db, 0);

    /* the userinfo ends at the last '@' and splits at its first ':' */
    assert_int_equal(redis("redis://:p%40ss:w0rd@redis:6379", &u, &es), 0);
    assert_null(u.username);
    assert_str(u.password, u.password_len, "p%40ss:w0rd");
    assert_int_equal(redis("redis://:p@ss/x@redis:6379", &u, &es), 0);
    assert_str(u.password, u.password_len, "p@ss/x");
    assert_host(&u.hp, "redis", 6379, 0);
    assert_int_equal(redis("redis://u@x:p:q@redis:1", &u, &es), 0);
    assert_str(u.username, u.username_len, "u@x");
    assert_str(u.password, u.password_len, "p:q");

    assert_int_equal(redis("redis://[::1]:6379/2147483647", &u, &es), 0);
    assert_host(&u.hp, "::1", 6379, 1);
    assert_int_equal(u.db, 2147483647u);
    assert_int_equal(redis("redis://h:1/007", &u, &es), 0);
    assert_int_equal(u.db, 7);

    assert_redis_err("redis://user@localhost:6379", "has a user name but no password");
    assert_redis_err("redis://:@localhost:6379", "has an empty password");
    assert_redis_err("redis://user:@localhost:6379", "has an empty password");
    assert_redis_err("redis://:a b@localhost:6379", "the password must be printable ASCII without blanks");
    assert_redis_err("redis://:s3cret\x7f@localhost:6379", "the password must be printable ASCII");
    assert_redis_err("redis://u v:s3cret@localhost:6379", "the user name must be printable ASCII without blanks");
    assert_redis_err("redis://:s3cret@localhost", "needs a port: host:port");
    assert_redis_err("redis://:s3cret@localhost:0", "has an invalid port");
    assert_redis_err("redis://:s3cret@localhost:65536", "has an invalid port");
    assert_redis_err("redis://:s3cret@bad_host:6379", "has an invalid host name");
    assert_redis_err("redis://::1:6379", "has an IPv6 address outside brackets");
    assert_redis_err("redis://[::1%lo]:6379", "has an invalid [IPv6] address");
    assert_redis_err("redis://", "has no host");
    assert_redis_err("redis://:s3cret@:6379", "has an invalid host name");
    assert_redis_err("redis://localhost:6379/", "the database after '/' must be a number");
    assert_redis_err("redis://localhost:6379/x", "the database after '/' must be a number");
    assert_redis_err("redis://localhost:6379/-1", "the database after '/' must be a number");
    assert_redis_err("redis://localhost:6379/2147483648", "the database after '/' must be a number");
    assert_redis_err("redis://localhost:6379/0/", "the database after '/' must be a number");
    assert_redis_err("rediss://:s3cret@localhost:6379", "rediss:// (TLS) is not supported: hiredis 0.14 speaks plain TCP only");
    assert_redis_err("http://localhost:6379", "must be redis://[:password@]host:port[/db] or unix:///path");
    assert_redis_err("REDIS://localhost:6379", "must be redis://");
    assert_redis_err("redis:/localhost:6379", "must be redis://");
    assert_redis_err("", "must be redis://");
    assert_redis_err("unix", "must be redis://");
}

static void test_redis_unix(void **state)
{
    rly_redis_url_t u;
    const char *es;
    char url[8 + sizeof(((struct sockaddr_un *)NULL)->sun_path) + 1];
    size_t max = sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1; /* and its NUL */

    (void)state;
    assert_int_equal(redis("unix:///run/redis/redis.sock", &u, &es), 0);
    assert_int_equal(u.is_unix, 1);
    assert_str(u.path, u.path_len, "/run/redis/redis.sock");
    assert_null(u.username);
    assert_null(u.password);
    assert_int_equal(u.db, 0);

    assert_redis_err("unix://run/redis.sock", "unix:// needs an absolute path: unix:///run/redis/redis.sock");
    assert_redis_err("unix://./redis.sock", "unix:// needs an absolute path");
    assert_redis_err("unix://", "unix:// needs an absolute path");
    assert_int_equal(rly_redis_url_parse("unix:///run/r\0x", 15, &u, &es), -1);
    assert_string_equal(es, "the unix socket path has a NUL byte");

    /* the longest path sun_path holds, and one byte more */
    memcpy(url, "unix://", 7);
    memset(url + 7, 'p', max);
    url[7] = '/';
    url[7 + max] = '\0';
    assert_int_equal(redis(url, &u, &es), 0);
    assert_int_equal(u.path_len, max);
    url[7 + max] = 'p';
    url[8 + max] = '\0';
    assert_redis_err(url, "the unix socket path is too long");
}

static void test_hostport_list(void **state)
{
    const char *list = "s1:26379,[::1]:26380,10.0.0.2:26381", *es;
    rly_hostport_t h;
    size_t pos = 0, len;

    (void)state;
    len = strlen(list);
    assert_int_equal(rly_hostport_list_next(list, len, &pos, &h, &es), 1);
    assert_host(&h, "s1", 26379, 0);
    assert_int_equal(rly_hostport_list_next(list, len, &pos, &h, &es), 1);
    assert_host(&h, "::1", 26380, 1);
    assert_int_equal(rly_hostport_list_next(list, len, &pos, &h, &es), 1);
    assert_host(&h, "10.0.0.2", 26381, 0);
    assert_int_equal(rly_hostport_list_next(list, len, &pos, &h, &es), 0);
    assert_int_equal(rly_hostport_list_next(list, len, &pos, &h, &es), 0); /* and stays over */

    /* empty entries: a trailing comma, a leading one, two in a row, an empty list */
    pos = 0;
    assert_int_equal(rly_hostport_list_next("s1:1,", 5, &pos, &h, &es), 1);
    assert_int_equal(rly_hostport_list_next("s1:1,", 5, &pos, &h, &es), -1);
    assert_string_equal(es, "has an empty address: expected host:port,host:port");
    pos = 0;
    assert_int_equal(rly_hostport_list_next(",s1:1", 5, &pos, &h, &es), -1);
    pos = 0;
    assert_int_equal(rly_hostport_list_next("s1:1,,s2:1", 10, &pos, &h, &es), 1);
    assert_int_equal(rly_hostport_list_next("s1:1,,s2:1", 10, &pos, &h, &es), -1);
    pos = 0;
    assert_int_equal(rly_hostport_list_next("", 0, &pos, &h, &es), -1);
    assert_string_equal(es, "has an empty address: expected host:port,host:port");
    pos = 0;
    assert_int_equal(rly_hostport_list_next(NULL, 0, &pos, &h, &es), -1);
    /* every entry needs a port */
    pos = 0;
    assert_int_equal(rly_hostport_list_next("s1:1,s2", 7, &pos, &h, &es), 1);
    assert_int_equal(rly_hostport_list_next("s1:1,s2", 7, &pos, &h, &es), -1);
    assert_string_equal(es, "needs a port: host:port");
}

static int cidr(const char *s, rly_cidr_t *c)
{
    const char *es = NULL;
    int r = rly_cidr_parse(s, strlen(s), c, &es);
    if (r != 0)
        assert_non_null(es);
    return r;
}

static int in4(const rly_cidr_t *c, const char *a)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    assert_int_equal(inet_pton(AF_INET, a, &sin.sin_addr), 1);
    return rly_cidr_match(c, (struct sockaddr *)&sin);
}

static int in6(const rly_cidr_t *c, const char *a)
{
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
    assert_int_equal(inet_pton(AF_INET6, a, &sin6.sin6_addr), 1);
    return rly_cidr_match(c, (struct sockaddr *)&sin6);
}

static void test_cidr(void **state)
{
    (void)state;
    rly_cidr_t c;
    assert_int_equal(cidr("10.0.0.0/8", &c), 0);
    assert_int_equal(c.family, AF_INET);
    assert_int_equal(c.prefix, 8);
    assert_true(in4(&c, "10.255.1.2"));
    assert_false(in4(&c, "11.0.0.1"));
    assert_true(in6(&c, "::ffff:10.1.2.3")); /* IPv4-mapped */
    assert_false(in6(&c, "::1"));
    assert_int_equal(cidr("192.168.1.7", &c), 0); /* one host */
    assert_int_equal(c.prefix, 32);
    assert_true(in4(&c, "192.168.1.7"));
    assert_false(in4(&c, "192.168.1.6"));
    assert_int_equal(cidr("172.16.0.0/12", &c), 0);
    assert_true(in4(&c, "172.31.255.255"));
    assert_false(in4(&c, "172.32.0.0"));
    assert_int_equal(cidr("0.0.0.0/0", &c), 0);
    assert_true(in4(&c, "8.8.8.8"));
    assert_int_equal(cidr("2001:db8::/32", &c), 0);
    assert_true(in6(&c, "2001:db8:ffff::1"));
    assert_false(in6(&c, "2001:db9::1"));
    assert_false(in4(&c, "10.0.0.1"));
    assert_int_equal(cidr("fd00::/7", &c), -1); /* host bits: fc00::/7 is meant */
    assert_int_equal(cidr("fc00::/7", &c), 0);
    assert_true(in6(&c, "fd12::1"));
    assert_false(in6(&c, "fe80::1"));
    assert_int_equal(cidr("10.0.0.1/8", &c), -1);
    assert_int_equal(cidr("10.0.0.0/33", &c), -1);
    assert_int_equal(cidr("::/129", &c), -1);
    assert_int_equal(cidr("10.0.0.0/", &c), -1);
    assert_int_equal(cidr("10.0.0.0/+8", &c), -1);
    assert_int_equal(cidr("/8", &c), -1);
    assert_int_equal(cidr("", &c), -1);
    assert_int_equal(cidr("[::1]/128", &c), -1);
    assert_int_equal(cidr("example.com/8", &c), -1);
    assert_int_equal(cidr("10.0.0.0/8/8", &c), -1);
    assert_int_equal(rly_cidr_parse("10.0.0.0\0/8", 11, &c, &(const char *){NULL}), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_uint),
        cmocka_unit_test(test_hostport_ok),
        cmocka_unit_test(test_hostport_bad),
        cmocka_unit_test(test_hostport_split),
        cmocka_unit_test(test_host_is_loopback),
        cmocka_unit_test(test_sockaddr_is_loopback),
        cmocka_unit_test(test_sockaddr_parse),
        cmocka_unit_test(test_redis_url),
        cmocka_unit_test(test_redis_unix),
        cmocka_unit_test(test_hostport_list),
        cmocka_unit_test(test_cidr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
