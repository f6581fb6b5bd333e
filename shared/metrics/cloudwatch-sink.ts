/**
 * The CloudWatch sink: this worker's figures, aggregated over each flush interval and sent with PutMetricData
 * (≤ 1,000 datums a request), plus the two scaling figures every worker computes from the same queue view:
 *   BacklogPerInstance  = visible messages ÷ in-service workers (AWS's recommended target-tracking metric for SQS)
 *   InFlightPerInstance = in-flight messages ÷ in-service workers
 * Their sum is terraform's metric-math "(visible + in flight) / in service", so target_tracking_metric = "published"
 * keeps target_backlog_per_instance's meaning. Every worker publishes the same value; read it with Average.
 * Dimensions: AutoScalingGroupName when the worker knows its group, else Service. Costs nothing per job: a flush is
 * one request per 1,000 datums and one GetQueueAttributes per queue (+ one DescribeAutoScalingGroups).
 */
import { CloudWatchClient, PutMetricDataCommand, type Dimension, type MetricDatum, type StandardUnit } from "@aws-sdk/client-cloudwatch";
import type { BreakerStateName, DeleteResult, HeartbeatResult, JobOutcome, MetricsSink, ProviderCallSample, SinkContext } from "./fleet-metrics.ts";

export const BACKLOG_PER_INSTANCE = "BacklogPerInstance";
export const IN_FLIGHT_PER_INSTANCE = "InFlightPerInstance";
/** PutMetricData's limit of datums per request. */
const MAX_DATUMS = 1000;
/** Outcomes published as their own count, continuous (zero when none) so alarms have data. */
const COUNTED_OUTCOMES: Partial<Record<JobOutcome, string>> = { succeeded: "JobsSucceeded", failed: "JobsFailed", dead: "JobsDead", expired: "JobsExpired" };

export interface CloudWatchSinkOptions {
  namespace: string;
  region: string;
  /** Endpoint override (a local stand-in, a VPC endpoint). */
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** AutoScalingGroupName dimension when set, else Service. */
  groupName?: string;
  service: string;
  flushIntervalMs: number;
  /** Visible and in-flight messages over every queue this worker serves; unset: no scaling figures (not a worker). */
  queueDepth?: () => Promise<{ visible: number; inFlight: number }>;
  /** Workers in service (the Auto Scaling group's InService instances); unset: 1, this worker. */
  inService?: () => Promise<number>;
}

interface Stat {
  name: string;
  unit: StandardUnit;
  dimensions: Dimension[];
  count: number;
  sum: number;
  min: number;
  max: number;
}

interface Total {
  name: string;
  unit: StandardUnit;
  dimensions: Dimension[];
  value: number;
}

export class CloudWatchSink implements MetricsSink {
  readonly name = "cloudwatch";
  private readonly client: CloudWatchClient;
  private readonly base: Dimension[];
  private readonly timer: NodeJS.Timeout;
  private totals = new Map<string, Total>();
  private stats = new Map<string, Stat>();
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly ctx: SinkContext,
    private readonly o: CloudWatchSinkOptions,
  ) {
    this.client = new CloudWatchClient({
      region: o.region,
      ...(o.endpoint === undefined ? {} : { endpoint: o.endpoint }),
      ...(o.credentials === undefined ? {} : { credentials: o.credentials }),
      requestHandler: { connectionTimeout: 5_000, requestTimeout: 10_000 },
    });
    this.base = o.groupName === undefined ? [{ Name: "Service", Value: o.service }] : [{ Name: "AutoScalingGroupName", Value: o.groupName }];
    this.timer = setInterval(() => void this.flush(), o.flushIntervalMs);
    this.timer.unref();
  }

  jobReceived(_queue: string, queueWaitSeconds?: number): void {
    this.add("JobsReceived", "Count", 1);
    if (queueWaitSeconds !== undefined) this.observe("QueueWait", "Seconds", queueWaitSeconds);
  }

  jobFinished(outcome: JobOutcome, endToEndSeconds?: number): void {
    const name = COUNTED_OUTCOMES[outcome];
    if (name === undefined) return;
    this.add(name, "Count", 1);
    if (endToEndSeconds !== undefined) this.observe("EndToEnd", "Seconds", endToEndSeconds);
  }

  providerCall(c: ProviderCallSample): void {
    const provider = [{ Name: "Provider", Value: c.provider }];
    if (c.errorType !== undefined) {
      this.add("ProviderErrors", "Count", 1, provider);
      return;
    }
    this.observe("ProviderCallDuration", "Seconds", c.seconds, provider);
    if (c.inputTokens !== undefined) this.add("TokensInput", "Count", c.inputTokens, provider);
    if (c.outputTokens !== undefined) this.add("TokensOutput", "Count", c.outputTokens, provider);
    if (c.costUsd !== undefined) this.add("ProviderCostUsd", "None", c.costUsd, provider);
  }

  breakerTransition(provider: string, state: BreakerStateName): void {
    if (state === "open") this.add("BreakerOpened", "Count", 1, [{ Name: "Provider", Value: provider }]);
  }

  heartbeatExtensions(result: HeartbeatResult, count: number): void {
    if (result !== "ok") this.add("HeartbeatFailures", "Count", count);
  }

  deletes(result: DeleteResult, count: number): void {
    if (result !== "ok") this.add("DeleteFailures", "Count", count);
  }

  storeBatch(_kind: string, _size: number, seconds: number, ok: boolean): void {
    this.observe("StoreBatchLatency", "Seconds", seconds);
    if (!ok) this.add("StoreBatchFailures", "Count", 1);
  }

  /** Sends what was gathered since the last flush; failures go to the facade, never reject. One flush at a time. */
  flush(): Promise<void> {
    this.flushing ??= this.send().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flushing;
    await this.flush();
    this.client.destroy();
  }

  private async send(): Promise<void> {
    const at = new Date();
    const data = [...this.takeDatums(at), ...(await this.scalingDatums(at))];
    for (let i = 0; i < data.length; i += MAX_DATUMS) {
      try {
        await this.client.send(new PutMetricDataCommand({ Namespace: this.o.namespace, MetricData: data.slice(i, i + MAX_DATUMS) }));
      } catch (err) {
        this.ctx.onError(this.name, err);
      }
    }
  }

  /** The interval's totals and statistics (then reset), the gauges now, and zeros for the continuous counts. */
  private takeDatums(at: Date): MetricDatum[] {
    const totals = this.totals;
    const stats = this.stats;
    this.totals = new Map();
    this.stats = new Map();
    for (const name of ["JobsReceived", ...Object.values(COUNTED_OUTCOMES)]) {
      if (!totals.has(name)) totals.set(name, { name, unit: "Count", dimensions: this.base, value: 0 });
    }
    const out: MetricDatum[] = [...totals.values()].map((t) => ({ MetricName: t.name, Dimensions: t.dimensions, Unit: t.unit, Value: t.value, Timestamp: at }));
    for (const s of stats.values()) {
      out.push({ MetricName: s.name, Dimensions: s.dimensions, Unit: s.unit, Timestamp: at, StatisticValues: { SampleCount: s.count, Sum: s.sum, Minimum: s.min, Maximum: s.max } });
    }
    const g = this.ctx.gauges();
    if (g !== undefined) {
      out.push({ MetricName: "JobsInFlight", Dimensions: this.base, Unit: "Count", Value: g.inFlight, Timestamp: at });
      out.push({ MetricName: "ConcurrencyLimit", Dimensions: this.base, Unit: "Count", Value: g.limit, Timestamp: at });
    }
    return out;
  }

  /** Backlog and in-flight per in-service worker; nothing this round if the queue or the group cannot be read. */
  private async scalingDatums(at: Date): Promise<MetricDatum[]> {
    if (this.o.queueDepth === undefined) return [];
    let depth: { visible: number; inFlight: number };
    let workers: number;
    try {
      [depth, workers] = await Promise.all([this.o.queueDepth(), this.o.inService?.() ?? Promise.resolve(1)]);
    } catch (err) {
      this.ctx.onError(this.name, err);
      return [];
    }
    // This worker runs, so at least one is working (a booting instance is not InService yet).
    const n = Math.max(1, workers);
    return [
      { MetricName: BACKLOG_PER_INSTANCE, Dimensions: this.base, Unit: "Count", Value: depth.visible / n, Timestamp: at },
      { MetricName: IN_FLIGHT_PER_INSTANCE, Dimensions: this.base, Unit: "Count", Value: depth.inFlight / n, Timestamp: at },
    ];
  }

  private add(name: string, unit: StandardUnit, value: number, extra: Dimension[] = []): void {
    const key = extra.length === 0 ? name : `${name}|${extra.map((d) => d.Value).join("|")}`;
    const t = this.totals.get(key);
    if (t !== undefined) t.value += value;
    else this.totals.set(key, { name, unit, dimensions: [...this.base, ...extra], value });
  }

  private observe(name: string, unit: StandardUnit, value: number, extra: Dimension[] = []): void {
    const key = extra.length === 0 ? name : `${name}|${extra.map((d) => d.Value).join("|")}`;
    const s = this.stats.get(key);
    if (s === undefined) {
      this.stats.set(key, { name, unit, dimensions: [...this.base, ...extra], count: 1, sum: value, min: value, max: value });
      return;
    }
    s.count += 1;
    s.sum += value;
    s.min = Math.min(s.min, value);
    s.max = Math.max(s.max, value);
  }
}
