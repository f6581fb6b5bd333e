/**
 * How long one engine step (one forward pass of the whole batch) takes, in simulated ms:
 *
 *   overhead + perSeq × sequences                    scheduling, sampling, kernel launches (CPU side)
 * + max(weightsRead, perTokenCompute × tokens)       the linear layers: every step streams all weights from HBM
 *                                                    (memory-bound while the batch is small) or, once enough tokens
 *                                                    (decodes + prefill chunks) share a step, runs out of FLOPs
 *                                                    (compute-bound); chunked prefill rides in the same pass
 * + perContextToken × KV tokens attended             attention reads every scheduled sequence's KV cache, a
 *                                                    separate memory-bound kernel that does not hide behind the GEMMs
 *
 * so a decode step alone costs ≈ overhead + weightsRead, a prefill chunk is charged for its FLOPs only beyond what the
 * weight read already pays for, and throughput flattens where the token work overtakes the weight read.
 */
export interface StepModel {
  /** Fixed CPU/launch cost of every step, ms (for TP > 1 this includes the all-reduce latency floor). */
  stepOverheadMs: number;
  /** Per scheduled sequence, ms (input preparation, sampling). */
  stepPerSeqMs: number;
  /** Reading every weight once from HBM, ms: the floor of a step. */
  stepWeightsReadMs: number;
  /** FLOPs of one token through the linear layers (and its share of TP communication), ms. */
  stepPerTokenComputeMs: number;
  /** Attention's read of one KV-cache token, ms. */
  stepPerContextTokenMs: number;
}

export interface StepLoad {
  /** Sequences in the batch. */
  seqs: number;
  /** Tokens computed this step: one per decode plus every prefill-chunk token. */
  tokens: number;
  /** KV tokens the batch attends to (each sequence's context, this step's tokens included). */
  contextTokens: number;
}

/** The step's duration without jitter, ms. */
export function stepDurationMs(m: StepModel, load: StepLoad): number {
  const linear = Math.max(m.stepWeightsReadMs, m.stepPerTokenComputeMs * load.tokens);
  return m.stepOverheadMs + m.stepPerSeqMs * load.seqs + linear + m.stepPerContextTokenMs * load.contextTokens;
}
