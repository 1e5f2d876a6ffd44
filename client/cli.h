// The `cara` client: one binary, subcommands per area (one file each: cmd_<area>.c).
// Configuration: --config FILE, else $CARA_CLIENT_CONFIG, else var/etc/client.json. It names
// the identity's key file, the key ring (for the services' public keys) and the endpoints:
//   {"keys": {"secret_file": "keys/police-dyfed-powys.key", "keyring": "keys/keyring.json"},
//    "services": {"intake": {"router": "tcp://127.0.0.1:7101", "pub": "..."}, ...}}
// Exit codes: 0 success, 2 validation error (errors printed as JSON), 1 any other failure.
#ifndef CARA_CLI_H
#define CARA_CLI_H
#include <jansson.h>

#include "cara/config.h"
#include "cara/envelope.h"
#include "cara/transport.h"

#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_INVALID 2

typedef struct cli_t cli_t;

typedef struct {
    const char *name;                              // first word after `cara`
    int (*run)(cli_t *cli, int argc, char **argv); // argv[0] is the command name
    const char *usage;
} cli_command_t;

// A connected client for a service (created on first use, owned by cli). NULL on failure
// (reason printed on stderr).
client_t *cli_client(cli_t *cli, const char *service);
config_t *cli_config(cli_t *cli);
// Sends msg to a service and waits (timeout from config "timeout_ms", default 10 s), with the
// --request-id given, else a new one for this call. Returns the reply or NULL (printed "no
// reply"). On no reply and on an UNAVAILABLE answer, prints on stderr the request id used and
// the command line that retries with it (a repeat of a request id is never carried out twice).
// Caller frees with cara__reply__free_unpacked.
Cara__Reply *cli_call(cli_t *cli, const char *service, const ProtobufCMessage *msg);
// Prints a reply as JSON on stdout: {"status": "...", "message": ..., "errors": [...],
// "result": <payload as JSON via pbjson, if payload_desc given>}. Returns the exit code for it.
int cli_print_reply(const Cara__Reply *reply, const ProtobufCMessageDescriptor *payload_desc);
// Finds "--name VALUE" in argv; returns VALUE or fallback.
const char *cli_opt(int argc, char **argv, const char *name, const char *fallback);
int cli_flag(int argc, char **argv, const char *name);
// Prints JSON to stdout (steals the reference) and flushes it. Returns 0, or -1 if stdout could
// not be written (reason printed on stderr).
int cli_print_json(json_t *doc);
// Flushes stdout. Returns 0, or -1 if anything written to it since the start was lost (a full
// disk, a closed pipe): reason printed on stderr.
int cli_stdout_flush(void);
// Whether a fetched batch says the service's stream went back below `after` (its producer
// restored from a backup without moving its seqs on): then prints why on stderr, and the caller
// stops (its cursor would skip the events the producer numbers up to `after`). Returns 1 or 0.
int cli_batch_went_back(const Cara__Batch *batch, const char *service, uint64_t after);

// Creates the client state. config_path NULL: $CARA_CLIENT_CONFIG, else var/etc/client.json
// (environment only if that default is absent). request_id (may be NULL) is used for the
// commands sent (a repeat with the same id returns the first answer). NULL on failure.
cli_t *cli_new(const char *config_path, const char *request_id);
void cli_destroy(cli_t **self_p);
// The command line as the user typed it (main's argc/argv, kept by reference: they must outlive
// cli), for the retry line printed when a request went unanswered.
void cli_set_argv(cli_t *cli, int argc, char **argv);
// The generated descriptor of a message by its full name ("cara.ReferralSubmitted"), from the
// table in cli.c (add a line there for new messages). NULL if unknown.
const ProtobufCMessageDescriptor *cli_descriptor(const char *type);

// Areas (each defined in its own cmd_<area>.c).
int cmd_keys(cli_t *cli, int argc, char **argv);
int cmd_health(cli_t *cli, int argc, char **argv);
int cmd_status(cli_t *cli, int argc, char **argv);
int cmd_deadletter(cli_t *cli, int argc, char **argv);
int cmd_fetch(cli_t *cli, int argc, char **argv);
// triage, cohort, booking, attendance, contact, victim, cases (client/cmd_areas.c).
int cmd_area(cli_t *cli, int argc, char **argv);
int cmd_referral(cli_t *cli, int argc, char **argv); // client/cmd_referral.c (intake)
int cmd_outcomes(cli_t *cli, int argc, char **argv); // client/cmd_referral.c (intake)
int cmd_invoice(cli_t *cli, int argc, char **argv);  // client/cmd_billing.c (show, export)

#endif
