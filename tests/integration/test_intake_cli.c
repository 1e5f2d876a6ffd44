// The police integration commands, run as a child process against a real intake:
// `cara referral submit examples/referral.json` (exit 0), a document intake refuses (exit 2 with
// the errors as JSON), a document that is not valid JSON or has an unknown field (exit 2),
// show, amend, withdraw, and `cara outcomes` printing only this force's outcomes as JSON lines.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cara/uuid.h"
#include "harness.h"

static harness_t *h;
static char s_out[65536];    // the last cara command's stdout
static char s_config[400];   // client configuration for police:dyfed-powys
static char s_config_b[400]; // and for police:gwent

static int setup(void **state) {
    (void)state;
    h = harness_new("intake_cli");
    if (!h || harness_start(h, "intake") != 0)
        return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    harness_destroy(&h);
    return 0;
}

// Writes text to a file in the harness dir; returns its path (static buffer).
static const char *s_file(const char *name, const char *text) {
    static char path[400];
    snprintf(path, sizeof path, "%s/%s", harness_dir(h), name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

// The sample with one field replaced (and, but for the amendment, the caution reference set to
// name), written to a file. Returns its path.
static const char *s_sample_with(const char *name, const char *object, const char *field,
                                 const char *value) {
    json_t *doc = json_load_file("examples/referral.json", 0, NULL);
    assert_non_null(doc);
    json_t *target = object ? json_object_get(doc, object) : doc;
    json_object_set_new(target, field, json_string(value));
    // A fresh caution reference, or it would conflict with the sample already submitted.
    if (strcmp(name, "amended.json") != 0)
        json_object_set_new(doc, "caution_reference", json_string(name));
    char *text = json_dumps(doc, JSON_INDENT(2));
    const char *path = s_file(name, text);
    free(text);
    json_decref(doc);
    return path;
}

static void test_referral_lifecycle_through_the_client(void **state) {
    (void)state;
    assert_int_equal(harness_client_config(h, "police", "dyfed-powys", "intake", 5000, 1, s_config,
                                           sizeof s_config),
                     0);
    assert_int_equal(harness_client_config(h, "police", "gwent", "intake", 5000, 1, s_config_b,
                                           sizeof s_config_b),
                     0);

    // The sample goes in.
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "referral",
                                  "submit", "examples/referral.json", NULL),
                     0);
    char id[UUID_STR_LEN] = "";
    assert_int_equal(sscanf(s_out, "referral %36s accepted; compliance deadline 2025-07-04", id),
                     1);
    assert_true(uuid_valid(id));
    // Again, as JSON: the first answer, marked as a duplicate.
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "referral",
                                  "submit", "examples/referral.json", "--json", NULL),
                     0);
    json_t *doc = json_loads(s_out, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "status")), "OK");
    json_t *result = json_object_get(doc, "result");
    assert_string_equal(json_string_value(json_object_get(result, "referral_id")), id);
    assert_true(json_is_true(json_object_get(result, "duplicate")));
    json_decref(doc);

    // Show.
    assert_int_equal(
        harness_cara(h, s_out, sizeof s_out, "--config", s_config, "referral", "show", id, NULL),
        0);
    doc = json_loads(s_out, 0, NULL);
    assert_non_null(doc);
    result = json_object_get(doc, "result");
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(result, "referral"), "victim"), "name")),
        "Sian Pryce");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(result, "outcome"), "status")),
        "received");
    json_decref(doc);

    // Amend: a new phone number.
    const char *amended = s_sample_with("amended.json", "offender", "phone", "07700 900888");
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "referral", "amend",
                                  id, amended, "--reason", "offender gave a new number", NULL),
                     0);
    assert_non_null(strstr(s_out, "offender.phone"));
    assert_non_null(strstr(s_out, "07700 900888"));
    // Withdraw, then outcomes: received, then withdrawn.
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "referral",
                                  "withdraw", id, "--reason-code", "error", "--reason",
                                  "sent in error", NULL),
                     0);
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "outcomes",
                                  "--after", "0", NULL),
                     0);
    int lines = 0, withdrawn = 0;
    for (char *line = strtok(s_out, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *ev = json_loads(line, 0, NULL);
        assert_non_null(ev);
        json_t *outcome = json_object_get(ev, "outcome");
        assert_non_null(outcome);
        assert_string_equal(json_string_value(json_object_get(outcome, "force")), "dyfed-powys");
        withdrawn |=
            strcmp(json_string_value(json_object_get(outcome, "status")), "withdrawn") == 0;
        lines++;
        json_decref(ev);
    }
    assert_int_equal(lines, 2);
    assert_true(withdrawn);
    // Gwent sees none of Dyfed-Powys's outcomes, and cannot read its referral.
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config_b, "outcomes", NULL),
                     0);
    assert_string_equal(s_out, "");
    assert_int_equal(
        harness_cara(h, s_out, sizeof s_out, "--config", s_config_b, "referral", "show", id, NULL),
        1);
}

static void test_invalid_documents_exit_2_with_errors(void **state) {
    (void)state;
    // Refused by intake: every error as JSON.
    const char *bad = s_sample_with("bad-dash.json", "risk", "dash_level", "extreme");
    assert_int_equal(
        harness_cara(h, s_out, sizeof s_out, "--config", s_config, "referral", "submit", bad, NULL),
        2);
    json_t *doc = json_loads(s_out, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "status")), "INVALID");
    json_t *err = json_array_get(json_object_get(doc, "errors"), 0);
    assert_string_equal(json_string_value(json_object_get(err, "field")), "risk.dash_level");
    json_decref(doc);
    // The force can review what was refused, with the errors.
    assert_int_equal(
        harness_cara(h, s_out, sizeof s_out, "--config", s_config, "referral", "rejected", NULL),
        0);
    assert_non_null(strstr(s_out, "bad-dash.json"));
    assert_non_null(strstr(s_out, "risk.dash_level"));
    // An unknown field: refused before sending, with the field named.
    const char *typo = s_sample_with("typo.json", "offender", "nmae", "X");
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "referral",
                                  "submit", typo, NULL),
                     2);
    assert_non_null(strstr(s_out, "nmae"));
    // Not JSON at all.
    const char *broken = s_file("broken.json", "{\"force\": \"dyfed-powys\",");
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "referral",
                                  "submit", broken, NULL),
                     2);
    doc = json_loads(s_out, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "status")), "INVALID");
    json_decref(doc);
    // A missing file is not a validation error.
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "referral",
                                  "submit", "/nonexistent/referral.json", NULL),
                     1);
    // Wrong force for the key: refused (1, not a validation error).
    const char *other = s_sample_with("other-force.json", NULL, "force", "gwent");
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "referral",
                                  "submit", other, NULL),
                     1);
    assert_non_null(strstr(s_out, "FORBIDDEN"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_referral_lifecycle_through_the_client),
        cmocka_unit_test(test_invalid_documents_exit_2_with_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
