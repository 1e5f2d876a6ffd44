#include "cara/money.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

int money_parse(const char *text, int64_t *pence) {
    if (!text || !*text)
        return -1;
    const char *p = text;
    int sign = 1;
    if (*p == '-') {
        sign = -1;
        p++;
    }
    int64_t pounds = 0;
    int digits = 0, group = 0, commas = 0;
    for (; *p && *p != '.'; p++) {
        // A comma separates thousands only: 1-3 digits before the first, 3 between and after
        // ("12,50" is a decimal comma, not GBP 1,250, and is refused).
        if (*p == ',') {
            if (group == 0 || group > 3 || (commas > 0 && group != 3))
                return -1;
            commas++;
            group = 0;
            continue;
        }
        if (!isdigit((unsigned char)*p))
            return -1;
        if (pounds > (INT64_MAX / 100 - 9) / 10)
            return -1;
        pounds = pounds * 10 + (*p - '0');
        digits++;
        group++;
    }
    if (digits == 0 || (commas > 0 && group != 3))
        return -1;
    int64_t frac = 0;
    if (*p == '.') {
        p++;
        int n = 0;
        for (; *p; p++, n++) {
            if (!isdigit((unsigned char)*p) || n >= 2)
                return -1;
            frac = frac * 10 + (*p - '0');
        }
        if (n == 0)
            return -1;
        if (n == 1)
            frac *= 10;
    }
    *pence = sign * (pounds * 100 + frac);
    return 0;
}

char *money_format(int64_t pence, char *buf, size_t size) {
    uint64_t abs = pence < 0 ? (uint64_t)0 - (uint64_t)pence : (uint64_t)pence;
    snprintf(buf, size, "%s%llu.%02llu", pence < 0 ? "-" : "", (unsigned long long)(abs / 100),
             (unsigned long long)(abs % 100));
    return buf;
}

int money_split(int64_t total, const int *bp, size_t n, int64_t *parts) {
    int sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (bp[i] < 0)
            return -1;
        sum += bp[i];
    }
    if (sum != 10000 || n == 0)
        return -1;
    int64_t assigned = 0;
    int64_t *rem = calloc(n, sizeof *rem);
    if (!rem)
        return -1;
    for (size_t i = 0; i < n; i++) {
        parts[i] = total * bp[i] / 10000;
        rem[i] = total * bp[i] % 10000;
        assigned += parts[i];
    }
    // Hand the leftover pence to the largest remainders, earliest first on ties.
    int64_t left = total - assigned;
    while (left != 0) {
        size_t best = 0;
        for (size_t i = 1; i < n; i++)
            if ((left > 0 && rem[i] > rem[best]) || (left < 0 && rem[i] < rem[best]))
                best = i;
        parts[best] += left > 0 ? 1 : -1;
        rem[best] = left > 0 ? -10001 : 10001;
        left += left > 0 ? -1 : 1;
    }
    free(rem);
    return 0;
}
