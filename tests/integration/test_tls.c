/* test_tls.c: what the public listener's TLS offers (key exchange groups, TLS 1.3 session tickets that resume on every
 * replica sharing the key file and on no other, no TLS 1.2 tickets) and that the admin listener speaks plain HTTP/1.1
 * only, checked with openssl s_client and curl against the real binary */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "harness.h"

static rly_relay_t relay;            /* its own key file */
static rly_relay_t relay_a, relay_b; /* two replicas sharing one key file */
static char shared_keys[320];

static int group_setup(void **state)
{
    (void)state;
    if (rly_test_keygen(shared_keys, sizeof(shared_keys)) != 0)
        return -1;
    return rly_relay_start(&relay, NULL) != 0 || rly_relay_start_keys(&relay_a, shared_keys, NULL) != 0 ||
                   rly_relay_start_keys(&relay_b, shared_keys, NULL) != 0
               ? -1
               : 0;
}

static int group_teardown(void **state)
{
    (void)state;
    int a = rly_relay_finish(&relay_a), b = rly_relay_finish(&relay_b);
    return rly_relay_finish(&relay) != 0 || a != 0 || b != 0 ? -1 : 0;
}

/* openssl s_client against relay r with extra arguments; its stdout and stderr together (arena). With stdin /dev/null it
 * leaves right after the handshake, before TLS 1.3 tickets arrive. */
static char *s_client_at(const rly_relay_t *r, const char *const *extra)
{
    const char *connect = rly_strf("127.0.0.1:%u", (unsigned)r->port);
    char *argv[16] = {"openssl", "s_client", "-connect", (char *)connect, "-servername", "localhost"};
    size_t n = 6;
    for (size_t i = 0; extra[i] != NULL && n < 14; ++i)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    char *out = NULL, *err = NULL;
    (void)rly_run(argv, 15000, &out, &err); /* exit status: openssl's own, not what is tested */
    return rly_strf("%s\n%s", out != NULL ? out : "", err != NULL ? err : "");
}

static char *s_client(const char *const *extra)
{
    return s_client_at(&relay, extra);
}

/* TLS 1.3 with s_client that sends one HTTP/1.1 request (Connection: close) and reads until the relay closes, so the
 * tickets sent after the handshake are read; sess_in (may be NULL): the session to offer; sess_out: where the last
 * ticket's session goes (may be NULL). Output as s_client_at. */
static char *s_client_tls13(const rly_relay_t *r, const char *sess_in, const char *sess_out)
{
    char *argv[16] = {"sh", "-c",
                      "printf 'GET / HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' | "
                      "exec openssl s_client -ign_eof -tls1_3 -servername localhost -connect \"$0\" \"$@\"",
                      (char *)rly_strf("127.0.0.1:%u", (unsigned)r->port)};
    size_t n = 4;
    if (sess_in != NULL) {
        argv[n++] = "-sess_in";
        argv[n++] = (char *)sess_in;
    }
    if (sess_out != NULL) {
        argv[n++] = "-sess_out";
        argv[n++] = (char *)sess_out;
    }
    argv[n] = NULL;
    char *out = NULL, *err = NULL;
    (void)rly_run(argv, 15000, &out, &err);
    return rly_strf("%s\n%s", out != NULL ? out : "", err != NULL ? err : "");
}

static int count(const char *haystack, const char *needle)
{
    int n = 0;
    for (const char *p = haystack; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        ++n;
    return n;
}

/* a new session file name in the process temporary directory */
static const char *sess_file(void)
{
    static int next;
    return rly_strf("%s/tls-session-%d.pem", rly_tmpdir(), next++);
}

/* a full TLS 1.3 handshake with r; its last ticket's session saved to a new file, whose name is returned */
static const char *new_session(const rly_relay_t *r)
{
    const char *path = sess_file();
    char *out = s_client_tls13(r, NULL, path);
    if (strstr(out, "New, TLSv1.3") == NULL || count(out, "Post-Handshake New Session Ticket arrived") != 2 ||
        access(path, R_OK) != 0)
        fail_msg("no full TLS 1.3 handshake with two tickets on port %u:\n%.3000s", (unsigned)r->port, out);
    return path;
}

/* 1 if the session in path resumes on r (fails on anything but a TLS 1.3 handshake, resumed or not) */
static int resumes(const rly_relay_t *r, const char *path, char **outp)
{
    char *out = s_client_tls13(r, path, NULL);
    if (outp != NULL)
        *outp = out;
    if (strstr(out, "Reused, TLSv1.3") != NULL)
        return 1;
    if (strstr(out, "New, TLSv1.3") == NULL || strstr(out, "HTTP/1.1 ") == NULL)
        fail_msg("no TLS 1.3 handshake and answer on port %u:\n%.3000s", (unsigned)r->port, out);
    return 0;
}

/* sends SIGHUP and waits until one more "reload" line than before appears (5 s) */
static void hup(rly_relay_t *r)
{
    int before = count(rly_relay_stdout(r, NULL), "\"event\":\"reload\"");
    rly_relay_signal(r, SIGHUP);
    for (int i = 0; i != 100 && count(rly_relay_stdout(r, NULL), "\"event\":\"reload\"") == before; ++i)
        usleep(50000);
    assert_int_equal(count(rly_relay_stdout(r, NULL), "\"event\":\"reload\""), before + 1);
    assert_non_null(strstr(rly_relay_stdout(r, NULL), "reloaded keys and certificate"));
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

/* TLS 1.3: two tickets per full handshake, valid an hour, that resume on the same relay; a resumption under the
 * current key brings no new ticket */
static void test_tls13_tickets(void **state)
{
    (void)state;
    const char *path = sess_file();
    char *out = s_client_tls13(&relay, NULL, path);
    assert_non_null(strstr(out, "New, TLSv1.3"));
    if (count(out, "Post-Handshake New Session Ticket arrived") != 2)
        fail_msg("not two tickets:\n%.3000s", out);
    if (count(out, "TLS session ticket lifetime hint: 3600 (seconds)") != 2)
        fail_msg("not an hour's lifetime:\n%.3000s", out);
    if (!resumes(&relay, path, &out))
        fail_msg("the relay's own ticket did not resume:\n%.3000s", out);
    assert_int_equal(count(out, "Post-Handshake New Session Ticket arrived"), 0);
}

/* TLS 1.2: no ticket extension, no ticket, no session id cache: every connection is a full handshake (a TLS 1.2 ticket
 * carries the master secret, so a key file read later would open recorded traffic) */
static void test_no_tls12_ticket(void **state)
{
    (void)state;
    const char *args[] = {"-tls1_2", "-tlsextdebug", "-reconnect", NULL};
    char *out = s_client(args);
    if (strstr(out, "Protocol  : TLSv1.2") == NULL)
        fail_msg("no TLS 1.2 handshake:\n%.2000s", out);
    if (strstr(out, "TLS session ticket:") != NULL || strstr(out, "session ticket\" (id=35)") != NULL)
        fail_msg("the relay offered a TLS 1.2 session ticket:\n%.3000s", out);
    if (strstr(out, "Reused, TLSv1.2") != NULL || count(out, "New, TLSv1.2") != 6)
        fail_msg("a TLS 1.2 session was resumed:\n%.3000s", out);
}

/* a ticket from replica A resumes on replica B (same key file) and the other way, not on a relay with another key file */
static void test_resume_across_replicas(void **state)
{
    (void)state;
    char *out;
    if (!resumes(&relay_b, new_session(&relay_a), &out))
        fail_msg("A's ticket did not resume on B:\n%.3000s", out);
    if (!resumes(&relay_a, new_session(&relay_b), &out))
        fail_msg("B's ticket did not resume on A:\n%.3000s", out);
    if (resumes(&relay, new_session(&relay_a), &out))
        fail_msg("A's ticket resumed on a relay with another key file:\n%.3000s", out);
    if (resumes(&relay_a, new_session(&relay), &out))
        fail_msg("another key file's ticket resumed on A:\n%.3000s", out);
}

/* --dev (ephemeral keys): tickets resume on the same process only */
static void test_dev_tickets(void **state)
{
    (void)state;
    rly_relay_t d1, d2;
    char *out;
    assert_int_equal(rly_relay_start_dev(&d1, NULL), 0);
    assert_int_equal(rly_relay_start_dev(&d2, NULL), 0);
    const char *path = new_session(&d1);
    int other = resumes(&d2, path, NULL), own = resumes(&d1, path, &out);
    assert_int_equal(rly_relay_finish(&d2), 0);
    assert_int_equal(rly_relay_finish(&d1), 0);
    if (!own)
        fail_msg("a --dev relay did not resume its own ticket:\n%.3000s", out);
    assert_false(other);
}

/* keygen --rotate + SIGHUP on both replicas: new tickets (under the new key) resume across them, a ticket from before
 * the rotation still resumes and is renewed, and a relay with another key file still resumes none */
static void test_resume_after_rotation(void **state)
{
    (void)state;
    char *out;
    const char *before = new_session(&relay_a);
    char *const argv[] = {(char *)rly_bin(), "keygen", "--rotate", shared_keys, NULL};
    assert_int_equal(rly_run(argv, 10000, NULL, NULL), 0);
    hup(&relay_a);
    hup(&relay_b);
    if (!resumes(&relay_b, new_session(&relay_a), &out))
        fail_msg("after the rotation, A's ticket did not resume on B:\n%.3000s", out);
    if (!resumes(&relay_a, new_session(&relay_b), &out))
        fail_msg("after the rotation, B's ticket did not resume on A:\n%.3000s", out);
    if (!resumes(&relay_b, before, &out))
        fail_msg("a ticket from before the rotation did not resume:\n%.3000s", out);
    if (count(out, "Post-Handshake New Session Ticket arrived") != 1)
        fail_msg("a ticket under the previous key was not renewed:\n%.3000s", out);
    if (resumes(&relay, new_session(&relay_b), &out))
        fail_msg("after the rotation, B's ticket resumed on a relay with another key file:\n%.3000s", out);
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
        RLY_TEST(test_ffdhe_only_refused),     RLY_TEST(test_tls13_tickets), RLY_TEST(test_no_tls12_ticket),
        RLY_TEST(test_resume_across_replicas), RLY_TEST(test_dev_tickets),   RLY_TEST(test_resume_after_rotation),
        RLY_TEST(test_admin_no_h2c),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
