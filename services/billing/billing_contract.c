// Contracts as data: added (the whole fee schedule, caps, dates, funding partners), varied
// (raising a cap releases held deliveries), and their status against the caps with a
// straight-line forecast to the end of the financial year.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing.h"
#include "billing_year.h"
#include "cara/timeutil.h"

// Checks a contract; every problem becomes a field error. Returns the number of errors.
static size_t s_validate(const Cara__Contract *c, reply_t *reply) {
    int32_t from = 0, to = 0;
    if (!*c->contract_id || strlen(c->contract_id) > 40)
        reply_field_error(reply, "contract.contract_id", "required, at most 40 characters");
    if (!*c->commissioner)
        reply_field_error(reply, "contract.commissioner", "required");
    if (!*c->provider_id)
        reply_field_error(reply, "contract.provider_id", "required");
    if (!*c->licence_holder)
        reply_field_error(reply, "contract.licence_holder", "required");
    int dates = time_parse_date(c->starts_on, &from) == 0;
    if (!dates)
        reply_field_error(reply, "contract.starts_on", "must be a date YYYY-MM-DD");
    if (time_parse_date(c->ends_on, &to) != 0)
        reply_field_error(reply, "contract.ends_on", "must be a date YYYY-MM-DD");
    else if (dates && to <= from)
        reply_field_error(reply, "contract.ends_on", "must be after starts_on");
    const int64_t amounts[] = {c->cohort_fee_pence,        c->victim_liaison_pence,
                               c->telephone_fee_pence,     c->licence_fee_pence_per_cohort,
                               c->delivery_cap_pence,      c->mobilisation_cap_pence,
                               c->licence_fee_fixed_pence, c->victim_contact_fee_pence};
    const char *names[] = {
        "contract.cohort_fee_pence",        "contract.victim_liaison_pence",
        "contract.telephone_fee_pence",     "contract.licence_fee_pence_per_cohort",
        "contract.delivery_cap_pence",      "contract.mobilisation_cap_pence",
        "contract.licence_fee_fixed_pence", "contract.victim_contact_fee_pence"};
    for (int i = 0; i < 8; i++)
        if (amounts[i] < 0 || amounts[i] > BILLING_MAX_PENCE)
            reply_field_error(reply, names[i], "must be 0 to %lld (pence)", BILLING_MAX_PENCE);
    const char *mode = *c->licence_fee_mode ? c->licence_fee_mode : "per_cohort";
    if (strcmp(mode, "per_cohort") != 0 && strcmp(mode, "fixed") != 0)
        reply_field_error(reply, "contract.licence_fee_mode", "must be per_cohort or fixed");
    else if (strcmp(mode, "fixed") == 0 && c->licence_fee_pence_per_cohort > 0)
        reply_field_error(reply, "contract.licence_fee_pence_per_cohort",
                          "must be 0 when the licence fee is fixed");
    else if (strcmp(mode, "per_cohort") == 0 && c->licence_fee_fixed_pence > 0)
        reply_field_error(reply, "contract.licence_fee_fixed_pence",
                          "must be 0 when the licence fee is per cohort");
    if (!c->licence_fee_exclusive &&
        c->licence_fee_pence_per_cohort > c->cohort_fee_pence + c->victim_liaison_pence)
        reply_field_error(reply, "contract.licence_fee_pence_per_cohort",
                          "is inside the delivery fee, so cannot exceed it");
    if (*c->invoice_period && strcmp(c->invoice_period, "monthly") != 0 &&
        strcmp(c->invoice_period, "quarterly") != 0)
        reply_field_error(reply, "contract.invoice_period", "must be monthly or quarterly");
    for (size_t i = 0; i < c->n_cohort_fees; i++) {
        char field[64];
        snprintf(field, sizeof field, "contract.cohort_fees[%zu]", i);
        if (!*c->cohort_fees[i]->cohort_type)
            reply_field_error(reply, field, "cohort_type required");
        if (c->cohort_fees[i]->fee_pence < 0 || c->cohort_fees[i]->fee_pence > BILLING_MAX_PENCE)
            reply_field_error(reply, field, "fee_pence must be 0 to %lld", BILLING_MAX_PENCE);
    }
    // Funding shares: known years of the contract, each year adding up to 100.00%.
    for (size_t i = 0; i < c->n_funding; i++) {
        char field[64];
        int32_t first, last;
        const Cara__FundingShare *f = c->funding[i];
        snprintf(field, sizeof field, "contract.funding[%zu]", i);
        if (billing_year_parse(f->financial_year, &first, &last) != 0)
            reply_field_error(reply, field, "financial_year must be like 2026-27");
        else if (dates && (last < from || first > to))
            reply_field_error(reply, field, "financial_year is outside the contract's dates");
        if (!*f->partner)
            reply_field_error(reply, field, "partner required");
        if (f->basis_points == 0 || f->basis_points > 10000)
            reply_field_error(reply, field, "basis_points must be 1..10000");
        uint32_t sum = 0;
        for (size_t k = 0; k < c->n_funding; k++)
            if (strcmp(c->funding[k]->financial_year, f->financial_year) == 0)
                sum += c->funding[k]->basis_points;
        if (sum != 10000)
            reply_field_error(reply, field, "the shares of %s add up to %u basis points, not 10000",
                              f->financial_year, sum);
    }
    return reply_error_count(reply);
}

// Inserts the fixed licence fee lines, one per financial year the contract touches (Hampton
// Trust -> provider, and the recharge if exclusive), dated at the year's (or contract's)
// start. Returns 0 or -1.
static int s_fixed_licence(db_t *db, const Cara__Contract *c) {
    int32_t from, to, first, last;
    if (time_parse_date(c->starts_on, &from) != 0 || time_parse_date(c->ends_on, &to) != 0)
        return -1;
    for (int32_t day = from; day <= to; day = last + 1) {
        char fy[16], on[16], amount[24], source[160], key[128];
        if (billing_year_of(day, fy, sizeof fy, &first, &last) != 0)
            return -1;
        time_format_date(day, on, sizeof on);
        snprintf(amount, sizeof amount, "%lld", (long long)c->licence_fee_fixed_pence);
        snprintf(key, sizeof key, "licence:%s:%s", c->contract_id, fy);
        for (int k = 0; k < (c->licence_fee_exclusive ? 2 : 1); k++) {
            const char *kind = k ? "licence_recharge" : "licence_fee";
            snprintf(source, sizeof source, "%s:%s", key, kind);
            const char *values[] = {c->contract_id,
                                    kind,
                                    source,
                                    on,
                                    amount,
                                    k ? c->provider_id : c->licence_holder,
                                    k ? c->commissioner : c->provider_id,
                                    key,
                                    fy};
            if (db_exec(db,
                        "INSERT INTO billable_line (contract_id, kind, source, delivered_on,"
                        " amount_pence, issuer, payer, delivery_key, financial_year)"
                        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                        9, values) != 0)
                return -1;
        }
    }
    return 0;
}

int billing_cmd_add_contract(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                             reply_t *reply) {
    if (billing_require_role(who, reply, 0) != 0)
        return -1;
    Cara__AddContract *req =
        (Cara__AddContract *)envelope_payload(env, &cara__add_contract__descriptor);
    if (!req)
        return reply_field_error(reply, "payload", "not a valid cara.AddContract");
    int rc = -1;
    Cara__Contract *c = req->contract;
    db_t *db = service_db(svc);
    if (!c) {
        reply_field_error(reply, "contract", "required");
        goto cleanup;
    }
    if (s_validate(c, reply) > 0)
        goto cleanup;
    // The contract sets the commissioner's budget and the fees it pays: only its staff add it
    // (a provider adding a later contract of its own would be billed at its fees).
    if (strcmp(who->org, c->commissioner) != 0) {
        reply_status(reply, CARA__REPLY__STATUS__FORBIDDEN,
                     "only the commissioner (%s) may add this contract", c->commissioner);
        goto cleanup;
    }
    // Deliveries go to the latest-starting contract covering their date for the provider, so a
    // contract of another commissioner over the same days would take over the provider's
    // billing (its deliveries billed at that commissioner's fees, to that commissioner). Over
    // any day, a provider has contracts of one commissioner only: the commissioner's own renewal
    // may overlap its old contract, another commissioner's contract starts after the last day
    // of the one before. Contracts are added one at a time (the lock is released at commit) so
    // that two overlapping contracts of different commissioners cannot both pass the check.
    if (db_exec(db, "LOCK TABLE contract IN SHARE ROW EXCLUSIVE MODE", 0, NULL) != 0)
        goto unavailable;
    const char *span[] = {c->provider_id, c->commissioner, c->starts_on, c->ends_on};
    char other[4];
    int taken = db_scalar(db,
                          "SELECT 1 FROM contract WHERE provider_id = $1 AND commissioner <> $2"
                          " AND starts_on <= $4::date AND ends_on >= $3::date LIMIT 1",
                          4, span, other, sizeof other);
    if (taken < 0)
        goto unavailable;
    if (taken > 0) {
        reply_status(reply, CARA__REPLY__STATUS__FORBIDDEN,
                     "provider %s has a contract with another commissioner between %s and %s",
                     c->provider_id, c->starts_on, c->ends_on);
        goto cleanup;
    }
    char v[10][24];
    snprintf(v[0], 24, "%lld", (long long)c->cohort_fee_pence);
    snprintf(v[1], 24, "%lld", (long long)c->victim_liaison_pence);
    snprintf(v[2], 24, "%lld", (long long)c->telephone_fee_pence);
    snprintf(v[3], 24, "%lld", (long long)c->licence_fee_pence_per_cohort);
    snprintf(v[4], 24, "%lld", (long long)c->delivery_cap_pence);
    snprintf(v[5], 24, "%u", c->offender_cap);
    snprintf(v[6], 24, "%lld", (long long)c->mobilisation_cap_pence);
    snprintf(v[7], 24, "%u", c->max_facilitators);
    snprintf(v[8], 24, "%lld", (long long)c->licence_fee_fixed_pence);
    snprintf(v[9], 24, "%lld", (long long)c->victim_contact_fee_pence);
    json_t *items = json_array();
    for (size_t i = 0; i < c->n_mobilisation_items; i++)
        json_array_append_new(items, json_string(c->mobilisation_items[i]));
    char *items_json = json_dumps(items, JSON_COMPACT);
    json_decref(items);
    const char *values[] = {c->contract_id,
                            c->commissioner,
                            c->provider_id,
                            c->licence_holder,
                            c->starts_on,
                            c->ends_on,
                            v[0],
                            v[1],
                            v[2],
                            v[3],
                            v[4],
                            v[5],
                            v[6],
                            v[7],
                            *c->licence_fee_mode ? c->licence_fee_mode : "per_cohort",
                            v[8],
                            c->licence_fee_exclusive ? "t" : "f",
                            v[9],
                            items_json,
                            *c->invoice_period ? c->invoice_period : "monthly"};
    PGresult *r = db_query(db,
                           "INSERT INTO contract (contract_id, commissioner, provider_id,"
                           " licence_holder, starts_on, ends_on, cohort_fee_pence,"
                           " victim_liaison_pence, telephone_fee_pence,"
                           " licence_fee_pence_per_cohort, delivery_cap_pence, offender_cap,"
                           " mobilisation_cap_pence, max_facilitators, licence_fee_mode,"
                           " licence_fee_fixed_pence, licence_fee_exclusive,"
                           " victim_contact_fee_pence, mobilisation_items, invoice_period)"
                           " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,"
                           " $15, $16, $17, $18, ARRAY(SELECT json_array_elements_text($19)),"
                           " $20) ON CONFLICT (contract_id) DO NOTHING RETURNING 1",
                           20, values);
    free(items_json);
    if (!r) {
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable");
        goto cleanup;
    }
    int added = PQntuples(r) == 1;
    PQclear(r);
    if (!added) {
        reply_status(reply, CARA__REPLY__STATUS__CONFLICT, "contract %s exists: use a variation",
                     c->contract_id);
        goto cleanup;
    }
    for (size_t i = 0; i < c->n_cohort_fees; i++) {
        char fee[24];
        snprintf(fee, sizeof fee, "%lld", (long long)c->cohort_fees[i]->fee_pence);
        const char *fv[] = {c->contract_id, c->cohort_fees[i]->cohort_type, fee};
        if (db_exec(db,
                    "INSERT INTO contract_cohort_fee (contract_id, cohort_type, fee_pence)"
                    " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    3, fv) != 0)
            goto unavailable;
    }
    for (size_t i = 0; i < c->n_funding; i++) {
        char bp[16];
        snprintf(bp, sizeof bp, "%u", c->funding[i]->basis_points);
        const char *fv[] = {c->contract_id, c->funding[i]->financial_year, c->funding[i]->partner,
                            bp};
        if (db_exec(db,
                    "INSERT INTO funding_share (contract_id, financial_year, partner,"
                    " basis_points) VALUES ($1, $2, $3, $4)",
                    4, fv) != 0)
            goto unavailable;
    }
    if ((c->licence_fee_fixed_pence > 0 && s_fixed_licence(db, c) != 0) ||
        service_audit(svc, who, "contract_added", "contract", c->contract_id, NULL) != 0 ||
        billing_bill_waiting(svc, c->provider_id) != 0)
        goto unavailable;
    rc = reply_ok(reply, NULL);
    goto cleanup;
unavailable:
    reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "could not store the contract");
cleanup:
    cara__add_contract__free_unpacked(req, NULL);
    return rc;
}

int billing_cmd_vary_contract(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                              reply_t *reply) {
    if (billing_require_role(who, reply, 0) != 0)
        return -1;
    Cara__VaryContract *req =
        (Cara__VaryContract *)envelope_payload(env, &cara__vary_contract__descriptor);
    if (!req)
        return reply_field_error(reply, "payload", "not a valid cara.VaryContract");
    int rc = -1;
    if (!*req->reason)
        reply_field_error(reply, "reason", "a variation needs a reason");
    if (req->delivery_cap_pence < 0 || req->delivery_cap_pence > BILLING_MAX_PENCE)
        reply_field_error(reply, "delivery_cap_pence", "must be 0 to %lld (pence)",
                          BILLING_MAX_PENCE);
    if (reply_error_count(reply) ||
        billing_require_commissioner(svc, who, req->contract_id, reply) != 1)
        goto cleanup;
    char cap[24], ocap[16];
    snprintf(cap, sizeof cap, "%lld", (long long)req->delivery_cap_pence);
    snprintf(ocap, sizeof ocap, "%u", req->offender_cap);
    const char *values[] = {req->contract_id, cap, ocap};
    // A variation raises caps (0 = leave as it is); it never lowers one.
    PGresult *cur = db_query(service_db(svc),
                             "SELECT delivery_cap_pence, offender_cap FROM contract"
                             " WHERE contract_id = $1 FOR UPDATE",
                             1, values);
    if (!cur || PQntuples(cur) != 1) {
        if (cur)
            PQclear(cur);
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable");
        goto cleanup;
    }
    if (req->delivery_cap_pence != 0 && req->delivery_cap_pence < atoll(PQgetvalue(cur, 0, 0)))
        reply_field_error(reply, "delivery_cap_pence", "a variation cannot lower the cap (%s)",
                          PQgetvalue(cur, 0, 0));
    if (req->offender_cap != 0 && req->offender_cap < (uint32_t)atoi(PQgetvalue(cur, 0, 1)))
        reply_field_error(reply, "offender_cap", "a variation cannot lower the cap (%s)",
                          PQgetvalue(cur, 0, 1));
    if (req->delivery_cap_pence == 0 && req->offender_cap == 0)
        reply_field_error(reply, "delivery_cap_pence", "a variation raises at least one cap");
    PQclear(cur);
    if (reply_error_count(reply))
        goto cleanup;
    if (db_exec(service_db(svc),
                "UPDATE contract SET delivery_cap_pence = greatest($2::bigint,"
                " delivery_cap_pence), offender_cap = greatest($3::int, offender_cap)"
                " WHERE contract_id = $1",
                3, values) != 0 ||
        billing_cap_release(svc, req->contract_id) != 0 ||
        service_audit(svc, who, "contract_varied", "contract", req->contract_id,
                      json_pack("{s:s, s:s, s:s}", "delivery_cap_pence", cap, "offender_cap", ocap,
                                "reason", req->reason)) != 0) {
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "could not vary the contract");
        goto cleanup;
    }
    rc = reply_ok(reply, NULL);
cleanup:
    cara__vary_contract__free_unpacked(req, NULL);
    return rc;
}

int billing_cmd_contract_status(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                                reply_t *reply) {
    if (billing_require_role(who, reply, 1) != 0)
        return -1;
    Cara__ContractStatusRequest *req = (Cara__ContractStatusRequest *)envelope_payload(
        env, &cara__contract_status_request__descriptor);
    if (!req)
        return reply_field_error(reply, "payload", "not a valid cara.ContractStatusRequest");
    int rc = -1;
    PGresult *r = NULL;
    int32_t as_of, first, last;
    char as_of_s[16], fy[16], first_s[16];
    if (*req->as_of ? time_parse_date(req->as_of, &as_of) != 0 : 0) {
        reply_field_error(reply, "as_of", "must be a date YYYY-MM-DD");
        goto cleanup;
    }
    if (!*req->as_of)
        as_of = time_uk_day(time_now_us());
    if (billing_require_party(svc, who, req->contract_id, reply) != 1)
        goto cleanup;
    time_format_date(as_of, as_of_s, sizeof as_of_s);
    billing_year_of(as_of, fy, sizeof fy, &first, &last);
    time_format_date(first, first_s, sizeof first_s);
    const char *values[] = {req->contract_id, as_of_s, first_s};
    r = db_query(service_db(svc),
                 "SELECT delivery_cap_pence, offender_cap,"
                 " coalesce(sum(amount_pence) FILTER (WHERE status = 'over_cap' AND kind <>"
                 "  'licence_fee'), 0),"
                 " coalesce(sum(amount_pence) FILTER (WHERE status IN ('pending', 'invoiced')"
                 "  AND kind = 'licence_fee'), 0),"
                 " coalesce(sum(amount_pence) FILTER (WHERE status IN ('pending', 'invoiced')"
                 "  AND kind = 'training'), 0),"
                 " coalesce(sum(amount_pence) FILTER (WHERE status IN ('pending', 'invoiced')"
                 "  AND kind IN ('cohort_fee', 'victim_liaison', 'telephone_fee',"
                 "  'victim_contact', 'licence_recharge') AND delivered_on BETWEEN $3::date"
                 "  AND $2::date), 0),"
                 " coalesce(sum(amount_pence) FILTER (WHERE status = 'invoiced' AND"
                 "  l.payer = c.commissioner AND l.issuer = c.provider_id), 0)"
                 " FROM contract c LEFT JOIN billable_line l USING (contract_id)"
                 " WHERE contract_id = $1 GROUP BY contract_id",
                 3, values);
    Cara__ContractStatus st = CARA__CONTRACT_STATUS__INIT;
    int64_t used, offenders;
    if (!r || PQntuples(r) != 1 ||
        billing_cap_usage(service_db(svc), req->contract_id, &used, &offenders) != 0) {
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable");
        goto cleanup;
    }
    st.contract_id = req->contract_id;
    st.delivery_cap_pence = atoll(PQgetvalue(r, 0, 0));
    st.offender_cap = (uint32_t)atoi(PQgetvalue(r, 0, 1));
    st.delivery_billed_pence = used;
    st.offenders = (uint32_t)offenders;
    st.held_over_cap_pence = atoll(PQgetvalue(r, 0, 2));
    st.licence_fee_pence = atoll(PQgetvalue(r, 0, 3));
    st.training_pence = atoll(PQgetvalue(r, 0, 4));
    st.financial_year = fy;
    st.year_spend_pence = atoll(PQgetvalue(r, 0, 5));
    st.forecast_year_end_pence = billing_forecast(st.year_spend_pence, first, as_of, last);
    st.money_percent =
        st.delivery_cap_pence > 0 ? (uint32_t)(used * 100 / st.delivery_cap_pence) : 0;
    st.offender_percent = st.offender_cap > 0 ? (uint32_t)(offenders * 100 / st.offender_cap) : 0;
    st.invoiced_pence = atoll(PQgetvalue(r, 0, 6));
    st.as_of = as_of_s;
    rc = reply_ok(reply, &st.base);
cleanup:
    if (r)
        PQclear(r);
    cara__contract_status_request__free_unpacked(req, NULL);
    return rc;
}
