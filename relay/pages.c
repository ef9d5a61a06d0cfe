/* pages.c: the small HTML pages a browser may see; self-contained, no external loads, escaped text */
#include <stdio.h>
#include <string.h>
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
};

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
    int n = snprintf(html, 2048,
                     "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                     "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                     "<meta name=\"referrer\" content=\"no-referrer\"><title>%s</title>"
                     "<style>body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#172b4d;margin:0}"
                     "main{max-width:32rem;margin:12vh auto;padding:2rem;background:#fff;border-radius:8px;"
                     "box-shadow:0 1px 3px rgba(0,0,0,.2)}h1{font-size:1.4rem;margin-top:0}p{line-height:1.5}"
                     ".detail{color:#5e6c84;font-size:.9rem}</style></head>"
                     "<body><main><h1>%s</h1><p>%s</p>%s</main></body></html>\n",
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
