/**
 * Delivery semantics against real services: the SQS emulator, Postgres, the vLLM simulator. Each test breaks
 * something real (a stalled backend, a failing backend, duplicate sends, a cut Postgres, a stop mid-job) and checks
 * that every job ends exactly once.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { buildJob, encodeJob, type JobInput } from "../shared/contract.ts";
import { Producer } from "../producer/producer.ts";
import { startVllmSimulator } from "../scripts/simulators/vllm/server.ts";
import { DEFAULT_FAULTS } from "../scripts/simulators/vllm/options.ts";
import { startFaultProxy } from "../scripts/fleet/tcp-proxy.ts";
import { JobStore } from "../shared/store/jobs.ts";
import { createPool, schemaScopedUrl } from "../shared/store/pool.ts";
import { PG_URL, queueFixture, stopEmulator, storeFixture, until, type QueueFixture, type StoreFixture } from "./support/env.ts";
import { testWorker } from "./support/worker.ts";

after(() => stopEmulator());
const execFileAsync = promisify(execFile);

const chat = (i: number, extra: Partial<JobInput> = {}): JobInput => ({
  tenant: "t",
  messages: [{ role: "user", content: `question ${i}` }],
  params: { max_tokens: 8 },
  ...extra,
});

async function submit(q: QueueFixture, n: number, extra: Partial<JobInput> = {}): Promise<string[]> {
  const res = await new Producer({ queue: q.queue, queueUrl: q.queueUrl }).submitMany(Array.from({ length: n }, (_, i) => chat(i, extra)));
  assert.equal(res.failed.length, 0);
  return res.ids;
}

async function allTerminal(s: StoreFixture, ids: string[]): Promise<boolean> {
  const rows = await s.store.getMany(ids);
  return rows.length === ids.length && rows.every((r) => !["queued", "running"].includes(r.status));
}

async function assertExactlyOnce(s: StoreFixture, ids: string[], status = "succeeded"): Promise<void> {
  const rows = await s.store.getMany(ids);
  assert.equal(rows.length, ids.length, "every id has a row");
  for (const r of rows) {
    assert.equal(r.status, status, `${r.id}: ${r.error?.code} ${r.error?.message}`);
    assert.equal(r.resultWrites, 1, `${r.id} result written once`);
  }
}

async function queueEmpty(q: QueueFixture): Promise<boolean> {
  const d = await q.queue.depth(q.queueUrl);
  return d.visible + d.inFlight + d.delayed === 0;
}

test("end to end: 200 jobs through two workers → every id exactly one succeeded result, queue empty", async () => {
  const q = await queueFixture();
  const s = await storeFixture();
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.05 });
  const w1 = testWorker(q, s.store, sim.url);
  const w2 = testWorker(q, s.store, sim.url);
  try {
    const ids = await submit(q, 200);
    await until(() => allTerminal(s, ids), "200 jobs to finish", 60_000);
    await assertExactlyOnce(s, ids);
    await w1.stop();
    await w2.stop();
    await until(() => queueEmpty(q), "queue to empty");
    assert.equal(sim.engine.stats().requestsServed, 200, "one provider call per job");
  } finally {
    await w1.stop();
    await w2.stop();
    await sim.close();
    await s.close();
  }
});

test("heartbeat: a generation longer than the visibility timeout is not redelivered", async () => {
  const q = await queueFixture({ visibilityTimeoutSeconds: 2 });
  const s = await storeFixture();
  // Every response held 5 s: 2.5 visibility timeouts.
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.05, faults: { ...DEFAULT_FAULTS, stallRate: 1, stallMs: 5_000 } });
  const a = testWorker(q, s.store, sim.url, { visibilityTimeoutSeconds: 2, heartbeatIntervalMs: 500 });
  const b = testWorker(q, s.store, sim.url, { visibilityTimeoutSeconds: 2, heartbeatIntervalMs: 500 });
  try {
    const ids = await submit(q, 4);
    await until(() => allTerminal(s, ids), "stalled jobs to finish", 30_000);
    await assertExactlyOnce(s, ids);
    for (const r of await s.store.getMany(ids)) assert.equal(r.attempts, 1, "claimed once: never redelivered");
    assert.equal(a.worker.counts.leased + b.worker.counts.leased, 0, "no worker ever saw a redelivery");
    assert.equal(sim.engine.stats().requestsServed, 4);
  } finally {
    await a.stop();
    await b.stop();
    await sim.close();
    await s.close();
  }
});

test("poison: not JSON, wrong shape, unknown version, over-size — recorded or dead-lettered with the reason; good jobs flow", async () => {
  const q = await queueFixture();
  const s = await storeFixture();
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.05 });
  const good = await submit(q, 20);
  const now = new Date().toISOString();
  await q.queue.sendBatch(q.queueUrl, [
    { id: "notjson", body: "{definitely not json" },
    { id: "noid", body: JSON.stringify({ hello: "world" }) },
    { id: "shape", body: JSON.stringify({ v: 1, id: "poison-shape", tenant: "t", created_at: now, prompt: 42 }) },
    { id: "version", body: JSON.stringify({ v: 7, id: "poison-version", tenant: "t" }) },
    { id: "big", body: JSON.stringify({ v: 1, id: "poison-big", tenant: "t", created_at: now, prompt: "x".repeat(300 * 1024) }) },
  ]);
  const w = testWorker(q, s.store, sim.url);
  try {
    await until(() => allTerminal(s, [...good, "poison-shape", "poison-version", "poison-big"]), "all jobs recorded");
    await assertExactlyOnce(s, good);
    const [shape, version, big] = await s.store.getMany(["poison-shape", "poison-version", "poison-big"]).then((rows) =>
      ["poison-shape", "poison-version", "poison-big"].map((id) => rows.find((r) => r.id === id)!),
    );
    assert.equal(shape!.status, "failed");
    assert.equal(shape!.error?.code, "JOB_INVALID");
    assert.match(shape!.error!.message, /prompt/);
    assert.equal(version!.error?.code, "JOB_UNKNOWN_VERSION");
    assert.equal(big!.error?.code, "JOB_TOO_LARGE");
    await until(() => queueEmpty(q), "main queue to empty");
    // The two without an id went to the DLQ, with their reasons attached.
    const dead = await q.queue.receive(q.dlqUrl, { maxMessages: 10, waitTimeSeconds: 1 });
    assert.deepEqual(dead.map((m) => m.attributes?.failure_code).sort(), ["JOB_INVALID", "JOB_NOT_JSON"]);
    assert.equal(w.worker.counts.poison, 5);
  } finally {
    await w.stop();
    await sim.close();
    await s.close();
  }
});

test("dead letters: recorded dead with the last reason, moved to the DLQ by SQS, listed and re-driven by the DLQ tool", async () => {
  const q = await queueFixture({ maxReceiveCount: 2 });
  const s = await storeFixture();
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.05, faults: { ...DEFAULT_FAULTS, errorRate: 1, errorKinds: [503] } });
  const w = testWorker(q, s.store, sim.url, { maxReceiveCount: 2 });
  try {
    const [id] = await submit(q, 1);
    await until(() => allTerminal(s, [id!]), "job to be recorded dead", 30_000);
    const row = (await s.store.get(id!))!;
    assert.equal(row.status, "dead");
    assert.equal(row.error?.code, "PROVIDER_OVERLOADED");
    assert.match(row.error!.message, /gave up after 2 deliveries/);
    // SQS moves it on the next receive past maxReceiveCount.
    await until(async () => (await q.queue.depth(q.dlqUrl)).visible === 1, "the message to reach the DLQ", 30_000);
    assert.equal((await q.queue.depth(q.queueUrl)).visible, 0);

    const env = { ...process.env, QUEUE_URLS: q.queueUrl, SQS_ENDPOINT: q.endpoint, DATABASE_URL: schemaScopedUrl(s.url, s.schema), AWS_ACCESS_KEY_ID: "t", AWS_SECRET_ACCESS_KEY: "t" };
    const tool = (...args: string[]) => execFileAsync(process.execPath, ["--import", "tsx", "scripts/dlq.ts", ...args], { env });
    const listed = await tool("list");
    assert.match(listed.stdout, new RegExp(`job=${id}`));
    assert.match(listed.stdout, /1 message\(s\)/);
    // The backend recovers; the operator re-drives; the job now succeeds, once.
    sim.setFaults({ errorRate: 0 });
    const redriven = await tool("redrive");
    assert.match(redriven.stdout, /moved 1 message/);
    await until(async () => (await s.store.get(id!))?.status === "succeeded", "the re-driven job to succeed", 30_000);
    const after = (await s.store.get(id!))!;
    assert.equal(after.resultWrites, 1);
    assert.equal((await q.queue.depth(q.dlqUrl)).visible, 0);
  } finally {
    await w.stop();
    await sim.close();
    await s.close();
  }
});

test("duplicates: the same job sent three times is generated once; a finished job redelivered is only deleted", async () => {
  const q = await queueFixture();
  const s = await storeFixture();
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.05 });
  const jobs = Array.from({ length: 20 }, (_, i) => buildJob(chat(i)));
  const bodies = jobs.flatMap((j) => [j, j, j]).map((j, i) => ({ id: String(i), body: encodeJob(j) }));
  await q.queue.sendBatch(q.queueUrl, bodies);
  const a = testWorker(q, s.store, sim.url);
  const b = testWorker(q, s.store, sim.url);
  try {
    const ids = jobs.map((j) => j.id);
    await until(() => allTerminal(s, ids), "jobs to finish");
    await until(() => queueEmpty(q), "every copy to be deleted", 60_000);
    await assertExactlyOnce(s, ids);
    assert.equal(sim.engine.stats().requestsServed, 20, "one provider call per job, not per copy");
    // A late redelivery of a finished job.
    await q.queue.sendBatch(q.queueUrl, [{ id: "late", body: encodeJob(jobs[0]!) }]);
    await until(() => queueEmpty(q), "the late copy to be deleted");
    assert.equal(sim.engine.stats().requestsServed, 20);
    await assertExactlyOnce(s, ids);
  } finally {
    await a.stop();
    await b.stop();
    await sim.close();
    await s.close();
  }
});

test("store outage: Postgres cut mid-run → intake pauses, writes retry, every job lands exactly once", async () => {
  const q = await queueFixture();
  const direct = await storeFixture();
  const proxy = await startFaultProxy({ host: "127.0.0.1", port: new URL(PG_URL).port ? Number(new URL(PG_URL).port) : 5432 });
  const viaProxy = await createPool({ url: PG_URL.replace(/:(\d+)\//, `:${proxy.port}/`), poolSize: 5, schema: direct.schema, connectTimeoutMs: 500 });
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.2 });
  const w = testWorker(q, new JobStore(viaProxy), sim.url, { concurrency: 16 });
  try {
    const ids = await submit(q, 150);
    await until(async () => (await direct.store.countByStatus()).succeeded >= 20, "some jobs to finish");
    proxy.cut();
    // The worker notices (a write fails) and every generation started before the cut has ended.
    await until(() => !w.worker.storeHealthy && sim.engine.stats().running + sim.engine.stats().waiting === 0, "the outage to be noticed and in-flight generations to end");
    const heldDuringOutage = w.worker.held;
    assert.ok(heldDuringOutage <= 16, "never holds more than its capacity");
    const servedAtCut = sim.engine.stats().requestsServed;
    // While the store is down the worker takes nothing new: provider calls stop growing.
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(sim.engine.stats().requestsServed, servedAtCut, "no new jobs started during the outage");
    proxy.restore();
    await until(() => allTerminal(direct, ids), "all jobs to finish after the store returns", 60_000);
    await assertExactlyOnce(direct, ids);
    await w.stop();
    await until(() => queueEmpty(q), "queue to empty");
  } finally {
    await w.stop();
    await viaProxy.end();
    await proxy.close();
    await sim.close();
    await direct.close();
  }
});

test("drain: stop hands back unstarted and overdue jobs; another worker finishes them; nothing lost or doubled", async () => {
  const q = await queueFixture();
  const s = await storeFixture();
  const slow = await startVllmSimulator({ port: 0, timeScale: 0.05, faults: { ...DEFAULT_FAULTS, stallRate: 1, stallMs: 20_000 } });
  const fast = await startVllmSimulator({ port: 0, timeScale: 0.05 });
  const a = testWorker(q, s.store, slow.url, { concurrency: 8, drainDeadlineMs: 300 });
  try {
    const ids = await submit(q, 30);
    await until(() => a.worker.held === 8, "the first worker to fill its capacity");
    const t0 = Date.now();
    await a.stop();
    assert.ok(Date.now() - t0 < 5_000, "drain respects its deadline");
    assert.equal(a.worker.held, 0);
    assert.equal(a.worker.counts.released, 8, "running jobs handed back at the deadline");
    const b = testWorker(q, s.store, fast.url);
    try {
      await until(() => allTerminal(s, ids), "the second worker to finish everything", 30_000);
      await assertExactlyOnce(s, ids);
    } finally {
      await b.stop();
    }
  } finally {
    await a.stop();
    await slow.close();
    await fast.close();
    await s.close();
  }
});

test("expiry: a job past its deadline is recorded expired without a provider call", async () => {
  const q = await queueFixture();
  const s = await storeFixture();
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.05 });
  const live = await submit(q, 3);
  const stale = await submit(q, 3, { deadline: new Date(Date.now() - 1000).toISOString() });
  const w = testWorker(q, s.store, sim.url);
  try {
    await until(() => allTerminal(s, [...live, ...stale]), "jobs to finish");
    await assertExactlyOnce(s, live);
    await assertExactlyOnce(s, stale, "expired");
    assert.equal(sim.engine.stats().requestsServed, 3);
  } finally {
    await w.stop();
    await sim.close();
    await s.close();
  }
});

test("priorities: the high class is served first, the low class still completes", async () => {
  const high = await queueFixture();
  const low = await queueFixture();
  const s = await storeFixture();
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.2 });
  const lowIds = await submit(low, 60);
  const highIds = await submit(high, 60);
  const w = testWorker(high, s.store, sim.url, { queueUrls: [high.queueUrl, low.queueUrl], concurrency: 4, receiveBatchSize: 4, receiveParallelism: 1 });
  try {
    await until(() => allTerminal(s, [...highIds, ...lowIds]), "both classes to finish", 60_000);
    const started = (ids: string[]) => s.store.getMany(ids).then((rows) => rows.map((r) => r.startedAt!.getTime()).sort((a, b) => a - b));
    const [h, l] = [await started(highIds), await started(lowIds)];
    const median = (xs: number[]) => xs[Math.floor(xs.length / 2)]!;
    assert.ok(median(h) < median(l), "high-priority jobs start earlier");
    assert.ok(l[0]! < h[h.length - 1]!, "some low-priority jobs start while high-priority work remains (no starvation)");
  } finally {
    await w.stop();
    await sim.close();
    await s.close();
  }
});
