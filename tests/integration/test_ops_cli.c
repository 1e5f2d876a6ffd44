// What a script driving `cara` relies on when things go wrong, run as a child process against
// real intake and triage: an unanswered command prints the request id it used and the command
// line that retries with it; `cara fetch` and `cara outcomes` whose stdout cannot be written
// exit 1 and never print a `last` cursor past what was written; `cara deadletter replay` exits
// 0 only if everything it took was applied (CONFLICT if one still fails, NOT_FOUND for an id
// that waits for no replay), and lists the dead letters as they are after the replay. A closed
// pipe is a write error like a full disk (exit 1, never death by SIGPIPE), and `health` and
// `keys` exit 1 when their reply was not written.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cara/uuid.h"
#include "envelope.pb-c.h"
#include "harness.h"

static harness_t *h;
static char s_out[65536]; // the last cara command's stdout (unless sent elsewhere)
static char s_err[16384]; // and its stderr
static char s_ops[400], s_police[400];

static int setup(void **state) {
    (void)state;
    h = harness_new("ops_cli");
    if (!h)
        return -1;
    harness_config(h, "intake", "pseudonym_secret", "\"ops-cli-test-secret-0123456789abc\"");
    if (harness_start(h, "intake") != 0 || harness_start(h, "triage") != 0)
        return -1;
    if (harness_client_config(h, "operator", "ops", NULL, 3000, 1, s_ops, sizeof s_ops) != 0)
        return -1;
    // Short waits: the no-reply case should not take long.
    return harness_client_config(h, "police", "dyfed-powys", NULL, 300, 1, s_police,
                                 sizeof s_police);
}

static int teardown(void **state) {
    (void)state;
    harness_destroy(&h);
    return 0;
}

// Reads a whole file into buf (truncated to size).
static void s_slurp(const char *path, char *buf, size_t size) {
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, size - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
}

// Starts bin/cara with the arguments in ap (NULL-terminated), stdout to stdout_fd if it is not
// -1, else to stdout_path (NULL: captured in s_out), stderr captured in s_err. Returns its pid.
static pid_t s_spawn(int stdout_fd, const char *stdout_path, const char *arg, va_list ap) {
    const char *bindir = getenv("CARA_BIN_DIR");
    char bin[300], out_path[400], err_path[400];
    snprintf(bin, sizeof bin, "%s/cara", bindir ? bindir : "bin");
    snprintf(out_path, sizeof out_path, "%s/cara.out", harness_dir(h));
    snprintf(err_path, sizeof err_path, "%s/cara.err", harness_dir(h));
    const char *argv[40] = {bin};
    int n = 1;
    for (const char *a = arg; a && n < 39; a = va_arg(ap, const char *))
        argv[n++] = a;
    argv[n] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int out = stdout_fd >= 0 ? stdout_fd
                                 : open(stdout_path ? stdout_path : out_path,
                                        O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (out < 0 || err < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
            _exit(126);
        unsetenv("CARA_CLIENT_CONFIG");
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

// Waits for the cara started by s_spawn and reads its output. Fails the test if cara did not
// exit normally (a signal such as SIGPIPE) or reported a sanitizer error. Returns its exit code.
static int s_reap(pid_t pid, int captured) {
    char out_path[400], err_path[400];
    snprintf(out_path, sizeof out_path, "%s/cara.out", harness_dir(h));
    snprintf(err_path, sizeof err_path, "%s/cara.err", harness_dir(h));
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    s_slurp(err_path, s_err, sizeof s_err);
    if (captured)
        s_slurp(out_path, s_out, sizeof s_out);
    else
        s_out[0] = '\0';
    if (WIFSIGNALED(status))
        fail_msg("cara was killed by signal %d:\n%.3000s", WTERMSIG(status), s_err);
    if (!WIFEXITED(status) || strstr(s_err, "Sanitizer") || strstr(s_err, "runtime error:"))
        fail_msg("cara did not exit cleanly:\n%.3000s", s_err);
    return WEXITSTATUS(status);
}

// Runs bin/cara with the NULL-terminated arguments, stdout to stdout_path (NULL: captured in
// s_out), stderr captured in s_err. Returns its exit code (see s_reap).
static int s_cara(const char *stdout_path, const char *arg, ...) {
    va_list ap;
    va_start(ap, arg);
    pid_t pid = s_spawn(-1, stdout_path, arg, ap);
    va_end(ap);
    return s_reap(pid, stdout_path == NULL);
}

// Runs bin/cara with stdout into a pipe whose reader takes the first line, then closes it
// while cara still has more to write: `cara ... | head -n 1`. The first line is left in s_out.
// output_size is how much the same command writes in full: it must be more than the pipe and
// the first line hold, so that cara is still writing when the reader goes.
static int s_cara_into_closed_pipe(size_t output_size, const char *arg, ...) {
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);       // cara must not hold the read end open
    int capacity = fcntl(fds[1], F_SETPIPE_SZ, 4096); // the smallest pipe (a page)
    assert_true(capacity >= 4096);
    if (output_size <= (size_t)capacity + 4096)
        fail_msg("%zu bytes fit in a %d-byte pipe: nothing would be written after the close",
                 output_size, capacity);
    va_list ap;
    va_start(ap, arg);
    pid_t pid = s_spawn(fds[1], NULL, arg, ap);
    va_end(ap);
    assert_int_equal(close(fds[1]), 0);
    char first[4096];
    size_t n = 0;
    char c;
    while (n + 1 < sizeof first && read(fds[0], &c, 1) == 1 && c != '\n')
        first[n++] = c;
    first[n] = '\0';
    assert_int_equal(close(fds[0]), 0);
    int rc = s_reap(pid, 0);
    snprintf(s_out, sizeof s_out, "%s", first);
    return rc;
}

// The "last" cursor cara printed on stderr ({"last": L, "head": H}), or -1 if none.
static long long s_last(void) {
    const char *at = strstr(s_err, "{\"last\": ");
    return at ? atoll(at + strlen("{\"last\": ")) : -1;
}

static void test_no_reply_tells_the_request_id_to_retry_with(void **state) {
    (void)state;
    // billing is not running: no reply. The id used is printed with the line that retries it.
    assert_int_equal(s_cara(NULL, "--config", s_police, "training", "record", "--contract_id",
                            "c-1", "--facilitators", "2", "--actual_cost_pence", "1200",
                            "--delivered_on", "2026-01-05", NULL),
                     1);
    assert_non_null(strstr(s_err, "no reply from billing"));
    const char *at = strstr(s_err, "request id ");
    assert_non_null(at);
    char id[UUID_STR_LEN];
    snprintf(id, sizeof id, "%s", at + strlen("request id "));
    assert_true(uuid_valid(id));
    char retry[1000];
    snprintf(retry, sizeof retry,
             "cara --request-id %s --config %s training record --contract_id c-1 --facilitators"
             " 2 --actual_cost_pence 1200 --delivered_on 2026-01-05\n",
             id, s_police);
    assert_non_null(strstr(s_err, retry));

    // The retry uses the id given, and names it once (no second --request-id).
    assert_int_equal(s_cara(NULL, "--config", s_police, "--request-id", id, "training", "record",
                            "--contract_id", "c-1", "--facilitators", "2", "--actual_cost_pence",
                            "1200", "--delivered_on", "2026-01-05", NULL),
                     1);
    assert_non_null(strstr(s_err, retry));
    char twice[100];
    snprintf(twice, sizeof twice, "--request-id %s --request-id", id);
    assert_null(strstr(s_err, twice));

    // An argument the shell would split is quoted, so the line can be pasted as it is.
    assert_int_equal(s_cara(NULL, "--config", s_police, "contact", "record", "--referral_id", "x",
                            "--channel", "phone", "--outcome", "no answer, left message", NULL),
                     1);
    assert_non_null(strstr(s_err, "--outcome 'no answer, left message'\n"));
}

static void test_unwritable_stdout_exits_1_without_moving_the_cursor(void **state) {
    (void)state;
    assert_int_equal(
        s_cara(NULL, "--config", s_police, "referral", "submit", "examples/referral.json", NULL),
        0);
    // Written: exit 0 and a cursor past the events.
    assert_int_equal(s_cara(NULL, "--config", s_ops, "fetch", "intake", "--after", "0", NULL), 0);
    assert_non_null(strstr(s_out, "cara.ReferralSubmitted"));
    assert_true(s_last() >= 1);
    assert_int_equal(s_cara(NULL, "--config", s_police, "outcomes", "--after", "0", NULL), 0);
    assert_non_null(strstr(s_out, "\"outcome\""));
    assert_true(s_last() >= 1);

    // A full disk: exit 1, the reason said, and the cursor still where it started.
    assert_int_equal(
        s_cara("/dev/full", "--config", s_ops, "fetch", "intake", "--after", "0", NULL), 1);
    assert_non_null(strstr(s_err, "cannot write to stdout"));
    assert_true(s_last() == 0 || s_last() == -1);
    assert_int_equal(s_cara("/dev/full", "--config", s_police, "outcomes", "--after", "0", NULL),
                     1);
    assert_non_null(strstr(s_err, "cannot write to stdout"));
    assert_true(s_last() == 0 || s_last() == -1);

    // A reply that cannot be printed is a failure too, whatever it said.
    assert_int_equal(
        s_cara("/dev/full", "--config", s_ops, "deadletter", "list", "--service", "triage", NULL),
        1);
}

// `cara health SERVICE > /full/disk/health.json` and the keys commands: a reply that was not
// written is a failure, even when the service is healthy or the key was made.
static void test_unwritable_stdout_fails_health_and_keys(void **state) {
    (void)state;
    assert_int_equal(s_cara(NULL, "--config", s_ops, "health", "intake", NULL), 0);
    assert_non_null(strstr(s_out, "\"healthy\": true"));
    assert_int_equal(s_cara("/dev/full", "--config", s_ops, "health", "intake", NULL), 1);
    assert_non_null(strstr(s_err, "cannot write to stdout"));

    // keys new: the key and the ring entry are made, and stderr says where (the only record
    // of it that reached anyone), but the exit is 1.
    char ring[400], key[400], other[400];
    snprintf(ring, sizeof ring, "%s/scratch-ring.json", harness_dir(h));
    snprintf(key, sizeof key, "%s/scratch-gwent.key", harness_dir(h));
    snprintf(other, sizeof other, "%s/scratch-dp.key", harness_dir(h));
    assert_int_equal(s_cara(NULL, "keys", "new", "--role", "police", "--org", "dyfed-powys",
                            "--out", other, "--keyring", ring, "--name", "scratch-dp", NULL),
                     0);
    assert_int_equal(s_cara("/dev/full", "keys", "new", "--role", "police", "--org", "gwent",
                            "--out", key, "--keyring", ring, "--name", "scratch-gwent", NULL),
                     1);
    assert_non_null(strstr(s_err, "cannot write to stdout"));
    assert_non_null(strstr(s_err, key));
    assert_non_null(strstr(s_err, "\"scratch-gwent\""));
    assert_int_equal(access(key, R_OK), 0);

    assert_int_equal(s_cara("/dev/full", "keys", "list", "--keyring", ring, NULL), 1);
    assert_int_equal(s_cara(NULL, "keys", "list", "--keyring", ring, NULL), 0);
    assert_non_null(strstr(s_out, "scratch-gwent"));

    assert_int_equal(
        s_cara("/dev/full", "keys", "revoke", "scratch-gwent", "--keyring", ring, NULL), 1);
    assert_non_null(strstr(s_err, "removed 1 key(s) matching \"scratch-gwent\""));
    assert_int_equal(s_cara(NULL, "keys", "list", "--keyring", ring, NULL), 0);
    assert_null(strstr(s_out, "scratch-gwent"));
    assert_non_null(strstr(s_out, "scratch-dp"));
}

// `cara fetch | head -n 1`, `cara outcomes | ingest` where ingest stops early: the closed pipe
// is a write error like a full disk (exit 1, the reason, the cursor before the lost page), not
// a SIGPIPE death that leaves the script without a cursor.
static void test_closed_pipe_exits_1_with_the_cursor(void **state) {
    (void)state;
    // Enough referrals (each its own caution) that each command writes well past what a pipe
    // holds.
    json_t *referral = json_load_file("examples/referral.json", 0, NULL);
    assert_non_null(referral);
    char file[400];
    snprintf(file, sizeof file, "%s/pipe-referral.json", harness_dir(h));
    size_t fetched = 0, outcomes = 0;
    for (int i = 0; i < 200 && (fetched <= 16384 || outcomes <= 16384); i++) {
        char caution[32];
        snprintf(caution, sizeof caution, "DP-PIPE-%06d", i);
        assert_int_equal(json_object_set_new(referral, "caution_reference", json_string(caution)),
                         0);
        assert_int_equal(json_dump_file(referral, file, 0), 0);
        assert_int_equal(s_cara(NULL, "--config", s_police, "referral", "submit", file, NULL), 0);
        assert_int_equal(s_cara(NULL, "--config", s_police, "outcomes", "--after", "0", NULL), 0);
        outcomes = strlen(s_out);
        assert_int_equal(s_cara(NULL, "--config", s_ops, "fetch", "intake", "--after", "0", NULL),
                         0);
        fetched = strlen(s_out);
    }
    json_decref(referral);
    assert_true(fetched > 16384 && outcomes > 16384);
    assert_int_equal(s_cara_into_closed_pipe(fetched, "--config", s_ops, "fetch", "intake",
                                             "--after", "0", NULL),
                     1);
    assert_non_null(strstr(s_out, "{\"seq\":1,")); // the reader got the first line
    assert_non_null(strstr(s_err, "cannot write to stdout"));
    assert_int_equal(s_last(), 0); // the page was not all written: start again from 0

    assert_int_equal(
        s_cara_into_closed_pipe(outcomes, "--config", s_police, "outcomes", "--after", "0", NULL),
        1);
    assert_non_null(strstr(s_out, "\"outcome\""));
    assert_non_null(strstr(s_err, "cannot write to stdout"));
    assert_int_equal(s_last(), 0);
}

// Adds a dead letter to triage (stream intake) with the given encoded envelope; returns its id.
static long long s_dead_letter(const uint8_t *payload, size_t len) {
    char hex[4096] = "\\x";
    for (size_t i = 0; i < len && 2 + 2 * i + 2 < sizeof hex; i++)
        snprintf(hex + 2 + 2 * i, 3, "%02x", payload[i]);
    char sql[4400];
    snprintf(sql, sizeof sql,
             "INSERT INTO dead_letter (stream, seq, reason, payload) VALUES ('intake', 90000,"
             " 'test', '%s'::bytea) RETURNING id",
             hex);
    char *id = harness_value(h, "triage", sql);
    assert_non_null(id);
    long long n = atoll(id);
    free(id);
    return n;
}

// A dead letter triage applies on replay (an event not for triage), and one that fails again.
static long long s_good_dead_letter(void) {
    Cara__Head head = CARA__HEAD__INIT;
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(envelope_pack(&head.base, NULL, NULL, &data, &len, NULL), 0);
    long long id = s_dead_letter(data, len);
    free(data);
    return id;
}

static long long s_bad_dead_letter(void) {
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0x01};
    return s_dead_letter(garbage, sizeof garbage);
}

// The dead letter with that id in the last reply's list ("" if absent): its replayed_at.
static const char *s_replayed_at(json_t *doc, long long id) {
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(json_object_get(doc, "result"), "items"), i, item) {
        if (json_integer_value(json_object_get(item, "id")) == id) {
            const char *at = json_string_value(json_object_get(item, "replayed_at"));
            return at ? at : "";
        }
    }
    fail_msg("dead letter %lld not in the list", id);
    return "";
}

static void test_deadletter_replay_answers_what_happened(void **state) {
    (void)state;
    long long good = s_good_dead_letter(), bad = s_bad_dead_letter();
    char good_s[24], bad_s[24];
    snprintf(good_s, sizeof good_s, "%lld", good);
    snprintf(bad_s, sizeof bad_s, "%lld", bad);

    // One that applies: OK, and the list shows it replayed (the state after the replay).
    assert_int_equal(s_cara(NULL, "--config", s_ops, "deadletter", "replay", good_s, "--service",
                            "triage", NULL),
                     0);
    json_t *doc = json_loads(s_out, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "status")), "OK");
    assert_string_equal(json_string_value(json_object_get(doc, "message")),
                        "replayed 1, still failing 0");
    assert_string_not_equal(s_replayed_at(doc, good), "");
    json_decref(doc);

    // Again, or an id that does not exist: NOT_FOUND, exit 1.
    assert_int_equal(s_cara(NULL, "--config", s_ops, "deadletter", "replay", good_s, "--service",
                            "triage", NULL),
                     1);
    assert_non_null(strstr(s_out, "NOT_FOUND"));
    assert_int_equal(s_cara(NULL, "--config", s_ops, "deadletter", "replay", "999999", "--service",
                            "triage", NULL),
                     1);
    assert_non_null(strstr(s_out, "NOT_FOUND"));

    // One that fails again: CONFLICT, exit 1, still waiting.
    assert_int_equal(
        s_cara(NULL, "--config", s_ops, "deadletter", "replay", bad_s, "--service", "triage", NULL),
        1);
    doc = json_loads(s_out, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "status")), "CONFLICT");
    assert_string_equal(json_string_value(json_object_get(doc, "message")),
                        "replayed 0, still failing 1");
    assert_string_equal(s_replayed_at(doc, bad), "");
    json_decref(doc);

    // All of them: one applies and one fails. CONFLICT, and the one that applied stays replayed.
    long long other = s_good_dead_letter();
    assert_int_equal(
        s_cara(NULL, "--config", s_ops, "deadletter", "replay", "--service", "triage", NULL), 1);
    doc = json_loads(s_out, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "status")), "CONFLICT");
    assert_string_equal(json_string_value(json_object_get(doc, "message")),
                        "replayed 1, still failing 1");
    assert_string_not_equal(s_replayed_at(doc, other), "");
    assert_string_equal(s_replayed_at(doc, bad), "");
    json_decref(doc);
    char sql[120];
    snprintf(sql, sizeof sql, "SELECT replayed_at IS NOT NULL FROM dead_letter WHERE id = %lld",
             other);
    char *kept = harness_value(h, "triage", sql);
    assert_non_null(kept);
    assert_string_equal(kept, "t");
    free(kept);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_reply_tells_the_request_id_to_retry_with),
        cmocka_unit_test(test_unwritable_stdout_exits_1_without_moving_the_cursor),
        cmocka_unit_test(test_closed_pipe_exits_1_with_the_cursor),
        cmocka_unit_test(test_unwritable_stdout_fails_health_and_keys),
        cmocka_unit_test(test_deadletter_replay_answers_what_happened),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
