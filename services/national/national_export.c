// The export command: the national return for a period as JSON, CSV or HTML, optionally
// published on the national feed (the only events on the national stream: aggregates).
#include "national_export.h"

#include <stdlib.h>
#include <string.h>

#include "cara/log.h"
#include "cara/request_log.h"
#include "cara/stream.h"
#include "national.pb-c.h"
#include "national_render.h"
#include "national_return.h"

// A publishing export changes the national stream, so its request id is kept (request_log):
// a retry publishes nothing again. What is kept is only that it was published; the return itself
// is built again for every repeat (it is large, and always the return as it stands).
static void s_entry(const identity_t *who, const Cara__Envelope *env, request_log_entry_t *entry) {
    request_log_entry(entry, "national", "NationalExport.publish", who->org, env->event_id,
                      env->payload.data, env->payload.len);
}

// Claims the request's publication (in the careful pass: a claim is undone with a refusal by the
// request's savepoint). Returns 0 (new: publish, then s_published), 1 (this request published
// it already) or -1 with the reply saying why.
static int s_publish_once(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                          reply_t *reply) {
    request_log_entry_t entry;
    s_entry(who, env, &entry);
    reply_t first;
    reply_init(&first);
    int found = request_log_claim(service_db(svc), entry.key, entry.hash, &first);
    reply_clear(&first);
    if (found == REQUEST_LOG_CONFLICT)
        reply_status(reply, CARA__REPLY__STATUS__CONFLICT,
                     "this request id was already used with different content");
    else if (found < 0)
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable; retry");
    return found == REQUEST_LOG_NEW ? 0 : found == REQUEST_LOG_REPEAT ? 1 : -1;
}

// Records that the request's publication is done (its claim's answer: a bare OK).
static int s_published(service_t *svc, const identity_t *who, const Cara__Envelope *env) {
    request_log_entry_t entry;
    s_entry(who, env, &entry);
    reply_t done;
    reply_init(&done);
    int rc = request_log_fill(service_db(svc), entry.key, &done);
    reply_clear(&done);
    return rc;
}

int national_cmd_export(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                        reply_t *reply) {
    if (!identity_is(who, "hampton_trust") && !identity_is(who, "operator")) {
        reply_status(reply, CARA__REPLY__STATUS__FORBIDDEN,
                     "the national return is for Hampton Trust and operators");
        return -1;
    }
    Cara__NationalExport *req =
        (Cara__NationalExport *)envelope_payload(env, &cara__national_export__descriptor);
    if (!req)
        return reply_field_error(reply, "payload", "not a valid cara.NationalExport");
    int rc = -1;
    char from[16], to[16], *json_text = NULL, *content = NULL;
    const char *kind, *format = *req->format ? req->format : "json";
    json_t *doc = NULL;
    if (national_period(req->period, from, to, &kind) != 0)
        reply_field_error(reply, "period", "must be YYYYQn, YYYY-MM or FYyyyy (April to March)");
    if (strcmp(format, "json") && strcmp(format, "csv") && strcmp(format, "html"))
        reply_field_error(reply, "format", "must be json, csv or html");
    if (reply_error_count(reply))
        goto cleanup;
    if (req->publish && service_optimistic(svc)) {
        rc = SERVICE_CAREFUL; // before anything is written
        goto cleanup;
    }
    if (!(doc = national_return_build(service_db(svc), req->period))) {
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable");
        goto cleanup;
    }
    json_text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    content = strcmp(format, "json") == 0  ? (json_text ? strdup(json_text) : NULL)
              : strcmp(format, "csv") == 0 ? national_render_csv(doc)
                                           : national_render_html(doc);
    if (!content) {
        reply_status(reply, CARA__REPLY__STATUS__ERROR, "could not build the return");
        goto cleanup;
    }
    int published = 0;
    if (req->publish && (published = s_publish_once(svc, who, env, reply)) < 0)
        goto cleanup;
    if (req->publish && published == 0) {
        Cara__NationalReturnPublished ev = CARA__NATIONAL_RETURN_PUBLISHED__INIT;
        ev.period = req->period;
        ev.schema_version = NATIONAL_SCHEMA_VERSION;
        ev.json = json_text;
        if (outbox_append(service_db(svc), &ev.base, req->period, NULL, NULL, NULL) < 0 ||
            service_audit(svc, who, "national_return_published", "period", req->period, NULL) !=
                0 ||
            s_published(svc, who, env) != 0) {
            reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "could not publish");
            goto cleanup;
        }
    }
    Cara__NationalExportResult res = CARA__NATIONAL_EXPORT_RESULT__INIT;
    res.media_type = strcmp(format, "json") == 0  ? "application/json"
                     : strcmp(format, "csv") == 0 ? "text/csv"
                                                  : "text/html";
    res.content = content;
    rc = reply_ok(reply, &res.base);
    log_info("national_export", "period", req->period, "format", format);
cleanup:
    free(content);
    free(json_text);
    json_decref(doc);
    cara__national_export__free_unpacked(req, NULL);
    return rc;
}
