/**
 * HTTP routes of the simulated vLLM server. A completion request becomes one engine sequence per prompt × n; the
 * response is written when the last one finishes, or streamed token by token (`stream: true`, sse-stream.ts). A
 * client that disconnects first has its sequences aborted, as vLLM does, so abandoned work does not keep the batch
 * full. When the engine dies, requests in flight get vLLM's bare 500 (a stream: an error line), and the server then
 * stops listening (server.ts), as vLLM's API server exits.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Engine, Sequence, SequenceResult } from "./engine.ts";
import { NUL_ANSWER_MARKER, type FaultInjector } from "./faults.ts";
import type { OutputGenerator, OutputPlan } from "./generator.ts";
import type { SimulatorMetrics } from "./metrics.ts";
import type { SimulatorOptions } from "./options.ts";
import { epochMs, type RequestLog, type RequestOutcome } from "./request-log.ts";
import { parseChatRequest, parseCompletionRequest, type GenerationRequest, type PromptWork } from "./requests.ts";
import { ApiError, chatCompletionBody, completionBody, errorBody, modelsBody, type Choice } from "./responses.ts";
import { CompletionStream } from "./sse-stream.ts";

const MAX_BODY_BYTES = 32 * 1024 * 1024;
const ENGINE_DEAD_MESSAGE = "EngineCore encountered an issue. See stack trace (above) for the root cause.";

export interface HandlerDeps {
  options: SimulatorOptions;
  engine: Engine;
  generator: OutputGenerator;
  faults: FaultInjector;
  metrics: SimulatorMetrics;
  requestLog: RequestLog;
}

export class RequestHandler {
  private readonly stalls = new Set<NodeJS.Timeout>();
  private readonly createdSeconds = Math.floor(Date.now() / 1000);

  constructor(private readonly deps: HandlerDeps) {}

  /** The node:http request listener. */
  readonly listener = (req: IncomingMessage, res: ServerResponse): void => {
    this.route(req, res).catch((thrown: unknown) => {
      const err = thrown instanceof ApiError ? thrown : new ApiError(500, `internal simulator error: ${(thrown as Error)?.message ?? String(thrown)}`);
      sendError(res, err);
    });
  };

  /** Drop held (stalled) responses; their sockets are closed by the server. */
  close(): void {
    for (const timer of this.stalls) clearTimeout(timer);
    this.stalls.clear();
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?", 1)[0];
    const { options, metrics } = this.deps;
    const method = req.method ?? "GET";
    if (path?.startsWith("/v1/") && options.apiKey !== undefined && req.headers.authorization !== `Bearer ${options.apiKey}`) {
      return send(res, 401, JSON.stringify({ error: "Unauthorized" }));
    }
    const route = `${method} ${path}`;
    switch (route) {
      case "GET /health":
        return send(res, this.deps.faults.options.engineDead ? 503 : 200, "", "text/plain");
      case "GET /v1/models":
        return send(res, 200, modelsBody(options.model, options.maxModelLen, this.createdSeconds));
      case "GET /metrics":
        return send(res, 200, await metrics.render(), metrics.contentType);
      case "POST /v1/chat/completions":
        this.track(req, res);
        return this.generate("chat", req, res);
      case "POST /v1/completions":
        this.track(req, res);
        return this.generate("completion", req, res);
      case "GET /debug/requests":
        if (this.deps.requestLog.enabled) return send(res, 200, JSON.stringify(this.deps.requestLog.snapshot()));
    }
    const known = ["/health", "/v1/models", "/metrics", "/v1/chat/completions", "/v1/completions"].includes(path ?? "");
    send(res, known ? 405 : 404, JSON.stringify({ detail: known ? "Method Not Allowed" : "Not Found" }));
  }

  /**
   * The texts a request would be answered with (deterministic from seed, prompt and limits), without running it:
   * lets an audit tell whose answer a stored result is. Random NUL injection (nulAnswerRate) is not drawn.
   */
  expectedTexts(kind: GenerationRequest["kind"], body: unknown): string[] {
    const served = { model: this.deps.options.model, maxModelLen: this.deps.options.maxModelLen };
    const work = kind === "chat" ? parseChatRequest(body, served) : parseCompletionRequest(body, served);
    const texts: string[] = [];
    for (const prompt of work.prompts) {
      for (let j = 0; j < work.n; j++) texts.push(this.deps.generator.text(this.plan(work, prompt, j, prompt.key.includes(NUL_ANSWER_MARKER))));
    }
    return texts;
  }

  /** Logs the request's id, interval and outcome when the connection's response ends, however it ends. */
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
      const outcome: RequestOutcome = resets.has(res) ? "reset" : !written ? "aborted" : res.statusCode < 400 ? "served" : "error";
      requestLog.record({ requestId, ...(traceparent === undefined ? {} : { traceparent }), startedAt, endedAt: epochMs(), outcome, ...(written ? { status: res.statusCode } : {}) });
    });
  }

  private async generate(kind: GenerationRequest["kind"], req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req);
    const { options, engine, faults } = this.deps;
    // Between the engine's death and the listener closing, vLLM's exception handler answers a bare 500.
    if (faults.options.engineDead) return send(res, 500, "", "text/plain");
    const fault = faults.nextError();
    if (fault === "reset") {
      resets.add(res);
      req.socket.destroy();
      return;
    }
    if (fault !== undefined) {
      const headers = fault === 429 ? { "retry-after": "1" } : undefined;
      return sendError(res, new ApiError(fault, `injected fault: HTTP ${fault}`), headers);
    }
    const served = { model: options.model, maxModelLen: options.maxModelLen };
    const work = kind === "chat" ? parseChatRequest(body, served) : parseCompletionRequest(body, served);
    const total = work.prompts.length * work.n;
    if (options.maxNumQueuedReqs > 0 && engine.numWaiting + total > options.maxNumQueuedReqs) {
      throw new ApiError(503, `The waiting queue is full (max_num_queued_reqs=${options.maxNumQueuedReqs}); retry later.`);
    }
    this.run(work, res);
  }

  /** Submit every sequence of the request and answer when the last is done (or stream as tokens come). */
  private run(work: GenerationRequest, res: ServerResponse): void {
    const { engine } = this.deps;
    const plans: OutputPlan[] = [];
    const sequences: Sequence[] = [];
    let pending = work.prompts.length * work.n;
    for (const prompt of work.prompts) {
      for (let j = 0; j < work.n; j++) plans.push(this.plan(work, prompt, j, this.deps.faults.nulAnswer(prompt.key)));
    }
    const stream = work.stream ? this.openStream(work, plans, res) : undefined;
    // Settled once the answer is decided: written, failed, or the client left.
    let settled = false;
    const abortAll = () => {
      for (const seq of sequences) engine.abort(seq);
    };
    res.on("close", () => {
      if (settled || res.writableEnded) return;
      settled = true;
      abortAll();
    });
    const onDone = (result: SequenceResult) => {
      pending--;
      if (settled || result.outcome === "abort") return;
      if (result.outcome === "error") {
        settled = true;
        abortAll();
        if (stream !== undefined) return stream.fail(new ApiError(500, ENGINE_DEAD_MESSAGE));
        return send(res, 500, "", "text/plain");
      }
      if (pending > 0) return;
      settled = true;
      if (stream !== undefined) return stream.finish(work.includeUsage ? usageOf(work, plans) : undefined);
      this.respond(work, plans, res);
    };
    plans.forEach((plan, i) => {
      if (settled) return;
      const prompt = work.prompts[Math.floor(i / work.n)]!;
      const spec = { promptTokens: prompt.promptTokens, outputTokens: plan.outputTokens, finishReason: plan.finishReason, promptBlocks: prompt.blockHashes };
      const onToken = stream === undefined ? undefined : (generated: number) => stream.token(i, generated);
      sequences.push(engine.submit(onToken === undefined ? spec : { ...spec, onToken }, onDone));
    });
  }

  private openStream(work: GenerationRequest, plans: readonly OutputPlan[], res: ServerResponse): CompletionStream {
    const { generator, options } = this.deps;
    const choices = plans.map((plan) => ({ text: generator.text(plan), outputTokens: plan.outputTokens, finishReason: plan.finishReason, stopReason: plan.stopReason ?? null }));
    return new CompletionStream(res, work.kind, options.model, choices);
  }

  private plan(work: GenerationRequest, prompt: PromptWork, choice: number, nul: boolean): OutputPlan {
    const seedSalt = Math.imul(work.seed ?? 0, 0x27d4eb2d);
    const plan = this.deps.generator.plan(prompt.key, seedSalt ^ choice, {
      maxTokens: work.maxTokens,
      contextRoom: this.deps.options.maxModelLen - prompt.promptTokens,
      minTokens: work.minTokens,
      ignoreEos: work.ignoreEos,
      stop: work.stop,
    });
    return nul ? { ...plan, nul } : plan;
  }

  private respond(work: GenerationRequest, plans: readonly OutputPlan[], res: ServerResponse): void {
    const { generator, options, faults } = this.deps;
    const choices: Choice[] = plans.map((plan) => ({ text: generator.text(plan), finishReason: plan.finishReason, stopReason: plan.stopReason ?? null }));
    const usage = usageOf(work, plans);
    const body = work.kind === "chat" ? chatCompletionBody(options.model, choices, usage) : completionBody(options.model, choices, usage);
    const stallMs = faults.nextStallMs();
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
}

/** Tokens of the whole request: every prompt once, every choice's output. */
function usageOf(work: GenerationRequest, plans: readonly OutputPlan[]): { promptTokens: number; completionTokens: number } {
  let completionTokens = 0;
  for (const plan of plans) completionTokens += plan.outputTokens;
  let promptTokens = 0;
  for (const prompt of work.prompts) promptTokens += prompt.promptTokens;
  return { promptTokens, completionTokens };
}

/** Responses whose socket a fault injection destroyed on purpose (logged as "reset", not "aborted"). */
const resets = new WeakSet<ServerResponse>();

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ApiError(413, `request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks).toString("utf8");
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ApiError(400, `Invalid JSON body: ${(err as Error).message}`);
  }
}

function send(res: ServerResponse, status: number, body: string, contentType = "application/json", headers?: Record<string, string>): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(body), ...headers });
  res.end(body);
}

function sendError(res: ServerResponse, err: ApiError, headers?: Record<string, string>): void {
  send(res, err.status, errorBody(err), "application/json", headers);
}
