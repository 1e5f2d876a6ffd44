-- Telephone completions withdrawn by an attendance correction (booking's CaseReopened): one row
-- per event applied, so a replay of the stream withdraws nothing twice. Still no personal data.
CREATE TABLE case_reopened (
    event_id   text PRIMARY KEY,
    case_id    text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
