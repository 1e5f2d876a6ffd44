// Police integration commands (intake):
//   cara referral submit FILE.json [--json]
//   cara referral show ID
//   cara referral amend ID FILE.json --reason R
//   cara referral withdraw ID --reason-code C --reason R
//   cara referral rejected [--after ID] [--limit N]
//   cara outcomes [--after N] [--max M]
// FILE may be "-" for standard input. Output is JSON; exit 0 on success, 2 on a validation error
// (the errors printed as JSON, whether found by intake or in the JSON file itself), 1 otherwise.
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cara/pbjson.h"
#include "cli.h"
#include "intake.pb-c.h"

#define OUTCOMES_BATCH 500

// Prints a validation failure found before sending (same shape as cli_print_reply).
static int s_print_invalid(const char *field, const char *reason) {
    cli_print_json(json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "status", "INVALID", "message",
                             "the referral document is not valid", "errors", "field", field,
                             "reason", reason));
    return CLI_INVALID;
}

// Reads a referral document (FILE or "-"). Returns the message, or NULL with the problem
// printed (and *rc set to the exit code).
static Cara__Referral *s_load_referral(const char *path, int *rc) {
    json_error_t jerr;
    json_t *doc =
        strcmp(path, "-") == 0 ? json_loadf(stdin, 0, &jerr) : json_load_file(path, 0, &jerr);
    if (!doc) {
        if (jerr.line < 0 && strcmp(path, "-") != 0) {
            fprintf(stderr, "cara: cannot read %s: %s\n", path, jerr.text);
            *rc = CLI_FAIL;
            return NULL;
        }
        char reason[300];
        snprintf(reason, sizeof reason, "not JSON (line %d, column %d): %s", jerr.line, jerr.column,
                 jerr.text);
        *rc = s_print_invalid("(document)", reason);
        return NULL;
    }
    char err[512] = "";
    Cara__Referral *r =
        (Cara__Referral *)pbjson_to_message(&cara__referral__descriptor, doc, err, sizeof err);
    json_decref(doc);
    if (!r) {
        // pbjson writes "field.path: reason".
        char *sep = strstr(err, ": ");
        if (sep) {
            *sep = '\0';
            *rc = s_print_invalid(err, sep + 2);
        } else {
            *rc = s_print_invalid("(document)", err);
        }
    }
    return r;
}

// Sends msg to intake and prints the reply. Returns the exit code.
static int s_call(cli_t *cli, const ProtobufCMessage *msg, const ProtobufCMessageDescriptor *desc) {
    Cara__Reply *reply = cli_call(cli, "intake", msg);
    if (!reply)
        return CLI_FAIL;
    int rc = cli_print_reply(reply, desc);
    cara__reply__free_unpacked(reply, NULL);
    return rc;
}

static int s_submit(cli_t *cli, int argc, char **argv) {
    if (argc < 3 || (argv[2][0] == '-' && argv[2][1])) {
        fprintf(stderr, "usage: cara referral submit FILE.json [--json]\n");
        return CLI_FAIL;
    }
    int rc = CLI_FAIL;
    Cara__Referral *r = s_load_referral(argv[2], &rc);
    if (!r)
        return rc;
    Cara__SubmitReferral cmd = CARA__SUBMIT_REFERRAL__INIT;
    cmd.referral = r;
    Cara__Reply *reply = cli_call(cli, "intake", &cmd.base);
    cara__referral__free_unpacked(r, NULL);
    if (!reply)
        return CLI_FAIL;
    Cara__ReferralAccepted *ok =
        reply->status == CARA__REPLY__STATUS__OK && !cli_flag(argc, argv, "--json")
            ? cara__referral_accepted__unpack(NULL, reply->payload.len, reply->payload.data)
            : NULL;
    if (ok) {
        // One line a script can read as well: id, deadline, whether it was a repeat.
        printf("referral %s accepted; compliance deadline %s%s\n", ok->referral_id,
               ok->compliance_deadline, ok->duplicate ? " (already submitted: first answer)" : "");
        cara__referral_accepted__free_unpacked(ok, NULL);
        rc = CLI_OK;
    } else {
        rc = cli_print_reply(reply, &cara__referral_accepted__descriptor);
    }
    cara__reply__free_unpacked(reply, NULL);
    return rc;
}

static int s_show(cli_t *cli, int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: cara referral show ID\n");
        return CLI_FAIL;
    }
    Cara__ShowReferral cmd = CARA__SHOW_REFERRAL__INIT;
    cmd.referral_id = argv[2];
    return s_call(cli, &cmd.base, &cara__referral_view__descriptor);
}

static int s_amend(cli_t *cli, int argc, char **argv) {
    const char *reason = cli_opt(argc, argv, "--reason", NULL);
    if (argc < 4 || !reason) {
        fprintf(stderr, "usage: cara referral amend ID FILE.json --reason R\n");
        return CLI_FAIL;
    }
    int rc = CLI_FAIL;
    Cara__Referral *r = s_load_referral(argv[3], &rc);
    if (!r)
        return rc;
    Cara__AmendReferral cmd = CARA__AMEND_REFERRAL__INIT;
    cmd.referral_id = argv[2];
    cmd.reason = (char *)reason;
    cmd.referral = r;
    rc = s_call(cli, &cmd.base, &cara__referral_amended__descriptor);
    cara__referral__free_unpacked(r, NULL);
    return rc;
}

static int s_withdraw(cli_t *cli, int argc, char **argv) {
    const char *code = cli_opt(argc, argv, "--reason-code", NULL);
    const char *reason = cli_opt(argc, argv, "--reason", NULL);
    if (argc < 3 || !code || !reason) {
        fprintf(stderr, "usage: cara referral withdraw ID --reason-code C --reason R\n"
                        "  C: caution_rescinded | error | other\n");
        return CLI_FAIL;
    }
    Cara__WithdrawReferral cmd = CARA__WITHDRAW_REFERRAL__INIT;
    cmd.referral_id = argv[2];
    cmd.reason_code = (char *)code;
    cmd.reason = (char *)reason;
    return s_call(cli, &cmd.base, &cara__referral_withdrawn__descriptor);
}

static int s_rejected(cli_t *cli, int argc, char **argv) {
    Cara__ListRejectedSubmissions cmd = CARA__LIST_REJECTED_SUBMISSIONS__INIT;
    char *end = NULL;
    const char *after = cli_opt(argc, argv, "--after", "0");
    const char *limit = cli_opt(argc, argv, "--limit", "50");
    cmd.after_id = strtoll(after, &end, 10);
    if (*end || cmd.after_id < 0) {
        fprintf(stderr, "usage: cara referral rejected [--after ID] [--limit N]\n");
        return CLI_FAIL;
    }
    cmd.limit = (uint32_t)strtoul(limit, &end, 10);
    if (*end) {
        fprintf(stderr, "usage: cara referral rejected [--after ID] [--limit N]\n");
        return CLI_FAIL;
    }
    return s_call(cli, &cmd.base, &cara__rejected_submission_list__descriptor);
}

// cara referral submit|show|amend|withdraw|rejected ...
int cmd_referral(cli_t *cli, int argc, char **argv) {
    const char *sub = argc > 1 ? argv[1] : "";
    if (strcmp(sub, "submit") == 0)
        return s_submit(cli, argc, argv);
    if (strcmp(sub, "show") == 0)
        return s_show(cli, argc, argv);
    if (strcmp(sub, "amend") == 0)
        return s_amend(cli, argc, argv);
    if (strcmp(sub, "withdraw") == 0)
        return s_withdraw(cli, argc, argv);
    if (strcmp(sub, "rejected") == 0)
        return s_rejected(cli, argc, argv);
    fprintf(stderr, "usage: cara referral submit|show|amend|withdraw|rejected ...\n");
    return CLI_FAIL;
}

static int s_parse_u64(const char *text, uint64_t *out) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (!*text || *text == '-' || *end || errno != 0)
        return -1;
    *out = v;
    return 0;
}

// Prints one OutcomeUpdated as a JSON line {"seq": N, "outcome": {...}}, or one
// SafetyConcernRaised as {"seq": N, "safety_concern": {...}}. Returns 0 or -1.
static int s_print_outcome(const Cara__StreamEvent *ev) {
    Cara__Envelope *env = envelope_unpack(ev->envelope.data, ev->envelope.len);
    if (!env)
        return 0;
    const char *key = NULL;
    ProtobufCMessage *shown = NULL, *msg = NULL;
    if (strcmp(env->type, "cara.OutcomeUpdated") == 0 &&
        (msg = envelope_payload(env, &cara__outcome_updated__descriptor)) &&
        ((Cara__OutcomeUpdated *)msg)->outcome) {
        key = "outcome";
        shown = &((Cara__OutcomeUpdated *)msg)->outcome->base;
    } else if (strcmp(env->type, "cara.SafetyConcernRaised") == 0 &&
               (msg = envelope_payload(env, &cara__safety_concern_raised__descriptor))) {
        key = "safety_concern";
        shown = msg;
    }
    int rc = 0;
    if (key) {
        json_t *line =
            json_pack("{s:I, s:o}", "seq", (json_int_t)ev->seq, key, pbjson_from_message(shown));
        char *text = line ? json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (text)
            printf("%s\n", text);
        else
            rc = -1;
        free(text);
        json_decref(line);
    }
    if (msg)
        protobuf_c_message_free_unpacked(msg, NULL);
    cara__envelope__free_unpacked(env, NULL);
    return rc;
}

// cara outcomes [--after N] [--max M]: the force's outcomes after seq N as JSON lines, then on
// stderr where to continue: {"last": L, "head": H}. L is never past what reached stdout: each
// page is flushed before the cursor moves over it, and a write error stops with exit 1.
int cmd_outcomes(cli_t *cli, int argc, char **argv) {
    uint64_t after = 0, max = 0;
    if (s_parse_u64(cli_opt(argc, argv, "--after", "0"), &after) != 0 ||
        s_parse_u64(cli_opt(argc, argv, "--max", "0"), &max) != 0) {
        fprintf(stderr, "usage: cara outcomes [--after N] [--max M]\n");
        return CLI_FAIL;
    }
    uint64_t printed = 0, head = 0, written = after;
    int rc = CLI_OK;
    while (rc == CLI_OK) {
        Cara__Fetch req = CARA__FETCH__INIT;
        req.stream = "intake";
        req.after = after;
        req.max = OUTCOMES_BATCH;
        Cara__Reply *reply = cli_call(cli, "intake", &req.base);
        if (!reply)
            return CLI_FAIL;
        if (reply->status != CARA__REPLY__STATUS__OK) {
            rc = cli_print_reply(reply, NULL);
            cara__reply__free_unpacked(reply, NULL);
            return rc == CLI_OK ? CLI_FAIL : rc;
        }
        Cara__Batch *batch = cara__batch__unpack(NULL, reply->payload.len, reply->payload.data);
        cara__reply__free_unpacked(reply, NULL);
        if (!batch) {
            fprintf(stderr, "cara: the reply is not a cara.Batch\n");
            return CLI_FAIL;
        }
        if (cli_batch_went_back(batch, "intake", after)) {
            cara__batch__free_unpacked(batch, NULL);
            rc = CLI_FAIL;
            break;
        }
        uint64_t before = after;
        size_t i = 0;
        for (; i < batch->n_events && (max == 0 || printed < max); i++) {
            if (s_print_outcome(batch->events[i]) != 0) {
                fprintf(stderr, "cara: out of memory at seq %" PRIu64 "\n", batch->events[i]->seq);
                rc = CLI_FAIL; // stop before it: the cursor must not pass an unprinted event
                break;
            }
            printed++;
            after = batch->events[i]->seq;
        }
        // Events this force may not see are passed over: continue after the last examined.
        if (rc == CLI_OK && i == batch->n_events && batch->last > after)
            after = batch->last;
        head = batch->head;
        cara__batch__free_unpacked(batch, NULL);
        if (cli_stdout_flush() != 0)
            rc = CLI_FAIL; // some of this page may be lost: the cursor stays before it
        else
            written = after;
        if (after == before || after >= head || (max && printed >= max))
            break;
    }
    fprintf(stderr, "{\"last\": %" PRIu64 ", \"head\": %" PRIu64 "}\n", written, head);
    return rc;
}
