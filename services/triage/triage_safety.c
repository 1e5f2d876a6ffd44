// Safety concerns from the booking stream: a concern the provider's victim contact raised is
// flagged on the triage case at once (safety_alert, audited) and shown to triage staff in
// `cara triage show` and `cara triage alerts`. The event carries no notes; nothing else of the
// booking stream is read here.
#include <stdio.h>
#include <string.h>

#include "booking.pb-c.h"
#include "cara/timeutil.h"
#include "cara/uuid.h"
#include "triage_case.h"

static const identity_t s_booking = {"service", "booking"};

// Records one concern on the case. Returns APPLY_OK, APPLY_POISON (reason filled) or
// APPLY_RETRY.
static apply_result_t s_on_concern(service_t *svc, const Cara__VictimContactRecorded *m,
                                   char *reason, size_t reason_size) {
    int64_t at_us;
    if (!uuid_valid(m->referral_id) || time_parse_iso(m->at, &at_us) != 0) {
        snprintf(reason, reason_size, "safety concern without a referral id or a time");
        return APPLY_POISON;
    }
    char at[40];
    time_format_iso(at_us, at, sizeof at);
    const char *values[] = {m->referral_id, m->provider_id, at};
    PGresult *r = db_query(service_db(svc),
                           "INSERT INTO safety_alert (referral_id, provider_id, raised_at)"
                           " SELECT referral_id, $2, $3::timestamptz FROM triage_case"
                           " WHERE referral_id = $1::uuid RETURNING id",
                           3, values);
    if (!r)
        return APPLY_RETRY;
    int found = PQntuples(r) == 1;
    PQclear(r);
    if (!found) {
        snprintf(reason, reason_size, "safety concern for a referral triage never had");
        return APPLY_POISON;
    }
    return service_audit(svc, &s_booking, "safety_concern_raised", "triage_case", m->referral_id,
                         json_pack("{s:s, s:s}", "provider", m->provider_id, "raised_at", at)) == 0
               ? APPLY_OK
               : APPLY_RETRY;
}

apply_result_t triage_safety_apply(db_t *db, const Cara__Envelope *env, uint64_t seq, void *arg,
                                   char *reason, size_t reason_size) {
    (void)db;
    (void)seq;
    if (strcmp(env->type, "cara.VictimContactRecorded") != 0)
        return APPLY_OK; // the rest of the booking stream is the provider's business
    Cara__VictimContactRecorded *m = (Cara__VictimContactRecorded *)envelope_payload(
        env, &cara__victim_contact_recorded__descriptor);
    if (!m) {
        snprintf(reason, reason_size, "undecodable %s", env->type);
        return APPLY_POISON;
    }
    apply_result_t rc = m->safety_concern ? s_on_concern(arg, m, reason, reason_size) : APPLY_OK;
    cara__victim_contact_recorded__free_unpacked(m, NULL);
    return rc;
}
