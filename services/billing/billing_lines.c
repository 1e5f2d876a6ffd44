// Billable lines. They come only from the booking stream (delivered cohorts, completed
// telephone cases, victim contact) and from training records (billing_training.c). Each line
// is keyed by its source (the delivery key plus the kind), so replaying the stream bills
// nothing twice; a cohort's later revisions are compared with the last one seen.
// A revision with fewer participants does not change a per-cohort fee (only the evidence of
// lines not yet invoiced); a revision that removes the cohort (no participants left) voids its
// uninvoiced lines and credits its invoiced ones (credit note at the next run).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing.h"
#include "billing_year.h"
#include "booking.pb-c.h"
#include "cara/log.h"
#include "cara/stream.h"
#include "cara/timeutil.h"

static const identity_t s_booking = {"service", "booking"};

// One delivery to bill: where it comes from and its evidence.
typedef struct {
    const char *contract_id;
    const char *key; // delivery key, e.g. cohort:<id>:g1, case:<id>
    const char *cohort_id, *cohort_type, *part_a, *delivered_on, *event_id;
    int participants;
} s_delivery_t;

typedef struct {
    const char *kind;
    int64_t amount;
    int participants;
    const char *issuer, *payer;
} s_line_t;

// The contract covering a provider's delivery on a date, locked (cap checks run one at a
// time). Returns the row (caller PQclears) or NULL with *error set on failure; NULL and
// *error == 0 if none covers it. Columns: contract_id, commissioner, provider_id,
// licence_holder, cohort fee for the type, victim_liaison, telephone_fee, licence per cohort,
// licence_fee_mode, licence_fee_exclusive, victim_contact_fee.
static PGresult *s_contract_for(db_t *db, const char *provider, const char *date,
                                const char *cohort_type, const char *contract_id, int *error) {
    const char *values[] = {provider, date, cohort_type ? cohort_type : "", contract_id};
    PGresult *r = db_query(db,
                           "SELECT contract_id, commissioner, provider_id, licence_holder,"
                           " coalesce((SELECT fee_pence FROM contract_cohort_fee f WHERE"
                           "  f.contract_id = c.contract_id AND f.cohort_type = $3),"
                           "  cohort_fee_pence), victim_liaison_pence, telephone_fee_pence,"
                           " licence_fee_pence_per_cohort, licence_fee_mode,"
                           " licence_fee_exclusive, victim_contact_fee_pence FROM contract c"
                           " WHERE ($4::text IS NOT NULL AND contract_id = $4) OR ($4::text IS"
                           " NULL AND provider_id = $1 AND $2::date BETWEEN starts_on AND ends_on)"
                           " ORDER BY starts_on DESC LIMIT 1 FOR UPDATE",
                           4, values);
    *error = r == NULL;
    if (r && PQntuples(r) == 0) {
        PQclear(r);
        return NULL;
    }
    return r;
}

// Bills one delivery once (nothing if its key was billed before, under any contract: a case's
// victim contact goes on across a renewal): its lines are all held as over_cap if the delivery
// would take the contract past a cap. Returns 0 or -1.
static int s_bill(service_t *svc, const s_delivery_t *d, const s_line_t *lines, int n) {
    db_t *db = service_db(svc);
    const char *kv[] = {d->key};
    char seen[4], fy[16];
    int found = db_scalar(db, "SELECT 1 FROM billable_line WHERE delivery_key = $1 LIMIT 1", 1, kv,
                          seen, sizeof seen);
    if (found != 0)
        return found < 0 ? -1 : 0;
    int64_t money = 0, offenders = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(lines[i].kind, "licence_fee") != 0)
            money += lines[i].amount;
        if (strcmp(lines[i].kind, "cohort_fee") == 0 || strcmp(lines[i].kind, "telephone_fee") == 0)
            offenders += lines[i].participants;
    }
    int error = 0;
    const char *held = billing_cap_check(db, d->contract_id, money, offenders, &error);
    int32_t day;
    if (error || time_parse_date(d->delivered_on, &day) != 0 ||
        billing_year_of(day, fy, sizeof fy, NULL, NULL) != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        char source[200], amount[24], part[12];
        snprintf(source, sizeof source, "%s:%s", d->key, lines[i].kind);
        snprintf(amount, sizeof amount, "%lld", (long long)lines[i].amount);
        snprintf(part, sizeof part, "%d", lines[i].participants);
        const char *values[] = {d->contract_id, lines[i].kind,
                                source,         d->cohort_id,
                                part,           d->delivered_on,
                                amount,         lines[i].issuer,
                                lines[i].payer, held ? "over_cap" : "pending",
                                d->key,         d->cohort_type,
                                d->part_a,      fy,
                                d->event_id,    held};
        if (db_exec(db,
                    "INSERT INTO billable_line (contract_id, kind, source, cohort_id,"
                    " participants, delivered_on, amount_pence, issuer, payer, status,"
                    " delivery_key, cohort_type, part_a_date, financial_year, event_id,"
                    " held_reason) VALUES ($1, $2, $3, nullif($4, ''), $5, $6, $7, $8, $9, $10,"
                    " $11, nullif($12, ''), nullif($13, '')::date, $14, $15, $16)",
                    16, values) != 0)
            return -1;
    }
    if (service_audit(svc, &s_booking, held ? "delivery_held_over_cap" : "delivery_billed",
                      "contract", d->contract_id,
                      json_pack("{s:s, s:s, s:s?}", "delivery", d->key, "event_id", d->event_id,
                                "cap", held)) != 0)
        return -1;
    if (held)
        log_warn("delivery_held_over_cap", "contract", d->contract_id, "delivery", d->key, "cap",
                 held);
    return billing_cap_alerts(svc, d->contract_id);
}

// Bills a delivered cohort under contract row c. Returns 0 or -1.
static int s_bill_cohort(service_t *svc, PGresult *c, const Cara__CohortDelivered *ev,
                         const char *key, const char *event_id) {
    const char *commissioner = PQgetvalue(c, 0, 1), *provider = PQgetvalue(c, 0, 2);
    const char *holder = PQgetvalue(c, 0, 3);
    int64_t licence =
        strcmp(PQgetvalue(c, 0, 8), "per_cohort") == 0 ? atoll(PQgetvalue(c, 0, 7)) : 0;
    int exclusive = strcmp(PQgetvalue(c, 0, 9), "t") == 0;
    s_line_t lines[4];
    int n = 0;
    lines[n++] = (s_line_t){"cohort_fee", atoll(PQgetvalue(c, 0, 4)), (int)ev->participants,
                            provider, commissioner};
    if (atoll(PQgetvalue(c, 0, 5)) > 0)
        lines[n++] =
            (s_line_t){"victim_liaison", atoll(PQgetvalue(c, 0, 5)), 0, provider, commissioner};
    if (licence > 0) {
        // Hampton Trust invoices the provider; inside the delivery fee unless recharged.
        lines[n++] = (s_line_t){"licence_fee", licence, 0, holder, provider};
        if (exclusive)
            lines[n++] = (s_line_t){"licence_recharge", licence, 0, provider, commissioner};
    }
    s_delivery_t d = {
        PQgetvalue(c, 0, 0), key,      ev->cohort_id,        ev->cohort_type, ev->part_a_date,
        ev->part_b_date,     event_id, (int)ev->participants};
    return s_bill(svc, &d, lines, n);
}

// A cohort removed by a correction: its uninvoiced lines are voided, its invoiced lines
// credited (credit lines pending for the next run). Returns 0 or -1.
static int s_remove(service_t *svc, const char *contract_id, const char *key,
                    const char *event_id) {
    db_t *db = service_db(svc);
    const char *values[] = {contract_id, key, event_id};
    if (db_exec(db,
                "UPDATE billable_line SET status = 'void' WHERE contract_id = $1 AND"
                " delivery_key = $2 AND status IN ('pending', 'over_cap')",
                2, values) != 0 ||
        db_exec(db,
                "INSERT INTO billable_line (contract_id, kind, source, cohort_id, participants,"
                " delivered_on, amount_pence, issuer, payer, status, delivery_key, cohort_type,"
                " part_a_date, financial_year, event_id, credits_line)"
                " SELECT contract_id, kind, source || ':credit', cohort_id, -participants,"
                " delivered_on, -amount_pence, issuer, payer, 'pending', delivery_key ||"
                " ':credit', cohort_type, part_a_date, financial_year, $3, line_id"
                " FROM billable_line WHERE contract_id = $1 AND delivery_key = $2"
                " AND status = 'invoiced' ORDER BY line_id ON CONFLICT (source) DO NOTHING",
                3, values) != 0)
        return -1;
    if (service_audit(svc, &s_booking, "delivery_removed", "contract", contract_id,
                      json_pack("{s:s, s:s}", "delivery", key, "event_id", event_id)) != 0)
        return -1;
    return billing_cap_release(svc, contract_id);
}

// Keeps an event no contract covers yet, to bill when one is added; completed_case names the
// case of a completion (NULL for other events). Returns APPLY_OK/RETRY.
static apply_result_t s_wait(db_t *db, const Cara__Envelope *env, const char *provider,
                             const char *day, const char *completed_case) {
    uint8_t *buf = NULL;
    size_t len = 0;
    if (envelope_encode_message(&env->base, &buf, &len) != 0)
        return APPLY_RETRY;
    const char *values[] = {env->event_id, provider, day, (const char *)buf, completed_case};
    const int lengths[] = {0, 0, 0, (int)len, 0}, formats[] = {0, 0, 0, 1, 0};
    PGresult *r = db_query_bin(db,
                               "INSERT INTO unbilled_event (event_id, provider_id, on_date,"
                               " envelope, completed_case) VALUES ($1, $2, $3, $4, $5)"
                               " ON CONFLICT DO NOTHING",
                               5, values, lengths, formats, 0);
    free(buf);
    if (!r)
        return APPLY_RETRY;
    PQclear(r);
    log_info("unbilled_event", "event_id", env->event_id, "provider", provider, "on", day);
    return APPLY_OK;
}

// A billed cohort reported again with participants instead of had: the cohort_fee line not
// yet invoiced takes the new count; an increase that takes the contract past its offender cap
// holds the delivery's lines not yet invoiced (over_cap, "offenders"), as on a first report;
// then every held delivery that now fits (this one revised down, say) is released, and the cap
// alerts follow the new usage. Returns 0 or -1.
static int s_revise_cohort(service_t *svc, const char *contract_id, const char *key, int64_t had,
                           int64_t participants) {
    db_t *db = service_db(svc);
    const char *held = NULL;
    int error = 0;
    if (participants > had)
        held = billing_cap_check(db, contract_id, 0, participants - had, &error);
    if (error)
        return -1;
    char part[24];
    snprintf(part, sizeof part, "%lld", (long long)participants);
    const char *uv[] = {contract_id, key, part, held};
    if (db_exec(db,
                "UPDATE billable_line SET participants = CASE WHEN kind = 'cohort_fee' THEN"
                " $3::int ELSE participants END, status = CASE WHEN $4::text IS NULL THEN status"
                " ELSE 'over_cap' END, held_reason = coalesce($4, held_reason)"
                " WHERE contract_id = $1 AND delivery_key = $2 AND status IN ('pending',"
                " 'over_cap')",
                4, uv) != 0)
        return -1;
    if (held)
        log_warn("delivery_held_over_cap", "contract", contract_id, "delivery", key, "cap", held);
    return billing_cap_release(svc, contract_id);
}

static apply_result_t s_cohort_delivered(service_t *svc, const Cara__Envelope *env,
                                         const Cara__CohortDelivered *ev) {
    db_t *db = service_db(svc);
    int32_t day;
    if (strcmp(ev->cohort_type, "telephone") == 0 || time_parse_date(ev->part_b_date, &day) != 0)
        return APPLY_OK; // telephone is billed per completed case
    const char *cv[] = {ev->cohort_id};
    PGresult *prev = db_query(db,
                              "SELECT contract_id, revision, participants, generation,"
                              " removed FROM cohort_delivery WHERE cohort_id = $1 FOR UPDATE",
                              1, cv);
    if (!prev)
        return APPLY_RETRY;
    int error = 0, known = PQntuples(prev) == 1;
    if (known && (int64_t)ev->revision <= atoll(PQgetvalue(prev, 0, 1))) {
        PQclear(prev);
        return APPLY_OK; // a replay, or a revision older than the last one seen
    }
    PGresult *c = s_contract_for(db, ev->provider_id, ev->part_b_date, ev->cohort_type,
                                 known ? PQgetvalue(prev, 0, 0) : NULL, &error);
    if (!c) {
        PQclear(prev);
        return error ? APPLY_RETRY : s_wait(db, env, ev->provider_id, ev->part_b_date, NULL);
    }
    int generation = known ? atoi(PQgetvalue(prev, 0, 3)) : 0;
    int removed = known ? strcmp(PQgetvalue(prev, 0, 4), "t") == 0 : 1;
    char key[160], rev[16], part[16], gen[16];
    int rc = 0;
    if (ev->participants == 0 && !removed) {
        snprintf(key, sizeof key, "cohort:%s:g%d", ev->cohort_id, generation);
        rc = s_remove(svc, PQgetvalue(c, 0, 0), key, env->event_id);
        removed = 1;
    } else if (ev->participants > 0 && removed) {
        generation++;
        snprintf(key, sizeof key, "cohort:%s:g%d", ev->cohort_id, generation);
        rc = s_bill_cohort(svc, c, ev, key, env->event_id);
        removed = 0;
    } else if (ev->participants > 0) {
        // Same cohort, other participants: the per-cohort fee stands; the evidence of lines
        // not yet invoiced follows the latest revision. More participants count against the
        // offender cap as the first report's did: past it, the lines not yet invoiced are held.
        snprintf(key, sizeof key, "cohort:%s:g%d", ev->cohort_id, generation);
        rc = s_revise_cohort(svc, PQgetvalue(c, 0, 0), key, atoll(PQgetvalue(prev, 0, 2)),
                             ev->participants);
    }
    snprintf(rev, sizeof rev, "%u", ev->revision);
    snprintf(part, sizeof part, "%u", ev->participants);
    snprintf(gen, sizeof gen, "%d", generation);
    const char *sv[] = {ev->cohort_id, PQgetvalue(c, 0, 0), rev,          part,
                        gen,           removed ? "t" : "f", env->event_id};
    if (rc == 0)
        rc = db_exec(db,
                     "INSERT INTO cohort_delivery (cohort_id, contract_id, revision, participants,"
                     " generation, removed, last_event_id) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                     " ON CONFLICT (cohort_id) DO UPDATE SET revision = $3, participants = $4,"
                     " generation = $5, removed = $6, last_event_id = $7",
                     7, sv);
    PQclear(c);
    PQclear(prev);
    return rc == 0 ? APPLY_OK : APPLY_RETRY;
}

static apply_result_t s_case_completed(service_t *svc, const Cara__Envelope *env,
                                       const Cara__CaseCompleted *ev) {
    char day[16];
    int32_t d;
    snprintf(day, sizeof day, "%.10s", ev->completed_at);
    if (strcmp(ev->pathway, "telephone") != 0 || time_parse_date(day, &d) != 0)
        return APPLY_OK;
    int error = 0;
    PGresult *c = s_contract_for(service_db(svc), ev->provider_id, day, NULL, NULL, &error);
    if (!c)
        return error ? APPLY_RETRY
                     : s_wait(service_db(svc), env, ev->provider_id, day, ev->case_id);
    // The first completion is keyed case:<id>; one after a correction withdrew it (its line
    // void or credited) is keyed by its own event, so a replay bills nothing twice.
    const char *kv[] = {ev->case_id, env->event_id};
    PGresult *prior = db_query(service_db(svc),
                               "SELECT count(*), count(*) FILTER (WHERE event_id = $2),"
                               " count(*) FILTER (WHERE status <> 'void' AND credits_line IS NULL"
                               "  AND NOT EXISTS (SELECT 1 FROM billable_line k"
                               "  WHERE k.credits_line = l.line_id))"
                               " FROM billable_line l WHERE delivery_key LIKE 'case:' || $1 || '%'",
                               2, kv);
    if (!prior) {
        PQclear(c);
        return APPLY_RETRY;
    }
    int lines = atoi(PQgetvalue(prior, 0, 0));
    int done = atoi(PQgetvalue(prior, 0, 1)) > 0 || atoi(PQgetvalue(prior, 0, 2)) > 0;
    PQclear(prior);
    int rc = 0;
    int64_t fee = atoll(PQgetvalue(c, 0, 6));
    if (fee > 0 && !done) {
        char key[160];
        if (lines == 0)
            snprintf(key, sizeof key, "case:%s", ev->case_id);
        else
            snprintf(key, sizeof key, "case:%s:%s", ev->case_id, env->event_id);
        s_line_t line = {"telephone_fee", fee, 1, PQgetvalue(c, 0, 2), PQgetvalue(c, 0, 1)};
        s_delivery_t dl = {PQgetvalue(c, 0, 0), key, ev->cohort_id, "telephone", "", day,
                           env->event_id,       1};
        rc = s_bill(svc, &dl, &line, 1);
    }
    PQclear(c);
    return rc == 0 ? APPLY_OK : APPLY_RETRY;
}

// A completion withdrawn by an attendance correction: the case's live telephone line (if any)
// is voided, or credited if invoiced. Once per event. Returns APPLY_OK or APPLY_RETRY.
static apply_result_t s_case_reopened(service_t *svc, const Cara__Envelope *env,
                                      const Cara__CaseReopened *ev) {
    db_t *db = service_db(svc);
    const char *ev_values[] = {env->event_id, ev->case_id};
    PGresult *first = db_query(db,
                               "INSERT INTO case_reopened (event_id, case_id) VALUES ($1, $2)"
                               " ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                               2, ev_values);
    if (!first)
        return APPLY_RETRY;
    int fresh = PQntuples(first) == 1;
    PQclear(first);
    if (!fresh)
        return APPLY_OK; // a replay
    const char *cv[] = {ev->case_id};
    // A completion still waiting for its contract is withdrawn before it is ever billed.
    PGresult *waiting = db_query(db,
                                 "DELETE FROM unbilled_event WHERE completed_case = $1"
                                 " RETURNING event_id",
                                 1, cv);
    if (!waiting)
        return APPLY_RETRY;
    for (int i = 0; i < PQntuples(waiting); i++)
        log_info("unbilled_completion_withdrawn", "event_id", PQgetvalue(waiting, i, 0), "by",
                 env->event_id);
    PQclear(waiting);
    PGresult *live = db_query(db,
                              "SELECT contract_id, delivery_key FROM billable_line l"
                              " WHERE delivery_key LIKE 'case:' || $1 || '%'"
                              " AND kind = 'telephone_fee' AND status <> 'void'"
                              " AND credits_line IS NULL AND NOT EXISTS (SELECT 1 FROM"
                              " billable_line k WHERE k.credits_line = l.line_id)",
                              1, cv);
    if (!live)
        return APPLY_RETRY;
    int rc = 0;
    for (int i = 0; rc == 0 && i < PQntuples(live); i++)
        rc = s_remove(svc, PQgetvalue(live, i, 0), PQgetvalue(live, i, 1), env->event_id);
    PQclear(live);
    return rc == 0 ? APPLY_OK : APPLY_RETRY;
}

static apply_result_t s_victim_contact(service_t *svc, const Cara__Envelope *env,
                                       const Cara__VictimContactRecorded *ev) {
    char day[16];
    int32_t d;
    snprintf(day, sizeof day, "%.10s", ev->at);
    if (time_parse_date(day, &d) != 0)
        return APPLY_OK;
    int error = 0;
    PGresult *c = s_contract_for(service_db(svc), ev->provider_id, day, NULL, NULL, &error);
    if (!c)
        return error ? APPLY_RETRY : s_wait(service_db(svc), env, ev->provider_id, day, NULL);
    int rc = 0;
    int64_t fee = atoll(PQgetvalue(c, 0, 10));
    if (fee > 0) {
        // Billed once per case with victim contact, on its first record.
        char key[160];
        snprintf(key, sizeof key, "victim:%s", ev->case_id);
        s_line_t line = {"victim_contact", fee, 0, PQgetvalue(c, 0, 2), PQgetvalue(c, 0, 1)};
        s_delivery_t dl = {PQgetvalue(c, 0, 0), key, "", "", "", day, env->event_id, 0};
        rc = s_bill(svc, &dl, &line, 1);
    }
    PQclear(c);
    return rc == 0 ? APPLY_OK : APPLY_RETRY;
}

// Applies one event. Returns APPLY_OK, APPLY_RETRY or APPLY_POISON (reason set).
static apply_result_t s_apply(service_t *svc, const Cara__Envelope *env, char *reason,
                              size_t reason_size) {
    static const struct {
        const char *type;
        const ProtobufCMessageDescriptor *desc;
    } billable[] = {
        {"cara.CohortDelivered", &cara__cohort_delivered__descriptor},
        {"cara.CaseCompleted", &cara__case_completed__descriptor},
        {"cara.VictimContactRecorded", &cara__victim_contact_recorded__descriptor},
    };
    if (strcmp(env->type, "cara.CaseReopened") == 0) {
        Cara__CaseReopened *m =
            (Cara__CaseReopened *)envelope_payload(env, &cara__case_reopened__descriptor);
        if (!m) {
            snprintf(reason, reason_size, "undecodable %s", env->type);
            return APPLY_POISON;
        }
        apply_result_t rc = s_case_reopened(svc, env, m);
        cara__case_reopened__free_unpacked(m, NULL);
        return rc;
    }
    for (int i = 0; i < 3; i++) {
        if (strcmp(env->type, billable[i].type) != 0)
            continue;
        ProtobufCMessage *msg = envelope_payload(env, billable[i].desc);
        if (!msg) {
            snprintf(reason, reason_size, "undecodable %s", env->type);
            return APPLY_POISON;
        }
        apply_result_t rc = i == 0 ? s_cohort_delivered(svc, env, (Cara__CohortDelivered *)msg)
                            : i == 1
                                ? s_case_completed(svc, env, (Cara__CaseCompleted *)msg)
                                : s_victim_contact(svc, env, (Cara__VictimContactRecorded *)msg);
        protobuf_c_message_free_unpacked(msg, NULL);
        return rc;
    }
    return APPLY_OK;
}

apply_result_t billing_apply_booking(db_t *db, const Cara__Envelope *env, uint64_t seq, void *arg,
                                     char *reason, size_t reason_size) {
    (void)db;
    (void)seq;
    return s_apply(arg, env, reason, reason_size);
}

int billing_bill_waiting(service_t *svc, const char *provider_id) {
    db_t *db = service_db(svc);
    const char *values[] = {provider_id};
    const int formats[] = {0};
    // In arrival order: a cohort's revisions must be applied in the order they were made.
    PGresult *r = db_query_bin(db,
                               "WITH d AS (DELETE FROM unbilled_event u WHERE provider_id = $1"
                               " AND EXISTS (SELECT 1 FROM contract c WHERE c.provider_id ="
                               " u.provider_id AND u.on_date BETWEEN c.starts_on AND c.ends_on)"
                               " RETURNING arrival, envelope) SELECT envelope FROM d"
                               " ORDER BY arrival",
                               1, values, NULL, formats, 1);
    if (!r)
        return -1;
    int rc = 0, n = PQntuples(r);
    for (int i = 0; rc == 0 && i < n; i++) {
        Cara__Envelope *env =
            envelope_unpack((const uint8_t *)PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0));
        char reason[256] = "";
        apply_result_t a = env ? s_apply(svc, env, reason, sizeof reason) : APPLY_POISON;
        rc = a == APPLY_RETRY ? -1 : 0;
        if (a == APPLY_POISON)
            log_warn("unbilled_event_dropped", "reason", reason);
        if (env)
            cara__envelope__free_unpacked(env, NULL);
    }
    PQclear(r);
    return rc;
}
