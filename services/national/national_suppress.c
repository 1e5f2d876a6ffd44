#include "national_suppress.h"

#include <stdlib.h>
#include <string.h>

// Suppresses the smallest not-yet-suppressed cell among n cells at stride. Returns 1 if one
// was found.
static int s_suppress_smallest(const int64_t *cells, bool *suppressed, int start, int n,
                               int stride) {
    int best = -1;
    for (int k = 0; k < n; k++) {
        int i = start + k * stride;
        if (!suppressed[i] && (best < 0 || cells[i] < cells[best]))
            best = i;
    }
    if (best < 0)
        return 0;
    suppressed[best] = true;
    return 1;
}

static int s_count(const bool *suppressed, int start, int n, int stride) {
    int c = 0;
    for (int k = 0; k < n; k++)
        c += suppressed[start + k * stride];
    return c;
}

void national_suppress(const int64_t *cells, int rows, int cols, bool *suppressed) {
    for (int i = 0; i < rows * cols; i++)
        suppressed[i] = cells[i] >= 1 && cells[i] <= 4;
    int changed = 1;
    while (changed) {
        changed = 0;
        for (int r = 0; r < rows; r++)
            if (s_count(suppressed, r * cols, cols, 1) == 1)
                changed |= s_suppress_smallest(cells, suppressed, r * cols, cols, 1);
        for (int c = 0; c < cols; c++)
            if (s_count(suppressed, c, rows, cols) == 1)
                changed |= s_suppress_smallest(cells, suppressed, c, rows, cols);
    }
}

int national_suppress_recoverable(const int64_t *cells, int rows, int cols,
                                  const bool *suppressed) {
    bool *unknown = malloc((size_t)(rows * cols) * sizeof *unknown);
    if (!unknown)
        return -1;
    memcpy(unknown, suppressed, (size_t)(rows * cols) * sizeof *unknown);
    int recovered = 0, progress = 1;
    while (progress) {
        progress = 0;
        for (int r = 0; r < rows; r++)
            if (s_count(unknown, r * cols, cols, 1) == 1)
                for (int c = 0; c < cols; c++)
                    if (unknown[r * cols + c])
                        unknown[r * cols + c] = false, recovered++, progress = 1;
        for (int c = 0; c < cols; c++)
            if (s_count(unknown, c, rows, cols) == 1)
                for (int r = 0; r < rows; r++)
                    if (unknown[r * cols + c])
                        unknown[r * cols + c] = false, recovered++, progress = 1;
    }
    (void)cells;
    free(unknown);
    return recovered;
}
