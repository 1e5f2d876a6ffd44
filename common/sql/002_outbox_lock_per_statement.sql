-- The outbox lock (001_core.sql) is taken once per INSERT statement instead of once per row:
-- a statement-level trigger takes it before the statement draws any seq (BEFORE STATEMENT
-- triggers fire before the first row is formed, and so before its DEFAULT nextval), and it is
-- still held until commit. A multi-row INSERT (a gathered batch of events) now runs one
-- trigger call in all, not one per event, and the seq is a plain column default.
DROP TRIGGER outbox_assign_seq ON outbox;
DROP FUNCTION outbox_assign_seq();
ALTER TABLE outbox ALTER COLUMN seq SET DEFAULT nextval('outbox_seq');
CREATE FUNCTION outbox_lock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(TG_TABLE_SCHEMA || '.outbox'));
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_lock BEFORE INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_lock();
