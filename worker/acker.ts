/**
 * Batched deletes. A message is acked only after its outcome is persisted (the caller's rule); here deletes
 * are grouped per queue into batches of up to 10 with a short flush delay, and failed entries are retried.
 * An entry that SQS refuses for good (receipt handle invalid: the message was redelivered elsewhere) is
 * dropped: its job's outcome is already durable, so a redelivery only finds it finished.
 */
import type { SqsQueue, ReceivedMessage } from "../shared/queue/sqs.ts";
import { backoffMs, delay } from "../shared/backoff.ts";
import type { Logger } from "../shared/logger.ts";
import type { FleetMetrics } from "../shared/metrics/fleet-metrics.ts";

const MAX_BATCH = 10;
const MAX_ATTEMPTS = 6;

interface PendingAck {
  message: ReceivedMessage;
  /** The job's logger (the worker's when there is no job). */
  log: Logger;
  attempts: number;
  resolve: () => void;
}

export class Acker {
  private pending = new Map<string, PendingAck[]>();
  private timer: NodeJS.Timeout | undefined;
  private inFlight = new Set<Promise<void>>();

  constructor(
    private readonly queue: Pick<SqsQueue, "deleteBatch">,
    private readonly flushMs: number,
    private readonly log: Logger,
    private readonly metrics?: Pick<FleetMetrics, "deletes">,
  ) {}

  /** Resolves once the delete went out (or was given up after retries; never rejects). */
  ack(message: ReceivedMessage, log: Logger = this.log): Promise<void> {
    return new Promise((resolve) => this.enqueue({ message, log, attempts: 0, resolve }));
  }

  private enqueue(entry: PendingAck): void {
    const list = this.pending.get(entry.message.queueUrl) ?? [];
    list.push(entry);
    this.pending.set(entry.message.queueUrl, list);
    if (list.length >= MAX_BATCH) this.flushQueue(entry.message.queueUrl);
    else this.timer ??= setTimeout(() => this.flush(), this.flushMs);
  }

  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const queueUrl of [...this.pending.keys()]) this.flushQueue(queueUrl);
  }

  /** Flush and wait until every delete (and its retries) finished. */
  async drain(): Promise<void> {
    this.flush();
    while (this.inFlight.size > 0) {
      await Promise.all([...this.inFlight]);
      this.flush();
    }
  }

  private flushQueue(queueUrl: string): void {
    const list = this.pending.get(queueUrl) ?? [];
    this.pending.delete(queueUrl);
    for (let i = 0; i < list.length; i += MAX_BATCH) {
      const task = this.send(queueUrl, list.slice(i, i + MAX_BATCH)).finally(() => this.inFlight.delete(task));
      this.inFlight.add(task);
    }
  }

  private async send(queueUrl: string, batch: PendingAck[]): Promise<void> {
    const byId = new Map(batch.map((e, i) => [String(i), e]));
    let failedIds: { id: string; retry: boolean; code: string }[];
    try {
      const { failed } = await this.queue.deleteBatch(
        queueUrl,
        [...byId].map(([id, e]) => ({ id, receiptHandle: e.message.receiptHandle })),
      );
      failedIds = failed.map((f) => ({ id: f.id, retry: !f.senderFault, code: f.code }));
    } catch (err) {
      this.log.warn({ err, queueUrl, count: batch.length }, "delete batch failed; retrying");
      failedIds = [...byId.keys()].map((id) => ({ id, retry: true, code: "REQUEST_FAILED" }));
    }
    const failedSet = new Set(failedIds.map((f) => f.id));
    for (const [id, entry] of byId) if (!failedSet.has(id)) entry.resolve();
    let givenUp = 0;
    for (const f of failedIds) {
      const entry = byId.get(f.id)!;
      if (f.retry && entry.attempts + 1 < MAX_ATTEMPTS) void this.retryLater({ ...entry, attempts: entry.attempts + 1 });
      else {
        givenUp += 1;
        entry.log.warn({ messageId: entry.message.messageId, code: f.code }, "delete given up; a redelivery will find the job finished");
        entry.resolve();
      }
    }
    this.metrics?.deletes("ok", batch.length - failedIds.length);
    this.metrics?.deletes("failed", failedIds.length - givenUp);
    this.metrics?.deletes("given_up", givenUp);
  }

  private async retryLater(entry: PendingAck): Promise<void> {
    const task = delay(backoffMs(entry.attempts, 200, 5_000)).then(() => this.enqueue(entry));
    this.inFlight.add(task);
    await task;
    this.inFlight.delete(task);
  }
}
