// cara-billing: see services/billing/ for its modules.
#include "cara/service.h"

extern const migration_t billing_migrations[];

static const service_spec_t s_spec = {
    .name = "billing",
    .migrations = billing_migrations,
};

int main(int argc, char **argv) { return service_main(argc, argv, &s_spec); }
