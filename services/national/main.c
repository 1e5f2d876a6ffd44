// cara-national: the de-identified national picture for Hampton Trust (issue 7).
#include <string.h>

#include "cara/log.h"
#include "national_export.h"
#include "national_facts.h"

extern const migration_t national_migrations[];

static const service_handler_t s_handlers[] = {
    // Reads the return (each disclosure is audited, a repeat's too); with publish it also appends
    // the return to the national stream, once per request id (national_export.c).
    {"cara.NationalExport", national_cmd_export, SERVICE_WRITES_IDEMPOTENT},
    {NULL, NULL, 0},
};

// The booking stream's case facts are merged per case within a batch (national_merge.h).
static const service_upstream_t s_upstreams[] = {
    {"intake", national_apply_intake, NULL},
    {"triage", national_apply_triage, NULL},
    {"booking", national_apply_booking, national_flush},
    {NULL, NULL, NULL}};

static int s_init(service_t *svc) {
    const char *secret = config_str(service_config(svc), "pseudonym_secret", NULL);
    if (!secret || strlen(secret) < 16) {
        log_error("config_missing", "field", "pseudonym_secret", "reason",
                  "national needs a deployment secret of at least 16 characters");
        return -1;
    }
    national_merge_t *merge = national_merge_new();
    if (!merge)
        return -1;
    service_set_state(svc, merge);
    return 0;
}

static void s_fini(service_t *svc) {
    national_merge_t *merge = service_state(svc);
    national_merge_destroy(&merge);
    service_set_state(svc, NULL);
}

// The national stream holds published returns only (aggregates): Hampton Trust and operators
// read it; no one else.
static int s_fetch_view(service_t *svc, const identity_t *who, stream_view_t *view) {
    (void)svc;
    (void)view;
    return identity_is(who, "hampton_trust") || identity_is(who, "operator") ? 0 : -1;
}

static const service_spec_t s_spec = {
    .name = "national",
    .migrations = national_migrations,
    .handlers = s_handlers,
    .upstreams = s_upstreams,
    .fetch_view = s_fetch_view,
    .init = s_init,
    .fini = s_fini,
    .consumer_lanes = true, // facts are written through the consumer's db only
};

int main(int argc, char **argv) {
    return service_main(argc, argv, &s_spec);
}
