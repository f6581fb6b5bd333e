/**
 * Hardware/model profiles for the simulated engine. A profile is only defaults: every field can be overridden by a
 * flag, an env variable or `startVllmSimulator({...})`.
 *
 * Step time model (ms), one step per forward pass of the whole batch:
 *   stepFixedMs                         weights read once per step (memory-bound decode)
 * + stepPerSeqMs          × sequences   per-sequence sampling / scheduling / MLP work
 * + stepPerContextTokenMs × KV tokens   attention reads every running sequence's KV cache
 * + stepPerPrefillTokenMs × new prompt tokens (chunked prefill, compute-bound)
 * so single-stream ITL ≈ stepFixedMs and throughput flattens near 1 / stepPerSeqMs tokens per ms.
 *
 * Calibration of llama-3.1-8b-h100 (FINDINGS.md: ≈ 8,100 output tok/s at 256 seqs, ITL ≈ 5-12 ms at concurrency 1):
 * reference workload 256-token prompts, 256 output tokens, closed loop. At 256 seqs a step carries 256 decodes,
 * ≈ 98k KV tokens and ≈ 256 prefill tokens: 7 + 256×0.057 + 98k×0.00004 + 256×0.025 ≈ 32 ms → ≈ 8,000 tok/s.
 * The KV per-token cost is 8B's 128 KiB/token read at ~3 TB/s; prefill ≈ 40k tok/s.
 * 70B on 8×H100 (TP8): ITL ≈ 22-25 ms alone, TTFT ≈ 170-200 ms for a 1k-1.2k-token prompt, ≈ 3,500 tok/s at 256.
 */
export interface EngineProfile {
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
  stepFixedMs: number;
  stepPerSeqMs: number;
  stepPerContextTokenMs: number;
  stepPerPrefillTokenMs: number;
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
    stepFixedMs: 7,
    stepPerSeqMs: 0.057,
    stepPerContextTokenMs: 0.00004,
    stepPerPrefillTokenMs: 0.025,
    instant: false,
  },
  "llama-3.1-70b-8xh100": {
    model: "meta-llama/Llama-3.1-70B-Instruct",
    maxNumSeqs: 1024,
    maxNumBatchedTokens: 8192,
    maxModelLen: 131_072,
    kvCapacityTokens: 1_300_000,
    stepFixedMs: 22,
    stepPerSeqMs: 0.04,
    stepPerContextTokenMs: 0.00002,
    stepPerPrefillTokenMs: 0.15,
    instant: false,
  },
  instant: {
    model: "meta-llama/Llama-3.1-8B-Instruct",
    maxNumSeqs: 1024,
    maxNumBatchedTokens: 8192,
    maxModelLen: 131_072,
    kvCapacityTokens: 450_000,
    stepFixedMs: 0,
    stepPerSeqMs: 0,
    stepPerContextTokenMs: 0,
    stepPerPrefillTokenMs: 0,
    instant: true,
  },
} as const satisfies Record<string, EngineProfile>;

export type ProfileName = keyof typeof PROFILES;

export const DEFAULT_PROFILE: ProfileName = "llama-3.1-8b-h100";

export function isProfileName(name: string): name is ProfileName {
  return Object.hasOwn(PROFILES, name);
}
