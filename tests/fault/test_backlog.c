// Long outages: a consumer down while 10,000 events pile up drains them exactly when it comes
// back; a producer down for a long time (the consumer retrying, reconnecting) is caught up with
// as soon as it returns.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "cara/timeutil.h"
#include "harness.h"

#define PRODUCER "build/tests/integration/helper_chain_producer"
#define CONSUMER "build/tests/integration/helper_chain_consumer"

static void s_exactly(harness_t *h, const char *n) {
    assert_int_equal(harness_wait_value(h, "triage", "SELECT count(*) FROM chain_effect", n,
                                        180000),
                     0);
    char *dups = harness_value(h, "triage",
                               "SELECT count(*) - count(DISTINCT n) FROM chain_effect");
    assert_string_equal(dups, "0");
    free(dups);
}

static void test_consumer_down_for_a_backlog_of_10000(void **state) {
    (void)state;
    harness_t *h = harness_new("backlog_consumer");
    assert_non_null(h);
    harness_config(h, "intake", "chain", "{\"total\": 10000, \"per_tx\": 100, \"per_tick\": 10000}");
    assert_int_equal(harness_start_as(h, "triage", CONSUMER), 0);
    assert_int_equal(harness_stop(h, "triage", SIGKILL) >= 0, 1);
    assert_int_equal(harness_start_as(h, "intake", PRODUCER), 0);
    assert_int_equal(harness_wait_value(h, "intake", "SELECT produced FROM chain_progress",
                                        "10000", 120000),
                     0);
    int64_t t0 = time_mono_ms();
    assert_int_equal(harness_start_as(h, "triage", CONSUMER), 0);
    s_exactly(h, "10000");
    printf("# backlog of 10000 drained in %.1f s\n", (double)(time_mono_ms() - t0) / 1000.0);
    harness_destroy(&h);
}

static void test_producer_down_then_back(void **state) {
    (void)state;
    harness_t *h = harness_new("backlog_producer");
    assert_non_null(h);
    harness_config(h, "intake", "chain", "{\"total\": 3000, \"per_tx\": 100, \"per_tick\": 1000}");
    harness_config(h, "triage", "consumer", "{\"timeout_ms\": 500, \"poll_ms\": 200}");
    assert_int_equal(harness_start_as(h, "intake", PRODUCER), 0);
    assert_int_equal(harness_start_as(h, "triage", CONSUMER), 0);
    assert_int_equal(harness_wait_value(h, "triage", "SELECT count(*) > 0 FROM chain_effect",
                                        "t", 30000),
                     0);
    // The producer vanishes for a while; the consumer keeps timing out and reconnecting, then
    // catches up with everything once the producer is back.
    harness_stop(h, "intake", SIGKILL);
    sleep(3);
    assert_int_equal(harness_start_as(h, "intake", PRODUCER), 0);
    s_exactly(h, "3000");
    harness_destroy(&h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_consumer_down_for_a_backlog_of_10000),
        cmocka_unit_test(test_producer_down_then_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
