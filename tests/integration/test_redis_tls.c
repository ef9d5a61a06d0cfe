/* test_redis_tls.c: the relay on a TLS-only redis-server through stunnel4 in client mode, with the stunnel configuration
 * shipped in deploy/k8s/overlays/redis-tls/stunnel.conf (only its accept and connect addresses and its CA path replaced):
 * whole flows complete through the tunnel; straight at the TLS port, or through stunnel to a server whose certificate
 * stunnel must refuse (another CA, another host name), the relay is not ready */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "harness_redis.h"

/* the managed Redis's name in the shipped stunnel.conf (its connect, sni and checkHost): the test's certificate has it */
#define SHIPPED_HOST "redis.managed.example.internal"
#define OTHER_HOST "other.managed.example.internal"
#define PASSWORD "tls-test-password"

typedef struct st_tls_redis_t {
    unsigned short port;
    pid_t pid;
    char log[320];
} tls_redis_t;

typedef struct st_tunnel_t {
    unsigned short port;
    pid_t pid;
    char conf[320], log[320];
} tunnel_t;

static char dir[256], ca_crt[320], other_ca_crt[320], pw_file[320];
static tls_redis_t redis_good, redis_other_name;
static tunnel_t tun_good, tun_other_ca, tun_other_name;
/* through stunnel; straight at the TLS port; stunnel with a CA that did not sign the server; a server named otherwise */
static rly_relay_t relay_tls, relay_direct, relay_other_ca, relay_other_name;

static int run_quiet(char *const argv[])
{
    char *err = NULL;
    int rc = rly_run(argv, 30000, NULL, &err);
    if (rc != 0)
        fprintf(stderr, "%s exited %d: %s\n", argv[0], rc, err != NULL ? err : "");
    return rc;
}

/* a self-signed CA (1 day) */
static int make_ca(const char *name, const char *key, const char *crt)
{
    char *const argv[] = {"openssl",
                          "req",
                          "-x509",
                          "-newkey",
                          "ec",
                          "-pkeyopt",
                          "ec_paramgen_curve:P-256",
                          "-nodes",
                          "-days",
                          "1",
                          "-subj",
                          rly_strf("/CN=%s", name),
                          "-keyout",
                          (char *)key,
                          "-out",
                          (char *)crt,
                          NULL};
    return run_quiet(argv);
}

/* a server certificate for host (subject and subjectAltName), signed by the CA */
static int make_server_cert(const char *ca_key, const char *ca_cert, const char *host, const char *key, const char *crt)
{
    const char *csr = rly_strf("%s.csr", crt), *ext = rly_strf("%s.ext", crt);
    FILE *f = fopen(ext, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "subjectAltName=DNS:%s\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n", host);
    fclose(f);
    char *const req[] = {"openssl",   "req",       "-newkey",
                         "ec",        "-pkeyopt",  "ec_paramgen_curve:P-256",
                         "-nodes",    "-subj",     rly_strf("/CN=%s", host),
                         "-keyout",   (char *)key, "-out",
                         (char *)csr, NULL};
    char *const sign[] = {"openssl",
                          "x509",
                          "-req",
                          "-in",
                          (char *)csr,
                          "-CA",
                          (char *)ca_cert,
                          "-CAkey",
                          (char *)ca_key,
                          "-set_serial",
                          rly_strf("%ld", (long)time(NULL) ^ rand()),
                          "-days",
                          "1",
                          "-extfile",
                          (char *)ext,
                          "-out",
                          (char *)crt,
                          NULL};
    return run_quiet(req) == 0 && run_quiet(sign) == 0 ? 0 : -1;
}

static int accepts(unsigned short port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* redis-cli --tls against the TLS port (the CA of the test), the command in argv-style words; its stdout, arena-owned */
static char *tls_cli(const tls_redis_t *r, const char *w1, const char *w2)
{
    char *const argv[] = {"redis-cli",         "--tls", "--cacert",  ca_crt,  "--sni",
                          SHIPPED_HOST,        "-h",    "127.0.0.1", "-p",    rly_strf("%u", (unsigned)r->port),
                          "--no-auth-warning", "-a",    PASSWORD,    "--raw", (char *)w1,
                          (char *)w2,          NULL};
    char *out = NULL;
    if (rly_run(argv, 5000, &out, NULL) != 0)
        return NULL;
    out[strcspn(out, "\r\n")] = '\0';
    return out;
}

/* redis-server with TLS only (--port 0), no client certificates, a password, and the memory settings deploy/ ships */
static int tls_redis_start(tls_redis_t *r, const char *name, const char *crt, const char *key)
{
    r->port = rly_free_port();
    snprintf(r->log, sizeof(r->log), "%s/%s.log", dir, name);
    const char *rdir = rly_strf("%s/%s.d", dir, name);
    char *const mk[] = {"mkdir", "-p", (char *)rdir, NULL};
    if (r->port == 0 || run_quiet(mk) != 0)
        return -1;
    char *const argv[] = {"redis-server",
                          "--port",
                          "0",
                          "--tls-port",
                          rly_strf("%u", (unsigned)r->port),
                          "--bind",
                          "127.0.0.1",
                          "--tls-cert-file",
                          (char *)crt,
                          "--tls-key-file",
                          (char *)key,
                          "--tls-ca-cert-file",
                          ca_crt,
                          "--tls-auth-clients",
                          "no",
                          "--requirepass",
                          PASSWORD,
                          "--maxmemory",
                          "64mb",
                          "--maxmemory-policy",
                          "noeviction",
                          "--save",
                          "",
                          "--appendonly",
                          "no",
                          "--dir",
                          (char *)rdir,
                          NULL};
    r->pid = rly_bg_start(argv, r->log);
    for (int i = 0; r->pid > 0 && i < 100; i++) {
        char *pong = tls_cli(r, "PING", NULL);
        if (pong != NULL && strcmp(pong, "PONG") == 0)
            return 0;
        sleep_ms(100);
    }
    char *log = rly_read_file(r->log, NULL);
    fprintf(stderr, "the TLS-only redis-server did not answer PING over TLS (does this redis-server have TLS?); its log:\n%s\n",
            log != NULL ? log : "(none)");
    return -1;
}

/* the shipped stunnel.conf with accept = 127.0.0.1:<new port>, connect = 127.0.0.1:<connect_port>, CAfile = cafile, every
 * other line as shipped; stunnel4 started on it and accepting */
static int tunnel_start(tunnel_t *t, const char *name, unsigned short connect_port, const char *cafile)
{
    const char *src = getenv("RLY_SOURCE_DIR");
    const char *shipped = rly_strf("%s/deploy/k8s/overlays/redis-tls/stunnel.conf", src != NULL ? src : ".");
    char *text = rly_read_file(shipped, NULL);
    if (text == NULL) {
        fprintf(stderr, "cannot read %s\n", shipped);
        return -1;
    }
    t->port = rly_free_port();
    snprintf(t->conf, sizeof(t->conf), "%s/%s.conf", dir, name);
    snprintf(t->log, sizeof(t->log), "%s/%s.log", dir, name);
    FILE *f = fopen(t->conf, "w");
    if (t->port == 0 || f == NULL)
        return -1;
    int accept_n = 0, connect_n = 0, ca_n = 0, verify_n = 0, host_n = 0;
    for (char *line = text, *next; line != NULL && *line != '\0'; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        if (strncmp(line, "accept = ", 9) == 0) {
            fprintf(f, "accept = 127.0.0.1:%u\n", (unsigned)t->port);
            accept_n++;
        } else if (strncmp(line, "connect = ", 10) == 0) {
            fprintf(f, "connect = 127.0.0.1:%u\n", (unsigned)connect_port);
            connect_n++;
        } else if (strncmp(line, "CAfile = ", 9) == 0) {
            fprintf(f, "CAfile = %s\n", cafile);
            ca_n++;
        } else {
            verify_n += strcmp(line, "verifyChain = yes") == 0;
            host_n += strcmp(line, "checkHost = " SHIPPED_HOST) == 0;
            fprintf(f, "%s\n", line);
        }
    }
    fclose(f);
    if (accept_n != 1 || connect_n != 1 || ca_n != 1 || verify_n != 1 || host_n != 1) {
        fprintf(stderr, "%s: expected one accept, connect, CAfile, verifyChain = yes and checkHost = " SHIPPED_HOST " line\n",
                shipped);
        return -1;
    }
    char *const argv[] = {"stunnel4", t->conf, NULL};
    t->pid = rly_bg_start(argv, t->log);
    for (int i = 0; t->pid > 0 && i < 100; i++) {
        if (accepts(t->port))
            return 0;
        sleep_ms(100);
    }
    char *log = rly_read_file(t->log, NULL);
    fprintf(stderr, "stunnel4 (deploy/packages.sh test installs it) did not listen; its log:\n%s\n", log != NULL ? log : "(none)");
    return -1;
}

static int relay_on(rly_relay_t *r, const char *keys, unsigned short redis_port)
{
    const char *const extra[] = {"--redis", rly_strf("redis://127.0.0.1:%u/0", (unsigned)redis_port), "--redis-password-file",
                                 pw_file, NULL};
    return rly_relay_start_keys(r, keys, extra);
}

static int group_setup(void **state)
{
    (void)state;
    srand((unsigned)time(NULL));
    snprintf(dir, sizeof(dir), "%s", rly_tmpdir());
    snprintf(ca_crt, sizeof(ca_crt), "%s/ca.crt", dir);
    snprintf(other_ca_crt, sizeof(other_ca_crt), "%s/other-ca.crt", dir);
    snprintf(pw_file, sizeof(pw_file), "%s/redis-password", dir);
    const char *ca_key = rly_strf("%s/ca.key", dir), *srv_key = rly_strf("%s/server.key", dir),
               *srv_crt = rly_strf("%s/server.crt", dir), *oth_key = rly_strf("%s/other.key", dir),
               *oth_crt = rly_strf("%s/other.crt", dir);
    FILE *f = fopen(pw_file, "w");
    if (f == NULL)
        return -1;
    fputs(PASSWORD "\n", f);
    fclose(f);
    char keys[256];
    if (make_ca("authrelay test CA", ca_key, ca_crt) != 0 ||
        make_ca("another CA", rly_strf("%s/other-ca.key", dir), other_ca_crt) != 0 ||
        make_server_cert(ca_key, ca_crt, SHIPPED_HOST, srv_key, srv_crt) != 0 ||
        make_server_cert(ca_key, ca_crt, OTHER_HOST, oth_key, oth_crt) != 0 || rly_test_keygen(keys, sizeof(keys)) != 0)
        return -1;
    if (tls_redis_start(&redis_good, "redis", srv_crt, srv_key) != 0 ||
        tls_redis_start(&redis_other_name, "redis-other-name", oth_crt, oth_key) != 0)
        return -1;
    if (tunnel_start(&tun_good, "stunnel", redis_good.port, ca_crt) != 0 ||
        tunnel_start(&tun_other_ca, "stunnel-other-ca", redis_good.port, other_ca_crt) != 0 ||
        tunnel_start(&tun_other_name, "stunnel-other-name", redis_other_name.port, ca_crt) != 0)
        return -1;
    if (relay_on(&relay_tls, keys, tun_good.port) != 0 || relay_on(&relay_direct, keys, redis_good.port) != 0 ||
        relay_on(&relay_other_ca, keys, tun_other_ca.port) != 0 || relay_on(&relay_other_name, keys, tun_other_name.port) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = rly_relay_finish(&relay_tls);
    rc |= rly_relay_finish(&relay_direct);
    rc |= rly_relay_finish(&relay_other_ca);
    rc |= rly_relay_finish(&relay_other_name);
    tunnel_t *tunnels[] = {&tun_good, &tun_other_ca, &tun_other_name};
    for (size_t i = 0; i < 3; i++)
        if (tunnels[i]->pid > 0)
            rly_bg_stop(tunnels[i]->pid);
    if (redis_good.pid > 0)
        rly_bg_stop(redis_good.pid);
    if (redis_other_name.pid > 0)
        rly_bg_stop(redis_other_name.pid);
    return rc;
}

/* ready through stunnel; a session's key is in the TLS-only Redis (read there over TLS, not through the tunnel); whole
 * flows over HTTP/1.1 and HTTP/2 */
static void test_flow_through_stunnel(void **state)
{
    (void)state;
    double ready = rly_wait_admin(&relay_tls, "/readyz", 200, 10000);
    if (ready < 0)
        fail_msg("the relay behind stunnel never got ready; stunnel log:\n%s", rly_read_file(tun_good.log, NULL));
    rly_session_t s;
    rly_create_ok(&relay_tls, RLY_H1, &s);
    const char *key = rly_redis_key_of(s.session);
    assert_non_null(key);
    RLY_EXPECT_STR(tls_cli(&redis_good, "EXISTS", key), "1");
    RLY_EXPECT(rly_delete(&s, RLY_H1), 204, RLY_H1);
    RLY_EXPECT_STR(tls_cli(&redis_good, "EXISTS", key), "0");
    double worst = 0;
    for (int i = 0; i < 4; i++) {
        double lat = rly_flow(&relay_tls, &relay_tls, &relay_tls, i % 2 ? RLY_H2 : RLY_H1, 200);
        if (lat > worst)
            worst = lat;
    }
    char *log = rly_read_file(tun_good.log, NULL);
    if (log == NULL || strstr(log, "Certificate accepted at depth=0: CN=" SHIPPED_HOST) == NULL)
        fail_msg("stunnel did not log the verified server certificate:\n%s", log != NULL ? log : "(none)");
    print_message("  ready through stunnel after %.2f s; session key written and deleted over TLS; 4 flows, slowest "
                  "rendezvous %.1f ms\n",
                  ready, worst * 1000.0);
}

/* a relay that is not ready: /readyz 503 for 3 s, session creation 503, store down in the metrics */
static void expect_unready(rly_relay_t *r, const char *what)
{
    if (rly_wait_admin(r, "/readyz", 200, 3000) >= 0)
        fail_msg("%s: the relay got ready", what);
    long st = rly_admin_status(r, "/readyz");
    if (st != 503)
        fail_msg("%s: /readyz answered %ld, expected 503", what, st);
    rly_session_t s;
    rly_response_t *res =
        rly_create(r, RLY_H1, "{\"authorization_server\": \"" RLY_TEST_AS "\", \"return_uri\": \"" RLY_TEST_RETURN "\"}", &s);
    RLY_EXPECT(res, 503, RLY_H1);
    if (rly_metric(r, "authrelay_store_up") != 0)
        fail_msg("%s: authrelay_store_up is not 0", what);
}

/* hiredis 0.14 speaks plain Redis to a TLS port: the server drops it, the relay stays unready */
static void test_without_stunnel_not_ready(void **state)
{
    (void)state;
    expect_unready(&relay_direct, "relay straight at the TLS port");
}

/* stunnel refuses a server whose certificate another CA signed (verifyChain) */
static void test_other_ca_refused(void **state)
{
    (void)state;
    expect_unready(&relay_other_ca, "stunnel trusting another CA");
    char *log = rly_read_file(tun_other_ca.log, NULL);
    if (log == NULL || strstr(log, "certificate verify failed") == NULL)
        fail_msg("stunnel did not refuse the certificate:\n%s", log != NULL ? log : "(none)");
}

/* stunnel refuses a certificate of the right CA for another host name (checkHost) */
static void test_other_name_refused(void **state)
{
    (void)state;
    expect_unready(&relay_other_name, "server certificate for " OTHER_HOST);
    char *log = rly_read_file(tun_other_name.log, NULL);
    if (log == NULL || strstr(log, "Subject checks failed") == NULL)
        fail_msg("stunnel did not refuse the host name:\n%s", log != NULL ? log : "(none)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLY_TEST(test_flow_through_stunnel),
        RLY_TEST(test_without_stunnel_not_ready),
        RLY_TEST(test_other_ca_refused),
        RLY_TEST(test_other_name_refused),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
