// Triage staff through the `cara` client as a child process against real intake and triage:
// cara triage show | needs (JSON document; --referral_id overrides the file's) | decide (refused
// override without a reason, then accepted) | overdue; JSON out, exit 0 on OK and 2 on a refused
// request with the field errors.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_triage_support.h"

static harness_t *h;
static char s_out[65536];  // the last cara command's stdout
static char s_config[400]; // client configuration for triage:diversion

static int setup(void **state) {
    (void)state;
    h = harness_new("triage_cli");
    if (!h)
        return -1;
    harness_config(
        h, "triage", "routing",
        "[{\"force\": \"dyfed-powys\", \"provider\": \"p1\", \"from\": \"2020-01-01\"}]");
    harness_config(h, "triage", "auto_triage", "false");
    if (harness_start(h, "intake") != 0 || harness_start(h, "triage") != 0)
        return -1;
    return harness_client_config(h, "triage", "diversion", "triage", 5000, 1, s_config,
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

// The string at a path like "result.cases.0.status" of doc ("" if absent).
static const char *s_at(json_t *doc, const char *path) {
    char copy[200], *save = NULL;
    snprintf(copy, sizeof copy, "%s", path);
    json_t *v = doc;
    for (char *tok = strtok_r(copy, ".", &save); tok && v; tok = strtok_r(NULL, ".", &save))
        v = json_is_array(v) ? json_array_get(v, (size_t)atoi(tok)) : json_object_get(v, tok);
    return json_is_string(v) ? json_string_value(v) : "";
}

static void test_staff_commands_through_the_client(void **state) {
    (void)state;
    char *id = tt_submit(h, "dyfed-powys", "CLI-1", NULL);
    tt_wait_case(h, id, "awaiting_decision/-/-");

    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "triage", "show",
                                  "--referral_id", id, NULL),
                     0);
    json_t *doc = s_json();
    assert_string_equal(s_at(doc, "status"), "OK");
    assert_string_equal(s_at(doc, "result.cases.0.status"), "awaiting_decision");
    assert_string_equal(s_at(doc, "result.cases.0.proposed_pathway"), "male_intimate");
    json_decref(doc);

    // The needs file is a copy made for another person's case: --referral_id wins, so the
    // needs are recorded on the case named on the command line, never on the file's.
    char *other = tt_submit(h, "dyfed-powys", "CLI-0", NULL);
    tt_wait_case(h, other, "awaiting_decision/-/-");
    char needs_file[400];
    snprintf(needs_file, sizeof needs_file, "%s/needs.json", harness_dir(h));
    json_t *needs = json_pack("{s:s, s:[{s:s, s:s}], s:[{s:s, s:s}]}", "referral_id", other,
                              "needs", "area", "drugs", "level", "medium", "onward", "service",
                              "Kaleidoscope", "date", "2026-02-02");
    assert_int_equal(json_dump_file(needs, needs_file, 0), 0);
    json_decref(needs);
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "triage", "needs",
                                  "--referral_id", id, "--json", needs_file, NULL),
                     0);
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "triage", "show",
                                  "--referral_id", other, NULL),
                     0);
    doc = s_json();
    assert_string_equal(s_at(doc, "result.cases.0.referral_id"), other);
    assert_string_equal(s_at(doc, "result.cases.0.needs.0.area"), "");
    json_decref(doc);
    free(other);

    // An override without a reason: exit 2 with the field named.
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "triage", "decide",
                                  "--referral_id", id, "--decision", "approve", "--pathway",
                                  "telephone", NULL),
                     2);
    doc = s_json();
    assert_string_equal(s_at(doc, "status"), "INVALID");
    assert_string_equal(s_at(doc, "errors.0.field"), "reason");
    json_decref(doc);
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "triage", "decide",
                                  "--referral_id", id, "--decision", "approve", "--pathway",
                                  "telephone", "--reason", "works nights", NULL),
                     0);
    tt_wait_case(h, id, "triaged/telephone/p1");

    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "triage", "show",
                                  "--referral_id", id, NULL),
                     0);
    doc = s_json();
    assert_string_equal(s_at(doc, "result.cases.0.decided_by"), "triage:diversion");
    assert_string_equal(s_at(doc, "result.cases.0.pathway_reason"), "works nights");
    assert_string_equal(s_at(doc, "result.cases.0.needs.0.area"), "drugs");
    assert_string_equal(s_at(doc, "result.cases.0.onward.0.service"), "Kaleidoscope");
    json_decref(doc);

    // Overdue: a case received a week ago and still waiting.
    char *late = tt_submit(h, "dyfed-powys", "CLI-2", NULL);
    tt_wait_case(h, late, "awaiting_decision/-/-");
    char sql[200];
    snprintf(sql, sizeof sql,
             "UPDATE triage_case SET received_at = now() - interval '7 days' WHERE referral_id ="
             " '%s'",
             late);
    assert_int_equal(db_exec(harness_db(h, "triage"), sql, 0, NULL), 0);
    assert_int_equal(
        harness_cara(h, s_out, sizeof s_out, "--config", s_config, "triage", "overdue", NULL), 0);
    doc = s_json();
    assert_string_equal(s_at(doc, "result.cases.0.referral_id"), late);
    assert_null(json_array_get(json_object_get(json_object_get(doc, "result"), "cases"), 1));
    json_decref(doc);

    // Unknown case: not found, exit 1.
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "triage", "show",
                                  "--referral_id", "00000000-0000-4000-8000-000000000000", NULL),
                     1);
    free(late);
    free(id);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_staff_commands_through_the_client),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
