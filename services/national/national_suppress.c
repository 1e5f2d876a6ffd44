#include "national_suppress.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct national_sdc_t {
    int n_cells, cap_cells;
    int64_t *value;
    bool *never, *locked, *protect, *hidden, *tried;
    int n_lines, cap_lines;
    int *line_start; // n_lines + 1 offsets into line_cell
    int n_refs, cap_refs;
    int *line_cell; // parts then the total, per line
};

// A count that must not be published, or derived.
static bool s_small(int64_t v) {
    return v >= 1 && v <= 4;
}

static int s_grow(void **p, int *cap, int need, size_t size) {
    if (need <= *cap)
        return 0;
    int n = *cap ? *cap * 2 : 64;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, (size_t)n * size);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

national_sdc_t *national_sdc_new(void) {
    national_sdc_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->line_start = calloc(1, sizeof *self->line_start);
    self->cap_lines = 0;
    if (!self->line_start) {
        free(self);
        return NULL;
    }
    return self;
}

void national_sdc_destroy(national_sdc_t **self_p) {
    if (!self_p || !*self_p)
        return;
    national_sdc_t *self = *self_p;
    free(self->value);
    free(self->never);
    free(self->locked);
    free(self->protect);
    free(self->hidden);
    free(self->tried);
    free(self->line_start);
    free(self->line_cell);
    free(self);
    *self_p = NULL;
}

int national_sdc_cell(national_sdc_t *self, int64_t value, bool never_published) {
    int need = self->n_cells + 1, cap = self->cap_cells;
    if (s_grow((void **)&self->value, &cap, need, sizeof *self->value) != 0)
        return -1;
    cap = self->cap_cells;
    if (s_grow((void **)&self->never, &cap, need, sizeof *self->never) != 0)
        return -1;
    cap = self->cap_cells;
    if (s_grow((void **)&self->locked, &cap, need, sizeof *self->locked) != 0)
        return -1;
    cap = self->cap_cells;
    if (s_grow((void **)&self->protect, &cap, need, sizeof *self->protect) != 0)
        return -1;
    cap = self->cap_cells;
    if (s_grow((void **)&self->hidden, &cap, need, sizeof *self->hidden) != 0)
        return -1;
    cap = self->cap_cells;
    if (s_grow((void **)&self->tried, &cap, need, sizeof *self->tried) != 0)
        return -1;
    self->cap_cells = cap;
    int i = self->n_cells++;
    self->value[i] = value;
    self->never[i] = never_published;
    self->locked[i] = false;
    self->protect[i] = false;
    self->hidden[i] = never_published;
    self->tried[i] = false;
    return i;
}

int national_sdc_line(national_sdc_t *self, const int *parts, int n, int total) {
    if (total < 0 || total >= self->n_cells || n < 1)
        return -1;
    for (int k = 0; k < n; k++)
        if (parts[k] < 0 || parts[k] >= self->n_cells)
            return -1;
    int cap = self->cap_lines;
    if (s_grow((void **)&self->line_start, &cap, self->n_lines + 2, sizeof *self->line_start) != 0)
        return -1;
    self->cap_lines = cap;
    if (s_grow((void **)&self->line_cell, &self->cap_refs, self->n_refs + n + 1,
               sizeof *self->line_cell) != 0)
        return -1;
    memcpy(self->line_cell + self->n_refs, parts, (size_t)n * sizeof *parts);
    self->line_cell[self->n_refs + n] = total;
    self->n_refs += n + 1;
    self->line_start[++self->n_lines] = self->n_refs;
    return 0;
}

void national_sdc_lock(national_sdc_t *self, int cell) {
    if (cell >= 0 && cell < self->n_cells)
        self->locked[cell] = true;
}

void national_sdc_protect(national_sdc_t *self, int cell) {
    if (cell >= 0 && cell < self->n_cells)
        self->protect[cell] = true;
}

int national_sdc_cells(const national_sdc_t *self) {
    return self->n_cells;
}

int64_t national_sdc_value(const national_sdc_t *self, int cell) {
    return cell >= 0 && cell < self->n_cells ? self->value[cell] : 0;
}

// A cell that must be hidden and never determined: a count of 1-4, or a protected cell.
static bool s_must(const national_sdc_t *self, int cell) {
    return s_small(self->value[cell]) || self->protect[cell];
}

bool national_sdc_hidden(const national_sdc_t *self, int cell) {
    return cell >= 0 && cell < self->n_cells && self->hidden[cell];
}

void national_sdc_set_hidden(national_sdc_t *self, const bool *hidden) {
    for (int i = 0; i < self->n_cells; i++)
        self->hidden[i] = hidden[i] || self->never[i];
}

// Reduced row echelon form of the lines restricted to the hidden cells: a hidden cell is
// determined exactly when its pivot row has no entry in a free column.
int national_sdc_determined(const national_sdc_t *self, bool *determined) {
    int rc = -1, n_unknown = 0;
    int *col_of = malloc(((size_t)self->n_cells + 1) * sizeof *col_of);
    int *cell_of = malloc(((size_t)self->n_cells + 1) * sizeof *cell_of);
    int *pivot_col = malloc(((size_t)self->n_lines + 1) * sizeof *pivot_col);
    bool *is_pivot = NULL;
    double *m = NULL;
    if (!col_of || !cell_of || !pivot_col)
        goto cleanup;
    for (int i = 0; i < self->n_cells; i++) {
        col_of[i] = self->hidden[i] ? n_unknown : -1;
        if (self->hidden[i])
            cell_of[n_unknown++] = i;
        if (determined)
            determined[i] = false;
    }
    if (n_unknown == 0) {
        rc = 0;
        goto cleanup;
    }
    size_t w = (size_t)n_unknown;
    m = calloc((size_t)self->n_lines * w + 1, sizeof *m);
    is_pivot = calloc(w, sizeof *is_pivot);
    if (!m || !is_pivot)
        goto cleanup;
    int rows = 0;
    for (int l = 0; l < self->n_lines; l++) {
        int a = self->line_start[l], b = self->line_start[l + 1];
        bool any = false;
        for (int k = a; k < b; k++) {
            int c = col_of[self->line_cell[k]];
            if (c >= 0) {
                m[(size_t)rows * w + (size_t)c] += k == b - 1 ? -1.0 : 1.0;
                any = true;
            }
        }
        rows += any;
    }
    int r = 0;
    for (size_t c = 0; c < w && r < rows; c++) {
        int best = -1;
        double best_abs = 1e-9;
        for (int i = r; i < rows; i++)
            if (fabs(m[(size_t)i * w + c]) > best_abs) {
                best_abs = fabs(m[(size_t)i * w + c]);
                best = i;
            }
        if (best < 0)
            continue;
        if (best != r)
            for (size_t j = 0; j < w; j++) {
                double t = m[(size_t)r * w + j];
                m[(size_t)r * w + j] = m[(size_t)best * w + j];
                m[(size_t)best * w + j] = t;
            }
        double p = m[(size_t)r * w + c];
        for (size_t j = 0; j < w; j++)
            m[(size_t)r * w + j] /= p;
        for (int i = 0; i < rows; i++) {
            double f = m[(size_t)i * w + c];
            if (i == r || fabs(f) < 1e-12)
                continue;
            for (size_t j = 0; j < w; j++)
                m[(size_t)i * w + j] -= f * m[(size_t)r * w + j];
        }
        is_pivot[c] = true;
        pivot_col[r++] = (int)c;
    }
    int count = 0;
    for (int i = 0; i < r; i++) {
        bool free_entry = false;
        for (size_t j = 0; j < w && !free_entry; j++)
            free_entry = !is_pivot[j] && fabs(m[(size_t)i * w + j]) > 1e-9;
        if (!free_entry) {
            count++;
            if (determined)
                determined[cell_of[pivot_col[i]]] = true;
        }
    }
    rc = count;
cleanup:
    free(col_of);
    free(cell_of);
    free(pivot_col);
    free(is_pivot);
    free(m);
    return rc;
}

// The best cell to hide next among the lines through cell d: not hidden, not locked, the
// smallest non-zero count first (a hidden zero can be pinned by the others being counts),
// then zeros; ties to the lowest index. Returns -1 if there is none.
static int s_partner(const national_sdc_t *self, int d) {
    int best = -1;
    for (int l = 0; l < self->n_lines; l++) {
        int a = self->line_start[l], b = self->line_start[l + 1];
        bool through = d < 0;
        for (int k = a; k < b && !through; k++)
            through = self->line_cell[k] == d;
        if (!through)
            continue;
        if (d < 0) { // any line that already has a hidden cell
            bool any = false;
            for (int k = a; k < b && !any; k++)
                any = self->hidden[self->line_cell[k]];
            if (!any)
                continue;
        }
        for (int k = a; k < b; k++) {
            int c = self->line_cell[k];
            if (self->hidden[c] || self->locked[c])
                continue;
            if (best < 0)
                best = c;
            else {
                int64_t vc = self->value[c], vb = self->value[best];
                bool better = (vc > 0 && vb == 0) || ((vc > 0) == (vb > 0) && vc < vb) ||
                              (vc == vb && c < best);
                if (better)
                    best = c;
            }
        }
    }
    return best;
}

int national_sdc_suppress(national_sdc_t *self) {
    int rc = -1;
    bool *det = malloc(((size_t)self->n_cells + 1) * sizeof *det);
    if (!det)
        goto cleanup;
    for (int i = 0; i < self->n_cells; i++)
        self->hidden[i] = self->never[i] || s_must(self, i);
    for (;;) {
        if (national_sdc_determined(self, det) < 0)
            goto cleanup;
        // Only small counts need protecting: a determined secondary gives nothing away
        // unless it leads to a small count, which is then determined itself.
        int added = 0, exposed = 0;
        for (int i = 0; i < self->n_cells; i++) {
            if (!det[i] || !s_must(self, i))
                continue;
            exposed++;
            int p = s_partner(self, i);
            if (p >= 0) {
                self->hidden[p] = true;
                added++;
            }
        }
        if (exposed == 0)
            break;
        if (added == 0) {
            int p = s_partner(self, -1);
            if (p < 0)
                goto cleanup;
            self->hidden[p] = true;
        }
    }
    // Give back what was not needed: each secondary, largest first, is published again if
    // that exposes no small count.
    for (;;) {
        int back = -1;
        for (int i = 0; i < self->n_cells; i++)
            if (self->hidden[i] && !self->never[i] && !s_must(self, i) && !self->tried[i] &&
                (back < 0 || self->value[i] > self->value[back]))
                back = i;
        if (back < 0)
            break;
        self->tried[back] = true;
        self->hidden[back] = false;
        int n = national_sdc_determined(self, det);
        if (n < 0)
            goto cleanup;
        bool exposed = false;
        for (int i = 0; i < self->n_cells && !exposed; i++)
            exposed = det[i] && s_must(self, i);
        if (exposed)
            self->hidden[back] = true;
    }
    rc = 0;
cleanup:
    free(det);
    return rc;
}

int national_suppress_table(const int64_t *cells, int rows, int cols, bool *hidden) {
    int rc = -1, W = cols + 1;
    national_sdc_t *s = national_sdc_new();
    int *idx = calloc((size_t)((rows + 1) * W), sizeof *idx);
    int *parts = malloc((size_t)(rows + cols + 1) * sizeof *parts);
    if (!s || !idx || !parts)
        goto cleanup;
    int64_t grand = 0;
    for (int r = 0; r <= rows; r++)
        for (int c = 0; c <= cols; c++) {
            int64_t v = 0;
            if (r < rows && c < cols)
                v = cells[r * cols + c];
            else if (r < rows)
                for (int k = 0; k < cols; k++)
                    v += cells[r * cols + k];
            else if (c < cols)
                for (int k = 0; k < rows; k++)
                    v += cells[k * cols + c];
            else
                v = grand;
            if (r < rows && c < cols)
                grand += v;
            if ((idx[r * W + c] = national_sdc_cell(s, v, false)) < 0)
                goto cleanup;
        }
    national_sdc_lock(s, idx[rows * W + cols]);
    for (int r = 0; r <= rows; r++) {
        for (int c = 0; c < cols; c++)
            parts[c] = idx[r * W + c];
        if (national_sdc_line(s, parts, cols, idx[r * W + cols]) != 0)
            goto cleanup;
    }
    for (int c = 0; c <= cols; c++) {
        for (int r = 0; r < rows; r++)
            parts[r] = idx[r * W + c];
        if (national_sdc_line(s, parts, rows, idx[rows * W + c]) != 0)
            goto cleanup;
    }
    rc = national_sdc_suppress(s);
    for (int i = 0; i < (rows + 1) * W; i++)
        hidden[i] = rc != 0 || national_sdc_hidden(s, idx[i]);
cleanup:
    free(idx);
    free(parts);
    national_sdc_destroy(&s);
    return rc;
}
