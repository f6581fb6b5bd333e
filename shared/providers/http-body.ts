/**
 * What every HTTP provider client (vLLM, Ollama, Gemini) does the same way with a job's ids and a response body.
 */
import type { Dispatcher } from "undici";
import { TRACEPARENT, childSpan, formatTraceparent } from "../trace.ts";
import type { CompletionRequest } from "./provider.ts";

/** A header value must be visible ASCII: anything else would make undici throw, failing the job for its id alone. */
const HEADER_SAFE_ID = /^[\x21-\x7e]{1,256}$/;

/**
 * The headers a generation call carries for its job: `X-Request-Id` (none when there is no id or it could not
 * travel in a header) and `traceparent`, the job's trace id with a new span id for this call.
 */
export function jobHeaders(req: Pick<CompletionRequest, "requestId" | "trace">): Record<string, string> {
  const headers: Record<string, string> = {};
  if (req.requestId !== undefined && HEADER_SAFE_ID.test(req.requestId)) headers["x-request-id"] = req.requestId;
  if (req.trace !== undefined) headers[TRACEPARENT] = formatTraceparent(childSpan(req.trace));
  return headers;
}

/** Reads up to `limit` bytes; past it, destroys the stream (the socket is dropped, not reused) and says so. */
export async function readText(body: Dispatcher.ResponseData["body"], limit: number): Promise<{ text: string; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      return { text: Buffer.concat(chunks).subarray(0, limit).toString("utf8"), truncated: true };
    }
  }
  return { text: Buffer.concat(chunks).toString("utf8"), truncated: false };
}

/** `value[key]` when value is an object, else undefined (parsing JSON of unknown shape). */
export function field(value: unknown, key: string): unknown {
  return value !== null && typeof value === "object" ? (value as Record<string, unknown>)[key] : undefined;
}
