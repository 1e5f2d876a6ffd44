// JSON <-> protobuf by the .proto field names, driven by protobuf-c descriptors (jansson at
// the edge). See include/cara/pbjson.h for the mapping.
#include "cara/pbjson.h"
#include "cara/utf8.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PBJSON_MAX_DEPTH 32
#define PBJSON_PATH_MAX 256

// --- shared helpers ----------------------------------------------------------------------

// Appends ".name" (or "name" at the root) to a path, into out (truncated if very long).
static void s_path_field(char *out, size_t size, const char *path, const char *name) {
    if (snprintf(out, size, "%s%s%s", path, *path ? "." : "", name) < 0)
        out[0] = '\0';
}

// Appends "[index]" to a path, into out (truncated if very long).
static void s_path_index(char *out, size_t size, const char *path, size_t index) {
    if (snprintf(out, size, "%s[%zu]", path, index) < 0)
        out[0] = '\0';
}

// Writes "path: reason" (or just the reason at the root) into err. Always returns -1.
__attribute__((format(printf, 4, 5))) static int s_fail(char *err, size_t err_size,
                                                        const char *path, const char *fmt, ...) {
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (err && err_size)
        snprintf(err, err_size, "%s%s%s", path, *path ? ": " : "", reason);
    return -1;
}

// The size of one element of a repeated field of this type.
static size_t s_elem_size(ProtobufCType type) {
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return sizeof(int32_t);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return sizeof(uint32_t);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return sizeof(int64_t);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return sizeof(uint64_t);
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

// --- message -> JSON ---------------------------------------------------------------------

// A JSON string for bytes that should be UTF-8: invalid sequences become U+FFFD so that a
// malformed message received from the network can still be shown. NULL on allocation failure.
static json_t *s_json_text(const char *s) {
    size_t len = strlen(s);
    if (utf8_valid_n(s, len))
        return json_stringn(s, len);
    char *clean = malloc(len * 3 + 1);
    if (!clean)
        return NULL;
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_char(p + i, len - i);
        if (n == 0) {
            memcpy(clean + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        } else {
            memcpy(clean + o, p + i, n);
            o += n;
            i += n;
        }
    }
    json_t *out = json_stringn(clean, o);
    free(clean);
    return out;
}

static json_t *s_from_message(const ProtobufCMessage *msg, int depth);

// One value of a field (v points at the stored value). NULL on allocation failure.
static json_t *s_from_value(const ProtobufCFieldDescriptor *f, const void *v, int depth) {
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_integer(*(const int32_t *)v);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_integer(*(const uint32_t *)v);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return json_integer(*(const int64_t *)v);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        uint64_t u = *(const uint64_t *)v;
        if (u <= (uint64_t)INT64_MAX)
            return json_integer((json_int_t)u);
        char text[24];
        snprintf(text, sizeof text, "%" PRIu64, u);
        return json_string(text); // beyond a JSON integer: a decimal string
    }
    case PROTOBUF_C_TYPE_FLOAT:
        return isfinite(*(const float *)v) ? json_real(*(const float *)v) : json_null();
    case PROTOBUF_C_TYPE_DOUBLE:
        return isfinite(*(const double *)v) ? json_real(*(const double *)v) : json_null();
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)v);
    case PROTOBUF_C_TYPE_ENUM: {
        int value = *(const int *)v;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(
            (const ProtobufCEnumDescriptor *)f->descriptor, value);
        return ev ? json_string(ev->name) : json_integer(value);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)v;
        return s_json_text(s ? s : "");
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = v;
        size_t size = sodium_base64_ENCODED_LEN(b->len, sodium_base64_VARIANT_ORIGINAL);
        char *text = malloc(size);
        if (!text)
            return NULL;
        sodium_bin2base64(text, size, b->len ? b->data : (const unsigned char *)"", b->len,
                          sodium_base64_VARIANT_ORIGINAL);
        json_t *out = json_string(text);
        free(text);
        return out;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)v;
        return sub ? s_from_message(sub, depth + 1) : json_null();
    }
    }
    return NULL;
}

// True if an optional (proto2 or proto3 `optional`) or oneof field holds a value.
static bool s_present(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f) {
    const uint8_t *base = (const uint8_t *)msg;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
    if (f->label != PROTOBUF_C_LABEL_OPTIONAL)
        return true;
    if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE)
        return *(void *const *)(base + f->offset) != NULL;
    if (f->quantifier_offset)
        return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
    return true;
}

static json_t *s_from_message(const ProtobufCMessage *msg, int depth) {
    if (depth > PBJSON_MAX_DEPTH)
        return json_null();
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    const uint8_t *base = (const uint8_t *)msg;
    json_t *obj = json_object();
    if (!obj)
        return NULL;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        json_t *value = NULL;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            const uint8_t *arr = *(uint8_t *const *)(base + f->offset);
            size_t elem = s_elem_size(f->type);
            value = json_array();
            for (size_t k = 0; value && k < n; k++) {
                json_t *item = s_from_value(f, arr + k * elem, depth);
                if (!item || json_array_append_new(value, item) != 0) {
                    json_decref(value);
                    value = NULL;
                }
            }
        } else if (s_present(msg, f)) {
            value = s_from_value(f, base + f->offset, depth);
        } else {
            continue;
        }
        if (!value || json_object_set_new(obj, f->name, value) != 0) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

json_t *pbjson_from_message(const ProtobufCMessage *msg) {
    if (!msg)
        return NULL;
    return s_from_message(msg, 0);
}

// --- JSON -> message ---------------------------------------------------------------------

static int s_to_message(const ProtobufCMessageDescriptor *desc, json_t *json,
                        ProtobufCMessage **out, const char *path, int depth, char *err,
                        size_t err_size);

static const char *s_json_type_name(json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

// Reads a JSON integer, or a decimal string (how 64-bit values beyond JSON's range travel),
// as a signed value in [lo, hi]. Returns 0 or -1 with err set.
static int s_get_signed(json_t *v, int64_t lo, int64_t hi, int64_t *out, const char *path,
                        char *err, size_t err_size) {
    int64_t x;
    if (json_is_integer(v)) {
        x = (int64_t)json_integer_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end = NULL;
        errno = 0;
        long long parsed = strtoll(s, &end, 10);
        if (!*s || *end || errno != 0)
            return s_fail(err, err_size, path, "must be an integer");
        x = parsed;
    } else {
        return s_fail(err, err_size, path, "must be an integer, not %s", s_json_type_name(v));
    }
    if (x < lo || x > hi)
        return s_fail(err, err_size, path, "must be an integer between %" PRId64 " and %" PRId64,
                      lo, hi);
    *out = x;
    return 0;
}

static int s_get_unsigned(json_t *v, uint64_t hi, uint64_t *out, const char *path, char *err,
                          size_t err_size) {
    uint64_t x;
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0)
            return s_fail(err, err_size, path, "must be an integer between 0 and %" PRIu64, hi);
        x = (uint64_t)i;
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end = NULL;
        errno = 0;
        unsigned long long parsed = strtoull(s, &end, 10);
        if (!*s || *s == '-' || *end || errno != 0)
            return s_fail(err, err_size, path, "must be an unsigned integer");
        x = parsed;
    } else {
        return s_fail(err, err_size, path, "must be an integer, not %s", s_json_type_name(v));
    }
    if (x > hi)
        return s_fail(err, err_size, path, "must be an integer between 0 and %" PRIu64, hi);
    *out = x;
    return 0;
}

// Converts one JSON value into the storage at dst for field f. On failure nothing was stored.
static int s_to_value(const ProtobufCFieldDescriptor *f, json_t *v, void *dst, const char *path,
                      int depth, char *err, size_t err_size) {
    int64_t i64;
    uint64_t u64;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (s_get_signed(v, INT32_MIN, INT32_MAX, &i64, path, err, err_size) != 0)
            return -1;
        *(int32_t *)dst = (int32_t)i64;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (s_get_signed(v, INT64_MIN, INT64_MAX, &i64, path, err, err_size) != 0)
            return -1;
        *(int64_t *)dst = i64;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (s_get_unsigned(v, UINT32_MAX, &u64, path, err, err_size) != 0)
            return -1;
        *(uint32_t *)dst = (uint32_t)u64;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (s_get_unsigned(v, UINT64_MAX, &u64, path, err, err_size) != 0)
            return -1;
        *(uint64_t *)dst = u64;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        if (!json_is_number(v))
            return s_fail(err, err_size, path, "must be a number, not %s", s_json_type_name(v));
        if (f->type == PROTOBUF_C_TYPE_FLOAT)
            *(float *)dst = (float)json_number_value(v);
        else
            *(double *)dst = json_number_value(v);
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v))
            return s_fail(err, err_size, path, "must be a boolean, not %s", s_json_type_name(v));
        *(protobuf_c_boolean *)dst = json_is_true(v) ? 1 : 0;
        return 0;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        const ProtobufCEnumValue *ev = NULL;
        if (json_is_string(v))
            ev = protobuf_c_enum_descriptor_get_value_by_name(ed, json_string_value(v));
        else if (json_is_integer(v) && json_integer_value(v) >= INT32_MIN &&
                 json_integer_value(v) <= INT32_MAX)
            ev = protobuf_c_enum_descriptor_get_value(ed, (int)json_integer_value(v));
        if (!ev) {
            char names[160] = "";
            size_t used = 0;
            for (unsigned k = 0; k < ed->n_values && used < sizeof names; k++)
                used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", k ? ", " : "",
                                         ed->values[k].name);
            return s_fail(err, err_size, path, "must be one of %s", names);
        }
        *(int *)dst = ev->value;
        return 0;
    }
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_is_string(v))
            return s_fail(err, err_size, path, "must be a string, not %s", s_json_type_name(v));
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        if (!utf8_valid_n(s, len))
            return s_fail(err, err_size, path, "must be valid UTF-8 text without NUL characters");
        char *copy = malloc(len + 1);
        if (!copy)
            return s_fail(err, err_size, path, "out of memory");
        memcpy(copy, s, len + 1);
        *(char **)dst = copy;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        if (!json_is_string(v))
            return s_fail(err, err_size, path, "must be a base64 string, not %s",
                          s_json_type_name(v));
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        uint8_t *bin = malloc(len + 1); // decoded data is never longer than its base64
        size_t bin_len = 0;
        const char *end = NULL;
        if (!bin)
            return s_fail(err, err_size, path, "out of memory");
        if (sodium_base642bin(bin, len + 1, s, len, NULL, &bin_len, &end,
                              sodium_base64_VARIANT_ORIGINAL) != 0 ||
            end != s + len) {
            free(bin);
            return s_fail(err, err_size, path, "must be base64 (RFC 4648, with padding)");
        }
        ProtobufCBinaryData *b = dst;
        if (bin_len == 0) {
            free(bin);
            bin = NULL;
        }
        b->data = bin;
        b->len = bin_len;
        return 0;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        ProtobufCMessage *sub = NULL;
        if (s_to_message(f->descriptor, v, &sub, path, depth + 1, err, err_size) != 0)
            return -1;
        *(ProtobufCMessage **)dst = sub;
        return 0;
    }
    }
    return s_fail(err, err_size, path, "unsupported field type");
}

// Fills a repeated field from a JSON array. The count is raised per element so a failure
// midway leaves a message that protobuf_c_message_free_unpacked frees correctly.
static int s_to_repeated(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f, json_t *v,
                         const char *path, int depth, char *err, size_t err_size) {
    if (!json_is_array(v))
        return s_fail(err, err_size, path, "must be an array, not %s", s_json_type_name(v));
    uint8_t *base = (uint8_t *)msg;
    size_t n = json_array_size(v);
    size_t elem = s_elem_size(f->type);
    size_t *count = (size_t *)(base + f->quantifier_offset);
    uint8_t **arr = (uint8_t **)(base + f->offset);
    if (n == 0)
        return 0;
    *arr = calloc(n, elem);
    if (!*arr)
        return s_fail(err, err_size, path, "out of memory");
    for (size_t k = 0; k < n; k++) {
        char item_path[PBJSON_PATH_MAX];
        s_path_index(item_path, sizeof item_path, path, k);
        if (s_to_value(f, json_array_get(v, k), *arr + k * elem, item_path, depth, err, err_size) !=
            0)
            return -1;
        *count = k + 1;
    }
    return 0;
}

static int s_to_message(const ProtobufCMessageDescriptor *desc, json_t *json,
                        ProtobufCMessage **out, const char *path, int depth, char *err,
                        size_t err_size) {
    *out = NULL;
    if (depth > PBJSON_MAX_DEPTH)
        return s_fail(err, err_size, path, "nested too deeply");
    if (!json_is_object(json))
        return s_fail(err, err_size, path, "must be an object, not %s", s_json_type_name(json));
    ProtobufCMessage *msg = malloc(desc->sizeof_message);
    if (!msg)
        return s_fail(err, err_size, path, "out of memory");
    desc->message_init(msg);
    uint8_t *base = (uint8_t *)msg;
    const char *key;
    json_t *value;
    int rc = -1;
    json_object_foreach(json, key, value) {
        char field_path[PBJSON_PATH_MAX];
        s_path_field(field_path, sizeof field_path, path, key);
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(desc, key);
        if (!f) {
            s_fail(err, err_size, field_path, "unknown field");
            goto cleanup;
        }
        if (json_is_null(value))
            continue; // null = absent = the field's default
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            if (s_to_repeated(msg, f, value, field_path, depth, err, err_size) != 0)
                goto cleanup;
            continue;
        }
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t *which = (uint32_t *)(base + f->quantifier_offset);
            if (*which != 0) {
                s_fail(err, err_size, field_path, "only one field of its oneof may be set");
                goto cleanup;
            }
        }
        if (s_to_value(f, value, base + f->offset, field_path, depth, err, err_size) != 0)
            goto cleanup;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
            *(uint32_t *)(base + f->quantifier_offset) = f->id;
        else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
                 f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
            *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
    }
    rc = 0;
cleanup:
    if (rc != 0)
        protobuf_c_message_free_unpacked(msg, NULL);
    else
        *out = msg;
    return rc;
}

ProtobufCMessage *pbjson_to_message(const ProtobufCMessageDescriptor *desc, json_t *json, char *err,
                                    size_t err_size) {
    ProtobufCMessage *msg = NULL;
    if (err && err_size)
        err[0] = '\0';
    if (!desc || !json) {
        s_fail(err, err_size, "", "no message");
        return NULL;
    }
    if (s_to_message(desc, json, &msg, "", 0, err, err_size) != 0)
        return NULL;
    return msg;
}
