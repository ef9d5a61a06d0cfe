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

#endif
