// Provider cases: opened from the triage stream, closed on completion, non-compliance or
// withdrawal.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "booking.h"
#include "booking_rules.h"
#include "cara/log.h"
#include "cara/stream.h"
#include "cara/timeutil.h"
#include "cara/uuid.h"
#include "triage.pb-c.h"

static const identity_t s_triage = {"service", "triage"};
static const identity_t s_system = {"service", "booking"};

int booking_require_provider(const identity_t *who, reply_t *reply) {
    if (identity_is(who, "provider"))
        return 0;
    reply_status(reply, CARA__REPLY__STATUS__FORBIDDEN, "only provider staff may do this");
    return -1;
}

int booking_require_victim_contact(const identity_t *who, reply_t *reply) {
    if (identity_is(who, "victim_contact"))
        return 0;
    reply_status(reply, CARA__REPLY__STATUS__FORBIDDEN,
                 "only the provider's victim contact role may record or read victim contact");
    return -1;
}

int booking_case_load(db_t *db, const char *referral_id, const char *provider,
                      booking_case_t *out) {
    if (!uuid_valid(referral_id))
        return 0;
    const char *values[] = {referral_id, provider};
    PGresult *r = db_query(db,
                           "SELECT case_id, referral_id, provider_id, force, pathway, status,"
                           " compliance_deadline::text, coalesce(stopped, '') FROM provider_case"
                           " WHERE referral_id = $1"
                           " AND ($2::text IS NULL OR provider_id = $2) FOR UPDATE",
                           2, values);
    if (!r)
        return -1;
    int found = PQntuples(r) == 1;
    if (found) {
        snprintf(out->case_id, sizeof out->case_id, "%s", PQgetvalue(r, 0, 0));
        snprintf(out->referral_id, sizeof out->referral_id, "%s", PQgetvalue(r, 0, 1));
        snprintf(out->provider, sizeof out->provider, "%s", PQgetvalue(r, 0, 2));
        snprintf(out->force, sizeof out->force, "%s", PQgetvalue(r, 0, 3));
        snprintf(out->pathway, sizeof out->pathway, "%s", PQgetvalue(r, 0, 4));
        snprintf(out->status, sizeof out->status, "%s", PQgetvalue(r, 0, 5));
        snprintf(out->deadline, sizeof out->deadline, "%s", PQgetvalue(r, 0, 6));
        snprintf(out->stopped, sizeof out->stopped, "%s", PQgetvalue(r, 0, 7));
    }
    PQclear(r);
    return found;
}

int booking_case_audit_foreign(service_t *svc, const identity_t *who, const char *referral_id) {
    if (!uuid_valid(referral_id))
        return 0;
    const char *values[] = {referral_id, who->org};
    char theirs[8] = "";
    if (db_scalar(service_db(svc),
                  "SELECT count(*) FROM provider_case WHERE referral_id = $1 AND provider_id <> $2",
                  2, values, theirs, sizeof theirs) != 1)
        return -1;
    if (strcmp(theirs, "1") != 0)
        return 0;
    return service_audit(svc, who, "refused", "provider_case", referral_id,
                         json_pack("{s:s}", "reason", "another provider's case")) == 0
               ? 1
               : -1;
}

int booking_case_refuse(service_t *svc, const identity_t *who, const char *referral_id, int found,
                        reply_t *reply) {
    if (found < 0) {
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable");
        return -1;
    }
    // Another provider's case: the caller hears what it would for a missing one; we keep a note.
    int foreign = booking_case_audit_foreign(svc, who, referral_id);
    reply_status(reply,
                 foreign < 0 ? CARA__REPLY__STATUS__UNAVAILABLE : CARA__REPLY__STATUS__NOT_FOUND,
                 foreign < 0 ? "database unavailable" : "no such case for this provider");
    return foreign == 1 ? SERVICE_KEEP_WRITES : -1;
}

int booking_case_close(service_t *svc, const booking_case_t *c, const char *status,
                       const char *reason, const char *cohort_id) {
    db_t *db = service_db(svc);
    const char *values[] = {c->case_id, status, reason};
    if (db_exec(db,
                "UPDATE provider_case SET status = $2, close_reason = $3, closed_at = now()"
                " WHERE case_id = $1",
                3, values) != 0)
        return -1;
    char now[40];
    time_format_iso(time_now_us(), now, sizeof now);
    int64_t seq;
    if (strcmp(status, "completed") == 0) {
        Cara__CaseCompleted ev = CARA__CASE_COMPLETED__INIT;
        ev.case_id = (char *)c->case_id;
        ev.referral_id = (char *)c->referral_id;
        ev.provider_id = (char *)c->provider;
        ev.force = (char *)c->force;
        ev.pathway = (char *)c->pathway;
        ev.completed_at = now;
        ev.cohort_id = (char *)(cohort_id ? cohort_id : "");
        seq = outbox_append(db, &ev.base, c->referral_id, c->provider, c->referral_id, NULL);
    } else {
        Cara__CaseNonCompliant ev = CARA__CASE_NON_COMPLIANT__INIT;
        ev.case_id = (char *)c->case_id;
        ev.referral_id = (char *)c->referral_id;
        ev.provider_id = (char *)c->provider;
        ev.force = (char *)c->force;
        ev.reason = (char *)reason;
        ev.at = now;
        seq = outbox_append(db, &ev.base, c->referral_id, c->provider, c->referral_id, NULL);
    }
    if (seq < 0)
        return -1;
    return service_audit(svc, &s_system, status, "provider_case", c->referral_id,
                         json_pack("{s:s}", "reason", reason));
}

int booking_cancel_live(service_t *svc, const booking_case_t *c, const char *reason) {
    return booking_cancel_in_cohort(svc, c, reason, NULL) < 0 ? -1 : 0;
}

int booking_cancel_in_cohort(service_t *svc, const booking_case_t *c, const char *reason,
                             const char *cohort_id) {
    db_t *db = service_db(svc);
    const char *values[] = {c->case_id, reason, cohort_id};
    PGresult *r = db_query(db,
                           "UPDATE booking SET status = 'cancelled', ended_reason = $2"
                           " WHERE case_id = $1 AND status = 'booked'"
                           " AND ($3::uuid IS NULL OR cohort_id = $3::uuid)"
                           " RETURNING booking_id, cohort_id",
                           3, values);
    if (!r)
        return -1;
    int rc = PQntuples(r);
    for (int i = 0; i < PQntuples(r) && rc >= 0; i++) {
        const char *cohort[] = {PQgetvalue(r, i, 1)};
        if (db_exec(db, "UPDATE cohort SET seats_taken = seats_taken - 1 WHERE cohort_id = $1", 1,
                    cohort) != 0) {
            rc = -1;
            break;
        }
        Cara__BookingCancelled ev = CARA__BOOKING_CANCELLED__INIT;
        ev.booking_id = PQgetvalue(r, i, 0);
        ev.case_id = (char *)c->case_id;
        ev.referral_id = (char *)c->referral_id;
        ev.provider_id = (char *)c->provider;
        ev.force = (char *)c->force;
        ev.cohort_id = PQgetvalue(r, i, 1);
        ev.reason = (char *)reason;
        if (outbox_append(db, &ev.base, c->referral_id, c->provider, c->referral_id, NULL) < 0)
            rc = -1;
    }
    PQclear(r);
    return rc;
}

// The day first contact is due for a case cautioned on day caution: first_contact_days (default
// 14) after it, in calendar or working days as the provider's settings for force say. Writes
// YYYY-MM-DD to due. Returns 0, or -1 if the calendar is malformed (logged).
static int s_first_contact_due(config_t *cfg, const char *provider, const char *force,
                               int32_t caution, char *due, size_t due_size) {
    int64_t days = booking_setting(cfg, provider, force, "first_contact_days", 14);
    int32_t due_day = (int32_t)(caution + days);
    if (booking_contact_in_working_days(cfg, provider, force)) {
        booking_calendar_t cal;
        char err[200];
        if (booking_calendar_load(cfg, provider, force, &cal, err, sizeof err) != 0) {
            log_error("booking_calendar_invalid", "provider", provider, "force", force, "reason",
                      err);
            return -1;
        }
        due_day = booking_calendar_add(&cal, caution, days);
        booking_calendar_clear(&cal);
    }
    time_format_date(due_day, due, due_size);
    return 0;
}

// Cancels case c's live booking if it is booked (why: the BookingCancelled reason), opens it on
// pathway (NULL: its own), and places it in the earliest cohort that fits, or leaves it open
// (and so on the shortfall report). Returns 0 or -1.
static int s_rebook(service_t *svc, booking_case_t *c, const char *why, const char *pathway) {
    if (pathway)
        snprintf(c->pathway, sizeof c->pathway, "%s", pathway);
    const char *values[] = {c->case_id, c->pathway};
    char err[200];
    if ((strcmp(c->status, "booked") == 0 && booking_cancel_live(svc, c, why) != 0) ||
        db_exec(service_db(svc),
                "UPDATE provider_case SET status = 'open', pathway = $2 WHERE case_id = $1", 2,
                values) != 0)
        return -1;
    snprintf(c->status, sizeof c->status, "open");
    return booking_allocate(svc, c, NULL, NULL, NULL, err, sizeof err) < 0 ? -1 : 0;
}

// After a deadline change: a booking whose Part B no longer ends before the deadline is
// cancelled ("rebooked") and the case placed in the earliest cohort that still fits, or left
// open (and so on the shortfall report). Returns 0 or -1.
static int s_refit(service_t *svc, const char *referral_id) {
    db_t *db = service_db(svc);
    booking_case_t c;
    int found = booking_case_load(db, referral_id, NULL, &c);
    if (found <= 0 || strcmp(c.status, "booked") != 0)
        return found < 0 ? -1 : 0;
    const char *values[] = {c.case_id};
    char late[8] = "";
    if (db_scalar(
            db,
            "SELECT count(*) FROM booking b JOIN cohort USING (cohort_id) JOIN provider_case p"
            " USING (case_id) WHERE b.case_id = $1 AND b.status = 'booked'"
            " AND part_b_date >= p.compliance_deadline",
            1, values, late, sizeof late) != 1)
        return -1;
    if (strcmp(late, "0") == 0)
        return 0;
    return s_rebook(svc, &c, "rebooked", NULL);
}

// An amendment after routing: the amended referral (personal data for contact), and what it
// changed of the case: the deadline, the caution date (and so the first contact's due date), the
// victim's consent, and the pathway (the offender's sex or the relationship corrected), which is
// stored whatever the case's state, so no correction brings back a booking of the old type. A
// change is told to the provider's system (CaseUpdated) before what follows from it: a live
// case on a new pathway has its booking in a cohort of the old type cancelled
// ("pathway_changed") and is placed in the earliest cohort of the new type that fits, or left
// open; a booking that no longer ends before the deadline is cancelled ("rebooked") and the case
// placed again (s_refit).
static apply_result_t s_on_updated(service_t *svc, const Cara__TriageCaseUpdated *ev, char *reason,
                                   size_t reason_size) {
    int32_t day, caution;
    if (!uuid_valid(ev->referral_id) ||
        (*ev->compliance_deadline && time_parse_date(ev->compliance_deadline, &day) != 0)) {
        snprintf(reason, reason_size, "case update without id or with a malformed deadline");
        return APPLY_POISON;
    }
    if (*ev->pathway && !booking_cohort_type_valid(ev->pathway)) {
        snprintf(reason, reason_size, "case update with pathway \"%.40s\"", ev->pathway);
        return APPLY_POISON;
    }
    db_t *db = service_db(svc);
    booking_case_t c;
    int found = booking_case_load(db, ev->referral_id, NULL, &c);
    if (found <= 0)
        return found < 0 ? APPLY_RETRY : APPLY_OK; // not found: never routed here
    char caution_date[16] = "", due[16] = "";
    if (ev->referral && ev->referral->caution &&
        time_written_date(ev->referral->caution->given_at, &caution) == 0) {
        time_format_date(caution, caution_date, sizeof caution_date);
        if (s_first_contact_due(service_config(svc), c.provider, c.force, caution, due,
                                sizeof due) != 0)
            return APPLY_RETRY;
    }
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (ev->referral && envelope_encode_message(&ev->referral->base, &bytes, &len) != 0)
        return APPLY_RETRY;
    // The victim's consent as the amendment states it ("" in older events: unchanged).
    const char *consent = strcmp(ev->victim_contact, "yes") == 0  ? "true"
                          : strcmp(ev->victim_contact, "no") == 0 ? "false"
                                                                  : NULL;
    const char *values[] = {
        c.case_id,        ev->compliance_deadline,           (const char *)bytes,
        consent,          *ev->pathway ? ev->pathway : NULL, *caution_date ? caution_date : NULL,
        *due ? due : NULL};
    int lengths[] = {0, 0, (int)len, 0, 0, 0, 0};
    int formats[] = {0, 0, 1, 0, 0, 0, 0};
    PGresult *r = db_query_bin(
        db,
        "UPDATE provider_case p SET compliance_deadline ="
        " coalesce(nullif($2, '')::date, p.compliance_deadline),"
        " referral = coalesce($3, p.referral),"
        " victim_contact = coalesce($4::boolean, p.victim_contact),"
        " pathway = coalesce($5, p.pathway), caution_date = coalesce($6::date, p.caution_date),"
        " first_contact_due = CASE WHEN $6::date IS DISTINCT FROM p.caution_date"
        "  THEN coalesce($7::date, p.first_contact_due) ELSE p.first_contact_due END"
        " FROM (SELECT pathway, compliance_deadline, first_contact_due, victim_contact"
        "  FROM provider_case WHERE case_id = $1) o WHERE p.case_id = $1"
        " RETURNING p.pathway, p.compliance_deadline::text, p.first_contact_due::text,"
        " p.victim_contact, (p.pathway, p.compliance_deadline, p.first_contact_due,"
        " p.victim_contact) IS DISTINCT FROM (o.pathway, o.compliance_deadline,"
        " o.first_contact_due, o.victim_contact)",
        7, values, lengths, formats, 0);
    free(bytes);
    if (!r)
        return APPLY_RETRY;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return APPLY_RETRY;
    }
    char was[32], now[40];
    snprintf(was, sizeof was, "%s", c.pathway);
    snprintf(c.pathway, sizeof c.pathway, "%s", PQgetvalue(r, 0, 0));
    snprintf(c.deadline, sizeof c.deadline, "%s", PQgetvalue(r, 0, 1));
    Cara__CaseUpdated out = CARA__CASE_UPDATED__INIT;
    out.case_id = c.case_id;
    out.referral_id = c.referral_id;
    out.provider_id = c.provider;
    out.force = c.force;
    out.pathway = c.pathway;
    out.compliance_deadline = c.deadline;
    out.first_contact_due = PQgetvalue(r, 0, 2);
    out.victim_contact = strcmp(PQgetvalue(r, 0, 3), "t") == 0;
    out.at = time_format_iso(time_now_us(), now, sizeof now);
    int changed = strcmp(PQgetvalue(r, 0, 4), "t") == 0 && strcmp(c.status, "withdrawn") != 0;
    int rc =
        changed
            ? (outbox_append(db, &out.base, c.referral_id, c.provider, c.referral_id, NULL) < 0 ? -1
                                                                                                : 0)
            : 0;
    PQclear(r);
    if (rc != 0)
        return APPLY_RETRY;
    if (strcmp(was, c.pathway) != 0) {
        int live = strcmp(c.status, "open") == 0 || strcmp(c.status, "booked") == 0;
        if (service_audit(svc, &s_triage, "pathway_changed", "provider_case", c.referral_id,
                          json_pack("{s:s, s:s}", "from", was, "to", c.pathway)) != 0 ||
            (live && s_rebook(svc, &c, "pathway_changed", NULL) != 0))
            return APPLY_RETRY;
    } else if (s_refit(svc, ev->referral_id) != 0) {
        return APPLY_RETRY;
    }
    return service_audit(svc, &s_triage, "amended", "provider_case", ev->referral_id, NULL) == 0
               ? APPLY_OK
               : APPLY_RETRY;
}

// A routing of a case booking already holds, not closed by a return (s_on_triaged): a case that
// was over (completed, non-compliant) when triage returned it, now routed again by a later
// amendment. It stays over, but takes the routing as an amendment would (the pathway, deadline,
// caution date, consent and referral; CaseUpdated if they changed) and is no longer stopped, so
// corrections of its register act again. Any other case (a repeat of a routing) is left alone.
static apply_result_t s_on_rerouted(service_t *svc, const Cara__ReferralTriaged *ev, char *reason,
                                    size_t reason_size) {
    const char *id[] = {ev->referral_id};
    char stopped[16] = "";
    int got = db_scalar(service_db(svc),
                        "SELECT coalesce(stopped, '') FROM provider_case WHERE referral_id = $1", 1,
                        id, stopped, sizeof stopped);
    if (got < 0)
        return APPLY_RETRY;
    if (got == 0 || strcmp(stopped, "returned") != 0)
        return APPLY_OK;
    Cara__TriageCaseUpdated up = CARA__TRIAGE_CASE_UPDATED__INIT;
    up.referral_id = ev->referral_id;
    up.force = ev->force;
    up.provider_id = ev->provider_id;
    up.referral = ev->referral;
    up.compliance_deadline = ev->compliance_deadline;
    up.pathway = ev->pathway;
    up.victim_contact = ev->victim_contact ? "yes" : "no";
    up.reason = "amendment";
    apply_result_t rc = s_on_updated(svc, &up, reason, reason_size);
    if (rc != APPLY_OK)
        return rc;
    return db_exec(service_db(svc),
                   "UPDATE provider_case SET stopped = NULL WHERE referral_id = $1", 1, id) == 0
               ? APPLY_OK
               : APPLY_RETRY;
}

static apply_result_t s_on_triaged(service_t *svc, const Cara__ReferralTriaged *ev, char *reason,
                                   size_t reason_size) {
    db_t *db = service_db(svc);
    int32_t caution, deadline;
    if (!uuid_valid(ev->referral_id) || !ev->referral ||
        time_parse_date(ev->caution_date, &caution) != 0 ||
        time_parse_date(ev->compliance_deadline, &deadline) != 0) {
        snprintf(reason, reason_size, "triaged referral without id, caution date or deadline");
        return APPLY_POISON;
    }
    if (!*ev->provider_id || !booking_cohort_type_valid(ev->pathway)) {
        snprintf(reason, reason_size, "triaged referral without provider or with pathway \"%.40s\"",
                 ev->pathway);
        return APPLY_POISON;
    }
    char due[16];
    if (s_first_contact_due(service_config(svc), ev->provider_id, ev->force, caution, due,
                            sizeof due) != 0)
        return APPLY_RETRY; // a configuration error: nothing is opened until it is fixed
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (envelope_encode_message(&ev->referral->base, &bytes, &len) != 0)
        return APPLY_RETRY;
    const char *values[] = {
        ev->referral_id,         ev->provider_id,  ev->force, ev->pathway,
        ev->compliance_deadline, ev->caution_date, due,       ev->victim_contact ? "true" : "false",
        (const char *)bytes};
    int lengths[] = {0, 0, 0, 0, 0, 0, 0, 0, (int)len};
    int formats[] = {0, 0, 0, 0, 0, 0, 0, 0, 1};
    PGresult *r =
        db_query_bin(db,
                     "INSERT INTO provider_case (referral_id, provider_id, force, pathway,"
                     " compliance_deadline, caution_date, first_contact_due,"
                     " victim_contact, referral)"
                     " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                     // A case closed because triage returned it (an amendment made it
                     // ineligible) opens again when a later amendment has it routed again.
                     " ON CONFLICT (referral_id) DO UPDATE SET provider_id = $2, pathway = $4,"
                     " compliance_deadline = $5, caution_date = $6, first_contact_due = $7,"
                     " victim_contact = $8, referral = $9, status = 'open', closed_at = NULL,"
                     // another provider has yet to reach the offender
                     " close_reason = NULL, first_contacted_at = CASE WHEN"
                     " provider_case.provider_id = $2 THEN provider_case.first_contacted_at END"
                     " WHERE provider_case.status = 'withdrawn'"
                     " AND provider_case.close_reason = 'returned' RETURNING case_id",
                     9, values, lengths, formats, 0);
    free(bytes);
    if (!r)
        return APPLY_RETRY;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return s_on_rerouted(svc, ev, reason, reason_size);
    }
    char case_id[40], now[40];
    snprintf(case_id, sizeof case_id, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    Cara__CaseOpened out = CARA__CASE_OPENED__INIT;
    out.case_id = case_id;
    out.referral_id = ev->referral_id;
    out.provider_id = ev->provider_id;
    out.force = ev->force;
    out.pathway = ev->pathway;
    out.compliance_deadline = ev->compliance_deadline;
    out.first_contact_due = due;
    out.opened_at = time_format_iso(time_now_us(), now, sizeof now);
    // Queued writes (db_send): the consumer reads them back with the batch.
    if (outbox_send(db, &out.base, ev->referral_id, ev->provider_id, ev->referral_id, NULL) != 0 ||
        service_audit_send(svc, &s_triage, "case_opened", "provider_case", ev->referral_id, NULL) !=
            0)
        return APPLY_RETRY;
    return APPLY_OK;
}

// An open or booked case is closed: its live booking is cancelled with why as the reason,
// CaseWithdrawn tells the provider's system, and a later amendment that has a returned case
// routed again opens it again, the same case (s_on_triaged). A case closed by a return that the
// police then withdraw is closed for good (close reason withdrawn, CaseWithdrawn again). A case
// already over (completed, non-compliant) keeps the provider's record of how it ended, marked
// stopped (why), so that no attendance correction reopens or rebooks it; intake tells the police.
// A referral withdrawn or returned before routing has no case here. Returns APPLY_OK or
// APPLY_RETRY.
static apply_result_t s_close_withdrawn(service_t *svc, const char *referral_id, const char *why) {
    booking_case_t c;
    int found = booking_case_load(service_db(svc), referral_id, NULL, &c);
    if (found < 0)
        return APPLY_RETRY;
    if (found == 0)
        return APPLY_OK;
    db_t *db = service_db(svc);
    const char *values[] = {c.case_id, why};
    int closed = strcmp(c.status, "withdrawn") == 0;
    if (closed) {
        if (strcmp(why, "withdrawn") != 0)
            return APPLY_OK;
        char was[8] = "";
        int got = db_scalar(db,
                            "UPDATE provider_case SET close_reason = 'withdrawn' WHERE case_id = $1"
                            " AND close_reason = 'returned' RETURNING 1",
                            1, values, was, sizeof was);
        if (got <= 0)
            return got < 0 ? APPLY_RETRY : APPLY_OK; // withdrawn already
    } else if (strcmp(c.status, "open") != 0 && strcmp(c.status, "booked") != 0) {
        return db_exec(db, "UPDATE provider_case SET stopped = $2 WHERE case_id = $1", 2, values) ==
                           0 &&
                       service_audit(svc, &s_triage, why, "provider_case", c.referral_id,
                                     json_pack("{s:s}", "ended", c.status)) == 0
                   ? APPLY_OK
                   : APPLY_RETRY;
    }
    char now[40];
    Cara__CaseWithdrawn ev = CARA__CASE_WITHDRAWN__INIT;
    ev.case_id = c.case_id;
    ev.referral_id = c.referral_id;
    ev.provider_id = c.provider;
    ev.force = c.force;
    ev.reason = (char *)why;
    ev.at = time_format_iso(time_now_us(), now, sizeof now);
    if ((!closed && (booking_cancel_live(svc, &c, why) != 0 ||
                     db_exec(db,
                             "UPDATE provider_case SET status = 'withdrawn', close_reason = $2,"
                             " closed_at = now() WHERE case_id = $1",
                             2, values) != 0)) ||
        outbox_append(db, &ev.base, c.referral_id, c.provider, c.referral_id, NULL) < 0 ||
        service_audit(svc, &s_triage, why, "provider_case", c.referral_id, NULL) != 0)
        return APPLY_RETRY;
    return APPLY_OK;
}

apply_result_t booking_case_apply(db_t *db, const Cara__Envelope *env, uint64_t seq, void *arg,
                                  char *reason, size_t reason_size) {
    (void)db;
    (void)seq;
    service_t *svc = arg;
    ProtobufCMessage *msg = NULL;
    apply_result_t rc = APPLY_OK;
    if (strcmp(env->type, "cara.ReferralTriaged") == 0) {
        if ((msg = envelope_payload(env, &cara__referral_triaged__descriptor)))
            rc = s_on_triaged(svc, (Cara__ReferralTriaged *)msg, reason, reason_size);
    } else if (strcmp(env->type, "cara.TriageCaseUpdated") == 0) {
        if ((msg = envelope_payload(env, &cara__triage_case_updated__descriptor)))
            rc = s_on_updated(svc, (Cara__TriageCaseUpdated *)msg, reason, reason_size);
    } else if (strcmp(env->type, "cara.TriageCaseWithdrawn") == 0) {
        if ((msg = envelope_payload(env, &cara__triage_case_withdrawn__descriptor)))
            rc = s_close_withdrawn(svc, ((Cara__TriageCaseWithdrawn *)msg)->referral_id,
                                   "withdrawn");
    } else if (strcmp(env->type, "cara.ReferralReturned") == 0) {
        if ((msg = envelope_payload(env, &cara__referral_returned__descriptor)))
            rc = s_close_withdrawn(svc, ((Cara__ReferralReturned *)msg)->referral_id, "returned");
    } else {
        return APPLY_OK;
    }
    if (!msg) {
        snprintf(reason, reason_size, "undecodable %s", env->type);
        return APPLY_POISON;
    }
    protobuf_c_message_free_unpacked(msg, NULL);
    return rc;
}

// Cases still open (no place taken) whose deadline has passed can never be booked: they become
// non-compliant, so the police hear the outcome: "refused" if the offender's last answer to the
// provider was a refusal, "not_contactable" if never reached, else "not_booked" (reached, but no
// place was taken in time). Booked cases whose deadline passed are left to attendance outcomes.
void booking_case_tick(service_t *svc) {
    db_t *db = service_db(svc);
    if (db_begin(db) != 0)
        return;
    PGresult *r =
        db_query(db,
                 "SELECT p.referral_id, CASE WHEN (SELECT a.outcome FROM contact_attempt a"
                 " WHERE a.case_id = p.case_id ORDER BY a.at DESC, a.id DESC LIMIT 1)"
                 " = 'refused' THEN 'refused' WHEN p.first_contacted_at IS NULL"
                 " THEN 'not_contactable' ELSE 'not_booked' END FROM provider_case p"
                 " WHERE p.status = 'open' AND p.compliance_deadline"
                 " < (now() AT TIME ZONE 'Europe/London')::date"
                 " LIMIT 100 FOR UPDATE OF p SKIP LOCKED",
                 0, NULL);
    int ok = r != NULL;
    for (int i = 0; ok && i < PQntuples(r); i++) {
        booking_case_t c;
        ok = booking_case_load(db, PQgetvalue(r, i, 0), NULL, &c) == 1 &&
             booking_case_close(svc, &c, "non_compliant", PQgetvalue(r, i, 1), NULL) == 0;
    }
    if (r)
        PQclear(r);
    if (ok)
        db_commit(db);
    else
        db_rollback(db);
}
