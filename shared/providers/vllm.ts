/**
 * vLLM's OpenAI-compatible server over undici: chat, completions (one prompt or a list, which vLLM schedules as
 * separate engine requests), models, health and load from /metrics. Every failure is a typed provider error
 * (http-errors.ts); a caller's abort is an AbortError.
 */
import { field, jobHeaders, readText } from "./http-body.ts";
import { Pool } from "undici";
import { FleetError, ProviderRetryableError, ProviderTerminalError } from "../errors.ts";
import type { SecretValue } from "../secrets.ts";
import { ApiKey } from "./api-key.ts";
import { toProviderError } from "./http-errors.ts";
import type { ProviderError, ProviderFailure } from "./http-errors.ts";
import { readVllmLoad } from "./metrics.ts";
import type { VllmLoad } from "./metrics.ts";
import { CallDeadline, abortError } from "./provider.ts";
import type { Completion, CompletionRequest, Provider, SamplingParams } from "./provider.ts";

export type { VllmLoad };

export interface VllmClientOptions {
  /** Server root, e.g. http://127.0.0.1:8000 (a path prefix is kept; /v1/... is appended). */
  baseUrl: string;
  /** Model used when a request names none. */
  model: string;
  /**
   * Sent as `Authorization: Bearer`; never logged or put in a message. A SecretValue is read per request; after a
   * 401/403 it is refreshed once and the request retried once if the key changed (a rotation without a restart).
   */
  apiKey?: string | SecretValue;
  /** Per-call deadline for generation, including time queued in this client. */
  timeoutMs: number;
  /**
   * HTTP/1.1 connections for generation (pipelining 1: uvicorn answers pipelined requests one by one, so only
   * connections give concurrency). Default 1024 = vLLM's default max_num_seqs on an H100: fewer caps the GPU
   * batch at this number, the rest waiting here instead of in vLLM's scheduler.
   */
  connections?: number;
  /** Deadline for health/models/metrics. Default min(timeoutMs, 10 000). */
  controlTimeoutMs?: number;
}

const PROVIDER = "vllm";
/** Below uvicorn's 5 s keep-alive (VLLM_HTTP_TIMEOUT_KEEP_ALIVE) so we never send on a socket it is closing. */
const KEEP_ALIVE_MS = 4_000;
/** A completion answer is kilobytes; anything past this is not one. */
const MAX_OK_BODY_BYTES = 32 * 1024 * 1024;
/** Enough of an error body for its message. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

interface Answer {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** The job a call serves, for its headers. */
type JobIds = Pick<CompletionRequest, "requestId" | "trace">;

/** A 2xx body that is not what the API promises; becomes PROVIDER_BAD_RESPONSE. */
class Malformed extends Error {}

export class VllmClient implements Provider {
  readonly name = PROVIDER;
  /** Generation traffic. */
  private readonly pool: Pool;
  /** health/metrics/models on their own sockets: they must not queue behind a thousand generations. */
  private readonly control: Pool;
  private readonly pathPrefix: string;
  private readonly headers: Record<string, string>;
  private readonly key: ApiKey;
  private readonly controlTimeoutMs: number;
  private closing?: Promise<void>;

  constructor(private readonly o: VllmClientOptions) {
    const url = new URL(o.baseUrl);
    this.pathPrefix = url.pathname.replace(/\/+$/, "");
    this.controlTimeoutMs = o.controlTimeoutMs ?? Math.min(o.timeoutMs, 10_000);
    this.headers = { "content-type": "application/json", accept: "application/json" };
    this.key = new ApiKey(o.apiKey);
    // undici's own header/body timeouts only back up CallDeadline (which cuts the call at timeoutMs).
    const backstop = (ms: number) => ({ headersTimeout: ms + 1_000, bodyTimeout: ms + 1_000 });
    this.pool = new Pool(url.origin, {
      connections: o.connections ?? 1024,
      pipelining: 1,
      keepAliveTimeout: KEEP_ALIVE_MS,
      ...backstop(o.timeoutMs),
    });
    this.control = new Pool(url.origin, { connections: 4, pipelining: 1, keepAliveTimeout: KEEP_ALIVE_MS, ...backstop(this.controlTimeoutMs) });
  }

  /** Chat when the request has `messages`, a plain completion when it has `prompt`. */
  generate(req: CompletionRequest, signal?: AbortSignal): Promise<Completion> {
    if ((req.messages === undefined) === (req.prompt === undefined)) {
      return Promise.reject(
        new ProviderTerminalError("PROVIDER_BAD_REQUEST", "exactly one of messages or prompt is required", { provider: PROVIDER }),
      );
    }
    return req.messages !== undefined ? this.chat(req, signal) : this.complete(req, signal);
  }

  /** POST /v1/chat/completions with `req.messages`. */
  async chat(req: CompletionRequest, signal?: AbortSignal): Promise<Completion> {
    const model = req.model ?? this.o.model;
    const body = { model, messages: req.messages ?? [], ...sampling(req.params) };
    const json = await this.postJson("chat", "/v1/chat/completions", body, signal, req);
    return this.parsed("chat", () => {
      const [choice] = choicesOf(json, 1);
      const message = field(choice, "message");
      const content = field(message, "content");
      if (content !== null && typeof content !== "string") throw new Malformed("choices[0].message.content is not a string");
      const usage = usageOf(json);
      return this.completion(json, model, content ?? "", choice, usage.promptTokens, usage.completionTokens);
    });
  }

  /** POST /v1/completions with one prompt. */
  async complete(req: CompletionRequest, signal?: AbortSignal): Promise<Completion> {
    if (req.prompt === undefined) throw new ProviderTerminalError("PROVIDER_BAD_REQUEST", "a completion needs a prompt", { provider: PROVIDER });
    const [completion] = await this.completeBatch([req.prompt], req.params, signal, req.model, req);
    // completeBatch returns exactly one per prompt or throws; this only satisfies the type checker.
    if (completion === undefined) throw this.failure({ kind: "bad-response", statusCode: 200, detail: "no completion" }, "completions");
    return completion;
  }

  /**
   * POST /v1/completions with a list of prompts: one HTTP call, one engine request per prompt, results in prompt
   * order. vLLM reports usage for the whole list; per-prompt token counts come from `token_ids` /
   * `prompt_token_ids` when the server returns them (vLLM ≥ 0.10.2 with return_token_ids), else the totals are
   * split in proportion to prompt and text length (estimates; the sums are exact). `job`'s request id goes out as
   * `X-Request-Id`, its trace as `traceparent`.
   */
  async completeBatch(prompts: string[], params: SamplingParams, signal?: AbortSignal, modelOverride?: string, job: JobIds = {}): Promise<Completion[]> {
    if (prompts.length === 0) return [];
    const model = modelOverride ?? this.o.model;
    const body = { model, prompt: prompts.length === 1 ? prompts[0] : prompts, ...sampling(params) };
    const json = await this.postJson("completions", "/v1/completions", body, signal, job);
    return this.parsed("completions", () => {
      const choices = choicesOf(json, prompts.length);
      const texts = choices.map((c, i) => {
        const text = field(c, "text");
        if (typeof text !== "string") throw new Malformed(`choices[${i}].text is not a string`);
        return text;
      });
      const usage = usageOf(json);
      const promptTokens = tokenCounts(choices, "prompt_token_ids", usage.promptTokens, prompts.map((p) => p.length));
      const completionTokens = tokenCounts(choices, "token_ids", usage.completionTokens, texts.map((t) => t.length));
      return choices.map((c, i) => this.completion(json, model, texts[i] ?? "", c, promptTokens[i] ?? 0, completionTokens[i] ?? 0));
    });
  }

  /** GET /v1/models → the served model ids. */
  async models(signal?: AbortSignal): Promise<string[]> {
    const answer = await this.send(this.control, "models", "GET", "/v1/models", undefined, this.controlTimeoutMs, signal);
    if (!isOk(answer)) throw this.failure({ kind: "status", ...statusOf(answer) }, "models");
    const json = this.json("models", answer);
    return this.parsed("models", () => {
      const data = field(json, "data");
      if (!Array.isArray(data)) throw new Malformed("no data array");
      return data.map((m, i) => {
        const id = field(m, "id");
        if (typeof id !== "string") throw new Malformed(`data[${i}].id is not a string`);
        return id;
      });
    });
  }

  /** GET /health: true on 2xx; false on any other status, a network error or the control timeout. */
  async health(signal?: AbortSignal): Promise<boolean> {
    try {
      const answer = await this.send(this.control, "health", "GET", "/health", undefined, this.controlTimeoutMs, signal);
      return isOk(answer);
    } catch (err) {
      if (err instanceof FleetError) return false;
      throw err; // the caller's abort
    }
  }

  /**
   * GET /metrics → running/waiting requests and KV-cache use. Undefined when the server has no /metrics (404) or
   * the page lacks vLLM's gauges; other statuses and network errors throw the usual provider errors.
   */
  async metrics(signal?: AbortSignal): Promise<VllmLoad | undefined> {
    const answer = await this.send(this.control, "metrics", "GET", "/metrics", undefined, this.controlTimeoutMs, signal);
    if (answer.statusCode === 404) return undefined;
    if (!isOk(answer)) throw this.failure({ kind: "status", ...statusOf(answer) }, "metrics");
    return readVllmLoad(answer.text);
  }

  /** Destroys both pools: calls still running reject with PROVIDER_CONNECTION. Idempotent. */
  close(): Promise<void> {
    this.closing ??= Promise.all([this.pool.destroy(), this.control.destroy()]).then(() => undefined);
    return this.closing;
  }

  private async postJson(operation: string, path: string, body: unknown, signal: AbortSignal | undefined, job: JobIds): Promise<unknown> {
    const answer = await this.send(this.pool, operation, "POST", path, JSON.stringify(body), this.o.timeoutMs, signal, jobHeaders(job));
    if (!isOk(answer)) throw this.failure({ kind: "status", ...statusOf(answer) }, operation);
    return this.json(operation, answer);
  }

  /** `send`, and once more after a 401/403 if refreshing the key found a new one (the old one was rotated away). */
  private async send(
    pool: Pool,
    operation: string,
    method: "GET" | "POST",
    path: string,
    body: string | undefined,
    timeoutMs: number,
    signal?: AbortSignal,
    extraHeaders?: Record<string, string>,
  ): Promise<Answer> {
    const once = () => this.sendOnce(pool, operation, method, path, body, timeoutMs, signal, extraHeaders);
    const answer = await once();
    if (answer.statusCode !== 401 && answer.statusCode !== 403) return answer;
    return (await this.key.refreshed(signal)) ? once() : answer;
  }

  /**
   * One HTTP exchange under a CallDeadline. Resolves with any status and the body text (always read or
   * destroyed, so the socket goes back to the pool); rejects with a provider error or the caller's AbortError.
   */
  private async sendOnce(
    pool: Pool,
    operation: string,
    method: "GET" | "POST",
    path: string,
    body: string | undefined,
    timeoutMs: number,
    signal?: AbortSignal,
    extraHeaders?: Record<string, string>,
  ): Promise<Answer> {
    const deadline = new CallDeadline(timeoutMs, signal);
    const key = this.key.current();
    const headers = { ...this.headers, ...(key === undefined ? {} : { authorization: `Bearer ${key}` }), ...extraHeaders };
    try {
      const res = await pool.request({ method, path: this.pathPrefix + path, headers, body, signal: deadline.signal });
      const ok = res.statusCode >= 200 && res.statusCode < 300;
      const { text, truncated } = await readText(res.body, ok ? MAX_OK_BODY_BYTES : MAX_ERROR_BODY_BYTES);
      if (ok && truncated) {
        throw this.failure({ kind: "bad-response", statusCode: res.statusCode, detail: `body over ${MAX_OK_BODY_BYTES} bytes` }, operation);
      }
      return { statusCode: res.statusCode, headers: res.headers, text };
    } catch (err) {
      if (deadline.callerAborted) throw abortError(signal?.reason);
      if (deadline.timedOut) {
        throw new ProviderRetryableError("PROVIDER_TIMEOUT", `${PROVIDER} ${operation}: no answer within ${timeoutMs} ms`, { provider: PROVIDER });
      }
      if (err instanceof FleetError) throw err;
      throw this.failure({ kind: "network", error: err }, operation);
    } finally {
      deadline.dispose();
    }
  }

  private json(operation: string, answer: Answer): unknown {
    try {
      return JSON.parse(answer.text) as unknown;
    } catch (err) {
      throw this.failure({ kind: "bad-response", statusCode: answer.statusCode, detail: "body is not JSON", cause: err }, operation);
    }
  }

  /** Runs a body parser, turning its Malformed into PROVIDER_BAD_RESPONSE. */
  private parsed<T>(operation: string, parse: () => T): T {
    try {
      return parse();
    } catch (err) {
      if (err instanceof Malformed) throw this.failure({ kind: "bad-response", statusCode: 200, detail: err.message }, operation);
      throw err;
    }
  }

  private completion(json: unknown, model: string, text: string, choice: unknown, promptTokens: number, completionTokens: number): Completion {
    const finish = field(choice, "finish_reason");
    const served = field(json, "model");
    return {
      text,
      finishReason: typeof finish === "string" ? finish : "unknown",
      promptTokens,
      completionTokens,
      model: typeof served === "string" ? served : model,
      provider: PROVIDER,
    };
  }

  private failure(failure: ProviderFailure, operation: string): ProviderError {
    return toProviderError(failure, { provider: PROVIDER, operation, secrets: this.key.redactions() });
  }
}

/** Only the sampling fields the API knows: a stray `stream: true` would break parsing. */
function sampling(p: SamplingParams): SamplingParams {
  return { max_tokens: p.max_tokens, temperature: p.temperature, top_p: p.top_p, stop: p.stop, seed: p.seed };
}

function isOk(answer: Answer): boolean {
  return answer.statusCode >= 200 && answer.statusCode < 300;
}

function statusOf(answer: Answer): { statusCode: number; headers: Answer["headers"]; body: string } {
  return { statusCode: answer.statusCode, headers: answer.headers, body: answer.text };
}


/** `choices` ordered by index, exactly `count` of them with indices 0..count-1. */
function choicesOf(json: unknown, count: number): unknown[] {
  const choices = field(json, "choices");
  if (!Array.isArray(choices)) throw new Malformed("no choices array");
  if (choices.length !== count) throw new Malformed(`${choices.length} choices for ${count} prompt(s)`);
  const ordered: unknown[] = new Array<unknown>(count);
  choices.forEach((c, i) => {
    const index = field(c, "index") ?? (count === 1 ? 0 : undefined);
    if (typeof index !== "number" || !Number.isInteger(index) || index < 0 || index >= count || ordered[index] !== undefined) {
      throw new Malformed(`choices[${i}].index is missing, out of range or repeated`);
    }
    ordered[index] = c;
  });
  return ordered;
}

/** Usage totals; a server that omits them (some proxies) gets zeros rather than a failed job. */
function usageOf(json: unknown): { promptTokens: number; completionTokens: number } {
  const usage = field(json, "usage");
  const count = (v: unknown) => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : 0);
  return { promptTokens: count(field(usage, "prompt_tokens")), completionTokens: count(field(usage, "completion_tokens")) };
}

/** Per-choice token counts: exact from token id arrays when every choice has them, else apportioned. */
function tokenCounts(choices: unknown[], idsField: string, total: number, weights: number[]): number[] {
  const exact = choices.map((c) => field(c, idsField));
  if (exact.every(Array.isArray)) return exact.map((ids) => (ids as unknown[]).length);
  return apportion(total, weights);
}

/** Splits an integer total in proportion to weights (largest remainder), so the parts sum to the total. */
export function apportion(total: number, weights: number[]): number[] {
  if (weights.length === 0) return [];
  const sum = weights.reduce((a, b) => a + b, 0);
  const shares = weights.map((w) => (sum === 0 ? total / weights.length : (total * w) / sum));
  const parts = shares.map(Math.floor);
  let left = total - parts.reduce((a, b) => a + b, 0);
  const byRemainder = shares.map((s, i) => ({ i, r: s - Math.floor(s) })).sort((a, b) => b.r - a.r);
  for (const { i } of byRemainder) {
    if (left <= 0) break;
    parts[i] = (parts[i] ?? 0) + 1;
    left--;
  }
  return parts;
}
