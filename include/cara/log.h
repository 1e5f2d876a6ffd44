// JSON-lines logging on stderr: time, level, service, event and ids. Never personal data:
// callers pass identifiers and counts only.
#ifndef CARA_LOG_H
#define CARA_LOG_H
#include <stddef.h>

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;

// Sets the service name written on every line and the minimum level. Not thread-safe; call once.
void log_init(const char *service, log_level_t min_level);
// Parses "debug", "info", "warn", "error"; returns LOG_INFO for anything else.
log_level_t log_level_parse(const char *name);
// Writes one line: {"ts":..,"level":..,"service":..,"event":EVENT,"k1":"v1",...}.
// The variadic part is key/value string pairs ended by NULL; a NULL value is skipped.
void log_event(log_level_t level, const char *event, ...) __attribute__((sentinel));

// Holding, for work that may be undone and done again (a batch's fast pass): from log_hold on,
// this thread's info and debug lines are kept, not written, until log_release writes them (in
// order) or log_discard drops them (the work was rolled back, and its retry logs its own).
// Warnings and errors are always written at once.
void log_hold(void);
void log_release(void);
void log_discard(void);
// The held lines taken away from the thread (holding ends), for work whose outcome is known
// only later: log_held_write writes them, log_held_drop drops them; either frees them.
typedef struct {
    char *text;
    size_t len;
} log_held_t;
log_held_t log_detach(void);
void log_held_write(log_held_t *held);
void log_held_drop(log_held_t *held);

#define log_info(...) log_event(LOG_INFO, __VA_ARGS__, (char *)NULL)
#define log_warn(...) log_event(LOG_WARN, __VA_ARGS__, (char *)NULL)
#define log_error(...) log_event(LOG_ERROR, __VA_ARGS__, (char *)NULL)
#define log_debug(...) log_event(LOG_DEBUG, __VA_ARGS__, (char *)NULL)

#endif
