/* logmsg.h: the relay's fixed log texts, the only msg values the log emitter writes and `authrelay audit` accepts */
#ifndef RLY_LOGMSG_H
#define RLY_LOGMSG_H

#include <stddef.h>

/* the longest text on the list, in bytes (each is printable ASCII) */
#define RLY_LOGMSG_MAX 200
/* on the list: what the emitter writes instead of a text that is not */
#define RLY_LOGMSG_WITHHELD "(not a fixed text: withheld)"

/* the texts, RLY_LOGMSG_WITHHELD among them, in a static array of *n; never freed */
const char *const *rly_logmsg_list(size_t *n);
/* the listed text equal to s[0..n) (a pointer into the list), or NULL when s is not on the list */
const char *rly_logmsg_find(const char *s, size_t n);

#endif
