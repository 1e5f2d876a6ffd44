// Invoice runs: every pending line delivered by the end of the period, grouped by contract,
// issuer and payer, becomes one invoice numbered in sequence per issuer (no gaps: the number
// is drawn from a counter row in the same transaction). Issued invoices are never edited.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing.h"
#include "cara/stream.h"
#include "cara/timeutil.h"

int billing_cmd_run_invoices(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                             reply_t *reply) {
    if (billing_require_finance(who, reply) != 0)
        return -1;
    Cara__RunInvoices *req =
        (Cara__RunInvoices *)envelope_payload(env, &cara__run_invoices__descriptor);
    if (!req)
        return reply_field_error(reply, "payload", "not a valid cara.RunInvoices");
    int rc = -1;
    db_t *db = service_db(svc);
    char first[16], end[16];
    int32_t day;
    snprintf(first, sizeof first, "%.7s-01", req->period);
    if (strlen(req->period) != 7 || time_parse_date(first, &day) != 0) {
        reply_field_error(reply, "period", "must be a month YYYY-MM");
        goto cleanup;
    }
    int y;
    unsigned m, d;
    time_civil_from_days(day, &y, &m, &d);
    time_format_date(m == 12 ? time_days_from_civil(y + 1, 1, 1) - 1
                             : time_days_from_civil(y, m + 1, 1) - 1,
                     end, sizeof end);
    const char *gv[] = {end};
    PGresult *groups = db_query(db,
                                "SELECT contract_id, issuer, payer, sum(amount_pence)"
                                " FROM billable_line WHERE status = 'pending'"
                                " AND delivered_on <= $1::date GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
                                1, gv);
    if (!groups)
        goto cleanup;
    int issued = 0, ok = 1;
    for (int i = 0; ok && i < PQntuples(groups); i++) {
        const char *contract = PQgetvalue(groups, i, 0), *issuer = PQgetvalue(groups, i, 1);
        const char *payer = PQgetvalue(groups, i, 2), *total = PQgetvalue(groups, i, 3);
        const char *iv[] = {issuer};
        char n[16];
        ok = db_scalar(db,
                       "INSERT INTO invoice_counter (issuer, last) VALUES ($1, 1)"
                       " ON CONFLICT (issuer) DO UPDATE SET last = invoice_counter.last + 1"
                       " RETURNING last",
                       1, iv, n, sizeof n) == 1;
        if (!ok)
            break;
        char number[96];
        snprintf(number, sizeof number, "%s-%05d", issuer, atoi(n));
        const char *values[] = {number, issuer, payer, contract, req->period, total, end};
        PGresult *inv = db_query(db,
                                 "WITH inv AS (INSERT INTO invoice (number, issuer, payer,"
                                 " contract_id, period, total_pence) VALUES ($1, $2, $3, $4, $5,"
                                 " $6) RETURNING invoice_id, issued_at)"
                                 " UPDATE billable_line SET status = 'invoiced', invoice_id ="
                                 " (SELECT invoice_id FROM inv) WHERE status = 'pending'"
                                 " AND contract_id = $4 AND issuer = $2 AND payer = $3"
                                 " AND delivered_on <= $7::date"
                                 " RETURNING (SELECT invoice_id FROM inv)",
                                 7, values);
        ok = inv && PQntuples(inv) > 0;
        if (!ok) {
            if (inv)
                PQclear(inv);
            break;
        }
        Cara__InvoiceIssued ev = CARA__INVOICE_ISSUED__INIT;
        ev.invoice_id = PQgetvalue(inv, 0, 0);
        ev.number = number;
        ev.issuer = (char *)issuer;
        ev.payer = (char *)payer;
        ev.contract_id = (char *)contract;
        ev.period = req->period;
        ev.total_pence = atoll(total);
        ok = outbox_append(db, &ev.base, ev.invoice_id, payer, NULL, NULL) >= 0 &&
             service_audit(svc, who, "invoice_issued", "invoice", number,
                           json_pack("{s:s, s:s}", "total_pence", total, "payer", payer)) == 0;
        PQclear(inv);
        issued++;
    }
    PQclear(groups);
    if (!ok) {
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "invoice run failed");
        goto cleanup;
    }
    reply_status(reply, CARA__REPLY__STATUS__OK, "%d invoice(s) issued", issued);
    rc = reply_ok(reply, NULL);
cleanup:
    cara__run_invoices__free_unpacked(req, NULL);
    return rc;
}

int billing_cmd_list_invoices(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                              reply_t *reply) {
    (void)env;
    if (billing_require_finance(who, reply) != 0)
        return -1;
    PGresult *r = db_query(service_db(svc),
                           "SELECT i.invoice_id, number, i.issuer, i.payer, i.contract_id,"
                           " period, total_pence, issued_at::text, l.kind, l.amount_pence,"
                           " coalesce(l.cohort_id, ''), l.participants, l.delivered_on::text,"
                           " l.source FROM invoice i JOIN billable_line l USING (invoice_id)"
                           " ORDER BY i.issuer, number, l.line_id",
                           0, NULL);
    if (!r) {
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable");
        return -1;
    }
    int n = PQntuples(r), rc = -1, n_inv = 0;
    Cara__Invoice *invs = calloc((size_t)n + 1, sizeof *invs);
    Cara__Invoice **ptrs = calloc((size_t)n + 1, sizeof *ptrs);
    Cara__InvoiceLine *lines = calloc((size_t)n + 1, sizeof *lines);
    Cara__InvoiceLine **lptrs = calloc((size_t)n + 1, sizeof *lptrs);
    if (invs && ptrs && lines && lptrs) {
        for (int i = 0; i < n; i++) {
            if (n_inv == 0 || strcmp(invs[n_inv - 1].invoice_id, PQgetvalue(r, i, 0)) != 0) {
                Cara__Invoice *inv = &invs[n_inv];
                cara__invoice__init(inv);
                inv->invoice_id = PQgetvalue(r, i, 0);
                inv->number = PQgetvalue(r, i, 1);
                inv->issuer = PQgetvalue(r, i, 2);
                inv->payer = PQgetvalue(r, i, 3);
                inv->contract_id = PQgetvalue(r, i, 4);
                inv->period = PQgetvalue(r, i, 5);
                inv->total_pence = atoll(PQgetvalue(r, i, 6));
                inv->issued_at = PQgetvalue(r, i, 7);
                inv->lines = &lptrs[i];
                ptrs[n_inv++] = inv;
            }
            Cara__InvoiceLine *l = &lines[i];
            cara__invoice_line__init(l);
            l->kind = PQgetvalue(r, i, 8);
            l->amount_pence = atoll(PQgetvalue(r, i, 9));
            l->cohort_id = PQgetvalue(r, i, 10);
            l->participants = (uint32_t)atoi(PQgetvalue(r, i, 11));
            l->delivered_on = PQgetvalue(r, i, 12);
            l->source = PQgetvalue(r, i, 13);
            lptrs[i] = l;
            invs[n_inv - 1].n_lines++;
        }
        Cara__InvoiceList list = CARA__INVOICE_LIST__INIT;
        list.invoices = ptrs;
        list.n_invoices = (size_t)n_inv;
        rc = reply_ok(reply, &list.base);
    }
    free(invs);
    free(ptrs);
    free(lines);
    free(lptrs);
    PQclear(r);
    return rc;
}
