import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULTS, loadConfig } from "../shared/config.ts";
import { ConfigError } from "../shared/errors.ts";

test("defaults parse and agree with the shared DEFAULTS", () => {
  const c = loadConfig({});
  assert.equal(c.queue.visibilityTimeoutSeconds, DEFAULTS.visibilityTimeoutSeconds);
  assert.equal(c.queue.waitTimeSeconds, 20);
  assert.equal(c.worker.concurrency, undefined);
  assert.equal(c.vllm.maxNumSeqs, 1024);
});

test("one error names every bad variable and never echoes a value", () => {
  const secret = "postgres-password-should-not-leak";
  assert.throws(
    () => loadConfig({ SQS_WAIT_TIME_SECONDS: "25", DATABASE_URL: `mysql://u:${secret}@h/db`, VLLM_URL: "not a url", RECEIVE_BATCH_SIZE: "11" }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      for (const name of ["SQS_WAIT_TIME_SECONDS", "DATABASE_URL", "VLLM_URL", "RECEIVE_BATCH_SIZE"]) assert.match(err.message, new RegExp(name));
      assert.doesNotMatch(err.message, new RegExp(secret));
      return true;
    },
  );
});

test("cross-field rules: heartbeat under half the visibility, drain under the lifecycle hook", () => {
  assert.throws(() => loadConfig({ SQS_VISIBILITY_TIMEOUT_SECONDS: "30", HEARTBEAT_INTERVAL_MS: "20000" }), /HEARTBEAT_INTERVAL_MS/);
  assert.throws(() => loadConfig({ DRAIN_DEADLINE_MS: String(DEFAULTS.lifecycleHookTimeoutSeconds * 1000) }), /DRAIN_DEADLINE_MS/);
  assert.equal(loadConfig({ QUEUE_URLS: "http://a/1, http://a/2" }).queue.urls?.length, 2);
});

test("QUEUE_WEIGHTS: one positive integer per QUEUE_URLS entry; unset leaves the poller's default (2^(n-1-i))", () => {
  const urls = "http://a/1,http://a/2,http://a/3";
  assert.deepEqual(loadConfig({ QUEUE_URLS: urls, QUEUE_WEIGHTS: "6, 3,1" }).queue.weights, [6, 3, 1]);
  assert.equal(loadConfig({ QUEUE_URLS: urls }).queue.weights, undefined);
  assert.throws(() => loadConfig({ QUEUE_URLS: urls, QUEUE_WEIGHTS: "2,1" }), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /QUEUE_WEIGHTS: 2 weights for 3 QUEUE_URLS/);
    return true;
  });
  assert.throws(() => loadConfig({ QUEUE_WEIGHTS: "2,1" }), /QUEUE_WEIGHTS: 2 weights for 1 queue/);
  for (const bad of ["4,0,1", "4,-2,1", "4,1.5,1", "4,x,1"]) {
    assert.throws(() => loadConfig({ QUEUE_URLS: urls, QUEUE_WEIGHTS: bad }), /QUEUE_WEIGHTS/, bad);
  }
});

test("provider chain from config: a fallback's queue wait reaches its route (unset: wait within the budget)", async () => {
  const { buildProviderChain } = await import("../worker/provider-chain.ts");
  const env = { OLLAMA_URL: "http://127.0.0.1:11434", GEMINI_API_KEY: "k", OLLAMA_QUEUE_WAIT_MS: "1500" };
  const chain = buildProviderChain(loadConfig(env), 8, {});
  try {
    assert.deepEqual(chain.routes.map((r) => [r.provider.name, r.queueWaitMs]), [["vllm", undefined], ["ollama", 1500], ["gemini", undefined]]);
  } finally {
    await chain.close();
  }
  assert.throws(() => loadConfig({ ...env, GEMINI_QUEUE_WAIT_MS: "-1" }), /GEMINI_QUEUE_WAIT_MS/);
});

test("metrics: Prometheus on by default, Datadog with a key (site or URL), CloudWatch when asked, off means off", () => {
  const d = loadConfig({}).metrics;
  assert.equal(d.enabled, true);
  assert.equal(d.datadog, undefined);
  assert.equal(d.cloudwatch, undefined);
  assert.deepEqual(d.tags, { env: "dev", service: undefined, version: undefined });
  const key = "dd-key-should-not-leak";
  assert.equal(loadConfig({ DATADOG_API_KEY: key, DATADOG_SITE: "datadoghq.eu" }).metrics.datadog?.apiUrl, "https://api.datadoghq.eu");
  assert.equal(loadConfig({ DATADOG_API_KEY: key, DATADOG_SITE: "datadoghq.eu", DATADOG_API_URL: "http://127.0.0.1:9" }).metrics.datadog?.apiUrl, "http://127.0.0.1:9");
  const cw = loadConfig({ CLOUDWATCH_METRICS: "true" }).metrics.cloudwatch;
  assert.deepEqual(cw, { namespace: DEFAULTS.metricsNamespace, endpoint: undefined, flushIntervalMs: 60_000 });
  assert.equal(loadConfig({ METRICS: "off" }).metrics.enabled, false);
  assert.throws(
    () => loadConfig({ METRICS: "maybe", METRICS_NAMESPACE: "AWS/SQS", DATADOG_SITE: `https://${key}`, DEPLOY_ENV: "prod env" }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      for (const name of ["METRICS", "METRICS_NAMESPACE", "DATADOG_SITE", "DEPLOY_ENV"]) assert.match(err.message, new RegExp(`${name}:`));
      assert.doesNotMatch(err.message, new RegExp(key));
      return true;
    },
  );
});

test("logging: LOG_FORMAT auto by default, json or pretty when set; LOG_BODIES off unless set; bad values named", () => {
  assert.deepEqual(loadConfig({}).logging, { level: "info", format: "auto", bodies: false });
  assert.deepEqual(loadConfig({ LOG_LEVEL: "debug", LOG_FORMAT: "pretty", LOG_BODIES: "true" }).logging, { level: "debug", format: "pretty", bodies: true });
  assert.throws(() => loadConfig({ LOG_FORMAT: "xml", LOG_BODIES: "maybe" }), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /LOG_FORMAT/);
    assert.match(err.message, /LOG_BODIES/);
    return true;
  });
});
