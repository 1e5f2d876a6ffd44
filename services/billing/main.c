// cara-billing: contracts, billable deliveries, invoices, credit notes and caps (issue 6).
#include "billing.h"

extern const migration_t billing_migrations[];

static const service_handler_t s_handlers[] = {
    {"cara.AddContract", billing_cmd_add_contract, SERVICE_WRITES},
    {"cara.VaryContract", billing_cmd_vary_contract, SERVICE_WRITES},
    {"cara.ContractStatusRequest", billing_cmd_contract_status, SERVICE_READS},
    {"cara.RecordTraining", billing_cmd_training, SERVICE_WRITES},
    {"cara.RunInvoices", billing_cmd_run_invoices, SERVICE_WRITES},
    {"cara.ListInvoices", billing_cmd_list_invoices, SERVICE_READS},
    {NULL, NULL, 0},
};

static const service_upstream_t s_upstreams[] = {{"booking", billing_apply_booking, NULL},
                                                 {NULL, NULL, NULL}};

static const service_spec_t s_spec = {
    .name = "billing",
    .migrations = billing_migrations,
    .handlers = s_handlers,
    .upstreams = s_upstreams,
    .fetch_view = billing_fetch_view,
};

int main(int argc, char **argv) {
    return service_main(argc, argv, &s_spec);
}
