-- Issue 7: delivery counts, NUL accounting, retention, and HOT heartbeats.

-- The highest SQS ApproximateReceiveCount a claim has seen: markLost finds jobs whose last delivery died with its worker.
ALTER TABLE jobs ADD COLUMN receive_count integer NOT NULL DEFAULT 0;
-- How many U+0000 the stored answer held (Postgres refuses them in text; each was stored as U+FFFD).
ALTER TABLE jobs ADD COLUMN output_nul_replaced integer NOT NULL DEFAULT 0;

-- updated_at was indexed, and every heartbeat rewrote it, so no lease extension could be a HOT update (each one
-- added an entry to every index). Hot-path updates now write only unindexed columns.
DROP INDEX jobs_status_updated_idx;
-- Unfinished rows only (the in-flight few): markLost's scan for rows at their last delivery.
CREATE INDEX jobs_unfinished_receive_idx ON jobs (receive_count) WHERE status IN ('queued', 'running');
-- Terminal rows by age: retention deletes the oldest first.
CREATE INDEX jobs_finished_idx ON jobs (finished_at) WHERE status IN ('succeeded', 'failed', 'dead', 'expired');
-- Room on each page for the new version of a row, so an update can stay on its page (HOT). Applies to pages
-- written from now on; existing pages keep their layout until rewritten.
ALTER TABLE jobs SET (fillfactor = 80);
