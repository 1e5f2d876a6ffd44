// Invoice runs: every pending line of a contract delivered by the end of the period becomes
// part of one invoice per issuer, payer and financial year (the year of delivery, i.e. of
// Part B), numbered in sequence per issuer without gaps (the number is drawn from a counter
// row in the same transaction, so a rolled-back run leaves no hole). Credit lines become
// credit notes, numbered in their own series, each naming the invoice it credits. Issued
// invoices are never edited (a trigger refuses it). Funding partners' shares of a year add up
// to the penny (money_split).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing.h"
#include "billing_year.h"
#include "cara/money.h"
#include "cara/stream.h"
#include "cara/timeutil.h"

// Splits an invoice to the commissioner between the funding partners of its contract's year,
// if any. Returns 0 or -1.
static int s_funding(db_t *db, const char *invoice_id, const char *contract_id, const char *fy,
                     const char *payer, int64_t total) {
    const char *values[] = {contract_id, fy, payer};
    PGresult *r = db_query(db,
                           "SELECT partner, basis_points FROM funding_share f JOIN contract c"
                           " USING (contract_id) WHERE contract_id = $1 AND financial_year = $2"
                           " AND c.commissioner = $3 ORDER BY partner",
                           3, values);
    if (!r)
        return -1;
    int n = PQntuples(r), rc = 0;
    if (n > 0) {
        int *bp = calloc((size_t)n, sizeof *bp);
        int64_t *parts = calloc((size_t)n, sizeof *parts);
        for (int i = 0; bp && parts && i < n; i++)
            bp[i] = atoi(PQgetvalue(r, i, 1));
        // Split the magnitude, so that a credit note splits exactly as its invoice did.
        int64_t magnitude = total < 0 ? -total : total;
        rc = bp && parts ? money_split(magnitude, bp, (size_t)n, parts) : -1;
        for (int i = 0; rc == 0 && i < n; i++) {
            char amount[24];
            snprintf(amount, sizeof amount, "%lld", (long long)(total < 0 ? -parts[i] : parts[i]));
            const char *fv[] = {invoice_id, PQgetvalue(r, i, 0), amount};
            rc = db_exec(db,
                         "INSERT INTO invoice_funding (invoice_id, partner, amount_pence)"
                         " VALUES ($1, $2, $3)",
                         3, fv);
        }
        free(bp);
        free(parts);
    }
    PQclear(r);
    return rc;
}

// Issues one invoice or credit note for a group of pending lines. Returns 0 or -1.
static int s_issue(service_t *svc, const identity_t *who, const char *contract_id,
                   const char *period, const char *end, PGresult *g, int row) {
    db_t *db = service_db(svc);
    const char *issuer = PQgetvalue(g, row, 0), *payer = PQgetvalue(g, row, 1);
    const char *fy = PQgetvalue(g, row, 2), *credited = PQgetvalue(g, row, 3);
    const char *total = PQgetvalue(g, row, 4), *credited_number = PQgetvalue(g, row, 5);
    int credit = *credited != '\0';
    const char *series = credit ? "CN" : "INV";
    const char *cv[] = {issuer, series};
    char n[16], number[128], invoice_id[40];
    if (db_scalar(db,
                  "INSERT INTO invoice_counter (issuer, series, last) VALUES ($1, $2, 1)"
                  " ON CONFLICT (issuer, series) DO UPDATE SET last = invoice_counter.last + 1"
                  " RETURNING last",
                  2, cv, n, sizeof n) != 1)
        return -1;
    snprintf(number, sizeof number, "%s-%s-%05d", issuer, series, atoi(n));
    const char *iv[] = {number,
                        issuer,
                        payer,
                        contract_id,
                        period,
                        total,
                        credit ? "credit_note" : "invoice",
                        fy,
                        credit ? credited : NULL};
    if (db_scalar(db,
                  "INSERT INTO invoice (number, issuer, payer, contract_id, period, total_pence,"
                  " kind, financial_year, credits) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                  " RETURNING invoice_id",
                  9, iv, invoice_id, sizeof invoice_id) != 1)
        return -1;
    const char *uv[] = {invoice_id, contract_id, issuer, payer, fy, end, credit ? credited : NULL};
    if (db_exec(db,
                "UPDATE billable_line l SET status = 'invoiced', invoice_id = $1"
                " WHERE contract_id = $2 AND status = 'pending' AND issuer = $3 AND payer = $4"
                " AND financial_year = $5 AND delivered_on <= $6::date AND"
                " ($7::uuid IS NULL AND credits_line IS NULL OR credits_line IN"
                "  (SELECT line_id FROM billable_line o WHERE o.invoice_id = $7::uuid))",
                7, uv) != 0 ||
        s_funding(db, invoice_id, contract_id, fy, payer, atoll(total)) != 0)
        return -1;
    int64_t seq;
    if (credit) {
        Cara__CreditNoteIssued ev = CARA__CREDIT_NOTE_ISSUED__INIT;
        ev.credit_note_id = invoice_id;
        ev.number = number;
        ev.issuer = (char *)issuer;
        ev.payer = (char *)payer;
        ev.contract_id = (char *)contract_id;
        ev.period = (char *)period;
        ev.total_pence = atoll(total);
        ev.credits = (char *)credited_number;
        ev.reason = "delivery_removed";
        seq = outbox_append(db, &ev.base, invoice_id, payer, NULL, NULL);
    } else {
        Cara__InvoiceIssued ev = CARA__INVOICE_ISSUED__INIT;
        ev.invoice_id = invoice_id;
        ev.number = number;
        ev.issuer = (char *)issuer;
        ev.payer = (char *)payer;
        ev.contract_id = (char *)contract_id;
        ev.period = (char *)period;
        ev.total_pence = atoll(total);
        ev.financial_year = (char *)fy;
        seq = outbox_append(db, &ev.base, invoice_id, payer, NULL, NULL);
    }
    if (seq < 0)
        return -1;
    return service_audit(svc, who, credit ? "credit_note_issued" : "invoice_issued", "invoice",
                         number,
                         json_pack("{s:s, s:s, s:s, s:s}", "contract", contract_id, "total_pence",
                                   total, "payer", payer, "financial_year", fy));
}

int billing_cmd_run_invoices(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                             reply_t *reply) {
    if (billing_require_role(who, reply, 0) != 0)
        return -1;
    Cara__RunInvoices *req =
        (Cara__RunInvoices *)envelope_payload(env, &cara__run_invoices__descriptor);
    if (!req)
        return reply_field_error(reply, "payload", "not a valid cara.RunInvoices");
    int rc = -1, issued = 0, ok = 1;
    db_t *db = service_db(svc);
    PGresult *contracts = NULL;
    int32_t first, last;
    char end[16];
    if (billing_period_parse(req->period, &first, &last) != 0) {
        reply_field_error(reply, "period", "must be a month YYYY-MM");
        goto cleanup;
    }
    time_format_date(last, end, sizeof end);
    unsigned month = (unsigned)atoi(req->period + 5);
    // The contracts this organisation is a party to, locked: one run at a time per contract.
    const char *cv[] = {who->org};
    contracts = db_query(db,
                         "SELECT contract_id, invoice_period FROM contract WHERE $1 IN"
                         " (commissioner, provider_id, licence_holder) ORDER BY contract_id"
                         " FOR UPDATE",
                         1, cv);
    if (!contracts) {
        ok = 0;
        goto done;
    }
    for (int c = 0; ok && c < PQntuples(contracts); c++) {
        const char *contract_id = PQgetvalue(contracts, c, 0);
        if (!billing_period_due(PQgetvalue(contracts, c, 1), month))
            continue;
        const char *gv[] = {contract_id, end};
        PGresult *g = db_query(db,
                               "SELECT l.issuer, l.payer, l.financial_year,"
                               " coalesce(o.invoice_id::text, ''), sum(l.amount_pence),"
                               " coalesce(min(i.number), '')"
                               " FROM billable_line l LEFT JOIN billable_line o ON o.line_id ="
                               " l.credits_line LEFT JOIN invoice i ON i.invoice_id = o.invoice_id"
                               " WHERE l.contract_id = $1 AND l.status = 'pending'"
                               " AND l.delivered_on <= $2::date"
                               " GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
                               2, gv);
        if (!g) {
            ok = 0;
            break;
        }
        for (int i = 0; ok && i < PQntuples(g); i++) {
            ok = s_issue(svc, who, contract_id, req->period, end, g, i) == 0;
            issued += ok;
        }
        PQclear(g);
    }
done:
    if (!ok) {
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "invoice run failed");
        goto cleanup;
    }
    rc = reply_ok(reply, NULL);
    reply_status(reply, CARA__REPLY__STATUS__OK, "%d invoice(s) and credit note(s) issued", issued);
cleanup:
    if (contracts)
        PQclear(contracts);
    cara__run_invoices__free_unpacked(req, NULL);
    return rc;
}

int billing_cmd_list_invoices(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                              reply_t *reply) {
    if (billing_require_role(who, reply, 1) != 0)
        return -1;
    Cara__ListInvoices *req =
        (Cara__ListInvoices *)envelope_payload(env, &cara__list_invoices__descriptor);
    if (!req)
        return reply_field_error(reply, "payload", "not a valid cara.ListInvoices");
    // Their own organisation's invoices only (as issuer or payer); operators see all.
    const char *values[] = {identity_is(who, "operator") ? NULL : who->org, req->number,
                            req->contract_id, req->period};
    PGresult *r = db_query(service_db(svc),
                           "SELECT i.invoice_id, i.number, i.issuer, i.payer, i.contract_id,"
                           " i.period, i.total_pence, i.issued_at::text, l.kind, l.amount_pence,"
                           " coalesce(l.cohort_id, ''), l.participants, l.delivered_on::text,"
                           " l.source, coalesce(l.part_a_date::text, ''),"
                           " coalesce(l.financial_year, ''), coalesce(l.event_id, ''),"
                           " coalesce(l.cohort_type, ''), i.kind, coalesce(i.financial_year, ''),"
                           " coalesce((SELECT number FROM invoice c WHERE c.invoice_id ="
                           "  i.credits), ''),"
                           " coalesce((SELECT json_agg(json_build_object('partner', partner,"
                           "  'amount_pence', amount_pence) ORDER BY partner) FROM invoice_funding"
                           "  f WHERE f.invoice_id = i.invoice_id)::text, '[]')"
                           " FROM invoice i JOIN billable_line l USING (invoice_id)"
                           " WHERE ($1::text IS NULL OR $1 IN (i.issuer, i.payer))"
                           " AND ($2 = '' OR i.number = $2) AND ($3 = '' OR i.contract_id = $3)"
                           " AND ($4 = '' OR i.period = $4)"
                           " ORDER BY i.issuer, i.kind DESC, i.number, l.line_id",
                           4, values);
    cara__list_invoices__free_unpacked(req, NULL);
    if (!r) {
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable");
        return -1;
    }
    int n = PQntuples(r), rc = -1, n_inv = 0;
    Cara__Invoice *invs = calloc((size_t)n + 1, sizeof *invs);
    Cara__Invoice **ptrs = calloc((size_t)n + 1, sizeof *ptrs);
    Cara__InvoiceLine *lines = calloc((size_t)n + 1, sizeof *lines);
    Cara__InvoiceLine **lptrs = calloc((size_t)n + 1, sizeof *lptrs);
    json_t **funding = calloc((size_t)n + 1, sizeof *funding);
    Cara__FundingPart *parts = NULL;
    Cara__FundingPart **pptrs = NULL;
    size_t n_parts = 0;
    if (!invs || !ptrs || !lines || !lptrs || !funding)
        goto done;
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
            inv->kind = PQgetvalue(r, i, 18);
            inv->financial_year = PQgetvalue(r, i, 19);
            inv->credits = PQgetvalue(r, i, 20);
            inv->lines = &lptrs[i];
            funding[n_inv] = json_loads(PQgetvalue(r, i, 21), 0, NULL);
            n_parts += json_array_size(funding[n_inv]);
            ptrs[n_inv++] = inv;
        }
        Cara__InvoiceLine *l = &lines[i];
        cara__invoice_line__init(l);
        l->kind = PQgetvalue(r, i, 8);
        l->amount_pence = atoll(PQgetvalue(r, i, 9));
        l->cohort_id = PQgetvalue(r, i, 10);
        l->participants = (uint32_t)abs(atoi(PQgetvalue(r, i, 11)));
        l->delivered_on = PQgetvalue(r, i, 12);
        l->source = PQgetvalue(r, i, 13);
        l->part_a_date = PQgetvalue(r, i, 14);
        l->financial_year = PQgetvalue(r, i, 15);
        l->event_id = PQgetvalue(r, i, 16);
        l->cohort_type = PQgetvalue(r, i, 17);
        lptrs[i] = l;
        invs[n_inv - 1].n_lines++;
    }
    parts = calloc(n_parts + 1, sizeof *parts);
    pptrs = calloc(n_parts + 1, sizeof *pptrs);
    if (!parts || !pptrs)
        goto done;
    size_t p = 0;
    for (int k = 0; k < n_inv; k++) {
        invs[k].funding = &pptrs[p];
        for (size_t j = 0; j < json_array_size(funding[k]); j++, p++) {
            json_t *f = json_array_get(funding[k], j);
            cara__funding_part__init(&parts[p]);
            parts[p].partner = (char *)json_string_value(json_object_get(f, "partner"));
            parts[p].amount_pence = json_integer_value(json_object_get(f, "amount_pence"));
            pptrs[p] = &parts[p];
            invs[k].n_funding++;
        }
    }
    Cara__InvoiceList list = CARA__INVOICE_LIST__INIT;
    list.invoices = ptrs;
    list.n_invoices = (size_t)n_inv;
    rc = reply_ok(reply, &list.base);
done:
    if (rc != 0)
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "out of memory");
    for (int k = 0; funding && k < n_inv; k++)
        json_decref(funding[k]);
    free(funding);
    free(parts);
    free(pptrs);
    free(invs);
    free(ptrs);
    free(lines);
    free(lptrs);
    PQclear(r);
    return rc;
}
