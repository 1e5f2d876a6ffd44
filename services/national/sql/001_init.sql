-- De-identified facts. No names, dates of birth, contact details, victim details, or even
-- referral ids: a case is known by a keyed hash of its referral id, a person by the keyed
-- pseudonym intake computes.
CREATE TABLE case_fact (
    case_key             text PRIMARY KEY,
    force                text,
    provider             text,
    pathway              text,
    sex                  text,
    age_band             text,
    ethnicity            text,
    offence              text,
    dash                 text,
    pseudonym            text,
    caution_date         date,
    received_at          timestamptz,
    triaged_at           timestamptz,
    returned_reason      text,
    booked_at            timestamptz,
    started_on           date,
    completed_at         timestamptz,
    non_compliant_reason text,
    withdrawn            boolean NOT NULL DEFAULT false,
    victim_offered       boolean NOT NULL DEFAULT false,
    victim_accepted      boolean NOT NULL DEFAULT false
);
CREATE INDEX case_fact_caution ON case_fact (caution_date);

CREATE TABLE cohort_fact (
    cohort_key   text PRIMARY KEY,
    provider     text NOT NULL,
    cohort_type  text NOT NULL,
    participants int  NOT NULL,
    part_b_date  date NOT NULL
);
