// Benchmark: the national service rebuilding from an empty schema. The three streams it reads
// (intake, triage, booking) are loaded with a realistic backlog of N events in all (default
// 1,000,000), as the real services write them: per referral a ReferralSubmitted, a
// ReferralTriaged and the booking's ContactRecorded, SeatBooked, Part A and Part B attendance
// and CaseCompleted, and a CohortCreated per ten referrals, in time order (a case's booking
// events weeks apart, see LAG_PART_A). The real intake, triage and booking
// serve them (with their national views, which de-identify); their own consumers point
// nowhere, so only national works. Timed from national's start until its cursors reach the
// three heads; then every fact is checked. Prints one JSON line. Needs CARA_TEST_PGHOST/PORT.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "booking.pb-c.h"
#include "cara/pbjson.h"
#include "cara/timeutil.h"
#include "cara/uuid.h"
#include "harness.h"
#include "intake.pb-c.h"
#include "outbox_load.h"
#include "triage.pb-c.h"

#define SECRET "bench-national-pseudonym-secret"
#define EVENTS_PER_REFERRAL 7

static Cara__Referral *s_referral(void) {
    json_t *doc = json_load_file("examples/referral.json", 0, NULL);
    char err[256];
    Cara__Referral *r =
        doc ? (Cara__Referral *)pbjson_to_message(&cara__referral__descriptor, doc, err, sizeof err)
            : NULL;
    json_decref(doc);
    return r;
}

// A case's booking events come weeks apart, and the streams are in time order: with about 20
// referrals a day, Part A is 28 days (560 referrals) after the contact and seat booking, Part B
// and the completion 65 days (1,300 referrals) after. So a case's events are spread over
// several of national's batches, as in a real rebuild, not side by side.
#define LAG_PART_A 560
#define LAG_PART_B 1300

typedef struct {
    char id[UUID_STR_LEN], case_id[UUID_STR_LEN], booking_id[UUID_STR_LEN];
    char cohort[UUID_STR_LEN];
} s_ids_t;

typedef struct {
    outbox_load_t *intake, *triage, *booking;
    Cara__Referral *referral;
    char cohort[UUID_STR_LEN];
    s_ids_t ring[LAG_PART_B + 1]; // the ids of the cases still to finish
} s_loaders_t;

// A referral's start: submission, triage, first contact and seat (and a cohort per ten).
static int s_start(s_loaders_t *l, long i) {
    s_ids_t *c = &l->ring[i % (LAG_PART_B + 1)];
    uuid_new(c->id);
    uuid_new(c->case_id);
    uuid_new(c->booking_id);
    static char at[] = "2026-03-02T10:00:00Z";
    const char *force = l->referral->force, *provider = "p1";
    if (i % 10 == 0) {
        uuid_new(l->cohort);
        Cara__CohortCreated k = CARA__COHORT_CREATED__INIT;
        k.cohort_id = l->cohort;
        k.provider_id = (char *)provider;
        k.cohort_type = "male_intimate";
        k.town = "Carmarthen";
        k.capacity = 12;
        k.part_a_date = "2026-04-01";
        k.part_b_date = "2026-05-06";
        if (outbox_load_add(l->booking, &k.base, l->cohort, provider) < 0)
            return -1;
    }
    memcpy(c->cohort, l->cohort, sizeof c->cohort);
    Cara__ReferralSubmitted sub = CARA__REFERRAL_SUBMITTED__INIT;
    sub.referral_id = c->id;
    sub.received_at = at;
    sub.referral = l->referral;
    Cara__ReferralTriaged tri = CARA__REFERRAL_TRIAGED__INIT;
    tri.referral_id = c->id;
    tri.force = (char *)force;
    tri.provider_id = (char *)provider;
    tri.pathway = "male_intimate";
    tri.compliance_deadline = l->referral->caution->compliance_deadline;
    tri.caution_date = "2026-03-01";
    tri.victim_contact = 1;
    tri.triaged_at = at;
    tri.received_at = at;
    tri.referral = l->referral;
    Cara__ContactRecorded contact = CARA__CONTACT_RECORDED__INIT;
    contact.case_id = c->case_id;
    contact.referral_id = c->id;
    contact.provider_id = (char *)provider;
    contact.force = (char *)force;
    contact.channel = "phone";
    contact.outcome = "contacted";
    contact.at = "2026-03-04T09:30:00Z";
    Cara__SeatBooked seat = CARA__SEAT_BOOKED__INIT;
    seat.booking_id = c->booking_id;
    seat.case_id = c->case_id;
    seat.referral_id = c->id;
    seat.provider_id = (char *)provider;
    seat.force = (char *)force;
    seat.cohort_id = c->cohort;
    seat.cohort_type = "male_intimate";
    seat.town = "Carmarthen";
    seat.part_a_date = "2026-04-01";
    seat.part_b_date = "2026-05-06";
    seat.booked_at = "2026-03-04T09:40:00Z";
    return outbox_load_add(l->intake, &sub.base, c->id, force) < 0 ||
                   outbox_load_add(l->triage, &tri.base, c->id, provider) < 0 ||
                   outbox_load_add(l->booking, &contact.base, c->id, provider) < 0 ||
                   outbox_load_add(l->booking, &seat.base, c->id, provider) < 0
               ? -1
               : 0;
}

// Part A (p = 0) or Part B attended, and with Part B the completion, of referral i.
static int s_part(s_loaders_t *l, long i, int p) {
    const s_ids_t *c = &l->ring[i % (LAG_PART_B + 1)];
    const char *force = l->referral->force, *provider = "p1";
    Cara__AttendanceRecorded part = CARA__ATTENDANCE_RECORDED__INIT;
    part.booking_id = (char *)c->booking_id;
    part.case_id = (char *)c->case_id;
    part.referral_id = (char *)c->id;
    part.provider_id = (char *)provider;
    part.force = (char *)force;
    part.cohort_id = (char *)c->cohort;
    part.part = p ? "B" : "A";
    part.status = "attended";
    part.session_date = p ? "2026-05-06" : "2026-04-01";
    part.recorded_at = p ? "2026-05-06T18:00:00Z" : "2026-04-01T18:00:00Z";
    if (outbox_load_add(l->booking, &part.base, c->id, provider) < 0)
        return -1;
    if (!p)
        return 0;
    Cara__CaseCompleted done = CARA__CASE_COMPLETED__INIT;
    done.case_id = (char *)c->case_id;
    done.referral_id = (char *)c->id;
    done.provider_id = (char *)provider;
    done.force = (char *)force;
    done.pathway = "male_intimate";
    done.completed_at = "2026-05-06T18:00:00Z";
    done.cohort_id = (char *)c->cohort;
    return outbox_load_add(l->booking, &done.base, c->id, provider) < 0 ? -1 : 0;
}

// Step i of the streams in time order: referral i starts, i - LAG_PART_A sits Part A and
// i - LAG_PART_B Part B.
static int s_step(s_loaders_t *l, long i, long referrals) {
    return (i < referrals && s_start(l, i) != 0) ||
                   (i >= LAG_PART_A && i - LAG_PART_A < referrals &&
                    s_part(l, i - LAG_PART_A, 0) != 0) ||
                   (i >= LAG_PART_B && i - LAG_PART_B < referrals &&
                    s_part(l, i - LAG_PART_B, 1) != 0)
               ? -1
               : 0;
}

static long s_value(harness_t *h, const char *service, const char *sql) {
    char *v = harness_value(h, service, sql);
    long n = v ? atol(v) : -1;
    free(v);
    return n;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    long referrals = n * 10 / (EVENTS_PER_REFERRAL * 10 + 1);
    harness_t *h = harness_new("bench_national");
    if (!h)
        return 1;
    // The upstream services only serve their streams: their own consumers point nowhere.
    const char *nowhere = "\"tcp://127.0.0.1:9\"";
    harness_config(h, "intake", "upstreams.triage.router", nowhere);
    harness_config(h, "intake", "upstreams.booking.router", nowhere);
    harness_config(h, "triage", "upstreams.intake.router", nowhere);
    harness_config(h, "triage", "upstreams.booking.router", nowhere);
    harness_config(h, "booking", "upstreams.triage.router", nowhere);
    harness_config(h, "intake", "pseudonym_secret", "\"" SECRET "\"");
    harness_config(h, "national", "pseudonym_secret", "\"" SECRET "\"");
    harness_config(h, "national", "consumer", "{\"batch\": 2000, \"poll_ms\": 100}");
    if (harness_start(h, "intake") != 0 || harness_start(h, "triage") != 0 ||
        harness_start(h, "booking") != 0)
        return 1;
    static s_loaders_t l;
    l.intake = outbox_load_begin(db_conn(harness_db(h, "intake")));
    l.triage = outbox_load_begin(db_conn(harness_db(h, "triage")));
    l.booking = outbox_load_begin(db_conn(harness_db(h, "booking")));
    l.referral = s_referral();
    int64_t t_load = time_mono_ms();
    int loaded = l.intake && l.triage && l.booking && l.referral;
    for (long i = 0; loaded && i < referrals + LAG_PART_B; i++)
        loaded = s_step(&l, i, referrals) == 0;
    int64_t heads[3] = {l.intake ? outbox_load_end(&l.intake) : -1,
                        l.triage ? outbox_load_end(&l.triage) : -1,
                        l.booking ? outbox_load_end(&l.booking) : -1};
    if (l.referral)
        cara__referral__free_unpacked(l.referral, NULL);
    if (!loaded || heads[0] < 0 || heads[1] < 0 || heads[2] < 0) {
        fprintf(stderr, "bench_national: loading the streams failed\n");
        return 1;
    }
    long events = (long)(heads[0] + heads[1] + heads[2]);
    double load_s = (double)(time_mono_ms() - t_load) / 1000.0;

    // National from an empty schema, until it has read all three streams to their heads.
    int64_t t0 = time_mono_ms();
    if (harness_start(h, "national") != 0)
        return 1;
    long rss = 0;
    for (;;) {
        long done = s_value(h, "national", "SELECT coalesce(sum(seq), 0) FROM cursor");
        long r = harness_peak_rss_kb(harness_pid(h, "national"));
        if (r > rss)
            rss = r;
        if (done >= events)
            break;
        usleep(20000);
    }
    double apply_s = (double)(time_mono_ms() - t0) / 1000.0;
    // Every case and cohort is there, each fact once, and completed.
    long cases = s_value(h, "national", "SELECT count(*) FROM case_fact");
    long complete = s_value(h, "national",
                            "SELECT count(*) FROM case_fact WHERE completed_at IS NOT NULL AND"
                            " booked_at IS NOT NULL AND started_on IS NOT NULL AND"
                            " first_contact_at IS NOT NULL AND pathway IS NOT NULL");
    long cohorts = s_value(h, "national", "SELECT count(*) FROM cohort_fact");
    long dead = s_value(h, "national", "SELECT count(*) FROM dead_letter");
    // How many of the fact rows' updates stayed on their page (HOT: no index entry).
    usleep(1100 * 1000); // table statistics are flushed about once a second
    long upd = s_value(h, "national",
                       "SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'case_fact'");
    long hot = s_value(h, "national",
                       "SELECT n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'case_fact'");
    int exact =
        cases == referrals && complete == referrals && cohorts == (referrals + 9) / 10 && dead == 0;
    printf(
        "{\"events\": %ld, \"referrals\": %ld, \"load_seconds\": %.2f,"
        " \"national_seconds\": %.2f, \"national_per_s\": %.0f, \"facts_exact\": %s,"
        " \"national_rss_kb\": %ld, \"case_fact_updates\": %ld, \"case_fact_hot_updates\": %ld}\n",
        events, referrals, load_s, apply_s, events / apply_s, exact ? "true" : "false", rss, upd,
        hot);
    if (!exact)
        fprintf(stderr,
                "bench_national: %ld cases (%ld complete), %ld cohorts, %ld dead letters;"
                " expected %ld cases\n",
                cases, complete, cohorts, dead, referrals);
    harness_destroy(&h);
    return exact ? 0 : 1;
}
