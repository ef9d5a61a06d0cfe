/* test_proxy.c: unit tests of the PROXY protocol header parser (common/proxy.c): v1 and v2, every truncation, malformed
 * headers, the maximum lengths, and that no prefix of a valid header is ever refused */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "proxy.h"

static const uint8_t sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* a request that follows the header: never part of it */
static const char after[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

static ssize_t parse(const void *buf, size_t len, struct sockaddr_storage *ss, socklen_t *sslen)
{
    memset(ss, 0xa5, sizeof(*ss));
    *sslen = 12345;
    return rly_proxy_parse(buf, len, ss, sslen);
}

/*
 * buf[0..len) is one whole valid header: every shorter prefix is 0 (and leaves the outputs alone), the whole is len,
 * and so is the whole followed by a request. *ss / *sslen get the result.
 */
static void whole(const void *buf, size_t len, struct sockaddr_storage *ss, socklen_t *sslen)
{
    uint8_t more[RLY_PROXY_HEADER_MAX + sizeof(after)];

    for (size_t n = 0; n != len; ++n) {
        ssize_t r = parse(buf, n, ss, sslen);
        if (r != 0)
            fail_msg("prefix of %zu of %zu bytes: %zd, expected 0", n, len, r);
        assert_int_equal(*sslen, 12345);
    }
    assert_true(len <= RLY_PROXY_HEADER_MAX);
    memcpy(more, buf, len);
    memcpy(more + len, after, sizeof(after) - 1);
    assert_int_equal(parse(more, len + sizeof(after) - 1, ss, sslen), (ssize_t)len);
    assert_int_equal(parse(buf, len, ss, sslen), (ssize_t)len);
}

static void whole_text(const char *s, struct sockaddr_storage *ss, socklen_t *sslen)
{
    whole(s, strlen(s), ss, sslen);
}

/* the header is refused once it is whole, and stays refused with more bytes after it */
static void bad(const void *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    uint8_t more[1024];

    assert_true(len + sizeof(after) <= sizeof(more));
    ssize_t r = parse(buf, len, &ss, &sslen);
    if (r != -1)
        fail_msg("%zu bytes: %zd, expected -1", len, r);
    assert_int_equal(sslen, 12345);
    memcpy(more, buf, len);
    memcpy(more + len, after, sizeof(after) - 1);
    assert_int_equal(parse(more, len + sizeof(after) - 1, &ss, &sslen), -1);
}

static void bad_text(const char *s)
{
    bad(s, strlen(s));
}

/* the shortest prefix of s that is refused: the parser says -1 as early as that */
static size_t refused_at(const char *s, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    for (size_t n = 1; n <= len; ++n)
        if (parse(s, n, &ss, &sslen) == -1)
            return n;
    return 0;
}

static void assert_v4(const struct sockaddr_storage *ss, socklen_t sslen, const char *addr, unsigned port)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
    char text[INET_ADDRSTRLEN];
    assert_int_equal(sslen, sizeof(struct sockaddr_in));
    assert_int_equal(sin->sin_family, AF_INET);
    assert_non_null(inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text)));
    assert_string_equal(text, addr);
    assert_int_equal(ntohs(sin->sin_port), port);
    /* the rest is zeroed */
    static const uint8_t zero[sizeof(sin->sin_zero)] = {0};
    assert_memory_equal(sin->sin_zero, zero, sizeof(zero));
}

static void assert_v6(const struct sockaddr_storage *ss, socklen_t sslen, const char *addr, unsigned port)
{
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
    char text[INET6_ADDRSTRLEN];
    assert_int_equal(sslen, sizeof(struct sockaddr_in6));
    assert_int_equal(sin6->sin6_family, AF_INET6);
    assert_non_null(inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text)));
    assert_string_equal(text, addr);
    assert_int_equal(ntohs(sin6->sin6_port), port);
    assert_int_equal(sin6->sin6_flowinfo, 0);
    assert_int_equal(sin6->sin6_scope_id, 0);
}

/* a v2 header: signature, ver_cmd, fam, the length, then body */
static size_t v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const void *body, size_t bodylen)
{
    memcpy(out, sig, 12);
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (uint8_t)(bodylen >> 8);
    out[15] = (uint8_t)bodylen;
    if (bodylen != 0)
        memcpy(out + 16, body, bodylen);
    return 16 + bodylen;
}

/* TCP over IPv4: 192.0.2.1:56324 -> 198.51.100.7:443 */
static const uint8_t inet_body[12] = {192, 0, 2, 1, 198, 51, 100, 7, 0xdc, 0x04, 0x01, 0xbb};

/* TCP over IPv6: [2001:db8::1]:65535 -> [2001:db8::2]:443 */
static size_t inet6_body(uint8_t *out)
{
    memset(out, 0, 36);
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", out), 1);
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::2", out + 16), 1);
    out[32] = 0xff;
    out[33] = 0xff;
    out[34] = 0x01;
    out[35] = 0xbb;
    return 36;
}

static void test_v1_tcp4(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t sslen;
    whole_text("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", &ss, &sslen);
    assert_v4(&ss, sslen, "192.168.0.1", 56324);
    whole_text("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n", &ss, &sslen);
    assert_v4(&ss, sslen, "0.0.0.0", 0);
    /* the longest TCP4 line: 56 bytes */
    const char *longest = "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
    assert_int_equal(strlen(longest), 56);
    whole_text(longest, &ss, &sslen);
    assert_v4(&ss, sslen, "255.255.255.255", 65535);
}

static void test_v1_tcp6(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t sslen;
    whole_text("PROXY TCP6 2001:db8::1 2001:db8::2 40000 443\r\n", &ss, &sslen);
    assert_v6(&ss, sslen, "2001:db8::1", 40000);
    whole_text("PROXY TCP6 :: ::1 1 2\r\n", &ss, &sslen);
    assert_v6(&ss, sslen, "::", 1);
    whole_text("PROXY TCP6 ::ffff:192.0.2.9 ::1 7 8\r\n", &ss, &sslen);
    assert_v6(&ss, sslen, "::ffff:192.0.2.9", 7);
    whole_text("PROXY TCP6 1:2:3:4:5:6:7:: 1:2:3:4:5:6:1.2.3.4 7 8\r\n", &ss, &sslen);
    assert_v6(&ss, sslen, "1:2:3:4:5:6:7:0", 7);
    whole_text("PROXY TCP6 ABCD:EF01:2345:6789:abcd:ef01:2345:6789 ::2 7 8\r\n", &ss, &sslen);
    assert_v6(&ss, sslen, "abcd:ef01:2345:6789:abcd:ef01:2345:6789", 7);
    /* the longest TCP6 line of the spec: 104 bytes */
    const char *longest =
        "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_int_equal(strlen(longest), 104);
    whole_text(longest, &ss, &sslen);
    assert_v6(&ss, sslen, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
}

static void test_v1_unknown(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t sslen;
    whole_text("PROXY UNKNOWN\r\n", &ss, &sslen);
    assert_int_equal(sslen, 0);
    whole_text("PROXY UNKNOWN \r\n", &ss, &sslen);
    assert_int_equal(sslen, 0);
    /* anything after UNKNOWN up to the CRLF is ignored */
    whole_text("PROXY UNKNOWN 192.0.2.1 not even an address\r\n", &ss, &sslen);
    assert_int_equal(sslen, 0);
    /* the worst case of the spec: 107 bytes, the longest line there is */
    const char *longest =
        "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_int_equal(strlen(longest), 107);
    whole_text(longest, &ss, &sslen);
    assert_int_equal(sslen, 0);
    /* one byte more is refused, as soon as the 107th byte is not the end of a CRLF */
    const char *too_long =
        "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535 \r\n";
    bad_text(too_long);
    /* refused at 106 bytes without a CR: a CRLF from there would end at byte 108 */
    assert_int_equal(refused_at(too_long, strlen(too_long)), 106);
    bad_text("PROXY UNKNOWNX\r\n");
    bad_text("PROXY UNKNOWN\n");
    bad_text("PROXY UNKNOWN x\ny\r\n");
    bad_text("PROXY UNKNOWN x\ry\r\n");
    bad_text("PROXY UNKNOWN\r\r\n");
}

static void test_v1_bad(void **state)
{
    (void)state;
    static const char *const bads[] = {
        "proxy TCP4 192.0.2.1 192.0.2.2 1 2\r\n",       /* case */
        "PROXY  TCP4 192.0.2.1 192.0.2.2 1 2\r\n",      /* two spaces */
        "PROXY TCP4  192.0.2.1 192.0.2.2 1 2\r\n",      /* two spaces */
        "PROXY TCP4 192.0.2.1  192.0.2.2 1 2\r\n",      /* two spaces */
        "PROXY TCP4 192.0.2.1 192.0.2.2  1 2\r\n",      /* two spaces */
        "PROXY TCP4 192.0.2.1 192.0.2.2 1  2\r\n",      /* two spaces */
        "PROXY TCP4 192.0.2.1 192.0.2.2 1 2 \r\n",      /* a trailing space */
        "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n",         /* LF alone */
        "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\r\n",     /* CR alone */
        "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\rX",        /* CR alone */
        "PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n",         /* a port missing */
        "PROXY TCP4 192.0.2.1 192.0.2.2 1 2 3\r\n",     /* a port too many */
        "PROXY TCP4 192.0.2.1 1 2\r\n",                 /* an address missing */
        "PROXY TCP4 192.0.2.1 192.0.2.2 65536 2\r\n",   /* port range */
        "PROXY TCP4 192.0.2.1 192.0.2.2 1 99999\r\n",   /* port range */
        "PROXY TCP4 192.0.2.1 192.0.2.2 01 2\r\n",      /* leading zero */
        "PROXY TCP4 192.0.2.1 192.0.2.2 1 00\r\n",      /* leading zero */
        "PROXY TCP4 192.0.2.1 192.0.2.2 +1 2\r\n",      /* sign */
        "PROXY TCP4 192.0.2.1 192.0.2.2 -1 2\r\n",      /* sign */
        "PROXY TCP4 192.0.2.1 192.0.2.2 0x1 2\r\n",     /* hex */
        "PROXY TCP4 192.0.2.01 192.0.2.2 1 2\r\n",      /* leading zero (octal?) */
        "PROXY TCP4 192.0.2.256 192.0.2.2 1 2\r\n",     /* octet range */
        "PROXY TCP4 192.0.2 192.0.2.2 1 2\r\n",         /* three parts */
        "PROXY TCP4 192.0.2.1.5 192.0.2.2 1 2\r\n",     /* five parts */
        "PROXY TCP4 3221225985 192.0.2.2 1 2\r\n",      /* one number */
        "PROXY TCP4 2001:db8::1 192.0.2.2 1 2\r\n",     /* family */
        "PROXY TCP4 192.0.2.1 2001:db8::1 1 2\r\n",     /* family */
        "PROXY TCP6 192.0.2.1 2001:db8::1 1 2\r\n",     /* family */
        "PROXY TCP6 2001:db8::1 192.0.2.1 1 2\r\n",     /* family */
        "PROXY TCP6 [2001:db8::1] ::1 1 2\r\n",         /* brackets */
        "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",          /* zone */
        "PROXY TCP6 2001:db8:::1 ::1 1 2\r\n",          /* ::: */
        "PROXY TCP6 1::2::3 ::1 1 2\r\n",               /* two :: */
        "PROXY TCP6 12345::1 ::1 1 2\r\n",              /* a group of 5 */
        "PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n",     /* 9 groups */
        "PROXY TCP6 1:2:3:4:5:6:7:8:: ::1 1 2\r\n",     /* :: for nothing */
        "PROXY TCP6 :1::2 ::1 1 2\r\n",                 /* a single leading colon */
        "PROXY TCP6 ::1.2.3 ::1 1 2\r\n",               /* a short IPv4 tail */
        "PROXY TCP6 ::1.2.3.4:5 ::1 1 2\r\n",           /* after an IPv4 tail */
        "PROXY TCP5 192.0.2.1 192.0.2.2 1 2\r\n",       /* protocol */
        "PROXY UDP4 192.0.2.1 192.0.2.2 1 2\r\n",       /* protocol */
        "PROXY TCP4\r\n",                               /* nothing */
        "PROXY\r\n",                                    /* nothing */
        "PROXY TCP4 192.0.2.1\t192.0.2.2 1 2\r\n",      /* tab */
        "PROXYTCP4 192.0.2.1 192.0.2.2 1 2\r\n",        /* no space */
        "GET / HTTP/1.1\r\n",                           /* not a PROXY header at all */
        "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", /* a TLS ClientHello */
    };
    for (size_t i = 0; i != sizeof(bads) / sizeof(bads[0]); ++i)
        bad_text(bads[i]);
    /* a NUL byte inside the line */
    bad("PROXY TCP4 192.0.2.1\0"
        "192.0.2.2 1 2\r\n",
        36);
    bad("PROXY UNKNOWN\0\r\n", 16);
    /* a line whose fields are each fine but that runs past 107 bytes: 45-byte addresses */
    const char *long6 = "PROXY TCP6 0000:0000:0000:0000:0000:ffff:255.255.255.255 0000:0000:0000:0000:0000:ffff:255.255.255.255 "
                        "65535 65535\r\n";
    assert_true(strlen(long6) > 107);
    bad_text(long6);
    assert_int_equal(refused_at(long6, strlen(long6)), 107);
}

/* the parser refuses a doomed beginning at once, not when the CRLF or the 107th byte comes */
static void test_early(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t sslen;
#define C(text, at)                                                                                                                \
    {                                                                                                                              \
        text, sizeof(text) - 1, at                                                                                                 \
    }
    static const struct {
        const char *s;
        size_t len, at;
    } cases[] = {
        C("X", 1),
        C("G", 1),
        C("\x16", 1),
        C("PROXX", 5),
        C("PROXY ", 0),
        C("PROXY X", 7),
        C("PROXY TCP4 ", 0),
        C("PROXY TCP4 1", 0),
        C("PROXY TCP4 1234", 15),
        C("PROXY TCP4 01", 13),
        C("PROXY TCP4 1.2.3.4.", 19),
        C("PROXY TCP4 1.2.3.4 a", 20),
        C("PROXY TCP4 256", 14),
        C("PROXY TCP4 1.2.3.4 1.2.3.4 70000", 32),
        C("PROXY TCP4 1.2.3.4 1.2.3.4 0 0 ", 31),
        C("PROXY TCP4 1.2.3.4 1.2.3.4 1 2\r\r", 32),
        C("PROXY TCP6 g", 12),
        C("PROXY TCP6 :::", 14),
        C("PROXY TCP6 1::2::", 17),
        C("PROXY TCP6 :1", 13),
        C("PROXY TCP6 12345", 16),
        C("PROXY TCP6 ::1.2.3.4:", 21),
        C("PROXY TCP6 ::1.2.3.256", 22),
        C("PROXY TCP6 1:2:3:4:5:6:7:8:9", 28),
        C("PROXY UNKNOWN\n", 14),
        C("PROXY UNKNOWNX", 14),
        C("\r\n\r\n\x01", 5),
        C("\r\n\r\n\x00\r\nQUIT\n\x10", 13),
        C("\r\n\r\n\x00\r\nQUIT\n\x22", 13),
        C("\r\n\r\n\x00\r\nQUIT\n\x21\x41", 14),
        C("\r\n\r\n\x00\r\nQUIT\n\x21\x13", 14),
        C("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x02", 0),
        C("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x02\x09", 16), /* 16 + 521 */
        C("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0b", 16), /* shorter than an IPv4 block */
        C("\r\n\r\n\x00\r\nQUIT\n\x21\x21\x00\x23", 16), /* shorter than an IPv6 block */
        C("\r\n\r\n\x00\r\nQUIT\n\x21\x31\x00\xd7", 16), /* shorter than an AF_UNIX block */
        C("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0e", 16), /* 2 bytes after the block: no room for a TLV */
    };
#undef C
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        const char *s = cases[i].s;
        size_t len = cases[i].len;
        size_t at = refused_at(s, len);
        if (at != cases[i].at)
            fail_msg("case %zu: refused at %zu, expected %zu", i, at, cases[i].at);
        if (at == 0)
            assert_int_equal(parse(s, len, &ss, &sslen), 0);
    }
}

static void test_v2_tcp4(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t sslen;
    uint8_t h[RLY_PROXY_HEADER_MAX];
    size_t n = v2(h, 0x21, 0x11, inet_body, sizeof(inet_body));
    assert_int_equal(n, 28);
    whole(h, n, &ss, &sslen);
    assert_v4(&ss, sslen, "192.0.2.1", 56324);
}

static void test_v2_tcp6(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t sslen;
    uint8_t h[RLY_PROXY_HEADER_MAX], body[36];
    size_t n = v2(h, 0x21, 0x21, body, inet6_body(body));
    assert_int_equal(n, 52);
    whole(h, n, &ss, &sslen);
    assert_v6(&ss, sslen, "2001:db8::1", 65535);
}

static void test_v2_no_address(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t sslen;
    uint8_t h[RLY_PROXY_HEADER_MAX], body[216];
    size_t n;

    /* LOCAL (a health check): no address, whatever the block holds, even a family that is not one */
    n = v2(h, 0x20, 0x00, NULL, 0);
    whole(h, n, &ss, &sslen);
    assert_int_equal(sslen, 0);
    n = v2(h, 0x20, 0x11, inet_body, sizeof(inet_body));
    whole(h, n, &ss, &sslen);
    assert_int_equal(sslen, 0);
    n = v2(h, 0x20, 0xff, "\x01", 1);
    whole(h, n, &ss, &sslen);
    assert_int_equal(sslen, 0);
    /* PROXY over AF_UNSPEC: nothing, or bytes that are ignored */
    n = v2(h, 0x21, 0x00, NULL, 0);
    whole(h, n, &ss, &sslen);
    assert_int_equal(sslen, 0);
    n = v2(h, 0x21, 0x00, "abc", 3);
    whole(h, n, &ss, &sslen);
    assert_int_equal(sslen, 0);
    /* AF_UNIX stream and datagram: 216 bytes of paths, no address for us */
    memset(body, 0, sizeof(body));
    memcpy(body, "/run/haproxy.sock", 17);
    n = v2(h, 0x21, 0x31, body, sizeof(body));
    whole(h, n, &ss, &sslen);
    assert_int_equal(sslen, 0);
    n = v2(h, 0x21, 0x32, body, sizeof(body));
    whole(h, n, &ss, &sslen);
    assert_int_equal(sslen, 0);
    /* UDP over IPv4 or IPv6: a transport this receiver does not serve, taken as UNSPEC (the spec allows it) */
    n = v2(h, 0x21, 0x12, inet_body, sizeof(inet_body));
    whole(h, n, &ss, &sslen);
    assert_int_equal(sslen, 0);
    n = v2(h, 0x21, 0x22, body, inet6_body(body));
    whole(h, n, &ss, &sslen);
    assert_int_equal(sslen, 0);
}

static void test_v2_tlvs(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t sslen;
    uint8_t h[RLY_PROXY_HEADER_MAX], body[RLY_PROXY_HEADER_MAX];
    size_t blen = 0, n;

    memcpy(body, inet_body, 12);
    blen = 12;
    /* ALPN "h2", AUTHORITY "relay.example", an empty NOOP, a CRC32C (not checked), a custom type */
    static const uint8_t tlvs[] = {0x01, 0x00, 0x02, 'h',  '2',  0x02, 0x00, 0x0d, 'r',  'e',  'l',  'a',
                                   'y',  '.',  'e',  'x',  'a',  'm',  'p',  'l',  'e',  0x04, 0x00, 0x00,
                                   0x03, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef, 0xe0, 0x00, 0x01, 0x00};
    memcpy(body + blen, tlvs, sizeof(tlvs));
    blen += sizeof(tlvs);
    n = v2(h, 0x21, 0x11, body, blen);
    whole(h, n, &ss, &sslen);
    assert_v4(&ss, sslen, "192.0.2.1", 56324);

    /* TLVs after an IPv6 block and after an AF_UNIX block */
    blen = inet6_body(body);
    memcpy(body + blen, tlvs, sizeof(tlvs));
    n = v2(h, 0x21, 0x21, body, blen + sizeof(tlvs));
    whole(h, n, &ss, &sslen);
    assert_v6(&ss, sslen, "2001:db8::1", 65535);
    memset(body, 0, 216);
    memcpy(body + 216, tlvs, sizeof(tlvs));
    n = v2(h, 0x21, 0x31, body, 216 + sizeof(tlvs));
    whole(h, n, &ss, &sslen);
    assert_int_equal(sslen, 0);

    /* a TLV that runs past the header's length, one cut after its type, one cut in its length */
    memcpy(body, inet_body, 12);
    memcpy(body + 12, "\x01\x00\x03h2", 5);
    bad(h, v2(h, 0x21, 0x11, body, 17));
    bad(h, v2(h, 0x21, 0x11, body, 13));
    bad(h, v2(h, 0x21, 0x11, body, 14));
    /* a TLV that overruns is refused as soon as its length field is in, before the rest of the header arrives */
    v2(h, 0x21, 0x11, body, 17);
    assert_int_equal(rly_proxy_parse(h, 16 + 15, &ss, &sslen), -1);
    assert_int_equal(rly_proxy_parse(h, 16 + 14, &ss, &sslen), 0);
}

static void test_v2_max(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t sslen;
    uint8_t h[RLY_PROXY_HEADER_MAX + 1], body[RLY_PROXY_HEADER_MAX];
    const size_t maxbody = RLY_PROXY_HEADER_MAX - 16;

    assert_int_equal(RLY_PROXY_HEADER_MAX, 536);
    /* the IPv4 block and one NOOP TLV that fills the header to its maximum */
    memcpy(body, inet_body, 12);
    size_t vlen = maxbody - 12 - 3;
    body[12] = 0x04;
    body[13] = (uint8_t)(vlen >> 8);
    body[14] = (uint8_t)vlen;
    memset(body + 15, 0x5a, vlen);
    size_t n = v2(h, 0x21, 0x11, body, maxbody);
    assert_int_equal(n, RLY_PROXY_HEADER_MAX);
    whole(h, n, &ss, &sslen);
    assert_v4(&ss, sslen, "192.0.2.1", 56324);
    /* one byte more is refused as soon as the length is read */
    body[14] = (uint8_t)(vlen + 1);
    n = v2(h, 0x21, 0x11, body, maxbody + 1);
    assert_int_equal(n, RLY_PROXY_HEADER_MAX + 1);
    bad(h, n);
    assert_int_equal(rly_proxy_parse(h, 16, &ss, &sslen), -1);
    /* LOCAL too: the length caps every header */
    n = v2(h, 0x20, 0x00, body, maxbody + 1);
    assert_int_equal(rly_proxy_parse(h, 16, &ss, &sslen), -1);
    /* the largest length field, 65535 */
    h[14] = h[15] = 0xff;
    assert_int_equal(rly_proxy_parse(h, 16, &ss, &sslen), -1);
}

static void test_v2_bad(void **state)
{
    (void)state;
    uint8_t h[RLY_PROXY_HEADER_MAX];

    bad(h, v2(h, 0x11, 0x11, inet_body, 12)); /* version 1 in the binary form */
    bad(h, v2(h, 0x31, 0x11, inet_body, 12)); /* version 3 */
    bad(h, v2(h, 0x22, 0x11, inet_body, 12)); /* command 2 */
    bad(h, v2(h, 0x2f, 0x11, inet_body, 12)); /* command 15 */
    bad(h, v2(h, 0x21, 0x41, inet_body, 12)); /* family 4 */
    bad(h, v2(h, 0x21, 0x13, inet_body, 12)); /* transport 3 */
    bad(h, v2(h, 0x21, 0x11, inet_body, 11)); /* too short for IPv4 */
    bad(h, v2(h, 0x21, 0x21, inet_body, 12)); /* too short for IPv6 */
    bad(h, v2(h, 0x21, 0x31, inet_body, 12)); /* too short for AF_UNIX */
    /* every byte of the signature matters */
    for (size_t i = 0; i != 12; ++i) {
        size_t n = v2(h, 0x21, 0x11, inet_body, 12);
        h[i] ^= 0x20;
        bad(h, n);
    }
    /* the v1 and v2 starts do not mix */
    bad_text("\r\nPROXY TCP4 1.2.3.4 1.2.3.4 1 2\r\n");
}

/*
 * No prefix of a header is refused when the whole is accepted: the early refusals are sound. Every byte of several valid
 * headers is replaced by characters that matter to the parser; whenever the mutant is accepted, every prefix of it must
 * have said 0; and once a prefix is refused, every longer one is too.
 */
static void test_prefixes_consistent(void **state)
{
    (void)state;
    static const char *const seeds[] = {
        "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",         "PROXY TCP4 1.2.3.4 5.6.7.8 9 10\r\n",
        "PROXY TCP6 2001:db8::1 2001:db8:0:0:1:2:3:4 40000 443\r\n", "PROXY TCP6 ::ffff:1.2.3.4 1:2:3:4:5:6:7:8 1 2\r\n",
        "PROXY TCP6 1:2:3:4:5:6:1.2.3.4 ::1.2.3.4 1 2\r\n",          "PROXY UNKNOWN 1.2.3.4\r\n",
    };
    static const char subst[] = "0123456789abcdefABCDEFxX:. \r\n\tP";
    struct sockaddr_storage ss;
    socklen_t sslen;
    char m[128];
    size_t accepted = 0, refused = 0;

    for (size_t s = 0; s != sizeof(seeds) / sizeof(seeds[0]); ++s) {
        size_t len = strlen(seeds[s]);
        for (size_t pos = 0; pos != len; ++pos) {
            for (size_t k = 0; k <= sizeof(subst) - 1; ++k) {
                memcpy(m, seeds[s], len);
                size_t mlen = len;
                if (k == sizeof(subst) - 1) {
                    /* deletion */
                    memmove(m + pos, m + pos + 1, len - pos - 1);
                    --mlen;
                } else {
                    m[pos] = subst[k];
                }
                int seen_bad = 0;
                ssize_t r = 0;
                for (size_t n = 0; n <= mlen; ++n) {
                    r = parse(m, n, &ss, &sslen);
                    if (seen_bad && r != -1)
                        fail_msg("seed %zu pos %zu subst %zu: prefix %zu is %zd after a refusal", s, pos, k, n, r);
                    if (r == -1)
                        seen_bad = 1;
                    if (r > 0 && (size_t)r != n)
                        fail_msg("seed %zu pos %zu subst %zu: prefix %zu is %zd, before its end", s, pos, k, n, r);
                    if (r > 0)
                        break;
                }
                if (r > 0)
                    ++accepted;
                else if (r == -1)
                    ++refused;
            }
        }
    }
    /* both happened many times: the test looked at something */
    assert_true(accepted > 100);
    assert_true(refused > 1000);
}

/* the same for v2: every byte of a header replaced by a few values, and the length field made to vary */
static void test_v2_prefixes_consistent(void **state)
{
    (void)state;
    static const uint8_t subst[] = {0x00, 0x01, 0x02, 0x03, 0x0c, 0x11, 0x20, 0x21, 0x31, 0xff};
    struct sockaddr_storage ss;
    socklen_t sslen;
    uint8_t seed[64], m[64];
    size_t accepted = 0;

    memcpy(seed, inet_body, 12);
    memcpy(seed + 12, "\x01\x00\x02h2\x04\x00\x00", 8);
    size_t len = v2(m, 0x21, 0x11, seed, 20);
    memcpy(seed, m, len);
    for (size_t pos = 0; pos != len; ++pos) {
        for (size_t k = 0; k != sizeof(subst); ++k) {
            memcpy(m, seed, len);
            m[pos] = subst[k];
            int seen_bad = 0;
            for (size_t n = 0; n <= len; ++n) {
                ssize_t r = parse(m, n, &ss, &sslen);
                if (seen_bad && r != -1)
                    fail_msg("pos %zu subst %zu: prefix %zu is %zd after a refusal", pos, k, n, r);
                seen_bad |= r == -1;
                if (r > 0) {
                    ++accepted;
                    break;
                }
            }
        }
    }
    assert_true(accepted > 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_tcp4),
        cmocka_unit_test(test_v1_tcp6),
        cmocka_unit_test(test_v1_unknown),
        cmocka_unit_test(test_v1_bad),
        cmocka_unit_test(test_early),
        cmocka_unit_test(test_v2_tcp4),
        cmocka_unit_test(test_v2_tcp6),
        cmocka_unit_test(test_v2_no_address),
        cmocka_unit_test(test_v2_tlvs),
        cmocka_unit_test(test_v2_max),
        cmocka_unit_test(test_v2_bad),
        cmocka_unit_test(test_prefixes_consistent),
        cmocka_unit_test(test_v2_prefixes_consistent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
