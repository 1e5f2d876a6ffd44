-- A referral withdrawn by the police, or returned by triage, after its case here was over
-- (completed or non-compliant): the case keeps how it ended, and stopped says the referral is no
-- longer live ('withdrawn' | 'returned'), so an attendance correction never reopens or rebooks it.
ALTER TABLE provider_case ADD COLUMN stopped text;
