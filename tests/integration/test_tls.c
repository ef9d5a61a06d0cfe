/* test_tls.c: what the public listener's TLS offers (key exchange groups, no per-process tickets) and that the admin
 * listener speaks plain HTTP/1.1 only, checked with openssl s_client and curl against the real binary */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"

static rly_relay_t relay;

static int group_setup(void **state)
{
    (void)state;
    return rly_relay_start(&relay, NULL);
}

static int group_teardown(void **state)
{
    (void)state;
    return rly_relay_finish(&relay);
}

/* openssl s_client against the relay with extra arguments; its stdout and stderr together (arena) */
static char *s_client(const char *const *extra)
{
    const char *connect = rly_strf("127.0.0.1:%u", (unsigned)relay.port);
    char *argv[16] = {"openssl", "s_client", "-connect", (char *)connect, "-servername", "localhost"};
    size_t n = 6;
    for (size_t i = 0; extra[i] != NULL && n < 14; ++i)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    char *out = NULL, *err = NULL;
    (void)rly_run(argv, 15000, &out, &err); /* exit status: openssl's own, not what is tested */
    return rly_strf("%s\n%s", out != NULL ? out : "", err != NULL ? err : "");
}

/* a client that offers only finite-field groups gets no handshake (CVE-2002-20001: ~150 ms of CPU each) */
static void test_ffdhe_only_refused(void **state)
{
    (void)state;
    static const char *const groups[] = {"ffdhe2048", "ffdhe8192"};
    for (size_t i = 0; i != sizeof(groups) / sizeof(groups[0]); ++i) {
        const char *tls13[] = {"-tls1_3", "-groups", groups[i], NULL};
        char *out = s_client(tls13);
        if (strstr(out, "Cipher is (NONE)") == NULL)
            fail_msg("a TLS 1.3 client offering only %s got a handshake:\n%.2000s", groups[i], out);
    }
    /* and the groups the relay does take */
    static const char *const good[] = {"X25519", "P-256", "P-384"};
    for (size_t i = 0; i != sizeof(good) / sizeof(good[0]); ++i) {
        const char *args[] = {"-tls1_3", "-groups", good[i], NULL};
        char *out = s_client(args);
        if (strstr(out, "Cipher is TLS_") == NULL)
            fail_msg("a TLS 1.3 client offering %s got no handshake:\n%.2000s", good[i], out);
    }
}

/* TLS 1.2: no session ticket (one under a per-process random key would tie resumption to a replica) */
static void test_no_tls12_ticket(void **state)
{
    (void)state;
    const char *args[] = {"-tls1_2", NULL};
    char *out = s_client(args);
    if (strstr(out, "Protocol  : TLSv1.2") == NULL)
        fail_msg("no TLS 1.2 handshake:\n%.2000s", out);
    if (strstr(out, "TLS session ticket:") != NULL)
        fail_msg("the relay issued a TLS 1.2 session ticket:\n%.2000s", out);
}

/* the admin listener does not upgrade to h2c (HTTP/2 there would bypass the reset guard) */
static void test_admin_no_h2c(void **state)
{
    (void)state;
    const char *hdrs[] = {"Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA", NULL};
    rly_request_t q = {.url = rly_admin_url(&relay, "/healthz"), .headers = hdrs};
    rly_response_t *res = rly_do(&q);
    assert_int_equal(res->status, 200);
    assert_int_equal(res->version, RLY_H1);
    assert_null(rly_header(res, "Upgrade"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLY_TEST(test_ffdhe_only_refused),
        RLY_TEST(test_no_tls12_ticket),
        RLY_TEST(test_admin_no_h2c),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
