// A retry that comes while its original's COMMIT is still on its way. With two request lanes
// (db.overlap_commits) the retry is run on the second connection before the first one's
// COMMIT is read back, and a look-up in request_log does not see an uncommitted row: unless the
// key is claimed (and so waited for), the retry ran as new, met the original's effect and was
// refused ("case is booked", "has been withdrawn"), though the original succeeded. Also: a
// publishing national export is published once per request id.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include <cmocka.h>

#include "booking.pb-c.h"
#include "cara/timeutil.h"
#include "cara/uuid.h"
#include "harness.h"
#include "national.pb-c.h"
#include "test_intake_support.h"

static harness_t *h;

static int s_setup(void **state) {
    (void)state;
    h = harness_new("request_lanes");
    if (!h)
        return -1;
    ti_route(h, 0);
    harness_config(h, "intake", "pseudonym_secret", "\"lanes-secret-0123456789\"");
    harness_config(h, "national", "pseudonym_secret", "\"lanes-secret-0123456789\"");
    return harness_start(h, "intake") == 0 && harness_start(h, "triage") == 0 &&
                   harness_start(h, "booking") == 0 && harness_start(h, "national") == 0
               ? 0
               : -1;
}

static int s_teardown(void **state) {
    (void)state;
    harness_destroy(&h);
    return 0;
}

static void s_exec(db_t *db, const char *sql) {
    if (db_exec(db, sql, 0, NULL) != 0)
        fail_msg("%s: %s %s", sql, db_sqlstate(db), db_error(db));
}

// A DEALER of its own (the harness client waits for each answer; here two are in flight).
static void *s_dealer(const char *service, const char *role, const char *org) {
    harness_client(h, service, role, org); // enrols the identity's key
    void *s =
        transport_client(harness_ctx(h), ZMQ_DEALER, harness_endpoint(h, service),
                         harness_identity_keys(h, role, org), harness_service_public(h, service));
    assert_non_null(s);
    return s;
}

static void s_send(void *s, const ProtobufCMessage *msg, const char *rid) {
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(envelope_pack(msg, rid, NULL, &data, &len, NULL), 0);
    assert_true(zmq_send(s, data, len, 0) == (int)len);
    free(data);
}

// Sends `original` with a request id on one socket while hold_sql (run in a transaction of its
// own) holds up its handler, and the COMMIT of its batch is made slow (a deferred trigger on
// slow_table sleeps 1.5 s); then on a second socket `other` (if not NULL: a refusal found by
// reading, which turns the second lane's batch careful) and the original again, same request
// id, same content: the retry. The hold is let go, so the retry's batch runs while the
// original's COMMIT is on its way. Fills the three answers' statuses (other's -1 if none).
static void s_race(const char *service, const char *role, const char *org, const char *hold_sql,
                   const char *slow_table, const ProtobufCMessage *original,
                   const ProtobufCMessage *other, int status[3]) {
    db_t *su = harness_db(h, service);
    char sql[300];
    s_exec(su, "CREATE OR REPLACE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS"
               " $$ BEGIN PERFORM pg_sleep(1.5); RETURN NULL; END $$");
    snprintf(sql, sizeof sql,
             "CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON %s"
             " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()",
             slow_table);
    s_exec(su, sql);
    void *a = s_dealer(service, role, org), *b = s_dealer(service, role, org);
    Cara__HealthRequest hr = CARA__HEALTH_REQUEST__INIT; // both handshakes done first
    char message[256];
    s_send(a, &hr.base, NULL);
    assert_int_equal(harness_recv_status(a, 10000, message, sizeof message),
                     CARA__REPLY__STATUS__OK);
    s_send(b, &hr.base, NULL);
    assert_int_equal(harness_recv_status(b, 10000, message, sizeof message),
                     CARA__REPLY__STATUS__OK);

    db_t *holder = db_connect(harness_conninfo(h, service), service, 5000);
    assert_non_null(holder);
    s_exec(holder, "BEGIN");
    s_exec(holder, hold_sql);
    char rid[UUID_STR_LEN];
    uuid_new(rid);
    s_send(a, original, rid);
    usleep(300000); // the original's handler is waiting for the hold
    if (other)
        s_send(b, other, NULL);
    s_send(b, original, rid);
    usleep(300000);
    s_exec(holder, "COMMIT");
    db_destroy(&holder);

    status[0] = harness_recv_status(a, 10000, message, sizeof message);
    fprintf(stderr, "# original: %d %s\n", status[0], message);
    status[1] = other ? harness_recv_status(b, 10000, message, sizeof message) : -1;
    status[2] = harness_recv_status(b, 10000, message, sizeof message);
    fprintf(stderr, "# retry: %d %s\n", status[2], message);
    zmq_close(a);
    zmq_close(b);
    snprintf(sql, sizeof sql, "DROP TRIGGER slow_commit ON %s", slow_table);
    s_exec(su, sql);
    // A claim is filled in or undone with its request: none is ever committed without answer.
    char *unanswered = harness_value(h, service,
                                     "SELECT count(*) FROM request_log"
                                     " WHERE reply IS NULL");
    assert_non_null(unanswered);
    assert_string_equal(unanswered, "0");
    free(unanswered);
}

static char *s_count(const char *service, const char *sql_fmt, const char *id) {
    char sql[300];
    snprintf(sql, sizeof sql, sql_fmt, id);
    return harness_value(h, service, sql);
}

// A provider's case, open in booking, and a cohort in Tregaron to book it into.
static char *s_bookable_case(const char *reference) {
    char *referral = ti_open_case(h, "dyfed-powys", reference, "", 0);
    assert_non_null(referral);
    char a[16], b[16];
    int32_t today = (int32_t)(time_now_us() / 1000000 / 86400);
    Cara__CreateCohort cc = CARA__CREATE_COHORT__INIT;
    cc.cohort_type = "male_intimate";
    cc.town = "Tregaron";
    cc.capacity = 10;
    cc.part_a_date = time_format_date(today + 10, a, sizeof a);
    cc.part_b_date = time_format_date(today + 42, b, sizeof b);
    Cara__Reply *reply = harness_call(harness_client(h, "booking", "provider", "p1"), &cc.base);
    assert_non_null(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    cara__reply__free_unpacked(reply, NULL);
    return referral;
}

static void s_book_race(const char *reference, int with_other) {
    char *referral = s_bookable_case(reference);
    char hold[200], missing[UUID_STR_LEN];
    snprintf(hold, sizeof hold, "SELECT 1 FROM provider_case WHERE referral_id = '%s' FOR UPDATE",
             referral);
    Cara__BookSeat book = CARA__BOOK_SEAT__INIT, other = CARA__BOOK_SEAT__INIT;
    book.referral_id = referral;
    other.referral_id = uuid_new(missing);
    int status[3];
    s_race("booking", "provider", "p1", hold, "booking", &book.base,
           with_other ? &other.base : NULL, status);
    assert_int_equal(status[0], CARA__REPLY__STATUS__OK);
    if (with_other)
        assert_int_equal(status[1], CARA__REPLY__STATUS__NOT_FOUND);
    // The retry of a request that succeeded gets its answer, never a refusal.
    assert_int_equal(status[2], CARA__REPLY__STATUS__OK);
    char *n = s_count(
        "booking",
        "SELECT count(*) FROM booking JOIN provider_case USING (case_id) WHERE referral_id = '%s'",
        referral);
    assert_non_null(n);
    assert_string_equal(n, "1");
    free(n);
    free(referral);
}

static void
test_a_retried_booking_after_a_refusal_in_the_overlapping_lane_is_answered_ok(void **state) {
    (void)state;
    s_book_race("LANES-BOOK-1", 1);
}

// Alone, the retry's optimistic pass waits on the case's lock until the original commits, and
// its refusal (which keeps nothing) is asked again carefully: the look-up then sees the answer.
static void test_a_retried_booking_alone_in_the_overlapping_lane_is_answered_ok(void **state) {
    (void)state;
    s_book_race("LANES-BOOK-2", 0);
}

static void test_a_retried_withdrawal_in_the_overlapping_lane_is_answered_ok(void **state) {
    (void)state;
    char *referral = ti_submit_id(h, "dyfed-powys", ti_referral("dyfed-powys", "LANES-WITHDRAW-1"));
    assert_non_null(referral);

    char hold[200];
    snprintf(hold, sizeof hold, "SELECT 1 FROM referral WHERE referral_id = '%s' FOR UPDATE",
             referral);
    Cara__WithdrawReferral w = CARA__WITHDRAW_REFERRAL__INIT;
    w.referral_id = referral;
    w.reason_code = "caution_rescinded";
    w.reason = "rescinded on review";
    int status[3];
    s_race("intake", "police", "dyfed-powys", hold, "withdrawal", &w.base, NULL, status);
    assert_int_equal(status[0], CARA__REPLY__STATUS__OK);
    assert_int_equal(status[2], CARA__REPLY__STATUS__OK);
    char *n =
        s_count("intake", "SELECT count(*) FROM withdrawal WHERE referral_id = '%s'", referral);
    assert_non_null(n);
    assert_string_equal(n, "1");
    free(n);
    free(referral);
}

static char *s_published(void) {
    return harness_value(h, "national",
                         "SELECT count(*) FROM outbox WHERE type = 'cara.NationalReturnPublished'"
                         " AND key = '2025Q2'");
}

static int s_export(const char *period, int publish, const char *rid) {
    Cara__NationalExport req = CARA__NATIONAL_EXPORT__INIT;
    req.period = (char *)period;
    req.format = "json";
    req.publish = publish;
    client_t *ht = harness_client(h, "national", "hampton_trust", "ht");
    Cara__Reply *reply = client_call(ht, &req.base, rid, NULL, 10000, 0);
    assert_non_null(reply);
    int status = (int)reply->status;
    if (status == CARA__REPLY__STATUS__OK) { // a repeat gets the return too
        Cara__NationalExportResult *res =
            cara__national_export_result__unpack(NULL, reply->payload.len, reply->payload.data);
        assert_non_null(res);
        assert_non_null(strstr(res->content, period));
        cara__national_export_result__free_unpacked(res, NULL);
    }
    cara__reply__free_unpacked(reply, NULL);
    return status;
}

static void test_a_retried_publishing_export_publishes_once(void **state) {
    (void)state;
    char rid[UUID_STR_LEN], again[UUID_STR_LEN];
    uuid_new(rid);
    for (int i = 0; i < 3; i++)
        assert_int_equal(s_export("2025Q2", 1, rid), CARA__REPLY__STATUS__OK);
    char *n = s_published();
    assert_non_null(n);
    assert_string_equal(n, "1");
    free(n);
    // The same id for another period is refused; a new request publishes again.
    assert_int_equal(s_export("2025Q3", 1, rid), CARA__REPLY__STATUS__CONFLICT);
    assert_int_equal(s_export("2025Q2", 1, uuid_new(again)), CARA__REPLY__STATUS__OK);
    // An export that does not publish writes nothing to the stream, however often.
    assert_int_equal(s_export("2025Q2", 0, rid), CARA__REPLY__STATUS__OK);
    n = s_published();
    assert_non_null(n);
    assert_string_equal(n, "2");
    free(n);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_a_retried_booking_after_a_refusal_in_the_overlapping_lane_is_answered_ok),
        cmocka_unit_test(test_a_retried_booking_alone_in_the_overlapping_lane_is_answered_ok),
        cmocka_unit_test(test_a_retried_withdrawal_in_the_overlapping_lane_is_answered_ok),
        cmocka_unit_test(test_a_retried_publishing_export_publishes_once),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
