/* browser.c: the browser of a 1.1 flow on the relay's side: its __Host-authrelay cookie, read and set; same-origin */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "browser.h"

/* the value of name in one Cookie header ("a=1; b=2"), or a NULL base */
static rly_str_t cookie_value(h2o_iovec_t header, const char *name, size_t name_len)
{
    size_t pos = 0;
    while (pos < header.len) {
        while (pos < header.len && (header.base[pos] == ' ' || header.base[pos] == ';'))
            ++pos;
        size_t end = pos;
        while (end < header.len && header.base[end] != ';')
            ++end;
        if (end - pos > name_len && memcmp(header.base + pos, name, name_len) == 0 && header.base[pos + name_len] == '=') {
            size_t vend = end;
            while (vend > pos + name_len + 1 && header.base[vend - 1] == ' ')
                --vend;
            return (rly_str_t){header.base + pos + name_len + 1, vend - pos - name_len - 1};
        }
        pos = end;
    }
    return (rly_str_t){NULL, 0};
}

int relay_browser_cookie(h2o_req_t *req, const rly_keyring_t *kr, char out[RLY_COOKIE_LEN + 1])
{
    ssize_t i = -1;
    while ((i = h2o_find_header(&req->headers, H2O_TOKEN_COOKIE, i)) != -1) {
        rly_str_t v = cookie_value(req->headers.entries[i].value, H2O_STRLIT(RLY_COOKIE_NAME));
        if (v.base != NULL && v.len == RLY_COOKIE_LEN && rly_cookie_verify(kr, v.base, v.len) == 0) {
            memcpy(out, v.base, RLY_COOKIE_LEN);
            out[RLY_COOKIE_LEN] = '\0';
            return 1;
        }
    }
    return 0;
}

void relay_browser_set_cookie(h2o_req_t *req, const char *cookie, unsigned max_age)
{
    char buf[sizeof(RLY_COOKIE_NAME) + RLY_COOKIE_LEN + 96];
    int n = snprintf(buf, sizeof(buf), RLY_COOKIE_NAME "=%s; Max-Age=%u; Path=/; Secure; HttpOnly; SameSite=None", cookie, max_age);
    if (n > 0 && (size_t)n < sizeof(buf))
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_SET_COOKIE, NULL, h2o_strdup(&req->pool, buf, (size_t)n).base,
                       (size_t)n);
}

/* the value of a request header (by lower-case name), or a NULL base */
static h2o_iovec_t header(h2o_req_t *req, const char *name, size_t len)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, len, -1);
    return i != -1 ? req->headers.entries[i].value : h2o_iovec_init(NULL, 0);
}

int relay_browser_same_origin(h2o_req_t *req, const char *public_url)
{
    h2o_iovec_t o = header(req, H2O_STRLIT("origin"));
    if (o.base == NULL)
        return 1;
    /* our pages send Referrer-Policy: no-referrer, under which a browser sends "Origin: null" even on a same-origin
     * form POST (the Fetch standard's serialization of the origin): then the browser's own Sec-Fetch-Site must say
     * same-origin, which a cross-site page cannot forge */
    if (o.len == 4 && memcmp(o.base, "null", 4) == 0) {
        h2o_iovec_t site = header(req, H2O_STRLIT("sec-fetch-site"));
        return site.len == 11 && memcmp(site.base, "same-origin", 11) == 0;
    }
    /* the origin is public_url up to its path: scheme "://" host [":" port] */
    const char *p = strstr(public_url, "://");
    size_t n = p != NULL ? (size_t)(p + 3 - public_url) + strcspn(p + 3, "/") : strlen(public_url);
    return o.len == n && strncasecmp(o.base, public_url, n) == 0;
}
