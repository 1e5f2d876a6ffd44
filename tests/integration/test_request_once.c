// A command that changes state is applied once per request id. Clients retry with the same
// request id whenever they did not hear the answer, also when the runtime answered "commit
// failed; retry with the same request id" to a COMMIT whose outcome it could not know (it may
// have landed). The runtime keeps the first answer to each request id of a SERVICE_WRITES
// command (request_log) and gives it to every repeat, for booking's and billing's commands as
// for triage's; a request id must be a UUID, never cut short.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zmq.h>

#include "billing.pb-c.h"
#include "booking.pb-c.h"
#include "cara/timeutil.h"
#include "cara/uuid.h"
#include "harness.h"
#include "test_intake_support.h"

static harness_t *h;
static char s_part_a[16], s_part_b[16];

static int s_setup(void **state) {
    (void)state;
    h = harness_new("request_once");
    if (!h)
        return -1;
    ti_route(h, 0);
    if (harness_start(h, "intake") != 0 || harness_start(h, "triage") != 0 ||
        harness_start(h, "booking") != 0 || harness_start(h, "billing") != 0)
        return -1;
    int32_t today = (int32_t)(time_now_us() / 1000000 / 86400);
    time_format_date(today + 10, s_part_a, sizeof s_part_a);
    time_format_date(today + 42, s_part_b, sizeof s_part_b);
    return 0;
}

static int s_teardown(void **state) {
    (void)state;
    harness_destroy(&h);
    return 0;
}

static void s_cohort(Cara__CreateCohort *cmd, const char *town) {
    cara__create_cohort__init(cmd);
    cmd->cohort_type = "male_intimate";
    cmd->town = (char *)town;
    cmd->capacity = 10;
    cmd->part_a_date = s_part_a;
    cmd->part_b_date = s_part_b;
}

static long s_count(const char *service, const char *sql) {
    char *v = harness_value(h, service, sql);
    assert_non_null(v);
    long n = atol(v);
    free(v);
    return n;
}

static long s_cohorts_in(const char *town) {
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM cohort WHERE town = '%s'", town);
    return s_count("booking", sql);
}

// The cohort id a CreateCohort reply carries (malloc'd), after checking it is OK.
static char *s_created(Cara__Reply *reply) {
    assert_non_null(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    Cara__CohortRef *ref = cara__cohort_ref__unpack(NULL, reply->payload.len, reply->payload.data);
    assert_non_null(ref);
    char *id = strdup(ref->cohort_id);
    cara__cohort_ref__free_unpacked(ref, NULL);
    cara__reply__free_unpacked(reply, NULL);
    return id;
}

static Cara__Reply *s_call(client_t *c, const ProtobufCMessage *msg, const char *rid) {
    Cara__Reply *reply = client_call(c, msg, rid, NULL, 5000, 0);
    assert_non_null(reply);
    return reply;
}

// A repeat gets the first answer (the same cohort) and stores nothing more: one cohort, one
// CohortCreated event for providers, one audit row.
static void test_a_repeated_request_id_is_applied_once(void **state) {
    (void)state;
    client_t *p1 = harness_client(h, "booking", "provider", "p1");
    Cara__CreateCohort cmd;
    s_cohort(&cmd, "Aberystwyth");
    char rid[UUID_STR_LEN];
    uuid_new(rid);
    char *first = s_created(s_call(p1, &cmd.base, rid));
    char *second = s_created(s_call(p1, &cmd.base, rid));
    assert_string_equal(first, second);
    assert_int_equal(s_cohorts_in("Aberystwyth"), 1);
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM outbox WHERE type = 'cara.CohortCreated' AND key = '%s'", first);
    assert_int_equal(s_count("booking", sql), 1);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM audit WHERE action = 'cohort_created' AND entity_id = '%s'",
             first);
    assert_int_equal(s_count("booking", sql), 1);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM request_log WHERE request_key = 'booking:CreateCohort:p1:%s'",
             rid);
    assert_int_equal(s_count("booking", sql), 1);
    // A new request id is a new command.
    free(second);
    second = s_created(s_call(p1, &cmd.base, NULL));
    assert_string_not_equal(first, second);
    assert_int_equal(s_cohorts_in("Aberystwyth"), 2);
    free(first);
    free(second);
}

// The same request id with different content is a client's mistake: refused, nothing changed.
static void test_a_request_id_reused_for_other_content_is_refused(void **state) {
    (void)state;
    client_t *p1 = harness_client(h, "booking", "provider", "p1");
    Cara__CreateCohort cmd;
    s_cohort(&cmd, "Brecon");
    char rid[UUID_STR_LEN];
    uuid_new(rid);
    free(s_created(s_call(p1, &cmd.base, rid)));
    cmd.town = "Builth Wells";
    Cara__Reply *reply = s_call(p1, &cmd.base, rid);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__CONFLICT);
    assert_non_null(strstr(reply->message, "request id"));
    cara__reply__free_unpacked(reply, NULL);
    assert_int_equal(s_cohorts_in("Brecon"), 1);
    assert_int_equal(s_cohorts_in("Builth Wells"), 0);
}

// A repeat whose command would now be refused (the cohort is cancelled already) still gets its
// first answer, OK; a new request id gets the refusal.
static void test_a_repeat_that_would_now_be_refused_gets_the_first_answer(void **state) {
    (void)state;
    client_t *p1 = harness_client(h, "booking", "provider", "p1");
    Cara__CreateCohort cmd;
    s_cohort(&cmd, "Cardigan");
    char *cohort = s_created(s_call(p1, &cmd.base, NULL));
    Cara__CancelCohort cancel = CARA__CANCEL_COHORT__INIT;
    cancel.cohort_id = cohort;
    cancel.reason = "facilitator ill";
    char rid[UUID_STR_LEN];
    uuid_new(rid);
    for (int i = 0; i < 2; i++) {
        Cara__Reply *reply = s_call(p1, &cancel.base, rid);
        assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
        cara__reply__free_unpacked(reply, NULL);
    }
    Cara__Reply *reply = s_call(p1, &cancel.base, NULL);
    assert_int_not_equal(reply->status, CARA__REPLY__STATUS__OK);
    cara__reply__free_unpacked(reply, NULL);
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM outbox WHERE type = 'cara.CohortCancelled' AND key = '%s'",
             cohort);
    assert_int_equal(s_count("booking", sql), 1);
    free(cohort);
}

// The same when the refusal is found by reading alone (the case is no longer booked), which
// writes nothing that could fail on the stored request id in a batch's optimistic pass.
static void test_a_repeat_refused_by_reads_alone_gets_the_first_answer(void **state) {
    (void)state;
    client_t *p1 = harness_client(h, "booking", "provider", "p1");
    char *referral = ti_open_case(h, "dyfed-powys", "ONCE-CANCEL-1", "", 0);
    assert_non_null(referral);
    Cara__CreateCohort cmd;
    s_cohort(&cmd, "Llandeilo");
    char *cohort = s_created(s_call(p1, &cmd.base, NULL));
    Cara__BookSeat book = CARA__BOOK_SEAT__INIT;
    book.referral_id = referral;
    book.cohort_id = cohort;
    Cara__Reply *reply = s_call(p1, &book.base, NULL);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    cara__reply__free_unpacked(reply, NULL);
    Cara__CancelBooking cancel = CARA__CANCEL_BOOKING__INIT;
    cancel.referral_id = referral;
    cancel.reason = "offender moved out of the area";
    char rid[UUID_STR_LEN];
    uuid_new(rid);
    for (int i = 0; i < 2; i++) {
        reply = s_call(p1, &cancel.base, rid);
        assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
        cara__reply__free_unpacked(reply, NULL);
    }
    reply = s_call(p1, &cancel.base, NULL);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__CONFLICT);
    cara__reply__free_unpacked(reply, NULL);
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM audit WHERE action = 'booking_cancelled' AND entity_id = '%s'",
             referral);
    assert_int_equal(s_count("booking", sql), 1);
    free(referral);
    free(cohort);
}

// Request ids are per sender: another provider using the same id makes its own cohort.
static void test_request_ids_are_per_organisation(void **state) {
    (void)state;
    Cara__CreateCohort cmd;
    s_cohort(&cmd, "Crickhowell");
    char rid[UUID_STR_LEN];
    uuid_new(rid);
    char *a = s_created(s_call(harness_client(h, "booking", "provider", "p1"), &cmd.base, rid));
    char *b = s_created(s_call(harness_client(h, "booking", "provider", "p2"), &cmd.base, rid));
    assert_string_not_equal(a, b);
    assert_int_equal(s_cohorts_in("Crickhowell"), 2);
    free(a);
    free(b);
}

// The same request sent twice at once lands in one batch: still one cohort, one answer twice.
static void test_a_repeat_in_the_same_batch_is_applied_once(void **state) {
    (void)state;
    harness_client(h, "booking", "provider", "p1"); // its key is in the ring
    void *sock = transport_client(harness_ctx(h), ZMQ_DEALER, harness_endpoint(h, "booking"),
                                  harness_identity_keys(h, "provider", "p1"),
                                  harness_service_public(h, "booking"));
    assert_non_null(sock);
    Cara__CreateCohort cmd;
    s_cohort(&cmd, "Denbigh");
    uint8_t *data = NULL;
    size_t len = 0;
    char rid[UUID_STR_LEN];
    assert_int_equal(envelope_pack(&cmd.base, NULL, NULL, &data, &len, rid), 0);
    for (int i = 0; i < 3; i++)
        assert_true(zmq_send(sock, data, len, 0) == (int)len);
    free(data);
    char *ids[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) {
        zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
        assert_int_equal(zmq_poll(&item, 1, 10000), 1);
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        assert_true(zmq_msg_recv(&msg, sock, 0) >= 0);
        Cara__Envelope *env = envelope_unpack(zmq_msg_data(&msg), zmq_msg_size(&msg));
        zmq_msg_close(&msg);
        assert_non_null(env);
        assert_string_equal(env->correlation_id, rid);
        ids[i] = s_created((Cara__Reply *)envelope_payload(env, &cara__reply__descriptor));
        cara__envelope__free_unpacked(env, NULL);
    }
    zmq_close(sock);
    assert_string_equal(ids[0], ids[1]);
    assert_string_equal(ids[0], ids[2]);
    assert_int_equal(s_cohorts_in("Denbigh"), 1);
    for (int i = 0; i < 3; i++)
        free(ids[i]);
}

// Billing's commands too: a repeated AddContract stores one contract and answers OK again.
static void test_billing_applies_a_repeated_command_once(void **state) {
    (void)state;
    char from[16], to[16];
    int32_t today = (int32_t)(time_now_us() / 1000000 / 86400);
    time_format_date(today - 40, from, sizeof from);
    time_format_date(today + 400, to, sizeof to);
    Cara__Contract c = CARA__CONTRACT__INIT;
    c.contract_id = "ONCE-1";
    c.commissioner = "opcc-dyfed-powys";
    c.provider_id = "p1";
    c.licence_holder = "hampton-trust";
    c.starts_on = from;
    c.ends_on = to;
    c.cohort_fee_pence = 250000;
    c.victim_liaison_pence = 50000;
    c.delivery_cap_pence = 6000000;
    Cara__AddContract add = CARA__ADD_CONTRACT__INIT;
    add.contract = &c;
    client_t *finance = harness_client(h, "billing", "finance", "opcc-dyfed-powys");
    char rid[UUID_STR_LEN];
    uuid_new(rid);
    for (int i = 0; i < 2; i++) {
        Cara__Reply *reply = s_call(finance, &add.base, rid);
        if (reply->status != CARA__REPLY__STATUS__OK)
            fprintf(stderr, "AddContract: %d %s\n", reply->status, reply->message);
        assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
        cara__reply__free_unpacked(reply, NULL);
    }
    assert_int_equal(
        s_count("billing", "SELECT count(*) FROM contract WHERE contract_id = 'ONCE-1'"), 1);
    assert_int_equal(s_count("billing", "SELECT count(*) FROM audit WHERE action ="
                                        " 'contract_added' AND entity_id = 'ONCE-1'"),
                     1);
}

// Sends a raw envelope with the given event id; returns the reply envelope.
static Cara__Envelope *s_raw(client_t *c, const char *event_id) {
    Cara__CreateCohort cmd;
    s_cohort(&cmd, "Ruthin");
    uint8_t *body = NULL, *data = NULL;
    size_t body_len = 0, len = 0;
    assert_int_equal(envelope_encode_message(&cmd.base, &body, &body_len), 0);
    Cara__Envelope env = CARA__ENVELOPE__INIT;
    env.event_id = (char *)event_id;
    env.type = "cara.CreateCohort";
    env.schema_version = ENVELOPE_SCHEMA_VERSION;
    env.payload.data = body;
    env.payload.len = body_len;
    assert_int_equal(envelope_encode_message(&env.base, &data, &len), 0);
    Cara__Envelope *reply = client_call_raw(c, data, len, 5000);
    free(body);
    free(data);
    assert_non_null(reply);
    return reply;
}

// A request id is the key a retry is recognised by: one that is not a UUID is refused, naming
// the field, and nothing is done; one too long to echo is not echoed cut short.
static void test_a_request_id_must_be_a_uuid(void **state) {
    (void)state;
    client_t *p1 = harness_client(h, "booking", "provider", "p1");
    char long_id[201];
    memset(long_id, 'a', 200);
    long_id[200] = '\0';
    const char *bad[] = {"retry-1", "", long_id};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        Cara__Envelope *env = s_raw(p1, bad[i]);
        Cara__Reply *reply = (Cara__Reply *)envelope_payload(env, &cara__reply__descriptor);
        assert_non_null(reply);
        assert_int_equal(reply->status, CARA__REPLY__STATUS__INVALID);
        assert_int_equal(reply->n_errors, 1);
        assert_string_equal(reply->errors[0]->field, "event_id");
        assert_string_equal(env->correlation_id, i == 2 ? "" : bad[i]);
        cara__reply__free_unpacked(reply, NULL);
        cara__envelope__free_unpacked(env, NULL);
    }
    assert_int_equal(s_cohorts_in("Ruthin"), 0);
    // The client library refuses to send one at all.
    Cara__CreateCohort cmd;
    s_cohort(&cmd, "Ruthin");
    assert_null(client_call(p1, &cmd.base, "retry-1", NULL, 1000, 0));
    assert_null(client_call(p1, &cmd.base, long_id, NULL, 1000, 0));
    assert_int_equal(s_cohorts_in("Ruthin"), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_repeated_request_id_is_applied_once),
        cmocka_unit_test(test_a_request_id_reused_for_other_content_is_refused),
        cmocka_unit_test(test_a_repeat_that_would_now_be_refused_gets_the_first_answer),
        cmocka_unit_test(test_a_repeat_refused_by_reads_alone_gets_the_first_answer),
        cmocka_unit_test(test_request_ids_are_per_organisation),
        cmocka_unit_test(test_a_repeat_in_the_same_batch_is_applied_once),
        cmocka_unit_test(test_billing_applies_a_repeated_command_once),
        cmocka_unit_test(test_a_request_id_must_be_a_uuid),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
