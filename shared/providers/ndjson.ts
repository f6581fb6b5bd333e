/**
 * Reading a streamed generation sent as NDJSON (one JSON object a line, Ollama's format): the text pieces
 * concatenated, and the final object (`done: true`) with the counts. Ends in exactly one of three ways: the final
 * object arrived (the answer), the stream was cut (`{"error"}` line, or EOF before the final object: StreamCut), or
 * it is not the format (StreamMalformed).
 */
import { StringDecoder } from "node:string_decoder";

/** The server stopped the generation: an `{"error": ...}` line, or the body ended before `done: true`. */
export class StreamCut extends Error {}

/** A line that is not a JSON object, a text piece that is not a string, or more text than allowed. */
export class StreamMalformed extends Error {}

export interface StreamResult {
  text: string;
  /** The `done: true` object. */
  final: Record<string, unknown>;
}

/**
 * `piece(chunk)` returns the text a chunk adds (must be a string). Reads the body to its end so the connection can
 * be reused; lines after the final object are ignored. `maxBytes` bounds the bytes read before the final object.
 */
export async function readNdjsonStream(body: AsyncIterable<Buffer>, piece: (chunk: Record<string, unknown>) => unknown, maxBytes: number): Promise<StreamResult> {
  const decoder = new StringDecoder("utf8");
  const parts: string[] = [];
  let pending = "";
  let bytes = 0;
  let final: Record<string, unknown> | undefined;
  let lineNo = 0;
  const take = (line: string) => {
    lineNo++;
    if (final !== undefined || line.trim() === "") return;
    const chunk = parseLine(line, lineNo);
    if (chunk.error !== undefined) throw new StreamCut(typeof chunk.error === "string" ? chunk.error : JSON.stringify(chunk.error));
    const text = piece(chunk);
    if (typeof text !== "string") throw new StreamMalformed(`line ${lineNo}: text piece is not a string`);
    parts.push(text);
    if (chunk.done === true) final = chunk;
  };
  for await (const buf of body) {
    if (final !== undefined) continue; // drain, so the socket goes back to the pool
    bytes += buf.length;
    if (bytes > maxBytes) throw new StreamMalformed(`stream over ${maxBytes} bytes`);
    pending += decoder.write(buf);
    let start = 0;
    for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n", start)) {
      take(pending.slice(start, nl));
      start = nl + 1;
    }
    pending = pending.slice(start);
  }
  if (final === undefined) take(pending + decoder.end()); // a last line without its newline
  if (final === undefined) throw new StreamCut(`stream ended after ${lineNo} line(s) without a final (done) chunk`);
  return { text: parts.join(""), final };
}

function parseLine(line: string, lineNo: number): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new StreamMalformed(`line ${lineNo} is not JSON`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new StreamMalformed(`line ${lineNo} is not a JSON object`);
  return value as Record<string, unknown>;
}
