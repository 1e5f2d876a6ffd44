-- A pathway an amendment changed after routing (TriageCaseUpdated.pathway: a sex or relationship
-- corrected), with when: its own columns, so that each fact column keeps one writing statement
-- (the writes commute); the return takes it over the routed pathway when it is the later.
ALTER TABLE case_fact ADD COLUMN amended_pathway text, ADD COLUMN amended_at timestamptz;
