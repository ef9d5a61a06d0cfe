/* proxy.c: the PROXY protocol header (versions 1 and 2) parser: whole, incomplete or invalid, as early as it shows */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include "proxy.h"

#define V1_MAX 107     /* the longest version 1 line, CRLF included */
#define V2_FIXED 16    /* signature, version and command, family and transport, length */
#define V4_TEXT_MAX 15 /* 255.255.255.255 */
#define V6_TEXT_MAX 45 /* ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 */

static const uint8_t v2sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* the result: 1 whole and valid, 0 a valid beginning, -1 cannot become valid */
enum { WHOLE = 1, PARTIAL = 0, BAD = -1 };

static int is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static int is_hex(uint8_t c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int pton(int family, const uint8_t *s, size_t n, void *out)
{
    char text[V6_TEXT_MAX + 1];
    if (n > V6_TEXT_MAX)
        return 0;
    memcpy(text, s, n);
    text[n] = '\0';
    return inet_pton(family, text, out) == 1;
}

/*
 * Could s[0..n) (n <= 15, digits and dots only) begin a dotted IPv4 address? A finished octet that is wrong (above 255,
 * a leading zero) stays wrong whatever follows, so finishing the address at once with the fewest zeros is enough: the
 * current octet as it is, or "0" after a dot, then ".0" for each octet still missing.
 */
static int v4_prefix_ok(const uint8_t *s, size_t n)
{
    static const char *const after_digit[] = {"", ".0", ".0.0", ".0.0.0"};
    static const char *const after_dot[] = {"0", "0.0", "0.0.0", "0.0.0.0"};
    const char *const *tails = n != 0 && is_digit(s[n - 1]) ? after_digit : after_dot;
    uint8_t text[V4_TEXT_MAX + 8], a[4];

    if (n > V4_TEXT_MAX)
        return 0;
    for (size_t i = 0; i != 4; ++i) {
        size_t tl = strlen(tails[i]);
        memcpy(text, s, n);
        memcpy(text + n, tails[i], tl);
        if (n + tl <= V4_TEXT_MAX && pton(AF_INET, text, n + tl, a))
            return 1;
    }
    return 0;
}

/*
 * Could s[0..n) (hex digits, ':' and '.') begin an IPv6 address? Only what is sure to stay wrong is refused (a wrong
 * answer here would refuse a good header): a group of more than 4 hex digits, ":::", a second "::", a single ':' in
 * front, a ':' after an IPv4 tail, an IPv4 tail that cannot be finished, too many groups.
 */
static int v6_prefix_ok(const uint8_t *s, size_t n)
{
    size_t groups = 0, run = 0, last_colon = SIZE_MAX;
    int dbl = 0, dotted = 0;

    if (n > V6_TEXT_MAX)
        return 0;
    if (n >= 2 && s[0] == ':' && s[1] != ':')
        return 0;
    for (size_t i = 0; i != n; ++i) {
        if (s[i] == ':') {
            if (dotted)
                return 0;
            if (i >= 1 && s[i - 1] == ':') {
                if (dbl || (i >= 2 && s[i - 2] == ':'))
                    return 0;
                dbl = 1;
            }
            if (run != 0)
                ++groups;
            run = 0;
            last_colon = i;
        } else if (s[i] == '.') {
            dotted = 1;
            run = 0; /* the IPv4 tail's octets are v4_prefix_ok's business */
        } else if (++run > 4) {
            return 0;
        }
    }
    if (dotted) {
        /* the tail after the last ':' is an IPv4 address (two groups' worth); before it there must be a ':' */
        size_t start = last_colon == SIZE_MAX ? 0 : last_colon + 1;
        if (last_colon == SIZE_MAX || !v4_prefix_ok(s + start, n - start))
            return 0;
        groups += 2;
    } else if (run != 0) {
        ++groups;
    }
    /* "::" stands for at least one group of zeros */
    return groups + (dbl ? 1 : 0) <= 8;
}

/* a port: 0..65535 in decimal, no leading zero; whole says the field is finished */
static int port_ok(const uint8_t *s, size_t n, int whole, uint16_t *port)
{
    unsigned v = 0;
    if (n == 0)
        return !whole;
    if (n > 5 || (s[0] == '0' && n > 1))
        return 0;
    for (size_t i = 0; i != n; ++i) {
        if (!is_digit(s[i]))
            return 0;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return 0;
    *port = (uint16_t)v;
    return 1;
}

static int v1_unknown(const uint8_t *p, size_t len, size_t *hdrlen)
{
    /* p[0..len) is what follows "PROXY UNKNOWN": a CRLF, or a space and anything up to the CRLF */
    size_t max = V1_MAX - 13;
    if (len == 0)
        return PARTIAL;
    if (p[0] != ' ' && p[0] != '\r')
        return BAD;
    for (size_t i = 0; i != len; ++i) {
        if (i + 2 > max)
            return BAD;
        if (p[i] == '\n')
            return BAD;
        if (p[i] == '\r') {
            if (i + 1 == len)
                return PARTIAL;
            if (p[i + 1] != '\n')
                return BAD;
            *hdrlen = 13 + i + 2;
            return WHOLE;
        }
    }
    return len + 2 > max ? BAD : PARTIAL;
}

static int v1_tcp(int family, const uint8_t *p, size_t len, size_t *hdrlen, struct sockaddr_storage *ss, socklen_t *sslen)
{
    /* p[0..len) is what follows "PROXY TCP4 " or "PROXY TCP6 ": src SP dst SP sport SP dport CRLF */
    const size_t max = V1_MAX - 11, addr_max = family == AF_INET ? V4_TEXT_MAX : V6_TEXT_MAX;
    uint8_t srcaddr[16], dstaddr[16];
    uint16_t sport = 0, dport = 0;
    size_t pos = 0;

    for (int field = 0; field != 4; ++field) {
        const uint8_t end = field == 3 ? '\r' : ' ';
        size_t start = pos;
        while (pos != len && p[pos] != end) {
            uint8_t c = p[pos];
            int ok = field >= 2 ? is_digit(c) : family == AF_INET ? is_digit(c) || c == '.' : is_hex(c) || c == ':' || c == '.';
            if (!ok || pos - start >= (field >= 2 ? 5 : addr_max))
                return BAD;
            ++pos;
        }
        const uint8_t *f = p + start;
        size_t n = pos - start;
        if (pos == len) {
            /* the field is not finished yet: could it still be right? */
            if (field >= 2)
                return port_ok(f, n, 0, &sport) ? PARTIAL : BAD;
            if (family == AF_INET)
                return v4_prefix_ok(f, n) ? PARTIAL : BAD;
            return v6_prefix_ok(f, n) ? PARTIAL : BAD;
        }
        switch (field) {
        case 0:
            if (!pton(family, f, n, srcaddr))
                return BAD;
            break;
        case 1:
            if (!pton(family, f, n, dstaddr))
                return BAD;
            break;
        case 2:
            if (!port_ok(f, n, 1, &sport))
                return BAD;
            break;
        case 3:
            if (!port_ok(f, n, 1, &dport))
                return BAD;
            break;
        }
        ++pos; /* the space or the CR */
    }
    if (pos + 1 > max)
        return BAD;
    if (pos == len)
        return PARTIAL;
    if (p[pos] != '\n')
        return BAD;
    *hdrlen = 11 + pos + 1;

    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, srcaddr, 4);
        sin->sin_port = htons(sport);
        *sslen = sizeof(*sin);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, srcaddr, 16);
        sin6->sin6_port = htons(sport);
        *sslen = sizeof(*sin6);
    }
    return WHOLE;
}

static int parse_v1(const uint8_t *p, size_t len, size_t *hdrlen, struct sockaddr_storage *ss, socklen_t *sslen)
{
    static const char *const kinds[] = {"PROXY TCP4 ", "PROXY TCP6 ", "PROXY UNKNOWN"};
    int matching = 0, r;

    for (int k = 0; k != 3; ++k) {
        size_t kl = strlen(kinds[k]), n = len < kl ? len : kl;
        if (memcmp(p, kinds[k], n) != 0)
            continue;
        if (n < kl) {
            matching = 1; /* a beginning of this kind, and maybe of another */
            continue;
        }
        /* the line ends within V1_MAX bytes: what comes after cannot make it valid */
        size_t rest = (len < V1_MAX ? len : V1_MAX) - kl;
        if (k == 2) {
            *sslen = 0;
            r = v1_unknown(p + kl, rest, hdrlen);
        } else {
            r = v1_tcp(k == 0 ? AF_INET : AF_INET6, p + kl, rest, hdrlen, ss, sslen);
        }
        return r == PARTIAL && len >= V1_MAX ? BAD : r;
    }
    return matching ? PARTIAL : BAD;
}

/* v2's address block sizes by family (INET, INET6, UNIX) */
static size_t v2_addr_len(uint8_t fam)
{
    switch (fam >> 4) {
    case 1:
        return 12;
    case 2:
        return 36;
    case 3:
        return 216;
    default:
        return 0;
    }
}

static int parse_v2(const uint8_t *p, size_t len, size_t *hdrlen, struct sockaddr_storage *ss, socklen_t *sslen)
{
    size_t n = len < sizeof(v2sig) ? len : sizeof(v2sig);
    if (memcmp(p, v2sig, n) != 0)
        return BAD;
    if (len <= 12)
        return PARTIAL;
    uint8_t ver_cmd = p[12];
    if ((ver_cmd >> 4) != 2 || (ver_cmd & 0x0f) > 1)
        return BAD;
    int local = (ver_cmd & 0x0f) == 0;
    if (len == 13)
        return PARTIAL;
    uint8_t fam = p[13];
    if (!local && ((fam >> 4) > 3 || (fam & 0x0f) > 2))
        return BAD;
    if (len < V2_FIXED)
        return PARTIAL;
    size_t body = (size_t)p[14] << 8 | p[15];
    if (body > RLY_PROXY_HEADER_MAX - V2_FIXED)
        return BAD;
    size_t total = V2_FIXED + body;

    if (local || (fam & 0x0f) == 0 || (fam >> 4) == 0) {
        /* LOCAL, or an unspecified family or transport: the address block is ignored, whatever it holds */
        if (len < total)
            return PARTIAL;
        *hdrlen = total;
        *sslen = 0;
        return WHOLE;
    }
    size_t alen = v2_addr_len(fam);
    if (body < alen)
        return BAD;
    /* the rest: whole TLVs (type, length, value), checked as far as they have arrived */
    size_t pos = V2_FIXED + alen;
    while (pos < total) {
        if (total - pos < 3)
            return BAD;
        if (len < pos + 3)
            return PARTIAL;
        size_t vlen = (size_t)p[pos + 1] << 8 | p[pos + 2];
        if (vlen > total - pos - 3)
            return BAD;
        pos += 3 + vlen;
    }
    if (len < total)
        return PARTIAL;

    *hdrlen = total;
    if (fam == 0x11) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        memset(ss, 0, sizeof(*ss));
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, p + V2_FIXED, 4);
        memcpy(&sin->sin_port, p + V2_FIXED + 8, 2);
        *sslen = sizeof(*sin);
    } else if (fam == 0x21) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        memset(ss, 0, sizeof(*ss));
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, p + V2_FIXED, 16);
        memcpy(&sin6->sin6_port, p + V2_FIXED + 32, 2);
        *sslen = sizeof(*sin6);
    } else {
        *sslen = 0; /* AF_UNIX, or UDP: the spec lets a receiver take a transport it does not serve as UNSPEC */
    }
    return WHOLE;
}

ssize_t rly_proxy_parse(const void *buf, size_t len, struct sockaddr_storage *src, socklen_t *srclen)
{
    const uint8_t *p = buf;
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    size_t hdrlen = 0;
    int r;

    if (len == 0)
        return 0;
    if (p[0] == 'P')
        r = parse_v1(p, len, &hdrlen, &ss, &sslen);
    else if (p[0] == '\r')
        r = parse_v2(p, len, &hdrlen, &ss, &sslen);
    else
        return -1;
    if (r != WHOLE)
        return r;
    if (sslen != 0)
        *src = ss;
    *srclen = sslen;
    return (ssize_t)hdrlen;
}
