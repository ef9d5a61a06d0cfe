/* session_req.c: validation of the POST /v1/sessions request body (strict JSON via json-c plus a lexical second pass) */
#include <json-c/json.h>
#include <string.h>

#include "b64url.h"
#include "session_req.h"
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

/*
 * Second pass over a body json-c has already accepted as one object (so brackets balance and strings end). It exists
 * because json-c 0.16, even with JSON_TOKENER_STRICT:
 *  - keeps only the last of duplicated keys, so json_object_object_length() cannot see duplicates; we count the
 *    top-level keys here (a key is the string after the top-level '{' or a top-level ','), and the caller compares: fewer
 *    keys in the object than in the text means a duplicate, however it was spelled ("ttl" and "tt\u006c" included, since
 *    json-c unescapes before merging);
 *  - cuts a key at an escaped NUL ("ttl\u0000x" would read as "ttl"), so a top-level key containing \u0000 is rejected;
 *  - accepts single-quoted strings, raw control bytes inside strings, Infinity, NaN, "1." and "-01", which RFC 8259 does
 *    not; every bare token must be true, false, null or an RFC 8259 number.
 * Returns 0 and *nkeys, or -1.
 */
static int strict_scan(const char *s, size_t len, size_t *nkeys)
{
    size_t i = 0, depth = 0, keys = 0;
    int expect_key = 0;

    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (is_json_ws(c) || c == ':') {
            i++;
        } else if (c == '{' || c == '[') {
            if (++depth == 1)
                expect_key = c == '{';
            i++;
        } else if (c == '}' || c == ']') {
            if (depth-- == 0)
                return -1;
            i++;
        } else if (c == ',') {
            if (depth == 1)
                expect_key = 1;
            i++;
        } else if (c == '"') {
            int is_key = depth == 1 && expect_key;
            if (is_key) {
                keys++;
                expect_key = 0;
            }
            for (i++; i < len && s[i] != '"';) {
                if ((unsigned char)s[i] < 0x20)
                    return -1;
                if (s[i] != '\\') {
                    i++;
                } else if (i + 1 < len && s[i + 1] == 'u') {
                    if (len - i < 6 || (is_key && memcmp(s + i + 2, "0000", 4) == 0))
                        return -1;
                    i += 6;
                } else {
                    i += 2;
                }
            }
            if (i >= len)
                return -1;
            i++;
        } else {
            size_t start = i;
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
    return 0;
}

/* 0: absent or JSON null; 1: present with the expected type (*v set); -1: present with another type */
static int get_member(json_object *root, const char *name, json_type type, json_object **v)
{
    if (!json_object_object_get_ex(root, name, v) || *v == NULL)
        return 0;
    return json_object_is_type(*v, type) ? 1 : -1;
}

rly_session_req_status_t rly_session_req_parse(const char *body, size_t len, const rly_session_policy_t *pol,
                                               rly_session_req_t *out, const char **errstr)
{
    rly_session_req_status_t ret = RLY_SREQ_INVALID;
    json_tokener *tok = NULL;
    json_object *root = NULL, *v;
    size_t nkeys, i;
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
    if (strict_scan(body, len, &nkeys) != 0) {
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
    if (rly_url_check_as(json_object_get_string(v), (size_t)json_object_get_string_len(v), pol->allow_http_loopback, out->as_host,
                         sizeof(out->as_host), errstr) != 0)
        goto Exit;

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

    /* the allow-list last: a malformed request is 400 whatever its authorization server */
    if (pol->allow_as != NULL && pol->allow_as_count != 0) {
        for (i = 0; i != pol->allow_as_count; i++)
            if (strcmp(pol->allow_as[i], out->as_host) == 0)
                break;
        if (i == pol->allow_as_count) {
            *errstr = "the authorization server is not allowed";
            ret = RLY_SREQ_NOT_ALLOWED;
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
