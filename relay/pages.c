/* pages.c: the small HTML pages a browser may see; self-contained, no external loads, escaped text */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <libpsl.h>
#include "buf.h"
#include "pages.h"
#include "respond.h"

static const struct {
    const char *title;
    const char *message;
} pages[] = {
    [RELAY_PAGE_DONE] = {"Authorization complete",
                         "The authorization was received and handed to your Qorus instance. You may close this window."},
    [RELAY_PAGE_DENIED] = {"Authorization not granted",
                           "The authorization server did not grant access. Your Qorus instance has been told. You may close "
                           "this window."},
    [RELAY_PAGE_BAD_REQUEST] = {"Invalid authorization response",
                                "This link is not a valid authorization response. Start the authorization again from your "
                                "Qorus instance."},
    [RELAY_PAGE_EXPIRED] = {"Authorization expired",
                            "This authorization request has expired or was cancelled. Start the authorization again from "
                            "your Qorus instance."},
    [RELAY_PAGE_USED] = {"Authorization already completed",
                         "This authorization was already completed. If you did not expect this, start the authorization "
                         "again from your Qorus instance."},
    [RELAY_PAGE_SLOW_DOWN] = {"Too many requests", "Too many requests came from your network. Please wait a minute and reload."},
    [RELAY_PAGE_RETRY] = {"Please try again in a moment",
                          "The service is briefly unavailable. Reload this page in a few seconds: your authorization is "
                          "still valid for a few minutes."},
    [RELAY_PAGE_TOO_LARGE] = {"Request too large", "This authorization response is larger than this service accepts."},
    [RELAY_PAGE_METHOD] = {"Method not allowed", "This address accepts only the browser's return from the authorization server."},
    [RELAY_PAGE_OTHER_BROWSER] = {"Sign-in started in another browser",
                                  "This sign-in was started in another browser: go back to Qorus in this browser and start "
                                  "again. Nothing was stored."},
    [RELAY_PAGE_START_REFUSED] = {"Confirmation not accepted",
                                  "This confirmation could not be verified in this browser. Open the sign-in link from your "
                                  "Qorus instance again."},
    [RELAY_PAGE_START_GONE] = {"Sign-in link no longer valid",
                               "This sign-in link has expired, or was already confirmed or cancelled. Start the "
                               "authorization again from your Qorus instance."},
    [RELAY_PAGE_CANCELLED] = {"Sign-in cancelled",
                              "You cancelled this sign-in; nothing was authorized. You may close this window."},
};

/* the style every page shares (the callback's pages are on the hot path: kept as small as they were) */
#define STYLE_BASE                                                                                                                 \
    "body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#172b4d;margin:0}"                                             \
    "main{max-width:32rem;margin:12vh auto;padding:2rem;background:#fff;border-radius:8px;"                                        \
    "box-shadow:0 1px 3px rgba(0,0,0,.2)}h1{font-size:1.4rem;margin-top:0}p{line-height:1.5}"                                      \
    ".detail{color:#5e6c84;font-size:.9rem}"
#define STYLE "<style>" STYLE_BASE "</style>"
/* and what the two 1.1 pages add: the destination, the forms, Continue inert for its first second */
#define STYLE_FORMS                                                                                                                \
    "<style>" STYLE_BASE "h2{font-size:1rem;margin:1.4rem 0 .3rem}.dest{font-size:1.15rem;word-break:break-all}"                   \
    "code{font-family:ui-monospace,monospace}.actions{display:flex;gap:1rem;margin-top:1.6rem}"                                    \
    "button{font-size:1rem;padding:.5rem 1.2rem;border-radius:4px;border:1px solid #8993a4;background:#fff;cursor:pointer}"        \
    "button.go{background:#0052cc;color:#fff;border-color:#0052cc}"                                                                \
    ".arm{animation:arm 1s}@keyframes arm{from,to{visibility:hidden}}"                                                             \
    ".unverified{color:#5e6c84;font-style:italic}</style>"

#define HEAD                                                                                                                       \
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"                                                            \
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"                                                     \
    "<meta name=\"referrer\" content=\"no-referrer\">"

/* the confirmation page's CSP: the default without form-action (browsers check every redirect hop after a POST, and the
 * chain through the AS cannot be known in advance) */
#define CSP_CONFIRM "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"

const char relay_delivery_script[] = "document.getElementById(\"deliver\").submit();";
const char relay_delivery_csp[] =
    "default-src 'none'; script-src 'sha256-scajpAdXLJYCqWvD5O90Ug1Moac9L6gAJo/KKvu5C4g='; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'";

size_t relay_html_escape(char *dst, size_t cap, const char *src, size_t len)
{
    size_t o = 0;
    if (cap == 0)
        return 0;
    for (size_t i = 0; i != len; ++i) {
        const char *rep = NULL;
        char one[2] = {src[i], '\0'};
        switch (src[i]) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            rep = one;
            break;
        }
        size_t n = strlen(rep);
        if (n == 0) /* a NUL byte */
            continue;
        if (o + n >= cap) {
            /* cutting inside a UTF-8 sequence: drop its lead and continuation bytes already copied (entities are ASCII) */
            if (((unsigned char)src[i] & 0xc0) == 0x80) {
                while (o > 0 && ((unsigned char)dst[o - 1] & 0xc0) == 0x80)
                    --o;
                if (o > 0 && ((unsigned char)dst[o - 1] & 0xc0) == 0xc0)
                    --o;
            }
            break;
        }
        memcpy(dst + o, rep, n);
        o += n;
    }
    dst[o] = '\0';
    return o;
}

void relay_respond_page(h2o_req_t *req, int status, relay_page_t page, const char *detail, size_t detail_len, int retry_after)
{
    char escaped[3 * 64 + 1] = "", detail_html[256] = "";
    if (detail != NULL && detail_len != 0) {
        /* at most 64 bytes of request text, escaped: enough for an RFC 6749 error code */
        relay_html_escape(escaped, sizeof(escaped), detail, detail_len < 64 ? detail_len : 64);
        snprintf(detail_html, sizeof(detail_html), "<p class=\"detail\">Reported: <code>%s</code></p>", escaped);
    }
    char *html = h2o_mem_alloc_pool(&req->pool, 2048);
    int n = snprintf(html, 2048, HEAD "<title>%s</title>" STYLE "</head><body><main><h1>%s</h1><p>%s</p>%s</main></body></html>\n",
                     pages[page].title, pages[page].title, pages[page].message, detail_html);
    if (n < 0 || n >= 2048)
        n = (int)strlen(html);
    if (retry_after > 0) {
        char ra[16];
        int m = snprintf(ra, sizeof(ra), "%d", retry_after);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, h2o_strdup(&req->pool, ra, m).base, m);
    }
    relay_respond_html(req, status, NULL, html, (size_t)n);
}

/* appends text escaped for HTML (element content and double-quoted attributes) */
static void add_escaped(rly_buf_t *b, const char *s, size_t len)
{
    for (size_t i = 0; i != len; ++i) {
        switch (s[i]) {
        case '&':
            rly_buf_adds(b, "&amp;");
            break;
        case '<':
            rly_buf_adds(b, "&lt;");
            break;
        case '>':
            rly_buf_adds(b, "&gt;");
            break;
        case '"':
            rly_buf_adds(b, "&quot;");
            break;
        case '\'':
            rly_buf_adds(b, "&#39;");
            break;
        case '\0':
            break;
        default:
            rly_buf_addc(b, s[i]);
            break;
        }
    }
}

static const psl_ctx_t *psl;
static pthread_once_t psl_once = PTHREAD_ONCE_INIT;

static void psl_init(void)
{
    /* the newest list on the system (Debian's publicsuffix package), else the one built into libpsl */
    if ((psl = psl_latest(NULL)) == NULL)
        psl = psl_builtin();
}

int relay_url_display_split(const char *url, size_t len, const char **host, size_t *host_len, size_t *reg_off, const char **port,
                            size_t *port_len, int *port_default, const char **path, size_t *path_len)
{
    size_t off, end, hend;
    int https;
    if (len > 8 && memcmp(url, "https://", 8) == 0) {
        off = 8;
        https = 1;
    } else if (len > 7 && memcmp(url, "http://", 7) == 0) {
        off = 7;
        https = 0;
    } else {
        return -1;
    }
    for (end = off; end != len && url[end] != '/'; ++end)
        ;
    if (url[off] == '[') {
        const char *close = memchr(url + off, ']', end - off);
        if (close == NULL)
            return -1;
        hend = (size_t)(close - url) + 1;
    } else {
        for (hend = off; hend != end && url[hend] != ':'; ++hend)
            ;
    }
    if (hend == off || hend - off > 255)
        return -1;
    *host = url + off;
    *host_len = hend - off;
    *port = hend != end ? url + hend + 1 : NULL;
    *port_len = hend != end ? end - hend - 1 : 0;
    *port_default = *port_len == 0 || (https && *port_len == 3 && memcmp(*port, "443", 3) == 0) ||
                    (!https && *port_len == 2 && memcmp(*port, "80", 2) == 0);
    *path = url + end;
    *path_len = len - end;

    /* the registrable domain: lower-cased lookup, the same length in the host as received */
    char lc[256];
    *reg_off = 0;
    for (size_t i = 0; i != *host_len; ++i)
        lc[i] = (char)tolower((unsigned char)(*host)[i]);
    lc[*host_len] = '\0';
    if (lc[0] == '[' || strspn(lc, "0123456789.") == *host_len)
        return 0; /* an IP address: all of it */
    pthread_once(&psl_once, psl_init);
    const char *reg = psl != NULL ? psl_registrable_domain(psl, lc) : NULL;
    if (reg != NULL)
        *reg_off = (size_t)(reg - lc);
    return 0;
}

/* the return_uri as the user is asked to confirm it: scheme, host with its registrable domain and any non-default port in
 * bold, then the path */
static void add_destination(rly_buf_t *b, const char *url, size_t len)
{
    const char *host, *port, *path;
    size_t host_len, reg_off, port_len, path_len;
    int port_default;
    if (relay_url_display_split(url, len, &host, &host_len, &reg_off, &port, &port_len, &port_default, &path, &path_len) != 0) {
        rly_buf_adds(b, "<code>");
        add_escaped(b, url, len);
        rly_buf_adds(b, "</code>");
        return;
    }
    rly_buf_adds(b, "<code>");
    add_escaped(b, url, (size_t)(host - url));
    add_escaped(b, host, reg_off);
    rly_buf_adds(b, "<b>");
    add_escaped(b, host + reg_off, host_len - reg_off);
    rly_buf_adds(b, "</b>");
    if (port != NULL) {
        rly_buf_adds(b, port_default ? ":" : "<b>:");
        add_escaped(b, port, port_len);
        if (!port_default)
            rly_buf_adds(b, "</b>");
    }
    rly_buf_adds(b, "</code>");
    if (path_len != 0) {
        rly_buf_adds(b, "<code class=\"path\">");
        add_escaped(b, path, path_len);
        rly_buf_adds(b, "</code>");
    }
}

/* sends the page built in b (or a 500 when it could not be built) and frees b */
static void send_built(h2o_req_t *req, int status, rly_buf_t *b, const char *csp)
{
    if (b->err != RLY_BUF_OK) {
        rly_buf_free(b);
        relay_respond_page(req, 500, RELAY_PAGE_RETRY, NULL, 0, 0);
        return;
    }
    h2o_iovec_t body = h2o_strdup(&req->pool, b->base, b->len);
    rly_buf_free(b);
    relay_respond_html_csp(req, status, body.base, body.len, csp);
}

void relay_respond_confirm(h2o_req_t *req, const relay_confirm_view_t *v)
{
    rly_buf_t b;
    rly_buf_init(&b, 64 * 1024);
    rly_buf_adds(&b, HEAD "<title>Confirm this sign-in</title>" STYLE_FORMS "</head><body><main>"
                          "<h1>Confirm where this sign-in goes</h1>"
                          "<p>If you continue and sign in, the authorization is handed to:</p><p class=\"dest\">");
    add_destination(&b, v->return_uri, v->return_uri_len);
    rly_buf_adds(&b, "</p><p>Continue only if this is the address of your own Qorus instance, and you started this sign-in "
                     "there yourself just now.</p><h2>Authorization server</h2><p><code>");
    add_escaped(&b, v->as_host, strlen(v->as_host));
    rly_buf_adds(&b, "</code></p>");
    if (v->scope != NULL) {
        rly_buf_adds(&b, "<p>Scope: <code>");
        add_escaped(&b, v->scope, v->scope_len);
        rly_buf_adds(&b, "</code></p>");
    }
    if (v->audience != NULL) {
        rly_buf_adds(&b, "<p>Audience: <code>");
        add_escaped(&b, v->audience, v->audience_len);
        rly_buf_adds(&b, "</code></p>");
    }
    if (v->label != NULL) {
        rly_buf_adds(&b, "<h2>Instance</h2><p>&ldquo;");
        add_escaped(&b, v->label, v->label_len);
        rly_buf_adds(&b, "&rdquo; <span class=\"unverified\">(supplied by the instance, not verified)</span></p>");
    }
    /* Cancel first and focused, so Enter cancels; Continue is hidden (not clickable) for its first second */
    static const char *const actions[] = {"cancel", "continue"};
    rly_buf_adds(&b, "<div class=\"actions\">");
    for (size_t i = 0; i != 2; ++i) {
        rly_buf_adds(&b, "<form method=\"post\" action=\"/v1/start\"><input type=\"hidden\" name=\"t\" value=\"");
        add_escaped(&b, v->start_token, strlen(v->start_token));
        rly_buf_adds(&b, "\"><input type=\"hidden\" name=\"csrf\" value=\"");
        add_escaped(&b, v->csrf, strlen(v->csrf));
        rly_buf_addf(&b, "\"><input type=\"hidden\" name=\"action\" value=\"%s\">", actions[i]);
        rly_buf_adds(&b, i == 0 ? "<button type=\"submit\" id=\"cancel\" autofocus>Cancel</button></form>"
                                : "<button type=\"submit\" id=\"continue\" class=\"go arm\">Continue</button></form>");
    }
    rly_buf_adds(&b, "</div></main></body></html>\n");
    send_built(req, 200, &b, CSP_CONFIRM);
}

void relay_respond_delivery(h2o_req_t *req, const relay_delivery_t *d)
{
    static const char *const names[] = {"session", "status", "message", "release"};
    const char *values[] = {d->session, d->status, d->message, d->release};
    rly_buf_t b;
    rly_buf_init(&b, 16 * 1024);
    rly_buf_adds(&b, HEAD "<title>Returning to Qorus</title>" STYLE_FORMS "</head><body><main>"
                          "<h1>Returning to your Qorus instance</h1><form id=\"deliver\" method=\"post\" action=\"");
    add_escaped(&b, d->return_uri, d->return_uri_len);
    rly_buf_adds(&b, "\">");
    for (size_t i = 0; i != 4; ++i) {
        rly_buf_addf(&b, "<input type=\"hidden\" name=\"%s\" value=\"", names[i]);
        add_escaped(&b, values[i], strlen(values[i]));
        rly_buf_adds(&b, "\">");
    }
    rly_buf_adds(&b, "<p>If nothing happens, continue by hand:</p><p><button type=\"submit\" class=\"go\">Continue to "
                     "Qorus</button></p></form><details><summary>The instance asks you to paste these</summary>"
                     "<p>Session: <code id=\"session\">");
    add_escaped(&b, d->session, strlen(d->session));
    rly_buf_adds(&b, "</code></p><p>Release key: <code id=\"release\">");
    add_escaped(&b, d->release, strlen(d->release));
    rly_buf_adds(&b, "</code></p></details></main><script>");
    rly_buf_adds(&b, relay_delivery_script);
    rly_buf_adds(&b, "</script></body></html>\n");
    send_built(req, 200, &b, relay_delivery_csp);
}
