/** Batch input lines without services: cutting a stream into lines, the per-line checks, the body → job mapping. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { LineTooLongError, splitLines } from "../producer/api/files/line-splitter.ts";
import { bodyJob } from "../producer/api/batches/openai-body.ts";
import { checkLine } from "../producer/api/batches/request-line.ts";

async function collect(chunks: string[], max = 1_000): Promise<string[]> {
  const out: string[] = [];
  async function* source() {
    for (const c of chunks) yield Buffer.from(c);
  }
  for await (const line of splitLines(source(), max)) out.push(line.toString());
  return out;
}

test("lines keep their terminators across chunk boundaries, so they concatenate to the stream", async () => {
  const chunks = ['{"a":', '1}\n{"b"', ":2}\r\n\n", "tail"];
  const lines = await collect(chunks);
  assert.deepEqual(lines, ['{"a":1}\n', '{"b":2}\r\n', "\n", "tail"]);
  assert.equal(lines.join(""), chunks.join(""));
});

test("a line longer than the limit is refused by number, however it is chunked", async () => {
  await assert.rejects(collect(["ok\n", "x".repeat(6), "x".repeat(6), "\n"], 10), (e: LineTooLongError) => e.line === 2);
  await assert.rejects(collect(["ok\n", `${"y".repeat(11)}\n`], 10), (e: LineTooLongError) => e.line === 2);
});

const line = (o: unknown) => Buffer.from(JSON.stringify(o));
const chat = (body: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  line({ custom_id: "c1", method: "POST", url: "/v1/chat/completions", body: { messages: [{ role: "user", content: "hi" }], ...body }, ...extra });

test("line errors (the batch fails) and request errors (the error file) are told apart", () => {
  assert.deepEqual(checkLine(Buffer.from("  \r\n"), 1, "t"), { kind: "blank" });
  const bad = (data: Buffer) => {
    const c = checkLine(data, 7, "t");
    return c.kind === "request" ? [c.lineError?.code, c.lineError?.param, c.requestError] : undefined;
  };
  assert.deepEqual(bad(Buffer.from("{oops")), ["invalid_json_line", null, undefined]);
  assert.deepEqual(bad(Buffer.from([0x7b, 0xff, 0x7d])), ["invalid_json_line", null, undefined], "not UTF-8");
  assert.deepEqual(bad(Buffer.from("[1]")), ["invalid_json_line", null, undefined]);
  assert.deepEqual(bad(chat({}, { custom_id: "" })), ["missing_required_parameter", "custom_id", undefined]);
  assert.deepEqual(bad(chat({}, { custom_id: "x".repeat(513) })), ["invalid_value", "custom_id", undefined]);
  assert.deepEqual(bad(chat({}, { method: "GET" })), ["invalid_value", "method", undefined]);
  assert.deepEqual(bad(chat({}, { url: "/v1/embeddings" })), ["invalid_url", "url", undefined]);
  assert.deepEqual(bad(chat({}, { body: "hi" })), ["invalid_type", "body", undefined]);
  const request = (data: Buffer) => {
    const c = checkLine(data, 3, "t");
    assert.equal(c.kind === "request" && c.lineError, undefined);
    return c.kind === "request" ? [c.requestError?.code, c.requestError?.param] : undefined;
  };
  assert.deepEqual(request(chat({ n: 2 })), ["unsupported_parameter", "n"]);
  assert.deepEqual(request(chat({ stream: true })), ["unsupported_parameter", "stream"]);
  assert.deepEqual(request(chat({ tools: [{ type: "function" }] })), ["unsupported_parameter", "tools"]);
  assert.deepEqual(request(chat({ temperature: 7 })), ["invalid_request", "temperature"]);
  assert.deepEqual(request(chat({ messages: [{ role: "user", content: "" }] })), ["invalid_request", "messages[0].content"]);
  assert.deepEqual(request(chat({ messages: [{ role: "tool", content: "x" }] })), ["unsupported_value", "messages[0].role"]);
  assert.deepEqual(request(chat({ messages: [{ role: "user", content: "x".repeat(300_000) }] })), ["request_too_large", null]);
  assert.deepEqual(request(chat({ n: 1, stream: false, user: "u1", temperature: 0.2 })), [undefined, undefined], "neutral and ignored fields pass");
});

test("an OpenAI body maps onto the job contract's fields", () => {
  assert.deepEqual(
    bodyJob("/v1/chat/completions", {
      model: "m",
      messages: [
        { role: "developer", content: "be brief" },
        { role: "user", content: [{ type: "text", text: "a" }, { type: "text", text: "b" }], name: "ann" },
      ],
      max_completion_tokens: 9,
      temperature: 0.5,
      stop: "END",
      seed: 3,
    }),
    { job: { model: "m", params: { max_tokens: 9, temperature: 0.5, seed: 3, stop: ["END"] }, messages: [{ role: "system", content: "be brief" }, { role: "user", content: "a\nb" }] } },
  );
  assert.deepEqual(bodyJob("/v1/completions", { prompt: ["one"], max_tokens: 4, echo: false }), { job: { params: { max_tokens: 4 }, prompt: "one" } });
  assert.equal("problem" in bodyJob("/v1/completions", { prompt: ["a", "b"] }), true, "one prompt per line");
  assert.equal("problem" in bodyJob("/v1/completions", { messages: [] }), true, "messages belong to chat");
});
