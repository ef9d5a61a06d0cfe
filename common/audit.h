/* audit.h: checks anonymous log lines against the schema of protocol.md and for identifying data */
#ifndef RLY_AUDIT_H
#define RLY_AUDIT_H

#include <stdio.h>
#include <stddef.h>

typedef struct st_rly_audit_t rly_audit_t;

rly_audit_t *rly_audit_new(void);
void rly_audit_free(rly_audit_t *a);
/*
 * Checks one line (without its '\n'). Returns 0 clean, -1 violation with *errstr a fixed text ("unknown key", "IPv4 address",
 * "e-mail address", "JWT-like token", "long random token", "URL with path or query", "bad ts", ...). Counts the line's
 * (as, event, outcome) in the totals either way when it parses.
 */
int rly_audit_line(rly_audit_t *a, const char *line, size_t len, const char **errstr);
/* 1 if s[0..n) is a value the schema accepts for key ("event", "outcome" or "as") and that looks identifying to none of
 * the patterns; the log emitter writes only such values */
int rly_audit_value_ok(const char *key, const char *s, size_t n);
/* prints the totals per AS, event and outcome, and the number of lines and violations */
void rly_audit_report(const rly_audit_t *a, FILE *out);
/* reads in to the end, reporting each violation as "line N: why" on out (never the offending text); 0 clean, 1 violations */
int rly_audit_run(FILE *in, FILE *out);

#endif
