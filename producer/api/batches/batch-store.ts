/**
 * Batches in Postgres (migration 0007). Every read names the tenant: another tenant's batch is a missing one.
 * Runners take a due batch FOR UPDATE SKIP LOCKED and keep the lock for one step, so two API replicas never
 * advance the same batch at once, and a cancel waits for the step in hand to commit.
 * Live progress is one scan of jobs_batch_idx (see batch-job.ts).
 */
import type pg from "pg";
import { inTransaction } from "../../../shared/store/transaction.ts";
import { batchJobKey, newBatchId } from "./batch-job.ts";
import type { BatchEndpoint, LineProblem } from "./openai-body.ts";
import { invalid, noSuch } from "./openai-error.ts";

/** Statuses of a batch still moving: a runner has steps to take and its input file is still read. */
export const ACTIVE_BATCH_STATUSES = ["validating", "in_progress", "finalizing", "cancelling"] as const;
export type BatchStatus = "validating" | "failed" | "in_progress" | "finalizing" | "completed" | "expired" | "cancelling" | "cancelled";

export interface BatchError extends LineProblem {
  line: number | null;
}
export interface BatchUsage {
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
}

export interface BatchRow {
  id: string;
  tenant: string;
  endpoint: BatchEndpoint;
  input_file_id: string;
  completion_window: string;
  status: BatchStatus;
  metadata: Record<string, string> | null;
  webhook_url: string | null;
  errors: { object: "list"; data: BatchError[] } | null;
  total: number;
  invalid: number;
  enqueued_through: number;
  outcome: "completed" | "expired" | null;
  completed: number | null;
  failed: number | null;
  usage: BatchUsage | null;
  output_file_id: string | null;
  error_file_id: string | null;
  created_at: Date;
  expires_at: Date;
  in_progress_at: Date | null;
  finalizing_at: Date | null;
  completed_at: Date | null;
  failed_at: Date | null;
  expired_at: Date | null;
  cancelling_at: Date | null;
  cancelled_at: Date | null;
  unrun_marked_at: Date | null;
}

/** What a runner step may change. */
export type BatchPatch = Partial<Omit<BatchRow, "id" | "tenant" | "endpoint" | "input_file_id" | "completion_window" | "created_at" | "webhook_url">> & {
  /** Delay before a runner looks at the batch again; 0 = at once. */
  nextStepInMs?: number;
};

export interface Progress {
  completed: number;
  failed: number;
  /** Jobs recorded but not finished (queued or running). */
  unfinished: number;
}

const ACTIVE = `(${ACTIVE_BATCH_STATUSES.map((s) => `'${s}'`).join(", ")})`;
const JSON_COLUMNS = new Set(["metadata", "errors", "usage"]);
const PATCHABLE = new Set([
  ...JSON_COLUMNS, "status", "total", "invalid", "enqueued_through", "outcome", "completed", "failed", "output_file_id", "error_file_id",
  "expires_at", "in_progress_at", "finalizing_at", "completed_at", "failed_at", "expired_at", "cancelling_at", "cancelled_at", "unrun_marked_at",
]);

const PROGRESS_SQL = `
SELECT count(*) FILTER (WHERE status = 'succeeded')::int AS completed,
       count(*) FILTER (WHERE status IN ('failed', 'dead', 'expired'))::int AS failed,
       count(*) FILTER (WHERE status IN ('queued', 'running'))::int AS unfinished
  FROM jobs WHERE split_part(id, ':', 1) = $1 AND id LIKE 'batch-%' AND tenant = $2`;

export interface CreateBatch {
  inputFileId: string;
  endpoint: BatchEndpoint;
  completionWindowMs: number;
  completionWindow: string;
  metadata: Record<string, string> | null;
  webhookUrl: string | null;
}

export class BatchStore {
  constructor(private readonly pool: pg.Pool) {}

  /** The input file is locked FOR SHARE until the batch is written, so it cannot be deleted in between. */
  async create(tenant: string, c: CreateBatch): Promise<BatchRow> {
    return inTransaction(this.pool, async (client) => {
      const file = await client.query<{ purpose: string }>("SELECT purpose FROM api_files WHERE id = $1 AND tenant = $2 FOR SHARE", [c.inputFileId, tenant]);
      const purpose = file.rows[0]?.purpose;
      if (purpose === undefined) throw noSuch("File", c.inputFileId, "input_file_id");
      if (purpose !== "batch") throw invalid(400, "invalid_value", `file ${c.inputFileId} has purpose '${purpose}', not 'batch'`, "input_file_id");
      const { rows } = await client.query<BatchRow>(
        `INSERT INTO api_batches (id, tenant, endpoint, input_file_id, completion_window, status, metadata, webhook_url, expires_at)
         VALUES ($1, $2, $3, $4, $5, 'validating', $6::jsonb, $7, now() + $8::float8 * interval '1 millisecond') RETURNING *`,
        [newBatchId(), tenant, c.endpoint, c.inputFileId, c.completionWindow, c.metadata === null ? null : JSON.stringify(c.metadata), c.webhookUrl, c.completionWindowMs],
      );
      return rows[0] as BatchRow;
    });
  }

  async get(tenant: string, id: string): Promise<BatchRow | undefined> {
    const { rows } = await this.pool.query<BatchRow>("SELECT * FROM api_batches WHERE id = $1 AND tenant = $2", [id, tenant]);
    return rows[0];
  }

  /** Newest first; `after` is the last id of the previous page (an unknown id gives an empty page). */
  async list(tenant: string, after: string | undefined, limit: number): Promise<{ rows: BatchRow[]; hasMore: boolean }> {
    const { rows } = await this.pool.query<BatchRow>(
      `SELECT * FROM api_batches WHERE tenant = $1
          AND ($2::text IS NULL OR (created_at, id) < (SELECT created_at, id FROM api_batches WHERE id = $2 AND tenant = $1))
        ORDER BY created_at DESC, id DESC LIMIT $3`,
      [tenant, after ?? null, limit + 1],
    );
    return { rows: rows.slice(0, limit), hasMore: rows.length > limit };
  }

  /**
   * validating/in_progress → cancelling; a batch already cancelling or cancelled is returned as it is (cancel is
   * idempotent); one that has ended otherwise, or is finalizing, cannot be cancelled.
   */
  async cancel(tenant: string, id: string): Promise<BatchRow> {
    const { rows } = await this.pool.query<BatchRow>(
      `UPDATE api_batches SET status = 'cancelling', cancelling_at = now(), next_step_at = now()
        WHERE id = $1 AND tenant = $2 AND status IN ('validating', 'in_progress') RETURNING *`,
      [id, tenant],
    );
    const row = rows[0] ?? (await this.get(tenant, id));
    if (row === undefined) throw noSuch("Batch", id);
    if (row.status !== "cancelling" && row.status !== "cancelled") {
      throw invalid(409, "batch_not_cancellable", `Cannot cancel a batch with status '${row.status}'.`, null);
    }
    return row;
  }

  /** The batch's jobs by status, from the jobs table (jobs not yet claimed by a worker have no row). */
  async progress(b: Pick<BatchRow, "id" | "tenant">, db: pg.ClientBase | pg.Pool = this.pool): Promise<Progress> {
    const { rows } = await db.query<Progress>(PROGRESS_SQL, [batchJobKey(b.id), b.tenant]);
    return rows[0] ?? { completed: 0, failed: 0, unfinished: 0 };
  }

  /** The batch most overdue for a step, locked for the caller's transaction; none when all are done or taken. */
  async takeDue(client: pg.ClientBase): Promise<BatchRow | undefined> {
    const { rows } = await client.query<BatchRow>(
      `SELECT * FROM api_batches WHERE status IN ${ACTIVE} AND next_step_at <= now() ORDER BY next_step_at LIMIT 1 FOR UPDATE SKIP LOCKED`,
    );
    return rows[0];
  }

  async update(db: pg.ClientBase | pg.Pool, id: string, patch: BatchPatch): Promise<void> {
    const { nextStepInMs, ...columns } = patch;
    const sets: string[] = [];
    const values: unknown[] = [id];
    for (const [column, value] of Object.entries(columns)) {
      if (!PATCHABLE.has(column)) throw new TypeError(`batches.${column} cannot be patched`);
      values.push(JSON_COLUMNS.has(column) && value !== null ? JSON.stringify(value) : value);
      sets.push(`${column} = $${values.length}${JSON_COLUMNS.has(column) ? "::jsonb" : ""}`);
    }
    if (nextStepInMs !== undefined) {
      values.push(nextStepInMs);
      sets.push(`next_step_at = now() + $${values.length}::float8 * interval '1 millisecond'`);
    }
    if (sets.length > 0) await db.query(`UPDATE api_batches SET ${sets.join(", ")} WHERE id = $1`, values);
  }
}
