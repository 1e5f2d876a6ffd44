// CURVE key pairs and the deployment's key ring. Keys are Z85 text (40 characters).
// A key file is JSON {"public": "...", "secret": "..."} (mode 0600); the key ring is JSON
// {"keys": [{"public": "...", "role": "police", "org": "dyfed-powys", "name": "..."}]}.
#ifndef CARA_KEYS_H
#define CARA_KEYS_H
#include <stdbool.h>
#include <stddef.h>

#define KEY_Z85_LEN 41

typedef struct {
    char public_key[KEY_Z85_LEN];
    char secret_key[KEY_Z85_LEN];
} keypair_t;

// Who a key belongs to. The ZAP handler turns it into the User-Id "role:org".
typedef struct {
    char role[32];  // police, triage, provider, commissioner, finance, hampton_trust, operator, service
    char org[64];   // force code, provider id, service name, ...
} identity_t;

typedef struct keyring_t keyring_t;

// Generates a new CURVE key pair. Returns 0 or -1.
int keys_generate(keypair_t *kp);
// Writes a key pair file with mode 0600 whatever the umask, atomically (a fresh O_EXCL temp
// file, fsync, rename). Returns 0, or -1 with the reason logged.
int keys_save(const keypair_t *kp, const char *path);
// Reads a key pair file. Refuses a file this user owns that group or other may read (it must be
// 0600 or 0400), and any that group or other may write; a file owned by another user (a
// container secret mounted from the host) may be readable by others, as it must be for this
// process to read it. Returns 0, or -1 with the reason (file, mode) logged.
int keys_load(const char *path, keypair_t *kp);

// Parses "role:org". Returns 0 or -1 if malformed.
int identity_parse(const char *user_id, identity_t *out);
// Writes "role:org" into buf. Returns buf.
char *identity_format(const identity_t *id, char *buf, size_t size);
bool identity_is(const identity_t *id, const char *role);

// Loads the key ring. Refuses a ring group or other may write. Returns NULL with the reason
// logged.
keyring_t *keyring_load(const char *path);
void keyring_destroy(keyring_t **self_p);
// Looks up a public key. Returns 0 and fills who, or -1 if the key is not in the ring.
int keyring_find(keyring_t *self, const char *public_key, identity_t *who);
// Finds the public key of an identity (e.g. service:triage, to connect to it): of several
// entries for it (a rotation in progress), the newest, i.e. the last in the ring. Returns 0 or -1.
int keyring_key_of(keyring_t *self, const char *role, const char *org, char out[KEY_Z85_LEN]);
// Adds (or replaces) an entry at the end of the key ring file, atomically (as keys_save),
// mode 0644 whatever the umask (the services read it as another user). Returns 0/-1.
int keyring_file_add(const char *path, const char *public_key, const char *role, const char *org,
                     const char *name);
// Removes entries matching a public key or a name. Returns the number removed, or -1.
int keyring_file_remove(const char *path, const char *key_or_name);

#endif
