// Helpers shared by the intake integration tests (header-only: each test is its own binary).
#ifndef CARA_TEST_INTAKE_SUPPORT_H
#define CARA_TEST_INTAKE_SUPPORT_H
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cara/pbjson.h"
#include "cara/timeutil.h"
#include "harness.h"
#include "intake.pb-c.h"

// Triage's routing in the tests: Dyfed-Powys to provider p1 and, if gwent, Gwent to p2, both
// since 2020. Call before starting triage.
static inline void ti_route(harness_t *h, int gwent) {
    harness_config(
        h, "triage", "routing",
        gwent ? "[{\"force\": \"dyfed-powys\", \"provider\": \"p1\", \"from\": \"2020-01-01\"},"
                " {\"force\": \"gwent\", \"provider\": \"p2\", \"from\": \"2020-01-01\"}]"
              : "[{\"force\": \"dyfed-powys\", \"provider\": \"p1\", \"from\": \"2020-01-01\"}]");
}

// The sample referral (examples/referral.json) with its force and caution reference replaced.
// Free with cara__referral__free_unpacked(r, NULL).
static inline Cara__Referral *ti_referral(const char *force, const char *reference) {
    json_error_t jerr;
    json_t *doc = json_load_file("examples/referral.json", 0, &jerr);
    if (!doc) {
        fprintf(stderr, "examples/referral.json: %s\n", jerr.text);
        return NULL;
    }
    json_object_set_new(doc, "force", json_string(force));
    json_object_set_new(doc, "caution_reference", json_string(reference));
    char err[256];
    Cara__Referral *r =
        (Cara__Referral *)pbjson_to_message(&cara__referral__descriptor, doc, err, sizeof err);
    if (!r)
        fprintf(stderr, "examples/referral.json: %s\n", err);
    json_decref(doc);
    return r;
}

// Replaces a string field of a message built by pbjson or unpack.
static inline void ti_set(char **field, const char *value) {
    if (*field && *field != protobuf_c_empty_string)
        free(*field);
    *field = strdup(value);
}

static inline Cara__Reply *ti_submit(client_t *c, Cara__Referral *r) {
    Cara__SubmitReferral cmd = CARA__SUBMIT_REFERRAL__INIT;
    cmd.referral = r;
    return harness_call(c, &cmd.base);
}

// True if the reply names field among its errors.
static inline int ti_has_error(const Cara__Reply *reply, const char *field) {
    for (size_t i = 0; reply && i < reply->n_errors; i++)
        if (strcmp(reply->errors[i]->field, field) == 0)
            return 1;
    return 0;
}

static inline void ti_print_errors(const Cara__Reply *reply) {
    for (size_t i = 0; reply && i < reply->n_errors; i++)
        fprintf(stderr, "  error %s: %s\n", reply->errors[i]->field, reply->errors[i]->reason);
    if (reply && reply->message && *reply->message)
        fprintf(stderr, "  message: %s\n", reply->message);
}

// The accepted answer of an OK reply (NULL otherwise).
static inline Cara__ReferralAccepted *ti_accepted(const Cara__Reply *reply) {
    if (!reply || reply->status != CARA__REPLY__STATUS__OK)
        return NULL;
    return cara__referral_accepted__unpack(NULL, reply->payload.len, reply->payload.data);
}

// Submits r (and frees it) as force. Returns the accepted referral's id (caller frees), or NULL
// (reason on stderr).
static inline char *ti_submit_id(harness_t *h, const char *force, Cara__Referral *r) {
    if (!r)
        return NULL;
    Cara__Reply *reply = ti_submit(harness_client(h, "intake", "police", force), r);
    Cara__ReferralAccepted *ok = ti_accepted(reply);
    if (!ok)
        ti_print_errors(reply);
    char *id = ok ? strdup(ok->referral_id) : NULL;
    if (ok)
        cara__referral_accepted__free_unpacked(ok, NULL);
    if (reply)
        cara__reply__free_unpacked(reply, NULL);
    cara__referral__free_unpacked(r, NULL);
    return id;
}

// Submits a referral from force, cautioned two days ago, with caution reference ref, the
// compliance deadline (a date; "" = the force's default) and the interpreter flag, and waits
// (15 s) until booking holds it as an open provider case. Returns its referral id (caller
// frees), or NULL (reason on stderr).
static inline char *ti_open_case(harness_t *h, const char *force, const char *ref,
                                 const char *deadline, int interpreter) {
    char when[40];
    Cara__Referral *r = ti_referral(force, ref);
    if (!r)
        return NULL;
    ti_set(&r->caution->given_at,
           time_format_iso(time_now_us() - 2LL * 86400 * 1000000, when, sizeof when));
    if (deadline[0])
        ti_set(&r->caution->compliance_deadline, deadline);
    r->offender->interpreter_needed = interpreter;
    char *id = ti_submit_id(h, force, r);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT status FROM provider_case WHERE referral_id = '%s'",
             id ? id : "");
    if (id && harness_wait_value(h, "booking", sql, "open", 15000) != 0) {
        free(id);
        id = NULL;
    }
    return id;
}

#endif
