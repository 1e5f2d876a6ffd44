// booking: the provider's side. Shared declarations of the service's modules.
#ifndef BOOKING_H
#define BOOKING_H
#include "booking.pb-c.h"
#include "cara/consumer.h"
#include "cara/service.h"

// Seats in a CARA group at most (single-sex groups of up to 12; migration 008 holds it too).
#define BOOKING_MAX_SEATS 12

typedef struct {
    char case_id[40], referral_id[40], provider[64], force[64], pathway[32], status[16];
    char deadline[16];
    char stopped[16]; // "" or why a case already over was stopped: withdrawn | returned
} booking_case_t;

// Loads (and locks) a case by referral id, for one provider (NULL: any). Returns 1 if found,
// 0 if not, -1 on error.
int booking_case_load(db_t *db, const char *referral_id, const char *provider, booking_case_t *out);
// Answers a case the provider may not act on (found: booking_case_load's 0 or -1 for who->org)
// with NOT_FOUND (UNAVAILABLE on -1), exactly as for a missing one. An attempt on another
// provider's case is audited ('refused'); call it before writing anything. Returns the handler's
// code: SERVICE_KEEP_WRITES when audited, else -1.
int booking_case_refuse(service_t *svc, const identity_t *who, const char *referral_id, int found,
                        reply_t *reply);
// Audits ('refused') an attempt by who on another provider's case. Returns 1 audited, 0 not
// another provider's case (missing, or not a UUID), -1 on error.
int booking_case_audit_foreign(service_t *svc, const identity_t *who, const char *referral_id);
// Audits ('refused') an attempt by who on another provider's cohort (cancel, book into, record
// attendance). The caller answers as for a missing cohort and returns SERVICE_KEEP_WRITES when
// audited. Returns 1 audited, 0 not another provider's cohort (missing, or not a UUID), -1 on
// error.
int booking_cohort_audit_foreign(service_t *svc, const identity_t *who, const char *cohort_id);
// Closes a case as completed or non_compliant (reason) and emits the event. Returns 0 or -1.
int booking_case_close(service_t *svc, const booking_case_t *c, const char *status,
                       const char *reason, const char *cohort_id);
// Cancels the case's live booking (if any), frees its seat and emits BookingCancelled.
// Returns 0 or -1.
int booking_cancel_live(service_t *svc, const booking_case_t *c, const char *reason);
// As booking_cancel_live, only if the live booking is in cohort_id. Returns the number of
// bookings cancelled (0 or 1), or -1.
int booking_cancel_in_cohort(service_t *svc, const booking_case_t *c, const char *reason,
                             const char *cohort_id);
// Books a seat: in cohort_id if given, else the earliest scheduled cohort of the case's pathway
// starting after `after` (YYYY-MM-DD, may be NULL) whose Part B ends before the deadline and
// has a free seat. Emits SeatBooked. Returns 1 booked (result filled), 0 nothing fits (why in
// err), -1 on error.
int booking_allocate(service_t *svc, const booking_case_t *c, const char *cohort_id,
                     const char *after, Cara__SeatResult *result, char *err, size_t err_size);
// Requires role provider and returns 0, or sets FORBIDDEN and returns -1.
int booking_require_provider(const identity_t *who, reply_t *reply);
// 0 if who is the provider's victim contact role (victim_contact:<provider id>), the only one
// that records or reads victim contact; otherwise FORBIDDEN in reply and -1.
int booking_require_victim_contact(const identity_t *who, reply_t *reply);

// Stream apply (triage stream) and the periodic check of contact deadlines.
apply_result_t booking_case_apply(db_t *db, const Cara__Envelope *env, uint64_t seq, void *arg,
                                  char *reason, size_t reason_size);
void booking_case_tick(service_t *svc);

// Commands.
int booking_cmd_create_cohort(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                              reply_t *reply);
int booking_cmd_cancel_cohort(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                              reply_t *reply);
int booking_cmd_list_cohorts(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                             reply_t *reply);
int booking_cmd_book_seat(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                          reply_t *reply);
int booking_cmd_attendance(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                           reply_t *reply);
int booking_cmd_contact(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                        reply_t *reply);
int booking_cmd_victim(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                       reply_t *reply);
int booking_cmd_list_victim(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                            reply_t *reply);
int booking_cmd_cancel_booking(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                               reply_t *reply);
int booking_cmd_shortfall(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                          reply_t *reply);
int booking_cmd_list_cases(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                           reply_t *reply);

#endif
