#include "cara/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cara/insert_batch.h"
#include "cara/log.h"
#include "cara/timeutil.h"

// Statements are prepared once per connection and then run with PQexecPrepared: the server
// parses, analyses and plans each distinct SQL text once instead of on every call (the service
// hot paths run the same few statements over and over). Bounded: past DB_STMT_MAX distinct
// texts, statements run unnamed as before.
#define DB_STMT_SLOTS 1024
#define DB_STMT_MAX 512
// Statements queued by db_send before the pipeline is read back without being asked
// (bounds what the server may buffer for a blocking client).
#define DB_PIPELINE_MAX 256
#define S_RUN (-1)

typedef struct {
    uint64_t hash;
    char *sql; // NULL = free slot
    int n_params;
} s_stmt_t;

struct db_t {
    PGconn *conn;
    char *conninfo;
    char *password; // db.password, passed beside conninfo (NULL: none)
    // conninfo itself holds a password (user:pw@ in a URI, password=...): libpq's connection
    // errors are then not logged, as a URI with an unencoded '@' or '/' in its password is read
    // with part of the password as the host, port or database, which libpq quotes.
    bool inline_password;
    char *schema;
    char sqlstate[6];
    char *error;
    // The last error is a statement's plan gone stale (s_plan_stale): it has been forgotten, so
    // running it again prepares it afresh.
    bool stale_plan;
    int backoff_ms;
    int64_t next_attempt_ms;
    s_stmt_t *stmts; // DB_STMT_SLOTS, open addressing; the slot index names the statement
    int n_stmts;
    // Pipeline (db_send): statements sent and not yet read back, in order. kinds[i] is the
    // statement slot being prepared (>= 0) or S_RUN for a statement being run.
    int queued;
    int kinds[DB_PIPELINE_MAX * 2];
    bool pipe_failed; // a send failed: the pipeline's outcome is a failure
    bool synced;      // the sync point has been sent (db_commit_send): only reading is left
    uint64_t errors;  // failures seen since connect (db_error_count)
    uint64_t writes;  // statements run or queued that may have written (db_write_count)
    // Gathering (db_gather): single-row INSERTs queued by db_send kept here and sent as one
    // multi-row INSERT per statement text before anything else is sent or read back.
    bool gathering;
    insert_batch_t *gathered;
    // db_append's rows while gathering: kept past reads, sent behind the gathered rows at the
    // next sync point or COMMIT, or once gathering is off.
    insert_batch_t *held;
    // db_set_timeouts, applied on every (re)connect when set.
    bool timeouts;
    int lock_ms, idle_ms;
    // db_before_send: called once, before the next statement goes to the server.
    void (*before_send)(void *arg);
    void *before_send_arg;
};

void db_before_send(db_t *self, void (*fn)(void *arg), void *arg) {
    self->before_send = fn;
    self->before_send_arg = arg;
}

// Calls (and forgets) the db_before_send function, if any.
static void s_before_send(db_t *self) {
    void (*fn)(void *) = self->before_send;
    self->before_send = NULL;
    if (fn)
        fn(self->before_send_arg);
}

// Counts sql as a possible write unless it is a plain SELECT.
static void s_count_write(db_t *self, const char *sql) {
    if (strncmp(sql, "SELECT ", 7) != 0)
        self->writes++;
}

static void s_set_error(db_t *self, const char *state, const char *message) {
    self->errors++;
    self->stale_plan = false;
    snprintf(self->sqlstate, sizeof self->sqlstate, "%s", state ? state : "");
    free(self->error);
    self->error = strdup(message ? message : "");
}

static void s_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

// Forgets every prepared statement (a new connection has none).
static void s_stmts_clear(db_t *self) {
    for (int i = 0; self->stmts && i < DB_STMT_SLOTS; i++) {
        free(self->stmts[i].sql);
        self->stmts[i].sql = NULL;
    }
    self->n_stmts = 0;
}

static uint64_t s_hash(const char *sql) {
    uint64_t h = 1469598103934665603ULL; // FNV-1a
    for (const unsigned char *p = (const unsigned char *)sql; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

// Finds sql's slot in the statement cache. Returns 1 if it is prepared (*slot names it), 0 if
// it is not and *slot is the free slot to prepare it in, or -1 if it should run unnamed (cache
// full, out of memory).
static int s_lookup(db_t *self, const char *sql, int n, size_t *slot) {
    if (!self->stmts && !(self->stmts = calloc(DB_STMT_SLOTS, sizeof *self->stmts)))
        return -1;
    uint64_t h = s_hash(sql);
    size_t i = (size_t)(h % DB_STMT_SLOTS);
    while (self->stmts[i].sql) {
        if (self->stmts[i].hash == h && self->stmts[i].n_params == n &&
            strcmp(self->stmts[i].sql, sql) == 0) {
            *slot = i;
            return 1;
        }
        i = (i + 1) % DB_STMT_SLOTS;
    }
    if (self->n_stmts >= DB_STMT_MAX)
        return -1;
    *slot = i;
    return 0;
}

// Records sql as prepared in slot. Returns 0 or -1 (out of memory).
static int s_remember(db_t *self, size_t slot, const char *sql, int n) {
    if (!(self->stmts[slot].sql = strdup(sql)))
        return -1;
    self->stmts[slot].hash = s_hash(sql);
    self->stmts[slot].n_params = n;
    self->n_stmts++;
    return 0;
}

// The name of sql prepared on this connection, preparing it on first use. Returns 0 with
// name and *slot filled, -1 if it should run unnamed (cache full, out of memory), or -2 if the
// prepare failed (*failed holds that result, for the caller to report).
static int s_prepared(db_t *self, const char *sql, int n, char name[24], size_t *slot,
                      PGresult **failed) {
    int found = s_lookup(self, sql, n, slot);
    if (found < 0)
        return -1;
    snprintf(name, 24, "cara_s%zu", *slot);
    if (found)
        return 0;
    PGresult *r = PQprepare(self->conn, name, sql, n, NULL);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
        *failed = r;
        return -2;
    }
    PQclear(r);
    return s_remember(self, *slot, sql, n);
}

// True if r is the server's "cached plan must not change result type" (0A000): a statement
// prepared on this connection whose result's columns a migration has changed since. Told apart
// from every other 0A000 ("feature not supported", which fails every time) by the function that
// raised it, a name the server never translates.
static bool s_plan_stale(const PGresult *r) {
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *where = PQresultErrorField(r, PG_DIAG_SOURCE_FUNCTION);
    return state && strcmp(state, "0A000") == 0 && where &&
           strcmp(where, "RevalidateCachedQuery") == 0;
}

// Forgets the statement in slot, whose plan went stale: the next call prepares it again under a
// new name. The slot stays occupied (probe chains stay intact) but never matches.
static void s_forget(db_t *self, size_t slot) {
    self->stmts[slot].hash = ~self->stmts[slot].hash;
}

static void s_notice_quiet(void *arg, const PGresult *res) {
    (void)arg;
    (void)res;
}

static int s_apply_timeouts(db_t *self) {
    char lock[24], idle[24];
    snprintf(lock, sizeof lock, "%dms", self->lock_ms);
    snprintf(idle, sizeof idle, "%dms", self->idle_ms);
    const char *values[] = {lock, idle};
    PGresult *r = db_query(self,
                           "SELECT pg_catalog.set_config('lock_timeout', $1, false),"
                           " pg_catalog.set_config('idle_in_transaction_session_timeout', $2,"
                           " false)",
                           2, values);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

int db_set_timeouts(db_t *self, int lock_ms, int idle_ms) {
    self->timeouts = true;
    self->lock_ms = lock_ms > 0 ? lock_ms : 0;
    self->idle_ms = idle_ms > 0 ? idle_ms : 0;
    return self->conn ? s_apply_timeouts(self) : -1;
}

// Opens a new connection and prepares the session. Returns 0 or -1.
static int s_open(db_t *self) {
    if (self->conn)
        PQfinish(self->conn);
    s_stmts_clear(self);
    self->queued = 0;
    self->pipe_failed = false;
    self->synced = false;
    if (self->gathered)
        insert_batch_clear(self->gathered);
    if (self->held)
        insert_batch_clear(self->held);
    // conninfo as dbname with expand_dbname: key=value pairs or a postgresql:// URI alike; the
    // password keyword comes after it, so it is never spliced into either form, and wins.
    const char *keywords[] = {"dbname", self->password ? "password" : NULL, NULL};
    const char *values[] = {self->conninfo, self->password, NULL};
    self->conn = PQconnectdbParams(keywords, values, 1);
    if (!self->conn || PQstatus(self->conn) != CONNECTION_OK) {
        s_set_error(self, "08006", self->conn ? PQerrorMessage(self->conn) : "out of memory");
        if (self->conn)
            PQfinish(self->conn);
        self->conn = NULL;
        return -1;
    }
    PQsetNoticeReceiver(self->conn, s_notice_quiet, NULL);
    if (self->schema) {
        const char *params[] = {self->schema};
        PGresult *r =
            db_query(self, "SELECT pg_catalog.set_config('search_path', $1, false)", 1, params);
        if (!r)
            return -1;
        PQclear(r);
    }
    if (db_exec(self, "SET TIME ZONE 'UTC'", 0, NULL) != 0 ||
        (self->timeouts && s_apply_timeouts(self) != 0))
        return -1;
    self->backoff_ms = 0;
    return 0;
}

// The first line of the last error, for a connection failure: libpq's own message (which host,
// which user or database, refused, authentication failed, ...). It names servers, roles and
// databases, never a password, and no referral data can be in it. Writes into buf; returns it.
// After a failed set-up statement on a connection that was made, only the SQLSTATE is logged.
static const char *s_connect_reason(db_t *self, char *buf, size_t size) {
    if (self->inline_password && !self->conn)
        snprintf(buf, size,
                 "could not connect (libpq's message is not logged: db.conninfo holds a password,"
                 " which it may quote; give the password in db.password instead)");
    else if (self->conn)
        snprintf(buf, size, "connected, but setting up the session failed (see sqlstate)");
    else
        snprintf(buf, size, "%s", self->error && *self->error ? self->error : "unknown");
    buf[strcspn(buf, "\r\n")] = '\0';
    return buf;
}

// Whether conninfo parses as key=value pairs or a URI (a plain word is a database name), and
// whether it holds a password (*has_password). Its parse error is not logged: it may quote the
// string, and the string may hold a password.
static bool s_conninfo_parses(const char *conninfo, bool *has_password) {
    *has_password = false;
    if (!strchr(conninfo, '=') && strncmp(conninfo, "postgresql://", 13) != 0 &&
        strncmp(conninfo, "postgres://", 11) != 0)
        return true;
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
    PQfreemem(err);
    if (!opts)
        return false;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val && *o->val)
            *has_password = true;
    PQconninfoFree(opts);
    return true;
}

db_t *db_connect(const char *conninfo, const char *schema, int wait_ms) {
    return db_connect_password(conninfo, NULL, schema, wait_ms);
}

db_t *db_connect_password(const char *conninfo, const char *password, const char *schema,
                          int wait_ms) {
    bool inline_password;
    if (!s_conninfo_parses(conninfo ? conninfo : "", &inline_password)) {
        log_error("db_connect_failed", "schema", schema, "reason",
                  "db.conninfo is neither key=value pairs nor a postgresql:// URI (libpq's"
                  " message is not logged: it may quote the string); try it with psql");
        return NULL;
    }
    db_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->conninfo = strdup(conninfo ? conninfo : "");
    self->password = password ? strdup(password) : NULL;
    self->schema = schema ? strdup(schema) : NULL;
    self->inline_password = inline_password;
    if (!self->conninfo || (password && !self->password) || (schema && !self->schema)) {
        log_error("db_connect_failed", "schema", schema, "reason", "out of memory");
        db_destroy(&self);
        return NULL;
    }
    int64_t deadline = time_mono_ms() + wait_ms;
    int backoff = 50;
    while (s_open(self) != 0) {
        if (time_mono_ms() + backoff > deadline) {
            char reason[512];
            log_error("db_connect_failed", "schema", schema, "sqlstate", self->sqlstate, "reason",
                      s_connect_reason(self, reason, sizeof reason));
            db_destroy(&self);
            return NULL;
        }
        s_sleep_ms(backoff);
        backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
    }
    return self;
}

void db_destroy(db_t **self_p) {
    if (!self_p || !*self_p)
        return;
    db_t *self = *self_p;
    if (self->conn)
        PQfinish(self->conn);
    free(self->conninfo);
    if (self->password) {
        explicit_bzero(self->password, strlen(self->password));
        free(self->password);
    }
    free(self->schema);
    free(self->error);
    s_stmts_clear(self);
    free(self->stmts);
    insert_batch_destroy(&self->gathered);
    insert_batch_destroy(&self->held);
    free(self);
    *self_p = NULL;
}

bool db_ok(db_t *self) {
    return self->conn && PQstatus(self->conn) == CONNECTION_OK;
}

PGconn *db_conn(db_t *self) {
    return self->conn;
}

int db_ensure(db_t *self) {
    if (db_ok(self))
        return 0;
    int64_t now = time_mono_ms();
    if (now < self->next_attempt_ms)
        return -1;
    if (s_open(self) == 0) {
        log_info("db_reconnected", "schema", self->schema);
        return 0;
    }
    char reason[512];
    log_warn("db_reconnect_failed", "schema", self->schema, "sqlstate", self->sqlstate, "reason",
             s_connect_reason(self, reason, sizeof reason));
    self->backoff_ms = self->backoff_ms ? self->backoff_ms * 2 : 100;
    if (self->backoff_ms > 5000)
        self->backoff_ms = 5000;
    self->next_attempt_ms = now + self->backoff_ms;
    return -1;
}

static PGresult *s_check(db_t *self, PGresult *r) {
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        self->sqlstate[0] = '\0';
        return r;
    }
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (!state)
        state = (self->conn && PQstatus(self->conn) == CONNECTION_OK) ? "XX000" : "08006";
    s_set_error(self, state, r ? PQresultErrorMessage(r) : PQerrorMessage(self->conn));
    // Serialization failures, deadlocks and unique races are the caller's to handle quietly.
    if (strcmp(state, "23505") != 0 && strcmp(state, "40001") != 0 && strcmp(state, "40P01") != 0)
        log_warn("db_error", "sqlstate", state, "constraint",
                 r ? PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME) : NULL, "schema", self->schema);
    if (r)
        PQclear(r);
    return NULL;
}

// --- pipeline (db_send) ----------------------------------------------------------------------
// A statement's kind in the queue: preparing slot k is k; running slot k is -(k + 2); running
// unnamed is S_RUN.

static int s_pipe_finish(db_t *self, PGresult **last);

// Sends sql in pipeline mode (preparing it first, in the same pipeline, if it is new) without
// reading anything back. A full pipeline (the server buffers at most DB_PIPELINE_MAX statements
// for us; kinds[] holds a prepare and a run for each) is read back first, here where kinds[] is
// written, so no caller can forget to make room. Returns 0, or -1 with the error kept (and the
// pipeline marked failed, or, if reading back a full one failed, finished).
static int s_pipe_send(db_t *self, const char *sql, int n, const char *const *values,
                       const int *lengths, const int *formats, int result_format, int prepare) {
    s_before_send(self);
    if (self->queued + 2 > DB_PIPELINE_MAX * 2 && s_pipe_finish(self, NULL) != 0)
        return -1;
    if (!self->conn) {
        s_set_error(self, "08003", "not connected");
        self->pipe_failed = true;
        return -1;
    }
    if (PQpipelineStatus(self->conn) == PQ_PIPELINE_OFF && PQenterPipelineMode(self->conn) != 1) {
        s_set_error(self, "08006", PQerrorMessage(self->conn));
        self->pipe_failed = true;
        return -1;
    }
    size_t slot;
    int found = prepare ? s_lookup(self, sql, n, &slot) : -1;
    char name[24];
    snprintf(name, sizeof name, "cara_s%zu", found >= 0 ? slot : (size_t)0);
    int sent;
    if (found == 0) {
        // Remembered now; forgotten again when the prepare's result turns out to be a failure.
        if (s_remember(self, slot, sql, n) != 0 ||
            PQsendPrepare(self->conn, name, sql, n, NULL) != 1) {
            s_set_error(self, "08006", PQerrorMessage(self->conn));
            self->pipe_failed = true;
            return -1;
        }
        self->kinds[self->queued++] = (int)slot;
    }
    if (found >= 0)
        sent = PQsendQueryPrepared(self->conn, name, n, values, lengths, formats, result_format);
    else
        sent = PQsendQueryParams(self->conn, sql, n, NULL, values, lengths, formats, result_format);
    if (sent != 1) {
        s_set_error(self, "08006", PQerrorMessage(self->conn));
        self->pipe_failed = true;
        return -1;
    }
    self->kinds[self->queued++] = found >= 0 ? -((int)slot + 2) : S_RUN;
    return 0;
}

// Reads back every queued statement and the sync point, and leaves pipeline mode. If last is
// given it receives the last statement's result when everything succeeded (caller PQclears).
// Returns 0 if every statement succeeded, or -1 with the first error kept.
static int s_pipe_finish(db_t *self, PGresult **last) {
    if (last)
        *last = NULL;
    int rc = self->pipe_failed ? -1 : 0;
    int queued = self->queued;
    self->queued = 0;
    self->pipe_failed = false;
    bool synced = self->synced;
    self->synced = false;
    if (!self->conn || PQpipelineStatus(self->conn) == PQ_PIPELINE_OFF)
        return queued || rc ? -1 : 0;
    if (!synced && PQpipelineSync(self->conn) != 1) {
        s_set_error(self, "08006", PQerrorMessage(self->conn));
        rc = -1;
    }
    for (int i = 0; i < queued; i++) {
        PGresult *kept = NULL, *r;
        while ((r = PQgetResult(self->conn))) {
            PQclear(kept);
            kept = r;
        }
        ExecStatusType st = kept ? PQresultStatus(kept) : PGRES_FATAL_ERROR;
        int kind = self->kinds[i];
        int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
        if (kind >= 0 && !ok && self->stmts[kind].sql) {
            free(self->stmts[kind].sql); // the prepare failed: prepare again next time
            self->stmts[kind].sql = NULL;
            self->n_stmts--;
        }
        if (ok) {
            if (last && i == queued - 1 && rc == 0)
                *last = kept;
            else
                PQclear(kept);
            continue;
        }
        bool stale = kind < S_RUN && st == PGRES_FATAL_ERROR && s_plan_stale(kept);
        if (stale)
            s_forget(self, (size_t)(-kind - 2));
        if (rc == 0 && st != PGRES_PIPELINE_ABORTED) {
            s_check(self, kept); // keeps (and logs) the first error; clears kept
            kept = NULL;
            self->stale_plan = stale;
        } else if (rc == 0) {
            s_set_error(self, "XX000", "statement skipped in a failed pipeline");
        }
        PQclear(kept);
        rc = -1;
    }
    PGresult *r = PQgetResult(self->conn); // the sync point
    if (!r || PQresultStatus(r) != PGRES_PIPELINE_SYNC) {
        if (rc == 0)
            s_set_error(self, "08006", PQerrorMessage(self->conn));
        rc = -1;
    }
    PQclear(r);
    if (PQexitPipelineMode(self->conn) != 1) {
        while ((r = PQgetResult(self->conn)))
            PQclear(r);
        if (PQexitPipelineMode(self->conn) != 1 && PQstatus(self->conn) == CONNECTION_OK) {
            // Cannot get back to a usable state: drop the connection (db_ensure reopens it).
            PQfinish(self->conn);
            self->conn = NULL;
            s_stmts_clear(self);
        }
        if (rc == 0)
            s_set_error(self, "08006", "pipeline could not be closed");
        rc = -1;
    }
    if (rc == 0)
        self->sqlstate[0] = '\0';
    return rc;
}

// Gathering ran out of memory: the pipeline's outcome is a failure. Returns -1.
static int s_gather_failed(db_t *self) {
    s_set_error(self, "53200", "out of memory gathering rows");
    self->pipe_failed = true;
    return -1;
}

// Sends the rows kept in rows: multi-row INSERTs per statement text, in chunks (prepared: a
// text has only a few chunk sizes, insert_batch.c). Returns 0, or -1 with the pipeline
// marked failed.
static int s_send_rows(db_t *self, insert_batch_t *rows) {
    int count = rows ? insert_batch_count(rows) : 0;
    int rc = 0;
    for (int i = 0; i < count && rc == 0; i++) {
        char *sql = NULL;
        int n;
        const char *const *values;
        const int *lengths, *formats;
        if (insert_batch_statement(rows, i, &sql, &n, &values, &lengths, &formats) != 0)
            rc = s_gather_failed(self);
        else
            rc = s_pipe_send(self, sql, n, values, lengths, formats, 0, 1);
        free(sql);
    }
    if (rows)
        insert_batch_clear(rows);
    return rc;
}

// Sends what has been gathered, and the held rows behind it (all, or only once gathering is
// off). Returns 0, or -1 with the pipeline marked failed.
static int s_flush_rows(db_t *self, bool all) {
    if (s_send_rows(self, self->gathered) != 0)
        return -1;
    return all || !self->gathering ? s_send_rows(self, self->held) : 0;
}

// Before a statement is sent or read back: what it may depend on goes first.
static int s_flush(db_t *self) {
    return s_flush_rows(self, false);
}

void db_gather(db_t *self, bool on) {
    if (on && !self->gathered)
        self->gathered = insert_batch_new();
    self->gathering = on && self->gathered;
}

// Keeps a row of sql in rows (gathered or held); if they are full, the rows kept so far are
// sent first (the gathered ones, and the held ones too if all). Returns 0 if kept, 1 if sql
// cannot be kept (the caller sends it), or -1.
static int s_keep(db_t *self, insert_batch_t *rows, bool all, const char *sql, int n,
                  const char *const *values, const int *lengths, const int *formats) {
    int kept = insert_batch_add(rows, sql, n, values, lengths, formats);
    if (kept == 1 && insert_batch_accepts(sql, n)) {
        if (s_flush_rows(self, all) != 0)
            return -1;
        kept = insert_batch_add(rows, sql, n, values, lengths, formats);
    }
    return kept < 0 ? s_gather_failed(self) : kept;
}

int db_send(db_t *self, const char *sql, int n, const char *const *values, const int *lengths,
            const int *formats) {
    s_count_write(self, sql);
    if (self->gathering) {
        int kept = s_keep(self, self->gathered, false, sql, n, values, lengths, formats);
        if (kept <= 0)
            return kept;
    }
    if (s_flush(self) != 0)
        return -1;
    return s_pipe_send(self, sql, n, values, lengths, formats, 0, 1);
}

int db_append(db_t *self, const char *sql, int n, const char *const *values, const int *lengths,
              const int *formats) {
    if (!self->gathering)
        return db_send(self, sql, n, values, lengths, formats);
    if (!self->held && !(self->held = insert_batch_new()))
        return s_gather_failed(self);
    s_count_write(self, sql);
    int kept = s_keep(self, self->held, true, sql, n, values, lengths, formats);
    if (kept <= 0)
        return kept;
    // Not a single-row INSERT: it goes now, behind the rows held before it.
    if (s_flush_rows(self, true) != 0)
        return -1;
    return s_pipe_send(self, sql, n, values, lengths, formats, 0, 1);
}

int db_append_flush(db_t *self) {
    return s_flush_rows(self, true);
}

int db_sync(db_t *self) {
    if (s_flush_rows(self, true) != 0) {
        s_pipe_finish(self, NULL);
        return -1;
    }
    if (!self->queued && !self->pipe_failed)
        return 0;
    return s_pipe_finish(self, NULL);
}

int db_queued(db_t *self) {
    return self->queued;
}

PGresult *db_query_bin(db_t *self, const char *sql, int n, const char *const *values,
                       const int *lengths, const int *formats, int result_format) {
    s_count_write(self, sql);
    if (s_flush(self) != 0) {
        s_pipe_finish(self, NULL);
        return NULL;
    }
    if (self->queued || self->pipe_failed) {
        // One round trip: the queued statements, this one and the sync point.
        PGresult *r = NULL;
        if (s_pipe_send(self, sql, n, values, lengths, formats, result_format, 1) != 0) {
            s_pipe_finish(self, NULL);
            return NULL;
        }
        return s_pipe_finish(self, &r) == 0 ? r : NULL;
    }
    if (!self->conn) {
        s_set_error(self, "08003", "not connected");
        return NULL;
    }
    s_before_send(self);
    char name[24];
    size_t slot;
    PGresult *failed = NULL;
    int prepared = s_prepared(self, sql, n, name, &slot, &failed);
    if (prepared == -2)
        return s_check(self, failed);
    if (prepared != 0)
        return s_check(
            self, PQexecParams(self->conn, sql, n, NULL, values, lengths, formats, result_format));
    PGresult *r = PQexecPrepared(self->conn, name, n, values, lengths, formats, result_format);
    bool stale = r && PQresultStatus(r) == PGRES_FATAL_ERROR && s_plan_stale(r);
    if (stale)
        s_forget(self, slot);
    r = s_check(self, r);
    self->stale_plan = stale;
    return r;
}

PGresult *db_query(db_t *self, const char *sql, int n, const char *const *values) {
    return db_query_bin(self, sql, n, values, NULL, NULL, 0);
}

int db_exec(db_t *self, const char *sql, int n, const char *const *values) {
    PGresult *r = db_query(self, sql, n, values);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

int db_write(db_t *self, int queued, const char *sql, int n, const char *const *values,
             const int *lengths, const int *formats) {
    if (queued)
        return db_send(self, sql, n, values, lengths, formats);
    PGresult *r = db_query_bin(self, sql, n, values, lengths, formats, 0);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

int db_exec_script(db_t *self, const char *sql) {
    if (db_sync(self) != 0)
        return -1;
    if (!self->conn) {
        s_set_error(self, "08003", "not connected");
        return -1;
    }
    s_count_write(self, sql);
    s_before_send(self);
    PGresult *r = s_check(self, PQexec(self->conn, sql));
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

int db_scalar(db_t *self, const char *sql, int n, const char *const *values, char *out, int size) {
    PGresult *r = db_query(self, sql, n, values);
    if (!r)
        return -1;
    int found = PQntuples(r) > 0;
    if (out && size > 0)
        snprintf(out, (size_t)size, "%s", found ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return found;
}

int db_begin(db_t *self) {
    return db_exec(self, "BEGIN", 0, NULL);
}

int db_commit_send(db_t *self) {
    if (s_flush_rows(self, true) != 0 ||
        s_pipe_send(self, "COMMIT", 0, NULL, NULL, NULL, 0, 1) != 0)
        return -1;
    if (PQpipelineSync(self->conn) != 1) {
        s_set_error(self, "08006", PQerrorMessage(self->conn));
        self->pipe_failed = true;
        return -1;
    }
    self->synced = true;
    return 0;
}

int db_commit_finish(db_t *self) {
    PGresult *r = NULL;
    if (s_pipe_finish(self, &r) != 0)
        return -1;
    // COMMIT of a transaction that an error aborted "succeeds" as a ROLLBACK: that is a failure.
    int committed = r && strcmp(PQcmdStatus(r), "COMMIT") == 0;
    PQclear(r);
    if (!committed)
        s_set_error(self, "40000", "the transaction had failed and was rolled back");
    return committed ? 0 : -1;
}

int db_commit(db_t *self) {
    db_commit_send(self); // a failure to send shows when it is read back
    return db_commit_finish(self);
}

int db_socket(db_t *self) {
    return self->conn ? PQsocket(self->conn) : -1;
}

void db_rollback(db_t *self) {
    if (self->gathered)
        insert_batch_clear(self->gathered); // never sent: nothing to roll back
    if (self->held)
        insert_batch_clear(self->held);
    db_sync(self); // whatever was queued is rolled back with the rest
    if (self->conn && PQtransactionStatus(self->conn) != PQTRANS_IDLE) {
        PGresult *r = PQexec(self->conn, "ROLLBACK");
        if (r)
            PQclear(r);
    }
}

uint64_t db_error_count(db_t *self) {
    return self->errors;
}

uint64_t db_write_count(db_t *self) {
    return self->writes;
}

bool db_outcome_known(db_t *self) {
    return db_ok(self) && strncmp(self->sqlstate, "08", 2) != 0;
}

const char *db_sqlstate(db_t *self) {
    return self->sqlstate;
}

const char *db_error(db_t *self) {
    return self->error ? self->error : "";
}

bool db_error_transient(db_t *self) {
    const char *s = self->sqlstate;
    // 53: insufficient resources (too many connections, out of memory, disk full); 57: operator
    // intervention (a statement cancelled or timed out, a shutdown); 58: system errors (I/O).
    return !db_ok(self) || (self->stale_plan && strcmp(s, "0A000") == 0) ||
           strncmp(s, "08", 2) == 0 || strncmp(s, "40", 2) == 0 || strncmp(s, "53", 2) == 0 ||
           strncmp(s, "57", 2) == 0 || strncmp(s, "58", 2) == 0 ||
           strcmp(s, "55P03") == 0; // lock_not_available: lock_timeout (db_set_timeouts)
}
