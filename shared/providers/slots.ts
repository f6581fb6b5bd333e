/**
 * A provider's in-flight limit: at most `limit` calls at once. Waiters queue first come, first served, and a freed
 * slot passes straight to the head of the queue (no wake-all stampede: a thousand waiters cost nothing while
 * they wait). A waiter whose signal aborts leaves the queue.
 */
export class Slots {
  private used = 0;
  /** Insertion-ordered: the first entry is the longest waiting. */
  private readonly waiters = new Set<(granted: boolean) => void>();

  constructor(readonly limit: number) {}

  get inFlight(): number {
    return this.used;
  }

  get waiting(): number {
    return this.waiters.size;
  }

  /** Takes a slot if one is free now; never queues ahead of waiters. */
  tryTake(): boolean {
    if (this.used >= this.limit || this.waiters.size > 0) return false;
    this.used += 1;
    return true;
  }

  /** Resolves true holding a slot, or false when `signal` aborts first. */
  take(signal: AbortSignal): Promise<boolean> {
    if (this.tryTake()) return Promise.resolve(true);
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const onAbort = () => {
        this.waiters.delete(granted);
        resolve(false);
      };
      const granted = (ok: boolean) => {
        signal.removeEventListener("abort", onAbort);
        resolve(ok);
      };
      this.waiters.add(granted);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  release(): void {
    const next = this.waiters.values().next();
    if (next.done) {
      this.used -= 1;
      return;
    }
    // The slot changes hands without ever being free: `used` stays as it is.
    this.waiters.delete(next.value);
    next.value(true);
  }
}
