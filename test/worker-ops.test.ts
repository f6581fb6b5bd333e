/**
 * The real worker process (worker/main.ts) with OPS_PORT set, over Postgres, the SQS emulator and the vLLM simulator:
 * it reports its ops URL over IPC, /health shows every component without a credential, its presence row appears and
 * goes on a clean stop, and during a drain ready is 503 until the server closes.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Producer } from "../producer/producer.ts";
import { spawnWorker } from "../scripts/fleet/worker-process.ts";
import { DEFAULT_FAULTS } from "../scripts/simulators/vllm/options.ts";
import { startVllmSimulator } from "../scripts/simulators/vllm/server.ts";
import { queueNameOf } from "../shared/queue/queue-name.ts";
import { schemaScopedUrl } from "../shared/store/pool.ts";
import { PresenceStore } from "../shared/store/presence.ts";
import type { HealthReport } from "../worker/health.ts";
import { queueFixture, stopEmulator, storeFixture, until, type QueueFixture, type StoreFixture } from "./support/env.ts";

after(() => stopEmulator());

/** Trust auth ignores it; it must still never show in an answer. */
const CANARY = `canary-${randomBytes(6).toString("hex")}`;
const LOG_DIR = join(tmpdir(), "worker-ops-test-logs");

function workerEnv(q: QueueFixture, s: StoreFixture, vllmUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  const db = new URL(schemaScopedUrl(s.url, s.schema));
  db.password = CANARY;
  return {
    QUEUE_URLS: q.queueUrl,
    SQS_ENDPOINT: q.endpoint,
    AWS_REGION: "us-east-1",
    DATABASE_URL: db.toString(),
    VLLM_URL: vllmUrl,
    PROVIDER_CHAIN: "vllm",
    ADAPTIVE_CONCURRENCY: "false",
    WORKER_CONCURRENCY: "4",
    SQS_WAIT_TIME_SECONDS: "1",
    SQS_VISIBILITY_TIMEOUT_SECONDS: "30",
    HEARTBEAT_INTERVAL_MS: "5000",
    OPS_PORT: "0",
    OPS_HOST: "127.0.0.1",
    PRESENCE_INTERVAL_MS: "1000",
    LOG_LEVEL: "warn",
    ...extra,
  };
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: r.status, body: await r.text() };
}

test("a worker process: /health lists every component with state and latency and no credential; presence row comes and goes", async () => {
  const q = await queueFixture();
  const s = await storeFixture();
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.05 });
  const w = spawnWorker(`ops-${randomBytes(3).toString("hex")}`, workerEnv(q, s, sim.url), LOG_DIR);
  try {
    const { workerId, opsUrl } = await w.ready;
    assert.ok(opsUrl !== undefined, "the ready message carries the ops URL");
    let health = { status: 0, body: "" };
    await until(async () => (health = await get(`${opsUrl}/health`)).status === 200, "the worker to be ready");
    const report = JSON.parse(health.body) as HealthReport;
    const { store, queues, providers, worker } = report.components;
    assert.equal(report.status, "ready");
    assert.equal(store.state, "up");
    assert.equal(typeof store.latencyMs, "number");
    assert.deepEqual(queues.map((c) => [c.name, c.state, typeof c.latencyMs]), [[queueNameOf(q.queueUrl), "up", "number"]]);
    assert.deepEqual(providers.map((p) => [p.name, p.state, p.maxInFlight]), [["vllm", "closed", 4]]);
    assert.equal(worker.id, workerId);
    assert.equal(worker.state, "running");
    const ready = await get(`${opsUrl}/health/ready`);
    for (const text of [health.body, ready.body]) {
      assert.ok(!text.includes(CANARY), "no password in a health answer");
      assert.doesNotMatch(text, /postgres(ql)?:\/\/|emulator|secret/i, "no connection string or credential");
    }
    const metrics = await get(`${opsUrl}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /^fleet_jobs_in_flight 0$/m, "the worker's own registry");
    assert.match(metrics.body, /^process_cpu_user_seconds_total /m, "with Node's process metrics");
    const presence = new PresenceStore(s.pool);
    const port = Number(new URL(opsUrl).port);
    await until(async () => (await presence.list()).some((r) => r.workerId === workerId && r.state === "running" && r.opsPort === port && r.pid === w.child.pid), "the presence row");
    w.kill("SIGTERM");
    assert.equal((await w.exited).code, 0);
    assert.deepEqual((await presence.list()).map((r) => r.workerId), [], "a clean stop removes the row");
  } finally {
    w.kill("SIGKILL");
    await w.exited;
    await sim.close();
    await s.close();
    q.queue.close();
  }
});

test("drain: ready is 503 while a slow job drains (live stays 200), then the ops server closes", async () => {
  const q = await queueFixture();
  const s = await storeFixture();
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.05, faults: { ...DEFAULT_FAULTS, stallRate: 1, stallMs: 20_000 } });
  const w = spawnWorker(`drain-${randomBytes(3).toString("hex")}`, workerEnv(q, s, sim.url, { DRAIN_DEADLINE_MS: "4000" }), LOG_DIR);
  try {
    const { opsUrl, workerId } = await w.ready;
    const probe = `${opsUrl!}/health/ready`;
    const submitted = await new Producer({ queue: q.queue, queueUrl: q.queueUrl }).submitMany([{ tenant: "t", messages: [{ role: "user", content: "slow" }], params: { max_tokens: 8 } }]);
    assert.equal(submitted.failed.length, 0);
    await until(async () => (JSON.parse((await get(`${opsUrl!}/health`)).body) as HealthReport).components.worker.inFlight === 1, "the worker to hold the slow job");
    assert.equal((await get(probe)).status, 200, "ready while running");
    w.kill("SIGTERM");
    let answer = { status: 0, body: "" };
    await until(async () => (answer = await get(probe)).status === 503, "ready to turn 503 once the drain starts", 5_000);
    assert.deepEqual((JSON.parse(answer.body) as HealthReport).failing, [{ component: "worker", reason: "DRAINING" }]);
    assert.equal((await get(`${opsUrl!}/health/live`)).status, 200, "still live while draining");
    const presence = new PresenceStore(s.pool);
    await until(async () => (await presence.list()).some((r) => r.workerId === workerId && r.state === "draining"), "the presence row to say draining", 5_000);
    assert.equal((await w.exited).code, 0);
    await assert.rejects(get(probe), "nothing listens after the worker stopped");
  } finally {
    w.kill("SIGKILL");
    await w.exited;
    await sim.close();
    await s.close();
    q.queue.close();
  }
});
