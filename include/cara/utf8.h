// UTF-8 as PostgreSQL and JSON take it: well-formed (no overlong forms, surrogates or code
// points past U+10FFFF), and texts cut short on a character boundary.
#ifndef CARA_UTF8_H
#define CARA_UTF8_H
#include <stdbool.h>
#include <stddef.h>

// The length of the well-formed UTF-8 sequence at s (1 to 4 bytes, at most len), or 0 if the
// bytes there are not one.
size_t utf8_char(const unsigned char *s, size_t len);
// True when the len bytes at s are well-formed UTF-8 without NUL bytes.
bool utf8_valid_n(const char *s, size_t len);
// True when the NUL-terminated text is well-formed UTF-8.
bool utf8_valid(const char *text);
// Drops a multi-byte character that a cut to length left incomplete at the end of text, so a
// well-formed text cut short stays well-formed.
void utf8_cut(char *text);

#endif
