// The start that every change of a stored referral shares (amendment, withdrawal): the checks
// of the command's common fields, its idempotency record, and the referral itself, loaded and
// locked, of the calling force and not withdrawn.
#include <stdio.h>
#include <string.h>

#include "cara/utf8.h"
#include "intake_commands.h"

#define S_MAX_REASON 1000

int intake_change_check(const Cara__Envelope *env, const char *referral_id, const char *reason,
                        reply_t *reply) {
    if (!uuid_valid(referral_id))
        reply_field_error(reply, "referral_id", "must be a referral id (UUID)");
    if (!*reason)
        reply_field_error(reply, "reason", "is required");
    else if (strlen(reason) > S_MAX_REASON || !utf8_valid(reason))
        reply_field_error(reply, "reason", "must be UTF-8 text of at most %d bytes", S_MAX_REASON);
    if (!utf8_valid(env->event_id))
        reply_field_error(reply, "event_id", "is not valid UTF-8");
    return (int)reply_error_count(reply);
}

int intake_change_begin(service_t *svc, const identity_t *who, const char *kind,
                        const Cara__Envelope *env, const ProtobufCMessage *content,
                        const char *referral_id, intake_change_t *change, reply_t *reply) {
    if (service_optimistic(svc))
        return SERVICE_CAREFUL;
    snprintf(change->key, sizeof change->key, "%s:%s:%.64s", kind, who->org, env->event_id);
    int found = intake_request_check(svc, change->key, content, 1, change->hash, reply);
    if (found == 1)
        return 1;
    if (found != 0)
        return -1;
    found = intake_store_load(service_db(svc), referral_id, 1, &change->stored, &change->meta);
    if (found < 0) {
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable; retry");
        return -1;
    }
    if (found == 0) {
        reply_status(reply, CARA__REPLY__STATUS__NOT_FOUND, "no referral %s", referral_id);
        return -1;
    }
    if (strcmp(change->meta.force, who->org) != 0) {
        reply_status(reply, CARA__REPLY__STATUS__FORBIDDEN, "referral %s belongs to another force",
                     referral_id);
        return -1;
    }
    if (strcmp(change->meta.state, "withdrawn") == 0) {
        reply_status(reply, CARA__REPLY__STATUS__CONFLICT, "referral %s has been withdrawn",
                     referral_id);
        return -1;
    }
    return 0;
}

void intake_change_clear(intake_change_t *change) {
    if (change->stored)
        cara__referral__free_unpacked(change->stored, NULL);
    change->stored = NULL;
}
