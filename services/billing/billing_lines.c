// Billable lines. They come only from the booking stream (delivered cohorts, completed
// telephone cases) and from training records; each is keyed by its source so that replaying
// the stream bills nothing twice.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing.h"
#include "booking.pb-c.h"
#include "cara/log.h"
#include "cara/stream.h"

static const identity_t s_booking = {"service", "booking"};

int billing_require_finance(const identity_t *who, reply_t *reply) {
    if (identity_is(who, "finance") || identity_is(who, "commissioner") ||
        identity_is(who, "operator"))
        return 0;
    reply_status(reply, CARA__REPLY__STATUS__FORBIDDEN,
                 "only finance staff and commissioners may do this");
    return -1;
}

static int s_insert_line(db_t *db, const char *contract_id, const char *kind, const char *source,
                         const char *cohort_id, int participants, const char *delivered_on,
                         int64_t amount, const char *issuer, const char *payer,
                         const char *status) {
    char amount_s[24], part_s[12];
    snprintf(amount_s, sizeof amount_s, "%lld", (long long)amount);
    snprintf(part_s, sizeof part_s, "%d", participants);
    const char *values[] = {contract_id, kind, source, cohort_id, part_s, delivered_on,
                            amount_s, issuer, payer, status};
    return db_exec(db,
                   "INSERT INTO billable_line (contract_id, kind, source, cohort_id, participants,"
                   " delivered_on, amount_pence, issuer, payer, status)"
                   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                   " ON CONFLICT (source) DO NOTHING",
                   10, values);
}

// Emits CapReached once per threshold crossed. Returns 0 or -1.
static int s_alerts(service_t *svc, const char *contract_id) {
    db_t *db = service_db(svc);
    const char *values[] = {contract_id};
    PGresult *r = db_query(db,
                           "SELECT delivery_cap_pence, offender_cap,"
                           " (SELECT coalesce(sum(amount_pence), 0) FROM billable_line WHERE"
                           "  contract_id = $1 AND status <> 'over_cap' AND kind IN"
                           "  ('cohort_fee', 'victim_liaison', 'telephone_fee')),"
                           " (SELECT coalesce(sum(participants), 0) FROM billable_line WHERE"
                           "  contract_id = $1 AND status <> 'over_cap' AND kind IN"
                           "  ('cohort_fee', 'telephone_fee')),"
                           " (SELECT count(*) FROM billable_line WHERE contract_id = $1"
                           "  AND status = 'over_cap')"
                           " FROM contract WHERE contract_id = $1",
                           1, values);
    if (!r || PQntuples(r) != 1) {
        if (r)
            PQclear(r);
        return -1;
    }
    long long cap = atoll(PQgetvalue(r, 0, 0)), ocap = atoll(PQgetvalue(r, 0, 1));
    long long used = atoll(PQgetvalue(r, 0, 2)), offenders = atoll(PQgetvalue(r, 0, 3));
    int held = atoi(PQgetvalue(r, 0, 4)) > 0;
    PQclear(r);
    static const int thresholds[] = {75, 90, 100};
    for (int kind = 0; kind < 2; kind++) {
        long long limit = kind == 0 ? cap : ocap, value = kind == 0 ? used : offenders;
        for (int t = 0; t < 3; t++) {
            if (limit <= 0 || (value * 100 < limit * thresholds[t] && !(held && t == 2)))
                continue;
            char pct[8];
            snprintf(pct, sizeof pct, "%d", thresholds[t]);
            const char *cap_name = kind == 0 ? "money" : "offenders";
            const char *iv[] = {contract_id, cap_name, pct};
            PGresult *ins = db_query(db,
                                     "INSERT INTO cap_alert (contract_id, cap, percent)"
                                     " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1",
                                     3, iv);
            if (!ins)
                return -1;
            int fresh = PQntuples(ins) == 1;
            PQclear(ins);
            if (!fresh)
                continue;
            Cara__CapReached ev = CARA__CAP_REACHED__INIT;
            ev.contract_id = (char *)contract_id;
            ev.percent = (uint32_t)thresholds[t];
            ev.cap = (char *)cap_name;
            if (outbox_append(db, &ev.base, contract_id, NULL, NULL, NULL) < 0)
                return -1;
            log_warn("cap_alert", "contract", contract_id, "cap", cap_name, "percent", pct);
        }
    }
    return 0;
}

int billing_add_delivery(service_t *svc, const char *contract_id, const char *source_prefix,
                         const char *cohort_id, int participants, const char *delivered_on,
                         int telephone) {
    db_t *db = service_db(svc);
    const char *values[] = {contract_id};
    // Lock the contract: cap checks of concurrent deliveries happen one at a time.
    PGresult *c = db_query(db,
                           "SELECT provider_id, commissioner, licence_holder, cohort_fee_pence,"
                           " victim_liaison_pence, telephone_fee_pence,"
                           " licence_fee_pence_per_cohort, delivery_cap_pence, offender_cap,"
                           " (SELECT coalesce(sum(amount_pence), 0) FROM billable_line WHERE"
                           "  contract_id = $1 AND status <> 'over_cap' AND kind IN"
                           "  ('cohort_fee', 'victim_liaison', 'telephone_fee')),"
                           " (SELECT coalesce(sum(participants), 0) FROM billable_line WHERE"
                           "  contract_id = $1 AND status <> 'over_cap' AND kind IN"
                           "  ('cohort_fee', 'telephone_fee'))"
                           " FROM contract WHERE contract_id = $1 FOR UPDATE",
                           1, values);
    if (!c || PQntuples(c) != 1) {
        if (c)
            PQclear(c);
        return -1;
    }
    const char *provider = PQgetvalue(c, 0, 0), *commissioner = PQgetvalue(c, 0, 1);
    const char *holder = PQgetvalue(c, 0, 2);
    int64_t fee = atoll(PQgetvalue(c, 0, telephone ? 5 : 3));
    int64_t liaison = telephone ? 0 : atoll(PQgetvalue(c, 0, 4));
    int64_t licence = telephone ? 0 : atoll(PQgetvalue(c, 0, 6));
    int64_t cap = atoll(PQgetvalue(c, 0, 7)), ocap = atoll(PQgetvalue(c, 0, 8));
    int64_t used = atoll(PQgetvalue(c, 0, 9)), offenders = atoll(PQgetvalue(c, 0, 10));
    const char *status =
        (used + fee + liaison > cap || offenders + participants > ocap) ? "over_cap" : "pending";
    char source[200];
    int rc = 0;
    snprintf(source, sizeof source, "%s:%s", source_prefix, telephone ? "telephone_fee" : "cohort_fee");
    rc |= s_insert_line(db, contract_id, telephone ? "telephone_fee" : "cohort_fee", source,
                        cohort_id, participants, delivered_on, fee, provider, commissioner, status);
    if (!telephone) {
        snprintf(source, sizeof source, "%s:victim_liaison", source_prefix);
        rc |= s_insert_line(db, contract_id, "victim_liaison", source, cohort_id, 0, delivered_on,
                            liaison, provider, commissioner, status);
        // The licence fee is part of the delivery fee: Hampton Trust invoices the provider.
        snprintf(source, sizeof source, "%s:licence_fee", source_prefix);
        if (licence > 0)
            rc |= s_insert_line(db, contract_id, "licence_fee", source, cohort_id, 0,
                                delivered_on, licence, holder, provider, status);
    }
    PQclear(c);
    if (rc != 0)
        return -1;
    return s_alerts(svc, contract_id);
}

int billing_release_held(service_t *svc, const char *contract_id) {
    db_t *db = service_db(svc);
    const char *values[] = {contract_id};
    PGresult *held = db_query(db,
                              "SELECT DISTINCT split_part(source, ':', 1) || ':' ||"
                              " split_part(source, ':', 2), min(line_id) FROM billable_line"
                              " WHERE contract_id = $1 AND status = 'over_cap'"
                              " GROUP BY 1 ORDER BY 2",
                              1, values);
    if (!held)
        return -1;
    int rc = 0;
    for (int i = 0; rc == 0 && i < PQntuples(held); i++) {
        // Re-add the delivery from its held lines: fits now, or stays held.
        const char *pv[] = {contract_id, PQgetvalue(held, i, 0)};
        PGresult *lines = db_query(db,
                                   "DELETE FROM billable_line WHERE contract_id = $1 AND"
                                   " status = 'over_cap' AND source LIKE $2 || ':%'"
                                   " RETURNING kind, cohort_id, participants, delivered_on::text",
                                   2, pv);
        if (!lines)
            return -1;
        int participants = 0, telephone = 0;
        char cohort[64] = "", on[16] = "";
        for (int k = 0; k < PQntuples(lines); k++) {
            participants += atoi(PQgetvalue(lines, k, 2));
            telephone |= strcmp(PQgetvalue(lines, k, 0), "telephone_fee") == 0;
            snprintf(cohort, sizeof cohort, "%s", PQgetvalue(lines, k, 1));
            snprintf(on, sizeof on, "%s", PQgetvalue(lines, k, 3));
        }
        PQclear(lines);
        rc = billing_add_delivery(svc, contract_id, PQgetvalue(held, i, 0), cohort, participants,
                                  on, telephone);
    }
    PQclear(held);
    return rc;
}

// The contract that covers a provider's delivery on a date. Returns 1, 0 (none) or -1.
static int s_contract_for(db_t *db, const char *provider, const char *date, char *out,
                          size_t size) {
    const char *values[] = {provider, date};
    return db_scalar(db,
                     "SELECT contract_id FROM contract WHERE provider_id = $1"
                     " AND $2::date BETWEEN starts_on AND ends_on ORDER BY starts_on DESC LIMIT 1",
                     2, values, out, (int)size);
}

apply_result_t billing_apply_booking(db_t *db, const Cara__Envelope *env, uint64_t seq, void *arg,
                                     char *reason, size_t reason_size) {
    (void)seq;
    service_t *svc = arg;
    char contract[64], source[128];
    if (strcmp(env->type, "cara.CohortDelivered") == 0) {
        Cara__CohortDelivered *ev =
            (Cara__CohortDelivered *)envelope_payload(env, &cara__cohort_delivered__descriptor);
        if (!ev) {
            snprintf(reason, reason_size, "undecodable cara.CohortDelivered");
            return APPLY_POISON;
        }
        apply_result_t rc = APPLY_OK;
        int found = s_contract_for(db, ev->provider_id, ev->part_b_date, contract,
                                   sizeof contract);
        // A revision (attendance corrected) does not change a per-cohort fee; the first
        // report bills the cohort. The telephone pathway is billed per completed case.
        if (found < 0)
            rc = APPLY_RETRY;
        else if (found == 0) {
            snprintf(reason, reason_size, "no contract covers provider %s on %s",
                     ev->provider_id, ev->part_b_date);
            rc = APPLY_POISON;
        } else if (strcmp(ev->cohort_type, "telephone") != 0 && ev->participants > 0) {
            snprintf(source, sizeof source, "cohort:%s", ev->cohort_id);
            if (billing_add_delivery(svc, contract, source, ev->cohort_id, (int)ev->participants,
                                     ev->part_b_date, 0) != 0 ||
                service_audit(svc, &s_booking, "delivery_billed", "cohort", ev->cohort_id,
                              NULL) != 0)
                rc = APPLY_RETRY;
        }
        cara__cohort_delivered__free_unpacked(ev, NULL);
        return rc;
    }
    if (strcmp(env->type, "cara.CaseCompleted") == 0) {
        Cara__CaseCompleted *ev =
            (Cara__CaseCompleted *)envelope_payload(env, &cara__case_completed__descriptor);
        if (!ev) {
            snprintf(reason, reason_size, "undecodable cara.CaseCompleted");
            return APPLY_POISON;
        }
        apply_result_t rc = APPLY_OK;
        if (strcmp(ev->pathway, "telephone") == 0) {
            char day[16];
            snprintf(day, sizeof day, "%.10s", ev->completed_at);
            int found = s_contract_for(db, ev->provider_id, day, contract, sizeof contract);
            snprintf(source, sizeof source, "case:%s", ev->case_id);
            if (found < 0)
                rc = APPLY_RETRY;
            else if (found == 0) {
                snprintf(reason, reason_size, "no contract covers provider %s on %s",
                         ev->provider_id, day);
                rc = APPLY_POISON;
            } else if (billing_add_delivery(svc, contract, source, ev->cohort_id, 1, day, 1) != 0)
                rc = APPLY_RETRY;
        }
        cara__case_completed__free_unpacked(ev, NULL);
        return rc;
    }
    return APPLY_OK;
}
