// Access control across the services: every refusal below is answered FORBIDDEN (or, for an
// unknown key, nothing at all; for another party's case, NOT_FOUND so that nothing leaks) and
// recorded in the refusing service's audit table (the unknown key in the log's zap_refused line).
// Police see only their own force, providers only their own cases, Hampton Trust no case-level
// data, and no service's database role reaches another service's schema.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "billing.pb-c.h"
#include "booking.pb-c.h"
#include "cara/timeutil.h"
#include "cara/uuid.h"
#include "national.pb-c.h"
#include "test_intake_support.h"
#include "triage.pb-c.h"

static harness_t *h;
static const char *const s_all[] = {"intake", "triage", "booking", "billing", "national"};
static long s_refusals, s_audited;

static int setup(void **state) {
    (void)state;
    h = harness_new("access");
    if (!h)
        return -1;
    harness_config(h, "intake", "pseudonym_secret", "\"access-test-secret-0123456789\"");
    harness_config(h, "national", "pseudonym_secret", "\"access-test-secret-0123456789\"");
    ti_route(h, 1);
    for (int i = 0; i < 5; i++)
        if (harness_start(h, s_all[i]) != 0)
            return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    printf("# access: %ld attempts refused, %ld of them audited (the rest: unknown keys in the"
           " log, database roles by PostgreSQL)\n",
           s_refusals, s_audited);
    harness_destroy(&h);
    return 0;
}

// The number of 'refused' audit rows in service for actor role:org about entity_id.
static long s_audit_count(const char *service, const char *role, const char *org,
                          const char *entity_id) {
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM audit WHERE action = 'refused' AND actor = '%s:%s'"
             " AND entity_id = '%s'",
             role, org, entity_id);
    char *n = harness_value(h, service, sql);
    assert_non_null(n);
    long count = atol(n);
    free(n);
    return count;
}

// Waits until that count reaches want.
static void s_audit_reaches(const char *service, const char *role, const char *org,
                            const char *entity_id, long want) {
    char sql[512], expect[24];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM audit WHERE action = 'refused' AND actor = '%s:%s'"
             " AND entity_id = '%s'",
             role, org, entity_id);
    snprintf(expect, sizeof expect, "%ld", want);
    if (harness_wait_value(h, service, sql, expect, 5000) != 0)
        fprintf(stderr, "no (new) 'refused' audit row in %s for %s:%s %s\n", service, role, org,
                entity_id);
    assert_int_equal(harness_wait_value(h, service, sql, expect, 5000), 0);
    s_audited++;
}

// Sends msg as role:org and expects `status`; one more 'refused' audit row about audit_id
// (the command type when NULL) must follow.
static void s_refused_as(const char *service, const char *role, const char *org,
                         const ProtobufCMessage *msg, int status, const char *audit_id) {
    const char *entity = audit_id ? audit_id : msg->descriptor->name;
    long before = s_audit_count(service, role, org, entity);
    Cara__Reply *reply = harness_call(harness_client(h, service, role, org), msg);
    assert_non_null(reply);
    if ((int)reply->status != status)
        fprintf(stderr, "%s as %s:%s to %s: status %d (%s), expected %d\n", msg->descriptor->name,
                role, org, service, reply->status, reply->message, status);
    assert_int_equal(reply->status, status);
    cara__reply__free_unpacked(reply, NULL);
    s_refusals++;
    s_audit_reaches(service, role, org, entity, before + 1);
}

static void s_refused(const char *service, const char *role, const char *org,
                      const ProtobufCMessage *msg) {
    s_refused_as(service, role, org, msg, CARA__REPLY__STATUS__FORBIDDEN, NULL);
}

// A referral of force, accepted by intake; returns its id (malloc'd) once booking has the case.
static char *s_referral(const char *force, const char *reference) {
    char when[40], sql[200];
    Cara__Referral *r = ti_referral(force, reference);
    assert_non_null(r);
    ti_set(&r->caution->given_at,
           time_format_iso(time_now_us() - 2LL * 86400 * 1000000, when, sizeof when));
    Cara__Reply *reply = ti_submit(harness_client(h, "intake", "police", force), r);
    Cara__ReferralAccepted *ok = ti_accepted(reply);
    if (!ok)
        ti_print_errors(reply);
    assert_non_null(ok);
    char *id = strdup(ok->referral_id);
    cara__referral_accepted__free_unpacked(ok, NULL);
    cara__reply__free_unpacked(reply, NULL);
    cara__referral__free_unpacked(r, NULL);
    snprintf(sql, sizeof sql, "SELECT status FROM provider_case WHERE referral_id = '%s'", id);
    assert_int_equal(harness_wait_value(h, "booking", sql, "open", 20000), 0);
    snprintf(sql, sizeof sql,
             "SELECT count(*) > 0 FROM outcome WHERE referral_id = '%s'"
             " AND status <> 'received'",
             id);
    assert_int_equal(harness_wait_value(h, "intake", sql, "t", 20000), 0);
    return id;
}

// Reads the whole of stream as client; returns how many events mention text anywhere (their
// envelope bytes), and adds the events read to *read.
static long s_events_mentioning(client_t *c, const char *stream, const char *text, long *read) {
    long hits = 0;
    uint64_t after = 0;
    for (;;) {
        int status = 0;
        Cara__Batch *b = harness_fetch(c, stream, after, 500, &status);
        assert_non_null(b);
        for (size_t i = 0; i < b->n_events; i++) {
            (*read)++;
            hits += memmem(b->events[i]->envelope.data, b->events[i]->envelope.len, text,
                           strlen(text)) != NULL;
        }
        int more = b->last > after && b->last < b->head;
        after = b->last;
        cara__batch__free_unpacked(b, NULL);
        if (!more)
            break;
    }
    return hits;
}

static void test_roles_cannot_issue_each_others_commands(void **state) {
    (void)state;
    Cara__CreateCohort cohort = CARA__CREATE_COHORT__INIT;
    s_refused("booking", "triage", "diversion", &cohort.base); // triage -> provider commands
    s_refused("booking", "police", "gwent", &cohort.base);
    Cara__BookSeat seat = CARA__BOOK_SEAT__INIT;
    s_refused("booking", "triage", "diversion", &seat.base);
    Cara__RecordAttendance attendance = CARA__RECORD_ATTENDANCE__INIT;
    s_refused("booking", "triage", "diversion", &attendance.base);
    Cara__RecordContact contact = CARA__RECORD_CONTACT__INIT;
    s_refused("booking", "triage", "diversion", &contact.base);
    Cara__ListCases cases = CARA__LIST_CASES__INIT;
    s_refused("booking", "triage", "diversion", &cases.base);
    // Hampton Trust: case-level data by command.
    s_refused("booking", "hampton_trust", "ht", &cases.base);
    Cara__ShowReferral show = CARA__SHOW_REFERRAL__INIT;
    s_refused("intake", "hampton_trust", "ht", &show.base);
    Cara__ShowTriageCase triage_case = CARA__SHOW_TRIAGE_CASE__INIT;
    s_refused("triage", "hampton_trust", "ht", &triage_case.base);
    Cara__TriageDecide decide = CARA__TRIAGE_DECIDE__INIT;
    s_refused("triage", "provider", "p1", &decide.base); // provider -> triage command
    s_refused("triage", "police", "dyfed-powys", &decide.base);
    Cara__SubmitReferral submit = CARA__SUBMIT_REFERRAL__INIT;
    s_refused("intake", "provider", "p1", &submit.base); // only police refer
    Cara__RunInvoices run = CARA__RUN_INVOICES__INIT;
    s_refused("billing", "provider", "p1", &run.base); // only finance invoices
    Cara__NationalExport exp = CARA__NATIONAL_EXPORT__INIT;
    s_refused("national", "police", "gwent", &exp.base); // the return is Hampton Trust's
    s_refused("national", "provider", "p1", &exp.base);
}

static void test_police_see_their_own_force_only(void **state) {
    (void)state;
    char *id = s_referral("dyfed-powys", "ACC-DP-1");
    char *own = s_referral("gwent", "ACC-GW-1"); // so that gwent's reads are not empty anyway
    // Submitting for another force.
    Cara__Referral *r = ti_referral("dyfed-powys", "ACC-DP-2");
    Cara__SubmitReferral submit = CARA__SUBMIT_REFERRAL__INIT;
    submit.referral = r;
    s_refused("intake", "police", "gwent", &submit.base);
    char *stored = harness_value(h, "intake",
                                 "SELECT count(*) FROM referral WHERE"
                                 " caution_reference = 'ACC-DP-2'");
    assert_string_equal(stored, "0");
    free(stored);
    // Amending, withdrawing, reading another force's referral.
    Cara__AmendReferral amend = CARA__AMEND_REFERRAL__INIT;
    amend.referral_id = id;
    amend.reason = "typo";
    amend.referral = r;
    s_refused("intake", "police", "gwent", &amend.base);
    Cara__WithdrawReferral withdraw = CARA__WITHDRAW_REFERRAL__INIT;
    withdraw.referral_id = id;
    withdraw.reason_code = "error";
    withdraw.reason = "not ours";
    s_refused("intake", "police", "gwent", &withdraw.base);
    Cara__ShowReferral show = CARA__SHOW_REFERRAL__INIT;
    show.referral_id = id;
    // Answered exactly like a missing referral (nothing leaks), but on record.
    s_refused_as("intake", "police", "gwent", &show.base, CARA__REPLY__STATUS__NOT_FOUND, id);
    cara__referral__free_unpacked(r, NULL);
    // Outcomes: the intake stream as gwent carries nothing of dyfed-powys's referral; as
    // dyfed-powys it carries the referral and its outcomes.
    long read_gwent = 0, read_dp = 0;
    long theirs = s_events_mentioning(harness_client(h, "intake", "police", "gwent"), "intake", id,
                                      &read_gwent);
    long ours = s_events_mentioning(harness_client(h, "intake", "police", "dyfed-powys"), "intake",
                                    id, &read_dp);
    printf("# intake stream: gwent read %ld events, %ld about dyfed-powys's referral;"
           " dyfed-powys read %ld, %ld about it\n",
           read_gwent, theirs, read_dp, ours);
    assert_int_equal(theirs, 0);
    assert_true(ours >= 2);
    assert_true(read_gwent >= 2);
    free(own);
    char *state_now = harness_value(h, "intake", "SELECT count(*) FROM withdrawal");
    assert_string_equal(state_now, "0");
    free(state_now);
    free(id);
}

static void test_providers_see_their_own_cases_only(void **state) {
    (void)state;
    char *id = s_referral("dyfed-powys", "ACC-DP-3"); // routed to provider p1
    char *own = s_referral("gwent", "ACC-GW-3");      // and one to p2
    client_t *p1 = harness_client(h, "booking", "provider", "p1");
    client_t *p2 = harness_client(h, "booking", "provider", "p2");
    // ListCases: p1's case in p1's list, not in p2's.
    int lists[2] = {0, 0}, sizes[2] = {0, 0};
    client_t *who[2] = {p1, p2};
    for (int k = 0; k < 2; k++) {
        Cara__ListCases list = CARA__LIST_CASES__INIT;
        Cara__Reply *reply = harness_call(who[k], &list.base);
        assert_non_null(reply);
        assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
        Cara__CaseList *cases =
            cara__case_list__unpack(NULL, reply->payload.len, reply->payload.data);
        assert_non_null(cases);
        sizes[k] = (int)cases->n_cases;
        for (size_t i = 0; i < cases->n_cases; i++)
            lists[k] += strcmp(cases->cases[i]->referral_id, id) == 0;
        cara__case_list__free_unpacked(cases, NULL);
        cara__reply__free_unpacked(reply, NULL);
    }
    assert_int_equal(lists[0], 1);
    assert_int_equal(lists[1], 0);
    assert_true(sizes[1] >= 1);
    // The booking stream: p2 reads nothing about it, p1 does.
    long read_p1 = 0, read_p2 = 0;
    long theirs = s_events_mentioning(p2, "booking", id, &read_p2);
    long ours = s_events_mentioning(p1, "booking", id, &read_p1);
    printf("# booking stream: p2 read %ld events, %ld about p1's case; p1 read %ld, %ld\n", read_p2,
           theirs, read_p1, ours);
    assert_int_equal(theirs, 0);
    assert_true(ours >= 1);
    assert_true(read_p2 >= 1);
    // Acting on p1's case as p2: answered like a missing case, nothing changes.
    char *before = harness_value(h, "booking",
                                 "SELECT (SELECT count(*) FROM contact_attempt)"
                                 " || '/' || (SELECT count(*) FROM booking)");
    Cara__RecordContact contact = CARA__RECORD_CONTACT__INIT;
    contact.referral_id = id;
    contact.channel = "phone";
    contact.outcome = "contacted";
    Cara__BookSeat seat = CARA__BOOK_SEAT__INIT;
    seat.referral_id = id;
    Cara__CancelBooking cancel = CARA__CANCEL_BOOKING__INIT;
    cancel.referral_id = id;
    cancel.reason = "not theirs";
    Cara__RecordVictimContact victim = CARA__RECORD_VICTIM_CONTACT__INIT;
    victim.referral_id = id;
    victim.kind = "safety_concern";
    Cara__ListVictimContacts victims = CARA__LIST_VICTIM_CONTACTS__INIT;
    victims.referral_id = id;
    const ProtobufCMessage *acts[] = {&contact.base, &seat.base, &cancel.base, &victim.base,
                                      &victims.base};
    // Victim contact is for the provider's victim contact role only (victim_contact:<provider>):
    // case workers of the very provider the case belongs to are refused, and audited.
    s_refused("booking", "provider", "p1", &victim.base);
    s_refused("booking", "provider", "p1", &victims.base);
    // Acting on another provider's case, each with the role for the act: refused, audited in
    // booking (the caller is not told the case exists) ...
    const char *roles[] = {"provider", "provider", "provider", "victim_contact", "victim_contact"};
    client_t *as_p2[5];
    for (int k = 0; k < 5; k++) {
        as_p2[k] = harness_client(h, "booking", roles[k], "p2");
        s_refused_as("booking", roles[k], "p2", acts[k], CARA__REPLY__STATUS__NOT_FOUND, id);
    }
    // ... and reads exactly like a case that does not exist at all.
    char missing[UUID_STR_LEN];
    assert_non_null(uuid_new(missing));
    for (int k = 0; k < 5; k++) {
        contact.referral_id = seat.referral_id = cancel.referral_id = victim.referral_id =
            victims.referral_id = missing;
        Cara__Reply *gone = harness_call(as_p2[k], acts[k]);
        contact.referral_id = seat.referral_id = cancel.referral_id = victim.referral_id =
            victims.referral_id = id;
        Cara__Reply *theirs_reply = harness_call(as_p2[k], acts[k]);
        assert_non_null(gone);
        assert_non_null(theirs_reply);
        assert_int_equal(gone->status, theirs_reply->status);
        assert_string_equal(gone->message, theirs_reply->message);
        assert_int_equal(gone->n_errors, theirs_reply->n_errors);
        cara__reply__free_unpacked(gone, NULL);
        cara__reply__free_unpacked(theirs_reply, NULL);
    }
    assert_int_equal(s_audit_count("booking", "provider", "p2", missing), 0);
    assert_int_equal(s_audit_count("booking", "victim_contact", "p2", missing), 0);
    // p1's cohort, as p2: cancelling it, booking p2's own case into it and recording attendance
    // on it are refused, audited (about the cohort), and read exactly like a missing cohort.
    Cara__CreateCohort create = CARA__CREATE_COHORT__INIT;
    char da[16], db_[16];
    int32_t today = (int32_t)(time_now_us() / 1000000 / 86400);
    time_format_date(today + 30, da, sizeof da);
    time_format_date(today + 58, db_, sizeof db_);
    create.cohort_type = "male_intimate";
    create.town = "Carmarthen";
    create.capacity = 4;
    create.part_a_date = da;
    create.part_b_date = db_;
    Cara__Reply *made = harness_call(p1, &create.base);
    assert_non_null(made);
    assert_int_equal(made->status, CARA__REPLY__STATUS__OK);
    Cara__CohortRef *ref = cara__cohort_ref__unpack(NULL, made->payload.len, made->payload.data);
    assert_non_null(ref);
    char cohort_id[UUID_STR_LEN];
    snprintf(cohort_id, sizeof cohort_id, "%s", ref->cohort_id);
    cara__cohort_ref__free_unpacked(ref, NULL);
    cara__reply__free_unpacked(made, NULL);
    Cara__CancelCohort drop = CARA__CANCEL_COHORT__INIT;
    drop.cohort_id = cohort_id;
    drop.reason = "not theirs";
    Cara__BookSeat into = CARA__BOOK_SEAT__INIT;
    into.referral_id = own;
    into.cohort_id = cohort_id;
    Cara__AttendanceEntry entry = CARA__ATTENDANCE_ENTRY__INIT;
    Cara__AttendanceEntry *entries[] = {&entry};
    entry.referral_id = own;
    entry.status = "attended";
    Cara__RecordAttendance register_ = CARA__RECORD_ATTENDANCE__INIT;
    register_.cohort_id = cohort_id;
    register_.part = "A";
    register_.entries = entries;
    register_.n_entries = 1;
    const ProtobufCMessage *cohort_acts[] = {&drop.base, &into.base, &register_.base};
    const int cohort_status[] = {CARA__REPLY__STATUS__NOT_FOUND, CARA__REPLY__STATUS__CONFLICT,
                                 CARA__REPLY__STATUS__NOT_FOUND};
    for (int k = 0; k < 3; k++)
        s_refused_as("booking", "provider", "p2", cohort_acts[k], cohort_status[k], cohort_id);
    for (int k = 0; k < 3; k++) {
        drop.cohort_id = into.cohort_id = register_.cohort_id = missing;
        Cara__Reply *gone = harness_call(p2, cohort_acts[k]);
        drop.cohort_id = into.cohort_id = register_.cohort_id = cohort_id;
        Cara__Reply *theirs_reply = harness_call(p2, cohort_acts[k]);
        assert_non_null(gone);
        assert_non_null(theirs_reply);
        assert_int_equal(gone->status, theirs_reply->status);
        assert_string_equal(gone->message, theirs_reply->message);
        assert_int_equal(gone->n_errors, theirs_reply->n_errors);
        cara__reply__free_unpacked(gone, NULL);
        cara__reply__free_unpacked(theirs_reply, NULL);
    }
    assert_int_equal(s_audit_count("booking", "provider", "p2", missing), 0);
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT status || '/' || seats_taken FROM cohort WHERE cohort_id = '%s'", cohort_id);
    char *untouched = harness_value(h, "booking", sql);
    assert_non_null(untouched);
    assert_string_equal(untouched, "scheduled/0");
    free(untouched);
    free(own);
    char *after = harness_value(h, "booking",
                                "SELECT (SELECT count(*) FROM contact_attempt)"
                                " || '/' || (SELECT count(*) FROM booking)");
    assert_string_equal(before, after);
    free(before);
    free(after);
    free(id);
}

static void test_streams_only_to_those_entitled(void **state) {
    (void)state;
    struct {
        const char *service, *role, *org;
    } refused[] = {
        {"intake", "hampton_trust", "ht"},  {"triage", "hampton_trust", "ht"},
        {"booking", "hampton_trust", "ht"}, {"billing", "hampton_trust", "ht"},
        {"triage", "police", "gwent"},      {"booking", "police", "gwent"},
        {"intake", "provider", "p1"},       {"triage", "provider", "p1"},
        {"intake", "service", "billing"},   {"national", "provider", "p1"},
        {"booking", "service", "booking"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        Cara__Fetch fetch = CARA__FETCH__INIT;
        fetch.stream = (char *)refused[i].service;
        s_refused(refused[i].service, refused[i].role, refused[i].org, &fetch.base);
    }
    printf("# %zu stream reads refused and audited\n", sizeof refused / sizeof *refused);
}

static void test_unknown_key_gets_nothing_from_any_service(void **state) {
    (void)state;
    keypair_t stranger;
    assert_int_equal(keys_generate(&stranger), 0);
    for (int i = 0; i < 5; i++) {
        client_t *c = client_new(harness_ctx(h), harness_endpoint(h, s_all[i]), &stranger,
                                 harness_service_public(h, s_all[i]));
        Cara__HealthRequest req = CARA__HEALTH_REQUEST__INIT;
        assert_null(client_call(c, &req.base, NULL, NULL, 500, 0));
        client_destroy(&c);
        char path[512], line[4096];
        snprintf(path, sizeof path, "%s/%s.log", harness_dir(h), s_all[i]);
        FILE *f = fopen(path, "r");
        int logged = 0;
        while (f && fgets(line, sizeof line, f))
            logged |= strstr(line, "zap_refused") && strstr(line, stranger.public_key);
        if (f)
            fclose(f);
        assert_true(logged); // the refusal is on record, with the key
    }
}

// Every national return that goes out is recorded (who, which period, in which form): a plain
// read and a published one alike, a published one's repeat too, by Hampton Trust and operators.
static void test_every_national_return_read_is_audited(void **state) {
    (void)state;
    const char *count = "SELECT count(*) || ':' || count(*) FILTER (WHERE detail->>'format' ="
                        " 'csv') FROM audit WHERE action = 'national_return_exported' AND"
                        " entity = 'period' AND entity_id = '2026Q1'";
    char *before = harness_value(h, "national", count);
    assert_non_null(before);
    assert_string_equal(before, "0:0");
    free(before);
    char published[UUID_STR_LEN];
    uuid_new(published);
    const struct {
        const char *role, *org, *format;
        int publish;
        const char *request_id; // NULL: a fresh one
    } reads[] = {{"hampton_trust", "ht", "json", 0, NULL},
                 {"operator", "ops", "csv", 0, NULL},
                 {"hampton_trust", "ht", "html", 1, published},
                 {"hampton_trust", "ht", "html", 1, published}}; // a repeat: disclosed again
    for (size_t i = 0; i < sizeof reads / sizeof *reads; i++) {
        Cara__NationalExport exp = CARA__NATIONAL_EXPORT__INIT;
        exp.period = "2026Q1";
        exp.format = (char *)reads[i].format;
        exp.publish = reads[i].publish;
        Cara__Reply *reply = client_call(harness_client(h, "national", reads[i].role, reads[i].org),
                                         &exp.base, reads[i].request_id, NULL, 5000, 2);
        assert_non_null(reply);
        assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
        cara__reply__free_unpacked(reply, NULL);
    }
    assert_int_equal(harness_wait_value(h, "national", count, "4:1", 5000), 0);
    char *actors = harness_value(h, "national",
                                 "SELECT string_agg(DISTINCT actor, ',' ORDER BY actor) FROM audit"
                                 " WHERE action = 'national_return_exported'");
    assert_non_null(actors);
    assert_string_equal(actors, "hampton_trust:ht,operator:ops");
    free(actors);
}

static void test_database_roles_stay_in_their_schemas(void **state) {
    (void)state;
    // Each schema's case-level (or, for billing and national, main) table.
    static const char *const s_domain[] = {"referral", "triage_case", "provider_case",
                                           "billable_line", "case_fact"};
    int refusals = 0;
    for (int i = 0; i < 5; i++) {
        db_t *db = db_connect(harness_conninfo(h, s_all[i]), s_all[i], 5000);
        assert_non_null(db);
        for (int j = 0; j < 5; j++) {
            if (i == j)
                continue;
            char sql[128];
            snprintf(sql, sizeof sql, "SELECT count(*) FROM %s.outbox", s_all[j]);
            assert_int_equal(db_exec(db, sql, 0, NULL), -1);
            assert_string_equal(db_sqlstate(db), "42501");
            snprintf(sql, sizeof sql, "DELETE FROM %s.audit", s_all[j]);
            assert_int_equal(db_exec(db, sql, 0, NULL), -1);
            assert_string_equal(db_sqlstate(db), "42501");
            snprintf(sql, sizeof sql,
                     "INSERT INTO %s.audit (actor, action, entity, entity_id)"
                     " VALUES ('x', 'x', 'x', 'x')",
                     s_all[j]);
            assert_int_equal(db_exec(db, sql, 0, NULL), -1);
            assert_string_equal(db_sqlstate(db), "42501");
            snprintf(sql, sizeof sql, "SELECT count(*) FROM %s.%s", s_all[j], s_domain[j]);
            assert_int_equal(db_exec(db, sql, 0, NULL), -1);
            assert_string_equal(db_sqlstate(db), "42501");
            refusals += 4;
        }
        db_destroy(&db);
    }
    printf("# %d cross-schema statements refused by PostgreSQL\n", refusals);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roles_cannot_issue_each_others_commands),
        cmocka_unit_test(test_police_see_their_own_force_only),
        cmocka_unit_test(test_providers_see_their_own_cases_only),
        cmocka_unit_test(test_streams_only_to_those_entitled),
        cmocka_unit_test(test_unknown_key_gets_nothing_from_any_service),
        cmocka_unit_test(test_every_national_return_read_is_audited),
        cmocka_unit_test(test_database_roles_stay_in_their_schemas),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
