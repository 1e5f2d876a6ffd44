// The delivery guarantee end to end over real sockets and a real PostgreSQL: a producer ->
// consumer chain of 20,000 events while the consumer is SIGKILLed and restarted at random at
// least 5 times gives every effect exactly once; a consumer offline during 1,000 events catches
// up exactly; a poison event goes to dead_letter and the cursor moves on, also when its failing
// write was held back to the batch's flush; a rewound cursor applies nothing twice, also when
// it is moved under a running consumer.
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cara/stream.h"
#include "cara/timeutil.h"
#include "harness.h"

#define PRODUCER "build/tests/integration/helper_chain_producer"
#define CONSUMER "build/tests/integration/helper_chain_consumer"

static void s_assert_exactly_once(harness_t *h, long total) {
    char expect[64];
    snprintf(expect, sizeof expect, "%ld", total);
    assert_int_equal(
        harness_wait_value(h, "triage", "SELECT count(*) FROM chain_effect", expect, 120000), 0);
    char *distinct = harness_value(h, "triage", "SELECT count(DISTINCT n) FROM chain_effect");
    char *range = harness_value(h, "triage", "SELECT min(n) || '-' || max(n) FROM chain_effect");
    char *dups = harness_value(h, "triage",
                               "SELECT count(*) FROM (SELECT n FROM chain_effect GROUP BY n"
                               " HAVING count(*) > 1) d");
    snprintf(expect, sizeof expect, "1-%ld", total);
    printf("# effects: %ld, distinct: %s, range: %s, duplicates: %s\n", total, distinct, range,
           dups);
    assert_int_equal(atol(distinct), total);
    assert_string_equal(range, expect);
    assert_string_equal(dups, "0");
    free(distinct);
    free(range);
    free(dups);
}

// The consumer's cursor reaches the producer's head and nothing went to dead letters.
static void s_assert_caught_up_cleanly(harness_t *h) {
    assert_int_equal(harness_wait_caught_up(h, "triage", "intake", 30000), 0);
    char *dl = harness_value(h, "triage", "SELECT count(*) FROM dead_letter");
    assert_string_equal(dl, "0");
    free(dl);
}

// The consumer's Health as an operator sees it (caller frees), or NULL.
static Cara__Health *s_health(harness_t *h) {
    Cara__HealthRequest req = CARA__HEALTH_REQUEST__INIT;
    Cara__Reply *reply = harness_call(harness_client(h, "triage", "operator", "ops"), &req.base);
    Cara__Health *health =
        reply ? cara__health__unpack(NULL, reply->payload.len, reply->payload.data) : NULL;
    if (reply)
        cara__reply__free_unpacked(reply, NULL);
    return health;
}

static void test_exactly_once_through_consumer_kills(void **state) {
    (void)state;
    harness_t *h = harness_new("delivery_kill");
    assert_non_null(h);
    harness_config(h, "intake", "chain", "{\"total\": 20000, \"per_tx\": 40, \"per_tick\": 1500}");
    harness_config(h, "triage", "consumer", "{\"batch\": 300, \"poll_ms\": 200}");
    assert_int_equal(harness_start_as(h, "intake", PRODUCER), 0);
    assert_int_equal(harness_start_as(h, "triage", CONSUMER), 0);
    srand((unsigned)getpid());
    int kills = 0;
    // Kill while events are still flowing: at least 5 times, then until the producer is done.
    for (;;) {
        usleep((useconds_t)(200000 + rand() % 900000));
        assert_int_equal(harness_stop(h, "triage", SIGKILL) != -1, 1);
        kills++;
        assert_int_equal(harness_start_as(h, "triage", CONSUMER), 0);
        char *produced = harness_value(h, "intake", "SELECT produced FROM chain_progress");
        int done = produced && atol(produced) >= 20000;
        free(produced);
        if (kills >= 5 && done)
            break;
    }
    printf("# consumer SIGKILLed and restarted %d times\n", kills);
    assert_true(kills >= 5);
    s_assert_exactly_once(h, 20000);
    s_assert_caught_up_cleanly(h);
    harness_destroy(&h);
}

static void test_offline_consumer_catches_up_exactly(void **state) {
    (void)state;
    harness_t *h = harness_new("delivery_offline");
    assert_non_null(h);
    harness_config(h, "intake", "chain", "{\"total\": 3000, \"per_tx\": 7, \"per_tick\": 1000}");
    // Consumer first, so it has a cursor; then it goes away while the producer makes 3,000.
    assert_int_equal(harness_start_as(h, "triage", CONSUMER), 0);
    assert_int_equal(harness_stop(h, "triage", SIGTERM), 0);
    assert_int_equal(harness_start_as(h, "intake", PRODUCER), 0);
    assert_int_equal(
        harness_wait_value(h, "intake", "SELECT produced FROM chain_progress", "3000", 60000), 0);
    char *effects = harness_value(h, "triage", "SELECT count(*) FROM chain_effect");
    assert_string_equal(effects, "0");
    free(effects);
    assert_int_equal(harness_start_as(h, "triage", CONSUMER), 0);
    s_assert_exactly_once(h, 3000);
    // Seqs arrive in order: every effect's seq is greater than the one applied before it.
    char *disorder =
        harness_value(h, "triage",
                      "SELECT count(*) FROM (SELECT seq, lag(seq) OVER (ORDER BY"
                      " applied_at, seq) AS prev FROM chain_effect) x WHERE seq < prev");
    assert_string_equal(disorder, "0");
    free(disorder);
    // The chain consumer has lanes: catching up (six batches of 500), some were applied while
    // the one before was committing (a request or a tick between two batches settles the one in
    // flight first, so not necessarily every one).
    Cara__Health *health = s_health(h);
    assert_non_null(health);
    printf("# batches overlapped: %" PRIu64 "\n", health->batches_overlapped);
    assert_true(health->batches_overlapped >= 1);
    cara__health__free_unpacked(health, NULL);
    harness_destroy(&h);
}

// Health's oldest_unprocessed_age_s as an operator sees it. Returns it, or -1.
static int64_t s_oldest_unprocessed(harness_t *h) {
    Cara__Health *health = s_health(h);
    int64_t age = health ? health->oldest_unprocessed_age_s : -1;
    if (health)
        cara__health__free_unpacked(health, NULL);
    return age;
}

// A consumer that falls behind says how long its oldest waiting event has waited, and 0 once
// it has caught up.
static void test_health_tells_how_old_the_backlog_is(void **state) {
    (void)state;
    harness_t *h = harness_new("delivery_lag");
    assert_non_null(h);
    harness_config(h, "triage", "consumer", "{\"batch\": 10, \"poll_ms\": 100}");
    harness_config(h, "triage", "chain", "{\"apply_delay_ms\": 25}");
    assert_int_equal(harness_start_as(h, "triage", CONSUMER), 0);
    assert_int_equal(s_oldest_unprocessed(h), 0);
    // 240 events at once, applied at about 40 a second: some 6 s behind at the worst.
    harness_config(h, "intake", "chain", "{\"total\": 240, \"per_tx\": 240, \"per_tick\": 240}");
    assert_int_equal(harness_start_as(h, "intake", PRODUCER), 0);
    int64_t worst = 0, deadline = time_mono_ms() + 60000;
    char *done = NULL;
    while (time_mono_ms() < deadline) {
        int64_t age = s_oldest_unprocessed(h);
        assert_true(age >= 0);
        if (age > worst)
            worst = age;
        free(done);
        done = harness_value(h, "triage", "SELECT count(*) FROM chain_effect");
        if (strcmp(done, "240") == 0)
            break;
        usleep(200 * 1000);
    }
    printf("# backlog of 240 events at ~40/s: oldest unprocessed reached %lld s\n",
           (long long)worst);
    assert_string_equal(done, "240");
    free(done);
    assert_true(worst >= 2);
    assert_true(worst <= 30);
    assert_int_equal(s_oldest_unprocessed(h), 0);
    harness_destroy(&h);
}

// hold: the consumer holds its writes back to the batch's flush (consumer_flush_fn), so the
// failing write is made at the flush: it is still pinned on its own event.
static void s_poison_goes_to_dead_letter(bool hold) {
    harness_t *h = harness_new(hold ? "delivery_poison_held" : "delivery_poison");
    assert_non_null(h);
    if (hold)
        harness_config(h, "triage", "chain", "{\"hold\": true}");
    harness_config(h, "intake", "chain", "{\"total\": 10, \"per_tx\": 10, \"per_tick\": 10}");
    assert_int_equal(harness_start_as(h, "intake", PRODUCER), 0);
    assert_int_equal(
        harness_wait_value(h, "intake", "SELECT produced FROM chain_progress", "10", 30000), 0);
    // One event of a type the consumer cannot apply, then ten more good ones.
    db_t *db = harness_db(h, "intake");
    assert_int_equal(db_begin(db), 0);
    Cara__Head bad = CARA__HEAD__INIT;
    bad.stream = "not-a-chain-event";
    assert_true(outbox_append(db, &bad.base, "poison", NULL, NULL, NULL) > 0);
    // And a chain event whose number the effect table cannot hold (beyond bigint): the
    // consumer's queued INSERT fails in the batch's one read-back, and only that event is
    // dead-lettered.
    Cara__Fetch huge = CARA__FETCH__INIT;
    huge.stream = "chain";
    huge.after = UINT64_MAX;
    assert_true(outbox_append(db, &huge.base, "huge", NULL, NULL, NULL) > 0);
    // And one whose apply reads the number at once, fails the same way, and answers "retry"
    // (as an apply that does not ask why does): it is poison too, not retried for ever with
    // the events behind it held back.
    Cara__Fetch retried = CARA__FETCH__INIT;
    retried.stream = "chain";
    retried.after = UINT64_MAX - 1;
    assert_true(outbox_append(db, &retried.base, "retried", NULL, NULL, NULL) > 0);
    assert_int_equal(db_commit(db), 0);
    assert_int_equal(db_exec(db, "UPDATE chain_progress SET produced = 10", 0, NULL), 0);
    harness_stop(h, "intake", SIGTERM);
    harness_config(h, "intake", "chain", "{\"total\": 20, \"per_tx\": 10, \"per_tick\": 10}");
    assert_int_equal(harness_start_as(h, "intake", PRODUCER), 0);
    assert_int_equal(harness_start_as(h, "triage", CONSUMER), 0);
    s_assert_exactly_once(h, 20);
    char *dl = harness_value(h, "triage",
                             "SELECT string_agg(type || ':' || reason, ',' ORDER BY seq)"
                             " FROM dead_letter");
    assert_string_equal(dl, "cara.Head:not a numbered chain event,"
                            "cara.Fetch:write failed (SQLSTATE 22003),"
                            "cara.Fetch:write failed (SQLSTATE 22003)");
    free(dl);
    harness_destroy(&h);
}

static void test_poison_event_goes_to_dead_letter(void **state) {
    (void)state;
    s_poison_goes_to_dead_letter(false);
}

static void test_poison_write_held_to_the_flush_goes_to_dead_letter(void **state) {
    (void)state;
    s_poison_goes_to_dead_letter(true);
}

// An operator rewinds a consumer's cursor (to replay after a repair, say): the events it had
// applied come again under the same ids, in one batch with events it has never seen. The
// inbox (the event-id guard) lets only the new ones through: nothing is applied twice, nothing
// is dead-lettered, and the cursor ends at the head.
static void test_rewound_cursor_applies_nothing_twice(void **state) {
    (void)state;
    harness_t *h = harness_new("delivery_rewind");
    assert_non_null(h);
    harness_config(h, "intake", "chain", "{\"total\": 600, \"per_tx\": 50, \"per_tick\": 600}");
    harness_config(h, "triage", "consumer", "{\"batch\": 1000, \"poll_ms\": 200}");
    assert_int_equal(harness_start_as(h, "intake", PRODUCER), 0);
    assert_int_equal(harness_start_as(h, "triage", CONSUMER), 0);
    s_assert_exactly_once(h, 600);
    assert_int_equal(harness_stop(h, "triage", SIGTERM), 0);
    assert_int_equal(harness_stop(h, "intake", SIGTERM), 0);
    char *rewound = harness_value(h, "triage",
                                  "UPDATE cursor SET seq = seq - 300 WHERE stream = 'intake'"
                                  " RETURNING seq");
    assert_non_null(rewound);
    free(rewound);
    // 400 more while the consumer is away: its next batch is 300 seen and 400 new events.
    harness_config(h, "intake", "chain", "{\"total\": 1000, \"per_tx\": 50, \"per_tick\": 1000}");
    assert_int_equal(harness_start_as(h, "intake", PRODUCER), 0);
    assert_int_equal(
        harness_wait_value(h, "intake", "SELECT produced FROM chain_progress", "1000", 60000), 0);
    assert_int_equal(harness_start_as(h, "triage", CONSUMER), 0);
    s_assert_exactly_once(h, 1000);
    s_assert_caught_up_cleanly(h);
    // Each event id is in the inbox once.
    char *inbox = harness_value(h, "triage", "SELECT count(*) FROM inbox");
    assert_string_equal(inbox, "1000");
    free(inbox);
    harness_destroy(&h);
}

// Someone else moves a running consumer's cursor (a second instance of it, or an operator's
// rewind) while events flow: the consumer's next batch finds the cursor not where it left it,
// applies nothing, reloads the cursor and goes on from there. Every effect exactly once, nothing
// dead-lettered, the cursor at the head, and the consumer said why it reloaded.
static void test_cursor_moved_under_a_running_consumer(void **state) {
    (void)state;
    harness_t *h = harness_new("delivery_moved");
    assert_non_null(h);
    harness_config(h, "intake", "chain", "{\"total\": 2000, \"per_tx\": 10, \"per_tick\": 400}");
    harness_config(h, "triage", "consumer", "{\"batch\": 100, \"poll_ms\": 200}");
    assert_int_equal(harness_start_as(h, "intake", PRODUCER), 0);
    assert_int_equal(harness_start_as(h, "triage", CONSUMER), 0);
    usleep(1500000); // events are flowing (400 a second, for five seconds)
    for (int i = 0; i < 3; i++) {
        char *moved = harness_value(h, "triage",
                                    "UPDATE cursor SET seq = greatest(seq - 100, 0)"
                                    " WHERE stream = 'intake' RETURNING seq");
        assert_non_null(moved);
        free(moved);
        usleep(300000);
    }
    assert_int_equal(
        harness_wait_value(h, "intake", "SELECT produced FROM chain_progress", "2000", 60000), 0);
    s_assert_exactly_once(h, 2000);
    s_assert_caught_up_cleanly(h);
    assert_int_equal(harness_log_has(h, "triage", "cursor moved by someone else"), 1);
    // A batch that failed in flight was rolled back on its own connection: no later batch met
    // an aborted transaction there.
    assert_int_equal(harness_log_has(h, "triage", "25P02"), 0);
    harness_destroy(&h);
}

// A migration changes the type of a column that two of a running consumer's prepared statements
// return (as a second instance's migration does under the first, or an operator's repair). The
// first batch after it meets "cached plan must not change result type" (0A000) once for each
// statement, on successive tries: the fast pass meets the first, the careful pass the second. A
// stale plan is retried with the statement prepared afresh, never sent to dead letters (before,
// the careful pass dead-lettered a good event: 799 of 800 effects).
static void test_migration_under_a_running_consumer(void **state) {
    (void)state;
    harness_t *h = harness_new("delivery_replan");
    assert_non_null(h);
    harness_config(h, "triage", "chain", "{\"read_back\": true}");
    // One connection: a batch that fails in flight on the second would retry there first.
    harness_config(h, "triage", "db", "{\"overlap_commits\": false}");
    harness_config(h, "triage", "consumer", "{\"batch\": 20, \"poll_ms\": 100}");
    harness_config(h, "intake", "chain", "{\"total\": 400, \"per_tx\": 4, \"per_tick\": 400}");
    assert_int_equal(harness_start_as(h, "intake", PRODUCER), 0);
    assert_int_equal(harness_start_as(h, "triage", CONSUMER), 0);
    s_assert_exactly_once(h, 400);
    assert_int_equal(db_exec(harness_db(h, "triage"),
                             "ALTER TABLE chain_effect ALTER COLUMN n TYPE numeric", 0, NULL),
                     0);
    harness_stop(h, "intake", SIGTERM);
    // All 400 in one transaction: the first batch after the migration holds both statements.
    harness_config(h, "intake", "chain", "{\"total\": 800, \"per_tx\": 400, \"per_tick\": 400}");
    assert_int_equal(harness_start_as(h, "intake", PRODUCER), 0);
    s_assert_exactly_once(h, 800);
    s_assert_caught_up_cleanly(h);
    assert_int_equal(harness_log_has(h, "triage", "0A000"), 1); // the plans did go stale
    harness_destroy(&h);
}

static void test_exactly_once_through_a_database_crash(void **state) {
    (void)state;
    const char *pgdata = getenv("CARA_TEST_PGDATA");
    const char *port = getenv("CARA_TEST_PGPORT");
    if (!pgdata || !port)
        skip();
    harness_t *h = harness_new("delivery_pgcrash");
    assert_non_null(h);
    harness_config(h, "intake", "chain", "{\"total\": 6000, \"per_tx\": 25, \"per_tick\": 600}");
    harness_config(h, "triage", "consumer", "{\"batch\": 200, \"poll_ms\": 200}");
    assert_int_equal(harness_start_as(h, "intake", PRODUCER), 0);
    assert_int_equal(harness_start_as(h, "triage", CONSUMER), 0);
    assert_int_equal(
        harness_wait_value(h, "triage", "SELECT count(*) > 500 FROM chain_effect", "t", 60000), 0);
    // PostgreSQL itself goes down hard (immediate mode: no checkpoint, crash recovery on start)
    // while both services are mid-stream, and comes back.
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "deploy/pg-cluster.sh restart-immediate %s %s -c fsync=off", pgdata,
             port);
    assert_int_equal(system(cmd), 0);
    printf("# PostgreSQL restarted in immediate mode\n");
    s_assert_exactly_once(h, 6000);
    assert_int_equal(harness_wait_healthy(h, "intake", 10000), 0);
    assert_int_equal(harness_wait_healthy(h, "triage", 10000), 0);
    harness_destroy(&h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_poison_event_goes_to_dead_letter),
        cmocka_unit_test(test_poison_write_held_to_the_flush_goes_to_dead_letter),
        cmocka_unit_test(test_offline_consumer_catches_up_exactly),
        cmocka_unit_test(test_health_tells_how_old_the_backlog_is),
        cmocka_unit_test(test_rewound_cursor_applies_nothing_twice),
        cmocka_unit_test(test_cursor_moved_under_a_running_consumer),
        cmocka_unit_test(test_migration_under_a_running_consumer),
        cmocka_unit_test(test_exactly_once_through_consumer_kills),
        cmocka_unit_test(test_exactly_once_through_a_database_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
