-- Issue 10: the Results API's own tables (producer/api). Workers never read them.

-- One row per tenant that has ever had a key: its webhook signing secret. Kept readable, not hashed: the API signs
-- with it (HMAC needs the key itself); it is shown once, when the tenant's first key is created.
CREATE TABLE api_tenants (
  tenant         text PRIMARY KEY,
  webhook_secret text NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now()
);

-- API keys, stored as the SHA-256 of the key: a key is 256 random bits, so a fast hash is as safe as a slow one and
-- lets a request find its key with one index lookup. The key itself is shown once, at creation.
CREATE TABLE api_keys (
  id         text PRIMARY KEY,
  tenant     text NOT NULL REFERENCES api_tenants (tenant),
  key_hash   bytea NOT NULL UNIQUE,
  -- The first characters of the key, to recognise it in a listing (not enough to guess the rest).
  prefix     text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant, created_at);

-- Webhooks named by jobs submitted through the API, waiting for their job to end (the queue message has no field for
-- it). A row becomes a delivery when its job is terminal.
CREATE TABLE api_job_webhooks (
  tenant     text NOT NULL,
  job_id     text NOT NULL,
  url        text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- Job id first: a completion names ids only.
  PRIMARY KEY (job_id, tenant)
);

-- The webhook outbox: what to POST, signed at each attempt, until it is answered 2xx or given up. Survives restarts;
-- any replica may send a due row (claimed with SKIP LOCKED, its next_attempt_at pushed past the attempt's timeout).
CREATE TABLE api_webhook_deliveries (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant          text NOT NULL,
  url             text NOT NULL,
  -- job.completed, batch.completed, ...; subject_id is the job or batch id. One delivery per event and subject.
  event           text NOT NULL,
  subject_id      text NOT NULL,
  -- The exact bytes sent (and signed) at every attempt.
  body            text NOT NULL,
  status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_status     integer,
  last_error      text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  delivered_at    timestamptz,
  UNIQUE (tenant, event, subject_id)
);
CREATE INDEX api_webhook_deliveries_due_idx ON api_webhook_deliveries (next_attempt_at) WHERE status = 'pending';
