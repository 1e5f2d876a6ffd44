// `cara keys`: the key tool run as operators run it (bin/cara as a child process), checked
// against the key files and the key ring it writes.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cara/keys.h"
#include "harness.h"

static char s_dir[64];
static char s_ring[128];
static char s_out[16384]; // the last command's stdout

// The key ring's entries as parsed JSON (caller decrefs the ring document).
static json_t *s_ring_doc(void) {
    json_t *doc = json_load_file(s_ring, 0, NULL);
    assert_non_null(doc);
    assert_true(json_is_array(json_object_get(doc, "keys")));
    return doc;
}

static int s_setup(void **state) {
    (void)state;
    snprintf(s_dir, sizeof s_dir, "/tmp/cara-cli-keys-XXXXXX");
    if (!mkdtemp(s_dir))
        return -1;
    snprintf(s_ring, sizeof s_ring, "%s/keyring.json", s_dir);
    return access("bin/cara", X_OK) == 0 ? 0 : -1;
}

static int s_teardown(void **state) {
    (void)state;
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_new_writes_key_and_ring(void **state) {
    (void)state;
    char key[160];
    snprintf(key, sizeof key, "%s/police-dp.key", s_dir);
    assert_int_equal(harness_cara(NULL, s_out, sizeof s_out, "keys", "new", "--role", "police",
                                  "--org", "dyfed-powys", "--out", key, "--keyring", s_ring,
                                  "--name", "dp-2024", NULL),
                     0);
    keypair_t kp;
    assert_int_equal(keys_load(key, &kp), 0);
    struct stat st;
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600); // a secret key is readable by its owner only

    keyring_t *ring = keyring_load(s_ring);
    assert_non_null(ring);
    identity_t who;
    assert_int_equal(keyring_find(ring, kp.public_key, &who), 0);
    assert_string_equal(who.role, "police");
    assert_string_equal(who.org, "dyfed-powys");
    keyring_destroy(&ring);

    json_t *printed = json_loads(s_out, 0, NULL);
    assert_non_null(printed);
    assert_string_equal(json_string_value(json_object_get(printed, "public")), kp.public_key);
    assert_string_equal(json_string_value(json_object_get(printed, "name")), "dp-2024");
    json_decref(printed);

    // The same file again is refused unless --force.
    assert_int_equal(harness_cara(NULL, s_out, sizeof s_out, "keys", "new", "--role", "police",
                                  "--org", "dyfed-powys", "--out", key, "--keyring", s_ring, NULL),
                     2);
    keypair_t again;
    assert_int_equal(keys_load(key, &again), 0);
    assert_string_equal(again.public_key, kp.public_key);
}

static void test_rotation_and_revoke(void **state) {
    (void)state;
    char old_key[160], new_key[160];
    snprintf(old_key, sizeof old_key, "%s/provider-old.key", s_dir);
    snprintf(new_key, sizeof new_key, "%s/provider-new.key", s_dir);
    assert_int_equal(harness_cara(NULL, s_out, sizeof s_out, "keys", "new", "--role", "provider",
                                  "--org", "p-001", "--out", old_key, "--keyring", s_ring, NULL),
                     0);
    assert_int_equal(harness_cara(NULL, s_out, sizeof s_out, "keys", "new", "--role", "provider",
                                  "--org", "p-001", "--out", new_key, "--keyring", s_ring, NULL),
                     0);
    keypair_t old_kp, new_kp;
    assert_int_equal(keys_load(old_key, &old_kp), 0);
    assert_int_equal(keys_load(new_key, &new_kp), 0);
    assert_string_not_equal(old_kp.public_key, new_kp.public_key);

    // Both keys of the identity are in the ring during a rotation.
    keyring_t *ring = keyring_load(s_ring);
    identity_t who;
    assert_int_equal(keyring_find(ring, old_kp.public_key, &who), 0);
    assert_int_equal(keyring_find(ring, new_kp.public_key, &who), 0);
    keyring_destroy(&ring);

    // Revoke the old one by its public key: the new one stays.
    assert_int_equal(harness_cara(NULL, s_out, sizeof s_out, "keys", "revoke", old_kp.public_key,
                                  "--keyring", s_ring, NULL),
                     0);
    ring = keyring_load(s_ring);
    assert_int_equal(keyring_find(ring, old_kp.public_key, &who), -1);
    assert_int_equal(keyring_find(ring, new_kp.public_key, &who), 0);
    keyring_destroy(&ring);

    // A public key may begin with '-' (Z85): it is still the key, not an option, wherever
    // --keyring is given.
    char dash_key[160];
    snprintf(dash_key, sizeof dash_key, "%s/provider-dash.key", s_dir);
    assert_int_equal(harness_cara(NULL, s_out, sizeof s_out, "keys", "new", "--role", "provider",
                                  "--org", "p-002", "--out", dash_key, "--keyring", s_ring,
                                  "--name", "-dash-first", NULL),
                     0);
    assert_int_equal(harness_cara(NULL, s_out, sizeof s_out, "keys", "revoke", "--keyring", s_ring,
                                  "-dash-first", NULL),
                     0);
    keypair_t dash_kp;
    assert_int_equal(keys_load(dash_key, &dash_kp), 0);
    ring = keyring_load(s_ring);
    assert_int_equal(keyring_find(ring, dash_kp.public_key, &who), -1);
    keyring_destroy(&ring);
    assert_int_equal(
        harness_cara(NULL, s_out, sizeof s_out, "keys", "revoke", "--keyring", s_ring, NULL), 2);

    // Revoking something that is not there fails and changes nothing.
    json_t *before = s_ring_doc();
    assert_int_equal(harness_cara(NULL, s_out, sizeof s_out, "keys", "revoke", "no-such-key",
                                  "--keyring", s_ring, NULL),
                     1);
    json_t *after = s_ring_doc();
    assert_true(json_equal(before, after));
    json_decref(before);
    json_decref(after);

    // Revoke by name.
    assert_int_equal(
        harness_cara(NULL, s_out, sizeof s_out, "keys", "list", "--keyring", s_ring, NULL), 0);
    json_t *list = json_loads(s_out, 0, NULL);
    assert_true(json_is_array(list));
    const char *name = NULL;
    size_t i;
    json_t *entry;
    json_array_foreach(list, i, entry) {
        if (strcmp(json_string_value(json_object_get(entry, "public")), new_kp.public_key) == 0)
            name = json_string_value(json_object_get(entry, "name"));
    }
    assert_non_null(name);
    assert_true(strncmp(name, "provider-p-001-", 15) == 0);
    assert_int_equal(
        harness_cara(NULL, s_out, sizeof s_out, "keys", "revoke", name, "--keyring", s_ring, NULL),
        0);
    json_decref(list);
    ring = keyring_load(s_ring);
    assert_int_equal(keyring_find(ring, new_kp.public_key, &who), -1);
    keyring_destroy(&ring);
}

static void test_bad_input_refused(void **state) {
    (void)state;
    char key[160];
    snprintf(key, sizeof key, "%s/bad.key", s_dir);
    assert_int_equal(harness_cara(NULL, s_out, sizeof s_out, "keys", "new", "--role", "admin",
                                  "--org", "x", "--out", key, "--keyring", s_ring, NULL),
                     2);
    json_t *err = json_loads(s_out, 0, NULL);
    assert_non_null(err);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(err, "errors"), 0), "field")),
                        "role");
    json_decref(err);
    assert_int_equal(harness_cara(NULL, s_out, sizeof s_out, "keys", "new", "--role", "police",
                                  "--org", "bad:org", "--out", key, "--keyring", s_ring, NULL),
                     2);
    assert_int_equal(harness_cara(NULL, s_out, sizeof s_out, "keys", "new", "--role", "police",
                                  "--org", "gwent", "--keyring", s_ring, NULL),
                     2);
    assert_int_equal(access(key, F_OK), -1);

    // A damaged key ring is never replaced by a fresh one.
    char damaged[160];
    snprintf(damaged, sizeof damaged, "%s/damaged.json", s_dir);
    FILE *f = fopen(damaged, "w");
    assert_non_null(f);
    fputs("{\"keys\": [", f);
    fclose(f);
    assert_int_equal(harness_cara(NULL, s_out, sizeof s_out, "keys", "new", "--role", "police",
                                  "--org", "gwent", "--out", key, "--keyring", damaged, NULL),
                     1);
    assert_int_equal(access(key, F_OK), -1);
    char text[64] = "";
    f = fopen(damaged, "r");
    assert_non_null(f);
    assert_non_null(fgets(text, sizeof text, f));
    fclose(f);
    assert_string_equal(text, "{\"keys\": [");

    assert_int_equal(harness_cara(NULL, s_out, sizeof s_out, "nonsense", NULL), 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_writes_key_and_ring),
        cmocka_unit_test(test_rotation_and_revoke),
        cmocka_unit_test(test_bad_input_refused),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
