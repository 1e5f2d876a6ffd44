// billing's fee schedule over two financial years, through the `cara` client (finance staff of
// provider p7): booking events that arrive before their contract are billed when it is added
// (a telephone completion that a correction withdrew meanwhile is not);
// fees by cohort type; telephone fees per completed telephone case; a victim contact fee once
// per case; a fixed licence fee per year, recharged to the commissioner (exclusive); quarterly
// invoicing; a cohort straddling two years goes to the year of Part B; the later year's
// invoices split between three funding partners to the penny; `cara invoice show` and
// `cara invoice export --format json|csv` carry the evidence of every line.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "billing.pb-c.h"
#include "booking.pb-c.h"
#include "cara/keys.h"
#include "cara/stream.h"
#include "cara/uuid.h"
#include "harness.h"

static harness_t *h;
static char s_out[262144];     // the last cara command's stdout
static char s_config[400];     // client configuration for finance:p7
static char s_commission[400]; // for finance:opcc-x, the commissioner (adds the contracts)
static char s_cohort_x[UUID_STR_LEN], s_cohort_y[UUID_STR_LEN];

static int setup(void **state) {
    (void)state;
    h = harness_new("billing_schedule");
    if (!h || harness_start(h, "booking") != 0 || harness_start(h, "billing") != 0)
        return -1;
    return harness_client_config(h, "finance", "p7", "billing", 5000, 1, s_config,
                                 sizeof s_config) == 0 &&
                   harness_client_config(h, "finance", "opcc-x", "billing", 5000, 1, s_commission,
                                         sizeof s_commission) == 0
               ? 0
               : -1;
}

static int teardown(void **state) {
    (void)state;
    harness_destroy(&h);
    return 0;
}

static void s_value_is(const char *sql, const char *expected) {
    char *v = harness_value(h, "billing", sql);
    assert_non_null(v);
    if (strcmp(v, expected) != 0)
        fprintf(stderr, "%s\n  got %s\n  expected %s\n", sql, v, expected);
    assert_string_equal(v, expected);
    free(v);
}

// Publishes one event on the booking stream, as booking does.
static void s_publish(const ProtobufCMessage *ev, const char *key) {
    db_t *db = harness_db(h, "booking");
    assert_int_equal(db_begin(db), 0);
    assert_true(outbox_append(db, ev, key, "p7", NULL, NULL) > 0);
    assert_int_equal(db_commit(db), 0);
}

static void s_cohort(const char *id, const char *type, const char *a, const char *b) {
    Cara__CohortDelivered ev = CARA__COHORT_DELIVERED__INIT;
    ev.cohort_id = (char *)id;
    ev.provider_id = "p7";
    ev.cohort_type = (char *)type;
    ev.participants = 9;
    ev.part_a_date = (char *)a;
    ev.part_b_date = (char *)b;
    ev.town = "Newtown";
    ev.revision = 1;
    s_publish(&ev.base, id);
}

static void s_caught_up(void) {
    assert_int_equal(harness_wait_caught_up(h, "billing", "booking", 20000), 0);
}

// A telephone case of p7 completed on 2025-06-02 (s_reopened: a correction withdrew that).
static void s_completed(const char *case_id) {
    Cara__CaseCompleted ev = CARA__CASE_COMPLETED__INIT;
    ev.case_id = (char *)case_id;
    ev.referral_id = (char *)case_id;
    ev.provider_id = "p7";
    ev.force = "dyfed-powys";
    ev.pathway = "telephone";
    ev.completed_at = "2025-06-02T15:00:00Z";
    s_publish(&ev.base, case_id);
}

static void s_reopened(const char *case_id) {
    Cara__CaseReopened ev = CARA__CASE_REOPENED__INIT;
    ev.case_id = (char *)case_id;
    ev.referral_id = (char *)case_id;
    ev.provider_id = "p7";
    ev.force = "dyfed-powys";
    ev.reason = "attendance corrected";
    ev.at = "2025-06-03T09:00:00Z";
    s_publish(&ev.base, case_id);
}

// A victim contact of p7's case case_id at the time at.
static void s_victim_contact(const char *case_id, const char *kind, const char *at) {
    Cara__VictimContactRecorded victim = CARA__VICTIM_CONTACT_RECORDED__INIT;
    victim.case_id = (char *)case_id;
    victim.referral_id = (char *)case_id;
    victim.provider_id = "p7";
    victim.force = "dyfed-powys";
    victim.kind = (char *)kind;
    victim.at = (char *)at;
    s_publish(&victim.base, case_id);
}

// Adds a contract through `cara contract add`, as the commissioner's finance staff do (p7's
// own are refused: the budget is the commissioner's). Returns the exit code.
static int s_add_contract(const char *json) {
    char path[400];
    snprintf(path, sizeof path, "%s/contract.json", harness_dir(h));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(json, f);
    fclose(f);
    int refused =
        harness_cara(h, s_out, sizeof s_out, "--config", s_config, "contract", "add", path, NULL);
    assert_int_not_equal(refused, 0);
    return harness_cara(h, s_out, sizeof s_out, "--config", s_commission, "contract", "add", path,
                        NULL);
}

static void test_events_before_the_contract_wait_for_it(void **state) {
    (void)state;
    uuid_new(s_cohort_x);
    s_cohort(s_cohort_x, "female_intimate", "2025-04-12", "2025-05-10");
    // A telephone completion waits too, and a correction then withdraws it.
    char withdrawn[UUID_STR_LEN];
    uuid_new(withdrawn);
    s_completed(withdrawn);
    s_caught_up();
    s_value_is("SELECT count(*) FROM unbilled_event", "2");
    s_reopened(withdrawn);
    s_caught_up();
    s_value_is("SELECT count(*) FROM unbilled_event", "1");
    s_value_is("SELECT count(*) FROM billable_line", "0");
    s_value_is("SELECT count(*) FROM dead_letter", "0");

    assert_int_equal(
        s_add_contract(
            "{\"contract_id\": \"POWYS-2Y\", \"commissioner\": \"opcc-x\", \"provider_id\": \"p7\","
            " \"licence_holder\": \"hampton-trust\", \"starts_on\": \"2025-04-01\","
            " \"ends_on\": \"2027-03-31\", \"cohort_fee_pence\": 200000,"
            " \"cohort_fees\": [{\"cohort_type\": \"male_intimate\", \"fee_pence\": 260000}],"
            " \"victim_liaison_pence\": 0, \"telephone_fee_pence\": 40000,"
            " \"licence_fee_mode\": \"fixed\", \"licence_fee_fixed_pence\": 500000,"
            " \"licence_fee_exclusive\": true, \"victim_contact_fee_pence\": 2500,"
            " \"delivery_cap_pence\": 10000000, \"offender_cap\": 500,"
            " \"mobilisation_cap_pence\": 0, \"max_facilitators\": 0,"
            " \"invoice_period\": \"quarterly\", \"funding\": ["
            "  {\"financial_year\": \"2026-27\", \"partner\": \"opcc-x\", \"basis_points\": 3333},"
            "  {\"financial_year\": \"2026-27\", \"partner\": \"health-board\", \"basis_points\": "
            "3333},"
            "  {\"financial_year\": \"2026-27\", \"partner\": \"council\", \"basis_points\": "
            "3334}]}"),
        0);
    // The waiting cohort is billed at the default fee (female_intimate has no fee of its own);
    // the withdrawn completion is not billed at all.
    s_value_is("SELECT count(*) FROM unbilled_event", "0");
    s_value_is("SELECT count(*) FROM billable_line WHERE kind = 'telephone_fee'", "0");
    s_value_is("SELECT string_agg(kind || ':' || amount_pence, ',' ORDER BY kind) FROM"
               " billable_line WHERE delivery_key LIKE 'cohort:%'",
               "cohort_fee:200000");
    // The fixed licence fee: one per financial year, recharged to the commissioner.
    s_value_is("SELECT string_agg(financial_year || ':' || kind || ':' || issuer || '>' || payer,"
               " ',' ORDER BY financial_year, kind) FROM billable_line WHERE delivery_key LIKE"
               " 'licence:%'",
               "2025-26:licence_fee:hampton-trust>p7,2025-26:licence_recharge:p7>opcc-x,"
               "2026-27:licence_fee:hampton-trust>p7,2026-27:licence_recharge:p7>opcc-x");
}

static void test_a_bad_contract_is_refused_with_field_errors(void **state) {
    (void)state;
    assert_int_equal(
        s_add_contract(
            "{\"contract_id\": \"BAD\", \"commissioner\": \"opcc-x\", \"provider_id\": \"p7\","
            " \"licence_holder\": \"hampton-trust\", \"starts_on\": \"2025-04-01\","
            " \"ends_on\": \"2025-03-01\", \"cohort_fee_pence\": -5, \"invoice_period\": "
            "\"weekly\", \"delivery_cap_pence\": 9223372036854775807,"
            " \"funding\": [{\"financial_year\": \"2025-26\", \"partner\": \"a\","
            " \"basis_points\": 6000}]}"),
        2);
    assert_non_null(strstr(s_out, "contract.ends_on"));
    assert_non_null(strstr(s_out, "contract.cohort_fee_pence"));
    assert_non_null(strstr(s_out, "contract.delivery_cap_pence")); // "no cap" is not INT64_MAX
    assert_non_null(strstr(s_out, "contract.invoice_period"));
    assert_non_null(strstr(s_out, "contract.funding[0]"));
    s_value_is("SELECT count(*) FROM contract WHERE contract_id = 'BAD'", "0");
}

static void test_deliveries_of_every_kind(void **state) {
    (void)state;
    // A cohort straddling the years: Part A in March, Part B in April -> the later year.
    uuid_new(s_cohort_y);
    s_cohort(s_cohort_y, "male_intimate", "2026-03-21", "2026-04-18");
    Cara__CaseCompleted phone = CARA__CASE_COMPLETED__INIT;
    phone.case_id = "case-t1";
    phone.referral_id = "ref-t1";
    phone.provider_id = "p7";
    phone.force = "dyfed-powys";
    phone.pathway = "telephone";
    phone.completed_at = "2025-05-20T11:00:00Z";
    s_publish(&phone.base, "case-t1");
    Cara__CaseCompleted group = phone;
    group.case_id = "case-g1";
    group.pathway = "male_intimate"; // billed through its cohort, not per case
    s_publish(&group.base, "case-g1");
    s_victim_contact("case-v1", "offer", "2025-06-02T09:00:00Z");
    s_victim_contact("case-v1", "accepted", "2025-06-03T09:00:00Z"); // the same case: billed once
    s_caught_up();
    s_value_is(
        "SELECT string_agg(delivery_key || ':' || kind || ':' || amount_pence || ':' ||"
        " financial_year, ',' ORDER BY delivery_key) FROM billable_line WHERE delivery_key"
        " NOT LIKE 'licence:%' AND delivery_key NOT LIKE 'cohort:%'",
        "case:case-t1:telephone_fee:40000:2025-26,victim:case-v1:victim_contact:2500:2025-26");
    char sql[300], expected[200];
    snprintf(sql, sizeof sql,
             "SELECT kind || ':' || amount_pence || ':' || financial_year || ':' || part_a_date"
             " FROM billable_line WHERE cohort_id = '%s'",
             s_cohort_y);
    snprintf(expected, sizeof expected, "cohort_fee:260000:2026-27:2026-03-21");
    s_value_is(sql, expected);
}

static void test_quarterly_runs_by_financial_year(void **state) {
    (void)state;
    // Quarterly: nothing is invoiced at the end of April.
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "invoice", "run",
                                  "--period", "2025-04", NULL),
                     0);
    s_value_is("SELECT count(*) FROM invoice", "0");
    // End of June: the first quarter of 2025-26.
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "invoice", "run",
                                  "--period", "2025-06", NULL),
                     0);
    s_value_is("SELECT string_agg(number || ':' || financial_year || ':' || total_pence, ','"
               " ORDER BY number) FROM invoice",
               "hampton-trust-INV-00001:2025-26:500000,p7-INV-00001:2025-26:742500");
    // End of the contract: the later year, split between the funding partners to the penny.
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "invoice", "run",
                                  "--period", "2027-03", NULL),
                     0);
    s_value_is("SELECT string_agg(number || ':' || financial_year || ':' || total_pence, ','"
               " ORDER BY number) FROM invoice",
               "hampton-trust-INV-00001:2025-26:500000,hampton-trust-INV-00002:2026-27:500000,"
               "p7-INV-00001:2025-26:742500,p7-INV-00002:2026-27:760000");
    s_value_is("SELECT string_agg(partner || ':' || amount_pence, ',' ORDER BY partner) FROM"
               " invoice_funding JOIN invoice USING (invoice_id) WHERE number = 'p7-INV-00002'",
               "council:253384,health-board:253308,opcc-x:253308");
    s_value_is("SELECT count(*) FROM invoice_funding JOIN invoice USING (invoice_id) WHERE"
               " number <> 'p7-INV-00002'",
               "0");
}

static void test_show_and_export(void **state) {
    (void)state;
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "invoice", "show",
                                  "p7-INV-00002", NULL),
                     0);
    json_t *doc = json_loads(s_out, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "number")), "p7-INV-00002");
    assert_int_equal(json_array_size(json_object_get(doc, "funding")), 3);
    json_decref(doc);
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "invoice", "show",
                                  "p7-INV-00099", NULL),
                     1);

    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "invoice", "export",
                                  "--format", "json", NULL),
                     0);
    doc = json_loads(s_out, 0, NULL);
    assert_non_null(doc);
    json_t *invoices = json_object_get(doc, "invoices");
    assert_int_equal(json_array_size(invoices), 4);
    int found = 0;
    for (size_t i = 0; i < json_array_size(invoices); i++) {
        json_t *lines = json_object_get(json_array_get(invoices, i), "lines");
        for (size_t j = 0; j < json_array_size(lines); j++) {
            json_t *l = json_array_get(lines, j);
            if (strcmp(json_string_value(json_object_get(l, "cohort_id")), s_cohort_y) != 0)
                continue;
            found++;
            assert_int_equal(json_integer_value(json_object_get(l, "participants")), 9);
            assert_string_equal(json_string_value(json_object_get(l, "part_a_date")), "2026-03-21");
            assert_string_equal(json_string_value(json_object_get(l, "delivered_on")),
                                "2026-04-18");
            assert_string_equal(json_string_value(json_object_get(l, "amount")), "2600.00");
            assert_true(strlen(json_string_value(json_object_get(l, "event_id"))) == 36);
        }
    }
    assert_int_equal(found, 1);
    json_decref(doc);

    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "invoice", "export",
                                  "--format", "csv", NULL),
                     0);
    assert_true(strncmp(s_out, "number,kind,issuer,payer,contract_id,period,financial_year,", 59) ==
                0);
    int rows = 0;
    for (const char *p = s_out; (p = strchr(p, '\n')) != NULL; p++)
        rows++;
    assert_int_equal(rows, 1 + 8); // header + every line of the four invoices
    char want[200];
    snprintf(want, sizeof want,
             ",cohort_fee,260000,2600.00,%s,male_intimate,9,2026-03-21,2026-04-18,", s_cohort_y);
    assert_non_null(strstr(s_out, want));
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "invoice", "export",
                                  "--format", "xml", NULL),
                     2);

    // Status with the forecast, through the client.
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "contract",
                                  "status", "--contract_id", "POWYS-2Y", "--as_of", "2026-06-30",
                                  NULL),
                     0);
    assert_non_null(strstr(s_out, "\"financial_year\": \"2026-27\""));
}

// The contract is renewed: a case whose victim contact began under the old contract (billed
// there) and goes on under the new one is not billed again, and billing goes on with the events
// behind it (a second bill of the same delivery once broke its unique key, and was retried for
// ever). A case whose first contact is under the new contract is billed under it.
static void test_victim_contact_is_billed_once_across_a_renewal(void **state) {
    (void)state;
    assert_int_equal(s_add_contract("{\"contract_id\": \"POWYS-NEXT\", \"commissioner\":"
                                    " \"opcc-x\", \"provider_id\": \"p7\", \"licence_holder\":"
                                    " \"hampton-trust\", \"starts_on\": \"2027-04-01\","
                                    " \"ends_on\": \"2028-03-31\", \"cohort_fee_pence\": 200000,"
                                    " \"victim_liaison_pence\": 0, \"telephone_fee_pence\": 40000,"
                                    " \"licence_fee_mode\": \"per_cohort\","
                                    " \"licence_fee_pence_per_cohort\": 0,"
                                    " \"victim_contact_fee_pence\": 3000,"
                                    " \"delivery_cap_pence\": 10000000, \"offender_cap\": 500,"
                                    " \"mobilisation_cap_pence\": 0, \"max_facilitators\": 0,"
                                    " \"invoice_period\": \"quarterly\"}"),
                     0);
    s_victim_contact("case-v1", "attempt", "2027-04-05T09:00:00Z");
    s_victim_contact("case-v2", "offer", "2027-04-06T09:00:00Z");
    s_caught_up();
    s_value_is("SELECT count(*) FROM dead_letter", "0");
    s_value_is("SELECT string_agg(delivery_key || ':' || contract_id || ':' || amount_pence, ','"
               " ORDER BY delivery_key) FROM billable_line WHERE delivery_key LIKE 'victim:%'",
               "victim:case-v1:POWYS-2Y:2500,victim:case-v2:POWYS-NEXT:3000");
}

// A cohort reported delivered (revision) with participants; Part B after the end of March 2028.
static void s_cohort_revision(const char *id, unsigned participants, unsigned revision) {
    Cara__CohortDelivered ev = CARA__COHORT_DELIVERED__INIT;
    ev.cohort_id = (char *)id;
    ev.provider_id = "p7";
    ev.cohort_type = "male_intimate";
    ev.participants = participants;
    ev.part_a_date = "2028-04-08";
    ev.part_b_date = "2028-05-06";
    ev.town = "Newtown";
    ev.revision = revision;
    s_publish(&ev.base, id);
}

// More participants reported for a cohort already billed count against the offender cap as
// the first report did: past the cap, the cohort's lines not yet invoiced are held, and the
// commissioner is alerted (a later revision used to raise the count with no check at all).
static void test_more_participants_count_against_the_offender_cap(void **state) {
    (void)state;
    assert_int_equal(s_add_contract("{\"contract_id\": \"POWYS-SMALL\", \"commissioner\":"
                                    " \"opcc-x\", \"provider_id\": \"p7\", \"licence_holder\":"
                                    " \"hampton-trust\", \"starts_on\": \"2028-04-01\","
                                    " \"ends_on\": \"2029-03-31\", \"cohort_fee_pence\": 200000,"
                                    " \"delivery_cap_pence\": 10000000, \"offender_cap\": 12,"
                                    " \"invoice_period\": \"quarterly\"}"),
                     0);
    char first[UUID_STR_LEN], second[UUID_STR_LEN];
    uuid_new(first);
    uuid_new(second);
    s_cohort_revision(first, 9, 1);
    s_cohort_revision(second, 3, 1); // 12 of 12: fits
    s_caught_up();
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT status || ':' || participants FROM billable_line WHERE cohort_id = '%s'"
             " AND kind = 'cohort_fee'",
             first);
    s_value_is(sql, "pending:9");
    s_cohort_revision(first, 11, 2); // two more: 14 of 12
    s_caught_up();
    snprintf(sql, sizeof sql,
             "SELECT status || ':' || participants || ':' || held_reason FROM billable_line"
             " WHERE cohort_id = '%s' AND kind = 'cohort_fee'",
             first);
    s_value_is(sql, "over_cap:11:offenders");
    s_cohort_revision(first, 9, 3); // corrected back: fits again, released
    s_caught_up();
    snprintf(sql, sizeof sql,
             "SELECT status || ':' || participants || ':' || coalesce(held_reason, '-') FROM"
             " billable_line WHERE cohort_id = '%s' AND kind = 'cohort_fee'",
             first);
    s_value_is(sql, "pending:9:-");
    // Both invoiced; the second cohort is then found not delivered (credited): its three come
    // off the cap, and a third cohort of three fits.
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "--config", s_config, "invoice", "run",
                                  "--period", "2028-06", NULL),
                     0);
    s_cohort_revision(second, 0, 2);
    char third[UUID_STR_LEN];
    uuid_new(third);
    s_cohort_revision(third, 3, 1);
    s_caught_up();
    snprintf(sql, sizeof sql,
             "SELECT string_agg(status || ':' || participants, ',' ORDER BY line_id) FROM"
             " billable_line WHERE cohort_id IN ('%s', '%s') AND kind = 'cohort_fee'",
             second, third);
    s_value_is(sql, "invoiced:3,pending:-3,pending:3");
    s_value_is("SELECT string_agg(cap || ':' || percent, ',' ORDER BY cap, percent) FROM"
               " cap_alert WHERE contract_id = 'POWYS-SMALL'",
               "offenders:75,offenders:90,offenders:100");
    s_value_is("SELECT count(*) FROM dead_letter", "0");
}

// Another commissioner (its commissioner or its finance staff) names itself commissioner of a
// contract for p7 over days POWYS-2Y covers, at fees of its own, to take p7's billing: refused
// (and audited), and p7's deliveries on those days stay billed to opcc-x under POWYS-2Y.
static void test_another_commissioner_cannot_take_over_a_providers_billing(void **state) {
    (void)state;
    Cara__Contract c = CARA__CONTRACT__INIT;
    c.contract_id = "RIVAL-P7";
    c.commissioner = "opcc-rival";
    c.provider_id = "p7";
    c.licence_holder = "hampton-trust";
    c.starts_on = "2025-09-01";
    c.ends_on = "2026-08-31";
    c.telephone_fee_pence = 1;
    c.delivery_cap_pence = 10000000;
    c.offender_cap = 500;
    Cara__AddContract add = CARA__ADD_CONTRACT__INIT;
    add.contract = &c;
    const char *roles[] = {"commissioner", "finance"};
    for (int i = 0; i < 2; i++) {
        Cara__Reply *reply =
            harness_call(harness_client(h, "billing", roles[i], "opcc-rival"), &add.base);
        assert_non_null(reply);
        assert_int_equal(reply->status, CARA__REPLY__STATUS__FORBIDDEN);
        cara__reply__free_unpacked(reply, NULL);
    }
    s_value_is("SELECT count(*) FROM contract WHERE contract_id = 'RIVAL-P7'", "0");
    assert_int_equal(harness_wait_value(h, "billing",
                                        "SELECT count(*) FROM audit WHERE action = 'refused' AND"
                                        " actor LIKE '%:opcc-rival' AND entity_id ="
                                        " 'cara.AddContract'",
                                        "2", 5000),
                     0);
    Cara__CaseCompleted phone = CARA__CASE_COMPLETED__INIT;
    phone.case_id = "case-rival-1";
    phone.referral_id = "ref-rival-1";
    phone.provider_id = "p7";
    phone.force = "dyfed-powys";
    phone.pathway = "telephone";
    phone.completed_at = "2025-10-15T11:00:00Z";
    s_publish(&phone.base, "case-rival-1");
    s_caught_up();
    s_value_is("SELECT contract_id || ':' || issuer || '>' || payer || ':' || amount_pence FROM"
               " billable_line WHERE delivery_key = 'case:case-rival-1'",
               "POWYS-2Y:p7>opcc-x:40000");
    s_value_is("SELECT count(*) FROM dead_letter", "0");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events_before_the_contract_wait_for_it),
        cmocka_unit_test(test_a_bad_contract_is_refused_with_field_errors),
        cmocka_unit_test(test_deliveries_of_every_kind),
        cmocka_unit_test(test_quarterly_runs_by_financial_year),
        cmocka_unit_test(test_show_and_export),
        cmocka_unit_test(test_victim_contact_is_billed_once_across_a_renewal),
        cmocka_unit_test(test_more_participants_count_against_the_offender_cap),
        cmocka_unit_test(test_another_commissioner_cannot_take_over_a_providers_billing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
