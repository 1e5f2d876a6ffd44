#include "national_render.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// --- CSV --------------------------------------------------------------------------------------

static void s_csv_value(FILE *f, const json_t *v) {
    if (json_is_integer(v))
        fprintf(f, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        fprintf(f, "%.1f", json_real_value(v));
    else if (json_is_string(v))
        fprintf(f, "%s", json_string_value(v));
}

// One line per leaf of obj (depth first, in document order), measure names joined by '.'.
static void s_csv_leaves(FILE *f, const char *head, const char *prefix, const json_t *obj) {
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        if (strcmp(key, "label") == 0)
            continue;
        char name[256];
        snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "", key);
        if (json_is_object(v)) {
            s_csv_leaves(f, head, name, v);
            continue;
        }
        fprintf(f, "%s,%s,", head, name);
        s_csv_value(f, v);
        fputc('\n', f);
    }
}

static void s_csv_row(FILE *f, const char *lead, const char *table, const json_t *row) {
    char head[512];
    snprintf(head, sizeof head, "%s,%s,%s", lead, table,
             json_string_value(json_object_get(row, "label")));
    s_csv_leaves(f, head, "", row);
}

char *national_render_csv(const json_t *doc) {
    char *out = NULL, lead[128];
    size_t size = 0;
    FILE *f = open_memstream(&out, &size);
    if (!f)
        return NULL;
    snprintf(lead, sizeof lead, "%s,%s", json_string_value(json_object_get(doc, "schema_version")),
             json_string_value(json_object_get(doc, "period")));
    fprintf(f, "schema_version,period,table,label,measure,value\n");
    s_csv_row(f, lead, "totals", json_object_get(doc, "totals"));
    const char *dim;
    json_t *rows, *row;
    size_t i;
    json_object_foreach(json_object_get(doc, "breakdowns"), dim, rows) {
        char table[64];
        snprintf(table, sizeof table, "by_%s", dim);
        json_array_foreach(rows, i, row) s_csv_row(f, lead, table, row);
    }
    const char *const reasons[] = {"returned_by_reason", "non_compliant_by_reason"};
    for (int k = 0; k < 2; k++) {
        json_t *t = json_object_get(doc, reasons[k]);
        json_array_foreach(json_object_get(t, "by_force"), i, row)
            s_csv_row(f, lead, reasons[k], row);
        json_t *tot = json_pack("{s:s, s:O}", "label", "all", "counts", json_object_get(t, "totals"));
        s_csv_row(f, lead, reasons[k], tot);
        json_decref(tot);
    }
    json_t *cohorts = json_object_get(doc, "cohorts");
    json_array_foreach(json_object_get(cohorts, "by_provider"), i, row)
        s_csv_row(f, lead, "cohorts", row);
    s_csv_row(f, lead, "cohorts", json_object_get(cohorts, "totals"));
    fclose(f);
    return out;
}

// --- HTML -------------------------------------------------------------------------------------

static void s_esc(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

// A number, a percentage, or a dash for a withheld value.
static void s_cell(FILE *f, const json_t *v, int percent) {
    if (json_is_integer(v))
        fprintf(f, "<td>%lld</td>", (long long)json_integer_value(v));
    else if (json_is_real(v))
        fprintf(f, "<td>%.1f%s</td>", json_real_value(v), percent ? "%" : "");
    else
        fputs("<td class=\"w\">&ndash;</td>", f);
}

static double s_val(const json_t *v) {
    return json_is_integer(v) ? (double)json_integer_value(v)
           : json_is_real(v)  ? json_real_value(v)
                              : -1.0;
}

// A horizontal bar chart; values below zero are withheld and say so.
static void s_bars(FILE *f, const char *title, const char *const *labels, const double *values,
                   int n, const char *unit, const char *colour) {
    double max = 1;
    for (int i = 0; i < n; i++)
        if (values[i] > max)
            max = values[i];
    fprintf(f, "<figure><figcaption>");
    s_esc(f, title);
    fprintf(f, "</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"720\""
               " height=\"%d\" role=\"img\" aria-label=\"",
            n * 24 + 8);
    s_esc(f, title);
    fprintf(f, "\">");
    for (int i = 0; i < n; i++) {
        int y = i * 24 + 4;
        fprintf(f, "<text x=\"0\" y=\"%d\" font-size=\"12\">", y + 14);
        s_esc(f, labels[i]);
        fprintf(f, "</text>");
        if (values[i] < 0) {
            fprintf(f, "<text x=\"200\" y=\"%d\" font-size=\"12\" fill=\"#666\">withheld</text>",
                    y + 14);
            continue;
        }
        double w = 420.0 * values[i] / max;
        fprintf(f,
                "<rect x=\"200\" y=\"%d\" width=\"%.1f\" height=\"18\" fill=\"%s\"/>"
                "<text x=\"%.1f\" y=\"%d\" font-size=\"12\">%.*f%s</text>",
                y, w, colour, 206 + w, y + 14, values[i] == (long long)values[i] ? 0 : 1,
                values[i], unit);
    }
    fprintf(f, "</svg></figure>");
}

static void s_rows_chart(FILE *f, const char *title, const json_t *rows, const char *measure,
                         const char *unit, const char *colour) {
    size_t n = json_array_size(rows), i;
    const char **labels = calloc(n + 1, sizeof *labels);
    double *values = calloc(n + 1, sizeof *values);
    json_t *row;
    if (labels && values) {
        json_array_foreach(rows, i, row) {
            labels[i] = json_string_value(json_object_get(row, "label"));
            values[i] = s_val(json_object_get(row, measure));
        }
        s_bars(f, title, labels, values, (int)n, unit, colour);
    }
    free(labels);
    free(values);
}

static const char *const s_columns[][2] = {
    {"referred", NULL},         {"outcome", "completed"},     {"outcome", "non_compliant"},
    {"outcome", "in_progress"}, {"outcome", "returned"},      {"outcome", "withdrawn"},
    {"booked", NULL},           {"started", NULL},            {"victim_contact_offered", NULL},
    {"repeat", "repeat"},       {"completion_rate_percent", NULL},
    {"telephone_share_percent", NULL},
};

static void s_table(FILE *f, const char *title, const json_t *rows) {
    size_t i;
    json_t *row;
    fprintf(f, "<h3>");
    s_esc(f, title);
    fprintf(f, "</h3><table><tr><th></th>");
    for (size_t c = 0; c < sizeof s_columns / sizeof *s_columns; c++) {
        fprintf(f, "<th>");
        s_esc(f, s_columns[c][1] ? s_columns[c][1] : s_columns[c][0]);
        fprintf(f, "</th>");
    }
    fprintf(f, "</tr>");
    json_array_foreach(rows, i, row) {
        fprintf(f, "<tr><td>");
        s_esc(f, json_string_value(json_object_get(row, "label")));
        fprintf(f, "</td>");
        for (size_t c = 0; c < sizeof s_columns / sizeof *s_columns; c++) {
            json_t *v = json_object_get(row, s_columns[c][0]);
            if (s_columns[c][1])
                v = json_object_get(v, s_columns[c][1]);
            s_cell(f, v, strstr(s_columns[c][0], "percent") != NULL);
        }
        fprintf(f, "</tr>");
    }
    fprintf(f, "</table>");
}

char *national_render_html(const json_t *doc) {
    char *out = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&out, &size);
    if (!f)
        return NULL;
    const char *period = json_string_value(json_object_get(doc, "period"));
    json_t *totals = json_object_get(doc, "totals"), *bd = json_object_get(doc, "breakdowns");
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
               "<title>CARA national return ");
    s_esc(f, period);
    fprintf(f, "</title><style>body{font-family:sans-serif;margin:2em;color:#222}"
               "table{border-collapse:collapse;margin-bottom:1.5em}td,th{padding:2px 8px;"
               "border-bottom:1px solid #ddd;text-align:right}td:first-child,th:first-child"
               "{text-align:left}.w{color:#888}figure{margin:1em 0}figcaption{font-weight:bold}"
               "</style></head><body><h1>CARA national return ");
    s_esc(f, period);
    fprintf(f, "</h1><p>");
    s_esc(f, json_string_value(json_object_get(doc, "from")));
    fprintf(f, " to ");
    s_esc(f, json_string_value(json_object_get(doc, "to")));
    fprintf(f, ". Schema version ");
    s_esc(f, json_string_value(json_object_get(doc, "schema_version")));
    fprintf(f, ". Counts of 1&ndash;4, and counts that would reveal them, are withheld"
               " (&ndash;); rates on bases under 10 and times over fewer than 10 cases are not"
               " shown.</p>");

    // Funnel.
    const char *funnel_labels[] = {"referred", "booked", "started", "completed"};
    double funnel[4] = {s_val(json_object_get(totals, "referred")),
                        s_val(json_object_get(totals, "booked")),
                        s_val(json_object_get(totals, "started")),
                        s_val(json_object_get(json_object_get(totals, "outcome"), "completed"))};
    fprintf(f, "<h2>Funnel</h2>");
    s_bars(f, "Cases referred, booked, started and completed", funnel_labels, funnel, 4, "",
           "#1565c0");

    // Times.
    fprintf(f, "<h2>Times from caution (days)</h2>");
    json_t *times = json_object_get(totals, "times"), *t;
    const char *name;
    const char *tl[10];
    double tv[10];
    char lab[10][64];
    int n = 0;
    json_object_foreach(times, name, t) {
        if (n >= 5)
            break;
        snprintf(lab[2 * n], sizeof lab[0], "%s median", name + strlen("caution_to_"));
        snprintf(lab[2 * n + 1], sizeof lab[0], "%s p90", name + strlen("caution_to_"));
        tl[2 * n] = lab[2 * n];
        tl[2 * n + 1] = lab[2 * n + 1];
        tv[2 * n] = s_val(json_object_get(t, "median_days"));
        tv[2 * n + 1] = s_val(json_object_get(t, "p90_days"));
        n++;
    }
    s_bars(f, "Median and 90th percentile, days after the caution", tl, tv, 2 * n, " d",
           "#6a1b9a");

    fprintf(f, "<h2>Completion by force</h2>");
    s_rows_chart(f, "Completion rate (completed of completed and non-compliant)",
                 json_object_get(bd, "force"), "completion_rate_percent", "%", "#2e7d32");

    fprintf(f, "<h2>Demographics</h2>");
    s_rows_chart(f, "Referred by sex", json_object_get(bd, "sex"), "referred", "", "#ef6c00");
    s_rows_chart(f, "Referred by age band at caution", json_object_get(bd, "age_band"),
                 "referred", "", "#ef6c00");
    s_rows_chart(f, "Referred by ethnic group", json_object_get(bd, "ethnic_group"), "referred",
                 "", "#ef6c00");

    fprintf(f, "<h2>Tables</h2>");
    json_t *all = json_array();
    json_array_append(all, totals);
    s_table(f, "All cases", all);
    json_decref(all);
    json_t *rows;
    json_object_foreach(bd, name, rows) {
        char title[64];
        snprintf(title, sizeof title, "By %s", name);
        s_table(f, title, rows);
    }
    const char *const reasons[] = {"returned_by_reason", "non_compliant_by_reason"};
    for (int k = 0; k < 2; k++) {
        json_t *rt = json_object_get(doc, reasons[k]), *reason, *row;
        size_t i, j;
        fprintf(f, "<h3>%s</h3><table><tr><th>force</th>",
                k == 0 ? "Returned by triage, by reason" : "Non-compliant, by reason");
        json_array_foreach(json_object_get(rt, "reasons"), j, reason) {
            fprintf(f, "<th>");
            s_esc(f, json_string_value(reason));
            fprintf(f, "</th>");
        }
        fprintf(f, "</tr>");
        json_array_foreach(json_object_get(rt, "by_force"), i, row) {
            fprintf(f, "<tr><td>");
            s_esc(f, json_string_value(json_object_get(row, "label")));
            fprintf(f, "</td>");
            json_array_foreach(json_object_get(rt, "reasons"), j, reason)
                s_cell(f, json_object_get(json_object_get(row, "counts"), json_string_value(reason)), 0);
            fprintf(f, "</tr>");
        }
        fprintf(f, "<tr><td>all</td>");
        json_array_foreach(json_object_get(rt, "reasons"), j, reason)
            s_cell(f, json_object_get(json_object_get(rt, "totals"), json_string_value(reason)), 0);
        fprintf(f, "</tr></table>");
    }
    json_t *cohorts = json_object_get(doc, "cohorts"), *row;
    size_t i;
    fprintf(f, "<h3>Cohorts delivered</h3><table><tr><th>provider</th><th>cohorts</th>"
               "<th>telephone</th><th>fill rate</th></tr>");
    json_t *crow = json_array();
    json_array_extend(crow, json_object_get(cohorts, "by_provider"));
    json_array_append(crow, json_object_get(cohorts, "totals"));
    json_array_foreach(crow, i, row) {
        fprintf(f, "<tr><td>");
        s_esc(f, json_string_value(json_object_get(row, "label")));
        fprintf(f, "</td>");
        s_cell(f, json_object_get(row, "cohorts_delivered"), 0);
        s_cell(f, json_object_get(row, "telephone_cohorts"), 0);
        s_cell(f, json_object_get(row, "fill_rate_percent"), 1);
        fprintf(f, "</tr>");
    }
    json_decref(crow);
    fprintf(f, "</table></body></html>\n");
    fclose(f);
    return out;
}
