import { Condition } from "./condition.ts";

/**
 * Slots for held messages. The poller reserves slots before it receives and each message keeps one until its
 * job ends, so a worker never holds more messages than it can start. The limit moves (adaptive concurrency);
 * lowering it never cancels work, it only stops new receives until enough jobs end.
 */
export class Capacity {
  private used = 0;
  private readonly changed = new Condition();

  constructor(
    private current: number,
    readonly max: number,
  ) {}

  get limit(): number {
    return this.current;
  }

  get inUse(): number {
    return this.used;
  }

  get free(): number {
    return Math.max(0, this.current - this.used);
  }

  setLimit(limit: number): void {
    this.current = Math.max(1, Math.min(this.max, Math.round(limit)));
    this.wake();
  }

  /** Takes up to `wanted` free slots; returns how many it got. */
  reserve(wanted: number): number {
    const got = Math.min(wanted, this.free);
    this.used += got;
    return got;
  }

  release(count = 1): void {
    this.used = Math.max(0, this.used - count);
    this.wake();
  }

  /** Resolves when at least one slot is free, or when `signal` aborts. */
  waitForFree(signal: AbortSignal): Promise<void> {
    return this.changed.waitUntil(() => this.free > 0, signal);
  }

  /** Resolves when nothing is held (drain), or when `signal` aborts. */
  waitForIdle(signal: AbortSignal): Promise<void> {
    return this.changed.waitUntil(() => this.used === 0, signal);
  }

  private wake(): void {
    this.changed.notify();
  }
}
