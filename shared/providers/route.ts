/**
 * One provider in the router's chain with everything that decides whether a call may go to it now: its breaker,
 * its in-flight limit, its rate limits and its hourly spend ceiling. `admit` takes all four or none, and the
 * permit it returns gives back what the call did not use when the call ends. Waits (for a slot, for rate tokens)
 * come out of the job's budget and are capped by `queueWaitMs`; past that the call goes elsewhere.
 */
import { errorCode } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { FleetMetrics } from "../metrics/fleet-metrics.ts";
import type { Budget } from "./budget.ts";
import type { Clock } from "./clock.ts";
import { costUsd, estimateTokens } from "./cost.ts";
import { priceOf, type PriceTable } from "./prices.ts";
import type { Completion, CompletionRequest, Provider } from "./provider.ts";
import { ProviderBreaker, type BreakerState, type BreakerTicket } from "./provider-breaker.ts";
import { RateLimit } from "./rate-limit.ts";
import { Slots } from "./slots.ts";
import { hourOf, type SpendLedger } from "./spend-ledger.ts";

/** One entry of the router's chain, as configuration gives it. */
export interface RouteOptions {
  provider: Provider;
  /** Names the route in health, attempts and the spend ledger; unique in a chain. Default `provider.name`. */
  name?: string;
  /** Calls in flight at once from this process (e.g. vLLM 1024, Ollama 4, Gemini 16). */
  maxInFlight: number;
  /** Requests a minute from this process. Default: unlimited. */
  requestsPerMinute?: number;
  /** Prompt + completion tokens a minute from this process (estimated before the call). Default: unlimited. */
  tokensPerMinute?: number;
  /** USD this provider may cost per clock hour (fleet-wide with the Redis ledger). Default: no ceiling. */
  spendCeilingUsdPerHour?: number;
  /** The model a request naming none is served by: prices the estimate. Default: the provider's "*" price. */
  model?: string;
  /** Calls to this provider for one job before it moves on. Default 3. */
  maxAttempts?: number;
  /** Longest a job waits here for a slot or rate tokens, ms. Default: as long as the job's budget allows. */
  queueWaitMs?: number;
  /** Overrides the router's breaker threshold / cool-down for this provider. */
  failureThreshold?: number;
  coolDownMs?: number;
}

/** What every route shares, from the router. */
export interface RouteContext {
  clock: Clock;
  prices: PriceTable;
  ledger: SpendLedger;
  defaultMaxTokens: number;
  failureThreshold: number;
  coolDownMs: number;
  log?: Pick<Logger, "warn" | "info">;
  /** A route became unavailable (breaker opened, spend ceiling reached). */
  onUnavailable: () => void;
  /** Anything that may have made a route available again. */
  onChange: () => void;
  metrics?: Pick<FleetMetrics, "breakerTransition">;
}

export type SkipReason = "open" | "over-ceiling" | "busy";
export type Admission = { permit: Permit; skipped?: undefined } | { permit?: undefined; skipped: SkipReason };

export interface RouteHealth {
  name: string;
  provider: string;
  state: BreakerState;
  probeInFlight: boolean;
  consecutiveFailures: number;
  inFlight: number;
  waiting: number;
  maxInFlight: number;
  lastErrorCode?: string;
  spentUsdThisHour: number;
  spendCeilingUsdPerHour?: number;
  overSpendCeiling: boolean;
}

export class Route {
  readonly name: string;
  readonly provider: Provider;
  readonly maxAttempts: number;
  readonly breaker: ProviderBreaker;
  private readonly slots: Slots;
  private readonly rate: RateLimit;
  private lastErrorCode?: string;
  /** The last total the ledger reported, and for which hour. */
  private spent = { hour: -1, usd: 0 };
  private overCeilingHour = -1;

  constructor(
    readonly o: RouteOptions,
    private readonly ctx: RouteContext,
  ) {
    this.name = o.name ?? o.provider.name;
    this.provider = o.provider;
    this.maxAttempts = o.maxAttempts ?? 3;
    this.slots = new Slots(o.maxInFlight);
    this.rate = new RateLimit(o, ctx.clock);
    this.breaker = new ProviderBreaker({
      failureThreshold: o.failureThreshold ?? ctx.failureThreshold,
      coolDownMs: o.coolDownMs ?? ctx.coolDownMs,
      clock: ctx.clock,
      onChange: (state) => {
        ctx.log?.[state === "open" ? "warn" : "info"]({ provider: this.name, state, lastErrorCode: this.lastErrorCode }, `provider ${state}`);
        ctx.metrics?.breakerTransition(this.name, state);
        if (state === "open") ctx.onUnavailable();
        ctx.onChange();
      },
    });
  }

  get overCeiling(): boolean {
    return this.overCeilingHour === hourOf(this.ctx.clock.now());
  }

  /** Turned away at once: breaker open (or probing) or spend ceiling reached. Capacity limits do not count. */
  get unavailable(): boolean {
    return !this.breaker.admitting || this.overCeiling;
  }

  /** Ms until this route could be available again (Infinity while a probe is out: its verdict decides). */
  get availableInMs(): number {
    const now = this.ctx.clock.now();
    const spendClears = this.overCeiling ? (hourOf(now) + 1) * 3_600_000 - now : 0;
    return Math.max(this.breaker.admitsInMs, spendClears);
  }

  /** Breaker, then slot, then rate tokens, then spend, then the breaker's ticket: all of them or none. */
  async admit(req: CompletionRequest, budget: Budget, signal: AbortSignal | undefined): Promise<Admission> {
    if (!this.breaker.admitting) return { skipped: "open" };
    if (this.overCeiling) return { skipped: "over-ceiling" };
    const undo: (() => void)[] = [];
    const skip = (reason: SkipReason): Admission => {
      for (const step of undo.reverse()) step();
      return { skipped: reason };
    };
    const waitLimitMs = Math.min(this.o.queueWaitMs ?? Infinity, budget.remainingMs);
    const waitEndsAt = this.ctx.clock.now() + waitLimitMs;
    const tokens = estimateTokens(req, this.ctx.defaultMaxTokens);
    const estimatedTokens = tokens.prompt + tokens.completion;

    if (!this.slots.tryTake() && !(await budget.within(waitLimitMs, signal, (s) => this.slots.take(s)))) return skip("busy");
    undo.push(() => this.slots.release());
    if (!(await this.takeRate(estimatedTokens, waitEndsAt, signal))) return skip("busy");
    undo.push(() => this.rate.cancel(estimatedTokens));
    const hour = hourOf(this.ctx.clock.now());
    const estimateUsd = costUsd(priceOf(this.ctx.prices, this.provider.name, req.model ?? this.o.model), tokens.prompt, tokens.completion);
    const reserved = await this.reserve(hour, estimateUsd);
    if (reserved === undefined) return skip("over-ceiling");
    undo.push(() => void this.addSpend(hour, -reserved));
    // Last, because the breaker may have opened (or a probe gone out) while this call waited.
    const ticket = this.breaker.admit();
    if (ticket === undefined) return skip("open");
    return { permit: new Permit(this, ticket, estimatedTokens, hour, reserved) };
  }

  health(): RouteHealth {
    const hour = hourOf(this.ctx.clock.now());
    return {
      name: this.name,
      provider: this.provider.name,
      state: this.breaker.state,
      probeInFlight: this.breaker.probeInFlight,
      consecutiveFailures: this.breaker.consecutiveFailures,
      inFlight: this.slots.inFlight,
      waiting: this.slots.waiting,
      maxInFlight: this.slots.limit,
      lastErrorCode: this.lastErrorCode,
      spentUsdThisHour: this.spent.hour === hour ? this.spent.usd : 0,
      spendCeilingUsdPerHour: this.o.spendCeilingUsdPerHour,
      overSpendCeiling: this.overCeiling,
    };
  }

  // ---- for Permit ---------------------------------------------------------------------------------------------

  /** The call answered: its verdict, real token use and real cost (the reservation corrected). Resolves the cost. */
  async settle(p: Permit, c: Completion): Promise<number> {
    this.breaker.success(p.ticket);
    this.rate.settle(p.estimatedTokens, c.promptTokens + c.completionTokens);
    const cost = costUsd(priceOf(this.ctx.prices, this.provider.name, c.model), c.promptTokens, c.completionTokens);
    if (cost !== p.reservedUsd) await this.addSpend(p.hour, cost - p.reservedUsd);
    this.slots.release();
    return cost;
  }

  /** The call failed through the provider's fault (`counts`) or ended saying nothing about it. */
  async abandon(p: Permit, err: unknown, counts: boolean): Promise<void> {
    if (counts) {
      this.lastErrorCode = errorCode(err);
      this.breaker.failure(p.ticket);
    } else {
      this.breaker.release(p.ticket);
    }
    this.rate.settle(p.estimatedTokens, 0);
    if (p.reservedUsd !== 0) await this.addSpend(p.hour, -p.reservedUsd);
    this.slots.release();
  }

  // ---- capacity and spend -------------------------------------------------------------------------------------

  private async takeRate(tokens: number, waitEndsAt: number, signal: AbortSignal | undefined): Promise<boolean> {
    for (;;) {
      const wait = this.rate.tryTake(tokens);
      if (wait === 0) return true;
      if (this.ctx.clock.now() + wait >= waitEndsAt || signal?.aborted) return false;
      await this.ctx.clock.sleep(wait, signal);
    }
  }

  /**
   * Reserves `usd` in the ledger; resolves what was reserved, or undefined when the ceiling (or an unreachable
   * ledger, with a ceiling set) says no. A free call never touches the ledger.
   */
  private async reserve(hour: number, usd: number): Promise<number | undefined> {
    if (usd === 0) return 0;
    const ceiling = this.o.spendCeilingUsdPerHour ?? Infinity;
    try {
      const { ok, spentUsd } = await this.ctx.ledger.reserve(this.name, hour, usd, ceiling);
      this.spent = { hour, usd: spentUsd };
      if (ok) return usd;
      this.overCeilingHour = hour;
      this.lastErrorCode = "SPEND_CEILING_REACHED";
      this.ctx.log?.warn({ provider: this.name, spentUsd, ceilingUsd: ceiling }, "provider over its hourly spend ceiling: skipped until the hour ends");
      this.ctx.onUnavailable();
      return undefined;
    } catch (err) {
      this.lastErrorCode = "SPEND_LEDGER_UNAVAILABLE";
      this.ctx.log?.warn({ provider: this.name, err: errorCode(err) }, "spend ledger unreachable");
      // With a ceiling, unmetered spending is what the ceiling forbids; without one, nothing is enforced anyway.
      return Number.isFinite(ceiling) ? undefined : 0;
    }
  }

  private async addSpend(hour: number, deltaUsd: number): Promise<void> {
    try {
      this.spent = { hour, usd: await this.ctx.ledger.add(this.name, hour, deltaUsd) };
    } catch (err) {
      this.ctx.log?.warn({ provider: this.name, err: errorCode(err), deltaUsd }, "spend ledger unreachable: correction lost");
    }
  }
}

/** A call admitted to a route: settle it exactly once, with `succeeded` or `abandoned`. */
export class Permit {
  constructor(
    private readonly route: Route,
    readonly ticket: BreakerTicket,
    readonly estimatedTokens: number,
    readonly hour: number,
    readonly reservedUsd: number,
  ) {}

  /** Resolves the call's cost, USD. */
  succeeded(c: Completion): Promise<number> {
    return this.route.settle(this, c);
  }

  /** `counts`: the provider's fault (breaker failure); else the call said nothing about the provider. */
  abandoned(err: unknown, counts: boolean): Promise<void> {
    return this.route.abandon(this, err, counts);
  }
}
