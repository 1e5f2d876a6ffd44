// What views leave out of an unpacked message. Unknown protobuf fields: protobuf-c keeps the fields
// a message's descriptor does not know when it unpacks, and packs them again, so a field of a newer
// schema (an identifying one, say) would pass through a de-identifying view byte for byte. Views
// for billing and national strip them before they encode.
#ifndef CARA_PBSTRIP_H
#define CARA_PBSTRIP_H
#include <protobuf-c/protobuf-c.h>

// Removes the unknown fields of msg and of every sub-message it holds (singular, repeated and
// oneof), freeing them with allocator: the one msg was unpacked with (NULL: protobuf-c's default,
// malloc/free). Only for unpacked messages (it frees what protobuf-c allocated). NULL is a no-op.
void pbstrip_unknown(ProtobufCMessage *msg, ProtobufCAllocator *allocator);
// Blanks a string field of an unpacked message (unpacked with the default allocator): frees what
// it held and leaves it pointing at protobuf-c's static empty string, which a later
// free_unpacked leaves alone (a field unpacked empty already points there: never freed).
void pbstrip_text(char **field);

#endif
