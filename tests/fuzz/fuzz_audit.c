/* fuzz_audit.c: libFuzzer target for the log auditor (rly_audit_line and rly_audit_run, common/audit.c), line by line */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                                                \
    do {                                                                                                                           \
        if (!(cond))                                                                                                               \
            abort();                                                                                                               \
    } while (0)

#define ALLOW_AS "auth.atlassian.com,*.okta.com"

/* every reason rly_audit_line gives (audit.h): fixed texts, never a piece of the line */
static const char *const reasons[] = {
    "line too long",
    "empty line",
    "not a JSON object",
    "unknown key",
    "nested value",
    "duplicate key",
    "JWT-like token",
    "URL with path or query",
    "e-mail address",
    "Bearer token",
    "IPv6 address",
    "IPv4 address",
    "long random token",
    "missing ts, level or event",
    "bad ts",
    "bad level",
    "bad event",
    "bad as",
    "bad outcome",
    "bad ms",
    "bad msg",
    "bad version",
    "unknown msg",
};

static const char *reason(const char *why)
{
    for (size_t i = 0; i != sizeof(reasons) / sizeof(reasons[0]); ++i)
        if (why == reasons[i] || (why != NULL && strcmp(why, reasons[i]) == 0))
            return reasons[i];
    return NULL;
}

static rly_audit_t *any_as, *listed_as;

static void init(void)
{
    const char *errstr = NULL;

    if (any_as != NULL)
        return;
    CHECK((any_as = rly_audit_new()) != NULL && (listed_as = rly_audit_new()) != NULL);
    CHECK(rly_audit_allow_as(listed_as, ALLOW_AS, &errstr) == 0 && errstr == NULL);
}

/* one line (no '\n'): the verdict is one of the fixed reasons or clean, the same twice, and an allow-list only narrows */
static const char *check_line(const char *line, size_t len)
{
    const char *why = NULL, *again = NULL, *listed = NULL, *scan;
    int r = rly_audit_line(any_as, line, len, &why);

    CHECK((r == 0 && why == NULL) || (r == -1 && reason(why) != NULL));
    CHECK(why == NULL || !(why >= line && why < line + len));
    /* asked twice: for a line whose length is a multiple of 4 (the length chooses, not a byte, which would tie it to one
     * kind of line); rly_audit_run below reads every line once more, with an auditor of its own */
    if (len % 4 == 0)
        CHECK(rly_audit_line(any_as, line, len, &again) == r && again == why);
    /* the allow-list: for a line whose length is 0 or 1 modulo 4 */
    if (len % 4 < 2) {
        if (rly_audit_line(listed_as, line, len, &listed) == 0) {
            CHECK(r == 0 && listed == NULL);
        } else {
            CHECK(reason(listed) != NULL && (r == -1 || strcmp(listed, "bad as") == 0));
        }
    }
    if (r == 0) {
        /* a clean line is a flat JSON object with the three members every line has, and none of the patterns of
         * identifying data is in its text (a host name may be: the as) */
        CHECK(len >= 2 && line[0] == '{' && line[len - 1] == '}' && memchr(line, '\0', len) == NULL);
        CHECK(memmem(line, len, "\"ts\"", 4) != NULL && memmem(line, len, "\"level\"", 7) != NULL &&
              memmem(line, len, "\"event\"", 7) != NULL);
        scan = rly_audit_text_scan(line, len);
        CHECK(scan == NULL || strcmp(scan, "host name") == 0);
    }
    return why;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the violations rly_audit_run writes, as predicted here (a buffer of the text's size: a buffer for the most the input
     * could produce, 64 bytes per input byte, was megabytes to allocate and poison on every run) */
    size_t start = 0, nexp = 0, outlen = 0, end;
    char *expected = NULL, *out = NULL, *line = NULL, summary[64];
    unsigned long long lineno = 0, lines = 0, violations = 0, pending_empty = 0;
    FILE *in = NULL, *outf = NULL, *expf = NULL;
    rly_audit_t *run = NULL;
    int n;

    if ((expf = open_memstream(&expected, &nexp)) == NULL)
        goto Exit;
    init();
    /* line by line, as rly_audit_run reads them: a last empty line (the file's final '\n') is no line, an empty line
     * before it is a violation only when another line follows */
    while (start < size) {
        const uint8_t *nl = memchr(data + start, '\n', size - start);
        const char *why;
        end = nl != NULL ? (size_t)(nl - data) : size;
        ++lineno;
        if (pending_empty != 0) {
            CHECK(fprintf(expf, "line %llu: empty line\n", pending_empty) > 0);
            ++lines;
            ++violations;
            pending_empty = 0;
        }
        if (end == start) {
            pending_empty = lineno;
        } else {
            /* a copy of exactly the line, so that ASan sees any read past it */
            if ((line = malloc(end - start)) == NULL)
                goto Exit;
            memcpy(line, data + start, end - start);
            why = check_line(line, end - start);
            free(line);
            line = NULL;
            ++lines;
            if (why != NULL) {
                CHECK(fprintf(expf, "line %llu: %s\n", lineno, why) > 0);
                ++violations;
            }
        }
        start = end + 1;
    }
    CHECK(fflush(expf) == 0);
    /* the auditor's own reading of the whole input: the same violations, in the same words, then the same counts */
    if ((run = rly_audit_new()) == NULL || (outf = open_memstream(&out, &outlen)) == NULL)
        goto Exit;
    if ((in = size != 0 ? fmemopen((void *)data, size, "r") : fopen("/dev/null", "r")) == NULL)
        goto Exit;
    CHECK(rly_audit_run(run, in, outf) == (violations != 0));
    CHECK(fflush(outf) == 0);
    CHECK(outlen >= nexp && memcmp(out, expected, nexp) == 0);
    n = snprintf(summary, sizeof(summary), "lines: %llu, violations: %llu\n", lines, violations);
    CHECK(n > 0 && (size_t)n < sizeof(summary));
    CHECK(outlen - nexp >= (size_t)n && memcmp(out + nexp, summary, (size_t)n) == 0);

Exit:
    if (in != NULL)
        fclose(in);
    if (outf != NULL)
        fclose(outf);
    if (expf != NULL)
        fclose(expf);
    free(out);
    free(line);
    rly_audit_free(run);
    free(expected);
    return 0;
}
