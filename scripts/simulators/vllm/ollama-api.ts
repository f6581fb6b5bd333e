/**
 * Ollama's native API on the simulator's one engine: /api/chat and /api/generate (NDJSON stream by default,
 * `stream: false` for one object), /api/tags, /api/version. A request is one engine sequence, so vLLM's and Ollama's
 * traffic share one batch, one KV cache and one clock. Shapes follow Ollama: `created_at`, durations in nanoseconds
 * of simulated time, `prompt_eval_count`/`eval_count`, `done_reason`, errors as `{"error": "..."}`.
 *
 * Modelled behaviour: 503 "server busy" when more than `ollamaMaxQueue` requests wait (OLLAMA_MAX_QUEUE); 404 for a
 * tag it does not serve; a prompt longer than `num_ctx` is cut to fit (Ollama truncates silently, default 4096);
 * `num_predict` -1 = until the model stops, -2 = fill the context; `keep_alive` is accepted (the model never unloads).
 * Faults: the simulator's injected statuses/resets, stalls (held halfway through the stream), a dead runner (500),
 * NUL answers, and `ollamaStreamErrorRate`: the stream is cut halfway by an `{"error"}` line after HTTP 200.
 */
import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Engine, SequenceResult } from "./engine.ts";
import type { FaultInjector } from "./faults.ts";
import { mulberry32, type OutputGenerator, type OutputPlan } from "./generator.ts";
import type { SimulatorOptions } from "./options.ts";
import { epochMs, type RequestLog, type RequestOutcome } from "./request-log.ts";
import { estimateChatTokens, estimateTextTokens } from "./tokens.ts";

export const OLLAMA_BUSY_MESSAGE = "server busy, please try again.  maximum pending requests exceeded";
export const OLLAMA_STREAM_CUT_MESSAGE = "an error was encountered while running the model: unexpected EOF";
const RUNNER_DEAD_MESSAGE = "llama runner process has terminated: exit status 2";
/** Reported by /api/version. */
export const OLLAMA_SIM_VERSION = "0.9.0";
/** Ollama's default context when a request sets no num_ctx. */
export const DEFAULT_NUM_CTX = 4096;
const MAX_BODY_BYTES = 32 * 1024 * 1024;
const NS_PER_MS = 1_000_000;

export interface OllamaApiDeps {
  options: SimulatorOptions;
  engine: Engine;
  generator: OutputGenerator;
  faults: FaultInjector;
  requestLog: RequestLog;
}

/** An HTTP error answered with Ollama's body `{"error": message}`. */
class OllamaError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

interface OllamaWork {
  kind: "chat" | "generate";
  /** The model as the request named it (echoed back, like Ollama). */
  model: string;
  stream: boolean;
  promptTokens: number;
  /** What the output derives from. */
  key: string;
  maxTokens: number | undefined;
  contextRoom: number;
  seed: number | undefined;
  /** No messages / empty prompt: Ollama only loads the model and answers done_reason "load". */
  loadOnly: boolean;
}

type Body = Record<string, unknown>;

export class OllamaApi {
  private readonly stalls = new Set<NodeJS.Timeout>();
  private readonly random: () => number;
  /** Responses whose socket a fault destroyed on purpose, and streams cut by an error line: logged as such. */
  private readonly resets = new WeakSet<ServerResponse>();
  private readonly cut = new WeakSet<ServerResponse>();

  constructor(private readonly deps: OllamaApiDeps) {
    this.random = mulberry32(deps.options.seed ^ 0x011a3a);
  }

  /** Paths this API answers: everything under /api. */
  handles(url: string | undefined): boolean {
    const path = pathOf(url);
    return path === "/api" || path.startsWith("/api/");
  }

  readonly listener = (req: IncomingMessage, res: ServerResponse): void => {
    this.route(req, res).catch((thrown: unknown) => {
      const err = thrown instanceof OllamaError ? thrown : new OllamaError(500, (thrown as Error)?.message ?? String(thrown));
      sendJson(res, err.status, { error: err.message });
    });
  };

  close(): void {
    for (const timer of this.stalls) clearTimeout(timer);
    this.stalls.clear();
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    switch (`${req.method ?? "GET"} ${pathOf(req.url)}`) {
      case "GET /api/version":
        return sendJson(res, 200, { version: OLLAMA_SIM_VERSION });
      case "GET /api/tags":
        return sendJson(res, 200, tagsBody(this.deps.options.ollamaModel));
      case "POST /api/chat":
        this.track(req, res);
        return this.generate("chat", req, res);
      case "POST /api/generate":
        this.track(req, res);
        return this.generate("generate", req, res);
    }
    send(res, 404, "404 page not found", "text/plain");
  }

  private track(req: IncomingMessage, res: ServerResponse): void {
    const { requestLog } = this.deps;
    if (!requestLog.enabled) return;
    const header = req.headers["x-request-id"];
    const requestId = typeof header === "string" && header !== "" ? header : undefined;
    const trace = req.headers.traceparent;
    const traceparent = typeof trace === "string" && trace !== "" ? trace : undefined;
    const startedAt = epochMs();
    res.once("close", () => {
      const written = res.writableFinished;
      const failed = res.statusCode >= 400 || this.cut.has(res);
      const outcome: RequestOutcome = this.resets.has(res) ? "reset" : !written ? "aborted" : failed ? "error" : "served";
      requestLog.record({ requestId, ...(traceparent === undefined ? {} : { traceparent }), startedAt, endedAt: epochMs(), outcome, ...(written ? { status: res.statusCode } : {}) });
    });
  }

  private async generate(kind: OllamaWork["kind"], req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req);
    const { options, engine, faults, generator } = this.deps;
    if (faults.options.engineDead || faults.options.ollamaRunnerDead) throw new OllamaError(500, RUNNER_DEAD_MESSAGE);
    const fault = faults.nextError();
    if (fault === "reset") {
      this.resets.add(res);
      req.socket.destroy();
      return;
    }
    if (fault !== undefined) throw new OllamaError(fault, fault === 503 ? OLLAMA_BUSY_MESSAGE : `injected fault: HTTP ${fault}`);
    const work = parseWork(kind, body, options);
    if (work.loadOnly) return sendJson(res, 200, { ...head(work), ...piece(work.kind, ""), done_reason: "load", done: true });
    if (engine.numWaiting + 1 > options.ollamaMaxQueue) throw new OllamaError(503, OLLAMA_BUSY_MESSAGE);
    const seedSalt = Math.imul(work.seed ?? 0, 0x27d4eb2d);
    const limits = { maxTokens: work.maxTokens, contextRoom: work.contextRoom, minTokens: 0, ignoreEos: false };
    const plan: OutputPlan = { ...generator.plan(work.key, seedSalt, limits), ...(faults.nulAnswer(work.key) ? { nul: true } : {}) };
    let settled = false;
    const seq = engine.submit({ promptTokens: work.promptTokens, outputTokens: plan.outputTokens, finishReason: plan.finishReason }, (result) => {
      if (settled || result.outcome === "abort") return;
      settled = true;
      if (result.outcome === "error") return sendJson(res, 500, { error: RUNNER_DEAD_MESSAGE });
      this.respond(work, plan, result, res);
    });
    res.on("close", () => {
      if (settled) return;
      settled = true;
      engine.abort(seq); // the client left: Ollama cancels the generation
    });
  }

  private respond(work: OllamaWork, plan: OutputPlan, result: SequenceResult, res: ServerResponse): void {
    const text = this.deps.generator.text(plan);
    const cut = this.deps.faults.options.ollamaStreamErrorRate ?? 0;
    const cutHere = cut > 0 && this.random() < cut;
    const stallMs = this.deps.faults.nextStallMs();
    const final = () => ({ ...head(work), ...piece(work.kind, ""), done_reason: plan.finishReason, done: true, ...metricsOf(result) });
    if (!work.stream) {
      const whole = cutHere ? undefined : { ...final(), ...piece(work.kind, text) };
      return this.later(res, stallMs, () => (whole === undefined ? sendJson(res, 500, { error: OLLAMA_STREAM_CUT_MESSAGE }) : sendJson(res, 200, whole)));
    }
    const lines = tokensOf(text).map((t) => JSON.stringify({ ...head(work), ...piece(work.kind, t), done: false }));
    const half = Math.ceil(lines.length / 2);
    res.writeHead(200, { "content-type": "application/x-ndjson" });
    res.write(joinLines(lines.slice(0, half)));
    if (cutHere) {
      this.cut.add(res);
      res.end(joinLines([JSON.stringify({ error: OLLAMA_STREAM_CUT_MESSAGE })]));
      return;
    }
    this.later(res, stallMs, () => res.end(joinLines([...lines.slice(half), JSON.stringify(final())])));
  }

  /** Run `write` now, or after `ms` of wall time unless the client leaves first. */
  private later(res: ServerResponse, ms: number, write: () => void): void {
    if (ms === 0) return write();
    const timer = setTimeout(() => {
      this.stalls.delete(timer);
      if (!res.destroyed) write();
    }, ms);
    this.stalls.add(timer);
    res.on("close", () => {
      clearTimeout(timer);
      this.stalls.delete(timer);
    });
  }
}

/** Validate a chat/generate body as Ollama does (400 bad body, 404 unknown tag) into engine work. */
function parseWork(kind: OllamaWork["kind"], body: unknown, options: SimulatorOptions): OllamaWork {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new OllamaError(400, "request body must be a JSON object");
  const b = body as Body;
  if (typeof b.model !== "string" || b.model === "") throw new OllamaError(400, "model is required");
  if (fullTag(b.model) !== fullTag(options.ollamaModel)) throw new OllamaError(404, `model "${b.model}" not found, try pulling it first`);
  if (b.keep_alive !== undefined && typeof b.keep_alive !== "string" && typeof b.keep_alive !== "number") {
    throw new OllamaError(400, "keep_alive must be a duration string or a number of seconds");
  }
  const { texts, key, raw } = kind === "chat" ? chatPrompt(b.messages) : generatePrompt(b);
  const opts = optionsOf(b.options);
  const numCtx = Math.min(intOption(opts, "num_ctx", 1) ?? DEFAULT_NUM_CTX, options.maxModelLen);
  const estimated = raw ? estimateTextTokens(texts.join("")) : estimateChatTokens(texts);
  const promptTokens = Math.min(estimated, numCtx - 1); // truncated to fit the context, as Ollama does
  // Past the context Ollama shifts it and goes on; the engine needs a bound, max_model_len.
  const room = options.maxModelLen - promptTokens;
  const numPredict = intOption(opts, "num_predict", Number.MIN_SAFE_INTEGER);
  const maxTokens = numPredict === -2 ? numCtx - promptTokens : numPredict !== undefined && numPredict > 0 ? Math.min(numPredict, room) : undefined;
  return {
    kind,
    model: b.model,
    stream: b.stream !== false,
    promptTokens,
    key,
    maxTokens,
    contextRoom: numCtx - promptTokens,
    seed: intOption(opts, "seed", Number.MIN_SAFE_INTEGER),
    loadOnly: texts.every((t) => t === "") && key === "",
  };
}

function chatPrompt(messages: unknown): { texts: string[]; key: string; raw: boolean } {
  if (messages === undefined || messages === null) return { texts: [], key: "", raw: false };
  if (!Array.isArray(messages)) throw new OllamaError(400, "messages must be a list of messages");
  const texts: string[] = [];
  const keyParts: string[] = [];
  for (const [i, m] of messages.entries()) {
    const role = (m as Body | null)?.role;
    const content = (m as Body | null)?.content ?? "";
    if (typeof role !== "string" || typeof content !== "string") throw new OllamaError(400, `messages[${i}]: needs a string role and string content`);
    texts.push(content);
    keyParts.push(role, content);
  }
  return { texts, key: keyParts.join("\u0000"), raw: false };
}

function generatePrompt(b: Body): { texts: string[]; key: string; raw: boolean } {
  const prompt = b.prompt ?? "";
  const system = b.system ?? "";
  if (typeof prompt !== "string" || typeof system !== "string") throw new OllamaError(400, "prompt and system must be strings");
  if (prompt === "") return { texts: [""], key: "", raw: false };
  const texts = system === "" ? [prompt] : [system, prompt];
  return { texts, key: system === "" ? prompt : `${system}\u0000${prompt}`, raw: b.raw === true };
}

function optionsOf(value: unknown): Body {
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) throw new OllamaError(400, "options must be an object");
  return value as Body;
}

function intOption(opts: Body, name: string, min: number): number | undefined {
  const v = opts[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min) throw new OllamaError(400, `option "${name}" must be an integer >= ${min}`);
  return v;
}

/** "llama3.1" means "llama3.1:latest". */
function fullTag(tag: string): string {
  return tag.includes(":") ? tag : `${tag}:latest`;
}

function head(work: OllamaWork): Body {
  return { model: work.model, created_at: new Date().toISOString() };
}

function piece(kind: OllamaWork["kind"], text: string): Body {
  return kind === "chat" ? { message: { role: "assistant", content: text } } : { response: text };
}

/**
 * Ollama's durations (ns) from simulated ms: load_duration includes the wait for a runner (Ollama measures it from
 * request start to runner ready), prompt_eval_duration runs to the first token, eval_duration to the last.
 */
function metricsOf(r: SequenceResult): Body {
  const ns = (ms: number) => Math.round(Math.max(0, ms) * NS_PER_MS);
  const queue = Math.max(0, r.queueMs);
  const ttft = Math.max(queue, r.ttftMs);
  return {
    total_duration: ns(r.e2eMs),
    load_duration: ns(queue),
    prompt_eval_count: r.promptTokens,
    prompt_eval_duration: ns(ttft - queue),
    eval_count: r.outputTokens,
    eval_duration: ns(r.e2eMs - ttft),
  };
}

/** One streamed piece per output token (one word each, the generator's unit). */
function tokensOf(text: string): string[] {
  return text === "" ? [] : text.split(" ").map((w, i) => (i === 0 ? w : ` ${w}`));
}

function joinLines(lines: string[]): string {
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}

function tagsBody(tag: string): Body {
  const name = fullTag(tag);
  return {
    models: [
      {
        name,
        model: name,
        modified_at: "2025-01-01T00:00:00Z",
        size: 4_920_753_328,
        digest: createHash("sha256").update(name).digest("hex"),
        details: { parent_model: "", format: "gguf", family: "llama", families: ["llama"], parameter_size: "8.0B", quantization_level: "Q4_K_M" },
      },
    ],
  };
}

function pathOf(url: string | undefined): string {
  return (url ?? "/").split("?", 1)[0] ?? "/";
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new OllamaError(413, "request body too large");
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") throw new OllamaError(400, "missing request body");
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new OllamaError(400, (err as Error).message);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, JSON.stringify(body), "application/json; charset=utf-8");
}

function send(res: ServerResponse, status: number, body: string, contentType: string): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(body) });
  res.end(body);
}
