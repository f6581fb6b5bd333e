/**
 * Keeps held messages invisible while their jobs run: every tick, messages whose visibility was last set more
 * than one interval ago are extended (ChangeMessageVisibilityBatch, 10 per call) back to the full visibility
 * timeout, and the jobs' Postgres leases with them. A message stops being extended when its job ends
 * (`untrack`) or its own deadline passes, so a stuck job is eventually redelivered instead of held forever.
 */
import type { ReceivedMessage, SqsQueue } from "../shared/queue/sqs.ts";
import type { Logger } from "../shared/logger.ts";

export interface HeldMessage {
  message: ReceivedMessage;
  /** Job id once decoded: its Postgres lease is extended with the message. */
  jobId?: string;
  /** Epoch ms after which we stop extending. */
  deadlineAt?: number;
  extendedAt: number;
}

export interface HeartbeatOptions {
  queue: SqsQueue;
  intervalMs: number;
  visibilityTimeoutSeconds: number;
  extendLeases: (jobIds: string[], leaseMs: number) => Promise<void>;
  log: Logger;
  now?: () => number;
}

export class Heartbeat {
  readonly held = new Map<string, HeldMessage>();
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;

  constructor(private readonly o: HeartbeatOptions) {}

  start(): void {
    this.timer ??= setInterval(() => void this.beat(), Math.max(250, Math.floor(this.o.intervalMs / 2)));
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.beating;
  }

  track(message: ReceivedMessage): HeldMessage {
    const held: HeldMessage = { message, extendedAt: this.now() };
    this.held.set(message.receiptHandle, held);
    return held;
  }

  untrack(message: ReceivedMessage): void {
    this.held.delete(message.receiptHandle);
  }

  get size(): number {
    return this.held.size;
  }

  /** One round of extensions; exposed for tests. Overlapping rounds are skipped. */
  beat(): Promise<void> {
    this.beating ??= this.extendDue().finally(() => (this.beating = undefined));
    return this.beating;
  }

  private async extendDue(): Promise<void> {
    const now = this.now();
    const due = [...this.held.values()].filter(
      (h) => now - h.extendedAt >= this.o.intervalMs && (h.deadlineAt === undefined || now < h.deadlineAt),
    );
    if (due.length === 0) return;
    const byQueue = new Map<string, HeldMessage[]>();
    for (const h of due) {
      const list = byQueue.get(h.message.queueUrl);
      if (list) list.push(h);
      else byQueue.set(h.message.queueUrl, [h]);
    }
    const calls = [...byQueue].map(([queueUrl, list]) => this.extendQueue(queueUrl, list, now));
    const jobIds = due.flatMap((h) => (h.jobId === undefined ? [] : [h.jobId]));
    if (jobIds.length > 0) {
      calls.push(
        this.o.extendLeases(jobIds, this.o.visibilityTimeoutSeconds * 1000).catch((err) => {
          this.o.log.warn({ err, count: jobIds.length }, "lease extension failed; will retry next beat");
        }),
      );
    }
    await Promise.all(calls);
  }

  private async extendQueue(queueUrl: string, list: HeldMessage[], now: number): Promise<void> {
    const entries = list.map((h, i) => ({
      id: String(i),
      receiptHandle: h.message.receiptHandle,
      visibilityTimeoutSeconds: this.o.visibilityTimeoutSeconds,
    }));
    try {
      const { failed } = await this.o.queue.changeVisibilityBatch(queueUrl, entries);
      const failedIds = new Set(failed.map((f) => f.id));
      list.forEach((h, i) => {
        if (!failedIds.has(String(i))) h.extendedAt = now;
      });
      if (failed.length > 0) this.o.log.warn({ queueUrl, failed: failed.length }, "some visibility extensions failed");
    } catch (err) {
      this.o.log.warn({ err, queueUrl, count: list.length }, "visibility extension failed; will retry next beat");
    }
  }

  private now(): number {
    return this.o.now?.() ?? Date.now();
  }
}
