// Every eligibility rule both ways through the real chain (police -> intake -> triage ->
// intake outcomes): adult at the caution date, DASH not high, no DA conviction or caution in
// the last two years, offence eligible for the force, caution given, deadline ahead. A fail
// returns the case with machine-readable reasons; a "not known" answer waits for a person; an
// amendment re-runs the rules on a waiting case and is passed on to the provider after routing.
#include "test_triage_support.h"

static harness_t *h;

static int setup(void **state) {
    (void)state;
    h = harness_new("triage_eligibility");
    if (!h)
        return -1;
    harness_config(h, "triage", "routing",
                   "[{\"force\": \"dyfed-powys\", \"provider\": \"p1\", \"from\": \"2020-01-01\","
                   "  \"to\": \"\"},"
                   " {\"force\": \"gwent\", \"provider\": \"p2\", \"from\": \"2020-01-01\","
                   "  \"to\": \"\"}]");
    // Dyfed-Powys has narrowed its list; Gwent keeps the default categories; Cleveland has no
    // dated routes, only its force's provider.
    harness_config(h, "triage", "forces",
                   "{\"dyfed-powys\": {\"eligible_offences\": [\"common_assault\","
                   " \"harassment\"], \"provider\": \"p-unused\"},"
                   " \"cleveland\": {\"provider\": \"p3\"}}");
    return harness_start(h, "intake") == 0 && harness_start(h, "triage") == 0 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    harness_destroy(&h);
    return 0;
}

static const char *const s_reasons =
    "SELECT coalesce(string_agg(r->>'code', ',' ORDER BY r->>'code'), '')"
    " FROM triage_case, jsonb_array_elements(return_reasons) r WHERE referral_id = '%s'";
static const char *const s_review =
    "SELECT coalesce(string_agg(r->>'code', ',' ORDER BY r->>'code'), '')"
    " FROM triage_case, jsonb_array_elements(review_reasons) r WHERE referral_id = '%s'";

// Submits, waits for the case to be returned, and checks the reason codes (sorted, comma
// separated), the rules version, the police outcome and the ReferralReturned event.
static void s_returned(const char *force, const char *ref, tt_tweak_fn tweak, const char *codes) {
    char *id = tt_submit(h, force, ref, tweak);
    tt_wait_case(h, id, "returned/-/-");
    tt_expect(h, s_reasons, id, codes);
    tt_expect(h,
              "SELECT rules_version || '/' || decided_by FROM triage_case"
              " WHERE referral_id = '%s'",
              id, "1/triage:rules");
    tt_expect(h, "SELECT scope FROM outbox WHERE type = 'cara.ReferralReturned' AND key = '%s'", id,
              force);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT status FROM outcome WHERE referral_id = '%s'", id);
    assert_int_equal(harness_wait_value(h, "intake", sql, "returned", 15000), 0);
    Cara__ReferralReturned *ev = (Cara__ReferralReturned *)tt_stream_event(
        h, "operator", "ops", "cara.ReferralReturned", &cara__referral_returned__descriptor, id);
    assert_non_null(ev);
    assert_string_equal(ev->force, force);
    assert_true(ev->n_reasons >= 1);
    assert_non_null(strstr(codes, ev->reasons[0]->code));
    assert_true(strlen(ev->reasons[0]->detail) > 0);
    cara__referral_returned__free_unpacked(ev, NULL);
    free(id);
}

// Submits and waits for the case to be routed.
static void s_triaged(const char *force, const char *ref, tt_tweak_fn tweak, const char *expect) {
    char *id = tt_submit(h, force, ref, tweak);
    tt_wait_case(h, id, expect);
    tt_expect(h, s_reasons, id, "");
    tt_expect(h,
              "SELECT rules_version || '/' || decided_by FROM triage_case"
              " WHERE referral_id = '%s'",
              id, "1/triage:auto");
    free(id);
}

// Submits and checks the case waits for a person with the given review codes.
static char *s_waits(const char *force, const char *ref, tt_tweak_fn tweak, const char *codes) {
    char *id = tt_submit(h, force, ref, tweak);
    tt_wait_case(h, id, "awaiting_decision/-/-");
    tt_expect(h, s_review, id, codes);
    tt_expect(h, "SELECT count(*) FROM outbox WHERE key = '%s'", id, "0");
    return id;
}

// --- adult at the caution date -----------------------------------------------------------
static void s_age_17(Cara__Referral *r) {
    char dob[16];
    // 18th birthday the day after the caution.
    ti_set(&r->offender->date_of_birth,
           tt_years_before(r->caution->given_at, 18, 1, dob, sizeof dob));
}
static void s_age_18_today(Cara__Referral *r) {
    char dob[16];
    ti_set(&r->offender->date_of_birth,
           tt_years_before(r->caution->given_at, 18, 0, dob, sizeof dob));
}
static void test_adult_at_caution_date(void **state) {
    (void)state;
    s_returned("dyfed-powys", "EL-AGE-1", s_age_17, "under_18");
    s_triaged("dyfed-powys", "EL-AGE-2", s_age_18_today, "triaged/male_intimate/p1");
}

// --- DASH risk not high ----------------------------------------------------------------------
static void s_dash_high(Cara__Referral *r) {
    ti_set(&r->risk->dash_level, "high");
}
static void s_dash_medium(Cara__Referral *r) {
    ti_set(&r->risk->dash_level, "medium");
}
static void test_dash_not_high(void **state) {
    (void)state;
    s_returned("dyfed-powys", "EL-DASH-1", s_dash_high, "dash_high");
    s_triaged("dyfed-powys", "EL-DASH-2", s_dash_medium, "triaged/male_intimate/p1");
}

// --- no DA conviction or caution in the last two years ---------------------------------------
static void s_prev_yes(Cara__Referral *r) {
    ti_set(&r->risk->previous_da, "yes");
}
static void s_prev_unknown(Cara__Referral *r) {
    ti_set(&r->risk->previous_da, "not_known");
}
static void test_no_recent_da(void **state) {
    (void)state;
    s_returned("dyfed-powys", "EL-DA-1", s_prev_yes, "previous_da");
    s_triaged("dyfed-powys", "EL-DA-2", NULL, "triaged/male_intimate/p1"); // "no"
    char *id = s_waits("dyfed-powys", "EL-DA-3", s_prev_unknown, "previous_da_unknown");
    free(id);
}

// --- offence in the force's eligible categories ----------------------------------------------
static void s_damage(Cara__Referral *r) {
    ti_set(&r->caution->offence_category, "criminal_damage");
}
static void s_harassment(Cara__Referral *r) {
    ti_set(&r->caution->offence_category, "harassment");
}
static void s_other(Cara__Referral *r) {
    ti_set(&r->caution->offence_category, "other");
}
static void test_offence_eligible_per_force(void **state) {
    (void)state;
    s_returned("dyfed-powys", "EL-OFF-1", s_damage, "offence_ineligible");
    s_triaged("dyfed-powys", "EL-OFF-2", s_harassment, "triaged/male_intimate/p1");
    s_triaged("gwent", "EL-OFF-3", s_damage, "triaged/male_intimate/p2"); // default list
    char *id = s_waits("gwent", "EL-OFF-4", s_other, "offence_needs_review");
    free(id);
}

// --- caution given (a time that is not in the future) ----------------------------------------
static void s_future_caution(Cara__Referral *r) {
    char when[40];
    // Intake tolerates ten minutes of clock skew; triage does not route a caution not yet given.
    ti_set(&r->caution->given_at,
           time_format_iso(time_now_us() + 5LL * 60 * 1000000, when, sizeof when));
}
static void test_caution_given(void **state) {
    (void)state;
    s_returned("gwent", "EL-GIV-1", s_future_caution, "no_caution");
    s_triaged("gwent", "EL-GIV-2", NULL, "triaged/male_intimate/p2");
}

// --- compliance deadline still ahead --------------------------------------------------------
static void s_deadline_passed(Cara__Referral *r) {
    char when[40];
    // 17 weeks ago: the default 16-week period ended a week ago.
    ti_set(&r->caution->given_at, tt_caution_at(17 * 7, when, sizeof when));
}
static void s_deadline_tomorrow(Cara__Referral *r) {
    char when[40], day[16];
    ti_set(&r->caution->given_at, tt_caution_at(17 * 7, when, sizeof when));
    ti_set(&r->caution->compliance_deadline,
           time_format_date((int32_t)(time_now_us() / TT_DAY_US) + 1, day, sizeof day));
}
static void test_deadline_in_the_future(void **state) {
    (void)state;
    s_returned("gwent", "EL-DL-1", s_deadline_passed, "deadline_passed");
    s_triaged("gwent", "EL-DL-2", s_deadline_tomorrow, "triaged/male_intimate/p2");
}

// --- every failure is reported, and fails win over "not known" -------------------------------
static void s_many(Cara__Referral *r) {
    s_age_17(r);
    s_dash_high(r);
    s_prev_unknown(r);
}
static void test_every_reason_reported(void **state) {
    (void)state;
    s_returned("dyfed-powys", "EL-ALL-1", s_many, "dash_high,under_18");
}

// --- amendments ------------------------------------------------------------------------------
// Amends the referral submitted as ref (force dyfed-powys, caution given at given_at).
static void s_amend(const char *id, const char *ref, const char *given_at, tt_tweak_fn tweak) {
    Cara__Referral *r = ti_referral("dyfed-powys", ref);
    assert_non_null(r);
    ti_set(&r->caution->given_at, given_at);
    if (tweak)
        tweak(r);
    Cara__AmendReferral cmd = CARA__AMEND_REFERRAL__INIT;
    cmd.referral_id = (char *)id;
    cmd.reason = "PNC check completed";
    cmd.referral = r;
    Cara__Reply *reply =
        harness_call(harness_client(h, "intake", "police", "dyfed-powys"), &cmd.base);
    if (reply->status != CARA__REPLY__STATUS__OK)
        ti_print_errors(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    cara__reply__free_unpacked(reply, NULL);
    cara__referral__free_unpacked(r, NULL);
}
static char s_given[40];
static void s_given_fixed(Cara__Referral *r) {
    ti_set(&r->caution->given_at, s_given);
}
static void s_given_fixed_high(Cara__Referral *r) {
    s_given_fixed(r);
    s_dash_high(r);
}
static void s_given_fixed_unknown(Cara__Referral *r) {
    s_given_fixed(r);
    s_prev_unknown(r);
}
static void s_new_phone(Cara__Referral *r) {
    ti_set(&r->offender->phone, "07700 900999");
}

static void test_amendment_rules_rerun_while_waiting_and_passed_on_after(void **state) {
    (void)state;
    tt_caution_at(2, s_given, sizeof s_given);
    // Waiting on "not known"; the police amend it to "no": the rules run again and route it.
    char *waiting = s_waits("dyfed-powys", "EL-AM-1", s_given_fixed_unknown, "previous_da_unknown");
    s_amend(waiting, "EL-AM-1", s_given, NULL);
    tt_wait_case(h, waiting, "triaged/male_intimate/p1");
    tt_expect(h, s_review, waiting, "");
    // Routed already: the amendment goes to the provider, and the case stays routed.
    char *routed = tt_submit(h, "dyfed-powys", "EL-AM-2", s_given_fixed);
    tt_wait_case(h, routed, "triaged/male_intimate/p1");
    s_amend(routed, "EL-AM-2", s_given, s_new_phone);
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM outbox WHERE type = 'cara.TriageCaseUpdated' AND key = '%s'"
             " AND scope = 'p1'",
             routed);
    assert_int_equal(harness_wait_value(h, "triage", sql, "1", 15000), 0);
    Cara__TriageCaseUpdated *up = (Cara__TriageCaseUpdated *)tt_stream_event(
        h, "service", "booking", "cara.TriageCaseUpdated", &cara__triage_case_updated__descriptor,
        routed);
    assert_non_null(up);
    assert_string_equal(up->reason, "amendment");
    assert_string_equal(up->provider_id, "p1");
    assert_int_equal(up->n_changes, 1);
    assert_string_equal(up->changes[0]->field, "offender.phone");
    assert_non_null(up->referral);
    assert_string_equal(up->referral->offender->phone, "07700 900999");
    cara__triage_case_updated__free_unpacked(up, NULL);
    tt_wait_case(h, routed, "triaged/male_intimate/p1");
    tt_expect(h,
              "SELECT count(*) FROM audit WHERE action = 'amended' AND entity_id = '%s'"
              " AND detail->'fields' = '[\"offender.phone\"]'",
              routed, "1");
    // Returned by the rules; the police correct the DASH level: the case reopens and is routed.
    char *corrected = tt_submit(h, "dyfed-powys", "EL-AM-3", s_given_fixed_high);
    tt_wait_case(h, corrected, "returned/-/-");
    s_amend(corrected, "EL-AM-3", s_given, NULL);
    tt_wait_case(h, corrected, "triaged/male_intimate/p1");
    tt_expect(h, s_reasons, corrected, "");
    tt_expect(h, "SELECT count(*) FROM audit WHERE action = 'reopened' AND entity_id = '%s'",
              corrected, "1");
    snprintf(sql, sizeof sql, "SELECT status FROM outcome WHERE referral_id = '%s'", corrected);
    assert_int_equal(harness_wait_value(h, "intake", sql, "triaged", 15000), 0);
    free(corrected);
    free(waiting);
    free(routed);
}

static void s_female(Cara__Referral *r) {
    ti_set(&r->offender->sex, "female");
}
static void s_no_consent(Cara__Referral *r) {
    r->victim->consents_to_contact = 0;
}
static void s_unknown_female(Cara__Referral *r) {
    s_given_fixed_unknown(r);
    s_female(r);
}

// The TriageCaseUpdated that the provider (booking) is served for the routed case id.
static Cara__TriageCaseUpdated *s_update_served(const char *id) {
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM outbox WHERE type = 'cara.TriageCaseUpdated' AND key = '%s'",
             id);
    assert_int_equal(harness_wait_value(h, "triage", sql, "1", 15000), 0);
    Cara__TriageCaseUpdated *up = (Cara__TriageCaseUpdated *)tt_stream_event(
        h, "service", "booking", "cara.TriageCaseUpdated", &cara__triage_case_updated__descriptor,
        id);
    assert_non_null(up);
    return up;
}

// A person routes a waiting case (previous DA not known) with an override of pathway; the police
// then correct the offender's sex. Returns the pathway the provider is told ("" = unchanged).
static char *s_override_then_female(const char *ref, const char *pathway) {
    char *id = s_waits("dyfed-powys", ref, s_given_fixed_unknown, "previous_da_unknown");
    Cara__TriageDecide cmd = CARA__TRIAGE_DECIDE__INIT;
    cmd.referral_id = id;
    cmd.decision = "approve";
    cmd.pathway = (char *)pathway;
    cmd.reason = "staff choice";
    Cara__Reply *reply = tt_staff(h, &cmd.base);
    assert_non_null(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    cara__reply__free_unpacked(reply, NULL);
    s_amend(id, ref, s_given, s_unknown_female);
    Cara__TriageCaseUpdated *up = s_update_served(id);
    char *moved = strdup(up->pathway);
    cara__triage_case_updated__free_unpacked(up, NULL);
    free(id);
    return moved;
}

// An amendment of a routed case is worked out again, not only passed on: the victim's consent
// as now stated, a pathway whose facts changed (a woman never stays in a men's group), and a
// rule the amended referral fails (the case goes back to the police). A pathway a person chose
// stands through an amendment of something else; a person cannot put an offender in the other
// sex's group.
static void test_amendment_after_routing_is_worked_out_again(void **state) {
    (void)state;
    tt_caution_at(2, s_given, sizeof s_given);
    // The sex corrected: the pathway follows, and the provider is told.
    char *moved = tt_submit(h, "dyfed-powys", "EL-AR-1", s_given_fixed);
    tt_wait_case(h, moved, "triaged/male_intimate/p1");
    s_amend(moved, "EL-AR-1", s_given, s_female);
    Cara__TriageCaseUpdated *up = s_update_served(moved);
    assert_string_equal(up->pathway, "female_intimate");
    assert_string_equal(up->victim_contact, "yes");
    cara__triage_case_updated__free_unpacked(up, NULL);
    tt_wait_case(h, moved, "triaged/female_intimate/p1");
    tt_expect(h, "SELECT count(*) FROM audit WHERE action = 'pathway_changed' AND entity_id = '%s'",
              moved, "1");
    // The victim no longer consents: the provider is told, the pathway is unchanged.
    char *consent = tt_submit(h, "dyfed-powys", "EL-AR-2", s_given_fixed);
    tt_wait_case(h, consent, "triaged/male_intimate/p1");
    tt_expect(h, "SELECT victim_contact::text FROM triage_case WHERE referral_id = '%s'", consent,
              "true");
    s_amend(consent, "EL-AR-2", s_given, s_no_consent);
    up = s_update_served(consent);
    assert_string_equal(up->pathway, "");
    assert_string_equal(up->victim_contact, "no");
    cara__triage_case_updated__free_unpacked(up, NULL);
    tt_expect(h, "SELECT victim_contact::text FROM triage_case WHERE referral_id = '%s'", consent,
              "false");
    // The DASH level is now high: returned to the police, with that reason only.
    char *risky = tt_submit(h, "dyfed-powys", "EL-AR-3", s_given_fixed);
    tt_wait_case(h, risky, "triaged/male_intimate/p1");
    s_amend(risky, "EL-AR-3", s_given, s_given_fixed_high);
    tt_wait_case(h, risky, "returned/male_intimate/p1");
    tt_expect(h, s_reasons, risky, "dash_high");
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT status FROM outcome WHERE referral_id = '%s'", risky);
    assert_int_equal(harness_wait_value(h, "intake", sql, "returned", 15000), 0);
    // A person's override to the other sex's group is refused, and the case still waits.
    char *waiting = s_waits("dyfed-powys", "EL-AR-4", s_given_fixed_unknown, "previous_da_unknown");
    Cara__TriageDecide cmd = CARA__TRIAGE_DECIDE__INIT;
    cmd.referral_id = waiting;
    cmd.decision = "approve";
    cmd.pathway = "female_non_intimate";
    cmd.reason = "staff choice";
    Cara__Reply *reply = tt_staff(h, &cmd.base);
    assert_non_null(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__CONFLICT);
    assert_non_null(strstr(reply->message, "other sex"));
    cara__reply__free_unpacked(reply, NULL);
    tt_wait_case(h, waiting, "awaiting_decision/-/-");
    // A person's choice of telephone stands through the correction; a person's choice of a
    // men's group does not (it no longer fits): the rules' women's group replaces it.
    char *kept = s_override_then_female("EL-AR-5", "telephone");
    assert_string_equal(kept, "");
    free(kept);
    char *refit = s_override_then_female("EL-AR-6", "male_non_intimate");
    assert_string_equal(refit, "female_intimate");
    free(refit);
    free(moved);
    free(consent);
    free(risky);
    free(waiting);
}

static void test_force_provider_when_no_dated_route(void **state) {
    (void)state;
    s_triaged("cleveland", "EL-RT-1", NULL, "triaged/male_intimate/p3");
    // Dyfed-Powys has dated routes: they win over the force's provider.
    s_triaged("dyfed-powys", "EL-RT-2", NULL, "triaged/male_intimate/p1");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adult_at_caution_date),
        cmocka_unit_test(test_dash_not_high),
        cmocka_unit_test(test_no_recent_da),
        cmocka_unit_test(test_offence_eligible_per_force),
        cmocka_unit_test(test_caution_given),
        cmocka_unit_test(test_deadline_in_the_future),
        cmocka_unit_test(test_every_reason_reported),
        cmocka_unit_test(test_amendment_rules_rerun_while_waiting_and_passed_on_after),
        cmocka_unit_test(test_amendment_after_routing_is_worked_out_again),
        cmocka_unit_test(test_force_provider_when_no_dated_route),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
