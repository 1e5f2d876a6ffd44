// JSON <-> protobuf, 1:1 by the .proto field names (jansson at the edge). Strings, bools,
// integers, nested messages, repeated fields and enums (by value name) are supported; bytes
// are base64. Unknown JSON fields are an error that names the field.
#ifndef CARA_PBJSON_H
#define CARA_PBJSON_H
#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

// Converts a message to a new JSON object (fields at their default values are included).
// Returns NULL on allocation failure.
json_t *pbjson_from_message(const ProtobufCMessage *msg);
// Builds a message of type desc from a JSON object. On error returns NULL and writes
// "field.path: reason" into err. Free with protobuf_c_message_free_unpacked(msg, NULL).
ProtobufCMessage *pbjson_to_message(const ProtobufCMessageDescriptor *desc, json_t *json,
                                    char *err, size_t err_size);

#endif
