-- intake: referrals as the police sent them. Offender and caution data live in `referral`,
-- victim data in its own table `victim` (so it can be guarded, exported and purged on its own),
-- amendments field by field, withdrawals, rejected submissions kept for the force to review,
-- and the police-facing outcome per referral.

CREATE TABLE referral (
    referral_id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    force                 text        NOT NULL,
    caution_reference     text        NOT NULL,
    officer               text        NOT NULL,
    caution_given_at      text        NOT NULL,   -- ISO 8601 as the force wrote it (validated)
    caution_date          date        NOT NULL,   -- the calendar date written in caution_given_at
    offence_category      text        NOT NULL CHECK (offence_category IN
        ('common_assault', 'criminal_damage', 'harassment', 'threatening_behaviour',
         'theft_related', 'other')),
    condition_text        text        NOT NULL,
    compliance_deadline   date        NOT NULL,
    offender_name         text        NOT NULL,
    offender_dob          date        NOT NULL,
    offender_sex          text        NOT NULL CHECK (offender_sex IN ('male', 'female')),
    offender_address      text        NOT NULL,
    offender_phone        text        NOT NULL DEFAULT '',
    offender_email        text        NOT NULL DEFAULT '',
    offender_language     text        NOT NULL DEFAULT '',
    interpreter_needed    boolean     NOT NULL DEFAULT false,
    access_needs          text        NOT NULL DEFAULT '',
    learning_disability   boolean     NOT NULL DEFAULT false,
    ethnicity             text        NOT NULL,
    relationship          text        NOT NULL CHECK (relationship IN ('intimate', 'non_intimate')),
    dash_level            text        NOT NULL CHECK (dash_level IN ('standard', 'medium', 'high')),
    previous_da           text        NOT NULL CHECK (previous_da IN ('yes', 'no', 'not_known')),
    protective_orders     jsonb       NOT NULL DEFAULT '[]',
    children_in_household text        NOT NULL CHECK (children_in_household IN ('yes', 'no', 'not_known')),
    safeguarding_notes    text        NOT NULL DEFAULT '',
    state                 text        NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'withdrawn')),
    received_at           timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (force, caution_reference),
    CHECK (compliance_deadline > caution_date)
);

-- Victim data: one row per referral, kept apart from the offender's.
CREATE TABLE victim (
    referral_id         uuid    PRIMARY KEY REFERENCES referral ON DELETE CASCADE,
    name                text    NOT NULL,
    phone               text    NOT NULL DEFAULT '',
    email               text    NOT NULL DEFAULT '',
    address             text    NOT NULL DEFAULT '',
    consents_to_contact boolean NOT NULL DEFAULT false,
    safe_contact_times  text    NOT NULL DEFAULT '',
    preferred_language  text    NOT NULL DEFAULT ''
);

-- One amendment (who, when, why) and the fields it changed.
CREATE TABLE amendment (
    amendment_id uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    referral_id  uuid        NOT NULL REFERENCES referral,
    actor        text        NOT NULL,
    reason       text        NOT NULL,
    amended_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX amendment_referral ON amendment (referral_id, amended_at);

CREATE TABLE amendment_change (
    amendment_id uuid NOT NULL REFERENCES amendment ON DELETE CASCADE,
    position     int  NOT NULL,
    field        text NOT NULL,  -- path in the referral document, e.g. offender.phone
    old_value    text NOT NULL,
    new_value    text NOT NULL,
    PRIMARY KEY (amendment_id, position)
);

CREATE TABLE withdrawal (
    referral_id  uuid        PRIMARY KEY REFERENCES referral,
    reason_code  text        NOT NULL CHECK (reason_code IN ('caution_rescinded', 'error', 'other')),
    reason       text        NOT NULL,
    actor        text        NOT NULL,
    withdrawn_at timestamptz NOT NULL DEFAULT now()
);

-- Every refused submission with every error found, for the submitting force to review.
-- document is the request payload as received (it may not even decode).
CREATE TABLE rejected_submission (
    id                bigserial   PRIMARY KEY,
    force             text        NOT NULL,   -- the submitting identity's force
    caution_reference text        NOT NULL DEFAULT '',
    actor             text        NOT NULL,
    request_id        text        NOT NULL DEFAULT '',
    errors            jsonb       NOT NULL,   -- [{"field": ..., "reason": ...}, ...]
    document          bytea,
    received_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rejected_submission_force ON rejected_submission (force, received_at);

-- What the police see of each referral: the latest status from triage and booking.
CREATE TABLE outcome (
    referral_id         uuid        PRIMARY KEY REFERENCES referral,
    force               text        NOT NULL,
    caution_reference   text        NOT NULL,
    status              text        NOT NULL DEFAULT 'received' CHECK (status IN
        ('received', 'returned', 'triaged', 'booked', 'attended_part_a', 'attended_part_b',
         'completed', 'non_compliant', 'withdrawn')),
    reason              text        NOT NULL DEFAULT '',
    part_a_date         date,
    part_b_date         date,
    town                text        NOT NULL DEFAULT '',
    compliance_deadline date        NOT NULL,
    received_at         timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outcome_force ON outcome (force);
