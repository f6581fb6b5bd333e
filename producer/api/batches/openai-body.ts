/**
 * An OpenAI request body (chat/completions or completions) as the fields of our job (shared/contract.ts):
 * model → model, messages → messages (text parts joined by "\n", `developer` as `system`), prompt → prompt,
 * max_tokens | max_completion_tokens → params.max_tokens, temperature, top_p, seed → params, stop (string or list)
 * → params.stop. Fields that do not change the answer (`user`, `store`, …) are ignored; fields we cannot honour
 * (`tools`, `response_format`, `n` > 1, `stream: true`, …) are refused by name rather than silently dropped, so a
 * caller never gets an answer to a different question. Ranges and lengths are the contract's to check.
 */
import type { JobInput } from "../../../shared/contract.ts";

export const BATCH_ENDPOINTS = ["/v1/chat/completions", "/v1/completions"] as const;
export type BatchEndpoint = (typeof BATCH_ENDPOINTS)[number];

export function isBatchEndpoint(v: unknown): v is BatchEndpoint {
  return typeof v === "string" && (BATCH_ENDPOINTS as readonly string[]).includes(v);
}

/** OpenAI's per-item error: a code, a message and the parameter at fault. */
export interface LineProblem {
  code: string;
  message: string;
  param: string | null;
}

export type BodyJob = Pick<JobInput, "model" | "messages" | "prompt" | "params">;
type Params = NonNullable<JobInput["params"]>;
type Message = NonNullable<JobInput["messages"]>[number];

/** No effect on the answer: accepted and dropped. */
const IGNORED = new Set(["user", "store", "metadata", "service_tier", "prompt_cache_key", "safety_identifier", "stream_options", "parallel_tool_calls"]);
/** Accepted only at the value that changes nothing (or null). */
const NEUTRAL: Record<string, unknown> = { n: 1, stream: false, logprobs: false, frequency_penalty: 0, presence_penalty: 0, echo: false, best_of: 1, suffix: "" };
const SAMPLING = ["model", "max_tokens", "temperature", "top_p", "stop", "seed"];
const CHAT_FIELDS = new Set([...SAMPLING, "messages", "max_completion_tokens"]);
const COMPLETION_FIELDS = new Set([...SAMPLING, "prompt"]);
const CHAT_ROLES: Record<string, Message["role"]> = { system: "system", developer: "system", user: "user", assistant: "assistant" };

const problem = (code: string, message: string, param: string | null): { problem: LineProblem } => ({ problem: { code, message, param } });

export function bodyJob(endpoint: BatchEndpoint, body: Record<string, unknown>): { job: BodyJob } | { problem: LineProblem } {
  const known = endpoint === "/v1/chat/completions" ? CHAT_FIELDS : COMPLETION_FIELDS;
  for (const [key, value] of Object.entries(body)) {
    if (known.has(key) || IGNORED.has(key) || value === null || value === undefined) continue;
    if (key in NEUTRAL && value === NEUTRAL[key]) continue;
    return problem("unsupported_parameter", `'${key}' is not supported by this batch endpoint${key in NEUTRAL ? ` (only ${JSON.stringify(NEUTRAL[key])})` : ""}`, key);
  }
  const params: Record<string, unknown> = {};
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  if (maxTokens != null) params.max_tokens = maxTokens;
  for (const key of ["temperature", "top_p", "seed"]) if (body[key] != null) params[key] = body[key];
  if (body.stop != null) params.stop = typeof body.stop === "string" ? [body.stop] : body.stop;
  const job: BodyJob = { params: params as Params };
  if (body.model != null) job.model = body.model as string;
  if (endpoint === "/v1/completions") {
    const prompt = Array.isArray(body.prompt) && body.prompt.length === 1 ? body.prompt[0] : body.prompt;
    if (prompt == null) return problem("missing_required_parameter", "'prompt' is required", "prompt");
    if (typeof prompt !== "string") return problem("unsupported_value", "'prompt' must be one string (one prompt per line)", "prompt");
    return { job: { ...job, prompt } };
  }
  const messages = chatMessages(body.messages);
  return "problem" in messages ? messages : { job: { ...job, messages: messages.messages } };
}

function chatMessages(raw: unknown): { messages: Message[] } | { problem: LineProblem } {
  if (raw == null) return problem("missing_required_parameter", "'messages' is required", "messages");
  if (!Array.isArray(raw)) return problem("invalid_type", "'messages' must be an array", "messages");
  const messages: Message[] = [];
  for (const [i, m] of raw.entries()) {
    const at = `messages[${i}]`;
    if (typeof m !== "object" || m === null || Array.isArray(m)) return problem("invalid_type", `'${at}' must be an object`, at);
    const { role, content, name: _name, ...rest } = m as Record<string, unknown>;
    const extra = Object.entries(rest).find(([, v]) => v != null);
    if (extra) return problem("unsupported_parameter", `'${at}.${extra[0]}' is not supported`, `${at}.${extra[0]}`);
    const mapped = typeof role === "string" ? CHAT_ROLES[role] : undefined;
    if (mapped === undefined) return problem("unsupported_value", `'${at}.role' must be system, developer, user or assistant`, `${at}.role`);
    const text = messageText(content, at);
    if (typeof text !== "string") return text;
    messages.push({ role: mapped, content: text });
  }
  return { messages };
}

function messageText(content: unknown, at: string): string | { problem: LineProblem } {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return problem("invalid_type", `'${at}.content' must be a string or a list of text parts`, `${at}.content`);
  const texts: string[] = [];
  for (const [j, part] of content.entries()) {
    const p = part as { type?: unknown; text?: unknown } | null;
    if (p?.type !== "text" || typeof p.text !== "string") return problem("unsupported_value", `'${at}.content[${j}]' must be a text part`, `${at}.content[${j}]`);
    texts.push(p.text);
  }
  return texts.join("\n");
}
