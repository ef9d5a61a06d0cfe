/* test_logmsg.c: the relay's fixed log texts: no duplicates, nothing identifying, a placeholder, and exactly the texts
 * the sources pass to rly_log_msg */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "rly.h"
#include "audit.h"
#include "logmsg.h"

static void test_no_duplicates(void **state)
{
    size_t n;
    const char *const *texts = rly_logmsg_list(&n);
    (void)state;
    assert_true(n > 1);
    for (size_t i = 0; i != n; ++i) {
        for (size_t j = i + 1; j != n; ++j) {
            if (strcmp(texts[i], texts[j]) == 0)
                fail_msg("\"%s\" is on the list twice", texts[i]);
        }
    }
}

/* printable ASCII written as it is in JSON (no quote, no backslash), trimmed, at most RLY_LOGMSG_MAX bytes, and nothing
 * the auditor's patterns take for identifying data: addresses, host names, e-mail addresses, tokens, URLs */
static void test_texts_are_anonymous(void **state)
{
    size_t n;
    const char *const *texts = rly_logmsg_list(&n);
    (void)state;
    for (size_t i = 0; i != n; ++i) {
        const char *t = texts[i], *why;
        size_t len = strlen(t);
        if (len == 0 || len > RLY_LOGMSG_MAX)
            fail_msg("\"%s\": %zu bytes (1 to %d)", t, len, RLY_LOGMSG_MAX);
        for (size_t k = 0; k != len; ++k) {
            if (t[k] < 0x20 || t[k] > 0x7e || t[k] == '"' || t[k] == '\\')
                fail_msg("\"%s\": byte %zu is not printable ASCII without quotes and backslashes", t, k);
        }
        if (t[0] == ' ' || t[len - 1] == ' ')
            fail_msg("\"%s\": a blank at either end", t);
        if ((why = rly_audit_text_scan(t, len)) != NULL)
            fail_msg("\"%s\": the auditor finds a %s in it", t, why);
        assert_ptr_equal(rly_logmsg_find(t, len), t);
    }
}

/* the patterns the test above relies on do find what they are for */
static void test_patterns_find(void **state)
{
    static const struct {
        const char *text, *why;
    } cases[] = {
        {"acme.okta.com", "host name"},
        {"callback from sso.acme.com now", "host name"},
        {"Auth.Atlassian.COM", "host name"},
        {"client 203.0.113.7", "IPv4 address"},
        {"from 2001:db8::1", "IPv6 address"},
        {"jane.doe@example.com", "e-mail address"},
        {"see https://relay.example/v1/sessions", "URL with path or query"},
        {"Bearer abc", "Bearer token"},
        {"Xq3vK9_pL2mN8rT1wY5zAb", "long random token"},
        {"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "JWT-like token"},
        {"see e.g. the log", "host name"}, /* strict: no listed text needs an abbreviation */
    };
    static const char *const clean[] = {
        "Mozilla/5.0 (X11; Linux x86_64)", "HTTP/2", "1.2.3", "version 5.0", "a . b", "time 05:38:48", "listening"};
    (void)state;
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        const char *got = rly_audit_text_scan(cases[i].text, strlen(cases[i].text));
        if (got == NULL || strcmp(got, cases[i].why) != 0)
            fail_msg("\"%s\": expected %s, got %s", cases[i].text, cases[i].why, got != NULL ? got : "nothing");
    }
    for (size_t i = 0; i != sizeof(clean) / sizeof(clean[0]); ++i) {
        const char *got = rly_audit_text_scan(clean[i], strlen(clean[i]));
        if (got != NULL)
            fail_msg("\"%s\": expected nothing, got %s", clean[i], got);
    }
}

static void test_placeholder_and_find(void **state)
{
    size_t n, found = 0;
    const char *const *texts = rly_logmsg_list(&n);
    const char *w = rly_logmsg_find(RLY_LOGMSG_WITHHELD, strlen(RLY_LOGMSG_WITHHELD));
    char longer[RLY_LOGMSG_MAX + 16];
    (void)state;
    assert_non_null(w);
    for (size_t i = 0; i != n; ++i)
        found += texts[i] == w;
    assert_int_equal(found, 1);
    assert_ptr_equal(rly_logmsg_find("listening", 9), rly_logmsg_find("listening (development mode)", 9));
    assert_null(rly_logmsg_find("listening", 8));
    assert_null(rly_logmsg_find("listening ", 10));
    assert_null(rly_logmsg_find("Listening", 9));
    assert_null(rly_logmsg_find("", 0));
    assert_null(rly_logmsg_find(NULL, 0));
    assert_null(rly_logmsg_find("listening\0", 10));
    memset(longer, 'x', sizeof(longer));
    assert_null(rly_logmsg_find(longer, sizeof(longer)));
}

/* ---- the sources: every text passed to rly_log_msg, or given as a Redis connection's why, is on the list ---- */

#define FOUND_MAX 256
#define FOUND_LEN 512

typedef struct st_found_t {
    char text[FOUND_MAX][FOUND_LEN];
    char where[FOUND_MAX][128];
    size_t n;
    size_t calls;
} found_t;

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long size;
    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto Exit;
    if ((buf = malloc((size_t)size + 1)) == NULL)
        goto Exit;
    if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
        goto Exit;
    }
    buf[size] = '\0';
    *len = (size_t)size;
Exit:
    fclose(f);
    return buf;
}

static int ident_char(char c)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* past a comment, a string or a character literal that starts at s[i]; i itself when none starts there */
static size_t skip_lexeme(const char *s, size_t len, size_t i)
{
    if (i + 1 < len && s[i] == '/' && s[i + 1] == '/') {
        while (i < len && s[i] != '\n')
            i++;
        return i;
    }
    if (i + 1 < len && s[i] == '/' && s[i + 1] == '*') {
        const char *end = strstr(s + i + 2, "*/");
        return end != NULL ? (size_t)(end - s) + 2 : len;
    }
    if (s[i] == '"' || s[i] == '\'') {
        char q = s[i++];
        while (i < len && s[i] != q) {
            if (s[i] == '\\')
                i++;
            i++;
        }
        return i + 1;
    }
    return i;
}

/*
 * The call whose '(' is at s[open]: the string literals of its argument number arg (from 0) that are not nested in
 * further parentheses (adjacent literals joined, as the compiler does), into found.
 */
static void collect_arg(const char *s, size_t len, size_t open, int arg, const char *file, found_t *found)
{
    int depth = 0, index = 0, joining = 0;
    size_t i = open;
    while (i < len) {
        char c = s[i];
        size_t next = skip_lexeme(s, len, i);
        if (next != i) {
            if (c == '"' && depth == 1 && index == arg) {
                size_t body = next - i - 2;
                assert_true(found->n < FOUND_MAX);
                if (!joining)
                    found->text[found->n++][0] = '\0';
                char *t = found->text[found->n - 1];
                size_t have = strlen(t);
                assert_true(have + body < FOUND_LEN);
                memcpy(t + have, s + i + 1, body);
                t[have + body] = '\0';
                if (snprintf(found->where[found->n - 1], sizeof(found->where[0]), "%s", file) >= (int)sizeof(found->where[0]))
                    fail_msg("a long file name: %s", file);
                joining = 1;
            } else if (c != '/') {
                joining = 0;
            }
            i = next;
            continue;
        }
        if (c == '(') {
            depth++;
        } else if (c == ')') {
            if (--depth == 0)
                return;
        } else if (c == ',' && depth == 1) {
            index++;
        }
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            joining = 0;
        i++;
    }
}

/* every call of fn (an identifier followed by '(', outside comments and literals) in s */
static void scan_calls(const char *s, size_t len, const char *fn, int arg, const char *file, found_t *found)
{
    size_t fl = strlen(fn);
    for (size_t i = 0; i < len;) {
        size_t next = skip_lexeme(s, len, i);
        if (next != i) {
            i = next;
            continue;
        }
        if (ident_char(s[i]) && (i == 0 || !ident_char(s[i - 1]))) {
            size_t j = i;
            while (j < len && ident_char(s[j]))
                j++;
            if (j - i == fl && memcmp(s + i, fn, fl) == 0) {
                size_t k = j;
                while (k < len && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n'))
                    k++;
                if (k < len && s[k] == '(') {
                    found->calls++;
                    collect_arg(s, len, k, arg, file, found);
                }
            }
            i = j;
            continue;
        }
        i++;
    }
}

static void scan_dir(const char *sub, found_t *found)
{
    char dir[1024];
    DIR *d;
    struct dirent *e;
    if (snprintf(dir, sizeof(dir), "%s/%s", RLY_SOURCE_DIR, sub) >= (int)sizeof(dir))
        fail_msg("a long source directory: %s", RLY_SOURCE_DIR);
    d = opendir(dir);
    if (d == NULL)
        fail_msg("cannot open %s", dir);
    while ((e = readdir(d)) != NULL) {
        size_t nl = strlen(e->d_name), len = 0;
        char path[2048], file[128];
        if (nl < 3 || strcmp(e->d_name + nl - 2, ".c") != 0)
            continue;
        if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path) ||
            snprintf(file, sizeof(file), "%s/%s", sub, e->d_name) >= (int)sizeof(file))
            fail_msg("a long file name: %s", e->d_name);
        char *src = read_all(path, &len);
        if (src == NULL)
            fail_msg("cannot read %s", path);
        scan_calls(src, len, "rly_log_msg", 2, file, found); /* rly_log_msg(level, event, msg, with_version) */
        scan_calls(src, len, "conn_fail", 1, file, found);   /* redis_conn.c: conn_fail(c, why), why logged as store_down */
        free(src);
    }
    closedir(d);
}

static void test_sources_use_the_list(void **state)
{
    static found_t found;
    size_t n;
    const char *const *texts = rly_logmsg_list(&n);
    (void)state;

    found.n = found.calls = 0;
    scan_dir("relay", &found);
    scan_dir("common", &found);
    assert_true(found.calls >= 20); /* the scan finds the calls it is about */
    assert_true(found.n >= n - 1);
    for (size_t i = 0; i != found.n; ++i) {
        if (rly_logmsg_find(found.text[i], strlen(found.text[i])) == NULL)
            fail_msg("%s logs \"%s\", which is not on the list of common/logmsg.c (the log would say \"%s\")", found.where[i],
                     found.text[i], RLY_LOGMSG_WITHHELD);
    }
    /* and the list holds nothing the relay does not log: each text but the placeholder is in a call */
    for (size_t i = 0; i != n; ++i) {
        int used = strcmp(texts[i], RLY_LOGMSG_WITHHELD) == 0;
        for (size_t j = 0; j != found.n && !used; ++j)
            used = strcmp(found.text[j], texts[i]) == 0;
        if (!used)
            fail_msg("\"%s\" is on the list of common/logmsg.c, but no rly_log_msg or conn_fail call passes it", texts[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_duplicates),        cmocka_unit_test(test_texts_are_anonymous),
        cmocka_unit_test(test_patterns_find),        cmocka_unit_test(test_placeholder_and_find),
        cmocka_unit_test(test_sources_use_the_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
