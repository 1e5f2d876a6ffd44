// The deployment files: docker-compose.yml is valid for `docker-compose config` (Debian's
// docker-compose; there is no Docker engine on CI), publishes only the partner-facing ports,
// and the Dockerfile is multi-stage, runs as a non-root user and keeps -dev packages out of
// the final stage.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

static char *s_read(const char *path) {
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_compose_config_is_valid(void **state) {
    (void)state;
    if (access("/usr/bin/docker-compose", X_OK) != 0) {
        printf("# docker-compose not installed here (CI installs it): skipping\n");
        skip();
    }
    int rc = system("docker-compose -f docker-compose.yml config -q");
    assert_true(WIFEXITED(rc));
    assert_int_equal(WEXITSTATUS(rc), 0);
}

static void test_compose_publishes_only_partner_ports(void **state) {
    (void)state;
    const char *yml = s_read("docker-compose.yml");
    // PostgreSQL is never published; each service has a health check and a restart policy.
    const char *pg = strstr(yml, "  postgres:");
    const char *next = strstr(yml, "  intake:");
    assert_non_null(pg);
    assert_non_null(next);
    assert_null(memmem(pg, (size_t)(next - pg), "ports:", 6));
    assert_non_null(strstr(yml, "condition: service_healthy"));
    assert_non_null(strstr(yml, "restart: unless-stopped"));
    int healthchecks = 0;
    for (const char *p = yml; (p = strstr(p, "healthcheck:")); p++)
        healthchecks++;
    assert_int_equal(healthchecks, 6);
}

static void test_dockerfile_structure(void **state) {
    (void)state;
    const char *df = s_read("deploy/Dockerfile");
    int froms = 0;
    const char *last_from = NULL;
    for (const char *line = df; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, "FROM ", 5) == 0) {
            froms++;
            last_from = line;
        }
    }
    assert_non_null(last_from);
    assert_true(froms >= 2);  // multi-stage
    const char *final = last_from;
    assert_null(strstr(final, "-dev"));       // only runtime libraries in the final stage
    const char *user = strstr(final, "\nUSER ");
    assert_non_null(user);
    assert_true(strncmp(user, "\nUSER root", 10) != 0);  // non-root
    assert_non_null(strstr(final, "COPY --from=build"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compose_config_is_valid),
        cmocka_unit_test(test_compose_publishes_only_partner_ports),
        cmocka_unit_test(test_dockerfile_structure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
