/* client.c: the instance side of the protocol over libcurl: discovery, session, return listener, pickup, unlock, token exchange */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "b64url.h"
#include "buf.h"
#include "client.h"
#include "ids.h"
#include "listen.h"
#include "lock.h"
#include "query.h"
#include "seal.h"
#include "text.h"
#include "url.h"

#define USER_AGENT "authrelay-client/" RLY_VERSION
#define BUSY_TRIES 3           /* discovery and session creation: attempts while the relay answers 429 / 503 */
#define BUSY_WAIT_MAX_MS 30000 /* ... waiting at most this long between them */
#define MIN_POLL_INTERVAL_MS 1000
#define WAIT_MAX_LIMIT 300 /* protocol.md: wait_max is 0..300 */

/* ---- small buffers ---- */

#define BUILD_MAX RLY_CLIENT_BODY_MAX /* the most bytes of a URL or a form body this client builds */

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == '~';
}

int rly_client_pct_encode(char *dst, size_t cap, size_t *len, const char *src, size_t srclen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t j = *len;

    for (size_t i = 0; i != srclen; i++) {
        unsigned char c = (unsigned char)src[i];
        if (is_unreserved(c)) {
            if (j + 1 >= cap)
                return -1;
            dst[j++] = (char)c;
        } else {
            if (j + 3 >= cap)
                return -1;
            dst[j++] = '%';
            dst[j++] = hex[c >> 4];
            dst[j++] = hex[c & 15];
        }
    }
    dst[j] = '\0';
    *len = j;
    return 0;
}

/* appends src percent-encoded: room for the worst case, then encoded in place */
static void add_enc(rly_buf_t *b, const char *src, size_t n)
{
    size_t room, len = 0;
    char *tail;

    if (n > (BUILD_MAX - 1) / 3 || rly_buf_reserve(b, 3 * n) != 0) {
        rly_buf_commit(b, -1);
        return;
    }
    tail = rly_buf_tail(b, &room);
    rly_buf_commit(b, rly_client_pct_encode(tail, room + 1, &len, src, n) == 0 ? (ssize_t)len : -1);
}

/* appends "[&]key=<value percent-encoded>" */
static void add_param(rly_buf_t *b, int *first, const char *key, const char *value, size_t vlen)
{
    if (!*first)
        rly_buf_addc(b, '&');
    *first = 0;
    rly_buf_adds(b, key);
    rly_buf_addc(b, '=');
    add_enc(b, value, vlen);
}

/* ---- pure helpers ---- */

char *rly_client_authorize_url(const rly_client_opts_t *o, const char *redirect_uri, const char *state, const char *challenge)
{
    rly_buf_t b;
    int first = 1;
    const char *q = strchr(o->authorize_url, '?');
    size_t alen = strlen(o->authorize_url);

    rly_buf_init(&b, BUILD_MAX);
    rly_buf_add(&b, o->authorize_url, alen);
    if (q == NULL)
        rly_buf_addc(&b, '?');
    else if (alen != 0 && o->authorize_url[alen - 1] != '?' && o->authorize_url[alen - 1] != '&')
        rly_buf_addc(&b, '&');
    if (o->audience != NULL)
        add_param(&b, &first, "audience", o->audience, strlen(o->audience));
    add_param(&b, &first, "client_id", o->client_id, strlen(o->client_id));
    if (o->nscopes != 0) {
        rly_buf_t s;
        rly_buf_init(&s, BUILD_MAX);
        for (size_t i = 0; i != o->nscopes; i++) {
            if (i != 0)
                rly_buf_addc(&s, ' ');
            rly_buf_adds(&s, o->scopes[i]);
        }
        if (s.err != RLY_BUF_OK)
            rly_buf_commit(&b, -1);
        else
            add_param(&b, &first, "scope", s.base, s.len);
        rly_buf_free_wipe(&s);
    }
    add_param(&b, &first, "redirect_uri", redirect_uri, strlen(redirect_uri));
    add_param(&b, &first, "state", state, strlen(state));
    add_param(&b, &first, "response_type", "code", 4);
    if (o->prompt != NULL)
        add_param(&b, &first, "prompt", o->prompt, strlen(o->prompt));
    for (size_t i = 0; i != o->nparams; i++) {
        const char *eq = strchr(o->params[i], '=');
        if (eq == NULL)
            goto Error;
        rly_buf_addc(&b, '&');
        add_enc(&b, o->params[i], (size_t)(eq - o->params[i]));
        rly_buf_addc(&b, '=');
        add_enc(&b, eq + 1, strlen(eq + 1));
    }
    if (challenge != NULL) {
        add_param(&b, &first, "code_challenge", challenge, strlen(challenge));
        add_param(&b, &first, "code_challenge_method", "S256", 4);
    }
    if (b.err != RLY_BUF_OK)
        goto Error;
    return rly_buf_take(&b, NULL);
Error:
    rly_buf_free_wipe(&b);
    return NULL;
}

int rly_pkce_verifier(char out[RLY_PKCE_VERIFIER_LEN + 1])
{
    uint8_t raw[32];

    if (rly_random(raw, sizeof(raw)) != 0)
        return -1;
    rly_b64url_encode(out, raw, sizeof(raw));
    OPENSSL_cleanse(raw, sizeof(raw));
    return 0;
}

void rly_pkce_challenge(const char *verifier, size_t len, char out[RLY_PKCE_CHALLENGE_LEN + 1])
{
    uint8_t md[SHA256_DIGEST_LENGTH];

    SHA256((const unsigned char *)verifier, len, md);
    rly_b64url_encode(out, md, sizeof(md));
}

long rly_client_retry_after(const char *value, time_t now)
{
    char tmp[128];
    size_t len;

    if (value == NULL)
        return -1;
    while (*value == ' ' || *value == '\t')
        value++;
    len = strlen(value);
    while (len != 0 && (value[len - 1] == ' ' || value[len - 1] == '\t' || value[len - 1] == '\r' || value[len - 1] == '\n'))
        len--;
    if (len == 0 || len >= sizeof(tmp))
        return -1;
    memcpy(tmp, value, len);
    tmp[len] = '\0';
    if (tmp[0] >= '0' && tmp[0] <= '9') {
        long v = 0;
        for (size_t i = 0; i != len; i++) {
            if (tmp[i] < '0' || tmp[i] > '9')
                return -1;
            if (v < RLY_CLIENT_RETRY_AFTER_MAX)
                v = v * 10 + (tmp[i] - '0');
        }
        return v > RLY_CLIENT_RETRY_AFTER_MAX ? RLY_CLIENT_RETRY_AFTER_MAX : v;
    }
    time_t t = curl_getdate(tmp, NULL);
    if (t == (time_t)-1)
        return -1;
    if (t <= now)
        return 0;
    return t - now > RLY_CLIENT_RETRY_AFTER_MAX ? RLY_CLIENT_RETRY_AFTER_MAX : (long)(t - now);
}

long rly_client_backoff_ms(unsigned attempt, uint32_t rnd)
{
    long d = RLY_CLIENT_BACKOFF_BASE_MS;

    for (unsigned i = 0; i != attempt && d < RLY_CLIENT_BACKOFF_CAP_MS; i++)
        d *= 2;
    if (d > RLY_CLIENT_BACKOFF_CAP_MS)
        d = RLY_CLIENT_BACKOFF_CAP_MS;
    return d / 2 + (long)(rnd % (uint32_t)(d / 2 + 1));
}

/* the authorize_params object of a 1.1 session (see rly_client_authorize_params); NULL when out of memory or for a param
 * without '=' (caller puts the object) */
static json_object *authorize_params_object(const rly_client_opts_t *o, const char *challenge)
{
    json_object *p = json_object_new_object();
    rly_buf_t s;
    char *key = NULL;

    rly_buf_init(&s, BUILD_MAX);
    if (p == NULL)
        goto Error;
    if (o->audience != NULL && json_object_object_add(p, "audience", json_object_new_string(o->audience)) != 0)
        goto Error;
    if (json_object_object_add(p, "client_id", json_object_new_string(o->client_id)) != 0)
        goto Error;
    if (o->nscopes != 0) {
        for (size_t i = 0; i != o->nscopes; i++) {
            if (i != 0)
                rly_buf_addc(&s, ' ');
            rly_buf_adds(&s, o->scopes[i]);
        }
        if (s.err != RLY_BUF_OK || json_object_object_add(p, "scope", json_object_new_string_len(s.base, (int)s.len)) != 0)
            goto Error;
    }
    if (o->prompt != NULL && json_object_object_add(p, "prompt", json_object_new_string(o->prompt)) != 0)
        goto Error;
    for (size_t i = 0; i != o->nparams; i++) {
        const char *eq = strchr(o->params[i], '=');
        if (eq == NULL || (key = strndup(o->params[i], (size_t)(eq - o->params[i]))) == NULL)
            goto Error;
        if (json_object_object_add(p, key, json_object_new_string(eq + 1)) != 0)
            goto Error;
        free(key);
        key = NULL;
    }
    if (challenge != NULL) {
        if (json_object_object_add(p, "code_challenge", json_object_new_string(challenge)) != 0 ||
            json_object_object_add(p, "code_challenge_method", json_object_new_string("S256")) != 0)
            goto Error;
    }
    rly_buf_free(&s);
    return p;
Error:
    free(key);
    rly_buf_free(&s);
    json_object_put(p);
    return NULL;
}

char *rly_client_authorize_params(const rly_client_opts_t *o, const char *challenge)
{
    json_object *p = authorize_params_object(o, challenge);
    const char *text;
    char *ret = NULL;

    if (p != NULL && (text = json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)) != NULL)
        ret = strdup(text);
    json_object_put(p);
    return ret;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int rly_client_paste_tokens(const char *line, size_t len, rly_str_t tok[2])
{
    int n = 0;
    size_t i = 0, start;

    for (;;) {
        while (i != len && is_blank(line[i]))
            i++;
        if (i == len)
            return n;
        if (n == 2)
            return -1;
        start = i;
        while (i != len && !is_blank(line[i]))
            i++;
        tok[n].base = line + start;
        tok[n].len = i - start;
        n++;
    }
}

/* ---- the return listener's HTTP (no I/O) ---- */

static int is_tchar(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int str_is(rly_str_t s, const char *lit)
{
    return s.base != NULL && s.len == strlen(lit) && memcmp(s.base, lit, s.len) == 0;
}

static int str_is_ci(rly_str_t s, const char *lit)
{
    return s.base != NULL && s.len == strlen(lit) && strncasecmp(s.base, lit, s.len) == 0;
}

/* the request line "METHOD SP origin-form SP HTTP/1.x" of p[0..n) into req; 0 / -1 */
static int parse_request_line(const char *p, size_t n, rly_client_http_req_t *req)
{
    size_t i = 0, start;

    while (i != n && is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i == n || p[i] != ' ')
        return -1;
    req->method.base = p;
    req->method.len = i;
    start = ++i;
    if (i == n || p[i] != '/')
        return -1;
    while (i != n && (unsigned char)p[i] > 0x20 && (unsigned char)p[i] < 0x7f)
        i++;
    if (i == n || p[i] != ' ')
        return -1;
    req->path.base = p + start;
    req->path.len = i - start;
    for (size_t j = start; j != i; j++) {
        if (p[j] == '?') {
            req->path.len = j - start;
            req->query.base = p + j + 1;
            req->query.len = i - j - 1;
            break;
        }
    }
    i++;
    if (n - i != 8 || (memcmp(p + i, "HTTP/1.1", 8) != 0 && memcmp(p + i, "HTTP/1.0", 8) != 0))
        return -1;
    return 0;
}

/* one header field line p[0..n) into req; 0 / -1 */
static int parse_field(const char *p, size_t n, rly_client_http_req_t *req)
{
    size_t i = 0, vs, ve;
    rly_str_t name, value;
    unsigned long long cl;

    while (i != n && is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i == n || p[i] != ':') /* also a line that starts with a blank: obs-fold */
        return -1;
    name.base = p;
    name.len = i;
    vs = i + 1;
    while (vs != n && (p[vs] == ' ' || p[vs] == '\t'))
        vs++;
    ve = n;
    while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t'))
        ve--;
    for (size_t j = vs; j != ve; j++)
        if (((unsigned char)p[j] < 0x20 && p[j] != '\t') || p[j] == 0x7f)
            return -1;
    value.base = p + vs;
    value.len = ve - vs;
    if (str_is_ci(name, "host")) {
        if (req->host.base != NULL)
            return -1;
        req->host = value;
    } else if (str_is_ci(name, "content-length")) {
        if (req->content_length >= 0 || rly_parse_uint(value.base, value.len, 1ULL << 40, &cl) != 0)
            return -1;
        req->content_length = (long long)cl;
    } else if (str_is_ci(name, "content-type")) {
        if (req->content_type.base == NULL)
            req->content_type = value;
    } else if (str_is_ci(name, "transfer-encoding")) {
        req->chunked = 1;
    } else if (str_is_ci(name, "expect")) {
        req->expect_continue = str_is_ci(value, "100-continue");
    }
    return 0;
}

ssize_t rly_client_http_head_parse(const char *buf, size_t len, rly_client_http_req_t *req)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4), *p = buf, *eol;
    int first = 1;

    memset(req, 0, sizeof(*req));
    req->content_length = -1;
    if (end == NULL)
        return -2;
    end += 2; /* the lines, each with its CRLF; the empty line after them */
    while (p != end) {
        eol = memchr(p, '\r', (size_t)(end - p));
        if (eol == NULL || eol[1] != '\n' || memchr(p, '\n', (size_t)(eol - p)) != NULL)
            return -1; /* a bare CR or LF */
        if (first ? parse_request_line(p, (size_t)(eol - p), req) != 0 : parse_field(p, (size_t)(eol - p), req) != 0) {
            memset(req, 0, sizeof(*req));
            req->content_length = -1;
            return -1;
        }
        first = 0;
        p = eol + 2;
    }
    return end + 2 - buf;
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 303:
        return "See Other";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    default:
        return "Bad Request";
    }
}

/* a whole response with a small page of fixed texts (never anything from the request); extra: header lines, each with its
 * CRLF, or "" */
static void respond(rly_buf_t *out, int status, const char *extra, const char *title, const char *text)
{
    char page[1536];
    int n = snprintf(page, sizeof(page),
                     "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
                     "content=\"width=device-width, initial-scale=1\"><title>%s</title><style>body{font-family:system-ui,"
                     "sans-serif;max-width:36em;margin:3em auto;padding:0 1em;line-height:1.5}</style></head><body><main>"
                     "<h1>%s</h1><p>%s</p></main></body></html>\n",
                     title, title, text);

    if (n < 0 || (size_t)n >= sizeof(page))
        n = 0;
    rly_buf_addf(out,
                 "HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n"
                 "Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nX-Content-Type-Options: nosniff\r\n"
                 "X-Frame-Options: DENY\r\nContent-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; "
                 "frame-ancestors 'none'; base-uri 'none'; form-action 'none'\r\n%s\r\n",
                 status, reason(status), n, extra);
    rly_buf_add(out, page, (size_t)n);
}

void rly_client_return_error(int status, rly_buf_t *out)
{
    switch (status) {
    case 408:
        respond(out, 408, "", "Request timeout", "The request did not arrive in time.");
        break;
    case 413:
        respond(out, 413, "", "Request too large", "The request body is larger than this client accepts.");
        break;
    case 431:
        respond(out, 431, "", "Request too large", "The request headers are larger than this client accepts.");
        break;
    case 500:
        respond(out, 500, "", "Internal error", "The authrelay client could not answer this request.");
        break;
    default:
        respond(out, 400, "", "Bad request", "The authrelay client could not read this request.");
        break;
    }
}

/* 1 if the Content-Type is application/x-www-form-urlencoded (any case, parameters after ';' allowed) */
static int is_form(rly_str_t ct)
{
    static const char form[] = "application/x-www-form-urlencoded";
    size_t n = sizeof(form) - 1;

    if (ct.base == NULL || ct.len < n || strncasecmp(ct.base, form, n) != 0)
        return 0;
    return ct.len == n || ct.base[n] == ';' || ct.base[n] == ' ' || ct.base[n] == '\t';
}

int rly_client_return_serve(rly_client_return_t *rs, const rly_client_http_req_t *req, const char *body, size_t bodylen,
                            rly_buf_t *out)
{
    char form[RLY_CLIENT_RETURN_BODY_MAX];
    rly_qparam_t params[RLY_QUERY_PARAMS_MAX];
    const rly_qparam_t *session, *release, *status;
    size_t nsession = 0, nrelease = 0, nstatus = 0, nmessage = 0;
    uint8_t key[32];
    int n, ret = 0;

    if (!str_is(req->host, rs->host)) {
        respond(out, 400, "", "Wrong address", "This page is served only at the address of the authrelay client's listener.");
        return 0;
    }
    if (str_is(req->path, RLY_CLIENT_DONE_PATH)) {
        if (!str_is(req->method, "GET")) {
            respond(out, 405, "Allow: GET\r\n", "Method not allowed", "This page answers only GET.");
            return 0;
        }
        rs->done_served = 1;
        if (rs->release[0] == '\0')
            respond(out, 200, "", "Waiting for the sign-in", "The authrelay client has not received this sign-in yet.");
        else if (rs->success)
            respond(out, 200, "", "Sign-in complete",
                    "You may close this window. The authrelay client in your terminal has the result.");
        else
            respond(out, 200, "", "Sign-in not granted",
                    "You may close this window. The authrelay client in your terminal shows what the authorization "
                    "server answered.");
        return 0;
    }
    if (!str_is(req->path, RLY_CLIENT_RETURN_PATH)) {
        respond(out, 404, "", "Not found", "The authrelay client has no such page.");
        return 0;
    }
    if (!str_is(req->method, "POST")) {
        respond(out, 405, "Allow: POST\r\n", "Method not allowed", "The relay's page returns here with a POST.");
        return 0;
    }
    if (req->chunked || req->content_length < 0) {
        respond(out, 411, "", "Length required", "The return needs a Content-Length.");
        return 0;
    }
    if (bodylen > sizeof(form)) {
        rly_client_return_error(413, out);
        return 0;
    }
    if (!is_form(req->content_type)) {
        respond(out, 415, "", "Unsupported media type", "The return is a form, application/x-www-form-urlencoded.");
        return 0;
    }
    if ((n = rly_query_parse(body, bodylen, form, sizeof(form), params, RLY_QUERY_PARAMS_MAX)) < 0)
        goto Error;
    session = rly_query_find(params, (size_t)n, "session", &nsession);
    release = rly_query_find(params, (size_t)n, "release", &nrelease);
    status = rly_query_find(params, (size_t)n, "status", &nstatus);
    (void)rly_query_find(params, (size_t)n, "message", &nmessage);
    if (nsession != 1 || nrelease != 1 || nstatus > 1 || nmessage > 1)
        goto Error;
    if (session->value.len != RLY_SESSION_ID_LEN || CRYPTO_memcmp(session->value.base, rs->session, RLY_SESSION_ID_LEN) != 0) {
        rs->foreign++;
        respond(out, 400, "", "Not this sign-in",
                "This sign-in is not the one the authrelay client is waiting for; nothing was taken. Start the sign-in "
                "again from the client.");
        goto Exit;
    }
    if (release->value.len != RLY_RELEASE_KEY_LEN ||
        rly_b64url_decode(key, sizeof(key), release->value.base, release->value.len) != 32)
        goto Error;
    if (rs->release[0] != '\0') {
        if (CRYPTO_memcmp(rs->release, release->value.base, RLY_RELEASE_KEY_LEN) == 0)
            respond(out, 303, "Location: " RLY_CLIENT_DONE_PATH "\r\n", "Sign-in received", "The authrelay client has it.");
        else
            respond(out, 400, "", "Already received", "The authrelay client has received the key of this sign-in already.");
        goto Exit;
    }
    memcpy(rs->release, release->value.base, RLY_RELEASE_KEY_LEN);
    rs->release[RLY_RELEASE_KEY_LEN] = '\0';
    rs->success = status != NULL && status->value.len == 7 && memcmp(status->value.base, "success", 7) == 0;
    respond(out, 303, "Location: " RLY_CLIENT_DONE_PATH "\r\n", "Sign-in received", "The authrelay client has it.");
    ret = 1;
    goto Exit;
Error:
    respond(out, 400, "", "Not a sign-in return", "This is not the form of the relay's last page.");
Exit:
    OPENSSL_cleanse(form, sizeof(form));
    OPENSSL_cleanse(key, sizeof(key));
    return ret;
}

/* ---- option parsing ---- */

/* writes the message into err and returns -1 */
static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* a decimal integer in [min, max], the whole string; 0 / -1 */
static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/*
 * An https URL, or http to a loopback host, that rly_url_check_as accepts (a host, no userinfo, no fragment, canonical,
 * at most 2048 bytes). Writes the lower-cased host. 0 / -1 with *errstr.
 */
static int check_url(const char *url, char *host, size_t hostcap, const char **errstr)
{
    char tmp[RLY_CLIENT_URL_MAX + 2];
    size_t len = strlen(url);

    if (len > RLY_CLIENT_URL_MAX) {
        *errstr = "the URL is too long";
        return -1;
    }
    if (strncasecmp(url, "http://", 7) == 0) {
        /* checked as the https URL it would be, then the host must be loopback */
        memcpy(tmp, "https://", 8);
        memcpy(tmp + 8, url + 7, len - 7 + 1);
        if (rly_url_check_as(tmp, len + 1, 0, host, hostcap, errstr) != 0)
            return -1;
        if (!rly_host_is_loopback(host, strlen(host))) {
            *errstr = "http:// is accepted only for a loopback host; use https://";
            return -1;
        }
        return 0;
    }
    if (rly_url_check_as(url, len, 0, host, hostcap, errstr) != 0) {
        if (strcmp(*errstr, "the authorization server URL is not https") == 0)
            *errstr = "not an https:// (or loopback http://) URL";
        return -1;
    }
    return 0;
}

/* a name the client sets itself, or one of its own options does (in any letter case: the relay refuses redirect_uri,
 * state and response_type so, and an AS may read names case-insensitively) */
static int is_reserved_param(const char *k, size_t n)
{
    static const char *const reserved[] = {"audience",      "client_id", "scope",          "redirect_uri",          "state",
                                           "response_type", "prompt",    "code_challenge", "code_challenge_method", NULL};
    for (size_t i = 0; reserved[i] != NULL; i++)
        if (strlen(reserved[i]) == n && strncasecmp(reserved[i], k, n) == 0)
            return 1;
    return 0;
}

/* a label (protocol.md): 1 to RLY_LABEL_MAX bytes of UTF-8 without characters of the categories Cc, Cf, Zl (U+2028) and
 * Zp (U+2029); 0 / -1 with err */
static int check_label(const char *label, char *err, size_t errlen)
{
    size_t len = strlen(label), i = 0;

    if (len > RLY_LABEL_MAX)
        return fail(err, errlen, "--label: at most %d bytes", RLY_LABEL_MAX);
    while (i != len) {
        int64_t cp = rly_utf8_next(label, len, &i);
        if (cp < 0)
            return fail(err, errlen, "--label: not UTF-8");
        if (rly_unicode_is_control((uint32_t)cp) || rly_unicode_is_format((uint32_t)cp) || cp == 0x2028 || cp == 0x2029)
            return fail(err, errlen, "--label: no control, format or line or paragraph separator characters");
    }
    return 0;
}

/* the 1.1 rules of authorize_params (protocol.md) for what the options put there; 0 / -1 with err */
static int check_bound_params(const rly_client_opts_t *o, char *err, size_t errlen)
{
    static const char *const what[] = {"--client-id", "--audience", "--prompt"};
    const char *const vals[] = {o->client_id, o->audience, o->prompt};
    size_t count = 1, bytes = strlen("client_id") + strlen(o->client_id);

    for (size_t i = 0; i != 3; i++)
        if (vals[i] != NULL && !rly_text_is_printable_ascii(vals[i], strlen(vals[i])))
            return fail(err, errlen, "%s: only printable ASCII is accepted in an authorize parameter (protocol 1.1)", what[i]);
    for (size_t i = 0; i != o->nscopes; i++) {
        if (!rly_text_is_printable_ascii(o->scopes[i], strlen(o->scopes[i])))
            return fail(err, errlen, "--scope: only printable ASCII is accepted in an authorize parameter (protocol 1.1)");
        bytes += strlen(o->scopes[i]) + (i != 0);
    }
    if (o->nscopes != 0) {
        count++;
        bytes += strlen("scope");
    }
    if (o->audience != NULL) {
        count++;
        bytes += strlen("audience") + strlen(o->audience);
    }
    if (o->prompt != NULL) {
        count++;
        bytes += strlen("prompt") + strlen(o->prompt);
    }
    if (o->pkce) {
        count += 2;
        bytes += strlen("code_challenge") + RLY_PKCE_CHALLENGE_LEN + strlen("code_challenge_method") + strlen("S256");
    }
    for (size_t i = 0; i != o->nparams; i++) {
        const char *p = o->params[i], *eq = strchr(p, '=');
        size_t n = (size_t)(eq - p);
        if (!rly_text_is_param_name(p, n))
            return fail(err, errlen, "--param: a name is 1 to %d of A-Z a-z 0-9 . _ - (protocol 1.1): %.*s",
                        RLY_AUTHORIZE_PARAM_NAME_MAX, (int)(n > 80 ? 80 : n), p);
        if (!rly_text_is_printable_ascii(eq + 1, strlen(eq + 1)))
            return fail(err, errlen, "--param %.*s: only printable ASCII is accepted in a value (protocol 1.1)", (int)n, p);
        for (size_t j = 0; j != i; j++)
            if (strncmp(o->params[j], p, n + 1) == 0)
                return fail(err, errlen, "--param %.*s given twice", (int)n, p);
        count++;
        bytes += strlen(p) - 1;
    }
    if (count > RLY_AUTHORIZE_PARAMS_COUNT_MAX)
        return fail(err, errlen, "too many authorize parameters: at most %d in all, --param included (protocol 1.1)",
                    RLY_AUTHORIZE_PARAMS_COUNT_MAX);
    if (bytes > RLY_AUTHORIZE_PARAMS_MAX)
        return fail(err, errlen, "the authorize parameters are longer than %d bytes of names and values in all (protocol 1.1)",
                    RLY_AUTHORIZE_PARAMS_MAX);
    return 0;
}

int rly_client_parse_args(rly_client_opts_t *o, int argc, char *const *argv, char *err, size_t errlen)
{
    enum { T_STR, T_LIST, T_FLAG, T_LONG };
    struct opt {
        const char *name;
        int type;
        void *dst;
        size_t *count; /* T_LIST */
    };
    const struct opt opts[] = {
        {"relay", T_STR, &o->relay, NULL},
        {"authorize-url", T_STR, &o->authorize_url, NULL},
        {"client-id", T_STR, &o->client_id, NULL},
        {"scope", T_LIST, o->scopes, &o->nscopes},
        {"audience", T_STR, &o->audience, NULL},
        {"prompt", T_STR, &o->prompt, NULL},
        {"param", T_LIST, o->params, &o->nparams},
        {"return-uri", T_STR, &o->return_uri, NULL},
        {"unbound", T_FLAG, &o->unbound, NULL},
        {"no-listen", T_FLAG, &o->no_listen, NULL},
        {"listen-port", T_LONG, &o->listen_port, NULL},
        {"label", T_STR, &o->label, NULL},
        {"seal", T_FLAG, &o->seal, NULL},
        {"token-url", T_STR, &o->token_url, NULL},
        {"client-secret-file", T_STR, &o->client_secret_file, NULL},
        {"pkce", T_FLAG, &o->pkce, NULL},
        {"ttl", T_LONG, &o->ttl, NULL},
        {"cacert", T_STR, &o->cacert, NULL},
        {"insecure", T_FLAG, &o->insecure, NULL},
        {"timeout", T_LONG, &o->timeout, NULL},
        {NULL, 0, NULL, NULL},
    };
    int seen_ttl = 0, seen_timeout = 0, seen_port = 0;
    char host[RLY_AS_HOST_MAX + 1];
    const char *es;

    memset(o, 0, sizeof(*o));
    o->timeout = RLY_CLIENT_TIMEOUT_DEFAULT;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *val = NULL, *eq;
        size_t nlen;
        const struct opt *p;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            o->help = 1;
            return 0;
        }
        if (strncmp(a, "--", 2) != 0)
            return fail(err, errlen, "unexpected argument: %s", a);
        a += 2;
        eq = strchr(a, '=');
        nlen = eq != NULL ? (size_t)(eq - a) : strlen(a);
        for (p = opts; p->name != NULL; p++)
            if (strlen(p->name) == nlen && memcmp(p->name, a, nlen) == 0)
                break;
        if (p->name == NULL)
            return fail(err, errlen, "unknown option: %s", argv[i]);
        if (p->type == T_FLAG) {
            if (eq != NULL)
                return fail(err, errlen, "--%s takes no value", p->name);
            *(int *)p->dst = 1;
            continue;
        }
        if (eq != NULL)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else
            return fail(err, errlen, "--%s needs a value", p->name);
        if (*val == '\0')
            return fail(err, errlen, "--%s: empty value", p->name);
        switch (p->type) {
        case T_STR:
            if (*(const char **)p->dst != NULL)
                return fail(err, errlen, "--%s given twice", p->name);
            *(const char **)p->dst = val;
            break;
        case T_LIST:
            if (*p->count == RLY_CLIENT_ARGS_MAX)
                return fail(err, errlen, "--%s given more than %d times", p->name, RLY_CLIENT_ARGS_MAX);
            ((const char **)p->dst)[(*p->count)++] = val;
            break;
        default: /* T_LONG */
            if (p->dst == &o->ttl) {
                if (seen_ttl++ != 0)
                    return fail(err, errlen, "--ttl given twice");
                if (parse_long(val, RLY_TTL_MIN, RLY_CLIENT_TTL_MAX, &o->ttl) != 0)
                    return fail(err, errlen, "--ttl: not a number of seconds from %d to %d: %s", RLY_TTL_MIN, RLY_CLIENT_TTL_MAX,
                                val);
            } else if (p->dst == &o->listen_port) {
                if (seen_port++ != 0)
                    return fail(err, errlen, "--listen-port given twice");
                if (parse_long(val, 1, 65535, &o->listen_port) != 0)
                    return fail(err, errlen, "--listen-port: not a port number from 1 to 65535: %s", val);
            } else {
                if (seen_timeout++ != 0)
                    return fail(err, errlen, "--timeout given twice");
                if (parse_long(val, 1, RLY_CLIENT_TIMEOUT_MAX, &o->timeout) != 0)
                    return fail(err, errlen, "--timeout: not a number of seconds from 1 to %d: %s", RLY_CLIENT_TIMEOUT_MAX, val);
            }
            break;
        }
    }

    if (o->relay == NULL)
        return fail(err, errlen, "--relay URL is required");
    if (o->authorize_url == NULL)
        return fail(err, errlen, "--authorize-url URL is required");
    if (o->client_id == NULL)
        return fail(err, errlen, "--client-id ID is required");
    if (check_url(o->relay, host, sizeof(host), &es) != 0)
        return fail(err, errlen, "--relay: %s", es);
    if (strchr(o->relay, '?') != NULL)
        return fail(err, errlen, "--relay: the relay's base URL has no query");
    if (o->insecure && !rly_host_is_loopback(host, strlen(host)))
        return fail(err, errlen, "--insecure is accepted only for a loopback relay (localhost, 127.0.0.0/8, [::1])");
    if (check_url(o->authorize_url, host, sizeof(host), &es) != 0)
        return fail(err, errlen, "--authorize-url: %s", es);
    if (o->return_uri != NULL && rly_url_check_return(o->return_uri, strlen(o->return_uri), &es) != 0)
        return fail(err, errlen, "--return-uri: %s", es);
    for (size_t i = 0; i != o->nparams; i++) {
        const char *eq = strchr(o->params[i], '=');
        if (eq == NULL || eq == o->params[i])
            return fail(err, errlen, "--param: expected k=v: %s", o->params[i]);
        if (is_reserved_param(o->params[i], (size_t)(eq - o->params[i])))
            return fail(err, errlen, "--param: %.*s is set by the client itself (or by its own option)", (int)(eq - o->params[i]),
                        o->params[i]);
    }
    if (o->token_url != NULL) {
        if (check_url(o->token_url, host, sizeof(host), &es) != 0)
            return fail(err, errlen, "--token-url: %s", es);
        if (o->client_secret_file == NULL && !o->pkce)
            return fail(err, errlen, "--token-url needs --client-secret-file FILE, --pkce, or both");
    } else if (o->client_secret_file != NULL) {
        return fail(err, errlen, "--client-secret-file is used only with --token-url");
    }
    if (o->unbound) {
        static const char *const bound_only[] = {"--no-listen", "--listen-port", "--label"};
        const int given[] = {o->no_listen, seen_port, o->label != NULL};
        for (size_t i = 0; i != 3; i++)
            if (given[i])
                return fail(err, errlen, "%s is for protocol 1.1 flows: not with --unbound", bound_only[i]);
        return 0;
    }
    if (o->return_uri != NULL && !o->no_listen)
        return fail(err, errlen,
                    "--return-uri goes with --no-listen or --unbound: otherwise the return_uri is this client's own listener, "
                    "http://127.0.0.1:PORT" RLY_CLIENT_RETURN_PATH);
    if (o->no_listen && o->return_uri == NULL)
        return fail(err, errlen, "--no-listen needs --return-uri URI: where the relay's last page sends the browser");
    if (o->no_listen && seen_port)
        return fail(err, errlen, "--listen-port is for the return listener: not with --no-listen");
    if (o->return_uri != NULL && strchr(o->return_uri, '?') != NULL)
        return fail(err, errlen, "--return-uri: a protocol 1.1 return_uri has no query");
    if (o->label != NULL && check_label(o->label, err, errlen) != 0)
        return -1;
    return check_bound_params(o, err, errlen);
}

/* ---- HTTP ---- */

typedef struct st_client_t {
    const rly_client_opts_t *o;
    FILE *diag;
    CURL *h;
    int ignore_cancel; /* the final DELETE of a cancelled flow runs anyway */
} client_t;

typedef struct st_resp_t {
    long status;    /* 0: no response */
    rly_buf_t body; /* at most RLY_CLIENT_BODY_MAX: RLY_BUF_TOO_BIG when the response is larger */
    char retry_after[128];
    char error[CURL_ERROR_SIZE];
} resp_t;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    resp_t *r = ud;
    size_t len = size * n;

    rly_buf_add(&r->body, p, len);
    return r->body.err != RLY_BUF_OK ? 0 : len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    resp_t *r = ud;
    size_t len = size * n;

    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        r->retry_after[0] = '\0'; /* a new response (after a 100 Continue) */
    } else if (len > 12 && strncasecmp(p, "retry-after:", 12) == 0) {
        size_t vlen = len - 12;
        if (vlen >= sizeof(r->retry_after))
            vlen = sizeof(r->retry_after) - 1;
        memcpy(r->retry_after, p + 12, vlen);
        r->retry_after[vlen] = '\0';
    }
    return len;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    client_t *c = ud;
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return !c->ignore_cancel && c->o->cancel != NULL && *c->o->cancel != 0;
}

static int cancelled(const client_t *c)
{
    return c->o->cancel != NULL && *c->o->cancel != 0;
}

/* 1 if the URL's host is loopback */
static int url_is_loopback(const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL;
    int ret = 0;

    if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK && curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
        ret = rly_host_is_loopback(host, strlen(host));
    curl_free(host);
    curl_url_cleanup(u);
    return ret;
}

/* empties the response for the next request (the body is wiped: it may be a token) */
static void resp_free(resp_t *r)
{
    rly_buf_free_wipe(&r->body);
    memset(r, 0, sizeof(*r));
    rly_buf_init(&r->body, RLY_CLIENT_BODY_MAX);
}

/*
 * One request on the shared handle (connections are reused, HTTP/2 where offered). headers: NULL-terminated
 * "Name: value" list. extra_s is added to the timeout (the long-poll wait). 0 with r->status set when a response
 * arrived; -1 transport failure (r->error says why); -2 the response was too large (r->error says so).
 */
static int request(client_t *c, const char *method, const char *url, const char *const *headers, const char *body, size_t bodylen,
                   long extra_s, resp_t *r)
{
    struct curl_slist *hl = NULL, *t;
    CURLcode cc;
    int ret = -1;

    resp_free(r);
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
        if ((t = curl_slist_append(hl, headers[i])) == NULL) {
            snprintf(r->error, sizeof(r->error), "out of memory");
            goto Exit;
        }
        hl = t;
    }
    if ((t = curl_slist_append(hl, "Expect:")) == NULL) {
        snprintf(r->error, sizeof(r->error), "out of memory");
        goto Exit;
    }
    hl = t;

    curl_easy_reset(c->h);
    curl_easy_setopt(c->h, CURLOPT_URL, url);
    curl_easy_setopt(c->h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c->h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c->h, CURLOPT_USERAGENT, USER_AGENT);
    curl_easy_setopt(c->h, CURLOPT_CONNECTTIMEOUT_MS, c->o->timeout * 1000L);
    curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, (c->o->timeout + extra_s) * 1000L);
    curl_easy_setopt(c->h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)RLY_CLIENT_BODY_MAX);
    curl_easy_setopt(c->h, CURLOPT_ERRORBUFFER, r->error);
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c->h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c->h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c->h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c->h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c->h, CURLOPT_XFERINFODATA, c);
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, hl);
    if (c->o->cacert != NULL)
        curl_easy_setopt(c->h, CURLOPT_CAINFO, c->o->cacert);
    if (c->o->insecure && url_is_loopback(url)) {
        curl_easy_setopt(c->h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c->h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)bodylen);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c->h, CURLOPT_CUSTOMREQUEST, method);
    }

    cc = curl_easy_perform(c->h);
    if (r->body.err == RLY_BUF_TOO_BIG || cc == CURLE_FILESIZE_EXCEEDED) {
        snprintf(r->error, sizeof(r->error), "the response is larger than %d bytes", RLY_CLIENT_BODY_MAX);
        r->status = 0;
        ret = -2;
        goto Exit;
    }
    if (cc != CURLE_OK) {
        if (r->error[0] == '\0')
            snprintf(r->error, sizeof(r->error), "%s", curl_easy_strerror(cc));
        goto Exit;
    }
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &r->status);
    ret = 0;
Exit:
    /* the handle must not keep pointers to this request's buffers */
    curl_easy_setopt(c->h, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hl);
    return ret;
}

/* parses a body as one strict JSON object; NULL if it is not one (caller puts the result) */
static json_object *parse_object(const char *s, size_t len)
{
    json_tokener *tok = json_tokener_new_ex(RLY_JSON_DEPTH_MAX);
    json_object *o = NULL;

    if (tok == NULL || s == NULL || len == 0 || len > INT32_MAX)
        goto Exit;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    o = json_tokener_parse_ex(tok, s, (int)len);
    if (json_tokener_get_error(tok) != json_tokener_success || json_tokener_get_parse_end(tok) != len ||
        !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        o = NULL;
    }
Exit:
    if (tok != NULL)
        json_tokener_free(tok);
    return o;
}

static const char *jstr(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static int jint(json_object *o, const char *key, int64_t *out)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
        return -1;
    *out = json_object_get_int64(v);
    return 0;
}

/* "HTTP 403: authorization_server_not_allowed (text)" from a relay or AS error response, into buf */
static const char *describe_error(const resp_t *r, char *buf, size_t cap)
{
    json_object *o = parse_object(r->body.base, r->body.len);
    const char *e = o != NULL ? jstr(o, "error") : NULL, *d = o != NULL ? jstr(o, "error_description") : NULL;

    if (e != NULL)
        snprintf(buf, cap, "HTTP %ld: %.200s%s%.400s%s", r->status, e, d != NULL ? " (" : "", d != NULL ? d : "",
                 d != NULL ? ")" : "");
    else
        snprintf(buf, cap, "HTTP %ld", r->status);
    json_object_put(o);
    return buf;
}

/* sleeps ms milliseconds (in slices, watching the cancel flag); 0, or -1 when cancelled */
static int nap(const client_t *c, long ms)
{
    while (ms > 0) {
        long slice = ms > 100 ? 100 : ms;
        struct timespec ts = {0, slice * 1000000L};
        if (cancelled(c))
            return -1;
        nanosleep(&ts, NULL);
        ms -= slice;
    }
    return cancelled(c) ? -1 : 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long backoff(unsigned attempt)
{
    uint32_t rnd = 0;
    (void)rly_random(&rnd, sizeof(rnd));
    return rly_client_backoff_ms(attempt, rnd);
}

/* a request that is retried (BUSY_TRIES in all) while the relay answers 429 or 503; returns as request() */
static int request_busy(client_t *c, const char *method, const char *url, const char *const *headers, const char *body,
                        size_t bodylen, resp_t *r)
{
    for (unsigned attempt = 0;; attempt++) {
        int rc = request(c, method, url, headers, body, bodylen, 0, r);
        if (rc != 0 || (r->status != 429 && r->status != 503) || attempt + 1 == BUSY_TRIES)
            return rc;
        long ra = rly_client_retry_after(r->retry_after, time(NULL));
        long ms = ra >= 0 ? ra * 1000 : backoff(attempt);
        if (ms > BUSY_WAIT_MAX_MS)
            ms = BUSY_WAIT_MAX_MS;
        fprintf(c->diag, "authrelay client: warning: the relay is busy (HTTP %ld); retrying in %.1f s\n", r->status,
                (double)ms / 1000);
        if (nap(c, ms) != 0)
            return rc;
    }
}

/* ---- the return listener: a thread with a poll() loop on 127.0.0.1 ---- */

typedef struct st_conn_t {
    int fd; /* -1: a free slot */
    double deadline;
    size_t len;
    int continued; /* "100 Continue" sent */
    char buf[RLY_CLIENT_RETURN_HEAD_MAX + RLY_CLIENT_RETURN_BODY_MAX];
} conn_t;

/*
 * The listener's life: listener_open binds (before the session exists: the return_uri names the port), listener_start
 * runs the thread once the session id is known, listener_free stops it. Connections that arrive before the thread runs
 * wait in the backlog. The thread ends when asked to stop and then either no release came, the done page was served, or
 * stop_at passed (it lingers so that the browser, sent to the done page, finds it).
 */
typedef struct st_listener_t {
    int fd;
    FILE *diag;
    pthread_t tid;
    int started;
    pthread_mutex_t mu;     /* guards rs, stopping and stop_at */
    rly_client_return_t rs; /* what the thread received */
    int stopping;
    double stop_at;
    conn_t conns[RLY_CLIENT_RETURN_CONNS]; /* the thread's own */
} listener_t;

/* writes the whole of p (a small response) within about 2 s, or gives up */
static void send_all(int fd, const char *p, size_t n)
{
    for (int waits = 0; n != 0 && waits < 20;) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            struct pollfd pfd = {fd, POLLOUT, 0};
            (void)poll(&pfd, 1, 100);
            waits++;
        } else {
            return;
        }
    }
}

/* closes a connection and wipes what it received (it may hold a release key) */
static void conn_close(conn_t *c)
{
    close(c->fd);
    OPENSSL_cleanse(c->buf, c->len);
    c->fd = -1;
    c->len = 0;
}

/* answers a request that cannot be served; the rest of it (an unread body, say) is read and dropped for a moment first, so
 * that closing with unread data does not reset the connection before the client read the answer */
static void conn_error(conn_t *c, int status)
{
    char storage[2048];
    rly_buf_t out;

    rly_buf_init_fixed(&out, storage, sizeof(storage));
    rly_client_return_error(status, &out);
    if (out.err == RLY_BUF_OK)
        send_all(c->fd, out.base, out.len);
    if (shutdown(c->fd, SHUT_WR) == 0) {
        for (int i = 0; i != 5; i++) {
            struct pollfd pfd = {c->fd, POLLIN, 0};
            if (poll(&pfd, 1, 50) <= 0 || recv(c->fd, storage, sizeof(storage), 0) <= 0)
                break;
        }
    }
    conn_close(c);
}

/* reads what arrived on c; once its request is whole, answers it and closes c */
static void conn_read(listener_t *l, conn_t *c)
{
    rly_client_http_req_t req;
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0), head;
    size_t bodylen;
    char storage[4096];
    rly_buf_t out;
    unsigned foreign;

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)n;
    if ((head = rly_client_http_head_parse(c->buf, c->len, &req)) == -2) {
        if (c->len >= RLY_CLIENT_RETURN_HEAD_MAX)
            conn_error(c, 431);
        return;
    }
    if (head < 0) {
        conn_error(c, 400);
        return;
    }
    if (head > RLY_CLIENT_RETURN_HEAD_MAX) {
        conn_error(c, 431);
        return;
    }
    if (req.content_length > RLY_CLIENT_RETURN_BODY_MAX) {
        conn_error(c, 413);
        return;
    }
    bodylen = req.content_length > 0 ? (size_t)req.content_length : 0;
    if (c->len < (size_t)head + bodylen) {
        if (req.expect_continue && !c->continued) {
            send_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
            c->continued = 1;
        }
        return;
    }
    rly_buf_init_fixed(&out, storage, sizeof(storage));
    pthread_mutex_lock(&l->mu);
    foreign = l->rs.foreign;
    (void)rly_client_return_serve(&l->rs, &req, c->buf + head, bodylen, &out);
    foreign = l->rs.foreign - foreign;
    pthread_mutex_unlock(&l->mu);
    if (out.err == RLY_BUF_OK)
        send_all(c->fd, out.base, out.len);
    conn_close(c);
    if (foreign != 0)
        fprintf(l->diag, "authrelay client: warning: the return listener refused a release key for another session\n");
}

static void *listener_main(void *ud)
{
    listener_t *l = ud;
    struct pollfd pfd[RLY_CLIENT_RETURN_CONNS + 1];
    conn_t *polled[RLY_CLIENT_RETURN_CONNS];

    for (;;) {
        double now = now_s();
        size_t nc = 0, nfds;
        int stop;

        pthread_mutex_lock(&l->mu);
        stop = l->stopping && (l->rs.release[0] == '\0' || l->rs.done_served || now >= l->stop_at);
        pthread_mutex_unlock(&l->mu);
        if (stop)
            break;
        for (size_t i = 0; i != RLY_CLIENT_RETURN_CONNS; i++) {
            conn_t *c = &l->conns[i];
            if (c->fd < 0)
                continue;
            if (now >= c->deadline) {
                conn_error(c, 408);
                continue;
            }
            pfd[nc].fd = c->fd;
            pfd[nc].events = POLLIN;
            pfd[nc].revents = 0;
            polled[nc++] = c;
        }
        nfds = nc;
        if (nc != RLY_CLIENT_RETURN_CONNS) { /* a full house leaves new connections in the backlog */
            pfd[nfds].fd = l->fd;
            pfd[nfds].events = POLLIN;
            pfd[nfds].revents = 0;
            nfds++;
        }
        if (poll(pfd, nfds, 100) <= 0)
            continue;
        for (size_t i = 0; i != nc; i++)
            if (pfd[i].revents != 0)
                conn_read(l, polled[i]);
        if (nfds != nc && (pfd[nc].revents & POLLIN) != 0) {
            for (size_t i = 0; i != RLY_CLIENT_RETURN_CONNS; i++) {
                conn_t *c = &l->conns[i];
                if (c->fd >= 0)
                    continue;
                if ((c->fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0)
                    break;
                c->deadline = now_s() + RLY_CLIENT_RETURN_TIMEOUT_MS / 1000.0;
                c->len = 0;
                c->continued = 0;
                break;
            }
        }
    }
    for (size_t i = 0; i != RLY_CLIENT_RETURN_CONNS; i++)
        if (l->conns[i].fd >= 0)
            conn_close(&l->conns[i]);
    return NULL;
}

/* binds 127.0.0.1:port (0: an ephemeral port); the listener (caller frees it with listener_free) and its return_uri in
 * uri, or NULL with err */
static listener_t *listener_open(long port, FILE *diag, char *uri, size_t uricap, char *err, size_t errlen)
{
    listener_t *l = calloc(1, sizeof(*l));
    struct sockaddr_in sin;
    socklen_t slen = sizeof(sin);
    char lerr[256];

    if (l == NULL) {
        fail(err, errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i != RLY_CLIENT_RETURN_CONNS; i++)
        l->conns[i].fd = -1;
    l->diag = diag;
    pthread_mutex_init(&l->mu, NULL);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((unsigned short)port);
    if ((l->fd = rly_listen((const struct sockaddr *)&sin, sizeof(sin), NULL, 0, 16, lerr, sizeof(lerr))) < 0) {
        fail(err, errlen, "the return listener %s", lerr);
        goto Error;
    }
    if (getsockname(l->fd, (struct sockaddr *)&sin, &slen) != 0) {
        fail(err, errlen, "the return listener: getsockname: %s", strerror(errno));
        goto Error;
    }
    snprintf(l->rs.host, sizeof(l->rs.host), "127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
    snprintf(uri, uricap, "http://%s" RLY_CLIENT_RETURN_PATH, l->rs.host);
    return l;
Error:
    if (l->fd >= 0)
        close(l->fd);
    pthread_mutex_destroy(&l->mu);
    free(l);
    return NULL;
}

/* starts serving for the session (the thread blocks SIGINT and SIGTERM: they stay with the flow); 0 / -1 with err */
static int listener_start(listener_t *l, const char *session, char *err, size_t errlen)
{
    sigset_t block, old;
    int rc;

    memcpy(l->rs.session, session, RLY_SESSION_ID_LEN + 1);
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    rc = pthread_create(&l->tid, NULL, listener_main, l);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return fail(err, errlen, "cannot start the return listener: %s", strerror(rc));
    l->started = 1;
    return 0;
}

/* copies the release key once it arrived; 1, or 0 while none did */
static int listener_release(listener_t *l, char release[RLY_RELEASE_KEY_LEN + 1])
{
    int got;

    pthread_mutex_lock(&l->mu);
    got = l->rs.release[0] != '\0';
    if (got)
        memcpy(release, l->rs.release, RLY_RELEASE_KEY_LEN + 1);
    pthread_mutex_unlock(&l->mu);
    return got;
}

/* stops the thread (after at most linger_ms while a browser that brought the release has not fetched the done page yet),
 * closes the socket and frees l; l may be NULL */
static void listener_free(listener_t *l, long linger_ms)
{
    if (l == NULL)
        return;
    if (l->started) {
        pthread_mutex_lock(&l->mu);
        l->stopping = 1;
        l->stop_at = now_s() + (double)linger_ms / 1000;
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->tid, NULL);
    }
    close(l->fd);
    pthread_mutex_destroy(&l->mu);
    OPENSSL_cleanse(&l->rs, sizeof(l->rs));
    free(l);
}

/* ---- the flow ---- */

#define PROTOCOL_BOUND "1.1" /* discovery's version of a relay with bound flows */
#define PROTOCOL_UNBOUND "1" /* ... of a relay that has only version-1 sessions */

typedef struct st_flow_t {
    int bound; /* protocol 1.1 (no --unbound) */
    char session[RLY_SESSION_ID_LEN + 1];
    char state[RLY_STATE_MAX + 1]; /* --unbound only: a 1.1 session has none */
    char *redirect_uri, *poll_url, *sessions_endpoint, *start_url;
    char return_uri[64]; /* the return listener's: http://127.0.0.1:PORT/authrelay/return */
    char auth_header[32 + 256];
    int64_t wait_max, expires_in;
    double deadline; /* the session's end (now_s), from its creation */
    uint8_t seal_priv[32], seal_pub[32];
    char verifier[RLY_PKCE_VERIFIER_LEN + 1];
    char release[RLY_RELEASE_KEY_LEN + 1];
    char secret[RLY_CLIENT_SECRET_MAX + 1];
} flow_t;

/* reads and trims the client secret; 0 / -1 with err */
static int read_secret(const char *path, char *out, size_t cap, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    size_t n, s = 0;

    if (f == NULL)
        return fail(err, errlen, "cannot read --client-secret-file %s: %s", path, strerror(errno));
    n = fread(out, 1, cap, f);
    if (n == cap) {
        fclose(f);
        return fail(err, errlen, "--client-secret-file %s: larger than %zu bytes", path, cap - 1);
    }
    fclose(f);
    while (n != 0 && (out[n - 1] == ' ' || out[n - 1] == '\t' || out[n - 1] == '\r' || out[n - 1] == '\n'))
        n--;
    while (s < n && (out[s] == ' ' || out[s] == '\t' || out[s] == '\r' || out[s] == '\n'))
        s++;
    memmove(out, out + s, n - s);
    out[n - s] = '\0';
    if (n == s)
        return fail(err, errlen, "--client-secret-file %s is empty", path);
    return 0;
}

static char *dup_url_checked(json_object *o, const char *key, const char *what, char *err, size_t errlen)
{
    const char *v = jstr(o, key), *es;
    char host[RLY_AS_HOST_MAX + 1];
    char *d;

    if (v == NULL) {
        fail(err, errlen, "relay error: the %s response has no %s", what, key);
        return NULL;
    }
    if (check_url(v, host, sizeof(host), &es) != 0) {
        fail(err, errlen, "relay error: the %s response's %s is unusable: %s", what, key, es);
        return NULL;
    }
    if ((d = strdup(v)) == NULL)
        fail(err, errlen, "out of memory");
    return d;
}

static rly_client_status_t discover(client_t *c, flow_t *f, char *err, size_t errlen)
{
    const rly_client_opts_t *o = c->o;
    static const char *const hdrs[] = {"Accept: application/json", NULL};
    rly_buf_t url;
    resp_t r = {0};
    json_object *d = NULL, *algs, *unbound;
    const char *v;
    rly_client_status_t ret = RLY_CLIENT_FAILED;
    size_t blen = strlen(o->relay);
    char buf[700];
    int rc;

    rly_buf_init(&url, BUILD_MAX);
    while (blen != 0 && o->relay[blen - 1] == '/')
        blen--;
    rly_buf_add(&url, o->relay, blen);
    rly_buf_adds(&url, "/.well-known/authrelay");
    if (url.err != RLY_BUF_OK) {
        fail(err, errlen, "out of memory");
        goto Exit;
    }
    if ((rc = request_busy(c, "GET", url.base, hdrs, NULL, 0, &r)) != 0) {
        fail(err, errlen, rc == -2 ? "relay error: discovery: %s" : "relay unreachable: %s", r.error);
        goto Exit;
    }
    if (r.status != 200) {
        fail(err, errlen, "relay error: discovery (GET %s): %s", url.base, describe_error(&r, buf, sizeof(buf)));
        goto Exit;
    }
    if ((d = parse_object(r.body.base, r.body.len)) == NULL) {
        fail(err, errlen, "relay error: discovery (GET %s) did not answer a JSON object: is --relay an authrelay?", url.base);
        goto Exit;
    }
    if ((v = jstr(d, "version")) == NULL || (strcmp(v, PROTOCOL_BOUND) != 0 && strcmp(v, PROTOCOL_UNBOUND) != 0)) {
        fail(err, errlen, "relay error: the relay speaks protocol version %.40s; this client speaks %s (and %s with --unbound)",
             v != NULL ? v : "(none)", PROTOCOL_BOUND, PROTOCOL_UNBOUND);
        goto Exit;
    }
    if (f->bound && strcmp(v, PROTOCOL_UNBOUND) == 0) {
        fail(err, errlen,
             "relay error: the relay speaks protocol version 1 only, without bound flows (1.1): update it, or use --unbound");
        goto Exit;
    }
    if (!f->bound && strcmp(v, PROTOCOL_BOUND) == 0 &&
        !(json_object_object_get_ex(d, "unbound_sessions", &unbound) && json_object_is_type(unbound, json_type_boolean) &&
          json_object_get_boolean(unbound))) {
        fail(err, errlen,
             "relay error: --unbound: the relay does not accept version-1 sessions (discovery: unbound_sessions is not true; "
             "it runs without --allow-unbound): leave out --unbound");
        goto Exit;
    }
    if ((f->sessions_endpoint = dup_url_checked(d, "sessions_endpoint", "discovery", err, errlen)) == NULL)
        goto Exit;
    if (jint(d, "wait_max", &f->wait_max) != 0 || f->wait_max < 0 || f->wait_max > WAIT_MAX_LIMIT) {
        fail(err, errlen, "relay error: the discovery response has no valid wait_max");
        goto Exit;
    }
    if (o->seal) {
        int found = 0;
        if (json_object_object_get_ex(d, "seal_algorithms", &algs) && json_object_is_type(algs, json_type_array))
            for (size_t i = 0; i != json_object_array_length(algs); i++) {
                const char *a = json_object_get_string(json_object_array_get_idx(algs, i));
                if (a != NULL && strcmp(a, RLY_SEAL_ALGORITHM) == 0)
                    found = 1;
            }
        if (!found) {
            fail(err, errlen, "relay error: the relay does not offer sealing with %s (--seal)", RLY_SEAL_ALGORITHM);
            goto Exit;
        }
    }
    ret = RLY_CLIENT_OK;
Exit:
    json_object_put(d);
    resp_free(&r);
    rly_buf_free_wipe(&url);
    return ret;
}

/* POST /v1/sessions: a 1.1 session (authorize_params with challenge, the return_uri, the label) or, --unbound, a
 * version-1 one; fills f from the 201 */
static rly_client_status_t create_session(client_t *c, flow_t *f, const char *challenge, char *err, size_t errlen)
{
    const rly_client_opts_t *o = c->o;
    static const char *const hdrs[] = {"Content-Type: application/json", "Accept: application/json", NULL};
    json_object *req = json_object_new_object(), *s = NULL, *params;
    resp_t r = {0};
    rly_client_status_t ret = RLY_CLIENT_FAILED;
    const char *body, *v, *return_uri = f->bound && !o->no_listen ? f->return_uri : o->return_uri;
    char buf[700];
    int rc;

    if (req == NULL)
        goto Error;
    if (json_object_object_add(req, "authorization_server", json_object_new_string(o->authorize_url)) != 0)
        goto Error;
    if (f->bound) {
        if ((params = authorize_params_object(o, challenge)) == NULL)
            goto Error;
        if (json_object_object_add(req, "authorize_params", params) != 0) {
            json_object_put(params);
            goto Error;
        }
        if (o->label != NULL && json_object_object_add(req, "label", json_object_new_string(o->label)) != 0)
            goto Error;
    }
    if (return_uri != NULL && json_object_object_add(req, "return_uri", json_object_new_string(return_uri)) != 0)
        goto Error;
    if (o->seal) {
        char pub[RLY_B64URL_ENCODED_LEN(32) + 1];
        if (rly_x25519_keypair(f->seal_priv, f->seal_pub) != 0) {
            fail(err, errlen, "cannot generate the X25519 seal key");
            goto Exit;
        }
        rly_b64url_encode(pub, f->seal_pub, sizeof(f->seal_pub));
        if (json_object_object_add(req, "seal_key", json_object_new_string(pub)) != 0)
            goto Error;
    }
    if (o->ttl != 0 && json_object_object_add(req, "ttl", json_object_new_int64(o->ttl)) != 0)
        goto Error;
    if ((body = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)) == NULL)
        goto Error;

    if ((rc = request_busy(c, "POST", f->sessions_endpoint, hdrs, body, strlen(body), &r)) != 0) {
        fail(err, errlen, rc == -2 ? "relay error: session creation: %s" : "relay unreachable: %s", r.error);
        goto Exit;
    }
    if (r.status != 201) {
        fail(err, errlen, "relay error: session creation: %s", describe_error(&r, buf, sizeof(buf)));
        goto Exit;
    }
    if ((s = parse_object(r.body.base, r.body.len)) == NULL) {
        fail(err, errlen, "relay error: session creation did not answer a JSON object");
        goto Exit;
    }
    if ((v = jstr(s, "session")) == NULL || strlen(v) != RLY_SESSION_ID_LEN || !rly_b64url_is_charset(v, strlen(v))) {
        fail(err, errlen, "relay error: the session response has no valid session");
        goto Exit;
    }
    memcpy(f->session, v, RLY_SESSION_ID_LEN + 1);
    if (f->bound) {
        /* a relay that ignored authorize_params would answer a state and no start_url */
        if ((f->start_url = dup_url_checked(s, "start_url", "session", err, errlen)) == NULL)
            goto Exit;
    } else {
        if ((v = jstr(s, "state")) == NULL || strlen(v) == 0 || strlen(v) > RLY_STATE_MAX || !rly_b64url_is_charset(v, strlen(v))) {
            fail(err, errlen, "relay error: the session response has no valid state");
            goto Exit;
        }
        memcpy(f->state, v, strlen(v) + 1);
    }
    if ((v = jstr(s, "poll_token")) == NULL || strlen(v) == 0 || strlen(v) > 256 || !rly_b64url_is_charset(v, strlen(v))) {
        fail(err, errlen, "relay error: the session response has no valid poll_token");
        goto Exit;
    }
    snprintf(f->auth_header, sizeof(f->auth_header), "Authorization: Bearer %s", v);
    if ((f->poll_url = dup_url_checked(s, "poll_url", "session", err, errlen)) == NULL)
        goto Exit;
    if ((v = jstr(s, "redirect_uri")) == NULL || strlen(v) == 0 || strlen(v) > RLY_CLIENT_URL_MAX) {
        fail(err, errlen, "relay error: the session response has no valid redirect_uri");
        goto Exit;
    }
    if ((f->redirect_uri = strdup(v)) == NULL)
        goto Error;
    if (jint(s, "expires_in", &f->expires_in) != 0 || f->expires_in <= 0 || f->expires_in > RLY_CLIENT_TTL_MAX) {
        fail(err, errlen, "relay error: the session response has no valid expires_in");
        goto Exit;
    }
    f->deadline = now_s() + (double)f->expires_in;
    ret = RLY_CLIENT_OK;
    goto Exit;
Error:
    fail(err, errlen, "out of memory");
Exit:
    json_object_put(s);
    json_object_put(req);
    resp_free(&r);
    return ret;
}

/* DELETE poll_url: acknowledges or cancels; a failure is only a warning (a 404: gone already, fine) */
static void delete_session(client_t *c, flow_t *f)
{
    const char *const hdrs[] = {f->auth_header, NULL};
    resp_t r = {0};
    char buf[700];

    c->ignore_cancel = 1;
    if (request(c, "DELETE", f->poll_url, hdrs, NULL, 0, 0, &r) != 0)
        fprintf(c->diag, "authrelay client: warning: could not delete the session (%s); it expires on its own\n", r.error);
    else if (r.status != 204 && r.status != 404)
        fprintf(c->diag, "authrelay client: warning: could not delete the session (%s); it expires on its own\n",
                describe_error(&r, buf, sizeof(buf)));
    c->ignore_cancel = 0;
    resp_free(&r);
}

/* long-polls until a 200; *result receives its body (a JSON object, caller puts it) */
static rly_client_status_t pickup(client_t *c, flow_t *f, json_object **result, char *err, size_t errlen)
{
    char prefer[32], buf[700], last[CURL_ERROR_SIZE + 32] = "";
    const char *const hdrs[] = {f->auth_header, prefer, "Accept: application/json", NULL};
    double deadline = f->deadline;
    unsigned attempt = 0;
    resp_t r = {0};
    rly_client_status_t ret = RLY_CLIENT_FAILED;

    for (;;) {
        double t0 = now_s(), remaining = deadline - t0;
        long wait = f->wait_max, ms;
        int rc;

        if (cancelled(c)) {
            fail(err, errlen, "interrupted");
            goto Exit;
        }
        if (remaining <= 0) {
            if (last[0] != '\0') {
                fail(err, errlen, "relay unreachable until the session expired: %s", last);
            } else {
                fail(err, errlen, "expired: no authorization arrived within the session's %lld s", (long long)f->expires_in);
                ret = RLY_CLIENT_EXPIRED;
            }
            goto Exit;
        }
        if ((double)wait > remaining)
            wait = (long)remaining;
        snprintf(prefer, sizeof(prefer), "Prefer: wait=%ld", wait);
        rc = request(c, "GET", f->poll_url, hdrs, NULL, 0, wait, &r);
        if (rc == -2) {
            fail(err, errlen, "relay error: pickup: %s", r.error);
            goto Exit;
        }
        if (rc == 0 && r.status == 200)
            break;
        if (rc == 0 && r.status == 202) {
            attempt = 0;
            last[0] = '\0';
            /* a 202 well before its wait (the relay shutting down, wait_max 0) is not a reason to spin */
            ms = (long)((t0 + (double)MIN_POLL_INTERVAL_MS / 1000 - now_s()) * 1000);
            if (ms > 0)
                (void)nap(c, ms);
            continue;
        }
        if (rc == 0 && r.status == 404) {
            fail(err, errlen, "expired: the relay no longer knows the session (it expired or was deleted before the callback)");
            ret = RLY_CLIENT_EXPIRED;
            goto Exit;
        }
        if (rc == 0 && r.status != 429 && r.status != 502 && r.status != 503 && r.status != 504) {
            fail(err, errlen, "relay error: pickup: %s", describe_error(&r, buf, sizeof(buf)));
            goto Exit;
        }
        if (cancelled(c))
            continue;
        /* transport failure or a busy relay: reconnect after a while */
        long ra = rc == 0 ? rly_client_retry_after(r.retry_after, time(NULL)) : -1;
        ms = ra >= 0 ? ra * 1000 : backoff(attempt);
        attempt++;
        if (rc != 0)
            snprintf(last, sizeof(last), "%s", r.error);
        else
            snprintf(last, sizeof(last), "%s", describe_error(&r, buf, sizeof(buf)));
        if ((double)ms / 1000 > deadline - now_s())
            ms = (long)((deadline - now_s()) * 1000) + 1;
        fprintf(c->diag, "authrelay client: warning: pickup failed (%s); retrying in %.1f s\n", last, (double)ms / 1000);
        (void)nap(c, ms);
    }

    if ((*result = parse_object(r.body.base, r.body.len)) == NULL) {
        fail(err, errlen, "relay error: the pickup result is not a JSON object");
        goto Exit;
    }
    ret = RLY_CLIENT_OK;
Exit:
    resp_free(&r);
    return ret;
}

/* opens a sealed result (or insists on one with --seal); replaces *result with the plaintext object */
static rly_client_status_t unseal_result(client_t *c, flow_t *f, json_object **result, char *err, size_t errlen)
{
    const char *status = jstr(*result, "status"), *sealed;
    uint8_t *pt = NULL;
    size_t ptlen = 0;
    json_object *opened;

    if (status != NULL && strcmp(status, "sealed") == 0) {
        if (!c->o->seal) {
            fail(err, errlen, "relay error: the relay returned a sealed result although no seal key was sent");
            return RLY_CLIENT_FAILED;
        }
        if ((sealed = jstr(*result, "sealed")) == NULL ||
            (pt = rly_unseal(f->seal_priv, f->session, strlen(f->session), sealed, strlen(sealed), &ptlen)) == NULL) {
            fail(err, errlen,
                 "bad seal: the sealed result does not open with this client's key (tampered with, or sealed to "
                 "another key)");
            return RLY_CLIENT_BAD_SEAL;
        }
        opened = parse_object((const char *)pt, ptlen);
        OPENSSL_cleanse(pt, ptlen);
        free(pt);
        if (opened == NULL) {
            fail(err, errlen, "bad seal: the opened result is not a JSON object");
            return RLY_CLIENT_BAD_SEAL;
        }
        json_object_put(*result);
        *result = opened;
    } else if (c->o->seal) {
        fail(err, errlen, "bad seal: the relay returned the result unsealed although --seal asked for it sealed");
        return RLY_CLIENT_BAD_SEAL;
    }
    return RLY_CLIENT_OK;
}

/* POSTs the code to the token endpoint; *token receives the response object (caller puts it) */
static rly_client_status_t exchange(client_t *c, flow_t *f, const char *code, json_object **token, char *err, size_t errlen)
{
    const rly_client_opts_t *o = c->o;
    static const char *const hdrs[] = {"Content-Type: application/x-www-form-urlencoded", "Accept: application/json", NULL};
    rly_buf_t body;
    resp_t r = {0};
    int first = 1, rc;
    char buf[700];
    rly_client_status_t ret = RLY_CLIENT_FAILED;

    rly_buf_init(&body, BUILD_MAX);
    add_param(&body, &first, "grant_type", "authorization_code", 18);
    add_param(&body, &first, "code", code, strlen(code));
    add_param(&body, &first, "redirect_uri", f->redirect_uri, strlen(f->redirect_uri));
    add_param(&body, &first, "client_id", o->client_id, strlen(o->client_id));
    if (o->client_secret_file != NULL)
        add_param(&body, &first, "client_secret", f->secret, strlen(f->secret));
    if (o->pkce)
        add_param(&body, &first, "code_verifier", f->verifier, strlen(f->verifier));
    if (body.err != RLY_BUF_OK) {
        fail(err, errlen, "out of memory");
        goto Exit;
    }
    if ((rc = request(c, "POST", o->token_url, hdrs, body.base, body.len, 0, &r)) != 0) {
        fail(err, errlen, rc == -2 ? "token endpoint error: %s" : "token endpoint unreachable: %s", r.error);
        goto Exit;
    }
    if (r.status != 200) {
        fail(err, errlen, "token endpoint error: %s", describe_error(&r, buf, sizeof(buf)));
        goto Exit;
    }
    if ((*token = parse_object(r.body.base, r.body.len)) == NULL || jstr(*token, "access_token") == NULL) {
        json_object_put(*token);
        *token = NULL;
        fail(err, errlen, "token endpoint error: the response is not a JSON object with an access_token");
        goto Exit;
    }
    ret = RLY_CLIENT_OK;
Exit:
    resp_free(&r);
    rly_buf_free_wipe(&body);
    return ret;
}

/* waits until the browser brought the release key to the listener (or the session's end, or a cancel) */
static rly_client_status_t wait_release(client_t *c, flow_t *f, listener_t *l, char *err, size_t errlen)
{
    while (!listener_release(l, f->release)) {
        if (cancelled(c)) {
            fail(err, errlen, "interrupted");
            return RLY_CLIENT_FAILED;
        }
        if (now_s() >= f->deadline) {
            fail(err, errlen,
                 "expired: the result is at the relay, but no browser brought its release key to %s within the session's "
                 "%lld s (was the relay's last page closed?)",
                 f->return_uri, (long long)f->expires_in);
            return RLY_CLIENT_EXPIRED;
        }
        (void)nap(c, 100);
    }
    return RLY_CLIENT_OK;
}

/* --no-listen: what was read of the pasted input and not used yet */
typedef struct st_paste_t {
    char buf[RLY_CLIENT_PASTE_LINE_MAX + 1];
    size_t len;
    int eof;
} paste_t;

/*
 * The next line of the pasted input (without its LF) into line (NUL-terminated, *linelen): 1; 0 the input ended with
 * nothing left; -1 cancelled or past the session's end; -2 a line longer than RLY_CLIENT_PASTE_LINE_MAX; -3 read error
 */
static int paste_next(client_t *c, const flow_t *f, paste_t *p, char *line, size_t *linelen)
{
    for (;;) {
        char *nl = memchr(p->buf, '\n', p->len);
        if (nl != NULL || (p->eof && p->len != 0)) {
            size_t n = nl != NULL ? (size_t)(nl - p->buf) : p->len, used = nl != NULL ? n + 1 : n;
            memcpy(line, p->buf, n);
            line[n] = '\0';
            *linelen = n;
            memmove(p->buf, p->buf + used, p->len - used);
            p->len -= used;
            return 1;
        }
        if (p->eof)
            return 0;
        if (p->len == sizeof(p->buf))
            return -2;
        if (cancelled(c) || now_s() >= f->deadline)
            return -1;
        struct pollfd pfd = {c->o->paste_fd, POLLIN, 0};
        int rc = poll(&pfd, 1, 200);
        if (rc < 0 && errno != EINTR)
            return -3;
        if (rc <= 0)
            continue;
        ssize_t n = read(c->o->paste_fd, p->buf + p->len, sizeof(p->buf) - p->len);
        if (n < 0 && errno != EINTR && errno != EAGAIN)
            return -3;
        if (n == 0)
            p->eof = 1;
        else if (n > 0)
            p->len += (size_t)n;
    }
}

/* --no-listen: asks on diag for the session and the release key the relay's last page shows, and reads them (one line
 * "SESSION RELEASE", or one per line); a session other than this flow's is refused and asked for again */
static rly_client_status_t read_pasted(client_t *c, flow_t *f, char *err, size_t errlen)
{
    static const char prompt[] = "Session and release key: ";
    paste_t p = {.len = 0};
    char line[RLY_CLIENT_PASTE_LINE_MAX + 1];
    int have_session = 0, rc, n;
    size_t len;
    rly_str_t tok[2];
    uint8_t raw[32];
    rly_client_status_t ret = RLY_CLIENT_FAILED;

    fprintf(c->diag,
            "Paste the session and the release key that the relay's last page shows (under \"The instance asks you to "
            "paste these\"), on one line or one per line.\n%s",
            prompt);
    fflush(c->diag);
    for (;;) {
        if ((rc = paste_next(c, f, &p, line, &len)) != 1) {
            if (rc == 0) {
                fail(err, errlen, "no release key: the input ended before the session and the release key were pasted");
            } else if (rc == -1 && !cancelled(c)) {
                fail(err, errlen, "expired: no release key was pasted within the session's %lld s", (long long)f->expires_in);
                ret = RLY_CLIENT_EXPIRED;
            } else if (rc == -1) {
                fail(err, errlen, "interrupted");
            } else if (rc == -2) {
                fail(err, errlen, "the pasted line is longer than %d bytes", RLY_CLIENT_PASTE_LINE_MAX);
            } else {
                fail(err, errlen, "cannot read the pasted session and release key: %s", strerror(errno));
            }
            goto Exit;
        }
        if ((n = rly_client_paste_tokens(line, len, tok)) == 0)
            continue;
        if (n < 0) {
            fprintf(c->diag, "authrelay client: expected the session and the release key, separated by a space\n%s", prompt);
            have_session = 0;
            continue;
        }
        if (n == 2 || !have_session) {
            if (rly_session_parse(tok[0].base, tok[0].len, raw) != 0) {
                fprintf(c->diag, "authrelay client: that is not a session (22 characters)\n%s", prompt);
                have_session = 0;
                continue;
            }
            if (CRYPTO_memcmp(tok[0].base, f->session, RLY_SESSION_ID_LEN) != 0) {
                fprintf(c->diag, "authrelay client: that is the session of another sign-in, not of this one\n%s", prompt);
                have_session = 0;
                continue;
            }
            have_session = 1;
            if (n == 1) {
                fputs("Release key: ", c->diag);
                fflush(c->diag);
                continue;
            }
            tok[0] = tok[1];
        }
        if (tok[0].len != RLY_RELEASE_KEY_LEN || rly_b64url_decode(raw, sizeof(raw), tok[0].base, tok[0].len) != 32) {
            fputs("authrelay client: that is not a release key (43 characters)\nRelease key: ", c->diag);
            fflush(c->diag);
            continue;
        }
        memcpy(f->release, tok[0].base, RLY_RELEASE_KEY_LEN);
        f->release[RLY_RELEASE_KEY_LEN] = '\0';
        ret = RLY_CLIENT_OK;
        break;
    }
Exit:
    OPENSSL_cleanse(&p, sizeof(p));
    OPENSSL_cleanse(line, sizeof(line));
    OPENSSL_cleanse(raw, sizeof(raw));
    return ret;
}

/*
 * A 1.1 result, after unsealing: a locked one is opened with the release key (from the listener l, or pasted when l is
 * NULL) and *result replaced by the object inside; the plain denied object of a Cancel on the confirmation page passes as
 * it is (nothing was locked and no release key comes); anything else is refused.
 */
static rly_client_status_t open_bound(client_t *c, flow_t *f, listener_t *l, json_object **result, char *err, size_t errlen)
{
    const char *status = jstr(*result, "status"), *locked = jstr(*result, "locked");
    char *pt;
    size_t ptlen = 0;
    json_object *opened;
    rly_client_status_t ret;

    if (status != NULL && strcmp(status, "denied") == 0)
        return RLY_CLIENT_OK;
    if (status != NULL && strcmp(status, "authorized") == 0) {
        fail(err, errlen, "bad lock: the relay returned the result unlocked although the session is bound (protocol 1.1)");
        return RLY_CLIENT_BAD_SEAL;
    }
    if (status == NULL || strcmp(status, "locked") != 0 || locked == NULL) {
        fail(err, errlen, "relay error: the pickup result is neither locked nor denied");
        return RLY_CLIENT_FAILED;
    }
    if ((ret = l != NULL ? wait_release(c, f, l, err, errlen) : read_pasted(c, f, err, errlen)) != RLY_CLIENT_OK)
        return ret;
    if ((pt = rly_unlock(f->release, strlen(f->release), f->session, locked, strlen(locked), &ptlen)) == NULL) {
        fail(err, errlen,
             "bad release key: the locked result does not open with the release key %s (the key of another sign-in, "
             "mistyped, or the result was tampered with)",
             l != NULL ? "the browser brought" : "pasted");
        return RLY_CLIENT_BAD_SEAL;
    }
    opened = parse_object(pt, ptlen);
    OPENSSL_cleanse(pt, ptlen);
    free(pt);
    if (opened == NULL) {
        fail(err, errlen, "relay error: the unlocked result is not a JSON object");
        return RLY_CLIENT_FAILED;
    }
    json_object_put(*result);
    *result = opened;
    return RLY_CLIENT_OK;
}

static void print_json(FILE *out, json_object *o)
{
    fprintf(out, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    fflush(out);
}

rly_client_status_t rly_client_authorize(const rly_client_opts_t *o, FILE *out, FILE *diag, char *err, size_t errlen)
{
    client_t c = {o, diag, NULL, 0};
    flow_t *f = calloc(1, sizeof(*f));
    listener_t *l = NULL;
    json_object *result = NULL, *token = NULL;
    char challenge[RLY_PKCE_CHALLENGE_LEN + 1];
    char *url = NULL;
    const char *status, *v;
    rly_client_status_t ret = RLY_CLIENT_FAILED;
    int have_session = 0, curl_inited = 0;

    err[0] = '\0';
    if (f == NULL) {
        fail(err, errlen, "out of memory");
        goto Exit;
    }
    f->bound = !o->unbound;
    if (o->client_secret_file != NULL && read_secret(o->client_secret_file, f->secret, sizeof(f->secret), err, errlen) != 0)
        goto Exit;
    /* the return_uri names the listener's port: bound before the session exists */
    if (f->bound && !o->no_listen &&
        (l = listener_open(o->listen_port, diag, f->return_uri, sizeof(f->return_uri), err, errlen)) == NULL)
        goto Exit;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fail(err, errlen, "cannot initialise libcurl");
        goto Exit;
    }
    curl_inited = 1;
    if ((c.h = curl_easy_init()) == NULL) {
        fail(err, errlen, "cannot initialise libcurl");
        goto Exit;
    }
    if (o->insecure)
        fputs("authrelay client: warning: --insecure: TLS certificates of loopback hosts are not checked\n", diag);

    if ((ret = discover(&c, f, err, errlen)) != RLY_CLIENT_OK)
        goto Exit;
    ret = RLY_CLIENT_FAILED;
    if (o->pkce) {
        if (rly_pkce_verifier(f->verifier) != 0) {
            fail(err, errlen, "cannot generate the PKCE verifier");
            goto Exit;
        }
        rly_pkce_challenge(f->verifier, strlen(f->verifier), challenge);
    }
    if ((ret = create_session(&c, f, o->pkce ? challenge : NULL, err, errlen)) != RLY_CLIENT_OK)
        goto Exit;
    have_session = 1;
    ret = RLY_CLIENT_FAILED;

    if (f->bound) {
        if (l != NULL && listener_start(l, f->session, err, errlen) != 0)
            goto Exit;
        url = strdup(f->start_url);
    } else {
        url = rly_client_authorize_url(o, f->redirect_uri, f->state, o->pkce ? challenge : NULL);
    }
    if (url == NULL) {
        fail(err, errlen, "out of memory");
        goto Exit;
    }
    if (o->on_authorize_url != NULL)
        o->on_authorize_url(url, o->ud);

    if ((ret = pickup(&c, f, &result, err, errlen)) != RLY_CLIENT_OK) {
        if (ret == RLY_CLIENT_EXPIRED)
            have_session = 0; /* nothing left to delete */
        goto Exit;
    }
    if ((ret = unseal_result(&c, f, &result, err, errlen)) != RLY_CLIENT_OK)
        goto Exit;
    if (f->bound && (ret = open_bound(&c, f, l, &result, err, errlen)) != RLY_CLIENT_OK)
        goto Exit;
    ret = RLY_CLIENT_FAILED;
    /* a version-1 result carries the session's state; a 1.1 one the state the relay minted, unknown here */
    if (!f->bound && (v = jstr(result, "state")) != NULL && strcmp(v, f->state) != 0) {
        fail(err, errlen, "relay error: the result's state is not the session's");
        goto Exit;
    }
    status = jstr(result, "status");
    if (status != NULL && strcmp(status, "denied") == 0) {
        const char *e = jstr(result, "error"), *d = jstr(result, "error_description");
        print_json(out, result);
        fail(err, errlen, "denied: %.200s%s%.600s%s", e != NULL ? e : "(no error code)", d != NULL ? " (" : "", d != NULL ? d : "",
             d != NULL ? ")" : "");
        ret = RLY_CLIENT_DENIED;
        goto Exit;
    }
    if (status == NULL || strcmp(status, "authorized") != 0 || (v = jstr(result, "code")) == NULL || *v == '\0') {
        fail(err, errlen, "relay error: the pickup result is neither authorized with a code nor denied");
        goto Exit;
    }
    if (o->token_url != NULL) {
        if ((ret = exchange(&c, f, v, &token, err, errlen)) != RLY_CLIENT_OK)
            goto Exit;
        print_json(out, token);
    } else {
        print_json(out, result);
    }
    ret = RLY_CLIENT_OK;

Exit:
    if (have_session) {
        if (c.o->cancel != NULL && *c.o->cancel != 0 && ret == RLY_CLIENT_FAILED)
            fail(err, errlen, "interrupted; the session was deleted");
        delete_session(&c, f);
    }
    /* a browser that brought the release key is on its way to the done page: it gets a moment to fetch it */
    listener_free(l, cancelled(&c) ? 0 : RLY_CLIENT_RETURN_LINGER_MS);
    json_object_put(token);
    json_object_put(result);
    free(url);
    if (c.h != NULL)
        curl_easy_cleanup(c.h);
    if (curl_inited)
        curl_global_cleanup();
    if (f != NULL) {
        free(f->redirect_uri);
        free(f->poll_url);
        free(f->sessions_endpoint);
        free(f->start_url);
        OPENSSL_cleanse(f, sizeof(*f));
        free(f);
    }
    return ret;
}
