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

// A publishing export changes the national stream, so its request id is claimed in request_log
// (request_log_answer, in the careful pass: a claim is undone with a refusal by the request's
// savepoint) and a retry publishes nothing again. What is kept is only that it was published
// (a bare OK); the return itself is built again for every repeat (it is large, and always the
// return as it stands).
static void s_entry(const identity_t *who, const Cara__Envelope *env, request_log_entry_t *entry) {
    request_log_entry(entry, "national", "NationalExport.publish", who->org, env->event_id,
                      env->payload.data, env->payload.len);
}

// Records that the request's publication is done: its claim's answer.
static int s_published(service_t *svc, const request_log_entry_t *entry) {
    reply_t done;
    reply_init(&done);
    int rc = request_log_fill(service_db(svc), entry->key, &done);
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
    // A repeat's reply holds its first answer (a bare OK) until the return is put in below.
    request_log_entry_t entry;
    if (req->publish)
        s_entry(who, env, &entry);
    int found = req->publish ? request_log_answer(service_db(svc), &entry, reply) : 0;
    if (found < 0)
        goto cleanup;
    if (req->publish && found == REQUEST_LOG_NEW) {
        Cara__NationalReturnPublished ev = CARA__NATIONAL_RETURN_PUBLISHED__INIT;
        ev.period = req->period;
        ev.schema_version = NATIONAL_SCHEMA_VERSION;
        ev.json = json_text;
        if (outbox_append(service_db(svc), &ev.base, req->period, NULL, NULL, NULL) < 0 ||
            service_audit(svc, who, "national_return_published", "period", req->period, NULL) !=
                0 ||
            s_published(svc, &entry) != 0) {
            reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "could not publish");
            goto cleanup;
        }
    }
    // Every disclosure is audited (who read which period, in which form), a repeat's and a
    // plain read's too, in the request's transaction: no return goes out unrecorded.
    if (service_audit(svc, who, "national_return_exported", "period", req->period,
                      json_pack("{s:s, s:b}", "format", format, "publish", req->publish ? 1 : 0)) !=
        0) {
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "could not audit the export");
        goto cleanup;
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
