// Time in cara: microseconds since the Unix epoch, UTC; text is ISO 8601 with a Z.
#ifndef CARA_TIMEUTIL_H
#define CARA_TIMEUTIL_H
#include <stddef.h>
#include <stdint.h>

// Wall-clock now, UTC, in microseconds.
int64_t time_now_us(void);
// Monotonic clock in milliseconds, for timeouts.
int64_t time_mono_ms(void);
// Writes "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" into buf (at least 28 bytes). Returns buf.
char *time_format_iso(int64_t us, char *buf, size_t size);
// Parses an ISO 8601 timestamp ("2025-04-01T10:00:00Z", optional fraction, "Z" or +HH:MM offset,
// or a space instead of T as PostgreSQL prints). Returns 0 and sets *us, or -1 if malformed.
int time_parse_iso(const char *text, int64_t *us);
// Parses a calendar date "YYYY-MM-DD" and checks it exists. Returns 0 and sets days since
// 1970-01-01, or -1.
int time_parse_date(const char *text, int32_t *days);
// The calendar date as written in an ISO 8601 time, in its own offset (a caution at 00:30 BST,
// "...T00:30:00+01:00", is that day, not the day before as in UTC). Returns 0 and sets days since
// 1970-01-01, or -1 if text is not a valid time.
int time_written_date(const char *text, int32_t *days);
// Writes "YYYY-MM-DD" for a day number. Returns buf (at least 11 bytes).
char *time_format_date(int32_t days, char *buf, size_t size);
// Days since the epoch for a civil date (proleptic Gregorian).
int32_t time_days_from_civil(int y, unsigned m, unsigned d);
// Civil date for days since the epoch.
void time_civil_from_days(int32_t days, int *y, unsigned *m, unsigned *d);
// The day number of the date in the UK (Europe/London: UTC, or UTC+1 in British Summer Time)
// at time us. CARA's dates (sessions, deadlines, "today") are UK dates.
int32_t time_uk_day(int64_t us);
// Whole years between two day numbers (age at a date).
int time_years_between(int32_t from_days, int32_t to_days);

#endif
