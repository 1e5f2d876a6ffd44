// Helpers shared by the triage integration tests (header-only: each test is its own binary).
// They drive the real chain: police -> intake (SubmitReferral) -> intake stream -> triage.
#ifndef CARA_TEST_TRIAGE_SUPPORT_H
#define CARA_TEST_TRIAGE_SUPPORT_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "cara/envelope.h"
#include "cara/timeutil.h"
#include "test_intake_support.h"
#include "triage.pb-c.h"

#define TT_DAY_US (86400LL * 1000000LL)

// A caution time days_ago days back (never on a 29 February, so "same day, N years earlier"
// exists), as an ISO time in buf.
static inline const char *tt_caution_at(int days_ago, char *buf, size_t size) {
    int64_t at = time_now_us() - (int64_t)days_ago * TT_DAY_US;
    char day[16];
    time_format_date((int32_t)(at / TT_DAY_US), day, sizeof day);
    if (strcmp(day + 5, "02-29") == 0)
        at -= TT_DAY_US;
    return time_format_iso(at, buf, size);
}

// The date years before the caution time given_at, plus plus_days days, as YYYY-MM-DD.
static inline const char *tt_years_before(const char *given_at, int years, int plus_days, char *buf,
                                          size_t size) {
    int y = 0, m = 0, d = 0;
    assert_int_equal(sscanf(given_at, "%d-%d-%d", &y, &m, &d), 3);
    int32_t day = time_days_from_civil(y - years, (unsigned)m, (unsigned)d) + plus_days;
    return time_format_date(day, buf, size);
}

typedef void (*tt_tweak_fn)(Cara__Referral *r);

// Submits the sample referral (caution given two days ago unless tweak changes it) as police of
// force and returns the new referral id (caller frees). Fails the test if intake refuses it.
static inline char *tt_submit(harness_t *h, const char *force, const char *ref, tt_tweak_fn tweak) {
    Cara__Referral *r = ti_referral(force, ref);
    assert_non_null(r);
    char when[40];
    ti_set(&r->caution->given_at, tt_caution_at(2, when, sizeof when));
    if (tweak)
        tweak(r);
    Cara__Reply *reply = ti_submit(harness_client(h, "intake", "police", force), r);
    Cara__ReferralAccepted *ok = ti_accepted(reply);
    if (!ok)
        ti_print_errors(reply);
    assert_non_null(ok);
    char *id = strdup(ok->referral_id);
    cara__referral_accepted__free_unpacked(ok, NULL);
    cara__reply__free_unpacked(reply, NULL);
    cara__referral__free_unpacked(r, NULL);
    return id;
}

// Waits until the case reads status/pathway/provider (with "-" for none).
static inline void tt_wait_case(harness_t *h, const char *id, const char *expect) {
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT status || '/' || coalesce(pathway, '-') || '/' || coalesce(provider_id, '-')"
             " FROM triage_case WHERE referral_id = '%s'",
             id);
    int rc = harness_wait_value(h, "triage", sql, expect, 15000);
    if (rc != 0) {
        char *got = harness_value(h, "triage", sql);
        fprintf(stderr, "  case %s: expected %s, got %s\n", id, expect, got ? got : "(none)");
        free(got);
    }
    assert_int_equal(rc, 0);
}

// The one value of a query on the triage schema about case id ("%s" in fmt is the id).
static inline char *tt_case_value(harness_t *h, const char *fmt, const char *id) {
    char sql[600];
    snprintf(sql, sizeof sql, fmt, id);
    char *v = harness_value(h, "triage", sql);
    assert_non_null(v);
    return v;
}

// Asserts a query about case id gives expect.
static inline void tt_expect(harness_t *h, const char *fmt, const char *id, const char *expect) {
    char *v = tt_case_value(h, fmt, id);
    if (strcmp(v, expect) != 0)
        fprintf(stderr, "  %s: expected %s, got %s\n", fmt, expect, v);
    assert_string_equal(v, expect);
    free(v);
}

// Calls a triage command as a member of triage staff; returns the reply (caller frees).
static inline Cara__Reply *tt_staff(harness_t *h, const ProtobufCMessage *msg) {
    Cara__Reply *reply = harness_call(harness_client(h, "triage", "triage", "diversion"), msg);
    assert_non_null(reply);
    return reply;
}

// The last event of type on the triage stream about id, as fetched by (role, org); NULL if
// none. Caller frees with protobuf_c_message_free_unpacked.
static inline ProtobufCMessage *tt_stream_event(harness_t *h, const char *role, const char *org,
                                                const char *type,
                                                const ProtobufCMessageDescriptor *desc,
                                                const char *id) {
    int status = 0;
    Cara__Batch *b =
        harness_fetch(harness_client(h, "triage", role, org), "triage", 0, 10000, &status);
    assert_non_null(b);
    ProtobufCMessage *found = NULL;
    for (size_t i = 0; i < b->n_events; i++) {
        Cara__Envelope *e =
            envelope_unpack(b->events[i]->envelope.data, b->events[i]->envelope.len);
        assert_non_null(e);
        if (strcmp(e->type, type) == 0 && strcmp(e->correlation_id, id) == 0) {
            if (found)
                protobuf_c_message_free_unpacked(found, NULL);
            found = envelope_payload(e, desc);
            assert_non_null(found);
        }
        cara__envelope__free_unpacked(e, NULL);
    }
    cara__batch__free_unpacked(b, NULL);
    return found;
}

#endif
