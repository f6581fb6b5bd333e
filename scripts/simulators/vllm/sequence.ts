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
  /** Simulated milliseconds from arrival. -1 when it never happened. */
  queueMs: number;
  ttftMs: number;
  e2eMs: number;
}

export interface SequenceSpec {
  promptTokens: number;
  /** Tokens to generate before finishing with `finishReason` (decided by the generator). */
  outputTokens: number;
  finishReason: FinishReason;
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

