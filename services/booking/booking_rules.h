// booking rules that need no database: per-provider/per-force settings, cohort date checks,
// attendance statuses and the shortfall plan. Unit-tested in tests/unit/test_booking_rules.c.
#ifndef BOOKING_RULES_H
#define BOOKING_RULES_H
#include <stddef.h>
#include <stdint.h>

#include "cara/config.h"

// A setting for one provider and force: forces.<force>.<key>, else providers.<provider>.<key>,
// else <key>, else fallback. provider or force may be NULL (that level is skipped).
int64_t booking_setting(config_t *cfg, const char *provider, const char *force, const char *key,
                        int64_t fallback);

// The JSON value of a setting, by the same precedence as booking_setting (borrowed; NULL if
// unset at every level).
json_t *booking_setting_json(config_t *cfg, const char *provider, const char *force,
                             const char *key);

// A working-day calendar: the working weekdays (working_weekdays: ["mon", ..., "sun"], default
// Monday to Friday) less the bank holidays (bank_holidays: ["YYYY-MM-DD", ...], default none),
// each setting per force, else per provider, else global. Days are days since 1970-01-01.
typedef struct {
    unsigned weekdays; // bit d: weekday d works (0 = Sunday ... 6 = Saturday)
    int32_t *holidays; // sorted
    size_t n_holidays;
} booking_calendar_t;
// Loads the calendar for one provider and force. Returns 0, or -1 with the reason in err (a
// malformed weekday or date, or no working weekday at all); out is then empty.
int booking_calendar_load(config_t *cfg, const char *provider, const char *force,
                          booking_calendar_t *out, char *err, size_t err_size);
void booking_calendar_clear(booking_calendar_t *cal);
// 1 if day is a working day, else 0.
int booking_calendar_working(const booking_calendar_t *cal, int32_t day);
// The day n working days after day (day itself not counted; n = 0: day).
int32_t booking_calendar_add(const booking_calendar_t *cal, int32_t day, int64_t n);
// The number of working days after from, up to and including to (0 if to <= from).
int64_t booking_calendar_between(const booking_calendar_t *cal, int32_t from, int32_t to);
// 1 if the provider/force counts its first-contact target (first_contact_days) and at-risk
// margin (contact_at_risk_days) in working days (first_contact_unit "working_days"), 0 for
// calendar days (the default).
int booking_contact_in_working_days(config_t *cfg, const char *provider, const char *force);

// Checks a cohort's Part A / Part B days against the provider's gap (gap_min_days..gap_max_days,
// or telephone_gap_min_days..telephone_gap_max_days for the telephone type). Returns 0, or -1
// with the reason in err.
int booking_check_gap(config_t *cfg, const char *provider, const char *cohort_type, int32_t a,
                      int32_t b, char *err, size_t err_size);

// 1 if s is a known cohort type (the four group types or telephone), else 0.
int booking_cohort_type_valid(const char *s);
// 1 if s is attended, absent, late_refused_entry or excluded, else 0.
int booking_attendance_status_valid(const char *s);
// The non-compliance reason for a missed part: did_not_attend, late_refused_entry or excluded.
const char *booking_miss_reason(const char *status);

// Shortfall planning: places each open case (earliest deadline first) in the earliest-ending
// cohort of its pathway with a seat left whose Part B is before the deadline. Cases left
// unplaced are the shortfall.
typedef struct {
    const char *referral_id, *pathway;
    int32_t deadline;
    int placed; // out
} booking_demand_t;
typedef struct {
    const char *cohort_type;
    int32_t part_b;
    int free_seats; // consumed by the plan
} booking_supply_t;
// Sorts demand by deadline and supply by Part B, then plans. Returns the number unplaced.
size_t booking_shortfall_plan(booking_demand_t *demand, size_t n, booking_supply_t *supply,
                              size_t m);

#endif
