#include "cara/keys.h"

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "cara/log.h"

struct keyring_t {
    json_t *keys;  // array of entries
};

int keys_generate(keypair_t *kp) {
    return zmq_curve_keypair(kp->public_key, kp->secret_key) == 0 ? 0 : -1;
}

// Writes JSON to path atomically with the given mode. Returns 0 or -1.
static int s_write_json(const char *path, json_t *doc, mode_t mode) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0)
        return -1;
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    int rc = -1;
    if (text) {
        size_t len = strlen(text);
        if (write(fd, text, len) == (ssize_t)len && write(fd, "\n", 1) == 1)
            rc = 0;
        free(text);
    }
    if (close(fd) != 0)
        rc = -1;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -1;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

int keys_save(const keypair_t *kp, const char *path) {
    json_t *doc = json_pack("{s:s, s:s}", "public", kp->public_key, "secret", kp->secret_key);
    int rc = doc ? s_write_json(path, doc, 0600) : -1;
    json_decref(doc);
    return rc;
}

static int s_copy_key(json_t *value, char out[KEY_Z85_LEN]) {
    const char *text = json_string_value(value);
    if (!text || strlen(text) != 40)
        return -1;
    memcpy(out, text, KEY_Z85_LEN);
    return 0;
}

int keys_load(const char *path, keypair_t *kp) {
    json_error_t err;
    json_t *doc = json_load_file(path, 0, &err);
    int rc = -1;
    if (doc && s_copy_key(json_object_get(doc, "public"), kp->public_key) == 0 &&
        s_copy_key(json_object_get(doc, "secret"), kp->secret_key) == 0)
        rc = 0;
    if (rc != 0)
        log_error("keys_load_failed", "path", path, "reason", doc ? "missing or bad key" : err.text);
    json_decref(doc);
    return rc;
}

int identity_parse(const char *user_id, identity_t *out) {
    const char *colon = user_id ? strchr(user_id, ':') : NULL;
    if (!colon || colon == user_id || (size_t)(colon - user_id) >= sizeof out->role ||
        strlen(colon + 1) >= sizeof out->org)
        return -1;
    memset(out, 0, sizeof *out);
    memcpy(out->role, user_id, (size_t)(colon - user_id));
    strcpy(out->org, colon + 1);
    return 0;
}

char *identity_format(const identity_t *id, char *buf, size_t size) {
    snprintf(buf, size, "%s:%s", id->role, id->org);
    return buf;
}

bool identity_is(const identity_t *id, const char *role) { return strcmp(id->role, role) == 0; }

keyring_t *keyring_load(const char *path) {
    json_error_t err;
    json_t *doc = json_load_file(path, 0, &err);
    json_t *keys = doc ? json_object_get(doc, "keys") : NULL;
    if (!json_is_array(keys)) {
        log_error("keyring_invalid", "path", path, "reason", doc ? "no \"keys\" array" : err.text);
        json_decref(doc);
        return NULL;
    }
    keyring_t *self = calloc(1, sizeof *self);
    if (self)
        self->keys = json_incref(keys);
    json_decref(doc);
    return self;
}

void keyring_destroy(keyring_t **self_p) {
    if (!self_p || !*self_p)
        return;
    json_decref((*self_p)->keys);
    free(*self_p);
    *self_p = NULL;
}

int keyring_find(keyring_t *self, const char *public_key, identity_t *who) {
    size_t i;
    json_t *entry;
    json_array_foreach(self->keys, i, entry) {
        const char *key = json_string_value(json_object_get(entry, "public"));
        const char *role = json_string_value(json_object_get(entry, "role"));
        const char *org = json_string_value(json_object_get(entry, "org"));
        if (key && role && org && strcmp(key, public_key) == 0 && strlen(role) < sizeof who->role &&
            strlen(org) < sizeof who->org && !strchr(role, ':')) {
            memset(who, 0, sizeof *who);
            strcpy(who->role, role);
            strcpy(who->org, org);
            return 0;
        }
    }
    return -1;
}

int keyring_key_of(keyring_t *self, const char *role, const char *org, char out[KEY_Z85_LEN]) {
    size_t i;
    json_t *entry;
    json_array_foreach(self->keys, i, entry) {
        const char *r = json_string_value(json_object_get(entry, "role"));
        const char *o = json_string_value(json_object_get(entry, "org"));
        if (r && o && strcmp(r, role) == 0 && strcmp(o, org) == 0)
            return s_copy_key(json_object_get(entry, "public"), out);
    }
    return -1;
}

static json_t *s_load_or_new(const char *path) {
    json_t *doc = json_load_file(path, 0, NULL);
    if (!doc)
        doc = json_pack("{s:[]}", "keys");
    if (!json_is_array(json_object_get(doc, "keys")))
        json_object_set_new(doc, "keys", json_array());
    return doc;
}

int keyring_file_add(const char *path, const char *public_key, const char *role, const char *org,
                     const char *name) {
    if (!public_key || strlen(public_key) != 40 || !role || !org || strchr(role, ':'))
        return -1;
    json_t *doc = s_load_or_new(path);
    json_t *keys = json_object_get(doc, "keys");
    for (size_t i = json_array_size(keys); i-- > 0;) {
        const char *key = json_string_value(json_object_get(json_array_get(keys, i), "public"));
        if (key && strcmp(key, public_key) == 0)
            json_array_remove(keys, i);
    }
    json_array_append_new(keys, json_pack("{s:s, s:s, s:s, s:s}", "public", public_key, "role",
                                          role, "org", org, "name", name ? name : ""));
    int rc = s_write_json(path, doc, 0644);
    json_decref(doc);
    return rc;
}

int keyring_file_remove(const char *path, const char *key_or_name) {
    json_t *doc = json_load_file(path, 0, NULL);
    json_t *keys = doc ? json_object_get(doc, "keys") : NULL;
    if (!json_is_array(keys)) {
        json_decref(doc);
        return -1;
    }
    int removed = 0;
    for (size_t i = json_array_size(keys); i-- > 0;) {
        json_t *entry = json_array_get(keys, i);
        const char *key = json_string_value(json_object_get(entry, "public"));
        const char *name = json_string_value(json_object_get(entry, "name"));
        if ((key && strcmp(key, key_or_name) == 0) || (name && *name && strcmp(name, key_or_name) == 0)) {
            json_array_remove(keys, i);
            removed++;
        }
    }
    int rc = s_write_json(path, doc, 0644);
    json_decref(doc);
    return rc == 0 ? removed : -1;
}
