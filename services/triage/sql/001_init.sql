-- Triage cases: one per referral from the intake stream. The referral as received is kept
-- (personal data: only triage and booking hold it) because the provider needs it when routed.
CREATE TABLE triage_case (
    referral_id         uuid        PRIMARY KEY,
    force               text        NOT NULL,
    status              text        NOT NULL
        CHECK (status IN ('awaiting_decision', 'triaged', 'returned', 'withdrawn')),
    received_at         timestamptz NOT NULL,
    caution_date        date        NOT NULL,
    compliance_deadline date        NOT NULL,
    proposed_pathway    text,
    pathway             text,
    pathway_reason      text,
    provider_id         text,
    victim_contact      boolean     NOT NULL DEFAULT false,
    review_reasons      jsonb       NOT NULL DEFAULT '[]',
    return_reasons      jsonb       NOT NULL DEFAULT '[]',
    rules_version       int         NOT NULL,
    referral            bytea       NOT NULL,
    decided_at          timestamptz,
    decided_by          text,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX triage_case_waiting ON triage_case (received_at) WHERE status = 'awaiting_decision';

CREATE TABLE need (
    referral_id uuid NOT NULL REFERENCES triage_case,
    area        text NOT NULL,
    level       text NOT NULL CHECK (level IN ('none', 'low', 'medium', 'high')),
    PRIMARY KEY (referral_id, area)
);

CREATE TABLE onward_referral (
    id          bigserial PRIMARY KEY,
    referral_id uuid NOT NULL REFERENCES triage_case,
    service     text NOT NULL,
    referred_on date NOT NULL
);
