/* fuzz_addr.c: libFuzzer target for the shared parsers (common/addr.c): integers, host:port, loopback, socket addresses,
 * Redis URLs, Sentinel lists */
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                                                \
    do {                                                                                                                           \
        if (!(cond))                                                                                                               \
            abort();                                                                                                               \
    } while (0)

#define OUT_MAX 1024 /* written back: a host, a port, an address (a Redis URL takes the input's size and this) */

/* [p, p + n) lies inside [lo, lo + cap) */
static int within(const char *p, size_t n, const char *lo, size_t cap)
{
    return p >= lo && n <= cap && (size_t)(p - lo) <= cap - n;
}

/* an error text is fixed, never a piece of the input */
static void check_errstr(const char *errstr, const char *src, size_t size)
{
    CHECK(errstr != NULL && errstr[0] != '\0');
    CHECK(!(errstr >= src && errstr < src + size));
}

static int is_name_byte(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '.';
}

/* host[:port] written back from a parse */
static size_t format_hostport(char *out, size_t cap, const rly_hostport_t *hp)
{
    int n = snprintf(out, cap, "%s%.*s%s", hp->is_ipv6 ? "[" : "", (int)hp->host_len, hp->host, hp->is_ipv6 ? "]" : "");
    CHECK(n > 0 && (size_t)n < cap);
    if (hp->port != 0) {
        int m = snprintf(out + n, cap - (size_t)n, ":%u", (unsigned)hp->port);
        CHECK(m > 0 && (size_t)(n + m) < cap);
        n += m;
    }
    return (size_t)n;
}

static int same_hostport(const rly_hostport_t *a, const rly_hostport_t *b)
{
    return a->host_len == b->host_len && memcmp(a->host, b->host, a->host_len) == 0 && a->is_ipv6 == b->is_ipv6 &&
           a->port == b->port;
}

static void check_hostport(const rly_hostport_t *hp, const char *src, size_t size, int need_port, int named)
{
    struct in6_addr a6;
    char tmp[INET6_ADDRSTRLEN];
    size_t i;

    CHECK(within(hp->host, hp->host_len, src, size) && hp->host_len >= 1);
    CHECK(!need_port || hp->port >= 1);
    if (hp->is_ipv6) {
        CHECK(hp->host > src && hp->host[-1] == '[' && hp->host_len < sizeof(tmp));
        memcpy(tmp, hp->host, hp->host_len);
        tmp[hp->host_len] = '\0';
        CHECK(inet_pton(AF_INET6, tmp, &a6) == 1);
    } else {
        CHECK(memchr(hp->host, ':', hp->host_len) == NULL);
        if (named) {
            CHECK(hp->host_len <= RLY_AS_HOST_MAX);
            for (i = 0; i != hp->host_len; ++i)
                CHECK(is_name_byte((unsigned char)hp->host[i]));
        }
    }
}

static void fuzz_uint(const char *src, size_t size)
{
    unsigned long long v, again, max = size != 0 ? (unsigned char)src[0] * 1000ULL : ULLONG_MAX;
    char out[32];
    size_t i;
    int n;

    if (rly_parse_uint(src, size, ULLONG_MAX, &v) == 0) {
        CHECK(size >= 1 && size <= 20);
        for (i = 0; i != size; ++i)
            CHECK(src[i] >= '0' && src[i] <= '9');
        n = snprintf(out, sizeof(out), "%llu", v);
        CHECK(n > 0 && (size_t)n <= size);
        CHECK(rly_parse_uint(out, (size_t)n, ULLONG_MAX, &again) == 0 && again == v);
        /* the bound is honoured */
        CHECK((rly_parse_uint(src, size, max, &again) == 0) == (v <= max));
    }
}

static void fuzz_hostport(const char *src, size_t size)
{
    rly_hostport_t hp, split, again;
    const char *errstr = NULL;
    char out[OUT_MAX];
    size_t n;
    int need_port, r, rs;

    for (need_port = 0; need_port != 2; ++need_port) {
        r = rly_hostport_parse(src, size, need_port, &hp, &errstr);
        rs = rly_hostport_split(src, size, need_port, &split, &errstr);
        CHECK(r == 0 || r == -1);
        CHECK(rs == 0 || rs == -1 || rs == -2);
        if (r != 0) {
            check_errstr(errstr, src, size);
            continue;
        }
        check_hostport(&hp, src, size, need_port, 1);
        /* the DNS-name rule only narrows the split */
        CHECK(rs == 0 && same_hostport(&hp, &split));
        /* written back, it parses the same */
        n = format_hostport(out, sizeof(out), &hp);
        CHECK(rly_hostport_parse(out, n, need_port, &again, &errstr) == 0);
        CHECK(again.host_len == hp.host_len && memcmp(again.host, hp.host, hp.host_len) == 0);
        CHECK(again.is_ipv6 == hp.is_ipv6 && again.port == hp.port);
        /* loopback agrees with itself with and without brackets */
        if (hp.is_ipv6)
            CHECK(rly_host_is_loopback(hp.host, hp.host_len) == rly_host_is_loopback(hp.host - 1, hp.host_len + 2));
    }
    if (rs == 0)
        check_hostport(&split, src, size, 1, 0);
    else
        check_errstr(errstr, src, size);
}

static void fuzz_loopback(const char *src, size_t size)
{
    int r = rly_host_is_loopback(src, size);

    CHECK(r == 0 || r == 1);
    /* a loopback host is localhost, 127/8 or ::1, never longer than an IPv6 address in brackets */
    if (r)
        CHECK(size >= 3 && size <= INET6_ADDRSTRLEN + 1 && memchr(src, '\0', size) == NULL);
}

static void fuzz_sockaddr(const char *src, size_t size)
{
    struct sockaddr_storage ss, again;
    socklen_t len, alen;
    const char *errstr = NULL;
    char host[INET6_ADDRSTRLEN], out[OUT_MAX];
    int n;

    if (rly_sockaddr_parse(src, size, &ss, &len, &errstr) != 0) {
        check_errstr(errstr, src, size);
        return;
    }
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
        CHECK(len == sizeof(*sin) && ntohs(sin->sin_port) >= 1);
        CHECK(inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host)) != NULL);
        n = snprintf(out, sizeof(out), "%s:%u", host, (unsigned)ntohs(sin->sin_port));
    } else {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
        CHECK(ss.ss_family == AF_INET6 && len == sizeof(*sin6) && ntohs(sin6->sin6_port) >= 1);
        CHECK(sin6->sin6_scope_id == 0 && sin6->sin6_flowinfo == 0);
        CHECK(inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host)) != NULL);
        n = snprintf(out, sizeof(out), "[%s]:%u", host, (unsigned)ntohs(sin6->sin6_port));
        /* the host check and the socket address check agree, IPv4-mapped addresses aside */
        if (!IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
            CHECK(rly_host_is_loopback(host, strlen(host)) == rly_sockaddr_is_loopback((struct sockaddr *)&ss));
    }
    CHECK(n > 0 && (size_t)n < sizeof(out));
    if (ss.ss_family == AF_INET)
        CHECK(rly_host_is_loopback(host, strlen(host)) == rly_sockaddr_is_loopback((struct sockaddr *)&ss));
    /* written back (the canonical spelling), it parses to the same bytes */
    CHECK(rly_sockaddr_parse(out, (size_t)n, &again, &alen, &errstr) == 0);
    CHECK(alen == len && memcmp(&again, &ss, sizeof(ss)) == 0);
}

static int printable(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i != n; ++i)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

static void fuzz_redis(const char *src, size_t size)
{
    rly_redis_url_t u, again;
    const char *errstr = NULL;
    size_t n = 0, cap = size + OUT_MAX;
    char *out;
    int m;

    if (rly_redis_url_parse(src, size, &u, &errstr) != 0) {
        check_errstr(errstr, src, size);
        return;
    }
    if ((out = malloc(cap)) == NULL)
        return;
    if (u.is_unix) {
        CHECK(within(u.path, u.path_len, src, size) && u.path_len >= 1 && u.path[0] == '/');
        CHECK(u.path_len < sizeof(((struct sockaddr_un *)NULL)->sun_path) && memchr(u.path, '\0', u.path_len) == NULL);
        CHECK(u.username == NULL && u.password == NULL && u.db == 0);
        m = snprintf(out, cap, "unix://%.*s", (int)u.path_len, u.path);
        CHECK(m > 0 && (size_t)m < cap);
        CHECK(rly_redis_url_parse(out, (size_t)m, &again, &errstr) == 0 && again.is_unix);
        CHECK(again.path_len == u.path_len && memcmp(again.path, u.path, u.path_len) == 0);
        free(out);
        return;
    }
    check_hostport(&u.hp, src, size, 1, 1);
    CHECK(u.db <= INT_MAX);
    CHECK(u.username == NULL || u.password != NULL);
    if (u.username != NULL)
        CHECK(within(u.username, u.username_len, src, size) && u.username_len >= 1 && printable(u.username, u.username_len) &&
              memchr(u.username, ':', u.username_len) == NULL);
    if (u.password != NULL)
        CHECK(within(u.password, u.password_len, src, size) && u.password_len >= 1 && printable(u.password, u.password_len));
    /* written back, it parses the same */
    m = snprintf(out, cap, "redis://");
    n = (size_t)m;
    if (u.password != NULL) {
        m = snprintf(out + n, cap - n, "%.*s:%.*s@", u.username != NULL ? (int)u.username_len : 0,
                     u.username != NULL ? u.username : "", (int)u.password_len, u.password);
        CHECK(m > 0 && (size_t)m < cap - n);
        n += (size_t)m;
    }
    n += format_hostport(out + n, cap - n, &u.hp);
    m = snprintf(out + n, cap - n, "/%u", u.db);
    CHECK(m > 0 && (size_t)m < cap - n);
    n += (size_t)m;
    CHECK(rly_redis_url_parse(out, n, &again, &errstr) == 0 && !again.is_unix);
    CHECK(again.hp.host_len == u.hp.host_len && memcmp(again.hp.host, u.hp.host, u.hp.host_len) == 0);
    CHECK(again.hp.port == u.hp.port && again.hp.is_ipv6 == u.hp.is_ipv6 && again.db == u.db);
    CHECK((again.username == NULL) == (u.username == NULL) && (again.password == NULL) == (u.password == NULL));
    if (u.username != NULL)
        CHECK(again.username_len == u.username_len && memcmp(again.username, u.username, u.username_len) == 0);
    if (u.password != NULL)
        CHECK(again.password_len == u.password_len && memcmp(again.password, u.password, u.password_len) == 0);
    free(out);
}

static void fuzz_list(const char *src, size_t size)
{
    rly_hostport_t hp;
    const char *errstr = NULL;
    size_t pos = 0, prev, count = 0;
    int r;

    for (;;) {
        prev = pos;
        r = rly_hostport_list_next(src, size, &pos, &hp, &errstr);
        CHECK(r >= -1 && r <= 1);
        if (r != 1)
            break;
        /* an entry is at least "h:1" and a comma: the walk moves on and ends */
        CHECK(pos >= prev + 4 && pos <= size + 1);
        CHECK(++count <= size / 4 + 1);
        check_hostport(&hp, src, size, 1, 1);
        CHECK(hp.host >= src + prev);
    }
    if (r == 0)
        CHECK(pos == size + 1 && count >= 1);
    else
        check_errstr(errstr, src, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly the input's size, so that ASan sees any read past it */
    char *src = malloc(size != 0 ? size : 1);

    if (src == NULL)
        return 0;
    if (size != 0)
        memcpy(src, data, size);
    fuzz_uint(src, size);
    fuzz_hostport(src, size);
    fuzz_loopback(src, size);
    fuzz_sockaddr(src, size);
    fuzz_redis(src, size);
    fuzz_list(src, size);
    free(src);
    return 0;
}
