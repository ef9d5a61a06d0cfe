/* audit.h: checks anonymous log lines against the schema of protocol.md and for identifying data */
#ifndef RLY_AUDIT_H
#define RLY_AUDIT_H

#include <stdio.h>
#include <stddef.h>

typedef struct st_rly_audit_t rly_audit_t;

/* NULL when out of memory; the caller frees the auditor with rly_audit_free */
rly_audit_t *rly_audit_new(void);
void rly_audit_free(rly_audit_t *a);
/*
 * The relay's real allow-list (--allow-as): from now on a line's "as" must be one of the entries given this way, or
 * "unlisted"; without any, it may be any allow-list entry (rly_url_as_entry_ok of url.h) or "unlisted". list is one
 * entry or several, comma-separated, each lower-cased as the relay's --allow-as is; copied, list is borrowed. 0, or -1
 * with *errstr a fixed text ("empty entry", "not an allow-list entry ...", "too many entries", "out of memory"); the
 * entries before the refused one stay.
 */
int rly_audit_allow_as(rly_audit_t *a, const char *list, const char **errstr);
/*
 * Checks one line (without its '\n'). Returns 0 clean, -1 violation with *errstr a fixed text ("unknown key", "IPv4 address",
 * "e-mail address", "JWT-like token", "long random token", "URL with path or query", "bad ts", "bad as", "unknown msg"
 * (a msg that is not one of the relay's fixed texts, logmsg.h), ...). Counts the line's (as, event, outcome) in the
 * totals either way when it parses; a value that breaks its rule is counted as "(invalid)", never as written.
 */
int rly_audit_line(rly_audit_t *a, const char *line, size_t len, const char **errstr);
/* 1 if s[0..n) is a value the schema accepts for key ("event", "outcome" or "as") and that looks identifying to none of
 * the patterns; the log emitter writes only such values */
int rly_audit_value_ok(const char *key, const char *s, size_t n);
/*
 * What the auditor's patterns find in a text s[0..n): those it applies to every line ("IPv4 address", "e-mail address",
 * ...) and "host name" (two labels or more, the last with a letter); NULL when none. For texts such as a msg: a whole
 * line's as holds a host name.
 */
const char *rly_audit_text_scan(const char *s, size_t n);
/* prints the totals per AS, event and outcome, and the number of lines and violations */
void rly_audit_report(const rly_audit_t *a, FILE *out);
/*
 * Reads in to the end with the auditor a (borrowed: made by rly_audit_new, allow-list given), reporting each violation
 * as "line N: why" on out (never the offending text), then the totals; 0 clean, 1 violations or a read error.
 */
int rly_audit_run(rly_audit_t *a, FILE *in, FILE *out);

#endif
