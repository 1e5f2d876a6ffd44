// Benchmark: N concurrent police clients over CURVE submitting valid referrals to a real intake
// for S seconds. Prints acknowledged referrals per second and ack latency p50/p99 as JSON.
// Run by bench/run.sh (needs CARA_TEST_PGHOST/PORT for the harness).
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_cpu.h"
#include "cara/pbjson.h"
#include "cara/timeutil.h"
#include "harness.h"
#include "intake.pb-c.h"

typedef struct {
    harness_t *h;
    int id;
    int64_t until_ms;
    long acked, failed;
    double *lat; // ms
    size_t n_lat, cap;
} worker_t;

static Cara__Referral *s_referral(void) {
    json_t *doc = json_load_file("examples/referral.json", 0, NULL);
    char err[256], when[40];
    json_object_set_new(
        json_object_get(doc, "caution"), "given_at",
        json_string(time_format_iso(time_now_us() - 86400000000LL, when, sizeof when)));
    Cara__Referral *r =
        (Cara__Referral *)pbjson_to_message(&cara__referral__descriptor, doc, err, sizeof err);
    json_decref(doc);
    return r;
}

static void *s_work(void *arg) {
    worker_t *w = arg;
    client_t *c = client_new(harness_ctx(w->h), harness_endpoint(w->h, "intake"),
                             harness_identity_keys(w->h, "police", "dyfed-powys"),
                             harness_service_public(w->h, "intake"));
    Cara__Referral *r = s_referral();
    char ref[64];
    for (long n = 0; c && r && time_mono_ms() < w->until_ms; n++) {
        snprintf(ref, sizeof ref, "BENCH-%d-%ld", w->id, n);
        free(r->caution_reference);
        r->caution_reference = strdup(ref);
        Cara__SubmitReferral cmd = CARA__SUBMIT_REFERRAL__INIT;
        cmd.referral = r;
        int64_t t0 = time_now_us();
        Cara__Reply *reply = client_call(c, &cmd.base, NULL, NULL, 10000, 0);
        double ms = (double)(time_now_us() - t0) / 1000.0;
        if (reply && reply->status == CARA__REPLY__STATUS__OK) {
            w->acked++;
            if (w->n_lat == w->cap) {
                w->cap = w->cap ? w->cap * 2 : 4096;
                w->lat = realloc(w->lat, w->cap * sizeof *w->lat);
            }
            w->lat[w->n_lat++] = ms;
        } else {
            w->failed++;
        }
        if (reply)
            cara__reply__free_unpacked(reply, NULL);
    }
    if (r)
        cara__referral__free_unpacked(r, NULL);
    client_destroy(&c);
    return NULL;
}

static int s_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    int clients = argc > 1 ? atoi(argv[1]) : 8, seconds = argc > 2 ? atoi(argv[2]) : 20;
    harness_t *h = harness_new("bench_intake");
    if (!h || harness_start(h, "intake") != 0)
        return 1;
    worker_t *w = calloc((size_t)clients, sizeof *w);
    pthread_t *t = calloc((size_t)clients, sizeof *t);
    int64_t start = time_mono_ms();
    bench_cpu_t cpu0 = bench_cpu_sample();
    for (int i = 0; i < clients; i++) {
        w[i] = (worker_t){.h = h, .id = i, .until_ms = start + seconds * 1000};
        harness_identity_keys(h, "police", "dyfed-powys");
    }
    for (int i = 0; i < clients; i++)
        pthread_create(&t[i], NULL, s_work, &w[i]);
    long acked = 0, failed = 0;
    size_t n = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(t[i], NULL);
        acked += w[i].acked;
        failed += w[i].failed;
        n += w[i].n_lat;
    }
    bench_cpu_t cpu1 = bench_cpu_sample();
    double elapsed = (double)(time_mono_ms() - start) / 1000.0;
    double *all = malloc((n + 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < clients; i++)
        for (size_t j = 0; j < w[i].n_lat; j++)
            all[k++] = w[i].lat[j];
    qsort(all, n, sizeof *all, s_cmp);
    long rss = harness_peak_rss_kb(harness_pid(h, "intake"));
    printf("{\"clients\": %d, \"seconds\": %.1f, \"acked\": %ld, \"failed\": %ld,"
           " \"acked_per_s\": %.1f, \"p50_ms\": %.2f, \"p99_ms\": %.2f, \"intake_rss_kb\": %ld",
           clients, elapsed, acked, failed, acked / elapsed, n ? all[n / 2] : 0.0,
           n ? all[(size_t)((double)n * 0.99)] : 0.0, rss);
    bench_cpu_print(cpu0, cpu1, elapsed, acked);
    printf("}\n");
    free(all);
    for (int i = 0; i < clients; i++)
        free(w[i].lat);
    free(w);
    free(t);
    harness_destroy(&h);
    return 0;
}
