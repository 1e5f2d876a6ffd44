#include "national_facts.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "booking.pb-c.h"
#include "cara/timeutil.h"
#include "intake.pb-c.h"
#include "national_merge.h"
#include "triage.pb-c.h"

const char *const national_sexes[] = {"female", "male", "unknown", NULL};
const char *const national_age_bands[] = {"18-24", "25-34",   "35-44", "45-54",
                                          "55+",   "unknown", NULL};
const char *const national_ethnic_groups[] = {"asian", "black",   "mixed", "white",
                                              "other", "unknown", NULL};
const char *const national_pathways[] = {"female_intimate",
                                         "female_non_intimate",
                                         "male_intimate",
                                         "male_non_intimate",
                                         "telephone",
                                         "not_triaged",
                                         NULL};
const char *const national_offences[] = {
    "common_assault", "criminal_damage", "harassment", "threatening_behaviour",
    "theft_related",  "other",           "unknown",    NULL};
const char *const national_dash_levels[] = {"standard", "medium", "high", "unknown", NULL};

const char *national_age_band(unsigned age) {
    if (age < 18)
        return "unknown";
    if (age <= 24)
        return "18-24";
    if (age <= 34)
        return "25-34";
    if (age <= 44)
        return "35-44";
    if (age <= 54)
        return "45-54";
    return "55+";
}

const char *national_ethnic_group(const char *code) {
    static const char *const groups[] = {"asian", "black", "mixed", "white", "other", NULL};
    for (size_t i = 0; code && groups[i]; i++) {
        size_t n = strlen(groups[i]);
        if (strncmp(code, groups[i], n) == 0 && code[n] == '_' &&
            strcmp(national_code(code, ""), code) == 0)
            return groups[i];
    }
    return "unknown";
}

const char *national_vocab(const char *value, const char *const *allowed) {
    for (size_t i = 0; value && allowed[i]; i++)
        if (strcmp(value, allowed[i]) == 0)
            return allowed[i];
    return "unknown";
}

const char *national_code(const char *value, const char *fallback) {
    size_t n = value ? strlen(value) : 0;
    if (n == 0 || n > 64)
        return fallback;
    for (size_t i = 0; i < n; i++) {
        char c = value[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return fallback;
    }
    return value;
}

// A pseudonym is 64 lowercase hex digits (HMAC-SHA256): anything else is not stored.
static const char *s_pseudonym(const char *p) {
    if (!p || strlen(p) != 64)
        return NULL;
    for (size_t i = 0; i < 64; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return NULL;
    return p;
}

// An ISO 8601 time, normalised to UTC text in buf, or NULL if it does not parse.
static const char *s_time(const char *text, char *buf, size_t size) {
    int64_t us;
    if (!text || time_parse_iso(text, &us) != 0)
        return NULL;
    return time_format_iso(us, buf, size);
}

// The YYYY-MM-DD at the start of text (a date, or a time as written), or NULL.
static const char *s_date(const char *text, char *buf, size_t size) {
    int32_t days;
    if (!text || strlen(text) < 10 || size < 11)
        return NULL;
    snprintf(buf, size, "%.10s", text);
    return time_parse_date(buf, &days) == 0 ? buf : NULL;
}

// The case key: HMAC-SHA256 of the referral (or cohort) id with this deployment's secret, so
// that the national schema holds no id that leads back to a person.
int national_key(const char *secret, const char *id, char out[65]) {
    if (!secret || strlen(secret) < 16 || !id)
        return -1;
    unsigned char key[crypto_auth_hmacsha256_KEYBYTES], mac[crypto_auth_hmacsha256_BYTES];
    crypto_generichash(key, sizeof key, (const unsigned char *)secret, strlen(secret), NULL, 0);
    crypto_auth_hmacsha256(mac, (const unsigned char *)id, strlen(id), key);
    sodium_bin2hex(out, 65, mac, sizeof mac);
    return 0;
}

// Every fact is one write, queued (db_send): the consumer reads a whole batch's writes back in
// one round trip (or, carefully, each event's after it), so a replay of the streams does not
// wait for the server once per event.
static apply_result_t s_exec(db_t *db, const char *sql, int n, const char *const *values) {
    return db_send(db, sql, n, values, NULL, NULL) == 0 ? APPLY_OK : APPLY_RETRY;
}

static apply_result_t s_undecodable(const Cara__Envelope *env, char *reason, size_t size) {
    snprintf(reason, size, "undecodable %s", env->type);
    return APPLY_POISON;
}

// Stores what national keeps of a (de-identified) referral: codes, bands, the caution date,
// the pseudonym. Names, dates of birth, contact details and the victim are never read.
static apply_result_t s_referral(db_t *db, const char *key, const Cara__Referral *r,
                                 const char *received_at) {
    const Cara__Offender *o = r->offender;
    char caution[16], received[40];
    const char *values[] = {
        key,
        national_code(r->force, "unknown"),
        o ? national_vocab(o->sex, national_sexes) : "unknown",
        o ? national_age_band(o->age_at_caution) : "unknown",
        national_ethnic_group(o ? o->ethnicity : NULL),
        r->caution ? national_vocab(r->caution->offence_category, national_offences) : "unknown",
        r->risk ? national_vocab(r->risk->dash_level, national_dash_levels) : "unknown",
        o ? s_pseudonym(o->pseudonym) : NULL,
        r->caution ? s_date(r->caution->given_at, caution, sizeof caution) : NULL,
        s_time(received_at, received, sizeof received),
    };
    return s_exec(db,
                  "INSERT INTO case_fact (case_key, force, sex, age_band, ethnicity, offence, dash,"
                  " pseudonym, caution_date, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
                  " $9::date, $10) ON CONFLICT (case_key) DO UPDATE SET force = EXCLUDED.force,"
                  " sex = EXCLUDED.sex, age_band = EXCLUDED.age_band,"
                  " ethnicity = EXCLUDED.ethnicity, offence = EXCLUDED.offence,"
                  " dash = EXCLUDED.dash, pseudonym = EXCLUDED.pseudonym,"
                  " caution_date = EXCLUDED.caution_date,"
                  " received_at = coalesce(EXCLUDED.received_at, case_fact.received_at)",
                  10, values);
}

static apply_result_t s_intake(db_t *db, const char *secret, const Cara__Envelope *env,
                               char *reason, size_t reason_size) {
    char key[65];
    apply_result_t rc = APPLY_OK;
    if (strcmp(env->type, "cara.ReferralSubmitted") == 0) {
        Cara__ReferralSubmitted *m =
            (Cara__ReferralSubmitted *)envelope_payload(env, &cara__referral_submitted__descriptor);
        if (!m)
            return s_undecodable(env, reason, reason_size);
        Cara__Referral empty = CARA__REFERRAL__INIT;
        rc = national_key(secret, m->referral_id, key) != 0
                 ? APPLY_RETRY
                 : s_referral(db, key, m->referral ? m->referral : &empty, m->received_at);
        cara__referral_submitted__free_unpacked(m, NULL);
    } else if (strcmp(env->type, "cara.ReferralAmended") == 0) {
        Cara__ReferralAmended *m =
            (Cara__ReferralAmended *)envelope_payload(env, &cara__referral_amended__descriptor);
        if (!m)
            return s_undecodable(env, reason, reason_size);
        if (m->referral)
            rc = national_key(secret, m->referral_id, key) != 0
                     ? APPLY_RETRY
                     : s_referral(db, key, m->referral, NULL);
        cara__referral_amended__free_unpacked(m, NULL);
    } else if (strcmp(env->type, "cara.ReferralWithdrawn") == 0) {
        Cara__ReferralWithdrawn *m =
            (Cara__ReferralWithdrawn *)envelope_payload(env, &cara__referral_withdrawn__descriptor);
        if (!m)
            return s_undecodable(env, reason, reason_size);
        char at[40];
        const char *values[] = {key, s_time(m->withdrawn_at, at, sizeof at)};
        rc = national_key(secret, m->referral_id, key) != 0
                 ? APPLY_RETRY
                 : s_exec(db,
                          "INSERT INTO case_fact (case_key, withdrawn, withdrawn_at) VALUES ($1,"
                          " true, $2) ON CONFLICT (case_key) DO UPDATE SET withdrawn = true,"
                          " withdrawn_at = coalesce(case_fact.withdrawn_at,"
                          " EXCLUDED.withdrawn_at)",
                          2, values);
        cara__referral_withdrawn__free_unpacked(m, NULL);
    }
    return rc;
}

// "a,b,c": the reason codes of a return, sorted and de-duplicated, codes only.
static char *s_reasons(Cara__ReasonCode **reasons, size_t n) {
    const char **codes = calloc(n + 1, sizeof *codes);
    char *out = calloc(n * 66 + 8, 1);
    if (!codes || !out) {
        free(codes);
        free(out);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        codes[i] = national_code(reasons[i] ? reasons[i]->code : NULL, "other");
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(codes[j - 1], codes[j]) > 0; j--) {
            const char *t = codes[j];
            codes[j] = codes[j - 1];
            codes[j - 1] = t;
        }
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(codes[i], codes[i - 1]) != 0) {
            if (*out)
                strcat(out, ",");
            strcat(out, codes[i]);
        }
    if (!*out)
        strcpy(out, "other");
    free(codes);
    return out;
}

static apply_result_t s_triage(db_t *db, const char *secret, const Cara__Envelope *env,
                               char *reason, size_t reason_size) {
    char key[65], at[40];
    apply_result_t rc = APPLY_OK;
    if (strcmp(env->type, "cara.ReferralTriaged") == 0) {
        Cara__ReferralTriaged *m =
            (Cara__ReferralTriaged *)envelope_payload(env, &cara__referral_triaged__descriptor);
        if (!m)
            return s_undecodable(env, reason, reason_size);
        const char *pathway = national_vocab(m->pathway, national_pathways);
        const char *values[] = {key, national_code(m->provider_id, "unknown"),
                                strcmp(pathway, "not_triaged") == 0 ? "unknown" : pathway,
                                s_time(m->triaged_at, at, sizeof at)};
        rc = national_key(secret, m->referral_id, key) != 0
                 ? APPLY_RETRY
                 : s_exec(db,
                          "INSERT INTO case_fact (case_key, provider, pathway, triaged_at) VALUES"
                          " ($1, $2, $3, $4) ON CONFLICT (case_key) DO UPDATE SET"
                          " provider = EXCLUDED.provider, pathway = EXCLUDED.pathway,"
                          " triaged_at = EXCLUDED.triaged_at",
                          4, values);
        cara__referral_triaged__free_unpacked(m, NULL);
    } else if (strcmp(env->type, "cara.TriageCaseUpdated") == 0) {
        // An amendment that moved the routed pathway (sex or relationship corrected).
        Cara__TriageCaseUpdated *m = (Cara__TriageCaseUpdated *)envelope_payload(
            env, &cara__triage_case_updated__descriptor);
        if (!m)
            return s_undecodable(env, reason, reason_size);
        const char *pathway = national_vocab(m->pathway, national_pathways);
        const char *values[] = {key, pathway, s_time(env->occurred_at, at, sizeof at)};
        if (strcmp(pathway, "unknown") != 0)
            rc = national_key(secret, m->referral_id, key) != 0
                     ? APPLY_RETRY
                     : s_exec(db,
                              "INSERT INTO case_fact (case_key, amended_pathway, amended_at)"
                              " VALUES ($1, $2, $3) ON CONFLICT (case_key) DO UPDATE SET"
                              " amended_pathway = EXCLUDED.amended_pathway,"
                              " amended_at = EXCLUDED.amended_at",
                              3, values);
        cara__triage_case_updated__free_unpacked(m, NULL);
    } else if (strcmp(env->type, "cara.ReferralReturned") == 0) {
        Cara__ReferralReturned *m =
            (Cara__ReferralReturned *)envelope_payload(env, &cara__referral_returned__descriptor);
        if (!m)
            return s_undecodable(env, reason, reason_size);
        char *all = s_reasons(m->reasons, m->n_reasons);
        // The primary reason is the first the triage decision gave.
        const char *values[] = {
            key, national_code(m->n_reasons && m->reasons[0] ? m->reasons[0]->code : NULL, "other"),
            all, s_time(m->returned_at, at, sizeof at)};
        rc = !all || national_key(secret, m->referral_id, key) != 0
                 ? APPLY_RETRY
                 : s_exec(db,
                          "INSERT INTO case_fact (case_key, returned_reason, return_reasons,"
                          " returned_at) VALUES ($1, $2, $3, $4) ON CONFLICT (case_key) DO UPDATE"
                          " SET returned_reason = EXCLUDED.returned_reason,"
                          " return_reasons = EXCLUDED.return_reasons,"
                          " returned_at = EXCLUDED.returned_at",
                          4, values);
        free(all);
        cara__referral_returned__free_unpacked(m, NULL);
    } else if (strcmp(env->type, "cara.TriageCaseWithdrawn") == 0) {
        Cara__TriageCaseWithdrawn *m = (Cara__TriageCaseWithdrawn *)envelope_payload(
            env, &cara__triage_case_withdrawn__descriptor);
        if (!m)
            return s_undecodable(env, reason, reason_size);
        const char *values[] = {key, s_time(m->withdrawn_at, at, sizeof at)};
        rc = national_key(secret, m->referral_id, key) != 0
                 ? APPLY_RETRY
                 : s_exec(db,
                          "INSERT INTO case_fact (case_key, withdrawn, withdrawn_at) VALUES ($1,"
                          " true, $2) ON CONFLICT (case_key) DO UPDATE SET withdrawn = true,"
                          " withdrawn_at = coalesce(case_fact.withdrawn_at,"
                          " EXCLUDED.withdrawn_at)",
                          2, values);
        cara__triage_case_withdrawn__free_unpacked(m, NULL);
    }
    return rc;
}

// Cohort events: counts and dates, by a keyed hash of the cohort id.
static apply_result_t s_cohort(const char *secret, db_t *db, const Cara__Envelope *env,
                               ProtobufCMessage *msg) {
    char key[65], n[16], date[16];
    const char *id = NULL, *sql = NULL, *v1 = NULL, *v2 = NULL, *v3 = NULL, *v4 = NULL;
    if (strcmp(env->type, "cara.CohortCreated") == 0) {
        Cara__CohortCreated *m = (Cara__CohortCreated *)msg;
        snprintf(n, sizeof n, "%u", m->capacity);
        id = m->cohort_id;
        v1 = national_code(m->provider_id, "unknown");
        v2 = national_vocab(m->cohort_type, national_pathways);
        v3 = n;
        v4 = s_date(m->part_b_date, date, sizeof date);
        sql = "INSERT INTO cohort_fact (cohort_key, provider, cohort_type, capacity, part_b_date)"
              " VALUES ($1, $2, $3, $4::int, $5::date) ON CONFLICT (cohort_key) DO UPDATE SET"
              " provider = EXCLUDED.provider, cohort_type = EXCLUDED.cohort_type,"
              " capacity = EXCLUDED.capacity,"
              " part_b_date = coalesce(cohort_fact.part_b_date, EXCLUDED.part_b_date)";
    } else if (strcmp(env->type, "cara.CohortCancelled") == 0) {
        Cara__CohortCancelled *m = (Cara__CohortCancelled *)msg;
        id = m->cohort_id;
        v1 = national_code(m->provider_id, "unknown");
        sql = "INSERT INTO cohort_fact (cohort_key, provider, cancelled) VALUES ($1, $2, true)"
              " ON CONFLICT (cohort_key) DO UPDATE SET cancelled = true";
    } else {
        Cara__CohortDelivered *m = (Cara__CohortDelivered *)msg;
        snprintf(n, sizeof n, "%u", m->participants);
        id = m->cohort_id;
        v1 = national_code(m->provider_id, "unknown");
        v2 = national_vocab(m->cohort_type, national_pathways);
        v3 = n;
        v4 = s_date(m->part_b_date, date, sizeof date);
        char rev[16];
        snprintf(rev, sizeof rev, "%u", m->revision);
        const char *values[] = {key, v1, v2, v3, v4, rev};
        if (national_key(secret, id, key) != 0)
            return APPLY_RETRY;
        // The latest revision wins (a correction after attendance was amended).
        return s_exec(db,
                      "INSERT INTO cohort_fact (cohort_key, provider, cohort_type, participants,"
                      " part_b_date, revision) VALUES ($1, $2, $3, $4::int, $5::date, $6::int)"
                      " ON CONFLICT (cohort_key) DO UPDATE SET participants = CASE WHEN"
                      " EXCLUDED.revision >= cohort_fact.revision THEN EXCLUDED.participants"
                      " ELSE cohort_fact.participants END,"
                      " revision = greatest(cohort_fact.revision, EXCLUDED.revision),"
                      " part_b_date = EXCLUDED.part_b_date, cohort_type = EXCLUDED.cohort_type",
                      6, values);
    }
    const char *values[] = {key, v1, v2, v3, v4};
    if (national_key(secret, id, key) != 0)
        return APPLY_RETRY;
    return s_exec(db, sql, v2 ? 5 : 2, values);
}

static void s_reopened(national_case_t *c, const char *unused) {
    (void)unused;
    national_case_reopened(c);
}

static apply_result_t s_booking(db_t *db, const char *secret, national_merge_t *merge,
                                const Cara__Envelope *env, char *reason, size_t reason_size) {
    static const struct {
        const char *type;
        const ProtobufCMessageDescriptor *desc;
    } known[] = {
        {"cara.SeatBooked", &cara__seat_booked__descriptor},
        {"cara.AttendanceRecorded", &cara__attendance_recorded__descriptor},
        {"cara.CaseCompleted", &cara__case_completed__descriptor},
        {"cara.CaseNonCompliant", &cara__case_non_compliant__descriptor},
        {"cara.VictimContactRecorded", &cara__victim_contact_recorded__descriptor},
        {"cara.ContactRecorded", &cara__contact_recorded__descriptor},
        {"cara.CohortCreated", &cara__cohort_created__descriptor},
        {"cara.CohortCancelled", &cara__cohort_cancelled__descriptor},
        {"cara.CohortDelivered", &cara__cohort_delivered__descriptor},
        {"cara.CaseReopened", &cara__case_reopened__descriptor},
    };
    size_t k = 0;
    while (k < sizeof known / sizeof *known && strcmp(env->type, known[k].type) != 0)
        k++;
    if (k == sizeof known / sizeof *known)
        return APPLY_OK; // not a fact national keeps
    ProtobufCMessage *msg = envelope_payload(env, known[k].desc);
    if (!msg)
        return s_undecodable(env, reason, reason_size);
    if (k >= 6 && k <= 8) {
        apply_result_t rc = s_cohort(secret, db, env, msg);
        protobuf_c_message_free_unpacked(msg, NULL);
        return rc;
    }
    // A case fact: held in the merge (written once per case per batch), or written at once.
    char key[65], at[40], date[16];
    const char *referral = NULL, *v1 = NULL;
    void (*rule)(national_case_t *, const char *) = NULL;
    switch (k) {
    case 0: {
        Cara__SeatBooked *m = (Cara__SeatBooked *)msg;
        referral = m->referral_id;
        v1 = s_time(m->booked_at, at, sizeof at);
        rule = national_case_booked;
        break;
    }
    case 1: {
        Cara__AttendanceRecorded *m = (Cara__AttendanceRecorded *)msg;
        if (strcmp(m->part, "A") == 0 && strcmp(m->status, "attended") == 0) {
            referral = m->referral_id;
            v1 = s_date(m->session_date, date, sizeof date);
            rule = national_case_started;
        }
        break;
    }
    case 2: {
        Cara__CaseCompleted *m = (Cara__CaseCompleted *)msg;
        referral = m->referral_id;
        v1 = s_time(m->completed_at, at, sizeof at);
        rule = national_case_completed;
        break;
    }
    case 3: {
        Cara__CaseNonCompliant *m = (Cara__CaseNonCompliant *)msg;
        referral = m->referral_id;
        v1 = national_code(m->reason, "other");
        rule = national_case_non_compliant;
        break;
    }
    case 4: {
        Cara__VictimContactRecorded *m = (Cara__VictimContactRecorded *)msg;
        referral = m->referral_id;
        v1 = national_code(m->kind, "other");
        rule = national_case_victim;
        break;
    }
    case 5: {
        Cara__ContactRecorded *m = (Cara__ContactRecorded *)msg;
        if (strcmp(m->outcome, "contacted") == 0) {
            referral = m->referral_id;
            v1 = s_time(m->at, at, sizeof at);
            rule = national_case_contact;
        }
        break;
    }
    case 9: {
        // The closure (non-compliance or completion) was undone by an attendance correction:
        // the case is open again until its next CaseCompleted or CaseNonCompliant.
        Cara__CaseReopened *m = (Cara__CaseReopened *)msg;
        if (m->reason) {
            referral = m->referral_id;
            rule = s_reopened;
        }
        break;
    }
    default:
        break;
    }
    apply_result_t rc = APPLY_OK;
    if (rule && national_key(secret, referral, key) != 0) {
        rc = APPLY_RETRY;
    } else if (rule && merge) {
        national_case_t *c = national_merge_case(merge, key);
        if (c)
            rule(c, v1);
        else
            rc = APPLY_RETRY;
    } else if (rule) {
        national_case_t one = {.upsert = false};
        memcpy(one.key, key, sizeof key);
        rule(&one, v1);
        rc = national_case_write(&one, db);
    }
    protobuf_c_message_free_unpacked(msg, NULL);
    return rc;
}

apply_result_t national_facts_apply(db_t *db, const char *secret, national_merge_t *merge,
                                    const Cara__Envelope *env, char *reason, size_t reason_size) {
    if (!secret || strlen(secret) < 16) {
        snprintf(reason, reason_size, "no pseudonym_secret");
        return APPLY_RETRY;
    }
    apply_result_t rc = s_intake(db, secret, env, reason, reason_size);
    if (rc == APPLY_OK)
        rc = s_triage(db, secret, env, reason, reason_size);
    if (rc == APPLY_OK)
        rc = s_booking(db, secret, merge, env, reason, reason_size);
    return rc;
}

static apply_result_t s_upstream(db_t *db, const Cara__Envelope *env, void *arg, char *reason,
                                 size_t reason_size) {
    service_t *svc = arg;
    return national_facts_apply(db, config_str(service_config(svc), "pseudonym_secret", NULL),
                                service_state(svc), env, reason, reason_size);
}

apply_result_t national_apply_intake(db_t *db, const Cara__Envelope *env, uint64_t seq, void *arg,
                                     char *reason, size_t reason_size) {
    (void)seq;
    return s_upstream(db, env, arg, reason, reason_size);
}

apply_result_t national_apply_triage(db_t *db, const Cara__Envelope *env, uint64_t seq, void *arg,
                                     char *reason, size_t reason_size) {
    (void)seq;
    return s_upstream(db, env, arg, reason, reason_size);
}

apply_result_t national_apply_booking(db_t *db, const Cara__Envelope *env, uint64_t seq, void *arg,
                                      char *reason, size_t reason_size) {
    (void)seq;
    return s_upstream(db, env, arg, reason, reason_size);
}

apply_result_t national_flush(db_t *db, void *arg, bool write) {
    national_merge_t *merge = service_state(arg);
    return merge ? national_merge_flush(merge, db, write) : APPLY_OK;
}
