-- Every INSERT and UPDATE statement reads all of its table's CHECK constraints back from their
-- catalog text and parses them again, whichever columns it writes, and an IN list parses as an
-- array constant, byte by byte: about 5% of PostgreSQL's time in the end-to-end bench (the
-- outcome changes, the seat taken, the cases' inserts and updates). A domain's constraints are
-- parsed once per connection (the type cache) and checked only where a value of it is written.
-- The value sets are the same as the CHECKs' they replace, and the columns are text underneath:
-- every query reads, compares and sorts them as before.
CREATE DOMAIN triage_status AS text CONSTRAINT triage_status_check
    CHECK (VALUE IN ('awaiting_decision', 'triaged', 'returned', 'withdrawn'));
CREATE DOMAIN need_level AS text CONSTRAINT need_level_check
    CHECK (VALUE IN ('none', 'low', 'medium', 'high'));

ALTER TABLE triage_case
    DROP CONSTRAINT triage_case_status_check,
    ALTER COLUMN status TYPE triage_status;
ALTER TABLE need
    DROP CONSTRAINT need_level_check,
    ALTER COLUMN level TYPE need_level;
-- A column's new type rewrites its table and drops the column's statistics: gathered again
-- where there are rows (core migration 004 says why not in empty tables).
SELECT analyse_tables_with_rows(ARRAY['triage_case', 'need']);
