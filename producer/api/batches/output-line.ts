/**
 * One request's line in the output or error file, in OpenAI's shape:
 *   {id, custom_id, response: {status_code, request_id, body}, error}
 * - succeeded → output file, body a chat.completion or text_completion object with usage;
 * - refused at validation or failed when run → error file, response with a 4xx/5xx status and an OpenAI error body;
 * - never run (no record, still unfinished, or recorded cancelled/expired by the batch or the job's deadline) →
 *   error file, response null, error {code: batch_cancelled | batch_expired}.
 * request_id is the job id: the same request can be read at GET /v1/jobs/:id.
 */
import type { JobRecord } from "../../../shared/store/job-record.ts";
import { batchJobId } from "./batch-job.ts";
import type { BatchEndpoint, LineProblem } from "./openai-body.ts";

export type UnrunCode = "batch_cancelled" | "batch_expired";

export interface OutputLine {
  file: "output" | "error";
  text: string;
  promptTokens: number;
  completionTokens: number;
}

export interface LineOutcome {
  batchId: string;
  endpoint: BatchEndpoint;
  line: number;
  customId: string;
  requestError: LineProblem | null;
  record: JobRecord | undefined;
  /** What a request that never ran is reported as. */
  unrun: UnrunCode;
}

const UNRUN_MESSAGES: Record<UnrunCode, string> = {
  batch_cancelled: "This request was not executed because the batch was cancelled.",
  batch_expired: "This request could not be executed before the completion window expired.",
};

/** Job error codes → HTTP status a caller of OpenAI would have seen; anything else is the server's (500). */
const STATUS_BY_CODE: Record<string, number> = {
  JOB_INVALID: 400,
  JOB_TOO_LARGE: 400,
  JOB_NOT_JSON: 400,
  PROVIDER_BAD_REQUEST: 400,
  PROVIDER_SAFETY_BLOCK: 400,
  PROVIDER_RECITATION: 400,
  PROVIDER_BLOCKLIST: 400,
  PROVIDER_PROHIBITED_CONTENT: 400,
  PROVIDER_SPII: 400,
  PROVIDER_PROMPT_BLOCKED: 400,
  PROVIDER_NOT_FOUND: 404,
  PROVIDER_QUOTA_EXHAUSTED: 429,
};

export function outputLine(o: LineOutcome): OutputLine {
  const jobId = batchJobId(o.batchId, o.line);
  const base = { id: `batch_req_${o.batchId.slice("batch_".length)}_${o.line}`, custom_id: o.customId };
  const r = o.record;
  const errorLine = (text: string): OutputLine => ({ file: "error", text, promptTokens: 0, completionTokens: 0 });
  if (o.requestError !== null) {
    const body = { error: { message: o.requestError.message, type: "invalid_request_error", param: o.requestError.param, code: o.requestError.code } };
    return errorLine(JSON.stringify({ ...base, response: { status_code: 400, request_id: jobId, body }, error: null }));
  }
  if (r?.status === "succeeded") {
    const usage = r.usage ?? { promptTokens: 0, completionTokens: 0 };
    const body = completionBody(o.endpoint, jobId, r, usage);
    return { file: "output", text: JSON.stringify({ ...base, response: { status_code: 200, request_id: jobId, body }, error: null }), promptTokens: usage.promptTokens, completionTokens: usage.completionTokens };
  }
  const code = r?.error?.code;
  const unrun: UnrunCode | undefined =
    r === undefined || r.status === "queued" || r.status === "running" ? o.unrun : r.status === "expired" ? "batch_expired" : code === "batch_cancelled" ? "batch_cancelled" : undefined;
  if (unrun !== undefined) return errorLine(JSON.stringify({ ...base, response: null, error: { code: unrun, message: UNRUN_MESSAGES[unrun] } }));
  const status = STATUS_BY_CODE[code ?? ""] ?? 500;
  const body = { error: { message: r?.error?.message ?? "the request failed", type: status >= 500 ? "server_error" : "invalid_request_error", param: null, code: (code ?? "failed").toLowerCase() } };
  return errorLine(JSON.stringify({ ...base, response: { status_code: status, request_id: jobId, body }, error: null }));
}

function completionBody(endpoint: BatchEndpoint, jobId: string, r: JobRecord, u: { promptTokens: number; completionTokens: number }): Record<string, unknown> {
  const created = Math.floor((r.finishedAt ?? r.createdAt).getTime() / 1000);
  const usage = { prompt_tokens: u.promptTokens, completion_tokens: u.completionTokens, total_tokens: u.promptTokens + u.completionTokens };
  const finish_reason = r.finishReason ?? "stop";
  if (endpoint === "/v1/completions") {
    return { id: `cmpl-${jobId}`, object: "text_completion", created, model: r.model ?? "", choices: [{ index: 0, text: r.output ?? "", logprobs: null, finish_reason }], usage };
  }
  return {
    id: `chatcmpl-${jobId}`,
    object: "chat.completion",
    created,
    model: r.model ?? "",
    choices: [{ index: 0, message: { role: "assistant", content: r.output ?? "", refusal: null }, logprobs: null, finish_reason }],
    usage,
  };
}
