// Disclosure control: every count of 1-4 is hidden, and across thousands of random tables no
// hidden cell can be recovered from the published row and column totals.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "national_facts.h"
#include "national_suppress.h"

static void test_small_counts_and_their_partners_are_hidden(void **state) {
    (void)state;
    // One small cell in a row: a second cell in that row and in its column must go too.
    const int64_t cells[] = {40, 3, 50, 60, 70, 80};
    bool hide[6];
    national_suppress(cells, 2, 3, hide);
    assert_true(hide[1]);
    int row0 = hide[0] + hide[1] + hide[2], col1 = hide[1] + hide[4];
    assert_true(row0 >= 2);
    assert_true(col1 >= 2);
    assert_int_equal(national_suppress_recoverable(cells, 2, 3, hide), 0);
    // Zeros and counts of 5 or more alone are published.
    const int64_t safe[] = {0, 5, 9, 100};
    bool h2[4];
    national_suppress(safe, 2, 2, h2);
    assert_false(h2[0] || h2[1] || h2[2] || h2[3]);
}

static void test_random_tables_never_leak(void **state) {
    (void)state;
    unsigned seed = 12345;
    int tables = 0, hidden_total = 0;
    for (int t = 0; t < 5000; t++) {
        int rows = 2 + (int)(rand_r(&seed) % 6), cols = 2 + (int)(rand_r(&seed) % 6);
        int64_t cells[64];
        bool hide[64];
        for (int i = 0; i < rows * cols; i++)
            cells[i] = rand_r(&seed) % 3 == 0 ? (int64_t)(rand_r(&seed) % 6)
                                              : (int64_t)(rand_r(&seed) % 200);
        national_suppress(cells, rows, cols, hide);
        for (int i = 0; i < rows * cols; i++) {
            if (cells[i] >= 1 && cells[i] <= 4)
                assert_true(hide[i]);
            hidden_total += hide[i];
        }
        assert_int_equal(national_suppress_recoverable(cells, rows, cols, hide), 0);
        tables++;
    }
    printf("# %d random tables, %d cells hidden, none recoverable\n", tables, hidden_total);
}

static void test_age_bands(void **state) {
    (void)state;
    assert_string_equal(national_age_band(18), "18-24");
    assert_string_equal(national_age_band(24), "18-24");
    assert_string_equal(national_age_band(25), "25-34");
    assert_string_equal(national_age_band(54), "45-54");
    assert_string_equal(national_age_band(55), "55+");
    assert_string_equal(national_age_band(0), "unknown");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_counts_and_their_partners_are_hidden),
        cmocka_unit_test(test_random_tables_never_leak),
        cmocka_unit_test(test_age_bands),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
