/* audit.c: checks anonymous log lines against the schema of protocol.md and for identifying data, and counts them */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include "rly.h"
#include "audit.h"
#include "logmsg.h"
#include "url.h"

#define AUDIT_LINE_MAX (64 * 1024)
#define AUDIT_TOTALS_MAX 4096
#define AUDIT_INDEX_SIZE 8192 /* a power of two, at least twice AUDIT_TOTALS_MAX */
#define AUDIT_IDENT_MAX 32
#define AUDIT_MSG_MAX RLY_LOGMSG_MAX
#define AUDIT_ALLOW_AS_MAX 256 /* entries given with rly_audit_allow_as: the allow-lists of a few relays */
#define AUDIT_VERSION_MAX 64
#define AUDIT_TOKEN_RUN 20
#define AUDIT_NONE "-"
#define AUDIT_BAD "(invalid)"

typedef struct st_total_t {
    char as[RLY_AS_ID_MAX + 1];
    char event[AUDIT_IDENT_MAX + 1];
    char outcome[AUDIT_IDENT_MAX + 1];
    unsigned long long count;
} total_t;

struct st_rly_audit_t {
    struct json_tokener *_tok;
    unsigned long long _lines;
    unsigned long long _violations;
    total_t *_totals; /* in order of first appearance */
    size_t _ntotals;
    size_t _cap;
    unsigned long long _other;         /* lines whose key came after AUDIT_TOTALS_MAX distinct ones */
    uint16_t _index[AUDIT_INDEX_SIZE]; /* 1 + position in _totals; 0 empty */
    char **_allow_as;                  /* the allow-list "as" is checked against (lower-case entries); none: any entry */
    size_t _nallow_as;
};

enum {
    KEY_TS,
    KEY_LEVEL,
    KEY_EVENT,
    KEY_AS,
    KEY_OUTCOME,
    KEY_MS,
    KEY_MSG,
    KEY_VERSION,
    KEY_COUNT,
};

static const char *const key_names[KEY_COUNT] = {"ts", "level", "event", "as", "outcome", "ms", "msg", "version"};

rly_audit_t *rly_audit_new(void)
{
    rly_audit_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        goto Error;
    if ((a->_tok = json_tokener_new_ex(RLY_JSON_DEPTH_MAX)) == NULL)
        goto Error;
    json_tokener_set_flags(a->_tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    return a;

Error:
    rly_audit_free(a);
    return NULL;
}

void rly_audit_free(rly_audit_t *a)
{
    if (a == NULL)
        return;
    if (a->_tok != NULL)
        json_tokener_free(a->_tok);
    for (size_t i = 0; i != a->_nallow_as; ++i)
        free(a->_allow_as[i]);
    free(a->_allow_as);
    free(a->_totals);
    free(a);
}

/* ---- patterns of identifying data; each takes (s, n) and returns 1 when it finds one ---- */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}

static int is_lower(char c)
{
    return c >= 'a' && c <= 'z';
}

static int is_alnum(char c)
{
    return is_digit(c) || is_upper(c) || is_lower(c);
}

static int is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_b64url(char c)
{
    return is_alnum(c) || c == '-' || c == '_';
}

/* a dotted number of exactly four groups of 1-3 digits, each at most 255 ("1.2.3.4.5" is a longer number, not one) */
static int has_ipv4(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (!is_digit(s[i])) {
            i++;
            continue;
        }
        int groups = 0, ok = 1;
        for (;;) {
            size_t start = i;
            unsigned value = 0;
            while (i < n && is_digit(s[i])) {
                if (i - start < 3)
                    value = value * 10 + (unsigned)(s[i] - '0');
                i++;
            }
            if (i - start > 3 || value > 255)
                ok = 0;
            groups++;
            if (i + 1 < n && s[i] == '.' && is_digit(s[i + 1])) {
                i++;
                continue;
            }
            break;
        }
        if (groups == 4 && ok)
            return 1;
    }
    return 0;
}

/*
 * In a run of hex digits and colons: "::" anywhere, or at least four groups of 1-4 hex digits (an address, a prefix, a
 * MAC). Three groups are left alone: "05:38:48" is the time of day in every ts.
 */
static int has_ipv6(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t start = i, colons = 0, group = 0;
        int groups_ok = 1, compressed = 0;
        while (i < n && (is_hex(s[i]) || s[i] == ':')) {
            if (s[i] == ':') {
                if (i > start && s[i - 1] == ':')
                    compressed = 1;
                if (group == 0 || group > 4)
                    groups_ok = 0;
                colons++;
                group = 0;
            } else {
                group++;
            }
            i++;
        }
        if (i == start) {
            i++;
            continue;
        }
        if (group == 0 || group > 4)
            groups_ok = 0;
        if (compressed || (colons >= 3 && groups_ok))
            return 1;
    }
    return 0;
}

static int is_email_local(char c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

static int is_label_char(char c)
{
    return is_alnum(c) || c == '-';
}

/* local@domain.tld */
static int has_email(const char *s, size_t n)
{
    for (size_t at = 0; at < n; at++) {
        if (s[at] != '@' || at == 0 || !is_email_local(s[at - 1]))
            continue;
        size_t i = at + 1, labels = 0;
        for (;;) {
            size_t start = i;
            while (i < n && is_label_char(s[i]))
                i++;
            if (i == start)
                break;
            labels++;
            if (i + 1 < n && s[i] == '.' && is_label_char(s[i + 1])) {
                i++;
                continue;
            }
            break;
        }
        if (labels >= 2)
            return 1;
    }
    return 0;
}

/*
 * A host name in free text: two labels or more of [A-Za-z0-9-] joined by single dots, the last one with a letter
 * ("acme.okta.com", "sso.acme.com"; not "5.0" or "1.2.3"). For texts only (a msg): a whole line's as holds one.
 */
static int has_host(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t labels = 0;
        int letter = 0;
        if (!is_label_char(s[i])) {
            i++;
            continue;
        }
        for (;;) {
            letter = 0;
            while (i < n && is_label_char(s[i])) {
                letter |= is_upper(s[i]) || is_lower(s[i]);
                i++;
            }
            labels++;
            if (i + 1 < n && s[i] == '.' && is_label_char(s[i + 1])) {
                i++;
                continue;
            }
            break;
        }
        if (labels >= 2 && letter)
            return 1;
    }
    return 0;
}

static size_t b64url_run(const char *s, size_t n, size_t i)
{
    size_t start = i;
    while (i < n && is_b64url(s[i]))
        i++;
    return i - start;
}

/* eyJ... . ... . ... : three base64url segments (the third may be empty: alg "none"), the first a JSON object */
static int has_jwt(const char *s, size_t n)
{
    for (size_t i = 0; i + 3 <= n; i++) {
        if (memcmp(s + i, "eyJ", 3) != 0 || (i > 0 && is_b64url(s[i - 1])))
            continue;
        size_t j = i + b64url_run(s, n, i);
        if (j >= n || s[j] != '.')
            continue;
        size_t len2 = b64url_run(s, n, j + 1);
        if (len2 == 0 || j + 1 + len2 >= n || s[j + 1 + len2] != '.')
            continue;
        return 1;
    }
    return 0;
}

/*
 * A run of at least AUDIT_TOKEN_RUN base64 / base64url characters with both upper and lower case letters (a session id,
 * a poll token, a state, a code), or of hex digits with both digits and letters (a hash, a key). Lower case and digits
 * alone are left alone: that is what host names look like ("dev-7o4b1cm2ozjkacl6.us.auth0.com").
 */
static int has_token(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        int upper = 0, lower = 0;
        while (i < n && (is_b64url(s[i]) || s[i] == '+' || s[i] == '/')) {
            upper |= is_upper(s[i]);
            lower |= is_lower(s[i]);
            i++;
        }
        if (i - start >= AUDIT_TOKEN_RUN && upper && lower)
            return 1;
        if (i == start)
            i++;
    }
    i = 0;
    while (i < n) {
        size_t start = i;
        int digit = 0, letter = 0;
        while (i < n && is_hex(s[i])) {
            if (is_digit(s[i]))
                digit = 1;
            else
                letter = 1;
            i++;
        }
        if (i - start >= AUDIT_TOKEN_RUN && digit && letter)
            return 1;
        if (i == start)
            i++;
    }
    return 0;
}

static int url_end(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '"' || c == '\'' || c == '<' || c == '>' || c == '\\';
}

/* scheme://host followed by a '/', '?' or '#' before the URL ends */
static int has_url_path(const char *s, size_t n)
{
    for (size_t i = 1; i + 3 <= n; i++) {
        if (memcmp(s + i, "://", 3) != 0 || !is_alnum(s[i - 1]))
            continue;
        for (size_t j = i + 3; j < n && !url_end(s[j]); j++) {
            if (s[j] == '/' || s[j] == '?' || s[j] == '#')
                return 1;
        }
    }
    return 0;
}

/* "Bearer " in any case */
static int has_bearer(const char *s, size_t n)
{
    static const char word[] = "bearer";
    for (size_t i = 0; i + sizeof(word) <= n; i++) {
        size_t k = 0;
        while (k < sizeof(word) - 1 && (s[i + k] | 0x20) == word[k])
            k++;
        if (k == sizeof(word) - 1 && (s[i + k] == ' ' || s[i + k] == '\t'))
            return 1;
    }
    return 0;
}

/* the first kind of identifying data found in s, or NULL */
static const char *scan_text(const char *s, size_t n)
{
    if (has_jwt(s, n))
        return "JWT-like token";
    if (has_url_path(s, n))
        return "URL with path or query";
    if (has_email(s, n))
        return "e-mail address";
    if (has_bearer(s, n))
        return "Bearer token";
    if (has_ipv6(s, n))
        return "IPv6 address";
    if (has_ipv4(s, n))
        return "IPv4 address";
    if (has_token(s, n))
        return "long random token";
    return NULL;
}

const char *rly_audit_text_scan(const char *s, size_t n)
{
    const char *why = scan_text(s, n);
    if (why == NULL && has_host(s, n))
        why = "host name";
    return why;
}

/* ---- value shapes ---- */

static int is_ident(const char *s, size_t n)
{
    if (n < 1 || n > AUDIT_IDENT_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!(is_lower(s[i]) || is_digit(s[i]) || s[i] == '_'))
            return 0;
    }
    return 1;
}

static int is_unlisted(const char *s, size_t n)
{
    return n == sizeof(RLY_AS_UNLISTED) - 1 && memcmp(s, RLY_AS_UNLISTED, n) == 0;
}

int rly_audit_value_ok(const char *key, const char *s, size_t n)
{
    if (s == NULL || scan_text(s, n) != NULL)
        return 0;
    if (strcmp(key, "event") == 0 || strcmp(key, "outcome") == 0)
        return is_ident(s, n);
    if (strcmp(key, "as") == 0) /* an allow-list entry, or "unlisted": never a tenant's host that an entry matched */
        return rly_url_as_entry_ok(s, n) || is_unlisted(s, n);
    return 0;
}

/* 1 if s[0..n) is one of the entries given with rly_audit_allow_as */
static int allow_listed(const rly_audit_t *a, const char *s, size_t n)
{
    for (size_t i = 0; i != a->_nallow_as; ++i) {
        if (strlen(a->_allow_as[i]) == n && memcmp(a->_allow_as[i], s, n) == 0)
            return 1;
    }
    return 0;
}

/* an AS identifier the log may hold: with an allow-list given, one of its entries or "unlisted"; without, any entry */
static int as_ok(const rly_audit_t *a, const char *s, size_t n)
{
    if (!rly_audit_value_ok("as", s, n))
        return 0;
    return a->_nallow_as == 0 || is_unlisted(s, n) || allow_listed(a, s, n);
}

int rly_audit_allow_as(rly_audit_t *a, const char *list, const char **errstr)
{
    const char *p = list;
    char *entry = NULL;

    for (;;) {
        size_t len = strcspn(p, ",");
        if (len == 0) {
            *errstr = "empty entry";
            goto Error;
        }
        if (len > RLY_AS_ID_MAX || (entry = strndup(p, len)) == NULL) {
            *errstr = len > RLY_AS_ID_MAX ? "not an allow-list entry (a host, an IP address or *.suffix)" : "out of memory";
            goto Error;
        }
        for (size_t i = 0; i != len; ++i)
            entry[i] = (char)tolower((unsigned char)entry[i]);
        if (!rly_url_as_entry_ok(entry, len)) {
            *errstr = "not an allow-list entry (a host, an IP address or *.suffix)";
            goto Error;
        }
        if (!allow_listed(a, entry, len)) {
            char **grown;
            if (a->_nallow_as == AUDIT_ALLOW_AS_MAX) {
                *errstr = "too many entries";
                goto Error;
            }
            if ((grown = realloc(a->_allow_as, (a->_nallow_as + 1) * sizeof(*grown))) == NULL) {
                *errstr = "out of memory";
                goto Error;
            }
            a->_allow_as = grown;
            a->_allow_as[a->_nallow_as++] = entry;
        } else {
            free(entry);
        }
        entry = NULL;
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    *errstr = NULL;
    return 0;

Error:
    free(entry);
    return -1;
}

static int digits_in(const char *s, size_t n, unsigned min, unsigned max)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return 0;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    return v >= min && v <= max;
}

/* YYYY-MM-DDTHH:MM:SS.mmmZ */
static int is_ts(const char *s, size_t n)
{
    return n == 24 && digits_in(s, 4, 0, 9999) && s[4] == '-' && digits_in(s + 5, 2, 1, 12) && s[7] == '-' &&
           digits_in(s + 8, 2, 1, 31) && s[10] == 'T' && digits_in(s + 11, 2, 0, 23) && s[13] == ':' &&
           digits_in(s + 14, 2, 0, 59) && s[16] == ':' && digits_in(s + 17, 2, 0, 60) && s[19] == '.' &&
           digits_in(s + 20, 3, 0, 999) && s[23] == 'Z';
}

static int is_level(const char *s, size_t n)
{
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        if (strlen(levels[i]) == n && memcmp(levels[i], s, n) == 0)
            return 1;
    }
    return 0;
}

/* code points, not bytes (json-c has checked the UTF-8) */
static size_t utf8_chars(const char *s, size_t n)
{
    size_t chars = 0;
    for (size_t i = 0; i < n; i++)
        chars += ((unsigned char)s[i] & 0xc0) != 0x80;
    return chars;
}

static const char *check_shape(const rly_audit_t *a, int key, struct json_object *v)
{
    static const char *const bad[KEY_COUNT] = {"bad ts",      "bad level", "bad event", "bad as",
                                               "bad outcome", "bad ms",    "bad msg",   "bad version"};
    const char *s;
    size_t n;
    int ok;

    if (key == KEY_MS) {
        ok = json_object_is_type(v, json_type_int) && json_object_get_int64(v) >= 0;
        return ok ? NULL : bad[key];
    }
    if (!json_object_is_type(v, json_type_string))
        return bad[key];
    s = json_object_get_string(v);
    n = (size_t)json_object_get_string_len(v);
    switch (key) {
    case KEY_TS:
        ok = is_ts(s, n);
        break;
    case KEY_LEVEL:
        ok = is_level(s, n);
        break;
    case KEY_EVENT:
    case KEY_OUTCOME:
        ok = is_ident(s, n);
        break;
    case KEY_AS:
        ok = as_ok(a, s, n);
        break;
    case KEY_MSG: /* one of the relay's fixed texts, and nothing else */
        if (utf8_chars(s, n) > AUDIT_MSG_MAX)
            return bad[key];
        return rly_logmsg_find(s, n) != NULL ? NULL : "unknown msg";
    default: /* KEY_VERSION */
        ok = n >= 1 && n <= AUDIT_VERSION_MAX;
        break;
    }
    return ok ? NULL : bad[key];
}

static int key_of(const char *name)
{
    for (int k = 0; k < KEY_COUNT; k++) {
        if (strcmp(name, key_names[k]) == 0)
            return k;
    }
    return -1;
}

/*
 * Walks the raw members of a valid flat JSON object (strings followed by ':' are its keys): -1 if a key is not spelled
 * exactly as one of the allow-list (an escape, an embedded NUL), else the number of members, duplicates included.
 */
static long raw_members(const char *line, size_t len)
{
    long members = 0;
    for (size_t i = 0; i < len; i++) {
        if (line[i] != '"')
            continue;
        size_t start = ++i;
        for (; i < len && line[i] != '"'; i++) {
            if (line[i] == '\\')
                i++;
        }
        size_t j = i + 1;
        while (j < len && (line[j] == ' ' || line[j] == '\t' || line[j] == '\r' || line[j] == '\n'))
            j++;
        if (j >= len || line[j] != ':')
            continue;
        int known = 0;
        for (int k = 0; k < KEY_COUNT && !known; k++)
            known = strlen(key_names[k]) == i - start && memcmp(line + start, key_names[k], i - start) == 0;
        if (!known)
            return -1;
        members++;
    }
    return members;
}

/* ---- totals ---- */

/* the value to count under: the string when it is well formed and clean, AUDIT_NONE when absent, else AUDIT_BAD */
static const char *total_label(const rly_audit_t *a, struct json_object *v, int key)
{
    if (v == NULL)
        return AUDIT_NONE;
    if (check_shape(a, key, v) != NULL || scan_text(json_object_get_string(v), (size_t)json_object_get_string_len(v)) != NULL)
        return AUDIT_BAD;
    return json_object_get_string(v);
}

static uint32_t hash3(const char *as, const char *event, const char *outcome)
{
    const char *parts[3] = {as, event, outcome};
    uint32_t h = 2166136261u;
    for (int p = 0; p < 3; p++) {
        for (const char *c = parts[p]; *c != '\0'; c++)
            h = (h ^ (unsigned char)*c) * 16777619u;
        h = (h ^ 0xff) * 16777619u; /* separator: no field holds 0xff */
    }
    return h;
}

static void copy_label(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void count_total(rly_audit_t *a, const char *as, const char *event, const char *outcome)
{
    size_t slot = hash3(as, event, outcome) & (AUDIT_INDEX_SIZE - 1);
    total_t *t;

    for (; a->_index[slot] != 0; slot = (slot + 1) & (AUDIT_INDEX_SIZE - 1)) {
        t = &a->_totals[a->_index[slot] - 1];
        if (strcmp(t->as, as) == 0 && strcmp(t->event, event) == 0 && strcmp(t->outcome, outcome) == 0) {
            t->count++;
            return;
        }
    }
    if (a->_ntotals == AUDIT_TOTALS_MAX)
        goto Error;
    if (a->_ntotals == a->_cap) {
        size_t cap = a->_cap == 0 ? 16 : a->_cap * 2;
        total_t *grown = realloc(a->_totals, cap * sizeof(*grown));
        if (grown == NULL)
            goto Error;
        a->_totals = grown;
        a->_cap = cap;
    }
    t = &a->_totals[a->_ntotals++];
    copy_label(t->as, sizeof(t->as), as);
    copy_label(t->event, sizeof(t->event), event);
    copy_label(t->outcome, sizeof(t->outcome), outcome);
    t->count = 1;
    a->_index[slot] = (uint16_t)a->_ntotals;
    return;

Error: /* no slot left: counted apart */
    a->_other++;
}

/* ---- lines ---- */

static const char *check_object(const rly_audit_t *a, const char *line, size_t len, struct json_object *obj)
{
    struct json_object *values[KEY_COUNT] = {NULL}; /* NULL also for a JSON null */
    int present[KEY_COUNT] = {0};
    const char *why;
    long members;

    json_object_object_foreach(obj, name, v)
    {
        int key = key_of(name);
        if (key < 0)
            return "unknown key";
        if (json_object_is_type(v, json_type_object) || json_object_is_type(v, json_type_array))
            return "nested value";
        values[key] = v;
        present[key] = 1;
    }
    if ((members = raw_members(line, len)) < 0)
        return "unknown key";
    if (members != json_object_object_length(obj))
        return "duplicate key";
    /* the raw line sees what a duplicate hid; the decoded values see what an escape hid */
    if ((why = scan_text(line, len)) != NULL)
        return why;
    for (int k = 0; k < KEY_COUNT; k++) {
        if (values[k] != NULL && json_object_is_type(values[k], json_type_string) &&
            (why = scan_text(json_object_get_string(values[k]), (size_t)json_object_get_string_len(values[k]))) != NULL)
            return why;
    }
    if (!present[KEY_TS] || !present[KEY_LEVEL] || !present[KEY_EVENT])
        return "missing ts, level or event";
    for (int k = 0; k < KEY_COUNT; k++) {
        if (present[k] && (why = check_shape(a, k, values[k])) != NULL)
            return why;
    }
    return NULL;
}

/* what json-c lets through: a NUL byte anywhere, a raw control character inside a string (JSON wants it escaped) */
static int has_raw_control(const char *line, size_t len)
{
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c == '\0' || (in_string && c < 0x20))
            return 1;
        if (in_string && c == '\\') {
            if (i + 1 < len && (unsigned char)line[i + 1] < 0x20)
                return 1;
            i++;
        } else if (c == '"')
            in_string = !in_string;
    }
    return 0;
}

static struct json_object *member(struct json_object *obj, const char *name)
{
    struct json_object *v = NULL;
    return json_object_object_get_ex(obj, name, &v) ? v : NULL;
}

int rly_audit_line(rly_audit_t *a, const char *line, size_t len, const char **errstr)
{
    struct json_object *obj = NULL;

    a->_lines++;
    *errstr = NULL;
    if (len > AUDIT_LINE_MAX) {
        *errstr = "line too long";
        goto Exit;
    }
    if (len == 0) {
        *errstr = "empty line";
        goto Exit;
    }
    if (line[0] != '{' || line[len - 1] != '}' || has_raw_control(line, len)) {
        *errstr = "not a JSON object";
        goto Exit;
    }
    json_tokener_reset(a->_tok);
    obj = json_tokener_parse_ex(a->_tok, line, (int)len);
    if (obj == NULL || json_tokener_get_error(a->_tok) != json_tokener_success || json_tokener_get_parse_end(a->_tok) != len ||
        !json_object_is_type(obj, json_type_object)) {
        *errstr = "not a JSON object";
        goto Exit;
    }
    *errstr = check_object(a, line, len, obj);
    count_total(a, total_label(a, member(obj, "as"), KEY_AS), total_label(a, member(obj, "event"), KEY_EVENT),
                total_label(a, member(obj, "outcome"), KEY_OUTCOME));

Exit:
    json_object_put(obj);
    if (*errstr == NULL)
        return 0;
    a->_violations++;
    return -1;
}

/* ---- report ---- */

static int by_as(const void *x, const void *y)
{
    const total_t *a = *(const total_t *const *)x, *b = *(const total_t *const *)y;
    int c;
    if ((c = strcmp(a->as, b->as)) != 0)
        return c;
    if ((c = strcmp(a->event, b->event)) != 0)
        return c;
    return strcmp(a->outcome, b->outcome);
}

static int by_event(const void *x, const void *y)
{
    const total_t *a = *(const total_t *const *)x, *b = *(const total_t *const *)y;
    int c;
    if ((c = strcmp(a->event, b->event)) != 0)
        return c;
    if ((c = strcmp(a->outcome, b->outcome)) != 0)
        return c;
    return strcmp(a->as, b->as);
}

void rly_audit_report(const rly_audit_t *a, FILE *out)
{
    const total_t **sorted = NULL;
    size_t i, j;

    fprintf(out, "lines: %llu, violations: %llu\n", a->_lines, a->_violations);
    if (a->_ntotals == 0 && a->_other == 0)
        goto Exit;
    if (a->_ntotals != 0 && (sorted = malloc(a->_ntotals * sizeof(*sorted))) == NULL) {
        fprintf(out, "(no memory for the totals)\n");
        goto Exit;
    }
    for (i = 0; i < a->_ntotals; i++)
        sorted[i] = &a->_totals[i];

    fprintf(out, "\nper AS, event and outcome:\n");
    fprintf(out, "  %-32s  %-32s  %12s\n", "as / event", "outcome", "lines");
    if (a->_ntotals != 0)
        qsort(sorted, a->_ntotals, sizeof(*sorted), by_as);
    for (i = 0; i < a->_ntotals; i = j) {
        unsigned long long sum = 0;
        for (j = i; j < a->_ntotals && strcmp(sorted[j]->as, sorted[i]->as) == 0; j++)
            sum += sorted[j]->count;
        fprintf(out, "  %-66s  %12llu\n", sorted[i]->as, sum);
        for (size_t k = i; k < j; k++)
            fprintf(out, "    %-30s  %-32s  %12llu\n", sorted[k]->event, sorted[k]->outcome, sorted[k]->count);
    }
    if (a->_other != 0)
        fprintf(out, "  %-66s  %12llu\n", "(other)", a->_other);

    fprintf(out, "\nper event and outcome:\n");
    fprintf(out, "  %-32s  %-32s  %12s\n", "event", "outcome", "lines");
    if (a->_ntotals != 0)
        qsort(sorted, a->_ntotals, sizeof(*sorted), by_event);
    for (i = 0; i < a->_ntotals; i = j) {
        unsigned long long sum = 0;
        for (j = i; j < a->_ntotals && strcmp(sorted[j]->event, sorted[i]->event) == 0 &&
                    strcmp(sorted[j]->outcome, sorted[i]->outcome) == 0;
             j++)
            sum += sorted[j]->count;
        fprintf(out, "  %-32s  %-32s  %12llu\n", sorted[i]->event, sorted[i]->outcome, sum);
    }
    if (a->_other != 0)
        fprintf(out, "  %-66s  %12llu\n", "(other)", a->_other);

Exit:
    free(sorted);
}

/* a line whose text is not looked at (empty, too long): a violation, in no total */
static void count_violation(rly_audit_t *a, FILE *out, unsigned long long lineno, const char *why)
{
    a->_lines++;
    a->_violations++;
    fprintf(out, "line %llu: %s\n", lineno, why);
}

int rly_audit_run(rly_audit_t *a, FILE *in, FILE *out)
{
    char *buf = malloc(AUDIT_LINE_MAX);
    unsigned long long lineno = 0, pending_empty = 0;
    int ret = 1;

    if (buf == NULL) {
        fprintf(out, "audit: out of memory\n");
        goto Exit;
    }
    for (;;) {
        size_t len = 0;
        int c, too_long = 0;
        const char *why;
        while ((c = getc(in)) != EOF && c != '\n') {
            if (len < AUDIT_LINE_MAX)
                buf[len++] = (char)c;
            else
                too_long = 1;
        }
        if (c == EOF && len == 0)
            break;
        lineno++;
        /* an empty line is a violation unless it is the last one */
        if (pending_empty != 0) {
            count_violation(a, out, pending_empty, "empty line");
            pending_empty = 0;
        }
        if (too_long)
            count_violation(a, out, lineno, "line too long");
        else if (len == 0)
            pending_empty = lineno;
        else if (rly_audit_line(a, buf, len, &why) != 0)
            fprintf(out, "line %llu: %s\n", lineno, why);
        if (c == EOF)
            break;
    }
    if (ferror(in)) {
        fprintf(out, "audit: read error after line %llu\n", lineno);
        rly_audit_report(a, out);
        goto Exit;
    }
    rly_audit_report(a, out);
    ret = a->_violations != 0;

Exit:
    free(buf);
    return ret;
}
