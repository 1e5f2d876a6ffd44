// cara-booking: see services/booking/ for its modules.
#include "cara/service.h"

extern const migration_t booking_migrations[];

static const service_spec_t s_spec = {
    .name = "booking",
    .migrations = booking_migrations,
};

int main(int argc, char **argv) { return service_main(argc, argv, &s_spec); }
