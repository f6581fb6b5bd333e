/**
 * The durable job store (Postgres). Every method takes a batch and makes one round trip for it (arrays passed as
 * parameters and expanded with `unnest`), so a worker's cost per job is a fraction of a statement. Rows are only
 * written while not terminal: the first finished result is kept, and `result_writes` counts every terminal write.
 */
import type pg from "pg";
import type { Job } from "../contract.ts";
import { isTerminal, JOB_STATUSES, type JobRecord, type JobStatus, type TerminalStatus } from "./job-record.ts";
import { toStoreError } from "./store-errors.ts";

export type { JobRecord, JobStatus, TerminalStatus };

export interface ClaimItem {
  job: Job;
  workerId: string;
  leaseMs: number;
  messageId: string;
}
export type ClaimOutcome =
  /** This worker now holds the lease (row inserted, or taken over because queued, lease-free or lease expired). */
  | { kind: "claimed"; attempts: number }
  /** Already terminal: the caller only deletes the message. */
  | { kind: "finished"; status: TerminalStatus }
  /** Another live worker holds it (or the same id came twice in this batch): do not call the provider. */
  | { kind: "leased"; owner: string; expiresAt: Date };

export interface CompleteItem {
  id: string;
  workerId: string;
  output: string;
  finishReason: string;
  promptTokens: number;
  completionTokens: number;
  provider: string;
  model: string;
}
export interface FinishItem {
  id: string;
  status: "failed" | "dead" | "expired";
  code: string;
  message: string;
  /** The worker holding the lease, when there is one; absent for poison or jobs expired before any claim. */
  workerId?: string;
  /** The job, when the body parsed: fills tenant and request if the row has to be created. */
  job?: Job;
  tenant?: string;
}
export interface ReleaseItem {
  id: string;
  workerId: string;
  code: string;
  message: string;
}
/** written: this call stored the result; already_finished: a terminal result was there first (kept);
 *  lost_lease: another live worker holds the job (or the row is gone), nothing written. */
export type WriteOutcome = "written" | "already_finished" | "lost_lease";

/** How many times a batch re-tries items that lost a race but look claimable/writable on a fresh read. */
const RACE_ROUNDS = 3;
const LEASE_FREE = `(j.lease_owner IS NULL OR j.lease_expires_at <= now())`;

const CLAIM_SQL = `
INSERT INTO jobs AS j (id, tenant, status, request, attempts, lease_owner, lease_expires_at, message_id,
                       created_at, started_at, updated_at)
SELECT t.id, t.tenant, 'running', t.request, 1, t.worker, now() + t.lease_ms * interval '1 millisecond', t.message_id,
       t.created_at, now(), now()
  FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::text[], $5::int[], $6::text[], $7::timestamptz[])
       AS t(id, tenant, request, worker, lease_ms, message_id, created_at)
ON CONFLICT (id) DO UPDATE SET
  status = 'running', attempts = j.attempts + 1, lease_owner = excluded.lease_owner,
  lease_expires_at = excluded.lease_expires_at, message_id = excluded.message_id, started_at = now(), updated_at = now(),
  tenant = coalesce(j.tenant, excluded.tenant), request = coalesce(j.request, excluded.request)
WHERE j.status IN ('queued', 'running') AND (${LEASE_FREE} OR j.lease_owner = excluded.lease_owner)
RETURNING j.id, j.attempts`;

const COMPLETE_SQL = `
UPDATE jobs AS j SET
  status = 'succeeded', output = t.output, finish_reason = t.finish_reason, prompt_tokens = t.prompt_tokens,
  completion_tokens = t.completion_tokens, provider = t.provider, model = t.model, error_code = NULL,
  error_message = NULL, lease_owner = NULL, lease_expires_at = NULL, result_writes = j.result_writes + 1,
  finished_at = now(), updated_at = now()
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::int[], $7::text[], $8::text[])
       AS t(id, worker, output, finish_reason, prompt_tokens, completion_tokens, provider, model)
 WHERE j.id = t.id AND j.status IN ('queued', 'running') AND (${LEASE_FREE} OR j.lease_owner = t.worker)
RETURNING j.id`;

// Update when the row exists, insert when it does not (poison, expired before claim); a concurrent insert makes
// ON CONFLICT skip the row and the caller re-reads it.
const FINISH_SQL = `
WITH t AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[], $8::timestamptz[])
         AS t(id, status, code, message, worker, tenant, request, created_at)
), upd AS (
  UPDATE jobs AS j SET
    status = t.status, error_code = t.code, error_message = t.message, lease_owner = NULL, lease_expires_at = NULL,
    result_writes = j.result_writes + 1, finished_at = now(), updated_at = now(),
    tenant = coalesce(j.tenant, t.tenant), request = coalesce(j.request, t.request)
    FROM t
   WHERE j.id = t.id AND j.status IN ('queued', 'running') AND (${LEASE_FREE} OR j.lease_owner = t.worker)
  RETURNING j.id
), ins AS (
  INSERT INTO jobs (id, tenant, status, request, error_code, error_message, result_writes, created_at, finished_at, updated_at)
  SELECT t.id, t.tenant, t.status, t.request, t.code, t.message, 1, coalesce(t.created_at, now()), now(), now()
    FROM t WHERE NOT EXISTS (SELECT 1 FROM jobs x WHERE x.id = t.id)
  ON CONFLICT (id) DO NOTHING
  RETURNING id
)
SELECT id FROM upd UNION ALL SELECT id FROM ins`;

const RELEASE_SQL = `
UPDATE jobs AS j SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL, error_code = t.code,
                     error_message = t.message, updated_at = now()
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS t(id, worker, code, message)
 WHERE j.id = t.id AND j.status = 'running' AND j.lease_owner = t.worker`;

// An operator's redrive from the DLQ: the dead verdict is withdrawn (result_writes back to 0, so the job's one
// eventual result counts once) and the last error stays for the record until a new outcome replaces it.
const REOPEN_DEAD_SQL = `
UPDATE jobs SET status = 'queued', result_writes = 0, finished_at = NULL, updated_at = now()
 WHERE id = ANY($1::text[]) AND status = 'dead'
RETURNING id`;
const PROVIDER_CALL_SQL = `
UPDATE jobs AS j SET provider_calls = j.provider_calls + c.n, updated_at = now()
  FROM (SELECT id, count(*)::int AS n FROM unnest($1::text[]) AS id GROUP BY id) AS c
 WHERE j.id = c.id`;

const EXTEND_SQL = `
UPDATE jobs SET lease_expires_at = now() + $3::int * interval '1 millisecond', updated_at = now()
 WHERE id = ANY($1::text[]) AND lease_owner = $2 AND status = 'running'`;

const STATE_SQL = `
SELECT id, status, lease_owner, lease_expires_at, coalesce(lease_expires_at > now(), false) AS live
  FROM jobs WHERE id = ANY($1::text[])`;

const RECORD_COLUMNS = `id, tenant, status, output, finish_reason, prompt_tokens, completion_tokens, provider, model,
  attempts, provider_calls, result_writes, error_code, error_message, created_at, started_at, finished_at`;

interface StateRow {
  id: string;
  status: JobStatus;
  lease_owner: string | null;
  lease_expires_at: Date | null;
  live: boolean;
}
interface RecordRow {
  id: string;
  tenant: string | null;
  status: JobStatus;
  output: string | null;
  finish_reason: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  provider: string | null;
  model: string | null;
  attempts: number;
  provider_calls: number;
  result_writes: number;
  error_code: string | null;
  error_message: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

export class JobStore {
  constructor(private readonly pool: pg.Pool) {}

  /** Take the lease on each job (insert or take over). Outcomes are in input order. */
  async claim(items: ClaimItem[]): Promise<ClaimOutcome[]> {
    const out = new Array<ClaimOutcome | undefined>(items.length);
    const firsts = firstOccurrences(items.map((i) => i.job.id));
    let pending = [...firsts.values()];
    for (let round = 0; pending.length > 0 && round < RACE_ROUNDS; round++) {
      const batch = pending.map((i) => items[i] as ClaimItem);
      const rows = await this.query<{ id: string; attempts: number }>("jobs_claim", CLAIM_SQL, [
        batch.map((b) => b.job.id),
        batch.map((b) => b.job.tenant),
        batch.map((b) => JSON.stringify(b.job)),
        batch.map((b) => b.workerId),
        batch.map((b) => Math.max(1, Math.round(b.leaseMs))),
        batch.map((b) => b.messageId),
        batch.map((b) => b.job.created_at),
      ]);
      const claimed = new Map(rows.map((r) => [r.id, r.attempts]));
      const lost = pending.filter((i) => !claimed.has((items[i] as ClaimItem).job.id));
      for (const i of pending) {
        const attempts = claimed.get((items[i] as ClaimItem).job.id);
        if (attempts !== undefined) out[i] = { kind: "claimed", attempts };
      }
      pending = await this.classifyLostClaims(items, lost, out);
    }
    // Still racing after every round: someone keeps taking it, which is what "leased" tells the caller.
    for (const i of pending) out[i] = { kind: "leased", owner: "unknown", expiresAt: new Date() };
    return items.map((item, i) => out[i] ?? duplicateClaim(item, out[firsts.get(item.job.id) as number]));
  }

  /** provider_calls += 1 per id (an id listed twice counts twice). Call just before the provider request. */
  async recordProviderCall(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.query("jobs_provider_call", PROVIDER_CALL_SQL, [ids]);
  }

  /** Store successful results. Writes only while the job is not terminal and nobody else holds a live lease. */
  async complete(items: CompleteItem[]): Promise<WriteOutcome[]> {
    return this.writeTerminal(items.map((i) => i.id), async (idx) => {
      const b = idx.map((i) => items[i] as CompleteItem);
      return this.query<{ id: string }>("jobs_complete", COMPLETE_SQL, [
        b.map((x) => x.id),
        b.map((x) => x.workerId),
        b.map((x) => x.output),
        b.map((x) => x.finishReason),
        b.map((x) => x.promptTokens),
        b.map((x) => x.completionTokens),
        b.map((x) => x.provider),
        b.map((x) => x.model),
      ]);
    });
  }

  /** Record terminal failures, creating the row when there is none. Never overwrites a terminal row. */
  async finish(items: FinishItem[]): Promise<WriteOutcome[]> {
    return this.writeTerminal(items.map((i) => i.id), async (idx) => {
      const b = idx.map((i) => items[i] as FinishItem);
      return this.query<{ id: string }>("jobs_finish", FINISH_SQL, [
        b.map((x) => x.id),
        b.map((x) => x.status),
        b.map((x) => x.code),
        b.map((x) => x.message),
        b.map((x) => x.workerId ?? null),
        b.map((x) => x.job?.tenant ?? x.tenant ?? null),
        b.map((x) => (x.job ? JSON.stringify(x.job) : null)),
        b.map((x) => x.job?.created_at ?? null),
      ]);
    });
  }

  /** Retryable failure: back to queued with the lease cleared and the error kept, if this worker holds the lease. */
  async release(items: ReleaseItem[]): Promise<void> {
    if (items.length === 0) return;
    await this.query("jobs_release", RELEASE_SQL, [
      items.map((i) => i.id),
      items.map((i) => i.workerId),
      items.map((i) => i.code),
      items.map((i) => i.message),
    ]);
  }

  /** Reopen `dead` jobs (DLQ redrive) so workers run them again; returns the ids reopened. */
  async reopenDead(ids: string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const rows = await this.query<{ id: string }>("jobs_reopen_dead", REOPEN_DEAD_SQL, [ids]);
    return rows.map((r) => r.id);
  }

  /** Push lease expiry to now + leaseMs for the jobs this worker still runs; ids it no longer holds are skipped. */
  async extendLeases(ids: string[], workerId: string, leaseMs: number): Promise<void> {
    if (ids.length === 0) return;
    await this.query("jobs_extend", EXTEND_SQL, [ids, workerId, Math.max(1, Math.round(leaseMs))]);
  }

  async get(id: string): Promise<JobRecord | undefined> {
    return (await this.getMany([id]))[0];
  }

  /** Records for the ids that exist, in no particular order. */
  async getMany(ids: string[]): Promise<JobRecord[]> {
    if (ids.length === 0) return [];
    const rows = await this.query<RecordRow>("jobs_get", `SELECT ${RECORD_COLUMNS} FROM jobs WHERE id = ANY($1::text[])`, [ids]);
    return rows.map(toRecord);
  }

  /** Row count per status; every status is present (0 when none). */
  async countByStatus(): Promise<Record<JobStatus, number>> {
    const rows = await this.query<{ status: JobStatus; n: number }>("jobs_count", "SELECT status, count(*)::int AS n FROM jobs GROUP BY status", []);
    const counts = Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>;
    for (const r of rows) counts[r.status] = r.n;
    return counts;
  }

  /**
   * Shared by complete and finish: run `write` for each distinct id, re-read the ones it skipped, and retry those
   * that a fresh read shows writable (lost a race with a release or an insert). A repeated id in one batch is
   * already_finished when its first occurrence wrote.
   */
  private async writeTerminal(ids: string[], write: (idx: number[]) => Promise<{ id: string }[]>): Promise<WriteOutcome[]> {
    const out = new Array<WriteOutcome | undefined>(ids.length);
    const firsts = firstOccurrences(ids);
    let pending = [...firsts.values()];
    for (let round = 0; pending.length > 0 && round < RACE_ROUNDS; round++) {
      const written = new Set((await write(pending)).map((r) => r.id));
      const skipped = pending.filter((i) => !written.has(ids[i] as string));
      for (const i of pending) if (written.has(ids[i] as string)) out[i] = "written";
      const states = await this.states(skipped.map((i) => ids[i] as string));
      pending = [];
      for (const i of skipped) {
        const s = states.get(ids[i] as string);
        if (s && isTerminal(s.status)) out[i] = "already_finished";
        else if (!s || s.live) out[i] = "lost_lease";
        else pending.push(i);
      }
    }
    for (const i of pending) out[i] = "lost_lease";
    return ids.map((id, i) => out[i] ?? (out[firsts.get(id) as number] === "lost_lease" ? "lost_lease" : "already_finished"));
  }

  /** Classify claims that were not taken; returns the indexes worth another round (the row looked free). */
  private async classifyLostClaims(items: ClaimItem[], lost: number[], out: (ClaimOutcome | undefined)[]): Promise<number[]> {
    const states = await this.states(lost.map((i) => (items[i] as ClaimItem).job.id));
    const retry: number[] = [];
    for (const i of lost) {
      const s = states.get((items[i] as ClaimItem).job.id);
      if (s && isTerminal(s.status)) out[i] = { kind: "finished", status: s.status };
      else if (s?.live && s.lease_owner !== null && s.lease_expires_at !== null) out[i] = { kind: "leased", owner: s.lease_owner, expiresAt: s.lease_expires_at };
      else retry.push(i);
    }
    return retry;
  }

  private async states(ids: string[]): Promise<Map<string, StateRow>> {
    if (ids.length === 0) return new Map();
    const rows = await this.query<StateRow>("jobs_state", STATE_SQL, [ids]);
    return new Map(rows.map((r) => [r.id, r]));
  }

  private async query<R extends pg.QueryResultRow>(name: string, text: string, values: unknown[]): Promise<R[]> {
    try {
      return (await this.pool.query<R>({ name, text, values })).rows;
    } catch (err) {
      throw toStoreError(err, name);
    }
  }
}

/** Index of the first occurrence of each id, in order. */
function firstOccurrences(ids: string[]): Map<string, number> {
  const m = new Map<string, number>();
  ids.forEach((id, i) => {
    if (!m.has(id)) m.set(id, i);
  });
  return m;
}

/** A repeated id in one claim batch: the first occurrence decides; a duplicate never gets its own lease. */
function duplicateClaim(item: ClaimItem, first: ClaimOutcome | undefined): ClaimOutcome {
  if (first?.kind === "claimed") return { kind: "leased", owner: item.workerId, expiresAt: new Date(Date.now() + item.leaseMs) };
  return first ?? { kind: "leased", owner: "unknown", expiresAt: new Date() };
}

function toRecord(r: RecordRow): JobRecord {
  return {
    id: r.id,
    tenant: r.tenant ?? undefined,
    status: r.status,
    output: r.output ?? undefined,
    finishReason: r.finish_reason ?? undefined,
    usage: r.prompt_tokens === null && r.completion_tokens === null ? undefined : { promptTokens: r.prompt_tokens ?? 0, completionTokens: r.completion_tokens ?? 0 },
    provider: r.provider ?? undefined,
    model: r.model ?? undefined,
    attempts: r.attempts,
    providerCalls: r.provider_calls,
    resultWrites: r.result_writes,
    error: r.error_code === null ? undefined : { code: r.error_code, message: r.error_message ?? "" },
    createdAt: r.created_at,
    startedAt: r.started_at ?? undefined,
    finishedAt: r.finished_at ?? undefined,
  };
}
