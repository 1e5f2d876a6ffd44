// A query behind a nearly full pipeline: db_query_bin made room (read the pipeline back) like
// every other send does. Before, its pipelined branch sent without s_room, so with 511 or 512
// statements queued it wrote past the queue's kinds[] (found by a review; ASan reports it, and
// unsanitized the query fails). The room is now made inside the one function that writes the
// queue, so the second test puts every kind of send at the boundary.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "harness.h"

static void test_query_after_a_full_pipeline(void **state) {
    (void)state;
    harness_t *h = harness_new("db_pipeline_room");
    assert_non_null(h);
    db_t *db = db_connect(harness_superuser_conninfo(h), NULL, 5000);
    assert_non_null(db);
    assert_int_equal(db_exec(db, "SELECT 1", 0, NULL), 0); // prepared: one kind per send
    for (int i = 0; i < 510; i++)
        assert_int_equal(db_send(db, "SELECT 1", 0, NULL, NULL, NULL), 0);
    fprintf(stderr, "# queued after 510 sends: %d\n", db_queued(db));
    assert_int_equal(db_send(db, "SELECT 2", 0, NULL, NULL, NULL), 0); // new: prepare + run
    fprintf(stderr, "# queued after a new statement: %d (kinds[] holds 512)\n", db_queued(db));
    uint64_t errors = db_error_count(db);
    PGresult *r = db_query(db, "SELECT 3", 0, NULL); // new: prepare + run, no room check
    fprintf(stderr, "# query: %s, errors %llu -> %llu, sqlstate '%s'\n", r ? "ok" : "FAILED",
            (unsigned long long)errors, (unsigned long long)db_error_count(db), db_sqlstate(db));
    assert_non_null(r);
    PQclear(r);
    db_destroy(&db);
    harness_destroy(&h);
}

enum { S_SEND, S_QUERY, S_APPEND, S_GATHERED, S_COMMIT, S_KINDS };

// Fills the pipeline with `fill` queued statements inside a transaction, then makes one send of
// the given kind (a statement new to the connection: a prepare and a run) and reads everything
// back; the transaction's rows must all be there.
static void s_at_the_boundary(db_t *db, int kind, int fill, int *id) {
    char sql[80];
    assert_int_equal(db_exec(db, "BEGIN", 0, NULL), 0);
    for (int i = 0; i < fill; i++)
        assert_int_equal(db_send(db, "SELECT 1", 0, NULL, NULL, NULL), 0);
    char value[16];
    snprintf(value, sizeof value, "%d", ++*id);
    const char *values[] = {value};
    if (kind == S_SEND) {
        snprintf(sql, sizeof sql, "SELECT %d", *id);
        assert_int_equal(db_send(db, sql, 0, NULL, NULL, NULL), 0);
        assert_int_equal(db_sync(db), 0);
    } else if (kind == S_QUERY) {
        snprintf(sql, sizeof sql, "SELECT %d", *id);
        PGresult *r = db_query(db, sql, 0, NULL);
        assert_non_null(r);
        PQclear(r);
    } else if (kind == S_APPEND || kind == S_GATHERED) {
        // An append that is not a single-row INSERT goes at once; gathered rows go at the sync.
        db_gather(db, true);
        snprintf(sql, sizeof sql, "UPDATE room SET n = n WHERE n = %d", *id);
        if (kind == S_APPEND)
            assert_int_equal(db_append(db, sql, 0, NULL, NULL, NULL), 0);
        else
            assert_int_equal(db_send(db, sql, 0, NULL, NULL, NULL), 0);
        db_gather(db, false);
        assert_int_equal(db_sync(db), 0);
    }
    assert_int_equal(db_send(db, "INSERT INTO room (n) VALUES ($1::int)", 1, values, NULL, NULL),
                     0);
    assert_int_equal(db_commit_send(db), 0);
    assert_int_equal(db_commit_finish(db), 0);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM room WHERE n = %d", *id);
    char count[8];
    assert_int_equal(db_scalar(db, sql, 0, NULL, count, sizeof count), 1);
    assert_string_equal(count, "1");
}

static void test_every_send_at_the_boundary(void **state) {
    (void)state;
    harness_t *h = harness_new("db_pipeline_room_all");
    assert_non_null(h);
    db_t *db = db_connect(harness_superuser_conninfo(h), NULL, 5000);
    assert_non_null(db);
    assert_int_equal(db_exec(db, "CREATE TEMP TABLE room (n int)", 0, NULL), 0);
    assert_int_equal(db_exec(db, "SELECT 1", 0, NULL), 0);
    int id = 0;
    for (int kind = 0; kind < S_KINDS; kind++)
        for (int fill = 505; fill <= 514; fill++)
            s_at_the_boundary(db, kind, fill, &id);
    uint64_t errors = db_error_count(db);
    assert_int_equal(errors, 0);
    db_destroy(&db);
    harness_destroy(&h);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_query_after_a_full_pipeline),
                                       cmocka_unit_test(test_every_send_at_the_boundary)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
