/**
 * The one place a held message's fate is decided: delete (ack), hand back, retry later, extend, dead-letter.
 * Invariants kept here:
 * - a message is deleted only after the caller made its outcome durable (ack is the caller's last step);
 * - a message that was never attempted is not sent to the DLQ by a hand-back: on its last delivery SQS would move it
 *   there on the next receive, so a fresh copy is sent instead and the old one deleted (its job never ran here);
 * - no extension is ever asked past SQS's 12 h cap from receipt, and an extension SQS refuses for good (the receipt
 *   handle is stale, the message is no longer in flight) is reported as lost, never retried.
 * Everything goes through a small queue port, so the rules are tested with a fake queue and a fake clock.
 */
import type { Logger } from "../shared/logger.ts";
import type { FleetMetrics } from "../shared/metrics/fleet-metrics.ts";
import type { BatchFailure, ReceivedMessage, SendEntry } from "../shared/queue/sqs.ts";
import { Acker } from "./acker.ts";

type BatchOutcome = { failed: BatchFailure[] };
type VisibilityEntry = { id: string; receiptHandle: string; visibilityTimeoutSeconds: number };

/** What settlement needs of SQS (SqsQueue implements it). */
export interface QueuePort {
  deleteBatch(queueUrl: string, entries: { id: string; receiptHandle: string }[], signal?: AbortSignal): Promise<BatchOutcome>;
  changeVisibilityBatch(queueUrl: string, entries: VisibilityEntry[], signal?: AbortSignal): Promise<BatchOutcome>;
  sendBatch(queueUrl: string, entries: SendEntry[], signal?: AbortSignal): Promise<BatchOutcome>;
  deadLetterQueueUrl(queueUrl: string): Promise<string | undefined>;
}

/** SQS refuses any visibility that ends more than 12 h after the receive. */
export const MAX_VISIBILITY_FROM_RECEIPT_MS = 12 * 3600 * 1000;
/** Asked a little short of the cap: the receive happened slightly before we noted it. */
const CAP_MARGIN_MS = 60_000;
/** SQS's largest DelaySeconds for a message copy. */
const MAX_DELAY_SECONDS = 900;
/** Extension failures that no retry can fix: the message is not ours (or not in flight) any more. */
const REFUSED_FOR_GOOD = new Set(["ReceiptHandleIsInvalid", "MessageNotInflight", "InvalidParameterValue", "QueueDoesNotExist"]);

export interface Extendable {
  message: ReceivedMessage;
  /** Epoch ms this delivery was received (the 12 h cap counts from here). */
  receivedAt: number;
}

export interface ExtendResult<T extends Extendable> {
  extended: T[];
  /** SQS refused for good, or the 12 h cap is reached: stop extending, the message is no longer ours to keep. */
  lost: T[];
  /** Transient failure: try again next beat. */
  failed: T[];
}

export interface SettlementOptions {
  queue: QueuePort;
  maxReceiveCount: number;
  visibilityTimeoutSeconds: number;
  ackFlushMs: number;
  log: Logger;
  metrics?: Pick<FleetMetrics, "deletes">;
  now?: () => number;
}

export class Settlement {
  private readonly acker: Acker;
  private readonly dlqUrls = new Map<string, Promise<string | undefined>>();

  constructor(private readonly o: SettlementOptions) {
    this.acker = new Acker(o.queue, o.ackFlushMs, o.log, o.metrics);
  }

  /**
   * Delete: the job's outcome is durable. Never rejects (a delete given up only means a redelivery finds it done).
   * `log` (here and below): the job's logger, so a line about its message names the job.
   */
  ack(message: ReceivedMessage, log: Logger = this.o.log): Promise<void> {
    return this.acker.ack(message, log);
  }

  /** An attempted job failed and may run again after `seconds` (its delivery is spent; the caller recorded `dead` on the last). */
  retryLater(message: ReceivedMessage, seconds: number, log: Logger = this.o.log): Promise<void> {
    return this.setVisibility(message, seconds, log);
  }

  /**
   * Give back a message whose job did not run here (drain, another worker's lease, circuit open). On its last
   * delivery a hand-back would send it to the DLQ unrun, so a fresh copy goes to the queue and this one is deleted.
   * `freshCopy`: send a copy whatever the delivery (its receive count starts again), for a job whose deliveries were
   * spent by workers dying around it rather than by its own runs.
   * Resolves true when a copy was sent (the caller tells the store: the spent message's deliveries no longer count).
   */
  async handBack(message: ReceivedMessage, delaySeconds = 0, o: { requeueLastDelivery?: boolean; freshCopy?: boolean; log?: Logger } = {}): Promise<boolean> {
    const log = o.log ?? this.o.log;
    if (o.freshCopy !== true && (message.receiveCount < this.o.maxReceiveCount || o.requeueLastDelivery === false)) {
      await this.setVisibility(message, delaySeconds, log);
      return false;
    }
    const copy: SendEntry = { id: "0", body: message.body, delaySeconds: Math.min(MAX_DELAY_SECONDS, Math.max(0, Math.round(delaySeconds))), attributes: message.attributes };
    try {
      const { failed } = await this.o.queue.sendBatch(message.queueUrl, [copy]);
      if (failed.length > 0) throw new Error(`${failed[0]!.code}: ${failed[0]!.message}`);
    } catch (err) {
      // The copy did not go: leave the original to SQS (the store's lost-job sweep records it dead if it reaches the DLQ).
      log.warn({ err, messageId: message.messageId }, "requeue of a last-delivery message failed; handing it back");
      await this.setVisibility(message, delaySeconds, log);
      return false;
    }
    log.info({ messageId: message.messageId, receiveCount: message.receiveCount }, "last delivery handed back as a fresh copy");
    await this.ack(message, log);
    return true;
  }

  /**
   * Move a message to the queue's DLQ with the reason as message attributes, then delete it. Throws when the copy
   * could not be sent (the caller leaves the message for redelivery); without a DLQ the message is dropped, logged.
   */
  async deadLetter(message: ReceivedMessage, reason: { code: string; message: string }, log: Logger = this.o.log): Promise<void> {
    const dlqUrl = await this.dlqFor(message.queueUrl);
    if (dlqUrl === undefined) {
      log.error({ messageId: message.messageId, code: reason.code, reason: reason.message }, "message dropped: the queue has no DLQ");
    } else {
      const attributes = { ...message.attributes, failure_code: reason.code, failure_reason: reason.message.slice(0, 1000), source_message_id: message.messageId };
      const { failed } = await this.o.queue.sendBatch(dlqUrl, [{ id: "0", body: message.body, attributes: lastTen(attributes) }]);
      if (failed.length > 0) throw new Error(`could not dead-letter message ${message.messageId}: ${failed[0]!.message}`);
      log.warn({ messageId: message.messageId, code: reason.code, reason: reason.message }, "message moved to the DLQ");
    }
    await this.ack(message, log);
  }

  /** Extend each message to the full visibility timeout, capped at 12 h from its receipt. */
  async extend<T extends Extendable>(held: T[]): Promise<ExtendResult<T>> {
    const result: ExtendResult<T> = { extended: [], lost: [], failed: [] };
    const byQueue = new Map<string, { h: T; seconds: number }[]>();
    for (const h of held) {
      const left = h.receivedAt + MAX_VISIBILITY_FROM_RECEIPT_MS - CAP_MARGIN_MS - this.now();
      const seconds = Math.min(this.o.visibilityTimeoutSeconds, Math.floor(left / 1000));
      if (seconds <= 0) {
        result.lost.push(h);
        continue;
      }
      const list = byQueue.get(h.message.queueUrl) ?? [];
      list.push({ h, seconds });
      byQueue.set(h.message.queueUrl, list);
    }
    await Promise.all([...byQueue].map(([queueUrl, list]) => this.extendQueue(queueUrl, list, result)));
    return result;
  }

  /** Flush deletes and wait for them (shutdown). */
  drain(): Promise<void> {
    return this.acker.drain();
  }

  private async extendQueue<T extends Extendable>(queueUrl: string, list: { h: T; seconds: number }[], result: ExtendResult<T>): Promise<void> {
    const entries = list.map(({ h, seconds }, i) => ({ id: String(i), receiptHandle: h.message.receiptHandle, visibilityTimeoutSeconds: seconds }));
    let failures: BatchFailure[];
    try {
      failures = (await this.o.queue.changeVisibilityBatch(queueUrl, entries)).failed;
    } catch (err) {
      this.o.log.warn({ err, queueUrl, count: list.length }, "visibility extension failed; will retry next beat");
      result.failed.push(...list.map((x) => x.h));
      return;
    }
    const byId = new Map(failures.map((f) => [f.id, f]));
    list.forEach(({ h }, i) => {
      const f = byId.get(String(i));
      if (f === undefined) result.extended.push(h);
      else if (REFUSED_FOR_GOOD.has(f.code)) result.lost.push(h);
      else result.failed.push(h);
    });
    if (failures.length > 0) this.o.log.warn({ queueUrl, failed: failures.length, codes: [...new Set(failures.map((f) => f.code))] }, "some visibility extensions failed");
  }

  private async setVisibility(message: ReceivedMessage, seconds: number, log: Logger): Promise<void> {
    const visibilityTimeoutSeconds = Math.max(0, Math.min(this.o.visibilityTimeoutSeconds, Math.round(seconds)));
    try {
      await this.o.queue.changeVisibilityBatch(message.queueUrl, [{ id: "0", receiptHandle: message.receiptHandle, visibilityTimeoutSeconds }]);
    } catch (err) {
      // Not fatal: the message reappears when its current visibility runs out.
      log.warn({ err, messageId: message.messageId }, "visibility change failed");
    }
  }

  private dlqFor(queueUrl: string): Promise<string | undefined> {
    let url = this.dlqUrls.get(queueUrl);
    if (url === undefined) {
      url = this.o.queue.deadLetterQueueUrl(queueUrl);
      url.catch(() => this.dlqUrls.delete(queueUrl));
      this.dlqUrls.set(queueUrl, url);
    }
    return url;
  }

  private now(): number {
    return this.o.now?.() ?? Date.now();
  }
}

/** SQS allows 10 message attributes: the failure's own (added last) win over the original's. */
function lastTen(attributes: Record<string, string>): Record<string, string> {
  const entries = Object.entries(attributes);
  return Object.fromEntries(entries.slice(Math.max(0, entries.length - 10)));
}
