#include "triage_needs.h"

#include <stdlib.h>
#include <string.h>

static const char *const s_areas[] = {"accommodation",
                                      "education_employment",
                                      "finance",
                                      "relationships",
                                      "lifestyle",
                                      "drugs",
                                      "alcohol",
                                      "mental_health",
                                      "thinking_behaviour",
                                      "attitudes"};
static const char *const s_levels[] = {"none", "low", "medium", "high"};

static int s_member(const char *value, const char *const *list, size_t n) {
    for (size_t i = 0; value && i < n; i++)
        if (strcmp(value, list[i]) == 0)
            return 1;
    return 0;
}

int triage_needs_area_valid(const char *area) {
    return s_member(area, s_areas, sizeof s_areas / sizeof *s_areas);
}

int triage_needs_level_valid(const char *level) {
    return s_member(level, s_levels, sizeof s_levels / sizeof *s_levels);
}

int triage_needs_load(db_t *db, const char *referral_id, triage_needs_t *out) {
    memset(out, 0, sizeof *out);
    const char *values[] = {referral_id};
    out->rows[0] = db_query(db, "SELECT area, level FROM need WHERE referral_id = $1 ORDER BY area",
                            1, values);
    out->rows[1] = db_query(db,
                            "SELECT service, referred_on::text FROM onward_referral"
                            " WHERE referral_id = $1 ORDER BY referred_on, id",
                            1, values);
    if (!out->rows[0] || !out->rows[1])
        goto failed;
    size_t n = (size_t)PQntuples(out->rows[0]), m = (size_t)PQntuples(out->rows[1]);
    out->needs = calloc(n + 1, sizeof *out->needs);
    out->onward = calloc(m + 1, sizeof *out->onward);
    if (!out->needs || !out->onward)
        goto failed;
    for (size_t i = 0; i < n; i++) {
        Cara__Need *need = malloc(sizeof *need);
        if (!need)
            goto failed;
        cara__need__init(need);
        need->area = PQgetvalue(out->rows[0], (int)i, 0);
        need->level = PQgetvalue(out->rows[0], (int)i, 1);
        out->needs[out->n_needs++] = need;
    }
    for (size_t i = 0; i < m; i++) {
        Cara__OnwardReferral *o = malloc(sizeof *o);
        if (!o)
            goto failed;
        cara__onward_referral__init(o);
        o->service = PQgetvalue(out->rows[1], (int)i, 0);
        o->date = PQgetvalue(out->rows[1], (int)i, 1);
        out->onward[out->n_onward++] = o;
    }
    return 0;
failed:
    triage_needs_clear(out);
    return -1;
}

void triage_needs_clear(triage_needs_t *self) {
    for (size_t i = 0; i < self->n_needs; i++)
        free(self->needs[i]);
    for (size_t i = 0; i < self->n_onward; i++)
        free(self->onward[i]);
    free(self->needs);
    free(self->onward);
    for (int i = 0; i < 2; i++)
        if (self->rows[i])
            PQclear(self->rows[i]);
    memset(self, 0, sizeof *self);
}
