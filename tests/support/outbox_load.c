#include "outbox_load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cara/envelope.h"
#include "cara/uuid.h"

#define S_FLUSH (1 << 20)

struct outbox_load_t {
    PGconn *conn;
    char *buf;
    size_t len, cap;
    int64_t seq;
    int failed;
};

static int s_exec(PGconn *c, const char *sql) {
    PGresult *r = PQexec(c, sql);
    int ok = r && (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
    if (!ok)
        fprintf(stderr, "outbox_load: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    return ok ? 0 : -1;
}

outbox_load_t *outbox_load_begin(PGconn *c) {
    // The outbox lock trigger orders concurrent writers; this single loader gives seqs itself.
    if (s_exec(c, "SET session_replication_role = replica") != 0)
        return NULL;
    PGresult *start =
        PQexec(c, "COPY outbox (seq, event_id, type, key, scope, payload) FROM STDIN");
    int copying = start && PQresultStatus(start) == PGRES_COPY_IN;
    PQclear(start);
    if (!copying) {
        fprintf(stderr, "outbox_load: COPY: %s", PQerrorMessage(c));
        return NULL;
    }
    outbox_load_t *self = calloc(1, sizeof *self);
    if (self && !(self->buf = malloc(self->cap = 2 * S_FLUSH))) {
        free(self);
        self = NULL;
    }
    if (!self)
        PQputCopyEnd(c, "out of memory");
    if (self)
        self->conn = c;
    return self;
}

// Appends text to the buffer as a COPY text field (the loader's own values: no tabs, no
// newlines, no backslashes), or \N for NULL.
static void s_field(outbox_load_t *self, const char *text) {
    if (!text) {
        memcpy(self->buf + self->len, "\\N", 2);
        self->len += 2;
    } else {
        size_t n = strlen(text);
        memcpy(self->buf + self->len, text, n);
        self->len += n;
    }
    self->buf[self->len++] = '\t';
}

int64_t outbox_load_add(outbox_load_t *self, const ProtobufCMessage *msg, const char *key,
                        const char *scope) {
    uint8_t *data = NULL;
    size_t dlen = 0;
    char id[UUID_STR_LEN], seq[24];
    if (self->failed || envelope_pack(msg, NULL, NULL, &data, &dlen, id) != 0) {
        self->failed = 1;
        return -1;
    }
    size_t need = 2 * dlen + strlen(msg->descriptor->name) + (key ? strlen(key) : 2) +
                  (scope ? strlen(scope) : 2) + 128;
    if (self->len + need > self->cap) {
        if (self->len && PQputCopyData(self->conn, self->buf, (int)self->len) != 1)
            self->failed = 1;
        self->len = 0;
        if (need > self->cap) {
            char *grown = realloc(self->buf, need);
            if (!grown)
                self->failed = 1;
            else
                self->buf = grown, self->cap = need;
        }
    }
    if (self->failed) {
        free(data);
        return -1;
    }
    snprintf(seq, sizeof seq, "%lld", (long long)++self->seq);
    s_field(self, seq);
    s_field(self, id);
    s_field(self, msg->descriptor->name);
    s_field(self, key);
    s_field(self, scope);
    static const char hex[] = "0123456789abcdef";
    memcpy(self->buf + self->len, "\\\\x", 3);
    self->len += 3;
    for (size_t k = 0; k < dlen; k++) {
        self->buf[self->len++] = hex[data[k] >> 4];
        self->buf[self->len++] = hex[data[k] & 15];
    }
    self->buf[self->len++] = '\n';
    free(data);
    return self->seq;
}

int64_t outbox_load_end(outbox_load_t **self_p) {
    outbox_load_t *self = *self_p;
    *self_p = NULL;
    PGconn *c = self->conn;
    if (!self->failed && self->len && PQputCopyData(c, self->buf, (int)self->len) != 1)
        self->failed = 1;
    if (PQputCopyEnd(c, self->failed ? "outbox load failed" : NULL) != 1)
        self->failed = 1;
    PGresult *r;
    while ((r = PQgetResult(c)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            fprintf(stderr, "outbox_load: COPY: %s", PQerrorMessage(c));
            self->failed = 1;
        }
        PQclear(r);
    }
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT setval('outbox_seq', %lld)",
             (long long)(self->seq > 0 ? self->seq : 1));
    if (s_exec(c, "RESET session_replication_role") != 0 || s_exec(c, sql) != 0 ||
        s_exec(c, "ANALYZE outbox") != 0)
        self->failed = 1;
    int64_t loaded = self->failed ? -1 : self->seq;
    free(self->buf);
    free(self);
    return loaded;
}
