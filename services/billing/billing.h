// billing: contracts, billable lines from the booking stream, invoices, caps.
#ifndef BILLING_H
#define BILLING_H
#include "billing.pb-c.h"
#include "cara/consumer.h"
#include "cara/service.h"

// Requires role finance, commissioner or operator. Returns 0, or FORBIDDEN and -1.
int billing_require_finance(const identity_t *who, reply_t *reply);
// Adds the lines of one delivery under a contract, each once (by source), holding them all as
// over_cap if they would take the contract past a cap; raises cap alerts. Returns 0 or -1.
int billing_add_delivery(service_t *svc, const char *contract_id, const char *source_prefix,
                         const char *cohort_id, int participants, const char *delivered_on,
                         int telephone);
// Releases over-cap lines that now fit (after a variation). Returns 0 or -1.
int billing_release_held(service_t *svc, const char *contract_id);

apply_result_t billing_apply_booking(db_t *db, const Cara__Envelope *env, uint64_t seq, void *arg,
                                     char *reason, size_t reason_size);

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
