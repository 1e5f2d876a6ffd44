// What views leave out of a referral's victim: the victim's contact details go to no role but the
// provider's victim_contact (DESIGN.md section 4), so operators' views, and the provider's view of
// a victim who does not consent to contact, strip them.
#ifndef CARA_VICTIM_STRIP_H
#define CARA_VICTIM_STRIP_H
#include <stddef.h>

#include "intake.pb-c.h"

// Blanks the victim's personal fields of an unpacked referral (name, phone, email, address, safe
// contact times, language, and any field of a newer schema), leaving the consent flag (it says
// how the case was routed). Returns 1 if there was a victim, 0 if not (r or its victim NULL).
int victim_strip_details(Cara__Referral *r);
// Drops every change of a victim.* field (the old and new values of the victim's details and
// consent) from an unpacked amendment's changes, in place, freeing them. Returns the number
// dropped.
size_t victim_strip_changes(Cara__FieldChange **changes, size_t *n);

#endif
