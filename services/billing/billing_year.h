// Financial years (April to March), invoice periods and the straight-line forecast: pure
// functions of dates (day numbers since 1970-01-01), so they can be tested on their own.
#ifndef BILLING_YEAR_H
#define BILLING_YEAR_H
#include <stddef.h>
#include <stdint.h>

// Writes the financial year containing day, e.g. "2025-26" for 2025-04-01..2026-03-31, and sets
// its first and last day (either pointer may be NULL). Returns 0, or -1 if size is too small.
int billing_year_of(int32_t day, char *out, size_t size, int32_t *first, int32_t *last);
// Parses a financial year label "YYYY-YY" (the second year following the first). Returns 0
// and sets its first and last day, or -1 if malformed.
int billing_year_parse(const char *label, int32_t *first, int32_t *last);
// Parses a period "YYYY-MM" into its first and last day. Returns 0, or -1 if malformed.
int billing_period_parse(const char *period, int32_t *first, int32_t *last);
// 1 if a contract invoiced `invoice_period` ("monthly" | "quarterly") is due at the end of the
// given month (quarters of the financial year end in June, September, December, March), else 0.
int billing_period_due(const char *invoice_period, unsigned month);
// Straight-line forecast to the end of the year: spent over the days from first to as_of
// (inclusive) scaled to the whole year first..last. as_of before first gives 0, after last
// gives spent. Rounds down; never overflows for any int64 spend below 2^53.
int64_t billing_forecast(int64_t spent, int32_t first, int32_t as_of, int32_t last);
// The highest of 75, 90, 100 percent that used reaches against limit (0 if none, or limit <= 0;
// used and limit below 2^56).
int billing_threshold(int64_t used, int64_t limit);

#endif
