// End-to-end chaos: 2,000 referrals from four concurrent police clients (two forces) through
// intake -> triage -> booking (and national), while a fault injector SIGKILLs and restarts
// random services and once restarts PostgreSQL itself in immediate mode. Afterwards every
// acknowledged referral exists exactly once in every schema it should reach, every outcome
// reached the police stream, and no dead letter is unexplained (there are none).
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cara/pbjson.h"
#include "cara/timeutil.h"
#include "harness.h"
#include "intake.pb-c.h"

#define REFERRALS 2000
#define CLIENTS 4
#define SECRET "chaos-deployment-secret-0123456789"
static const char *const s_forces[] = {"dyfed-powys", "gwent"};
static const char *const s_services[] = {"intake", "triage", "booking", "national"};
static harness_t *h;

typedef struct {
    int id;
    const keypair_t *keys;
    long acked, retries;
    volatile int done;
} police_t;

static void *s_police(void *arg) {
    police_t *p = arg;
    client_t *c = client_new(harness_ctx(h), harness_endpoint(h, "intake"), p->keys,
                             harness_service_public(h, "intake"));
    json_t *doc = json_load_file("examples/referral.json", 0, NULL);
    char when[40], err[256], ref[48];
    json_object_set_new(doc, "force", json_string(s_forces[p->id % 2]));
    json_object_set_new(
        json_object_get(doc, "caution"), "given_at",
        json_string(time_format_iso(time_now_us() - 86400000000LL, when, sizeof when)));
    Cara__Referral *r =
        (Cara__Referral *)pbjson_to_message(&cara__referral__descriptor, doc, err, sizeof err);
    json_decref(doc);
    for (int n = p->id; c && r && n < REFERRALS; n += CLIENTS) {
        snprintf(ref, sizeof ref, "CHAOS-%05d", n);
        free(r->caution_reference);
        r->caution_reference = strdup(ref);
        Cara__SubmitReferral cmd = CARA__SUBMIT_REFERRAL__INIT;
        cmd.referral = r;
        // Until acknowledged: the same reference each time (idempotent), whatever is down.
        for (;;) {
            Cara__Reply *reply = client_call(c, &cmd.base, NULL, NULL, 2000, 0);
            int ok = reply && reply->status == CARA__REPLY__STATUS__OK;
            if (reply)
                cara__reply__free_unpacked(reply, NULL);
            if (ok)
                break;
            p->retries++;
            client_destroy(&c);
            usleep(100000);
            c = client_new(harness_ctx(h), harness_endpoint(h, "intake"), p->keys,
                           harness_service_public(h, "intake"));
        }
        p->acked++;
        usleep(12000); // spread the submissions over the whole fault window
    }
    if (r)
        cara__referral__free_unpacked(r, NULL);
    client_destroy(&c);
    p->done = 1;
    return NULL;
}

static void s_expect(const char *schema, const char *sql, long expect) {
    char want[32];
    snprintf(want, sizeof want, "%ld", expect);
    assert_int_equal(harness_wait_value(h, schema, sql, want, 180000), 0);
}

static int s_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

// Reads the whole intake stream as each force's police system and counts, over both, the
// OutcomeUpdated events, the (referral, status) pairs delivered more than once, and the
// referrals that reached status 'triaged'.
static void s_police_outcomes(long *events, long *duplicates, long *triaged) {
    size_t cap = 16384, n = 0;
    char **seen = malloc(cap * sizeof *seen);
    assert_non_null(seen);
    for (int f = 0; f < 2; f++) {
        client_t *c = harness_client(h, "intake", "police", s_forces[f]);
        uint64_t after = 0;
        for (;;) {
            int status = 0;
            Cara__Batch *b = harness_fetch(c, "intake", after, 1000, &status);
            assert_non_null(b);
            for (size_t i = 0; i < b->n_events; i++) {
                Cara__Envelope *env =
                    envelope_unpack(b->events[i]->envelope.data, b->events[i]->envelope.len);
                assert_non_null(env);
                Cara__OutcomeUpdated *ev = (Cara__OutcomeUpdated *)envelope_payload(
                    env, &cara__outcome_updated__descriptor);
                if (ev && ev->outcome) {
                    // Each force sees only its own: the force is checked too.
                    assert_string_equal(ev->outcome->force, s_forces[f]);
                    if (n == cap) {
                        cap *= 2;
                        seen = realloc(seen, cap * sizeof *seen);
                        assert_non_null(seen);
                    }
                    char key[128];
                    snprintf(key, sizeof key, "%s/%s", ev->outcome->referral_id,
                             ev->outcome->status);
                    seen[n++] = strdup(key);
                }
                if (ev)
                    cara__outcome_updated__free_unpacked(ev, NULL);
                cara__envelope__free_unpacked(env, NULL);
            }
            int more = b->last > after && b->last < b->head;
            after = b->last;
            cara__batch__free_unpacked(b, NULL);
            if (!more)
                break;
        }
    }
    qsort(seen, n, sizeof *seen, s_cmp);
    *events = (long)n;
    *duplicates = 0;
    *triaged = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(seen[i], seen[i - 1]) == 0)
            (*duplicates)++;
        else if (strstr(seen[i], "/triaged"))
            (*triaged)++;
    }
    for (size_t i = 0; i < n; i++)
        free(seen[i]);
    free(seen);
}

static void test_chaos(void **state) {
    (void)state;
    h = harness_new("chaos");
    assert_non_null(h);
    harness_config(h, "triage", "routing",
                   "[{\"force\": \"dyfed-powys\", \"provider\": \"p1\", \"from\": \"2020-01-01\"},"
                   " {\"force\": \"gwent\", \"provider\": \"p2\", \"from\": \"2020-01-01\"}]");
    harness_config(h, "intake", "pseudonym_secret", "\"" SECRET "\"");
    harness_config(h, "national", "pseudonym_secret", "\"" SECRET "\"");
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(harness_start(h, s_services[i]), 0);
    assert_int_equal(harness_start(h, "billing"), 0);
    police_t police[CLIENTS];
    pthread_t threads[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        police[i] = (police_t){i, harness_identity_keys(h, "police", s_forces[i % 2]), 0, 0, 0};
    for (int i = 0; i < CLIENTS; i++)
        pthread_create(&threads[i], NULL, s_police, &police[i]);
    // The fault injector: a random service killed and restarted every 300-1000 ms while the
    // police clients submit, and PostgreSQL restarted once.
    srand((unsigned)getpid());
    int kills = 0, pg_restarts = 0;
    int acked_before_last_fault = 0;
    for (int round = 0;; round++) {
        int busy = 0;
        for (int i = 0; i < CLIENTS; i++)
            busy |= !police[i].done;
        if (!busy && round >= 8)
            break;
        acked_before_last_fault = busy;
        usleep((useconds_t)(300000 + rand() % 700000));
        const char *victim = s_services[rand() % 4];
        harness_stop(h, victim, SIGKILL);
        kills++;
        if (round == 3) {
            char cmd[1024];
            snprintf(cmd, sizeof cmd, "deploy/pg-cluster.sh restart-immediate %s %s -c fsync=off",
                     getenv("CARA_TEST_PGDATA"), getenv("CARA_TEST_PGPORT"));
            assert_int_equal(system(cmd), 0);
            pg_restarts++;
        }
        assert_int_equal(harness_start(h, victim), 0);
    }
    long acked = 0, retries = 0;
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(threads[i], NULL);
        acked += police[i].acked;
        retries += police[i].retries;
    }
    assert_int_equal(acked, REFERRALS);
    assert_true(acked_before_last_fault || kills >= 8);
    // Every acknowledged referral, exactly once, everywhere it should be.
    s_expect("intake", "SELECT count(DISTINCT caution_reference) FROM referral", REFERRALS);
    s_expect("intake", "SELECT count(*) FROM referral", REFERRALS);
    s_expect("triage", "SELECT count(*) FROM triage_case WHERE status = 'triaged'", REFERRALS);
    s_expect("booking", "SELECT count(DISTINCT referral_id) FROM provider_case", REFERRALS);
    s_expect("booking", "SELECT count(*) FROM provider_case", REFERRALS);
    s_expect("national", "SELECT count(*) FROM case_fact WHERE triaged_at IS NOT NULL", REFERRALS);
    // Every outcome reached the police stream exactly once: one 'triaged' update per referral.
    s_expect("intake", "SELECT count(*) FROM outcome WHERE status = 'triaged'", REFERRALS);
    s_expect("intake",
             "SELECT count(*) FROM (SELECT key FROM outbox WHERE type = 'cara.OutcomeUpdated'"
             " GROUP BY key) k",
             REFERRALS);
    // What the police systems themselves read: each status of each referral exactly once.
    long outcome_events = 0, outcome_dups = 0, outcome_triaged = 0;
    s_police_outcomes(&outcome_events, &outcome_dups, &outcome_triaged);
    printf("# chaos: police streams: %ld OutcomeUpdated read, %ld referrals triaged,"
           " %ld delivered twice\n",
           outcome_events, outcome_triaged, outcome_dups);
    assert_int_equal(outcome_dups, 0);
    assert_int_equal(outcome_triaged, REFERRALS);
    long dead = 0;
    const char *schemas[] = {"intake", "triage", "booking", "billing", "national"};
    for (int i = 0; i < 5; i++) {
        char *d = harness_value(h, schemas[i], "SELECT count(*) FROM dead_letter");
        dead += atol(d);
        free(d);
    }
    char *dups = harness_value(h, "booking",
                               "SELECT count(*) - count(DISTINCT referral_id) FROM provider_case");
    printf("# chaos: referrals %d, acknowledged %ld, client retries %ld, kills %d, PostgreSQL"
           " restarts %d, duplicates %s, lost 0, dead letters %ld\n",
           REFERRALS, acked, retries, kills, pg_restarts, dups, dead);
    assert_string_equal(dups, "0");
    assert_int_equal(dead, 0);
    free(dups);
    // Data protection (patterns that hex keys and pseudonyms cannot contain by chance): the
    // personal data in every referral (examples/referral.json) appears in
    // no service's log line, and nowhere in the billing or national schemas.
    const char *pii[] = {"Gareth", "Pryce",        "1988-07-02",          "07700 900123",
                         "900456", "Heol y Felin", "g.pryce@example.org", "Sian"};
    const char *logs[] = {"intake", "triage", "booking", "billing", "national"};
    long lines = 0;
    for (int i = 0; i < 5; i++) {
        char path[512], line[8192];
        snprintf(path, sizeof path, "%s/%s.log", harness_dir(h), logs[i]);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        while (fgets(line, sizeof line, f)) {
            lines++;
            for (size_t k = 0; k < sizeof pii / sizeof *pii; k++)
                if (strstr(line, pii[k])) {
                    fprintf(stderr, "personal data in %s.log: %s", logs[i], line);
                    fail();
                }
        }
        fclose(f);
    }
    char *leaks =
        harness_value(h, "national",
                      "SELECT (SELECT count(*) FROM national.case_fact c WHERE"
                      " row_to_json(c)::text ~ '(Gareth|Pryce|1988-07-02|07700 9|Sian)')"
                      " + (SELECT count(*) FROM billing.billable_line b WHERE"
                      " row_to_json(b)::text ~ '(Gareth|Pryce|1988-07-02|07700 9|Sian)')");
    assert_string_equal(leaks, "0");
    free(leaks);
    printf("# data protection: %ld log lines scanned, no personal data in logs, billing or"
           " national\n",
           lines);
    harness_destroy(&h);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_chaos)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
