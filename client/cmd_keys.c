// `cara keys`: key pairs for partners and the deployment's key ring. Services re-read the
// ring when its file changes, so `keys new` and `keys revoke` take effect without a restart
// (for new connections: a CURVE session already established stays up until it reconnects).
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cara/keys.h"
#include "cli.h"

static const char *const s_roles[] = {"police",       "triage",  "provider",      "victim_contact",
                                      "commissioner", "finance", "hampton_trust", "operator",
                                      "service",      NULL};

// True for a known role.
static int s_role_ok(const char *role) {
    for (int i = 0; s_roles[i]; i++)
        if (strcmp(s_roles[i], role) == 0)
            return 1;
    return 0;
}

// True for an organisation code: 1-63 of [A-Za-z0-9._-].
static int s_org_ok(const char *org) {
    size_t len = strlen(org);
    if (len == 0 || len >= sizeof(((identity_t *)0)->org))
        return 0;
    for (const char *p = org; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
            return 0;
    return 1;
}

// Prints a validation error as JSON and returns CLI_INVALID.
static int s_invalid(const char *field, const char *reason) {
    cli_print_json(json_pack("{s:s, s:[{s:s, s:s}]}", "status", "INVALID", "errors", "field", field,
                             "reason", reason));
    return CLI_INVALID;
}

// The key ring path: --keyring, else keys.keyring of the client configuration. Caller frees.
static char *s_ring_path(cli_t *cli, int argc, char **argv) {
    const char *given = cli_opt(argc, argv, "--keyring", NULL);
    if (given)
        return strdup(given);
    config_t *config = cli_config(cli);
    const char *ring = config ? config_str(config, "keys.keyring", NULL) : NULL;
    return ring ? config_resolve(config, ring) : NULL;
}

// A key ring file that exists must parse: never replace a damaged ring with a new one.
static int s_ring_usable(const char *path) {
    if (access(path, F_OK) != 0)
        return 1;
    keyring_t *ring = keyring_load(path);
    int ok = ring != NULL;
    keyring_destroy(&ring);
    return ok;
}

static int s_keys_new(cli_t *cli, int argc, char **argv, const char *ring) {
    const char *role = cli_opt(argc, argv, "--role", NULL);
    const char *org = cli_opt(argc, argv, "--org", NULL);
    const char *out = cli_opt(argc, argv, "--out", NULL);
    const char *name = cli_opt(argc, argv, "--name", NULL);
    (void)cli;
    if (!role || !s_role_ok(role))
        return s_invalid("role",
                         "must be one of police, triage, provider, victim_contact, commissioner, "
                         "finance, hampton_trust, operator, service");
    if (!org || !s_org_ok(org))
        return s_invalid("org", "must be 1-63 characters of letters, digits, '.', '-', '_'");
    if (!out || !*out)
        return s_invalid("out", "the file to write the key pair to is required");
    if (access(out, F_OK) == 0 && !cli_flag(argc, argv, "--force"))
        return s_invalid("out", "file exists (use --force to replace it)");
    if (!s_ring_usable(ring)) {
        fprintf(stderr,
                "cara: the key ring %s is not valid JSON with a \"keys\" array; "
                "refusing to change it\n",
                ring);
        return CLI_FAIL;
    }
    keypair_t kp;
    char default_name[128];
    if (keys_generate(&kp) != 0) {
        fprintf(stderr, "cara: key generation failed (libzmq without CURVE?)\n");
        return CLI_FAIL;
    }
    if (!name) {
        // role-org-<first 8 characters of the key>: distinct for every key of an identity,
        // so an old key can be revoked by name after a rotation.
        snprintf(default_name, sizeof default_name, "%s-%s-%.8s", role, org, kp.public_key);
        name = default_name;
    }
    if (keys_save(&kp, out) != 0) {
        fprintf(stderr, "cara: cannot write %s\n", out);
        return CLI_FAIL;
    }
    if (keyring_file_add(ring, kp.public_key, role, org, name) != 0) {
        fprintf(stderr, "cara: cannot update the key ring %s\n", ring);
        unlink(out);
        return CLI_FAIL;
    }
    if (cli_print_json(json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "public", kp.public_key, "role",
                                 role, "org", org, "name", name, "key_file", out, "keyring",
                                 ring)) != 0) {
        // The key exists and the ring has it: say so where it can still be read.
        fprintf(stderr, "cara: the key pair was written to %s and added to %s as \"%s\"\n", out,
                ring, name);
        return CLI_FAIL;
    }
    return CLI_OK;
}

// The key to revoke: the one argument after "revoke" that is not --keyring or its value. A
// public key is Z85, whose alphabet has '-', so "starts with a dash" does not mean an option.
static const char *s_revoke_target(int argc, char **argv) {
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--keyring") == 0)
            i++;
        else
            return argv[i];
    }
    return NULL;
}

static int s_keys_revoke(int argc, char **argv, const char *ring) {
    const char *which = s_revoke_target(argc, argv);
    if (!which)
        return s_invalid("key", "give the public key or the name of the key to revoke");
    if (!s_ring_usable(ring)) {
        fprintf(stderr, "cara: the key ring %s is not valid; refusing to change it\n", ring);
        return CLI_FAIL;
    }
    int removed = keyring_file_remove(ring, which);
    if (removed < 0) {
        fprintf(stderr, "cara: cannot update the key ring %s\n", ring);
        return CLI_FAIL;
    }
    int printed = cli_print_json(
        json_pack("{s:s, s:i, s:s}", "revoked", which, "removed", removed, "keyring", ring));
    if (removed == 0) {
        fprintf(stderr, "cara: no key or name \"%s\" in %s\n", which, ring);
        return CLI_FAIL;
    }
    if (printed != 0) {
        fprintf(stderr, "cara: removed %d key(s) matching \"%s\" from %s\n", removed, which, ring);
        return CLI_FAIL;
    }
    return CLI_OK;
}

static int s_keys_list(const char *ring) {
    json_error_t err;
    json_t *doc = json_load_file(ring, 0, &err);
    json_t *keys = doc ? json_object_get(doc, "keys") : NULL;
    if (!json_is_array(keys)) {
        fprintf(stderr, "cara: cannot read the key ring %s: %s\n", ring,
                doc ? "no \"keys\" array" : err.text);
        json_decref(doc);
        return CLI_FAIL;
    }
    json_incref(keys);
    json_decref(doc);
    return cli_print_json(keys) == 0 ? CLI_OK : CLI_FAIL;
}

// cara keys new|revoke|list ...
int cmd_keys(cli_t *cli, int argc, char **argv) {
    const char *sub = argc > 1 ? argv[1] : "";
    char *ring = s_ring_path(cli, argc, argv);
    int rc = CLI_FAIL;
    if (!ring) {
        rc = s_invalid("keyring", "give --keyring FILE (or keys.keyring in the configuration)");
        goto cleanup;
    }
    if (strcmp(sub, "new") == 0)
        rc = s_keys_new(cli, argc, argv, ring);
    else if (strcmp(sub, "revoke") == 0)
        rc = s_keys_revoke(argc, argv, ring);
    else if (strcmp(sub, "list") == 0)
        rc = s_keys_list(ring);
    else
        fprintf(stderr, "usage: cara keys new|revoke|list ...\n");
cleanup:
    free(ring);
    return rc;
}
