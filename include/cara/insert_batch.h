// Single-row INSERTs gathered into multi-row ones: rows of the same `INSERT INTO t (...) VALUES
// (...)` text are kept (their parameters copied) and come out as one `INSERT ... VALUES (...),
// (...), ...` per text, with the parameters renumbered. The server then runs one statement per
// table instead of one per row (db_defer uses it for a request batch's optimistic pass).
#ifndef CARA_INSERT_BATCH_H
#define CARA_INSERT_BATCH_H

#include <stddef.h>

// Statement texts gathered at once; rows kept per text; rows in one multi-row statement (rows
// go in chunks of up to 8 rows, or a multiple of 8 past that, so each text has at most 11 sizes
// that the server prepares once; at most 27 parameters per row stays far below PostgreSQL's
// 65535).
#define INSERT_BATCH_MAX_TEXTS 16
#define INSERT_BATCH_MAX_ROWS 1024
#define INSERT_BATCH_CHUNK_MAX 32

typedef struct insert_batch_t insert_batch_t;

insert_batch_t *insert_batch_new(void);
void insert_batch_destroy(insert_batch_t **self_p);

// True if sql is a single-row INSERT ... VALUES (...) that can be gathered: no quoted text in
// the row, parameters written $1..$n, and nothing after the row but, possibly, an
// "ON CONFLICT (columns) DO ..." clause without parameters (it names the new values as
// EXCLUDED.column) whose columns are each given a bare parameter in the row. Rows of such an
// upsert with the same key are never in one statement (the rows kept so far go first), so
// one text's writes to one row keep their order; but, as for any two texts, an upsert of one
// text may be sent before another text's write to the same row that came first: gather only
// upserts whose writes to one row commute (national's facts: each column has one writer).
int insert_batch_accepts(const char *sql, int n);
// Keeps one row of sql (values copied; lengths matter where formats[i] is 1, binary). Returns 0,
// 1 if sql cannot be gathered or its rows are full (the caller sends what is kept, then this),
// or -1 if out of memory.
int insert_batch_add(insert_batch_t *self, const char *sql, int n, const char *const *values,
                     const int *lengths, const int *formats);
// The number of multi-row statements kept: per distinct text (first seen first), its rows in
// chunks (up to 8 rows exactly, past 8 a multiple of 8, at most INSERT_BATCH_CHUNK_MAX), largest
// first.
int insert_batch_count(const insert_batch_t *self);
// The number of rows in statement i (1: its text is the single-row text as given).
int insert_batch_rows(insert_batch_t *self, int i);
// Statement i: its text (malloc'd, caller frees), parameter count and arrays (owned by the
// batch, valid until insert_batch_clear). Returns 0 or -1 (out of memory).
int insert_batch_statement(insert_batch_t *self, int i, char **sql, int *n_params,
                           const char *const **values, const int **lengths, const int **formats);
// Forgets every kept row.
void insert_batch_clear(insert_batch_t *self);

#endif
