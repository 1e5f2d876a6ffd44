// The harness's exit check catches a faulty child: a service that leaks (LeakSanitizer report at
// its SIGTERM exit), a service that crashes, a client run that leaks, errors (UBSan) or crashes;
// a clean service and a SIGKILLed one (on purpose) pass.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define FAULTY "build/tests/integration/helper_faulty"

static harness_t *h;

static int setup(void **state) {
    (void)state;
    h = harness_new("harness");
    return h ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    harness_destroy(&h);
    return 0;
}

#ifdef __SANITIZE_ADDRESS__
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

// Starts the helper in the intake slot in mode, waits a tick, then stops it with sig.
static void s_run_service(const char *mode, int sig) {
    char json[40];
    snprintf(json, sizeof json, "\"%s\"", mode);
    harness_config(h, "intake", "faulty", json);
    assert_int_equal(harness_start_as(h, "intake", FAULTY), 0);
    usleep(2500000); // the runtime ticks about once a second
    harness_stop(h, "intake", sig);
}

static void test_clean_and_killed_services_pass(void **state) {
    (void)state;
    s_run_service("clean", SIGTERM);
    assert_string_equal(harness_failures(h), "");
    // SIGKILL on purpose: exempt, even for a service that leaked before it was killed.
    s_run_service("leak", SIGKILL);
    assert_string_equal(harness_failures(h), "");
}

static void test_leaking_service_is_caught(void **state) {
    (void)state;
    if (!SANITIZED)
        skip();
    s_run_service("leak", SIGTERM);
    const char *failures = harness_failures(h);
    fprintf(stderr, "(provoked on purpose) %s\n", failures);
    assert_non_null(strstr(failures, "service intake exited with status"));
    assert_non_null(strstr(failures, "ERROR: LeakSanitizer"));
    harness_forget_failures(h);
}

static void test_crashing_service_is_caught(void **state) {
    (void)state;
    s_run_service("crash", SIGTERM);
    const char *failures = harness_failures(h);
    assert_true(strstr(failures, "service intake killed by signal") ||
                strstr(failures, "ERROR: AddressSanitizer"));
    harness_forget_failures(h);
}

static void test_faulty_client_runs_are_caught(void **state) {
    (void)state;
    char out[256], report[4096];
    const char *clean[] = {FAULTY, "clean", NULL};
    assert_int_equal(harness_run(clean, out, sizeof out, report, sizeof report), 0);
    assert_string_equal(report, "");
    const char *crash[] = {FAULTY, "crash", NULL};
    assert_int_equal(harness_run(crash, out, sizeof out, report, sizeof report), -1);
    assert_true(strstr(report, "killed by signal") || strstr(report, "AddressSanitizer"));
    if (!SANITIZED)
        return;
    const char *leak[] = {FAULTY, "leak", NULL};
    assert_int_equal(harness_run(leak, out, sizeof out, report, sizeof report), -1);
    assert_non_null(strstr(report, "ERROR: LeakSanitizer"));
    const char *ubsan[] = {FAULTY, "ubsan", NULL};
    assert_int_equal(harness_run(ubsan, out, sizeof out, report, sizeof report), -1);
    assert_non_null(strstr(report, "runtime error:"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_and_killed_services_pass),
        cmocka_unit_test(test_leaking_service_is_caught),
        cmocka_unit_test(test_crashing_service_is_caught),
        cmocka_unit_test(test_faulty_client_runs_are_caught),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
