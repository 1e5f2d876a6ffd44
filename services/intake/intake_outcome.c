#include "intake_outcome.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "booking.pb-c.h"
#include "cara/audit.h"
#include "cara/log.h"
#include "cara/stream.h"
#include "cara/timeutil.h"
#include "cara/utf8.h"
#include "cara/uuid.h"
#include "intake.pb-c.h"
#include "intake_validate.h"
#include "triage.pb-c.h"

#define S_ISO(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

// Every status, in the order of their ranks (the outcome table's CHECK allows these only).
static const struct {
    const char *status;
    int rank;
} s_ranks[] = {{"received", 0},  {"returned", 1},        {"triaged", 1},
               {"booked", 2},    {"attended_part_a", 3}, {"attended_part_b", 4},
               {"completed", 5}, {"non_compliant", 5},   {"withdrawn", 6}};
#define S_N_STATUSES (sizeof s_ranks / sizeof *s_ranks)

int intake_outcome_rank(const char *status) {
    for (size_t i = 0; i < S_N_STATUSES; i++)
        if (strcmp(s_ranks[i].status, status) == 0)
            return s_ranks[i].rank;
    return -1;
}

// Whether moving from cur to next is progress (or an allowed correction).
static int s_allowed(const char *cur, const char *next, int allow_back) {
    int rc = intake_outcome_rank(cur), rn = intake_outcome_rank(next);
    // Back (a cancelled booking, a corrected attendance), but never from a withdrawal or a
    // return: those are the police's and triage's, and only they undo them.
    if (allow_back)
        return strcmp(cur, "withdrawn") != 0 && strcmp(cur, "returned") != 0;
    if (rn > rc)
        return 1;
    if (strcmp(cur, next) == 0) // a rebooking with new dates, or a corrected reason
        return strcmp(next, "booked") == 0 || strcmp(next, "non_compliant") == 0;
    // Triage may return a referral, and accept it after an amendment, or the other way round;
    // it returns a routed one, booked or part-way through, that an amendment made ineligible
    // (the provider stops), but not one that is over.
    if (strcmp(next, "returned") == 0)
        return rc >= 1 && rc <= 4;
    return rn == 1 && rc == 1;
}

// An outcome row's columns as Cara__Outcome's fields, in s_outcome_fill's order.
#define S_OUTCOME_COLUMNS                                                                          \
    "referral_id, force, caution_reference, status, reason,"                                       \
    " coalesce(part_a_date::text, ''), coalesce(part_b_date::text, ''), town, " S_ISO(             \
        "updated_at") ", " S_ISO("received_at") ", compliance_deadline::text"

// Points o's fields at row 0 of res (S_OUTCOME_COLUMNS).
static void s_outcome_fill(PGresult *res, Cara__Outcome *o) {
    cara__outcome__init(o);
    char **fields[] = {&o->referral_id, &o->force,       &o->caution_reference,  &o->status,
                       &o->reason,      &o->part_a_date, &o->part_b_date,        &o->town,
                       &o->updated_at,  &o->received_at, &o->compliance_deadline};
    for (int i = 0; i < 11; i++)
        *fields[i] = PQgetvalue(res, 0, i);
}

PGresult *intake_outcome_load(db_t *db, const char *referral_id, Cara__Outcome *o) {
    const char *values[] = {referral_id};
    PGresult *res = db_query(
        db, "SELECT " S_OUTCOME_COLUMNS " FROM outcome WHERE referral_id = $1::uuid", 1, values);
    if (!res)
        return NULL;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return NULL;
    }
    s_outcome_fill(res, o);
    return res;
}

// The statuses that next may follow, as an array literal ("{received,triaged}"), in out.
static void s_allowed_from(const char *next, int allow_back, char *out, size_t size) {
    size_t used = (size_t)snprintf(out, size, "{");
    for (size_t i = 0; i < S_N_STATUSES && used < size; i++)
        if (s_allowed(s_ranks[i].status, next, allow_back))
            used += (size_t)snprintf(out + used, size - used, "%s%s", used > 1 ? "," : "",
                                     s_ranks[i].status);
    if (used < size)
        snprintf(out + used, size - used, "}");
}

int intake_outcome_change(db_t *db, const char *referral_id, const char *force,
                          const intake_outcome_change_t *change, const char *actor, char *why,
                          size_t why_size) {
    if (!referral_id || !uuid_valid(referral_id)) {
        snprintf(why, why_size, "referral_id is not a UUID");
        return -2;
    }
    char from[256];
    if (change->status)
        s_allowed_from(change->status, change->allow_back, from, sizeof from);
    const char *values[] = {referral_id,
                            change->status,
                            change->reason,
                            change->compliance_deadline,
                            change->set_booking ? "1" : "0",
                            change->part_a_date ? change->part_a_date : "",
                            change->part_b_date ? change->part_b_date : "",
                            change->town ? change->town : "",
                            change->status ? from : NULL,
                            force && *force ? force : NULL,
                            change->returned_at && *change->returned_at ? change->returned_at
                                                                        : NULL,
                            change->event_at && *change->event_at ? change->event_at : NULL};
    // One round trip: the row is locked and read as it stood (cur), and changed only if it
    // belongs to the force and the change is progress from its status (upd), returning the
    // outcome as it now stands; the event and the audit row are queued behind it.
    PGresult *res = db_query(
        db,
        "WITH cur AS (SELECT force, status FROM outcome WHERE referral_id = $1::uuid FOR UPDATE),"
        " upd AS (UPDATE outcome SET status = coalesce($2, status), reason = coalesce($3, reason),"
        " compliance_deadline = coalesce($4::date, compliance_deadline),"
        " part_a_date = CASE WHEN $5 = '1' THEN NULLIF($6, '')::date ELSE part_a_date END,"
        " part_b_date = CASE WHEN $5 = '1' THEN NULLIF($7, '')::date ELSE part_b_date END,"
        " town = CASE WHEN $5 = '1' THEN $8 ELSE town END,"
        " returned_at = coalesce($11::timestamptz, returned_at), updated_at = now()"
        " WHERE referral_id = $1::uuid AND ($9::text[] IS NULL OR status = ANY ($9::text[]))"
        " AND ($10::text IS NULL OR force = $10) AND ($12::timestamptz IS NULL OR"
        " status <> 'returned' OR returned_at IS NULL OR $12::timestamptz > returned_at)"
        " RETURNING " S_OUTCOME_COLUMNS ")"
        " SELECT upd.*, cur.force, cur.status FROM cur LEFT JOIN upd ON true",
        12, values);
    if (!res)
        return -1;
    int rc = -1;
    if (PQntuples(res) != 1) {
        snprintf(why, why_size, "unknown referral %s", referral_id);
        rc = -2;
        goto cleanup;
    }
    const char *cur = PQgetvalue(res, 0, 12);
    if (force && *force && strcmp(force, PQgetvalue(res, 0, 11)) != 0) {
        snprintf(why, why_size, "referral %s belongs to another force", referral_id);
        rc = -2;
        goto cleanup;
    }
    if (PQgetisnull(res, 0, 0)) {
        log_info("outcome_stale", "referral_id", referral_id, "status", cur, "ignored",
                 change->status);
        rc = 0;
        goto cleanup;
    }
    Cara__Outcome o;
    s_outcome_fill(res, &o);
    Cara__OutcomeUpdated ev = CARA__OUTCOME_UPDATED__INIT;
    ev.outcome = &o;
    if (outbox_send(db, &ev.base, o.referral_id, o.force, o.referral_id, NULL) != 0 ||
        audit_record(db, 1, actor, "outcome_updated", "referral", referral_id,
                     json_pack("{s:s,s:s}", "from", cur, "to", o.status)) != 0)
        goto cleanup;
    rc = 1;
cleanup:
    PQclear(res);
    return rc;
}

// Turns the result of intake_outcome_change into the consumer's answer. A database failure is
// "retry": the consumer retries it only if the failure is transient, and takes any other (bad
// data, a constraint: it fails every time) as poison.
static apply_result_t s_result(int rc, const char *why, char *reason, size_t reason_size) {
    if (rc >= 0)
        return APPLY_OK;
    if (rc == -2) {
        snprintf(reason, reason_size, "%s", why);
        return APPLY_POISON;
    }
    return APPLY_RETRY;
}

static apply_result_t s_undecodable(const Cara__Envelope *env, char *reason, size_t reason_size) {
    snprintf(reason, reason_size, "undecodable %s payload", env->type);
    return APPLY_POISON;
}

apply_result_t intake_outcome_apply_triage(db_t *db, const Cara__Envelope *env, uint64_t seq,
                                           void *arg, char *reason, size_t reason_size) {
    (void)seq;
    (void)arg;
    char why[160] = "";
    int rc;
    intake_outcome_change_t ch = {0};
    if (strcmp(env->type, "cara.ReferralTriaged") == 0) {
        Cara__ReferralTriaged *m =
            (Cara__ReferralTriaged *)envelope_payload(env, &cara__referral_triaged__descriptor);
        if (!m)
            return s_undecodable(env, reason, reason_size);
        ch.status = "triaged";
        ch.reason = "";
        rc = intake_outcome_change(db, m->referral_id, m->force, &ch, "service:triage", why,
                                   sizeof why);
        cara__referral_triaged__free_unpacked(m, NULL);
    } else if (strcmp(env->type, "cara.ReferralReturned") == 0) {
        Cara__ReferralReturned *m =
            (Cara__ReferralReturned *)envelope_payload(env, &cara__referral_returned__descriptor);
        if (!m)
            return s_undecodable(env, reason, reason_size);
        char text[1024] = "";
        size_t used = 0;
        for (size_t i = 0; i < m->n_reasons && used < sizeof text; i++)
            used += (size_t)snprintf(text + used, sizeof text - used, "%s%s%s%s", i ? "; " : "",
                                     m->reasons[i]->code, *m->reasons[i]->detail ? ": " : "",
                                     m->reasons[i]->detail);
        utf8_cut(text);
        ch.status = "returned";
        ch.reason = text;
        ch.set_booking = 1; // a booking the return ended is gone: no dates
        ch.returned_at = *m->returned_at ? m->returned_at : env->occurred_at;
        rc = intake_outcome_change(db, m->referral_id, m->force, &ch, "service:triage", why,
                                   sizeof why);
        cara__referral_returned__free_unpacked(m, NULL);
    } else if (strcmp(env->type, "cara.TriageCaseWithdrawn") == 0) {
        Cara__TriageCaseWithdrawn *m = (Cara__TriageCaseWithdrawn *)envelope_payload(
            env, &cara__triage_case_withdrawn__descriptor);
        if (!m)
            return s_undecodable(env, reason, reason_size);
        char text[600];
        snprintf(text, sizeof text, "%s%s%.500s", m->reason_code, *m->reason ? ": " : "",
                 m->reason);
        utf8_cut(text);
        ch.status = "withdrawn";
        ch.reason = text;
        rc = intake_outcome_change(db, m->referral_id, m->force, &ch, "service:triage", why,
                                   sizeof why);
        cara__triage_case_withdrawn__free_unpacked(m, NULL);
    } else {
        return APPLY_OK; // not an outcome the police see
    }
    return s_result(rc, why, reason, reason_size);
}

// The current status of a referral: 1 found, 0 unknown (or not a UUID), -1 database error.
static int s_current(db_t *db, const char *referral_id, char *cur, size_t size) {
    if (!uuid_valid(referral_id))
        return 0;
    const char *id[] = {referral_id};
    return db_scalar(db, "SELECT status FROM outcome WHERE referral_id = $1::uuid", 1, id, cur,
                     (int)size);
}

// A safety concern raised by the provider's victim contact: recorded, audited and told to the
// force at once (SafetyConcernRaised, scope = force): the referral and when, nothing else.
// Returns 1, -2 (unknown referral or another force's: why filled) or -1 on a database error.
static int s_safety_concern(db_t *db, const Cara__VictimContactRecorded *m, char *why,
                            size_t why_size) {
    int64_t at_us;
    if (!uuid_valid(m->referral_id) || time_parse_iso(m->at, &at_us) != 0) {
        snprintf(why, why_size, "safety concern without a referral id or a time");
        return -2;
    }
    char at[40];
    time_format_iso(at_us, at, sizeof at);
    const char *values[] = {m->referral_id, m->force, m->provider_id, at};
    PGresult *r = db_query(db,
                           "WITH o AS (SELECT referral_id, force, caution_reference FROM outcome"
                           "  WHERE referral_id = $1::uuid AND force = $2),"
                           " i AS (INSERT INTO safety_concern (referral_id, force, provider_id,"
                           "  raised_at) SELECT referral_id, force, $3, $4::timestamptz FROM o"
                           "  RETURNING id)"
                           " SELECT o.caution_reference, i.id FROM o, i",
                           4, values);
    if (!r)
        return -1;
    int rc = -1;
    if (PQntuples(r) != 1) {
        snprintf(why, why_size, "safety concern for an unknown referral or another force");
        rc = -2;
        goto cleanup;
    }
    Cara__SafetyConcernRaised ev = CARA__SAFETY_CONCERN_RAISED__INIT;
    ev.referral_id = m->referral_id;
    ev.force = m->force;
    ev.caution_reference = PQgetvalue(r, 0, 0);
    ev.raised_at = at;
    if (outbox_append(db, &ev.base, m->referral_id, m->force, m->referral_id, NULL) > 0 &&
        audit_record(db, 0, "service:booking", "safety_concern_told", "referral", m->referral_id,
                     json_pack("{s:s, s:s}", "provider", m->provider_id, "raised_at", at)) == 0)
        rc = 1;
cleanup:
    PQclear(r);
    return rc;
}

// A change from a booking event, stamped with the event's time: one from before a return of the
// referral (its booking, or its attendance, read after the return) changes nothing.
static int s_booking_change(db_t *db, const Cara__Envelope *env, const char *referral_id,
                            const char *force, intake_outcome_change_t *ch, char *why,
                            size_t why_size) {
    ch->event_at = env->occurred_at;
    return intake_outcome_change(db, referral_id, force, ch, "service:booking", why, why_size);
}

apply_result_t intake_outcome_apply_booking(db_t *db, const Cara__Envelope *env, uint64_t seq,
                                            void *arg, char *reason, size_t reason_size) {
    (void)seq;
    (void)arg;
    char why[160] = "", text[300];
    int rc = 0;
    intake_outcome_change_t ch = {0};
    if (strcmp(env->type, "cara.SeatBooked") == 0) {
        Cara__SeatBooked *m =
            (Cara__SeatBooked *)envelope_payload(env, &cara__seat_booked__descriptor);
        if (!m)
            return s_undecodable(env, reason, reason_size);
        // The police learn the dates and the town only: never the venue.
        ch = (intake_outcome_change_t){.status = "booked",
                                       .reason = "",
                                       .set_booking = 1,
                                       .part_a_date = m->part_a_date,
                                       .part_b_date = m->part_b_date,
                                       .town = m->town};
        rc = s_booking_change(db, env, m->referral_id, m->force, &ch, why, sizeof why);
        cara__seat_booked__free_unpacked(m, NULL);
    } else if (strcmp(env->type, "cara.AttendanceRecorded") == 0) {
        Cara__AttendanceRecorded *m = (Cara__AttendanceRecorded *)envelope_payload(
            env, &cara__attendance_recorded__descriptor);
        if (!m)
            return s_undecodable(env, reason, reason_size);
        // A correction of a booking that is not the live one moves nothing the police see.
        int part_a = strcmp(m->part, "A") == 0, part_b = strcmp(m->part, "B") == 0;
        if (m->register_only) {
            rc = 0;
        } else if (strcmp(m->status, "attended") == 0 && (part_a || part_b)) {
            ch.status = part_a ? "attended_part_a" : "attended_part_b";
            rc = s_booking_change(db, env, m->referral_id, m->force, &ch, why, sizeof why);
        } else if (m->correction && (part_a || part_b)) {
            // A corrected attendance takes the status back one step, if it had counted.
            char cur[32] = "";
            if (s_current(db, m->referral_id, cur, sizeof cur) < 0) {
                rc = -1;
            } else if (strcmp(cur, part_a ? "attended_part_a" : "attended_part_b") == 0) {
                ch.status = part_a ? "booked" : "attended_part_a";
                ch.allow_back = 1;
                rc = s_booking_change(db, env, m->referral_id, m->force, &ch, why, sizeof why);
            }
        }
        cara__attendance_recorded__free_unpacked(m, NULL);
    } else if (strcmp(env->type, "cara.CaseCompleted") == 0) {
        Cara__CaseCompleted *m =
            (Cara__CaseCompleted *)envelope_payload(env, &cara__case_completed__descriptor);
        if (!m)
            return s_undecodable(env, reason, reason_size);
        ch.status = "completed";
        ch.reason = "";
        rc = s_booking_change(db, env, m->referral_id, m->force, &ch, why, sizeof why);
        cara__case_completed__free_unpacked(m, NULL);
    } else if (strcmp(env->type, "cara.CaseNonCompliant") == 0) {
        Cara__CaseNonCompliant *m =
            (Cara__CaseNonCompliant *)envelope_payload(env, &cara__case_non_compliant__descriptor);
        if (!m)
            return s_undecodable(env, reason, reason_size);
        ch.status = "non_compliant";
        ch.reason = m->reason;
        rc = s_booking_change(db, env, m->referral_id, m->force, &ch, why, sizeof why);
        cara__case_non_compliant__free_unpacked(m, NULL);
    } else if (strcmp(env->type, "cara.BookingCancelled") == 0) {
        Cara__BookingCancelled *m =
            (Cara__BookingCancelled *)envelope_payload(env, &cara__booking_cancelled__descriptor);
        if (!m)
            return s_undecodable(env, reason, reason_size);
        // A withdrawal or a return reaches the police as its own status (from the triage
        // stream, which may be read before or after this); anything else means awaiting a new
        // booking.
        char cur[32] = "";
        if (strcmp(m->reason, "withdrawn") != 0 && strcmp(m->reason, "returned") != 0) {
            int found = s_current(db, m->referral_id, cur, sizeof cur);
            if (found < 0) {
                rc = -1;
            } else if (found == 0) {
                snprintf(why, sizeof why, "unknown referral %s", m->referral_id);
                rc = -2;
            } else if (strcmp(cur, "booked") == 0 || strcmp(cur, "attended_part_a") == 0) {
                snprintf(text, sizeof text, "booking cancelled: %.200s", m->reason);
                ch = (intake_outcome_change_t){
                    .status = "triaged", .reason = text, .set_booking = 1, .allow_back = 1};
                rc = s_booking_change(db, env, m->referral_id, m->force, &ch, why, sizeof why);
            }
        }
        cara__booking_cancelled__free_unpacked(m, NULL);
    } else if (strcmp(env->type, "cara.CaseReopened") == 0) {
        Cara__CaseReopened *m =
            (Cara__CaseReopened *)envelope_payload(env, &cara__case_reopened__descriptor);
        if (!m)
            return s_undecodable(env, reason, reason_size);
        // A non-compliance undone by a corrected attendance: booked again (the dates follow).
        ch = (intake_outcome_change_t){.status = "booked", .reason = "", .allow_back = 1};
        rc = s_booking_change(db, env, m->referral_id, m->force, &ch, why, sizeof why);
        cara__case_reopened__free_unpacked(m, NULL);
    } else if (strcmp(env->type, "cara.VictimContactRecorded") == 0) {
        Cara__VictimContactRecorded *m = (Cara__VictimContactRecorded *)envelope_payload(
            env, &cara__victim_contact_recorded__descriptor);
        if (!m)
            return s_undecodable(env, reason, reason_size);
        if (m->safety_concern)
            rc = s_safety_concern(db, m, why, sizeof why);
        cara__victim_contact_recorded__free_unpacked(m, NULL);
    } else {
        return APPLY_OK; // not an outcome the police see
    }
    return s_result(rc, why, reason, reason_size);
}
