/**
 * The Gemini client against the simulator's Gemini API (real HTTP, real sockets): request and answer mapping,
 * content-filter refusals, Gemini's 429s, auth and secrets, deadlines; plus the pure error classifier.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { inspect } from "node:util";
import { FleetError, ProviderRetryableError, ProviderTerminalError } from "../shared/errors.ts";
import { ContentBlockedError, GeminiClient, completionOf, parseGoogleDuration, toGeminiError } from "../shared/providers/gemini.ts";
import type { GeminiClientOptions } from "../shared/providers/gemini.ts";
import { isAbortError } from "../shared/providers/provider.ts";
import { startVllmSimulator, type FaultOptions, type SimulatorOptions } from "../scripts/simulators/vllm/server.ts";
import { estimateChatTokens } from "../scripts/simulators/vllm/tokens.ts";
import { rotatingSecret } from "./support/rotating-secret.ts";

const MODEL = "gemini-2.5-flash";
const KEY = "AIzaSy-test-secret-key-0123456789";

async function setup(sim: Partial<SimulatorOptions> = {}, client: Partial<GeminiClientOptions> = {}) {
  const server = await startVllmSimulator({ port: 0, profile: "instant", seed: 7, geminiApiKey: KEY, ...sim });
  const gemini = new GeminiClient({ baseUrl: server.url, model: MODEL, apiKey: KEY, timeoutMs: 10_000, ...client });
  return {
    server,
    gemini,
    async close() {
      await gemini.close();
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

const words = (text: string) => text.split(" ").filter(Boolean).length;
const user = (content: string) => ({ messages: [{ role: "user" as const, content }], params: {} });

describe("GeminiClient against the simulator", () => {
  let env: Awaited<ReturnType<typeof setup>>;
  before(async () => {
    env = await setup({ earlyStopRate: 0.5 });
  });
  after(() => env.close());

  test("a prompt: one user content, sampling as generationConfig, text and usage mapped, key only in the header", async () => {
    const prompt = "Say something about queues.";
    const c = await env.gemini.generate({ prompt, params: { max_tokens: 12, temperature: 0.2, top_p: 0.9, stop: ["\n\n"], seed: 5 }, requestId: "job-42" });
    assert.equal(c.provider, "gemini");
    assert.equal(c.model, MODEL);
    assert.ok(["stop", "length"].includes(c.finishReason), c.finishReason);
    assert.equal(c.promptTokens, estimateChatTokens([prompt]));
    assert.equal(c.completionTokens, words(c.text));
    assert.equal(c.thoughtsTokens, 0);
    assert.ok(c.completionTokens >= 1 && c.completionTokens <= 12);
    if (c.finishReason === "length") assert.equal(c.completionTokens, 12);
    const sent = env.server.geminiRequests().at(-1);
    assert.ok(sent);
    assert.equal(sent.url, `/v1beta/models/${MODEL}:generateContent`);
    assert.equal(sent.requestId, "job-42");
    assert.deepEqual(sent.body, {
      contents: [{ role: "user", parts: [{ text: prompt }] }],
      generationConfig: { maxOutputTokens: 12, temperature: 0.2, topP: 0.9, stopSequences: ["\n\n"], seed: 5 },
    });
  });

  test("chat: system messages become systemInstruction, assistant is 'model', turns of one role merge", async () => {
    const messages = [
      { role: "system" as const, content: "You are terse." },
      { role: "user" as const, content: "Hi." },
      { role: "assistant" as const, content: "Hello." },
      { role: "user" as const, content: "Two things:" },
      { role: "user" as const, content: "queues and workers." },
    ];
    const c = await env.gemini.generate({ messages, params: {} });
    assert.equal(c.promptTokens, estimateChatTokens(["You are terse.", "Hi.", "Hello.", "Two things:\nqueues and workers."]));
    assert.deepEqual(env.server.geminiRequests().at(-1)?.body, {
      contents: [
        { role: "user", parts: [{ text: "Hi." }] },
        { role: "model", parts: [{ text: "Hello." }] },
        { role: "user", parts: [{ text: "Two things:" }, { text: "queues and workers." }] },
      ],
      systemInstruction: { parts: [{ text: "You are terse." }] },
      generationConfig: {},
    });
    // The system instruction is part of what the model answers: without it, another answer.
    const without = await env.gemini.generate({ messages: messages.slice(1), params: {} });
    assert.notEqual(without.text, c.text);
  });

  test("a request id that cannot travel in a header is left out, not a failed job", async () => {
    await env.gemini.generate({ ...user("x"), requestId: "jöb with spaces" });
    assert.equal(env.server.geminiRequests().at(-1)?.requestId, undefined);
  });

  test("only system messages, or neither prompt nor messages: terminal without a call", async () => {
    const before = env.server.geminiRequests().length;
    for (const req of [{ messages: [{ role: "system" as const, content: "s" }], params: {} }, { params: {} }]) {
      const err = await failure(env.gemini.generate(req));
      assert.ok(err instanceof ProviderTerminalError);
      assert.equal(err.code, "PROVIDER_BAD_REQUEST");
    }
    assert.equal(env.server.geminiRequests().length, before);
  });

  for (const [reason, code] of [
    ["SAFETY", "PROVIDER_SAFETY_BLOCK"],
    ["RECITATION", "PROVIDER_RECITATION"],
    ["BLOCKLIST", "PROVIDER_BLOCKLIST"],
    ["PROHIBITED_CONTENT", "PROVIDER_PROHIBITED_CONTENT"],
    ["SPII", "PROVIDER_SPII"],
  ] as const) {
    test(`finishReason ${reason} → terminal ${code}, not counted against the provider`, async () => {
      const err = await failure(env.gemini.generate(user(`tell me <finish:${reason}>`)));
      assert.ok(err instanceof ContentBlockedError, String(err));
      assert.ok(err instanceof ProviderTerminalError);
      assert.equal(err.code, code);
      assert.equal(err.retryable, false);
      assert.equal(err.countsAgainstProvider, false);
      assert.equal(err.blockReason, reason);
      assert.equal(err.stage, "answer");
      assert.equal(err.provider, "gemini");
    });
  }

  test("promptFeedback.blockReason with no candidates → terminal PROVIDER_PROMPT_BLOCKED, not counted", async () => {
    const err = await failure(env.gemini.generate(user("tell me <block:PROHIBITED_CONTENT>")));
    assert.ok(err instanceof ContentBlockedError, String(err));
    assert.equal(err.code, "PROVIDER_PROMPT_BLOCKED");
    assert.equal(err.blockReason, "PROHIBITED_CONTENT");
    assert.equal(err.stage, "prompt");
    assert.equal(err.countsAgainstProvider, false);
  });

  test("another finishReason (OTHER) is an answer with that reason, lower-cased", async () => {
    const c = await env.gemini.generate(user("tell me <finish:OTHER>"));
    assert.equal(c.finishReason, "other");
    assert.ok(c.text.length > 0);
  });

  test("unknown model → terminal PROVIDER_NOT_FOUND; an invalid request → PROVIDER_BAD_REQUEST with Google's message", async () => {
    const missing = await failure(env.gemini.generate({ ...user("x"), model: "gemini-0-nope" }));
    assert.ok(missing instanceof ProviderTerminalError);
    assert.equal(missing.code, "PROVIDER_NOT_FOUND");
    assert.equal(missing.statusCode, 404);
    const bad = await failure(env.gemini.generate({ prompt: "x", params: { stop: ["a", "b", "c", "d", "e", "f"] } }));
    assert.ok(bad instanceof ProviderTerminalError);
    assert.equal(bad.code, "PROVIDER_BAD_REQUEST");
    assert.match(bad.message, /stop_sequences/);
    assert.equal((bad as { countsAgainstProvider?: boolean }).countsAgainstProvider, undefined, "only content blocks carry it");
  });

  test("health(): GET models/{model}", async () => {
    assert.equal(await env.gemini.health(), true);
    assert.equal(env.server.geminiRequests().at(-1)?.url, `/v1beta/models/${MODEL}`);
  });
});

describe("GeminiClient: thinking", () => {
  let env: Awaited<ReturnType<typeof setup>>;
  before(async () => {
    env = await setup({ geminiThinkingTokens: 5, earlyStopRate: 0 });
  });
  after(() => env.close());

  test("completionTokens = candidatesTokenCount + thoughtsTokenCount; thoughts also apart", async () => {
    const c = await env.gemini.generate({ prompt: "think first", params: { max_tokens: 12 } });
    assert.equal(c.thoughtsTokens, 5);
    assert.equal(c.completionTokens, words(c.text) + 5);
    assert.equal(c.completionTokens, 12);
    assert.equal(c.finishReason, "length");
  });

  test("a budget spent thinking: MAX_TOKENS with no parts → empty text, length, usage counted", async () => {
    const c = await env.gemini.generate({ prompt: "think first", params: { max_tokens: 3 } });
    assert.equal(c.text, "");
    assert.equal(c.finishReason, "length");
    assert.equal(c.completionTokens, 3);
    assert.equal(c.thoughtsTokens, 3);
  });
});

describe("GeminiClient failures", () => {
  const open: Array<{ close(): Promise<void> }> = [];
  after(async () => {
    for (const o of open) await o.close();
  });
  async function withFaults(faults: Partial<FaultOptions>, client: Partial<GeminiClientOptions> = {}, sim: Partial<SimulatorOptions> = {}) {
    const env = await setup(sim, client);
    env.server.setFaults(faults);
    open.push(env);
    return env;
  }

  test("the fault rates: SAFETY finish and a blocked prompt, both content blocks", async () => {
    const { gemini, server } = await withFaults({ geminiSafetyRate: 1 });
    const answer = await failure(gemini.generate(user("x")));
    assert.ok(answer instanceof ContentBlockedError);
    assert.equal(answer.code, "PROVIDER_SAFETY_BLOCK");
    server.setFaults({ geminiSafetyRate: 0, geminiPromptBlockRate: 1 });
    const prompt = await failure(gemini.generate(user("x")));
    assert.ok(prompt instanceof ContentBlockedError);
    assert.equal(prompt.code, "PROVIDER_PROMPT_BLOCKED");
    assert.equal(prompt.blockReason, "SAFETY");
  });

  for (const [seconds, ms] of [
    [45.837906927, 45_838],
    [2.007, 2_007],
    [2, 2_000],
  ] as const) {
    test(`429 with RetryInfo.retryDelay ${seconds}s (no Retry-After) → PROVIDER_OVERLOADED, retryAfterMs ${ms}`, async () => {
      const { gemini } = await withFaults({ geminiRateLimitRate: 1, geminiRetryDelaySeconds: seconds });
      const err = await failure(gemini.generate(user("x")));
      assert.ok(err instanceof ProviderRetryableError, String(err));
      assert.equal(err.code, "PROVIDER_OVERLOADED");
      assert.equal(err.statusCode, 429);
      assert.equal(err.retryAfterMs, ms);
      assert.match(err.message, /exceeded your current quota/);
    });
  }

  test("429 naming a per-day quota → terminal PROVIDER_QUOTA_EXHAUSTED, though RetryInfo is there too", async () => {
    const { gemini } = await withFaults({ geminiDailyQuotaRate: 1 });
    const err = await failure(gemini.generate(user("x")));
    assert.ok(err instanceof ProviderTerminalError, String(err));
    assert.equal(err.code, "PROVIDER_QUOTA_EXHAUSTED");
    assert.equal(err.statusCode, 429);
    assert.match(err.message, /GenerateRequestsPerDayPerProjectPerModel/);
  });

  for (const [status, code] of [
    [500, "PROVIDER_UNAVAILABLE"],
    [503, "PROVIDER_OVERLOADED"],
    [504, "PROVIDER_UNAVAILABLE"],
  ] as const) {
    test(`HTTP ${status} → retryable ${code}`, async () => {
      const { gemini } = await withFaults({ errorRate: 1, errorKinds: [status] });
      const err = await failure(gemini.generate(user("x")));
      assert.ok(err instanceof ProviderRetryableError, String(err));
      assert.equal(err.code, code);
      assert.equal(err.statusCode, status);
      assert.equal(err.provider, "gemini");
    });
  }

  test("a connection reset → PROVIDER_CONNECTION, and the client keeps working", async () => {
    const { gemini, server } = await withFaults({ errorRate: 1, errorKinds: ["reset"] });
    const err = await failure(gemini.generate(user("x")));
    assert.ok(err instanceof ProviderRetryableError);
    assert.equal(err.code, "PROVIDER_CONNECTION");
    server.setFaults({ errorRate: 0 });
    assert.ok((await gemini.generate(user("x"))).completionTokens >= 1);
  });

  test("a wrong key → PROVIDER_AUTH; the key is nowhere in the error though Google's body quotes it", async () => {
    const wrong = "AIzaSy-wrong-secret-key-987654321";
    const { gemini, server } = await withFaults({}, { apiKey: wrong });
    const err = await failure(gemini.generate(user("x")));
    assert.ok(err instanceof ProviderTerminalError, String(err));
    assert.equal(err.code, "PROVIDER_AUTH");
    assert.equal(err.statusCode, 400);
    assert.match(err.message, /API key not valid/);
    // The simulator echoes the key in a DebugInfo detail, as Google has: the error must not carry the body whole.
    for (const text of [err.message, err.stack ?? "", inspect(err, { depth: 10 }), JSON.stringify(err)]) assert.ok(!text.includes(wrong), text);
    assert.ok(!server.geminiRequests().some((r) => r.url.includes(wrong) || r.url.includes("key=")), "never in the URL");
    assert.equal(await gemini.health(), false);
  });

  test("no key → 403 → PROVIDER_AUTH", async () => {
    const { gemini } = await withFaults({}, { apiKey: "" });
    const err = await failure(gemini.generate(user("x")));
    assert.ok(err instanceof ProviderTerminalError);
    assert.equal(err.code, "PROVIDER_AUTH");
    assert.equal(err.statusCode, 403);
  });

  test("caller abort → AbortError with the caller's reason, not a provider error", async () => {
    const { gemini } = await withFaults({ stallRate: 1, stallMs: 3_000 });
    const ac = new AbortController();
    const pending = gemini.generate(user("x"), ac.signal);
    setTimeout(() => ac.abort(new Error("shutdown")), 100);
    const err = await failure(pending);
    assert.ok(isAbortError(err), String(err));
    assert.ok(!(err instanceof FleetError));
    assert.equal(((err as Error).cause as Error).message, "shutdown");
    const again = await failure(gemini.generate(user("x"), ac.signal));
    assert.ok(isAbortError(again), "an aborted signal rejects without a call");
  });

  test("a stall past timeoutMs → PROVIDER_TIMEOUT", async () => {
    const { gemini } = await withFaults({ stallRate: 1, stallMs: 3_000 }, { timeoutMs: 300 });
    const err = await failure(gemini.generate(user("x")));
    assert.ok(err instanceof ProviderRetryableError);
    assert.equal(err.code, "PROVIDER_TIMEOUT");
  });

  test("close() cuts calls in flight with PROVIDER_CONNECTION and is idempotent", async () => {
    const { gemini } = await withFaults({ stallRate: 1, stallMs: 3_000 });
    const inFlight = failure(gemini.generate(user("x")));
    await Promise.all([gemini.close(), gemini.close()]);
    const err = await inFlight;
    assert.ok(err instanceof ProviderRetryableError, String(err));
    assert.equal(err.code, "PROVIDER_CONNECTION");
  });
});

describe("GeminiClient: a key from Secrets Manager", () => {
  const open: Array<{ close(): Promise<unknown> }> = [];
  after(async () => {
    for (const o of open.splice(0)) await o.close();
  });

  /** A simulator wanting `simKey` and a client whose key is a secret holding `secretValue`. */
  async function keyed(simKey: string, secretValue: string) {
    const secret = await rotatingSecret(secretValue);
    const env = await setup({ geminiApiKey: simKey }, { apiKey: secret.holder });
    open.push({ close: () => env.close().then(() => secret.close()) });
    return { ...env, secret };
  }

  const shown = (err: unknown) => [String(err), (err as Error).stack ?? "", inspect(err, { depth: 10 }), JSON.stringify(err)].join("\n");

  test("rotation: Google's 400 API_KEY_INVALID refreshes the secret once and the retry succeeds; no key in any log line", async () => {
    const { gemini, server, secret } = await keyed("AIzaSy-key-one-0001", "AIzaSy-key-one-0001");
    assert.ok((await gemini.generate(user("before"))).completionTokens >= 1);
    secret.rotate("AIzaSy-key-two-0002");
    server.options.geminiApiKey = "AIzaSy-key-two-0002";
    assert.ok((await gemini.generate(user("after"))).completionTokens >= 1);
    assert.equal(secret.holder.current(), "AIzaSy-key-two-0002");
    assert.equal(secret.calls(), 2, "one fetch at start, one refresh after the auth failure");
    assert.equal(await gemini.health(), true, "later calls send the new key without another refresh");
    assert.equal(secret.calls(), 2);
    for (const line of secret.lines) assert.ok(!line.includes("AIzaSy-key-one") && !line.includes("AIzaSy-key-two"), line);
  });

  test("an auth failure with the secret unchanged: one refresh, PROVIDER_AUTH, the quoted key nowhere; a later rotation is picked up", async () => {
    const { gemini, secret } = await keyed("AIzaSy-right-key-0003", "AIzaSy-stale-key-0004");
    const err = await failure(gemini.generate(user("x")));
    assert.ok(err instanceof ProviderTerminalError, String(err));
    assert.equal(err.code, "PROVIDER_AUTH");
    assert.equal(err.statusCode, 400);
    assert.equal(secret.calls(), 2, "refreshed once");
    // The simulator quotes the key it got in a DebugInfo detail, as Google has.
    assert.ok(!shown(err).includes("AIzaSy-stale-key-0004"), shown(err));
    secret.rotate("AIzaSy-right-key-0003");
    assert.ok((await gemini.generate(user("x"))).completionTokens >= 1);
    assert.equal(secret.calls(), 3);
  });

  test("rotated to a key the server does not know yet: the old and the new key are both kept out of the error", async () => {
    const { gemini, secret } = await keyed("AIzaSy-server-key-0005", "AIzaSy-old-key-0006");
    secret.rotate("AIzaSy-new-key-0007");
    const err = await failure(gemini.generate(user("x")));
    assert.ok(err instanceof ProviderTerminalError, String(err));
    assert.equal(err.code, "PROVIDER_AUTH");
    assert.equal(secret.calls(), 2, "the retry's auth failure does not refresh again");
    for (const key of ["AIzaSy-old-key-0006", "AIzaSy-new-key-0007"]) assert.ok(!shown(err).includes(key), shown(err));
  });
});

describe("malformed 200 bodies", () => {
  let server: Server;
  let gemini: GeminiClient;
  let reply = "";
  before(async () => {
    server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" }).end(reply);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    gemini = new GeminiClient({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, model: MODEL, apiKey: KEY, timeoutMs: 5_000 });
  });
  after(async () => {
    await gemini.close();
    await new Promise<void>((r) => server.close(() => r()));
  });

  for (const [name, body] of [
    ["bad JSON", "{not json"],
    ["no candidates, no block reason", JSON.stringify({ usageMetadata: {} })],
    ["candidates not a list", JSON.stringify({ candidates: {} })],
    ["parts not a list", JSON.stringify({ candidates: [{ content: { parts: "x" }, finishReason: "STOP" }] })],
  ] as const) {
    test(name, async () => {
      reply = body;
      const err = await failure(gemini.generate(user("x")));
      assert.ok(err instanceof ProviderTerminalError, String(err));
      assert.equal(err.code, "PROVIDER_BAD_RESPONSE");
    });
  }
});

describe("Gemini answer and error parsing", () => {
  test("completionOf: thought parts are not the answer; missing counts are 0; modelVersion wins", () => {
    const c = completionOf(
      {
        candidates: [{ content: { parts: [{ text: "pondering", thought: true }, { text: "Hello, " }, { text: "world" }] }, finishReason: "STOP" }],
        usageMetadata: { promptTokenCount: 4 },
        modelVersion: "gemini-2.5-flash-001",
      },
      MODEL,
    );
    assert.deepEqual(c, { text: "Hello, world", finishReason: "stop", promptTokens: 4, completionTokens: 0, thoughtsTokens: 0, model: "gemini-2.5-flash-001", provider: "gemini" });
  });

  const ctx = { provider: "gemini", operation: "generateContent", secrets: [KEY], now: 0 };
  const googleError = (code: number, message: string, details: unknown[] = []) => JSON.stringify({ error: { code, message, status: "X", details } });
  const status = (statusCode: number, body: string, headers: Record<string, string> = {}) => toGeminiError({ kind: "status", statusCode, headers, body }, ctx);

  test("429: RetryInfo, else 'Please retry in' in the message, else Retry-After, else no delay", () => {
    const retryInfo = { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "0.25s" };
    assert.equal(status(429, googleError(429, "busy", [retryInfo])).retryAfterMs, 250);
    assert.equal(status(429, googleError(429, "Quota exceeded. Please retry in 2.5s.")).retryAfterMs, 2_500);
    assert.equal(status(429, googleError(429, "Please retry in 900ms")).retryAfterMs, 900);
    assert.equal(status(429, googleError(429, "busy"), { "retry-after": "3" }).retryAfterMs, 3_000);
    const bare = status(429, "");
    assert.equal(bare.code, "PROVIDER_OVERLOADED");
    assert.equal(bare.retryAfterMs, undefined);
  });

  test("429: a per-minute QuotaFailure is retryable, a per-day one terminal", () => {
    const quota = (quotaId: string) => ({ "@type": "type.googleapis.com/google.rpc.QuotaFailure", violations: [{ quotaId }] });
    assert.equal(status(429, googleError(429, "q", [quota("GenerateRequestsPerMinutePerProjectPerModel-FreeTier")])).code, "PROVIDER_OVERLOADED");
    const daily = status(429, googleError(429, "q", [quota("GenerateRequestsPerDayPerProjectPerModel-FreeTier")]));
    assert.equal(daily.code, "PROVIDER_QUOTA_EXHAUSTED");
    assert.equal(daily.retryable, false);
  });

  test("auth: 401, 403, and 400 with ErrorInfo API_KEY_*; a plain 400 stays BAD_REQUEST; secrets redacted", () => {
    const keyInvalid = { "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "API_KEY_INVALID" };
    assert.equal(status(401, googleError(401, "no")).code, "PROVIDER_AUTH");
    assert.equal(status(403, googleError(403, "no")).code, "PROVIDER_AUTH");
    assert.equal(status(400, googleError(400, "API key expired. Please renew the API key.", [keyInvalid])).code, "PROVIDER_AUTH");
    assert.equal(status(400, googleError(400, "bad field")).code, "PROVIDER_BAD_REQUEST");
    const leaked = status(400, googleError(400, `key ${KEY} is bad`, [keyInvalid]));
    assert.ok(!leaked.message.includes(KEY));
  });

  test("parseGoogleDuration rounds up from the digits, never early", () => {
    assert.equal(parseGoogleDuration("45.837906927s"), 45_838);
    assert.equal(parseGoogleDuration("2.007s"), 2_007);
    assert.equal(parseGoogleDuration("0.000000001s"), 1);
    assert.equal(parseGoogleDuration("60s"), 60_000);
    assert.equal(parseGoogleDuration("0s"), 0);
    for (const bad of ["", "5", "-1s", "1.5m", 7, undefined]) assert.equal(parseGoogleDuration(bad), undefined, String(bad));
  });
});
