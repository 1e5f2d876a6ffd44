#include "cara/service.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "cara/audit.h"
#include "cara/log.h"
#include "cara/request_log.h"
#include "cara/stream.h"
#include "cara/timeutil.h"
#include "cara/transport.h"
#include "cara/uuid.h"
#include "cara/version.h"
#include "cara/zap.h"

#define SERVICE_MAX_BATCH 256
#define SERVICE_FETCH_MAX 2000
#define SERVICE_MAX_CONSUMERS 8

struct service_t {
    const service_spec_t *spec;
    config_t *config;
    db_t *db;
    db_t *lane_db; // the second request lane's connection (db.overlap_commits), or NULL
    db_t *consumer_lanes[SERVICE_MAX_CONSUMERS][2]; // spec->consumer_lanes: each consumer's own
    void *ctx;
    zap_t *zap;
    void *router;
    void *pub;
    keypair_t keys;
    consumer_t *consumers[SERVICE_MAX_CONSUMERS];
    int n_consumers;
    int64_t published_head;
    int64_t last_publish_ms;
    int64_t last_tick_ms;
    int optimistic;         // a request batch's optimistic pass is running (service_optimistic)
    uint64_t appended_seen; // stream_appended() when the head was last looked up
    uint64_t overlapped;    // batches run while another one's COMMIT was on its way (Health)
    char started_at[40];
    void *state;
};

static volatile sig_atomic_t s_stop = 0;

static void s_on_signal(int sig) {
    (void)sig;
    s_stop = 1;
}

db_t *service_db(service_t *svc) {
    return svc->db;
}
bool service_optimistic(service_t *svc) {
    return svc->optimistic;
}
config_t *service_config(service_t *svc) {
    return svc->config;
}
const char *service_name(service_t *svc) {
    return svc->spec->name;
}
void *service_state(service_t *svc) {
    return svc->state;
}
void service_set_state(service_t *svc, void *state) {
    svc->state = state;
}

// Writes one audit row now (send = 0) or queued in the pipeline (send = 1). Returns 0 or -1.
static int s_audit(service_t *svc, int send, const identity_t *who, const char *action,
                   const char *entity, const char *entity_id, json_t *detail) {
    char actor[128];
    identity_format(who, actor, sizeof actor);
    return audit_record(svc->db, send, actor, action, entity, entity_id, detail);
}

int service_audit(service_t *svc, const identity_t *who, const char *action, const char *entity,
                  const char *entity_id, json_t *detail) {
    return s_audit(svc, 0, who, action, entity, entity_id, detail);
}

int service_audit_send(service_t *svc, const identity_t *who, const char *action,
                       const char *entity, const char *entity_id, json_t *detail) {
    return s_audit(svc, 1, who, action, entity, entity_id, detail);
}

// --- built-in commands -------------------------------------------------------------------

static int s_default_view(service_t *svc, const identity_t *who, stream_view_t *view) {
    (void)svc;
    (void)view;
    return (identity_is(who, "service") || identity_is(who, "operator")) ? 0 : -1;
}

static int s_handle_fetch(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                          reply_t *reply) {
    Cara__Fetch *fetch = (Cara__Fetch *)envelope_payload(env, &cara__fetch__descriptor);
    if (!fetch)
        return reply_field_error(reply, "payload", "not a valid cara.Fetch");
    int rc = -1;
    stream_view_t view;
    memset(&view, 0, sizeof view);
    Cara__Batch batch = CARA__BATCH__INIT;
    if (*fetch->stream && strcmp(fetch->stream, svc->spec->name) != 0) {
        reply_status(reply, CARA__REPLY__STATUS__NOT_FOUND, "this service serves stream \"%s\"",
                     svc->spec->name);
        goto cleanup;
    }
    int (*decide)(service_t *, const identity_t *, stream_view_t *) =
        svc->spec->fetch_view ? svc->spec->fetch_view : s_default_view;
    if (decide(svc, who, &view) != 0) {
        reply_status(reply, CARA__REPLY__STATUS__FORBIDDEN, "%s:%s may not read the %s stream",
                     who->role, who->org, svc->spec->name);
        goto cleanup;
    }
    uint32_t max = fetch->max && fetch->max < SERVICE_FETCH_MAX ? fetch->max : SERVICE_FETCH_MAX;
    if (stream_fetch(svc->db, fetch->after, max, view.scope[0] ? view.scope : NULL, &batch) != 0) {
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "stream unavailable");
        goto cleanup;
    }
    batch.stream = (char *)svc->spec->name;
    if (view.transform) {
        size_t kept = 0;
        for (size_t i = 0; i < batch.n_events; i++) {
            Cara__StreamEvent *ev = batch.events[i];
            Cara__Envelope *e = envelope_unpack(ev->envelope.data, ev->envelope.len);
            uint8_t *payload = NULL;
            size_t len = 0;
            int keep = e ? view.transform(svc, who, e, &payload, &len) : 0;
            if (keep > 0 && payload) {
                ProtobufCBinaryData old = e->payload;
                e->payload.data = payload;
                e->payload.len = len;
                free(ev->envelope.data);
                ev->envelope.data = NULL;
                if (envelope_encode_message(&e->base, &ev->envelope.data, &ev->envelope.len) != 0)
                    keep = -1;
                e->payload = old;
                free(payload);
            }
            if (e)
                cara__envelope__free_unpacked(e, NULL);
            if (keep > 0) {
                batch.events[kept++] = ev;
            } else {
                free(ev->envelope.data);
                free(ev);
            }
            if (keep < 0) {
                // The events not looked at yet are freed with the batch (kept ones too).
                size_t rest = batch.n_events - i - 1;
                memmove(&batch.events[kept], &batch.events[i + 1], rest * sizeof *batch.events);
                batch.n_events = kept + rest;
                reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE,
                             "stream view unavailable; retry");
                goto cleanup;
            }
        }
        batch.n_events = kept;
    }
    rc = reply_ok(reply, &batch.base);
cleanup:
    stream_batch_clear(&batch);
    cara__fetch__free_unpacked(fetch, NULL);
    return rc;
}

static int s_count(service_t *svc, const char *sql, uint64_t *out) {
    char text[24];
    if (db_scalar(svc->db, sql, 0, NULL, text, sizeof text) != 1)
        return -1;
    *out = strtoull(text, NULL, 10);
    return 0;
}

static int s_handle_health(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                           reply_t *reply) {
    (void)env;
    char identity[128];
    Cara__Health health = CARA__HEALTH__INIT;
    Cara__ConsumerStatus statuses[SERVICE_MAX_CONSUMERS];
    Cara__ConsumerStatus *status_ptrs[SERVICE_MAX_CONSUMERS];
    health.service = (char *)svc->spec->name;
    health.version = (char *)cara_version;
    health.started_at = svc->started_at;
    health.identity = identity_format(who, identity, sizeof identity);
    int version = migrate_version(svc->db, svc->spec->name);
    int64_t head = stream_head(svc->db);
    health.db_ok = version >= 0 && head >= 0;
    health.schema_version = version > 0 ? (uint32_t)version : 0;
    // Partners (police, providers, Hampton Trust) learn that the service is up and who they
    // are to it; the consumers, their errors and the dead letters are the operators' (and the
    // services'). (The stream's head is not a secret kept from partners: a scoped Fetch reply
    // carries the stream's own seqs, so a force reading its outcomes sees how far intake's
    // stream has gone; ARCHITECTURE says so.)
    if (!identity_is(who, "operator") && !identity_is(who, "service")) {
        if (!health.db_ok)
            reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable");
        return reply_ok(reply, &health.base) == 0 && health.db_ok ? 0 : -1;
    }
    health.stream_head = head > 0 ? (uint64_t)head : 0;
    s_count(svc, "SELECT count(*) FROM dead_letter WHERE replayed_at IS NULL",
            &health.dead_letters);
    char oldest[24] = "";
    health.oldest_unprocessed_age_s = 0; // the oldest over every consumer
    for (int i = 0; i < svc->n_consumers; i++) {
        consumer_t *c = svc->consumers[i];
        cara__consumer_status__init(&statuses[i]);
        statuses[i].stream = (char *)consumer_stream(c);
        statuses[i].cursor = consumer_cursor(c);
        statuses[i].upstream_head = consumer_upstream_head(c);
        statuses[i].last_error = (char *)consumer_last_error(c);
        int64_t age = consumer_oldest_unapplied_s(c);
        if (age > health.oldest_unprocessed_age_s)
            health.oldest_unprocessed_age_s = age;
        const char *params[] = {consumer_stream(c)};
        if (db_scalar(svc->db,
                      "SELECT count(*) FROM dead_letter WHERE stream = $1 AND replayed_at IS NULL",
                      1, params, oldest, sizeof oldest) == 1)
            statuses[i].dead_letters = strtoull(oldest, NULL, 10);
        status_ptrs[i] = &statuses[i];
    }
    health.consumers = status_ptrs;
    health.batches_overlapped = svc->overlapped; // request batches, and consumers' (lanes)
    for (int i = 0; i < svc->n_consumers; i++)
        health.batches_overlapped += consumer_overlapped(svc->consumers[i]);
    health.n_consumers = (size_t)svc->n_consumers;
    if (!health.db_ok)
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable");
    return reply_ok(reply, &health.base) == 0 && health.db_ok ? 0 : -1;
}

static const service_upstream_t *s_upstream(service_t *svc, const char *stream) {
    for (const service_upstream_t *u = svc->spec->upstreams; u && u->stream; u++)
        if (strcmp(u->stream, stream) == 0)
            return u;
    return NULL;
}

// Replays the dead letters wanted (0: every one not yet replayed; > 0: that one, if not yet
// replayed). Returns 0 with the counts, or -1 if the database failed (the caller rolls back:
// nothing is half done, and a repeat replays again).
static int s_replay_dead_letters(service_t *svc, int64_t wanted, int *matched, int *replayed,
                                 int *still_failing) {
    char id_s[24];
    snprintf(id_s, sizeof id_s, "%" PRId64, wanted);
    const char *values[] = {id_s};
    PGresult *r = db_query(svc->db,
                           "SELECT id, stream FROM dead_letter WHERE replayed_at IS NULL"
                           " AND ($1::bigint = 0 OR id = $1::bigint) ORDER BY id",
                           1, values);
    if (!r)
        return -1;
    int rc = 0;
    *matched = PQntuples(r);
    for (int i = 0; i < *matched && rc == 0; i++) {
        const service_upstream_t *up = s_upstream(svc, PQgetvalue(r, i, 1));
        if (!up) {
            (*still_failing)++; // a stream this service no longer consumes: nothing to apply it
            continue;
        }
        int res = consumer_replay_dead_letter(svc->db, strtoll(PQgetvalue(r, i, 0), NULL, 10),
                                              up->apply, up->flush, svc);
        if (res == 0)
            (*replayed)++;
        else if (res == 1 || res == 2)
            (*still_failing)++; // poison again, or a retry: its reason is updated
        else if (res == 3)
            (*matched)--; // replayed meanwhile by another request: not this one's
        else
            rc = -1; // the database failed: the whole replay is rolled back and retried
    }
    PQclear(r);
    return rc;
}

// Lists the dead letters (req.id < 0), or replays them (0: all not yet replayed; > 0: one) and
// then lists them as they are after the replay. A replay answers OK only if everything it took
// was applied: CONFLICT if any still fails (the successful ones are kept), NOT_FOUND if the id
// names no dead letter waiting for replay.
static int s_handle_dead_letters(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                                 reply_t *reply) {
    if (!identity_is(who, "operator")) {
        reply_status(reply, CARA__REPLY__STATUS__FORBIDDEN, "only operators manage dead letters");
        return -1;
    }
    Cara__DeadLetterReplay *req =
        (Cara__DeadLetterReplay *)envelope_payload(env, &cara__dead_letter_replay__descriptor);
    if (!req)
        return reply_field_error(reply, "payload", "not a valid cara.DeadLetterReplay");
    int64_t wanted = req->id;
    cara__dead_letter_replay__free_unpacked(req, NULL);
    int matched = 0, replayed = 0, still_failing = 0;
    if (wanted >= 0 &&
        s_replay_dead_letters(svc, wanted, &matched, &replayed, &still_failing) != 0) {
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE,
                     "the replay could not be completed; nothing was replayed; retry");
        return -1;
    }
    if (wanted > 0 && matched == 0) {
        reply_status(reply, CARA__REPLY__STATUS__NOT_FOUND,
                     "no dead letter %" PRId64 " waiting for replay (unknown, or already replayed)",
                     wanted);
        return -1;
    }
    PGresult *r = db_query(svc->db,
                           "SELECT id, stream, seq, coalesce(event_id, ''), coalesce(type, ''),"
                           " reason, created_at, coalesce(replayed_at::text, '')"
                           " FROM dead_letter ORDER BY id",
                           0, NULL);
    if (!r) {
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable");
        return -1;
    }
    int rows = PQntuples(r);
    Cara__DeadLetterList list = CARA__DEAD_LETTER_LIST__INIT;
    Cara__DeadLetter *items = calloc((size_t)rows + 1, sizeof *items);
    Cara__DeadLetter **ptrs = calloc((size_t)rows + 1, sizeof *ptrs);
    int rc = -1;
    if (!items || !ptrs)
        goto cleanup;
    for (int i = 0; i < rows; i++) {
        cara__dead_letter__init(&items[i]);
        items[i].id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        items[i].stream = PQgetvalue(r, i, 1);
        items[i].seq = strtoull(PQgetvalue(r, i, 2), NULL, 10);
        items[i].event_id = PQgetvalue(r, i, 3);
        items[i].type = PQgetvalue(r, i, 4);
        items[i].reason = PQgetvalue(r, i, 5);
        items[i].created_at = PQgetvalue(r, i, 6);
        items[i].replayed_at = PQgetvalue(r, i, 7);
        ptrs[i] = &items[i];
    }
    list.items = ptrs;
    list.n_items = (size_t)rows;
    if (reply_ok(reply, &list.base) != 0)
        goto cleanup;
    rc = 0;
    if (wanted >= 0 && still_failing > 0) {
        // Not OK, but what was replayed (and the new reasons) is kept.
        reply_status(reply, CARA__REPLY__STATUS__CONFLICT, "replayed %d, still failing %d",
                     replayed, still_failing);
        rc = SERVICE_KEEP_WRITES;
    } else if (wanted >= 0) {
        reply_status(reply, CARA__REPLY__STATUS__OK, "replayed %d, still failing 0", replayed);
    }
cleanup:
    free(items);
    free(ptrs);
    PQclear(r);
    return rc;
}

static const service_handler_t s_builtin[] = {
    {"cara.Fetch", s_handle_fetch, SERVICE_READS},
    {"cara.HealthRequest", s_handle_health, SERVICE_READS},
    // A replay takes only dead letters not yet replayed: a repeat changes nothing.
    {"cara.DeadLetterReplay", s_handle_dead_letters, SERVICE_WRITES_IDEMPOTENT},
    {NULL, NULL, 0},
};

static const service_handler_t *s_find_handler(service_t *svc, const char *type) {
    for (const service_handler_t *h = s_builtin; h->type; h++)
        if (strcmp(h->type, type) == 0)
            return h;
    for (const service_handler_t *h = svc->spec->handlers; h && h->type; h++)
        if (strcmp(h->type, type) == 0)
            return h;
    return NULL;
}

// --- request batches ---------------------------------------------------------------------

typedef struct {
    transport_request_t req;
    reply_t reply;
    char request_id[64];
} pending_t;

// The one savepoint of a batch ("request"), which brackets each request's writes. After a
// ROLLBACK TO it still exists (empty). A request that keeps its writes is closed at once:
// "RELEASE; SAVEPOINT" is sent behind whatever the handler queued (db_send) and the whole
// pipeline is read back in one round trip, so the request is answered OK only if every one of
// its statements succeeded; if anything failed, the savepoint is still there to roll back to.
//
// A batch is first run optimistically: without savepoints, nothing read back between requests,
// single-row INSERTs gathered into multi-row ones per table (db_gather), and the COMMIT reads
// everything back in one round trip, so a batch of new referrals costs one round trip, a
// handful of statements and one durable commit. If anything failed on the way (a statement:
// db_error_count moved; or a request that must be undone had written: db_write_count moved),
// nothing was committed and nobody was answered: the transaction is rolled back and the batch
// run again carefully, as above, exactly as if the optimistic pass had not happened. A handler
// that needs the careful pass for its request (service_optimistic) returns SERVICE_CAREFUL
// before writing: what was queued is read back and the rest of the batch goes carefully.
typedef enum { SP_NONE, SP_CLEAN, SP_DIRTY } s_savepoint_t;

typedef struct {
    s_savepoint_t state;
    pending_t *holder; // the request whose kept writes an SP_DIRTY savepoint holds
    int failed;        // the optimistic pass failed: nothing may be committed
} s_batch_state_t;

// Opens a clean savepoint for the next request (queued: it travels with the handler's first
// statement). Returns 0 or -1 (database gone).
static int s_savepoint_open(service_t *svc, s_batch_state_t *b) {
    if (b->state == SP_CLEAN)
        return 0;
    if (db_send(svc->db, "SAVEPOINT request", 0, NULL, NULL, NULL) != 0)
        return -1;
    b->state = SP_CLEAN;
    return 0;
}

// Rolls the current request back to the savepoint (after reading back, and discarding,
// whatever it queued: a statement behind a failed one in a pipeline would be skipped).
static void s_savepoint_undo(service_t *svc, s_batch_state_t *b) {
    db_sync(svc->db);
    b->state = db_exec(svc->db, "ROLLBACK TO SAVEPOINT request", 0, NULL) == 0 ? SP_CLEAN : SP_NONE;
}

// Keeps the holder's writes: reads back everything it queued and moves to a new savepoint,
// in one round trip. If anything failed, the writes are undone and the holder told to retry.
static void s_savepoint_close(service_t *svc, s_batch_state_t *b) {
    if (b->state != SP_DIRTY)
        return;
    if (db_send(svc->db, "RELEASE SAVEPOINT request", 0, NULL, NULL, NULL) == 0 &&
        db_send(svc->db, "SAVEPOINT request", 0, NULL, NULL, NULL) == 0 && db_sync(svc->db) == 0) {
        b->state = SP_CLEAN;
        return;
    }
    // Something failed before the release took effect (a failed statement skips the rest of
    // the pipeline), so the old savepoint is still there: undo and tell the holder to retry.
    reply_clear(&b->holder->reply);
    reply_status(&b->holder->reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable");
    s_savepoint_undo(svc, b);
}

// Decodes a request and finds its handler. Returns the envelope (caller frees) with *handler
// set, or with *handler NULL and the reply saying why it will not be handled; or NULL (reply
// set) if the request is not an envelope.
static Cara__Envelope *s_resolve(service_t *svc, pending_t *p, const service_handler_t **handler) {
    *handler = NULL;
    Cara__Envelope *env = envelope_unpack(p->req.body, p->req.body_len);
    if (!env) {
        reply_status(&p->reply, CARA__REPLY__STATUS__INVALID,
                     "request is not a valid cara.Envelope");
        log_warn("request_malformed", "reason", "undecodable envelope");
        return NULL;
    }
    // The reply carries the request id back (its correlation id); one too long to be a request
    // id is not echoed cut short, where it could match another request's id.
    if (strlen(env->event_id) < sizeof p->request_id)
        snprintf(p->request_id, sizeof p->request_id, "%s", env->event_id);
    if (!p->req.has_identity) {
        reply_status(&p->reply, CARA__REPLY__STATUS__FORBIDDEN, "no identity");
    } else if (env->schema_version > ENVELOPE_SCHEMA_VERSION) {
        reply_status(&p->reply, CARA__REPLY__STATUS__UNSUPPORTED,
                     "schema_version %u is newer than this service reads (%d)", env->schema_version,
                     ENVELOPE_SCHEMA_VERSION);
    } else if (!uuid_valid(env->event_id)) {
        // It is the key a retry is recognised by, so it must be one the client made to be unique.
        reply_field_error(&p->reply, "event_id", "the request id must be a UUID");
    } else {
        *handler = s_find_handler(svc, env->type);
        if (!*handler)
            reply_status(&p->reply, CARA__REPLY__STATUS__UNSUPPORTED, "unknown command type \"%s\"",
                         env->type);
    }
    return env;
}

// A refused request (FORBIDDEN, with an identity) is logged and audited; queued (db_send).
// Returns 0, -1 if the audit could not be queued, or 1 if there was nothing to audit.
static int s_audit_refusal(service_t *svc, pending_t *p, const Cara__Envelope *env) {
    if (p->reply.msg.status != CARA__REPLY__STATUS__FORBIDDEN || !p->req.has_identity)
        return 1;
    char actor[128];
    log_warn("request_refused", "identity", identity_format(&p->req.who, actor, sizeof actor),
             "type", env->type);
    return service_audit_send(svc, &p->req.who, "refused", "request", env->type,
                              json_pack("{s:s}", "reason", p->reply.msg.message));
}

static int s_kept(int rc, const reply_t *reply) {
    return rc == SERVICE_KEEP_WRITES || (rc == 0 && reply->msg.status == CARA__REPLY__STATUS__OK);
}

// Calls the handler. One that failed (-1: its writes are undone) but left its reply OK, as a
// handler does that meets a failed statement (a lock timeout, a lost connection) on a path that
// sets no answer, is answered "retry" instead: never OK for something that was not kept.
static int s_call(service_t *svc, pending_t *p, const Cara__Envelope *env,
                  const service_handler_t *h) {
    int rc = h->handle(svc, &p->req.who, env, &p->reply);
    if (rc < 0 && p->reply.msg.status == CARA__REPLY__STATUS__OK) {
        log_warn("request_failed", "type", env->type, "sqlstate", db_sqlstate(svc->db));
        reply_clear(&p->reply);
        reply_status(&p->reply, CARA__REPLY__STATUS__UNAVAILABLE,
                     "the request could not be completed; retry with the same request id");
    }
    return rc;
}

// Runs a request's handler. A command that changes state (SERVICE_WRITES) is looked up in
// request_log first, so a repeat of its request id gets the first answer and changes nothing;
// a new one's answer is kept there (queued: read back with the request's writes) if its writes
// are. The careful look-up claims the key, so that a repeat whose first is still committing (in
// the other lane) waits for it. The optimistic pass skips the look-up, as intake's submissions
// skip theirs: a repeat that writes makes its queued answer fail on request_log's key, so the
// batch is run again carefully; a repeat that writes nothing would not fail, so a pass's answer
// that keeps no writes is not trusted but asked again carefully (SERVICE_CAREFUL).
static int s_handle(service_t *svc, pending_t *p, const Cara__Envelope *env,
                    const service_handler_t *h) {
    if (h->writes != SERVICE_WRITES)
        return s_call(svc, p, env, h);
    request_log_entry_t entry;
    request_log_entry(&entry, svc->spec->name, env->type, p->req.who.org, env->event_id,
                      env->payload.data, env->payload.len);
    int claimed = !svc->optimistic; // the careful pass claims the key (and so waits for its
                                    // first holder, if that one's COMMIT is on its way)
    if (claimed) {
        int found = request_log_answer(svc->db, &entry, &p->reply);
        if (found != REQUEST_LOG_NEW)
            return found == REQUEST_LOG_REPEAT ? 0 : -1;
    }
    uint64_t writes = db_write_count(svc->db);
    int rc = s_call(svc, p, env, h);
    if (rc == SERVICE_CAREFUL)
        return rc;
    if (!s_kept(rc, &p->reply))
        return svc->optimistic && db_write_count(svc->db) == writes ? SERVICE_CAREFUL : rc;
    int stored = claimed ? request_log_fill_send(svc->db, entry.key, &p->reply)
                         : request_log_send(svc->db, entry.key, entry.hash, &p->reply);
    if (stored != 0) {
        reply_clear(&p->reply);
        reply_status(&p->reply, CARA__REPLY__STATUS__UNAVAILABLE,
                     "could not record the answer; retry");
        return -1;
    }
    return rc;
}

// Runs one request inside the open batch transaction, carefully.
static void s_dispatch(service_t *svc, pending_t *p, s_batch_state_t *b) {
    const service_handler_t *handler;
    Cara__Envelope *env = s_resolve(svc, p, &handler);
    if (!env)
        return;
    if (handler && s_savepoint_open(svc, b) != 0) {
        reply_status(&p->reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable");
    } else if (handler) {
        int rc = s_handle(svc, p, env, handler);
        if (s_kept(rc, &p->reply)) {
            b->state = SP_DIRTY; // closed (read back and released) below
            b->holder = p;
        } else {
            s_savepoint_undo(svc, b);
            if (b->state == SP_NONE)
                reply_status(&p->reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable");
        }
    }
    // The refusal's audit row is written after the request's savepoint, so it must not be
    // rolled back with the next request: the savepoint now holds it.
    int audited = s_audit_refusal(svc, p, env);
    if (audited == 0 && db_sync(svc->db) == 0) {
        if (b->state != SP_NONE) {
            b->state = SP_DIRTY;
            b->holder = p;
        }
    } else if (audited != 1 && b->state != SP_NONE) {
        // The failed audit aborted the transaction: back to the savepoint, so the batch
        // can go on (and anything this request kept is undone and retried).
        if (b->state == SP_DIRTY && b->holder == p) {
            reply_clear(&p->reply);
            reply_status(&p->reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable");
        }
        s_savepoint_undo(svc, b);
    }
    s_savepoint_close(svc, b);
    cara__envelope__free_unpacked(env, NULL);
}

// Runs one request in the optimistic pass: no savepoint, nothing read back. A request whose
// writes would have to be undone cannot be (there is no savepoint), so it fails the pass; one
// that asks for care (SERVICE_CAREFUL) before writing anything turns the rest of the batch
// careful, from itself on.
static void s_dispatch_optimistic(service_t *svc, pending_t *p, s_batch_state_t *b) {
    const service_handler_t *handler;
    Cara__Envelope *env = s_resolve(svc, p, &handler);
    if (!env)
        return;
    if (handler) {
        uint64_t writes = db_write_count(svc->db);
        int rc = s_handle(svc, p, env, handler);
        if (!s_kept(rc, &p->reply) && db_write_count(svc->db) != writes) {
            b->failed = 1;
        } else if (rc == SERVICE_CAREFUL) {
            svc->optimistic = 0;
            db_gather(svc->db, false);
            reply_clear(&p->reply);
            if (db_sync(svc->db) != 0)
                b->failed = 1; // something before it failed
            else
                s_dispatch(svc, p, b);
            cara__envelope__free_unpacked(env, NULL);
            return;
        }
    }
    if (!b->failed && s_audit_refusal(svc, p, env) == -1)
        b->failed = 1;
    cara__envelope__free_unpacked(env, NULL);
}

// --- lanes: the next batch runs while the last one's COMMIT is flushed --------------------
// A lane is one request batch on its own connection. With two lanes the runtime sends one
// batch's COMMIT and, instead of waiting for it, takes the requests that came in meanwhile
// and runs them on the other connection; only then does it read the first COMMIT back and
// answer its requests. The disk flush of one batch, the server's work on the next and this
// process's own work on the next overlap, which a single connection (strictly: receive, run,
// commit, reply) cannot do. Nothing about the guarantees changes: a request is answered only
// after its own COMMIT was read back, a lane whose pass failed is rolled back and run again
// before any other lane starts, and a lane is left waiting only with its COMMIT on its way
// (so another lane that waits for one of its locks cannot wait for ever). A request that
// depends on another one's outcome was sent after that one was answered, so it is never in a
// batch that overlaps it; a retry, which the client sends without waiting for the answer, may
// be, and the careful pass's claim of its request key (request_log_claim) waits for the first
// one's COMMIT. Both lanes are finished before the loop goes on to anything else.
typedef enum {
    S_DONE, // committed, or nothing to commit (every request has its answer)
    S_SENT, // COMMIT sent, not yet read back
    S_REDO, // the optimistic pass failed and the server answered: roll back, run carefully
    S_LOST, // the commit failed, or its outcome is unknown: every request is told to retry
} s_pass_t;

typedef struct {
    db_t *db;
    pending_t batch[SERVICE_MAX_BATCH];
    int n;
    s_pass_t pass;
    int optimistic; // the pass was optimistic to the end (no request turned it careful)
    log_held_t held;
} s_lane_t;

#define S_LANES 2
#define S_ROUNDS_MAX 32 // batches in a row before the loop looks at its consumers again

static s_lane_t s_lanes[S_LANES];

// Runs the lane's batch in one transaction, optimistically or carefully, and sends its COMMIT
// without waiting (S_SENT), unless it failed first (S_REDO or S_LOST) or the database is down
// (S_DONE: every request has been told so).
static s_pass_t s_pass_start(service_t *svc, s_lane_t *lane, int optimistic) {
    // BEGIN is queued: it travels with the first request's first statement.
    int db_up = db_ensure(svc->db) == 0 && db_send(svc->db, "BEGIN", 0, NULL, NULL, NULL) == 0;
    s_batch_state_t state = {SP_NONE, NULL, 0};
    svc->optimistic = optimistic;   // until a request turns the rest of the batch careful
    db_gather(svc->db, optimistic); // the pass's single-row INSERTs go as one per table
    uint64_t errors = db_error_count(svc->db);
    for (int i = 0; i < lane->n && !state.failed; i++) {
        pending_t *p = &lane->batch[i];
        if (db_up && svc->optimistic)
            s_dispatch_optimistic(svc, p, &state);
        else if (db_up)
            s_dispatch(svc, p, &state);
        else
            reply_status(&p->reply, CARA__REPLY__STATUS__UNAVAILABLE,
                         "database unavailable; retry");
        if (svc->optimistic && db_error_count(svc->db) != errors)
            state.failed = 1;
    }
    lane->optimistic = svc->optimistic;
    svc->optimistic = 0;
    db_gather(svc->db, false);
    if (!db_up)
        return S_DONE;
    if (!state.failed && db_commit_send(svc->db) == 0)
        return S_SENT;
    if (!state.failed)
        return db_commit_finish(svc->db), S_LOST; // read back what was sent
    // A failed optimistic pass was rolled back by the server if it answered.
    return db_outcome_known(svc->db) ? S_REDO : S_LOST;
}

// Reads a sent COMMIT back.
static s_pass_t s_pass_finish(service_t *svc, s_lane_t *lane) {
    if (db_commit_finish(svc->db) == 0)
        return S_DONE;
    return lane->optimistic && db_outcome_known(svc->db) ? S_REDO : S_LOST;
}

// Receives every request waiting (up to a bound) into the lane. Returns how many.
static int s_lane_receive(service_t *svc, s_lane_t *lane) {
    lane->n = 0;
    while (lane->n < SERVICE_MAX_BATCH) {
        zmq_pollitem_t item = {svc->router, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 0) <= 0)
            break;
        pending_t *p = &lane->batch[lane->n];
        if (transport_recv_request(svc->router, &p->req) != 0)
            continue;
        reply_init(&p->reply);
        p->request_id[0] = '\0';
        lane->n++;
    }
    return lane->n;
}

// Starts the lane's batch: its optimistic pass, up to the COMMIT sent. The pass's info lines
// are kept with the lane, to be written only if it is what gets committed.
static void s_lane_start(service_t *svc, s_lane_t *lane) {
    db_t *home = svc->db;
    svc->db = lane->db;
    log_hold();
    lane->pass = s_pass_start(svc, lane, 1);
    // A failed pass gives its locks back at once: the other lane, read back next, may need them.
    if (lane->pass == S_REDO || lane->pass == S_LOST)
        db_rollback(svc->db);
    lane->held = log_detach();
    svc->db = home;
}

// Finishes the lane: reads its COMMIT back, runs the batch again carefully if the optimistic
// pass failed, and answers every request.
static void s_lane_finish(service_t *svc, s_lane_t *lane) {
    db_t *home = svc->db;
    svc->db = lane->db;
    if (lane->pass == S_SENT)
        lane->pass = s_pass_finish(svc, lane);
    if (lane->pass == S_DONE)
        log_held_write(&lane->held);
    else
        log_held_drop(&lane->held);
    if (lane->pass == S_REDO) {
        // The optimistic pass failed somewhere and committed nothing: again, carefully.
        char count[16];
        snprintf(count, sizeof count, "%d", lane->n);
        log_info("batch_run_carefully", "requests", count, "sqlstate", db_sqlstate(svc->db));
        db_rollback(svc->db);
        for (int i = 0; i < lane->n; i++) {
            reply_clear(&lane->batch[i].reply);
            reply_init(&lane->batch[i].reply);
            lane->batch[i].request_id[0] = '\0';
        }
        lane->pass = s_pass_start(svc, lane, 0);
        if (lane->pass == S_SENT)
            lane->pass = s_pass_finish(svc, lane);
    }
    if (lane->pass != S_DONE) {
        // Nothing was acknowledged: every request in the batch is told to retry.
        db_rollback(svc->db);
        for (int i = 0; i < lane->n; i++) {
            reply_clear(&lane->batch[i].reply);
            reply_status(&lane->batch[i].reply, CARA__REPLY__STATUS__UNAVAILABLE,
                         "commit failed; retry with the same request id");
        }
    }
    svc->db = home;
    for (int i = 0; i < lane->n; i++) {
        pending_t *p = &lane->batch[i];
        uint8_t *data = NULL;
        size_t len = 0;
        if (transport_encode_reply(p->request_id, &p->reply.msg, &data, &len) == 0) {
            if (transport_send_reply(svc->router, &p->req, data, len) != 0)
                log_warn("reply_not_sent", "request_id", p->request_id);
            free(data);
        }
        reply_clear(&p->reply);
        transport_request_free(&p->req);
    }
    lane->n = 0;
}

// While a lane's COMMIT is on its way: waits until a request comes in (1) or the server
// answers (0). The wait is short: the answer may already sit in libpq's buffer.
static int s_request_before_commit(service_t *svc, s_lane_t *waiting) {
    zmq_pollitem_t items[2] = {{svc->router, 0, ZMQ_POLLIN, 0},
                               {NULL, db_socket(waiting->db), ZMQ_POLLIN, 0}};
    int rc = zmq_poll(items, items[1].fd >= 0 ? 2 : 1, 1);
    return rc > 0 && (items[0].revents & ZMQ_POLLIN) && !(items[1].revents & ZMQ_POLLIN);
}

// Serves the requests waiting, batch after batch, overlapping each batch's COMMIT with the
// next batch when a second lane is there (db.overlap_commits). Returns the number handled.
static int s_serve_requests(service_t *svc) {
    s_lanes[0].db = svc->db;
    s_lanes[1].db = svc->lane_db;
    s_lane_t *waiting = NULL; // the lane whose COMMIT is on its way
    int total = 0;
    for (int round = 0; round < S_ROUNDS_MAX; round++) {
        s_lane_t *lane = waiting == &s_lanes[0] ? &s_lanes[1] : &s_lanes[0];
        // The second lane is used only while its connection is up (else lane 0 goes on alone).
        if (waiting &&
            (!lane->db || db_ensure(lane->db) != 0 || !s_request_before_commit(svc, waiting)))
            break;
        if (s_lane_receive(svc, lane) == 0)
            break;
        total += lane->n;
        svc->overlapped += waiting != NULL;
        s_lane_start(svc, lane);
        if (waiting)
            s_lane_finish(svc, waiting);
        waiting = NULL;
        if (lane->pass == S_SENT)
            waiting = lane;
        else
            s_lane_finish(svc, lane); // a failed pass is put right before anything else runs
    }
    if (waiting)
        s_lane_finish(svc, waiting);
    return total;
}

static void s_publish_head(service_t *svc, int force) {
    int64_t now = time_mono_ms();
    // Between the once-a-second heartbeats the head is looked up only if events were written.
    if ((!force || stream_appended() == svc->appended_seen) && now - svc->last_publish_ms < 1000)
        return;
    svc->appended_seen = stream_appended();
    int64_t head = stream_head(svc->db);
    if (head < 0)
        return;
    if (head == svc->published_head && now - svc->last_publish_ms < 1000)
        return;
    Cara__Head msg = CARA__HEAD__INIT;
    msg.stream = (char *)svc->spec->name;
    msg.seq = (uint64_t)head;
    uint8_t *data = NULL;
    size_t len = 0;
    if (envelope_pack(&msg.base, NULL, NULL, &data, &len, NULL) == 0) {
        zmq_send(svc->pub, data, len, ZMQ_DONTWAIT);
        free(data);
    }
    svc->published_head = head;
    svc->last_publish_ms = now;
}

// --- start-up and the loop ---------------------------------------------------------------

static int s_start_consumers(service_t *svc, keyring_t *ring) {
    for (const service_upstream_t *u = svc->spec->upstreams; u && u->stream; u++) {
        if (svc->n_consumers == SERVICE_MAX_CONSUMERS)
            return -1;
        char path[96], key[KEY_Z85_LEN];
        snprintf(path, sizeof path, "upstreams.%s.router", u->stream);
        const char *router = config_str(svc->config, path, NULL);
        snprintf(path, sizeof path, "upstreams.%s.pub", u->stream);
        const char *pub = config_str(svc->config, path, NULL);
        snprintf(path, sizeof path, "upstreams.%s.public_key", u->stream);
        const char *server_key = config_str(svc->config, path, NULL);
        if (!server_key && keyring_key_of(ring, "service", u->stream, key) == 0)
            server_key = key;
        if (!router || !server_key) {
            log_error("upstream_unconfigured", "stream", u->stream, "reason",
                      "needs upstreams.<stream>.router and a service key in the key ring");
            return -1;
        }
        consumer_spec_t cs = {
            .stream = u->stream,
            .router = router,
            .pub = pub,
            .server_public = server_key,
            .apply = u->apply,
            .flush = u->flush,
            .arg = svc,
            .batch_max = (uint32_t)config_int(svc->config, "consumer.batch", 500),
            .poll_interval_ms = (int)config_int(svc->config, "consumer.poll_ms", 1000),
            .timeout_ms = (int)config_int(svc->config, "consumer.timeout_ms", 3000),
            .lanes = {svc->consumer_lanes[svc->n_consumers][0],
                      svc->consumer_lanes[svc->n_consumers][1]}};
        svc->consumers[svc->n_consumers] = consumer_new(svc->ctx, svc->db, &svc->keys, &cs);
        if (!svc->consumers[svc->n_consumers])
            return -1;
        svc->n_consumers++;
    }
    return 0;
}

// The lock and idle-in-transaction backstops (db_set_timeouts) on every connection, after the
// migrations (which may wait for locks as long as they must).
static int s_set_timeouts(service_t *svc) {
    int lock_ms = (int)config_int(svc->config, "db.lock_timeout_ms", 10000);
    int idle_ms = (int)config_int(svc->config, "db.idle_in_transaction_timeout_ms", 60000);
    int rc = db_set_timeouts(svc->db, lock_ms, idle_ms);
    if (svc->lane_db)
        rc |= db_set_timeouts(svc->lane_db, lock_ms, idle_ms);
    for (int n = 0; n < SERVICE_MAX_CONSUMERS; n++)
        for (int k = 0; k < 2; k++)
            if (svc->consumer_lanes[n][k])
                rc |= db_set_timeouts(svc->consumer_lanes[n][k], lock_ms, idle_ms);
    if (rc != 0)
        log_error("db_timeouts_failed", "reason", "could not set lock_timeout");
    return rc;
}

static int s_setup(service_t *svc, int migrate_only) {
    const char *conninfo = config_str(svc->config, "db.conninfo", NULL);
    if (!conninfo) {
        log_error("config_missing", "field", "db.conninfo");
        return -1;
    }
    // A password from the configuration (or db.password_file, a Compose secret) goes to libpq
    // as a keyword of its own beside conninfo, so conninfo may be key=value pairs or a URI.
    const char *password = config_str(svc->config, "db.password", NULL);
    int wait_ms = (int)config_int(svc->config, "db.connect_wait_ms", 30000);
    svc->db = db_connect_password(conninfo, password, svc->spec->name, wait_ms);
    // A second connection lets one request batch run while the last one commits (lanes).
    if (svc->db && !migrate_only && config_int(svc->config, "db.overlap_commits", 1)) {
        svc->lane_db = db_connect_password(conninfo, password, svc->spec->name, wait_ms);
        int n = 0;
        for (const service_upstream_t *u = svc->spec->upstreams;
             svc->spec->consumer_lanes && u && u->stream && n < SERVICE_MAX_CONSUMERS; u++, n++)
            for (int k = 0; k < 2; k++)
                svc->consumer_lanes[n][k] =
                    db_connect_password(conninfo, password, svc->spec->name, wait_ms);
    }
    if (!svc->db)
        return -1;
    if (migrate_run(svc->db, "core", core_migrations) < 0 ||
        migrate_run(svc->db, svc->spec->name, svc->spec->migrations) < 0)
        return -1;
    if (migrate_only)
        return 0;
    if (s_set_timeouts(svc) != 0)
        return -1;
    char *secret = config_resolve(svc->config, config_str(svc->config, "keys.secret_file", NULL));
    char *ring_path = config_resolve(svc->config, config_str(svc->config, "keys.keyring", NULL));
    keyring_t *ring = NULL;
    int rc = -1;
    if (!secret || !ring_path) {
        log_error("config_missing", "field", "keys.secret_file and keys.keyring");
        goto cleanup;
    }
    if (keys_load(secret, &svc->keys) != 0 || !(ring = keyring_load(ring_path)))
        goto cleanup;
    svc->ctx = zmq_ctx_new();
    if (!svc->ctx)
        goto cleanup;
    // The ZAP handler comes first: no server socket binds without it.
    svc->zap = zap_new(svc->ctx, ring_path);
    int64_t max_msg = config_int(svc->config, "max_message_bytes", 1 << 20);
    const char *router_ep = config_str(svc->config, "bind.router", NULL);
    const char *pub_ep = config_str(svc->config, "bind.pub", NULL);
    if (!router_ep || !pub_ep) {
        log_error("config_missing", "field", "bind.router and bind.pub");
        goto cleanup;
    }
    char bound[256];
    svc->router = transport_server(svc->ctx, svc->zap, ZMQ_ROUTER, router_ep, &svc->keys, max_msg,
                                   bound, sizeof bound);
    if (!svc->router)
        goto cleanup;
    log_info("listening", "router", bound);
    svc->pub = transport_server(svc->ctx, svc->zap, ZMQ_PUB, pub_ep, &svc->keys, 1024, bound,
                                sizeof bound);
    if (!svc->pub)
        goto cleanup;
    log_info("listening", "pub", bound);
    if (s_start_consumers(svc, ring) != 0)
        goto cleanup;
    if (svc->spec->init && svc->spec->init(svc) != 0)
        goto cleanup;
    rc = 0;
cleanup:
    keyring_destroy(&ring);
    free(secret);
    free(ring_path);
    return rc;
}

static void s_teardown(service_t *svc) {
    if (svc->spec->fini)
        svc->spec->fini(svc);
    for (int i = 0; i < svc->n_consumers; i++)
        consumer_destroy(&svc->consumers[i]);
    if (svc->router)
        zmq_close(svc->router);
    if (svc->pub)
        zmq_close(svc->pub);
    zap_destroy(&svc->zap);
    if (svc->ctx)
        zmq_ctx_term(svc->ctx);
    for (int i = 0; i < SERVICE_MAX_CONSUMERS; i++)
        for (int k = 0; k < 2; k++)
            db_destroy(&svc->consumer_lanes[i][k]);
    db_destroy(&svc->lane_db);
    db_destroy(&svc->db);
    config_destroy(&svc->config);
}

// Reads back every consumer's batch in flight (consumer lanes) before the loop uses the
// database for something else. Returns 1 if any of them applied events, else 0.
static int s_settle_consumers(service_t *svc) {
    int applied = 0;
    for (int i = 0; i < svc->n_consumers; i++)
        if (consumer_settle(svc->consumers[i]) > 0)
            applied = 1;
    return applied;
}

static void s_loop(service_t *svc) {
    zmq_pollitem_t items[1 + 2 * SERVICE_MAX_CONSUMERS];
    while (!s_stop) {
        int n = 0;
        items[n++] = (zmq_pollitem_t){svc->router, 0, ZMQ_POLLIN, 0};
        int timeout = 1000;
        for (int i = 0; i < svc->n_consumers; i++) {
            n += consumer_pollitems(svc->consumers[i], &items[n]);
            int t = consumer_timeout_ms(svc->consumers[i]);
            if (t < timeout)
                timeout = t;
        }
        int rc = zmq_poll(items, n, timeout);
        if (rc < 0 && zmq_errno() != EINTR)
            break;
        if (s_stop)
            break;
        int changed = 0;
        if (rc > 0 && (items[0].revents & ZMQ_POLLIN)) {
            // Requests (a dead-letter replay, say) may touch what a consumer's batch in flight
            // writes: that batch is read back first.
            changed = s_settle_consumers(svc);
            changed += s_serve_requests(svc);
        }
        for (int i = 0; i < svc->n_consumers; i++) {
            if (rc <= 0)
                items[1 + 2 * i].revents = items[2 + 2 * i].revents = 0;
            int applied = consumer_process(svc->consumers[i], &items[1 + 2 * i]);
            if (applied > 0)
                changed += applied;
        }
        int64_t now = time_mono_ms();
        if (svc->spec->tick && now - svc->last_tick_ms >= 1000) {
            svc->last_tick_ms = now;
            s_settle_consumers(svc);
            if (db_ensure(svc->db) == 0)
                svc->spec->tick(svc);
            changed = 1;
        }
        if (db_ok(svc->db))
            s_publish_head(svc, changed > 0);
        else
            db_ensure(svc->db);
    }
}

int service_main(int argc, char **argv, const service_spec_t *spec) {
    const char *config_file = getenv("CARA_CONFIG");
    int migrate_only = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config_file = argv[++i];
        else if (strcmp(argv[i], "--migrate-only") == 0)
            migrate_only = 1;
        else if (strcmp(argv[i], "--version") == 0) {
            printf("cara-%s %s\n", spec->name, cara_version);
            return 0;
        } else {
            fprintf(stderr, "usage: cara-%s [--config FILE] [--migrate-only] [--version]\n",
                    spec->name);
            return 2;
        }
    }
    if (sodium_init() < 0)
        return 1;
    service_t svc;
    memset(&svc, 0, sizeof svc);
    svc.spec = spec;
    log_init(spec->name, LOG_INFO);
    envelope_set_producer(spec->name);
    svc.config = config_load(config_file);
    if (!svc.config)
        return 1;
    log_init(spec->name, log_level_parse(config_str(svc.config, "log_level", "info")));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    time_format_iso(time_now_us(), svc.started_at, sizeof svc.started_at);
    int rc = s_setup(&svc, migrate_only);
    if (rc == 0 && !migrate_only) {
        log_info("started", "version", cara_version);
        s_loop(&svc);
        log_info("stopping", "reason", s_stop ? "signal" : "socket error");
    }
    s_teardown(&svc);
    return rc == 0 ? 0 : 1;
}
