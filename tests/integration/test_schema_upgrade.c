// Upgrades: a database made by the last release (f652f24: core, intake and triage at migration
// 003, booking at 004), holding cases, is migrated to this one with its data intact, its value sets
// still enforced, the statistics of what it rewrote gathered again (and an empty table left
// unanalysed), and its services start on it and serve what it held. Every other test makes
// its schemas from nothing, which would not notice a migration that fails on a table with rows
// in it, or on a column something else was built on.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "booking.pb-c.h"
#include "cara/db.h"
#include "cara/migrate.h"
#include "harness.h"

extern const migration_t intake_migrations[];
extern const migration_t triage_migrations[];
extern const migration_t booking_migrations[];

#define S_MAX_MIGRATIONS 64

static harness_t *h;

static int setup(void **state) {
    (void)state;
    h = harness_new("schema_upgrade");
    return h ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    harness_destroy(&h);
    return 0;
}

// The migrations of all named below before ("005": up to 004), or all of them if before is
// NULL, in list (NULL-terminated). Returns how many.
static size_t s_until(const migration_t *all, const char *before, migration_t *list) {
    size_t n = 0;
    for (; all[n].name && (!before || strcmp(all[n].name, before) < 0); n++) {
        assert_true(n < S_MAX_MIGRATIONS);
        list[n] = all[n];
    }
    list[n] = (migration_t){NULL, NULL};
    return n;
}

// Migrates the service's schema as its own role, as the service does at start-up: the core
// track, then the service's. before as s_until, for both tracks; the last release's core track
// ended at 003.
static void s_migrate(const char *service, const migration_t *all, const char *before) {
    migration_t core[S_MAX_MIGRATIONS + 1], list[S_MAX_MIGRATIONS + 1];
    size_t nc = s_until(core_migrations, before ? "004" : NULL, core);
    size_t n = s_until(all, before, list);
    db_t *db = db_connect(harness_conninfo(h, service), service, 5000);
    assert_non_null(db);
    assert_true(migrate_run(db, "core", core) >= 0);
    assert_true(migrate_run(db, service, list) >= 0);
    assert_int_equal(migrate_version(db, "core"), atoi(core[nc - 1].name));
    assert_int_equal(migrate_version(db, service), atoi(list[n - 1].name));
    db_destroy(&db);
}

static void s_exec(const char *schema, const char *sql) {
    if (db_exec(harness_db(h, schema), sql, 0, NULL) != 0)
        fail_msg("%s: %s", sql, db_error(harness_db(h, schema)));
}

static void s_expect(const char *schema, const char *sql, const char *expected) {
    char *got = harness_value(h, schema, sql);
    if (!got || strcmp(got, expected) != 0)
        fail_msg("%s: expected %s, got %s", sql, expected, got ? got : "(null)");
    free(got);
}

// A value outside the column's set is still refused, as a check violation.
static void s_refused(const char *schema, const char *sql) {
    db_t *db = harness_db(h, schema);
    assert_int_not_equal(db_exec(db, sql, 0, NULL), 0);
    assert_string_equal(db_sqlstate(db), "23514");
}

// The tables the upgrade rewrote have their statistics again if they hold rows; an empty one is
// left unanalysed (reltuples -1), or the planner would take it for a table that stays empty.
static void s_expect_statistics(const char *schema, const char *table, const char *column,
                                int has_rows) {
    char sql[400];
    snprintf(sql, sizeof sql,
             "SELECT (SELECT count(*) FROM pg_stats WHERE schemaname = '%s' AND tablename = '%s'"
             " AND attname = '%s') || '/' || (SELECT reltuples >= 0 FROM pg_class"
             " WHERE oid = '%s.%s'::regclass)",
             schema, table, column, schema, table);
    s_expect(schema, sql, has_rows ? "1/true" : "0/false");
}

static void test_intake_upgrades_with_its_referrals(void **state) {
    (void)state;
    s_migrate("intake", intake_migrations, "004");
    s_exec("intake",
           "INSERT INTO referral (referral_id, force, caution_reference, officer, caution_given_at,"
           " caution_date, offence_category, condition_text, compliance_deadline, offender_name,"
           " offender_dob, offender_sex, offender_address, ethnicity, relationship, dash_level,"
           " previous_da, children_in_household) VALUES ('00000000-0000-4000-8000-000000000001',"
           " 'dyfed-powys', 'UP-1', 'PC 1', '2026-11-01T10:00:00Z', '2026-11-01', 'harassment',"
           " 'attend CARA', '2027-01-30', 'A Person', '1990-01-01', 'male', '1 Street',"
           " 'not_stated', 'intimate', 'standard', 'no', 'not_known')");
    s_exec("intake",
           "INSERT INTO outcome (referral_id, force, caution_reference, status,"
           " compliance_deadline, received_at) VALUES ('00000000-0000-4000-8000-000000000001',"
           " 'dyfed-powys', 'UP-1', 'booked', '2027-01-30', now())");
    s_migrate("intake", intake_migrations, NULL);
    s_expect("intake",
             "SELECT concat_ws('|', offence_category, offender_sex, relationship, dash_level,"
             " previous_da, children_in_household, state) FROM referral",
             "harassment|male|intimate|standard|no|not_known|active");
    s_expect("intake", "SELECT status FROM outcome", "booked");
    s_refused("intake", "UPDATE outcome SET status = 'lost'");
    s_refused("intake", "UPDATE referral SET dash_level = 'extreme'");
    s_expect_statistics("intake", "outcome", "status", 1);
    s_expect_statistics("intake", "withdrawal", "reason_code", 0);
    assert_int_equal(harness_start(h, "intake"), 0);
}

static void test_triage_upgrades_with_its_waiting_cases(void **state) {
    (void)state;
    s_migrate("triage", triage_migrations, "004");
    s_exec("triage", "INSERT INTO triage_case (referral_id, force, status, received_at,"
                     " caution_date, compliance_deadline, rules_version, referral) VALUES"
                     " ('00000000-0000-4000-8000-000000000002', 'dyfed-powys',"
                     " 'awaiting_decision', now(), '2026-11-01', '2027-01-30', 1, '\\x00')");
    s_exec("triage", "INSERT INTO need (referral_id, area, level) VALUES"
                     " ('00000000-0000-4000-8000-000000000002', 'alcohol', 'medium')");
    s_migrate("triage", triage_migrations, NULL);
    s_expect("triage", "SELECT status || '/' || (SELECT level FROM need) FROM triage_case",
             "awaiting_decision/medium");
    // The waiting list's index was made again on the new type, with its predicate.
    s_expect("triage",
             "SELECT count(*) FROM pg_indexes WHERE schemaname = 'triage'"
             " AND indexname = 'triage_case_waiting' AND indexdef LIKE '%awaiting_decision%'",
             "1");
    s_refused("triage", "UPDATE need SET level = 'severe'");
    s_expect_statistics("triage", "triage_case", "status", 1);
    assert_int_equal(harness_start(h, "triage"), 0);
}

static void test_booking_upgrades_with_its_cases_and_seats(void **state) {
    (void)state;
    s_migrate("booking", booking_migrations, "005");
    s_exec(
        "booking",
        "INSERT INTO provider_case (case_id, referral_id, provider_id, force, pathway, status,"
        " compliance_deadline, caution_date, first_contact_due, referral) VALUES"
        " ('00000000-0000-4000-8000-0000000000a1', gen_random_uuid(), 'p1', 'dyfed-powys',"
        "  'male_intimate', 'open', current_date + 90, current_date, current_date + 14, '\\x00'),"
        " ('00000000-0000-4000-8000-0000000000a2', gen_random_uuid(), 'p1', 'dyfed-powys',"
        "  'male_intimate', 'booked', current_date + 90, current_date, current_date + 14,"
        "  '\\x00'),"
        " ('00000000-0000-4000-8000-0000000000a3', gen_random_uuid(), 'p1', 'dyfed-powys',"
        "  'male_intimate', 'withdrawn', current_date + 90, current_date, current_date + 14,"
        "  '\\x00')");
    s_exec("booking", "INSERT INTO cohort (cohort_id, provider_id, cohort_type, town, capacity,"
                      " seats_taken, part_a_date, part_b_date) VALUES"
                      " ('00000000-0000-4000-8000-0000000000c1', 'p1', 'male_intimate',"
                      " 'Carmarthen', 10, 1, current_date + 7, current_date + 35)");
    s_exec("booking", "INSERT INTO booking (case_id, cohort_id, status) VALUES"
                      " ('00000000-0000-4000-8000-0000000000a2',"
                      " '00000000-0000-4000-8000-0000000000c1', 'booked')");
    s_migrate("booking", booking_migrations, NULL);
    // The cases keep their statuses, and live (made after them) says which are still running.
    s_expect("booking",
             "SELECT string_agg(status || ':' || live, ',' ORDER BY status) FROM provider_case",
             "booked:true,open:true,withdrawn:false");
    s_expect("booking", "SELECT cohort_type || '/' || status || '/' || seats_taken FROM cohort",
             "male_intimate/scheduled/1");
    s_refused("booking", "UPDATE provider_case SET status = 'lost'");
    s_refused("booking", "UPDATE cohort SET cohort_type = 'mixed'");
    s_refused("booking", "UPDATE booking SET part_a = 'maybe'");
    s_expect_statistics("booking", "provider_case", "status", 1);
    // The service starts on the upgraded schema and serves the cases it held.
    assert_int_equal(harness_start(h, "booking"), 0);
    Cara__ListCases cmd = CARA__LIST_CASES__INIT;
    Cara__Reply *reply = harness_call(harness_client(h, "booking", "provider", "p1"), &cmd.base);
    assert_non_null(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    Cara__CaseList *list = cara__case_list__unpack(NULL, reply->payload.len, reply->payload.data);
    assert_non_null(list);
    assert_int_equal(list->n_cases, 3);
    char seen[64] = "";
    for (size_t i = 0; i < list->n_cases; i++)
        if (strcmp(list->cases[i]->case_id, "00000000-0000-4000-8000-0000000000a2") == 0)
            snprintf(seen, sizeof seen, "%s/%s", list->cases[i]->status, list->cases[i]->cohort_id);
    assert_string_equal(seen, "booked/00000000-0000-4000-8000-0000000000c1");
    cara__case_list__free_unpacked(list, NULL);
    cara__reply__free_unpacked(reply, NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intake_upgrades_with_its_referrals),
        cmocka_unit_test(test_triage_upgrades_with_its_waiting_cases),
        cmocka_unit_test(test_booking_upgrades_with_its_cases_and_seats),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
