-- Seat allocation looks for the earliest scheduled cohort that still has a free seat. The
-- index cohort_pick holds every scheduled cohort, full or not, so once the early cohorts fill
-- each allocation walked past all of them (0.28 ms a booking with 1,250 cohorts in the bench,
-- and growing with every cohort filled). This index holds only cohorts with a free seat: a
-- cohort leaves it when it fills (or is cancelled or delivered) and comes back when a seat is
-- given back, so the first entry that fits is the answer.
CREATE INDEX cohort_open ON cohort (provider_id, cohort_type, part_a_date, cohort_id)
    WHERE status = 'scheduled' AND seats_taken < capacity;
