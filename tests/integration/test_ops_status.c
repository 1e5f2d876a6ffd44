// The operator's view: `cara status` over the five running services (healthy -> exit 0, one
// stopped -> exit 1 and that service DOWN), `cara health`, `cara fetch` of a stream as JSON
// lines, and `cara deadletter list` (operators only).
#include <fcntl.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static harness_t *h;
static char s_out[65536]; // the last cara command's stdout
static const char *const s_services[] = {"intake", "triage", "booking", "billing", "national"};

static int setup(void **state) {
    (void)state;
    h = harness_new("ops_status");
    if (!h)
        return -1;
    // Services that need a deployment secret get one (as in deploy/compose).
    harness_config(h, "intake", "pseudonym_secret", "\"ops-status-test-secret-0123456789\"");
    harness_config(h, "national", "pseudonym_secret", "\"ops-status-test-secret-0123456789\"");
    for (int i = 0; i < 5; i++)
        if (harness_start(h, s_services[i]) != 0)
            return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    harness_destroy(&h);
    return 0;
}

static void test_status_fetch_deadletters(void **state) {
    (void)state;
    char ops[400], police[400];
    assert_int_equal(harness_client_config(h, "operator", "ops", NULL, 3000, 1, ops, sizeof ops),
                     0);
    assert_int_equal(
        harness_client_config(h, "police", "dyfed-powys", NULL, 3000, 1, police, sizeof police), 0);

    // All five up: exit 0, every one healthy, with versions, schema versions and consumers.
    assert_int_equal(
        harness_cara(h, s_out, sizeof s_out, "--config", ops, "status", "--json", NULL), 0);
    json_t *all = json_loads(s_out, 0, NULL);
    assert_non_null(all);
    assert_int_equal(json_array_size(all), 5);
    size_t i;
    json_t *svc;
    json_array_foreach(all, i, svc) {
        assert_string_equal(json_string_value(json_object_get(svc, "service")), s_services[i]);
        assert_true(json_is_true(json_object_get(svc, "up")));
        assert_true(json_is_true(json_object_get(svc, "healthy")));
        assert_true(json_is_true(json_object_get(svc, "db_ok")));
        assert_true(json_integer_value(json_object_get(svc, "schema_version")) > 0);
        assert_string_equal(json_string_value(json_object_get(svc, "identity")), "operator:ops");
    }
    // triage consumes intake; national consumes intake, triage and booking (DESIGN.md §1).
    json_t *triage_consumers = json_object_get(json_array_get(all, 1), "consumers");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(triage_consumers, 0), "stream")),
        "intake");
    assert_non_null(json_object_get(json_array_get(triage_consumers, 0), "lag"));
    assert_int_equal(json_array_size(json_object_get(json_array_get(all, 4), "consumers")), 3);
    json_decref(all);

    // The table form says so too.
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", ops, "status", NULL), 0);
    assert_non_null(strstr(s_out, "all healthy"));
    assert_non_null(strstr(s_out, "<- intake"));

    // One service health on its own.
    assert_int_equal(
        harness_cara(h, s_out, sizeof s_out, "--config", ops, "health", "booking", NULL), 0);
    json_t *health = json_loads(s_out, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(health, "service")), "booking");
    json_decref(health);

    // The billing stream as JSON lines: empty now, exit 0; police may not read it.
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", ops, "fetch", "billing",
                                  "--after", "0", NULL),
                     0);
    assert_string_equal(s_out, "");
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", police, "fetch", "billing",
                                  "--after", "0", NULL),
                     1);
    assert_non_null(strstr(s_out, "FORBIDDEN"));

    // A referral from Dyfed-Powys, then the intake stream as the operator sees it: one JSON
    // line per event, the payload decoded by its type.
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", police, "referral", "submit",
                                  "examples/referral.json", NULL),
                     0);
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", ops, "fetch", "intake",
                                  "--after", "0", "--max", "1", NULL),
                     0);
    json_error_t jerr;
    json_t *line = json_loads(s_out, 0, &jerr); // exactly one line: --max 1
    assert_non_null(line);
    assert_int_equal(json_integer_value(json_object_get(line, "seq")), 1);
    assert_string_equal(json_string_value(json_object_get(line, "type")), "cara.ReferralSubmitted");
    json_t *referral = json_object_get(json_object_get(line, "payload"), "referral");
    assert_string_equal(json_string_value(json_object_get(referral, "force")), "dyfed-powys");
    json_decref(line);

    // Dead letters: none yet; only operators may list them.
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", ops, "deadletter", "list",
                                  "--service", "triage", NULL),
                     0);
    json_t *list = json_loads(s_out, 0, NULL);
    assert_non_null(list);
    assert_string_equal(json_string_value(json_object_get(list, "status")), "OK");
    json_decref(list);
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", police, "deadletter", "list",
                                  "--service", "triage", NULL),
                     1);
    assert_non_null(strstr(s_out, "FORBIDDEN"));

    // Stop billing: status exits 1 and shows billing down, the others still healthy.
    assert_int_equal(harness_stop(h, "billing", SIGTERM), 0);
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", ops, "status", "--json",
                                  "--timeout", "500", NULL),
                     1);
    all = json_loads(s_out, 0, NULL);
    assert_non_null(all);
    json_array_foreach(all, i, svc) {
        int is_billing = strcmp(s_services[i], "billing") == 0;
        assert_int_equal(json_is_true(json_object_get(svc, "up")), !is_billing);
        assert_int_equal(json_is_true(json_object_get(svc, "healthy")), !is_billing);
    }
    json_decref(all);
    assert_int_equal(
        harness_cara(h, s_out, sizeof s_out, "--config", ops, "status", "--timeout", "500", NULL),
        1);
    assert_non_null(strstr(s_out, "DOWN"));
    assert_non_null(strstr(s_out, "UNHEALTHY"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_fetch_deadletters),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
