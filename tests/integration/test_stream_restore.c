// A producer restored to an older point (docs/OPERATIONS.md, Backup and restore). Restored
// without moving its outbox_seq, it numbers its new events again from the restored head, below a
// consumer's cursor, and the consumer would skip them: the consumer says so, as an error in its
// log and in Health's last_error, and keeps saying it. Restored as documented (outbox_seq set past
// every seq a consumer may hold before the producer starts), every new event is applied.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define PRODUCER "build/tests/integration/helper_chain_producer"
#define CONSUMER "build/tests/integration/helper_chain_consumer"

// 40 events applied by the consumer, then the producer stopped and its schema put back to the
// point where it had served 15 (its outbox and its own progress), as pg_restore of an older dump
// leaves it.
static harness_t *s_restored_producer(const char *name) {
    harness_t *h = harness_new(name);
    assert_non_null(h);
    harness_config(h, "intake", "chain", "{\"total\": 40, \"per_tx\": 5}");
    harness_config(h, "triage", "consumer", "{\"poll_ms\": 200}");
    assert_int_equal(harness_start_as(h, "intake", PRODUCER), 0);
    assert_int_equal(harness_start_as(h, "triage", CONSUMER), 0);
    assert_int_equal(
        harness_wait_value(h, "triage", "SELECT count(*) FROM chain_effect", "40", 30000), 0);
    assert_int_equal(harness_wait_caught_up(h, "triage", "intake", 30000), 0);
    assert_int_equal(harness_stop(h, "intake", SIGTERM), 0);
    char *done = harness_value(h, "intake",
                               "WITH d AS (DELETE FROM outbox WHERE seq > 15 RETURNING 1),"
                               " p AS (UPDATE chain_progress SET produced = 15 RETURNING 1)"
                               " SELECT setval('outbox_seq', 15) + (SELECT count(*) FROM d)"
                               "   + (SELECT count(*) FROM p)");
    assert_non_null(done);
    assert_string_equal(done, "41"); // 15 + 25 rows gone + 1 progress row
    free(done);
    return h;
}

// Whether the consumer's log line for event is at level error.
static int s_logged_as_error(harness_t *h, const char *event) {
    char path[512], line[4096];
    snprintf(path, sizeof path, "%s/triage.log", harness_dir(h));
    FILE *in = fopen(path, "r");
    assert_non_null(in);
    int found = 0;
    while (!found && fgets(line, sizeof line, in))
        found = strstr(line, event) && strstr(line, "\"error\"");
    fclose(in);
    return found;
}

// The consumer's status for its one stream, as an operator sees it in Health (caller frees).
static Cara__Health *s_health(harness_t *h) {
    Cara__HealthRequest req = CARA__HEALTH_REQUEST__INIT;
    Cara__Reply *reply = harness_call(harness_client(h, "triage", "operator", "ops"), &req.base);
    Cara__Health *health =
        reply ? cara__health__unpack(NULL, reply->payload.len, reply->payload.data) : NULL;
    if (reply)
        cara__reply__free_unpacked(reply, NULL);
    return health;
}

static void test_head_below_cursor_is_reported_not_skipped_silently(void **state) {
    (void)state;
    harness_t *h = s_restored_producer("restore_wrong");
    // One new event a second: seqs 16, 17, ... all below the consumer's cursor (40).
    harness_config(h, "intake", "chain", "{\"total\": 40, \"per_tx\": 1, \"per_tick\": 1}");
    assert_int_equal(harness_start_as(h, "intake", PRODUCER), 0);
    // A subscriber fetching after its cursor (40) is told the stream went back, and where it
    // ends (cara fetch and cara outcomes then stop with exit 1).
    int status = 0;
    Cara__Batch *b = harness_fetch(harness_client(h, "intake", "operator", "ops"), "intake", 40,
                                   100, &status);
    assert_non_null(b);
    assert_true(b->head_below_after);
    assert_true(b->stream_head >= 15 && b->stream_head < 40);
    assert_int_equal(b->n_events, 0);
    cara__batch__free_unpacked(b, NULL);
    b = harness_fetch(harness_client(h, "intake", "operator", "ops"), "intake", 10, 100, &status);
    assert_non_null(b);
    assert_false(b->head_below_after);
    cara__batch__free_unpacked(b, NULL);
    char config[512], out[4096];
    assert_int_equal(
        harness_client_config(h, "operator", "ops", "intake", 3000, 1, config, sizeof config), 0);
    assert_int_equal(harness_cara(h, out, sizeof out, "--config", config, "fetch", "intake",
                                  "--after", "40", NULL),
                     1);
    assert_string_equal(out, "");
    assert_int_equal(harness_cara(h, out, sizeof out, "--config", config, "fetch", "intake",
                                  "--after", "10", "--max", "1", NULL),
                     0);
    int logged = 0;
    for (int i = 0; i < 100 && !logged; i++) {
        usleep(100000);
        logged = harness_log_has(h, "triage", "upstream_head_below_cursor") == 1;
    }
    assert_true(logged);
    assert_true(s_logged_as_error(h, "upstream_head_below_cursor"));
    // Health says it too, over the next successful (empty) fetches, which clear other errors.
    usleep(1000000);
    Cara__Health *health = s_health(h);
    assert_non_null(health);
    assert_int_equal(health->n_consumers, 1);
    Cara__ConsumerStatus *c = health->consumers[0];
    printf("# last_error: %s\n", c->last_error);
    assert_int_equal(c->cursor, 40);
    assert_true(c->upstream_head < c->cursor); // the producer's head as it is, not clamped
    assert_non_null(strstr(c->last_error, "below cursor 40"));
    cara__health__free_unpacked(health, NULL);
    harness_destroy(&h);
}

static void test_restore_with_outbox_seq_moved_past_cursors_loses_nothing(void **state) {
    (void)state;
    harness_t *h = s_restored_producer("restore_right");
    // The documented step before starting the producer: past the highest cursor, with a margin.
    char *cursor = harness_value(h, "triage", "SELECT seq FROM cursor WHERE stream = 'intake'");
    assert_non_null(cursor);
    assert_string_equal(cursor, "40");
    free(cursor);
    char *moved = harness_value(h, "intake", "SELECT setval('outbox_seq', 40 + 1000)");
    assert_string_equal(moved, "1040");
    free(moved);
    assert_int_equal(harness_start_as(h, "intake", PRODUCER), 0);
    // The 25 events made after the restore (n = 16..40 again, new event ids) all arrive.
    assert_int_equal(
        harness_wait_value(h, "triage", "SELECT count(*) FROM chain_effect", "65", 30000), 0);
    char *late = harness_value(h, "triage", "SELECT count(*) FROM chain_effect WHERE seq > 1040");
    assert_string_equal(late, "25");
    free(late);
    assert_int_equal(harness_wait_caught_up(h, "triage", "intake", 30000), 0);
    usleep(2000000); // several heads heard at the new position
    assert_int_equal(harness_log_has(h, "triage", "upstream_head_below_cursor"), 0);
    Cara__Health *health = s_health(h);
    assert_non_null(health);
    assert_int_equal(health->n_consumers, 1);
    assert_string_equal(health->consumers[0]->last_error, "");
    cara__health__free_unpacked(health, NULL);
    harness_destroy(&h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_below_cursor_is_reported_not_skipped_silently),
        cmocka_unit_test(test_restore_with_outbox_seq_moved_past_cursors_loses_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
