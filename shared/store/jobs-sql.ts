/**
 * The job store's statements. ONE LOCK ORDER: every statement that can wait for row locks takes them in id order
 * (the column's collation), so two statements over the same ids can never wait for each other in a cycle (40P01).
 * - INSERT ... ON CONFLICT inserts in `ORDER BY t.id` (the conflict path locks each existing row as it reaches it).
 * - UPDATE ... FROM unnest locks first in a MATERIALIZED CTE, `ORDER BY id FOR UPDATE` (plan: LockRows over Sort),
 *   and the update joins it, so it only touches rows already locked in order.
 * - Maintenance scans (markLost, deleteFinished) use SKIP LOCKED and never wait.
 * Sorting happens in SQL rather than in JS so the order is the database's, whatever its collation.
 * HOT: the hot-path updates (extendLeases, recordProviderCall) write no indexed column (not even updated_at).
 */
const LEASE_FREE = `(j.lease_owner IS NULL OR j.lease_expires_at <= now())`;
const UNFINISHED = `('queued', 'running')`;
const TERMINAL = `('succeeded', 'failed', 'dead', 'expired')`;
const MS = `* interval '1 millisecond'`;

/**
 * Terminal writes announce their ids on this channel (LISTEN/NOTIFY): a Results API waiting on a job without Redis
 * wakes without polling. One channel per schema (channels are database-wide, schemas isolate deployments and
 * tests); 63 bytes is Postgres's identifier limit, past which NOTIFY refuses the name.
 */
export const DONE_CHANNEL_SQL = `left('jobs_done:' || current_schema(), 63)`;
/** Ids per notification stay under this many bytes: Postgres refuses payloads of 8,000 bytes or more. */
export const DONE_PAYLOAD_BYTES = 7_000;
/**
 * A WHERE clause, always true, whose one-time subquery sends the ids the CTE \`cte\` returned, space-separated
 * (ids never hold a space), in as many notifications as DONE_PAYLOAD_BYTES requires: one per statement normally.
 * Postgres delivers them at commit, and drops them with a rollback. Written as a filter so it runs once per
 * statement, only when some row was written, and in the statement's own round trip.
 */
const notifyDone = (cte: string) => `(
  SELECT count(pg_notify(${DONE_CHANNEL_SQL}, ids)) FROM (
    SELECT string_agg(id, ' ' ORDER BY id) AS ids
      FROM (SELECT id, sum(octet_length(id) + 1) OVER (ORDER BY id) / ${DONE_PAYLOAD_BYTES} AS part FROM ${cte}) parts
     GROUP BY part) payloads
) IS NOT NULL`;

export const RECORD_COLUMNS = `j.id, j.tenant, j.status, j.output, j.output_nul_replaced, j.finish_reason, j.prompt_tokens,
  j.completion_tokens, j.provider, j.model, j.attempts, j.provider_calls, j.result_writes, j.error_code, j.error_message,
  j.created_at, j.started_at, j.finished_at, j.cost_usd::float8 AS cost_usd, j.latency_ms, j.provider_attempts, j.trace_id`;

/** Locks the rows of `$1` (ids) that satisfy `where` (over alias `x`), in id order. */
const lockInOrder = (where = "true") =>
  `locked AS MATERIALIZED (SELECT x.id FROM jobs x WHERE x.id = ANY($1::text[]) AND ${where} ORDER BY x.id FOR UPDATE)`;

// Takes over an existing row only for the same tenant (the first owner keeps the id), while not terminal, and when
// the lease is free or already this worker's. The conflict path locks the row even when WHERE refuses it. Taking over
// a row still \`running\` under another worker's expired lease counts a worker loss: that worker died holding it.
export const CLAIM_SQL = `
INSERT INTO jobs AS j (id, tenant, status, request, attempts, lease_owner, lease_expires_at, message_id, receive_count,
                       created_at, started_at, updated_at, trace_id)
SELECT t.id, t.tenant, 'running', t.request, 1, t.worker, now() + t.lease_ms ${MS}, t.message_id, t.receive_count,
       t.created_at, now(), now(), t.trace_id
  FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::text[], $5::int[], $6::text[], $7::int[], $8::timestamptz[], $9::text[])
       AS t(id, tenant, request, worker, lease_ms, message_id, receive_count, created_at, trace_id)
 ORDER BY t.id
ON CONFLICT (id) DO UPDATE SET
  status = 'running', attempts = j.attempts + 1, lease_owner = excluded.lease_owner,
  lease_expires_at = excluded.lease_expires_at, message_id = excluded.message_id, started_at = now(), updated_at = now(),
  receive_count = greatest(j.receive_count, excluded.receive_count), request = coalesce(j.request, excluded.request),
  trace_id = coalesce(excluded.trace_id, j.trace_id),
  worker_losses = j.worker_losses + (j.status = 'running' AND j.lease_owner IS DISTINCT FROM excluded.lease_owner
                                     AND j.lease_expires_at <= now())::int
WHERE j.tenant IS NOT DISTINCT FROM excluded.tenant AND j.status IN ${UNFINISHED}
  AND (${LEASE_FREE} OR j.lease_owner = excluded.lease_owner)
RETURNING j.id, j.attempts, j.worker_losses`;

// The Results API's submit: a row for each job it put on the queue, so a GET finds it `queued` before any worker
// claims it (a claim takes over a queued row of the same tenant). An existing row, whoever owns it, is left alone.
export const QUEUED_SQL = `
INSERT INTO jobs AS j (id, tenant, status, request, created_at, updated_at)
SELECT t.id, t.tenant, 'queued', t.request, t.created_at, now()
  FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::timestamptz[]) AS t(id, tenant, request, created_at)
 ORDER BY t.id
ON CONFLICT (id) DO NOTHING
RETURNING j.id`;

// A delivery that found the job leased still counts toward its last delivery (markLost needs the highest count).
export const RECEIVED_SQL = `
WITH t AS (SELECT * FROM unnest($1::text[], $2::text[], $3::int[]) AS t(id, tenant, receive_count)),
${lockInOrder(`x.status IN ${UNFINISHED}`)}
UPDATE jobs AS j SET receive_count = t.receive_count
  FROM t JOIN locked l ON l.id = t.id
 WHERE j.id = t.id AND j.tenant IS NOT DISTINCT FROM t.tenant AND j.receive_count < t.receive_count`;

export const COMPLETE_SQL = `
WITH t AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::int[], $7::int[], $8::text[], $9::text[],
                       $10::numeric[], $11::int[], $12::jsonb[], $13::text[])
         AS t(id, worker, output, nul_replaced, finish_reason, prompt_tokens, completion_tokens, provider, model,
              cost_usd, latency_ms, provider_attempts, trace_id)
), ${lockInOrder(`x.status IN ${UNFINISHED}`)}, done AS (
UPDATE jobs AS j SET
  status = 'succeeded', output = t.output, output_nul_replaced = t.nul_replaced, finish_reason = t.finish_reason,
  prompt_tokens = t.prompt_tokens, completion_tokens = t.completion_tokens, provider = t.provider, model = t.model,
  cost_usd = t.cost_usd, latency_ms = t.latency_ms, provider_attempts = t.provider_attempts,
  trace_id = coalesce(t.trace_id, j.trace_id), error_code = NULL, error_message = NULL, lease_owner = NULL, lease_expires_at = NULL,
  result_writes = j.result_writes + 1, finished_at = now(), updated_at = now()
  FROM t JOIN locked l ON l.id = t.id
 WHERE j.id = t.id AND j.status IN ${UNFINISHED} AND (${LEASE_FREE} OR j.lease_owner = t.worker)
RETURNING j.id)
SELECT id FROM done WHERE ${notifyDone("done")}`;

// Insert when the row does not exist (poison, expired before any claim); otherwise update it, but only for the same
// tenant, never for poison (a malformed message must not touch a job it names), and only as the lease allows.
// One INSERT ... ON CONFLICT, so existing and new rows are locked in one id-ordered pass.
export const FINISH_SQL = `
WITH t AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[],
                       $8::timestamptz[], $9::boolean[], $10::text[])
         AS t(id, status, code, message, worker, tenant, request, created_at, poison, trace_id)
), done AS (
INSERT INTO jobs AS j (id, tenant, status, request, error_code, error_message, result_writes, created_at, finished_at,
                       updated_at, trace_id)
SELECT t.id, t.tenant, t.status, t.request, t.code, t.message, 1, coalesce(t.created_at, now()), now(), now(), t.trace_id
  FROM t ORDER BY t.id
ON CONFLICT (id) DO UPDATE SET
  status = excluded.status, error_code = excluded.error_code, error_message = excluded.error_message,
  lease_owner = NULL, lease_expires_at = NULL, result_writes = j.result_writes + 1, finished_at = now(),
  updated_at = now(), request = coalesce(j.request, excluded.request), trace_id = coalesce(excluded.trace_id, j.trace_id)
WHERE j.tenant IS NOT DISTINCT FROM excluded.tenant AND j.status IN ${UNFINISHED}
  AND EXISTS (SELECT 1 FROM t WHERE t.id = excluded.id AND NOT t.poison AND (${LEASE_FREE} OR j.lease_owner = t.worker))
RETURNING j.id)
SELECT id FROM done WHERE ${notifyDone("done")}`;

export const RELEASE_SQL = `
WITH t AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS t(id, worker, code, message)),
${lockInOrder(`x.status = 'running'`)}
UPDATE jobs AS j SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL, error_code = t.code,
                     error_message = t.message, updated_at = now()
  FROM t JOIN locked l ON l.id = t.id
 WHERE j.id = t.id AND j.status = 'running' AND j.lease_owner = t.worker
RETURNING j.id`;

// An operator's redrive from the DLQ: the dead verdict is withdrawn (result_writes back to 0, so the job's one
// eventual result counts once; receive_count back to 0, since the redriven message counts its deliveries afresh and
// markLost must not see the old last delivery; worker_losses back to 0, as the operator has dealt with the cause).
// The last error stays for the record until a new outcome replaces it.
// An item without a tenant reopens the id whoever owns it.
export const REOPEN_DEAD_SQL = `
WITH t AS (SELECT * FROM unnest($1::text[], $2::text[]) AS t(id, tenant)),
${lockInOrder(`x.status = 'dead'`)}
UPDATE jobs AS j SET status = 'queued', result_writes = 0, receive_count = 0, worker_losses = 0, finished_at = NULL, updated_at = now()
 WHERE j.id IN (SELECT id FROM locked) AND j.status = 'dead'
   AND EXISTS (SELECT 1 FROM t WHERE t.id = j.id AND (t.tenant IS NULL OR t.tenant = j.tenant))
RETURNING j.id`;

export const PROVIDER_CALL_SQL = `
WITH c AS (SELECT id, count(*)::int AS n FROM unnest($1::text[]) AS id GROUP BY id),
${lockInOrder()}
UPDATE jobs AS j SET provider_calls = j.provider_calls + c.n
  FROM c JOIN locked l ON l.id = c.id
 WHERE j.id = c.id`;

export const EXTEND_SQL = `
WITH ${lockInOrder(`x.lease_owner = $2 AND x.status = 'running'`)}
UPDATE jobs AS j SET lease_expires_at = now() + $3::int ${MS}
  FROM locked l
 WHERE j.id = l.id AND j.lease_owner = $2 AND j.status = 'running'
RETURNING j.id`;

export const STATE_SQL = `
SELECT id, tenant, status, lease_owner, lease_expires_at, coalesce(lease_expires_at > now(), false) AS live
  FROM jobs WHERE id = ANY($1::text[])`;

export const GET_SQL = `SELECT ${RECORD_COLUMNS} FROM jobs j WHERE j.id = ANY($1::text[])`;
export const GET_FOR_TENANT_SQL = `SELECT ${RECORD_COLUMNS} FROM jobs j WHERE j.id = ANY($2::text[]) AND j.tenant = $1`;
export const COUNT_SQL = `SELECT status, count(*)::int AS n FROM jobs GROUP BY status`;

// The last delivery SQS will make has been received ($1 = maxReceiveCount), nobody holds a live lease, and the
// holder has been gone for the grace period: lease expiry, or for a released row the release (updated_at is only
// written by state changes). Such a job's message goes to the DLQ on its next receive, so no worker will finish it.
export const MARK_LOST_SQL = `
WITH lost AS (
  SELECT x.id FROM jobs x
   WHERE x.status IN ${UNFINISHED} AND x.receive_count >= $1::int
     AND (x.lease_owner IS NULL OR x.lease_expires_at <= now())
     AND coalesce(x.lease_expires_at, x.updated_at) < now() - $2::float8 ${MS}
   LIMIT $3::int FOR UPDATE SKIP LOCKED
), done AS (
UPDATE jobs AS j SET status = 'dead', error_code = 'WORKER_LOST',
  error_message = format('the worker holding its last delivery (%s of %s) stopped without an outcome; '
                         'SQS moves the message to the DLQ', j.receive_count, $1::int),
  lease_owner = NULL, lease_expires_at = NULL, result_writes = j.result_writes + 1, finished_at = now(), updated_at = now()
  FROM lost WHERE j.id = lost.id
RETURNING ${RECORD_COLUMNS})
SELECT * FROM done WHERE ${notifyDone("done")}`;

export const DELETE_FINISHED_SQL = `
WITH old AS (
  SELECT x.id FROM jobs x
   WHERE x.status IN ${TERMINAL} AND x.finished_at < now() - $1::float8 ${MS}
   ORDER BY x.finished_at LIMIT $2::int FOR UPDATE SKIP LOCKED
), gone AS (DELETE FROM jobs j USING old WHERE j.id = old.id RETURNING 1)
SELECT count(*)::int AS n FROM gone`;

export const TABLE_SIZES_SQL = `SELECT pg_table_size('jobs')::float8 AS table_bytes, pg_indexes_size('jobs')::float8 AS index_bytes`;

// Totals of succeeded jobs that ended in [$1, $2), per tenant and provider; $3 narrows to one tenant.
export const USAGE_SQL = `
SELECT tenant, provider, count(*)::int AS jobs, coalesce(sum(prompt_tokens), 0)::bigint AS prompt_tokens,
       coalesce(sum(completion_tokens), 0)::bigint AS completion_tokens, coalesce(sum(cost_usd), 0)::float8 AS cost_usd
  FROM jobs
 WHERE finished_at >= $1 AND finished_at < $2 AND status = 'succeeded' AND ($3::text IS NULL OR tenant = $3)
 GROUP BY tenant, provider
 ORDER BY tenant, provider`;

// A fresh copy of the job's message was sent (a last delivery handed back unrun): the deliveries counted so far belong
// to a message that no longer exists, so a lost-job sweep must not count them. The copy's claim sets its own count.
export const RESET_DELIVERIES_SQL = `
WITH ${lockInOrder(`x.status IN ${UNFINISHED}`)}
UPDATE jobs AS j SET receive_count = 0 FROM locked l WHERE j.id = l.id`;
