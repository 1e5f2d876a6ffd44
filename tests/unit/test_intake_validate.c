// intake validation without a database: the sample referral passes; each rule refuses what it
// should with the right field path; every error is reported at once; UTF-8 is checked strictly;
// amendments diff field by field; the JSON Schema in schemas/ agrees with the .proto and with
// the validator (fields, vocabularies, lengths, required fields); de-identification for national
// (no unknown fields, outcome reasons cut to their code).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../services/intake/intake_diff.h"
#include "../../services/intake/intake_validate.h"
#include "../../services/intake/intake_view.h"
#include "cara/envelope.h"
#include "cara/pbjson.h"
#include "cara/timeutil.h"
#include "cara/utf8.h"

static json_t *s_sample_json(void) {
    json_t *doc = json_load_file("examples/referral.json", 0, NULL);
    assert_non_null(doc);
    return doc;
}

static Cara__Referral *s_from_json(json_t *doc) {
    char err[256];
    Cara__Referral *r =
        (Cara__Referral *)pbjson_to_message(&cara__referral__descriptor, doc, err, sizeof err);
    if (!r)
        fprintf(stderr, "pbjson: %s\n", err);
    assert_non_null(r);
    return r;
}

static Cara__Referral *s_sample(void) {
    json_t *doc = s_sample_json();
    Cara__Referral *r = s_from_json(doc);
    json_decref(doc);
    return r;
}

static void s_set(char **field, const char *value) {
    if (*field && *field != protobuf_c_empty_string)
        free(*field);
    *field = strdup(value);
}

static intake_rules_t s_rules(void) {
    intake_rules_t rules = {.now_us = time_now_us(), .deadline_weeks = 16};
    return rules;
}

// Validates r; returns the reply (caller clears) and the count in *n.
static size_t s_validate(const Cara__Referral *r, reply_t *reply) {
    intake_rules_t rules = s_rules();
    reply_init(reply);
    return intake_validate_referral(r, &rules, "", reply);
}

static int s_has(const reply_t *reply, const char *field) {
    for (size_t i = 0; i < reply->msg.n_errors; i++)
        if (strcmp(reply->msg.errors[i]->field, field) == 0)
            return 1;
    return 0;
}

static void s_dump(const reply_t *reply) {
    for (size_t i = 0; i < reply->msg.n_errors; i++)
        fprintf(stderr, "  %s: %s\n", reply->msg.errors[i]->field, reply->msg.errors[i]->reason);
}

// Asserts that r has exactly one error, on field.
static void s_expect_only(Cara__Referral *r, const char *field) {
    reply_t reply;
    size_t n = s_validate(r, &reply);
    if (n != 1 || !s_has(&reply, field)) {
        fprintf(stderr, "expected one error on %s, got %zu:\n", field, n);
        s_dump(&reply);
    }
    assert_int_equal(n, 1);
    assert_true(s_has(&reply, field));
    reply_clear(&reply);
}

static void test_sample_is_valid_and_gets_its_deadline(void **state) {
    (void)state;
    Cara__Referral *r = s_sample();
    reply_t reply;
    size_t n = s_validate(r, &reply);
    s_dump(&reply);
    assert_int_equal(n, 0);
    reply_clear(&reply);
    assert_int_equal(intake_referral_normalise(r, 16), 0);
    assert_string_equal(r->caution->compliance_deadline, "2025-07-04");
    // A deadline the force gave is kept.
    assert_int_equal(intake_referral_normalise(r, 12), 0);
    assert_string_equal(r->caution->compliance_deadline, "2025-07-04");
    s_set(&r->caution->compliance_deadline, "");
    assert_int_equal(intake_referral_normalise(r, 12), 0);
    assert_string_equal(r->caution->compliance_deadline, "2025-06-06");
    cara__referral__free_unpacked(r, NULL);
}

static void test_dates(void **state) {
    (void)state;
    Cara__Referral *r = s_sample();
    s_set(&r->offender->date_of_birth, "1988-02-30");
    s_expect_only(r, "offender.date_of_birth");
    s_set(&r->offender->date_of_birth, "2025-03-15"); // after the caution
    s_expect_only(r, "offender.date_of_birth");
    s_set(&r->offender->date_of_birth, "2016-01-01"); // 9 at the caution
    s_expect_only(r, "offender.date_of_birth");
    s_set(&r->offender->date_of_birth, "1988-07-02");
    s_set(&r->caution->given_at, "2025-03-14T16:20:00"); // no offset
    s_expect_only(r, "caution.given_at");
    s_set(&r->caution->given_at, "2999-01-01T00:00:00Z"); // in the future
    s_expect_only(r, "caution.given_at");
    // The caution date is the date as written, in its own offset.
    s_set(&r->caution->given_at, "2025-03-15T00:30:00+01:00");
    s_set(&r->caution->compliance_deadline, "2025-03-15");
    s_expect_only(r, "caution.compliance_deadline");
    s_set(&r->caution->compliance_deadline, "2025-03-16");
    reply_t reply;
    assert_int_equal(s_validate(r, &reply), 0);
    reply_clear(&reply);
    s_set(&r->caution->compliance_deadline, "16/07/2025");
    s_expect_only(r, "caution.compliance_deadline");
    cara__referral__free_unpacked(r, NULL);
}

static void test_vocabularies(void **state) {
    (void)state;
    const char *paths[] = {
        "caution.offence_category", "offender.sex",     "offender.ethnicity",        "relationship",
        "risk.dash_level",          "risk.previous_da", "risk.children_in_household"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        Cara__Referral *r = s_sample();
        char **field = NULL;
        if (i == 0)
            field = &r->caution->offence_category;
        else if (i == 1)
            field = &r->offender->sex;
        else if (i == 2)
            field = &r->offender->ethnicity;
        else if (i == 3)
            field = &r->relationship;
        else if (i == 4)
            field = &r->risk->dash_level;
        else if (i == 5)
            field = &r->risk->previous_da;
        else
            field = &r->risk->children_in_household;
        s_set(field, "Something Else");
        s_expect_only(r, paths[i]);
        // Every listed word is accepted.
        for (const char *const *w = intake_vocabulary(paths[i]); *w; w++) {
            s_set(field, *w);
            reply_t reply;
            assert_int_equal(s_validate(r, &reply), 0);
            reply_clear(&reply);
        }
        cara__referral__free_unpacked(r, NULL);
    }
}

static void test_text_rules(void **state) {
    (void)state;
    Cara__Referral *r = s_sample();
    char big[300];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    s_set(&r->officer, big);
    s_expect_only(r, "officer");
    s_set(&r->officer, "PC 1\nTwo lines"); // a one-line field
    s_expect_only(r, "officer");
    s_set(&r->officer, "PC 1");
    s_set(&r->caution->condition_text, "Line one\nLine two\tindented"); // free text: fine
    reply_t reply;
    assert_int_equal(s_validate(r, &reply), 0);
    reply_clear(&reply);
    s_set(&r->offender->email, "not-an-email");
    s_expect_only(r, "offender.email");
    s_set(&r->offender->email, "");
    s_set(&r->offender->phone, "call me");
    s_expect_only(r, "offender.phone");
    s_set(&r->offender->phone, "");
    s_set(&r->victim->phone, ""); // consents, but no way to reach the victim
    s_expect_only(r, "victim.phone");
    r->victim->consents_to_contact = 0;
    r->offender->interpreter_needed = 1;
    s_set(&r->offender->preferred_language, "");
    s_expect_only(r, "offender.preferred_language");
    s_set(&r->offender->preferred_language, "Polish");
    s_set(&r->force, "Dyfed Powys");
    s_expect_only(r, "force");
    s_set(&r->force, "dyfed-powys");
    s_set(&r->offender->pseudonym, "abc");
    s_expect_only(r, "offender.pseudonym");
    s_set(&r->offender->pseudonym, "");
    r->offender->age_at_caution = 30;
    s_expect_only(r, "offender.age_at_caution");
    r->offender->age_at_caution = 0;
    // Protective orders: at most 20, none empty.
    char *orders[21];
    for (int i = 0; i < 21; i++)
        orders[i] = strdup("Non-molestation order");
    free(r->risk->protective_orders);
    r->risk->protective_orders = malloc(sizeof orders);
    memcpy(r->risk->protective_orders, orders, sizeof orders);
    r->risk->n_protective_orders = 21;
    s_expect_only(r, "risk.protective_orders");
    r->risk->n_protective_orders = 20;
    free(r->risk->protective_orders[20]);
    s_set(&r->risk->protective_orders[3], "");
    s_expect_only(r, "risk.protective_orders[3]");
    cara__referral__free_unpacked(r, NULL);
}

static void test_utf8(void **state) {
    (void)state;
    assert_true(utf8_valid("Siân Llŷr 😀"));
    assert_false(utf8_valid("\xff"));
    assert_false(utf8_valid("\xc0\xaf"));         // overlong '/'
    assert_false(utf8_valid("\xe0\x80\xaf"));     // overlong, 3 bytes
    assert_false(utf8_valid("\xed\xa0\x80"));     // surrogate
    assert_false(utf8_valid("\xf4\x90\x80\x80")); // past U+10FFFF
    assert_false(utf8_valid("\xe2\x82"));         // truncated
    Cara__Referral *r = s_sample();
    s_set(&r->victim->safe_contact_times, "after \xed\xa0\x80 six");
    s_expect_only(r, "victim.safe_contact_times");
    cara__referral__free_unpacked(r, NULL);
}

static void test_every_error_at_once(void **state) {
    (void)state;
    Cara__Referral *r = s_sample();
    cara__caution__free_unpacked(r->caution, NULL);
    r->caution = NULL;
    s_set(&r->offender->name, "");
    s_set(&r->offender->sex, "x");
    s_set(&r->victim->name, "");
    s_set(&r->relationship, "");
    reply_t reply;
    intake_rules_t rules = s_rules();
    reply_init(&reply);
    assert_int_equal(intake_validate_referral(r, &rules, "referral.", &reply), 5);
    assert_true(s_has(&reply, "referral.caution"));
    assert_true(s_has(&reply, "referral.offender.name"));
    assert_true(s_has(&reply, "referral.offender.sex"));
    assert_true(s_has(&reply, "referral.victim.name"));
    assert_true(s_has(&reply, "referral.relationship"));
    assert_int_equal(reply.msg.status, CARA__REPLY__STATUS__INVALID);
    reply_clear(&reply);
    cara__referral__free_unpacked(r, NULL);
}

static void test_diff_field_by_field(void **state) {
    (void)state;
    Cara__Referral *a = s_sample(), *b = s_sample();
    intake_diff_t diff = {0};
    assert_int_equal(intake_diff(&a->base, &b->base, &diff), 0);
    s_set(&b->offender->phone, "07700 900000");
    b->offender->interpreter_needed = 1;
    s_set(&b->victim->name, "Siân Pryce");
    free(b->risk->protective_orders);
    b->risk->protective_orders = malloc(sizeof(char *));
    b->risk->protective_orders[0] = strdup("Domestic abuse protection notice");
    b->risk->n_protective_orders = 1;
    assert_int_equal(intake_diff(&a->base, &b->base, &diff), 4);
    assert_string_equal(diff.items[0]->field, "offender.phone");
    assert_string_equal(diff.items[0]->old_value, "07700 900123");
    assert_string_equal(diff.items[0]->new_value, "07700 900000");
    assert_string_equal(diff.items[1]->field, "offender.interpreter_needed");
    assert_string_equal(diff.items[1]->old_value, "false");
    assert_string_equal(diff.items[1]->new_value, "true");
    assert_string_equal(diff.items[2]->field, "risk.protective_orders");
    assert_string_equal(diff.items[2]->old_value, "[]");
    assert_string_equal(diff.items[2]->new_value, "[\"Domestic abuse protection notice\"]");
    assert_string_equal(diff.items[3]->field, "victim.name");
    intake_diff_clear(&diff);
    // A missing sub-message differs in each of its set fields.
    cara__victim__free_unpacked(b->victim, NULL);
    b->victim = NULL;
    assert_true(intake_diff(&a->base, &b->base, &diff) >= 4);
    intake_diff_clear(&diff);
    cara__referral__free_unpacked(a, NULL);
    cara__referral__free_unpacked(b, NULL);
}

// The schema node for a dotted path, or NULL.
static json_t *s_schema_node(json_t *schema, const char *path) {
    char copy[128];
    snprintf(copy, sizeof copy, "%s", path);
    json_t *node = schema;
    for (char *part = strtok(copy, "."); part && node; part = strtok(NULL, "."))
        node = json_object_get(json_object_get(node, "properties"), part);
    return node;
}

static int s_in_required(json_t *schema, const char *path) {
    char parent[128];
    snprintf(parent, sizeof parent, "%s", path);
    char *dot = strrchr(parent, '.');
    const char *leaf = dot ? dot + 1 : path;
    json_t *owner = schema;
    if (dot) {
        *dot = '\0';
        owner = s_schema_node(schema, parent);
    }
    json_t *req = json_object_get(owner, "required");
    for (size_t i = 0; i < json_array_size(req); i++)
        if (strcmp(json_string_value(json_array_get(req, i)), leaf) == 0)
            return 1;
    return 0;
}

// Checks every field of desc (recursively) against the schema; returns fields checked.
static int s_check_schema(json_t *schema, const ProtobufCMessageDescriptor *desc,
                          const char *base) {
    int checked = 0;
    json_t *node = *base ? s_schema_node(schema, base) : schema;
    assert_non_null(node);
    // No property in the schema that the .proto does not have.
    const char *key;
    json_t *value;
    json_object_foreach(json_object_get(node, "properties"), key, value) {
        (void)value;
        if (!protobuf_c_message_descriptor_get_field_by_name(desc, key))
            fprintf(stderr, "schema has %s%s%s, the .proto does not\n", base, *base ? "." : "",
                    key);
        assert_non_null(protobuf_c_message_descriptor_get_field_by_name(desc, key));
    }
    assert_true(json_is_false(json_object_get(node, "additionalProperties")));
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        char path[128];
        snprintf(path, sizeof path, "%s%s%s", base, *base ? "." : "", f->name);
        json_t *prop = s_schema_node(schema, path);
        if (!prop)
            fprintf(stderr, "the .proto has %s, the schema does not\n", path);
        assert_non_null(prop);
        checked++;
        if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            checked += s_check_schema(schema, f->descriptor, path);
            continue;
        }
        const char *const *words = intake_vocabulary(path);
        json_t *en = json_object_get(prop, "enum");
        if (words) {
            size_t n = 0;
            for (; words[n]; n++)
                assert_string_equal(json_string_value(json_array_get(en, n)), words[n]);
            assert_int_equal(json_array_size(en), n);
        } else {
            assert_null(en);
        }
        if (f->type == PROTOBUF_C_TYPE_STRING && !words) {
            json_t *max = f->label == PROTOBUF_C_LABEL_REPEATED
                              ? json_object_get(json_object_get(prop, "items"), "maxLength")
                              : json_object_get(prop, "maxLength");
            size_t expected = strcmp(path, "offender.pseudonym") == 0 ? 0 : intake_max_length(path);
            if ((size_t)json_integer_value(max) != expected)
                fprintf(stderr, "%s: schema maxLength %lld, intake %zu\n", path,
                        (long long)json_integer_value(max), expected);
            assert_int_equal(json_integer_value(max), expected);
        }
    }
    return checked;
}

// Blanks the string field at path in doc (a JSON copy of the sample).
static void s_blank_json(json_t *doc, const char *path) {
    char copy[128];
    snprintf(copy, sizeof copy, "%s", path);
    char *dot = strchr(copy, '.');
    json_t *owner = doc;
    const char *leaf = copy;
    if (dot) {
        *dot = '\0';
        owner = json_object_get(doc, copy);
        leaf = dot + 1;
    }
    json_object_set_new(owner, leaf, json_string(""));
}

static void test_schema_agrees_with_proto_and_validator(void **state) {
    (void)state;
    json_error_t jerr;
    json_t *schema = json_load_file("schemas/referral.schema.json", 0, &jerr);
    if (!schema)
        fprintf(stderr, "schema: %s\n", jerr.text);
    assert_non_null(schema);
    assert_true(s_check_schema(schema, &cara__referral__descriptor, "") > 35);
    // Required in the schema <=> intake says "is required" when the field is empty.
    const char *strings[] = {"force",
                             "caution_reference",
                             "officer",
                             "caution.given_at",
                             "caution.offence_category",
                             "caution.condition_text",
                             "caution.compliance_deadline",
                             "offender.name",
                             "offender.date_of_birth",
                             "offender.sex",
                             "offender.address",
                             "offender.phone",
                             "offender.email",
                             "offender.preferred_language",
                             "offender.access_needs",
                             "offender.ethnicity",
                             "relationship",
                             "risk.dash_level",
                             "risk.previous_da",
                             "risk.children_in_household",
                             "risk.safeguarding_notes",
                             "victim.name",
                             "victim.phone",
                             "victim.email",
                             "victim.address",
                             "victim.safe_contact_times",
                             "victim.preferred_language"};
    for (size_t i = 0; i < sizeof strings / sizeof *strings; i++) {
        json_t *doc = s_sample_json();
        json_object_set_new(json_object_get(doc, "victim"), "consents_to_contact", json_false());
        s_blank_json(doc, strings[i]);
        Cara__Referral *r = s_from_json(doc);
        reply_t reply;
        size_t n = s_validate(r, &reply);
        int required = s_in_required(schema, strings[i]);
        if ((size_t)required != n)
            fprintf(stderr, "%s: schema required %d, intake errors %zu\n", strings[i], required, n);
        assert_int_equal(n, (size_t)required);
        if (required) {
            assert_true(s_has(&reply, strings[i]));
            // ... and the schema refuses the empty text too (a word list has no empty word).
            json_t *prop = s_schema_node(schema, strings[i]);
            assert_true(json_integer_value(json_object_get(prop, "minLength")) >= 1 ||
                        json_object_get(prop, "enum"));
        }
        reply_clear(&reply);
        cara__referral__free_unpacked(r, NULL);
        json_decref(doc);
    }
    json_decref(schema);
}

static void test_deidentify_for_national(void **state) {
    (void)state;
    Cara__Referral *r = s_sample();
    assert_int_equal(intake_deidentify(r, "short"), -1); // a secret that is too short
    char expected[65];
    assert_int_equal(
        intake_pseudonym("0123456789abcdef", "gareth llewellyn pryce", "1988-07-02", expected), 0);
    assert_int_equal(intake_deidentify(r, "0123456789abcdef"), 0);
    assert_string_equal(r->offender->pseudonym, expected);
    assert_int_equal(r->offender->age_at_caution, 36);
    const char *blank[] = {r->offender->name,
                           r->offender->date_of_birth,
                           r->offender->address,
                           r->offender->phone,
                           r->offender->email,
                           r->offender->access_needs,
                           r->officer,
                           r->caution_reference,
                           r->caution->condition_text,
                           r->risk->safeguarding_notes};
    for (size_t i = 0; i < sizeof blank / sizeof *blank; i++)
        assert_string_equal(blank[i], "");
    assert_null(r->victim);
    assert_string_equal(r->offender->ethnicity, "white_british");
    assert_string_equal(r->risk->dash_level, "standard");
    cara__referral__free_unpacked(r, NULL);
}

// The national view of one event: the re-encoded payload (caller frees), or NULL if left out.
static uint8_t *s_national_view(const ProtobufCMessage *msg, size_t *len) {
    uint8_t *bytes = NULL, *payload = NULL;
    size_t n = 0;
    assert_int_equal(envelope_pack(msg, NULL, NULL, &bytes, &n, NULL), 0);
    Cara__Envelope *env = envelope_unpack(bytes, n);
    assert_non_null(env);
    int keep = intake_view_national(env, "0123456789abcdef", &payload, len);
    cara__envelope__free_unpacked(env, NULL);
    free(bytes);
    assert_true(keep == 0 || payload != NULL);
    return payload;
}

static int s_bytes_have(const uint8_t *data, size_t len, const char *needle) {
    return len >= strlen(needle) && memmem(data, len, needle, strlen(needle)) != NULL;
}

static void test_national_view_keeps_only_reason_codes_of_outcomes(void **state) {
    (void)state;
    // The police's withdrawal text and triage staff's return details reach the police's outcome;
    // national sees the leading code, if it is one, and nothing of the words.
    const char *const cases[][2] = {
        {"other: Marigold Vexley moved away from Cwm Tawelwch", "other"},
        {"not_suitable: Staff spoke to Thaddeus; manual: see notes", "not_suitable"},
        {"did_not_attend", "did_not_attend"},
        {"booking cancelled: provider", ""},
        {"Marigold rang to say", ""},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        Cara__Outcome outcome = CARA__OUTCOME__INIT;
        outcome.referral_id = "r-1";
        outcome.force = "dyfed-powys";
        outcome.caution_reference = "DP/2024/0001";
        outcome.status = "withdrawn";
        outcome.reason = (char *)cases[i][0];
        Cara__OutcomeUpdated ev = CARA__OUTCOME_UPDATED__INIT;
        ev.outcome = &outcome;
        size_t len = 0;
        uint8_t *payload = s_national_view(&ev.base, &len);
        assert_non_null(payload);
        Cara__OutcomeUpdated *m = cara__outcome_updated__unpack(NULL, len, payload);
        assert_non_null(m);
        assert_string_equal(m->outcome->reason, cases[i][1]);
        assert_string_equal(m->outcome->caution_reference, "");
        assert_string_equal(m->outcome->status, "withdrawn");
        assert_string_equal(m->outcome->referral_id, "r-1");
        cara__outcome_updated__free_unpacked(m, NULL);
        free(payload);
    }
}

static void test_national_view_drops_unknown_fields(void **state) {
    (void)state;
    // A newer police schema's offender field (number 99, say an NHS number) this build does not
    // know: protobuf-c would keep it through de-identification and pack it again.
    uint8_t nhs[] = "\x10NHS 943 476 5919";
    ProtobufCMessageUnknownField unknown = {99, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED,
                                            sizeof nhs - 1, nhs};
    Cara__Referral *r = s_sample();
    r->offender->base.n_unknown_fields = 1;
    r->offender->base.unknown_fields = &unknown;
    Cara__ReferralSubmitted ev = CARA__REFERRAL_SUBMITTED__INIT;
    ev.referral_id = "r-1";
    ev.referral = r;
    size_t len = 0;
    uint8_t *packed = malloc(protobuf_c_message_get_packed_size(&ev.base));
    assert_non_null(packed);
    assert_true(s_bytes_have(packed, protobuf_c_message_pack(&ev.base, packed), "943 476"));
    free(packed);
    uint8_t *payload = s_national_view(&ev.base, &len);
    r->offender->base.n_unknown_fields = 0;
    r->offender->base.unknown_fields = NULL;
    cara__referral__free_unpacked(r, NULL);
    assert_non_null(payload);
    assert_false(s_bytes_have(payload, len, "943 476"));
    Cara__ReferralSubmitted *m = cara__referral_submitted__unpack(NULL, len, payload);
    assert_non_null(m);
    assert_int_equal(m->referral->offender->base.n_unknown_fields, 0);
    assert_int_equal(strlen(m->referral->offender->pseudonym), 64);
    assert_string_equal(m->referral->offender->name, "");
    cara__referral_submitted__free_unpacked(m, NULL);
    free(payload);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample_is_valid_and_gets_its_deadline),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_vocabularies),
        cmocka_unit_test(test_text_rules),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_every_error_at_once),
        cmocka_unit_test(test_diff_field_by_field),
        cmocka_unit_test(test_schema_agrees_with_proto_and_validator),
        cmocka_unit_test(test_deidentify_for_national),
        cmocka_unit_test(test_national_view_keeps_only_reason_codes_of_outcomes),
        cmocka_unit_test(test_national_view_drops_unknown_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
