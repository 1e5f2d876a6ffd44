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
    harness_config(
        h, "triage", "routing",
        "[{\"force\": \"dyfed-powys\", \"provider\": \"p1\", \"from\": \"2020-01-01\"}]");
    if (harness_start(h, "intake") != 0 || harness_start(h, "triage") != 0 ||
        harness_start(h, "booking") != 0)
        return -1;
    harness_client(h, "booking", "provider", "p1"); // admits the key to the ring
    const keypair_t *kp = harness_identity_keys(h, "provider", "p1");
    char key_file[400];
    snprintf(key_file, sizeof key_file, "%s/cli-p1.key", harness_dir(h));
    if (!kp || keys_save(kp, key_file) != 0)
        return -1;
    snprintf(s_config, sizeof s_config, "%s/cli-p1.json", harness_dir(h));
    json_t *doc =
        json_pack("{s:{s:s, s:s}, s:{s:{s:s}}, s:i, s:i}", "keys", "secret_file", key_file,
                  "keyring", harness_keyring_path(h), "services", "booking", "router",
                  harness_endpoint(h, "booking"), "timeout_ms", 5000, "retries", 1);
    int rc = doc && json_dump_file(doc, s_config, JSON_INDENT(2)) == 0 ? 0 : -1;
    json_decref(doc);
    return rc;
}

static int teardown(void **state) {
    (void)state;
    harness_destroy(&h);
    return 0;
}

// Runs bin/cara --config s_config ARGS... (NULL-terminated). Returns the exit code; stdout in
// s_out.
static int s_cara(const char *arg, ...) {
    char bin[300], out_path[400];
    const char *bindir = getenv("CARA_BIN_DIR");
    snprintf(bin, sizeof bin, "%s/cara", bindir ? bindir : "bin");
    snprintf(out_path, sizeof out_path, "%s/cara.stdout", harness_dir(h));
    const char *argv[32] = {bin, "--config", s_config};
    int n = 3;
    va_list ap;
    va_start(ap, arg);
    for (const char *a = arg; a && n < 31; a = va_arg(ap, const char *))
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || dup2(fd, 1) < 0)
            _exit(126);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    FILE *f = fopen(out_path, "r");
    assert_non_null(f);
    size_t len = fread(s_out, 1, sizeof s_out - 1, f);
    s_out[len] = '\0';
    fclose(f);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
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
    char when[40];
    Cara__Referral *r = ti_referral("dyfed-powys", reference);
    ti_set(&r->caution->given_at,
           time_format_iso(time_now_us() - 2LL * 86400 * 1000000, when, sizeof when));
    Cara__Reply *reply = ti_submit(harness_client(h, "intake", "police", "dyfed-powys"), r);
    Cara__ReferralAccepted *ok = ti_accepted(reply);
    assert_non_null(ok);
    char *id = strdup(ok->referral_id);
    cara__referral_accepted__free_unpacked(ok, NULL);
    cara__reply__free_unpacked(reply, NULL);
    cara__referral__free_unpacked(r, NULL);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT status FROM provider_case WHERE referral_id = '%s'", id);
    assert_int_equal(harness_wait_value(h, "booking", sql, "open", 15000), 0);
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
    assert_int_equal(s_cara("cohort", "create", "--cohort_type", "male_intimate", "--town",
                            "Carmarthen", "--part_a_date", a, "--part_b_date", bad_b, NULL),
                     2);
    json_t *doc = s_json();
    assert_string_equal(json_string_value(json_object_get(doc, "status")), "INVALID");
    assert_non_null(strstr(s_out, "part_b_date"));
    json_decref(doc);
    assert_int_equal(s_cara("cohort", "create", "--cohort_type", "male_intimate", "--town",
                            "Carmarthen", "--facilitators", "F1,F2", "--part_a_date", a,
                            "--part_b_date", b, "--capacity", "10", NULL),
                     0);
    doc = s_json();
    char *cohort =
        strdup(json_string_value(json_object_get(json_object_get(doc, "result"), "cohort_id")));
    json_decref(doc);
    // Shortfall before booking: the case is placeable, so none.
    assert_int_equal(s_cara("booking", "shortfall", NULL), 0);
    assert_null(strstr(s_out, id));
    assert_int_equal(s_cara("contact", "record", "--referral_id", id, "--channel", "phone",
                            "--outcome", "contacted", NULL),
                     0);
    assert_int_equal(s_cara("booking", "book", "--referral_id", id, NULL), 0);
    doc = s_json();
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(doc, "result"), "cohort_id")), cohort);
    json_decref(doc);
    assert_int_equal(s_cara("cohort", "list", NULL), 0);
    assert_non_null(strstr(s_out, cohort));
    assert_non_null(strstr(s_out, "\"seats_taken\": 1"));
    assert_int_equal(s_cara("cases", "--status", "booked", NULL), 0);
    assert_non_null(strstr(s_out, id));
    assert_int_equal(s_cara("cases", "--at_risk", "true", NULL), 0);
    assert_null(strstr(s_out, id)); // contacted
    assert_int_equal(s_cara("victim", "record", "--referral_id", id, "--kind", "offer", "--notes",
                            "offered support", NULL),
                     0);
    assert_int_equal(s_cara("victim", "list", "--referral_id", id, NULL), 0);
    assert_non_null(strstr(s_out, "offered support"));
    // Part A held today; bulk entries as JSON.
    const char *values[] = {cohort};
    assert_int_equal(db_exec(harness_db(h, "booking"),
                             "UPDATE cohort SET part_b_date = part_b_date - (part_a_date -"
                             " current_date), part_a_date = current_date WHERE cohort_id = $1",
                             1, values),
                     0);
    char entries[200];
    snprintf(entries, sizeof entries, "[{\"referral_id\": \"%s\", \"status\": \"attended\"}]", id);
    assert_int_equal(s_cara("attendance", "record", "--cohort_id", cohort, "--part", "A",
                            "--entries", entries, NULL),
                     0);
    // Cancelling the booking needs a reason.
    assert_int_equal(s_cara("booking", "cancel", "--referral_id", id, NULL), 2);
    assert_non_null(strstr(s_out, "reason"));
    assert_int_equal(
        s_cara("booking", "cancel", "--referral_id", id, "--reason", "moved away", NULL), 0);
    assert_int_equal(s_cara("cases", "--status", "open", NULL), 0);
    assert_non_null(strstr(s_out, id));
    // The only cohort has started: the open case is now a shortfall.
    assert_int_equal(s_cara("booking", "shortfall", NULL), 0);
    doc = s_json();
    json_t *rows = json_object_get(json_object_get(doc, "result"), "pathways");
    assert_int_equal(json_array_size(rows), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "pathway")),
                        "male_intimate");
    json_decref(doc);
    assert_non_null(strstr(s_out, id));
    assert_int_equal(s_cara("cohort", "cancel", "--cohort_id", cohort, "--reason", "venue", NULL),
                     0);
    assert_int_equal(s_cara("cohort", "list", NULL), 0);
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
