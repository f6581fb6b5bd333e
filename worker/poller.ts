/**
 * The receive side: several long-poll loops, each reserving free slots before it asks SQS for messages, so
 * the worker never holds more than it can start. Queues are one per priority class, highest first: a
 * receive takes from the highest class that has messages, and one receive in `starvationEvery` starts from
 * the lowest so a flood of urgent work never starves the rest completely.
 */
import type { ReceivedMessage, SqsQueue } from "../shared/queue/sqs.ts";
import type { Capacity } from "./capacity.ts";
import type { Logger } from "../shared/logger.ts";
import { backoffMs, delay } from "../shared/backoff.ts";

export interface PollerOptions {
  queue: SqsQueue;
  /** Highest priority first. */
  queueUrls: string[];
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
  log: Logger;
  starvationEvery?: number;
}

export class Poller {
  private receives = 0;

  constructor(private readonly o: PollerOptions) {}

  /** Runs until `signal` aborts; resolves when every receive loop has ended. */
  async run(signal: AbortSignal): Promise<void> {
    await Promise.all(Array.from({ length: this.o.parallelism }, () => this.loop(signal)));
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
        messages = await this.receive(reserved, signal);
        failures = 0;
      } catch (err) {
        failures += 1;
        this.o.log.warn({ err, failures }, "receive failed; backing off");
        await delay(backoffMs(failures, 200, 10_000), signal);
      } finally {
        this.o.capacity.release(reserved - messages.length);
      }
      if (messages.length > 0) this.o.onMessages(messages);
    }
  }

  /** Short polls down the priority order; when all are empty, one long poll on the highest class. */
  private async receive(max: number, signal: AbortSignal): Promise<ReceivedMessage[]> {
    const urls = this.o.queueUrls;
    const base = { maxMessages: max, visibilityTimeoutSeconds: this.o.visibilityTimeoutSeconds, signal };
    if (urls.length === 1) return this.o.queue.receive(urls[0]!, { ...base, waitTimeSeconds: this.o.waitTimeSeconds });
    this.receives += 1;
    const order = this.receives % (this.o.starvationEvery ?? 10) === 0 ? [...urls].reverse() : urls;
    for (const url of order) {
      const got = await this.o.queue.receive(url, { ...base, waitTimeSeconds: 0 });
      if (got.length > 0 || signal.aborted) return got;
    }
    // Keep the long poll short so a higher class arriving meanwhile waits at most this long.
    return this.o.queue.receive(urls[0]!, { ...base, waitTimeSeconds: Math.min(2, this.o.waitTimeSeconds) });
  }
}
