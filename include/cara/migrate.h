// Schema migrations: numbered SQL files (NNN_name.sql) embedded into each binary at build time
// (tools/embed.c), applied in order, once, inside one transaction, and recorded in the schema's
// own schema_migrations table with a checksum.
#ifndef CARA_MIGRATE_H
#define CARA_MIGRATE_H

typedef struct {
    const char *name;  // file name, e.g. "001_init.sql"; NULL ends a list
    const char *sql;
} migration_t;

struct db_t;

// The migrations every service shares (outbox, cursor, inbox, dead letters, audit).
extern const migration_t core_migrations[];

// Applies the not-yet-applied migrations of a track ("core" or the service name) in order.
// Refuses (-1, reason logged) on a gap in the numbering, a file whose checksum differs from
// the one recorded, or a recorded migration whose file is missing. Running it again is a no-op.
// Returns the number applied (>= 0), or -1.
int migrate_run(struct db_t *db, const char *track, const migration_t *list);
// The highest applied version of a track, or -1 on error.
int migrate_version(struct db_t *db, const char *track);

#endif
