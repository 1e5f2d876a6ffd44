-- A seat taken changes seats_taken, and cohort_open's predicate named seats_taken: no seat update
-- could stay on its page (HOT), so each one put a new entry into all three cohort indexes, and the
-- next booking's search of cohort_open walked past the entries of the versions before it (most
-- of a booking's 0.19 ms in the end-to-end bench, where every booking goes to the same cohort).
-- The predicate names is_full instead, which changes only when the last seat is taken or one is
-- given back, and cohort pages keep room for the new versions of their rows.
ALTER TABLE cohort ADD COLUMN is_full boolean GENERATED ALWAYS AS (seats_taken >= capacity) STORED;
DROP INDEX cohort_open;
CREATE INDEX cohort_open ON cohort (provider_id, cohort_type, part_a_date, cohort_id)
    WHERE status = 'scheduled' AND NOT is_full;
ALTER TABLE cohort SET (fillfactor = 50);
