// Data protection: a realistic run through all five services (referrals submitted, one refused
// for bad fields, one amended, one withdrawn, contact and victim contact recorded, cases booked,
// both parts attended, cohorts delivered and invoiced, national facts built; then a return and a
// pathway override by triage staff, a cohort cancelled and an attendance corrected by the
// provider, each with free text, and a referral carrying a field of a newer schema) with
// distinctive personal data: no service log line holds any of it, no row of any table in the
// billing or national schemas does, and no event of the streams national and billing are served
// (intake's, triage's and booking's as service:national, booking's as service:billing) does.
// The same scans find it in intake's schema and in the operators' view of each stream (so the
// scans can fail), except the victims' details: no operator's view of the intake or triage
// stream holds any victim's name, phone or address (victim contact details go to the
// provider's victim_contact only), and booking's view of triage's stream holds none of a victim
// who does not consent to contact, even after an amendment changed them (their old and new
// values).
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "billing.pb-c.h"
#include "booking.pb-c.h"
#include "cara/envelope.h"
#include "cara/timeutil.h"
#include "national.pb-c.h"
#include "test_intake_support.h"
#include "triage.pb-c.h"

#define CASES 6
#define SECRET "pii-test-deployment-secret-0123456789"

// Personal data of the run. Each pattern is text that no id, hash, pseudonym, time or count can
// contain (letters outside a-f, or a date of birth/phone written as people write them), and is
// matched case-insensitively.
static const char *const s_pii[] = {
    "Quillfeather",
    "Thaddeus",
    "Zephyrine",
    "Vexley",
    "Marigold",
    "1961-11-05",
    "1974-02-19",
    "7700 900871",
    "7700900871",
    "7700 900872",
    "7700900872",
    "7700 900873",
    "7700900873",
    "Cwm Tawelwch",
    "SA71 9ZZ",
    "zq.pii-test@",
    "Llanfrothen",
    "Okonkwo",
    "stammer",
    "Brynhyfryd",
    // Free text of staff and a field this build does not know (one planted each, see below).
    "Penrhiwceiber",
    "Llanwrtyd",
    "Cwmystwyth",
    "Ysbyty Gwynedd",
    "943 476 5919",
    // A victim who does not consent to contact, before and after the police amend her details.
    "Gwenllian Tregaron",
    "7700 900874",
    "7700900874",
    "7700 900875",
    "7700900875",
    "Tyddyn Heulog",
    "Hafod Uchaf",
};
// The victims' details among them (the consenting victims' phone, then the one who does not
// consent): on no operator's view of the intake and triage streams.
static const char *const s_victim[] = {"7700 900873",   "7700900873",  "7700 900874",
                                       "7700900874",    "7700 900875", "7700900875",
                                       "Tyddyn Heulog", "Hafod Uchaf", "Gwenllian Tregaron"};
// Those of the victim who does not consent: not on booking's view of the triage stream either.
#define NO_CONSENT_FROM 2
#define VICTIM_N (sizeof s_victim / sizeof *s_victim)
#define PII_N (sizeof s_pii / sizeof *s_pii)
// The same as one PostgreSQL regular expression (none holds a metacharacter but '.' and '@').
static char s_regex[2048];

static harness_t *h;
static int32_t today;

static int setup(void **state) {
    (void)state;
    h = harness_new("pii");
    if (!h)
        return -1;
    today = (int32_t)(time_now_us() / 1000000 / 86400);
    ti_route(h, 0);
    harness_config(h, "intake", "pseudonym_secret", "\"" SECRET "\"");
    harness_config(h, "national", "pseudonym_secret", "\"" SECRET "\"");
    const char *all[] = {"intake", "triage", "booking", "billing", "national"};
    for (int i = 0; i < 5; i++)
        if (harness_start(h, all[i]) != 0)
            return -1;
    size_t n = 0;
    for (size_t i = 0; i < PII_N; i++)
        n += (size_t)snprintf(s_regex + n, sizeof s_regex - n, "%s%s", i ? "|" : "", s_pii[i]);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    harness_destroy(&h);
    return 0;
}

static void s_ok(client_t *c, const ProtobufCMessage *msg, ProtobufCBinaryData *payload) {
    Cara__Reply *reply = harness_call(c, msg);
    assert_non_null(reply);
    if (reply->status != CARA__REPLY__STATUS__OK) {
        fprintf(stderr, "%s: status %d\n", msg->descriptor->name, reply->status);
        ti_print_errors(reply);
    }
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    if (payload) {
        payload->data = malloc(reply->payload.len + 1);
        memcpy(payload->data, reply->payload.data, reply->payload.len);
        payload->len = reply->payload.len;
    }
    cara__reply__free_unpacked(reply, NULL);
}

// The i-th referral, full of the run's personal data.
static Cara__Referral *s_referral(int i) {
    char ref[32], when[40], phone[24];
    snprintf(ref, sizeof ref, "PII-%d-%d", getpid(), i);
    Cara__Referral *r = ti_referral("dyfed-powys", ref);
    assert_non_null(r);
    ti_set(&r->caution->given_at,
           time_format_iso(time_now_us() - 3LL * 86400 * 1000000, when, sizeof when));
    ti_set(&r->officer, "PC 9911 Ifeoma Okonkwo, Llanfrothen station");
    ti_set(&r->offender->name, i % 2 ? "Thaddeus Quillfeather" : "Zephyrine Quillfeather");
    ti_set(&r->offender->date_of_birth, i % 2 ? "1961-11-05" : "1974-02-19");
    ti_set(&r->offender->address, "4 Cwm Tawelwch, Brynhyfryd, SA71 9ZZ");
    snprintf(phone, sizeof phone, "07700 90087%d", 1 + i % 2);
    ti_set(&r->offender->phone, phone);
    ti_set(&r->offender->email, "zq.pii-test@example.org");
    ti_set(&r->offender->access_needs, "Has a stammer; allow extra time on the phone.");
    ti_set(&r->risk->safeguarding_notes, "Marigold Vexley's children stay at Brynhyfryd.");
    ti_set(&r->victim->name, "Marigold Vexley");
    ti_set(&r->victim->phone, "07700 900873");
    ti_set(&r->victim->safe_contact_times, "Ring Marigold after 6pm at Cwm Tawelwch");
    return r;
}

static char *s_date(int offset) {
    char *buf = malloc(16);
    time_format_date(today + offset, buf, 16);
    return buf;
}

// Moves a cohort so that `part` is held today (time passes), as tests/integration do.
static void s_held(const char *cohort, const char *part) {
    const char *values[] = {cohort};
    assert_int_equal(db_exec(harness_db(h, "booking"),
                             strcmp(part, "A") == 0
                                 ? "UPDATE cohort SET part_b_date = part_b_date - (part_a_date -"
                                   " current_date), part_a_date = current_date"
                                   " WHERE cohort_id = $1 AND part_a_date > current_date"
                                 : "UPDATE cohort SET part_a_date = part_a_date - (part_b_date -"
                                   " current_date), part_b_date = current_date"
                                   " WHERE cohort_id = $1 AND part_b_date > current_date",
                             1, values),
                     0);
}

// Counts rows of every table of schema in which any column (bytea too: stored protobuf events
// and replies, read as escaped text) matches the run's personal data. verbose: name them.
static long s_rows_with_pii(const char *schema, int verbose, long *tables, long *rows) {
    char sql[2400];
    snprintf(sql, sizeof sql,
             "SELECT string_agg(table_name, ' ' ORDER BY table_name) FROM"
             " information_schema.tables WHERE table_schema = '%s' AND table_type = 'BASE TABLE'",
             schema);
    char *names = harness_value(h, schema, sql);
    assert_non_null(names);
    long hits = 0;
    char *save = NULL;
    for (char *t = strtok_r(names, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        snprintf(sql, sizeof sql,
                 "SELECT 'concat_ws('' '', ' || string_agg(CASE WHEN data_type = 'bytea' THEN"
                 " format('encode(%%I, ''escape'')', column_name) ELSE format('%%I::text',"
                 " column_name) END, ', ' ORDER BY ordinal_position) || ')' FROM"
                 " information_schema.columns WHERE table_schema = '%s' AND table_name = '%s'",
                 schema, t);
        char *text = harness_value(h, schema, sql);
        assert_non_null(text);
        snprintf(sql, sizeof sql,
                 "SELECT count(*) || ' ' || count(*) FILTER (WHERE %s ~* '%s') FROM %s.%s", text,
                 s_regex, schema, t);
        free(text);
        char *v = harness_value(h, schema, sql);
        assert_non_null(v);
        long all = 0, bad = 0;
        assert_int_equal(sscanf(v, "%ld %ld", &all, &bad), 2);
        if (bad && verbose)
            fprintf(stderr, "personal data in %s.%s: %ld of %ld rows\n", schema, t, bad, all);
        hits += bad;
        *rows += all;
        (*tables)++;
        free(v);
    }
    free(names);
    return hits;
}

// Whether needle occurs in the n bytes at data, ignoring ASCII case.
static int s_bytes_have(const uint8_t *data, size_t n, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (strncasecmp((const char *)data + i, needle, k) == 0)
            return 1;
    return 0;
}

// Fetches the whole stream of service as role:org and counts, per pattern of the run's personal
// data, the events whose envelope (payload included) holds it. verbose: names each hit. Returns
// the number of events served.
static long s_stream_hits(const char *service, const char *role, const char *org, int verbose,
                          long hits[PII_N]) {
    client_t *c = harness_client(h, service, role, org);
    assert_non_null(c);
    memset(hits, 0, PII_N * sizeof *hits);
    long events = 0;
    for (uint64_t after = 0;;) {
        int status = 0;
        Cara__Batch *b = harness_fetch(c, service, after, 1000, &status);
        if (!b)
            fprintf(stderr, "%s stream as %s:%s: status %d\n", service, role, org, status);
        assert_non_null(b);
        for (size_t i = 0; i < b->n_events; i++) {
            const ProtobufCBinaryData *e = &b->events[i]->envelope;
            events++;
            for (size_t k = 0; k < PII_N; k++) {
                if (!s_bytes_have(e->data, e->len, s_pii[k]))
                    continue;
                hits[k]++;
                if (verbose) {
                    Cara__Envelope *env = envelope_unpack(e->data, e->len);
                    fprintf(stderr, "personal data (%s) on the %s stream served to %s:%s: %s\n",
                            s_pii[k], service, role, org, env ? env->type : "?");
                    if (env)
                        cara__envelope__free_unpacked(env, NULL);
                }
            }
        }
        uint64_t last = b->last, head = b->head;
        cara__batch__free_unpacked(b, NULL);
        if (last <= after || last >= head)
            break;
        after = last;
    }
    return events;
}

static long s_sum(const long hits[PII_N]) {
    long n = 0;
    for (size_t k = 0; k < PII_N; k++)
        n += hits[k];
    return n;
}

// The count of events holding pattern p on a stream (hits as s_stream_hits filled them).
static long s_hits_of(const long hits[PII_N], const char *p) {
    for (size_t k = 0; k < PII_N; k++)
        if (strcmp(s_pii[k], p) == 0)
            return hits[k];
    fail_msg("no pattern %s", p);
    return 0;
}

// Submits a referral that triage leaves for a person (previous DA not known); returns its id.
static char *s_submit_for_review(client_t *police, int i, const char *unknown_field) {
    Cara__Referral *r = s_referral(i);
    ti_set(&r->risk->previous_da, "not_known");
    // A newer police schema's offender field (number 99, an NHS number) this build does not
    // know: protobuf-c keeps it through unpacking and packs it again.
    uint8_t data[64];
    ProtobufCMessageUnknownField unknown = {99, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED, 0, data};
    if (unknown_field) {
        size_t n = strlen(unknown_field);
        assert_true(n < sizeof data - 1);
        data[0] = (uint8_t)n;
        memcpy(data + 1, unknown_field, n);
        unknown.len = n + 1;
        r->offender->base.n_unknown_fields = 1;
        r->offender->base.unknown_fields = &unknown;
    }
    Cara__SubmitReferral cmd = CARA__SUBMIT_REFERRAL__INIT;
    cmd.referral = r;
    ProtobufCBinaryData out;
    s_ok(police, &cmd.base, &out);
    r->offender->base.n_unknown_fields = 0;
    r->offender->base.unknown_fields = NULL;
    cara__referral__free_unpacked(r, NULL);
    Cara__ReferralAccepted *ok = cara__referral_accepted__unpack(NULL, out.len, out.data);
    assert_non_null(ok);
    char *id = strdup(ok->referral_id);
    cara__referral_accepted__free_unpacked(ok, NULL);
    free(out.data);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT status FROM triage_case WHERE referral_id = '%s'", id);
    assert_int_equal(harness_wait_value(h, "triage", sql, "awaiting_decision", 20000), 0);
    return id;
}

static void test_no_personal_data_in_logs_billing_or_national(void **state) {
    (void)state;
    client_t *police = harness_client(h, "intake", "police", "dyfed-powys");
    client_t *p1 = harness_client(h, "booking", "provider", "p1");
    client_t *finance = harness_client(h, "billing", "finance", "p1");
    // Billing's contract for p1, so that deliveries become billable lines.
    Cara__Contract contract = CARA__CONTRACT__INIT;
    contract.contract_id = "PII-1";
    contract.commissioner = "opcc-dyfed-powys";
    contract.provider_id = "p1";
    contract.licence_holder = "hampton-trust";
    char *start = s_date(-400), *end = s_date(400);
    contract.starts_on = start;
    contract.ends_on = end;
    contract.cohort_fee_pence = 250000;
    contract.victim_liaison_pence = 50000;
    contract.licence_fee_pence_per_cohort = 45000;
    contract.delivery_cap_pence = 6000000;
    contract.offender_cap = 200;
    contract.mobilisation_cap_pence = 3376000;
    contract.max_facilitators = 12;
    Cara__AddContract add = CARA__ADD_CONTRACT__INIT;
    add.contract = &contract;
    s_ok(harness_client(h, "billing", "finance", "opcc-dyfed-powys"), &add.base, NULL);

    // Referrals: CASES accepted, one refused for its fields (kept with its errors by intake).
    char *ids[CASES];
    for (int i = 0; i < CASES; i++) {
        Cara__Referral *r = s_referral(i);
        Cara__SubmitReferral cmd = CARA__SUBMIT_REFERRAL__INIT;
        cmd.referral = r;
        ProtobufCBinaryData out;
        s_ok(police, &cmd.base, &out);
        Cara__ReferralAccepted *ok = cara__referral_accepted__unpack(NULL, out.len, out.data);
        assert_non_null(ok);
        ids[i] = strdup(ok->referral_id);
        cara__referral_accepted__free_unpacked(ok, NULL);
        free(out.data);
        cara__referral__free_unpacked(r, NULL);
    }
    Cara__Referral *bad = s_referral(99);
    ti_set(&bad->offender->date_of_birth, "1961-13-05");
    ti_set(&bad->victim->phone, "Marigold's mobile");
    Cara__Reply *reply = ti_submit(police, bad);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__INVALID);
    cara__reply__free_unpacked(reply, NULL);
    // An amendment (personal fields changed: the amendment record holds old and new values).
    Cara__AmendReferral amend = CARA__AMEND_REFERRAL__INIT;
    amend.referral_id = ids[0];
    amend.reason = "Thaddeus Quillfeather gave a new number";
    amend.referral = bad;
    {
        char ref[32];
        snprintf(ref, sizeof ref, "PII-%d-0", getpid());
        ti_set(&bad->caution_reference, ref);
    }
    ti_set(&bad->offender->date_of_birth, "1974-02-19");
    ti_set(&bad->victim->phone, "07700 900873");
    ti_set(&bad->offender->phone, "07700 900872");
    ti_set(&bad->offender->name, "Zephyrine Quillfeather-Vexley");
    s_ok(police, &amend.base, NULL);
    cara__referral__free_unpacked(bad, NULL);
    // A withdrawal, with a reason naming people.
    Cara__WithdrawReferral withdraw = CARA__WITHDRAW_REFERRAL__INIT;
    withdraw.referral_id = ids[CASES - 1];
    withdraw.reason_code = "other";
    withdraw.reason = "Marigold Vexley moved away from Cwm Tawelwch";
    s_ok(police, &withdraw.base, NULL);

    // A victim who does not consent to contact: the police correct her phone and address after
    // the case reached the provider (TriageCaseUpdated).
    Cara__Referral *quiet = s_referral(8);
    quiet->victim->consents_to_contact = 0;
    ti_set(&quiet->victim->name, "Gwenllian Tregaron");
    ti_set(&quiet->victim->phone, "07700 900874");
    ti_set(&quiet->victim->address, "Tyddyn Heulog, Cwm Tawelwch");
    Cara__SubmitReferral submit = CARA__SUBMIT_REFERRAL__INIT;
    submit.referral = quiet;
    ProtobufCBinaryData accepted;
    s_ok(police, &submit.base, &accepted);
    Cara__ReferralAccepted *qok =
        cara__referral_accepted__unpack(NULL, accepted.len, accepted.data);
    assert_non_null(qok);
    char *quiet_id = strdup(qok->referral_id);
    cara__referral_accepted__free_unpacked(qok, NULL);
    free(accepted.data);
    char sql[300];
    snprintf(sql, sizeof sql, "SELECT status FROM provider_case WHERE referral_id = '%s'",
             quiet_id);
    assert_int_equal(harness_wait_value(h, "booking", sql, "open", 20000), 0);
    ti_set(&quiet->victim->phone, "07700 900875");
    ti_set(&quiet->victim->address, "Hafod Uchaf, Brynhyfryd");
    amend.referral_id = quiet_id;
    amend.reason = "victim moved";
    amend.referral = quiet;
    s_ok(police, &amend.base, NULL);
    cara__referral__free_unpacked(quiet, NULL);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM outbox WHERE type = 'cara.TriageCaseUpdated' AND key = '%s'",
             quiet_id);
    assert_int_equal(harness_wait_value(h, "triage", sql, "1", 20000), 0);

    // The provider: every open case contacted (victim too), booked, both parts attended.
    for (int i = 0; i < CASES - 1; i++) {
        snprintf(sql, sizeof sql, "SELECT status FROM provider_case WHERE referral_id = '%s'",
                 ids[i]);
        assert_int_equal(harness_wait_value(h, "booking", sql, "open", 20000), 0);
        Cara__RecordContact contact = CARA__RECORD_CONTACT__INIT;
        contact.referral_id = ids[i];
        contact.channel = "phone";
        contact.outcome = "contacted";
        s_ok(p1, &contact.base, NULL);
        Cara__RecordVictimContact victim = CARA__RECORD_VICTIM_CONTACT__INIT;
        victim.referral_id = ids[i];
        victim.kind = "accepted";
        victim.notes = "Marigold Vexley (07700 900873) asks for calls after 6pm";
        s_ok(harness_client(h, "booking", "victim_contact", "p1"), &victim.base, NULL);
    }
    char *a = s_date(7), *b = s_date(35);
    Cara__CreateCohort cohort = CARA__CREATE_COHORT__INIT;
    cohort.cohort_type = "male_intimate";
    cohort.town = "Carmarthen";
    cohort.capacity = 12;
    cohort.part_a_date = a;
    cohort.part_b_date = b;
    ProtobufCBinaryData out;
    s_ok(p1, &cohort.base, &out);
    Cara__CohortRef *ref = cara__cohort_ref__unpack(NULL, out.len, out.data);
    assert_non_null(ref);
    char *cohort_id = strdup(ref->cohort_id);
    cara__cohort_ref__free_unpacked(ref, NULL);
    free(out.data);
    Cara__AttendanceEntry entries[CASES - 1], *entry_ptrs[CASES - 1];
    for (int i = 0; i < CASES - 1; i++) {
        Cara__BookSeat seat = CARA__BOOK_SEAT__INIT;
        seat.referral_id = ids[i];
        seat.cohort_id = cohort_id;
        s_ok(p1, &seat.base, NULL);
        entries[i] = (Cara__AttendanceEntry)CARA__ATTENDANCE_ENTRY__INIT;
        entries[i].referral_id = ids[i];
        entries[i].status = "attended";
        entry_ptrs[i] = &entries[i];
    }
    const char *parts[] = {"A", "B"};
    for (int k = 0; k < 2; k++) {
        s_held(cohort_id, parts[k]);
        Cara__RecordAttendance attendance = CARA__RECORD_ATTENDANCE__INIT;
        attendance.cohort_id = cohort_id;
        attendance.part = (char *)parts[k];
        attendance.entries = entry_ptrs;
        attendance.n_entries = CASES - 1;
        s_ok(p1, &attendance.base, NULL);
    }
    // Everything arrives downstream: outcomes at intake, lines at billing, facts at national.
    char want[16];
    snprintf(want, sizeof want, "%d", CASES - 1);
    assert_int_equal(harness_wait_value(h, "intake",
                                        "SELECT count(*) FROM outcome WHERE status = 'completed'",
                                        want, 30000),
                     0);
    assert_int_equal(
        harness_wait_value(h, "billing", "SELECT count(*) > 0 FROM billable_line", "t", 30000), 0);
    snprintf(sql, sizeof sql, "SELECT count(*) >= %d FROM case_fact", CASES - 1);
    assert_int_equal(harness_wait_value(h, "national", sql, "t", 30000), 0);
    Cara__RunInvoices run = CARA__RUN_INVOICES__INIT;
    char period[8], *now = s_date(0);
    snprintf(period, sizeof period, "%.7s", now); // part B was held today
    free(now);
    run.period = period;
    s_ok(finance, &run.base, NULL);
    // The national return (published on the feed too): no personal data in it either.
    Cara__NationalExport export_ = CARA__NATIONAL_EXPORT__INIT;
    export_.period = period;
    export_.format = "json";
    export_.publish = 1;
    s_ok(harness_client(h, "national", "hampton_trust", "ht"), &export_.base, &out);
    Cara__NationalExportResult *result =
        cara__national_export_result__unpack(NULL, out.len, out.data);
    assert_non_null(result);
    assert_true(strlen(result->content) > 0);
    for (size_t k = 0; k < PII_N; k++)
        if (strcasestr(result->content, s_pii[k])) {
            fprintf(stderr, "personal data (%s) in the national return\n", s_pii[k]);
            fail();
        }
    cara__national_export_result__free_unpacked(result, NULL);
    free(out.data);

    // Staff free text on the streams: a return by triage staff (its detail) and a pathway
    // override (its reason), on referrals that waited for a person, one with a field of a newer
    // schema; a cohort cancelled and an attendance corrected by the provider (their reasons).
    client_t *staff = harness_client(h, "triage", "triage", "diversion");
    char *returned = s_submit_for_review(police, 6, "NHS 943 476 5919");
    char *overridden = s_submit_for_review(police, 7, "NHS 943 476 5919");
    Cara__TriageDecide decide = CARA__TRIAGE_DECIDE__INIT;
    decide.referral_id = returned;
    decide.decision = "return";
    decide.return_reason_code = "not_suitable";
    decide.reason = "Marigold Vexley says Thaddeus still rings her from Penrhiwceiber";
    s_ok(staff, &decide.base, NULL);
    decide.referral_id = overridden;
    decide.decision = "approve";
    decide.return_reason_code = "";
    decide.pathway = "telephone";
    decide.reason = "Zephyrine cares for her mother in Llanwrtyd: telephone";
    s_ok(staff, &decide.base, NULL);
    char *c = s_date(60), *d = s_date(88);
    cohort.part_a_date = c;
    cohort.part_b_date = d;
    s_ok(p1, &cohort.base, &out);
    ref = cara__cohort_ref__unpack(NULL, out.len, out.data);
    assert_non_null(ref);
    Cara__CancelCohort cancel = CARA__CANCEL_COHORT__INIT;
    cancel.cohort_id = ref->cohort_id;
    cancel.reason = "Facilitator Okonkwo is ill and the Cwmystwyth hall is closed";
    s_ok(p1, &cancel.base, NULL);
    cara__cohort_ref__free_unpacked(ref, NULL);
    free(out.data);
    Cara__RecordAttendance correct = CARA__RECORD_ATTENDANCE__INIT;
    correct.cohort_id = cohort_id;
    correct.part = "B";
    entries[0].status = "absent";
    correct.entries = entry_ptrs;
    correct.n_entries = 1;
    correct.correction_reason = "Thaddeus Quillfeather was at Ysbyty Gwynedd with Marigold";
    s_ok(p1, &correct.base, NULL);
    snprintf(sql, sizeof sql, "SELECT status FROM outcome WHERE referral_id = '%s'", returned);
    assert_int_equal(harness_wait_value(h, "intake", sql, "returned", 20000), 0);

    // The streams as national and billing are served them: none of it. As operators read them
    // (everything but the victims' details): each planted text they may see is there (the
    // offender's address, staff free text, a field of a newer schema), so the scan finds what it
    // looks for; no victim's detail is.
    long hits[PII_N], served = 0, leaked = 0;
    const char *const views[][2] = {{"intake", "national"},
                                    {"triage", "national"},
                                    {"booking", "national"},
                                    {"booking", "billing"}};
    for (size_t v = 0; v < sizeof views / sizeof *views; v++) {
        served += s_stream_hits(views[v][0], "service", views[v][1], 1, hits);
        leaked += s_sum(hits);
    }
    s_stream_hits("intake", "operator", "ops", 0, hits);
    assert_true(s_hits_of(hits, "Cwm Tawelwch") > 0);  // the police's withdrawal reason
    assert_true(s_hits_of(hits, "Penrhiwceiber") > 0); // the return detail, in an outcome
    assert_true(s_hits_of(hits, "943 476 5919") > 0);  // the unknown field
    assert_true(s_hits_of(hits, "Thaddeus") > 0);      // the offender, in the referral
    long victim_hits = 0;
    for (size_t k = 0; k < VICTIM_N; k++)
        victim_hits += s_hits_of(hits, s_victim[k]);
    s_stream_hits("triage", "operator", "ops", 0, hits);
    assert_true(s_hits_of(hits, "Penrhiwceiber") > 0);
    assert_true(s_hits_of(hits, "Llanwrtyd") > 0);
    assert_true(s_hits_of(hits, "943 476 5919") > 0);
    assert_true(s_hits_of(hits, "Thaddeus") > 0);
    for (size_t k = 0; k < VICTIM_N; k++)
        victim_hits += s_hits_of(hits, s_victim[k]);
    // Booking (the provider) has the consenting victims' phone, not the other victim's details.
    s_stream_hits("triage", "service", "booking", 0, hits);
    assert_true(s_hits_of(hits, "7700 900873") > 0);
    for (size_t k = NO_CONSENT_FROM; k < VICTIM_N; k++)
        victim_hits += s_hits_of(hits, s_victim[k]);
    if (victim_hits)
        for (int v = 0; v < 3; v++) {
            const char *const who[][3] = {{"intake", "operator", "ops"},
                                          {"triage", "operator", "ops"},
                                          {"triage", "service", "booking"}};
            s_stream_hits(who[v][0], who[v][1], who[v][2], 1, hits); // name them
        }
    assert_int_equal(victim_hits, 0);
    // The scan would find them: intake's stream holds each as the police wrote it, the
    // amendment's old and new values too.
    const char *const planted[] = {"7700 900873",   "7700 900874", "7700 900875",
                                   "Tyddyn Heulog", "Hafod Uchaf", "Gwenllian Tregaron"};
    for (size_t k = 0; k < sizeof planted / sizeof *planted; k++) {
        snprintf(sql, sizeof sql,
                 "SELECT count(*) > 0 FROM (SELECT encode(payload, 'escape') AS p FROM outbox) o"
                 " WHERE p ~* '%s'",
                 planted[k]);
        char *v = harness_value(h, "intake", sql);
        assert_non_null(v);
        if (strcmp(v, "t") != 0)
            fprintf(stderr, "victim detail %s not on intake's stream at all\n", planted[k]);
        assert_string_equal(v, "t");
        free(v);
    }
    s_stream_hits("booking", "operator", "ops", 0, hits);
    assert_true(s_hits_of(hits, "Cwmystwyth") > 0);
    assert_true(s_hits_of(hits, "Ysbyty Gwynedd") > 0);
    printf("# streams served to national and billing: %ld events, %ld hits\n", served, leaked);
    assert_true(served > 0);
    assert_int_equal(leaked, 0);

    // Logs: every file the services wrote in the harness directory.
    long files = 0, lines = 0, found = 0;
    DIR *dir = opendir(harness_dir(h));
    assert_non_null(dir);
    for (struct dirent *e; (e = readdir(dir));) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".log") != 0)
            continue;
        char path[1024], line[16384];
        snprintf(path, sizeof path, "%s/%s", harness_dir(h), e->d_name);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        files++;
        while (fgets(line, sizeof line, f)) {
            lines++;
            for (size_t k = 0; k < PII_N; k++)
                if (strcasestr(line, s_pii[k])) {
                    fprintf(stderr, "personal data (%s) in %s: %s", s_pii[k], e->d_name, line);
                    found++;
                }
        }
        fclose(f);
    }
    closedir(dir);
    // Schemas: billing and national hold none; intake does (the scan works).
    long tables = 0, rows = 0;
    long in_billing = s_rows_with_pii("billing", 1, &tables, &rows);
    long in_national = s_rows_with_pii("national", 1, &tables, &rows);
    long control_tables = 0, control_rows = 0;
    long in_intake = s_rows_with_pii("intake", 0, &control_tables, &control_rows);
    printf("# data protection: %zu personal-data patterns; %ld log files, %ld lines: %ld hits;"
           " billing+national %ld tables, %ld rows: %ld hits; (control: intake %ld rows hit)\n",
           PII_N, files, lines, found, tables, rows, in_billing + in_national, in_intake);
    assert_true(files >= 5);
    assert_true(lines > 0);
    assert_int_equal(found, 0);
    assert_int_equal(in_billing, 0);
    assert_int_equal(in_national, 0);
    assert_true(in_intake >= CASES);
    assert_true(rows > 0);
    for (int i = 0; i < CASES; i++)
        free(ids[i]);
    free(returned);
    free(overridden);
    free(quiet_id);
    free(cohort_id);
    free(a);
    free(b);
    free(c);
    free(d);
    free(start);
    free(end);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_personal_data_in_logs_billing_or_national)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
