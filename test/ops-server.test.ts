/**
 * The ops server in process, over real Postgres (through a TCP fault proxy), the SQS emulator and the vLLM simulator:
 * readiness follows the store, the probes are cached so a hammering load balancer costs one check, /metrics is
 * served only with a registry.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { Registry, Counter } from "prom-client";
import { startVllmSimulator } from "../scripts/simulators/vllm/server.ts";
import { startFaultProxy } from "../scripts/fleet/tcp-proxy.ts";
import { JobStore } from "../shared/store/jobs.ts";
import { createPool, ping } from "../shared/store/pool.ts";
import { WorkerHealth, type HealthReport } from "../worker/health.ts";
import { startOpsServer, type MetricsSource } from "../worker/ops-server.ts";
import { ComponentCheck } from "../shared/health/component-check.ts";
import type { WorkerSnapshot } from "../worker/worker.ts";
import { PG_URL, queueFixture, silentLog, stopEmulator, storeFixture, until } from "./support/env.ts";
import { testWorker } from "./support/worker.ts";

after(() => stopEmulator());

async function get(url: string): Promise<{ status: number; body: string; type: string | null }> {
  const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: r.status, body: await r.text(), type: r.headers.get("content-type") };
}

/** A report with no active check behind it, for the routes that do not depend on one. */
const fixedHealth = (status: HealthReport["status"]) => ({
  report: async (): Promise<HealthReport> => ({ status, checkedAt: new Date().toISOString(), failing: [], components: {} as HealthReport["components"] }),
});

test("ready turns 503 when Postgres is cut (naming the store) and back to 200 when it returns", async () => {
  const q = await queueFixture();
  const direct = await storeFixture();
  const proxy = await startFaultProxy({ host: "127.0.0.1", port: Number(new URL(PG_URL).port || 5432) });
  const viaProxy = await createPool({ url: PG_URL.replace(/:(\d+)\//, `:${proxy.port}/`), poolSize: 4, schema: direct.schema, connectTimeoutMs: 500 });
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.05 });
  const w = testWorker(q, new JobStore(viaProxy), sim.url);
  const health = new WorkerHealth({
    snapshot: () => w.worker.snapshot(),
    pingStore: () => ping(viaProxy),
    queueUrls: [q.queueUrl],
    checkQueue: (url, signal) => q.queue.check(url, signal),
    ttlMs: 200,
  });
  const ops = await startOpsServer({ host: "127.0.0.1", port: 0, health, log: silentLog });
  try {
    await until(async () => (await get(`${ops.url}/health/ready`)).status === 200, "ready before the cut");
    proxy.cut();
    let answer = { status: 0, body: "" };
    await until(async () => (answer = await get(`${ops.url}/health/ready`)).status === 503, "ready to turn 503 after the cut");
    const body = JSON.parse(answer.body) as { status: string; failing: { component: string; reason: string }[] };
    assert.equal(body.status, "not_ready");
    assert.deepEqual(body.failing.map((f) => f.component), ["store"]);
    assert.match(body.failing[0]!.reason, /^(STORE_UNAVAILABLE|CHECK_TIMEOUT)$/);
    const report = JSON.parse((await get(`${ops.url}/health`)).body) as HealthReport;
    assert.equal(report.components.store.state, "down");
    assert.equal(report.components.queues[0]!.state, "up", "only the store is down");
    proxy.restore();
    await until(async () => (await get(`${ops.url}/health/ready`)).status === 200, "ready again after the store returns");
  } finally {
    await ops.close();
    await w.stop();
    await viaProxy.end();
    await proxy.close();
    await sim.close();
    await direct.close();
    q.queue.close();
  }
});

test("a load balancer hammering /health/ready costs one store check and one queue check per second", async () => {
  let pings = 0;
  let queueChecks = 0;
  const health = new WorkerHealth({
    snapshot: () => runningSnapshot(),
    pingStore: async () => void (pings += 1),
    queueUrls: ["http://127.0.0.1:1/000000000000/jobs"],
    checkQueue: async () => void (queueChecks += 1),
    ttlMs: 60_000,
  });
  const ops = await startOpsServer({ host: "127.0.0.1", port: 0, health, log: silentLog });
  try {
    const answers = await Promise.all(Array.from({ length: 100 }, () => get(`${ops.url}/health/ready`)));
    assert.ok(answers.every((a) => a.status === 200), "every probe answered ready");
    assert.equal(pings, 1, "one SELECT 1 for 100 probes");
    assert.equal(queueChecks, 1, "one GetQueueAttributes for 100 probes");
  } finally {
    await ops.close();
  }
});

test("a check that hangs is reported down at its timeout, and no second call starts while it hangs", async () => {
  let calls = 0;
  let release: () => void = () => undefined;
  const check = new ComponentCheck(
    () => {
      calls += 1;
      return new Promise<void>((resolve) => (release = resolve));
    },
    { ttlMs: 0, timeoutMs: 50 },
  );
  const first = await check.result();
  assert.equal(first.ok, false);
  assert.equal(first.error, "CHECK_TIMEOUT");
  assert.ok(first.latencyMs >= 40, `latency ${first.latencyMs} ms is the time waited`);
  const second = await check.result();
  assert.equal(second.error, "CHECK_TIMEOUT");
  assert.equal(calls, 1, "the hung call is not joined by another");
  release();
  await until(async () => (await check.result()).error === "CHECK_TIMEOUT" && calls === 2, "a new call once the hung one ended", 5_000);
});

test("/metrics: 404 without a registry; with one, its exposition and content type", async () => {
  const bare = await startOpsServer({ host: "127.0.0.1", port: 0, health: fixedHealth("ready"), log: silentLog });
  try {
    assert.equal((await get(`${bare.url}/metrics`)).status, 404);
    assert.equal((await get(`${bare.url}/health/live`)).status, 200);
  } finally {
    await bare.close();
  }
  const registry = new Registry();
  new Counter({ name: "ops_test_jobs_total", help: "jobs seen by the test", registers: [registry] }).inc(3);
  const metrics: MetricsSource = registry;
  const served = await startOpsServer({ host: "127.0.0.1", port: 0, health: fixedHealth("not_ready"), metrics, log: silentLog });
  try {
    const answer = await get(`${served.url}/metrics`);
    assert.equal(answer.status, 200);
    assert.equal(answer.type, registry.contentType);
    assert.match(answer.body, /^ops_test_jobs_total 3$/m);
    assert.equal((await get(`${served.url}/health/live`)).status, 200, "live whatever readiness says");
    assert.equal((await get(`${served.url}/health/ready`)).status, 503);
  } finally {
    await served.close();
  }
  await assert.rejects(get(`${served.url}/health/live`), "closed: nothing listens");
});

function runningSnapshot(): WorkerSnapshot {
  return {
    workerId: "w-1",
    state: "running",
    startedAt: new Date(),
    held: 0,
    inFlight: 0,
    limit: 8,
    intakePaused: false,
    storeWritesHealthy: true,
    storeWritesFailingForMs: 0,
    jobs: { succeeded: 0, failed: 0, expired: 0, dead: 0, poison: 0, duplicate: 0, leased: 0, retry: 0, released: 0, conflict: 0, deferred: 0 },
    providers: { allOpen: false, routes: [{ name: "vllm", provider: "vllm", state: "closed", probeInFlight: false, consecutiveFailures: 0, inFlight: 0, waiting: 0, maxInFlight: 8, spentUsdThisHour: 0, overSpendCeiling: false }] },
    queueWaitMs: {},
  };
}
