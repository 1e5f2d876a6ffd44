// Triage staff at work with "auto_triage": false (every case waits for a person): needs
// assessment before and after routing, approval with and without an override, return by staff,
// routing by force and effective date, victim contact only with consent, the time from receipt
// to decision, the overdue list, validation and role checks, and who may read the stream.
#include "cara/stream.h"
#include "test_triage_support.h"

static harness_t *h;

static int setup(void **state) {
    (void)state;
    h = harness_new("triage_staff");
    if (!h)
        return -1;
    // south-wales changed provider yesterday: cautions up to the day before go to p-old.
    int32_t today = (int32_t)(time_now_us() / TT_DAY_US);
    char to[16], from[16], routing[600];
    time_format_date(today - 2, to, sizeof to);
    time_format_date(today - 1, from, sizeof from);
    snprintf(routing, sizeof routing,
             "[{\"force\": \"dyfed-powys\", \"provider\": \"p1\", \"from\": \"2020-01-01\","
             "  \"to\": \"\"},"
             " {\"force\": \"south-wales\", \"provider\": \"p-old\", \"from\": \"2020-01-01\","
             "  \"to\": \"%s\"},"
             " {\"force\": \"south-wales\", \"provider\": \"p-new\", \"from\": \"%s\","
             "  \"to\": \"\"}]",
             to, from);
    harness_config(h, "triage", "routing", routing);
    harness_config(h, "triage", "auto_triage", "false");
    return harness_start(h, "intake") == 0 && harness_start(h, "triage") == 0 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    harness_destroy(&h);
    return 0;
}

static Cara__Reply *s_decide(const char *id, const char *decision, const char *pathway,
                             const char *reason, const char *code) {
    Cara__TriageDecide cmd = CARA__TRIAGE_DECIDE__INIT;
    cmd.referral_id = (char *)id;
    cmd.decision = (char *)decision;
    cmd.pathway = (char *)pathway;
    cmd.reason = (char *)reason;
    cmd.return_reason_code = (char *)code;
    return tt_staff(h, &cmd.base);
}

static void s_decide_ok(const char *id, const char *decision, const char *pathway,
                        const char *reason, const char *code) {
    Cara__Reply *reply = s_decide(id, decision, pathway, reason, code);
    if (reply->status != CARA__REPLY__STATUS__OK)
        ti_print_errors(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    cara__reply__free_unpacked(reply, NULL);
}

// The case as ShowTriageCase answers it (caller frees).
static Cara__TriageCaseList *s_show(const char *id) {
    Cara__ShowTriageCase cmd = CARA__SHOW_TRIAGE_CASE__INIT;
    cmd.referral_id = (char *)id;
    Cara__Reply *reply = tt_staff(h, &cmd.base);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    Cara__TriageCaseList *list =
        cara__triage_case_list__unpack(NULL, reply->payload.len, reply->payload.data);
    cara__reply__free_unpacked(reply, NULL);
    assert_non_null(list);
    assert_int_equal(list->n_cases, 1);
    return list;
}

static Cara__Reply *s_needs(const char *id, const char *area, const char *level,
                            const char *service, const char *date) {
    Cara__Need need = CARA__NEED__INIT;
    Cara__Need *needs[] = {&need};
    Cara__OnwardReferral onward = CARA__ONWARD_REFERRAL__INIT;
    Cara__OnwardReferral *onwards[] = {&onward};
    Cara__RecordNeeds cmd = CARA__RECORD_NEEDS__INIT;
    cmd.referral_id = (char *)id;
    if (area) {
        need.area = (char *)area;
        need.level = (char *)level;
        cmd.needs = needs;
        cmd.n_needs = 1;
    }
    if (service) {
        onward.service = (char *)service;
        onward.date = (char *)date;
        cmd.onward = onwards;
        cmd.n_onward = 1;
    }
    return tt_staff(h, &cmd.base);
}

static void s_needs_ok(const char *id, const char *area, const char *level, const char *service,
                       const char *date) {
    Cara__Reply *reply = s_needs(id, area, level, service, date);
    if (reply->status != CARA__REPLY__STATUS__OK)
        ti_print_errors(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    cara__reply__free_unpacked(reply, NULL);
}

static void s_no_consent(Cara__Referral *r) {
    r->victim->consents_to_contact = 0;
}
static void s_caution_now(Cara__Referral *r) {
    char when[40];
    ti_set(&r->caution->given_at,
           time_format_iso(time_now_us() - 60LL * 1000000, when, sizeof when));
}
static void s_female_family(Cara__Referral *r) {
    ti_set(&r->offender->sex, "female");
    ti_set(&r->relationship, "non_intimate");
}

static void test_clean_case_waits_needs_then_approval_carries_them(void **state) {
    (void)state;
    char *id = tt_submit(h, "dyfed-powys", "ST-1", NULL);
    tt_wait_case(h, id, "awaiting_decision/-/-");
    tt_expect(h, "SELECT proposed_pathway FROM triage_case WHERE referral_id = '%s'", id,
              "male_intimate");
    s_needs_ok(id, "alcohol", "high", "Dyfed Drug and Alcohol Service", "2026-01-05");
    s_needs_ok(id, "accommodation", "low", NULL, NULL);
    s_needs_ok(id, "alcohol", "medium", NULL, NULL); // reassessed: the level is replaced
    // Received a day ago: the decision time is recorded from receipt.
    char sql[200];
    snprintf(sql, sizeof sql,
             "UPDATE triage_case SET received_at = now() - interval '1 day' WHERE referral_id ="
             " '%s'",
             id);
    assert_int_equal(db_exec(harness_db(h, "triage"), sql, 0, NULL), 0);
    s_decide_ok(id, "approve", "", "", "");
    tt_wait_case(h, id, "triaged/male_intimate/p1");
    tt_expect(h,
              "SELECT decision_seconds BETWEEN 86400 AND 86400 + 600 FROM triage_case"
              " WHERE referral_id = '%s'",
              id, "t");
    Cara__ReferralTriaged *ev = (Cara__ReferralTriaged *)tt_stream_event(
        h, "service", "booking", "cara.ReferralTriaged", &cara__referral_triaged__descriptor, id);
    assert_non_null(ev);
    assert_string_equal(ev->provider_id, "p1");
    assert_int_equal(ev->n_needs, 2);
    assert_string_equal(ev->needs[0]->area, "accommodation");
    assert_string_equal(ev->needs[1]->area, "alcohol");
    assert_string_equal(ev->needs[1]->level, "medium");
    assert_int_equal(ev->n_onward, 1);
    assert_string_equal(ev->onward[0]->service, "Dyfed Drug and Alcohol Service");
    assert_string_equal(ev->onward[0]->date, "2026-01-05");
    assert_true(ev->victim_contact); // the sample victim consented
    assert_non_null(ev->referral);
    assert_string_equal(ev->referral->offender->name, "Gareth Llewellyn Pryce");
    cara__referral_triaged__free_unpacked(ev, NULL);
    // Show: decision, who, when, and the assessment.
    Cara__TriageCaseList *list = s_show(id);
    Cara__TriageCaseSummary *c = list->cases[0];
    assert_string_equal(c->status, "triaged");
    assert_string_equal(c->decided_by, "triage:diversion");
    assert_true(c->decision_seconds >= 86400);
    assert_int_equal(c->rules_version, 1);
    assert_true(c->victim_contact);
    assert_int_equal(c->n_needs, 2);
    assert_int_equal(c->n_onward, 1);
    cara__triage_case_list__free_unpacked(list, NULL);
    // After routing, a new assessment reaches the provider.
    s_needs_ok(id, "mental_health", "high", "Hywel Dda mental health team", "2026-01-07");
    Cara__TriageCaseUpdated *up = (Cara__TriageCaseUpdated *)tt_stream_event(
        h, "service", "booking", "cara.TriageCaseUpdated", &cara__triage_case_updated__descriptor,
        id);
    assert_non_null(up);
    assert_string_equal(up->reason, "needs_recorded");
    assert_string_equal(up->provider_id, "p1");
    assert_int_equal(up->n_needs, 3);
    assert_int_equal(up->n_onward, 2);
    cara__triage_case_updated__free_unpacked(up, NULL);
    tt_expect(h, "SELECT scope FROM outbox WHERE type = 'cara.TriageCaseUpdated' AND key = '%s'",
              id, "p1");
    tt_expect(h,
              "SELECT count(*) || ':' || min(actor) FROM audit WHERE action = 'needs_recorded'"
              " AND entity_id = '%s'",
              id, "4:triage:diversion");
    free(id);
}

static void test_override_needs_a_reason_and_is_audited(void **state) {
    (void)state;
    char *id = tt_submit(h, "dyfed-powys", "ST-2", s_female_family);
    tt_wait_case(h, id, "awaiting_decision/-/-");
    tt_expect(h, "SELECT proposed_pathway FROM triage_case WHERE referral_id = '%s'", id,
              "female_non_intimate");
    Cara__Reply *reply = s_decide(id, "approve", "telephone", "", "");
    assert_int_equal(reply->status, CARA__REPLY__STATUS__INVALID);
    assert_true(ti_has_error(reply, "reason"));
    cara__reply__free_unpacked(reply, NULL);
    reply = s_decide(id, "approve", "group_of_one", "because", "");
    assert_int_equal(reply->status, CARA__REPLY__STATUS__INVALID);
    assert_true(ti_has_error(reply, "pathway"));
    cara__reply__free_unpacked(reply, NULL);
    reply = s_decide(id, "maybe", "", "", "");
    assert_int_equal(reply->status, CARA__REPLY__STATUS__INVALID);
    assert_true(ti_has_error(reply, "decision"));
    cara__reply__free_unpacked(reply, NULL);
    s_decide_ok(id, "approve", "telephone", "no female non-intimate group within the deadline", "");
    tt_wait_case(h, id, "triaged/telephone/p1");
    Cara__ReferralTriaged *ev = (Cara__ReferralTriaged *)tt_stream_event(
        h, "service", "booking", "cara.ReferralTriaged", &cara__referral_triaged__descriptor, id);
    assert_non_null(ev);
    assert_string_equal(ev->pathway, "telephone");
    assert_string_equal(ev->pathway_reason, "no female non-intimate group within the deadline");
    cara__referral_triaged__free_unpacked(ev, NULL);
    tt_expect(h,
              "SELECT actor || '|' || (detail->>'pathway') || '|' || (detail->>'reason')"
              " FROM audit WHERE action = 'triaged' AND entity_id = '%s'",
              id, "triage:diversion|telephone|no female non-intimate group within the deadline");
    free(id);
}

static void test_staff_return_goes_back_to_the_police(void **state) {
    (void)state;
    char *id = tt_submit(h, "dyfed-powys", "ST-3", NULL);
    tt_wait_case(h, id, "awaiting_decision/-/-");
    Cara__Reply *reply = s_decide(id, "return", "", "", "");
    assert_int_equal(reply->status, CARA__REPLY__STATUS__INVALID);
    assert_true(ti_has_error(reply, "reason"));
    cara__reply__free_unpacked(reply, NULL);
    // A reason that is not UTF-8, and a code that is free text, are field errors (they were
    // answered "unavailable, retry" for ever, or became a category of national's counts).
    reply = s_decide(id, "return", "", "caf\xe9 owner", "not_suitable");
    assert_int_equal(reply->status, CARA__REPLY__STATUS__INVALID);
    assert_true(ti_has_error(reply, "reason"));
    cara__reply__free_unpacked(reply, NULL);
    reply = s_decide(id, "return", "", "offender already on a DAPP order", "Already on DAPP!");
    assert_int_equal(reply->status, CARA__REPLY__STATUS__INVALID);
    assert_true(ti_has_error(reply, "return_reason_code"));
    cara__reply__free_unpacked(reply, NULL);
    s_decide_ok(id, "return", "", "offender already on a DAPP order", "not_suitable");
    tt_wait_case(h, id, "returned/-/-");
    Cara__ReferralReturned *ev = (Cara__ReferralReturned *)tt_stream_event(
        h, "service", "intake", "cara.ReferralReturned", &cara__referral_returned__descriptor, id);
    assert_non_null(ev);
    assert_int_equal(ev->n_reasons, 1);
    assert_string_equal(ev->reasons[0]->code, "not_suitable");
    assert_string_equal(ev->reasons[0]->detail, "offender already on a DAPP order");
    cara__referral_returned__free_unpacked(ev, NULL);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT status FROM outcome WHERE referral_id = '%s'", id);
    assert_int_equal(harness_wait_value(h, "intake", sql, "returned", 15000), 0);
    tt_expect(h, "SELECT actor FROM audit WHERE action = 'returned' AND entity_id = '%s'", id,
              "triage:diversion");
    // Closed: no second decision.
    reply = s_decide(id, "approve", "", "", "");
    assert_int_equal(reply->status, CARA__REPLY__STATUS__CONFLICT);
    cara__reply__free_unpacked(reply, NULL);
    // An amendment does not reopen a case a person returned (only the rules' returns reopen).
    Cara__Referral *r = ti_referral("dyfed-powys", "ST-3");
    char given[40];
    Cara__ReferralView *view = NULL;
    {
        Cara__ShowReferral show = CARA__SHOW_REFERRAL__INIT;
        show.referral_id = id;
        Cara__Reply *shown =
            harness_call(harness_client(h, "intake", "police", "dyfed-powys"), &show.base);
        assert_int_equal(shown->status, CARA__REPLY__STATUS__OK);
        view = cara__referral_view__unpack(NULL, shown->payload.len, shown->payload.data);
        cara__reply__free_unpacked(shown, NULL);
        assert_non_null(view);
        snprintf(given, sizeof given, "%s", view->referral->caution->given_at);
        cara__referral_view__free_unpacked(view, NULL);
    }
    ti_set(&r->caution->given_at, given);
    ti_set(&r->offender->phone, "07700 900111");
    Cara__AmendReferral amend = CARA__AMEND_REFERRAL__INIT;
    amend.referral_id = id;
    amend.reason = "new phone number";
    amend.referral = r;
    reply = harness_call(harness_client(h, "intake", "police", "dyfed-powys"), &amend.base);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    cara__reply__free_unpacked(reply, NULL);
    cara__referral__free_unpacked(r, NULL);
    char wait[200];
    snprintf(wait, sizeof wait,
             "SELECT count(*) FROM audit WHERE action = 'amended' AND entity_id = '%s'", id);
    assert_int_equal(harness_wait_value(h, "triage", wait, "1", 15000), 0);
    tt_wait_case(h, id, "returned/-/-");
    free(id);
}

static void test_routing_by_effective_date_and_victim_consent(void **state) {
    (void)state;
    char *before = tt_submit(h, "south-wales", "ST-4", s_no_consent); // caution 2 days ago
    char *after = tt_submit(h, "south-wales", "ST-5", s_caution_now);
    char *nowhere = tt_submit(h, "north-wales", "ST-6", NULL);
    tt_wait_case(h, before, "awaiting_decision/-/-");
    tt_wait_case(h, after, "awaiting_decision/-/-");
    tt_wait_case(h, nowhere, "awaiting_decision/-/-");
    s_decide_ok(before, "approve", "", "", "");
    s_decide_ok(after, "approve", "", "", "");
    tt_wait_case(h, before, "triaged/male_intimate/p-old");
    tt_wait_case(h, after, "triaged/male_intimate/p-new");
    tt_expect(h, "SELECT victim_contact FROM triage_case WHERE referral_id = '%s'", before, "f");
    tt_expect(h, "SELECT victim_contact FROM triage_case WHERE referral_id = '%s'", after, "t");
    Cara__ReferralTriaged *ev =
        (Cara__ReferralTriaged *)tt_stream_event(h, "service", "booking", "cara.ReferralTriaged",
                                                 &cara__referral_triaged__descriptor, before);
    assert_non_null(ev);
    assert_false(ev->victim_contact);
    assert_string_equal(ev->provider_id, "p-old");
    cara__referral_triaged__free_unpacked(ev, NULL);
    tt_expect(h, "SELECT scope FROM outbox WHERE type = 'cara.ReferralTriaged' AND key = '%s'",
              after, "p-new");
    // No provider commissioned for the force: not routed, still waiting.
    Cara__Reply *reply = s_decide(nowhere, "approve", "", "", "");
    assert_int_equal(reply->status, CARA__REPLY__STATUS__CONFLICT);
    cara__reply__free_unpacked(reply, NULL);
    tt_wait_case(h, nowhere, "awaiting_decision/-/-");
    free(before);
    free(after);
    free(nowhere);
}

static void test_overdue_lists_cases_past_two_working_days(void **state) {
    (void)state;
    char *old = tt_submit(h, "dyfed-powys", "ST-7", NULL);
    char *fresh = tt_submit(h, "dyfed-powys", "ST-8", NULL);
    tt_wait_case(h, old, "awaiting_decision/-/-");
    tt_wait_case(h, fresh, "awaiting_decision/-/-");
    char sql[200];
    // Six calendar days hold at least four working days, whatever today is.
    snprintf(sql, sizeof sql,
             "UPDATE triage_case SET received_at = now() - interval '6 days' WHERE referral_id ="
             " '%s'",
             old);
    assert_int_equal(db_exec(harness_db(h, "triage"), sql, 0, NULL), 0);
    Cara__ListOverdue cmd = CARA__LIST_OVERDUE__INIT;
    Cara__Reply *reply = tt_staff(h, &cmd.base);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    Cara__TriageCaseList *list =
        cara__triage_case_list__unpack(NULL, reply->payload.len, reply->payload.data);
    cara__reply__free_unpacked(reply, NULL);
    assert_non_null(list);
    int saw_old = 0, saw_fresh = 0;
    for (size_t i = 0; i < list->n_cases; i++) {
        saw_old |= strcmp(list->cases[i]->referral_id, old) == 0;
        saw_fresh |= strcmp(list->cases[i]->referral_id, fresh) == 0;
        assert_true(list->cases[i]->working_days_waiting > 2);
        assert_string_equal(list->cases[i]->status, "awaiting_decision");
    }
    assert_true(saw_old);
    assert_false(saw_fresh);
    cara__triage_case_list__free_unpacked(list, NULL);
    // Only triage staff.
    reply = harness_call(harness_client(h, "triage", "provider", "p1"), &cmd.base);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__FORBIDDEN);
    cara__reply__free_unpacked(reply, NULL);
    free(old);
    free(fresh);
}

static void test_needs_validation_and_roles(void **state) {
    (void)state;
    char *id = tt_submit(h, "dyfed-powys", "ST-9", NULL);
    tt_wait_case(h, id, "awaiting_decision/-/-");
    Cara__Reply *reply = s_needs(id, "astrology", "extreme", "", "05/01/2026");
    assert_int_equal(reply->status, CARA__REPLY__STATUS__INVALID);
    assert_true(ti_has_error(reply, "needs[0].area"));
    assert_true(ti_has_error(reply, "needs[0].level"));
    assert_true(ti_has_error(reply, "onward[0].service"));
    assert_true(ti_has_error(reply, "onward[0].date"));
    cara__reply__free_unpacked(reply, NULL);
    reply = s_needs("not-a-uuid", "drugs", "low", NULL, NULL);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__INVALID);
    assert_true(ti_has_error(reply, "referral_id"));
    cara__reply__free_unpacked(reply, NULL);
    reply = s_needs("00000000-0000-4000-8000-000000000000", "drugs", "low", NULL, NULL);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__NOT_FOUND);
    cara__reply__free_unpacked(reply, NULL);
    Cara__RecordNeeds cmd = CARA__RECORD_NEEDS__INIT;
    cmd.referral_id = id;
    reply = harness_call(harness_client(h, "triage", "police", "dyfed-powys"), &cmd.base);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__FORBIDDEN);
    cara__reply__free_unpacked(reply, NULL);
    tt_expect(h, "SELECT count(*) FROM need WHERE referral_id = '%s'", id, "0");
    free(id);
}

// Sends msg as triage staff with a fixed request id (as a client does when it retries).
static Cara__Reply *s_with_id(const ProtobufCMessage *msg, const char *request_id) {
    Cara__Reply *reply = client_call(harness_client(h, "triage", "triage", "diversion"), msg,
                                     request_id, NULL, 5000, 0);
    assert_non_null(reply);
    return reply;
}

static void test_repeated_requests_change_nothing(void **state) {
    (void)state;
    char *id = tt_submit(h, "dyfed-powys", "ST-11", NULL);
    tt_wait_case(h, id, "awaiting_decision/-/-");
    Cara__OnwardReferral onward = CARA__ONWARD_REFERRAL__INIT;
    Cara__OnwardReferral *onwards[] = {&onward};
    onward.service = "Dyfed Drug and Alcohol Service";
    onward.date = "2026-01-05";
    Cara__RecordNeeds needs = CARA__RECORD_NEEDS__INIT;
    needs.referral_id = id;
    needs.onward = onwards;
    needs.n_onward = 1;
    const char *rid = "5b0e4a43-3f7e-4a51-9d0a-4f5c1f6f7a11";
    for (int i = 0; i < 2; i++) {
        Cara__Reply *reply = s_with_id(&needs.base, rid);
        assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
        cara__reply__free_unpacked(reply, NULL);
    }
    tt_expect(h, "SELECT count(*) FROM onward_referral WHERE referral_id = '%s'", id, "1");
    // The same request id with other content is a conflict.
    onward.service = "Someone else";
    Cara__Reply *reply = s_with_id(&needs.base, rid);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__CONFLICT);
    cara__reply__free_unpacked(reply, NULL);
    // A decision retried after a lost answer gets the first answer, not "already decided".
    Cara__TriageDecide decide = CARA__TRIAGE_DECIDE__INIT;
    decide.referral_id = id;
    decide.decision = "approve";
    const char *did = "5b0e4a43-3f7e-4a51-9d0a-4f5c1f6f7a12";
    for (int i = 0; i < 2; i++) {
        reply = s_with_id(&decide.base, did);
        assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
        cara__reply__free_unpacked(reply, NULL);
    }
    tt_wait_case(h, id, "triaged/male_intimate/p1");
    tt_expect(h, "SELECT count(*) FROM outbox WHERE type = 'cara.ReferralTriaged' AND key = '%s'",
              id, "1");
    tt_expect(h, "SELECT count(*) FROM audit WHERE action = 'triaged' AND entity_id = '%s'", id,
              "1");
    free(id);
}

static void test_stream_views(void **state) {
    (void)state;
    char *id = tt_submit(h, "dyfed-powys", "ST-10", NULL);
    tt_wait_case(h, id, "awaiting_decision/-/-");
    s_needs_ok(id, "drugs", "high", "Kaleidoscope", "2026-01-09");
    s_decide_ok(id, "approve", "", "", "");
    tt_wait_case(h, id, "triaged/male_intimate/p1");
    s_needs_ok(id, "alcohol", "low", NULL, NULL); // after routing: TriageCaseUpdated
    // Intake (the police outcome): the decision, not the referral or the assessment.
    Cara__ReferralTriaged *told = (Cara__ReferralTriaged *)tt_stream_event(
        h, "service", "intake", "cara.ReferralTriaged", &cara__referral_triaged__descriptor, id);
    assert_non_null(told);
    assert_string_equal(told->force, "dyfed-powys");
    assert_null(told->referral);
    assert_int_equal(told->n_needs, 0);
    assert_int_equal(told->n_onward, 0);
    cara__referral_triaged__free_unpacked(told, NULL);
    ProtobufCMessage *update = tt_stream_event(h, "service", "intake", "cara.TriageCaseUpdated",
                                               &cara__triage_case_updated__descriptor, id);
    assert_null(update);
    update = tt_stream_event(h, "service", "booking", "cara.TriageCaseUpdated",
                             &cara__triage_case_updated__descriptor, id);
    assert_non_null(update);
    protobuf_c_message_free_unpacked(update, NULL);
    // National: the decision without the person.
    Cara__ReferralTriaged *ev = (Cara__ReferralTriaged *)tt_stream_event(
        h, "service", "national", "cara.ReferralTriaged", &cara__referral_triaged__descriptor, id);
    assert_non_null(ev);
    assert_string_equal(ev->pathway, "male_intimate");
    assert_string_equal(ev->provider_id, "p1");
    assert_null(ev->referral);
    assert_int_equal(ev->n_needs, 1); // national counts needs, not people
    // An onward referral keeps its date, not the service staff typed (free text).
    assert_int_equal(ev->n_onward, 1);
    assert_string_equal(ev->onward[0]->service, "");
    assert_string_equal(ev->onward[0]->date, "2026-01-09");
    cara__referral_triaged__free_unpacked(ev, NULL);
    // National: a withdrawal without its free text; also one that came without any (published
    // by hand, as intake always gives one: protobuf-c's static empty string is not freed).
    char wid[UUID_STR_LEN];
    uuid_new(wid);
    const char *const texts[] = {"", "Moved in with her sister in Aberaeron"};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        Cara__TriageCaseWithdrawn w = CARA__TRIAGE_CASE_WITHDRAWN__INIT;
        w.referral_id = wid;
        w.force = "dyfed-powys";
        w.reason_code = "caution_rescinded";
        w.reason = (char *)texts[i];
        db_t *db = harness_db(h, "triage");
        assert_int_equal(db_begin(db), 0);
        assert_true(outbox_append(db, &w.base, wid, "dyfed-powys", wid, NULL) > 0);
        assert_int_equal(db_commit(db), 0);
        Cara__TriageCaseWithdrawn *got = (Cara__TriageCaseWithdrawn *)tt_stream_event(
            h, "service", "national", "cara.TriageCaseWithdrawn",
            &cara__triage_case_withdrawn__descriptor, wid);
        assert_non_null(got);
        assert_string_equal(got->reason, "");
        assert_string_equal(got->reason_code, "caution_rescinded");
        cara__triage_case_withdrawn__free_unpacked(got, NULL);
    }
    // Operators see the decision, its codes and the referral, but none of the victim's details
    // (the victim consented to contact here: that goes to the provider, not to operators).
    ev = (Cara__ReferralTriaged *)tt_stream_event(h, "operator", "ops", "cara.ReferralTriaged",
                                                  &cara__referral_triaged__descriptor, id);
    assert_non_null(ev);
    assert_string_equal(ev->pathway, "male_intimate");
    assert_string_equal(ev->provider_id, "p1");
    assert_int_equal(ev->n_needs, 1);
    assert_non_null(ev->referral);
    assert_string_equal(ev->referral->caution_reference, "ST-10");
    assert_non_null(ev->referral->victim);
    assert_true(ev->referral->victim->consents_to_contact);
    assert_string_equal(ev->referral->victim->name, "");
    assert_string_equal(ev->referral->victim->phone, "");
    assert_string_equal(ev->referral->victim->safe_contact_times, "");
    cara__referral_triaged__free_unpacked(ev, NULL);
    // Booking (the provider) still gets the victim who consents.
    ev = (Cara__ReferralTriaged *)tt_stream_event(h, "service", "booking", "cara.ReferralTriaged",
                                                  &cara__referral_triaged__descriptor, id);
    assert_non_null(ev);
    assert_string_equal(ev->referral->victim->name, "Sian Pryce");
    cara__referral_triaged__free_unpacked(ev, NULL);
    // Providers, police and Hampton Trust read their own services' streams, not triage's.
    const char *refused[][2] = {{"provider", "p1"},
                                {"police", "dyfed-powys"},
                                {"hampton_trust", "ht"},
                                {"triage", "diversion"},
                                {"service", "billing"}};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        int status = 0;
        Cara__Batch *b = harness_fetch(harness_client(h, "triage", refused[i][0], refused[i][1]),
                                       "triage", 0, 10, &status);
        assert_null(b);
        assert_int_equal(status, CARA__REPLY__STATUS__FORBIDDEN);
    }
    free(id);
}

// Puts an envelope of type holding payload, with schema_version, straight into triage's outbox
// (as a newer triage, or a damaged row, would leave it). Returns its seq.
static int64_t s_plant(const char *type, uint32_t schema_version, const ProtobufCMessage *payload,
                       const char *id) {
    uint8_t *inner = NULL, *data = NULL;
    size_t inner_len = 0, len = 0;
    assert_int_equal(envelope_encode_message(payload, &inner, &inner_len), 0);
    char event_id[UUID_STR_LEN];
    uuid_new(event_id);
    Cara__Envelope env = CARA__ENVELOPE__INIT;
    env.event_id = event_id;
    env.type = (char *)type;
    env.schema_version = schema_version;
    env.occurred_at = "2026-01-05T10:00:00.000000Z";
    env.producer = "triage";
    env.correlation_id = (char *)id;
    env.payload.data = inner;
    env.payload.len = inner_len;
    assert_int_equal(envelope_encode_message(&env.base, &data, &len), 0);
    const char *values[] = {event_id, type, id, "p1", (const char *)data};
    int lengths[] = {0, 0, 0, 0, (int)len}, formats[] = {0, 0, 0, 0, 1};
    PGresult *r = db_query_bin(harness_db(h, "triage"),
                               "INSERT INTO outbox (event_id, type, key, scope, payload)"
                               " VALUES ($1, $2, $3, $4, $5) RETURNING seq",
                               5, values, lengths, formats, 0);
    assert_non_null(r);
    int64_t seq = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    free(inner);
    free(data);
    return seq;
}

// Whether any event of the triage stream served to role:org holds text (anywhere in its
// envelope); *status is the fetch's status (the batch is NULL unless OK).
static int s_served_holds(const char *role, const char *org, const char *text, int *status) {
    *status = 0;
    Cara__Batch *b =
        harness_fetch(harness_client(h, "triage", role, org), "triage", 0, 10000, status);
    if (!b)
        return 0;
    int found = 0;
    size_t k = strlen(text);
    for (size_t i = 0; i < b->n_events; i++) {
        const ProtobufCBinaryData *e = &b->events[i]->envelope;
        for (size_t j = 0; j + k <= e->len && !found; j++)
            found = memcmp(e->data + j, text, k) == 0;
    }
    *status = CARA__REPLY__STATUS__OK;
    cara__batch__free_unpacked(b, NULL);
    return found;
}

// The victim's details never leave triage for a reader that should not have them: an amendment
// event that carries the changes of a non-consenting victim's fields (as triage wrote them
// before they were left out) reaches booking and operators without them; an event that can
// carry a referral but does not decode here (a newer schema_version) fails booking's fetch
// (UNAVAILABLE: booking waits for a triage that can read it, nothing passed over) and reaches
// operators as a bare envelope, instead of going out with the victim in it.
static void test_victim_details_never_leak_from_the_stream(void **state) {
    (void)state;
    char id[UUID_STR_LEN];
    uuid_new(id);
    Cara__Referral *r = ti_referral("dyfed-powys", "ST-LEAK");
    assert_non_null(r);
    r->victim->consents_to_contact = 0;
    ti_set(&r->victim->name, "Angharad Wyddgrug");
    ti_set(&r->victim->phone, "07700 900777");
    Cara__FieldChange phone = CARA__FIELD_CHANGE__INIT, theirs = CARA__FIELD_CHANGE__INIT;
    phone.field = "victim.phone";
    phone.old_value = "07700 900666";
    phone.new_value = "07700 900777";
    theirs.field = "offender.phone";
    theirs.old_value = "07700 900123";
    theirs.new_value = "07700 900124";
    Cara__FieldChange *changes[] = {&phone, &theirs};
    Cara__TriageCaseUpdated up = CARA__TRIAGE_CASE_UPDATED__INIT;
    up.referral_id = id;
    up.force = "dyfed-powys";
    up.provider_id = "p1";
    up.changes = changes;
    up.n_changes = 2;
    up.referral = r;
    up.reason = "amendment";
    up.victim_contact = "no";
    int64_t seq = s_plant("cara.TriageCaseUpdated", ENVELOPE_SCHEMA_VERSION, &up.base, id);
    (void)seq;
    const char *const readers[][2] = {{"service", "booking"}, {"operator", "ops"}};
    for (size_t i = 0; i < 2; i++) {
        Cara__TriageCaseUpdated *got = (Cara__TriageCaseUpdated *)tt_stream_event(
            h, readers[i][0], readers[i][1], "cara.TriageCaseUpdated",
            &cara__triage_case_updated__descriptor, id);
        assert_non_null(got);
        assert_int_equal(got->n_changes, 1); // the offender's change stays
        assert_string_equal(got->changes[0]->field, "offender.phone");
        assert_string_equal(got->victim_contact, "no");
        assert_non_null(got->referral);
        assert_true(!got->referral->victim || strcmp(got->referral->victim->name, "") == 0);
        cara__triage_case_updated__free_unpacked(got, NULL);
        int status;
        assert_false(s_served_holds(readers[i][0], readers[i][1], "900777", &status));
        assert_false(s_served_holds(readers[i][0], readers[i][1], "900666", &status));
        assert_false(s_served_holds(readers[i][0], readers[i][1], "Wyddgrug", &status));
        assert_int_equal(status, CARA__REPLY__STATUS__OK);
    }
    // A newer schema's ReferralTriaged with the same victim.
    Cara__ReferralTriaged t = CARA__REFERRAL_TRIAGED__INIT;
    t.referral_id = id;
    t.force = "dyfed-powys";
    t.provider_id = "p1";
    t.pathway = "male_intimate";
    t.referral = r;
    int64_t newer = s_plant("cara.ReferralTriaged", ENVELOPE_SCHEMA_VERSION + 1, &t.base, id);
    int status;
    assert_false(s_served_holds("service", "booking", "Wyddgrug", &status));
    assert_int_equal(status, CARA__REPLY__STATUS__UNAVAILABLE);
    assert_false(s_served_holds("operator", "ops", "Wyddgrug", &status));
    assert_int_equal(status, CARA__REPLY__STATUS__OK);
    Cara__Batch *b = harness_fetch(harness_client(h, "triage", "operator", "ops"), "triage",
                                   (uint64_t)newer - 1, 1, &status);
    assert_non_null(b);
    assert_int_equal(b->n_events, 1);
    Cara__Envelope *e = envelope_unpack(b->events[0]->envelope.data, b->events[0]->envelope.len);
    assert_non_null(e);
    assert_string_equal(e->type, "cara.ReferralTriaged");
    assert_string_equal(e->correlation_id, id);
    assert_int_equal(e->schema_version, ENVELOPE_SCHEMA_VERSION + 1);
    assert_int_equal(e->payload.len, 0);
    cara__envelope__free_unpacked(e, NULL);
    cara__batch__free_unpacked(b, NULL);
    // Repaired (here: removed), booking reads on.
    char sql[120];
    snprintf(sql, sizeof sql, "DELETE FROM outbox WHERE seq = %lld", (long long)newer);
    assert_int_equal(db_exec(harness_db(h, "triage"), sql, 0, NULL), 0);
    assert_false(s_served_holds("service", "booking", "Wyddgrug", &status));
    assert_int_equal(status, CARA__REPLY__STATUS__OK);
    cara__referral__free_unpacked(r, NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_case_waits_needs_then_approval_carries_them),
        cmocka_unit_test(test_override_needs_a_reason_and_is_audited),
        cmocka_unit_test(test_staff_return_goes_back_to_the_police),
        cmocka_unit_test(test_routing_by_effective_date_and_victim_consent),
        cmocka_unit_test(test_overdue_lists_cases_past_two_working_days),
        cmocka_unit_test(test_needs_validation_and_roles),
        cmocka_unit_test(test_repeated_requests_change_nothing),
        cmocka_unit_test(test_stream_views),
        cmocka_unit_test(test_victim_details_never_leak_from_the_stream),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
