-- When triage returned a referral (its ReferralReturned): a booking event from before then (a
-- seat booked, attendance recorded for the booking the return ended) that intake reads after it,
-- the two streams being read independently, no longer moves the police's outcome on.
ALTER TABLE outcome ADD COLUMN returned_at timestamptz;
