// Bad input against every running service: random and truncated protobuf, a wrong envelope
// type, a future schema version, garbage payloads for every command, a frame over
// ZMQ_MAXMSGSIZE, invalid UTF-8, SQL metacharacters, dates out of range. Each gets a clear
// error reply (or, for the over-size frame, nothing), the service stays up, and nothing
// refused is stored.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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
// Who may send each service commands (so that garbage reaches the decoders, not the door).
static const char *const s_roles[][2] = {{"police", "dyfed-powys"},
                                         {"triage", "diversion"},
                                         {"provider", "p1"},
                                         {"finance", "p1"},
                                         {"hampton_trust", "ht"}};
// Every command each service handles (service.c's built-ins included: Fetch, Health).
static const char *const s_commands[][16] = {
    {"cara.SubmitReferral", "cara.AmendReferral", "cara.WithdrawReferral", "cara.ShowReferral",
     "cara.ListRejectedSubmissions", "cara.Fetch", "cara.HealthRequest", NULL},
    {"cara.TriageDecide", "cara.RecordNeeds", "cara.ShowTriageCase", "cara.ListOverdue",
     "cara.Fetch", "cara.HealthRequest", NULL},
    {"cara.CreateCohort", "cara.CancelCohort", "cara.ListCohorts", "cara.BookSeat",
     "cara.RecordAttendance", "cara.RecordContact", "cara.RecordVictimContact", "cara.ListCases",
     "cara.CancelBooking", "cara.Shortfall", "cara.ListVictimContacts", "cara.Fetch",
     "cara.HealthRequest", NULL},
    {"cara.AddContract", "cara.VaryContract", "cara.ContractStatusRequest", "cara.RecordTraining",
     "cara.RunInvoices", "cara.ListInvoices", "cara.Fetch", "cara.HealthRequest", NULL},
    {"cara.NationalExport", "cara.Fetch", "cara.HealthRequest", NULL}};
static long s_cases, s_clear, s_silent, s_verbatim;
static const char *s_current = ""; // the command being tried (for diagnostics)

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
    printf("# bad input: %ld cases sent: %ld refused with a clear error, %ld hostile texts stored"
           " verbatim, %ld random frames unanswered, %ld valid reads answered; services all up,"
           " nothing refused stored\n",
           s_cases, s_clear, s_verbatim, s_silent, s_cases - s_clear - s_verbatim - s_silent);
    harness_destroy(&h);
    return 0;
}

// Reads: random bytes may well decode as a valid read (a Fetch after some seq), and get its
// answer; writes must never succeed on garbage.
static int s_read_only(const char *type) {
    static const char *const reads[] = {"cara.Fetch",
                                        "cara.ListOverdue",
                                        "cara.ShowReferral",
                                        "cara.ShowTriageCase",
                                        "cara.ListRejectedSubmissions",
                                        "cara.ListCohorts",
                                        "cara.ListCases",
                                        "cara.Shortfall",
                                        "cara.ListVictimContacts",
                                        "cara.ContractStatusRequest",
                                        "cara.ListInvoices",
                                        "cara.HealthRequest",
                                        "cara.NationalExport",
                                        NULL};
    for (size_t i = 0; reads[i]; i++)
        if (strcmp(type, reads[i]) == 0)
            return 1;
    return 0;
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
        fprintf(stderr, "%s: unclear answer: status %d, message \"%s\"\n", s_current, reply->status,
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

// Row counts of every table of the service's schema, as "table=n ..." (audit rows of refusals
// and intake's kept record of refused submissions excepted: refusals are meant to write those;
// cursor: consumers' positions move on their own).
static char *s_outbox_count(const char *service) {
    char sql[600];
    snprintf(sql, sizeof sql,
             "SELECT string_agg(table_name, ' ' ORDER BY table_name) FROM"
             " information_schema.tables WHERE table_schema = '%s' AND table_type = 'BASE TABLE'"
             " AND table_name NOT IN ('audit', 'rejected_submission', 'cursor')",
             service);
    char *names = harness_value(h, service, sql);
    assert_non_null(names);
    size_t cap = 4096, n = 0;
    char *out = calloc(1, cap), *save = NULL;
    for (char *t = strtok_r(names, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s.%s", service, t);
        char *v = harness_value(h, service, sql);
        assert_non_null(v);
        n += (size_t)snprintf(out + n, cap - n, "%s=%s ", t, v);
        assert_true(n < cap);
        free(v);
    }
    free(names);
    snprintf(sql, sizeof sql, "SELECT 'audit=' || count(*) FROM audit WHERE action <> 'refused'");
    char *v = harness_value(h, service, sql);
    n += (size_t)snprintf(out + n, cap - n, "%s", v);
    free(v);
    return out;
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
            s_silent += env == NULL;
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
            s_current = s_commands[s][k];
            // Garbage payload under a real command type.
            for (int i = 0; i < 64; i++)
                junk[i] = (uint8_t)rand_r(&seed);
            s_envelope(s_commands[s][k], 1, junk, 64, &frame, &len);
            s_expect_error_or_read(c, frame, len, s_read_only(s_commands[s][k]));
            // A truncated envelope (cut where it may still decode, without its payload: an
            // empty read is a valid read; an empty write never is).
            s_expect_error_or_read(c, frame, len / 2, s_read_only(s_commands[s][k]));
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
    char *stored = harness_value(h, "intake",
                                 "SELECT offender_name FROM referral WHERE"
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
    char *none = harness_value(h, "intake",
                               "SELECT count(*) FROM referral WHERE"
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
    // A valid cohort whose town and facilitator are hostile text: stored byte for byte (the
    // facilitators pass through JSON on their way to an array column).
    static const char town[] = "Llan'); DROP TABLE cohort; -- \"$$\\";
    char *facilitators[] = {"Ann \"Bob\" O'Neil\\'; --"};
    char a[16], b[16];
    int32_t today = (int32_t)(time_now_us() / 1000000 / 86400);
    Cara__CreateCohort good = CARA__CREATE_COHORT__INIT;
    good.cohort_type = "male_intimate";
    good.town = (char *)town;
    good.facilitators = facilitators;
    good.n_facilitators = 1;
    good.capacity = 10;
    good.part_a_date = time_format_date(today + 10, a, sizeof a);
    good.part_b_date = time_format_date(today + 38, b, sizeof b);
    reply = harness_call(harness_client(h, "booking", "provider", "p1"), &good.base);
    s_cases++;
    if (reply->status != CARA__REPLY__STATUS__OK)
        ti_print_errors(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__OK);
    cara__reply__free_unpacked(reply, NULL);
    char *stored_town = harness_value(h, "booking", "SELECT town FROM cohort");
    char *stored_fac = harness_value(h, "booking", "SELECT facilitators[1] FROM cohort");
    assert_string_equal(stored_town, town);
    s_verbatim++;
    assert_string_equal(stored_fac, facilitators[0]);
    free(stored_town);
    free(stored_fac);
}

// Every singular string field of a Referral (recursively), as a dotted path.
static size_t s_text_paths(const ProtobufCMessageDescriptor *d, const char *prefix,
                           char paths[][64], size_t n, size_t cap) {
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->label == PROTOBUF_C_LABEL_REPEATED)
            continue;
        char path[64];
        snprintf(path, sizeof path, "%s%s", prefix, f->name);
        if (f->type == PROTOBUF_C_TYPE_STRING && n < cap)
            snprintf(paths[n++], 64, "%s", path);
        else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            char sub[72];
            snprintf(sub, sizeof sub, "%s.", path);
            n = s_text_paths(f->descriptor, sub, paths, n, cap);
        }
    }
    return n;
}

// The string slot at a dotted path of msg (sub-messages must be present), or NULL.
static char **s_slot(ProtobufCMessage *msg, const char *path) {
    const char *dot = strchr(path, '.');
    size_t len = dot ? (size_t)(dot - path) : strlen(path);
    for (unsigned i = 0; i < msg->descriptor->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &msg->descriptor->fields[i];
        if (strlen(f->name) != len || strncmp(f->name, path, len) != 0)
            continue;
        void *at = (char *)msg + f->offset;
        if (!dot)
            return f->type == PROTOBUF_C_TYPE_STRING ? (char **)at : NULL;
        ProtobufCMessage *sub = *(ProtobufCMessage **)at;
        return sub ? s_slot(sub, dot + 1) : NULL;
    }
    return NULL;
}

// SQL metacharacters in every text field of a referral, one field at a time: either stored and
// shown back byte for byte, or refused with an error naming that field; nothing else happens
// (the tables are all there, nothing stored for a refusal).
static void test_sql_metacharacters_in_every_referral_field(void **state) {
    (void)state;
    static const char hostile[] = "O'Brien\"; DROP TABLE referral; -- \\ $1 %s /*";
    client_t *police = harness_client(h, "intake", "police", "dyfed-powys");
    char paths[64][64];
    size_t n = s_text_paths(&cara__referral__descriptor, "", paths, 0, 64);
    assert_true(n >= 20);
    int stored = 0, refused = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(paths[i], "force") == 0)
            continue; // another force's referral: refused at the door (test_access)
        char ref[40];
        snprintf(ref, sizeof ref, "SQL-%zu", i);
        Cara__Referral *r = ti_referral("dyfed-powys", ref);
        char **slot = s_slot(&r->base, paths[i]);
        assert_non_null(slot);
        ti_set(slot, hostile);
        char *before = harness_value(h, "intake", "SELECT count(*) FROM referral");
        Cara__Reply *reply = ti_submit(police, r);
        assert_non_null(reply);
        s_cases++;
        if (reply->status == CARA__REPLY__STATUS__OK) {
            Cara__ReferralAccepted *ok = ti_accepted(reply);
            assert_non_null(ok);
            Cara__ShowReferral show = CARA__SHOW_REFERRAL__INIT;
            show.referral_id = ok->referral_id;
            Cara__Reply *shown = harness_call(police, &show.base);
            assert_int_equal(shown->status, CARA__REPLY__STATUS__OK);
            Cara__ReferralView *view =
                cara__referral_view__unpack(NULL, shown->payload.len, shown->payload.data);
            assert_non_null(view);
            char **back = s_slot(&view->referral->base, paths[i]);
            assert_non_null(back);
            if (strcmp(*back, hostile) != 0)
                fprintf(stderr, "%s stored as \"%s\"\n", paths[i], *back);
            assert_string_equal(*back, hostile);
            cara__referral_view__free_unpacked(view, NULL);
            cara__reply__free_unpacked(shown, NULL);
            cara__referral_accepted__free_unpacked(ok, NULL);
            stored++;
            s_verbatim++;
        } else {
            if (!ti_has_error(reply, paths[i])) {
                fprintf(stderr, "%s: status %d without an error for the field\n", paths[i],
                        reply->status);
                ti_print_errors(reply);
            }
            assert_int_equal(reply->status, CARA__REPLY__STATUS__INVALID);
            assert_true(ti_has_error(reply, paths[i]));
            char *after = harness_value(h, "intake", "SELECT count(*) FROM referral");
            assert_string_equal(before, after);
            free(after);
            refused++;
            s_clear++;
        }
        free(before);
        cara__reply__free_unpacked(reply, NULL);
        cara__referral__free_unpacked(r, NULL);
    }
    char *tables = harness_value(h, "intake",
                                 "SELECT count(*) FROM information_schema.tables"
                                 " WHERE table_schema = 'intake'"
                                 " AND table_name IN ('referral', 'victim')");
    assert_string_equal(tables, "2");
    free(tables);
    printf("# SQL metacharacters: %zu referral text fields: %d stored verbatim, %d refused with"
           " a field error\n",
           n - 1, stored, refused);
    assert_true(stored > 0);
}

// The stream protocol with hostile values: another stream's name, a name full of SQL, positions
// past the head and at the top of the range, max 0 and at the top of the range. Each gets a
// clear answer (an empty or bounded batch, or an error), the service stays up.
static void test_stream_protocol(void **state) {
    (void)state;
    for (int s = 0; s < 5; s++) {
        client_t *reader = harness_client(h, s_all[s], "operator", "ops"); // may read any stream
        const char *other = s_all[(s + 1) % 5];
        struct {
            const char *stream;
            uint64_t after;
            uint32_t max;
            int ok; // 1: a batch; 0: an error
        } cases[] = {
            {s_all[s], 0, 0, 1},
            {s_all[s], 0, UINT32_MAX, 1},
            {s_all[s], 1u << 30, 10, 1},
            {s_all[s], INT64_MAX, 10, 1},
            {s_all[s], UINT64_MAX, 10, 1},
            {other, 0, 10, 0},
            {"intake'; DROP TABLE outbox; --", 0, 10, 0},
            {"\xc3\x28", 0, 10, 0},
        };
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            int status = -1;
            Cara__Batch *b =
                harness_fetch(reader, cases[i].stream, cases[i].after, cases[i].max, &status);
            s_cases++;
            if (cases[i].ok != (b != NULL))
                fprintf(stderr, "%s: Fetch %zu (after %llu, max %u): status %d\n", s_all[s], i,
                        (unsigned long long)cases[i].after, cases[i].max, status);
            if (cases[i].ok) {
                assert_non_null(b);
                assert_true(b->n_events <= 1000);
                if (cases[i].after >= (1u << 30))
                    assert_int_equal(b->n_events, 0);
            } else {
                assert_null(b);
                assert_int_not_equal(status, CARA__REPLY__STATUS__OK);
                assert_int_not_equal(status, -1);
                s_clear++;
            }
            if (b)
                cara__batch__free_unpacked(b, NULL);
        }
        assert_int_equal(harness_wait_healthy(h, s_all[s], 5000), 0);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_garbage_everywhere),
        cmocka_unit_test(test_hostile_text_in_a_referral),
        cmocka_unit_test(test_sql_metacharacters_in_every_referral_field),
        cmocka_unit_test(test_stream_protocol),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
