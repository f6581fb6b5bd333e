/**
 * vLLM V1's Prometheus metrics (names, types, buckets as vLLM exports them), all labelled with `model_name` and
 * `engine` (the engine core's index: always "0" here, one engine). One registry per simulator so several can run in
 * one process. Gauges are read from the engine at scrape time; counters and the iteration-tokens histogram advance
 * once per step; per-request histograms are observed when a request finishes. Times are simulated seconds (what the
 * real server would report), whatever the time scale.
 */
import { Counter, Gauge, Histogram, Registry, type MetricValueWithName } from "prom-client";
import type { EngineObserver, SequenceResult, StepReport } from "./engine.ts";

const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560];
const ITL_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const REQUEST_BUCKETS = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680];
const ITERATION_TOKEN_BUCKETS = [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384];
/** The single engine core's index, vLLM's `engine` label. */
const ENGINE_INDEX = "0";

/** vLLM's build_1_2_5_buckets: 1, 2, 5, 10, 20, 50, … up to `max`. */
export function buckets125(max: number): number[] {
  const out: number[] = [];
  for (let exponent = 1; ; exponent *= 10) {
    for (const m of [1, 2, 5]) {
      if (m * exponent > max) return out;
      out.push(m * exponent);
    }
  }
}

/** What the gauges read. */
export interface EngineGauges {
  readonly numRunning: number;
  readonly numWaiting: number;
  readonly kvUsage: number;
}

export class SimulatorMetrics implements EngineObserver {
  readonly registry = new Registry();
  readonly contentType = this.registry.contentType;
  private readonly promptTokens;
  private readonly generationTokens;
  private readonly preemptions;
  private readonly prefixQueries;
  private readonly prefixHits;
  private readonly success;
  private readonly ttft;
  private readonly e2e;
  private readonly queueTime;
  private readonly prefillTime;
  private readonly decodeTime;
  private readonly inferenceTime;
  private readonly requestPromptTokens;
  private readonly requestGenerationTokens;
  private readonly iterationTokens;
  private readonly itl;

  constructor(
    private readonly modelName: string,
    gauges: () => EngineGauges | undefined,
    maxModelLen: number,
  ) {
    const labels = { model_name: modelName, engine: ENGINE_INDEX };
    const labelNames = ["model_name", "engine"];
    const registers = [this.registry];
    const gauge = (name: string, help: string, read: (g: EngineGauges) => number) =>
      new Gauge({
        name,
        help,
        labelNames,
        registers,
        collect() {
          const g = gauges();
          this.set(labels, g === undefined ? 0 : read(g));
        },
      });
    gauge("vllm:num_requests_running", "Number of requests in model execution batches.", (g) => g.numRunning);
    gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", (g) => g.numWaiting);
    gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", (g) => g.kvUsage);
    // Every series exists from the start at zero, as in vLLM, so rate() and dashboards work before traffic.
    const counter = (name: string, help: string) => {
      const child = new Counter({ name, help, labelNames, registers }).labels(labels);
      child.inc(0);
      return child;
    };
    this.promptTokens = counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.");
    this.generationTokens = counter("vllm:generation_tokens_total", "Number of generation tokens processed.");
    this.preemptions = counter("vllm:num_preemptions_total", "Cumulative number of preemption from the engine.");
    this.prefixQueries = counter("vllm:prefix_cache_queries_total", "Prefix cache queries, in terms of number of queried tokens.");
    this.prefixHits = counter("vllm:prefix_cache_hits_total", "Prefix cache hits, in terms of number of cached tokens.");
    this.success = new Counter({
      name: "vllm:request_success_total",
      help: "Count of successfully processed requests.",
      labelNames: [...labelNames, "finished_reason"],
      registers,
    });
    for (const reason of ["stop", "length", "abort"]) this.success.inc({ ...labels, finished_reason: reason }, 0);
    const histogram = (name: string, help: string, buckets: number[]) => {
      const metric = new Histogram({ name, help, buckets, labelNames, registers });
      metric.zero(labels);
      return metric.labels(labels);
    };
    this.ttft = histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", TTFT_BUCKETS);
    this.e2e = histogram("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", REQUEST_BUCKETS);
    this.queueTime = histogram("vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.", REQUEST_BUCKETS);
    this.prefillTime = histogram("vllm:request_prefill_time_seconds", "Histogram of time spent in PREFILL phase for request.", REQUEST_BUCKETS);
    this.decodeTime = histogram("vllm:request_decode_time_seconds", "Histogram of time spent in DECODE phase for request.", REQUEST_BUCKETS);
    this.inferenceTime = histogram("vllm:request_inference_time_seconds", "Histogram of time spent in RUNNING phase for request.", REQUEST_BUCKETS);
    const tokenBuckets = buckets125(maxModelLen);
    this.requestPromptTokens = histogram("vllm:request_prompt_tokens", "Number of prefill tokens processed.", tokenBuckets);
    this.requestGenerationTokens = histogram("vllm:request_generation_tokens", "Number of generation tokens processed.", tokenBuckets);
    this.iterationTokens = histogram("vllm:iteration_tokens_total", "Histogram of number of tokens per engine_step.", ITERATION_TOKEN_BUCKETS);
    this.itl = new CountedHistogram("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", ITL_BUCKETS, labels);
    // prom-client's registry only calls get()/reset() and reads name/type; the cast is to its Metric union.
    this.registry.registerMetric(this.itl as unknown as Histogram);
  }

  async render(): Promise<string> {
    return this.registry.metrics();
  }

  onStep(step: StepReport): void {
    if (step.generationTokens > 0) this.generationTokens.inc(step.generationTokens);
    if (step.promptTokens > 0) this.promptTokens.inc(step.promptTokens);
    if (step.itlCount > 0) this.itl.observe(step.durationMs / 1000, step.itlCount);
    if (step.scheduledTokens > 0) this.iterationTokens.observe(step.scheduledTokens);
  }

  onPrefixLookup(queriedTokens: number, hitTokens: number): void {
    this.prefixQueries.inc(queriedTokens);
    if (hitTokens > 0) this.prefixHits.inc(hitTokens);
  }

  onInterTokenLatency(ms: number): void {
    this.itl.observe(ms / 1000, 1);
  }

  onPreemption(): void {
    this.preemptions.inc();
  }

  onFinish(result: SequenceResult): void {
    if (result.outcome === "error") return;
    this.success.inc({ model_name: this.modelName, engine: ENGINE_INDEX, finished_reason: result.outcome });
    if (result.outcome === "abort") return;
    this.ttft.observe(result.ttftMs / 1000);
    this.e2e.observe(result.e2eMs / 1000);
    this.queueTime.observe(result.queueMs / 1000);
    this.prefillTime.observe(Math.max(0, result.prefillMs) / 1000);
    this.decodeTime.observe(Math.max(0, result.decodeMs) / 1000);
    this.inferenceTime.observe(Math.max(0, result.inferenceMs) / 1000);
    this.requestPromptTokens.observe(result.promptTokens);
    this.requestGenerationTokens.observe(result.outputTokens);
  }
}

/**
 * A histogram that takes a count with each observation: every decoding sequence in a step shares one inter-token
 * latency (the step's duration), so a step is one call instead of one per token.
 */
class CountedHistogram {
  readonly type = "histogram";
  readonly aggregator = "sum";
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly upperBounds: number[],
    private readonly labels: Record<string, string>,
  ) {
    this.counts = new Array<number>(upperBounds.length + 1).fill(0);
  }

  observe(value: number, times: number): void {
    let i = 0;
    while (i < this.upperBounds.length && value > this.upperBounds[i]!) i++;
    this.counts[i]! += times;
    this.sum += value * times;
    this.count += times;
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }

  /** The shape prom-client's registry formats (its typings declare `type` as an enum, at runtime it is this string). */
  async get() {
    const values: MetricValueWithName<string>[] = [];
    let cumulative = 0;
    this.upperBounds.forEach((le, i) => {
      cumulative += this.counts[i]!;
      values.push({ metricName: `${this.name}_bucket`, labels: { ...this.labels, le }, value: cumulative });
    });
    values.push({ metricName: `${this.name}_bucket`, labels: { ...this.labels, le: "+Inf" }, value: this.count });
    values.push({ metricName: `${this.name}_sum`, labels: this.labels, value: this.sum });
    values.push({ metricName: `${this.name}_count`, labels: this.labels, value: this.count });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
