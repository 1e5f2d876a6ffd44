// Financial years, invoice periods, forecasts and cap thresholds (pure date arithmetic).
#include "billing_year.h"

#include <stdio.h>
#include <string.h>

#include "cara/timeutil.h"

int billing_year_of(int32_t day, char *out, size_t size, int32_t *first, int32_t *last) {
    int y;
    unsigned m, d;
    time_civil_from_days(day, &y, &m, &d);
    int start = m >= 4 ? y : y - 1;
    if (first)
        *first = time_days_from_civil(start, 4, 1);
    if (last)
        *last = time_days_from_civil(start + 1, 4, 1) - 1;
    int n = snprintf(out, size, "%04d-%02d", start, (start + 1) % 100);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

int billing_year_parse(const char *label, int32_t *first, int32_t *last) {
    int y, y2;
    char tail;
    if (!label || strlen(label) != 7 || label[4] != '-' ||
        sscanf(label, "%4d-%2d%c", &y, &y2, &tail) != 2 || y < 1970 || (y + 1) % 100 != y2)
        return -1;
    *first = time_days_from_civil(y, 4, 1);
    *last = time_days_from_civil(y + 1, 4, 1) - 1;
    return 0;
}

int billing_period_parse(const char *period, int32_t *first, int32_t *last) {
    char day[16];
    int32_t d;
    if (!period || strlen(period) != 7 || period[4] != '-')
        return -1;
    snprintf(day, sizeof day, "%s-01", period);
    if (time_parse_date(day, &d) != 0)
        return -1;
    int y;
    unsigned m, dd;
    time_civil_from_days(d, &y, &m, &dd);
    *first = d;
    *last = (m == 12 ? time_days_from_civil(y + 1, 1, 1) : time_days_from_civil(y, m + 1, 1)) - 1;
    return 0;
}

int billing_period_due(const char *invoice_period, unsigned month) {
    if (strcmp(invoice_period, "quarterly") == 0)
        return month % 3 == 0;
    return 1;
}

int64_t billing_forecast(int64_t spent, int32_t first, int32_t as_of, int32_t last) {
    if (as_of < first)
        return 0;
    if (as_of >= last)
        return spent;
    int64_t elapsed = (int64_t)as_of - first + 1, total = (int64_t)last - first + 1;
    return spent / elapsed * total + (spent % elapsed) * total / elapsed;
}

int billing_threshold(int64_t used, int64_t limit) {
    static const int thresholds[] = {100, 90, 75};
    if (limit <= 0)
        return 0;
    for (int i = 0; i < 3; i++)
        if ((__int128)used * 100 >= (__int128)limit * thresholds[i]) // never overflows
            return thresholds[i];
    return 0;
}
