// intake: the commands police systems send (each a service_handler_fn; see service.h).
#ifndef CARA_INTAKE_COMMANDS_H
#define CARA_INTAKE_COMMANDS_H
#include "cara/service.h"
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
// Checks the idempotency record of a command: on a repeat the first reply is copied into reply
// (returns 1), on a conflict reply says so (returns 2), new (returns 0), or -1 on error.
int intake_request_check(service_t *svc, const char *key, const ProtobufCMessage *content,
                         char hash[65], reply_t *reply);

#endif
