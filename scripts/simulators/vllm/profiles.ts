/**
 * Hardware/model profiles for the simulated engine. A profile is only defaults: every field can be overridden by a
 * flag, an env variable or `startVllmSimulator({...})`. The step model is step-time.ts; the published figures each
 * profile is held to, with their sources and the tolerance, are calibration-points.ts (README "Calibration").
 *
 * llama-3.1-8b-h100: Llama-3.1-8B-Instruct, BF16, one H100 SXM (3.35 TB/s HBM3, 989 dense BF16 TFLOPS), vLLM V1
 * defaults (max_num_seqs 1024, max_num_batched_tokens 8192, prefix caching on). Weights 16.1 GB → ≈ 5.3 ms to stream
 * at ~90 % of peak bandwidth; 14 GFLOP a token (non-embedding weights) → ≈ 0.021 ms at ~70 % of peak; KV 128 KiB a
 * token → ≈ 0.00005 ms to read. The overhead is what vLLM's own batch-8 latency figure leaves once those are paid.
 * llama-3.1-70b-8xh100: Llama-3.1-70B-Instruct, BF16, TP=8 on 8×H100 SXM. 141 GB of weights over 8 GPUs → ≈ 5.9 ms;
 * 137 GFLOP a token over 8 GPUs at ~50 % plus the per-layer all-reduce traffic → ≈ 0.04 ms; 320 KiB of KV a token
 * over 8 GPUs → ≈ 0.000015 ms; the overhead carries the all-reduce latency floor (160 per step).
 */
import type { StepModel } from "./step-time.ts";

export interface EngineProfile extends StepModel {
  /** Served model name reported by /v1/models and required in requests (unless overridden). */
  model: string;
  /** Upper bound on sequences in a batch (vLLM `--max-num-seqs`). */
  maxNumSeqs: number;
  /** Token budget per step: decodes + prefill chunks (vLLM `--max-num-batched-tokens`). */
  maxNumBatchedTokens: number;
  /** prompt + max_tokens limit per request (vLLM `--max-model-len`). */
  maxModelLen: number;
  /** KV cache capacity in tokens across all sequences (from GPU memory left after weights). */
  kvCapacityTokens: number;
  /** Each step lasts 1 ± this times the model's time (uniform, seeded): GPU timing noise. */
  stepJitter: number;
  /** vLLM's automatic prefix caching (`--enable-prefix-caching`, on by default in V1). */
  enablePrefixCaching: boolean;
  /** No engine at all: every request completes at once (measures the caller's own overhead). */
  instant: boolean;
}

export const PROFILES = {
  "llama-3.1-8b-h100": {
    model: "meta-llama/Llama-3.1-8B-Instruct",
    maxNumSeqs: 1024,
    maxNumBatchedTokens: 8192,
    maxModelLen: 131_072,
    kvCapacityTokens: 450_000,
    stepOverheadMs: 2.3,
    stepPerSeqMs: 0.012,
    stepWeightsReadMs: 5.3,
    stepPerTokenComputeMs: 0.021,
    stepPerContextTokenMs: 0.00005,
    stepJitter: 0.03,
    enablePrefixCaching: true,
    instant: false,
  },
  "llama-3.1-70b-8xh100": {
    model: "meta-llama/Llama-3.1-70B-Instruct",
    maxNumSeqs: 1024,
    maxNumBatchedTokens: 8192,
    maxModelLen: 131_072,
    kvCapacityTokens: 1_300_000,
    stepOverheadMs: 7,
    stepPerSeqMs: 0.012,
    stepWeightsReadMs: 5.9,
    stepPerTokenComputeMs: 0.04,
    stepPerContextTokenMs: 0.000015,
    stepJitter: 0.03,
    enablePrefixCaching: true,
    instant: false,
  },
  instant: {
    model: "meta-llama/Llama-3.1-8B-Instruct",
    maxNumSeqs: 1024,
    maxNumBatchedTokens: 8192,
    maxModelLen: 131_072,
    kvCapacityTokens: 450_000,
    stepOverheadMs: 0,
    stepPerSeqMs: 0,
    stepWeightsReadMs: 0,
    stepPerTokenComputeMs: 0,
    stepPerContextTokenMs: 0,
    stepJitter: 0,
    enablePrefixCaching: true,
    instant: true,
  },
} as const satisfies Record<string, EngineProfile>;

export type ProfileName = keyof typeof PROFILES;

export const DEFAULT_PROFILE: ProfileName = "llama-3.1-8b-h100";

export function isProfileName(name: string): name is ProfileName {
  return Object.hasOwn(PROFILES, name);
}
