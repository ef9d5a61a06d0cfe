/* forwarded.c: the client's address from Forwarded / X-Forwarded-For: a walk from the peer through trusted hops */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include "forwarded.h"

#define NODE_MAX 64 /* "[" 45 "]:" 5 fits; a longer node is not an address */

/* one hop of a list: an address (family AF_INET or AF_INET6) or not (family 0: unknown, obfuscated, not an address) */
typedef struct st_hop_t {
    int family;
    uint8_t addr[16];
    uint16_t port; /* host order; 0 when absent */
} hop_t;

/* the hops of one header line, the last RLY_FORWARDED_HOPS_MAX of them (hop i at ring[i % max]) */
typedef struct st_line_t {
    hop_t ring[RLY_FORWARDED_HOPS_MAX];
    size_t count;
    int bad; /* malformed: its right end is unknown */
} line_t;

static void push(line_t *line, const hop_t *hop)
{
    line->ring[line->count % RLY_FORWARDED_HOPS_MAX] = *hop;
    ++line->count;
}

static int pton(int family, const char *s, size_t n, void *out)
{
    char text[NODE_MAX + 1];
    if (n == 0 || n > NODE_MAX || memchr(s, '\0', n) != NULL)
        return 0;
    memcpy(text, s, n);
    text[n] = '\0';
    return inet_pton(family, text, out) == 1;
}

static int is_obf(const char *s, size_t n)
{
    /* "_" 1*(ALPHA / DIGIT / "." / "_" / "-") */
    if (n < 2 || s[0] != '_')
        return 0;
    for (size_t i = 1; i != n; ++i) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* 1*5DIGIT up to 65535 (into *port), or an obfuscated port (0); else -1 */
static int parse_port(const char *s, size_t n, uint16_t *port)
{
    unsigned v = 0;
    if (is_obf(s, n)) {
        *port = 0;
        return 0;
    }
    if (n == 0 || n > 5)
        return -1;
    for (size_t i = 0; i != n; ++i) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

/* a node: a.b.c.d[:port], [v6][:port], or a bare v6; anything else ("unknown", "_obf", junk) is no address */
static void parse_node(const char *s, size_t n, hop_t *hop)
{
    const char *colon;
    hop_t h = {0};

    if (n != 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (close == NULL || !pton(AF_INET6, s + 1, (size_t)(close - s - 1), h.addr))
            goto Unknown;
        size_t rest = n - (size_t)(close + 1 - s);
        if (rest != 0 && (close[1] != ':' || parse_port(close + 2, rest - 1, &h.port) != 0))
            goto Unknown;
        h.family = AF_INET6;
    } else if ((colon = memchr(s, ':', n)) != NULL && memchr(colon + 1, ':', n - (size_t)(colon + 1 - s)) != NULL) {
        /* two colons or more: a bare IPv6 address, no port */
        if (!pton(AF_INET6, s, n, h.addr))
            goto Unknown;
        h.family = AF_INET6;
    } else {
        size_t hlen = colon != NULL ? (size_t)(colon - s) : n;
        if (!pton(AF_INET, s, hlen, h.addr))
            goto Unknown;
        if (colon != NULL && parse_port(colon + 1, n - hlen - 1, &h.port) != 0)
            goto Unknown;
        h.family = AF_INET;
    }
    *hop = h;
    return;
Unknown:
    memset(hop, 0, sizeof(*hop));
}

static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static size_t skip_ows(const char *s, size_t len, size_t pos)
{
    while (pos < len && (s[pos] == ' ' || s[pos] == '\t'))
        ++pos;
    return pos;
}

/*
 * A Forwarded value: 1#forwarded-element, forwarded-element = [pair] *(";" [pair]), pair = token "=" (token /
 * quoted-string). One hop per non-empty element: its for= node, or no address when it has none.
 */
static void parse_forwarded(const char *s, size_t len, line_t *line)
{
    size_t pos = 0;

    for (;;) {
        pos = skip_ows(s, len, pos);
        if (pos == len)
            return;
        if (s[pos] == ',') {
            ++pos;
            continue;
        }
        hop_t hop = {0};
        int seen_for = 0;
        for (;;) {
            pos = skip_ows(s, len, pos);
            if (pos == len || s[pos] == ',')
                break;
            if (s[pos] == ';') {
                ++pos;
                continue;
            }
            size_t name = pos;
            while (pos < len && is_tchar((unsigned char)s[pos]))
                ++pos;
            size_t name_len = pos - name;
            if (name_len == 0 || pos == len || s[pos] != '=')
                goto Bad;
            ++pos;
            char val[NODE_MAX];
            size_t vlen = 0;
            int fits = 1;
            if (pos < len && s[pos] == '"') {
                ++pos;
                for (;;) {
                    if (pos == len)
                        goto Bad;
                    unsigned char c = (unsigned char)s[pos++];
                    if (c == '"')
                        break;
                    if (c == '\\') {
                        /* quoted-pair: "\" (HTAB / SP / VCHAR / obs-text) */
                        if (pos == len)
                            goto Bad;
                        c = (unsigned char)s[pos++];
                        if (c != '\t' && (c < 0x20 || c == 0x7f))
                            goto Bad;
                    } else if (c != '\t' && (c < 0x20 || c == 0x7f)) {
                        goto Bad; /* qdtext: HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text */
                    }
                    if (vlen < sizeof(val))
                        val[vlen++] = (char)c;
                    else
                        fits = 0;
                }
            } else {
                size_t v = pos;
                while (pos < len && (is_tchar((unsigned char)s[pos]) || s[pos] == ':' || s[pos] == '[' || s[pos] == ']'))
                    ++pos;
                vlen = pos - v;
                if (vlen == 0)
                    goto Bad;
                if (vlen <= sizeof(val))
                    memcpy(val, s + v, vlen);
                else
                    fits = 0;
            }
            if (name_len == 3 && strncasecmp(s + name, "for", 3) == 0) {
                if (seen_for)
                    goto Bad; /* RFC 7239: a parameter occurs at most once in an element */
                seen_for = 1;
                if (fits)
                    parse_node(val, vlen, &hop);
            }
            pos = skip_ows(s, len, pos);
            if (pos < len && s[pos] == ';') {
                ++pos;
                continue;
            }
            if (pos == len || s[pos] == ',')
                break;
            goto Bad;
        }
        push(line, &hop);
    }
Bad:
    line->bad = 1;
}

/* an X-Forwarded-For value: comma-separated nodes, OWS around them, empty entries skipped */
static void parse_xff(const char *s, size_t len, line_t *line)
{
    size_t pos = 0;
    while (pos <= len) {
        const char *comma = memchr(s + pos, ',', len - pos);
        size_t end = comma != NULL ? (size_t)(comma - s) : len, start = skip_ows(s, end, pos), stop = end;
        while (stop > start && (s[stop - 1] == ' ' || s[stop - 1] == '\t'))
            --stop;
        if (stop != start) {
            hop_t hop = {0};
            parse_node(s + start, stop - start, &hop);
            push(line, &hop);
        }
        pos = end + 1;
    }
}

static socklen_t hop_to_sockaddr(const hop_t *hop, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (hop->family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, hop->addr, 4);
        sin->sin_port = htons(hop->port);
        return sizeof(*sin);
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    memcpy(&sin6->sin6_addr, hop->addr, 16);
    sin6->sin6_port = htons(hop->port);
    return sizeof(*sin6);
}

static int is_trusted(const hop_t *hop, const rly_cidr_t *trusted, size_t ntrusted)
{
    struct sockaddr_storage ss;
    hop_to_sockaddr(hop, &ss);
    for (size_t i = 0; i != ntrusted; ++i)
        if (rly_cidr_match(&trusted[i], (const struct sockaddr *)&ss))
            return 1;
    return 0;
}

/* the walk over one header's lines from peer; *end is where it stopped; the number of hops taken */
static size_t walk(const hop_t *peer, const rly_cidr_t *trusted, size_t ntrusted, const rly_str_t *lines, size_t nlines,
                   int is_forwarded, hop_t *end)
{
    line_t line;
    size_t steps = 0;

    *end = *peer;
    for (size_t l = nlines; l-- != 0;) {
        if (steps == RLY_FORWARDED_HOPS_MAX || !is_trusted(end, trusted, ntrusted))
            return steps;
        line.count = 0;
        line.bad = 0;
        if (is_forwarded)
            parse_forwarded(lines[l].base, lines[l].len, &line);
        else
            parse_xff(lines[l].base, lines[l].len, &line);
        if (line.bad)
            return steps;
        size_t avail = line.count < RLY_FORWARDED_HOPS_MAX ? line.count : RLY_FORWARDED_HOPS_MAX;
        for (size_t j = 0; j != avail; ++j) {
            if (steps == RLY_FORWARDED_HOPS_MAX || !is_trusted(end, trusted, ntrusted))
                return steps;
            const hop_t *hop = &line.ring[(line.count - 1 - j) % RLY_FORWARDED_HOPS_MAX];
            if (hop->family == 0)
                return steps;
            *end = *hop;
            ++steps;
        }
    }
    return steps;
}

/* the address as IPv4 when it is IPv4-mapped: 4 or 16 bytes at *a */
static size_t normal_addr(const hop_t *hop, const uint8_t **a)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (hop->family == AF_INET) {
        *a = hop->addr;
        return 4;
    }
    if (memcmp(hop->addr, v4mapped, 12) == 0) {
        *a = hop->addr + 12;
        return 4;
    }
    *a = hop->addr;
    return 16;
}

static int same_addr(const hop_t *x, const hop_t *y)
{
    const uint8_t *a, *b;
    size_t alen = normal_addr(x, &a), blen = normal_addr(y, &b);
    return alen == blen && memcmp(a, b, alen) == 0;
}

int rly_forwarded_client(const struct sockaddr *peer, const rly_cidr_t *trusted, size_t ntrusted, const rly_str_t *forwarded,
                         size_t nforwarded, const rly_str_t *xff, size_t nxff, struct sockaddr_storage *out, socklen_t *outlen)
{
    hop_t p = {0}, fend, xend;
    size_t fsteps = 0, xsteps = 0;

    if (peer == NULL || (nforwarded == 0 && nxff == 0))
        return -1;
    if (peer->sa_family == AF_INET) {
        p.family = AF_INET;
        memcpy(p.addr, &((const struct sockaddr_in *)(const void *)peer)->sin_addr, 4);
    } else if (peer->sa_family == AF_INET6) {
        p.family = AF_INET6;
        memcpy(p.addr, &((const struct sockaddr_in6 *)(const void *)peer)->sin6_addr, 16);
    } else {
        return -1;
    }
    if (!is_trusted(&p, trusted, ntrusted))
        return -1;
    if (nforwarded != 0)
        fsteps = walk(&p, trusted, ntrusted, forwarded, nforwarded, 1, &fend);
    if (nxff != 0)
        xsteps = walk(&p, trusted, ntrusted, xff, nxff, 0, &xend);

    const hop_t *end;
    if (nforwarded != 0 && nxff != 0) {
        /* both: a forgery of one of them by the client; only an answer both give is taken */
        if (fsteps == 0 || xsteps == 0 || !same_addr(&fend, &xend))
            return -1;
        end = &fend;
    } else if (nforwarded != 0) {
        if (fsteps == 0)
            return -1;
        end = &fend;
    } else {
        if (xsteps == 0)
            return -1;
        end = &xend;
    }
    *outlen = hop_to_sockaddr(end, out);
    return 0;
}
