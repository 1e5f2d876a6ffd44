// Access control across the services: every refusal below is answered FORBIDDEN (or, for an
// unknown key, nothing at all) and recorded in the refusing service's audit table.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "billing.pb-c.h"
#include "booking.pb-c.h"
#include "harness.h"
#include "intake.pb-c.h"
#include "national.pb-c.h"
#include "triage.pb-c.h"

static harness_t *h;
static const char *const s_all[] = {"intake", "triage", "booking", "billing", "national"};

static int setup(void **state) {
    (void)state;
    h = harness_new("access");
    if (!h)
        return -1;
    harness_config(h, "intake", "pseudonym_secret", "\"access-test-secret-0123456789\"");
    harness_config(h, "national", "pseudonym_secret", "\"access-test-secret-0123456789\"");
    for (int i = 0; i < 5; i++)
        if (harness_start(h, s_all[i]) != 0)
            return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    harness_destroy(&h);
    return 0;
}

static void s_refused(const char *service, const char *role, const char *org,
                      const ProtobufCMessage *msg) {
    Cara__Reply *reply = harness_call(harness_client(h, service, role, org), msg);
    assert_non_null(reply);
    assert_int_equal(reply->status, CARA__REPLY__STATUS__FORBIDDEN);
    cara__reply__free_unpacked(reply, NULL);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) > 0 FROM audit WHERE action = 'refused' AND actor = '%s:%s'"
             " AND entity_id = '%s'", role, org, msg->descriptor->name);
    assert_int_equal(harness_wait_value(h, service, sql, "t", 5000), 0);
}

static void test_roles_cannot_issue_each_others_commands(void **state) {
    (void)state;
    Cara__CreateCohort cohort = CARA__CREATE_COHORT__INIT;
    s_refused("booking", "triage", "diversion", &cohort.base);     // triage -> provider command
    s_refused("booking", "police", "gwent", &cohort.base);
    Cara__TriageDecide decide = CARA__TRIAGE_DECIDE__INIT;
    s_refused("triage", "provider", "p1", &decide.base);           // provider -> triage command
    s_refused("triage", "police", "dyfed-powys", &decide.base);
    Cara__SubmitReferral submit = CARA__SUBMIT_REFERRAL__INIT;
    s_refused("intake", "provider", "p1", &submit.base);           // only police refer
    Cara__RunInvoices run = CARA__RUN_INVOICES__INIT;
    s_refused("billing", "provider", "p1", &run.base);             // only finance invoices
    Cara__NationalExport exp = CARA__NATIONAL_EXPORT__INIT;
    s_refused("national", "police", "gwent", &exp.base);           // the return is Hampton Trust's
    s_refused("national", "provider", "p1", &exp.base);
}

static void test_streams_only_to_those_entitled(void **state) {
    (void)state;
    struct {
        const char *service, *role, *org;
    } refused[] = {
        {"intake", "hampton_trust", "ht"}, {"triage", "hampton_trust", "ht"},
        {"booking", "hampton_trust", "ht"}, {"billing", "hampton_trust", "ht"},
        {"triage", "police", "gwent"},      {"booking", "police", "gwent"},
        {"intake", "provider", "p1"},       {"triage", "provider", "p1"},
        {"intake", "service", "billing"},   {"national", "provider", "p1"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        Cara__Fetch fetch = CARA__FETCH__INIT;
        fetch.stream = (char *)refused[i].service;
        s_refused(refused[i].service, refused[i].role, refused[i].org, &fetch.base);
    }
    printf("# %zu stream reads refused and audited\n", sizeof refused / sizeof *refused);
}

static void test_unknown_key_gets_nothing_from_any_service(void **state) {
    (void)state;
    keypair_t stranger;
    assert_int_equal(keys_generate(&stranger), 0);
    for (int i = 0; i < 5; i++) {
        client_t *c = client_new(harness_ctx(h), harness_endpoint(h, s_all[i]), &stranger,
                                 harness_service_public(h, s_all[i]));
        Cara__HealthRequest req = CARA__HEALTH_REQUEST__INIT;
        assert_null(client_call(c, &req.base, NULL, NULL, 500, 0));
        client_destroy(&c);
        char path[512], line[4096];
        snprintf(path, sizeof path, "%s/%s.log", harness_dir(h), s_all[i]);
        FILE *f = fopen(path, "r");
        int logged = 0;
        while (f && fgets(line, sizeof line, f))
            logged |= strstr(line, "zap_refused") && strstr(line, stranger.public_key);
        if (f)
            fclose(f);
        assert_true(logged);  // the refusal is on record, with the key
    }
}

static void test_database_roles_stay_in_their_schemas(void **state) {
    (void)state;
    int refusals = 0;
    for (int i = 0; i < 5; i++) {
        db_t *db = db_connect(harness_conninfo(h, s_all[i]), s_all[i], 5000);
        assert_non_null(db);
        for (int j = 0; j < 5; j++) {
            if (i == j)
                continue;
            char sql[128];
            snprintf(sql, sizeof sql, "SELECT count(*) FROM %s.outbox", s_all[j]);
            assert_int_equal(db_exec(db, sql, 0, NULL), -1);
            assert_string_equal(db_sqlstate(db), "42501");
            snprintf(sql, sizeof sql, "DELETE FROM %s.audit", s_all[j]);
            assert_int_equal(db_exec(db, sql, 0, NULL), -1);
            assert_string_equal(db_sqlstate(db), "42501");
            refusals += 2;
        }
        db_destroy(&db);
    }
    printf("# %d cross-schema statements refused by PostgreSQL\n", refusals);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roles_cannot_issue_each_others_commands),
        cmocka_unit_test(test_streams_only_to_those_entitled),
        cmocka_unit_test(test_unknown_key_gets_nothing_from_any_service),
        cmocka_unit_test(test_database_roles_stay_in_their_schemas),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
