/**
 * What every HTTP provider client (vLLM, Ollama, Gemini) does the same way with a request id and a response body.
 */
import type { Dispatcher } from "undici";

/** A header value must be visible ASCII: anything else would make undici throw, failing the job for its id alone. */
const HEADER_SAFE_ID = /^[\x21-\x7e]{1,256}$/;

/** `X-Request-Id` for a generation call; none when there is no id or it could not travel in a header. */
export function requestIdHeader(requestId: string | undefined): Record<string, string> | undefined {
  return requestId !== undefined && HEADER_SAFE_ID.test(requestId) ? { "x-request-id": requestId } : undefined;
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
