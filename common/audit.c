#include "cara/audit.h"

#include <stdlib.h>

int audit_record(db_t *db, int queued, const char *actor, const char *action, const char *entity,
                 const char *entity_id, json_t *detail) {
    char *text = detail ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    int lost = detail && !text;
    json_decref(detail);
    if (lost)
        return -1;
    const char *values[] = {actor, action, entity, entity_id, text};
    const char *sql = "INSERT INTO audit (actor, action, entity, entity_id, detail)"
                      " VALUES ($1, $2, $3, $4, $5::jsonb)";
    // Nothing reads audit rows back in the transaction: queued ones are held (db_append).
    int rc = queued ? db_append(db, sql, 5, values, NULL, NULL)
                    : db_write(db, 0, sql, 5, values, NULL, NULL);
    free(text);
    return rc;
}
