/* test_client.c: `authrelay client authorize` as a child process against the real relay (protocol 1.1 by default, version 1
 * with --unbound), the fake AS and a scripted fake relay; the test plays the browser, and the browser's POST to the client's
 * return listener */
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
#include "bind.h"
#include "bound.h"
#include "client.h"
#include "ids.h"
#include "lock.h"
#include "query.h"
#include "seal.h"

extern char **environ;

static rly_relay_t relay;

#define CLIENT_TIMEOUT_MS 30000
#define CODE "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJlX29mX3RoZV9jb2Rl"
#define SECRET "s3cr3t-client-secret-value"
#define OTHER_SESSION "BBECAwQFBgcICQoLDA0ODw"
#define OTHER_RELEASE "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8"

static int group_setup(void **state)
{
    (void)state;
    /* --dev (with our own certificate and keys): an http authorization server on loopback is accepted; the harness adds
     * --allow-unbound, so the --unbound cases run against the same relay */
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
    int in;          /* the write end of its standard input (client_start_stdin), or -1 */
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

/* spawns argv (argv[0] looked up in PATH) with stdout and stderr to files of the temporary dir; stdin from a pipe whose
 * write end is c->in when with_stdin, else /dev/null */
static void spawn_child(child_t *c, char *const *argv, int with_stdin)
{
    static unsigned counter;
    posix_spawn_file_actions_t fa;
    int fds[2] = {-1, -1};

    memset(c, 0, sizeof(*c));
    c->status = -1;
    c->in = -1;
    counter++;
    snprintf(c->out_path, sizeof(c->out_path), "%s/client-%u.out", rly_tmpdir(), counter);
    snprintf(c->err_path, sizeof(c->err_path), "%s/client-%u.err", rly_tmpdir(), counter);
    posix_spawn_file_actions_init(&fa);
    if (with_stdin) {
        assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
        posix_spawn_file_actions_adddup2(&fa, fds[0], 0);
    } else {
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    }
    posix_spawn_file_actions_addopen(&fa, 1, c->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, c->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int rc = posix_spawnp(&c->pid, argv[0], &fa, NULL, argv, child_env());
    posix_spawn_file_actions_destroy(&fa);
    if (with_stdin) {
        close(fds[0]);
        c->in = fds[1];
    }
    if (rc != 0)
        fail_msg("cannot run %s: %s", argv[0], strerror(rc));
}

static void client_spawn(child_t *c, const char *const *args, int with_stdin)
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
    spawn_child(c, argv, with_stdin);
}

/* starts `authrelay client authorize <args...>` (NULL-terminated) */
static void client_start(child_t *c, const char *const *args)
{
    client_spawn(c, args, 0);
}

/* the same with its standard input from a pipe: write to it with child_type */
static void client_start_stdin(child_t *c, const char *const *args)
{
    signal(SIGPIPE, SIG_IGN);
    client_spawn(c, args, 1);
}

/* writes text to the child's standard input, as a user types or pastes it */
static void child_type(child_t *c, const char *text)
{
    assert_true(c->in >= 0);
    assert_int_equal(write(c->in, text, strlen(text)), (ssize_t)strlen(text));
}

/* waits for the child (killing it after timeout_ms) and reads what it wrote; returns its exit status */
static int child_wait(child_t *c, long timeout_ms)
{
    double deadline = rly_now() + (double)timeout_ms / 1000;
    int st;
    if (c->in >= 0) {
        close(c->in);
        c->in = -1;
    }
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

/* waits until the client's stderr holds needle (15 s; fails if the client exits first); returns stderr */
static char *wait_stderr(child_t *c, const char *needle)
{
    double deadline = rly_now() + 15;
    for (;;) {
        char *err = rly_read_file(c->err_path, NULL);
        if (err != NULL && strstr(err, needle) != NULL)
            return err;
        int st;
        if (waitpid(c->pid, &st, WNOHANG) == c->pid) {
            c->pid = 0;
            fail_msg("the client exited (status %d) before writing \"%s\"; stderr: %s", WIFEXITED(st) ? WEXITSTATUS(st) : -1,
                     needle, err != NULL ? err : "");
        }
        if (rly_now() > deadline) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, NULL, 0);
            fail_msg("no \"%s\" within 15 s; stderr: %s", needle, err != NULL ? err : "");
        }
        sleep_ms(10);
    }
}

/* the URL of the "Open: " line of the client's stderr, once it is complete; fails if the client exits first */
static char *wait_open(child_t *c)
{
    char *err = wait_stderr(c, "Open: ");
    for (;;) {
        const char *p = strstr(err, "Open: ");
        if (p != NULL && (p == err || p[-1] == '\n')) {
            const char *nl = strchr(p, '\n');
            if (nl != NULL)
                return rly_strf("%.*s", (int)(nl - p - 6), p + 6);
        }
        sleep_ms(10);
        err = wait_stderr(c, "Open: ");
    }
}

/* the value of the only parameter name of url's query (fails if repeated; NULL if absent); arena-owned */
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

/* plays the AS redirect of a version-1 flow: GET the relay's redirect_uri with query; returns the response */
static rly_response_t *browser_callback(const char *redirect_uri, const char *query)
{
    rly_request_t q = {.url = rly_strf("%s?%s", redirect_uri, query), .version = RLY_H2};
    return rly_do(&q);
}

/* ---- the browser of a 1.1 flow ---- */

/* a 1.1 flow as the browser sees it, from the client's start_url (no session created here: the client did it) */
static void bound_from(rly_bound_t *b, const char *start_url)
{
    memset(b, 0, sizeof(*b));
    RLY_EXPECT_STR(rly_strf("%.*s", (int)strlen(rly_url(&relay, "/v1/start?t=")), start_url), rly_url(&relay, "/v1/start?t="));
    snprintf(b->start_url, sizeof(b->start_url), "%s", start_url);
    snprintf(b->token, sizeof(b->token), "%s", strstr(start_url, "?t=") + 3);
    assert_int_equal(strlen(b->token), RLY_START_TOKEN_LEN);
}

/* the user at the relay: the confirmation page, Continue; b->location is then the AS authorize URL the relay built */
static void confirm(rly_bound_t *b, const char *start_url)
{
    bound_from(b, start_url);
    rly_bound_confirm_ok(&relay, RLY_H2, b);
}

/* the AS sends the confirming browser back to the relay with this whole query: the delivery page, its fields in b
 * (release, deliver_to) and, arena-owned, its session field */
static const char *come_back_query(rly_bound_t *b, const char *query)
{
    rly_response_t *res = rly_bound_callback(&relay, RLY_H2, b, query, b->cookie);
    RLY_EXPECT(res, 200, RLY_H2);
    assert_int_equal(strlen(b->release), RLY_RELEASE_KEY_LEN);
    const char *session = rly_form_value(res->body, "session");
    assert_non_null(session);
    assert_int_equal(strlen(session), RLY_SESSION_ID_LEN);
    return session;
}

/* the same with query (code or error) and the flow's state */
static const char *come_back(rly_bound_t *b, const char *query)
{
    return come_back_query(b, rly_strf("%s&state=%s", query, b->state));
}

/* the delivery page's form, POSTed by the browser to the client's return_uri (b->deliver_to) with these values */
static rly_response_t *deliver(const rly_bound_t *b, const char *session, const char *status, const char *message,
                               const char *release)
{
    static const char *const hdrs[] = {"Content-Type: application/x-www-form-urlencoded", "Origin: null", NULL};
    char *body = rly_query("session", session, "status", status, "message", message, "release", release, NULL);
    rly_request_t q = {.method = "POST", .url = b->deliver_to, .headers = hdrs, .body = body, .body_len = strlen(body)};
    return rly_do(&q);
}

/* the browser follows the listener's 303 to its done page; returns that page */
static rly_response_t *follow_done(const rly_bound_t *b, const rly_response_t *res)
{
    RLY_EXPECT(res, 303, 0);
    const char *loc = rly_header(res, "Location");
    assert_non_null(loc);
    RLY_EXPECT_STR(loc, RLY_CLIENT_DONE_PATH);
    const char *path = strstr(b->deliver_to, RLY_CLIENT_RETURN_PATH);
    assert_non_null(path);
    rly_request_t q = {.url = rly_strf("%.*s%s", (int)(path - b->deliver_to), b->deliver_to, loc)};
    rly_response_t *page = rly_do(&q);
    RLY_EXPECT(page, 200, 0);
    RLY_EXPECT_STR(rly_header(page, "Cache-Control"), "no-store");
    assert_non_null(rly_header(page, "Content-Security-Policy"));
    return page;
}

/* the client's return_uri: its own listener on 127.0.0.1 */
static void expect_listener_uri(const char *uri)
{
    unsigned long port = 0;
    char *end = NULL;
    if (strncmp(uri, "http://127.0.0.1:", 17) == 0)
        port = strtoul(uri + 17, &end, 10);
    if (port == 0 || port > 65535 || end == NULL || strcmp(end, RLY_CLIENT_RETURN_PATH) != 0)
        fail_msg("not the client's listener: %s", uri);
}

/* the common arguments against the real relay, then extra (NULL-terminated); arena-owned */
static const char **args_with(const char *const *extra)
{
    const char **a = rly_keep(calloc(64, sizeof(*a)));
    size_t n = 0;
    a[n++] = "--relay";
    a[n++] = relay.public_url;
    a[n++] = "--cacert";
    a[n++] = relay.cert;
    a[n++] = "--authorize-url";
    a[n++] = "http://127.0.0.1:9/authorize";
    a[n++] = "--client-id";
    a[n++] = "cid";
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        assert_true(n < 63);
        a[n++] = extra[i];
    }
    return a;
}

/* ---- against the real relay, protocol 1.1 ---- */

static void test_authorized(void **state)
{
    (void)state;
    static const char *const extra[] = {
        "--scope",           "read:jira-work", "--scope", "offline_access", "--audience",
        "api.atlassian.com", "--prompt",       "consent", "--param",        "login_hint=jo@example.com",
        "--label",           "Qorus test",     NULL};
    long long h1 = rly_metric(&relay, "authrelay_http_requests_total{version=\"1\"}"),
              h2 = rly_metric(&relay, "authrelay_http_requests_total{version=\"2\"}");
    child_t c;
    client_start(&c, args_with(extra));
    char *url = wait_open(&c);

    /* the client opens the relay's start_url, never the AS: the relay builds the authorize URL after Continue, from the
     * client's authorize_params, exactly as Atlassian expects it */
    rly_bound_t b;
    bound_from(&b, url);
    rly_response_t *page = rly_bound_start_page(&relay, RLY_H2, &b);
    RLY_EXPECT(page, 200, RLY_H2);
    assert_non_null(strstr(page->body, "127.0.0.1")); /* the return_uri the user confirms: the client's listener */
    assert_non_null(strstr(page->body, "Qorus test"));
    RLY_EXPECT(rly_bound_confirm(&relay, RLY_H2, &b, "continue"), 303, RLY_H2);
    const char *loc = b.location;
    assert_true(strncmp(loc, "http://127.0.0.1:9/authorize?", strlen("http://127.0.0.1:9/authorize?")) == 0);
    RLY_EXPECT_STR(qparam(loc, "audience"), "api.atlassian.com");
    RLY_EXPECT_STR(qparam(loc, "client_id"), "cid");
    RLY_EXPECT_STR(qparam(loc, "scope"), "read:jira-work offline_access");
    RLY_EXPECT_STR(qparam(loc, "redirect_uri"), rly_url(&relay, "/qorus-oauth2-redirect"));
    RLY_EXPECT_STR(qparam(loc, "response_type"), "code");
    RLY_EXPECT_STR(qparam(loc, "prompt"), "consent");
    RLY_EXPECT_STR(qparam(loc, "login_hint"), "jo@example.com");
    assert_true(rly_is_b64url(qparam(loc, "state")));
    assert_null(qparam(loc, "code_challenge"));
    assert_null(qparam(loc, "code_challenge_method"));

    /* the client is long-polling by now; the AS sends the browser back; the delivery page POSTs to the listener */
    sleep_ms(300);
    const char *session = come_back(&b, rly_query("code", CODE, NULL));
    expect_listener_uri(b.deliver_to);
    rly_response_t *done = follow_done(&b, deliver(&b, session, "success", "", b.release));
    assert_non_null(strstr(done->body, "Sign-in complete"));

    assert_int_equal(child_wait(&c, CLIENT_TIMEOUT_MS), 0);
    json_object *o = stdout_json(&c);
    static const char *const keys[] = {"status", "code", "state", NULL};
    assert_true(rly_jkeys_exactly(o, keys));
    RLY_EXPECT_STR(rly_jstr(o, "status"), "authorized");
    RLY_EXPECT_STR(rly_jstr(o, "code"), CODE);
    RLY_EXPECT_STR(rly_jstr(o, "state"), b.state);
    assert_int_equal(count_lines(c.err, "Open: "), 1);
    assert_null(strstr(c.err, "warning")); /* the DELETE succeeded */
    assert_null(strstr(c.err, b.release));
    /* the client spoke HTTP/2 to the relay: discovery, session, at least one pickup and the DELETE, plus the browser's
     * requests (also h2 here); nothing over HTTP/1.1 */
    assert_int_equal(rly_metric(&relay, "authrelay_http_requests_total{version=\"1\"}"), h1);
    assert_true(rly_metric(&relay, "authrelay_http_requests_total{version=\"2\"}") >= h2 + 7);

    /* the session was acknowledged: a second callback finds it gone; the listener is closed */
    RLY_EXPECT(rly_bound_callback(&relay, RLY_H2, &b, rly_query("code", CODE, "state", b.state, NULL), b.cookie), 410, 0);
    rly_response_t *late = deliver(&b, session, "success", "", b.release);
    assert_int_equal(late->status, 0);
}

static void test_sealed_pkce(void **state)
{
    (void)state;
    static const char *const extra[] = {
        "--scope", "read:jira-work", "--audience", "api.atlassian.com", "--prompt", "consent", "--seal", "--pkce", "--ttl", "120",
        NULL};
    child_t c;
    client_start(&c, args_with(extra));
    rly_bound_t b;
    confirm(&b, wait_open(&c));
    const char *ch = qparam(b.location, "code_challenge");
    assert_non_null(ch);
    assert_int_equal(strlen(ch), 43);
    assert_true(rly_is_b64url(ch));
    RLY_EXPECT_STR(qparam(b.location, "code_challenge_method"), "S256");
    const char *session = come_back(&b, rly_query("code", CODE, NULL));
    follow_done(&b, deliver(&b, session, "success", "", b.release));

    assert_int_equal(child_wait(&c, CLIENT_TIMEOUT_MS), 0);
    json_object *o = stdout_json(&c);
    RLY_EXPECT_STR(rly_jstr(o, "status"), "authorized");
    RLY_EXPECT_STR(rly_jstr(o, "code"), CODE);
    RLY_EXPECT_STR(rly_jstr(o, "state"), b.state);
    /* the relay never wrote the code, the state, the challenge or the release key */
    char *log = rly_strf("%s%s", rly_relay_stdout(&relay, NULL), rly_relay_stderr(&relay, NULL));
    assert_null(strstr(log, CODE));
    assert_null(strstr(log, b.state));
    assert_null(strstr(log, ch));
    assert_null(strstr(log, b.release));
}

static void test_denied(void **state)
{
    (void)state;
    static const char *const extra[] = {"--seal", NULL};
    child_t c;

    /* the AS answers access_denied: locked like a code, delivered with status=error */
    client_start(&c, args_with(extra));
    rly_bound_t b;
    confirm(&b, wait_open(&c));
    const char *session = come_back(&b, rly_query("error", "access_denied", "error_description", "The user denied access", NULL));
    rly_response_t *done = follow_done(&b, deliver(&b, session, "error", "access_denied", b.release));
    assert_non_null(strstr(done->body, "Sign-in not granted"));
    assert_int_equal(child_wait(&c, CLIENT_TIMEOUT_MS), 3);
    json_object *o = stdout_json(&c);
    RLY_EXPECT_STR(rly_jstr(o, "status"), "denied");
    RLY_EXPECT_STR(rly_jstr(o, "error"), "access_denied");
    RLY_EXPECT_STR(rly_jstr(o, "error_description"), "The user denied access");
    expect_err_contains(&c, "authrelay client: denied: access_denied (The user denied access)");

    /* Cancel on the confirmation page: a plain denied result, no release key to wait for */
    client_start(&c, args_with(extra));
    bound_from(&b, wait_open(&c));
    RLY_EXPECT(rly_bound_start_page(&relay, RLY_H2, &b), 200, RLY_H2);
    RLY_EXPECT(rly_bound_confirm(&relay, RLY_H2, &b, "cancel"), 200, RLY_H2);
    assert_int_equal(child_wait(&c, CLIENT_TIMEOUT_MS), 3);
    o = stdout_json(&c);
    RLY_EXPECT_STR(rly_jstr(o, "status"), "denied");
    RLY_EXPECT_STR(rly_jstr(o, "error"), "access_denied");
    expect_err_contains(&c, "authrelay client: denied: access_denied");
}

/* the listener: a release for another session is refused (400) and the client keeps waiting; its HTTP rules */
static void test_listener_other_session(void **state)
{
    (void)state;
    child_t c;
    client_start(&c, args_with(NULL));
    rly_bound_t b;
    confirm(&b, wait_open(&c));
    const char *session = come_back(&b, rly_query("code", CODE, NULL));

    /* a stranger's completed flow pushed at the listener */
    rly_response_t *res = deliver(&b, OTHER_SESSION, "success", "", OTHER_RELEASE);
    RLY_EXPECT(res, 400, 0);
    assert_null(rly_header(res, "Location"));
    assert_false(rly_response_contains(res, OTHER_SESSION));
    RLY_EXPECT(deliver(&b, OTHER_SESSION, "success", "", b.release), 400, 0);
    wait_stderr(&c, "authrelay client: warning: the return listener refused a release key for another session");

    /* what else it refuses: another method, path, media type, host; a body over 8 KiB; a request that never ends */
    rly_request_t get = {.url = b.deliver_to};
    res = rly_do(&get);
    RLY_EXPECT(res, 405, 0);
    RLY_EXPECT_STR(rly_header(res, "Allow"), "POST");
    rly_request_t other = {
        .url = rly_strf("%.*s/x", (int)(strstr(b.deliver_to, RLY_CLIENT_RETURN_PATH) - b.deliver_to), b.deliver_to)};
    RLY_EXPECT(rly_do(&other), 404, 0);
    static const char *const json_hdr[] = {"Content-Type: application/json", NULL};
    char *body = rly_query("session", session, "status", "success", "message", "", "release", b.release, NULL);
    rly_request_t q_json = {.method = "POST", .url = b.deliver_to, .headers = json_hdr, .body = body, .body_len = strlen(body)};
    RLY_EXPECT(rly_do(&q_json), 415, 0);
    static const char *const host_hdr[] = {"Content-Type: application/x-www-form-urlencoded", "Host: evil.example", NULL};
    rly_request_t q_host = {.method = "POST", .url = b.deliver_to, .headers = host_hdr, .body = body, .body_len = strlen(body)};
    RLY_EXPECT(rly_do(&q_host), 400, 0);
    static const char *const form_hdr[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    char *big = rly_strf("%s&pad=%s", body, rly_repeat('x', RLY_CLIENT_RETURN_BODY_MAX));
    rly_request_t q_big = {.method = "POST", .url = b.deliver_to, .headers = form_hdr, .body = big, .body_len = strlen(big)};
    RLY_EXPECT(rly_do(&q_big), 413, 0); /* (the listener reads what is left before it closes: no reset) */
    const char *const huge_hdr[] = {rly_strf("X-Pad: %s", rly_repeat('x', RLY_CLIENT_RETURN_HEAD_MAX)), NULL};
    rly_request_t q_huge = {.url = b.deliver_to, .headers = huge_hdr};
    rly_response_t *huge = rly_do(&q_huge);
    assert_true(huge->status == 431 || huge->status == 0); /* answered, or reset while still sending */

    /* a connection that sends half a request (or a browser's spare connection that sends nothing) does not hold up the
     * others */
    const char *port = b.deliver_to + strlen("http://127.0.0.1:");
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((unsigned short)strtoul(port, NULL, 10))};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int idle = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(idle >= 0);
    assert_int_equal(connect(idle, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(write(idle, "POST /authrelay/return HTTP/1.1\r\n", 33), 33);

    /* the client's own release still gets through, and the flow completes */
    follow_done(&b, deliver(&b, session, "success", "", b.release));
    assert_int_equal(child_wait(&c, CLIENT_TIMEOUT_MS), 0);
    RLY_EXPECT_STR(rly_jstr(stdout_json(&c), "code"), CODE);
    close(idle);
}

/* a release key that does not open the result: the error exit, nothing on stdout */
static void test_wrong_release(void **state)
{
    (void)state;
    child_t c;
    client_start(&c, args_with(NULL));
    rly_bound_t b;
    confirm(&b, wait_open(&c));
    const char *session = come_back(&b, rly_query("code", CODE, NULL));
    RLY_EXPECT(deliver(&b, session, "success", "", OTHER_RELEASE), 303, 0);
    assert_int_equal(child_wait(&c, CLIENT_TIMEOUT_MS), 5);
    expect_err_contains(&c, "authrelay client: bad release key: the locked result does not open with the release key the "
                            "browser brought");
    assert_string_equal(c.out, "");
    assert_null(strstr(c.err, CODE));
    /* the session was deleted all the same */
    RLY_EXPECT(rly_bound_callback(&relay, RLY_H2, &b, rly_query("code", CODE, "state", b.state, NULL), b.cookie), 410, 0);
}

/* --no-listen: the session and the release key pasted on stdin, after a wrong one */
static void test_no_listen(void **state)
{
    (void)state;
    static const char *const extra[] = {"--no-listen", "--return-uri", RLY_TEST_BOUND_RETURN, NULL};
    child_t c;
    client_start_stdin(&c, args_with(extra));
    rly_bound_t b;
    confirm(&b, wait_open(&c));
    const char *session = come_back(&b, rly_query("code", CODE, NULL));
    RLY_EXPECT_STR(b.deliver_to, RLY_TEST_BOUND_RETURN); /* the page POSTs to --return-uri */

    /* the user pastes what the page's fallback view shows */
    wait_stderr(&c, "Session and release key: ");
    child_type(&c, rly_strf("%s %s\n", OTHER_SESSION, b.release)); /* another sign-in's session: asked again */
    wait_stderr(&c, "that is the session of another sign-in");
    child_type(&c, "not-a-key\n");
    wait_stderr(&c, "that is not a session");
    child_type(&c, rly_strf("  %s\r\n", session)); /* then one per line */
    wait_stderr(&c, "Release key: ");
    child_type(&c, rly_strf("%s\n", b.release));
    assert_int_equal(child_wait(&c, CLIENT_TIMEOUT_MS), 0);
    json_object *o = stdout_json(&c);
    RLY_EXPECT_STR(rly_jstr(o, "status"), "authorized");
    RLY_EXPECT_STR(rly_jstr(o, "code"), CODE);
    RLY_EXPECT_STR(rly_jstr(o, "state"), b.state);
    assert_null(strstr(c.err, "warning"));
}

/* --no-listen with the delivery page's values read from its fallback view; a wrong key, and the input ending */
static void test_no_listen_page_values(void **state)
{
    (void)state;
    static const char *const extra[] = {"--no-listen", "--return-uri", RLY_TEST_BOUND_RETURN, "--seal", NULL};
    child_t c;
    client_start_stdin(&c, args_with(extra));
    rly_bound_t b;
    confirm(&b, wait_open(&c));
    rly_response_t *res = rly_bound_callback(&relay, RLY_H2, &b, rly_query("code", CODE, "state", b.state, NULL), b.cookie);
    RLY_EXPECT(res, 200, RLY_H2);
    const char *s = strstr(res->body, "<code id=\"session\">"), *r = strstr(res->body, "<code id=\"release\">");
    assert_non_null(s);
    assert_non_null(r);
    char *session = rly_strf("%.*s", (int)strcspn(s + 19, "<"), s + 19),
         *release = rly_strf("%.*s", (int)strcspn(r + 19, "<"), r + 19);
    RLY_EXPECT_STR(release, b.release);
    wait_stderr(&c, "Session and release key: ");
    child_type(&c, rly_strf("%s\t%s\n", session, release));
    assert_int_equal(child_wait(&c, CLIENT_TIMEOUT_MS), 0);
    RLY_EXPECT_STR(rly_jstr(stdout_json(&c), "code"), CODE);

    /* a well-formed key of no use: the error exit */
    client_start_stdin(&c, args_with(extra));
    confirm(&b, wait_open(&c));
    session = (char *)come_back(&b, rly_query("code", CODE, NULL));
    wait_stderr(&c, "Session and release key: ");
    child_type(&c, rly_strf("%s %s\n", session, OTHER_RELEASE));
    assert_int_equal(child_wait(&c, CLIENT_TIMEOUT_MS), 5);
    expect_err_contains(&c, "authrelay client: bad release key: the locked result does not open with the release key pasted");
    assert_string_equal(c.out, "");

    /* the input ends before a key was pasted */
    client_start_stdin(&c, args_with(extra));
    confirm(&b, wait_open(&c));
    come_back(&b, rly_query("code", CODE, NULL));
    wait_stderr(&c, "Session and release key: ");
    assert_int_equal(child_wait(&c, CLIENT_TIMEOUT_MS), 1); /* child_wait closes its stdin */
    expect_err_contains(&c, "authrelay client: no release key: the input ended");
}

/* --listen-port: the listener on that port; a port in use is an error before anything is sent */
static void test_listen_port(void **state)
{
    (void)state;
    unsigned short port = rly_free_port();
    assert_true(port != 0);
    const char *const extra[] = {"--listen-port", rly_strf("%u", port), NULL};
    child_t c;
    client_start(&c, args_with(extra));
    rly_bound_t b;
    confirm(&b, wait_open(&c));
    const char *session = come_back(&b, rly_query("code", CODE, NULL));
    RLY_EXPECT_STR(b.deliver_to, rly_strf("http://127.0.0.1:%u" RLY_CLIENT_RETURN_PATH, port));
    follow_done(&b, deliver(&b, session, "success", "", b.release));
    assert_int_equal(child_wait(&c, CLIENT_TIMEOUT_MS), 0);

    /* the port taken by a listener (SO_REUSEADDR: the client's connections may be in TIME_WAIT on it) */
    int fd = socket(AF_INET, SOCK_STREAM, 0), on = 1;
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)), 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(fd, 1), 0);
    client_start(&c, args_with(extra));
    assert_int_equal(child_wait(&c, CLIENT_TIMEOUT_MS), 1);
    expect_err_contains(&c, rly_strf("authrelay client: the return listener cannot listen on 127.0.0.1:%u: ", port));
    assert_int_equal(count_lines(c.err, "Open: "), 0);
    close(fd);
}

/* ---- against the real relay, version 1 (--unbound; the harness's relay runs with --allow-unbound) ---- */

static void test_unbound_authorized(void **state)
{
    (void)state;
    static const char *const extra[] = {"--unbound",
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
    child_t c;
    client_start(&c, args_with(extra));
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

    /* the client is long-polling by now; the AS redirects the browser to the relay, which sends it to the return_uri */
    sleep_ms(300);
    rly_response_t *res = browser_callback(redirect, rly_query("code", CODE, "state", st, NULL));
    RLY_EXPECT(res, 303, RLY_H2);
    RLY_EXPECT_STR(rly_header(res, "Location"), RLY_TEST_RETURN "&status=success");

    assert_int_equal(child_wait(&c, CLIENT_TIMEOUT_MS), 0);
    json_object *o = stdout_json(&c);
    static const char *const keys[] = {"status", "code", "state", NULL};
    assert_true(rly_jkeys_exactly(o, keys));
    RLY_EXPECT_STR(rly_jstr(o, "status"), "authorized");
    RLY_EXPECT_STR(rly_jstr(o, "code"), CODE);
    RLY_EXPECT_STR(rly_jstr(o, "state"), st);
    assert_int_equal(count_lines(c.err, "Open: "), 1);
    assert_null(strstr(c.err, "warning"));
    /* the session was acknowledged: a second callback finds it gone */
    RLY_EXPECT(browser_callback(redirect, rly_query("code", CODE, "state", st, NULL)), 410, 0);
}

static void test_unbound_sealed_pkce_denied(void **state)
{
    (void)state;
    static const char *const extra[] = {"--unbound", "--seal", "--pkce", "--ttl", "120", NULL};
    child_t c;
    client_start(&c, args_with(extra));
    char *url = wait_open(&c);
    const char *ch = qparam(url, "code_challenge");
    assert_int_equal(strlen(ch), 43);
    RLY_EXPECT_STR(qparam(url, "code_challenge_method"), "S256");
    const char *st = qparam(url, "state");
    RLY_EXPECT(browser_callback(qparam(url, "redirect_uri"), rly_query("code", CODE, "state", st, NULL)), 200, RLY_H2);
    assert_int_equal(child_wait(&c, CLIENT_TIMEOUT_MS), 0);
    RLY_EXPECT_STR(rly_jstr(stdout_json(&c), "code"), CODE);

    static const char *const seal[] = {"--unbound", "--seal", NULL};
    client_start(&c, args_with(seal));
    url = wait_open(&c);
    RLY_EXPECT(
        browser_callback(qparam(url, "redirect_uri"), rly_query("error", "access_denied", "error_description",
                                                                "The user denied access", "state", qparam(url, "state"), NULL)),
        200, 0);
    assert_int_equal(child_wait(&c, CLIENT_TIMEOUT_MS), 3);
    RLY_EXPECT_STR(rly_jstr(stdout_json(&c), "error"), "access_denied");
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
    rly_bound_t b;
    confirm(&b, wait_open(&c));
    const char *session = come_back(&b, rly_query("code", "c", NULL));
    follow_done(&b, deliver(&b, session, "success", "", b.release));
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
        {{"--relay", "https://relay.example", "--authorize-url", RLY_TEST_AS, "--client-id", "c", "--return-uri",
          "https://q.example/grant", NULL},
         "--return-uri goes with --no-listen or --unbound"},
        {{"--relay", "https://relay.example", "--authorize-url", RLY_TEST_AS, "--client-id", "c", "--no-listen", NULL},
         "--no-listen needs --return-uri URI"},
        {{"--relay", "https://relay.example", "--authorize-url", RLY_TEST_AS, "--client-id", "c", "--unbound", "--no-listen", NULL},
         "--no-listen is for protocol 1.1 flows: not with --unbound"},
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); i++) {
        child_t c;
        client_start(&c, cases[i].args);
        assert_int_equal(child_wait(&c, CLIENT_TIMEOUT_MS), 2);
        expect_err_contains(&c, rly_strf("authrelay client: %s", cases[i].msg));
        assert_int_equal(count_lines(c.err, "authrelay client: "), 1);
        assert_string_equal(c.out, "");
    }
    /* --help: exit 0, the modes and the exit codes documented */
    char *out = NULL;
    char *const argv[] = {(char *)rly_bin(), "client", "authorize", "--help", NULL};
    assert_int_equal(rly_run(argv, 10000, &out, NULL), 0);
    assert_non_null(strstr(out, "  4  expired"));
    assert_non_null(strstr(out, "  5  bad seal"));
    assert_non_null(strstr(out, "--no-listen"));
    assert_non_null(strstr(out, "--unbound"));
    assert_non_null(strstr(out, "--listen-port N"));
    assert_non_null(strstr(out, "http://127.0.0.1:PORT" RLY_CLIENT_RETURN_PATH));
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
    rly_bound_t bb;
    confirm(&bb, wait_open(&c));

    /* the browser: the relay's confirmation (above), the consent page, "Allow", the AS's redirect to the relay, the
     * delivery page's POST to the client */
    rly_request_t q1 = {.url = bb.location};
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
    const char *session = come_back_query(&bb, rly_strf("%.*s", (int)strcspn(strchr(loc, '?') + 1, "#"), strchr(loc, '?') + 1));
    follow_done(&bb, deliver(&bb, session, "success", "", bb.release));

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
    /* protocol 1.1 */
    const char *version;    /* discovery's version: "1" unless set */
    int unbound_sessions;   /* discovery's unbound_sessions: -1 left out (the default), 0 false, 1 true */
    int bound;              /* answers 1.1 sessions (start_url, no state) and locked results */
    int client_bound;       /* run_fake leaves out --unbound */
    char create_body[8192]; /* the session request */
    char return_uri[256];   /* its return_uri */
    char release[64];       /* the key the result was locked under */
    char *locked;           /* the locked result, sealed when the client sent a seal_key */
    long delivered;         /* the status the client's listener answered the delivery page's POST with */
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
    f->version = "1";
    f->unbound_sessions = -1;
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
    free(f->locked);
    f->locked = NULL;
}

#define FAKE_SESSION "AAECAwQFBgcICQoLDA0ODw"
#define FAKE_STATE "fake_state_0123456789"
#define FAKE_TOKEN "poll_token_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

/* the browser of a 1.1 flow, played by the fake relay's thread: the delivery page's POST to the client's return_uri */
static void fake_deliver(fake_t *f, const char *session, const char *release)
{
    static const char *const hdrs[] = {"Content-Type: application/x-www-form-urlencoded", "Origin: null", NULL};
    char form[256];
    rly_response_t res;
    snprintf(form, sizeof(form), "session=%s&status=success&message=&release=%s", session, release);
    rly_request_t q = {.method = "POST", .url = f->return_uri, .headers = hdrs, .body = form, .body_len = strlen(form)};
    f->delivered = rly_http_req(&q, &res);
    rly_response_free(&res);
}

/* the locked result of a bound session (sealed to the client's key when it sent one), delivered as the mode says: "locked"
 * with its release key, "locked_wrong" with another, "locked_nobrowser" not at all; 0, or -1 */
static int fake_lock(fake_t *f, const char *result)
{
    char *locked, *sealed, inner[2048], outer[4096]; /* (no arena: this runs on the fake's thread) */
    size_t len;
    uint8_t pub[32];

    if ((locked = rly_lock(FAKE_SESSION, result, strlen(result), f->release, &len)) == NULL)
        return -1;
    snprintf(inner, sizeof(inner), "{\"status\":\"locked\",\"locked\":\"%s\"}", locked);
    free(locked);
    if (f->seal_key[0] != '\0') {
        if (rly_b64url_decode(pub, sizeof(pub), f->seal_key, strlen(f->seal_key)) != 32 ||
            (sealed = rly_seal(pub, FAKE_SESSION, strlen(FAKE_SESSION), (const uint8_t *)inner, strlen(inner), NULL, NULL)) == NULL)
            return -1;
        snprintf(outer, sizeof(outer), "{\"status\":\"sealed\",\"sealed\":\"%s\"}", sealed);
        free(sealed);
        f->locked = strdup(outer);
    } else {
        f->locked = strdup(inner);
    }
    if (f->locked == NULL)
        return -1;
    if (strcmp(f->mode, "locked") == 0)
        fake_deliver(f, FAKE_SESSION, f->release);
    else if (strcmp(f->mode, "locked_wrong") == 0)
        fake_deliver(f, FAKE_SESSION, OTHER_RELEASE);
    return 0;
}

static int relay_handler(fake_t *f, const fake_req_t *req, char *hdrs, size_t hcap, char *body, size_t bcap)
{
    char base[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%u", f->port);
    if (strcmp(req->method, "GET") == 0 && strcmp(req->path, "/.well-known/authrelay") == 0) {
        snprintf(body, bcap,
                 "{\"version\":\"%s\",\"redirect_uri\":\"https://relay.example/qorus-oauth2-redirect\","
                 "\"sessions_endpoint\":\"%s/v1/sessions\",\"session_ttl_max\":600,\"wait_max\":%d,"
                 "\"authorization_servers\":[],\"seal_algorithms\":[\"" RLY_SEAL_ALGORITHM "\"]%s}",
                 f->version, base, f->wait_max,
                 f->unbound_sessions < 0 ? ""
                 : f->unbound_sessions   ? ",\"unbound_sessions\":true"
                                         : ",\"unbound_sessions\":false");
        return 200;
    }
    if (strcmp(req->method, "POST") == 0 && strcmp(req->path, "/v1/sessions") == 0) {
        if (strcmp(f->mode, "create_403") == 0) {
            snprintf(body, bcap, "{\"error\":\"authorization_server_not_allowed\",\"error_description\":\"not on the list\"}");
            return 403;
        }
        snprintf(f->create_body, sizeof(f->create_body), "%s", req->body);
        const char *k = strstr(req->body, "\"seal_key\":\"");
        if (k != NULL)
            snprintf(f->seal_key, sizeof(f->seal_key), "%.*s", (int)strcspn(k + 12, "\""), k + 12);
        k = strstr(req->body, "\"return_uri\":\"");
        if (k != NULL)
            snprintf(f->return_uri, sizeof(f->return_uri), "%.*s", (int)strcspn(k + 14, "\""), k + 14);
        if (f->bound)
            snprintf(body, bcap,
                     "{\"session\":\"" FAKE_SESSION "\",\"start_url\":\"%s/v1/start?t=" OTHER_RELEASE "\",\"redirect_uri\":"
                     "\"https://relay.example/qorus-oauth2-redirect\",\"poll_url\":\"%s/v1/sessions/" FAKE_SESSION "\","
                     "\"poll_token\":\"" FAKE_TOKEN "\",\"expires_in\":%d}",
                     base, base, f->expires_in);
        else
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
    if (strncmp(f->mode, "locked", 6) == 0) {
        if (f->locked == NULL && fake_lock(f, result) != 0)
            return 500;
        snprintf(body, bcap, "%s", f->locked);
        return 200;
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
    if (!r->client_bound)
        args[n++] = "--unbound"; /* the version-1 cases */
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

/* ---- protocol 1.1 against the fake relay ---- */

static void test_fake_bound_privacy(void **state)
{
    (void)state;
    fake_t r, t;
    fake_start(&r, relay_handler, "locked");
    r.version = "1.1";
    r.unbound_sessions = 0;
    r.bound = r.client_bound = 1;
    fake_start(&t, token_handler, "ok");
    char *secret_file = rly_strf("%s/client-secret-3", rly_tmpdir());
    FILE *f = fopen(secret_file, "w");
    assert_non_null(f);
    fputs(SECRET "\n", f);
    fclose(f);
    const char *const extra[] = {"--client-secret-file", secret_file, "--pkce", "--scope", "read", "--label",
                                 "Qorus fake",           "--seal",    NULL};
    child_t *c = run_fake(&r, &t, extra);
    fake_stop(&r);
    fake_stop(&t);
    if (c->status != 0)
        fail_msg("client exit %d; stderr: %s", c->status, c->err);
    json_object *o = stdout_json(c);
    RLY_EXPECT_STR(rly_jstr(o, "access_token"), "AT_zzTopSecretAccess");
    RLY_EXPECT_STR(rly_jstr(o, "token_type"), "Bearer");

    /* the start_url is what the user opens */
    assert_int_equal(count_lines(c->err, "Open: "), 1);
    expect_err_contains(c, rly_strf("Open: http://127.0.0.1:%u/v1/start?t=" OTHER_RELEASE "\n", r.port));

    /* the session request: authorize_params with the challenge of the verifier the token endpoint got, the client's own
     * return_uri, the label, a seal key; no state, no secret, no verifier */
    rly_response_t req = {.status = 200, .body = r.create_body, .body_len = strlen(r.create_body)};
    json_object *body = rly_json(&req), *params;
    assert_non_null(body);
    static const char *const keys[] = {"authorization_server", "authorize_params", "label", "return_uri", "seal_key", NULL};
    assert_true(rly_jkeys_exactly(body, keys));
    RLY_EXPECT_STR(rly_jstr(body, "authorization_server"), RLY_TEST_AS);
    RLY_EXPECT_STR(rly_jstr(body, "label"), "Qorus fake");
    expect_listener_uri(rly_jstr(body, "return_uri"));
    RLY_EXPECT_STR(r.return_uri, rly_jstr(body, "return_uri"));
    assert_true(json_object_object_get_ex(body, "authorize_params", &params));
    char ch[RLY_PKCE_CHALLENGE_LEN + 1];
    assert_int_equal(strlen(t.verifier), 43);
    rly_pkce_challenge(t.verifier, strlen(t.verifier), ch);
    RLY_EXPECT_STR(
        json_object_to_json_string_ext(params, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
        rly_strf("{\"client_id\":\"cid\",\"scope\":\"read\",\"code_challenge\":\"%s\",\"code_challenge_method\":\"S256\"}", ch));

    /* the fake's browser got the listener's 303; the result was sealed and locked; the relay saw the end of the flow */
    assert_int_equal(r.delivered, 303);
    RLY_EXPECT_STR(r.reqs[r.nreqs - 1].method, "DELETE");
    /* the relay never received the secret, the verifier, the release key or a token; stderr shows none of them either */
    assert_null(strstr(r.raw, SECRET));
    assert_null(strstr(r.raw, t.verifier));
    assert_null(strstr(r.raw, r.release));
    assert_null(strstr(r.raw, "zzTop"));
    assert_null(strstr(c->err, SECRET));
    assert_null(strstr(c->err, t.verifier));
    assert_null(strstr(c->err, r.release));
    assert_null(strstr(c->err, "zzTop"));
    /* the token endpoint got the relay's redirect_uri */
    const char *tb = strstr(t.raw, "\r\n\r\n") + 4;
    assert_non_null(strstr(tb, "grant_type=authorization_code&code=" CODE "&redirect_uri=https%3A%2F%2Frelay.example%2Fqorus-"
                               "oauth2-redirect&client_id=cid&client_secret=" SECRET "&code_verifier="));
}

static void test_fake_versions(void **state)
{
    (void)state;
    static const struct {
        const char *version;
        int unbound_sessions, unbound, bound_answer, status;
        const char *msg;
    } cases[] = {
        {"2", -1, 0, 1, 1, "relay error: the relay speaks protocol version 2; this client speaks 1.1 (and 1 with --unbound)"},
        {"2", -1, 1, 0, 1, "relay error: the relay speaks protocol version 2;"},
        {"1", -1, 0, 1, 1,
         "relay error: the relay speaks protocol version 1 only, without bound flows (1.1): update it, or use "
         "--unbound"},
        {"1.1", 0, 1, 0, 1, "relay error: --unbound: the relay does not accept version-1 sessions"},
        {"1.1", -1, 1, 0, 1, "relay error: --unbound: the relay does not accept version-1 sessions"},
        /* a relay that says 1.1 but answers a version-1 session (it ignored authorize_params) */
        {"1.1", 0, 0, 0, 1, "relay error: the session response has no start_url"},
        /* --unbound on a 1.1 relay with unbound sessions, and on a version-1 relay: the version-1 flow */
        {"1.1", 1, 1, 0, 0, NULL},
        {"1", -1, 1, 0, 0, NULL},
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); i++) {
        fake_t r;
        fake_start(&r, relay_handler, "plain");
        r.version = cases[i].version;
        r.unbound_sessions = cases[i].unbound_sessions;
        r.client_bound = !cases[i].unbound;
        r.bound = cases[i].bound_answer;
        child_t *c = run_fake(&r, NULL, NULL);
        fake_stop(&r);
        if (c->status != cases[i].status)
            fail_msg("case %zu: exit %d; stderr: %s", i, c->status, c->err);
        if (cases[i].msg == NULL) {
            RLY_EXPECT_STR(rly_jstr(stdout_json(c), "code"), CODE);
            continue;
        }
        expect_err_contains(c, rly_strf("authrelay client: %s", cases[i].msg));
        assert_string_equal(c->out, "");
        assert_int_equal(count_lines(c->err, "Open: "), 0);
        if (strstr(cases[i].msg, "session response") == NULL)
            assert_int_equal(r.nreqs, 1); /* discovery only: no session created */
    }
}

static void test_fake_bound_failures(void **state)
{
    (void)state;
    fake_t r;

    /* an authorized result that comes back unlocked from a bound session: bad lock */
    fake_start(&r, relay_handler, "plain");
    r.version = "1.1";
    r.bound = r.client_bound = 1;
    child_t *c = run_fake(&r, NULL, NULL);
    fake_stop(&r);
    assert_int_equal(c->status, 5);
    expect_err_contains(c, "authrelay client: bad lock: the relay returned the result unlocked");
    assert_string_equal(c->out, "");
    RLY_EXPECT_STR(r.reqs[r.nreqs - 1].method, "DELETE");

    /* a release key for this session that does not open it (the listener cannot tell before the result is there) */
    fake_start(&r, relay_handler, "locked_wrong");
    r.version = "1.1";
    r.bound = r.client_bound = 1;
    c = run_fake(&r, NULL, NULL);
    fake_stop(&r);
    assert_int_equal(r.delivered, 303);
    assert_int_equal(c->status, 5);
    expect_err_contains(c, "authrelay client: bad release key: ");
    assert_string_equal(c->out, "");
    RLY_EXPECT_STR(r.reqs[r.nreqs - 1].method, "DELETE");

    /* the result is there, the browser never comes: expired at the session's end */
    fake_start(&r, relay_handler, "locked_nobrowser");
    r.version = "1.1";
    r.bound = r.client_bound = 1;
    r.expires_in = 2;
    double t0 = rly_now();
    c = run_fake(&r, NULL, NULL);
    fake_stop(&r);
    assert_int_equal(c->status, 4);
    assert_true(rly_now() - t0 < 10);
    expect_err_contains(c, "authrelay client: expired: the result is at the relay, but no browser brought its release key to "
                           "http://127.0.0.1:");
    assert_string_equal(c->out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLY_TEST(test_authorized),
        RLY_TEST(test_sealed_pkce),
        RLY_TEST(test_denied),
        RLY_TEST(test_listener_other_session),
        RLY_TEST(test_wrong_release),
        RLY_TEST(test_no_listen),
        RLY_TEST(test_no_listen_page_values),
        RLY_TEST(test_listen_port),
        RLY_TEST(test_unbound_authorized),
        RLY_TEST(test_unbound_sealed_pkce_denied),
        RLY_TEST(test_unreachable),
        RLY_TEST(test_untrusted_certificate),
        RLY_TEST(test_usage_errors),
        RLY_TEST(test_token_exchange_fake_as),
        RLY_TEST(test_fake_privacy_and_retries),
        RLY_TEST(test_fake_seal),
        RLY_TEST(test_fake_expired),
        RLY_TEST(test_fake_errors),
        RLY_TEST(test_fake_bound_privacy),
        RLY_TEST(test_fake_versions),
        RLY_TEST(test_fake_bound_failures),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
