-- A seat booked turns a case from open to booked, and provider_case_open's predicate named
-- status: the update could never stay on its page (HOT), so each booking wrote the whole row
-- again, with the referral in it, on another page, and new entries in all three of its indexes.
-- The predicate names a generated live instead, which changes only when a case leaves open and
-- booked (completed, non-compliant, withdrawn); pages keep room for the new versions of their
-- rows, as cohort's do (migration 004): set first, so that the rewrite the new column makes
-- leaves that room in the pages of the cases already there.
ALTER TABLE provider_case SET (fillfactor = 70);
ALTER TABLE provider_case ADD COLUMN live boolean
    GENERATED ALWAYS AS (status IN ('open', 'booked')) STORED;
DROP INDEX provider_case_open;
CREATE INDEX provider_case_open ON provider_case (provider_id, pathway, compliance_deadline)
    WHERE live;
