// Configuration: one JSON file per process (jansson), every field overridable by an
// environment variable for Docker. A dotted path "db.conninfo" is overridden by
// CARA_DB_CONNINFO; the variable's value is read as JSON when it parses as JSON
// (numbers, arrays, objects), otherwise as a string.
#ifndef CARA_CONFIG_H
#define CARA_CONFIG_H
#include <jansson.h>
#include <stdint.h>

typedef struct config_t config_t;

// Loads path (NULL: environment only). Returns NULL with the reason logged on error.
config_t *config_load(const char *path);
// Builds a configuration from a JSON object (adds its own reference: the caller keeps and
// releases theirs). Returns NULL on error.
config_t *config_from_json(json_t *root);
void config_destroy(config_t **self_p);
// The value at a dotted path, environment first; borrowed, valid until destroy. NULL if absent.
json_t *config_get(config_t *self, const char *path);
// The string at path, or fallback if absent or not a string. When path is absent but
// "<path>_file" names a file (a Docker secret), the file's first line is the value.
const char *config_str(config_t *self, const char *path, const char *fallback);
// The integer at path (a JSON integer, a numeric string, or true/false as 1/0), or fallback.
int64_t config_int(config_t *self, const char *path, int64_t fallback);
// The file the configuration came from (NULL if none): relative paths resolve against its folder.
const char *config_path(config_t *self);
// Resolves a path relative to the configuration file's folder. Caller frees.
char *config_resolve(config_t *self, const char *path);

#endif
