// pbstrip: unknown fields (a newer schema's field this build does not know) are gone after a
// strip, at every depth, and the known fields are kept; they are freed with the allocator the
// message was unpacked with.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cara/pbstrip.h"
#include "intake.pb-c.h"
#include "triage.pb-c.h"

#define NHS "NHS 943 476 5919"

static size_t s_allocs, s_frees;

static void *s_alloc(void *data, size_t size) {
    (void)data;
    s_allocs++;
    return malloc(size);
}

static void s_release(void *data, void *pointer) {
    (void)data;
    s_frees++;
    free(pointer);
}

static ProtobufCAllocator s_counting = {s_alloc, s_release, NULL};

// Whether needle occurs in the len bytes at data.
static int s_has(const uint8_t *data, size_t len, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(data + i, needle, n) == 0)
            return 1;
    return 0;
}

// A field this build does not know (number 99, length-delimited), as a newer sender packs it:
// protobuf-c keeps such a field's length prefix in its data. buf holds at least 128 bytes.
static ProtobufCMessageUnknownField s_unknown(const char *text, uint8_t *buf) {
    size_t n = strlen(text);
    assert_true(n < 127);
    buf[0] = (uint8_t)n;
    memcpy(buf + 1, text, n);
    ProtobufCMessageUnknownField u = {99, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED, n + 1, buf};
    return u;
}

static uint8_t *s_pack(const ProtobufCMessage *msg, size_t *len) {
    *len = protobuf_c_message_get_packed_size(msg);
    uint8_t *out = malloc(*len ? *len : 1);
    assert_non_null(out);
    assert_int_equal(protobuf_c_message_pack(msg, out), *len);
    return out;
}

static void test_unknown_fields_in_sub_messages_are_stripped(void **state) {
    (void)state;
    uint8_t b1[128], b2[128];
    ProtobufCMessageUnknownField top = s_unknown("top " NHS, b1), deep = s_unknown(NHS, b2),
                                 second = {100, PROTOBUF_C_WIRE_TYPE_VARINT, 1, (uint8_t *)"\x2a"};
    ProtobufCMessageUnknownField deep_fields[] = {deep, second};
    Cara__Offender offender = CARA__OFFENDER__INIT;
    offender.sex = "male";
    offender.pseudonym = "p-1";
    offender.base.n_unknown_fields = 2;
    offender.base.unknown_fields = deep_fields;
    Cara__Caution caution = CARA__CAUTION__INIT;
    caution.offence_category = "common_assault";
    Cara__Referral referral = CARA__REFERRAL__INIT;
    referral.force = "dyfed-powys";
    referral.offender = &offender;
    referral.caution = &caution;
    referral.base.n_unknown_fields = 1;
    referral.base.unknown_fields = &top;
    Cara__ReferralSubmitted event = CARA__REFERRAL_SUBMITTED__INIT;
    event.referral_id = "r-1";
    event.referral = &referral;
    size_t len;
    uint8_t *packed = s_pack(&event.base, &len);
    assert_true(s_has(packed, len, NHS));
    assert_true(s_has(packed, len, "\xa0\x06\x2a"));

    s_allocs = s_frees = 0;
    Cara__ReferralSubmitted *m = cara__referral_submitted__unpack(&s_counting, len, packed);
    assert_non_null(m);
    // protobuf-c kept them: this is what would pass through a view.
    assert_int_equal(m->referral->base.n_unknown_fields, 1);
    assert_int_equal(m->referral->offender->base.n_unknown_fields, 2);
    pbstrip_unknown(&m->base, &s_counting);
    assert_int_equal(m->referral->base.n_unknown_fields, 0);
    assert_null(m->referral->base.unknown_fields);
    assert_int_equal(m->referral->offender->base.n_unknown_fields, 0);
    assert_null(m->referral->offender->base.unknown_fields);
    size_t len2;
    uint8_t *again = s_pack(&m->base, &len2);
    cara__referral_submitted__free_unpacked(m, &s_counting);
    assert_int_equal(s_allocs, s_frees); // freed once each, with the unpacking allocator
    assert_false(s_has(again, len2, NHS));
    assert_false(s_has(again, len2, "\xa0\x06\x2a")); // field 100 = 42

    // The known fields are all there.
    Cara__ReferralSubmitted *back = cara__referral_submitted__unpack(NULL, len2, again);
    assert_non_null(back);
    assert_string_equal(back->referral_id, "r-1");
    assert_string_equal(back->referral->force, "dyfed-powys");
    assert_string_equal(back->referral->offender->sex, "male");
    assert_string_equal(back->referral->offender->pseudonym, "p-1");
    assert_string_equal(back->referral->caution->offence_category, "common_assault");
    assert_null(back->referral->victim);
    assert_int_equal(back->referral->base.n_unknown_fields, 0);
    assert_int_equal(back->referral->offender->base.n_unknown_fields, 0);
    cara__referral_submitted__free_unpacked(back, NULL);
    free(packed);
    free(again);
}

static void test_unknown_fields_in_repeated_messages_are_stripped(void **state) {
    (void)state;
    // Raw bytes appended to a packed message (a newer sender's field 99) also count.
    Cara__ReasonCode a = CARA__REASON_CODE__INIT, b = CARA__REASON_CODE__INIT;
    a.code = "under_18";
    b.code = "manual";
    uint8_t buf[128];
    ProtobufCMessageUnknownField u = s_unknown(NHS, buf);
    b.base.n_unknown_fields = 1;
    b.base.unknown_fields = &u;
    Cara__ReasonCode *codes[] = {&a, &b};
    Cara__ReferralReturned event = CARA__REFERRAL_RETURNED__INIT;
    event.referral_id = "r-2";
    event.reasons = codes;
    event.n_reasons = 2;
    size_t len;
    uint8_t *packed = s_pack(&event.base, &len);
    const char tail[] = "\x9a\x06\x06Vexley"; // field 99, length-delimited, 6 bytes
    uint8_t *raw = realloc(packed, len + sizeof tail - 1);
    assert_non_null(raw);
    memcpy(raw + len, tail, sizeof tail - 1);
    len += sizeof tail - 1;

    Cara__ReferralReturned *m = cara__referral_returned__unpack(NULL, len, raw);
    assert_non_null(m);
    assert_int_equal(m->base.n_unknown_fields, 1);
    assert_int_equal(m->reasons[1]->base.n_unknown_fields, 1);
    pbstrip_unknown(&m->base, NULL);
    size_t len2;
    uint8_t *again = s_pack(&m->base, &len2);
    cara__referral_returned__free_unpacked(m, NULL);
    assert_false(s_has(again, len2, NHS));
    assert_false(s_has(again, len2, "Vexley"));
    Cara__ReferralReturned *back = cara__referral_returned__unpack(NULL, len2, again);
    assert_non_null(back);
    assert_string_equal(back->referral_id, "r-2");
    assert_int_equal(back->n_reasons, 2);
    assert_string_equal(back->reasons[0]->code, "under_18");
    assert_string_equal(back->reasons[1]->code, "manual");
    assert_int_equal(back->base.n_unknown_fields, 0);
    assert_int_equal(back->reasons[1]->base.n_unknown_fields, 0);
    cara__referral_returned__free_unpacked(back, NULL);
    pbstrip_unknown(NULL, NULL); // tolerated
    free(raw);
    free(again);
}

// A blanked text field is empty and is freed once, whether it held text or was unpacked empty
// (protobuf-c's static empty string, which must not be freed).
static void test_text_fields_are_blanked(void **state) {
    (void)state;
    Cara__ReasonCode in = CARA__REASON_CODE__INIT;
    in.code = "manual";
    in.detail = "Marigold Vexley";
    uint8_t buf[64];
    size_t len = cara__reason_code__pack(&in, buf);
    Cara__ReasonCode *out = cara__reason_code__unpack(NULL, len, buf);
    assert_non_null(out);
    pbstrip_text(&out->detail);
    assert_string_equal(out->detail, "");
    pbstrip_text(&out->detail); // the static empty string: left as it is
    assert_string_equal(out->detail, "");
    assert_string_equal(out->code, "manual");
    cara__reason_code__free_unpacked(out, NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_fields_in_sub_messages_are_stripped),
        cmocka_unit_test(test_unknown_fields_in_repeated_messages_are_stripped),
        cmocka_unit_test(test_text_fields_are_blanked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
