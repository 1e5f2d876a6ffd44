-- The full fee schedule (per cohort type, licence fee fixed or per cohort, inclusive or
-- recharged, victim contact, mobilisation items, invoice period, funding partners), lines with
-- their evidence and financial year, deliveries by cohort revision, credit notes, training
-- records, and deliveries that arrived before their contract. Still no personal data.
ALTER TABLE contract
    ADD COLUMN licence_fee_mode text NOT NULL DEFAULT 'per_cohort'
        CHECK (licence_fee_mode IN ('per_cohort', 'fixed')),
    ADD COLUMN licence_fee_fixed_pence bigint NOT NULL DEFAULT 0
        CHECK (licence_fee_fixed_pence >= 0),
    ADD COLUMN licence_fee_exclusive boolean NOT NULL DEFAULT false,
    ADD COLUMN victim_contact_fee_pence bigint NOT NULL DEFAULT 0
        CHECK (victim_contact_fee_pence >= 0),
    ADD COLUMN mobilisation_items text[] NOT NULL DEFAULT '{}',
    ADD COLUMN invoice_period text NOT NULL DEFAULT 'monthly'
        CHECK (invoice_period IN ('monthly', 'quarterly'));

CREATE TABLE contract_cohort_fee (
    contract_id text   NOT NULL REFERENCES contract,
    cohort_type text   NOT NULL,
    fee_pence   bigint NOT NULL CHECK (fee_pence >= 0),
    PRIMARY KEY (contract_id, cohort_type)
);

CREATE TABLE funding_share (
    contract_id    text NOT NULL REFERENCES contract,
    financial_year text NOT NULL,
    partner        text NOT NULL,
    basis_points   int  NOT NULL CHECK (basis_points > 0 AND basis_points <= 10000),
    PRIMARY KEY (contract_id, financial_year, partner)
);

ALTER TABLE billable_line DROP CONSTRAINT billable_line_kind_check;
ALTER TABLE billable_line ADD CONSTRAINT billable_line_kind_check CHECK (kind IN ('cohort_fee',
    'victim_liaison', 'telephone_fee', 'victim_contact', 'licence_fee', 'licence_recharge',
    'training', 'mobilisation'));
ALTER TABLE billable_line DROP CONSTRAINT billable_line_status_check;
ALTER TABLE billable_line ADD CONSTRAINT billable_line_status_check CHECK (status IN ('pending',
    'over_cap', 'invoiced', 'void'));
ALTER TABLE billable_line
    ADD COLUMN delivery_key   text,        -- lines of one delivery are held and released together
    ADD COLUMN cohort_type    text,
    ADD COLUMN part_a_date    date,
    ADD COLUMN financial_year text,
    ADD COLUMN event_id       text,        -- the booking event or training record behind it
    ADD COLUMN held_reason    text CHECK (held_reason IN ('money', 'offenders')),
    ADD COLUMN credits_line   bigint REFERENCES billable_line (line_id);
CREATE INDEX billable_line_delivery ON billable_line (contract_id, delivery_key);
CREATE INDEX billable_line_status ON billable_line (status, delivered_on);

-- The last revision of each delivered cohort seen (stale or repeated revisions bill nothing).
-- generation counts re-deliveries after a removal (each bills anew under its own key).
CREATE TABLE cohort_delivery (
    cohort_id     text    PRIMARY KEY,
    contract_id   text    NOT NULL REFERENCES contract,
    revision      int     NOT NULL,
    participants  int     NOT NULL,
    generation    int     NOT NULL DEFAULT 1,
    removed       boolean NOT NULL DEFAULT false,
    last_event_id text    NOT NULL
);

ALTER TABLE invoice_counter ADD COLUMN series text NOT NULL DEFAULT 'INV'
    CHECK (series IN ('INV', 'CN'));
ALTER TABLE invoice_counter DROP CONSTRAINT invoice_counter_pkey;
ALTER TABLE invoice_counter ADD PRIMARY KEY (issuer, series);

ALTER TABLE invoice
    ADD COLUMN kind text NOT NULL DEFAULT 'invoice' CHECK (kind IN ('invoice', 'credit_note')),
    ADD COLUMN financial_year text,
    ADD COLUMN credits uuid REFERENCES invoice (invoice_id);

CREATE TABLE invoice_funding (
    invoice_id   uuid   NOT NULL REFERENCES invoice,
    partner      text   NOT NULL,
    amount_pence bigint NOT NULL,
    PRIMARY KEY (invoice_id, partner)
);

-- Issued invoices are never edited: the database refuses it too.
CREATE FUNCTION invoice_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'issued invoices are never edited; issue a credit note';
END $$;
CREATE TRIGGER invoice_immutable BEFORE UPDATE OR DELETE ON invoice
    FOR EACH ROW EXECUTE FUNCTION invoice_immutable();

CREATE TABLE training (
    training_id       uuid   PRIMARY KEY DEFAULT gen_random_uuid(),
    contract_id       text   NOT NULL REFERENCES contract,
    item              text   NOT NULL DEFAULT '',
    facilitators      int    NOT NULL CHECK (facilitators > 0),
    actual_cost_pence bigint NOT NULL CHECK (actual_cost_pence > 0),
    delivered_on      date   NOT NULL,
    recorded_by       text   NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT now()
);

-- Billable booking events for which no contract covered the provider on the date yet: billed
-- when a contract that covers them is added.
CREATE TABLE unbilled_event (
    arrival     bigserial PRIMARY KEY,
    event_id    text  NOT NULL UNIQUE,
    provider_id text  NOT NULL,
    on_date     date  NOT NULL,
    envelope    bytea NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
