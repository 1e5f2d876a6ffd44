// intake's outcomes for the police, kept from the triage and booking streams: the apply
// functions run against a real intake database (as the consumer runs them, inside a
// transaction), and the police fetch what they produced. Also the de-identified view that
// national reads: no name, date of birth, contact details or victim; age and keyed pseudonym.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../services/intake/intake_outcome.h"
#include "../../services/intake/intake_view.h"
#include "booking.pb-c.h"
#include "cara/uuid.h"
#include "test_intake_support.h"
#include "triage.pb-c.h"

#define SECRET "test-pseudonym-secret-0123456789"

static harness_t *h;

static int setup(void **state) {
    (void)state;
    h = harness_new("intake_outcomes");
    if (!h)
        return -1;
    harness_config(h, "intake", "pseudonym_secret", "\"" SECRET "\"");
    return harness_start(h, "intake");
}

static int teardown(void **state) {
    (void)state;
    harness_destroy(&h);
    return 0;
}

static void s_submit(const char *force, const char *reference, char id[UUID_STR_LEN]) {
    Cara__Referral *r = ti_referral(force, reference);
    assert_non_null(r);
    Cara__Reply *reply = ti_submit(harness_client(h, "intake", "police", force), r);
    Cara__ReferralAccepted *a = ti_accepted(reply);
    assert_non_null(a);
    snprintf(id, UUID_STR_LEN, "%s", a->referral_id);
    cara__referral_accepted__free_unpacked(a, NULL);
    cara__reply__free_unpacked(reply, NULL);
    cara__referral__free_unpacked(r, NULL);
}

// Applies msg as an event of stream (triage or booking) that occurred at (ISO time, "" = not
// given) in its own transaction, as the consumer would. Returns the apply result; the reason is
// in reason.
static apply_result_t s_apply_at(const char *stream, const ProtobufCMessage *msg, const char *at,
                                 char *reason, size_t size) {
    Cara__Envelope env = CARA__ENVELOPE__INIT;
    char id[UUID_STR_LEN];
    env.event_id = uuid_new(id);
    env.occurred_at = (char *)at;
    env.type = (char *)msg->descriptor->name;
    env.schema_version = 1;
    env.producer = (char *)stream;
    assert_int_equal(envelope_encode_message(msg, &env.payload.data, &env.payload.len), 0);
    db_t *db = harness_db(h, "intake");
    assert_non_null(db);
    assert_int_equal(db_begin(db), 0);
    reason[0] = '\0';
    apply_result_t rc = strcmp(stream, "triage") == 0
                            ? intake_outcome_apply_triage(db, &env, 1, NULL, reason, size)
                            : intake_outcome_apply_booking(db, &env, 1, NULL, reason, size);
    if (rc == APPLY_RETRY)
        db_rollback(db);
    else
        assert_int_equal(db_commit(db), 0);
    free(env.payload.data);
    return rc;
}

static apply_result_t s_apply(const char *stream, const ProtobufCMessage *msg, char *reason,
                              size_t size) {
    return s_apply_at(stream, msg, "", reason, size);
}

// Triage routed referral id of dyfed-powys (the event at at, "" = not given).
static void s_triaged_at(const char *id, const char *at) {
    char reason[200];
    Cara__ReferralTriaged triaged = CARA__REFERRAL_TRIAGED__INIT;
    triaged.referral_id = (char *)id;
    triaged.force = "dyfed-powys";
    assert_int_equal(s_apply_at("triage", &triaged.base, at, reason, sizeof reason), APPLY_OK);
}

// Booking booked referral id in Aberystwyth, Part A 2025-05-01, Part B 2025-05-29.
static void s_booked_at(const char *id, const char *at) {
    char reason[200];
    Cara__SeatBooked booked = CARA__SEAT_BOOKED__INIT;
    booked.referral_id = (char *)id;
    booked.force = "dyfed-powys";
    booked.town = "Aberystwyth";
    booked.part_a_date = "2025-05-01";
    booked.part_b_date = "2025-05-29";
    assert_int_equal(s_apply_at("booking", &booked.base, at, reason, sizeof reason), APPLY_OK);
}

// Triage returned referral id (reason code, at its time at).
static void s_returned_at(const char *id, const char *code, const char *at) {
    char reason[200];
    Cara__ReasonCode rc = CARA__REASON_CODE__INIT;
    rc.code = (char *)code;
    rc.detail = "";
    Cara__ReasonCode *codes[] = {&rc};
    Cara__ReferralReturned returned = CARA__REFERRAL_RETURNED__INIT;
    returned.referral_id = (char *)id;
    returned.force = "dyfed-powys";
    returned.reasons = codes;
    returned.n_reasons = 1;
    returned.returned_at = (char *)at;
    assert_int_equal(s_apply_at("triage", &returned.base, at, reason, sizeof reason), APPLY_OK);
}

static void s_assert_outcome(const char *id, const char *expected) {
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT status || '|' || reason || '|' || coalesce(part_a_date::text, '-') || '|' ||"
             " coalesce(part_b_date::text, '-') || '|' || town FROM outcome"
             " WHERE referral_id = '%s'",
             id);
    char *v = harness_value(h, "intake", sql);
    assert_non_null(v);
    if (strcmp(v, expected) != 0)
        fprintf(stderr, "outcome %s, expected %s\n", v, expected);
    assert_string_equal(v, expected);
    free(v);
}

// The last OutcomeUpdated a force's police system fetches for a referral (NULL if none).
static Cara__Outcome *s_police_view(const char *force, const char *id) {
    int status;
    Cara__Batch *batch =
        harness_fetch(harness_client(h, "intake", "police", force), "intake", 0, 2000, &status);
    assert_non_null(batch);
    Cara__Outcome *last = NULL;
    for (size_t i = 0; i < batch->n_events; i++) {
        Cara__Envelope *env =
            envelope_unpack(batch->events[i]->envelope.data, batch->events[i]->envelope.len);
        assert_non_null(env);
        assert_string_equal(env->type, "cara.OutcomeUpdated");
        Cara__OutcomeUpdated *o =
            (Cara__OutcomeUpdated *)envelope_payload(env, &cara__outcome_updated__descriptor);
        assert_non_null(o);
        if (strcmp(o->outcome->referral_id, id) == 0) {
            if (last)
                cara__outcome__free_unpacked(last, NULL);
            last = o->outcome;
            o->outcome = NULL;
        }
        cara__outcome_updated__free_unpacked(o, NULL);
        cara__envelope__free_unpacked(env, NULL);
    }
    cara__batch__free_unpacked(batch, NULL);
    return last;
}

static void test_triage_then_booking_to_completion(void **state) {
    (void)state;
    char id[UUID_STR_LEN], reason[200];
    s_submit("dyfed-powys", "O-FULL", id);
    Cara__ReferralTriaged triaged = CARA__REFERRAL_TRIAGED__INIT;
    triaged.referral_id = id;
    triaged.force = "dyfed-powys";
    triaged.provider_id = "hampton-wales";
    assert_int_equal(s_apply("triage", &triaged.base, reason, sizeof reason), APPLY_OK);
    s_assert_outcome(id, "triaged||-|-|");

    Cara__SeatBooked booked = CARA__SEAT_BOOKED__INIT;
    booked.referral_id = id;
    booked.force = "dyfed-powys";
    booked.town = "Carmarthen";
    booked.part_a_date = "2025-04-02";
    booked.part_b_date = "2025-04-09";
    assert_int_equal(s_apply("booking", &booked.base, reason, sizeof reason), APPLY_OK);
    s_assert_outcome(id, "booked||2025-04-02|2025-04-09|Carmarthen");
    // A late triage event (the streams are independent) does not move it back.
    assert_int_equal(s_apply("triage", &triaged.base, reason, sizeof reason), APPLY_OK);
    s_assert_outcome(id, "booked||2025-04-02|2025-04-09|Carmarthen");

    Cara__AttendanceRecorded att = CARA__ATTENDANCE_RECORDED__INIT;
    att.referral_id = id;
    att.force = "dyfed-powys";
    att.part = "A";
    att.status = "attended";
    assert_int_equal(s_apply("booking", &att.base, reason, sizeof reason), APPLY_OK);
    s_assert_outcome(id, "attended_part_a||2025-04-02|2025-04-09|Carmarthen");
    att.part = "B";
    assert_int_equal(s_apply("booking", &att.base, reason, sizeof reason), APPLY_OK);
    s_assert_outcome(id, "attended_part_b||2025-04-02|2025-04-09|Carmarthen");
    // A correction: part B was not attended after all.
    att.status = "absent";
    att.correction = 1;
    assert_int_equal(s_apply("booking", &att.base, reason, sizeof reason), APPLY_OK);
    s_assert_outcome(id, "attended_part_a||2025-04-02|2025-04-09|Carmarthen");
    att.status = "attended";
    assert_int_equal(s_apply("booking", &att.base, reason, sizeof reason), APPLY_OK);

    Cara__CaseCompleted done = CARA__CASE_COMPLETED__INIT;
    done.referral_id = id;
    done.force = "dyfed-powys";
    assert_int_equal(s_apply("booking", &done.base, reason, sizeof reason), APPLY_OK);
    s_assert_outcome(id, "completed||2025-04-02|2025-04-09|Carmarthen");

    // What the police system fetches: the final status, dates and town.
    Cara__Outcome *o = s_police_view("dyfed-powys", id);
    assert_non_null(o);
    assert_string_equal(o->status, "completed");
    assert_string_equal(o->town, "Carmarthen");
    assert_string_equal(o->part_a_date, "2025-04-02");
    assert_string_equal(o->caution_reference, "O-FULL");
    cara__outcome__free_unpacked(o, NULL);
    // Each change was audited, by the service that caused it.
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM audit WHERE entity_id = '%s' AND action = 'outcome_updated'"
             " AND actor = 'service:booking'",
             id);
    char *v = harness_value(h, "intake", sql);
    assert_string_equal(v, "6");
    free(v);
    // Another force sees none of it.
    s_submit("gwent", "O-OTHER", sql);
    assert_null(s_police_view("gwent", id));
}

static void test_returned_cancelled_non_compliant(void **state) {
    (void)state;
    char id[UUID_STR_LEN], reason[200];
    s_submit("dyfed-powys", "O-RETURN", id);
    Cara__ReasonCode code = CARA__REASON_CODE__INIT;
    code.code = "dash_high";
    code.detail = "DASH high risk: not eligible";
    Cara__ReasonCode *codes[] = {&code};
    Cara__ReferralReturned returned = CARA__REFERRAL_RETURNED__INIT;
    returned.referral_id = id;
    returned.force = "dyfed-powys";
    returned.reasons = codes;
    returned.n_reasons = 1;
    assert_int_equal(s_apply("triage", &returned.base, reason, sizeof reason), APPLY_OK);
    s_assert_outcome(id, "returned|dash_high: DASH high risk: not eligible|-|-|");

    // After an amendment triage accepts it; a booking is made and cancelled.
    s_triaged_at(id, "");
    s_booked_at(id, "");
    Cara__BookingCancelled cancelled = CARA__BOOKING_CANCELLED__INIT;
    cancelled.referral_id = id;
    cancelled.force = "dyfed-powys";
    cancelled.reason = "cohort_cancelled";
    assert_int_equal(s_apply("booking", &cancelled.base, reason, sizeof reason), APPLY_OK);
    s_assert_outcome(id, "triaged|booking cancelled: cohort_cancelled|-|-|");

    Cara__CaseNonCompliant nc = CARA__CASE_NON_COMPLIANT__INIT;
    nc.referral_id = id;
    nc.force = "dyfed-powys";
    nc.reason = "not_contactable";
    assert_int_equal(s_apply("booking", &nc.base, reason, sizeof reason), APPLY_OK);
    s_assert_outcome(id, "non_compliant|not_contactable|-|-|");

    // Triage withdraws the case; a repeat of that event changes nothing more.
    Cara__TriageCaseWithdrawn tw = CARA__TRIAGE_CASE_WITHDRAWN__INIT;
    tw.referral_id = id;
    tw.force = "dyfed-powys";
    tw.reason_code = "withdrawn";
    assert_int_equal(s_apply("triage", &tw.base, reason, sizeof reason), APPLY_OK);
    s_assert_outcome(id, "withdrawn|withdrawn|-|-|");
    assert_int_equal(s_apply("triage", &tw.base, reason, sizeof reason), APPLY_OK);
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM outbox WHERE key = '%s' AND type = 'cara.OutcomeUpdated'", id);
    char *v = harness_value(h, "intake", sql);
    // received, returned, triaged, booked, cancelled, non_compliant, withdrawn.
    assert_string_equal(v, "7");
    free(v);
}

// Triage returns a booked case (an amendment made it ineligible) and booking cancels its seat:
// the police see it returned whichever of the two streams intake reads first.
static void test_a_return_after_booking_in_either_order(void **state) {
    (void)state;
    char reason[200];
    for (int triage_first = 0; triage_first <= 1; triage_first++) {
        char id[UUID_STR_LEN];
        s_submit("dyfed-powys", triage_first ? "O-RB-1" : "O-RB-2", id);
        s_triaged_at(id, "");
        s_booked_at(id, "");
        Cara__BookingCancelled cancelled = CARA__BOOKING_CANCELLED__INIT;
        cancelled.referral_id = id;
        cancelled.force = "dyfed-powys";
        cancelled.reason = "returned";
        if (triage_first)
            s_returned_at(id, "dash_high", "");
        assert_int_equal(s_apply("booking", &cancelled.base, reason, sizeof reason), APPLY_OK);
        if (!triage_first)
            s_returned_at(id, "dash_high", "");
        s_assert_outcome(id, "returned|dash_high|-|-|");
    }
    // Intake reads triage's return before booking's events from before it (the seat booked
    // for the booking the return ended): they change nothing. Routed and booked again after,
    // the case is booked.
    char id[UUID_STR_LEN];
    s_submit("dyfed-powys", "O-RB-3", id);
    s_triaged_at(id, "2025-04-01T09:00:00Z");
    s_returned_at(id, "under_18", "2025-04-10T09:00:00Z");
    s_booked_at(id, "2025-04-05T09:00:00Z");
    s_assert_outcome(id, "returned|under_18|-|-|");
    s_triaged_at(id, "2025-04-12T09:00:00Z");
    s_booked_at(id, "2025-04-13T09:00:00Z");
    s_assert_outcome(id, "booked||2025-05-01|2025-05-29|Aberystwyth");
}

// A long reason is cut to fit the police's outcome, never inside a character: a cut splitting
// "\u2019" used to make the stored text invalid UTF-8, and the event was retried for ever, holding
// back every force's outcomes behind it.
static void test_long_reasons_are_cut_on_a_character(void **state) {
    (void)state;
    char id[UUID_STR_LEN], reason[200];
    s_submit("gwent", "O-LONG-REASON", id);
    char text[1200];
    memset(text, 'a', 499);
    snprintf(text + 499, sizeof text - 499, "\u2019s partner moved away"); // bytes 499..501
    Cara__TriageCaseWithdrawn tw = CARA__TRIAGE_CASE_WITHDRAWN__INIT;
    tw.referral_id = id;
    tw.force = "gwent";
    tw.reason_code = "withdrawn";
    tw.reason = text;
    assert_int_equal(s_apply("triage", &tw.base, reason, sizeof reason), APPLY_OK);
    char expected[600];
    snprintf(expected, sizeof expected, "withdrawn|withdrawn: %.499s|-|-|", text);
    s_assert_outcome(id, expected);

    // A return whose reasons run past the outcome's 1,023 bytes, all three-byte characters.
    s_submit("gwent", "O-LONG-RETURN", id);
    size_t used = 0;
    while (used + 3 < sizeof text) {
        memcpy(text + used, "\u2019", 3);
        used += 3;
    }
    text[used] = '\0';
    Cara__ReasonCode code = CARA__REASON_CODE__INIT;
    code.code = "other";
    code.detail = text;
    Cara__ReasonCode *codes[] = {&code};
    Cara__ReferralReturned returned = CARA__REFERRAL_RETURNED__INIT;
    returned.referral_id = id;
    returned.force = "gwent";
    returned.reasons = codes;
    returned.n_reasons = 1;
    assert_int_equal(s_apply("triage", &returned.base, reason, sizeof reason), APPLY_OK);
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT status || '|' || octet_length(reason) FROM outcome WHERE referral_id = '%s'",
             id);
    char *v = harness_value(h, "intake", sql);
    assert_non_null(v);
    // "other: " (7 bytes) and 338 whole characters fit in 1,023 bytes.
    assert_string_equal(v, "returned|1021");
    free(v);
}

static void test_events_that_cannot_apply_are_poison(void **state) {
    (void)state;
    char id[UUID_STR_LEN], reason[200], unknown[UUID_STR_LEN];
    s_submit("dyfed-powys", "O-POISON", id);
    Cara__ReferralTriaged triaged = CARA__REFERRAL_TRIAGED__INIT;
    triaged.referral_id = uuid_new(unknown);
    triaged.force = "dyfed-powys";
    assert_int_equal(s_apply("triage", &triaged.base, reason, sizeof reason), APPLY_POISON);
    assert_non_null(strstr(reason, "unknown referral"));
    triaged.referral_id = "not-a-uuid";
    assert_int_equal(s_apply("triage", &triaged.base, reason, sizeof reason), APPLY_POISON);
    // An event naming the wrong force for the referral.
    triaged.referral_id = id;
    triaged.force = "gwent";
    assert_int_equal(s_apply("triage", &triaged.base, reason, sizeof reason), APPLY_POISON);
    assert_non_null(strstr(reason, "another force"));
    s_assert_outcome(id, "received||-|-|");
    // Undecodable payload of a known type.
    Cara__Envelope env = CARA__ENVELOPE__INIT;
    env.event_id = uuid_new(unknown);
    env.type = "cara.SeatBooked";
    env.schema_version = 1;
    uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f};
    env.payload.data = junk;
    env.payload.len = sizeof junk;
    assert_int_equal(
        intake_outcome_apply_booking(harness_db(h, "intake"), &env, 1, NULL, reason, sizeof reason),
        APPLY_POISON);
    // Types the police do not see are ignored.
    Cara__CohortCreated cohort = CARA__COHORT_CREATED__INIT;
    cohort.cohort_id = "c1";
    assert_int_equal(s_apply("booking", &cohort.base, reason, sizeof reason), APPLY_OK);
}

static void test_national_view_is_de_identified(void **state) {
    (void)state;
    char id[UUID_STR_LEN];
    s_submit("dyfed-powys", "O-NATIONAL", id);
    int status;
    Cara__Batch *batch = harness_fetch(harness_client(h, "intake", "service", "national"), "intake",
                                       0, 2000, &status);
    assert_non_null(batch);
    char expected[65];
    assert_int_equal(
        intake_pseudonym(SECRET, "  GARETH llewellyn   Pryce ", "1988-07-02", expected), 0);
    int seen = 0;
    for (size_t i = 0; i < batch->n_events; i++) {
        Cara__Envelope *env =
            envelope_unpack(batch->events[i]->envelope.data, batch->events[i]->envelope.len);
        assert_non_null(env);
        // Nothing in any event the national service receives names anyone.
        assert_null(memmem(env->payload.data, env->payload.len, "Pryce", 5));
        assert_null(memmem(env->payload.data, env->payload.len, "1988-07-02", 10));
        assert_null(memmem(env->payload.data, env->payload.len, "07700", 5));
        assert_null(memmem(env->payload.data, env->payload.len, "Heol y Felin", 12));
        if (strcmp(env->type, "cara.ReferralSubmitted") == 0) {
            Cara__ReferralSubmitted *m = (Cara__ReferralSubmitted *)envelope_payload(
                env, &cara__referral_submitted__descriptor);
            assert_non_null(m);
            if (strcmp(m->referral_id, id) == 0) {
                seen = 1;
                Cara__Offender *o = m->referral->offender;
                assert_string_equal(o->name, "");
                assert_string_equal(o->date_of_birth, "");
                assert_string_equal(o->address, "");
                assert_int_equal(o->age_at_caution, 36);
                assert_string_equal(o->pseudonym, expected);
                assert_string_equal(o->sex, "male");
                assert_string_equal(o->ethnicity, "white_british");
                assert_null(m->referral->victim);
                assert_string_equal(m->referral->force, "dyfed-powys");
                assert_string_equal(m->referral->caution->compliance_deadline, "2025-07-04");
            }
            cara__referral_submitted__free_unpacked(m, NULL);
        }
        cara__envelope__free_unpacked(env, NULL);
    }
    assert_true(seen);
    cara__batch__free_unpacked(batch, NULL);
    // A different secret gives a different pseudonym; no secret, none at all.
    char other[65];
    assert_int_equal(intake_pseudonym("another-secret-0123456789", "Gareth Llewellyn Pryce",
                                      "1988-07-02", other),
                     0);
    assert_string_not_equal(other, expected);
    assert_int_equal(intake_pseudonym("", "Gareth", "1988-07-02", other), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_triage_then_booking_to_completion),
        cmocka_unit_test(test_returned_cancelled_non_compliant),
        cmocka_unit_test(test_long_reasons_are_cut_on_a_character),
        cmocka_unit_test(test_a_return_after_booking_in_either_order),
        cmocka_unit_test(test_events_that_cannot_apply_are_poison),
        cmocka_unit_test(test_national_view_is_de_identified),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
