// A query behind a nearly full pipeline: db_query_bin made room (read the pipeline back) like
// every other send does. Before, its pipelined branch sent without s_room, so with 511 or 512
// statements queued it wrote past the queue's kinds[] (found by a review; ASan reports it, and
// unsanitized the query fails).
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

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_query_after_a_full_pipeline)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
