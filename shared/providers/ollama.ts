/**
 * Ollama over its NATIVE API (/api/chat, /api/generate, /api/tags), not its OpenAI-compatible /v1:
 *   - /v1 cannot set `num_ctx` (Ollama silently truncates prompts past it: 2048-4096 tokens by default) nor
 *     `keep_alive` (an unloaded model costs seconds to minutes of load time on the next job);
 *   - the native final chunk carries exact token counts and durations in nanoseconds (`total_duration`), which /v1
 *     reduces to usage only;
 *   - native errors are one shape, `{"error": "..."}`, including the one written mid-stream.
 * Generation always streams (NDJSON): bytes flow while tokens are generated, so no proxy idle timeout cuts a long
 * answer, and a failure after the headers arrives as an `{"error"}` line we can see. Invariant: an answer is
 * returned only when its final `done: true` chunk arrived; a stream cut before it (error line, EOF, reset) is a
 * retryable failure, never a partial answer passed off as complete.
 */
import { field, jobHeaders, readText } from "./http-body.ts";
import { Pool } from "undici";
import { FleetError, ProviderRetryableError, ProviderTerminalError } from "../errors.ts";
import { errorDetail, toProviderError } from "./http-errors.ts";
import type { ProviderError, ProviderFailure } from "./http-errors.ts";
import { readNdjsonStream, StreamCut, StreamMalformed } from "./ndjson.ts";
import { CallDeadline, abortError } from "./provider.ts";
import type { Completion, CompletionRequest, Provider, SamplingParams } from "./provider.ts";

export interface OllamaClientOptions {
  /** Server root, e.g. http://127.0.0.1:11434 (a path prefix is kept; /api/... is appended). */
  baseUrl: string;
  /** Default model tag, e.g. "llama3.1:8b": used for a job that names no model or one `modelMap` does not map. */
  model: string;
  /**
   * A job's model (written for vLLM: "meta-llama/Llama-3.1-8B-Instruct") → the Ollama tag serving it
   * ("llama3.1:8b"). A model with no entry gets the default tag rather than a 404: Ollama is a fallback, and a job
   * the primary could serve should still get an answer from the model this Ollama was set up with.
   */
  modelMap?: Readonly<Record<string, string>>;
  /** Sent as `keep_alive`: how long the model stays loaded after a call ("30m"), -1 = for ever, 0 = unload. */
  keepAlive?: string | number;
  /** Sent as `options.num_ctx` (tokens): Ollama's default context is small and a longer prompt is cut, silently. */
  numCtx?: number;
  /** Per-call deadline for generation (whole stream), including time queued in this client. */
  timeoutMs: number;
  /**
   * HTTP/1.1 connections for generation. Default 16: Ollama runs OLLAMA_NUM_PARALLEL (1-4 by default) requests at
   * once and queues up to OLLAMA_MAX_QUEUE (512) more; connections past its parallelism only move the waiting from
   * here into its queue.
   */
  connections?: number;
  /** Deadline for /api/tags. Default min(timeoutMs, 10 000). */
  controlTimeoutMs?: number;
}

/** A Completion plus what only Ollama reports. */
export interface OllamaCompletion extends Completion {
  /** Ollama's `total_duration` (ns) in ms: load + queue + prompt eval + generation, as the server measured it. */
  latencyMs?: number;
}

const PROVIDER = "ollama";
/** Ollama (Go net/http) keeps idle connections open; 4 s matches the vLLM client and recycles sockets quickly. */
const KEEP_ALIVE_MS = 4_000;
/** Answer text past this is not an answer. */
const MAX_STREAM_BYTES = 32 * 1024 * 1024;
const MAX_ERROR_BODY_BYTES = 64 * 1024;
const NS_PER_MS = 1_000_000;

type Operation = "chat" | "generate";

export class OllamaClient implements Provider {
  readonly name = PROVIDER;
  private readonly pool: Pool;
  /** /api/tags on its own sockets: a health probe must not queue behind generations. */
  private readonly control: Pool;
  private readonly pathPrefix: string;
  private readonly controlTimeoutMs: number;
  private closing?: Promise<void>;

  constructor(private readonly o: OllamaClientOptions) {
    const url = new URL(o.baseUrl);
    this.pathPrefix = url.pathname.replace(/\/+$/, "");
    this.controlTimeoutMs = o.controlTimeoutMs ?? Math.min(o.timeoutMs, 10_000);
    // undici's own timeouts only back up CallDeadline.
    const backstop = (ms: number) => ({ headersTimeout: ms + 1_000, bodyTimeout: ms + 1_000 });
    this.pool = new Pool(url.origin, { connections: o.connections ?? 16, pipelining: 1, keepAliveTimeout: KEEP_ALIVE_MS, ...backstop(o.timeoutMs) });
    this.control = new Pool(url.origin, { connections: 2, pipelining: 1, keepAliveTimeout: KEEP_ALIVE_MS, ...backstop(this.controlTimeoutMs) });
  }

  /** The Ollama tag a request runs on: its model mapped, else the default tag. */
  modelFor(requested: string | undefined): string {
    return (requested === undefined ? undefined : this.o.modelMap?.[requested]) ?? this.o.model;
  }

  /** POST /api/chat for `messages`, /api/generate for `prompt`. */
  generate(req: CompletionRequest, signal?: AbortSignal): Promise<OllamaCompletion> {
    if ((req.messages === undefined) === (req.prompt === undefined)) {
      return Promise.reject(new ProviderTerminalError("PROVIDER_BAD_REQUEST", "exactly one of messages or prompt is required", { provider: PROVIDER }));
    }
    const model = this.modelFor(req.model);
    const common = { model, stream: true, options: this.options(req.params), keep_alive: this.o.keepAlive };
    return req.messages !== undefined
      ? this.stream("chat", "/api/chat", { ...common, messages: req.messages }, model, signal, req)
      : this.stream("generate", "/api/generate", { ...common, prompt: req.prompt }, model, signal, req);
  }

  /** GET /api/tags → the names of the models this server has. */
  async tags(signal?: AbortSignal): Promise<string[]> {
    const deadline = new CallDeadline(this.controlTimeoutMs, signal);
    try {
      const res = await this.control.request({ method: "GET", path: `${this.pathPrefix}/api/tags`, signal: deadline.signal });
      const text = (await readText(res.body, res.statusCode === 200 ? MAX_STREAM_BYTES : MAX_ERROR_BODY_BYTES)).text;
      if (res.statusCode !== 200) throw this.failure({ kind: "status", statusCode: res.statusCode, headers: res.headers, body: text }, "tags");
      return namesOf(text, (detail) => this.failure({ kind: "bad-response", statusCode: 200, detail }, "tags"));
    } catch (err) {
      throw this.settled(err, deadline, "tags", signal);
    } finally {
      deadline.dispose();
    }
  }

  /** True when /api/tags answers and lists the default tag; false on any failure but the caller's abort. */
  async health(signal?: AbortSignal): Promise<boolean> {
    try {
      const names = await this.tags(signal);
      return names.some((n) => sameTag(n, this.o.model));
    } catch (err) {
      if (err instanceof FleetError) return false;
      throw err;
    }
  }

  /** Destroys both pools: calls still running reject with PROVIDER_CONNECTION. Idempotent. */
  close(): Promise<void> {
    this.closing ??= Promise.all([this.pool.destroy(), this.control.destroy()]).then(() => undefined);
    return this.closing;
  }

  /** Ollama's `options`: our sampling names → its names; undefined fields are dropped by JSON.stringify. */
  private options(p: SamplingParams): Record<string, unknown> {
    return { num_predict: p.max_tokens, temperature: p.temperature, top_p: p.top_p, stop: p.stop, seed: p.seed, num_ctx: this.o.numCtx };
  }

  private async stream(operation: Operation, path: string, body: unknown, model: string, signal: AbortSignal | undefined, job: Pick<CompletionRequest, "requestId" | "trace">): Promise<OllamaCompletion> {
    const deadline = new CallDeadline(this.o.timeoutMs, signal);
    const headers: Record<string, string> = { "content-type": "application/json", accept: "application/x-ndjson", ...jobHeaders(job) };
    try {
      const res = await this.pool.request({ method: "POST", path: this.pathPrefix + path, headers, body: JSON.stringify(body), signal: deadline.signal });
      if (res.statusCode !== 200) {
        const text = (await readText(res.body, MAX_ERROR_BODY_BYTES)).text;
        throw this.failure({ kind: "status", statusCode: res.statusCode, headers: res.headers, body: text }, operation);
      }
      const { text, final } = await readNdjsonStream(res.body as AsyncIterable<Buffer>, operation === "chat" ? chatPiece : generatePiece, MAX_STREAM_BYTES);
      return completion(text, final, model);
    } catch (err) {
      throw this.settled(err, deadline, operation, signal);
    } finally {
      deadline.dispose();
    }
  }

  /** Any failure of a call → the error it surfaces as (caller's abort, our timeout, or a classified provider error). */
  private settled(err: unknown, deadline: CallDeadline, operation: string, signal?: AbortSignal): unknown {
    if (deadline.callerAborted) return abortError(signal?.reason);
    if (deadline.timedOut) {
      return new ProviderRetryableError("PROVIDER_TIMEOUT", `${PROVIDER} ${operation}: no answer within ${deadline.timeoutMs} ms`, { provider: PROVIDER });
    }
    if (err instanceof FleetError) return err;
    if (err instanceof StreamCut) {
      // Upstream ended the generation (runner crashed, model unloaded, server shutting down): the same request may
      // well succeed on the next try, and the partial text must not become an answer.
      return new ProviderRetryableError("PROVIDER_UNAVAILABLE", `${PROVIDER} ${operation}: stream cut: ${errorDetail(err.message)}`, { provider: PROVIDER });
    }
    if (err instanceof StreamMalformed) return this.failure({ kind: "bad-response", statusCode: 200, detail: err.message }, operation);
    return this.failure({ kind: "network", error: err }, operation);
  }

  private failure(failure: ProviderFailure, operation: string): ProviderError {
    return toProviderError(failure, { provider: PROVIDER, operation });
  }
}

/** The text a chat chunk adds (`message.content`). */
function chatPiece(chunk: Record<string, unknown>): unknown {
  const message = chunk.message;
  return message === undefined ? "" : field(message, "content") ?? "";
}

/** The text a generate chunk adds (`response`). */
function generatePiece(chunk: Record<string, unknown>): unknown {
  return chunk.response ?? "";
}

function completion(text: string, final: Record<string, unknown>, model: string): OllamaCompletion {
  const served = final.model;
  const out: OllamaCompletion = {
    text,
    finishReason: typeof final.done_reason === "string" && final.done_reason !== "" ? final.done_reason : "unknown",
    promptTokens: count(final.prompt_eval_count),
    completionTokens: count(final.eval_count),
    model: typeof served === "string" && served !== "" ? served : model,
    provider: PROVIDER,
  };
  const ns = final.total_duration;
  if (typeof ns === "number" && Number.isFinite(ns) && ns >= 0) out.latencyMs = ns / NS_PER_MS;
  return out;
}

/**
 * A token count; absent means 0. Ollama omits `prompt_eval_count` when the whole prompt was served from its
 * cache (a repeated prompt), so 0 there is "nothing evaluated", not a broken answer.
 */
function count(v: unknown): number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 ? v : 0;
}

/** "llama3.1" and "llama3.1:latest" name the same model. */
export function sameTag(a: string, b: string): boolean {
  const full = (t: string) => (t.includes(":") ? t : `${t}:latest`);
  return full(a) === full(b);
}

function namesOf(text: string, malformed: (detail: string) => ProviderError): string[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw malformed("body is not JSON");
  }
  const models = field(json, "models");
  if (!Array.isArray(models)) throw malformed("no models array");
  return models.map((m) => field(m, "name") ?? field(m, "model")).filter((n): n is string => typeof n === "string");
}

