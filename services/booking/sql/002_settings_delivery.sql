-- Capacity is a per-provider setting (max_capacity, default 12), no longer fixed at 12 here;
-- CohortDelivered remembers the count it last reported so a correction re-reports it.
ALTER TABLE cohort DROP CONSTRAINT cohort_capacity_check;
ALTER TABLE cohort ADD CONSTRAINT cohort_capacity_check CHECK (capacity BETWEEN 1 AND 100);
ALTER TABLE cohort ADD COLUMN delivered_participants int;
ALTER TABLE booking ADD COLUMN cancel_note text;  -- provider's reason for a cancellation
CREATE INDEX provider_case_open ON provider_case (provider_id, pathway, compliance_deadline)
    WHERE status IN ('open', 'booked');
CREATE INDEX booking_cohort ON booking (cohort_id);
