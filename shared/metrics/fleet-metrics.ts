/**
 * The fleet's metrics facade: the semantic calls the worker makes (a job received, a provider call ended...) fanned
 * out to up to three sinks — Prometheus (always, for /metrics), Datadog and CloudWatch (when configured). The rule
 * this file keeps: metrics never fail a job. Every sink call is isolated; a sink that throws (or whose flush
 * fails) is counted in fleet_metrics_sink_errors_total and logged at most once a minute, and the job goes on.
 * Label values that come from outside the code (models, error codes) are capped so no input grows the series.
 */
import type { Logger } from "../logger.ts";

/** How a message's handling ended (worker/processor.ts returns it as its Outcome). */
export type JobOutcome = "succeeded" | "failed" | "expired" | "dead" | "poison" | "duplicate" | "leased" | "retry" | "released" | "conflict" | "deferred";
export type BreakerStateName = "closed" | "half-open" | "open";
export type HeartbeatResult = "ok" | "failed" | "lost";
export type DeleteResult = "ok" | "failed" | "given_up";

/** One provider call (one attempt; the router may make several for a job). */
export interface ProviderCallSample {
  provider: string;
  model: string;
  operation: "chat" | "text_completion";
  seconds: number;
  /** On success. */
  inputTokens?: number;
  outputTokens?: number;
  /** On failure: the error's stable code (OTel error.type). */
  errorType?: string;
  costUsd?: number;
}

/** Read when a sink samples gauges (a scrape, a flush): cheap, synchronous. */
export interface FleetGauges {
  inFlight: number;
  limit: number;
  breakers: { provider: string; state: BreakerStateName }[];
}

export interface FleetMetrics {
  jobReceived(queue: string, queueWaitSeconds?: number): void;
  /** `endToEndSeconds`: from SentTimestamp to the outcome. */
  jobFinished(outcome: JobOutcome, endToEndSeconds?: number): void;
  providerCall(call: ProviderCallSample): void;
  breakerTransition(provider: string, state: BreakerStateName): void;
  heartbeatExtensions(result: HeartbeatResult, count: number): void;
  deletes(result: DeleteResult, count: number): void;
  /** One batched store (or cache) write: its kind (claim, complete, ...), how many items, how long, whether it failed. */
  storeBatch(kind: string, size: number, seconds: number, ok: boolean): void;
  /** Where in-flight, limit and breaker gauges come from; the last one registered wins. */
  observe(read: () => FleetGauges): void;
  /** The Prometheus text for GET /metrics. */
  exposition(): { contentType: string; metrics(): Promise<string> };
  /** Flushes the push sinks and stops their timers; idempotent. */
  close(): Promise<void>;
}

/** What each sink implements: the semantic calls, already bounded. */
export type MetricsSink = Omit<FleetMetrics, "observe" | "exposition" | "close"> & { readonly name: string; close(): Promise<void> };

/** What a sink reads at sampling time; filled in by the facade. */
export interface SinkContext {
  gauges(): FleetGauges | undefined;
  sinkErrors(): ReadonlyMap<string, number>;
  /** An asynchronous failure (a flush): counted and logged like a thrown call. */
  onError(sink: string, err: unknown): void;
}

/** Longest a distinct model or error code list grows; past it values read `_OTHER` (OTel's fallback value). */
const MAX_LABEL_VALUES = 32;
const LOG_EVERY_MS = 60_000;

/** Keeps the first N distinct values of one label; later ones become `_OTHER`. */
class BoundedLabel {
  private readonly seen = new Set<string>();
  constructor(private readonly max = MAX_LABEL_VALUES) {}

  of(value: string): string {
    if (this.seen.has(value)) return value;
    if (this.seen.size >= this.max) return "_OTHER";
    this.seen.add(value);
    return value;
  }
}

/** A sink that also serves the Prometheus exposition. */
export type ExposingSink = MetricsSink & { exposition(): { contentType: string; metrics(): Promise<string> } };

export interface FanOutOptions {
  /** Prometheus first: it also serves the exposition. */
  prometheus: (ctx: SinkContext) => ExposingSink;
  others?: ((ctx: SinkContext) => MetricsSink)[];
  log: Pick<Logger, "warn">;
  now?: () => number;
}

/** The facade over its sinks (built by buildFleetMetrics; tests hand it a failing sink). */
export class FanOutMetrics implements FleetMetrics {
  private readonly prometheus: ExposingSink;
  private readonly sinks: MetricsSink[];
  private readonly errors = new Map<string, number>();
  private readonly lastLogged = new Map<string, { at: number; suppressed: number }>();
  private readonly models = new BoundedLabel();
  private readonly errorTypes = new BoundedLabel();
  private readonly kinds = new BoundedLabel(16);
  private readonly queues = new BoundedLabel(16);
  private readonly providers = new BoundedLabel(16);
  private readGauges: (() => FleetGauges) | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly o: FanOutOptions) {
    this.prometheus = o.prometheus(this.context);
    this.sinks = [this.prometheus, ...(o.others ?? []).map((make) => make(this.context))];
  }

  /** Handed to each sink at construction. */
  readonly context: SinkContext = {
    gauges: () => {
      try {
        return this.readGauges?.();
      } catch (err) {
        this.failed("gauges", err);
        return undefined;
      }
    },
    sinkErrors: () => this.errors,
    onError: (sink, err) => this.failed(sink, err),
  };

  jobReceived(queue: string, queueWaitSeconds?: number): void {
    const q = this.queues.of(queue);
    const wait = queueWaitSeconds === undefined || !(queueWaitSeconds >= 0) ? undefined : queueWaitSeconds;
    this.each((s) => s.jobReceived(q, wait));
  }

  jobFinished(outcome: JobOutcome, endToEndSeconds?: number): void {
    const e2e = endToEndSeconds === undefined || !(endToEndSeconds >= 0) ? undefined : endToEndSeconds;
    this.each((s) => s.jobFinished(outcome, e2e));
  }

  providerCall(call: ProviderCallSample): void {
    const bounded: ProviderCallSample = {
      ...call,
      provider: this.providers.of(call.provider),
      model: this.models.of(call.model),
      ...(call.errorType === undefined ? {} : { errorType: this.errorTypes.of(call.errorType) }),
    };
    this.each((s) => s.providerCall(bounded));
  }

  breakerTransition(provider: string, state: BreakerStateName): void {
    const p = this.providers.of(provider);
    this.each((s) => s.breakerTransition(p, state));
  }

  heartbeatExtensions(result: HeartbeatResult, count: number): void {
    if (count > 0) this.each((s) => s.heartbeatExtensions(result, count));
  }

  deletes(result: DeleteResult, count: number): void {
    if (count > 0) this.each((s) => s.deletes(result, count));
  }

  storeBatch(kind: string, size: number, seconds: number, ok: boolean): void {
    const k = this.kinds.of(kind);
    this.each((s) => s.storeBatch(k, size, seconds, ok));
  }

  observe(read: () => FleetGauges): void {
    this.readGauges = read;
  }

  exposition(): { contentType: string; metrics(): Promise<string> } {
    return this.prometheus.exposition();
  }

  close(): Promise<void> {
    this.closing ??= Promise.all(
      this.sinks.map(async (s) => {
        try {
          await s.close();
        } catch (err) {
          this.failed(s.name, err);
        }
      }),
    ).then(() => undefined);
    return this.closing;
  }

  private each(call: (sink: MetricsSink) => void): void {
    for (const sink of this.sinks) {
      try {
        call(sink);
      } catch (err) {
        this.failed(sink.name, err);
      }
    }
  }

  /** Counted always; logged once a minute per sink with how many were not logged since. */
  private failed(sink: string, err: unknown): void {
    this.errors.set(sink, (this.errors.get(sink) ?? 0) + 1);
    const now = this.o.now?.() ?? Date.now();
    const last = this.lastLogged.get(sink);
    if (last !== undefined && now - last.at < LOG_EVERY_MS) {
      last.suppressed += 1;
      return;
    }
    this.lastLogged.set(sink, { at: now, suppressed: 0 });
    const message = err instanceof Error ? err.message : String(err);
    this.o.log.warn({ sink, error: message.slice(0, 300), notLoggedSince: last?.suppressed ?? 0 }, "metrics sink failed (jobs are unaffected)");
  }
}

/** METRICS=off: every call is a no-op and /metrics is empty (the bench's baseline). */
export const NO_METRICS: FleetMetrics = {
  jobReceived: () => undefined,
  jobFinished: () => undefined,
  providerCall: () => undefined,
  breakerTransition: () => undefined,
  heartbeatExtensions: () => undefined,
  deletes: () => undefined,
  storeBatch: () => undefined,
  observe: () => undefined,
  exposition: () => ({ contentType: "text/plain; version=0.0.4; charset=utf-8", metrics: async () => "" }),
  close: async () => undefined,
};
