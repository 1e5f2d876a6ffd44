-- Every INSERT and UPDATE statement reads all of its table's CHECK constraints back from their
-- catalog text and parses them again, whichever columns it writes, and an IN list parses as an
-- array constant, byte by byte: about 5% of PostgreSQL's time in the end-to-end bench (the
-- outcome changes, the seat taken, the cases' inserts and updates). A domain's constraints are
-- parsed once per connection (the type cache) and checked only where a value of it is written.
-- The value sets are the same as the CHECKs' they replace, and the columns are text underneath:
-- every query reads, compares and sorts them as before.
CREATE DOMAIN case_status AS text CONSTRAINT case_status_check
    CHECK (VALUE IN ('open', 'booked', 'completed', 'non_compliant', 'withdrawn'));
CREATE DOMAIN cohort_type AS text CONSTRAINT cohort_type_check
    CHECK (VALUE IN ('male_intimate', 'female_intimate', 'male_non_intimate', 'female_non_intimate',
        'telephone'));
CREATE DOMAIN cohort_status AS text CONSTRAINT cohort_status_check
    CHECK (VALUE IN ('scheduled', 'cancelled', 'delivered'));
CREATE DOMAIN booking_status AS text CONSTRAINT booking_status_check
    CHECK (VALUE IN ('booked', 'cancelled', 'completed', 'missed'));
CREATE DOMAIN attendance_mark AS text CONSTRAINT attendance_mark_check
    CHECK (VALUE IN ('attended', 'absent', 'late_refused_entry', 'excluded'));

-- live (migration 006) is generated from status, whose type cannot change under it: it and its
-- index are made again, the same, on the new type.
DROP INDEX provider_case_open;
ALTER TABLE provider_case
    DROP COLUMN live,
    DROP CONSTRAINT provider_case_status_check,
    ALTER COLUMN status TYPE case_status;
ALTER TABLE provider_case ADD COLUMN live boolean
    GENERATED ALWAYS AS (status IN ('open', 'booked')) STORED;
CREATE INDEX provider_case_open ON provider_case (provider_id, pathway, compliance_deadline)
    WHERE live;
ALTER TABLE cohort
    DROP CONSTRAINT cohort_cohort_type_check,
    DROP CONSTRAINT cohort_status_check,
    ALTER COLUMN cohort_type TYPE cohort_type,
    ALTER COLUMN status TYPE cohort_status;
ALTER TABLE booking
    DROP CONSTRAINT booking_status_check,
    DROP CONSTRAINT booking_part_a_check,
    DROP CONSTRAINT booking_part_b_check,
    ALTER COLUMN status TYPE booking_status,
    ALTER COLUMN part_a TYPE attendance_mark,
    ALTER COLUMN part_b TYPE attendance_mark;
-- A column's new type rewrites its table and drops the column's statistics: gathered again
-- where there are rows (core migration 004 says why not in empty tables).
SELECT analyse_tables_with_rows(ARRAY['provider_case', 'cohort', 'booking']);
