// billing with the Dyfed-Powys figures (PCC decision DLI364): 20 cohorts of 10 delivered give
// exactly GBP 60,000 of delivery invoices (50,000 cohort fees + 10,000 victim liaison), of
// which GBP 9,000 licence fee is invoiced by Hampton Trust to the provider; the 21st cohort is
// held over cap until a variation; 9 facilitators trained are billed at actual cost; invoice
// numbers run without gaps; replaying the whole booking stream changes no invoice.
// Deliveries are real CohortDelivered events on the booking service's stream.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "billing.pb-c.h"
#include "booking.pb-c.h"
#include "cara/stream.h"
#include "cara/uuid.h"
#include "harness.h"

static harness_t *h;

static int setup(void **state) {
    (void)state;
    h = harness_new("billing_dp");
    return h && harness_start(h, "booking") == 0 && harness_start(h, "billing") == 0 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    harness_destroy(&h);
    return 0;
}

static client_t *s_finance(void) { return harness_client(h, "billing", "finance", "p1"); }

static void s_ok(ProtobufCMessage *msg) {
    Cara__Reply *reply = harness_call(s_finance(), msg);
    assert_non_null(reply);
    if (reply->status != CARA__REPLY__STATUS__OK)
        for (size_t i = 0; i < reply->n_errors; i++)
            fprintf(stderr, "%s: %s\n", reply->errors[i]->field, reply->errors[i]->reason);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    cara__reply__free_unpacked(reply, NULL);
}

static void s_deliver(int n) {
    db_t *db = harness_db(h, "booking");
    assert_int_equal(db_begin(db), 0);
    char id[UUID_STR_LEN], a[16], b[16];
    uuid_new(id);
    snprintf(a, sizeof a, "2025-%02d-%02d", 5 + n / 10, 1 + n % 10);
    snprintf(b, sizeof b, "2025-%02d-%02d", 6 + n / 10, 5 + n % 10);
    Cara__CohortDelivered ev = CARA__COHORT_DELIVERED__INIT;
    ev.cohort_id = id;
    ev.provider_id = "p1";
    ev.cohort_type = n % 2 ? "male_intimate" : "female_intimate";
    ev.participants = 10;
    ev.part_a_date = a;
    ev.part_b_date = b;
    ev.town = "Carmarthen";
    assert_true(outbox_append(db, &ev.base, id, "p1", NULL, NULL) > 0);
    assert_int_equal(db_commit(db), 0);
}

static long long s_sum(const char *where) {
    char sql[400];
    snprintf(sql, sizeof sql, "SELECT coalesce(sum(amount_pence), 0) FROM billable_line WHERE %s",
             where);
    char *v = harness_value(h, "billing", sql);
    long long n = atoll(v);
    free(v);
    return n;
}

static void test_dyfed_powys_contract(void **state) {
    (void)state;
    Cara__Contract c = CARA__CONTRACT__INIT;
    c.contract_id = "DLI364";
    c.commissioner = "opcc-dyfed-powys";
    c.provider_id = "p1";
    c.licence_holder = "hampton-trust";
    c.starts_on = "2025-04-01";
    c.ends_on = "2026-03-31";
    c.cohort_fee_pence = 250000;
    c.victim_liaison_pence = 50000;
    c.licence_fee_pence_per_cohort = 45000;  // GBP 9,000 over 20 cohorts
    c.delivery_cap_pence = 6000000;
    c.offender_cap = 200;
    c.mobilisation_cap_pence = 3376000;
    c.max_facilitators = 12;
    Cara__AddContract add = CARA__ADD_CONTRACT__INIT;
    add.contract = &c;
    s_ok(&add.base);
    // A provider cannot add contracts.
    Cara__Reply *reply = harness_call(harness_client(h, "billing", "provider", "p1"), &add.base);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__FORBIDDEN);
    cara__reply__free_unpacked(reply, NULL);

    for (int i = 0; i < 21; i++)
        s_deliver(i);
    assert_int_equal(harness_wait_value(h, "billing",
                                        "SELECT count(DISTINCT cohort_id) FROM billable_line",
                                        "21", 20000),
                     0);
    Cara__RecordTraining training = CARA__RECORD_TRAINING__INIT;
    training.contract_id = "DLI364";
    training.facilitators = 9;
    training.actual_cost_pence = 2532000;  // GBP 25,320: 9 of 12 trained, at actual cost
    training.delivered_on = "2025-04-20";
    s_ok(&training.base);
    Cara__RunInvoices run = CARA__RUN_INVOICES__INIT;
    run.period = "2026-03";
    s_ok(&run.base);

    // Delivery: exactly GBP 60,000 invoiced provider -> commissioner.
    assert_int_equal(s_sum("status = 'invoiced' AND kind = 'cohort_fee'"), 5000000);
    assert_int_equal(s_sum("status = 'invoiced' AND kind = 'victim_liaison'"), 1000000);
    char *delivery = harness_value(h, "billing",
                                   "SELECT sum(total_pence) FROM invoice WHERE issuer = 'p1'"
                                   " AND payer = 'opcc-dyfed-powys'");
    assert_string_equal(delivery, "8532000");  // 60,000 delivery + 25,320 mobilisation
    free(delivery);
    // Licence fee GBP 9,000 from Hampton Trust to the provider (with training at cost).
    assert_int_equal(s_sum("status = 'invoiced' AND kind = 'licence_fee' AND issuer ="
                           " 'hampton-trust' AND payer = 'p1'"),
                     900000);
    assert_int_equal(s_sum("status = 'invoiced' AND kind = 'training'"), 2532000);
    // The 21st cohort is held, not invoiced.
    char *held = harness_value(h, "billing",
                               "SELECT count(*) || ':' || count(DISTINCT cohort_id) FROM"
                               " billable_line WHERE status = 'over_cap'");
    assert_string_equal(held, "3:1");
    free(held);
    char *alerts = harness_value(h, "billing",
                                 "SELECT string_agg(cap || percent, ',' ORDER BY cap, percent)"
                                 " FROM cap_alert");
    assert_string_equal(alerts, "money75,money90,money100,offenders75,offenders90,offenders100");
    free(alerts);
    // Invoice numbers per issuer: 1, 2, ... without gaps.
    char *gaps = harness_value(h, "billing",
                               "SELECT count(*) FROM (SELECT issuer, number, row_number() OVER"
                               " (PARTITION BY issuer ORDER BY number) AS n FROM invoice) x"
                               " WHERE number <> issuer || '-' || lpad(n::text, 5, '0')");
    assert_string_equal(gaps, "0");
    free(gaps);
    // Billing holds no personal data: no column could carry it.
    char *pii = harness_value(h, "billing",
                              "SELECT count(*) FROM information_schema.columns WHERE"
                              " table_schema = 'billing' AND table_name <> 'schema_migrations'"
                              " AND column_name ~ '(^|_)(name|date_of_birth|dob|address|phone|"
                              "email|ethnicity|sex)$'");
    assert_string_equal(pii, "0");
    free(pii);
}

static void test_replaying_the_booking_stream_changes_no_invoice(void **state) {
    (void)state;
    const char *snapshot = "SELECT (SELECT string_agg(number || ':' || total_pence, ','"
                           " ORDER BY number) FROM invoice) || '|' ||"
                           " (SELECT count(*) FROM billable_line)";
    char *before = harness_value(h, "billing", snapshot);
    assert_non_null(before);
    harness_stop(h, "billing", SIGTERM);
    // Forget the cursor and the event ids seen: only the lines' own keys stand in the way.
    db_t *db = harness_db(h, "billing");
    assert_int_equal(db_exec(db, "TRUNCATE inbox", 0, NULL), 0);
    assert_int_equal(db_exec(db, "UPDATE cursor SET seq = 0", 0, NULL), 0);
    assert_int_equal(harness_start(h, "billing"), 0);
    char *head = harness_value(h, "booking", "SELECT max(seq) FROM outbox");
    assert_int_equal(harness_wait_value(h, "billing",
                                        "SELECT seq FROM cursor WHERE stream = 'booking'", head,
                                        20000),
                     0);
    Cara__RunInvoices run = CARA__RUN_INVOICES__INIT;
    run.period = "2026-03";
    s_ok(&run.base);
    char *after = harness_value(h, "billing", snapshot);
    assert_string_equal(before, after);
    free(head);
    free(before);
    free(after);
}

static void test_variation_releases_the_held_cohort(void **state) {
    (void)state;
    Cara__VaryContract vary = CARA__VARY_CONTRACT__INIT;
    vary.contract_id = "DLI364";
    vary.delivery_cap_pence = 6300000;
    vary.offender_cap = 210;
    vary.reason = "variation 1: one more cohort";
    s_ok(&vary.base);
    char *held = harness_value(h, "billing", "SELECT count(*) FROM billable_line WHERE status ="
                                             " 'over_cap'");
    assert_string_equal(held, "0");
    free(held);
    Cara__RunInvoices run = CARA__RUN_INVOICES__INIT;
    run.period = "2026-03";
    s_ok(&run.base);
    assert_int_equal(s_sum("status = 'invoiced' AND kind IN ('cohort_fee', 'victim_liaison')"),
                     6300000);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dyfed_powys_contract),
        cmocka_unit_test(test_replaying_the_booking_stream_changes_no_invoice),
        cmocka_unit_test(test_variation_releases_the_held_cohort),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
