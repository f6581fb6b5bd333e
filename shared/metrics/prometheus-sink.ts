/**
 * The Prometheus sink: its own Registry (never prom-client's global one, so two facades in one process — tests, the
 * API beside a worker — do not collide), Node's default process metrics, the OpenTelemetry GenAI client metrics in
 * Prometheus form, and the fleet's own under `fleet_`. Gauges are read at scrape time from the facade's source.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { BreakerStateName, DeleteResult, HeartbeatResult, JobOutcome, MetricsSink, ProviderCallSample, SinkContext } from "./fleet-metrics.ts";

/** OTel semantic conventions' advised boundaries for gen_ai.client.token.usage (powers of 4). */
export const GEN_AI_TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
/** ...and for gen_ai.client.operation.duration (seconds, doubling from 10 ms). */
export const GEN_AI_DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
/** Queue wait and end-to-end latency: a job may wait seconds in a busy queue or an hour behind an outage. */
const JOB_SECONDS_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
const BATCH_SIZE_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500];
const BATCH_SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** fleet_provider_breaker_state's values. */
export const BREAKER_STATE_VALUE: Record<BreakerStateName, number> = { closed: 0, "half-open": 1, open: 2 };

export class PrometheusSink implements MetricsSink {
  readonly name = "prometheus";
  readonly registry = new Registry();
  private readonly tokens;
  private readonly duration;
  private readonly received;
  private readonly finished;
  private readonly queueWait;
  private readonly endToEnd;
  private readonly providerErrors;
  private readonly cost;
  private readonly transitions;
  private readonly heartbeats;
  private readonly deleted;
  private readonly batchSize;
  private readonly batchSeconds;

  constructor(ctx: SinkContext, o: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (o.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.tokens = new Histogram({
      name: "gen_ai_client_token_usage",
      help: "Tokens per provider call (OTel gen_ai.client.token.usage), by gen_ai_token_type input or output",
      labelNames: ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_token_type"] as const,
      buckets: GEN_AI_TOKEN_BUCKETS,
      registers,
    });
    this.duration = new Histogram({
      name: "gen_ai_client_operation_duration_seconds",
      help: "Provider call duration (OTel gen_ai.client.operation.duration); error_type set on failure",
      labelNames: ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "error_type"] as const,
      buckets: GEN_AI_DURATION_BUCKETS,
      registers,
    });
    this.received = new Counter({ name: "fleet_jobs_received_total", help: "Messages received, by queue", labelNames: ["queue"] as const, registers });
    this.finished = new Counter({
      name: "fleet_jobs_finished_total",
      help: "Messages handled, by outcome (succeeded, failed, dead, expired; retry, released, duplicate... for redelivered or handed-back ones)",
      labelNames: ["outcome"] as const,
      registers,
    });
    this.queueWait = new Histogram({ name: "fleet_queue_wait_seconds", help: "SQS SentTimestamp to the job's start", labelNames: ["queue"] as const, buckets: JOB_SECONDS_BUCKETS, registers });
    this.endToEnd = new Histogram({ name: "fleet_job_end_to_end_seconds", help: "SQS SentTimestamp to the job's outcome", labelNames: ["outcome"] as const, buckets: JOB_SECONDS_BUCKETS, registers });
    new Gauge({
      name: "fleet_jobs_in_flight",
      help: "Messages this worker holds now",
      registers,
      collect() {
        this.set(ctx.gauges()?.inFlight ?? 0);
      },
    });
    new Gauge({
      name: "fleet_concurrency_limit",
      help: "This worker's current concurrency limit (adaptive)",
      registers,
      collect() {
        this.set(ctx.gauges()?.limit ?? 0);
      },
    });
    this.providerErrors = new Counter({ name: "fleet_provider_errors_total", help: "Failed provider calls, by error code", labelNames: ["provider", "error_type"] as const, registers });
    this.cost = new Counter({ name: "fleet_provider_cost_usd_total", help: "What answered provider calls cost, USD (price table; 0 self-hosted)", labelNames: ["provider", "model"] as const, registers });
    new Gauge({
      name: "fleet_provider_breaker_state",
      help: "Each provider's circuit breaker: 0 closed, 1 half-open, 2 open",
      labelNames: ["provider"] as const,
      registers,
      collect() {
        for (const b of ctx.gauges()?.breakers ?? []) this.set({ provider: b.provider }, BREAKER_STATE_VALUE[b.state]);
      },
    });
    this.transitions = new Counter({ name: "fleet_provider_breaker_transitions_total", help: "Breaker transitions, by the state entered", labelNames: ["provider", "state"] as const, registers });
    this.heartbeats = new Counter({ name: "fleet_heartbeat_extensions_total", help: "Visibility extensions: ok, failed (retried next beat), lost (not ours any more)", labelNames: ["result"] as const, registers });
    this.deleted = new Counter({ name: "fleet_deletes_total", help: "Message deletes: ok, failed (retried), given_up", labelNames: ["result"] as const, registers });
    this.batchSize = new Histogram({ name: "fleet_store_batch_size", help: "Items per batched store or cache write", labelNames: ["kind"] as const, buckets: BATCH_SIZE_BUCKETS, registers });
    this.batchSeconds = new Histogram({ name: "fleet_store_batch_duration_seconds", help: "Batched store or cache write latency", labelNames: ["kind", "result"] as const, buckets: BATCH_SECONDS_BUCKETS, registers });
    new Counter({
      name: "fleet_metrics_sink_errors_total",
      help: "Metrics calls or flushes that failed, by sink (jobs are unaffected)",
      labelNames: ["sink"] as const,
      registers,
      collect() {
        this.reset();
        for (const [sink, n] of ctx.sinkErrors()) this.inc({ sink }, n);
      },
    });
  }

  jobReceived(queue: string, queueWaitSeconds?: number): void {
    this.received.inc({ queue });
    if (queueWaitSeconds !== undefined) this.queueWait.observe({ queue }, queueWaitSeconds);
  }

  jobFinished(outcome: JobOutcome, endToEndSeconds?: number): void {
    this.finished.inc({ outcome });
    if (endToEndSeconds !== undefined) this.endToEnd.observe({ outcome }, endToEndSeconds);
  }

  providerCall(c: ProviderCallSample): void {
    const base = { gen_ai_operation_name: c.operation, gen_ai_provider_name: c.provider, gen_ai_request_model: c.model };
    if (c.errorType !== undefined) {
      this.duration.observe({ ...base, error_type: c.errorType }, c.seconds);
      this.providerErrors.inc({ provider: c.provider, error_type: c.errorType });
      return;
    }
    this.duration.observe(base, c.seconds);
    if (c.inputTokens !== undefined) this.tokens.observe({ ...base, gen_ai_token_type: "input" }, c.inputTokens);
    if (c.outputTokens !== undefined) this.tokens.observe({ ...base, gen_ai_token_type: "output" }, c.outputTokens);
    if (c.costUsd !== undefined) this.cost.inc({ provider: c.provider, model: c.model }, c.costUsd);
  }

  breakerTransition(provider: string, state: BreakerStateName): void {
    this.transitions.inc({ provider, state });
  }

  heartbeatExtensions(result: HeartbeatResult, count: number): void {
    this.heartbeats.inc({ result }, count);
  }

  deletes(result: DeleteResult, count: number): void {
    this.deleted.inc({ result }, count);
  }

  storeBatch(kind: string, size: number, seconds: number, ok: boolean): void {
    this.batchSize.observe({ kind }, size);
    this.batchSeconds.observe({ kind, result: ok ? "ok" : "failed" }, seconds);
  }

  exposition(): { contentType: string; metrics(): Promise<string> } {
    return { contentType: this.registry.contentType, metrics: () => this.registry.metrics() };
  }

  async close(): Promise<void> {
    // Nothing to flush: Prometheus pulls.
  }
}
