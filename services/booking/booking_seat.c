// Seats: allocation into the earliest fitting cohort, never oversold (the cohort row's
// seats_taken is incremented only while below capacity, in one statement, and a CHECK
// constraint backs it up).
#include <stdio.h>
#include <string.h>

#include "booking.h"
#include "cara/stream.h"
#include "cara/timeutil.h"
#include "cara/uuid.h"

int booking_allocate(service_t *svc, const booking_case_t *c, const char *cohort_id,
                     const char *after, Cara__SeatResult *result, char *err, size_t err_size) {
    db_t *db = service_db(svc);
    int chosen = cohort_id && *cohort_id;
    const char *values[] = {c->provider, c->pathway, c->deadline,
                            after,       c->case_id, chosen ? cohort_id : NULL};
    // Take a seat and book it in one statement: the first scheduled cohort that fits and has
    // room (or the one chosen, if it fits and has room). Two texts, so that each has a plan that
    // fits it: the earliest open cohort is the first entry of the index cohort_open, the chosen
    // one a primary-key lookup ("$6 IS NULL OR ..." in one text made the generic plan sort them
    // all). "NOT is_full" is cohort_open's predicate (migration 004), named so the plan may use
    // it; seats_taken < capacity is the guard. No seat, no booking row.
#define S_TAKE_SEAT(chosen_cohort)                                                                 \
    "WITH seat AS (UPDATE cohort SET seats_taken = seats_taken + 1 WHERE cohort_id = ("            \
    " SELECT cohort_id FROM cohort WHERE provider_id = $1" chosen_cohort                           \
    " AND cohort_type = $2 AND status = 'scheduled' AND NOT is_full AND seats_taken < capacity"    \
    " AND part_a_date > greatest((now() AT TIME ZONE 'Europe/London')::date, $4::date)"            \
    " AND part_b_date < $3::date"                                                                  \
    " ORDER BY part_a_date, cohort_id LIMIT 1 FOR UPDATE)"                                         \
    " AND seats_taken < capacity"                                                                  \
    " RETURNING cohort_id, cohort_type, town, part_a_date::text, part_b_date::text),"              \
    " b AS (INSERT INTO booking (case_id, cohort_id) SELECT $5::uuid, cohort_id FROM seat"         \
    " RETURNING booking_id, to_char(booked_at AT TIME ZONE 'UTC',"                                 \
    " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS booked_at)"                                          \
    " SELECT seat.*, b.booking_id, b.booked_at FROM seat, b"
    PGresult *r = db_query(db, chosen ? S_TAKE_SEAT(" AND cohort_id = $6::uuid") : S_TAKE_SEAT(""),
                           chosen ? 6 : 5, values);
#undef S_TAKE_SEAT
    if (!r)
        return -1;
    if (PQntuples(r) == 0) {
        PQclear(r);
        snprintf(err, err_size, "no %s cohort with a free seat ends before the deadline %s",
                 c->pathway, c->deadline);
        return 0;
    }
    // Queued, like the event below: read back with the request (or the consumer's batch).
    const char *upd[] = {c->case_id};
    if (db_send(db, "UPDATE provider_case SET status = 'booked' WHERE case_id = $1", 1, upd, NULL,
                NULL) != 0) {
        PQclear(r);
        return -1;
    }
    Cara__SeatBooked ev = CARA__SEAT_BOOKED__INIT;
    ev.booking_id = PQgetvalue(r, 0, 5);
    ev.case_id = (char *)c->case_id;
    ev.referral_id = (char *)c->referral_id;
    ev.provider_id = (char *)c->provider;
    ev.force = (char *)c->force;
    ev.cohort_id = PQgetvalue(r, 0, 0);
    ev.cohort_type = PQgetvalue(r, 0, 1);
    ev.town = PQgetvalue(r, 0, 2);
    ev.part_a_date = PQgetvalue(r, 0, 3);
    ev.part_b_date = PQgetvalue(r, 0, 4);
    ev.booked_at = PQgetvalue(r, 0, 6);
    int rc =
        outbox_send(db, &ev.base, c->referral_id, c->provider, c->referral_id, NULL) != 0 ? -1 : 1;
    if (rc == 1 && result) {
        snprintf(result->booking_id, 40, "%s", ev.booking_id);
        snprintf(result->cohort_id, 40, "%s", ev.cohort_id);
        snprintf(result->part_a_date, 16, "%s", ev.part_a_date);
        snprintf(result->part_b_date, 16, "%s", ev.part_b_date);
    }
    PQclear(r);
    return rc;
}

int booking_cmd_book_seat(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                          reply_t *reply) {
    if (booking_require_provider(who, reply) != 0)
        return -1;
    Cara__BookSeat *req = (Cara__BookSeat *)envelope_payload(env, &cara__book_seat__descriptor);
    if (!req)
        return reply_field_error(reply, "payload", "not a valid cara.BookSeat");
    int rc = -1;
    booking_case_t c;
    char err[200];
    char booking_id[40] = "", cohort[40] = "", a[16] = "", b[16] = "";
    Cara__SeatResult result = CARA__SEAT_RESULT__INIT;
    result.booking_id = booking_id;
    result.cohort_id = cohort;
    result.part_a_date = a;
    result.part_b_date = b;
    if (*req->cohort_id && !uuid_valid(req->cohort_id)) {
        reply_field_error(reply, "cohort_id", "must be a UUID");
        goto cleanup;
    }
    int found = booking_case_load(service_db(svc), req->referral_id, who->org, &c);
    if (found != 1) {
        rc = booking_case_refuse(svc, who, req->referral_id, found, reply);
        goto cleanup;
    }
    if (strcmp(c.status, "open") != 0) {
        reply_status(reply, CARA__REPLY__STATUS__CONFLICT, "case is %s", c.status);
        goto cleanup;
    }
    int got = booking_allocate(svc, &c, req->cohort_id, NULL, &result, err, sizeof err);
    // Another provider's cohort: answered as a cohort that does not fit, and the attempt kept.
    int foreign =
        got == 0 && *req->cohort_id ? booking_cohort_audit_foreign(svc, who, req->cohort_id) : 0;
    if (foreign < 0)
        got = -1;
    if (got <= 0) {
        rc = foreign == 1 ? SERVICE_KEEP_WRITES : -1;
        reply_status(reply,
                     got < 0 ? CARA__REPLY__STATUS__UNAVAILABLE : CARA__REPLY__STATUS__CONFLICT,
                     "%s", got < 0 ? "database unavailable" : err);
        goto cleanup;
    }
    if (service_audit_send(svc, who, "seat_booked", "provider_case", c.referral_id,
                           json_pack("{s:s}", "cohort_id", cohort)) != 0)
        goto cleanup;
    rc = reply_ok(reply, &result.base);
cleanup:
    cara__book_seat__free_unpacked(req, NULL);
    return rc;
}

int booking_cmd_cancel_booking(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                               reply_t *reply) {
    if (booking_require_provider(who, reply) != 0)
        return -1;
    Cara__CancelBooking *req =
        (Cara__CancelBooking *)envelope_payload(env, &cara__cancel_booking__descriptor);
    if (!req)
        return reply_field_error(reply, "payload", "not a valid cara.CancelBooking");
    int rc = -1;
    booking_case_t c;
    if (!*req->reason || strlen(req->reason) > 500)
        reply_field_error(reply, "reason", "required, at most 500 characters");
    if (reply_error_count(reply))
        goto cleanup;
    int found = booking_case_load(service_db(svc), req->referral_id, who->org, &c);
    if (found != 1) {
        rc = booking_case_refuse(svc, who, req->referral_id, found, reply);
        goto cleanup;
    }
    if (strcmp(c.status, "booked") != 0) {
        reply_status(reply, CARA__REPLY__STATUS__CONFLICT, "case is %s, not booked", c.status);
        goto cleanup;
    }
    // The provider's reason stays in the audit and the booking row; the stream says "provider".
    const char *values[] = {c.case_id, req->reason};
    if (db_exec(service_db(svc),
                "UPDATE booking SET cancel_note = $2 WHERE case_id = $1 AND status = 'booked'", 2,
                values) != 0 ||
        booking_cancel_live(svc, &c, "provider") != 0 ||
        db_exec(service_db(svc), "UPDATE provider_case SET status = 'open' WHERE case_id = $1", 1,
                values) != 0 ||
        service_audit(svc, who, "booking_cancelled", "provider_case", c.referral_id,
                      json_pack("{s:s}", "reason", req->reason)) != 0)
        goto cleanup;
    rc = reply_ok(reply, NULL);
cleanup:
    if (rc != 0 && reply->msg.status == CARA__REPLY__STATUS__OK)
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "could not cancel the booking");
    cara__cancel_booking__free_unpacked(req, NULL);
    return rc;
}
