/* pages.h: the small HTML pages a browser may see, and HTML escaping */
#ifndef RELAY_PAGES_H
#define RELAY_PAGES_H

#include <h2o.h>

typedef enum en_relay_page_t {
    RELAY_PAGE_DONE,        /* 200: authorized, no return_uri */
    RELAY_PAGE_DENIED,      /* 200: the AS reported an error, no return_uri */
    RELAY_PAGE_BAD_REQUEST, /* 400 */
    RELAY_PAGE_EXPIRED,     /* 410 */
    RELAY_PAGE_USED,        /* 409 */
    RELAY_PAGE_SLOW_DOWN,   /* 429 */
    RELAY_PAGE_RETRY,       /* 503: reload in a moment */
    RELAY_PAGE_TOO_LARGE,   /* 413 / 414 */
    RELAY_PAGE_METHOD,      /* 405 */
} relay_page_t;

/* sends the page with the security headers; detail (may be NULL) is request text shown escaped (e.g. the AS's error
 * code); retry_after > 0 adds Retry-After */
void relay_respond_page(h2o_req_t *req, int status, relay_page_t page, const char *detail, size_t detail_len, int retry_after);
/* escapes &<>"' into dst (capacity cap, NUL-terminated, truncated at a character boundary); returns the length */
size_t relay_html_escape(char *dst, size_t cap, const char *src, size_t len);

#endif
