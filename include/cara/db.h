// A PostgreSQL connection (libpq) that reconnects with back-off, prepares each distinct
// statement once per connection (then PQexecPrepared; unnamed PQexecParams past a bound),
// and keeps the last error for the caller. Errors are logged with the SQLSTATE and constraint
// only: PostgreSQL messages can quote values, and values can be personal data. Connection
// failures are the exception: their reason is logged as libpq gives it (first line: server,
// role or database, refused, authentication failed), which holds no data and no password.
#ifndef CARA_DB_H
#define CARA_DB_H
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct db_t db_t;

// Connects to conninfo and sets search_path to schema (may be NULL), retrying with back-off
// for up to wait_ms. Returns NULL if no connection could be made in time.
db_t *db_connect(const char *conninfo, const char *schema, int wait_ms);
// As db_connect, with a password kept beside conninfo (NULL: none; it overrides one in
// conninfo), so conninfo may be key=value pairs or a postgresql:// URI alike. A conninfo that
// does not parse fails at once. The reason of a failure is logged (db_connect_failed).
db_t *db_connect_password(const char *conninfo, const char *password, const char *schema,
                          int wait_ms);
void db_destroy(db_t **self_p);
// Backstops against a transaction that never ends (a bug that leaves one open holding its
// locks): a statement that waits longer than lock_ms for a lock fails (SQLSTATE 55P03, which is
// transient: the request is told to retry, a consumer's batch is retried, nothing is
// dead-lettered), and the server ends a session left idle inside a transaction for idle_ms
// (the connection is then lost and made again). 0 = no limit. Applied now and after every
// reconnect. Returns 0, or -1 if they could not be applied now.
int db_set_timeouts(db_t *self, int lock_ms, int idle_ms);
// Reconnects if the connection is broken, at most once per back-off interval.
// Returns 0 if connected now, -1 otherwise.
int db_ensure(db_t *self);
bool db_ok(db_t *self);
PGconn *db_conn(db_t *self);

// Runs sql with text parameters (NULL = SQL NULL). Returns the result (caller PQclears) if it
// succeeded, or NULL with the error kept (db_sqlstate, db_error).
PGresult *db_query(db_t *self, const char *sql, int n, const char *const *values);
// As db_query, with per-parameter lengths and formats (1 = binary) and a result format.
PGresult *db_query_bin(db_t *self, const char *sql, int n, const char *const *values,
                       const int *lengths, const int *formats, int result_format);
// Runs sql and discards the result. Returns 0, or -1 with the error kept.
int db_exec(db_t *self, const char *sql, int n, const char *const *values);
// Runs several statements without parameters (migrations). Returns 0 or -1.
int db_exec_script(db_t *self, const char *sql);
// Runs a query expected to return one value in one row. Copies it into out (empty string for
// NULL). Returns 1 if a row came back, 0 if none, -1 on error.
int db_scalar(db_t *self, const char *sql, int n, const char *const *values, char *out, int size);

// Pipelining: sends sql (text parameters, formats as db_query_bin; results discarded) without
// waiting for it (libpq pipeline mode). It is read back, in order, by the next db_sync or by the
// next db_query/db_exec/db_commit, which travels in the same round trip and fails if anything
// queued before it failed (the transaction is then aborted, as after any failed statement).
// Returns 0, or -1 if it could not be sent (the error is kept; the next read-back fails too).
int db_send(db_t *self, const char *sql, int n, const char *const *values, const int *lengths,
            const int *formats);
// Gathering on: from now on db_send keeps single-row INSERT ... VALUES statements
// (insert_batch_accepts) instead of sending them, and sends the rows of each statement text as
// multi-row INSERTs (insert_batch) before anything else is sent or read back. The order of the
// rows of one text is kept, but rows of different texts go in the order their texts were first
// seen, so a row that needs a row of another text (a foreign key) must come after that text was
// first used. A failure of a gathered row shows at the next read-back, for all of them.
// db_rollback forgets what is gathered. Off: nothing more is gathered (what is kept still goes).
void db_gather(db_t *self, bool on);
// An append that nothing in the transaction reads back (an outbox event, an audit row): as
// db_send, but while gathering its rows are held past reads too, and go behind the gathered
// rows at the next db_sync, db_commit_send or db_append_flush, or once gathering is off. The
// rows of one text keep their order; a statement of that table that is not held (an INSERT
// ... RETURNING) must call db_append_flush first to keep its place. Returns 0 or -1.
int db_append(db_t *self, const char *sql, int n, const char *const *values, const int *lengths,
              const int *formats);
// Sends the held rows (and the gathered ones before them) now, queued. Returns 0 or -1.
int db_append_flush(db_t *self);
// A write whose result is not read: run now (queued = 0, as db_exec with lengths and formats)
// or queued (queued = 1, as db_send). Returns 0 or -1.
int db_write(db_t *self, int queued, const char *sql, int n, const char *const *values,
             const int *lengths, const int *formats);
// Has fn(arg) called once, just before the next statement is sent to the server (queued or
// run; gathered rows count when they are sent), or not at all if the hook is replaced or
// cleared first (fn NULL). fn must not use this connection.
void db_before_send(db_t *self, void (*fn)(void *arg), void *arg);
// Reads back every statement queued by db_send. Returns 0 if all succeeded (or none was
// queued), or -1 with the first error kept.
int db_sync(db_t *self);
// How many statements are queued and not yet read back.
int db_queued(db_t *self);

int db_begin(db_t *self);
int db_commit(db_t *self);
// db_commit in two halves, so that other work can go on while the commit is flushed to disk:
// db_commit_send sends COMMIT behind everything queued, with the sync point, and reads nothing;
// db_commit_finish (which must follow, before anything else on this connection) reads it all
// back. db_commit_send returns 0 or -1 (the failure shows again in db_commit_finish), and
// db_commit_finish returns 0 if committed, or -1 with the error kept.
int db_commit_send(db_t *self);
int db_commit_finish(db_t *self);
// The connection's socket (to wait for an answer with poll), or -1 if not connected.
int db_socket(db_t *self);
// Rolls back; harmless outside a transaction.
void db_rollback(db_t *self);

// SQLSTATE of the last error ("" if none) and its full message (never log this one).
// How many failures this connection has seen (any statement, queued or not, or the link):
// a caller compares two readings to learn whether anything failed in between.
uint64_t db_error_count(db_t *self);
// How many statements that may have written (anything but a plain SELECT) this connection has
// run or queued: compare two readings to learn whether a piece of code wrote anything.
uint64_t db_write_count(db_t *self);
// After a failure: true if the server answered (the connection is up and the failure is not a
// lost link), so a transaction that failed is known to have been rolled back, not committed.
bool db_outcome_known(db_t *self);
const char *db_sqlstate(db_t *self);
const char *db_error(db_t *self);
// True if the last error was a lost connection or another transient condition worth retrying:
// a serialization failure or deadlock, a lock timeout, insufficient resources (too many
// connections, out of memory, disk full), a statement cancelled or timed out, an I/O error, or a
// statement
// whose prepared plan went stale ("cached plan must not change result type": a migration changed
// its result's columns; it is prepared afresh on the next call). Any other 0A000 (feature not
// supported) fails every time and is not transient.
bool db_error_transient(db_t *self);

#endif
