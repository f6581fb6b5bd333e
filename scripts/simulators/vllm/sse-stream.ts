/**
 * A streamed answer (`stream: true`) as vLLM's OpenAI server writes it: HTTP 200 with server-sent events at once,
 * then one `data:` line per token of each choice as the engine produces it (`chat.completion.chunk` deltas, the role
 * first; `text_completion` pieces), `finish_reason`/`stop_reason` on a choice's last chunk, a usage chunk with no
 * choices when `stream_options.include_usage` asked for it, and `data: [DONE]`. A failure after the headers went out
 * cannot change the status: it is a `data: {"error": {...}}` line, then `[DONE]`.
 */
import type { ServerResponse } from "node:http";
import type { FinishReason } from "./generator.ts";
import { errorBody, newId, nowSeconds, usageBody, type ApiError, type Usage } from "./responses.ts";

export interface StreamedChoice {
  /** The whole text the choice ends with; cut into per-token pieces at its spaces (one word a token). */
  text: string;
  outputTokens: number;
  finishReason: FinishReason;
  stopReason: string | null;
}

export class CompletionStream {
  private readonly id: string;
  private readonly created = nowSeconds();
  private readonly pieces: string[][];
  private ended = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly kind: "chat" | "completion",
    private readonly model: string,
    private readonly choices: readonly StreamedChoice[],
  ) {
    this.id = `${kind === "chat" ? "chatcmpl" : "cmpl"}-${newId()}`;
    // "a b c" → ["a", " b", " c"]: a stop string cuts the text short, so its last tokens have empty pieces.
    this.pieces = choices.map((c) => (c.text === "" ? [] : c.text.split(/(?= )/)));
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" });
    res.flushHeaders();
  }

  /** Choice `index` produced its `generated`-th token. */
  token(index: number, generated: number): void {
    if (this.ended) return;
    const choice = this.choices[index]!;
    const delta = this.pieces[index]![generated - 1] ?? "";
    const last = generated >= choice.outputTokens;
    const end = last ? { finish_reason: choice.finishReason, stop_reason: choice.stopReason } : { finish_reason: null };
    if (this.kind === "chat") {
      if (generated === 1) this.chunk([{ index, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }], "chat.completion.chunk");
      this.chunk([{ index, delta: { content: delta }, logprobs: null, ...end }], "chat.completion.chunk");
    } else {
      this.chunk([{ index, text: delta, logprobs: null, ...end }], "text_completion");
    }
  }

  /** Every choice is done: the usage chunk if asked for, then [DONE]. */
  finish(usage: Usage | undefined): void {
    if (this.ended) return;
    if (usage !== undefined) this.write({ id: this.id, object: this.object(), created: this.created, model: this.model, choices: [], usage: usageBody(usage) });
    this.end();
  }

  /** A failure after the 200 went out: the error as a data line, then [DONE]. */
  fail(err: ApiError): void {
    if (this.ended) return;
    this.res.write(`data: ${errorBody(err)}\n\n`);
    this.end();
  }

  private object(): string {
    return this.kind === "chat" ? "chat.completion.chunk" : "text_completion";
  }

  private chunk(choices: object[], object: string): void {
    this.write({ id: this.id, object, created: this.created, model: this.model, choices });
  }

  private write(payload: object): void {
    if (!this.res.destroyed) this.res.write(`data: ${JSON.stringify(payload)}\n\n`);
  }

  private end(): void {
    this.ended = true;
    if (this.res.destroyed) return;
    this.res.end("data: [DONE]\n\n");
  }
}
