// Where a benchmark's CPU went: the whole machine's busy time (/proc/stat: user, nice, system,
// irq, softirq; not idle, iowait or steal) and this process's own (getrusage: the bench's
// clients), sampled before and after a phase. What the machine spent beyond the bench process
// is the system under test's share: the services, PostgreSQL and the kernel working for them
// (and anything else running on the machine meanwhile, so run benchmarks on a quiet one).
// Divided by the work done it gives CPU milliseconds per item, and with the core count the
// rate the machine could reach if the CPU were the only limit.
#ifndef CARA_BENCH_CPU_H
#define CARA_BENCH_CPU_H

#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

typedef struct {
    double busy_s; // the whole machine, summed over its cores
    double self_s; // this process (user + system)
    int ok;        // 0 if /proc/stat could not be read
} bench_cpu_t;

static inline bench_cpu_t bench_cpu_sample(void) {
    bench_cpu_t s = {0, 0, 0};
    unsigned long long user, nice, sys, idle, iowait, irq, softirq;
    FILE *f = fopen("/proc/stat", "r");
    if (f) {
        s.ok = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &sys, &idle,
                      &iowait, &irq, &softirq) == 7;
        fclose(f);
    }
    long hz = sysconf(_SC_CLK_TCK);
    if (s.ok && hz > 0)
        s.busy_s = (double)(user + nice + sys + irq + softirq) / (double)hz;
    else
        s.ok = 0;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        s.self_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                   (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    return s;
}

// Prints `, "cpu": {...}` for the work done between two samples (items: referrals, events):
// CPU ms per item on the server side and in the bench's clients, the share of the machine that
// sat idle, and the CPU-bound ceilings: cores / CPU per item, with the clients on this machine
// and (server_) with them elsewhere, as police systems are. A ceiling means something only for
// a phase run flat out: below it, an item also pays for the idle machine's costs (a wake-up
// and a commit for every few events), so its CPU is higher. Nothing if a sample failed.
static inline void bench_cpu_print(bench_cpu_t a, bench_cpu_t b, double wall_s, long items) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (!a.ok || !b.ok || items <= 0 || wall_s <= 0 || cores <= 0)
        return;
    double self = b.self_s - a.self_s, server = (b.busy_s - a.busy_s) - self;
    if (server < 0)
        server = 0;
    double per_server = server * 1000.0 / (double)items, per_client = self * 1000.0 / (double)items;
    double idle = 100.0 * (1.0 - (b.busy_s - a.busy_s) / (wall_s * (double)cores));
    printf(", \"cpu\": {\"cores\": %ld, \"server_ms_per_item\": %.3f, \"client_ms_per_item\": %.3f,"
           " \"idle_pct\": %.1f, \"cpu_bound_per_s\": %.0f, \"server_cpu_bound_per_s\": %.0f}",
           cores, per_server, per_client, idle < 0 ? 0.0 : idle,
           per_server + per_client > 0 ? (double)cores * 1000.0 / (per_server + per_client) : 0.0,
           per_server > 0 ? (double)cores * 1000.0 / per_server : 0.0);
}

#endif
