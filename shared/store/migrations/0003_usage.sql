-- Per-job usage from the provider router: what the answer cost, how long the router took, and every call it made
-- ({provider, ok, code?, latencyMs}); NULL for rows written before the router or by a failure.
ALTER TABLE jobs ADD COLUMN cost_usd numeric(14, 8);
ALTER TABLE jobs ADD COLUMN latency_ms integer;
ALTER TABLE jobs ADD COLUMN provider_attempts jsonb;
