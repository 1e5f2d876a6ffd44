-- For a migration that rewrote tables (a column's new type drops its statistics): analyses
-- those of the named tables, in this schema, that hold rows, and leaves empty ones alone. An
-- empty table analysed is taken for one that stays empty, and the plans made on that read
-- whole tables as they grow (intake at a third of its rate in the bench on a new install,
-- until autovacuum's next look).
CREATE FUNCTION analyse_tables_with_rows(tables text[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    t text;
    has_rows boolean;
BEGIN
    FOREACH t IN ARRAY tables LOOP
        EXECUTE format('SELECT EXISTS (SELECT FROM %I)', t) INTO has_rows;
        IF has_rows THEN
            EXECUTE format('ANALYZE %I', t);
        END IF;
    END LOOP;
END $$;
