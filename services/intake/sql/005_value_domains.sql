-- Every INSERT and UPDATE statement reads all of its table's CHECK constraints back from their
-- catalog text and parses them again, whichever columns it writes, and an IN list parses as an
-- array constant, byte by byte: about 5% of PostgreSQL's time in the end-to-end bench (the
-- outcome changes, the seat taken, the cases' inserts and updates). A domain's constraints are
-- parsed once per connection (the type cache) and checked only where a value of it is written.
-- The value sets are the same as the CHECKs' they replace, and the columns are text underneath:
-- every query reads, compares and sorts them as before.
CREATE DOMAIN offence_category AS text CONSTRAINT offence_category_check
    CHECK (VALUE IN ('common_assault', 'criminal_damage', 'harassment', 'threatening_behaviour',
        'theft_related', 'other'));
CREATE DOMAIN offender_sex AS text CONSTRAINT offender_sex_check
    CHECK (VALUE IN ('male', 'female'));
CREATE DOMAIN relationship_kind AS text CONSTRAINT relationship_kind_check
    CHECK (VALUE IN ('intimate', 'non_intimate'));
CREATE DOMAIN dash_level AS text CONSTRAINT dash_level_check
    CHECK (VALUE IN ('standard', 'medium', 'high'));
CREATE DOMAIN yes_no_not_known AS text CONSTRAINT yes_no_not_known_check
    CHECK (VALUE IN ('yes', 'no', 'not_known'));
CREATE DOMAIN referral_state AS text CONSTRAINT referral_state_check
    CHECK (VALUE IN ('active', 'withdrawn'));
CREATE DOMAIN withdrawal_reason AS text CONSTRAINT withdrawal_reason_check
    CHECK (VALUE IN ('caution_rescinded', 'error', 'other'));
CREATE DOMAIN outcome_status AS text CONSTRAINT outcome_status_check
    CHECK (VALUE IN ('received', 'returned', 'triaged', 'booked', 'attended_part_a',
        'attended_part_b', 'completed', 'non_compliant', 'withdrawn'));

ALTER TABLE referral
    DROP CONSTRAINT referral_offence_category_check,
    DROP CONSTRAINT referral_offender_sex_check,
    DROP CONSTRAINT referral_relationship_check,
    DROP CONSTRAINT referral_dash_level_check,
    DROP CONSTRAINT referral_previous_da_check,
    DROP CONSTRAINT referral_children_in_household_check,
    DROP CONSTRAINT referral_state_check,
    ALTER COLUMN offence_category TYPE offence_category,
    ALTER COLUMN offender_sex TYPE offender_sex,
    ALTER COLUMN relationship TYPE relationship_kind,
    ALTER COLUMN dash_level TYPE dash_level,
    ALTER COLUMN previous_da TYPE yes_no_not_known,
    ALTER COLUMN children_in_household TYPE yes_no_not_known,
    ALTER COLUMN state TYPE referral_state;
ALTER TABLE withdrawal
    DROP CONSTRAINT withdrawal_reason_code_check,
    ALTER COLUMN reason_code TYPE withdrawal_reason;
ALTER TABLE outcome
    DROP CONSTRAINT outcome_status_check,
    ALTER COLUMN status TYPE outcome_status;
-- A column's new type rewrites its table and drops the column's statistics: gathered again
-- where there are rows (core migration 004 says why not in empty tables).
SELECT analyse_tables_with_rows(ARRAY['referral', 'withdrawal', 'outcome']);
