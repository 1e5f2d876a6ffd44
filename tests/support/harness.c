#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "cara/config.h"
#include "cara/keys.h"
#include "cara/timeutil.h"

#define H_SERVICES 5
#define H_MAX_CLIENTS 128
#define H_MAX_IDS 64

static const char *s_names[H_SERVICES] = {"intake", "triage", "booking", "billing", "national"};
// Who consumes whom (DESIGN.md §1).
static const char *s_upstreams[H_SERVICES][4] = {{"triage", "booking", NULL},
                                                 {"intake", "booking", NULL},
                                                 {"triage", NULL},
                                                 {"booking", NULL},
                                                 {"intake", "triage", "booking", NULL}};

typedef struct {
    char role[32], org[64];
    keypair_t keys;
} h_identity_t;

typedef struct {
    int service;
    h_identity_t *id;
    client_t *client;
} h_client_t;

struct harness_t {
    char dbname[64];
    char dir[256];
    char keyring[400];
    char super_conninfo[512];
    char conninfo[H_SERVICES][512];
    char router[H_SERVICES][64];
    char pub[H_SERVICES][64];
    keypair_t service_keys[H_SERVICES];
    json_t *extra[H_SERVICES];
    pid_t pid[H_SERVICES];
    void *ctx;
    h_identity_t ids[H_MAX_IDS];
    int n_ids;
    h_client_t clients[H_MAX_CLIENTS];
    int n_clients;
    db_t *dbs[H_SERVICES + 1];
    char db_schema[H_SERVICES + 1][32];
    long log_offset[H_SERVICES]; // where the running incarnation's log starts
    char *failures;              // reports of services that failed the check ("" if none)
    int n_failed;                // how many
};

static harness_t *s_current;
static int s_failed; // services that failed the check in any harness of this process

// LeakSanitizer's own check, when the test binary is built with it (weak: absent otherwise).
extern void __lsan_do_leak_check(void) __attribute__((weak));

// The markers of a sanitizer report in a process's output.
static const char *s_markers[] = {"ERROR: LeakSanitizer", "ERROR: AddressSanitizer",
                                  "runtime error:", "ERROR: UndefinedBehaviorSanitizer", NULL};

// Reads a file from offset into a malloc'd NUL-terminated string (NULL if unreadable).
static char *s_slurp(const char *path, long offset) {
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *text = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long end = ftell(f);
        long len = end > offset ? end - offset : 0;
        text = malloc((size_t)len + 1);
        if (text && fseek(f, offset, SEEK_SET) == 0) {
            size_t got = fread(text, 1, (size_t)len, f);
            text[got] = '\0';
        } else if (text) {
            text[0] = '\0';
        }
    }
    fclose(f);
    return text;
}

// Copies the first lines (up to 24) of a sanitizer report in text into report. Returns 1 if
// text holds one, else 0.
static int s_sanitizer_report(const char *text, char *report, size_t size) {
    const char *first = NULL;
    for (int m = 0; text && s_markers[m]; m++) {
        const char *at = strstr(text, s_markers[m]);
        if (at && (!first || at < first))
            first = at;
    }
    if (!first)
        return 0;
    while (first > text && first[-1] != '\n')
        first--;
    const char *end = first;
    for (int lines = 0; *end && lines < 24; end++)
        if (*end == '\n')
            lines++;
    snprintf(report, size, "%.*s", (int)(end - first), first);
    return 1;
}

// Records a failed check: printed now and at harness_destroy, and the test process fails.
static void s_fail(harness_t *self, const char *what, const char *report) {
    size_t old = self->failures ? strlen(self->failures) : 0;
    size_t add = strlen(what) + strlen(report) + 8;
    char *grown = realloc(self->failures, old + add);
    if (grown) {
        snprintf(grown + old, add, "%s\n%s%s", what, report,
                 report[0] && report[strlen(report) - 1] != '\n' ? "\n" : "");
        self->failures = grown;
    }
    fprintf(stderr, "harness: FAILED CHECK: %s\n%s\n", what, report);
    self->n_failed++;
    s_failed++;
}

// Prints the last lines (up to 2,000 bytes) of service i's log since it started, so a CI log
// says why a service refused to start.
static void s_print_log_tail(harness_t *self, int i) {
    char log_path[400];
    snprintf(log_path, sizeof log_path, "%s/%s.log", self->dir, s_names[i]);
    char *text = s_slurp(log_path, self->log_offset[i]);
    if (!text)
        return;
    size_t len = strlen(text);
    const char *tail = len > 2000 ? text + len - 2000 : text;
    fprintf(stderr, "harness: the end of %s's log:\n%s%s", s_names[i], tail,
            len && text[len - 1] != '\n' ? "\n" : "");
    free(text);
}

// Checks an incarnation of service i that ended with status: fails unless it exited 0 (or was
// SIGKILLed on purpose: killed) and its log since it started holds no sanitizer report.
static void s_check(harness_t *self, int i, int status, int killed) {
    char log_path[400], report[4096] = "", what[600];
    snprintf(log_path, sizeof log_path, "%s/%s.log", self->dir, s_names[i]);
    char *text = s_slurp(log_path, self->log_offset[i]);
    int dirty = s_sanitizer_report(text, report, sizeof report);
    free(text);
    int exempt = killed && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    int clean_exit = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!dirty && (exempt || clean_exit))
        return;
    if (WIFEXITED(status))
        snprintf(what, sizeof what, "service %s exited with status %d%s (log %s)", s_names[i],
                 WEXITSTATUS(status), dirty ? " and a sanitizer report" : "", log_path);
    else
        snprintf(what, sizeof what, "service %s killed by signal %d%s (log %s)", s_names[i],
                 WIFSIGNALED(status) ? WTERMSIG(status) : -1,
                 dirty ? " and a sanitizer report" : "", log_path);
    s_fail(self, what, report);
}

static int s_index(const char *service) {
    for (int i = 0; i < H_SERVICES; i++)
        if (strcmp(s_names[i], service) == 0)
            return i;
    return -1;
}

// A free port below the kernel's ephemeral range: a client that keeps reconnecting to a stopped
// service on an ephemeral port can end up connected to itself (TCP simultaneous open) and then
// hold the very port the service wants back.
// Ports handed out are remembered: a port only probed free (the probe socket is closed) is still
// free when the next service's port is picked, so without the list two services of one test could
// be given the same port and the second would fail to bind at start.
static int s_given[512];
static int s_n_given;

static int s_port_given(int port) {
    for (int i = 0; i < s_n_given; i++)
        if (s_given[i] == port)
            return 1;
    return 0;
}

static int s_free_port(void) {
    for (int attempt = 0; attempt < 200; attempt++) {
        int port = 15000 + (int)randombytes_uniform(17000);
        if (s_port_given(port))
            continue;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in addr = {.sin_family = AF_INET,
                                   .sin_port = htons((uint16_t)port),
                                   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
        if (fd >= 0)
            close(fd);
        if (ok) {
            if (s_n_given < (int)(sizeof s_given / sizeof s_given[0]))
                s_given[s_n_given++] = port;
            return port;
        }
    }
    return -1;
}

static int s_super_exec(harness_t *self, const char *dbname, const char *sql) {
    char conninfo[600];
    snprintf(conninfo, sizeof conninfo, "%s dbname=%s", self->super_conninfo, dbname);
    PGconn *conn = PQconnectdb(conninfo);
    int rc = -1;
    if (PQstatus(conn) == CONNECTION_OK) {
        PGresult *r = PQexec(conn, sql);
        ExecStatusType st = PQresultStatus(r);
        rc = (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) ? 0 : -1;
        if (rc != 0)
            fprintf(stderr, "harness: %s: %s", sql, PQresultErrorMessage(r));
        PQclear(r);
    } else {
        fprintf(stderr, "harness: cannot connect: %s", PQerrorMessage(conn));
    }
    PQfinish(conn);
    return rc;
}

static int s_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void s_atexit(void) {
    if (s_current)
        harness_destroy(&s_current);
    if (s_failed) {
        // cmocka 1.1 does not count a failed group teardown in its exit code, so a service that
        // failed the check fails the process here (after LeakSanitizer's check of the test).
        fprintf(stderr, "harness: %d service check(s) FAILED (reports above)\n", s_failed);
        fflush(NULL);
        if (__lsan_do_leak_check)
            __lsan_do_leak_check();
        _exit(1);
    }
}

harness_t *harness_new(const char *name) {
    if (sodium_init() < 0)
        return NULL;
    const char *host = getenv("CARA_TEST_PGHOST");
    const char *port = getenv("CARA_TEST_PGPORT");
    if (!host || !port) {
        fprintf(stderr, "harness: CARA_TEST_PGHOST/CARA_TEST_PGPORT not set: run via tests/run.sh"
                        " (make test / make check T=...)\n");
        return NULL;
    }
    // A previous test in this process failed before destroying its harness: clean it up now.
    if (s_current)
        harness_destroy(&s_current);
    harness_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    snprintf(self->super_conninfo, sizeof self->super_conninfo, "host=%s port=%s user=postgres",
             host, port);
    size_t n = (size_t)snprintf(self->dbname, sizeof self->dbname, "t_");
    for (const char *p = name; *p && n < 40; p++)
        self->dbname[n++] = (char)((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ? *p : '_');
    snprintf(self->dbname + n, sizeof self->dbname - n, "_%d", (int)getpid());
    snprintf(self->dir, sizeof self->dir, "/tmp/cara-test-XXXXXX");
    if (!mkdtemp(self->dir)) {
        free(self);
        return NULL;
    }
    chmod(self->dir, 0755);
    s_current = self;
    static int registered;
    if (!registered++)
        atexit(s_atexit);
    char sql[2048];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", self->dbname);
    if (s_super_exec(self, "postgres", sql) != 0)
        goto failed;
    char dbname[sizeof self->dbname];
    memcpy(dbname, self->dbname, sizeof dbname);
    for (int i = 0; i < H_SERVICES; i++) {
        // Roles are cluster-wide and made once by tests/run.sh (deploy/init.sql); each test gets
        // its own database with the five schemas, each owned by its service's role only.
        snprintf(sql, sizeof sql,
                 "CREATE SCHEMA %s AUTHORIZATION cara_%s;"
                 "GRANT CONNECT ON DATABASE %s TO cara_%s;",
                 s_names[i], s_names[i], self->dbname, s_names[i]);
        if (s_super_exec(self, self->dbname, sql) != 0)
            goto failed;
        snprintf(self->conninfo[i], sizeof self->conninfo[i],
                 "host=%s port=%s user=cara_%s dbname=%s", host, port, s_names[i], dbname);
        snprintf(self->router[i], sizeof self->router[i], "tcp://127.0.0.1:%d", s_free_port());
        snprintf(self->pub[i], sizeof self->pub[i], "tcp://127.0.0.1:%d", s_free_port());
        self->extra[i] = json_object();
        self->pid[i] = -1;
    }
    if (s_super_exec(self, self->dbname, "REVOKE ALL ON SCHEMA public FROM PUBLIC") != 0)
        goto failed;
    char keydir[280];
    snprintf(keydir, sizeof keydir, "%s/keys", self->dir);
    mkdir(keydir, 0755);
    snprintf(self->keyring, sizeof self->keyring, "%s/keyring.json", keydir);
    for (int i = 0; i < H_SERVICES; i++) {
        char path[400];
        snprintf(path, sizeof path, "%s/%s.key", keydir, s_names[i]);
        if (keys_generate(&self->service_keys[i]) != 0 ||
            keys_save(&self->service_keys[i], path) != 0 ||
            keyring_file_add(self->keyring, self->service_keys[i].public_key, "service", s_names[i],
                             s_names[i]) != 0)
            goto failed;
    }
    self->ctx = zmq_ctx_new();
    return self;
failed:
    harness_destroy(&self);
    return NULL;
}

static int s_wait_exit(pid_t pid, int timeout_ms, int *status) {
    int64_t deadline = time_mono_ms() + timeout_ms;
    while (time_mono_ms() < deadline) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0 && errno == ECHILD)
            return 0;
        usleep(20000);
    }
    return -1;
}

void harness_destroy(harness_t **self_p) {
    if (!self_p || !*self_p)
        return;
    harness_t *self = *self_p;
    if (s_current == self)
        s_current = NULL;
    for (int i = 0; i < H_SERVICES; i++)
        if (self->pid[i] > 0)
            harness_stop(self, s_names[i], SIGTERM);
    for (int i = 0; i < self->n_clients; i++)
        client_destroy(&self->clients[i].client);
    for (int i = 0; i <= H_SERVICES; i++)
        db_destroy(&self->dbs[i]);
    if (self->ctx)
        zmq_ctx_term(self->ctx);
    for (int i = 0; i < H_SERVICES; i++)
        json_decref(self->extra[i]);
    if (self->failures && self->failures[0])
        fprintf(stderr, "harness: services failed the exit check:\n%s", self->failures);
    free(self->failures);
    if (self->dbname[0]) {
        char sql[200];
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", self->dbname);
        s_super_exec(self, "postgres", sql);
    }
    const char *keep = getenv("CARA_TEST_KEEP");
    if (self->dir[0] && !(keep && strcmp(keep, "1") == 0))
        nftw(self->dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    else if (self->dir[0])
        fprintf(stderr, "harness: kept %s\n", self->dir);
    free(self);
    *self_p = NULL;
}

void harness_config(harness_t *self, const char *service, const char *key, const char *json) {
    int i = s_index(service);
    json_t *value = json_loads(json, JSON_DECODE_ANY, NULL);
    if (i < 0 || !value) {
        fprintf(stderr, "harness_config: bad service or JSON for %s.%s\n", service, key);
        json_decref(value);
        return;
    }
    // Dotted keys make nested objects.
    json_t *node = self->extra[i];
    char path[256];
    snprintf(path, sizeof path, "%s", key);
    char *part = path, *dot;
    while ((dot = strchr(part, '.')) != NULL) {
        *dot = '\0';
        json_t *child = json_object_get(node, part);
        if (!json_is_object(child)) {
            child = json_object();
            json_object_set_new(node, part, child);
        }
        node = child;
        part = dot + 1;
    }
    json_object_set_new(node, part, value);
}

static int s_write_config(harness_t *self, int i, char *path, size_t size) {
    char secret[400];
    snprintf(secret, sizeof secret, "%s/keys/%s.key", self->dir, s_names[i]);
    json_t *ups = json_object();
    for (int u = 0; s_upstreams[i][u]; u++) {
        int j = s_index(s_upstreams[i][u]);
        json_object_set_new(
            ups, s_names[j],
            json_pack("{s:s, s:s}", "router", self->router[j], "pub", self->pub[j]));
    }
    json_t *doc =
        json_pack("{s:s, s:{s:s, s:i}, s:{s:s, s:s}, s:{s:s, s:s}, s:o, s:{s:i, s:i}, s:s}",
                  "service", s_names[i], "db", "conninfo", self->conninfo[i], "connect_wait_ms",
                  20000, "bind", "router", self->router[i], "pub", self->pub[i], "keys",
                  "secret_file", secret, "keyring", self->keyring, "upstreams", ups, "consumer",
                  "poll_ms", 300, "timeout_ms", 2000, "log_level", "info");
    if (!doc)
        return -1;
    json_object_update_recursive(doc, self->extra[i]);
    snprintf(path, size, "%s/%s.json", self->dir, s_names[i]);
    int rc = json_dump_file(doc, path, JSON_INDENT(2));
    json_decref(doc);
    return rc;
}

int harness_start(harness_t *self, const char *service) {
    return harness_start_as(self, service, NULL);
}

int harness_start_as(harness_t *self, const char *service, const char *binary) {
    int i = s_index(service);
    if (i < 0 || self->pid[i] > 0)
        return -1;
    char config[400], log_path[400], bin[300];
    if (s_write_config(self, i, config, sizeof config) != 0)
        return -1;
    snprintf(log_path, sizeof log_path, "%s/%s.log", self->dir, service);
    struct stat st;
    self->log_offset[i] = stat(log_path, &st) == 0 ? (long)st.st_size : 0;
    const char *bindir = getenv("CARA_BIN_DIR");
    if (binary)
        snprintf(bin, sizeof bin, "%s", binary);
    else
        snprintf(bin, sizeof bin, "%s/cara-%s", bindir ? bindir : "bin", service);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execl(bin, bin, "--config", config, (char *)NULL);
        _exit(127);
    }
    self->pid[i] = pid;
    return harness_wait_healthy(self, service, 30000);
}

int harness_stop(harness_t *self, const char *service, int sig) {
    int i = s_index(service);
    if (i < 0 || self->pid[i] <= 0)
        return -1;
    int status = 0;
    kill(self->pid[i], sig);
    if (s_wait_exit(self->pid[i], sig == SIGKILL ? 5000 : 10000, &status) != 0) {
        char what[200];
        snprintf(what, sizeof what, "service %s did not stop within 10 s of signal %d; killed",
                 service, sig);
        s_fail(self, what, "");
        kill(self->pid[i], SIGKILL);
        s_wait_exit(self->pid[i], 5000, &status);
        sig = SIGKILL;
    }
    s_check(self, i, status, sig == SIGKILL);
    self->pid[i] = -1;
    return status;
}

int harness_pid(harness_t *self, const char *service) {
    int i = s_index(service);
    return i < 0 ? -1 : self->pid[i];
}

int harness_wait_healthy(harness_t *self, const char *service, int timeout_ms) {
    client_t *client = harness_client(self, service, "operator", "harness");
    if (!client)
        return -1;
    int i = s_index(service);
    int64_t deadline = time_mono_ms() + timeout_ms;
    Cara__HealthRequest req = CARA__HEALTH_REQUEST__INIT;
    while (time_mono_ms() < deadline) {
        if (self->pid[i] > 0) {
            int status;
            if (waitpid(self->pid[i], &status, WNOHANG) == self->pid[i]) {
                fprintf(stderr, "harness: %s exited during start (status %d); see %s/%s.log\n",
                        service, status, self->dir, service);
                s_print_log_tail(self, i);
                // A refusal to start is the caller's to judge; a sanitizer report is not.
                s_check(self, i, WIFEXITED(status) ? 0 : status, 0);
                self->pid[i] = -1;
                return -1;
            }
        }
        Cara__Reply *reply = client_call(client, &req.base, NULL, NULL, 1000, 0);
        int ok = reply && reply->status == CARA__REPLY__STATUS__OK;
        if (reply)
            cara__reply__free_unpacked(reply, NULL);
        if (ok)
            return 0;
        usleep(100000);
    }
    fprintf(stderr, "harness: %s not healthy after %d ms; see %s/%s.log\n", service, timeout_ms,
            self->dir, service);
    return -1;
}

static h_identity_t *s_identity(harness_t *self, const char *role, const char *org) {
    for (int i = 0; i < self->n_ids; i++)
        if (strcmp(self->ids[i].role, role) == 0 && strcmp(self->ids[i].org, org) == 0)
            return &self->ids[i];
    if (self->n_ids == H_MAX_IDS)
        return NULL;
    h_identity_t *id = &self->ids[self->n_ids];
    snprintf(id->role, sizeof id->role, "%s", role);
    snprintf(id->org, sizeof id->org, "%s", org);
    if (keys_generate(&id->keys) != 0 ||
        keyring_file_add(self->keyring, id->keys.public_key, role, org, NULL) != 0)
        return NULL;
    self->n_ids++;
    return id;
}

const keypair_t *harness_identity_keys(harness_t *self, const char *role, const char *org) {
    h_identity_t *id = s_identity(self, role, org);
    return id ? &id->keys : NULL;
}

client_t *harness_client(harness_t *self, const char *service, const char *role, const char *org) {
    int i = s_index(service);
    h_identity_t *id = i >= 0 ? s_identity(self, role, org) : NULL;
    if (!id)
        return NULL;
    for (int c = 0; c < self->n_clients; c++)
        if (self->clients[c].service == i && self->clients[c].id == id)
            return self->clients[c].client;
    if (self->n_clients == H_MAX_CLIENTS)
        return NULL;
    client_t *client =
        client_new(self->ctx, self->router[i], &id->keys, self->service_keys[i].public_key);
    if (!client)
        return NULL;
    self->clients[self->n_clients++] = (h_client_t){i, id, client};
    return client;
}

Cara__Reply *harness_call(client_t *client, const ProtobufCMessage *msg) {
    return client_call(client, msg, NULL, NULL, 5000, 2);
}

Cara__Batch *harness_fetch(client_t *client, const char *stream, uint64_t after, uint32_t max,
                           int *status) {
    Cara__Fetch fetch = CARA__FETCH__INIT;
    fetch.stream = (char *)stream;
    fetch.after = after;
    fetch.max = max;
    Cara__Reply *reply = harness_call(client, &fetch.base);
    if (status)
        *status = reply ? (int)reply->status : -1;
    Cara__Batch *batch = NULL;
    if (reply && reply->status == CARA__REPLY__STATUS__OK)
        batch = cara__batch__unpack(NULL, reply->payload.len, reply->payload.data);
    if (reply)
        cara__reply__free_unpacked(reply, NULL);
    return batch;
}

db_t *harness_db(harness_t *self, const char *schema) {
    for (int i = 0; i <= H_SERVICES; i++)
        if (self->dbs[i] && strcmp(self->db_schema[i], schema) == 0)
            return self->dbs[i];
    for (int i = 0; i <= H_SERVICES; i++) {
        if (self->dbs[i])
            continue;
        char conninfo[600];
        snprintf(conninfo, sizeof conninfo, "%s dbname=%s", self->super_conninfo, self->dbname);
        self->dbs[i] = db_connect(conninfo, schema, 5000);
        snprintf(self->db_schema[i], sizeof self->db_schema[i], "%s", schema);
        return self->dbs[i];
    }
    return NULL;
}

char *harness_value(harness_t *self, const char *schema, const char *sql) {
    db_t *db = harness_db(self, schema);
    char out[4096];
    if (!db || db_ensure(db) != 0 || db_scalar(db, sql, 0, NULL, out, sizeof out) < 0)
        return NULL;
    return strdup(out);
}

int harness_wait_value(harness_t *self, const char *schema, const char *sql, const char *expected,
                       int timeout_ms) {
    int64_t deadline = time_mono_ms() + timeout_ms;
    char *last = NULL;
    do {
        free(last);
        last = harness_value(self, schema, sql);
        if (last && strcmp(last, expected) == 0) {
            free(last);
            return 0;
        }
        usleep(50000);
    } while (time_mono_ms() < deadline);
    fprintf(stderr, "harness: waited %d ms for [%s] = %s, last %s\n", timeout_ms, sql, expected,
            last ? last : "(error)");
    free(last);
    return -1;
}

int harness_wait_caught_up(harness_t *self, const char *consumer, const char *stream,
                           int timeout_ms) {
    char *head = harness_value(self, stream, "SELECT max(seq) FROM outbox");
    if (!head) {
        fprintf(stderr, "harness: no head for stream %s\n", stream);
        return -1;
    }
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT seq FROM cursor WHERE stream = '%s'", stream);
    int rc = harness_wait_value(self, consumer, sql, head, timeout_ms);
    free(head);
    return rc;
}

const char *harness_dir(harness_t *self) {
    return self->dir;
}
int harness_log_has(harness_t *self, const char *service, const char *needle) {
    char path[400], line[8192];
    snprintf(path, sizeof path, "%s/%s.log", self->dir, service);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}
const char *harness_conninfo(harness_t *self, const char *service) {
    int i = s_index(service);
    return i < 0 ? NULL : self->conninfo[i];
}
const char *harness_superuser_conninfo(harness_t *self) {
    return self->super_conninfo;
}
const char *harness_endpoint(harness_t *self, const char *service) {
    int i = s_index(service);
    return i < 0 ? NULL : self->router[i];
}
const char *harness_pub_endpoint(harness_t *self, const char *service) {
    int i = s_index(service);
    return i < 0 ? NULL : self->pub[i];
}
const char *harness_keyring_path(harness_t *self) {
    return self->keyring;
}
const char *harness_service_public(harness_t *self, const char *service) {
    int i = s_index(service);
    return i < 0 ? NULL : self->service_keys[i].public_key;
}
void *harness_ctx(harness_t *self) {
    return self->ctx;
}

const char *harness_failures(harness_t *self) {
    return self->failures ? self->failures : "";
}

void harness_forget_failures(harness_t *self) {
    s_failed -= self->n_failed;
    self->n_failed = 0;
    free(self->failures);
    self->failures = NULL;
}

int harness_run(const char *const *argv, char *out, size_t size, char *report, size_t report_size) {
    const char *tmp = getenv("TMPDIR");
    char out_path[300], err_path[300];
    snprintf(out_path, sizeof out_path, "%s/cara-run-XXXXXX", tmp ? tmp : "/tmp");
    snprintf(err_path, sizeof err_path, "%s/cara-run-XXXXXX", tmp ? tmp : "/tmp");
    int out_fd = mkstemp(out_path);
    int err_fd = out_fd >= 0 ? mkstemp(err_path) : -1;
    if (report_size)
        report[0] = '\0';
    if (out_fd < 0 || err_fd < 0) {
        snprintf(report, report_size, "cannot make temporary files for %s", argv[0]);
        if (out_fd >= 0) {
            close(out_fd);
            unlink(out_path);
        }
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
            _exit(126);
        unsetenv("CARA_CLIENT_CONFIG");
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(out_fd);
    close(err_fd);
    int status = 0, rc = -1;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        snprintf(report, report_size, "cannot run %s: %s", argv[0], strerror(errno));
        goto cleanup;
    }
    char *text = s_slurp(out_path, 0);
    snprintf(out, size, "%s", text ? text : "");
    free(text);
    text = s_slurp(err_path, 0);
    if (s_sanitizer_report(text, report, report_size))
        rc = -1;
    else if (!WIFEXITED(status))
        snprintf(report, report_size, "%s killed by signal %d\n%.2000s", argv[0],
                 WIFSIGNALED(status) ? WTERMSIG(status) : -1, text ? text : "");
    else
        rc = WEXITSTATUS(status);
    free(text);
cleanup:
    unlink(out_path);
    unlink(err_path);
    return rc;
}

int harness_cara(harness_t *self, char *out, size_t size, const char *arg, ...) {
    (void)self;
    char bin[300];
    const char *bindir = getenv("CARA_BIN_DIR");
    snprintf(bin, sizeof bin, "%s/cara", bindir ? bindir : "bin");
    const char *argv[40] = {bin};
    int n = 1;
    va_list ap;
    va_start(ap, arg);
    for (const char *a = arg; a && n < 39; a = va_arg(ap, const char *))
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    char report[4096];
    int rc = harness_run(argv, out, size, report, sizeof report);
    if (rc < 0) {
        char cmd[600] = "";
        for (int i = 1; i < n && strlen(cmd) < 500; i++)
            snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), " %s", argv[i]);
        fail_msg("cara%s: failed the exit check:\n%s", cmd, report);
    }
    return rc;
}

int harness_client_config_key(harness_t *self, const char *key_file, const char *services,
                              int timeout_ms, int retries, char *out, size_t size) {
    const char *base = strrchr(key_file, '/');
    base = base ? base + 1 : key_file;
    int len = (int)strcspn(base, ".");
    snprintf(out, size, "%s/client-%.*s.json", self->dir, len, base);
    json_t *list = json_object();
    for (int i = 0; i < H_SERVICES; i++) {
        const char *at = services ? strstr(services, s_names[i]) : NULL;
        size_t l = strlen(s_names[i]);
        int named = !services ||
                    (at && (at == services || at[-1] == ',') && (at[l] == '\0' || at[l] == ','));
        if (named)
            json_object_set_new(
                list, s_names[i],
                json_pack("{s:s, s:s}", "router", self->router[i], "pub", self->pub[i]));
    }
    json_t *doc =
        json_pack("{s:{s:s, s:s}, s:o, s:i, s:i}", "keys", "secret_file", key_file, "keyring",
                  self->keyring, "services", list, "timeout_ms", timeout_ms, "retries", retries);
    int rc = doc && json_dump_file(doc, out, JSON_INDENT(2)) == 0 ? 0 : -1;
    json_decref(doc);
    return rc;
}

int harness_client_config(harness_t *self, const char *role, const char *org, const char *services,
                          int timeout_ms, int retries, char *out, size_t size) {
    const keypair_t *kp = harness_identity_keys(self, role, org);
    char key_file[400];
    snprintf(key_file, sizeof key_file, "%s/client-%s-%s.key", self->dir, role, org);
    if (!kp || keys_save(kp, key_file) != 0)
        return -1;
    return harness_client_config_key(self, key_file, services, timeout_ms, retries, out, size);
}

long harness_peak_rss_kb(int pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            kb = atol(line + 6);
    if (f)
        fclose(f);
    return kb;
}

int harness_recv_status(void *socket, int timeout_ms, char *message, size_t size) {
    zmq_pollitem_t item = {socket, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, timeout_ms) <= 0)
        return -1;
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, socket, 0) < 0)
        return -1;
    Cara__Envelope *env = envelope_unpack(zmq_msg_data(&m), zmq_msg_size(&m));
    zmq_msg_close(&m);
    assert_non_null(env);
    Cara__Reply *r = cara__reply__unpack(NULL, env->payload.len, env->payload.data);
    cara__envelope__free_unpacked(env, NULL);
    assert_non_null(r);
    int status = (int)r->status;
    if (message)
        snprintf(message, size, "%s", r->message ? r->message : "");
    cara__reply__free_unpacked(r, NULL);
    return status;
}
