#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cara/log.h"
#include "cara/request_log.h"
#include "cara/stream.h"
#include "cara/timeutil.h"
#include "intake_commands.h"
#include "intake_outcome.h"
#include "intake_store.h"

static const char *const s_reason_codes[] = {"caution_rescinded", "error", "other", NULL};

static int s_known_code(const char *code) {
    for (size_t i = 0; s_reason_codes[i]; i++)
        if (strcmp(s_reason_codes[i], code) == 0)
            return 1;
    return 0;
}

int intake_withdraw_handle(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                           reply_t *reply) {
    if (!identity_is(who, "police") || !who->org[0]) {
        reply_status(reply, CARA__REPLY__STATUS__FORBIDDEN,
                     "only police forces withdraw referrals");
        return -1;
    }
    Cara__WithdrawReferral *cmd =
        (Cara__WithdrawReferral *)envelope_payload(env, &cara__withdraw_referral__descriptor);
    if (!cmd)
        return reply_field_error(reply, "payload", "is not a valid cara.WithdrawReferral");
    int rc = -1;
    db_t *db = service_db(svc);
    intake_change_t change = {0};
    char actor[128], withdrawn_at[40], why[160], text[1100];
    identity_format(who, actor, sizeof actor);
    intake_change_check(env, cmd->referral_id, cmd->reason, reply);
    if (!s_known_code(cmd->reason_code))
        reply_field_error(reply, "reason_code",
                          "unknown value; expected one of caution_rescinded, error, other");
    if (reply_error_count(reply) > 0)
        goto cleanup;
    int begun = intake_change_begin(svc, who, "withdraw", env, &cmd->base, cmd->referral_id,
                                    &change, reply);
    if (begun == 1 || begun == SERVICE_CAREFUL)
        rc = begun == 1 ? 0 : SERVICE_CAREFUL;
    if (begun != 0)
        goto cleanup;
    char *force = change.meta.force;
    const char *values[] = {cmd->referral_id, cmd->reason_code, cmd->reason, actor};
    if (db_scalar(db,
                  "INSERT INTO withdrawal (referral_id, reason_code, reason, actor)"
                  " VALUES ($1, $2, $3, $4) RETURNING to_char(withdrawn_at AT TIME ZONE 'UTC',"
                  " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
                  4, values, withdrawn_at, sizeof withdrawn_at) != 1 ||
        db_exec(db,
                "UPDATE referral SET state = 'withdrawn', updated_at = now()"
                " WHERE referral_id = $1",
                1, values) != 0)
        goto cleanup;
    snprintf(text, sizeof text, "%s: %s", cmd->reason_code, cmd->reason);
    intake_outcome_change_t ch = {.status = "withdrawn", .reason = text};
    if (intake_outcome_change(db, cmd->referral_id, force, &ch, actor, why, sizeof why) < 0)
        goto cleanup;
    Cara__ReferralWithdrawn ev = CARA__REFERRAL_WITHDRAWN__INIT;
    ev.referral_id = cmd->referral_id;
    ev.force = force;
    ev.reason_code = cmd->reason_code;
    ev.reason = cmd->reason;
    ev.withdrawn_at = withdrawn_at;
    if (outbox_append(db, &ev.base, cmd->referral_id, force, cmd->referral_id, NULL) < 0 ||
        service_audit(svc, who, "referral_withdrawn", "referral", cmd->referral_id,
                      json_pack("{s:s}", "reason_code", cmd->reason_code)) != 0 ||
        reply_ok(reply, &ev.base) != 0 || request_log_fill(db, change.key, reply) != 0)
        goto cleanup;
    log_info("referral_withdrawn", "referral_id", cmd->referral_id);
    rc = 0;
cleanup:
    // A failure that set no status of its own is a storage failure: the client may retry.
    if (rc != 0 && rc != SERVICE_CAREFUL && reply->msg.status == CARA__REPLY__STATUS__OK)
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE,
                     "could not store the withdrawal; retry");
    intake_change_clear(&change);
    cara__withdraw_referral__free_unpacked(cmd, NULL);
    return rc;
}
