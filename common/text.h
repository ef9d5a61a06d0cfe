/* text.h: character rules the parsers share: parameter names, printable ASCII, UTF-8 and the Unicode categories refused */
#ifndef RLY_TEXT_H
#define RLY_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include "rly.h"

#define RLY_PARAM_NAME_MAX RLY_AUTHORIZE_PARAM_NAME_MAX

/* a parameter name (authorize parameters, extra callback parameters): [A-Za-z0-9._-]{1,64} */
int rly_text_is_param_name(const char *s, size_t len);
/* every byte printable ASCII, 0x20..0x7e (an empty text is) */
int rly_text_is_printable_ascii(const char *s, size_t len);
/* the next code point of well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, at most U+10FFFF) at s[*i],
 * advancing *i; -1 if s[*i..len) does not start with one (*i unchanged) */
int64_t rly_utf8_next(const char *s, size_t len, size_t *i);
/* general category Cc: U+0000..U+001F, U+007F..U+009F */
int rly_unicode_is_control(uint32_t cp);
/* general category Cf (Format) of Unicode 15.0.0 */
int rly_unicode_is_format(uint32_t cp);
/* well-formed UTF-8 without a character of category Cc (an empty text is) */
int rly_text_is_utf8_without_controls(const char *s, size_t len);

#endif
