/**
 * Loaded into a fault-suite worker process before worker/main.ts (`--import`, after tsx): wraps the provider clients'
 * `generate` — the vLLM, Ollama and Gemini clients the real worker builds — with two test hooks, leaving everything
 * else production code.
 *   - A job whose prompt contains CRASH_MARKER kills its process (SIGKILL, no cleanup) when its generation is
 *     requested, whichever provider it is routed to: a job that takes its worker down on every delivery, also while
 *     the fallbacks carry the work.
 *   - A call without a requestId gets the job id from the job's `[job:<id>]` tag, so the stand-ins' request logs
 *     can tell which calls belong to which job even while the worker does not pass the id itself.
 * Source mode only: the production bundle (dist/) carries its own copy of the clients.
 */
import { GeminiClient } from "../../shared/providers/gemini.ts";
import { OllamaClient } from "../../shared/providers/ollama.ts";
import { VllmClient } from "../../shared/providers/vllm.ts";
import type { Completion, CompletionRequest } from "../../shared/providers/provider.ts";
import { CRASH_MARKER, taggedJobId } from "./fault-jobs.ts";

type Generate = (this: unknown, req: CompletionRequest, signal?: AbortSignal) => Promise<Completion>;

for (const client of [VllmClient, OllamaClient, GeminiClient]) {
  const proto = client.prototype as unknown as { generate: Generate };
  const generate = proto.generate;
  proto.generate = function (this: unknown, req: CompletionRequest, signal?: AbortSignal) {
    const text = promptText(req);
    if (text.includes(CRASH_MARKER)) process.kill(process.pid, "SIGKILL");
    return generate.call(this, req.requestId === undefined ? { ...req, requestId: taggedJobId(text) } : req, signal);
  };
}

function promptText(req: CompletionRequest): string {
  return req.prompt ?? (req.messages ?? []).map((m) => m.content).join("\n");
}
