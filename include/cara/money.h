// Money is integer pence (int64_t). Never floating point.
#ifndef CARA_MONEY_H
#define CARA_MONEY_H
#include <stddef.h>
#include <stdint.h>

// Parses "2500", "2500.00", "2,500.5", "-12.34" (pounds) into pence. Returns 0 or -1 if
// malformed (a comma that does not separate thousands, as in "12,50"), more than two decimals,
// or out of range.
int money_parse(const char *text, int64_t *pence);
// Writes pounds with two decimals, e.g. "2500.00" or "-0.05". Returns buf.
char *money_format(int64_t pence, char *buf, size_t size);
// Splits total into n parts by weights in basis points (sum 10000) so that the parts add up to
// total exactly (largest remainder). Returns 0, or -1 if the weights do not sum to 10000.
int money_split(int64_t total, const int *basis_points, size_t n, int64_t *parts);

#endif
