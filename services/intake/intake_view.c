#include "intake_view.h"

#include <ctype.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "cara/log.h"
#include "cara/pbstrip.h"
#include "cara/timeutil.h"
#include "cara/victim_strip.h"
#include "intake_validate.h"

// Fields of an amendment that national may see (none of them identify anyone).
static const char *const s_national_fields[] = {"caution.given_at",
                                                "caution.offence_category",
                                                "caution.compliance_deadline",
                                                "offender.sex",
                                                "offender.preferred_language",
                                                "offender.interpreter_needed",
                                                "offender.learning_disability",
                                                "offender.ethnicity",
                                                "relationship",
                                                "risk.dash_level",
                                                "risk.previous_da",
                                                "risk.children_in_household",
                                                NULL};

int intake_pseudonym(const char *secret, const char *name, const char *date_of_birth,
                     char out[65]) {
    if (!secret || strlen(secret) < INTAKE_PSEUDONYM_MIN_SECRET || !name || !date_of_birth)
        return -1;
    size_t n = strlen(name);
    char *norm = malloc(n + 1);
    if (!norm)
        return -1;
    size_t used = 0;
    int space = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (isspace(*p)) {
            space = used > 0;
            continue;
        }
        if (space)
            norm[used++] = ' ';
        space = 0;
        norm[used++] = (char)tolower(*p);
    }
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)norm, used);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)"\n", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)date_of_birth, strlen(date_of_birth));
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(norm, n + 1);
    free(norm);
    sodium_bin2hex(out, 65, mac, sizeof mac);
    return 0;
}

int intake_deidentify(Cara__Referral *r, const char *secret) {
    Cara__Offender *o = r->offender;
    if (o) {
        int32_t dob, caution;
        char pseudonym[65];
        if (intake_pseudonym(secret, o->name, o->date_of_birth, pseudonym) != 0)
            return -1;
        if (r->caution && time_parse_date(o->date_of_birth, &dob) == 0 &&
            time_written_date(r->caution->given_at, &caution) == 0 && caution > dob)
            o->age_at_caution = (uint32_t)time_years_between(dob, caution);
        char *copy = strdup(pseudonym);
        if (!copy)
            return -1;
        pbstrip_text(&o->pseudonym);
        o->pseudonym = copy;
        pbstrip_text(&o->name);
        pbstrip_text(&o->date_of_birth);
        pbstrip_text(&o->address);
        pbstrip_text(&o->phone);
        pbstrip_text(&o->email);
        pbstrip_text(&o->access_needs);
    }
    if (r->victim) {
        cara__victim__free_unpacked(r->victim, NULL);
        r->victim = NULL;
    }
    pbstrip_text(&r->officer);
    pbstrip_text(&r->caution_reference);
    if (r->caution)
        pbstrip_text(&r->caution->condition_text);
    if (r->risk) {
        pbstrip_text(&r->risk->safeguarding_notes);
        for (size_t i = 0; i < r->risk->n_protective_orders; i++)
            free(r->risk->protective_orders[i]);
        free(r->risk->protective_orders);
        r->risk->protective_orders = NULL;
        r->risk->n_protective_orders = 0;
    }
    return 0;
}

// Keeps only the leading reason code of an outcome's reason ("other: <free text>",
// "not_suitable: <detail>; manual: <detail>"): the text up to the first ':' or ';' if it is a
// code (a-z, 0-9, '_', '-', at most 64), else nothing. The police's and staff's words stay out.
static int s_reason_code(char **reason) {
    const char *r = *reason ? *reason : "";
    size_t n = strcspn(r, ":;");
    int code = n > 0 && n <= 64;
    for (size_t i = 0; code && i < n; i++)
        code = (r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '_' ||
               r[i] == '-';
    if (!code) {
        pbstrip_text(reason);
        return 0;
    }
    char *copy = strndup(r, n);
    if (!copy)
        return -1;
    pbstrip_text(reason);
    *reason = copy;
    return 0;
}

static int s_national_field(const char *field) {
    for (size_t i = 0; s_national_fields[i]; i++)
        if (strcmp(s_national_fields[i], field) == 0)
            return 1;
    return 0;
}

static int s_encode(const ProtobufCMessage *msg, uint8_t **payload, size_t *len) {
    return envelope_encode_message(msg, payload, len) == 0 ? 1 : -1;
}

int intake_view_national(const Cara__Envelope *env, const char *secret, uint8_t **payload,
                         size_t *len) {
    int keep = 0;
    if (strcmp(env->type, "cara.ReferralSubmitted") == 0) {
        Cara__ReferralSubmitted *m =
            (Cara__ReferralSubmitted *)envelope_payload(env, &cara__referral_submitted__descriptor);
        pbstrip_unknown((ProtobufCMessage *)m, NULL); // a newer schema's field: as it came
        if (m && m->referral) // de-identified, or the fetch fails (out of memory)
            keep =
                intake_deidentify(m->referral, secret) == 0 ? s_encode(&m->base, payload, len) : -1;
        if (m)
            cara__referral_submitted__free_unpacked(m, NULL);
    } else if (strcmp(env->type, "cara.ReferralAmended") == 0) {
        Cara__ReferralAmended *m =
            (Cara__ReferralAmended *)envelope_payload(env, &cara__referral_amended__descriptor);
        pbstrip_unknown((ProtobufCMessage *)m, NULL);
        if (m && m->referral && intake_deidentify(m->referral, secret) != 0)
            keep = -1;
        else if (m && m->referral) {
            size_t kept = 0;
            for (size_t i = 0; i < m->n_changes; i++) {
                if (s_national_field(m->changes[i]->field))
                    m->changes[kept++] = m->changes[i];
                else
                    cara__field_change__free_unpacked(m->changes[i], NULL);
            }
            m->n_changes = kept;
            pbstrip_text(&m->reason);
            keep = s_encode(&m->base, payload, len);
        }
        if (m)
            cara__referral_amended__free_unpacked(m, NULL);
    } else if (strcmp(env->type, "cara.ReferralWithdrawn") == 0) {
        Cara__ReferralWithdrawn *m =
            (Cara__ReferralWithdrawn *)envelope_payload(env, &cara__referral_withdrawn__descriptor);
        if (m) {
            pbstrip_unknown(&m->base, NULL);
            pbstrip_text(&m->reason);
            keep = s_encode(&m->base, payload, len);
            cara__referral_withdrawn__free_unpacked(m, NULL);
        }
    } else if (strcmp(env->type, "cara.OutcomeUpdated") == 0) {
        Cara__OutcomeUpdated *m =
            (Cara__OutcomeUpdated *)envelope_payload(env, &cara__outcome_updated__descriptor);
        if (m && m->outcome) {
            pbstrip_unknown(&m->base, NULL);
            pbstrip_text(&m->outcome->caution_reference);
            // The reason is the police's withdrawal text or the triage staff's return detail.
            keep = s_reason_code(&m->outcome->reason) == 0 ? s_encode(&m->base, payload, len) : -1;
        }
        if (m)
            cara__outcome_updated__free_unpacked(m, NULL);
    }
    return keep;
}

static int s_police_transform(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                              uint8_t **payload, size_t *len) {
    (void)svc;
    (void)who;
    (void)payload;
    (void)len;
    return strcmp(env->type, "cara.OutcomeUpdated") == 0 ||
           strcmp(env->type, "cara.SafetyConcernRaised") == 0;
}

static int s_national_transform(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                                uint8_t **payload, size_t *len) {
    (void)who;
    return intake_view_national(env, config_str(service_config(svc), "pseudonym_secret", NULL),
                                payload, len);
}

// For operators (health checks, diagnosis, replay): every event with its ids, types, codes and
// the offender's referral, but no victim's details: ReferralSubmitted and ReferralAmended come
// with the victim blanked but for the consent flag, and an amendment without the changes of
// victim.* fields (their old and new values). Such an event that does not decode here (a newer
// schema_version, a damaged row) is served with its envelope only (id, type, schema_version,
// correlation id; the payload emptied): the operator sees it is there, and nothing of the
// victim. Same contract as stream_view_t.transform.
static int s_operator_transform(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                                uint8_t **payload, size_t *len) {
    (void)svc;
    (void)who;
    ProtobufCMessage *msg = NULL;
    if (strcmp(env->type, "cara.ReferralSubmitted") == 0) {
        if ((msg = envelope_payload(env, &cara__referral_submitted__descriptor)))
            victim_strip_details(((Cara__ReferralSubmitted *)msg)->referral);
    } else if (strcmp(env->type, "cara.ReferralAmended") == 0) {
        Cara__ReferralAmended *m =
            (Cara__ReferralAmended *)envelope_payload(env, &cara__referral_amended__descriptor);
        if ((msg = (ProtobufCMessage *)m)) {
            victim_strip_details(m->referral);
            victim_strip_changes(m->changes, &m->n_changes);
        }
    } else {
        return 1; // no referral in it: as it is
    }
    if (!msg) {
        *payload = malloc(1);
        *len = 0;
        return *payload ? 1 : -1;
    }
    int keep = s_encode(msg, payload, len);
    protobuf_c_message_free_unpacked(msg, NULL);
    return keep;
}

int intake_view_decide(service_t *svc, const identity_t *who, stream_view_t *view) {
    if (identity_is(who, "service") && strcmp(who->org, "national") == 0) {
        const char *secret = config_str(service_config(svc), "pseudonym_secret", NULL);
        if (!secret || strlen(secret) < INTAKE_PSEUDONYM_MIN_SECRET) {
            log_error("pseudonym_secret_missing", "reason",
                      "national view needs pseudonym_secret (at least 16 characters)");
            return -1;
        }
        view->transform = s_national_transform;
        return 0;
    }
    // Personal data goes only where it is needed (DESIGN.md section 4): to triage whole; to
    // operators without the victim's details; billing and booking have no business here.
    if (identity_is(who, "service") && strcmp(who->org, "triage") == 0)
        return 0;
    if (identity_is(who, "operator")) {
        view->transform = s_operator_transform;
        return 0;
    }
    if (identity_is(who, "police") && who->org[0]) {
        snprintf(view->scope, sizeof view->scope, "%s", who->org);
        view->transform = s_police_transform;
        return 0;
    }
    return -1;
}
