// Foundation: a service starts, migrates and answers Health over CURVE; a key that is not in
// the key ring gets nothing; migrations run twice are a no-op; edited or gapped migrations are
// refused; a request from an admitted key carries the identity the ZAP handler set.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <zmq.h>

#include "cara/migrate.h"
#include "cara/transport.h"
#include "cara/uuid.h"
#include "harness.h"

static harness_t *h;

static int setup(void **state) {
    (void)state;
    h = harness_new("foundation");
    return h && harness_start(h, "intake") == 0 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    harness_destroy(&h);
    return 0;
}

static void test_health_reports_identity_from_zap(void **state) {
    (void)state;
    client_t *c = harness_client(h, "intake", "operator", "ops-team");
    Cara__HealthRequest req = CARA__HEALTH_REQUEST__INIT;
    Cara__Reply *reply = harness_call(c, &req.base);
    assert_non_null(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    Cara__Health *health = cara__health__unpack(NULL, reply->payload.len, reply->payload.data);
    assert_non_null(health);
    assert_string_equal(health->service, "intake");
    assert_true(health->db_ok);
    assert_string_equal(health->identity, "operator:ops-team");
    cara__health__free_unpacked(health, NULL);
    cara__reply__free_unpacked(reply, NULL);
}

// A partner's key (a police force) is told the service is up and who it is, and nothing of the
// stream's volume, the consumers or the dead letters, which are the operators'.
static void test_health_tells_a_partner_only_that_it_is_up(void **state) {
    (void)state;
    Cara__HealthRequest req = CARA__HEALTH_REQUEST__INIT;
    Cara__Reply *reply = harness_call(harness_client(h, "intake", "police", "gwent"), &req.base);
    assert_non_null(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    Cara__Health *health = cara__health__unpack(NULL, reply->payload.len, reply->payload.data);
    assert_non_null(health);
    assert_true(health->db_ok);
    assert_string_equal(health->identity, "police:gwent");
    assert_int_equal(health->n_consumers, 0);
    assert_int_equal(health->stream_head, 0);
    cara__health__free_unpacked(health, NULL);
    cara__reply__free_unpacked(reply, NULL);
    // The operator sees intake's consumers (of triage and booking).
    reply = harness_call(harness_client(h, "intake", "operator", "ops-team"), &req.base);
    assert_non_null(reply);
    health = cara__health__unpack(NULL, reply->payload.len, reply->payload.data);
    assert_non_null(health);
    assert_true(health->n_consumers >= 1);
    cara__health__free_unpacked(health, NULL);
    cara__reply__free_unpacked(reply, NULL);
}

static void test_key_not_in_ring_gets_nothing(void **state) {
    (void)state;
    keypair_t stranger;
    assert_int_equal(keys_generate(&stranger), 0);
    client_t *c = client_new(harness_ctx(h), harness_endpoint(h, "intake"), &stranger,
                             harness_service_public(h, "intake"));
    assert_non_null(c);
    Cara__HealthRequest req = CARA__HEALTH_REQUEST__INIT;
    Cara__Reply *reply = client_call(c, &req.base, NULL, NULL, 700, 1);
    assert_null(reply);
    Cara__Fetch fetch = CARA__FETCH__INIT;
    fetch.stream = "intake";
    reply = client_call(c, &fetch.base, NULL, NULL, 700, 0);
    assert_null(reply);
    client_destroy(&c);
    // An admitted identity still works on the same service.
    client_t *ok = harness_client(h, "intake", "operator", "ops-team");
    Cara__HealthRequest req2 = CARA__HEALTH_REQUEST__INIT;
    reply = harness_call(ok, &req2.base);
    assert_non_null(reply);
    cara__reply__free_unpacked(reply, NULL);
}

// A police system written with a REQ socket (it sends an empty delimiter before its request)
// gets its answer: the reply carries the delimiter back, without which REQ drops it.
static void test_a_req_client_gets_its_reply(void **state) {
    (void)state;
    void *req = transport_client(harness_ctx(h), ZMQ_REQ, harness_endpoint(h, "intake"),
                                 harness_identity_keys(h, "operator", "ops-team"),
                                 harness_service_public(h, "intake"));
    assert_non_null(req);
    int linger = 0, timeout = 5000;
    zmq_setsockopt(req, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(req, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    Cara__HealthRequest health = CARA__HEALTH_REQUEST__INIT;
    uint8_t *data = NULL;
    size_t len = 0;
    char rid[UUID_STR_LEN];
    uuid_new(rid);
    assert_int_equal(envelope_pack(&health.base, rid, NULL, &data, &len, NULL), 0);
    assert_true(zmq_send(req, data, len, 0) >= 0);
    free(data);
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    // Closed before any assertion: an open socket would hold up the context's end.
    int got = zmq_msg_recv(&msg, req, 0);
    Cara__Envelope *env = got >= 0 ? envelope_unpack(zmq_msg_data(&msg), zmq_msg_size(&msg)) : NULL;
    zmq_msg_close(&msg);
    zmq_close(req);
    assert_true(got >= 0);
    assert_non_null(env);
    assert_string_equal(env->correlation_id, rid);
    Cara__Reply *reply = (Cara__Reply *)envelope_payload(env, &cara__reply__descriptor);
    assert_non_null(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    cara__reply__free_unpacked(reply, NULL);
    cara__envelope__free_unpacked(env, NULL);
}

static void test_unknown_command_and_newer_schema(void **state) {
    (void)state;
    client_t *c = harness_client(h, "intake", "operator", "ops-team");
    // A message type the service does not handle: UNSUPPORTED, not a crash.
    Cara__Head head = CARA__HEAD__INIT;
    head.stream = "x";
    Cara__Reply *reply = harness_call(c, &head.base);
    assert_non_null(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__UNSUPPORTED);
    cara__reply__free_unpacked(reply, NULL);
    // Garbage bytes: a clear INVALID reply.
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0x01, 0x02};
    Cara__Envelope *env = client_call_raw(c, junk, sizeof junk, 3000);
    assert_non_null(env);
    Cara__Reply *r2 = (Cara__Reply *)envelope_payload(env, &cara__reply__descriptor);
    assert_non_null(r2);
    assert_int_equal(r2->status, CARA__REPLY__STATUS__INVALID);
    cara__reply__free_unpacked(r2, NULL);
    cara__envelope__free_unpacked(env, NULL);
}

static void test_only_services_and_operators_read_streams(void **state) {
    (void)state;
    client_t *c = harness_client(h, "intake", "provider", "p1");
    int status = 0;
    Cara__Batch *b = harness_fetch(c, "intake", 0, 10, &status);
    assert_null(b);
    assert_int_equal(status, CARA__REPLY__STATUS__FORBIDDEN);
    // The refusal is audited.
    assert_int_equal(harness_wait_value(h, "intake",
                                        "SELECT count(*) FROM audit WHERE actor = 'provider:p1'"
                                        " AND action = 'refused'",
                                        "1", 3000),
                     0);
}

static int s_run_migrate_only(void) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "bin/cara-intake --config %s/intake.json --migrate-only 2>/dev/null",
             harness_dir(h));
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void test_migrations_twice_are_a_no_op(void **state) {
    (void)state;
    char *before = harness_value(
        h, "intake", "SELECT count(*) || '/' || max(applied_at) FROM schema_migrations");
    assert_non_null(before);
    assert_int_equal(s_run_migrate_only(), 0);
    assert_int_equal(s_run_migrate_only(), 0);
    char *after = harness_value(h, "intake",
                                "SELECT count(*) || '/' || max(applied_at) FROM schema_migrations");
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void test_edited_or_gapped_migration_is_refused(void **state) {
    (void)state;
    db_t *db = harness_db(h, "scratch");
    assert_non_null(db);
    assert_int_equal(db_exec(db, "CREATE SCHEMA scratch", 0, NULL), 0);
    const migration_t v1[] = {{"001_a.sql", "CREATE TABLE a (x int);"}, {NULL, NULL}};
    const migration_t v2[] = {{"001_a.sql", "CREATE TABLE a (x int);"},
                              {"002_b.sql", "CREATE TABLE b (y int);"},
                              {NULL, NULL}};
    const migration_t edited[] = {{"001_a.sql", "CREATE TABLE a (x bigint);"}, {NULL, NULL}};
    const migration_t gap[] = {{"001_a.sql", "CREATE TABLE a (x int);"},
                               {"003_c.sql", "CREATE TABLE c (z int);"},
                               {NULL, NULL}};
    assert_int_equal(migrate_run(db, "t", v1), 1);
    assert_int_equal(migrate_run(db, "t", v1), 0);
    assert_int_equal(migrate_run(db, "t", v2), 1);
    assert_int_equal(migrate_version(db, "t"), 2);
    assert_int_equal(migrate_run(db, "t", edited), -1);
    assert_int_equal(migrate_run(db, "t", gap), -1);
    // A failed migration leaves nothing half-done.
    const migration_t broken[] = {{"001_a.sql", "CREATE TABLE a (x int);"},
                                  {"002_b.sql", "CREATE TABLE b (y int);"},
                                  {"003_c.sql", "CREATE TABLE c (z int); SELECT 1/0;"},
                                  {NULL, NULL}};
    assert_int_equal(migrate_run(db, "t", broken), -1);
    assert_int_equal(migrate_version(db, "t"), 2);
    char out[8];
    assert_int_equal(db_scalar(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'c'", 0, NULL,
                               out, sizeof out),
                     1);
    assert_string_equal(out, "0");
}

static void test_service_role_cannot_touch_other_schemas(void **state) {
    (void)state;
    db_t *db = db_connect(harness_conninfo(h, "intake"), "intake", 5000);
    assert_non_null(db);
    assert_int_equal(db_exec(db, "SELECT count(*) FROM triage.schema_migrations", 0, NULL), -1);
    assert_string_equal(db_sqlstate(db), "42501"); // insufficient_privilege
    assert_int_equal(db_exec(db, "CREATE TABLE public.sneaky (x int)", 0, NULL), -1);
    assert_string_equal(db_sqlstate(db), "42501");
    db_destroy(&db);
}

static void test_sigterm_stops_cleanly(void **state) {
    (void)state;
    // Busy first, so the stop lands while the service has work in hand.
    client_t *c = harness_client(h, "intake", "operator", "ops-team");
    for (int i = 0; i < 20; i++) {
        Cara__HealthRequest req = CARA__HEALTH_REQUEST__INIT;
        Cara__Reply *reply = harness_call(c, &req.base);
        assert_non_null(reply);
        cara__reply__free_unpacked(reply, NULL);
    }
    int status = harness_stop(h, "intake", SIGTERM);
    // Exit code 0: the loop finished, every socket and connection closed, and (under the
    // sanitizers) no leak was reported at exit.
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    // Nothing left open in the database by the stopped service.
    assert_int_equal(harness_wait_value(h, "intake",
                                        "SELECT count(*) FROM pg_stat_activity"
                                        " WHERE usename = 'cara_intake'"
                                        " AND datname = current_database()",
                                        "0", 5000),
                     0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_reports_identity_from_zap),
        cmocka_unit_test(test_health_tells_a_partner_only_that_it_is_up),
        cmocka_unit_test(test_key_not_in_ring_gets_nothing),
        cmocka_unit_test(test_a_req_client_gets_its_reply),
        cmocka_unit_test(test_unknown_command_and_newer_schema),
        cmocka_unit_test(test_only_services_and_operators_read_streams),
        cmocka_unit_test(test_migrations_twice_are_a_no_op),
        cmocka_unit_test(test_edited_or_gapped_migration_is_refused),
        cmocka_unit_test(test_service_role_cannot_touch_other_schemas),
        cmocka_unit_test(test_sigterm_stops_cleanly),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
