-- An outcome row is updated at every step of its case (triaged, booked, each workshop, the
-- result), never in its key or force. With full pages the new version of a row had to go to
-- another page, a non-HOT update with new entries in both indexes: 37% of the outcome updates in
-- the end-to-end bench. Pages now keep room for the new versions (HOT updates; a page's dead
-- versions are pruned when it is read).
ALTER TABLE outcome SET (fillfactor = 70);
