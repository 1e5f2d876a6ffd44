#include "national_merge.h"

#include <stdlib.h>
#include <string.h>

#include "cara/timeutil.h"

struct national_merge_t {
    national_case_t *cases; // in the order first met
    int n, cap;
    int *slots; // open addressing: index into cases + 1, 0 = empty
    int n_slots;
};

national_merge_t *national_merge_new(void) {
    return calloc(1, sizeof(national_merge_t));
}

void national_merge_destroy(national_merge_t **self_p) {
    if (!self_p || !*self_p)
        return;
    free((*self_p)->cases);
    free((*self_p)->slots);
    free(*self_p);
    *self_p = NULL;
}

// Keys are HMAC outputs in hex: their first digits are as good a hash as any.
static unsigned s_hash(const char *key) {
    unsigned h = 2166136261u;
    for (int i = 0; i < 16 && key[i]; i++)
        h = (h ^ (unsigned char)key[i]) * 16777619u;
    return h;
}

static int s_find(const national_merge_t *self, const char *key) {
    unsigned mask = (unsigned)self->n_slots - 1;
    for (unsigned i = s_hash(key) & mask;; i = (i + 1) & mask) {
        int at = self->slots[i];
        if (at == 0 || strcmp(self->cases[at - 1].key, key) == 0)
            return (int)i;
    }
}

static int s_grow(national_merge_t *self) {
    if (self->n == self->cap) {
        int cap = self->cap ? self->cap * 2 : 256;
        national_case_t *cases = realloc(self->cases, (size_t)cap * sizeof *cases);
        if (!cases)
            return -1;
        self->cases = cases;
        self->cap = cap;
    }
    if ((self->n + 1) * 2 > self->n_slots) {
        int n_slots = self->n_slots ? self->n_slots * 2 : 512;
        int *slots = calloc((size_t)n_slots, sizeof *slots);
        if (!slots)
            return -1;
        free(self->slots);
        self->slots = slots;
        self->n_slots = n_slots;
        for (int i = 0; i < self->n; i++)
            self->slots[s_find(self, self->cases[i].key)] = i + 1;
    }
    return 0;
}

national_case_t *national_merge_case(national_merge_t *self, const char *key) {
    if (!key || strlen(key) != 64)
        return NULL;
    if (self->n_slots) {
        int at = self->slots[s_find(self, key)];
        if (at)
            return &self->cases[at - 1];
    }
    if (s_grow(self) != 0)
        return NULL;
    national_case_t *c = &self->cases[self->n];
    memset(c, 0, sizeof *c);
    memcpy(c->key, key, 65);
    self->slots[s_find(self, key)] = ++self->n;
    return c;
}

int national_merge_count(const national_merge_t *self) {
    return self->n;
}

static void s_set(char *dst, size_t size, const char *value) {
    size_t n = value ? strlen(value) : 0;
    if (n >= size)
        n = 0; // longer than any value the fact takes: as absent as a NULL
    memcpy(dst, value ? value : "", n);
    dst[n] = '\0';
}

// first_contact_at: the earliest contact wins.
void national_case_contact(national_case_t *c, const char *at) {
    int64_t us;
    c->upsert = true;
    if (at && time_parse_iso(at, &us) == 0 && (!c->contact[0] || us < c->contact_us)) {
        s_set(c->contact, sizeof c->contact, at);
        c->contact_us = us;
    }
}

// booked_at and started_on: the first one given wins.
void national_case_booked(national_case_t *c, const char *at) {
    c->upsert = true;
    if (!c->booked[0])
        s_set(c->booked, sizeof c->booked, at);
}

void national_case_started(national_case_t *c, const char *date) {
    c->upsert = true;
    if (!c->started[0])
        s_set(c->started, sizeof c->started, date);
}

// completed_at and non_compliant_reason: the last one given wins, even a NULL.
void national_case_completed(national_case_t *c, const char *at) {
    c->upsert = true;
    s_set(c->completed, sizeof c->completed, at);
    c->completed_cleared = !c->completed[0];
}

void national_case_non_compliant(national_case_t *c, const char *reason) {
    c->upsert = true;
    s_set(c->non_compliant, sizeof c->non_compliant, reason);
    c->non_compliant_cleared = !c->non_compliant[0];
}

// Victim contact: offered once offered or accepted, accepted once accepted.
void national_case_victim(national_case_t *c, const char *kind) {
    c->upsert = true;
    bool accepted = kind && strcmp(kind, "accepted") == 0;
    c->victim_offered = c->victim_offered || accepted || (kind && strcmp(kind, "offer") == 0);
    c->victim_accepted = c->victim_accepted || accepted;
}

// A reopening clears the closure of a row that exists; it creates none.
void national_case_reopened(national_case_t *c) {
    c->completed[0] = c->non_compliant[0] = '\0';
    c->completed_cleared = c->non_compliant_cleared = true;
}

static const char *s_or_null(const char *v) {
    return v[0] ? v : NULL;
}

apply_result_t national_case_write(const national_case_t *c, db_t *db) {
    if (c->upsert) {
        const char *values[] = {c->key,
                                s_or_null(c->contact),
                                s_or_null(c->booked),
                                s_or_null(c->started),
                                s_or_null(c->completed),
                                s_or_null(c->non_compliant),
                                c->victim_offered ? "true" : "false",
                                c->victim_accepted ? "true" : "false"};
        if (db_send(db,
                    "INSERT INTO case_fact (case_key, first_contact_at, booked_at, started_on,"
                    " completed_at, non_compliant_reason, victim_offered, victim_accepted) VALUES"
                    " ($1, $2::timestamptz, $3::timestamptz, $4::date, $5::timestamptz, $6,"
                    " $7::boolean, $8::boolean) ON CONFLICT (case_key) DO UPDATE SET"
                    " first_contact_at = least(case_fact.first_contact_at,"
                    " EXCLUDED.first_contact_at),"
                    " booked_at = coalesce(case_fact.booked_at, EXCLUDED.booked_at),"
                    " started_on = coalesce(case_fact.started_on, EXCLUDED.started_on),"
                    " completed_at = coalesce(EXCLUDED.completed_at, case_fact.completed_at),"
                    " non_compliant_reason = coalesce(EXCLUDED.non_compliant_reason,"
                    " case_fact.non_compliant_reason),"
                    " victim_offered = case_fact.victim_offered OR EXCLUDED.victim_offered,"
                    " victim_accepted = case_fact.victim_accepted OR EXCLUDED.victim_accepted",
                    8, values, NULL, NULL) != 0)
            return APPLY_RETRY;
    }
    bool clear_completed = c->completed_cleared && !c->completed[0];
    bool clear_non_compliant = c->non_compliant_cleared && !c->non_compliant[0];
    if (clear_completed || clear_non_compliant) {
        const char *values[] = {c->key, clear_completed ? "true" : "false",
                                clear_non_compliant ? "true" : "false"};
        if (db_send(db,
                    "UPDATE case_fact SET completed_at = CASE WHEN $2::boolean THEN NULL ELSE"
                    " completed_at END, non_compliant_reason = CASE WHEN $3::boolean THEN NULL"
                    " ELSE non_compliant_reason END WHERE case_key = $1",
                    3, values, NULL, NULL) != 0)
            return APPLY_RETRY;
    }
    return APPLY_OK;
}

apply_result_t national_merge_flush(national_merge_t *self, db_t *db, bool write) {
    apply_result_t rc = APPLY_OK;
    for (int i = 0; write && rc == APPLY_OK && i < self->n; i++)
        rc = national_case_write(&self->cases[i], db);
    self->n = 0;
    if (self->slots)
        memset(self->slots, 0, (size_t)self->n_slots * sizeof *self->slots);
    return rc;
}
