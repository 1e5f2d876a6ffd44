// national's apply functions against its own schema, fed events as a careless producer might
// send them (personal data left in, free text in code fields, a pseudonym that is a name):
// nothing personal is stored anywhere in the schema; events in any order make the same facts;
// the latest cohort revision wins; a batch's booking facts merged per case make the same facts
// as applied one by one; undecodable events are poison, unknown types ignored.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "booking.pb-c.h"
#include "cara/envelope.h"
#include "harness.h"
#include "intake.pb-c.h"
#include "national_facts.h"
#include "national_return.h"
#include "test_national_support.h"
#include "triage.pb-c.h"

#define SECRET "a-test-deployment-secret-0123456789"
#define PSEUDONYM "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"

static harness_t *h;

static int setup(void **state) {
    (void)state;
    h = harness_new("national_facts");
    if (!h)
        return -1;
    harness_config(h, "national", "pseudonym_secret", "\"" SECRET "\"");
    // Migrate the schema, then stop: the test is the only writer.
    if (harness_start(h, "national") != 0 || harness_stop(h, "national", SIGTERM) != 0)
        return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    harness_destroy(&h);
    return 0;
}

// Wraps msg in an envelope and applies it in its own transaction. Returns the apply result.
static apply_result_t s_apply(const ProtobufCMessage *msg, char *reason, size_t size) {
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(envelope_pack(msg, NULL, NULL, &buf, &len, NULL), 0);
    Cara__Envelope *env = envelope_unpack(buf, len);
    free(buf);
    assert_non_null(env);
    db_t *db = harness_db(h, "national");
    assert_int_equal(db_begin(db), 0);
    apply_result_t rc = national_facts_apply(db, SECRET, NULL, env, reason, size);
    if (rc == APPLY_RETRY)
        db_rollback(db);
    else
        assert_int_equal(db_commit(db), 0);
    cara__envelope__free_unpacked(env, NULL);
    return rc;
}

static void s_ok(const ProtobufCMessage *msg) {
    char reason[256] = "";
    assert_int_equal(s_apply(msg, reason, sizeof reason), APPLY_OK);
}

static char *s_value(const char *sql) {
    char *v = harness_value(h, "national", sql);
    assert_non_null(v);
    return v;
}

static void s_expect(const char *sql, const char *want) {
    char *v = s_value(sql);
    if (strcmp(v, want) != 0)
        fail_msg("%s: got '%s', want '%s'", sql, v, want);
    free(v);
}

// A referral as the producer holds it, before any de-identification.
typedef struct {
    Cara__Offender off;
    Cara__Victim victim;
    Cara__Caution caution;
    Cara__Risk risk;
    Cara__Referral r;
} s_referral_t;

static void s_referral(s_referral_t *x, const char *force, const char *sex, const char *eth,
                       const char *pseudonym, unsigned age) {
    static char *orders[] = {"Freetext order naming Testname"};
    cara__offender__init(&x->off);
    cara__victim__init(&x->victim);
    cara__caution__init(&x->caution);
    cara__risk__init(&x->risk);
    cara__referral__init(&x->r);
    x->off.name = "Testname Person";
    x->off.date_of_birth = "1980-03-31";
    x->off.sex = (char *)sex;
    x->off.address = "1 Secret Street";
    x->off.phone = "07700 900123";
    x->off.email = "person@example.org";
    x->off.access_needs = "Freetext needs";
    x->off.preferred_language = "Freetext language";
    x->off.ethnicity = (char *)eth;
    x->off.age_at_caution = age;
    x->off.pseudonym = (char *)pseudonym;
    x->victim.name = "Victimname Secret";
    x->victim.phone = "07700 111111";
    x->victim.email = "victim@example.com";
    x->victim.address = "2 Secret Street";
    x->victim.safe_contact_times = "Freetext times";
    x->caution.given_at = "2025-05-02T10:00:00+01:00";
    x->caution.offence_category = "common_assault";
    x->caution.condition_text = "Freetext condition";
    x->caution.compliance_deadline = "2025-09-01";
    x->risk.dash_level = "standard";
    x->risk.safeguarding_notes = "Freetext notes about Victimname";
    x->risk.protective_orders = orders;
    x->risk.n_protective_orders = 1;
    x->r.force = (char *)force;
    x->r.caution_reference = "Testname-REF-1";
    x->r.officer = "PC Testname";
    x->r.caution = &x->caution;
    x->r.offender = &x->off;
    x->r.victim = &x->victim;
    x->r.risk = &x->risk;
    x->r.relationship = "intimate";
}

static void test_personal_data_in_events_is_never_stored(void **state) {
    (void)state;
    s_referral_t x;
    // Personal data everywhere: the offender's identity, the victim, free text, and personal
    // data where codes belong (a name as the force, the sex, the ethnicity, the pseudonym).
    s_referral(&x, "Testname Person", "Testname", "Testname Freetext", "Testname Person 1980-03-31",
               44);
    Cara__ReferralSubmitted sub = CARA__REFERRAL_SUBMITTED__INIT;
    sub.referral_id = "11111111-1111-4111-8111-111111111111";
    sub.received_at = "2025-05-03T09:00:00Z";
    sub.referral = &x.r;
    s_ok(&sub.base);
    Cara__FieldChange fc = CARA__FIELD_CHANGE__INIT, *fcs[] = {&fc};
    fc.field = "offender.phone";
    fc.old_value = "07700 900123";
    fc.new_value = "07700 900999";
    Cara__ReferralAmended am = CARA__REFERRAL_AMENDED__INIT;
    am.referral_id = sub.referral_id;
    am.reason = "Freetext: Testname moved";
    am.changes = fcs;
    am.n_changes = 1;
    am.referral = &x.r;
    s_ok(&am.base);
    Cara__ReasonCode rc = CARA__REASON_CODE__INIT, *rcs[] = {&rc};
    rc.code = "Freetext reason about Testname";
    rc.detail = "Freetext detail";
    Cara__ReferralReturned ret = CARA__REFERRAL_RETURNED__INIT;
    ret.referral_id = sub.referral_id;
    ret.force = "Testname Person";
    ret.reasons = rcs;
    ret.n_reasons = 1;
    ret.returned_at = "not a time";
    s_ok(&ret.base);
    Cara__ReferralTriaged t = CARA__REFERRAL_TRIAGED__INIT;
    t.referral_id = sub.referral_id;
    t.provider_id = "Testname Provider";
    t.pathway = "Freetext pathway";
    t.pathway_reason = "Freetext: Testname asked";
    t.referral = &x.r;
    t.triaged_at = "2025-05-04T09:00:00Z";
    s_ok(&t.base);
    Cara__TriageCaseWithdrawn tw = CARA__TRIAGE_CASE_WITHDRAWN__INIT;
    tw.referral_id = sub.referral_id;
    tw.reason = "Freetext: Testname";
    tw.withdrawn_at = "2025-05-05T09:00:00Z";
    s_ok(&tw.base);
    Cara__ReferralWithdrawn w = CARA__REFERRAL_WITHDRAWN__INIT;
    w.referral_id = sub.referral_id;
    w.reason = "Freetext: Testname";
    w.withdrawn_at = "2025-05-05T09:00:00Z";
    s_ok(&w.base);
    Cara__CaseNonCompliant nc = CARA__CASE_NON_COMPLIANT__INIT;
    nc.referral_id = sub.referral_id;
    nc.reason = "Freetext: Testname refused";
    s_ok(&nc.base);
    Cara__ContactRecorded cr = CARA__CONTACT_RECORDED__INIT;
    cr.referral_id = sub.referral_id;
    cr.channel = "Freetext";
    cr.outcome = "contacted";
    cr.at = "2025-05-06T09:00:00Z";
    s_ok(&cr.base);
    Cara__VictimContactRecorded vc = CARA__VICTIM_CONTACT_RECORDED__INIT;
    vc.referral_id = sub.referral_id;
    vc.kind = "Freetext: Victimname";
    s_ok(&vc.base);
    Cara__CohortCreated cc = CARA__COHORT_CREATED__INIT;
    cc.cohort_id = "22222222-2222-4222-8222-222222222222";
    cc.provider_id = "p1";
    cc.cohort_type = "male_intimate";
    cc.town = "Secret Street";
    cc.capacity = 12;
    cc.part_b_date = "2025-06-01";
    s_ok(&cc.base);

    assert_int_equal(national_pii_hits(h), 0);
    // The scan does see personal data where it is (a control, then removed).
    db_t *db = harness_db(h, "national");
    assert_int_equal(db_exec(db,
                             "INSERT INTO audit (actor, action, detail) VALUES ('test',"
                             " 'control', '{\"phone\": \"07700 900123\"}')",
                             0, NULL),
                     0);
    assert_int_equal(national_pii_hits(h), 1);
    assert_int_equal(db_exec(db, "DELETE FROM audit WHERE action = 'control'", 0, NULL), 0);
    // What was kept: codes only, "unknown"/"other" where a code was not a code.
    s_expect("SELECT count(*) FROM case_fact", "1");
    s_expect("SELECT force || ' ' || sex || ' ' || age_band || ' ' || ethnicity || ' ' || offence"
             " || ' ' || dash || ' ' || provider || ' ' || pathway || ' ' || returned_reason ||"
             " ' ' || return_reasons || ' ' || non_compliant_reason FROM case_fact",
             "unknown unknown 35-44 unknown common_assault standard unknown unknown other other"
             " other");
    s_expect("SELECT pseudonym IS NULL AND returned_at IS NULL AND withdrawn AND NOT"
             " victim_offered FROM case_fact",
             "t");
    // Not even the referral id: the case is known by a keyed hash of it.
    s_expect("SELECT count(*) FROM case_fact WHERE case_key ~ '^[0-9a-f]{64}$' AND case_key !~"
             " '1111'",
             "1");
}

static void test_any_order_makes_the_same_facts(void **state) {
    (void)state;
    // The booking stream's events for a case arrive before intake's referral of it.
    const char *id = "33333333-3333-4333-8333-333333333333";
    Cara__ContactRecorded cr = CARA__CONTACT_RECORDED__INIT;
    cr.referral_id = (char *)id;
    cr.outcome = "contacted";
    cr.at = "2025-05-09T09:00:00Z";
    s_ok(&cr.base);
    cr.at = "2025-05-07T09:00:00+01:00"; // an earlier contact, reported later
    s_ok(&cr.base);
    cr.outcome = "no_answer"; // not a contact
    cr.at = "2025-05-05T09:00:00Z";
    s_ok(&cr.base);
    Cara__SeatBooked sb = CARA__SEAT_BOOKED__INIT;
    sb.referral_id = (char *)id;
    sb.booked_at = "2025-05-10T09:00:00Z";
    s_ok(&sb.base);
    sb.booked_at = "2025-05-20T09:00:00Z"; // a rebooking: the first booking counts
    s_ok(&sb.base);
    Cara__AttendanceRecorded ar = CARA__ATTENDANCE_RECORDED__INIT;
    ar.referral_id = (char *)id;
    ar.part = "A";
    ar.status = "absent";
    ar.session_date = "2025-05-21";
    s_ok(&ar.base);
    s_expect("SELECT started_on IS NULL FROM case_fact WHERE booked_at IS NOT NULL AND"
             " caution_date IS NULL",
             "t");
    ar.status = "attended";
    ar.session_date = "2025-05-28";
    s_ok(&ar.base);
    s_referral_t x;
    s_referral(&x, "gwent", "female", "black_caribbean", PSEUDONYM, 30);
    Cara__ReferralSubmitted sub = CARA__REFERRAL_SUBMITTED__INIT;
    sub.referral_id = (char *)id;
    sub.received_at = "2025-05-03T09:00:00Z";
    sub.referral = &x.r;
    s_ok(&sub.base);
    s_expect("SELECT force || ' ' || sex || ' ' || age_band || ' ' || ethnicity || ' ' ||"
             " caution_date || ' ' || booked_at AT TIME ZONE 'UTC' || ' ' ||"
             " first_contact_at AT TIME ZONE 'UTC' || ' ' || started_on || ' ' || pseudonym"
             " FROM case_fact WHERE pseudonym IS NOT NULL",
             "gwent female 25-34 black 2025-05-02 2025-05-10 09:00:00 2025-05-07 08:00:00"
             " 2025-05-28 " PSEUDONYM);
    // An amendment moves the person to another age band and ethnic group.
    x.off.age_at_caution = 35;
    x.off.ethnicity = "mixed_other";
    Cara__ReferralAmended am = CARA__REFERRAL_AMENDED__INIT;
    am.referral_id = (char *)id;
    am.referral = &x.r;
    s_ok(&am.base);
    s_expect("SELECT age_band || ' ' || ethnicity || ' ' || received_at AT TIME ZONE 'UTC' FROM"
             " case_fact WHERE pseudonym IS NOT NULL",
             "35-44 mixed 2025-05-03 09:00:00");
}

// Applies msg inside the open transaction, its case facts held in merge.
static void s_apply_merged(national_merge_t *merge, const ProtobufCMessage *msg) {
    uint8_t *buf = NULL;
    size_t len = 0;
    char reason[256] = "";
    assert_int_equal(envelope_pack(msg, NULL, NULL, &buf, &len, NULL), 0);
    Cara__Envelope *env = envelope_unpack(buf, len);
    free(buf);
    assert_non_null(env);
    assert_int_equal(
        national_facts_apply(harness_db(h, "national"), SECRET, merge, env, reason, sizeof reason),
        APPLY_OK);
    cara__envelope__free_unpacked(env, NULL);
}

// The case_fact row of a referral id, without its key, as text ("" if there is none).
static char *s_row(const char *id) {
    char key[65], sql[256];
    assert_int_equal(national_key(SECRET, id, key), 0);
    snprintf(sql, sizeof sql,
             "SELECT coalesce((SELECT (to_jsonb(c) - 'case_key')::text FROM case_fact c"
             " WHERE case_key = '%s'), '')",
             key);
    return s_value(sql);
}

static void test_merged_batches_make_the_same_facts_as_one_by_one(void **state) {
    (void)state;
    // Each batch is one case's booking events in stream order: applied one by one, each in
    // its own transaction, to one referral; and to another in one transaction, merged and
    // flushed once (as national's booking consumer does).
    const char *one = "55555555-5555-4555-8555-555555555555";
    const char *merged = "66666666-6666-4666-8666-666666666666";
    Cara__ContactRecorded cr1 = CARA__CONTACT_RECORDED__INIT, cr2 = cr1, cr3 = cr1;
    cr1.outcome = "contacted", cr1.at = "2025-05-09T09:00:00Z";
    cr2.outcome = "contacted", cr2.at = "2025-05-07T09:00:00+01:00"; // earlier, reported later
    cr3.outcome = "no_answer", cr3.at = "2025-05-01T09:00:00Z";
    Cara__SeatBooked sb1 = CARA__SEAT_BOOKED__INIT, sb2 = sb1;
    sb1.booked_at = "2025-05-10T09:00:00Z";
    sb2.booked_at = "2025-05-20T09:00:00Z";
    Cara__AttendanceRecorded a1 = CARA__ATTENDANCE_RECORDED__INIT, a2 = a1, b1 = a1;
    a1.part = "A", a1.status = "absent", a1.session_date = "2025-05-21";
    a2.part = "A", a2.status = "attended", a2.session_date = "2025-05-28";
    b1.part = "B", b1.status = "attended", b1.session_date = "2025-06-25";
    Cara__VictimContactRecorded v1 = CARA__VICTIM_CONTACT_RECORDED__INIT, v2 = v1;
    v1.kind = "offer";
    v2.kind = "declined";
    Cara__CaseCompleted cc = CARA__CASE_COMPLETED__INIT, cc_bad = cc;
    cc.completed_at = "2025-06-25T17:00:00Z";
    cc_bad.completed_at = "not a time";
    Cara__CaseReopened ro = CARA__CASE_REOPENED__INIT;
    ro.reason = "attendance_corrected";
    Cara__CaseNonCompliant nc = CARA__CASE_NON_COMPLIANT__INIT;
    nc.reason = "missed_part_b";
    const ProtobufCMessage *batch1[] = {&cr1.base, &cr3.base, &sb1.base, &cr2.base, &a1.base,
                                        &sb2.base, &a2.base,  &v1.base,  &b1.base,  &cc.base};
    const ProtobufCMessage *batch2[] = {&ro.base, &nc.base, &v2.base};
    const ProtobufCMessage *batch3[] = {&ro.base};
    const ProtobufCMessage *batch4[] = {&cc.base, &ro.base, &cc_bad.base};
    const ProtobufCMessage *batch5[] = {&nc.base, &cc.base};
    const ProtobufCMessage *batch6[] = {&v1.base, &ro.base}; // clears what batch 5 set
    struct {
        const ProtobufCMessage *const *msgs;
        size_t n;
    } batches[] = {{batch1, 10}, {batch2, 3}, {batch3, 1}, {batch4, 3}, {batch5, 2}, {batch6, 2}};
    const char *base = "2025-05-07 08:00:00 2025-05-10 09:00:00 2025-05-28";
    char facts[6][160];
    snprintf(facts[0], sizeof facts[0], "%s 2025-06-25 17:00:00 - t f", base);
    snprintf(facts[1], sizeof facts[1], "%s open missed_part_b t f", base);
    snprintf(facts[2], sizeof facts[2], "%s open - t f", base);
    snprintf(facts[3], sizeof facts[3], "%s open - t f", base);
    snprintf(facts[4], sizeof facts[4], "%s 2025-06-25 17:00:00 missed_part_b t f", base);
    snprintf(facts[5], sizeof facts[5], "%s open - t f", base);
    national_merge_t *merge = national_merge_new();
    assert_non_null(merge);
    db_t *db = harness_db(h, "national");
    for (size_t b = 0; b < sizeof batches / sizeof *batches; b++) {
        for (size_t i = 0; i < batches[b].n; i++) {
            // Every booking case event names its referral in field referral_id.
            const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(
                batches[b].msgs[i]->descriptor, "referral_id");
            assert_non_null(f);
            char **id = (char **)((char *)batches[b].msgs[i] + f->offset);
            *id = (char *)one;
            s_ok(batches[b].msgs[i]);
        }
        assert_int_equal(db_begin(db), 0);
        for (size_t i = 0; i < batches[b].n; i++) {
            const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(
                batches[b].msgs[i]->descriptor, "referral_id");
            *(char **)((char *)batches[b].msgs[i] + f->offset) = (char *)merged;
            s_apply_merged(merge, batches[b].msgs[i]);
        }
        assert_int_equal(national_merge_count(merge), 1);
        assert_int_equal(national_merge_flush(merge, db, true), APPLY_OK);
        assert_int_equal(national_merge_count(merge), 0);
        assert_int_equal(db_commit(db), 0);
        char *want = s_row(one), *got = s_row(merged);
        if (strcmp(want, got) != 0)
            fail_msg("after batch %zu: one by one %s, merged %s", b + 1, want, got);
        free(want);
        free(got);
        // And what the rules make of them, as written here rather than by the same code.
        char key[65], sql[512];
        assert_int_equal(national_key(SECRET, merged, key), 0);
        snprintf(sql, sizeof sql,
                 "SELECT concat_ws(' ', first_contact_at AT TIME ZONE 'UTC', booked_at AT TIME"
                 " ZONE 'UTC', started_on, coalesce((completed_at AT TIME ZONE 'UTC')::text,"
                 " 'open'), coalesce(non_compliant_reason, '-'), victim_offered, victim_accepted)"
                 " FROM case_fact WHERE case_key = '%s'",
                 key);
        s_expect(sql, facts[b]);
    }
    // A reopening of a case national has no row for creates none, merged or not.
    const char *unknown = "77777777-7777-4777-8777-777777777777";
    ro.referral_id = (char *)unknown;
    s_ok(&ro.base);
    assert_int_equal(db_begin(db), 0);
    s_apply_merged(merge, &ro.base);
    assert_int_equal(national_merge_flush(merge, db, true), APPLY_OK);
    assert_int_equal(db_commit(db), 0);
    char *none = s_row(unknown);
    assert_string_equal(none, "");
    free(none);
    // Forgotten facts (their batch rolled back) are never written.
    assert_int_equal(db_begin(db), 0);
    nc.referral_id = (char *)unknown;
    s_apply_merged(merge, &nc.base);
    assert_int_equal(national_merge_flush(merge, db, false), APPLY_OK);
    assert_int_equal(national_merge_flush(merge, db, true), APPLY_OK);
    assert_int_equal(db_commit(db), 0);
    none = s_row(unknown);
    assert_string_equal(none, "");
    free(none);
    national_merge_destroy(&merge);
    assert_null(merge);
}

static void test_cohort_revisions_latest_wins(void **state) {
    (void)state;
    Cara__CohortDelivered cd = CARA__COHORT_DELIVERED__INIT;
    cd.cohort_id = "44444444-4444-4444-8444-444444444444";
    cd.provider_id = "p2";
    cd.cohort_type = "male_intimate";
    cd.part_b_date = "2025-06-20";
    cd.participants = 9;
    cd.revision = 2;
    s_ok(&cd.base);
    cd.participants = 7; // an older revision delivered late
    cd.revision = 1;
    s_ok(&cd.base);
    s_expect("SELECT participants || '/' || revision FROM cohort_fact WHERE provider = 'p2'",
             "9/2");
    Cara__CohortCreated cc = CARA__COHORT_CREATED__INIT;
    cc.cohort_id = cd.cohort_id;
    cc.provider_id = "p2";
    cc.cohort_type = "male_intimate";
    cc.capacity = 10;
    cc.part_b_date = "2025-06-20";
    s_ok(&cc.base);
    s_expect("SELECT participants || '/' || capacity FROM cohort_fact WHERE provider = 'p2'",
             "9/10");
}

// A referral the triage rules return, corrected by the police and then triaged and
// completed, is completed in the return, not returned for ever: the return counts only when
// it came after the case's triage. Six go that way (three with the triage applied before the
// return: the facts commute, the times decide); six more are triaged and then returned, and
// stay returned. All cautioned in June 2024, so in no other test's period.
static void test_a_return_corrected_and_triaged_is_not_returned(void **state) {
    (void)state;
    for (int i = 0; i < 12; i++) {
        char id[40];
        snprintf(id, sizeof id, "44444444-4444-4444-8444-4444444444%02d", i);
        bool corrected = i < 6;
        s_referral_t x;
        s_referral(&x, "dyfed-powys", "male", "white_british", NULL, 40);
        x.caution.given_at = "2024-06-03T10:00:00Z";
        Cara__ReferralSubmitted sub = CARA__REFERRAL_SUBMITTED__INIT;
        sub.referral_id = id;
        sub.received_at = "2024-06-04T09:00:00Z";
        sub.referral = &x.r;
        s_ok(&sub.base);
        Cara__ReasonCode rc = CARA__REASON_CODE__INIT, *rcs[] = {&rc};
        rc.code = "dash_high";
        Cara__ReferralReturned ret = CARA__REFERRAL_RETURNED__INIT;
        ret.referral_id = id;
        ret.force = "dyfed-powys";
        ret.reasons = rcs;
        ret.n_reasons = 1;
        ret.returned_at = corrected ? "2024-06-04T10:00:00Z" : "2024-06-12T10:00:00Z";
        Cara__ReferralTriaged t = CARA__REFERRAL_TRIAGED__INIT;
        t.referral_id = id;
        t.force = "dyfed-powys";
        t.provider_id = "p1";
        t.pathway = "male_intimate";
        t.triaged_at = corrected ? "2024-06-06T10:00:00Z" : "2024-06-05T10:00:00Z";
        t.received_at = t.triaged_at;
        if (i % 2 == 0) {
            s_ok(&ret.base);
            if (corrected) { // the police correct the referral
                Cara__ReferralAmended am = CARA__REFERRAL_AMENDED__INIT;
                am.referral_id = id;
                am.referral = &x.r;
                s_ok(&am.base);
            }
            s_ok(&t.base);
        } else { // the same facts, applied the other way round
            s_ok(&t.base);
            s_ok(&ret.base);
        }
        if (corrected) {
            Cara__CaseCompleted cc = CARA__CASE_COMPLETED__INIT;
            cc.referral_id = id;
            cc.provider_id = "p1";
            cc.completed_at = "2024-07-20T15:00:00Z";
            s_ok(&cc.base);
        }
    }
    const char *periods[] = {"2024-06", "2024Q2", "FY2024"};
    for (int p = 0; p < 3; p++) {
        json_t *doc = national_return_build(harness_db(h, "national"), periods[p]);
        assert_non_null(doc);
        json_t *totals = json_object_get(doc, "totals");
        json_t *outcome = json_object_get(totals, "outcome");
        assert_int_equal(json_integer_value(json_object_get(totals, "referred")), 12);
        assert_int_equal(json_integer_value(json_object_get(outcome, "completed")), 6);
        assert_int_equal(json_integer_value(json_object_get(outcome, "returned")), 6);
        assert_int_equal(
            json_integer_value(json_object_get(json_object_get(totals, "stage"), "completed")), 6);
        json_t *by_reason = json_object_get(doc, "returned_by_reason");
        assert_int_equal(
            json_integer_value(json_object_get(json_object_get(by_reason, "totals"), "dash_high")),
            6);
        json_decref(doc);
    }
}

// A case the provider finished (completed or non-compliant) before an amendment had triage
// return it is counted by how it ended: booking and intake ignore a return of a case that is
// over, so the national picture does too. Ten cases cautioned in November 2024, five completed
// and five non-compliant, all returned after; half with the return applied first.
static void test_a_return_after_the_case_ended_is_not_counted(void **state) {
    (void)state;
    for (int i = 0; i < 10; i++) {
        char id[40];
        snprintf(id, sizeof id, "66666666-6666-4666-8666-6666666666%02d", i);
        s_referral_t x;
        s_referral(&x, "dyfed-powys", "male", "white_british", NULL, 40);
        x.caution.given_at = "2024-11-04T10:00:00Z";
        Cara__ReferralSubmitted sub = CARA__REFERRAL_SUBMITTED__INIT;
        sub.referral_id = id;
        sub.received_at = "2024-11-04T12:00:00Z";
        sub.referral = &x.r;
        s_ok(&sub.base);
        Cara__ReferralTriaged t = CARA__REFERRAL_TRIAGED__INIT;
        t.referral_id = id;
        t.force = "dyfed-powys";
        t.provider_id = "p1";
        t.pathway = "male_intimate";
        t.triaged_at = t.received_at = "2024-11-05T10:00:00Z";
        s_ok(&t.base);
        Cara__ReasonCode rc = CARA__REASON_CODE__INIT, *rcs[] = {&rc};
        rc.code = "dash_high";
        Cara__ReferralReturned ret = CARA__REFERRAL_RETURNED__INIT;
        ret.referral_id = id;
        ret.force = "dyfed-powys";
        ret.reasons = rcs;
        ret.n_reasons = 1;
        ret.returned_at = "2024-11-25T10:00:00Z";
        Cara__CaseCompleted cc = CARA__CASE_COMPLETED__INIT;
        cc.referral_id = id;
        cc.provider_id = "p1";
        cc.completed_at = "2024-11-20T15:00:00Z";
        Cara__CaseNonCompliant nc = CARA__CASE_NON_COMPLIANT__INIT;
        nc.referral_id = id;
        nc.provider_id = "p1";
        nc.reason = "did_not_attend";
        nc.at = "2024-11-21T15:00:00Z";
        ProtobufCMessage *ended = i < 5 ? &cc.base : &nc.base;
        if (i % 2 == 0)
            s_ok(&ret.base);
        s_ok(ended);
        if (i % 2 == 1)
            s_ok(&ret.base);
    }
    const char *periods[] = {"2024-11", "2024Q4"};
    for (int p = 0; p < 2; p++) {
        json_t *doc = national_return_build(harness_db(h, "national"), periods[p]);
        assert_non_null(doc);
        json_t *totals = json_object_get(doc, "totals");
        json_t *outcome = json_object_get(totals, "outcome");
        assert_int_equal(json_integer_value(json_object_get(totals, "referred")), 10);
        assert_int_equal(json_integer_value(json_object_get(outcome, "completed")), 5);
        assert_int_equal(json_integer_value(json_object_get(outcome, "non_compliant")), 5);
        assert_int_equal(json_integer_value(json_object_get(outcome, "returned")), 0);
        json_decref(doc);
    }
}

// The referred count of the pathway row label in the return of period, or -1 if withheld.
static json_int_t s_pathway_referred(const char *period, const char *label) {
    json_t *doc = national_return_build(harness_db(h, "national"), period);
    assert_non_null(doc);
    json_t *rows = json_object_get(json_object_get(doc, "breakdowns"), "pathway");
    json_int_t n = -2;
    for (size_t i = 0; i < json_array_size(rows); i++) {
        json_t *row = json_array_get(rows, i);
        if (strcmp(json_string_value(json_object_get(row, "label")), label) == 0) {
            json_t *v = json_object_get(row, "referred");
            n = json_is_integer(v) ? json_integer_value(v) : -1;
        }
    }
    json_decref(doc);
    return n;
}

// A sex corrected after routing moves the case to a women's group (TriageCaseUpdated.pathway):
// the national picture counts it there, not in the men's group it was first routed to.
static void test_an_amended_pathway_is_counted(void **state) {
    (void)state;
    for (int i = 0; i < 10; i++) {
        char id[40];
        snprintf(id, sizeof id, "55555555-5555-4555-8555-5555555555%02d", i);
        s_referral_t x;
        s_referral(&x, "gwent", "female", "white_british", NULL, 35);
        x.caution.given_at = "2024-08-05T10:00:00Z";
        Cara__ReferralSubmitted sub = CARA__REFERRAL_SUBMITTED__INIT;
        sub.referral_id = id;
        sub.received_at = "2024-08-06T09:00:00Z";
        sub.referral = &x.r;
        s_ok(&sub.base);
        Cara__ReferralTriaged t = CARA__REFERRAL_TRIAGED__INIT;
        t.referral_id = id;
        t.force = "gwent";
        t.provider_id = "p2";
        t.pathway = "male_intimate";
        t.triaged_at = "2024-08-07T10:00:00Z";
        t.received_at = t.triaged_at;
        Cara__TriageCaseUpdated up = CARA__TRIAGE_CASE_UPDATED__INIT;
        up.referral_id = id;
        up.force = "gwent";
        up.provider_id = "p2";
        up.pathway = "female_intimate";
        up.reason = "amendment";
        if (i % 2 == 0) {
            s_ok(&t.base);
            s_ok(&up.base);
        } else { // the other way round: the amendment is still the later
            s_ok(&up.base);
            s_ok(&t.base);
        }
    }
    assert_int_equal(s_pathway_referred("2024-08", "female_intimate"), 10);
    assert_int_equal(s_pathway_referred("2024-08", "male_intimate"), 0);
}

static void test_poison_and_unknown(void **state) {
    (void)state;
    db_t *db = harness_db(h, "national");
    Cara__Envelope env = CARA__ENVELOPE__INIT;
    uint8_t junk[] = {0xff, 0xff, 0xff, 0x01};
    env.type = "cara.ReferralSubmitted";
    env.schema_version = 1;
    env.payload.data = junk;
    env.payload.len = sizeof junk;
    char reason[256] = "";
    assert_int_equal(db_begin(db), 0);
    assert_int_equal(national_facts_apply(db, SECRET, NULL, &env, reason, sizeof reason),
                     APPLY_POISON);
    assert_non_null(strstr(reason, "cara.ReferralSubmitted"));
    env.type = "cara.SomethingNew";
    assert_int_equal(national_facts_apply(db, SECRET, NULL, &env, reason, sizeof reason), APPLY_OK);
    // No secret: nothing can be keyed, so the batch waits rather than losing events.
    env.type = "cara.ReferralWithdrawn";
    assert_int_equal(national_facts_apply(db, "short", NULL, &env, reason, sizeof reason),
                     APPLY_RETRY);
    db_rollback(db);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_personal_data_in_events_is_never_stored),
        cmocka_unit_test(test_any_order_makes_the_same_facts),
        cmocka_unit_test(test_merged_batches_make_the_same_facts_as_one_by_one),
        cmocka_unit_test(test_cohort_revisions_latest_wins),
        cmocka_unit_test(test_a_return_corrected_and_triaged_is_not_returned),
        cmocka_unit_test(test_a_return_after_the_case_ended_is_not_counted),
        cmocka_unit_test(test_an_amended_pathway_is_counted),
        cmocka_unit_test(test_poison_and_unknown),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
