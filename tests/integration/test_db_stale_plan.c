// A prepared statement whose result's column type a migration changed fails once with 0A000
// ("cached plan must not change result type"). db forgets it, so the next call prepares it
// afresh, and db_error_transient says the failure is worth that retry: a consumer rolls its batch
// back and tries again instead of sending an event to dead letters. The rule is narrow. 0A000
// is also "feature not supported", a programming error that fails every time, so a statement
// that never ran on the connection is not retried on it.
#include <setjmp.h>
#include <stdarg.h>
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

// 0A000 from a statement that never ran on the connection: feature_not_supported, which fails
// on every try. Not transient, whether it is run at once or queued.
static void test_unsupported_statement_is_not_transient(void **state) {
    (void)state;
    harness_t *h;
    db_t *db, *other;
    s_open(&h, &db, &other, "db_stale_plan_unsupported");
    const char *bad = "SELECT count(*) FROM public.stale FOR UPDATE"; // not allowed with aggregates
    for (int attempt = 0; attempt < 2; attempt++) {
        assert_null(db_query(db, bad, 0, NULL));
        assert_string_equal(db_sqlstate(db), "0A000");
        assert_false(db_error_transient(db));
        assert_int_equal(db_send(db, "BEGIN", 0, NULL, NULL, NULL), 0);
        assert_int_equal(db_send(db, bad, 0, NULL, NULL, NULL), 0);
        assert_int_equal(db_sync(db), -1);
        assert_string_equal(db_sqlstate(db), "0A000");
        assert_false(db_error_transient(db));
        db_rollback(db);
    }
    // A stale plan's flag does not outlive its error: after one, an unsupported statement is
    // still not transient.
    s_assert_reads(db, "integer");
    assert_int_equal(db_exec(other, "ALTER TABLE public.stale ALTER COLUMN v TYPE bigint", 0, NULL),
                     0);
    assert_null(db_query(db, S_READ, 0, NULL));
    assert_true(db_error_transient(db));
    assert_null(db_query(db, bad, 0, NULL));
    assert_string_equal(db_sqlstate(db), "0A000");
    assert_false(db_error_transient(db));
    harness_destroy(&h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stale_plan_is_retried_once_prepared_afresh),
        cmocka_unit_test(test_unsupported_statement_is_not_transient),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
