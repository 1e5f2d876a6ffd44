// Integration-test harness: a fresh database in the throwaway cluster that tests/run.sh started
// (CARA_TEST_PGHOST / CARA_TEST_PGPORT), keys and a key ring in a temp dir, real service
// processes on random 127.0.0.1 ports, and CURVE clients for any identity. Everything it
// starts it stops in harness_destroy (also called from an atexit hook if a test aborts).
#ifndef CARA_TEST_HARNESS_H
#define CARA_TEST_HARNESS_H
#include <signal.h>
#include <stdint.h>

#include "cara/db.h"
#include "cara/envelope.h"
#include "cara/transport.h"

typedef struct harness_t harness_t;

// Creates database "t_<name>_<pid>", the five schemas owned by their roles, keys for the five
// services, and the key ring. Returns NULL (reason on stderr) on failure.
harness_t *harness_new(const char *name);
// Kills every service it started (SIGKILL after 5 s of SIGTERM), drops the database and removes
// the temp dir (kept when CARA_TEST_KEEP=1).
void harness_destroy(harness_t **self_p);

// Sets a service configuration value before harness_start (json: any JSON text, e.g. "16" or
// "{\"dyfed-powys\": {\"deadline_weeks\": 16}}"). key may be dotted ("consumer.poll_ms").
void harness_config(harness_t *self, const char *service, const char *key, const char *json);
// Starts bin/cara-<service> (config generated; upstreams wired to the other services' ports)
// and waits until it answers Health. Logs go to <dir>/<service>.log. Returns 0 or -1.
int harness_start(harness_t *self, const char *service);
// As harness_start, but runs another binary in the service's slot (its schema, role, ports,
// keys and config): test producers and consumers built on the service runtime.
int harness_start_as(harness_t *self, const char *service, const char *binary);
// Sends sig; for SIGTERM waits up to 10 s for exit. Returns the exit status or -1.
int harness_stop(harness_t *self, const char *service, int sig);
// Waits until the service answers Health (after a restart, say). Returns 0 or -1.
int harness_wait_healthy(harness_t *self, const char *service, int timeout_ms);

// A client for identity role:org connected to a service's ROUTER. Its key is generated and
// added to the key ring on first use (services pick ring changes up without restart). Owned by
// the harness: do not destroy.
client_t *harness_client(harness_t *self, const char *service, const char *role, const char *org);
// The client's key pair (e.g. to build a consumer as that identity).
const keypair_t *harness_identity_keys(harness_t *self, const char *role, const char *org);
// client_call with 5 s timeout and 2 retries. Caller frees with cara__reply__free_unpacked.
Cara__Reply *harness_call(client_t *client, const ProtobufCMessage *msg);
// Fetches a stream batch as the client's identity. NULL if refused (reply status in *status).
Cara__Batch *harness_fetch(client_t *client, const char *stream, uint64_t after, uint32_t max,
                           int *status);

// A superuser connection to the test database with search_path = schema. Owned by the harness.
db_t *harness_db(harness_t *self, const char *schema);
// Polls a one-value query in schema until it prints `expected` (or timeout). Returns 0 if it did.
int harness_wait_value(harness_t *self, const char *schema, const char *sql, const char *expected,
                       int timeout_ms);
// Waits until consumer's cursor on stream (the producer's schema) is at the producer's head as
// it is now. Returns 0 if it got there within timeout_ms.
int harness_wait_caught_up(harness_t *self, const char *consumer, const char *stream,
                           int timeout_ms);
// The one-value result of a query in schema as a malloc'd string (NULL on error).
char *harness_value(harness_t *self, const char *schema, const char *sql);
// Receives one reply on a DEALER socket of the test's own (a request sent with envelope_pack)
// within timeout_ms. Returns its status, or -1 if none came; message (if not NULL) gets its text.
int harness_recv_status(void *socket, int timeout_ms, char *message, size_t size);

const char *harness_dir(harness_t *self);
// Whether the service's log (every incarnation's) has a line containing needle: 1, 0, or -1 if
// there is no log.
int harness_log_has(harness_t *self, const char *service, const char *needle);
const char *harness_conninfo(harness_t *self, const char *service); // the service role's
const char *harness_superuser_conninfo(harness_t *self);
const char *harness_endpoint(harness_t *self, const char *service); // ROUTER endpoint
const char *harness_pub_endpoint(harness_t *self, const char *service);
const char *harness_keyring_path(harness_t *self);
const char *harness_service_public(harness_t *self, const char *service);
void *harness_ctx(harness_t *self);
// pid of a running service, or -1.
int harness_pid(harness_t *self, const char *service);
// Peak resident memory (VmHWM) of a process in kB, or -1 if it cannot be read.
long harness_peak_rss_kb(int pid);

// The service check: every incarnation of a service the harness started must exit 0 when it is
// stopped (harness_stop or harness_destroy: SIGTERM) and leave no sanitizer report
// (LeakSanitizer, AddressSanitizer, UBSan "runtime error:") in its log; an incarnation stopped
// with harness_stop(..., SIGKILL) is exempt from the exit status only. A failure is printed at
// once (service, status, first lines of the report), again at harness_destroy, and makes the
// test process exit 1. The failures recorded so far ("" if none).
const char *harness_failures(harness_t *self);
// Forgets the recorded failures (a test that provoked one on purpose).
void harness_forget_failures(harness_t *self);

// Runs argv[0] (argv NULL-terminated) with CARA_CLIENT_CONFIG unset; its stdout (truncated to
// size) in out. Returns its exit code, or -1 if it was killed by a signal or its stderr holds a
// sanitizer report (the report's first lines, or the reason, in report).
int harness_run(const char *const *argv, char *out, size_t size, char *report, size_t report_size);
// Runs bin/cara (CARA_BIN_DIR or bin/) with the NULL-terminated arguments through harness_run;
// stdout in out. Fails the test (cmocka) if cara did not exit normally or reported a sanitizer
// error. Returns the exit code. self may be NULL (no harness needed).
int harness_cara(harness_t *self, char *out, size_t size, const char *arg, ...);
// Writes a `cara` client configuration for identity role:org (key admitted to the ring, saved
// in the harness dir) naming the services in the comma-separated list (NULL: all five, router
// and pub), with timeout_ms and retries. Its path in out. Returns 0 or -1.
int harness_client_config(harness_t *self, const char *role, const char *org, const char *services,
                          int timeout_ms, int retries, char *out, size_t size);
// As harness_client_config, for the key pair in key_file (config named after the key file).
int harness_client_config_key(harness_t *self, const char *key_file, const char *services,
                              int timeout_ms, int retries, char *out, size_t size);

#endif
