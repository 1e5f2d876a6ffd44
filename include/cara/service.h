// The service runtime shared by the five services: configuration, logging, database and
// migrations, the ZAP handler, the ROUTER (commands, Fetch, Health) and PUB (Head) sockets,
// the consumers of upstream streams, and a clean shutdown on SIGTERM.
//
// Commands are handled in batches: every request waiting on the socket runs inside one
// transaction (a savepoint each), then one COMMIT, then the replies. So a burst of
// submissions costs one durable commit, and no reply leaves before its commit.
#ifndef CARA_SERVICE_H
#define CARA_SERVICE_H
#include <jansson.h>
#include <stdint.h>

#include "cara/config.h"
#include "cara/consumer.h"
#include "cara/db.h"
#include "cara/envelope.h"
#include "cara/keys.h"
#include "cara/migrate.h"
#include "cara/reply.h"

typedef struct service_t service_t;

// Handles one command inside the batch transaction (never BEGIN/COMMIT here). Fill reply.
// Return 0 to keep the handler's writes, -1 to roll them back (the reply still goes out).
// Writes are also rolled back when the reply is not OK, unless the handler returns
// SERVICE_KEEP_WRITES (e.g. to keep its record of a rejected submission).
#define SERVICE_KEEP_WRITES 1
// A handler in a batch's optimistic pass (service_optimistic) may skip a look-up whose answer is
// almost always "new" if a wrong guess makes a queued write fail (a unique key): the batch is
// then run again carefully. Where a wrong guess would not fail, it returns SERVICE_CAREFUL
// instead of answering, and is run again carefully.
#define SERVICE_CAREFUL 2
typedef int (*service_handler_fn)(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                                  reply_t *reply);

// What a command does to the service's state, which decides what a repeat of its request id
// gets. Clients retry with the same request id (the envelope's event id) whenever they did not
// hear the answer, also when the runtime answered "commit failed; retry with the same request
// id" to a COMMIT whose outcome it could not know, so a command that changes anything must not
// be applied twice.
typedef enum {
    // Changes state: the runtime keeps the first answer to each request id in request_log (in
    // the request's own transaction) and gives it to every repeat; a repeat with different
    // content is refused (CONFLICT). The handler need do nothing about repeats.
    SERVICE_WRITES = 0,
    // Reads only: run every time.
    SERVICE_READS,
    // Changes state and is idempotent by itself (its own request_log key, or a state that
    // makes a repeat a no-op).
    SERVICE_WRITES_IDEMPOTENT,
} service_writes_t;

typedef struct {
    const char *type; // payload type, e.g. "cara.SubmitReferral"
    service_handler_fn handle;
    service_writes_t writes;
} service_handler_t;

// What one identity may see of this service's stream.
typedef struct {
    char scope[64]; // "" = every event; otherwise only events with this scope
    // Optional per-event rewrite: return 1 to serve (with *payload replaced if set, malloc'd),
    // 0 to leave the event out (its seq is still passed over), -1 if the view could not be
    // built (out of memory): the whole fetch is answered UNAVAILABLE and the subscriber asks
    // again, so no event is passed over that should have been served.
    int (*transform)(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                     uint8_t **payload, size_t *len);
} stream_view_t;

typedef struct {
    const char *stream;      // upstream service name; endpoints from config upstreams.<stream>
    consumer_apply_fn apply; // called with arg = the service_t
    consumer_flush_fn flush; // may be NULL (see consumer_flush_fn), arg = the service_t
} service_upstream_t;

typedef struct {
    const char *name; // service and schema name
    const migration_t *migrations;
    const service_handler_t *handlers;   // ends with {NULL, NULL, 0}; may be NULL
    const service_upstream_t *upstreams; // ends with {NULL, NULL, NULL}; may be NULL
    // Decides what `who` may fetch. Return 0 (view filled) or -1 (refused). NULL: only
    // services and operators, unfiltered.
    int (*fetch_view)(service_t *svc, const identity_t *who, stream_view_t *view);
    int (*init)(service_t *svc);  // after migrations, before serving; 0 or -1
    void (*tick)(service_t *svc); // about once a second, outside any transaction
    void (*fini)(service_t *svc);
    // The upstreams' apply and flush functions write through their db argument alone (never
    // service_db), so each consumer may have two connections of its own and leave a batch's
    // COMMIT in flight while it applies the next (consumer_spec_t.lanes; db.overlap_commits).
    bool consumer_lanes;
} service_spec_t;

// Runs a service until SIGTERM/SIGINT. argv: [--config FILE] [--migrate-only].
// Returns the process exit code.
int service_main(int argc, char **argv, const service_spec_t *spec);

db_t *service_db(service_t *svc);
// True while the runtime runs a request batch's optimistic pass (see SERVICE_CAREFUL).
bool service_optimistic(service_t *svc);
config_t *service_config(service_t *svc);
const char *service_name(service_t *svc);
void *service_state(service_t *svc);
void service_set_state(service_t *svc, void *state);
// Records who did what inside the current transaction. detail may be NULL (stolen otherwise).
// Returns 0 or -1.
int service_audit(service_t *svc, const identity_t *who, const char *action, const char *entity,
                  const char *entity_id, json_t *detail);
// As service_audit, queued in the connection's pipeline (db_send): the runtime reads it back
// before it decides the request's answer. Returns 0 or -1.
int service_audit_send(service_t *svc, const identity_t *who, const char *action,
                       const char *entity, const char *entity_id, json_t *detail);

#endif
