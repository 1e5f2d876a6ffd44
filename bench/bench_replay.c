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
#include "outbox_load.h"

// Appends N chain events (cara.Fetch{after: n}, as helper_chain_producer makes them) to the
// intake slot's outbox with COPY. Returns 0 or -1.
static int s_load(harness_t *h, long n) {
    outbox_load_t *load = outbox_load_begin(db_conn(harness_db(h, "intake")));
    char key[24];
    for (long i = 1; load && i <= n; i++) {
        Cara__Fetch msg = CARA__FETCH__INIT;
        msg.stream = "chain";
        msg.after = (uint64_t)i;
        snprintf(key, sizeof key, "%ld", i);
        if (outbox_load_add(load, &msg.base, key, NULL) < 0)
            break;
    }
    return load && outbox_load_end(&load) == n ? 0 : -1;
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
        long r = harness_peak_rss_kb(harness_pid(h, "triage"));
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
           n, load_s, read, read_s, read / read_s, apply_s, n / apply_s, exact ? "true" : "false",
           rss, harness_peak_rss_kb(harness_pid(h, "intake")));
    free(effects);
    free(distinct);
    harness_destroy(&h);
    return exact ? 0 : 1;
}
