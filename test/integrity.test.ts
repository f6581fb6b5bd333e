/**
 * Integrity under hostile-but-legal input, against real services (SQS emulator, Postgres, the vLLM simulator):
 * one job's data never harms another, no tenant touches another's job, a job never runs twice at once on one
 * worker, and nothing waits forever.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { buildJob, encodeJob, type JobInput } from "../shared/contract.ts";
import type { CompletionRequest, Provider } from "../shared/providers/provider.ts";
import { VllmClient } from "../shared/providers/vllm.ts";
import { JobStore } from "../shared/store/jobs.ts";
import { startVllmSimulator } from "../scripts/simulators/vllm/server.ts";
import { queueFixture, silentLog, stopEmulator, storeFixture, until, type QueueFixture, type StoreFixture } from "./support/env.ts";
import { testWorker } from "./support/worker.ts";

after(() => stopEmulator());

const MODEL = "meta-llama/Llama-3.1-8B-Instruct";
const job = (id: string, tenant: string, content: string, extra: Partial<JobInput> = {}) =>
  buildJob({ id, tenant, messages: [{ role: "user", content }], params: { max_tokens: 4 }, ...extra });

async function send(q: QueueFixture, bodies: string[]): Promise<void> {
  for (let i = 0; i < bodies.length; i += 10) {
    const { failed } = await q.queue.sendBatch(q.queueUrl, bodies.slice(i, i + 10).map((body, k) => ({ id: String(k), body })));
    assert.deepEqual(failed, []);
  }
}

async function terminal(s: StoreFixture, ids: string[]): Promise<boolean> {
  const rows = await s.store.getMany(ids);
  return rows.length === ids.length && rows.every((r) => r.status !== "queued" && r.status !== "running");
}

async function dlqCodes(q: QueueFixture, want: number): Promise<{ code?: string; id?: string }[]> {
  const got: { code?: string; id?: string }[] = [];
  await until(async () => {
    const batch = await q.queue.receive(q.dlqUrl, { maxMessages: 10, waitTimeSeconds: 0, visibilityTimeoutSeconds: 600 });
    for (const m of batch) got.push({ code: m.attributes?.failure_code, id: (JSON.parse(m.body) as { id?: string }).id });
    return got.length >= want;
  }, `${want} DLQ messages`);
  return got;
}

/** A provider in front of the simulator that records calls per job and can put a NUL in chosen answers. */
class RecordingProvider implements Provider {
  readonly name = "vllm";
  readonly calls = new Map<string, number>();
  readonly inFlight = new Map<string, number>();
  maxOverlap = 0;
  constructor(private readonly inner: VllmClient) {}
  async generate(req: CompletionRequest, signal?: AbortSignal) {
    const key = req.messages?.[0]?.content ?? req.prompt ?? "";
    this.calls.set(key, (this.calls.get(key) ?? 0) + 1);
    const now = (this.inFlight.get(key) ?? 0) + 1;
    this.inFlight.set(key, now);
    this.maxOverlap = Math.max(this.maxOverlap, now);
    try {
      const c = await this.inner.generate(req, signal);
      return key.includes("<nul>") ? { ...c, text: `byte\u0000token\u0000` } : c;
    } finally {
      this.inFlight.set(key, (this.inFlight.get(key) ?? 1) - 1);
    }
  }
  close() {
    return this.inner.close();
  }
}

/** A real store whose claims take 15 ms longer: the database latency at which duplicates slipped through. */
class SlowClaimStore extends JobStore {
  override async claim(...args: Parameters<JobStore["claim"]>) {
    await new Promise((r) => setTimeout(r, 15));
    return super.claim(...args);
  }
}

test("the same job twice on one worker: never two provider calls at once, one result", async () => {
  const q = await queueFixture();
  const s = await storeFixture();
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.05 });
  const provider = new RecordingProvider(new VllmClient({ baseUrl: sim.url, model: MODEL, timeoutMs: 30_000, connections: 64 }));
  const jobs = Array.from({ length: 50 }, (_, i) => job(`dup-${i}`, "t", `question ${i}`));
  // Each job sent twice, the copy a few receives behind the original (a producer retry): the copy arrives while
  // the original is being claimed.
  await send(q, [...jobs.map(encodeJob), ...jobs.map(encodeJob)]);
  const w = testWorker(q, new SlowClaimStore(s.pool), sim.url, { provider, receiveParallelism: 4, concurrency: 128 });
  try {
    const ids = jobs.map((j) => j.id);
    await until(() => terminal(s, ids), "50 jobs to finish", 60_000);
    assert.equal(provider.maxOverlap, 1, "never two calls for one job at the same time");
    for (const r of await s.store.getMany(ids)) {
      assert.equal(r.status, "succeeded");
      assert.equal(r.resultWrites, 1);
    }
    assert.ok([...provider.calls.values()].every((n) => n === 1), "each job generated once");
  } finally {
    await w.stop();
    await provider.close();
    await sim.close();
    await s.close();
  }
});

test("tenants: a second tenant's message with an id in use never runs into or changes the first tenant's job", async () => {
  const q = await queueFixture();
  const s = await storeFixture();
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.05 });
  // Tenant a's attempt was handed back for a retry: its record is queued, lease free.
  const mine = job("shared-id", "a", "tenant a's question");
  const [claim] = await s.store.claim([{ job: mine, workerId: "w0", leaseMs: 60_000, messageId: "m0", receiveCount: 1 }]);
  assert.equal((claim as { kind: string }).kind, "claimed");
  await s.store.release([{ id: mine.id, workerId: "w0", code: "PROVIDER_UNAVAILABLE", message: "503" }]);
  // Tenant a's finished job, reused by tenant b.
  const done = job("done-id", "a", "finished question");
  await s.store.claim([{ job: done, workerId: "w0", leaseMs: 60_000, messageId: "m1", receiveCount: 1 }]);
  await s.store.complete([{ id: done.id, workerId: "w0", output: "a's answer", finishReason: "stop", promptTokens: 1, completionTokens: 1, provider: "vllm", model: MODEL }]);
  await send(q, [encodeJob(job("shared-id", "b", "tenant b's question")), encodeJob(job("done-id", "b", "b wants a's answer"))]);
  const w = testWorker(q, s.store, sim.url);
  try {
    const dead = await dlqCodes(q, 2);
    assert.deepEqual(dead.map((d) => `${d.id}:${d.code}`).sort(), ["done-id:JOB_ID_CONFLICT", "shared-id:JOB_ID_CONFLICT"]);
    const [queued, finished] = await Promise.all([s.store.get("shared-id"), s.store.get("done-id")]);
    assert.equal(queued?.tenant, "a");
    assert.equal(queued?.status, "queued", "tenant a's job is left for its own retry");
    assert.equal(queued?.output, undefined);
    assert.equal(finished?.tenant, "a");
    assert.equal(finished?.output, "a's answer");
    assert.equal(finished?.resultWrites, 1);
  } finally {
    await w.stop();
    await sim.close();
    await s.close();
  }
});

test("a malformed message carrying another job's id never marks that job failed", async () => {
  const q = await queueFixture();
  const s = await storeFixture();
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.05 });
  const real = job("victim", "a", "a real question");
  await s.store.claim([{ job: real, workerId: "w0", leaseMs: 60_000, messageId: "m0", receiveCount: 1 }]);
  await s.store.release([{ id: real.id, workerId: "w0", code: "PROVIDER_UNAVAILABLE", message: "503" }]);
  await send(q, [JSON.stringify({ v: 1, id: "victim", tenant: "mallory", created_at: new Date().toISOString(), prompt: 42 })]);
  const w = testWorker(q, s.store, sim.url);
  try {
    const dead = await dlqCodes(q, 1);
    assert.deepEqual(dead, [{ id: "victim", code: "JOB_INVALID" }]);
    const row = await s.store.get("victim");
    assert.equal(row?.status, "queued");
    assert.equal(row?.tenant, "a");
  } finally {
    await w.stop();
    await sim.close();
    await s.close();
  }
});

test("NUL: an answer with NUL is stored (replaced, counted) and its batch-mates succeed; a prompt with NUL fails alone", async () => {
  const q = await queueFixture();
  const s = await storeFixture();
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.05 });
  const provider = new RecordingProvider(new VllmClient({ baseUrl: sim.url, model: MODEL, timeoutMs: 30_000, connections: 64 }));
  const good = Array.from({ length: 9 }, (_, i) => job(`nul-mate-${i}`, "t", `question ${i}`));
  const nulAnswer = job("nul-answer", "t", "answer me in bytes <nul>");
  const nulPrompt = { ...job("nul-prompt", "t", "placeholder"), messages: [{ role: "user", content: "a\u0000b" }] };
  await send(q, [...good.map(encodeJob), encodeJob(nulAnswer), JSON.stringify(nulPrompt)]);
  const w = testWorker(q, s.store, sim.url, { provider });
  try {
    const ids = [...good.map((j) => j.id), nulAnswer.id, nulPrompt.id];
    await until(() => terminal(s, ids), "every job recorded", 60_000);
    const rows = new Map((await s.store.getMany(ids)).map((r) => [r.id, r]));
    for (const g of good) assert.equal(rows.get(g.id)?.status, "succeeded", `${g.id}: ${rows.get(g.id)?.error?.message}`);
    const answered = rows.get("nul-answer")!;
    assert.equal(answered.status, "succeeded", answered.error?.message);
    assert.equal(answered.output, "byte\uFFFDtoken\uFFFD");
    assert.equal(answered.outputNulReplaced, 2);
    const refused = rows.get("nul-prompt")!;
    assert.equal(refused.status, "failed");
    assert.equal(refused.error?.code, "JOB_INVALID");
    assert.equal(refused.tenant, "t", "the poison record keeps its tenant");
    assert.equal(provider.calls.get("a\u0000b"), undefined, "never sent to the provider");
  } finally {
    await w.stop();
    await provider.close();
    await sim.close();
    await s.close();
  }
});

test("a job whose last delivery's worker vanished is recorded dead by the sweep (WORKER_LOST), and its message reaches the DLQ", async () => {
  const q = await queueFixture({ maxReceiveCount: 3, visibilityTimeoutSeconds: 10 });
  const s = await storeFixture();
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.05 });
  const lost = job("crashes-its-worker", "t", "the prompt that kills");
  await send(q, [encodeJob(lost)]);
  // Three deliveries taken by workers that died: the last one claimed the job with a short lease and vanished.
  for (let i = 0; i < 3; i++) await q.queue.receive(q.queueUrl, { maxMessages: 1, waitTimeSeconds: 1, visibilityTimeoutSeconds: 0 });
  await s.store.claim([{ job: lost, workerId: "ghost", leaseMs: 1, messageId: "m", receiveCount: 3 }]);
  const w = testWorker(q, s.store, sim.url, { maxReceiveCount: 3, visibilityTimeoutSeconds: 10, heartbeatIntervalMs: 100, maintenanceIntervalMs: 200 });
  try {
    await until(async () => (await s.store.get(lost.id))?.status === "dead", "the lost job recorded dead", 20_000);
    const row = await s.store.get(lost.id);
    assert.equal(row?.error?.code, "WORKER_LOST");
    assert.equal(row?.resultWrites, 1);
    const dead = await dlqCodes(q, 1);
    assert.equal(dead[0]?.id, lost.id);
  } finally {
    await w.stop();
    await sim.close();
    await s.close();
  }
});

test("a worker whose store stays unreachable says so and asks for a restart; a later answer resumes intake", async () => {
  const q = await queueFixture();
  const s = await storeFixture();
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.05 });
  const { createPool } = await import("../shared/store/pool.ts");
  const deadPool = await createPool({ url: "postgres://postgres@127.0.0.1:1/test", poolSize: 2 });
  let stalled = 0;
  await send(q, [encodeJob(job("stall-1", "t", "hello"))]);
  const w = testWorker(q, new JobStore(deadPool), sim.url, { stallExitMs: 1_000, onStalled: () => void (stalled += 1) });
  try {
    await until(() => stalled === 1, "the stall to be reported", 20_000);
    assert.equal(w.worker.storeHealthy, false);
  } finally {
    await w.stop().catch(() => undefined);
    await deadPool.end().catch(() => undefined);
    await sim.close();
    await s.close();
  }
});

test("store health: a non-retryable answer after an outage means Postgres is back, and intake resumes", async () => {
  const { DurableStore } = await import("../worker/durable-store.ts");
  const { StoreError } = await import("../shared/errors.ts");
  let calls = 0;
  const fake = {
    claim: async () => {
      calls += 1;
      if (calls === 1) throw new StoreError("STORE_UNAVAILABLE", "down", true);
      throw new StoreError("STORE_QUERY_FAILED", "bad row", false);
    },
  } as unknown as JobStore;
  const hardStop = new AbortController();
  const durable = new DurableStore(fake, silentLog, hardStop.signal, { lingerMs: 0 });
  const claimed = durable.claim({ job: job("h", "t", "x"), workerId: "w", leaseMs: 1000, messageId: "m", receiveCount: 1 });
  await assert.rejects(claimed, /bad row/);
  assert.equal(durable.isHealthy, true, "a statement's own error proves the store answers");
  assert.equal(durable.unhealthyForMs(), 0);
  hardStop.abort();
});

test("circuit open: held jobs go back without a call and no job spends a second delivery on the outage", async () => {
  const q = await queueFixture();
  const s = await storeFixture();
  const jobs = Array.from({ length: 20 }, (_, i) => job(`outage-${i}`, "t", `question ${i}`));
  await send(q, jobs.map(encodeJob));
  // Nothing listens on port 1: every call is refused, the probe never succeeds.
  // Production-length long polls: a receive in flight when the circuit opens would pick up the retried jobs.
  const w = testWorker(q, s.store, "http://127.0.0.1:1", { breakerThreshold: 5, receiveParallelism: 4, concurrency: 64, waitTimeSeconds: 20 });
  try {
    const claimed = async () => (await s.store.getMany(jobs.map((j) => j.id))).length;
    await until(async () => (await claimed()) >= 5 && w.worker.held === 0, "the circuit to open and every held job to go back", 20_000);
    await w.stop();
    // Every message, once visible again, has been delivered once (ours below is the second).
    const seen = new Map<string, number>();
    await until(async () => {
      for (const m of await q.queue.receive(q.queueUrl, { maxMessages: 10, waitTimeSeconds: 1, visibilityTimeoutSeconds: 600 })) {
        seen.set((JSON.parse(m.body) as { id: string }).id, m.receiveCount);
      }
      return seen.size === jobs.length;
    }, "all 20 messages back", 60_000);
    const spent = [...seen].filter(([, n]) => n > 2).map(([id, n]) => `${id}:${n - 1}`);
    assert.deepEqual(spent, [], "deliveries spent on the outage, per job");
  } finally {
    await w.stop();
    await s.close();
  }
});

test("a last delivery handed back unrun travels as a fresh copy and its job is not swept dead meanwhile", async () => {
  const q = await queueFixture({ maxReceiveCount: 3, visibilityTimeoutSeconds: 10 });
  const s = await storeFixture();
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.05 });
  const held = job("held-elsewhere", "t", "a question another worker holds");
  await send(q, [encodeJob(held)]);
  // Two deliveries spent; the next one is the last SQS allows.
  for (let i = 0; i < 2; i++) await q.queue.receive(q.queueUrl, { maxMessages: 1, waitTimeSeconds: 1, visibilityTimeoutSeconds: 0 });
  // Another worker holds a live lease for 3 s, then vanishes: this worker's last delivery finds the job leased.
  await s.store.claim([{ job: held, workerId: "ghost", leaseMs: 3_000, messageId: "m0", receiveCount: 1 }]);
  const w = testWorker(q, s.store, sim.url, { maxReceiveCount: 3, visibilityTimeoutSeconds: 10, heartbeatIntervalMs: 100, maintenanceIntervalMs: 200 });
  try {
    await until(async () => (await s.store.get(held.id))?.status === "succeeded" || (await s.store.get(held.id))?.status === "dead", "the job to end", 30_000);
    const row = await s.store.get(held.id);
    assert.equal(row?.status, "succeeded", `${row?.error?.code}: ${row?.error?.message}`);
  } finally {
    await w.stop();
    await sim.close();
    await s.close();
  }
});

test("a last delivery whose worker died before claiming it: the DLQ sweep records the job dead", async () => {
  const q = await queueFixture({ maxReceiveCount: 2, visibilityTimeoutSeconds: 10 });
  const s = await storeFixture();
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.05 });
  const unclaimed = job("never-claimed", "t", "received twice, claimed never");
  await send(q, [encodeJob(unclaimed)]);
  // Both deliveries taken by workers that died before their claim reached Postgres: no record at all.
  for (let i = 0; i < 2; i++) await q.queue.receive(q.queueUrl, { maxMessages: 1, waitTimeSeconds: 1, visibilityTimeoutSeconds: 0 });
  const w = testWorker(q, s.store, sim.url, { maxReceiveCount: 2, visibilityTimeoutSeconds: 10, heartbeatIntervalMs: 100, maintenanceIntervalMs: 200 });
  try {
    await until(async () => (await s.store.get(unclaimed.id))?.status === "dead", "the job recorded dead", 20_000);
    const row = await s.store.get(unclaimed.id);
    assert.equal(row?.error?.code, "WORKER_LOST");
    assert.equal(row?.tenant, "t");
    const [copy] = await q.queue.receive(q.dlqUrl, { maxMessages: 1, waitTimeSeconds: 1 });
    assert.equal(copy?.messageId !== undefined, true, "the message stays in the DLQ for a redrive");
  } finally {
    await w.stop();
    await sim.close();
    await s.close();
  }
});
