/**
 * Published performance figures each profile is checked against, with where they come from and how close the
 * simulator must stay (calibrate.ts prints the comparison; test/vllm-calibration.test.ts holds it). Only numbers we
 * could read in the published source are here; what the sources leave out is said in `caveat`.
 *
 * Tolerances follow how comparable the source is:
 *  - vLLM's own nightly latency test runs the same engine at the same precision (BF16): ±5 %.
 *  - NVIDIA's NIM tables are TensorRT-LLM, not vLLM, and the stored copy of the page does not show their input/output
 *    lengths, GPU count or precision (its other tables on the page are FP8): throughput and ITL within a factor of 2,
 *    TTFT within a factor of 4 (closed-loop TTFT depends on how the clients' arrivals bunch, which no table states).
 *    We run them with 200-token prompts and 200-token answers — an assumption, not a published figure.
 *  - llm-d-inference-sim's tables are ranges its own docs call "order-of-magnitude estimates": shown, not held.
 */
import type { ProfileName } from "./profiles.ts";

export const VLLM_NIGHTLY_URL = "https://buildkite.com/vllm/performance-benchmark/builds/9555";
export const NIM_URL = "https://docs.nvidia.com/nim/benchmarking/llm/1.0.0/performance";
export const LLM_D_URL = "https://github.com/llm-d/llm-d-inference-sim/blob/main/docs/latency-profiles.md";

/** What is measured: a batch submitted at once (vLLM's latency test) or a closed loop of `concurrency` clients. */
export type CalibrationWorkload =
  | { kind: "batch"; batch: number; promptTokens: number; outputTokens: number }
  | { kind: "closed-loop"; concurrency: number; promptTokens: number; outputTokens: number };

export type CalibrationMetric = "batch_latency_ms" | "output_tokens_per_s" | "ttft_ms" | "itl_ms";

/** How close the simulator must be: a ratio band around the figure, an upper bound, or nothing (shown only). */
export type Tolerance = { kind: "ratio"; min: number; max: number } | { kind: "at-most"; factorMin: number } | { kind: "range"; low: number; high: number; held: false };

export interface CalibrationPoint {
  profile: Exclude<ProfileName, "instant">;
  source: string;
  url: string;
  /** What the source measured, in its words. */
  setup: string;
  workload: CalibrationWorkload;
  metric: CalibrationMetric;
  published: number;
  tolerance: Tolerance;
  caveat?: string;
}

const within5pct: Tolerance = { kind: "ratio", min: 0.95, max: 1.05 };
const factor2: Tolerance = { kind: "ratio", min: 0.5, max: 2 };
const factor4: Tolerance = { kind: "ratio", min: 0.25, max: 4 };
const NIM_CAVEAT = "TensorRT-LLM; lengths, GPUs and precision not legible in our copy; run as 200 in / 200 out";

function nim(profile: CalibrationPoint["profile"], version: string, rows: [number, number, number, number][]): CalibrationPoint[] {
  return rows.flatMap(([concurrency, ttft, itl, throughput]) => {
    const workload: CalibrationWorkload = { kind: "closed-loop", concurrency, promptTokens: 200, outputTokens: 200 };
    const base = { profile, source: `NVIDIA NIM ${version}`, url: NIM_URL, setup: `AIPerf, concurrency ${concurrency}`, workload, caveat: NIM_CAVEAT };
    return [
      { ...base, metric: "ttft_ms" as const, published: ttft, tolerance: factor4 },
      { ...base, metric: "itl_ms" as const, published: itl, tolerance: factor2 },
      { ...base, metric: "output_tokens_per_s" as const, published: throughput, tolerance: factor2 },
    ];
  });
}

export const CALIBRATION_POINTS: CalibrationPoint[] = [
  {
    profile: "llama-3.1-8b-h100",
    source: "vLLM nightly benchmark",
    url: VLLM_NIGHTLY_URL,
    setup: "latency_llama8B_tp1 on H100: batch 8, 32 in, 128 out, median",
    workload: { kind: "batch", batch: 8, promptTokens: 32, outputTokens: 128 },
    metric: "batch_latency_ms",
    published: 997.365,
    tolerance: within5pct,
  },
  // Llama-3.1-8b-instruct, NIM 1.8.0: concurrency, TTFT ms, ITL ms, throughput tokens/s.
  ...nim("llama-3.1-8b-h100", "1.8.0 Llama-3.1-8b-instruct", [
    [1, 10.26, 4.63, 214.56],
    [5, 16.81, 4.58, 1076.88],
    [25, 36.34, 5.19, 4678.88],
    [50, 67.41, 5.91, 8018.23],
    [100, 119.97, 7.57, 12214.97],
    [150, 346.53, 9.81, 12988.89],
    [200, 465.18, 12.65, 13348.4],
    [250, 605.6, 16.14, 12964.72],
  ]),
  {
    profile: "llama-3.1-8b-h100",
    source: "llm-d-inference-sim latency table",
    url: LLM_D_URL,
    setup: "7–8B on H100, BF16, batch 1: inter-token latency",
    workload: { kind: "closed-loop", concurrency: 1, promptTokens: 256, outputTokens: 200 },
    metric: "itl_ms",
    published: 12.5,
    tolerance: { kind: "range", low: 10, high: 15, held: false },
    caveat: "an estimate range, not a measurement; vLLM's own batch-8 figure above is below it too",
  },
  {
    profile: "llama-3.1-8b-h100",
    source: "llm-d-inference-sim latency table",
    url: LLM_D_URL,
    setup: "7–8B on H100, BF16, batch 1, 256-token prompt: time to first token",
    workload: { kind: "closed-loop", concurrency: 1, promptTokens: 256, outputTokens: 200 },
    metric: "ttft_ms",
    published: 90,
    tolerance: { kind: "range", low: 60, high: 120, held: false },
    caveat: "an estimate range including tokenization and HTTP, which the simulator does not model",
  },
  {
    profile: "llama-3.1-70b-8xh100",
    source: "vLLM nightly benchmark",
    url: VLLM_NIGHTLY_URL,
    setup: "latency_llama70B_tp4 on H100 (half the GPUs): batch 8, 32 in, 128 out, median",
    workload: { kind: "batch", batch: 8, promptTokens: 32, outputTokens: 128 },
    metric: "batch_latency_ms",
    published: 2444.3,
    tolerance: { kind: "at-most", factorMin: 0.5 },
    caveat: "TP=4; TP=8 on the same GPUs must be faster, and not more than 2× (the weight read halves, the rest does not)",
  },
  // Llama-3.1-70b-instruct, NIM 1.3.0 (the 200-concurrency throughput is cut off in our copy: left out).
  ...nim("llama-3.1-70b-8xh100", "1.3.0 Llama-3.1-70b-instruct", [
    [1, 25.05, 13.21, 75.36],
    [5, 64.82, 12.64, 387.55],
    [25, 146.11, 15.31, 1564.9],
    [50, 169.61, 17.42, 2743.6],
    [100, 235.17, 23.28, 4092.34],
    [150, 511.21, 27.73, 4962.78],
  ]),
  {
    profile: "llama-3.1-70b-8xh100",
    source: "llm-d-inference-sim latency table",
    url: LLM_D_URL,
    setup: "70B TP=8 on H100, BF16, batch 1: inter-token latency",
    workload: { kind: "closed-loop", concurrency: 1, promptTokens: 256, outputTokens: 200 },
    metric: "itl_ms",
    published: 23,
    tolerance: { kind: "range", low: 18, high: 28, held: false },
    caveat: "an estimate range, not a measurement",
  },
  {
    profile: "llama-3.1-70b-8xh100",
    source: "llm-d-inference-sim latency table",
    url: LLM_D_URL,
    setup: "70B TP=8 on H100, BF16, batch 1, 256-token prompt: time to first token",
    workload: { kind: "closed-loop", concurrency: 1, promptTokens: 256, outputTokens: 200 },
    metric: "ttft_ms",
    published: 200,
    tolerance: { kind: "range", low: 150, high: 250, held: false },
    caveat: "an estimate range including tokenization and HTTP, which the simulator does not model",
  },
];

/** Saturation shape: published curves flatten near concurrency 150 (NIM 8B: +3 % from 150 to 250). */
export const SATURATION_CHECK = { profile: "llama-3.1-8b-h100" as const, from: 150, to: 1024, maxGain: 1.5 };

/** Whether `measured` satisfies the point's tolerance; undefined when the point is only shown. */
export function withinTolerance(point: CalibrationPoint, measured: number): boolean | undefined {
  const t = point.tolerance;
  const ratio = measured / point.published;
  if (t.kind === "ratio") return ratio >= t.min && ratio <= t.max;
  if (t.kind === "at-most") return ratio <= 1 && ratio >= t.factorMin;
  return undefined;
}
