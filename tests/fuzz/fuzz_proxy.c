/* fuzz_proxy.c: libFuzzer target for the PROXY protocol header parser (rly_proxy_parse, common/proxy.c), v1 and v2 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                                                \
    do {                                                                                                                           \
        if (!(cond))                                                                                                               \
            abort();                                                                                                               \
    } while (0)

static const uint8_t v2sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* rly_proxy_parse on exactly data[0..len), copied so that ASan sees a read past len; what it says about *src is checked */
static ssize_t parse(const uint8_t *data, size_t len, struct sockaddr_storage *src, socklen_t *srclen)
{
    uint8_t *copy = malloc(len != 0 ? len : 1);
    struct sockaddr_storage fill;
    ssize_t r;

    CHECK(copy != NULL);
    if (len != 0)
        memcpy(copy, data, len);
    memset(&fill, 0xa5, sizeof(fill));
    memcpy(src, &fill, sizeof(fill));
    *srclen = 0x5a5a;
    r = rly_proxy_parse(copy, len, src, srclen);
    free(copy);
    CHECK(r >= -1 && r <= RLY_PROXY_HEADER_MAX && r <= (ssize_t)len);
    if (r <= 0) {
        /* left as they were */
        CHECK(*srclen == 0x5a5a && memcmp(src, &fill, sizeof(fill)) == 0);
        return r;
    }
    CHECK(*srclen == 0 || *srclen == sizeof(struct sockaddr_in) || *srclen == sizeof(struct sockaddr_in6));
    if (*srclen == sizeof(struct sockaddr_in))
        CHECK(src->ss_family == AF_INET);
    if (*srclen == sizeof(struct sockaddr_in6))
        CHECK(src->ss_family == AF_INET6 && ((struct sockaddr_in6 *)src)->sin6_scope_id == 0 &&
              ((struct sockaddr_in6 *)src)->sin6_flowinfo == 0);
    if (*srclen != 0) {
        /* the rest zeroed */
        for (size_t i = *srclen; i != sizeof(*src); ++i)
            CHECK(((const uint8_t *)src)[i] == 0);
    }
    return r;
}

static int same_src(const struct sockaddr_storage *a, socklen_t alen, const struct sockaddr_storage *b, socklen_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* "PROXY TCP4 src dst sport dport\r\n": the fields split at single spaces; 0 when the line is not of that shape */
static int split_v1(const char *line, size_t len, const char *field[6], size_t flen[6])
{
    size_t i = 0, f = 0, start = 0;

    if (len < 2 || line[len - 2] != '\r' || line[len - 1] != '\n')
        return 0;
    len -= 2;
    for (; i <= len && f != 6; ++i) {
        if (i == len || line[i] == ' ') {
            field[f] = line + start;
            flen[f++] = i - start;
            start = i + 1;
        }
    }
    return f == 6 && i == len + 1;
}

static unsigned port_of(const char *s, size_t n)
{
    unsigned v = 0;

    for (size_t i = 0; i != n; ++i)
        v = v * 10 + (unsigned)(s[i] - '0');
    return v;
}

/* a v1 TCP4/TCP6 line taken: its source is the address and port given, and the line written back with the canonical
 * spelling of the source (inet_ntop) parses to the same */
static void check_v1(const uint8_t *data, size_t n, const struct sockaddr_storage *src, socklen_t srclen)
{
    const char *field[6];
    size_t flen[6];
    char text[INET6_ADDRSTRLEN + 1], line[256];
    uint8_t addr[16];
    struct sockaddr_storage again;
    socklen_t againlen;
    int v6, m;

    CHECK(split_v1((const char *)data, n, field, flen));
    CHECK(flen[0] == 5 && memcmp(field[0], "PROXY", 5) == 0 && flen[1] == 4);
    v6 = memcmp(field[1], "TCP6", 4) == 0;
    CHECK(v6 || memcmp(field[1], "TCP4", 4) == 0);
    CHECK(srclen == (v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)));
    CHECK(flen[2] < sizeof(text) && flen[4] >= 1 && flen[4] <= 5);
    memcpy(text, field[2], flen[2]);
    text[flen[2]] = '\0';
    CHECK(inet_pton(v6 ? AF_INET6 : AF_INET, text, addr) == 1);
    if (v6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)src;
        CHECK(memcmp(&s6->sin6_addr, addr, 16) == 0 && ntohs(s6->sin6_port) == port_of(field[4], flen[4]));
        CHECK(inet_ntop(AF_INET6, &s6->sin6_addr, text, sizeof(text)) != NULL);
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)src;
        CHECK(memcmp(&s4->sin_addr, addr, 4) == 0 && ntohs(s4->sin_port) == port_of(field[4], flen[4]));
        CHECK(inet_ntop(AF_INET, &s4->sin_addr, text, sizeof(text)) != NULL);
        /* strict IPv4 (no leading zeros) has one spelling: the canonical one */
        CHECK(strlen(text) == flen[2] && memcmp(text, field[2], flen[2]) == 0);
    }
    m = snprintf(line, sizeof(line), "PROXY %s %s %.*s %u %.*s\r\n", v6 ? "TCP6" : "TCP4", text, (int)flen[3], field[3],
                 port_of(field[4], flen[4]), (int)flen[5], field[5]);
    CHECK(m > 0 && (size_t)m < sizeof(line));
    CHECK(parse((const uint8_t *)line, (size_t)m, &again, &againlen) == m && same_src(&again, againlen, src, srclen));
}

/* a v2 header taken: 16 bytes and its length; the source of INET / INET6 is at its fixed place; and written back as
 * a v2 header of its own (PROXY, STREAM, no TLV), it parses to the same */
static void check_v2(const uint8_t *data, size_t n, const struct sockaddr_storage *src, socklen_t srclen)
{
    uint8_t hdr[16 + 36] = {0}, cmd = data[12] & 0x0f, fam = data[13] >> 4;
    struct sockaddr_storage again;
    socklen_t againlen;
    size_t hlen;

    CHECK(n >= 16 && n == 16 + ((size_t)data[14] << 8 | data[15]) && data[12] >> 4 == 2);
    if (cmd == 0 || srclen == 0)
        return;
    CHECK(fam == 1 || fam == 2);
    memcpy(hdr, v2sig, 12);
    hdr[12] = 0x21;
    if (fam == 1) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)src;
        CHECK(srclen == sizeof(*s4) && memcmp(&s4->sin_addr, data + 16, 4) == 0 && memcmp(&s4->sin_port, data + 24, 2) == 0);
        hdr[13] = 0x11;
        hdr[15] = 12;
        memcpy(hdr + 16, data + 16, 12);
        hlen = 28;
    } else {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)src;
        CHECK(srclen == sizeof(*s6) && memcmp(&s6->sin6_addr, data + 16, 16) == 0 && memcmp(&s6->sin6_port, data + 48, 2) == 0);
        hdr[13] = 0x21;
        hdr[15] = 36;
        memcpy(hdr + 16, data + 16, 36);
        hlen = 52;
    }
    CHECK(parse(hdr, hlen, &again, &againlen) == (ssize_t)hlen && same_src(&again, againlen, src, srclen));
}

/*
 * The answer to the prefix data[0..k): with the whole input's answer r, a parser that reads a byte at a time says 0 (read
 * more) until it says the header's length r at the very byte that completes it (k == r), the same source, and then stays
 * so; or 0 until it says -1, and then stays so; a caller that has read RLY_PROXY_HEADER_MAX bytes has an answer. *prev is
 * the answer of the last prefix checked, a shorter one (0 for none).
 */
static void check_prefix(const uint8_t *data, size_t k, ssize_t r, const struct sockaddr_storage *src, socklen_t srclen,
                         ssize_t *prev)
{
    struct sockaddr_storage at;
    socklen_t atlen;
    ssize_t f = parse(data, k, &at, &atlen);

    if (*prev != 0)
        CHECK(f == *prev);
    if (r > 0)
        CHECK((k < (size_t)r && f == 0) || (k >= (size_t)r && f == r && same_src(&at, atlen, src, srclen)));
    else
        CHECK(f == 0 || f == r); /* r == 0: every prefix 0; r == -1: 0 until -1 */
    if (k >= RLY_PROXY_HEADER_MAX)
        CHECK(f != 0);
    *prev = f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sockaddr_storage src;
    socklen_t srclen;
    size_t k, upto = size < RLY_PROXY_HEADER_MAX + 4 ? size : RLY_PROXY_HEADER_MAX + 4;
    ssize_t r = parse(data, size, &src, &srclen), prev = 0;

    /*
     * The prefixes, in increasing length: every one of them (up to 540 parses of up to 540 bytes) for an input whose size
     * is a multiple of 8; else the first 24 (where v1 and v2 part), every 29th from an offset the size gives, and those
     * around the answer's byte and RLY_PROXY_HEADER_MAX (about 40 parses). Chosen by the size, not by a byte of the
     * content, which would tie the full sweep to one kind of header.
     */
    for (k = 0; k <= upto; ++k) {
        if (size % 8 != 0 && k >= 24 && k % 29 != size % 29 && !(r > 0 && (k + 1 == (size_t)r || k == (size_t)r)) &&
            k + 1 != RLY_PROXY_HEADER_MAX && k != RLY_PROXY_HEADER_MAX && k != upto)
            continue;
        check_prefix(data, k, r, &src, srclen, &prev);
    }
    CHECK(r == prev);
    if (r <= 0)
        return 0;
    if (data[0] == 'P') {
        CHECK(r <= 107);
        if (srclen != 0)
            check_v1(data, (size_t)r, &src, srclen);
        else
            CHECK(r >= 15 && memcmp(data, "PROXY UNKNOWN", 13) == 0 && data[r - 2] == '\r' && data[r - 1] == '\n');
    } else {
        CHECK(memcmp(data, v2sig, 12) == 0);
        check_v2(data, (size_t)r, &src, srclen);
    }
    return 0;
}
