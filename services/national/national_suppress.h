// Disclosure control for published counts. A return is a system of cells (counts and their
// totals) tied by additive lines: "these parts sum to that total". Counts of 1-4 are hidden
// (primary suppression); further cells are hidden (secondary suppression) until no hidden cell
// is determined by the published cells through the lines, so no hidden value can be recovered
// from row or column totals, or from any combination of them. Pure functions: no I/O.
#ifndef NATIONAL_SUPPRESS_H
#define NATIONAL_SUPPRESS_H
#include <stdbool.h>
#include <stdint.h>

typedef struct national_sdc_t national_sdc_t;

// A new, empty system. Returns NULL when out of memory.
national_sdc_t *national_sdc_new(void);
// Frees the system; tolerates NULL and sets *self_p to NULL.
void national_sdc_destroy(national_sdc_t **self_p);
// Adds a cell with its true value; never_published cells are unknowns to a reader whatever
// happens (working cells). Returns the cell's index, or -1 when out of memory.
int national_sdc_cell(national_sdc_t *self, int64_t value, bool never_published);
// Adds the line parts[0] + ... + parts[n-1] = total. Returns 0, or -1 when out of memory or
// when an index is out of range.
int national_sdc_line(national_sdc_t *self, const int *parts, int n, int total);
// Marks a cell as published whatever happens (e.g. the grand total): never chosen as a
// secondary. A locked cell with a count of 1-4 is still hidden.
void national_sdc_lock(national_sdc_t *self, int cell);
// Protects a cell as if it were a count of 1-4 whatever its value: it is hidden, and no
// published cell may determine it (a cell that is small in another period of a system shared
// by several periods).
void national_sdc_protect(national_sdc_t *self, int cell);
int national_sdc_cells(const national_sdc_t *self);
// The cell's true value (0 for an index out of range).
int64_t national_sdc_value(const national_sdc_t *self, int cell);
// Runs primary (counts of 1-4 and protected cells) and secondary suppression. Returns 0 when no
// hidden cell is determined, or -1 when that could not be reached (then hide the whole system) or
// out of memory.
int national_sdc_suppress(national_sdc_t *self);
// True if the cell is hidden (after national_sdc_suppress), or never published.
bool national_sdc_hidden(const national_sdc_t *self, int cell);
// The attacker's view: which hidden cells the published cells and the lines determine
// exactly (linear algebra over all lines at once). Sets determined[] (may be NULL) and
// returns how many, or -1 when out of memory. Uses the system's current hidden set.
int national_sdc_determined(const national_sdc_t *self, bool *determined);
// Replaces the hidden set (for tests that attack a given pattern).
void national_sdc_set_hidden(national_sdc_t *self, const bool *hidden);

// One table of rows x cols counts (row-major) with its row totals, column totals and grand
// total all published unless suppressed. hidden is (rows+1) x (cols+1): the last column holds
// the row totals, the last row the column totals, the corner the grand total. Returns 0, or -1
// as national_sdc_suppress.
int national_suppress_table(const int64_t *cells, int rows, int cols, bool *hidden);

#endif
