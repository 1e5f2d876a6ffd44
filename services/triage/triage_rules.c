#include "triage_rules.h"

#include <stdio.h>
#include <string.h>

#include "cara/timeutil.h"

static const char *const s_default_offences[] = {"common_assault", "criminal_damage", "harassment",
                                                 "threatening_behaviour", "theft_related"};

static void s_add(triage_reason_t *list, int *n, const char *code, const char *detail) {
    if (*n >= TRIAGE_MAX_REASONS)
        return;
    snprintf(list[*n].code, sizeof list[*n].code, "%s", code);
    snprintf(list[*n].detail, sizeof list[*n].detail, "%s", detail);
    (*n)++;
}

static int s_listed(const char *value, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(value, list[i]) == 0)
            return 1;
    return 0;
}

// What happens with the verdict (triage_case.c acts on it):
// - any fail: the case is returned to the police at once with every reason (ReferralReturned)
//   and closed; fails win over "not known" answers, which could not make the case eligible;
// - no fail but a review reason ("not known" answers, offence "other", no pathway): the case
//   waits for a person (cara triage decide);
// - clean: auto-triaged, i.e. routed at once (ReferralTriaged) with the proposed pathway. We
//   chose this default ("auto_triage": true) because a clean case has nothing left for a person
//   to judge, the two-working-day target is about the cases that need one, and every extra day
//   before routing is a day less for the provider to book both workshops before the deadline.
//   A deployment that wants every case looked at sets "auto_triage": false; then clean cases
//   wait too, and staff approve or override them. The needs assessment is recorded before or
//   after routing; after routing it reaches the provider as TriageCaseUpdated.
int triage_rules_evaluate(const Cara__Referral *r, int32_t today, int64_t now_us,
                          const triage_force_rules_t *force, triage_verdict_t *out) {
    memset(out, 0, sizeof *out);
    const Cara__Caution *c = r->caution;
    const Cara__Offender *o = r->offender;
    const Cara__Risk *risk = r->risk;
    int64_t given_us = 0;
    int32_t caution_day = today;
    // Caution given: a parseable time that is not in the future. Its day is the date written in
    // the caution's own offset, as intake and national take it (00:30 BST is that day).
    if (!c || time_parse_iso(c->given_at, &given_us) != 0 || given_us > now_us ||
        time_written_date(c->given_at, &caution_day) != 0)
        s_add(out->fail, &out->n_fail, "no_caution", "no caution given at a past time");
    // Adult at the caution date.
    int32_t dob;
    if (!o || time_parse_date(o->date_of_birth, &dob) != 0)
        s_add(out->review, &out->n_review, "age_unknown", "date of birth missing or unreadable");
    else if (time_years_between(dob, caution_day) < 18)
        s_add(out->fail, &out->n_fail, "under_18", "under 18 at the caution date");
    // Risk not high.
    const char *dash = risk ? risk->dash_level : "";
    if (strcmp(dash, "high") == 0)
        s_add(out->fail, &out->n_fail, "dash_high", "DASH risk is high");
    else if (strcmp(dash, "standard") != 0 && strcmp(dash, "medium") != 0)
        s_add(out->review, &out->n_review, "dash_unknown", "DASH risk level not known");
    // No DA conviction or caution in the last two years.
    const char *prev = risk ? risk->previous_da : "";
    if (strcmp(prev, "yes") == 0)
        s_add(out->fail, &out->n_fail, "previous_da",
              "DA conviction or caution in the last two years");
    else if (strcmp(prev, "no") != 0)
        s_add(out->review, &out->n_review, "previous_da_unknown",
              "previous DA convictions or cautions not known");
    // Offence in the eligible categories ("other" needs a human look).
    const char *offence = c ? c->offence_category : "";
    const char *const *list =
        force && force->eligible_offences ? force->eligible_offences : s_default_offences;
    size_t n = force && force->eligible_offences
                   ? force->n_eligible
                   : sizeof s_default_offences / sizeof *s_default_offences;
    if (strcmp(offence, "other") == 0 && !s_listed(offence, list, n))
        s_add(out->review, &out->n_review, "offence_needs_review", "offence category is other");
    else if (!s_listed(offence, list, n))
        s_add(out->fail, &out->n_fail, "offence_ineligible",
              "offence category not eligible for CARA in this force");
    // Compliance deadline still ahead.
    int32_t deadline;
    if (!c || time_parse_date(c->compliance_deadline, &deadline) != 0 || deadline <= today)
        s_add(out->fail, &out->n_fail, "deadline_passed", "compliance deadline has passed");
    return 0;
}

const char *triage_rules_pathway(const Cara__Referral *r, char *reason, size_t reason_size) {
    const Cara__Offender *o = r->offender;
    reason[0] = '\0';
    if (!o)
        return NULL;
    if (o->interpreter_needed) {
        snprintf(reason, reason_size, "language: interpreter needed");
        return "telephone";
    }
    if (o->learning_disability) {
        snprintf(reason, reason_size, "learning disability");
        return "telephone";
    }
    // Other access needs (free text) go to the provider with the case; triage staff may
    // still choose the telephone pathway for them by overriding with a reason.
    int male = strcmp(o->sex, "male") == 0, female = strcmp(o->sex, "female") == 0;
    int intimate = strcmp(r->relationship, "intimate") == 0;
    int family = strcmp(r->relationship, "non_intimate") == 0;
    if ((!male && !female) || (!intimate && !family))
        return NULL;
    if (male)
        return intimate ? "male_intimate" : "male_non_intimate";
    return intimate ? "female_intimate" : "female_non_intimate";
}

int triage_rules_pathway_fits(const Cara__Referral *r, const char *pathway) {
    const char *sex = r->offender ? r->offender->sex : "";
    if (strcmp(sex, "male") == 0)
        return strncmp(pathway, "female_", 7) != 0;
    if (strcmp(sex, "female") == 0)
        return strncmp(pathway, "male_", 5) != 0;
    return 1;
}

int triage_rules_pathway_valid(const char *pathway) {
    static const char *const all[] = {"male_intimate", "female_intimate", "male_non_intimate",
                                      "female_non_intimate", "telephone"};
    return pathway && s_listed(pathway, all, 5);
}

int triage_rules_working_days(int64_t from_us, int64_t to_us) {
    // UK dates: a referral received at 00:30 BST counts from that day.
    int64_t from_day = time_uk_day(from_us), to_day = time_uk_day(to_us);
    int days = 0;
    for (int64_t d = from_day + 1; d <= to_day; d++) {
        int weekday = (int)((d + 4) % 7); // 1970-01-01 was a Thursday (4); 0 = Sunday
        if (weekday != 0 && weekday != 6)
            days++;
    }
    return days;
}
