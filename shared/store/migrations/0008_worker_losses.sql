-- How many times a claim found this job `running` under another worker's expired lease: the worker holding it died
-- (crash, OOM, kill) without an outcome or a hand-back. A job that keeps taking its worker down is told apart from
-- the jobs that happened to die beside it by this count (worker/suspects.ts); a redrive resets it.
ALTER TABLE jobs ADD COLUMN worker_losses int NOT NULL DEFAULT 0;
