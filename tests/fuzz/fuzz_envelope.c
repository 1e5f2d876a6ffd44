// libFuzzer: every decoder a network peer reaches first: the Envelope, then its payload as each
// message type a service accepts (commands, stream protocol), re-encoded to check round trips.
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "billing.pb-c.h"
#include "booking.pb-c.h"
#include "cara/envelope.h"
#include "intake.pb-c.h"
#include "national.pb-c.h"
#include "triage.pb-c.h"

static const ProtobufCMessageDescriptor *const s_types[] = {
    &cara__fetch__descriptor,
    &cara__batch__descriptor,
    &cara__head__descriptor,
    &cara__reply__descriptor,
    &cara__health__descriptor,
    &cara__dead_letter_replay__descriptor,
    &cara__submit_referral__descriptor,
    &cara__amend_referral__descriptor,
    &cara__withdraw_referral__descriptor,
    &cara__show_referral__descriptor,
    &cara__triage_decide__descriptor,
    &cara__record_needs__descriptor,
    &cara__create_cohort__descriptor,
    &cara__book_seat__descriptor,
    &cara__record_attendance__descriptor,
    &cara__record_contact__descriptor,
    &cara__record_victim_contact__descriptor,
    &cara__add_contract__descriptor,
    &cara__run_invoices__descriptor,
    &cara__national_export__descriptor,
    &cara__referral_submitted__descriptor,
    &cara__referral_triaged__descriptor,
    &cara__cohort_delivered__descriptor,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Cara__Envelope *env = envelope_unpack(data, size);
    if (env) {
        // What the services do: the payload through envelope_payload, which must agree with
        // the envelope's own type and version.
        for (size_t i = 0; i < sizeof s_types / sizeof *s_types; i++) {
            ProtobufCMessage *m = envelope_payload(env, s_types[i]);
            if (m) {
                if (strcmp(env->type, s_types[i]->name) != 0 ||
                    env->schema_version > ENVELOPE_SCHEMA_VERSION)
                    abort(); // a payload decoded under a type or version it does not have
                protobuf_c_message_free_unpacked(m, NULL);
            }
        }
        // Decode the payload as the type the envelope names, and as every other type too (a
        // peer chooses the type name).
        for (size_t i = 0; i < sizeof s_types / sizeof *s_types; i++) {
            ProtobufCMessage *m =
                protobuf_c_message_unpack(s_types[i], NULL, env->payload.len, env->payload.data);
            if (m) {
                uint8_t *out = NULL;
                size_t len = 0;
                if (envelope_encode_message(m, &out, &len) == 0)
                    free(out);
                protobuf_c_message_free_unpacked(m, NULL);
            }
        }
        cara__envelope__free_unpacked(env, NULL);
    }
    // The raw bytes as each type directly (stream events, stored replies).
    for (size_t i = 0; i < sizeof s_types / sizeof *s_types; i++) {
        ProtobufCMessage *m = protobuf_c_message_unpack(s_types[i], NULL, size, data);
        if (m)
            protobuf_c_message_free_unpacked(m, NULL);
    }
    return 0;
}
