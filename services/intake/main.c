// cara-intake: police referrals in, outcomes back to the police (issue 3). See the modules:
// intake_validate (every field checked), intake_store (referral + victim tables), intake_diff
// (amendments field by field), intake_outcome (triage/booking -> police-facing status),
// intake_view (who reads what of the intake stream).
#include <string.h>

#include "cara/log.h"
#include "cara/service.h"
#include "intake_commands.h"
#include "intake_outcome.h"
#include "intake_view.h"

extern const migration_t intake_migrations[];

static const service_handler_t s_handlers[] = {
    {"cara.SubmitReferral", intake_submit_handle, SERVICE_WRITES_IDEMPOTENT},
    {"cara.AmendReferral", intake_amend_handle, SERVICE_WRITES_IDEMPOTENT},
    {"cara.WithdrawReferral", intake_withdraw_handle, SERVICE_WRITES_IDEMPOTENT},
    {"cara.ShowReferral", intake_show_handle, SERVICE_READS},
    {"cara.ListRejectedSubmissions", intake_rejected_handle, SERVICE_READS},
    {NULL, NULL, 0},
};

static const service_upstream_t s_upstreams[] = {
    {"triage", intake_outcome_apply_triage, NULL},
    {"booking", intake_outcome_apply_booking, NULL},
    {NULL, NULL, NULL},
};

// Warns at start-up when national cannot be served (no pseudonym secret configured).
static int s_init(service_t *svc) {
    const char *secret = config_str(service_config(svc), "pseudonym_secret", NULL);
    if (!secret || strlen(secret) < INTAKE_PSEUDONYM_MIN_SECRET)
        log_warn("pseudonym_secret_missing", "effect", "the national view will be refused");
    return 0;
}

static const service_spec_t s_spec = {
    .name = "intake",
    .migrations = intake_migrations,
    .handlers = s_handlers,
    .upstreams = s_upstreams,
    .fetch_view = intake_view_decide,
    .init = s_init,
};

int main(int argc, char **argv) {
    return service_main(argc, argv, &s_spec);
}
