// Triage cases: created from the intake stream, decided by rules or by triage staff, routed
// to the commissioned provider.
#ifndef TRIAGE_CASE_H
#define TRIAGE_CASE_H
#include "cara/consumer.h"
#include "cara/service.h"

// Apply functions for the intake stream (arg is the service_t).
apply_result_t triage_case_apply(db_t *db, const Cara__Envelope *env, uint64_t seq, void *arg,
                                 char *reason, size_t reason_size);
// Apply function for the booking stream (triage_safety.c): a VictimContactRecorded with
// safety_concern flags the case (safety_alert, audited); everything else is passed over.
apply_result_t triage_safety_apply(db_t *db, const Cara__Envelope *env, uint64_t seq, void *arg,
                                   char *reason, size_t reason_size);
// Approves a case at time at_us (0 = now): routes it and emits ReferralTriaged with the needs
// assessment so far. pathway/reason may override the proposal. Returns 0, or -1 with a message
// in err (e.g. no provider for the force).
int triage_case_approve(service_t *svc, const char *referral_id, const char *pathway,
                        const char *pathway_reason, const char *decided_by, int64_t at_us,
                        char *err, size_t err_size);
// Returns a case to the police at time at_us (0 = now) with reasons (a JSON array text of
// {code, detail}) and emits ReferralReturned. Returns 0 or -1.
int triage_case_return(service_t *svc, const char *referral_id, const char *reasons_json,
                       const char *decided_by, int64_t at_us);
// Passes a needs assessment recorded after triage on to the provider (TriageCaseUpdated).
// Returns 0, or -1.
int triage_case_needs_changed(service_t *svc, const char *referral_id);

// Command handlers (role triage). Those that change a case are registered SERVICE_WRITES, so
// the runtime answers a repeat of a request id with the first answer (main.c).
int triage_cmd_decide(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                      reply_t *reply);
int triage_cmd_needs(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                     reply_t *reply);
int triage_cmd_overdue(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                       reply_t *reply);
int triage_cmd_show(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                    reply_t *reply);
int triage_cmd_alerts(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                      reply_t *reply);

#endif
