#include "cara/victim_strip.h"

#include <string.h>

#include "cara/pbstrip.h"

int victim_strip_details(Cara__Referral *r) {
    if (!r || !r->victim)
        return 0;
    Cara__Victim *v = r->victim;
    pbstrip_text(&v->name);
    pbstrip_text(&v->phone);
    pbstrip_text(&v->email);
    pbstrip_text(&v->address);
    pbstrip_text(&v->safe_contact_times);
    pbstrip_text(&v->preferred_language);
    pbstrip_unknown(&v->base, NULL);
    return 1;
}

size_t victim_strip_changes(Cara__FieldChange **changes, size_t *n) {
    size_t kept = 0;
    for (size_t i = 0; i < *n; i++) {
        if (changes[i] && changes[i]->field && strncmp(changes[i]->field, "victim.", 7) != 0)
            changes[kept++] = changes[i];
        else if (changes[i])
            cara__field_change__free_unpacked(changes[i], NULL);
    }
    size_t dropped = *n - kept;
    *n = kept;
    return dropped;
}
