/**
 * Keeps held messages invisible while their jobs run: every tick, messages whose visibility was last set more
 * than one interval ago are extended back to the full visibility timeout (through Settlement, which caps it at 12 h
 * from receipt), and the jobs' Postgres leases with them. A message stops being extended when its job ends
 * (`untrack`), its own deadline passes, or SQS refuses it for good; in the last case the job is told (`onLost`) so
 * it stops working on a message that may already be running elsewhere, and its lease is not extended again.
 */
import type { ReceivedMessage } from "../shared/queue/sqs.ts";
import type { Logger } from "../shared/logger.ts";
import type { FleetMetrics } from "../shared/metrics/fleet-metrics.ts";
import type { TraceContext } from "../shared/trace.ts";
import type { Settlement } from "./settlement.ts";

export interface HeldMessage {
  message: ReceivedMessage;
  /** Epoch ms this delivery was received here. */
  receivedAt: number;
  /** Job id once decoded: its Postgres lease is extended with the message. */
  jobId?: string;
  /** The delivery's trace (its `traceparent` attribute, or a fresh one), set when the processor takes it. */
  trace?: TraceContext;
  /** Lines about this message: the worker's logger, bound to the job's requestId, tenant and traceId once decoded. */
  log: Logger;
  /** Epoch ms after which we stop extending. */
  deadlineAt?: number;
  extendedAt: number;
  /** Aborted when the message is lost (refused for good, 12 h cap): the job must stop. */
  readonly lost: AbortController;
}

export interface HeartbeatOptions {
  settlement: Pick<Settlement, "extend">;
  intervalMs: number;
  visibilityTimeoutSeconds: number;
  extendLeases: (jobIds: string[], leaseMs: number) => Promise<unknown>;
  log: Logger;
  metrics?: Pick<FleetMetrics, "heartbeatExtensions">;
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
    const now = this.now();
    const held: HeldMessage = { message, receivedAt: now, extendedAt: now, lost: new AbortController(), log: this.o.log };
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
    const due: HeldMessage[] = [];
    for (const h of this.held.values()) {
      if (h.lost.signal.aborted || now - h.extendedAt < this.o.intervalMs) continue;
      if (h.deadlineAt === undefined || now < h.deadlineAt) due.push(h);
    }
    if (due.length === 0) return;
    const { extended, lost, failed } = await this.o.settlement.extend(due);
    this.o.metrics?.heartbeatExtensions("ok", extended.length);
    this.o.metrics?.heartbeatExtensions("failed", failed.length);
    this.o.metrics?.heartbeatExtensions("lost", lost.length);
    for (const h of extended) h.extendedAt = now;
    for (const h of lost) {
      h.log.warn({ messageId: h.message.messageId }, "message no longer ours (extension refused or 12 h cap): stopping its job");
      h.lost.abort();
    }
    // Leases follow the messages we still hold; a lost message's lease is left to run out.
    const jobIds = due.flatMap((h) => (h.jobId === undefined || h.lost.signal.aborted ? [] : [h.jobId]));
    if (jobIds.length === 0) return;
    await this.o.extendLeases(jobIds, this.o.visibilityTimeoutSeconds * 1000).catch((err: unknown) => {
      this.o.log.warn({ err, count: jobIds.length }, "lease extension failed; will retry next beat");
    });
  }

  private now(): number {
    return this.o.now?.() ?? Date.now();
  }
}
