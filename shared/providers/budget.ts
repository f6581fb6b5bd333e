/**
 * One job's time budget in the router: retries, backoff, Retry-After waits and waits for a provider's capacity all
 * come out of it. It ends at the router's cap or the job's own deadline, whichever is first. It bounds waiting and
 * the start of new calls, not a call in flight: that one ends by its provider's timeout or the caller's signal.
 */
import type { Clock } from "./clock.ts";

export class Budget {
  constructor(
    private readonly clock: Clock,
    readonly endsAt: number,
  ) {}

  get remainingMs(): number {
    return Math.max(0, this.endsAt - this.clock.now());
  }

  get spent(): boolean {
    return this.remainingMs <= 0;
  }

  /** A wait of `ms` would leave time to make a call afterwards. */
  fits(ms: number): boolean {
    return ms < this.remainingMs;
  }

  /**
   * Runs `wait` with a signal that aborts after `limitMs` (capped by what is left), or when `caller` aborts.
   * Listeners and the timer are gone when it returns (see CallDeadline for why not AbortSignal.any).
   */
  async within<T>(limitMs: number, caller: AbortSignal | undefined, wait: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const window = new AbortController();
    const end = () => window.abort();
    caller?.addEventListener("abort", end, { once: true });
    if (caller?.aborted) end();
    void this.clock.sleep(Math.min(limitMs, this.remainingMs), window.signal).then(end);
    try {
      return await wait(window.signal);
    } finally {
      caller?.removeEventListener("abort", end);
      end();
    }
  }
}

/** Exponential backoff with full jitter: uniform in [0, min(cap, base·2^attempt)). */
export function fullJitterMs(attempt: number, baseMs: number, capMs: number, random: () => number): number {
  return Math.floor(random() * Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30)));
}
