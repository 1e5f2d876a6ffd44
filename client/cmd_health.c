// `cara health SERVICE` and `cara status`: the operator's view of the five services.
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cara/pbjson.h"
#include "cli.h"

static const char *const s_services[] = {"intake",  "triage",   "booking",
                                         "billing", "national", NULL};

// Asks one service for its Health with the given timeout and retries. Returns the decoded
// Health (free with cara__health__free_unpacked) or NULL with the reason in why.
static Cara__Health *s_ask(cli_t *cli, const char *service, int timeout_ms, int retries, char *why,
                           size_t why_size) {
    Cara__HealthRequest req = CARA__HEALTH_REQUEST__INIT;
    client_t *client = cli_client(cli, service);
    if (!client) {
        snprintf(why, why_size, "not configured or no key");
        return NULL;
    }
    Cara__Reply *reply = client_call(client, &req.base, NULL, NULL, timeout_ms, retries);
    if (!reply) {
        snprintf(why, why_size, "no reply within %d ms x %d", timeout_ms, retries + 1);
        return NULL;
    }
    Cara__Health *health = NULL;
    if (reply->payload.len > 0)
        health = cara__health__unpack(NULL, reply->payload.len, reply->payload.data);
    if (!health)
        snprintf(why, why_size, "%s", *reply->message ? reply->message : "no health in the reply");
    cara__reply__free_unpacked(reply, NULL);
    return health;
}

// A service is healthy when it answers and reaches its database.
static int s_healthy(const Cara__Health *h) {
    return h && h->db_ok;
}

// cara health SERVICE [--timeout MS]: prints the service's Health; exit 0 only if healthy.
int cmd_health(cli_t *cli, int argc, char **argv) {
    const char *service = argc > 1 && argv[1][0] != '-' ? argv[1] : NULL;
    if (!service) {
        fprintf(stderr, "usage: cara health SERVICE [--timeout MS]\n");
        return CLI_FAIL;
    }
    int timeout_ms = atoi(cli_opt(argc, argv, "--timeout", "0"));
    config_t *config = cli_config(cli);
    if (!config)
        return CLI_FAIL;
    if (timeout_ms <= 0)
        timeout_ms = (int)config_int(config, "timeout_ms", 10000);
    char why[160] = "";
    Cara__Health *health = s_ask(cli, service, timeout_ms, 1, why, sizeof why);
    if (!health) {
        cli_print_json(json_pack("{s:s, s:b, s:b, s:s}", "service", service, "up", 0, "healthy", 0,
                                 "error", why));
        return CLI_FAIL;
    }
    json_t *doc = pbjson_from_message(&health->base);
    int healthy = s_healthy(health);
    if (doc)
        json_object_set_new(doc, "healthy", json_boolean(healthy));
    int printed = cli_print_json(doc); // -1: not written (out of memory, full disk, closed pipe)
    cara__health__free_unpacked(health, NULL);
    return printed == 0 && healthy ? CLI_OK : CLI_FAIL;
}

// One service's line (and its consumers' lines) in the status table.
static void s_print_row(const char *service, const Cara__Health *h, const char *why) {
    if (!h) {
        printf("%-9s %-5s %-5s %-12s %6s %10s %6s %8s  %s\n", service, "DOWN", "-", "-", "-", "-",
               "-", "-", why);
        return;
    }
    char schema[16], head[24], dead[24], oldest[24];
    snprintf(schema, sizeof schema, "%u", h->schema_version);
    snprintf(head, sizeof head, "%llu", (unsigned long long)h->stream_head);
    snprintf(dead, sizeof dead, "%llu", (unsigned long long)h->dead_letters);
    snprintf(oldest, sizeof oldest, "%llds", (long long)h->oldest_unprocessed_age_s);
    printf("%-9s %-5s %-5s %-12s %6s %10s %6s %8s\n", service, "up", h->db_ok ? "ok" : "FAIL",
           h->version, schema, head, dead, oldest);
    for (size_t i = 0; i < h->n_consumers; i++) {
        const Cara__ConsumerStatus *c = h->consumers[i];
        unsigned long long lag =
            c->upstream_head > c->cursor ? (unsigned long long)(c->upstream_head - c->cursor) : 0;
        printf("  <- %-10s cursor %-10llu head %-10llu lag %-8llu dead %-6llu%s%s\n", c->stream,
               (unsigned long long)c->cursor, (unsigned long long)c->upstream_head, lag,
               (unsigned long long)c->dead_letters, *c->last_error ? " error: " : "",
               c->last_error);
    }
}

// The --json form of one service.
static json_t *s_status_json(const char *service, const Cara__Health *h, const char *why) {
    if (!h)
        return json_pack("{s:s, s:b, s:b, s:s}", "service", service, "up", 0, "healthy", 0, "error",
                         why);
    json_t *doc = pbjson_from_message(&h->base);
    if (!doc)
        return NULL;
    json_object_set_new(doc, "service", json_string(service));
    json_object_set_new(doc, "up", json_true());
    json_object_set_new(doc, "healthy", json_boolean(s_healthy(h)));
    json_t *consumers = json_object_get(doc, "consumers");
    for (size_t i = 0; i < h->n_consumers && i < json_array_size(consumers); i++) {
        const Cara__ConsumerStatus *c = h->consumers[i];
        uint64_t lag = c->upstream_head > c->cursor ? c->upstream_head - c->cursor : 0;
        json_object_set_new(json_array_get(consumers, i), "lag", json_integer((json_int_t)lag));
    }
    return doc;
}

// cara status [--json] [--timeout MS]: every service's health in one table; exit 1 if any
// service is down or cannot reach its database.
int cmd_status(cli_t *cli, int argc, char **argv) {
    int as_json = cli_flag(argc, argv, "--json");
    int timeout_ms = atoi(cli_opt(argc, argv, "--timeout", "2000"));
    if (timeout_ms <= 0)
        timeout_ms = 2000;
    if (!cli_config(cli))
        return CLI_FAIL;
    json_t *all = as_json ? json_array() : NULL;
    int unhealthy = 0, lost = 0; // lost: a service left out of the --json array (out of memory)
    if (!as_json)
        printf("%-9s %-5s %-5s %-12s %6s %10s %6s %8s\n", "SERVICE", "UP", "DB", "VERSION",
               "SCHEMA", "HEAD", "DEAD", "OLDEST");
    for (int i = 0; s_services[i]; i++) {
        char why[160] = "";
        Cara__Health *h = s_ask(cli, s_services[i], timeout_ms, 1, why, sizeof why);
        if (!s_healthy(h))
            unhealthy++;
        if (as_json && json_array_append_new(all, s_status_json(s_services[i], h, why)) != 0)
            lost++;
        else if (!as_json)
            s_print_row(s_services[i], h, why);
        if (h)
            cara__health__free_unpacked(h, NULL);
    }
    int written;
    if (as_json && lost) {
        json_decref(all);
        fprintf(stderr, "cara: out of memory\n");
        written = 0;
    } else if (as_json) {
        written = cli_print_json(all) == 0;
    } else {
        printf("%s\n", unhealthy ? "UNHEALTHY" : "all healthy");
        written = cli_stdout_flush() == 0;
    }
    return written && !unhealthy ? CLI_OK : CLI_FAIL;
}
