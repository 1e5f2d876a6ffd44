// libFuzzer: a police system's referral, both ways it can arrive: JSON (converted by pbjson
// at the edge) and protobuf (SubmitReferral), then intake's full validation and normalisation.
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "cara/pbjson.h"
#include "cara/reply.h"
#include "intake.pb-c.h"
#include "intake_validate.h"

static void s_validate(Cara__Referral *r) {
    reply_t reply;
    reply_init(&reply);
    intake_rules_t rules = {.now_us = 1750000000000000LL, .deadline_weeks = 16};
    if (intake_validate_referral(r, &rules, "", &reply) == 0)
        intake_referral_normalise(r, rules.deadline_weeks);
    reply_clear(&reply);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    json_error_t err;
    json_t *doc = json_loadb((const char *)data, size, 0, &err);
    if (doc) {
        char why[256];
        Cara__Referral *r =
            (Cara__Referral *)pbjson_to_message(&cara__referral__descriptor, doc, why, sizeof why);
        if (r) {
            json_t *back = pbjson_from_message(&r->base);
            json_decref(back);
            s_validate(r);
            cara__referral__free_unpacked(r, NULL);
        }
        json_decref(doc);
    }
    Cara__SubmitReferral *cmd = cara__submit_referral__unpack(NULL, size, data);
    if (cmd) {
        if (cmd->referral)
            s_validate(cmd->referral);
        cara__submit_referral__free_unpacked(cmd, NULL);
    }
    return 0;
}
