// libFuzzer: intake's commands as a police system's frame reaches them: the Envelope, the payload
// through envelope_payload as SubmitReferral, AmendReferral and WithdrawReferral, then everything
// intake checks without its database: the referral's validation and normalisation (with the
// amendment's "referral." paths), the field-by-field difference an amendment records, and the
// text checks on reasons.
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cara/envelope.h"
#include "cara/utf8.h"
#include "cara/reply.h"
#include "cara/uuid.h"
#include "intake.pb-c.h"
#include "intake_diff.h"
#include "intake_validate.h"

static const intake_rules_t s_rules = {.now_us = 1750000000000000LL, .deadline_weeks = 16};

// Validates r as intake does; if valid, normalises a copy and diffs it against r (an amendment
// of r into its normalised self). Returns nothing: a finding is a sanitizer report or abort.
static void s_referral(const Cara__Referral *r, const char *prefix) {
    reply_t reply;
    reply_init(&reply);
    size_t errors = intake_validate_referral(r, &s_rules, prefix, &reply);
    if (errors != reply_error_count(&reply))
        abort(); // the count returned is the count reported
    if (errors == 0) {
        uint8_t *buf = NULL;
        size_t len = 0;
        if (envelope_encode_message(&r->base, &buf, &len) == 0) {
            Cara__Referral *copy = cara__referral__unpack(NULL, len, buf);
            if (!copy)
                abort(); // what we encode we must decode
            if (intake_referral_normalise(copy, s_rules.deadline_weeks) == 0) {
                intake_diff_t diff = {0};
                if (intake_diff(&r->base, &copy->base, &diff) >= 0)
                    for (size_t i = 0; i < diff.n; i++)
                        if (!diff.items[i]->field || !*diff.items[i]->field)
                            abort(); // every change names its field
                intake_diff_clear(&diff);
            }
            cara__referral__free_unpacked(copy, NULL);
            free(buf);
        }
    }
    reply_clear(&reply);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Cara__Envelope *env = envelope_unpack(data, size);
    if (!env)
        return 0;
    (void)utf8_valid(env->event_id);
    Cara__SubmitReferral *submit =
        (Cara__SubmitReferral *)envelope_payload(env, &cara__submit_referral__descriptor);
    if (submit) {
        if (submit->referral)
            s_referral(submit->referral, "");
        cara__submit_referral__free_unpacked(submit, NULL);
    }
    Cara__AmendReferral *amend =
        (Cara__AmendReferral *)envelope_payload(env, &cara__amend_referral__descriptor);
    if (amend) {
        (void)uuid_valid(amend->referral_id);
        (void)utf8_valid(amend->reason);
        if (amend->referral)
            s_referral(amend->referral, "referral.");
        cara__amend_referral__free_unpacked(amend, NULL);
    }
    Cara__WithdrawReferral *withdraw =
        (Cara__WithdrawReferral *)envelope_payload(env, &cara__withdraw_referral__descriptor);
    if (withdraw) {
        (void)uuid_valid(withdraw->referral_id);
        (void)utf8_valid(withdraw->reason);
        (void)utf8_valid(withdraw->reason_code);
        cara__withdraw_referral__free_unpacked(withdraw, NULL);
    }
    cara__envelope__free_unpacked(env, NULL);
    return 0;
}
