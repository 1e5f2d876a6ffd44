// booking: attendance corrections through the real chain (police -> intake -> triage -> booking
// -> intake outcomes, billing, national). A correction has the consequence the corrected record
// would have had: a Part B absence that closed the case non-compliant, corrected to attended,
// reopens and completes it (police stream: completed; the telephone fee billed once; national
// counts a completion, not a non-compliance); an attended Part B corrected to absent withdraws
// the completion and rebooks both parts (the group cohort's lines voided, national's completion
// cleared), and the rebooked case completes; an attended Part A corrected to absent with no
// later cohort before the deadline closes the case non-compliant and the police are told, and
// a later correction of that miss to another kind of miss changes the reason they see.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "billing.pb-c.h"
#include "booking.pb-c.h"
#include "cara/timeutil.h"
#include "test_intake_support.h"

static harness_t *h;
static int32_t today;
static int s_ref = 0;

static int setup(void **state) {
    (void)state;
    h = harness_new("booking_corrections");
    if (!h)
        return -1;
    today = (int32_t)(time_now_us() / 1000000 / 86400);
    ti_route(h, 0);
    harness_config(h, "intake", "pseudonym_secret", "\"corrections-secret-0123456789\"");
    harness_config(h, "national", "pseudonym_secret", "\"corrections-secret-0123456789\"");
    static const char *const all[] = {"intake", "triage", "booking", "billing", "national"};
    for (int i = 0; i < 5; i++)
        if (harness_start(h, all[i]) != 0)
            return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    harness_destroy(&h);
    return 0;
}

static client_t *s_p1(void) {
    return harness_client(h, "booking", "provider", "p1");
}

static int s_call(client_t *c, const ProtobufCMessage *msg) {
    Cara__Reply *reply = harness_call(c, msg);
    assert_non_null(reply);
    ti_print_errors(reply);
    int status = reply->status;
    cara__reply__free_unpacked(reply, NULL);
    return status;
}

// A contract covering p1's work (group cohorts per cohort, telephone per case).
static void s_contract(void) {
    char from[16], to[16];
    time_format_date(today - 40, from, sizeof from);
    time_format_date(today + 400, to, sizeof to);
    Cara__Contract c = CARA__CONTRACT__INIT;
    c.contract_id = "DP-CORR";
    c.commissioner = "opcc-dyfed-powys";
    c.provider_id = "p1";
    c.licence_holder = "hampton-trust";
    c.starts_on = from;
    c.ends_on = to;
    c.cohort_fee_pence = 200000;
    c.telephone_fee_pence = 30000;
    c.delivery_cap_pence = 6000000;
    c.offender_cap = 200;
    Cara__AddContract add = CARA__ADD_CONTRACT__INIT;
    add.contract = &c;
    assert_int_equal(s_call(harness_client(h, "billing", "finance", "opcc-dyfed-powys"), &add.base),
                     CARA__REPLY__STATUS__OK);
}

// A referral cautioned two days ago, deadline in deadline_days, through to an open case
// (interpreter needed: telephone pathway).
static char *s_case(int deadline_days, int interpreter) {
    char ref[32], deadline[16];
    snprintf(ref, sizeof ref, "CO-%d-%d", getpid(), ++s_ref);
    time_format_date(today + deadline_days, deadline, sizeof deadline);
    char *id = ti_open_case(h, "dyfed-powys", ref, deadline, interpreter);
    assert_non_null(id);
    return id;
}

static char *s_cohort(const char *type, int a, int b) {
    Cara__CreateCohort cmd = CARA__CREATE_COHORT__INIT;
    char da[16], db_[16];
    time_format_date(today + a, da, sizeof da);
    time_format_date(today + b, db_, sizeof db_);
    cmd.cohort_type = (char *)type;
    cmd.town = "Carmarthen";
    cmd.capacity = 4;
    cmd.part_a_date = da;
    cmd.part_b_date = db_;
    Cara__Reply *reply = harness_call(s_p1(), &cmd.base);
    assert_non_null(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    Cara__CohortRef *ref = cara__cohort_ref__unpack(NULL, reply->payload.len, reply->payload.data);
    assert_non_null(ref);
    char *id = strdup(ref->cohort_id);
    cara__cohort_ref__free_unpacked(ref, NULL);
    cara__reply__free_unpacked(reply, NULL);
    return id;
}

static void s_book(const char *referral_id, const char *cohort) {
    Cara__BookSeat cmd = CARA__BOOK_SEAT__INIT;
    cmd.referral_id = (char *)referral_id;
    cmd.cohort_id = (char *)cohort;
    assert_int_equal(s_call(s_p1(), &cmd.base), CARA__REPLY__STATUS__OK);
}

// Time passes: moves a cohort (both dates, keeping the gap) so that the part is held today.
static void s_held(const char *cohort, const char *part) {
    const char *values[] = {cohort};
    assert_int_equal(db_exec(harness_db(h, "booking"),
                             strcmp(part, "A") == 0
                                 ? "UPDATE cohort SET part_b_date = part_b_date - (part_a_date -"
                                   " current_date), part_a_date = current_date WHERE"
                                   " cohort_id = $1 AND part_a_date > current_date"
                                 : "UPDATE cohort SET part_a_date = part_a_date - (part_b_date -"
                                   " current_date), part_b_date = current_date WHERE"
                                   " cohort_id = $1 AND part_b_date > current_date",
                             1, values),
                     0);
}

// Records one part for one case; returns the reply status.
static int s_attend(const char *cohort, const char *part, const char *id, const char *status,
                    const char *reason) {
    Cara__AttendanceEntry e = CARA__ATTENDANCE_ENTRY__INIT;
    Cara__AttendanceEntry *entries[] = {&e};
    e.referral_id = (char *)id;
    e.status = (char *)status;
    Cara__RecordAttendance cmd = CARA__RECORD_ATTENDANCE__INIT;
    cmd.cohort_id = (char *)cohort;
    cmd.part = (char *)part;
    cmd.entries = entries;
    cmd.n_entries = 1;
    cmd.correction_reason = (char *)(reason ? reason : "");
    return s_call(s_p1(), &cmd.base);
}

static void s_expect(const char *schema, const char *fmt, const char *a, const char *expected) {
    char sql[700];
    snprintf(sql, sizeof sql, fmt, a);
    if (harness_wait_value(h, schema, sql, expected, 20000) != 0) {
        char *got = harness_value(h, schema, sql);
        fail_msg("%s: expected %s, got %s", sql, expected, got ? got : "(null)");
    }
}

// The statuses the force's police system reads about a referral on the intake stream, in
// order, comma-separated (malloc'd).
static char *s_police_statuses(const char *referral_id) {
    client_t *police = harness_client(h, "intake", "police", "dyfed-powys");
    size_t cap = 4096, len = 0;
    char *out = calloc(1, cap);
    assert_non_null(out);
    uint64_t after = 0;
    for (;;) {
        int status = 0;
        Cara__Batch *b = harness_fetch(police, "intake", after, 500, &status);
        assert_non_null(b);
        for (size_t i = 0; i < b->n_events; i++) {
            Cara__Envelope *e =
                envelope_unpack(b->events[i]->envelope.data, b->events[i]->envelope.len);
            assert_non_null(e);
            Cara__OutcomeUpdated *o = strcmp(e->type, "cara.OutcomeUpdated") == 0
                                          ? (Cara__OutcomeUpdated *)envelope_payload(
                                                e, &cara__outcome_updated__descriptor)
                                          : NULL;
            if (o && o->outcome && strcmp(o->outcome->referral_id, referral_id) == 0 &&
                len + strlen(o->outcome->status) + 2 < cap)
                len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? "," : "",
                                        o->outcome->status);
            if (o)
                cara__outcome_updated__free_unpacked(o, NULL);
            cara__envelope__free_unpacked(e, NULL);
        }
        int more = b->last > after && b->last < b->head;
        after = b->last;
        cara__batch__free_unpacked(b, NULL);
        if (!more)
            break;
    }
    return out;
}

// Waits until the police's last status for the referral is want; returns all statuses.
static char *s_police_reads(const char *referral_id, const char *want) {
    for (int tries = 0; tries < 200; tries++) {
        char *all = s_police_statuses(referral_id);
        const char *last = strrchr(all, ',');
        last = last ? last + 1 : all;
        if (strcmp(last, want) == 0)
            return all;
        free(all);
        usleep(100000);
    }
    char *all = s_police_statuses(referral_id);
    fail_msg("police stream for %s: %s, expected to end with %s", referral_id, all, want);
    return all;
}

static const char *s_case_sql = "SELECT p.status || ':' || coalesce(p.close_reason, '-')"
                                " FROM provider_case p WHERE referral_id = '%s'";
static const char *s_national = "SELECT count(*) FILTER (WHERE completed_at IS NOT NULL) || '/' ||"
                                " count(*) FILTER (WHERE non_compliant_reason IS NOT NULL)"
                                " FROM case_fact%s";

static void test_part_b_absence_corrected_reopens_and_completes(void **state) {
    (void)state;
    s_contract();
    // Telephone, deadline in 30 days: the only cohort is this one, so a Part B miss closes it.
    char *id = s_case(30, 1);
    char *tel = s_cohort("telephone", 3, 10);
    s_book(id, tel);
    s_held(tel, "A");
    assert_int_equal(s_attend(tel, "A", id, "attended", NULL), CARA__REPLY__STATUS__OK);
    s_held(tel, "B");
    assert_int_equal(s_attend(tel, "B", id, "absent", NULL), CARA__REPLY__STATUS__OK);
    s_expect("booking", s_case_sql, id, "non_compliant:did_not_attend");
    free(s_police_reads(id, "non_compliant"));
    s_expect("national", s_national, "", "0/1");
    // A change without a reason is refused and changes nothing.
    assert_int_equal(s_attend(tel, "B", id, "attended", NULL), CARA__REPLY__STATUS__INVALID);
    s_expect("booking", s_case_sql, id, "non_compliant:did_not_attend");
    // With a reason: reopened, the original booking restored and completed, audited.
    assert_int_equal(s_attend(tel, "B", id, "attended", "register misread"),
                     CARA__REPLY__STATUS__OK);
    s_expect("booking", s_case_sql, id, "completed:completed");
    s_expect("booking",
             "SELECT string_agg(b.status, ',') FROM booking b JOIN provider_case USING (case_id)"
             " WHERE referral_id = '%s'",
             id, "completed");
    s_expect("booking",
             "SELECT string_agg(type, ',' ORDER BY seq) FROM (SELECT seq, type FROM outbox"
             " WHERE key = '%s' ORDER BY seq DESC LIMIT 4) x",
             id, "cara.CaseReopened,cara.SeatBooked,cara.AttendanceRecorded,cara.CaseCompleted");
    s_expect("booking",
             "SELECT count(*) FILTER (WHERE action = 'case_reopened') || '/' ||"
             " count(*) FILTER (WHERE action = 'attendance_corrected'"
             " AND detail->>'reason' = 'register misread') FROM audit WHERE entity_id = '%s'",
             id, "1/1");
    // The police read the non-compliance undone and the completion.
    char *seen = s_police_reads(id, "completed");
    assert_non_null(strstr(seen, "non_compliant,booked"));
    free(seen);
    s_expect("intake", "SELECT status || '/' || reason FROM outcome WHERE referral_id = '%s'", id,
             "completed/");
    // Billed once per case (telephone); national counts a completion, no non-compliance.
    s_expect("billing",
             "SELECT count(*) || ':' || sum(amount_pence) FROM billable_line"
             " WHERE kind = 'telephone_fee'%s",
             "", "1:30000");
    s_expect("national", s_national, "", "1/0");
    // A repeat of the correction changes nothing.
    assert_int_equal(s_attend(tel, "B", id, "attended", "register misread"),
                     CARA__REPLY__STATUS__OK);
    s_expect("booking",
             "SELECT count(*) FROM outbox WHERE key = '%s' AND type = 'cara.CaseCompleted'", id,
             "1");
    free(tel);
    free(id);
}

static void test_part_b_attendance_corrected_to_absent_rebooks(void **state) {
    (void)state;
    char *id = s_case(120, 0);
    char *group = s_cohort("male_intimate", 3, 31);
    char *later = s_cohort("male_intimate", 40, 68);
    s_book(id, group);
    s_held(group, "A");
    assert_int_equal(s_attend(group, "A", id, "attended", NULL), CARA__REPLY__STATUS__OK);
    s_held(group, "B");
    assert_int_equal(s_attend(group, "B", id, "attended", NULL), CARA__REPLY__STATUS__OK);
    s_expect("booking", s_case_sql, id, "completed:completed");
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT string_agg(kind || ':' || status, ',' ORDER BY kind) FROM billable_line"
             " WHERE cohort_id = '%s'",
             group);
    s_expect("billing", "%s", sql, "cohort_fee:pending");
    s_expect("national", s_national, "", "2/0");
    free(s_police_reads(id, "completed"));
    // Attended corrected to absent: the completion is withdrawn and both parts are rebooked.
    assert_int_equal(s_attend(group, "B", id, "absent", "signed in for someone else"),
                     CARA__REPLY__STATUS__OK);
    s_expect("booking", s_case_sql, id, "booked:-");
    snprintf(sql, sizeof sql,
             "SELECT string_agg(b.status || '@' || (b.cohort_id = '%s'), ',' ORDER BY booked_at)"
             " FROM booking b JOIN provider_case USING (case_id) WHERE referral_id = '%s'",
             group, id);
    s_expect("booking", "%s", sql, "missed@true,booked@false");
    s_expect("booking",
             "SELECT string_agg(type, ',' ORDER BY seq) FROM (SELECT seq, type FROM outbox"
             " WHERE key = '%s' ORDER BY seq DESC LIMIT 4) x",
             id, "cara.AttendanceRecorded,cara.CaseReopened,cara.BookingCancelled,cara.SeatBooked");
    s_expect("booking",
             "SELECT delivered_participants || ':' || delivered_revision FROM cohort"
             " WHERE cohort_id = '%s'",
             group, "0:1");
    snprintf(sql, sizeof sql,
             "SELECT part_a_date || '/' || part_b_date FROM cohort WHERE cohort_id = '%s'", later);
    char *dates = harness_value(h, "booking", sql);
    assert_non_null(dates);
    char want[80];
    snprintf(want, sizeof want, "booked %s", dates);
    s_expect("intake",
             "SELECT status || ' ' || part_a_date || '/' || part_b_date FROM outcome"
             " WHERE referral_id = '%s'",
             id, want);
    char *seen = s_police_reads(id, "booked");
    assert_non_null(strstr(seen, "completed,booked"));
    free(seen);
    // The group cohort has nobody left who completed it: its line is void; national no longer
    // counts the completion.
    snprintf(sql, sizeof sql,
             "SELECT string_agg(kind || ':' || status, ',' ORDER BY kind) FROM billable_line"
             " WHERE cohort_id = '%s'",
             group);
    s_expect("billing", "%s", sql, "cohort_fee:void");
    s_expect("national", s_national, "", "1/0");
    // The rebooking is attended: completed again, billed once for the later cohort.
    s_held(later, "A");
    assert_int_equal(s_attend(later, "A", id, "attended", NULL), CARA__REPLY__STATUS__OK);
    // The first booking can no longer be restored: the rebooking has attendance recorded.
    assert_int_equal(s_attend(group, "B", id, "attended", "changed our mind"),
                     CARA__REPLY__STATUS__INVALID);
    s_expect("booking", s_case_sql, id, "booked:-");
    s_held(later, "B");
    assert_int_equal(s_attend(later, "B", id, "attended", NULL), CARA__REPLY__STATUS__OK);
    s_expect("booking", s_case_sql, id, "completed:completed");
    free(s_police_reads(id, "completed"));
    snprintf(sql, sizeof sql,
             "SELECT string_agg(kind || ':' || status, ',' ORDER BY kind) FROM billable_line"
             " WHERE cohort_id = '%s'",
             later);
    s_expect("billing", "%s", sql, "cohort_fee:pending");
    s_expect("national", s_national, "", "2/0");
    // Completed in the later cohort: the first booking's miss can no longer be undone (it would
    // count the person in the voided cohort, and bill it again).
    assert_int_equal(s_attend(group, "B", id, "attended", "register found"),
                     CARA__REPLY__STATUS__INVALID);
    s_expect("booking", s_case_sql, id, "completed:completed");
    snprintf(sql, sizeof sql,
             "SELECT string_agg(kind || ':' || status, ',' ORDER BY kind) FROM billable_line"
             " WHERE cohort_id = '%s'",
             group);
    s_expect("billing", "%s", sql, "cohort_fee:void");
    free(dates);
    free(later);
    free(group);
    free(id);
}

static void test_part_a_attendance_corrected_to_absent_with_no_time_left(void **state) {
    (void)state;
    // Deadline in 31 days; every other cohort of this file is held already (in the past).
    char *id = s_case(31, 0);
    char *group = s_cohort("male_intimate", 2, 30);
    s_book(id, group);
    s_held(group, "A");
    assert_int_equal(s_attend(group, "A", id, "attended", NULL), CARA__REPLY__STATUS__OK);
    free(s_police_reads(id, "attended_part_a"));
    assert_int_equal(s_attend(group, "A", id, "late_refused_entry", "arrived after the start"),
                     CARA__REPLY__STATUS__OK);
    s_expect("booking", s_case_sql, id, "non_compliant:late_refused_entry");
    s_expect("booking",
             "SELECT string_agg(b.status, ',') FROM booking b JOIN provider_case USING (case_id)"
             " WHERE referral_id = '%s'",
             id, "missed");
    char *seen = s_police_reads(id, "non_compliant");
    assert_non_null(strstr(seen, "attended_part_a,booked"));
    free(seen);
    s_expect("intake", "SELECT status || '/' || reason FROM outcome WHERE referral_id = '%s'", id,
             "non_compliant/late_refused_entry");
    s_expect("national", s_national, "", "2/1");
    // One miss corrected to another: the case's reason follows, for the police and nationally.
    assert_int_equal(s_attend(group, "A", id, "excluded", "removed for behaviour, not late"),
                     CARA__REPLY__STATUS__OK);
    s_expect("booking", s_case_sql, id, "non_compliant:excluded");
    s_expect("intake", "SELECT status || '/' || reason FROM outcome WHERE referral_id = '%s'", id,
             "non_compliant/excluded");
    s_expect("national",
             "SELECT string_agg(non_compliant_reason, ',') FROM case_fact"
             " WHERE non_compliant_reason IS NOT NULL%s",
             "", "excluded");
    s_expect("national", s_national, "", "2/1");
    // Part B cannot be recorded on a booking whose Part A was not attended.
    s_held(group, "B");
    assert_int_equal(s_attend(group, "B", id, "attended", NULL), CARA__REPLY__STATUS__INVALID);
    free(group);
    free(id);
}

// A telephone completion withdrawn by a correction: the per-case fee line is voided when the
// case ends non-compliant, and billed again (once, under the new completion) when the case is
// corrected back to completed.
static void test_withdrawn_telephone_completion_is_voided_then_billed_once(void **state) {
    (void)state;
    char *id = s_case(30, 1);
    char *tel = s_cohort("telephone", 2, 9);
    s_book(id, tel);
    s_held(tel, "A");
    assert_int_equal(s_attend(tel, "A", id, "attended", NULL), CARA__REPLY__STATUS__OK);
    s_held(tel, "B");
    assert_int_equal(s_attend(tel, "B", id, "attended", NULL), CARA__REPLY__STATUS__OK);
    char sql[400];
    snprintf(sql, sizeof sql, "SELECT case_id FROM provider_case WHERE referral_id = '%s'", id);
    char *case_id = harness_value(h, "booking", sql);
    assert_non_null(case_id);
    snprintf(sql, sizeof sql,
             "SELECT string_agg(status || ':' || amount_pence, ',' ORDER BY line_id)"
             " FROM billable_line WHERE delivery_key LIKE 'case:%s%%'",
             case_id);
    s_expect("billing", "%s", sql, "pending:30000");
    // Part B corrected to absent, no later telephone cohort: non-compliant, the fee voided.
    assert_int_equal(s_attend(tel, "B", id, "absent", "wrong person ticked"),
                     CARA__REPLY__STATUS__OK);
    s_expect("booking", s_case_sql, id, "non_compliant:did_not_attend");
    free(s_police_reads(id, "non_compliant"));
    s_expect("billing", "%s", sql, "void:30000");
    // Corrected back: completed again and billed once more under the new completion.
    assert_int_equal(s_attend(tel, "B", id, "attended", "the register was right after all"),
                     CARA__REPLY__STATUS__OK);
    s_expect("booking", s_case_sql, id, "completed:completed");
    free(s_police_reads(id, "completed"));
    s_expect("billing", "%s", sql, "void:30000,pending:30000");
    s_expect("national", s_national, "", "3/1");
    free(case_id);
    free(tel);
    free(id);
}

// A Part A miss corrected to attended gives the first booking back (the replacement is
// cancelled); Part B of it is then missed with nowhere left to go (non-compliant); that miss
// corrected to attended reopens and completes the case: the replacement the first correction
// cancelled does not make the Part B miss look like it did not close the case.
static void test_second_correction_after_a_restore_completes(void **state) {
    (void)state;
    char *id = s_case(120, 0);
    char *first = s_cohort("male_intimate", 3, 31);
    char *spare = s_cohort("male_intimate", 40, 68);
    s_book(id, first);
    s_held(first, "A");
    assert_int_equal(s_attend(first, "A", id, "absent", NULL), CARA__REPLY__STATUS__OK);
    s_expect("booking",
             "SELECT b.status FROM booking b JOIN provider_case p USING (case_id)"
             " WHERE p.referral_id = '%s' ORDER BY booked_at DESC LIMIT 1",
             id, "booked");
    assert_int_equal(s_attend(first, "A", id, "attended", "late entry on the register"),
                     CARA__REPLY__STATUS__OK);
    s_expect("booking",
             "SELECT string_agg(b.status || ':' || coalesce(b.ended_reason, '-'), ','"
             " ORDER BY booked_at) FROM booking b JOIN provider_case p USING (case_id)"
             " WHERE p.referral_id = '%s'",
             id, "booked:-,cancelled:attendance_corrected");
    // The spare cohort is cancelled: a Part B miss now has nowhere to go.
    Cara__CancelCohort cancel = CARA__CANCEL_COHORT__INIT;
    cancel.cohort_id = spare;
    cancel.reason = "venue lost";
    assert_int_equal(s_call(s_p1(), &cancel.base), CARA__REPLY__STATUS__OK);
    s_held(first, "B");
    assert_int_equal(s_attend(first, "B", id, "absent", NULL), CARA__REPLY__STATUS__OK);
    s_expect("booking", s_case_sql, id, "non_compliant:did_not_attend");
    free(s_police_reads(id, "non_compliant"));
    assert_int_equal(s_attend(first, "B", id, "attended", "signed the wrong sheet"),
                     CARA__REPLY__STATUS__OK);
    s_expect("booking", s_case_sql, id, "completed:completed");
    free(s_police_reads(id, "completed"));
    free(spare);
    free(first);
    free(id);
}

// Part A attended in one cohort; the provider then moves the person (CancelBooking) to another;
// the first cohort's register is corrected to absent: the record changes, and nothing else (no
// rebooking, no non-compliance): the case goes on in the cohort it is booked into.
static void test_correction_on_a_cancelled_booking_changes_only_the_register(void **state) {
    (void)state;
    char *id = s_case(120, 0);
    char *first = s_cohort("male_intimate", 3, 31);
    char *moved = s_cohort("male_intimate", 6, 34);
    s_book(id, first);
    s_held(first, "A");
    assert_int_equal(s_attend(first, "A", id, "attended", NULL), CARA__REPLY__STATUS__OK);
    Cara__CancelBooking cancel = CARA__CANCEL_BOOKING__INIT;
    cancel.referral_id = id;
    cancel.reason = "moving to a Saturday group";
    assert_int_equal(s_call(s_p1(), &cancel.base), CARA__REPLY__STATUS__OK);
    s_book(id, moved);
    assert_int_equal(s_attend(first, "A", id, "absent", "register was wrong"),
                     CARA__REPLY__STATUS__OK);
    s_expect("booking", s_case_sql, id, "booked:-");
    s_expect("booking",
             "SELECT string_agg(b.status || ':' || coalesce(b.part_a, '-'), ',' ORDER BY booked_at)"
             " FROM booking b JOIN provider_case p USING (case_id) WHERE p.referral_id = '%s'",
             id, "cancelled:absent,booked:-");
    free(s_police_reads(id, "booked"));
    free(moved);
    free(first);
    free(id);
}

// A Part A miss rebooked the person; the first cohort is then cancelled (the venue is lost
// before Part B): correcting that miss to attended is refused, and the rebooking stands.
static void test_no_booking_comes_back_into_a_cancelled_cohort(void **state) {
    (void)state;
    char *id = s_case(120, 0);
    char *first = s_cohort("male_intimate", 3, 31);
    char *next = s_cohort("male_intimate", 40, 68);
    s_book(id, first);
    s_held(first, "A");
    assert_int_equal(s_attend(first, "A", id, "absent", NULL), CARA__REPLY__STATUS__OK);
    Cara__CancelCohort cancel = CARA__CANCEL_COHORT__INIT;
    cancel.cohort_id = first;
    cancel.reason = "venue lost";
    assert_int_equal(s_call(s_p1(), &cancel.base), CARA__REPLY__STATUS__OK);
    assert_int_equal(s_attend(first, "A", id, "attended", "late entry on the register"),
                     CARA__REPLY__STATUS__INVALID);
    s_expect("booking",
             "SELECT string_agg(b.status, ',' ORDER BY booked_at) FROM booking b"
             " JOIN provider_case p USING (case_id) WHERE p.referral_id = '%s'",
             id, "missed,booked");
    free(next);
    free(first);
    free(id);
}

// Part A attended and Part B missed in the first cohort (rebooked into another, whose Part A is
// attended); the first cohort's Part A is then corrected to a miss and back to attended: the
// first booking stays missed (its Part B is still a miss), the rebooking stands, and the police
// go on reading Part A attended (of the rebooking).
static void test_part_a_corrected_twice_leaves_a_part_b_miss_missed(void **state) {
    (void)state;
    char *id = s_case(120, 0);
    char *first = s_cohort("male_intimate", 3, 31);
    char *next = s_cohort("male_intimate", 45, 73);
    s_book(id, first);
    s_held(first, "A");
    assert_int_equal(s_attend(first, "A", id, "attended", NULL), CARA__REPLY__STATUS__OK);
    s_held(first, "B");
    assert_int_equal(s_attend(first, "B", id, "absent", NULL), CARA__REPLY__STATUS__OK);
    const char *bookings = "SELECT string_agg(b.status, ',' ORDER BY booked_at) FROM booking b"
                           " JOIN provider_case p USING (case_id) WHERE p.referral_id = '%s'";
    s_expect("booking", bookings, id, "missed,booked");
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT b.cohort_id FROM booking b JOIN provider_case p USING (case_id)"
             " WHERE p.referral_id = '%s' AND b.status = 'booked'",
             id);
    char *now_in = harness_value(h, "booking", sql);
    assert_non_null(now_in);
    s_held(now_in, "A");
    assert_int_equal(s_attend(now_in, "A", id, "attended", NULL), CARA__REPLY__STATUS__OK);
    assert_int_equal(harness_wait_caught_up(h, "intake", "booking", 10000), 0);
    char *before = s_police_reads(id, "attended_part_a");
    assert_string_equal(before, "received,triaged,booked,attended_part_a,triaged,booked,"
                                "attended_part_a");
    assert_int_equal(s_attend(first, "A", id, "excluded", "wrong person marked"),
                     CARA__REPLY__STATUS__OK);
    assert_int_equal(s_attend(first, "A", id, "attended", "it was the right person"),
                     CARA__REPLY__STATUS__OK);
    s_expect("booking", bookings, id, "missed,booked");
    s_expect("booking", s_case_sql, id, "booked:-");
    assert_int_equal(harness_wait_caught_up(h, "intake", "booking", 10000), 0);
    char *after = s_police_statuses(id);
    assert_string_equal(after, before);
    free(after);
    free(before);
    free(now_in);
    free(next);
    free(first);
    free(id);
}

static void s_withdraw(const char *id) {
    Cara__WithdrawReferral w = CARA__WITHDRAW_REFERRAL__INIT;
    w.referral_id = (char *)id;
    w.reason_code = "caution_rescinded";
    w.reason = "rescinded";
    assert_int_equal(s_call(harness_client(h, "intake", "police", "dyfed-powys"), &w.base),
                     CARA__REPLY__STATUS__OK);
    free(s_police_reads(id, "withdrawn"));
    s_expect("booking", "SELECT stopped FROM provider_case WHERE referral_id = '%s'", id,
             "withdrawn");
}

// The police withdraw a referral after its case was over. A completed case whose Part B is then
// corrected to absent has its register corrected and nothing more: it is not reopened or booked
// again. A non-compliant case whose miss is corrected to attended is refused.
static void test_a_withdrawn_referral_is_not_brought_back_by_a_correction(void **state) {
    (void)state;
    char *done = s_case(120, 0), *missed = s_case(33, 0);
    char *first = s_cohort("male_intimate", 2, 30);
    s_book(done, first);
    s_book(missed, first);
    s_held(first, "A");
    assert_int_equal(s_attend(first, "A", done, "attended", NULL), CARA__REPLY__STATUS__OK);
    assert_int_equal(s_attend(first, "A", missed, "absent", NULL), CARA__REPLY__STATUS__OK);
    s_expect("booking", s_case_sql, missed, "non_compliant:did_not_attend");
    s_held(first, "B");
    assert_int_equal(s_attend(first, "B", done, "attended", NULL), CARA__REPLY__STATUS__OK);
    s_expect("booking", s_case_sql, done, "completed:completed");
    s_withdraw(done);
    s_withdraw(missed);
    assert_int_equal(s_attend(first, "B", done, "absent", "signed the wrong sheet"),
                     CARA__REPLY__STATUS__OK);
    assert_int_equal(s_attend(first, "A", missed, "attended", "late entry on the register"),
                     CARA__REPLY__STATUS__INVALID);
    const char *bookings = "SELECT string_agg(b.status || ':' || coalesce(b.part_b, '-'), ','"
                           " ORDER BY booked_at) FROM booking b JOIN provider_case p"
                           " USING (case_id) WHERE p.referral_id = '%s'";
    s_expect("booking", bookings, done, "completed:absent");
    s_expect("booking", s_case_sql, done, "completed:completed");
    s_expect("booking", s_case_sql, missed, "non_compliant:did_not_attend");
    s_expect("booking",
             "SELECT count(*) FROM outbox WHERE type = 'cara.CaseReopened' AND key = '%s'", done,
             "0");
    free(first);
    free(missed);
    free(done);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_part_b_absence_corrected_reopens_and_completes),
        cmocka_unit_test(test_part_b_attendance_corrected_to_absent_rebooks),
        cmocka_unit_test(test_part_a_attendance_corrected_to_absent_with_no_time_left),
        cmocka_unit_test(test_withdrawn_telephone_completion_is_voided_then_billed_once),
        cmocka_unit_test(test_second_correction_after_a_restore_completes),
        cmocka_unit_test(test_correction_on_a_cancelled_booking_changes_only_the_register),
        cmocka_unit_test(test_no_booking_comes_back_into_a_cancelled_cohort),
        cmocka_unit_test(test_part_a_corrected_twice_leaves_a_part_b_miss_missed),
        cmocka_unit_test(test_a_withdrawn_referral_is_not_brought_back_by_a_correction),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
