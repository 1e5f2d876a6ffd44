-- A telephone completion waiting for its contract (unbilled_event) names its case, so that a
-- correction that withdraws the completion (CaseReopened) withdraws the waiting event too:
-- it must never be billed when the contract is added later.
ALTER TABLE unbilled_event ADD COLUMN completed_case text;
CREATE INDEX unbilled_event_completed_case ON unbilled_event (completed_case)
    WHERE completed_case IS NOT NULL;
