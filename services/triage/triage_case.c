#include "triage_case.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cara/log.h"
#include "cara/stream.h"
#include "cara/timeutil.h"
#include "cara/uuid.h"
#include "triage.pb-c.h"
#include "triage_needs.h"
#include "triage_rules.h"

static const identity_t s_auto = {"triage", "auto"};
static const identity_t s_intake = {"service", "intake"};

// Finds the provider for a force on a caution date from config "routing":
// [{"force": F, "provider": P, "from": "YYYY-MM-DD", "to": "YYYY-MM-DD" or ""}] (dates
// inclusive; the first route in force wins). A force with no route at all falls back to
// "forces": {F: {"provider": P}}; a force whose routes leave the date uncovered is not routed
// (a gap between contracts must not send cases to a provider nobody commissioned).
// Returns 0 with the provider in out, or -1.
static int s_route(service_t *svc, const char *force, const char *caution_date, char *out,
                   size_t size) {
    json_t *routes = config_get(service_config(svc), "routing");
    size_t i;
    json_t *route;
    int routed_force = 0;
    json_array_foreach(routes, i, route) {
        const char *f = json_string_value(json_object_get(route, "force"));
        const char *p = json_string_value(json_object_get(route, "provider"));
        const char *from = json_string_value(json_object_get(route, "from"));
        const char *to = json_string_value(json_object_get(route, "to"));
        if (!f || !p || !*p || strcmp(f, force) != 0)
            continue;
        routed_force = 1;
        if (from && *from && strcmp(caution_date, from) < 0)
            continue;
        if (to && *to && strcmp(caution_date, to) > 0)
            continue;
        snprintf(out, size, "%s", p);
        return 0;
    }
    if (routed_force)
        return -1;
    char path[128];
    snprintf(path, sizeof path, "forces.%.64s.provider", force);
    const char *fallback = json_string_value(config_get(service_config(svc), path));
    if (!fallback || !*fallback)
        return -1;
    snprintf(out, size, "%s", fallback);
    return 0;
}

static json_t *s_reasons_json(const triage_reason_t *list, int n) {
    json_t *arr = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(
            arr, json_pack("{s:s, s:s}", "code", list[i].code, "detail", list[i].detail));
    return arr;
}

static Cara__Referral *s_load_referral(db_t *db, const char *referral_id, PGresult **row) {
    const char *values[] = {referral_id};
    *row = db_query_bin(db,
                        "SELECT referral, force, status, coalesce(pathway, proposed_pathway, ''),"
                        " coalesce(pathway_reason, ''), coalesce(provider_id, ''),"
                        " caution_date::text, compliance_deadline::text, received_at::text,"
                        " victim_contact::text FROM triage_case WHERE referral_id = $1 FOR UPDATE",
                        1, values, NULL, NULL, 0);
    if (!*row || PQntuples(*row) != 1)
        return NULL;
    // Text result: bytea arrives hex-escaped.
    size_t len = 0;
    unsigned char *bytes = PQunescapeBytea((const unsigned char *)PQgetvalue(*row, 0, 0), &len);
    Cara__Referral *r = bytes ? cara__referral__unpack(NULL, len, bytes) : NULL;
    PQfreemem(bytes);
    return r;
}

// triage_case_approve; fresh: the case was opened in this transaction, so no needs are recorded
// for it yet (none are looked for).
static int s_approve(service_t *svc, const char *referral_id, const char *pathway,
                     const char *pathway_reason, const char *decided_by, int64_t at_us, int fresh,
                     char *err, size_t err_size) {
    db_t *db = service_db(svc);
    PGresult *row = NULL;
    triage_needs_t needs = {0};
    int rc = -1;
    char at[40];
    time_format_iso(at_us ? at_us : time_now_us(), at, sizeof at);
    snprintf(err, err_size, "could not record the decision");
    Cara__Referral *r = s_load_referral(db, referral_id, &row);
    if (!r) {
        snprintf(err, err_size, "no such case");
        goto cleanup;
    }
    const char *force = PQgetvalue(row, 0, 1);
    const char *chosen = pathway && *pathway ? pathway : PQgetvalue(row, 0, 3);
    if (!triage_rules_pathway_valid(chosen)) {
        snprintf(err, err_size, "no valid pathway: give one");
        goto cleanup;
    }
    if (!triage_rules_pathway_fits(r, chosen)) {
        snprintf(err, err_size, "pathway %s is a group for the other sex: the offender is %s",
                 chosen, r->offender->sex);
        goto cleanup;
    }
    char provider[64];
    if (s_route(svc, force, PQgetvalue(row, 0, 6), provider, sizeof provider) != 0) {
        snprintf(err, err_size, "no provider is commissioned for %s on the caution date", force);
        goto cleanup;
    }
    const char *why = pathway_reason && *pathway_reason ? pathway_reason : PQgetvalue(row, 0, 4);
    int victim = r->victim && r->victim->consents_to_contact;
    const char *values[] = {referral_id, chosen, why, provider, victim ? "true" : "false",
                            decided_by,  at};
    // Queued (the row is locked and known to be there): read back with the event below.
    if (db_send(db,
                "UPDATE triage_case SET status = 'triaged', pathway = $2, pathway_reason = $3,"
                " provider_id = $4, victim_contact = $5, decided_at = $7, decided_by = $6,"
                " decision_seconds = greatest(0, extract(epoch FROM $7::timestamptz"
                " - received_at))::bigint, updated_at = now() WHERE referral_id = $1",
                7, values, NULL, NULL) != 0)
        goto cleanup;
    if (!fresh && triage_needs_load(db, referral_id, &needs) != 0)
        goto cleanup;
    Cara__ReferralTriaged ev = CARA__REFERRAL_TRIAGED__INIT;
    ev.referral_id = (char *)referral_id;
    ev.force = (char *)force;
    ev.provider_id = provider;
    ev.pathway = (char *)chosen;
    ev.pathway_reason = (char *)why;
    ev.compliance_deadline = PQgetvalue(row, 0, 7);
    ev.caution_date = PQgetvalue(row, 0, 6);
    ev.victim_contact = victim;
    ev.triaged_at = at;
    ev.received_at = PQgetvalue(row, 0, 8);
    ev.referral = r;
    ev.needs = needs.needs;
    ev.n_needs = needs.n_needs;
    ev.onward = needs.onward;
    ev.n_onward = needs.n_onward;
    // Queued writes (db_send): read back with the batch, before the cursor moves or the reply.
    if (outbox_send(db, &ev.base, referral_id, provider, referral_id, NULL) != 0)
        goto cleanup;
    identity_t who;
    if (identity_parse(decided_by, &who) != 0)
        who = s_auto;
    rc = service_audit_send(svc, &who, "triaged", "triage_case", referral_id,
                            json_pack("{s:s, s:s, s:s, s:b, s:s}", "pathway", chosen, "provider",
                                      provider, "reason", why, "victim_contact", victim,
                                      "decided_at", at));
    if (rc == 0)
        err[0] = '\0';
cleanup:
    triage_needs_clear(&needs);
    if (r)
        cara__referral__free_unpacked(r, NULL);
    if (row)
        PQclear(row);
    return rc;
}

int triage_case_approve(service_t *svc, const char *referral_id, const char *pathway,
                        const char *pathway_reason, const char *decided_by, int64_t at_us,
                        char *err, size_t err_size) {
    return s_approve(svc, referral_id, pathway, pathway_reason, decided_by, at_us, 0, err,
                     err_size);
}

int triage_case_return(service_t *svc, const char *referral_id, const char *reasons_json,
                       const char *decided_by, int64_t at_us) {
    db_t *db = service_db(svc);
    char now[40];
    time_format_iso(at_us ? at_us : time_now_us(), now, sizeof now);
    const char *values[] = {referral_id, reasons_json, decided_by, now};
    PGresult *r =
        db_query(db,
                 "UPDATE triage_case SET status = 'returned', return_reasons = $2,"
                 " decided_at = $4, decided_by = $3, decision_seconds ="
                 " greatest(0, extract(epoch FROM $4::timestamptz - received_at))::bigint,"
                 " updated_at = now() WHERE referral_id = $1 RETURNING force",
                 4, values);
    if (!r || PQntuples(r) != 1) {
        if (r)
            PQclear(r);
        return -1;
    }
    char force[64];
    snprintf(force, sizeof force, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    json_t *arr = json_loads(reasons_json, 0, NULL);
    size_t n = json_array_size(arr);
    Cara__ReasonCode *codes = calloc(n + 1, sizeof *codes);
    Cara__ReasonCode **ptrs = calloc(n + 1, sizeof *ptrs);
    int rc = -1;
    if (codes && ptrs) {
        for (size_t i = 0; i < n; i++) {
            cara__reason_code__init(&codes[i]);
            codes[i].code =
                (char *)json_string_value(json_object_get(json_array_get(arr, i), "code"));
            codes[i].detail =
                (char *)json_string_value(json_object_get(json_array_get(arr, i), "detail"));
            if (!codes[i].code)
                codes[i].code = "";
            if (!codes[i].detail)
                codes[i].detail = "";
            ptrs[i] = &codes[i];
        }
        Cara__ReferralReturned ev = CARA__REFERRAL_RETURNED__INIT;
        ev.referral_id = (char *)referral_id;
        ev.force = force;
        ev.reasons = ptrs;
        ev.n_reasons = n;
        ev.returned_at = now;
        identity_t who;
        if (identity_parse(decided_by, &who) != 0)
            who = s_auto;
        if (outbox_append(db, &ev.base, referral_id, force, referral_id, NULL) >= 0 &&
            service_audit(svc, &who, "returned", "triage_case", referral_id, json_incref(arr)) == 0)
            rc = 0;
    }
    free(codes);
    free(ptrs);
    json_decref(arr);
    return rc;
}

// The rules' proposal for a case as of at_us, the time of the intake event (so a replay of the
// stream decides exactly as the first run did): nothing is read, only the referral and config.
typedef struct {
    triage_verdict_t verdict;
    const char *pathway; // NULL: not known (review_text says so)
    char reason[128];
    char *review_text; // the review reasons, a JSON array text (malloc'd; NULL: out of memory)
} s_proposal_t;

static void s_propose(service_t *svc, const Cara__Referral *r, int64_t at_us, s_proposal_t *p) {
    triage_force_rules_t force_rules = {0};
    const char *offences[16];
    char path[128];
    snprintf(path, sizeof path, "forces.%s.eligible_offences", r->force);
    json_t *list = config_get(service_config(svc), path);
    if (json_is_array(list)) {
        size_t i;
        json_t *v;
        json_array_foreach(list, i, v) if (i < 16 && json_is_string(v))
            offences[force_rules.n_eligible++] = json_string_value(v);
        force_rules.eligible_offences = offences;
    }
    triage_rules_evaluate(r, time_uk_day(at_us), at_us, &force_rules, &p->verdict);
    p->pathway = triage_rules_pathway(r, p->reason, sizeof p->reason);
    json_t *review = s_reasons_json(p->verdict.review, p->verdict.n_review);
    if (!p->pathway)
        json_array_append_new(review, json_pack("{s:s, s:s}", "code", "pathway_unknown", "detail",
                                                "sex or relationship not known"));
    p->review_text = json_dumps(review, JSON_COMPACT);
    json_decref(review);
}

// Returns the case to the police with the rules it fails (fail, n). Returns 0 or -1.
static int s_return_by_rules(service_t *svc, const char *referral_id, const triage_reason_t *fail,
                             int n, int64_t at_us) {
    json_t *fails = s_reasons_json(fail, n);
    char *text = json_dumps(fails, JSON_COMPACT);
    json_decref(fails);
    int rc = text ? triage_case_return(svc, referral_id, text, "triage:rules", at_us) : -1;
    free(text);
    return rc;
}

// Acts on the proposal recorded on the case: returns it to the police (a rule failed), approves
// it (auto-triage, nothing to review) or leaves it for a person. fresh as s_approve.
// Returns 0 or -1.
static int s_act(service_t *svc, const char *referral_id, const s_proposal_t *p, int64_t at_us,
                 int fresh) {
    if (p->verdict.n_fail > 0)
        return s_return_by_rules(svc, referral_id, p->verdict.fail, p->verdict.n_fail, at_us);
    // Auto-triage or not: see the comment on triage_rules_evaluate in triage_rules.c.
    int auto_triage = config_int(service_config(svc), "auto_triage", 1) != 0;
    json_t *flag = config_get(service_config(svc), "auto_triage");
    if (json_is_boolean(flag))
        auto_triage = json_is_true(flag);
    if (p->verdict.n_review == 0 && p->pathway && auto_triage) {
        char err[160];
        if (s_approve(svc, referral_id, NULL, NULL, "triage:auto", at_us, fresh, err, sizeof err) ==
            0)
            return 0;
        // No provider routed: keep it for a person, with the reason.
        const char *v2[] = {referral_id, err};
        return db_exec(
            service_db(svc),
            "UPDATE triage_case SET review_reasons = review_reasons ||"
            " jsonb_build_array(jsonb_build_object('code', 'not_routed', 'detail', $2::text))"
            " WHERE referral_id = $1",
            2, v2);
    }
    return 0;
}

// Evaluates the rules again on an amended case still waiting, records the proposal and acts on
// it. Returns 0 or -1.
static int s_evaluate(service_t *svc, const char *referral_id, const Cara__Referral *r,
                      int64_t at_us) {
    s_proposal_t p;
    s_propose(svc, r, at_us, &p);
    char version[12];
    snprintf(version, sizeof version, "%d", TRIAGE_RULES_VERSION);
    const char *values[] = {referral_id, p.pathway, p.reason, p.review_text, version};
    int rc = p.review_text ? db_exec(service_db(svc),
                                     "UPDATE triage_case SET proposed_pathway = $2,"
                                     " pathway_reason = $3, review_reasons = $4::jsonb,"
                                     " rules_version = $5, updated_at = now()"
                                     " WHERE referral_id = $1",
                                     5, values)
                           : -1;
    if (rc == 0)
        rc = s_act(svc, referral_id, &p, at_us, 0);
    free(p.review_text);
    return rc;
}

static apply_result_t s_on_submitted(service_t *svc, const Cara__ReferralSubmitted *ev,
                                     int64_t at_us, char *reason, size_t reason_size) {
    db_t *db = service_db(svc);
    const Cara__Referral *r = ev->referral;
    int32_t deadline;
    if (!r || !r->caution || !uuid_valid(ev->referral_id) ||
        time_parse_date(r->caution->compliance_deadline, &deadline) != 0) {
        snprintf(reason, reason_size, "referral without id or compliance deadline");
        return APPLY_POISON;
    }
    char caution_date[16] = "";
    int32_t caution_day;
    if (time_written_date(r->caution->given_at, &caution_day) == 0)
        time_format_date(caution_day, caution_date, sizeof caution_date);
    else
        snprintf(caution_date, sizeof caution_date, "%s", r->caution->compliance_deadline);
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (envelope_encode_message(&r->base, &bytes, &len) != 0)
        return APPLY_RETRY;
    // The case opens with the rules' proposal in it (one write), and is acted on at once.
    s_proposal_t p;
    s_propose(svc, r, at_us, &p);
    char version[8];
    snprintf(version, sizeof version, "%d", TRIAGE_RULES_VERSION);
    const char *values[] = {ev->referral_id,
                            r->force,
                            ev->received_at,
                            caution_date,
                            r->caution->compliance_deadline,
                            version,
                            (const char *)bytes,
                            p.pathway,
                            p.reason,
                            p.review_text};
    int lengths[] = {0, 0, 0, 0, 0, 0, (int)len, 0, 0, 0};
    int formats[] = {0, 0, 0, 0, 0, 0, 1, 0, 0, 0};
    PGresult *res = p.review_text
                        ? db_query_bin(db,
                                       "INSERT INTO triage_case (referral_id, force, status,"
                                       " received_at, caution_date, compliance_deadline,"
                                       " rules_version, referral, proposed_pathway,"
                                       " pathway_reason, review_reasons)"
                                       " VALUES ($1, $2, 'awaiting_decision', $3, $4, $5, $6, $7,"
                                       " $8, $9, $10::jsonb) ON CONFLICT (referral_id) DO NOTHING",
                                       10, values, lengths, formats, 0)
                        : NULL;
    free(bytes);
    int inserted = res && atoi(PQcmdTuples(res)) == 1;
    apply_result_t rc = !res ? APPLY_RETRY : APPLY_OK; // not inserted: already have it (replay)
    if (res)
        PQclear(res);
    if (inserted && (service_audit_send(svc, &s_intake, "case_opened", "triage_case",
                                        ev->referral_id, NULL) != 0 ||
                     s_act(svc, ev->referral_id, &p, at_us, 1) != 0))
        rc = APPLY_RETRY;
    free(p.review_text);
    return rc;
}

// Whether list (n) has a reason with code.
static int s_has_code(const triage_reason_t *list, int n, const char *code) {
    for (int i = 0; i < n; i++)
        if (strcmp(list[i].code, code) == 0)
            return 1;
    return 0;
}

// An amendment of a case already routed to a provider: what triage decided from the referral is
// worked out again, from the old referral and the new one, both as of the amendment's time (so
// only what the amendment changed counts, not the days gone by):
// - a rule the amended referral now fails (a DASH level of high, a date of birth under 18, ...)
//   returns the case to the police (ReferralReturned), and the provider stops (booking closes
//   its case on that event);
// - a pathway the rules now propose differently (a sex or relationship corrected) replaces the
//   routed one if the rules chose it, and any routed group for the other sex is replaced, so
//   nobody stays in the other sex's group; a person's choice stands otherwise;
// - the victim's consent to contact is taken as the amended referral states it.
// The provider is told in TriageCaseUpdated (pathway, victim_contact). Returns 0 or -1.
static int s_amend_routed(service_t *svc, const Cara__ReferralAmended *ev,
                          const Cara__Referral *old, const char *pathway, const char *provider,
                          int64_t at_us) {
    db_t *db = service_db(svc);
    s_proposal_t was, now;
    s_propose(svc, old, at_us, &was);
    s_propose(svc, ev->referral, at_us, &now);
    Cara__FieldChange **changes = NULL;
    int rc = -1;
    if (!was.review_text || !now.review_text)
        goto cleanup;
    triage_verdict_t fresh = {.n_fail = 0};
    for (int i = 0; i < now.verdict.n_fail; i++)
        if (!s_has_code(was.verdict.fail, was.verdict.n_fail, now.verdict.fail[i].code))
            fresh.fail[fresh.n_fail++] = now.verdict.fail[i];
    if (fresh.n_fail > 0) {
        rc = s_return_by_rules(svc, ev->referral_id, fresh.fail, fresh.n_fail, at_us);
        goto cleanup;
    }
    // The routed pathway moves when it was the rules' own choice and the facts it came from
    // changed, or when it no longer fits the offender's sex, whoever chose it (a person's
    // choice of another group, or of telephone, stands otherwise).
    const char *routed = pathway;
    int rules_moved = was.pathway && now.pathway && strcmp(was.pathway, pathway) == 0 &&
                      strcmp(was.pathway, now.pathway) != 0;
    int misfit = !triage_rules_pathway_fits(ev->referral, pathway);
    int moved = now.pathway && strcmp(now.pathway, pathway) != 0 && (rules_moved || misfit);
    if (moved)
        routed = now.pathway;
    int victim = ev->referral->victim && ev->referral->victim->consents_to_contact;
    const char *values[] = {ev->referral_id, routed, victim ? "true" : "false",
                            moved ? now.reason : NULL};
    if (db_exec(db,
                "UPDATE triage_case SET pathway = $2, victim_contact = $3,"
                " pathway_reason = coalesce($4, pathway_reason), updated_at = now()"
                " WHERE referral_id = $1",
                4, values) != 0)
        goto cleanup;
    if (moved && service_audit(svc, &s_intake, "pathway_changed", "triage_case", ev->referral_id,
                               json_pack("{s:s, s:s}", "from", pathway, "to", routed)) != 0)
        goto cleanup;
    // The changes go to the provider without the victim's fields (old and new name, phone,
    // address...): booking takes the victim from the referral, which its view of the stream
    // keeps only for a victim who consents to contact.
    changes = calloc(ev->n_changes ? ev->n_changes : 1, sizeof *changes);
    if (!changes)
        goto cleanup;
    size_t n_changes = 0;
    for (size_t i = 0; i < ev->n_changes; i++)
        if (strncmp(ev->changes[i]->field, "victim.", 7) != 0)
            changes[n_changes++] = ev->changes[i];
    Cara__TriageCaseUpdated up = CARA__TRIAGE_CASE_UPDATED__INIT;
    up.referral_id = ev->referral_id;
    up.force = ev->referral->force;
    up.provider_id = (char *)provider;
    up.changes = changes;
    up.n_changes = n_changes;
    up.referral = ev->referral;
    up.compliance_deadline = ev->referral->caution->compliance_deadline;
    up.reason = "amendment";
    up.pathway = moved ? (char *)routed : "";
    up.victim_contact = victim ? "yes" : "no";
    rc = outbox_append(db, &up.base, ev->referral_id, provider, ev->referral_id, NULL) < 0 ? -1 : 0;
cleanup:
    free(changes);
    free(was.review_text);
    free(now.review_text);
    return rc;
}

// An amendment of a case whose status was was (the old referral, its pathway and provider as
// they stood): stored, audited, and acted on as the status asks.
static apply_result_t s_amend(service_t *svc, const Cara__ReferralAmended *ev,
                              const Cara__Referral *old, const char *was, const char *pathway,
                              const char *provider, int64_t at_us) {
    db_t *db = service_db(svc);
    char status[32], decided_by[64] = "";
    snprintf(status, sizeof status, "%s", was);
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (envelope_encode_message(&ev->referral->base, &bytes, &len) != 0)
        return APPLY_RETRY;
    int32_t caution_day;
    char caution_date[16] = "";
    if (time_written_date(ev->referral->caution->given_at, &caution_day) == 0)
        time_format_date(caution_day, caution_date, sizeof caution_date);
    const char *values[] = {ev->referral_id, ev->referral->caution->compliance_deadline,
                            (const char *)bytes, caution_date[0] ? caution_date : NULL};
    int lengths[] = {0, 0, (int)len, 0}, formats[] = {0, 0, 1, 0};
    PGresult *res = db_query_bin(db,
                                 "UPDATE triage_case SET referral = $3, compliance_deadline = $2,"
                                 " caution_date = coalesce($4::date, caution_date),"
                                 " updated_at = now() WHERE referral_id = $1",
                                 4, values, lengths, formats, 0);
    free(bytes);
    if (!res)
        return APPLY_RETRY;
    PQclear(res);
    // The audit names the fields that changed, not their values.
    json_t *fields = json_array();
    for (size_t i = 0; i < ev->n_changes; i++)
        json_array_append_new(fields, json_string(ev->changes[i]->field));
    if (service_audit(svc, &s_intake, "amended", "triage_case", ev->referral_id,
                      json_pack("{s:s, s:o}", "reason", ev->reason, "fields", fields)) != 0)
        return APPLY_RETRY;
    // A case the rules returned is the police's to correct: their amendment reopens it and the
    // rules run again (a person's return stands; the police talk to triage about that one).
    const char *id[] = {ev->referral_id};
    if (strcmp(status, "returned") == 0 &&
        (db_scalar(db, "SELECT coalesce(decided_by, '') FROM triage_case WHERE referral_id = $1", 1,
                   id, decided_by, sizeof decided_by) != 1))
        return APPLY_RETRY;
    if (strcmp(status, "returned") == 0 && strcmp(decided_by, "triage:rules") == 0) {
        if (db_exec(db,
                    "UPDATE triage_case SET status = 'awaiting_decision', return_reasons = '[]',"
                    " decided_at = NULL, decided_by = NULL, decision_seconds = NULL,"
                    // A pathway and provider chosen before the return are decided again.
                    " pathway = NULL, provider_id = NULL, updated_at = now()"
                    " WHERE referral_id = $1",
                    1, id) != 0 ||
            service_audit(svc, &s_intake, "reopened", "triage_case", ev->referral_id, NULL) != 0)
            return APPLY_RETRY;
        snprintf(status, sizeof status, "awaiting_decision");
    }
    if (strcmp(status, "awaiting_decision") == 0)
        return s_evaluate(svc, ev->referral_id, ev->referral, at_us) == 0 ? APPLY_OK : APPLY_RETRY;
    if (strcmp(status, "triaged") == 0)
        return s_amend_routed(svc, ev, old, pathway, provider, at_us) == 0 ? APPLY_OK : APPLY_RETRY;
    return APPLY_OK;
}

static apply_result_t s_on_amended(service_t *svc, const Cara__ReferralAmended *ev, int64_t at_us,
                                   char *reason, size_t reason_size) {
    db_t *db = service_db(svc);
    PGresult *row = NULL;
    Cara__Referral *old = s_load_referral(db, ev->referral_id, &row);
    if (!old || !ev->referral || !ev->referral->caution) {
        if (row)
            PQclear(row);
        if (old)
            cara__referral__free_unpacked(old, NULL);
        snprintf(reason, reason_size, "amendment of an unknown referral");
        return APPLY_POISON;
    }
    char status[32], provider[64], pathway[32];
    snprintf(status, sizeof status, "%s", PQgetvalue(row, 0, 2));
    snprintf(pathway, sizeof pathway, "%s", PQgetvalue(row, 0, 3));
    snprintf(provider, sizeof provider, "%s", PQgetvalue(row, 0, 5));
    PQclear(row);
    apply_result_t rc = s_amend(svc, ev, old, status, pathway, provider, at_us);
    cara__referral__free_unpacked(old, NULL);
    return rc;
}

static apply_result_t s_on_withdrawn(service_t *svc, const Cara__ReferralWithdrawn *ev,
                                     int64_t at_us, char *reason, size_t reason_size) {
    db_t *db = service_db(svc);
    const char *values[] = {ev->referral_id};
    PGresult *res = db_query(db,
                             "UPDATE triage_case t SET status = 'withdrawn', updated_at = now()"
                             " FROM triage_case old WHERE t.referral_id = $1"
                             " AND old.referral_id = t.referral_id"
                             " RETURNING t.force, coalesce(t.provider_id, ''), old.status",
                             1, values);
    if (!res)
        return APPLY_RETRY;
    if (PQntuples(res) != 1) {
        PQclear(res);
        snprintf(reason, reason_size, "withdrawal of an unknown referral");
        return APPLY_POISON;
    }
    Cara__TriageCaseWithdrawn out = CARA__TRIAGE_CASE_WITHDRAWN__INIT;
    char force[64], provider[64], now[40];
    snprintf(force, sizeof force, "%s", PQgetvalue(res, 0, 0));
    snprintf(provider, sizeof provider, "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    out.referral_id = ev->referral_id;
    out.force = force;
    out.provider_id = provider;
    out.reason_code = ev->reason_code;
    out.reason = ev->reason;
    out.withdrawn_at = time_format_iso(at_us, now, sizeof now);
    if (outbox_append(db, &out.base, ev->referral_id, provider[0] ? provider : force,
                      ev->referral_id, NULL) < 0 ||
        service_audit(svc, &s_intake, "withdrawn", "triage_case", ev->referral_id,
                      json_pack("{s:s}", "reason_code", ev->reason_code)) != 0)
        return APPLY_RETRY;
    return APPLY_OK;
}

apply_result_t triage_case_apply(db_t *db, const Cara__Envelope *env, uint64_t seq, void *arg,
                                 char *reason, size_t reason_size) {
    (void)db;
    (void)seq;
    service_t *svc = arg;
    apply_result_t rc = APPLY_OK;
    ProtobufCMessage *msg = NULL;
    // Everything is decided as of the event's own time, never the wall clock: a replay of the
    // intake stream from zero then rebuilds the same cases.
    int64_t at_us;
    if (!env->occurred_at || time_parse_iso(env->occurred_at, &at_us) != 0)
        at_us = time_now_us();
    if (strcmp(env->type, "cara.ReferralSubmitted") == 0) {
        msg = envelope_payload(env, &cara__referral_submitted__descriptor);
        int64_t received;
        if (msg && time_parse_iso(((Cara__ReferralSubmitted *)msg)->received_at, &received) == 0)
            at_us = received;
        if (msg)
            rc = s_on_submitted(svc, (Cara__ReferralSubmitted *)msg, at_us, reason, reason_size);
    } else if (strcmp(env->type, "cara.ReferralAmended") == 0) {
        msg = envelope_payload(env, &cara__referral_amended__descriptor);
        if (msg)
            rc = s_on_amended(svc, (Cara__ReferralAmended *)msg, at_us, reason, reason_size);
    } else if (strcmp(env->type, "cara.ReferralWithdrawn") == 0) {
        msg = envelope_payload(env, &cara__referral_withdrawn__descriptor);
        if (msg)
            rc = s_on_withdrawn(svc, (Cara__ReferralWithdrawn *)msg, at_us, reason, reason_size);
    } else {
        return APPLY_OK; // not for triage (outcomes, ...)
    }
    if (!msg) {
        snprintf(reason, reason_size, "undecodable %s", env->type);
        return APPLY_POISON;
    }
    protobuf_c_message_free_unpacked(msg, NULL);
    return rc;
}

int triage_case_needs_changed(service_t *svc, const char *referral_id) {
    db_t *db = service_db(svc);
    const char *values[] = {referral_id};
    PGresult *row = db_query(db,
                             "SELECT force, coalesce(provider_id, ''), status FROM triage_case"
                             " WHERE referral_id = $1",
                             1, values);
    triage_needs_t needs = {0};
    int rc = -1;
    if (!row || PQntuples(row) != 1)
        goto cleanup;
    if (strcmp(PQgetvalue(row, 0, 2), "triaged") != 0) {
        rc = 0; // not routed (yet): ReferralTriaged will carry the needs
        goto cleanup;
    }
    if (triage_needs_load(db, referral_id, &needs) != 0)
        goto cleanup;
    Cara__TriageCaseUpdated up = CARA__TRIAGE_CASE_UPDATED__INIT;
    up.referral_id = (char *)referral_id;
    up.force = PQgetvalue(row, 0, 0);
    up.provider_id = PQgetvalue(row, 0, 1);
    up.needs = needs.needs;
    up.n_needs = needs.n_needs;
    up.onward = needs.onward;
    up.n_onward = needs.n_onward;
    up.reason = "needs_recorded";
    if (outbox_append(db, &up.base, referral_id, up.provider_id, referral_id, NULL) >= 0)
        rc = 0;
cleanup:
    triage_needs_clear(&needs);
    if (row)
        PQclear(row);
    return rc;
}
