// De-identified facts from the intake, triage and booking streams.
#ifndef NATIONAL_FACTS_H
#define NATIONAL_FACTS_H
#include "cara/consumer.h"
#include "cara/service.h"

apply_result_t national_apply_intake(db_t *db, const Cara__Envelope *env, uint64_t seq, void *arg,
                                     char *reason, size_t reason_size);
apply_result_t national_apply_triage(db_t *db, const Cara__Envelope *env, uint64_t seq, void *arg,
                                     char *reason, size_t reason_size);
apply_result_t national_apply_booking(db_t *db, const Cara__Envelope *env, uint64_t seq,
                                      void *arg, char *reason, size_t reason_size);
// "18-24", "25-34", "35-44", "45-54", "55+" or "unknown" for an age in years (0 = unknown).
const char *national_age_band(unsigned age);
// Export command (roles hampton_trust and operator).
int national_cmd_export(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                        reply_t *reply);

#endif
