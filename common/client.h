/* client.h: the instance side of the protocol (`authrelay client`): discovery, session, authorize URL, pickup, token exchange */
#ifndef RLY_CLIENT_H
#define RLY_CLIENT_H

#include <signal.h>
#include <stdio.h>
#include <time.h>
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

/* the outcome of a flow; each value is also the exit status of `authrelay client` */
typedef enum en_rly_client_status_t {
    RLY_CLIENT_OK = 0,       /* authorized (and the token exchanged when asked) */
    RLY_CLIENT_FAILED = 1,   /* any other runtime failure: relay unreachable, relay error, token endpoint error... */
    RLY_CLIENT_USAGE = 2,    /* bad options */
    RLY_CLIENT_DENIED = 3,   /* the AS redirected with an error (e.g. access_denied) */
    RLY_CLIENT_EXPIRED = 4,  /* the session expired (or is gone) before the callback arrived */
    RLY_CLIENT_BAD_SEAL = 5, /* --seal: the result did not open, or came back unsealed */
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
    const char *return_uri; /* NULL: none (the relay shows its own "done" page) */
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
    void (*on_authorize_url)(const char *url, void *ud); /* called once with the URL the user must open */
    void *ud;
} rly_client_opts_t;

/*
 * Parses the arguments that follow `authorize` (argv[0] is the first option). Every string in o borrows from argv. Checks
 * every rule that needs no I/O: required options, numbers and their bounds, URL schemes (https, or http to a loopback
 * host), --insecure only with a loopback relay, --token-url with --client-secret-file or --pkce, --param as k=v.
 * 0 ok (o->help set when --help was seen), -1 usage error with a one-line message in err.
 */
int rly_client_parse_args(rly_client_opts_t *o, int argc, char *const *argv, char *err, size_t errcap);

/*
 * Runs the whole flow of o: discovery, session, authorize URL (given to o->on_authorize_url), long-poll with reconnects,
 * unseal, token exchange, acknowledgement. Writes the final JSON on one line to out (the result, the denied result, or
 * the token response) and warnings to diag; on failure a one-line message without a prefix into err. Never writes
 * the client secret, the PKCE verifier or a token anywhere but to out, and never sends them to the relay.
 */
rly_client_status_t rly_client_authorize(const rly_client_opts_t *o, FILE *out, FILE *diag, char *err, size_t errcap);

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

#endif
