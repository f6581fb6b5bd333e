/**
 * Redrive from a dead-letter queue that reopens exactly the jobs it moves. A worker that receives a message whose
 * job is still `dead` deletes it as finished, so each batch is reopened BEFORE it is sent back:
 *   receive a batch from the DLQ → reopen those jobs → send them to the source queue → delete them from the DLQ
 * until the DLQ is empty, `max` messages moved, or every requested id moved. Messages with no recoverable id are
 * moved as they are. A job reopened whose send then failed stays `queued` with its message still in the DLQ: it is
 * reported as stranded, and a second run moves it (reopening a queued job is a no-op).
 */
import { jobIdOf, tenantOf } from "../shared/contract.ts";
import type { ReceivedMessage, SqsQueue } from "../shared/queue/sqs.ts";
import type { JobStore } from "../shared/store/jobs.ts";

export interface RedriveOptions {
  queue: SqsQueue;
  store: JobStore;
  dlqUrl: string;
  sourceUrl: string;
  /** Only messages of these job ids; every message when absent. */
  ids?: ReadonlySet<string>;
  /** Most messages to move. Default: no limit. */
  max?: number;
  /** Messages per receive, 1–10. Default 10. */
  batchSize?: number;
  signal?: AbortSignal;
}

export interface RedriveResult {
  moved: number;
  /** Jobs whose `dead` record was reopened (a moved job whose row is not dead, or absent, is not counted). */
  reopened: string[];
  /** Reopened, but the send back failed: still in the DLQ. */
  stranded: string[];
}

export interface ReopenItem {
  id: string;
  /** The tenant the message body names; the store reopens only a row of that tenant. */
  tenant?: string;
}

/** Long enough that a message skipped or already handled in this run does not come back during it. */
const HOLD_SECONDS = 300;

export async function redriveDeadLetters(o: RedriveOptions): Promise<RedriveResult> {
  const max = o.max ?? Number.POSITIVE_INFINITY;
  const remaining = o.ids && new Set(o.ids);
  const held: ReceivedMessage[] = []; // received but not moved: made visible again at the end
  const seen = new Set<string>();
  const result: RedriveResult = { moved: 0, reopened: [], stranded: [] };
  try {
    while (result.moved < max && remaining?.size !== 0 && !o.signal?.aborted) {
      const got = await o.queue.receive(o.dlqUrl, {
        maxMessages: Math.min(o.batchSize ?? 10, max - result.moved),
        waitTimeSeconds: 1,
        visibilityTimeoutSeconds: HOLD_SECONDS,
        signal: o.signal,
      });
      const fresh = got.filter((m) => !seen.has(m.messageId));
      for (const m of got) seen.add(m.messageId);
      const chosen = fresh.filter((m) => remaining === undefined || remaining.has(jobIdOf(m.body) ?? ""));
      held.push(...got.filter((m) => !chosen.includes(m)));
      if (fresh.length === 0) break; // the DLQ is empty, or only what this run already saw is left
      if (chosen.length > 0) await moveBatch(o, chosen, held, result, remaining);
    }
  } finally {
    if (held.length > 0) {
      await o.queue.changeVisibilityBatch(o.dlqUrl, held.map((m) => ({ id: m.messageId, receiptHandle: m.receiptHandle, visibilityTimeoutSeconds: 0 })));
    }
  }
  return result;
}

/** Reopen, send, delete one batch; updates `result`, `held` (sends that failed) and `remaining` (ids moved). */
async function moveBatch(o: RedriveOptions, batch: ReceivedMessage[], held: ReceivedMessage[], result: RedriveResult, remaining: Set<string> | undefined): Promise<void> {
  const items = batch.flatMap((m): ReopenItem[] => {
    const id = jobIdOf(m.body);
    const tenant = tenantOf(m.body);
    return id === undefined ? [] : [tenant === undefined ? { id } : { id, tenant }];
  });
  const reopened = new Set(await reopen(o.store, items));
  result.reopened.push(...reopened);
  const { failed } = await o.queue.sendBatch(o.sourceUrl, batch.map((m) => ({ id: m.messageId, body: m.body, attributes: m.attributes })), o.signal);
  const failedIds = new Set(failed.map((f) => f.id));
  const sent = batch.filter((m) => !failedIds.has(m.messageId));
  for (const m of batch.filter((x) => failedIds.has(x.messageId))) {
    held.push(m);
    const id = jobIdOf(m.body);
    if (id !== undefined && reopened.has(id)) result.stranded.push(id);
  }
  // A failed delete leaves a copy in the DLQ: a duplicate (its job reopened and finished once), never a loss.
  await o.queue.deleteBatch(o.dlqUrl, sent.map((m) => ({ id: m.messageId, receiptHandle: m.receiptHandle })));
  result.moved += sent.length;
  for (const m of sent) remaining?.delete(jobIdOf(m.body) ?? "");
}

/** Reopen only rows of the tenant the message names (the first owner keeps the id). */
function reopen(store: JobStore, items: ReopenItem[]): Promise<string[]> {
  return store.reopenDead(items);
}
