/* test_forwarded.c: unit tests of common/forwarded.c: the client behind trusted proxies, Forwarded and X-Forwarded-For
 * syntax, and spoofing attempts that must not choose the client's address */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <cmocka.h>

#include "forwarded.h"

#define LINES_MAX 8

/* the trusted blocks of most tests: a private network and a v6 block of proxies */
static const char *const default_trusted[] = {"10.0.0.0/8", "2001:db8:ffff::/48", NULL};

static struct sockaddr_storage peer_of(const char *text)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(text, ':') != NULL) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(5555);
        assert_int_equal(inet_pton(AF_INET6, text, &sin6->sin6_addr), 1);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(5555);
        assert_int_equal(inet_pton(AF_INET, text, &sin->sin_addr), 1);
    }
    return ss;
}

static size_t lines_of(const char *const *texts, rly_str_t *lines)
{
    size_t n = 0;
    for (; texts != NULL && texts[n] != NULL; ++n) {
        assert_true(n < LINES_MAX);
        lines[n].base = texts[n];
        lines[n].len = strlen(texts[n]);
    }
    return n;
}

/* "addr port", or "peer" for -1 */
static const char *client_with(const char *const *trusted_texts, const struct sockaddr *peer, const char *const *fwd,
                               const char *const *xff)
{
    static char result[INET6_ADDRSTRLEN + 16];
    rly_cidr_t trusted[8];
    size_t ntrusted = 0;
    rly_str_t flines[LINES_MAX], xlines[LINES_MAX];
    struct sockaddr_storage out;
    socklen_t outlen = 0;

    for (; trusted_texts[ntrusted] != NULL; ++ntrusted) {
        const char *errstr = NULL;
        assert_int_equal(rly_cidr_parse(trusted_texts[ntrusted], strlen(trusted_texts[ntrusted]), &trusted[ntrusted], &errstr), 0);
    }
    size_t nf = lines_of(fwd, flines), nx = lines_of(xff, xlines);
    memset(&out, 0xa5, sizeof(out));
    int r = rly_forwarded_client(peer, trusted, ntrusted, flines, nf, xlines, nx, &out, &outlen);
    if (r == -1) {
        /* untouched */
        uint8_t pattern[sizeof(out)];
        memset(pattern, 0xa5, sizeof(pattern));
        assert_memory_equal(&out, pattern, sizeof(out));
        return "peer";
    }
    assert_int_equal(r, 0);
    char text[INET6_ADDRSTRLEN];
    if (out.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&out;
        assert_int_equal(outlen, sizeof(*sin));
        assert_non_null(inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text)));
        snprintf(result, sizeof(result), "%s %u", text, ntohs(sin->sin_port));
    } else {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&out;
        assert_int_equal(out.ss_family, AF_INET6);
        assert_int_equal(outlen, sizeof(*sin6));
        assert_int_equal(sin6->sin6_flowinfo, 0);
        assert_int_equal(sin6->sin6_scope_id, 0);
        assert_non_null(inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text)));
        snprintf(result, sizeof(result), "%s %u", text, ntohs(sin6->sin6_port));
    }
    return result;
}

static const char *client(const char *peer, const char *const *fwd, const char *const *xff)
{
    struct sockaddr_storage ss = peer_of(peer);
    return client_with(default_trusted, (const struct sockaddr *)&ss, fwd, xff);
}

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_xff(void **state)
{
    (void)state;
    assert_string_equal(client("10.0.0.1", NULL, L("203.0.113.7")), "203.0.113.7 0");
    assert_string_equal(client("10.0.0.1", NULL, L(" 203.0.113.7 ")), "203.0.113.7 0");
    /* a chain of trusted proxies: the first untrusted from the right */
    assert_string_equal(client("10.0.0.1", NULL, L("203.0.113.7, 10.0.0.5")), "203.0.113.7 0");
    assert_string_equal(client("10.0.0.1", NULL, L("203.0.113.7,10.0.0.5,\t10.1.2.3")), "203.0.113.7 0");
    /* several lines are one list, in order */
    assert_string_equal(client("10.0.0.1", NULL, L("198.51.100.1, 203.0.113.7", "10.0.0.5")), "203.0.113.7 0");
    /* IPv6, bare or bracketed, ports */
    assert_string_equal(client("10.0.0.1", NULL, L("2001:db8:1::7")), "2001:db8:1::7 0");
    assert_string_equal(client("10.0.0.1", NULL, L("[2001:db8:1::7]")), "2001:db8:1::7 0");
    assert_string_equal(client("10.0.0.1", NULL, L("[2001:db8:1::7]:443")), "2001:db8:1::7 443");
    assert_string_equal(client("10.0.0.1", NULL, L("203.0.113.7:8080")), "203.0.113.7 8080");
    assert_string_equal(client("10.0.0.1", NULL, L("::ffff:203.0.113.7")), "::ffff:203.0.113.7 0");
    /* an IPv6 proxy */
    assert_string_equal(client("2001:db8:ffff:1::2", NULL, L("203.0.113.7")), "203.0.113.7 0");
    /* an IPv4-mapped peer is its IPv4 address for the trusted blocks */
    assert_string_equal(client("::ffff:10.0.0.1", NULL, L("203.0.113.7")), "203.0.113.7 0");
    /* empty entries are skipped; nothing at all keeps the peer */
    assert_string_equal(client("10.0.0.1", NULL, L(",203.0.113.7,, ,")), "203.0.113.7 0");
    assert_string_equal(client("10.0.0.1", NULL, L("")), "peer");
    assert_string_equal(client("10.0.0.1", NULL, L(" , ,")), "peer");
    assert_string_equal(client("10.0.0.1", NULL, NULL), "peer");
}

/* every hop trusted: the leftmost, a trusted address, is the client */
static void test_all_trusted(void **state)
{
    (void)state;
    assert_string_equal(client("10.0.0.1", NULL, L("10.0.0.9, 10.0.0.5")), "10.0.0.9 0");
    assert_string_equal(client("10.0.0.1", L("for=10.0.0.9"), NULL), "10.0.0.9 0");
}

/* a hop that is not an address stops the walk on the last address known */
static void test_unknown_hops(void **state)
{
    (void)state;
    assert_string_equal(client("10.0.0.1", NULL, L("203.0.113.7, unknown")), "peer");
    assert_string_equal(client("10.0.0.1", NULL, L("203.0.113.7, unknown, 10.0.0.5")), "10.0.0.5 0");
    assert_string_equal(client("10.0.0.1", NULL, L("203.0.113.7, 203.0.113.300")), "peer");
    assert_string_equal(client("10.0.0.1", NULL, L("203.0.113.7, example.com")), "peer");
    assert_string_equal(client("10.0.0.1", NULL, L("203.0.113.7:99999")), "peer");
    assert_string_equal(client("10.0.0.1", NULL, L("[2001:db8::1")), "peer");
    assert_string_equal(client("10.0.0.1", NULL, L("[2001:db8::1]x")), "peer");
    assert_string_equal(client("10.0.0.1", NULL, L("fe80::1%eth0")), "peer");
    assert_string_equal(client("10.0.0.1", NULL, L("\"203.0.113.7\"")), "peer");
    assert_string_equal(client("10.0.0.1", L("for=unknown"), NULL), "peer");
    assert_string_equal(client("10.0.0.1", L("for=_hidden, for=_SEVKISEK"), NULL), "peer");
    assert_string_equal(client("10.0.0.1", L("for=203.0.113.7, for=_hidden, for=10.0.0.5"), NULL), "10.0.0.5 0");
    assert_string_equal(client("10.0.0.1", L("proto=https;by=10.0.0.1"), NULL), "peer");
    assert_string_equal(client("10.0.0.1", L("for=203.0.113.7, proto=https"), NULL), "peer");
    /* a NUL byte inside an entry makes it no address (inet_pton would stop at it) */
    static const char nul[] = "203.0.113.7\0junk";
    rly_str_t line = {nul, sizeof(nul) - 1};
    rly_cidr_t t;
    const char *errstr;
    assert_int_equal(rly_cidr_parse("10.0.0.0/8", 10, &t, &errstr), 0);
    struct sockaddr_storage p = peer_of("10.0.0.1"), out;
    socklen_t outlen;
    assert_int_equal(rly_forwarded_client((struct sockaddr *)&p, &t, 1, NULL, 0, &line, 1, &out, &outlen), -1);
}

static void test_forwarded(void **state)
{
    (void)state;
    /* RFC 7239's examples */
    assert_string_equal(client("10.0.0.1", L("for=\"_gazonk\""), NULL), "peer");
    assert_string_equal(client("10.0.0.1", L("For=\"[2001:db8:cafe::17]:4711\""), NULL), "2001:db8:cafe::17 4711");
    assert_string_equal(client("10.0.0.1", L("for=192.0.2.60;proto=http;by=203.0.113.43"), NULL), "192.0.2.60 0");
    assert_string_equal(client("10.0.0.1", L("for=192.0.2.43, for=198.51.100.17"), NULL), "198.51.100.17 0");
    /* the same over two lines */
    assert_string_equal(client("10.0.0.1", L("for=192.0.2.43", "for=198.51.100.17"), NULL), "198.51.100.17 0");
    /* trusted hops, pairs in any order, names in any case, OWS around ',' and ';', empty elements and pairs */
    assert_string_equal(client("10.0.0.1", L("for=192.0.2.43;proto=https , by=x;FOR=10.0.0.7 ;host=relay.example"), NULL),
                        "192.0.2.43 0");
    assert_string_equal(client("10.0.0.1", L(",, for=192.0.2.43;;proto=https;, ,"), NULL), "192.0.2.43 0");
    /* quoted nodes, quoted-pairs, obfuscated ports */
    assert_string_equal(client("10.0.0.1", L("for=\"192.0.2.43:8443\""), NULL), "192.0.2.43 8443");
    assert_string_equal(client("10.0.0.1", L("for=\"\\[2001:db8::1\\]:80\""), NULL), "2001:db8::1 80");
    assert_string_equal(client("10.0.0.1", L("for=\"[2001:db8::1]:_p0rt\""), NULL), "2001:db8::1 0");
    assert_string_equal(client("10.0.0.1", L("for=\"[2001:db8::1]\""), NULL), "2001:db8::1 0");
    /* unquoted IPv6 and ports, as some proxies write them */
    assert_string_equal(client("10.0.0.1", L("for=[2001:db8::1]:80"), NULL), "2001:db8::1 80");
    assert_string_equal(client("10.0.0.1", L("for=192.0.2.43:80"), NULL), "192.0.2.43 80");
    /* a quoted value may hold ',' and ';' */
    assert_string_equal(client("10.0.0.1", L("for=192.0.2.43;x=\"a,b;c\\\"d\""), NULL), "192.0.2.43 0");
}

/* malformed lines: the walk stops before them */
static void test_forwarded_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "for=\"192.0.2.43",              /* an unterminated quoted-string */
        "for=\"192.0.2.43\\",            /* ... ending in a backslash */
        "for =192.0.2.43",               /* OWS before '=' */
        "for= 192.0.2.43",               /* OWS after '=' */
        "for=",                          /* no value */
        "for",                           /* no '=' */
        "=192.0.2.43",                   /* no name */
        "for=192.0.2.43;for=192.0.2.44", /* for= twice in one element */
        "for=192.0.2.43 for=192.0.2.44", /* no separator */
        "for=192.0.2.43\"x\"",           /* junk after a token */
        "for=\"192.0.2.43\"x",           /* junk after a quoted-string */
        "f(r=192.0.2.43",                /* not a token */
        "for=\"a\001b\"",                /* a control character */
        "for=192.0.2.43/24",             /* '/' is not in a token */
    };
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        const char *r = client("10.0.0.1", L(bad[i]), NULL);
        if (strcmp(r, "peer") != 0)
            fail_msg("\"%s\" gave %s", bad[i], r);
        /* a malformed line to the left of a good one is never reached */
        r = client("10.0.0.1", L(bad[i], "for=198.51.100.17"), NULL);
        if (strcmp(r, "198.51.100.17 0") != 0)
            fail_msg("\"%s\" then a good line gave %s", bad[i], r);
        /* a malformed line to the right of trusted hops stops there */
        r = client("10.0.0.1", L("for=198.51.100.17, for=10.0.0.3", bad[i]), NULL);
        if (strcmp(r, "peer") != 0)
            fail_msg("a good line then \"%s\" gave %s", bad[i], r);
    }
}

/*
 * The attacks: a client of the trusted proxy (10.0.0.1) at 198.51.100.66 sends headers of its own, which the proxy
 * passes on and appends to. Whatever it sends, its address comes out as 198.51.100.66, or as the proxy's (the peer):
 * never as one it chose.
 */
static void test_spoofing(void **state)
{
    (void)state;
    /* prepending other addresses, untrusted or trusted */
    assert_string_equal(client("10.0.0.1", NULL, L("1.2.3.4, 198.51.100.66")), "198.51.100.66 0");
    assert_string_equal(client("10.0.0.1", NULL, L("10.0.0.77, 198.51.100.66")), "198.51.100.66 0");
    assert_string_equal(client("10.0.0.1", NULL, L("10.0.0.77", "198.51.100.66")), "198.51.100.66 0");
    assert_string_equal(client("10.0.0.1", L("for=10.0.0.77, for=198.51.100.66"), NULL), "198.51.100.66 0");
    assert_string_equal(client("10.0.0.1", L("for=1.2.3.4", "for=198.51.100.66"), NULL), "198.51.100.66 0");
    /* junk, unknowns and obfuscated nodes of its own are left of its hop: never reached */
    assert_string_equal(client("10.0.0.1", NULL, L("unknown, ,garbage, 198.51.100.66")), "198.51.100.66 0");
    assert_string_equal(client("10.0.0.1", L("for=_x;for=y, for=198.51.100.66"), NULL), "peer");
    assert_string_equal(client("10.0.0.1", L("for=_x;for=y", "for=198.51.100.66"), NULL), "198.51.100.66 0");
    /* breaking the syntax of the line the proxy appends to: the proxy's address, not one of the client's */
    assert_string_equal(client("10.0.0.1", L("for=\"1.2.3.4, for=198.51.100.66"), NULL), "peer");
    assert_string_equal(client("10.0.0.1", L("for=1.2.3.4;for=5.6.7.8, for=198.51.100.66"), NULL), "peer");
    /* a quoted-string that swallows the proxy's element: the line does not end its quote, malformed */
    assert_string_equal(client("10.0.0.1", L("for=\"1.2.3.4\\\", for=198.51.100.66"), NULL), "peer");
    /* an address hidden in a comma inside quotes is one value, not a hop */
    assert_string_equal(client("10.0.0.1", L("for=\"1.2.3.4, for=5.6.7.8\", for=198.51.100.66"), NULL), "198.51.100.66 0");
    /* a flood of fake hops: the real one is still the rightmost untrusted */
    {
        enum { N = 5000 };
        char *big = malloc(N * 16 + 32);
        assert_non_null(big);
        size_t n = 0;
        for (int i = 0; i != N; ++i)
            n += (size_t)snprintf(big + n, 20, "10.%d.%d.1, ", (i >> 8) & 255, i & 255);
        snprintf(big + n, 32, "198.51.100.66");
        assert_string_equal(client("10.0.0.1", NULL, L(big)), "198.51.100.66 0");
        free(big);
    }
    /* a client that connects directly is not trusted: its headers say nothing */
    assert_string_equal(client("198.51.100.66", NULL, L("10.0.0.5")), "peer");
    assert_string_equal(client("198.51.100.66", L("for=10.0.0.5"), NULL), "peer");
    assert_string_equal(client("2001:db8:fffe::1", NULL, L("10.0.0.5")), "peer");
}

/* both headers: the proxy writes one, the client forges the other; only an answer both give stands */
static void test_both_headers(void **state)
{
    (void)state;
    /* the proxy writes X-Forwarded-For; the client's Forwarded is passed on untouched */
    assert_string_equal(client("10.0.0.1", L("for=1.2.3.4"), L("198.51.100.66")), "peer");
    /* the proxy writes Forwarded; the client's X-Forwarded-For is passed on untouched */
    assert_string_equal(client("10.0.0.1", L("for=198.51.100.66"), L("1.2.3.4")), "peer");
    assert_string_equal(client("10.0.0.1", L("for=198.51.100.66"), L("unknown")), "peer");
    /* a proxy that writes both, with ports in one: they agree */
    assert_string_equal(client("10.0.0.1", L("for=\"198.51.100.66:4242\""), L("198.51.100.66")), "198.51.100.66 4242");
    assert_string_equal(client("10.0.0.1", L("for=\"[::ffff:198.51.100.66]\""), L("198.51.100.66")), "::ffff:198.51.100.66 0");
    assert_string_equal(client("10.0.0.1", L("for=1.2.3.4, for=198.51.100.66"), L("5.6.7.8, 198.51.100.66")), "198.51.100.66 0");
    /* a header passed as absent (n = 0) is not looked at: the relay whose proxies write only X-Forwarded-For */
    assert_string_equal(client("10.0.0.1", NULL, L("198.51.100.66")), "198.51.100.66 0");
}

/* at most RLY_FORWARDED_HOPS_MAX hops: a longer trusted chain ends at the 32nd hop's address */
static void test_hop_limit(void **state)
{
    (void)state;
    char buf[64 * 16];
    size_t n = 0;
    /* 198.51.100.66, then 40 trusted hops 10.0.0.40 .. 10.0.0.1 */
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "198.51.100.66");
    for (int i = 40; i >= 1; --i)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, ", 10.0.0.%d", i);
    assert_string_equal(client("10.0.0.100", NULL, L(buf)), "10.0.0.32 0");
    /* 31 trusted hops: the client is reached */
    n = (size_t)snprintf(buf, sizeof(buf), "198.51.100.66");
    for (int i = 31; i >= 1; --i)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, ", 10.0.0.%d", i);
    assert_string_equal(client("10.0.0.100", NULL, L(buf)), "198.51.100.66 0");
    /* the same over one line per hop */
    const char *lines[34];
    char texts[33][24];
    snprintf(texts[0], sizeof(texts[0]), "198.51.100.66");
    lines[0] = texts[0];
    for (int i = 1; i != 33; ++i) {
        snprintf(texts[i], sizeof(texts[i]), "for=10.0.0.%d", 33 - i);
        lines[i] = texts[i];
    }
    lines[33] = NULL;
    /* 32 trusted hops after the peer: the 32nd (10.0.0.32) is where it stops; line 0 (not even Forwarded syntax) is
     * never parsed */
    rly_cidr_t t;
    const char *errstr;
    assert_int_equal(rly_cidr_parse("10.0.0.0/8", 10, &t, &errstr), 0);
    rly_str_t fl[34];
    for (int i = 0; i != 33; ++i) {
        fl[i].base = lines[i];
        fl[i].len = strlen(lines[i]);
    }
    struct sockaddr_storage p = peer_of("10.0.0.100"), out;
    socklen_t outlen;
    assert_int_equal(rly_forwarded_client((struct sockaddr *)&p, &t, 1, fl, 33, NULL, 0, &out, &outlen), 0);
    assert_int_equal(((struct sockaddr_in *)&out)->sin_addr.s_addr, htonl(0x0a000020));
}

static void test_peers(void **state)
{
    (void)state;
    /* no trusted blocks: nothing is believed */
    static const char *const none[] = {NULL};
    struct sockaddr_storage p = peer_of("10.0.0.1");
    assert_string_equal(client_with(none, (struct sockaddr *)&p, NULL, L("198.51.100.66")), "peer");
    /* a unix-socket peer */
    struct sockaddr_un un;
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    assert_string_equal(client_with(default_trusted, (struct sockaddr *)&un, NULL, L("198.51.100.66")), "peer");
    /* a block of everything: any peer is trusted, and so is every hop: the leftmost */
    static const char *const all[] = {"0.0.0.0/0", "::/0", NULL};
    assert_string_equal(client_with(all, (struct sockaddr *)&p, NULL, L("1.2.3.4, 198.51.100.66")), "1.2.3.4 0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xff),          cmocka_unit_test(test_all_trusted),         cmocka_unit_test(test_unknown_hops),
        cmocka_unit_test(test_forwarded),    cmocka_unit_test(test_forwarded_malformed), cmocka_unit_test(test_spoofing),
        cmocka_unit_test(test_both_headers), cmocka_unit_test(test_hop_limit),           cmocka_unit_test(test_peers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
