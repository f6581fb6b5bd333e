/**
 * One provider's circuit breaker: closed → open after `failureThreshold` consecutive failures → half-open once
 * `coolDownMs` has passed, admitting exactly one probe call → closed on its success, open again on its failure.
 *
 * Half-open is derived from the clock, not a timer: nothing runs while a provider rests. The probe is a generation
 * (a real job's call, or the router's one-token call while the worker takes no work), never a /health: it proves what
 * matters, that a generation succeeds. Every admission carries the breaker's generation; a
 * verdict from a call admitted before the last transition is stale and ignored (a thousand calls in flight when a
 * backend dies open the breaker once, and their late failures cannot re-open a breaker a probe has just closed).
 */
import type { Clock } from "./clock.ts";

export type BreakerState = "closed" | "open" | "half-open";

export interface BreakerOptions {
  /** Consecutive failures that open the breaker. */
  failureThreshold: number;
  /** How long an open breaker rests before it admits a probe, ms. */
  coolDownMs: number;
  clock: Clock;
  /** Told after every transition (open, half-open probe ending, closed). */
  onChange?: (state: BreakerState) => void;
}

/** Proof of admission, handed back with the call's verdict. */
export interface BreakerTicket {
  readonly probe: boolean;
  readonly generation: number;
}

export class ProviderBreaker {
  private phase: "closed" | "open" = "closed";
  private failures = 0;
  private openedAt = 0;
  private probing = false;
  private generation = 0;

  constructor(private readonly o: BreakerOptions) {}

  get state(): BreakerState {
    if (this.phase === "closed") return "closed";
    return this.o.clock.now() >= this.openedAt + this.o.coolDownMs ? "half-open" : "open";
  }

  get consecutiveFailures(): number {
    return this.failures;
  }

  get probeInFlight(): boolean {
    return this.probing;
  }

  /** A call would be admitted now: closed, or half-open with no probe out. */
  get admitting(): boolean {
    const state = this.state;
    return state === "closed" || (state === "half-open" && !this.probing);
  }

  /** Ms until an open breaker admits a probe: 0 when admitting, Infinity while a probe is out (its verdict decides). */
  get admitsInMs(): number {
    if (this.admitting) return 0;
    if (this.probing) return Infinity;
    return this.openedAt + this.o.coolDownMs - this.o.clock.now();
  }

  /** Admits a call (claiming the probe when half-open), or undefined when the breaker turns it away. */
  admit(): BreakerTicket | undefined {
    const state = this.state;
    if (state === "closed") return { probe: false, generation: this.generation };
    if (state === "half-open" && !this.probing) {
      this.probing = true;
      return { probe: true, generation: this.generation };
    }
    return undefined;
  }

  success(ticket: BreakerTicket): void {
    if (ticket.generation !== this.generation) return;
    if (ticket.probe) this.transition("closed");
    else this.failures = 0;
  }

  failure(ticket: BreakerTicket): void {
    if (ticket.generation !== this.generation) return;
    if (ticket.probe) return this.transition("open");
    this.failures += 1;
    if (this.failures >= this.o.failureThreshold) this.transition("open");
  }

  /** The call ended without saying anything about the provider (aborted, or the content's fault): a probe is freed. */
  release(ticket: BreakerTicket): void {
    if (!ticket.probe || ticket.generation !== this.generation) return;
    this.probing = false;
    this.o.onChange?.("half-open");
  }

  private transition(to: "closed" | "open"): void {
    this.phase = to;
    this.generation += 1;
    this.failures = 0;
    this.probing = false;
    if (to === "open") this.openedAt = this.o.clock.now();
    this.o.onChange?.(to);
  }
}
