/**
 * Requests-per-minute and tokens-per-minute limits as token buckets that hold one minute's allowance and refill
 * continuously. In-process: each worker enforces its own share (divide a provider's quota by the fleet size).
 */
import type { Clock } from "./clock.ts";

export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    readonly perMinute: number,
    private readonly clock: Clock,
  ) {
    this.tokens = perMinute;
    this.at = clock.now();
  }

  /** Ms until `n` tokens are there (0: there now); Infinity when `n` exceeds a minute's allowance. Takes nothing. */
  waitFor(n: number): number {
    if (n > this.perMinute) return Infinity;
    this.refill();
    return this.tokens >= n ? 0 : Math.ceil(((n - this.tokens) * 60_000) / this.perMinute);
  }

  /** Takes `n` (may go negative: a call that used more than estimated borrows from the next minute). */
  take(n: number): void {
    this.refill();
    this.tokens -= n;
  }

  /** Gives back `n` unused tokens, never past a minute's allowance. */
  refund(n: number): void {
    this.refill();
    this.tokens = Math.min(this.perMinute, this.tokens + n);
  }

  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.perMinute, this.tokens + ((now - this.at) * this.perMinute) / 60_000);
    this.at = now;
  }
}

/** Both limits, taken together or not at all. */
export class RateLimit {
  private readonly requests?: TokenBucket;
  private readonly tokens?: TokenBucket;

  constructor(o: { requestsPerMinute?: number; tokensPerMinute?: number }, clock: Clock) {
    if (o.requestsPerMinute !== undefined) this.requests = new TokenBucket(o.requestsPerMinute, clock);
    if (o.tokensPerMinute !== undefined) this.tokens = new TokenBucket(o.tokensPerMinute, clock);
  }

  /** Takes one request and `tokens` tokens and returns 0, or returns the ms to wait (taking nothing). */
  tryTake(tokens: number): number {
    const wait = Math.max(this.requests?.waitFor(1) ?? 0, this.tokens?.waitFor(tokens) ?? 0);
    if (wait > 0) return wait;
    this.requests?.take(1);
    this.tokens?.take(tokens);
    return 0;
  }

  /** After the call: charge what it really used instead of the estimate. */
  settle(estimated: number, used: number): void {
    if (used > estimated) this.tokens?.take(used - estimated);
    else this.tokens?.refund(estimated - used);
  }

  /** The call was never made: give everything back. */
  cancel(tokens: number): void {
    this.requests?.refund(1);
    this.tokens?.refund(tokens);
  }
}
