// The provider's commands through the `cara` client as a child process against real intake,
// triage and booking: cohort create/list/cancel, booking book/cancel/shortfall, contact record,
// victim record/list, attendance record (bulk entries as JSON), cases --status / --at_risk;
// JSON out, exit 0 on OK, 2 on a refused request with the field errors.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cara/timeutil.h"
#include "test_intake_support.h"

static harness_t *h;
static char s_out[65536];  // the last cara command's stdout
static char s_config[400]; // client configuration for provider:p1
static int32_t today;

static int setup(void **state) {
    (void)state;
    h = harness_new("booking_cli");
    if (!h)
        return -1;
    today = (int32_t)(time_now_us() / 1000000 / 86400);
    ti_route(h, 0);
    if (harness_start(h, "intake") != 0 || harness_start(h, "triage") != 0 ||
        harness_start(h, "booking") != 0)
        return -1;
    return harness_client_config(h, "provider", "p1", "booking", 5000, 1, s_config,
                                 sizeof s_config);
}

static int teardown(void **state) {
    (void)state;
    harness_destroy(&h);
    return 0;
}

// The last output as JSON (caller decrefs).
static json_t *s_json(void) {
    json_t *doc = json_loads(s_out, 0, NULL);
    if (!doc)
        fprintf(stderr, "not JSON: %s\n", s_out);
    assert_non_null(doc);
    return doc;
}

static char *s_case(const char *reference) {
    char *id = ti_open_case(h, "dyfed-powys", reference, "", 0);
    assert_non_null(id);
    return id;
}

static void test_provider_commands_through_the_client(void **state) {
    (void)state;
    char *id = s_case("CLI-1");
    char a[16], b[16], bad_b[16];
    time_format_date(today + 7, a, sizeof a);
    time_format_date(today + 35, b, sizeof b);
    time_format_date(today + 9, bad_b, sizeof bad_b);
    // A refused cohort: exit 2, field errors as JSON.
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "cohort", "create",
                                  "--cohort_type", "male_intimate", "--town", "Carmarthen",
                                  "--part_a_date", a, "--part_b_date", bad_b, NULL),
                     2);
    json_t *doc = s_json();
    assert_string_equal(json_string_value(json_object_get(doc, "status")), "INVALID");
    assert_non_null(strstr(s_out, "part_b_date"));
    json_decref(doc);
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "cohort", "create",
                                  "--cohort_type", "male_intimate", "--town", "Carmarthen",
                                  "--facilitators", "F1,F2", "--part_a_date", a, "--part_b_date", b,
                                  "--capacity", "10", NULL),
                     0);
    doc = s_json();
    char *cohort =
        strdup(json_string_value(json_object_get(json_object_get(doc, "result"), "cohort_id")));
    json_decref(doc);
    // Shortfall before booking: the case is placeable, so none.
    assert_int_equal(
        harness_cara(h, s_out, sizeof s_out, "--config", s_config, "booking", "shortfall", NULL),
        0);
    assert_null(strstr(s_out, id));
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "contact", "record",
                                  "--referral_id", id, "--channel", "phone", "--outcome",
                                  "contacted", NULL),
                     0);
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "booking", "book",
                                  "--referral_id", id, NULL),
                     0);
    doc = s_json();
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(doc, "result"), "cohort_id")), cohort);
    json_decref(doc);
    assert_int_equal(
        harness_cara(h, s_out, sizeof s_out, "--config", s_config, "cohort", "list", NULL), 0);
    assert_non_null(strstr(s_out, cohort));
    assert_non_null(strstr(s_out, "\"seats_taken\": 1"));
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "cases", "--status",
                                  "booked", NULL),
                     0);
    assert_non_null(strstr(s_out, id));
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "cases",
                                  "--at_risk", "true", NULL),
                     0);
    assert_null(strstr(s_out, id)); // contacted
    // Victim contact is the victim contact role's; the case worker's key is refused (exit 1).
    char victim_config[400];
    assert_int_equal(harness_client_config(h, "victim_contact", "p1", "booking", 5000, 1,
                                           victim_config, sizeof victim_config),
                     0);
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "victim", "record",
                                  "--referral_id", id, "--kind", "offer", NULL),
                     1);
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", victim_config, "victim",
                                  "record", "--referral_id", id, "--kind", "offer", "--notes",
                                  "offered support", NULL),
                     0);
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", victim_config, "victim",
                                  "list", "--referral_id", id, NULL),
                     0);
    assert_non_null(strstr(s_out, "offered support"));
    assert_non_null(strstr(s_out, "\"consents_to_contact\": true"));
    // Part A held today; bulk entries as JSON.
    const char *values[] = {cohort};
    assert_int_equal(db_exec(harness_db(h, "booking"),
                             "UPDATE cohort SET part_b_date = part_b_date - (part_a_date -"
                             " current_date), part_a_date = current_date WHERE cohort_id = $1",
                             1, values),
                     0);
    char entries[200];
    snprintf(entries, sizeof entries, "[{\"referral_id\": \"%s\", \"status\": \"attended\"}]", id);
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "attendance",
                                  "record", "--cohort_id", cohort, "--part", "A", "--entries",
                                  entries, NULL),
                     0);
    // Cancelling the booking needs a reason.
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "booking", "cancel",
                                  "--referral_id", id, NULL),
                     2);
    assert_non_null(strstr(s_out, "reason"));
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "booking", "cancel",
                                  "--referral_id", id, "--reason", "moved away", NULL),
                     0);
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "cases", "--status",
                                  "open", NULL),
                     0);
    assert_non_null(strstr(s_out, id));
    // The only cohort has started: the open case is now a shortfall.
    assert_int_equal(
        harness_cara(h, s_out, sizeof s_out, "--config", s_config, "booking", "shortfall", NULL),
        0);
    doc = s_json();
    json_t *rows = json_object_get(json_object_get(doc, "result"), "pathways");
    assert_int_equal(json_array_size(rows), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "pathway")),
                        "male_intimate");
    json_decref(doc);
    assert_non_null(strstr(s_out, id));
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "cohort", "cancel",
                                  "--cohort_id", cohort, "--reason", "venue", NULL),
                     0);
    assert_int_equal(
        harness_cara(h, s_out, sizeof s_out, "--config", s_config, "cohort", "list", NULL), 0);
    assert_non_null(strstr(s_out, "\"cancelled\""));
    free(cohort);
    free(id);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_provider_commands_through_the_client),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
