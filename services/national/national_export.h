// The export command (roles hampton_trust and operator).
#ifndef NATIONAL_EXPORT_H
#define NATIONAL_EXPORT_H
#include "cara/service.h"

// Replies with the return for req.period in req.format; publishes it on the feed when asked.
// Returns 0, or -1 with the reply set (nothing written).
int national_cmd_export(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                        reply_t *reply);

#endif
