// Disclosure control for a published table of counts with its row and column totals:
// counts of 1-4 are suppressed (primary), and further cells (secondary) so that no row or
// column has exactly one suppressed cell, which its total would give away.
#ifndef NATIONAL_SUPPRESS_H
#define NATIONAL_SUPPRESS_H
#include <stdbool.h>
#include <stdint.h>

// cells: rows x cols, row-major. Sets suppressed[i] for every cell to hide.
void national_suppress(const int64_t *cells, int rows, int cols, bool *suppressed);
// The attacker's view: repeatedly solves any row or column (totals published) with exactly one
// unknown. Returns how many suppressed cells it could recover (0 = safe).
int national_suppress_recoverable(const int64_t *cells, int rows, int cols,
                                  const bool *suppressed);

#endif
