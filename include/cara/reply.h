// Building the Reply to a command: a status, a message, every field error found, and an
// optional payload message.
#ifndef CARA_REPLY_H
#define CARA_REPLY_H
#include <stddef.h>
#include <stdint.h>

#include "cara/envelope.h"

typedef struct {
    Cara__Reply msg;  // what goes on the wire; fields below own its storage
    size_t cap;
} reply_t;

void reply_init(reply_t *self);
void reply_clear(reply_t *self);
// Sets the status and message (copied).
void reply_status(reply_t *self, Cara__Reply__Status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
// Adds a field error and sets the status to INVALID. Returns -1 (so validators can
// `return reply_field_error(...)`).
int reply_field_error(reply_t *self, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
// Sets status OK and the payload (encoded now; payload may be NULL). Returns 0 or -1.
int reply_ok(reply_t *self, const ProtobufCMessage *payload);
// Copies a decoded reply (e.g. a stored first answer) into self. Returns 0 or -1.
int reply_copy_from(reply_t *self, const Cara__Reply *from);
size_t reply_error_count(const reply_t *self);

#endif
