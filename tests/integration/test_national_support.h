// Shared by the national integration tests: a scan of every column of every table in a schema
// for personal data, and a reader for the export command.
#ifndef TEST_NATIONAL_SUPPORT_H
#define TEST_NATIONAL_SUPPORT_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "national.pb-c.h"

// The personal data the tests put into events (names, phone numbers, addresses, emails, dates
// of birth): a regular expression none of it may match anywhere in the national schema.
#define NATIONAL_PII_PATTERN                                                                   \
    "(Testname|Victimname|Secret Street|07700 [19]|@example\\.(org|com)|(19[5-9][0-9]|200[0-9])-03-31" \
    "|Freetext|Pryce|Gareth|1988-07-02)"

// Rows in any table of schema `national` in which any column (text, json, or bytea read as
// escaped text) matches the pattern. Returns the count, or -1 on error.
static inline long national_pii_hits(harness_t *h) {
    char *where = harness_value(
        h, "national",
        "SELECT string_agg(c.table_name || '.' || c.column_name, ' ') FROM"
        " information_schema.columns c JOIN information_schema.tables t USING (table_schema,"
        " table_name), (SELECT '" NATIONAL_PII_PATTERN "'::text AS re) p WHERE c.table_schema ="
        " 'national' AND t.table_type = 'BASE TABLE' AND (xpath('/row/c/text()',"
        " query_to_xml(format('SELECT count(*) AS c FROM national.%I t WHERE %s', c.table_name,"
        " CASE WHEN c.data_type = 'bytea' THEN format('encode(t.%I, ''escape'') ~ %L',"
        " c.column_name, p.re) ELSE format('t.%I::text ~ %L', c.column_name, p.re) END), false,"
        " true, '')))[1]::text::int > 0");
    if (where && *where)
        printf("# personal data found in: %s\n", where);
    free(where);
    char *v = harness_value(
        h, "national",
        "SELECT coalesce(sum((xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c"
        " FROM national.%I t WHERE %s', c.table_name, CASE WHEN c.data_type = 'bytea' THEN"
        " format('encode(t.%I, ''escape'') ~ %L', c.column_name, p.re) ELSE"
        " format('t.%I::text ~ %L', c.column_name, p.re) END), false, true, '')))[1]::text::int),"
        " 0) FROM information_schema.columns c JOIN information_schema.tables t USING"
        " (table_schema, table_name), (SELECT '" NATIONAL_PII_PATTERN "'::text AS re) p"
        " WHERE c.table_schema = 'national' AND t.table_type = 'BASE TABLE'");
    long n = v ? atol(v) : -1;
    free(v);
    return n;
}

// Calls NationalExport as hampton_trust. Returns the content (caller frees) or NULL; the reply
// status goes to *status.
static inline char *national_export(harness_t *h, const char *period, const char *format,
                                    int publish, int *status) {
    Cara__NationalExport req = CARA__NATIONAL_EXPORT__INIT;
    req.period = (char *)period;
    req.format = (char *)format;
    req.publish = publish;
    Cara__Reply *reply = client_call(harness_client(h, "national", "hampton_trust", "ht"),
                                     &req.base, NULL, NULL, 60000, 0);
    if (!reply)
        return NULL;
    *status = reply->status;
    char *out = NULL;
    if (reply->status == CARA__REPLY__STATUS__OK) {
        Cara__NationalExportResult *res =
            cara__national_export_result__unpack(NULL, reply->payload.len, reply->payload.data);
        if (res) {
            out = strdup(res->content);
            cara__national_export_result__free_unpacked(res, NULL);
        }
    }
    cara__reply__free_unpacked(reply, NULL);
    return out;
}

#endif
