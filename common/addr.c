/* addr.c: host:port, Redis URLs, loopback checks, bounded integers and socket addresses, parsed once for everyone */
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>
#include "addr.h"

#define PORT_DIGITS_MAX 5
#define LABEL_MAX 63
#define SUN_PATH_SIZE sizeof(((struct sockaddr_un *)NULL)->sun_path)

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_alnum(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* printable ASCII without blanks: what a password or user name in a URL may hold */
static int is_graph(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i != len; ++i)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

int rly_parse_uint(const char *s, size_t len, unsigned long long max, unsigned long long *out)
{
    unsigned long long v = 0;
    size_t i;

    if (len == 0 || len > 20)
        return -1;
    for (i = 0; i != len; ++i) {
        unsigned d = (unsigned)((unsigned char)s[i] - '0');
        if (d > 9 || v > (ULLONG_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

/* 1 to 5 digits, 1..65535 */
static int parse_port(const char *s, size_t len, unsigned short *port)
{
    unsigned long long n;

    if (len > PORT_DIGITS_MAX || rly_parse_uint(s, len, 65535, &n) != 0 || n == 0)
        return -1;
    *port = (unsigned short)n;
    return 0;
}

/* exactly four dotted parts of 1 to 3 digits, each <= 255, no leading zeros (what inet_pton takes); 1 / 0 */
static int parse_ipv4(const char *s, size_t len, struct in_addr *out)
{
    uint32_t addr = 0;
    size_t i = 0;
    int part;

    for (part = 0; part != 4; ++part) {
        size_t start;
        unsigned v = 0;
        if (part != 0) {
            if (i == len || s[i] != '.')
                return 0;
            ++i;
        }
        for (start = i; i != len && is_digit((unsigned char)s[i]) && i - start < 3; ++i)
            v = v * 10 + (unsigned)(s[i] - '0');
        if (i == start || v > 255 || (s[start] == '0' && i - start > 1))
            return 0;
        addr = addr << 8 | v;
    }
    if (i != len)
        return 0;
    if (out != NULL)
        out->s_addr = htonl(addr);
    return 1;
}

/* the text between the brackets: no zone index, no NUL; 1 / 0 */
static int parse_ipv6(const char *s, size_t len, struct in6_addr *out)
{
    char buf[INET6_ADDRSTRLEN];
    struct in6_addr dummy;

    if (len == 0 || len >= sizeof(buf) || memchr(s, '\0', len) != NULL)
        return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return inet_pton(AF_INET6, buf, out != NULL ? out : &dummy) == 1;
}

/* a DNS name (letters of either case, digits, '-' inside labels of 1..63, dots between them) or a dotted IPv4 address */
static int dns_name_ok(const char *s, size_t len)
{
    size_t i, label = 0;
    int digits_only = 1;

    if (len == 0 || len > RLY_AS_HOST_MAX)
        return 0;
    for (i = 0; i != len; ++i) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return 0;
            label = 0;
            continue;
        }
        if (!is_alnum(c) && !(c == '-' && label != 0))
            return 0;
        if (!is_digit(c))
            digits_only = 0;
        if (++label > LABEL_MAX)
            return 0;
    }
    if (label == 0 || s[len - 1] == '-')
        return 0;
    /* all digits and dots: must be a real IPv4 address, not "1.2.3" or "999.0.0.1" */
    return digits_only ? parse_ipv4(s, len, NULL) : 1;
}

/* 0, -1 the host is wrong, -2 the port is (missing, bad, junk before it, or a second ':') */
static int hostport(const char *s, size_t len, int need_port, int check_name, rly_hostport_t *out, const char **errstr)
{
    const char *end, *rest;
    rly_hostport_t hp = {NULL, 0, 0, 0};

    if (len == 0) {
        *errstr = "has no host";
        return -1;
    }
    end = s + len;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL || !parse_ipv6(s + 1, (size_t)(close - s - 1), NULL)) {
            *errstr = "has an invalid [IPv6] address";
            return -1;
        }
        hp.host = s + 1;
        hp.host_len = (size_t)(close - s - 1);
        hp.is_ipv6 = 1;
        rest = close + 1;
    } else {
        const char *colon = memchr(s, ':', len);
        rest = colon != NULL ? colon : end;
        if (!check_name && rest == s) {
            *errstr = "has no host";
            return -1;
        }
        if (colon != NULL && memchr(colon + 1, ':', (size_t)(end - colon - 1)) != NULL) {
            *errstr = "has an IPv6 address outside brackets: write [v6]:port";
            return -2;
        }
        if (check_name && !dns_name_ok(s, (size_t)(rest - s))) {
            *errstr = "has an invalid host name";
            return -1;
        }
        hp.host = s;
        hp.host_len = (size_t)(rest - s);
    }
    if (rest == end) {
        if (need_port) {
            *errstr = "needs a port: host:port";
            return -2;
        }
    } else if (*rest != ':') {
        *errstr = "has junk after the host";
        return -2;
    } else if (parse_port(rest + 1, (size_t)(end - rest - 1), &hp.port) != 0) {
        *errstr = "has an invalid port (1..65535)";
        return -2;
    }
    *out = hp;
    return 0;
}

int rly_hostport_parse(const char *s, size_t len, int need_port, rly_hostport_t *out, const char **errstr)
{
    return hostport(s, len, need_port, 1, out, errstr) == 0 ? 0 : -1;
}

int rly_hostport_split(const char *s, size_t len, int need_port, rly_hostport_t *out, const char **errstr)
{
    return hostport(s, len, need_port, 0, out, errstr);
}

static int is_localhost(const char *s, size_t len)
{
    static const char name[] = "localhost";
    size_t i;

    if (len != sizeof(name) - 1)
        return 0;
    for (i = 0; i != len; ++i) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c) != (unsigned char)name[i])
            return 0;
    }
    return 1;
}

int rly_host_is_loopback(const char *host, size_t len)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (is_localhost(host, len))
        return 1;
    if (parse_ipv4(host, len, &a4))
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        ++host;
        len -= 2;
    }
    return parse_ipv6(host, len, &a6) && IN6_IS_ADDR_LOOPBACK(&a6);
}

int rly_sockaddr_is_loopback(const struct sockaddr *sa)
{
    if (sa == NULL)
        return 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;
        return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;
        if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
            return 1;
        return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) && sin6->sin6_addr.s6_addr[12] == 127;
    }
    return 0;
}

int rly_sockaddr_parse(const char *s, size_t len, struct sockaddr_storage *ss, socklen_t *sslen, const char **errstr)
{
    struct sockaddr_storage tmp;
    const char *end;
    unsigned short port;

    if (len == 0) {
        *errstr = "expected ADDR:PORT, e.g. 127.0.0.1:8443, [::1]:8443 or localhost:8443";
        return -1;
    }
    end = s + len;
    memset(&tmp, 0, sizeof(tmp));
    if (s[0] == '[') {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&tmp;
        const char *close = memchr(s, ']', len);
        if (close == NULL || !parse_ipv6(s + 1, (size_t)(close - s - 1), &sin6->sin6_addr)) {
            *errstr = "invalid IPv6 address: expected [v6]:port, e.g. [::1]:8443";
            return -1;
        }
        if (close + 1 == end || close[1] != ':' || parse_port(close + 2, (size_t)(end - close - 2), &port) != 0) {
            *errstr = "invalid port: expected [v6]:port with a port in 1..65535";
            return -1;
        }
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        *sslen = sizeof(*sin6);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&tmp;
        const char *colon = memrchr(s, ':', len);
        if (colon == NULL) {
            *errstr = "expected ADDR:PORT, e.g. 127.0.0.1:8443, [::1]:8443 or localhost:8443";
            return -1;
        }
        if (memchr(s, ':', (size_t)(colon - s)) != NULL) {
            *errstr = "IPv6 addresses go in brackets: [v6]:port";
            return -1;
        }
        if (is_localhost(s, (size_t)(colon - s))) {
            sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        } else if (!parse_ipv4(s, (size_t)(colon - s), &sin->sin_addr)) {
            *errstr = "the address must be IPv4 a.b.c.d, [IPv6] or localhost (no DNS lookups)";
            return -1;
        }
        if (parse_port(colon + 1, (size_t)(end - colon - 1), &port) != 0) {
            *errstr = "invalid port: expected a port in 1..65535";
            return -1;
        }
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        *sslen = sizeof(*sin);
    }
    *ss = tmp;
    return 0;
}

int rly_redis_url_parse(const char *s, size_t len, rly_redis_url_t *out, const char **errstr)
{
    rly_redis_url_t u;
    const char *p, *end, *at, *slash;

    memset(&u, 0, sizeof(u));
    if (len < 7) {
        *errstr = "must be redis://[:password@]host:port[/db] or unix:///path";
        return -1;
    }
    end = s + len;
    if (memcmp(s, "unix://", 7) == 0) {
        u.is_unix = 1;
        u.path = s + 7;
        u.path_len = len - 7;
        if (u.path_len == 0 || u.path[0] != '/') {
            *errstr = "unix:// needs an absolute path: unix:///run/redis/redis.sock";
            return -1;
        }
        if (u.path_len >= SUN_PATH_SIZE) {
            *errstr = "the unix socket path is too long";
            return -1;
        }
        if (memchr(u.path, '\0', u.path_len) != NULL) {
            *errstr = "the unix socket path has a NUL byte";
            return -1;
        }
        goto Exit;
    }
    if (len >= 9 && memcmp(s, "rediss://", 9) == 0) {
        *errstr = "rediss:// (TLS) is not supported: hiredis 0.14 speaks plain TCP only";
        return -1;
    }
    if (len < 8 || memcmp(s, "redis://", 8) != 0) {
        *errstr = "must be redis://[:password@]host:port[/db] or unix:///path";
        return -1;
    }
    p = s + 8;
    /* the userinfo ends at the last '@': a password may hold '@' and '/' */
    if ((at = memrchr(p, '@', (size_t)(end - p))) != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon == NULL) {
            *errstr = "has a user name but no password: redis://user:password@host:port";
            return -1;
        }
        if (colon != p) {
            u.username = p;
            u.username_len = (size_t)(colon - p);
        }
        u.password = colon + 1;
        u.password_len = (size_t)(at - colon - 1);
        if (u.password_len == 0) {
            *errstr = "has an empty password";
            return -1;
        }
        if (u.username != NULL && !is_graph(u.username, u.username_len)) {
            *errstr = "the user name must be printable ASCII without blanks";
            return -1;
        }
        if (!is_graph(u.password, u.password_len)) {
            *errstr = "the password must be printable ASCII without blanks";
            return -1;
        }
        p = at + 1;
    }
    slash = memchr(p, '/', (size_t)(end - p));
    if (hostport(p, (size_t)((slash != NULL ? slash : end) - p), 1, 1, &u.hp, errstr) != 0)
        return -1;
    if (slash != NULL) {
        unsigned long long db;
        if (rly_parse_uint(slash + 1, (size_t)(end - slash - 1), INT_MAX, &db) != 0) {
            *errstr = "the database after '/' must be a number";
            return -1;
        }
        u.db = (unsigned)db;
    }

Exit:
    *out = u;
    return 0;
}

int rly_hostport_list_next(const char *s, size_t len, size_t *pos, rly_hostport_t *out, const char **errstr)
{
    const char *entry = NULL, *comma;
    size_t n = 0;

    if (*pos > len)
        return 0;
    if (*pos < len) {
        entry = s + *pos;
        comma = memchr(entry, ',', len - *pos);
        n = comma != NULL ? (size_t)(comma - entry) : len - *pos;
    }
    if (n == 0) {
        *errstr = "has an empty address: expected host:port,host:port";
        return -1;
    }
    if (hostport(entry, n, 1, 1, out, errstr) != 0)
        return -1;
    *pos += n + 1; /* past the comma, or past the end: the list is over */
    return 1;
}

int rly_cidr_parse(const char *s, size_t len, rly_cidr_t *out, const char **errstr)
{
    char text[INET6_ADDRSTRLEN + 1];
    const char *slash = memchr(s, '/', len);
    size_t alen = slash != NULL ? (size_t)(slash - s) : len;
    unsigned long long prefix;
    rly_cidr_t c = {0};

    if (alen == 0 || alen >= sizeof(text) || memchr(s, '\0', len) != NULL) {
        *errstr = "expected an address block: a.b.c.d/n or an IPv6 address/n";
        return -1;
    }
    memcpy(text, s, alen);
    text[alen] = '\0';
    if (inet_pton(AF_INET, text, c.addr) == 1) {
        c.family = AF_INET;
        c.prefix = 32;
    } else if (inet_pton(AF_INET6, text, c.addr) == 1) {
        c.family = AF_INET6;
        c.prefix = 128;
    } else {
        *errstr = "expected an address block: a.b.c.d/n or an IPv6 address/n";
        return -1;
    }
    if (slash != NULL) {
        if (rly_parse_uint(slash + 1, len - alen - 1, c.prefix, &prefix) != 0) {
            *errstr = c.family == AF_INET ? "has an invalid prefix length (0..32)" : "has an invalid prefix length (0..128)";
            return -1;
        }
        c.prefix = (unsigned)prefix;
    }
    for (unsigned bit = c.prefix; bit != (c.family == AF_INET ? 32u : 128u); ++bit) {
        if ((c.addr[bit / 8] & (0x80 >> (bit % 8))) != 0) {
            *errstr = "has host bits set after the prefix length";
            return -1;
        }
    }
    *out = c;
    return 0;
}

int rly_cidr_match(const rly_cidr_t *c, const struct sockaddr *sa)
{
    const uint8_t *a;
    int family;

    if (sa->sa_family == AF_INET) {
        a = (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
        family = AF_INET;
    } else if (sa->sa_family == AF_INET6) {
        a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
        family = AF_INET6;
        if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)(const void *)a)) {
            a += 12;
            family = AF_INET;
        }
    } else {
        return 0;
    }
    if (family != c->family)
        return 0;
    size_t full = c->prefix / 8;
    if (memcmp(a, c->addr, full) != 0)
        return 0;
    unsigned rest = c->prefix % 8;
    return rest == 0 || ((a[full] ^ c->addr[full]) & (0xff00 >> rest)) == 0;
}
