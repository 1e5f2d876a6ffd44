-- Contracts, billable lines (each billed once: source is unique), invoices numbered without
-- gaps per issuer, cap alerts. Money is integer pence. No personal data: booking events
-- carry none, and nothing here has a place for it.
CREATE TABLE contract (
    contract_id                  text    PRIMARY KEY,
    commissioner                 text    NOT NULL,
    provider_id                  text    NOT NULL,
    licence_holder               text    NOT NULL,
    starts_on                    date    NOT NULL,
    ends_on                      date    NOT NULL CHECK (ends_on > starts_on),
    cohort_fee_pence             bigint  NOT NULL CHECK (cohort_fee_pence >= 0),
    victim_liaison_pence         bigint  NOT NULL CHECK (victim_liaison_pence >= 0),
    telephone_fee_pence          bigint  NOT NULL CHECK (telephone_fee_pence >= 0),
    licence_fee_pence_per_cohort bigint  NOT NULL CHECK (licence_fee_pence_per_cohort >= 0),
    delivery_cap_pence           bigint  NOT NULL CHECK (delivery_cap_pence >= 0),
    offender_cap                 int     NOT NULL CHECK (offender_cap >= 0),
    mobilisation_cap_pence       bigint  NOT NULL CHECK (mobilisation_cap_pence >= 0),
    max_facilitators             int     NOT NULL CHECK (max_facilitators >= 0),
    created_at                   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE billable_line (
    line_id       bigserial PRIMARY KEY,
    contract_id   text      NOT NULL REFERENCES contract,
    kind          text      NOT NULL CHECK (kind IN ('cohort_fee', 'victim_liaison',
                  'telephone_fee', 'licence_fee', 'training', 'mobilisation')),
    source        text      NOT NULL UNIQUE,   -- e.g. cohort:<id>:cohort_fee
    cohort_id     text,
    participants  int       NOT NULL DEFAULT 0,
    delivered_on  date      NOT NULL,
    amount_pence  bigint    NOT NULL,
    issuer        text      NOT NULL,
    payer         text      NOT NULL,
    status        text      NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'over_cap', 'invoiced')),
    invoice_id    uuid,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE invoice_counter (
    issuer text PRIMARY KEY,
    last   int  NOT NULL DEFAULT 0
);

CREATE TABLE invoice (
    invoice_id  uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    number      text        NOT NULL UNIQUE,
    issuer      text        NOT NULL,
    payer       text        NOT NULL,
    contract_id text        NOT NULL REFERENCES contract,
    period      text        NOT NULL,
    total_pence bigint      NOT NULL,
    issued_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cap_alert (
    contract_id text NOT NULL REFERENCES contract,
    cap         text NOT NULL,
    percent     int  NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (contract_id, cap, percent)
);
