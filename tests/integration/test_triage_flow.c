// triage through the real chain: police -> intake -> triage (-> intake outcomes). Eligibility
// both ways end to end (the exhaustive rule cases are in tests/unit/test_triage_rules.c),
// manual decision with override, routing by force and effective date, victim contact only
// with consent, withdrawal before and after triage, and a replay from zero.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "cara/timeutil.h"
#include "test_intake_support.h"
#include "test_triage_support.h"
#include "triage.pb-c.h"

static harness_t *h;

static int setup(void **state) {
    (void)state;
    h = harness_new("triage_flow");
    if (!h)
        return -1;
    harness_config(h, "triage", "routing",
                   "[{\"force\": \"dyfed-powys\", \"provider\": \"p1\", \"from\": \"2020-01-01\","
                   "  \"to\": \"\"},"
                   " {\"force\": \"gwent\", \"provider\": \"p-old\", \"from\": \"2020-01-01\","
                   "  \"to\": \"2021-12-31\"},"
                   " {\"force\": \"gwent\", \"provider\": \"p2\", \"from\": \"2022-01-01\","
                   "  \"to\": \"\"}]");
    return harness_start(h, "intake") == 0 && harness_start(h, "triage") == 0 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    harness_destroy(&h);
    return 0;
}

static void s_wait_outcome(const char *id, const char *expect) {
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT status FROM outcome WHERE referral_id = '%s'", id);
    assert_int_equal(harness_wait_value(h, "intake", sql, expect, 15000), 0);
}

static void s_high_risk(Cara__Referral *r) {
    ti_set(&r->risk->dash_level, "high");
}
static void s_previous_unknown(Cara__Referral *r) {
    ti_set(&r->risk->previous_da, "not_known");
}
static void s_no_consent(Cara__Referral *r) {
    r->victim->consents_to_contact = 0;
}
static void s_interpreter(Cara__Referral *r) {
    r->offender->interpreter_needed = 1;
}

static void test_eligible_referral_is_routed_and_police_told(void **state) {
    (void)state;
    char *id = tt_submit(h, "dyfed-powys", "TF-1", NULL);
    tt_wait_case(h, id, "triaged/male_intimate/p1");
    s_wait_outcome(id, "triaged");
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM outbox WHERE type = 'cara.ReferralTriaged' AND key = '%s'"
             " AND scope = 'p1'",
             id);
    char *n = harness_value(h, "triage", sql);
    assert_string_equal(n, "1");
    free(n);
    snprintf(sql, sizeof sql, "SELECT victim_contact FROM triage_case WHERE referral_id = '%s'",
             id);
    n = harness_value(h, "triage", sql);
    assert_string_equal(n, "t"); // the sample victim consented
    free(n);
    free(id);
}

static void test_ineligible_referral_is_returned_with_reason(void **state) {
    (void)state;
    char *id = tt_submit(h, "dyfed-powys", "TF-2", s_high_risk);
    tt_wait_case(h, id, "returned/-/-");
    s_wait_outcome(id, "returned");
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT return_reasons->0->>'code' FROM triage_case WHERE referral_id = '%s'", id);
    char *code = harness_value(h, "triage", sql);
    assert_string_equal(code, "dash_high");
    free(code);
    free(id);
}

static void test_not_known_waits_for_a_person_who_may_override(void **state) {
    (void)state;
    char *id = tt_submit(h, "dyfed-powys", "TF-3", s_previous_unknown);
    tt_wait_case(h, id, "awaiting_decision/-/-");
    client_t *staff = harness_client(h, "triage", "triage", "diversion");
    // Provider keys may not decide; an override needs a reason.
    Cara__TriageDecide cmd = CARA__TRIAGE_DECIDE__INIT;
    cmd.referral_id = id;
    cmd.decision = "approve";
    cmd.pathway = "telephone";
    Cara__Reply *reply = harness_call(harness_client(h, "triage", "provider", "p1"), &cmd.base);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__FORBIDDEN);
    cara__reply__free_unpacked(reply, NULL);
    reply = harness_call(staff, &cmd.base);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__INVALID);
    assert_true(ti_has_error(reply, "reason"));
    cara__reply__free_unpacked(reply, NULL);
    cmd.reason = "PNC shows no previous DA; shift work: telephone suits";
    reply = harness_call(staff, &cmd.base);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    cara__reply__free_unpacked(reply, NULL);
    tt_wait_case(h, id, "triaged/telephone/p1");
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT actor || ':' || (detail->>'pathway') FROM audit WHERE action = 'triaged'"
             " AND entity_id = '%s'",
             id);
    char *audit = harness_value(h, "triage", sql);
    assert_string_equal(audit, "triage:diversion:telephone");
    free(audit);
    // A decided case cannot be decided again.
    reply = harness_call(staff, &cmd.base);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__CONFLICT);
    cara__reply__free_unpacked(reply, NULL);
    free(id);
}

// A diversion officer approves the case on its proposed pathway; the reply status must be expect.
static void s_staff_approve(const char *id, Cara__Reply__Status expect) {
    Cara__TriageDecide cmd = CARA__TRIAGE_DECIDE__INIT;
    cmd.referral_id = (char *)id;
    cmd.decision = "approve";
    Cara__Reply *reply = tt_staff(h, &cmd.base);
    assert_int_equal(reply->status, expect);
    cara__reply__free_unpacked(reply, NULL);
}

// What booking (and so the provider) is told of a triaged case: the case's dates and the time
// intake received it, as the case row holds them, and the referral itself; the same whether the
// rules decided it as it arrived or a person decided it later.
static void s_expect_event_matches_case(const char *id, const char *pathway, const char *ref) {
    Cara__ReferralTriaged *ev = (Cara__ReferralTriaged *)tt_stream_event(
        h, "service", "booking", "cara.ReferralTriaged", &cara__referral_triaged__descriptor, id);
    assert_non_null(ev);
    char sql[300], got[400];
    snprintf(sql, sizeof sql,
             "SELECT concat_ws('|', caution_date, compliance_deadline, received_at, pathway,"
             " provider_id, victim_contact) FROM triage_case WHERE referral_id = '%s'",
             id);
    char *row = harness_value(h, "triage", sql);
    assert_non_null(row);
    snprintf(got, sizeof got, "%s|%s|%s|%s|%s|%s", ev->caution_date, ev->compliance_deadline,
             ev->received_at, ev->pathway, ev->provider_id, ev->victim_contact ? "t" : "f");
    assert_string_equal(got, row);
    assert_string_equal(ev->pathway, pathway);
    assert_non_null(ev->referral);
    assert_string_equal(ev->referral->caution_reference, ref);
    assert_string_equal(ev->force, "dyfed-powys");
    free(row);
    cara__referral_triaged__free_unpacked(ev, NULL);
}

static void test_triaged_event_carries_the_case_as_stored(void **state) {
    (void)state;
    char *auto_id = tt_submit(h, "dyfed-powys", "TF-EV-1", NULL);
    tt_wait_case(h, auto_id, "triaged/male_intimate/p1");
    s_expect_event_matches_case(auto_id, "male_intimate", "TF-EV-1");
    char *manual_id = tt_submit(h, "dyfed-powys", "TF-EV-2", s_previous_unknown);
    tt_wait_case(h, manual_id, "awaiting_decision/-/-");
    s_staff_approve(manual_id, CARA__REPLY__STATUS__OK);
    tt_wait_case(h, manual_id, "triaged/male_intimate/p1");
    s_expect_event_matches_case(manual_id, "male_intimate", "TF-EV-2");
    free(auto_id);
    free(manual_id);
}

static void test_routing_by_force_and_date_and_victim_consent(void **state) {
    (void)state;
    char *id = tt_submit(h, "gwent", "TF-4", s_no_consent);
    tt_wait_case(h, id, "triaged/male_intimate/p2"); // the route in force on the caution date
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT victim_contact FROM triage_case WHERE referral_id = '%s'",
             id);
    char *v = harness_value(h, "triage", sql);
    assert_string_equal(v, "f");
    free(v);
    // The provider gets the referral without the details of a victim who did not consent.
    Cara__ReferralTriaged *ev = (Cara__ReferralTriaged *)tt_stream_event(
        h, "service", "booking", "cara.ReferralTriaged", &cara__referral_triaged__descriptor, id);
    assert_non_null(ev);
    assert_non_null(ev->referral);
    assert_null(ev->referral->victim);
    assert_false(ev->victim_contact);
    cara__referral_triaged__free_unpacked(ev, NULL);
    char *tel = tt_submit(h, "gwent", "TF-5", s_interpreter);
    tt_wait_case(h, tel, "triaged/telephone/p2");
    free(tel);
    free(id);
}

static void s_withdraw(const char *force, const char *id) {
    Cara__WithdrawReferral w = CARA__WITHDRAW_REFERRAL__INIT;
    w.referral_id = (char *)id;
    w.reason_code = "caution_rescinded";
    w.reason = "caution rescinded on review";
    Cara__Reply *reply = harness_call(harness_client(h, "intake", "police", force), &w.base);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    cara__reply__free_unpacked(reply, NULL);
}

static void test_withdrawal_before_and_after_triage(void **state) {
    (void)state;
    char *waiting = tt_submit(h, "dyfed-powys", "TF-6", s_previous_unknown);
    tt_wait_case(h, waiting, "awaiting_decision/-/-");
    s_withdraw("dyfed-powys", waiting);
    tt_wait_case(h, waiting, "withdrawn/-/-");
    // A withdrawn case is never routed, even if someone tries.
    s_staff_approve(waiting, CARA__REPLY__STATUS__CONFLICT);
    char *routed = tt_submit(h, "dyfed-powys", "TF-7", NULL);
    tt_wait_case(h, routed, "triaged/male_intimate/p1");
    s_withdraw("dyfed-powys", routed);
    tt_wait_case(h, routed, "withdrawn/male_intimate/p1");
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT scope FROM outbox WHERE type = 'cara.TriageCaseWithdrawn' AND key = '%s'",
             routed);
    char *scope = harness_value(h, "triage", sql);
    assert_string_equal(scope, "p1"); // the provider is told
    free(scope);
    free(waiting);
    free(routed);
}

// A few hundred referrals of every kind through the chain, so the replay below has a stream
// worth replaying; prints how long triage took to decide them all (measurement, not a limit).
static void test_volume_through_the_chain(void **state) {
    (void)state;
    void (*kinds[])(Cara__Referral *) = {NULL, s_high_risk, s_previous_unknown, s_no_consent,
                                         s_interpreter};
    const int n = 300;
    char *before = harness_value(h, "triage", "SELECT count(*) FROM triage_case");
    int64_t start = time_mono_ms();
    for (int i = 0; i < n; i++) {
        char ref[32];
        snprintf(ref, sizeof ref, "TF-V-%d", i);
        free(tt_submit(h, i % 2 ? "gwent" : "dyfed-powys", ref, kinds[i % 5]));
    }
    int64_t submitted = time_mono_ms();
    char expect[16];
    snprintf(expect, sizeof expect, "%d", atoi(before) + n);
    assert_int_equal(
        harness_wait_value(h, "triage", "SELECT count(*) FROM triage_case", expect, 30000), 0);
    int64_t done = time_mono_ms();
    // 1 in 5 returned (high risk), 1 in 5 waiting (not known), the rest routed.
    char *split = harness_value(h, "triage",
                                "SELECT string_agg(status || '=' || c, ',' ORDER BY status) FROM"
                                " (SELECT status, count(*) c FROM triage_case WHERE referral_id IN"
                                " (SELECT referral_id FROM triage_case ORDER BY received_at DESC"
                                " LIMIT 300) GROUP BY status) s");
    assert_string_equal(split, "awaiting_decision=60,returned=60,triaged=180");
    fprintf(stderr,
            "  measured: %d referrals submitted in %lld ms, all triage cases in place %lld ms"
            " after the first submission\n",
            n, (long long)(submitted - start), (long long)(done - start));
    free(split);
    free(before);
}

static void test_replay_from_zero_gives_the_same_cases(void **state) {
    (void)state;
    const char *count = "SELECT count(*) FROM triage_case";
    // Decisions made by a person are commands, not stream events: a rebuild from the intake
    // stream leaves those cases waiting again. Everything else must come back identical.
    char *manual = harness_value(h, "triage",
                                 "SELECT coalesce(string_agg(quote_literal(referral_id::text),"
                                 " ','), '''-''') FROM triage_case"
                                 " WHERE decided_by NOT IN ('triage:auto', 'triage:rules')");
    // Automatic decisions are taken as of the intake event's time, so even their times come
    // back the same; and the stream carries the same events in the same order.
    char snapshot[2048], events[1024];
    snprintf(snapshot, sizeof snapshot,
             "SELECT string_agg(concat_ws('|', referral_id, force, status, received_at,"
             " caution_date, compliance_deadline, proposed_pathway, pathway, pathway_reason,"
             " provider_id, victim_contact, review_reasons, return_reasons, rules_version,"
             " decided_at, decided_by, decision_seconds, md5(referral)), ','"
             " ORDER BY referral_id) FROM triage_case WHERE referral_id::text NOT IN (%s)",
             manual);
    snprintf(events, sizeof events,
             "SELECT string_agg(type || ':' || key || ':' || scope, ',' ORDER BY seq)"
             " FROM outbox WHERE key NOT IN (%s)",
             manual);
    char *before = harness_value(h, "triage", snapshot);
    char *stream = harness_value(h, "triage", events);
    assert_non_null(stream);
    char *n = harness_value(h, "triage", count);
    assert_non_null(before);
    assert_true(atoi(n) >= 7);
    harness_stop(h, "triage", SIGTERM);
    db_t *db = harness_db(h, "triage");
    assert_int_equal(
        db_exec(db,
                "TRUNCATE need, onward_referral, safety_alert, triage_case, inbox, outbox,"
                " audit",
                0, NULL),
        0);
    assert_int_equal(db_exec(db, "UPDATE cursor SET seq = 0", 0, NULL), 0);
    int64_t start = time_mono_ms();
    assert_int_equal(harness_start(h, "triage"), 0);
    assert_int_equal(harness_wait_value(h, "triage", count, n, 20000), 0);
    fprintf(stderr, "  measured: %s cases rebuilt from the intake stream in %lld ms (with start)\n",
            n, (long long)(time_mono_ms() - start));
    assert_int_equal(harness_wait_value(h, "triage", snapshot, before, 5000), 0);
    assert_int_equal(harness_wait_value(h, "triage", events, stream, 5000), 0);
    free(stream);
    free(manual);
    free(before);
    free(n);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eligible_referral_is_routed_and_police_told),
        cmocka_unit_test(test_ineligible_referral_is_returned_with_reason),
        cmocka_unit_test(test_not_known_waits_for_a_person_who_may_override),
        cmocka_unit_test(test_triaged_event_carries_the_case_as_stored),
        cmocka_unit_test(test_routing_by_force_and_date_and_victim_consent),
        cmocka_unit_test(test_withdrawal_before_and_after_triage),
        cmocka_unit_test(test_volume_through_the_chain),
        cmocka_unit_test(test_replay_from_zero_gives_the_same_cases),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
