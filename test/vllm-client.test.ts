/**
 * The vLLM client against the project's vLLM simulator (real HTTP, real sockets), plus the pure pieces it is built
 * from: the error classifier, the /metrics reader, token apportioning and the call deadline.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { FleetError, ProviderRetryableError, ProviderTerminalError } from "../shared/errors.ts";
import { parseRetryAfter, toProviderError } from "../shared/providers/http-errors.ts";
import { parsePrometheusText, readVllmLoad } from "../shared/providers/metrics.ts";
import { CallDeadline, isAbortError } from "../shared/providers/provider.ts";
import { VllmClient, apportion } from "../shared/providers/vllm.ts";
import { startVllmSimulator, type RunningSimulator, type SimulatorOptions } from "../scripts/simulators/vllm/server.ts";
import { chatPrompt, textPrompt } from "../scripts/simulators/vllm/prompt.ts";
import { rotatingSecret, type RotatingSecret } from "./support/rotating-secret.ts";

const MODEL = "meta-llama/Llama-3.1-8B-Instruct";

/** A simulator and a client on it, closed together. */
async function setup(sim: Partial<SimulatorOptions> = {}, client: Partial<ConstructorParameters<typeof VllmClient>[0]> = {}) {
  const server = await startVllmSimulator({ port: 0, profile: "instant", seed: 7, ...sim });
  const vllm = new VllmClient({ baseUrl: server.url, model: server.options.model, timeoutMs: 10_000, connections: 64, ...client });
  return {
    server,
    vllm,
    async close() {
      await vllm.close();
      await server.close();
    },
  };
}

/** Rejects-with assertion that returns the error for further checks. */
async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail("expected a rejection");
}

const words = (text: string) => text.split(" ").filter(Boolean).length;

describe("VllmClient against the simulator", () => {
  let env: Awaited<ReturnType<typeof setup>>;
  before(async () => {
    env = await setup({ earlyStopRate: 0.5 });
  });
  after(() => env.close());

  test("chat: text, finish reason, usage, model", async () => {
    const messages = [
      { role: "system" as const, content: "You are terse." },
      { role: "user" as const, content: "Say something about queues." },
    ];
    const c = await env.vllm.generate({ messages, params: { max_tokens: 12, temperature: 0 } });
    assert.equal(c.provider, "vllm");
    assert.equal(c.model, MODEL);
    assert.ok(["stop", "length"].includes(c.finishReason), c.finishReason);
    assert.equal(c.promptTokens, chatPrompt(messages.map((m) => ({ role: m.role, text: m.content }))).tokens, "after Llama 3.1's chat template");
    assert.equal(c.completionTokens, words(c.text));
    assert.ok(c.completionTokens >= 1 && c.completionTokens <= 12);
    if (c.finishReason === "length") assert.equal(c.completionTokens, 12);
  });

  test("completion: a prompt goes to /v1/completions", async () => {
    const prompt = "Once upon a time in a data centre";
    const c = await env.vllm.generate({ prompt, params: { max_tokens: 9 } });
    assert.equal(c.promptTokens, textPrompt(prompt).tokens, "the text and a BOS");
    assert.equal(c.completionTokens, words(c.text));
    assert.ok(c.completionTokens <= 9);
  });

  test("completeBatch: 5 prompts, one call, results in prompt order", async () => {
    const prompts = ["alpha", "bravo charlie", "delta echo foxtrot golf", "hotel", "india juliet kilo lima mike november"];
    const params = { max_tokens: 24 };
    const batch = await env.vllm.completeBatch(prompts, params);
    assert.equal(batch.length, 5);
    // The simulator's output depends only on the prompt: each position must equal that prompt sent alone.
    const alone = await Promise.all(prompts.map((prompt) => env.vllm.complete({ prompt, params })));
    assert.deepEqual(
      batch.map((c) => [c.text, c.finishReason]),
      alone.map((c) => [c.text, c.finishReason]),
    );
    assert.ok(new Set(batch.map((c) => c.text)).size > 1, "outputs differ per prompt, so the order check means something");
    // Usage comes as totals for the list; the per-prompt split must add up to them exactly.
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    assert.equal(sum(batch.map((c) => c.completionTokens)), sum(batch.map((c) => words(c.text))));
    assert.equal(sum(batch.map((c) => c.promptTokens)), sum(prompts.map((p) => textPrompt(p).tokens)));
    assert.deepEqual(await env.vllm.completeBatch([], params), []);
  });

  test("models, health, metrics", async () => {
    assert.deepEqual(await env.vllm.models(), [MODEL]);
    assert.equal(await env.vllm.health(), true);
    const load = await env.vllm.metrics();
    assert.ok(load !== undefined);
    assert.equal(load.running, 0);
    assert.equal(load.waiting, 0);
    assert.equal(typeof load.kvCacheUsage, "number");
  });

  test("400: prompt + max_tokens over max_model_len is terminal, with vLLM's message", async () => {
    const err = await failure(env.vllm.generate({ prompt: "hello", params: { max_tokens: 200_000 } }));
    assert.ok(err instanceof ProviderTerminalError);
    assert.equal(err.code, "PROVIDER_BAD_REQUEST");
    assert.equal(err.statusCode, 400);
    assert.equal(err.provider, "vllm");
    assert.match(err.message, /maximum context length is 131072/);
  });

  test("404: unknown model is terminal", async () => {
    const err = await failure(env.vllm.generate({ prompt: "hello", model: "no/such-model", params: {} }));
    assert.ok(err instanceof ProviderTerminalError);
    assert.equal(err.code, "PROVIDER_NOT_FOUND");
    assert.equal(err.statusCode, 404);
    assert.match(err.message, /no\/such-model/);
  });

  test("neither messages nor prompt: terminal without a call", async () => {
    const err = await failure(env.vllm.generate({ params: {} }));
    assert.ok(err instanceof ProviderTerminalError);
    assert.equal(err.code, "PROVIDER_BAD_REQUEST");
  });

  test("1,000 concurrent chats on 64 connections all succeed", async (t) => {
    const started = performance.now();
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => env.vllm.chat({ messages: [{ role: "user", content: `q${i}` }], params: { max_tokens: 4 } })),
    );
    const ms = performance.now() - started;
    assert.equal(results.length, 1000);
    assert.ok(results.every((c) => c.completionTokens >= 1 && c.completionTokens <= 4));
    t.diagnostic(`1000 concurrent chats (instant profile, 64 connections): ${ms.toFixed(0)} ms`);
  });
});

describe("VllmClient failures", () => {
  const open: Array<{ close(): Promise<void> }> = [];
  after(async () => {
    for (const o of open) await o.close();
  });
  async function withFaults(faults: Partial<SimulatorOptions["faults"]>, client: Partial<ConstructorParameters<typeof VllmClient>[0]> = {}) {
    const env = await setup({ faults: { ...faults } as SimulatorOptions["faults"] }, client);
    open.push(env);
    return env;
  }

  for (const [status, code] of [
    [500, "PROVIDER_UNAVAILABLE"],
    [503, "PROVIDER_OVERLOADED"],
  ] as const) {
    test(`injected ${status} → retryable ${code}`, async () => {
      const { vllm } = await withFaults({ errorRate: 1, errorKinds: [status] });
      const err = await failure(vllm.generate({ prompt: "x", params: {} }));
      assert.ok(err instanceof ProviderRetryableError);
      assert.equal(err.code, code);
      assert.equal(err.statusCode, status);
      assert.equal(err.provider, "vllm");
      assert.equal(err.retryable, true);
      assert.match(err.message, /injected fault/);
    });
  }

  test("429 with Retry-After → PROVIDER_OVERLOADED with retryAfterMs", async () => {
    const { vllm } = await withFaults({ errorRate: 1, errorKinds: [429] });
    const err = await failure(vllm.chat({ messages: [{ role: "user", content: "hi" }], params: {} }));
    assert.ok(err instanceof ProviderRetryableError);
    assert.equal(err.code, "PROVIDER_OVERLOADED");
    assert.equal(err.statusCode, 429);
    assert.equal(err.retryAfterMs, 1000);
  });

  test("connection reset → PROVIDER_CONNECTION, and the client keeps working", async () => {
    const { vllm, server } = await withFaults({ errorRate: 1, errorKinds: ["reset"] });
    const err = await failure(vllm.generate({ prompt: "x", params: {} }));
    assert.ok(err instanceof ProviderRetryableError);
    assert.equal(err.code, "PROVIDER_CONNECTION");
    server.setFaults({ errorRate: 0 });
    const ok = await vllm.generate({ prompt: "x", params: { max_tokens: 2 } });
    assert.ok(ok.completionTokens >= 1);
  });

  test("a stall longer than timeoutMs → PROVIDER_TIMEOUT at the deadline", async () => {
    const { vllm } = await withFaults({ stallRate: 1, stallMs: 3_000 }, { timeoutMs: 300 });
    const started = performance.now();
    const err = await failure(vllm.generate({ prompt: "x", params: { max_tokens: 2 } }));
    const ms = performance.now() - started;
    assert.ok(err instanceof ProviderRetryableError);
    assert.equal(err.code, "PROVIDER_TIMEOUT");
    assert.ok(ms >= 290 && ms < 1_000, `timed out after ${ms.toFixed(0)} ms`);
  });

  test("caller abort → AbortError, not a provider error", async () => {
    const { vllm } = await withFaults({ stallRate: 1, stallMs: 3_000 });
    const ac = new AbortController();
    const started = performance.now();
    const pending = vllm.generate({ prompt: "x", params: { max_tokens: 2 } }, ac.signal);
    setTimeout(() => ac.abort(new Error("shutdown")), 100);
    const err = await failure(pending);
    assert.ok(isAbortError(err), String(err));
    assert.ok(!(err instanceof FleetError));
    assert.equal(((err as Error).cause as Error).message, "shutdown");
    assert.ok(performance.now() - started < 1_000);
    // Already aborted: rejected without a request.
    const err2 = await failure(vllm.generate({ prompt: "x", params: {} }, ac.signal));
    assert.ok(isAbortError(err2));
  });

  test("close() cuts calls in flight (PROVIDER_CONNECTION), is idempotent, and later calls fail the same way", async () => {
    const { vllm } = await withFaults({ stallRate: 1, stallMs: 3_000 });
    const started = performance.now();
    const inFlight = failure(vllm.generate({ prompt: "x", params: { max_tokens: 2 } }));
    await vllm.health(); // most likely on the wire by now; queued or sent, destroy() rejects it the same way
    await Promise.all([vllm.close(), vllm.close()]);
    const err = await inFlight;
    assert.ok(err instanceof ProviderRetryableError, String(err));
    assert.equal(err.code, "PROVIDER_CONNECTION");
    assert.ok(performance.now() - started < 1_000);
    const later = await failure(vllm.generate({ prompt: "x", params: {} }));
    assert.ok(later instanceof ProviderRetryableError);
    assert.equal(later.code, "PROVIDER_CONNECTION");
  });

  test("engine dead → vLLM's server exits: health() false, generation PROVIDER_CONNECTION (retryable); back when it restarts", async () => {
    const { vllm, server } = await withFaults({});
    assert.equal((await vllm.generate({ prompt: "x", params: { max_tokens: 2 } })).provider, "vllm", "a pooled keep-alive socket exists");
    await server.setFaults({ engineDead: true });
    assert.equal(await vllm.health(), false);
    const err = await failure(vllm.generate({ prompt: "x", params: {} }));
    assert.ok(err instanceof ProviderRetryableError, String(err));
    assert.equal(err.code, "PROVIDER_CONNECTION");
    await server.setFaults({ engineDead: false });
    assert.equal(await vllm.health(), true);
    assert.equal((await vllm.generate({ prompt: "x", params: { max_tokens: 2 } })).provider, "vllm");
  });

  test("an engine death with a request in flight: vLLM's bare 500 is a retryable PROVIDER_UNAVAILABLE", async () => {
    const server = await startVllmSimulator({ port: 0, timeScale: 1 });
    const vllm = new VllmClient({ baseUrl: server.url, model: MODEL, timeoutMs: 10_000 });
    open.push({ close: () => vllm.close().then(() => server.close()) });
    const inFlight = failure(vllm.generate({ prompt: "x", params: { max_tokens: 5000 } }));
    await server.engine.whenStats((s) => s.running === 1);
    await server.setFaults({ engineDead: true });
    const err = await inFlight;
    assert.ok(err instanceof ProviderRetryableError, String(err));
    assert.equal(err.code, "PROVIDER_UNAVAILABLE");
    assert.equal(err.statusCode, 500);
  });

  test("API key: sent as a bearer token; a wrong one is PROVIDER_AUTH and never echoed", async () => {
    const server = await startVllmSimulator({ port: 0, profile: "instant", apiKey: "sk-right-key" });
    const good = new VllmClient({ baseUrl: server.url, model: MODEL, timeoutMs: 5_000, apiKey: "sk-right-key" });
    const bad = new VllmClient({ baseUrl: server.url, model: MODEL, timeoutMs: 5_000, apiKey: "sk-wrong-key" });
    open.push({ close: () => Promise.all([good.close(), bad.close()]).then(() => server.close()) });
    assert.deepEqual(await good.models(), [MODEL]);
    const err = await failure(bad.generate({ prompt: "x", params: {} }));
    assert.ok(err instanceof ProviderTerminalError);
    assert.equal(err.code, "PROVIDER_AUTH");
    assert.equal(err.statusCode, 401);
    assert.ok(!JSON.stringify({ m: err.message, s: err.stack }).includes("sk-wrong-key"));
  });

  test("connection refused (closed port) → PROVIDER_CONNECTION; health() false", async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const vllm = new VllmClient({ baseUrl: `http://127.0.0.1:${port}`, model: MODEL, timeoutMs: 5_000 });
    open.push(vllm);
    const err = await failure(vllm.generate({ prompt: "x", params: {} }));
    assert.ok(err instanceof ProviderRetryableError);
    assert.equal(err.code, "PROVIDER_CONNECTION");
    assert.equal(err.provider, "vllm");
    assert.match(err.message, /ECONNREFUSED/);
    assert.equal(await vllm.health(), false);
  });

  test("metrics() is undefined on a server without /metrics", async () => {
    const plain: Server = createServer((_req, res) => {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
    });
    await new Promise<void>((r) => plain.listen(0, "127.0.0.1", r));
    const vllm = new VllmClient({ baseUrl: `http://127.0.0.1:${(plain.address() as AddressInfo).port}`, model: MODEL, timeoutMs: 5_000 });
    open.push({ close: () => vllm.close().then(() => new Promise<void>((r) => plain.close(() => r()))) });
    assert.equal(await vllm.metrics(), undefined);
  });

  test("metrics() sees requests running", async () => {
    // The 8B profile at real speed: 400 output tokens take seconds, long enough to be seen running.
    const server = await startVllmSimulator({ port: 0, profile: "llama-3.1-8b-h100", earlyStopRate: 0 });
    const vllm = new VllmClient({ baseUrl: server.url, model: MODEL, timeoutMs: 30_000 });
    open.push({ close: () => vllm.close().then(() => server.close()) });
    const ac = new AbortController();
    const inFlight = Promise.allSettled([1, 2, 3].map((i) => vllm.generate({ prompt: `p${i}`, params: { max_tokens: 400 } }, ac.signal)));
    let load = await vllm.metrics();
    for (let i = 0; i < 500 && (load?.running ?? 0) < 3; i++) load = await vllm.metrics();
    ac.abort();
    await inFlight;
    assert.equal(load?.running, 3);
    assert.equal(load?.waiting, 0);
    assert.ok((load?.kvCacheUsage ?? 0) > 0);
  });
});

describe("VllmClient: a key from Secrets Manager", () => {
  const open: Array<{ close(): Promise<unknown> }> = [];
  after(async () => {
    for (const o of open.splice(0)) await o.close();
  });

  async function keyed(simKey: string, secretValue: string): Promise<{ server: RunningSimulator; vllm: VllmClient; secret: RotatingSecret }> {
    const secret = await rotatingSecret(secretValue);
    const server = await startVllmSimulator({ port: 0, profile: "instant", apiKey: simKey });
    const vllm = new VllmClient({ baseUrl: server.url, model: MODEL, timeoutMs: 5_000, apiKey: secret.holder });
    open.push({ close: () => vllm.close().then(() => server.close()).then(() => secret.close()) });
    return { server, vllm, secret };
  }

  /** Every string the error could be shown as. */
  const shown = (err: unknown) => [String(err), (err as Error).stack ?? "", JSON.stringify(err), JSON.stringify({ m: (err as Error).message })].join("\n");

  test("rotation: the next call's 401 refreshes the secret once and the retry succeeds; no key in any log line", async () => {
    const { server, vllm, secret } = await keyed("sk-key-one", "sk-key-one");
    assert.equal((await vllm.generate({ prompt: "before", params: { max_tokens: 4 } })).provider, "vllm");
    // The key is rotated in Secrets Manager and on the server; the client still holds the old one.
    secret.rotate("sk-key-two");
    server.options.apiKey = "sk-key-two";
    const c = await vllm.generate({ prompt: "after", params: { max_tokens: 4 } });
    assert.ok(c.completionTokens >= 1);
    assert.equal(secret.holder.current(), "sk-key-two");
    assert.equal(secret.calls(), 2, "one fetch at start, one refresh after the 401");
    assert.deepEqual(await vllm.models(), [MODEL], "later calls send the new key without another refresh");
    assert.equal(secret.calls(), 2);
    assert.ok(secret.lines.some((l) => l.includes("secret rotated")), "the resolver saw the rotation");
    for (const line of secret.lines) assert.ok(!line.includes("sk-key-one") && !line.includes("sk-key-two"), line);
  });

  test("a 401 with the secret unchanged: one refresh, no retry, PROVIDER_AUTH without the key; a later rotation is picked up", async () => {
    const { vllm, secret } = await keyed("sk-right-key", "sk-stale-key");
    const err = await failure(vllm.generate({ prompt: "x", params: {} }));
    assert.ok(err instanceof ProviderTerminalError, String(err));
    assert.equal(err.code, "PROVIDER_AUTH");
    assert.equal(err.statusCode, 401);
    assert.equal(secret.calls(), 2, "refreshed once");
    assert.ok(!shown(err).includes("sk-stale-key"), shown(err));
    secret.rotate("sk-right-key");
    assert.ok((await vllm.generate({ prompt: "x", params: { max_tokens: 2 } })).completionTokens >= 1);
    assert.equal(secret.calls(), 3);
  });

  test("a server quoting the key it got: neither the old nor the new key is in the error", async () => {
    // Answers every request 401 with the bearer token in its message, as a careless proxy might.
    const echo: Server = createServer((req, res) => {
      res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: `invalid key ${req.headers.authorization ?? ""}` } }));
    });
    await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
    const secret = await rotatingSecret("sk-old-quoted");
    const vllm = new VllmClient({ baseUrl: `http://127.0.0.1:${(echo.address() as AddressInfo).port}`, model: MODEL, timeoutMs: 5_000, apiKey: secret.holder });
    open.push({ close: () => vllm.close().then(() => new Promise<void>((r) => echo.close(() => r()))).then(() => secret.close()) });
    secret.rotate("sk-new-quoted");
    const err = await failure(vllm.generate({ prompt: "x", params: {} }));
    assert.ok(err instanceof ProviderTerminalError);
    assert.equal(err.code, "PROVIDER_AUTH");
    assert.match(err.message, /invalid key Bearer \[redacted\]/);
    for (const key of ["sk-old-quoted", "sk-new-quoted"]) assert.ok(!shown(err).includes(key), shown(err));
    assert.equal(secret.calls(), 2, "the retry's 401 does not refresh again");
  });
});

describe("toProviderError", () => {
  const ctx = { provider: "vllm", operation: "chat", now: Date.parse("2025-01-01T00:00:00Z") };
  const status = (statusCode: number, body = "", headers: Record<string, string> = {}) =>
    toProviderError({ kind: "status", statusCode, headers, body }, ctx);

  test("status table", () => {
    const table: Array<[number, string, boolean]> = [
      [400, "PROVIDER_BAD_REQUEST", false],
      [422, "PROVIDER_BAD_REQUEST", false],
      [413, "PROVIDER_BAD_REQUEST", false],
      [401, "PROVIDER_AUTH", false],
      [403, "PROVIDER_AUTH", false],
      [404, "PROVIDER_NOT_FOUND", false],
      [408, "PROVIDER_UNAVAILABLE", true],
      [409, "PROVIDER_UNAVAILABLE", true],
      [425, "PROVIDER_UNAVAILABLE", true],
      [429, "PROVIDER_OVERLOADED", true],
      [500, "PROVIDER_UNAVAILABLE", true],
      [502, "PROVIDER_UNAVAILABLE", true],
      [503, "PROVIDER_OVERLOADED", true],
      [504, "PROVIDER_UNAVAILABLE", true],
      [507, "PROVIDER_UNAVAILABLE", true],
      [501, "PROVIDER_BAD_RESPONSE", false],
      [302, "PROVIDER_BAD_RESPONSE", false],
    ];
    for (const [code, expected, retryable] of table) {
      const err = status(code);
      assert.equal(err.code, expected, `HTTP ${code}`);
      assert.equal(err.retryable, retryable, `HTTP ${code}`);
      assert.equal(err.statusCode, code);
      assert.equal(err.provider, "vllm");
    }
  });

  test("error bodies: vLLM, OpenAI, FastAPI, text; truncated; secrets redacted", () => {
    assert.match(status(400, JSON.stringify({ object: "error", message: "too long", code: 400 })).message, /: too long$/);
    assert.match(status(400, JSON.stringify({ error: { message: "bad temp", type: "x" } })).message, /: bad temp$/);
    assert.match(status(422, JSON.stringify({ detail: [{ loc: ["body"], msg: "field required" }, { msg: "also" }] })).message, /field required; also$/);
    assert.match(status(502, "<html>Bad Gateway</html>").message, /<html>Bad Gateway<\/html>$/);
    const long = status(400, JSON.stringify({ message: "x".repeat(5_000) }));
    assert.ok(long.message.length < 400, `${long.message.length} chars`);
    const leaked = toProviderError({ kind: "status", statusCode: 401, headers: {}, body: "bad key sk-abc123" }, { ...ctx, secrets: ["sk-abc123"] });
    assert.ok(!leaked.message.includes("sk-abc123"));
    assert.match(leaked.message, /\[redacted\]/);
  });

  test("Retry-After: seconds, HTTP date, garbage", () => {
    assert.equal(status(503, "", { "retry-after": "7" }).retryAfterMs, 7_000);
    assert.equal(status(429, "", { "retry-after": "Wed, 01 Jan 2025 00:00:30 GMT" }).retryAfterMs, 30_000);
    assert.equal(status(429, "", { "retry-after": "soon" }).retryAfterMs, undefined);
    assert.equal(status(429).retryAfterMs, undefined);
    assert.equal(parseRetryAfter("1.5", 0), 1_500);
    assert.equal(parseRetryAfter("Tue, 31 Dec 2024 00:00:00 GMT", ctx.now), 0, "a date in the past means now");
  });

  test("network errors by code, through causes and AggregateError", () => {
    const coded = (code: string) => Object.assign(new Error(code), { code });
    const net = (error: unknown) => toProviderError({ kind: "network", error }, ctx);
    assert.equal(net(coded("ECONNREFUSED")).code, "PROVIDER_CONNECTION");
    assert.equal(net(coded("UND_ERR_SOCKET")).code, "PROVIDER_CONNECTION");
    assert.equal(net(new Error("wrapped", { cause: coded("ECONNRESET") })).code, "PROVIDER_CONNECTION");
    assert.equal(net(new AggregateError([coded("ENETUNREACH"), coded("ECONNREFUSED")])).code, "PROVIDER_CONNECTION");
    assert.equal(net(coded("UND_ERR_HEADERS_TIMEOUT")).code, "PROVIDER_TIMEOUT");
    assert.equal(net(coded("HPE_INVALID_CONSTANT")).code, "PROVIDER_BAD_RESPONSE");
    assert.equal(net(coded("UND_ERR_INVALID_ARG")).retryable, false);
    const unknown = net(new Error("???"));
    assert.equal(unknown.code, "PROVIDER_UNAVAILABLE");
    assert.equal(unknown.retryable, true);
    assert.equal(unknown.statusCode, undefined);
  });

  test("malformed 200 → terminal PROVIDER_BAD_RESPONSE", () => {
    const err = toProviderError({ kind: "bad-response", statusCode: 200, detail: "no choices array" }, ctx);
    assert.ok(err instanceof ProviderTerminalError);
    assert.equal(err.code, "PROVIDER_BAD_RESPONSE");
    assert.equal(err.statusCode, 200);
  });
});

describe("malformed 200 bodies from a server", () => {
  let server: Server;
  let vllm: VllmClient;
  let reply = "";
  before(async () => {
    server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" }).end(reply);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    vllm = new VllmClient({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, model: MODEL, timeoutMs: 5_000 });
  });
  after(async () => {
    await vllm.close();
    await new Promise<void>((r) => server.close(() => r()));
  });

  for (const [name, body] of [
    ["bad JSON", "{not json"],
    ["no choices", JSON.stringify({ model: MODEL, usage: {} })],
    ["too few choices", JSON.stringify({ choices: [{ index: 0, text: "a", finish_reason: "stop" }] })],
    ["repeated index", JSON.stringify({ choices: [{ index: 0, text: "a" }, { index: 0, text: "b" }] })],
  ] as const) {
    test(name, async () => {
      reply = body;
      const err = await failure(vllm.completeBatch(["p", "q"], {}));
      assert.ok(err instanceof ProviderTerminalError, String(err));
      assert.equal(err.code, "PROVIDER_BAD_RESPONSE");
      assert.equal(err.statusCode, 200);
    });
  }

  test("choices out of order are put back in index order; a missing usage counts zero", async () => {
    reply = JSON.stringify({ choices: [{ index: 1, text: "second", finish_reason: "length" }, { index: 0, text: "first", finish_reason: "stop" }] });
    const [a, b] = await vllm.completeBatch(["p", "q"], {});
    assert.equal(a?.text, "first");
    assert.equal(b?.text, "second");
    assert.equal(a?.model, MODEL);
    assert.equal(a?.completionTokens, 0);
  });

  test("exact per-choice counts from token_ids when the server returns them", async () => {
    reply = JSON.stringify({
      model: MODEL,
      choices: [
        { index: 0, text: "a b", finish_reason: "stop", token_ids: [1, 2], prompt_token_ids: [9] },
        { index: 1, text: "c", finish_reason: "stop", token_ids: [3], prompt_token_ids: [8, 7, 6] },
      ],
      usage: { prompt_tokens: 4, completion_tokens: 3 },
    });
    const out = await vllm.completeBatch(["p", "q"], {});
    assert.deepEqual(out.map((c) => [c.promptTokens, c.completionTokens]), [[1, 2], [3, 1]]);
  });
});

describe("request id", () => {
  let server: Server;
  let vllm: VllmClient;
  /** What the server saw per request: path and X-Request-Id (undefined when absent). */
  const seen: { path: string | undefined; requestId: string | string[] | undefined }[] = [];
  before(async () => {
    server = createServer((req, res) => {
      seen.push({ path: req.url, requestId: req.headers["x-request-id"] });
      res.writeHead(200, { "content-type": "application/json" });
      if (req.url === "/health") return res.end();
      const chat = req.url === "/v1/chat/completions";
      res.end(JSON.stringify({ model: MODEL, choices: [chat ? { index: 0, message: { content: "hi" } } : { index: 0, text: "hi" }] }));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    vllm = new VllmClient({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, model: MODEL, timeoutMs: 5_000 });
  });
  after(async () => {
    await vllm.close();
    await new Promise<void>((r) => server.close(() => r()));
  });

  test("sent as X-Request-Id on chat and completion calls, and only on them", async () => {
    seen.length = 0;
    await vllm.generate({ messages: [{ role: "user", content: "q" }], params: {}, requestId: "job-chat-1" });
    await vllm.generate({ prompt: "q", params: {}, requestId: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b" });
    await vllm.health();
    assert.deepEqual(seen, [
      { path: "/v1/chat/completions", requestId: "job-chat-1" },
      { path: "/v1/completions", requestId: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b" },
      { path: "/health", requestId: undefined },
    ]);
  });

  test("no header without an id; an id that cannot travel in a header is left out, the call still made", async () => {
    seen.length = 0;
    await vllm.generate({ prompt: "q", params: {} });
    const c = await vllm.generate({ prompt: "q", params: {}, requestId: "bad\r\nX-Injected: 1" });
    await vllm.generate({ prompt: "q", params: {}, requestId: "naïve" });
    assert.equal(c.text, "hi");
    assert.deepEqual(seen.map((s) => s.requestId), [undefined, undefined, undefined]);
  });
});

describe("metrics parsing", () => {
  const page = [
    "# HELP vllm:num_requests_running Number of requests in model execution batches.",
    "# TYPE vllm:num_requests_running gauge",
    'vllm:num_requests_running{engine="0",model_name="m"} 3.0',
    'vllm:num_requests_running{engine="1",model_name="m"} 4.0',
    'vllm:num_requests_waiting{engine="0",model_name="m"} 10.0',
    'vllm:num_requests_waiting{engine="1",model_name="m \\"quoted\\", {braces}"} 2.0 1700000000000',
    'vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25',
    'vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.75',
    'vllm:e2e_request_latency_seconds_bucket{le="+Inf",model_name="m"} 12.0',
    "vllm:odd_gauge -Inf",
    "garbage line {{{",
  ].join("\n");

  test("sums running/waiting across label sets; KV use of the fullest engine", () => {
    assert.deepEqual(readVllmLoad(page), { running: 7, waiting: 12, kvCacheUsage: 0.75 });
  });

  test("labels with escapes and braces, +Inf, unparsable lines dropped", () => {
    const samples = parsePrometheusText(page);
    const quoted = samples.find((s) => s.labels.engine === "1" && s.name === "vllm:num_requests_waiting");
    assert.equal(quoted?.labels.model_name, 'm "quoted", {braces}');
    assert.equal(samples.find((s) => s.name.endsWith("_bucket"))?.labels.le, "+Inf");
    assert.equal(samples.find((s) => s.name === "vllm:odd_gauge")?.value, -Infinity);
    assert.equal(samples.length, 8);
  });

  test("undefined without vLLM's gauges; the pre-0.12 KV gauge is read", () => {
    assert.equal(readVllmLoad("<html>hello</html>"), undefined);
    assert.equal(readVllmLoad("process_cpu_seconds_total 3"), undefined);
    const old = "vllm:num_requests_running 1\nvllm:num_requests_waiting 0\nvllm:gpu_cache_usage_perc 0.5\n";
    assert.deepEqual(readVllmLoad(old), { running: 1, waiting: 0, kvCacheUsage: 0.5 });
    assert.deepEqual(readVllmLoad("vllm:num_requests_running 1\nvllm:num_requests_waiting 2"), { running: 1, waiting: 2 });
  });
});

describe("apportion and CallDeadline", () => {
  test("apportion keeps the total", () => {
    assert.deepEqual(apportion(10, [1, 1, 1]), [4, 3, 3]);
    assert.deepEqual(apportion(7, [0, 0]), [4, 3]);
    assert.deepEqual(apportion(100, [1, 3]), [25, 75]);
    assert.deepEqual(apportion(5, []), []);
  });

  test("the deadline leaves no listener on the caller's signal", async () => {
    const caller = new AbortController();
    for (let i = 0; i < 100; i++) new CallDeadline(60_000, caller.signal).dispose();
    assert.equal(getEventListeners(caller.signal, "abort").length, 0);
    const d = new CallDeadline(20, caller.signal);
    await new Promise((r) => d.signal.addEventListener("abort", r, { once: true }));
    assert.equal(d.timedOut, true);
    assert.equal(d.callerAborted, false);
    caller.abort();
    assert.equal(d.timedOut, true, "the first cause wins");
    d.dispose();
  });
});
