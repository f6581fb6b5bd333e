/**
 * Wire shapes of vLLM's OpenAI-compatible server: completion and chat bodies, their streamed chunks, the model list,
 * and its error body `{"error": {"message", "type", "param", "code"}}` (vLLM's ErrorResponse since it nested ErrorInfo;
 * type = the exception class name vLLM reports). A streamed error is the same object on a `data:` line.
 */
import { randomUUID } from "node:crypto";
import type { FinishReason } from "./generator.ts";

const ERROR_TYPES: Record<number, string> = {
  400: "BadRequestError",
  401: "AuthenticationError",
  404: "NotFoundError",
  413: "RequestEntityTooLargeError",
  429: "TooManyRequestsError",
  500: "InternalServerError",
  503: "ServiceUnavailableError",
};

/** An HTTP error answered with vLLM's error body. */
export class ApiError extends Error {
  readonly type: string;
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
    this.type = ERROR_TYPES[status] ?? (status >= 500 ? "InternalServerError" : "BadRequestError");
  }
}

export function errorBody(err: ApiError): string {
  return JSON.stringify({ error: { message: err.message, type: err.type, param: null, code: err.status } });
}

export interface Choice {
  text: string;
  finishReason: FinishReason;
  /** The stop string that ended it (vLLM's `stop_reason`); null when it ended on EOS or length. */
  stopReason: string | null;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

export function usageBody(usage: Usage) {
  return {
    prompt_tokens: usage.promptTokens,
    total_tokens: usage.promptTokens + usage.completionTokens,
    completion_tokens: usage.completionTokens,
    prompt_tokens_details: null,
  };
}

export const nowSeconds = () => Math.floor(Date.now() / 1000);
export const newId = () => randomUUID().replaceAll("-", "");

export function chatCompletionBody(model: string, choices: readonly Choice[], usage: Usage): string {
  return JSON.stringify({
    id: `chatcmpl-${newId()}`,
    object: "chat.completion",
    created: nowSeconds(),
    model,
    choices: choices.map((c, index) => ({
      index,
      message: { role: "assistant", content: c.text, refusal: null, annotations: null, audio: null, function_call: null, tool_calls: [], reasoning_content: null },
      logprobs: null,
      finish_reason: c.finishReason,
      stop_reason: c.stopReason,
    })),
    service_tier: null,
    system_fingerprint: null,
    usage: usageBody(usage),
    prompt_logprobs: null,
    kv_transfer_params: null,
  });
}

export function completionBody(model: string, choices: readonly Choice[], usage: Usage): string {
  return JSON.stringify({
    id: `cmpl-${newId()}`,
    object: "text_completion",
    created: nowSeconds(),
    model,
    choices: choices.map((c, index) => ({
      index,
      text: c.text,
      logprobs: null,
      finish_reason: c.finishReason,
      stop_reason: c.stopReason,
      prompt_logprobs: null,
    })),
    service_tier: null,
    system_fingerprint: null,
    usage: usageBody(usage),
    kv_transfer_params: null,
  });
}

export function modelsBody(model: string, maxModelLen: number, createdSeconds: number): string {
  return JSON.stringify({
    object: "list",
    data: [
      {
        id: model,
        object: "model",
        created: createdSeconds,
        owned_by: "vllm",
        root: model,
        parent: null,
        max_model_len: maxModelLen,
        permission: [
          {
            id: `modelperm-${newId()}`,
            object: "model_permission",
            created: createdSeconds,
            allow_create_engine: false,
            allow_sampling: true,
            allow_logprobs: true,
            allow_search_indices: false,
            allow_view: true,
            allow_fine_tuning: false,
            organization: "*",
            group: null,
            is_blocking: false,
          },
        ],
      },
    ],
  });
}
