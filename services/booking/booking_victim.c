// Victim contact: offers of support, attempts, accepted/declined, safety concerns; commands of
// the provider's victim contact role (victim_contact:<provider id>) only. Victim data
// lives only in victim_contact and leaves only through these commands (never cohort lists, never
// the stream: the event says that contact happened and flags a safety concern).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "booking.h"
#include "cara/stream.h"
#include "cara/timeutil.h"

int booking_cmd_victim(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                       reply_t *reply) {
    static const char *const kinds[] = {"offer", "attempt", "accepted", "declined",
                                        "safety_concern"};
    if (booking_require_victim_contact(who, reply) != 0)
        return -1;
    Cara__RecordVictimContact *req = (Cara__RecordVictimContact *)envelope_payload(
        env, &cara__record_victim_contact__descriptor);
    if (!req)
        return reply_field_error(reply, "payload", "not a valid cara.RecordVictimContact");
    int rc = -1, ok = 0;
    for (int i = 0; i < 5; i++)
        ok |= strcmp(req->kind, kinds[i]) == 0;
    if (!ok)
        reply_field_error(reply, "kind",
                          "must be offer, attempt, accepted, declined or safety_concern");
    if (strlen(req->notes) > 4000)
        reply_field_error(reply, "notes", "at most 4000 characters");
    booking_case_t c;
    char consent[8] = "";
    if (!reply_error_count(reply)) {
        int found = booking_case_load(service_db(svc), req->referral_id, who->org, &c);
        if (found != 1) {
            rc = booking_case_refuse(svc, who, req->referral_id, found, reply);
            goto cleanup;
        }
        const char *v[] = {c.case_id};
        if (db_scalar(service_db(svc),
                      "SELECT victim_contact FROM provider_case WHERE case_id = $1", 1, v, consent,
                      sizeof consent) != 1)
            reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable");
        else if (strcmp(consent, "t") != 0)
            reply_status(reply, CARA__REPLY__STATUS__CONFLICT,
                         "the victim did not consent to be contacted");
    }
    if (reply_error_count(reply) || reply->msg.status != CARA__REPLY__STATUS__OK)
        goto cleanup;
    int concern = strcmp(req->kind, "safety_concern") == 0;
    char actor[128], now[40];
    identity_format(who, actor, sizeof actor);
    const char *values[] = {c.case_id, req->kind, concern ? "true" : "false", req->notes, actor};
    if (db_exec(service_db(svc),
                "INSERT INTO victim_contact (case_id, kind, safety_concern, notes, recorded_by)"
                " VALUES ($1, $2, $3, $4, $5)",
                5, values) != 0)
        goto cleanup;
    // The event carries no victim details: only that contact happened, and any concern flag.
    Cara__VictimContactRecorded ev = CARA__VICTIM_CONTACT_RECORDED__INIT;
    ev.case_id = c.case_id;
    ev.referral_id = c.referral_id;
    ev.provider_id = c.provider;
    ev.force = c.force;
    ev.kind = req->kind;
    ev.at = time_format_iso(time_now_us(), now, sizeof now);
    ev.safety_concern = concern;
    if (outbox_append(service_db(svc), &ev.base, c.referral_id, c.provider, c.referral_id, NULL) <
            0 ||
        service_audit(svc, who, "victim_contact", "provider_case", c.referral_id,
                      json_pack("{s:s}", "kind", req->kind)) != 0)
        goto cleanup;
    rc = reply_ok(reply, NULL);
cleanup:
    cara__record_victim_contact__free_unpacked(req, NULL);
    return rc;
}

// The referral stored with a case (personal data; never served whole). Returns it (caller
// frees with cara__referral__free_unpacked), or NULL if it cannot be read.
// The referral stored with the case, and in *consent whether the victim consents to contact
// now (an amendment may have withdrawn it). Returns NULL on error.
static Cara__Referral *s_stored_referral(db_t *db, const char *case_id, int *consent) {
    const char *values[] = {case_id};
    PGresult *r = db_query_bin(db,
                               "SELECT referral, victim_contact FROM provider_case"
                               " WHERE case_id = $1",
                               1, values, NULL, NULL, 1);
    Cara__Referral *referral = NULL;
    if (r && PQntuples(r) == 1) {
        referral = cara__referral__unpack(NULL, (size_t)PQgetlength(r, 0, 0),
                                          (const uint8_t *)PQgetvalue(r, 0, 0));
        *consent = PQgetlength(r, 0, 1) == 1 && PQgetvalue(r, 0, 1)[0] == 1; // binary bool
    }
    if (r)
        PQclear(r);
    return referral;
}

int booking_cmd_list_victim(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                            reply_t *reply) {
    if (booking_require_victim_contact(who, reply) != 0)
        return -1;
    Cara__ListVictimContacts *req =
        (Cara__ListVictimContacts *)envelope_payload(env, &cara__list_victim_contacts__descriptor);
    if (!req)
        return reply_field_error(reply, "payload", "not a valid cara.ListVictimContacts");
    int rc = -1;
    PGresult *r = NULL;
    Cara__Referral *referral = NULL;
    Cara__VictimContactView *views = NULL, **ptrs = NULL;
    booking_case_t c;
    int found = booking_case_load(service_db(svc), req->referral_id, who->org, &c);
    if (found != 1) {
        rc = booking_case_refuse(svc, who, req->referral_id, found, reply);
        goto cleanup;
    }
    const char *values[] = {c.case_id};
    r = db_query(service_db(svc),
                 "SELECT kind, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
                 " safety_concern, notes, recorded_by FROM victim_contact WHERE case_id = $1"
                 " ORDER BY at, id",
                 1, values);
    if (!r) {
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable");
        goto cleanup;
    }
    int n = PQntuples(r);
    views = calloc((size_t)n + 1, sizeof *views);
    ptrs = calloc((size_t)n + 1, sizeof *ptrs);
    if (!views || !ptrs)
        goto cleanup;
    for (int i = 0; i < n; i++) {
        cara__victim_contact_view__init(&views[i]);
        views[i].kind = PQgetvalue(r, i, 0);
        views[i].at = PQgetvalue(r, i, 1);
        views[i].safety_concern = strcmp(PQgetvalue(r, i, 2), "t") == 0;
        views[i].notes = PQgetvalue(r, i, 3);
        views[i].recorded_by = PQgetvalue(r, i, 4);
        ptrs[i] = &views[i];
    }
    // The victim's contact details, from the referral as the police sent it.
    int consent = 0;
    referral = s_stored_referral(service_db(svc), c.case_id, &consent);
    if (!referral) {
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable");
        goto cleanup;
    }
    // Reading victim data is itself recorded.
    if (service_audit(svc, who, "victim_contact_viewed", "provider_case", c.referral_id,
                      json_pack("{s:i}", "records", n)) != 0)
        goto cleanup;
    Cara__VictimContactList list = CARA__VICTIM_CONTACT_LIST__INIT;
    list.contacts = ptrs;
    list.n_contacts = (size_t)n;
    // The history stays the provider's record; the victim's details go only while the victim
    // consents to contact.
    list.victim = consent ? referral->victim : NULL;
    rc = reply_ok(reply, &list.base);
cleanup:
    if (referral)
        cara__referral__free_unpacked(referral, NULL);
    free(views);
    free(ptrs);
    if (r)
        PQclear(r);
    cara__list_victim_contacts__free_unpacked(req, NULL);
    return rc;
}
