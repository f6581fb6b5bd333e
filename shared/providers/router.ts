/**
 * The provider router: one `Provider` in front of an ordered chain (default vLLM → Ollama → Gemini). The policy:
 * - a job starts at the primary, or at the accurate provider when its risk is "high", and walks the chain in order;
 * - a provider whose breaker is open, or that is over its hourly spend ceiling, is skipped at once, never waited on;
 * - a provider at its in-flight or rate limit is waited on only within the job's budget (and its `queueWaitMs`);
 * - a retryable failure retries the same provider after a full-jitter backoff, or after the provider's requested
 *   delay (Retry-After, Gemini retryDelay), while its breaker is closed, its attempts last and the wait fits the
 *   budget; a requested delay over `retryAfterCapMs` moves on at once;
 * - a failure that is the content's fault (terminal, or flagged `countsAgainstProvider === false`) ends the job:
 *   no other provider is tried, no breaker counts it; a provider's own refusal (daily quota spent, key refused)
 *   counts against it and moves the job on;
 * - when the chain runs out the job goes back to the queue as retryable: PROVIDER_CIRCUIT_OPEN when every provider
 *   turned it away unasked, else the last failure.
 * The worker pauses intake only while every provider is unavailable (`allOpen`, `waitAnyAvailable`, `onAllOpen`).
 */
import { ConfigError, errorCode, FleetError, isRetryable, ProviderRetryableError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { FleetMetrics } from "../metrics/fleet-metrics.ts";
import { Budget, fullJitterMs } from "./budget.ts";
import { systemClock, type Clock } from "./clock.ts";
import { DEFAULT_PRICES, type PriceTable } from "./prices.ts";
import { abortError, isAbortError, type CallAttempt, type Completion, type CompletionRequest, type Provider } from "./provider.ts";
import { Route, type RouteHealth, type RouteOptions, type SkipReason } from "./route.ts";
import { InProcessSpendLedger, type SpendLedger } from "./spend-ledger.ts";

export type { RouteHealth, RouteOptions };

export interface ProviderRouterOptions {
  /** The chain in fallback order, the primary first. Names unique; an unconfigured provider is simply left out. */
  routes: RouteOptions[];
  /** The route a `risk: "high"` request starts at. Default: the primary. */
  accurateRoute?: string;
  /** Longest one job spends in the router waiting and retrying, ms (the job's `deadlineAt` may end it sooner). Default 30,000. */
  budgetMs?: number;
  /** A requested retry delay over this moves on to the next provider instead of waiting, ms. Default 60,000. */
  retryAfterCapMs?: number;
  /** Full-jitter backoff between calls to one provider: base and cap, ms. Defaults 250 and 5,000. */
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** Consecutive retryable failures that open a provider's breaker. Default 3. */
  failureThreshold?: number;
  /** How long an open breaker rests before one probe call, ms. Default 60,000. */
  coolDownMs?: number;
  /** Completion tokens assumed for a request without `max_tokens` (rate limits, spend reservation). Default 1,024. */
  defaultMaxTokens?: number;
  /** USD per 1M tokens by provider and model. Default DEFAULT_PRICES (dated; see prices.ts). */
  prices?: PriceTable;
  /** Where hourly spend is counted. Default: in-process (this worker only); RedisSpendLedger for the fleet. */
  spendLedger?: SpendLedger;
  /** Told when every provider has become unavailable (the worker cuts its long polls). */
  onAllOpen?: () => void;
  log?: Pick<Logger, "warn" | "info">;
  clock?: Clock;
  /** Uniform in [0, 1): the backoff jitter. Default Math.random. */
  random?: () => number;
  /** Every provider call (duration, tokens, cost, error) and breaker transition. */
  metrics?: ProviderMetrics;
}

export type ProviderMetrics = Pick<FleetMetrics, "providerCall" | "breakerTransition">;

/** The idle probe: one token, named so a backend's logs (and the fault suite's audit) can tell it from a job. */
export const PROBE_REQUEST_ID = "circuit-probe";
const PROBE_REQUEST: CompletionRequest = { prompt: "ping", params: { max_tokens: 1 }, requestId: PROBE_REQUEST_ID };
/** How soon a probe turned away (another is out, no slot) is tried again, ms. */
const PROBE_RETRY_MS = 1_000;

export interface RouterHealth {
  allOpen: boolean;
  routes: RouteHealth[];
}

/** What one job's walk down the chain has seen so far. */
interface Walk {
  attempts: CallAttempt[];
  lastError?: unknown;
  skipped: SkipReason[];
}

export class ProviderRouter implements Provider {
  readonly name = "router";
  private readonly routes: Route[];
  private readonly highRiskChain: Route[];
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly ledger: SpendLedger;
  private readonly changed = new Set<() => void>();

  constructor(private readonly o: ProviderRouterOptions) {
    checkOptions(o);
    this.clock = o.clock ?? systemClock;
    this.random = o.random ?? Math.random;
    this.ledger = o.spendLedger ?? new InProcessSpendLedger();
    const context = {
      clock: this.clock,
      prices: o.prices ?? DEFAULT_PRICES,
      ledger: this.ledger,
      defaultMaxTokens: o.defaultMaxTokens ?? 1_024,
      failureThreshold: o.failureThreshold ?? 3,
      coolDownMs: o.coolDownMs ?? 60_000,
      log: o.log,
      onUnavailable: () => {
        if (this.allOpen) o.onAllOpen?.();
      },
      onChange: () => this.notify(),
      metrics: o.metrics,
    };
    this.routes = o.routes.map((r) => new Route(r, context));
    const accurate = this.routes.find((r) => r.name === o.accurateRoute);
    this.highRiskChain = accurate === undefined ? this.routes : [accurate, ...this.routes.filter((r) => r !== accurate)];
  }

  async generate(req: CompletionRequest, signal?: AbortSignal): Promise<Completion> {
    const startedAt = this.clock.now();
    const budget = new Budget(this.clock, Math.min(startedAt + (this.o.budgetMs ?? 30_000), req.deadlineAt ?? Infinity));
    const walk: Walk = { attempts: [], skipped: [] };
    for (const route of req.risk === "high" ? this.highRiskChain : this.routes) {
      const answer = await this.tryRoute(route, req, budget, signal, walk);
      if (answer !== undefined) return { ...answer, latencyMs: this.clock.now() - startedAt, attempts: walk.attempts };
    }
    // An abort while waiting for capacity ends the walk as a skip; it is still the caller's abort.
    if (signal?.aborted) throw abortError(signal.reason);
    throw this.exhausted(walk);
  }

  /** Calls one provider until it answers (resolves), the job must move on (undefined), or the job ends (throws). */
  private async tryRoute(route: Route, req: CompletionRequest, budget: Budget, signal: AbortSignal | undefined, walk: Walk): Promise<Completion | undefined> {
    for (let attempt = 0; attempt < route.maxAttempts && !budget.spent; attempt++) {
      if (signal?.aborted) throw abortError(signal.reason);
      const { permit, skipped } = await route.admit(req, budget, signal);
      if (skipped !== undefined) {
        walk.skipped.push(skipped);
        return undefined;
      }
      const calledAt = this.clock.now();
      try {
        const completion = await route.provider.generate(req, signal);
        const latencyMs = this.clock.now() - calledAt;
        walk.attempts.push({ provider: route.name, ok: true, latencyMs });
        const costUsd = await permit.succeeded(completion);
        this.record(route, req, latencyMs, completion, costUsd);
        return { ...completion, costUsd };
      } catch (err) {
        const latencyMs = this.clock.now() - calledAt;
        walk.attempts.push({ provider: route.name, ok: false, code: errorCode(err), latencyMs });
        this.record(route, req, latencyMs, err);
        const cancelled = signal?.aborted === true;
        const providersFault = !cancelled && countsAgainstProvider(err);
        await permit.abandoned(err, providersFault);
        if (cancelled) throw isAbortError(err) ? err : abortError(signal?.reason);
        if (!providersFault) throw err;
        walk.lastError = err;
        if (isProviderRefusal(err)) return undefined; // asking again cannot help: the next provider
        const wait = this.retryDelayMs(err, attempt);
        if (wait === undefined || !budget.fits(wait) || route.breaker.state !== "closed") return undefined;
        await this.clock.sleep(wait, signal);
      }
    }
    return undefined;
  }

  /** The provider's requested delay, else backoff; undefined when the requested delay is over the cap. */
  private retryDelayMs(err: unknown, attempt: number): number | undefined {
    const requested = err instanceof FleetError ? err.retryAfterMs : undefined;
    if (requested === undefined) return fullJitterMs(attempt, this.o.backoffBaseMs ?? 250, this.o.backoffCapMs ?? 5_000, this.random);
    return requested <= (this.o.retryAfterCapMs ?? 60_000) ? requested : undefined;
  }

  /** The error a job leaves with when no provider answered; always retryable, so the job goes back to the queue. */
  private exhausted(walk: Walk): Error {
    const { lastError } = walk;
    if (lastError instanceof FleetError && lastError.retryable) return lastError;
    if (lastError !== undefined) {
      return new ProviderRetryableError("PROVIDER_UNAVAILABLE", `every provider failed; last: ${errorCode(lastError)}`, { cause: lastError });
    }
    if (walk.skipped.length > 0 && walk.skipped.every((s) => s !== "busy")) {
      const wait = this.availableInMs;
      return new ProviderRetryableError("PROVIDER_CIRCUIT_OPEN", "every provider is open or over its spend ceiling: job handed back without a call", {
        retryAfterMs: Number.isFinite(wait) ? wait : undefined,
      });
    }
    // Every provider was at its limits, or the budget ended before a call could start.
    return new ProviderRetryableError("PROVIDER_OVERLOADED", "no provider had capacity within the job's budget");
  }

  /** Every provider turns calls away at once (open, probing or over its ceiling): pause intake. */
  get allOpen(): boolean {
    return this.routes.every((r) => r.unavailable);
  }

  /**
   * Resolves once some provider is closed. Meanwhile every provider whose cool-down has ended is probed with a
   * one-token generation: a worker that takes no work while recovering spends no job (and no job's delivery) on a
   * probe. Costs a paid provider one token per cool-down.
   */
  async waitAnyClosed(signal: AbortSignal): Promise<void> {
    while (!signal.aborted && this.recovering) {
      const ready = this.routes.find((r) => r.breaker.state === "half-open" && r.breaker.admitting);
      if (ready === undefined || !(await this.probe(ready, signal))) await this.waitAnyAvailableOr(signal, PROBE_RETRY_MS);
    }
  }

  /** One synthetic probe; false when the route turned it away (a probe already out, over its ceiling, no slot). */
  private async probe(route: Route, signal: AbortSignal): Promise<boolean> {
    const budget = new Budget(this.clock, this.clock.now() + (this.o.budgetMs ?? 30_000));
    const { permit } = await route.admit(PROBE_REQUEST, budget, signal);
    if (permit === undefined) return false;
    const calledAt = this.clock.now();
    try {
      const completion = await route.provider.generate(PROBE_REQUEST, signal);
      const latencyMs = this.clock.now() - calledAt;
      this.record(route, PROBE_REQUEST, latencyMs, completion, await permit.succeeded(completion));
    } catch (err) {
      this.record(route, PROBE_REQUEST, this.clock.now() - calledAt, err);
      await permit.abandoned(err, !signal.aborted && countsAgainstProvider(err));
    }
    return true;
  }

  /** One call to the metrics: an answer (tokens, cost) or a failure (its code; `cancelled` for an abort). */
  private record(route: Route, req: CompletionRequest, latencyMs: number, result: Completion | unknown, costUsd?: number): void {
    const metrics = this.o.metrics;
    if (metrics === undefined) return;
    const call = {
      provider: route.name,
      model: req.model ?? route.o.model ?? "default",
      operation: req.messages === undefined ? ("text_completion" as const) : ("chat" as const),
      seconds: latencyMs / 1000,
    };
    if (costUsd === undefined) metrics.providerCall({ ...call, errorType: isAbortError(result) ? "cancelled" : errorCode(result) });
    else {
      const c = result as Completion;
      metrics.providerCall({ ...call, inputTokens: c.promptTokens, outputTokens: c.completionTokens, costUsd });
    }
  }

  /** waitAnyAvailable, but back after `ms` at the latest (a probe turned away is tried again then). */
  private async waitAnyAvailableOr(signal: AbortSignal, ms: number): Promise<void> {
    const wake = new AbortController();
    const onStop = () => wake.abort();
    signal.addEventListener("abort", onStop, { once: true });
    try {
      await Promise.race([this.waitAnyAvailable(wake.signal), this.clock.sleep(ms, wake.signal).catch(() => undefined)]);
    } finally {
      signal.removeEventListener("abort", onStop);
      wake.abort();
    }
  }

  /** No provider is closed: at most probes can be made (every provider open or half-open). */
  get recovering(): boolean {
    return this.routes.every((r) => r.breaker.state !== "closed");
  }

  /** Ms until some provider could take a call again (0 if one can now; Infinity while only probes decide). */
  get availableInMs(): number {
    return Math.min(...this.routes.map((r) => r.availableInMs));
  }

  /** Resolves once some provider is available (a cool-down ended, a probe freed, a new hour), or `signal` aborts. */
  async waitAnyAvailable(signal: AbortSignal): Promise<void> {
    while (!signal.aborted && this.allOpen) {
      const wake = new AbortController();
      const onChange = () => wake.abort();
      const onStop = () => wake.abort();
      this.changed.add(onChange);
      signal.addEventListener("abort", onStop, { once: true });
      const wait = this.availableInMs;
      try {
        await (Number.isFinite(wait) ? this.clock.sleep(wait, wake.signal) : new Promise((resolve) => wake.signal.addEventListener("abort", resolve, { once: true })));
      } finally {
        this.changed.delete(onChange);
        signal.removeEventListener("abort", onStop);
        wake.abort();
      }
    }
  }

  health(): RouterHealth {
    return { allOpen: this.allOpen, routes: this.routes.map((r) => r.health()) };
  }

  /** Closes every provider and the spend ledger. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.routes.map((r) => r.provider.close()), this.ledger.close?.()]);
  }

  private notify(): void {
    for (const wake of [...this.changed]) wake();
  }
}

/**
 * A failure the provider is to blame for: retryable (server down, overloaded, timing out) and not flagged by the
 * provider as the content's fault (a Gemini safety block sets `countsAgainstProvider: false`).
 */
export function countsAgainstProvider(err: unknown): boolean {
  return (isRetryable(err) || isProviderRefusal(err)) && (err as { countsAgainstProvider?: unknown } | null)?.countsAgainstProvider !== false;
}

/** Terminal for this provider, not for the job: its quota for today is spent, or it refuses our key. */
const PROVIDER_REFUSALS = new Set(["PROVIDER_QUOTA_EXHAUSTED", "PROVIDER_AUTH"]);

function isProviderRefusal(err: unknown): boolean {
  return PROVIDER_REFUSALS.has(errorCode(err));
}

function checkOptions(o: ProviderRouterOptions): void {
  const issues: string[] = [];
  if (o.routes.length === 0) issues.push("router: no provider configured");
  const names = o.routes.map((r) => r.name ?? r.provider.name);
  // Unique names make the chain a list: no provider can be reached twice, so no fallback cycle.
  for (const dup of new Set(names.filter((n, i) => names.indexOf(n) !== i))) issues.push(`router: provider "${dup}" appears twice in the chain`);
  if (o.accurateRoute !== undefined && !names.includes(o.accurateRoute)) issues.push(`router: accurate provider "${o.accurateRoute}" is not in the chain`);
  for (const [i, r] of o.routes.entries()) {
    if (!(Number.isInteger(r.maxInFlight) && r.maxInFlight > 0)) issues.push(`router: ${names[i]} maxInFlight must be a positive integer`);
    for (const key of ["requestsPerMinute", "tokensPerMinute", "spendCeilingUsdPerHour", "maxAttempts"] as const) {
      const v = r[key];
      if (v !== undefined && !(v > 0)) issues.push(`router: ${names[i]} ${key} must be positive`);
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
}
