-- Safety concerns the provider's victim contact raised (from the booking stream), flagged on
-- the triage case at once: which provider and when. Never the victim's details or the notes.
CREATE TABLE safety_alert (
    id          bigserial   PRIMARY KEY,
    referral_id uuid        NOT NULL REFERENCES triage_case,
    provider_id text        NOT NULL,
    raised_at   timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX safety_alert_referral ON safety_alert (referral_id, raised_at);
CREATE INDEX safety_alert_raised ON safety_alert (raised_at);
