// Test consumer for the delivery tests: a service (in the triage slot) that consumes the intake
// slot's stream and records one row per event it applies, with no uniqueness constraint, so a
// duplicate effect would show as a second row. With chain.hold it holds each effect back until
// the consumer's flush (as a consumer that merges writes does).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cara/service.h"

// applied_at is the time of the write, not of the transaction's start: with lanes, the next
// batch's transaction may start (BEGIN and the inbox INSERT reach the server together) before
// the batch in flight's did, though its writes always come after that batch committed.
static const migration_t s_migrations[] = {
    {"001_chain.sql",
     "CREATE TABLE chain_effect (n bigint NOT NULL, seq bigint NOT NULL,"
     " event_id uuid NOT NULL, applied_at timestamptz NOT NULL DEFAULT clock_timestamp());"},
    {NULL, NULL}};

// The effects held back until the flush (chain.hold).
typedef struct {
    char (*rows)[3][40];
    int n, cap;
} s_held_t;

// chain.read_back: each effect's INSERT returns its row's number, and every fifth event's also
// reads its row back. Two statements with a result, both queued, so the batch's read-back meets
// the first one's failure and never runs the second: when a migration changes that column's
// type, both prepared plans go stale, and a pass that met the first still has the second to meet.
static apply_result_t s_write(db_t *db, bool read_back, const char *const values[3]) {
    // Queued (pipelined): the consumer reads every effect of the batch back in one round trip.
    const char *sql = read_back ? "INSERT INTO chain_effect (n, seq, event_id) VALUES ($1, $2, $3)"
                                  " RETURNING n"
                                : "INSERT INTO chain_effect (n, seq, event_id) VALUES ($1, $2, $3)";
    if (db_send(db, sql, 3, values, NULL, NULL) != 0)
        return APPLY_RETRY;
    if (read_back && strtoll(values[0], NULL, 10) % 5 == 0 &&
        db_send(db, "SELECT n FROM chain_effect WHERE n = $1", 1, values, NULL, NULL) != 0)
        return APPLY_RETRY;
    return APPLY_OK;
}

static bool s_read_back(void *svc) {
    return config_int(service_config(svc), "chain.read_back", 0) != 0;
}

static apply_result_t s_hold(s_held_t *held, const char *const values[3]) {
    if (held->n == held->cap) {
        int cap = held->cap ? held->cap * 2 : 64;
        void *rows = realloc(held->rows, (size_t)cap * sizeof *held->rows);
        if (!rows)
            return APPLY_RETRY;
        held->rows = rows;
        held->cap = cap;
    }
    for (int i = 0; i < 3; i++)
        snprintf(held->rows[held->n][i], sizeof held->rows[0][0], "%s", values[i]);
    held->n++;
    return APPLY_OK;
}

static apply_result_t s_flush(db_t *db, void *arg, bool write) {
    s_held_t *held = service_state(arg);
    apply_result_t rc = APPLY_OK;
    for (int i = 0; held && write && rc == APPLY_OK && i < held->n; i++) {
        const char *values[] = {held->rows[i][0], held->rows[i][1], held->rows[i][2]};
        rc = s_write(db, s_read_back(arg), values);
    }
    if (held)
        held->n = 0;
    return rc;
}

static int s_init(service_t *svc) {
    if (!config_int(service_config(svc), "chain.hold", 0))
        return 0;
    s_held_t *held = calloc(1, sizeof *held);
    if (!held)
        return -1;
    service_set_state(svc, held);
    return 0;
}

static void s_fini(service_t *svc) {
    s_held_t *held = service_state(svc);
    if (held)
        free(held->rows);
    free(held);
    service_set_state(svc, NULL);
}

static apply_result_t s_apply(db_t *db, const Cara__Envelope *env, uint64_t seq, void *arg,
                              char *reason, size_t reason_size) {
    // chain.apply_delay_ms: a slow consumer, for tests of how far behind it is.
    int64_t delay_ms = config_int(service_config(arg), "chain.apply_delay_ms", 0);
    if (delay_ms > 0)
        usleep((useconds_t)delay_ms * 1000);
    Cara__Fetch *msg = (Cara__Fetch *)envelope_payload(env, &cara__fetch__descriptor);
    if (!msg) {
        snprintf(reason, reason_size, "not a numbered chain event");
        return APPLY_POISON;
    }
    char n[24], s[24];
    snprintf(n, sizeof n, "%llu", (unsigned long long)msg->after);
    // The number one below the largest: the apply reads it at once (not queued), the read
    // fails (beyond bigint), and the apply answers "retry", as an apply that does not look at
    // why a statement failed does.
    if (msg->after == UINT64_MAX - 1) {
        cara__fetch__free_unpacked(msg, NULL);
        const char *v[] = {n};
        PGresult *r = db_query(db, "SELECT $1::bigint", 1, v);
        if (!r)
            return APPLY_RETRY;
        PQclear(r);
        return APPLY_OK;
    }
    snprintf(s, sizeof s, "%llu", (unsigned long long)seq);
    cara__fetch__free_unpacked(msg, NULL);
    const char *values[] = {n, s, env->event_id};
    s_held_t *held = service_state(arg);
    return held ? s_hold(held, values) : s_write(db, s_read_back(arg), values);
}

static const service_upstream_t s_upstreams[] = {{"intake", s_apply, s_flush}, {NULL, NULL, NULL}};

static const service_spec_t s_spec = {
    .name = "triage",
    .migrations = s_migrations,
    .upstreams = s_upstreams,
    .init = s_init,
    .fini = s_fini,
    .consumer_lanes = true, // writes through the db it is given only (db.overlap_commits)
};

int main(int argc, char **argv) {
    return service_main(argc, argv, &s_spec);
}
