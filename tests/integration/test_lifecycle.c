/* test_lifecycle.c: subcommands, exit statuses, the admin listener, SIGTERM drain and --dev, against the real binary */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "harness.h"

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

static rly_response_t *admin_get(const char *path)
{
    rly_request_t q = {.url = rly_admin_url(&relay, path), .timeout_ms = 5000};
    return rly_do(&q);
}

/* ---- Prometheus text ---- */

typedef struct st_sample_t {
    char *name, *labels; /* labels: the text between the braces, "" when none */
    double value;
} sample_t;

typedef struct st_samples_t {
    sample_t *v;
    size_t n;
} samples_t;

/* parses the exposition format; fails the test on a malformed line. Arena-owned. */
static samples_t parse_metrics(const char *text)
{
    samples_t out = {rly_keep(calloc(4096, sizeof(sample_t))), 0};
    size_t lineno = 0;
    for (const char *p = text; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        if (nl == NULL)
            fail_msg("metrics: the last line has no newline");
        char *line = rly_strf("%.*s", (int)(nl - p), p);
        p = nl + 1;
        lineno++;
        if (*line == '\0' || *line == '#')
            continue;
        char *q = line;
        while ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '_' || *q == ':')
            q++;
        if (q == line)
            fail_msg("metrics line %zu: no metric name: %s", lineno, line);
        sample_t s = {rly_strf("%.*s", (int)(q - line), line), "", 0};
        if (*q == '{') {
            char *start = ++q;
            int inq = 0;
            for (; *q != '\0' && (inq || *q != '}'); q++) {
                if (inq && *q == '\\' && q[1] != '\0')
                    q++;
                else if (*q == '"')
                    inq = !inq;
            }
            if (*q != '}')
                fail_msg("metrics line %zu: unterminated labels: %s", lineno, line);
            s.labels = rly_strf("%.*s", (int)(q - start), start);
            q++;
        }
        if (*q != ' ')
            fail_msg("metrics line %zu: no value: %s", lineno, line);
        char *end;
        s.value = strtod(q + 1, &end);
        if (end == q + 1 || (*end != '\0' && *end != ' '))
            fail_msg("metrics line %zu: bad value: %s", lineno, line);
        if (out.n < 4096)
            out.v[out.n++] = s;
    }
    return out;
}

static const sample_t *find_sample(const samples_t *m, const char *name, const char *labels)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->v[i].name, name) == 0 && strcmp(m->v[i].labels, labels) == 0)
            return &m->v[i];
    return NULL;
}

static samples_t scrape(void)
{
    rly_response_t *res = admin_get("/metrics");
    RLY_EXPECT(res, 200, 0);
    const char *ct = rly_header(res, "Content-Type");
    assert_non_null(ct);
    assert_true(strncmp(ct, "text/plain", 10) == 0);
    assert_non_null(strstr(res->body, "# TYPE "));
    return parse_metrics(res->body);
}

static void test_admin_health(void **state)
{
    (void)state;
    rly_response_t *res = admin_get("/healthz");
    RLY_EXPECT(res, 200, 0);
    res = admin_get("/readyz");
    RLY_EXPECT(res, 200, 0);
    res = admin_get("/no-such-admin-path");
    assert_int_equal(res->status, 404);
    /* the admin endpoints are not on the public listener */
    rly_request_t q = {.url = rly_url(&relay, "/metrics")};
    assert_int_equal(rly_do(&q)->status, 404);
}

static void test_metrics_count_flows(void **state)
{
    (void)state;
    samples_t before = scrape();

    rly_session_t s, s2;
    rly_create_ok(&relay, RLY_H2, &s);
    char *code = rly_token("metrics-code-");
    RLY_EXPECT(rly_callback(&relay, RLY_H2, NULL, rly_query("code", code, "state", s.state, NULL)), 303, RLY_H2);
    RLY_EXPECT(rly_pickup(&s, RLY_H1, -1), 200, RLY_H1);
    RLY_EXPECT(rly_delete(&s, RLY_H1), 204, RLY_H1);
    rly_create_ok(&relay, RLY_H1, &s2);
    RLY_EXPECT(rly_callback(&relay, RLY_H1, NULL, rly_query("error", "access_denied", "state", s2.state, NULL)), 303, RLY_H1);
    RLY_EXPECT(rly_callback(&relay, RLY_H1, NULL, rly_query("code", code, NULL)), 400, RLY_H1);

    rly_response_t *raw = admin_get("/metrics");
    RLY_EXPECT(raw, 200, 0);
    samples_t after = parse_metrics(raw->body);

    /* counters (…_total) went up */
    size_t increased = 0;
    for (size_t i = 0; i < after.n; i++) {
        const sample_t *a = &after.v[i];
        size_t nl = strlen(a->name);
        if (nl < 6 || strcmp(a->name + nl - 6, "_total") != 0)
            continue;
        const sample_t *b = find_sample(&before, a->name, a->labels);
        double was = b != NULL ? b->value : 0;
        if (a->value < was)
            fail_msg("counter %s{%s} went down: %g -> %g", a->name, a->labels, was, a->value);
        increased += a->value > was;
    }
    if (increased < 2)
        fail_msg("only %zu counters increased after a flow", increased);
    /* counters by AS: this relay has no allow-list, so its anonymous identifier is "unlisted" (never the host) */
    int by_as = 0;
    for (size_t i = 0; i < after.n; i++) {
        by_as |= strstr(after.v[i].labels, "\"unlisted\"") != NULL;
        if (strstr(after.v[i].labels, "atlassian") != NULL)
            fail_msg("a metric label names the AS host: %s", after.v[i].labels);
    }
    if (!by_as)
        fail_msg("no metric is labelled with the AS identifier \"unlisted\"");
    /* no label carries a per-flow value */
    const char *secret[] = {s.session, s.state, s.poll_token, s2.session, s2.state, s2.poll_token, code, "127.0.0.1", RLY_TEST_UA};
    for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++)
        if (strstr(raw->body, secret[i]) != NULL)
            fail_msg("/metrics carries a per-flow value: %s", secret[i]);
}

/* the value of the first sample of a metric whose # TYPE is type and whose name contains part; -1 if none */
static double metric_like(const char *text, const samples_t *m, const char *type, const char *part, const char *suffix, char **name)
{
    for (const char *p = text; (p = strstr(p, "# TYPE ")) != NULL; p++) {
        const char *n = p + 7, *sp = strchr(n, ' '), *nl = strchr(n, '\n');
        if (sp == NULL || nl == NULL || sp > nl)
            continue;
        char *mname = rly_strf("%.*s", (int)(sp - n), n), *mtype = rly_strf("%.*s", (int)(nl - sp - 1), sp + 1);
        if (strcmp(mtype, type) != 0 || strstr(mname, part) == NULL)
            continue;
        char *sample = rly_strf("%s%s", mname, suffix);
        for (size_t i = 0; i < m->n; i++) {
            if (strcmp(m->v[i].name, sample) == 0) {
                if (name != NULL)
                    *name = sample;
                return m->v[i].value;
            }
        }
    }
    return -1;
}

static void test_metrics_gauges_and_histogram(void **state)
{
    (void)state;
    rly_response_t *raw = admin_get("/metrics");
    RLY_EXPECT(raw, 200, 0);
    samples_t m0 = parse_metrics(raw->body);
    char *hist = NULL, *waiting = NULL, *store = NULL;
    double count0 = metric_like(raw->body, &m0, "histogram", "", "_count", &hist);
    double wait0 = metric_like(raw->body, &m0, "gauge", "waiting", "", &waiting);
    double store0 = metric_like(raw->body, &m0, "gauge", "store", "", &store);
    if (count0 < 0)
        fail_msg("/metrics has no histogram (rendezvous latency)");
    if (wait0 < 0)
        fail_msg("/metrics has no gauge of waiting pickups");
    if (store0 != 1)
        fail_msg("/metrics has no store up gauge at 1 (got %g)", store0);

    /* a pickup waits; the metrics are scraped while it does; a callback wakes it */
    rly_session_t s;
    rly_create_ok(&relay, RLY_H2, &s);
    const char *hdrs[] = {rly_strf("Authorization: Bearer %s", s.poll_token), "Prefer: wait=5", NULL};
    rly_request_t reqs[3] = {
        {.url = s.poll_url, .headers = hdrs, .version = RLY_H2, .timeout_ms = 15000},
        {.url = rly_admin_url(&relay, "/metrics"), .start_ms = 400},
        {.url =
             rly_strf("%s/qorus-oauth2-redirect?%s", relay.public_url, rly_query("code", rly_token("c"), "state", s.state, NULL)),
         .start_ms = 800},
    };
    rly_response_t res[3];
    assert_int_equal(rly_http_multi(reqs, 3, res, 0, NULL, NULL), 0);
    RLY_EXPECT(&res[0], 200, RLY_H2);
    RLY_EXPECT(&res[1], 200, 0);
    RLY_EXPECT(&res[2], 303, 0);
    samples_t m1 = parse_metrics(res[1].body);
    double wait1 = metric_like(res[1].body, &m1, "gauge", "waiting", "", NULL);
    if (wait1 < wait0 + 1)
        fail_msg("%s was %g before and %g while a pickup waited", waiting, wait0, wait1);
    for (size_t i = 0; i < 3; i++)
        rly_response_free(&res[i]);

    raw = admin_get("/metrics");
    samples_t m2 = parse_metrics(raw->body);
    double count2 = metric_like(raw->body, &m2, "histogram", "", "_count", NULL);
    double wait2 = metric_like(raw->body, &m2, "gauge", "waiting", "", NULL);
    if (count2 < count0 + 1)
        fail_msg("%s did not count the woken pickup (%g -> %g)", hist, count0, count2);
    if (wait2 != wait0)
        fail_msg("%s is %g after the pickup was answered (was %g)", waiting, wait2, wait0);
}

static void test_options_reflected(void **state)
{
    (void)state;
    rly_relay_t r;
    static const char *const extra[] = {
        "--rate-limit",       "0",          "--session-ttl-max", "120", "--wait-max", "2", "--allow-as",
        "auth.atlassian.com", "--allow-as", "Login.Example.COM", NULL};
    assert_int_equal(rly_relay_start(&r, extra), 0);
    for (int v = RLY_H1; v <= RLY_H2; v++) {
        rly_request_t q = {.url = rly_url(&r, "/.well-known/authrelay"), .version = v};
        rly_response_t *res = rly_do(&q);
        RLY_EXPECT(res, 200, v);
        json_object *o = rly_json(res), *a;
        int64_t n;
        assert_int_equal(rly_jint(o, "session_ttl_max", &n), 0);
        assert_int_equal(n, 120);
        assert_int_equal(rly_jint(o, "wait_max", &n), 0);
        assert_int_equal(n, 2);
        assert_true(json_object_object_get_ex(o, "authorization_servers", &a));
        assert_int_equal(json_object_array_length(a), 2);
        const char *h0 = json_object_get_string(json_object_array_get_idx(a, 0));
        const char *h1 = json_object_get_string(json_object_array_get_idx(a, 1));
        /* lower-cased, in either order */
        if (!((strcmp(h0, "auth.atlassian.com") == 0 && strcmp(h1, "login.example.com") == 0) ||
              (strcmp(h1, "auth.atlassian.com") == 0 && strcmp(h0, "login.example.com") == 0)))
            fail_msg("authorization_servers: %s, %s", h0, h1);

        rly_session_t s;
        RLY_EXPECT(
            rly_create(&r, v, "{\"authorization_server\": \"https://login.example.com/oauth2/authorize\", \"ttl\": 120}", &s), 201,
            v);
        assert_true(s.expires_in <= 120 && s.expires_in >= 118);
        RLY_EXPECT(
            rly_create(&r, v, "{\"authorization_server\": \"https://login.example.com/oauth2/authorize\", \"ttl\": 121}", NULL),
            400, v);
        /* Prefer: wait=5 with wait_max 2: clamped, and said so */
        rly_response_t *p = rly_pickup(&s, v, 5);
        RLY_EXPECT(p, 202, v);
        RLY_EXPECT_STR(rly_header(p, "Preference-Applied"), "wait=2");
        if (p->elapsed < 1.8 || p->elapsed > 4.0)
            fail_msg("Prefer: wait=5 clamped to 2 answered after %.2f s", p->elapsed);
    }
    int rc = rly_relay_stop(&r);
    rly_relay_cleanup(&r);
    assert_int_equal(rc, 0);
}

static void test_version(void **state)
{
    (void)state;
    char *out, *err;
    char *argv[] = {(char *)rly_bin(), "version", NULL};
    assert_int_equal(rly_run(argv, 5000, &out, &err), 0);
    assert_non_null(strstr(out, "1.0.0"));
}

static int run_rc(char **argv, char **out, char **err)
{
    return rly_run(argv, 10000, out, err);
}

static void test_check_config(void **state)
{
    (void)state;
    char listen[32], admin[32];
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)rly_free_port());
    snprintf(admin, sizeof(admin), "127.0.0.1:%u", (unsigned)rly_free_port());
    char *out, *err;
    char *good[] = {(char *)rly_bin(), "check-config",       "--listen",  listen,    "--admin-listen", admin,
                    "--tls-cert",      relay.cert,           "--tls-key", relay.key, "--keys",         relay.keys,
                    "--allow-as",      "auth.atlassian.com", NULL};
    int rc = run_rc(good, &out, &err);
    if (rc != 0 || strstr(out, "configuration OK") == NULL)
        fail_msg("check-config with good options: exit %d, stdout \"%s\", stderr \"%s\"", rc, out, err);

    /* a private key that does not match the certificate */
    char *other_key = rly_strf("%s/other-key.pem", rly_tmpdir());
    char *genpkey[] = {"openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                       "-out",    other_key, NULL};
    assert_int_equal(run_rc(genpkey, &out, &err), 0);

    struct {
        const char *what;
        const char *opt, *val;
    } bad[] = {
        {"key file that is not a key file", "--keys", relay.cert},
        {"missing key file", "--keys", "/nonexistent/keys.json"},
        {"missing certificate", "--tls-cert", "/nonexistent/cert.pem"},
        {"wait-max over 300", "--wait-max", "301"},
        {"session-ttl-max under 60", "--session-ttl-max", "59"},
        {"bad listen address", "--listen", "not-an-address"},
        {"bad public URL", "--public-url", "not a url"},
        {"bad redis URL", "--redis", "ftp://redis.example:6379"},
        {"bad log level", "--log-level", "loud"},
        {"certificate is not a certificate", "--tls-cert", relay.keys},
        {"TLS key is not a key", "--tls-key", relay.keys},
        {"TLS key does not match the certificate", "--tls-key", other_key},
    };
    char *failures = rly_strf("%s", "");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        /* later flags win, so appending the bad one is enough */
        char *argv[] = {(char *)rly_bin(),  "check-config",     "--listen",  listen,    "--admin-listen", admin,
                        "--tls-cert",       relay.cert,         "--tls-key", relay.key, "--keys",         relay.keys,
                        (char *)bad[i].opt, (char *)bad[i].val, NULL};
        rc = run_rc(argv, &out, &err);
        if (rc != 1 || strstr(out, "configuration OK") != NULL)
            failures = rly_strf("%s\n  %s: exit %d, stdout \"%.100s\"", failures, bad[i].what, rc, out);
        else if (strstr(out, "authrelay:") == NULL && strstr(err, "authrelay:") == NULL)
            failures = rly_strf("%s\n  %s: no \"authrelay: ...\" error line", failures, bad[i].what);
    }
    /* --tls-cert without --tls-key */
    char *half[] = {(char *)rly_bin(), "check-config", "--listen", listen, "--admin-listen", admin, "--tls-cert",
                    relay.cert,        "--keys",       relay.keys, NULL};
    assert_int_equal(run_rc(half, &out, &err), 1);
    /* every error reported, not just the first */
    char *two[] = {(char *)rly_bin(),   "check-config", "--listen", listen,   "--admin-listen", admin,        "--tls-cert",
                   relay.cert,          "--tls-key",    relay.key,  "--keys", relay.keys,       "--wait-max", "301",
                   "--session-ttl-max", "59",           NULL};
    assert_int_equal(run_rc(two, &out, &err), 1);
    size_t lines = 0;
    for (const char *p = err; (p = strstr(p, "authrelay:")) != NULL; p++)
        lines++;
    for (const char *p = out; (p = strstr(p, "authrelay:")) != NULL; p++)
        lines++;
    if (lines < 2)
        fail_msg("check-config with two errors reported %zu: %s%s", lines, out, err);
    /* the environment twin */
    char *env[] = {"env",
                   "AUTHRELAY_WAIT_MAX=301",
                   (char *)rly_bin(),
                   "check-config",
                   "--listen",
                   listen,
                   "--admin-listen",
                   admin,
                   "--tls-cert",
                   relay.cert,
                   "--tls-key",
                   relay.key,
                   "--keys",
                   relay.keys,
                   NULL};
    assert_int_equal(run_rc(env, &out, &err), 1);
    char *envok[] = {"env",
                     "AUTHRELAY_WAIT_MAX=300",
                     (char *)rly_bin(),
                     "check-config",
                     "--listen",
                     listen,
                     "--admin-listen",
                     admin,
                     "--tls-cert",
                     relay.cert,
                     "--tls-key",
                     relay.key,
                     "--keys",
                     relay.keys,
                     NULL};
    assert_int_equal(run_rc(envok, &out, &err), 0);
    /* the bad configurations above, all reported at once */
    if (*failures != '\0')
        fail_msg("check-config accepted bad configurations (expected exit 1 and an error line):%s", failures);
}

static void test_usage_errors(void **state)
{
    (void)state;
    char *out, *err;
    char *cases[][6] = {
        {(char *)rly_bin(), "frobnicate", NULL},
        {(char *)rly_bin(), "serve", "--frobnicate", NULL},
        {(char *)rly_bin(), "check-config", "--nope", NULL},
        {(char *)rly_bin(), "check-config", "--listen", NULL},
        {(char *)rly_bin(), "serve", "--wait-max", NULL},
        {(char *)rly_bin(), "keygen", NULL},
        {(char *)rly_bin(), "--frobnicate", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = run_rc(cases[i], &out, &err);
        if (rc != 2)
            fail_msg("authrelay %s %s: expected exit 2, got %d", cases[i][1], cases[i][2] ? cases[i][2] : "", rc);
        assert_true(strlen(err) > 0);
    }
}

static void test_help(void **state)
{
    (void)state;
    const char *subs[] = {"serve", "check-config", "keygen", "audit", "version"};
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        char *out, *err;
        char *argv[] = {(char *)rly_bin(), (char *)subs[i], "--help", NULL};
        int rc = run_rc(argv, &out, &err);
        if (rc != 0 || strlen(out) == 0)
            fail_msg("authrelay %s --help: exit %d, %zu bytes on stdout", subs[i], rc, strlen(out));
    }
    char *out, *err;
    char *serve[] = {(char *)rly_bin(), "serve", "--help", NULL};
    run_rc(serve, &out, &err);
    const char *opts[] = {"--listen",     "--admin-listen", "--tls-cert",       "--keys",
                          "--public-url", "--wait-max",     "--shutdown-grace", "--rate-limit"};
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
        if (strstr(out, opts[i]) == NULL)
            fail_msg("serve --help does not mention %s", opts[i]);
}

static void test_keygen(void **state)
{
    (void)state;
    char *path = rly_strf("%s/keygen-%s.json", rly_tmpdir(), rly_token(""));
    char *out, *err;
    char *argv[] = {(char *)rly_bin(), "keygen", path, NULL};
    assert_int_equal(run_rc(argv, &out, &err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    size_t len;
    char *first = rly_read_file(path, &len);
    assert_non_null(first);
    rly_response_t fake = {.body = first, .body_len = len};
    json_object *o = rly_json(&fake);
    assert_non_null(o);
    json_object *keys;
    assert_true(json_object_object_get_ex(o, "keys", &keys));
    assert_int_equal(json_object_array_length(keys), 1);
    /* no key material on stdout or stderr */
    const char *k = rly_jstr(json_object_array_get_idx(keys, 0), "key");
    assert_non_null(k);
    assert_null(strstr(out, k));
    assert_null(strstr(err, k));

    /* refuses to overwrite */
    assert_int_equal(run_rc(argv, &out, &err), 1);
    RLY_EXPECT_STR(rly_read_file(path, NULL), first);

    /* --rotate: a new key first, the previous kept, at most 3 */
    char *rot[] = {(char *)rly_bin(), "keygen", "--rotate", path, NULL};
    for (int i = 0; i < 4; i++)
        assert_int_equal(run_rc(rot, &out, &err), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    fake.body = rly_read_file(path, &fake.body_len);
    o = rly_json(&fake);
    assert_true(json_object_object_get_ex(o, "keys", &keys));
    assert_int_equal(json_object_array_length(keys), 3);
    assert_null(strstr(fake.body, k)); /* the first key rotated out after 4 rotations */

    /* a relay starts with the rotated file: checked by check-config */
    char *cc[] = {(char *)rly_bin(), "check-config", "--listen", "127.0.0.1:8443", "--tls-cert", relay.cert, "--tls-key", relay.key,
                  "--keys",          path,           NULL};
    int rc = run_rc(cc, &out, &err);
    if (rc != 0)
        fail_msg("check-config with a rotated key file: exit %d: %s", rc, err);
}

typedef struct st_drain_t {
    rly_relay_t *r;
    double sent_at;
} drain_t;

static void send_sigterm(void *ud)
{
    drain_t *d = ud;
    d->sent_at = rly_now();
    rly_relay_signal(d->r, SIGTERM);
}

static void test_sigterm_drain(void **state)
{
    (void)state;
    rly_relay_t r;
    static const char *const extra[] = {"--rate-limit", "0", "--shutdown-grace", "5", NULL};
    assert_int_equal(rly_relay_start(&r, extra), 0);
    rly_session_t s1, s2;
    rly_create_ok(&r, RLY_H1, &s1);
    rly_create_ok(&r, RLY_H2, &s2);
    const char *h1[] = {rly_strf("Authorization: Bearer %s", s1.poll_token), "Prefer: wait=30", NULL};
    const char *h2[] = {rly_strf("Authorization: Bearer %s", s2.poll_token), "Prefer: wait=30", NULL};
    rly_request_t reqs[3] = {
        {.url = s1.poll_url, .headers = h1, .version = RLY_H1, .timeout_ms = 40000},
        {.url = s2.poll_url, .headers = h2, .version = RLY_H2, .timeout_ms = 40000},
        {.url = rly_admin_url(&r, "/readyz"), .timeout_ms = 2000, .start_ms = 520},
    };
    rly_response_t res[3];
    drain_t d = {&r, 0};
    double t0 = rly_now();
    rly_http_multi(reqs, 3, res, 500, send_sigterm, &d);
    double sigterm_at = d.sent_at - t0;
    int rc = rly_relay_wait(&r, 7000);
    double exited = rly_now() - d.sent_at;
    rly_relay_cleanup(&r);
    for (size_t i = 0; i < 2; i++) {
        if (res[i].status != 202)
            fail_msg("waiting pickup %zu (%s) during drain: expected 202, got %ld (%s); the relay exited with %d", i,
                     i == 0 ? "HTTP/1.1" : "h2", res[i].status, res[i].error, rc);
        RLY_EXPECT_STR(rly_jstr(rly_json(&res[i]), "status"), "pending");
        if (res[i].done_at < sigterm_at - 0.05 || res[i].done_at > sigterm_at + 2.0)
            fail_msg("waiting pickup %zu answered %.2f s after the start; SIGTERM was sent at %.2f s", i, res[i].done_at,
                     sigterm_at);
    }
    assert_int_equal(res[1].version, RLY_H2);
    /* /readyz, if the admin listener still answers during the drain, says not ready */
    if (res[2].status != 0 && res[2].status != 503)
        fail_msg("/readyz during the drain: expected 503 (or no answer), got %ld", res[2].status);
    for (size_t i = 0; i < 3; i++)
        rly_response_free(&res[i]);
    if (rc != 0)
        fail_msg("after SIGTERM the relay exited with %d after %.2f s (expected 0 within --shutdown-grace 5)", rc, exited);
    assert_true(exited < 5.5);
}

static void test_dev_mode(void **state)
{
    (void)state;
    rly_relay_t r;
    assert_int_equal(rly_relay_start_dev(&r, NULL), 0);
    unsigned fake = rly_free_port();
    for (int v = RLY_H1; v <= RLY_H2; v++) {
        rly_request_t q = {.url = rly_url(&r, "/.well-known/authrelay"), .version = v, .insecure = 1};
        rly_response_t *res = rly_do(&q);
        RLY_EXPECT(res, 200, v);
        RLY_EXPECT_STR(rly_jstr(rly_json(res), "redirect_uri"), rly_url(&r, "/qorus-oauth2-redirect"));

        const char *hdrs[] = {"Content-Type: application/json", NULL};
        char *body =
            rly_strf("{\"authorization_server\": \"http://127.0.0.1:%u/authorize\", \"return_uri\": \"http://127.0.0.1:%u/grant\"}",
                     fake, fake);
        rly_request_t c = {.method = "POST",
                           .url = rly_url(&r, "/v1/sessions"),
                           .headers = hdrs,
                           .body = body,
                           .body_len = strlen(body),
                           .version = v,
                           .insecure = 1};
        res = rly_do(&c);
        RLY_EXPECT(res, 201, v);
        json_object *o = rly_json(res);
        const char *st = rly_jstr(o, "state"), *poll = rly_jstr(o, "poll_url"), *tok = rly_jstr(o, "poll_token");
        assert_non_null(st);
        assert_non_null(poll);
        assert_non_null(tok);
        char *code = rly_token("dev-code-");
        rly_request_t cb = {
            .url = rly_strf("%s?%s", rly_url(&r, "/qorus-oauth2-redirect"), rly_query("code", code, "state", st, NULL)),
            .version = v,
            .insecure = 1};
        res = rly_do(&cb);
        RLY_EXPECT(res, 303, v);
        RLY_EXPECT_STR(rly_header(res, "Location"), rly_strf("http://127.0.0.1:%u/grant?status=success", fake));
        const char *auth[] = {rly_strf("Authorization: Bearer %s", tok), NULL};
        rly_request_t p = {.url = poll, .headers = auth, .version = v, .insecure = 1};
        res = rly_do(&p);
        RLY_EXPECT(res, 200, v);
        RLY_EXPECT_STR(rly_jstr(rly_json(res), "code"), code);
        rly_request_t del = {.method = "DELETE", .url = poll, .headers = auth, .version = v, .insecure = 1};
        RLY_EXPECT(rly_do(&del), 204, v);
    }
    int rc = rly_relay_stop(&r);
    rly_relay_cleanup(&r);
    assert_int_equal(rc, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLY_TEST(test_admin_health),
        RLY_TEST(test_metrics_count_flows),
        RLY_TEST(test_metrics_gauges_and_histogram),
        RLY_TEST(test_options_reflected),
        RLY_TEST(test_version),
        RLY_TEST(test_check_config),
        RLY_TEST(test_usage_errors),
        RLY_TEST(test_help),
        RLY_TEST(test_keygen),
        RLY_TEST(test_dev_mode),
        RLY_TEST(test_sigterm_drain),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
