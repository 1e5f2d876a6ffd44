// Benchmark: replay of a stream of N events (default 1,000,000) by
//  1. a new subscriber reading the whole stream from zero with Fetch (as operator:bench), and
//  2. a new consumer (the chain test consumer in the triage slot: one INSERT per event, inbox
//     de-duplication and cursor in the same transaction) applying all of it from zero.
// The backlog is loaded straight into the producer's outbox with COPY (envelopes as
// outbox_append makes them, seqs 1..N), so the load does not count. Prints one JSON line.
// Needs CARA_TEST_PGHOST/PORT (the harness); run by bench/run.sh.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cara/timeutil.h"
#include "cara/uuid.h"
#include "harness.h"

static long s_rss_kb(int pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            kb = atol(line + 6);
    if (f)
        fclose(f);
    return kb;
}

static int s_exec(PGconn *c, const char *sql) {
    PGresult *r = PQexec(c, sql);
    int ok = r && (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
    if (!ok)
        fprintf(stderr, "bench_replay: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    return ok ? 0 : -1;
}

// Appends N chain events (cara.Fetch{after: n}, as helper_chain_producer makes them) to the
// intake slot's outbox with COPY. Returns 0 or -1.
static int s_load(harness_t *h, long n) {
    PGconn *c = db_conn(harness_db(h, "intake"));
    // The seq trigger orders concurrent writers; this single loader gives seqs itself.
    if (s_exec(c, "SET session_replication_role = replica") != 0)
        return -1;
    PGresult *start = PQexec(c, "COPY outbox (seq, event_id, type, key, payload) FROM STDIN");
    int copying = start && PQresultStatus(start) == PGRES_COPY_IN;
    PQclear(start);
    if (!copying) {
        fprintf(stderr, "bench_replay: COPY: %s", PQerrorMessage(c));
        return -1;
    }
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    static const char hex[] = "0123456789abcdef";
    int rc = 0;
    for (long i = 1; buf && i <= n && rc == 0; i++) {
        Cara__Fetch msg = CARA__FETCH__INIT;
        msg.stream = "chain";
        msg.after = (uint64_t)i;
        uint8_t *data = NULL;
        size_t dlen = 0;
        char id[UUID_STR_LEN];
        if (envelope_pack(&msg.base, NULL, NULL, &data, &dlen, id) != 0) {
            rc = -1;
            break;
        }
        if (len + 2 * dlen + 128 > cap) {
            if (PQputCopyData(c, buf, (int)len) != 1)
                rc = -1;
            len = 0;
        }
        len += (size_t)sprintf(buf + len, "%ld\t%s\tcara.Fetch\t%ld\t\\\\x", i, id, i);
        for (size_t k = 0; k < dlen; k++) {
            buf[len++] = hex[data[k] >> 4];
            buf[len++] = hex[data[k] & 15];
        }
        buf[len++] = '\n';
        free(data);
    }
    if (!buf || (len && PQputCopyData(c, buf, (int)len) != 1))
        rc = -1;
    free(buf);
    if (PQputCopyEnd(c, rc == 0 ? NULL : "bench load failed") != 1)
        rc = -1;
    PGresult *r;
    while ((r = PQgetResult(c)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            fprintf(stderr, "bench_replay: COPY: %s", PQerrorMessage(c));
            rc = -1;
        }
        PQclear(r);
    }
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT setval('outbox_seq', %ld)", n);
    if (s_exec(c, "RESET session_replication_role") != 0 || s_exec(c, sql) != 0 ||
        s_exec(c, "ANALYZE outbox") != 0)
        rc = -1;
    return rc;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    harness_t *h = harness_new("bench_replay");
    if (!h)
        return 1;
    char expect[32];
    snprintf(expect, sizeof expect, "%ld", n);
    harness_config(h, "intake", "chain", "{\"total\": 0}");
    harness_config(h, "triage", "consumer", "{\"batch\": 2000, \"poll_ms\": 100}");
    if (harness_start_as(h, "intake", "build/tests/integration/helper_chain_producer") != 0)
        return 1;
    int64_t t_load = time_mono_ms();
    if (s_load(h, n) != 0)
        return 1;
    double load_s = (double)(time_mono_ms() - t_load) / 1000.0;

    // 1. A new subscriber reading everything from zero.
    client_t *c = harness_client(h, "intake", "operator", "bench");
    uint64_t after = 0;
    long read = 0;
    int64_t t0 = time_mono_ms();
    while (after < (uint64_t)n) {
        int status = 0;
        Cara__Batch *b = harness_fetch(c, "intake", after, 2000, &status);
        if (!b || b->last <= after) {
            fprintf(stderr, "bench_replay: fetch after %" PRIu64 " failed (%d)\n", after, status);
            return 1;
        }
        read += (long)b->n_events;
        after = b->last;
        cara__batch__free_unpacked(b, NULL);
    }
    double read_s = (double)(time_mono_ms() - t0) / 1000.0;

    // 2. A new consumer applying everything from zero (timed from its start).
    t0 = time_mono_ms();
    if (harness_start_as(h, "triage", "build/tests/integration/helper_chain_consumer") != 0)
        return 1;
    long rss = 0;
    for (;;) {
        char *v = harness_value(h, "triage", "SELECT seq FROM cursor WHERE stream = 'intake'");
        long done = v ? atol(v) : 0;
        free(v);
        long r = s_rss_kb(harness_pid(h, "triage"));
        if (r > rss)
            rss = r;
        if (done >= n)
            break;
        usleep(20000);
    }
    double apply_s = (double)(time_mono_ms() - t0) / 1000.0;
    // Exactly once: one effect row per event, every event.
    char *effects = harness_value(h, "triage", "SELECT count(*) FROM chain_effect");
    char *distinct = harness_value(h, "triage", "SELECT count(DISTINCT n) FROM chain_effect");
    int exact = effects && distinct && atol(effects) == n && atol(distinct) == n;
    printf("{\"events\": %ld, \"load_seconds\": %.2f, \"subscriber_read\": %ld,"
           " \"subscriber_seconds\": %.2f, \"subscriber_per_s\": %.0f,"
           " \"consumer_seconds\": %.2f, \"consumer_per_s\": %.0f, \"exactly_once\": %s,"
           " \"consumer_rss_kb\": %ld, \"producer_rss_kb\": %ld}\n",
           n, load_s, read, read_s, read / read_s, apply_s, n / apply_s,
           exact ? "true" : "false", rss, s_rss_kb(harness_pid(h, "intake")));
    free(effects);
    free(distinct);
    harness_destroy(&h);
    return exact ? 0 : 1;
}
