/**
 * One engine request and its progress through the scheduler: prefill (chunked, recomputed after a preemption),
 * decode, done. The engine mutates it; callers hold it only to abort it.
 */
import type { FinishReason } from "./generator.ts";

export type SequenceOutcome = FinishReason | "abort" | "error";

export interface SequenceResult {
  outcome: SequenceOutcome;
  promptTokens: number;
  outputTokens: number;
  /** Prompt tokens served from the prefix cache. */
  cachedTokens: number;
  /** Simulated milliseconds from arrival. -1 when it never happened. */
  queueMs: number;
  ttftMs: number;
  e2eMs: number;
  /** Simulated ms in each phase, as vLLM's request_*_time_seconds: first scheduled → first token → last token. */
  prefillMs: number;
  decodeMs: number;
  /** First scheduled → finished. */
  inferenceMs: number;
}

export interface SequenceSpec {
  promptTokens: number;
  /** Tokens to generate before finishing with `finishReason` (decided by the generator). */
  outputTokens: number;
  finishReason: FinishReason;
  /** The prompt's chained KV-block hashes (prompt.ts), for prefix caching; none = never cached. */
  promptBlocks?: readonly number[];
  /** Called at the end of every step that produced a token for it (streaming), with the count so far. */
  onToken?: (generated: number) => void;
}

type State = "waiting" | "running" | "done";

/** One engine request. Returned by submit() so the caller can abort it. */
export class Sequence {
  state: State = "waiting";
  aborted = false;
  /** onDone has been called. */
  reported = false;
  /** Tokens that must be (re)computed before the next token: the prompt, or prompt + output after a preemption. */
  prefillTarget: number;
  prefilled = 0;
  generated = 0;
  kvTokens = 0;
  stepTokens = 0;
  /** Prompt tokens found in the prefix cache at first admission. */
  cachedTokens = 0;
  prefixCounted = false;
  firstScheduledMs = -1;
  firstTokenMs = -1;
  lastTokenMs = -1;

  constructor(
    readonly spec: SequenceSpec,
    readonly arrivalMs: number,
    readonly onDone: (result: SequenceResult) => void,
  ) {
    this.prefillTarget = spec.promptTokens;
  }
}

