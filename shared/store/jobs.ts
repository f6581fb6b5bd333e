/**
 * The durable job store (Postgres). Every method takes a batch and makes one round trip for it (arrays passed as
 * parameters and expanded with `unnest`), so a worker's cost per job is a fraction of a statement. Rows are only
 * written while not terminal: the first finished result is kept, and `result_writes` counts every terminal write.
 *
 * - THE FIRST OWNER KEEPS THE ID. Rows are keyed by id alone; the tenant that first wrote an id owns it. A claim or
 *   finish from another tenant (or a poison message naming an existing id) never changes the row: it is "conflict".
 * - ROWS FAIL ALONE. A row the server refuses fails only its own item (the StoreError is that item's result); the
 *   rest of its batch is written. Retryable errors (connection lost, deadlock) still throw for the whole batch.
 * - NO NUL REACHES POSTGRES from the text this store is given: U+0000 in an answer becomes U+FFFD and is counted
 *   (`outputNulReplaced`); in error messages, finish reasons and request JSON it is replaced silently.
 * - ONE LOCK ORDER: every statement takes its row locks in id order (see jobs-sql.ts), so they cannot deadlock.
 * - TERMINAL WRITES ANNOUNCE THEMSELVES: complete, finish and markLost NOTIFY the ids they wrote on `doneChannel()`,
 *   in the same statement, delivered at commit (the Results API's long polls wake on it without Redis).
 */
import type pg from "pg";
import type { Job } from "../contract.ts";
import type { StoreError } from "../errors.ts";
import { isolateFailures } from "./isolate.ts";
import { isTerminal, JOB_STATUSES, type JobRecord, type JobStatus, type TerminalStatus } from "./job-record.ts";
import * as sql from "./jobs-sql.ts";
import { jsonForStore, jsonTextForStore, replaceNul, safeText } from "./nul-scrub.ts";
import { AUTH_FAILED_SQLSTATE, toStoreError } from "./store-errors.ts";

export type { JobRecord, JobStatus, TerminalStatus };

export interface ClaimItem {
  job: Job;
  workerId: string;
  leaseMs: number;
  messageId: string;
  /** The SQS message's ApproximateReceiveCount: markLost finds jobs whose last delivery died with its worker. */
  receiveCount: number;
  /** The delivery's W3C trace id (shared/trace.ts), kept as the record's `traceId`. */
  traceId?: string;
}
export type ClaimOutcome =
  /** This worker now holds the lease (row inserted, or taken over because queued, lease-free or lease expired). */
  | { kind: "claimed"; attempts: number; /** Earlier holders that died with it (crash, kill) without an outcome. */ workerLosses: number }
  /** Already terminal: the caller only deletes the message. */
  | { kind: "finished"; status: TerminalStatus }
  /** Another live worker holds it (or the same id came twice in this batch): do not call the provider. */
  | { kind: "leased"; owner: string; expiresAt: Date }
  /** The id belongs to another tenant (`owner`; undefined for a poison record): the row was not touched. */
  | { kind: "conflict"; owner: string | undefined };

export interface CompleteItem {
  id: string;
  workerId: string;
  output: string;
  finishReason: string;
  promptTokens: number;
  completionTokens: number;
  provider: string;
  model: string;
  /** From the provider router: the answer's cost, the time it took and every call made for it. */
  costUsd?: number;
  latencyMs?: number;
  providerAttempts?: ProviderAttempt[];
  /** The answering delivery's trace id. */
  traceId?: string;
}
export interface ProviderAttempt {
  provider: string;
  ok: boolean;
  code?: string;
  latencyMs: number;
}
/** Totals of succeeded jobs per tenant and provider over a time range. */
export interface UsageRow {
  tenant: string | null;
  provider: string | null;
  jobs: number;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
}
export interface FinishItem {
  id: string;
  status: "failed" | "dead" | "expired";
  code: string;
  message: string;
  /** The worker holding the lease, when there is one; absent for poison or jobs expired before any claim. */
  workerId?: string;
  /** The job's tenant; must match the row's unless the row is created here. */
  tenant?: string;
  /** JSON text of the job, or of the raw poison body: kept when the row has no request yet. */
  request?: string;
  /** The job's created_at, for a row created here (default: now). */
  createdAt?: string;
  /** A message that did not parse as a job: it only ever creates a row, never changes one ("conflict" if it exists). */
  poison?: boolean;
  /** The delivery's trace id. */
  traceId?: string;
}
export interface ReleaseItem {
  id: string;
  workerId: string;
  code: string;
  message: string;
}
/** written: this call stored the result; already_finished: a terminal result was there first (kept);
 *  lost_lease: another live worker holds the job (or the row is gone), nothing written;
 *  conflict: the id belongs to another tenant, or a poison message named an existing row; nothing written. */
export type WriteOutcome = "written" | "already_finished" | "lost_lease" | "conflict";

/** How many times a batch re-tries items that lost a race but look claimable/writable on a fresh read. */
const RACE_ROUNDS = 3;

interface StateRow {
  id: string;
  tenant: string | null;
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
  output_nul_replaced: number;
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
  cost_usd: number | null;
  latency_ms: number | null;
  provider_attempts: ProviderAttempt[] | null;
  trace_id: string | null;
}
/** Per write: the id and, for the tenant/poison checks on a skipped write, who may own the row. */
interface WriteKey {
  id: string;
  tenant: string | undefined;
  poison: boolean;
}

export class JobStore {
  constructor(
    private readonly pool: pg.Pool,
    /** Told when Postgres refuses the password (28P01), so a rotated secret is fetched again. */
    private readonly onAuthFailure?: () => void,
  ) {}

  /** Take the lease on each job (insert or take over). Outcomes are in input order. */
  async claim(items: ClaimItem[]): Promise<(ClaimOutcome | StoreError)[]> {
    const out = new Array<ClaimOutcome | StoreError | undefined>(items.length);
    const firsts = firstOccurrences(items.map((i) => i.job.id));
    const leased: number[] = [];
    let pending = [...firsts.values()];
    for (let round = 0; pending.length > 0 && round < RACE_ROUNDS; round++) {
      const { rows, failed } = await isolateFailures(pending, "jobs_claim", (idx) => this.claimRows(idx.map((i) => items[i] as ClaimItem)));
      for (const [i, err] of failed) out[i] = err;
      const claimed = new Map(rows.map((r) => [r.id, r]));
      const lost: number[] = [];
      for (const i of pending) {
        if (out[i] !== undefined) continue;
        const row = claimed.get((items[i] as ClaimItem).job.id);
        if (row === undefined) lost.push(i);
        else out[i] = { kind: "claimed", attempts: row.attempts, workerLosses: row.worker_losses };
      }
      pending = await this.classifyLostClaims(items, lost, out, leased);
    }
    // Still racing after every round: someone keeps taking it, which is what "leased" tells the caller.
    for (const i of pending) out[i] = { kind: "leased", owner: "unknown", expiresAt: new Date() };
    await this.noteDeliveries(leased.map((i) => items[i] as ClaimItem));
    return items.map((item, i) => out[i] ?? duplicateClaim(item, items[firsts.get(item.job.id) as number] as ClaimItem, out[firsts.get(item.job.id) as number]));
  }

  /**
   * A `queued` row for each job just put on the queue, so it can be read before a worker claims it; an id that
   * already has a row (a claim came first, or another tenant owns it) is left alone. Returns the ids inserted.
   */
  async recordQueued(jobs: Job[]): Promise<string[]> {
    if (jobs.length === 0) return [];
    const rows = await this.query<{ id: string }>("jobs_queued", sql.QUEUED_SQL, [
      jobs.map((j) => j.id),
      jobs.map((j) => j.tenant),
      jobs.map((j) => jsonForStore(j)),
      jobs.map((j) => j.created_at),
    ]);
    return rows.map((r) => r.id);
  }

  /** The channel terminal writes NOTIFY on (payload: space-separated ids); one per schema. */
  async doneChannel(): Promise<string> {
    const rows = await this.query<{ channel: string }>("jobs_done_channel", `SELECT ${sql.DONE_CHANNEL_SQL} AS channel`, []);
    return rows[0]!.channel;
  }

  /** provider_calls += 1 per id (an id listed twice counts twice). Call just before the provider request. */
  async recordProviderCall(ids: string[]): Promise<(undefined | StoreError)[]> {
    const { failed } = await isolateFailures(ids.map((_, i) => i), "jobs_provider_call", (idx) =>
      this.query("jobs_provider_call", sql.PROVIDER_CALL_SQL, [idx.map((i) => ids[i])]),
    );
    return perItem(ids.length, failed);
  }

  /** Store successful results. Writes only while the job is not terminal and nobody else holds a live lease. */
  async complete(items: CompleteItem[]): Promise<(WriteOutcome | StoreError)[]> {
    const keys = items.map((x) => ({ id: x.id, tenant: undefined, poison: false }));
    return this.writeTerminal(keys, "jobs_complete", async (idx) => {
      const b = idx.map((i) => items[i] as CompleteItem);
      const outputs = b.map((x) => replaceNul(x.output));
      return this.query<{ id: string }>("jobs_complete", sql.COMPLETE_SQL, [
        b.map((x) => x.id),
        b.map((x) => x.workerId),
        outputs.map((o) => o.text),
        outputs.map((o) => o.replaced),
        b.map((x) => safeText(x.finishReason)),
        b.map((x) => x.promptTokens),
        b.map((x) => x.completionTokens),
        b.map((x) => safeText(x.provider)),
        b.map((x) => safeText(x.model)),
        b.map((x) => x.costUsd ?? null),
        b.map((x) => (x.latencyMs === undefined ? null : Math.round(x.latencyMs))),
        b.map((x) => (x.providerAttempts === undefined ? null : JSON.stringify(x.providerAttempts.map((a) => ({ ...a, provider: safeText(a.provider), code: a.code === undefined ? undefined : safeText(a.code) }))))),
        b.map((x) => x.traceId ?? null),
      ]);
    }, false);
  }

  /** Totals of succeeded jobs that ended in [from, to), per tenant and provider; one tenant when given. */
  async usage(o: { from: Date; to: Date; tenant?: string }): Promise<UsageRow[]> {
    const rows = await this.query<{ tenant: string | null; provider: string | null; jobs: number; prompt_tokens: string; completion_tokens: string; cost_usd: number }>(
      "jobs_usage",
      sql.USAGE_SQL,
      [o.from, o.to, o.tenant ?? null],
    );
    return rows.map((r) => ({ tenant: r.tenant, provider: r.provider, jobs: r.jobs, promptTokens: Number(r.prompt_tokens), completionTokens: Number(r.completion_tokens), costUsd: r.cost_usd }));
  }

  /** Record terminal failures, creating the row when there is none. Never overwrites a terminal row. */
  async finish(items: FinishItem[]): Promise<(WriteOutcome | StoreError)[]> {
    const keys = items.map((x) => ({ id: x.id, tenant: x.tenant, poison: x.poison === true }));
    return this.writeTerminal(keys, "jobs_finish", async (idx) => {
      const b = idx.map((i) => items[i] as FinishItem);
      return this.query<{ id: string }>("jobs_finish", sql.FINISH_SQL, [
        b.map((x) => x.id),
        b.map((x) => x.status),
        b.map((x) => safeText(x.code)),
        b.map((x) => safeText(x.message)),
        b.map((x) => x.workerId ?? null),
        b.map((x) => x.tenant ?? null),
        b.map((x) => (x.request === undefined ? null : jsonTextForStore(x.request))),
        b.map((x) => x.createdAt ?? null),
        b.map((x) => x.poison === true),
        b.map((x) => x.traceId ?? null),
      ]);
    }, true);
  }

  /** Retryable failure: back to queued with the lease cleared and the error kept, if this worker holds the lease. */
  async release(items: ReleaseItem[]): Promise<(undefined | StoreError)[]> {
    const { failed } = await isolateFailures(items.map((_, i) => i), "jobs_release", (idx) => {
      const b = idx.map((i) => items[i] as ReleaseItem);
      return this.query("jobs_release", sql.RELEASE_SQL, [b.map((x) => x.id), b.map((x) => x.workerId), b.map((x) => safeText(x.code)), b.map((x) => safeText(x.message))]);
    });
    return perItem(items.length, failed);
  }

  /** A fresh copy of each job's message was sent: forget the spent message's deliveries (see RESET_DELIVERIES_SQL). */
  async resetDeliveries(ids: string[]): Promise<(undefined | StoreError)[]> {
    const { failed } = await isolateFailures(ids.map((_, i) => i), "jobs_reset_deliveries", (idx) => this.query("jobs_reset_deliveries", sql.RESET_DELIVERIES_SQL, [idx.map((i) => ids[i])]));
    return perItem(ids.length, failed);
  }

  /** Reopen `dead` jobs (DLQ redrive) so workers run them again, only the given tenant's when one is given; returns the ids reopened. */
  async reopenDead(items: { id: string; tenant?: string }[]): Promise<string[]> {
    const { rows } = await isolateFailures(items, "jobs_reopen_dead", (b) =>
      this.query<{ id: string }>("jobs_reopen_dead", sql.REOPEN_DEAD_SQL, [b.map((x) => x.id), b.map((x) => x.tenant ?? null)]),
    );
    return rows.map((r) => r.id);
  }

  /** Push lease expiry to now + leaseMs for the jobs this worker still runs; returns the ids extended. */
  async extendLeases(ids: string[], workerId: string, leaseMs: number): Promise<string[]> {
    const { rows } = await isolateFailures(ids, "jobs_extend", (b) =>
      this.query<{ id: string }>("jobs_extend", sql.EXTEND_SQL, [b, workerId, Math.max(1, Math.round(leaseMs))]),
    );
    return rows.map((r) => r.id);
  }

  /**
   * Record `dead` (WORKER_LOST) for jobs whose last delivery died with its worker: receive_count reached
   * maxReceiveCount, no live lease, and the lease expired (or the job was released) over graceMs ago. At most
   * `limit` per call; rows another caller is marking are skipped, so every worker may run it at once.
   */
  async markLost(o: { maxReceiveCount: number; graceMs: number; limit: number }): Promise<JobRecord[]> {
    const rows = await this.query<RecordRow>("jobs_mark_lost", sql.MARK_LOST_SQL, [o.maxReceiveCount, Math.max(0, o.graceMs), o.limit]);
    return rows.map(toRecord);
  }

  /** Delete up to `limit` terminal rows finished over olderThanMs ago; returns how many (call again while = limit). */
  async deleteFinished(o: { olderThanMs: number; limit: number }): Promise<number> {
    const rows = await this.query<{ n: number }>("jobs_delete_finished", sql.DELETE_FINISHED_SQL, [Math.max(0, o.olderThanMs), o.limit]);
    return rows[0]?.n ?? 0;
  }

  /** Bytes on disk: the table (with TOAST) and all its indexes. */
  async tableSizes(): Promise<{ tableBytes: number; indexBytes: number }> {
    const rows = await this.query<{ table_bytes: number; index_bytes: number }>("jobs_table_sizes", sql.TABLE_SIZES_SQL, []);
    return { tableBytes: rows[0]?.table_bytes ?? 0, indexBytes: rows[0]?.index_bytes ?? 0 };
  }

  async get(id: string): Promise<JobRecord | undefined> {
    return (await this.getMany([id]))[0];
  }

  /** Records for the ids that exist, in no particular order. */
  async getMany(ids: string[]): Promise<JobRecord[]> {
    if (ids.length === 0) return [];
    return (await this.query<RecordRow>("jobs_get", sql.GET_SQL, [ids])).map(toRecord);
  }

  /** Like getMany, but only the rows `tenant` owns. */
  async getForTenant(tenant: string, ids: string[]): Promise<JobRecord[]> {
    if (ids.length === 0) return [];
    return (await this.query<RecordRow>("jobs_get_for_tenant", sql.GET_FOR_TENANT_SQL, [tenant, ids])).map(toRecord);
  }

  /** Row count per status; every status is present (0 when none). */
  async countByStatus(): Promise<Record<JobStatus, number>> {
    const rows = await this.query<{ status: JobStatus; n: number }>("jobs_count", sql.COUNT_SQL, []);
    const counts = Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>;
    for (const r of rows) counts[r.status] = r.n;
    return counts;
  }

  private claimRows(b: ClaimItem[]): Promise<{ id: string; attempts: number; worker_losses: number }[]> {
    return this.query("jobs_claim", sql.CLAIM_SQL, [
      b.map((x) => x.job.id),
      b.map((x) => x.job.tenant),
      b.map((x) => jsonForStore(x.job)),
      b.map((x) => x.workerId),
      b.map((x) => Math.max(1, Math.round(x.leaseMs))),
      b.map((x) => x.messageId),
      b.map((x) => Math.max(0, Math.round(x.receiveCount))),
      b.map((x) => x.job.created_at),
      b.map((x) => x.traceId ?? null),
    ]);
  }

  /**
   * Shared by complete and finish: run `write` for each distinct id, re-read the ones it skipped, and retry those
   * that a fresh read shows writable (lost a race with a release or an insert). A repeated id in one batch is
   * already_finished when its first occurrence wrote.
   */
  private async writeTerminal(keys: WriteKey[], operation: string, write: (idx: number[]) => Promise<{ id: string }[]>, checkTenant: boolean): Promise<(WriteOutcome | StoreError)[]> {
    const out = new Array<WriteOutcome | StoreError | undefined>(keys.length);
    const firsts = firstOccurrences(keys.map((k) => k.id));
    let pending = [...firsts.values()];
    for (let round = 0; pending.length > 0 && round < RACE_ROUNDS; round++) {
      const { rows, failed } = await isolateFailures(pending, operation, write);
      for (const [i, err] of failed) out[i] = err;
      const written = new Set(rows.map((r) => r.id));
      const skipped = pending.filter((i) => out[i] === undefined && !written.has((keys[i] as WriteKey).id));
      for (const i of pending) if (out[i] === undefined && written.has((keys[i] as WriteKey).id)) out[i] = "written";
      const states = await this.states(skipped.map((i) => (keys[i] as WriteKey).id));
      pending = [];
      for (const i of skipped) {
        const k = keys[i] as WriteKey;
        const s = states.get(k.id);
        if (s && checkTenant && (k.poison || (s.tenant ?? undefined) !== k.tenant)) out[i] = "conflict";
        else if (s && isTerminal(s.status)) out[i] = "already_finished";
        else if (!s || s.live) out[i] = "lost_lease";
        else pending.push(i);
      }
    }
    for (const i of pending) out[i] = "lost_lease";
    return keys.map((k, i) => out[i] ?? duplicateWrite(k, keys[firsts.get(k.id) as number] as WriteKey, out[firsts.get(k.id) as number]));
  }

  /** Classify claims that were not taken; returns the indexes worth another round (the row looked free). */
  private async classifyLostClaims(items: ClaimItem[], lost: number[], out: (ClaimOutcome | StoreError | undefined)[], leased: number[]): Promise<number[]> {
    const states = await this.states(lost.map((i) => (items[i] as ClaimItem).job.id));
    const retry: number[] = [];
    for (const i of lost) {
      const item = items[i] as ClaimItem;
      const s = states.get(item.job.id);
      if (s && (s.tenant ?? undefined) !== item.job.tenant) out[i] = { kind: "conflict", owner: s.tenant ?? undefined };
      else if (s && isTerminal(s.status)) out[i] = { kind: "finished", status: s.status };
      else if (s?.live && s.lease_owner !== null && s.lease_expires_at !== null) {
        out[i] = { kind: "leased", owner: s.lease_owner, expiresAt: s.lease_expires_at };
        leased.push(i);
      } else retry.push(i);
    }
    return retry;
  }

  /**
   * Deliveries that found the job leased still raise its receive_count: markLost must know the last delivery was
   * made. Best effort, and never at the claims' expense: they are committed, so a failure here is only logged by
   * its absence (the next delivery's claim records the count again).
   */
  private async noteDeliveries(b: ClaimItem[]): Promise<void> {
    if (b.length === 0) return;
    const values = [b.map((x) => x.job.id), b.map((x) => x.job.tenant), b.map((x) => Math.max(0, Math.round(x.receiveCount)))];
    await this.query("jobs_received", sql.RECEIVED_SQL, values).catch(() => undefined);
  }

  private async states(ids: string[]): Promise<Map<string, StateRow>> {
    if (ids.length === 0) return new Map();
    const rows = await this.query<StateRow>("jobs_state", sql.STATE_SQL, [ids]);
    return new Map(rows.map((r) => [r.id, r]));
  }

  private async query<R extends pg.QueryResultRow>(name: string, text: string, values: unknown[]): Promise<R[]> {
    try {
      return (await this.pool.query<R>({ name, text, values })).rows;
    } catch (err) {
      if ((err as { code?: unknown } | null)?.code === AUTH_FAILED_SQLSTATE) this.onAuthFailure?.();
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

/** Results in input order: undefined, or the item's error. */
function perItem(n: number, failed: [number, StoreError][]): (undefined | StoreError)[] {
  const out = new Array<undefined | StoreError>(n).fill(undefined);
  for (const [i, err] of failed) out[i] = err;
  return out;
}

/**
 * A repeated id in one claim batch: the first occurrence decides; a duplicate never gets its own lease. A duplicate
 * from another tenant is refused as the first one's row (or, when the first was refused, left for redelivery).
 */
function duplicateClaim(item: ClaimItem, first: ClaimItem, outcome: ClaimOutcome | StoreError | undefined): ClaimOutcome | StoreError {
  if (outcome instanceof Error) return outcome;
  if (item.job.tenant !== first.job.tenant) {
    if (outcome?.kind === "conflict" && outcome.owner === item.job.tenant) return { kind: "leased", owner: "unknown", expiresAt: new Date() };
    return outcome?.kind === "conflict" ? outcome : { kind: "conflict", owner: first.job.tenant };
  }
  if (outcome?.kind === "claimed") return { kind: "leased", owner: item.workerId, expiresAt: new Date(Date.now() + item.leaseMs) };
  return outcome ?? { kind: "leased", owner: "unknown", expiresAt: new Date() };
}

/** A repeated id in one write batch: the first occurrence decides (written makes the rest already_finished). */
function duplicateWrite(k: WriteKey, first: WriteKey, outcome: WriteOutcome | StoreError | undefined): WriteOutcome | StoreError {
  if (outcome instanceof Error) return outcome;
  if (k.poison || k.tenant !== first.tenant) return "conflict";
  return outcome === "lost_lease" || outcome === "conflict" ? outcome : "already_finished";
}

function toRecord(r: RecordRow): JobRecord {
  return {
    id: r.id,
    tenant: r.tenant ?? undefined,
    status: r.status,
    output: r.output ?? undefined,
    outputNulReplaced: r.output_nul_replaced,
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
    ...(r.cost_usd === null ? {} : { costUsd: r.cost_usd }),
    ...(r.latency_ms === null ? {} : { latencyMs: r.latency_ms }),
    ...(r.provider_attempts === null ? {} : { providerAttempts: r.provider_attempts }),
    ...(r.trace_id === null ? {} : { traceId: r.trace_id }),
  };
}
