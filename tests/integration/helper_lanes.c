// Test helper for test_lanes_failed_pass: a service on the real runtime (intake slot) whose one
// command (cara.Head, the command in `stream`, its argument in `seq`) does exactly one thing, to
// put two request lanes into a chosen state.
//   "sleep_wait": sleeps seq ms in the handler, then queues SELECT pg_advisory_xact_lock(777)
//   "event":      queues (holds) one outbox event (outbox_send)
//   "append":     appends one outbox event now (outbox_append: takes the outbox lock now)
//   "failwrite":  runs a write (UPDATE ... WHERE false), then answers CONFLICT (rc -1)
//   "key":        stores key seq once (optimistic: queued INSERT; careful: look first)
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cara/log.h"
#include "cara/service.h"
#include "cara/stream.h"

static const migration_t s_migrations[] = {{"001_lanes.sql",
                                            "CREATE TABLE lanes_scratch (n int);"
                                            "CREATE TABLE lanes_key (k bigint PRIMARY KEY);"},
                                           {NULL, NULL}};

static int s_cmd(service_t *svc, const identity_t *who, const Cara__Envelope *env, reply_t *reply) {
    (void)who;
    Cara__Head *h = (Cara__Head *)envelope_payload(env, &cara__head__descriptor);
    if (!h)
        return reply_field_error(reply, "payload", "not a cara.Head");
    db_t *db = service_db(svc);
    int rc = -1;
    char arg[24];
    snprintf(arg, sizeof arg, "%llu", (unsigned long long)h->seq);
    const char *values[] = {arg};
    log_info("lanes_cmd", "cmd", h->stream, "optimistic", service_optimistic(svc) ? "1" : "0");
    if (strcmp(h->stream, "sleep_wait") == 0) {
        usleep((useconds_t)h->seq * 1000);
        if (db_send(db, "SELECT pg_advisory_xact_lock(777)", 0, NULL, NULL, NULL) == 0)
            rc = reply_ok(reply, NULL);
    } else if (strcmp(h->stream, "event") == 0) {
        if (outbox_send(db, &h->base, "k", NULL, NULL, NULL) == 0)
            rc = reply_ok(reply, NULL);
    } else if (strcmp(h->stream, "append") == 0) {
        if (outbox_append(db, &h->base, "k", NULL, NULL, NULL) > 0)
            rc = reply_ok(reply, NULL);
    } else if (strcmp(h->stream, "failwrite") == 0) {
        if (db_exec(db, "UPDATE lanes_scratch SET n = n WHERE false", 0, NULL) == 0)
            reply_status(reply, CARA__REPLY__STATUS__CONFLICT, "refused after a write");
    } else if (strcmp(h->stream, "key") == 0) {
        int found = 0;
        if (!service_optimistic(svc))
            found =
                db_scalar(db, "SELECT k FROM lanes_key WHERE k = $1::bigint", 1, values, NULL, 0);
        if (found == 1)
            rc = reply_ok(reply, NULL);
        else if (found == 0 && db_send(db, "INSERT INTO lanes_key (k) VALUES ($1::bigint)", 1,
                                       values, NULL, NULL) == 0)
            rc = reply_ok(reply, NULL);
    }
    if (rc != 0 && reply->msg.status == CARA__REPLY__STATUS__OK)
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "retry");
    cara__head__free_unpacked(h, NULL);
    return rc;
}

static const service_handler_t s_handlers[] = {
    // Its commands put the lanes in place; repeats of a request id are not what it tests.
    {"cara.Head", s_cmd, SERVICE_WRITES_IDEMPOTENT},
    {NULL, NULL, 0}};

static const service_spec_t s_spec = {
    .name = "intake",
    .migrations = s_migrations,
    .handlers = s_handlers,
};

int main(int argc, char **argv) {
    return service_main(argc, argv, &s_spec);
}
