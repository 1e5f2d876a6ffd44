#include "cara/migrate.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cara/db.h"
#include "cara/log.h"

static int s_version_of(const char *name) {
    int v = 0, digits = 0;
    for (const char *p = name; *p >= '0' && *p <= '9'; p++, digits++)
        v = v * 10 + (*p - '0');
    return (digits == 3 && name[3] == '_') ? v : -1;
}

static void s_checksum(const char *sql, char hex[65]) {
    unsigned char hash[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(hash, (const unsigned char *)sql, strlen(sql));
    sodium_bin2hex(hex, 65, hash, sizeof hash);
}

int migrate_version(db_t *db, const char *track) {
    char out[16];
    const char *params[] = {track};
    if (db_scalar(db, "SELECT coalesce(max(version), 0) FROM schema_migrations WHERE track = $1",
                  1, params, out, sizeof out) != 1)
        return -1;
    return atoi(out);
}

int migrate_run(db_t *db, const char *track, const migration_t *list) {
    int applied = 0, count = 0;
    PGresult *done = NULL;
    if (db_begin(db) != 0)
        return -1;
    // One migrator at a time per schema, even with several replicas starting together.
    if (db_exec(db, "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.migrate'))", 0,
                NULL) != 0 ||
        db_exec(db,
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " track text NOT NULL, version int NOT NULL, name text NOT NULL,"
                " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),"
                " PRIMARY KEY (track, version))",
                0, NULL) != 0)
        goto failed;
    const char *tparams[] = {track};
    done = db_query(db,
                    "SELECT version, name, checksum FROM schema_migrations WHERE track = $1"
                    " ORDER BY version",
                    1, tparams);
    if (!done)
        goto failed;
    while (list[count].name)
        count++;
    for (int i = 0; i < count; i++) {
        if (s_version_of(list[i].name) != i + 1) {
            log_error("migrate_refused", "track", track, "file", list[i].name, "reason",
                      "migrations must be numbered 001, 002, ... without gaps");
            goto failed;
        }
    }
    int rows = PQntuples(done);
    for (int i = 0; i < rows; i++) {
        int version = atoi(PQgetvalue(done, i, 0));
        if (version != i + 1 || version > count) {
            log_error("migrate_refused", "track", track, "file", PQgetvalue(done, i, 1), "reason",
                      "recorded migration has no file (or the record has a gap)");
            goto failed;
        }
        char hex[65];
        s_checksum(list[i].sql, hex);
        if (strcmp(hex, PQgetvalue(done, i, 2)) != 0) {
            log_error("migrate_refused", "track", track, "file", list[i].name, "reason",
                      "migration was edited after it was applied (checksum differs)");
            goto failed;
        }
    }
    for (int i = rows; i < count; i++) {
        char hex[65], version[16];
        s_checksum(list[i].sql, hex);
        snprintf(version, sizeof version, "%d", i + 1);
        if (db_exec_script(db, list[i].sql) != 0) {
            log_error("migrate_failed", "track", track, "file", list[i].name, "sqlstate",
                      db_sqlstate(db));
            goto failed;
        }
        const char *params[] = {track, version, list[i].name, hex};
        if (db_exec(db,
                    "INSERT INTO schema_migrations (track, version, name, checksum)"
                    " VALUES ($1, $2, $3, $4)",
                    4, params) != 0)
            goto failed;
        log_info("migration_applied", "track", track, "file", list[i].name);
        applied++;
    }
    PQclear(done);
    if (db_commit(db) != 0)
        return -1;
    return applied;
failed:
    if (done)
        PQclear(done);
    db_rollback(db);
    return -1;
}
