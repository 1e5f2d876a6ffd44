#include "intake_store.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cara/timeutil.h"
#include "intake_validate.h"

#define S_ISO(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

// The referral's columns in the order of $2..$27 in the statements below.
typedef struct {
    const char *v[27];
    char caution_date[16];
    char *orders; // JSON array text, malloc'd
} s_row_t;

static const char *s_bool(protobuf_c_boolean b) {
    return b ? "true" : "false";
}

static int s_row(const Cara__Referral *r, s_row_t *row) {
    memset(row, 0, sizeof *row);
    int32_t day;
    if (time_written_date(r->caution->given_at, &day) != 0)
        return -1;
    time_format_date(day, row->caution_date, sizeof row->caution_date);
    json_t *orders = json_array();
    for (size_t i = 0; orders && i < r->risk->n_protective_orders; i++)
        json_array_append_new(orders, json_string(r->risk->protective_orders[i]));
    row->orders = orders ? json_dumps(orders, JSON_COMPACT) : NULL;
    json_decref(orders);
    if (!row->orders)
        return -1;
    const Cara__Caution *c = r->caution;
    const Cara__Offender *o = r->offender;
    const Cara__Risk *k = r->risk;
    const char *v[27] = {NULL,
                         r->officer,
                         c->given_at,
                         row->caution_date,
                         c->offence_category,
                         c->condition_text,
                         c->compliance_deadline,
                         o->name,
                         o->date_of_birth,
                         o->sex,
                         o->address,
                         o->phone,
                         o->email,
                         o->preferred_language,
                         s_bool(o->interpreter_needed),
                         o->access_needs,
                         s_bool(o->learning_disability),
                         o->ethnicity,
                         r->relationship,
                         k->dash_level,
                         k->previous_da,
                         row->orders,
                         k->children_in_household,
                         k->safeguarding_notes,
                         r->force,
                         r->caution_reference,
                         NULL};
    memcpy(row->v, v, sizeof v);
    return 0;
}

static int s_victim(db_t *db, const char *id, const Cara__Victim *v, int update) {
    const char *values[] = {id,
                            v->name,
                            v->phone,
                            v->email,
                            v->address,
                            s_bool(v->consents_to_contact),
                            v->safe_contact_times,
                            v->preferred_language};
    if (!update)
        return db_send(db,
                       "INSERT INTO victim (referral_id, name, phone, email, address,"
                       " consents_to_contact, safe_contact_times, preferred_language)"
                       " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                       8, values, NULL, NULL);
    return db_exec(db,
                   "UPDATE victim SET name = $2, phone = $3, email = $4, address = $5,"
                   " consents_to_contact = $6, safe_contact_times = $7,"
                   " preferred_language = $8 WHERE referral_id = $1",
                   8, values);
}

int intake_store_insert(db_t *db, const Cara__Referral *r, const char *received_at,
                        char id_out[UUID_STR_LEN]) {
    s_row_t row;
    int rc = -1;
    if (s_row(r, &row) != 0)
        goto cleanup;
    uuid_new(id_out);
    row.v[0] = id_out;
    row.v[26] = received_at;
    if (db_send(db,
                "INSERT INTO referral (referral_id, officer, caution_given_at, caution_date,"
                " offence_category, condition_text, compliance_deadline, offender_name,"
                " offender_dob, offender_sex, offender_address, offender_phone, offender_email,"
                " offender_language, interpreter_needed, access_needs, learning_disability,"
                " ethnicity, relationship, dash_level, previous_da, protective_orders,"
                " children_in_household, safeguarding_notes, force, caution_reference,"
                " received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,"
                " $14, $15, $16, $17, $18, $19, $20, $21, $22::jsonb, $23, $24, $25, $26, $27)",
                27, row.v, NULL, NULL) != 0)
        goto cleanup;
    if (s_victim(db, id_out, r->victim, 0) != 0)
        goto cleanup;
    // A plain VALUES row, like the two above: a request batch gathers all three (db_gather).
    const char *outcome[] = {id_out, r->force, r->caution_reference,
                             r->caution->compliance_deadline, received_at};
    if (db_send(db,
                "INSERT INTO outcome (referral_id, force, caution_reference, compliance_deadline,"
                " received_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
                5, outcome, NULL, NULL) != 0)
        goto cleanup;
    rc = 0;
cleanup:
    free(row.orders);
    return rc;
}

int intake_store_update(db_t *db, const char *id, const Cara__Referral *r) {
    s_row_t row;
    int rc = -1;
    if (s_row(r, &row) != 0)
        goto cleanup;
    row.v[0] = id;
    // force ($25) and caution_reference ($26) never change: they must match the stored row.
    if (db_exec(db,
                "UPDATE referral SET officer = $2, caution_given_at = $3, caution_date = $4,"
                " offence_category = $5, condition_text = $6, compliance_deadline = $7,"
                " offender_name = $8, offender_dob = $9, offender_sex = $10,"
                " offender_address = $11, offender_phone = $12, offender_email = $13,"
                " offender_language = $14, interpreter_needed = $15, access_needs = $16,"
                " learning_disability = $17, ethnicity = $18, relationship = $19,"
                " dash_level = $20, previous_da = $21, protective_orders = $22::jsonb,"
                " children_in_household = $23, safeguarding_notes = $24, updated_at = now()"
                " WHERE referral_id = $1 AND force = $25 AND caution_reference = $26",
                26, row.v) != 0)
        goto cleanup;
    if (s_victim(db, id, r->victim, 1) != 0)
        goto cleanup;
    rc = 0;
cleanup:
    free(row.orders);
    return rc;
}

// One referral with its victim row; columns as read by intake_store_load.
#define S_SELECT                                                                                   \
    "SELECT r.force, r.caution_reference, r.officer, r.caution_given_at, r.offence_category,"      \
    " r.condition_text, r.compliance_deadline::text, r.offender_name, r.offender_dob::text,"       \
    " r.offender_sex, r.offender_address, r.offender_phone, r.offender_email,"                     \
    " r.offender_language, r.interpreter_needed, r.access_needs, r.learning_disability,"           \
    " r.ethnicity, r.relationship, r.dash_level, r.previous_da, r.protective_orders::text,"        \
    " r.children_in_household, r.safeguarding_notes, v.name, v.phone, v.email, v.address,"         \
    " v.consents_to_contact, v.safe_contact_times, v.preferred_language, r.state, " S_ISO(         \
        "r.received_at") " FROM referral r JOIN victim v USING (referral_id)"                      \
                         " WHERE r.referral_id = $1::uuid"

static char *s_dup(PGresult *res, int col) {
    return strdup(PQgetvalue(res, 0, col));
}
static protobuf_c_boolean s_is_true(PGresult *res, int col) {
    return PQgetvalue(res, 0, col)[0] == 't';
}

int intake_store_load(db_t *db, const char *id, int lock, Cara__Referral **out,
                      intake_meta_t *meta) {
    *out = NULL;
    const char *values[] = {id};
    PGresult *res = db_query(db, lock ? S_SELECT " FOR UPDATE OF r, v" : S_SELECT, 1, values);
    if (!res)
        return -1;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return 0;
    }
    int rc = -1;
    json_t *orders = NULL;
    Cara__Referral *r = malloc(sizeof *r);
    Cara__Caution *c = malloc(sizeof *c);
    Cara__Offender *o = malloc(sizeof *o);
    Cara__Risk *k = malloc(sizeof *k);
    Cara__Victim *v = malloc(sizeof *v);
    if (!r || !c || !o || !k || !v) {
        free(r);
        free(c);
        free(o);
        free(k);
        free(v);
        goto cleanup;
    }
    cara__referral__init(r);
    cara__caution__init(c);
    cara__offender__init(o);
    cara__risk__init(k);
    cara__victim__init(v);
    r->caution = c;
    r->offender = o;
    r->risk = k;
    r->victim = v;
    r->force = s_dup(res, 0);
    r->caution_reference = s_dup(res, 1);
    r->officer = s_dup(res, 2);
    c->given_at = s_dup(res, 3);
    c->offence_category = s_dup(res, 4);
    c->condition_text = s_dup(res, 5);
    c->compliance_deadline = s_dup(res, 6);
    o->name = s_dup(res, 7);
    o->date_of_birth = s_dup(res, 8);
    o->sex = s_dup(res, 9);
    o->address = s_dup(res, 10);
    o->phone = s_dup(res, 11);
    o->email = s_dup(res, 12);
    o->preferred_language = s_dup(res, 13);
    o->interpreter_needed = s_is_true(res, 14);
    o->access_needs = s_dup(res, 15);
    o->learning_disability = s_is_true(res, 16);
    o->ethnicity = s_dup(res, 17);
    r->relationship = s_dup(res, 18);
    k->dash_level = s_dup(res, 19);
    k->previous_da = s_dup(res, 20);
    k->children_in_household = s_dup(res, 22);
    k->safeguarding_notes = s_dup(res, 23);
    v->name = s_dup(res, 24);
    v->phone = s_dup(res, 25);
    v->email = s_dup(res, 26);
    v->address = s_dup(res, 27);
    v->consents_to_contact = s_is_true(res, 28);
    v->safe_contact_times = s_dup(res, 29);
    v->preferred_language = s_dup(res, 30);
    orders = json_loads(PQgetvalue(res, 0, 21), 0, NULL);
    size_t n = json_array_size(orders);
    if (n) {
        k->protective_orders = calloc(n, sizeof(char *));
        if (!k->protective_orders)
            goto cleanup;
        for (size_t i = 0; i < n; i++) {
            const char *text = json_string_value(json_array_get(orders, i));
            k->protective_orders[i] = strdup(text ? text : "");
            k->n_protective_orders++;
        }
    }
    if (meta) {
        snprintf(meta->force, sizeof meta->force, "%s", PQgetvalue(res, 0, 0));
        snprintf(meta->state, sizeof meta->state, "%s", PQgetvalue(res, 0, 31));
        snprintf(meta->received_at, sizeof meta->received_at, "%s", PQgetvalue(res, 0, 32));
    }
    // Every string must have been copied (strdup can fail).
    const char *check[] = {r->force,
                           r->caution_reference,
                           r->officer,
                           c->given_at,
                           c->offence_category,
                           c->condition_text,
                           c->compliance_deadline,
                           o->name,
                           o->date_of_birth,
                           o->sex,
                           o->address,
                           o->phone,
                           o->email,
                           o->preferred_language,
                           o->access_needs,
                           o->ethnicity,
                           r->relationship,
                           k->dash_level,
                           k->previous_da,
                           k->children_in_household,
                           k->safeguarding_notes,
                           v->name,
                           v->phone,
                           v->email,
                           v->address,
                           v->safe_contact_times,
                           v->preferred_language};
    for (size_t i = 0; i < sizeof check / sizeof *check; i++)
        if (!check[i])
            goto cleanup;
    for (size_t i = 0; i < k->n_protective_orders; i++)
        if (!k->protective_orders[i])
            goto cleanup;
    *out = r;
    r = NULL;
    rc = 1;
cleanup:
    if (r)
        cara__referral__free_unpacked(r, NULL);
    json_decref(orders);
    PQclear(res);
    return rc;
}
