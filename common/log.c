#include "cara/log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cara/timeutil.h"

static char s_service[64] = "cara";
static log_level_t s_min_level = LOG_INFO;
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *s_level_names[] = {"debug", "info", "warn", "error"};

// Held lines (log_hold) of this thread, in order; past S_HELD_MAX bytes they are written at once.
#define S_HELD_MAX (1 << 20)
static _Thread_local int s_holding;
static _Thread_local char *s_held;
static _Thread_local size_t s_held_len, s_held_cap;

void log_hold(void) {
    s_holding = 1;
}

log_held_t log_detach(void) {
    log_held_t held = {s_held, s_held_len};
    s_holding = 0;
    s_held = NULL; // the buffer goes with the lines: nothing is left allocated between holds
    s_held_len = s_held_cap = 0;
    return held;
}

void log_held_drop(log_held_t *held) {
    free(held->text);
    *held = (log_held_t){NULL, 0};
}

// Writes text (len bytes, then a newline if newline) to stderr in one piece.
static void s_write(const char *text, size_t len, int newline) {
    pthread_mutex_lock(&s_lock);
    fwrite(text, 1, len, stderr);
    if (newline)
        fputc('\n', stderr);
    fflush(stderr);
    pthread_mutex_unlock(&s_lock);
}

void log_held_write(log_held_t *held) {
    if (held->len)
        s_write(held->text, held->len, 0);
    log_held_drop(held);
}

void log_discard(void) {
    log_held_t held = log_detach();
    log_held_drop(&held);
}

void log_release(void) {
    log_held_t held = log_detach();
    log_held_write(&held);
}

// Keeps one line (with its newline) for log_release. Returns 0, or -1 if it must be written now.
static int s_keep(const char *text) {
    size_t len = strlen(text) + 1;
    if (s_held_len + len > S_HELD_MAX)
        return -1;
    if (s_held_len + len > s_held_cap) {
        size_t cap = s_held_cap ? s_held_cap * 2 : 16384;
        while (cap < s_held_len + len)
            cap *= 2;
        char *grown = realloc(s_held, cap);
        if (!grown)
            return -1;
        s_held = grown;
        s_held_cap = cap;
    }
    memcpy(s_held + s_held_len, text, len - 1);
    s_held[s_held_len + len - 1] = '\n';
    s_held_len += len;
    return 0;
}

void log_init(const char *service, log_level_t min_level) {
    snprintf(s_service, sizeof s_service, "%s", service ? service : "cara");
    s_min_level = min_level;
}

log_level_t log_level_parse(const char *name) {
    for (int i = 0; name && i < 4; i++)
        if (strcmp(name, s_level_names[i]) == 0)
            return (log_level_t)i;
    return LOG_INFO;
}

void log_event(log_level_t level, const char *event, ...) {
    if (level < s_min_level)
        return;
    char ts[40];
    time_format_iso(time_now_us(), ts, sizeof ts);
    json_t *line = json_object();
    if (!line)
        return;
    json_object_set_new(line, "ts", json_string(ts));
    json_object_set_new(line, "level", json_string(s_level_names[level]));
    json_object_set_new(line, "service", json_string(s_service));
    json_object_set_new(line, "event", json_string(event ? event : "?"));
    va_list ap;
    va_start(ap, event);
    const char *key;
    while ((key = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);
        if (value)
            json_object_set_new(line, key, json_string(value));
    }
    va_end(ap);
    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(line);
    if (!text)
        return;
    if (!(s_holding && level <= LOG_INFO && s_keep(text) == 0))
        s_write(text, strlen(text), 1);
    free(text);
}
