/**
 * The simulator's profiles held to published figures (calibration-points.ts) within the stated tolerances, and the
 * step model's shape. Runs the real engine in virtual time: a few seconds of CPU for minutes of simulated load.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { calibrate } from "../scripts/simulators/vllm/calibration.ts";
import { CALIBRATION_POINTS } from "../scripts/simulators/vllm/calibration-points.ts";
import { runBatchLatency, runClosedLoop } from "../scripts/simulators/vllm/closed-loop.ts";
import { VirtualClock } from "../scripts/simulators/vllm/clock.ts";
import { Engine } from "../scripts/simulators/vllm/engine.ts";
import { PROFILES } from "../scripts/simulators/vllm/profiles.ts";
import { stepDurationMs } from "../scripts/simulators/vllm/step-time.ts";

const EIGHT_B = { ...PROFILES["llama-3.1-8b-h100"], seed: 0, timeScale: 1 };

test("every held published point is within its tolerance, and throughput flattens past concurrency 150", () => {
  const { rows, saturation } = calibrate(["llama-3.1-8b-h100", "llama-3.1-70b-8xh100"], { measureMs: 30_000 });
  assert.equal(rows.length, CALIBRATION_POINTS.length);
  const held = rows.filter((r) => r.ok !== undefined);
  assert.ok(held.length >= 40, `${held.length} held points`);
  const out = held.filter((r) => !r.ok).map((r) => `${r.point.profile} ${r.point.source} ${JSON.stringify(r.point.workload)} ${r.point.metric}: ${r.measured.toFixed(1)} vs ${r.point.published}`);
  assert.deepEqual(out, []);
  // vLLM's own figure is the tight one: same engine, same precision.
  const nightly = rows.find((r) => r.point.profile === "llama-3.1-8b-h100" && r.point.metric === "batch_latency_ms")!;
  assert.ok(Math.abs(nightly.ratio - 1) <= 0.05, `batch-8 latency ${nightly.measured} ms vs ${nightly.point.published}`);
  assert.equal(saturation.length, 1);
  assert.ok(saturation[0]!.ok, `throughput at 1024 is ${saturation[0]!.gain.toFixed(2)}× that at 150`);
});

test("step model: decode steps are memory-bound (weight read), big prefill chunks compute-bound, never added together", () => {
  const m = PROFILES["llama-3.1-8b-h100"];
  const decode = stepDurationMs(m, { seqs: 1, tokens: 1, contextTokens: 300 });
  assert.ok(Math.abs(decode - (m.stepOverheadMs + m.stepPerSeqMs + m.stepWeightsReadMs + 300 * m.stepPerContextTokenMs)) < 1e-9);
  // A small chunk rides on the weight read for free; a full 8,192-token chunk costs its FLOPs, not FLOPs + weight read.
  const smallChunk = stepDurationMs(m, { seqs: 2, tokens: 1 + 100, contextTokens: 400 });
  assert.ok(smallChunk - decode < 0.1, `${smallChunk} vs ${decode}`);
  const fullChunk = stepDurationMs(m, { seqs: 1, tokens: 8192, contextTokens: 8192 });
  const flops = 8192 * m.stepPerTokenComputeMs;
  assert.ok(fullChunk < m.stepOverheadMs + flops + 1, `${fullChunk} ms for 8,192 tokens`);
  assert.ok(fullChunk >= flops);
});

test("jitter: steps vary by at most ±stepJitter, seeded (same seed, same run), and closed-loop e2e is not one number", () => {
  const run = (seed: number) => runClosedLoop({ ...EIGHT_B, seed }, { concurrency: 64, promptTokens: 200, outputTokens: 128, warmupMs: 5_000, measureMs: 20_000 });
  const a = run(1);
  assert.deepEqual(run(1), a, "deterministic for a seed");
  assert.notDeepEqual(run(2), a, "another seed, another run");
  assert.ok(a.e2eP99Ms > a.e2eP50Ms, `p50 ${a.e2eP50Ms} p99 ${a.e2eP99Ms}`);
  const plain = runBatchLatency({ ...EIGHT_B, stepJitter: 0 }, 1, 32, 200);
  for (const seed of [1, 2, 3]) {
    const jittered = runBatchLatency({ ...EIGHT_B, seed }, 1, 32, 200);
    assert.notEqual(jittered, plain);
    assert.ok(Math.abs(jittered / plain - 1) < EIGHT_B.stepJitter, `${jittered} vs ${plain}`);
  }
});

test("the virtual clock runs the same engine as the wall clock: a request's simulated latency is the model's", () => {
  const clock = new VirtualClock();
  const engine = new Engine({ ...EIGHT_B, stepJitter: 0, instant: false }, undefined, clock);
  let e2e = -1;
  engine.submit({ promptTokens: 100, outputTokens: 10, finishReason: "length" }, (r) => (e2e = r.e2eMs));
  clock.run();
  const m = EIGHT_B;
  const step = (tokens: number, context: number) => stepDurationMs(m, { seqs: 1, tokens, contextTokens: context });
  let expected = step(100, 100);
  for (let i = 1; i < 10; i++) expected += step(1, 100 + i);
  assert.ok(Math.abs(e2e - expected) < 1e-6, `${e2e} vs ${expected}`);
  engine.close();
});
