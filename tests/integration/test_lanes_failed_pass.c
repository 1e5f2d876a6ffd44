// Two request lanes: a lane whose optimistic pass fails after it took a lock (here the outbox
// lock, by an outbox_append) gives it back at once. Before, its transaction stayed open while
// the runtime read the other lane's COMMIT back (or ran that lane again carefully), and if the
// other lane needed the lock the service waited for ever and answered no one (found by a
// review). Both tests time out without the rollback in s_lane_start.
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include <cmocka.h>

#include "harness.h"

#define HELPER "build/tests/integration/helper_lanes"

static harness_t *h;

static int setup(void **state) {
    (void)state;
    h = harness_new("lanes_failed_pass");
    return h && harness_start_as(h, "intake", HELPER) == 0 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    // Whatever is stuck: let the service go (an idle-in-transaction lane's backend).
    char *v = harness_value(h, "intake",
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                            " AND usename = 'cara_intake' AND state = 'idle in transaction'");
    free(v);
    harness_destroy(&h);
    return 0;
}

static void *s_dealer(void) {
    void *s = transport_client(harness_ctx(h), ZMQ_DEALER, harness_endpoint(h, "intake"),
                               harness_identity_keys(h, "police", "dyfed-powys"),
                               harness_service_public(h, "intake"));
    assert_non_null(s);
    return s;
}

static void s_send(void *s, const char *cmd, uint64_t arg) {
    Cara__Head msg = CARA__HEAD__INIT;
    msg.stream = (char *)cmd;
    msg.seq = arg;
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(envelope_pack(&msg.base, NULL, NULL, &data, &len, NULL), 0);
    assert_true(zmq_send(s, data, len, 0) >= 0);
    free(data);
}

static void s_show_activity(void) {
    char *v = harness_value(
        h, "intake",
        "SELECT string_agg(coalesce(state, '') || '/' || coalesce(wait_event_type, '') || ':' ||"
        " coalesce(wait_event, '') || ' [' || left(query, 50) || ']', ' | ')"
        " FROM pg_stat_activity WHERE datname = current_database() AND usename = 'cara_intake'");
    fprintf(stderr, "# cara_intake backends: %s\n", v ? v : "(null)");
    free(v);
}

// Lane A: [sleep then queue a wait on lock 777, a held event]; while it sleeps, lane B's two
// requests queue up: [an outbox_append, a write then refusal]. A's COMMIT is held up on lock 777
// (held by the test), so B runs as the overlapping lane, takes the outbox lock and fails its
// pass; then 777 is released.
static void s_scenario(const char *const *a_cmds, const uint64_t *a_args, int n_a, int *a_st,
                       int *b_st) {
    void *sa = s_dealer(), *sb = s_dealer();
    s_send(sa, "event", 0); // CURVE handshakes done before the service is paused
    assert_int_equal(harness_recv_status(sa, 5000, NULL, 0), 0);
    s_send(sb, "event", 0);
    assert_int_equal(harness_recv_status(sb, 5000, NULL, 0), 0);
    db_t *su = harness_db(h, "intake");
    PGresult *r = db_query(su, "SELECT pg_advisory_lock(777)", 0, NULL);
    assert_non_null(r);
    PQclear(r);

    int pid = harness_pid(h, "intake");
    assert_int_equal(kill(pid, SIGSTOP), 0);
    for (int i = 0; i < n_a; i++)
        s_send(sa, a_cmds[i], a_args[i]);
    usleep(300000);
    assert_int_equal(kill(pid, SIGCONT), 0);
    usleep(300000); // lane A's handler sleeps: B's requests wait on the socket
    s_send(sb, "append", 0);
    s_send(sb, "failwrite", 0);
    usleep(1500000);
    s_show_activity();
    r = db_query(su, "SELECT pg_advisory_unlock(777)", 0, NULL);
    assert_non_null(r);
    PQclear(r);
    for (int i = 0; i < n_a; i++)
        a_st[i] = harness_recv_status(sa, i == 0 ? 8000 : 500, NULL, 0);
    for (int i = 0; i < 2; i++)
        b_st[i] = harness_recv_status(sb, 1000, NULL, 0);
    s_show_activity();
    zmq_close(sa);
    zmq_close(sb);
}

static void test_a_pipeline_waits_behind_a_failed_lane(void **state) {
    (void)state;
    const char *cmds[] = {"sleep_wait", "event"};
    const uint64_t args[] = {800, 0};
    int a[2], b[2];
    s_scenario(cmds, args, 2, a, b);
    fprintf(stderr, "# lane A replies: %d %d; lane B replies: %d %d (-1 = none in time)\n", a[0],
            a[1], b[0], b[1]);
    assert_int_equal(a[0], CARA__REPLY__STATUS__OK);
    assert_int_equal(a[1], CARA__REPLY__STATUS__OK);
    assert_int_equal(b[0], CARA__REPLY__STATUS__OK);
    assert_int_equal(b[1], CARA__REPLY__STATUS__CONFLICT);
}

static void test_a_careful_rerun_waits_behind_a_failed_lane(void **state) {
    (void)state;
    void *s = s_dealer();
    s_send(s, "key", 5);
    assert_int_equal(harness_recv_status(s, 5000, NULL, 0), 0);
    zmq_close(s);
    const char *cmds[] = {"sleep_wait", "key", "event"};
    const uint64_t args[] = {800, 5, 0}; // key 5 again: fails at A's COMMIT, A runs carefully
    int a[3], b[2];
    s_scenario(cmds, args, 3, a, b);
    fprintf(stderr, "# lane A replies: %d %d %d; lane B replies: %d %d (-1 = none in time)\n", a[0],
            a[1], a[2], b[0], b[1]);
    assert_int_equal(a[0], CARA__REPLY__STATUS__OK);
    assert_int_equal(a[1], CARA__REPLY__STATUS__OK);
    assert_int_equal(a[2], CARA__REPLY__STATUS__OK);
    assert_int_equal(b[0], CARA__REPLY__STATUS__OK);
    assert_int_equal(b[1], CARA__REPLY__STATUS__CONFLICT);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_pipeline_waits_behind_a_failed_lane, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_careful_rerun_waits_behind_a_failed_lane, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
