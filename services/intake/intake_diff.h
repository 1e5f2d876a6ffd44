// intake: the field-by-field difference between two versions of a referral.
#ifndef CARA_INTAKE_DIFF_H
#define CARA_INTAKE_DIFF_H
#include <stddef.h>

#include "intake.pb-c.h"

typedef struct {
    Cara__FieldChange **items; // each malloc'd with its strings
    size_t n;
    size_t cap;
} intake_diff_t;

// Compares every scalar field of before and after (recursively, by descriptor) and appends one
// FieldChange per differing field, with paths like "offender.phone" and values as text (booleans
// "true"/"false", repeated strings as a JSON array). Returns the number of changes, or -1 on
// allocation failure. Both messages must be of the same type.
int intake_diff(const ProtobufCMessage *before, const ProtobufCMessage *after, intake_diff_t *out);
// Frees the changes and empties out.
void intake_diff_clear(intake_diff_t *self);

#endif
