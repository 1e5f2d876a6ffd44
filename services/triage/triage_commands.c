// Commands from triage staff (role triage). Every decision is audited with who, what and why.
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cara/timeutil.h"
#include "cara/utf8.h"
#include "cara/uuid.h"
#include "triage.pb-c.h"
#include "triage_case.h"
#include "triage_needs.h"
#include "triage_rules.h"

static int s_require_triage(const identity_t *who, reply_t *reply) {
    if (identity_is(who, "triage"))
        return 0;
    reply_status(reply, CARA__REPLY__STATUS__FORBIDDEN, "only triage staff may do this");
    return -1;
}

int triage_cmd_decide(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                      reply_t *reply) {
    if (s_require_triage(who, reply) != 0)
        return -1;
    Cara__TriageDecide *req =
        (Cara__TriageDecide *)envelope_payload(env, &cara__triage_decide__descriptor);
    if (!req)
        return reply_field_error(reply, "payload", "not a valid cara.TriageDecide");
    int rc = -1;
    char actor[128], status[32] = "";
    identity_format(who, actor, sizeof actor);
    if (!uuid_valid(req->referral_id))
        reply_field_error(reply, "referral_id", "must be a UUID");
    int approve = strcmp(req->decision, "approve") == 0;
    if (!approve && strcmp(req->decision, "return") != 0)
        reply_field_error(reply, "decision", "must be approve or return");
    if (*req->pathway && !triage_rules_pathway_valid(req->pathway))
        reply_field_error(reply, "pathway", "unknown pathway \"%s\"", req->pathway);
    if ((*req->pathway || !approve) && !*req->reason)
        reply_field_error(reply, "reason", "required for an override or a return");
    else if (strlen(req->reason) > 1000 || !utf8_valid(req->reason))
        reply_field_error(reply, "reason", "at most 1000 bytes of UTF-8 text");
    // A return's code is a category in the police's outcome and national's counts, not text.
    size_t code_len = strlen(req->return_reason_code);
    if (code_len > 32 ||
        strspn(req->return_reason_code, "abcdefghijklmnopqrstuvwxyz0123456789_") != code_len)
        reply_field_error(reply, "return_reason_code",
                          "a code of at most 32 lower-case letters, digits and _");
    if (reply_error_count(reply))
        goto cleanup;
    const char *values[] = {req->referral_id};
    int found = db_scalar(service_db(svc),
                          "SELECT status FROM triage_case WHERE referral_id = $1 FOR UPDATE", 1,
                          values, status, sizeof status);
    if (found != 1) {
        reply_status(reply,
                     found < 0 ? CARA__REPLY__STATUS__UNAVAILABLE : CARA__REPLY__STATUS__NOT_FOUND,
                     "no such case");
        goto cleanup;
    }
    if (strcmp(status, "awaiting_decision") != 0) {
        reply_status(reply, CARA__REPLY__STATUS__CONFLICT, "case is %s, not awaiting a decision",
                     status);
        goto cleanup;
    }
    if (approve) {
        // A case that waited past its compliance deadline can no longer be routed.
        char late[8] = "";
        if (db_scalar(service_db(svc),
                      "SELECT compliance_deadline <= (now() AT TIME ZONE 'Europe/London')::date"
                      " FROM triage_case"
                      " WHERE referral_id = $1",
                      1, values, late, sizeof late) != 1) {
            reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable");
            goto cleanup;
        }
        if (strcmp(late, "t") == 0) {
            reply_status(reply, CARA__REPLY__STATUS__CONFLICT,
                         "compliance deadline has passed: return the case instead");
            goto cleanup;
        }
        char err[160];
        if (triage_case_approve(svc, req->referral_id, req->pathway, req->reason, actor, 0, err,
                                sizeof err) != 0) {
            reply_status(reply, CARA__REPLY__STATUS__CONFLICT, "%s", err);
            goto cleanup;
        }
    } else {
        json_t *reasons = json_pack("[{s:s, s:s}]", "code",
                                    *req->return_reason_code ? req->return_reason_code : "manual",
                                    "detail", req->reason);
        char *text = json_dumps(reasons, JSON_COMPACT);
        json_decref(reasons);
        int ret = triage_case_return(svc, req->referral_id, text, actor, 0);
        free(text);
        if (ret != 0) {
            reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "could not return the case");
            goto cleanup;
        }
    }
    rc = reply_ok(reply, NULL);
cleanup:
    cara__triage_decide__free_unpacked(req, NULL);
    return rc;
}

int triage_cmd_needs(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                     reply_t *reply) {
    if (s_require_triage(who, reply) != 0)
        return -1;
    Cara__RecordNeeds *req =
        (Cara__RecordNeeds *)envelope_payload(env, &cara__record_needs__descriptor);
    if (!req)
        return reply_field_error(reply, "payload", "not a valid cara.RecordNeeds");
    int rc = -1;
    db_t *db = service_db(svc);
    if (!uuid_valid(req->referral_id))
        reply_field_error(reply, "referral_id", "must be a UUID");
    for (size_t i = 0; i < req->n_needs; i++) {
        int area_ok = triage_needs_area_valid(req->needs[i]->area);
        int level_ok = triage_needs_level_valid(req->needs[i]->level);
        char field[80];
        snprintf(field, sizeof field, "needs[%zu].area", i);
        if (!area_ok)
            reply_field_error(reply, field, "unknown need area \"%s\"", req->needs[i]->area);
        snprintf(field, sizeof field, "needs[%zu].level", i);
        if (!level_ok)
            reply_field_error(reply, field, "must be none, low, medium or high");
    }
    for (size_t i = 0; i < req->n_onward; i++) {
        int32_t day;
        char field[80];
        snprintf(field, sizeof field, "onward[%zu].service", i);
        if (!*req->onward[i]->service)
            reply_field_error(reply, field, "is required");
        else if (strlen(req->onward[i]->service) > 200)
            reply_field_error(reply, field, "at most 200 characters");
        snprintf(field, sizeof field, "onward[%zu].date", i);
        if (time_parse_date(req->onward[i]->date, &day) != 0)
            reply_field_error(reply, field, "must be a date YYYY-MM-DD");
    }
    if (req->n_needs == 0 && req->n_onward == 0)
        reply_field_error(reply, "needs", "give at least one need or onward referral");
    if (reply_error_count(reply))
        goto cleanup;
    const char *id[] = {req->referral_id};
    char status[32];
    int found = db_scalar(db, "SELECT status FROM triage_case WHERE referral_id = $1 FOR UPDATE", 1,
                          id, status, sizeof status);
    if (found != 1) {
        reply_status(reply,
                     found < 0 ? CARA__REPLY__STATUS__UNAVAILABLE : CARA__REPLY__STATUS__NOT_FOUND,
                     "no such case");
        goto cleanup;
    }
    if (strcmp(status, "withdrawn") == 0) {
        reply_status(reply, CARA__REPLY__STATUS__CONFLICT, "case is withdrawn");
        goto cleanup;
    }
    json_t *detail = json_object(), *onward = json_array();
    json_object_set_new(detail, "onward", onward);
    for (size_t i = 0; i < req->n_needs; i++) {
        const char *values[] = {req->referral_id, req->needs[i]->area, req->needs[i]->level};
        if (db_exec(db,
                    "INSERT INTO need (referral_id, area, level) VALUES ($1, $2, $3)"
                    " ON CONFLICT (referral_id, area) DO UPDATE SET level = excluded.level",
                    3, values) != 0)
            goto failed;
        json_object_set_new(detail, req->needs[i]->area, json_string(req->needs[i]->level));
    }
    for (size_t i = 0; i < req->n_onward; i++) {
        const char *values[] = {req->referral_id, req->onward[i]->service, req->onward[i]->date};
        if (db_exec(db,
                    "INSERT INTO onward_referral (referral_id, service, referred_on)"
                    " VALUES ($1, $2, $3)",
                    3, values) != 0)
            goto failed;
        json_array_append_new(onward, json_pack("{s:s, s:s}", "service", req->onward[i]->service,
                                                "date", req->onward[i]->date));
    }
    // Routed already: the provider hears of the assessment.
    if (triage_case_needs_changed(svc, req->referral_id) != 0)
        goto failed;
    if (service_audit(svc, who, "needs_recorded", "triage_case", req->referral_id, detail) != 0) {
        detail = NULL;
        goto failed;
    }
    rc = reply_ok(reply, NULL);
    goto cleanup;
failed:
    json_decref(detail);
    reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "could not record the needs");
cleanup:
    cara__record_needs__free_unpacked(req, NULL);
    return rc;
}

// Builds the case summaries (with their needs assessment) for rows of TRIAGE_CASE_COLUMNS;
// with min_days > 0 keeps only cases waiting that long.
static int s_reply_cases(service_t *svc, PGresult *rows, int min_days, reply_t *reply) {
    int n = PQntuples(rows), kept = 0;
    Cara__TriageCaseSummary *items = calloc((size_t)n + 1, sizeof *items);
    Cara__TriageCaseSummary **ptrs = calloc((size_t)n + 1, sizeof *ptrs);
    triage_needs_t *needs = calloc((size_t)n + 1, sizeof *needs);
    Cara__ReasonCode **reasons = NULL;
    size_t n_reasons = 0;
    json_t *docs = json_array();
    int rc = -1;
    if (!items || !ptrs || !needs)
        goto cleanup;
    int64_t now = time_now_us();
    for (int i = 0; i < n; i++) {
        int64_t received;
        if (time_parse_iso(PQgetvalue(rows, i, 3), &received) != 0)
            received = now;
        int waiting = triage_rules_working_days(received, now);
        if (min_days > 0 && waiting < min_days)
            continue;
        Cara__TriageCaseSummary *s = &items[kept];
        cara__triage_case_summary__init(s);
        s->referral_id = PQgetvalue(rows, i, 0);
        s->force = PQgetvalue(rows, i, 1);
        s->status = PQgetvalue(rows, i, 2);
        s->received_at = PQgetvalue(rows, i, 3);
        s->proposed_pathway = PQgetvalue(rows, i, 4);
        s->pathway = PQgetvalue(rows, i, 5);
        s->provider_id = PQgetvalue(rows, i, 6);
        s->decided_at = PQgetvalue(rows, i, 9);
        s->decided_by = PQgetvalue(rows, i, 10);
        s->rules_version = (uint32_t)atoi(PQgetvalue(rows, i, 11));
        s->working_days_waiting = (uint32_t)waiting;
        s->decision_seconds = strtoll(PQgetvalue(rows, i, 12), NULL, 10);
        s->pathway_reason = PQgetvalue(rows, i, 13);
        s->victim_contact = strcmp(PQgetvalue(rows, i, 14), "t") == 0;
        s->compliance_deadline = PQgetvalue(rows, i, 15);
        s->caution_date = PQgetvalue(rows, i, 16);
        s->safety_concerns = (uint32_t)atoi(PQgetvalue(rows, i, 17));
        s->last_safety_concern_at = PQgetvalue(rows, i, 18);
        if (triage_needs_load(service_db(svc), s->referral_id, &needs[kept]) != 0)
            goto cleanup;
        s->needs = needs[kept].needs;
        s->n_needs = needs[kept].n_needs;
        s->onward = needs[kept].onward;
        s->n_onward = needs[kept].n_onward;
        for (int col = 7; col <= 8; col++) {
            json_t *arr = json_loads(PQgetvalue(rows, i, col), 0, NULL);
            json_array_append_new(docs, arr ? arr : json_array());
            size_t count = json_array_size(arr);
            Cara__ReasonCode **list = calloc(count + 1, sizeof *list);
            Cara__ReasonCode **grown = realloc(reasons, (n_reasons + 1) * sizeof *reasons);
            if (!list || !grown) {
                free(list);
                if (grown)
                    reasons = grown;
                goto cleanup;
            }
            reasons = grown;
            reasons[n_reasons++] = (Cara__ReasonCode *)list;
            for (size_t k = 0; k < count; k++) {
                Cara__ReasonCode *code = calloc(1, sizeof *code);
                if (!code)
                    goto cleanup;
                cara__reason_code__init(code);
                code->code =
                    (char *)json_string_value(json_object_get(json_array_get(arr, k), "code"));
                code->detail =
                    (char *)json_string_value(json_object_get(json_array_get(arr, k), "detail"));
                if (!code->code)
                    code->code = "";
                if (!code->detail)
                    code->detail = "";
                list[k] = code;
            }
            if (col == 7) {
                s->review_reasons = list;
                s->n_review_reasons = count;
            } else {
                s->return_reasons = list;
                s->n_return_reasons = count;
            }
        }
        ptrs[kept++] = s;
    }
    Cara__TriageCaseList list = CARA__TRIAGE_CASE_LIST__INIT;
    list.cases = ptrs;
    list.n_cases = (size_t)kept;
    rc = reply_ok(reply, &list.base);
cleanup:
    for (size_t i = 0; i < n_reasons; i++) {
        Cara__ReasonCode **l = (Cara__ReasonCode **)reasons[i];
        for (size_t k = 0; l && l[k]; k++)
            free(l[k]);
        free(l);
    }
    free(reasons);
    for (int i = 0; needs && i < n; i++)
        triage_needs_clear(&needs[i]);
    free(needs);
    free(items);
    free(ptrs);
    json_decref(docs);
    return rc;
}

#define TRIAGE_CASE_COLUMNS                                                                        \
    "referral_id, force, status, received_at::text, coalesce(proposed_pathway, ''),"               \
    " coalesce(pathway, ''), coalesce(provider_id, ''), review_reasons::text,"                     \
    " return_reasons::text, coalesce(decided_at::text, ''), coalesce(decided_by, ''),"             \
    " rules_version, coalesce(decision_seconds, 0), coalesce(pathway_reason, ''),"                 \
    " victim_contact, compliance_deadline::text, caution_date::text,"                              \
    " (SELECT count(*) FROM safety_alert a WHERE a.referral_id = triage_case.referral_id),"        \
    " coalesce((SELECT to_char(max(raised_at) AT TIME ZONE 'UTC',"                                 \
    "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM safety_alert a"                                      \
    "  WHERE a.referral_id = triage_case.referral_id), '')"

int triage_cmd_overdue(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                       reply_t *reply) {
    (void)env;
    if (s_require_triage(who, reply) != 0)
        return -1;
    PGresult *rows = db_query(service_db(svc),
                              "SELECT " TRIAGE_CASE_COLUMNS " FROM triage_case"
                              " WHERE status = 'awaiting_decision' ORDER BY received_at",
                              0, NULL);
    if (!rows) {
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable");
        return -1;
    }
    int target = (int)config_int(service_config(svc), "overdue_working_days", 2);
    int rc = s_reply_cases(svc, rows, target + 1 > 0 ? target + 1 : 1, reply);
    PQclear(rows);
    return rc;
}

int triage_cmd_show(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                    reply_t *reply) {
    if (s_require_triage(who, reply) != 0)
        return -1;
    Cara__ShowTriageCase *req =
        (Cara__ShowTriageCase *)envelope_payload(env, &cara__show_triage_case__descriptor);
    if (!req)
        return reply_field_error(reply, "payload", "not a valid cara.ShowTriageCase");
    int rc = -1;
    if (!uuid_valid(req->referral_id)) {
        reply_field_error(reply, "referral_id", "must be a UUID");
    } else {
        const char *values[] = {req->referral_id};
        PGresult *rows = db_query(
            service_db(svc),
            "SELECT " TRIAGE_CASE_COLUMNS " FROM triage_case WHERE referral_id = $1", 1, values);
        if (!rows)
            reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable");
        else if (PQntuples(rows) == 0)
            reply_status(reply, CARA__REPLY__STATUS__NOT_FOUND, "no such case");
        else
            rc = s_reply_cases(svc, rows, 0, reply);
        if (rows)
            PQclear(rows);
    }
    cara__show_triage_case__free_unpacked(req, NULL);
    return rc;
}

int triage_cmd_alerts(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                      reply_t *reply) {
    if (s_require_triage(who, reply) != 0)
        return -1;
    Cara__ListSafetyAlerts *req =
        (Cara__ListSafetyAlerts *)envelope_payload(env, &cara__list_safety_alerts__descriptor);
    if (!req)
        return reply_field_error(reply, "payload", "not a valid cara.ListSafetyAlerts");
    int rc = -1;
    int32_t day;
    char since[16];
    if (*req->since && time_parse_date(req->since, &day) != 0) {
        reply_field_error(reply, "since", "must be a date YYYY-MM-DD");
        goto cleanup;
    }
    if (!*req->since)
        day = time_uk_day(time_now_us()) - 30;
    time_format_date(day, since, sizeof since);
    const char *values[] = {since};
    PGresult *rows = db_query(service_db(svc),
                              "SELECT " TRIAGE_CASE_COLUMNS " FROM triage_case WHERE referral_id IN"
                              " (SELECT referral_id FROM safety_alert WHERE raised_at >= $1::date)"
                              " ORDER BY (SELECT max(raised_at) FROM safety_alert a"
                              "  WHERE a.referral_id = triage_case.referral_id) DESC, referral_id",
                              1, values);
    if (!rows) {
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable");
        goto cleanup;
    }
    rc = s_reply_cases(svc, rows, 0, reply);
    PQclear(rows);
cleanup:
    cara__list_safety_alerts__free_unpacked(req, NULL);
    return rc;
}
