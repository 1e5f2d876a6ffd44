// billing end to end through the real chain police -> intake -> triage -> booking -> billing:
// a group cohort attended by two people is billed once per cohort (fee, victim liaison,
// licence fee to Hampton Trust), a telephone completion per case, victim contact once per
// case; the invoice run for the month invoices them; and nothing of the referral's personal
// data (names, dates of birth, addresses, phones, emails, notes) reaches any billing table.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "billing.pb-c.h"
#include "booking.pb-c.h"
#include "cara/timeutil.h"
#include "test_intake_support.h"

static harness_t *h;
static int32_t today;
static int s_ref = 0;

static int setup(void **state) {
    (void)state;
    h = harness_new("billing_chain");
    if (!h)
        return -1;
    today = (int32_t)(time_now_us() / 1000000 / 86400);
    ti_route(h, 0);
    return harness_start(h, "intake") == 0 && harness_start(h, "triage") == 0 &&
                   harness_start(h, "booking") == 0 && harness_start(h, "billing") == 0
               ? 0
               : -1;
}

static int teardown(void **state) {
    (void)state;
    harness_destroy(&h);
    return 0;
}

static client_t *s_p1(void) {
    return harness_client(h, "booking", "provider", "p1");
}

static void s_date(int offset, char *buf) {
    time_format_date(today + offset, buf, 16);
}

static Cara__Reply__Status s_call(client_t *c, ProtobufCMessage *msg) {
    Cara__Reply *reply = harness_call(c, msg);
    assert_non_null(reply);
    ti_print_errors(reply);
    Cara__Reply__Status status = reply->status;
    cara__reply__free_unpacked(reply, NULL);
    return status;
}

static void s_value_is(const char *sql, const char *expected) {
    char *v = harness_value(h, "billing", sql);
    assert_non_null(v);
    if (strcmp(v, expected) != 0)
        fprintf(stderr, "%s\n  got %s\n  expected %s\n", sql, v, expected);
    assert_string_equal(v, expected);
    free(v);
}

// A referral through to an open provider case (interpreter needed: telephone pathway).
static char *s_case(int interpreter) {
    char ref[32];
    snprintf(ref, sizeof ref, "BC-%d-%d", getpid(), ++s_ref);
    char *id = ti_open_case(h, "dyfed-powys", ref, "", interpreter);
    assert_non_null(id);
    return id;
}

static char *s_cohort(const char *type, unsigned capacity) {
    Cara__CreateCohort cmd = CARA__CREATE_COHORT__INIT;
    char da[16], db_[16];
    s_date(7, da);
    s_date(35, db_);
    cmd.cohort_type = (char *)type;
    cmd.town = "Carmarthen";
    cmd.capacity = capacity;
    cmd.part_a_date = da;
    cmd.part_b_date = db_;
    Cara__Reply *reply = harness_call(s_p1(), &cmd.base);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    Cara__CohortRef *ref = cara__cohort_ref__unpack(NULL, reply->payload.len, reply->payload.data);
    char *id = strdup(ref->cohort_id);
    cara__cohort_ref__free_unpacked(ref, NULL);
    cara__reply__free_unpacked(reply, NULL);
    return id;
}

static void s_book(const char *referral_id, const char *cohort) {
    Cara__BookSeat cmd = CARA__BOOK_SEAT__INIT;
    cmd.referral_id = (char *)referral_id;
    cmd.cohort_id = (char *)cohort;
    assert_int_equal(s_call(s_p1(), &cmd.base), CARA__REPLY__STATUS__OK);
}

// Time passes to the day of the part, and everyone listed attends it.
static void s_attend_all(const char *cohort, const char *part, char **ids, size_t n) {
    const char *values[] = {cohort};
    assert_int_equal(db_exec(harness_db(h, "booking"),
                             strcmp(part, "A") == 0
                                 ? "UPDATE cohort SET part_b_date = part_b_date - (part_a_date -"
                                   " current_date), part_a_date = current_date WHERE"
                                   " cohort_id = $1 AND part_a_date > current_date"
                                 : "UPDATE cohort SET part_a_date = part_a_date - (part_b_date -"
                                   " current_date), part_b_date = current_date WHERE"
                                   " cohort_id = $1 AND part_b_date > current_date",
                             1, values),
                     0);
    Cara__AttendanceEntry e[4];
    Cara__AttendanceEntry *entries[4];
    for (size_t i = 0; i < n; i++) {
        cara__attendance_entry__init(&e[i]);
        e[i].referral_id = ids[i];
        e[i].status = "attended";
        entries[i] = &e[i];
    }
    Cara__RecordAttendance cmd = CARA__RECORD_ATTENDANCE__INIT;
    cmd.cohort_id = (char *)cohort;
    cmd.part = (char *)part;
    cmd.entries = entries;
    cmd.n_entries = n;
    assert_int_equal(s_call(s_p1(), &cmd.base), CARA__REPLY__STATUS__OK);
}

static void test_delivered_work_is_billed_and_invoiced(void **state) {
    (void)state;
    char from[16], to[16], period[8];
    s_date(-40, from);
    s_date(400, to);
    Cara__CohortFee fee = CARA__COHORT_FEE__INIT;
    fee.cohort_type = "male_intimate";
    fee.fee_pence = 250000;
    Cara__CohortFee *fees[] = {&fee};
    Cara__Contract c = CARA__CONTRACT__INIT;
    c.contract_id = "DP-E2E";
    c.commissioner = "opcc-dyfed-powys";
    c.provider_id = "p1";
    c.licence_holder = "hampton-trust";
    c.starts_on = from;
    c.ends_on = to;
    c.cohort_fee_pence = 200000;
    c.cohort_fees = fees;
    c.n_cohort_fees = 1;
    c.victim_liaison_pence = 50000;
    c.telephone_fee_pence = 30000;
    c.licence_fee_pence_per_cohort = 45000;
    c.victim_contact_fee_pence = 1000;
    c.delivery_cap_pence = 6000000;
    c.offender_cap = 200;
    Cara__AddContract add = CARA__ADD_CONTRACT__INIT;
    add.contract = &c;
    assert_int_equal(s_call(harness_client(h, "billing", "finance", "opcc-dyfed-powys"), &add.base),
                     CARA__REPLY__STATUS__OK);

    char *ids[2] = {s_case(0), s_case(0)};
    char *group = s_cohort("male_intimate", 12);
    s_book(ids[0], group);
    s_book(ids[1], group);
    s_attend_all(group, "A", ids, 2);
    s_attend_all(group, "B", ids, 2);
    char *phone = s_case(1);
    char *tel = s_cohort("telephone", 1);
    s_book(phone, tel);
    s_attend_all(tel, "A", &phone, 1);
    s_attend_all(tel, "B", &phone, 1);
    Cara__RecordVictimContact v = CARA__RECORD_VICTIM_CONTACT__INIT;
    v.referral_id = ids[0];
    v.kind = "offer";
    v.notes = "victim-secret-note: Sian prefers calls after 10";
    client_t *victim_worker = harness_client(h, "booking", "victim_contact", "p1");
    assert_int_equal(s_call(victim_worker, &v.base), CARA__REPLY__STATUS__OK);
    v.kind = "accepted";
    assert_int_equal(s_call(victim_worker, &v.base), CARA__REPLY__STATUS__OK);

    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT string_agg(kind || ':' || amount_pence || ':' || participants, ','"
             " ORDER BY kind) FROM billable_line WHERE cohort_id = '%s'",
             group);
    assert_int_equal(harness_wait_value(h, "billing", sql,
                                        "cohort_fee:250000:2,licence_fee:45000:0,"
                                        "victim_liaison:50000:0",
                                        20000),
                     0);
    assert_int_equal(harness_wait_value(h, "billing",
                                        "SELECT string_agg(kind || ':' || amount_pence, ','"
                                        " ORDER BY kind) FROM billable_line WHERE kind IN"
                                        " ('telephone_fee', 'victim_contact')",
                                        "telephone_fee:30000,victim_contact:1000", 20000),
                     0);
    // The telephone cohort bills per case, not per cohort.
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM billable_line WHERE cohort_id = '%s' AND"
             " kind <> 'telephone_fee'",
             tel);
    s_value_is(sql, "0");

    time_format_date(today, period, sizeof period); // YYYY-MM of today
    period[7] = '\0';
    Cara__RunInvoices run = CARA__RUN_INVOICES__INIT;
    run.period = period;
    assert_int_equal(
        s_call(harness_client(h, "billing", "commissioner", "opcc-dyfed-powys"), &run.base),
        CARA__REPLY__STATUS__OK);
    s_value_is("SELECT string_agg(number || ':' || total_pence, ',' ORDER BY number) FROM invoice",
               "hampton-trust-INV-00001:45000,p1-INV-00001:331000");
    free(ids[0]);
    free(ids[1]);
    free(phone);
    free(group);
    free(tel);
}

// Counts (first %s) the columns of billing's tables (narrowed by the second %s) with a value that
// holds the text (third %s). Binary columns are read as their bytes (escape encoding), so a
// name inside an encoded event is found too.
static const char *const s_scan =
    "SELECT %s FROM information_schema.columns c, LATERAL (SELECT query_to_xml(format("
    "'SELECT %%s FROM billing.%%I', CASE WHEN data_type = 'bytea' THEN format("
    "'encode(%%I, ''escape'')', column_name) ELSE quote_ident(column_name) END, table_name),"
    " false, true, '')::text AS x) v WHERE table_schema = 'billing' AND data_type IN ('text',"
    " 'bytea', 'json', 'jsonb', 'date', 'ARRAY')%s AND strpos(x, '%s') > 0";

static void test_no_personal_data_reaches_billing(void **state) {
    (void)state;
    // Every text value of every billing table, against what the referral and the victim
    // contact carried.
    static const char *const personal[] = {
        "Gareth",       "Pryce",    "Llewellyn",           "1988-07-02", "Heol y Felin",
        "SA19 6AA",     "07700",    "g.pryce@example.org", "Sian",       "victim-secret-note",
        "Rhian Morgan", "dyslexia", "safeguarding"};
    for (size_t i = 0; i < sizeof personal / sizeof personal[0]; i++) {
        char sql[900];
        snprintf(sql, sizeof sql, s_scan, "count(*)", "", personal[i]);
        s_value_is(sql, "0");
    }
    // The scan itself finds a value when there is one (it cannot pass vacuously), in a text
    // column and in a binary one (the encoded events billing keeps: its outbox's invoices).
    char sql[900];
    snprintf(sql, sizeof sql, s_scan, "count(*)",
             " AND column_name = 'contract_id' AND table_name = 'contract'", "DP-E2E");
    s_value_is(sql, "1");
    snprintf(sql, sizeof sql, s_scan, "count(*) > 0", " AND data_type = 'bytea'", "DP-E2E");
    s_value_is(sql, "t");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delivered_work_is_billed_and_invoiced),
        cmocka_unit_test(test_no_personal_data_reaches_billing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
