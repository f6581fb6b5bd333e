/**
 * Failure injection, reproducible from the seed: given the same request order, the same requests fail.
 * Errors are decided when a completion request arrives (before validation, like a failing proxy or server);
 * stalls hold a finished response back before it is written.
 */
import { mulberry32 } from "./generator.ts";
import type { FaultKind, FaultOptions } from "./options.ts";

/** A prompt containing this always gets U+0000 in its answer: how tests ask for one. */
export const NUL_ANSWER_MARKER = "<nul>";

export class FaultInjector {
  private current: FaultOptions;
  private readonly random: () => number;

  constructor(seed: number, initial: FaultOptions) {
    this.current = { ...initial, errorKinds: [...initial.errorKinds] };
    this.random = mulberry32(seed ^ 0xfa017);
  }

  get options(): FaultOptions {
    return this.current;
  }

  update(patch: Partial<FaultOptions>): void {
    this.current = { ...this.current, ...patch, errorKinds: [...(patch.errorKinds ?? this.current.errorKinds)] };
  }

  /** The fault to inject into this request, or undefined to serve it. */
  nextError(): FaultKind | undefined {
    const { errorRate, errorKinds } = this.current;
    if (errorRate <= 0 || errorKinds.length === 0 || this.random() >= errorRate) return undefined;
    return errorKinds[Math.floor(this.random() * errorKinds.length)];
  }

  /** Should this choice's text contain U+0000? `promptKey` is the prompt text the output derives from. */
  nulAnswer(promptKey: string): boolean {
    if (promptKey.includes(NUL_ANSWER_MARKER)) return true;
    const { nulAnswerRate } = this.current;
    return nulAnswerRate > 0 && this.random() < nulAnswerRate;
  }

  /** Wall ms to hold this response back; 0 for none. */
  nextStallMs(): number {
    const { stallRate, stallMs } = this.current;
    return stallRate > 0 && stallMs > 0 && this.random() < stallRate ? stallMs : 0;
  }
}
