// booking through the real chain police -> intake -> triage -> booking (-> intake outcomes):
// the whole life of a case, rebooking after a miss, non-compliance when no time is left, late
// refused entry, the telephone pathway, 50 concurrent bookings into a 12-seat cohort, cohort
// cancellation, withdrawal, and provider isolation on the booking stream.
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "booking.pb-c.h"
#include "cara/timeutil.h"
#include "test_intake_support.h"

static harness_t *h;
static int32_t today;
static int s_ref = 0;

static int setup(void **state) {
    (void)state;
    h = harness_new("booking_flow");
    if (!h)
        return -1;
    today = (int32_t)(time_now_us() / 1000000 / 86400);
    ti_route(h, 1);
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

static void s_date(int offset, char *buf) {
    time_format_date(today + offset, buf, 16);
}

// A referral of Dyfed-Powys through to an open provider case, with caution reference
// BF-<pid>-tag written into ref (at least 32 bytes), for amending it later. Caller frees.
static char *s_named_case(const char *tag, char *ref) {
    snprintf(ref, 32, "BF-%d-%s", getpid(), tag);
    char *id = ti_open_case(h, "dyfed-powys", ref, "", 0);
    assert_non_null(id);
    return id;
}

// A referral through to an open provider case; deadline_days 0 = the default 16 weeks.
static char *s_case(const char *force, int deadline_days, int interpreter) {
    char ref[32], deadline[16] = "";
    snprintf(ref, sizeof ref, "BF-%d-%d", getpid(), ++s_ref);
    if (deadline_days)
        s_date(deadline_days, deadline);
    char *id = ti_open_case(h, force, ref, deadline, interpreter);
    assert_non_null(id);
    return id;
}

static client_t *s_p1(void) {
    return harness_client(h, "booking", "provider", "p1");
}

static char *s_cohort(const char *provider, const char *type, int a, int b, unsigned capacity) {
    Cara__CreateCohort cmd = CARA__CREATE_COHORT__INIT;
    char da[16], db_[16];
    s_date(a, da);
    s_date(b, db_);
    cmd.cohort_type = (char *)type;
    cmd.town = "Carmarthen";
    cmd.capacity = capacity;
    cmd.part_a_date = da;
    cmd.part_b_date = db_;
    Cara__Reply *reply =
        harness_call(harness_client(h, "booking", "provider", provider), &cmd.base);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    Cara__CohortRef *ref = cara__cohort_ref__unpack(NULL, reply->payload.len, reply->payload.data);
    char *id = strdup(ref->cohort_id);
    cara__cohort_ref__free_unpacked(ref, NULL);
    cara__reply__free_unpacked(reply, NULL);
    return id;
}

// Books (auto when cohort is NULL). Returns the cohort booked into, or NULL if refused.
static char *s_book(client_t *c, const char *referral_id, const char *cohort) {
    Cara__BookSeat cmd = CARA__BOOK_SEAT__INIT;
    cmd.referral_id = (char *)referral_id;
    cmd.cohort_id = (char *)(cohort ? cohort : "");
    Cara__Reply *reply = harness_call(c, &cmd.base);
    char *out = NULL;
    if (reply && reply->status == CARA__REPLY__STATUS__OK) {
        Cara__SeatResult *res =
            cara__seat_result__unpack(NULL, reply->payload.len, reply->payload.data);
        out = strdup(res->cohort_id);
        cara__seat_result__free_unpacked(res, NULL);
    }
    if (reply)
        cara__reply__free_unpacked(reply, NULL);
    return out;
}

// Time passes: moves a cohort (both dates, keeping the gap) so that the part is held today.
static void s_held(const char *cohort, const char *part) {
    const char *values[] = {cohort};
    int rc = db_exec(harness_db(h, "booking"),
                     strcmp(part, "A") == 0
                         ? "UPDATE cohort SET part_b_date = part_b_date - (part_a_date -"
                           " current_date), part_a_date = current_date WHERE cohort_id = $1"
                           " AND part_a_date > current_date"
                         : "UPDATE cohort SET part_a_date = part_a_date - (part_b_date -"
                           " current_date), part_b_date = current_date WHERE cohort_id = $1"
                           " AND part_b_date > current_date",
                     1, values);
    assert_int_equal(rc, 0);
}

static void s_attend(const char *cohort, const char *part, const char *referral_id,
                     const char *status) {
    s_held(cohort, part);
    Cara__AttendanceEntry e = CARA__ATTENDANCE_ENTRY__INIT;
    e.referral_id = (char *)referral_id;
    e.status = (char *)status;
    Cara__AttendanceEntry *entries[] = {&e};
    Cara__RecordAttendance cmd = CARA__RECORD_ATTENDANCE__INIT;
    cmd.cohort_id = (char *)cohort;
    cmd.part = (char *)part;
    cmd.entries = entries;
    cmd.n_entries = 1;
    Cara__Reply *reply = harness_call(s_p1(), &cmd.base);
    if (reply->status != CARA__REPLY__STATUS__OK)
        ti_print_errors(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    cara__reply__free_unpacked(reply, NULL);
}

static void s_expect(const char *referral_id, const char *booking_status, const char *police) {
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT status || '/' || coalesce(close_reason, '-') FROM provider_case"
             " WHERE referral_id = '%s'",
             referral_id);
    assert_int_equal(harness_wait_value(h, "booking", sql, booking_status, 10000), 0);
    snprintf(sql, sizeof sql, "SELECT status FROM outcome WHERE referral_id = '%s'", referral_id);
    assert_int_equal(harness_wait_value(h, "intake", sql, police, 15000), 0);
}

static void test_contact_book_attend_both_completed(void **state) {
    (void)state;
    char *id = s_case("dyfed-powys", 0, 0);
    Cara__RecordContact contact = CARA__RECORD_CONTACT__INIT;
    contact.referral_id = id;
    contact.channel = "phone";
    contact.outcome = "contacted";
    Cara__Reply *reply = harness_call(s_p1(), &contact.base);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    cara__reply__free_unpacked(reply, NULL);
    char *c1 = s_cohort("p1", "male_intimate", 7, 35, 12);
    char *later = s_cohort("p1", "male_intimate", 14, 42, 12);
    char *got = s_book(s_p1(), id, NULL);
    assert_string_equal(got, c1); // the earliest that fits
    s_expect(id, "booked/-", "booked");
    s_attend(c1, "A", id, "attended");
    s_attend(c1, "B", id, "attended");
    s_expect(id, "completed/completed", "completed");
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM outbox WHERE type = 'cara.CohortDelivered' AND key = '%s'", c1);
    char *n = harness_value(h, "booking", sql);
    assert_string_equal(n, "1");
    free(n);
    free(got);
    free(c1);
    free(later);
    free(id);
}

static void test_miss_part_b_rebooks_both_then_completes(void **state) {
    (void)state;
    char *id = s_case("dyfed-powys", 0, 0);
    char *c1 = s_cohort("p1", "male_intimate", 8, 36, 12);
    char *c2 = s_cohort("p1", "male_intimate", 15, 43, 12);
    char *got = s_book(s_p1(), id, c1);
    assert_string_equal(got, c1);
    s_attend(c1, "A", id, "attended");
    s_attend(c1, "B", id, "absent");
    // Rebooked into a later cohort, both parts again.
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT cohort_id FROM booking JOIN provider_case USING (case_id)"
             " WHERE referral_id = '%s' AND booking.status = 'booked'",
             id);
    // The earliest cohort that starts after the missed one and ends before the deadline
    // (earlier tests left such cohorts too): never the missed one, never one starting earlier.
    char *now_in = harness_value(h, "booking", sql);
    assert_non_null(now_in);
    assert_string_not_equal(now_in, c1);
    char check[400];
    snprintf(check, sizeof check,
             "SELECT (SELECT part_a_date FROM cohort WHERE cohort_id = '%s') >"
             " (SELECT part_a_date FROM cohort WHERE cohort_id = '%s')",
             now_in, c1);
    char *later = harness_value(h, "booking", check);
    assert_string_equal(later, "t");
    free(later);
    s_attend(now_in, "A", id, "attended");
    s_attend(now_in, "B", id, "attended");
    free(now_in);
    s_expect(id, "completed/completed", "completed");
    free(got);
    free(c1);
    free(c2);
    free(id);
}

static void test_miss_with_no_time_left_is_non_compliant(void **state) {
    (void)state;
    char *id = s_case("dyfed-powys", 40, 0); // deadline in 40 days
    char *c1 = s_cohort("p1", "male_intimate", 9, 37, 12);
    char *c2 = s_cohort("p1", "male_intimate", 16, 44, 12); // ends after the deadline
    char *got = s_book(s_p1(), id, NULL);
    assert_string_equal(got, c1);
    s_attend(c1, "A", id, "absent");
    s_expect(id, "non_compliant/did_not_attend", "non_compliant");
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT reason FROM outcome WHERE referral_id = '%s'", id);
    char *reason = harness_value(h, "intake", sql);
    assert_non_null(strstr(reason, "did_not_attend"));
    free(reason);
    free(got);
    free(c1);
    free(c2);
    free(id);
}

static void test_late_is_refused_entry(void **state) {
    (void)state;
    char *id = s_case("dyfed-powys", 39, 0);
    char *c1 = s_cohort("p1", "male_intimate", 10, 38, 12);
    char *got = s_book(s_p1(), id, c1);
    assert_non_null(got);
    s_attend(c1, "A", id, "late_refused_entry");
    s_expect(id, "non_compliant/late_refused_entry", "non_compliant");
    free(got);
    free(c1);
    free(id);
}

static void test_telephone_pathway(void **state) {
    (void)state;
    char *id = s_case("dyfed-powys", 0, 1); // interpreter needed: 1:1 telephone
    char *group = s_cohort("p1", "male_intimate", 6, 34, 12);
    char *tel = s_cohort("p1", "telephone", 5, 33, 1);
    char *got = s_book(s_p1(), id, NULL);
    assert_string_equal(got, tel); // never a group for a telephone case
    s_attend(tel, "A", id, "attended");
    s_attend(tel, "B", id, "attended");
    s_expect(id, "completed/completed", "completed");
    free(got);
    free(group);
    free(tel);
    free(id);
}

typedef struct {
    const char *referral_id;
    const char *cohort;
    int ok;
} booker_t;

static void *s_booker(void *arg) {
    booker_t *b = arg;
    client_t *c = client_new(harness_ctx(h), harness_endpoint(h, "booking"),
                             harness_identity_keys(h, "provider", "p1"),
                             harness_service_public(h, "booking"));
    char *got = c ? s_book(c, b->referral_id, b->cohort) : NULL;
    b->ok = got != NULL;
    free(got);
    client_destroy(&c);
    return NULL;
}

static void test_fifty_concurrent_bookings_into_twelve_seats(void **state) {
    (void)state;
    enum { N = 50 };
    char *ids[N];
    for (int i = 0; i < N; i++)
        ids[i] = s_case("dyfed-powys", 0, 0);
    char *cohort = s_cohort("p1", "male_intimate", 20, 48, 12);
    booker_t bookers[N];
    pthread_t threads[N];
    for (int i = 0; i < N; i++) {
        bookers[i] = (booker_t){ids[i], cohort, 0};
        pthread_create(&threads[i], NULL, s_booker, &bookers[i]);
    }
    int ok = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(threads[i], NULL);
        ok += bookers[i].ok;
    }
    printf("# %d concurrent bookings into a 12-seat cohort: %d succeeded\n", N, ok);
    assert_int_equal(ok, 12);
    char sql[400];
    snprintf(sql, sizeof sql,
             "SELECT seats_taken || '/' || (SELECT count(*) FROM booking WHERE cohort_id = '%s'"
             " AND status = 'booked') FROM cohort WHERE cohort_id = '%s'",
             cohort, cohort);
    char *seats = harness_value(h, "booking", sql);
    assert_string_equal(seats, "12/12");
    free(seats);
    // Cancelling the cohort releases everyone: seats free, cases open, police told.
    Cara__CancelCohort cancel = CARA__CANCEL_COHORT__INIT;
    cancel.cohort_id = cohort;
    cancel.reason = "venue flooded";
    Cara__Reply *reply = harness_call(s_p1(), &cancel.base);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    cara__reply__free_unpacked(reply, NULL);
    seats = harness_value(h, "booking", sql);
    assert_string_equal(seats, "0/0");
    free(seats);
    char *cancelled = harness_value(h, "booking",
                                    "SELECT count(*) FROM outbox WHERE type ="
                                    " 'cara.BookingCancelled' AND payload IS NOT NULL"
                                    " AND key IN (SELECT referral_id::text FROM provider_case"
                                    " WHERE status = 'open')");
    assert_true(atoi(cancelled) >= 12);
    free(cancelled);
    for (int i = 0; i < N; i++)
        free(ids[i]);
    free(cohort);
}

// The provider corrects part of cohort's register for referral id to status, with reason.
// Returns the reply's status.
static Cara__Reply__Status s_correct(const char *cohort, const char *part, const char *id,
                                     const char *status, const char *reason) {
    Cara__AttendanceEntry e = CARA__ATTENDANCE_ENTRY__INIT;
    e.referral_id = (char *)id;
    e.status = (char *)status;
    Cara__AttendanceEntry *entries[] = {&e};
    Cara__RecordAttendance cmd = CARA__RECORD_ATTENDANCE__INIT;
    cmd.cohort_id = (char *)cohort;
    cmd.part = (char *)part;
    cmd.entries = entries;
    cmd.n_entries = 1;
    cmd.correction_reason = (char *)reason;
    Cara__Reply *reply = harness_call(s_p1(), &cmd.base);
    assert_non_null(reply);
    Cara__Reply__Status got = reply->status;
    cara__reply__free_unpacked(reply, NULL);
    return got;
}

// What provider p1's system reads on the booking stream about referral id: the event types in
// order, comma-separated; the last CaseWithdrawn's reason (or "-"); and, if update is not NULL,
// the last CaseUpdated as "pathway deadline first_contact_due victim_contact" (or "-").
static void s_provider_view(const char *id, char *types, size_t size, char *withdrawn, char *update,
                            size_t update_size) {
    int status;
    size_t used = 0;
    types[0] = '\0';
    strcpy(withdrawn, "-");
    if (update)
        snprintf(update, update_size, "-");
    Cara__Batch *b = harness_fetch(s_p1(), "booking", 0, 5000, &status);
    assert_non_null(b);
    for (size_t i = 0; i < b->n_events; i++) {
        Cara__Envelope *e =
            envelope_unpack(b->events[i]->envelope.data, b->events[i]->envelope.len);
        assert_non_null(e);
        if (strcmp(e->correlation_id, id) == 0) {
            used += (size_t)snprintf(types + used, size - used, "%s%s", used ? "," : "", e->type);
            assert_true(used < size);
        }
        if (strcmp(e->correlation_id, id) == 0 && strcmp(e->type, "cara.CaseWithdrawn") == 0) {
            Cara__CaseWithdrawn *w =
                (Cara__CaseWithdrawn *)envelope_payload(e, &cara__case_withdrawn__descriptor);
            assert_non_null(w);
            assert_string_equal(w->provider_id, "p1");
            snprintf(withdrawn, 16, "%s", w->reason);
            cara__case_withdrawn__free_unpacked(w, NULL);
        }
        if (update && strcmp(e->correlation_id, id) == 0 &&
            strcmp(e->type, "cara.CaseUpdated") == 0) {
            Cara__CaseUpdated *u =
                (Cara__CaseUpdated *)envelope_payload(e, &cara__case_updated__descriptor);
            assert_non_null(u);
            snprintf(update, update_size, "%s %s %s %s", u->pathway, u->compliance_deadline,
                     u->first_contact_due, u->victim_contact ? "yes" : "no");
            cara__case_updated__free_unpacked(u, NULL);
        }
        cara__envelope__free_unpacked(e, NULL);
    }
    cara__batch__free_unpacked(b, NULL);
}

static void s_provider_events(const char *id, char *types, size_t size, char *withdrawn) {
    s_provider_view(id, types, size, withdrawn, NULL, 0);
}

static void s_withdraw(const char *id) {
    Cara__WithdrawReferral w = CARA__WITHDRAW_REFERRAL__INIT;
    w.referral_id = (char *)id;
    w.reason_code = "caution_rescinded";
    w.reason = "rescinded";
    Cara__Reply *reply =
        harness_call(harness_client(h, "intake", "police", "dyfed-powys"), &w.base);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    cara__reply__free_unpacked(reply, NULL);
}

// The police withdraw a booked referral: the seat is freed and the provider's system reads that
// the booking is cancelled and the case closed, so it stops contacting the offender. A case
// still waiting for a booking is closed the same way.
static void test_withdrawal_cancels_booking_and_frees_seat(void **state) {
    (void)state;
    char *id = s_case("dyfed-powys", 0, 0);
    char *waiting = s_case("dyfed-powys", 0, 0);
    char *c1 = s_cohort("p1", "male_intimate", 21, 49, 3);
    char *got = s_book(s_p1(), id, c1);
    assert_non_null(got);
    s_withdraw(id);
    s_withdraw(waiting);
    s_expect(id, "withdrawn/withdrawn", "withdrawn");
    s_expect(waiting, "withdrawn/withdrawn", "withdrawn");
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT seats_taken FROM cohort WHERE cohort_id = '%s'", c1);
    char *seats = harness_value(h, "booking", sql);
    assert_string_equal(seats, "0");
    free(seats);
    char types[600], why[16];
    s_provider_events(id, types, sizeof types, why);
    assert_string_equal(types, "cara.CaseOpened,cara.SeatBooked,cara.BookingCancelled,"
                               "cara.CaseWithdrawn");
    assert_string_equal(why, "withdrawn");
    s_provider_events(waiting, types, sizeof types, why);
    assert_string_equal(types, "cara.CaseOpened,cara.CaseWithdrawn");
    assert_string_equal(why, "withdrawn");
    free(got);
    free(c1);
    free(waiting);
    free(id);
}

// A caution withdrawn after the offender completed CARA: the police see the withdrawal; the
// provider's case keeps how it ended (completed), and its system is told nothing new.
static void test_withdrawal_after_completion_keeps_the_provider_record(void **state) {
    (void)state;
    char *id = s_case("dyfed-powys", 0, 0);
    char *c1 = s_cohort("p1", "male_intimate", 9, 37, 12);
    char *got = s_book(s_p1(), id, c1);
    assert_string_equal(got, c1);
    s_attend(c1, "A", id, "attended");
    s_attend(c1, "B", id, "attended");
    s_expect(id, "completed/completed", "completed");
    s_withdraw(id);
    s_expect(id, "completed/completed", "withdrawn");
    assert_int_equal(harness_wait_caught_up(h, "booking", "triage", 10000), 0);
    s_expect(id, "completed/completed", "withdrawn");
    char types[600], why[16];
    s_provider_events(id, types, sizeof types, why);
    assert_null(strstr(types, "cara.CaseWithdrawn"));
    assert_string_equal(why, "-");
    free(got);
    free(c1);
    free(id);
}

// The police amend referral id (reference ref) as tweak says, keeping the rest as submitted.
static void s_amend(const char *id, const char *ref, void (*tweak)(Cara__Referral *)) {
    char when[40];
    Cara__Referral *r = ti_referral("dyfed-powys", ref);
    assert_non_null(r);
    ti_set(&r->caution->given_at,
           time_format_iso(time_now_us() - 2LL * 86400 * 1000000, when, sizeof when));
    tweak(r);
    Cara__AmendReferral cmd = CARA__AMEND_REFERRAL__INIT;
    cmd.referral_id = (char *)id;
    cmd.reason = "details corrected";
    cmd.referral = r;
    Cara__Reply *reply =
        harness_call(harness_client(h, "intake", "police", "dyfed-powys"), &cmd.base);
    assert_non_null(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    cara__reply__free_unpacked(reply, NULL);
    cara__referral__free_unpacked(r, NULL);
}

static void s_female(Cara__Referral *r) {
    ti_set(&r->offender->sex, "female");
}
static void s_female_no_consent(Cara__Referral *r) {
    s_female(r);
    r->victim->consents_to_contact = 0;
}
static void s_female_high(Cara__Referral *r) {
    s_female_no_consent(r);
    ti_set(&r->risk->dash_level, "high");
}

// The provider's victim contact worker records an offer for referral id (the reply's status),
// then lists the case's victim contact: 1 if the victim's details came with it.
static int s_victim_worker(const char *id, Cara__Reply__Status *recorded) {
    client_t *worker = harness_client(h, "booking", "victim_contact", "p1");
    Cara__RecordVictimContact rec = CARA__RECORD_VICTIM_CONTACT__INIT;
    rec.referral_id = (char *)id;
    rec.kind = "offer";
    Cara__Reply *reply = harness_call(worker, &rec.base);
    assert_non_null(reply);
    *recorded = reply->status;
    cara__reply__free_unpacked(reply, NULL);
    Cara__ListVictimContacts list = CARA__LIST_VICTIM_CONTACTS__INIT;
    list.referral_id = (char *)id;
    reply = harness_call(worker, &list.base);
    assert_non_null(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    Cara__VictimContactList *got =
        cara__victim_contact_list__unpack(NULL, reply->payload.len, reply->payload.data);
    assert_non_null(got);
    int details = got->victim != NULL;
    cara__victim_contact_list__free_unpacked(got, NULL);
    cara__reply__free_unpacked(reply, NULL);
    return details;
}

static void s_booking_value(const char *fmt, const char *id, const char *expect) {
    char sql[300];
    snprintf(sql, sizeof sql, fmt, id);
    assert_int_equal(harness_wait_value(h, "booking", sql, expect, 15000), 0);
}

// The police correct a routed, booked case: the offender is a woman (she moves from the men's
// group to a women's one), then the victim withdraws consent (no more victim contact), then the
// DASH level is high (the case goes back to the police and the provider stops; the seat is
// freed), then it is corrected again (routed again: the provider's case opens again).
static void test_amendments_move_or_stop_a_routed_case(void **state) {
    (void)state;
    char ref[32];
    char *id = s_named_case("AM", ref);
    char *men = s_cohort("p1", "male_intimate", 21, 49, 4);
    char *women = s_cohort("p1", "female_intimate", 22, 50, 4);
    char *got = s_book(s_p1(), id, men);
    assert_non_null(got);
    s_booking_value("SELECT victim_contact::text FROM provider_case WHERE referral_id = '%s'", id,
                    "true");
    Cara__Reply__Status recorded;
    assert_int_equal(s_victim_worker(id, &recorded), 1);
    assert_int_equal(recorded, CARA__REPLY__STATUS__OK);
    s_amend(id, ref, s_female);
    s_booking_value("SELECT pathway || '/' || status FROM provider_case WHERE referral_id = '%s'",
                    id, "female_intimate/booked");
    // The provider's system reads the new pathway before the move it causes.
    char types[800], why[16], update[80];
    s_provider_view(id, types, sizeof types, why, update, sizeof update);
    assert_non_null(strstr(types, "cara.CaseUpdated,cara.BookingCancelled,cara.SeatBooked"));
    assert_non_null(strstr(update, "female_intimate "));
    assert_non_null(strstr(update, " yes"));
    s_booking_value("SELECT string_agg(c.cohort_type || ':' || b.status, ',' ORDER BY b.status)"
                    " FROM booking b JOIN cohort c USING (cohort_id) JOIN provider_case p"
                    " USING (case_id) WHERE p.referral_id = '%s'",
                    id, "female_intimate:booked,male_intimate:cancelled");
    s_booking_value("SELECT seats_taken FROM cohort WHERE cohort_id = '%s'", men, "0");
    s_amend(id, ref, s_female_no_consent);
    s_booking_value("SELECT victim_contact::text FROM provider_case WHERE referral_id = '%s'", id,
                    "false");
    s_provider_view(id, types, sizeof types, why, update, sizeof update);
    assert_non_null(strstr(update, "female_intimate "));
    assert_non_null(strstr(update, " no"));
    // No more contact, and the victim's details are no longer shown; the record stays.
    assert_int_equal(s_victim_worker(id, &recorded), 0);
    assert_int_equal(recorded, CARA__REPLY__STATUS__CONFLICT);
    s_amend(id, ref, s_female_high);
    s_expect(id, "withdrawn/returned", "returned");
    s_booking_value("SELECT seats_taken FROM cohort WHERE cohort_id = '%s'", women, "0");
    s_provider_events(id, types, sizeof types, why);
    assert_string_equal(why, "returned");
    s_amend(id, ref, s_female_no_consent);
    s_expect(id, "open/-", "triaged");
    s_booking_value("SELECT pathway || '/' || victim_contact FROM provider_case"
                    " WHERE referral_id = '%s'",
                    id, "female_intimate/false");
    free(got);
    free(men);
    free(women);
    free(id);
}

// The police correct the caution date of an open case (cautioned five days ago, not two): the
// first contact is due three days earlier, and the provider's system is told (CaseUpdated).
static void s_cautioned_five_days_ago(Cara__Referral *r) {
    char when[40];
    ti_set(&r->caution->given_at,
           time_format_iso(time_now_us() - 5LL * 86400 * 1000000, when, sizeof when));
}

static void test_a_corrected_caution_date_moves_first_contact(void **state) {
    (void)state;
    char ref[32];
    char *id = s_named_case("CD", ref);
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT (first_contact_due - 3)::text FROM provider_case WHERE referral_id = '%s'",
             id);
    char *earlier = harness_value(h, "booking", sql);
    assert_non_null(earlier);
    s_amend(id, ref, s_cautioned_five_days_ago);
    s_booking_value("SELECT first_contact_due::text FROM provider_case WHERE referral_id = '%s'",
                    id, earlier);
    char types[600], why[16], update[80];
    s_provider_view(id, types, sizeof types, why, update, sizeof update);
    assert_string_equal(types, "cara.CaseOpened,cara.CaseUpdated");
    assert_non_null(strstr(update, earlier));
    free(earlier);
    free(id);
}

// A man misses Part A with no later group before his deadline: the case is closed non-compliant.
// The police then correct his sex (a woman): the closed case takes the women's pathway, so the
// men's-group miss corrected to attended is refused, not brought back.
static void test_a_closed_case_takes_the_new_pathway(void **state) {
    (void)state;
    char ref[32], deadline[16];
    snprintf(ref, sizeof ref, "BF-%d-CP", getpid());
    s_date(33, deadline);
    char *id = ti_open_case(h, "dyfed-powys", ref, deadline, 0);
    assert_non_null(id);
    char *men = s_cohort("p1", "male_intimate", 2, 30, 4);
    char *got = s_book(s_p1(), id, men);
    assert_non_null(got);
    s_attend(men, "A", id, "absent");
    s_expect(id, "non_compliant/did_not_attend", "non_compliant");
    s_amend(id, ref, s_female);
    s_booking_value("SELECT pathway FROM provider_case WHERE referral_id = '%s'", id,
                    "female_intimate");
    assert_int_equal(s_correct(men, "A", id, "attended", "signed in late on the sheet"),
                     CARA__REPLY__STATUS__INVALID);
    s_expect(id, "non_compliant/did_not_attend", "non_compliant");
    free(got);
    free(men);
    free(id);
}

// A man completes his group; an amendment then has triage return the referral (a woman, DASH
// high): the case stays completed, stopped. A later amendment has it routed again (a woman,
// standard risk, the victim no longer consenting): the case takes the routing (the women's
// pathway, no victim contact; CaseUpdated) and is no longer stopped.
static void test_a_finished_case_returned_then_routed_again_takes_the_routing(void **state) {
    (void)state;
    char ref[32];
    char *id = s_named_case("RR", ref);
    char *men = s_cohort("p1", "male_intimate", 11, 39, 4);
    char *got = s_book(s_p1(), id, men);
    assert_non_null(got);
    s_attend(men, "A", id, "attended");
    s_attend(men, "B", id, "attended");
    s_expect(id, "completed/completed", "completed");
    s_amend(id, ref, s_female_high);
    s_booking_value("SELECT coalesce(stopped, '-') FROM provider_case WHERE referral_id = '%s'", id,
                    "returned");
    s_amend(id, ref, s_female_no_consent);
    s_booking_value("SELECT pathway || '/' || victim_contact || '/' || coalesce(stopped, '-')"
                    " FROM provider_case WHERE referral_id = '%s'",
                    id, "female_intimate/false/-");
    s_expect(id, "completed/completed", "completed");
    char types[800], why[16], update[80];
    s_provider_view(id, types, sizeof types, why, update, sizeof update);
    assert_non_null(strstr(update, "female_intimate "));
    assert_non_null(strstr(update, " no"));
    free(got);
    free(men);
    free(id);
}

// A case closed because triage returned it, then withdrawn by the police: closed for good, and
// the provider's system is told (CaseWithdrawn "withdrawn" after "returned").
static void test_a_returned_case_withdrawn_is_closed_for_good(void **state) {
    (void)state;
    char ref[32];
    char *id = s_named_case("RW", ref);
    s_amend(id, ref, s_female_high);
    s_expect(id, "withdrawn/returned", "returned");
    s_withdraw(id);
    s_expect(id, "withdrawn/withdrawn", "withdrawn");
    char types[600], why[16];
    s_provider_events(id, types, sizeof types, why);
    assert_string_equal(types, "cara.CaseOpened,cara.CaseWithdrawn,cara.CaseWithdrawn");
    assert_string_equal(why, "withdrawn");
    free(id);
}

// A man misses Part A and is rebooked; the police then correct his sex (a woman): she moves to
// a women's group. The men's-group miss corrected to attended is refused: it would bring back a
// booking in the other sex's group.
static void test_no_booking_comes_back_in_the_other_sexs_group(void **state) {
    (void)state;
    char ref[32];
    char *id = s_named_case("SX", ref);
    char *men = s_cohort("p1", "male_intimate", 23, 51, 4);
    char *later = s_cohort("p1", "male_intimate", 60, 88, 4);
    char *women = s_cohort("p1", "female_intimate", 62, 90, 4);
    char *got = s_book(s_p1(), id, men);
    assert_non_null(got);
    s_attend(men, "A", id, "absent");
    s_booking_value("SELECT c.cohort_type || ':' || b.status FROM booking b JOIN cohort c"
                    " USING (cohort_id) JOIN provider_case p USING (case_id)"
                    " WHERE p.referral_id = '%s' ORDER BY b.booked_at DESC LIMIT 1",
                    id, "male_intimate:booked");
    s_amend(id, ref, s_female);
    s_booking_value("SELECT pathway || '/' || status FROM provider_case WHERE referral_id = '%s'",
                    id, "female_intimate/booked");
    // The provider's system reads the new pathway before the move it causes.
    char types[800], why[16], update[80];
    s_provider_view(id, types, sizeof types, why, update, sizeof update);
    assert_non_null(strstr(types, "cara.CaseUpdated,cara.BookingCancelled,cara.SeatBooked"));
    assert_non_null(strstr(update, "female_intimate "));
    assert_non_null(strstr(update, " yes"));
    assert_int_equal(s_correct(men, "A", id, "attended", "signed in late"),
                     CARA__REPLY__STATUS__INVALID);
    s_booking_value("SELECT c.cohort_type || ':' || b.status FROM booking b JOIN cohort c"
                    " USING (cohort_id) JOIN provider_case p USING (case_id)"
                    " WHERE p.referral_id = '%s' AND b.status = 'booked'",
                    id, "female_intimate:booked");
    free(got);
    free(men);
    free(later);
    free(women);
    free(id);
}

static void test_provider_sees_only_its_own_bookings(void **state) {
    (void)state;
    char *gwent = s_case("gwent", 0, 0); // routed to p2
    char *c2 = s_cohort("p2", "male_intimate", 7, 35, 12);
    char *got = s_book(harness_client(h, "booking", "provider", "p2"), gwent, NULL);
    assert_string_equal(got, c2);
    int status;
    Cara__Batch *b2 =
        harness_fetch(harness_client(h, "booking", "provider", "p2"), "booking", 0, 2000, &status);
    Cara__Batch *b1 = harness_fetch(s_p1(), "booking", 0, 2000, &status);
    assert_non_null(b1);
    assert_non_null(b2);
    assert_true(b1->n_events > 20);
    assert_true(b2->n_events >= 3); // CaseOpened, CohortCreated, SeatBooked
    for (size_t i = 0; i < b2->n_events; i++) {
        Cara__Envelope *e =
            envelope_unpack(b2->events[i]->envelope.data, b2->events[i]->envelope.len);
        assert_non_null(e);
        // Every event p2 sees is about p2's cohort or p2's case.
        assert_true(strcmp(e->correlation_id, gwent) == 0 || strcmp(e->correlation_id, "") == 0);
        cara__envelope__free_unpacked(e, NULL);
    }
    for (size_t i = 0; i < b1->n_events; i++)
        for (size_t k = 0; k < b2->n_events; k++)
            assert_int_not_equal(b1->events[i]->seq, b2->events[k]->seq);
    // Other roles get nothing.
    Cara__Batch *none =
        harness_fetch(harness_client(h, "booking", "police", "gwent"), "booking", 0, 10, &status);
    assert_null(none);
    assert_int_equal(status, CARA__REPLY__STATUS__FORBIDDEN);
    cara__batch__free_unpacked(b1, NULL);
    cara__batch__free_unpacked(b2, NULL);
    free(got);
    free(c2);
    free(gwent);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_contact_book_attend_both_completed),
        cmocka_unit_test(test_miss_part_b_rebooks_both_then_completes),
        cmocka_unit_test(test_miss_with_no_time_left_is_non_compliant),
        cmocka_unit_test(test_late_is_refused_entry),
        cmocka_unit_test(test_telephone_pathway),
        cmocka_unit_test(test_fifty_concurrent_bookings_into_twelve_seats),
        cmocka_unit_test(test_withdrawal_cancels_booking_and_frees_seat),
        cmocka_unit_test(test_withdrawal_after_completion_keeps_the_provider_record),
        cmocka_unit_test(test_amendments_move_or_stop_a_routed_case),
        cmocka_unit_test(test_no_booking_comes_back_in_the_other_sexs_group),
        cmocka_unit_test(test_a_corrected_caution_date_moves_first_contact),
        cmocka_unit_test(test_a_closed_case_takes_the_new_pathway),
        cmocka_unit_test(test_a_finished_case_returned_then_routed_again_takes_the_routing),
        cmocka_unit_test(test_a_returned_case_withdrawn_is_closed_for_good),
        cmocka_unit_test(test_provider_sees_only_its_own_bookings),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
