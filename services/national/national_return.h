// The national return for a period: every measure per force, provider, pathway, month, sex,
// age band and ethnic group, with disclosure control over all published counts at once.
// Deterministic: the same facts give the same document, key for key.
#ifndef NATIONAL_RETURN_H
#define NATIONAL_RETURN_H
#include <jansson.h>

#include "cara/db.h"

#define NATIONAL_SCHEMA_VERSION "2.0"

// Period text to its first and last day (YYYY-MM-DD) and kind ("month", "quarter",
// "financial_year"): 2025-04, 2025Q2, FY2025 (April 2025 to March 2026). Returns 0 or -1.
int national_period(const char *text, char from[16], char to[16], const char **kind);
// Builds the return from the case and cohort facts. Returns a new document, or NULL when the
// database fails (logged).
json_t *national_return_build(db_t *db, const char *period);

#endif
