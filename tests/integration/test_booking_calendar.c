// The working-day calendar through the real chain (police -> intake -> triage -> booking): a
// force whose first-contact target is in working days (its own weekdays and bank holidays) gets
// a first-contact due date that skips weekends and holidays, a force without one keeps calendar
// days, and a provider counting its at-risk margin in working days lists a case due after its
// bank holidays that a calendar-day margin would leave out.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "booking.pb-c.h"
#include "cara/timeutil.h"
#include "test_intake_support.h"

static harness_t *h;
static int32_t today, caution;
static int s_ref = 0;

static int s_weekday(int32_t day) {
    return (int)(((int64_t)day % 7 + 7 + 4) % 7); // 0 = Sunday; 1970-01-01 was a Thursday
}

static int setup(void **state) {
    (void)state;
    h = harness_new("booking_calendar");
    if (!h)
        return -1;
    today = (int32_t)(time_now_us() / 1000000 / 86400);
    caution = today - 2;
    ti_route(h, 1);
    // Dyfed-Powys: 10 working days, Monday to Friday, the first two weekdays after the caution
    // are bank holidays. p1: every day works but the next two (its own holidays), 2 days'
    // margin, in working days.
    char h1[16], h2[16], p1[16], p2[16], json[600];
    int32_t d = caution, found = 0, hol[2];
    while (found < 2) {
        d++;
        if (s_weekday(d) != 0 && s_weekday(d) != 6)
            hol[found++] = d;
    }
    time_format_date(hol[0], h1, sizeof h1);
    time_format_date(hol[1], h2, sizeof h2);
    time_format_date(today + 1, p1, sizeof p1);
    time_format_date(today + 2, p2, sizeof p2);
    snprintf(json, sizeof json,
             "{\"dyfed-powys\": {\"first_contact_days\": 10, \"first_contact_unit\":"
             " \"working_days\", \"working_weekdays\": [\"mon\", \"tue\", \"wed\", \"thu\","
             " \"fri\"], \"bank_holidays\": [\"%s\", \"%s\"]}}",
             h1, h2);
    harness_config(h, "booking", "forces", json);
    snprintf(json, sizeof json,
             "{\"p1\": {\"first_contact_unit\": \"working_days\", \"contact_at_risk_days\": 2,"
             " \"working_weekdays\": [\"sun\", \"mon\", \"tue\", \"wed\", \"thu\", \"fri\","
             " \"sat\"], \"bank_holidays\": [\"%s\", \"%s\"]}}",
             p1, p2);
    harness_config(h, "booking", "providers", json);
    return harness_start(h, "intake") == 0 && harness_start(h, "triage") == 0 &&
                   harness_start(h, "booking") == 0
               ? 0
               : -1;
}

static int teardown(void **state) {
    (void)state;
    harness_destroy(&h);
    return 0;
}

// A referral cautioned two days ago, through to an open provider case.
static char *s_case(const char *force) {
    char ref[32];
    snprintf(ref, sizeof ref, "CAL-%d-%d", getpid(), ++s_ref);
    char *id = ti_open_case(h, force, ref, "", 0);
    assert_non_null(id);
    return id;
}

static char *s_due(const char *id) {
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT first_contact_due::text FROM provider_case WHERE referral_id = '%s'", id);
    char *v = harness_value(h, "booking", sql);
    assert_non_null(v);
    return v;
}

static void test_first_contact_due_in_working_days(void **state) {
    (void)state;
    char *dp = s_case("dyfed-powys"), *gw = s_case("gwent");
    // Counted here independently: 10 weekdays after the caution, less the two holidays.
    int32_t d = caution;
    for (int n = 0, skipped = 0; n < 10;) {
        d++;
        int weekday = s_weekday(d);
        if (weekday == 0 || weekday == 6)
            continue;
        if (skipped < 2) {
            skipped++;
            continue;
        }
        n++;
    }
    char want[16], plain[16];
    time_format_date(d, want, sizeof want);
    time_format_date(caution + 14, plain, sizeof plain); // gwent: the default, calendar days
    char *got = s_due(dp);
    assert_string_equal(got, want);
    free(got);
    got = s_due(gw);
    assert_string_equal(got, plain);
    free(got);
    // The provider's case list shows the same date.
    Cara__ListCases list = CARA__LIST_CASES__INIT;
    Cara__Reply *reply = harness_call(harness_client(h, "booking", "provider", "p1"), &list.base);
    assert_non_null(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    Cara__CaseList *cases = cara__case_list__unpack(NULL, reply->payload.len, reply->payload.data);
    cara__reply__free_unpacked(reply, NULL);
    assert_non_null(cases);
    int seen = 0;
    for (size_t i = 0; i < cases->n_cases; i++)
        if (strcmp(cases->cases[i]->referral_id, dp) == 0) {
            assert_string_equal(cases->cases[i]->first_contact_due, want);
            seen++;
        }
    assert_int_equal(seen, 1);
    cara__case_list__free_unpacked(cases, NULL);
    free(dp);
    free(gw);
}

static void test_at_risk_margin_in_working_days(void **state) {
    (void)state;
    // Two cases of p1, due 4 and 5 days from today. p1's next two days are holidays, so two
    // working days from today is today + 4: the first is at risk, the second not (and with a
    // calendar-day margin of 2 neither would be).
    char *in = s_case("dyfed-powys"), *out = s_case("dyfed-powys");
    char d4[16], d5[16];
    time_format_date(today + 4, d4, sizeof d4);
    time_format_date(today + 5, d5, sizeof d5);
    const char *v1[] = {in, d4}, *v2[] = {out, d5};
    const char *sql =
        "UPDATE provider_case SET first_contact_due = $2::date WHERE referral_id = $1";
    assert_int_equal(db_exec(harness_db(h, "booking"), sql, 2, v1), 0);
    assert_int_equal(db_exec(harness_db(h, "booking"), sql, 2, v2), 0);
    Cara__ListCases list = CARA__LIST_CASES__INIT;
    list.at_risk = 1;
    Cara__Reply *reply = harness_call(harness_client(h, "booking", "provider", "p1"), &list.base);
    assert_non_null(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    Cara__CaseList *cases = cara__case_list__unpack(NULL, reply->payload.len, reply->payload.data);
    cara__reply__free_unpacked(reply, NULL);
    assert_non_null(cases);
    int got_in = 0, got_out = 0;
    for (size_t i = 0; i < cases->n_cases; i++) {
        got_in += strcmp(cases->cases[i]->referral_id, in) == 0;
        got_out += strcmp(cases->cases[i]->referral_id, out) == 0;
    }
    assert_int_equal(got_in, 1);
    assert_int_equal(got_out, 0);
    cara__case_list__free_unpacked(cases, NULL);
    free(in);
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_contact_due_in_working_days),
        cmocka_unit_test(test_at_risk_margin_in_working_days),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
