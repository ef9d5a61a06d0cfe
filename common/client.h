/* client.h: the instance side of the protocol (`authrelay client`): discovery, session, return listener, pickup, unlock, token
 * exchange */
#ifndef RLY_CLIENT_H
#define RLY_CLIENT_H

#include <signal.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>
#include "buf.h"
#include "lock.h"
#include "rly.h"

#define RLY_CLIENT_BODY_MAX (1024 * 1024) /* largest response body read from the relay or the token endpoint */
#define RLY_CLIENT_URL_MAX 2048           /* --relay, --authorize-url, --token-url, --return-uri */
#define RLY_CLIENT_ARGS_MAX 64            /* --scope and --param, each */
#define RLY_CLIENT_SECRET_MAX 4096        /* --client-secret-file contents */
#define RLY_CLIENT_TIMEOUT_DEFAULT 30     /* seconds, every request (a long-poll gets its wait on top) */
#define RLY_CLIENT_TIMEOUT_MAX 3600
#define RLY_CLIENT_TTL_MAX 86400
#define RLY_CLIENT_BACKOFF_BASE_MS 250  /* reconnect backoff: first delay, doubling ... */
#define RLY_CLIENT_BACKOFF_CAP_MS 15000 /* ... up to this */
#define RLY_CLIENT_RETRY_AFTER_MAX 300  /* a longer Retry-After is read as this */
#define RLY_PKCE_VERIFIER_LEN 43        /* base64url of 32 random bytes (RFC 7636 allows 43..128) */
#define RLY_PKCE_CHALLENGE_LEN 43       /* base64url of a SHA-256 */

/* the return listener of a 1.1 flow: a tiny HTTP/1.1 server on 127.0.0.1 that takes the relay's return POST */
#define RLY_CLIENT_RETURN_PATH "/authrelay/return" /* the return_uri's path: the delivery page POSTs here */
#define RLY_CLIENT_DONE_PATH "/authrelay/done"     /* the page the browser is sent to (303) once the release key arrived */
#define RLY_CLIENT_RETURN_HEAD_MAX 8192            /* request line and headers; more: 431 */
#define RLY_CLIENT_RETURN_BODY_MAX 8192            /* a request body; more: 413 */
#define RLY_CLIENT_RETURN_TIMEOUT_MS 10000         /* a connection has this long to send its whole request, else 408 */
#define RLY_CLIENT_RETURN_CONNS 8                  /* connections served at once (browsers open spare ones); more wait */
#define RLY_CLIENT_RETURN_LINGER_MS 3000           /* at the end: the wait for the browser's GET of the done page */
#define RLY_CLIENT_PASTE_LINE_MAX 512              /* --no-listen: one pasted line */

/* the outcome of a flow; each value is also the exit status of `authrelay client` */
typedef enum en_rly_client_status_t {
    RLY_CLIENT_OK = 0,       /* authorized (and the token exchanged when asked) */
    RLY_CLIENT_FAILED = 1,   /* any other runtime failure: relay unreachable, relay error, token endpoint error... */
    RLY_CLIENT_USAGE = 2,    /* bad options */
    RLY_CLIENT_DENIED = 3,   /* the AS redirected with an error (e.g. access_denied) */
    RLY_CLIENT_EXPIRED = 4,  /* the session expired (or is gone) before the callback (or, in 1.1, the release key) arrived */
    RLY_CLIENT_BAD_SEAL = 5, /* the result did not open (with the --seal key, or with the release key of a 1.1 flow), or came
                                back unsealed (--seal) or unlocked (1.1) */
} rly_client_status_t;

/* the options of `authrelay client authorize`; every string is borrowed (from argv) */
typedef struct st_rly_client_opts_t {
    const char *relay;         /* the relay's base URL */
    const char *authorize_url; /* the AS authorize endpoint; may carry a query of its own */
    const char *client_id;
    const char *scopes[RLY_CLIENT_ARGS_MAX]; /* joined with spaces into one scope parameter */
    size_t nscopes;
    const char *audience, *prompt;           /* NULL: not sent */
    const char *params[RLY_CLIENT_ARGS_MAX]; /* extra authorize parameters, "k=v" (checked by the parser) */
    size_t nparams;
    const char *return_uri; /* --unbound: NULL for none (the relay shows its own "done" page); 1.1: only with --no-listen */
    int unbound;            /* --unbound: a protocol version 1 flow (this client builds the authorize URL) */
    int no_listen;          /* --no-listen (1.1): no return listener; the session and the release key are pasted */
    long listen_port;       /* --listen-port (1.1): the return listener's port on 127.0.0.1; 0: an ephemeral one */
    const char *label;      /* --label (1.1): the instance's display name on the confirmation page; NULL: none */
    int seal;               /* ask for the result sealed to a fresh X25519 key */
    const char *token_url;  /* NULL: print the code; else exchange it and print the token response */
    const char *client_secret_file;
    int pkce;
    long ttl;           /* 0: the relay's default */
    const char *cacert; /* NULL: the system trust store */
    int insecure;       /* no certificate checks, for loopback hosts only */
    long timeout;       /* seconds per request (a long-poll gets its wait on top) */
    int help;           /* --help was given: nothing else is checked */
    /* set by the caller, not by the parser */
    volatile sig_atomic_t *cancel; /* non-NULL: the flow stops (and deletes its session) once *cancel is non-zero */
    void (*on_authorize_url)(const char *url, void *ud); /* called once with the URL the user must open: the session's
                                                            start_url (1.1), or the authorize URL (--unbound) */
    void *ud;
    int paste_fd; /* --no-listen: where the pasted session and release key are read (0, as left by the parser: stdin) */
} rly_client_opts_t;

/*
 * Parses the arguments that follow `authorize` (argv[0] is the first option). Every string in o borrows from argv. Checks
 * every rule that needs no I/O: required options, numbers and their bounds, URL schemes (https, or http to a loopback
 * host), --insecure only with a loopback relay, --token-url with --client-secret-file or --pkce, --param as k=v, and
 * the modes: --unbound excludes --no-listen, --listen-port and --label; in 1.1 --return-uri goes only with --no-listen
 * (which needs it; no query), --listen-port not with --no-listen, and the authorize parameters follow protocol.md's
 * rules for authorize_params (names [A-Za-z0-9._-]{1,64}, printable ASCII values, no name twice, at most 32 and 4 KiB).
 * 0 ok (o->help set when --help was seen), -1 usage error with a one-line message in err.
 */
int rly_client_parse_args(rly_client_opts_t *o, int argc, char *const *argv, char *err, size_t errlen);

/*
 * Runs the whole flow of o. Protocol 1.1 (the default): the return listener on 127.0.0.1 (unless --no-listen), discovery,
 * a session with authorize_params, its start_url given to o->on_authorize_url, the long-poll with reconnects while the
 * listener waits for the release key (--no-listen: read from o->paste_fd once the result is there), unseal, unlock, token
 * exchange, acknowledgement. --unbound: version 1, the authorize URL built here and nothing to unlock. Writes the final
 * JSON on one line to out (the result, the denied result, or the token response) and warnings to diag (the prompt of
 * --no-listen too); on failure a one-line message without a prefix into err. Never writes the client secret, the PKCE
 * verifier, the release key or a token anywhere but to out, and never sends them to the relay.
 */
rly_client_status_t rly_client_authorize(const rly_client_opts_t *o, FILE *out, FILE *diag, char *err, size_t errlen);

/* ---- pure helpers (no I/O), exposed for the tests ---- */

/*
 * The authorize URL: authorize_url + '?' (or '&' when it has a query already) + audience, client_id, scope (the scopes
 * joined with spaces), redirect_uri, state, response_type=code, prompt, the extra params in order, then
 * code_challenge + code_challenge_method=S256 when challenge is non-NULL. Absent options are left out. Every value
 * (and every extra key) is percent-encoded, only RFC 3986 unreserved characters left as they are (a space is %20).
 * Returns a malloc'ed string (caller frees) or NULL (out of memory, a param without '=').
 */
char *rly_client_authorize_url(const rly_client_opts_t *o, const char *redirect_uri, const char *state, const char *challenge);
/* appends src percent-encoded (unreserved characters kept) to dst[*len..cap); 0, or -1 when it does not fit */
int rly_client_pct_encode(char *dst, size_t cap, size_t *len, const char *src, size_t srclen);
/* a fresh PKCE code verifier: RLY_PKCE_VERIFIER_LEN characters and a NUL; 0 / -1 (CSPRNG failure) */
int rly_pkce_verifier(char out[RLY_PKCE_VERIFIER_LEN + 1]);
/* the S256 challenge of a verifier: BASE64URL(SHA256(ASCII(verifier))), RLY_PKCE_CHALLENGE_LEN characters and a NUL */
void rly_pkce_challenge(const char *verifier, size_t len, char out[RLY_PKCE_CHALLENGE_LEN + 1]);
/*
 * A Retry-After value (RFC 9110 10.2.3): delay-seconds, or an HTTP-date read against now. Returns seconds to wait,
 * clamped to 0..RLY_CLIENT_RETRY_AFTER_MAX (a date in the past is 0), or -1 when value is NULL or unreadable.
 */
long rly_client_retry_after(const char *value, time_t now);
/*
 * Delay before reconnect number attempt (0 first): exponential from RLY_CLIENT_BACKOFF_BASE_MS, capped at
 * RLY_CLIENT_BACKOFF_CAP_MS, with "equal jitter" from rnd: the result lies in [d/2, d] for the capped delay d.
 */
long rly_client_backoff_ms(unsigned attempt, uint32_t rnd);

/*
 * The authorize_params of a 1.1 session as a JSON object text: audience, client_id, scope (the scopes joined with
 * spaces), prompt, the --param pairs in order, then code_challenge and code_challenge_method "S256" when challenge is
 * non-NULL; absent options left out. Returns a malloc'ed string (caller frees) or NULL (out of memory, a param without '=').
 */
char *rly_client_authorize_params(const rly_client_opts_t *o, const char *challenge);

/*
 * A pasted line of --no-listen split at blanks (spaces, tabs, a trailing CR): the tokens into tok[0..2) (borrowed from
 * line). Returns their number, 0 to 2, or -1 for more than two.
 */
int rly_client_paste_tokens(const char *line, size_t len, rly_str_t tok[2]);

/* ---- the return listener's HTTP, without I/O (exposed for the tests) ---- */

/* the head of one HTTP/1.x request; every string borrowed from the parsed buffer (base NULL: absent) */
typedef struct st_rly_client_http_req_t {
    rly_str_t method;
    rly_str_t path;           /* the request target up to '?' (origin-form: starts with '/') */
    rly_str_t query;          /* after '?' */
    rly_str_t host;           /* the Host header */
    rly_str_t content_type;   /* the Content-Type header */
    long long content_length; /* -1: no Content-Length */
    int chunked;              /* a Transfer-Encoding header was sent (refused: 411) */
    int expect_continue;      /* Expect: 100-continue */
} rly_client_http_req_t;

/*
 * Parses the head of a request in buf[0..len): the request line (METHOD SP origin-form SP HTTP/1.0 or HTTP/1.1 CRLF),
 * header fields (token ":" OWS value OWS CRLF; no obs-fold, no NUL or other control byte but HTAB in a value; Host and
 * Content-Length at most once, Content-Length digits only), then an empty line. Returns the head's length (through the
 * empty line), -1 malformed, -2 incomplete (the caller bounds len: RLY_CLIENT_RETURN_HEAD_MAX). Knows no I/O and
 * allocates nothing.
 */
ssize_t rly_client_http_head_parse(const char *buf, size_t len, rly_client_http_req_t *req);

/* what the return listener knows and has received; the listener thread writes it, under its lock */
typedef struct st_rly_client_return_t {
    char session[RLY_SESSION_ID_LEN + 1];  /* the flow's session: a release for any other session is refused */
    char host[32];                         /* "127.0.0.1:PORT": the only Host accepted (no DNS rebinding) */
    char release[RLY_RELEASE_KEY_LEN + 1]; /* "" until the POST for session arrived */
    int success;                           /* that POST said status=success (a hint for the done page only) */
    unsigned foreign;                      /* POSTs refused because they named another session */
    int done_served;                       /* the done page was served */
} rly_client_return_t;

/*
 * Answers one request to the return listener, appending the whole HTTP/1.1 response (Connection: close, no-store, the
 * pages' security headers) to out:
 *  - POST RLY_CLIENT_RETURN_PATH, application/x-www-form-urlencoded, with session (rs->session), release (a
 *    well-formed release key), status and message each at most once: the release is kept in rs; 303 to
 *    RLY_CLIENT_DONE_PATH. The same release again (a resubmitted form): 303 again. Another session: 400 (rs->foreign
 *    counted), and another release for rs->session once one was kept: 400; nothing kept either way.
 *  - GET RLY_CLIENT_DONE_PATH: 200, a page saying the sign-in is complete (or not granted) and may be closed.
 *  - a Host other than rs->host: 400; another path 404; another method 405 with Allow; a POST without Content-Length
 *    or with Transfer-Encoding 411; another Content-Type 415.
 * body is the request's body (Content-Length bytes). Returns 1 when this request delivered the release key, else 0.
 * Writes no request data into the response.
 */
int rly_client_return_serve(rly_client_return_t *rs, const rly_client_http_req_t *req, const char *body, size_t bodylen,
                            rly_buf_t *out);
/* the response for a request that could not be served: status 400, 408, 413, 431 or 500 (anything else is 400) */
void rly_client_return_error(int status, rly_buf_t *out);

#endif
