-- A delivery is billed once whichever contract it falls under (a case's victim contact can go
-- on across a contract renewal), so billing looks a delivery up by its key alone.
CREATE INDEX billable_line_delivery_key ON billable_line (delivery_key);
