#include "intake_diff.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The value of a field as text (malloc'd), or NULL on allocation failure.
static char *s_text(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f) {
    const char *member = msg ? (const char *)msg + f->offset : NULL;
    char buf[32];
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        json_t *list = json_array();
        size_t n = msg ? *(const size_t *)((const char *)msg + f->quantifier_offset) : 0;
        for (size_t i = 0; list && i < n && f->type == PROTOBUF_C_TYPE_STRING; i++)
            json_array_append_new(list, json_string((*(char *const *const *)member)[i]));
        char *text = list ? json_dumps(list, JSON_COMPACT) : NULL;
        json_decref(list);
        return text;
    }
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = member ? *(char *const *)member : NULL;
        return strdup(s ? s : "");
    }
    case PROTOBUF_C_TYPE_BOOL:
        return strdup(member && *(const protobuf_c_boolean *)member ? "true" : "false");
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        snprintf(buf, sizeof buf, "%" PRIu32, member ? *(const uint32_t *)member : 0);
        return strdup(buf);
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_ENUM:
        snprintf(buf, sizeof buf, "%" PRId32, member ? *(const int32_t *)member : 0);
        return strdup(buf);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
        snprintf(buf, sizeof buf, "%" PRId64, member ? *(const int64_t *)member : 0);
        return strdup(buf);
    case PROTOBUF_C_TYPE_UINT64:
        snprintf(buf, sizeof buf, "%" PRIu64, member ? *(const uint64_t *)member : 0);
        return strdup(buf);
    default:
        return strdup("");
    }
}

static int s_add(intake_diff_t *out, const char *path, char *old_value, char *new_value) {
    Cara__FieldChange *c = NULL;
    if (!old_value || !new_value)
        goto fail;
    if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 8;
        Cara__FieldChange **grown = realloc(out->items, cap * sizeof *grown);
        if (!grown)
            goto fail;
        out->items = grown;
        out->cap = cap;
    }
    c = malloc(sizeof *c);
    if (!c)
        goto fail;
    cara__field_change__init(c);
    c->field = strdup(path);
    if (!c->field)
        goto fail;
    c->old_value = old_value;
    c->new_value = new_value;
    out->items[out->n++] = c;
    return 0;
fail:
    if (c)
        free(c->field);
    free(c);
    free(old_value);
    free(new_value);
    return -1;
}

static int s_walk(const ProtobufCMessageDescriptor *d, const ProtobufCMessage *a,
                  const ProtobufCMessage *b, const char *base, intake_diff_t *out) {
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char path[160];
        snprintf(path, sizeof path, "%s%s", base, f->name);
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && f->label != PROTOBUF_C_LABEL_REPEATED) {
            const ProtobufCMessage *sa =
                a ? *(ProtobufCMessage *const *)((const char *)a + f->offset) : NULL;
            const ProtobufCMessage *sb =
                b ? *(ProtobufCMessage *const *)((const char *)b + f->offset) : NULL;
            char sub[170];
            snprintf(sub, sizeof sub, "%s.", path);
            if (s_walk(f->descriptor, sa, sb, sub, out) != 0)
                return -1;
            continue;
        }
        char *ta = s_text(a, f);
        char *tb = s_text(b, f);
        if (ta && tb && strcmp(ta, tb) == 0) {
            free(ta);
            free(tb);
            continue;
        }
        if (s_add(out, path, ta, tb) != 0)
            return -1;
    }
    return 0;
}

int intake_diff(const ProtobufCMessage *before, const ProtobufCMessage *after, intake_diff_t *out) {
    size_t start = out->n;
    if (s_walk(after->descriptor, before, after, "", out) != 0)
        return -1;
    return (int)(out->n - start);
}

void intake_diff_clear(intake_diff_t *self) {
    for (size_t i = 0; i < self->n; i++)
        cara__field_change__free_unpacked(self->items[i], NULL);
    free(self->items);
    memset(self, 0, sizeof *self);
}
