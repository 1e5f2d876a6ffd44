// Key files and the key ring on disk: a secret key is written 0600 and the ring 0644 whatever
// the operator's umask; a planted temp file or symlink is never written through; a secret key
// others may read, or a ring others may write, is refused with the file and its mode in the
// error; during a rotation the newest key of an identity is the one peers connect to.
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cara/keys.h"

typedef struct {
    char dir[64];
    char key[96];
    char ring[96];
    char log[96];
} s_files_t;

static int s_setup(void **state) {
    s_files_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/cara-keyfiles-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->key, sizeof f->key, "%s/svc.key", f->dir);
    snprintf(f->ring, sizeof f->ring, "%s/keyring.json", f->dir);
    snprintf(f->log, sizeof f->log, "%s/stderr.log", f->dir);
    *state = f;
    return 0;
}

static int s_teardown(void **state) {
    s_files_t *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

static mode_t s_mode(const char *path) {
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    return st.st_mode & 07777;
}

// Runs keys_load (or keyring_load when kp is NULL) with stderr sent to f->log; returns its
// result and leaves what it logged in out.
static int s_load_logged(s_files_t *f, const char *path, keypair_t *kp, char *out, size_t size) {
    fflush(stderr);
    int saved = dup(2);
    int fd = open(f->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    assert_int_equal(dup2(fd, 2), 2);
    close(fd);
    int rc;
    if (kp) {
        rc = keys_load(path, kp);
    } else {
        keyring_t *ring = keyring_load(path);
        rc = ring ? 0 : -1;
        keyring_destroy(&ring);
    }
    fflush(stderr);
    assert_int_equal(dup2(saved, 2), 2);
    close(saved);
    FILE *in = fopen(f->log, "r");
    assert_non_null(in);
    size_t n = fread(out, 1, size - 1, in);
    out[n] = '\0';
    fclose(in);
    return rc;
}

static void test_modes_do_not_depend_on_the_umask(void **state) {
    s_files_t *f = *state;
    keypair_t kp;
    assert_int_equal(keys_generate(&kp), 0);
    mode_t umasks[] = {022, 027, 077, 0};
    for (size_t i = 0; i < sizeof umasks / sizeof umasks[0]; i++) {
        mode_t old = umask(umasks[i]);
        assert_int_equal(keys_save(&kp, f->key), 0);
        assert_int_equal(keyring_file_add(f->ring, kp.public_key, "police", "gwent", "gw"), 0);
        umask(old);
        assert_int_equal(s_mode(f->key), 0600);  // the secret: its owner only
        assert_int_equal(s_mode(f->ring), 0644); // the ring: read by services as another user
        assert_int_equal(keyring_file_remove(f->ring, "gw"), 1);
        assert_int_equal(s_mode(f->ring), 0644);
    }
    // Nothing left behind but the two files.
    char cmd[160], out[16];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", f->dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(out, sizeof out, p));
    pclose(p);
    assert_int_equal(atoi(out), 2);
}

static void test_planted_temp_file_or_symlink_is_not_written_through(void **state) {
    s_files_t *f = *state;
    char victim[128], planted[160];
    snprintf(victim, sizeof victim, "%s/victim", f->dir);
    int fd = open(victim, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "untouched\n", 10), 10);
    close(fd);
    // The writer's old, predictable temp name, and the key path itself, as symlinks to the
    // victim: the secret key must go to neither the victim nor a file another user can read.
    snprintf(planted, sizeof planted, "%s.tmp.%d", f->key, (int)getpid());
    assert_int_equal(symlink(victim, planted), 0);
    keypair_t kp, back;
    assert_int_equal(keys_generate(&kp), 0);
    assert_int_equal(keys_save(&kp, f->key), 0);
    assert_int_equal(symlink(victim, f->ring), 0);
    assert_int_equal(keyring_file_add(f->ring, kp.public_key, "police", "gwent", NULL), 0);
    char text[32] = "";
    FILE *in = fopen(victim, "r");
    assert_non_null(in);
    assert_non_null(fgets(text, sizeof text, in));
    fclose(in);
    assert_string_equal(text, "untouched\n");
    assert_int_equal(s_mode(victim), 0644);
    // The key and the ring are now files of their own, with their own modes.
    struct stat st;
    assert_int_equal(lstat(f->ring, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(s_mode(f->key), 0600);
    assert_int_equal(keys_load(f->key, &back), 0);
    assert_string_equal(back.secret_key, kp.secret_key);
}

static void test_secret_key_readable_by_others_is_refused(void **state) {
    s_files_t *f = *state;
    keypair_t kp, back;
    char log[4096];
    assert_int_equal(keys_generate(&kp), 0);
    assert_int_equal(keys_save(&kp, f->key), 0);
    // A copy made with a loose umask, or a careless chmod: refused, naming the file and mode.
    mode_t loose[] = {0644, 0640, 0604, 0660};
    for (size_t i = 0; i < sizeof loose / sizeof loose[0]; i++) {
        assert_int_equal(chmod(f->key, loose[i]), 0);
        memset(&back, 0, sizeof back);
        assert_int_equal(s_load_logged(f, f->key, &back, log, sizeof log), -1);
        assert_non_null(strstr(log, "keys_load_failed"));
        assert_non_null(strstr(log, f->key));
        char mode[16];
        snprintf(mode, sizeof mode, "\"%04o\"", (unsigned)loose[i]);
        assert_non_null(strstr(log, mode));
        assert_non_null(strstr(log, "chmod 600"));
        assert_int_equal(back.secret_key[0], '\0'); // nothing read
    }
    // Owner only (read-write or read-only) is accepted.
    assert_int_equal(chmod(f->key, 0400), 0);
    assert_int_equal(keys_load(f->key, &back), 0);
    assert_int_equal(chmod(f->key, 0600), 0);
    assert_int_equal(keys_load(f->key, &back), 0);
    assert_string_equal(back.secret_key, kp.secret_key);
}

// The Compose case: a secret bind-mounted from the host is owned by the host user, and the
// service (another uid) reads it through its "other" bits. That is accepted as long as no one but
// its owner can change it. Needs root to give a file away; skipped otherwise.
static void test_secret_key_shared_by_its_owner_is_accepted_if_not_writable(void **state) {
    s_files_t *f = *state;
    if (geteuid() != 0) {
        printf("# not root: cannot give a key file to another user here, skipping\n");
        return;
    }
    keypair_t kp, back;
    char log[4096];
    assert_int_equal(keys_generate(&kp), 0);
    assert_int_equal(keys_save(&kp, f->key), 0);
    assert_int_equal(chown(f->key, 65534, 65534), 0);
    assert_int_equal(chmod(f->key, 0604), 0);
    assert_int_equal(keys_load(f->key, &back), 0);
    assert_string_equal(back.secret_key, kp.secret_key);
    assert_int_equal(chmod(f->key, 0606), 0);
    assert_int_equal(s_load_logged(f, f->key, &back, log, sizeof log), -1);
    assert_non_null(strstr(log, "\"0606\""));
    assert_non_null(strstr(log, "must not be writable by group or other"));
}

static void test_ring_writable_by_others_is_refused(void **state) {
    s_files_t *f = *state;
    keypair_t kp;
    char log[4096];
    assert_int_equal(keys_generate(&kp), 0);
    assert_int_equal(keyring_file_add(f->ring, kp.public_key, "operator", "ops", "op"), 0);
    mode_t loose[] = {0664, 0646, 0666};
    for (size_t i = 0; i < sizeof loose / sizeof loose[0]; i++) {
        assert_int_equal(chmod(f->ring, loose[i]), 0);
        assert_int_equal(s_load_logged(f, f->ring, NULL, log, sizeof log), -1);
        assert_non_null(strstr(log, "keyring_invalid"));
        assert_non_null(strstr(log, f->ring));
        char mode[16];
        snprintf(mode, sizeof mode, "\"%04o\"", (unsigned)loose[i]);
        assert_non_null(strstr(log, mode));
    }
    assert_int_equal(chmod(f->ring, 0644), 0);
    keyring_t *ring = keyring_load(f->ring);
    assert_non_null(ring);
    keyring_destroy(&ring);
}

// Rotating a service's key: `keys new` appends the second key for service:triage; from then on
// peers that look triage up (consumers at start, `cara` on every run) get the new key, and after
// the new key is revoked again they get the old one back.
static void test_newest_key_of_an_identity_wins(void **state) {
    s_files_t *f = *state;
    keypair_t old_kp, new_kp, other;
    assert_int_equal(keys_generate(&old_kp), 0);
    assert_int_equal(keys_generate(&new_kp), 0);
    assert_int_equal(keys_generate(&other), 0);
    assert_int_equal(keyring_file_add(f->ring, old_kp.public_key, "service", "triage", "triage"),
                     0);
    assert_int_equal(keyring_file_add(f->ring, other.public_key, "service", "booking", "booking"),
                     0);
    char key[KEY_Z85_LEN];
    keyring_t *ring = keyring_load(f->ring);
    assert_int_equal(keyring_key_of(ring, "service", "triage", key), 0);
    assert_string_equal(key, old_kp.public_key);
    keyring_destroy(&ring);
    assert_int_equal(keyring_file_add(f->ring, new_kp.public_key, "service", "triage", "triage-2"),
                     0);
    ring = keyring_load(f->ring);
    assert_int_equal(keyring_key_of(ring, "service", "triage", key), 0);
    assert_string_equal(key, new_kp.public_key);
    // Both stay admitted until the old one is revoked.
    identity_t who;
    assert_int_equal(keyring_find(ring, old_kp.public_key, &who), 0);
    assert_int_equal(keyring_find(ring, new_kp.public_key, &who), 0);
    assert_int_equal(keyring_key_of(ring, "service", "booking", key), 0);
    assert_string_equal(key, other.public_key);
    assert_int_equal(keyring_key_of(ring, "service", "national", key), -1);
    keyring_destroy(&ring);
    assert_int_equal(keyring_file_remove(f->ring, "triage"), 1);
    ring = keyring_load(f->ring);
    assert_int_equal(keyring_key_of(ring, "service", "triage", key), 0);
    assert_string_equal(key, new_kp.public_key);
    assert_int_equal(keyring_find(ring, old_kp.public_key, &who), -1);
    keyring_destroy(&ring);
    // Backing out a rotation (revoking the new key) gives the old key back.
    assert_int_equal(keyring_file_add(f->ring, old_kp.public_key, "service", "triage", "triage"),
                     0);
    assert_int_equal(keyring_file_remove(f->ring, "triage-2"), 1);
    ring = keyring_load(f->ring);
    assert_int_equal(keyring_key_of(ring, "service", "triage", key), 0);
    assert_string_equal(key, old_kp.public_key);
    keyring_destroy(&ring);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_modes_do_not_depend_on_the_umask, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_planted_temp_file_or_symlink_is_not_written_through,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_secret_key_readable_by_others_is_refused, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(
            test_secret_key_shared_by_its_owner_is_accepted_if_not_writable, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_ring_writable_by_others_is_refused, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_newest_key_of_an_identity_wins, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
