/**
 * A Provider the test scripts call by call: each call's answer comes from `answer(call, req)` — a Completion, an
 * error to throw, or a promise of either. Counts calls and the most it ever had in flight at once.
 */
import type { Completion, CompletionRequest, Provider } from "../../shared/providers/provider.ts";

export type Answer = Completion | Error | Promise<Completion | Error>;

export class FakeProvider implements Provider {
  calls = 0;
  inFlight = 0;
  maxInFlight = 0;
  readonly requests: CompletionRequest[] = [];
  closed = false;

  constructor(
    readonly name: string,
    public answer: (call: number, req: CompletionRequest) => Answer = () => completion(name),
  ) {}

  async generate(req: CompletionRequest, signal?: AbortSignal): Promise<Completion> {
    this.calls += 1;
    this.requests.push(req);
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      signal?.throwIfAborted();
      const result = await this.answer(this.calls, req);
      if (result instanceof Error) throw result;
      return result;
    } finally {
      this.inFlight -= 1;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

export function completion(provider: string, o: Partial<Completion> = {}): Completion {
  return { text: `answer from ${provider}`, finishReason: "stop", promptTokens: 10, completionTokens: 5, model: `${provider}-model`, provider, ...o };
}
