// cara-booking: the provider's side: contact, cohorts, seats, attendance, completion, victim
// contact (issue 5).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "booking.h"
#include "cara/pbstrip.h"

extern const migration_t booking_migrations[];

static const service_handler_t s_handlers[] = {
    {"cara.CreateCohort", booking_cmd_create_cohort, SERVICE_WRITES},
    {"cara.CancelCohort", booking_cmd_cancel_cohort, SERVICE_WRITES},
    {"cara.ListCohorts", booking_cmd_list_cohorts, SERVICE_READS},
    {"cara.BookSeat", booking_cmd_book_seat, SERVICE_WRITES},
    {"cara.RecordAttendance", booking_cmd_attendance, SERVICE_WRITES},
    {"cara.RecordContact", booking_cmd_contact, SERVICE_WRITES},
    {"cara.RecordVictimContact", booking_cmd_victim, SERVICE_WRITES},
    {"cara.ListCases", booking_cmd_list_cases, SERVICE_READS},
    {"cara.CancelBooking", booking_cmd_cancel_booking, SERVICE_WRITES},
    {"cara.Shortfall", booking_cmd_shortfall, SERVICE_READS},
    {"cara.ListVictimContacts", booking_cmd_list_victim, SERVICE_READS},
    {NULL, NULL, 0},
};

static const service_upstream_t s_upstreams[] = {{"triage", booking_case_apply, NULL},
                                                 {NULL, NULL, NULL}};

// For triage: safety concerns raised by victim contact only (the event carries no notes).
static int s_triage_view(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                         uint8_t **payload, size_t *len) {
    (void)svc;
    (void)who;
    (void)payload;
    (void)len;
    if (strcmp(env->type, "cara.VictimContactRecorded") != 0)
        return 0;
    Cara__VictimContactRecorded *m = (Cara__VictimContactRecorded *)envelope_payload(
        env, &cara__victim_contact_recorded__descriptor);
    int keep = m && m->safety_concern;
    if (m)
        cara__victim_contact_recorded__free_unpacked(m, NULL);
    return keep;
}

// For intake (the police-facing outcome): everything but victim contact without a concern and
// contact with the offender, which the police have no need of.
static int s_intake_view(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                         uint8_t **payload, size_t *len) {
    if (strcmp(env->type, "cara.VictimContactRecorded") == 0)
        return s_triage_view(svc, who, env, payload, len);
    return strcmp(env->type, "cara.ContactRecorded") != 0;
}

// For billing and national: every booking event re-encoded from what this build knows of it
// (unknown fields dropped), without the provider staff's free text: a cohort cancellation's
// reason and an attendance correction's reason (up to 500 characters). Reasons that are codes
// (BookingCancelled, CaseNonCompliant, CaseReopened) stay. A type not listed is left out.
static int s_downstream_view(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                             uint8_t **payload, size_t *len) {
    (void)svc;
    (void)who;
    static const struct {
        const char *type;
        const ProtobufCMessageDescriptor *desc;
    } known[] = {
        {"cara.CaseOpened", &cara__case_opened__descriptor},
        {"cara.ContactRecorded", &cara__contact_recorded__descriptor},
        {"cara.CohortCreated", &cara__cohort_created__descriptor},
        {"cara.CohortCancelled", &cara__cohort_cancelled__descriptor},
        {"cara.SeatBooked", &cara__seat_booked__descriptor},
        {"cara.BookingCancelled", &cara__booking_cancelled__descriptor},
        {"cara.AttendanceRecorded", &cara__attendance_recorded__descriptor},
        {"cara.CaseCompleted", &cara__case_completed__descriptor},
        {"cara.CaseNonCompliant", &cara__case_non_compliant__descriptor},
        {"cara.CohortDelivered", &cara__cohort_delivered__descriptor},
        {"cara.CaseReopened", &cara__case_reopened__descriptor},
        {"cara.VictimContactRecorded", &cara__victim_contact_recorded__descriptor},
    };
    size_t k = 0;
    while (k < sizeof known / sizeof *known && strcmp(env->type, known[k].type) != 0)
        k++;
    ProtobufCMessage *msg =
        k < sizeof known / sizeof *known ? envelope_payload(env, known[k].desc) : NULL;
    if (!msg)
        return 0; // not a booking event this build knows, or undecodable
    if (msg->descriptor == &cara__cohort_cancelled__descriptor)
        pbstrip_text(&((Cara__CohortCancelled *)msg)->reason);
    else if (msg->descriptor == &cara__attendance_recorded__descriptor)
        pbstrip_text(&((Cara__AttendanceRecorded *)msg)->correction_reason);
    pbstrip_unknown(msg, NULL);
    int keep = envelope_encode_message(msg, payload, len) == 0 ? 1 : -1;
    protobuf_c_message_free_unpacked(msg, NULL);
    return keep;
}

// Booking events carry ids, dates and outcomes only (no personal data, by design: keep it so;
// victim contact events say that contact happened and flag a concern, never the notes).
// Operators read them all; billing and national all without staff free text or unknown fields;
// triage reads safety concerns only; intake the outcomes and safety concerns; a provider system
// reads only its own (scope = its provider id); anyone else is refused.
static int s_fetch_view(service_t *svc, const identity_t *who, stream_view_t *view) {
    (void)svc;
    if (identity_is(who, "operator"))
        return 0;
    if (identity_is(who, "service")) {
        if (strcmp(who->org, "triage") == 0)
            view->transform = s_triage_view;
        else if (strcmp(who->org, "intake") == 0)
            view->transform = s_intake_view;
        else if (strcmp(who->org, "billing") == 0 || strcmp(who->org, "national") == 0)
            view->transform = s_downstream_view;
        else
            return -1; // no other service reads the provider's stream (booking itself neither)
        return 0;
    }
    if (identity_is(who, "provider") && *who->org) {
        snprintf(view->scope, sizeof view->scope, "%s", who->org);
        return 0;
    }
    return -1;
}

static const service_spec_t s_spec = {
    .name = "booking",
    .migrations = booking_migrations,
    .handlers = s_handlers,
    .upstreams = s_upstreams,
    .fetch_view = s_fetch_view,
    .tick = booking_case_tick,
};

int main(int argc, char **argv) {
    return service_main(argc, argv, &s_spec);
}
