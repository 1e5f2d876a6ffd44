// Bad input against every running service: random and truncated protobuf, a wrong envelope
// type, a future schema version, garbage payloads for every command, a frame over
// ZMQ_MAXMSGSIZE, invalid UTF-8, SQL metacharacters, dates out of range. Each gets a clear
// error reply (or, for the over-size frame, nothing), the service stays up, and nothing
// refused is stored.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "billing.pb-c.h"
#include "booking.pb-c.h"
#include "cara/uuid.h"
#include "national.pb-c.h"
#include "test_intake_support.h"
#include "triage.pb-c.h"

static harness_t *h;
static const char *const s_all[] = {"intake", "triage", "booking", "billing", "national"};
// Who may send each service commands (so that garbage reaches the decoders, not the door).
static const char *const s_roles[][2] = {{"police", "dyfed-powys"}, {"triage", "diversion"},
                                         {"provider", "p1"},        {"finance", "p1"},
                                         {"hampton_trust", "ht"}};
static const char *const s_commands[][6] = {
    {"cara.SubmitReferral", "cara.AmendReferral", "cara.WithdrawReferral", "cara.ShowReferral",
     "cara.Fetch", NULL},
    {"cara.TriageDecide", "cara.RecordNeeds", "cara.ShowTriageCase", "cara.ListOverdue",
     "cara.Fetch", NULL},
    {"cara.CreateCohort", "cara.BookSeat", "cara.RecordAttendance", "cara.RecordContact",
     "cara.RecordVictimContact", NULL},
    {"cara.AddContract", "cara.VaryContract", "cara.RecordTraining", "cara.RunInvoices",
     "cara.Fetch", NULL},
    {"cara.NationalExport", "cara.Fetch", NULL}};
static long s_cases, s_clear;

static int setup(void **state) {
    (void)state;
    h = harness_new("bad_input");
    if (!h)
        return -1;
    harness_config(h, "intake", "pseudonym_secret", "\"bad-input-secret-0123456789\"");
    harness_config(h, "national", "pseudonym_secret", "\"bad-input-secret-0123456789\"");
    for (int i = 0; i < 5; i++)
        if (harness_start(h, s_all[i]) != 0)
            return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    printf("# bad input: %ld cases sent, %ld answered with a clear error, services all up\n",
           s_cases, s_clear);
    harness_destroy(&h);
    return 0;
}

// Reads: random bytes may well decode as a valid read (a Fetch after some seq), and get its
// answer; writes must never succeed on garbage.
static int s_read_only(const char *type) {
    return strcmp(type, "cara.Fetch") == 0 || strcmp(type, "cara.ListOverdue") == 0 ||
           strcmp(type, "cara.ShowReferral") == 0 || strcmp(type, "cara.ShowTriageCase") == 0;
}

// Sends raw bytes; expects an error reply with a message or field errors (or, for a read whose
// garbage happened to decode, any answer).
static void s_expect_error_or_read(client_t *c, const uint8_t *data, size_t len, int read_ok) {
    Cara__Envelope *env = client_call_raw(c, data, len, 5000);
    s_cases++;
    assert_non_null(env);
    Cara__Reply *reply = (Cara__Reply *)envelope_payload(env, &cara__reply__descriptor);
    assert_non_null(reply);
    if (read_ok && reply->status == CARA__REPLY__STATUS__OK) {
        cara__reply__free_unpacked(reply, NULL);
        cara__envelope__free_unpacked(env, NULL);
        return;
    }
    if (reply->status == CARA__REPLY__STATUS__OK ||
        !((reply->message && *reply->message) || reply->n_errors > 0))
        fprintf(stderr, "unclear answer: status %d, message \"%s\"\n", reply->status,
                reply->message);
    assert_int_not_equal(reply->status, CARA__REPLY__STATUS__OK);
    assert_true((reply->message && *reply->message) || reply->n_errors > 0);
    s_clear++;
    cara__reply__free_unpacked(reply, NULL);
    cara__envelope__free_unpacked(env, NULL);
}

static void s_expect_error(client_t *c, const uint8_t *data, size_t len) {
    s_expect_error_or_read(c, data, len, 0);
}

static void s_envelope(const char *type, uint32_t version, const uint8_t *payload, size_t len,
                       uint8_t **out, size_t *out_len) {
    char id[UUID_STR_LEN];
    Cara__Envelope env = CARA__ENVELOPE__INIT;
    env.event_id = uuid_new(id);
    env.type = (char *)type;
    env.schema_version = version;
    env.payload.data = (uint8_t *)payload;
    env.payload.len = len;
    assert_int_equal(envelope_encode_message(&env.base, out, out_len), 0);
}

static char *s_outbox_count(const char *service) {
    return harness_value(h, service, "SELECT count(*) || '/' || (SELECT count(*) FROM audit"
                                     " WHERE action <> 'refused') FROM outbox");
}

static void test_garbage_everywhere(void **state) {
    (void)state;
    unsigned seed = 7;
    for (int s = 0; s < 5; s++) {
        client_t *c = harness_client(h, s_all[s], s_roles[s][0], s_roles[s][1]);
        char *before = s_outbox_count(s_all[s]);
        uint8_t junk[512];
        for (int k = 0; k < 20; k++) {
            // Random bytes as the whole frame: replies with a clear error, or none at all when
            // the bytes happen to decode as something else entirely.
            size_t n = 1 + rand_r(&seed) % sizeof junk;
            for (size_t i = 0; i < n; i++)
                junk[i] = (uint8_t)rand_r(&seed);
            Cara__Envelope *env = client_call_raw(c, junk, n, 2000);
            s_cases++;
            if (env) {
                Cara__Reply *r = (Cara__Reply *)envelope_payload(env, &cara__reply__descriptor);
                assert_non_null(r);
                assert_int_not_equal(r->status, CARA__REPLY__STATUS__OK);
                s_clear++;
                cara__reply__free_unpacked(r, NULL);
                cara__envelope__free_unpacked(env, NULL);
            }
        }
        for (int k = 0; s_commands[s][k]; k++) {
            uint8_t *frame;
            size_t len;
            // Garbage payload under a real command type.
            for (int i = 0; i < 64; i++)
                junk[i] = (uint8_t)rand_r(&seed);
            s_envelope(s_commands[s][k], 1, junk, 64, &frame, &len);
            s_expect_error_or_read(c, frame, len, s_read_only(s_commands[s][k]));
            // A truncated envelope.
            s_expect_error(c, frame, len / 2);
            free(frame);
            // A future schema version: refused, not guessed at.
            s_envelope(s_commands[s][k], 99, NULL, 0, &frame, &len);
            s_expect_error(c, frame, len);
            free(frame);
        }
        // A type nobody handles.
        uint8_t *frame;
        size_t len;
        s_envelope("cara.NoSuchThing", 1, NULL, 0, &frame, &len);
        s_expect_error(c, frame, len);
        free(frame);
        // Over ZMQ_MAXMSGSIZE (1 MiB): the connection is dropped; the service carries on.
        size_t huge = 2u << 20;
        uint8_t *big = calloc(1, huge);
        assert_null(client_call_raw(c, big, huge, 1500));
        free(big);
        assert_int_equal(harness_wait_healthy(h, s_all[s], 10000), 0);
        // Nothing refused was stored: no events, no audited changes.
        char *after = s_outbox_count(s_all[s]);
        assert_string_equal(before, after);
        free(before);
        free(after);
    }
}

static void test_hostile_text_in_a_referral(void **state) {
    (void)state;
    client_t *police = harness_client(h, "intake", "police", "dyfed-powys");
    // SQL metacharacters are data: accepted and stored exactly as sent.
    Cara__Referral *r = ti_referral("dyfed-powys", "BAD-1'; DROP TABLE referral; --");
    ti_set(&r->offender->name, "Robert'); DELETE FROM victim; -- \\\" $$ %s %n");
    Cara__Reply *reply = ti_submit(police, r);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    cara__reply__free_unpacked(reply, NULL);
    char *stored = harness_value(h, "intake", "SELECT offender_name FROM referral WHERE"
                                              " caution_reference LIKE 'BAD-1%'");
    if (stored)
        assert_string_equal(stored, "Robert'); DELETE FROM victim; -- \\\" $$ %s %n");
    free(stored);
    char *victims = harness_value(h, "intake", "SELECT count(*) > 0 FROM victim");
    assert_string_equal(victims, "t");
    free(victims);
    // Invalid UTF-8 and impossible dates: field errors, nothing stored.
    ti_set(&r->caution_reference, "BAD-2");
    ti_set(&r->offender->name, "\xc3\x28 bad");
    ti_set(&r->offender->date_of_birth, "9999-99-99");
    ti_set(&r->caution->given_at, "2025-02-30T25:61:00Z");
    reply = ti_submit(police, r);
    s_cases++;
    assert_int_equal(reply->status, CARA__REPLY__STATUS__INVALID);
    assert_true(ti_has_error(reply, "offender.name"));
    assert_true(ti_has_error(reply, "offender.date_of_birth"));
    assert_true(ti_has_error(reply, "caution.given_at"));
    s_clear++;
    cara__reply__free_unpacked(reply, NULL);
    char *none = harness_value(h, "intake", "SELECT count(*) FROM referral WHERE"
                                            " caution_reference = 'BAD-2'");
    assert_string_equal(none, "0");
    free(none);
    cara__referral__free_unpacked(r, NULL);
    // And the same hostile text in other services' fields.
    Cara__CreateCohort cohort = CARA__CREATE_COHORT__INIT;
    cohort.cohort_type = "male_intimate'; --";
    cohort.town = "Town'); DROP TABLE cohort; --";
    cohort.part_a_date = "2025-13-01";
    cohort.part_b_date = "0000-00-00";
    reply = harness_call(harness_client(h, "booking", "provider", "p1"), &cohort.base);
    s_cases++;
    assert_int_equal(reply->status, CARA__REPLY__STATUS__INVALID);
    assert_true(reply->n_errors >= 3);
    s_clear++;
    cara__reply__free_unpacked(reply, NULL);
    char *cohorts = harness_value(h, "booking", "SELECT count(*) FROM cohort");
    assert_string_equal(cohorts, "0");
    free(cohorts);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_garbage_everywhere),
        cmocka_unit_test(test_hostile_text_in_a_referral),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
