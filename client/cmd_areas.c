// `cara triage|cohort|booking|attendance|contact|victim|cases`: the staff commands of triage
// and booking. Each is one request message; its fields come from `--field value` options
// (named as in the .proto; numbers, booleans, comma-separated lists and JSON for nested
// fields) and/or a whole JSON document with `--json FILE` ("-" = stdin); an option overrides
// the document's field of the same name.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing.pb-c.h"
#include "booking.pb-c.h"
#include "cara/pbjson.h"
#include "cli.h"
#include "national.pb-c.h"
#include "triage.pb-c.h"

typedef struct {
    const char *area, *verb, *service;
    const ProtobufCMessageDescriptor *request, *reply;
} s_action_t;

static const s_action_t s_actions[] = {
    {"triage", "decide", "triage", &cara__triage_decide__descriptor, NULL},
    {"triage", "needs", "triage", &cara__record_needs__descriptor, NULL},
    {"triage", "overdue", "triage", &cara__list_overdue__descriptor,
     &cara__triage_case_list__descriptor},
    {"triage", "show", "triage", &cara__show_triage_case__descriptor,
     &cara__triage_case_list__descriptor},
    {"triage", "alerts", "triage", &cara__list_safety_alerts__descriptor,
     &cara__triage_case_list__descriptor},
    {"cohort", "create", "booking", &cara__create_cohort__descriptor,
     &cara__cohort_ref__descriptor},
    {"cohort", "list", "booking", &cara__list_cohorts__descriptor, &cara__cohort_list__descriptor},
    {"cohort", "cancel", "booking", &cara__cancel_cohort__descriptor, NULL},
    {"booking", "book", "booking", &cara__book_seat__descriptor, &cara__seat_result__descriptor},
    {"booking", "cancel", "booking", &cara__cancel_booking__descriptor, NULL},
    {"booking", "shortfall", "booking", &cara__shortfall__descriptor,
     &cara__shortfall_report__descriptor},
    {"attendance", "record", "booking", &cara__record_attendance__descriptor, NULL},
    {"contact", "record", "booking", &cara__record_contact__descriptor, NULL},
    {"victim", "record", "booking", &cara__record_victim_contact__descriptor, NULL},
    {"victim", "list", "booking", &cara__list_victim_contacts__descriptor,
     &cara__victim_contact_list__descriptor},
    {"cases", NULL, "booking", &cara__list_cases__descriptor, &cara__case_list__descriptor},
    {"contract", "add", "billing", &cara__add_contract__descriptor, NULL},
    {"contract", "vary", "billing", &cara__vary_contract__descriptor, NULL},
    {"contract", "status", "billing", &cara__contract_status_request__descriptor,
     &cara__contract_status__descriptor},
    {"training", "record", "billing", &cara__record_training__descriptor, NULL},
    {"invoice", "run", "billing", &cara__run_invoices__descriptor, NULL},
    {"invoice", "list", "billing", &cara__list_invoices__descriptor,
     &cara__invoice_list__descriptor},
    {"national", "export", "national", &cara__national_export__descriptor,
     &cara__national_export_result__descriptor},
    {NULL, NULL, NULL, NULL, NULL},
};

static int s_invalid(const char *field, const char *reason) {
    cli_print_json(json_pack("{s:s, s:[{s:s, s:s}]}", "status", "INVALID", "errors", "field", field,
                             "reason", reason));
    return CLI_INVALID;
}

// One option value as JSON, by the field's type.
static json_t *s_value(const ProtobufCFieldDescriptor *f, const char *text) {
    if (f->label == PROTOBUF_C_LABEL_REPEATED && f->type == PROTOBUF_C_TYPE_STRING) {
        json_t *arr = json_array();
        char *copy = strdup(text), *save = NULL;
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
            json_array_append_new(arr, json_string(tok));
        free(copy);
        return arr;
    }
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        return json_string(text);
    case PROTOBUF_C_TYPE_BOOL:
        return strcmp(text, "true") == 0    ? json_true()
               : strcmp(text, "false") == 0 ? json_false()
                                            : NULL;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_INT64: {
        char *end;
        long long n = strtoll(text, &end, 10);
        return *text && !*end ? json_integer(n) : NULL;
    }
    default:
        return json_loads(text, JSON_DECODE_ANY, NULL); // nested messages, lists of them
    }
}

// The request field a positional FILE.json fills (`cara contract add FILE.json`), or NULL.
static const char *s_wrap(const s_action_t *a) {
    return a->request == &cara__add_contract__descriptor ? "contract" : NULL;
}

// Sets the request fields named by `--field value` options in doc, over what doc already has
// (a --json document's fields are overridden, and the user is told when a value changes).
// Skips --json FILE and, if skip_first, argv[0] (a positional FILE.json). Returns 0, or the exit
// code of the refusal it printed.
static int s_merge_options(const s_action_t *a, json_t *doc, int argc, char **argv,
                           int skip_first) {
    for (int i = skip_first ? 1 : 0; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0)
            continue;
        if (strcmp(argv[i], "--json") == 0) {
            i++;
            continue;
        }
        char name[64];
        snprintf(name, sizeof name, "%s", argv[i] + 2);
        for (char *p = name; *p; p++)
            if (*p == '-')
                *p = '_';
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(a->request, name);
        if (!f || i + 1 >= argc)
            return s_invalid(name, f ? "needs a value" : "no such field for this command");
        json_t *v = s_value(f, argv[++i]);
        if (!v)
            return s_invalid(name, "value does not fit the field's type");
        json_t *had = json_object_get(doc, name);
        if (had && !json_equal(had, v))
            fprintf(stderr, "cara: --%s overrides the document's %s\n", name, name);
        json_object_set_new(doc, name, v);
    }
    return 0;
}

static int s_run(cli_t *cli, const s_action_t *a, int argc, char **argv) {
    // argv[0] is already an option here (area and verb are consumed), so scan from 0.
    const char *json_path = NULL;
    for (int i = 0; i + 1 < argc; i++)
        if (strcmp(argv[i], "--json") == 0)
            json_path = argv[i + 1];
    json_t *doc = NULL;
    json_error_t jerr;
    int positional = s_wrap(a) && argc > 0 && strncmp(argv[0], "--", 2) != 0;
    if (positional) {
        json_t *inner = json_load_file(argv[0], 0, &jerr);
        if (!inner)
            return s_invalid(argv[0], jerr.text);
        doc = json_object();
        json_object_set_new(doc, s_wrap(a), inner);
    } else if (json_path) {
        doc = strcmp(json_path, "-") == 0 ? json_loadf(stdin, 0, &jerr)
                                          : json_load_file(json_path, 0, &jerr);
        if (!doc)
            return s_invalid("json", jerr.text);
        if (!json_is_object(doc)) {
            json_decref(doc);
            return s_invalid("json", "the document must be a JSON object");
        }
    } else {
        doc = json_object();
    }
    if (!doc) {
        fprintf(stderr, "cara: out of memory\n");
        return CLI_FAIL;
    }
    // Options given with a document override its fields: `triage needs --referral_id ID --json
    // FILE` records the needs on ID, whatever referral_id the file holds.
    int refused = s_merge_options(a, doc, argc, argv, positional);
    if (refused) {
        json_decref(doc);
        return refused;
    }
    char err[256];
    ProtobufCMessage *msg = pbjson_to_message(a->request, doc, err, sizeof err);
    json_decref(doc);
    if (!msg)
        return s_invalid("json", err);
    Cara__Reply *reply = cli_call(cli, a->service, msg);
    protobuf_c_message_free_unpacked(msg, NULL);
    if (!reply)
        return CLI_FAIL;
    // An export is a document: print it as it is (JSON, CSV or HTML), not wrapped.
    if (a->reply == &cara__national_export_result__descriptor &&
        reply->status == CARA__REPLY__STATUS__OK) {
        Cara__NationalExportResult *res =
            cara__national_export_result__unpack(NULL, reply->payload.len, reply->payload.data);
        int ok = res && fputs(res->content, stdout) >= 0 && cli_stdout_flush() == 0;
        if (res)
            cara__national_export_result__free_unpacked(res, NULL);
        cara__reply__free_unpacked(reply, NULL);
        return ok ? CLI_OK : CLI_FAIL;
    }
    int rc = cli_print_reply(reply, a->reply);
    cara__reply__free_unpacked(reply, NULL);
    return rc;
}

int cmd_area(cli_t *cli, int argc, char **argv) {
    const char *area = argv[0];
    const char *verb = argc > 1 ? argv[1] : "";
    for (const s_action_t *a = s_actions; a->area; a++) {
        if (strcmp(a->area, area) != 0)
            continue;
        if (!a->verb)
            return s_run(cli, a, argc - 1, argv + 1);
        if (strcmp(a->verb, verb) == 0)
            return s_run(cli, a, argc - 2, argv + 2);
    }
    fprintf(stderr, "cara %s: unknown command \"%s\"; see `cara help`\n", area, verb);
    return CLI_FAIL;
}
