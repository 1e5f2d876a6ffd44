// intake's group commit: submissions that arrive together are run as one optimistic batch with
// one commit, and when one of them is a repeat, a conflict or invalid, the batch is run again
// carefully; every submission still gets exactly the answer it would get alone, and nothing is
// stored twice or lost.

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "cara/uuid.h"
#include "test_intake_support.h"

static harness_t *h;

static int setup(void **state) {
    (void)state;
    h = harness_new("intake_batch");
    return h ? harness_start(h, "intake") : -1;
}

static int teardown(void **state) {
    (void)state;
    harness_destroy(&h);
    return 0;
}

#define N_SUBMIT 12

typedef struct {
    client_t *client;
    Cara__Referral *referral;
    Cara__Reply *reply;
} submit_t;

static void *s_submit(void *arg) {
    submit_t *s = arg;
    Cara__SubmitReferral cmd = CARA__SUBMIT_REFERRAL__INIT;
    cmd.referral = s->referral;
    s->reply = client_call(s->client, &cmd.base, NULL, NULL, 15000, 0);
    return NULL;
}

static long s_count(const char *sql) {
    char *v = harness_value(h, "intake", sql);
    assert_non_null(v);
    long n = atol(v);
    free(v);
    return n;
}

// The referral id an OK reply carries ("" if not OK), and whether it says duplicate.
static void s_accepted(const Cara__Reply *reply, char id[UUID_STR_LEN], int *duplicate) {
    Cara__ReferralAccepted *a = ti_accepted(reply);
    snprintf(id, UUID_STR_LEN, "%s", a ? a->referral_id : "");
    *duplicate = a ? a->duplicate : -1;
    if (a)
        cara__referral_accepted__free_unpacked(a, NULL);
}

// Connects a client per submission (each makes a warm-up submission T-WARM-<tag>-<i>, so that
// its CURVE handshake is done before intake is paused) and prepares its referral refs[i].
static void s_prepare(submit_t *subs, const char *const *refs, int n, const char *tag) {
    for (int i = 0; i < n; i++) {
        char warm[32], id[UUID_STR_LEN];
        int dup;
        subs[i].client = client_new(harness_ctx(h), harness_endpoint(h, "intake"),
                                    harness_identity_keys(h, "police", "dyfed-powys"),
                                    harness_service_public(h, "intake"));
        assert_non_null(subs[i].client);
        snprintf(warm, sizeof warm, "T-WARM-%s-%d", tag, i);
        subs[i].referral = ti_referral("dyfed-powys", warm);
        assert_non_null(subs[i].referral);
        s_submit(&subs[i]);
        s_accepted(subs[i].reply, id, &dup);
        assert_true(uuid_valid(id));
        cara__reply__free_unpacked(subs[i].reply, NULL);
        cara__referral__free_unpacked(subs[i].referral, NULL);
        subs[i].reply = NULL;
        subs[i].referral = ti_referral("dyfed-powys", refs[i]);
        assert_non_null(subs[i].referral);
    }
}

// Pauses intake, makes every submission at once, and lets intake take them as one batch.
static void s_fire(submit_t *subs, int n) {
    int pid = harness_pid(h, "intake");
    assert_int_equal(kill(pid, SIGSTOP), 0);
    pthread_t threads[N_SUBMIT];
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, s_submit, &subs[i]), 0);
    usleep(500000); // every request waits in intake's queue
    assert_int_equal(kill(pid, SIGCONT), 0);
    for (int i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
}

static void s_release(submit_t *subs, int n) {
    for (int i = 0; i < n; i++) {
        if (subs[i].reply)
            cara__reply__free_unpacked(subs[i].reply, NULL);
        cara__referral__free_unpacked(subs[i].referral, NULL);
        client_destroy(&subs[i].client);
    }
}

// Submits ref once (new) and returns its referral id in id.
static void s_submit_once(const char *ref, char id[UUID_STR_LEN]) {
    Cara__Referral *r = ti_referral("dyfed-powys", ref);
    assert_non_null(r);
    Cara__Reply *reply = ti_submit(harness_client(h, "intake", "police", "dyfed-powys"), r);
    int dup;
    s_accepted(reply, id, &dup);
    assert_true(uuid_valid(id));
    assert_int_equal(dup, 0);
    cara__reply__free_unpacked(reply, NULL);
    cara__referral__free_unpacked(r, NULL);
}

// How many lines of intake's log are the event named (e.g. "batch_run_carefully").
static int s_log_lines(const char *event) {
    char path[512], line[4096], quoted[80];
    snprintf(path, sizeof path, "%s/intake.log", harness_dir(h));
    snprintf(quoted, sizeof quoted, "\"event\":\"%s\"", event);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int count = 0;
    while (fgets(line, sizeof line, f))
        count += strstr(line, quoted) != NULL;
    fclose(f);
    return count;
}

static int s_careful_runs(void) {
    return s_log_lines("batch_run_carefully");
}

static void test_batch_with_repeats_and_a_conflict(void **state) {
    (void)state;
    char first_id[UUID_STR_LEN], id[UUID_STR_LEN];
    int dup;
    s_submit_once("T-BATCH-0", first_id);
    long referrals_before = s_count("SELECT count(*) FROM referral");
    int careful_before = s_careful_runs();

    submit_t subs[N_SUBMIT];
    const char *refs[] = {"T-BATCH-1", "T-BATCH-2", "T-BATCH-3", "T-BATCH-4",
                          "T-BATCH-5", "T-BATCH-6", "T-BATCH-0", "T-BATCH-0",
                          "T-BATCH-7", "T-BATCH-7", "T-BATCH-0"};
    int n = (int)(sizeof refs / sizeof refs[0]);
    s_prepare(subs, refs, n, "a");
    ti_set(&subs[10].referral->officer, "PC 999 Other"); // T-BATCH-0 with other content
    s_fire(subs, n);

    // The six new ones: accepted, new.
    for (int i = 0; i < 6; i++) {
        s_accepted(subs[i].reply, id, &dup);
        assert_true(uuid_valid(id));
        assert_int_equal(dup, 0);
    }
    // The repeats of T-BATCH-0: its first answer, marked duplicate.
    for (int i = 6; i < 8; i++) {
        s_accepted(subs[i].reply, id, &dup);
        assert_string_equal(id, first_id);
        assert_int_equal(dup, 1);
    }
    // T-BATCH-7 twice at once: one new, one its duplicate, one id.
    char id7a[UUID_STR_LEN], id7b[UUID_STR_LEN];
    int dup7a, dup7b;
    s_accepted(subs[8].reply, id7a, &dup7a);
    s_accepted(subs[9].reply, id7b, &dup7b);
    assert_true(uuid_valid(id7a));
    assert_string_equal(id7a, id7b);
    assert_int_equal(dup7a + dup7b, 1);
    // The conflicting repeat: refused.
    assert_non_null(subs[10].reply);
    assert_int_equal(subs[10].reply->status, CARA__REPLY__STATUS__CONFLICT);

    // Stored once each (the warm-ups, six new ones and T-BATCH-7), each with its two events.
    long referrals = s_count("SELECT count(*) FROM referral");
    assert_int_equal(referrals, referrals_before + n + 7);
    assert_int_equal(s_count("SELECT count(*) FROM outcome"), referrals);
    assert_int_equal(s_count("SELECT count(*) FROM outbox"), 2 * referrals);
    assert_int_equal(s_count("SELECT count(*) FROM outbox o WHERE NOT EXISTS"
                             " (SELECT 1 FROM referral r WHERE r.referral_id::text = o.key)"),
                     0);
    // The repeats made the optimistic pass fail on request_log's key, so the careful pass ran
    // (else this test would prove nothing about it).
    int careful = s_careful_runs() - careful_before;
    fprintf(stderr, "# batches run again carefully: %d\n", careful);
    assert_true(careful >= 1);
    // The log names only what was stored: the optimistic pass's lines went with its rollback.
    assert_int_equal(s_log_lines("referral_submitted"), referrals);
    s_release(subs, n);
}

static void test_batch_with_an_invalid_submission(void **state) {
    (void)state;
    char first_id[UUID_STR_LEN], id[UUID_STR_LEN];
    int dup;
    s_submit_once("T-BATCH-10", first_id);
    long referrals_before = s_count("SELECT count(*) FROM referral");
    long rejected_before = s_count("SELECT count(*) FROM rejected_submission");

    submit_t subs[N_SUBMIT];
    const char *refs[] = {"T-BATCH-11", "T-BATCH-12", "T-BATCH-13",
                          "T-BATCH-14", "T-BATCH-10", "T-BATCH-15"};
    int n = (int)(sizeof refs / sizeof refs[0]);
    s_prepare(subs, refs, n, "b");
    ti_set(&subs[5].referral->offender->name, ""); // invalid: no offender name
    s_fire(subs, n);

    for (int i = 0; i < 4; i++) {
        s_accepted(subs[i].reply, id, &dup);
        assert_true(uuid_valid(id));
        assert_int_equal(dup, 0);
    }
    s_accepted(subs[4].reply, id, &dup);
    assert_string_equal(id, first_id);
    assert_int_equal(dup, 1);
    // Refused with its field, and kept for the force, once.
    assert_non_null(subs[5].reply);
    assert_int_equal(subs[5].reply->status, CARA__REPLY__STATUS__INVALID);
    assert_true(ti_has_error(subs[5].reply, "offender.name"));
    assert_int_equal(s_count("SELECT count(*) FROM rejected_submission"), rejected_before + 1);
    assert_int_equal(s_count("SELECT count(*) FROM referral"), referrals_before + n + 4);
    s_release(subs, n);
}

// Two lanes (db.overlap_commits, on by default): the next batch runs while the last one's
// COMMIT is on its way, so a repeat can meet its first copy still uncommitted in the other
// lane. Eight police systems submit the same references at once, each in its own order; a
// system told to retry (UNAVAILABLE) retries with the same request id, as a real one does.
#define LANE_SYSTEMS 8
#define LANE_REFS 24

typedef struct {
    int system, round;
    client_t *client;
    char ids[LANE_REFS][UUID_STR_LEN];
    int dup[LANE_REFS];
} lane_system_t;

static void *s_lane_system(void *arg) {
    lane_system_t *s = arg;
    for (int k = 0; k < LANE_REFS; k++) {
        int i = (k + s->system * 3) % LANE_REFS; // each system in its own order
        char ref[48], request_id[UUID_STR_LEN];
        snprintf(ref, sizeof ref, "T-LANE-%d-%d", s->round, i);
        uuid_new(request_id);
        Cara__Referral *r = ti_referral("dyfed-powys", ref);
        Cara__SubmitReferral cmd = CARA__SUBMIT_REFERRAL__INIT;
        cmd.referral = r;
        Cara__Reply *reply = NULL;
        for (int attempt = 0; attempt < 10; attempt++) {
            if (reply)
                cara__reply__free_unpacked(reply, NULL);
            reply = client_call(s->client, &cmd.base, request_id, NULL, 15000, 2);
            if (!reply || reply->status != CARA__REPLY__STATUS__UNAVAILABLE)
                break;
        }
        s_accepted(reply, s->ids[i], &s->dup[i]);
        if (reply)
            cara__reply__free_unpacked(reply, NULL);
        cara__referral__free_unpacked(r, NULL);
    }
    return NULL;
}

static uint64_t s_batches_overlapped(void) {
    Cara__HealthRequest req = CARA__HEALTH_REQUEST__INIT;
    Cara__Reply *reply = harness_call(harness_client(h, "intake", "operator", "ops"), &req.base);
    assert_non_null(reply);
    Cara__Health *health = cara__health__unpack(NULL, reply->payload.len, reply->payload.data);
    assert_non_null(health);
    uint64_t n = health->batches_overlapped;
    cara__health__free_unpacked(health, NULL);
    cara__reply__free_unpacked(reply, NULL);
    return n;
}

static void test_overlapping_batches_store_each_referral_once(void **state) {
    (void)state;
    lane_system_t systems[LANE_SYSTEMS];
    for (int t = 0; t < LANE_SYSTEMS; t++)
        systems[t].client = client_new(harness_ctx(h), harness_endpoint(h, "intake"),
                                       harness_identity_keys(h, "police", "dyfed-powys"),
                                       harness_service_public(h, "intake"));
    uint64_t overlapped_before = s_batches_overlapped();
    int rounds = 0;
    // Rounds until batches did overlap (on a quick disk a commit can be too quick to overlap).
    do {
        long referrals_before = s_count("SELECT count(*) FROM referral");
        pthread_t threads[LANE_SYSTEMS];
        for (int t = 0; t < LANE_SYSTEMS; t++) {
            systems[t].system = t;
            systems[t].round = rounds;
            assert_int_equal(pthread_create(&threads[t], NULL, s_lane_system, &systems[t]), 0);
        }
        for (int t = 0; t < LANE_SYSTEMS; t++)
            pthread_join(threads[t], NULL);
        // Every system got the one referral id of each reference; one answer was the new one.
        for (int i = 0; i < LANE_REFS; i++) {
            int new_answers = 0;
            for (int t = 0; t < LANE_SYSTEMS; t++) {
                assert_true(uuid_valid(systems[t].ids[i]));
                assert_string_equal(systems[t].ids[i], systems[0].ids[i]);
                new_answers += systems[t].dup[i] == 0;
            }
            assert_int_equal(new_answers, 1);
        }
        assert_int_equal(s_count("SELECT count(*) FROM referral"), referrals_before + LANE_REFS);
        rounds++;
    } while (s_batches_overlapped() == overlapped_before && rounds < 8);
    long referrals = s_count("SELECT count(*) FROM referral");
    assert_int_equal(s_count("SELECT count(*) FROM outbox"), 2 * referrals);
    assert_int_equal(s_log_lines("referral_submitted"), referrals);
    uint64_t overlapped = s_batches_overlapped() - overlapped_before;
    fprintf(stderr, "# rounds: %d, batches overlapped: %llu\n", rounds,
            (unsigned long long)overlapped);
    assert_true(overlapped > 0);
    for (int t = 0; t < LANE_SYSTEMS; t++)
        client_destroy(&systems[t].client);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_with_repeats_and_a_conflict),
        cmocka_unit_test(test_batch_with_an_invalid_submission),
        cmocka_unit_test(test_overlapping_batches_store_each_referral_once),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
