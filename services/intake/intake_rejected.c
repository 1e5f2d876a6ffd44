#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intake_commands.h"

#define S_DEFAULT_LIMIT 50
#define S_MAX_LIMIT 500

// Frees the items built by s_fill (strings are borrowed from the result).
static void s_free_items(Cara__RejectedSubmission **items, size_t n) {
    for (size_t i = 0; items && i < n; i++) {
        if (!items[i])
            continue;
        for (size_t k = 0; k < items[i]->n_errors; k++) {
            free(items[i]->errors[k]->field);
            free(items[i]->errors[k]->reason);
            free(items[i]->errors[k]);
        }
        free(items[i]->errors);
        free(items[i]);
    }
    free(items);
}

// One item from row i: id, caution_reference, request_id, received_at, errors (JSON).
static Cara__RejectedSubmission *s_item(PGresult *res, int i) {
    Cara__RejectedSubmission *item = calloc(1, sizeof *item);
    if (!item)
        return NULL;
    cara__rejected_submission__init(item);
    item->id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
    item->caution_reference = PQgetvalue(res, i, 1);
    item->request_id = PQgetvalue(res, i, 2);
    item->received_at = PQgetvalue(res, i, 3);
    json_t *errors = json_loads(PQgetvalue(res, i, 4), 0, NULL);
    size_t n = json_array_size(errors);
    item->errors = n ? calloc(n, sizeof *item->errors) : NULL;
    for (size_t k = 0; item->errors && k < n; k++) {
        json_t *e = json_array_get(errors, k);
        Cara__RejectedError *out = malloc(sizeof *out);
        if (!out)
            break;
        cara__rejected_error__init(out);
        const char *field = json_string_value(json_object_get(e, "field"));
        const char *reason = json_string_value(json_object_get(e, "reason"));
        out->field = strdup(field ? field : "");
        out->reason = strdup(reason ? reason : "");
        item->errors[item->n_errors++] = out;
        if (!out->field || !out->reason)
            break;
    }
    json_decref(errors);
    return item;
}

int intake_rejected_handle(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                           reply_t *reply) {
    if (!identity_is(who, "police") || !who->org[0]) {
        reply_status(reply, CARA__REPLY__STATUS__FORBIDDEN,
                     "only police forces review their rejected submissions");
        return -1;
    }
    Cara__ListRejectedSubmissions *cmd = (Cara__ListRejectedSubmissions *)envelope_payload(
        env, &cara__list_rejected_submissions__descriptor);
    if (!cmd)
        return reply_field_error(reply, "payload", "is not a valid cara.ListRejectedSubmissions");
    int rc = -1;
    Cara__RejectedSubmission **items = NULL;
    size_t n = 0;
    char after[24], limit[16];
    snprintf(after, sizeof after, "%lld", (long long)(cmd->after_id > 0 ? cmd->after_id : 0));
    snprintf(limit, sizeof limit, "%u",
             cmd->limit == 0            ? S_DEFAULT_LIMIT
             : cmd->limit > S_MAX_LIMIT ? S_MAX_LIMIT
                                        : cmd->limit);
    const char *values[] = {who->org, after, limit};
    // Only the submitting force's own rejections.
    PGresult *res = db_query(service_db(svc),
                             "SELECT id, caution_reference, request_id, to_char(received_at AT TIME"
                             " ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), errors::text"
                             " FROM rejected_submission WHERE force = $1 AND id > $2::bigint"
                             " ORDER BY id LIMIT $3::int",
                             3, values);
    if (!res)
        goto cleanup;
    int rows = PQntuples(res);
    items = calloc((size_t)rows + 1, sizeof *items);
    if (!items)
        goto cleanup;
    for (n = 0; n < (size_t)rows; n++)
        if (!(items[n] = s_item(res, (int)n)))
            goto cleanup;
    Cara__RejectedSubmissionList list = CARA__REJECTED_SUBMISSION_LIST__INIT;
    list.items = items;
    list.n_items = n;
    rc = reply_ok(reply, &list.base);
cleanup:
    if (rc != 0 && reply->msg.status == CARA__REPLY__STATUS__OK)
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable; retry");
    s_free_items(items, n);
    PQclear(res);
    cara__list_rejected_submissions__free_unpacked(cmd, NULL);
    return rc;
}
