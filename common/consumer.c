#include "cara/consumer.h"

#include <endian.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cara/log.h"
#include "cara/timeutil.h"
#include "cara/transport.h"
#include "cara/uuid.h"

#define S_SEEN_MAX 32

struct consumer_t {
    void *ctx;
    db_t *db;
    keypair_t keys;
    consumer_spec_t spec;
    char *stream, *router, *pub, *server_public;
    void *dealer;
    void *sub;
    uint64_t cursor;
    uint64_t head;
    // When each new upstream head was first heard of, oldest first, for the heads not yet
    // applied: the first one's time bounds the age of the oldest event still waiting.
    struct {
        uint64_t seq;
        int64_t at_ms;
    } seen[S_SEEN_MAX];
    int n_seen;
    char pending[UUID_STR_LEN]; // request id of the Fetch in flight, "" if none
    uint64_t pending_after;     // the position that Fetch asked from
    int64_t sent_at;
    int64_t due_at; // next fetch when idle
    int backoff_ms;
    char last_error[160];
    unsigned errors; // s_error calls so far: whether an apply said why it failed
    // The producer's stream went back below the cursor (s_check_head): said in last_error until
    // the consumer restarts. below_since: when the current run of heads below began (0: none).
    bool went_back;
    char went_back_error[160];
    uint64_t pub_head; // the last head heard on PUB, as it was
    int64_t below_since_ms;
    // Overlapped batches (spec.lanes): the batch whose COMMIT is in flight, if any.
    db_t *lanes[2];
    int lane;      // the lane the next batch goes on
    int sync_next; // after a failure: the next batch goes alone (s_apply_batch)
    int arm;       // s_start: set the before-send hook once the inbox INSERT is out
    int early;     // s_start: the hook ran (early_mine: what it settled of this consumer's)
    int early_mine;
    uint64_t overlapped; // batches started while the one before was in flight
    struct {
        Cara__Batch *batch; // NULL: nothing in flight
        db_t *db;
        int applied;
        log_held_t held;
    } flight;
};

// Every consumer with lanes, so that a batch can wait for all batches in flight (see below).
#define S_OVERLAP_MAX 16
static consumer_t *s_overlapping[S_OVERLAP_MAX];

// Notes a head heard from upstream (Head or a Batch). A full list folds the newest sighting
// into the last one, which keeps the older time: ages are never under-reported.
static void s_saw_head(consumer_t *self, uint64_t head) {
    if (head > self->head)
        self->head = head;
    if (head <= self->cursor || (self->n_seen && head <= self->seen[self->n_seen - 1].seq))
        return;
    if (self->n_seen == S_SEEN_MAX) {
        self->seen[S_SEEN_MAX - 1].seq = head;
        return;
    }
    self->seen[self->n_seen].seq = head;
    self->seen[self->n_seen].at_ms = time_now_us() / 1000;
    self->n_seen++;
}

// Forgets the sightings the cursor has passed.
static void s_forget_seen(consumer_t *self) {
    int keep = 0;
    while (keep < self->n_seen && self->seen[keep].seq <= self->cursor)
        keep++;
    memmove(self->seen, self->seen + keep, (size_t)(self->n_seen - keep) * sizeof self->seen[0]);
    self->n_seen -= keep;
}

static void s_error(consumer_t *self, const char *what) {
    self->errors++;
    snprintf(self->last_error, sizeof self->last_error, "%s", what);
    log_warn("consumer_error", "stream", self->stream, "reason", what);
}

// After a batch went well: no error, unless the producer's stream went back (that one stays).
static void s_clear_error(consumer_t *self) {
    snprintf(self->last_error, sizeof self->last_error, "%s",
             self->went_back ? self->went_back_error : "");
}

// The producer's stream went back below the cursor (a head on PUB for 1.5 s, or a Fetch reply's
// head_below_after, read in the same snapshot as its rows): logged as an error once, and kept
// in last_error until the consumer restarts.
static void s_went_back(consumer_t *self, uint64_t head) {
    self->pub_head = head;
    if (self->went_back)
        return;
    self->went_back = true;
    snprintf(self->went_back_error, sizeof self->went_back_error,
             "upstream head %" PRIu64 " is below cursor %" PRIu64
             ": producer restored without moving outbox_seq? its new events up to %" PRIu64
             " are skipped",
             head, self->cursor, self->cursor);
    snprintf(self->last_error, sizeof self->last_error, "%s", self->went_back_error);
    char head_s[24], cursor_s[24];
    snprintf(head_s, sizeof head_s, "%" PRIu64, head);
    snprintf(cursor_s, sizeof cursor_s, "%" PRIu64, self->cursor);
    log_error("upstream_head_below_cursor", "stream", self->stream, "head", head_s, "cursor",
              cursor_s, "reason",
              "the producer's stream went back (restored without setval of its outbox_seq past "
              "every served seq?): events it numbers up to the cursor will not be fetched; see "
              "OPERATIONS.md, Backup and restore");
}

// A head heard on PUB. A producer restored to an older point without moving its outbox_seq past
// every seq it had served announces a head below this consumer's cursor, and its next events
// reuse the seqs up to the cursor, which fetching after the cursor never asks for: they would be
// skipped without a word (a Fetch reply says so too: Batch.head_below_after). One head below the
// cursor may be a stale one, overtaken by a Fetch reply on the other socket; the producer
// announces its head every second, so heads below it for 1.5 s with none at or past it in
// between are not. Then it is logged as an error and kept in last_error (Health) until the
// consumer restarts, whatever the producer does next: an operator must look.
static void s_check_head(consumer_t *self, uint64_t head) {
    self->pub_head = head;
    if (head >= self->cursor) {
        self->below_since_ms = 0;
        return;
    }
    int64_t now = time_mono_ms();
    if (!self->below_since_ms) {
        self->below_since_ms = now;
        return;
    }
    if (now - self->below_since_ms >= 1500)
        s_went_back(self, head);
}

static int s_load_cursor(consumer_t *self) {
    const char *params[] = {self->stream};
    char out[24];
    if (db_exec(self->db, "INSERT INTO cursor (stream) VALUES ($1) ON CONFLICT DO NOTHING", 1,
                params) != 0 ||
        db_scalar(self->db, "SELECT seq FROM cursor WHERE stream = $1", 1, params, out,
                  sizeof out) != 1)
        return -1;
    self->cursor = strtoull(out, NULL, 10);
    return 0;
}

static int s_settle(consumer_t *self);
static void s_settle_before_writes(void *arg);

consumer_t *consumer_new(void *ctx, db_t *db, const keypair_t *keys, const consumer_spec_t *spec) {
    consumer_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->ctx = ctx;
    self->db = db;
    self->keys = *keys;
    self->spec = *spec;
    if (spec->lanes[0] && spec->lanes[1]) {
        for (int i = 0; i < S_OVERLAP_MAX && !self->lanes[0]; i++)
            if (!s_overlapping[i]) {
                s_overlapping[i] = self;
                self->lanes[0] = spec->lanes[0];
                self->lanes[1] = spec->lanes[1];
                self->db = self->lanes[0]; // the consumer's own: never the service's connection
            }
    }
    self->stream = strdup(spec->stream);
    self->router = strdup(spec->router);
    self->pub = spec->pub ? strdup(spec->pub) : NULL;
    self->server_public = strdup(spec->server_public);
    if (!self->spec.batch_max)
        self->spec.batch_max = 500;
    if (!self->spec.poll_interval_ms)
        self->spec.poll_interval_ms = 1000;
    if (!self->spec.timeout_ms)
        self->spec.timeout_ms = 3000;
    self->dealer = transport_client(ctx, ZMQ_DEALER, self->router, keys, self->server_public);
    if (self->pub)
        self->sub = transport_client(ctx, ZMQ_SUB, self->pub, keys, self->server_public);
    if (!self->dealer || (self->pub && !self->sub) || s_load_cursor(self) != 0) {
        log_error("consumer_failed", "stream", spec->stream);
        consumer_destroy(&self);
        return NULL;
    }
    self->due_at = 0; // fetch at once
    log_info("consumer_started", "stream", self->stream);
    return self;
}

void consumer_destroy(consumer_t **self_p) {
    if (!self_p || !*self_p)
        return;
    consumer_t *self = *self_p;
    s_settle(self);
    for (int i = 0; i < S_OVERLAP_MAX; i++)
        if (s_overlapping[i] == self)
            s_overlapping[i] = NULL;
    if (self->dealer)
        zmq_close(self->dealer);
    if (self->sub)
        zmq_close(self->sub);
    free(self->stream);
    free(self->router);
    free(self->pub);
    free(self->server_public);
    free(self);
    *self_p = NULL;
}

int consumer_pollitems(consumer_t *self, zmq_pollitem_t *items) {
    items[0] = (zmq_pollitem_t){self->dealer, 0, ZMQ_POLLIN, 0};
    items[1] = (zmq_pollitem_t){self->sub, 0, self->sub ? ZMQ_POLLIN : 0, 0};
    return 2;
}

int consumer_timeout_ms(consumer_t *self) {
    int64_t now = time_mono_ms();
    int64_t at = self->pending[0] ? self->sent_at + self->spec.timeout_ms : self->due_at;
    return at <= now ? 0 : (int)(at - now);
}

void consumer_wake(consumer_t *self) {
    if (!self->pending[0])
        self->due_at = 0;
}

// Asks for the events after `after` (the cursor, or the end of a batch being applied).
static void s_send_fetch(consumer_t *self, uint64_t after) {
    Cara__Fetch fetch = CARA__FETCH__INIT;
    fetch.stream = self->stream;
    fetch.after = after;
    self->pending_after = after;
    fetch.max = self->spec.batch_max;
    uint8_t *data = NULL;
    size_t len = 0;
    if (envelope_pack(&fetch.base, NULL, NULL, &data, &len, self->pending) != 0) {
        self->pending[0] = '\0';
        return;
    }
    if (zmq_send(self->dealer, data, len, ZMQ_DONTWAIT) < 0)
        self->pending[0] = '\0'; // no peer yet: try again on the timer
    self->sent_at = time_mono_ms();
    if (!self->pending[0])
        self->due_at = self->sent_at + self->spec.poll_interval_ms;
    free(data);
}

static int s_dead_letter(consumer_t *self, uint64_t seq, const Cara__Envelope *env,
                         const Cara__StreamEvent *ev, const char *reason) {
    char seq_s[24];
    snprintf(seq_s, sizeof seq_s, "%" PRIu64, seq);
    const char *values[] = {self->stream,           seq_s,  env ? env->event_id : NULL,
                            env ? env->type : NULL, reason, (const char *)ev->envelope.data};
    int lengths[] = {0, 0, 0, 0, 0, (int)ev->envelope.len};
    int formats[] = {0, 0, 0, 0, 0, 1};
    PGresult *r =
        db_query_bin(self->db,
                     "INSERT INTO dead_letter (stream, seq, event_id, type, reason, payload)"
                     " VALUES ($1, $2, $3, $4, $5, $6)",
                     6, values, lengths, formats, 0);
    if (!r)
        return -1;
    PQclear(r);
    log_warn("dead_letter", "stream", self->stream, "seq", seq_s, "event_id",
             env ? env->event_id : NULL, "type", env ? env->type : NULL, "reason", reason);
    return 0;
}

static int s_cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

// Records event ids ($2) and their seqs ($3) of stream $1 in the inbox.
#define S_INBOX_INSERT                                                                             \
    "INSERT INTO inbox (event_id, stream, seq)"                                                    \
    " SELECT e, $1, s FROM unnest($2::uuid[], $3::bigint[]) AS t(e, s)"

// The batch's decodable event ids and their seqs as two array literals ("{...}") of validated
// UUIDs and numbers (nothing in them can need quoting). Returns how many, or -1 (out of memory;
// nothing to free). *ids and *seqs are the caller's to free.
static long s_batch_arrays(const Cara__Batch *batch, Cara__Envelope **envs, char **ids,
                           char **seqs) {
    size_t n = 0;
    for (size_t i = 0; i < batch->n_events; i++)
        if (envs[i] && uuid_valid(envs[i]->event_id))
            n++;
    *ids = malloc(n * (UUID_STR_LEN + 1) + 3);
    *seqs = malloc(n * 21 + 3);
    if (!*ids || !*seqs) {
        free(*ids);
        free(*seqs);
        return -1;
    }
    size_t li = 0, ls = 0;
    (*ids)[li++] = (*seqs)[ls++] = '{';
    for (size_t i = 0; i < batch->n_events; i++) {
        if (!envs[i] || !uuid_valid(envs[i]->event_id))
            continue;
        li += (size_t)sprintf(*ids + li, "%s%s", li > 1 ? "," : "", envs[i]->event_id);
        ls += (size_t)sprintf(*seqs + ls, "%s%" PRIu64, ls > 1 ? "," : "", batch->events[i]->seq);
    }
    strcpy(*ids + li, "}");
    strcpy(*seqs + ls, "}");
    return (long)n;
}

// Records the event ids of the batch's decodable events in one statement. Sets fresh[i] to 1
// for the first occurrence of each id not seen before (0 otherwise). Returns 0 or -1.
static int s_record_batch(consumer_t *self, const Cara__Batch *batch, Cara__Envelope **envs,
                          char *fresh) {
    memset(fresh, 0, batch->n_events);
    char *ids, *seqs;
    long n = s_batch_arrays(batch, envs, &ids, &seqs);
    if (n <= 0)
        return (int)n;
    uint64_t *new_seqs = NULL;
    int rc = -1;
    const char *values[] = {self->stream, ids, seqs};
    PGresult *r =
        db_query(self->db, S_INBOX_INSERT " ON CONFLICT DO NOTHING RETURNING seq", 3, values);
    if (!r)
        goto cleanup;
    // The seqs of the rows inserted (seqs are unique in a stream): sorted, then looked up.
    int rows = PQntuples(r);
    new_seqs = malloc(((size_t)rows + 1) * sizeof *new_seqs);
    if (!new_seqs)
        goto cleanup;
    for (int j = 0; j < rows; j++)
        new_seqs[j] = strtoull(PQgetvalue(r, j, 0), NULL, 10);
    qsort(new_seqs, (size_t)rows, sizeof *new_seqs, s_cmp_u64);
    for (size_t i = 0; i < batch->n_events; i++) {
        uint64_t seq = batch->events[i]->seq;
        if (envs[i] && uuid_valid(envs[i]->event_id) &&
            bsearch(&seq, new_seqs, (size_t)rows, sizeof *new_seqs, s_cmp_u64))
            fresh[i] = 1;
    }
    rc = 0;
cleanup:
    PQclear(r);
    free(new_seqs);
    free(ids);
    free(seqs);
    return rc;
}

// The fast path's record of the batch's event ids: queued (db_send) with the batch's other
// writes instead of waited for, and every decodable event taken to be fresh. An id applied
// before then fails the INSERT on the inbox key when the writes are read back, and the batch is
// redone carefully, where s_record_batch sorts fresh from seen; so is a batch that repeats an
// id itself. Returns 0 or -1.
static int s_record_batch_queued(consumer_t *self, const Cara__Batch *batch, Cara__Envelope **envs,
                                 char *fresh) {
    char *ids, *seqs;
    long n = s_batch_arrays(batch, envs, &ids, &seqs);
    if (n < 0)
        return -1;
    for (size_t i = 0; i < batch->n_events; i++)
        fresh[i] = envs[i] && uuid_valid(envs[i]->event_id);
    const char *values[] = {self->stream, ids, seqs};
    int rc = n == 0 ? 0 : db_send(self->db, S_INBOX_INSERT, 3, values, NULL, NULL);
    free(ids);
    free(seqs);
    if (self->arm)
        db_before_send(self->db, s_settle_before_writes, self); // see s_start
    return rc;
}

// A queued write of an event failed: a lost connection or a conflict is worth a retry; any
// other failure (a constraint, bad data) will fail every time, so the event is poison.
static apply_result_t s_failed_write(db_t *db, char *reason, size_t size) {
    if (db_error_transient(db))
        return APPLY_RETRY;
    snprintf(reason, size, "write failed (SQLSTATE %s)", db_sqlstate(db));
    return APPLY_POISON;
}

// An apply that met a database failure (db_error_count moved from errors) answers "retry"
// whatever the failure was; one that is not transient (a constraint, a value out of range)
// fails the same way every time, and retrying it would hold back the whole stream: the event
// is poison, with the SQLSTATE as its reason. A last failure that only says an earlier one
// aborted the transaction (25P02) does not say which: the "retry" stands. Returns rc otherwise.
static apply_result_t s_settle_retry(db_t *db, uint64_t errors, apply_result_t rc, char *reason,
                                     size_t size) {
    if (rc != APPLY_RETRY || db_error_count(db) == errors || strcmp(db_sqlstate(db), "25P02") == 0)
        return rc;
    return s_failed_write(db, reason, size);
}

// Hands what the apply functions held back to the flush function: queued if rc is APPLY_OK,
// forgotten otherwise. Returns rc, or what the flush returned.
static apply_result_t s_flush(db_t *db, consumer_flush_fn flush, void *arg, apply_result_t rc) {
    if (!flush)
        return rc;
    apply_result_t frc = flush(db, arg, rc == APPLY_OK);
    return rc == APPLY_OK ? frc : rc;
}

// Applies the batch inside an open transaction. careful: one savepoint per event, so a poison
// event is rolled back alone. Returns applied count, -1 on a transient error, -2 if a poison
// event was met in the fast path (the caller redoes the batch carefully).
static int s_apply_events(consumer_t *self, const Cara__Batch *batch, int careful) {
    int applied = 0;
    size_t n = batch->n_events;
    Cara__Envelope **envs = calloc(n + 1, sizeof *envs);
    char *fresh = malloc(n + 1);
    if (!envs || !fresh) {
        applied = -1;
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++)
        envs[i] = envelope_unpack(batch->events[i]->envelope.data, batch->events[i]->envelope.len);
    // Every event id in one statement (the de-duplication guard), then the applies.
    if ((careful ? s_record_batch(self, batch, envs, fresh)
                 : s_record_batch_queued(self, batch, envs, fresh)) != 0) {
        applied = -1;
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        const Cara__StreamEvent *ev = batch->events[i];
        Cara__Envelope *env = envs[i];
        char reason[256] = "";
        apply_result_t rc = APPLY_POISON;
        if (!env)
            snprintf(reason, sizeof reason, "undecodable envelope");
        else if (!uuid_valid(env->event_id))
            snprintf(reason, sizeof reason, "envelope event_id is not a UUID");
        else if (!fresh[i])
            continue; // applied before under another seq: exactly once still
        else {
            if (careful && db_exec(self->db, "SAVEPOINT apply_event", 0, NULL) != 0) {
                applied = -1;
                goto cleanup;
            }
            uint64_t errors = db_error_count(self->db);
            rc = self->spec.apply(self->db, env, ev->seq, self->spec.arg, reason, sizeof reason);
            if (careful)
                rc = s_flush(self->db, self->spec.flush, self->spec.arg, rc);
            // Statements the apply function queued (db_send) are read back here in careful
            // mode, so a failing one is pinned on its own event.
            if (rc == APPLY_OK && careful && db_sync(self->db) != 0)
                rc = s_failed_write(self->db, reason, sizeof reason);
            if (rc == APPLY_OK && careful &&
                db_exec(self->db, "RELEASE SAVEPOINT apply_event", 0, NULL) != 0)
                rc = APPLY_RETRY;
            // The apply or the RELEASE: a failure that is not transient is poison.
            if (careful)
                rc = s_settle_retry(self->db, errors, rc, reason, sizeof reason);
            if (rc == APPLY_POISON && careful &&
                db_exec(self->db, "ROLLBACK TO SAVEPOINT apply_event", 0, NULL) != 0)
                rc = APPLY_RETRY;
        }
        if (rc == APPLY_RETRY) {
            applied = -1;
            goto cleanup;
        }
        if (rc == APPLY_POISON) {
            if (!careful) {
                applied = -2;
                goto cleanup;
            }
            if (!reason[0])
                snprintf(reason, sizeof reason, "rejected by the consumer");
            if (s_dead_letter(self, ev->seq, env, ev, reason) != 0) {
                applied = -1;
                goto cleanup;
            }
            continue;
        }
        applied++;
    }
cleanup:
    for (size_t i = 0; envs && i < n; i++)
        if (envs[i])
            cara__envelope__free_unpacked(envs[i], NULL);
    free(envs);
    free(fresh);
    return applied;
}

// Applies a batch and moves the cursor to batch->last, all in one transaction.
// Returns the number applied or -1.
static int s_apply_batch(consumer_t *self, const Cara__Batch *batch) {
    if (batch->last <= self->cursor && batch->n_events == 0)
        return 0;
    for (int careful = 0; careful <= 1; careful++) {
        // BEGIN is queued: it travels with the batch's first statement.
        if (db_ensure(self->db) != 0 || db_send(self->db, "BEGIN", 0, NULL, NULL, NULL) != 0)
            return -1;
        // The fast path gathers the apply functions' single-row INSERTs into multi-row ones
        // (db_gather); a row that fails there, even one sent out of its order, is met again
        // in the careful pass, which sends each event's statements as they come.
        db_gather(self->db, !careful);
        if (!careful)
            log_hold(); // written once the batch is committed: a redo logs its own
        int applied = s_apply_events(self, batch, careful);
        if (!careful && applied >= 0 &&
            s_flush(self->db, self->spec.flush, self->spec.arg, APPLY_OK) != APPLY_OK)
            applied = -1;
        else if (applied < 0)
            s_flush(self->db, self->spec.flush, self->spec.arg, APPLY_RETRY);
        db_gather(self->db, false);
        // The cursor moves only from where we think it is: a second instance of this consumer
        // cannot move it behind our back. Its UPDATE also reads back every write the apply
        // functions queued (the fast path's), in the same round trip; a failure that is not
        // transient means some event is poison: redo the batch carefully.
        char last_s[24], cur_s[24];
        snprintf(last_s, sizeof last_s, "%" PRIu64, batch->last);
        snprintf(cur_s, sizeof cur_s, "%" PRIu64, self->cursor);
        const char *values[] = {self->stream, last_s, cur_s};
        PGresult *r = NULL;
        if (applied >= 0) {
            r = db_query(self->db,
                         "UPDATE cursor SET seq = $2, updated_at = now()"
                         " WHERE stream = $1 AND seq = $3",
                         3, values);
            if (!r && !careful) {
                char reason[64];
                applied = s_failed_write(self->db, reason, sizeof reason) == APPLY_POISON ? -2 : -1;
            }
        }
        // A fast pass that failed for good (an event id applied before fails the queued inbox
        // INSERT, and may surface in any read of the pipeline): redo the batch carefully.
        if (applied == -1 && !careful && !db_error_transient(self->db))
            applied = -2;
        if (applied == -2) {
            log_discard();
            log_info("batch_applied_carefully", "stream", self->stream, "sqlstate",
                     db_sqlstate(self->db));
            db_rollback(self->db);
            continue;
        }
        if (applied < 0) {
            log_discard();
            db_rollback(self->db);
            return -1;
        }
        int answered = r != NULL, moved = r && atoi(PQcmdTuples(r)) == 1;
        if (r)
            PQclear(r);
        if (!moved) {
            log_discard();
            db_rollback(self->db);
            s_error(self,
                    answered ? "cursor moved by someone else; reloading" : "cursor update failed");
            s_load_cursor(self);
            return -1;
        }
        if (db_commit(self->db) != 0) {
            log_discard();
            return -1;
        }
        log_release();
        self->cursor = batch->last;
        s_forget_seen(self);
        return applied;
    }
    return -1;
}

// --- overlapped batches (spec.lanes) -----------------------------------------------------
// With two connections of its own a consumer does not wait for a batch's COMMIT: it goes back to
// the loop, and the next batch is decoded and applied (its writes gathered on the client) while
// the server still runs the last one. It stays exactly as safe as one batch at a time:
// - A batch's BEGIN and inbox INSERT (event ids no other batch holds) go out at once; whatever
//   it sends after them (its writes, which take row locks, or a read) waits until every batch
//   in flight, of any consumer of this process, was read back (db_before_send). So no two
//   batches ever wait for each other's locks.
// - A batch's cursor UPDATE starts from the end of the batch before it, and fails the whole
//   transaction (a division by zero, 22012) if the cursor is not there: a batch never commits
//   unless everything before it did.
// - Any failure sends the consumer back to one batch at a time (s_apply_batch: the fast pass,
//   then carefully, with dead letters), from the cursor in the database.
#define S_CURSOR_ADVANCE                                                                           \
    "WITH moved AS (UPDATE cursor SET seq = $2, updated_at = now()"                                \
    " WHERE stream = $1 AND seq = $3 RETURNING 1) SELECT 1 / count(*) FROM moved"

// Where the next batch starts: the end of the one in flight, or the cursor.
static uint64_t s_next_from(const consumer_t *self) {
    return self->flight.batch ? self->flight.batch->last : self->cursor;
}

// Reads the batch in flight back. Returns the events it applied (0 if none was in flight), or -1:
// it failed and nothing of it was kept; the next batch goes alone, from the cursor in the
// database (reloaded here if reload, else by the caller, once the consumer's connection is free).
static int s_settle_flight(consumer_t *self, int reload) {
    if (!self->flight.batch)
        return 0;
    int ok = db_commit_finish(self->flight.db) == 0;
    if (ok) {
        log_held_write(&self->flight.held);
        self->cursor = self->flight.batch->last;
        s_forget_seen(self);
    } else {
        log_held_drop(&self->flight.held);
        s_error(self, strcmp(db_sqlstate(self->flight.db), "22012") == 0
                          ? "cursor moved by someone else; reloading"
                          : "apply failed; the next batch goes alone");
        self->sync_next = 1;
        // A statement of the batch failed, so the server skipped its COMMIT and the connection
        // is still in the aborted transaction: end it, or every later batch there fails too.
        db_rollback(self->flight.db);
    }
    cara__batch__free_unpacked(self->flight.batch, NULL);
    self->flight.batch = NULL;
    if (!ok && reload)
        s_load_cursor(self);
    return ok ? self->flight.applied : -1;
}

static int s_settle(consumer_t *self) {
    return s_settle_flight(self, 1);
}

// Settles the other consumers' batches in flight (a failure there is theirs to handle).
static void s_settle_others(const consumer_t *self) {
    for (int i = 0; i < S_OVERLAP_MAX; i++)
        if (s_overlapping[i] && s_overlapping[i] != self)
            s_settle(s_overlapping[i]);
}

// The db_before_send hook of a batch being started: before its first write goes out, every
// batch in flight is read back. This consumer's own is settled without reloading the cursor
// (that would need the connection that is sending); s_start reloads it if it failed.
static void s_settle_before_writes(void *arg) {
    consumer_t *self = arg;
    self->early = 1;
    self->early_mine = s_settle_flight(self, 0);
    s_settle_others(self);
}

// Starts the batch on the next lane and leaves its COMMIT in flight (the consumer then owns the
// batch). *settled: what the batch before it applied. Returns 1 if started; 0 if it must go
// alone (nothing of it was kept); -1 if the batch before it failed (so must this one).
static int s_start(consumer_t *self, Cara__Batch *batch, int *settled) {
    db_t *db = self->lanes[self->lane];
    uint64_t from = s_next_from(self);
    int overlapping = self->flight.batch != NULL;
    *settled = 0;
    self->db = db;
    self->early = 0;
    self->arm = 1; // s_record_batch_queued sets the hook once the inbox INSERT is out
    log_hold();    // written once the batch is committed
    int applied = -1;
    if (db_ensure(db) == 0 && db_send(db, "BEGIN", 0, NULL, NULL, NULL) == 0) {
        db_gather(db, true);
        applied = s_apply_events(self, batch, 0);
        if (applied >= 0 && s_flush(db, self->spec.flush, self->spec.arg, APPLY_OK) != APPLY_OK)
            applied = -1;
        else if (applied < 0)
            s_flush(db, self->spec.flush, self->spec.arg, APPLY_RETRY);
        db_gather(db, false);
    }
    self->arm = 0;
    db_before_send(db, NULL, NULL);
    // Whatever is in flight is read back before this batch's writes go: now, unless it was.
    int mine = self->early ? self->early_mine : s_settle_flight(self, 0);
    if (!self->early)
        s_settle_others(self);
    if (mine > 0)
        *settled = mine;
    if (applied >= 0 && mine >= 0) {
        char last_s[24], from_s[24];
        snprintf(last_s, sizeof last_s, "%" PRIu64, batch->last);
        snprintf(from_s, sizeof from_s, "%" PRIu64, from);
        const char *values[] = {self->stream, last_s, from_s};
        if (db_send(db, S_CURSOR_ADVANCE, 3, values, NULL, NULL) == 0 && db_commit_send(db) == 0) {
            self->flight.batch = batch;
            self->flight.db = db;
            self->flight.applied = applied;
            self->flight.held = log_detach();
            self->overlapped += (uint64_t)overlapping;
            self->lane ^= 1;
            self->db = self->lanes[0];
            return 1;
        }
        db_commit_finish(db); // read back what was sent; it failed
    }
    db_rollback(db); // nothing of it stays, and the connection is ready for the next batch
    log_discard();
    self->db = self->lanes[0];
    if (mine < 0)
        s_load_cursor(self);
    return mine < 0 ? -1 : 0;
}

// Applies a batch with lanes: started and left in flight if it can be, else alone after every
// batch in flight. Takes the batch (*batch_p = NULL) if it is left in flight. Returns the events
// applied by what was settled here, or -1.
static int s_apply_overlapped(consumer_t *self, Cara__Batch **batch_p) {
    // Nothing new (an idle poll): the batch in flight, this consumer's or another's, stays so.
    if ((*batch_p)->n_events == 0 && (*batch_p)->last <= s_next_from(self))
        return 0;
    int settled = 0;
    if (!self->sync_next && (*batch_p)->n_events > 0) {
        int started = s_start(self, *batch_p, &settled);
        if (started == 1) {
            *batch_p = NULL;
            // Nothing more fetched: settle now, so the cursor is where the stream is.
            if (!self->pending[0]) {
                int last = s_settle(self);
                return last < 0 ? -1 : settled + last;
            }
            return settled;
        }
        if (started < 0)
            return -1;
    }
    int mine = s_settle(self);
    s_settle_others(self);
    if (mine < 0)
        return -1;
    int applied = s_apply_batch(self, *batch_p);
    if (applied < 0)
        return -1;
    self->sync_next = 0;
    return settled + mine + applied;
}

int consumer_settle(consumer_t *self) {
    return s_settle(self);
}

// Handles the reply to our Fetch. Returns applied count or -1.
static int s_on_reply(consumer_t *self) {
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, self->dealer, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&msg);
        return 0;
    }
    Cara__Envelope *env = envelope_unpack(zmq_msg_data(&msg), zmq_msg_size(&msg));
    zmq_msg_close(&msg);
    if (!env)
        return 0;
    if (!self->pending[0] || strcmp(env->correlation_id, self->pending) != 0) {
        cara__envelope__free_unpacked(env, NULL); // a stale reply to an abandoned request
        return 0;
    }
    self->pending[0] = '\0';
    if (self->pending_after != s_next_from(self)) {
        // A fetch sent ahead from the end of a batch that then failed to apply: ask again.
        cara__envelope__free_unpacked(env, NULL);
        return 0;
    }
    Cara__Reply *reply = (Cara__Reply *)envelope_payload(env, &cara__reply__descriptor);
    cara__envelope__free_unpacked(env, NULL);
    Cara__Batch *batch = NULL;
    if (reply && reply->status == CARA__REPLY__STATUS__OK)
        batch = cara__batch__unpack(NULL, reply->payload.len, reply->payload.data);
    int rc = -1;
    if (!batch) {
        s_error(self, reply && reply->message && *reply->message ? reply->message
                                                                 : "fetch refused or malformed");
    } else {
        // More is waiting: ask for the next batch now, so the producer reads it while this one
        // is applied (the reply is used only if the cursor got to batch->last).
        if (batch->n_events > 0 && batch->last > s_next_from(self) && batch->last < batch->head)
            s_send_fetch(self, batch->last);
        if (batch->head_below_after)
            s_went_back(self, batch->stream_head);
        uint64_t head = batch->head;
        unsigned errors = self->errors;
        rc = self->lanes[0] ? s_apply_overlapped(self, &batch) : s_apply_batch(self, batch);
        s_saw_head(self, head);
        if (rc < 0 && self->errors == errors) // no more specific error was said
            s_error(self, "apply failed");
    }
    int64_t now = time_mono_ms();
    if (rc >= 0) {
        self->backoff_ms = 0;
        s_clear_error(self);
        // More waiting upstream: fetch again at once; else wait for a Head or the timer.
        self->due_at = self->cursor < self->head ? now : now + self->spec.poll_interval_ms;
    } else {
        self->backoff_ms = self->backoff_ms ? self->backoff_ms * 2 : 100;
        if (self->backoff_ms > 5000)
            self->backoff_ms = 5000;
        self->due_at = now + self->backoff_ms;
    }
    if (batch)
        cara__batch__free_unpacked(batch, NULL);
    if (reply)
        cara__reply__free_unpacked(reply, NULL);
    return rc;
}

static void s_on_head(consumer_t *self) {
    zmq_msg_t msg;
    while (1) {
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, self->sub, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            return;
        }
        Cara__Envelope *env = envelope_unpack(zmq_msg_data(&msg), zmq_msg_size(&msg));
        zmq_msg_close(&msg);
        Cara__Head *head = (Cara__Head *)envelope_payload(env, &cara__head__descriptor);
        if (head && strcmp(head->stream, self->stream) == 0) {
            s_check_head(self, head->seq);
            s_saw_head(self, head->seq);
            if (head->seq > self->cursor && !self->pending[0])
                self->due_at = 0;
        }
        if (head)
            cara__head__free_unpacked(head, NULL);
        if (env)
            cara__envelope__free_unpacked(env, NULL);
    }
}

int consumer_process(consumer_t *self, zmq_pollitem_t *items) {
    int applied = 0;
    if (items[1].revents & ZMQ_POLLIN)
        s_on_head(self);
    if (items[0].revents & ZMQ_POLLIN) {
        int rc = s_on_reply(self);
        if (rc < 0)
            applied = -1;
        else
            applied += rc;
    }
    int64_t now = time_mono_ms();
    if (self->pending[0] && now - self->sent_at >= self->spec.timeout_ms) {
        // Lazy Pirate: the producer did not answer; reconnect and ask again.
        s_error(self, "fetch timed out; reconnecting");
        int settled = s_settle(self);
        if (settled > 0)
            applied += settled;
        zmq_close(self->dealer);
        self->dealer =
            transport_client(self->ctx, ZMQ_DEALER, self->router, &self->keys, self->server_public);
        self->pending[0] = '\0';
        self->due_at = now;
        if (!self->dealer)
            return -1;
    }
    if (!self->pending[0] && now >= self->due_at)
        s_send_fetch(self, s_next_from(self));
    return applied;
}

uint64_t consumer_cursor(consumer_t *self) {
    return self->cursor;
}
uint64_t consumer_overlapped(consumer_t *self) {
    return self->overlapped;
}
int64_t consumer_oldest_unapplied_s(consumer_t *self) {
    if (self->n_seen == 0 || self->cursor >= self->head)
        return 0;
    int64_t age_ms = time_now_us() / 1000 - self->seen[0].at_ms;
    return age_ms > 0 ? age_ms / 1000 : 0;
}

uint64_t consumer_upstream_head(consumer_t *self) {
    // Once the stream went back, the head as the producer announces it, not the highest seen.
    return self->went_back ? self->pub_head : self->head;
}
const char *consumer_stream(consumer_t *self) {
    return self->stream;
}
const char *consumer_last_error(consumer_t *self) {
    return self->last_error;
}

int consumer_replay_dead_letter(db_t *db, int64_t id, consumer_apply_fn apply,
                                consumer_flush_fn flush, void *arg) {
    char id_s[24];
    snprintf(id_s, sizeof id_s, "%" PRId64, id);
    const char *values[] = {id_s};
    // In a gathering pass (a request batch's optimistic pass), rows held for the requests before
    // this one go out before the savepoint (they are not this replay's to undo), and this
    // replay's own before any rollback to it (db_append).
    if (db_append_flush(db) != 0 || db_exec(db, "SAVEPOINT replay_dead_letter", 0, NULL) != 0)
        return -1;
    PGresult *r = db_query_bin(db,
                               "SELECT seq, payload FROM dead_letter WHERE id = $1"
                               " AND replayed_at IS NULL FOR UPDATE",
                               1, values, NULL, NULL, 1);
    if (!r || PQntuples(r) != 1) {
        int gone = r != NULL; // replayed meanwhile (another operator), or no such row
        if (r)
            PQclear(r);
        if (db_exec(db, "ROLLBACK TO SAVEPOINT replay_dead_letter", 0, NULL) != 0)
            return -1;
        return gone ? 3 : -1;
    }
    uint64_t seq_be;
    memcpy(&seq_be, PQgetvalue(r, 0, 0), sizeof seq_be);
    Cara__Envelope *env =
        envelope_unpack((const uint8_t *)PQgetvalue(r, 0, 1), (size_t)PQgetlength(r, 0, 1));
    PQclear(r);
    char reason[256] = "undecodable envelope";
    uint64_t errors = db_error_count(db);
    apply_result_t rc =
        env ? apply(db, env, be64toh(seq_be), arg, reason, sizeof reason) : APPLY_POISON;
    rc = s_flush(db, flush, arg, rc);
    // As in the careful pass: a failure that is not transient is poison.
    rc = s_settle_retry(db, errors, rc, reason, sizeof reason);
    // What the apply function queued (db_send) is read back here, so a failing write is this
    // event's reason, as in the consumer's careful pass.
    if (rc == APPLY_OK && db_sync(db) != 0)
        rc = s_failed_write(db, reason, sizeof reason);
    if (env)
        cara__envelope__free_unpacked(env, NULL);
    if (rc != APPLY_OK) {
        if (db_append_flush(db) != 0 ||
            db_exec(db, "ROLLBACK TO SAVEPOINT replay_dead_letter", 0, NULL) != 0)
            return -1;
        // Poison again (1), or a retry (2: a transient failure, or an apply that waits for
        // something else, a configuration value say): the reason is updated either way, and
        // the other dead letters of the replay go on.
        const char *upd[] = {id_s, reason};
        if (db_exec(db, "UPDATE dead_letter SET reason = $2 WHERE id = $1", 2, upd) != 0)
            return -1;
        return rc == APPLY_RETRY ? 2 : 1;
    }
    if (db_exec(db, "UPDATE dead_letter SET replayed_at = now() WHERE id = $1", 1, values) != 0 ||
        db_exec(db, "RELEASE SAVEPOINT replay_dead_letter", 0, NULL) != 0)
        return -1;
    return 0;
}
