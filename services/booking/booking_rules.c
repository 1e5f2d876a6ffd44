// booking rules without the database: settings lookup, cohort gaps, attendance statuses and the
// shortfall plan.
#include "booking_rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const s_types[] = {"male_intimate", "female_intimate", "male_non_intimate",
                                      "female_non_intimate", "telephone"};
static const char *const s_statuses[] = {"attended", "absent", "late_refused_entry", "excluded"};

int64_t booking_setting(config_t *cfg, const char *provider, const char *force, const char *key,
                        int64_t fallback) {
    char path[200];
    const int64_t unset = INT64_MIN;
    int64_t v;
    if (force && *force) {
        snprintf(path, sizeof path, "forces.%s.%s", force, key);
        if ((v = config_int(cfg, path, unset)) != unset)
            return v;
    }
    if (provider && *provider) {
        snprintf(path, sizeof path, "providers.%s.%s", provider, key);
        if ((v = config_int(cfg, path, unset)) != unset)
            return v;
    }
    return config_int(cfg, key, fallback);
}

json_t *booking_setting_json(config_t *cfg, const char *provider, const char *force,
                             const char *key) {
    char path[200];
    json_t *v;
    if (force && *force) {
        snprintf(path, sizeof path, "forces.%s.%s", force, key);
        if ((v = config_get(cfg, path)))
            return v;
    }
    if (provider && *provider) {
        snprintf(path, sizeof path, "providers.%s.%s", provider, key);
        if ((v = config_get(cfg, path)))
            return v;
    }
    return config_get(cfg, key);
}

static int s_day_cmp(const void *x, const void *y) {
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    return a < b ? -1 : a > b;
}

// Parses YYYY-MM-DD (a real calendar date) into days since 1970-01-01. Returns 0 or -1.
static int s_parse_day(const char *text, int32_t *out) {
    int y, m, d;
    char tail;
    if (!text || strlen(text) != 10 || sscanf(text, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 ||
        m < 1 || m > 12 || d < 1)
        return -1;
    static const int len[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > len[m - 1] + (m == 2 && leap))
        return -1;
    // Days from civil (H. Hinnant's algorithm).
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (unsigned)((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    *out = (int32_t)(era * 146097 + (int)doe - 719468);
    return 0;
}

void booking_calendar_clear(booking_calendar_t *cal) {
    free(cal->holidays);
    cal->holidays = NULL;
    cal->n_holidays = 0;
    cal->weekdays = 0;
}

int booking_calendar_load(config_t *cfg, const char *provider, const char *force,
                          booking_calendar_t *out, char *err, size_t err_size) {
    static const char *const names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    *out = (booking_calendar_t){0x3e, NULL, 0}; // Monday to Friday
    json_t *days = booking_setting_json(cfg, provider, force, "working_weekdays");
    if (days) {
        out->weekdays = 0;
        size_t i;
        json_t *v;
        if (!json_is_array(days))
            goto bad_days;
        json_array_foreach(days, i, v) {
            int d = 0;
            while (d < 7 && (!json_is_string(v) || strcmp(json_string_value(v), names[d]) != 0))
                d++;
            if (d == 7)
                goto bad_days;
            out->weekdays |= 1u << d;
        }
        if (!out->weekdays)
            goto bad_days;
    }
    json_t *hols = booking_setting_json(cfg, provider, force, "bank_holidays");
    if (hols) {
        if (!json_is_array(hols)) {
            snprintf(err, err_size, "bank_holidays must be a list of YYYY-MM-DD dates");
            goto fail;
        }
        size_t n = json_array_size(hols), i;
        json_t *v;
        out->holidays = calloc(n + 1, sizeof *out->holidays);
        if (!out->holidays) {
            snprintf(err, err_size, "out of memory");
            goto fail;
        }
        json_array_foreach(hols, i, v) {
            if (s_parse_day(json_string_value(v), &out->holidays[i]) != 0) {
                snprintf(err, err_size, "bank_holidays[%zu] is not a date YYYY-MM-DD", i);
                goto fail;
            }
        }
        out->n_holidays = n;
        qsort(out->holidays, n, sizeof *out->holidays, s_day_cmp);
    }
    return 0;
bad_days:
    snprintf(err, err_size,
             "working_weekdays must be a non-empty list of sun, mon, tue, wed,"
             " thu, fri, sat");
fail:
    booking_calendar_clear(out);
    return -1;
}

int booking_calendar_working(const booking_calendar_t *cal, int32_t day) {
    int weekday = (int)(((int64_t)day % 7 + 7 + 4) % 7); // 1970-01-01 was a Thursday
    if (!(cal->weekdays & (1u << weekday)))
        return 0;
    return !(cal->n_holidays &&
             bsearch(&day, cal->holidays, cal->n_holidays, sizeof day, s_day_cmp));
}

int32_t booking_calendar_add(const booking_calendar_t *cal, int32_t day, int64_t n) {
    if (!(cal->weekdays & 0x7f))
        return (int32_t)(day + n); // no calendar: plain days
    while (n > 0) {
        day++;
        n -= booking_calendar_working(cal, day);
    }
    return day;
}

int64_t booking_calendar_between(const booking_calendar_t *cal, int32_t from, int32_t to) {
    int64_t n = 0;
    for (int32_t d = from + 1; d <= to; d++)
        n += booking_calendar_working(cal, d);
    return n;
}

int booking_contact_in_working_days(config_t *cfg, const char *provider, const char *force) {
    json_t *unit = booking_setting_json(cfg, provider, force, "first_contact_unit");
    return json_is_string(unit) && strcmp(json_string_value(unit), "working_days") == 0;
}

int booking_check_gap(config_t *cfg, const char *provider, const char *cohort_type, int32_t a,
                      int32_t b, char *err, size_t err_size) {
    int tel = strcmp(cohort_type, "telephone") == 0;
    int64_t lo = booking_setting(cfg, provider, NULL,
                                 tel ? "telephone_gap_min_days" : "gap_min_days", tel ? 1 : 28);
    int64_t hi = booking_setting(cfg, provider, NULL,
                                 tel ? "telephone_gap_max_days" : "gap_max_days", tel ? 42 : 35);
    int64_t gap = (int64_t)b - a;
    if (gap < 1 || gap < lo || gap > hi) {
        snprintf(err, err_size, "Part B must be %lld to %lld days after Part A (is %lld)",
                 (long long)(lo < 1 ? 1 : lo), (long long)hi, (long long)gap);
        return -1;
    }
    return 0;
}

int booking_cohort_type_valid(const char *s) {
    for (size_t i = 0; s && i < sizeof s_types / sizeof *s_types; i++)
        if (strcmp(s, s_types[i]) == 0)
            return 1;
    return 0;
}

int booking_attendance_status_valid(const char *s) {
    for (size_t i = 0; s && i < sizeof s_statuses / sizeof *s_statuses; i++)
        if (strcmp(s, s_statuses[i]) == 0)
            return 1;
    return 0;
}

const char *booking_miss_reason(const char *status) {
    if (strcmp(status, "late_refused_entry") == 0)
        return "late_refused_entry";
    if (strcmp(status, "excluded") == 0)
        return "excluded";
    return "did_not_attend";
}

static int s_by_deadline(const void *x, const void *y) {
    const booking_demand_t *a = x, *b = y;
    if (a->deadline != b->deadline)
        return a->deadline < b->deadline ? -1 : 1;
    return strcmp(a->referral_id, b->referral_id);
}

static int s_by_part_b(const void *x, const void *y) {
    const booking_supply_t *a = x, *b = y;
    return a->part_b < b->part_b ? -1 : a->part_b > b->part_b;
}

// Cases that can use a cohort form nested sets (every cohort ending before an earlier deadline
// also ends before a later one), so serving the earliest deadline first never costs a place.
size_t booking_shortfall_plan(booking_demand_t *demand, size_t n, booking_supply_t *supply,
                              size_t m) {
    if (n > 1)
        qsort(demand, n, sizeof *demand, s_by_deadline);
    if (m > 1)
        qsort(supply, m, sizeof *supply, s_by_part_b);
    size_t unplaced = 0;
    for (size_t i = 0; i < n; i++) {
        demand[i].placed = 0;
        for (size_t k = 0; k < m && supply[k].part_b < demand[i].deadline; k++) {
            if (supply[k].free_seats > 0 && strcmp(supply[k].cohort_type, demand[i].pathway) == 0) {
                supply[k].free_seats--;
                demand[i].placed = 1;
                break;
            }
        }
        unplaced += !demand[i].placed;
    }
    return unplaced;
}
