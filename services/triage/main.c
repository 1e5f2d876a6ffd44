// cara-triage: eligibility, needs assessment, pathway decision and routing (issue 4).
#include <string.h>

#include "cara/service.h"
#include "triage_case.h"

extern const migration_t triage_migrations[];

static const service_handler_t s_handlers[] = {
    {"cara.TriageDecide", triage_cmd_decide},
    {"cara.RecordNeeds", triage_cmd_needs},
    {"cara.ListOverdue", triage_cmd_overdue},
    {"cara.ShowTriageCase", triage_cmd_show},
    {NULL, NULL},
};

static const service_upstream_t s_upstreams[] = {{"intake", triage_case_apply}, {NULL, NULL}};

// Intake and booking (who act on triage's decisions) and operators read the whole stream;
// national and everyone else are refused here (national builds its picture from de-identified
// sources; triage events carry the referral's personal data for the provider).
static int s_fetch_view(service_t *svc, const identity_t *who, stream_view_t *view) {
    (void)svc;
    (void)view;
    if (identity_is(who, "operator"))
        return 0;
    if (identity_is(who, "service") &&
        (strcmp(who->org, "intake") == 0 || strcmp(who->org, "booking") == 0))
        return 0;
    return -1;
}

static const service_spec_t s_spec = {
    .name = "triage",
    .migrations = triage_migrations,
    .handlers = s_handlers,
    .upstreams = s_upstreams,
    .fetch_view = s_fetch_view,
};

int main(int argc, char **argv) { return service_main(argc, argv, &s_spec); }
