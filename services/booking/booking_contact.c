// Contact with the offender (attempts, first contact due, the at-risk list) and the provider's
// case list.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "booking.h"
#include "booking_rules.h"
#include "cara/stream.h"
#include "cara/timeutil.h"

int booking_cmd_contact(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                        reply_t *reply) {
    static const char *const channels[] = {"phone", "letter", "email", "in_person", "text"};
    static const char *const outcomes[] = {"contacted", "no_answer", "wrong_number", "refused",
                                           "other"};
    if (booking_require_provider(who, reply) != 0)
        return -1;
    Cara__RecordContact *req =
        (Cara__RecordContact *)envelope_payload(env, &cara__record_contact__descriptor);
    if (!req)
        return reply_field_error(reply, "payload", "not a valid cara.RecordContact");
    int rc = -1, ch = 0, out = 0;
    for (int i = 0; i < 5; i++) {
        ch |= strcmp(req->channel, channels[i]) == 0;
        out |= strcmp(req->outcome, outcomes[i]) == 0;
    }
    if (!ch)
        reply_field_error(reply, "channel", "must be phone, letter, email, in_person or text");
    if (!out)
        reply_field_error(reply, "outcome",
                          "must be contacted, no_answer, wrong_number, refused or other");
    char at[40];
    int64_t us = time_now_us();
    if (*req->at && time_parse_iso(req->at, &us) != 0)
        reply_field_error(reply, "at", "must be an ISO 8601 time with a zone");
    else if (us > time_now_us() + 5LL * 60 * 1000000) // a clock a little ahead is tolerated
        reply_field_error(reply, "at", "must not be in the future");
    time_format_iso(us, at, sizeof at);
    booking_case_t c;
    if (reply_error_count(reply))
        goto cleanup;
    int found = booking_case_load(service_db(svc), req->referral_id, who->org, &c);
    if (found != 1) {
        rc = booking_case_refuse(svc, who, req->referral_id, found, reply);
        goto cleanup;
    }
    // No contact before the caution (a day's margin: the caution date is a UK date).
    const char *when[] = {c.case_id, at};
    char early[8] = "";
    if (db_scalar(service_db(svc),
                  "SELECT $2::timestamptz < (caution_date - 1)::timestamptz FROM provider_case"
                  " WHERE case_id = $1",
                  2, when, early, sizeof early) != 1)
        goto cleanup;
    if (strcmp(early, "t") == 0) {
        reply_field_error(reply, "at", "is before the caution");
        goto cleanup;
    }
    char actor[128];
    identity_format(who, actor, sizeof actor);
    const char *values[] = {c.case_id, at, req->channel, req->outcome, actor};
    if (db_exec(service_db(svc),
                "INSERT INTO contact_attempt (case_id, at, channel, outcome, recorded_by)"
                " VALUES ($1, $2, $3, $4, $5)",
                5, values) != 0)
        goto cleanup;
    if (strcmp(req->outcome, "contacted") == 0 &&
        db_exec(service_db(svc),
                // the earliest contact recorded, whatever order the records come in
                "UPDATE provider_case SET first_contacted_at ="
                " least(coalesce(first_contacted_at, $2), $2) WHERE case_id = $1",
                2, values) != 0)
        goto cleanup;
    Cara__ContactRecorded ev = CARA__CONTACT_RECORDED__INIT;
    ev.case_id = c.case_id;
    ev.referral_id = c.referral_id;
    ev.provider_id = c.provider;
    ev.force = c.force;
    ev.channel = req->channel;
    ev.outcome = req->outcome;
    ev.at = at;
    if (outbox_append(service_db(svc), &ev.base, c.referral_id, c.provider, c.referral_id, NULL) <
            0 ||
        service_audit(svc, who, "contact_recorded", "provider_case", c.referral_id,
                      json_pack("{s:s, s:s}", "channel", req->channel, "outcome", req->outcome)) !=
            0)
        goto cleanup;
    rc = reply_ok(reply, NULL);
cleanup:
    cara__record_contact__free_unpacked(req, NULL);
    return rc;
}

int booking_cmd_list_cases(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                           reply_t *reply) {
    if (booking_require_provider(who, reply) != 0)
        return -1;
    Cara__ListCases *req = (Cara__ListCases *)envelope_payload(env, &cara__list_cases__descriptor);
    if (!req)
        return reply_field_error(reply, "payload", "not a valid cara.ListCases");
    static const char *const statuses[] = {"open", "booked", "completed", "non_compliant",
                                           "withdrawn"};
    int known = !*req->status;
    for (int i = 0; i < 5; i++)
        known |= strcmp(req->status, statuses[i]) == 0;
    if (!known) {
        cara__list_cases__free_unpacked(req, NULL);
        return reply_field_error(reply, "status",
                                 "must be open, booked, completed, non_compliant or withdrawn");
    }
    // At risk: never contacted, still live, first contact due within the provider's margin.
    // The margin is in working days when the provider counts its contact target so (its own
    // calendar; a force's own calendar applies to the due dates themselves).
    char within[16] = "";
    if (req->at_risk) {
        config_t *cfg = service_config(svc);
        int64_t margin = booking_setting(cfg, who->org, NULL, "contact_at_risk_days", 3);
        int32_t today = time_uk_day(time_now_us()), limit = today + (int32_t)margin;
        if (booking_contact_in_working_days(cfg, who->org, NULL)) {
            booking_calendar_t cal;
            char err[200];
            if (booking_calendar_load(cfg, who->org, NULL, &cal, err, sizeof err) != 0) {
                cara__list_cases__free_unpacked(req, NULL);
                reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE,
                             "the provider's working-day calendar is misconfigured: %s", err);
                return -1;
            }
            limit = booking_calendar_add(&cal, today, margin);
            booking_calendar_clear(&cal);
        }
        time_format_date(limit, within, sizeof within);
    }
    const char *values[] = {who->org, *req->status ? req->status : NULL,
                            req->at_risk ? within : NULL};
    PGresult *r = db_query(service_db(svc),
                           "SELECT referral_id, p.case_id, p.status, pathway,"
                           " compliance_deadline::text, first_contact_due::text,"
                           " first_contacted_at IS NOT NULL, coalesce(b.cohort_id::text, ''),"
                           " coalesce(close_reason, '') FROM provider_case p"
                           " LEFT JOIN booking b ON b.case_id = p.case_id AND b.status = 'booked'"
                           " WHERE provider_id = $1 AND ($2::text IS NULL OR p.status = $2)"
                           " AND ($3::date IS NULL OR (p.live"
                           "  AND first_contacted_at IS NULL AND first_contact_due <= $3::date))"
                           " ORDER BY CASE WHEN $3::date IS NULL THEN compliance_deadline"
                           " ELSE first_contact_due END, referral_id",
                           3, values);
    cara__list_cases__free_unpacked(req, NULL);
    if (!r) {
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable");
        return -1;
    }
    int n = PQntuples(r), rc = -1;
    Cara__CaseView *views = calloc((size_t)n + 1, sizeof *views);
    Cara__CaseView **ptrs = calloc((size_t)n + 1, sizeof *ptrs);
    if (views && ptrs) {
        for (int i = 0; i < n; i++) {
            cara__case_view__init(&views[i]);
            views[i].referral_id = PQgetvalue(r, i, 0);
            views[i].case_id = PQgetvalue(r, i, 1);
            views[i].status = PQgetvalue(r, i, 2);
            views[i].pathway = PQgetvalue(r, i, 3);
            views[i].compliance_deadline = PQgetvalue(r, i, 4);
            views[i].first_contact_due = PQgetvalue(r, i, 5);
            views[i].contacted = strcmp(PQgetvalue(r, i, 6), "t") == 0;
            views[i].cohort_id = PQgetvalue(r, i, 7);
            views[i].close_reason = PQgetvalue(r, i, 8);
            ptrs[i] = &views[i];
        }
        Cara__CaseList list = CARA__CASE_LIST__INIT;
        list.cases = ptrs;
        list.n_cases = (size_t)n;
        rc = reply_ok(reply, &list.base);
    }
    free(views);
    free(ptrs);
    PQclear(r);
    return rc;
}
