// Chaos with deliveries: a provider delivers cohorts (referrals submitted, seats booked,
// attendance recorded at Part A and Part B) while a fault injector SIGKILLs and restarts random
// services (all five, billing included) and once restarts PostgreSQL in immediate mode; every
// command is retried under its own request id until answered. Then an invoice run: the
// invoiced amounts and line counts, and the national case and cohort counts, equal what the
// test itself delivered, with no duplicate and no dead letter.
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "billing.pb-c.h"
#include "booking.pb-c.h"
#include "cara/timeutil.h"
#include "cara/uuid.h"
#include "test_intake_support.h"

#define COHORTS 25
#define PER_COHORT 4
#define FEE 250000
#define LIAISON 50000
#define LICENCE 45000
#define SECRET "chaos-deployment-secret-0123456789"
static const char *const s_services[] = {"intake", "triage", "booking", "billing", "national"};
static harness_t *h;

typedef struct {
    const keypair_t *police, *provider;
    int cohorts;  // delivered (both parts attended by everyone booked)
    long retries; // commands sent again after no answer or UNAVAILABLE
    volatile int done;
} delivery_t;

// Sends msg to service as keys until it is answered other than UNAVAILABLE, under one request
// id (so a retry of a command that did commit gets the first answer). Returns the reply.
static Cara__Reply *s_until(delivery_t *d, const char *service, const keypair_t *keys,
                            const ProtobufCMessage *msg) {
    char request_id[UUID_STR_LEN];
    uuid_new(request_id);
    for (;;) {
        client_t *c = client_new(harness_ctx(h), harness_endpoint(h, service), keys,
                                 harness_service_public(h, service));
        Cara__Reply *reply = c ? client_call(c, msg, request_id, NULL, 2000, 0) : NULL;
        client_destroy(&c);
        if (reply && reply->status != CARA__REPLY__STATUS__UNAVAILABLE)
            return reply;
        if (reply)
            cara__reply__free_unpacked(reply, NULL);
        d->retries++;
        usleep(100000);
    }
}

// Polls a one-value query (the database may be restarting) until it equals expected.
static int s_wait(const char *schema, const char *sql, const char *expected) {
    int64_t deadline = time_mono_ms() + 120000;
    while (time_mono_ms() < deadline) {
        char *v = harness_value(h, schema, sql);
        int ok = v && strcmp(v, expected) == 0;
        free(v);
        if (ok)
            return 0;
        usleep(100000);
    }
    return -1;
}

static void s_exec(const char *sql, const char *value) {
    const char *values[] = {value};
    while (db_ensure(harness_db(h, "booking")) != 0 ||
           db_exec(harness_db(h, "booking"), sql, 1, values) != 0)
        usleep(200000);
}

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "chaos billing: %s failed (line %d)\n", #x, __LINE__);                 \
            goto cleanup;                                                                          \
        }                                                                                          \
    } while (0)

// One cohort: PER_COHORT referrals to open cases, a cohort, seats, attendance at both parts.
// Returns 0 when delivered, -1 (reason on stderr) if a step failed (not an assertion: this
// runs on the provider thread).
static int s_deliver(delivery_t *d, int n) {
    char *ids[PER_COHORT] = {0};
    int rc = -1;
    for (int i = 0; i < PER_COHORT; i++) {
        char ref[40], when[40];
        snprintf(ref, sizeof ref, "CB-%d-%02d-%d", getpid(), n, i);
        Cara__Referral *r = ti_referral("dyfed-powys", ref);
        CHECK(r);
        ti_set(&r->caution->given_at,
               time_format_iso(time_now_us() - 2LL * 86400 * 1000000, when, sizeof when));
        Cara__SubmitReferral cmd = CARA__SUBMIT_REFERRAL__INIT;
        cmd.referral = r;
        Cara__Reply *reply = s_until(d, "intake", d->police, &cmd.base);
        Cara__ReferralAccepted *ok = ti_accepted(reply);
        if (!ok)
            ti_print_errors(reply);
        CHECK(ok);
        ids[i] = strdup(ok->referral_id);
        cara__referral_accepted__free_unpacked(ok, NULL);
        cara__reply__free_unpacked(reply, NULL);
        cara__referral__free_unpacked(r, NULL);
        char sql[200];
        snprintf(sql, sizeof sql, "SELECT status FROM provider_case WHERE referral_id = '%s'",
                 ids[i]);
        CHECK(s_wait("booking", sql, "open") == 0);
    }
    char da[16], db_[16];
    int32_t today = (int32_t)(time_now_us() / 1000000 / 86400);
    time_format_date(today + 10, da, sizeof da);
    time_format_date(today + 38, db_, sizeof db_);
    Cara__CreateCohort create = CARA__CREATE_COHORT__INIT;
    create.cohort_type = "male_intimate";
    create.town = "Aberystwyth";
    create.capacity = 12;
    create.part_a_date = da;
    create.part_b_date = db_;
    Cara__Reply *reply = s_until(d, "booking", d->provider, &create.base);
    ti_print_errors(reply);
    CHECK(reply->status == CARA__REPLY__STATUS__OK);
    Cara__CohortRef *ref = cara__cohort_ref__unpack(NULL, reply->payload.len, reply->payload.data);
    CHECK(ref);
    char cohort[UUID_STR_LEN];
    snprintf(cohort, sizeof cohort, "%s", ref->cohort_id);
    cara__cohort_ref__free_unpacked(ref, NULL);
    cara__reply__free_unpacked(reply, NULL);
    for (int i = 0; i < PER_COHORT; i++) {
        Cara__BookSeat book = CARA__BOOK_SEAT__INIT;
        book.referral_id = ids[i];
        book.cohort_id = cohort;
        reply = s_until(d, "booking", d->provider, &book.base);
        ti_print_errors(reply);
        CHECK(reply->status == CARA__REPLY__STATUS__OK);
        cara__reply__free_unpacked(reply, NULL);
    }
    for (int part = 0; part < 2; part++) {
        // Time passes to the day of the part (as in test_billing_chain).
        s_exec(part == 0 ? "UPDATE cohort SET part_b_date = part_b_date - (part_a_date -"
                           " current_date), part_a_date = current_date WHERE"
                           " cohort_id = $1 AND part_a_date > current_date"
                         : "UPDATE cohort SET part_a_date = part_a_date - (part_b_date -"
                           " current_date), part_b_date = current_date WHERE"
                           " cohort_id = $1 AND part_b_date > current_date",
               cohort);
        Cara__AttendanceEntry e[PER_COHORT], *entries[PER_COHORT];
        for (int i = 0; i < PER_COHORT; i++) {
            cara__attendance_entry__init(&e[i]);
            e[i].referral_id = ids[i];
            e[i].status = "attended";
            entries[i] = &e[i];
        }
        Cara__RecordAttendance att = CARA__RECORD_ATTENDANCE__INIT;
        att.cohort_id = cohort;
        att.part = part == 0 ? "A" : "B";
        att.entries = entries;
        att.n_entries = PER_COHORT;
        reply = s_until(d, "booking", d->provider, &att.base);
        ti_print_errors(reply);
        CHECK(reply->status == CARA__REPLY__STATUS__OK);
        cara__reply__free_unpacked(reply, NULL);
    }
    rc = 0;
cleanup:
    for (int i = 0; i < PER_COHORT; i++)
        free(ids[i]);
    return rc;
}

static void *s_provider(void *arg) {
    delivery_t *d = arg;
    for (int n = 0; n < COHORTS; n++) {
        if (s_deliver(d, n) == 0)
            d->cohorts++;
        usleep(300000); // spread the deliveries over the fault window
    }
    d->done = 1;
    return NULL;
}

static void s_expect(const char *schema, const char *sql, long expect) {
    char want[32];
    snprintf(want, sizeof want, "%ld", expect);
    assert_int_equal(harness_wait_value(h, schema, sql, want, 180000), 0);
}

static void test_chaos_billing(void **state) {
    (void)state;
    h = harness_new("chaos_billing");
    assert_non_null(h);
    ti_route(h, 0);
    harness_config(h, "intake", "pseudonym_secret", "\"" SECRET "\"");
    harness_config(h, "national", "pseudonym_secret", "\"" SECRET "\"");
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(harness_start(h, s_services[i]), 0);
    // The contract: per delivered cohort a fee and victim liaison (provider -> commissioner)
    // and a licence fee (Hampton Trust -> provider).
    char from[16], to[16], period[8];
    int32_t today = (int32_t)(time_now_us() / 1000000 / 86400);
    time_format_date(today - 40, from, sizeof from);
    time_format_date(today + 400, to, sizeof to);
    Cara__CohortFee fee = CARA__COHORT_FEE__INIT;
    fee.cohort_type = "male_intimate";
    fee.fee_pence = FEE;
    Cara__CohortFee *fees[] = {&fee};
    Cara__Contract c = CARA__CONTRACT__INIT;
    c.contract_id = "DP-CHAOS";
    c.commissioner = "opcc-dyfed-powys";
    c.provider_id = "p1";
    c.licence_holder = "hampton-trust";
    c.starts_on = from;
    c.ends_on = to;
    c.cohort_fee_pence = FEE;
    c.cohort_fees = fees;
    c.n_cohort_fees = 1;
    c.victim_liaison_pence = LIAISON;
    c.licence_fee_pence_per_cohort = LICENCE;
    c.delivery_cap_pence = 100000000;
    c.offender_cap = 10000;
    Cara__AddContract add = CARA__ADD_CONTRACT__INIT;
    add.contract = &c;
    Cara__Reply *reply =
        harness_call(harness_client(h, "billing", "finance", "opcc-dyfed-powys"), &add.base);
    assert_non_null(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    cara__reply__free_unpacked(reply, NULL);
    client_t *commissioner = harness_client(h, "billing", "commissioner", "opcc-dyfed-powys");
    assert_non_null(commissioner);
    delivery_t d = {harness_identity_keys(h, "police", "dyfed-powys"),
                    harness_identity_keys(h, "provider", "p1"), 0, 0, 0};
    assert_non_null(d.police);
    assert_non_null(d.provider);
    pthread_t thread;
    pthread_create(&thread, NULL, s_provider, &d);
    // The fault injector, while the provider delivers: a random service killed and restarted
    // every 300-1000 ms, and PostgreSQL restarted once.
    srand((unsigned)getpid());
    int kills = 0, pg_restarts = 0, during = 0;
    for (int round = 0; !d.done || round < 8; round++) {
        usleep((useconds_t)(300000 + rand() % 700000));
        const char *victim = s_services[rand() % 5];
        harness_stop(h, victim, SIGKILL);
        kills++;
        during += !d.done;
        if (round == 3) {
            char cmd[1024];
            snprintf(cmd, sizeof cmd, "deploy/pg-cluster.sh restart-immediate %s %s -c fsync=off",
                     getenv("CARA_TEST_PGDATA"), getenv("CARA_TEST_PGPORT"));
            assert_int_equal(system(cmd), 0);
            pg_restarts++;
        }
        assert_int_equal(harness_start(h, victim), 0);
    }
    pthread_join(thread, NULL);
    assert_int_equal(d.cohorts, COHORTS);
    assert_true(during >= 4); // the faults did land while cohorts were being delivered
    long cases = (long)COHORTS * PER_COHORT;
    // Booking: every case booked and completed once; billing: one line of each kind a cohort.
    s_expect("booking", "SELECT count(*) FROM provider_case", cases);
    s_expect("booking", "SELECT count(DISTINCT referral_id) FROM provider_case", cases);
    s_expect("booking", "SELECT count(*) FROM cohort", COHORTS);
    s_expect("billing", "SELECT count(*) FROM billable_line WHERE kind = 'cohort_fee'", COHORTS);
    s_expect("billing", "SELECT count(*) FROM billable_line WHERE kind = 'victim_liaison'",
             COHORTS);
    s_expect("billing", "SELECT count(*) FROM billable_line WHERE kind = 'licence_fee'", COHORTS);
    s_expect("billing",
             "SELECT coalesce(sum(participants), 0) FROM billable_line"
             " WHERE kind = 'cohort_fee'",
             cases);
    s_expect("billing", "SELECT count(*) FROM billable_line", 3L * COHORTS);
    // National: every case booked and completed, every cohort with its participants.
    s_expect("national", "SELECT count(*) FROM case_fact WHERE booked_at IS NOT NULL", cases);
    s_expect("national", "SELECT count(*) FROM case_fact WHERE completed_at IS NOT NULL", cases);
    s_expect("national", "SELECT count(*) FROM cohort_fact", COHORTS);
    s_expect("national", "SELECT coalesce(sum(participants), 0) FROM cohort_fact", cases);
    // The invoice run for the month: the amounts the test counted itself.
    time_format_date(today, period, sizeof period);
    period[7] = '\0';
    Cara__RunInvoices run = CARA__RUN_INVOICES__INIT;
    run.period = period;
    reply = harness_call(commissioner, &run.base);
    assert_non_null(reply);
    ti_print_errors(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    cara__reply__free_unpacked(reply, NULL);
    long provider_pence = (long)COHORTS * (FEE + LIAISON), licence_pence = (long)COHORTS * LICENCE;
    char want[200];
    snprintf(want, sizeof want, "hampton-trust-INV-00001:%ld,p1-INV-00001:%ld", licence_pence,
             provider_pence);
    char *invoices = harness_value(
        h, "billing",
        "SELECT string_agg(number || ':' || total_pence, ',' ORDER BY number) FROM invoice");
    assert_non_null(invoices);
    assert_string_equal(invoices, want);
    s_expect("billing", "SELECT count(*) FROM billable_line WHERE invoice_id IS NULL", 0);
    long dead = 0;
    for (int i = 0; i < 5; i++) {
        char *v = harness_value(h, s_services[i], "SELECT count(*) FROM dead_letter");
        assert_non_null(v);
        dead += atol(v);
        free(v);
    }
    char *dups = harness_value(h, "booking",
                               "SELECT count(*) - count(DISTINCT referral_id) FROM provider_case");
    char *national = harness_value(h, "national",
                                   "SELECT count(*) || ' cases, ' || count(completed_at) ||"
                                   " ' completed' FROM case_fact");
    printf("# chaos billing: referrals %ld, cohorts delivered %d, kills %d (%d during delivery),"
           " PostgreSQL restarts %d, command retries %ld, duplicates %s, lost 0, dead letters"
           " %ld\n# invoiced: %s (expected p1 %ld pence, hampton-trust %ld pence); national: %s,"
           " %d cohorts\n",
           cases, d.cohorts, kills, during, pg_restarts, d.retries, dups, dead, invoices,
           provider_pence, licence_pence, national, COHORTS);
    assert_string_equal(dups, "0");
    assert_int_equal(dead, 0);
    free(dups);
    free(national);
    free(invoices);
    harness_destroy(&h);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_chaos_billing)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
