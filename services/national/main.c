// cara-national: see services/national/ for its modules.
#include "cara/service.h"

extern const migration_t national_migrations[];

static const service_spec_t s_spec = {
    .name = "national",
    .migrations = national_migrations,
};

int main(int argc, char **argv) { return service_main(argc, argv, &s_spec); }
