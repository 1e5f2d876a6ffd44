// Key rotation without a restart: `cara keys new` admits a partner's new key to a running
// service, `cara keys revoke` shuts the old one out. The services re-read the key ring on each
// CURVE handshake, so only NEW connections see a change: a session that completed its
// handshake before the revocation stays up until it reconnects (docs/OPERATIONS.md). So every
// check after a ring change uses a fresh connection.
#include <fcntl.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static harness_t *h;
static char s_out[16384]; // the last cara command's stdout

// Asks intake for Health on a NEW connection with the key pair in key_file. Returns the identity
// the service saw (malloc'd), or NULL if it did not answer (refused by the ZAP handler).
static char *s_who_am_i(const char *key_file) {
    keypair_t kp;
    assert_int_equal(keys_load(key_file, &kp), 0);
    client_t *c = client_new(harness_ctx(h), harness_endpoint(h, "intake"), &kp,
                             harness_service_public(h, "intake"));
    assert_non_null(c);
    Cara__HealthRequest req = CARA__HEALTH_REQUEST__INIT;
    Cara__Reply *reply = client_call(c, &req.base, NULL, NULL, 1500, 1);
    char *identity = NULL;
    if (reply) {
        Cara__Health *health = cara__health__unpack(NULL, reply->payload.len, reply->payload.data);
        assert_non_null(health);
        identity = strdup(health->identity);
        cara__health__free_unpacked(health, NULL);
        cara__reply__free_unpacked(reply, NULL);
    }
    client_destroy(&c);
    return identity;
}

static int setup(void **state) {
    (void)state;
    h = harness_new("ops_keys");
    return h && harness_start(h, "intake") == 0 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    harness_destroy(&h);
    return 0;
}

static void test_rotation_without_restart(void **state) {
    (void)state;
    int pid = harness_pid(h, "intake");
    char old_key[400], new_key[400], old_cfg[400], new_cfg[400];
    snprintf(old_key, sizeof old_key, "%s/police-old.key", harness_dir(h));
    snprintf(new_key, sizeof new_key, "%s/police-new.key", harness_dir(h));

    // A key that is not in the ring yet is refused.
    keypair_t pending;
    assert_int_equal(keys_generate(&pending), 0);
    char pending_file[400];
    snprintf(pending_file, sizeof pending_file, "%s/pending.key", harness_dir(h));
    assert_int_equal(keys_save(&pending, pending_file), 0);
    assert_null(s_who_am_i(pending_file));

    // The partner's first key: admitted at once, with the identity from the ring.
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "keys", "new", "--role", "police",
                                  "--org", "dyfed-powys", "--out", old_key, "--keyring",
                                  harness_keyring_path(h), "--name", "dp-old", NULL),
                     0);
    char *who = s_who_am_i(old_key);
    assert_non_null(who);
    assert_string_equal(who, "police:dyfed-powys");
    free(who);
    assert_int_equal(
        harness_client_config_key(h, old_key, "intake", 1500, 0, old_cfg, sizeof old_cfg), 0);
    assert_int_equal(
        harness_cara(h, s_out, sizeof s_out, "--config", old_cfg, "health", "intake", NULL), 0);
    json_t *health = json_loads(s_out, 0, NULL);
    assert_non_null(health);
    assert_true(json_is_true(json_object_get(health, "db_ok")));
    assert_string_equal(json_string_value(json_object_get(health, "identity")),
                        "police:dyfed-powys");
    json_decref(health);

    // Rotation: the new key is added while the old one still works...
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "keys", "new", "--role", "police",
                                  "--org", "dyfed-powys", "--out", new_key, "--keyring",
                                  harness_keyring_path(h), "--name", "dp-new", NULL),
                     0);
    who = s_who_am_i(new_key);
    assert_non_null(who);
    assert_string_equal(who, "police:dyfed-powys");
    free(who);
    who = s_who_am_i(old_key);
    assert_non_null(who);
    free(who);

    // ...then the old key is revoked: new connections with it get nothing, the new key works.
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "keys", "revoke", "dp-old", "--keyring",
                                  harness_keyring_path(h), NULL),
                     0);
    assert_null(s_who_am_i(old_key));
    assert_int_equal(
        harness_cara(h, s_out, sizeof s_out, "--config", old_cfg, "health", "intake", NULL), 1);
    who = s_who_am_i(new_key);
    assert_non_null(who);
    assert_string_equal(who, "police:dyfed-powys");
    free(who);
    assert_int_equal(
        harness_client_config_key(h, new_key, "intake", 1500, 0, new_cfg, sizeof new_cfg), 0);
    assert_int_equal(
        harness_cara(h, s_out, sizeof s_out, "--config", new_cfg, "health", "intake", NULL), 0);

    // Revoking the last key of the identity shuts it out completely.
    assert_int_equal(harness_cara(h, s_out, sizeof s_out, "keys", "revoke", "dp-new", "--keyring",
                                  harness_keyring_path(h), NULL),
                     0);
    assert_null(s_who_am_i(new_key));

    // All of it without a restart.
    assert_int_equal(harness_pid(h, "intake"), pid);
    assert_int_equal(kill(pid, 0), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rotation_without_restart),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
