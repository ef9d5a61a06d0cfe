/* bound.c: a browser for protocol 1.1 flows in the integration tests: start page, confirmation, callback, delivery */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bind.h"
#include "bound.h"
#include "lock.h"

static void copy(char *dst, size_t cap, const char *src, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

rly_response_t *rly_bound_create(const rly_relay_t *r, int version, const char *extra, rly_bound_t *b)
{
    static const char *const hdrs[] = {"Content-Type: application/json", NULL};
    /* the default authorize_params unless extra brings its own */
    int own_params = extra != NULL && strstr(extra, "\"authorize_params\"") != NULL;
    char *json = rly_strf("{\"authorization_server\": \"" RLY_TEST_AS "\", \"return_uri\": \"" RLY_TEST_BOUND_RETURN "\"%s%s%s}",
                          own_params ? ""
                                     : ", \"authorize_params\": {\"client_id\": \"" RLY_TEST_CLIENT_ID "\", \"scope\": "
                                       "\"read:jira-work offline_access\"}",
                          extra != NULL ? ", " : "", extra != NULL ? extra : "");
    rly_request_t q = {.method = "POST",
                       .url = rly_url(r, "/v1/sessions"),
                       .headers = hdrs,
                       .body = json,
                       .body_len = strlen(json),
                       .version = version};
    rly_response_t *res = rly_do(&q);
    memset(b, 0, sizeof(*b));
    b->s.expires_in = -1;
    if (res->status == 201) {
        json_object *o = rly_json(res);
        const char *v;
        if ((v = rly_jstr(o, "session")) != NULL)
            copy(b->s.session, sizeof(b->s.session), v, strlen(v));
        if ((v = rly_jstr(o, "poll_token")) != NULL)
            copy(b->s.poll_token, sizeof(b->s.poll_token), v, strlen(v));
        if ((v = rly_jstr(o, "poll_url")) != NULL)
            copy(b->s.poll_url, sizeof(b->s.poll_url), v, strlen(v));
        if ((v = rly_jstr(o, "redirect_uri")) != NULL)
            copy(b->s.redirect_uri, sizeof(b->s.redirect_uri), v, strlen(v));
        if ((v = rly_jstr(o, "start_url")) != NULL) {
            copy(b->start_url, sizeof(b->start_url), v, strlen(v));
            const char *t = strstr(v, "?t=");
            if (t != NULL)
                copy(b->token, sizeof(b->token), t + 3, strlen(t + 3));
        }
        rly_jint(o, "expires_in", &b->s.expires_in);
    }
    return res;
}

void rly_bound_create_ok(const rly_relay_t *r, int version, const char *extra, rly_bound_t *b)
{
    rly_response_t *res = rly_bound_create(r, version, extra, b);
    if (res->status != 201 || b->start_url[0] == '\0')
        fail_msg("POST /v1/sessions (1.1): expected 201 with start_url, got %ld (%s) %s", res->status, res->error, res->body);
}

char *rly_form_value(const char *html, const char *name)
{
    char *needle = rly_strf("name=\"%s\" value=\"", name);
    const char *p = strstr(html, needle);
    if (p == NULL)
        return NULL;
    p += strlen(needle);
    const char *end = strchr(p, '"');
    return end != NULL ? rly_keep(strndup(p, (size_t)(end - p))) : NULL;
}

/* the cookie a response sets, into b */
static void take_cookie(const rly_response_t *res, rly_bound_t *b)
{
    for (size_t i = 0; i != rly_header_count(res, "Set-Cookie"); ++i) {
        const char *v = rly_header_n(res, "Set-Cookie", i);
        if (strncmp(v, RLY_COOKIE_NAME "=", sizeof(RLY_COOKIE_NAME)) == 0)
            copy(b->cookie, sizeof(b->cookie), v + sizeof(RLY_COOKIE_NAME), strcspn(v + sizeof(RLY_COOKIE_NAME), ";"));
    }
}

rly_response_t *rly_bound_start_page(const rly_relay_t *r, int version, rly_bound_t *b)
{
    (void)r; /* start_url names the relay */
    const char *hdrs[] = {b->cookie[0] != '\0' ? rly_strf("Cookie: " RLY_COOKIE_NAME "=%s", b->cookie) : NULL, NULL};
    rly_request_t q = {.url = b->start_url, .headers = hdrs, .version = version};
    rly_response_t *res = rly_do(&q);
    take_cookie(res, b);
    char *csrf = res->status == 200 ? rly_form_value(res->body, "csrf") : NULL;
    if (csrf != NULL)
        copy(b->csrf, sizeof(b->csrf), csrf, strlen(csrf));
    return res;
}

rly_request_t rly_bound_confirm_request(const rly_relay_t *r, int version, const rly_bound_t *b, const char *action)
{
    const char **hdrs = rly_keep(calloc(4, sizeof(*hdrs)));
    hdrs[0] = "Content-Type: application/x-www-form-urlencoded";
    hdrs[1] = rly_strf("Origin: %s", rly_url(r, ""));
    hdrs[2] = b->cookie[0] != '\0' ? rly_strf("Cookie: " RLY_COOKIE_NAME "=%s", b->cookie) : NULL;
    char *body = rly_query("t", b->token, "csrf", b->csrf, "action", action, NULL);
    return (rly_request_t){.method = "POST",
                           .url = rly_url(r, "/v1/start"),
                           .headers = hdrs,
                           .body = body,
                           .body_len = strlen(body),
                           .version = version};
}

void rly_bound_confirm_race(const rly_relay_t *const *relays, size_t nrelays, const rly_bound_t *b, size_t n, int *ok, int *gone)
{
    rly_request_t *reqs = rly_keep(calloc(n, sizeof(*reqs)));
    rly_response_t *res = rly_responses(n);
    for (size_t i = 0; i != n; ++i)
        reqs[i] = rly_bound_confirm_request(relays[i % nrelays], i % 2 ? RLY_H2 : RLY_H1, b, "continue");
    assert_int_equal(rly_http_multi(reqs, n, res, 0, NULL, NULL), 0);
    *ok = *gone = 0;
    for (size_t i = 0; i != n; ++i) {
        *ok += res[i].status == 303;
        *gone += res[i].status == 410;
        rly_response_free(&res[i]);
    }
}

rly_response_t *rly_bound_confirm(const rly_relay_t *r, int version, rly_bound_t *b, const char *action)
{
    rly_request_t q = rly_bound_confirm_request(r, version, b, action);
    rly_response_t *res = rly_do(&q);
    const char *loc = res->status == 303 ? rly_header(res, "Location") : NULL;
    if (loc != NULL) {
        copy(b->location, sizeof(b->location), loc, strlen(loc));
        const char *st = strstr(loc, "&state=");
        if (st != NULL)
            copy(b->state, sizeof(b->state), st + 7, strcspn(st + 7, "&"));
    }
    return res;
}

void rly_bound_confirm_ok(const rly_relay_t *r, int version, rly_bound_t *b)
{
    rly_response_t *page = rly_bound_start_page(r, version, b);
    if (page->status != 200 || b->cookie[0] == '\0' || b->csrf[0] == '\0')
        fail_msg("GET start_url: expected 200 with a cookie and a CSRF token, got %ld %s", page->status, page->body);
    rly_response_t *res = rly_bound_confirm(r, version, b, "continue");
    if (res->status != 303 || b->state[0] == '\0')
        fail_msg("POST /v1/start: expected 303 to the AS with a state, got %ld %s", res->status, res->body);
}

rly_response_t *rly_bound_callback(const rly_relay_t *r, int version, rly_bound_t *b, const char *query, const char *cookie)
{
    const char *hdrs[] = {cookie != NULL ? rly_strf("Cookie: " RLY_COOKIE_NAME "=%s", cookie) : NULL, NULL};
    rly_request_t q = {.url = rly_strf("%s?%s", rly_url(r, "/qorus-oauth2-redirect"), query), .headers = hdrs, .version = version};
    rly_response_t *res = rly_do(&q);
    if (res->status == 200) {
        char *release = rly_form_value(res->body, "release");
        if (release != NULL)
            copy(b->release, sizeof(b->release), release, strlen(release));
        const char *action = strstr(res->body, "method=\"post\" action=\"");
        if (action != NULL)
            copy(b->deliver_to, sizeof(b->deliver_to), action + 22, strcspn(action + 22, "\""));
    }
    return res;
}

static void put_json(void *o)
{
    json_object_put(o);
}

json_object *rly_bound_open(const rly_bound_t *b, const rly_response_t *pickup)
{
    json_object *o = rly_json(pickup);
    const char *locked = o != NULL ? rly_jstr(o, "locked") : NULL;
    if (locked == NULL || strcmp(rly_jstr(o, "status"), "locked") != 0)
        return NULL;
    size_t len;
    char *pt = rly_unlock(b->release, strlen(b->release), b->s.session, locked, strlen(locked), &len);
    if (pt == NULL)
        return NULL;
    json_object *r = json_tokener_parse(pt);
    free(pt);
    return r != NULL ? rly_keep_with(r, put_json) : NULL;
}
