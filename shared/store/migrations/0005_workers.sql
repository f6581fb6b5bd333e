-- Presence: one row per worker, rewritten every few seconds by the worker itself (worker/presence.ts) and removed
-- when it stops cleanly; `fleet status` reads it. A row not rewritten for three of its own intervals belongs to a
-- worker that is gone (killed, partitioned); such rows are pruned after an hour.
CREATE TABLE workers (
  worker_id            text PRIMARY KEY,
  host                 text NOT NULL,
  pid                  integer NOT NULL,
  started_at           timestamptz NOT NULL,
  -- Database time of the last write: readers compare it with their own now(), so host clocks never matter.
  seen_at              timestamptz NOT NULL DEFAULT now(),
  interval_ms          integer NOT NULL,
  state                text NOT NULL,
  held                 integer NOT NULL,
  in_flight            integer NOT NULL,
  concurrency_limit    integer NOT NULL,
  intake_paused        boolean NOT NULL,
  store_writes_healthy boolean NOT NULL,
  -- The router's view of each provider: [{name, provider, state, inFlight, maxInFlight, lastErrorCode, ...}].
  providers            jsonb NOT NULL,
  -- Outcome counters since the worker started: {succeeded, failed, dead, ...}.
  jobs                 jsonb NOT NULL,
  -- Per queue URL, the longest SentTimestamp -> receive wait seen recently, ms (SQS has no oldest-message age).
  queue_wait_ms        jsonb NOT NULL,
  -- The ops server's port on `host`, when it runs one.
  ops_port             integer
);
