// Benchmark: end to end. Police referrals into a real intake, triage routes them to provider
// p1, booking opens the case; a provider system subscribed to the booking stream (Head wake-ups
// plus Fetch, as provider:p1) books a seat for each CaseOpened (8 clerks by default, each with
// one BookSeat in flight) and waits to fetch the SeatBooked. Latency = from the submit call to the
// provider fetching that referral's SeatBooked. Phase 1: an offered rate (open loop, 4 submitters).
// Phase 2: 8 submitters as fast as they go. Usage: bench_e2e RATE SECONDS FAST_SECONDS. Prints one
// JSON line. Needs CARA_TEST_PGHOST/PORT.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "bench_cpu.h"
#include "booking.pb-c.h"
#include "cara/pbjson.h"
#include "cara/timeutil.h"
#include "harness.h"
#include "intake.pb-c.h"

#define E2E_MAX 65536
#define E2E_SUBMITTERS_FAST 8
#define E2E_SUBMITTERS_RATE 4
// The provider system's booking clerks, each with one BookSeat in flight (BENCH_E2E_BOOKERS).
#define E2E_BOOKERS_MAX 16
#define E2E_FAST_PER_S 2000 // seats provided per second of the fast phase (3x what it reaches)
#define E2E_COHORT_SEATS 12 // seats per bench cohort: CARA's group size, booking's maximum

typedef struct {
    char id[40];
    int64_t submitted_us;
    int64_t seen_us; // 0 until the provider fetched its SeatBooked
} e2e_item_t;

static harness_t *s_h;
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t s_cond = PTHREAD_COND_INITIALIZER;
static e2e_item_t s_items[E2E_MAX];
// Refused submissions and refused bookings are counted apart: a refused booking never yields a
// SeatBooked, so a phase stops waiting for it instead of sitting out its deadline.
static int s_n_items, s_n_seen, s_submit_failed, s_book_failed;
static volatile int s_stop_provider, s_stop_submit;
// Cases to book (referral ids), a ring filled by the fetcher and drained by the bookers.
static char s_queue[E2E_MAX][40];
static int s_q_head, s_q_tail;

static Cara__Referral *s_referral(void) {
    json_t *doc = json_load_file("examples/referral.json", 0, NULL);
    char err[256], when[40];
    if (!doc)
        return NULL;
    json_object_set_new(
        json_object_get(doc, "caution"), "given_at",
        json_string(time_format_iso(time_now_us() - 86400000000LL, when, sizeof when)));
    Cara__Referral *r =
        (Cara__Referral *)pbjson_to_message(&cara__referral__descriptor, doc, err, sizeof err);
    json_decref(doc);
    return r;
}

static e2e_item_t *s_find(const char *id) {
    for (int i = s_n_items - 1; i >= 0; i--)
        if (strcmp(s_items[i].id, id) == 0)
            return &s_items[i];
    return NULL;
}

typedef struct {
    int id;
    double rate; // per second for this submitter; 0 = as fast as the replies come
    int64_t until_ms;
    client_t *client;
} submitter_t;

static void *s_submit(void *arg) {
    submitter_t *w = arg;
    Cara__Referral *r = s_referral();
    char ref[64];
    int64_t start = time_mono_ms();
    for (long n = 0; r && !s_stop_submit && time_mono_ms() < w->until_ms; n++) {
        if (w->rate > 0) {
            int64_t due_ms = start + (int64_t)((double)n * 1000.0 / w->rate);
            int64_t now = time_mono_ms();
            if (due_ms > now)
                usleep((useconds_t)(due_ms - now) * 1000);
        }
        snprintf(ref, sizeof ref, "E2E-%d-%d-%ld", getpid(), w->id, n);
        free(r->caution_reference);
        r->caution_reference = strdup(ref);
        Cara__SubmitReferral cmd = CARA__SUBMIT_REFERRAL__INIT;
        cmd.referral = r;
        int64_t t0 = time_now_us();
        Cara__Reply *reply = client_call(w->client, &cmd.base, NULL, NULL, 10000, 0);
        Cara__ReferralAccepted *ok =
            reply && reply->status == CARA__REPLY__STATUS__OK
                ? cara__referral_accepted__unpack(NULL, reply->payload.len, reply->payload.data)
                : NULL;
        pthread_mutex_lock(&s_lock);
        if (ok && s_n_items < E2E_MAX) {
            e2e_item_t *it = &s_items[s_n_items++];
            snprintf(it->id, sizeof it->id, "%s", ok->referral_id);
            it->submitted_us = t0;
            it->seen_us = 0;
        } else {
            s_submit_failed++;
        }
        pthread_mutex_unlock(&s_lock);
        if (ok)
            cara__referral_accepted__free_unpacked(ok, NULL);
        if (reply)
            cara__reply__free_unpacked(reply, NULL);
    }
    if (r)
        cara__referral__free_unpacked(r, NULL);
    return NULL;
}

// The provider system's booking clerk: books a seat (earliest fitting cohort) for each case.
static void *s_book(void *arg) {
    client_t *c = arg;
    for (;;) {
        char id[40];
        pthread_mutex_lock(&s_lock);
        while (s_q_head == s_q_tail && !s_stop_provider)
            pthread_cond_wait(&s_cond, &s_lock);
        if (s_q_head == s_q_tail) {
            pthread_mutex_unlock(&s_lock);
            return NULL;
        }
        memcpy(id, s_queue[s_q_head % E2E_MAX], sizeof id);
        s_q_head++;
        pthread_mutex_unlock(&s_lock);
        Cara__BookSeat cmd = CARA__BOOK_SEAT__INIT;
        cmd.referral_id = id;
        cmd.cohort_id = "";
        Cara__Reply *reply = client_call(c, &cmd.base, NULL, NULL, 10000, 2);
        if (!reply || reply->status != CARA__REPLY__STATUS__OK) {
            pthread_mutex_lock(&s_lock);
            s_book_failed++;
            pthread_mutex_unlock(&s_lock);
        }
        if (reply)
            cara__reply__free_unpacked(reply, NULL);
    }
}

// The provider system's feed: wakes on the booking stream's Head, fetches after its cursor.
static void *s_feed(void *arg) {
    (void)arg;
    client_t *c = harness_client(s_h, "booking", "provider", "p1");
    void *sub = transport_client(harness_ctx(s_h), ZMQ_SUB, harness_pub_endpoint(s_h, "booking"),
                                 harness_identity_keys(s_h, "provider", "p1"),
                                 harness_service_public(s_h, "booking"));
    uint64_t after = 0;
    char head_buf[4096];
    while (!s_stop_provider) {
        int status = 0;
        Cara__Batch *b = harness_fetch(c, "booking", after, 2000, &status);
        size_t got = b ? b->n_events : 0;
        int64_t now = time_now_us();
        for (size_t i = 0; b && i < b->n_events; i++) {
            Cara__Envelope *env =
                envelope_unpack(b->events[i]->envelope.data, b->events[i]->envelope.len);
            if (env && strcmp(env->type, "cara.CaseOpened") == 0) {
                Cara__CaseOpened *ev =
                    (Cara__CaseOpened *)envelope_payload(env, &cara__case_opened__descriptor);
                if (ev) {
                    pthread_mutex_lock(&s_lock);
                    snprintf(s_queue[s_q_tail % E2E_MAX], 40, "%s", ev->referral_id);
                    s_q_tail++;
                    pthread_cond_signal(&s_cond);
                    pthread_mutex_unlock(&s_lock);
                    cara__case_opened__free_unpacked(ev, NULL);
                }
            } else if (env && strcmp(env->type, "cara.SeatBooked") == 0) {
                Cara__SeatBooked *ev =
                    (Cara__SeatBooked *)envelope_payload(env, &cara__seat_booked__descriptor);
                if (ev) {
                    pthread_mutex_lock(&s_lock);
                    e2e_item_t *it = s_find(ev->referral_id);
                    if (it && !it->seen_us) {
                        it->seen_us = now;
                        s_n_seen++;
                    }
                    pthread_mutex_unlock(&s_lock);
                    cara__seat_booked__free_unpacked(ev, NULL);
                }
            }
            if (env)
                cara__envelope__free_unpacked(env, NULL);
        }
        if (b) {
            after = b->last > after ? b->last : after;
            cara__batch__free_unpacked(b, NULL);
        }
        if (got == 0) {
            // Idle: wait for a Head (or 20 ms), then fetch again.
            zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
            if (sub && zmq_poll(&item, 1, 20) > 0)
                while (zmq_recv(sub, head_buf, sizeof head_buf, ZMQ_DONTWAIT) >= 0)
                    ;
            else if (!sub)
                usleep(20000);
        }
    }
    if (sub)
        zmq_close(sub);
    return NULL;
}

static int s_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// Runs one phase: submitters for `seconds`, then waits (up to 60 s) until every accepted
// referral's SeatBooked was fetched or its booking refused. Prints the phase's JSON object (no
// newline).
static void s_phase(const char *name, int submitters, double rate, int seconds) {
    pthread_mutex_lock(&s_lock);
    int first = s_n_items, seen0 = s_n_seen, refused0 = s_book_failed;
    pthread_mutex_unlock(&s_lock);
    submitter_t w[E2E_SUBMITTERS_FAST];
    pthread_t t[E2E_SUBMITTERS_FAST];
    int64_t start_us = time_now_us(), until = time_mono_ms() + seconds * 1000;
    bench_cpu_t cpu0 = bench_cpu_sample();
    s_stop_submit = 0;
    for (int i = 0; i < submitters; i++) {
        char org[32];
        snprintf(org, sizeof org, "dyfed-powys");
        w[i] = (submitter_t){.id = i + (rate > 0 ? 0 : 100),
                             .rate = rate > 0 ? rate / submitters : 0,
                             .until_ms = until,
                             .client = client_new(harness_ctx(s_h), harness_endpoint(s_h, "intake"),
                                                  harness_identity_keys(s_h, "police", org),
                                                  harness_service_public(s_h, "intake"))};
        pthread_create(&t[i], NULL, s_submit, &w[i]);
    }
    for (int i = 0; i < submitters; i++) {
        pthread_join(t[i], NULL);
        client_destroy(&w[i].client);
    }
    int64_t submitted_us = time_now_us(), deadline = time_mono_ms() + 60000;
    int total, seen, refused;
    for (;;) {
        pthread_mutex_lock(&s_lock);
        total = s_n_items - first;
        seen = s_n_seen - seen0;
        refused = s_book_failed - refused0;
        pthread_mutex_unlock(&s_lock);
        if (seen + refused >= total || time_mono_ms() > deadline)
            break;
        usleep(10000);
    }
    bench_cpu_t cpu1 = bench_cpu_sample();
    double wall = (double)(time_now_us() - start_us) / 1e6;
    int64_t last_us = start_us;
    double *lat = malloc(((size_t)total + 1) * sizeof *lat);
    int n = 0;
    pthread_mutex_lock(&s_lock);
    for (int i = first; i < first + total; i++)
        if (s_items[i].seen_us) {
            lat[n++] = (double)(s_items[i].seen_us - s_items[i].submitted_us) / 1000.0;
            if (s_items[i].seen_us > last_us)
                last_us = s_items[i].seen_us;
        }
    pthread_mutex_unlock(&s_lock);
    qsort(lat, (size_t)n, sizeof *lat, s_cmp);
    double elapsed = (double)(last_us - start_us) / 1e6;
    printf("\"%s\": {\"offered_per_s\": %.0f, \"submit_seconds\": %.1f, \"accepted\": %d,"
           " \"booked_seen\": %d, \"booking_refused\": %d, \"seconds\": %.2f, \"per_s\": %.1f,"
           " \"p50_ms\": %.1f, \"p99_ms\": %.1f",
           name, rate, (double)(submitted_us - start_us) / 1e6, total, n, refused, elapsed,
           elapsed > 0 ? n / elapsed : 0.0, n ? lat[n / 2] : 0.0,
           n ? lat[(size_t)((double)n * 0.99)] : 0.0);
    bench_cpu_print(cpu0, cpu1, wall, n);
    printf("}");
    free(lat);
}

int main(int argc, char **argv) {
    double rate = argc > 1 ? atof(argv[1]) : 200;
    int seconds = argc > 2 ? atoi(argv[2]) : 10, fast = argc > 3 ? atoi(argv[3]) : 10;
    s_h = harness_new("bench_e2e");
    if (!s_h)
        return 1;
    harness_config(
        s_h, "triage", "routing",
        "[{\"force\": \"dyfed-powys\", \"provider\": \"p1\", \"from\": \"2020-01-01\"}]");
    // Consumers wake on Head; the poll timer is only the fallback.
    if (harness_start(s_h, "intake") != 0 || harness_start(s_h, "triage") != 0 ||
        harness_start(s_h, "booking") != 0) {
        fprintf(stderr, "bench_e2e: services did not start\n");
        harness_destroy(&s_h);
        return 1;
    }
    // Seats for everything: cohorts of E2E_COHORT_SEATS a week out (part B four weeks later),
    // enough for the offered phase and a fast phase at up to E2E_FAST_PER_S, so no booking is
    // refused for want of a seat (the last runs ran out at 15,000 seats and waited out the
    // deadline).
    int32_t today = (int32_t)(time_now_us() / 1000000 / 86400);
    char a[16], b[16];
    time_format_date(today + 7, a, sizeof a);
    time_format_date(today + 35, b, sizeof b);
    long wanted = (long)(rate * seconds) + (long)E2E_FAST_PER_S * fast;
    int n_cohorts = (int)(wanted / E2E_COHORT_SEATS + 1);
    if (n_cohorts > E2E_MAX / E2E_COHORT_SEATS)
        n_cohorts = E2E_MAX / E2E_COHORT_SEATS;
    int cohorts = 0;
    for (int i = 0; i < n_cohorts; i++) {
        Cara__CreateCohort cmd = CARA__CREATE_COHORT__INIT;
        cmd.cohort_type = "male_intimate";
        cmd.town = "Carmarthen";
        cmd.capacity = E2E_COHORT_SEATS;
        cmd.part_a_date = a;
        cmd.part_b_date = b;
        Cara__Reply *reply =
            harness_call(harness_client(s_h, "booking", "provider", "p1"), &cmd.base);
        if (reply && reply->status == CARA__REPLY__STATUS__OK)
            cohorts++;
        if (reply)
            cara__reply__free_unpacked(reply, NULL);
    }
    if (cohorts == 0) {
        fprintf(stderr, "bench_e2e: no cohort could be created\n");
        harness_destroy(&s_h);
        return 1;
    }
    const char *nb = getenv("BENCH_E2E_BOOKERS");
    int n_bookers = nb && atoi(nb) > 0 ? atoi(nb) : 8;
    if (n_bookers > E2E_BOOKERS_MAX)
        n_bookers = E2E_BOOKERS_MAX;
    pthread_t feed, bookers[E2E_BOOKERS_MAX];
    client_t *booker_clients[E2E_BOOKERS_MAX];
    for (int i = 0; i < n_bookers; i++)
        booker_clients[i] = client_new(harness_ctx(s_h), harness_endpoint(s_h, "booking"),
                                       harness_identity_keys(s_h, "provider", "p1"),
                                       harness_service_public(s_h, "booking"));
    pthread_create(&feed, NULL, s_feed, NULL);
    for (int i = 0; i < n_bookers; i++)
        pthread_create(&bookers[i], NULL, s_book, booker_clients[i]);
    printf("{\"seats\": %d, \"bookers\": %d, ", cohorts * E2E_COHORT_SEATS, n_bookers);
    s_phase("offered", E2E_SUBMITTERS_RATE, rate, seconds);
    printf(", ");
    s_phase("fast", E2E_SUBMITTERS_FAST, 0, fast);
    pthread_mutex_lock(&s_lock);
    s_stop_provider = 1;
    pthread_cond_broadcast(&s_cond);
    pthread_mutex_unlock(&s_lock);
    pthread_join(feed, NULL);
    for (int i = 0; i < n_bookers; i++) {
        pthread_join(bookers[i], NULL);
        client_destroy(&booker_clients[i]);
    }
    printf(", \"submit_failed\": %d, \"booking_refused\": %d, \"intake_rss_kb\": %ld, "
           "\"triage_rss_kb\": %ld,"
           " \"booking_rss_kb\": %ld}\n",
           s_submit_failed, s_book_failed, harness_peak_rss_kb(harness_pid(s_h, "intake")),
           harness_peak_rss_kb(harness_pid(s_h, "triage")),
           harness_peak_rss_kb(harness_pid(s_h, "booking")));
    harness_destroy(&s_h);
    return 0;
}
