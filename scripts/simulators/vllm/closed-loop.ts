/**
 * Benchmark workloads run against the real engine in virtual time (clock.ts): what `vllm bench serve
 * --max-concurrency C` or AIPerf's concurrency mode does (C clients, each sending its next request as soon as the
 * last one is answered; fixed prompt and output lengths, unique prompts) and vLLM's offline latency test (one batch
 * submitted at once). Minutes of simulated load take milliseconds, and the numbers are exact for the model: no wall
 * clock, no HTTP, no CPU contention.
 */
import { VirtualClock } from "./clock.ts";
import { Engine, type EngineConfig, type SequenceResult } from "./engine.ts";
import { mulberry32 } from "./generator.ts";
import { BLOCK_SIZE } from "./prefix-cache.ts";

export interface ClosedLoopWorkload {
  concurrency: number;
  promptTokens: number;
  outputTokens: number;
  /** Simulated ms before measuring (the start-up burst settles). Default 20 s. */
  warmupMs?: number;
  /** Simulated ms measured. Default 60 s. */
  measureMs?: number;
}

export interface LoadResult {
  concurrency: number;
  /** Output tokens per simulated second over the measured window. */
  outputTokensPerS: number;
  /** Means over the requests that finished in the window, ms. */
  ttftMs: number;
  /** Mean time per output token after the first, (e2e − TTFT) / (output − 1), as NIM's ITL and vLLM's TPOT. */
  itlMs: number;
  e2eMs: number;
  e2eP50Ms: number;
  e2eP99Ms: number;
  requests: number;
}

/** Prompt block hashes no other request shares (benchmarks send random prompts: no prefix-cache hits). */
function uniqueBlocks(random: () => number, promptTokens: number): number[] {
  return Array.from({ length: Math.floor(promptTokens / BLOCK_SIZE) }, () => Math.floor(random() * 2 ** 32));
}

export function runClosedLoop(config: EngineConfig, w: ClosedLoopWorkload): LoadResult {
  const warmupMs = w.warmupMs ?? 20_000;
  const measureMs = w.measureMs ?? 60_000;
  const clock = new VirtualClock();
  const engine = new Engine({ ...config, instant: false }, undefined, clock);
  const random = mulberry32(config.seed ^ 0xc105ed);
  const done: { finishedMs: number; result: SequenceResult }[] = [];
  let generatedAtWarmup = 0;
  const send = (): void => {
    const spec = { promptTokens: w.promptTokens, outputTokens: w.outputTokens, finishReason: "length" as const, promptBlocks: uniqueBlocks(random, w.promptTokens) };
    engine.submit(spec, (result) => {
      if (result.outcome === "error") return;
      done.push({ finishedMs: clock.now(), result });
      if (clock.now() < warmupMs + measureMs) send();
    });
  };
  for (let i = 0; i < w.concurrency; i++) send();
  clock.run(warmupMs);
  generatedAtWarmup = engine.stats().generationTokens;
  clock.run(warmupMs + measureMs);
  const generated = engine.stats().generationTokens - generatedAtWarmup;
  engine.close();
  const measured = done.filter((d) => d.finishedMs >= warmupMs && d.finishedMs <= warmupMs + measureMs).map((d) => d.result);
  const mean = (f: (r: SequenceResult) => number) => measured.reduce((a, r) => a + f(r), 0) / Math.max(1, measured.length);
  const e2e = measured.map((r) => r.e2eMs).sort((a, b) => a - b);
  const pct = (p: number) => e2e[Math.min(e2e.length - 1, Math.floor(p * e2e.length))] ?? NaN;
  return {
    concurrency: w.concurrency,
    outputTokensPerS: generated / (measureMs / 1000),
    ttftMs: mean((r) => r.ttftMs),
    itlMs: mean((r) => (r.e2eMs - r.ttftMs) / Math.max(1, r.outputTokens - 1)),
    e2eMs: mean((r) => r.e2eMs),
    e2eP50Ms: pct(0.5),
    e2eP99Ms: pct(0.99),
    requests: measured.length,
  };
}

/** vLLM's offline latency test: `batch` requests submitted together; ms until the last one finishes. */
export function runBatchLatency(config: EngineConfig, batch: number, promptTokens: number, outputTokens: number): number {
  const clock = new VirtualClock();
  const engine = new Engine({ ...config, instant: false }, undefined, clock);
  const random = mulberry32(config.seed ^ 0xba7c4);
  let lastMs = 0;
  for (let i = 0; i < batch; i++) {
    const spec = { promptTokens, outputTokens, finishReason: "length" as const, promptBlocks: uniqueBlocks(random, promptTokens) };
    engine.submit(spec, () => (lastMs = clock.now()));
  }
  clock.run();
  engine.close();
  return lastMs;
}
