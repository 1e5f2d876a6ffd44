#include "cara/pbstrip.h"

#include <stdint.h>
#include <stdlib.h>

static void s_free(ProtobufCAllocator *allocator, void *pointer) {
    if (!pointer)
        return;
    if (allocator)
        allocator->free(allocator->allocator_data, pointer);
    else
        free(pointer);
}

void pbstrip_unknown(ProtobufCMessage *msg, ProtobufCAllocator *allocator) {
    if (!msg || !msg->descriptor)
        return;
    // As protobuf_c_message_free_unpacked frees them: each field's data, then the array.
    for (unsigned i = 0; i < msg->n_unknown_fields; i++)
        s_free(allocator, msg->unknown_fields[i].data);
    s_free(allocator, msg->unknown_fields);
    msg->unknown_fields = NULL;
    msg->n_unknown_fields = 0;
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    char *base = (char *)msg;
    for (unsigned f = 0; f < desc->n_fields; f++) {
        const ProtobufCFieldDescriptor *field = &desc->fields[f];
        if (field->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (field->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + field->quantifier_offset);
            ProtobufCMessage **items = *(ProtobufCMessage ***)(base + field->offset);
            for (size_t k = 0; items && k < n; k++)
                pbstrip_unknown(items[k], allocator);
            continue;
        }
        // A oneof member holds a message only when the oneof's case says it is this field.
        if ((field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + field->quantifier_offset) != field->id)
            continue;
        pbstrip_unknown(*(ProtobufCMessage **)(base + field->offset), allocator);
    }
}

void pbstrip_text(char **field) {
    if (*field && *field != protobuf_c_empty_string)
        free(*field);
    *field = (char *)protobuf_c_empty_string;
}
