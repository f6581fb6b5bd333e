/**
 * The store's housekeeping, run by every worker (the statements skip rows another worker has locked, so many
 * sweepers never collide):
 * - lost last deliveries: a job whose last delivery SQS allows was taken by a worker that then vanished (killed,
 *   crashed on that very job, stopped) keeps a `running` or `queued` record while SQS moves its message to the DLQ.
 *   Once its lease has been free for `graceMs`, it is recorded `dead` (WORKER_LOST), so nobody waits forever.
 *   Bound: visibility timeout (the lease) + grace + one interval after the worker vanished.
 * - retention: records that ended more than `retentionMs` ago are deleted in bounded batches.
 * A failing sweep is logged and tried again next round; it never stops the worker.
 */
import { delay } from "../shared/backoff.ts";
import type { Logger } from "../shared/logger.ts";
import type { JobRecord } from "../shared/store/job-record.ts";
import type { JobStore } from "../shared/store/jobs.ts";
import type { ReceivedMessage } from "../shared/queue/sqs.ts";
import { jobIdOf, tenantOf } from "../shared/contract.ts";
import { parseTraceparent, TRACEPARENT } from "../shared/trace.ts";

export interface MaintenanceOptions {
  store: Pick<JobStore, "markLost" | "deleteFinished" | "finish">;
  /**
   * A look at messages in the DLQs (left visible to other readers). A message SQS moved there (no failure_code
   * of ours) whose job has no outcome is recorded `dead`: it catches a worker that died between receiving a last
   * delivery and claiming it, which the lease sweep cannot see.
   */
  peekDeadLetters?: () => Promise<ReceivedMessage[]>;
  maxReceiveCount: number;
  /** How long a lease must have been free before its job counts as lost. */
  graceMs: number;
  intervalMs: number;
  /** Records older than this after they ended are deleted; 0 keeps them forever. */
  retentionMs: number;
  publish?: (record: JobRecord) => void;
  log: Logger;
}

const LOST_BATCH = 500;
const DELETE_BATCH = 1_000;
/** Deletes per round are bounded so one sweep never holds the pool for long; the rest waits for the next round. */
const MAX_DELETE_BATCHES_PER_ROUND = 20;

export async function runMaintenance(o: MaintenanceOptions, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    // Jittered so a fleet started together does not sweep in lockstep.
    await delay(o.intervalMs * (0.5 + Math.random()), signal);
    if (signal.aborted) break;
    await sweep(o, signal);
  }
}

/** One round; exported for tests. */
export async function sweep(o: MaintenanceOptions, signal?: AbortSignal): Promise<{ lost: number; deleted: number }> {
  let lost = 0;
  let deleted = 0;
  try {
    for (let n = LOST_BATCH; n === LOST_BATCH && !signal?.aborted; ) {
      const records = await o.store.markLost({ maxReceiveCount: o.maxReceiveCount, graceMs: o.graceMs, limit: LOST_BATCH });
      for (const r of records) {
        o.log.warn({ requestId: r.id, tenant: r.tenant, traceId: r.traceId }, "job recorded dead: its last delivery's worker stopped without an outcome");
        o.publish?.(r);
      }
      n = records.length;
      lost += n;
    }
    if (o.peekDeadLetters !== undefined) lost += await recordDeadLetters(o, await o.peekDeadLetters());
    if (o.retentionMs > 0) {
      for (let i = 0, n = DELETE_BATCH; i < MAX_DELETE_BATCHES_PER_ROUND && n === DELETE_BATCH && !signal?.aborted; i++) {
        n = await o.store.deleteFinished({ olderThanMs: o.retentionMs, limit: DELETE_BATCH });
        deleted += n;
      }
    }
  } catch (err) {
    o.log.warn({ err }, "store maintenance failed; next round retries");
  }
  return { lost, deleted };
}

/** Records `dead` the jobs of messages SQS moved to a DLQ without an outcome; returns how many it recorded. */
async function recordDeadLetters(o: MaintenanceOptions, messages: ReceivedMessage[]): Promise<number> {
  const items = messages.flatMap((m) => {
    const id = m.attributes?.failure_code === undefined ? jobIdOf(m.body) : undefined;
    if (id === undefined) return [];
    const message = "its message reached the DLQ without an outcome: its last delivery's worker stopped before recording one";
    const traceId = parseTraceparent(m.attributes?.[TRACEPARENT])?.traceId;
    return [{ id, tenant: tenantOf(m.body), status: "dead" as const, code: "WORKER_LOST", message, request: m.body, traceId }];
  });
  if (items.length === 0) return 0;
  const outcomes = await o.store.finish(items);
  return outcomes.filter((x) => x === "written").length;
}
