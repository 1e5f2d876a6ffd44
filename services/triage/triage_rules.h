// Eligibility rules and the proposed pathway: pure functions of a referral, the day of the
// check and the force's configuration, so every rule can be tested both ways.
#ifndef TRIAGE_RULES_H
#define TRIAGE_RULES_H
#include <stddef.h>
#include <stdint.h>

#include "intake.pb-c.h"

// Bumped whenever a rule changes; recorded on every case.
#define TRIAGE_RULES_VERSION 1
#define TRIAGE_MAX_REASONS 8

typedef struct {
    char code[32]; // under_18, dash_high, previous_da, offence_ineligible, no_caution,
                   // deadline_passed; for review: age_unknown, dash_unknown,
                   // previous_da_unknown, offence_needs_review
    char detail[160];
} triage_reason_t;

typedef struct {
    triage_reason_t fail[TRIAGE_MAX_REASONS]; // any: returned to the police
    int n_fail;
    triage_reason_t review[TRIAGE_MAX_REASONS]; // any (and no fail): a human decides
    int n_review;
} triage_verdict_t;

typedef struct {
    const char *const *eligible_offences; // NULL: the default list
    size_t n_eligible;
} triage_force_rules_t;

// Applies every rule. today and now_us are the moment of the check. Returns 0.
int triage_rules_evaluate(const Cara__Referral *r, int32_t today, int64_t now_us,
                          const triage_force_rules_t *force, triage_verdict_t *out);
// The default pathway: telephone for a language barrier, learning disability or other access
// need (reason written), else sex x relationship. Returns NULL if sex or relationship is unknown.
const char *triage_rules_pathway(const Cara__Referral *r, char *reason, size_t reason_size);
// False if pathway is a group for the other sex than the offender's (groups are single-sex);
// true for the telephone pathway, or when the offender's sex is not known.
int triage_rules_pathway_fits(const Cara__Referral *r, const char *pathway);
// True for one of the five pathway names.
int triage_rules_pathway_valid(const char *pathway);
// Working days (Mon-Fri) from one instant to another.
int triage_rules_working_days(int64_t from_us, int64_t to_us);

#endif
