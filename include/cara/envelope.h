// Envelopes: every frame on the wire is one cara.Envelope whose payload is another message.
#ifndef CARA_ENVELOPE_H
#define CARA_ENVELOPE_H
#include <stddef.h>
#include <stdint.h>

#include "envelope.pb-c.h"

#define ENVELOPE_SCHEMA_VERSION 1

// Sets the producer name stamped on envelopes made by this process.
void envelope_set_producer(const char *name);
const char *envelope_producer(void);

// Builds and encodes an envelope around payload. event_id NULL means a fresh UUID; one given must
// be a UUID. The id used is copied to id_out if given. Returns 0 and a malloc'd buffer (caller
// frees), or -1.
int envelope_pack(const ProtobufCMessage *payload, const char *event_id, const char *correlation_id,
                  uint8_t **out, size_t *len, char *id_out);
// Decodes an envelope. Returns NULL if the bytes are not a valid envelope. Caller frees with
// cara__envelope__free_unpacked(env, NULL).
Cara__Envelope *envelope_unpack(const uint8_t *data, size_t len);
// Decodes the payload if the envelope's type is desc's and its version is one this build
// reads. Returns NULL otherwise. Caller frees with protobuf_c_message_free_unpacked.
ProtobufCMessage *envelope_payload(const Cara__Envelope *env,
                                   const ProtobufCMessageDescriptor *desc);
// Encodes any message into a malloc'd buffer. Returns 0 or -1.
int envelope_encode_message(const ProtobufCMessage *msg, uint8_t **out, size_t *len);

#endif
