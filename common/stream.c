#include "cara/stream.h"

#include <endian.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cara/log.h"

// Events appended (or queued) by this process: a service asks for its head only when it moved.
static uint64_t s_appended;

uint64_t stream_appended(void) {
    return s_appended;
}

// Appends one event, waiting for its seq (send = 0) or queued in the pipeline (send = 1).
// Returns the seq (0 when queued), or -1.
static int64_t s_append(db_t *db, int send, const ProtobufCMessage *payload, const char *key,
                        const char *scope, const char *correlation_id, char *event_id_out) {
    char id[UUID_STR_LEN];
    uint8_t *data = NULL;
    size_t len = 0;
    if (envelope_pack(payload, NULL, correlation_id, &data, &len, id) != 0)
        return -1;
    const char *values[] = {id, payload->descriptor->name, key, scope, (const char *)data};
    int lengths[] = {0, 0, 0, 0, (int)len};
    int formats[] = {0, 0, 0, 0, 1};
    int64_t seq = -1;
    if (send) {
        // libpq copies the parameters into its buffer: data may go once sent.
        // Held while gathering (db_append): the batch never reads the outbox back.
        seq = db_append(db,
                        "INSERT INTO outbox (event_id, type, key, scope, payload)"
                        " VALUES ($1, $2, $3, $4, $5)",
                        5, values, lengths, formats) == 0
                  ? 0
                  : -1;
    } else if (db_append_flush(db) == 0) { // behind the events held before it, in seq order
        PGresult *r = db_query_bin(db,
                                   "INSERT INTO outbox (event_id, type, key, scope, payload)"
                                   " VALUES ($1, $2, $3, $4, $5) RETURNING seq",
                                   5, values, lengths, formats, 0);
        if (r) {
            seq = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
            PQclear(r);
        }
    }
    free(data);
    if (seq >= 0)
        s_appended++;
    if (seq >= 0 && event_id_out)
        strcpy(event_id_out, id);
    return seq;
}

int64_t outbox_append(db_t *db, const ProtobufCMessage *payload, const char *key, const char *scope,
                      const char *correlation_id, char *event_id_out) {
    return s_append(db, 0, payload, key, scope, correlation_id, event_id_out);
}

int outbox_send(db_t *db, const ProtobufCMessage *payload, const char *key, const char *scope,
                const char *correlation_id, char *event_id_out) {
    return s_append(db, 1, payload, key, scope, correlation_id, event_id_out) == 0 ? 0 : -1;
}

void stream_batch_clear(Cara__Batch *batch) {
    for (size_t i = 0; i < batch->n_events; i++) {
        free(batch->events[i]->envelope.data);
        free(batch->events[i]);
    }
    free(batch->events);
    batch->events = NULL;
    batch->n_events = 0;
}

static uint64_t s_be64(const char *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return be64toh(v);
}

int stream_fetch(db_t *db, uint64_t after, uint32_t max, const char *scope, Cara__Batch *batch) {
    char after_s[24], max_s[16];
    // seq is a bigint: a position past INT64_MAX (a peer's Fetch.after) means "after everything".
    snprintf(after_s, sizeof after_s, "%" PRIu64, after > INT64_MAX ? (uint64_t)INT64_MAX : after);
    snprintf(max_s, sizeof max_s, "%u", max ? max : 1);
    const char *values[] = {after_s, max_s, scope};
    // One statement, one snapshot: the head and the rows come from the same view of the table,
    // so "last = head" never claims rows that committed after the rows were read.
    PGresult *r = db_query_bin(
        db,
        "SELECT h.head, o.seq, o.payload FROM (SELECT coalesce(max(seq), 0) AS head FROM outbox) h"
        " LEFT JOIN LATERAL (SELECT seq, payload FROM outbox WHERE seq > $1::bigint"
        "   AND seq <= h.head AND ($3::text IS NULL OR scope = $3)"
        "   ORDER BY seq LIMIT $2::int) o ON true ORDER BY o.seq",
        3, values, NULL, NULL, 1);
    if (!r)
        return -1;
    int rows = PQntuples(r);
    batch->events = calloc((size_t)rows + 1, sizeof *batch->events);
    if (!batch->events) {
        PQclear(r);
        return -1;
    }
    batch->n_events = 0;
    uint64_t head = 0;
    for (int i = 0; i < rows; i++) {
        head = s_be64(PQgetvalue(r, i, 0));
        if (PQgetisnull(r, i, 1))
            continue;
        Cara__StreamEvent *ev = malloc(sizeof *ev);
        int len = PQgetlength(r, i, 2);
        uint8_t *data = malloc(len ? (size_t)len : 1);
        if (!ev || !data) {
            free(ev);
            free(data);
            stream_batch_clear(batch);
            PQclear(r);
            return -1;
        }
        cara__stream_event__init(ev);
        ev->seq = s_be64(PQgetvalue(r, i, 1));
        memcpy(data, PQgetvalue(r, i, 2), (size_t)len);
        ev->envelope.data = data;
        ev->envelope.len = (size_t)len;
        batch->events[batch->n_events++] = ev;
    }
    PQclear(r);
    // Below `after` only if the sequence that numbers the stream is too: a producer restored as
    // OPERATIONS says (outbox_seq moved past every seq served) has a head below a cursor until its
    // first new event, and goes on past it.
    if (head < after) {
        char next[24] = "";
        int got = db_scalar(db, "SELECT last_value FROM outbox_seq", 0, NULL, next, sizeof next);
        if (got < 0) {
            stream_batch_clear(batch);
            return -1;
        }
        batch->head_below_after = got == 1 && strtoull(next, NULL, 10) < after;
        batch->stream_head = head;
    }
    batch->head = head < after ? after : head;
    if (batch->n_events == (size_t)(max ? max : 1))
        batch->last = batch->events[batch->n_events - 1]->seq;
    else
        batch->last = batch->head;
    return 0;
}

int64_t stream_head(db_t *db) {
    char out[24];
    if (db_scalar(db, "SELECT coalesce(max(seq), 0) FROM outbox", 0, NULL, out, sizeof out) != 1)
        return -1;
    return strtoll(out, NULL, 10);
}
