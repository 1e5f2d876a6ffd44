// Benchmark: a consumer starting from zero on a backlog of N events (the chain test services:
// one INSERT per applied event, cursor in the same transaction). Prints events/s as JSON.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cara/timeutil.h"
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

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 200000;
    harness_t *h = harness_new("bench_replay");
    if (!h)
        return 1;
    char chain[128], expect[32];
    snprintf(chain, sizeof chain, "{\"total\": %ld, \"per_tx\": 5000, \"per_tick\": %ld}", n, n);
    snprintf(expect, sizeof expect, "%ld", n);
    harness_config(h, "intake", "chain", chain);
    harness_config(h, "triage", "consumer", "{\"batch\": 2000, \"poll_ms\": 100}");
    if (harness_start_as(h, "intake", "build/tests/integration/helper_chain_producer") != 0 ||
        harness_wait_value(h, "intake", "SELECT produced FROM chain_progress", expect, 600000) != 0)
        return 1;
    int64_t t0 = time_mono_ms();
    if (harness_start_as(h, "triage", "build/tests/integration/helper_chain_consumer") != 0)
        return 1;
    long rss = 0;
    for (;;) {
        char *v = harness_value(h, "triage", "SELECT count(*) FROM chain_effect");
        long done = v ? atol(v) : 0;
        free(v);
        long r = s_rss_kb(harness_pid(h, "triage"));
        if (r > rss)
            rss = r;
        if (done >= n)
            break;
        usleep(100000);
    }
    double s = (double)(time_mono_ms() - t0) / 1000.0;
    printf("{\"events\": %ld, \"seconds\": %.2f, \"events_per_s\": %.0f, \"consumer_rss_kb\": %ld,"
           " \"producer_rss_kb\": %ld}\n",
           n, s, n / s, rss, s_rss_kb(harness_pid(h, "intake")));
    harness_destroy(&h);
    return 0;
}
