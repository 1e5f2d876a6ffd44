#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cara/log.h"
#include "cara/request_log.h"
#include "cara/stream.h"
#include "cara/timeutil.h"
#include "cara/utf8.h"
#include "intake_commands.h"
#include "intake_outcome.h"
#include "intake_store.h"

// A text value safe to keep in a text column (valid UTF-8, bounded), or "".
static const char *s_safe(const char *text, size_t max) {
    return text && strlen(text) <= max && utf8_valid(text) ? text : "";
}

// Keeps a refused submission and its errors for the force to review. Returns
// SERVICE_KEEP_WRITES (the record survives the refusal), or -1 if it could not be stored.
static int s_reject(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                    const char *caution_reference, reply_t *reply) {
    json_t *errors = json_array();
    for (size_t i = 0; errors && i < reply->msg.n_errors; i++)
        json_array_append_new(errors, json_pack("{s:s,s:s}", "field", reply->msg.errors[i]->field,
                                                "reason", reply->msg.errors[i]->reason));
    char *text = errors ? json_dumps(errors, JSON_COMPACT) : NULL;
    json_decref(errors);
    char actor[128];
    identity_format(who, actor, sizeof actor);
    const char *values[] = {who->org, s_safe(caution_reference, 64),
                            actor,    s_safe(env->event_id, 64),
                            text,     (const char *)env->payload.data};
    int lengths[] = {0, 0, 0, 0, 0, (int)env->payload.len};
    int formats[] = {0, 0, 0, 0, 0, 1};
    PGresult *res = text ? db_query_bin(service_db(svc),
                                        "INSERT INTO rejected_submission (force, caution_reference,"
                                        " actor, request_id, errors, document)"
                                        " VALUES ($1, $2, $3, $4, $5::jsonb, $6) RETURNING id",
                                        6, values, lengths, formats, 0)
                         : NULL;
    free(text);
    if (!res) {
        log_error("rejected_submission_not_stored", "force", who->org);
        return -1;
    }
    log_info("referral_rejected", "force", who->org, "rejection_id", PQgetvalue(res, 0, 0));
    PQclear(res);
    return SERVICE_KEEP_WRITES;
}

// Answers a repeat with the first answer, marked as a duplicate.
static int s_repeat(reply_t *reply) {
    Cara__ReferralAccepted *first =
        cara__referral_accepted__unpack(NULL, reply->msg.payload.len, reply->msg.payload.data);
    if (!first) {
        reply_status(reply, CARA__REPLY__STATUS__ERROR, "stored answer unreadable");
        return -1;
    }
    first->duplicate = 1;
    int rc = reply_ok(reply, &first->base);
    cara__referral_accepted__free_unpacked(first, NULL);
    return rc;
}

int intake_submit_handle(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                         reply_t *reply) {
    if (!identity_is(who, "police") || !who->org[0]) {
        reply_status(reply, CARA__REPLY__STATUS__FORBIDDEN, "only police forces submit referrals");
        return -1;
    }
    Cara__SubmitReferral *cmd =
        (Cara__SubmitReferral *)envelope_payload(env, &cara__submit_referral__descriptor);
    if (!cmd) {
        reply_field_error(reply, "payload", "is not a valid cara.SubmitReferral");
        return s_reject(svc, who, env, "", reply);
    }
    int rc = -1;
    db_t *db = service_db(svc);
    Cara__Referral *r = cmd->referral;
    char hash[65], key[160], id[UUID_STR_LEN], received_at[40];
    if (!r) {
        reply_field_error(reply, "referral", "is required");
        rc = s_reject(svc, who, env, "", reply);
        goto cleanup;
    }
    if (*r->force && strcmp(r->force, who->org) != 0) {
        reply_status(reply, CARA__REPLY__STATUS__FORBIDDEN,
                     "police:%s may submit referrals for force %s only", who->org, who->org);
        goto cleanup;
    }
    // Idempotent on the force's own caution reference (DESIGN.md section 2). In the batch's
    // optimistic pass the reference is taken to be new without looking: a repeat then fails on
    // request_log's primary key, and the careful pass answers it from the record.
    int optimistic = service_optimistic(svc);
    if (*r->caution_reference && *s_safe(r->caution_reference, 64)) {
        snprintf(key, sizeof key, "referral:%s:%s", who->org, r->caution_reference);
        int found = optimistic ? intake_request_hash(&r->base, hash)
                               : intake_request_check(svc, key, &r->base, 0, hash, reply);
        if (found == 1) {
            rc = s_repeat(reply);
            goto cleanup;
        }
        if (found != 0)
            goto cleanup;
    } else {
        key[0] = '\0';
    }
    intake_rules_t rules;
    intake_rules_for(svc, who->org, &rules);
    if (intake_validate_referral(r, &rules, "", reply) > 0) {
        // A repeat must get its first answer even if it would not pass today: look first.
        if (optimistic && key[0]) {
            rc = SERVICE_CAREFUL;
            goto cleanup;
        }
        rc = s_reject(svc, who, env, r->caution_reference, reply);
        goto cleanup;
    }
    // No read: every write below is queued, and the runtime reads them back with the batch.
    // The new outcome is known without asking (status received, nothing booked yet).
    time_format_iso(time_now_us(), received_at, sizeof received_at);
    if (intake_referral_normalise(r, rules.deadline_weeks) != 0 ||
        intake_store_insert(db, r, received_at, id) != 0) {
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE,
                     "could not store the referral; retry");
        goto cleanup;
    }
    Cara__Outcome o = CARA__OUTCOME__INIT;
    o.referral_id = id;
    o.force = r->force;
    o.caution_reference = r->caution_reference;
    o.status = "received";
    o.updated_at = received_at;
    o.received_at = received_at;
    o.compliance_deadline = r->caution->compliance_deadline;
    Cara__ReferralSubmitted ev = CARA__REFERRAL_SUBMITTED__INIT;
    ev.referral_id = id;
    ev.received_at = received_at;
    ev.referral = r;
    Cara__OutcomeUpdated oev = CARA__OUTCOME_UPDATED__INIT;
    oev.outcome = &o;
    Cara__ReferralAccepted accepted = CARA__REFERRAL_ACCEPTED__INIT;
    accepted.referral_id = id;
    accepted.compliance_deadline = r->caution->compliance_deadline;
    // The events go last: the outbox lock is held from the first event to the commit, so the
    // less that comes after it, the less a batch committing beside this one waits.
    if (service_audit_send(
            svc, who, "referral_submitted", "referral", id,
            json_pack("{s:s}", "compliance_deadline", r->caution->compliance_deadline)) != 0 ||
        reply_ok(reply, &accepted.base) != 0 || request_log_send(db, key, hash, reply) != 0 ||
        outbox_send(db, &ev.base, id, r->force, id, NULL) != 0 ||
        outbox_send(db, &oev.base, o.referral_id, o.force, o.referral_id, NULL) != 0) {
        reply_clear(reply);
        reply_init(reply);
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE,
                     "could not store the referral; retry");
        goto cleanup;
    }
    log_info("referral_submitted", "referral_id", id, "force", who->org);
    rc = 0;
cleanup:
    cara__submit_referral__free_unpacked(cmd, NULL);
    return rc;
}
