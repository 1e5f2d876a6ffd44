// intake: who may read the intake stream, and what each reader sees of it.
//   service:national            de-identified referral events (keyed pseudonym, age at caution)
//   service:triage              everything
//   operators                   everything but the victim's details (blanked, consent kept;
//                               no victim.* amendment changes)
//   other services              refused (billing and booking never read referrals)
//   police                      OutcomeUpdated and SafetyConcernRaised of its own force only
//   anyone else                 refused
#ifndef CARA_INTAKE_VIEW_H
#define CARA_INTAKE_VIEW_H
#include "cara/service.h"
#include "intake.pb-c.h"

#define INTAKE_PSEUDONYM_MIN_SECRET 16

// The stream view for who (service_spec_t.fetch_view). Returns 0 or -1 (refused).
int intake_view_decide(service_t *svc, const identity_t *who, stream_view_t *view);
// The keyed pseudonym of a person: HMAC-SHA256 with secret over the normalised name (lower-case,
// single spaces, trimmed) and the date of birth, as 64 hex characters. Returns 0 or -1.
int intake_pseudonym(const char *secret, const char *name, const char *date_of_birth, char out[65]);
// Rewrites r for national in place: fills offender age_at_caution and pseudonym, then blanks
// every name, date of birth, address, contact detail, free text and the whole victim.
// r must own its strings (as unpacked). Returns 0 or -1 (out of memory).
int intake_deidentify(Cara__Referral *r, const char *secret);
// Re-encodes one intake event for national (de-identified: no unknown fields, no free text; an
// outcome's reason keeps only its leading code), or leaves it out. Same contract as
// stream_view_t.transform, with the secret given.
int intake_view_national(const Cara__Envelope *env, const char *secret, uint8_t **payload,
                         size_t *len);

#endif
