// booking through the real chain (police -> intake -> triage -> booking -> intake outcomes): the
// provider's daily work beyond the happy path: a case never contacted before its deadline
// (non-compliant, police told), the at-risk contact list and per-force contact targets, the
// shortfall report, cancelling a booking, bulk attendance with CohortDelivered and a corrected
// entry (revision + 1), attendance refused before the session, cohort validation, victim contact
// kept out of the stream and other providers, provider isolation on commands, and a provider
// system catching up after its cursor, and an amended deadline moving a booking that no longer
// fits.
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
    h = harness_new("booking_ops");
    if (!h)
        return -1;
    today = (int32_t)(time_now_us() / 1000000 / 86400);
    ti_route(h, 1);
    // p1 asks for 20 seats a group: CARA's 12 stays the most; p2 lowers it to 10.
    harness_config(h, "booking", "providers",
                   "{\"p1\": {\"contact_at_risk_days\": 13, \"max_capacity\": 20},"
                   " \"p2\": {\"max_capacity\": 10}}");
    harness_config(h, "booking", "forces", "{\"gwent\": {\"first_contact_days\": 7}}");
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

static client_t *s_p1(void) {
    return harness_client(h, "booking", "provider", "p1");
}
// The provider's victim contact role (the only one that records or reads victim contact).
static client_t *s_vc(const char *provider) {
    return harness_client(h, "booking", "victim_contact", provider);
}
static client_t *s_p2(void) {
    return harness_client(h, "booking", "provider", "p2");
}

// A referral cautioned two days ago, through to an open provider case. deadline_days 0 = the
// force's default deadline.
static char *s_case(const char *force, int deadline_days) {
    char ref[32], deadline[16] = "";
    snprintf(ref, sizeof ref, "BO-%d-%d", getpid(), ++s_ref);
    if (deadline_days)
        s_date(deadline_days, deadline);
    char *id = ti_open_case(h, force, ref, deadline, 0);
    assert_non_null(id);
    return id;
}

// Sends a command and returns its reply status (reply given back if wanted).
static int s_call(client_t *c, const ProtobufCMessage *msg, Cara__Reply **out) {
    Cara__Reply *reply = harness_call(c, msg);
    assert_non_null(reply);
    int status = reply->status;
    if (out)
        *out = reply;
    else
        cara__reply__free_unpacked(reply, NULL);
    return status;
}

static char *s_cohort(client_t *c, const char *type, int a, int b, unsigned capacity) {
    Cara__CreateCohort cmd = CARA__CREATE_COHORT__INIT;
    char da[16], db_[16];
    s_date(a, da);
    s_date(b, db_);
    cmd.cohort_type = (char *)type;
    cmd.town = "Llanelli";
    cmd.capacity = capacity;
    cmd.part_a_date = da;
    cmd.part_b_date = db_;
    Cara__Reply *reply = NULL;
    if (s_call(c, &cmd.base, &reply) != CARA__REPLY__STATUS__OK)
        ti_print_errors(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    Cara__CohortRef *ref = cara__cohort_ref__unpack(NULL, reply->payload.len, reply->payload.data);
    char *id = strdup(ref->cohort_id);
    cara__cohort_ref__free_unpacked(ref, NULL);
    cara__reply__free_unpacked(reply, NULL);
    return id;
}

static int s_book(client_t *c, const char *referral_id, const char *cohort) {
    Cara__BookSeat cmd = CARA__BOOK_SEAT__INIT;
    cmd.referral_id = (char *)referral_id;
    cmd.cohort_id = (char *)(cohort ? cohort : "");
    return s_call(c, &cmd.base, NULL);
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

// Records one part for several cases at once (statuses[i] for ids[i]).
static int s_attendance(const char *cohort, const char *part, char **ids, const char **statuses,
                        size_t n, const char *correction_reason, Cara__Reply **out) {
    Cara__AttendanceEntry e[8], *entries[8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++) {
        cara__attendance_entry__init(&e[i]);
        e[i].referral_id = ids[i];
        e[i].status = (char *)statuses[i];
        entries[i] = &e[i];
    }
    Cara__RecordAttendance cmd = CARA__RECORD_ATTENDANCE__INIT;
    cmd.cohort_id = (char *)cohort;
    cmd.part = (char *)part;
    cmd.entries = entries;
    cmd.n_entries = n;
    cmd.correction_reason = (char *)(correction_reason ? correction_reason : "");
    return s_call(s_p1(), &cmd.base, out);
}

static char *s_value(const char *schema, const char *fmt, const char *a, const char *b) {
    char sql[600];
    snprintf(sql, sizeof sql, fmt, a, b);
    char *v = harness_value(h, schema, sql);
    assert_non_null(v);
    return v;
}

static void s_expect(const char *schema, const char *fmt, const char *a, const char *b,
                     const char *expected) {
    char sql[600];
    snprintf(sql, sizeof sql, fmt, a, b);
    if (harness_wait_value(h, schema, sql, expected, 15000) != 0) {
        char *got = harness_value(h, schema, sql);
        fail_msg("%s: expected %s, got %s", sql, expected, got ? got : "(null)");
    }
}

static Cara__CaseList *s_cases(client_t *c, const char *status, int at_risk) {
    Cara__ListCases cmd = CARA__LIST_CASES__INIT;
    cmd.status = (char *)status;
    cmd.at_risk = at_risk;
    Cara__Reply *reply = NULL;
    assert_int_equal(s_call(c, &cmd.base, &reply), CARA__REPLY__STATUS__OK);
    Cara__CaseList *list = cara__case_list__unpack(NULL, reply->payload.len, reply->payload.data);
    cara__reply__free_unpacked(reply, NULL);
    assert_non_null(list);
    return list;
}

static int s_listed(const Cara__CaseList *list, const char *referral_id) {
    for (size_t i = 0; i < list->n_cases; i++)
        if (strcmp(list->cases[i]->referral_id, referral_id) == 0)
            return 1;
    return 0;
}

// The deadline passes with no place taken: every such case is closed non-compliant, with why:
// never reached, reached and refused, reached but never booked.
static void test_open_cases_past_the_deadline_are_non_compliant(void **state) {
    (void)state;
    char *id = s_case("dyfed-powys", 0);
    char *contacted = s_case("dyfed-powys", 0);
    char *refused = s_case("dyfed-powys", 0);
    Cara__RecordContact contact = CARA__RECORD_CONTACT__INIT;
    contact.referral_id = contacted;
    contact.channel = "letter";
    contact.outcome = "contacted";
    assert_int_equal(s_call(s_p1(), &contact.base, NULL), CARA__REPLY__STATUS__OK);
    contact.referral_id = id;
    contact.channel = "phone";
    contact.outcome = "no_answer";
    assert_int_equal(s_call(s_p1(), &contact.base, NULL), CARA__REPLY__STATUS__OK);
    // Bad input: a field error each.
    contact.channel = "pigeon";
    contact.outcome = "maybe";
    Cara__Reply *reply = NULL;
    assert_int_equal(s_call(s_p1(), &contact.base, &reply), CARA__REPLY__STATUS__INVALID);
    assert_true(ti_has_error(reply, "channel") && ti_has_error(reply, "outcome"));
    cara__reply__free_unpacked(reply, NULL);
    contact.referral_id = refused;
    contact.channel = "phone";
    contact.outcome = "contacted";
    assert_int_equal(s_call(s_p1(), &contact.base, NULL), CARA__REPLY__STATUS__OK);
    contact.outcome = "refused";
    assert_int_equal(s_call(s_p1(), &contact.base, NULL), CARA__REPLY__STATUS__OK);
    // The deadline passes (all three): the service's tick closes them.
    const char *values[] = {id, contacted, refused};
    assert_int_equal(db_exec(harness_db(h, "booking"),
                             "UPDATE provider_case SET compliance_deadline = current_date - 1"
                             " WHERE referral_id IN ($1, $2, $3)",
                             3, values),
                     0);
    s_expect("booking",
             "SELECT status || '/' || close_reason FROM provider_case WHERE referral_id = '%s'%s",
             id, "", "non_compliant/not_contactable");
    s_expect("intake", "SELECT status FROM outcome WHERE referral_id = '%s'%s", id, "",
             "non_compliant");
    s_expect("booking",
             "SELECT status || '/' || close_reason FROM provider_case WHERE referral_id = '%s'%s",
             contacted, "", "non_compliant/not_booked");
    s_expect("booking",
             "SELECT status || '/' || close_reason FROM provider_case WHERE referral_id = '%s'%s",
             refused, "", "non_compliant/refused");
    s_expect("intake", "SELECT status || '/' || reason FROM outcome WHERE referral_id = '%s'%s",
             refused, "", "non_compliant/refused");
    char *audited = s_value("booking",
                            "SELECT count(*) FROM audit WHERE entity_id = '%s'"
                            " AND action = 'non_compliant'%s",
                            id, "");
    assert_string_equal(audited, "1");
    free(audited);
    free(id);
    free(contacted);
    free(refused);
}

static void test_at_risk_list_and_per_force_contact_target(void **state) {
    (void)state;
    char *p1case = s_case("dyfed-powys", 0); // due caution + 14 = today + 12: at risk (13 days)
    char *p2case = s_case("gwent", 0);       // gwent: caution + 7 = today + 5
    char due[16];
    s_date(12, due);
    s_expect("booking", "SELECT first_contact_due FROM provider_case WHERE referral_id = '%s'%s",
             p1case, "", due);
    s_date(5, due);
    s_expect("booking", "SELECT first_contact_due FROM provider_case WHERE referral_id = '%s'%s",
             p2case, "", due);
    Cara__CaseList *risk = s_cases(s_p1(), "", 1);
    assert_true(s_listed(risk, p1case));
    assert_false(s_listed(risk, p2case)); // another provider's case
    cara__case_list__free_unpacked(risk, NULL);
    // p2 uses the default margin (3 days): due in 5 days is not at risk yet.
    risk = s_cases(s_p2(), "", 1);
    assert_false(s_listed(risk, p2case));
    cara__case_list__free_unpacked(risk, NULL);
    // Contacted: off the list.
    Cara__RecordContact contact = CARA__RECORD_CONTACT__INIT;
    contact.referral_id = p1case;
    contact.channel = "phone";
    contact.outcome = "contacted";
    assert_int_equal(s_call(s_p1(), &contact.base, NULL), CARA__REPLY__STATUS__OK);
    risk = s_cases(s_p1(), "", 1);
    assert_false(s_listed(risk, p1case));
    cara__case_list__free_unpacked(risk, NULL);
    // A contact recorded late, but made earlier (yesterday), is the first contact; one dated
    // tomorrow, or before the caution, is refused.
    char when[40];
    contact.at = time_format_iso(time_now_us() - 86400LL * 1000000, when, sizeof when);
    assert_int_equal(s_call(s_p1(), &contact.base, NULL), CARA__REPLY__STATUS__OK);
    s_expect("booking",
             "SELECT (first_contacted_at AT TIME ZONE 'UTC')::date = current_date - 1"
             " FROM provider_case WHERE referral_id = '%s'%s",
             p1case, "", "t");
    Cara__Reply *reply = NULL;
    contact.at = time_format_iso(time_now_us() + 86400LL * 1000000, when, sizeof when);
    assert_int_equal(s_call(s_p1(), &contact.base, &reply), CARA__REPLY__STATUS__INVALID);
    assert_true(ti_has_error(reply, "at"));
    cara__reply__free_unpacked(reply, NULL);
    contact.at = time_format_iso(time_now_us() - 30 * 86400LL * 1000000, when, sizeof when);
    assert_int_equal(s_call(s_p1(), &contact.base, &reply), CARA__REPLY__STATUS__INVALID);
    assert_true(ti_has_error(reply, "at"));
    cara__reply__free_unpacked(reply, NULL);
    contact.at = "";
    // p2 cannot record contact on p1's case.
    assert_int_equal(s_call(s_p2(), &contact.base, NULL), CARA__REPLY__STATUS__NOT_FOUND);
    Cara__ListCases bad = CARA__LIST_CASES__INIT;
    bad.status = "lost";
    assert_int_equal(s_call(s_p1(), &bad.base, NULL), CARA__REPLY__STATUS__INVALID);
    free(p1case);
    free(p2case);
}

static Cara__ShortfallReport *s_shortfall(client_t *c) {
    Cara__Shortfall cmd = CARA__SHORTFALL__INIT;
    Cara__Reply *reply = NULL;
    assert_int_equal(s_call(c, &cmd.base, &reply), CARA__REPLY__STATUS__OK);
    Cara__ShortfallReport *r =
        cara__shortfall_report__unpack(NULL, reply->payload.len, reply->payload.data);
    cara__reply__free_unpacked(reply, NULL);
    assert_non_null(r);
    return r;
}

static void test_shortfall_by_pathway_and_cancel_booking(void **state) {
    (void)state;
    // p2's open cases (gwent) only: three male_intimate with deadlines in 60, 70 and 80 days.
    char *a = s_case("gwent", 60), *b = s_case("gwent", 70), *c = s_case("gwent", 80);
    Cara__ShortfallReport *r = s_shortfall(s_p2());
    assert_int_equal(r->n_pathways, 1);
    assert_string_equal(r->pathways[0]->pathway, "male_intimate");
    uint32_t before = r->pathways[0]->cases;
    assert_true(before >= 3); // earlier tests left open gwent cases too
    cara__shortfall_report__free_unpacked(r, NULL);
    // A two-seat cohort ending in 50 days takes two of them (the most urgent first).
    char *cohort = s_cohort(s_p2(), "male_intimate", 22, 50, 2);
    r = s_shortfall(s_p2());
    assert_int_equal(r->n_pathways, 1);
    assert_int_equal(r->pathways[0]->cases, before - 2);
    assert_int_equal(r->pathways[0]->n_referral_ids, before - 2);
    cara__shortfall_report__free_unpacked(r, NULL);
    // p1 sees none of p2's shortfall.
    r = s_shortfall(s_p1());
    for (size_t i = 0; i < r->n_pathways; i++)
        for (size_t k = 0; k < r->pathways[i]->n_referral_ids; k++)
            assert_string_not_equal(r->pathways[i]->referral_ids[k], a);
    cara__shortfall_report__free_unpacked(r, NULL);
    // Book a, then the provider cancels it: seat free, case open, police back to triaged.
    assert_int_equal(s_book(s_p2(), a, cohort), CARA__REPLY__STATUS__OK);
    s_expect("intake", "SELECT status FROM outcome WHERE referral_id = '%s'%s", a, "", "booked");
    Cara__CancelBooking cancel = CARA__CANCEL_BOOKING__INIT;
    cancel.referral_id = a;
    cancel.reason = "";
    Cara__Reply *reply = NULL;
    assert_int_equal(s_call(s_p2(), &cancel.base, &reply), CARA__REPLY__STATUS__INVALID);
    assert_true(ti_has_error(reply, "reason"));
    cara__reply__free_unpacked(reply, NULL);
    cancel.reason = "moving to a Saturday group";
    assert_int_equal(s_call(s_p1(), &cancel.base, NULL), CARA__REPLY__STATUS__NOT_FOUND);
    assert_int_equal(s_call(s_p2(), &cancel.base, NULL), CARA__REPLY__STATUS__OK);
    assert_int_equal(s_call(s_p2(), &cancel.base, NULL), CARA__REPLY__STATUS__CONFLICT);
    char *seats =
        s_value("booking", "SELECT seats_taken FROM cohort WHERE cohort_id = '%s'%s", cohort, "");
    assert_string_equal(seats, "0");
    free(seats);
    s_expect("booking", "SELECT status FROM provider_case WHERE referral_id = '%s'%s", a, "",
             "open");
    s_expect("intake", "SELECT status FROM outcome WHERE referral_id = '%s'%s", a, "", "triaged");
    // The provider's words stay out of the stream.
    char *leaked = s_value("booking",
                           "SELECT count(*) FROM outbox WHERE position('Saturday' IN"
                           " encode(payload, 'escape')) > 0%s%s",
                           "", "");
    assert_string_equal(leaked, "0");
    free(leaked);
    free(cohort);
    free(a);
    free(b);
    free(c);
}

static void test_bulk_attendance_delivered_and_corrected(void **state) {
    (void)state;
    char *ids[3];
    for (int i = 0; i < 3; i++)
        ids[i] = s_case("dyfed-powys", 0);
    char *cohort = s_cohort(s_p1(), "male_intimate", 3, 31, 5);
    char *later = s_cohort(s_p1(), "male_intimate", 40, 68, 5);
    for (int i = 0; i < 3; i++)
        assert_int_equal(s_book(s_p1(), ids[i], cohort), CARA__REPLY__STATUS__OK);
    const char *all[] = {"attended", "attended", "attended"};
    // Not before the session has taken place.
    Cara__Reply *reply = NULL;
    assert_int_equal(s_attendance(cohort, "A", ids, all, 3, NULL, &reply),
                     CARA__REPLY__STATUS__CONFLICT);
    cara__reply__free_unpacked(reply, NULL);
    s_held(cohort, "A");
    assert_int_equal(s_attendance(cohort, "A", ids, all, 3, NULL, NULL), CARA__REPLY__STATUS__OK);
    s_held(cohort, "B");
    const char *partb[] = {"attended", "attended", "absent"};
    assert_int_equal(s_attendance(cohort, "B", ids, partb, 3, NULL, NULL), CARA__REPLY__STATUS__OK);
    s_expect("booking",
             "SELECT string_agg(status || ':' || delivered_participants || ':' ||"
             " delivered_revision, ',') FROM cohort WHERE cohort_id = '%s'%s",
             cohort, "", "delivered:2:0");
    // The absent one is rebooked (both parts) into the later cohort.
    s_expect("booking",
             "SELECT cohort_id FROM booking JOIN provider_case USING (case_id)"
             " WHERE referral_id = '%s' AND booking.status = 'booked'%s",
             ids[2], "", later);
    // A repeat of the same record changes nothing (no new revision).
    assert_int_equal(s_attendance(cohort, "B", ids, partb, 3, NULL, NULL), CARA__REPLY__STATUS__OK);
    // A change without a reason is refused; with a reason it is applied and audited, the
    // cohort re-reported (revision 1, 3 participants), the rebooking cancelled and the case
    // completed.
    const char *fixed[] = {"attended"};
    assert_int_equal(s_attendance(cohort, "B", &ids[2], fixed, 1, NULL, &reply),
                     CARA__REPLY__STATUS__INVALID);
    assert_true(ti_has_error(reply, "entries[0].referral_id"));
    cara__reply__free_unpacked(reply, NULL);
    assert_int_equal(s_attendance(cohort, "B", &ids[2], fixed, 1, "register misread", NULL),
                     CARA__REPLY__STATUS__OK);
    s_expect("booking",
             "SELECT delivered_participants || ':' || delivered_revision FROM cohort"
             " WHERE cohort_id = '%s'%s",
             cohort, "", "3:1");
    char *events = s_value("booking",
                           "SELECT count(*) FROM outbox WHERE type = 'cara.CohortDelivered'"
                           " AND key = '%s'%s",
                           cohort, "");
    assert_string_equal(events, "2");
    free(events);
    s_expect("booking",
             "SELECT status || '/' || close_reason FROM provider_case WHERE referral_id = '%s'%s",
             ids[2], "", "completed/completed");
    char *seats =
        s_value("booking", "SELECT seats_taken FROM cohort WHERE cohort_id = '%s'%s", later, "");
    assert_string_equal(seats, "0");
    free(seats);
    char *audit = s_value("booking",
                          "SELECT detail->>'reason' FROM audit WHERE entity_id = '%s'"
                          " AND action = 'attendance_corrected'%s",
                          ids[2], "");
    assert_string_equal(audit, "register misread");
    free(audit);
    for (int i = 0; i < 3; i++)
        s_expect("intake", "SELECT status FROM outcome WHERE referral_id = '%s'%s", ids[i], "",
                 "completed");
    // Bad entries: unknown status, a case listed twice, a case not in the cohort.
    char *dup[] = {ids[0], ids[0]};
    const char *bad[] = {"asleep", "attended"};
    assert_int_equal(s_attendance(cohort, "A", dup, bad, 2, NULL, &reply),
                     CARA__REPLY__STATUS__INVALID);
    assert_true(ti_has_error(reply, "entries[0].status"));
    assert_true(ti_has_error(reply, "entries[1].referral_id"));
    cara__reply__free_unpacked(reply, NULL);
    for (int i = 0; i < 3; i++)
        free(ids[i]);
    free(cohort);
    free(later);
}

static void test_cohort_validation(void **state) {
    (void)state;
    Cara__CreateCohort cmd = CARA__CREATE_COHORT__INIT;
    char a[16], b[16], past[16];
    s_date(10, a);
    s_date(15, b); // 5 days: too close for a group
    s_date(-1, past);
    cmd.cohort_type = "mixed";
    cmd.town = "";
    cmd.capacity = 13;
    cmd.part_a_date = a;
    cmd.part_b_date = b;
    Cara__Reply *reply = NULL;
    assert_int_equal(s_call(s_p1(), &cmd.base, &reply), CARA__REPLY__STATUS__INVALID);
    assert_true(ti_has_error(reply, "cohort_type") && ti_has_error(reply, "town") &&
                ti_has_error(reply, "capacity"));
    cara__reply__free_unpacked(reply, NULL);
    cmd.cohort_type = "female_intimate";
    cmd.town = "Aberystwyth";
    cmd.capacity = 0; // default
    assert_int_equal(s_call(s_p1(), &cmd.base, &reply), CARA__REPLY__STATUS__INVALID);
    assert_true(ti_has_error(reply, "part_b_date"));
    cara__reply__free_unpacked(reply, NULL);
    cmd.part_a_date = past;
    assert_int_equal(s_call(s_p1(), &cmd.base, &reply), CARA__REPLY__STATUS__INVALID);
    assert_true(ti_has_error(reply, "part_a_date"));
    cara__reply__free_unpacked(reply, NULL);
    // A telephone intervention: two calls a week apart are fine.
    cmd.cohort_type = "telephone";
    cmd.part_a_date = a;
    assert_int_equal(s_call(s_p1(), &cmd.base, &reply), CARA__REPLY__STATUS__OK);
    Cara__CohortRef *ref = cara__cohort_ref__unpack(NULL, reply->payload.len, reply->payload.data);
    char *cap = s_value("booking", "SELECT capacity FROM cohort WHERE cohort_id = '%s'%s",
                        ref->cohort_id, "");
    assert_string_equal(cap, "12"); // the default
    free(cap);
    cara__cohort_ref__free_unpacked(ref, NULL);
    cara__reply__free_unpacked(reply, NULL);
    // A provider's lower maximum holds, and is its default.
    cmd.capacity = 11;
    assert_int_equal(s_call(s_p2(), &cmd.base, &reply), CARA__REPLY__STATUS__INVALID);
    assert_true(ti_has_error(reply, "capacity"));
    cara__reply__free_unpacked(reply, NULL);
    cmd.capacity = 0;
    assert_int_equal(s_call(s_p2(), &cmd.base, &reply), CARA__REPLY__STATUS__OK);
    ref = cara__cohort_ref__unpack(NULL, reply->payload.len, reply->payload.data);
    cap = s_value("booking", "SELECT capacity FROM cohort WHERE cohort_id = '%s'%s", ref->cohort_id,
                  "");
    assert_string_equal(cap, "10");
    free(cap);
    // The schema holds 12 too, for a new cohort and a capacity changed.
    db_t *db = harness_db(h, "booking");
    const char *insert = "INSERT INTO cohort (provider_id, cohort_type, town, capacity,"
                         " part_a_date, part_b_date) VALUES ('p1', 'telephone', 'Rhyl', $1,"
                         " current_date + 3, current_date + 10)";
    const char *update = "UPDATE cohort SET capacity = $2 WHERE cohort_id = $1";
    const char *twelve[] = {"12"}, *thirteen[] = {"13"};
    const char *to12[] = {ref->cohort_id, "12"}, *to13[] = {ref->cohort_id, "13"};
    assert_int_equal(db_exec(db, insert, 1, twelve), 0);
    assert_int_not_equal(db_exec(db, insert, 1, thirteen), 0);
    assert_int_equal(db_exec(db, update, 2, to12), 0);
    assert_int_not_equal(db_exec(db, update, 2, to13), 0);
    cara__cohort_ref__free_unpacked(ref, NULL);
    cara__reply__free_unpacked(reply, NULL);
    // Other roles may not.
    assert_int_equal(s_call(harness_client(h, "booking", "police", "dyfed-powys"), &cmd.base, NULL),
                     CARA__REPLY__STATUS__FORBIDDEN);
}

static void test_victim_contact_kept_apart(void **state) {
    (void)state;
    char *id = s_case("dyfed-powys", 0);
    Cara__RecordVictimContact v = CARA__RECORD_VICTIM_CONTACT__INIT;
    v.referral_id = id;
    v.kind = "offer";
    v.notes = "offered support by phone";
    assert_int_equal(s_call(s_vc("p1"), &v.base, NULL), CARA__REPLY__STATUS__OK);
    v.kind = "safety_concern";
    v.notes = "victim-secret-note: new address disclosed";
    assert_int_equal(s_call(s_vc("p1"), &v.base, NULL), CARA__REPLY__STATUS__OK);
    v.kind = "gossip";
    assert_int_equal(s_call(s_vc("p1"), &v.base, NULL), CARA__REPLY__STATUS__INVALID);
    // Another provider cannot record or read it.
    v.kind = "attempt";
    assert_int_equal(s_call(s_vc("p2"), &v.base, NULL), CARA__REPLY__STATUS__NOT_FOUND);
    Cara__ListVictimContacts list = CARA__LIST_VICTIM_CONTACTS__INIT;
    list.referral_id = id;
    assert_int_equal(s_call(s_vc("p2"), &list.base, NULL), CARA__REPLY__STATUS__NOT_FOUND);
    Cara__Reply *reply = NULL;
    // The provider's case workers cannot read or record victim contact, even on their own case.
    assert_int_equal(s_call(s_p1(), &list.base, NULL), CARA__REPLY__STATUS__FORBIDDEN);
    assert_int_equal(s_call(s_p1(), &v.base, NULL), CARA__REPLY__STATUS__FORBIDDEN);
    assert_int_equal(s_call(s_vc("p1"), &list.base, &reply), CARA__REPLY__STATUS__OK);
    Cara__VictimContactList *got =
        cara__victim_contact_list__unpack(NULL, reply->payload.len, reply->payload.data);
    cara__reply__free_unpacked(reply, NULL);
    assert_int_equal(got->n_contacts, 2);
    assert_string_equal(got->contacts[1]->kind, "safety_concern");
    assert_true(got->contacts[1]->safety_concern);
    assert_non_null(strstr(got->contacts[1]->notes, "victim-secret-note"));
    // ... with the victim's contact details as the police gave them.
    assert_non_null(got->victim);
    assert_string_equal(got->victim->name, "Sian Pryce");
    assert_string_equal(got->victim->phone, "07700 900456");
    assert_true(got->victim->consents_to_contact);
    cara__victim_contact_list__free_unpacked(got, NULL);
    // The stream flags the concern and says nothing else.
    s_expect(
        "booking",
        "SELECT count(*) FROM outbox WHERE type = 'cara.VictimContactRecorded' AND key = '%s'%s",
        id, "", "2");
    char *leaked = s_value("booking",
                           "SELECT count(*) FROM outbox WHERE position('victim-secret' IN"
                           " encode(payload, 'escape')) > 0%s%s",
                           "", "");
    assert_string_equal(leaked, "0");
    free(leaked);
    int status;
    Cara__Batch *batch = harness_fetch(s_p1(), "booking", 0, 5000, &status);
    assert_non_null(batch);
    int flagged = 0;
    for (size_t i = 0; i < batch->n_events; i++) {
        Cara__Envelope *e =
            envelope_unpack(batch->events[i]->envelope.data, batch->events[i]->envelope.len);
        assert_non_null(e);
        if (strcmp(e->type, "cara.VictimContactRecorded") == 0) {
            Cara__VictimContactRecorded *m = (Cara__VictimContactRecorded *)envelope_payload(
                e, &cara__victim_contact_recorded__descriptor);
            assert_non_null(m);
            if (strcmp(m->referral_id, id) == 0 && m->safety_concern)
                flagged++;
            cara__victim_contact_recorded__free_unpacked(m, NULL);
        }
        cara__envelope__free_unpacked(e, NULL);
    }
    assert_int_equal(flagged, 1);
    cara__batch__free_unpacked(batch, NULL);
    // Cohort lists carry case ids only.
    Cara__ListCohorts lc = CARA__LIST_COHORTS__INIT;
    assert_int_equal(s_call(s_p1(), &lc.base, &reply), CARA__REPLY__STATUS__OK);
    assert_null(memmem(reply->payload.data, reply->payload.len, "victim-secret", 13));
    assert_null(memmem(reply->payload.data, reply->payload.len, "Sian", 4));
    assert_null(memmem(reply->payload.data, reply->payload.len, "07700 900456", 12));
    cara__reply__free_unpacked(reply, NULL);
    free(id);
}

static void test_provider_isolation_and_catch_up(void **state) {
    (void)state;
    char *mine = s_case("dyfed-powys", 0); // p1
    char *theirs = s_case("gwent", 0);     // p2
    char *c1 = s_cohort(s_p1(), "male_intimate", 9, 37, 4);
    // p2 cannot book p1's case, nor its own case into p1's cohort, nor cancel p1's cohort.
    assert_int_equal(s_book(s_p2(), mine, c1), CARA__REPLY__STATUS__NOT_FOUND);
    assert_int_equal(s_book(s_p2(), theirs, c1), CARA__REPLY__STATUS__CONFLICT);
    Cara__CancelCohort cancel = CARA__CANCEL_COHORT__INIT;
    cancel.cohort_id = c1;
    cancel.reason = "not yours";
    assert_int_equal(s_call(s_p2(), &cancel.base, NULL), CARA__REPLY__STATUS__NOT_FOUND);
    // p1 attendance for p2's case: refused per entry.
    s_held(c1, "A");
    char *who[] = {theirs};
    const char *st[] = {"attended"};
    Cara__Reply *reply = NULL;
    assert_int_equal(s_attendance(c1, "A", who, st, 1, NULL, &reply), CARA__REPLY__STATUS__INVALID);
    cara__reply__free_unpacked(reply, NULL);
    // A provider system reads its stream, goes away, and catches up exactly from its cursor.
    int status;
    Cara__Batch *first = harness_fetch(s_p1(), "booking", 0, 100000, &status);
    assert_non_null(first);
    assert_true(first->n_events > 0);
    uint64_t cursor = first->events[first->n_events - 1]->seq;
    cara__batch__free_unpacked(first, NULL);
    char *c2 = s_cohort(s_p1(), "male_intimate", 12, 40, 4);             // p1: CohortCreated
    assert_int_equal(s_book(s_p1(), mine, c2), CARA__REPLY__STATUS__OK); // p1: SeatBooked
    char *c3 = s_cohort(s_p2(), "male_intimate", 12, 40, 4);             // p2 only
    assert_int_equal(s_book(s_p2(), theirs, c3), CARA__REPLY__STATUS__OK);
    Cara__Batch *missed = harness_fetch(s_p1(), "booking", cursor, 100000, &status);
    assert_non_null(missed);
    assert_int_equal(missed->n_events, 2);
    for (size_t i = 0; i < missed->n_events; i++) {
        assert_true(missed->events[i]->seq > cursor);
        Cara__Envelope *e =
            envelope_unpack(missed->events[i]->envelope.data, missed->events[i]->envelope.len);
        assert_non_null(e);
        assert_string_equal(e->type, i == 0 ? "cara.CohortCreated" : "cara.SeatBooked");
        cara__envelope__free_unpacked(e, NULL);
    }
    cara__batch__free_unpacked(missed, NULL);
    // Services read everything; police and Hampton Trust nothing.
    Cara__Batch *all = harness_fetch(harness_client(h, "booking", "service", "billing"), "booking",
                                     0, 100000, &status);
    assert_non_null(all);
    cara__batch__free_unpacked(all, NULL);
    assert_null(harness_fetch(harness_client(h, "booking", "hampton_trust", "ht"), "booking", 0, 10,
                              &status));
    assert_int_equal(status, CARA__REPLY__STATUS__FORBIDDEN);
    free(c1);
    free(c2);
    free(c3);
    free(mine);
    free(theirs);
}

static void test_amended_deadline_moves_the_booking(void **state) {
    (void)state;
    char *id = s_case("dyfed-powys", 0);
    char ref[32];
    snprintf(ref, sizeof ref, "BO-%d-%d", getpid(), s_ref); // the reference s_case used
    char *late = s_cohort(s_p1(), "male_intimate", 30, 58, 4);
    char *early = s_cohort(s_p1(), "male_intimate", 5, 33, 4);
    assert_int_equal(s_book(s_p1(), id, late), CARA__REPLY__STATUS__OK);
    // The police amend the deadline to 40 days from now: the booked cohort ends too late.
    char when[40], deadline[16];
    Cara__Referral *r = ti_referral("dyfed-powys", ref);
    ti_set(&r->caution->given_at,
           time_format_iso(time_now_us() - 2LL * 86400 * 1000000, when, sizeof when));
    s_date(40, deadline);
    ti_set(&r->caution->compliance_deadline, deadline);
    Cara__AmendReferral amend = CARA__AMEND_REFERRAL__INIT;
    amend.referral_id = id;
    amend.reason = "deadline corrected";
    amend.referral = r;
    Cara__Reply *reply = NULL;
    if (s_call(harness_client(h, "intake", "police", "dyfed-powys"), &amend.base, &reply) !=
        CARA__REPLY__STATUS__OK)
        ti_print_errors(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    cara__reply__free_unpacked(reply, NULL);
    cara__referral__free_unpacked(r, NULL);
    s_expect("booking", "SELECT compliance_deadline FROM provider_case WHERE referral_id = '%s'%s",
             id, "", deadline);
    s_expect("booking",
             "SELECT cohort_id FROM booking JOIN provider_case USING (case_id)"
             " WHERE referral_id = '%s' AND booking.status = 'booked'%s",
             id, "", early);
    s_expect("booking", "SELECT seats_taken FROM cohort WHERE cohort_id = '%s'%s", late, "", "0");
    s_expect("booking",
             "SELECT count(*) FROM audit WHERE entity_id = '%s' AND action = 'amended'%s", id, "",
             "1");
    free(late);
    free(early);
    free(id);
}

// A Part A absence corrected to attended brings back the booking the absence ended: the
// rebooking it triggered is cancelled (its seat freed), the original booking is live again and
// the police see the original dates and Part A attended. A correction whose rebooking already
// has attendance is refused.
static void test_part_a_correction_restores_the_original_booking(void **state) {
    (void)state;
    char *ids[2] = {s_case("dyfed-powys", 0), s_case("dyfed-powys", 0)};
    char *orig = s_cohort(s_p1(), "male_intimate", 5, 33, 4);
    char *spare = s_cohort(s_p1(), "male_intimate", 45, 73, 4);
    for (int i = 0; i < 2; i++)
        assert_int_equal(s_book(s_p1(), ids[i], orig), CARA__REPLY__STATUS__OK);
    s_held(orig, "A");
    const char *absent[] = {"absent", "absent"};
    assert_int_equal(s_attendance(orig, "A", ids, absent, 2, NULL, NULL), CARA__REPLY__STATUS__OK);
    // Both rebooked elsewhere; the original bookings ended as missed.
    for (int i = 0; i < 2; i++)
        s_expect("booking",
                 "SELECT count(*) FROM booking JOIN provider_case USING (case_id)"
                 " WHERE referral_id = '%s' AND booking.status = 'booked' AND cohort_id <> '%s'",
                 ids[i], orig, "1");
    char *replacement = s_value("booking",
                                "SELECT cohort_id FROM booking JOIN provider_case USING (case_id)"
                                " WHERE referral_id = '%s' AND booking.status = 'booked'%s",
                                ids[0], "");
    char *seats_before = s_value(
        "booking", "SELECT seats_taken FROM cohort WHERE cohort_id = '%s'%s", replacement, "");
    char sql[300];
    snprintf(sql, sizeof sql, "SELECT status FROM outcome WHERE referral_id = '%s'", ids[0]);
    assert_int_equal(harness_wait_value(h, "intake", sql, "booked", 15000), 0);

    // The second one's rebooking has its Part A recorded: its original cannot come back.
    char *other = s_value("booking",
                          "SELECT cohort_id FROM booking JOIN provider_case USING (case_id)"
                          " WHERE referral_id = '%s' AND booking.status = 'booked'%s",
                          ids[1], "");
    assert_int_equal(db_exec(harness_db(h, "booking"),
                             "UPDATE booking SET part_a = 'attended' WHERE status = 'booked'"
                             " AND case_id = (SELECT case_id FROM provider_case"
                             " WHERE referral_id = $1)",
                             1, (const char *[]){ids[1]}),
                     0);
    const char *attended[] = {"attended"};
    Cara__Reply *reply = NULL;
    assert_int_equal(s_attendance(orig, "A", &ids[1], attended, 1, "register misread", &reply),
                     CARA__REPLY__STATUS__INVALID);
    assert_true(ti_has_error(reply, "entries[0].referral_id"));
    cara__reply__free_unpacked(reply, NULL);

    // The first one: corrected with a reason.
    assert_int_equal(s_attendance(orig, "A", &ids[0], attended, 1, "register misread", NULL),
                     CARA__REPLY__STATUS__OK);
    s_expect("booking",
             "SELECT string_agg(b.status || ':' || coalesce(part_a, '-'), ',' ORDER BY booked_at)"
             " FROM booking b JOIN provider_case p USING (case_id) WHERE referral_id = '%s'%s",
             ids[0], "", "booked:attended,cancelled:-");
    char want[120];
    snprintf(want, sizeof want, "%s:booked", orig);
    s_expect("booking",
             "SELECT cohort_id::text || ':' || p.status FROM booking b JOIN provider_case p"
             " USING (case_id) WHERE referral_id = '%s' AND b.status = 'booked'%s",
             ids[0], "", want);
    snprintf(want, sizeof want, "%d", atoi(seats_before) - 1);
    s_expect("booking", "SELECT seats_taken FROM cohort WHERE cohort_id = '%s'%s", replacement, "",
             want);
    s_expect("booking",
             "SELECT string_agg(type, ',' ORDER BY seq) FROM (SELECT seq, type FROM outbox"
             " WHERE key = '%s' ORDER BY seq DESC LIMIT 3) x%s",
             ids[0], "", "cara.BookingCancelled,cara.SeatBooked,cara.AttendanceRecorded");
    s_expect("booking",
             "SELECT count(*) FROM audit WHERE action = 'booking_restored' AND entity_id = '%s'%s",
             ids[0], "", "1");
    // The police: Part A attended, on the original dates.
    char *dates = s_value("booking",
                          "SELECT part_a_date || '/' || part_b_date FROM cohort"
                          " WHERE cohort_id = '%s'%s",
                          orig, "");
    snprintf(want, sizeof want, "attended_part_a %s", dates);
    s_expect("intake",
             "SELECT status || ' ' || part_a_date || '/' || part_b_date FROM outcome"
             " WHERE referral_id = '%s'%s",
             ids[0], "", want);
    // Part B of the original booking then completes the case.
    s_held(orig, "B");
    assert_int_equal(s_attendance(orig, "B", &ids[0], attended, 1, NULL, NULL),
                     CARA__REPLY__STATUS__OK);
    s_expect("intake", "SELECT status FROM outcome WHERE referral_id = '%s'%s", ids[0], "",
             "completed");
    free(dates);
    free(other);
    free(seats_before);
    free(replacement);
    free(spare);
    free(orig);
    free(ids[0]);
    free(ids[1]);
}

// A Part A absence that closed the case (no later cohort before the deadline) corrected to
// attended: the case is reopened (CaseReopened, audited), the original booking is live again,
// the police read booked then Part A attended on the original dates, and Part B completes it.
static void test_part_a_correction_reopens_a_non_compliant_case(void **state) {
    (void)state;
    // Deadline in 31 days: no other cohort of this file's tests ends before it.
    char *id = s_case("dyfed-powys", 31);
    char *orig = s_cohort(s_p1(), "male_intimate", 2, 30, 2);
    assert_int_equal(s_book(s_p1(), id, orig), CARA__REPLY__STATUS__OK);
    s_held(orig, "A");
    const char *absent[] = {"absent"}, *attended[] = {"attended"};
    assert_int_equal(s_attendance(orig, "A", &id, absent, 1, NULL, NULL), CARA__REPLY__STATUS__OK);
    s_expect("booking",
             "SELECT status || ':' || close_reason FROM provider_case"
             " WHERE referral_id = '%s'%s",
             id, "", "non_compliant:did_not_attend");
    s_expect("intake", "SELECT status FROM outcome WHERE referral_id = '%s'%s", id, "",
             "non_compliant");
    assert_int_equal(s_attendance(orig, "A", &id, attended, 1, "register misread", NULL),
                     CARA__REPLY__STATUS__OK);
    s_expect("booking",
             "SELECT p.status || ':' || coalesce(close_reason, '-') || ':' || b.status"
             " FROM provider_case p JOIN booking b USING (case_id) WHERE referral_id = '%s'%s",
             id, "", "booked:-:booked");
    s_expect("booking",
             "SELECT string_agg(type, ',' ORDER BY seq) FROM (SELECT seq, type FROM outbox"
             " WHERE key = '%s' ORDER BY seq DESC LIMIT 3) x%s",
             id, "", "cara.CaseReopened,cara.SeatBooked,cara.AttendanceRecorded");
    s_expect("booking",
             "SELECT count(*) FROM audit WHERE action = 'case_reopened' AND entity_id = '%s'%s", id,
             "", "1");
    char *dates = s_value("booking",
                          "SELECT part_a_date || '/' || part_b_date FROM cohort"
                          " WHERE cohort_id = '%s'%s",
                          orig, "");
    char want[80];
    snprintf(want, sizeof want, "attended_part_a  %s", dates);
    s_expect("intake",
             "SELECT status || ' ' || reason || ' ' || part_a_date || '/' || part_b_date"
             " FROM outcome WHERE referral_id = '%s'%s",
             id, "", want);
    s_held(orig, "B");
    assert_int_equal(s_attendance(orig, "B", &id, attended, 1, NULL, NULL),
                     CARA__REPLY__STATUS__OK);
    s_expect("intake", "SELECT status FROM outcome WHERE referral_id = '%s'%s", id, "",
             "completed");
    free(dates);
    free(orig);
    free(id);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_cases_past_the_deadline_are_non_compliant),
        cmocka_unit_test(test_at_risk_list_and_per_force_contact_target),
        cmocka_unit_test(test_shortfall_by_pathway_and_cancel_booking),
        cmocka_unit_test(test_bulk_attendance_delivered_and_corrected),
        cmocka_unit_test(test_cohort_validation),
        cmocka_unit_test(test_victim_contact_kept_apart),
        cmocka_unit_test(test_provider_isolation_and_catch_up),
        cmocka_unit_test(test_amended_deadline_moves_the_booking),
        cmocka_unit_test(test_part_a_correction_restores_the_original_booking),
        cmocka_unit_test(test_part_a_correction_reopens_a_non_compliant_case),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
