// Every eligibility rule both ways, the proposed pathway, and working days.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "cara/timeutil.h"
#include "triage_needs.h"
#include "triage_rules.h"

static Cara__Referral r;
static Cara__Caution c;
static Cara__Offender o;
static Cara__Risk risk;
static int32_t today;
static int64_t now;

static int s_reset(void **state) {
    (void)state;
    cara__referral__init(&r);
    cara__caution__init(&c);
    cara__offender__init(&o);
    cara__risk__init(&risk);
    r.caution = &c;
    r.offender = &o;
    r.risk = &risk;
    r.force = "dyfed-powys";
    r.relationship = "intimate";
    c.given_at = "2025-04-01T10:00:00Z";
    c.offence_category = "common_assault";
    c.compliance_deadline = "2025-07-22";
    o.date_of_birth = "1990-01-01";
    o.sex = "male";
    o.access_needs = "";
    risk.dash_level = "standard";
    risk.previous_da = "no";
    time_parse_date("2025-04-03", &today);
    time_parse_iso("2025-04-03T09:00:00Z", &now);
    return 0;
}

static triage_verdict_t s_check(void) {
    triage_verdict_t v;
    triage_rules_evaluate(&r, today, now, NULL, &v);
    return v;
}

static int s_has(const triage_reason_t *list, int n, const char *code) {
    for (int i = 0; i < n; i++)
        if (strcmp(list[i].code, code) == 0)
            return 1;
    return 0;
}

static void test_clean_referral_passes(void **state) {
    (void)state;
    triage_verdict_t v = s_check();
    assert_int_equal(v.n_fail, 0);
    assert_int_equal(v.n_review, 0);
}

static void test_adult_at_caution_date(void **state) {
    (void)state;
    o.date_of_birth = "2007-04-02"; // 18 the day after the caution
    triage_verdict_t v = s_check();
    assert_true(s_has(v.fail, v.n_fail, "under_18"));
    o.date_of_birth = "2007-04-01"; // 18 on the day
    v = s_check();
    assert_false(s_has(v.fail, v.n_fail, "under_18"));
    // Cautioned at 00:30 BST on the 18th birthday: that day (as intake and national take it),
    // though in UTC it is still the day before.
    c.given_at = "2025-04-01T00:30:00+01:00";
    v = s_check();
    assert_false(s_has(v.fail, v.n_fail, "under_18"));
    c.given_at = "2025-04-01T10:00:00Z";
    o.date_of_birth = "";
    v = s_check();
    assert_true(s_has(v.review, v.n_review, "age_unknown"));
}

static void test_dash_not_high(void **state) {
    (void)state;
    risk.dash_level = "high";
    assert_true(s_has(s_check().fail, s_check().n_fail, "dash_high"));
    risk.dash_level = "medium";
    assert_int_equal(s_check().n_fail, 0);
    risk.dash_level = "";
    assert_true(s_has(s_check().review, s_check().n_review, "dash_unknown"));
}

static void test_no_recent_da(void **state) {
    (void)state;
    risk.previous_da = "yes";
    assert_true(s_has(s_check().fail, s_check().n_fail, "previous_da"));
    risk.previous_da = "not_known";
    triage_verdict_t v = s_check();
    assert_int_equal(v.n_fail, 0);
    assert_true(s_has(v.review, v.n_review, "previous_da_unknown"));
}

static void test_offence_eligible_per_force(void **state) {
    (void)state;
    c.offence_category = "other";
    assert_true(s_has(s_check().review, s_check().n_review, "offence_needs_review"));
    c.offence_category = "stalking";
    assert_true(s_has(s_check().fail, s_check().n_fail, "offence_ineligible"));
    const char *const only[] = {"harassment"};
    triage_force_rules_t force = {only, 1};
    triage_verdict_t v;
    c.offence_category = "common_assault";
    triage_rules_evaluate(&r, today, now, &force, &v);
    assert_true(s_has(v.fail, v.n_fail, "offence_ineligible"));
    c.offence_category = "harassment";
    triage_rules_evaluate(&r, today, now, &force, &v);
    assert_int_equal(v.n_fail, 0);
}

static void test_caution_given_and_deadline_ahead(void **state) {
    (void)state;
    c.given_at = "2025-04-05T10:00:00Z"; // in the future
    assert_true(s_has(s_check().fail, s_check().n_fail, "no_caution"));
    c.given_at = "";
    assert_true(s_has(s_check().fail, s_check().n_fail, "no_caution"));
    c.given_at = "2025-04-01T10:00:00Z";
    c.compliance_deadline = "2025-04-03"; // today: no longer ahead
    assert_true(s_has(s_check().fail, s_check().n_fail, "deadline_passed"));
    c.compliance_deadline = "2025-04-04";
    assert_int_equal(s_check().n_fail, 0);
}

static void test_pathway_proposal(void **state) {
    (void)state;
    char why[64];
    assert_string_equal(triage_rules_pathway(&r, why, sizeof why), "male_intimate");
    o.sex = "female";
    r.relationship = "non_intimate";
    assert_string_equal(triage_rules_pathway(&r, why, sizeof why), "female_non_intimate");
    o.learning_disability = 1;
    assert_string_equal(triage_rules_pathway(&r, why, sizeof why), "telephone");
    assert_string_equal(why, "learning disability");
    o.learning_disability = 0;
    o.interpreter_needed = 1;
    assert_string_equal(triage_rules_pathway(&r, why, sizeof why), "telephone");
    o.interpreter_needed = 0;
    // Free-text access needs alone go to the provider with the case; staff override to
    // telephone (with the reason) when the need calls for it.
    o.access_needs = "mild dyslexia; prefers written material in Welsh";
    assert_string_equal(triage_rules_pathway(&r, why, sizeof why), "female_non_intimate");
    assert_string_equal(why, "");
    o.sex = "";
    assert_null(triage_rules_pathway(&r, why, sizeof why));
    assert_true(triage_rules_pathway_valid("telephone"));
    assert_false(triage_rules_pathway_valid("mixed"));
}

static void test_working_days(void **state) {
    (void)state;
    int64_t fri, mon, wed;
    time_parse_iso("2025-04-04T17:00:00Z", &fri);
    time_parse_iso("2025-04-07T09:00:00Z", &mon);
    time_parse_iso("2025-04-09T09:00:00Z", &wed);
    assert_int_equal(triage_rules_working_days(fri, mon), 1);
    assert_int_equal(triage_rules_working_days(fri, wed), 3);
    assert_int_equal(triage_rules_working_days(mon, mon), 0);
}

static void test_needs_vocabulary(void **state) {
    (void)state;
    const char *areas[] = {"accommodation",
                           "education_employment",
                           "finance",
                           "relationships",
                           "lifestyle",
                           "drugs",
                           "alcohol",
                           "mental_health",
                           "thinking_behaviour",
                           "attitudes"};
    for (size_t i = 0; i < sizeof areas / sizeof *areas; i++)
        assert_true(triage_needs_area_valid(areas[i]));
    assert_false(triage_needs_area_valid("gambling"));
    assert_false(triage_needs_area_valid(""));
    assert_false(triage_needs_area_valid(NULL));
    assert_true(triage_needs_level_valid("none"));
    assert_true(triage_needs_level_valid("high"));
    assert_false(triage_needs_level_valid("severe"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_clean_referral_passes, s_reset),
        cmocka_unit_test_setup(test_adult_at_caution_date, s_reset),
        cmocka_unit_test_setup(test_dash_not_high, s_reset),
        cmocka_unit_test_setup(test_no_recent_da, s_reset),
        cmocka_unit_test_setup(test_offence_eligible_per_force, s_reset),
        cmocka_unit_test_setup(test_caution_given_and_deadline_ahead, s_reset),
        cmocka_unit_test_setup(test_pathway_proposal, s_reset),
        cmocka_unit_test_setup(test_working_days, s_reset),
        cmocka_unit_test_setup(test_needs_vocabulary, s_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
