// The shortfall report: open cases that the scheduled cohorts (with their free seats) cannot all
// take before their deadlines, by pathway, so the provider can schedule more capacity or switch
// a case to telephone.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "booking.h"
#include "booking_rules.h"
#include "cara/timeutil.h"

int booking_cmd_shortfall(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                          reply_t *reply) {
    (void)env;
    if (booking_require_provider(who, reply) != 0)
        return -1;
    db_t *db = service_db(svc);
    const char *values[] = {who->org};
    int rc = -1;
    booking_demand_t *demand = NULL;
    booking_supply_t *supply = NULL;
    Cara__PathwayShortfall *rows = NULL, **ptrs = NULL;
    char **ids = NULL;
    size_t n_rows = 0;
    // live and NOT is_full are the predicates of the indexes these two read (migrations 004, 006).
    PGresult *cases =
        db_query(db,
                 "SELECT referral_id::text, pathway, compliance_deadline::text"
                 " FROM provider_case WHERE provider_id = $1 AND live AND status = 'open'",
                 1, values);
    PGresult *cohorts = db_query(db,
                                 "SELECT cohort_type, part_b_date::text, capacity - seats_taken"
                                 " FROM cohort WHERE provider_id = $1 AND status = 'scheduled'"
                                 " AND NOT is_full"
                                 " AND part_a_date > (now() AT TIME ZONE 'Europe/London')::date",
                                 1, values);
    if (!cases || !cohorts) {
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable");
        goto cleanup;
    }
    size_t n = (size_t)PQntuples(cases), m = (size_t)PQntuples(cohorts);
    demand = calloc(n + 1, sizeof *demand);
    supply = calloc(m + 1, sizeof *supply);
    rows = calloc(n + 1, sizeof *rows); // at most one row per case
    ptrs = calloc(n + 1, sizeof *ptrs);
    ids = calloc(n + 1, sizeof *ids);
    if (!demand || !supply || !rows || !ptrs || !ids)
        goto cleanup;
    for (size_t i = 0; i < n; i++) {
        demand[i].referral_id = PQgetvalue(cases, (int)i, 0);
        demand[i].pathway = PQgetvalue(cases, (int)i, 1);
        time_parse_date(PQgetvalue(cases, (int)i, 2), &demand[i].deadline);
    }
    for (size_t k = 0; k < m; k++) {
        supply[k].cohort_type = PQgetvalue(cohorts, (int)k, 0);
        time_parse_date(PQgetvalue(cohorts, (int)k, 1), &supply[k].part_b);
        supply[k].free_seats = atoi(PQgetvalue(cohorts, (int)k, 2));
    }
    booking_shortfall_plan(demand, n, supply, m);
    // Demand is now in deadline order: one row per pathway (the most urgent first), then each
    // row's ids, contiguous in ids[], in deadline order.
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        if (demand[i].placed)
            continue;
        Cara__PathwayShortfall *row = NULL;
        for (size_t k = 0; k < n_rows && !row; k++)
            if (strcmp(rows[k].pathway, demand[i].pathway) == 0)
                row = &rows[k];
        if (!row) {
            row = &rows[n_rows];
            ptrs[n_rows++] = row;
            cara__pathway_shortfall__init(row);
            row->pathway = (char *)demand[i].pathway;
            row->earliest_deadline = calloc(16, 1);
            if (!row->earliest_deadline)
                goto cleanup;
            time_format_date(demand[i].deadline, row->earliest_deadline, 16);
        }
        row->cases++;
    }
    for (size_t k = 0; k < n_rows; k++) {
        rows[k].referral_ids = &ids[used];
        for (size_t i = 0; i < n; i++)
            if (!demand[i].placed && strcmp(demand[i].pathway, rows[k].pathway) == 0)
                ids[used++] = (char *)demand[i].referral_id;
        rows[k].n_referral_ids = rows[k].cases;
    }
    Cara__ShortfallReport report = CARA__SHORTFALL_REPORT__INIT;
    report.pathways = ptrs;
    report.n_pathways = n_rows;
    rc = reply_ok(reply, &report.base);
cleanup:
    if (rc != 0 && reply->msg.status == CARA__REPLY__STATUS__OK)
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "could not build the report");
    for (size_t k = 0; rows && k < n_rows; k++)
        free(rows[k].earliest_deadline);
    free(rows);
    free(ptrs);
    free(ids);
    free(demand);
    free(supply);
    if (cases)
        PQclear(cases);
    if (cohorts)
        PQclear(cohorts);
    return rc;
}
