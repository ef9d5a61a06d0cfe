/* url.h: checks of the URLs an instance gives the relay (authorization_server, return_uri) */
#ifndef RLY_URL_H
#define RLY_URL_H

#include "rly.h"

/*
 * authorization_server: absolute https URL with a host, no userinfo, no fragment, at most 2048 bytes, no whitespace or
 * control bytes; http only when allow_http_loopback and the host is loopback (rly_host_is_loopback of addr.h).
 * Writes the host, lower-cased, NUL-terminated, without port or brackets' contents altered, into host (hostcap >=
 * RLY_AS_HOST_MAX + 1). 0 ok, -1 invalid with *errstr a fixed text.
 */
int rly_url_check_as(const char *url, size_t len, int allow_http_loopback, char *host, size_t hostcap, const char **errstr);
/*
 * return_uri: absolute https URL, or http to a loopback host; a host; no userinfo; no fragment; at most
 * RLY_RETURN_URI_MAX bytes; no whitespace or control bytes. 0 / -1 with *errstr.
 */
int rly_url_check_return(const char *url, size_t len, const char **errstr);

/*
 * An allow-list entry (--allow-as): a host name (lower-case labels of [a-z0-9-], 1..63 each), a dotted IPv4 address or
 * an [IPv6] address, matched exactly; or a wildcard "*." + a host name of two labels or more (e.g. "*.okta.com"), which
 * matches any host of one or more labels before that suffix, never the suffix itself. 1 / 0.
 */
int rly_url_as_entry_ok(const char *s, size_t len);
/*
 * The entry host (lower-case, as rly_url_check_as writes it) matches: an exact entry first, then the wildcard with the
 * longest suffix (the most specific). The entry itself (borrowed from entries), or NULL when none matches.
 */
const char *rly_url_as_match(const char *host, const char *const *entries, size_t n);

#endif
