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

int booking_check_gap(config_t *cfg, const char *provider, const char *cohort_type, int32_t a,
                      int32_t b, char *err, size_t err_size) {
    int tel = strcmp(cohort_type, "telephone") == 0;
    int64_t lo = booking_setting(cfg, provider, NULL,
                                 tel ? "telephone_gap_min_days" : "gap_min_days", tel ? 1 : 21);
    int64_t hi = booking_setting(cfg, provider, NULL,
                                 tel ? "telephone_gap_max_days" : "gap_max_days", tel ? 42 : 42);
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
