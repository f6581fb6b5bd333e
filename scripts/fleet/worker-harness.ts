/**
 * Loaded into a fault-suite worker process before worker/main.ts (`--import`, after tsx): wraps the vLLM client's
 * `generate` — the provider the real worker builds — with two test hooks, leaving everything else production code.
 *   - A job whose prompt contains CRASH_MARKER kills its process (SIGKILL, no cleanup) when its generation is
 *     requested: a job that takes its worker down on every delivery.
 *   - A call without a requestId gets the job id from the job's `[job:<id>]` tag, so the simulator's request log
 *     can tell which calls belong to which job even while the worker does not pass the id itself.
 * Source mode only: the production bundle (dist/) carries its own copy of the client.
 */
import { VllmClient } from "../../shared/providers/vllm.ts";
import type { CompletionRequest } from "../../shared/providers/provider.ts";
import { CRASH_MARKER, taggedJobId } from "./fault-jobs.ts";

const generate = VllmClient.prototype.generate;

VllmClient.prototype.generate = function (this: VllmClient, req: CompletionRequest, signal?: AbortSignal) {
  const text = promptText(req);
  if (text.includes(CRASH_MARKER)) process.kill(process.pid, "SIGKILL");
  return generate.call(this, req.requestId === undefined ? { ...req, requestId: taggedJobId(text) } : req, signal);
};

function promptText(req: CompletionRequest): string {
  return req.prompt ?? (req.messages ?? []).map((m) => m.content).join("\n");
}
