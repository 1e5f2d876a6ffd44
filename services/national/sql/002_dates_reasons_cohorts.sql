-- More key dates and reasons per case (codes only, never free text), and cohort capacity.
-- ethnicity holds the ethnic group (asian | black | mixed | white | other | unknown) only.
ALTER TABLE case_fact
    ADD COLUMN first_contact_at timestamptz,
    ADD COLUMN returned_at      timestamptz,
    ADD COLUMN withdrawn_at     timestamptz,
    ADD COLUMN return_reasons   text;  -- all return reason codes, sorted, comma-separated

ALTER TABLE cohort_fact
    ADD COLUMN capacity  int,
    ADD COLUMN cancelled boolean NOT NULL DEFAULT false,
    ADD COLUMN revision  int NOT NULL DEFAULT 0;
ALTER TABLE cohort_fact ALTER COLUMN cohort_type DROP NOT NULL,
                        ALTER COLUMN part_b_date DROP NOT NULL,
                        ALTER COLUMN participants DROP NOT NULL;
CREATE INDEX case_fact_pseudonym ON case_fact (pseudonym);
