// A service's stream: the transactional outbox (append inside the caller's transaction) and
// the server side of Fetch and Head. Rows become visible in seq order (see common/sql/001):
// a reader that asks for "after N" never misses a row that commits late.
#ifndef CARA_STREAM_H
#define CARA_STREAM_H
#include <stdint.h>

#include "cara/db.h"
#include "cara/envelope.h"
#include "cara/uuid.h"

// Appends one event inside the caller's open transaction: payload is wrapped in an envelope
// (fresh event id, copied to event_id_out if given). key is the entity id, scope the audience
// (force or provider) that external subscribers are filtered on; both may be NULL.
// Returns the event's seq, or -1 with the error kept in db.
int64_t outbox_append(db_t *db, const ProtobufCMessage *payload, const char *key,
                      const char *scope, const char *correlation_id, char *event_id_out);
// As outbox_append, queued in the connection's pipeline (db_send): no seq comes back, and a
// failure shows at the next read-back (db_sync, db_query, db_commit). Returns 0 or -1.
int outbox_send(db_t *db, const ProtobufCMessage *payload, const char *key, const char *scope,
                const char *correlation_id, char *event_id_out);

// Reads up to max events after `after`, only those with the given scope if scope is non-NULL.
// Fills batch->events (owned by the batch: free with stream_batch_clear), batch->last (fetch
// after it next) and batch->head. Returns 0 or -1.
int stream_fetch(db_t *db, uint64_t after, uint32_t max, const char *scope, Cara__Batch *batch);
void stream_batch_clear(Cara__Batch *batch);
// The highest seq a reader can be served now (0 if empty), or -1 on error.
int64_t stream_head(db_t *db);
// How many events this process has appended or queued (committed or not) since it started:
// while it stays the same, the head cannot have moved (each service alone writes its outbox).
uint64_t stream_appended(void);

#endif
