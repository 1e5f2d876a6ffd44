// Idempotent commands: the first answer to each request key is stored with a hash of the
// request's content; a repeat gets the first answer again, a different content is a conflict.
#ifndef CARA_REQUEST_LOG_H
#define CARA_REQUEST_LOG_H
#include <stddef.h>
#include <stdint.h>

#include "cara/db.h"
#include "cara/reply.h"

#define REQUEST_LOG_NEW 0
#define REQUEST_LOG_REPEAT 1
#define REQUEST_LOG_CONFLICT 2

// SHA-256 hex of data.
void request_log_hash(const uint8_t *data, size_t len, char out[65]);
// Looks the key up (inside the caller's transaction, locking the row). Returns REQUEST_LOG_NEW,
// REQUEST_LOG_REPEAT (first filled with the stored reply), REQUEST_LOG_CONFLICT, or -1.
int request_log_find(db_t *db, const char *key, const char *hash, reply_t *first);
// As request_log_find, but a new key is claimed (a row without its answer, in the caller's
// transaction), and a key that another transaction has inserted and not yet committed is waited
// for: a repeat that comes while the first one's COMMIT is on its way gets the first answer,
// never a look-up that missed it. REQUEST_LOG_NEW: the caller must fill the answer in
// (request_log_fill) or undo the claim with its own writes (roll back to a savepoint).
int request_log_claim(db_t *db, const char *key, const char *hash, reply_t *first);
// Fills in a claimed key's answer, now or queued in the pipeline. Returns 0 or -1.
int request_log_fill(db_t *db, const char *key, const reply_t *reply);
int request_log_fill_send(db_t *db, const char *key, const reply_t *reply);
// Stores the answer for a key not claimed (a new row), queued in the connection's pipeline
// (db_send) inside the caller's transaction. Returns 0 or -1.
int request_log_send(db_t *db, const char *key, const char *hash, const reply_t *reply);

// One request as the log knows it: who (the sender's organisation) sent which command (type,
// e.g. "cara.BookSeat") to which service with which request id (the envelope's event id, which a
// client keeps across its retries), and a hash of what it asked.
#define REQUEST_LOG_KEY_LEN 240
typedef struct {
    char key[REQUEST_LOG_KEY_LEN];
    char hash[65];
} request_log_entry_t;

// Fills entry for one request; content is the command's encoded payload.
void request_log_entry(request_log_entry_t *entry, const char *service, const char *type,
                       const char *org, const char *request_id, const uint8_t *content, size_t len);
// Claims the entry's key (as request_log_claim). Returns REQUEST_LOG_NEW, REQUEST_LOG_REPEAT (reply
// holds the first answer), or -1 with the reply saying why (CONFLICT: the id was used with
// different content; UNAVAILABLE).
int request_log_answer(db_t *db, const request_log_entry_t *entry, reply_t *reply);

#endif
