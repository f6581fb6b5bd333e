/**
 * Presence rows and `fleet status` against real Postgres, the SQS emulator and the vLLM simulator: rows come, age
 * out and go; the CLI (a child process, as an operator runs it) counts queues, workers, jobs, providers and cost.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Producer } from "../producer/producer.ts";
import type { FleetStatus } from "../producer/fleet-status.ts";
import { watch } from "../producer/fleet-status-view.ts";
import { startVllmSimulator } from "../scripts/simulators/vllm/server.ts";
import { queueNameOf } from "../shared/queue/queue-name.ts";
import { schemaScopedUrl } from "../shared/store/pool.ts";
import { PresenceStore, type WorkerPresence } from "../shared/store/presence.ts";
import { runPresence } from "../worker/presence.ts";
import { QueueWaits } from "../worker/queue-wait.ts";
import type { WorkerSnapshot } from "../worker/worker.ts";
import { queueFixture, silentLog, stopEmulator, storeFixture, until } from "./support/env.ts";
import { testWorker } from "./support/worker.ts";

after(() => stopEmulator());
const execFileAsync = promisify(execFile);

async function cli(env: Record<string, string>, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const base = { PATH: process.env.PATH ?? "", AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" };
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, ["--import", "tsx", "producer/cli.ts", ...args], { env: { ...base, ...env }, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function snapshot(workerId: string, state: WorkerSnapshot["state"] = "running"): WorkerSnapshot {
  return {
    workerId,
    state,
    startedAt: new Date(),
    held: 3,
    inFlight: 2,
    limit: 8,
    intakePaused: false,
    storeWritesHealthy: true,
    storeWritesFailingForMs: 0,
    jobs: { succeeded: 5, failed: 1, expired: 0, dead: 0, poison: 0, duplicate: 0, leased: 0, retry: 0, released: 0, conflict: 0, deferred: 0 },
    providers: { allOpen: false, routes: [{ name: "vllm", provider: "vllm", state: "open", probeInFlight: false, consecutiveFailures: 3, inFlight: 0, waiting: 0, maxInFlight: 8, lastErrorCode: "PROVIDER_UNAVAILABLE", spentUsdThisHour: 0, overSpendCeiling: false }] },
    queueWaitMs: { "http://127.0.0.1/000000000000/jobs": 1234 },
  };
}

test("presence: a running worker's row appears; a silent one counts as gone after three intervals; a stop removes the row", async () => {
  const s = await storeFixture();
  const store = new PresenceStore(s.pool);
  const stop = new AbortController();
  const loop = runPresence({ store, snapshot: () => snapshot("w-live"), intervalMs: 1_000, opsPort: 9400, log: silentLog }, stop.signal);
  try {
    await until(async () => (await store.list()).length === 1, "the live worker's row");
    const [row] = await store.list();
    assert.equal(row!.workerId, "w-live");
    assert.equal(row!.pid, process.pid);
    assert.equal(row!.gone, false);
    assert.deepEqual([row!.state, row!.held, row!.inFlight, row!.concurrencyLimit, row!.opsPort], ["running", 3, 2, 8, 9400]);
    assert.deepEqual(row!.providers, [{ name: "vllm", state: "open", inFlight: 0, maxInFlight: 8, lastErrorCode: "PROVIDER_UNAVAILABLE", spentUsdThisHour: 0 }]);
    assert.equal(row!.jobs.succeeded, 5);
    assert.deepEqual(row!.queueWaitMs, { "http://127.0.0.1/000000000000/jobs": 1234 });
    // A worker killed after one write: its row stays but its seen_at ages (moved back here rather than waited for).
    const dead: WorkerPresence = { ...row!, workerId: "w-killed", intervalMs: 1_000 };
    await store.beat(dead);
    assert.equal((await store.list()).find((r) => r.workerId === "w-killed")?.gone, false, "fresh: not gone yet");
    await s.pool.query("UPDATE workers SET seen_at = now() - interval '3500 milliseconds' WHERE worker_id = $1", ["w-killed"]);
    const aged = await store.list();
    assert.deepEqual(aged.map((r) => [r.workerId, r.gone]).sort(), [["w-killed", true], ["w-live", false]]);
    assert.equal(await store.prune(3_000), 1, "rows unseen past the prune age go");
    stop.abort();
    await loop;
    assert.deepEqual(await store.list(), [], "a clean stop removes the row");
  } finally {
    stop.abort();
    await loop;
    await s.close();
  }
});

test("queue waits: the longest wait per queue over the last one to two windows", () => {
  const waits = new QueueWaits(1_000, 0);
  waits.note("q/a", 100, 500);
  waits.note("q/a", 450, 600);
  waits.note("q/b", undefined, 600);
  assert.deepEqual(waits.longest(900), { "q/a": 400 });
  assert.deepEqual(waits.longest(1_500), { "q/a": 400 }, "kept through the next window");
  waits.note("q/a", 1_550, 1_600);
  assert.deepEqual(waits.longest(2_100), { "q/a": 50 }, "the older window rolled out");
  assert.deepEqual(waits.longest(4_000), {}, "nothing received lately: no value");
});

test("the terminal view redraws in place until aborted (Ctrl-C), then shows the cursor again", async () => {
  let written = "";
  const out = { write: (chunk: string) => ((written += chunk), true) } as unknown as NodeJS.WritableStream;
  const stop = new AbortController();
  let frames = 0;
  await watch(
    async () => {
      frames += 1;
      if (frames === 3) stop.abort();
      return `frame ${frames}\nsecond line\n`;
    },
    out,
    stop.signal,
    10,
  );
  assert.equal(frames, 3);
  assert.equal(written.split("\x1b[H").length - 1, 2, "two frames drawn from the top; the third was gathered after Ctrl-C");
  assert.match(written, /frame 2\x1b\[K\nsecond line\x1b\[K\n/, "each line cleared to its end");
  assert.ok(written.endsWith("\x1b[?25h\n"), "cursor shown again on exit");
});

test("fleet status --json: two workers, jobs done, a served and an unserved queue, DLQ, providers and cost", async () => {
  const q = await queueFixture();
  const other = await queueFixture();
  const s = await storeFixture();
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.05 });
  // Priced so the cost is not zero: 1,000 USD per 1M tokens.
  const router = { prices: { vllm: { "*": { inputPerMTokUsd: 1_000, outputPerMTokUsd: 1_000 } } } };
  const workers = [testWorker(q, s.store, sim.url, { router }), testWorker(q, s.store, sim.url, { router })];
  const presence = new PresenceStore(s.pool);
  const stop = new AbortController();
  const loops = workers.map((w) => runPresence({ store: presence, snapshot: () => w.worker.snapshot(), intervalMs: 1_000, log: silentLog }, stop.signal));
  try {
    const jobs = Array.from({ length: 20 }, (_, i) => ({ tenant: "t", messages: [{ role: "user" as const, content: `q ${i}` }], params: { max_tokens: 8 } }));
    const { ids } = await new Producer({ queue: q.queue, queueUrl: q.queueUrl }).submitMany(jobs);
    await until(async () => (await s.store.getMany(ids)).filter((r) => r.status === "succeeded").length === 20, "every job to succeed");
    await until(async () => {
      const d = await q.queue.depth(q.queueUrl);
      return d.visible + d.inFlight === 0;
    }, "every message deleted");
    // The second class no worker reads: 5 waiting, 2 delayed, and one message in its DLQ.
    await other.queue.sendBatch(other.queueUrl, [
      ...Array.from({ length: 5 }, (_, i) => ({ id: `v${i}`, body: `waiting ${i}` })),
      ...Array.from({ length: 2 }, (_, i) => ({ id: `d${i}`, body: `delayed ${i}`, delaySeconds: 600 })),
    ]);
    await other.queue.sendBatch(other.dlqUrl, [{ id: "x", body: "not a job" }]);
    await until(async () => {
      const rows = await presence.list();
      return rows.length === 2 && rows.reduce((n, r) => n + (r.jobs.succeeded ?? 0), 0) === 20;
    }, "both presence rows to count every job");

    const env = { DATABASE_URL: schemaScopedUrl(s.url, s.schema), QUEUE_URLS: `${q.queueUrl},${other.queueUrl}`, SQS_ENDPOINT: q.endpoint, AWS_REGION: "us-east-1" };
    const run = await cli(env, "status", "--json");
    assert.equal(run.code, 0, run.stderr);
    const status = JSON.parse(run.stdout) as FleetStatus;
    assert.deepEqual(status.errors, []);

    const [served, unserved] = status.queues;
    assert.deepEqual([served!.name, served!.visible, served!.inFlight, served!.delayed, served!.dlq?.visible], [queueNameOf(q.queueUrl), 0, 0, 0, 0]);
    assert.equal(typeof served!.oldestWaitMs, "number", "the workers saw how long their messages waited");
    assert.deepEqual([unserved!.name, unserved!.visible, unserved!.delayed, unserved!.oldestWaitMs, unserved!.dlq?.visible], [queueNameOf(other.queueUrl), 5, 2, null, 1]);

    assert.deepEqual(status.workers.map((w) => w.id).sort(), workers.map((w) => w.worker.workerId).sort());
    assert.equal(status.goneWorkers, 0);
    assert.deepEqual(status.workers.map((w) => [w.state, w.inFlight, w.limit]), [["running", 0, 32], ["running", 0, 32]]);
    assert.equal(status.workers.reduce((n, w) => n + w.done, 0), 20);

    const m = status.lastMinute!;
    assert.deepEqual([m.finished, m.succeeded, m.failed, m.dead, m.expired], [20, 20, 0, 0, 0]);
    assert.ok(m.p50Ms !== null && m.p95Ms !== null && m.p50Ms > 0 && m.p95Ms >= m.p50Ms, `p50 ${m.p50Ms} p95 ${m.p95Ms}`);

    assert.deepEqual(status.providers, [{ name: "vllm", breakers: { closed: 2 }, inFlight: 0, maxInFlight: 64, lastErrorCodes: [] }]);
    const expectedUsd = (await s.store.getMany(ids)).reduce((n, r) => n + (r.costUsd ?? 0), 0);
    assert.ok(expectedUsd > 0);
    assert.ok(Math.abs(status.cost!.totalUsd - expectedUsd) < 1e-9, `cost ${status.cost!.totalUsd} vs ${expectedUsd}`);
    assert.deepEqual(Object.keys(status.cost!.byProvider), ["vllm"]);

    const text = await cli(env, "status", "--once");
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /WORKERS 2 live/);
    assert.match(text.stdout, new RegExp(`${queueNameOf(other.queueUrl)}\\s+5\\s+0\\s+2\\s+-\\s+1`));
    assert.match(text.stdout, /LAST MINUTE 20 finished/);
    assert.doesNotMatch(text.stdout, /\x1b\[/, "no terminal codes when stdout is not a terminal");
  } finally {
    stop.abort();
    await Promise.all(loops);
    await Promise.all(workers.map((w) => w.stop()));
    await sim.close();
    await s.close();
    q.queue.close();
    other.queue.close();
  }
});

test("fleet status with Postgres unreachable: the queues still show, the store's sections name their failure (exit 1)", async () => {
  const q = await queueFixture();
  try {
    const run = await cli({ DATABASE_URL: "postgres://postgres:canary-pw@127.0.0.1:1/test", QUEUE_URLS: q.queueUrl, SQS_ENDPOINT: q.endpoint }, "status", "--json");
    assert.equal(run.code, 1, run.stderr);
    assert.ok(!run.stdout.includes("canary-pw") && !run.stderr.includes("canary-pw"), "no password in the output");
    const status = JSON.parse(run.stdout) as FleetStatus;
    assert.equal(status.queues[0]!.visible, 0);
    assert.deepEqual(status.errors.map((e) => [e.section, e.code]).sort(), [["cost", "STORE_UNAVAILABLE"], ["throughput", "STORE_UNAVAILABLE"], ["workers", "STORE_UNAVAILABLE"]]);
    assert.equal(status.lastMinute, null);
  } finally {
    q.queue.close();
  }
});
