/**
 * Google's Gemini API (`models/{model}:generateContent`) over undici: the router's last, paid fallback.
 * The key travels only in the `x-goog-api-key` header — never in the URL (Google's examples put `?key=` there, where
 * proxies and access logs keep it) and never in a message. A content filter's refusal (finishReason SAFETY,
 * RECITATION, ..., or a blocked prompt) fails the job for good with its own code and `countsAgainstProvider = false`:
 * it is the content's fault, not the provider's. Gemini's 429 carries its delay in the body (RetryInfo), not in a
 * Retry-After header; a per-day quota is not worth retrying today.
 */
import { field, jobHeaders, readText } from "./http-body.ts";
import { Pool } from "undici";
import { FleetError, ProviderRetryableError, ProviderTerminalError } from "../errors.ts";
import type { FleetErrorOptions } from "../errors.ts";
import type { SecretValue } from "../secrets.ts";
import { ApiKey } from "./api-key.ts";
import { toProviderError } from "./http-errors.ts";
import type { FailureContext, ProviderError, ProviderFailure } from "./http-errors.ts";
import { CallDeadline, abortError } from "./provider.ts";
import type { ChatMessage, Completion, CompletionRequest, Provider, SamplingParams } from "./provider.ts";

export interface GeminiClientOptions {
  /** API root, e.g. https://generativelanguage.googleapis.com (a path prefix is kept; /v1beta/... is appended). */
  baseUrl: string;
  /** Model used when a request names none, e.g. "gemini-2.5-flash" (a leading "models/" is accepted). */
  model: string;
  /**
   * Sent as `x-goog-api-key`; never in a URL, a message or a log. A SecretValue is read per request; after an auth
   * failure (PROVIDER_AUTH: 401, 403, 400 API_KEY_*) it is refreshed once and the request retried once if it changed.
   */
  apiKey: string | SecretValue;
  /** Per-call deadline for generation, including time queued in this client. */
  timeoutMs: number;
  /** Connections for generation. Default 64: a paid fallback paced by its quota, not the fleet's main road. */
  connections?: number;
  /** Deadline for health(). Default min(timeoutMs, 10 000). */
  controlTimeoutMs?: number;
}

/** A Gemini answer: `completionTokens` = candidatesTokenCount + thoughtsTokenCount (both billed as output). */
export interface GeminiCompletion extends Completion {
  /** The part of completionTokens the model spent thinking (usageMetadata.thoughtsTokenCount). */
  thoughtsTokens: number;
}

type BlockCode =
  | "PROVIDER_SAFETY_BLOCK"
  | "PROVIDER_RECITATION"
  | "PROVIDER_BLOCKLIST"
  | "PROVIDER_PROHIBITED_CONTENT"
  | "PROVIDER_SPII"
  | "PROVIDER_PROMPT_BLOCKED";

/**
 * Gemini's content filter refused the prompt (`stage: "prompt"`, promptFeedback.blockReason) or the answer
 * (`stage: "answer"`, a blocking finishReason). Terminal: the same content is refused again. Not the provider's
 * failure, so a breaker must not count it (`countsAgainstProvider` is false; other provider errors lack it).
 */
export class ContentBlockedError extends ProviderTerminalError {
  readonly countsAgainstProvider = false;
  constructor(
    code: BlockCode,
    /** Gemini's own value: "SAFETY", "RECITATION", "PROHIBITED_CONTENT", ... */
    readonly blockReason: string,
    readonly stage: "prompt" | "answer",
    message: string,
    options: FleetErrorOptions = {},
  ) {
    super(code, message, options);
  }
}

const PROVIDER = "gemini";
const API_VERSION = "/v1beta";
/** Google's front ends keep idle connections for minutes; this only bounds our own idle sockets. */
const KEEP_ALIVE_MS = 30_000;
const MAX_OK_BODY_BYTES = 32 * 1024 * 1024;
const MAX_ERROR_BODY_BYTES = 64 * 1024;

/** finishReasons that mean the answer was withheld by a filter (IMAGE_* only occur with image output). */
const BLOCKED_FINISH: Record<string, BlockCode> = {
  SAFETY: "PROVIDER_SAFETY_BLOCK",
  IMAGE_SAFETY: "PROVIDER_SAFETY_BLOCK",
  RECITATION: "PROVIDER_RECITATION",
  IMAGE_RECITATION: "PROVIDER_RECITATION",
  BLOCKLIST: "PROVIDER_BLOCKLIST",
  PROHIBITED_CONTENT: "PROVIDER_PROHIBITED_CONTENT",
  IMAGE_PROHIBITED_CONTENT: "PROVIDER_PROHIBITED_CONTENT",
  SPII: "PROVIDER_SPII",
};

/** The OpenAI-style names the rest of the fleet uses; any other reason passes through lower-cased ("other", ...). */
const FINISH: Record<string, string> = { STOP: "stop", MAX_TOKENS: "length" };

const RPC = "type.googleapis.com/google.rpc.";

interface Answer {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** A 2xx body that is not what the API promises; becomes PROVIDER_BAD_RESPONSE. */
class Malformed extends Error {}

export class GeminiClient implements Provider {
  readonly name = PROVIDER;
  private readonly pool: Pool;
  /** health() on its own sockets, so it does not queue behind generations. */
  private readonly control: Pool;
  private readonly pathPrefix: string;
  private readonly headers: Record<string, string>;
  private readonly key: ApiKey;
  private readonly controlTimeoutMs: number;
  private closing?: Promise<void>;

  constructor(private readonly o: GeminiClientOptions) {
    const url = new URL(o.baseUrl);
    this.pathPrefix = url.pathname.replace(/\/+$/, "");
    this.controlTimeoutMs = o.controlTimeoutMs ?? Math.min(o.timeoutMs, 10_000);
    this.headers = { "content-type": "application/json", accept: "application/json" };
    this.key = new ApiKey(o.apiKey);
    // undici's own header/body timeouts only back up CallDeadline (which cuts the call at timeoutMs).
    const backstop = (ms: number) => ({ headersTimeout: ms + 1_000, bodyTimeout: ms + 1_000, keepAliveTimeout: KEEP_ALIVE_MS });
    this.pool = new Pool(url.origin, { connections: o.connections ?? 64, pipelining: 1, ...backstop(o.timeoutMs) });
    this.control = new Pool(url.origin, { connections: 2, pipelining: 1, ...backstop(this.controlTimeoutMs) });
  }

  /** POST models/{model}:generateContent with the chat (system messages → systemInstruction) or the prompt. */
  async generate(req: CompletionRequest, signal?: AbortSignal): Promise<GeminiCompletion> {
    const body = requestBody(req);
    const model = modelId(req.model ?? this.o.model);
    const path = `${API_VERSION}/models/${encodeURIComponent(model)}:generateContent`;
    const answer = await this.send(this.pool, "generateContent", "POST", path, JSON.stringify(body), this.o.timeoutMs, signal, jobHeaders(req));
    if (!isOk(answer)) throw this.statusFailure(answer, "generateContent");
    const json = this.json("generateContent", answer);
    try {
      return completionOf(json, model);
    } catch (err) {
      if (err instanceof Malformed) throw this.failure({ kind: "bad-response", statusCode: answer.statusCode, detail: err.message }, "generateContent");
      throw err;
    }
  }

  /** GET models/{model}: true on 2xx; false on any other status, a network error or the control timeout. */
  async health(signal?: AbortSignal): Promise<boolean> {
    try {
      const path = `${API_VERSION}/models/${encodeURIComponent(modelId(this.o.model))}`;
      return isOk(await this.send(this.control, "models.get", "GET", path, undefined, this.controlTimeoutMs, signal));
    } catch (err) {
      if (err instanceof FleetError) return false;
      throw err; // the caller's abort
    }
  }

  /** Destroys both pools: calls still running reject with PROVIDER_CONNECTION. Idempotent. */
  close(): Promise<void> {
    this.closing ??= Promise.all([this.pool.destroy(), this.control.destroy()]).then(() => undefined);
    return this.closing;
  }

  /** `sendOnce`, and once more after an auth failure if refreshing the key found a new one (a rotation). */
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
    if (isOk(answer) || this.statusFailure(answer, operation).code !== "PROVIDER_AUTH") return answer;
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
    // Sent even when empty, as before: Google answers a missing key with 403, which is what the caller should see.
    const headers = { ...this.headers, "x-goog-api-key": this.key.current() ?? "", ...extraHeaders };
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

  private statusFailure(answer: Answer, operation: string): ProviderError {
    const failure = { kind: "status" as const, statusCode: answer.statusCode, headers: answer.headers, body: answer.text };
    return toGeminiError(failure, { provider: PROVIDER, operation, secrets: this.key.redactions() });
  }

  private failure(failure: ProviderFailure, operation: string): ProviderError {
    return toProviderError(failure, { provider: PROVIDER, operation, secrets: this.key.redactions() });
  }
}

// ---- request ---------------------------------------------------------------------------------------------------

interface Content {
  role: "user" | "model";
  parts: { text: string }[];
}

/** The generateContent body. Consecutive messages of one role become one content (older models demand turns alternate). */
export function requestBody(req: CompletionRequest): Record<string, unknown> {
  if ((req.messages === undefined) === (req.prompt === undefined)) {
    throw new ProviderTerminalError("PROVIDER_BAD_REQUEST", "exactly one of messages or prompt is required", { provider: PROVIDER });
  }
  const messages: ChatMessage[] = req.messages ?? [{ role: "user", content: req.prompt ?? "" }];
  const system = messages.filter((m) => m.role === "system").map((m) => ({ text: m.content }));
  const contents: Content[] = [];
  for (const m of messages) {
    if (m.role === "system") continue;
    const role = m.role === "assistant" ? "model" : "user";
    const last = contents.at(-1);
    if (last?.role === role) last.parts.push({ text: m.content });
    else contents.push({ role, parts: [{ text: m.content }] });
  }
  if (contents.length === 0) {
    throw new ProviderTerminalError("PROVIDER_BAD_REQUEST", "a Gemini request needs a user or assistant message, not only system ones", { provider: PROVIDER });
  }
  return {
    contents,
    ...(system.length > 0 ? { systemInstruction: { parts: system } } : {}),
    generationConfig: generationConfig(req.params),
  };
}

/** JSON.stringify drops the undefined ones: only what the caller set goes out. */
function generationConfig(p: SamplingParams): Record<string, unknown> {
  return { maxOutputTokens: p.max_tokens, temperature: p.temperature, topP: p.top_p, stopSequences: p.stop, seed: p.seed };
}

function modelId(model: string): string {
  return model.startsWith("models/") ? model.slice("models/".length) : model;
}

/** A header value must be visible ASCII: anything else would make undici throw, failing the job for its id alone. */

// ---- answer ----------------------------------------------------------------------------------------------------

/** The first candidate's text, finish reason and usage; a filter's refusal throws ContentBlockedError. */
export function completionOf(json: unknown, model: string): GeminiCompletion {
  const candidates = field(json, "candidates");
  if (candidates !== undefined && !Array.isArray(candidates)) throw new Malformed("candidates is not an array");
  const candidate: unknown = candidates?.[0];
  if (candidate === undefined) {
    const blockReason = field(field(json, "promptFeedback"), "blockReason");
    if (typeof blockReason === "string") {
      throw new ContentBlockedError("PROVIDER_PROMPT_BLOCKED", blockReason, "prompt", `${PROVIDER}: prompt blocked (${blockReason})`, { provider: PROVIDER });
    }
    throw new Malformed("no candidates and no promptFeedback.blockReason");
  }
  const reason = field(candidate, "finishReason");
  const blocked = typeof reason === "string" ? BLOCKED_FINISH[reason] : undefined;
  if (blocked !== undefined) {
    throw new ContentBlockedError(blocked, String(reason), "answer", `${PROVIDER}: answer withheld (finishReason ${String(reason)})`, { provider: PROVIDER });
  }
  const usage = field(json, "usageMetadata");
  const thoughtsTokens = count(field(usage, "thoughtsTokenCount"));
  const served = field(json, "modelVersion");
  return {
    text: textOf(candidate),
    finishReason: typeof reason === "string" ? (FINISH[reason] ?? reason.toLowerCase()) : "unknown",
    promptTokens: count(field(usage, "promptTokenCount")),
    completionTokens: count(field(usage, "candidatesTokenCount")) + thoughtsTokens,
    thoughtsTokens,
    model: typeof served === "string" ? served : model,
    provider: PROVIDER,
  };
}

/** parts[].text joined; thought summaries (`thought: true`) are not the answer. No parts (all budget spent thinking) is "". */
function textOf(candidate: unknown): string {
  const parts = field(field(candidate, "content"), "parts");
  if (parts === undefined) return "";
  if (!Array.isArray(parts)) throw new Malformed("candidates[0].content.parts is not an array");
  let text = "";
  for (const part of parts) {
    const t = field(part, "text");
    if (typeof t === "string" && field(part, "thought") !== true) text += t;
  }
  return text;
}

/** Token counts: Gemini omits a zero count, and a proxy may omit usage altogether; both read as 0. */
function count(v: unknown): number {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : 0;
}

// ---- errors ----------------------------------------------------------------------------------------------------

/**
 * A non-2xx answer in the fleet's taxonomy. Generic statuses as every HTTP provider (toProviderError); Gemini's own:
 * 429 → PROVIDER_OVERLOADED with retryAfterMs from the body's RetryInfo, or PROVIDER_QUOTA_EXHAUSTED (terminal) when a
 * QuotaFailure names a per-day quota; 400 with an ErrorInfo reason API_KEY_* (how Google answers a wrong or expired
 * key) → PROVIDER_AUTH like 401/403, so a caller can refresh the secret on that one code.
 */
export function toGeminiError(failure: Extract<ProviderFailure, { kind: "status" }>, ctx: FailureContext): ProviderError {
  const generic = toProviderError(failure, ctx);
  const error = field(parseJson(failure.body), "error");
  const details = field(error, "details");
  const list = Array.isArray(details) ? details : [];
  const options = { provider: ctx.provider, statusCode: failure.statusCode };
  if (failure.statusCode === 429) {
    const daily = dailyQuota(list);
    if (daily !== undefined) return new ProviderTerminalError("PROVIDER_QUOTA_EXHAUSTED", `${generic.message} (quota ${daily})`, options);
    const message = field(error, "message");
    const retryAfterMs = retryInfoMs(list) ?? (typeof message === "string" ? retryInMessageMs(message) : undefined) ?? generic.retryAfterMs;
    return new ProviderRetryableError("PROVIDER_OVERLOADED", generic.message, { ...options, retryAfterMs });
  }
  if (failure.statusCode === 400 && list.some((d) => typeOf(d) === "ErrorInfo" && String(field(d, "reason")).startsWith("API_KEY_"))) {
    return new ProviderTerminalError("PROVIDER_AUTH", generic.message, options);
  }
  return generic;
}

/** The quotaId of a per-day quota violation (e.g. GenerateRequestsPerDayPerProjectPerModel-FreeTier), if any. */
function dailyQuota(details: unknown[]): string | undefined {
  for (const d of details) {
    if (typeOf(d) !== "QuotaFailure") continue;
    const violations = field(d, "violations");
    for (const v of Array.isArray(violations) ? violations : []) {
      const id = field(v, "quotaId");
      if (typeof id === "string" && /PerDay|Daily/.test(id)) return id;
    }
  }
  return undefined;
}

function retryInfoMs(details: unknown[]): number | undefined {
  const info = details.find((d) => typeOf(d) === "RetryInfo");
  return info === undefined ? undefined : parseGoogleDuration(field(info, "retryDelay"));
}

/** "... Please retry in 45.837906927s." — the same delay, in the message, when the details are missing. */
function retryInMessageMs(message: string): number | undefined {
  const m = /Please retry in (\d+(?:\.\d+)?)(ms|s)\b/.exec(message);
  if (m === null) return undefined;
  return m[2] === "ms" ? Math.ceil(Number(m[1])) : parseGoogleDuration(`${m[1]}s`);
}

/**
 * A protobuf JSON Duration ("45.837906927s", "1s", "0.5s") as whole ms, rounded UP so a retry never comes early.
 * Computed from the digits, not `seconds * 1000` (2.007 * 1000 = 2007.0000000000002 would ceil to 2008).
 */
export function parseGoogleDuration(value: unknown): number | undefined {
  if (typeof value !== "string") return undefined;
  const m = /^(\d+)(?:\.(\d+))?s$/.exec(value.trim());
  if (m === null) return undefined;
  const nanos = Number((m[2] ?? "").slice(0, 9).padEnd(9, "0"));
  return Number(m[1]) * 1000 + Math.ceil(nanos / 1_000_000);
}

function typeOf(detail: unknown): string | undefined {
  const t = field(detail, "@type");
  return typeof t === "string" && t.startsWith(RPC) ? t.slice(RPC.length) : undefined;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

// ---- plumbing --------------------------------------------------------------------------------------------------

function isOk(answer: Answer): boolean {
  return answer.statusCode >= 200 && answer.statusCode < 300;
}

