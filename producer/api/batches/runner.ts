/**
 * Moves batches along, one bounded step per batch at a time, in any number of API replicas: a step runs in one
 * transaction holding the batch's row lock (FOR UPDATE SKIP LOCKED), so replicas never share a batch, and a step
 * that fails rolls back and is tried again later.
 *
 *   validating  → failed (errors name the lines) | in_progress
 *   in_progress → (send the next chunk of lines to SQS) … → finalizing once every job is terminal
 *               → finalizing (outcome expired) once expires_at passes: unstarted requests recorded batch_expired
 *   cancelling  → unstarted requests recorded batch_cancelled → cancelled once the running ones end (or the grace)
 *   finalizing  → completed | expired, with the output and error files assembled from the records
 *
 * Jobs carry deterministic ids and the batch's expiry as deadline: a step that died after sending re-sends the
 * same ids (the worker runs each once), and a job still queued at expiry is recorded expired by the worker.
 * Recording a request cancelled or expired writes its job row terminal before any worker claims it; a worker that
 * later receives the message finds it finished and only deletes it (JobStore's first-owner rule).
 */
import type pg from "pg";
import { delay } from "../../../shared/backoff.ts";
import { coerceError } from "../../../shared/errors.ts";
import type { Logger } from "../../../shared/logger.ts";
import type { FinishItem, JobStore } from "../../../shared/store/jobs.ts";
import { inTransaction } from "../../../shared/store/transaction.ts";
import type { Producer } from "../../producer.ts";
import type { FileStore } from "../files/file-store.ts";
import { assembleFiles } from "./assemble.ts";
import { batchObject, isEnded } from "./batch-object.ts";
import { batchJobId, batchJobInput } from "./batch-job.ts";
import type { BatchPatch, BatchRow, BatchStore } from "./batch-store.ts";
import { bodyJob } from "./openai-body.ts";
import type { UnrunCode } from "./output-line.ts";
import { validateBatch } from "./validation.ts";

export interface BatchRunnerOptions {
  pool: pg.Pool;
  batches: BatchStore;
  files: FileStore;
  jobs: Pick<JobStore, "finish" | "getForTenant">;
  /** Sends the jobs; its queue should be the lowest-priority class (batch work yields to interactive work). */
  producer: Pick<Producer, "submitMany">;
  log: Logger;
  /** How long an idle runner waits before looking for due batches, and between progress checks of a running one. */
  intervalMs: number;
  /** Lines sent to SQS per step (also bounded to 4 MiB of lines). */
  enqueueChunk: number;
  /** How long a cancelled or expired batch waits for requests already running before its files are assembled. */
  finishGraceMs: number;
  /**
   * Told of each batch as it ends (completed, failed, expired, cancelled), inside the transaction that ends it: a
   * webhook enqueued here on `client` commits with the end state or not at all.
   */
  onEnded?: (client: pg.ClientBase, ended: { tenant: string; webhookUrl: string | null; batch: Record<string, unknown> }) => Promise<void>;
}

const ENQUEUE_CHUNK_BYTES = 4 * 1024 * 1024;
/** Requests recorded cancelled/expired per store call. */
const MARK_CHUNK = 1_000;

type State = "created" | "running" | "stopping" | "stopped";

export class BatchRunner {
  private state: State = "created";
  private readonly stopper = new AbortController();
  private loopDone: Promise<void> = Promise.resolve();
  private stopped?: Promise<void>;

  constructor(private readonly o: BatchRunnerOptions) {}

  start(): void {
    if (this.state !== "created") return;
    this.state = "running";
    this.loopDone = this.loop(this.stopper.signal);
  }

  /** Stops looking for work; the step in hand finishes (its transaction commits) before this resolves. Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.state = "stopping";
      this.stopper.abort();
      await this.loopDone;
      this.state = "stopped";
    })();
    return this.stopped;
  }

  private async loop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const advanced = await this.step();
      if (!advanced) await delay(this.o.intervalMs, signal);
    }
  }

  /** Advance the most overdue batch by one step; false when none was due. Never throws. */
  async step(): Promise<boolean> {
    const taken: { batch?: BatchRow } = {};
    try {
      return await inTransaction(this.o.pool, async (client) => {
        const batch = (taken.batch = await this.o.batches.takeDue(client));
        if (batch === undefined) return false;
        const patch = await this.advance(client, batch);
        await this.o.batches.update(client, batch.id, patch);
        const after = { ...batch, ...patch };
        if (this.o.onEnded !== undefined && isEnded(after)) await this.o.onEnded(client, { tenant: batch.tenant, webhookUrl: batch.webhook_url, batch: batchObject(after) });
        return true;
      });
    } catch (err) {
      const batchId = taken.batch?.id;
      this.o.log.warn({ err: coerceError(err), batchId }, "batch step failed; retried later");
      if (batchId !== undefined) await this.o.batches.update(this.o.pool, batchId, { nextStepInMs: this.retryMs() }).catch(() => undefined);
      return false;
    }
  }

  private retryMs(): number {
    return Math.max(5_000, this.o.intervalMs * 5);
  }

  private advance(client: pg.ClientBase, b: BatchRow): Promise<BatchPatch> {
    switch (b.status) {
      case "validating":
        return this.validate(client, b);
      case "in_progress":
        return this.run(client, b);
      case "cancelling":
        return this.wind(client, b, "batch_cancelled", b.cancelling_at ?? new Date());
      case "finalizing":
        return b.outcome === "expired" ? this.wind(client, b, "batch_expired", b.finalizing_at ?? new Date()) : this.assemble(client, b, "batch_expired");
      default:
        return Promise.resolve({});
    }
  }

  private async validate(client: pg.ClientBase, b: BatchRow): Promise<BatchPatch> {
    const v = await validateBatch(client, b.input_file_id, b.endpoint);
    if (!v.ok) return { status: "failed", failed_at: new Date(), errors: { object: "list", data: v.errors } };
    return { status: "in_progress", in_progress_at: new Date(), total: v.total, invalid: v.invalid, nextStepInMs: 0 };
  }

  private async run(client: pg.ClientBase, b: BatchRow): Promise<BatchPatch> {
    if (Date.now() >= b.expires_at.getTime()) {
      await this.markUnrun(client, b, "batch_expired");
      return { status: "finalizing", finalizing_at: new Date(), outcome: "expired", unrun_marked_at: new Date(), nextStepInMs: 0 };
    }
    const lines = await this.o.files.runnableLines(client, b.input_file_id, b.enqueued_through, this.o.enqueueChunk, ENQUEUE_CHUNK_BYTES);
    const last = lines.at(-1);
    if (last !== undefined) {
      await this.send(b, lines);
      return { enqueued_through: last.line, nextStepInMs: 0 };
    }
    const p = await this.o.batches.progress(b, client);
    if (p.completed + p.failed >= b.total - b.invalid) return { status: "finalizing", finalizing_at: new Date(), outcome: "completed", nextStepInMs: 0 };
    return { nextStepInMs: this.o.intervalMs };
  }

  /** Sends lines as jobs. A send failure throws: the step rolls back and the same ids are sent again later. */
  private async send(b: BatchRow, lines: { line: number; data: Buffer; custom_id: string }[]): Promise<void> {
    const refused: { line: number; code: string; message: string }[] = [];
    const inputs = lines.flatMap(({ line, data, custom_id }) => {
      const mapped = bodyJob(b.endpoint, (JSON.parse(data.toString("utf8")) as { body: Record<string, unknown> }).body);
      if ("problem" in mapped) {
        // Checked at upload; a refusal here means the mapping changed since (a deploy): the request fails alone.
        refused.push({ line, code: "JOB_INVALID", message: mapped.problem.message });
        return [];
      }
      return [batchJobInput({ batchId: b.id, line, tenant: b.tenant, customId: custom_id, expiresAt: b.expires_at, body: mapped.job })];
    });
    const result = await this.o.producer.submitMany(inputs);
    const notSent = result.failed.filter((f) => !f.code.startsWith("JOB_"));
    if (notSent.length > 0) throw new Error(`${notSent.length} of ${inputs.length} jobs not sent (${notSent[0]?.code}): ${notSent[0]?.message}`);
    const failures = [...refused.map((r) => ({ id: batchJobId(b.id, r.line), code: r.code, message: r.message })), ...result.failed.flatMap((f) => (f.id === undefined ? [] : [{ id: f.id, code: f.code, message: f.message }]))];
    if (failures.length > 0) await this.o.jobs.finish(failures.map((f) => ({ ...f, status: "failed" as const, tenant: b.tenant })));
  }

  /**
   * Cancelling, or finalizing an expired batch: record the requests that have not started (once), then wait for
   * the running ones to end — at most finishGraceMs — and assemble the files.
   */
  private async wind(client: pg.ClientBase, b: BatchRow, unrun: UnrunCode, since: Date): Promise<BatchPatch> {
    if (b.unrun_marked_at === null) {
      await this.markUnrun(client, b, unrun);
      return { unrun_marked_at: new Date(), nextStepInMs: 0 };
    }
    const p = b.in_progress_at === null ? { unfinished: 0 } : await this.o.batches.progress(b, client);
    if (p.unfinished > 0 && Date.now() < since.getTime() + this.o.finishGraceMs) return { nextStepInMs: this.o.intervalMs };
    return this.assemble(client, b, unrun);
  }

  private async assemble(client: pg.ClientBase, b: BatchRow, unrun: UnrunCode): Promise<BatchPatch> {
    const a = await assembleFiles(client, this.o, b, unrun);
    const ended = new Date();
    const end: BatchPatch = b.status === "cancelling" ? { status: "cancelled", cancelled_at: ended } : b.outcome === "expired" ? { status: "expired", expired_at: ended } : { status: "completed", completed_at: ended };
    // Every request has exactly one line in one of the files, so the total is their sum (also for a batch
    // cancelled before validation counted it).
    return { ...end, output_file_id: a.outputFileId, error_file_id: a.errorFileId, total: a.completed + a.failed, completed: a.completed, failed: a.failed, usage: a.usage };
  }

  /**
   * Records every request without a terminal job as cancelled/expired, unless a worker holds it (JobStore.finish
   * writes only lease-free, unfinished rows, and creates the row for a job no worker has claimed yet). Nothing to
   * do for a batch cancelled before it started sending.
   */
  private async markUnrun(client: pg.ClientBase, b: BatchRow, code: UnrunCode): Promise<void> {
    if (b.in_progress_at === null) return;
    const status: FinishItem["status"] = code === "batch_expired" ? "expired" : "failed";
    const message = code === "batch_expired" ? "the batch expired before this request ran" : "the batch was cancelled before this request ran";
    for (let after = 0; ; ) {
      const lines = await this.o.files.requestLines(client, b.input_file_id, after, MARK_CHUNK);
      const last = lines.at(-1);
      if (last === undefined) return;
      const items = lines.filter((l) => l.request_error === null).map((l) => ({ id: batchJobId(b.id, l.line), status, code, message, tenant: b.tenant }));
      const outcomes = await this.o.jobs.finish(items);
      const failed = outcomes.find((o) => o instanceof Error);
      if (failed) throw failed;
      after = last.line;
    }
  }
}
