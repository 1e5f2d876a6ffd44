// The `cara` client's shared parts: configuration, one CURVE client per service, calls with
// Lazy-Pirate retries, option parsing and JSON output.
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "billing.pb-c.h"
#include "booking.pb-c.h"
#include "cara/keys.h"
#include "cara/pbjson.h"
#include "cara/uuid.h"
#include "envelope.pb-c.h"
#include "intake.pb-c.h"
#include "national.pb-c.h"
#include "triage.pb-c.h"

#define CLI_MAX_CLIENTS 16
#define CLI_DEFAULT_CONFIG "var/etc/client.json"

struct cli_t {
    char *config_path; // NULL: environment only
    config_t *config;  // loaded on first use
    int config_failed;
    char *request_id;
    int argc; // the command line, for the retry line (cli_set_argv)
    char **argv;
    void *ctx;
    keypair_t keys;
    int keys_loaded;
    struct {
        char service[32];
        client_t *client;
    } clients[CLI_MAX_CLIENTS];
    int n_clients;
};

// Every message the client can show by name: stream payloads (`cara fetch`) and replies.
// Add a line here when you add a message to a .proto.
static const ProtobufCMessageDescriptor *const s_descriptors[] = {
    // envelope.proto
    &cara__envelope__descriptor,
    &cara__field_error__descriptor,
    &cara__reply__descriptor,
    &cara__fetch__descriptor,
    &cara__stream_event__descriptor,
    &cara__batch__descriptor,
    &cara__head__descriptor,
    &cara__health_request__descriptor,
    &cara__consumer_status__descriptor,
    &cara__health__descriptor,
    &cara__dead_letter__descriptor,
    &cara__dead_letter_list__descriptor,
    &cara__dead_letter_replay__descriptor,
    // intake.proto
    &cara__offender__descriptor,
    &cara__victim__descriptor,
    &cara__caution__descriptor,
    &cara__risk__descriptor,
    &cara__referral__descriptor,
    &cara__submit_referral__descriptor,
    &cara__referral_accepted__descriptor,
    &cara__amend_referral__descriptor,
    &cara__withdraw_referral__descriptor,
    &cara__show_referral__descriptor,
    &cara__field_change__descriptor,
    &cara__outcome__descriptor,
    &cara__referral_view__descriptor,
    &cara__referral_submitted__descriptor,
    &cara__referral_amended__descriptor,
    &cara__referral_withdrawn__descriptor,
    &cara__outcome_updated__descriptor,
    &cara__safety_concern_raised__descriptor,
    // triage.proto
    &cara__reason_code__descriptor,
    &cara__need__descriptor,
    &cara__onward_referral__descriptor,
    &cara__referral_triaged__descriptor,
    &cara__referral_returned__descriptor,
    &cara__triage_case_updated__descriptor,
    &cara__triage_case_withdrawn__descriptor,
    // booking.proto
    &cara__case_opened__descriptor,
    &cara__contact_recorded__descriptor,
    &cara__cohort_created__descriptor,
    &cara__cohort_cancelled__descriptor,
    &cara__seat_booked__descriptor,
    &cara__booking_cancelled__descriptor,
    &cara__attendance_recorded__descriptor,
    &cara__case_completed__descriptor,
    &cara__case_non_compliant__descriptor,
    &cara__cohort_delivered__descriptor,
    &cara__victim_contact_recorded__descriptor,
    &cara__case_reopened__descriptor,
    &cara__case_withdrawn__descriptor,
    &cara__case_updated__descriptor,
    &cara__cohort_ref__descriptor,
    &cara__cohort_list__descriptor,
    &cara__seat_result__descriptor,
    &cara__case_list__descriptor,
    // billing.proto
    &cara__invoice_list__descriptor,
    &cara__contract_status__descriptor,
    &cara__invoice_issued__descriptor,
    &cara__cap_reached__descriptor,
    // triage.proto replies
    &cara__triage_case_list__descriptor,
    // more commands, replies and events, by .proto file
    // billing.proto
    &cara__cohort_fee__descriptor,
    &cara__funding_share__descriptor,
    &cara__funding_part__descriptor,
    &cara__credit_note_issued__descriptor,
    &cara__contract__descriptor,
    &cara__add_contract__descriptor,
    &cara__vary_contract__descriptor,
    &cara__record_training__descriptor,
    &cara__run_invoices__descriptor,
    &cara__list_invoices__descriptor,
    &cara__invoice_line__descriptor,
    &cara__invoice__descriptor,
    &cara__contract_status_request__descriptor,
    // booking.proto
    &cara__create_cohort__descriptor,
    &cara__cancel_cohort__descriptor,
    &cara__list_cohorts__descriptor,
    &cara__cohort_view__descriptor,
    &cara__book_seat__descriptor,
    &cara__attendance_entry__descriptor,
    &cara__record_attendance__descriptor,
    &cara__record_contact__descriptor,
    &cara__record_victim_contact__descriptor,
    &cara__list_cases__descriptor,
    &cara__case_view__descriptor,
    &cara__cancel_booking__descriptor,
    &cara__shortfall__descriptor,
    &cara__pathway_shortfall__descriptor,
    &cara__shortfall_report__descriptor,
    &cara__list_victim_contacts__descriptor,
    &cara__victim_contact_view__descriptor,
    &cara__victim_contact_list__descriptor,
    // intake.proto
    &cara__list_rejected_submissions__descriptor,
    &cara__rejected_error__descriptor,
    &cara__rejected_submission__descriptor,
    &cara__rejected_submission_list__descriptor,
    // national.proto
    &cara__national_export__descriptor,
    &cara__national_export_result__descriptor,
    &cara__national_return_published__descriptor,
    // triage.proto
    &cara__triage_decide__descriptor,
    &cara__record_needs__descriptor,
    &cara__list_overdue__descriptor,
    &cara__show_triage_case__descriptor,
    &cara__triage_case_summary__descriptor,
    &cara__list_safety_alerts__descriptor,
    NULL,
};

const ProtobufCMessageDescriptor *cli_descriptor(const char *type) {
    for (int i = 0; type && s_descriptors[i]; i++)
        if (strcmp(s_descriptors[i]->name, type) == 0)
            return s_descriptors[i];
    return NULL;
}

cli_t *cli_new(const char *config_path, const char *request_id) {
    cli_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    if (!config_path)
        config_path = getenv("CARA_CLIENT_CONFIG");
    if (!config_path && access(CLI_DEFAULT_CONFIG, F_OK) == 0)
        config_path = CLI_DEFAULT_CONFIG;
    self->config_path = config_path ? strdup(config_path) : NULL;
    self->request_id = request_id ? strdup(request_id) : NULL;
    if ((config_path && !self->config_path) || (request_id && !self->request_id))
        cli_destroy(&self);
    return self;
}

void cli_destroy(cli_t **self_p) {
    if (!self_p || !*self_p)
        return;
    cli_t *self = *self_p;
    for (int i = 0; i < self->n_clients; i++)
        client_destroy(&self->clients[i].client);
    if (self->ctx)
        zmq_ctx_term(self->ctx);
    config_destroy(&self->config);
    free(self->config_path);
    free(self->request_id);
    sodium_memzero(&self->keys, sizeof self->keys);
    free(self);
    *self_p = NULL;
}

void cli_set_argv(cli_t *self, int argc, char **argv) {
    self->argc = argc;
    self->argv = argv;
}

// Prints one argument for a POSIX shell: as it is if it is plain, else in single quotes.
static void s_print_shell_word(FILE *out, const char *word) {
    if (*word && strspn(word, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                              "-_./:=@,+%") == strlen(word)) {
        fputs(word, out);
        return;
    }
    fputc('\'', out);
    for (const char *p = word; *p; p++) {
        if (*p == '\'')
            fputs("'\\''", out);
        else
            fputc(*p, out);
    }
    fputc('\'', out);
}

// Tells the user the request id of a request whose outcome is unknown, and how to retry it so
// that it is not carried out twice: the command line again, with --request-id ID.
static void s_print_retry(const cli_t *self, const char *request_id) {
    fprintf(stderr,
            "cara: request id %s; to retry, give the same request id (a repeat is not carried"
            " out twice):\n  cara --request-id %s",
            request_id, request_id);
    if (self->argc < 2)
        fputs(" ...", stderr);
    for (int i = 1; i < self->argc; i++) {
        if (strcmp(self->argv[i], "--request-id") == 0 && i + 1 < self->argc) {
            i++;
            continue;
        }
        fputc(' ', stderr);
        s_print_shell_word(stderr, self->argv[i]);
    }
    fputc('\n', stderr);
}

config_t *cli_config(cli_t *self) {
    if (self->config || self->config_failed)
        return self->config;
    self->config = config_load(self->config_path);
    if (!self->config) {
        self->config_failed = 1;
        fprintf(stderr, "cara: cannot read the client configuration %s\n",
                self->config_path ? self->config_path : "(environment)");
    }
    return self->config;
}

// Loads this identity's key pair (keys.secret_file). Returns 0 or -1 (reason printed).
static int s_load_keys(cli_t *self, config_t *config) {
    if (self->keys_loaded)
        return 0;
    const char *file = config_str(config, "keys.secret_file", NULL);
    if (!file) {
        fprintf(stderr, "cara: the configuration names no keys.secret_file\n");
        return -1;
    }
    char *path = config_resolve(config, file);
    int rc = path ? keys_load(path, &self->keys) : -1;
    if (rc != 0)
        fprintf(stderr, "cara: cannot read the key file %s\n", path ? path : file);
    else
        self->keys_loaded = 1;
    free(path);
    return rc;
}

// The service's public key: services.<svc>.public if configured, else the key ring's entry for
// service:<svc>. Returns 0 or -1 (reason printed).
static int s_server_key(config_t *config, const char *service, char out[KEY_Z85_LEN]) {
    char key[96];
    snprintf(key, sizeof key, "services.%s.public", service);
    const char *given = config_str(config, key, NULL);
    if (given && strlen(given) == KEY_Z85_LEN - 1) {
        memcpy(out, given, KEY_Z85_LEN);
        return 0;
    }
    const char *ring_file = config_str(config, "keys.keyring", NULL);
    char *path = ring_file ? config_resolve(config, ring_file) : NULL;
    keyring_t *ring = path ? keyring_load(path) : NULL;
    int rc = ring ? keyring_key_of(ring, "service", service, out) : -1;
    if (rc != 0)
        fprintf(stderr, "cara: no public key for service %s (keys.keyring %s)\n", service,
                path ? path : "not configured");
    keyring_destroy(&ring);
    free(path);
    return rc;
}

client_t *cli_client(cli_t *self, const char *service) {
    for (int i = 0; i < self->n_clients; i++)
        if (strcmp(self->clients[i].service, service) == 0)
            return self->clients[i].client;
    config_t *config = cli_config(self);
    if (!config || self->n_clients == CLI_MAX_CLIENTS || strlen(service) >= 32)
        return NULL;
    char key[96];
    snprintf(key, sizeof key, "services.%s.router", service);
    const char *endpoint = config_str(config, key, NULL);
    if (!endpoint) {
        fprintf(stderr, "cara: no endpoint configured for service %s (%s)\n", service, key);
        return NULL;
    }
    char server_public[KEY_Z85_LEN];
    if (s_load_keys(self, config) != 0 || s_server_key(config, service, server_public) != 0)
        return NULL;
    if (!self->ctx && !(self->ctx = zmq_ctx_new())) {
        fprintf(stderr, "cara: zmq_ctx_new failed: %s\n", zmq_strerror(zmq_errno()));
        return NULL;
    }
    client_t *client = client_new(self->ctx, endpoint, &self->keys, server_public);
    if (!client) {
        fprintf(stderr, "cara: cannot connect to %s at %s\n", service, endpoint);
        return NULL;
    }
    snprintf(self->clients[self->n_clients].service, 32, "%s", service);
    self->clients[self->n_clients++].client = client;
    return client;
}

Cara__Reply *cli_call(cli_t *self, const char *service, const ProtobufCMessage *msg) {
    client_t *client = cli_client(self, service);
    if (!client)
        return NULL;
    config_t *config = cli_config(self);
    int timeout_ms = (int)config_int(config, "timeout_ms", 10000);
    int retries = (int)config_int(config, "retries", 2);
    if (timeout_ms <= 0)
        timeout_ms = 10000;
    if (retries < 0)
        retries = 0;
    // The id is chosen here, not in client_call, so that the user can be told it.
    char generated[UUID_STR_LEN];
    const char *request_id = self->request_id ? self->request_id : uuid_new(generated);
    Cara__Reply *reply = client_call(client, msg, request_id, NULL, timeout_ms, retries);
    if (!reply) {
        fprintf(stderr,
                "cara: no reply from %s after %d attempts (the request may still have been"
                " carried out)\n",
                service, retries + 1);
        s_print_retry(self, request_id);
    } else if (reply->status == CARA__REPLY__STATUS__UNAVAILABLE) {
        s_print_retry(self, request_id);
    }
    return reply;
}

static const char *s_status_name(Cara__Reply__Status status) {
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&cara__reply__status__descriptor, (int)status);
    return v ? v->name : "UNKNOWN";
}

int cli_print_reply(const Cara__Reply *reply, const ProtobufCMessageDescriptor *payload_desc) {
    json_t *doc = json_object();
    json_t *errors = json_array();
    if (!doc || !errors) {
        json_decref(doc);
        json_decref(errors);
        return CLI_FAIL;
    }
    json_object_set_new(doc, "status", json_string(s_status_name(reply->status)));
    json_object_set_new(doc, "message", json_string(reply->message ? reply->message : ""));
    for (size_t i = 0; i < reply->n_errors; i++)
        json_array_append_new(errors, json_pack("{s:s, s:s}", "field", reply->errors[i]->field,
                                                "reason", reply->errors[i]->reason));
    json_object_set_new(doc, "errors", errors);
    if (!payload_desc && reply->type && *reply->type)
        payload_desc = cli_descriptor(reply->type);
    if (reply->payload.len > 0 && payload_desc) {
        ProtobufCMessage *payload =
            protobuf_c_message_unpack(payload_desc, NULL, reply->payload.len, reply->payload.data);
        json_t *result = payload ? pbjson_from_message(payload) : NULL;
        if (result)
            json_object_set_new(doc, "result", result);
        else
            json_object_set_new(doc, "result_error",
                                json_string("the reply's payload could not be decoded"));
        if (payload)
            protobuf_c_message_free_unpacked(payload, NULL);
    }
    if (cli_print_json(doc) != 0)
        return CLI_FAIL;
    switch (reply->status) {
    case CARA__REPLY__STATUS__OK:
        return CLI_OK;
    case CARA__REPLY__STATUS__INVALID:
        return CLI_INVALID;
    default:
        return CLI_FAIL;
    }
}

const char *cli_opt(int argc, char **argv, const char *name, const char *fallback) {
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return fallback;
}

int cli_flag(int argc, char **argv, const char *name) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return 1;
    return 0;
}

int cli_stdout_flush(void) {
    if (fflush(stdout) == 0 && !ferror(stdout))
        return 0;
    fprintf(stderr, "cara: cannot write to stdout: %s\n", strerror(errno));
    return -1;
}

int cli_batch_went_back(const Cara__Batch *batch, const char *service, uint64_t after) {
    if (!batch->head_below_after)
        return 0;
    fprintf(stderr,
            "cara: %s's stream ends at seq %" PRIu64 ", below --after %" PRIu64
            ": it went back (restored from a backup?), and the events it numbers up to %" PRIu64
            " would be skipped from this cursor. Ask the operator (OPERATIONS.md, Backup and"
            " restore) before fetching on.\n",
            service, batch->stream_head, after, after);
    return 1;
}

int cli_print_json(json_t *doc) {
    if (!doc) {
        fprintf(stderr, "cara: out of memory\n");
        return -1;
    }
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    json_decref(doc);
    if (!text) {
        fprintf(stderr, "cara: out of memory\n");
        return -1;
    }
    fputs(text, stdout);
    fputc('\n', stdout);
    free(text);
    return cli_stdout_flush();
}
