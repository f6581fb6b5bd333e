/**
 * Jobs whose earlier workers died holding them (worker/suspects.ts), in-process over real Postgres, the SQS emulator
 * and the vLLM simulator: such jobs run one at a time on a worker, the others are back on the queue before it calls
 * its provider, and a job that took down maxReceiveCount workers is dead-lettered without running again.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { buildJob, encodeJob, type Job } from "../shared/contract.ts";
import type { CompletionRequest, Provider } from "../shared/providers/provider.ts";
import { VllmClient } from "../shared/providers/vllm.ts";
import { startVllmSimulator } from "../scripts/simulators/vllm/server.ts";
import { ISOLATE_AFTER, Suspects } from "../worker/suspects.ts";
import { queueFixture, stopEmulator, storeFixture, until, type StoreFixture } from "./support/env.ts";
import { testWorker } from "./support/worker.ts";

after(() => stopEmulator());

const MODEL = "meta-llama/Llama-3.1-8B-Instruct";
const job = (id: string) => buildJob({ id, tenant: "t", messages: [{ role: "user", content: `question ${id}` }], params: { max_tokens: 8 } });

/** `n` workers died holding each job: each claimed it and its lease ran out without an outcome. */
async function diedHolding(s: StoreFixture, jobs: Job[], n: number): Promise<void> {
  for (let k = 0; k < n; k++) {
    await s.store.claim(jobs.map((job) => ({ job, workerId: `ghost-${k}`, leaseMs: 60_000, messageId: `m${k}`, receiveCount: 1 })));
    await s.pool.query("UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = ANY($1)", [jobs.map((j) => j.id)]);
  }
}

/** Records, at each call, how many calls were in flight and what the store said of the other jobs. */
class WatchingProvider implements Provider {
  readonly name = "vllm";
  inFlight = 0;
  maxInFlight = 0;
  readonly othersAtCall: string[][] = [];
  constructor(
    private readonly inner: VllmClient,
    private readonly s: StoreFixture,
    private readonly ids: string[],
  ) {}
  async generate(req: CompletionRequest, signal?: AbortSignal) {
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
    try {
      const others = (await this.s.store.getMany(this.ids.filter((id) => id !== req.requestId))).map((r) => `${r.status}:${r.error?.code ?? ""}`);
      this.othersAtCall.push(others);
      return await this.inner.generate(req, signal);
    } finally {
      this.inFlight -= 1;
    }
  }
  close() {
    return this.inner.close();
  }
}

test("jobs whose workers died twice run one at a time, the rest handed back before it calls; all succeed", async () => {
  const q = await queueFixture({ visibilityTimeoutSeconds: 10 });
  const s = await storeFixture();
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.05 });
  const jobs = Array.from({ length: 3 }, (_, i) => job(`suspect-${i}`));
  await diedHolding(s, jobs, ISOLATE_AFTER);
  const { failed } = await q.queue.sendBatch(q.queueUrl, jobs.map((j, i) => ({ id: String(i), body: encodeJob(j) })));
  assert.deepEqual(failed, []);
  const provider = new WatchingProvider(new VllmClient({ baseUrl: sim.url, model: MODEL, timeoutMs: 10_000 }), s, jobs.map((j) => j.id));
  // One receive of all three: they are claimed together, as after the worker that held them died.
  const w = testWorker(q, s.store, sim.url, { provider, visibilityTimeoutSeconds: 10, receiveParallelism: 1 });
  try {
    await until(async () => (await s.store.getMany(jobs.map((j) => j.id))).every((r) => r.status === "succeeded"), "all three succeeded", 40_000);
    assert.equal(provider.maxInFlight, 1, "never two such jobs called at once");
    assert.equal(provider.othersAtCall.length, 3, "one call each");
    // At the first call the other two were back on the queue, released with the reason.
    assert.deepEqual(provider.othersAtCall[0], ["queued:WORKER_LOST", "queued:WORKER_LOST"]);
    assert.ok(w.worker.counts.deferred >= 2, `deferred ${w.worker.counts.deferred}`);
    for (const r of await s.store.getMany(jobs.map((j) => j.id))) assert.equal(r.resultWrites, 1);
  } finally {
    await w.stop();
    await sim.close();
    await s.close();
  }
});

test("a job that took down maxReceiveCount workers is recorded dead and dead-lettered without a provider call", async () => {
  const q = await queueFixture({ maxReceiveCount: 3, visibilityTimeoutSeconds: 10 });
  const s = await storeFixture();
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.05 });
  const killer = job("takes-workers-down");
  // Three deaths recorded; this worker's claim finds the third (its predecessor's lease ran out).
  await diedHolding(s, [killer], 3);
  const { failed } = await q.queue.sendBatch(q.queueUrl, [{ id: "0", body: encodeJob(killer) }]);
  assert.deepEqual(failed, []);
  const provider = new WatchingProvider(new VllmClient({ baseUrl: sim.url, model: MODEL, timeoutMs: 10_000 }), s, [killer.id]);
  const w = testWorker(q, s.store, sim.url, { provider, maxReceiveCount: 3, visibilityTimeoutSeconds: 10 });
  try {
    await until(async () => (await s.store.get(killer.id))?.status === "dead", "the job recorded dead", 20_000);
    const row = await s.store.get(killer.id);
    assert.equal(row?.error?.code, "WORKER_LOST");
    assert.match(row?.error?.message ?? "", /3 workers died holding this job/);
    assert.equal(provider.othersAtCall.length, 0, "no provider call");
    const [copy] = await q.queue.receive(q.dlqUrl, { maxMessages: 1, waitTimeSeconds: 2 });
    assert.equal(copy?.attributes?.failure_code, "WORKER_LOST");
    assert.equal((JSON.parse(copy!.body) as { id: string }).id, killer.id);
  } finally {
    await w.stop();
    await sim.close();
    await s.close();
  }
});

test("Suspects: one slot; quiet() waits for the deferrals under way; delays scatter over 1..visibility", async () => {
  const values = [0, 0.5, 0.999];
  const suspects = new Suspects(() => values.shift() ?? 0);
  assert.equal(suspects.isSuspect(ISOLATE_AFTER - 1), false);
  assert.equal(suspects.isSuspect(ISOLATE_AFTER), true);
  assert.equal(suspects.tryEnter(), true);
  assert.equal(suspects.tryEnter(), false);
  suspects.leave();
  assert.equal(suspects.tryEnter(), true);
  assert.deepEqual([suspects.deferSeconds(30), suspects.deferSeconds(30), suspects.deferSeconds(30)], [1, 16, 30]);
  let settle!: () => void;
  let settled = false;
  void suspects.track(new Promise<void>((r) => (settle = r))).then(() => (settled = true));
  let quiet = false;
  const waiting = suspects.quiet().then(() => (quiet = true));
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  assert.equal(quiet, false, "still waiting for the deferral");
  settle();
  await waiting;
  assert.equal(settled, true);
  // A deferral that fails still ends the wait.
  void suspects.track(Promise.reject(new Error("hand-back failed"))).catch(() => undefined);
  await suspects.quiet();
});
