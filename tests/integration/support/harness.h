/* harness.h: helpers shared by the integration tests: relay processes, TLS material, HTTP/1.1 and HTTP/2 requests */
#ifndef RLY_HARNESS_H
#define RLY_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <json.h>

#define RLY_H1 1 /* HTTP/1.1 */
#define RLY_H2 2 /* HTTP/2 over TLS, negotiated with ALPN */

#define RLY_TEST_UA "Qorus-Test-UA/9.9" /* every request carries this User-Agent; logs must never show it */
#define RLY_TEST_AS "https://auth.atlassian.com/authorize"
#define RLY_TEST_RETURN "https://qorus.example.com:8011/grant?tab=oauth"

/* version markers passed to tests as cmocka initial state (see RLY_TEST_BOTH) */
extern int rly_v1, rly_v2;

/* per-test teardown: frees everything the arena holds (responses, strings) */
int rly_test_teardown(void **state);
/* one entry per HTTP version; the test reads the version with rly_version(state) */
#define RLY_TEST_BOTH(f)                                                                                                           \
    {#f "@http/1.1", f, NULL, rly_test_teardown, &rly_v1},                                                                         \
    {                                                                                                                              \
#f "@h2", f, NULL, rly_test_teardown, &rly_v2                                                                              \
    }
#define RLY_TEST(f)                                                                                                                \
    {                                                                                                                              \
#f, f, NULL, rly_test_teardown, NULL                                                                                       \
    }
/* RLY_H1 or RLY_H2 from a RLY_TEST_BOTH state (RLY_H1 for RLY_TEST) */
int rly_version(void **state);

/* ---- arena: everything it holds is freed by rly_arena_free() (called by rly_test_teardown) ---- */

/* registers p (malloc'ed) to be freed by the arena; returns p */
void *rly_keep(void *p);
/* registers p to be released by fn(p) with the arena; returns p */
void *rly_keep_with(void *p, void (*fn)(void *));
/* printf into an arena-owned string */
char *rly_strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* n copies of c, NUL-terminated, arena-owned */
char *rly_repeat(char c, size_t n);
/* "k1=v1&k2=v2..." with each value percent-encoded (keys are not); pairs end with a NULL key; arena-owned */
char *rly_query(const char *k, ...);
/* percent-encodes s; arena-owned */
char *rly_esc(const char *s);
void rly_arena_free(void);

/* ---- processes ---- */

/* path of the authrelay binary (AUTHRELAY_BIN); aborts the test program if unset */
const char *rly_bin(void);
/* the process-wide temporary directory (created on first use, removed at exit unless RLY_KEEP_TMP is set) */
const char *rly_tmpdir(void);
/* a free loopback TCP port (bind port 0, read it, close), or 0 */
unsigned short rly_free_port(void);
/*
 * Runs argv (argv[0] looked up in PATH) with stdin /dev/null and an environment without AUTHRELAY_* variables; waits at
 * most timeout_ms (then kills it). out/err (either may be NULL) receive arena-owned NUL-terminated captures. Returns
 * the exit status, 128+signal if killed by a signal, -1 if it could not run or timed out.
 */
int rly_run(char *const argv[], long timeout_ms, char **out, char **err);
/* reads a whole file into an arena-owned NUL-terminated string (*len if non-NULL), or NULL */
char *rly_read_file(const char *path, size_t *len);

/* ---- relays ---- */

typedef struct st_rly_relay_t {
    char dir[256];                       /* this relay's temporary directory */
    char cert[320], key[320], keys[320]; /* TLS certificate and key, relay key file (empty with --dev) */
    char out_path[320], err_path[320];   /* captured stdout and stderr */
    unsigned short port, admin_port;
    char public_url[64]; /* https://localhost:<port> */
    char admin_url[64];  /* http://127.0.0.1:<admin_port> */
    pid_t pid;           /* 0 once collected */
    int exit_status;     /* after it exited: exit code, 128+signal; -1 while running */
    int dev;
} rly_relay_t;

/*
 * Prepares a relay (temporary dir, free ports, self-signed certificate for localhost and 127.0.0.1, key file made with
 * `authrelay keygen`) and starts `authrelay serve --listen 127.0.0.1:P --admin-listen 127.0.0.1:Q --tls-cert C
 * --tls-key K --keys F --public-url https://localhost:P` followed by extra (NULL-terminated, may be NULL). Waits until
 * GET /healthz on the admin listener answers 200 and the public port accepts connections (10 s). 0 / -1 (with a
 * diagnostic and the relay's stderr on stderr).
 */
int rly_relay_start(rly_relay_t *r, const char *const *extra);
/* 1 (the default): relays started by the harness take --allow-unbound, so the version-1 suites run as they are; a 1.1
 * suite sets it to 0 before it starts its relay */
extern int rly_harness_unbound;
/* the same with `authrelay serve --dev --listen 127.0.0.1:P --admin-listen 127.0.0.1:Q` and nothing else */
int rly_relay_start_dev(rly_relay_t *r, const char *const *extra);
/* rly_relay_start with an existing key file (from rly_test_keygen) instead of a new one: relays that share it verify each
 * other's states */
int rly_relay_start_keys(rly_relay_t *r, const char *keys, const char *const *extra);
/* a self-signed EC certificate for localhost and 127.0.0.1 (2 days) and its key, with the openssl CLI; 0 / -1 */
int rly_make_certificate(const char *cert, const char *key);
/* writes a new key file with `authrelay keygen` into the process temporary dir; its path into path (cap bytes); 0 / -1 */
int rly_test_keygen(char *path, size_t cap);
/* 1 while the relay process runs, 0 once it exited (then exit_status tells how) */
int rly_relay_running(rly_relay_t *r);
/* sends a signal to a running relay */
void rly_relay_signal(rly_relay_t *r, int sig);
/* waits at most timeout_ms for the relay to exit; returns its exit status (see exit_status) or -1 on timeout */
int rly_relay_wait(rly_relay_t *r, long timeout_ms);
/* SIGTERM, then waits (15 s, then SIGKILL); returns the exit status */
int rly_relay_stop(rly_relay_t *r);
/* stops the relay if still running and forgets it (its files stay until the process temporary dir goes) */
void rly_relay_cleanup(rly_relay_t *r);
/* for group teardowns: rly_relay_stop, rly_relay_cleanup, arena freed; 0 if the relay exited 0, else -1 (with a message) */
int rly_relay_finish(rly_relay_t *r);
/* captured stdout / stderr so far, arena-owned */
char *rly_relay_stdout(const rly_relay_t *r, size_t *len);
char *rly_relay_stderr(const rly_relay_t *r, size_t *len);
/* arena-owned "<public_url><path>" and "<admin_url><path>" */
char *rly_url(const rly_relay_t *r, const char *path);
char *rly_admin_url(const rly_relay_t *r, const char *path);

/* ---- HTTP ---- */

typedef struct st_rly_header_t {
    char *name, *value;
} rly_header_t;

typedef struct st_rly_response_t {
    long status; /* 0: no response (error says why) */
    int version; /* RLY_H1, RLY_H2, or 0 (no response, or HTTP/1.0) */
    rly_header_t *headers;
    size_t nheaders;
    char *body; /* always NUL-terminated (an empty body is "") */
    size_t body_len;
    char error[256];
    double elapsed;       /* seconds from this request's start to its end */
    double done_at;       /* rly_http_multi: seconds from the batch start to this request's end */
    long new_connections; /* connections curl opened for this request (0: it reused or multiplexed onto one) */
} rly_response_t;

typedef struct st_rly_request_t {
    const char *method; /* NULL: GET */
    const char *url;
    const char *const *headers; /* NULL-terminated "Name: value" list, or NULL */
    const void *body;           /* sent when non-NULL */
    size_t body_len;
    int version;        /* RLY_H1 (default) or RLY_H2; plain http:// URLs always use HTTP/1.1 */
    long timeout_ms;    /* 0: 15000 */
    int insecure;       /* no certificate check (the --dev relay's ephemeral certificate) */
    const char *cainfo; /* NULL: the certificate of the relay (started by this harness) on the URL's port */
    long start_ms;      /* rly_http_multi: when to start, from the batch start */
    int pipewait;       /* rly_http_multi: wait for a connection that can multiplex rather than open another */
} rly_request_t;

/*
 * One request; never follows redirects; resolves localhost to 127.0.0.1; trusts the certificate of the relay on the
 * URL's port. version is RLY_H1 or RLY_H2. Returns the status (0 on transport failure). resp is the caller's:
 * release with rly_response_free.
 */
long rly_http(const char *method, const char *url, const char *const *headers, const void *body, size_t len, int version,
              rly_response_t *resp);
long rly_http_req(const rly_request_t *req, rly_response_t *resp);
/* the value of one series ("name" or "name{labels}") in the relay's /metrics on its admin listener; fails the test if
 * the series is missing */
long long rly_metric(const rly_relay_t *r, const char *series);
void rly_response_free(rly_response_t *resp);
/* as rly_http_req, but the response is arena-owned (never NULL) */
rly_response_t *rly_do(const rly_request_t *req);
/* n zeroed responses, arena-owned (each freed with the arena): for rly_http_multi, one batch each */
rly_response_t *rly_responses(size_t n);
/*
 * Runs n requests concurrently (curl multi), each started at its start_ms; action(ud), if non-NULL, runs once at
 * action_ms. resps[i] receives request i's response (caller frees each). Returns 0 when all finished, -1 otherwise.
 */
int rly_http_multi(const rly_request_t *reqs, size_t n, rly_response_t *resps, long action_ms, void (*action)(void *ud), void *ud);

/* first value of a header (case-insensitive name), or NULL; the i-th value; the number of values */
const char *rly_header(const rly_response_t *resp, const char *name);
const char *rly_header_n(const rly_response_t *resp, const char *name, size_t i);
size_t rly_header_count(const rly_response_t *resp, const char *name);
/* 1 if needle occurs anywhere in the response: body, or any header name or value */
int rly_response_contains(const rly_response_t *resp, const char *needle);

/* ---- JSON ---- */

/* parses the body as one JSON document (strict), arena-owned; NULL if it is not JSON */
json_object *rly_json(const rly_response_t *resp);
/* member as string / integer; NULL / -1 when missing or of another type */
const char *rly_jstr(json_object *o, const char *key);
int rly_jint(json_object *o, const char *key, int64_t *out);
/* 1 if o is an object whose members are exactly the NULL-terminated list keys */
int rly_jkeys_exactly(json_object *o, const char *const *keys);
/* 1 if the body is {"error": <code>, "error_description": <non-empty string>} and nothing else */
int rly_is_error_body(const rly_response_t *resp, const char *code);

/* ---- protocol helpers ---- */

typedef struct st_rly_session_t {
    char session[64];
    char state[160];
    char poll_token[64];
    char poll_url[256];
    char redirect_uri[256];
    int64_t expires_in;
} rly_session_t;

/* POST /v1/sessions with Content-Type: application/json and body json; fills s from a 201. Arena-owned response. */
rly_response_t *rly_create(const rly_relay_t *r, int version, const char *json, rly_session_t *s);
/* rly_create with {"authorization_server": RLY_TEST_AS, "return_uri": RLY_TEST_RETURN}; fails the test unless 201 */
void rly_create_ok(const rly_relay_t *r, int version, rly_session_t *s);
/* the same without return_uri */
void rly_create_ok_noreturn(const rly_relay_t *r, int version, rly_session_t *s);
/* GET poll_url with the bearer; wait < 0: no Prefer header */
rly_response_t *rly_pickup(const rly_session_t *s, int version, int wait);
/* DELETE poll_url with the bearer */
rly_response_t *rly_delete(const rly_session_t *s, int version);
/* GET <public_url><path>?<query> (path NULL: /qorus-oauth2-redirect) */
rly_response_t *rly_callback(const rly_relay_t *r, int version, const char *path, const char *query);

/* seconds since an arbitrary point (monotonic) */
double rly_now(void);
/* prefix followed by 24 random characters of [A-Za-z0-9_-] (unique per call), arena-owned */
char *rly_token(const char *prefix);
/* 1 if s is non-empty and only [A-Za-z0-9_-] */
int rly_is_b64url(const char *s);

/* fails the test unless the response has this status and came over HTTP version v (0: any) */
#define RLY_EXPECT(res, code, v)                                                                                                   \
    do {                                                                                                                           \
        const rly_response_t *res_ = (res);                                                                                        \
        if (res_->status != (code))                                                                                                \
            fail_msg("%s:%d: expected status %d, got %ld %s; body: %.600s", __FILE__, __LINE__, (int)(code), res_->status,         \
                     res_->error, res_->body);                                                                                     \
        if ((v) != 0 && res_->version != (v))                                                                                      \
            fail_msg("%s:%d: expected HTTP version %s, got %d", __FILE__, __LINE__, (v) == RLY_H2 ? "2" : "1.1", res_->version);   \
    } while (0)
/* fails the test unless the strings are equal (NULL is a failure), printing both */
#define RLY_EXPECT_STR(got, want)                                                                                                  \
    do {                                                                                                                           \
        const char *g_ = (got), *w_ = (want);                                                                                      \
        if (g_ == NULL || strcmp(g_, w_) != 0)                                                                                     \
            fail_msg("%s:%d: expected \"%.300s\", got \"%.300s\"", __FILE__, __LINE__, w_, g_ != NULL ? g_ : "(null)");            \
    } while (0)

#endif
