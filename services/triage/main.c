// cara-triage: see services/triage/ for its modules.
#include "cara/service.h"

extern const migration_t triage_migrations[];

static const service_spec_t s_spec = {
    .name = "triage",
    .migrations = triage_migrations,
};

int main(int argc, char **argv) { return service_main(argc, argv, &s_spec); }
