/* test_reload.c: day-two operations: SIGHUP reloads keys and certificate, key rotation keeps flows, HTTP/2 reset guard */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "bound.h"
#include "harness.h"
#include "raw.h"

static rly_relay_t relay;

static int group_setup(void **state)
{
    (void)state;
    static const char *const extra[] = {"--rate-limit", "0", NULL};
    return rly_relay_start(&relay, extra);
}

static int group_teardown(void **state)
{
    (void)state;
    return rly_relay_finish(&relay);
}

/* how many stdout lines carry s */
static int log_count(const char *s)
{
    size_t len;
    const char *out = rly_relay_stdout(&relay, &len);
    int n = 0;
    for (const char *p = out; (p = strstr(p, s)) != NULL; p += strlen(s))
        ++n;
    return n;
}

/* sends SIGHUP and waits until one more "reload" line than before appears (5 s) */
static void hup(void)
{
    int before = log_count("\"event\":\"reload\"");
    rly_relay_signal(&relay, SIGHUP);
    for (int i = 0; i != 100 && log_count("\"event\":\"reload\"") == before; ++i)
        usleep(50000);
    assert_int_equal(log_count("\"event\":\"reload\""), before + 1);
}

static void rotate_keys(void)
{
    char *const argv[] = {(char *)rly_bin(), "keygen", "--rotate", relay.keys, NULL};
    assert_int_equal(rly_run(argv, 10000, NULL, NULL), 0);
}

static void callback_ok(const rly_session_t *s, const char *code)
{
    rly_response_t *res = rly_callback(&relay, RLY_H2, "/qorus-oauth2-redirect", rly_query("code", code, "state", s->state, NULL));
    assert_int_equal(res->status, 303);
    res = rly_pickup(s, RLY_H2, 0);
    assert_int_equal(res->status, 200);
    assert_non_null(strstr(res->body, code));
}

/* a flow started before a rotation completes after it; new flows use the new key; after two more rotations (three keys
 * kept) a state signed by the first key no longer verifies */
static void test_key_rotation(void **state)
{
    (void)state;
    rly_session_t before, after, old;
    rly_create_ok(&relay, RLY_H2, &before);
    rly_create_ok(&relay, RLY_H2, &old);
    rotate_keys();
    hup();
    assert_non_null(strstr(rly_relay_stdout(&relay, NULL), "reloaded keys and certificate"));
    callback_ok(&before, "code-before-rotation");
    rly_create_ok(&relay, RLY_H1, &after);
    assert_string_not_equal(after.state, before.state);
    callback_ok(&after, "code-after-rotation");

    /* keys now: k2 k1; two more rotations drop k1 */
    rotate_keys();
    rotate_keys();
    hup();
    rly_response_t *res = rly_callback(&relay, RLY_H1, "/qorus-oauth2-redirect", rly_query("code", "x", "state", old.state, NULL));
    assert_int_equal(res->status, 400);
}

/* 1.1 across a rotation: a cookie and a CSRF token made under the old key still verify (the old key verifies); once the
 * old key has left the ring, its cookie counts as absent (403) and a new one is set */
static void test_bound_key_rotation(void **state)
{
    (void)state;
    rly_bound_t b, late;
    rly_bound_create_ok(&relay, RLY_H2, NULL, &b);
    RLY_EXPECT(rly_bound_start_page(&relay, RLY_H2, &b), 200, RLY_H2);
    rotate_keys();
    hup();
    RLY_EXPECT(rly_bound_confirm(&relay, RLY_H2, &b, "continue"), 303, RLY_H2);
    RLY_EXPECT(rly_bound_callback(&relay, RLY_H2, &b, rly_query("code", "c-rotated", "state", b.state, NULL), b.cookie), 200,
               RLY_H2);
    /* two more rotations: the key that made the cookie is gone */
    rotate_keys();
    rotate_keys();
    hup();
    rly_bound_create_ok(&relay, RLY_H2, NULL, &late);
    snprintf(late.cookie, sizeof(late.cookie), "%s", b.cookie); /* the same browser, with its old cookie */
    RLY_EXPECT(rly_bound_start_page(&relay, RLY_H2, &late), 200, RLY_H2);
    assert_string_not_equal(late.cookie, b.cookie); /* counted as absent: a new cookie, under the current key */
    rly_bound_t stale = late;
    snprintf(stale.cookie, sizeof(stale.cookie), "%s", b.cookie);
    RLY_EXPECT(rly_bound_confirm(&relay, RLY_H2, &stale, "continue"), 403, RLY_H2);
    RLY_EXPECT(rly_bound_confirm(&relay, RLY_H2, &late, "continue"), 303, RLY_H2);
}

/* replaces the certificate and key files with a new pair */
static char *new_certificate(void)
{
    char *cert = rly_strf("%s.new", relay.cert), *key = rly_strf("%s.new", relay.key);
    assert_int_equal(rly_make_certificate(cert, key), 0);
    char *old = rly_strf("%s.old", relay.cert);
    char *const cp[] = {"cp", relay.cert, old, NULL};
    assert_int_equal(rly_run(cp, 5000, NULL, NULL), 0);
    assert_int_equal(rename(key, relay.key), 0);
    assert_int_equal(rename(cert, relay.cert), 0);
    return old;
}

static rly_response_t *discovery(const char *cainfo, int version)
{
    rly_request_t req = {.url = rly_url(&relay, "/.well-known/authrelay"), .version = version, .cainfo = cainfo};
    return rly_do(&req);
}

struct reload_ctx {
    const rly_session_t *s;
    char *old;
    long callback_status;
};

/* runs while the pickup waits: new certificate, SIGHUP, then the callback through a new connection */
static void reload_during_wait(void *ud)
{
    struct reload_ctx *c = ud;
    c->old = new_certificate();
    hup();
    rly_response_t *res =
        rly_callback(&relay, RLY_H1, "/qorus-oauth2-redirect", rly_query("code", "code-across-reload", "state", c->s->state, NULL));
    c->callback_status = res->status;
}

/* the certificate is swapped for new connections; a long-poll that waited across the reload is answered */
static void test_certificate_reload(void **state)
{
    (void)state;
    rly_session_t s;
    rly_create_ok(&relay, RLY_H2, &s);
    char *auth = rly_strf("Authorization: Bearer %s", s.poll_token);
    const char *headers[] = {auth, "Prefer: wait=8", NULL};
    rly_request_t reqs[1] = {{.url = s.poll_url, .headers = headers, .version = RLY_H2, .timeout_ms = 20000}};
    rly_response_t *resps = rly_responses(1);
    struct reload_ctx c = {&s, NULL, 0};
    assert_int_equal(rly_http_multi(reqs, 1, resps, 500, reload_during_wait, &c), 0);
    assert_int_equal(c.callback_status, 303);
    assert_int_equal(resps[0].status, 200);
    assert_non_null(strstr(resps[0].body, "code-across-reload"));
    /* new connections present the new certificate: verifying against the old one fails, against the new one works */
    assert_int_equal(discovery(relay.cert, RLY_H2)->status, 200);
    assert_int_equal(discovery(relay.cert, RLY_H1)->status, 200);
    assert_int_equal(discovery(c.old, RLY_H2)->status, 0);
}

/* a reload that fails (a broken certificate) keeps the old material and says so */
static void test_failed_reload(void **state)
{
    (void)state;
    char *saved = rly_strf("%s.saved", relay.cert);
    char *const cp[] = {"cp", relay.cert, saved, NULL};
    assert_int_equal(rly_run(cp, 5000, NULL, NULL), 0);
    FILE *fp = fopen(relay.cert, "w");
    assert_non_null(fp);
    fputs("not a certificate\n", fp);
    fclose(fp);
    hup();
    /* the file is put back for the test client; the relay kept the certificate it had in memory */
    assert_int_equal(rename(saved, relay.cert), 0);
    assert_non_null(strstr(rly_relay_stdout(&relay, NULL), "reload failed"));
    assert_int_equal(discovery(relay.cert, RLY_H2)->status, 200);
    rly_session_t s;
    rly_create_ok(&relay, RLY_H2, &s);
    callback_ok(&s, "code-after-failed-reload");
}

/* a connection accepted before a reload whose client speaks only after it: h2o makes its SSL object from the context of
 * the accept, which the reload replaced (a use after free once, a crash in SSL_new) */
static void test_reload_during_handshake(void **state)
{
    (void)state;
    rly_raw_t idle[4];
    for (int i = 0; i != 4; ++i)
        assert_int_equal(rly_raw_connect(&idle[i], relay.port, NULL), 0);
    usleep(100000); /* accepted, nothing read yet */
    hup();
    hup(); /* the second reload drops the first new context's predecessor for good */
    for (int i = 0; i != 4; ++i) {
        assert_int_equal(rly_raw_handshake(&idle[i], 5000), 0);
        rly_raw_close(&idle[i]);
    }
    assert_true(rly_relay_running(&relay));
    assert_int_equal(discovery(NULL, RLY_H1)->status, 200);
}

/* HTTP/2 Rapid Reset (CVE-2023-44487): a connection that opens and cancels streams without end is closed with GOAWAY,
 * and the relay keeps serving others; clients that reset streams they already have an answer for are not affected */
static void test_rapid_reset_guard(void **state)
{
    (void)state;
    const char *tool = getenv("RLY_RAPID_RESET");
    assert_non_null(tool);
    char *port = rly_strf("%u", relay.port), *out = NULL;
    char *const argv[] = {(char *)tool, "--port", port, "--seconds", "2", "--conns", "2", NULL};
    assert_int_equal(rly_run(argv, 20000, &out, NULL), 0);
    assert_non_null(out);
    const char *g = strstr(out, "goaways=");
    assert_non_null(g);
    assert_true(strtol(g + 8, NULL, 10) > 0);
    assert_int_equal(discovery(NULL, RLY_H2)->status, 200);
    /* 300 creates and deletes over HTTP/2, faster than the refill: libcurl resets streams it has its answer for */
    for (int i = 0; i != 300; ++i) {
        rly_session_t s;
        rly_create_ok(&relay, RLY_H2, &s);
        assert_int_equal(rly_delete(&s, RLY_H2)->status, 204);
    }
    rly_session_t s;
    rly_create_ok(&relay, RLY_H2, &s);
    callback_ok(&s, "code-after-attack");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLY_TEST(test_key_rotation),  RLY_TEST(test_bound_key_rotation),      RLY_TEST(test_certificate_reload),
        RLY_TEST(test_failed_reload), RLY_TEST(test_reload_during_handshake), RLY_TEST(test_rapid_reset_guard),
    };
    return cmocka_run_group_tests_name("reload", tests, group_setup, group_teardown);
}
