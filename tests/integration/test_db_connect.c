// Connecting to PostgreSQL as an operator configures it: db.password goes with a key=value
// db.conninfo and with a postgresql:// URI alike (quotes and backslashes in it too), and a
// service starts with either; a connection that fails says why (libpq's reason: no such
// database, refused), and a conninfo that does not parse is refused at once without quoting
// it (it may hold a password).
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cara/db.h"
#include "harness.h"

// The parts of the harness's key=value conninfo for service, to build other forms from.
typedef struct {
    char host[256], port[16], user[64], dbname[64];
} s_parts_t;

static void s_parts(harness_t *h, const char *service, s_parts_t *out) {
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(harness_conninfo(h, service), &err);
    assert_non_null(opts);
    memset(out, 0, sizeof *out);
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val)
            continue;
        if (strcmp(o->keyword, "host") == 0)
            snprintf(out->host, sizeof out->host, "%s", o->val);
        else if (strcmp(o->keyword, "port") == 0)
            snprintf(out->port, sizeof out->port, "%s", o->val);
        else if (strcmp(o->keyword, "user") == 0)
            snprintf(out->user, sizeof out->user, "%s", o->val);
        else if (strcmp(o->keyword, "dbname") == 0)
            snprintf(out->dbname, sizeof out->dbname, "%s", o->val);
    }
    PQconninfoFree(opts);
    assert_true(out->host[0] && out->port[0] && out->user[0] && out->dbname[0]);
}

// Runs db_connect_password with stderr going to a file; returns the connection (or NULL) and
// leaves what was logged in log.
static db_t *s_connect_logged(harness_t *h, const char *conninfo, const char *password, char *log,
                              size_t size) {
    char path[512];
    snprintf(path, sizeof path, "%s/connect.log", harness_dir(h));
    fflush(stderr);
    int saved = dup(2);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    assert_int_equal(dup2(fd, 2), 2);
    close(fd);
    db_t *db = db_connect_password(conninfo, password, "intake", 300);
    fflush(stderr);
    assert_int_equal(dup2(saved, 2), 2);
    close(saved);
    FILE *in = fopen(path, "r");
    assert_non_null(in);
    size_t n = fread(log, 1, size - 1, in);
    log[n] = '\0';
    fclose(in);
    return db;
}

static void test_password_goes_with_uri_and_key_value_conninfo(void **state) {
    (void)state;
    harness_t *h = harness_new("db_connect_forms");
    assert_non_null(h);
    s_parts_t p;
    s_parts(h, "intake", &p);
    const char *password = "it's a \\ secret=with spaces";
    char uri[1024];
    // The host is a socket directory: given as a query parameter, as libpq's docs show.
    snprintf(uri, sizeof uri, "postgresql://%s@/%s?host=%s&port=%s", p.user, p.dbname, p.host,
             p.port);
    const char *forms[] = {harness_conninfo(h, "intake"), uri};
    for (int i = 0; i < 2; i++) {
        db_t *db = db_connect_password(forms[i], password, "intake", 5000);
        assert_non_null(db);
        // The password libpq used is the one given, byte for byte.
        assert_string_equal(PQpass(db_conn(db)), password);
        char out[64];
        assert_int_equal(db_scalar(db, "SELECT current_user", 0, NULL, out, sizeof out), 1);
        assert_string_equal(out, p.user);
        db_destroy(&db);
    }
    // The configured password wins over one written into the URI.
    snprintf(uri, sizeof uri, "postgresql://%s:inline@/%s?host=%s&port=%s", p.user, p.dbname,
             p.host, p.port);
    db_t *db = db_connect_password(uri, password, "intake", 5000);
    assert_non_null(db);
    assert_string_equal(PQpass(db_conn(db)), password);
    db_destroy(&db);

    // A service with a URI-form db.conninfo and db.password starts and reaches its database.
    snprintf(uri, sizeof uri, "\"postgresql://%s@/%s?host=%s&port=%s\"", p.user, p.dbname, p.host,
             p.port);
    harness_config(h, "intake", "db.conninfo", uri);
    harness_config(h, "intake", "db.password", "\"it's a \\\\ secret\"");
    assert_int_equal(harness_start(h, "intake"), 0);
    assert_int_equal(harness_log_has(h, "intake", "db_connect_failed"), 0);
    harness_destroy(&h);
}

static void test_connection_failure_says_why_without_the_password(void **state) {
    (void)state;
    harness_t *h = harness_new("db_connect_fail");
    assert_non_null(h);
    s_parts_t p;
    s_parts(h, "intake", &p);
    char conninfo[1024], log[8192];
    // No such database: libpq's reason, with the database's name, is in the error.
    snprintf(conninfo, sizeof conninfo, "host=%s port=%s user=%s dbname=no_such_db_here", p.host,
             p.port, p.user);
    assert_null(s_connect_logged(h, conninfo, "pw-not-to-be-logged", log, sizeof log));
    printf("# %s", log);
    assert_non_null(strstr(log, "db_connect_failed"));
    assert_non_null(strstr(log, "no_such_db_here"));
    assert_non_null(strstr(log, "does not exist"));
    assert_null(strstr(log, "pw-not-to-be-logged"));
    // Nothing listening: refused, named as such.
    snprintf(conninfo, sizeof conninfo, "postgresql://%s@127.0.0.1:1/%s", p.user, p.dbname);
    assert_null(s_connect_logged(h, conninfo, "pw-not-to-be-logged", log, sizeof log));
    printf("# %s", log);
    assert_non_null(strstr(log, "db_connect_failed"));
    assert_non_null(strstr(log, "refused"));
    assert_null(strstr(log, "pw-not-to-be-logged"));
    // A conninfo that does not parse, with a password written into it: refused, not quoted.
    assert_null(s_connect_logged(h, "host=x password=hunter2 port", NULL, log, sizeof log));
    assert_non_null(strstr(log, "db_connect_failed"));
    assert_non_null(strstr(log, "neither key=value pairs nor a postgresql:// URI"));
    assert_null(strstr(log, "hunter2"));
    // A URI whose password holds an unencoded '@' and '/': libpq reads "ss" as the host and
    // "w0rd@..." as the database, and would quote them; with a password in the conninfo its
    // message is not logged.
    snprintf(conninfo, sizeof conninfo, "postgresql://%s:p@ss/w0rd@127.0.0.1:1/%s", p.user,
             p.dbname);
    assert_null(s_connect_logged(h, conninfo, NULL, log, sizeof log));
    printf("# %s", log);
    assert_non_null(strstr(log, "db_connect_failed"));
    assert_non_null(strstr(log, "db.conninfo holds a password"));
    assert_null(strstr(log, "w0rd"));
    assert_null(strstr(log, "\"ss\""));
    harness_destroy(&h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_password_goes_with_uri_and_key_value_conninfo),
        cmocka_unit_test(test_connection_failure_says_why_without_the_password),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
