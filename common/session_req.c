/* session_req.c: validation of the POST /v1/sessions request body (strict JSON via json-c plus a lexical second pass) */
#include <json-c/json.h>
#include <string.h>
#include <strings.h>

#include "b64url.h"
#include "session_req.h"
#include "text.h"
#include "url.h"

static int is_json_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* RFC 8259 number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int is_json_number(const char *s, size_t len)
{
    size_t i = 0, start;

    if (i < len && s[i] == '-')
        i++;
    if (i < len && s[i] == '0') {
        i++;
    } else {
        for (start = i; i < len && is_digit((unsigned char)s[i]); i++)
            ;
        if (i == start)
            return 0;
    }
    if (i < len && s[i] == '.') {
        for (start = ++i; i < len && is_digit((unsigned char)s[i]); i++)
            ;
        if (i == start)
            return 0;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        for (start = i; i < len && is_digit((unsigned char)s[i]); i++)
            ;
        if (i == start)
            return 0;
    }
    return i == len;
}

static int is_bare_token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' || c == '+' || c == '.';
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* 1 if the text of a JSON string (s, len: between the quotes, escapes not yet decoded) spells the ASCII text want */
static int json_string_is(const char *s, size_t len, const char *want)
{
    size_t i = 0, k = 0, wantlen = strlen(want);

    while (i < len) {
        unsigned c = (unsigned char)s[i];
        if (c != '\\') {
            i++;
        } else if (i + 1 < len && s[i + 1] == 'u') {
            if (len - i < 6)
                return 0;
            c = 0;
            for (size_t j = 2; j != 6; j++) {
                int d = hex_value((unsigned char)s[i + j]);
                if (d < 0)
                    return 0;
                c = c << 4 | (unsigned)d;
            }
            i += 6;
        } else if (i + 1 < len) {
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            const char *e = strchr(from, s[i + 1]);
            if (e == NULL || s[i + 1] == '\0')
                return 0;
            c = (unsigned char)to[e - from];
            i += 2;
        } else {
            return 0;
        }
        if (k == wantlen || c != (unsigned char)want[k])
            return 0;
        k++;
    }
    return k == wantlen;
}

/*
 * Second pass over a body json-c has already accepted as one object (so brackets balance and strings end). It exists
 * because json-c 0.16, even with JSON_TOKENER_STRICT:
 *  - keeps only the last of duplicated keys, so json_object_object_length() cannot see duplicates; we count the
 *    top-level keys here (a key is the string after the top-level '{' or a top-level ','), and the caller compares: fewer
 *    keys in the object than in the text means a duplicate, however it was spelled ("ttl" and "tt\u006c" included, since
 *    json-c unescapes before merging); the same for the keys of the authorize_params object (its names), counted into
 *    *ap_keys (0 when it is absent or not an object);
 *  - cuts a key at an escaped NUL ("ttl\u0000x" would read as "ttl"), so a top-level key or an authorize_params name
 *    containing \u0000 is rejected;
 *  - accepts single-quoted strings, raw control bytes inside strings, Infinity, NaN, "1." and "-01", which RFC 8259 does
 *    not; every bare token must be true, false, null or an RFC 8259 number.
 * Returns 0 and *nkeys, *ap_keys, or -1.
 */
static int strict_scan(const char *s, size_t len, size_t *nkeys, size_t *ap_keys)
{
    size_t i = 0, depth = 0, keys = 0, apkeys = 0;
    int expect_key = 0, ap_expect_key = 0;
    /* where authorize_params is: not seen (or its value was no object), its key was the last top-level key, inside its
     * object (depth 2 is its level), after it */
    enum { AP_NONE, AP_KEY, AP_IN, AP_DONE } ap = AP_NONE;

    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (is_json_ws(c) || c == ':') {
            i++;
        } else if (c == '{' || c == '[') {
            if (depth == 1 && ap == AP_KEY) {
                ap = c == '{' ? AP_IN : AP_NONE;
                ap_expect_key = 1;
                apkeys = 0;
            }
            if (++depth == 1)
                expect_key = c == '{';
            i++;
        } else if (c == '}' || c == ']') {
            if (depth == 2 && ap == AP_IN)
                ap = AP_DONE;
            if (depth-- == 0)
                return -1;
            i++;
        } else if (c == ',') {
            if (depth == 1)
                expect_key = 1;
            else if (depth == 2 && ap == AP_IN)
                ap_expect_key = 1;
            i++;
        } else if (c == '"') {
            int is_key = depth == 1 && expect_key, is_ap_key = depth == 2 && ap == AP_IN && ap_expect_key;
            size_t start = i + 1;
            if (is_key) {
                keys++;
                expect_key = 0;
            } else if (is_ap_key) {
                apkeys++;
                ap_expect_key = 0;
            } else if (depth == 1 && ap == AP_KEY) {
                ap = AP_NONE; /* a string value */
            }
            for (i++; i < len && s[i] != '"';) {
                if ((unsigned char)s[i] < 0x20)
                    return -1;
                if (s[i] != '\\') {
                    i++;
                } else if (i + 1 < len && s[i + 1] == 'u') {
                    if (len - i < 6 || ((is_key || is_ap_key) && memcmp(s + i + 2, "0000", 4) == 0))
                        return -1;
                    i += 6;
                } else {
                    i += 2;
                }
            }
            if (i >= len)
                return -1;
            if (is_key && json_string_is(s + start, i - start, "authorize_params"))
                ap = AP_KEY;
            i++;
        } else {
            size_t start = i;
            if (depth == 1 && ap == AP_KEY)
                ap = AP_NONE; /* a number, true, false or null */
            while (i < len && is_bare_token_char((unsigned char)s[i]))
                i++;
            if (i == start) /* e.g. a single quote */
                return -1;
            if (!(i - start == 4 && memcmp(s + start, "true", 4) == 0) && !(i - start == 5 && memcmp(s + start, "false", 5) == 0) &&
                !(i - start == 4 && memcmp(s + start, "null", 4) == 0) && !is_json_number(s + start, i - start))
                return -1;
        }
    }
    if (depth != 0)
        return -1;
    *nkeys = keys;
    *ap_keys = ap == AP_IN || ap == AP_DONE ? apkeys : 0;
    return 0;
}

/* 0: absent or JSON null; 1: present with the expected type (*v set); -1: present with another type */
static int get_member(json_object *root, const char *name, json_type type, json_object **v)
{
    if (!json_object_object_get_ex(root, name, v) || *v == NULL)
        return 0;
    return json_object_is_type(*v, type) ? 1 : -1;
}

/* a code point a label may hold: none of Cc, Cf, Zl (U+2028), Zp (U+2029) */
static int is_label_char(uint32_t cp)
{
    return !(rly_unicode_is_control(cp) || cp == 0x2028 || cp == 0x2029 || rly_unicode_is_format(cp));
}

/* label: 1..RLY_LABEL_MAX bytes of valid UTF-8 without Cc, Cf, Zl, Zp; 0 / -1 with *errstr */
static int check_label(const char *s, size_t len, const char **errstr)
{
    size_t i = 0;

    if (len == 0 || len > RLY_LABEL_MAX) {
        *errstr = "label must be 1 to 64 bytes";
        return -1;
    }
    while (i != len) {
        int64_t cp = rly_utf8_next(s, len, &i);
        if (cp < 0) {
            *errstr = "label is not valid UTF-8";
            return -1;
        }
        if (!is_label_char((uint32_t)cp)) {
            *errstr = "label contains control, format or line separator characters";
            return -1;
        }
    }
    return 0;
}

/* strcmp for a name that must be lower case: 0 equal; 1 equal but for letter case; -1 different */
static int name_is(const char *name, const char *want)
{
    if (strcmp(name, want) == 0)
        return 0;
    return strcasecmp(name, want) == 0 ? 1 : -1;
}

/*
 * authorize_params (1.1): each member checked and copied into out->params / params_buf in the order of the body; the
 * client_id's value into *client_id. text_keys: the names strict_scan counted in the text (more than json-c kept: a
 * duplicate). 0 / -1 with *errstr.
 */
static int parse_params(json_object *ap, size_t text_keys, rly_session_req_t *out, const char **client_id, size_t *client_id_len,
                        const char **errstr)
{
    size_t n = (size_t)json_object_object_length(ap), total = 0, used = 0;

    *client_id = NULL;
    if (n != text_keys) {
        *errstr = "authorize_params has a duplicated member";
        return -1;
    }
    if (n > RLY_AUTHORIZE_PARAMS_COUNT_MAX) {
        *errstr = "authorize_params has more than 32 members";
        return -1;
    }
    json_object_object_foreach(ap, name, val)
    {
        size_t nlen = strlen(name), vlen;
        const char *value;
        rly_param_t *p;
        int r;

        if (!rly_text_is_param_name(name, nlen)) {
            *errstr = "authorize_params has a name outside [A-Za-z0-9._-]{1,64}";
            return -1;
        }
        if (val == NULL || !json_object_is_type(val, json_type_string)) {
            *errstr = "authorize_params has a value that is not a string";
            return -1;
        }
        value = json_object_get_string(val);
        vlen = (size_t)json_object_get_string_len(val);
        if (!rly_text_is_printable_ascii(value, vlen)) {
            *errstr = "authorize_params has a value that is not printable ASCII";
            return -1;
        }
        if (nlen + vlen > RLY_AUTHORIZE_PARAMS_MAX - total) {
            *errstr = "authorize_params has more than 4096 bytes of names and values";
            return -1;
        }
        total += nlen + vlen;
        /* the relay sets these three; in any case, since some servers read names case-insensitively */
        if (name_is(name, "redirect_uri") >= 0 || name_is(name, "state") >= 0 || name_is(name, "response_type") >= 0) {
            *errstr = "authorize_params must not contain redirect_uri, state or response_type";
            return -1;
        }
        if ((r = name_is(name, "client_id")) == 1 || name_is(name, "response_mode") == 1) {
            *errstr = "authorize_params has client_id or response_mode in another letter case";
            return -1;
        }
        if (r == 0) {
            if (vlen == 0) {
                *errstr = "authorize_params.client_id is empty";
                return -1;
            }
            *client_id = value;
            *client_id_len = vlen;
        } else if (name_is(name, "response_mode") == 0 && !(vlen == 5 && memcmp(value, "query", 5) == 0) &&
                   !(vlen == 9 && memcmp(value, "form_post", 9) == 0)) {
            *errstr = "authorize_params.response_mode must be query or form_post";
            return -1;
        }
        /* total <= RLY_AUTHORIZE_PARAMS_MAX and at most RLY_AUTHORIZE_PARAMS_COUNT_MAX members: their NULs fit too */
        p = &out->params[out->nparams++];
        memcpy(out->params_buf + used, name, nlen + 1);
        p->name = out->params_buf + used;
        p->name_len = nlen;
        used += nlen + 1;
        memcpy(out->params_buf + used, value, vlen);
        out->params_buf[used + vlen] = '\0';
        p->value = out->params_buf + used;
        p->value_len = vlen;
        used += vlen + 1;
    }
    out->params_buf_len = used;
    if (*client_id == NULL) {
        *errstr = "authorize_params.client_id is missing";
        return -1;
    }
    return 0;
}

/* the extra rules for the return_uri of a bound session (rly_url_check_return has passed): no userinfo, no query */
static int check_bound_return(const char *url, size_t len, const char **errstr)
{
    const char *auth = memchr(url, '/', len);
    size_t i;

    /* after "scheme://": the authority ends at the first '/', '?' or '#' */
    if (auth == NULL || (size_t)(auth - url) + 2 > len || auth[1] != '/') {
        *errstr = "return_uri is not an absolute URL";
        return -1;
    }
    for (i = (size_t)(auth - url) + 2; i != len && url[i] != '/' && url[i] != '?' && url[i] != '#'; i++) {
        if (url[i] == '@') {
            *errstr = "return_uri must not have userinfo (protocol 1.1)";
            return -1;
        }
    }
    if (memchr(url, '?', len) != NULL) {
        *errstr = "return_uri must not have a query (protocol 1.1)";
        return -1;
    }
    return 0;
}

rly_session_req_status_t rly_session_req_parse(const char *body, size_t len, const rly_session_policy_t *pol,
                                               rly_session_req_t *out, const char **errstr)
{
    rly_session_req_status_t ret = RLY_SREQ_INVALID;
    json_tokener *tok = NULL;
    json_object *root = NULL, *v, *ap = NULL;
    const char *client_id = NULL;
    size_t nkeys, ap_keys, client_id_len = 0, i;
    char as_host[RLY_AS_HOST_MAX + 1];
    int r;

    memset(out, 0, sizeof(*out));

    if (body == NULL || len == 0 || len > RLY_SESSION_BODY_MAX) {
        *errstr = len == 0 ? "the body is empty" : "the body is too large";
        goto Exit;
    }
    if ((tok = json_tokener_new_ex(RLY_JSON_DEPTH_MAX)) == NULL) {
        *errstr = "out of memory";
        goto Exit;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    root = json_tokener_parse_ex(tok, body, (int)len);
    if (json_tokener_get_error(tok) == json_tokener_error_depth) {
        *errstr = "the body nests too deep";
        goto Exit;
    }
    /* json-c stops at the end of the first value (after trailing whitespace): anything left is trailing garbage */
    if (json_tokener_get_error(tok) != json_tokener_success || json_tokener_get_parse_end(tok) != len) {
        *errstr = "the body is not valid JSON";
        goto Exit;
    }
    if (root == NULL || !json_object_is_type(root, json_type_object)) {
        *errstr = "the body is not a JSON object";
        goto Exit;
    }
    if (strict_scan(body, len, &nkeys, &ap_keys) != 0) {
        *errstr = "the body is not valid JSON";
        goto Exit;
    }
    if (nkeys != (size_t)json_object_object_length(root)) {
        *errstr = "the body has a duplicated member";
        goto Exit;
    }

    /* authorization_server (required) */
    if ((r = get_member(root, "authorization_server", json_type_string, &v)) != 1) {
        *errstr = r == 0 ? "authorization_server is missing" : "authorization_server is not a string";
        goto Exit;
    }
    {
        const char *s = json_object_get_string(v);
        size_t slen = (size_t)json_object_get_string_len(v);
        if (rly_url_check_as(s, slen, pol->allow_http_loopback, as_host, sizeof(as_host), errstr) != 0)
            goto Exit;
        if (slen > RLY_URL_MAX) { /* rly_url_check_as has the same limit */
            *errstr = "the URL is too long";
            goto Exit;
        }
        memcpy(out->authorization_server, s, slen);
        out->authorization_server[slen] = '\0';
        out->authorization_server_len = slen;
    }

    /* return_uri */
    if ((r = get_member(root, "return_uri", json_type_string, &v)) < 0) {
        *errstr = "return_uri is not a string";
        goto Exit;
    }
    if (r == 1) {
        const char *s = json_object_get_string(v);
        size_t slen = (size_t)json_object_get_string_len(v);
        if (rly_url_check_return(s, slen, errstr) != 0)
            goto Exit;
        memcpy(out->return_uri, s, slen); /* slen <= RLY_RETURN_URI_MAX, checked above */
        out->return_uri[slen] = '\0';
        out->return_uri_len = slen;
    }

    /* seal_key */
    if ((r = get_member(root, "seal_key", json_type_string, &v)) < 0) {
        *errstr = "seal_key is not a string";
        goto Exit;
    }
    if (r == 1) {
        if (rly_b64url_decode(out->seal_key, sizeof(out->seal_key), json_object_get_string(v),
                              (size_t)json_object_get_string_len(v)) != (ssize_t)sizeof(out->seal_key)) {
            *errstr = "seal_key is not the base64url encoding of 32 bytes";
            goto Exit;
        }
        out->has_seal_key = 1;
    }

    /* ttl: a JSON integer (json-c types 60.0 and 6e1 as double) */
    out->ttl = pol->ttl_max < RLY_TTL_DEFAULT ? pol->ttl_max : RLY_TTL_DEFAULT;
    if ((r = get_member(root, "ttl", json_type_int, &v)) < 0) {
        *errstr = "ttl is not an integer";
        goto Exit;
    }
    if (r == 1) {
        int64_t ttl = json_object_get_int64(v); /* saturates: values beyond int64 stay out of range */
        if (ttl < RLY_TTL_MIN || ttl > (int64_t)pol->ttl_max) {
            *errstr = "ttl is out of range";
            goto Exit;
        }
        out->ttl = (unsigned)ttl;
    }

    /* protocol 1.1: authorize_params makes a bound flow; without it, a version-1 session if the relay still takes them */
    if ((r = get_member(root, "authorize_params", json_type_object, &ap)) < 0) {
        *errstr = "authorize_params is not an object";
        goto Exit;
    }
    if (r == 0 && !pol->allow_unbound) {
        *errstr = "authorize_params is required (protocol 1.1)";
        goto Exit;
    }
    if (r == 1) {
        if (parse_params(ap, ap_keys, out, &client_id, &client_id_len, errstr) != 0)
            goto Exit;
        out->bound = 1;
        if (out->return_uri_len == 0) {
            *errstr = "return_uri is required (protocol 1.1)";
            goto Exit;
        }
        if (check_bound_return(out->return_uri, out->return_uri_len, errstr) != 0)
            goto Exit;
        if ((r = get_member(root, "label", json_type_string, &v)) < 0) {
            *errstr = "label is not a string";
            goto Exit;
        }
        if (r == 1) {
            const char *s = json_object_get_string(v);
            size_t slen = (size_t)json_object_get_string_len(v);
            if (check_label(s, slen, errstr) != 0)
                goto Exit;
            memcpy(out->label, s, slen); /* slen <= RLY_LABEL_MAX, checked above */
            out->label[slen] = '\0';
            out->label_len = slen;
        }
    }

    /* the allow-lists last: a malformed request is 400 whatever its authorization server or client */
    /* the anonymous AS identifier: the entry that matched, never the host (a tenant's host names the tenant) */
    if (pol->allow_as != NULL && pol->allow_as_count != 0) {
        const char *entry = rly_url_as_match(as_host, pol->allow_as, pol->allow_as_count);
        if (entry == NULL || strlen(entry) >= sizeof(out->as_id)) {
            *errstr = "the authorization server is not allowed";
            ret = RLY_SREQ_NOT_ALLOWED;
            goto Exit;
        }
        memcpy(out->as_id, entry, strlen(entry) + 1);
    } else {
        memcpy(out->as_id, RLY_AS_UNLISTED, sizeof(RLY_AS_UNLISTED));
    }
    if (out->bound && pol->allow_client_id != NULL && pol->allow_client_id_count != 0) {
        for (i = 0; i != pol->allow_client_id_count; i++)
            if (strlen(pol->allow_client_id[i]) == client_id_len && memcmp(pol->allow_client_id[i], client_id, client_id_len) == 0)
                break;
        if (i == pol->allow_client_id_count) {
            *errstr = "the client_id is not allowed";
            ret = RLY_SREQ_CLIENT_NOT_ALLOWED;
            goto Exit;
        }
    }
    ret = RLY_SREQ_OK;

Exit:
    json_object_put(root);
    if (tok != NULL)
        json_tokener_free(tok);
    if (ret != RLY_SREQ_OK)
        memset(out, 0, sizeof(*out));
    return ret;
}
