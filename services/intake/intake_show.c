#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intake_commands.h"
#include "intake_outcome.h"
#include "intake_store.h"

int intake_show_handle(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                       reply_t *reply) {
    if (!identity_is(who, "police") || !who->org[0]) {
        reply_status(reply, CARA__REPLY__STATUS__FORBIDDEN, "only police forces read referrals");
        return -1;
    }
    Cara__ShowReferral *cmd =
        (Cara__ShowReferral *)envelope_payload(env, &cara__show_referral__descriptor);
    if (!cmd)
        return reply_field_error(reply, "payload", "is not a valid cara.ShowReferral");
    int rc = -1;
    db_t *db = service_db(svc);
    Cara__Referral *r = NULL;
    PGresult *outcome_res = NULL, *changes_res = NULL;
    Cara__FieldChange *changes = NULL;
    Cara__FieldChange **change_ptrs = NULL;
    Cara__Outcome outcome;
    intake_meta_t meta;
    if (!uuid_valid(cmd->referral_id)) {
        reply_field_error(reply, "referral_id", "must be a referral id (UUID)");
        goto cleanup;
    }
    int found = intake_store_load(db, cmd->referral_id, 0, &r, &meta);
    // Another force's referral is reported exactly like a missing one: nothing leaks. The
    // attempt is audited (kept: SERVICE_KEEP_WRITES; nothing else was written).
    if (found == 0 || (found == 1 && strcmp(meta.force, who->org) != 0)) {
        reply_status(reply, CARA__REPLY__STATUS__NOT_FOUND, "no referral %s", cmd->referral_id);
        if (found == 1 &&
            service_audit(svc, who, "refused", "referral", cmd->referral_id,
                          json_pack("{s:s}", "reason", "another force's referral")) == 0)
            rc = SERVICE_KEEP_WRITES;
        goto cleanup;
    }
    if (found < 0 || !(outcome_res = intake_outcome_load(db, cmd->referral_id, &outcome)))
        goto cleanup;
    const char *id[] = {cmd->referral_id};
    changes_res = db_query(db,
                           "SELECT c.field, c.old_value, c.new_value FROM amendment a"
                           " JOIN amendment_change c USING (amendment_id)"
                           " WHERE a.referral_id = $1 ORDER BY a.amended_at, c.position",
                           1, id);
    if (!changes_res)
        goto cleanup;
    int n = PQntuples(changes_res);
    changes = calloc((size_t)n + 1, sizeof *changes);
    change_ptrs = calloc((size_t)n + 1, sizeof *change_ptrs);
    if (!changes || !change_ptrs)
        goto cleanup;
    for (int i = 0; i < n; i++) {
        cara__field_change__init(&changes[i]);
        changes[i].field = PQgetvalue(changes_res, i, 0);
        changes[i].old_value = PQgetvalue(changes_res, i, 1);
        changes[i].new_value = PQgetvalue(changes_res, i, 2);
        change_ptrs[i] = &changes[i];
    }
    Cara__ReferralView view = CARA__REFERRAL_VIEW__INIT;
    view.referral_id = cmd->referral_id;
    view.referral = r;
    view.outcome = &outcome;
    view.amendments = change_ptrs;
    view.n_amendments = (size_t)n;
    rc = reply_ok(reply, &view.base);
cleanup:
    if (rc != 0 && reply->msg.status == CARA__REPLY__STATUS__OK)
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable; retry");
    free(changes);
    free(change_ptrs);
    PQclear(changes_res);
    PQclear(outcome_res);
    if (r)
        cara__referral__free_unpacked(r, NULL);
    cara__show_referral__free_unpacked(cmd, NULL);
    return rc;
}
