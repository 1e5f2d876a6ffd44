// national end to end through the real chain police -> intake -> triage -> booking, with
// national consuming the three streams as service:national: twelve referrals contacted,
// booked, attended and completed, one withdrawn; the return fetched with the `cara` client as
// hampton_trust (`cara national export --period ... --format json|csv|html`) counts them, hides
// the single withdrawal, carries the pseudonym and age band intake derived, and nothing
// personal from the sample referral reaches the national schema.
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "booking.pb-c.h"
#include "cara/timeutil.h"
#include "test_intake_support.h"
#include "test_national_support.h"

#define SECRET "a-test-deployment-secret-0123456789"
#define CASES 12

static harness_t *h;
static int32_t today;
static char s_out[1 << 20];
static char s_config[400];

static int setup(void **state) {
    (void)state;
    h = harness_new("national_flow");
    if (!h)
        return -1;
    today = (int32_t)(time_now_us() / 1000000 / 86400);
    harness_config(h, "intake", "pseudonym_secret", "\"" SECRET "\"");
    harness_config(h, "national", "pseudonym_secret", "\"" SECRET "\"");
    harness_config(h, "national", "consumer", "{\"poll_ms\": 200}");
    ti_route(h, 0);
    return harness_start(h, "intake") == 0 && harness_start(h, "triage") == 0 &&
                   harness_start(h, "booking") == 0 && harness_start(h, "national") == 0
               ? 0
               : -1;
}

static int teardown(void **state) {
    (void)state;
    harness_destroy(&h);
    return 0;
}

static client_t *s_p1(void) {
    return harness_client(h, "booking", "provider", "p1");
}

static void s_ok(Cara__Reply *reply) {
    assert_non_null(reply);
    if (reply->status != CARA__REPLY__STATUS__OK)
        ti_print_errors(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    cara__reply__free_unpacked(reply, NULL);
}

// A referral cautioned two days ago, through to an open provider case. Returns its id.
static char *s_case(int n) {
    char ref[32], when[40], sql[200];
    snprintf(ref, sizeof ref, "NF-%d-%d", getpid(), n);
    Cara__Referral *r = ti_referral("dyfed-powys", ref);
    assert_non_null(r);
    ti_set(&r->caution->given_at,
           time_format_iso(time_now_us() - 2LL * 86400 * 1000000, when, sizeof when));
    Cara__Reply *reply = ti_submit(harness_client(h, "intake", "police", "dyfed-powys"), r);
    Cara__ReferralAccepted *ok = ti_accepted(reply);
    if (!ok)
        ti_print_errors(reply);
    assert_non_null(ok);
    char *id = strdup(ok->referral_id);
    cara__referral_accepted__free_unpacked(ok, NULL);
    cara__reply__free_unpacked(reply, NULL);
    cara__referral__free_unpacked(r, NULL);
    snprintf(sql, sizeof sql, "SELECT status FROM provider_case WHERE referral_id = '%s'", id);
    assert_int_equal(harness_wait_value(h, "booking", sql, "open", 15000), 0);
    return id;
}

// Moves the cohort so that the part is held today, and records everyone attending it.
static void s_attend_all(const char *cohort, const char *part, char **ids, int n) {
    const char *values[] = {cohort};
    assert_int_equal(
        db_exec(harness_db(h, "booking"),
                strcmp(part, "A") == 0
                    ? "UPDATE cohort SET part_b_date = part_b_date - (part_a_date - current_date),"
                      " part_a_date = current_date WHERE cohort_id = $1"
                    : "UPDATE cohort SET part_a_date = part_a_date - (part_b_date - current_date),"
                      " part_b_date = current_date WHERE cohort_id = $1",
                1, values),
        0);
    Cara__AttendanceEntry e[CASES], *entries[CASES];
    for (int i = 0; i < n; i++) {
        cara__attendance_entry__init(&e[i]);
        e[i].referral_id = ids[i];
        e[i].status = "attended";
        entries[i] = &e[i];
    }
    Cara__RecordAttendance cmd = CARA__RECORD_ATTENDANCE__INIT;
    cmd.cohort_id = (char *)cohort;
    cmd.part = (char *)part;
    cmd.entries = entries;
    cmd.n_entries = (size_t)n;
    s_ok(harness_call(s_p1(), &cmd.base));
}

static void test_the_chain_reaches_the_return(void **state) {
    (void)state;
    char *ids[CASES];
    for (int i = 0; i < CASES; i++) {
        ids[i] = s_case(i);
        Cara__RecordContact contact = CARA__RECORD_CONTACT__INIT;
        contact.referral_id = ids[i];
        contact.channel = "phone";
        contact.outcome = "contacted";
        s_ok(harness_call(s_p1(), &contact.base));
    }
    char da[16], db_[16];
    time_format_date(today + 7, da, sizeof da);
    time_format_date(today + 35, db_, sizeof db_);
    Cara__CreateCohort cc = CARA__CREATE_COHORT__INIT;
    cc.cohort_type = "male_intimate";
    cc.town = "Carmarthen";
    cc.capacity = 12;
    cc.part_a_date = da;
    cc.part_b_date = db_;
    Cara__Reply *reply = harness_call(s_p1(), &cc.base);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    Cara__CohortRef *cref = cara__cohort_ref__unpack(NULL, reply->payload.len, reply->payload.data);
    char *cohort = strdup(cref->cohort_id);
    cara__cohort_ref__free_unpacked(cref, NULL);
    cara__reply__free_unpacked(reply, NULL);
    for (int i = 0; i < CASES; i++) {
        Cara__BookSeat book = CARA__BOOK_SEAT__INIT;
        book.referral_id = ids[i];
        book.cohort_id = cohort;
        s_ok(harness_call(s_p1(), &book.base));
    }
    s_attend_all(cohort, "A", ids, CASES);
    s_attend_all(cohort, "B", ids, CASES);
    // One more referral, withdrawn by the force.
    char *gone = s_case(99);
    Cara__WithdrawReferral w = CARA__WITHDRAW_REFERRAL__INIT;
    w.referral_id = gone;
    w.reason_code = "error";
    w.reason = "Gareth Llewellyn Pryce was cautioned in error";
    s_ok(harness_call(harness_client(h, "intake", "police", "dyfed-powys"), &w.base));

    assert_int_equal(harness_wait_value(h, "national",
                                        "SELECT count(*) FILTER (WHERE completed_at IS NOT NULL)"
                                        " || '/' || count(*) FILTER (WHERE withdrawn) || '/' ||"
                                        " count(*) FROM case_fact",
                                        "12/1/13", 30000),
                     0);
    assert_int_equal(harness_wait_value(h, "national",
                                        "SELECT count(*) FROM cohort_fact WHERE participants = 12"
                                        " AND capacity = 12",
                                        "1", 30000),
                     0);
    // Intake derived the pseudonym and the age at caution for national: the same person each
    // time (the sample), so eleven repeats of one.
    char *v = harness_value(h, "national",
                            "SELECT count(DISTINCT pseudonym) || '/' || min(age_band) || '/' ||"
                            " count(*) FILTER (WHERE first_contact_at IS NOT NULL AND booked_at IS"
                            " NOT NULL AND started_on IS NOT NULL) FROM case_fact");
    assert_string_equal(v, "1/35-44/12");
    free(v);
    assert_int_equal(national_pii_hits(h), 0);
    // The return through the client, as Hampton Trust.
    int y;
    unsigned m, d;
    time_civil_from_days(today - 2, &y, &m, &d);
    char period[16];
    snprintf(period, sizeof period, "%04dQ%u", y, (m - 1) / 3 + 1);
    assert_int_equal(harness_client_config(h, "hampton_trust", "ht", "national", 30000, 1, s_config,
                                           sizeof s_config),
                     0);
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "national",
                                  "export", "--period", period, "--format", "json", NULL),
                     0);
    json_t *doc = json_loads(s_out, 0, NULL);
    assert_non_null(doc);
    json_t *totals = json_object_get(doc, "totals");
    assert_int_equal(json_integer_value(json_object_get(totals, "referred")), 13);
    json_t *outcome = json_object_get(totals, "outcome");
    assert_int_equal(json_integer_value(json_object_get(outcome, "completed")), 12);
    assert_true(json_is_null(json_object_get(outcome, "withdrawn"))); // a count of 1
    assert_true(json_is_null(json_object_get(outcome, "in_progress")) ||
                json_integer_value(json_object_get(outcome, "in_progress")) == 0);
    // One first referral and twelve repeats: the 1 is withheld, and so is the 12 that would
    // give it away (13 - 12).
    json_t *repeat = json_object_get(totals, "repeat");
    assert_true(json_is_null(json_object_get(repeat, "first")));
    assert_true(json_is_null(json_object_get(repeat, "repeat")));
    if (getenv("CARA_NATIONAL_DUMP"))
        json_dump_file(doc, getenv("CARA_NATIONAL_DUMP"), JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_t *cohorts = json_object_get(json_object_get(doc, "cohorts"), "totals");
    assert_int_equal(json_integer_value(json_object_get(cohorts, "cohorts_delivered")), 1);
    assert_true(fabs(json_real_value(json_object_get(cohorts, "fill_rate_percent")) - 100.0) <
                0.01);
    json_decref(doc);
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "national",
                                  "export", "--period", period, "--format", "csv", NULL),
                     0);
    assert_int_equal(strncmp(s_out, "schema_version,period,table,label,measure,value\n", 48), 0);
    assert_non_null(strstr(s_out, ",totals,all,outcome.completed,12\n"));
    assert_non_null(strstr(s_out, ",totals,all,outcome.withdrawn,\n"));
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "national",
                                  "export", "--period", period, "--format", "html", NULL),
                     0);
    assert_int_equal(strncmp(s_out, "<!DOCTYPE html>", 15), 0);
    assert_null(strstr(s_out, "Pryce"));
    // A bad period is a field error (exit 2), not a document.
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "national",
                                  "export", "--period", "2025Q9", NULL),
                     2);
    for (int i = 0; i < CASES; i++)
        free(ids[i]);
    free(gone);
    free(cohort);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_chain_reaches_the_return),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
