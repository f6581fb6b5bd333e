/**
 * Google's Gemini API on the simulated engine: POST /v1beta/models/{model}:generateContent answered with Gemini's
 * JSON (candidates, finishReason, usageMetadata, modelVersion) and GET /v1beta/models/{model}; failures with Google's
 * error body {"error":{"code","message","status","details"}}. The same engine, generator and generic faults (errorRate,
 * stalls, engineDead) as the OpenAI routes, plus Gemini's own (options.ts `gemini*`): 429 with RetryInfo, per-day
 * QuotaFailure, finishReason SAFETY, a blocked prompt. A text containing `<finish:REASON>` is answered with that
 * finishReason and `<block:REASON>` refused with that promptFeedback.blockReason: how tests ask for one.
 * Authentication as Google answers it: no key → 403 PERMISSION_DENIED, a wrong key → 400 API_KEY_INVALID (with the
 * key echoed in a DebugInfo detail, as Google's has been seen to do, so clients must not quote error bodies whole).
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Engine, Sequence, SequenceResult } from "./engine.ts";
import type { FaultInjector } from "./faults.ts";
import { mulberry32, type OutputGenerator, type OutputPlan } from "./generator.ts";
import type { SimulatorOptions } from "./options.ts";
import { estimateChatTokens } from "./tokens.ts";

export interface GeminiApiDeps {
  /** Read at each request: setFaults() replaces `options.faults`. */
  options: SimulatorOptions;
  engine: Engine;
  generator: OutputGenerator;
  faults: FaultInjector;
}

/** A generateContent or models.get call as received: what a test checks the client sent. */
export interface GeminiReceived {
  method: string;
  /** Path and query as sent. */
  url: string;
  requestId?: string;
  /** The parsed body (POST), undefined for GET or a body that is not JSON. */
  body?: unknown;
}

const PREFIX = "/v1beta/";
const RECEIVED_KEPT = 200;
const MAX_BODY_BYTES = 32 * 1024 * 1024;
const RPC = "type.googleapis.com/google.rpc.";
const STATUS: Record<number, string> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  413: "INVALID_ARGUMENT",
  429: "RESOURCE_EXHAUSTED",
  500: "INTERNAL",
  503: "UNAVAILABLE",
  504: "DEADLINE_EXCEEDED",
};
/** finishReasons after which Google sends no content. */
const WITHHELD = new Set(["SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"]);
const TOP_FIELDS = new Set([
  "contents", "systemInstruction", "system_instruction", "generationConfig", "generation_config", "safetySettings",
  "safety_settings", "tools", "toolConfig", "tool_config", "cachedContent", "cached_content",
]);
const CONFIG_FIELDS = new Set([
  "maxOutputTokens", "max_output_tokens", "temperature", "topP", "top_p", "topK", "top_k", "stopSequences", "stop_sequences",
  "seed", "candidateCount", "candidate_count", "presencePenalty", "presence_penalty", "frequencyPenalty", "frequency_penalty",
  "responseMimeType", "response_mime_type", "responseSchema", "response_schema", "thinkingConfig", "thinking_config",
]);

/** An HTTP error answered with Google's error body. */
class GoogleError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details: unknown[] = [],
  ) {
    super(message);
  }
}

/** What one generateContent asks of the engine. */
interface GeminiWork {
  promptTokens: number;
  key: string;
  maxOutputTokens: number | undefined;
  seed: number | undefined;
  /** From a `<finish:REASON>` marker. */
  finish?: string;
  /** From a `<block:REASON>` marker. */
  block?: string;
}

export class GeminiApi {
  private readonly stalls = new Set<NodeJS.Timeout>();
  private readonly received: GeminiReceived[] = [];
  /** Gemini's own faults draw here, so adding them does not shift the generic fault stream. */
  private readonly random: () => number;

  constructor(private readonly deps: GeminiApiDeps) {
    this.random = mulberry32(deps.options.seed ^ 0x6e31);
  }

  /** Is this request for the Gemini API? */
  handles(req: IncomingMessage): boolean {
    return (req.url ?? "").startsWith(PREFIX);
  }

  /** The node:http listener for requests `handles()` accepted. */
  readonly listener = (req: IncomingMessage, res: ServerResponse): void => {
    this.route(req, res).catch((thrown: unknown) => {
      sendError(res, thrown instanceof GoogleError ? thrown : new GoogleError(500, "Internal error encountered."));
    });
  };

  /** The last requests received, oldest first. */
  requests(): GeminiReceived[] {
    return [...this.received];
  }

  /** Drop held (stalled) responses; their sockets are closed by the server. */
  close(): void {
    for (const timer of this.stalls) clearTimeout(timer);
    this.stalls.clear();
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? "GET";
    const url = new URL(req.url ?? "/", "http://simulator");
    const body = method === "POST" ? await readJson(req) : undefined;
    const header = req.headers["x-request-id"];
    this.remember({ method, url: req.url ?? "", ...(typeof header === "string" ? { requestId: header } : {}), body: body?.ok ? body.value : undefined });
    this.authenticate(req, url);
    const match = /^\/v1beta\/models\/([^/:]+)(:generateContent)?$/.exec(url.pathname);
    const { options } = this.deps;
    const expected = match?.[2] === undefined ? "GET" : "POST";
    if (match === null || method !== expected) {
      throw new GoogleError(404, `Method or path not found: ${method} ${url.pathname}`);
    }
    if (match[1] !== options.geminiModel) {
      throw new GoogleError(404, `models/${match[1]} is not found for API version v1beta, or is not supported for generateContent.`);
    }
    if (method === "GET") return send(res, 200, modelBody(options));
    if (body === undefined || !body.ok) throw new GoogleError(400, `Invalid JSON payload received. ${body?.ok === false ? body.error : ""}`.trim());
    return this.generate(body.value, req, res);
  }

  /** `x-goog-api-key` (or Google's `?key=`, accepted as Google does) against the configured key. */
  private authenticate(req: IncomingMessage, url: URL): void {
    const expected = this.deps.options.geminiApiKey;
    if (expected === undefined) return;
    const header = req.headers["x-goog-api-key"];
    const key = typeof header === "string" ? header : url.searchParams.get("key");
    if (key === null || key === "") {
      throw new GoogleError(
        403,
        "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
      );
    }
    if (key !== expected) {
      throw new GoogleError(400, "API key not valid. Please pass a valid API key.", [
        { "@type": `${RPC}ErrorInfo`, reason: "API_KEY_INVALID", domain: "googleapis.com", metadata: { service: "generativelanguage.googleapis.com" } },
        { "@type": `${RPC}LocalizedMessage`, locale: "en-US", message: "API key not valid. Please pass a valid API key." },
        { "@type": `${RPC}DebugInfo`, detail: `Invalid API key: ${key}` },
      ]);
    }
  }

  private generate(body: unknown, req: IncomingMessage, res: ServerResponse): void {
    const { options, faults, engine } = this.deps;
    if (faults.options.engineDead) throw new GoogleError(500, "Internal error encountered.");
    const fault = faults.nextError();
    if (fault === "reset") {
      req.socket.destroy();
      return;
    }
    if (fault === 429) throw rateLimited(options);
    if (fault !== undefined) throw new GoogleError(fault, `injected fault: HTTP ${fault}`);
    const work = parseGenerateContent(body, options.maxModelLen);
    const f = faults.options;
    if (this.draw(f.geminiDailyQuotaRate)) throw dailyQuotaExhausted(options);
    if (this.draw(f.geminiRateLimitRate)) throw rateLimited(options);
    const block = work.block ?? (this.draw(f.geminiPromptBlockRate) ? "SAFETY" : undefined);
    if (block !== undefined) return send(res, 200, promptBlockedBody(options.geminiModel, block, work.promptTokens));
    const forced = work.finish ?? (this.draw(f.geminiSafetyRate) ? "SAFETY" : undefined);
    const { plan, thoughts } = this.plan(work);
    let settled = false;
    const onDone = (result: SequenceResult) => {
      if (settled || result.outcome === "abort") return;
      settled = true;
      if (result.outcome === "error") return sendError(res, new GoogleError(500, "Internal error encountered."));
      const reason = forced ?? (plan.finishReason === "stop" ? "STOP" : "MAX_TOKENS");
      const text = WITHHELD.has(reason) || plan.outputTokens === thoughts ? undefined : this.deps.generator.text({ ...plan, outputTokens: plan.outputTokens - thoughts });
      this.respond(res, answerBody(options.geminiModel, { text, reason, promptTokens: work.promptTokens, outputTokens: plan.outputTokens - thoughts, thoughts }));
    };
    const seq: Sequence = engine.submit({ promptTokens: work.promptTokens, outputTokens: plan.outputTokens, finishReason: plan.finishReason }, onDone);
    res.on("close", () => {
      if (settled || res.writableEnded) return;
      settled = true;
      engine.abort(seq); // the client left: stop generating for it, as the OpenAI routes do
    });
  }

  /**
   * Output length and finish, deterministic from seed and prompt. Thinking comes first and counts against
   * maxOutputTokens (Gemini 2.5's behaviour): a budget smaller than the thinking ends MAX_TOKENS with no text.
   * `plan.outputTokens` is thoughts + visible tokens.
   */
  private plan(work: GeminiWork): { plan: OutputPlan; thoughts: number } {
    const { options, generator } = this.deps;
    const thinking = options.geminiThinkingTokens;
    const salt = Math.imul(work.seed ?? 0, 0x27d4eb2d);
    if (work.maxOutputTokens !== undefined && work.maxOutputTokens <= thinking) {
      return { plan: { outputTokens: work.maxOutputTokens, finishReason: "length", textStart: 0 }, thoughts: work.maxOutputTokens };
    }
    const visible = generator.plan(work.key, salt, {
      maxTokens: work.maxOutputTokens === undefined ? undefined : work.maxOutputTokens - thinking,
      contextRoom: Math.max(1, options.maxModelLen - work.promptTokens - thinking),
      minTokens: 0,
      ignoreEos: false,
    });
    return { plan: { ...visible, outputTokens: visible.outputTokens + thinking }, thoughts: thinking };
  }

  private respond(res: ServerResponse, body: string): void {
    const stallMs = this.deps.faults.nextStallMs();
    if (stallMs === 0) return send(res, 200, body);
    const timer = setTimeout(() => {
      this.stalls.delete(timer);
      send(res, 200, body);
    }, stallMs);
    this.stalls.add(timer);
    res.on("close", () => {
      clearTimeout(timer);
      this.stalls.delete(timer);
    });
  }

  private draw(rate: number | undefined): boolean {
    return rate !== undefined && rate > 0 && this.random() < rate;
  }

  private remember(entry: GeminiReceived): void {
    this.received.push(entry);
    if (this.received.length > RECEIVED_KEPT) this.received.shift();
  }
}

// ---- request validation ----------------------------------------------------------------------------------------

type Body = Record<string, unknown>;

/** Google's proto-JSON rules that matter to a client: known field names only, contents with text parts, sane limits. */
function parseGenerateContent(body: unknown, maxModelLen: number): GeminiWork {
  if (!isObject(body)) throw new GoogleError(400, "Invalid JSON payload received. Expected an object.");
  unknownFields(body, TOP_FIELDS, "");
  const contents = body.contents;
  if (!Array.isArray(contents) || contents.length === 0) throw new GoogleError(400, "* GenerateContentRequest.contents: contents is not specified");
  const texts: string[] = [];
  const keyParts: string[] = [];
  const system = body.systemInstruction ?? body.system_instruction;
  if (system !== undefined) {
    const t = partsText(system, "system_instruction");
    texts.push(t);
    keyParts.push("system", t);
  }
  contents.forEach((c, i) => {
    const role = isObject(c) ? (c.role ?? "user") : undefined;
    if (role !== "user" && role !== "model") throw new GoogleError(400, "Please use a valid role: user, model.");
    const t = partsText(c, `contents[${i}]`);
    texts.push(t);
    keyParts.push(role, t);
  });
  const config = body.generationConfig ?? body.generation_config ?? {};
  if (!isObject(config)) throw new GoogleError(400, "Invalid JSON payload received. generation_config must be an object.");
  unknownFields(config, CONFIG_FIELDS, "generation_config.");
  const maxOutputTokens = int(config.maxOutputTokens ?? config.max_output_tokens, "max_output_tokens", 1);
  const candidates = int(config.candidateCount ?? config.candidate_count, "candidate_count", 1);
  if (candidates !== undefined && candidates > 1) throw new GoogleError(400, "candidate_count > 1 is not supported by the simulator.");
  const stops = config.stopSequences ?? config.stop_sequences;
  if (stops !== undefined && (!Array.isArray(stops) || stops.length > 5 || !stops.every((s) => typeof s === "string"))) {
    throw new GoogleError(400, "* GenerateContentRequest.generation_config.stop_sequences: at most 5 stop sequences, each a string.");
  }
  const promptTokens = estimateChatTokens(texts);
  if (promptTokens >= maxModelLen) {
    throw new GoogleError(400, `The input token count (${promptTokens}) exceeds the maximum number of tokens allowed (${maxModelLen}).`);
  }
  const all = texts.join("\n");
  return {
    promptTokens,
    key: keyParts.join("\u0000"),
    maxOutputTokens,
    seed: int(config.seed, "seed", Number.MIN_SAFE_INTEGER),
    ...marker(all, "finish"),
    ...marker(all, "block"),
  };
}

function partsText(content: unknown, where: string): string {
  const parts = isObject(content) ? content.parts : undefined;
  if (!Array.isArray(parts) || parts.length === 0) throw new GoogleError(400, `* GenerateContentRequest.${where}.parts: contents.parts must not be empty.`);
  return parts
    .map((p, j) => {
      if (!isObject(p) || typeof p.text !== "string") throw new GoogleError(400, `* GenerateContentRequest.${where}.parts[${j}]: only text parts are simulated.`);
      return p.text;
    })
    .join("\n");
}

function unknownFields(o: Body, known: ReadonlySet<string>, prefix: string): void {
  for (const name of Object.keys(o)) {
    if (!known.has(name)) throw new GoogleError(400, `Invalid JSON payload received. Unknown name "${prefix}${name}": Cannot find field.`);
  }
}

function int(v: unknown, name: string, min: number): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min) throw new GoogleError(400, `* GenerateContentRequest.generation_config.${name}: must be an integer >= ${min}.`);
  return v;
}

function marker(text: string, kind: "finish" | "block"): { finish?: string; block?: string } {
  const m = new RegExp(`<${kind}:([A-Z_]+)>`).exec(text);
  return m?.[1] === undefined ? {} : { [kind]: m[1] };
}

function isObject(v: unknown): v is Body {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

// ---- response bodies -------------------------------------------------------------------------------------------

interface Answer {
  /** Undefined: no content (withheld, or every token spent thinking). */
  text: string | undefined;
  reason: string;
  promptTokens: number;
  outputTokens: number;
  thoughts: number;
}

function answerBody(model: string, a: Answer): string {
  const candidate: Body = { finishReason: a.reason, index: 0 };
  if (a.text !== undefined) candidate.content = { parts: [{ text: a.text }], role: "model" };
  else candidate.content = { role: "model" };
  if (a.reason === "SAFETY") candidate.safetyRatings = [{ category: "HARM_CATEGORY_DANGEROUS_CONTENT", probability: "HIGH", blocked: true }];
  return JSON.stringify({ candidates: [candidate], usageMetadata: usage(a.promptTokens, a.outputTokens, a.thoughts), modelVersion: model, responseId: newId() });
}

function promptBlockedBody(model: string, blockReason: string, promptTokens: number): string {
  return JSON.stringify({
    promptFeedback: { blockReason, safetyRatings: [{ category: "HARM_CATEGORY_HARASSMENT", probability: "HIGH" }] },
    usageMetadata: usage(promptTokens, 0, 0),
    modelVersion: model,
    responseId: newId(),
  });
}

/** Google leaves a zero count out: a client must read a missing one as 0. */
function usage(promptTokens: number, candidates: number, thoughts: number): Body {
  return {
    promptTokenCount: promptTokens,
    ...(candidates > 0 ? { candidatesTokenCount: candidates } : {}),
    totalTokenCount: promptTokens + candidates + thoughts,
    promptTokensDetails: [{ modality: "TEXT", tokenCount: promptTokens }],
    ...(thoughts > 0 ? { thoughtsTokenCount: thoughts } : {}),
  };
}

function modelBody(options: SimulatorOptions): string {
  return JSON.stringify({
    name: `models/${options.geminiModel}`,
    version: "001",
    displayName: options.geminiModel,
    inputTokenLimit: options.maxModelLen,
    outputTokenLimit: 65_536,
    supportedGenerationMethods: ["generateContent", "countTokens"],
  });
}

/** A 429 for a per-minute quota, its delay in RetryInfo and the message (no Retry-After header, as Google sends). */
function rateLimited(options: SimulatorOptions): GoogleError {
  const delay = duration(options.faults.geminiRetryDelaySeconds ?? 0);
  return new GoogleError(429, `You exceeded your current quota, please check your plan and billing details. Please retry in ${delay}.`, [
    quotaFailure(options.geminiModel, "GenerateRequestsPerMinutePerProjectPerModel"),
    { "@type": `${RPC}RetryInfo`, retryDelay: delay },
  ]);
}

/** A 429 whose violations include the per-day quota; Google still adds a (short) RetryInfo. */
function dailyQuotaExhausted(options: SimulatorOptions): GoogleError {
  return new GoogleError(429, "You exceeded your current quota, please check your plan and billing details.", [
    quotaFailure(options.geminiModel, "GenerateRequestsPerMinutePerProjectPerModel", "GenerateRequestsPerDayPerProjectPerModel"),
    { "@type": `${RPC}RetryInfo`, retryDelay: "12s" },
  ]);
}

function quotaFailure(model: string, ...quotaIds: string[]): Body {
  return {
    "@type": `${RPC}QuotaFailure`,
    violations: quotaIds.map((quotaId) => ({
      quotaMetric: "generativelanguage.googleapis.com/generate_content_requests",
      quotaId,
      quotaDimensions: { location: "global", model },
      quotaValue: "1000",
    })),
  };
}

/** Seconds as a protobuf JSON Duration: "45.837906927s", "2s". */
function duration(seconds: number): string {
  return `${seconds.toFixed(9).replace(/\.?0+$/, "")}s`;
}

const newId = () => randomUUID().replaceAll("-", "").slice(0, 22);

// ---- plumbing --------------------------------------------------------------------------------------------------

async function readJson(req: IncomingMessage): Promise<{ ok: true; value: unknown } | { ok: false; error: string }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new GoogleError(413, `Request payload size exceeds the limit: ${MAX_BODY_BYTES} bytes.`);
    chunks.push(chunk as Buffer);
  }
  try {
    return { ok: true, value: JSON.parse(Buffer.concat(chunks).toString("utf8")) };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

function send(res: ServerResponse, status: number, body: string): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { "content-type": "application/json; charset=UTF-8", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

function sendError(res: ServerResponse, err: GoogleError): void {
  const status = STATUS[err.status] ?? (err.status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION");
  send(res, err.status, JSON.stringify({ error: { code: err.status, message: err.message, status, ...(err.details.length > 0 ? { details: err.details } : {}) } }));
}
