/* bound.h: a browser for protocol 1.1 flows in the integration tests: start page, confirmation, callback, delivery */
#ifndef RLY_BOUND_H
#define RLY_BOUND_H

#include "harness.h"

#define RLY_TEST_BOUND_RETURN "https://qorus.example.com:8011/grant"
#define RLY_TEST_CLIENT_ID "qorus-test-client"

/* one 1.1 flow as a browser and its instance see it; strings are "" until the step that fills them */
typedef struct st_rly_bound_t {
    rly_session_t s; /* session, poll_url, poll_token (no state: a 1.1 session has none before Continue) */
    char start_url[512];
    char token[64];       /* the t of start_url */
    char cookie[64];      /* the browser's __Host-authrelay cookie */
    char csrf[64];        /* from the confirmation page */
    char state[160];      /* from the AS authorize URL after Continue */
    char location[4096];  /* that URL */
    char release[64];     /* from the delivery page */
    char deliver_to[512]; /* the delivery form's action */
} rly_bound_t;

/* POST /v1/sessions with authorization_server RLY_TEST_AS, return_uri RLY_TEST_BOUND_RETURN, authorize_params
 * {"client_id": RLY_TEST_CLIENT_ID, "scope": "read:jira-work offline_access"} (unless extra has authorize_params of its
 * own) and the extra members given (a JSON fragment such as "\"label\": \"x\"", or NULL); fills b on 201 */
rly_response_t *rly_bound_create(const rly_relay_t *r, int version, const char *extra, rly_bound_t *b);
/* the same, failing the test unless 201 */
void rly_bound_create_ok(const rly_relay_t *r, int version, const char *extra, rly_bound_t *b);
/* GET start_url with the browser's cookie (if any); takes a cookie the relay sets, and the page's CSRF token */
rly_response_t *rly_bound_start_page(const rly_relay_t *r, int version, rly_bound_t *b);
/* POST /v1/start (action "continue" or "cancel") with the cookie, the CSRF token and the relay's Origin; takes the
 * state from a 303's Location */
rly_response_t *rly_bound_confirm(const rly_relay_t *r, int version, rly_bound_t *b, const char *action);
/* the confirmation POST at relay r, as rly_bound_confirm sends it but not yet sent (arena-owned) */
rly_request_t rly_bound_confirm_request(const rly_relay_t *r, int version, const rly_bound_t *b, const char *action);
/* n Continues of one flow at once, request i to relays[i % nrelays]; *ok the 303s, *gone the 410s */
void rly_bound_confirm_race(const rly_relay_t *const *relays, size_t nrelays, const rly_bound_t *b, size_t n, int *ok, int *gone);
/* the whole confirmation: start page then Continue, failing the test unless 200 then 303 */
void rly_bound_confirm_ok(const rly_relay_t *r, int version, rly_bound_t *b);
/* GET the callback with query and the Cookie header given (NULL: none); takes the release key from a delivery page */
rly_response_t *rly_bound_callback(const rly_relay_t *r, int version, rly_bound_t *b, const char *query, const char *cookie);
/* the result object inside a pickup's {"status":"locked"} answer, opened with b->release (arena-owned); NULL if it does
 * not open */
json_object *rly_bound_open(const rly_bound_t *b, const rly_response_t *pickup);
/* the value of a hidden form field name="<name>" in an HTML body (arena-owned), or NULL */
char *rly_form_value(const char *html, const char *name);

#endif
