// A prepared statement whose result's column type a migration changed fails once with 0A000
// ("cached plan must not change result type"). db forgets it, so the next call prepares it
// afresh, and db_error_transient says the failure is worth that retry: a consumer rolls its batch
// back and tries again instead of sending an event to dead letters. The rule is narrow: 0A000
// is also "feature not supported", which fails every time, and only the server's plan-cache
// check (the function that raised the error) counts as stale.
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "harness.h"

#define S_READ "SELECT v FROM public.stale WHERE id = 1"

// The test's connection and a second one (the migration's), both to the test's database (the
// harness owns them), with table public.stale(id, v int).
static void s_open(harness_t **h, db_t **db, db_t **other, const char *name) {
    *h = harness_new(name);
    assert_non_null(*h);
    *db = harness_db(*h, "intake");
    *other = harness_db(*h, "triage");
    assert_non_null(*db);
    assert_non_null(*other);
    assert_ptr_not_equal(*db, *other);
    assert_int_equal(
        db_exec(*other, "CREATE TABLE public.stale (id int PRIMARY KEY, v int NOT NULL)", 0, NULL),
        0);
    assert_int_equal(db_exec(*other, "INSERT INTO public.stale VALUES (1, 7)", 0, NULL), 0);
}

// The type of S_READ's one column as this connection sees it now.
static void s_assert_reads(db_t *db, const char *type) {
    PGresult *r = db_query(db, S_READ, 0, NULL);
    assert_non_null(r);
    assert_string_equal(PQgetvalue(r, 0, 0), "7");
    char sql[80];
    snprintf(sql, sizeof sql, "SELECT format_type(%u, NULL)", (unsigned)PQftype(r, 0));
    PQclear(r);
    char seen[32];
    assert_int_equal(db_scalar(db, sql, 0, NULL, seen, sizeof seen), 1);
    assert_string_equal(seen, type);
}

static void test_stale_plan_is_retried_once_prepared_afresh(void **state) {
    (void)state;
    harness_t *h;
    db_t *db, *other;
    s_open(&h, &db, &other, "db_stale_plan");
    s_assert_reads(db, "integer"); // prepared and run on this connection
    assert_int_equal(db_exec(other, "ALTER TABLE public.stale ALTER COLUMN v TYPE bigint", 0, NULL),
                     0);
    assert_null(db_query(db, S_READ, 0, NULL));
    printf("# after the migration: SQLSTATE %s, transient %d\n", db_sqlstate(db),
           db_error_transient(db));
    assert_string_equal(db_sqlstate(db), "0A000");
    assert_true(db_error_transient(db));
    s_assert_reads(db, "bigint"); // the retry: prepared afresh, on the new type
    // The same through the pipeline, inside a transaction (as a consumer's batch runs).
    assert_int_equal(
        db_exec(other, "ALTER TABLE public.stale ALTER COLUMN v TYPE numeric", 0, NULL), 0);
    assert_int_equal(db_send(db, "BEGIN", 0, NULL, NULL, NULL), 0);
    assert_int_equal(db_send(db, S_READ, 0, NULL, NULL, NULL), 0);
    assert_int_equal(db_sync(db), -1);
    assert_string_equal(db_sqlstate(db), "0A000");
    assert_true(db_error_transient(db));
    db_rollback(db);
    // A later failure of another kind is judged on its own.
    assert_int_equal(db_exec(db, "SELECT 1 / 0", 0, NULL), -1);
    assert_string_equal(db_sqlstate(db), "22012");
    assert_false(db_error_transient(db));
    assert_int_equal(db_send(db, "BEGIN", 0, NULL, NULL, NULL), 0);
    assert_int_equal(db_send(db, S_READ, 0, NULL, NULL, NULL), 0);
    assert_int_equal(db_commit(db), 0);
    s_assert_reads(db, "numeric");
    harness_destroy(&h);
}

// Runs sql with $1 = value (no parameter if value is NULL), at once or queued (behind a run of it
// with good, if given, as events earlier in a consumer's batch run the same statement), and
// expects it to fail with 0A000 that is not transient.
static void s_assert_unsupported(db_t *db, const char *sql, const char *value, const char *good,
                                 bool queued) {
    const char *values[] = {value};
    if (!queued) {
        assert_null(db_query(db, sql, value ? 1 : 0, values));
    } else {
        const char *first[] = {good};
        assert_int_equal(db_send(db, "BEGIN", 0, NULL, NULL, NULL), 0);
        if (good)
            assert_int_equal(db_send(db, sql, 1, first, NULL, NULL), 0);
        assert_int_equal(db_send(db, sql, value ? 1 : 0, values, NULL, NULL), 0);
        assert_int_equal(db_sync(db), -1);
    }
    assert_string_equal(db_sqlstate(db), "0A000");
    assert_false(db_error_transient(db));
    if (queued)
        db_rollback(db);
}

// Every other 0A000 is feature_not_supported, which fails on every try: not transient, whether
// it is refused when prepared or when run, at once or queued, on its first run or after the same
// statement ran well (a bad value in a batch of good ones), however often it is tried.
static void test_unsupported_statement_is_not_transient(void **state) {
    (void)state;
    harness_t *h;
    db_t *db, *other;
    s_open(&h, &db, &other, "db_stale_plan_unsupported");
    // Refused when prepared.
    const char *locked = "SELECT count(*) FROM public.stale FOR UPDATE"; // not with aggregates
    // Refused when run, for some values only.
    const char *search = "SELECT array_position($1::int[], 1)";
    const char *flat = "{1,2}", *nested = "{{1,2}}"; // multidimensional: not supported
    for (int attempt = 0; attempt < 3; attempt++) {
        s_assert_unsupported(db, locked, NULL, NULL, false);
        s_assert_unsupported(db, locked, NULL, NULL, true);
        s_assert_unsupported(db, search, nested, NULL, false);
        PGresult *r = db_query(db, search, 1, (const char *const[]){flat});
        assert_non_null(r);
        assert_string_equal(PQgetvalue(r, 0, 0), "1");
        PQclear(r);
        s_assert_unsupported(db, search, nested, NULL, false);
        s_assert_unsupported(db, search, nested, flat, true);
    }
    // A stale plan's flag does not outlive its error: after one, an unsupported statement is
    // still not transient.
    s_assert_reads(db, "integer");
    assert_int_equal(db_exec(other, "ALTER TABLE public.stale ALTER COLUMN v TYPE bigint", 0, NULL),
                     0);
    assert_null(db_query(db, S_READ, 0, NULL));
    assert_true(db_error_transient(db));
    s_assert_unsupported(db, search, nested, NULL, false);
    s_assert_reads(db, "bigint");
    harness_destroy(&h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stale_plan_is_retried_once_prepared_afresh),
        cmocka_unit_test(test_unsupported_statement_is_not_transient),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
