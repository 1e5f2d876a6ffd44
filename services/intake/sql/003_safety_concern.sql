-- Safety concerns raised by the provider's victim contact (from the booking stream), as told to
-- the force: which referral and when. Never the victim's details or the provider's notes.
CREATE TABLE safety_concern (
    id          bigserial   PRIMARY KEY,
    referral_id uuid        NOT NULL REFERENCES referral,
    force       text        NOT NULL,
    provider_id text        NOT NULL,
    raised_at   timestamptz NOT NULL,
    told_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX safety_concern_referral ON safety_concern (referral_id);
