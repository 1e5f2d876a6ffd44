#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cara/log.h"
#include "cara/request_log.h"
#include "cara/stream.h"
#include "intake_commands.h"
#include "intake_diff.h"
#include "intake_outcome.h"
#include "intake_store.h"

// Stores one amendment and its changes. Returns 0 or -1.
static int s_record(db_t *db, const char *id, const char *actor, const char *reason,
                    const intake_diff_t *diff) {
    const char *values[] = {id, actor, reason};
    char amendment_id[UUID_STR_LEN];
    if (db_scalar(db,
                  "INSERT INTO amendment (referral_id, actor, reason) VALUES ($1, $2, $3)"
                  " RETURNING amendment_id",
                  3, values, amendment_id, sizeof amendment_id) != 1)
        return -1;
    for (size_t i = 0; i < diff->n; i++) {
        char position[24];
        snprintf(position, sizeof position, "%zu", i);
        const char *change[] = {amendment_id, position, diff->items[i]->field,
                                diff->items[i]->old_value, diff->items[i]->new_value};
        if (db_exec(db,
                    "INSERT INTO amendment_change (amendment_id, position, field, old_value,"
                    " new_value) VALUES ($1, $2::int, $3, $4, $5)",
                    5, change) != 0)
            return -1;
    }
    return 0;
}

int intake_amend_handle(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                        reply_t *reply) {
    if (!identity_is(who, "police") || !who->org[0]) {
        reply_status(reply, CARA__REPLY__STATUS__FORBIDDEN, "only police forces amend referrals");
        return -1;
    }
    Cara__AmendReferral *cmd =
        (Cara__AmendReferral *)envelope_payload(env, &cara__amend_referral__descriptor);
    if (!cmd)
        return reply_field_error(reply, "payload", "is not a valid cara.AmendReferral");
    int rc = -1;
    db_t *db = service_db(svc);
    Cara__Referral *after = cmd->referral;
    intake_change_t change = {0};
    intake_diff_t diff = {0};
    char actor[128];
    identity_format(who, actor, sizeof actor);
    intake_change_check(env, cmd->referral_id, cmd->reason, reply);
    if (!after)
        reply_field_error(reply, "referral", "is required");
    if (reply_error_count(reply) > 0)
        goto cleanup;
    int begun =
        intake_change_begin(svc, who, "amend", env, &cmd->base, cmd->referral_id, &change, reply);
    if (begun == 1 || begun == SERVICE_CAREFUL)
        rc = begun == 1 ? 0 : SERVICE_CAREFUL;
    if (begun != 0)
        goto cleanup;
    const Cara__Referral *before = change.stored;
    if (strcmp(after->force, before->force) != 0)
        reply_field_error(reply, "referral.force", "cannot change (it is %s)", before->force);
    if (strcmp(after->caution_reference, before->caution_reference) != 0)
        reply_field_error(reply, "referral.caution_reference", "cannot change (it is %s)",
                          before->caution_reference);
    intake_rules_t rules;
    intake_rules_for(svc, who->org, &rules);
    if (intake_validate_referral(after, &rules, "referral.", reply) > 0 ||
        reply_error_count(reply) > 0)
        goto cleanup;
    if (intake_referral_normalise(after, rules.deadline_weeks) != 0 ||
        intake_diff(&before->base, &after->base, &diff) < 0)
        goto cleanup;
    if (diff.n == 0) {
        reply_field_error(reply, "referral", "no field differs from the referral as it stands");
        goto cleanup;
    }
    if (intake_store_update(db, cmd->referral_id, after) != 0 ||
        s_record(db, cmd->referral_id, actor, cmd->reason, &diff) != 0)
        goto cleanup;
    if (strcmp(before->caution->compliance_deadline, after->caution->compliance_deadline) != 0) {
        intake_outcome_change_t ch = {.compliance_deadline = after->caution->compliance_deadline};
        char why[160];
        if (intake_outcome_change(db, cmd->referral_id, before->force, &ch, actor, why,
                                  sizeof why) != 1)
            goto cleanup;
    }
    Cara__ReferralAmended ev = CARA__REFERRAL_AMENDED__INIT;
    ev.referral_id = cmd->referral_id;
    ev.reason = cmd->reason;
    ev.changes = diff.items;
    ev.n_changes = diff.n;
    ev.referral = after;
    json_t *fields = json_array();
    for (size_t i = 0; fields && i < diff.n; i++)
        json_array_append_new(fields, json_string(diff.items[i]->field));
    if (outbox_append(db, &ev.base, cmd->referral_id, before->force, cmd->referral_id, NULL) < 0 ||
        service_audit(svc, who, "referral_amended", "referral", cmd->referral_id,
                      json_pack("{s:o}", "fields", fields)) != 0 ||
        reply_ok(reply, &ev.base) != 0 || request_log_fill(db, change.key, reply) != 0)
        goto cleanup;
    log_info("referral_amended", "referral_id", cmd->referral_id);
    rc = 0;
cleanup:
    // A failure that set no status of its own is a storage failure: the client may retry.
    if (rc != 0 && rc != SERVICE_CAREFUL && reply->msg.status == CARA__REPLY__STATUS__OK)
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE,
                     "could not store the amendment; retry");
    intake_diff_clear(&diff);
    intake_change_clear(&change);
    cara__amend_referral__free_unpacked(cmd, NULL);
    return rc;
}
