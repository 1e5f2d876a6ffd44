// Test producer for the delivery tests: a service (in the intake slot) that appends
// `chain.total` numbered events to its stream, `chain.per_tx` per transaction, `chain.per_tick`
// per second, and serves them with the real stream server.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "cara/log.h"
#include "cara/service.h"
#include "cara/stream.h"

static const migration_t s_migrations[] = {
    {"001_chain.sql", "CREATE TABLE chain_progress (id int PRIMARY KEY, produced bigint NOT NULL);"
                      "INSERT INTO chain_progress VALUES (1, 0);"},
    {NULL, NULL}};

static void s_tick(service_t *svc) {
    db_t *db = service_db(svc);
    config_t *cfg = service_config(svc);
    int64_t total = config_int(cfg, "chain.total", 1000);
    int64_t per_tx = config_int(cfg, "chain.per_tx", 50);
    int64_t per_tick = config_int(cfg, "chain.per_tick", 2000);
    char out[24];
    if (db_scalar(db, "SELECT produced FROM chain_progress WHERE id = 1", 0, NULL, out,
                  sizeof out) != 1)
        return;
    int64_t produced = strtoll(out, NULL, 10);
    int64_t goal = produced + per_tick < total ? produced + per_tick : total;
    while (produced < goal) {
        if (db_begin(db) != 0)
            return;
        int64_t n;
        for (n = produced + 1; n <= goal && n <= produced + per_tx; n++) {
            Cara__Fetch msg = CARA__FETCH__INIT;  // any message will do as a numbered payload
            msg.stream = "chain";
            msg.after = (uint64_t)n;
            char key[24];
            snprintf(key, sizeof key, "%" PRId64, n);
            if (outbox_append(db, &msg.base, key, NULL, NULL, NULL) < 0)
                goto failed;
        }
        snprintf(out, sizeof out, "%" PRId64, n - 1);
        const char *values[] = {out};
        if (db_exec(db, "UPDATE chain_progress SET produced = $1 WHERE id = 1", 1, values) != 0 ||
            db_commit(db) != 0)
            goto failed;
        produced = n - 1;
    }
    return;
failed:
    db_rollback(db);
}

static const service_spec_t s_spec = {
    .name = "intake",
    .migrations = s_migrations,
    .tick = s_tick,
};

int main(int argc, char **argv) { return service_main(argc, argv, &s_spec); }
