// A batch's booking facts, merged per case: the four or five booking events of a case's life
// (first contact, seat, Part A attended, completion or non-compliance, victim contact) usually
// arrive in one batch, and each would otherwise write a new version of the same case_fact row.
// Held here, they are written once per case per batch, with the same result as writing them
// one by one in stream order (each column's rule is the one its event's write has).
#ifndef NATIONAL_MERGE_H
#define NATIONAL_MERGE_H
#include <stdbool.h>

#include "cara/consumer.h"
#include "cara/db.h"

typedef struct national_merge_t national_merge_t;

// The booking facts about one case (case_key: 64 hex digits) held for writing.
typedef struct {
    char key[65];
    bool upsert;      // an event that creates the row if it is missing was met
    char contact[40]; // earliest first contact ("" = none)
    int64_t contact_us;
    char booked[40];        // first seat booking time ("" = none)
    char started[16];       // first Part A attended (YYYY-MM-DD, "" = none)
    char completed[40];     // last completion time ("" = none given, or cleared)
    bool completed_cleared; // set to NULL after what the row holds (a reopening, a bad time)
    char non_compliant[72]; // last non-compliance reason ("" = none given, or cleared)
    bool non_compliant_cleared;
    bool victim_offered, victim_accepted;
} national_case_t;

national_merge_t *national_merge_new(void);
void national_merge_destroy(national_merge_t **self_p);
// The held facts of the case with this key, new and empty the first time. NULL: out of memory.
national_case_t *national_merge_case(national_merge_t *self, const char *key);

// The merge rules, one per booking fact; NULL values are as their events' writes take them.
void national_case_contact(national_case_t *c, const char *at);
void national_case_booked(national_case_t *c, const char *at);
void national_case_started(national_case_t *c, const char *date);
void national_case_completed(national_case_t *c, const char *at);
void national_case_non_compliant(national_case_t *c, const char *reason);
void national_case_victim(national_case_t *c, const char *kind);
void national_case_reopened(national_case_t *c);

// Queues (db_send) the writes of one case: an upsert (if upsert) and, if a column was cleared,
// the update that clears it. Returns APPLY_OK or APPLY_RETRY.
apply_result_t national_case_write(const national_case_t *c, db_t *db);
// write: queues every held case's writes, in the order the cases were first met; then (or
// with write false, only) forgets them all.
apply_result_t national_merge_flush(national_merge_t *self, db_t *db, bool write);
int national_merge_count(const national_merge_t *self);

#endif
