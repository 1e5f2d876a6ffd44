// billing with the Dyfed-Powys figures (PCC decision DLI364), the contract loaded as data from
// examples/contract-dyfed-powys.json: 20 cohorts of 10 delivered give exactly GBP 60,000 of
// delivery invoices (50,000 cohort fees + 10,000 victim liaison), of which GBP 9,000 licence
// fee is invoiced by Hampton Trust to the provider; the 21st cohort is held over cap (alerts
// at 75/90/100%) until a variation; 9 facilitators trained are billed at actual cost; invoice
// numbers run without gaps; replaying the whole booking stream changes no invoice; a revision
// with fewer participants changes no fee, a removed cohort is credited by a credit note; each
// organisation sees only its own invoices; billing holds no personal data.
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
#include "cara/pbjson.h"
#include "cara/stream.h"
#include "cara/uuid.h"
#include "harness.h"

static harness_t *h;
static char s_cohorts[21][UUID_STR_LEN];

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

static client_t *s_finance(void) {
    return harness_client(h, "billing", "finance", "p1");
}

static Cara__Reply__Status s_call(client_t *client, ProtobufCMessage *msg) {
    Cara__Reply *reply = harness_call(client, msg);
    assert_non_null(reply);
    for (size_t i = 0; i < reply->n_errors; i++)
        fprintf(stderr, "%s: %s\n", reply->errors[i]->field, reply->errors[i]->reason);
    Cara__Reply__Status status = reply->status;
    cara__reply__free_unpacked(reply, NULL);
    return status;
}

static void s_ok(ProtobufCMessage *msg) {
    assert_int_equal(s_call(s_finance(), msg), CARA__REPLY__STATUS__OK);
}

// The commissioner's finance staff: they add and vary the contract (the budget is theirs).
static client_t *s_commissioner_finance(void) {
    return harness_client(h, "billing", "finance", "opcc-dyfed-powys");
}

// Publishes CohortDelivered on the booking stream (as booking does when both parts are over).
static void s_delivered(const char *cohort_id, int n, unsigned participants, unsigned revision) {
    db_t *db = harness_db(h, "booking");
    assert_int_equal(db_begin(db), 0);
    char a[32], b[32];
    snprintf(a, sizeof a, "2025-%02d-%02d", 5 + n / 10, 1 + n % 10);
    snprintf(b, sizeof b, "2025-%02d-%02d", 6 + n / 10, 5 + n % 10);
    Cara__CohortDelivered ev = CARA__COHORT_DELIVERED__INIT;
    ev.cohort_id = (char *)cohort_id;
    ev.provider_id = "p1";
    ev.cohort_type = n % 2 ? "male_intimate" : "female_intimate";
    ev.participants = participants;
    ev.part_a_date = a;
    ev.part_b_date = b;
    ev.town = "Carmarthen";
    ev.revision = revision;
    assert_true(outbox_append(db, &ev.base, cohort_id, "p1", NULL, NULL) > 0);
    assert_int_equal(db_commit(db), 0);
}

static long long s_num(const char *sql) {
    char *v = harness_value(h, "billing", sql);
    assert_non_null(v);
    long long n = atoll(v);
    free(v);
    return n;
}

static long long s_sum(const char *where) {
    char sql[600];
    snprintf(sql, sizeof sql, "SELECT coalesce(sum(amount_pence), 0) FROM billable_line WHERE %s",
             where);
    return s_num(sql);
}

static void s_value_is(const char *sql, const char *expected) {
    char *v = harness_value(h, "billing", sql);
    assert_non_null(v);
    if (strcmp(v, expected) != 0)
        fprintf(stderr, "%s\n  got %s\n  expected %s\n", sql, v, expected);
    assert_string_equal(v, expected);
    free(v);
}

static void s_run(const char *period) {
    Cara__RunInvoices run = CARA__RUN_INVOICES__INIT;
    run.period = (char *)period;
    s_ok(&run.base);
}

static void test_dyfed_powys_contract(void **state) {
    (void)state;
    char err[256] = "";
    json_t *doc = json_load_file("examples/contract-dyfed-powys.json", 0, NULL);
    assert_non_null(doc);
    Cara__Contract *c =
        (Cara__Contract *)pbjson_to_message(&cara__contract__descriptor, doc, err, sizeof err);
    json_decref(doc);
    if (!c)
        fprintf(stderr, "%s\n", err);
    assert_non_null(c);
    Cara__AddContract add = CARA__ADD_CONTRACT__INIT;
    add.contract = c;
    // A provider cannot add contracts; finance staff of an organisation that is no party to
    // it cannot either, nor can the provider's own finance staff or the licence holder's (the
    // budget and the fees are the commissioner's).
    assert_int_equal(s_call(harness_client(h, "billing", "provider", "p1"), &add.base),
                     CARA__REPLY__STATUS__FORBIDDEN);
    assert_int_equal(s_call(harness_client(h, "billing", "finance", "p2"), &add.base),
                     CARA__REPLY__STATUS__FORBIDDEN);
    assert_int_equal(s_call(s_finance(), &add.base), CARA__REPLY__STATUS__FORBIDDEN);
    assert_int_equal(s_call(harness_client(h, "billing", "finance", "hampton-trust"), &add.base),
                     CARA__REPLY__STATUS__FORBIDDEN);
    assert_int_equal(s_call(s_commissioner_finance(), &add.base), CARA__REPLY__STATUS__OK);
    assert_int_equal(s_call(s_commissioner_finance(), &add.base), CARA__REPLY__STATUS__CONFLICT);
    cara__contract__free_unpacked(c, NULL);

    for (int i = 0; i < 21; i++) {
        uuid_new(s_cohorts[i]);
        s_delivered(s_cohorts[i], i, 10, 1);
    }
    assert_int_equal(harness_wait_value(h, "billing",
                                        "SELECT count(DISTINCT cohort_id) FROM billable_line", "21",
                                        20000),
                     0);
    Cara__RecordTraining training = CARA__RECORD_TRAINING__INIT;
    training.contract_id = "DLI364";
    training.facilitators = 9;
    training.actual_cost_pence = 2531987; // 9 of 12 trained: the actual cost, to the penny
    training.delivered_on = "2025-04-20";
    training.item = "core";
    // Only finance staff record training.
    assert_int_equal(
        s_call(harness_client(h, "billing", "commissioner", "opcc-dyfed-powys"), &training.base),
        CARA__REPLY__STATUS__FORBIDDEN);
    training.actual_cost_pence = 3376001; // past the mobilisation cap
    assert_int_equal(s_call(s_finance(), &training.base), CARA__REPLY__STATUS__INVALID);
    training.actual_cost_pence = 2531987;
    training.delivered_on = "2025-03-31"; // before the contract starts
    assert_int_equal(s_call(s_finance(), &training.base), CARA__REPLY__STATUS__INVALID);
    training.delivered_on = "2025-04-20";
    s_ok(&training.base);
    // Nine of the twelve facilitators are trained in "core": four more would be sixteen.
    training.facilitators = 4;
    training.actual_cost_pence = 1000;
    assert_int_equal(s_call(s_finance(), &training.base), CARA__REPLY__STATUS__INVALID);
    s_value_is("SELECT sum(facilitators) FROM training WHERE item = 'core'", "9");
    s_run("2026-03");

    // Delivery: exactly GBP 60,000 invoiced provider -> commissioner.
    assert_int_equal(s_sum("status = 'invoiced' AND kind = 'cohort_fee'"), 5000000);
    assert_int_equal(s_sum("status = 'invoiced' AND kind = 'victim_liaison'"), 1000000);
    s_value_is("SELECT sum(amount_pence) FROM billable_line WHERE status = 'invoiced' AND issuer ="
               " 'p1' AND payer = 'opcc-dyfed-powys' AND kind IN ('cohort_fee',"
               " 'victim_liaison')",
               "6000000");
    // Provider -> commissioner invoices: delivery plus mobilisation at actual cost.
    s_value_is("SELECT sum(total_pence) FROM invoice WHERE issuer = 'p1' AND payer ="
               " 'opcc-dyfed-powys'",
               "8531987");
    // Licence fee GBP 9,000 from Hampton Trust to the provider, training at actual cost.
    assert_int_equal(s_sum("status = 'invoiced' AND kind = 'licence_fee' AND issuer ="
                           " 'hampton-trust' AND payer = 'p1'"),
                     900000);
    assert_int_equal(s_sum("status = 'invoiced' AND kind = 'training' AND issuer ="
                           " 'hampton-trust' AND payer = 'p1'"),
                     2531987);
    s_value_is("SELECT sum(total_pence) FROM invoice WHERE issuer = 'hampton-trust'", "3431987");
    // Every line names its contract and the event behind it.
    s_value_is("SELECT count(*) FROM billable_line WHERE contract_id IS NULL OR event_id IS NULL",
               "0");
    // The 21st cohort is held (cohort fee, victim liaison, licence fee), not invoiced.
    char expected[128];
    snprintf(expected, sizeof expected, "3:%s:money", s_cohorts[20]);
    s_value_is("SELECT count(*) || ':' || min(cohort_id) || ':' || min(held_reason) FROM"
               " billable_line WHERE status = 'over_cap'",
               expected);
    s_value_is("SELECT string_agg(cap || percent, ',' ORDER BY cap, percent) FROM cap_alert",
               "money75,money90,money100,offenders75,offenders90,offenders100");
    s_value_is("SELECT count(*) FROM outbox WHERE type = 'cara.CapReached'", "6");
    s_value_is("SELECT count(*) FROM audit WHERE action = 'cap_reached'", "6");
    // One invoice per issuer and payer: p1 -> OPCC, Hampton Trust -> p1; numbers without gaps.
    s_value_is("SELECT string_agg(number, ',' ORDER BY number) FROM invoice",
               "hampton-trust-INV-00001,p1-INV-00001");
    // An issued invoice cannot be edited, even in the database.
    assert_int_not_equal(
        db_exec(harness_db(h, "billing"), "UPDATE invoice SET total_pence = 0", 0, NULL), 0);
    // Status: spend against caps, and the forecast to the year end.
    Cara__ContractStatusRequest sreq = CARA__CONTRACT_STATUS_REQUEST__INIT;
    sreq.contract_id = "DLI364";
    sreq.as_of = "2025-09-30"; // half the year (183 of 365 days) gone
    Cara__Reply *reply = harness_call(s_finance(), &sreq.base);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    Cara__ContractStatus *st =
        cara__contract_status__unpack(NULL, reply->payload.len, reply->payload.data);
    assert_non_null(st);
    assert_int_equal(st->delivery_billed_pence, 6000000);
    assert_int_equal(st->offenders, 200);
    assert_int_equal(st->money_percent, 100);
    assert_int_equal(st->held_over_cap_pence, 300000);
    assert_int_equal(st->year_spend_pence, 6000000);
    assert_string_equal(st->financial_year, "2025-26");
    assert_int_equal(st->forecast_year_end_pence, 6000000LL * 365 / 183);
    cara__contract_status__free_unpacked(st, NULL);
    cara__reply__free_unpacked(reply, NULL);
}

static void test_replaying_the_booking_stream_changes_no_invoice(void **state) {
    (void)state;
    const char *snapshot = "SELECT (SELECT string_agg(number || ':' || total_pence, ','"
                           " ORDER BY number) FROM invoice) || '|' ||"
                           " (SELECT string_agg(source || status || amount_pence, ',' ORDER BY"
                           " source) FROM billable_line)";
    char *before = harness_value(h, "billing", snapshot);
    assert_non_null(before);
    harness_stop(h, "billing", SIGTERM);
    // Forget the cursor and the event ids seen: only billing's own keys stand in the way.
    db_t *db = harness_db(h, "billing");
    assert_int_equal(db_exec(db, "TRUNCATE inbox", 0, NULL), 0);
    assert_int_equal(db_exec(db, "UPDATE cursor SET seq = 0", 0, NULL), 0);
    assert_int_equal(harness_start(h, "billing"), 0);
    assert_int_equal(harness_wait_caught_up(h, "billing", "booking", 20000), 0);
    s_run("2026-03");
    char *after = harness_value(h, "billing", snapshot);
    assert_string_equal(before, after);
    s_value_is("SELECT count(*) FROM invoice", "2");
    free(before);
    free(after);
}

static void test_variation_releases_the_held_cohort(void **state) {
    (void)state;
    Cara__VaryContract vary = CARA__VARY_CONTRACT__INIT;
    vary.contract_id = "DLI364";
    vary.delivery_cap_pence = 6300000;
    vary.offender_cap = 210;
    client_t *commissioner = s_commissioner_finance();
    assert_int_equal(s_call(commissioner, &vary.base), CARA__REPLY__STATUS__INVALID); // reason
    vary.reason = "variation 1: one more cohort";
    vary.delivery_cap_pence = 5000000; // lowering a cap is not a variation
    assert_int_equal(s_call(commissioner, &vary.base), CARA__REPLY__STATUS__INVALID);
    vary.delivery_cap_pence = 6300000;
    // The provider paid cannot lift the commissioner's cap (it would release its own held
    // deliveries into the next invoice).
    assert_int_equal(s_call(s_finance(), &vary.base), CARA__REPLY__STATUS__FORBIDDEN);
    s_value_is("SELECT delivery_cap_pence FROM contract WHERE contract_id = 'DLI364'", "6000000");
    assert_int_equal(s_call(commissioner, &vary.base), CARA__REPLY__STATUS__OK);
    s_value_is("SELECT count(*) FROM billable_line WHERE status = 'over_cap'", "0");
    s_run("2026-03");
    assert_int_equal(s_sum("status = 'invoiced' AND kind IN ('cohort_fee', 'victim_liaison')"),
                     6300000);
    s_value_is("SELECT string_agg(number, ',' ORDER BY number) FROM invoice",
               "hampton-trust-INV-00001,hampton-trust-INV-00002,p1-INV-00001,p1-INV-00002");
    s_value_is("SELECT count(*) FROM audit WHERE action = 'contract_varied'", "1");
}

static void test_corrections_and_credit_notes(void **state) {
    (void)state;
    // Fewer participants after an attendance correction: a per-cohort fee does not change.
    s_delivered(s_cohorts[3], 3, 8, 2);
    // The cohort is found not to have been delivered at all: credited.
    s_delivered(s_cohorts[5], 5, 0, 2);
    assert_int_equal(harness_wait_value(h, "billing",
                                        "SELECT count(*) FROM billable_line WHERE credits_line"
                                        " IS NOT NULL",
                                        "3", 20000),
                     0);
    s_run("2026-03");
    s_value_is("SELECT string_agg(number || ':' || total_pence || ':' || (SELECT number FROM"
               " invoice o WHERE o.invoice_id = i.credits), ',' ORDER BY number) FROM invoice i"
               " WHERE kind = 'credit_note'",
               "hampton-trust-CN-00001:-45000:hampton-trust-INV-00001,"
               "p1-CN-00001:-300000:p1-INV-00001");
    s_value_is("SELECT count(*) FROM outbox WHERE type = 'cara.CreditNoteIssued'", "2");
    // Invoices are untouched; the net delivery billed is one cohort less.
    s_value_is("SELECT sum(total_pence) FROM invoice WHERE kind = 'invoice' AND issuer = 'p1'",
               "8831987");
    assert_int_equal(s_sum("status = 'invoiced' AND kind IN ('cohort_fee', 'victim_liaison')"),
                     6000000);
    // A replayed correction bills and credits nothing twice.
    s_delivered(s_cohorts[5], 5, 0, 2);
    s_delivered(s_cohorts[3], 3, 8, 2);
    assert_int_equal(harness_wait_caught_up(h, "billing", "booking", 20000), 0);
    s_run("2026-03");
    s_value_is("SELECT count(*) FROM invoice", "6");
}

static void test_each_organisation_sees_its_own_invoices(void **state) {
    (void)state;
    Cara__ListInvoices list = CARA__LIST_INVOICES__INIT;
    const struct {
        const char *role, *org;
        size_t invoices;
    } who[] = {{"commissioner", "opcc-dyfed-powys", 3},
               {"finance", "hampton-trust", 3},
               {"finance", "p1", 6},
               {"commissioner", "opcc-gwent", 0}};
    for (size_t k = 0; k < 4; k++) {
        Cara__Reply *reply =
            harness_call(harness_client(h, "billing", who[k].role, who[k].org), &list.base);
        assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
        Cara__InvoiceList *l =
            cara__invoice_list__unpack(NULL, reply->payload.len, reply->payload.data);
        assert_non_null(l);
        assert_int_equal(l->n_invoices, who[k].invoices);
        for (size_t i = 0; i < l->n_invoices; i++) {
            assert_true(strcmp(l->invoices[i]->issuer, who[k].org) == 0 ||
                        strcmp(l->invoices[i]->payer, who[k].org) == 0);
            for (size_t j = 0; j < l->invoices[i]->n_lines; j++)
                assert_true(*l->invoices[i]->lines[j]->source);
        }
        cara__invoice_list__free_unpacked(l, NULL);
        cara__reply__free_unpacked(reply, NULL);
    }
    // The stream: the commissioner sees its invoices, credit notes and cap alerts only.
    int status = 0;
    Cara__Batch *b = harness_fetch(harness_client(h, "billing", "commissioner", "opcc-gwent"),
                                   "billing", 0, 1000, &status);
    assert_non_null(b);
    assert_int_equal(b->n_events, 0);
    cara__batch__free_unpacked(b, NULL);
    b = harness_fetch(harness_client(h, "billing", "commissioner", "opcc-dyfed-powys"), "billing",
                      0, 1000, &status);
    assert_non_null(b);
    assert_int_equal(b->n_events, 3 + 6); // 2 invoices + 1 credit note, 6 cap alerts
    cara__batch__free_unpacked(b, NULL);
    assert_null(
        harness_fetch(harness_client(h, "billing", "provider", "p1"), "billing", 0, 10, &status));
    assert_int_equal(status, CARA__REPLY__STATUS__FORBIDDEN);
}

static void test_billing_holds_no_personal_data(void **state) {
    (void)state;
    // No column could carry it (schema_migrations.name is the migration file's name) ...
    s_value_is("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'billing'"
               " AND table_name <> 'schema_migrations' AND column_name ~ "
               "'(^|_)(name|names|date_of_birth|dob|birth|address|postcode|"
               "phone|mobile|email|ethnicity|sex|gender|victim_name)$'",
               "0");
    // ... and no stored value looks like a phone number, an email address or a postcode.
    s_value_is("SELECT count(*) FROM information_schema.columns c, LATERAL (SELECT"
               " query_to_xml(format('SELECT %I FROM billing.%I', column_name, table_name),"
               " false, true, '')::text AS x) v WHERE table_schema = 'billing' AND data_type IN"
               " ('text', 'jsonb', 'json') AND (x ~ '(\\+44|\\m0)7[0-9 ]{9,}' OR"
               " x ~ '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[a-z]{2,}' OR"
               " x ~ '\\m[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}\\M')",
               "0");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dyfed_powys_contract),
        cmocka_unit_test(test_replaying_the_booking_stream_changes_no_invoice),
        cmocka_unit_test(test_variation_releases_the_held_cohort),
        cmocka_unit_test(test_corrections_and_credit_notes),
        cmocka_unit_test(test_each_organisation_sees_its_own_invoices),
        cmocka_unit_test(test_billing_holds_no_personal_data),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
