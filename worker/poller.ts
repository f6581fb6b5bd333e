/**
 * The receive side: several long-poll loops, each reserving free slots before it asks SQS for messages, so
 * the worker never holds more than it can start. Queues are one per priority class, highest first. Each receive
 * starts from a class chosen by smooth weighted round robin over `weights` (default 2^(n-1-i): 4:2:1 for three
 * classes, i.e. 57/29/14 % of receives), and falls through to the other classes in priority order when that one
 * is empty: every non-empty class gets at least its share, and a class's unused share goes to the others.
 * A queue error that retrying cannot fix (queue deleted, access denied) stops every loop and is reported.
 */
import type { ReceivedMessage, SqsQueue } from "../shared/queue/sqs.ts";
import { queueNameOf } from "../shared/queue/queue-name.ts";
import type { Capacity } from "./capacity.ts";
import type { Logger } from "../shared/logger.ts";
import { backoffMs, delay } from "../shared/backoff.ts";
import { FleetError, coerceError, errorCode, isRetryable } from "../shared/errors.ts";
import { WeightedRoundRobin, defaultClassWeights } from "./weighted-round-robin.ts";

export interface PollerOptions {
  /** Only `receive` is used. */
  queue: Pick<SqsQueue, "receive">;
  /** Highest priority first. */
  queueUrls: string[];
  /** Share of receives that start from each class, same order as `queueUrls`. Default 2^(n-1-i). */
  weights?: number[];
  capacity: Capacity;
  batchSize: number;
  parallelism: number;
  waitTimeSeconds: number;
  visibilityTimeoutSeconds: number;
  /** While true (store outage), no new messages are taken. */
  paused: () => boolean;
  /** Resolves when the pause may have ended. */
  waitUnpaused: (signal: AbortSignal) => Promise<void>;
  /** Called with each received batch; every message holds one reserved slot. */
  onMessages: (messages: ReceivedMessage[]) => void;
  /** A non-retryable queue error (QueueDoesNotExist, AccessDenied...): every loop has stopped. Called once. */
  onFatal?: (err: Error, queueUrl: string) => void;
  log: Logger;
}

/** A receive failure with the queue it came from. */
class ReceiveFailed {
  constructor(
    readonly err: unknown,
    readonly queueUrl: string,
  ) {}
}

export class Poller {
  private readonly rotation: WeightedRoundRobin;
  /** One per receive in flight; `interrupt()` aborts them all. */
  private readonly inFlight = new Set<AbortController>();
  private readonly halt = new AbortController();

  constructor(private readonly o: PollerOptions) {
    const weights = o.weights ?? defaultClassWeights(o.queueUrls.length);
    if (weights.length !== o.queueUrls.length) throw new RangeError(`${weights.length} weights for ${o.queueUrls.length} queues`);
    this.rotation = new WeightedRoundRobin(weights);
  }

  /** Runs until `signal` aborts or a fatal queue error; resolves when every receive loop has ended. */
  async run(signal: AbortSignal): Promise<void> {
    const stop = () => this.halt.abort();
    signal.addEventListener("abort", stop, { once: true });
    if (signal.aborted) stop();
    try {
      await Promise.all(Array.from({ length: this.o.parallelism }, () => this.loop(this.halt.signal)));
    } finally {
      signal.removeEventListener("abort", stop);
    }
  }

  /**
   * Ends every receive in flight now (a long poll would otherwise deliver for up to its wait): each returns
   * no messages, counted neither as a failure nor as a stop. For when intake must stop at once (circuit open).
   */
  interrupt(): void {
    for (const receive of this.inFlight) receive.abort();
  }

  private async loop(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      if (this.o.paused()) {
        await this.o.waitUnpaused(signal);
        continue;
      }
      await this.o.capacity.waitForFree(signal);
      if (signal.aborted) break;
      if (this.o.paused()) continue; // paused while we waited for a slot
      const reserved = this.o.capacity.reserve(this.o.batchSize);
      if (reserved === 0) continue;
      let messages: ReceivedMessage[] = [];
      try {
        messages = await this.interruptible(signal, (receive) => this.receive(reserved, receive));
        failures = 0;
      } catch (failed) {
        const { err, queueUrl } = failed as ReceiveFailed;
        if (this.fatal(err, queueUrl)) break;
        failures += 1;
        this.o.log.warn({ err, queue: queueNameOf(queueUrl), failures }, "receive failed; backing off");
        await delay(backoffMs(failures, 200, 10_000), signal);
      } finally {
        this.o.capacity.release(reserved - messages.length);
      }
      if (messages.length > 0) this.o.onMessages(messages);
    }
  }

  /** Runs `receive` under its own signal: aborted by `signal` (stop) or by `interrupt()`. */
  private async interruptible<T>(signal: AbortSignal, receive: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const own = new AbortController();
    const stop = () => own.abort();
    signal.addEventListener("abort", stop, { once: true });
    this.inFlight.add(own);
    try {
      return await receive(own.signal);
    } finally {
      this.inFlight.delete(own);
      signal.removeEventListener("abort", stop);
    }
  }

  /** A weighted start class, then the rest in priority order (short polls); when all are empty, one short long poll. */
  private async receive(max: number, signal: AbortSignal): Promise<ReceivedMessage[]> {
    const urls = this.o.queueUrls;
    if (urls.length === 1) return this.receiveFrom(urls[0]!, max, this.o.waitTimeSeconds, signal);
    const first = this.rotation.next();
    for (const i of [first, ...urls.map((_, i) => i).filter((i) => i !== first)]) {
      const got = await this.receiveFrom(urls[i]!, max, 0, signal);
      if (got.length > 0 || signal.aborted) return got;
    }
    // Keep the long poll short so a higher class arriving meanwhile waits at most this long.
    return this.receiveFrom(urls[0]!, max, Math.min(2, this.o.waitTimeSeconds), signal);
  }

  private async receiveFrom(queueUrl: string, maxMessages: number, waitTimeSeconds: number, signal: AbortSignal): Promise<ReceivedMessage[]> {
    const o = { maxMessages, waitTimeSeconds, visibilityTimeoutSeconds: this.o.visibilityTimeoutSeconds, signal };
    return this.o.queue.receive(queueUrl, o).catch((err: unknown) => {
      throw new ReceiveFailed(err, queueUrl);
    });
  }

  /**
   * A queue error retrying cannot fix stops every loop (once) and is reported; true when it did. Only the server's
   * own refusal (a 4xx: QueueDoesNotExist, AccessDenied) counts: a local or unclassified failure is backed off.
   */
  private fatal(err: unknown, queueUrl: string): boolean {
    const status = err instanceof FleetError ? err.statusCode : undefined;
    if (isRetryable(err) || status === undefined || status < 400 || status >= 500) return false;
    if (!this.halt.signal.aborted) {
      this.o.log.error({ err: coerceError(err), queue: queueNameOf(queueUrl), code: errorCode(err) }, "queue error that retrying cannot fix; intake stopped");
      this.halt.abort();
      this.o.onFatal?.(coerceError(err), queueUrl);
    }
    return true;
  }
}
