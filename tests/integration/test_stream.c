// The outbox never lets a reader skip a row that commits late: sequence numbers become visible
// in order. First the two-transaction case step by step, then many concurrent writers against
// a reader that fetches "after my cursor" the whole time.
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cara/consumer.h"
#include "cara/envelope.h"
#include "cara/migrate.h"
#include "cara/stream.h"
#include "harness.h"

static harness_t *h;
static char s_conninfo[700];

static db_t *s_connect(void) {
    db_t *db = db_connect(s_conninfo, "streamtest", 5000);
    assert_non_null(db);
    return db;
}

static int setup(void **state) {
    (void)state;
    h = harness_new("stream");
    if (!h)
        return -1;
    db_t *db = harness_db(h, "streamtest");
    if (!db || db_exec(db, "CREATE SCHEMA streamtest", 0, NULL) != 0 ||
        migrate_run(db, "core", core_migrations) < 0)
        return -1;
    char dbname[128];
    db_scalar(db, "SELECT current_database()", 0, NULL, dbname, sizeof dbname);
    snprintf(s_conninfo, sizeof s_conninfo, "%s dbname=%s", harness_superuser_conninfo(h), dbname);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    harness_destroy(&h);
    return 0;
}

static int64_t s_append(db_t *db, uint64_t n) {
    Cara__Fetch msg = CARA__FETCH__INIT;
    msg.stream = "t";
    msg.after = n;
    return outbox_append(db, &msg.base, NULL, NULL, NULL, NULL);
}

static void test_late_commit_is_not_skipped(void **state) {
    (void)state;
    db_t *a = s_connect(), *b = s_connect(), *reader = s_connect();
    db_exec(reader, "TRUNCATE outbox", 0, NULL);
    int64_t base = stream_head(reader);
    // A draws a seq and stays open.
    assert_int_equal(db_begin(a), 0);
    int64_t seq_a = s_append(a, 1);
    assert_true(seq_a > 0);
    // B starts an append concurrently (async: it must wait for A, not overtake it).
    assert_int_equal(db_begin(b), 0);
    Cara__Fetch msg = CARA__FETCH__INIT;
    msg.stream = "t";
    uint8_t *data;
    size_t len;
    char id[UUID_STR_LEN];
    uuid_new(id);
    assert_int_equal(envelope_pack(&msg.base, id, NULL, &data, &len, NULL), 0);
    const char *values[] = {id, "cara.Fetch", (const char *)data};
    int lengths[] = {0, 0, (int)len}, formats[] = {0, 0, 1};
    assert_int_equal(PQsendQueryParams(db_conn(b),
                                       "INSERT INTO outbox (event_id, type, payload)"
                                       " VALUES ($1, $2, $3) RETURNING seq",
                                       3, NULL, values, lengths, formats, 0),
                     1);
    free(data);
    usleep(200000);
    PQconsumeInput(db_conn(b));
    assert_int_equal(PQisBusy(db_conn(b)), 1); // B is waiting behind A
    Cara__Batch batch = CARA__BATCH__INIT;
    assert_int_equal(stream_fetch(reader, (uint64_t)base, 100, NULL, &batch), 0);
    assert_int_equal(batch.n_events, 0); // nothing visible, and the cursor may not move
    assert_int_equal(batch.last, (uint64_t)base);
    stream_batch_clear(&batch);
    // A commits; B now draws the next seq but has not committed.
    assert_int_equal(db_commit(a), 0);
    PGresult *r;
    int64_t seq_b = -1;
    while ((r = PQgetResult(db_conn(b))) != NULL) {
        if (PQresultStatus(r) == PGRES_TUPLES_OK)
            seq_b = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
    }
    assert_true(seq_b > seq_a);
    assert_int_equal(stream_fetch(reader, (uint64_t)base, 100, NULL, &batch), 0);
    assert_int_equal(batch.n_events, 1);
    assert_int_equal(batch.events[0]->seq, (uint64_t)seq_a);
    uint64_t cursor = batch.last;
    assert_int_equal(cursor, (uint64_t)seq_a);
    stream_batch_clear(&batch);
    // B commits late; the reader still gets it after its cursor.
    assert_int_equal(db_commit(b), 0);
    assert_int_equal(stream_fetch(reader, cursor, 100, NULL, &batch), 0);
    assert_int_equal(batch.n_events, 1);
    assert_int_equal(batch.events[0]->seq, (uint64_t)seq_b);
    stream_batch_clear(&batch);
    db_destroy(&a);
    db_destroy(&b);
    db_destroy(&reader);
}

#define WRITERS 8
#define TX_PER_WRITER 150

static void *s_writer(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    db_t *db = db_connect(s_conninfo, "streamtest", 5000);
    for (int i = 0; db && i < TX_PER_WRITER; i++) {
        if (db_begin(db) != 0)
            break;
        int n = 1 + (int)(rand_r(&seed) % 4);
        for (int k = 0; k < n; k++)
            s_append(db, (uint64_t)k);
        usleep((useconds_t)(rand_r(&seed) % 3000)); // hold the transaction open a while
        if (rand_r(&seed) % 10 == 0)
            db_rollback(db); // some never commit: their seqs are gaps, not holes
        else
            db_commit(db);
    }
    db_destroy(&db);
    return NULL;
}

typedef struct {
    volatile int stop;
    uint64_t *seen;
    size_t n_seen, cap;
    int out_of_order;
} reader_t;

static void *s_reader(void *arg) {
    reader_t *rd = arg;
    db_t *db = db_connect(s_conninfo, "streamtest", 5000);
    uint64_t cursor = 0;
    int idle_after_stop = 0;
    while (db && idle_after_stop < 3) {
        Cara__Batch batch = CARA__BATCH__INIT;
        if (stream_fetch(db, cursor, 37, NULL, &batch) != 0)
            break;
        for (size_t i = 0; i < batch.n_events; i++) {
            uint64_t seq = batch.events[i]->seq;
            if (seq <= cursor || (rd->n_seen && seq <= rd->seen[rd->n_seen - 1]))
                rd->out_of_order++;
            if (rd->n_seen == rd->cap) {
                rd->cap = rd->cap ? rd->cap * 2 : 1024;
                rd->seen = realloc(rd->seen, rd->cap * sizeof *rd->seen);
            }
            rd->seen[rd->n_seen++] = seq;
        }
        cursor = batch.last;
        int empty = batch.n_events == 0;
        stream_batch_clear(&batch);
        if (rd->stop && empty)
            idle_after_stop++;
        if (empty)
            usleep(1000);
    }
    db_destroy(&db);
    return NULL;
}

static void test_concurrent_writers_never_skip(void **state) {
    (void)state;
    db_t *admin = s_connect();
    assert_int_equal(db_exec(admin, "TRUNCATE outbox", 0, NULL), 0);
    reader_t rd = {0};
    pthread_t reader, writers[WRITERS];
    pthread_create(&reader, NULL, s_reader, &rd);
    for (uintptr_t i = 0; i < WRITERS; i++)
        pthread_create(&writers[i], NULL, s_writer, (void *)(i + 1));
    for (int i = 0; i < WRITERS; i++)
        pthread_join(writers[i], NULL);
    rd.stop = 1;
    pthread_join(reader, NULL);
    PGresult *r = db_query(admin, "SELECT seq FROM outbox ORDER BY seq", 0, NULL);
    assert_non_null(r);
    size_t rows = (size_t)PQntuples(r);
    printf("# %d writers, %zu committed events, reader saw %zu, out of order %d\n", WRITERS, rows,
           rd.n_seen, rd.out_of_order);
    assert_true(rows > WRITERS * TX_PER_WRITER / 2);
    assert_int_equal(rd.out_of_order, 0);
    assert_int_equal(rd.n_seen, rows);
    for (size_t i = 0; i < rows; i++)
        assert_int_equal(rd.seen[i], strtoull(PQgetvalue(r, (int)i, 0), NULL, 10));
    PQclear(r);
    free(rd.seen);
    db_destroy(&admin);
}

static void test_scope_filter_and_last(void **state) {
    (void)state;
    db_t *db = s_connect();
    assert_int_equal(db_exec(db, "TRUNCATE outbox", 0, NULL), 0);
    Cara__Fetch msg = CARA__FETCH__INIT;
    msg.stream = "t";
    assert_int_equal(db_begin(db), 0);
    int64_t first = 0, last = 0;
    for (int i = 0; i < 10; i++) {
        last = outbox_append(db, &msg.base, NULL, i % 2 ? "force-a" : "force-b", NULL, NULL);
        if (!first)
            first = last;
    }
    assert_int_equal(db_commit(db), 0);
    Cara__Batch batch = CARA__BATCH__INIT;
    assert_int_equal(stream_fetch(db, 0, 100, "force-a", &batch), 0);
    assert_int_equal(batch.n_events, 5);
    assert_int_equal(batch.last, (uint64_t)last); // passed over the other force's rows too
    stream_batch_clear(&batch);
    assert_int_equal(stream_fetch(db, 0, 2, "force-a", &batch), 0);
    assert_int_equal(batch.n_events, 2);
    assert_int_equal(batch.last, batch.events[1]->seq); // a full batch: resume after its end
    stream_batch_clear(&batch);
    db_destroy(&db);
}

// A COMMIT sent and not yet read back (db_commit_send, as a request lane leaves it) holds the
// outbox lock only until the server has committed: another connection that waits for the lock
// goes on without this one reading anything, and the events keep their commit order. A batch
// that failed is known to have failed when its COMMIT is read back, and left nothing behind.
static void test_commit_sent_ahead_lets_another_connection_on(void **state) {
    (void)state;
    db_t *a = s_connect(), *b = s_connect(), *reader = s_connect();
    int64_t base = stream_head(reader);
    assert_int_equal(db_exec(a, "BEGIN", 0, NULL), 0);
    int64_t seq_a = s_append(a, 1);
    assert_true(seq_a > base);
    assert_int_equal(db_commit_send(a), 0);
    // b waits for the lock a holds until its commit, which needs nothing more from this side.
    assert_int_equal(db_exec(b, "BEGIN", 0, NULL), 0);
    int64_t seq_b = s_append(b, 2);
    assert_true(seq_b > seq_a);
    assert_int_equal(db_commit(b), 0);
    assert_int_equal(db_commit_finish(a), 0);
    assert_int_equal(stream_head(reader), seq_b);

    // A failed statement queued in the batch: the COMMIT goes out, and reads back as a failure.
    assert_int_equal(db_exec(a, "BEGIN", 0, NULL), 0);
    assert_true(s_append(a, 3) > seq_b);
    assert_int_equal(db_send(a, "INSERT INTO no_such_table VALUES (1)", 0, NULL, NULL, NULL), 0);
    assert_int_equal(db_commit_send(a), 0);
    assert_int_equal(db_commit_finish(a), -1);
    assert_true(db_outcome_known(a));
    db_rollback(a);
    assert_int_equal(stream_head(reader), seq_b);
    // The connection is fine for the next batch.
    assert_int_equal(db_exec(a, "BEGIN", 0, NULL), 0);
    assert_true(s_append(a, 4) > seq_b);
    assert_int_equal(db_commit_send(a), 0);
    assert_int_equal(db_commit_finish(a), 0);
    assert_true(stream_head(reader) > seq_b);
    db_destroy(&a);
    db_destroy(&b);
    db_destroy(&reader);
}

// The Fetch.after an event was appended with (s_append's n), or -1 if it cannot be read.
static int64_t s_after_of(const Cara__StreamEvent *ev) {
    Cara__Envelope *env = envelope_unpack(ev->envelope.data, ev->envelope.len);
    Cara__Fetch *msg = env ? (Cara__Fetch *)envelope_payload(env, &cara__fetch__descriptor) : NULL;
    int64_t after = msg ? (int64_t)msg->after : -1;
    if (msg)
        cara__fetch__free_unpacked(msg, NULL);
    if (env)
        cara__envelope__free_unpacked(env, NULL);
    return after;
}

static void s_send_event(db_t *db, uint64_t n) {
    Cara__Fetch msg = CARA__FETCH__INIT;
    msg.stream = "t";
    msg.after = n;
    assert_int_equal(outbox_send(db, &msg.base, NULL, NULL, NULL, NULL), 0);
}

// The stream after cursor holds exactly one event, appended with n.
static void s_assert_only_event(db_t *reader, uint64_t cursor, int64_t n) {
    Cara__Batch batch = CARA__BATCH__INIT;
    assert_int_equal(stream_fetch(reader, cursor, 100, NULL, &batch), 0);
    assert_int_equal(batch.n_events, 1);
    assert_int_equal(s_after_of(batch.events[0]), n);
    stream_batch_clear(&batch);
}

#define HELD_EVENTS 2500

// While a batch gathers its writes, queued events are held past its reads and go at the end,
// as multi-row INSERTs (db_append). The stream still serves them in the order they were
// appended: an event appended with RETURNING seq in between takes its place after the ones held
// before it, more events than one multi-row INSERT holds keep their order, and a batch rolled
// back leaves nothing held for the next transaction on the connection.
static void test_held_events_keep_their_order(void **state) {
    (void)state;
    db_t *db = s_connect(), *reader = s_connect();
    uint64_t base = (uint64_t)stream_head(reader);
    assert_int_equal(db_begin(db), 0);
    db_gather(db, true);
    for (uint64_t i = 0; i < HELD_EVENTS; i++) {
        if (i % 100 == 50) {
            assert_true(s_append(db, i) > 0); // RETURNING seq: the held ones go first
        } else {
            s_send_event(db, i);
        }
        if (i % 7 == 0) { // a read in between does not send the held events
            PGresult *r = db_query(db, "SELECT 1", 0, NULL);
            assert_non_null(r);
            PQclear(r);
        }
    }
    db_gather(db, false);
    assert_int_equal(db_commit(db), 0);
    uint64_t cursor = base, next = 0;
    while (next < HELD_EVENTS) {
        Cara__Batch batch = CARA__BATCH__INIT;
        assert_int_equal(stream_fetch(reader, cursor, 1000, NULL, &batch), 0);
        assert_true(batch.n_events > 0);
        for (size_t i = 0; i < batch.n_events; i++)
            assert_int_equal(s_after_of(batch.events[i]), next++);
        cursor = batch.last;
        stream_batch_clear(&batch);
    }
    assert_int_equal(stream_head(reader), (int64_t)cursor); // nothing more

    // Rolled back while held: gone, and not sent with the next transaction.
    assert_int_equal(db_begin(db), 0);
    db_gather(db, true);
    s_send_event(db, 1);
    db_gather(db, false);
    db_rollback(db);
    assert_int_equal(db_begin(db), 0);
    s_send_event(db, 2);
    assert_int_equal(db_commit(db), 0);
    s_assert_only_event(reader, cursor, 2);
    db_destroy(&db);
    db_destroy(&reader);
}

// A dead letter's apply that appends an event and then refuses it (POISON).
static apply_result_t s_append_then_refuse(db_t *db, const Cara__Envelope *env, uint64_t seq,
                                           void *arg, char *reason, size_t reason_size) {
    (void)env;
    (void)seq;
    (void)arg;
    s_send_event(db, 777);
    snprintf(reason, reason_size, "refused after appending");
    return APPLY_POISON;
}

// Keeps a dead letter of stream "t" at seq (a cara.Fetch as its event). Returns its id.
static int64_t s_dead_letter(db_t *db, int seq) {
    Cara__Fetch msg = CARA__FETCH__INIT;
    msg.stream = "t";
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(envelope_pack(&msg.base, NULL, NULL, &data, &len, NULL), 0);
    char seq_s[16];
    snprintf(seq_s, sizeof seq_s, "%d", seq);
    const char *v[] = {(const char *)data, seq_s};
    int lengths[] = {(int)len, 0}, formats[] = {1, 0};
    PGresult *r = db_query_bin(db,
                               "INSERT INTO dead_letter (stream, seq, reason, payload)"
                               " VALUES ('t', $2::bigint, 'first failure', $1) RETURNING id",
                               2, v, lengths, formats, 0);
    free(data);
    assert_non_null(r);
    int64_t id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return id;
}

// A dead-letter replay runs inside a request batch's optimistic pass, where events are held
// (db_append): the replay that fails rolls back to its savepoint with the event it appended,
// while an event held for an earlier request of the batch is kept and committed.
static void test_failed_replay_takes_its_held_event_back(void **state) {
    (void)state;
    db_t *db = s_connect(), *reader = s_connect();
    int64_t id = s_dead_letter(db, 1);
    uint64_t base = (uint64_t)stream_head(reader);
    assert_int_equal(db_begin(db), 0);
    db_gather(db, true);
    s_send_event(db, 1); // an earlier request's event, held
    assert_int_equal(consumer_replay_dead_letter(db, id, s_append_then_refuse, NULL, NULL), 1);
    db_gather(db, false);
    assert_int_equal(db_commit(db), 0);
    s_assert_only_event(reader, base, 1);
    char id_s[24];
    snprintf(id_s, sizeof id_s, "%" PRId64, id);
    const char *ids[] = {id_s};
    char out[64];
    assert_int_equal(
        db_scalar(reader, "SELECT reason FROM dead_letter WHERE id = $1", 1, ids, out, sizeof out),
        1);
    assert_string_equal(out, "refused after appending");
    db_destroy(&db);
    db_destroy(&reader);
}

static apply_result_t s_wait_for_config(db_t *db, const Cara__Envelope *env, uint64_t seq,
                                        void *arg, char *reason, size_t reason_size) {
    (void)db;
    (void)env;
    (void)seq;
    (void)arg;
    snprintf(reason, reason_size, "calendar not configured");
    return APPLY_RETRY;
}

// A dead letter whose apply still answers "retry" with no database failure (it waits for a
// configuration value) stays waiting with that reason, and says so (2); one already replayed is
// no longer waiting (3). Neither is a database failure that would roll a whole replay back.
static void test_a_replay_that_waits_is_not_a_database_failure(void **state) {
    (void)state;
    db_t *db = s_connect();
    int64_t id = s_dead_letter(db, 2);
    assert_int_equal(db_begin(db), 0);
    assert_int_equal(consumer_replay_dead_letter(db, id, s_wait_for_config, NULL, NULL), 2);
    assert_int_equal(db_commit(db), 0);
    char id_s[24], out[64];
    snprintf(id_s, sizeof id_s, "%" PRId64, id);
    const char *ids[] = {id_s};
    assert_int_equal(db_scalar(db,
                               "SELECT reason || '/' || (replayed_at IS NULL) FROM dead_letter"
                               " WHERE id = $1",
                               1, ids, out, sizeof out),
                     1);
    assert_string_equal(out, "calendar not configured/true");
    assert_int_equal(
        db_exec(db, "UPDATE dead_letter SET replayed_at = now() WHERE id = $1", 1, ids), 0);
    assert_int_equal(db_begin(db), 0);
    assert_int_equal(consumer_replay_dead_letter(db, id, s_wait_for_config, NULL, NULL), 3);
    assert_int_equal(db_commit(db), 0);
    db_destroy(&db);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_late_commit_is_not_skipped),
        cmocka_unit_test(test_a_replay_that_waits_is_not_a_database_failure),
        cmocka_unit_test(test_concurrent_writers_never_skip),
        cmocka_unit_test(test_scope_filter_and_last),
        cmocka_unit_test(test_commit_sent_ahead_lets_another_connection_on),
        cmocka_unit_test(test_held_events_keep_their_order),
        cmocka_unit_test(test_failed_replay_takes_its_held_event_back),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
