/* pages.h: the small HTML pages a browser may see, and HTML escaping */
#ifndef RELAY_PAGES_H
#define RELAY_PAGES_H

#include <h2o.h>

typedef enum en_relay_page_t {
    RELAY_PAGE_DONE,          /* 200: authorized, no return_uri */
    RELAY_PAGE_DENIED,        /* 200: the AS reported an error, no return_uri */
    RELAY_PAGE_BAD_REQUEST,   /* 400 */
    RELAY_PAGE_EXPIRED,       /* 410 */
    RELAY_PAGE_USED,          /* 409 */
    RELAY_PAGE_SLOW_DOWN,     /* 429 */
    RELAY_PAGE_RETRY,         /* 503: reload in a moment */
    RELAY_PAGE_TOO_LARGE,     /* 413 / 414 */
    RELAY_PAGE_METHOD,        /* 405 */
    RELAY_PAGE_OTHER_BROWSER, /* 403: a 1.1 callback without the browser that confirmed (or before confirmation) */
    RELAY_PAGE_START_REFUSED, /* 403: a confirmation POST without a valid cookie, CSRF token or same-origin Origin */
    RELAY_PAGE_START_GONE,    /* 410: a start link unknown, expired, or already confirmed or cancelled */
    RELAY_PAGE_CANCELLED,     /* 200: the user cancelled on the confirmation page */
} relay_page_t;

/* sends the page with the security headers; detail (may be NULL) is request text shown escaped (e.g. the AS's error
 * code); retry_after > 0 adds Retry-After */
void relay_respond_page(h2o_req_t *req, int status, relay_page_t page, const char *detail, size_t detail_len, int retry_after);
/* what the confirmation page (GET /v1/start) shows and posts; every string is borrowed and shown escaped */
typedef struct st_relay_confirm_view_t {
    const char *return_uri; /* checked at session creation: http(s)://host[:port][/path], no userinfo, query or fragment */
    size_t return_uri_len;
    const char *as_host; /* NUL-terminated */
    const char *scope;   /* NULL when not requested */
    size_t scope_len;
    const char *audience; /* NULL when not requested */
    size_t audience_len;
    const char *label; /* NULL when the instance gave none */
    size_t label_len;
    const char *start_token; /* NUL-terminated, base64url */
    const char *csrf;        /* NUL-terminated, base64url */
} relay_confirm_view_t;
void relay_respond_confirm(h2o_req_t *req, const relay_confirm_view_t *v);

/* the delivery page of a 1.1 callback: a form that one hash-allowed script POSTs to return_uri at once, with a button
 * (and, without scripts, the fields to copy by hand) as fallback; every string borrowed */
typedef struct st_relay_delivery_t {
    const char *return_uri;
    size_t return_uri_len;
    const char *session; /* session id text */
    const char *status;  /* "success" or "error" */
    const char *message; /* the AS's error code, "" on success */
    const char *release; /* the release key, base64url */
} relay_delivery_t;
void relay_respond_delivery(h2o_req_t *req, const relay_delivery_t *d);

/* the one script of the delivery page and its CSP hash (exposed for the test that checks the hash) */
extern const char relay_delivery_script[];
extern const char relay_delivery_csp[];

/* splits the host of an http(s) URL for display: *reg_off is where its registrable domain (public suffix list) starts
 * within the host (0 for an IP address, localhost or a name that is itself a public suffix); host and port are borrowed
 * from url; port_len 0 when absent. 0 / -1 (not an http(s) URL with a host) */
int relay_url_display_split(const char *url, size_t len, const char **host, size_t *host_len, size_t *reg_off, const char **port,
                            size_t *port_len, int *port_default, const char **path, size_t *path_len);

/* escapes &<>"' into dst (capacity cap, NUL-terminated, truncated at a character boundary); returns the length */
size_t relay_html_escape(char *dst, size_t cap, const char *src, size_t len);

#endif
