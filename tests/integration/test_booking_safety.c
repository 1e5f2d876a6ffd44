// A safety concern raised by the provider's victim contact, through the real chain (police ->
// intake -> triage -> booking -> triage and intake): the triage case shows the alert at once
// (`show` and `alerts`, audited; also `cara triage alerts`), the force's outcome stream (and
// `cara outcomes`) gets one SafetyConcernRaised (the referral and when), another force gets
// nothing, triage reads nothing else of the booking stream, and the provider's notes reach no
// intake or triage table, stream or log.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <jansson.h>
#include <unistd.h>

#include "booking.pb-c.h"
#include "cara/timeutil.h"
#include "test_intake_support.h"
#include "triage.pb-c.h"

#define SECRET "victim-secret-note"

static harness_t *h;
static int s_ref = 0;

static int setup(void **state) {
    (void)state;
    h = harness_new("booking_safety");
    if (!h)
        return -1;
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

// A referral (its victim consents to contact, as in the sample) through to an open provider case.
static char *s_case(const char *force) {
    char ref[32];
    snprintf(ref, sizeof ref, "SC-%d-%d", getpid(), ++s_ref);
    char *id = ti_open_case(h, force, ref, "", 0);
    assert_non_null(id);
    return id;
}

static int s_victim(const char *provider, const char *id, const char *kind, const char *notes) {
    Cara__RecordVictimContact v = CARA__RECORD_VICTIM_CONTACT__INIT;
    v.referral_id = (char *)id;
    v.kind = (char *)kind;
    v.notes = (char *)notes;
    Cara__Reply *reply =
        harness_call(harness_client(h, "booking", "victim_contact", provider), &v.base);
    assert_non_null(reply);
    int status = reply->status;
    cara__reply__free_unpacked(reply, NULL);
    return status;
}

static char *s_value(const char *schema, const char *fmt, const char *id) {
    char sql[800];
    snprintf(sql, sizeof sql, fmt, id);
    char *v = harness_value(h, schema, sql);
    assert_non_null(v);
    return v;
}

static void s_expect(const char *schema, const char *fmt, const char *id, const char *want) {
    char *v = s_value(schema, fmt, id);
    assert_string_equal(v, want);
    free(v);
}

// Counts the events of one type about referral id that `client` may fetch from `stream`.
static int s_count(client_t *client, const char *stream, const char *type, const char *id,
                   char *raised_at, size_t raised_size) {
    int status, n = 0;
    Cara__Batch *batch = harness_fetch(client, stream, 0, 10000, &status);
    assert_non_null(batch);
    for (size_t i = 0; i < batch->n_events; i++) {
        Cara__Envelope *e =
            envelope_unpack(batch->events[i]->envelope.data, batch->events[i]->envelope.len);
        assert_non_null(e);
        assert_null(memmem(e->payload.data, e->payload.len, SECRET, strlen(SECRET)));
        if (strcmp(e->type, type) == 0 && (!id || strcmp(e->correlation_id, id) == 0)) {
            n++;
            if (raised_at && strcmp(type, "cara.SafetyConcernRaised") == 0) {
                Cara__SafetyConcernRaised *m = (Cara__SafetyConcernRaised *)envelope_payload(
                    e, &cara__safety_concern_raised__descriptor);
                assert_non_null(m);
                assert_string_equal(m->referral_id, id);
                assert_string_not_equal(m->caution_reference, "");
                snprintf(raised_at, raised_size, "%s", m->raised_at);
                cara__safety_concern_raised__free_unpacked(m, NULL);
            }
        }
        cara__envelope__free_unpacked(e, NULL);
    }
    cara__batch__free_unpacked(batch, NULL);
    return n;
}

// Reads a whole log file and tells whether it contains needle.
static int s_log_has(const char *service, const char *needle) {
    int found = harness_log_has(h, service, needle);
    assert_int_not_equal(found, -1);
    return found;
}

// Runs `cara --config <role:org's config for service> ARGS...`; stdout in out. Returns the exit
// code.
#define s_cli(role, org, service, out, out_size, ...)                                              \
    (assert_int_equal(                                                                             \
         harness_client_config(h, role, org, service, 5000, 0, s_config, sizeof s_config), 0),     \
     harness_cara(h, out, out_size, "--config", s_config, __VA_ARGS__))
static char s_config[400];

static void test_safety_concern_reaches_triage_and_force(void **state) {
    (void)state;
    char *id = s_case("dyfed-powys");
    char *other = s_case("gwent");
    assert_int_equal(s_victim("p1", id, "offer", "offered support by phone"),
                     CARA__REPLY__STATUS__OK);
    assert_int_equal(s_victim("p2", other, "offer", "offered support"), CARA__REPLY__STATUS__OK);
    int64_t before = time_now_us() - 1000000;
    assert_int_equal(s_victim("p1", id, "safety_concern", SECRET ": new address disclosed"),
                     CARA__REPLY__STATUS__OK);
    // Another provider cannot raise one on this case.
    assert_int_equal(s_victim("p2", id, "safety_concern", "x"), CARA__REPLY__STATUS__NOT_FOUND);

    // Triage: the alert on the case, audited.
    char sql[300];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM safety_alert WHERE referral_id = '%s'", id);
    assert_int_equal(harness_wait_value(h, "triage", sql, "1", 15000), 0);
    s_expect("triage",
             "SELECT count(*) FROM audit WHERE action = 'safety_concern_raised'"
             " AND entity_id = '%s' AND actor = 'service:booking'",
             id, "1");
    s_expect("triage", "SELECT count(*) FROM safety_alert WHERE referral_id <> '%s'", id, "0");
    Cara__ShowTriageCase show = CARA__SHOW_TRIAGE_CASE__INIT;
    show.referral_id = id;
    client_t *staff = harness_client(h, "triage", "triage", "hub");
    Cara__Reply *reply = harness_call(staff, &show.base);
    assert_non_null(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    Cara__TriageCaseList *list =
        cara__triage_case_list__unpack(NULL, reply->payload.len, reply->payload.data);
    cara__reply__free_unpacked(reply, NULL);
    assert_non_null(list);
    assert_int_equal(list->n_cases, 1);
    assert_int_equal(list->cases[0]->safety_concerns, 1);
    int64_t at;
    assert_int_equal(time_parse_iso(list->cases[0]->last_safety_concern_at, &at), 0);
    assert_true(at >= before && at <= time_now_us());
    cara__triage_case_list__free_unpacked(list, NULL);
    Cara__ListSafetyAlerts alerts = CARA__LIST_SAFETY_ALERTS__INIT;
    reply = harness_call(staff, &alerts.base);
    assert_non_null(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    list = cara__triage_case_list__unpack(NULL, reply->payload.len, reply->payload.data);
    cara__reply__free_unpacked(reply, NULL);
    assert_non_null(list);
    assert_int_equal(list->n_cases, 1);
    assert_string_equal(list->cases[0]->referral_id, id);
    cara__triage_case_list__free_unpacked(list, NULL);
    alerts.since = "2999-01-01";
    reply = harness_call(staff, &alerts.base);
    assert_non_null(reply);
    list = cara__triage_case_list__unpack(NULL, reply->payload.len, reply->payload.data);
    cara__reply__free_unpacked(reply, NULL);
    assert_non_null(list);
    assert_int_equal(list->n_cases, 0);
    cara__triage_case_list__free_unpacked(list, NULL);
    // Only triage staff.
    reply = harness_call(harness_client(h, "triage", "provider", "p1"), &alerts.base);
    assert_non_null(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__FORBIDDEN);
    cara__reply__free_unpacked(reply, NULL);

    // The force: one SafetyConcernRaised, at once; the other force none.
    snprintf(sql, sizeof sql, "SELECT count(*) FROM safety_concern WHERE referral_id = '%s'", id);
    assert_int_equal(harness_wait_value(h, "intake", sql, "1", 15000), 0);
    s_expect("intake",
             "SELECT count(*) FROM audit WHERE action = 'safety_concern_told' AND entity_id = '%s'",
             id, "1");
    char raised[40] = "";
    client_t *dp = harness_client(h, "intake", "police", "dyfed-powys");
    assert_int_equal(s_count(dp, "intake", "cara.SafetyConcernRaised", id, raised, sizeof raised),
                     1);
    assert_int_equal(time_parse_iso(raised, &at), 0);
    assert_true(at >= before && at <= time_now_us());
    client_t *gwent = harness_client(h, "intake", "police", "gwent");
    assert_int_equal(s_count(gwent, "intake", "cara.SafetyConcernRaised", NULL, NULL, 0), 0);
    assert_true(s_count(gwent, "intake", "cara.OutcomeUpdated", other, NULL, 0) > 0);

    // Through the cara client: the force's `outcomes` has one safety_concern line, the other
    // force's none; `triage alerts` lists the case.
    static char out[65536];
    assert_int_equal(s_cli("police", "dyfed-powys", "intake", out, sizeof out, "outcomes", NULL),
                     0);
    char *line = strstr(out, "\"safety_concern\"");
    assert_non_null(line);
    assert_null(strstr(line + 1, "\"safety_concern\""));
    assert_non_null(strstr(line, id));
    assert_non_null(strstr(line, "\"raised_at\""));
    assert_null(strstr(out, SECRET));
    assert_int_equal(s_cli("police", "gwent", "intake", out, sizeof out, "outcomes", NULL), 0);
    assert_null(strstr(out, "safety_concern"));
    assert_non_null(strstr(out, other));
    assert_int_equal(s_cli("triage", "hub", "triage", out, sizeof out, "triage", "alerts", NULL),
                     0);
    assert_non_null(strstr(out, id));
    assert_non_null(strstr(out, "\"safety_concerns\": 1"));
    assert_null(strstr(out, other));

    // Later records change nothing: still one alert, one event (exactly once).
    assert_int_equal(s_victim("p1", id, "accepted", "accepted support"), CARA__REPLY__STATUS__OK);
    s_expect("booking",
             "SELECT count(*) FROM outbox WHERE type = 'cara.VictimContactRecorded'"
             " AND key = '%s'",
             id, "3");
    snprintf(sql, sizeof sql,
             "SELECT (SELECT seq FROM cursor WHERE stream = 'booking') >= (SELECT max(seq) FROM"
             " booking.outbox)");
    assert_int_equal(harness_wait_value(h, "intake", sql, "t", 15000), 0);
    assert_int_equal(harness_wait_value(h, "triage", sql, "t", 15000), 0);
    assert_int_equal(s_count(dp, "intake", "cara.SafetyConcernRaised", id, NULL, 0), 1);
    s_expect("triage", "SELECT count(*) FROM safety_alert WHERE referral_id = '%s'", id, "1");

    // Triage's view of the booking stream: safety concerns only.
    client_t *as_triage = harness_client(h, "booking", "service", "triage");
    assert_int_equal(s_count(as_triage, "booking", "cara.VictimContactRecorded", NULL, NULL, 0), 1);
    assert_int_equal(s_count(as_triage, "booking", "cara.CaseOpened", NULL, NULL, 0), 0);

    // The notes are nowhere but booking's victim_contact.
    static const char *const scan =
        "SELECT count(*) FROM (SELECT encode(payload, 'escape') AS t FROM outbox"
        " UNION ALL SELECT detail::text FROM audit UNION ALL SELECT row_to_json(x)::text FROM %s"
        " x UNION ALL SELECT coalesce(reason, '') FROM dead_letter) s"
        " WHERE position('" SECRET "' IN t) > 0";
    s_expect("intake", scan, "safety_concern", "0");
    s_expect("triage", scan, "safety_alert", "0");
    // Control: the scan finds the notes where they are kept.
    s_expect("booking",
             "SELECT count(*) FROM victim_contact WHERE position('" SECRET "' IN notes) > 0%s", "",
             "1");
    for (int i = 0; i < 3; i++)
        assert_false(s_log_has((const char *[]){"intake", "triage", "booking"}[i], SECRET));
    s_expect("intake", "SELECT count(*) FROM dead_letter%s", "", "0");
    s_expect("triage", "SELECT count(*) FROM dead_letter%s", "", "0");
    free(id);
    free(other);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_safety_concern_reaches_triage_and_force),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
