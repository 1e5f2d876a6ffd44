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
#include <jansson.h>

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
    for (const char *line = df; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, "FROM ", 5) == 0) {
            froms++;
            last_from = line;
        }
    }
    assert_non_null(last_from);
    assert_true(froms >= 2); // multi-stage
    const char *final = last_from;
    assert_null(strstr(final, "-dev")); // only runtime libraries in the final stage
    const char *user = strstr(final, "\nUSER ");
    assert_non_null(user);
    assert_true(strncmp(user, "\nUSER root", 10) != 0); // non-root
    assert_non_null(strstr(final, "COPY --from=build"));
}

static void test_compose_database_init(void **state) {
    (void)state;
    const char *yml = s_read("docker-compose.yml");
    // deploy/init.sql needs `psql -v db=...`, which the postgres image's initdb.d does not pass:
    // it runs through deploy/compose/init-db.sh, which also sets the roles' passwords.
    assert_null(strstr(yml, "init.sql:/docker-entrypoint-initdb.d"));
    assert_non_null(strstr(yml, "./deploy/compose/init-db.sh:/docker-entrypoint-initdb.d/"));
    assert_int_equal(access("deploy/compose/init-db.sh", X_OK), 0);
    const char *sh = s_read("deploy/compose/init-db.sh");
    assert_non_null(strstr(sh, "-v db="));
    // psql interpolates :'pw' only in script input, never in -c.
    assert_null(strstr(sh, "-c \"ALTER ROLE"));
}

static void test_compose_service_configs(void **state) {
    (void)state;
    static const char *const svcs[] = {"intake", "triage", "booking", "billing", "national"};
    // Each service's upstreams, as in docs/ARCHITECTURE.md (triage reads booking's safety
    // concerns) and tests/support/harness.c; every one at the producer's compose address.
    static const char *const ups[5][4] = {{"triage", "booking", NULL},
                                          {"intake", "booking", NULL},
                                          {"triage", NULL},
                                          {"booking", NULL},
                                          {"intake", "triage", "booking", NULL}};
    static const char *const ports[] = {"7101", "7111", "7121", "7131", "7141"};
    const char *yml = s_read("docker-compose.yml");
    for (int i = 0; i < 5; i++) {
        char path[128], expect[256];
        snprintf(path, sizeof path, "deploy/compose/%s.json", svcs[i]);
        json_error_t err;
        json_t *doc = json_load_file(path, 0, &err);
        if (!doc)
            fail_msg("%s: %s (line %d)", path, err.text, err.line);
        // Its own role and secrets; the health check's client finds its own router.
        snprintf(expect, sizeof expect, "user=cara_%s", svcs[i]);
        assert_non_null(strstr(
            json_string_value(json_object_get(json_object_get(doc, "db"), "conninfo")), expect));
        snprintf(expect, sizeof expect, "/run/secrets/key_%s", svcs[i]);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(doc, "keys"), "secret_file")),
            expect);
        json_t *upstreams = json_object_get(doc, "upstreams");
        size_t n_ups = 0;
        for (; ups[i][n_ups]; n_ups++) {
            int k = 0;
            while (strcmp(svcs[k], ups[i][n_ups]) != 0)
                k++;
            snprintf(expect, sizeof expect, "tcp://%s:%s", svcs[k], ports[k]);
            const char *router = json_string_value(
                json_object_get(json_object_get(upstreams, ups[i][n_ups]), "router"));
            if (!router || strcmp(router, expect) != 0)
                fail_msg("%s: upstreams.%s.router is %s, want %s", path, ups[i][n_ups],
                         router ? router : "missing", expect);
        }
        assert_int_equal(json_object_size(upstreams), n_ups);
        json_t *own = json_object_get(json_object_get(doc, "services"), svcs[i]);
        assert_non_null(json_string_value(json_object_get(own, "router")));
        snprintf(expect, sizeof expect, "secrets: [db_%s, key_%s", svcs[i], svcs[i]);
        assert_non_null(strstr(yml, expect));
        snprintf(expect, sizeof expect, "\"health\", \"%s\"", svcs[i]);
        assert_non_null(strstr(yml, expect));
        json_decref(doc);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compose_config_is_valid),
        cmocka_unit_test(test_compose_publishes_only_partner_ports),
        cmocka_unit_test(test_dockerfile_structure),
        cmocka_unit_test(test_compose_database_init),
        cmocka_unit_test(test_compose_service_configs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
