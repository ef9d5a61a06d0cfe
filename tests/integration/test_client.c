/* test_client.c: `authrelay client authorize` as a child process against the real relay, the fake AS and a scripted fake relay */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "harness.h"
#include "b64url.h"
#include "client.h"
#include "query.h"
#include "seal.h"

extern char **environ;

static rly_relay_t relay;

#define CLIENT_TIMEOUT_MS 30000
#define CODE "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJlX29mX3RoZV9jb2Rl"
#define SECRET "s3cr3t-client-secret-value"

static int group_setup(void **state)
{
    (void)state;
    /* --dev (with our own certificate and keys): an http authorization server on loopback is accepted */
    static const char *const extra[] = {"--dev", "--rate-limit", "0", NULL};
    return rly_relay_start(&relay, extra);
}

static int group_teardown(void **state)
{
    (void)state;
    return rly_relay_finish(&relay);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- the client as a child process ---- */

typedef struct st_child_t {
    pid_t pid;
    char out_path[320], err_path[320];
    int status;
    char *out, *err; /* arena-owned, after child_wait */
} child_t;

/* the environment without AUTHRELAY_* and without a display (no xdg-open in tests); arena-owned */
static char **child_env(void)
{
    size_t n = 0, j = 0;
    while (environ[n] != NULL)
        n++;
    char **env = rly_keep(calloc(n + 1, sizeof(*env)));
    for (size_t i = 0; i != n; i++)
        if (strncmp(environ[i], "AUTHRELAY_", 10) != 0 && strncmp(environ[i], "DISPLAY=", 8) != 0 &&
            strncmp(environ[i], "WAYLAND_DISPLAY=", 16) != 0)
            env[j++] = environ[i];
    return env;
}

/* spawns argv (argv[0] looked up in PATH) with stdout and stderr to files of the temporary dir */
static void spawn_child(child_t *c, char *const *argv)
{
    static unsigned counter;
    posix_spawn_file_actions_t fa;

    memset(c, 0, sizeof(*c));
    c->status = -1;
    counter++;
    snprintf(c->out_path, sizeof(c->out_path), "%s/client-%u.out", rly_tmpdir(), counter);
    snprintf(c->err_path, sizeof(c->err_path), "%s/client-%u.err", rly_tmpdir(), counter);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, c->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, c->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int rc = posix_spawnp(&c->pid, argv[0], &fa, NULL, argv, child_env());
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        fail_msg("cannot run %s: %s", argv[0], strerror(rc));
}

/* starts `authrelay client authorize <args...>` (NULL-terminated) */
static void client_start(child_t *c, const char *const *args)
{
    char *argv[64];
    size_t n = 0;
    argv[n++] = (char *)rly_bin();
    argv[n++] = "client";
    argv[n++] = "authorize";
    for (size_t i = 0; args[i] != NULL; i++) {
        assert_true(n < 63);
        argv[n++] = (char *)args[i];
    }
    argv[n] = NULL;
    spawn_child(c, argv);
}

/* waits for the child (killing it after timeout_ms) and reads what it wrote; returns its exit status */
static int child_wait(child_t *c, long timeout_ms)
{
    double deadline = rly_now() + (double)timeout_ms / 1000;
    int st;
    for (;;) {
        pid_t w = waitpid(c->pid, &st, WNOHANG);
        if (w == c->pid)
            break;
        if (rly_now() > deadline) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &st, 0);
            c->out = rly_read_file(c->out_path, NULL);
            c->err = rly_read_file(c->err_path, NULL);
            fail_msg("the client did not exit within %ld ms; stderr: %s", timeout_ms, c->err);
        }
        sleep_ms(10);
    }
    c->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    c->out = rly_read_file(c->out_path, NULL);
    c->err = rly_read_file(c->err_path, NULL);
    if (c->out == NULL)
        c->out = rly_strf("%s", "");
    if (c->err == NULL)
        c->err = rly_strf("%s", "");
    return c->status;
}

/* the URL of the "Open: " line of the client's stderr, once it is complete; fails if the client exits first */
static char *wait_open(child_t *c)
{
    double deadline = rly_now() + 15;
    for (;;) {
        char *err = rly_read_file(c->err_path, NULL);
        const char *p = err != NULL ? strstr(err, "Open: ") : NULL;
        if (p != NULL && (p == err || p[-1] == '\n')) {
            const char *nl = strchr(p, '\n');
            if (nl != NULL)
                return rly_strf("%.*s", (int)(nl - p - 6), p + 6);
        }
        int st;
        if (waitpid(c->pid, &st, WNOHANG) == c->pid) {
            c->pid = 0;
            fail_msg("the client exited (status %d) before printing the URL; stderr: %s", WIFEXITED(st) ? WEXITSTATUS(st) : -1,
                     err != NULL ? err : "");
        }
        if (rly_now() > deadline) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, NULL, 0);
            fail_msg("no \"Open: \" line within 15 s; stderr: %s", err != NULL ? err : "");
        }
        sleep_ms(10);
    }
}

/* the value of the only parameter name of url's query (fails if absent or repeated); arena-owned */
static const char *qparam(const char *url, const char *name)
{
    const char *q = strchr(url, '?');
    assert_non_null(q);
    q++;
    size_t len = strlen(q);
    char *buf = rly_keep(malloc(len + 1));
    rly_qparam_t params[RLY_QUERY_PARAMS_MAX];
    int n = rly_query_parse(q, len, buf, len + 1, params, RLY_QUERY_PARAMS_MAX);
    assert_true(n >= 0);
    size_t count = 0;
    const rly_qparam_t *p = rly_query_find(params, (size_t)n, name, &count);
    if (p == NULL)
        return NULL;
    if (count != 1)
        fail_msg("parameter %s appears %zu times in %s", name, count, url);
    return rly_strf("%.*s", (int)p->value.len, p->value.base);
}

/* the number of lines of s that start with prefix */
static size_t count_lines(const char *s, const char *prefix)
{
    size_t n = 0, plen = strlen(prefix);
    for (const char *p = s; p != NULL && *p != '\0';) {
        if (strncmp(p, prefix, plen) == 0)
            n++;
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return n;
}

/* stdout is exactly one line of JSON: returns the object (arena-owned) */
static json_object *stdout_json(const child_t *c)
{
    size_t len = strlen(c->out);
    if (len == 0 || c->out[len - 1] != '\n' || strchr(c->out, '\n') != c->out + len - 1)
        fail_msg("stdout is not one line: \"%s\"; stderr: %s", c->out, c->err);
    rly_response_t fake = {.status = 200, .body = c->out, .body_len = len};
    json_object *o = rly_json(&fake);
    if (o == NULL)
        fail_msg("stdout is not JSON: %s", c->out);
    return o;
}

static void expect_err_contains(const child_t *c, const char *needle)
{
    if (strstr(c->err, needle) == NULL)
        fail_msg("expected \"%s\" in the client's stderr: %s", needle, c->err);
}

/* plays the AS redirect: GET the relay's redirect_uri with query; returns the response */
static rly_response_t *browser_callback(const char *redirect_uri, const char *query)
{
    rly_request_t q = {.url = rly_strf("%s?%s", redirect_uri, query), .version = RLY_H2};
    return rly_do(&q);
}

/* ---- against the real relay ---- */

static void test_authorized(void **state)
{
    (void)state;
    const char *const args[] = {"--relay",
                                relay.public_url,
                                "--cacert",
                                relay.cert,
                                "--authorize-url",
                                "http://127.0.0.1:9/authorize",
                                "--client-id",
                                "cid",
                                "--scope",
                                "read:jira-work",
                                "--scope",
                                "offline_access",
                                "--audience",
                                "api.atlassian.com",
                                "--prompt",
                                "consent",
                                "--param",
                                "login_hint=jo@example.com",
                                "--return-uri",
                                RLY_TEST_RETURN,
                                NULL};
    long long h1 = rly_metric(&relay, "authrelay_http_requests_total{version=\"1\"}"),
              h2 = rly_metric(&relay, "authrelay_http_requests_total{version=\"2\"}");
    child_t c;
    client_start(&c, args);
    char *url = wait_open(&c);

    /* the authorize URL exactly as Atlassian expects it */
    assert_true(strncmp(url,
                        "http://127.0.0.1:9/authorize?audience=api.atlassian.com&client_id=cid&scope=read%3Ajira-work%20"
                        "offline_access&redirect_uri=",
                        strlen("http://127.0.0.1:9/authorize?audience=api.atlassian.com&client_id=cid&scope=read%3Ajira-work%20"
                               "offline_access&redirect_uri=")) == 0);
    RLY_EXPECT_STR(qparam(url, "audience"), "api.atlassian.com");
    RLY_EXPECT_STR(qparam(url, "client_id"), "cid");
    RLY_EXPECT_STR(qparam(url, "scope"), "read:jira-work offline_access");
    const char *redirect = qparam(url, "redirect_uri");
    RLY_EXPECT_STR(redirect, rly_url(&relay, "/qorus-oauth2-redirect"));
    const char *st = qparam(url, "state");
    assert_non_null(st);
    assert_true(rly_is_b64url(st));
    RLY_EXPECT_STR(qparam(url, "response_type"), "code");
    RLY_EXPECT_STR(qparam(url, "prompt"), "consent");
    RLY_EXPECT_STR(qparam(url, "login_hint"), "jo@example.com");
    assert_null(qparam(url, "code_challenge"));
    assert_null(qparam(url, "code_challenge_method"));

    /* the client is long-polling by now; the AS redirects the browser to the relay */
    sleep_ms(300);
    rly_response_t *res = browser_callback(redirect, rly_query("code", CODE, "state", st, NULL));
    RLY_EXPECT(res, 303, RLY_H2);

    assert_int_equal(child_wait(&c, CLIENT_TIMEOUT_MS), 0);
    json_object *o = stdout_json(&c);
    static const char *const keys[] = {"status", "code", "state", NULL};
    assert_true(rly_jkeys_exactly(o, keys));
    RLY_EXPECT_STR(rly_jstr(o, "status"), "authorized");
    RLY_EXPECT_STR(rly_jstr(o, "code"), CODE);
    RLY_EXPECT_STR(rly_jstr(o, "state"), st);
    assert_int_equal(count_lines(c.err, "Open: "), 1);
    assert_null(strstr(c.err, "warning")); /* the DELETE succeeded */
    /* the client spoke HTTP/2 to the relay: discovery, session, at least one pickup and the DELETE, plus the browser's
     * callback (also h2 here); nothing over HTTP/1.1 */
    assert_int_equal(rly_metric(&relay, "authrelay_http_requests_total{version=\"1\"}"), h1);
    assert_true(rly_metric(&relay, "authrelay_http_requests_total{version=\"2\"}") >= h2 + 5);

    /* the session was acknowledged: a second callback finds it gone */
    res = browser_callback(redirect, rly_query("code", CODE, "state", st, NULL));
    RLY_EXPECT(res, 410, 0);
}

static void test_sealed_pkce(void **state)
{
    (void)state;
    const char *const args[] = {"--relay",
                                relay.public_url,
                                "--cacert",
                                relay.cert,
                                "--authorize-url",
                                RLY_TEST_AS,
                                "--client-id",
                                "cid",
                                "--scope",
                                "read:jira-work",
                                "--audience",
                                "api.atlassian.com",
                                "--prompt",
                                "consent",
                                "--seal",
                                "--pkce",
                                "--ttl",
                                "120",
                                NULL};
    child_t c;
    client_start(&c, args);
    char *url = wait_open(&c);
    const char *ch = qparam(url, "code_challenge");
    assert_non_null(ch);
    assert_int_equal(strlen(ch), 43);
    assert_true(rly_is_b64url(ch));
    RLY_EXPECT_STR(qparam(url, "code_challenge_method"), "S256");
    const char *st = qparam(url, "state");
    rly_response_t *res = browser_callback(qparam(url, "redirect_uri"), rly_query("code", CODE, "state", st, NULL));
    RLY_EXPECT(res, 200, RLY_H2); /* no return_uri: the relay's own page */

    assert_int_equal(child_wait(&c, CLIENT_TIMEOUT_MS), 0);
    json_object *o = stdout_json(&c);
    RLY_EXPECT_STR(rly_jstr(o, "status"), "authorized");
    RLY_EXPECT_STR(rly_jstr(o, "code"), CODE);
    RLY_EXPECT_STR(rly_jstr(o, "state"), st);
    /* the relay never wrote the code, the state or the challenge */
    char *log = rly_strf("%s%s", rly_relay_stdout(&relay, NULL), rly_relay_stderr(&relay, NULL));
    assert_null(strstr(log, CODE));
    assert_null(strstr(log, st));
    assert_null(strstr(log, ch));
}

static void test_denied(void **state)
{
    (void)state;
    const char *const args[] = {"--relay",   relay.public_url, "--cacert", relay.cert, "--authorize-url",
                                RLY_TEST_AS, "--client-id",    "cid",      "--seal",   NULL};
    child_t c;
    client_start(&c, args);
    char *url = wait_open(&c);
    rly_response_t *res =
        browser_callback(qparam(url, "redirect_uri"), rly_query("error", "access_denied", "error_description",
                                                                "The user denied access", "state", qparam(url, "state"), NULL));
    RLY_EXPECT(res, 200, 0);
    assert_int_equal(child_wait(&c, CLIENT_TIMEOUT_MS), 3);
    json_object *o = stdout_json(&c);
    RLY_EXPECT_STR(rly_jstr(o, "status"), "denied");
    RLY_EXPECT_STR(rly_jstr(o, "error"), "access_denied");
    RLY_EXPECT_STR(rly_jstr(o, "error_description"), "The user denied access");
    expect_err_contains(&c, "authrelay client: denied: access_denied (The user denied access)");
}

static void test_unreachable(void **state)
{
    (void)state;
    unsigned short port = rly_free_port();
    assert_true(port != 0);
    child_t c;
    const char *const args[] = {"--relay",
                                rly_strf("https://localhost:%u", port),
                                "--cacert",
                                relay.cert,
                                "--authorize-url",
                                RLY_TEST_AS,
                                "--client-id",
                                "cid",
                                "--timeout",
                                "5",
                                NULL};
    client_start(&c, args);
    assert_int_equal(child_wait(&c, CLIENT_TIMEOUT_MS), 1);
    expect_err_contains(&c, "authrelay client: relay unreachable: ");
    assert_string_equal(c.out, "");
    assert_int_equal(count_lines(c.err, "Open: "), 0);
}

static void test_untrusted_certificate(void **state)
{
    (void)state;
    /* no --cacert: the relay's self-signed certificate is not trusted */
    child_t c;
    const char *const args[] = {"--relay", relay.public_url, "--authorize-url", RLY_TEST_AS, "--client-id", "cid", NULL};
    client_start(&c, args);
    assert_int_equal(child_wait(&c, CLIENT_TIMEOUT_MS), 1);
    expect_err_contains(&c, "authrelay client: relay unreachable: ");
    assert_string_equal(c.out, "");

    /* --insecure on a loopback relay: works, and says so */
    const char *const args2[] = {"--relay",   relay.public_url, "--insecure", "--authorize-url",
                                 RLY_TEST_AS, "--client-id",    "cid",        NULL};
    client_start(&c, args2);
    char *url = wait_open(&c);
    RLY_EXPECT(browser_callback(qparam(url, "redirect_uri"), rly_query("code", "c", "state", qparam(url, "state"), NULL)), 200, 0);
    assert_int_equal(child_wait(&c, CLIENT_TIMEOUT_MS), 0);
    expect_err_contains(&c, "authrelay client: warning: --insecure: TLS certificates of loopback hosts are not checked");
}

static void test_usage_errors(void **state)
{
    (void)state;
    static const struct {
        const char *args[12];
        const char *msg;
    } cases[] = {
        {{"--relay", "http://relay.example", "--authorize-url", RLY_TEST_AS, "--client-id", "cid", NULL},
         "--relay: http:// is accepted only for a loopback host"},
        {{"--relay", "https://relay.example", "--authorize-url", "http://auth.example/authorize", "--client-id", "cid", NULL},
         "--authorize-url: http:// is accepted only for a loopback host"},
        {{"--relay", "https://relay.example", "--insecure", "--authorize-url", RLY_TEST_AS, "--client-id", "cid", NULL},
         "--insecure is accepted only for a loopback relay"},
        {{"--relay", "https://relay.example", "--authorize-url", RLY_TEST_AS, NULL}, "--client-id ID is required"},
        {{"--relay", "https://relay.example", "--authorize-url", RLY_TEST_AS, "--client-id", "c", "--ttl", "10", NULL}, "--ttl"},
        {{"--bogus", NULL}, "unknown option: --bogus"},
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); i++) {
        child_t c;
        client_start(&c, cases[i].args);
        assert_int_equal(child_wait(&c, CLIENT_TIMEOUT_MS), 2);
        expect_err_contains(&c, rly_strf("authrelay client: %s", cases[i].msg));
        assert_int_equal(count_lines(c.err, "authrelay client: "), 1);
        assert_string_equal(c.out, "");
    }
    /* --help: exit 0, the exit codes documented */
    char *out = NULL;
    char *const argv[] = {(char *)rly_bin(), "client", "authorize", "--help", NULL};
    assert_int_equal(rly_run(argv, 10000, &out, NULL), 0);
    assert_non_null(strstr(out, "  4  expired"));
    assert_non_null(strstr(out, "  5  bad seal"));
    char *const argv2[] = {(char *)rly_bin(), "client", "frobnicate", NULL};
    assert_int_equal(rly_run(argv2, 10000, NULL, NULL), 2);
}

/* ---- against the fake AS (tests/fake-as/server.js) ---- */

typedef struct st_node_t {
    pid_t pid;
    unsigned short port;
} node_t;

static void node_start(node_t *n)
{
    const char *src = getenv("RLY_SOURCE_DIR");
    if (src == NULL)
        fail_msg("RLY_SOURCE_DIR is not set: cannot find tests/fake-as/server.js");
    char *script = rly_strf("%s/tests/fake-as/server.js", src);
    if (access(script, R_OK) != 0)
        fail_msg("%s is missing: the token exchange case needs the fake AS", script);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    char *const argv[] = {"node", script, "--port", "0", "--client-secret", SECRET, NULL};
    int rc = posix_spawnp(&n->pid, "node", &fa, NULL, argv, child_env());
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        fail_msg("cannot run node (needed for the fake AS): %s", strerror(rc));
    }
    char line[128];
    size_t len = 0;
    double deadline = rly_now() + 10;
    while (len < sizeof(line) - 1 && memchr(line, '\n', len) == NULL && rly_now() < deadline) {
        struct pollfd p = {fds[0], POLLIN, 0};
        if (poll(&p, 1, 200) <= 0)
            continue;
        ssize_t r = read(fds[0], line + len, sizeof(line) - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fds[0]);
    line[len] = '\0';
    long port = 0;
    if (strncmp(line, "listening ", 10) != 0 || (port = strtol(line + 10, NULL, 10)) <= 0 || port > 65535) {
        kill(n->pid, SIGKILL);
        waitpid(n->pid, NULL, 0);
        fail_msg("the fake AS did not start: \"%s\"", line);
    }
    n->port = (unsigned short)port;
}

static void node_stop(node_t *n)
{
    if (n->pid > 0) {
        kill(n->pid, SIGTERM);
        waitpid(n->pid, NULL, 0);
        n->pid = 0;
    }
}

static void test_token_exchange_fake_as(void **state)
{
    (void)state;
    node_t as;
    node_start(&as);
    char *secret_file = rly_strf("%s/client-secret", rly_tmpdir());
    FILE *f = fopen(secret_file, "w");
    assert_non_null(f);
    fputs("  " SECRET "\n\n", f); /* trimmed by the client */
    fclose(f);
    char *base = rly_strf("http://127.0.0.1:%u", as.port);
    const char *const args[] = {"--relay",
                                relay.public_url,
                                "--cacert",
                                relay.cert,
                                "--authorize-url",
                                rly_strf("%s/authorize", base),
                                "--client-id",
                                "qorus-test",
                                "--scope",
                                "read:jira-work",
                                "--scope",
                                "offline_access",
                                "--audience",
                                "api.atlassian.com",
                                "--prompt",
                                "consent",
                                "--token-url",
                                rly_strf("%s/token", base),
                                "--client-secret-file",
                                secret_file,
                                "--pkce",
                                "--seal",
                                NULL};
    child_t c;
    client_start(&c, args);
    char *url = wait_open(&c);

    /* the browser: the consent page, "Allow", the AS's redirect to the relay */
    rly_request_t q1 = {.url = url};
    rly_response_t *page = rly_do(&q1);
    RLY_EXPECT(page, 200, 0);
    const char *m = strstr(page->body, "name=\"request\" value=\"");
    if (m == NULL)
        fail_msg("no consent request id in the fake AS page: %.500s", page->body);
    m += strlen("name=\"request\" value=\"");
    char *id = rly_strf("%.*s", (int)strcspn(m, "\""), m);
    static const char *const form[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    char *body = rly_query("request", id, "decision", "allow", NULL);
    rly_request_t q2 = {
        .method = "POST", .url = rly_strf("%s/authorize/decision", base), .headers = form, .body = body, .body_len = strlen(body)};
    rly_response_t *dec = rly_do(&q2);
    RLY_EXPECT(dec, 302, 0);
    const char *loc = rly_header(dec, "Location");
    assert_non_null(loc);
    assert_true(strncmp(loc, rly_url(&relay, "/qorus-oauth2-redirect?"), strlen(rly_url(&relay, "/qorus-oauth2-redirect?"))) == 0);
    rly_request_t q3 = {.url = loc, .version = RLY_H2};
    RLY_EXPECT(rly_do(&q3), 200, RLY_H2);

    int st = child_wait(&c, CLIENT_TIMEOUT_MS);
    if (st != 0)
        fail_msg("client exit %d; stderr: %s", st, c.err);
    json_object *o = stdout_json(&c);
    const char *at = rly_jstr(o, "access_token"), *rt = rly_jstr(o, "refresh_token");
    assert_non_null(at);
    assert_non_null(rt);
    assert_true(strncmp(at, "at_", 3) == 0);
    RLY_EXPECT_STR(rly_jstr(o, "token_type"), "Bearer");
    RLY_EXPECT_STR(rly_jstr(o, "scope"), "read:jira-work offline_access");

    /* what the AS saw at its token endpoint: the secret in the body and the verifier */
    rly_request_t q4 = {.url = rly_strf("%s/_log", base)};
    rly_response_t *lg = rly_do(&q4);
    RLY_EXPECT(lg, 200, 0);
    json_object *arr = rly_json(lg);
    assert_non_null(arr);
    int tokens = 0;
    for (size_t i = 0; i != json_object_array_length(arr); i++) {
        json_object *e = json_object_array_get_idx(arr, i), *p;
        if (rly_jstr(e, "path") == NULL || strcmp(rly_jstr(e, "path"), "/token") != 0)
            continue;
        tokens++;
        RLY_EXPECT_STR(rly_jstr(e, "outcome"), "token");
        assert_true(json_object_object_get_ex(e, "params", &p));
        RLY_EXPECT_STR(rly_jstr(p, "client_auth"), "client_secret_post");
        RLY_EXPECT_STR(rly_jstr(p, "redirect_uri"), rly_url(&relay, "/qorus-oauth2-redirect"));
        json_object *b;
        assert_true(json_object_object_get_ex(p, "code_verifier_present", &b) && json_object_get_boolean(b));
    }
    assert_int_equal(tokens, 1);
    /* the relay never saw (so never wrote) a token or the secret */
    char *log = rly_strf("%s%s", rly_relay_stdout(&relay, NULL), rly_relay_stderr(&relay, NULL));
    assert_null(strstr(log, at));
    assert_null(strstr(log, rt));
    assert_null(strstr(log, SECRET));
    node_stop(&as);
}

/* ---- against a scripted fake relay (plain HTTP on loopback) that records every byte it receives ---- */

typedef struct st_fake_t fake_t;
typedef struct st_fake_req_t {
    char method[16];
    char path[512];
    char headers[2048]; /* the request line and headers */
    const char *body;   /* only during the handler */
    double at;
} fake_req_t;

struct st_fake_t {
    int fd;
    unsigned short port;
    pthread_t tid;
    atomic_int stop;
    pthread_mutex_t mu;
    char *raw; /* every byte received, requests separated by "\n----\n" */
    size_t raw_len, raw_cap;
    fake_req_t reqs[64];
    size_t nreqs;
    /* the script (read and written by the server thread only while the client runs) */
    int (*handler)(fake_t *f, const fake_req_t *req, char *hdrs, size_t hcap, char *body, size_t bcap);
    const char *mode;
    int wait_max, expires_in, delete_status, pickups;
    char seal_key[64];
    char verifier[256]; /* the token fake: the code_verifier it received */
};

static void raw_add(fake_t *f, const char *p, size_t n)
{
    if (f->raw_len + n + 1 > f->raw_cap) {
        size_t cap = f->raw_cap != 0 ? f->raw_cap * 2 : 65536;
        while (cap < f->raw_len + n + 1)
            cap *= 2;
        f->raw = realloc(f->raw, cap);
        if (f->raw == NULL)
            abort(); /* the server thread cannot fail a cmocka test */
        f->raw_cap = cap;
    }
    memcpy(f->raw + f->raw_len, p, n);
    f->raw_len += n;
    f->raw[f->raw_len] = '\0';
}

static void fake_serve_one(fake_t *f, int cfd)
{
    char buf[65536];
    size_t len = 0;
    char *end = NULL;
    struct timeval tv = {5, 0};
    setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (end == NULL && len < sizeof(buf) - 1) {
        ssize_t r = read(cfd, buf + len, sizeof(buf) - 1 - len);
        if (r <= 0)
            return;
        len += (size_t)r;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    if (end == NULL)
        return;
    size_t hlen = (size_t)(end - buf) + 4, clen = 0;
    for (const char *p = buf; p != NULL && p < end; p = strstr(p, "\r\n"), p = p != NULL ? p + 2 : NULL)
        if (strncasecmp(p, "Content-Length:", 15) == 0)
            clen = (size_t)strtoul(p + 15, NULL, 10);
    while (len < hlen + clen && len < sizeof(buf) - 1) {
        ssize_t r = read(cfd, buf + len, sizeof(buf) - 1 - len);
        if (r <= 0)
            return;
        len += (size_t)r;
    }
    buf[len] = '\0';

    fake_req_t req;
    memset(&req, 0, sizeof(req));
    size_t ml = strcspn(buf, " ");
    snprintf(req.method, sizeof(req.method), "%.*s", (int)ml, buf);
    const char *path = buf + ml + 1;
    snprintf(req.path, sizeof(req.path), "%.*s", (int)strcspn(path, " "), path);
    req.at = rly_now();
    snprintf(req.headers, sizeof(req.headers), "%.*s", (int)(hlen - 2), buf); /* ends with one CRLF */
    req.body = buf + hlen;

    char hdrs[1024] = "", body[16384] = "";
    int status = f->handler(f, &req, hdrs, sizeof(hdrs), body, sizeof(body));
    pthread_mutex_lock(&f->mu);
    raw_add(f, buf, len);
    raw_add(f, "\n----\n", 6);
    req.body = NULL;
    if (f->nreqs < sizeof(f->reqs) / sizeof(f->reqs[0]))
        f->reqs[f->nreqs++] = req;
    pthread_mutex_unlock(&f->mu);
    if (status == 0)
        return; /* drop the connection without an answer */
    char out[20000];
    int n = snprintf(out, sizeof(out), "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n%s", status,
                     strlen(body), hdrs, body);
    if (n > 0 && (size_t)n < sizeof(out) && write(cfd, out, (size_t)n) != n)
        return;
}

static void *fake_main(void *ud)
{
    fake_t *f = ud;
    while (!atomic_load(&f->stop)) {
        struct pollfd p = {f->fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int cfd = accept(f->fd, NULL, NULL);
        if (cfd < 0)
            continue;
        fake_serve_one(f, cfd);
        close(cfd);
    }
    return NULL;
}

static void fake_start(fake_t *f, int (*handler)(fake_t *, const fake_req_t *, char *, size_t, char *, size_t), const char *mode)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    memset(f, 0, sizeof(*f));
    f->handler = handler;
    f->mode = mode;
    f->wait_max = 1;
    f->expires_in = 600;
    f->delete_status = 204;
    pthread_mutex_init(&f->mu, NULL);
    f->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->fd >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(f->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(f->fd, 16), 0);
    assert_int_equal(getsockname(f->fd, (struct sockaddr *)&a, &alen), 0);
    f->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&f->tid, NULL, fake_main, f), 0);
}

static void fake_stop(fake_t *f)
{
    atomic_store(&f->stop, 1);
    pthread_join(f->tid, NULL);
    close(f->fd);
    pthread_mutex_destroy(&f->mu);
    rly_keep(f->raw); /* freed with the arena (tests read it after stopping) */
}

#define FAKE_SESSION "AAECAwQFBgcICQoLDA0ODw"
#define FAKE_STATE "fake_state_0123456789"
#define FAKE_TOKEN "poll_token_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

static int relay_handler(fake_t *f, const fake_req_t *req, char *hdrs, size_t hcap, char *body, size_t bcap)
{
    char base[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%u", f->port);
    if (strcmp(req->method, "GET") == 0 && strcmp(req->path, "/.well-known/authrelay") == 0) {
        snprintf(body, bcap,
                 "{\"version\":\"1\",\"redirect_uri\":\"https://relay.example/qorus-oauth2-redirect\","
                 "\"sessions_endpoint\":\"%s/v1/sessions\",\"session_ttl_max\":600,\"wait_max\":%d,"
                 "\"authorization_servers\":[],\"seal_algorithms\":[\"" RLY_SEAL_ALGORITHM "\"]}",
                 base, f->wait_max);
        return 200;
    }
    if (strcmp(req->method, "POST") == 0 && strcmp(req->path, "/v1/sessions") == 0) {
        if (strcmp(f->mode, "create_403") == 0) {
            snprintf(body, bcap, "{\"error\":\"authorization_server_not_allowed\",\"error_description\":\"not on the list\"}");
            return 403;
        }
        const char *k = strstr(req->body, "\"seal_key\":\"");
        if (k != NULL)
            snprintf(f->seal_key, sizeof(f->seal_key), "%.*s", (int)strcspn(k + 12, "\""), k + 12);
        snprintf(body, bcap,
                 "{\"session\":\"" FAKE_SESSION "\",\"state\":\"" FAKE_STATE "\",\"redirect_uri\":"
                 "\"https://relay.example/qorus-oauth2-redirect\",\"poll_url\":\"%s/v1/sessions/" FAKE_SESSION "\","
                 "\"poll_token\":\"" FAKE_TOKEN "\",\"expires_in\":%d}",
                 base, f->expires_in);
        return 201;
    }
    if (strcmp(req->path, "/v1/sessions/" FAKE_SESSION) != 0)
        return 404;
    if (strcmp(req->method, "DELETE") == 0)
        return f->delete_status;
    int n = f->pickups++;
    static const char result[] = "{\"status\":\"authorized\",\"code\":\"" CODE "\",\"state\":\"" FAKE_STATE "\"}";
    if (strcmp(f->mode, "retry") == 0) {
        /* dropped connection, 503 with Retry-After, an early 202, then the result */
        if (n == 0)
            return 0;
        if (n == 1) {
            snprintf(hdrs, hcap, "Retry-After: 1\r\n");
            snprintf(body, bcap, "{\"error\":\"temporarily_unavailable\",\"error_description\":\"store down\"}");
            return 503;
        }
        if (n == 2) {
            snprintf(body, bcap, "{\"status\":\"pending\",\"expires_in\":500}");
            return 202;
        }
    }
    if (strcmp(f->mode, "pending") == 0) {
        sleep_ms(200);
        snprintf(body, bcap, "{\"status\":\"pending\",\"expires_in\":1}");
        return 202;
    }
    if (strcmp(f->mode, "gone") == 0) {
        snprintf(body, bcap, "{\"error\":\"not_found\",\"error_description\":\"unknown or expired session\"}");
        return 404;
    }
    if (strcmp(f->mode, "seal_wrong_aad") == 0 || strcmp(f->mode, "seal_ok") == 0) {
        uint8_t pub[32];
        const char *aad = strcmp(f->mode, "seal_ok") == 0 ? FAKE_SESSION : "BBECAwQFBgcICQoLDA0ODw";
        char *sealed = NULL;
        if (rly_b64url_decode(pub, sizeof(pub), f->seal_key, strlen(f->seal_key)) != 32 ||
            (sealed = rly_seal(pub, aad, strlen(aad), (const uint8_t *)result, strlen(result), NULL, NULL)) == NULL)
            return 500;
        snprintf(body, bcap, "{\"status\":\"sealed\",\"sealed\":\"%s\"}", sealed);
        free(sealed);
        return 200;
    }
    snprintf(body, bcap, "%s", result);
    return 200;
}

static int token_handler(fake_t *f, const fake_req_t *req, char *hdrs, size_t hcap, char *body, size_t bcap)
{
    (void)hdrs, (void)hcap;
    const char *v = strstr(req->body, "code_verifier=");
    if (v != NULL)
        snprintf(f->verifier, sizeof(f->verifier), "%.*s", (int)strcspn(v + 14, "&"), v + 14);
    if (strcmp(f->mode, "invalid_grant") == 0) {
        snprintf(body, bcap, "{\"error\":\"invalid_grant\",\"error_description\":\"Unknown authorization code\"}");
        return 400;
    }
    snprintf(body, bcap,
             "{\"access_token\":\"AT_zzTopSecretAccess\",\"token_type\":\"Bearer\",\"expires_in\":3600,"
             "\"refresh_token\":\"RT_zzTopSecretRefresh\",\"scope\":\"read\"}");
    return 200;
}

/* runs the client against fake relay r (and token endpoint t, may be NULL) with extra args; returns the child */
static child_t *run_fake(fake_t *r, fake_t *t, const char *const *extra)
{
    const char *args[40];
    size_t n = 0;
    args[n++] = "--relay";
    args[n++] = rly_strf("http://127.0.0.1:%u", r->port);
    args[n++] = "--authorize-url";
    args[n++] = RLY_TEST_AS;
    args[n++] = "--client-id";
    args[n++] = "cid";
    if (t != NULL) {
        args[n++] = "--token-url";
        args[n++] = rly_strf("http://127.0.0.1:%u/token", t->port);
    }
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    child_t *c = rly_keep(calloc(1, sizeof(*c)));
    client_start(c, args);
    child_wait(c, CLIENT_TIMEOUT_MS);
    return c;
}

static void test_fake_privacy_and_retries(void **state)
{
    (void)state;
    fake_t r, t;
    fake_start(&r, relay_handler, "retry");
    fake_start(&t, token_handler, "ok");
    char *secret_file = rly_strf("%s/client-secret-2", rly_tmpdir());
    FILE *f = fopen(secret_file, "w");
    assert_non_null(f);
    fputs(SECRET "\n", f);
    fclose(f);
    const char *const extra[] = {"--client-secret-file", secret_file, "--pkce", "--scope", "read", NULL};
    child_t *c = run_fake(&r, &t, extra);
    fake_stop(&r);
    fake_stop(&t);
    if (c->status != 0)
        fail_msg("client exit %d; stderr: %s", c->status, c->err);
    json_object *o = stdout_json(c);
    RLY_EXPECT_STR(rly_jstr(o, "access_token"), "AT_zzTopSecretAccess");
    RLY_EXPECT_STR(rly_jstr(o, "refresh_token"), "RT_zzTopSecretRefresh");

    /* the relay's requests: discovery, creation, 4 pickups, the acknowledgement */
    assert_int_equal(r.nreqs, 7);
    RLY_EXPECT_STR(r.reqs[0].path, "/.well-known/authrelay");
    RLY_EXPECT_STR(r.reqs[1].method, "POST");
    for (size_t i = 2; i != 6; i++) {
        RLY_EXPECT_STR(r.reqs[i].method, "GET");
        assert_non_null(strcasestr(r.reqs[i].headers, "\r\nAuthorization: Bearer " FAKE_TOKEN "\r\n"));
        assert_non_null(strcasestr(r.reqs[i].headers, "\r\nPrefer: wait=1\r\n"));
    }
    RLY_EXPECT_STR(r.reqs[6].method, "DELETE");
    assert_non_null(strcasestr(r.reqs[6].headers, "\r\nAuthorization: Bearer " FAKE_TOKEN "\r\n"));
    /* Retry-After: 1 honoured; an early 202 does not make the client spin */
    assert_true(r.reqs[4].at - r.reqs[3].at >= 0.95);
    assert_true(r.reqs[5].at - r.reqs[4].at >= 0.95);
    assert_true(r.reqs[3].at - r.reqs[2].at < 1.0); /* the backoff after a dropped connection starts small */
    expect_err_contains(c, "warning: pickup failed");
    expect_err_contains(c, "HTTP 503: temporarily_unavailable (store down)");

    /* the token endpoint got the code, the secret and the verifier (whose S256 is the challenge in the URL) */
    assert_int_equal(t.nreqs, 1);
    RLY_EXPECT_STR(t.reqs[0].path, "/token");
    assert_non_null(strcasestr(t.reqs[0].headers, "\r\nContent-Type: application/x-www-form-urlencoded\r\n"));
    const char *tb = strstr(t.raw, "\r\n\r\n") + 4;
    assert_non_null(strstr(tb, "grant_type=authorization_code&code=" CODE "&redirect_uri=https%3A%2F%2Frelay.example%2Fqorus-"
                               "oauth2-redirect&client_id=cid&client_secret=" SECRET "&code_verifier="));
    assert_int_equal(strlen(t.verifier), 43);
    char ch[RLY_PKCE_CHALLENGE_LEN + 1];
    rly_pkce_challenge(t.verifier, strlen(t.verifier), ch);
    char *url = rly_strf("%.*s", (int)strcspn(strstr(c->err, "Open: ") + 6, "\n"), strstr(c->err, "Open: ") + 6);
    RLY_EXPECT_STR(qparam(url, "code_challenge"), ch);

    /* the relay never received the secret, the verifier or a token; stderr shows none of them either */
    assert_null(strstr(r.raw, SECRET));
    assert_null(strstr(r.raw, t.verifier));
    assert_null(strstr(r.raw, "AT_zzTopSecretAccess"));
    assert_null(strstr(r.raw, "RT_zzTopSecretRefresh"));
    assert_null(strstr(r.raw, "zzTop"));
    assert_null(strstr(c->err, SECRET));
    assert_null(strstr(c->err, t.verifier));
    assert_null(strstr(c->err, "zzTop"));
}

static void test_fake_seal(void **state)
{
    (void)state;
    fake_t r;
    static const char *const seal[] = {"--seal", NULL};

    /* sealed to our key with the session id as AAD: opened */
    fake_start(&r, relay_handler, "seal_ok");
    child_t *c = run_fake(&r, NULL, seal);
    fake_stop(&r);
    assert_int_equal(c->status, 0);
    assert_true(strlen(r.seal_key) == 43);
    RLY_EXPECT_STR(rly_jstr(stdout_json(c), "code"), CODE);

    /* sealed under another AAD: bad seal */
    fake_start(&r, relay_handler, "seal_wrong_aad");
    c = run_fake(&r, NULL, seal);
    fake_stop(&r);
    assert_int_equal(c->status, 5);
    expect_err_contains(c, "authrelay client: bad seal: ");
    assert_string_equal(c->out, "");
    RLY_EXPECT_STR(r.reqs[r.nreqs - 1].method, "DELETE"); /* the session is cleaned up anyway */

    /* unsealed although --seal asked for sealing: bad seal too */
    fake_start(&r, relay_handler, "plain");
    c = run_fake(&r, NULL, seal);
    fake_stop(&r);
    assert_int_equal(c->status, 5);
    expect_err_contains(c, "authrelay client: bad seal: the relay returned the result unsealed");
    assert_string_equal(c->out, "");
}

static void test_fake_expired(void **state)
{
    (void)state;
    fake_t r;

    /* 202 until the session's life (2 s) is over */
    fake_start(&r, relay_handler, "pending");
    r.expires_in = 2;
    double t0 = rly_now();
    child_t *c = run_fake(&r, NULL, NULL);
    fake_stop(&r);
    assert_int_equal(c->status, 4);
    assert_true(rly_now() - t0 < 10);
    expect_err_contains(c, "authrelay client: expired: ");
    assert_string_equal(c->out, "");

    /* the relay forgot the session */
    fake_start(&r, relay_handler, "gone");
    c = run_fake(&r, NULL, NULL);
    fake_stop(&r);
    assert_int_equal(c->status, 4);
    expect_err_contains(c, "authrelay client: expired: the relay no longer knows the session");
}

static void test_fake_errors(void **state)
{
    (void)state;
    fake_t r, t;

    /* a relay error carries its error and error_description */
    fake_start(&r, relay_handler, "create_403");
    child_t *c = run_fake(&r, NULL, NULL);
    fake_stop(&r);
    assert_int_equal(c->status, 1);
    expect_err_contains(c, "authrelay client: relay error: session creation: HTTP 403: authorization_server_not_allowed (not on "
                           "the list)");

    /* a failed acknowledgement is a warning, not a failure */
    fake_start(&r, relay_handler, "plain");
    r.delete_status = 500;
    c = run_fake(&r, NULL, NULL);
    fake_stop(&r);
    assert_int_equal(c->status, 0);
    expect_err_contains(c, "authrelay client: warning: could not delete the session (HTTP 500)");
    RLY_EXPECT_STR(rly_jstr(stdout_json(c), "code"), CODE);

    /* the token endpoint refuses the code: exit 1 with its error; nothing on stdout */
    fake_start(&r, relay_handler, "plain");
    fake_start(&t, token_handler, "invalid_grant");
    static const char *const pkce[] = {"--pkce", NULL};
    c = run_fake(&r, &t, pkce);
    fake_stop(&r);
    fake_stop(&t);
    assert_int_equal(c->status, 1);
    expect_err_contains(c, "authrelay client: token endpoint error: HTTP 400: invalid_grant (Unknown authorization code)");
    assert_string_equal(c->out, "");
    RLY_EXPECT_STR(r.reqs[r.nreqs - 1].method, "DELETE");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLY_TEST(test_authorized),
        RLY_TEST(test_sealed_pkce),
        RLY_TEST(test_denied),
        RLY_TEST(test_unreachable),
        RLY_TEST(test_untrusted_certificate),
        RLY_TEST(test_usage_errors),
        RLY_TEST(test_token_exchange_fake_as),
        RLY_TEST(test_fake_privacy_and_retries),
        RLY_TEST(test_fake_seal),
        RLY_TEST(test_fake_expired),
        RLY_TEST(test_fake_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
