/**
 * Adaptive concurrency: the worker reads vLLM's /metrics and keeps the server's waiting queue short instead of
 * flooding it; without /metrics it keeps its static limit.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { nextLimit, runBackpressure, SLOW_START_LIMIT, type BackendGauges } from "../worker/backpressure.ts";
import { Capacity } from "../worker/capacity.ts";
import { Producer } from "../producer/producer.ts";
import { VllmClient } from "../shared/providers/vllm.ts";
import { startVllmSimulator } from "../scripts/simulators/vllm/server.ts";
import { queueFixture, silentLog, stopEmulator, storeFixture, until } from "./support/env.ts";
import { testWorker } from "./support/worker.ts";

after(() => stopEmulator());

test("nextLimit: cuts by our share of the excess waiting, grows while the queue is short and our slots are full", () => {
  const o = { targetWaiting: 8, minLimit: 4 };
  // We own half the server's load; 40 waiting over a target of 8 → cut 16 from what we actually run.
  assert.equal(nextLimit(200, { running: 64, waiting: 40 }, { ours: 52, held: 60 }, o, 1000), 52 - 16);
  assert.equal(nextLimit(200, { running: 64, waiting: 500 }, { ours: 564, held: 564 }, o, 1000), 4, "never below the floor");
  assert.equal(nextLimit(100, { running: 95, waiting: 0 }, { ours: 95, held: 98 }, o, 1000), 110, "additive increase when our slots are full");
  assert.equal(nextLimit(1000, { running: 950, waiting: 0 }, { ours: 950, held: 999 }, o, 1000), 1000, "never above the static limit");
  assert.equal(nextLimit(100, { running: 20, waiting: 0 }, { ours: 20, held: 20 }, o, 1000), 100, "no growth while slots sit idle");
  assert.equal(nextLimit(64, { running: 64, waiting: 0 }, { ours: 64, held: 64 }, o, 1000, true), 128, "slow start doubles");
  assert.equal(nextLimit(64, { running: 0, waiting: 0 }, { ours: 2, held: 64 }, o, 1000, true), 128, "a fast backend: slots full, server idle → grow");
  assert.equal(nextLimit(64, { running: 0, waiting: 0 }, { ours: 64, held: 64 }, o, 1000, true), 64, "a reading taken before our calls arrived: no growth");
});

/** What one read of /metrics gives: gauges, "no /metrics" (undefined) or a failure (timeout, 5xx, refused). */
type Read = BackendGauges | undefined | "fail";
const idle: BackendGauges = { running: 0, waiting: 0 };

/**
 * Runs the real control loop over a scripted sequence of reads against a real Capacity of 1,024 whose slots are
 * all taken (so the limit is what holds us back). Returns the limit after each read.
 */
async function limitsAfter(script: Read[]): Promise<number[]> {
  const capacity = new Capacity(1024, 1024);
  capacity.reserve(1024);
  const limits: number[] = [];
  const stop = new AbortController();
  let step = 0;
  await runBackpressure(
    {
      capacity,
      readGauges: async () => {
        if (step > 0) limits.push(capacity.limit);
        const read = script[step++];
        if (step > script.length) stop.abort();
        if (read === "fail") throw new Error("metrics: HTTP 503");
        return read;
      },
      // A fast backend: every slot taken, each call finished as soon as it reaches the server (so none shows).
      ourInFlight: () => 0,
      intervalMs: 0,
      targetWaiting: 8,
      minLimit: 10,
      log: silentLog,
    },
    stop.signal,
  );
  return limits;
}

test("a backend with no /metrics from the start keeps the static limit", async () => {
  assert.deepEqual(await limitsAfter([undefined, undefined, "fail"]), [1024, 1024, 1024]);
});

test("metrics that worked and then fail never raise the limit: kept through a blip, halved towards the floor in an outage", async () => {
  const limits = await limitsAfter([idle, idle, "fail", "fail", "fail", "fail", "fail", undefined, "fail"]);
  assert.deepEqual(limits.slice(0, 2), [2 * SLOW_START_LIMIT, 4 * SLOW_START_LIMIT], "slow start doubles while the server keeps up");
  const [kept, decayed] = [limits.slice(2, 4), limits.slice(4)];
  assert.deepEqual(kept, [256, 256], "the first failed reads keep the limit");
  // Then each further failure halves the distance to minLimit (10); "no /metrics" after metrics worked is a failure too.
  assert.deepEqual(decayed, [133, 71, 40, 25, 17]);
});

test("a failure before the first reading does not flood either: the slow-start limit stands", async () => {
  const limits = await limitsAfter(["fail", "fail", idle]);
  assert.deepEqual(limits, [SLOW_START_LIMIT, SLOW_START_LIMIT, 2 * SLOW_START_LIMIT]);
});

test("when the backend answers again after an outage, slow start resumes from min(SLOW_START_LIMIT, limit)", async () => {
  // Grow to 512, lose metrics long enough to decay to 135, recover: start again from 64 and double.
  const outage: Read[] = ["fail", "fail", "fail", "fail"];
  const limits = await limitsAfter([idle, idle, idle, ...outage, idle, idle]);
  assert.deepEqual(limits.slice(0, 7), [128, 256, 512, 512, 512, 261, 135]);
  assert.deepEqual(limits.slice(7), [2 * SLOW_START_LIMIT, 4 * SLOW_START_LIMIT]);
  // Decayed below the slow-start limit: resume from there, not from a higher one.
  const deep = await limitsAfter([idle, ...Array<Read>(12).fill("fail"), idle]);
  assert.ok(deep[12]! < SLOW_START_LIMIT);
  assert.equal(deep[13], 2 * deep[12]!);
});

async function peakWaiting(adaptive: boolean): Promise<{ peak: number; served: number }> {
  const q = await queueFixture();
  const s = await storeFixture();
  // A small engine: 16 sequences at once; the worker may hold 200.
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.5, maxNumSeqs: 16, seed: 3 });
  const gauges = new VllmClient({ baseUrl: sim.url, model: "m", timeoutMs: 5000 });
  const w = testWorker(q, s.store, sim.url, {
    concurrency: 200,
    readGauges: adaptive ? (signal) => gauges.metrics(signal) : undefined,
  });
  try {
    const res = await new Producer({ queue: q.queue, queueUrl: q.queueUrl }).submitMany(
      Array.from({ length: 300 }, (_, i) => ({ tenant: "t", prompt: `job ${i}`, params: { max_tokens: 64 } })),
    );
    await until(async () => (await s.store.countByStatus()).succeeded === res.ids.length, "all jobs to finish", 120_000);
    return { peak: sim.engine.stats().peakWaiting, served: sim.engine.stats().requestsServed };
  } finally {
    await w.stop();
    await gauges.close();
    await sim.close();
    await s.close();
  }
}

test("with /metrics the server's waiting queue stays short; without, the worker floods it", async () => {
  const flooded = await peakWaiting(false);
  const adaptive = await peakWaiting(true);
  assert.equal(flooded.served, 300);
  assert.equal(adaptive.served, 300);
  assert.ok(flooded.peak >= 150, `static limit floods the server (peak waiting ${flooded.peak})`);
  assert.ok(adaptive.peak < flooded.peak / 2, `adaptive keeps it short (peak waiting ${adaptive.peak} vs ${flooded.peak})`);
});
