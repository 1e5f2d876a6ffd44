// cara-triage: eligibility, needs assessment, pathway decision and routing (issue 4).
#include <stdlib.h>
#include <string.h>

#include "triage.pb-c.h"

#include "cara/log.h"
#include "cara/pbstrip.h"
#include "cara/service.h"
#include "cara/victim_strip.h"
#include "triage_case.h"

extern const migration_t triage_migrations[];

static const service_handler_t s_handlers[] = {
    {"cara.TriageDecide", triage_cmd_decide, SERVICE_WRITES},
    {"cara.RecordNeeds", triage_cmd_needs, SERVICE_WRITES},
    {"cara.ListOverdue", triage_cmd_overdue, SERVICE_READS},
    {"cara.ShowTriageCase", triage_cmd_show, SERVICE_READS},
    {"cara.ListSafetyAlerts", triage_cmd_alerts, SERVICE_READS},
    {NULL, NULL, 0},
};

// intake: referrals, amendments, withdrawals; booking: safety concerns from victim contact.
static const service_upstream_t s_upstreams[] = {{"intake", triage_case_apply, NULL},
                                                 {"booking", triage_safety_apply, NULL},
                                                 {NULL, NULL, NULL}};

// Onward referrals keep their dates; the service named is staff free text.
static void s_blank_onward(Cara__OnwardReferral **onward, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (onward[i])
            pbstrip_text(&onward[i]->service);
}

// For the national service: the decision without the person or anyone's words. ReferralTriaged
// loses the referral and the pathway reason (an override's is staff free text), returns the
// details of their reason codes, TriageCaseUpdated its changes and referral, withdrawals their
// free-text reason; every event loses the fields this build does not know.
static int s_national(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                      uint8_t **payload, size_t *len) {
    (void)svc;
    (void)who;
    ProtobufCMessage *msg = NULL;
    if (strcmp(env->type, "cara.ReferralTriaged") == 0 &&
        (msg = envelope_payload(env, &cara__referral_triaged__descriptor))) {
        Cara__ReferralTriaged *t = (Cara__ReferralTriaged *)msg;
        cara__referral__free_unpacked(t->referral, NULL);
        t->referral = NULL;
        pbstrip_text(&t->pathway_reason);
        s_blank_onward(t->onward, t->n_onward);
    } else if (strcmp(env->type, "cara.TriageCaseUpdated") == 0 &&
               (msg = envelope_payload(env, &cara__triage_case_updated__descriptor))) {
        Cara__TriageCaseUpdated *u = (Cara__TriageCaseUpdated *)msg;
        cara__referral__free_unpacked(u->referral, NULL);
        u->referral = NULL;
        for (size_t i = 0; i < u->n_changes; i++)
            cara__field_change__free_unpacked(u->changes[i], NULL);
        free(u->changes);
        u->changes = NULL;
        u->n_changes = 0;
        s_blank_onward(u->onward, u->n_onward);
    } else if (strcmp(env->type, "cara.TriageCaseWithdrawn") == 0 &&
               (msg = envelope_payload(env, &cara__triage_case_withdrawn__descriptor))) {
        pbstrip_text(&((Cara__TriageCaseWithdrawn *)msg)->reason);
    } else if (strcmp(env->type, "cara.ReferralReturned") == 0 &&
               (msg = envelope_payload(env, &cara__referral_returned__descriptor))) {
        Cara__ReferralReturned *r = (Cara__ReferralReturned *)msg;
        for (size_t i = 0; i < r->n_reasons; i++)
            if (r->reasons[i])
                pbstrip_text(&r->reasons[i]->detail);
    } else {
        return 0; // anything else, or anything undecodable: not for national
    }
    pbstrip_unknown(msg, NULL);
    int keep = envelope_encode_message(msg, payload, len) == 0 ? 1 : -1;
    protobuf_c_message_free_unpacked(msg, NULL);
    return keep;
}

// For intake, which tells the police the outcome: decisions, returns and withdrawals, without
// the referral it already holds or the needs assessment (the police have no need of it).
// Amendments after triage are the provider's business and are left out.
static int s_intake(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                    uint8_t **payload, size_t *len) {
    (void)svc;
    (void)who;
    if (strcmp(env->type, "cara.ReferralReturned") == 0 ||
        strcmp(env->type, "cara.TriageCaseWithdrawn") == 0)
        return 1;
    if (strcmp(env->type, "cara.ReferralTriaged") != 0)
        return 0;
    Cara__ReferralTriaged *t =
        (Cara__ReferralTriaged *)envelope_payload(env, &cara__referral_triaged__descriptor);
    if (!t)
        return 0;
    cara__referral__free_unpacked(t->referral, NULL);
    t->referral = NULL;
    for (size_t i = 0; i < t->n_needs; i++)
        cara__need__free_unpacked(t->needs[i], NULL);
    for (size_t i = 0; i < t->n_onward; i++)
        cara__onward_referral__free_unpacked(t->onward[i], NULL);
    free(t->needs);
    free(t->onward);
    t->needs = NULL;
    t->onward = NULL;
    t->n_needs = t->n_onward = 0;
    int keep = envelope_encode_message(&t->base, payload, len) == 0 ? 1 : -1;
    cara__referral_triaged__free_unpacked(t, NULL);
    return keep;
}

// Drops the victim's details from a referral going to the provider when the victim does not
// consent to contact: the provider has no use for them (the consent flag stays).
// Returns 1 if it dropped them.
static int s_without_victim(Cara__Referral *r) {
    if (!r || !r->victim || r->victim->consents_to_contact)
        return 0;
    cara__victim__free_unpacked(r->victim, NULL);
    r->victim = NULL;
    return 1;
}

// Whether an event of this type can carry a referral (and so the victim's details).
static int s_carries_referral(const char *type) {
    return strcmp(type, "cara.ReferralTriaged") == 0 || strcmp(type, "cara.TriageCaseUpdated") == 0;
}

// Decodes an event that can carry a referral, takes the victim's details out of its referral
// with strip (and, from an amendment, every victim.* change), and encodes it again into
// payload/len if anything went. Returns 1 (kept), -1 if it could not be encoded, or 0 if the
// event does not decode here: the caller decides what an undecodable one becomes.
static int s_victim_view(const Cara__Envelope *env, int (*strip)(Cara__Referral *),
                         uint8_t **payload, size_t *len) {
    ProtobufCMessage *msg = NULL;
    size_t dropped = 0;
    if (strcmp(env->type, "cara.ReferralTriaged") == 0) {
        if ((msg = envelope_payload(env, &cara__referral_triaged__descriptor)))
            dropped = (size_t)strip(((Cara__ReferralTriaged *)msg)->referral);
    } else if ((msg = envelope_payload(env, &cara__triage_case_updated__descriptor))) {
        Cara__TriageCaseUpdated *u = (Cara__TriageCaseUpdated *)msg;
        dropped = (size_t)strip(u->referral) + victim_strip_changes(u->changes, &u->n_changes);
    }
    if (!msg)
        return 0;
    int keep = !dropped || envelope_encode_message(msg, payload, len) == 0 ? 1 : -1;
    protobuf_c_message_free_unpacked(msg, NULL);
    return keep;
}

// For booking (the provider side): every event, but a referral whose victim does not consent
// to contact comes without the victim's details, and an amendment never carries the changes of
// the victim's fields (booking takes the victim from the referral, so it loses nothing).
// An event that can carry a referral but that this build cannot decode (a newer schema_version
// during a rolling upgrade, or a damaged row) fails the whole fetch (-1, UNAVAILABLE) rather
// than going out as it is (victim and all) or being left out: left out, booking's cursor would
// pass over it and the provider would never hear of the referral, with no dead letter to show
// it. Failed, booking asks again and stops at that event, visible in its health as an upstream
// error, until a triage that can read it serves it or an operator repairs the row: nothing is
// lost and nothing leaks.
static int s_booking(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                     uint8_t **payload, size_t *len) {
    (void)svc;
    (void)who;
    if (!s_carries_referral(env->type))
        return 1;
    int keep = s_victim_view(env, s_without_victim, payload, len);
    if (keep == 0) {
        log_warn("stream_view_undecodable", "type", env->type, "event_id", env->event_id, "reader",
                 "service:booking");
        return -1;
    }
    return keep;
}

// For operators (health checks, diagnosis, dead-letter replay): every event with its ids,
// types, codes, pathway and needs, but no victim's details: a referral's victim is blanked but
// for the consent flag, and an amendment's victim.* changes are dropped. An event that can
// carry a referral but does not decode here is served with its envelope only (id, type,
// schema_version, correlation id; the payload emptied), so the operator still sees that it is
// there and what it is, and nothing else.
static int s_operator(service_t *svc, const identity_t *who, const Cara__Envelope *env,
                      uint8_t **payload, size_t *len) {
    (void)svc;
    (void)who;
    if (!s_carries_referral(env->type))
        return 1;
    int keep = s_victim_view(env, victim_strip_details, payload, len);
    if (keep == 0) {
        *payload = malloc(1);
        *len = 0;
        return *payload ? 1 : -1;
    }
    return keep;
}

// Booking (the provider side, which acts on the decisions) reads the whole stream without the
// details of a victim who does not consent; operators read every event without any victim's
// details; intake reads the outcomes only; national reads it de-identified; everyone else
// (providers' and police systems, Hampton Trust, staff keys) is refused: they read the streams
// of the services that serve them.
static int s_fetch_view(service_t *svc, const identity_t *who, stream_view_t *view) {
    (void)svc;
    if (identity_is(who, "operator")) {
        view->transform = s_operator;
        return 0;
    }
    if (!identity_is(who, "service"))
        return -1;
    if (strcmp(who->org, "national") == 0) {
        view->transform = s_national;
        return 0;
    }
    if (strcmp(who->org, "intake") == 0) {
        view->transform = s_intake;
        return 0;
    }
    if (strcmp(who->org, "booking") != 0)
        return -1;
    view->transform = s_booking;
    return 0;
}

static const service_spec_t s_spec = {
    .name = "triage",
    .migrations = triage_migrations,
    .handlers = s_handlers,
    .upstreams = s_upstreams,
    .fetch_view = s_fetch_view,
};

int main(int argc, char **argv) {
    return service_main(argc, argv, &s_spec);
}
