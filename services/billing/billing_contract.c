// Contracts as data: added, varied (caps raised releases held lines), and their status
// against the caps.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing.h"
#include "cara/timeutil.h"

int billing_cmd_add_contract(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                             reply_t *reply) {
    if (billing_require_finance(who, reply) != 0)
        return -1;
    Cara__AddContract *req =
        (Cara__AddContract *)envelope_payload(env, &cara__add_contract__descriptor);
    if (!req)
        return reply_field_error(reply, "payload", "not a valid cara.AddContract");
    int rc = -1;
    Cara__Contract *c = req->contract;
    int32_t from, to;
    if (!c) {
        reply_field_error(reply, "contract", "required");
        goto cleanup;
    }
    if (!*c->contract_id || strlen(c->contract_id) > 40)
        reply_field_error(reply, "contract.contract_id", "required, at most 40 characters");
    if (!*c->commissioner)
        reply_field_error(reply, "contract.commissioner", "required");
    if (!*c->provider_id)
        reply_field_error(reply, "contract.provider_id", "required");
    if (!*c->licence_holder)
        reply_field_error(reply, "contract.licence_holder", "required");
    if (time_parse_date(c->starts_on, &from) != 0)
        reply_field_error(reply, "contract.starts_on", "must be a date YYYY-MM-DD");
    if (time_parse_date(c->ends_on, &to) != 0)
        reply_field_error(reply, "contract.ends_on", "must be a date YYYY-MM-DD");
    else if (time_parse_date(c->starts_on, &from) == 0 && to <= from)
        reply_field_error(reply, "contract.ends_on", "must be after starts_on");
    const int64_t amounts[] = {c->cohort_fee_pence, c->victim_liaison_pence, c->telephone_fee_pence,
                               c->licence_fee_pence_per_cohort, c->delivery_cap_pence,
                               c->mobilisation_cap_pence};
    const char *names[] = {"cohort_fee_pence", "victim_liaison_pence", "telephone_fee_pence",
                           "licence_fee_pence_per_cohort", "delivery_cap_pence",
                           "mobilisation_cap_pence"};
    for (int i = 0; i < 6; i++)
        if (amounts[i] < 0)
            reply_field_error(reply, names[i], "must not be negative (pence)");
    if (c->licence_fee_pence_per_cohort > c->cohort_fee_pence + c->victim_liaison_pence)
        reply_field_error(reply, "contract.licence_fee_pence_per_cohort",
                          "is part of the delivery fee, so cannot exceed it");
    if (reply_error_count(reply))
        goto cleanup;
    char v[8][24];
    snprintf(v[0], 24, "%lld", (long long)c->cohort_fee_pence);
    snprintf(v[1], 24, "%lld", (long long)c->victim_liaison_pence);
    snprintf(v[2], 24, "%lld", (long long)c->telephone_fee_pence);
    snprintf(v[3], 24, "%lld", (long long)c->licence_fee_pence_per_cohort);
    snprintf(v[4], 24, "%lld", (long long)c->delivery_cap_pence);
    snprintf(v[5], 24, "%u", c->offender_cap);
    snprintf(v[6], 24, "%lld", (long long)c->mobilisation_cap_pence);
    snprintf(v[7], 24, "%u", c->max_facilitators);
    const char *values[] = {c->contract_id, c->commissioner, c->provider_id, c->licence_holder,
                            c->starts_on, c->ends_on, v[0], v[1], v[2], v[3], v[4], v[5], v[6],
                            v[7]};
    PGresult *r = db_query(service_db(svc),
                           "INSERT INTO contract (contract_id, commissioner, provider_id,"
                           " licence_holder, starts_on, ends_on, cohort_fee_pence,"
                           " victim_liaison_pence, telephone_fee_pence,"
                           " licence_fee_pence_per_cohort, delivery_cap_pence, offender_cap,"
                           " mobilisation_cap_pence, max_facilitators)"
                           " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
                           " ON CONFLICT (contract_id) DO NOTHING RETURNING 1",
                           14, values);
    if (!r) {
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable");
        goto cleanup;
    }
    int added = PQntuples(r) == 1;
    PQclear(r);
    if (!added) {
        reply_status(reply, CARA__REPLY__STATUS__CONFLICT,
                     "contract %s exists: use a variation", c->contract_id);
        goto cleanup;
    }
    if (service_audit(svc, who, "contract_added", "contract", c->contract_id, NULL) != 0)
        goto cleanup;
    rc = reply_ok(reply, NULL);
cleanup:
    cara__add_contract__free_unpacked(req, NULL);
    return rc;
}

int billing_cmd_vary_contract(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                              reply_t *reply) {
    if (billing_require_finance(who, reply) != 0)
        return -1;
    Cara__VaryContract *req =
        (Cara__VaryContract *)envelope_payload(env, &cara__vary_contract__descriptor);
    if (!req)
        return reply_field_error(reply, "payload", "not a valid cara.VaryContract");
    int rc = -1;
    if (!*req->reason)
        reply_field_error(reply, "reason", "a variation needs a reason");
    if (req->delivery_cap_pence < 0)
        reply_field_error(reply, "delivery_cap_pence", "must not be negative");
    if (reply_error_count(reply))
        goto cleanup;
    char cap[24], ocap[16];
    snprintf(cap, sizeof cap, "%lld", (long long)req->delivery_cap_pence);
    snprintf(ocap, sizeof ocap, "%u", req->offender_cap);
    const char *values[] = {req->contract_id, cap, ocap};
    PGresult *r = db_query(service_db(svc),
                           "UPDATE contract SET delivery_cap_pence = greatest($2::bigint,"
                           " delivery_cap_pence), offender_cap = greatest($3::int, offender_cap)"
                           " WHERE contract_id = $1 RETURNING 1",
                           3, values);
    if (!r || PQntuples(r) != 1) {
        reply_status(reply, r ? CARA__REPLY__STATUS__NOT_FOUND : CARA__REPLY__STATUS__UNAVAILABLE,
                     "no such contract");
        if (r)
            PQclear(r);
        goto cleanup;
    }
    PQclear(r);
    if (billing_release_held(svc, req->contract_id) != 0 ||
        service_audit(svc, who, "contract_varied", "contract", req->contract_id,
                      json_pack("{s:s, s:s, s:s}", "delivery_cap_pence", cap, "offender_cap", ocap,
                                "reason", req->reason)) != 0)
        goto cleanup;
    rc = reply_ok(reply, NULL);
cleanup:
    cara__vary_contract__free_unpacked(req, NULL);
    return rc;
}

int billing_cmd_contract_status(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                                reply_t *reply) {
    if (billing_require_finance(who, reply) != 0)
        return -1;
    Cara__ContractStatusRequest *req = (Cara__ContractStatusRequest *)envelope_payload(
        env, &cara__contract_status_request__descriptor);
    if (!req)
        return reply_field_error(reply, "payload", "not a valid cara.ContractStatusRequest");
    const char *values[] = {req->contract_id};
    PGresult *r = db_query(service_db(svc),
                           "SELECT delivery_cap_pence, offender_cap,"
                           " coalesce(sum(amount_pence) FILTER (WHERE status <> 'over_cap' AND"
                           "  kind IN ('cohort_fee', 'victim_liaison', 'telephone_fee')), 0),"
                           " coalesce(sum(participants) FILTER (WHERE status <> 'over_cap' AND"
                           "  kind IN ('cohort_fee', 'telephone_fee')), 0),"
                           " coalesce(sum(amount_pence) FILTER (WHERE status = 'over_cap' AND"
                           "  kind <> 'licence_fee'), 0),"
                           " coalesce(sum(amount_pence) FILTER (WHERE status <> 'over_cap' AND"
                           "  kind = 'licence_fee'), 0),"
                           " coalesce(sum(amount_pence) FILTER (WHERE kind = 'training'), 0)"
                           " FROM contract c LEFT JOIN billable_line l USING (contract_id)"
                           " WHERE contract_id = $1 GROUP BY contract_id",
                           1, values);
    int rc = -1;
    if (!r || PQntuples(r) != 1) {
        reply_status(reply, r ? CARA__REPLY__STATUS__NOT_FOUND : CARA__REPLY__STATUS__UNAVAILABLE,
                     "no such contract");
    } else {
        Cara__ContractStatus st = CARA__CONTRACT_STATUS__INIT;
        st.contract_id = req->contract_id;
        st.delivery_cap_pence = atoll(PQgetvalue(r, 0, 0));
        st.offender_cap = (uint32_t)atoi(PQgetvalue(r, 0, 1));
        st.delivery_billed_pence = atoll(PQgetvalue(r, 0, 2));
        st.offenders = (uint32_t)atoi(PQgetvalue(r, 0, 3));
        st.held_over_cap_pence = atoll(PQgetvalue(r, 0, 4));
        st.licence_fee_pence = atoll(PQgetvalue(r, 0, 5));
        st.training_pence = atoll(PQgetvalue(r, 0, 6));
        rc = reply_ok(reply, &st.base);
    }
    if (r)
        PQclear(r);
    cara__contract_status_request__free_unpacked(req, NULL);
    return rc;
}

int billing_cmd_training(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                         reply_t *reply) {
    if (billing_require_finance(who, reply) != 0)
        return -1;
    Cara__RecordTraining *req =
        (Cara__RecordTraining *)envelope_payload(env, &cara__record_training__descriptor);
    if (!req)
        return reply_field_error(reply, "payload", "not a valid cara.RecordTraining");
    int rc = -1;
    int32_t day;
    if (time_parse_date(req->delivered_on, &day) != 0)
        reply_field_error(reply, "delivered_on", "must be a date YYYY-MM-DD");
    if (req->actual_cost_pence <= 0)
        reply_field_error(reply, "actual_cost_pence", "must be positive (pence)");
    if (req->facilitators == 0)
        reply_field_error(reply, "facilitators", "must be at least 1");
    if (reply_error_count(reply))
        goto cleanup;
    db_t *db = service_db(svc);
    const char *values[] = {req->contract_id};
    PGresult *c = db_query(db,
                           "SELECT commissioner, provider_id, licence_holder,"
                           " mobilisation_cap_pence, max_facilitators,"
                           " (SELECT coalesce(sum(amount_pence), 0) FROM billable_line WHERE"
                           "  contract_id = $1 AND kind = 'mobilisation'),"
                           " (SELECT count(*) FROM billable_line WHERE contract_id = $1"
                           "  AND kind = 'training')"
                           " FROM contract WHERE contract_id = $1 FOR UPDATE",
                           1, values);
    if (!c || PQntuples(c) != 1) {
        reply_status(reply, c ? CARA__REPLY__STATUS__NOT_FOUND : CARA__REPLY__STATUS__UNAVAILABLE,
                     "no such contract");
        if (c)
            PQclear(c);
        goto cleanup;
    }
    if (req->facilitators > (uint32_t)atoi(PQgetvalue(c, 0, 4)))
        reply_field_error(reply, "facilitators", "the contract covers at most %s",
                          PQgetvalue(c, 0, 4));
    if (atoll(PQgetvalue(c, 0, 5)) + req->actual_cost_pence > atoll(PQgetvalue(c, 0, 3)))
        reply_field_error(reply, "actual_cost_pence", "would exceed the mobilisation cap");
    if (reply_error_count(reply)) {
        PQclear(c);
        goto cleanup;
    }
    // At actual cost, twice: Hampton Trust -> provider (training), provider -> commissioner
    // (mobilisation).
    char source[96], cost[24], n[12];
    snprintf(cost, sizeof cost, "%lld", (long long)req->actual_cost_pence);
    snprintf(n, sizeof n, "%u", req->facilitators);
    int seqno = atoi(PQgetvalue(c, 0, 6)) + 1;
    const char *kinds[] = {"training", "mobilisation"};
    const char *issuers[] = {PQgetvalue(c, 0, 2), PQgetvalue(c, 0, 1)};
    const char *payers[] = {PQgetvalue(c, 0, 1), PQgetvalue(c, 0, 0)};
    int ok = 1;
    for (int i = 0; i < 2 && ok; i++) {
        snprintf(source, sizeof source, "training:%s:%d:%s", req->contract_id, seqno, kinds[i]);
        const char *lv[] = {req->contract_id, kinds[i], source, n, req->delivered_on, cost,
                            issuers[i], payers[i]};
        ok = db_exec(db,
                     "INSERT INTO billable_line (contract_id, kind, source, participants,"
                     " delivered_on, amount_pence, issuer, payer)"
                     " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                     8, lv) == 0;
    }
    PQclear(c);
    if (!ok || service_audit(svc, who, "training_recorded", "contract", req->contract_id,
                             json_pack("{s:s, s:s}", "facilitators", n, "cost_pence", cost)) != 0)
        goto cleanup;
    rc = reply_ok(reply, NULL);
cleanup:
    cara__record_training__free_unpacked(req, NULL);
    return rc;
}
