// billing: contracts, billable lines from the booking stream, invoices, credit notes, caps.
// All money is integer pence. Nothing here ever holds personal data.
#ifndef BILLING_H
#define BILLING_H
#include "billing.pb-c.h"
#include "cara/consumer.h"
#include "cara/service.h"

// --- who may do what (billing_access.c) ---
// The most any amount of money given to billing may be (GBP 10,000,000,000): above any contract,
// and low enough that no sum of a contract's lines overflows an int64.
#define BILLING_MAX_PENCE 1000000000000LL

// Requires role finance or commissioner (operator too if allow_operator). Returns 0, or
// FORBIDDEN and -1.
int billing_require_role(const identity_t *who, reply_t *reply, int allow_operator);
// Requires role finance. Returns 0, or FORBIDDEN and -1.
int billing_require_finance(const identity_t *who, reply_t *reply);
// Requires that who is an operator or a party to the contract (commissioner, provider or
// licence holder). Returns 1 (party), 0 (NOT_FOUND set: no such contract or not theirs), -1.
int billing_require_party(service_t *svc, const identity_t *who, const char *contract_id,
                          reply_t *reply);
// Requires that who (finance or commissioner staff) works for the contract's commissioner: the
// budget is the commissioner's, so only it varies the caps. Returns 1, 0 (NOT_FOUND or
// FORBIDDEN set: no such contract for who, or who is another party to it), -1 (UNAVAILABLE).
int billing_require_commissioner(service_t *svc, const identity_t *who, const char *contract_id,
                                 reply_t *reply);
// Stream view: services and operators see everything; finance and commissioners see the
// invoices, credit notes and cap alerts of their own organisation. Returns 0 or -1 (refused).
int billing_fetch_view(service_t *svc, const identity_t *who, stream_view_t *view);

// --- billable lines (billing_lines.c) ---
// Applies one booking event (CohortDelivered, CaseCompleted on the telephone pathway,
// VictimContactRecorded): each billable delivery billed once, replays bill nothing.
apply_result_t billing_apply_booking(db_t *db, const Cara__Envelope *env, uint64_t seq, void *arg,
                                     char *reason, size_t reason_size);
// Bills the stored booking events of a provider that no contract covered when they arrived.
// Returns 0 or -1.
int billing_bill_waiting(service_t *svc, const char *provider_id);

// --- caps (billing_cap.c) ---
// What a contract has used of its caps: delivery money (not held, net of credits) and
// offenders. Returns 0 or -1.
int billing_cap_usage(db_t *db, const char *contract_id, int64_t *money, int64_t *offenders);
// Decides whether a delivery of `money` pence and `offenders` fits under the contract's caps
// (the contract row must be locked). Returns NULL if it fits, else "money" or "offenders".
// Sets *error on a database error.
const char *billing_cap_check(db_t *db, const char *contract_id, int64_t money, int64_t offenders,
                              int *error);
// Raises the 75/90/100 percent alerts not yet raised (CapReached event + audit each).
// Returns 0 or -1.
int billing_cap_alerts(service_t *svc, const char *contract_id);
// Releases held deliveries that fit now, oldest first. Returns 0 or -1.
int billing_cap_release(service_t *svc, const char *contract_id);

// --- commands ---
int billing_cmd_add_contract(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                             reply_t *reply);
int billing_cmd_vary_contract(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                              reply_t *reply);
int billing_cmd_contract_status(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                                reply_t *reply);
int billing_cmd_training(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                         reply_t *reply);
int billing_cmd_run_invoices(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                             reply_t *reply);
int billing_cmd_list_invoices(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                              reply_t *reply);

#endif
