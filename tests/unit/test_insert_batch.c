// insert_batch: which statements may be gathered, and the multi-row statement that comes out
// (parameters renumbered row by row, values copied, binary values kept whole, an upsert's
// clause once and never two rows with one key).

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cara/insert_batch.h"

static void test_accepts_only_single_row_inserts(void **state) {
    (void)state;
    assert_true(insert_batch_accepts("INSERT INTO t (a, b) VALUES ($1, $2)", 2));
    assert_true(insert_batch_accepts("INSERT INTO t (a, b) VALUES ($1, $2::jsonb)  ", 2));
    assert_true(insert_batch_accepts("INSERT INTO t (a, b) VALUES ($1, coalesce($2, now()))", 2));
    assert_false(insert_batch_accepts("INSERT INTO t (a) VALUES ($1) RETURNING id", 1));
    assert_false(insert_batch_accepts("INSERT INTO t (a) VALUES ($1) ON CONFLICT DO NOTHING", 1));
    assert_false(insert_batch_accepts("INSERT INTO t (a) VALUES ($1) WHERE true", 1));
    assert_false(insert_batch_accepts("INSERT INTO t (a) VALUES ($1), ($2)", 2));
    assert_false(insert_batch_accepts("INSERT INTO t (a, b) VALUES ($1, 'x')", 1));
    assert_false(insert_batch_accepts("INSERT INTO t (a) SELECT a FROM u WHERE b = $1", 1));
    assert_false(insert_batch_accepts("UPDATE t SET a = $1", 1));
    assert_false(insert_batch_accepts("INSERT INTO t (a) VALUES ($2)", 1)); // $2 of 1
    assert_false(insert_batch_accepts("INSERT INTO t (a) VALUES ($1); DELETE FROM t", 1));
    assert_false(insert_batch_accepts("INSERT INTO t (a) VALUES ($1)", 0));
}

static void test_rows_come_out_as_one_statement_per_text(void **state) {
    (void)state;
    insert_batch_t *b = insert_batch_new();
    assert_non_null(b);
    const char *t1 = "INSERT INTO t (a, b) VALUES ($1, $2::jsonb)";
    const char *t2 = "INSERT INTO u (p) VALUES ($1)";
    char row0a[] = "r0a", row0b[] = "{}";
    const char *r0[] = {row0a, row0b};
    const char *r1[] = {"r1a", NULL};
    const uint8_t blob[] = {0, 1, 2, 0, 3};
    const char *u0[] = {(const char *)blob};
    int ulen[] = {(int)sizeof blob}, ufmt[] = {1};
    assert_int_equal(insert_batch_add(b, t1, 2, r0, NULL, NULL), 0);
    row0a[0] = 'X'; // copied: the caller's buffer may change
    assert_int_equal(insert_batch_add(b, t2, 1, u0, ulen, ufmt), 0);
    assert_int_equal(insert_batch_add(b, t1, 2, r1, NULL, NULL), 0);
    assert_int_equal(
        insert_batch_add(b, "INSERT INTO t (a) VALUES ($1) RETURNING a", 1, r1, NULL, NULL), 1);
    assert_int_equal(insert_batch_count(b), 2);
    assert_int_equal(insert_batch_rows(b, 0), 2);
    assert_int_equal(insert_batch_rows(b, 1), 1);

    char *sql;
    int n;
    const char *const *values;
    const int *lengths, *formats;
    assert_int_equal(insert_batch_statement(b, 0, &sql, &n, &values, &lengths, &formats), 0);
    assert_string_equal(sql, "INSERT INTO t (a, b) VALUES ($1, $2::jsonb), ($3, $4::jsonb)");
    assert_int_equal(n, 4);
    assert_string_equal(values[0], "r0a");
    assert_string_equal(values[1], "{}");
    assert_string_equal(values[2], "r1a");
    assert_null(values[3]);
    assert_int_equal(formats[0] + formats[1] + formats[2] + formats[3], 0);
    free(sql);
    assert_int_equal(insert_batch_statement(b, 1, &sql, &n, &values, &lengths, &formats), 0);
    assert_string_equal(sql, "INSERT INTO u (p) VALUES ($1)");
    assert_int_equal(n, 1);
    assert_int_equal(lengths[0], (int)sizeof blob);
    assert_int_equal(formats[0], 1);
    assert_memory_equal(values[0], blob, sizeof blob);
    free(sql);

    insert_batch_clear(b);
    assert_int_equal(insert_batch_count(b), 0);
    insert_batch_destroy(&b);
    assert_null(b);
}

static void test_renumbering_chunks_and_full_texts(void **state) {
    (void)state;
    insert_batch_t *b = insert_batch_new();
    const char *t = "INSERT INTO t (a, b, c, d, e, f, g, h, i, j, k) VALUES ($1, $2, $3, $4, $5,"
                    " $6, $7, $8, $9, $10, $11)";
    const char *row[11] = {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"};
    assert_int_equal(insert_batch_add(b, t, 11, row, NULL, NULL), 0);
    assert_int_equal(insert_batch_add(b, t, 11, row, NULL, NULL), 0);
    char *sql;
    int n;
    const char *const *values;
    const int *lengths, *formats;
    assert_int_equal(insert_batch_statement(b, 0, &sql, &n, &values, &lengths, &formats), 0);
    assert_non_null(strstr(sql, "($12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"));
    assert_string_equal(values[21], "11");
    free(sql);
    // 2 + 45 rows: chunks of 32, 8 and 7 rows (up to 8 exactly, past 8 a multiple of 8), in
    // order, each with its own rows.
    char numbered[16];
    for (int i = 0; i < 45; i++) {
        snprintf(numbered, sizeof numbered, "%d", 100 + i);
        row[0] = numbered;
        assert_int_equal(insert_batch_add(b, t, 11, row, NULL, NULL), 0);
    }
    assert_int_equal(insert_batch_count(b), 3);
    int sizes[] = {32, 8, 7}, seen = 0;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(insert_batch_rows(b, i), sizes[i]);
        assert_int_equal(insert_batch_statement(b, i, &sql, &n, &values, &lengths, &formats), 0);
        assert_int_equal(n, 11 * sizes[i]);
        if (seen >= 2) {
            char first[16];
            snprintf(first, sizeof first, "%d", 100 + seen - 2);
            assert_string_equal(values[0], first);
        }
        free(sql);
        seen += sizes[i];
    }
    assert_int_equal(seen, 47);
    // A text takes at most INSERT_BATCH_MAX_ROWS rows.
    int added = 47;
    while (insert_batch_add(b, t, 11, row, NULL, NULL) == 0)
        added++;
    assert_int_equal(added, INSERT_BATCH_MAX_ROWS);
    insert_batch_destroy(&b);
}

// An upsert whose ON CONFLICT clause names the new values as EXCLUDED.column is gathered: its
// rows go as one statement with the clause once, and a row whose key a kept row of the same
// text has waits for the next statement (one statement must not touch a row twice).
static void test_upserts_gather_by_key(void **state) {
    (void)state;
    const char *up = "INSERT INTO f (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET"
                     " v = coalesce(f.v, EXCLUDED.v)";
    assert_true(insert_batch_accepts(up, 2));
    assert_true(insert_batch_accepts(
        "INSERT INTO f (a, k) VALUES ($2, $1::uuid) ON CONFLICT (k) DO NOTHING", 2));
    assert_true(insert_batch_accepts(
        "INSERT INTO f (a, k, v) VALUES ($1, $2, $3) ON CONFLICT (a, k) DO NOTHING", 3));
    // The clause may not hold a parameter, nor return anything.
    assert_false(insert_batch_accepts(
        "INSERT INTO f (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = $2", 2));
    assert_false(insert_batch_accepts(
        "INSERT INTO f (k) VALUES ($1) ON CONFLICT (k) DO NOTHING RETURNING k", 1));
    // The key must be known: each conflict column given a bare parameter in the row.
    assert_false(insert_batch_accepts(
        "INSERT INTO f (k, v) VALUES (lower($1), $2) ON CONFLICT (k) DO NOTHING", 2));
    assert_false(
        insert_batch_accepts("INSERT INTO f (k, v) VALUES ($1, $2) ON CONFLICT (z) DO NOTHING", 2));
    assert_false(insert_batch_accepts(
        "INSERT INTO f (k) VALUES ($1) ON CONFLICT ON CONSTRAINT f_pkey DO NOTHING", 1));

    insert_batch_t *b = insert_batch_new();
    const char *a1[] = {"a", "1"}, *b2[] = {"b", "2"}, *a3[] = {"a", "3"}, *n4[] = {NULL, "4"};
    assert_int_equal(insert_batch_add(b, up, 2, a1, NULL, NULL), 0);
    assert_int_equal(insert_batch_add(b, up, 2, b2, NULL, NULL), 0);
    assert_int_equal(insert_batch_add(b, up, 2, a3, NULL, NULL), 1); // key a is kept: later
    // The same key in another text is that text's own row.
    const char *other = "INSERT INTO g (k) VALUES ($1) ON CONFLICT (k) DO NOTHING";
    assert_int_equal(insert_batch_add(b, other, 1, a3, NULL, NULL), 0);
    // A NULL key never conflicts.
    assert_int_equal(insert_batch_add(b, up, 2, n4, NULL, NULL), 0);
    assert_int_equal(insert_batch_add(b, up, 2, n4, NULL, NULL), 0);
    assert_int_equal(insert_batch_count(b), 2);
    char *sql;
    int n;
    const char *const *values;
    const int *lengths, *formats;
    assert_int_equal(insert_batch_statement(b, 0, &sql, &n, &values, &lengths, &formats), 0);
    assert_string_equal(sql, "INSERT INTO f (k, v) VALUES ($1, $2), ($3, $4), ($5, $6), ($7, $8)"
                             " ON CONFLICT (k) DO UPDATE SET v = coalesce(f.v, EXCLUDED.v)");
    assert_int_equal(n, 8);
    assert_string_equal(values[2], "b");
    free(sql);
    // Once what was kept is sent, the row with key a goes in the next statement.
    insert_batch_clear(b);
    assert_int_equal(insert_batch_add(b, up, 2, a3, NULL, NULL), 0);
    assert_int_equal(insert_batch_statement(b, 0, &sql, &n, &values, &lengths, &formats), 0);
    assert_string_equal(sql, up);
    assert_string_equal(values[1], "3");
    free(sql);
    insert_batch_destroy(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_only_single_row_inserts),
        cmocka_unit_test(test_rows_come_out_as_one_statement_per_text),
        cmocka_unit_test(test_renumbering_chunks_and_full_texts),
        cmocka_unit_test(test_upserts_gather_by_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
