-- CARA's groups seat at most 12 (migration 002 let a provider setting raise it to 100). A new
-- cohort, or a capacity changed, may not go past 12. Cohorts made before this keep theirs (a
-- CHECK would be tested on every seat taken in them too), until they are delivered.
CREATE FUNCTION cohort_twelve_seats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.capacity > 12 THEN
        RAISE EXCEPTION 'cohort capacity % is over 12', NEW.capacity
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER cohort_twelve_seats BEFORE INSERT OR UPDATE OF capacity ON cohort
    FOR EACH ROW EXECUTE FUNCTION cohort_twelve_seats();
