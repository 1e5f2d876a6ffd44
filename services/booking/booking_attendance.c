// Attendance at Part A and Part B. Both parts of the same booking attended: completed. A miss
// rebooks both parts in a later cohort that still ends before the deadline; with no time left
// the case is non-compliant and the police are told. Late means refused entry, which is a miss.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "booking.h"
#include "cara/stream.h"
#include "cara/timeutil.h"
#include "cara/uuid.h"

static const char *s_miss_reason(const char *status) {
    if (strcmp(status, "late_refused_entry") == 0)
        return "late_refused_entry";
    if (strcmp(status, "excluded") == 0)
        return "excluded";
    return "did_not_attend";
}

// Handles a missed part: rebook if a later cohort fits, else non-compliant.
static int s_after_miss(service_t *svc, booking_case_t *c, const char *booking_id,
                        const char *cohort_id, const char *status) {
    db_t *db = service_db(svc);
    const char *values[] = {booking_id};
    if (db_exec(db, "UPDATE booking SET status = 'missed', ended_reason = 'missed_part'"
                    " WHERE booking_id = $1",
                1, values) != 0)
        return -1;
    Cara__BookingCancelled ev = CARA__BOOKING_CANCELLED__INIT;
    ev.booking_id = (char *)booking_id;
    ev.case_id = c->case_id;
    ev.referral_id = c->referral_id;
    ev.provider_id = c->provider;
    ev.force = c->force;
    ev.cohort_id = (char *)cohort_id;
    ev.reason = "missed_part";
    if (outbox_append(db, &ev.base, c->referral_id, c->provider, c->referral_id, NULL) < 0)
        return -1;
    // Both parts again, in a cohort that starts after the one missed and ends before the
    // deadline.
    char err[200], after[16];
    const char *cv[] = {cohort_id};
    if (db_scalar(db, "SELECT part_a_date::text FROM cohort WHERE cohort_id = $1", 1, cv, after,
                  sizeof after) != 1)
        return -1;
    int got = booking_allocate(svc, c, NULL, after, NULL, err, sizeof err);
    if (got < 0)
        return -1;
    if (got == 1)
        return 0;
    return booking_case_close(svc, c, "non_compliant", s_miss_reason(status), cohort_id);
}

static int s_emit_delivered(service_t *svc, const char *cohort_id) {
    db_t *db = service_db(svc);
    const char *values[] = {cohort_id};
    PGresult *r = db_query(db,
                           "UPDATE cohort SET status = 'delivered',"
                           " delivered_revision = delivered_revision + 1 WHERE cohort_id = $1"
                           " RETURNING provider_id, cohort_type, part_a_date::text,"
                           " part_b_date::text, town, delivered_revision,"
                           " (SELECT count(*) FROM booking WHERE cohort_id = $1"
                           "  AND part_a = 'attended' AND part_b = 'attended')",
                           1, values);
    if (!r || PQntuples(r) != 1) {
        if (r)
            PQclear(r);
        return -1;
    }
    Cara__CohortDelivered ev = CARA__COHORT_DELIVERED__INIT;
    ev.cohort_id = (char *)cohort_id;
    ev.provider_id = PQgetvalue(r, 0, 0);
    ev.cohort_type = PQgetvalue(r, 0, 1);
    ev.part_a_date = PQgetvalue(r, 0, 2);
    ev.part_b_date = PQgetvalue(r, 0, 3);
    ev.town = PQgetvalue(r, 0, 4);
    ev.revision = (uint32_t)atoi(PQgetvalue(r, 0, 5));
    ev.participants = (uint32_t)atoi(PQgetvalue(r, 0, 6));
    int rc = outbox_append(db, &ev.base, cohort_id, ev.provider_id, NULL, NULL) < 0 ? -1 : 0;
    PQclear(r);
    return rc;
}

int booking_cmd_attendance(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                           reply_t *reply) {
    static const char *const statuses[] = {"attended", "absent", "late_refused_entry", "excluded"};
    if (booking_require_provider(who, reply) != 0)
        return -1;
    Cara__RecordAttendance *req =
        (Cara__RecordAttendance *)envelope_payload(env, &cara__record_attendance__descriptor);
    if (!req)
        return reply_field_error(reply, "payload", "not a valid cara.RecordAttendance");
    db_t *db = service_db(svc);
    int rc = -1;
    int part_b = strcmp(req->part, "B") == 0;
    if (!uuid_valid(req->cohort_id))
        reply_field_error(reply, "cohort_id", "must be a UUID");
    if (!part_b && strcmp(req->part, "A") != 0)
        reply_field_error(reply, "part", "must be A or B");
    for (size_t i = 0; i < req->n_entries; i++) {
        int ok = 0;
        for (int s = 0; s < 4; s++)
            ok |= strcmp(req->entries[i]->status, statuses[s]) == 0;
        char field[40];
        snprintf(field, sizeof field, "entries[%zu].status", i);
        if (!ok)
            reply_field_error(reply, field, "must be attended, absent, late_refused_entry or excluded");
    }
    if (reply_error_count(reply))
        goto cleanup;
    char date[16] = "", now[40];
    const char *cv[] = {req->cohort_id, who->org};
    if (db_scalar(db,
                  part_b ? "SELECT part_b_date::text FROM cohort WHERE cohort_id = $1 AND provider_id = $2"
                         : "SELECT part_a_date::text FROM cohort WHERE cohort_id = $1 AND provider_id = $2",
                  2, cv, date, sizeof date) != 1) {
        reply_status(reply, CARA__REPLY__STATUS__NOT_FOUND, "no such cohort for this provider");
        goto cleanup;
    }
    time_format_iso(time_now_us(), now, sizeof now);
    for (size_t i = 0; i < req->n_entries; i++) {
        const Cara__AttendanceEntry *e = req->entries[i];
        char field[48];
        snprintf(field, sizeof field, "entries[%zu].referral_id", i);
        booking_case_t c;
        if (booking_case_load(db, e->referral_id, who->org, &c) != 1) {
            reply_field_error(reply, field, "no such case for this provider");
            continue;
        }
        const char *bv[] = {c.case_id, req->cohort_id};
        PGresult *b = db_query(db,
                               "SELECT booking_id, status, coalesce(part_a, ''), coalesce(part_b, '')"
                               " FROM booking WHERE case_id = $1 AND cohort_id = $2"
                               " ORDER BY booked_at DESC LIMIT 1 FOR UPDATE",
                               2, bv);
        if (!b)
            goto cleanup;
        if (PQntuples(b) != 1) {
            PQclear(b);
            reply_field_error(reply, field, "not booked in this cohort");
            continue;
        }
        char booking_id[40], bstatus[16], a[24], bpart[24];
        snprintf(booking_id, sizeof booking_id, "%s", PQgetvalue(b, 0, 0));
        snprintf(bstatus, sizeof bstatus, "%s", PQgetvalue(b, 0, 1));
        snprintf(a, sizeof a, "%s", PQgetvalue(b, 0, 2));
        snprintf(bpart, sizeof bpart, "%s", PQgetvalue(b, 0, 3));
        PQclear(b);
        const char *previous = part_b ? bpart : a;
        int correction = *previous != '\0';
        if (correction && strcmp(previous, e->status) == 0)
            continue;  // recorded already: a repeat changes nothing
        if (correction && !*req->correction_reason) {
            reply_field_error(reply, field, "already recorded as %s: a correction needs a reason",
                              previous);
            continue;
        }
        if (!correction && strcmp(bstatus, "booked") != 0) {
            reply_field_error(reply, field, "booking is %s", bstatus);
            continue;
        }
        if (part_b && strcmp(a, "attended") != 0) {
            reply_field_error(reply, field, "Part A was not attended in this booking");
            continue;
        }
        const char *uv[] = {booking_id, e->status};
        if (db_exec(db,
                    part_b ? "UPDATE booking SET part_b = $2 WHERE booking_id = $1"
                           : "UPDATE booking SET part_a = $2 WHERE booking_id = $1",
                    2, uv) != 0)
            goto cleanup;
        Cara__AttendanceRecorded ev = CARA__ATTENDANCE_RECORDED__INIT;
        ev.booking_id = booking_id;
        ev.case_id = c.case_id;
        ev.referral_id = c.referral_id;
        ev.provider_id = c.provider;
        ev.force = c.force;
        ev.cohort_id = req->cohort_id;
        ev.part = part_b ? "B" : "A";
        ev.status = e->status;
        ev.session_date = date;
        ev.recorded_at = now;
        ev.correction = correction;
        ev.correction_reason = req->correction_reason;
        if (outbox_append(db, &ev.base, c.referral_id, c.provider, c.referral_id, NULL) < 0 ||
            service_audit(svc, who, correction ? "attendance_corrected" : "attendance_recorded",
                          "provider_case", c.referral_id,
                          json_pack("{s:s, s:s, s:s}", "part", ev.part, "status", e->status,
                                    "reason", req->correction_reason)) != 0)
            goto cleanup;
        if (correction)
            continue;  // outcomes already followed from the first record; audited above
        int attended = strcmp(e->status, "attended") == 0;
        if (!attended) {
            if (s_after_miss(svc, &c, booking_id, req->cohort_id, e->status) != 0)
                goto cleanup;
        } else if (part_b) {
            const char *done[] = {booking_id};
            if (db_exec(db, "UPDATE booking SET status = 'completed' WHERE booking_id = $1", 1,
                        done) != 0 ||
                booking_case_close(svc, &c, "completed", "completed", req->cohort_id) != 0)
                goto cleanup;
        }
    }
    if (reply_error_count(reply))
        goto cleanup;
    if (part_b && s_emit_delivered(svc, req->cohort_id) != 0)
        goto cleanup;
    rc = reply_ok(reply, NULL);
cleanup:
    if (rc != 0 && reply->msg.status == CARA__REPLY__STATUS__OK)
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "could not record attendance");
    cara__record_attendance__free_unpacked(req, NULL);
    return rc;
}
