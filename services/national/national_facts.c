#include "national_facts.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "booking.pb-c.h"
#include "intake.pb-c.h"
#include "triage.pb-c.h"

const char *national_age_band(unsigned age) {
    if (age < 18)
        return "unknown";
    if (age <= 24)
        return "18-24";
    if (age <= 34)
        return "25-34";
    if (age <= 44)
        return "35-44";
    if (age <= 54)
        return "45-54";
    return "55+";
}

// The case key: HMAC-SHA256 of the referral id with this deployment's secret, so that the
// national schema holds no id that leads back to a person.
static int s_case_key(service_t *svc, const char *referral_id, char out[65]) {
    const char *secret = config_str(service_config(svc), "pseudonym_secret", NULL);
    if (!secret || strlen(secret) < 16)
        return -1;
    unsigned char key[crypto_auth_hmacsha256_KEYBYTES], mac[crypto_auth_hmacsha256_BYTES];
    crypto_generichash(key, sizeof key, (const unsigned char *)secret, strlen(secret), NULL, 0);
    crypto_auth_hmacsha256(mac, (const unsigned char *)referral_id, strlen(referral_id), key);
    sodium_bin2hex(out, 65, mac, sizeof mac);
    return 0;
}

static apply_result_t s_exec(db_t *db, const char *sql, int n, const char *const *values) {
    return db_exec(db, sql, n, values) == 0 ? APPLY_OK : APPLY_RETRY;
}

// Only these fields are ever read from an event: whatever else arrives is never stored.
apply_result_t national_apply_intake(db_t *db, const Cara__Envelope *env, uint64_t seq, void *arg,
                                     char *reason, size_t reason_size) {
    (void)seq;
    service_t *svc = arg;
    char key[65];
    if (strcmp(env->type, "cara.ReferralSubmitted") == 0) {
        Cara__ReferralSubmitted *m =
            (Cara__ReferralSubmitted *)envelope_payload(env, &cara__referral_submitted__descriptor);
        if (!m || !m->referral || !m->referral->offender || !m->referral->caution ||
            s_case_key(svc, m->referral_id, key) != 0) {
            if (m)
                cara__referral_submitted__free_unpacked(m, NULL);
            snprintf(reason, reason_size, "referral without offender/caution, or no secret");
            return APPLY_POISON;
        }
        const Cara__Referral *r = m->referral;
        char caution_date[16];
        snprintf(caution_date, sizeof caution_date, "%.10s", r->caution->given_at);
        const char *values[] = {key, r->force, r->offender->sex,
                                national_age_band(r->offender->age_at_caution),
                                r->offender->ethnicity, r->caution->offence_category,
                                r->risk ? r->risk->dash_level : "", r->offender->pseudonym,
                                caution_date, m->received_at};
        apply_result_t rc = s_exec(db,
                                   "INSERT INTO case_fact (case_key, force, sex, age_band,"
                                   " ethnicity, offence, dash, pseudonym, caution_date, received_at)"
                                   " VALUES ($1, $2, $3, $4, nullif($5, ''), $6, $7, nullif($8, ''),"
                                   " $9::date, $10) ON CONFLICT (case_key) DO UPDATE SET force ="
                                   " $2, sex = $3, age_band = $4, ethnicity = nullif($5, ''),"
                                   " offence = $6, dash = $7, pseudonym = nullif($8, ''),"
                                   " caution_date = $9::date, received_at = $10",
                                   10, values);
        cara__referral_submitted__free_unpacked(m, NULL);
        return rc;
    }
    if (strcmp(env->type, "cara.ReferralWithdrawn") == 0) {
        Cara__ReferralWithdrawn *m =
            (Cara__ReferralWithdrawn *)envelope_payload(env, &cara__referral_withdrawn__descriptor);
        if (!m || s_case_key(svc, m->referral_id, key) != 0) {
            if (m)
                cara__referral_withdrawn__free_unpacked(m, NULL);
            snprintf(reason, reason_size, "undecodable withdrawal");
            return APPLY_POISON;
        }
        cara__referral_withdrawn__free_unpacked(m, NULL);
        const char *values[] = {key};
        return s_exec(db,
                      "INSERT INTO case_fact (case_key, withdrawn) VALUES ($1, true)"
                      " ON CONFLICT (case_key) DO UPDATE SET withdrawn = true",
                      1, values);
    }
    return APPLY_OK;
}

apply_result_t national_apply_triage(db_t *db, const Cara__Envelope *env, uint64_t seq, void *arg,
                                     char *reason, size_t reason_size) {
    (void)seq;
    service_t *svc = arg;
    char key[65];
    if (strcmp(env->type, "cara.ReferralTriaged") == 0) {
        Cara__ReferralTriaged *m =
            (Cara__ReferralTriaged *)envelope_payload(env, &cara__referral_triaged__descriptor);
        if (!m || s_case_key(svc, m->referral_id, key) != 0) {
            if (m)
                cara__referral_triaged__free_unpacked(m, NULL);
            snprintf(reason, reason_size, "undecodable cara.ReferralTriaged");
            return APPLY_POISON;
        }
        const char *values[] = {key, m->provider_id, m->pathway, m->triaged_at};
        apply_result_t rc = s_exec(db,
                                   "INSERT INTO case_fact (case_key, provider, pathway, triaged_at)"
                                   " VALUES ($1, $2, $3, $4) ON CONFLICT (case_key) DO UPDATE SET"
                                   " provider = $2, pathway = $3, triaged_at = $4",
                                   4, values);
        cara__referral_triaged__free_unpacked(m, NULL);
        return rc;
    }
    if (strcmp(env->type, "cara.ReferralReturned") == 0) {
        Cara__ReferralReturned *m =
            (Cara__ReferralReturned *)envelope_payload(env, &cara__referral_returned__descriptor);
        if (!m || s_case_key(svc, m->referral_id, key) != 0) {
            if (m)
                cara__referral_returned__free_unpacked(m, NULL);
            snprintf(reason, reason_size, "undecodable cara.ReferralReturned");
            return APPLY_POISON;
        }
        const char *values[] = {key, m->n_reasons ? m->reasons[0]->code : "unknown"};
        apply_result_t rc = s_exec(db,
                                   "INSERT INTO case_fact (case_key, returned_reason) VALUES ($1, $2)"
                                   " ON CONFLICT (case_key) DO UPDATE SET returned_reason = $2",
                                   2, values);
        cara__referral_returned__free_unpacked(m, NULL);
        return rc;
    }
    return APPLY_OK;
}

apply_result_t national_apply_booking(db_t *db, const Cara__Envelope *env, uint64_t seq,
                                      void *arg, char *reason, size_t reason_size) {
    (void)seq;
    service_t *svc = arg;
    char key[65];
    const char *sql = NULL, *v1 = NULL, *referral = NULL;
    ProtobufCMessage *msg = NULL;
    if (strcmp(env->type, "cara.SeatBooked") == 0 &&
        (msg = envelope_payload(env, &cara__seat_booked__descriptor))) {
        Cara__SeatBooked *m = (Cara__SeatBooked *)msg;
        referral = m->referral_id;
        v1 = m->booked_at;
        sql = "INSERT INTO case_fact (case_key, booked_at) VALUES ($1, $2) ON CONFLICT (case_key)"
              " DO UPDATE SET booked_at = coalesce(case_fact.booked_at, $2)";
    } else if (strcmp(env->type, "cara.AttendanceRecorded") == 0 &&
               (msg = envelope_payload(env, &cara__attendance_recorded__descriptor))) {
        Cara__AttendanceRecorded *m = (Cara__AttendanceRecorded *)msg;
        if (strcmp(m->part, "A") == 0 && strcmp(m->status, "attended") == 0) {
            referral = m->referral_id;
            v1 = m->session_date;
            sql = "INSERT INTO case_fact (case_key, started_on) VALUES ($1, $2) ON CONFLICT"
                  " (case_key) DO UPDATE SET started_on = coalesce(case_fact.started_on, $2)";
        }
    } else if (strcmp(env->type, "cara.CaseCompleted") == 0 &&
               (msg = envelope_payload(env, &cara__case_completed__descriptor))) {
        Cara__CaseCompleted *m = (Cara__CaseCompleted *)msg;
        referral = m->referral_id;
        v1 = m->completed_at;
        sql = "INSERT INTO case_fact (case_key, completed_at) VALUES ($1, $2) ON CONFLICT"
              " (case_key) DO UPDATE SET completed_at = $2";
    } else if (strcmp(env->type, "cara.CaseNonCompliant") == 0 &&
               (msg = envelope_payload(env, &cara__case_non_compliant__descriptor))) {
        Cara__CaseNonCompliant *m = (Cara__CaseNonCompliant *)msg;
        referral = m->referral_id;
        v1 = m->reason;
        sql = "INSERT INTO case_fact (case_key, non_compliant_reason) VALUES ($1, $2) ON CONFLICT"
              " (case_key) DO UPDATE SET non_compliant_reason = $2";
    } else if (strcmp(env->type, "cara.VictimContactRecorded") == 0 &&
               (msg = envelope_payload(env, &cara__victim_contact_recorded__descriptor))) {
        Cara__VictimContactRecorded *m = (Cara__VictimContactRecorded *)msg;
        referral = m->referral_id;
        v1 = m->kind;
        sql = "INSERT INTO case_fact (case_key, victim_offered, victim_accepted) VALUES ($1,"
              " $2 = 'offer', $2 = 'accepted') ON CONFLICT (case_key) DO UPDATE SET"
              " victim_offered = case_fact.victim_offered OR $2 = 'offer',"
              " victim_accepted = case_fact.victim_accepted OR $2 = 'accepted'";
    } else if (strcmp(env->type, "cara.CohortDelivered") == 0 &&
               (msg = envelope_payload(env, &cara__cohort_delivered__descriptor))) {
        Cara__CohortDelivered *m = (Cara__CohortDelivered *)msg;
        char participants[12];
        snprintf(participants, sizeof participants, "%u", m->participants);
        if (s_case_key(svc, m->cohort_id, key) != 0) {
            protobuf_c_message_free_unpacked(msg, NULL);
            snprintf(reason, reason_size, "no pseudonym secret");
            return APPLY_POISON;
        }
        const char *values[] = {key, m->provider_id, m->cohort_type, participants, m->part_b_date};
        apply_result_t rc = s_exec(db,
                                   "INSERT INTO cohort_fact VALUES ($1, $2, $3, $4, $5)"
                                   " ON CONFLICT (cohort_key) DO UPDATE SET participants = $4",
                                   5, values);
        protobuf_c_message_free_unpacked(msg, NULL);
        return rc;
    }
    apply_result_t rc = APPLY_OK;
    if (sql) {
        if (s_case_key(svc, referral, key) != 0) {
            snprintf(reason, reason_size, "no pseudonym secret");
            rc = APPLY_POISON;
        } else {
            const char *values[] = {key, v1};
            rc = s_exec(db, sql, 2, values);
        }
    }
    if (msg)
        protobuf_c_message_free_unpacked(msg, NULL);
    return rc;
}
