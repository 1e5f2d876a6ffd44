// A stream consumer: pulls "events after my cursor" from a producer's ROUTER, applies each
// batch and moves its cursor in the same transaction, de-duplicates event ids, sends events
// it cannot apply to dead_letter with the reason, wakes on the producer's Head and also polls
// on a timer. Runs inside its owner's zmq_poll loop (no threads).
#ifndef CARA_CONSUMER_H
#define CARA_CONSUMER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "cara/db.h"
#include "cara/envelope.h"
#include "cara/keys.h"

typedef enum {
    APPLY_OK = 0,     // applied (or deliberately ignored)
    APPLY_POISON = 1, // can never be applied: dead-letter it with the reason, move on
    APPLY_RETRY = -1, // transient (database): roll back the batch and try again later
} apply_result_t;

// Applies one event inside the consumer's open transaction. Write a reason for POISON.
// It may queue writes whose results it does not need with db_send: the consumer reads them back
// before the cursor moves (one round trip for the batch), and pins a failing one on its event.
typedef apply_result_t (*consumer_apply_fn)(db_t *db, const Cara__Envelope *env, uint64_t seq,
                                            void *arg, char *reason, size_t reason_size);

// Called after apply functions ran, for an apply function that holds writes back to merge them
// (several events about one row written once). write=true: queue what is held (db_send), as
// if the events' apply functions had; false: forget it (what it belonged to is rolled back).
// The consumer calls it once per batch, and after each event when it goes carefully, so a
// failing write is still pinned on its own event. Returns APPLY_OK or APPLY_RETRY.
typedef apply_result_t (*consumer_flush_fn)(db_t *db, void *arg, bool write);

typedef struct {
    const char *stream;        // producer's stream name, e.g. "intake"
    const char *router;        // producer's ROUTER endpoint
    const char *pub;           // producer's PUB endpoint (may be NULL: timer only)
    const char *server_public; // producer's CURVE public key
    consumer_apply_fn apply;
    consumer_flush_fn flush; // may be NULL
    void *arg;
    uint32_t batch_max;   // events per fetch (default 500)
    int poll_interval_ms; // fetch at least this often (default 1000)
    int timeout_ms;       // reply timeout before reconnecting (default 3000)
    // Two connections of the consumer's own (the caller's to close, after the consumer), or
    // NULL: with them a batch's COMMIT is left in flight while the next batch is applied (see
    // consumer.c). Only for apply and flush functions that write through their db argument
    // alone; the consumer then never uses the db given to consumer_new.
    db_t *lanes[2];
} consumer_spec_t;

typedef struct consumer_t consumer_t;

// Creates the consumer, loads (or creates) its cursor row. Returns NULL with the reason logged.
consumer_t *consumer_new(void *ctx, db_t *db, const keypair_t *keys, const consumer_spec_t *spec);
void consumer_destroy(consumer_t **self_p);
// Fills items[0..1] with its sockets for zmq_poll. Returns the count (2).
int consumer_pollitems(consumer_t *self, zmq_pollitem_t *items);
// Milliseconds until the consumer next needs attention without socket activity.
int consumer_timeout_ms(consumer_t *self);
// Handles socket readiness in items (as filled and polled) and due timers. Returns the number
// of events applied (>= 0), or -1 on an error (logged; it retries later by itself).
int consumer_process(consumer_t *self, zmq_pollitem_t *items);
// Reads back the batch whose COMMIT is in flight (lanes), if any, before the caller uses the
// database for something else. Returns the events it applied (0 if none), or -1 (it failed,
// was rolled back and is applied again later).
int consumer_settle(consumer_t *self);
// Asks for the next batch now (e.g. after a wake-up from elsewhere).
void consumer_wake(consumer_t *self);

uint64_t consumer_cursor(consumer_t *self);
// Batches started (lanes) while the one before was still committing.
uint64_t consumer_overlapped(consumer_t *self);
uint64_t consumer_upstream_head(consumer_t *self);
// Seconds the oldest upstream event not yet applied has been waiting, at least (counted from
// when this consumer first heard of a head past it); 0 when caught up.
int64_t consumer_oldest_unapplied_s(consumer_t *self);
const char *consumer_stream(consumer_t *self);
const char *consumer_last_error(consumer_t *self);

// Re-applies a dead letter by id inside the caller's transaction (under a savepoint) with the
// given apply (and flush, may be NULL) functions and marks it replayed. Returns 0 on success, 1
// if it is still poison, 2 if it still fails for now (a retry: transient, or waiting for a
// configuration value; reason updated either way), 3 if it is no longer waiting (replayed
// meanwhile, or no such id), -1 if the database failed.
int consumer_replay_dead_letter(db_t *db, int64_t id, consumer_apply_fn apply,
                                consumer_flush_fn flush, void *arg);

#endif
