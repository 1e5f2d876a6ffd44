// UUIDs as text ("8-4-4-4-12" lowercase hex).
#ifndef CARA_UUID_H
#define CARA_UUID_H
#include <stdbool.h>
#include <stddef.h>

#define UUID_STR_LEN 37  // 36 characters and the terminator

// Writes a new time-ordered (version 7: milliseconds since 1970, then 74 random bits) UUID into
// out. Returns out.
char *uuid_new(char out[UUID_STR_LEN]);
// True if text is a well-formed UUID in canonical form (any case).
bool uuid_valid(const char *text);

#endif
