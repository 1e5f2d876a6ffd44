// Caps: what a contract has used of its delivery money and offender caps, whether a delivery
// fits, alerts at 75/90/100 percent, and releasing held deliveries after a variation.
// Counted against the money cap: the lines the commissioner pays for delivery (cohort fees,
// victim liaison, telephone fees, victim contact, a recharged licence fee), pending or
// invoiced, net of credits. Offenders: participants of billed cohorts and telephone cases.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing.h"
#include "billing_year.h"
#include "cara/log.h"
#include "cara/stream.h"

#define S_CAP_KINDS                                                                                \
    "('cohort_fee', 'victim_liaison', 'telephone_fee', 'victim_contact', 'licence_recharge')"

// Offenders: a cohort's latest report (cohort_delivery) counts, not only the participants its
// line had when it was invoiced (an invoiced line's evidence is never changed); a credit line
// (a removed cohort's) takes its own participants off.
int billing_cap_usage(db_t *db, const char *contract_id, int64_t *money, int64_t *offenders) {
    const char *values[] = {contract_id};
    PGresult *r = db_query(db,
                           "SELECT coalesce(sum(amount_pence) FILTER (WHERE kind IN " S_CAP_KINDS
                           "), 0), coalesce(sum(CASE WHEN kind = 'telephone_fee' OR credits_line IS"
                           " NOT NULL THEN participants WHEN kind = 'cohort_fee' THEN"
                           " greatest(participants, coalesce((SELECT"
                           " d.participants FROM cohort_delivery d WHERE d.cohort_id = l.cohort_id"
                           " AND NOT d.removed AND l.delivery_key = 'cohort:' || d.cohort_id ||"
                           " ':g' || d.generation), 0)) END), 0) FROM billable_line l"
                           " WHERE contract_id = $1 AND status IN ('pending', 'invoiced')",
                           1, values);
    if (!r)
        return -1;
    *money = atoll(PQgetvalue(r, 0, 0));
    *offenders = atoll(PQgetvalue(r, 0, 1));
    PQclear(r);
    return 0;
}

const char *billing_cap_check(db_t *db, const char *contract_id, int64_t money, int64_t offenders,
                              int *error) {
    const char *values[] = {contract_id};
    int64_t used, used_offenders;
    PGresult *r = db_query(db,
                           "SELECT delivery_cap_pence, offender_cap FROM contract"
                           " WHERE contract_id = $1",
                           1, values);
    if (!r || PQntuples(r) != 1 || billing_cap_usage(db, contract_id, &used, &used_offenders)) {
        if (r)
            PQclear(r);
        *error = 1;
        return NULL;
    }
    int64_t cap = atoll(PQgetvalue(r, 0, 0)), ocap = atoll(PQgetvalue(r, 0, 1));
    PQclear(r);
    int64_t sum;
    if (__builtin_add_overflow(used, money, &sum) || sum > cap)
        return "money";
    if (__builtin_add_overflow(used_offenders, offenders, &sum) || sum > ocap)
        return "offenders";
    return NULL;
}

// Raises one alert if not raised before: cap_alert row, CapReached event, audit. Returns 0/-1.
static int s_raise(service_t *svc, const char *contract_id, const char *cap, int percent,
                   int64_t used, int64_t limit, const char *commissioner, const char *provider) {
    static const identity_t billing = {"service", "billing"};
    db_t *db = service_db(svc);
    char pct[8];
    snprintf(pct, sizeof pct, "%d", percent);
    const char *iv[] = {contract_id, cap, pct};
    PGresult *ins = db_query(db,
                             "INSERT INTO cap_alert (contract_id, cap, percent)"
                             " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1",
                             3, iv);
    if (!ins)
        return -1;
    int fresh = PQntuples(ins) == 1;
    PQclear(ins);
    if (!fresh)
        return 0;
    Cara__CapReached ev = CARA__CAP_REACHED__INIT;
    ev.contract_id = (char *)contract_id;
    ev.percent = (uint32_t)percent;
    ev.cap = (char *)cap;
    ev.commissioner = (char *)commissioner;
    ev.provider_id = (char *)provider;
    ev.used = used;
    ev.limit = limit;
    if (outbox_append(db, &ev.base, contract_id, commissioner, NULL, NULL) < 0)
        return -1;
    log_warn("cap_alert", "contract", contract_id, "cap", cap, "percent", pct);
    return service_audit(svc, &billing, "cap_reached", "contract", contract_id,
                         json_pack("{s:s, s:i, s:I, s:I}", "cap", cap, "percent", percent, "used",
                                   (json_int_t)used, "limit", (json_int_t)limit));
}

int billing_cap_alerts(service_t *svc, const char *contract_id) {
    db_t *db = service_db(svc);
    const char *values[] = {contract_id};
    int64_t used[2];
    PGresult *r = db_query(db,
                           "SELECT delivery_cap_pence, offender_cap, commissioner, provider_id,"
                           " EXISTS (SELECT 1 FROM billable_line WHERE contract_id = $1 AND"
                           "  status = 'over_cap' AND held_reason = 'money'),"
                           " EXISTS (SELECT 1 FROM billable_line WHERE contract_id = $1 AND"
                           "  status = 'over_cap' AND held_reason = 'offenders')"
                           " FROM contract WHERE contract_id = $1",
                           1, values);
    if (!r || PQntuples(r) != 1 || billing_cap_usage(db, contract_id, &used[0], &used[1]) != 0) {
        if (r)
            PQclear(r);
        return -1;
    }
    static const char *const caps[] = {"money", "offenders"};
    static const int levels[] = {75, 90, 100};
    int rc = 0;
    for (int k = 0; k < 2 && rc == 0; k++) {
        int64_t limit = atoll(PQgetvalue(r, 0, k));
        int reached = billing_threshold(used[k], limit);
        if (strcmp(PQgetvalue(r, 0, 4 + k), "t") == 0)
            reached = 100; // a delivery is held at this cap: it is full
        for (int t = 0; t < 3 && rc == 0; t++)
            if (levels[t] <= reached)
                rc = s_raise(svc, contract_id, caps[k], levels[t], used[k], limit,
                             PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 3));
    }
    PQclear(r);
    return rc;
}

int billing_cap_release(service_t *svc, const char *contract_id) {
    db_t *db = service_db(svc);
    const char *values[] = {contract_id};
    PGresult *held = db_query(db,
                              "SELECT delivery_key, coalesce(sum(amount_pence) FILTER (WHERE kind"
                              " IN " S_CAP_KINDS "), 0), coalesce(sum(participants) FILTER"
                              " (WHERE kind IN ('cohort_fee', 'telephone_fee')), 0)"
                              " FROM billable_line WHERE contract_id = $1 AND status = 'over_cap'"
                              " GROUP BY delivery_key ORDER BY min(line_id)",
                              1, values);
    if (!held)
        return -1;
    int rc = 0;
    for (int i = 0; rc == 0 && i < PQntuples(held); i++) {
        int error = 0;
        const char *why = billing_cap_check(db, contract_id, atoll(PQgetvalue(held, i, 1)),
                                            atoll(PQgetvalue(held, i, 2)), &error);
        const char *uv[] = {contract_id, PQgetvalue(held, i, 0), why};
        rc = error ? -1
                   : db_exec(db,
                             "UPDATE billable_line SET status = CASE WHEN $3::text IS NULL THEN"
                             " 'pending' ELSE 'over_cap' END, held_reason = $3"
                             " WHERE contract_id = $1 AND delivery_key = $2"
                             " AND status = 'over_cap'",
                             3, uv);
    }
    PQclear(held);
    return rc == 0 ? billing_cap_alerts(svc, contract_id) : -1;
}
