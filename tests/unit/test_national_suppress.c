// Disclosure control, attacked: every count of 1-4 is hidden, and no hidden count can be
// recovered from what is published. Two independent attackers: linear algebra over all
// lines at once (the module's own), and a brute-force enumeration, written here, of every
// non-negative integer table that agrees with the published cells, which also catches what
// non-negativity gives away. Exhaustive over all small tables, then random larger ones.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "national_facts.h"
#include "national_suppress.h"

#define MAXR 4
#define MAXC 4
#define W(cols) ((cols) + 1)

typedef struct {
    int rows, cols;
    int64_t aug[(MAXR + 1) * (MAXC + 1)]; // cells, row totals, column totals, grand total
    const bool *hidden;
    int64_t cur[MAXR * MAXC];
    int64_t lo[(MAXR + 1) * (MAXC + 1)], hi[(MAXR + 1) * (MAXC + 1)];
    long solutions, nodes;
} s_brute_t;

static void s_augment(const int64_t *cells, int rows, int cols, int64_t *aug) {
    memset(aug, 0, sizeof(int64_t) * (size_t)((rows + 1) * W(cols)));
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            int64_t v = cells[r * cols + c];
            aug[r * W(cols) + c] = v;
            aug[r * W(cols) + cols] += v;
            aug[rows * W(cols) + c] += v;
            aug[rows * W(cols) + cols] += v;
        }
}

// A published total, or -1 if hidden.
static int64_t s_pub(const s_brute_t *b, int r, int c) {
    int i = r * W(b->cols) + c;
    return b->hidden[i] ? -1 : b->aug[i];
}

static void s_solution(s_brute_t *b) {
    int64_t a[(MAXR + 1) * (MAXC + 1)];
    s_augment(b->cur, b->rows, b->cols, a);
    for (int i = 0; i < (b->rows + 1) * W(b->cols); i++) {
        if (a[i] < b->lo[i])
            b->lo[i] = a[i];
        if (a[i] > b->hi[i])
            b->hi[i] = a[i];
    }
    b->solutions++;
}

// Fills interior cell k onwards; partial sums never exceed a published total.
static void s_fill(s_brute_t *b, int k) {
    int rows = b->rows, cols = b->cols;
    if (++b->nodes > 2000000)
        return;
    if (k == rows * cols) {
        int64_t a[(MAXR + 1) * (MAXC + 1)];
        s_augment(b->cur, rows, cols, a);
        for (int i = 0; i < (rows + 1) * W(cols); i++)
            if (!b->hidden[i] && a[i] != b->aug[i])
                return;
        s_solution(b);
        return;
    }
    int r = k / cols, c = k % cols;
    int64_t cap = s_pub(b, rows, cols);
    if (cap < 0)
        cap = 4; // a hidden grand total is a count of 1-4
    int64_t from = 0, to = cap;
    if (s_pub(b, r, cols) >= 0 && s_pub(b, r, cols) < to)
        to = s_pub(b, r, cols);
    if (s_pub(b, rows, c) >= 0 && s_pub(b, rows, c) < to)
        to = s_pub(b, rows, c);
    if (!b->hidden[r * W(cols) + c])
        from = to = b->aug[r * W(cols) + c];
    for (int64_t v = from; v <= to; v++) {
        b->cur[k] = v;
        int64_t rs = 0, cs = 0, ts = 0;
        for (int j = 0; j <= c; j++)
            rs += b->cur[r * cols + j];
        for (int i = 0; i <= r; i++)
            cs += b->cur[i * cols + c];
        for (int i = 0; i <= k; i++)
            ts += b->cur[i];
        int64_t pr = s_pub(b, r, cols), pc = s_pub(b, rows, c);
        if ((pr >= 0 && rs > pr) || (pc >= 0 && cs > pc) || ts > cap)
            break;
        // A row that is complete must meet its published total.
        if (c == cols - 1 && pr >= 0 && rs != pr)
            continue;
        if (r == rows - 1 && pc >= 0 && cs != pc)
            continue;
        s_fill(b, k + 1);
    }
}

// Brute force: returns how many hidden cells of 1-4 take a single value in every table that
// agrees with the published cells (0 = safe), or -1 if the search was too large.
static int s_brute_exposed(const int64_t *cells, int rows, int cols, const bool *hidden) {
    s_brute_t b;
    memset(&b, 0, sizeof b);
    b.rows = rows;
    b.cols = cols;
    b.hidden = hidden;
    s_augment(cells, rows, cols, b.aug);
    for (int i = 0; i < (rows + 1) * W(cols); i++) {
        b.lo[i] = INT64_MAX;
        b.hi[i] = INT64_MIN;
    }
    s_fill(&b, 0);
    if (b.nodes > 2000000)
        return -1;
    assert_true(b.solutions >= 1); // the truth is always one
    int exposed = 0;
    for (int i = 0; i < (rows + 1) * W(cols); i++)
        if (hidden[i] && b.aug[i] >= 1 && b.aug[i] <= 4 && b.lo[i] == b.hi[i])
            exposed++;
    return exposed;
}

// The module's attacker on a given hidden pattern of an augmented table.
static int s_linear_determined(const int64_t *cells, int rows, int cols, const bool *hidden,
                               bool *det) {
    int64_t aug[(MAXR + 1) * (MAXC + 1)];
    int idx[(MAXR + 1) * (MAXC + 1)], parts[MAXR + MAXC];
    s_augment(cells, rows, cols, aug);
    national_sdc_t *s = national_sdc_new();
    for (int i = 0; i < (rows + 1) * W(cols); i++)
        idx[i] = national_sdc_cell(s, aug[i], false);
    for (int r = 0; r <= rows; r++) {
        for (int c = 0; c < cols; c++)
            parts[c] = idx[r * W(cols) + c];
        assert_int_equal(national_sdc_line(s, parts, cols, idx[r * W(cols) + cols]), 0);
    }
    for (int c = 0; c <= cols; c++) {
        for (int r = 0; r < rows; r++)
            parts[r] = idx[r * W(cols) + c];
        assert_int_equal(national_sdc_line(s, parts, rows, idx[rows * W(cols) + c]), 0);
    }
    national_sdc_set_hidden(s, hidden);
    int n = national_sdc_determined(s, det);
    national_sdc_destroy(&s);
    return n;
}

// Suppresses one table and attacks it both ways. Returns the number of hidden cells.
static int s_check(const int64_t *cells, int rows, int cols, long *skipped) {
    bool hidden[(MAXR + 1) * (MAXC + 1)], det[(MAXR + 1) * (MAXC + 1)];
    int64_t aug[(MAXR + 1) * (MAXC + 1)];
    assert_int_equal(national_suppress_table(cells, rows, cols, hidden), 0);
    s_augment(cells, rows, cols, aug);
    int n = 0;
    for (int i = 0; i < (rows + 1) * W(cols); i++) {
        if (aug[i] >= 1 && aug[i] <= 4)
            assert_true(hidden[i]); // every small count, totals included
        n += hidden[i];
    }
    s_linear_determined(cells, rows, cols, hidden, det);
    for (int i = 0; i < (rows + 1) * W(cols); i++)
        if (aug[i] >= 1 && aug[i] <= 4)
            assert_false(det[i]);
    int exposed = s_brute_exposed(cells, rows, cols, hidden);
    if (exposed < 0)
        (*skipped)++;
    else if (exposed != 0) {
        for (int r = 0; r <= rows; r++) {
            for (int c = 0; c <= cols; c++)
                fprintf(stderr, "%4lld%c", (long long)aug[r * W(cols) + c],
                        hidden[r * W(cols) + c] ? '*' : ' ');
            fprintf(stderr, "\n");
        }
        fail_msg("a suppressed count can be derived");
    }
    return n;
}

static void test_small_counts_and_their_partners_are_hidden(void **state) {
    (void)state;
    // One small cell: a second cell in its row and in its column must go too.
    const int64_t cells[] = {40, 3, 50, 60, 70, 80};
    bool hide[12];
    assert_int_equal(national_suppress_table(cells, 2, 3, hide), 0);
    assert_true(hide[1]);
    assert_true(hide[0] + hide[1] + hide[2] + hide[3] >= 2); // row 0 with its total
    assert_true(hide[1] + hide[5] + hide[9] >= 2);           // column 1 with its total
    assert_false(hide[11]);                                  // the grand total stays
    // Zeros and counts of 5 or more alone are all published.
    const int64_t safe[] = {0, 5, 9, 100};
    bool h2[9];
    assert_int_equal(national_suppress_table(safe, 2, 2, h2), 0);
    for (int i = 0; i < 9; i++)
        assert_false(h2[i]);
    // A row whose total is itself small: the total is hidden, and protected.
    const int64_t tiny[] = {2, 0, 1, 30, 40, 50, 60, 70, 80};
    bool h3[16];
    assert_int_equal(national_suppress_table(tiny, 3, 3, h3), 0);
    assert_true(h3[0] && h3[2] && h3[3]);
    long skipped = 0;
    s_check(tiny, 3, 3, &skipped);
}

// Hidden cells that form two cycles joined by one cell: every row and column has 0 or at
// least 2 hidden cells, so a row-by-row attack finds nothing, but the joining cell is fixed by
// the totals of one side. The linear attacker and the brute force both find it.
static void test_a_bridge_between_two_cycles_is_found(void **state) {
    (void)state;
    const int64_t cells[] = {3, 7, 0, 0, //
                             6, 3, 2, 0, //
                             0, 0, 3, 8, //
                             0, 0, 9, 3};
    bool hidden[25] = {false}, det[25];
    const int pattern[][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}, {1, 2},
                              {2, 2}, {2, 3}, {3, 2}, {3, 3}};
    for (size_t k = 0; k < sizeof pattern / sizeof *pattern; k++)
        hidden[pattern[k][0] * 5 + pattern[k][1]] = true;
    assert_true(s_linear_determined(cells, 4, 4, hidden, det) >= 1);
    assert_true(det[1 * 5 + 2]); // the bridge
    assert_true(s_brute_exposed(cells, 4, 4, hidden) >= 1);
    long skipped = 0;
    s_check(cells, 4, 4, &skipped); // and the module protects this table
}

// Non-negativity: two hidden zeros next to a small count pin it, though the linear algebra
// alone would not; the module never chooses zeros while counts are available.
static void test_hidden_zeros_can_pin_a_count(void **state) {
    (void)state;
    const int64_t cells[] = {3, 0, 20, 0, 0, 40, 50, 60, 70};
    bool hidden[16] = {false}, det[16];
    hidden[0] = hidden[1] = true; // row 0: 3 and 0
    hidden[4] = hidden[5] = true; // row 1: 0 and 0
    assert_int_equal(s_linear_determined(cells, 3, 3, hidden, det), 0);
    assert_int_equal(s_brute_exposed(cells, 3, 3, hidden), 1);
    long skipped = 0;
    s_check(cells, 3, 3, &skipped);
}

// Every 2x2 table with counts 0-7 and every 2x3 table with counts 0-4.
static void test_exhaustive_small_tables(void **state) {
    (void)state;
    long tables = 0, hidden = 0, skipped = 0;
    int64_t cells[6];
    for (int a = 0; a < 8 * 8 * 8 * 8; a++) {
        int x = a;
        for (int i = 0; i < 4; i++, x /= 8)
            cells[i] = x % 8;
        hidden += s_check(cells, 2, 2, &skipped);
        tables++;
    }
    for (int a = 0; a < 5 * 5 * 5 * 5 * 5 * 5; a++) {
        int x = a;
        for (int i = 0; i < 6; i++, x /= 5)
            cells[i] = x % 5;
        hidden += s_check(cells, 2, 3, &skipped);
        tables++;
    }
    printf("# %ld tables (all 2x2 over 0-7, all 2x3 over 0-4), %ld cells hidden, %ld too large"
           " to enumerate, none derivable\n",
           tables, hidden, skipped);
    assert_int_equal(skipped, 0);
}

static void test_random_tables_never_leak(void **state) {
    (void)state;
    unsigned seed = 12345;
    long tables = 0, hidden = 0, skipped = 0;
    for (int t = 0; t < 2000; t++) {
        int rows = 2 + (int)(rand_r(&seed) % 3), cols = 2 + (int)(rand_r(&seed) % 3);
        int64_t cells[MAXR * MAXC];
        for (int i = 0; i < rows * cols; i++)
            cells[i] =
                rand_r(&seed) % 2 ? (int64_t)(rand_r(&seed) % 5) : (int64_t)(rand_r(&seed) % 10);
        hidden += s_check(cells, rows, cols, &skipped);
        tables++;
    }
    printf("# %ld random tables up to 4x4, %ld cells hidden, %ld too large to enumerate, none"
           " derivable\n",
           tables, hidden, skipped);
    assert_true(skipped < tables / 20);
}

// Linked tables sharing totals (as the return publishes them): two breakdowns of the same
// population share the column totals; the whole system is attacked at once.
static void test_linked_tables(void **state) {
    (void)state;
    unsigned seed = 99;
    for (int t = 0; t < 500; t++) {
        national_sdc_t *s = national_sdc_new();
        int64_t a[3][3], b[2][3]; // breakdown A: 3 rows; B: 2 rows; same column totals
        int64_t col[3] = {0, 0, 0};
        for (int c = 0; c < 3; c++) {
            for (int r = 0; r < 3; r++)
                col[c] += a[r][c] = rand_r(&seed) % 7;
            b[0][c] = rand_r(&seed) % (col[c] + 1);
            b[1][c] = col[c] - b[0][c];
        }
        int ia[3][3], ib[2][3], ra[3], rb[2], ic[3], grand;
        int64_t g = col[0] + col[1] + col[2];
        for (int c = 0; c < 3; c++)
            ic[c] = national_sdc_cell(s, col[c], false);
        grand = national_sdc_cell(s, g, false);
        national_sdc_lock(s, grand);
        assert_int_equal(national_sdc_line(s, ic, 3, grand), 0);
        for (int r = 0; r < 3; r++) {
            for (int c = 0; c < 3; c++)
                ia[r][c] = national_sdc_cell(s, a[r][c], false);
            ra[r] = national_sdc_cell(s, a[r][0] + a[r][1] + a[r][2], false);
            assert_int_equal(national_sdc_line(s, ia[r], 3, ra[r]), 0);
        }
        for (int r = 0; r < 2; r++) {
            for (int c = 0; c < 3; c++)
                ib[r][c] = national_sdc_cell(s, b[r][c], false);
            rb[r] = national_sdc_cell(s, b[r][0] + b[r][1] + b[r][2], false);
            assert_int_equal(national_sdc_line(s, ib[r], 3, rb[r]), 0);
        }
        assert_int_equal(national_sdc_line(s, ra, 3, grand), 0);
        assert_int_equal(national_sdc_line(s, rb, 2, grand), 0);
        for (int c = 0; c < 3; c++) {
            int pa[3] = {ia[0][c], ia[1][c], ia[2][c]}, pb[2] = {ib[0][c], ib[1][c]};
            assert_int_equal(national_sdc_line(s, pa, 3, ic[c]), 0);
            assert_int_equal(national_sdc_line(s, pb, 2, ic[c]), 0);
        }
        assert_int_equal(national_sdc_suppress(s), 0);
        int n = national_sdc_cells(s);
        bool *det = calloc((size_t)n, sizeof *det);
        national_sdc_determined(s, det);
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 3; c++)
                if (a[r][c] >= 1 && a[r][c] <= 4) {
                    assert_true(national_sdc_hidden(s, ia[r][c]));
                    assert_false(det[ia[r][c]]);
                }
        for (int r = 0; r < 2; r++)
            for (int c = 0; c < 3; c++)
                if (b[r][c] >= 1 && b[r][c] <= 4) {
                    assert_true(national_sdc_hidden(s, ib[r][c]));
                    assert_false(det[ib[r][c]]);
                }
        free(det);
        national_sdc_destroy(&s);
    }
}

// A protected cell (a count of 1-4 in another period that shares the system) is hidden and
// never determined, whatever its own value; the rest of the table is published if it can be.
static void test_protected_cells_are_hidden_like_small_counts(void **state) {
    (void)state;
    unsigned seed = 7;
    for (int t = 0; t < 300; t++) {
        national_sdc_t *s = national_sdc_new();
        int cell[3][4], line[4];
        int64_t v[3][3];
        int64_t col[3] = {0, 0, 0}, grand = 0;
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 3; c++) {
                v[r][c] = 5 + rand_r(&seed) % 20; // no count of 1-4 at all
                col[c] += v[r][c];
            }
        for (int r = 0; r < 3; r++) {
            int64_t sum = 0;
            for (int c = 0; c < 3; c++) {
                cell[r][c] = national_sdc_cell(s, v[r][c], false);
                sum += v[r][c];
            }
            cell[r][3] = national_sdc_cell(s, sum, false);
            assert_int_equal(national_sdc_line(s, cell[r], 3, cell[r][3]), 0);
            grand += sum;
        }
        int totals[4];
        for (int c = 0; c < 3; c++)
            totals[c] = national_sdc_cell(s, col[c], false);
        totals[3] = national_sdc_cell(s, grand, false);
        national_sdc_lock(s, totals[3]);
        assert_int_equal(national_sdc_line(s, totals, 3, totals[3]), 0);
        for (int c = 0; c < 4; c++) {
            for (int r = 0; r < 3; r++)
                line[r] = cell[r][c];
            assert_int_equal(national_sdc_line(s, line, 3, totals[c]), 0);
        }
        int pr = (int)(rand_r(&seed) % 3), pc = (int)(rand_r(&seed) % 3);
        national_sdc_protect(s, cell[pr][pc]);
        assert_int_equal(national_sdc_value(s, cell[pr][pc]), v[pr][pc]);
        assert_int_equal(national_sdc_suppress(s), 0);
        bool det[32];
        assert_true(national_sdc_determined(s, det) >= 0);
        assert_true(national_sdc_hidden(s, cell[pr][pc]));
        assert_false(det[cell[pr][pc]]);
        int hidden = 0;
        for (int i = 0; i < national_sdc_cells(s); i++)
            hidden += national_sdc_hidden(s, i);
        assert_true(hidden >= 4 && hidden < national_sdc_cells(s)); // a cycle, not the table
        assert_false(national_sdc_hidden(s, totals[3]));
        national_sdc_destroy(&s);
    }
    national_sdc_t *s = national_sdc_new(); // unprotected, the same table publishes everything
    int a = national_sdc_cell(s, 7, false), b = national_sdc_cell(s, 9, false),
        ab = national_sdc_cell(s, 16, false);
    int parts[] = {a, b};
    assert_int_equal(national_sdc_line(s, parts, 2, ab), 0);
    assert_int_equal(national_sdc_suppress(s), 0);
    assert_false(national_sdc_hidden(s, a) || national_sdc_hidden(s, b) ||
                 national_sdc_hidden(s, ab));
    national_sdc_destroy(&s);
}

static void test_age_bands_and_ethnic_groups(void **state) {
    (void)state;
    assert_string_equal(national_age_band(18), "18-24");
    assert_string_equal(national_age_band(24), "18-24");
    assert_string_equal(national_age_band(25), "25-34");
    assert_string_equal(national_age_band(44), "35-44");
    assert_string_equal(national_age_band(54), "45-54");
    assert_string_equal(national_age_band(55), "55+");
    assert_string_equal(national_age_band(17), "unknown");
    assert_string_equal(national_age_band(0), "unknown");
    assert_string_equal(national_ethnic_group("asian_indian"), "asian");
    assert_string_equal(national_ethnic_group("black_caribbean"), "black");
    assert_string_equal(national_ethnic_group("mixed_other"), "mixed");
    assert_string_equal(national_ethnic_group("white_british"), "white");
    assert_string_equal(national_ethnic_group("other_arab"), "other");
    assert_string_equal(national_ethnic_group("not_stated"), "unknown");
    assert_string_equal(national_ethnic_group(""), "unknown");
    assert_string_equal(national_ethnic_group("whitewash"), "unknown");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_counts_and_their_partners_are_hidden),
        cmocka_unit_test(test_a_bridge_between_two_cycles_is_found),
        cmocka_unit_test(test_hidden_zeros_can_pin_a_count),
        cmocka_unit_test(test_exhaustive_small_tables),
        cmocka_unit_test(test_random_tables_never_leak),
        cmocka_unit_test(test_linked_tables),
        cmocka_unit_test(test_protected_cells_are_hidden_like_small_counts),
        cmocka_unit_test(test_age_bands_and_ethnic_groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
