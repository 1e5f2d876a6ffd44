// cara-intake: see services/intake/ for its modules.
#include "cara/service.h"

extern const migration_t intake_migrations[];

static const service_spec_t s_spec = {
    .name = "intake",
    .migrations = intake_migrations,
};

int main(int argc, char **argv) { return service_main(argc, argv, &s_spec); }
