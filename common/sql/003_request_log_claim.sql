-- A request key is claimed before its command runs (request_log_claim): a row without its
-- answer yet, inserted in the command's own transaction and filled in before it commits (or
-- undone with the command). The claim is what makes a repeat that arrives while the first
-- transaction's COMMIT is still on its way wait for that commit and then get its answer: a
-- plain look-up does not see an uncommitted row, and does not wait for it. A committed row
-- always has its answer; one without it is read as an error, never as an answer.
ALTER TABLE request_log ALTER COLUMN reply DROP NOT NULL;
