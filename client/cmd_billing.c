// `cara invoice show|export` (billing): one invoice or credit note by its number, and the
// export of invoices with the evidence of every line (cohort, type, participant count, Part A
// and Part B dates, the event behind it; never names) as JSON or CSV. `invoice run|list` and
// `contract`/`training` are plain request/reply commands (client/cmd_areas.c).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing.pb-c.h"
#include "cara/money.h"
#include "cara/pbjson.h"
#include "cli.h"

// Asks billing for invoices. Returns the list (caller frees) or NULL with the reply printed.
static Cara__InvoiceList *s_list(cli_t *cli, const char *number, const char *contract,
                                 const char *period, int *rc) {
    Cara__ListInvoices req = CARA__LIST_INVOICES__INIT;
    req.number = (char *)number;
    req.contract_id = (char *)contract;
    req.period = (char *)period;
    Cara__Reply *reply = cli_call(cli, "billing", &req.base);
    *rc = CLI_FAIL;
    if (!reply)
        return NULL;
    Cara__InvoiceList *list = NULL;
    if (reply->status == CARA__REPLY__STATUS__OK)
        list = cara__invoice_list__unpack(NULL, reply->payload.len, reply->payload.data);
    if (!list)
        *rc = cli_print_reply(reply, NULL);
    cara__reply__free_unpacked(reply, NULL);
    return list;
}

// Writes one CSV field, quoted if it needs to be.
static void s_csv(FILE *out, const char *text, int last) {
    if (strpbrk(text, ",\"\r\n")) {
        fputc('"', out);
        for (const char *p = text; *p; p++) {
            if (*p == '"')
                fputc('"', out);
            fputc(*p, out);
        }
        fputc('"', out);
    } else {
        fputs(text, out);
    }
    fputc(last ? '\n' : ',', out);
}

static int s_export_csv(const Cara__InvoiceList *list) {
    static const char *const header[] = {
        "number",       "kind",           "issuer",    "payer",       "contract_id",
        "period",       "financial_year", "issued_at", "credits",     "line_kind",
        "amount_pence", "amount",         "cohort_id", "cohort_type", "participants",
        "part_a_date",  "part_b_date",    "source",    "event_id"};
    const size_t n = sizeof header / sizeof header[0];
    for (size_t i = 0; i < n; i++)
        s_csv(stdout, header[i], i + 1 == n);
    for (size_t i = 0; i < list->n_invoices; i++) {
        const Cara__Invoice *inv = list->invoices[i];
        for (size_t j = 0; j < inv->n_lines; j++) {
            const Cara__InvoiceLine *l = inv->lines[j];
            char pence[24], pounds[32], participants[16];
            snprintf(pence, sizeof pence, "%lld", (long long)l->amount_pence);
            money_format(l->amount_pence, pounds, sizeof pounds);
            snprintf(participants, sizeof participants, "%u", l->participants);
            const char *row[] = {inv->number,
                                 inv->kind,
                                 inv->issuer,
                                 inv->payer,
                                 inv->contract_id,
                                 inv->period,
                                 inv->financial_year,
                                 inv->issued_at,
                                 inv->credits,
                                 l->kind,
                                 pence,
                                 pounds,
                                 l->cohort_id,
                                 l->cohort_type,
                                 participants,
                                 l->part_a_date,
                                 l->delivered_on,
                                 l->source,
                                 l->event_id};
            for (size_t k = 0; k < n; k++)
                s_csv(stdout, row[k], k + 1 == n);
        }
    }
    return cli_stdout_flush() == 0 ? CLI_OK : CLI_FAIL;
}

static int s_export_json(const Cara__InvoiceList *list) {
    json_t *doc = pbjson_from_message(&list->base);
    if (!doc)
        return CLI_FAIL;
    // Pounds alongside pence, for people reading the export.
    json_t *invoices = json_object_get(doc, "invoices");
    for (size_t i = 0; i < json_array_size(invoices); i++) {
        char pounds[32];
        json_t *inv = json_array_get(invoices, i);
        money_format(list->invoices[i]->total_pence, pounds, sizeof pounds);
        json_object_set_new(inv, "total", json_string(pounds));
        json_t *lines = json_object_get(inv, "lines");
        for (size_t j = 0; j < json_array_size(lines); j++) {
            money_format(list->invoices[i]->lines[j]->amount_pence, pounds, sizeof pounds);
            json_object_set_new(json_array_get(lines, j), "amount", json_string(pounds));
        }
    }
    return cli_print_json(doc) == 0 ? CLI_OK : CLI_FAIL;
}

int cmd_invoice(cli_t *cli, int argc, char **argv) {
    const char *verb = argc > 1 ? argv[1] : "";
    int rc = CLI_FAIL;
    if (strcmp(verb, "show") == 0) {
        if (argc < 3 || strncmp(argv[2], "--", 2) == 0) {
            fprintf(stderr, "usage: cara invoice show NUMBER\n");
            return CLI_INVALID;
        }
        Cara__InvoiceList *list = s_list(cli, argv[2], "", "", &rc);
        if (!list)
            return rc;
        if (list->n_invoices == 1) {
            rc = cli_print_json(pbjson_from_message(&list->invoices[0]->base)) == 0 ? CLI_OK
                                                                                    : CLI_FAIL;
        } else {
            cli_print_json(json_pack("{s:s, s:s}", "status", "NOT_FOUND", "message",
                                     "no invoice with that number for this organisation"));
        }
        cara__invoice_list__free_unpacked(list, NULL);
        return rc;
    }
    if (strcmp(verb, "export") == 0) {
        const char *format = cli_opt(argc, argv, "--format", "json");
        if (strcmp(format, "json") != 0 && strcmp(format, "csv") != 0) {
            cli_print_json(json_pack("{s:s, s:[{s:s, s:s}]}", "status", "INVALID", "errors",
                                     "field", "format", "reason", "must be json or csv"));
            return CLI_INVALID;
        }
        Cara__InvoiceList *list = s_list(cli, "", cli_opt(argc, argv, "--contract_id", ""),
                                         cli_opt(argc, argv, "--period", ""), &rc);
        if (!list)
            return rc;
        rc = strcmp(format, "csv") == 0 ? s_export_csv(list) : s_export_json(list);
        cara__invoice_list__free_unpacked(list, NULL);
        return rc;
    }
    return cmd_area(cli, argc, argv); // run, list
}
