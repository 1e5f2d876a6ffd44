-- Timeliness: seconds from the referral being received by intake to the triage decision
-- (automatic or by staff), kept with the decision so reports need no recomputation.
ALTER TABLE triage_case ADD COLUMN decision_seconds bigint
    CHECK (decision_seconds IS NULL OR decision_seconds >= 0);
UPDATE triage_case SET decision_seconds = greatest(0, extract(epoch FROM decided_at - received_at))::bigint
    WHERE decided_at IS NOT NULL;
