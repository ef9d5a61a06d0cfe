/* browser.h: the browser of a 1.1 flow on the relay's side: its __Host-authrelay cookie, read and set; same-origin */
#ifndef RELAY_BROWSER_H
#define RELAY_BROWSER_H

#include <h2o.h>
#include "bind.h"
#include "keys.h"

/* the browser cookie the request carries (in any Cookie header), verified under the key ring: a tampered cookie, or one
 * minted under a key no longer in the ring, counts as absent. 1 with the text (NUL-terminated) in out, 0 none. */
int relay_browser_cookie(h2o_req_t *req, const rly_keyring_t *kr, char out[RLY_COOKIE_LEN + 1]);
/* Set-Cookie: __Host-authrelay=<cookie>; Max-Age=<max_age>; Path=/; Secure; HttpOnly; SameSite=None */
void relay_browser_set_cookie(h2o_req_t *req, const char *cookie, unsigned max_age);
/* 1 if the request carries no Origin, the relay's own origin (the scheme, host and port of public_url), or "null" with
 * Sec-Fetch-Site: same-origin (what browsers send for a same-origin POST from a no-referrer page); else 0 */
int relay_browser_same_origin(h2o_req_t *req, const char *public_url);

#endif
