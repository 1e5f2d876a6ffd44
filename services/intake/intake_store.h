// intake: referrals in the database (offender and caution in `referral`, victim in `victim`).
// Every function runs inside the caller's transaction.
#ifndef CARA_INTAKE_STORE_H
#define CARA_INTAKE_STORE_H
#include "cara/db.h"
#include "cara/uuid.h"
#include "intake.pb-c.h"

typedef struct {
    char force[64];
    char state[16];       // active | withdrawn
    char received_at[40]; // ISO 8601 UTC
} intake_meta_t;

// Queues (db_send) the inserts of a valid, normalised referral, its victim row and its outcome
// row (status received, received at received_at: ISO 8601 UTC), and writes the new id. A failure
// shows at the next read-back.
// Returns 0, or -1 with the error kept in db.
int intake_store_insert(db_t *db, const Cara__Referral *r, const char *received_at,
                        char id_out[UUID_STR_LEN]);
// Replaces the stored fields of referral id with r (force and reference unchanged).
// Returns 0 or -1.
int intake_store_update(db_t *db, const char *id, const Cara__Referral *r);
// Loads referral id (locking its row when lock is set). Returns 1 and a new message in *out
// (free with cara__referral__free_unpacked(*out, NULL)), 0 if there is no such referral, or -1.
int intake_store_load(db_t *db, const char *id, int lock, Cara__Referral **out,
                      intake_meta_t *meta);

#endif
