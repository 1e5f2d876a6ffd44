// The audit trail: who did what, when (the `audit` table every service has, core migration).
#ifndef CARA_AUDIT_H
#define CARA_AUDIT_H

#include <jansson.h>

#include "cara/db.h"

// Records that actor ("role:organisation") did action to entity/entity_id, inside the caller's
// transaction: now (queued = 0) or queued in the pipeline (queued = 1, db_send: a failure shows
// at the next read-back). detail may be NULL (stolen otherwise). Returns 0 or -1.
int audit_record(db_t *db, int queued, const char *actor, const char *action, const char *entity,
                 const char *entity_id, json_t *detail);

#endif
