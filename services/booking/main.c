// cara-booking: the provider's side: contact, cohorts, seats, attendance, completion, victim
// contact (issue 5).
#include <stdio.h>

#include "booking.h"

extern const migration_t booking_migrations[];

static const service_handler_t s_handlers[] = {
    {"cara.CreateCohort", booking_cmd_create_cohort},
    {"cara.CancelCohort", booking_cmd_cancel_cohort},
    {"cara.ListCohorts", booking_cmd_list_cohorts},
    {"cara.BookSeat", booking_cmd_book_seat},
    {"cara.RecordAttendance", booking_cmd_attendance},
    {"cara.RecordContact", booking_cmd_contact},
    {"cara.RecordVictimContact", booking_cmd_victim},
    {"cara.ListCases", booking_cmd_list_cases},
    {"cara.CancelBooking", booking_cmd_cancel_booking},
    {"cara.Shortfall", booking_cmd_shortfall},
    {"cara.ListVictimContacts", booking_cmd_list_victim},
    {NULL, NULL},
};

static const service_upstream_t s_upstreams[] = {{"triage", booking_case_apply}, {NULL, NULL}};

// Booking events carry ids, dates and outcomes only (no personal data, by design: keep it so).
// Services and operators read them all; a provider system reads only its own (scope = its
// provider id); anyone else is refused.
static int s_fetch_view(service_t *svc, const identity_t *who, stream_view_t *view) {
    (void)svc;
    if (identity_is(who, "operator") || identity_is(who, "service"))
        return 0;
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
