/**
 * The Datadog sink: the same series as Prometheus, aggregated in process by `datadog-metrics` and sent every flush
 * interval to Datadog's v1 series API, tagged env, service, version (and provider, model... per series). The HTTP
 * call is our own small reporter, not the library's: it takes an API root (DATADOG_API_URL, for a proxy or a local
 * stand-in; else https://api.<DATADOG_SITE>), reads the key per request (a Secrets Manager rotation applies), and
 * its errors never carry the key.
 */
import type datadogMetrics from "datadog-metrics";
import type { BreakerStateName, DeleteResult, HeartbeatResult, JobOutcome, MetricsSink, ProviderCallSample, SinkContext } from "./fleet-metrics.ts";
import { BREAKER_STATE_VALUE } from "./prometheus-sink.ts";

export interface DatadogSinkOptions {
  /**
   * The `datadog-metrics` module, imported by the caller only when Datadog is configured: importing it costs a
   * process ~118 MB of RSS, and a bundle would hoist a static import of it into every worker.
   */
  lib: typeof datadogMetrics;
  /** Read per request. */
  apiKey: () => string;
  /** e.g. https://api.datadoghq.eu, or a local stand-in's http://127.0.0.1:port. */
  apiUrl: string;
  tags: { env: string; service: string; version?: string };
  flushIntervalMs: number;
  /** Per request, ms. Default 10,000. */
  timeoutMs?: number;
}

/** Datadog's per-flush histogram figures: enough for averages, totals and tail latency. */
const HISTOGRAM = { aggregates: ["avg", "count", "max", "sum"], percentiles: [0.5, 0.95, 0.99] };

export class DatadogSink implements MetricsSink {
  readonly name = "datadog";
  private readonly logger: InstanceType<typeof datadogMetrics.BufferedMetricsLogger>;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly ctx: SinkContext,
    o: DatadogSinkOptions,
  ) {
    const tags = [`env:${o.tags.env}`, `service:${o.tags.service}`, ...(o.tags.version === undefined ? [] : [`version:${o.tags.version}`])];
    this.logger = new o.lib.BufferedMetricsLogger({
      reporter: new SeriesReporter(o.apiUrl, o.apiKey, o.timeoutMs ?? 10_000),
      defaultTags: tags,
      // Flushed by our timer, which samples the gauges first.
      flushIntervalSeconds: 0,
      histogram: HISTOGRAM,
      onError: (err) => ctx.onError(this.name, err),
    });
    this.timer = setInterval(() => void this.flush(), o.flushIntervalMs);
    this.timer.unref();
  }

  jobReceived(queue: string, queueWaitSeconds?: number): void {
    this.logger.increment("fleet.jobs.received", 1, [`queue:${queue}`]);
    if (queueWaitSeconds !== undefined) this.logger.histogram("fleet.queue.wait", queueWaitSeconds, [`queue:${queue}`]);
  }

  jobFinished(outcome: JobOutcome, endToEndSeconds?: number): void {
    this.logger.increment("fleet.jobs.finished", 1, [`outcome:${outcome}`]);
    if (endToEndSeconds !== undefined) this.logger.histogram("fleet.job.end_to_end", endToEndSeconds, [`outcome:${outcome}`]);
  }

  providerCall(c: ProviderCallSample): void {
    const tags = [`provider:${c.provider}`, `model:${c.model}`, `operation:${c.operation}`];
    if (c.errorType !== undefined) {
      this.logger.histogram("gen_ai.client.operation.duration", c.seconds, [...tags, `error_type:${c.errorType}`]);
      this.logger.increment("fleet.provider.errors", 1, [`provider:${c.provider}`, `error_type:${c.errorType}`]);
      return;
    }
    this.logger.histogram("gen_ai.client.operation.duration", c.seconds, tags);
    if (c.inputTokens !== undefined) this.logger.histogram("gen_ai.client.token.usage", c.inputTokens, [...tags, "token_type:input"]);
    if (c.outputTokens !== undefined) this.logger.histogram("gen_ai.client.token.usage", c.outputTokens, [...tags, "token_type:output"]);
    if (c.costUsd !== undefined) this.logger.increment("fleet.provider.cost_usd", c.costUsd, [`provider:${c.provider}`, `model:${c.model}`]);
  }

  breakerTransition(provider: string, state: BreakerStateName): void {
    this.logger.increment("fleet.provider.breaker_transitions", 1, [`provider:${provider}`, `state:${state}`]);
  }

  heartbeatExtensions(result: HeartbeatResult, count: number): void {
    this.logger.increment("fleet.heartbeat.extensions", count, [`result:${result}`]);
  }

  deletes(result: DeleteResult, count: number): void {
    this.logger.increment("fleet.deletes", count, [`result:${result}`]);
  }

  storeBatch(kind: string, size: number, seconds: number, ok: boolean): void {
    this.logger.histogram("fleet.store.batch_size", size, [`kind:${kind}`]);
    this.logger.histogram("fleet.store.batch_duration", seconds, [`kind:${kind}`, `result:${ok ? "ok" : "failed"}`]);
  }

  /** Samples the gauges and sends what was gathered; failures go to the facade (onError), never reject. */
  flush(): Promise<void> {
    const g = this.ctx.gauges();
    if (g !== undefined) {
      this.logger.gauge("fleet.jobs.in_flight", g.inFlight);
      this.logger.gauge("fleet.concurrency.limit", g.limit);
      for (const b of g.breakers) this.logger.gauge("fleet.provider.breaker_state", BREAKER_STATE_VALUE[b.state], [`provider:${b.provider}`]);
    }
    return this.logger.flush().then(
      () => undefined,
      () => undefined,
    );
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}

/** POST /api/v1/series with the DD-API-KEY header: what datadog-metrics' own reporter sends, to a configurable root. */
class SeriesReporter {
  constructor(
    private readonly apiUrl: string,
    private readonly apiKey: () => string,
    private readonly timeoutMs: number,
  ) {}

  async report(series: unknown[]): Promise<void> {
    const res = await fetch(new URL("/api/v1/series", this.apiUrl), {
      method: "POST",
      headers: { "content-type": "application/json", "dd-api-key": this.apiKey() },
      body: JSON.stringify({ series }),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    await res.arrayBuffer().catch(() => undefined);
    // Status only: the body may echo the request, and the request carries the key in a header.
    if (!res.ok) throw new Error(`Datadog series API answered HTTP ${res.status}`);
  }
}
