// Training records entered by finance staff: facilitators trained and the actual cost. Billed
// at actual cost twice, once per hop: Hampton Trust -> provider (training) and provider ->
// commissioner (mobilisation), within the contract's mobilisation cap.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing.h"
#include "billing_year.h"
#include "cara/timeutil.h"

int billing_cmd_training(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                         reply_t *reply) {
    if (billing_require_finance(who, reply) != 0)
        return -1;
    Cara__RecordTraining *req =
        (Cara__RecordTraining *)envelope_payload(env, &cara__record_training__descriptor);
    if (!req)
        return reply_field_error(reply, "payload", "not a valid cara.RecordTraining");
    int rc = -1;
    PGresult *c = NULL;
    db_t *db = service_db(svc);
    int32_t day;
    char fy[16];
    if (time_parse_date(req->delivered_on, &day) != 0)
        reply_field_error(reply, "delivered_on", "must be a date YYYY-MM-DD");
    if (req->actual_cost_pence <= 0 || req->actual_cost_pence > BILLING_MAX_PENCE)
        reply_field_error(reply, "actual_cost_pence", "must be 1 to %lld (pence)",
                          BILLING_MAX_PENCE);
    if (req->facilitators == 0)
        reply_field_error(reply, "facilitators", "must be at least 1");
    if (reply_error_count(reply) || billing_require_party(svc, who, req->contract_id, reply) != 1)
        goto cleanup;
    const char *values[] = {req->contract_id, req->item};
    c = db_query(db,
                 "SELECT commissioner, provider_id, licence_holder, mobilisation_cap_pence,"
                 " max_facilitators, (SELECT coalesce(sum(amount_pence), 0) FROM billable_line"
                 "  WHERE contract_id = $1 AND kind = 'mobilisation'),"
                 " cardinality(mobilisation_items) = 0 OR $2 = ANY (mobilisation_items),"
                 " starts_on::text, ends_on::text, (SELECT coalesce(sum(facilitators), 0)"
                 "  FROM training WHERE contract_id = $1 AND item = $2)"
                 " FROM contract WHERE contract_id = $1 FOR UPDATE",
                 2, values);
    if (!c || PQntuples(c) != 1) {
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable");
        goto cleanup;
    }
    // The contract pays for up to max_facilitators trained in each item, over all its records.
    if ((int64_t)req->facilitators + atoll(PQgetvalue(c, 0, 9)) > atoll(PQgetvalue(c, 0, 4)))
        reply_field_error(reply, "facilitators",
                          "the contract covers at most %s for this item (%s recorded)",
                          PQgetvalue(c, 0, 4), PQgetvalue(c, 0, 9));
    if (atoll(PQgetvalue(c, 0, 5)) + req->actual_cost_pence > atoll(PQgetvalue(c, 0, 3)))
        reply_field_error(reply, "actual_cost_pence",
                          "would take mobilisation past its cap of %s pence", PQgetvalue(c, 0, 3));
    if (strcmp(PQgetvalue(c, 0, 6), "t") != 0)
        reply_field_error(reply, "item", "not one of the contract's mobilisation items");
    if (strcmp(req->delivered_on, PQgetvalue(c, 0, 8)) > 0)
        reply_field_error(reply, "delivered_on", "after the contract ends");
    else if (strcmp(req->delivered_on, PQgetvalue(c, 0, 7)) < 0)
        reply_field_error(reply, "delivered_on", "before the contract starts");
    if (reply_error_count(reply))
        goto cleanup;
    char cost[24], n[12], training_id[40], key[96], source[128];
    snprintf(cost, sizeof cost, "%lld", (long long)req->actual_cost_pence);
    snprintf(n, sizeof n, "%u", req->facilitators);
    const char *tv[] = {req->contract_id, req->item, n, cost, req->delivered_on, who->org};
    if (db_scalar(db,
                  "INSERT INTO training (contract_id, item, facilitators, actual_cost_pence,"
                  " delivered_on, recorded_by) VALUES ($1, $2, $3, $4, $5, $6)"
                  " RETURNING training_id",
                  6, tv, training_id, sizeof training_id) != 1 ||
        billing_year_of(day, fy, sizeof fy, NULL, NULL) != 0)
        goto unavailable;
    snprintf(key, sizeof key, "training:%s", training_id);
    const char *kinds[] = {"training", "mobilisation"};
    const char *issuers[] = {PQgetvalue(c, 0, 2), PQgetvalue(c, 0, 1)};
    const char *payers[] = {PQgetvalue(c, 0, 1), PQgetvalue(c, 0, 0)};
    for (int i = 0; i < 2; i++) {
        snprintf(source, sizeof source, "%s:%s", key, kinds[i]);
        const char *lv[] = {req->contract_id, kinds[i],  source, n,  req->delivered_on, cost,
                            issuers[i],       payers[i], key,    fy, training_id};
        if (db_exec(db,
                    "INSERT INTO billable_line (contract_id, kind, source, participants,"
                    " delivered_on, amount_pence, issuer, payer, delivery_key, financial_year,"
                    " event_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    11, lv) != 0)
            goto unavailable;
    }
    if (service_audit(svc, who, "training_recorded", "contract", req->contract_id,
                      json_pack("{s:s, s:s, s:s}", "training_id", training_id, "facilitators", n,
                                "cost_pence", cost)) != 0)
        goto unavailable;
    rc = reply_ok(reply, NULL);
    goto cleanup;
unavailable:
    reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "could not record the training");
cleanup:
    if (c)
        PQclear(c);
    cara__record_training__free_unpacked(req, NULL);
    return rc;
}
