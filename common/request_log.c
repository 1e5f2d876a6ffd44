#include "cara/request_log.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void request_log_hash(const uint8_t *data, size_t len, char out[65]) {
    unsigned char hash[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(hash, data, len);
    sodium_bin2hex(out, 65, hash, sizeof hash);
}

int request_log_find(db_t *db, const char *key, const char *hash, reply_t *first) {
    const char *values[] = {key};
    PGresult *r = db_query_bin(db,
                               "SELECT content_hash, reply FROM request_log WHERE request_key = $1"
                               " FOR UPDATE",
                               1, values, NULL, NULL, 1);
    if (!r)
        return -1;
    int rc = REQUEST_LOG_NEW;
    if (PQntuples(r) == 1) {
        if (strcmp(PQgetvalue(r, 0, 0), hash) != 0) {
            rc = REQUEST_LOG_CONFLICT;
        } else if (PQgetisnull(r, 0, 1)) {
            rc = -1; // claimed in this transaction and never answered: not an answer
        } else {
            Cara__Reply *stored = cara__reply__unpack(NULL, (size_t)PQgetlength(r, 0, 1),
                                                      (const uint8_t *)PQgetvalue(r, 0, 1));
            rc = stored && reply_copy_from(first, stored) == 0 ? REQUEST_LOG_REPEAT : -1;
            if (stored)
                cara__reply__free_unpacked(stored, NULL);
        }
    }
    PQclear(r);
    return rc;
}

int request_log_claim(db_t *db, const char *key, const char *hash, reply_t *first) {
    // ON CONFLICT waits for a transaction that inserted the key and has not ended, and then
    // either sees its row (committed) or takes the key (rolled back); the look-up that follows
    // is a statement of its own, and so sees what that transaction committed.
    const char *values[] = {key, hash};
    PGresult *r = db_query(db,
                           "INSERT INTO request_log (request_key, content_hash) VALUES ($1, $2)"
                           " ON CONFLICT (request_key) DO NOTHING RETURNING true",
                           2, values);
    if (!r)
        return -1;
    int claimed = PQntuples(r);
    PQclear(r);
    if (claimed == 1)
        return REQUEST_LOG_NEW;
    int found = request_log_find(db, key, hash, first);
    return found == REQUEST_LOG_NEW ? -1 : found; // a row that was there is gone: retry
}

// Writes an answer now (send = 0) or queued in the pipeline (send = 1): a new row with its
// content hash, or (hash NULL) the answer of a key claimed in this transaction. Returns 0 or -1.
static int s_write(db_t *db, int send, const char *key, const char *hash, const reply_t *reply) {
    uint8_t *data = NULL;
    size_t len = 0;
    if (envelope_encode_message(&reply->msg.base, &data, &len) != 0)
        return -1;
    const char *values[] = {key, (const char *)data, hash};
    int lengths[] = {0, (int)len, 0};
    int formats[] = {0, 1, 0};
    const char *sql = hash ? "INSERT INTO request_log (request_key, reply, content_hash)"
                             " VALUES ($1, $2, $3)"
                           : "UPDATE request_log SET reply = $2"
                             " WHERE request_key = $1 AND reply IS NULL";
    int rc = db_write(db, send, sql, hash ? 3 : 2, values, lengths, formats);
    free(data);
    return rc;
}

int request_log_fill(db_t *db, const char *key, const reply_t *reply) {
    return s_write(db, 0, key, NULL, reply);
}

int request_log_fill_send(db_t *db, const char *key, const reply_t *reply) {
    return s_write(db, 1, key, NULL, reply);
}

int request_log_send(db_t *db, const char *key, const char *hash, const reply_t *reply) {
    return s_write(db, 1, key, hash, reply);
}

void request_log_entry(request_log_entry_t *entry, const char *service, const char *type,
                       const char *org, const char *request_id, const uint8_t *content,
                       size_t len) {
    const char *dot = strrchr(type, '.');
    snprintf(entry->key, sizeof entry->key, "%.32s:%.64s:%.64s:%.64s", service,
             dot ? dot + 1 : type, org, request_id);
    request_log_hash(content, len, entry->hash);
}

int request_log_answer(db_t *db, const request_log_entry_t *entry, reply_t *reply) {
    int found = request_log_claim(db, entry->key, entry->hash, reply);
    if (found == REQUEST_LOG_NEW || found == REQUEST_LOG_REPEAT)
        return found;
    if (found == REQUEST_LOG_CONFLICT)
        reply_status(reply, CARA__REPLY__STATUS__CONFLICT,
                     "this request id was already used with different content");
    else
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable; retry");
    return -1;
}
