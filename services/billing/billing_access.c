// Who may do what in billing, and what each identity may read of billing's stream.
#include <string.h>

#include "billing.h"

int billing_require_role(const identity_t *who, reply_t *reply, int allow_operator) {
    if (identity_is(who, "finance") || identity_is(who, "commissioner") ||
        (allow_operator && identity_is(who, "operator")))
        return 0;
    reply_status(reply, CARA__REPLY__STATUS__FORBIDDEN,
                 "only finance staff and commissioners may do this");
    return -1;
}

int billing_require_finance(const identity_t *who, reply_t *reply) {
    if (identity_is(who, "finance"))
        return 0;
    reply_status(reply, CARA__REPLY__STATUS__FORBIDDEN, "only finance staff may do this");
    return -1;
}

int billing_require_party(service_t *svc, const identity_t *who, const char *contract_id,
                          reply_t *reply) {
    const char *values[] = {contract_id, who->org, identity_is(who, "operator") ? "t" : "f"};
    char found[4];
    int rc = db_scalar(service_db(svc),
                       "SELECT 1 FROM contract WHERE contract_id = $1 AND ($3::bool OR $2 IN"
                       " (commissioner, provider_id, licence_holder))",
                       3, values, found, sizeof found);
    if (rc < 0)
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable");
    else if (rc == 0)
        reply_status(reply, CARA__REPLY__STATUS__NOT_FOUND, "no such contract for %s", who->org);
    return rc;
}

int billing_require_commissioner(service_t *svc, const identity_t *who, const char *contract_id,
                                 reply_t *reply) {
    int party = billing_require_party(svc, who, contract_id, reply);
    if (party != 1)
        return party;
    const char *values[] = {contract_id};
    char commissioner[128] = "";
    if (db_scalar(service_db(svc), "SELECT commissioner FROM contract WHERE contract_id = $1", 1,
                  values, commissioner, sizeof commissioner) != 1) {
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable");
        return -1;
    }
    if (strcmp(commissioner, who->org) == 0)
        return 1;
    reply_status(reply, CARA__REPLY__STATUS__FORBIDDEN,
                 "only the commissioner (%s) may change this contract", commissioner);
    return 0;
}

// Serves an event to a finance or commissioner identity only if it concerns its organisation.
static int s_own_org(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                     uint8_t **payload, size_t *len) {
    (void)svc;
    (void)payload;
    (void)len;
    int keep = 0;
    if (strcmp(env->type, "cara.InvoiceIssued") == 0) {
        Cara__InvoiceIssued *ev =
            (Cara__InvoiceIssued *)envelope_payload(env, &cara__invoice_issued__descriptor);
        keep = ev && (strcmp(ev->issuer, who->org) == 0 || strcmp(ev->payer, who->org) == 0);
        if (ev)
            cara__invoice_issued__free_unpacked(ev, NULL);
    } else if (strcmp(env->type, "cara.CreditNoteIssued") == 0) {
        Cara__CreditNoteIssued *ev =
            (Cara__CreditNoteIssued *)envelope_payload(env, &cara__credit_note_issued__descriptor);
        keep = ev && (strcmp(ev->issuer, who->org) == 0 || strcmp(ev->payer, who->org) == 0);
        if (ev)
            cara__credit_note_issued__free_unpacked(ev, NULL);
    } else if (strcmp(env->type, "cara.CapReached") == 0) {
        Cara__CapReached *ev =
            (Cara__CapReached *)envelope_payload(env, &cara__cap_reached__descriptor);
        keep = ev &&
               (strcmp(ev->commissioner, who->org) == 0 || strcmp(ev->provider_id, who->org) == 0);
        if (ev)
            cara__cap_reached__free_unpacked(ev, NULL);
    }
    return keep;
}

int billing_fetch_view(service_t *svc, const identity_t *who, stream_view_t *view) {
    (void)svc;
    view->scope[0] = '\0';
    view->transform = NULL;
    if (identity_is(who, "service") || identity_is(who, "operator"))
        return 0;
    if (identity_is(who, "finance") || identity_is(who, "commissioner")) {
        view->transform = s_own_org;
        return 0;
    }
    return -1;
}
