-- One row per request id: the durable record of a job and its result. Unqualified names: everything lives in the
-- connection's search_path schema, so tests isolate with a schema each.
CREATE TABLE jobs (
  id                text PRIMARY KEY,
  -- NULL only for poison messages whose body gave up an id but no tenant.
  tenant            text,
  status            text NOT NULL
                    CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'dead', 'expired')),
  -- The job message as received (contract v1); NULL for poison recorded by id alone.
  request           jsonb,
  output            text,
  finish_reason     text,
  prompt_tokens     integer,
  completion_tokens integer,
  provider          text,
  model             text,
  attempts          integer NOT NULL DEFAULT 0,
  provider_calls    integer NOT NULL DEFAULT 0,
  -- Every write of a terminal result adds one; anything above 1 is a duplicate write.
  result_writes     integer NOT NULL DEFAULT 0,
  error_code        text,
  error_message     text,
  lease_owner       text,
  lease_expires_at  timestamptz,
  message_id        text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  started_at        timestamptz,
  finished_at       timestamptz,
  updated_at        timestamptz NOT NULL DEFAULT now(),
  CHECK ((lease_owner IS NULL) = (lease_expires_at IS NULL))
);

-- Status counts and "what is stuck" scans (e.g. running with an old lease).
CREATE INDEX jobs_status_updated_idx ON jobs (status, updated_at);
-- Per-tenant listings, newest first.
CREATE INDEX jobs_tenant_created_idx ON jobs (tenant, created_at DESC);
