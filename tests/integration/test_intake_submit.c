// intake against a real PostgreSQL: a valid referral is stored (offender and victim apart) and
// published; each kind of invalid input gets every error at once with field paths and is kept
// in rejected_submission; a key of one force cannot submit for another; repeats are idempotent
// and conflicting repeats are refused; amendments are recorded field by field; withdrawals stop
// the referral; a force reads only its own outcomes.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cara/uuid.h"
#include "test_intake_support.h"

static harness_t *h;

static int setup(void **state) {
    (void)state;
    h = harness_new("intake_submit");
    if (!h)
        return -1;
    harness_config(h, "intake", "forces", "{\"gwent\": {\"deadline_weeks\": 12}}");
    return harness_start(h, "intake");
}

static int teardown(void **state) {
    (void)state;
    harness_destroy(&h);
    return 0;
}

static char *s_value(const char *sql) {
    char *v = harness_value(h, "intake", sql);
    assert_non_null(v);
    return v;
}

static void s_assert_value(const char *sql, const char *expected) {
    char *v = s_value(sql);
    if (strcmp(v, expected) != 0)
        fprintf(stderr, "%s\n  got %s, expected %s\n", sql, v, expected);
    assert_string_equal(v, expected);
    free(v);
}

// Submits r as police:<force> and returns the new referral id (asserting success).
static void s_submit_ok(const char *force, Cara__Referral *r, char id[UUID_STR_LEN]) {
    client_t *c = harness_client(h, "intake", "police", force);
    Cara__Reply *reply = ti_submit(c, r);
    assert_non_null(reply);
    ti_print_errors(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    Cara__ReferralAccepted *a = ti_accepted(reply);
    assert_non_null(a);
    assert_true(uuid_valid(a->referral_id));
    snprintf(id, UUID_STR_LEN, "%s", a->referral_id);
    cara__referral_accepted__free_unpacked(a, NULL);
    cara__reply__free_unpacked(reply, NULL);
}

// Submits r as police:dyfed-powys expecting INVALID with an error on field; returns the reply.
static Cara__Reply *s_submit_invalid(Cara__Referral *r, const char *field) {
    client_t *c = harness_client(h, "intake", "police", "dyfed-powys");
    Cara__Reply *reply = ti_submit(c, r);
    assert_non_null(reply);
    if (!ti_has_error(reply, field))
        ti_print_errors(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__INVALID);
    assert_true(ti_has_error(reply, field));
    return reply;
}

static void test_valid_referral_is_stored_and_published(void **state) {
    (void)state;
    Cara__Referral *r = ti_referral("dyfed-powys", "T-VALID-1");
    assert_non_null(r);
    char id[UUID_STR_LEN], sql[512];
    client_t *c = harness_client(h, "intake", "police", "dyfed-powys");
    Cara__Reply *reply = ti_submit(c, r);
    assert_non_null(reply);
    ti_print_errors(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    Cara__ReferralAccepted *a = ti_accepted(reply);
    assert_non_null(a);
    snprintf(id, sizeof id, "%s", a->referral_id);
    // 2025-03-14 + 16 weeks (dyfed-powys is not configured: the default period).
    assert_string_equal(a->compliance_deadline, "2025-07-04");
    assert_false(a->duplicate);
    cara__referral_accepted__free_unpacked(a, NULL);
    cara__reply__free_unpacked(reply, NULL);

    snprintf(sql, sizeof sql,
             "SELECT r.offender_name || '|' || v.name || '|' || r.compliance_deadline || '|' ||"
             " o.status FROM referral r JOIN victim v USING (referral_id) JOIN outcome o"
             " USING (referral_id) WHERE referral_id = '%s'",
             id);
    s_assert_value(sql, "Gareth Llewellyn Pryce|Sian Pryce|2025-07-04|received");
    snprintf(
        sql, sizeof sql,
        "SELECT string_agg(type || ':' || scope, ',' ORDER BY seq) FROM outbox WHERE key = '%s'",
        id);
    s_assert_value(sql, "cara.ReferralSubmitted:dyfed-powys,cara.OutcomeUpdated:dyfed-powys");
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM audit WHERE action = 'referral_submitted' AND entity_id = '%s'"
             " AND actor = 'police:dyfed-powys'",
             id);
    s_assert_value(sql, "1");

    // The force's configured period: gwent has 12 weeks.
    Cara__Referral *g = ti_referral("gwent", "T-VALID-G");
    client_t *gc = harness_client(h, "intake", "police", "gwent");
    reply = ti_submit(gc, g);
    a = ti_accepted(reply);
    assert_non_null(a);
    assert_string_equal(a->compliance_deadline, "2025-06-06");
    cara__referral_accepted__free_unpacked(a, NULL);
    cara__reply__free_unpacked(reply, NULL);
    cara__referral__free_unpacked(g, NULL);
    cara__referral__free_unpacked(r, NULL);
}

static void test_missing_field(void **state) {
    (void)state;
    Cara__Referral *r = ti_referral("dyfed-powys", "T-MISSING");
    ti_set(&r->offender->name, "");
    cara__victim__free_unpacked(r->victim, NULL);
    r->victim = NULL;
    Cara__Reply *reply = s_submit_invalid(r, "offender.name");
    assert_true(ti_has_error(reply, "victim"));
    assert_int_equal(reply->n_errors, 2);
    cara__reply__free_unpacked(reply, NULL);
    s_assert_value("SELECT count(*) FROM referral WHERE caution_reference = 'T-MISSING'", "0");
    cara__referral__free_unpacked(r, NULL);
}

static void test_bad_date(void **state) {
    (void)state;
    Cara__Referral *r = ti_referral("dyfed-powys", "T-BADDATE");
    ti_set(&r->offender->date_of_birth, "1988-02-30");
    ti_set(&r->caution->given_at, "14/03/2025 16:20");
    Cara__Reply *reply = s_submit_invalid(r, "offender.date_of_birth");
    assert_true(ti_has_error(reply, "caution.given_at"));
    cara__reply__free_unpacked(reply, NULL);
    cara__referral__free_unpacked(r, NULL);
}

static void test_deadline_before_caution(void **state) {
    (void)state;
    Cara__Referral *r = ti_referral("dyfed-powys", "T-DEADLINE");
    ti_set(&r->caution->compliance_deadline, "2025-03-01");
    Cara__Reply *reply = s_submit_invalid(r, "caution.compliance_deadline");
    assert_int_equal(reply->n_errors, 1);
    cara__reply__free_unpacked(reply, NULL);
    cara__referral__free_unpacked(r, NULL);
}

static void test_unknown_enum_value(void **state) {
    (void)state;
    Cara__Referral *r = ti_referral("dyfed-powys", "T-ENUM");
    ti_set(&r->risk->dash_level, "extreme");
    ti_set(&r->offender->ethnicity, "martian");
    Cara__Reply *reply = s_submit_invalid(r, "risk.dash_level");
    assert_true(ti_has_error(reply, "offender.ethnicity"));
    assert_non_null(strstr(reply->errors[0]->reason, "expected one of"));
    cara__reply__free_unpacked(reply, NULL);
    cara__referral__free_unpacked(r, NULL);
}

static void test_oversized_and_invalid_utf8(void **state) {
    (void)state;
    Cara__Referral *r = ti_referral("dyfed-powys", "T-SIZE");
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ti_set(&r->risk->safeguarding_notes, big);
    ti_set(&r->victim->name, "Si\xff\xfe");
    Cara__Reply *reply = s_submit_invalid(r, "risk.safeguarding_notes");
    assert_true(ti_has_error(reply, "victim.name"));
    cara__reply__free_unpacked(reply, NULL);
    cara__referral__free_unpacked(r, NULL);
}

// Every error is reported at once, and the rejected submission is kept with its errors.
static void test_all_errors_at_once_and_rejection_kept(void **state) {
    (void)state;
    Cara__Referral *r = ti_referral("dyfed-powys", "T-ALL");
    ti_set(&r->officer, "");
    ti_set(&r->offender->date_of_birth, "not a date");
    ti_set(&r->caution->compliance_deadline, "2025-03-13");
    ti_set(&r->relationship, "neighbour");
    ti_set(&r->victim->email, "nobody at example");
    Cara__Reply *reply = s_submit_invalid(r, "officer");
    const char *fields[] = {"offender.date_of_birth", "caution.compliance_deadline", "relationship",
                            "victim.email"};
    for (size_t i = 0; i < 4; i++)
        assert_true(ti_has_error(reply, fields[i]));
    assert_int_equal(reply->n_errors, 5);
    cara__reply__free_unpacked(reply, NULL);
    s_assert_value("SELECT count(*) FROM referral WHERE caution_reference = 'T-ALL'", "0");
    s_assert_value("SELECT jsonb_array_length(errors) || '|' || force || '|' || actor ||"
                   " '|' || (document IS NOT NULL) FROM rejected_submission"
                   " WHERE caution_reference = 'T-ALL'",
                   "5|dyfed-powys|police:dyfed-powys|true");
    s_assert_value("SELECT errors->0->>'field' FROM rejected_submission"
                   " WHERE caution_reference = 'T-ALL'",
                   "officer");
    // The force reviews its rejections (with their errors); another force never sees them.
    Cara__ListRejectedSubmissions list = CARA__LIST_REJECTED_SUBMISSIONS__INIT;
    reply = harness_call(harness_client(h, "intake", "police", "dyfed-powys"), &list.base);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    Cara__RejectedSubmissionList *items =
        cara__rejected_submission_list__unpack(NULL, reply->payload.len, reply->payload.data);
    assert_non_null(items);
    int found = 0;
    for (size_t i = 0; i < items->n_items; i++) {
        if (strcmp(items->items[i]->caution_reference, "T-ALL") != 0)
            continue;
        found = 1;
        assert_int_equal(items->items[i]->n_errors, 5);
        assert_string_equal(items->items[i]->errors[0]->field, "officer");
    }
    assert_true(found);
    cara__rejected_submission_list__free_unpacked(items, NULL);
    cara__reply__free_unpacked(reply, NULL);
    reply = harness_call(harness_client(h, "intake", "police", "gwent"), &list.base);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    items = cara__rejected_submission_list__unpack(NULL, reply->payload.len, reply->payload.data);
    assert_non_null(items);
    for (size_t i = 0; i < items->n_items; i++)
        assert_string_not_equal(items->items[i]->caution_reference, "T-ALL");
    cara__rejected_submission_list__free_unpacked(items, NULL);
    cara__reply__free_unpacked(reply, NULL);
    cara__referral__free_unpacked(r, NULL);
}

static void test_wrong_force_for_the_key(void **state) {
    (void)state;
    Cara__Referral *r = ti_referral("gwent", "T-WRONGFORCE");
    client_t *c = harness_client(h, "intake", "police", "dyfed-powys");
    Cara__Reply *reply = ti_submit(c, r);
    assert_non_null(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__FORBIDDEN);
    cara__reply__free_unpacked(reply, NULL);
    // Not police at all.
    client_t *p = harness_client(h, "intake", "provider", "hampton-south");
    reply = ti_submit(p, r);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__FORBIDDEN);
    cara__reply__free_unpacked(reply, NULL);
    s_assert_value("SELECT count(*) FROM referral WHERE caution_reference = 'T-WRONGFORCE'", "0");
    s_assert_value("SELECT count(*) > 0 FROM audit WHERE action = 'refused'"
                   " AND actor = 'police:dyfed-powys'",
                   "t");
    cara__referral__free_unpacked(r, NULL);
}

static void test_malformed_protobuf(void **state) {
    (void)state;
    client_t *c = harness_client(h, "intake", "police", "dyfed-powys");
    // A valid envelope whose payload is not a SubmitReferral.
    Cara__Envelope env = CARA__ENVELOPE__INIT;
    char id[UUID_STR_LEN];
    env.event_id = uuid_new(id);
    env.type = "cara.SubmitReferral";
    env.schema_version = 1;
    uint8_t garbage[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02};
    env.payload.data = garbage;
    env.payload.len = sizeof garbage;
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(envelope_encode_message(&env.base, &data, &len), 0);
    Cara__Envelope *answer = client_call_raw(c, data, len, 5000);
    free(data);
    assert_non_null(answer);
    Cara__Reply *reply = cara__reply__unpack(NULL, answer->payload.len, answer->payload.data);
    assert_non_null(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__INVALID);
    assert_true(ti_has_error(reply, "payload"));
    cara__reply__free_unpacked(reply, NULL);
    cara__envelope__free_unpacked(answer, NULL);
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT errors->0->>'field' FROM rejected_submission"
             " WHERE request_id = '%s'",
             id);
    s_assert_value(sql, "payload");
    // Bytes that are not even an envelope.
    const uint8_t junk[] = "this is not protobuf";
    answer = client_call_raw(c, junk, sizeof junk, 5000);
    assert_non_null(answer);
    reply = cara__reply__unpack(NULL, answer->payload.len, answer->payload.data);
    assert_non_null(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__INVALID);
    cara__reply__free_unpacked(reply, NULL);
    cara__envelope__free_unpacked(answer, NULL);
}

// JSON that does not fit the document is refused at the edge with the field named.
static void test_malformed_json(void **state) {
    (void)state;
    char err[256] = "";
    json_t *doc =
        json_loads("{\"force\": \"dyfed-powys\", \"offender\": {\"nmae\": \"X\"}}", 0, NULL);
    assert_non_null(doc);
    ProtobufCMessage *m = pbjson_to_message(&cara__referral__descriptor, doc, err, sizeof err);
    assert_null(m);
    assert_non_null(strstr(err, "nmae"));
    json_decref(doc);
    doc = json_loads("{\"caution\": {\"given_at\": 20250314}}", 0, NULL);
    m = pbjson_to_message(&cara__referral__descriptor, doc, err, sizeof err);
    assert_null(m);
    assert_non_null(strstr(err, "given_at"));
    json_decref(doc);
    // Not JSON at all never reaches pbjson: jansson refuses it with a position.
    json_error_t jerr;
    assert_null(json_loads("{\"force\": ", 0, &jerr));
}

static void test_duplicate_and_conflict(void **state) {
    (void)state;
    Cara__Referral *r = ti_referral("dyfed-powys", "T-DUP");
    char first[UUID_STR_LEN];
    s_submit_ok("dyfed-powys", r, first);
    client_t *c = harness_client(h, "intake", "police", "dyfed-powys");
    Cara__Reply *reply = ti_submit(c, r);
    Cara__ReferralAccepted *a = ti_accepted(reply);
    assert_non_null(a);
    assert_string_equal(a->referral_id, first);
    assert_true(a->duplicate);
    cara__referral_accepted__free_unpacked(a, NULL);
    cara__reply__free_unpacked(reply, NULL);
    s_assert_value("SELECT count(*) FROM referral WHERE caution_reference = 'T-DUP'", "1");
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM outbox WHERE key = '%s'", first);
    s_assert_value(sql, "2");
    // Same reference, other content: a conflict, and nothing changes.
    ti_set(&r->offender->phone, "07700 900999");
    reply = ti_submit(c, r);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__CONFLICT);
    cara__reply__free_unpacked(reply, NULL);
    s_assert_value("SELECT offender_phone FROM referral WHERE caution_reference = 'T-DUP'",
                   "07700 900123");
    // The same reference in another force is a different referral.
    Cara__Referral *g = ti_referral("gwent", "T-DUP");
    char other[UUID_STR_LEN];
    s_submit_ok("gwent", g, other);
    assert_string_not_equal(first, other);
    cara__referral__free_unpacked(g, NULL);
    cara__referral__free_unpacked(r, NULL);
}

static Cara__Reply *s_amend(const char *force, const char *id, const char *reason,
                            Cara__Referral *r) {
    Cara__AmendReferral cmd = CARA__AMEND_REFERRAL__INIT;
    cmd.referral_id = (char *)id;
    cmd.reason = (char *)reason;
    cmd.referral = r;
    return harness_call(harness_client(h, "intake", "police", force), &cmd.base);
}

static Cara__Reply *s_withdraw(const char *force, const char *id, const char *code) {
    Cara__WithdrawReferral cmd = CARA__WITHDRAW_REFERRAL__INIT;
    cmd.referral_id = (char *)id;
    cmd.reason_code = (char *)code;
    cmd.reason = "caution rescinded by the custody inspector";
    return harness_call(harness_client(h, "intake", "police", force), &cmd.base);
}

static void test_amend(void **state) {
    (void)state;
    Cara__Referral *r = ti_referral("dyfed-powys", "T-AMEND");
    char id[UUID_STR_LEN], sql[400];
    s_submit_ok("dyfed-powys", r, id);
    ti_set(&r->offender->phone, "07700 900777");
    ti_set(&r->victim->safe_contact_times, "Evenings after 19:00");
    ti_set(&r->caution->compliance_deadline, "2025-08-01");
    // A reason is required.
    Cara__Reply *reply = s_amend("dyfed-powys", id, "", r);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__INVALID);
    assert_true(ti_has_error(reply, "reason"));
    cara__reply__free_unpacked(reply, NULL);
    // Another force may not amend it.
    reply = s_amend("gwent", id, "typo", r);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__FORBIDDEN);
    cara__reply__free_unpacked(reply, NULL);

    reply = s_amend("dyfed-powys", id, "new phone number from the offender", r);
    ti_print_errors(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    Cara__ReferralAmended *ev =
        cara__referral_amended__unpack(NULL, reply->payload.len, reply->payload.data);
    assert_non_null(ev);
    assert_int_equal(ev->n_changes, 3);
    assert_string_equal(ev->changes[0]->field, "caution.compliance_deadline");
    assert_string_equal(ev->changes[0]->old_value, "2025-07-04");
    assert_string_equal(ev->changes[0]->new_value, "2025-08-01");
    assert_string_equal(ev->changes[1]->field, "offender.phone");
    assert_string_equal(ev->changes[1]->old_value, "07700 900123");
    assert_string_equal(ev->changes[2]->field, "victim.safe_contact_times");
    cara__referral_amended__free_unpacked(ev, NULL);
    cara__reply__free_unpacked(reply, NULL);

    snprintf(sql, sizeof sql,
             "SELECT string_agg(c.field, ',' ORDER BY c.position) || '|' || max(a.reason)"
             " FROM amendment a JOIN amendment_change c USING (amendment_id)"
             " WHERE a.referral_id = '%s'",
             id);
    s_assert_value(sql, "caution.compliance_deadline,offender.phone,victim.safe_contact_times|"
                        "new phone number from the offender");
    snprintf(sql, sizeof sql,
             "SELECT r.offender_phone || '|' || v.safe_contact_times || '|' ||"
             " o.compliance_deadline FROM referral r JOIN victim v USING (referral_id)"
             " JOIN outcome o USING (referral_id) WHERE referral_id = '%s'",
             id);
    s_assert_value(sql, "07700 900777|Evenings after 19:00|2025-08-01");
    snprintf(sql, sizeof sql,
             "SELECT string_agg(type, ',' ORDER BY seq) FROM outbox WHERE key = '%s'", id);
    s_assert_value(sql, "cara.ReferralSubmitted,cara.OutcomeUpdated,cara.OutcomeUpdated,"
                        "cara.ReferralAmended");
    // Nothing changed: refused.
    reply = s_amend("dyfed-powys", id, "again", r);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__INVALID);
    assert_true(ti_has_error(reply, "referral"));
    cara__reply__free_unpacked(reply, NULL);
    // The caution reference cannot change; an invalid field names its path under referral.
    ti_set(&r->caution_reference, "T-AMEND-X");
    ti_set(&r->offender->sex, "unknown");
    reply = s_amend("dyfed-powys", id, "fix", r);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__INVALID);
    assert_true(ti_has_error(reply, "referral.caution_reference"));
    assert_true(ti_has_error(reply, "referral.offender.sex"));
    cara__reply__free_unpacked(reply, NULL);

    // Show: the force sees the referral, its outcome and its amendments; another does not.
    Cara__ShowReferral show = CARA__SHOW_REFERRAL__INIT;
    show.referral_id = id;
    reply = harness_call(harness_client(h, "intake", "police", "dyfed-powys"), &show.base);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    Cara__ReferralView *view =
        cara__referral_view__unpack(NULL, reply->payload.len, reply->payload.data);
    assert_non_null(view);
    assert_string_equal(view->referral->offender->phone, "07700 900777");
    assert_string_equal(view->referral->victim->name, "Sian Pryce");
    assert_string_equal(view->outcome->status, "received");
    assert_int_equal(view->n_amendments, 3);
    cara__referral_view__free_unpacked(view, NULL);
    cara__reply__free_unpacked(reply, NULL);
    reply = harness_call(harness_client(h, "intake", "police", "gwent"), &show.base);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__NOT_FOUND);
    cara__reply__free_unpacked(reply, NULL);
    reply = harness_call(harness_client(h, "intake", "operator", "ops"), &show.base);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__FORBIDDEN);
    cara__reply__free_unpacked(reply, NULL);
    cara__referral__free_unpacked(r, NULL);
}

static void test_withdraw(void **state) {
    (void)state;
    Cara__Referral *r = ti_referral("dyfed-powys", "T-WITHDRAW");
    char id[UUID_STR_LEN], sql[300];
    s_submit_ok("dyfed-powys", r, id);
    Cara__Reply *reply = s_withdraw("dyfed-powys", id, "rescinded");
    assert_int_equal(reply->status, CARA__REPLY__STATUS__INVALID);
    assert_true(ti_has_error(reply, "reason_code"));
    cara__reply__free_unpacked(reply, NULL);
    reply = s_withdraw("gwent", id, "caution_rescinded");
    assert_int_equal(reply->status, CARA__REPLY__STATUS__FORBIDDEN);
    cara__reply__free_unpacked(reply, NULL);
    reply = s_withdraw("dyfed-powys", id, "caution_rescinded");
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    Cara__ReferralWithdrawn *ev =
        cara__referral_withdrawn__unpack(NULL, reply->payload.len, reply->payload.data);
    assert_non_null(ev);
    assert_string_equal(ev->force, "dyfed-powys");
    assert_string_equal(ev->reason_code, "caution_rescinded");
    cara__referral_withdrawn__free_unpacked(ev, NULL);
    cara__reply__free_unpacked(reply, NULL);
    snprintf(sql, sizeof sql,
             "SELECT r.state || '|' || o.status || '|' || w.reason_code FROM referral r"
             " JOIN outcome o USING (referral_id) JOIN withdrawal w USING (referral_id)"
             " WHERE referral_id = '%s'",
             id);
    s_assert_value(sql, "withdrawn|withdrawn|caution_rescinded");
    snprintf(sql, sizeof sql,
             "SELECT string_agg(type, ',' ORDER BY seq) FROM outbox WHERE key = '%s'", id);
    s_assert_value(sql, "cara.ReferralSubmitted,cara.OutcomeUpdated,cara.OutcomeUpdated,"
                        "cara.ReferralWithdrawn");
    // Again, or amending it now: a conflict.
    reply = s_withdraw("dyfed-powys", id, "error");
    assert_int_equal(reply->status, CARA__REPLY__STATUS__CONFLICT);
    cara__reply__free_unpacked(reply, NULL);
    ti_set(&r->officer, "PC 1 Other");
    reply = s_amend("dyfed-powys", id, "late change", r);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__CONFLICT);
    cara__reply__free_unpacked(reply, NULL);
    cara__referral__free_unpacked(r, NULL);
}

// Fetches the whole intake stream as role:org; returns the batch (asserting it was served).
static Cara__Batch *s_fetch(const char *role, const char *org, int *status) {
    client_t *c = harness_client(h, "intake", role, org);
    return harness_fetch(c, "intake", 0, 1000, status);
}

static void test_force_reads_only_its_own_outcomes(void **state) {
    (void)state;
    Cara__Referral *a = ti_referral("dyfed-powys", "T-OWN-A");
    Cara__Referral *b = ti_referral("north-wales", "T-OWN-B");
    char ida[UUID_STR_LEN], idb[UUID_STR_LEN];
    s_submit_ok("dyfed-powys", a, ida);
    s_submit_ok("north-wales", b, idb);
    int status = -1;
    Cara__Batch *batch = s_fetch("police", "dyfed-powys", &status);
    assert_non_null(batch);
    int saw_a = 0;
    for (size_t i = 0; i < batch->n_events; i++) {
        Cara__Envelope *env =
            envelope_unpack(batch->events[i]->envelope.data, batch->events[i]->envelope.len);
        assert_non_null(env);
        assert_string_equal(env->type, "cara.OutcomeUpdated");
        Cara__OutcomeUpdated *o =
            (Cara__OutcomeUpdated *)envelope_payload(env, &cara__outcome_updated__descriptor);
        assert_non_null(o);
        assert_string_equal(o->outcome->force, "dyfed-powys");
        assert_string_not_equal(o->outcome->referral_id, idb);
        saw_a |= strcmp(o->outcome->referral_id, ida) == 0;
        cara__outcome_updated__free_unpacked(o, NULL);
        cara__envelope__free_unpacked(env, NULL);
    }
    assert_true(saw_a);
    cara__batch__free_unpacked(batch, NULL);
    // North Wales sees its own referral and nothing of Dyfed-Powys.
    batch = s_fetch("police", "north-wales", &status);
    assert_non_null(batch);
    assert_int_equal(batch->n_events, 1);
    cara__batch__free_unpacked(batch, NULL);
    // Identities outside the pathway are refused.
    batch = s_fetch("provider", "hampton-south", &status);
    assert_null(batch);
    assert_int_equal(status, CARA__REPLY__STATUS__FORBIDDEN);
    batch = s_fetch("hampton_trust", "ht", &status);
    assert_null(batch);
    batch = s_fetch("service", "billing", &status);
    assert_null(batch);
    assert_int_equal(status, CARA__REPLY__STATUS__FORBIDDEN);
    // Triage (a service) sees every event, personal data included.
    batch = s_fetch("service", "triage", &status);
    assert_non_null(batch);
    assert_true(batch->n_events > 2);
    cara__batch__free_unpacked(batch, NULL);
    cara__referral__free_unpacked(a, NULL);
    cara__referral__free_unpacked(b, NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_referral_is_stored_and_published),
        cmocka_unit_test(test_missing_field),
        cmocka_unit_test(test_bad_date),
        cmocka_unit_test(test_deadline_before_caution),
        cmocka_unit_test(test_unknown_enum_value),
        cmocka_unit_test(test_oversized_and_invalid_utf8),
        cmocka_unit_test(test_all_errors_at_once_and_rejection_kept),
        cmocka_unit_test(test_wrong_force_for_the_key),
        cmocka_unit_test(test_malformed_protobuf),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_duplicate_and_conflict),
        cmocka_unit_test(test_amend),
        cmocka_unit_test(test_withdraw),
        cmocka_unit_test(test_force_reads_only_its_own_outcomes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
