/* test_proxy.c: the rate limit where the relay is deployed: behind a TCP proxy that sends a PROXY protocol header
 * (--proxy-protocol; a real HAProxy with send-proxy-v2), and behind an HTTP proxy whose X-Forwarded-For / Forwarded
 * is believed only from a --trusted-proxy peer */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "harness.h"
#include "raw.h"

#define LIMITED "/qorus-oauth2-redirect?code=c&state=s" /* a callback: rate-limited, answered 400 (bad state) */

/* a PROXY protocol v2 header for a TCP over IPv4 connection from src:port to 127.0.0.1:443; its length */
static size_t proxy_v2(uint8_t *p, const char *src, uint8_t command)
{
    static const uint8_t sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
    memcpy(p, sig, 12);
    p[12] = 0x20 | command; /* version 2, LOCAL (0) or PROXY (1) */
    p[13] = 0x11;           /* AF_INET, STREAM */
    p[14] = 0;
    p[15] = 12;
    assert_int_equal(inet_pton(AF_INET, src, p + 16), 1);
    assert_int_equal(inet_pton(AF_INET, "127.0.0.1", p + 20), 1);
    p[24] = 0xc3, p[25] = 0x50; /* 50000 */
    p[26] = 0x01, p[27] = 0xbb; /* 443 */
    return 28;
}

static int get_as(const rly_relay_t *r, const char *src)
{
    uint8_t hdr[32];
    size_t n = proxy_v2(hdr, src, 1);
    return rly_raw_get(r->port, NULL, hdr, n, 1, LIMITED, NULL);
}

/* --proxy-protocol: each client is limited on the address its header gives, not on the proxy's */
static void test_proxy_header_limits_per_client(void **state)
{
    (void)state;
    rly_relay_t r;
    static const char *const extra[] = {"--proxy-protocol", "--rate-limit", "3", NULL};
    assert_int_equal(rly_relay_start(&r, extra), 0);
    for (int i = 0; i != 3; ++i)
        assert_int_equal(get_as(&r, "192.0.2.1"), 400);
    assert_int_equal(get_as(&r, "192.0.2.1"), 429);
    /* another client behind the same proxy (the same peer address, 127.0.0.1) is not limited */
    assert_int_equal(get_as(&r, "192.0.2.2"), 400);
    /* version 1, the text form, works the same */
    static const char v1[] = "PROXY TCP4 192.0.2.1 127.0.0.1 50000 443\r\n";
    assert_int_equal(rly_raw_get(r.port, NULL, v1, sizeof(v1) - 1, 1, LIMITED, NULL), 429);
    static const char v1b[] = "PROXY TCP4 192.0.2.3 127.0.0.1 50000 443\r\n";
    assert_int_equal(rly_raw_get(r.port, NULL, v1b, sizeof(v1b) - 1, 1, LIMITED, NULL), 400);
    /* LOCAL (the proxy's own health check): the connection's own peer address counts */
    uint8_t hdr[32];
    size_t n = proxy_v2(hdr, "192.0.2.1", 0);
    assert_int_equal(rly_raw_get(r.port, NULL, hdr, n, 1, "/.well-known/authrelay", NULL), 200);
    /* without a header, or with a broken one, no request is read: the connection is closed */
    long long refused = rly_metric(&r, "authrelay_proxy_refused_total");
    assert_int_equal(rly_raw_get(r.port, NULL, NULL, 0, 1, "/.well-known/authrelay", NULL), 0);
    static const char bad[] = "PROXY TCP4 192.0.2.1 nonsense\r\n";
    assert_int_equal(rly_raw_get(r.port, NULL, bad, sizeof(bad) - 1, 1, "/.well-known/authrelay", NULL), 0);
    assert_true(rly_metric(&r, "authrelay_proxy_refused_total") >= refused + 2);
    assert_int_equal(rly_relay_finish(&r), 0);
}

/* a background process that dies with the test program; its pid */
static pid_t start_process(char *const argv[], const char *log)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        FILE *fp = freopen(log, "w", stdout);
        if (fp == NULL || dup2(fileno(stdout), 2) < 0)
            _exit(126);
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* the shipped HAProxy's way (deploy/compose/haproxy.cfg): TCP mode, TLS passed through, send-proxy-v2; behind it one
 * client (127.0.0.2) is limited and a second (127.0.0.3) is not */
static void test_behind_haproxy(void **state)
{
    (void)state;
    rly_relay_t r;
    static const char *const extra[] = {"--proxy-protocol", "--rate-limit", "3", NULL};
    assert_int_equal(rly_relay_start(&r, extra), 0);
    unsigned short port = rly_free_port();
    char *cfg = rly_strf("%s/haproxy-%u.cfg", rly_tmpdir(), port), *log = rly_strf("%s/haproxy-%u.log", rly_tmpdir(), port);
    FILE *fp = fopen(cfg, "w");
    assert_non_null(fp);
    fprintf(fp,
            "global\n    maxconn 100\n"
            "defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n"
            "frontend public\n    bind 127.0.0.1:%u\n    default_backend relays\n"
            "backend relays\n    server relay1 127.0.0.1:%u send-proxy-v2\n",
            port, r.port);
    fclose(fp);
    char *const argv[] = {"haproxy", "-db", "-f", cfg, NULL};
    pid_t pid = start_process(argv, log);
    int up = 0;
    for (int i = 0; i != 100 && !up; ++i) {
        rly_raw_t c;
        if (rly_raw_open(&c, port, NULL, NULL, 0, 1, 1000) == 0) {
            up = 1;
            rly_raw_close(&c);
        } else {
            usleep(50000);
        }
    }
    if (!up)
        fprintf(stderr, "haproxy did not come up: %s\n", rly_read_file(log, NULL));
    assert_true(up);
    /* the probe above was one request's worth of nothing (no request): the limit is untouched */
    for (int i = 0; i != 3; ++i)
        assert_int_equal(rly_raw_get(port, "127.0.0.2", NULL, 0, 1, LIMITED, NULL), 400);
    assert_int_equal(rly_raw_get(port, "127.0.0.2", NULL, 0, 1, LIMITED, NULL), 429);
    assert_int_equal(rly_raw_get(port, "127.0.0.3", NULL, 0, 1, LIMITED, NULL), 400);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    assert_int_equal(rly_relay_finish(&r), 0);
}

static int get_xff(const rly_relay_t *r, const char *xff)
{
    return rly_raw_get(r->port, NULL, NULL, 0, 0, LIMITED, xff);
}

/* --trusted-proxy: X-Forwarded-For and Forwarded name the client, but only when the peer is a trusted proxy */
static void test_trusted_proxy(void **state)
{
    (void)state;
    rly_relay_t r;
    static const char *const extra[] = {"--plain", "--trusted-proxy", "127.0.0.0/8", "--rate-limit", "3", NULL};
    assert_int_equal(rly_relay_start_dev(&r, extra), 0);
    for (int i = 0; i != 3; ++i)
        assert_int_equal(get_xff(&r, "X-Forwarded-For: 198.51.100.1\r\n"), 400);
    assert_int_equal(get_xff(&r, "X-Forwarded-For: 198.51.100.1\r\n"), 429);
    /* a forged hop to the left of the one the proxy wrote changes nothing */
    assert_int_equal(get_xff(&r, "X-Forwarded-For: 203.0.113.9, 198.51.100.1\r\n"), 429);
    /* another client */
    assert_int_equal(get_xff(&r, "X-Forwarded-For: 198.51.100.2\r\n"), 400);
    assert_int_equal(get_xff(&r, "Forwarded: for=198.51.100.3\r\n"), 400);
    assert_int_equal(get_xff(&r, "Forwarded: for=\"[2001:db8::1]:4711\"\r\n"), 400);
    assert_int_equal(rly_relay_finish(&r), 0);
}

/* from a peer that is not a trusted proxy, the headers are ignored: a client cannot pick its own bucket */
static void test_untrusted_forwarded_ignored(void **state)
{
    (void)state;
    rly_relay_t r;
    static const char *const extra[] = {"--plain", "--trusted-proxy", "10.0.0.0/8", "--rate-limit", "3", NULL};
    assert_int_equal(rly_relay_start_dev(&r, extra), 0);
    static const char *const forged[] = {"X-Forwarded-For: 198.51.100.1\r\n", "X-Forwarded-For: 198.51.100.2\r\n",
                                         "Forwarded: for=198.51.100.3\r\n", "X-Forwarded-For: 198.51.100.4\r\n"};
    for (int i = 0; i != 3; ++i)
        assert_int_equal(get_xff(&r, forged[i]), 400);
    assert_int_equal(get_xff(&r, forged[3]), 429);
    assert_int_equal(rly_relay_finish(&r), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLY_TEST(test_proxy_header_limits_per_client),
        RLY_TEST(test_behind_haproxy),
        RLY_TEST(test_trusted_proxy),
        RLY_TEST(test_untrusted_forwarded_ignored),
    };
    return cmocka_run_group_tests_name("proxy", tests, NULL, NULL);
}
