#include "cara/config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cara/log.h"

struct config_t {
    json_t *root;
    json_t *env_cache; // path -> value parsed from the environment
    json_t *warned;    // path -> true once a value of the wrong type was logged
    char *path;
};

config_t *config_from_json(json_t *root) {
    if (!json_is_object(root))
        return NULL;
    config_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->root = json_incref(root);
    self->env_cache = json_object();
    self->warned = json_object();
    if (!self->env_cache || !self->warned) {
        config_destroy(&self);
        return NULL;
    }
    return self;
}

config_t *config_load(const char *path) {
    json_t *root;
    if (path) {
        json_error_t err;
        root = json_load_file(path, 0, &err);
        if (!root) {
            char line[16];
            snprintf(line, sizeof line, "%d", err.line);
            log_error("config_invalid", "path", path, "line", line, "reason", err.text);
            return NULL;
        }
    } else {
        root = json_object();
    }
    config_t *self = config_from_json(root);
    json_decref(root);
    if (self && path)
        self->path = strdup(path);
    return self;
}

void config_destroy(config_t **self_p) {
    if (!self_p || !*self_p)
        return;
    config_t *self = *self_p;
    json_decref(self->root);
    json_decref(self->env_cache);
    json_decref(self->warned);
    free(self->path);
    free(self);
    *self_p = NULL;
}

static void s_env_name(const char *path, char *out, size_t size) {
    size_t n = (size_t)snprintf(out, size, "CARA_");
    for (const char *p = path; *p && n + 1 < size; p++)
        out[n++] = (*p == '.' || *p == '-') ? '_' : (char)toupper((unsigned char)*p);
    out[n] = '\0';
}

json_t *config_get(config_t *self, const char *path) {
    json_t *cached = json_object_get(self->env_cache, path);
    if (cached)
        return cached;
    char name[128];
    s_env_name(path, name, sizeof name);
    const char *env = getenv(name);
    if (env) {
        json_t *value = json_loads(env, JSON_DECODE_ANY, NULL);
        if (!value)
            value = json_string(env);
        if (value && json_object_set_new(self->env_cache, path, value) == 0)
            return value;
    }
    json_t *node = self->root;
    char key[128];
    const char *p = path;
    while (node && *p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (len >= sizeof key)
            return NULL;
        memcpy(key, p, len);
        key[len] = '\0';
        node = json_object_get(node, key);
        p = dot ? dot + 1 : p + len;
    }
    return node;
}

// A secret kept in a file (Docker/Compose secrets): "<path>_file" names it; the first line is
// the value. Cached like environment values. Returns NULL if there is none.
static json_t *s_from_file(config_t *self, const char *path) {
    char file_key[160];
    snprintf(file_key, sizeof file_key, "%s_file", path);
    json_t *name = config_get(self, file_key);
    if (!json_is_string(name))
        return NULL;
    char *resolved = config_resolve(self, json_string_value(name));
    FILE *f = resolved ? fopen(resolved, "r") : NULL;
    free(resolved);
    if (!f) {
        log_error("config_secret_unreadable", "field", file_key);
        return NULL;
    }
    char line[1024] = "";
    if (!fgets(line, sizeof line, f))
        line[0] = '\0';
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    json_t *value = json_string(line);
    if (value && json_object_set_new(self->env_cache, path, value) == 0)
        return value;
    return NULL;
}

// Logs once per setting that its value has the wrong type and the default is used instead.
static void s_ignored(config_t *self, const char *path, const char *wanted) {
    if (json_object_get(self->warned, path))
        return;
    json_object_set_new(self->warned, path, json_true());
    log_warn("config_ignored", "field", path, "reason", wanted);
}

const char *config_str(config_t *self, const char *path, const char *fallback) {
    json_t *v = config_get(self, path);
    if (!v)
        v = s_from_file(self, path);
    if (json_is_string(v))
        return json_string_value(v);
    // An environment value is JSON where it parses as JSON: a password of digits, given for a
    // text, is the text it was written as.
    char name[128];
    s_env_name(path, name, sizeof name);
    const char *env = v ? getenv(name) : NULL;
    json_t *raw = env ? json_string(env) : NULL;
    if (raw && json_object_set_new(self->env_cache, path, raw) == 0)
        return json_string_value(json_object_get(self->env_cache, path));
    if (v)
        s_ignored(self, path, "not a text: the default is used");
    return fallback;
}

int64_t config_int(config_t *self, const char *path, int64_t fallback) {
    json_t *v = config_get(self, path);
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_boolean(v))
        return json_is_true(v);
    if (json_is_string(v)) {
        char *end;
        long long n = strtoll(json_string_value(v), &end, 10);
        if (*json_string_value(v) && !*end)
            return n;
    }
    if (v)
        s_ignored(self, path, "not a whole number: the default is used");
    return fallback;
}

const char *config_path(config_t *self) {
    return self->path;
}

char *config_resolve(config_t *self, const char *path) {
    if (!path)
        return NULL;
    if (path[0] == '/' || !self->path || !strchr(self->path, '/'))
        return strdup(path);
    const char *slash = strrchr(self->path, '/');
    size_t dirlen = (size_t)(slash - self->path);
    size_t size = dirlen + 1 + strlen(path) + 1;
    char *out = malloc(size);
    if (out)
        snprintf(out, size, "%.*s/%s", (int)dirlen, self->path, path);
    return out;
}
