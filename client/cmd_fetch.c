// `cara fetch SERVICE --after N [--max M]`: a service's stream as JSON lines, one event a line,
// with payloads decoded by their type where the client knows it (cli_descriptor).
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cara/pbjson.h"
#include "cli.h"

#define FETCH_BATCH 500

// Parses a non-negative decimal. Returns 0 or -1.
static int s_parse_u64(const char *text, uint64_t *out) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (!*text || *text == '-' || *end || errno != 0)
        return -1;
    *out = v;
    return 0;
}

// The JSON line for one stream event. NULL on allocation failure.
static json_t *s_event_json(const Cara__StreamEvent *ev) {
    Cara__Envelope *env = envelope_unpack(ev->envelope.data, ev->envelope.len);
    if (!env)
        return json_pack("{s:I, s:s}", "seq", (json_int_t)ev->seq, "error",
                         "not a valid cara.Envelope");
    json_t *line = json_pack("{s:I, s:s, s:s, s:i, s:s, s:s, s:s}", "seq", (json_int_t)ev->seq,
                             "event_id", env->event_id, "type", env->type, "schema_version",
                             (int)env->schema_version, "occurred_at", env->occurred_at, "producer",
                             env->producer, "correlation_id", env->correlation_id);
    const ProtobufCMessageDescriptor *desc = cli_descriptor(env->type);
    ProtobufCMessage *payload = desc ? envelope_payload(env, desc) : NULL;
    json_t *decoded = payload ? pbjson_from_message(payload) : NULL;
    if (line && decoded) {
        json_object_set_new(line, "payload", decoded);
    } else if (line) {
        // Unknown type, newer version or undecodable: keep the bytes (base64), never crash.
        size_t size = sodium_base64_ENCODED_LEN(env->payload.len, sodium_base64_VARIANT_ORIGINAL);
        char *b64 = malloc(size);
        if (b64) {
            sodium_bin2base64(b64, size, env->payload.len ? env->payload.data : (uint8_t *)"",
                              env->payload.len, sodium_base64_VARIANT_ORIGINAL);
            json_object_set_new(line, "payload_base64", json_string(b64));
            free(b64);
        }
        json_decref(decoded);
    }
    if (payload)
        protobuf_c_message_free_unpacked(payload, NULL);
    cara__envelope__free_unpacked(env, NULL);
    return line;
}

// cara fetch SERVICE [--after N] [--max M]: prints up to M events (default 100) after seq N
// (default 0), then on stderr where to continue: {"last": L, "head": H}. L is never past what
// reached stdout: each page is flushed before the cursor moves over it, and a write error stops
// the fetch with exit 1 and L the last seq known written.
int cmd_fetch(cli_t *cli, int argc, char **argv) {
    const char *service = argc > 1 && argv[1][0] != '-' ? argv[1] : NULL;
    uint64_t after = 0, max = 100;
    if (!service || s_parse_u64(cli_opt(argc, argv, "--after", "0"), &after) != 0 ||
        s_parse_u64(cli_opt(argc, argv, "--max", "100"), &max) != 0 || max == 0) {
        fprintf(stderr, "usage: cara fetch SERVICE [--after N] [--max M]  (M > 0)\n");
        return CLI_FAIL;
    }
    uint64_t printed = 0, head = 0, written = after;
    int rc = CLI_OK;
    while (printed < max && rc == CLI_OK) {
        Cara__Fetch req = CARA__FETCH__INIT;
        req.stream = (char *)service;
        req.after = after;
        req.max = (uint32_t)(max - printed < FETCH_BATCH ? max - printed : FETCH_BATCH);
        Cara__Reply *reply = cli_call(cli, service, &req.base);
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
        if (cli_batch_went_back(batch, service, after)) {
            cara__batch__free_unpacked(batch, NULL);
            rc = CLI_FAIL;
            break;
        }
        uint64_t before = after;
        size_t i = 0;
        for (; i < batch->n_events && printed < max; i++) {
            json_t *line = s_event_json(batch->events[i]);
            char *text = line ? json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
            json_decref(line);
            if (!text) {
                fprintf(stderr, "cara: out of memory at seq %" PRIu64 "\n", batch->events[i]->seq);
                rc = CLI_FAIL; // stop before it: the cursor must not pass an unprinted event
                break;
            }
            printf("%s\n", text);
            free(text);
            printed++;
            after = batch->events[i]->seq;
        }
        // Events this identity may not see are passed over: continue after the last examined.
        if (rc == CLI_OK && printed < max && batch->last > after)
            after = batch->last;
        head = batch->head;
        cara__batch__free_unpacked(batch, NULL);
        if (cli_stdout_flush() != 0)
            rc = CLI_FAIL; // some of this page may be lost: the cursor stays before it
        else
            written = after;
        if (after == before || after >= head)
            break; // caught up (or no progress)
    }
    fprintf(stderr, "{\"last\": %" PRIu64 ", \"head\": %" PRIu64 "}\n", written, head);
    return rc;
}
