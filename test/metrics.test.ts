/**
 * The metrics facade against real services: a worker on the SQS emulator, Postgres and Redis runs a known set of
 * jobs and the Prometheus registry counts them; the same run reaches a Datadog stand-in (series with env, service,
 * version, provider tags; the key only in its header) and a CloudWatch stand-in (PutMetricData as the SDK sends it,
 * BacklogPerInstance from the real queue); a sink that throws on every call leaves every job succeeding.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { pino } from "pino";
import { Producer } from "../producer/producer.ts";
import { startCloudWatchStandIn, startDatadogStandIn } from "../scripts/local/metrics-stand-ins.ts";
import { loadConfig } from "../shared/config.ts";
import { ProviderTerminalError } from "../shared/errors.ts";
import { buildFleetMetrics } from "../shared/metrics/build-metrics.ts";
import { CloudWatchSink, BACKLOG_PER_INSTANCE, IN_FLIGHT_PER_INSTANCE } from "../shared/metrics/cloudwatch-sink.ts";
import { FanOutMetrics, type MetricsSink } from "../shared/metrics/fleet-metrics.ts";
import { PrometheusSink } from "../shared/metrics/prometheus-sink.ts";
import { parsePrometheusText, type Sample } from "../shared/providers/metrics.ts";
import { ResultsCache } from "../shared/store/results-cache.ts";
import { queueFixture, REDIS_URL, stopEmulator, storeFixture, until, uniqueName, type QueueFixture } from "./support/env.ts";
import { completion, FakeProvider } from "./support/fake-provider.ts";
import { testWorker } from "./support/worker.ts";

after(() => stopEmulator());

const CANARY_KEY = "dd-canary-0123456789abcdef";
const CREDENTIALS = { accessKeyId: "test", secretAccessKey: "test" };

/** Log lines as text, to check what a failing sink says (and that the key is never in it). */
function captureLog() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString("utf8"));
      done();
    },
  });
  return { lines, log: pino({ level: "warn" }, stream) };
}

/** The value of the one sample named `name` whose labels include `labels` (0 when absent). */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const hits = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return hits.reduce((sum, s) => sum + s.value, 0);
}

/** Four prompts answered (10 + 5 tokens each), two refused for good by the provider (terminal: recorded failed). */
const provider = () =>
  new FakeProvider("fake", (_call, req) => (req.prompt?.startsWith("bad") ? new ProviderTerminalError("PROVIDER_BAD_REQUEST", "refused") : completion("fake")));

async function submit(q: QueueFixture, prompts: string[]): Promise<void> {
  const res = await new Producer({ queue: q.queue, queueUrl: q.queueUrl }).submitMany(prompts.map((prompt) => ({ tenant: "t", prompt, params: { max_tokens: 8 } })));
  assert.deepEqual(res.failed, []);
}

test("a worker's jobs show in /metrics, at the Datadog stand-in and at the CloudWatch stand-in", async () => {
  const q = await queueFixture();
  // The backlog CloudWatch is told about: a queue no receive ever touched (a stopped worker's cut long poll may still
  // be served by the emulator, taking messages sent to its queue right after).
  const waiting = await queueFixture();
  const s = await storeFixture();
  const cache = new ResultsCache({ url: REDIS_URL, ttlSeconds: 60, keyPrefix: `${uniqueName("metrics")}:` });
  const datadog = await startDatadogStandIn({ apiKey: CANARY_KEY });
  const cloudwatch = await startCloudWatchStandIn();
  const { lines, log } = captureLog();
  const config = loadConfig({
    DEPLOY_ENV: "test",
    SERVICE_VERSION: "1.2.3",
    DATADOG_API_KEY: CANARY_KEY,
    DATADOG_API_URL: datadog.endpoint,
    CLOUDWATCH_METRICS: "true",
    CLOUDWATCH_ENDPOINT: cloudwatch.endpoint,
    METRICS_NAMESPACE: "FleetTest",
    // Long intervals: the test's flush is the one close() makes.
    DATADOG_FLUSH_INTERVAL_MS: "3600000",
    CLOUDWATCH_FLUSH_INTERVAL_MS: "3600000",
  });
  const metrics = await buildFleetMetrics(config.metrics, {
    service: "llm-fleet-worker",
    region: "us-east-1",
    log,
    cloudwatchCredentials: CREDENTIALS,
    groupName: "fleet-workers",
    queueDepth: async () => waiting.queue.depth(waiting.queueUrl),
    inService: async () => 2,
  });
  const queueName = q.queueUrl.slice(q.queueUrl.lastIndexOf("/") + 1);
  const w = testWorker(q, s.store, "http://127.0.0.1:1", { provider: provider(), cache, metrics });
  try {
    await submit(q, ["good 1", "good 2", "bad 1", "good 3", "bad 2", "good 4"]);
    await until(() => w.worker.counts.succeeded + w.worker.counts.failed === 6, "six jobs settled");
    const exposition = metrics.exposition();
    assert.match(exposition.contentType, /^text\/plain/);
    const samples = parsePrometheusText(await exposition.metrics());
    assert.equal(value(samples, "fleet_jobs_received_total", { queue: queueName }), 6);
    assert.equal(value(samples, "fleet_jobs_finished_total", { outcome: "succeeded" }), 4);
    assert.equal(value(samples, "fleet_jobs_finished_total", { outcome: "failed" }), 2);
    const tokens = { gen_ai_provider_name: "fake", gen_ai_operation_name: "text_completion" };
    assert.equal(value(samples, "gen_ai_client_token_usage_sum", { ...tokens, gen_ai_token_type: "input" }), 40);
    assert.equal(value(samples, "gen_ai_client_token_usage_sum", { ...tokens, gen_ai_token_type: "output" }), 20);
    assert.equal(value(samples, "gen_ai_client_token_usage_count", { ...tokens, gen_ai_token_type: "output" }), 4);
    assert.equal(value(samples, "gen_ai_client_operation_duration_seconds_count", { error_type: "PROVIDER_BAD_REQUEST" }), 2);
    assert.equal(value(samples, "gen_ai_client_operation_duration_seconds_count", { gen_ai_provider_name: "fake" }), 6);
    assert.equal(value(samples, "fleet_provider_errors_total", { provider: "fake", error_type: "PROVIDER_BAD_REQUEST" }), 2);
    assert.equal(value(samples, "fleet_queue_wait_seconds_count", { queue: queueName }), 6);
    assert.equal(value(samples, "fleet_job_end_to_end_seconds_count", { outcome: "succeeded" }), 4);
    assert.equal(value(samples, "fleet_deletes_total", { result: "ok" }), 6);
    assert.equal(value(samples, "fleet_store_batch_size_sum", { kind: "claim" }), 6);
    assert.equal(value(samples, "fleet_store_batch_size_sum", { kind: "complete" }), 4);
    assert.equal(value(samples, "fleet_store_batch_size_sum", { kind: "finish" }), 2);
    await until(async () => value(parsePrometheusText(await exposition.metrics()), "fleet_store_batch_size_sum", { kind: "cache" }) === 4, "four results published to Redis");
    assert.equal(value(samples, "fleet_concurrency_limit"), 32);
    assert.equal(value(samples, "fleet_provider_breaker_state", { provider: "fake" }), 0);
    assert.ok(samples.some((x) => x.name === "process_cpu_seconds_total"), "default process metrics");
    assert.ok(samples.some((x) => x.name === "nodejs_eventloop_lag_seconds"), "default Node metrics");
  } finally {
    await w.stop();
  }
  // Four jobs nobody takes: the last flush (at close) sees them waiting, with two workers in service.
  await submit(waiting, ["later 1", "later 2", "later 3", "later 4"]);
  await metrics.close();
  await cache.close();
  await s.close();

  try {
    // Datadog: the same series, tagged; the key only in the header.
    assert.ok(datadog.received.length >= 1, "Datadog stand-in received nothing");
    assert.ok(datadog.received.every((r) => r.apiKey === CANARY_KEY));
    const series = datadog.received.flatMap((r) => r.series);
    const total = (metric: string, tag?: string) => series.filter((x) => x.metric === metric && (tag === undefined || x.tags.includes(tag))).reduce((n, x) => n + x.points[0]![1], 0);
    assert.equal(total("fleet.jobs.received"), 6);
    assert.equal(total("fleet.jobs.finished", "outcome:succeeded"), 4);
    assert.equal(total("gen_ai.client.token.usage.sum", "token_type:input"), 40);
    assert.equal(total("fleet.provider.errors", "error_type:PROVIDER_BAD_REQUEST"), 2);
    for (const x of series) {
      for (const tag of ["env:test", "service:llm-fleet-worker", "version:1.2.3"]) assert.ok(x.tags.includes(tag), `${x.metric} lacks ${tag}: ${x.tags.join(",")}`);
    }
    const providerSeries = series.filter((x) => x.metric.startsWith("gen_ai.client."));
    assert.ok(providerSeries.length > 0 && providerSeries.every((x) => x.tags.includes("provider:fake")), "provider tag on the GenAI series");
    assert.ok(!JSON.stringify(series).includes(CANARY_KEY), "the key is not in the series");

    // CloudWatch: one PutMetricData into the namespace, BacklogPerInstance = 4 visible / 2 in service.
    assert.ok(cloudwatch.received.length >= 1, "CloudWatch stand-in received nothing");
    assert.ok(cloudwatch.received.every((r) => r.Namespace === "FleetTest" && r.MetricData.length <= 1000));
    const data = cloudwatch.received.flatMap((r) => r.MetricData);
    const datum = (name: string) => data.filter((d) => d.MetricName === name);
    assert.deepEqual(datum(BACKLOG_PER_INSTANCE).map((d) => d.Value), [2]);
    assert.deepEqual(datum(IN_FLIGHT_PER_INSTANCE).map((d) => d.Value), [0]);
    assert.deepEqual(datum(BACKLOG_PER_INSTANCE)[0]!.Dimensions, [{ Name: "AutoScalingGroupName", Value: "fleet-workers" }]);
    assert.equal(datum("JobsSucceeded").reduce((n, d) => n + d.Value!, 0), 4);
    assert.equal(datum("JobsFailed").reduce((n, d) => n + d.Value!, 0), 2);
    assert.equal(datum("EndToEnd").reduce((n, d) => n + d.StatisticValues!.SampleCount, 0), 6);
    assert.equal(datum("TokensInput").reduce((n, d) => n + d.Value!, 0), 40);
    assert.deepEqual(lines, [], "nothing failed, nothing logged");
  } finally {
    await datadog.close();
    await cloudwatch.close();
  }
});

test("a sink that throws on every call, and a Datadog endpoint that fails every flush, never fail a job", async () => {
  const s = await storeFixture();
  const datadog = await startDatadogStandIn();
  datadog.failing = true;
  const { lines, log } = captureLog();
  const broken: MetricsSink = new Proxy({ name: "broken" } as MetricsSink, {
    get: (target, prop) =>
      prop === "name"
        ? target.name
        : () => {
            throw new Error("sink exploded");
          },
  });
  const withBroken = new FanOutMetrics({ prometheus: (ctx) => new PrometheusSink(ctx, { defaultMetrics: false }), others: [() => broken], log });
  const config = loadConfig({ DATADOG_API_KEY: CANARY_KEY, DATADOG_API_URL: datadog.endpoint, DATADOG_FLUSH_INTERVAL_MS: "1000" });
  const withDatadog = await buildFleetMetrics(config.metrics, { service: "w", region: "us-east-1", log });
  try {
    for (const metrics of [withBroken, withDatadog]) {
      const q = await queueFixture();
      const w = testWorker(q, s.store, "http://127.0.0.1:1", { provider: provider(), metrics });
      try {
        await submit(q, ["good 1", "good 2", "good 3", "good 4"]);
        await until(() => w.worker.counts.succeeded === 4, "every job succeeded");
        assert.deepEqual(Object.entries(w.worker.counts).filter(([k, n]) => k !== "succeeded" && n > 0), []);
        const samples = parsePrometheusText(await metrics.exposition().metrics());
        assert.equal(value(samples, "fleet_jobs_finished_total", { outcome: "succeeded" }), 4, "Prometheus still counts");
      } finally {
        await w.stop();
      }
    }
    await until(() => datadog.refused >= 1, "a Datadog flush refused");
    // Counted: every call to the broken sink (at least received + finished per job), and the failed flush.
    const broke = parsePrometheusText(await withBroken.exposition().metrics());
    assert.ok(value(broke, "fleet_metrics_sink_errors_total", { sink: "broken" }) >= 8);
    await until(async () => value(parsePrometheusText(await withDatadog.exposition().metrics()), "fleet_metrics_sink_errors_total", { sink: "datadog" }) >= 1, "the failed flush counted");
  } finally {
    await withBroken.close();
    await withDatadog.close();
    await datadog.close();
    await s.close();
  }
  // Logged once per sink per minute, never with the key.
  const warnings = lines.map((l) => JSON.parse(l) as { sink: string; msg: string });
  assert.equal(warnings.filter((l) => l.sink === "broken").length, 1);
  assert.equal(warnings.filter((l) => l.sink === "datadog").length, 1);
  assert.ok(lines.every((l) => !l.includes(CANARY_KEY)));
});

test("CloudWatch: more than 1,000 datums go out in requests of at most 1,000", async () => {
  const cloudwatch = await startCloudWatchStandIn();
  const errors: unknown[] = [];
  const sink = new CloudWatchSink(
    { gauges: () => undefined, sinkErrors: () => new Map(), onError: (_s, err) => errors.push(err) },
    { namespace: "FleetTest", region: "us-east-1", endpoint: cloudwatch.endpoint, credentials: CREDENTIALS, service: "w", flushIntervalMs: 3_600_000 },
  );
  try {
    // 1,100 providers (the facade caps them; the sink does not): one ProviderErrors datum each, plus 5 job counts.
    for (let i = 0; i < 1_100; i++) sink.providerCall({ provider: `p${i}`, model: "m", operation: "chat", seconds: 0.1, errorType: "X" });
    await sink.close();
    assert.deepEqual(errors, []);
    assert.deepEqual(cloudwatch.received.map((r) => r.MetricData.length), [1000, 105]);
  } finally {
    await cloudwatch.close();
  }
});

test("METRICS=off: every call is a no-op and the exposition is empty", async () => {
  const metrics = await buildFleetMetrics(loadConfig({ METRICS: "off", DATADOG_API_KEY: CANARY_KEY }).metrics, { service: "w", region: "us-east-1", log: captureLog().log });
  metrics.jobReceived("q", 1);
  assert.equal(await metrics.exposition().metrics(), "");
  await metrics.close();
});
