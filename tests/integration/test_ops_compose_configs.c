// The example two-force configuration in deploy/compose/<service>.json runs: each service is
// started from its Compose config file with only what Docker would provide overridden through
// CARA_* environment variables (addresses, database, secret and key file paths). Then the
// containers' own health check command passes, `cara status` reports all five healthy, and a
// Dyfed-Powys referral travels intake -> triage -> booking and national.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cara/timeutil.h"
#include "harness.h"

static harness_t *h;
static const char *const s_services[] = {"intake", "triage", "booking", "billing", "national"};
static pid_t s_pids[5];
static char s_out[65536];

static const char *s_bin_dir(void) {
    const char *dir = getenv("CARA_BIN_DIR");
    return dir ? dir : "bin";
}

// Sets what Docker provides for one service, as environment overrides of its config file.
static void s_docker_env(const char *svc) {
    char name[128], path[400];
    setenv("CARA_DB_CONNINFO", harness_conninfo(h, svc), 1);
    snprintf(path, sizeof path, "%s/db_password", harness_dir(h));
    setenv("CARA_DB_PASSWORD_FILE", path, 1);
    setenv("CARA_BIND_ROUTER", harness_endpoint(h, svc), 1);
    setenv("CARA_BIND_PUB", harness_pub_endpoint(h, svc), 1);
    snprintf(path, sizeof path, "%s/keys/%s.key", harness_dir(h), svc);
    setenv("CARA_KEYS_SECRET_FILE", path, 1);
    setenv("CARA_KEYS_KEYRING", harness_keyring_path(h), 1);
    snprintf(path, sizeof path, "%s/pseudonym_secret", harness_dir(h));
    setenv("CARA_PSEUDONYM_SECRET_FILE", path, 1);
    for (int i = 0; i < 5; i++) {
        char upper[16];
        for (size_t k = 0; k <= strlen(s_services[i]); k++)
            upper[k] = (char)(s_services[i][k] >= 'a' ? s_services[i][k] - 32 : s_services[i][k]);
        snprintf(name, sizeof name, "CARA_UPSTREAMS_%s_ROUTER", upper);
        setenv(name, harness_endpoint(h, s_services[i]), 1);
        snprintf(name, sizeof name, "CARA_UPSTREAMS_%s_PUB", upper);
        setenv(name, harness_pub_endpoint(h, s_services[i]), 1);
        snprintf(name, sizeof name, "CARA_SERVICES_%s_ROUTER", upper);
        setenv(name, harness_endpoint(h, s_services[i]), 1);
    }
}

// Writes text to harness_dir/name.
static void s_write(const char *name, const char *text) {
    char path[400];
    snprintf(path, sizeof path, "%s/%s", harness_dir(h), name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

// Runs argv with the service's Docker environment (svc NULL: none), stdout into s_out.
// Returns the exit code.
static int s_run(const char *svc, const char *const *argv) {
    char out_path[400];
    snprintf(out_path, sizeof out_path, "%s/run.stdout", harness_dir(h));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || dup2(fd, 1) < 0)
            _exit(126);
        if (svc)
            s_docker_env(svc);
        unsetenv("CARA_CLIENT_CONFIG");
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    FILE *f = fopen(out_path, "r");
    assert_non_null(f);
    size_t len = fread(s_out, 1, sizeof s_out - 1, f);
    s_out[len] = '\0';
    fclose(f);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

// The container health check of docker-compose.yml: cara --config <svc>.json health <svc>.
static int s_healthcheck(const char *svc) {
    char bin[300], config[300];
    snprintf(bin, sizeof bin, "%s/cara", s_bin_dir());
    snprintf(config, sizeof config, "deploy/compose/%s.json", svc);
    const char *argv[] = {bin, "--config", config, "health", svc, "--timeout", "2000", NULL};
    return s_run(svc, argv);
}

static int setup(void **state) {
    (void)state;
    h = harness_new("ops_compose");
    if (!h)
        return -1;
    s_write("db_password", "not-used-with-trust-auth\n");
    s_write("pseudonym_secret", "compose-example-test-secret-0123456789\n");
    for (int i = 0; i < 5; i++) {
        char bin[300], config[300], log_path[400];
        snprintf(bin, sizeof bin, "%s/cara-%s", s_bin_dir(), s_services[i]);
        snprintf(config, sizeof config, "deploy/compose/%s.json", s_services[i]);
        snprintf(log_path, sizeof log_path, "%s/%s-compose.log", harness_dir(h), s_services[i]);
        s_pids[i] = fork();
        if (s_pids[i] < 0)
            return -1;
        if (s_pids[i] == 0) {
            int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
                close(fd);
            }
            s_docker_env(s_services[i]);
            execl(bin, bin, "--config", config, (char *)NULL);
            _exit(127);
        }
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    for (int i = 0; i < 5; i++)
        if (s_pids[i] > 0)
            kill(s_pids[i], SIGTERM);
    int ok = 1;
    for (int i = 0; i < 5; i++) {
        int status = 0;
        if (s_pids[i] > 0 && (waitpid(s_pids[i], &status, 0) != s_pids[i] || !WIFEXITED(status) ||
                              WEXITSTATUS(status) != 0)) {
            fprintf(stderr, "%s did not stop cleanly on SIGTERM (see %s/%s-compose.log)\n",
                    s_services[i], harness_dir(h), s_services[i]);
            ok = 0;
        }
    }
    harness_destroy(&h);
    return ok ? 0 : -1;
}

static void test_example_configs_run(void **state) {
    (void)state;
    // Every container's health check passes within 30 s of start.
    int64_t deadline = time_mono_ms() + 30000;
    for (int i = 0; i < 5; i++) {
        while (s_healthcheck(s_services[i]) != 0) {
            if (time_mono_ms() > deadline)
                fail_msg("%s not healthy from deploy/compose/%s.json (see %s/%s-compose.log)",
                         s_services[i], s_services[i], harness_dir(h), s_services[i]);
            usleep(200000);
        }
        json_t *health = json_loads(s_out, 0, NULL);
        assert_non_null(health);
        char who[64];
        snprintf(who, sizeof who, "service:%s", s_services[i]);  // the service's own key
        assert_string_equal(json_string_value(json_object_get(health, "identity")), who);
        json_decref(health);
    }

    // An operator's `cara status` over all five.
    const keypair_t *op = harness_identity_keys(h, "operator", "ops");
    char key_file[400], config[400], bin[300];
    snprintf(key_file, sizeof key_file, "%s/operator.key", harness_dir(h));
    assert_int_equal(keys_save(op, key_file), 0);
    json_t *services = json_object();
    for (int i = 0; i < 5; i++)
        json_object_set_new(services, s_services[i],
                            json_pack("{s:s}", "router", harness_endpoint(h, s_services[i])));
    json_t *doc = json_pack("{s:{s:s, s:s}, s:o}", "keys", "secret_file", key_file, "keyring",
                            harness_keyring_path(h), "services", services);
    snprintf(config, sizeof config, "%s/operator.json", harness_dir(h));
    assert_int_equal(json_dump_file(doc, config, 0), 0);
    json_decref(doc);
    snprintf(bin, sizeof bin, "%s/cara", s_bin_dir());
    const char *status_argv[] = {bin, "--config", config, "status", NULL};
    assert_int_equal(s_run(NULL, status_argv), 0);
    assert_non_null(strstr(s_out, "all healthy"));

    // A Dyfed-Powys referral (a force of the example) flows through the example's routing.
    const keypair_t *police = harness_identity_keys(h, "police", "dyfed-powys");
    snprintf(key_file, sizeof key_file, "%s/police.key", harness_dir(h));
    assert_int_equal(keys_save(police, key_file), 0);
    doc = json_pack("{s:{s:s, s:s}, s:{s:{s:s}}}", "keys", "secret_file", key_file, "keyring",
                    harness_keyring_path(h), "services", "intake", "router",
                    harness_endpoint(h, "intake"));
    char police_config[400];
    snprintf(police_config, sizeof police_config, "%s/police.json", harness_dir(h));
    assert_int_equal(json_dump_file(doc, police_config, 0), 0);
    json_decref(doc);
    const char *submit_argv[] = {bin, "--config", police_config, "referral", "submit",
                                 "examples/referral.json", NULL};
    assert_int_equal(s_run(NULL, submit_argv), 0);
    assert_int_equal(harness_wait_value(h, "triage",
                                        "SELECT seq >= 1 FROM cursor WHERE stream = 'intake'", "t",
                                        15000),
                     0);
    assert_int_equal(harness_wait_value(h, "booking",
                                        "SELECT seq >= 1 FROM cursor WHERE stream = 'triage'", "t",
                                        15000),
                     0);
    assert_int_equal(harness_wait_value(h, "national",
                                        "SELECT seq >= 1 FROM cursor WHERE stream = 'intake'", "t",
                                        15000),
                     0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(
            harness_wait_value(h, s_services[i], "SELECT count(*) FROM dead_letter", "0", 1000), 0);
    assert_int_equal(s_run(NULL, status_argv), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_configs_run),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
