/**
 * The programmatic entry: start a simulated vLLM server (tests, demo, benchmark, fault suite) and stop it cleanly.
 * The same server answers Ollama's native API under /api/ (ollama-api.ts); start it on port 11434 to stand in for one.
 */
import { createServer } from "node:http";
import { Engine } from "./engine.ts";
import { FaultInjector } from "./faults.ts";
import { GeminiApi, type GeminiReceived } from "./gemini-api.ts";
import { OutputGenerator } from "./generator.ts";
import { RequestHandler } from "./handler.ts";
import { Listener } from "./listener.ts";
import { SimulatorMetrics } from "./metrics.ts";
import { OllamaApi } from "./ollama-api.ts";
import { isInstant, resolveSimulatorOptions, type FaultOptions, type SimulatorOptions } from "./options.ts";
import { RequestLog, type RequestLogSnapshot } from "./request-log.ts";
import type { GenerationRequest } from "./requests.ts";

export type { FaultKind, FaultOptions, SimulatorOptions } from "./options.ts";
export { DEFAULT_FAULTS, parseSimulatorOptions, resolveSimulatorOptions, simulatorHelp } from "./options.ts";
export { PROFILES, type ProfileName } from "./profiles.ts";
export type { Engine, EngineStats } from "./engine.ts";
export type { RequestLogEntry, RequestLogSnapshot, RequestOutcome } from "./request-log.ts";
export { NUL_ANSWER_MARKER } from "./faults.ts";
export type { GeminiReceived } from "./gemini-api.ts";

export interface RunningSimulator {
  /** http://host:port, no trailing slash. */
  url: string;
  port: number;
  /** The resolved options (port is the bound one). */
  options: SimulatorOptions;
  engine: Engine;
  /** The generation requests logged so far (options.requestLog > 0; else empty with capacity 0). */
  requestLog(): RequestLogSnapshot;
  /** The texts a chat or completion body would be answered with, without running it (throws on a bad body). */
  expectedTexts(kind: GenerationRequest["kind"], body: unknown): string[];
  /** The last Gemini API requests received (/v1beta/*), oldest first: what the client sent. */
  geminiRequests(): GeminiReceived[];
  /**
   * Change failure injection at run time. `engineDead: true` is vLLM's engine core dying: requests in flight fail
   * (a bare 500; a stream, an error line) and the server stops listening, as vLLM's API server exits — connections
   * are refused. `engineDead: false` starts it again on the same port. Resolves once the listener has followed.
   */
  setFaults(f: Partial<FaultOptions>): Promise<void>;
  /** Stop the clock, fail in-flight requests, close every socket; resolves when the server is fully closed. */
  close(): Promise<void>;
}

export async function startVllmSimulator(options: Partial<SimulatorOptions> = {}): Promise<RunningSimulator> {
  const resolved = resolveSimulatorOptions(options);
  // The metrics observe the engine and read its gauges: created first, pointed at the engine once it exists.
  const source: { engine?: Engine } = {};
  const metrics = new SimulatorMetrics(resolved.model, () => source.engine, resolved.maxModelLen);
  const engine = new Engine({ ...resolved, instant: isInstant(resolved) }, metrics);
  source.engine = engine;
  const faults = new FaultInjector(resolved.seed, resolved.faults);
  const generator = new OutputGenerator(resolved.seed, resolved.earlyStopRate, resolved.meanOutputTokens);
  const requestLog = new RequestLog(resolved.requestLog);
  const handler = new RequestHandler({ options: resolved, engine, generator, faults, metrics, requestLog });
  // Google's Gemini API (/v1beta/*) and Ollama's native API (/api/*) on the same engine: one process, three protocols.
  const gemini = new GeminiApi({ options: resolved, engine, generator, faults });
  const ollama = new OllamaApi({ options: resolved, engine, generator, faults, requestLog });
  const server = createServer({ noDelay: true, keepAlive: true }, (req, res) => {
    if (gemini.handles(req)) return gemini.listener(req, res);
    return (ollama.handles(req.url) ? ollama.listener : handler.listener)(req, res);
  });

  const listener = new Listener(server, resolved.host, resolved.port);
  await listener.start();
  const port = listener.boundPort;
  resolved.port = port;
  const host = resolved.host.includes(":") ? `[${resolved.host}]` : resolved.host;
  // Started dead: vLLM would not be serving at all.
  if (resolved.faults.engineDead) await listener.stop();

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    port,
    options: resolved,
    engine,
    requestLog: () => requestLog.snapshot(),
    expectedTexts: (kind, body) => handler.expectedTexts(kind, body),
    geminiRequests: () => gemini.requests(),
    setFaults(patch) {
      // Validate the whole result the same way startup does (throws ConfigError).
      const next = resolveSimulatorOptions({ ...resolved, faults: { ...faults.options, ...patch } }).faults;
      const dying = next.engineDead && !faults.options.engineDead;
      const reviving = !next.engineDead && faults.options.engineDead;
      faults.update(next);
      resolved.faults = faults.options;
      if (closing !== undefined) return Promise.resolve();
      if (dying) {
        engine.failAll();
        return listener.stop();
      }
      return reviving ? listener.start() : Promise.resolve();
    },
    close() {
      closing ??= (async () => {
        engine.close();
        handler.close();
        gemini.close();
        ollama.close();
        await listener.stop(0);
      })();
      return closing;
    },
  };
}
