/**
 * The contract every inference backend (vLLM, Ollama, Gemini) implements, and the one rule they share about
 * stopping a call: a caller's abort surfaces as an `AbortError` (the job was cancelled, not failed), the client's
 * own timeout as `ProviderRetryableError("PROVIDER_TIMEOUT")`.
 */
import type { TraceContext } from "../trace.ts";

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** Sampling parameters, named as the OpenAI-compatible APIs name them. */
export interface SamplingParams {
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  stop?: string[];
  seed?: number;
}

/** Exactly one of `messages` (chat) or `prompt` (plain completion). `model` overrides the client's default. */
export interface CompletionRequest {
  messages?: ChatMessage[];
  prompt?: string;
  model?: string;
  params: SamplingParams;
  /**
   * The job this call serves (its request id). Sent to the backend so one job's calls can be traced and
   * correlated across retries and workers (vLLM: `X-Request-Id`, echoed back and logged).
   */
  requestId?: string;
  /** The job's trace (trace.ts): each call sends it on as a `traceparent` header with the same trace id and its own span id. */
  trace?: TraceContext;
  /**
   * How much a wrong answer costs. The router starts a "high" request at its configured accurate provider, every
   * other at the primary. Unset = "medium". Single providers ignore it.
   */
  risk?: "low" | "medium" | "high";
  /**
   * When the job must be answered by (epoch ms): the router stops retrying and waiting past it. Single providers
   * ignore it (the caller's signal cuts their call).
   */
  deadlineAt?: number;
}

/** One provider call made for a job (the router reports every call, failed ones included). */
export interface CallAttempt {
  provider: string;
  ok: boolean;
  /** The error's stable code when the call failed. */
  code?: string;
  latencyMs: number;
}

export interface Completion {
  text: string;
  /** "stop", "length", "abort", ... as the backend reports it; "unknown" when it reports none. */
  finishReason: string;
  promptTokens: number;
  completionTokens: number;
  model: string;
  provider: string;
  /** Set by the router: ms from the job entering the router to its answer, waits and retries included. */
  latencyMs?: number;
  /** Set by the router: what the answering call cost, USD, from its price table (0 for self-hosted). */
  costUsd?: number;
  /** Set by the router: every call made for this answer, in order, the answering one last. */
  attempts?: CallAttempt[];
}

export interface Provider {
  readonly name: string;
  /** Rejects with a ProviderRetryableError / ProviderTerminalError, or an AbortError when `signal` aborts. */
  generate(req: CompletionRequest, signal?: AbortSignal): Promise<Completion>;
  /** Closes connections; calls still running are destroyed. */
  close(): Promise<void>;
}

/** The error a caller's abort surfaces as: a DOMException named AbortError, carrying the caller's reason. */
export function abortError(reason: unknown): DOMException {
  const err = new DOMException("provider call aborted by the caller", "AbortError");
  // The options-bag constructor exists at runtime but not in every @types/node global declaration.
  Object.defineProperty(err, "cause", { value: reason, configurable: true, writable: true });
  return err;
}

export function isAbortError(err: unknown): boolean {
  return err instanceof Error && err.name === "AbortError";
}

/**
 * One call's deadline: the client's timeout combined with the caller's signal, in one `signal` for the HTTP layer.
 * Not `AbortSignal.any([caller, AbortSignal.timeout(ms)])` (scripts/abort-signal-retention.ts measures both):
 * on Node 20, still a development runtime, every call stays referenced by a long-lived input signal (a worker's
 * shutdown signal) for good (the script: ~60 B per call with nothing attached; first measured at ~1.2 KB per call).
 * Node 24.22 no longer leaks, but a timeout signal's timer cannot be cleared: each call's signals stay until it
 * fires (~0.75 KB per call, for PROVIDER_TIMEOUT_MS). Here the caller listener is removed and the timer cleared in
 * `dispose()`, so nothing outlives the call. The client turns `timedOut` into its PROVIDER_TIMEOUT error and
 * `callerAborted` into `abortError()`; the signal's reason is not surfaced.
 */
export class CallDeadline {
  readonly signal: AbortSignal;
  /** Which ended the call first; later events do not change it. */
  private ended: "timeout" | "caller" | undefined;
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private readonly onCallerAbort: () => void;

  constructor(
    readonly timeoutMs: number,
    private readonly caller?: AbortSignal,
  ) {
    this.signal = this.controller.signal;
    this.onCallerAbort = () => this.end("caller", abortError(caller?.reason));
    this.timer = setTimeout(
      () => this.end("timeout", new DOMException(`no answer within ${timeoutMs} ms`, "TimeoutError")),
      timeoutMs,
    );
    if (caller?.aborted) this.onCallerAbort();
    else caller?.addEventListener("abort", this.onCallerAbort, { once: true });
  }

  get timedOut(): boolean {
    return this.ended === "timeout";
  }

  get callerAborted(): boolean {
    return this.ended === "caller";
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.caller?.removeEventListener("abort", this.onCallerAbort);
  }

  private end(by: "timeout" | "caller", reason: Error): void {
    if (this.ended !== undefined) return;
    this.ended = by;
    this.controller.abort(reason);
  }
}
