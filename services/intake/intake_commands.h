// intake: the commands police systems send (each a service_handler_fn; see service.h).
#ifndef CARA_INTAKE_COMMANDS_H
#define CARA_INTAKE_COMMANDS_H
#include "cara/service.h"
#include "intake_store.h"
#include "intake_validate.h"

// cara.SubmitReferral: police of the referral's own force. Replies ReferralAccepted, or every
// field error at once (the submission is kept in rejected_submission), or CONFLICT when the
// force's caution reference was already submitted with other content.
int intake_submit_handle(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                         reply_t *reply);
// cara.AmendReferral: replies ReferralAmended with the changes, field by field.
int intake_amend_handle(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                        reply_t *reply);
// cara.WithdrawReferral: replies ReferralWithdrawn.
int intake_withdraw_handle(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                           reply_t *reply);
// cara.ShowReferral: police of that force only. Replies ReferralView.
int intake_show_handle(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                       reply_t *reply);
// cara.ListRejectedSubmissions: the calling force's refused submissions with their errors.
// Replies RejectedSubmissionList.
int intake_rejected_handle(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                           reply_t *reply);

// The validation rules for a force now: its deadline period from config
// "forces.<force>.deadline_weeks" (default 16 weeks).
void intake_rules_for(service_t *svc, const char *force, intake_rules_t *rules);
// The content hash kept with a command's idempotency record. Returns 0 or -1.
int intake_request_hash(const ProtobufCMessage *content, char hash[65]);
// Checks the idempotency record of a command: on a repeat the first reply is copied into reply
// (returns 1), on a conflict reply says so (returns 2), new (returns 0), or -1 on error. With
// claim, a new key is claimed (request_log_claim: a repeat whose first is still committing is
// waited for) and its answer must be filled in (request_log_fill) or undone with the request.
int intake_request_check(service_t *svc, const char *key, const ProtobufCMessage *content,
                         int claim, char hash[65], reply_t *reply);

// A change of a stored referral in progress: its idempotency record and the referral as stored.
typedef struct {
    char key[160];
    char hash[65];
    Cara__Referral *stored; // owned; intake_change_clear frees it
    intake_meta_t meta;
} intake_change_t;
// Checks the fields every change carries (referral id, reason, request id), adding a field
// error to reply for each problem. Returns the number of errors.
int intake_change_check(const Cara__Envelope *env, const char *referral_id, const char *reason,
                        reply_t *reply);
// Starts a change of `kind` ("amend", "withdraw") by the calling force: a repeat of the same
// request gets the first answer (returns 1, reply filled); otherwise claims the request's key
// (its answer is filled in with request_log_fill), loads and locks the referral (returns 0,
// change filled), or refuses one that is missing, of another force or withdrawn, or a
// conflicting request (returns -1, reply says why). In a batch's optimistic pass it returns
// SERVICE_CAREFUL before anything else: the claim must be undone with a refusal, which needs
// the careful pass's savepoint.
int intake_change_begin(service_t *svc, const identity_t *who, const char *kind,
                        const Cara__Envelope *env, const ProtobufCMessage *content,
                        const char *referral_id, intake_change_t *change, reply_t *reply);
// Frees what the change holds. Tolerates a change that never began.
void intake_change_clear(intake_change_t *change);

#endif
