#include "national_return.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cara/log.h"
#include "cara/timeutil.h"
#include "national_facts.h"
#include "national_suppress.h"

#define N_DIMS 7
#define N_FAM 5
#define MAX_COLS 5
#define N_TIMES 5
#define FAM_OUTCOME 0
#define FAM_STAGE 1
#define FAM_MODE 2
#define FAM_VICTIM 3
#define FAM_REPEAT 4
#define OUT_COMPLETED 0
#define OUT_NON_COMPLIANT 1
#define OUT_RETURNED 3
#define LABEL 72

typedef struct {
    const char *name;
    int n;
    const char *cols[MAX_COLS];
} s_family_t;

// Each family is a partition of the cases referred. The stage "completed" is the outcome
// "completed" (one cell, published once).
static const s_family_t s_fam[N_FAM] = {
    {"outcome", 5, {"completed", "non_compliant", "in_progress", "returned", "withdrawn"}},
    {"stage", 4, {"not_booked", "booked_not_started", "started_not_completed", "completed"}},
    {"pathway_mode", 3, {"group", "telephone", "not_triaged"}},
    {"victim_contact", 3, {"offered_accepted", "offered_not_accepted", "not_offered"}},
    {"repeat", 3, {"repeat", "first", "unknown"}},
};
static const char *const s_dims[N_DIMS] = {"force", "provider", "pathway",     "month",
                                           "sex",   "age_band", "ethnic_group"};
static const char *const s_times[N_TIMES] = {"caution_to_referral", "caution_to_first_contact",
                                             "caution_to_booking", "caution_to_part_a",
                                             "caution_to_completion"};
static const char *const s_pathway_rows[] = {
    "female_intimate", "female_non_intimate", "male_intimate", "male_non_intimate",
    "telephone",       "not_triaged",         "unknown",       NULL};

typedef struct {
    char dim[N_DIMS][LABEL];
    int fam[N_FAM];
    char returned[LABEL], non_compliant[LABEL];
    bool has[N_TIMES];
    int days[N_TIMES];
} s_case_t;

typedef struct {
    char label[LABEL];
    int64_t n, fam[N_FAM][MAX_COLS], booked, started, offered;
    int cell, fcell[N_FAM][MAX_COLS], booked_cell, started_cell, offered_cell;
    int *days[N_TIMES];
    int n_days[N_TIMES];
} s_row_t;

typedef struct {
    char (*labels)[LABEL];
    int n;
} s_labels_t;

// A cohort delivered (Part B in the year, not cancelled): its month, whether it is a
// telephone cohort, and its seats and participants (group cohorts with a known capacity).
typedef struct {
    char provider[LABEL], month[LABEL];
    bool telephone;
    int64_t seats, participants;
} s_cohort_t;

// The financial year's facts.
typedef struct {
    s_case_t *cases;
    int n_cases;
    s_cohort_t *cohorts;
    int n_cohorts;
} s_facts_t;

// Cohorts per provider (the providers with a cohort in the year; [n] is all of them).
// Participants are head counts: a cell each, with the line to their total, and the fill rate
// is shown only where its participants are published.
typedef struct {
    s_labels_t providers;
    int64_t *delivered, *telephone, *seats, *participants;
    int *cells;
} s_cohorts_t;

// A reason breakdown: rows = the force rows, columns = the reasons found.
typedef struct {
    s_labels_t reasons;
    int64_t *counts, *totals; // [force][reason], [reason]
    int *cells, *total_cells;
} s_reasons_t;

// One period's counts. The labels of every breakdown but the month (and the reasons) are
// those of the whole financial year, and the cells are added in the same order, so a cell's
// index means the same count in every period of the year. The month rows are not cells of
// their own: each is that month's totals row, and takes the totals' cells.
typedef struct {
    const s_case_t *cases; // the financial year's cases (not owned)
    int n_cases;
    bool *in; // [case]: its caution falls in this period
    s_row_t total;
    s_labels_t labels[N_DIMS];
    s_row_t *rows[N_DIMS];
    s_reasons_t returned, non_compliant;
    const s_cohort_t *cohort_facts;
    int n_cohort_facts;
    s_cohorts_t cohorts;
    national_sdc_t *sdc;        // this period's values
    const national_sdc_t *hide; // the year's solution: which cells are withheld
    bool all_hidden;
} s_ret_t;

static int s_cmp_label(const void *a, const void *b) {
    return strcmp(a, b);
}

static int s_cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int s_find(const s_labels_t *l, const char *label) {
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->labels[i], label) == 0)
            return i;
    return -1;
}

// Labels: the fixed enumeration (if any), else the values found, sorted, with anything
// outside the enumeration appended as found. Returns 0 or -1.
static int s_labels(s_labels_t *l, const char *const *fixed, const s_case_t *cases, int n, int dim,
                    size_t offset) {
    l->labels = calloc((size_t)n + 32, sizeof *l->labels);
    if (!l->labels)
        return -1;
    l->n = 0;
    for (int i = 0; fixed && fixed[i]; i++)
        snprintf(l->labels[l->n++], LABEL, "%s", fixed[i]);
    int from = l->n;
    for (int i = 0; i < n; i++) {
        const char *v = dim >= 0 ? cases[i].dim[dim] : (const char *)&cases[i] + offset;
        if (*v && s_find(l, v) < 0)
            snprintf(l->labels[l->n++], LABEL, "%s", v);
    }
    qsort(l->labels + from, (size_t)(l->n - from), LABEL, s_cmp_label);
    return 0;
}

static int s_months(s_labels_t *l, const char *from, const char *to) {
    int32_t a, b;
    if (time_parse_date(from, &a) != 0 || time_parse_date(to, &b) != 0)
        return -1;
    l->labels = calloc(13, sizeof *l->labels);
    if (!l->labels)
        return -1;
    l->n = 0;
    int y;
    unsigned m, d;
    time_civil_from_days(a, &y, &m, &d);
    for (int32_t day = a; day <= b && l->n < 12;) {
        snprintf(l->labels[l->n++], LABEL, "%04d-%02u", y, m);
        if (++m > 12) {
            m = 1;
            y++;
        }
        day = time_days_from_civil(y, m, 1);
    }
    return 0;
}

static void s_count(s_row_t *row, const s_case_t *c) {
    row->n++;
    for (int f = 0; f < N_FAM; f++)
        row->fam[f][c->fam[f]]++;
    row->booked += c->fam[FAM_STAGE] >= 1;
    row->started += c->fam[FAM_STAGE] >= 2;
    row->offered += c->fam[FAM_VICTIM] <= 1;
    for (int t = 0; t < N_TIMES; t++)
        if (c->has[t])
            row->days[t][row->n_days[t]++] = c->days[t];
}

static int s_row_alloc(s_row_t *row, int n) {
    for (int t = 0; t < N_TIMES; t++)
        if (!(row->days[t] = calloc((size_t)n + 1, sizeof(int))))
            return -1;
    return 0;
}

// Loads the cases whose caution date falls in from..to (the financial year) into *cases (the
// caller frees) and *n. A case counts as returned only if the return came after its latest
// triage (or it was never triaged), and the provider had not finished it by then: one returned,
// corrected by the police and triaged again goes on to its later outcome, and one completed or
// non-compliant before an amendment had it returned keeps how it ended (booking and intake
// ignore a return of a case that is over). The facts keep both times (the triage's statement leaves
// the return alone, so the writes commute), and the order is decided here. Returns 0 or -1.
static int s_load(db_t *db, s_case_t **cases, int *n, const char *from, const char *to) {
    const char *values[] = {from, to};
    PGresult *res = db_query(
        db,
        "SELECT coalesce(force, 'unknown'), coalesce(provider, ''), coalesce(CASE WHEN"
        " amended_at > triaged_at THEN amended_pathway END, pathway, ''),"
        " to_char(caution_date, 'YYYY-MM'), coalesce(sex, 'unknown'),"
        " coalesce(age_band, 'unknown'), coalesce(ethnicity, 'unknown'),"
        " CASE WHEN returned_reason IS NOT NULL AND (triaged_at IS NULL OR returned_at >"
        "  triaged_at) AND completed_at IS NULL AND non_compliant_reason IS NULL THEN 3"
        "  WHEN withdrawn THEN 4"
        "  WHEN completed_at IS NOT NULL THEN 0 WHEN non_compliant_reason IS NOT NULL THEN 1"
        "  ELSE 2 END,"
        " booked_at IS NOT NULL, started_on IS NOT NULL, victim_offered, victim_accepted,"
        " CASE WHEN pseudonym IS NULL THEN 2 WHEN EXISTS (SELECT 1 FROM case_fact o WHERE"
        "  o.pseudonym = c.pseudonym AND o.caution_date IS NOT NULL AND (o.caution_date <"
        "  c.caution_date OR (o.caution_date = c.caution_date AND o.case_key < c.case_key)))"
        "  THEN 0 ELSE 1 END,"
        " coalesce(returned_reason, ''), coalesce(non_compliant_reason, ''),"
        " (received_at AT TIME ZONE 'UTC')::date - caution_date,"
        " (first_contact_at AT TIME ZONE 'UTC')::date - caution_date,"
        " (booked_at AT TIME ZONE 'UTC')::date - caution_date,"
        " started_on - caution_date,"
        " (completed_at AT TIME ZONE 'UTC')::date - caution_date"
        " FROM case_fact c WHERE caution_date BETWEEN $1::date AND $2::date ORDER BY case_key",
        2, values);
    if (!res)
        return -1;
    *n = PQntuples(res);
    *cases = calloc((size_t)*n + 1, sizeof **cases);
    if (!*cases) {
        PQclear(res);
        return -1;
    }
    for (int i = 0; i < *n; i++) {
        s_case_t *c = &(*cases)[i];
        for (int d = 0; d < N_DIMS; d++)
            snprintf(c->dim[d], LABEL, "%s", PQgetvalue(res, i, d));
        if (!c->dim[1][0])
            snprintf(c->dim[1], LABEL, "not_triaged");
        if (!c->dim[2][0])
            snprintf(c->dim[2], LABEL, "not_triaged");
        int outcome = atoi(PQgetvalue(res, i, 7));
        bool booked = *PQgetvalue(res, i, 8) == 't', started = *PQgetvalue(res, i, 9) == 't';
        bool offered = *PQgetvalue(res, i, 10) == 't', accepted = *PQgetvalue(res, i, 11) == 't';
        c->fam[FAM_OUTCOME] = outcome;
        c->fam[FAM_STAGE] = outcome == OUT_COMPLETED ? 3 : started ? 2 : booked ? 1 : 0;
        c->fam[FAM_MODE] = strcmp(c->dim[2], "not_triaged") == 0 ? 2
                           : strcmp(c->dim[2], "telephone") == 0 ? 1
                                                                 : 0;
        c->fam[FAM_VICTIM] = accepted ? 0 : offered ? 1 : 2;
        c->fam[FAM_REPEAT] = atoi(PQgetvalue(res, i, 12));
        if (outcome == OUT_RETURNED)
            snprintf(c->returned, LABEL, "%s", PQgetvalue(res, i, 13));
        if (outcome == OUT_NON_COMPLIANT)
            snprintf(c->non_compliant, LABEL, "%s", PQgetvalue(res, i, 14));
        for (int t = 0; t < N_TIMES; t++) {
            c->has[t] = !PQgetisnull(res, i, 15 + t);
            c->days[t] = c->has[t] ? atoi(PQgetvalue(res, i, 15 + t)) : 0;
        }
    }
    PQclear(res);
    return 0;
}

// Adds a row's cells and its family lines to the system. Returns 0 or -1.
static int s_row_cells(national_sdc_t *s, s_row_t *row, bool lock) {
    if ((row->cell = national_sdc_cell(s, row->n, false)) < 0)
        return -1;
    if (lock)
        national_sdc_lock(s, row->cell);
    for (int f = 0; f < N_FAM; f++) {
        for (int c = 0; c < s_fam[f].n; c++) {
            if (f == FAM_STAGE && c == 3)
                row->fcell[f][c] = row->fcell[FAM_OUTCOME][OUT_COMPLETED];
            else if ((row->fcell[f][c] = national_sdc_cell(s, row->fam[f][c], false)) < 0)
                return -1;
        }
        if (national_sdc_line(s, row->fcell[f], s_fam[f].n, row->cell) != 0)
            return -1;
    }
    row->booked_cell = national_sdc_cell(s, row->booked, false);
    row->started_cell = national_sdc_cell(s, row->started, false);
    row->offered_cell = national_sdc_cell(s, row->offered, false);
    if (row->booked_cell < 0 || row->started_cell < 0 || row->offered_cell < 0)
        return -1;
    const int *st = row->fcell[FAM_STAGE], *vi = row->fcell[FAM_VICTIM];
    int booked[] = {st[1], st[2], st[3]}, started[] = {st[2], st[3]}, offered[] = {vi[0], vi[1]};
    if (national_sdc_line(s, booked, 3, row->booked_cell) != 0 ||
        national_sdc_line(s, started, 2, row->started_cell) != 0 ||
        national_sdc_line(s, offered, 2, row->offered_cell) != 0)
        return -1;
    return 0;
}

// The reason breakdown by force, tied to the force rows' outcome cells. Returns 0 or -1.
static int s_reasons(s_ret_t *r, s_reasons_t *rs, size_t offset, int outcome) {
    if (s_labels(&rs->reasons, NULL, r->cases, r->n_cases, -1, offset) != 0)
        return -1;
    int nf = r->labels[0].n, nr = rs->reasons.n;
    rs->counts = calloc((size_t)(nf * nr) + 1, sizeof *rs->counts);
    rs->totals = calloc((size_t)nr + 1, sizeof *rs->totals);
    rs->cells = calloc((size_t)(nf * nr) + 1, sizeof *rs->cells);
    rs->total_cells = calloc((size_t)nr + 1, sizeof *rs->total_cells);
    int *parts = calloc((size_t)(nf + nr) + 1, sizeof *parts);
    int rc = -1;
    if (!rs->counts || !rs->totals || !rs->cells || !rs->total_cells || !parts)
        goto cleanup;
    for (int i = 0; i < r->n_cases; i++) {
        const char *reason = (const char *)&r->cases[i] + offset;
        if (!*reason || !r->in[i])
            continue;
        int f = s_find(&r->labels[0], r->cases[i].dim[0]), k = s_find(&rs->reasons, reason);
        rs->counts[f * nr + k]++;
        rs->totals[k]++;
    }
    if (nr == 0) {
        rc = 0;
        goto cleanup;
    }
    for (int k = 0; k < nr; k++)
        if ((rs->total_cells[k] = national_sdc_cell(r->sdc, rs->totals[k], false)) < 0)
            goto cleanup;
    if (national_sdc_line(r->sdc, rs->total_cells, nr, r->total.fcell[FAM_OUTCOME][outcome]) != 0)
        goto cleanup;
    for (int f = 0; f < nf; f++) {
        for (int k = 0; k < nr; k++)
            if ((rs->cells[f * nr + k] = national_sdc_cell(r->sdc, rs->counts[f * nr + k], false)) <
                0)
                goto cleanup;
        if (national_sdc_line(r->sdc, rs->cells + f * nr, nr,
                              r->rows[0][f].fcell[FAM_OUTCOME][outcome]) != 0)
            goto cleanup;
    }
    for (int k = 0; k < nr; k++) {
        for (int f = 0; f < nf; f++)
            parts[f] = rs->cells[f * nr + k];
        if (national_sdc_line(r->sdc, parts, nf, rs->total_cells[k]) != 0)
            goto cleanup;
    }
    rc = 0;
cleanup:
    free(parts);
    return rc;
}

// Loads the cohorts delivered in from..to (Part B in it, not cancelled) into f. Returns 0 or -1.
static int s_load_cohorts(db_t *db, s_facts_t *f, const char *from, const char *to) {
    const char *values[] = {from, to};
    PGresult *res = db_query(
        db,
        "SELECT coalesce(provider, 'unknown'), to_char(part_b_date, 'YYYY-MM'),"
        " cohort_type IS NOT DISTINCT FROM 'telephone',"
        " CASE WHEN cohort_type <> 'telephone' AND capacity > 0 THEN capacity ELSE 0 END,"
        " CASE WHEN cohort_type <> 'telephone' AND capacity > 0 THEN participants ELSE 0 END"
        " FROM cohort_fact WHERE NOT cancelled AND participants IS NOT NULL AND part_b_date"
        " BETWEEN $1::date AND $2::date ORDER BY cohort_key",
        2, values);
    if (!res)
        return -1;
    f->n_cohorts = PQntuples(res);
    if (!(f->cohorts = calloc((size_t)f->n_cohorts + 1, sizeof *f->cohorts))) {
        PQclear(res);
        return -1;
    }
    for (int i = 0; i < f->n_cohorts; i++) {
        s_cohort_t *c = &f->cohorts[i];
        snprintf(c->provider, LABEL, "%s", PQgetvalue(res, i, 0));
        snprintf(c->month, LABEL, "%s", PQgetvalue(res, i, 1));
        c->telephone = *PQgetvalue(res, i, 2) == 't';
        c->seats = atoll(PQgetvalue(res, i, 3));
        c->participants = atoll(PQgetvalue(res, i, 4));
    }
    PQclear(res);
    return 0;
}

// The period's cohorts per provider of the year, and their participants cells: one per
// provider, with the line to the total (so a provider's head count is no more recoverable
// from the national one than any other count). Returns 0 or -1.
static int s_cohorts(s_ret_t *r) {
    s_cohorts_t *co = &r->cohorts;
    const s_cohort_t *f = r->cohort_facts;
    int n = r->n_cohort_facts;
    if (!(co->providers.labels = calloc((size_t)n + 1, sizeof *co->providers.labels)))
        return -1;
    for (int i = 0; i < n; i++)
        if (s_find(&co->providers, f[i].provider) < 0)
            snprintf(co->providers.labels[co->providers.n++], LABEL, "%s", f[i].provider);
    qsort(co->providers.labels, (size_t)co->providers.n, LABEL, s_cmp_label);
    int np = co->providers.n;
    co->delivered = calloc((size_t)np + 1, sizeof *co->delivered);
    co->telephone = calloc((size_t)np + 1, sizeof *co->telephone);
    co->seats = calloc((size_t)np + 1, sizeof *co->seats);
    co->participants = calloc((size_t)np + 1, sizeof *co->participants);
    co->cells = calloc((size_t)np + 1, sizeof *co->cells);
    if (!co->delivered || !co->telephone || !co->seats || !co->participants || !co->cells)
        return -1;
    for (int i = 0; i < n; i++) {
        if (s_find(&r->labels[3], f[i].month) < 0)
            continue;
        int k = s_find(&co->providers, f[i].provider);
        for (int j = 0; j < 2; j++, k = np) { // the provider, then all
            co->delivered[k]++;
            co->telephone[k] += f[i].telephone;
            co->seats[k] += f[i].seats;
            co->participants[k] += f[i].participants;
        }
    }
    if (np == 0)
        return 0;
    for (int k = 0; k <= np; k++)
        if ((co->cells[k] = national_sdc_cell(r->sdc, co->participants[k], false)) < 0)
            return -1;
    return national_sdc_line(r->sdc, co->cells, np, co->cells[np]);
}

// Builds the period from..to's rows and reason breakdowns from the year's cases, and its cells
// and lines (not suppressed). Returns 0 or -1.
static int s_build(s_ret_t *r, const s_facts_t *facts, const char *from, const char *to) {
    const char *const *fixed[N_DIMS] = {NULL,
                                        NULL,
                                        s_pathway_rows,
                                        NULL,
                                        national_sexes,
                                        national_age_bands,
                                        national_ethnic_groups};
    r->cases = facts->cases;
    r->n_cases = facts->n_cases;
    r->cohort_facts = facts->cohorts;
    r->n_cohort_facts = facts->n_cohorts;
    if (!(r->in = calloc((size_t)r->n_cases + 1, sizeof *r->in)))
        return -1;
    for (int d = 0; d < N_DIMS; d++) {
        int rc = d == 3 ? s_months(&r->labels[d], from, to)
                        : s_labels(&r->labels[d], fixed[d], r->cases, r->n_cases, d, 0);
        if (rc != 0)
            return -1;
        if (!(r->rows[d] = calloc((size_t)r->labels[d].n + 1, sizeof *r->rows[d])))
            return -1;
    }
    for (int i = 0; i < r->n_cases; i++)
        r->in[i] = s_find(&r->labels[3], r->cases[i].dim[3]) >= 0;
    if (s_row_alloc(&r->total, r->n_cases) != 0)
        return -1;
    snprintf(r->total.label, LABEL, "all");
    for (int d = 0; d < N_DIMS; d++) {
        int *per_row = calloc((size_t)r->labels[d].n + 1, sizeof *per_row);
        if (!per_row)
            return -1;
        for (int i = 0; i < r->n_cases; i++) {
            int k = r->in[i] ? s_find(&r->labels[d], r->cases[i].dim[d]) : -1;
            if (k >= 0)
                per_row[k]++;
        }
        for (int k = 0; k < r->labels[d].n; k++) {
            snprintf(r->rows[d][k].label, LABEL, "%s", r->labels[d].labels[k]);
            if (s_row_alloc(&r->rows[d][k], per_row[k]) != 0) {
                free(per_row);
                return -1;
            }
        }
        free(per_row);
    }
    for (int i = 0; i < r->n_cases; i++) {
        if (!r->in[i])
            continue;
        s_count(&r->total, &r->cases[i]);
        for (int d = 0; d < N_DIMS; d++) {
            int k = s_find(&r->labels[d], r->cases[i].dim[d]);
            if (k >= 0)
                s_count(&r->rows[d][k], &r->cases[i]);
        }
    }
    if (!(r->sdc = national_sdc_new()) || s_row_cells(r->sdc, &r->total, true) != 0)
        return -1;
    for (int d = 0; d < N_DIMS; d++) {
        int n = r->labels[d].n;
        if (d == 3)
            continue; // the month rows: below
        int *parts = calloc((size_t)n + 1, sizeof *parts);
        if (!parts)
            return -1;
        for (int k = 0; k < n; k++)
            if (s_row_cells(r->sdc, &r->rows[d][k], false) != 0) {
                free(parts);
                return -1;
            }
        // Columns: each family's column over the rows sums to the national cell (a breakdown
        // with no rows, in a period without cases, has none).
        int rc = 0;
        if (n == 0) {
            free(parts);
            continue;
        }
        for (int k = 0; k < n; k++)
            parts[k] = r->rows[d][k].cell;
        rc |= national_sdc_line(r->sdc, parts, n, r->total.cell);
        for (int f = 0; f < N_FAM; f++)
            for (int c = 0; c < s_fam[f].n; c++) {
                if (f == FAM_STAGE && c == 3)
                    continue; // the outcome's completed column
                for (int k = 0; k < n; k++)
                    parts[k] = r->rows[d][k].fcell[f][c];
                rc |= national_sdc_line(r->sdc, parts, n, r->total.fcell[f][c]);
            }
        free(parts);
        if (rc != 0)
            return -1;
    }
    if (s_reasons(r, &r->returned, offsetof(s_case_t, returned), OUT_RETURNED) != 0 ||
        s_reasons(r, &r->non_compliant, offsetof(s_case_t, non_compliant), OUT_NON_COMPLIANT) !=
            0 ||
        s_cohorts(r) != 0)
        return -1;
    // A month row is the month's totals row: in every return of the year it is withheld
    // exactly where the totals are (the year's solution is the same for every period).
    for (int k = 0; k < r->labels[3].n; k++) {
        s_row_t *row = &r->rows[3][k];
        row->cell = r->total.cell;
        memcpy(row->fcell, r->total.fcell, sizeof row->fcell);
        row->booked_cell = r->total.booked_cell;
        row->started_cell = r->total.started_cell;
        row->offered_cell = r->total.offered_cell;
    }
    r->hide = r->sdc;
    return 0;
}

static json_t *s_num(const s_ret_t *r, int cell, int64_t v) {
    return r->all_hidden || national_sdc_hidden(r->hide, cell) ? json_null() : json_integer(v);
}

// num / den as a percentage to one decimal, shown only on a base of 10 or more whose parts
// are published.
static json_t *s_rate(const s_ret_t *r, int64_t num, int num_cell, int64_t den,
                      const int *den_cells, int n_den) {
    if (r->all_hidden || den < 10 || national_sdc_hidden(r->hide, num_cell))
        return json_null();
    for (int i = 0; i < n_den; i++)
        if (national_sdc_hidden(r->hide, den_cells[i]))
            return json_null();
    int64_t permille = (2000 * num + den) / (2 * den);
    return json_real((double)permille / 10.0);
}

// Nearest-rank percentile p (in percent) of n sorted values.
static int s_rank(const int *v, int n, int p) {
    return v[(p * n + 99) / 100 - 1];
}

static json_t *s_row_json(const s_ret_t *r, s_row_t *row) {
    json_t *o = json_object();
    json_object_set_new(o, "label", json_string(row->label));
    json_object_set_new(o, "referred", s_num(r, row->cell, row->n));
    for (int f = 0; f < N_FAM; f++) {
        json_t *fam = json_object();
        for (int c = 0; c < s_fam[f].n; c++)
            json_object_set_new(fam, s_fam[f].cols[c], s_num(r, row->fcell[f][c], row->fam[f][c]));
        json_object_set_new(o, s_fam[f].name, fam);
        if (f == FAM_STAGE) {
            json_object_set_new(o, "booked", s_num(r, row->booked_cell, row->booked));
            json_object_set_new(o, "started", s_num(r, row->started_cell, row->started));
        }
        if (f == FAM_VICTIM)
            json_object_set_new(o, "victim_contact_offered",
                                s_num(r, row->offered_cell, row->offered));
    }
    const int *out = row->fcell[FAM_OUTCOME], *mode = row->fcell[FAM_MODE];
    int ended[] = {out[OUT_COMPLETED], out[OUT_NON_COMPLIANT]}, triaged[] = {mode[0], mode[1]},
        offered[] = {row->offered_cell};
    json_object_set_new(o, "completion_rate_percent",
                        s_rate(r, row->fam[0][OUT_COMPLETED], out[OUT_COMPLETED],
                               row->fam[0][OUT_COMPLETED] + row->fam[0][OUT_NON_COMPLIANT], ended,
                               2));
    json_object_set_new(o, "telephone_share_percent",
                        s_rate(r, row->fam[FAM_MODE][1], mode[1],
                               row->fam[FAM_MODE][0] + row->fam[FAM_MODE][1], triaged, 2));
    json_object_set_new(
        o, "victim_contact_accepted_percent",
        s_rate(r, row->fam[FAM_VICTIM][0], row->fcell[FAM_VICTIM][0], row->offered, offered, 1));
    json_t *times = json_object();
    for (int t = 0; t < N_TIMES; t++) {
        int n = row->n_days[t];
        qsort(row->days[t], (size_t)n, sizeof(int), s_cmp_int);
        json_object_set_new(times, s_times[t],
                            n >= 10 && !r->all_hidden
                                ? json_pack("{s:i, s:i}", "median_days",
                                            s_rank(row->days[t], n, 50), "p90_days",
                                            s_rank(row->days[t], n, 90))
                                : json_pack("{s:n, s:n}", "median_days", "p90_days"));
    }
    json_object_set_new(o, "times", times);
    return o;
}

static json_t *s_reasons_json(const s_ret_t *r, const s_reasons_t *rs) {
    int nf = r->labels[0].n, nr = rs->reasons.n;
    json_t *reasons = json_array(), *rows = json_array(), *totals = json_object();
    for (int k = 0; k < nr; k++) {
        json_array_append_new(reasons, json_string(rs->reasons.labels[k]));
        json_object_set_new(totals, rs->reasons.labels[k],
                            s_num(r, rs->total_cells[k], rs->totals[k]));
    }
    for (int f = 0; f < nf; f++) {
        json_t *counts = json_object();
        for (int k = 0; k < nr; k++)
            json_object_set_new(counts, rs->reasons.labels[k],
                                s_num(r, rs->cells[f * nr + k], rs->counts[f * nr + k]));
        json_array_append_new(
            rows, json_pack("{s:s, s:o}", "label", r->labels[0].labels[f], "counts", counts));
    }
    return json_pack("{s:o, s:o, s:o}", "reasons", reasons, "by_force", rows, "totals", totals);
}

// Participants over seats as a percentage to one decimal, shown on 10 seats or more whose
// participants are published: with the seats (a cohort has 12 or so) the rate is the head
// count.
static json_t *s_fill_rate(const s_ret_t *r, int k) {
    const s_cohorts_t *co = &r->cohorts;
    int64_t p = co->participants[k], seats = co->seats[k];
    if (r->all_hidden || seats < 10 || co->providers.n == 0 ||
        national_sdc_hidden(r->hide, co->cells[k]))
        return json_null();
    return json_real((double)((2000 * p + seats) / (2 * seats)) / 10.0);
}

// Cohorts delivered (Part B in the period, not cancelled) and their fill rate (participants
// over seats, group cohorts with a known capacity), per provider with a cohort in the year.
// Returns a new object.
static json_t *s_cohorts_json(const s_ret_t *r) {
    const s_cohorts_t *co = &r->cohorts;
    int np = co->providers.n;
    json_t *rows = json_array(), *total = NULL;
    for (int k = 0; k <= np; k++) {
        json_t *o =
            json_pack("{s:s, s:I, s:I, s:o}", "label", k < np ? co->providers.labels[k] : "all",
                      "cohorts_delivered", (json_int_t)co->delivered[k], "telephone_cohorts",
                      (json_int_t)co->telephone[k], "fill_rate_percent", s_fill_rate(r, k));
        if (k < np)
            json_array_append_new(rows, o);
        else
            total = o;
    }
    return json_pack("{s:o, s:o}", "by_provider", rows, "totals", total);
}

int national_period(const char *p, char from[16], char to[16], const char **kind) {
    int y = 0, q, m;
    int32_t a, b;
    char tail;
    if (!p)
        return -1;
    if (strlen(p) == 6 && sscanf(p, "FY%4d%c", &y, &tail) == 1) {
        a = time_days_from_civil(y, 4, 1);
        b = time_days_from_civil(y + 1, 4, 1) - 1;
        *kind = "financial_year";
    } else if (strlen(p) == 6 && sscanf(p, "%4dQ%1d%c", &y, &q, &tail) == 2 && q >= 1 && q <= 4) {
        a = time_days_from_civil(y, (unsigned)(3 * q - 2), 1);
        b = (q == 4 ? time_days_from_civil(y + 1, 1, 1)
                    : time_days_from_civil(y, (unsigned)(3 * q + 1), 1)) -
            1;
        *kind = "quarter";
    } else if (strlen(p) == 7 && sscanf(p, "%4d-%2d%c", &y, &m, &tail) == 2 && m >= 1 && m <= 12 &&
               p[4] == '-') {
        a = time_days_from_civil(y, (unsigned)m, 1);
        b = (m == 12 ? time_days_from_civil(y + 1, 1, 1)
                     : time_days_from_civil(y, (unsigned)m + 1, 1)) -
            1;
        *kind = "month";
    } else {
        return -1;
    }
    if (y < 2000 || y > 2100)
        return -1;
    time_format_date(a, from, 16);
    time_format_date(b, to, 16);
    return 0;
}

static void s_free(s_ret_t *r) {
    for (int t = 0; t < N_TIMES; t++)
        free(r->total.days[t]);
    for (int d = 0; d < N_DIMS; d++) {
        for (int k = 0; r->rows[d] && k < r->labels[d].n; k++)
            for (int t = 0; t < N_TIMES; t++)
                free(r->rows[d][k].days[t]);
        free(r->rows[d]);
        free(r->labels[d].labels);
    }
    s_reasons_t *rs[] = {&r->returned, &r->non_compliant};
    for (int i = 0; i < 2; i++) {
        free(rs[i]->reasons.labels);
        free(rs[i]->counts);
        free(rs[i]->totals);
        free(rs[i]->cells);
        free(rs[i]->total_cells);
    }
    free(r->in);
    free(r->cohorts.providers.labels);
    free(r->cohorts.delivered);
    free(r->cohorts.telephone);
    free(r->cohorts.seats);
    free(r->cohorts.participants);
    free(r->cohorts.cells);
    national_sdc_destroy(&r->sdc);
    memset(r, 0, sizeof *r);
}

// The financial year's one disclosure solution. Every period of the year (its twelve months,
// four quarters and the year) has the same cells in the same order; a cell is protected in the
// year's system when its count is 1-4 in any of those periods, and the year's solution then
// withholds the same cells in every period. So whatever returns of the year a reader holds,
// the hidden parts of one period can be moved along any of the year's undetermined directions
// in that month, its quarter and the year at once without changing anything published or any
// sum between periods: no combination of the year's returns determines a protected count.
// Deterministic: the solution depends only on the year's facts. Returns 0 or -1.
static int s_year(s_ret_t *year, const s_facts_t *facts, int fy) {
    char from[16], to[16], text[16];
    const char *kind;
    for (int p = 0; p < 16; p++) { // 12 months, then 4 quarters
        if (p < 12)
            snprintf(text, sizeof text, "%04d-%02d", fy + (p >= 9), (p + 3) % 12 + 1);
        else
            snprintf(text, sizeof text, "%04dQ%d", fy + (p == 15), (p - 12 + 1) % 4 + 1);
        if (national_period(text, from, to, &kind) != 0)
            return -1;
        s_ret_t sub;
        memset(&sub, 0, sizeof sub);
        int rc = s_build(&sub, facts, from, to);
        if (rc == 0 && national_sdc_cells(sub.sdc) != national_sdc_cells(year->sdc))
            rc = -1; // a programming error: the periods' cells must line up
        for (int i = 0; rc == 0 && i < national_sdc_cells(sub.sdc); i++) {
            int64_t v = national_sdc_value(sub.sdc, i);
            if (v >= 1 && v <= 4)
                national_sdc_protect(year->sdc, i);
        }
        s_free(&sub);
        if (rc != 0)
            return -1;
    }
    if (national_sdc_suppress(year->sdc) != 0) {
        log_warn("national_suppression_failed", "effect", "every count withheld");
        year->all_hidden = true;
    }
    return 0;
}

json_t *national_return_build(db_t *db, const char *period) {
    char from[16], to[16], fy_text[16], fy_from[16], fy_to[16];
    const char *kind, *fy_kind;
    json_t *doc = NULL;
    s_facts_t facts;
    int y;
    unsigned m, d;
    int32_t day;
    s_ret_t r, year;
    memset(&r, 0, sizeof r);
    memset(&year, 0, sizeof year);
    memset(&facts, 0, sizeof facts);
    if (national_period(period, from, to, &kind) != 0 || time_parse_date(from, &day) != 0)
        return NULL;
    time_civil_from_days(day, &y, &m, &d);
    int fy = m >= 4 ? y : y - 1;
    snprintf(fy_text, sizeof fy_text, "FY%04d", fy);
    if (national_period(fy_text, fy_from, fy_to, &fy_kind) != 0)
        return NULL;
    bool is_year = strcmp(fy_text, period) == 0;
    if (s_load(db, &facts.cases, &facts.n_cases, fy_from, fy_to) != 0 ||
        s_load_cohorts(db, &facts, fy_from, fy_to) != 0 ||
        s_build(&year, &facts, fy_from, fy_to) != 0 || s_year(&year, &facts, fy) != 0 ||
        (!is_year && s_build(&r, &facts, from, to) != 0)) {
        log_error("national_return_failed", "period", period);
        goto cleanup;
    }
    if (is_year) {
        r = year;
        memset(&year, 0, sizeof year);
    } else {
        r.hide = year.sdc;
        r.all_hidden = year.all_hidden;
    }
    json_t *cohorts = s_cohorts_json(&r);
    if (!cohorts)
        goto cleanup;
    doc = json_object();
    json_object_set_new(doc, "schema_version", json_string(NATIONAL_SCHEMA_VERSION));
    json_object_set_new(doc, "period", json_string(period));
    json_object_set_new(doc, "period_kind", json_string(kind));
    json_object_set_new(doc, "from", json_string(from));
    json_object_set_new(doc, "to", json_string(to));
    json_object_set_new(doc, "disclosure",
                        json_pack("{s:i, s:i, s:s, s:s}", "min_published_count", 5, "min_rate_base",
                                  10, "withheld", "null", "percentiles", "nearest_rank"));
    json_object_set_new(doc, "totals", s_row_json(&r, &r.total));
    json_t *breakdowns = json_object();
    for (int d = 0; d < N_DIMS; d++) {
        json_t *rows = json_array();
        for (int k = 0; k < r.labels[d].n; k++)
            json_array_append_new(rows, s_row_json(&r, &r.rows[d][k]));
        json_object_set_new(breakdowns, s_dims[d], rows);
    }
    json_object_set_new(doc, "breakdowns", breakdowns);
    json_object_set_new(doc, "returned_by_reason", s_reasons_json(&r, &r.returned));
    json_object_set_new(doc, "non_compliant_by_reason", s_reasons_json(&r, &r.non_compliant));
    json_object_set_new(doc, "cohorts", cohorts);
cleanup:
    s_free(&r);
    s_free(&year);
    free(facts.cases);
    free(facts.cohorts);
    return doc;
}
