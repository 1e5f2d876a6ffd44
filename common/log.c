#include "cara/log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cara/timeutil.h"

static char s_service[64] = "cara";
static log_level_t s_min_level = LOG_INFO;
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *s_level_names[] = {"debug", "info", "warn", "error"};

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
    pthread_mutex_lock(&s_lock);
    fprintf(stderr, "%s\n", text);
    fflush(stderr);
    pthread_mutex_unlock(&s_lock);
    free(text);
}
