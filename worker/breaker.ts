/**
 * A circuit breaker around the provider. After `threshold` consecutive retryable provider failures (server gone,
 * overloaded, timing out) it opens: the poller stops taking messages, so jobs wait in SQS instead of burning their
 * deliveries towards the DLQ during an outage; long polls in flight are cut and held jobs are handed back without a
 * call. While open it probes the backend with backoff (a real one-token generation by default: a /health that
 * answers while generations fail must not close it) and closes on the first good answer.
 */
import { backoffMs, delay } from "../shared/backoff.ts";
import type { Logger } from "../shared/logger.ts";
import { Condition } from "./condition.ts";

export interface BreakerOptions {
  threshold: number;
  probe: (signal: AbortSignal) => Promise<boolean>;
  log: Logger;
  maxProbeIntervalMs?: number;
  /** Told when the circuit opens (the worker cuts its long polls in flight). */
  onOpen?: () => void;
}

export class CircuitBreaker {
  private failures = 0;
  private open = false;
  private readonly changed = new Condition();
  private probing: Promise<void> | undefined;
  private readonly stop = new AbortController();

  constructor(private readonly o: BreakerOptions) {}

  get isOpen(): boolean {
    return this.open;
  }

  success(): void {
    this.failures = 0;
  }

  failure(): void {
    this.failures += 1;
    if (!this.open && this.failures >= this.o.threshold) {
      this.open = true;
      this.o.log.warn({ failures: this.failures }, "provider circuit open: pausing intake and probing health");
      this.probing = this.probeUntilHealthy();
      this.o.onOpen?.();
    }
  }

  /** Resolves when the circuit is closed, or `signal` aborts. */
  waitClosed(signal: AbortSignal): Promise<void> {
    return this.changed.waitUntil(() => !this.open, signal);
  }

  async close(): Promise<void> {
    this.stop.abort();
    await this.probing;
  }

  private async probeUntilHealthy(): Promise<void> {
    for (let attempt = 0; !this.stop.signal.aborted; attempt += 1) {
      await delay(backoffMs(attempt, 250, this.o.maxProbeIntervalMs ?? 5_000), this.stop.signal);
      const healthy = await this.o.probe(this.stop.signal).catch(() => false);
      if (healthy) break;
    }
    this.open = false;
    this.failures = 0;
    this.probing = undefined;
    if (!this.stop.signal.aborted) this.o.log.info("provider healthy again: circuit closed");
    this.changed.notify();
  }
}
