-- The provider's side: cases routed by triage, cohorts and seats, attendance, contact.
CREATE TABLE provider_case (
    case_id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    referral_id         uuid        NOT NULL UNIQUE,
    provider_id         text        NOT NULL,
    force               text        NOT NULL,
    pathway             text        NOT NULL,
    status              text        NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'booked', 'completed', 'non_compliant', 'withdrawn')),
    compliance_deadline date        NOT NULL,
    caution_date        date        NOT NULL,
    first_contact_due   date        NOT NULL,
    first_contacted_at  timestamptz,
    victim_contact      boolean     NOT NULL DEFAULT false,
    referral            bytea       NOT NULL,  -- personal data, for contacting the offender
    opened_at           timestamptz NOT NULL DEFAULT now(),
    closed_at           timestamptz,
    close_reason        text
);

CREATE TABLE cohort (
    cohort_id    uuid    PRIMARY KEY DEFAULT gen_random_uuid(),
    provider_id  text    NOT NULL,
    cohort_type  text    NOT NULL CHECK (cohort_type IN ('male_intimate', 'female_intimate',
                         'male_non_intimate', 'female_non_intimate', 'telephone')),
    town         text    NOT NULL,
    facilitators text[]  NOT NULL DEFAULT '{}',
    capacity     int     NOT NULL CHECK (capacity BETWEEN 1 AND 12),
    seats_taken  int     NOT NULL DEFAULT 0,
    part_a_date  date    NOT NULL,
    part_b_date  date    NOT NULL,
    status       text    NOT NULL DEFAULT 'scheduled'
        CHECK (status IN ('scheduled', 'cancelled', 'delivered')),
    delivered_revision int NOT NULL DEFAULT -1,
    -- Never oversold, whatever the concurrency: the database refuses it.
    CHECK (seats_taken >= 0 AND seats_taken <= capacity),
    CHECK (part_b_date > part_a_date)
);
CREATE INDEX cohort_pick ON cohort (provider_id, cohort_type, part_a_date) WHERE status = 'scheduled';

CREATE TABLE booking (
    booking_id  uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    case_id     uuid        NOT NULL REFERENCES provider_case,
    cohort_id   uuid        NOT NULL REFERENCES cohort,
    status      text        NOT NULL DEFAULT 'booked'
        CHECK (status IN ('booked', 'cancelled', 'completed', 'missed')),
    part_a      text CHECK (part_a IN ('attended', 'absent', 'late_refused_entry', 'excluded')),
    part_b      text CHECK (part_b IN ('attended', 'absent', 'late_refused_entry', 'excluded')),
    booked_at   timestamptz NOT NULL DEFAULT now(),
    ended_reason text
);
CREATE UNIQUE INDEX booking_one_live ON booking (case_id) WHERE status = 'booked';

CREATE TABLE contact_attempt (
    id          bigserial   PRIMARY KEY,
    case_id     uuid        NOT NULL REFERENCES provider_case,
    at          timestamptz NOT NULL,
    channel     text        NOT NULL,
    outcome     text        NOT NULL,
    recorded_by text        NOT NULL
);

-- Victim contact: kept apart from cohort data; only the victim contact commands touch it.
CREATE TABLE victim_contact (
    id             bigserial   PRIMARY KEY,
    case_id        uuid        NOT NULL REFERENCES provider_case,
    kind           text        NOT NULL,
    safety_concern boolean     NOT NULL DEFAULT false,
    notes          text        NOT NULL DEFAULT '',
    at             timestamptz NOT NULL DEFAULT now(),
    recorded_by    text        NOT NULL
);
