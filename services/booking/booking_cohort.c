// Cohorts: created by provider staff, listed (case ids only, never names), cancelled (everyone
// booked is released to be offered another place).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "booking.h"
#include "booking_rules.h"
#include "cara/stream.h"
#include "cara/timeutil.h"
#include "cara/uuid.h"

int booking_cohort_audit_foreign(service_t *svc, const identity_t *who, const char *cohort_id) {
    if (!uuid_valid(cohort_id))
        return 0;
    const char *values[] = {cohort_id, who->org};
    char theirs[8] = "";
    if (db_scalar(service_db(svc),
                  "SELECT count(*) FROM cohort WHERE cohort_id = $1 AND provider_id <> $2", 2,
                  values, theirs, sizeof theirs) != 1)
        return -1;
    if (strcmp(theirs, "1") != 0)
        return 0;
    return service_audit(svc, who, "refused", "cohort", cohort_id,
                         json_pack("{s:s}", "reason", "another provider's cohort")) == 0
               ? 1
               : -1;
}

int booking_cmd_create_cohort(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                              reply_t *reply) {
    if (booking_require_provider(who, reply) != 0)
        return -1;
    Cara__CreateCohort *req =
        (Cara__CreateCohort *)envelope_payload(env, &cara__create_cohort__descriptor);
    if (!req)
        return reply_field_error(reply, "payload", "not a valid cara.CreateCohort");
    int rc = -1;
    config_t *cfg = service_config(svc);
    if (!booking_cohort_type_valid(req->cohort_type))
        reply_field_error(reply, "cohort_type", "unknown cohort type \"%s\"", req->cohort_type);
    if (!*req->town || strlen(req->town) > 80)
        reply_field_error(reply, "town", "required, at most 80 characters");
    for (size_t i = 0; i < req->n_facilitators; i++) {
        if (!*req->facilitators[i] || strlen(req->facilitators[i]) > 80) {
            char field[40];
            snprintf(field, sizeof field, "facilitators[%zu]", i);
            reply_field_error(reply, field, "required, at most 80 characters");
        }
    }
    // CARA's groups seat at most BOOKING_MAX_SEATS; a provider may set a lower maximum, never
    // a higher one (a contract pricing 10 seats sets capacity 10).
    int64_t max = booking_setting(cfg, who->org, NULL, "max_capacity", BOOKING_MAX_SEATS);
    if (max < 1 || max > BOOKING_MAX_SEATS)
        max = BOOKING_MAX_SEATS;
    int64_t fallback = booking_setting(cfg, who->org, NULL, "capacity", max);
    uint32_t capacity = req->capacity ? req->capacity : (uint32_t)(fallback > max ? max : fallback);
    if (capacity < 1 || capacity > (uint32_t)max)
        reply_field_error(reply, "capacity", "must be 1 to %lld", (long long)max);
    int32_t a = 0, b = 0;
    int a_ok = time_parse_date(req->part_a_date, &a) == 0;
    int b_ok = time_parse_date(req->part_b_date, &b) == 0;
    char err[160];
    int32_t today = time_uk_day(time_now_us());
    if (!a_ok)
        reply_field_error(reply, "part_a_date", "must be a date YYYY-MM-DD");
    else if (a < today)
        reply_field_error(reply, "part_a_date", "must not be in the past");
    if (!b_ok)
        reply_field_error(reply, "part_b_date", "must be a date YYYY-MM-DD");
    else if (a_ok && booking_cohort_type_valid(req->cohort_type) &&
             booking_check_gap(cfg, who->org, req->cohort_type, a, b, err, sizeof err) != 0)
        reply_field_error(reply, "part_b_date", "%s", err);
    if (reply_error_count(reply))
        goto cleanup;
    char cap[8];
    snprintf(cap, sizeof cap, "%u", capacity);
    json_t *fac = json_array();
    for (size_t i = 0; i < req->n_facilitators; i++)
        json_array_append_new(fac, json_string(req->facilitators[i]));
    char *fac_text = json_dumps(fac, JSON_COMPACT);
    json_decref(fac);
    const char *values[] = {who->org, req->cohort_type, req->town,       fac_text,
                            cap,      req->part_a_date, req->part_b_date};
    PGresult *r = db_query(service_db(svc),
                           "INSERT INTO cohort (provider_id, cohort_type, town, facilitators,"
                           " capacity, part_a_date, part_b_date) VALUES ($1, $2, $3,"
                           " ARRAY(SELECT jsonb_array_elements_text($4::jsonb)), $5, $6, $7)"
                           " RETURNING cohort_id",
                           7, values);
    free(fac_text);
    if (!r) {
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable");
        goto cleanup;
    }
    char id[40];
    snprintf(id, sizeof id, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    Cara__CohortCreated ev = CARA__COHORT_CREATED__INIT;
    ev.cohort_id = id;
    ev.provider_id = (char *)who->org;
    ev.cohort_type = req->cohort_type;
    ev.town = req->town;
    ev.capacity = capacity;
    ev.part_a_date = req->part_a_date;
    ev.part_b_date = req->part_b_date;
    if (outbox_append(service_db(svc), &ev.base, id, who->org, NULL, NULL) < 0 ||
        service_audit(svc, who, "cohort_created", "cohort", id, NULL) != 0)
        goto cleanup;
    Cara__CohortRef ref = CARA__COHORT_REF__INIT;
    ref.cohort_id = id;
    rc = reply_ok(reply, &ref.base);
cleanup:
    cara__create_cohort__free_unpacked(req, NULL);
    return rc;
}

int booking_cmd_cancel_cohort(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                              reply_t *reply) {
    if (booking_require_provider(who, reply) != 0)
        return -1;
    Cara__CancelCohort *req =
        (Cara__CancelCohort *)envelope_payload(env, &cara__cancel_cohort__descriptor);
    if (!req)
        return reply_field_error(reply, "payload", "not a valid cara.CancelCohort");
    int rc = -1;
    db_t *db = service_db(svc);
    if (!uuid_valid(req->cohort_id))
        reply_field_error(reply, "cohort_id", "must be a UUID");
    if (!*req->reason)
        reply_field_error(reply, "reason", "required");
    if (reply_error_count(reply))
        goto cleanup;
    const char *values[] = {req->cohort_id, who->org};
    PGresult *r = db_query(db,
                           "UPDATE cohort SET status = 'cancelled' WHERE cohort_id = $1"
                           " AND provider_id = $2 AND status = 'scheduled' RETURNING cohort_id",
                           2, values);
    if (!r || PQntuples(r) != 1) {
        // Another provider's cohort is answered as a missing one, and the attempt kept.
        int foreign = r ? booking_cohort_audit_foreign(svc, who, req->cohort_id) : -1;
        reply_status(
            reply, foreign < 0 ? CARA__REPLY__STATUS__UNAVAILABLE : CARA__REPLY__STATUS__NOT_FOUND,
            foreign < 0 ? "database unavailable"
                        : "no scheduled cohort with that id for this provider");
        if (r)
            PQclear(r);
        rc = foreign == 1 ? SERVICE_KEEP_WRITES : -1;
        goto cleanup;
    }
    PQclear(r);
    // Everyone booked goes back to open, to be offered another place.
    PGresult *cases = db_query(db,
                               "SELECT p.referral_id FROM booking b JOIN provider_case p USING"
                               " (case_id) WHERE b.cohort_id = $1 AND b.status = 'booked'",
                               1, values);
    if (!cases)
        goto cleanup;
    // Each case is locked, then its booking cancelled only if it is still live in this cohort:
    // an attendance record committing meanwhile (the other lane) may have moved it on.
    int ok = 1;
    for (int i = 0; ok && i < PQntuples(cases); i++) {
        booking_case_t c;
        ok = booking_case_load(db, PQgetvalue(cases, i, 0), NULL, &c) == 1;
        int cancelled =
            ok ? booking_cancel_in_cohort(svc, &c, "cohort_cancelled", req->cohort_id) : -1;
        const char *upd[] = {c.case_id};
        ok = cancelled == 0 ||
             (cancelled == 1 && db_exec(db,
                                        "UPDATE provider_case SET status = 'open' WHERE"
                                        " case_id = $1",
                                        1, upd) == 0);
    }
    PQclear(cases);
    Cara__CohortCancelled ev = CARA__COHORT_CANCELLED__INIT;
    ev.cohort_id = req->cohort_id;
    ev.provider_id = (char *)who->org;
    ev.reason = req->reason;
    if (!ok || outbox_append(db, &ev.base, req->cohort_id, who->org, NULL, NULL) < 0 ||
        service_audit(svc, who, "cohort_cancelled", "cohort", req->cohort_id,
                      json_pack("{s:s}", "reason", req->reason)) != 0)
        goto cleanup;
    rc = reply_ok(reply, NULL);
cleanup:
    cara__cancel_cohort__free_unpacked(req, NULL);
    return rc;
}

int booking_cmd_list_cohorts(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                             reply_t *reply) {
    (void)env;
    if (booking_require_provider(who, reply) != 0)
        return -1;
    const char *values[] = {who->org};
    PGresult *r = db_query(service_db(svc),
                           "SELECT c.cohort_id, cohort_type, town, capacity, seats_taken,"
                           " part_a_date::text, part_b_date::text, c.status,"
                           " coalesce(string_agg(b.case_id::text, ',') FILTER (WHERE b.status IN"
                           " ('booked', 'completed')), '') FROM cohort c LEFT JOIN booking b"
                           " USING (cohort_id) WHERE provider_id = $1 GROUP BY c.cohort_id"
                           " ORDER BY part_a_date",
                           1, values);
    if (!r) {
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable");
        return -1;
    }
    int n = PQntuples(r);
    Cara__CohortView *views = calloc((size_t)n + 1, sizeof *views);
    Cara__CohortView **ptrs = calloc((size_t)n + 1, sizeof *ptrs);
    char **ids = calloc((size_t)n + 1, sizeof *ids);
    int rc = -1;
    for (int i = 0; views && ptrs && ids && i < n; i++) {
        cara__cohort_view__init(&views[i]);
        views[i].cohort_id = PQgetvalue(r, i, 0);
        views[i].cohort_type = PQgetvalue(r, i, 1);
        views[i].town = PQgetvalue(r, i, 2);
        views[i].capacity = (uint32_t)atoi(PQgetvalue(r, i, 3));
        views[i].seats_taken = (uint32_t)atoi(PQgetvalue(r, i, 4));
        views[i].part_a_date = PQgetvalue(r, i, 5);
        views[i].part_b_date = PQgetvalue(r, i, 6);
        views[i].status = PQgetvalue(r, i, 7);
        ids[i] = strdup(PQgetvalue(r, i, 8));
        size_t count = 0;
        for (char *p = ids[i]; *p; p++)
            count += *p == ',';
        count += *ids[i] ? 1 : 0;
        views[i].case_ids = calloc(count + 1, sizeof(char *));
        views[i].n_case_ids = 0;
        char *save = NULL;
        for (char *tok = strtok_r(ids[i], ",", &save); tok && views[i].case_ids;
             tok = strtok_r(NULL, ",", &save))
            views[i].case_ids[views[i].n_case_ids++] = tok;
        ptrs[i] = &views[i];
    }
    if (views && ptrs && ids) {
        Cara__CohortList list = CARA__COHORT_LIST__INIT;
        list.cohorts = ptrs;
        list.n_cohorts = (size_t)n;
        rc = reply_ok(reply, &list.base);
    }
    for (int i = 0; views && ids && i < n; i++) {
        free(views[i].case_ids);
        free(ids[i]);
    }
    free(ids);
    free(views);
    free(ptrs);
    PQclear(r);
    return rc;
}
