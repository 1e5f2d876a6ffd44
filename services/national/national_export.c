// The national return for a period: outcome tables by force, provider, pathway, sex, age band
// and ethnicity with disclosure control, rates on bases of 10 or more, and headline figures.
// JSON (versioned, fixed enumerations, explicit "unknown"), CSV, or a self-contained HTML page
// with inline SVG. Everything is ordered, so a rebuild gives byte-identical output.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cara/stream.h"
#include "cara/timeutil.h"
#include "national.pb-c.h"
#include "national_facts.h"
#include "national_suppress.h"

#define NATIONAL_SCHEMA_VERSION "1"
#define N_OUTCOMES 5
static const char *const s_outcomes[N_OUTCOMES] = {"completed", "non_compliant", "in_progress",
                                                   "returned", "withdrawn"};

typedef struct {
    const char *name;    // table name in the return
    const char *column;  // case_fact column (fixed list: never input)
    const char *const *fixed;  // rows always present, NULL = as found
} s_dim_t;

static const char *const s_sexes[] = {"female", "male", "unknown", NULL};
static const char *const s_bands[] = {"18-24", "25-34", "35-44", "45-54", "55+", "unknown", NULL};
static const s_dim_t s_dims[] = {
    {"by_force", "force", NULL},         {"by_provider", "provider", NULL},
    {"by_pathway", "pathway", NULL},     {"by_sex", "sex", s_sexes},
    {"by_age_band", "age_band", s_bands}, {"by_ethnicity", "ethnicity", NULL},
};

// Period text to [from, to] dates. Returns 0 or -1.
static int s_period(const char *p, char *from, char *to) {
    int y, q, m;
    int32_t a, b;
    char tail;
    if (sscanf(p, "FY%4d%c", &y, &tail) == 1) {
        a = time_days_from_civil(y, 4, 1);
        b = time_days_from_civil(y + 1, 4, 1) - 1;
    } else if (sscanf(p, "%4dQ%1d%c", &y, &q, &tail) == 2 && q >= 1 && q <= 4) {
        a = time_days_from_civil(y, (unsigned)(3 * q - 2), 1);
        b = (q == 4 ? time_days_from_civil(y + 1, 1, 1) : time_days_from_civil(y, (unsigned)(3 * q + 1), 1)) - 1;
    } else if (strlen(p) == 7 && sscanf(p, "%4d-%2d", &y, &m) == 2 && m >= 1 && m <= 12) {
        a = time_days_from_civil(y, (unsigned)m, 1);
        b = (m == 12 ? time_days_from_civil(y + 1, 1, 1) : time_days_from_civil(y, (unsigned)m + 1, 1)) - 1;
    } else {
        return -1;
    }
    if (y < 2000 || y > 2100)
        return -1;
    time_format_date(a, from, 16);
    time_format_date(b, to, 16);
    return 0;
}

static json_t *s_count_or_null(int64_t n, bool suppressed) {
    return suppressed ? json_null() : json_integer(n);
}

// One outcome table with suppression. Returns the JSON table or NULL on error.
static json_t *s_table(db_t *db, const s_dim_t *dim, const char *from, const char *to) {
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT coalesce(nullif(%s, ''), 'unknown') AS label, CASE"
             " WHEN returned_reason IS NOT NULL THEN 'returned' WHEN withdrawn THEN 'withdrawn'"
             " WHEN completed_at IS NOT NULL THEN 'completed'"
             " WHEN non_compliant_reason IS NOT NULL THEN 'non_compliant'"
             " ELSE 'in_progress' END, count(*) FROM case_fact"
             " WHERE caution_date BETWEEN $1::date AND $2::date GROUP BY 1, 2 ORDER BY 1, 2",
             dim->column);
    const char *values[] = {from, to};
    PGresult *r = db_query(db, sql, 2, values);
    if (!r)
        return NULL;
    // Rows: the fixed enumeration, or the labels found (sorted by the query).
    json_t *labels = json_array();
    for (int i = 0; dim->fixed && dim->fixed[i]; i++)
        json_array_append_new(labels, json_string(dim->fixed[i]));
    for (int i = 0; !dim->fixed && i < PQntuples(r); i++) {
        size_t n = json_array_size(labels);
        if (n == 0 || strcmp(json_string_value(json_array_get(labels, n - 1)),
                             PQgetvalue(r, i, 0)) != 0)
            json_array_append_new(labels, json_string(PQgetvalue(r, i, 0)));
    }
    int rows = (int)json_array_size(labels);
    int64_t *cells = calloc((size_t)(rows * N_OUTCOMES) + 1, sizeof *cells);
    bool *hide = calloc((size_t)(rows * N_OUTCOMES) + 1, sizeof *hide);
    for (int i = 0; cells && i < PQntuples(r); i++)
        for (int row = 0; row < rows; row++)
            if (strcmp(json_string_value(json_array_get(labels, (size_t)row)), PQgetvalue(r, i, 0)) == 0)
                for (int c = 0; c < N_OUTCOMES; c++)
                    if (strcmp(s_outcomes[c], PQgetvalue(r, i, 1)) == 0)
                        cells[row * N_OUTCOMES + c] = atoll(PQgetvalue(r, i, 2));
    PQclear(r);
    if (!cells || !hide) {
        free(cells);
        free(hide);
        json_decref(labels);
        return NULL;
    }
    national_suppress(cells, rows, N_OUTCOMES, hide);
    json_t *out_rows = json_array(), *col_totals = json_object();
    int64_t coltot[N_OUTCOMES] = {0};
    for (int row = 0; row < rows; row++) {
        json_t *cols = json_object();
        int64_t total = 0;
        for (int c = 0; c < N_OUTCOMES; c++) {
            int64_t v = cells[row * N_OUTCOMES + c];
            total += v;
            coltot[c] += v;
            json_object_set_new(cols, s_outcomes[c], s_count_or_null(v, hide[row * N_OUTCOMES + c]));
        }
        int64_t completed = cells[row * N_OUTCOMES], nc = cells[row * N_OUTCOMES + 1];
        int rate_ok = completed + nc >= 10 && !hide[row * N_OUTCOMES] && !hide[row * N_OUTCOMES + 1];
        json_array_append_new(
            out_rows,
            json_pack("{s:O, s:o, s:o, s:o}", "label", json_array_get(labels, (size_t)row), "counts",
                      cols, "referred", s_count_or_null(total, total >= 1 && total <= 4),
                      "completion_rate_percent",
                      rate_ok ? json_real((double)(completed * 1000 / (completed + nc)) / 10.0)
                              : json_null()));
    }
    for (int c = 0; c < N_OUTCOMES; c++)
        json_object_set_new(col_totals, s_outcomes[c],
                            s_count_or_null(coltot[c], coltot[c] >= 1 && coltot[c] <= 4));
    free(cells);
    free(hide);
    json_decref(labels);
    return json_pack("{s:o, s:o}", "rows", out_rows, "totals", col_totals);
}

// Median and 90th percentile of days from caution to an event, over cases in the period.
static json_t *s_times(db_t *db, const char *column, const char *from, const char *to) {
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*), percentile_disc(0.5) WITHIN GROUP (ORDER BY d),"
             " percentile_disc(0.9) WITHIN GROUP (ORDER BY d) FROM (SELECT (%s::date -"
             " caution_date) AS d FROM case_fact WHERE caution_date BETWEEN $1::date AND $2::date"
             " AND %s IS NOT NULL) x",
             column, column);
    const char *values[] = {from, to};
    PGresult *r = db_query(db, sql, 2, values);
    if (!r)
        return json_null();
    int n = atoi(PQgetvalue(r, 0, 0));
    json_t *out = n >= 10 ? json_pack("{s:i, s:i, s:i}", "cases", n, "median_days",
                                      atoi(PQgetvalue(r, 0, 1)), "p90_days",
                                      atoi(PQgetvalue(r, 0, 2)))
                          : json_pack("{s:n, s:n, s:n}", "cases", "median_days", "p90_days");
    PQclear(r);
    return out;
}

static json_t *s_return(db_t *db, const char *period, const char *from, const char *to) {
    json_t *doc = json_pack("{s:s, s:s, s:s, s:s}", "schema_version", NATIONAL_SCHEMA_VERSION,
                            "period", period, "from", from, "to", to);
    json_t *tables = json_object();
    for (size_t i = 0; i < sizeof s_dims / sizeof *s_dims; i++) {
        json_t *t = s_table(db, &s_dims[i], from, to);
        if (!t) {
            json_decref(tables);
            json_decref(doc);
            return NULL;
        }
        json_object_set_new(tables, s_dims[i].name, t);
    }
    json_object_set_new(doc, "tables", tables);
    json_t *times = json_object();
    json_object_set_new(times, "caution_to_referral", s_times(db, "received_at", from, to));
    json_object_set_new(times, "caution_to_booking", s_times(db, "booked_at", from, to));
    json_object_set_new(times, "caution_to_part_a", s_times(db, "started_on", from, to));
    json_object_set_new(times, "caution_to_completion", s_times(db, "completed_at", from, to));
    json_object_set_new(doc, "times", times);
    const char *values[] = {from, to};
    PGresult *r = db_query(db,
                           "SELECT (SELECT count(*) FROM cohort_fact WHERE part_b_date BETWEEN"
                           "  $1::date AND $2::date),"
                           " (SELECT coalesce(round(100.0 * sum(participants) / nullif(12 *"
                           "  count(*), 0), 1), 0) FROM cohort_fact WHERE part_b_date BETWEEN"
                           "  $1::date AND $2::date AND cohort_type <> 'telephone'),"
                           " count(*) FILTER (WHERE pathway = 'telephone'),"
                           " count(*) FILTER (WHERE pathway IS NOT NULL),"
                           " count(*) FILTER (WHERE victim_offered),"
                           " count(*) FILTER (WHERE victim_accepted),"
                           " count(*) FILTER (WHERE booked_at IS NOT NULL),"
                           " count(*) FILTER (WHERE started_on IS NOT NULL),"
                           " (SELECT count(*) FROM (SELECT pseudonym FROM case_fact WHERE"
                           "  caution_date <= $2::date AND pseudonym IS NOT NULL GROUP BY 1"
                           "  HAVING count(*) > 1) rep)"
                           " FROM case_fact WHERE caution_date BETWEEN $1::date AND $2::date",
                           2, values);
    if (r) {
        int64_t v[9];
        for (int i = 0; i < 9; i++)
            v[i] = atoll(PQgetvalue(r, 0, i));
        json_object_set_new(
            doc, "headline",
            json_pack("{s:o, s:s, s:o, s:o, s:o, s:o, s:o}", "cohorts_delivered",
                      s_count_or_null(v[0], v[0] >= 1 && v[0] <= 4), "cohort_fill_rate_percent",
                      PQgetvalue(r, 0, 1), "telephone_share_percent",
                      v[3] >= 10 ? json_real((double)(v[2] * 1000 / v[3]) / 10.0) : json_null(),
                      "victim_contact_offered", s_count_or_null(v[4], v[4] >= 1 && v[4] <= 4),
                      "victim_contact_accepted", s_count_or_null(v[5], v[5] >= 1 && v[5] <= 4),
                      "booked", s_count_or_null(v[6], v[6] >= 1 && v[6] <= 4),
                      "repeat_referrals", s_count_or_null(v[8], v[8] >= 1 && v[8] <= 4)));
        json_object_set_new(json_object_get(doc, "headline"), "started",
                            s_count_or_null(v[7], v[7] >= 1 && v[7] <= 4));
        PQclear(r);
    }
    return doc;
}

static char *s_csv(json_t *doc) {
    char *out = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&out, &size);
    if (!f)
        return NULL;
    fprintf(f, "schema_version,period,table,row,column,value\n");
    const char *name;
    json_t *table;
    json_object_foreach(json_object_get(doc, "tables"), name, table) {
        size_t i;
        json_t *row;
        json_array_foreach(json_object_get(table, "rows"), i, row) {
            for (int c = 0; c < N_OUTCOMES; c++) {
                json_t *v = json_object_get(json_object_get(row, "counts"), s_outcomes[c]);
                fprintf(f, "%s,%s,%s,\"%s\",%s,", NATIONAL_SCHEMA_VERSION,
                        json_string_value(json_object_get(doc, "period")), name,
                        json_string_value(json_object_get(row, "label")), s_outcomes[c]);
                if (json_is_integer(v))
                    fprintf(f, "%lld", (long long)json_integer_value(v));
                fprintf(f, "\n");
            }
        }
    }
    fclose(f);
    return out;
}

static void s_html_escape(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else if (*s == '"')
            fputs("&quot;", f);
        else
            fputc(*s, f);
    }
}

// A self-contained page: inline CSS and SVG bars, no scripts, no network.
static char *s_html(json_t *doc) {
    static const char *const colours[N_OUTCOMES] = {"#2e7d32", "#c62828", "#1565c0", "#6d4c41",
                                                    "#757575"};
    char *out = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&out, &size);
    if (!f)
        return NULL;
    const char *period = json_string_value(json_object_get(doc, "period"));
    fprintf(f, "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>CARA"
               " national return ");
    s_html_escape(f, period);
    fprintf(f, "</title><style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;"
               "text-align:right}th:first-child,td:first-child{text-align:left}"
               "</style></head><body><h1>CARA national return ");
    s_html_escape(f, period);
    fprintf(f, "</h1><p>Schema version %s. Counts of 1&ndash;4 and cells that would reveal them"
               " are shown as &ndash;; rates on bases under 10 are not shown.</p>",
            NATIONAL_SCHEMA_VERSION);
    const char *name;
    json_t *table;
    json_object_foreach(json_object_get(doc, "tables"), name, table) {
        json_t *rows = json_object_get(table, "rows");
        size_t n = json_array_size(rows);
        fprintf(f, "<h2>");
        s_html_escape(f, name);
        fprintf(f, "</h2><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"%zu\""
                   " role=\"img\">",
                n * 24 + 8);
        int64_t max = 1;
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row) {
            int64_t t = 0;
            for (int c = 0; c < N_OUTCOMES; c++)
                t += json_integer_value(json_object_get(json_object_get(row, "counts"), s_outcomes[c]));
            if (t > max)
                max = t;
        }
        json_array_foreach(rows, i, row) {
            fprintf(f, "<text x=\"0\" y=\"%zu\" font-size=\"12\">", i * 24 + 18);
            s_html_escape(f, json_string_value(json_object_get(row, "label")));
            fprintf(f, "</text>");
            double x = 160;
            for (int c = 0; c < N_OUTCOMES; c++) {
                int64_t v = json_integer_value(json_object_get(json_object_get(row, "counts"), s_outcomes[c]));
                double w = 460.0 * (double)v / (double)max;
                fprintf(f, "<rect x=\"%.1f\" y=\"%zu\" width=\"%.1f\" height=\"18\" fill=\"%s\"/>",
                        x, i * 24 + 4, w, colours[c]);
                x += w;
            }
        }
        fprintf(f, "</svg><table><tr><th></th>");
        for (int c = 0; c < N_OUTCOMES; c++)
            fprintf(f, "<th>%s</th>", s_outcomes[c]);
        fprintf(f, "<th>completion rate</th></tr>");
        json_array_foreach(rows, i, row) {
            fprintf(f, "<tr><td>");
            s_html_escape(f, json_string_value(json_object_get(row, "label")));
            fprintf(f, "</td>");
            for (int c = 0; c < N_OUTCOMES; c++) {
                json_t *v = json_object_get(json_object_get(row, "counts"), s_outcomes[c]);
                if (json_is_integer(v))
                    fprintf(f, "<td>%lld</td>", (long long)json_integer_value(v));
                else
                    fprintf(f, "<td>&ndash;</td>");
            }
            json_t *rate = json_object_get(row, "completion_rate_percent");
            if (json_is_real(rate))
                fprintf(f, "<td>%.1f%%</td></tr>", json_real_value(rate));
            else
                fprintf(f, "<td>&ndash;</td></tr>");
        }
        fprintf(f, "</table>");
    }
    fprintf(f, "</body></html>\n");
    fclose(f);
    return out;
}

int national_cmd_export(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                        reply_t *reply) {
    if (!identity_is(who, "hampton_trust") && !identity_is(who, "operator")) {
        reply_status(reply, CARA__REPLY__STATUS__FORBIDDEN,
                     "the national return is for Hampton Trust and operators");
        return -1;
    }
    Cara__NationalExport *req =
        (Cara__NationalExport *)envelope_payload(env, &cara__national_export__descriptor);
    if (!req)
        return reply_field_error(reply, "payload", "not a valid cara.NationalExport");
    int rc = -1;
    char from[16], to[16];
    const char *format = *req->format ? req->format : "json";
    if (s_period(req->period, from, to) != 0)
        reply_field_error(reply, "period", "must be YYYYQn, YYYY-MM or FYyyyy");
    if (strcmp(format, "json") && strcmp(format, "csv") && strcmp(format, "html"))
        reply_field_error(reply, "format", "must be json, csv or html");
    if (reply_error_count(reply))
        goto cleanup;
    json_t *doc = s_return(service_db(svc), req->period, from, to);
    if (!doc) {
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable");
        goto cleanup;
    }
    char *json_text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    char *content = strcmp(format, "json") == 0 ? strdup(json_text)
                    : strcmp(format, "csv") == 0 ? s_csv(doc)
                                                 : s_html(doc);
    json_decref(doc);
    if (content && req->publish) {
        Cara__NationalReturnPublished ev = CARA__NATIONAL_RETURN_PUBLISHED__INIT;
        ev.period = req->period;
        ev.schema_version = NATIONAL_SCHEMA_VERSION;
        ev.json = json_text;
        if (outbox_append(service_db(svc), &ev.base, req->period, NULL, NULL, NULL) < 0) {
            free(content);
            content = NULL;
        }
    }
    if (content) {
        Cara__NationalExportResult res = CARA__NATIONAL_EXPORT_RESULT__INIT;
        res.media_type = strcmp(format, "json") == 0   ? "application/json"
                         : strcmp(format, "csv") == 0 ? "text/csv"
                                                      : "text/html";
        res.content = content;
        rc = reply_ok(reply, &res.base);
        free(content);
    } else {
        reply_status(reply, CARA__REPLY__STATUS__ERROR, "could not build the return");
    }
    free(json_text);
cleanup:
    cara__national_export__free_unpacked(req, NULL);
    return rc;
}
