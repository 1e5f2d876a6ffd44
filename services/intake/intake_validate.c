#include "intake_validate.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cara/timeutil.h"
#include "cara/utf8.h"

static const char *const s_offence[] = {
    "common_assault", "criminal_damage", "harassment", "threatening_behaviour",
    "theft_related",  "other",           NULL};
static const char *const s_sex[] = {"male", "female", NULL};
// ONS 2021 Census ethnic groups (England and Wales, 19 groups) and "not_stated".
static const char *const s_ethnicity[] = {"asian_bangladeshi",
                                          "asian_chinese",
                                          "asian_indian",
                                          "asian_pakistani",
                                          "asian_other",
                                          "black_african",
                                          "black_caribbean",
                                          "black_other",
                                          "mixed_white_asian",
                                          "mixed_white_black_african",
                                          "mixed_white_black_caribbean",
                                          "mixed_other",
                                          "white_british",
                                          "white_irish",
                                          "white_gypsy_irish_traveller",
                                          "white_roma",
                                          "white_other",
                                          "other_arab",
                                          "other_any",
                                          "not_stated",
                                          NULL};
static const char *const s_relationship[] = {"intimate", "non_intimate", NULL};
static const char *const s_dash[] = {"standard", "medium", "high", NULL};
static const char *const s_yes_no[] = {"yes", "no", "not_known", NULL};

static const struct {
    const char *path;
    const char *const *words;
} s_vocabularies[] = {
    {"caution.offence_category", s_offence},
    {"offender.sex", s_sex},
    {"offender.ethnicity", s_ethnicity},
    {"relationship", s_relationship},
    {"risk.dash_level", s_dash},
    {"risk.previous_da", s_yes_no},
    {"risk.children_in_household", s_yes_no},
    {NULL, NULL},
};

static const struct {
    const char *path;
    size_t max;
} s_lengths[] = {
    {"force", 64},
    {"caution_reference", 64},
    {"officer", 200},
    {"caution.given_at", 40},
    {"caution.condition_text", 2000},
    {"caution.compliance_deadline", 10},
    {"offender.name", 200},
    {"offender.date_of_birth", 10},
    {"offender.address", 500},
    {"offender.phone", 40},
    {"offender.email", 254},
    {"offender.preferred_language", 64},
    {"offender.access_needs", 2000},
    {"offender.pseudonym", 64},
    {"risk.protective_orders", 200},
    {"risk.safeguarding_notes", 4000},
    {"victim.name", 200},
    {"victim.phone", 40},
    {"victim.email", 254},
    {"victim.address", 500},
    {"victim.safe_contact_times", 500},
    {"victim.preferred_language", 64},
    {NULL, 0},
};

// Free-text fields may hold line breaks; every other field is one line.
static const char *const s_multiline[] = {"caution.condition_text",
                                          "offender.address",
                                          "offender.access_needs",
                                          "risk.safeguarding_notes",
                                          "victim.address",
                                          "victim.safe_contact_times",
                                          NULL};

const char *const *intake_vocabulary(const char *path) {
    for (size_t i = 0; s_vocabularies[i].path; i++)
        if (strcmp(s_vocabularies[i].path, path) == 0)
            return s_vocabularies[i].words;
    return NULL;
}

size_t intake_max_length(const char *path) {
    for (size_t i = 0; s_lengths[i].path; i++)
        if (strcmp(s_lengths[i].path, path) == 0)
            return s_lengths[i].max;
    return intake_vocabulary(path) ? 32 : 200;
}

static int s_in(const char *const *words, const char *value) {
    for (size_t i = 0; words[i]; i++)
        if (strcmp(words[i], value) == 0)
            return 1;
    return 0;
}

static int s_multiline_field(const char *path) {
    for (size_t i = 0; s_multiline[i]; i++)
        if (strcmp(s_multiline[i], path) == 0)
            return 1;
    return 0;
}

typedef struct {
    const char *prefix;
    reply_t *reply;
    size_t errors;
} s_ctx_t;

static void s_error(s_ctx_t *ctx, const char *path, const char *reason) {
    char field[160];
    snprintf(field, sizeof field, "%s%s", ctx->prefix, path);
    reply_field_error(ctx->reply, field, "%s", reason);
    ctx->errors++;
}

// Checks one string value's encoding, characters and length.
static void s_check_text(s_ctx_t *ctx, const char *path, const char *value) {
    if (!utf8_valid(value)) {
        s_error(ctx, path, "is not valid UTF-8");
        return;
    }
    size_t max = intake_max_length(path);
    if (strlen(value) > max) {
        char reason[80];
        snprintf(reason, sizeof reason, "is longer than %zu bytes", max);
        s_error(ctx, path, reason);
    }
    int multiline = s_multiline_field(path);
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (*p == 0x7F || (*p < 0x20 && !(multiline && (*p == '\n' || *p == '\r' || *p == '\t')))) {
            s_error(ctx, path,
                    multiline ? "holds a control character"
                              : "holds a control character or line break");
            return;
        }
    }
}

// Writes base, name and suffix joined into out (size bytes), cut short if they do not fit.
// (Called for every field of every submission: no snprintf.)
static void s_join(char *out, size_t size, const char *base, const char *name, const char *suffix) {
    size_t o = 0;
    for (const char *part[] = {base, name, suffix}, **p = part; p < part + 3; p++)
        for (const char *c = *p; *c && o + 1 < size; c++)
            out[o++] = *c;
    out[o] = '\0';
}

// Walks every string field of msg (recursively) and checks encoding, characters and length.
static void s_walk_strings(s_ctx_t *ctx, const ProtobufCMessage *msg, const char *base) {
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char path[128];
        s_join(path, sizeof path, base, f->name, "");
        const char *member = (const char *)msg + f->offset;
        if (f->type == PROTOBUF_C_TYPE_STRING && f->label != PROTOBUF_C_LABEL_REPEATED) {
            const char *value = *(char *const *)member;
            if (value)
                s_check_text(ctx, path, value);
        } else if (f->type == PROTOBUF_C_TYPE_STRING) {
            size_t n = *(const size_t *)((const char *)msg + f->quantifier_offset);
            char *const *values = *(char *const *const *)member;
            if (strcmp(path, "risk.protective_orders") == 0 && n > INTAKE_MAX_PROTECTIVE_ORDERS) {
                char reason[64];
                snprintf(reason, sizeof reason, "has more than %d entries",
                         INTAKE_MAX_PROTECTIVE_ORDERS);
                s_error(ctx, path, reason);
            }
            for (size_t k = 0; k < n; k++) {
                char item[160];
                snprintf(item, sizeof item, "%.100s[%zu]", path, k);
                if (!utf8_valid(values[k]))
                    s_error(ctx, item, "is not valid UTF-8");
                else if (strlen(values[k]) > intake_max_length(path))
                    s_error(ctx, item, "is too long");
                else if (!values[k][0])
                    s_error(ctx, item, "is empty");
            }
        } else if (f->type == PROTOBUF_C_TYPE_MESSAGE && f->label != PROTOBUF_C_LABEL_REPEATED) {
            const ProtobufCMessage *sub = *(ProtobufCMessage *const *)member;
            if (sub) {
                char sub_base[128];
                s_join(sub_base, sizeof sub_base, path, ".", "");
                s_walk_strings(ctx, sub, sub_base);
            }
        }
    }
}

static int s_empty(const char *s) {
    return !s || !*s;
}

// Required, and (if it has one) from the field's vocabulary.
static int s_required(s_ctx_t *ctx, const char *path, const char *value) {
    if (s_empty(value)) {
        s_error(ctx, path, "is required");
        return 0;
    }
    const char *const *words = intake_vocabulary(path);
    if (words && !s_in(words, value)) {
        char reason[700];
        size_t used = (size_t)snprintf(reason, sizeof reason, "unknown value; expected one of ");
        for (size_t i = 0; words[i] && used < sizeof reason; i++)
            used += (size_t)snprintf(reason + used, sizeof reason - used, "%s%s", i ? ", " : "",
                                     words[i]);
        s_error(ctx, path, reason);
        return 0;
    }
    return 1;
}

static int s_valid_force(const char *force) {
    for (const char *p = force; *p; p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '-')
            return 0;
    return 1;
}

static int s_valid_email(const char *email) {
    const char *at = strchr(email, '@');
    if (!at || at == email || !at[1] || strchr(at + 1, '@') || !strchr(at + 1, '.'))
        return 0;
    for (const char *p = email; *p; p++)
        if (isspace((unsigned char)*p))
            return 0;
    return 1;
}

static int s_valid_phone(const char *phone) {
    int digits = 0;
    for (const char *p = phone; *p; p++) {
        if (isdigit((unsigned char)*p))
            digits++;
        else if (!strchr(" +()-", *p))
            return 0;
    }
    return digits >= 6;
}

static void s_contact(s_ctx_t *ctx, const char *base, const char *phone, const char *email) {
    char path[64];
    if (!s_empty(phone) && !s_valid_phone(phone)) {
        snprintf(path, sizeof path, "%s.phone", base);
        s_error(ctx, path, "must be a telephone number (digits, spaces, + ( ) -)");
    }
    if (!s_empty(email) && !s_valid_email(email)) {
        snprintf(path, sizeof path, "%s.email", base);
        s_error(ctx, path, "must be an email address");
    }
}

size_t intake_validate_referral(const Cara__Referral *r, const intake_rules_t *rules,
                                const char *prefix, reply_t *reply) {
    s_ctx_t ctx = {prefix ? prefix : "", reply, 0};
    s_walk_strings(&ctx, &r->base, "");
    if (s_required(&ctx, "force", r->force) && !s_valid_force(r->force))
        s_error(&ctx, "force", "must be a force code (lower-case letters, digits, -)");
    s_required(&ctx, "caution_reference", r->caution_reference);
    s_required(&ctx, "officer", r->officer);
    s_required(&ctx, "relationship", r->relationship);

    int32_t caution_day = 0;
    int have_caution_day = 0;
    const Cara__Caution *c = r->caution;
    if (!c) {
        s_error(&ctx, "caution", "is required");
    } else {
        if (s_required(&ctx, "caution.given_at", c->given_at)) {
            int64_t us;
            if (time_parse_iso(c->given_at, &us) != 0 ||
                time_written_date(c->given_at, &caution_day) != 0)
                s_error(&ctx, "caution.given_at",
                        "must be an ISO 8601 time with an offset, e.g. 2025-04-01T10:30:00Z");
            else if (us > rules->now_us + 600 * 1000000LL)
                s_error(&ctx, "caution.given_at", "is in the future");
            else
                have_caution_day = 1;
        }
        s_required(&ctx, "caution.offence_category", c->offence_category);
        s_required(&ctx, "caution.condition_text", c->condition_text);
        if (!s_empty(c->compliance_deadline)) {
            int32_t deadline;
            if (time_parse_date(c->compliance_deadline, &deadline) != 0)
                s_error(&ctx, "caution.compliance_deadline", "must be a date YYYY-MM-DD");
            else if (have_caution_day && deadline <= caution_day)
                s_error(&ctx, "caution.compliance_deadline", "must be after the caution date");
        }
    }

    const Cara__Offender *o = r->offender;
    if (!o) {
        s_error(&ctx, "offender", "is required");
    } else {
        s_required(&ctx, "offender.name", o->name);
        if (s_required(&ctx, "offender.date_of_birth", o->date_of_birth)) {
            int32_t dob;
            if (time_parse_date(o->date_of_birth, &dob) != 0) {
                s_error(&ctx, "offender.date_of_birth", "must be a date YYYY-MM-DD");
            } else if (have_caution_day) {
                int age = time_years_between(dob, caution_day);
                if (dob >= caution_day)
                    s_error(&ctx, "offender.date_of_birth", "must be before the caution date");
                else if (age < INTAKE_MIN_AGE)
                    s_error(&ctx, "offender.date_of_birth",
                            "makes the offender younger than 10 at the caution");
                else if (age > 110)
                    s_error(&ctx, "offender.date_of_birth",
                            "makes the offender older than 110 at the caution");
            }
        }
        s_required(&ctx, "offender.sex", o->sex);
        s_required(&ctx, "offender.address", o->address);
        s_required(&ctx, "offender.ethnicity", o->ethnicity);
        s_contact(&ctx, "offender", o->phone, o->email);
        if (o->interpreter_needed && s_empty(o->preferred_language))
            s_error(&ctx, "offender.preferred_language",
                    "is required when an interpreter is needed");
        if (o->age_at_caution)
            s_error(&ctx, "offender.age_at_caution", "is derived by intake; leave it out");
        if (!s_empty(o->pseudonym))
            s_error(&ctx, "offender.pseudonym", "is derived by intake; leave it out");
    }

    const Cara__Risk *k = r->risk;
    if (!k) {
        s_error(&ctx, "risk", "is required");
    } else {
        s_required(&ctx, "risk.dash_level", k->dash_level);
        s_required(&ctx, "risk.previous_da", k->previous_da);
        s_required(&ctx, "risk.children_in_household", k->children_in_household);
    }

    const Cara__Victim *v = r->victim;
    if (!v) {
        s_error(&ctx, "victim", "is required");
    } else {
        s_required(&ctx, "victim.name", v->name);
        s_contact(&ctx, "victim", v->phone, v->email);
        if (v->consents_to_contact && s_empty(v->phone) && s_empty(v->email) && s_empty(v->address))
            s_error(&ctx, "victim.phone",
                    "a phone, email or address is required when the victim consents to contact");
    }
    return ctx.errors;
}

int intake_referral_normalise(Cara__Referral *r, int deadline_weeks) {
    Cara__Caution *c = r->caution;
    int32_t caution_day;
    if (!c || !s_empty(c->compliance_deadline))
        return 0;
    if (time_written_date(c->given_at, &caution_day) != 0)
        return -1;
    char date[16];
    time_format_date(caution_day +
                         7 * (deadline_weeks > 0 ? deadline_weeks : INTAKE_DEFAULT_DEADLINE_WEEKS),
                     date, sizeof date);
    char *copy = strdup(date);
    if (!copy)
        return -1;
    if (c->compliance_deadline && c->compliance_deadline != protobuf_c_empty_string)
        free(c->compliance_deadline);
    c->compliance_deadline = copy;
    return 0;
}
