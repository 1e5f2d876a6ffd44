// De-identified facts from the intake, triage and booking streams. Only categorical codes
// from fixed vocabularies, dates and keyed hashes are ever stored: whatever else an event
// carries (even if a producer failed to strip it) is never read.
#ifndef NATIONAL_FACTS_H
#define NATIONAL_FACTS_H
#include "cara/consumer.h"
#include "cara/service.h"
#include "national_merge.h"

// Applies one event of any of the three streams (types are unique) with the deployment
// secret that keys case and cohort hashes. Unknown types are ignored (APPLY_OK). A booking
// fact about a case is held in merge until national_merge_flush, or (merge NULL) written.
apply_result_t national_facts_apply(db_t *db, const char *secret, national_merge_t *merge,
                                    const Cara__Envelope *env, char *reason, size_t reason_size);
// The upstream apply functions (arg = the service_t*, whose state is its national_merge_t).
apply_result_t national_apply_intake(db_t *db, const Cara__Envelope *env, uint64_t seq, void *arg,
                                     char *reason, size_t reason_size);
apply_result_t national_apply_triage(db_t *db, const Cara__Envelope *env, uint64_t seq, void *arg,
                                     char *reason, size_t reason_size);
apply_result_t national_apply_booking(db_t *db, const Cara__Envelope *env, uint64_t seq, void *arg,
                                      char *reason, size_t reason_size);
// The key national knows a case (or cohort) by: HMAC-SHA256 of its id with the deployment
// secret, 64 hex digits in out. 0, or -1 (no secret of 16 characters or more, or no id).
int national_key(const char *secret, const char *id, char out[65]);
// The upstreams' flush function (consumer_flush_fn): writes or forgets the merged facts.
apply_result_t national_flush(db_t *db, void *arg, bool write);
// The fixed enumerations of the return (NULL-terminated; "unknown" last where it applies).
extern const char *const national_sexes[];
extern const char *const national_age_bands[];
extern const char *const national_ethnic_groups[];
extern const char *const national_pathways[]; // "not_triaged" last
extern const char *const national_offences[];
extern const char *const national_dash_levels[];

// "18-24", "25-34", "35-44", "45-54", "55+" or "unknown" for an age in years (0 = unknown).
const char *national_age_band(unsigned age);
// The ONS high-level group of an ONS 2021 ethnicity code: "asian", "black", "mixed", "white",
// "other", or "unknown" (not_stated, empty, anything else).
const char *national_ethnic_group(const char *code);
// value if it is one of the NULL-terminated allowed codes, else "unknown".
const char *national_vocab(const char *value, const char *const *allowed);
// value if it looks like a code (1-64 of a-z, 0-9, '_', '-'), else fallback.
const char *national_code(const char *value, const char *fallback);

#endif
