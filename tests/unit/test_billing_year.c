// billing's date arithmetic: financial years (April to March), periods, invoice periods, the
// straight-line forecast, cap thresholds, and funding splits that add up to the penny.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "billing_year.h"
#include "cara/money.h"
#include "cara/timeutil.h"

static int32_t s_day(const char *text) {
    int32_t d = 0;
    assert_int_equal(time_parse_date(text, &d), 0);
    return d;
}

static void test_financial_year_of_a_date(void **state) {
    (void)state;
    char fy[16];
    int32_t first, last;
    assert_int_equal(billing_year_of(s_day("2025-04-01"), fy, sizeof fy, &first, &last), 0);
    assert_string_equal(fy, "2025-26");
    assert_int_equal(first, s_day("2025-04-01"));
    assert_int_equal(last, s_day("2026-03-31"));
    assert_int_equal(billing_year_of(s_day("2026-03-31"), fy, sizeof fy, NULL, NULL), 0);
    assert_string_equal(fy, "2025-26");
    assert_int_equal(billing_year_of(s_day("2026-04-01"), fy, sizeof fy, NULL, NULL), 0);
    assert_string_equal(fy, "2026-27");
    assert_int_equal(billing_year_of(s_day("2099-12-31"), fy, sizeof fy, NULL, NULL), 0);
    assert_string_equal(fy, "2099-00");
    assert_int_equal(billing_year_of(s_day("2025-06-01"), fy, 4, NULL, NULL), -1);
    // A line straddling years (Part A in March, Part B in April) goes to the year of Part B.
    assert_int_equal(billing_year_of(s_day("2026-04-18"), fy, sizeof fy, NULL, NULL), 0);
    assert_string_equal(fy, "2026-27");
}

static void test_financial_year_labels(void **state) {
    (void)state;
    int32_t first, last;
    assert_int_equal(billing_year_parse("2026-27", &first, &last), 0);
    assert_int_equal(first, s_day("2026-04-01"));
    assert_int_equal(last, s_day("2027-03-31"));
    assert_int_equal(billing_year_parse("2099-00", &first, &last), 0);
    assert_int_equal(billing_year_parse("2026-28", &first, &last), -1);
    assert_int_equal(billing_year_parse("2026/27", &first, &last), -1);
    assert_int_equal(billing_year_parse("2026-27x", &first, &last), -1);
    assert_int_equal(billing_year_parse("", &first, &last), -1);
    assert_int_equal(billing_year_parse(NULL, &first, &last), -1);
}

static void test_periods(void **state) {
    (void)state;
    int32_t first, last;
    assert_int_equal(billing_period_parse("2025-04", &first, &last), 0);
    assert_int_equal(first, s_day("2025-04-01"));
    assert_int_equal(last, s_day("2025-04-30"));
    assert_int_equal(billing_period_parse("2024-02", &first, &last), 0);
    assert_int_equal(last, s_day("2024-02-29"));
    assert_int_equal(billing_period_parse("2025-12", &first, &last), 0);
    assert_int_equal(last, s_day("2025-12-31"));
    assert_int_equal(billing_period_parse("2025-13", &first, &last), -1);
    assert_int_equal(billing_period_parse("2025-4", &first, &last), -1);
    assert_int_equal(billing_period_parse("202504", &first, &last), -1);
    assert_int_equal(billing_period_due("monthly", 4), 1);
    assert_int_equal(billing_period_due("quarterly", 4), 0);
    assert_int_equal(billing_period_due("quarterly", 6), 1);
    assert_int_equal(billing_period_due("quarterly", 3), 1);
}

static void test_forecast_is_straight_line(void **state) {
    (void)state;
    int32_t first = s_day("2025-04-01"), last = s_day("2026-03-31");
    // Half a year (183 of 365 days) gone with GBP 30,000 spent.
    assert_int_equal(billing_forecast(3000000, first, s_day("2025-09-30"), last),
                     3000000LL * 365 / 183);
    assert_int_equal(billing_forecast(3000000, first, first - 1, last), 0);
    assert_int_equal(billing_forecast(3000000, first, last, last), 3000000);
    assert_int_equal(billing_forecast(3000000, first, last + 40, last), 3000000);
    assert_int_equal(billing_forecast(0, first, first + 10, last), 0);
    // One day in: 365 times the day's spend; no overflow for large sums.
    assert_int_equal(billing_forecast(1001, first, first, last), 1001LL * 365);
    assert_int_equal(billing_forecast(INT64_C(1) << 52, first, first + 1, last),
                     (INT64_C(1) << 51) * 365);
}

static void test_thresholds(void **state) {
    (void)state;
    assert_int_equal(billing_threshold(0, 6000000), 0);
    assert_int_equal(billing_threshold(4499999, 6000000), 0);
    assert_int_equal(billing_threshold(4500000, 6000000), 75);
    assert_int_equal(billing_threshold(5399999, 6000000), 75);
    assert_int_equal(billing_threshold(5400000, 6000000), 90);
    assert_int_equal(billing_threshold(6000000, 6000000), 100);
    assert_int_equal(billing_threshold(150, 200), 75);
    assert_int_equal(billing_threshold(199, 200), 90);
    assert_int_equal(billing_threshold(5, 0), 0);
    // No overflow at the ends of the range (a cap of INT64_MAX pence meant "no cap").
    assert_int_equal(billing_threshold(1, INT64_MAX), 0);
    assert_int_equal(billing_threshold(INT64_MAX, INT64_MAX), 100);
    assert_int_equal(billing_threshold(INT64_MAX / 100 * 76, INT64_MAX), 75);
}

static void test_funding_split_adds_up_to_the_penny(void **state) {
    (void)state;
    const int shares[] = {3333, 3333, 3334};
    int64_t parts[3];
    for (int64_t total = 0; total < 10000; total += 7) {
        assert_int_equal(money_split(total, shares, 3, parts), 0);
        assert_int_equal(parts[0] + parts[1] + parts[2], total);
    }
    const int uneven[] = {6000, 3000};
    assert_int_equal(money_split(100, uneven, 2, parts), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_financial_year_of_a_date),
        cmocka_unit_test(test_financial_year_labels),
        cmocka_unit_test(test_periods),
        cmocka_unit_test(test_forecast_is_straight_line),
        cmocka_unit_test(test_thresholds),
        cmocka_unit_test(test_funding_split_adds_up_to_the_penny),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
