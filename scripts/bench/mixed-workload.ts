/**
 * capacity_ratio on chat-like traffic: prompt and answer lengths drawn from clipped log-normals (prompts 20–4,000
 * tokens, answers 16–2,048, seeded), one job list driven two ways on a fresh simulator each time — directly at each
 * concurrency of a sweep (the best one is the engine's capacity) and through the fleet — with the simulator's
 * early stops off, so every answer is exactly its drawn length. The ratio is fleet ÷ best direct, as capacity_ratio.
 * Prompts are words sized to the drawn length at the simulator's ≈ 4 characters a token (tokens.ts), minus the
 * Llama 3.1 chat template's own tokens (prompt.ts); each starts with its index, so no two share a KV block beyond
 * the template's. Sizes: ~80–90 s a run on this machine at the defaults (1,700 jobs on 8B ≈ 20 jobs/s, 1,200 on 70B
 * ≈ 15 jobs/s, direct at 1,024); a run ends with its longest answers, a tail both ways pay alike.
 */
import type { JobInput } from "../../shared/contract.ts";
import type { CompletionRequest } from "../../shared/providers/provider.ts";
import { PROFILES, type ProfileName } from "../simulators/vllm/profiles.ts";
import { CHARS_PER_TOKEN } from "../simulators/vllm/tokens.ts";
import { LLAMA31_GENERATION_PROMPT_TOKENS, LLAMA31_SYSTEM_BLOCK_TOKENS, LLAMA31_TOKENS_PER_MESSAGE } from "../simulators/vllm/prompt.ts";
import { driveDirect } from "./direct-drive.ts";
import { startSimProcess } from "./processes.ts";

/** Medians and spreads (σ of the underlying normal): a median chat prompt of ~500 tokens, a median answer of ~200. */
const PROMPT = { median: 500, sigma: 1.0, min: 20, max: 4000 };
const ANSWER = { median: 200, sigma: 0.9, min: 16, max: 2048 };
const TEMPLATE_TOKENS = LLAMA31_SYSTEM_BLOCK_TOKENS + LLAMA31_TOKENS_PER_MESSAGE + LLAMA31_GENERATION_PROMPT_TOKENS;
const WORDS = "the of and to in a is that for it as was with be by on not he this are or his from at which but have an they you were her she there been one all we their its who will more would about".split(" ");

/** mulberry32: a 32-bit seeded PRNG, uniform in [0, 1). */
function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A log-normal draw (Box-Muller), rounded and clipped to [min, max]. */
function logNormal(rand: () => number, d: { median: number; sigma: number; min: number; max: number }): number {
  const normal = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  return Math.min(d.max, Math.max(d.min, Math.round(d.median * Math.exp(d.sigma * normal))));
}

export interface MixedJob {
  prompt: string;
  promptTokens: number;
  maxTokens: number;
}

export function mixedJobs(n: number, seed: number): MixedJob[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, (_, i) => {
    const promptTokens = logNormal(rand, PROMPT);
    const chars = Math.max(1, promptTokens - TEMPLATE_TOKENS) * CHARS_PER_TOKEN;
    let text = `request ${i}:`;
    while (text.length < chars) text += ` ${WORDS[Math.floor(rand() * WORDS.length)]}`;
    return { prompt: text.slice(0, chars), promptTokens, maxTokens: logNormal(rand, ANSWER) };
  });
}

export interface MixedResult {
  profile: ProfileName;
  jobs: number;
  /** [concurrency, jobs/s] of each direct drive. */
  direct: [number, number][];
  bestConcurrency: number;
  capacityJobsPerS: number;
  fleetJobsPerS: number;
  ratio: number;
  meanPromptTokens: number;
  meanAnswerTokens: number;
}

/** The fleet's throughput on this job list, on a simulator started with `simFlags`, workers given `env`. */
export type FleetRun = (inputs: JobInput[], simFlags: string[], env: Record<string, string>) => Promise<number>;

export async function measureMixed(o: { profile: ProfileName; jobs: number; concurrencies: number[]; seed: number; fleet: FleetRun; log: (line: string) => void }): Promise<MixedResult> {
  const model = PROFILES[o.profile].model;
  const list = mixedJobs(o.jobs, o.seed);
  const simFlags = ["--profile", o.profile, "--seed", "7", "--early-stop-rate", "0"];
  const request = (i: number): CompletionRequest => ({ model, messages: [{ role: "user", content: list[i]!.prompt }], params: { max_tokens: list[i]!.maxTokens } });
  const direct: [number, number][] = [];
  for (const c of o.concurrencies) {
    const sim = await startSimProcess(simFlags);
    try {
      direct.push([c, await driveDirect(sim.url, c, o.jobs, request, model)]);
    } finally {
      await sim.stop();
    }
    o.log(`mixed ${o.profile}: direct at ${c}: ${direct.at(-1)![1].toFixed(1)} jobs/s`);
  }
  const [bestConcurrency, capacityJobsPerS] = direct.reduce((x, y) => (y[1] > x[1] ? y : x));
  const inputs = list.map((j): JobInput => ({ tenant: "bench", model, messages: [{ role: "user", content: j.prompt }], params: { max_tokens: j.maxTokens } }));
  const fleetJobsPerS = await o.fleet(inputs, simFlags, { VLLM_MODEL: model });
  o.log(`mixed ${o.profile}: fleet ${fleetJobsPerS.toFixed(1)} jobs/s`);
  const mean = (f: (j: MixedJob) => number) => list.reduce((s, j) => s + f(j), 0) / list.length;
  return {
    profile: o.profile,
    jobs: o.jobs,
    direct,
    bestConcurrency,
    capacityJobsPerS,
    fleetJobsPerS,
    ratio: fleetJobsPerS / capacityJobsPerS,
    meanPromptTokens: mean((j) => j.promptTokens),
    meanAnswerTokens: mean((j) => j.maxTokens),
  };
}
