// national over a generated population of 5,000 cases across 4 forces and 2 providers, fed as
// real events on the intake, triage and booking streams (with personal data in them, as the
// producers hold it; their de-identifying views serve national): every published measure of
// every breakdown equals an independent computation here; every count of 1-4 is withheld and
// no withheld count can be derived from the rest of the return; no personal data reaches the
// national schema or its log; dropping the schema and replaying every stream gives
// byte-identical returns; the HTML report renders in headless Chromium.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "booking.pb-c.h"
#include "cara/stream.h"
#include "cara/timeutil.h"
#include "cara/uuid.h"
#include "harness.h"
#include "intake.pb-c.h"
#include "national.pb-c.h"
#include "national_suppress.h"
#include "test_national_support.h"
#include "triage.pb-c.h"

#define CASES 5000
#define SECRET "a-test-deployment-secret-0123456789"
#define COMPLETED 0
#define NON_COMPLIANT 1
#define IN_PROGRESS 2
#define RETURNED 3
#define WITHDRAWN 4

static const char *const s_forces[] = {"dyfed-powys", "gwent", "north-wales", "south-wales"};
static const char *const s_outcomes[] = {"completed", "non_compliant", "in_progress", "returned",
                                         "withdrawn"};
static const char *const s_eth[] = {
    "white_british",   "white_british", "white_british", "white_british", "white_british",
    "white_british",   "white_british", "white_british", "white_british", "white_british",
    "white_british",   "white_british", "white_other",   "white_other",   "asian_indian",
    "asian_pakistani", "black_african", "mixed_other",   "other_arab",    "not_stated"};
static const char *const s_ret_reasons[] = {"dash_high", "previous_da", "offence_ineligible"};
static const char *const s_nc_reasons[] = {"did_not_attend", "refused", "not_contactable"};

// What the test generated for one case: the truth the return is checked against.
typedef struct {
    int force, person, outcome;
    const char *provider, *pathway, *sex, *eth, *ret_reason, *nc_reason;
    int age;
    int32_t caution;
    bool booked, started, contacted, offered, accepted;
    int d[5]; // days after the caution: referral, first contact, booking, Part A, completion
    bool has[5];
} s_case_t;

static harness_t *h;
static s_case_t s_cases[CASES];
static bool s_rep[CASES]; // a repeat referral

static int setup(void **state) {
    (void)state;
    h = harness_new("national_pop");
    if (!h)
        return -1;
    harness_config(h, "intake", "pseudonym_secret", "\"" SECRET "\"");
    harness_config(h, "national", "pseudonym_secret", "\"" SECRET "\"");
    harness_config(h, "national", "consumer", "{\"batch\": 1000, \"poll_ms\": 200}");
    // The producers only serve their streams here: the population is written straight into
    // their outboxes, and they must not act on it themselves, so their consumers point nowhere.
    const char *nowhere = "{\"router\": \"tcp://127.0.0.1:9\", \"pub\": \"tcp://127.0.0.1:9\"}";
    harness_config(h, "intake", "upstreams.triage", nowhere);
    harness_config(h, "intake", "upstreams.booking", nowhere);
    harness_config(h, "triage", "upstreams.intake", nowhere);
    harness_config(h, "booking", "upstreams.triage", nowhere);
    return harness_start(h, "intake") == 0 && harness_start(h, "triage") == 0 &&
                   harness_start(h, "booking") == 0
               ? 0
               : -1;
}

static int teardown(void **state) {
    (void)state;
    harness_destroy(&h);
    return 0;
}

static void s_iso(int32_t day, const char *clock, char *out, size_t size) {
    char date[16];
    time_format_date(day, date, sizeof date);
    snprintf(out, size, "%sT%sZ", date, clock);
}

// --- the test's own view of the labels --------------------------------------------------------

static const char *s_band(int age) {
    return age < 18    ? "unknown"
           : age <= 24 ? "18-24"
           : age <= 34 ? "25-34"
           : age <= 44 ? "35-44"
           : age <= 54 ? "45-54"
                       : "55+";
}

static const char *s_group(const char *code) {
    static const char *const g[] = {"asian", "black", "mixed", "white", "other"};
    for (int i = 0; i < 5; i++)
        if (strncmp(code, g[i], strlen(g[i])) == 0 && code[strlen(g[i])] == '_')
            return g[i];
    return "unknown";
}

static void s_label(const s_case_t *c, const char *dim, char *out, size_t size) {
    if (strcmp(dim, "force") == 0)
        snprintf(out, size, "%s", s_forces[c->force]);
    else if (strcmp(dim, "provider") == 0)
        snprintf(out, size, "%s", c->provider ? c->provider : "not_triaged");
    else if (strcmp(dim, "pathway") == 0)
        snprintf(out, size, "%s", c->pathway ? c->pathway : "not_triaged");
    else if (strcmp(dim, "month") == 0) {
        int y;
        unsigned m, d;
        time_civil_from_days(c->caution, &y, &m, &d);
        snprintf(out, size, "%04d-%02u", y, m);
    } else if (strcmp(dim, "sex") == 0)
        snprintf(out, size, "%s", *c->sex ? c->sex : "unknown");
    else if (strcmp(dim, "age_band") == 0)
        snprintf(out, size, "%s", s_band(c->age));
    else if (strcmp(dim, "ethnic_group") == 0)
        snprintf(out, size, "%s", s_group(c->eth));
    else
        snprintf(out, size, "all");
}

// A repeat: the same person (name and date of birth) was referred with an earlier caution.
static bool s_is_repeat(int i) {
    for (int j = 0; j < CASES; j++)
        if (j != i && s_cases[j].person == s_cases[i].person &&
            s_cases[j].caution < s_cases[i].caution)
            return true;
    return false;
}

// --- generation -------------------------------------------------------------------------------

static void s_append(db_t *db, const ProtobufCMessage *m, const char *key, const char *scope) {
    assert_true(outbox_append(db, m, key, scope, key, NULL) > 0);
}

static void s_generate(void) {
    db_t *in = harness_db(h, "intake"), *tr = harness_db(h, "triage"),
         *bk = harness_db(h, "booking");
    assert_int_equal(db_begin(in), 0);
    assert_int_equal(db_begin(tr), 0);
    assert_int_equal(db_begin(bk), 0);
    int32_t jan1 = time_days_from_civil(2025, 1, 1);
    for (int i = 0; i < CASES; i++) {
        s_case_t *c = &s_cases[i];
        memset(c, 0, sizeof *c);
        c->force = i % 4;
        c->person = i % 50 == 7 ? s_cases[i - 7].person : i;
        c->caution = jan1 + (i * 89) % 270;
        int byear = 1960 + c->person % 45;
        // Born 31 March; cautions fall on days 1-28 only in March, so never on the birthday.
        int y;
        unsigned m, d;
        time_civil_from_days(c->caution, &y, &m, &d);
        c->age = y - byear - (m < 3 || (m == 3 && d < 31) ? 1 : 0);
        c->sex = i % 97 == 0 ? "" : i % 5 == 0 ? "female" : "male";
        c->eth = i % 101 == 0 ? "asian_chinese" : s_eth[i % 20]; // amended below
        c->outcome = (c->force == 2 && i < 40)        ? WITHDRAWN
                     : (c->force == 1 && i < 40)      ? RETURNED
                     : (c->force != 1 && i % 23 == 0) ? RETURNED
                     : i % 11 == 0                    ? NON_COMPLIANT
                     : i % 3 == 0                     ? IN_PROGRESS
                                                      : COMPLETED;
        char id[UUID_STR_LEN], given[40], received[40], dob[16], name[64], phone[24], email[64];
        uuid_new(id);
        s_iso(c->caution, "10:00:00", given, sizeof given);
        c->d[0] = i % 5;
        c->has[0] = true;
        s_iso(c->caution + c->d[0], "12:00:00", received, sizeof received);
        snprintf(dob, sizeof dob, "%d-03-31", byear);
        snprintf(name, sizeof name, "Testname Person%d", c->person);
        snprintf(phone, sizeof phone, "07700 9%05d", c->person);
        snprintf(email, sizeof email, "person%d@example.org", c->person);
        Cara__Offender off = CARA__OFFENDER__INIT;
        off.name = name;
        off.date_of_birth = dob;
        off.sex = (char *)c->sex;
        off.phone = phone;
        off.email = email;
        off.address = "1 Secret Street";
        off.access_needs = "Freetext about the person";
        off.ethnicity = (char *)(i % 101 == 0 ? "white_british" : c->eth);
        Cara__Victim victim = CARA__VICTIM__INIT;
        victim.name = "Victimname Secret";
        victim.phone = "07700 111111";
        victim.email = "victim@example.com";
        Cara__Caution caution = CARA__CAUTION__INIT;
        caution.given_at = given;
        caution.offence_category = i % 9 == 0 ? "criminal_damage" : "common_assault";
        caution.compliance_deadline = "2025-12-31";
        caution.condition_text = "Freetext condition";
        Cara__Risk risk = CARA__RISK__INIT;
        risk.dash_level = i % 13 == 0 ? "medium" : "standard";
        risk.previous_da = "no";
        risk.safeguarding_notes = "Freetext notes";
        Cara__Referral r = CARA__REFERRAL__INIT;
        r.force = (char *)s_forces[c->force];
        r.caution_reference = name;
        r.officer = "PC Testname";
        r.caution = &caution;
        r.offender = &off;
        r.victim = &victim;
        r.risk = &risk;
        r.relationship = "intimate";
        Cara__ReferralSubmitted sub = CARA__REFERRAL_SUBMITTED__INIT;
        sub.referral_id = id;
        sub.received_at = received;
        sub.referral = &r;
        s_append(in, &sub.base, id, r.force);
        if (i % 101 == 0) { // an amendment of the ethnicity (the whole referral travels)
            off.ethnicity = (char *)c->eth;
            Cara__FieldChange fc = CARA__FIELD_CHANGE__INIT, *fcs[] = {&fc};
            fc.field = "offender.ethnicity";
            fc.old_value = "white_british";
            fc.new_value = (char *)c->eth;
            Cara__ReferralAmended am = CARA__REFERRAL_AMENDED__INIT;
            am.referral_id = id;
            am.reason = "Freetext reason naming Testname";
            am.changes = fcs;
            am.n_changes = 1;
            am.referral = &r;
            s_append(in, &am.base, id, r.force);
        }
        if (c->outcome == RETURNED) {
            c->ret_reason = s_ret_reasons[i % 3];
            Cara__ReasonCode rc1 = CARA__REASON_CODE__INIT, rc2 = CARA__REASON_CODE__INIT;
            rc1.code = (char *)c->ret_reason;
            rc1.detail = "Freetext detail";
            rc2.code = "manual";
            Cara__ReasonCode *rcs[] = {&rc1, &rc2};
            Cara__ReferralReturned ret = CARA__REFERRAL_RETURNED__INIT;
            ret.referral_id = id;
            ret.force = r.force;
            ret.reasons = rcs;
            ret.n_reasons = i % 2 ? 2 : 1;
            ret.returned_at = received;
            s_append(tr, &ret.base, id, r.force);
            continue;
        }
        if (c->outcome == WITHDRAWN) {
            Cara__ReferralWithdrawn w = CARA__REFERRAL_WITHDRAWN__INIT;
            w.referral_id = id;
            w.force = r.force;
            w.reason_code = "error";
            w.reason = "Testname mentioned in free text";
            w.withdrawn_at = received;
            s_append(in, &w.base, id, r.force);
            continue;
        }
        // One case (caution in May 2025) goes to a third provider: a row of the year that
        // most of its periods have no case in.
        c->provider = i == 4998 ? "p3" : (c->force < 2) != (i % 29 == 0) ? "p1" : "p2";
        c->pathway = i % 17 == 0 ? "telephone"
                     : strcmp(c->sex, "female") == 0
                         ? (i % 3 ? "female_intimate" : "female_non_intimate")
                         : (i % 3 ? "male_intimate" : "male_non_intimate");
        Cara__ReferralTriaged t = CARA__REFERRAL_TRIAGED__INIT;
        t.referral_id = id;
        t.force = r.force;
        t.provider_id = (char *)c->provider;
        t.pathway = (char *)c->pathway;
        t.referral = &r; // triage holds it; the national view must strip it
        t.triaged_at = received;
        t.received_at = received;
        s_append(tr, &t.base, id, c->provider);
        char at[40];
        // Contact: a failed attempt first (not a contact), then the first real contact.
        if (i % 13 != 0) {
            c->contacted = true;
            c->d[1] = 2 + i % 7;
            c->has[1] = true;
            Cara__ContactRecorded cr = CARA__CONTACT_RECORDED__INIT;
            cr.referral_id = id;
            cr.provider_id = (char *)c->provider;
            cr.channel = "phone";
            cr.outcome = "no_answer";
            s_iso(c->caution + 1, "09:00:00", at, sizeof at);
            cr.at = at;
            s_append(bk, &cr.base, id, c->provider);
            char at2[40];
            cr.outcome = "contacted";
            s_iso(c->caution + c->d[1], "09:00:00", at2, sizeof at2);
            cr.at = at2;
            s_append(bk, &cr.base, id, c->provider);
        }
        if (i % 5 == 0) {
            c->offered = true;
            c->accepted = i % 10 == 0;
            Cara__VictimContactRecorded v = CARA__VICTIM_CONTACT_RECORDED__INIT;
            v.referral_id = id;
            v.provider_id = (char *)c->provider;
            v.kind = "offer";
            s_append(bk, &v.base, id, c->provider);
            if (c->accepted) {
                v.kind = "accepted";
                s_append(bk, &v.base, id, c->provider);
            }
        }
        c->booked = c->outcome != IN_PROGRESS || i % 2 == 0;
        c->started = c->outcome == COMPLETED || (c->booked && i % 4 == 0);
        if (c->booked) {
            c->d[2] = 3 + i % 11;
            c->has[2] = true;
            Cara__SeatBooked sb = CARA__SEAT_BOOKED__INIT;
            sb.referral_id = id;
            sb.provider_id = (char *)c->provider;
            s_iso(c->caution + c->d[2], "11:00:00", at, sizeof at);
            sb.booked_at = at;
            s_append(bk, &sb.base, id, c->provider);
        }
        if (c->started) {
            c->d[3] = 10 + i % 13;
            c->has[3] = true;
            char date[16];
            time_format_date(c->caution + c->d[3], date, sizeof date);
            Cara__AttendanceRecorded ar = CARA__ATTENDANCE_RECORDED__INIT;
            ar.referral_id = id;
            ar.provider_id = (char *)c->provider;
            ar.part = "A";
            ar.status = "attended";
            ar.session_date = date;
            s_append(bk, &ar.base, id, c->provider);
        }
        if (c->outcome == COMPLETED) {
            c->d[4] = 20 + i % 17;
            c->has[4] = true;
            Cara__CaseCompleted done = CARA__CASE_COMPLETED__INIT;
            done.referral_id = id;
            done.provider_id = (char *)c->provider;
            s_iso(c->caution + c->d[4], "15:00:00", at, sizeof at);
            done.completed_at = at;
            s_append(bk, &done.base, id, c->provider);
        } else if (c->outcome == NON_COMPLIANT) {
            c->nc_reason = s_nc_reasons[i % 3];
            Cara__CaseNonCompliant nc = CARA__CASE_NON_COMPLIANT__INIT;
            nc.referral_id = id;
            nc.provider_id = (char *)c->provider;
            nc.reason = (char *)c->nc_reason;
            s_append(bk, &nc.base, id, c->provider);
        }
    }
    // Cohorts (Part B in Q2): p1 delivers 3 group cohorts (one corrected) and a telephone
    // cohort; p2 delivers 2 and cancels 1; in Q3 p2 one, p3 and p4 one small one each.
    const struct {
        const char *provider, *type, *part_b;
        unsigned capacity, participants, corrected;
        bool cancelled;
    } cohorts[] = {
        {"p1", "male_intimate", "2025-04-20", 12, 10, 11, false},
        {"p1", "male_intimate", "2025-05-20", 12, 8, 0, false},
        {"p1", "female_intimate", "2025-06-10", 10, 6, 0, false},
        {"p1", "telephone", "2025-06-12", 1, 1, 0, false},
        {"p2", "male_non_intimate", "2025-05-02", 12, 12, 0, false},
        {"p2", "male_intimate", "2025-06-25", 12, 9, 0, false},
        {"p2", "male_intimate", "2025-06-28", 12, 0, 0, true},
        {"p2", "male_intimate", "2025-07-20", 12, 7, 0, false}, // Q3
        // Two providers with one small cohort each in August: 3 and 2 of 12 seats.
        {"p3", "female_intimate", "2025-08-10", 12, 3, 0, false},
        {"p4", "male_intimate", "2025-08-12", 12, 2, 0, false},
    };
    for (size_t k = 0; k < sizeof cohorts / sizeof *cohorts; k++) {
        char id[UUID_STR_LEN];
        uuid_new(id);
        Cara__CohortCreated cc = CARA__COHORT_CREATED__INIT;
        cc.cohort_id = id;
        cc.provider_id = (char *)cohorts[k].provider;
        cc.cohort_type = (char *)cohorts[k].type;
        cc.town = "Secret Street";
        cc.capacity = cohorts[k].capacity;
        cc.part_b_date = (char *)cohorts[k].part_b;
        s_append(bk, &cc.base, id, cohorts[k].provider);
        if (cohorts[k].cancelled) {
            Cara__CohortCancelled cx = CARA__COHORT_CANCELLED__INIT;
            cx.cohort_id = id;
            cx.provider_id = (char *)cohorts[k].provider;
            cx.reason = "Freetext";
            s_append(bk, &cx.base, id, cohorts[k].provider);
            continue;
        }
        Cara__CohortDelivered cd = CARA__COHORT_DELIVERED__INIT;
        cd.cohort_id = id;
        cd.provider_id = (char *)cohorts[k].provider;
        cd.cohort_type = (char *)cohorts[k].type;
        cd.participants = cohorts[k].participants;
        cd.part_b_date = (char *)cohorts[k].part_b;
        s_append(bk, &cd.base, id, cohorts[k].provider);
        if (cohorts[k].corrected) {
            cd.participants = cohorts[k].corrected;
            cd.revision = 1;
            s_append(bk, &cd.base, id, cohorts[k].provider);
        }
    }
    assert_int_equal(db_commit(in), 0);
    assert_int_equal(db_commit(tr), 0);
    assert_int_equal(db_commit(bk), 0);
    int repeats = 0;
    for (int i = 0; i < CASES; i++)
        repeats += s_rep[i] = s_is_repeat(i);
    assert_true(repeats > 50);
}

static void s_wait_ingested(void) {
    const char *streams[] = {"intake", "triage", "booking"};
    for (int s = 0; s < 3; s++) {
        char *head = harness_value(h, streams[s], "SELECT max(seq) FROM outbox");
        char sql[160];
        snprintf(sql, sizeof sql, "SELECT seq >= %s FROM cursor WHERE stream = '%s'", head,
                 streams[s]);
        assert_int_equal(harness_wait_value(h, "national", sql, "t", 240000), 0);
        free(head);
    }
}

static json_t *s_export_json(const char *period) {
    int status = 0;
    char *text = national_export(h, period, "json", 0, &status);
    assert_int_equal(status, CARA__REPLY__STATUS__OK);
    assert_non_null(text);
    json_t *doc = json_loads(text, 0, NULL);
    assert_non_null(doc);
    free(text);
    return doc;
}

// --- the independent computation --------------------------------------------------------------

typedef struct {
    long n, outcome[5], stage[4], mode[3], victim[3], repeat[3], booked, started, offered;
    int days[5][CASES];
    int n_days[5];
} s_truth_t;

static int s_cmp(const void *a, const void *b) {
    return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

static void s_truth(s_truth_t *t, int32_t from, int32_t to, const char *dim, const char *label) {
    memset(t, 0, sizeof *t);
    for (int i = 0; i < CASES; i++) {
        const s_case_t *c = &s_cases[i];
        char l[64];
        s_label(c, dim, l, sizeof l);
        if (c->caution < from || c->caution > to || strcmp(l, label) != 0)
            continue;
        t->n++;
        t->outcome[c->outcome]++;
        int stage = c->outcome == COMPLETED ? 3 : c->started ? 2 : c->booked ? 1 : 0;
        t->stage[stage]++;
        t->booked += stage >= 1;
        t->started += stage >= 2;
        t->mode[!c->pathway ? 2 : strcmp(c->pathway, "telephone") == 0 ? 1 : 0]++;
        t->victim[c->accepted ? 0 : c->offered ? 1 : 2]++;
        t->offered += c->offered;
        t->repeat[s_rep[i] ? 0 : 1]++;
        for (int k = 0; k < 5; k++)
            if (c->has[k])
                t->days[k][t->n_days[k]++] = c->d[k];
    }
    for (int k = 0; k < 5; k++)
        qsort(t->days[k], (size_t)t->n_days[k], sizeof(int), s_cmp);
}

static long s_checked, s_withheld;

// A published count equals the truth; a withheld one is null; every count of 1-4 is withheld.
static void s_count_is(const json_t *v, long truth, const char *what, const char *label) {
    if (truth >= 1 && truth <= 4 && !json_is_null(v))
        fail_msg("%s %s: count %ld published", label, what, truth);
    if (json_is_null(v)) {
        s_withheld++;
        return;
    }
    if (!json_is_integer(v) || json_integer_value(v) != truth)
        fail_msg("%s %s: published %lld, expected %ld", label, what,
                 (long long)json_integer_value(v), truth);
    s_checked++;
}

static void s_rate_is(const json_t *v, long num, long den, const char *what, const char *label) {
    if (den < 10) {
        assert_true(json_is_null(v));
        return;
    }
    if (json_is_null(v))
        return; // its parts are withheld
    double want = 100.0 * (double)num / (double)den;
    if (fabs(json_real_value(v) - want) > 0.0501)
        fail_msg("%s %s: %.1f, expected %.3f", label, what, json_real_value(v), want);
    s_checked++;
}

// Nearest rank, written out: the smallest value with at least p% of values at or below it.
static int s_nearest(const int *v, int n, double p) {
    for (int k = 0; k < n; k++)
        if ((double)(k + 1) >= p / 100.0 * n - 1e-9)
            return v[k];
    return v[n - 1];
}

static void s_row_is(const json_t *row, const s_truth_t *t, const char *label) {
    static const char *const stage[] = {"not_booked", "booked_not_started", "started_not_completed",
                                        "completed"};
    static const char *const mode[] = {"group", "telephone", "not_triaged"};
    static const char *const victim[] = {"offered_accepted", "offered_not_accepted", "not_offered"};
    static const char *const repeat[] = {"repeat", "first", "unknown"};
    static const char *const times[] = {"caution_to_referral", "caution_to_first_contact",
                                        "caution_to_booking", "caution_to_part_a",
                                        "caution_to_completion"};
    s_count_is(json_object_get(row, "referred"), t->n, "referred", label);
    for (int k = 0; k < 5; k++)
        s_count_is(json_object_get(json_object_get(row, "outcome"), s_outcomes[k]), t->outcome[k],
                   s_outcomes[k], label);
    for (int k = 0; k < 4; k++)
        s_count_is(json_object_get(json_object_get(row, "stage"), stage[k]), t->stage[k], stage[k],
                   label);
    for (int k = 0; k < 3; k++) {
        s_count_is(json_object_get(json_object_get(row, "pathway_mode"), mode[k]), t->mode[k],
                   mode[k], label);
        s_count_is(json_object_get(json_object_get(row, "victim_contact"), victim[k]), t->victim[k],
                   victim[k], label);
        s_count_is(json_object_get(json_object_get(row, "repeat"), repeat[k]), t->repeat[k],
                   repeat[k], label);
    }
    s_count_is(json_object_get(row, "booked"), t->booked, "booked", label);
    s_count_is(json_object_get(row, "started"), t->started, "started", label);
    s_count_is(json_object_get(row, "victim_contact_offered"), t->offered, "offered", label);
    s_rate_is(json_object_get(row, "completion_rate_percent"), t->outcome[COMPLETED],
              t->outcome[COMPLETED] + t->outcome[NON_COMPLIANT], "completion rate", label);
    s_rate_is(json_object_get(row, "telephone_share_percent"), t->mode[1], t->mode[0] + t->mode[1],
              "telephone share", label);
    s_rate_is(json_object_get(row, "victim_contact_accepted_percent"), t->victim[0], t->offered,
              "victim accepted", label);
    for (int k = 0; k < 5; k++) {
        json_t *tm = json_object_get(json_object_get(row, "times"), times[k]);
        assert_non_null(tm);
        if (t->n_days[k] < 10) {
            assert_true(json_is_null(json_object_get(tm, "median_days")));
            continue;
        }
        assert_int_equal(json_integer_value(json_object_get(tm, "median_days")),
                         s_nearest(t->days[k], t->n_days[k], 50));
        assert_int_equal(json_integer_value(json_object_get(tm, "p90_days")),
                         s_nearest(t->days[k], t->n_days[k], 90));
        s_checked += 2;
    }
}

// The labels a breakdown must have, in order: fixed enumerations, or those found, sorted.
static void s_expected_labels(const char *dim, int32_t from, int32_t to, json_t *out) {
    static const char *const sexes[] = {"female", "male", "unknown", NULL};
    static const char *const bands[] = {"18-24", "25-34", "35-44", "45-54", "55+", "unknown", NULL};
    static const char *const groups[] = {"asian", "black",   "mixed", "white",
                                         "other", "unknown", NULL};
    static const char *const pathways[] = {
        "female_intimate", "female_non_intimate", "male_intimate", "male_non_intimate",
        "telephone",       "not_triaged",         "unknown",       NULL};
    const char *const *fixed = strcmp(dim, "sex") == 0            ? sexes
                               : strcmp(dim, "age_band") == 0     ? bands
                               : strcmp(dim, "ethnic_group") == 0 ? groups
                               : strcmp(dim, "pathway") == 0      ? pathways
                                                                  : NULL;
    for (int i = 0; fixed && fixed[i]; i++)
        json_array_append_new(out, json_string(fixed[i]));
    if (fixed)
        return;
    if (strcmp(dim, "month") == 0) {
        int y;
        unsigned m, d;
        time_civil_from_days(from, &y, &m, &d);
        for (int32_t day = from; day <= to;) {
            char l[16];
            snprintf(l, sizeof l, "%04d-%02u", y, m);
            json_array_append_new(out, json_string(l));
            if (++m > 12) {
                m = 1;
                y++;
            }
            day = time_days_from_civil(y, m, 1);
        }
        return;
    }
    // Found: insert sorted, unique. Every return of a financial year lists the rows found in
    // the whole year (with zeros where a period has none), so the returns add up row by row.
    int y;
    unsigned m, d;
    time_civil_from_days(from, &y, &m, &d);
    int fy = m >= 4 ? y : y - 1;
    int32_t fy_from = time_days_from_civil(fy, 4, 1),
            fy_to = time_days_from_civil(fy + 1, 4, 1) - 1;
    (void)to;
    for (int i = 0; i < CASES; i++) {
        char l[64];
        if (s_cases[i].caution < fy_from || s_cases[i].caution > fy_to)
            continue;
        s_label(&s_cases[i], dim, l, sizeof l);
        size_t k = 0, n = json_array_size(out);
        while (k < n && strcmp(json_string_value(json_array_get(out, k)), l) < 0)
            k++;
        if (k == n || strcmp(json_string_value(json_array_get(out, k)), l) != 0)
            json_array_insert_new(out, k, json_string(l));
    }
}

// --- the attacker: every published relation of the return, solved at once --------------------

typedef struct {
    national_sdc_t *s;
    int n_small;
    int small[20000];
} s_attack_t;

static int s_attack_cell(s_attack_t *a, const json_t *v, long truth) {
    (void)v;
    int c = national_sdc_cell(a->s, truth, false);
    assert_true(c >= 0);
    if (truth >= 1 && truth <= 4)
        a->small[a->n_small++] = c;
    return c;
}

typedef struct {
    int referred, outcome[5], stage[4], mode[3], victim[3], repeat[3], booked, started, offered;
} s_cells_t;

static void s_attack_row(s_attack_t *a, const json_t *row, const s_truth_t *t, s_cells_t *c,
                         bool *hidden, int *n_hidden) {
    static const char *const stage[] = {"not_booked", "booked_not_started", "started_not_completed",
                                        "completed"};
    static const char *const mode[] = {"group", "telephone", "not_triaged"};
    static const char *const victim[] = {"offered_accepted", "offered_not_accepted", "not_offered"};
    static const char *const repeat[] = {"repeat", "first", "unknown"};
#define CELL(slot, json, truth)                                                                    \
    do {                                                                                           \
        (slot) = s_attack_cell(a, (json), (truth));                                                \
        hidden[(slot)] = json_is_null(json);                                                       \
        *n_hidden += hidden[(slot)];                                                               \
    } while (0)
    CELL(c->referred, json_object_get(row, "referred"), t->n);
    for (int k = 0; k < 5; k++)
        CELL(c->outcome[k], json_object_get(json_object_get(row, "outcome"), s_outcomes[k]),
             t->outcome[k]);
    for (int k = 0; k < 4; k++)
        CELL(c->stage[k], json_object_get(json_object_get(row, "stage"), stage[k]), t->stage[k]);
    for (int k = 0; k < 3; k++) {
        CELL(c->mode[k], json_object_get(json_object_get(row, "pathway_mode"), mode[k]),
             t->mode[k]);
        CELL(c->victim[k], json_object_get(json_object_get(row, "victim_contact"), victim[k]),
             t->victim[k]);
        CELL(c->repeat[k], json_object_get(json_object_get(row, "repeat"), repeat[k]),
             t->repeat[k]);
    }
    CELL(c->booked, json_object_get(row, "booked"), t->booked);
    CELL(c->started, json_object_get(row, "started"), t->started);
    CELL(c->offered, json_object_get(row, "victim_contact_offered"), t->offered);
#undef CELL
    // The relations a reader knows: each family sums to referred; the funnel; the same
    // "completed" in two places.
    assert_int_equal(national_sdc_line(a->s, c->outcome, 5, c->referred), 0);
    assert_int_equal(national_sdc_line(a->s, c->stage, 4, c->referred), 0);
    assert_int_equal(national_sdc_line(a->s, c->mode, 3, c->referred), 0);
    assert_int_equal(national_sdc_line(a->s, c->victim, 3, c->referred), 0);
    assert_int_equal(national_sdc_line(a->s, c->repeat, 3, c->referred), 0);
    int booked[] = {c->stage[1], c->stage[2], c->stage[3]}, started[] = {c->stage[2], c->stage[3]},
        offered[] = {c->victim[0], c->victim[1]}, same[] = {c->stage[3]};
    assert_int_equal(national_sdc_line(a->s, booked, 3, c->booked), 0);
    assert_int_equal(national_sdc_line(a->s, started, 2, c->started), 0);
    assert_int_equal(national_sdc_line(a->s, offered, 2, c->offered), 0);
    assert_int_equal(national_sdc_line(a->s, same, 1, c->outcome[COMPLETED]), 0);
}

// Lines over the rows of a breakdown for one member of s_cells_t (by offset).
static void s_attack_column(s_attack_t *a, const s_cells_t *rows, int n, const s_cells_t *total,
                            size_t offset) {
    int parts[64];
    for (int k = 0; k < n; k++)
        parts[k] = *(const int *)((const char *)&rows[k] + offset);
    assert_int_equal(
        national_sdc_line(a->s, parts, n, *(const int *)((const char *)total + offset)), 0);
}

static void s_check_return(json_t *doc, const char *period, int32_t from, int32_t to) {
    static const char *const dims[] = {"force", "provider", "pathway",     "month",
                                       "sex",   "age_band", "ethnic_group"};
    s_truth_t *t = malloc(sizeof *t);
    s_attack_t *a = calloc(1, sizeof *a);
    bool *hidden = calloc(40000, sizeof *hidden);
    assert_non_null(t);
    assert_non_null(a);
    assert_non_null(hidden);
    a->s = national_sdc_new();
    int n_hidden = 0;
    s_checked = s_withheld = 0;
    assert_string_equal(json_string_value(json_object_get(doc, "schema_version")), "2.0");
    assert_string_equal(json_string_value(json_object_get(doc, "period")), period);
    s_cells_t total, rows[64];
    s_truth(t, from, to, "all", "all");
    assert_true(t->n > 300);
    s_row_is(json_object_get(doc, "totals"), t, "all");
    s_attack_row(a, json_object_get(doc, "totals"), t, &total, hidden, &n_hidden);
    s_cells_t force_rows[8];
    for (size_t d = 0; d < sizeof dims / sizeof *dims; d++) {
        json_t *got = json_object_get(json_object_get(doc, "breakdowns"), dims[d]);
        json_t *want = json_array();
        s_expected_labels(dims[d], from, to, want);
        assert_int_equal(json_array_size(got), json_array_size(want));
        size_t i;
        json_t *row;
        json_array_foreach(got, i, row) {
            const char *label = json_string_value(json_object_get(row, "label"));
            assert_string_equal(label, json_string_value(json_array_get(want, i)));
            s_truth(t, from, to, dims[d], label);
            s_row_is(row, t, label);
            s_attack_row(a, row, t, &rows[i], hidden, &n_hidden);
        }
        json_decref(want);
        size_t n = json_array_size(got);
        s_cells_t *R = rows;
        s_attack_column(a, R, (int)n, &total, offsetof(s_cells_t, referred));
        for (int k = 0; k < 5; k++)
            s_attack_column(a, R, (int)n, &total, offsetof(s_cells_t, outcome) + sizeof(int) * k);
        for (int k = 0; k < 4; k++)
            s_attack_column(a, R, (int)n, &total, offsetof(s_cells_t, stage) + sizeof(int) * k);
        for (int k = 0; k < 3; k++) {
            s_attack_column(a, R, (int)n, &total, offsetof(s_cells_t, mode) + sizeof(int) * k);
            s_attack_column(a, R, (int)n, &total, offsetof(s_cells_t, victim) + sizeof(int) * k);
            s_attack_column(a, R, (int)n, &total, offsetof(s_cells_t, repeat) + sizeof(int) * k);
        }
        s_attack_column(a, R, (int)n, &total, offsetof(s_cells_t, booked));
        s_attack_column(a, R, (int)n, &total, offsetof(s_cells_t, started));
        s_attack_column(a, R, (int)n, &total, offsetof(s_cells_t, offered));
        if (d == 0)
            memcpy(force_rows, rows, n * sizeof *rows);
    }
    // Reason breakdowns: per force, tied to its returned / non-compliant count.
    const char *const tables[] = {"returned_by_reason", "non_compliant_by_reason"};
    for (int k = 0; k < 2; k++) {
        json_t *rt = json_object_get(doc, tables[k]);
        json_t *reasons = json_object_get(rt, "reasons");
        size_t nr = json_array_size(reasons), j, f;
        json_t *reason, *row;
        assert_int_equal(nr, 3); // the three primary codes ("manual" is never first)
        int totals[8], cells[8][8];
        json_array_foreach(reasons, j, reason) {
            long want = 0;
            for (int i = 0; i < CASES; i++) {
                const char *r = k == 0 ? s_cases[i].ret_reason : s_cases[i].nc_reason;
                want += s_cases[i].caution >= from && s_cases[i].caution <= to && r &&
                        strcmp(r, json_string_value(reason)) == 0;
            }
            json_t *v = json_object_get(json_object_get(rt, "totals"), json_string_value(reason));
            s_count_is(v, want, json_string_value(reason), "all");
            totals[j] = s_attack_cell(a, v, want);
            hidden[totals[j]] = json_is_null(v);
        }
        json_array_foreach(json_object_get(rt, "by_force"), f, row) {
            json_array_foreach(reasons, j, reason) {
                long want = 0;
                for (int i = 0; i < CASES; i++) {
                    const char *r = k == 0 ? s_cases[i].ret_reason : s_cases[i].nc_reason;
                    want += s_cases[i].caution >= from && s_cases[i].caution <= to && r &&
                            strcmp(s_forces[s_cases[i].force],
                                   json_string_value(json_object_get(row, "label"))) == 0 &&
                            strcmp(r, json_string_value(reason)) == 0;
                }
                json_t *v =
                    json_object_get(json_object_get(row, "counts"), json_string_value(reason));
                s_count_is(v, want, json_string_value(reason),
                           json_string_value(json_object_get(row, "label")));
                cells[f][j] = s_attack_cell(a, v, want);
                hidden[cells[f][j]] = json_is_null(v);
            }
            assert_int_equal(
                national_sdc_line(a->s, cells[f], (int)nr,
                                  force_rows[f].outcome[k == 0 ? RETURNED : NON_COMPLIANT]),
                0);
        }
        for (j = 0; j < nr; j++) {
            int parts[8];
            for (f = 0; f < 4; f++)
                parts[f] = cells[f][j];
            assert_int_equal(national_sdc_line(a->s, parts, 4, totals[j]), 0);
        }
        assert_int_equal(national_sdc_line(a->s, totals, (int)nr,
                                           total.outcome[k == 0 ? RETURNED : NON_COMPLIANT]),
                         0);
    }
    // Solve everything a reader could: no count of 1-4 is determined.
    national_sdc_set_hidden(a->s, hidden);
    bool *det = calloc((size_t)national_sdc_cells(a->s) + 1, sizeof *det);
    assert_true(national_sdc_determined(a->s, det) >= 0);
    int small_hidden = 0;
    for (int k = 0; k < a->n_small; k++) {
        assert_true(hidden[a->small[k]]);
        assert_false(det[a->small[k]]);
        small_hidden++;
    }
    printf("# %s: %ld published values equal the independent computation; %ld withheld (%d"
           " counts of 1-4, none derivable from %d cells and their relations)\n",
           period, s_checked, s_withheld, small_hidden, national_sdc_cells(a->s));
    assert_true(small_hidden > 0);
    free(det);
    free(hidden);
    national_sdc_destroy(&a->s);
    free(a);
    free(t);
}

// --- the attacker with a whole year: every return of FY2025 at once ----------------------------

#define YEAR_RETURNS 17 // 12 months, 4 quarters, the year
#define YEAR_KEYS 1600
#define CELL_MEMBERS ((int)(sizeof(s_cells_t) / sizeof(int)))

// One return's cells in the joint system, by name ("force|gwent|3", "reason|0|gwent|dash_high").
typedef struct {
    char key[YEAR_KEYS][96];
    int cell[YEAR_KEYS];
    int n;
} s_keys_t;

typedef struct {
    s_attack_t a;
    bool hidden[40000];
    s_keys_t keys[YEAR_RETURNS];
    char period[YEAR_RETURNS][16];
    int zeros;
} s_year_t;

// Counts are never negative, so every part of a published 0 is 0: the reader knows them.
static void s_year_zero(s_year_t *y, const int *parts, int n, int total) {
    if (y->hidden[total] || national_sdc_value(y->a.s, total) != 0)
        return;
    for (int k = 0; k < n; k++)
        if (y->hidden[parts[k]]) {
            y->hidden[parts[k]] = false;
            y->zeros++;
        }
}

static void s_year_key(s_keys_t *k, const char *key, int cell) {
    assert_true(k->n < YEAR_KEYS);
    snprintf(k->key[k->n], sizeof k->key[k->n], "%s", key);
    k->cell[k->n++] = cell;
}

// The cell of a key in return p; a row or reason the return does not list has no cases, so a
// reader knows it is 0: a published zero.
static int s_year_cell(s_year_t *y, int p, const char *key) {
    for (int i = 0; i < y->keys[p].n; i++)
        if (strcmp(y->keys[p].key[i], key) == 0)
            return y->keys[p].cell[i];
    int c = national_sdc_cell(y->a.s, 0, false);
    assert_true(c >= 0);
    y->hidden[c] = false;
    s_year_key(&y->keys[p], key, c);
    return c;
}

// Adds return p (period from..to) with every relation inside it, as s_check_return does.
static void s_year_add(s_year_t *y, int p, json_t *doc, int32_t from, int32_t to) {
    static const char *const dims[] = {"force", "provider", "pathway",     "month",
                                       "sex",   "age_band", "ethnic_group"};
    s_attack_t *a = &y->a;
    s_keys_t *k = &y->keys[p];
    s_truth_t *t = malloc(sizeof *t);
    assert_non_null(t);
    int n_hidden = 0;
    char key[96];
    s_cells_t total, rows[64], force_rows[8];
    size_t n_forces = 0;
    s_truth(t, from, to, "all", "all");
    s_attack_row(a, json_object_get(doc, "totals"), t, &total, y->hidden, &n_hidden);
    s_year_zero(y, (const int *)&total, CELL_MEMBERS, total.referred);
    for (int j = 0; j < CELL_MEMBERS; j++) {
        snprintf(key, sizeof key, "totals|all|%d", j);
        s_year_key(k, key, ((int *)&total)[j]);
    }
    for (size_t d = 0; d < sizeof dims / sizeof *dims; d++) {
        json_t *got = json_object_get(json_object_get(doc, "breakdowns"), dims[d]), *row;
        size_t i, n = json_array_size(got);
        assert_true(n <= 64);
        json_array_foreach(got, i, row) {
            const char *label = json_string_value(json_object_get(row, "label"));
            s_truth(t, from, to, dims[d], label);
            s_attack_row(a, row, t, &rows[i], y->hidden, &n_hidden);
            s_year_zero(y, (const int *)&rows[i], CELL_MEMBERS, rows[i].referred);
            for (int j = 0; j < CELL_MEMBERS; j++) {
                snprintf(key, sizeof key, "%s|%s|%d", dims[d], label, j);
                s_year_key(k, key, ((int *)&rows[i])[j]);
            }
        }
        for (int j = 0; n > 0 && j < CELL_MEMBERS; j++)
            s_attack_column(a, rows, (int)n, &total, sizeof(int) * (size_t)j);
        if (d == 0) {
            memcpy(force_rows, rows, n * sizeof *rows);
            n_forces = n;
        }
    }
    const char *const tables[] = {"returned_by_reason", "non_compliant_by_reason"};
    for (int r = 0; r < 2; r++) {
        json_t *rt = json_object_get(doc, tables[r]), *reasons = json_object_get(rt, "reasons");
        size_t nr = json_array_size(reasons), j, f;
        json_t *reason, *row;
        int totals[8], cells[8][8];
        assert_true(nr <= 8);
        json_array_foreach(reasons, j, reason) {
            const char *rs = json_string_value(reason);
            long want = 0;
            for (int i = 0; i < CASES; i++) {
                const char *cr = r == 0 ? s_cases[i].ret_reason : s_cases[i].nc_reason;
                want += s_cases[i].caution >= from && s_cases[i].caution <= to && cr &&
                        strcmp(cr, rs) == 0;
            }
            json_t *v = json_object_get(json_object_get(rt, "totals"), rs);
            totals[j] = s_attack_cell(a, v, want);
            y->hidden[totals[j]] = json_is_null(v);
            snprintf(key, sizeof key, "reason|%d|all|%s", r, rs);
            s_year_key(k, key, totals[j]);
        }
        json_array_foreach(json_object_get(rt, "by_force"), f, row) {
            const char *force = json_string_value(json_object_get(row, "label"));
            assert_true(f < n_forces);
            json_array_foreach(reasons, j, reason) {
                const char *rs = json_string_value(reason);
                long want = 0;
                for (int i = 0; i < CASES; i++) {
                    const char *cr = r == 0 ? s_cases[i].ret_reason : s_cases[i].nc_reason;
                    want += s_cases[i].caution >= from && s_cases[i].caution <= to && cr &&
                            strcmp(s_forces[s_cases[i].force], force) == 0 && strcmp(cr, rs) == 0;
                }
                json_t *v = json_object_get(json_object_get(row, "counts"), rs);
                cells[f][j] = s_attack_cell(a, v, want);
                y->hidden[cells[f][j]] = json_is_null(v);
                snprintf(key, sizeof key, "reason|%d|%s|%s", r, force, rs);
                s_year_key(k, key, cells[f][j]);
            }
            s_year_zero(y, cells[f], (int)nr,
                        force_rows[f].outcome[r == 0 ? RETURNED : NON_COMPLIANT]);
            if (nr > 0)
                assert_int_equal(
                    national_sdc_line(a->s, cells[f], (int)nr,
                                      force_rows[f].outcome[r == 0 ? RETURNED : NON_COMPLIANT]),
                    0);
        }
        for (j = 0; j < nr; j++) {
            int parts[8];
            for (f = 0; f < n_forces; f++)
                parts[f] = cells[f][j];
            if (n_forces > 0)
                assert_int_equal(national_sdc_line(a->s, parts, (int)n_forces, totals[j]), 0);
        }
        s_year_zero(y, totals, (int)nr, total.outcome[r == 0 ? RETURNED : NON_COMPLIANT]);
        if (nr > 0)
            assert_int_equal(national_sdc_line(a->s, totals, (int)nr,
                                               total.outcome[r == 0 ? RETURNED : NON_COMPLIANT]),
                             0);
    }
    free(t);
}

// Hampton Trust holds every return of a financial year (each month, each quarter, the year) and
// knows how they add up: a quarter's count is the sum of its months', the year's the sum of its
// quarters', and a month's row in a quarter or the year is that month's totals. Everything is
// solved at once (linear algebra over every relation of every return), after the reader's own
// deduction that counts are never negative: the parts of a published 0 are all 0. No count of
// 1-4 in any return may be determined.
static void test_a_year_of_returns_together_gives_no_small_count_away(void **state) {
    (void)state;
    s_year_t *y = calloc(1, sizeof *y);
    assert_non_null(y);
    y->a.s = national_sdc_new();
    int32_t from[YEAR_RETURNS], to[YEAR_RETURNS];
    for (int p = 0; p < YEAR_RETURNS; p++) {
        int yr = 2025;
        unsigned m = 4;
        if (p < 12) {
            m = (unsigned)((p + 3) % 12 + 1);
            yr = 2025 + (p >= 9);
            snprintf(y->period[p], sizeof y->period[p], "%04d-%02u", yr, m);
            from[p] = time_days_from_civil(yr, m, 1);
            to[p] = (m == 12 ? time_days_from_civil(yr + 1, 1, 1)
                             : time_days_from_civil(yr, m + 1, 1)) -
                    1;
        } else if (p < 16) {
            int q = (p - 12 + 1) % 4 + 1;
            yr = 2025 + (p == 15);
            snprintf(y->period[p], sizeof y->period[p], "%04dQ%d", yr, q);
            from[p] = time_days_from_civil(yr, (unsigned)(3 * q - 2), 1);
            to[p] = (q == 4 ? time_days_from_civil(yr + 1, 1, 1)
                            : time_days_from_civil(yr, (unsigned)(3 * q + 1), 1)) -
                    1;
        } else {
            snprintf(y->period[p], sizeof y->period[p], "FY2025");
            from[p] = time_days_from_civil(2025, 4, 1);
            to[p] = time_days_from_civil(2026, 3, 31);
        }
        json_t *doc = s_export_json(y->period[p]);
        // The year's rows in every return, p3 (one case, in May) among them.
        json_t *providers = json_object_get(json_object_get(doc, "breakdowns"), "provider");
        assert_int_equal(json_array_size(providers), 4);
        assert_string_equal(
            json_string_value(json_object_get(json_array_get(providers, 3), "label")), "p3");
        s_year_add(y, p, doc, from[p], to[p]);
        json_decref(doc);
    }
    // Between periods: each quarter is its months, the year its quarters (every row and reason
    // the year lists; a month's or quarter's return that does not list it has 0).
    int lines = 0;
    for (int i = 0; i < y->keys[16].n; i++) {
        char key[96];
        snprintf(key, sizeof key, "%s", y->keys[16].key[i]);
        if (strncmp(key, "month|", 6) == 0)
            continue;
        int quarters[4];
        for (int q = 0; q < 4; q++) {
            int months[3];
            for (int j = 0; j < 3; j++)
                months[j] = s_year_cell(y, 3 * q + j, key);
            quarters[q] = s_year_cell(y, 12 + q, key);
            assert_int_equal(national_sdc_line(y->a.s, months, 3, quarters[q]), 0);
        }
        assert_int_equal(national_sdc_line(y->a.s, quarters, 4, s_year_cell(y, 16, key)), 0);
        lines += 5;
    }
    // A month's row in any return is that month's totals.
    for (int p = 0; p < YEAR_RETURNS; p++)
        for (int i = 0; i < y->keys[p].n; i++) {
            char label[16];
            int j, mp;
            if (sscanf(y->keys[p].key[i], "month|%15[^|]|%d", label, &j) != 2)
                continue;
            for (mp = 0; mp < 12 && strcmp(y->period[mp], label) != 0; mp++)
                ;
            assert_true(mp < 12);
            char key[96];
            snprintf(key, sizeof key, "totals|all|%d", j);
            int same[] = {y->keys[p].cell[i]};
            assert_int_equal(national_sdc_line(y->a.s, same, 1, s_year_cell(y, mp, key)), 0);
            lines++;
        }
    // Then everything at once.
    int n = national_sdc_cells(y->a.s), zeros = y->zeros;
    bool *det = calloc((size_t)n + 1, sizeof *det);
    assert_non_null(det);
    national_sdc_set_hidden(y->a.s, y->hidden);
    assert_true(national_sdc_determined(y->a.s, det) >= 0);
    int small = 0, found = 0;
    for (int i = 0; i < y->a.n_small; i++) {
        int c = y->a.small[i];
        small++;
        if (!y->hidden[c] || det[c]) {
            if (found++ < 10)
                for (int p = 0; p < YEAR_RETURNS; p++)
                    for (int k = 0; k < y->keys[p].n; k++)
                        if (y->keys[p].cell[k] == c)
                            printf("# %s %s = %lld: %s\n", y->period[p], y->keys[p].key[k],
                                   (long long)national_sdc_value(y->a.s, c),
                                   y->hidden[c] ? "recovered" : "published");
        }
    }
    printf("# FY2025, 17 returns together: %d cells, %d lines between periods, %d zeros"
           " deduced; %d of %d counts of 1-4 published or recovered\n",
           n, lines, zeros, found, small);
    assert_true(small > 0);
    assert_int_equal(found, 0);
    free(det);
    national_sdc_destroy(&y->a.s);
    free(y);
}

static void test_measures_match_an_independent_computation(void **state) {
    (void)state;
    assert_int_equal(harness_start(h, "national"), 0);
    s_generate();
    s_wait_ingested();
    char *n = harness_value(h, "national", "SELECT count(*) FROM case_fact");
    assert_int_equal(atoi(n), CASES);
    free(n);
    json_t *q2 = s_export_json("2025Q2");
    if (getenv("CARA_NATIONAL_DUMP")) // to look at a return by hand
        json_dump_file(q2, getenv("CARA_NATIONAL_DUMP"), JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    s_check_return(q2, "2025Q2", time_days_from_civil(2025, 4, 1),
                   time_days_from_civil(2025, 6, 30));
    // Cohorts in Q2: p1 4 delivered (1 telephone; fill (11+8+6)/(12+12+10)), p2 2 ((12+9)/24);
    // p3 and p4 (the year's providers) none.
    json_t *cp = json_object_get(json_object_get(q2, "cohorts"), "by_provider");
    assert_int_equal(json_array_size(cp), 4);
    for (size_t k = 2; k < 4; k++) {
        assert_int_equal(
            json_integer_value(json_object_get(json_array_get(cp, k), "cohorts_delivered")), 0);
        assert_true(json_is_null(json_object_get(json_array_get(cp, k), "fill_rate_percent")));
    }
    assert_int_equal(
        json_integer_value(json_object_get(json_array_get(cp, 0), "cohorts_delivered")), 4);
    assert_int_equal(
        json_integer_value(json_object_get(json_array_get(cp, 0), "telephone_cohorts")), 1);
    assert_true(fabs(json_real_value(json_object_get(json_array_get(cp, 0), "fill_rate_percent")) -
                     100.0 * 25 / 34) < 0.051);
    assert_int_equal(
        json_integer_value(json_object_get(json_array_get(cp, 1), "cohorts_delivered")), 2);
    assert_true(fabs(json_real_value(json_object_get(json_array_get(cp, 1), "fill_rate_percent")) -
                     100.0 * 21 / 24) < 0.051);
    json_decref(q2);
    json_t *fy = s_export_json("FY2025");
    s_check_return(fy, "FY2025", time_days_from_civil(2025, 4, 1),
                   time_days_from_civil(2026, 3, 31));
    json_decref(fy);
    json_t *may = s_export_json("2025-05");
    s_check_return(may, "2025-05", time_days_from_civil(2025, 5, 1),
                   time_days_from_civil(2025, 5, 31));
    json_decref(may);
    int status = 0;
    char *bad = national_export(h, "2025Q5", "json", 0, &status);
    assert_null(bad);
    assert_int_equal(status, CARA__REPLY__STATUS__INVALID);
}

// A fill rate is participants over seats, and a cohort has about 12 seats: the rate of a
// provider with one cohort is its head count. p3 (3 of 12 seats) and p4 (2 of 12) in August:
// their rates are withheld in every return that has them (the month, Q3, the year), and the
// national rate, published, gives only their sum (5) away; p2's July cohort (7 of 12) is
// published.
static json_t *s_cohort_row(json_t *rows, const char *label) {
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        if (strcmp(json_string_value(json_object_get(row, "label")), label) == 0)
            return row;
    }
    fail_msg("no cohort row %s", label);
    return NULL;
}

static void test_fill_rates_give_no_head_count_away(void **state) {
    (void)state;
    const char *periods[] = {"2025-08", "2025Q3", "FY2025"};
    const double p2_rate[] = {-1, 100.0 * 7 / 12, 100.0 * (12 + 9 + 7) / 36};
    const double all_rate[] = {100.0 * 5 / 24, 100.0 * 12 / 36, 100.0 * (25 + 21 + 12) / 94};
    for (int p = 0; p < 3; p++) {
        json_t *doc = s_export_json(periods[p]);
        json_t *co = json_object_get(doc, "cohorts");
        json_t *rows = json_object_get(co, "by_provider");
        for (int k = 0; k < 2; k++) {
            json_t *row = s_cohort_row(rows, k == 0 ? "p3" : "p4");
            assert_int_equal(json_integer_value(json_object_get(row, "cohorts_delivered")), 1);
            assert_true(json_is_null(json_object_get(row, "fill_rate_percent")));
        }
        assert_int_equal(json_array_size(rows), 4); // the year's providers, p1 and p2 too
        json_t *p2 = json_object_get(s_cohort_row(rows, "p2"), "fill_rate_percent");
        if (p2_rate[p] < 0)
            assert_true(json_is_null(p2)); // no cohort in August: no seats
        else
            assert_true(fabs(json_real_value(p2) - p2_rate[p]) < 0.051);
        json_t *all = json_object_get(json_object_get(co, "totals"), "fill_rate_percent");
        assert_true(fabs(json_real_value(all) - all_rate[p]) < 0.051);
        json_decref(doc);
    }
}

static void test_no_personal_data_reaches_national(void **state) {
    (void)state;
    int status = 0;
    char *published = national_export(h, "2025Q2", "json", 1, &status); // onto the feed
    assert_non_null(published);
    free(published);
    assert_int_equal(national_pii_hits(h), 0);
    char *dead = harness_value(h, "national", "SELECT count(*) FROM dead_letter");
    assert_string_equal(dead, "0");
    free(dead);
    // The test's own pattern does find what the producers hold (so a zero above means something).
    char *found = harness_value(h, "intake",
                                "SELECT count(*) > 0 FROM outbox WHERE encode(payload, 'escape')"
                                " ~ 'Testname'");
    assert_string_equal(found, "t");
    free(found);
    char path[512];
    snprintf(path, sizeof path, "%s/national.log", harness_dir(h));
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        assert_null(strstr(line, "Testname"));
        assert_null(strstr(line, "07700 9"));
        assert_null(strstr(line, "@example.org"));
    }
    fclose(f);
    // Hampton Trust reads the national feed (aggregates) after a cursor, but no case stream.
    Cara__Batch *feed = harness_fetch(harness_client(h, "national", "hampton_trust", "ht"),
                                      "national", 0, 10, &status);
    assert_non_null(feed);
    assert_int_equal(feed->n_events, 1);
    Cara__Envelope *env =
        envelope_unpack(feed->events[0]->envelope.data, feed->events[0]->envelope.len);
    assert_non_null(env);
    assert_string_equal(env->type, "cara.NationalReturnPublished");
    Cara__NationalReturnPublished *pub = (Cara__NationalReturnPublished *)envelope_payload(
        env, &cara__national_return_published__descriptor);
    assert_non_null(pub);
    assert_string_equal(pub->schema_version, "2.0");
    json_t *doc = json_loads(pub->json, 0, NULL);
    assert_non_null(json_object_get(doc, "breakdowns"));
    json_decref(doc);
    uint64_t after = feed->events[0]->seq;
    cara__national_return_published__free_unpacked(pub, NULL);
    cara__envelope__free_unpacked(env, NULL);
    cara__batch__free_unpacked(feed, NULL);
    Cara__Batch *next = harness_fetch(harness_client(h, "national", "hampton_trust", "ht"),
                                      "national", after, 10, &status);
    assert_non_null(next);
    assert_int_equal(next->n_events, 0);
    cara__batch__free_unpacked(next, NULL);
    const char *streams[] = {"intake", "triage", "booking"};
    for (int s = 0; s < 3; s++) {
        Cara__Batch *cases = harness_fetch(harness_client(h, streams[s], "hampton_trust", "ht"),
                                           streams[s], 0, 10, &status);
        assert_null(cases);
        assert_int_equal(status, CARA__REPLY__STATUS__FORBIDDEN);
    }
    // Police and providers get neither the return nor the feed.
    char *none = NULL;
    Cara__NationalExport req = CARA__NATIONAL_EXPORT__INIT;
    req.period = "2025Q2";
    Cara__Reply *reply = harness_call(harness_client(h, "national", "police", "gwent"), &req.base);
    assert_non_null(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__FORBIDDEN);
    cara__reply__free_unpacked(reply, NULL);
    assert_null(
        harness_fetch(harness_client(h, "national", "provider", "p1"), "national", 0, 10, &status));
    free(none);
}

static void test_rebuild_is_byte_identical(void **state) {
    (void)state;
    const char *formats[] = {"json", "csv", "html"};
    const char *periods[] = {"2025Q2", "FY2025"};
    char *before[6], *after[6];
    int status;
    for (int k = 0; k < 6; k++)
        assert_non_null(before[k] = national_export(h, periods[k / 3], formats[k % 3], 0, &status));
    harness_stop(h, "national", SIGTERM);
    db_t *db = harness_db(h, "national");
    assert_int_equal(db_exec(db, "DROP SCHEMA national CASCADE", 0, NULL), 0);
    assert_int_equal(db_exec(db, "CREATE SCHEMA national AUTHORIZATION cara_national", 0, NULL), 0);
    assert_int_equal(harness_start(h, "national"), 0);
    s_wait_ingested();
    for (int k = 0; k < 6; k++) {
        assert_non_null(after[k] = national_export(h, periods[k / 3], formats[k % 3], 0, &status));
        assert_string_equal(before[k], after[k]);
        free(before[k]);
        free(after[k]);
    }
}

static void test_csv_carries_the_json(void **state) {
    (void)state;
    int status;
    char *csv = national_export(h, "2025Q2", "csv", 0, &status);
    assert_non_null(csv);
    assert_int_equal(strncmp(csv, "schema_version,period,table,label,measure,value\n", 48), 0);
    // Every data line: the schema version, the period, and six fields.
    long lines = 0;
    for (char *p = strchr(csv, '\n') + 1; *p; p = strchr(p, '\n') + 1) {
        assert_int_equal(strncmp(p, "2.0,2025Q2,", 11), 0);
        int commas = 0;
        for (char *q = p; *q != '\n'; q++)
            commas += *q == ',';
        assert_int_equal(commas, 5);
        lines++;
    }
    assert_non_null(strstr(csv, "2.0,2025Q2,by_force,gwent,outcome.completed,"));
    assert_non_null(strstr(csv, "2.0,2025Q2,totals,all,times.caution_to_booking.median_days,"));
    printf("# CSV: %ld lines\n", lines);
    free(csv);
}

// The return is described by schemas/national-return.schema.json (validated with Python's
// jsonschema where it is installed).
static void test_json_matches_its_schema(void **state) {
    (void)state;
    int status;
    char path[512], cmd[2048];
    const char *periods[] = {"2025Q2", "FY2025", "2025-05", "2030Q1"}; // 2030: no cases at all
    if (system("python3 -c 'import jsonschema' > /dev/null 2>&1") != 0) {
        printf("# SKIP: python3 with jsonschema is not installed here\n");
        skip();
    }
    for (int k = 0; k < 4; k++) {
        char *text = national_export(h, periods[k], "json", 0, &status);
        assert_non_null(text);
        snprintf(path, sizeof path, "%s/return-%d.json", harness_dir(h), k);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
        free(text);
        snprintf(cmd, sizeof cmd,
                 "python3 -c 'import json, sys, jsonschema; s = json.load(open(sys.argv[1]));"
                 " jsonschema.Draft202012Validator.check_schema(s);"
                 " jsonschema.validate(json.load(open(sys.argv[2])), s)'"
                 " schemas/national-return.schema.json %s",
                 path);
        assert_int_equal(system(cmd), 0);
    }
}

static void test_html_report_renders_in_chromium(void **state) {
    (void)state;
    int status;
    char *html = national_export(h, "2025Q2", "html", 0, &status);
    assert_non_null(html);
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "src="));  // nothing loaded
    assert_null(strstr(html, "href=")); // nothing linked
    assert_null(strstr(html, "url("));
    assert_non_null(strstr(html, "<svg"));
    assert_non_null(strstr(html, "Completion by force"));
    char page[512], shot[512], cmd[4096], log[512];
    snprintf(page, sizeof page, "%s/report.html", harness_dir(h));
    snprintf(shot, sizeof shot, "%s/report.png", harness_dir(h));
    snprintf(log, sizeof log, "%s/chromium.log", harness_dir(h));
    FILE *f = fopen(page, "w");
    assert_non_null(f);
    fputs(html, f);
    fclose(f);
    free(html);
    const char *chromium = access("/usr/bin/chromium", X_OK) == 0 ? "/usr/bin/chromium"
                           : access("/usr/bin/chromium-browser", X_OK) == 0
                               ? "/usr/bin/chromium-browser"
                               : NULL;
    if (!chromium) {
        printf("# SKIP: chromium is not installed here (apt package chromium; CI installs it)\n");
        skip();
    }
    // Offline: no proxy, no network features; console messages go to the log.
    snprintf(cmd, sizeof cmd,
             "timeout 90 %s --headless --no-sandbox --disable-gpu --disable-dev-shm-usage"
             " --no-first-run --disable-background-networking --disable-component-update"
             " --disable-sync --disable-extensions --proxy-server=127.0.0.1:9"
             " --user-data-dir=%s/chromium-profile --enable-logging=stderr --v=0"
             " --window-size=1000,3000 --screenshot=%s file://%s > %s 2>&1",
             chromium, harness_dir(h), shot, page, log);
    assert_int_equal(system(cmd), 0);
    struct stat st;
    assert_int_equal(stat(shot, &st), 0);
    assert_true(st.st_size > 10000);
    FILE *lf = fopen(log, "r");
    assert_non_null(lf);
    char line[4096];
    while (fgets(line, sizeof line, lf)) {
        if (strstr(line, "CONSOLE") || strstr(line, "Uncaught") ||
            strstr(line, "Failed to load resource"))
            fail_msg("page console: %s", line);
    }
    fclose(lf);
    printf("# report screenshot: %lld bytes\n", (long long)st.st_size);
    if (getenv("CARA_REPORT_SHOT")) {
        snprintf(cmd, sizeof cmd, "cp %s %s", shot, getenv("CARA_REPORT_SHOT"));
        assert_int_equal(system(cmd), 0);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_measures_match_an_independent_computation),
        cmocka_unit_test(test_a_year_of_returns_together_gives_no_small_count_away),
        cmocka_unit_test(test_fill_rates_give_no_head_count_away),
        cmocka_unit_test(test_no_personal_data_reaches_national),
        cmocka_unit_test(test_rebuild_is_byte_identical),
        cmocka_unit_test(test_csv_carries_the_json),
        cmocka_unit_test(test_json_matches_its_schema),
        cmocka_unit_test(test_html_report_renders_in_chromium),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
