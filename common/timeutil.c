#include "cara/timeutil.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t time_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t time_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// Howard Hinnant's civil-from-days algorithms (public domain description).
int32_t time_days_from_civil(int y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int)doe - 719468;
}

void time_civil_from_days(int32_t z, int *y, unsigned *m, unsigned *d) {
    z += 719468;
    const int era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)yoe + era * 400 + (*m <= 2);
}

static int s_days_in_month(int y, unsigned m) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return days[m - 1];
}

char *time_format_iso(int64_t us, char *buf, size_t size) {
    int64_t secs = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
    int64_t frac = us - secs * 1000000;
    int32_t days = (int32_t)(secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400));
    int64_t rem = secs - (int64_t)days * 86400;
    int y;
    unsigned m, d;
    time_civil_from_days(days, &y, &m, &d);
    snprintf(buf, size, "%04d-%02u-%02uT%02d:%02d:%02d.%06dZ", y, m, d, (int)(rem / 3600),
             (int)(rem / 60 % 60), (int)(rem % 60), (int)frac);
    return buf;
}

static int s_digits(const char *p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i]))
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 0;
}

static int s_parse_ymd(const char *t, int *y, int *m, int *d) {
    if (s_digits(t, 4, y) || t[4] != '-' || s_digits(t + 5, 2, m) || t[7] != '-' ||
        s_digits(t + 8, 2, d))
        return -1;
    if (*y < 1900 || *y > 2200 || *m < 1 || *m > 12 || *d < 1 || *d > s_days_in_month(*y, *m))
        return -1;
    return 0;
}

int time_written_date(const char *text, int32_t *days) {
    int64_t us;
    char date[11];
    if (!text || time_parse_iso(text, &us) != 0)
        return -1;
    memcpy(date, text, 10);
    date[10] = '\0';
    return time_parse_date(date, days);
}

int time_parse_date(const char *text, int32_t *days) {
    int y, m, d;
    if (!text || strlen(text) != 10 || s_parse_ymd(text, &y, &m, &d))
        return -1;
    *days = time_days_from_civil(y, (unsigned)m, (unsigned)d);
    return 0;
}

char *time_format_date(int32_t days, char *buf, size_t size) {
    int y;
    unsigned m, d;
    time_civil_from_days(days, &y, &m, &d);
    snprintf(buf, size, "%04d-%02u-%02u", y, m, d);
    return buf;
}

int time_parse_iso(const char *t, int64_t *us) {
    int y, mo, d, h, mi, s;
    if (!t || strlen(t) < 19 || s_parse_ymd(t, &y, &mo, &d))
        return -1;
    if ((t[10] != 'T' && t[10] != ' ') || s_digits(t + 11, 2, &h) || t[13] != ':' ||
        s_digits(t + 14, 2, &mi) || t[16] != ':' || s_digits(t + 17, 2, &s))
        return -1;
    if (h > 23 || mi > 59 || s > 59)
        return -1;
    const char *p = t + 19;
    int64_t frac = 0;
    if (*p == '.') {
        int n = 0;
        p++;
        while (isdigit((unsigned char)*p)) {
            if (n < 6) {
                frac = frac * 10 + (*p - '0');
                n++;
            }
            p++;
        }
        if (n == 0)
            return -1;
        while (n++ < 6)
            frac *= 10;
    }
    int64_t offset = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om = 0;
        int sign = *p == '-' ? -1 : 1;
        if (s_digits(p + 1, 2, &oh))
            return -1;
        p += 3;
        if (*p == ':')
            p++;
        if (*p) {
            if (s_digits(p, 2, &om))
                return -1;
            p += 2;
        }
        if (oh > 23 || om > 59)
            return -1;
        offset = sign * ((int64_t)oh * 3600 + om * 60);
    } else {
        return -1;
    }
    if (*p)
        return -1;
    int64_t days = time_days_from_civil(y, (unsigned)mo, (unsigned)d);
    *us = ((days * 86400 + h * 3600 + mi * 60 + s) - offset) * 1000000 + frac;
    return 0;
}

int time_years_between(int32_t from_days, int32_t to_days) {
    int y1, y2;
    unsigned m1, d1, m2, d2;
    time_civil_from_days(from_days, &y1, &m1, &d1);
    time_civil_from_days(to_days, &y2, &m2, &d2);
    int years = y2 - y1;
    if (m2 < m1 || (m2 == m1 && d2 < d1))
        years--;
    return years;
}

// Floor division for the negative times before 1970.
static int64_t s_floor_div(int64_t a, int64_t b) {
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

// The last Sunday of month m (March or October: 31 days) of year y, as a day number.
static int32_t s_last_sunday(int y, unsigned m) {
    int32_t last = time_days_from_civil(y, m, 31);
    int32_t weekday = (int32_t)(((last % 7) + 7 + 4) % 7); // 0 = Sunday; 1970-01-01 a Thursday
    return last - weekday;
}

int32_t time_uk_day(int64_t us) {
    int64_t secs = s_floor_div(us, 1000000);
    int y;
    unsigned m, d;
    time_civil_from_days((int32_t)s_floor_div(secs, 86400), &y, &m, &d);
    // British Summer Time: from 01:00 UTC on the last Sunday of March to 01:00 UTC on the last
    // Sunday of October, an hour ahead of UTC.
    int64_t from = (int64_t)s_last_sunday(y, 3) * 86400 + 3600;
    int64_t to = (int64_t)s_last_sunday(y, 10) * 86400 + 3600;
    if (secs >= from && secs < to)
        secs += 3600;
    return (int32_t)s_floor_div(secs, 86400);
}
