/**
 * The Ollama client against the simulator's Ollama API (real HTTP, real sockets), against small fake servers for
 * exact wire checks (request body, nanosecond durations, a stream ending without its final chunk), and the NDJSON
 * reader on its own.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { FleetError, ProviderRetryableError, ProviderTerminalError } from "../shared/errors.ts";
import { readNdjsonStream, StreamCut, StreamMalformed } from "../shared/providers/ndjson.ts";
import { OllamaClient, sameTag, type OllamaClientOptions } from "../shared/providers/ollama.ts";
import { isAbortError } from "../shared/providers/provider.ts";
import { OLLAMA_BUSY_MESSAGE } from "../scripts/simulators/vllm/ollama-api.ts";
import { startVllmSimulator, type RunningSimulator, type SimulatorOptions } from "../scripts/simulators/vllm/server.ts";
import { estimateChatTokens } from "../scripts/simulators/vllm/tokens.ts";

const TAG = "llama3.1:8b";
const HF_MODEL = "meta-llama/Llama-3.1-8B-Instruct";
const user = (content: string) => [{ role: "user" as const, content }];
const words = (text: string) => text.split(" ").filter(Boolean).length;

/** A simulator and an Ollama client on it, closed together. */
async function setup(sim: Partial<SimulatorOptions> = {}, client: Partial<OllamaClientOptions> = {}) {
  const server = await startVllmSimulator({ port: 0, profile: "instant", seed: 7, requestLog: 100, ...sim });
  const ollama = new OllamaClient({ baseUrl: server.url, model: TAG, timeoutMs: 10_000, ...client });
  return {
    server,
    ollama,
    async close() {
      await ollama.close();
      await server.close();
    },
  };
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail("expected a rejection");
}

/** A one-route fake Ollama that records what it was sent. */
async function fakeOllama(answer: (req: IncomingMessage, body: string, res: ServerResponse) => void) {
  const seen: Array<{ path: string; headers: IncomingMessage["headers"]; body: any }> = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString("utf8")));
    req.on("end", () => {
      seen.push({ path: req.url ?? "", headers: req.headers, body: body === "" ? undefined : JSON.parse(body) });
      answer(req, body, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())).then(() => undefined),
    closeAll: () => server.closeAllConnections(),
  };
}

const ndjson = (...lines: object[]) => lines.map((l) => `${JSON.stringify(l)}\n`).join("");

describe("OllamaClient against the simulator", () => {
  let env: Awaited<ReturnType<typeof setup>>;
  before(async () => {
    env = await setup({ earlyStopRate: 0.5 });
  });
  after(() => env.close());

  test("chat: streamed text, finish reason, token counts, model tag, latency", async () => {
    const messages = [{ role: "system" as const, content: "You are terse." }, ...user("Say something about queues.")];
    const c = await env.ollama.generate({ messages, params: { max_tokens: 12, temperature: 0 } });
    assert.equal(c.provider, "ollama");
    assert.equal(c.model, TAG);
    assert.ok(["stop", "length"].includes(c.finishReason), c.finishReason);
    assert.equal(c.promptTokens, estimateChatTokens(messages.map((m) => m.content)));
    assert.equal(c.completionTokens, words(c.text));
    assert.ok(c.completionTokens >= 1 && c.completionTokens <= 12);
    if (c.finishReason === "length") assert.equal(c.completionTokens, 12);
    assert.equal(typeof c.latencyMs, "number");
  });

  test("generate: a prompt goes to /api/generate and gets the same kind of answer", async () => {
    const prompt = "Once upon a time in a data centre";
    const c = await env.ollama.generate({ prompt, params: { max_tokens: 9 } });
    assert.equal(c.promptTokens, estimateChatTokens([prompt]), "Ollama applies the chat template to /api/generate too");
    assert.equal(c.completionTokens, words(c.text));
    assert.ok(c.completionTokens >= 1 && c.completionTokens <= 9);
  });

  test("X-Request-Id reaches the server and is logged with the request", async () => {
    await env.ollama.generate({ messages: user("trace me"), params: { max_tokens: 3 }, requestId: "job-ollama-42" });
    const entry = env.server.requestLog().entries.find((e) => e.requestId === "job-ollama-42");
    assert.ok(entry, "the simulator saw the id");
    assert.equal(entry.outcome, "served");
    assert.equal(entry.status, 200);
  });

  test("model mapping: a mapped job model runs on its tag, an unmapped one on the default tag", async () => {
    const mapped = new OllamaClient({ baseUrl: env.server.url, model: "missing:1b", modelMap: { [HF_MODEL]: TAG }, timeoutMs: 10_000 });
    try {
      const c = await mapped.generate({ model: HF_MODEL, messages: user("hi"), params: { max_tokens: 2 } });
      assert.equal(c.model, TAG);
      assert.equal(mapped.modelFor("some/other-model"), "missing:1b");
      assert.equal(mapped.modelFor(undefined), "missing:1b");
      // The default tag is not on this server: the unmapped model went to it, and got Ollama's 404.
      const err = await failure(mapped.generate({ model: "some/other-model", messages: user("hi"), params: { max_tokens: 2 } }));
      assert.ok(err instanceof ProviderTerminalError);
      assert.equal(err.code, "PROVIDER_NOT_FOUND");
    } finally {
      await mapped.close();
    }
  });

  test("404 unknown model is terminal, with Ollama's message", async () => {
    const other = new OllamaClient({ baseUrl: env.server.url, model: "nope:1b", timeoutMs: 10_000 });
    try {
      const err = await failure(other.generate({ prompt: "x", params: {} }));
      assert.ok(err instanceof ProviderTerminalError);
      assert.equal(err.code, "PROVIDER_NOT_FOUND");
      assert.equal(err.retryable, false);
      assert.equal(err.statusCode, 404);
      assert.match(err.message, /^ollama generate: HTTP 404: model "nope:1b" not found, try pulling it first$/);
      assert.equal(await other.health(), false, "the default tag is not listed");
    } finally {
      await other.close();
    }
  });

  test("400 (a bad option) is terminal", async () => {
    const err = await failure(env.ollama.generate({ prompt: "x", params: { max_tokens: 1.5 } }));
    assert.ok(err instanceof ProviderTerminalError);
    assert.equal(err.code, "PROVIDER_BAD_REQUEST");
    assert.equal(err.statusCode, 400);
  });

  test("health: /api/tags lists the default tag; tags() lists names", async () => {
    assert.equal(await env.ollama.health(), true);
    assert.deepEqual(await env.ollama.tags(), [TAG]);
    assert.ok(sameTag("llama3.1", "llama3.1:latest"));
    assert.ok(!sameTag("llama3.1", "llama3.1:8b"));
  });

  test("neither messages nor prompt: terminal without a call", async () => {
    const err = await failure(env.ollama.generate({ params: {} }));
    assert.ok(err instanceof ProviderTerminalError);
    assert.equal(err.code, "PROVIDER_BAD_REQUEST");
  });
});

describe("OllamaClient failures", () => {
  const open: Array<{ close(): Promise<void> }> = [];
  after(async () => {
    for (const o of open) await o.close();
  });
  async function withSim(sim: Partial<SimulatorOptions>, client: Partial<OllamaClientOptions> = {}) {
    const env = await setup(sim, client);
    open.push(env);
    return env;
  }

  test("an {error} line mid-stream (HTTP 200) → retryable PROVIDER_UNAVAILABLE, never the partial text", async () => {
    const { ollama, server } = await withSim({ faults: { ollamaStreamErrorRate: 1 } as SimulatorOptions["faults"] });
    for (const req of [{ messages: user("cut me") }, { prompt: "cut me too" }]) {
      const err = await failure(ollama.generate({ ...req, params: { max_tokens: 20 }, requestId: "job-cut" }));
      assert.ok(err instanceof ProviderRetryableError, String(err));
      assert.equal(err.code, "PROVIDER_UNAVAILABLE");
      assert.match(err.message, /stream cut: an error was encountered while running the model/);
    }
    assert.deepEqual(server.requestLog().entries.filter((e) => e.requestId === "job-cut").map((e) => [e.status, e.outcome]), [[200, "error"], [200, "error"]]);
    server.setFaults({ ollamaStreamErrorRate: 0 });
    const ok = await ollama.generate({ messages: user("cut me"), params: { max_tokens: 20 } });
    assert.ok(ok.completionTokens >= 1);
  });

  test("503 busy past OLLAMA_MAX_QUEUE → retryable PROVIDER_OVERLOADED; aborted calls leave the engine", async () => {
    // One seat, one waiting place: a third request finds Ollama's queue full.
    const { ollama, server } = await withSim({ profile: "llama-3.1-8b-h100", timeScale: 1, maxNumSeqs: 1, ollamaMaxQueue: 1 });
    const ac = new AbortController();
    const long = { messages: user("a very long answer"), params: { max_tokens: 100_000 } };
    const running = failure(ollama.generate(long, ac.signal));
    const waiting = failure(ollama.generate(long, ac.signal));
    await server.engine.whenStats((s) => s.running === 1 && s.waiting === 1);
    const err = await failure(ollama.generate({ messages: user("one more"), params: { max_tokens: 2 } }));
    assert.ok(err instanceof ProviderRetryableError, String(err));
    assert.equal(err.code, "PROVIDER_OVERLOADED");
    assert.equal(err.statusCode, 503);
    assert.ok(err.message.endsWith(OLLAMA_BUSY_MESSAGE.replace(/\s+/g, " ")), err.message);
    ac.abort(new Error("shutdown"));
    for (const p of [running, waiting]) {
      const e = await p;
      assert.ok(isAbortError(e), String(e));
      assert.ok(!(e instanceof FleetError));
      assert.equal(((e as Error).cause as Error).message, "shutdown");
    }
    await server.engine.whenStats((s) => s.requestsAborted === 2 && s.running === 0 && s.waiting === 0);
    // Already aborted: rejected without a request.
    assert.ok(isAbortError(await failure(ollama.generate(long, ac.signal))));
  });

  test("a stream stalled halfway past timeoutMs → PROVIDER_TIMEOUT (the deadline covers the body)", async () => {
    const { ollama } = await withSim({ faults: { stallRate: 1, stallMs: 3_000 } as SimulatorOptions["faults"] }, { timeoutMs: 300 });
    const err = await failure(ollama.generate({ messages: user("stall"), params: { max_tokens: 8 } }));
    assert.ok(err instanceof ProviderRetryableError, String(err));
    assert.equal(err.code, "PROVIDER_TIMEOUT");
  });

  test("injected 500 → PROVIDER_UNAVAILABLE, reset → PROVIDER_CONNECTION, dead runner → PROVIDER_UNAVAILABLE", async () => {
    const { ollama, server } = await withSim({ faults: { errorRate: 1, errorKinds: [500] } as SimulatorOptions["faults"] });
    const e500 = await failure(ollama.generate({ prompt: "x", params: {} }));
    assert.ok(e500 instanceof ProviderRetryableError);
    assert.equal(e500.code, "PROVIDER_UNAVAILABLE");
    server.setFaults({ errorKinds: ["reset"] });
    const reset = await failure(ollama.generate({ prompt: "x", params: {} }));
    assert.ok(reset instanceof ProviderRetryableError);
    assert.equal(reset.code, "PROVIDER_CONNECTION");
    server.setFaults({ errorRate: 0, ollamaRunnerDead: true });
    const dead = await failure(ollama.generate({ prompt: "x", params: {} }));
    assert.ok(dead instanceof ProviderRetryableError);
    assert.equal(dead.code, "PROVIDER_UNAVAILABLE");
    assert.match(dead.message, /llama runner process has terminated/);
  });

  test("connection refused → PROVIDER_CONNECTION; health() false", async () => {
    const fake = await fakeOllama((_req, _body, res) => res.end());
    await fake.close();
    const client = new OllamaClient({ baseUrl: fake.url, model: TAG, timeoutMs: 2_000 });
    try {
      const err = await failure(client.generate({ prompt: "x", params: {} }));
      assert.ok(err instanceof ProviderRetryableError);
      assert.equal(err.code, "PROVIDER_CONNECTION");
      assert.equal(await client.health(), false);
    } finally {
      await client.close();
    }
  });
});

describe("OllamaClient on the wire (fake server)", () => {
  test("request body: native options, keep_alive, num_ctx, mapped tag, stream; X-Request-Id; ns → ms", async () => {
    const fake = await fakeOllama((_req, _body, res) => {
      res.writeHead(200, { "content-type": "application/x-ndjson" });
      res.end(
        ndjson(
          { model: TAG, created_at: "2025-01-01T00:00:00Z", message: { role: "assistant", content: "Hel" }, done: false },
          { model: TAG, created_at: "2025-01-01T00:00:00Z", message: { role: "assistant", content: "lo ✓" }, done: false },
          { model: TAG, created_at: "2025-01-01T00:00:00Z", message: { role: "assistant", content: "" }, done: true, done_reason: "stop", total_duration: 1_234_567_890, load_duration: 1_000, prompt_eval_count: 26, prompt_eval_duration: 2_000, eval_count: 2, eval_duration: 3_000 },
        ),
      );
    });
    const client = new OllamaClient({ baseUrl: fake.url, model: "fallback:1b", modelMap: { [HF_MODEL]: TAG }, keepAlive: "30m", numCtx: 8192, timeoutMs: 5_000 });
    try {
      const params = { max_tokens: 64, temperature: 0.2, top_p: 0.9, stop: ["\n\n"], seed: 11 };
      const c = await client.generate({ model: HF_MODEL, messages: user("hi"), params, requestId: "job-7" });
      assert.deepEqual(c, { text: "Hello ✓", finishReason: "stop", promptTokens: 26, completionTokens: 2, model: TAG, provider: "ollama", latencyMs: 1234.56789 });
      const [sent] = fake.seen;
      assert.equal(sent?.path, "/api/chat");
      assert.equal(sent?.headers["x-request-id"], "job-7");
      assert.deepEqual(sent?.body, {
        model: TAG,
        stream: true,
        keep_alive: "30m",
        messages: user("hi"),
        options: { num_predict: 64, temperature: 0.2, top_p: 0.9, stop: ["\n\n"], seed: 11, num_ctx: 8192 },
      });
      await client.generate({ prompt: "p", params: {}, requestId: "bad id with spaces" });
      assert.equal(fake.seen[1]?.path, "/api/generate");
      assert.equal(fake.seen[1]?.body.model, "fallback:1b");
      assert.equal(fake.seen[1]?.body.prompt, "p");
      assert.deepEqual(fake.seen[1]?.body.options, { num_ctx: 8192 }, "unset sampling fields are not sent");
      assert.equal(fake.seen[1]?.headers["x-request-id"], undefined, "an id that cannot travel in a header is dropped, not a failed job");
    } finally {
      await client.close();
      await fake.close();
    }
  });

  test("keep_alive -1 goes out as a number", async () => {
    const fake = await fakeOllama((_req, _body, res) => res.end(ndjson({ model: TAG, response: "ok", done: true, done_reason: "stop" })));
    const client = new OllamaClient({ baseUrl: fake.url, model: TAG, keepAlive: -1, timeoutMs: 5_000 });
    try {
      const c = await client.generate({ prompt: "p", params: {} });
      assert.equal(c.text, "ok");
      assert.equal(c.latencyMs, undefined, "no total_duration, no latency");
      assert.equal(fake.seen[0]?.body.keep_alive, -1);
    } finally {
      await client.close();
      await fake.close();
    }
  });

  test("a stream that ends without done:true → retryable, never the partial text", async () => {
    const fake = await fakeOllama((_req, _body, res) => {
      res.writeHead(200, { "content-type": "application/x-ndjson" });
      res.end(ndjson({ model: TAG, message: { role: "assistant", content: "partial" }, done: false }));
    });
    const client = new OllamaClient({ baseUrl: fake.url, model: TAG, timeoutMs: 5_000 });
    try {
      const err = await failure(client.generate({ messages: user("hi"), params: {} }));
      assert.ok(err instanceof ProviderRetryableError, String(err));
      assert.equal(err.code, "PROVIDER_UNAVAILABLE");
      assert.match(err.message, /without a final \(done\) chunk/);
    } finally {
      await client.close();
      await fake.close();
    }
  });

  test("a 200 whose body is not NDJSON → terminal PROVIDER_BAD_RESPONSE", async () => {
    const fake = await fakeOllama((_req, _body, res) => res.end("<html>proxy login</html>\n"));
    const client = new OllamaClient({ baseUrl: fake.url, model: TAG, timeoutMs: 5_000 });
    try {
      const err = await failure(client.generate({ messages: user("hi"), params: {} }));
      assert.ok(err instanceof ProviderTerminalError, String(err));
      assert.equal(err.code, "PROVIDER_BAD_RESPONSE");
    } finally {
      await client.close();
      await fake.close();
    }
  });
});

describe("readNdjsonStream", () => {
  async function* chunks(...parts: Buffer[]) {
    for (const p of parts) yield p;
  }
  const piece = (c: Record<string, unknown>) => c.response ?? "";

  test("lines split anywhere, even inside a UTF-8 character; a last line without newline", async () => {
    const bytes = Buffer.from(`${JSON.stringify({ response: "é✓" })}\n\n${JSON.stringify({ response: "!", done: true, eval_count: 3 })}`);
    const cuts = [3, 14, 15, 16];
    const parts = [0, ...cuts].map((start, i) => bytes.subarray(start, cuts[i] ?? bytes.length));
    const { text, final } = await readNdjsonStream(chunks(...parts), piece, 1_000);
    assert.equal(text, "é✓!");
    assert.equal(final.eval_count, 3);
  });

  test("error line → StreamCut with its message; EOF before done → StreamCut; bad line, bad piece, too big → StreamMalformed", async () => {
    const line = (o: object) => Buffer.from(`${JSON.stringify(o)}\n`);
    await assert.rejects(readNdjsonStream(chunks(line({ response: "a" }), line({ error: "boom" })), piece, 1_000), (e) => e instanceof StreamCut && e.message === "boom");
    await assert.rejects(readNdjsonStream(chunks(line({ response: "a" })), piece, 1_000), StreamCut);
    await assert.rejects(readNdjsonStream(chunks(), piece, 1_000), StreamCut);
    await assert.rejects(readNdjsonStream(chunks(Buffer.from("nope\n")), piece, 1_000), StreamMalformed);
    await assert.rejects(readNdjsonStream(chunks(Buffer.from("[1]\n")), piece, 1_000), StreamMalformed);
    await assert.rejects(readNdjsonStream(chunks(line({ response: 5, done: true })), piece, 1_000), StreamMalformed);
    await assert.rejects(readNdjsonStream(chunks(line({ response: "x".repeat(100), done: true })), piece, 50), StreamMalformed);
  });
});
