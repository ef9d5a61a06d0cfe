/* test_tls.c: unit tests of the TLS session ticket keys (relay/tls.c, rly_ticket_key in common/keys.c): the derivation
 * against independently computed values, the period rule at injected times, rotation, and real in-memory TLS
 * handshakes between contexts made by relay_tls_new (resumption across contexts sharing a key ring, not across rings) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>

#include "tls.c" /* static ticket functions */

/* master key 00..1f; HKDF-SHA256 computed independently (Python's hmac and hashlib, RFC 5869 by hand) */
static const uint8_t master0[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                                    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
#define MASTER0_TICKET_KEY "85f91c5882fb5b7df75543fcacde4a0213dc3bf4895a4efc70d6c49b9fdc0210"
#define PERIOD0 493827ULL /* 2026-05-03 */
#define PERIOD0_NAME "9f4cdbfe9e47529130601a6dad27a899"
#define PERIOD0_AES "3d44b4ca7d949689c20d3f8c3ec2f70aee7f25e8374bb390745ae8e1c22f37f4"
#define PERIOD0_HMAC "c0c1cd5e66f8a54e0d1da6dde57772ab248f3afe197151a9106803ed3442814d"

static void assert_hex(const uint8_t *bytes, size_t len, const char *hex)
{
    char buf[129];
    assert_true(len * 2 < sizeof(buf));
    for (size_t i = 0; i != len; ++i)
        snprintf(buf + 2 * i, 3, "%02x", bytes[i]);
    assert_string_equal(buf, hex);
}

static void ring_of(rly_keyring_t *kr, const uint8_t *const *masters, size_t n)
{
    memset(kr, 0, sizeof(*kr));
    for (size_t i = 0; i != n; ++i) {
        char id[8];
        snprintf(id, sizeof(id), "k%zu", i);
        assert_int_equal(rly_key_derive(&kr->keys[i], id, masters[i]), 0);
    }
    kr->count = n;
}

static void test_derivation(void **unused)
{
    (void)unused;
    rly_key_t key, other;
    uint8_t name[16], aes[32], hmac[32], name2[16], aes2[32], hmac2[32];
    uint8_t master1[32];

    assert_int_equal(rly_key_derive(&key, "k0", master0), 0);
    assert_hex(key.ticket_key, 32, MASTER0_TICKET_KEY);
    assert_int_equal(rly_ticket_key(&key, PERIOD0, name, aes, hmac), 0);
    assert_hex(name, 16, PERIOD0_NAME);
    assert_hex(aes, 32, PERIOD0_AES);
    assert_hex(hmac, 32, PERIOD0_HMAC);
    /* the ticket key is its own: none of the other purposes' keys */
    assert_memory_not_equal(key.ticket_key, key.state_key, 32);
    assert_memory_not_equal(key.ticket_key, key.data_key, 32);
    assert_memory_not_equal(key.ticket_key, key.cookie_key, 32);
    assert_memory_not_equal(key.ticket_key, key.csrf_key, 32);
    /* the next period, and another master key, give other keys */
    assert_int_equal(rly_ticket_key(&key, PERIOD0 + 1, name2, aes2, hmac2), 0);
    assert_memory_not_equal(name, name2, 16);
    assert_memory_not_equal(aes, aes2, 32);
    assert_memory_not_equal(hmac, hmac2, 32);
    memcpy(master1, master0, 32);
    master1[31] ^= 1;
    assert_int_equal(rly_key_derive(&other, "k0", master1), 0);
    assert_int_equal(rly_ticket_key(&other, PERIOD0, name2, aes2, hmac2), 0);
    assert_memory_not_equal(name, name2, 16);
    assert_memory_not_equal(aes, aes2, 32);
}

/* a ticket made in period p resumes at p and p + 1 (renewed), not at p + 2; one from p + 1 (a replica whose clock is
 * ahead) resumes at p; nothing from p - 2 */
static void test_period_rule(void **unused)
{
    (void)unused;
    const uint8_t *masters[] = {master0};
    rly_keyring_t kr;
    ticket_secret_t made, found;
    const uint64_t p = PERIOD0, t0 = p * RLY_TICKET_PERIOD + 1800;

    ring_of(&kr, masters, 1);
    ticket_keys_t *tk = ticket_keys_new(NULL);
    assert_non_null(tk);
    assert_int_equal(ticket_key_current(tk, &kr, t0, &made), 0);
    assert_hex(made.name, 16, PERIOD0_NAME);
    assert_hex(made.aes, 32, PERIOD0_AES);
    assert_hex(made.hmac, 32, PERIOD0_HMAC);

    static const struct {
        int64_t at; /* seconds from the start of period p */
        int want;
    } cases[] = {
        {0, 1},     {1800, 1},  {3599, 1}, /* p: the current key */
        {3600, 2},  {7199, 2},             /* p + 1: accepted, renewed */
        {7200, 0},  {36000, 0},            /* p + 2 and later: a full handshake */
        {-1, 2},    {-3600, 2},            /* p - 1: a ticket from a replica an hour boundary ahead */
        {-3601, 0}, {-7200, 0},            /* p - 2 */
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        uint64_t now = (uint64_t)((int64_t)(p * RLY_TICKET_PERIOD) + cases[i].at);
        memset(&found, 0, sizeof(found));
        int got = ticket_key_find(tk, &kr, now, made.name, &found);
        if (got != cases[i].want)
            fail_msg("ticket of period p at p*3600%+lld: %d, expected %d", (long long)cases[i].at, got, cases[i].want);
        if (got > 0)
            assert_memory_equal(&found, &made, sizeof(made));
    }
    /* a name no key derives */
    uint8_t unknown[16];
    memcpy(unknown, made.name, 16);
    unknown[0] ^= 0x80;
    assert_int_equal(ticket_key_find(tk, &kr, t0, unknown, &found), 0);
    /* a new ticket at p + 1 is under the key of p + 1 */
    assert_int_equal(ticket_key_current(tk, &kr, t0 + 3600, &found), 0);
    assert_memory_not_equal(found.name, made.name, 16);
    ticket_keys_free(NULL, tk, NULL, 0, 0, NULL);
}

/* after a rotation the new first key makes tickets; the old key's still resume (renewed); another key file's never */
static void test_rotation(void **unused)
{
    (void)unused;
    uint8_t master1[32], master2[32];
    memset(master1, 0x11, 32);
    memset(master2, 0x22, 32);
    const uint8_t *before_m[] = {master0}, *after_m[] = {master1, master0}, *other_m[] = {master2};
    rly_keyring_t before, after, other;
    ticket_secret_t old, renewed, found;
    const uint64_t t0 = PERIOD0 * RLY_TICKET_PERIOD + 100;

    ring_of(&before, before_m, 1);
    ring_of(&after, after_m, 2);
    ring_of(&other, other_m, 1);
    ticket_keys_t *tk = ticket_keys_new(NULL);
    assert_int_equal(ticket_key_current(tk, &before, t0, &old), 0);
    /* the same context reads the reloaded ring: the cache follows the ring */
    assert_int_equal(ticket_key_current(tk, &after, t0, &renewed), 0);
    assert_memory_not_equal(renewed.name, old.name, 16);
    assert_int_equal(ticket_key_find(tk, &after, t0, old.name, &found), 2);
    assert_memory_equal(&found, &old, sizeof(old));
    assert_int_equal(ticket_key_find(tk, &after, t0 + 3600, old.name, &found), 2);
    assert_int_equal(ticket_key_find(tk, &after, t0 + 7200, old.name, &found), 0);
    assert_int_equal(ticket_key_find(tk, &after, t0, renewed.name, &found), 1);
    /* the ring before the rotation does not know the new key (a replica not yet reloaded: full handshake) */
    assert_int_equal(ticket_key_find(tk, &before, t0, renewed.name, &found), 0);
    assert_int_equal(ticket_key_find(tk, &other, t0, old.name, &found), 0);
    assert_int_equal(ticket_key_find(tk, &other, t0, renewed.name, &found), 0);
    ticket_keys_free(NULL, tk, NULL, 0, 0, NULL);
}

/* ---- real handshakes in memory ---- */

static _Atomic(const rly_keyring_t *) ring_a, ring_c;
static rly_keyring_t keys_a, keys_c;

/* a --dev context (ephemeral certificate) reading ring */
static SSL_CTX *server_ctx(_Atomic(const rly_keyring_t *) *ring)
{
    relay_config_t cfg;
    char err[256];
    memset(&cfg, 0, sizeof(cfg));
    SSL_CTX *ctx = relay_tls_new(&cfg, ring, err, sizeof(err));
    if (ctx == NULL)
        fail_msg("relay_tls_new: %s", err);
    return ctx;
}

/* one handshake of a client (version, session to offer or NULL) with a server context over a BIO pair, then the client
 * reads what the server sent after it (TLS 1.3 tickets). Returns the client's session (caller frees), *reused whether
 * it was resumed, *ticket whether the client holds a ticket, *origin the full handshake's time the server's session
 * carries (0: none). */
static SSL_SESSION *handshake_at(SSL_CTX *sctx, int version, SSL_SESSION *offer, int *reused, int *ticket, uint64_t *origin)
{
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(cctx);
    SSL_CTX_set_min_proto_version(cctx, version);
    SSL_CTX_set_max_proto_version(cctx, version);
    SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
    BIO *cb, *sb;
    assert_int_equal(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
    SSL_set_bio(c, cb, cb);
    SSL_set_bio(s, sb, sb);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    SSL_set_tlsext_host_name(c, "localhost");
    if (offer != NULL)
        assert_int_equal(SSL_set_session(c, offer), 1);
    int cdone = 0, sdone = 0;
    for (int i = 0; i != 100 && !(cdone && sdone); ++i) {
        if (!cdone) {
            int r = SSL_do_handshake(c);
            if (r == 1)
                cdone = 1;
            else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ)
                fail_msg("client handshake failed");
        }
        if (!sdone) {
            int r = SSL_do_handshake(s);
            if (r == 1)
                sdone = 1;
            else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
                fail_msg("server handshake failed");
        }
    }
    assert_true(cdone && sdone);
    char byte;
    assert_int_equal(SSL_read(c, &byte, 1), -1); /* processes the tickets, then wants more */
    assert_int_equal(SSL_get_error(c, -1), SSL_ERROR_WANT_READ);
    *reused = SSL_session_reused(c);
    SSL_SESSION *sess = SSL_get1_session(c);
    *ticket = SSL_SESSION_has_ticket(sess);
    void *data;
    size_t len;
    *origin = 0;
    if (SSL_SESSION_get0_ticket_appdata(SSL_get0_session(s), &data, &len) == 1 && len == TICKET_ORIGIN_LEN)
        for (size_t i = 0; i != len; ++i)
            *origin = *origin << 8 | ((const uint8_t *)data)[i];
    /* close_notify both ways: an SSL freed without it marks its session not resumable */
    SSL_shutdown(c);
    SSL_shutdown(s);
    SSL_shutdown(c);
    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(cctx);
    return sess;
}

/* 1 if both sessions hold the same ticket */
static int same_ticket(const SSL_SESSION *x, const SSL_SESSION *y)
{
    const unsigned char *tx, *ty;
    size_t lx, ly;
    SSL_SESSION_get0_ticket(x, &tx, &lx);
    SSL_SESSION_get0_ticket(y, &ty, &ly);
    return lx == ly && lx != 0 && memcmp(tx, ty, lx) == 0;
}

static SSL_SESSION *handshake(SSL_CTX *sctx, int version, SSL_SESSION *offer, int *reused, int *ticket)
{
    uint64_t origin;
    return handshake_at(sctx, version, offer, reused, ticket, &origin);
}

static void test_handshakes(void **unused)
{
    (void)unused;
    int reused, ticket;

    assert_int_equal(rly_keyring_ephemeral(&keys_a), 0);
    assert_int_equal(rly_keyring_ephemeral(&keys_c), 0);
    atomic_store(&ring_a, &keys_a);
    atomic_store(&ring_c, &keys_c);
    SSL_CTX *a = server_ctx(&ring_a), *b = server_ctx(&ring_a), *c = server_ctx(&ring_c);
    /* what the context says: tickets on, no cache, one ticket, one hour */
    assert_int_equal(SSL_CTX_get_options(a) & SSL_OP_NO_TICKET, 0);
    assert_int_equal(SSL_CTX_get_session_cache_mode(a), SSL_SESS_CACHE_OFF);
    assert_int_equal(SSL_CTX_get_num_tickets(a), 2);
    assert_int_equal(SSL_CTX_get_timeout(a), 3600);

    /* TLS 1.3: a ticket from A resumes on A and on B (same ring, other context and certificate), not on C */
    SSL_SESSION *s1 = handshake(a, TLS1_3_VERSION, NULL, &reused, &ticket);
    assert_false(reused);
    assert_true(ticket);
    assert_true(SSL_SESSION_is_resumable(s1));
    assert_int_equal(SSL_SESSION_get_ticket_lifetime_hint(s1), 3600);
    SSL_SESSION *s2 = handshake(a, TLS1_3_VERSION, s1, &reused, &ticket);
    assert_true(reused);
    assert_true(same_ticket(s1, s2)); /* current key: no new ticket */
    SSL_SESSION_free(s2);
    SSL_SESSION_free(s1); /* a client uses a ticket once (OpenSSL's client marks it spent) */
    s1 = handshake(a, TLS1_3_VERSION, NULL, &reused, &ticket);
    s2 = handshake(b, TLS1_3_VERSION, s1, &reused, &ticket);
    assert_true(reused);
    SSL_SESSION_free(s2);
    SSL_SESSION_free(s1);
    s1 = handshake(a, TLS1_3_VERSION, NULL, &reused, &ticket);
    s2 = handshake(c, TLS1_3_VERSION, s1, &reused, &ticket);
    assert_false(reused);
    SSL_SESSION_free(s2);
    SSL_SESSION_free(s1);

    /* the ring A reads is rotated (as after keygen --rotate + SIGHUP): a ticket from before still resumes and is renewed
     * with the time of its full handshake kept; new tickets are under the new key and resume too */
    uint64_t origin, origin2;
    s1 = handshake_at(a, TLS1_3_VERSION, NULL, &reused, &ticket, &origin);
    assert_true(origin != 0);
    static rly_keyring_t rotated;
    uint8_t fresh[32];
    memset(fresh, 0x5a, sizeof(fresh));
    memset(&rotated, 0, sizeof(rotated));
    assert_int_equal(rly_key_derive(&rotated.keys[0], "new", fresh), 0);
    rotated.keys[1] = keys_a.keys[0];
    rotated.count = 2;
    atomic_store(&ring_a, &rotated);
    sleep(1);
    s2 = handshake_at(b, TLS1_3_VERSION, s1, &reused, &ticket, &origin2);
    assert_true(reused);
    assert_false(same_ticket(s1, s2)); /* renewed */
    assert_true(origin2 == origin);
    SSL_SESSION_free(s1);
    s1 = s2; /* the renewed ticket resumes too, with the same origin */
    s2 = handshake_at(a, TLS1_3_VERSION, s1, &reused, &ticket, &origin2);
    assert_true(reused);
    assert_true(origin2 == origin);
    SSL_SESSION_free(s2);
    SSL_SESSION *s3 = handshake(a, TLS1_3_VERSION, NULL, &reused, &ticket);
    assert_false(reused);
    s2 = handshake(b, TLS1_3_VERSION, s3, &reused, &ticket);
    assert_true(reused);
    SSL_SESSION_free(s2);
    SSL_SESSION_free(s3);
    SSL_SESSION_free(s1);

    /* TLS 1.2: no ticket, nothing to resume */
    s1 = handshake(a, TLS1_2_VERSION, NULL, &reused, &ticket);
    assert_false(reused);
    assert_false(ticket);
    s2 = handshake(b, TLS1_2_VERSION, s1, &reused, &ticket);
    assert_false(reused);
    SSL_SESSION_free(s2);
    SSL_SESSION_free(s1);

    SSL_CTX_free(a);
    SSL_CTX_free(b);
    SSL_CTX_free(c);
}

/* OpenSSL refuses a ticket older than the context's timeout (3600 s in the relay; 1 s here): what bounds a ticket's life */
static void test_session_timeout(void **unused)
{
    (void)unused;
    int reused, ticket;
    static rly_keyring_t kr;
    static _Atomic(const rly_keyring_t *) ring;
    assert_int_equal(rly_keyring_ephemeral(&kr), 0);
    atomic_store(&ring, &kr);
    SSL_CTX *ctx = server_ctx(&ring);
    SSL_CTX_set_timeout(ctx, 1);
    SSL_SESSION *fresh = handshake(ctx, TLS1_3_VERSION, NULL, &reused, &ticket);
    SSL_SESSION *old = handshake(ctx, TLS1_3_VERSION, NULL, &reused, &ticket);
    SSL_SESSION *s = handshake(ctx, TLS1_3_VERSION, fresh, &reused, &ticket);
    assert_true(reused);
    SSL_SESSION_free(s);
    sleep(3);
    SSL_SESSION_set_time(old, (long)time(NULL)); /* or the client itself would not offer it past its lifetime hint */
    s = handshake(ctx, TLS1_3_VERSION, old, &reused, &ticket);
    assert_false(reused);
    SSL_SESSION_free(s);
    SSL_SESSION_free(old);
    SSL_SESSION_free(fresh);
    SSL_CTX_free(ctx);
}

/* the full handshake's time a ticket carries: resumption until TICKET_LIFETIME after it, renewals included */
static void test_origin_rule(void **unused)
{
    (void)unused;
    uint8_t data[TICKET_ORIGIN_LEN];
    const uint64_t t = PERIOD0 * RLY_TICKET_PERIOD + 42;
    put_be64(data, t);
    assert_true(ticket_origin_ok(data, sizeof(data), t));
    assert_true(ticket_origin_ok(data, sizeof(data), t + 3600));
    assert_false(ticket_origin_ok(data, sizeof(data), t + 3601));
    assert_false(ticket_origin_ok(data, sizeof(data), t + 86400));
    assert_true(ticket_origin_ok(data, sizeof(data), t - 5)); /* from a replica whose clock is ahead */
    assert_false(ticket_origin_ok(data, sizeof(data) - 1, t));
    assert_false(ticket_origin_ok(NULL, 0, t));
}

/* without a key ring (check-config) a context issues no ticket */
static void test_no_ring_no_ticket(void **unused)
{
    (void)unused;
    int reused, ticket;
    SSL_CTX *ctx = server_ctx(NULL);
    SSL_SESSION *s = handshake(ctx, TLS1_3_VERSION, NULL, &reused, &ticket);
    assert_false(ticket);
    SSL_SESSION_free(s);
    SSL_CTX_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_derivation),        cmocka_unit_test(test_period_rule), cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_origin_rule),       cmocka_unit_test(test_handshakes),  cmocka_unit_test(test_session_timeout),
        cmocka_unit_test(test_no_ring_no_ticket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
