// Attendance at Part A and Part B. Both parts of the same booking attended: completed. A miss
// rebooks both parts in a later cohort that still ends before the deadline; with no time left
// the case is non-compliant and the police are told. Late means refused entry, which is a miss.
// A correction (reason required, audited) has the consequence the corrected record would have
// had: a miss corrected to attended restores the original booking (replacement cancelled, a
// case the miss closed reopened) and completes it if both parts are now attended; an attended
// part corrected to a miss withdraws the completion it made (CaseReopened) and then rebooks or
// closes the case non-compliant like any miss.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "booking.h"
#include "booking_rules.h"
#include "cara/stream.h"
#include "cara/timeutil.h"
#include "cara/uuid.h"

// Handles a missed part: rebook if a later cohort fits, else non-compliant.
static int s_after_miss(service_t *svc, booking_case_t *c, const char *booking_id,
                        const char *cohort_id, const char *status) {
    db_t *db = service_db(svc);
    const char *values[] = {booking_id};
    if (db_exec(db,
                "UPDATE booking SET status = 'missed', ended_reason = 'missed_part'"
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
    return booking_case_close(svc, c, "non_compliant", booking_miss_reason(status), cohort_id);
}

// Reports the cohort delivered (both parts have taken place): the first time with revision 0,
// then again with revision + 1 whenever a later record or a correction changes what was
// reported. Returns 0 or -1.
static int s_report_delivered(service_t *svc, const char *cohort_id, int part_b_recorded,
                              int corrected) {
    db_t *db = service_db(svc);
    const char *values[] = {cohort_id, part_b_recorded ? "t" : "f", corrected ? "t" : "f"};
    PGresult *r = db_query(db,
                           "WITH n AS (SELECT count(*)::int AS n FROM booking WHERE cohort_id = $1"
                           "  AND part_a = 'attended' AND part_b = 'attended')"
                           " UPDATE cohort SET status = 'delivered',"
                           " delivered_revision = delivered_revision + 1,"
                           " delivered_participants = (SELECT n FROM n) WHERE cohort_id = $1"
                           " AND ((status = 'scheduled' AND $2::bool) OR (status = 'delivered'"
                           "  AND ($3::bool OR delivered_participants <> (SELECT n FROM n))))"
                           " RETURNING provider_id, cohort_type, part_a_date::text,"
                           " part_b_date::text, town, delivered_revision, delivered_participants",
                           3, values);
    if (!r)
        return -1;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return 0; // not delivered yet, or nothing changed since the last report
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

// Reopens a closed case after an attendance correction undid what closed it: CaseReopened
// ("attendance_corrected"), audited, the case booked again (the caller books or rebooks it).
// Returns 0 or -1.
static int s_reopen(service_t *svc, booking_case_t *c) {
    db_t *db = service_db(svc);
    const char *cv[] = {c->case_id};
    char now[40];
    Cara__CaseReopened ev = CARA__CASE_REOPENED__INIT;
    ev.case_id = c->case_id;
    ev.referral_id = c->referral_id;
    ev.provider_id = c->provider;
    ev.force = c->force;
    ev.reason = "attendance_corrected";
    ev.at = time_format_iso(time_now_us(), now, sizeof now);
    if (db_exec(db,
                "UPDATE provider_case SET status = 'booked', close_reason = NULL,"
                " closed_at = NULL WHERE case_id = $1",
                1, cv) != 0 ||
        outbox_append(db, &ev.base, c->referral_id, c->provider, c->referral_id, NULL) < 0 ||
        service_audit(svc, &(identity_t){"service", "booking"}, "case_reopened", "provider_case",
                      c->referral_id, json_pack("{s:s}", "reason", "attendance_corrected")) != 0)
        return -1;
    snprintf(c->status, sizeof c->status, "booked");
    return 0;
}

// Whether a non-compliant case was closed by the miss on booking_id: a miss reason (reason, or
// any if NULL) and no booking after this one (a replacement that an earlier correction
// cancelled, when it gave this booking back, does not count). Returns 1, 0, or -1 on error.
static int s_closed_by_miss(db_t *db, const booking_case_t *c, const char *booking_id,
                            const char *reason) {
    const char *cv[] = {c->case_id, booking_id, reason};
    char last[8] = "";
    int got = db_scalar(db,
                        "SELECT count(*) FROM provider_case p WHERE case_id = $1"
                        " AND (close_reason = $3 OR ($3 IS NULL AND close_reason IN"
                        " ('did_not_attend', 'late_refused_entry', 'excluded')))"
                        " AND NOT EXISTS (SELECT 1 FROM booking b"
                        " WHERE b.case_id = p.case_id AND b.booking_id <> $2"
                        " AND NOT (b.status = 'cancelled' AND b.ended_reason IS NOT DISTINCT FROM"
                        " 'attendance_corrected')"
                        " AND b.booked_at > (SELECT booked_at FROM booking WHERE booking_id = $2))",
                        3, cv, last, sizeof last);
    if (got != 1)
        return -1;
    return strcmp(last, "1") == 0;
}

// One kind of miss corrected to another (absent to late, say): a case that miss closed is
// closed again with the corrected reason, so the police and the national picture see it.
// Returns 0 or -1.
static int s_recorrected_miss(service_t *svc, booking_case_t *c, const char *booking_id,
                              const char *cohort_id, const char *previous, const char *status) {
    const char *was = booking_miss_reason(previous), *now = booking_miss_reason(status);
    if (strcmp(was, now) == 0 || strcmp(c->status, "non_compliant") != 0 || *c->stopped)
        return 0;
    int closed = s_closed_by_miss(service_db(svc), c, booking_id, was);
    if (closed <= 0)
        return closed;
    return booking_case_close(svc, c, "non_compliant", now, cohort_id);
}

// An attended part corrected to a miss: the same consequence as a miss recorded in the first
// place. A completion this booking made is withdrawn first (CaseReopened), then the booking is
// missed and both parts rebooked in a later cohort before the deadline, else non-compliant. A
// booking already missed (the other part was missed) or a case closed otherwise changes
// nothing more. Returns 0 or -1.
static int s_corrected_miss(service_t *svc, booking_case_t *c, const char *booking_id,
                            const char *bstatus, const char *cohort_id, const char *status) {
    // A booking no longer live (missed on its other part, or cancelled: the person moved to
    // another cohort) has its register corrected and nothing more: the case goes on with the
    // booking it has.
    // Nor does one whose referral was withdrawn or returned once the case was over: it stays
    // as it ended.
    if (strcmp(bstatus, "missed") == 0 || strcmp(bstatus, "cancelled") == 0 || *c->stopped)
        return 0;
    if (strcmp(bstatus, "completed") == 0 && strcmp(c->status, "completed") == 0 &&
        s_reopen(svc, c) != 0)
        return -1;
    if (strcmp(c->status, "open") != 0 && strcmp(c->status, "booked") != 0)
        return 0;
    return s_after_miss(svc, c, booking_id, cohort_id, status);
}

// A miss (Part A or Part B) corrected to attended: the booking the miss ended is the live one
// again. The
// replacement booking the miss triggered is cancelled (seat freed, BookingCancelled
// "attendance_corrected"), the original is booked again (SeatBooked with its own id and dates,
// so the police see the original dates) and the case is booked. A case this miss closed
// (non-compliant, no later booking) is reopened first (CaseReopened, audited); a case closed
// otherwise, completed through a later booking, or a booking whose cohort was cancelled is
// refused: the record would count the person in a cohort they no longer belong to (and bill
// it). Returns 1 restored, 2 refused (field error set), -1 on error.
static int s_restore_booking(service_t *svc, booking_case_t *c, const char *booking_id,
                             const char *field, reply_t *reply) {
    db_t *db = service_db(svc);
    const char *cv[] = {c->case_id, booking_id};
    char cohort[48] = "";
    if (db_scalar(db,
                  "SELECT c.status || ':' || c.cohort_type FROM booking b JOIN cohort c"
                  " USING (cohort_id) WHERE b.booking_id = $2 AND b.case_id = $1",
                  2, cv, cohort, sizeof cohort) != 1)
        return -1;
    const char *type = strchr(cohort, ':');
    if (*c->stopped) {
        reply_field_error(reply, field, "the referral was %s: this booking cannot come back",
                          c->stopped);
        return 2;
    }
    if (strncmp(cohort, "cancelled:", 10) == 0) {
        reply_field_error(reply, field, "the cohort was cancelled: this booking cannot come back");
        return 2;
    }
    if (!type || strcmp(type + 1, c->pathway) != 0) {
        // The case has moved pathway since (an amended sex or relationship).
        reply_field_error(reply, field, "the case is now on the %s pathway, not %s", c->pathway,
                          type ? type + 1 : "?");
        return 2;
    }
    if (strcmp(c->status, "non_compliant") == 0) {
        // Reopened only if this miss closed it.
        int closed = s_closed_by_miss(db, c, booking_id, NULL);
        if (closed < 0)
            return -1;
        if (!closed) {
            reply_field_error(reply, field,
                              "the case was closed by a later booking: correct that booking");
            return 2;
        }
        if (s_reopen(svc, c) != 0)
            return -1;
    }
    if (strcmp(c->status, "booked") != 0 && strcmp(c->status, "open") != 0) {
        reply_field_error(reply, field, "the case is %s: this booking cannot come back", c->status);
        return 2;
    }
    char recorded[8] = "";
    int got = db_scalar(db,
                        "SELECT count(*) FROM booking WHERE case_id = $1 AND status = 'booked'"
                        " AND (part_a IS NOT NULL OR part_b IS NOT NULL)",
                        1, cv, recorded, sizeof recorded);
    if (got != 1)
        return -1;
    if (strcmp(recorded, "0") != 0) {
        reply_field_error(reply, field,
                          "the rebooking has attendance recorded: correct that booking first");
        return 2;
    }
    if (booking_cancel_live(svc, c, "attendance_corrected") != 0)
        return -1;
    const char *bv[] = {booking_id, c->case_id};
    PGresult *r =
        db_query(db,
                 "WITH b AS (UPDATE booking SET status = 'booked', ended_reason = NULL"
                 "  WHERE booking_id = $1 AND status = 'missed'"
                 "  RETURNING cohort_id, booked_at),"
                 " p AS (UPDATE provider_case SET status = 'booked' WHERE case_id = $2)"
                 " SELECT b.cohort_id, cohort_type, town, part_a_date::text,"
                 " part_b_date::text, to_char(b.booked_at AT TIME ZONE 'UTC',"
                 " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM b JOIN cohort USING (cohort_id)",
                 2, bv);
    if (!r)
        return -1;
    int rc = -1;
    if (PQntuples(r) == 1) {
        Cara__SeatBooked ev = CARA__SEAT_BOOKED__INIT;
        ev.booking_id = (char *)booking_id;
        ev.case_id = c->case_id;
        ev.referral_id = c->referral_id;
        ev.provider_id = c->provider;
        ev.force = c->force;
        ev.cohort_id = PQgetvalue(r, 0, 0);
        ev.cohort_type = PQgetvalue(r, 0, 1);
        ev.town = PQgetvalue(r, 0, 2);
        ev.part_a_date = PQgetvalue(r, 0, 3);
        ev.part_b_date = PQgetvalue(r, 0, 4);
        ev.booked_at = PQgetvalue(r, 0, 5);
        if (outbox_append(db, &ev.base, c->referral_id, c->provider, c->referral_id, NULL) > 0 &&
            service_audit(svc, &(identity_t){"service", "booking"}, "booking_restored",
                          "provider_case", c->referral_id,
                          json_pack("{s:s}", "booking_id", booking_id)) == 0) {
            snprintf(c->status, sizeof c->status, "booked");
            rc = 1;
        }
    }
    PQclear(r);
    return rc;
}

int booking_cmd_attendance(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                           reply_t *reply) {
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
    if (req->n_entries == 0)
        reply_field_error(reply, "entries", "at least one entry");
    if (strlen(req->correction_reason) > 500)
        reply_field_error(reply, "correction_reason", "at most 500 characters");
    for (size_t i = 0; i < req->n_entries; i++) {
        char field[80];
        snprintf(field, sizeof field, "entries[%zu].status", i);
        if (!booking_attendance_status_valid(req->entries[i]->status))
            reply_field_error(reply, field,
                              "must be attended, absent, late_refused_entry or excluded");
        for (size_t k = 0; k < i; k++)
            if (strcmp(req->entries[k]->referral_id, req->entries[i]->referral_id) == 0) {
                snprintf(field, sizeof field, "entries[%zu].referral_id", i);
                reply_field_error(reply, field, "listed twice");
                break;
            }
    }
    if (reply_error_count(reply))
        goto cleanup;
    // The cohort row is locked for the rest of the request: a CancelCohort in the other lane
    // waits for this record (and its restores and rebookings) to commit, and this one for a
    // cancellation under way, so neither acts on bookings the other has moved. (Not FOR SHARE:
    // two records of one cohort would both hold it and then both update it, a deadlock.)
    char date[16] = "", now[40];
    const char *cv[] = {req->cohort_id, who->org};
    if (db_scalar(
            db,
            part_b
                ? "SELECT part_b_date::text FROM cohort WHERE cohort_id = $1 AND provider_id = $2"
                  " FOR NO KEY UPDATE"
                : "SELECT part_a_date::text FROM cohort WHERE cohort_id = $1 AND provider_id = $2"
                  " FOR NO KEY UPDATE",
            2, cv, date, sizeof date) != 1) {
        // Another provider's cohort is answered as a missing one, and the attempt kept.
        int foreign = booking_cohort_audit_foreign(svc, who, req->cohort_id);
        reply_status(
            reply, foreign < 0 ? CARA__REPLY__STATUS__UNAVAILABLE : CARA__REPLY__STATUS__NOT_FOUND,
            foreign < 0 ? "database unavailable" : "no such cohort for this provider");
        rc = foreign == 1 ? SERVICE_KEEP_WRITES : -1;
        goto cleanup;
    }
    // Attendance is a fact about a session that has taken place.
    int32_t session, today = time_uk_day(time_now_us());
    if (time_parse_date(date, &session) != 0 || session > today) {
        reply_status(reply, CARA__REPLY__STATUS__CONFLICT, "Part %s (%s) has not taken place yet",
                     part_b ? "B" : "A", date);
        goto cleanup;
    }
    // Before any write: an entry for a case this provider does not have is answered as missing;
    // one for another provider's case is also audited, and that record is kept.
    int foreign = 0;
    for (size_t i = 0; i < req->n_entries; i++) {
        booking_case_t c;
        int found = booking_case_load(db, req->entries[i]->referral_id, who->org, &c);
        int audited =
            found == 0 ? booking_case_audit_foreign(svc, who, req->entries[i]->referral_id) : 0;
        if (found < 0 || audited < 0)
            goto cleanup;
        if (found == 0) {
            char field[80];
            snprintf(field, sizeof field, "entries[%zu].referral_id", i);
            reply_field_error(reply, field, "no such case for this provider");
            foreign += audited;
        }
    }
    if (reply_error_count(reply)) {
        rc = foreign ? SERVICE_KEEP_WRITES : -1;
        goto cleanup;
    }
    int corrected = 0;
    time_format_iso(time_now_us(), now, sizeof now);
    for (size_t i = 0; i < req->n_entries; i++) {
        const Cara__AttendanceEntry *e = req->entries[i];
        char field[80];
        snprintf(field, sizeof field, "entries[%zu].referral_id", i);
        booking_case_t c;
        if (booking_case_load(db, e->referral_id, who->org, &c) != 1) {
            reply_field_error(reply, field, "no such case for this provider");
            continue;
        }
        const char *bv[] = {c.case_id, req->cohort_id};
        PGresult *b =
            db_query(db,
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
            continue; // recorded already: a repeat changes nothing
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
        // A miss corrected to attended (either part): the original booking comes back before
        // the record is published, so the police read booked (original dates) then the part.
        // Only a booking its corrected part ended comes back: one whose Part B is recorded as
        // a miss stays missed when its Part A is corrected to attended (register only).
        int restored = 0;
        if (correction && strcmp(e->status, "attended") == 0 && strcmp(bstatus, "missed") == 0 &&
            (part_b || !*bpart || strcmp(bpart, "attended") == 0)) {
            restored = s_restore_booking(svc, &c, booking_id, field, reply);
            if (restored < 0)
                goto cleanup;
            if (restored == 2)
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
        ev.register_only = correction && restored != 1 &&
                           (strcmp(bstatus, "missed") == 0 || strcmp(bstatus, "cancelled") == 0 ||
                            *c.stopped || strcmp(c.status, "withdrawn") == 0);
        if (outbox_append(db, &ev.base, c.referral_id, c.provider, c.referral_id, NULL) < 0 ||
            service_audit(svc, who, correction ? "attendance_corrected" : "attendance_recorded",
                          "provider_case", c.referral_id,
                          json_pack("{s:s, s:s, s:s}", "part", ev.part, "status", e->status,
                                    "reason", req->correction_reason)) != 0)
            goto cleanup;
        int attended = strcmp(e->status, "attended") == 0;
        if (correction) {
            corrected = 1;
            // An attended part corrected to a miss has a miss's consequence; a miss corrected
            // to attended completes if the restored booking now has both parts attended; one
            // miss corrected to another changes the reason of the case it closed.
            int prev_attended = strcmp(previous, "attended") == 0;
            if (!attended && prev_attended &&
                s_corrected_miss(svc, &c, booking_id, bstatus, req->cohort_id, e->status) != 0)
                goto cleanup;
            if (!attended && !prev_attended &&
                s_recorrected_miss(svc, &c, booking_id, req->cohort_id, previous, e->status) != 0)
                goto cleanup;
            if (!(attended && restored == 1 && (part_b || strcmp(bpart, "attended") == 0)))
                continue;
        }
        if (!attended) {
            if (s_after_miss(svc, &c, booking_id, req->cohort_id, e->status) != 0)
                goto cleanup;
        } else if (part_b || correction) {
            const char *done[] = {booking_id};
            if (db_exec(db, "UPDATE booking SET status = 'completed' WHERE booking_id = $1", 1,
                        done) != 0 ||
                booking_case_close(svc, &c, "completed", "completed", req->cohort_id) != 0)
                goto cleanup;
        }
    }
    if (reply_error_count(reply))
        goto cleanup;
    if (s_report_delivered(svc, req->cohort_id, part_b, corrected) != 0)
        goto cleanup;
    rc = reply_ok(reply, NULL);
cleanup:
    if (rc != 0 && reply->msg.status == CARA__REPLY__STATUS__OK)
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "could not record attendance");
    cara__record_attendance__free_unpacked(req, NULL);
    return rc;
}
