#include "cara/keys.h"

#include <errno.h>
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
    json_t *keys; // array of entries
};

int keys_generate(keypair_t *kp) {
    return zmq_curve_keypair(kp->public_key, kp->secret_key) == 0 ? 0 : -1;
}

// Writes all of text to fd. Returns 0 or -1 (errno set).
static int s_write_all(int fd, const char *text, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, text, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        text += n;
        len -= (size_t)n;
    }
    return 0;
}

// Flushes the directory holding path, so that a rename into it survives a crash. Returns 0 or -1.
static int s_sync_dir(const char *path) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

// Writes JSON to path atomically with exactly the given mode, whatever the umask: a fresh temp
// file of its own in the same directory (mkstemp: O_EXCL, so a file or symlink planted there is
// never opened or followed), fchmod, fsync, rename. Returns 0, or -1 with the reason logged.
static int s_write_json(const char *path, json_t *doc, mode_t mode) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof tmp) {
        log_error("key_file_write_failed", "path", path, "reason", "path too long");
        return -1;
    }
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        log_error("key_file_write_failed", "path", path, "reason", strerror(errno));
        return -1;
    }
    const char *failed = NULL;
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!text)
        failed = "out of memory";
    else if (fchmod(fd, mode) != 0 || s_write_all(fd, text, strlen(text)) != 0 ||
             s_write_all(fd, "\n", 1) != 0 || fsync(fd) != 0)
        failed = strerror(errno);
    free(text);
    if (close(fd) != 0 && !failed)
        failed = strerror(errno);
    if (!failed && rename(tmp, path) != 0)
        failed = strerror(errno);
    if (failed) {
        log_error("key_file_write_failed", "path", path, "reason", failed);
        unlink(tmp);
        return -1;
    }
    if (s_sync_dir(path) != 0)
        log_warn("key_file_dir_sync_failed", "path", path, "reason", strerror(errno));
    return 0;
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

// Opens path for reading and checks who else can reach it. A secret key file we own must be
// ours alone (no group or other bits: chmod 600). A file owned by someone else can only be
// read through its group or other bits, so it was shared with this process on purpose (a
// Compose secret, bind-mounted with the host user as owner; a root-owned orchestrator secret):
// it is accepted if no one but its owner can change it. A ring must not be writable by group or
// other (anyone who can write it can admit a key of any role). Returns the descriptor, or -1
// with the reason logged as event.
static int s_open_checked(const char *path, int secret, const char *event) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        log_error(event, "path", path, "reason", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", (unsigned)(st.st_mode & 07777));
    const char *refused = NULL;
    if (!S_ISREG(st.st_mode))
        refused = "not a regular file";
    else if (secret && st.st_uid == geteuid() && (st.st_mode & 077))
        refused = "a secret key file must be readable by its owner only (chmod 600 it)";
    else if (secret && (st.st_mode & 022))
        refused = "a secret key file must not be writable by group or other";
    else if (!secret && (st.st_mode & 022))
        refused = "the key ring must not be writable by group or other (chmod 644 it)";
    if (refused) {
        log_error(event, "path", path, "mode", mode, "reason", refused);
        close(fd);
        return -1;
    }
    return fd;
}

int keys_load(const char *path, keypair_t *kp) {
    int fd = s_open_checked(path, 1, "keys_load_failed");
    if (fd < 0)
        return -1;
    json_error_t err;
    json_t *doc = json_loadfd(fd, 0, &err);
    close(fd);
    int rc = -1;
    if (doc && s_copy_key(json_object_get(doc, "public"), kp->public_key) == 0 &&
        s_copy_key(json_object_get(doc, "secret"), kp->secret_key) == 0)
        rc = 0;
    if (rc != 0)
        log_error("keys_load_failed", "path", path, "reason",
                  doc ? "missing or bad key" : err.text);
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

bool identity_is(const identity_t *id, const char *role) {
    return strcmp(id->role, role) == 0;
}

keyring_t *keyring_load(const char *path) {
    int fd = s_open_checked(path, 0, "keyring_invalid");
    if (fd < 0)
        return NULL;
    json_error_t err;
    json_t *doc = json_loadfd(fd, 0, &err);
    close(fd);
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
    // The newest entry wins: a rotation appends the new key (keyring_file_add), and the old one
    // stays admitted until it is revoked, so peers must connect with the new one at once.
    json_t *found = NULL;
    size_t i;
    json_t *entry;
    json_array_foreach(self->keys, i, entry) {
        const char *r = json_string_value(json_object_get(entry, "role"));
        const char *o = json_string_value(json_object_get(entry, "org"));
        if (r && o && strcmp(r, role) == 0 && strcmp(o, org) == 0)
            found = entry;
    }
    return found ? s_copy_key(json_object_get(found, "public"), out) : -1;
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
        if ((key && strcmp(key, key_or_name) == 0) ||
            (name && *name && strcmp(name, key_or_name) == 0)) {
            json_array_remove(keys, i);
            removed++;
        }
    }
    int rc = s_write_json(path, doc, 0644);
    json_decref(doc);
    return rc == 0 ? removed : -1;
}
