/**
 * The fault suite's fallback providers: an Ollama stand-in and a Gemini stand-in, each its own simulator instance (so
 * taking the vLLM simulator down leaves them up), with the env that puts them in the workers' provider chain. Gemini
 * calls go through a recording proxy (recording-proxy.ts) so every provider's calls land in one overlap audit.
 * `down()` / `up()` take both away (ports unreachable) and bring them back on the same ports, for all-down.
 */
import { startVllmSimulator, type RequestLogEntry, type RunningSimulator } from "../simulators/vllm/server.ts";
import { startRecordingProxy, type RecordingProxy } from "./recording-proxy.ts";

export interface Fallbacks {
  env: Record<string, string>;
  /** Every call logged so far by both stand-ins (entries survive down/up), and how many fell out of a full log. */
  calls(): { entries: RequestLogEntry[]; dropped: number };
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startFallbacks(o: { timeScale: number; requestLog: number }): Promise<Fallbacks> {
  const key = `faults-${Math.random().toString(36).slice(2)}`;
  const ollamaOptions = { port: 0, timeScale: o.timeScale, seed: 11, requestLog: o.requestLog };
  const geminiOptions = { port: 0, timeScale: o.timeScale, seed: 13, requestLog: 0, geminiApiKey: key };
  let ollama: RunningSimulator | undefined = await startVllmSimulator(ollamaOptions);
  let gemini: RunningSimulator | undefined = await startVllmSimulator(geminiOptions);
  let proxy: RecordingProxy | undefined = await startRecordingProxy(gemini.url, o.requestLog);
  const ports = { ollama: ollama.port, gemini: gemini.port, proxy: proxy.port };
  const kept: RequestLogEntry[] = [];
  let dropped = 0;
  const collect = () => {
    for (const snap of [ollama?.requestLog(), proxy?.requestLog()]) {
      if (snap === undefined) continue;
      kept.push(...snap.entries);
      dropped += snap.dropped;
    }
  };
  const down = async () => {
    await Promise.all([ollama?.close(), gemini?.close(), proxy?.close()]);
    collect(); // after close: calls cut by it are logged as they end
    ollama = gemini = proxy = undefined;
  };
  return {
    env: { OLLAMA_URL: ollama.url, GEMINI_URL: proxy.url, GEMINI_API_KEY: key },
    calls() {
      const live = [ollama?.requestLog(), proxy?.requestLog()].flatMap((s) => (s === undefined ? [] : [s]));
      return { entries: [...kept, ...live.flatMap((s) => s.entries)], dropped: dropped + live.reduce((n, s) => n + s.dropped, 0) };
    },
    down,
    async up() {
      ollama = await startVllmSimulator({ ...ollamaOptions, port: ports.ollama });
      gemini = await startVllmSimulator({ ...geminiOptions, port: ports.gemini });
      proxy = await startRecordingProxy(gemini.url, o.requestLog, ports.proxy);
    },
    close: down,
  };
}
