// booking rules without a database: settings precedence (force over provider over global),
// cohort gaps (group and telephone), attendance statuses and miss reasons, and the shortfall
// plan (earliest deadline first, seats consumed, pathways kept apart).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "booking_rules.h"
#include "cara/timeutil.h"

static config_t *s_config(const char *json) {
    json_error_t err;
    json_t *root = json_loads(json, 0, &err);
    assert_non_null(root);
    config_t *cfg = config_from_json(root); // holds its own reference
    json_decref(root);
    assert_non_null(cfg);
    return cfg;
}

static void test_setting_precedence(void **state) {
    (void)state;
    config_t *cfg = s_config("{\"first_contact_days\": 14,"
                             " \"providers\": {\"p1\": {\"first_contact_days\": 10}},"
                             " \"forces\": {\"gwent\": {\"first_contact_days\": 7}}}");
    assert_int_equal(booking_setting(cfg, "p1", "gwent", "first_contact_days", 99), 7);
    assert_int_equal(booking_setting(cfg, "p1", "dyfed-powys", "first_contact_days", 99), 10);
    assert_int_equal(booking_setting(cfg, "p2", "dyfed-powys", "first_contact_days", 99), 14);
    assert_int_equal(booking_setting(cfg, NULL, NULL, "first_contact_days", 99), 14);
    assert_int_equal(booking_setting(cfg, "p1", "gwent", "capacity", 12), 12);
    config_destroy(&cfg);
}

static void test_gap(void **state) {
    (void)state;
    char err[160];
    config_t *cfg = s_config("{\"providers\": {\"p2\": {\"gap_min_days\": 21,"
                             " \"gap_max_days\": 42}}}");
    // Defaults: groups 4 to 5 weeks (28..35 days) apart, as CARA runs them; telephone 1..42.
    assert_int_equal(booking_check_gap(cfg, "p1", "male_intimate", 100, 128, err, sizeof err), 0);
    assert_int_equal(booking_check_gap(cfg, "p1", "male_intimate", 100, 135, err, sizeof err), 0);
    assert_int_equal(booking_check_gap(cfg, "p1", "male_intimate", 100, 127, err, sizeof err), -1);
    assert_non_null(strstr(err, "28 to 35"));
    assert_int_equal(booking_check_gap(cfg, "p1", "male_intimate", 100, 136, err, sizeof err), -1);
    assert_int_equal(booking_check_gap(cfg, "p1", "telephone", 100, 107, err, sizeof err), 0);
    assert_int_equal(booking_check_gap(cfg, "p1", "telephone", 100, 100, err, sizeof err), -1);
    assert_int_equal(booking_check_gap(cfg, "p1", "telephone", 100, 99, err, sizeof err), -1);
    // Per provider (a wider window agreed with the commissioner).
    assert_int_equal(booking_check_gap(cfg, "p2", "female_intimate", 100, 120, err, sizeof err),
                     -1);
    assert_int_equal(booking_check_gap(cfg, "p2", "female_intimate", 100, 121, err, sizeof err), 0);
    assert_int_equal(booking_check_gap(cfg, "p2", "female_intimate", 100, 142, err, sizeof err), 0);
    config_destroy(&cfg);
}

static void test_statuses_and_reasons(void **state) {
    (void)state;
    assert_true(booking_cohort_type_valid("male_non_intimate"));
    assert_true(booking_cohort_type_valid("telephone"));
    assert_false(booking_cohort_type_valid("mixed"));
    assert_false(booking_cohort_type_valid(""));
    assert_false(booking_cohort_type_valid(NULL));
    assert_true(booking_attendance_status_valid("late_refused_entry"));
    assert_false(booking_attendance_status_valid("late"));
    assert_string_equal(booking_miss_reason("absent"), "did_not_attend");
    assert_string_equal(booking_miss_reason("late_refused_entry"), "late_refused_entry");
    assert_string_equal(booking_miss_reason("excluded"), "excluded");
}

static void test_shortfall_plan(void **state) {
    (void)state;
    // Three male_intimate cases, one female; one male cohort with 2 seats ending on day 50, a
    // male cohort ending on day 90 with 1 seat, and no female cohort.
    booking_demand_t d[] = {
        {"r-late", "male_intimate", 100, 0}, {"r-early", "male_intimate", 60, 0},
        {"r-mid", "male_intimate", 70, 0},   {"r-f", "female_intimate", 100, 0},
        {"r-tight", "male_intimate", 40, 0},
    };
    booking_supply_t s[] = {{"male_intimate", 90, 1}, {"male_intimate", 50, 2}};
    size_t unplaced = booking_shortfall_plan(d, 5, s, 2);
    // Deadline order: r-tight (40) fits nothing; r-early (60) and r-mid (70) take the day-50
    // seats; r-late (100) takes the day-90 seat; r-f has no cohort.
    assert_int_equal(unplaced, 2);
    assert_string_equal(d[0].referral_id, "r-tight");
    assert_false(d[0].placed);
    assert_true(d[1].placed);
    assert_true(d[2].placed);
    // Equal deadlines go by referral id.
    assert_string_equal(d[3].referral_id, "r-f");
    assert_false(d[3].placed);
    assert_string_equal(d[4].referral_id, "r-late");
    assert_true(d[4].placed);
    assert_int_equal(s[0].free_seats + s[1].free_seats, 0);
    // Part B must end strictly before the deadline.
    booking_demand_t edge[] = {{"r-edge", "telephone", 50, 0}};
    booking_supply_t tel[] = {{"telephone", 50, 1}};
    assert_int_equal(booking_shortfall_plan(edge, 1, tel, 1), 1);
    // Nothing to plan.
    assert_int_equal(booking_shortfall_plan(NULL, 0, NULL, 0), 0);
}

// 2025-12-19 is a Friday; 2025-12-25 and 12-26 are bank holidays in the test calendar.
static int32_t s_day(const char *ymd) {
    int32_t d;
    assert_int_equal(time_parse_date(ymd, &d), 0);
    return d;
}

static void test_calendar_default_weekdays(void **state) {
    (void)state;
    config_t *cfg = s_config("{}");
    booking_calendar_t cal;
    char err[200];
    assert_int_equal(booking_calendar_load(cfg, "p1", "gwent", &cal, err, sizeof err), 0);
    assert_true(booking_calendar_working(&cal, s_day("2025-12-19")));  // Friday
    assert_false(booking_calendar_working(&cal, s_day("2025-12-20"))); // Saturday
    assert_false(booking_calendar_working(&cal, s_day("2025-12-21"))); // Sunday
    assert_true(booking_calendar_working(&cal, s_day("2025-12-22")));  // Monday
    // Friday + 1 working day = Monday; + 5 = the next Friday; + 0 = the day itself.
    assert_int_equal(booking_calendar_add(&cal, s_day("2025-12-19"), 1), s_day("2025-12-22"));
    assert_int_equal(booking_calendar_add(&cal, s_day("2025-12-19"), 5), s_day("2025-12-26"));
    assert_int_equal(booking_calendar_add(&cal, s_day("2025-12-19"), 0), s_day("2025-12-19"));
    // From a Saturday, the first working day is Monday.
    assert_int_equal(booking_calendar_add(&cal, s_day("2025-12-20"), 1), s_day("2025-12-22"));
    assert_int_equal(booking_calendar_between(&cal, s_day("2025-12-19"), s_day("2025-12-26")), 5);
    assert_int_equal(booking_calendar_between(&cal, s_day("2025-12-26"), s_day("2025-12-19")), 0);
    // Before 1970 too (negative day numbers): 1969-12-31 was a Wednesday.
    assert_true(booking_calendar_working(&cal, s_day("1969-12-31")));
    assert_false(booking_calendar_working(&cal, s_day("1969-12-28")));
    booking_calendar_clear(&cal);
    assert_false(booking_contact_in_working_days(cfg, "p1", "gwent"));
    config_destroy(&cfg);
}

static void test_calendar_holidays_and_precedence(void **state) {
    (void)state;
    config_t *cfg =
        s_config("{\"bank_holidays\": [\"2025-12-26\", \"2025-12-25\"],"
                 " \"providers\": {\"p1\": {\"first_contact_unit\": \"working_days\"}},"
                 " \"forces\": {\"gwent\": {\"working_weekdays\": [\"mon\", \"tue\", \"wed\","
                 " \"thu\", \"fri\", \"sat\"], \"bank_holidays\": [\"2025-12-25\"]}}}");
    booking_calendar_t cal;
    char err[200];
    // Global holidays, default weekdays: Mon 22 .. Wed 24, then Mon 29 (25, 26 off).
    assert_int_equal(booking_calendar_load(cfg, "p1", "dyfed-powys", &cal, err, sizeof err), 0);
    assert_false(booking_calendar_working(&cal, s_day("2025-12-25")));
    assert_false(booking_calendar_working(&cal, s_day("2025-12-26")));
    assert_int_equal(booking_calendar_add(&cal, s_day("2025-12-19"), 4), s_day("2025-12-29"));
    assert_int_equal(booking_calendar_between(&cal, s_day("2025-12-19"), s_day("2026-01-02")), 8);
    booking_calendar_clear(&cal);
    // Gwent's own: Saturdays work, only Christmas Day off.
    assert_int_equal(booking_calendar_load(cfg, "p1", "gwent", &cal, err, sizeof err), 0);
    assert_true(booking_calendar_working(&cal, s_day("2025-12-20")));
    assert_true(booking_calendar_working(&cal, s_day("2025-12-26")));
    assert_int_equal(booking_calendar_add(&cal, s_day("2025-12-19"), 6), s_day("2025-12-27"));
    booking_calendar_clear(&cal);
    assert_true(booking_contact_in_working_days(cfg, "p1", "gwent"));
    assert_false(booking_contact_in_working_days(cfg, "p2", "gwent"));
    config_destroy(&cfg);
}

static void test_calendar_rejects_bad_settings(void **state) {
    (void)state;
    const char *bad[] = {
        "{\"working_weekdays\": [\"monday\"]}",  "{\"working_weekdays\": []}",
        "{\"working_weekdays\": \"mon\"}",       "{\"bank_holidays\": [\"2025-02-30\"]}",
        "{\"bank_holidays\": [\"25/12/2025\"]}", "{\"bank_holidays\": [20251225]}",
        "{\"bank_holidays\": \"2025-12-25\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        config_t *cfg = s_config(bad[i]);
        booking_calendar_t cal;
        char err[200] = "";
        assert_int_equal(booking_calendar_load(cfg, "p1", NULL, &cal, err, sizeof err), -1);
        assert_true(strlen(err) > 0);
        assert_null(cal.holidays);
        config_destroy(&cfg);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_setting_precedence),
        cmocka_unit_test(test_gap),
        cmocka_unit_test(test_statuses_and_reasons),
        cmocka_unit_test(test_shortfall_plan),
        cmocka_unit_test(test_calendar_default_weekdays),
        cmocka_unit_test(test_calendar_holidays_and_precedence),
        cmocka_unit_test(test_calendar_rejects_bad_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
