/* url.c: strict checks of the URLs an instance gives the relay (authorization_server, return_uri) */
#include <curl/curl.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "url.h"

#define AS_URL_MAX 2048

typedef struct st_url_parts_t {
    int is_http; /* 0: https */
    const char *host;
    size_t hostlen; /* brackets included for IPv6 */
} url_parts_t;

/* a DNS name or dotted quad: [A-Za-z0-9._-], no empty label */
static int is_reg_name(const char *s, size_t len)
{
    size_t i;

    if (len == 0 || s[0] == '.' || s[len - 1] == '.')
        return 0;
    for (i = 0; i != len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (s[i + 1] == '.')
                return 0;
        } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) {
            return 0;
        }
    }
    return 1;
}

/*
 * libcurl as a second opinion: it must parse the URL too and agree on the host, and see no userinfo and no fragment. Our own
 * parse is stricter (curl accepts "https:///x", "https:/x" and percent-encoded hosts, and rewrites "127.1" or "2130706433"
 * to "127.0.0.1"); requiring the same host rejects those spellings instead of letting two parsers disagree.
 */
static int curl_agrees(const char *url, size_t len, const url_parts_t *parts)
{
    char tmp[AS_URL_MAX + 1];
    CURLU *h = NULL;
    char *host = NULL, *scheme = NULL, *part = NULL;
    int ret = 0;

    if (len >= sizeof(tmp))
        goto Exit;
    memcpy(tmp, url, len);
    tmp[len] = '\0';
    if ((h = curl_url()) == NULL || curl_url_set(h, CURLUPART_URL, tmp, 0) != CURLUE_OK)
        goto Exit;
    if (curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK || strcasecmp(scheme, parts->is_http ? "http" : "https") != 0)
        goto Exit;
    if (curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK || strlen(host) != parts->hostlen ||
        strncasecmp(host, parts->host, parts->hostlen) != 0)
        goto Exit;
    if (curl_url_get(h, CURLUPART_USER, &part, 0) != CURLUE_NO_USER)
        goto Exit;
    if (curl_url_get(h, CURLUPART_PASSWORD, &part, 0) != CURLUE_NO_PASSWORD)
        goto Exit;
    if (curl_url_get(h, CURLUPART_FRAGMENT, &part, 0) != CURLUE_NO_FRAGMENT)
        goto Exit;
    ret = 1;

Exit:
    curl_free(part);
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(h);
    return ret;
}

/* the checks common to both kinds of URL; 0 and *parts, or -1 and *errstr */
static int parse_strict(const char *url, size_t len, size_t maxlen, url_parts_t *parts, const char **errstr)
{
    const char *auth, *es;
    rly_hostport_t hp;
    size_t i, p, authlen, hostlen;
    int r;

    if (url == NULL || len == 0) {
        *errstr = "the URL is empty";
        return -1;
    }
    if (len > maxlen) {
        *errstr = "the URL is too long";
        return -1;
    }
    for (i = 0; i != len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c >= 0x7f) {
            *errstr = "the URL contains whitespace, control or non-ASCII bytes";
            return -1;
        }
        if (c == '#') {
            *errstr = "the URL has a fragment";
            return -1;
        }
    }
    if (len >= 8 && strncasecmp(url, "https://", 8) == 0) {
        parts->is_http = 0;
        p = 8;
    } else if (len >= 7 && strncasecmp(url, "http://", 7) == 0) {
        parts->is_http = 1;
        p = 7;
    } else {
        *errstr = "the URL is not an absolute https URL";
        return -1;
    }

    auth = url + p;
    for (authlen = 0; p + authlen < len && auth[authlen] != '/' && auth[authlen] != '?'; authlen++)
        ;
    if (memchr(auth, '@', authlen) != NULL) {
        *errstr = "the URL has userinfo";
        return -1;
    }
    /* the one host:port split (common/addr.c), with the URL's own name rule; the host is judged before the port */
    if ((r = rly_hostport_split(auth, authlen, 0, &hp, &es)) == -1) {
        *errstr = authlen != 0 && auth[0] == '[' ? "the URL has a malformed IPv6 host" : "the URL has no host";
        return -1;
    }
    if (r == 0)
        hostlen = hp.host_len + (hp.is_ipv6 ? 2 : 0); /* with the brackets */
    else if (auth[0] == '[')
        hostlen = (size_t)((const char *)memchr(auth, ']', authlen) - auth) + 1;
    else
        hostlen = (size_t)((const char *)memchr(auth, ':', authlen) - auth);
    if (auth[0] != '[' && !is_reg_name(auth, hostlen)) {
        *errstr = "the URL host has invalid characters";
        return -1;
    }
    if (hostlen > RLY_AS_HOST_MAX) {
        *errstr = "the URL host is too long";
        return -1;
    }
    if (r != 0) {
        *errstr = "the URL has an invalid port";
        return -1;
    }
    parts->host = auth;
    parts->hostlen = hostlen;
    if (!curl_agrees(url, len, parts)) {
        *errstr = "the URL is not in canonical form";
        return -1;
    }
    return 0;
}

int rly_url_check_as(const char *url, size_t len, int allow_http_loopback, char *host, size_t hostcap, const char **errstr)
{
    url_parts_t parts;
    size_t i;

    if (parse_strict(url, len, AS_URL_MAX, &parts, errstr) != 0)
        return -1;
    if (parts.is_http && !(allow_http_loopback && rly_host_is_loopback(parts.host, parts.hostlen))) {
        *errstr = "the authorization server URL is not https";
        return -1;
    }
    if (host != NULL) {
        if (hostcap <= parts.hostlen) {
            *errstr = "the host buffer is too small";
            return -1;
        }
        for (i = 0; i != parts.hostlen; i++) {
            char c = parts.host[i];
            host[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
        }
        host[i] = '\0';
    }
    return 0;
}

int rly_url_check_return(const char *url, size_t len, const char **errstr)
{
    url_parts_t parts;

    if (parse_strict(url, len, RLY_RETURN_URI_MAX, &parts, errstr) != 0)
        return -1;
    if (parts.is_http && !rly_host_is_loopback(parts.host, parts.hostlen)) {
        *errstr = "the return URI is not https and not to a loopback host";
        return -1;
    }
    return 0;
}

/* lower-case labels of [a-z0-9-], 1..63 each, no '-' at either end of a label, at most RLY_AS_HOST_MAX; the number of
 * labels, or 0 */
static size_t host_labels(const char *s, size_t len)
{
    size_t labels = 0, label = 0;
    if (len == 0 || len > RLY_AS_HOST_MAX)
        return 0;
    for (size_t i = 0; i != len; ++i) {
        char c = s[i];
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return 0;
            label = 0;
            ++labels;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && label != 0)) {
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return label != 0 && s[len - 1] != '-' ? labels + 1 : 0;
}

int rly_url_as_entry_ok(const char *s, size_t len)
{
    rly_hostport_t hp;
    const char *errstr;
    if (len > 2 && s[0] == '*' && s[1] == '.')
        return host_labels(s + 2, len - 2) >= 2;
    if (len != 0 && s[0] == '[')
        return rly_hostport_parse(s, len, 0, &hp, &errstr) == 0 && hp.is_ipv6 && hp.port == 0 && hp.host_len + 2 == len;
    return host_labels(s, len) != 0;
}

const char *rly_url_as_match(const char *host, const char *const *entries, size_t n)
{
    size_t hlen = strlen(host), best_len = 0;
    const char *best = NULL;
    for (size_t i = 0; i != n; ++i) {
        const char *e = entries[i];
        size_t elen = strlen(e);
        if (e[0] != '*') {
            if (elen == hlen && memcmp(e, host, hlen) == 0)
                return e; /* an exact entry wins */
            continue;
        }
        /* "*.suffix": at least one character (a label) before ".suffix" */
        if (hlen >= elen && memcmp(host + hlen - (elen - 1), e + 1, elen - 1) == 0 && hlen > elen - 1 && elen > best_len) {
            best = e;
            best_len = elen;
        }
    }
    return best;
}
