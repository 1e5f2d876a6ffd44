#include "cara/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cara/log.h"
#include "cara/timeutil.h"

// Statements are prepared once per connection and then run with PQexecPrepared: the server
// parses, analyses and plans each distinct SQL text once instead of on every call (the service
// hot paths run the same few statements over and over). Bounded: past DB_STMT_MAX distinct
// texts, statements run unnamed as before.
#define DB_STMT_SLOTS 1024
#define DB_STMT_MAX 512

typedef struct {
    uint64_t hash;
    char *sql;  // NULL = free slot
    int n_params;
} s_stmt_t;

struct db_t {
    PGconn *conn;
    char *conninfo;
    char *schema;
    char sqlstate[6];
    char *error;
    int backoff_ms;
    int64_t next_attempt_ms;
    s_stmt_t *stmts;  // DB_STMT_SLOTS, open addressing; the slot index names the statement
    int n_stmts;
};

static void s_set_error(db_t *self, const char *state, const char *message) {
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
    uint64_t h = 1469598103934665603ULL;  // FNV-1a
    for (const unsigned char *p = (const unsigned char *)sql; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

// The name of sql prepared on this connection, preparing it on first use. Returns 0 with
// name filled, -1 if it should run unnamed (cache full, out of memory), or -2 if the prepare
// failed (*failed holds that result, for the caller to report).
static int s_prepared(db_t *self, const char *sql, int n, char name[24], PGresult **failed) {
    if (!self->stmts && !(self->stmts = calloc(DB_STMT_SLOTS, sizeof *self->stmts)))
        return -1;
    uint64_t h = s_hash(sql);
    size_t i = (size_t)(h % DB_STMT_SLOTS);
    while (self->stmts[i].sql) {
        if (self->stmts[i].hash == h && self->stmts[i].n_params == n &&
            strcmp(self->stmts[i].sql, sql) == 0) {
            snprintf(name, 24, "cara_s%zu", i);
            return 0;
        }
        i = (i + 1) % DB_STMT_SLOTS;
    }
    if (self->n_stmts >= DB_STMT_MAX)
        return -1;
    snprintf(name, 24, "cara_s%zu", i);
    PGresult *r = PQprepare(self->conn, name, sql, n, NULL);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
        *failed = r;
        return -2;
    }
    PQclear(r);
    if (!(self->stmts[i].sql = strdup(sql)))
        return -1;
    self->stmts[i].hash = h;
    self->stmts[i].n_params = n;
    self->n_stmts++;
    return 0;
}

// Forgets sql's prepared statement (its cached plan no longer fits, e.g. after a migration
// changed a table's columns); the next call prepares it again under a new name.
static void s_forget(db_t *self, const char *sql) {
    uint64_t h = s_hash(sql);
    for (size_t i = (size_t)(h % DB_STMT_SLOTS); self->stmts && self->stmts[i].sql;
         i = (i + 1) % DB_STMT_SLOTS)
        if (self->stmts[i].hash == h && strcmp(self->stmts[i].sql, sql) == 0) {
            // Keep the slot occupied (probe chains stay intact) but make it never match.
            self->stmts[i].hash = ~h;
            return;
        }
}

static void s_notice_quiet(void *arg, const PGresult *res) {
    (void)arg;
    (void)res;
}

// Opens a new connection and prepares the session. Returns 0 or -1.
static int s_open(db_t *self) {
    if (self->conn)
        PQfinish(self->conn);
    s_stmts_clear(self);
    self->conn = PQconnectdb(self->conninfo);
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
        PGresult *r = db_query(self, "SELECT pg_catalog.set_config('search_path', $1, false)",
                               1, params);
        if (!r)
            return -1;
        PQclear(r);
    }
    if (db_exec(self, "SET TIME ZONE 'UTC'", 0, NULL) != 0)
        return -1;
    self->backoff_ms = 0;
    return 0;
}

db_t *db_connect(const char *conninfo, const char *schema, int wait_ms) {
    db_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->conninfo = strdup(conninfo ? conninfo : "");
    self->schema = schema ? strdup(schema) : NULL;
    int64_t deadline = time_mono_ms() + wait_ms;
    int backoff = 50;
    while (s_open(self) != 0) {
        if (time_mono_ms() + backoff > deadline) {
            log_error("db_connect_failed", "schema", schema, "sqlstate", self->sqlstate);
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
    free(self->schema);
    free(self->error);
    s_stmts_clear(self);
    free(self->stmts);
    free(self);
    *self_p = NULL;
}

bool db_ok(db_t *self) { return self->conn && PQstatus(self->conn) == CONNECTION_OK; }

PGconn *db_conn(db_t *self) { return self->conn; }

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
                 r ? PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME) : NULL, "schema",
                 self->schema);
    if (r)
        PQclear(r);
    return NULL;
}

PGresult *db_query_bin(db_t *self, const char *sql, int n, const char *const *values,
                       const int *lengths, const int *formats, int result_format) {
    if (!self->conn) {
        s_set_error(self, "08003", "not connected");
        return NULL;
    }
    char name[24];
    PGresult *failed = NULL;
    int prepared = s_prepared(self, sql, n, name, &failed);
    if (prepared == -2)
        return s_check(self, failed);
    if (prepared != 0)
        return s_check(self, PQexecParams(self->conn, sql, n, NULL, values, lengths, formats,
                                          result_format));
    PGresult *r = PQexecPrepared(self->conn, name, n, values, lengths, formats, result_format);
    if (r && PQresultStatus(r) == PGRES_FATAL_ERROR) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (state && strcmp(state, "0A000") == 0)
            s_forget(self, sql);
    }
    return s_check(self, r);
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

int db_exec_script(db_t *self, const char *sql) {
    if (!self->conn) {
        s_set_error(self, "08003", "not connected");
        return -1;
    }
    PGresult *r = s_check(self, PQexec(self->conn, sql));
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

int db_scalar(db_t *self, const char *sql, int n, const char *const *values, char *out,
              int size) {
    PGresult *r = db_query(self, sql, n, values);
    if (!r)
        return -1;
    int found = PQntuples(r) > 0;
    if (out && size > 0)
        snprintf(out, (size_t)size, "%s", found ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return found;
}

int db_begin(db_t *self) { return db_exec(self, "BEGIN", 0, NULL); }

int db_commit(db_t *self) {
    PGresult *r = db_query(self, "COMMIT", 0, NULL);
    if (!r)
        return -1;
    // COMMIT of a transaction that an error aborted "succeeds" as a ROLLBACK: that is a failure.
    int committed = strcmp(PQcmdStatus(r), "COMMIT") == 0;
    PQclear(r);
    if (!committed)
        s_set_error(self, "40000", "the transaction had failed and was rolled back");
    return committed ? 0 : -1;
}

void db_rollback(db_t *self) {
    if (self->conn && PQtransactionStatus(self->conn) != PQTRANS_IDLE) {
        PGresult *r = PQexec(self->conn, "ROLLBACK");
        if (r)
            PQclear(r);
    }
}

const char *db_sqlstate(db_t *self) { return self->sqlstate; }

const char *db_error(db_t *self) { return self->error ? self->error : ""; }

bool db_error_transient(db_t *self) {
    const char *s = self->sqlstate;
    return !db_ok(self) || strncmp(s, "08", 2) == 0 || strncmp(s, "40", 2) == 0 ||
           strncmp(s, "57P", 3) == 0 || strcmp(s, "53300") == 0;
}
