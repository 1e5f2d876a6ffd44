// Unit tests of the small common modules: time, money, uuid, config, keys, reply, envelope.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <stdlib.h>
#include <time.h>

#include "cara/config.h"
#include "cara/envelope.h"
#include "cara/keys.h"
#include "cara/money.h"
#include "cara/reply.h"
#include "cara/timeutil.h"
#include "cara/uuid.h"

static void test_time_round_trip_and_offsets(void **state) {
    (void)state;
    int64_t us;
    char buf[40];
    assert_int_equal(time_parse_iso("2025-04-01T10:00:00Z", &us), 0);
    assert_string_equal(time_format_iso(us, buf, sizeof buf), "2025-04-01T10:00:00.000000Z");
    assert_int_equal(time_parse_iso("2025-04-01T11:00:00.5+01:00", &us), 0);
    assert_string_equal(time_format_iso(us, buf, sizeof buf), "2025-04-01T10:00:00.500000Z");
    assert_int_equal(time_parse_iso("2025-04-01 10:00:00+00", &us), 0);
    assert_int_equal(time_parse_iso("2025-02-30T10:00:00Z", &us), -1);
    assert_int_equal(time_parse_iso("2025-04-01T10:00:00", &us), -1); // no zone: refused
    assert_int_equal(time_parse_iso("2025-04-01T25:00:00Z", &us), -1);
    assert_int_equal(time_parse_iso("garbage", &us), -1);
}

static void test_dates_and_ages(void **state) {
    (void)state;
    int32_t d1, d2;
    char buf[16];
    assert_int_equal(time_parse_date("2024-02-29", &d1), 0);
    assert_int_equal(time_parse_date("2023-02-29", &d1), -1);
    assert_int_equal(time_parse_date("2024-13-01", &d1), -1);
    assert_int_equal(time_parse_date("24-01-01", &d1), -1);
    assert_int_equal(time_parse_date("1970-01-01", &d1), 0);
    assert_int_equal(d1, 0);
    assert_int_equal(time_parse_date("2007-04-02", &d1), 0);
    assert_int_equal(time_parse_date("2025-04-01", &d2), 0);
    assert_int_equal(time_years_between(d1, d2), 17); // one day short of 18
    assert_int_equal(time_years_between(d1, d2 + 1), 18);
    assert_string_equal(time_format_date(d2 + 16 * 7, buf, sizeof buf), "2025-07-22");
}

// The UK date agrees with the C library's Europe/London zone every half hour over four years,
// its clock changes included: 00:30 BST on 2026-06-01 is the 1st in the UK, still the 31st in UTC.
static void test_uk_dates(void **state) {
    (void)state;
    int64_t t;
    char buf[16];
    assert_int_equal(time_parse_iso("2026-05-31T23:30:00Z", &t), 0);
    assert_string_equal(time_format_date(time_uk_day(t), buf, sizeof buf), "2026-06-01");
    assert_int_equal(time_parse_iso("2026-12-31T23:30:00Z", &t), 0);
    assert_string_equal(time_format_date(time_uk_day(t), buf, sizeof buf), "2026-12-31");
    if (setenv("TZ", "Europe/London", 1) != 0)
        fail();
    tzset();
    int64_t from, to;
    assert_int_equal(time_parse_iso("2024-01-01T00:15:00Z", &from), 0);
    assert_int_equal(time_parse_iso("2028-01-01T00:00:00Z", &to), 0);
    int checked = 0;
    for (int64_t us = from; us < to; us += 1800LL * 1000000) {
        time_t secs = (time_t)(us / 1000000);
        struct tm local;
        assert_non_null(localtime_r(&secs, &local));
        int32_t expect = time_days_from_civil(local.tm_year + 1900, (unsigned)local.tm_mon + 1,
                                              (unsigned)local.tm_mday);
        if (time_uk_day(us) != expect)
            fail_msg("%s: UK day %d, libc %d", time_format_iso(us, buf, sizeof buf),
                     time_uk_day(us), expect);
        checked++;
    }
    unsetenv("TZ");
    tzset();
    assert_true(checked > 70000);
}

static void test_money_is_exact_pence(void **state) {
    (void)state;
    int64_t p;
    char buf[32];
    assert_int_equal(money_parse("2500", &p), 0);
    assert_int_equal(p, 250000);
    assert_int_equal(money_parse("33,760.00", &p), 0);
    assert_int_equal(p, 3376000);
    assert_int_equal(money_parse("0.5", &p), 0);
    assert_int_equal(p, 50);
    assert_int_equal(money_parse("-12.34", &p), 0);
    assert_int_equal(p, -1234);
    assert_int_equal(money_parse("1.234", &p), -1);
    assert_int_equal(money_parse("abc", &p), -1);
    // A comma separates thousands only.
    assert_int_equal(money_parse("12,50", &p), -1);
    assert_int_equal(money_parse("1,2345", &p), -1);
    assert_int_equal(money_parse("1234,567", &p), -1);
    assert_int_equal(money_parse(",500", &p), -1);
    assert_int_equal(money_parse("1,000,000.01", &p), 0);
    assert_int_equal(p, 100000001);
    assert_int_equal(money_parse("", &p), -1);
    assert_string_equal(money_format(6000000, buf, sizeof buf), "60000.00");
    assert_string_equal(money_format(-5, buf, sizeof buf), "-0.05");
    int64_t parts[3];
    const int thirds[] = {3333, 3333, 3334};
    assert_int_equal(money_split(100, thirds, 3, parts), 0);
    assert_int_equal(parts[0] + parts[1] + parts[2], 100);
    const int bad[] = {5000, 4000};
    assert_int_equal(money_split(100, bad, 2, parts), -1);
    const int split[] = {6000, 4000};
    assert_int_equal(money_split(1000001, split, 2, parts), 0);
    assert_int_equal(parts[0] + parts[1], 1000001);
}

static void test_uuid(void **state) {
    (void)state;
    char a[UUID_STR_LEN], b[UUID_STR_LEN];
    uuid_new(a);
    uuid_new(b);
    assert_true(uuid_valid(a));
    assert_string_not_equal(a, b);
    assert_int_equal(a[14], '7');               // version 7
    assert_true(strchr("89ab", a[19]) != NULL); // RFC 4122 variant
    // Time-ordered: the first 48 bits are now, in milliseconds; a later id sorts after.
    char hex[13];
    memcpy(hex, a, 8);
    memcpy(hex + 8, a + 9, 4);
    hex[12] = '\0';
    long long ms = strtoll(hex, NULL, 16), now_ms = time_now_us() / 1000;
    assert_true(ms <= now_ms && ms > now_ms - 5000);
    usleep(2000);
    char later[UUID_STR_LEN];
    uuid_new(later);
    assert_true(strcmp(later, a) > 0);
    assert_false(uuid_valid("not-a-uuid"));
    assert_false(uuid_valid("0000000-0000-0000-0000-0000000000000"));
    // Random bytes come from a pool: across many refills no random part repeats.
    enum { MANY = 1000 };
    static char tails[MANY][13];
    for (int i = 0; i < MANY; i++) {
        char id[UUID_STR_LEN];
        uuid_new(id);
        assert_true(uuid_valid(id));
        memcpy(tails[i], id + 24, 13);
    }
    qsort(tails, MANY, sizeof tails[0], (int (*)(const void *, const void *))strcmp);
    for (int i = 1; i < MANY; i++)
        assert_string_not_equal(tails[i - 1], tails[i]);
}

static void test_config_env_overrides(void **state) {
    (void)state;
    json_t *root = json_pack("{s:{s:s}, s:i, s:{s:{s:s}}}", "db", "conninfo", "host=a",
                             "max_message_bytes", 10, "upstreams", "intake", "router", "tcp://x");
    config_t *cfg = config_from_json(root);
    json_decref(root);
    assert_string_equal(config_str(cfg, "db.conninfo", NULL), "host=a");
    assert_string_equal(config_str(cfg, "upstreams.intake.router", NULL), "tcp://x");
    assert_int_equal(config_int(cfg, "max_message_bytes", 0), 10);
    assert_null(config_str(cfg, "missing.path", NULL));
    setenv("CARA_DB_CONNINFO", "host=b", 1);
    setenv("CARA_MAX_MESSAGE_BYTES", "20", 1);
    json_t *empty = json_object();
    config_t *cfg2 = config_from_json(empty);
    json_decref(empty);
    assert_string_equal(config_str(cfg2, "db.conninfo", NULL), "host=b");
    assert_int_equal(config_int(cfg2, "max_message_bytes", 0), 20);
    unsetenv("CARA_DB_CONNINFO");
    unsetenv("CARA_MAX_MESSAGE_BYTES");
    // A password of digits in the environment is the text it was written as; a setting of the
    // wrong type in the file falls back to the default.
    setenv("CARA_DB_PASSWORD", "20250401", 1);
    assert_string_equal(config_str(cfg2, "db.password", NULL), "20250401");
    assert_string_equal(config_str(cfg2, "db.password", NULL), "20250401");
    assert_int_equal(config_int(cfg2, "db.password", 0), 20250401);
    unsetenv("CARA_DB_PASSWORD");
    json_t *typed = json_pack("{s:f, s:i}", "capacity", 10.0, "name", 7);
    config_t *cfg3 = config_from_json(typed);
    json_decref(typed);
    assert_non_null(cfg3);
    assert_int_equal(config_int(cfg3, "capacity", 12), 12);
    assert_string_equal(config_str(cfg3, "name", "x"), "x");
    config_destroy(&cfg3);
    config_destroy(&cfg);
    config_destroy(&cfg2);
    assert_null(cfg);
}

static void test_keys_and_keyring_files(void **state) {
    (void)state;
    char dir[] = "/tmp/cara-unit-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char keyfile[64], ring[64];
    snprintf(keyfile, sizeof keyfile, "%s/k.key", dir);
    snprintf(ring, sizeof ring, "%s/ring.json", dir);
    keypair_t kp, back;
    assert_int_equal(keys_generate(&kp), 0);
    assert_int_equal(keys_save(&kp, keyfile), 0);
    assert_int_equal(keys_load(keyfile, &back), 0);
    assert_string_equal(kp.secret_key, back.secret_key);
    assert_int_equal(keyring_file_add(ring, kp.public_key, "police", "dyfed-powys", "dp1"), 0);
    keyring_t *r = keyring_load(ring);
    identity_t who;
    assert_int_equal(keyring_find(r, kp.public_key, &who), 0);
    assert_string_equal(who.role, "police");
    assert_string_equal(who.org, "dyfed-powys");
    keyring_destroy(&r);
    assert_int_equal(keyring_file_remove(ring, "dp1"), 1);
    r = keyring_load(ring);
    assert_int_equal(keyring_find(r, kp.public_key, &who), -1);
    keyring_destroy(&r);
    assert_int_equal(keyring_file_add(ring, kp.public_key, "bad:role", "x", NULL), -1);
    unlink(keyfile);
    unlink(ring);
    rmdir(dir);
    assert_int_equal(identity_parse("provider:p-1", &who), 0);
    assert_string_equal(who.org, "p-1");
    assert_int_equal(identity_parse("noseparator", &who), -1);
    assert_int_equal(identity_parse(":org", &who), -1);
}

static void test_reply_and_envelope(void **state) {
    (void)state;
    reply_t reply;
    reply_init(&reply);
    reply_field_error(&reply, "offender.date_of_birth", "must be a date %s", "YYYY-MM-DD");
    reply_field_error(&reply, "force", "required");
    assert_int_equal(reply.msg.status, CARA__REPLY__STATUS__INVALID);
    assert_int_equal(reply_error_count(&reply), 2);
    uint8_t *data;
    size_t len;
    char id[UUID_STR_LEN];
    assert_int_equal(envelope_pack(&reply.msg.base, NULL, "corr", &data, &len, id), 0);
    Cara__Envelope *env = envelope_unpack(data, len);
    assert_non_null(env);
    assert_string_equal(env->event_id, id);
    assert_string_equal(env->type, "cara.Reply");
    assert_string_equal(env->correlation_id, "corr");
    Cara__Reply *back = (Cara__Reply *)envelope_payload(env, &cara__reply__descriptor);
    assert_non_null(back);
    assert_string_equal(back->errors[0]->field, "offender.date_of_birth");
    assert_string_equal(back->errors[0]->reason, "must be a date YYYY-MM-DD");
    // Wrong type asked for, or a newer schema version: no payload.
    assert_null(envelope_payload(env, &cara__fetch__descriptor));
    env->schema_version = ENVELOPE_SCHEMA_VERSION + 1;
    assert_null(envelope_payload(env, &cara__reply__descriptor));
    reply_t copy;
    reply_init(&copy);
    assert_int_equal(reply_copy_from(&copy, back), 0);
    assert_int_equal(reply_error_count(&copy), 2);
    reply_clear(&copy);
    cara__reply__free_unpacked(back, NULL);
    cara__envelope__free_unpacked(env, NULL);
    free(data);
    reply_clear(&reply);
    assert_null(envelope_unpack((const uint8_t *)"\xff\xff\xff", 3));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_round_trip_and_offsets),
        cmocka_unit_test(test_dates_and_ages),
        cmocka_unit_test(test_uk_dates),
        cmocka_unit_test(test_money_is_exact_pence),
        cmocka_unit_test(test_uuid),
        cmocka_unit_test(test_config_env_overrides),
        cmocka_unit_test(test_keys_and_keyring_files),
        cmocka_unit_test(test_reply_and_envelope),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
