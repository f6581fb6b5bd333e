/**
 * The metrics facade from config: Prometheus always (it serves /metrics), Datadog with an API key, CloudWatch when
 * CLOUDWATCH_METRICS=true; METRICS=off gives the no-op facade. Deployables call this from main and pass it down.
 */
import type { MetricsConfig } from "../config.ts";
import type { Logger } from "../logger.ts";
import { CloudWatchSink } from "./cloudwatch-sink.ts";
import { DatadogSink } from "./datadog-sink.ts";
import { FanOutMetrics, NO_METRICS, type FleetMetrics, type MetricsSink, type SinkContext } from "./fleet-metrics.ts";
import { PrometheusSink } from "./prometheus-sink.ts";

export interface MetricsDeps {
  /** The deployable's name when SERVICE_NAME is unset (e.g. llm-fleet-worker). */
  service: string;
  region: string;
  log: Pick<Logger, "warn">;
  /** The resolved DATADOG_API_KEY (a Secrets Manager ARN resolved and refreshed by main). */
  datadogApiKey?: () => string;
  /** CloudWatch's scaling figures: queue depth over the served queues, workers in service, the group's name. */
  queueDepth?: () => Promise<{ visible: number; inFlight: number }>;
  inService?: () => Promise<number>;
  groupName?: string;
  /** Tests: static credentials for a CloudWatch stand-in. */
  cloudwatchCredentials?: { accessKeyId: string; secretAccessKey: string };
}

export function buildFleetMetrics(config: MetricsConfig, deps: MetricsDeps): FleetMetrics {
  if (!config.enabled) return NO_METRICS;
  const service = config.tags.service ?? deps.service;
  const others: ((ctx: SinkContext) => MetricsSink)[] = [];
  const dd = config.datadog;
  if (dd !== undefined) {
    const key = deps.datadogApiKey ?? (() => dd.apiKey);
    others.push((ctx) => new DatadogSink(ctx, { apiKey: key, apiUrl: dd.apiUrl, tags: { ...config.tags, service }, flushIntervalMs: dd.flushIntervalMs }));
  }
  const cw = config.cloudwatch;
  if (cw !== undefined) {
    others.push(
      (ctx) =>
        new CloudWatchSink(ctx, {
          namespace: cw.namespace,
          region: deps.region,
          endpoint: cw.endpoint,
          credentials: deps.cloudwatchCredentials,
          groupName: deps.groupName,
          service,
          flushIntervalMs: cw.flushIntervalMs,
          queueDepth: deps.queueDepth,
          inService: deps.inService,
        }),
    );
  }
  return new FanOutMetrics({ prometheus: (ctx) => new PrometheusSink(ctx), others, log: deps.log });
}
