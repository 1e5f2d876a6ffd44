// Commands from triage staff (role triage). Every decision is audited with who, what and why.
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cara/timeutil.h"
#include "cara/uuid.h"
#include "triage.pb-c.h"
#include "triage_case.h"
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
    if (reply_error_count(reply))
        goto cleanup;
    const char *values[] = {req->referral_id};
    int found = db_scalar(service_db(svc),
                          "SELECT status FROM triage_case WHERE referral_id = $1 FOR UPDATE", 1,
                          values, status, sizeof status);
    if (found != 1) {
        reply_status(reply, found < 0 ? CARA__REPLY__STATUS__UNAVAILABLE
                                      : CARA__REPLY__STATUS__NOT_FOUND,
                     "no such case");
        goto cleanup;
    }
    if (strcmp(status, "awaiting_decision") != 0) {
        reply_status(reply, CARA__REPLY__STATUS__CONFLICT, "case is %s, not awaiting a decision",
                     status);
        goto cleanup;
    }
    if (approve) {
        char err[160];
        if (triage_case_approve(svc, req->referral_id, req->pathway, req->reason, actor, err,
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
        int ret = triage_case_return(svc, req->referral_id, text, actor);
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
    static const char *const areas[] = {"accommodation", "education_employment", "finance",
                                        "relationships", "lifestyle", "drugs", "alcohol",
                                        "mental_health", "thinking_behaviour", "attitudes"};
    static const char *const levels[] = {"none", "low", "medium", "high"};
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
        int area_ok = 0, level_ok = 0;
        for (size_t a = 0; a < 10; a++)
            area_ok |= strcmp(req->needs[i]->area, areas[a]) == 0;
        for (size_t l = 0; l < 4; l++)
            level_ok |= strcmp(req->needs[i]->level, levels[l]) == 0;
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
        snprintf(field, sizeof field, "onward[%zu]", i);
        if (!*req->onward[i]->service)
            reply_field_error(reply, field, "service is required");
        if (time_parse_date(req->onward[i]->date, &day) != 0)
            reply_field_error(reply, field, "date must be YYYY-MM-DD");
    }
    if (reply_error_count(reply))
        goto cleanup;
    const char *id[] = {req->referral_id};
    char found[8];
    if (db_scalar(db, "SELECT 1 FROM triage_case WHERE referral_id = $1", 1, id, found,
                  sizeof found) != 1) {
        reply_status(reply, CARA__REPLY__STATUS__NOT_FOUND, "no such case");
        goto cleanup;
    }
    json_t *detail = json_object();
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
    }
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

// Builds the case summaries for rows of (referral_id, force, status, received_at,
// proposed_pathway, pathway, provider_id, review_reasons, return_reasons, decided_at,
// decided_by, rules_version); with min_days > 0 keeps only cases waiting that long.
static int s_reply_cases(service_t *svc, PGresult *rows, int min_days, reply_t *reply) {
    int n = PQntuples(rows), kept = 0;
    Cara__TriageCaseSummary *items = calloc((size_t)n + 1, sizeof *items);
    Cara__TriageCaseSummary **ptrs = calloc((size_t)n + 1, sizeof *ptrs);
    Cara__ReasonCode **reasons = NULL;
    size_t n_reasons = 0;
    json_t *docs = json_array();
    int rc = -1;
    if (!items || !ptrs)
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
        for (int col = 7; col <= 8; col++) {
            json_t *arr = json_loads(PQgetvalue(rows, i, col), 0, NULL);
            json_array_append_new(docs, arr ? arr : json_array());
            size_t count = json_array_size(arr);
            Cara__ReasonCode **list = calloc(count + 1, sizeof *list);
            reasons = realloc(reasons, (n_reasons + 1) * sizeof *reasons);
            if (!list || !reasons)
                goto cleanup;
            reasons[n_reasons++] = (Cara__ReasonCode *)list;
            for (size_t k = 0; k < count; k++) {
                Cara__ReasonCode *code = calloc(1, sizeof *code);
                if (!code)
                    goto cleanup;
                cara__reason_code__init(code);
                code->code = (char *)json_string_value(json_object_get(json_array_get(arr, k), "code"));
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
    (void)svc;
    rc = reply_ok(reply, &list.base);
cleanup:
    for (size_t i = 0; i < n_reasons; i++) {
        Cara__ReasonCode **l = (Cara__ReasonCode **)reasons[i];
        for (size_t k = 0; l && l[k]; k++)
            free(l[k]);
        free(l);
    }
    free(reasons);
    free(items);
    free(ptrs);
    json_decref(docs);
    return rc;
}

#define TRIAGE_CASE_COLUMNS                                                                     \
    "referral_id, force, status, received_at::text, coalesce(proposed_pathway, ''),"          \
    " coalesce(pathway, ''), coalesce(provider_id, ''), review_reasons::text,"                 \
    " return_reasons::text, coalesce(decided_at::text, ''), coalesce(decided_by, ''),"        \
    " rules_version"

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
        PGresult *rows = db_query(service_db(svc),
                                  "SELECT " TRIAGE_CASE_COLUMNS
                                  " FROM triage_case WHERE referral_id = $1",
                                  1, values);
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
