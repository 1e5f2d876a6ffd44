-- Seat allocation reads the earliest open cohort from cohort_open, already in the order it wants.
-- cohort_pick (every scheduled cohort, full or not, in date order only) offered the planner a
-- second way: a plan made before the table had statistics (a booking service started with
-- newly created cohorts, the seat statement prepared on its first use) chose cohort_pick, read
-- every open cohort of the type and sorted them for each seat (156 rows a booking in the
-- end-to-end bench, the seat statement 16% of PostgreSQL's time there). No query needs it: the
-- seat search and the shortfall read use cohort_open, a provider's cohort list reads all of the
-- provider's cohorts (a few dozen a year).
DROP INDEX cohort_pick;
