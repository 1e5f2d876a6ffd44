// Needs assessment of a triage case: criminogenic needs with levels and onward referrals to
// other specialist services, loaded as protobuf lists for events and replies.
#ifndef TRIAGE_NEEDS_H
#define TRIAGE_NEEDS_H
#include <stddef.h>

#include "cara/db.h"
#include "triage.pb-c.h"

typedef struct {
    Cara__Need **needs;
    size_t n_needs;
    Cara__OnwardReferral **onward;
    size_t n_onward;
    PGresult *rows[2]; // owns the strings the lists point into
} triage_needs_t;

// Loads the needs (by area) and onward referrals (by date) of a case into out. Returns 0, or
// -1 (nothing to free). Free with triage_needs_clear.
int triage_needs_load(db_t *db, const char *referral_id, triage_needs_t *out);
// Frees what triage_needs_load allocated; tolerates a zeroed struct.
void triage_needs_clear(triage_needs_t *self);
// True if area is one of the ten criminogenic need areas.
int triage_needs_area_valid(const char *area);
// True if level is none, low, medium or high.
int triage_needs_level_valid(const char *level);

#endif
