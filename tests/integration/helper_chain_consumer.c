// Test consumer for the delivery tests: a service (in the triage slot) that consumes the intake
// slot's stream and records one row per event it applies, with no uniqueness constraint, so a
// duplicate effect would show as a second row.
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cara/service.h"

static const migration_t s_migrations[] = {
    {"001_chain.sql", "CREATE TABLE chain_effect (n bigint NOT NULL, seq bigint NOT NULL,"
                      " event_id uuid NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());"},
    {NULL, NULL}};

static apply_result_t s_apply(db_t *db, const Cara__Envelope *env, uint64_t seq, void *arg,
                              char *reason, size_t reason_size) {
    // chain.apply_delay_ms: a slow consumer, for tests of how far behind it is.
    int64_t delay_ms = config_int(service_config(arg), "chain.apply_delay_ms", 0);
    if (delay_ms > 0)
        usleep((useconds_t)delay_ms * 1000);
    Cara__Fetch *msg = (Cara__Fetch *)envelope_payload(env, &cara__fetch__descriptor);
    if (!msg) {
        snprintf(reason, reason_size, "not a numbered chain event");
        return APPLY_POISON;
    }
    char n[24], s[24];
    snprintf(n, sizeof n, "%llu", (unsigned long long)msg->after);
    snprintf(s, sizeof s, "%llu", (unsigned long long)seq);
    cara__fetch__free_unpacked(msg, NULL);
    const char *values[] = {n, s, env->event_id};
    // Queued (pipelined): the consumer reads every effect of the batch back in one round trip.
    if (db_send(db, "INSERT INTO chain_effect (n, seq, event_id) VALUES ($1, $2, $3)", 3, values,
                NULL, NULL) != 0)
        return APPLY_RETRY;
    return APPLY_OK;
}

static const service_upstream_t s_upstreams[] = {{"intake", s_apply}, {NULL, NULL}};

static const service_spec_t s_spec = {
    .name = "triage",
    .migrations = s_migrations,
    .upstreams = s_upstreams,
};

int main(int argc, char **argv) {
    return service_main(argc, argv, &s_spec);
}
