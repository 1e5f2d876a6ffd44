// intake: validation of a referral document. Every field is checked and every problem is
// reported (field path + reason) in one reply; nothing here touches the database.
#ifndef CARA_INTAKE_VALIDATE_H
#define CARA_INTAKE_VALIDATE_H
#include <stddef.h>
#include <stdint.h>

#include "cara/reply.h"
#include "intake.pb-c.h"

#define INTAKE_DEFAULT_DEADLINE_WEEKS 16
#define INTAKE_MAX_PROTECTIVE_ORDERS 20
#define INTAKE_MIN_AGE 10 // age of criminal responsibility (England and Wales)

typedef struct {
    int64_t now_us;     // "now" for "not in the future" checks
    int deadline_weeks; // the force's period (for the default deadline)
} intake_rules_t;

// The fixed vocabulary of a categorical field (NULL-terminated), or NULL if path is free text.
// path is relative to the referral document, e.g. "risk.dash_level".
const char *const *intake_vocabulary(const char *path);
// The longest value (in bytes) a string field at path may hold.
size_t intake_max_length(const char *path);

// Checks every field of r and adds one field error per problem to reply, with paths relative to
// the referral document prefixed by prefix (e.g. "" or "referral."). Returns the error count.
size_t intake_validate_referral(const Cara__Referral *r, const intake_rules_t *rules,
                                const char *prefix, reply_t *reply);
// Fills what intake derives for a valid referral: the default compliance deadline (caution date
// + weeks). Returns 0, or -1 on allocation failure. r must own its strings (malloc'd).
int intake_referral_normalise(Cara__Referral *r, int deadline_weeks);

#endif
