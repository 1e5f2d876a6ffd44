// intake: the police-facing outcome of each referral, kept from the triage and booking streams
// and published on the intake stream as OutcomeUpdated (scope = the force).
#ifndef CARA_INTAKE_OUTCOME_H
#define CARA_INTAKE_OUTCOME_H
#include <stddef.h>
#include <stdint.h>

#include "cara/consumer.h"
#include "cara/db.h"
#include "intake.pb-c.h"

typedef struct {
    const char *status;                           // new status, NULL = unchanged
    const char *reason;                           // NULL = unchanged
    const char *compliance_deadline;              // NULL = unchanged
    int set_booking;                              // replace part_a_date, part_b_date and town
    const char *part_a_date, *part_b_date, *town; // "" clears
    int allow_back;                               // may move the status back (a cancelled booking)
    const char *returned_at; // a return: when triage returned it (NULL = unchanged)
    const char *event_at;    // a booking event's time: one from before a return changes nothing
} intake_outcome_change_t;

// The order of statuses: an event never moves a referral back unless allow_back is set, so a
// late event from one stream cannot undo a newer one from the other.
int intake_outcome_rank(const char *status);
// Applies change to the outcome of referral_id (checking it belongs to force unless force is
// NULL or ""), appends OutcomeUpdated and an audit row by actor. Returns 1 if it changed, 0 if
// the change was stale and ignored, -2 if the referral is unknown or of another force (why
// filled), -1 on a database error.
int intake_outcome_change(db_t *db, const char *referral_id, const char *force,
                          const intake_outcome_change_t *change, const char *actor, char *why,
                          size_t why_size);
// Fills o with the outcome of referral_id (strings borrowed from the result). Returns the result
// to PQclear when done with o, or NULL if there is none or on error.
PGresult *intake_outcome_load(db_t *db, const char *referral_id, Cara__Outcome *o);

// Apply functions for the triage and booking streams (consumer.h contract; arg unused).
apply_result_t intake_outcome_apply_triage(db_t *db, const Cara__Envelope *env, uint64_t seq,
                                           void *arg, char *reason, size_t reason_size);
apply_result_t intake_outcome_apply_booking(db_t *db, const Cara__Envelope *env, uint64_t seq,
                                            void *arg, char *reason, size_t reason_size);

#endif
