/* addr.h: the small parsers config, the Redis connection and the client share: host:port, Redis URLs, loopback, integers */
#ifndef RLY_ADDR_H
#define RLY_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "rly.h"

/*
 * Parsers know no I/O and never allocate: what they return points into their input (borrowed, as long as the input
 * lives). Errors are fixed texts (*errstr), never a piece of the input: a URL may carry a password. Input is (ptr, len):
 * a NUL byte inside it is never accepted as part of a host, port, number, path or password. On failure *out is left as
 * it was.
 */

/* decimal digits only (no sign, blank or prefix), 1 to 20 of them (leading zeros count), value <= max; 0 / -1 */
int rly_parse_uint(const char *s, size_t len, unsigned long long max, unsigned long long *out);

/* a host and an optional port, as in a URL's authority (without userinfo) */
typedef struct st_rly_hostport_t {
    const char *host; /* borrowed; for IPv6 the text between the brackets, without them */
    size_t host_len;
    int is_ipv6;         /* host was written [v6] */
    unsigned short port; /* 0 when absent */
} rly_hostport_t;

/*
 * host[:port] where host is a DNS name (labels of 1..63 letters, digits and '-', at most RLY_AS_HOST_MAX bytes, no
 * trailing dot; all digits and dots must be a dotted IPv4 address), a dotted IPv4 address or an [IPv6] address (no zone
 * index); a port is 1 to 5 digits, 1..65535, and required when need_port.
 * 0, or -1 with *errstr saying what is wrong: "has no host", "has an invalid [IPv6] address", "has an IPv6 address
 * outside brackets: write [v6]:port", "has an invalid host name", "needs a port: host:port", "has junk after the host",
 * "has an invalid port (1..65535)".
 */
int rly_hostport_parse(const char *s, size_t len, int need_port, rly_hostport_t *out, const char **errstr);
/*
 * The same split without the DNS-name rule (an [IPv6] address and the port are still checked; a host that is not
 * bracketed is only required to be non-empty and free of ':'): for callers with a name rule of their own (URLs, whose
 * reg-names also take '_'). 0; -1 the host is wrong (empty, a bad [IPv6]); -2 the port is (missing when needed,
 * bad, junk after ']', a second ':'); *errstr as above.
 */
int rly_hostport_split(const char *s, size_t len, int need_port, rly_hostport_t *out, const char **errstr);

/* 1 if host is "localhost" (any case), in 127.0.0.0/8 (dotted, four parts, no leading zeros), or ::1 (any spelling,
 * written with or without brackets; no zone index); else 0 */
int rly_host_is_loopback(const char *host, size_t len);
/* 1 if the socket address is IPv4 127.0.0.0/8, IPv6 ::1 or an IPv4-mapped 127.0.0.0/8; else 0 (also for NULL) */
int rly_sockaddr_is_loopback(const struct sockaddr *sa);

/*
 * "a.b.c.d:port", "[v6]:port" or "localhost:port" (127.0.0.1; no other name is resolved) into a socket address (the
 * rest of *ss zeroed). 0, or -1 with *errstr.
 */
int rly_sockaddr_parse(const char *s, size_t len, struct sockaddr_storage *ss, socklen_t *sslen, const char **errstr);

/* a Redis endpoint: redis://[[user]:password@]host:port[/db] or unix:///absolute/path */
typedef struct st_rly_redis_url_t {
    int is_unix;
    const char *path; /* unix: the socket path (borrowed, not NUL-terminated) */
    size_t path_len;
    rly_hostport_t hp;    /* redis: host and port */
    const char *username; /* NULL when absent; borrowed */
    size_t username_len;
    const char *password; /* NULL when absent; borrowed */
    size_t password_len;
    unsigned db; /* 0 when absent */
} rly_redis_url_t;

/*
 * 0, or -1 with *errstr (rediss:// is refused: hiredis 0.14 has no TLS). The userinfo ends at the last '@' and splits at
 * its first ':'; user name and password are printable ASCII without blanks, the password non-empty; "user@" without a
 * password is refused. The unix path is shorter than sun_path; db is 0..INT_MAX.
 */
int rly_redis_url_parse(const char *s, size_t len, rly_redis_url_t *out, const char **errstr);

/*
 * The next "host:port" of a comma-separated list (Sentinel addresses): *pos is the offset to start at (0 first) and is
 * moved past the entry and its comma. 1 an entry was parsed, 0 the list is over, -1 a bad entry (with *errstr; an
 * empty entry, such as a trailing comma or an empty list, is "has an empty address: expected host:port,host:port").
 */
int rly_hostport_list_next(const char *s, size_t len, size_t *pos, rly_hostport_t *out, const char **errstr);

/* an address block: a.b.c.d/n (n 0..32) or v6/n (n 0..128, no brackets); a bare address is a block of one */
typedef struct st_rly_cidr_t {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* the network, host bits zero; IPv4 in the first 4 bytes */
    unsigned prefix;
} rly_cidr_t;

/* 0, or -1 with *errstr; host bits that are set are refused ("10.0.0.1/8" is a typo for a host or for 10.0.0.0/8) */
int rly_cidr_parse(const char *s, size_t len, rly_cidr_t *out, const char **errstr);
/* 1 if the socket address lies in the block (an IPv4-mapped IPv6 address is taken as its IPv4 address); else 0 */
int rly_cidr_match(const rly_cidr_t *c, const struct sockaddr *sa);

#endif
