/**
 * Validation of /v1/chat/completions and /v1/completions bodies into engine work, with vLLM's status codes and
 * messages: 404 for a model it does not serve, 400 for a bad body or a prompt + max_tokens over max_model_len.
 * Prompt tokens are counted as vLLM would see them (prompt.ts: chat template, BOS). `stop`, `stream` and
 * `stream_options.include_usage` are honoured; other sampling fields (temperature, top_p, logprobs, ...) are accepted
 * and ignored.
 */
import { chatPrompt, textPrompt, tokenIdsPrompt, type ChatMessageText, type PromptTokens } from "./prompt.ts";
import { ApiError } from "./responses.ts";

export interface PromptWork {
  promptTokens: number;
  /** Chained KV-block hashes, for prefix caching. */
  blockHashes: readonly number[];
  /** What the output is derived from: the prompt text (or its token ids). */
  key: string;
}

export interface GenerationRequest {
  kind: "chat" | "completion";
  /** One per prompt: chat has exactly one; completions one per list entry. */
  prompts: PromptWork[];
  /** Choices per prompt. */
  n: number;
  maxTokens: number | undefined;
  minTokens: number;
  ignoreEos: boolean;
  seed: number | undefined;
  /** Stop strings (empty: none). */
  stop: string[];
  /** Answer as server-sent events. */
  stream: boolean;
  /** With `stream`: a last chunk carrying the usage (stream_options.include_usage). */
  includeUsage: boolean;
}

export interface ServedModel {
  model: string;
  maxModelLen: number;
}

type Body = Record<string, unknown>;

export function parseChatRequest(body: unknown, served: ServedModel): GenerationRequest {
  const b = common(body, served);
  const messages = b.messages;
  if (!Array.isArray(messages) || messages.length === 0) throw new ApiError(400, "'messages' must be a non-empty list of messages");
  const texts: ChatMessageText[] = [];
  const keyParts: string[] = [];
  for (const [i, m] of messages.entries()) {
    if (typeof m !== "object" || m === null || typeof (m as Body).role !== "string") {
      throw new ApiError(400, `messages[${i}]: each message needs a string 'role'`);
    }
    const text = messageText((m as Body).content, i);
    texts.push({ role: (m as Body).role as string, text });
    keyParts.push((m as Body).role as string, text);
  }
  const prompt = work(chatPrompt(texts), keyParts.join("\u0000"));
  const maxTokens = optionalInt(b, "max_completion_tokens", 1) ?? optionalInt(b, "max_tokens", 1);
  return finish("chat", [prompt], b, maxTokens, served);
}

export function parseCompletionRequest(body: unknown, served: ServedModel): GenerationRequest {
  const b = common(body, served);
  const prompts = completionPrompts(b.prompt);
  return finish("completion", prompts, b, optionalInt(b, "max_tokens", 1), served);
}

function common(body: unknown, served: ServedModel): Body {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new ApiError(400, "request body must be a JSON object");
  const b = body as Body;
  if (b.model !== undefined && b.model !== null && b.model !== served.model) {
    throw new ApiError(404, `The model \`${String(b.model)}\` does not exist.`);
  }
  return b;
}

function work(p: PromptTokens, key: string): PromptWork {
  return { promptTokens: p.tokens, blockHashes: p.blockHashes, key };
}

function finish(kind: GenerationRequest["kind"], prompts: PromptWork[], b: Body, maxTokens: number | undefined, served: ServedModel): GenerationRequest {
  const { maxModelLen } = served;
  for (const p of prompts) {
    if (p.promptTokens >= maxModelLen) {
      throw new ApiError(
        400,
        `This model's maximum context length is ${maxModelLen} tokens. However, your request has ${p.promptTokens} input tokens. Please reduce the length of the input messages.`,
      );
    }
    if (maxTokens !== undefined && p.promptTokens + maxTokens > maxModelLen) {
      throw new ApiError(
        400,
        `'max_tokens' or 'max_completion_tokens' is too large: ${maxTokens}. This model's maximum context length is ${maxModelLen} tokens and your request has ${p.promptTokens} input tokens (${maxTokens} > ${maxModelLen} - ${p.promptTokens}).`,
      );
    }
  }
  const n = optionalInt(b, "n", 1) ?? 1;
  const seed = optionalInt(b, "seed", Number.MIN_SAFE_INTEGER);
  const minTokens = optionalInt(b, "min_tokens", 0) ?? 0;
  if (maxTokens !== undefined && minTokens > maxTokens) throw new ApiError(400, `min_tokens must be less than or equal to max_tokens=${maxTokens}, got ${minTokens}.`);
  const ignoreEos = b.ignore_eos === true;
  const stream = b.stream === true;
  const options = b.stream_options;
  // Pydantic's check is on truthiness: an empty object passes.
  const hasOptions = typeof options === "object" && options !== null && Object.keys(options).length > 0;
  if (hasOptions && !stream) throw new ApiError(400, "Stream options can only be defined when `stream=True`.");
  const includeUsage = stream && typeof options === "object" && options !== null && (options as Body).include_usage === true;
  return { kind, prompts, n, maxTokens, minTokens, ignoreEos, seed, stop: stopStrings(b.stop), stream, includeUsage };
}

function stopStrings(stop: unknown): string[] {
  if (stop === undefined || stop === null) return [];
  if (typeof stop === "string") return stop === "" ? [] : [stop];
  if (Array.isArray(stop) && stop.every((s) => typeof s === "string")) return (stop as string[]).filter((s) => s !== "");
  throw new ApiError(400, "'stop' must be a string or a list of strings");
}

function messageText(content: unknown, index: number): string {
  if (content === undefined || content === null) return "";
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    // OpenAI content parts: only text parts count toward the prompt.
    return content.map((part) => (typeof part === "object" && part !== null && typeof (part as Body).text === "string" ? ((part as Body).text as string) : "")).join("\n");
  }
  throw new ApiError(400, `messages[${index}].content must be a string or a list of content parts`);
}

function completionPrompts(prompt: unknown): PromptWork[] {
  if (typeof prompt === "string") return [work(textPrompt(prompt), prompt)];
  if (!Array.isArray(prompt) || prompt.length === 0) throw new ApiError(400, "'prompt' must be a string, a non-empty list of strings, or token ids");
  if (prompt.every(isTokenId)) return [tokenPrompt(prompt as number[])];
  return prompt.map((p, i) => {
    if (typeof p === "string") return work(textPrompt(p), p);
    if (Array.isArray(p) && p.length > 0 && p.every(isTokenId)) return tokenPrompt(p as number[]);
    throw new ApiError(400, `prompt[${i}] must be a string or a non-empty list of token ids`);
  });
}

function tokenPrompt(ids: number[]): PromptWork {
  return work(tokenIdsPrompt(ids), ids.join(","));
}

function isTokenId(x: unknown): boolean {
  return typeof x === "number" && Number.isInteger(x) && x >= 0;
}

function optionalInt(b: Body, field: string, min: number): number | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v)) throw new ApiError(400, `'${field}' must be an integer`);
  if (v < min) throw new ApiError(400, `${field} must be at least ${min}, got ${v}.`);
  return v;
}
