// A transaction that never ends (a stray operator session, or a bug that leaves one of the
// service's own connections in a transaction) must not stop a service for ever. Every service
// connection has a lock_timeout (db.lock_timeout_ms): a request that waits longer for a lock is
// answered "retry" and applied once when retried; a consumer batch that waits is retried, never
// dead-lettered; once the lock goes, everything goes on.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "booking.pb-c.h"
#include "cara/timeutil.h"
#include "cara/uuid.h"
#include "harness.h"
#include "test_intake_support.h"

static harness_t *h;

static int s_setup(void **state) {
    (void)state;
    h = harness_new("stuck_lock");
    if (!h)
        return -1;
    ti_route(h, 0);
    harness_config(h, "booking", "db.lock_timeout_ms", "1000");
    return harness_start(h, "intake") == 0 && harness_start(h, "triage") == 0 &&
                   harness_start(h, "booking") == 0
               ? 0
               : -1;
}

static int s_teardown(void **state) {
    (void)state;
    harness_destroy(&h);
    return 0;
}

// Another session holding a lock the service needs, in an open transaction.
static db_t *s_hold(const char *sql) {
    db_t *db = db_connect(harness_conninfo(h, "booking"), "booking", 5000);
    assert_non_null(db);
    assert_int_equal(db_exec(db, "BEGIN", 0, NULL), 0);
    if (db_exec(db, sql, 0, NULL) != 0)
        fprintf(stderr, "%s: %s %s\n", sql, db_sqlstate(db), db_error(db));
    assert_int_equal(db_sqlstate(db)[0], '\0');
    return db;
}

static void s_release(db_t **db) {
    assert_int_equal(db_exec(*db, "COMMIT", 0, NULL), 0);
    db_destroy(db);
}

static long s_count(const char *sql) {
    char *v = harness_value(h, "booking", sql);
    assert_non_null(v);
    long n = atol(v);
    free(v);
    return n;
}

static void test_a_request_behind_a_stuck_lock_is_answered_then_applied_once(void **state) {
    (void)state;
    int32_t today = (int32_t)(time_now_us() / 1000000 / 86400);
    char da[16], db_[16];
    time_format_date(today + 10, da, sizeof da);
    time_format_date(today + 42, db_, sizeof db_);
    Cara__CreateCohort cmd = CARA__CREATE_COHORT__INIT;
    cmd.cohort_type = "male_intimate";
    cmd.town = "Lampeter";
    cmd.capacity = 10;
    cmd.part_a_date = da;
    cmd.part_b_date = db_;
    client_t *p1 = harness_client(h, "booking", "provider", "p1");
    char rid[UUID_STR_LEN];
    uuid_new(rid);
    // The outbox lock: every command that publishes an event takes it.
    db_t *holder = s_hold("SELECT pg_advisory_xact_lock(hashtext('booking.outbox'))");
    int64_t t0 = time_mono_ms();
    Cara__Reply *reply = client_call(p1, &cmd.base, rid, NULL, 15000, 0);
    int64_t waited = time_mono_ms() - t0;
    assert_non_null(reply); // answered, not left waiting for the lock
    fprintf(stderr, "# answered %d (%s) after %lld ms behind the held lock\n", reply->status,
            reply->message, (long long)waited);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__UNAVAILABLE);
    assert_true(waited < 10000);
    cara__reply__free_unpacked(reply, NULL);
    assert_int_equal(harness_log_has(h, "booking", "\"sqlstate\":\"55P03\""), 1);
    assert_int_equal(s_count("SELECT count(*) FROM cohort WHERE town = 'Lampeter'"), 0);
    s_release(&holder);
    // The retry, with the same request id, is applied once.
    for (int i = 0; i < 2; i++) {
        reply = client_call(p1, &cmd.base, rid, NULL, 5000, 0);
        assert_non_null(reply);
        assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
        cara__reply__free_unpacked(reply, NULL);
    }
    assert_int_equal(s_count("SELECT count(*) FROM cohort WHERE town = 'Lampeter'"), 1);
}

static void test_a_consumer_behind_a_stuck_lock_retries_and_dead_letters_nothing(void **state) {
    (void)state;
    long timeouts_before = s_count("SELECT count(*) FROM dead_letter");
    // Booking's consumer of the triage stream writes provider cases: hold their table.
    db_t *holder = s_hold("LOCK TABLE booking.provider_case IN EXCLUSIVE MODE");
    Cara__Referral *r = ti_referral("dyfed-powys", "STUCK-LOCK-1");
    assert_non_null(r);
    char when[40];
    ti_set(&r->caution->given_at,
           time_format_iso(time_now_us() - 2LL * 86400 * 1000000, when, sizeof when));
    Cara__Reply *reply = ti_submit(harness_client(h, "intake", "police", "dyfed-powys"), r);
    Cara__ReferralAccepted *ok = ti_accepted(reply);
    assert_non_null(ok);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT status FROM provider_case WHERE referral_id = '%s'",
             ok->referral_id);
    cara__referral_accepted__free_unpacked(ok, NULL);
    cara__reply__free_unpacked(reply, NULL);
    cara__referral__free_unpacked(r, NULL);
    // Several lock timeouts go by while the lock is held.
    for (int i = 0; i < 100 && harness_log_has(h, "booking", "\"sqlstate\":\"55P03\"") != 1; i++)
        usleep(100 * 1000);
    sleep(3);
    assert_int_equal(s_count("SELECT count(*) FROM dead_letter"), timeouts_before);
    s_release(&holder);
    assert_int_equal(harness_wait_value(h, "booking", sql, "open", 15000), 0);
    assert_int_equal(s_count("SELECT count(*) FROM dead_letter"), timeouts_before);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_request_behind_a_stuck_lock_is_answered_then_applied_once),
        cmocka_unit_test(test_a_consumer_behind_a_stuck_lock_retries_and_dead_letters_nothing),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
