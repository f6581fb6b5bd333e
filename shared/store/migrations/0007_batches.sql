-- Issue 10: OpenAI-compatible files and batches (producer/api/files, producer/api/batches).

-- A file: an uploaded batch input (purpose 'batch') or an assembled output/error file ('batch_output').
CREATE TABLE api_files (
  id          text PRIMARY KEY,                     -- "file-<24 hex>"
  tenant      text NOT NULL,
  purpose     text NOT NULL CHECK (purpose IN ('batch', 'batch_output')),
  filename    text NOT NULL,
  bytes       bigint NOT NULL,
  -- Physical lines (blank ones included) and, of those, requests (non-blank lines).
  lines       integer NOT NULL,
  requests    integer NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_files_tenant_created_idx ON api_files (tenant, created_at DESC);

-- A file's content, one row per line with its own terminator, so an upload is written in bounded chunks, a
-- download streams in bounded pages, and the batch runner reads requests by line number. bytea: the bytes exactly
-- as uploaded (text would refuse invalid UTF-8 and U+0000).
CREATE TABLE api_file_lines (
  file_id       text NOT NULL REFERENCES api_files (id) ON DELETE CASCADE,
  line          integer NOT NULL,                   -- 1-based, as an editor numbers it
  data          bytea NOT NULL,
  -- Input files only, from the checks made while the upload streamed in (producer/api/batches/request-line.ts):
  custom_id     text,
  url           text,
  -- {code, message, param}: a problem with the line itself; a batch over this file fails at `validating`.
  line_error    jsonb,
  -- {code, message, param}: the request cannot run (its body breaks the job contract); it goes to the error file.
  request_error jsonb,
  PRIMARY KEY (file_id, line)
);
-- Duplicate custom_id detection at validation.
CREATE INDEX api_file_lines_custom_id_idx ON api_file_lines (file_id, custom_id) WHERE custom_id IS NOT NULL;

CREATE TABLE api_batches (
  id                text PRIMARY KEY,                 -- "batch_<32 hex>" (UUIDv7: time-sortable)
  tenant            text NOT NULL,
  endpoint          text NOT NULL,
  input_file_id     text NOT NULL,
  completion_window text NOT NULL,
  status            text NOT NULL CHECK (status IN ('validating', 'failed', 'in_progress', 'finalizing', 'completed',
                                                    'expired', 'cancelling', 'cancelled')),
  metadata          jsonb,
  -- Not OpenAI's: where the API POSTs the batch object when the batch ends (signed, through the webhook outbox).
  webhook_url       text,
  -- OpenAI's {object: 'list', data: [{code, message, param, line}]}, set when validation fails.
  errors            jsonb,
  -- Requests in the input file (set at validation), and those refused at validation (request_error lines).
  total             integer NOT NULL DEFAULT 0,
  invalid           integer NOT NULL DEFAULT 0,
  -- Lines 1..enqueued_through have been sent to SQS (the runner's cursor).
  enqueued_through  integer NOT NULL DEFAULT 0,
  -- What the batch ends as once finalizing has assembled its files: completed or expired.
  outcome           text CHECK (outcome IN ('completed', 'expired')),
  -- Final counts and token usage, frozen when the output is assembled; live counts come from the jobs table.
  completed         integer,
  failed            integer,
  usage             jsonb,
  output_file_id    text,
  error_file_id     text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  expires_at        timestamptz NOT NULL,
  in_progress_at    timestamptz,
  finalizing_at     timestamptz,
  completed_at      timestamptz,
  failed_at         timestamptz,
  expired_at        timestamptz,
  cancelling_at     timestamptz,
  cancelled_at      timestamptz,
  -- When the requests that had not started were recorded batch_cancelled / batch_expired (once per batch).
  unrun_marked_at   timestamptz,
  -- When a runner should next look at it; runners take due rows FOR UPDATE SKIP LOCKED.
  next_step_at      timestamptz NOT NULL DEFAULT now()
);
-- Listings newest first with an `after` cursor.
CREATE INDEX api_batches_tenant_created_idx ON api_batches (tenant, created_at DESC, id DESC);
-- The runner's queue: only batches still moving.
CREATE INDEX api_batches_due_idx ON api_batches (next_step_at)
  WHERE status IN ('validating', 'in_progress', 'finalizing', 'cancelling');
-- A file read by a batch that is still moving may not be deleted.
CREATE INDEX api_batches_input_file_idx ON api_batches (input_file_id);

-- A batch's jobs are "batch-<hex>:<line>": its progress is one scan of this partial index (only batch jobs are in
-- it; id never changes, so heartbeats and status updates stay HOT).
CREATE INDEX jobs_batch_idx ON jobs (split_part(id, ':', 1)) WHERE id LIKE 'batch-%';
