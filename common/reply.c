#include "cara/reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void reply_init(reply_t *self) {
    memset(self, 0, sizeof *self);
    cara__reply__init(&self->msg);
}

void reply_clear(reply_t *self) {
    for (size_t i = 0; i < self->msg.n_errors; i++) {
        free(self->msg.errors[i]->field);
        free(self->msg.errors[i]->reason);
        free(self->msg.errors[i]);
    }
    free(self->msg.errors);
    if (self->msg.message != protobuf_c_empty_string)
        free(self->msg.message);
    if (self->msg.type != protobuf_c_empty_string)
        free(self->msg.type);
    free(self->msg.payload.data);
    reply_init(self);
}

static char *s_vformat(const char *fmt, va_list ap) {
    char *out = NULL;
    if (vasprintf(&out, fmt, ap) < 0)
        return NULL;
    return out;
}

void reply_status(reply_t *self, Cara__Reply__Status status, const char *fmt, ...) {
    self->msg.status = status;
    va_list ap;
    va_start(ap, fmt);
    char *text = s_vformat(fmt, ap);
    va_end(ap);
    if (text) {
        if (self->msg.message != protobuf_c_empty_string)
            free(self->msg.message);
        self->msg.message = text;
    }
}

int reply_field_error(reply_t *self, const char *field, const char *fmt, ...) {
    self->msg.status = CARA__REPLY__STATUS__INVALID;
    if (self->msg.n_errors == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 8;
        Cara__FieldError **grown = realloc(self->msg.errors, cap * sizeof *grown);
        if (!grown)
            return -1;
        self->msg.errors = grown;
        self->cap = cap;
    }
    Cara__FieldError *e = malloc(sizeof *e);
    if (!e)
        return -1;
    cara__field_error__init(e);
    va_list ap;
    va_start(ap, fmt);
    e->reason = s_vformat(fmt, ap);
    va_end(ap);
    e->field = strdup(field);
    if (!e->reason || !e->field) {
        free(e->reason);
        free(e->field);
        free(e);
        return -1;
    }
    self->msg.errors[self->msg.n_errors++] = e;
    return -1;
}

int reply_ok(reply_t *self, const ProtobufCMessage *payload) {
    self->msg.status = CARA__REPLY__STATUS__OK;
    if (!payload)
        return 0;
    free(self->msg.payload.data);
    self->msg.payload.data = NULL;
    if (envelope_encode_message(payload, &self->msg.payload.data, &self->msg.payload.len) != 0)
        return -1;
    if (self->msg.type != protobuf_c_empty_string)
        free(self->msg.type);
    self->msg.type = strdup(payload->descriptor->name);
    return self->msg.type ? 0 : -1;
}

int reply_copy_from(reply_t *self, const Cara__Reply *from) {
    reply_clear(self);
    self->msg.status = from->status;
    if (from->message && *from->message)
        reply_status(self, from->status, "%s", from->message);
    for (size_t i = 0; i < from->n_errors; i++)
        reply_field_error(self, from->errors[i]->field, "%s", from->errors[i]->reason);
    self->msg.status = from->status;
    if (from->type && *from->type)
        self->msg.type = strdup(from->type);
    if (from->payload.len) {
        self->msg.payload.data = malloc(from->payload.len);
        if (!self->msg.payload.data)
            return -1;
        memcpy(self->msg.payload.data, from->payload.data, from->payload.len);
        self->msg.payload.len = from->payload.len;
    }
    return 0;
}

size_t reply_error_count(const reply_t *self) { return self->msg.n_errors; }
