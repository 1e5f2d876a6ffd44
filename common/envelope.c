#include "cara/envelope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cara/timeutil.h"
#include "cara/uuid.h"

static char s_producer[64] = "cara";

void envelope_set_producer(const char *name) {
    snprintf(s_producer, sizeof s_producer, "%s", name ? name : "cara");
}

const char *envelope_producer(void) {
    return s_producer;
}

int envelope_encode_message(const ProtobufCMessage *msg, uint8_t **out, size_t *len) {
    size_t size = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return -1;
    if (protobuf_c_message_pack(msg, buf) != size) {
        free(buf);
        return -1;
    }
    *out = buf;
    *len = size;
    return 0;
}

int envelope_pack(const ProtobufCMessage *payload, const char *event_id, const char *correlation_id,
                  uint8_t **out, size_t *len, char *id_out) {
    char id[UUID_STR_LEN], when[40];
    uint8_t *body = NULL;
    size_t body_len = 0;
    // A request id is how a retry is recognised: never cut one short.
    if (event_id && !uuid_valid(event_id))
        return -1;
    if (envelope_encode_message(payload, &body, &body_len) != 0)
        return -1;
    if (event_id)
        snprintf(id, sizeof id, "%s", event_id);
    else
        uuid_new(id);
    Cara__Envelope env = CARA__ENVELOPE__INIT;
    env.event_id = id;
    env.type = (char *)payload->descriptor->name;
    env.schema_version = ENVELOPE_SCHEMA_VERSION;
    env.occurred_at = time_format_iso(time_now_us(), when, sizeof when);
    env.producer = s_producer;
    env.correlation_id = (char *)(correlation_id ? correlation_id : "");
    env.payload.data = body;
    env.payload.len = body_len;
    int rc = envelope_encode_message(&env.base, out, len);
    free(body);
    if (rc == 0 && id_out)
        strcpy(id_out, id);
    return rc;
}

Cara__Envelope *envelope_unpack(const uint8_t *data, size_t len) {
    return cara__envelope__unpack(NULL, len, data);
}

ProtobufCMessage *envelope_payload(const Cara__Envelope *env,
                                   const ProtobufCMessageDescriptor *desc) {
    if (!env || !env->type || strcmp(env->type, desc->name) != 0 ||
        env->schema_version > ENVELOPE_SCHEMA_VERSION)
        return NULL;
    return protobuf_c_message_unpack(desc, NULL, env->payload.len, env->payload.data);
}
