/**
 * The simulator's Gemini API over raw HTTP: Google's response and error shapes, determinism, authentication as Google
 * answers it, request validation, Gemini's failure injection, disconnects freeing the engine, and its options.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError } from "../shared/errors.ts";
import {
  parseSimulatorOptions,
  simulatorHelp,
  startVllmSimulator,
  type RunningSimulator,
  type SimulatorOptions,
} from "../scripts/simulators/vllm/server.ts";
import { estimateChatTokens } from "../scripts/simulators/vllm/tokens.ts";

const MODEL = "gemini-2.5-flash";
const KEY = "AIzaSy-simulator-key";
const GENERATE = `/v1beta/models/${MODEL}:generateContent`;

async function withSim<T>(options: Partial<SimulatorOptions>, body: (sim: RunningSimulator) => Promise<T>): Promise<T> {
  const sim = await startVllmSimulator({ port: 0, profile: "instant", seed: 3, geminiApiKey: KEY, ...options });
  try {
    return await body(sim);
  } finally {
    await sim.close();
  }
}

interface Reply {
  status: number;
  json: any;
  headers: Headers;
}

async function call(sim: RunningSimulator, path: string, body?: unknown, headers: Record<string, string> = { "x-goog-api-key": KEY }): Promise<Reply> {
  const init: RequestInit = body === undefined ? { headers } : { method: "POST", headers: { ...headers, "content-type": "application/json" }, body: JSON.stringify(body) };
  const res = await fetch(`${sim.url}${path}`, init);
  const text = await res.text();
  return { status: res.status, json: text === "" ? undefined : JSON.parse(text), headers: res.headers };
}

/** The server is gone: a pooled keep-alive socket may first report "other side closed"; a new connection is refused. */
async function assertRefused(attempt: () => Promise<unknown>): Promise<void> {
  const codeOf = () => attempt().then(() => "answered", (err: { cause?: { code?: string } }) => err.cause?.code ?? "failed");
  const first = await codeOf();
  assert.ok(first === "ECONNREFUSED" || first === "UND_ERR_SOCKET", first);
  if (first !== "ECONNREFUSED") assert.equal(await codeOf(), "ECONNREFUSED");
}

const ask = (text: string, generationConfig: object = {}) => ({ contents: [{ role: "user", parts: [{ text }] }], generationConfig });
const words = (text: string) => text.split(" ").filter(Boolean).length;

function assertGoogleError(reply: Reply, code: number, status: string): void {
  assert.equal(reply.status, code);
  assert.deepEqual(Object.keys(reply.json), ["error"]);
  assert.equal(reply.json.error.code, code);
  assert.equal(reply.json.error.status, status);
  assert.equal(typeof reply.json.error.message, "string");
}

test("generateContent has Gemini's shape; usage adds up; the same request gets the same answer", async () => {
  await withSim({ earlyStopRate: 0.5 }, async (sim) => {
    const r = await call(sim, GENERATE, ask("Summarise the queue design.", { maxOutputTokens: 16, seed: 1 }));
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type") ?? "", /^application\/json/);
    assert.deepEqual(Object.keys(r.json).sort(), ["candidates", "modelVersion", "responseId", "usageMetadata"]);
    const [candidate] = r.json.candidates;
    assert.equal(r.json.candidates.length, 1);
    assert.equal(candidate.index, 0);
    assert.equal(candidate.content.role, "model");
    const text: string = candidate.content.parts.map((p: { text: string }) => p.text).join("");
    const u = r.json.usageMetadata;
    assert.equal(u.promptTokenCount, estimateChatTokens(["Summarise the queue design."]));
    assert.equal(u.candidatesTokenCount, words(text));
    assert.equal(u.totalTokenCount, u.promptTokenCount + u.candidatesTokenCount);
    assert.equal(u.thoughtsTokenCount, undefined, "Google leaves zero counts out");
    assert.ok(u.candidatesTokenCount <= 16);
    assert.equal(candidate.finishReason, u.candidatesTokenCount === 16 ? "MAX_TOKENS" : "STOP");
    assert.equal(r.json.modelVersion, MODEL);
    const again = await call(sim, GENERATE, ask("Summarise the queue design.", { maxOutputTokens: 16, seed: 1 }));
    assert.deepEqual(again.json.candidates, r.json.candidates);
    assert.notEqual(again.json.responseId, r.json.responseId);
  });
});

test("thinking tokens come out of maxOutputTokens and are reported apart", async () => {
  await withSim({ geminiThinkingTokens: 4, earlyStopRate: 0 }, async (sim) => {
    const r = await call(sim, GENERATE, ask("think", { maxOutputTokens: 10 }));
    const u = r.json.usageMetadata;
    assert.equal(u.thoughtsTokenCount, 4);
    assert.equal(u.candidatesTokenCount, 6);
    assert.equal(u.totalTokenCount, u.promptTokenCount + 10);
    const spent = await call(sim, GENERATE, ask("think", { maxOutputTokens: 4 }));
    assert.equal(spent.json.candidates[0].finishReason, "MAX_TOKENS");
    assert.equal(spent.json.candidates[0].content.parts, undefined);
    assert.equal(spent.json.usageMetadata.candidatesTokenCount, undefined);
  });
});

test("system instruction and snake_case field names are read; they change the answer and the token count", async () => {
  await withSim({}, async (sim) => {
    const plain = await call(sim, GENERATE, ask("hello"));
    const snake = await call(sim, GENERATE, {
      contents: [{ parts: [{ text: "hello" }] }],
      system_instruction: { parts: [{ text: "Answer in French." }] },
      generation_config: { max_output_tokens: 3 },
    });
    assert.equal(snake.status, 200, JSON.stringify(snake.json));
    assert.equal(snake.json.usageMetadata.promptTokenCount, estimateChatTokens(["Answer in French.", "hello"]));
    assert.ok(snake.json.usageMetadata.candidatesTokenCount <= 3);
    assert.notDeepEqual(snake.json.candidates[0].content, plain.json.candidates[0].content);
  });
});

test("models.get, unknown model and unknown path", async () => {
  await withSim({}, async (sim) => {
    const m = await call(sim, `/v1beta/models/${MODEL}`);
    assert.equal(m.status, 200);
    assert.equal(m.json.name, `models/${MODEL}`);
    assert.ok(m.json.supportedGenerationMethods.includes("generateContent"));
    assertGoogleError(await call(sim, "/v1beta/models/gemini-0-nope:generateContent", ask("x")), 404, "NOT_FOUND");
    assertGoogleError(await call(sim, `/v1beta/models/${MODEL}:streamGenerateContent`, ask("x")), 404, "NOT_FOUND");
    assertGoogleError(await call(sim, GENERATE), 404, "NOT_FOUND");
  });
});

test("authentication as Google answers: missing key 403, wrong key 400 API_KEY_INVALID, ?key= accepted", async () => {
  await withSim({}, async (sim) => {
    assertGoogleError(await call(sim, GENERATE, ask("x"), {}), 403, "PERMISSION_DENIED");
    const wrong = await call(sim, GENERATE, ask("x"), { "x-goog-api-key": "nope" });
    assertGoogleError(wrong, 400, "INVALID_ARGUMENT");
    assert.equal(wrong.json.error.details[0].reason, "API_KEY_INVALID");
    assert.equal((await call(sim, `${GENERATE}?key=${KEY}`, ask("x"), {})).status, 200);
    assert.equal((await call(sim, `/v1beta/models/${MODEL}`, undefined, {})).status, 403);
  });
  // No key configured: no check. vLLM's --api-key guards /v1/* only.
  await withSim({ geminiApiKey: undefined, apiKey: "sk-vllm" }, async (sim) => {
    assert.equal((await call(sim, GENERATE, ask("x"), {})).status, 200);
    assert.equal((await call(sim, "/v1/models", undefined, {})).status, 401);
  });
});

test("request validation: unknown fields, empty contents, roles, candidateCount, stop sequences, bad JSON", async () => {
  await withSim({}, async (sim) => {
    const bad = async (body: unknown, pattern: RegExp) => {
      const r = await call(sim, GENERATE, body);
      assertGoogleError(r, 400, "INVALID_ARGUMENT");
      assert.match(r.json.error.message, pattern);
    };
    await bad({ ...ask("x"), systemInstructions: {} }, /Unknown name "systemInstructions"/);
    await bad(ask("x", { maxTokens: 3 }), /Unknown name "generation_config.maxTokens"/);
    await bad({ contents: [] }, /contents is not specified/);
    await bad({ contents: [{ role: "assistant", parts: [{ text: "x" }] }] }, /valid role/);
    await bad({ contents: [{ role: "user", parts: [] }] }, /parts must not be empty/);
    await bad(ask("x", { candidateCount: 2 }), /candidate_count/);
    await bad(ask("x", { stopSequences: ["1", "2", "3", "4", "5", "6"] }), /stop_sequences/);
    await bad(ask("x", { maxOutputTokens: 0 }), /max_output_tokens/);
    const res = await fetch(`${sim.url}${GENERATE}`, { method: "POST", headers: { "x-goog-api-key": KEY }, body: "{nope" });
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as any).error.message, /Invalid JSON payload/);
  });
});

test("429 RESOURCE_EXHAUSTED: the delay in RetryInfo (fractional) and the message, no Retry-After header", async () => {
  await withSim({ faults: { geminiRateLimitRate: 1, geminiRetryDelaySeconds: 45.837906927 } as SimulatorOptions["faults"] }, async (sim) => {
    const r = await call(sim, GENERATE, ask("x"));
    assertGoogleError(r, 429, "RESOURCE_EXHAUSTED");
    assert.equal(r.headers.get("retry-after"), null);
    const types = r.json.error.details.map((d: { "@type": string }) => d["@type"]);
    assert.deepEqual(types, ["type.googleapis.com/google.rpc.QuotaFailure", "type.googleapis.com/google.rpc.RetryInfo"]);
    assert.equal(r.json.error.details[1].retryDelay, "45.837906927s");
    assert.match(r.json.error.details[0].violations[0].quotaId, /PerMinute/);
    assert.match(r.json.error.message, /Please retry in 45\.837906927s/);
    sim.setFaults({ geminiRetryDelaySeconds: 2 });
    assert.equal((await call(sim, GENERATE, ask("x"))).json.error.details[1].retryDelay, "2s");
  });
});

test("per-day quota: a QuotaFailure naming the PerDay quota", async () => {
  await withSim({}, async (sim) => {
    sim.setFaults({ geminiDailyQuotaRate: 1 });
    const r = await call(sim, GENERATE, ask("x"));
    assertGoogleError(r, 429, "RESOURCE_EXHAUSTED");
    const ids = r.json.error.details[0].violations.map((v: { quotaId: string }) => v.quotaId);
    assert.ok(ids.some((id: string) => id.includes("PerDay")), ids.join());
  });
});

test("content filters: SAFETY finish without content, a blocked prompt without candidates, markers for any reason", async () => {
  await withSim({}, async (sim) => {
    sim.setFaults({ geminiSafetyRate: 1 });
    const safety = await call(sim, GENERATE, ask("x"));
    assert.equal(safety.status, 200);
    assert.equal(safety.json.candidates[0].finishReason, "SAFETY");
    assert.equal(safety.json.candidates[0].content.parts, undefined);
    assert.equal(safety.json.candidates[0].safetyRatings[0].blocked, true);
    sim.setFaults({ geminiSafetyRate: 0, geminiPromptBlockRate: 1 });
    const blocked = await call(sim, GENERATE, ask("x"));
    assert.equal(blocked.status, 200);
    assert.equal(blocked.json.candidates, undefined);
    assert.equal(blocked.json.promptFeedback.blockReason, "SAFETY");
    assert.equal(blocked.json.usageMetadata.candidatesTokenCount, undefined);
    sim.setFaults({ geminiPromptBlockRate: 0 });
    assert.equal((await call(sim, GENERATE, ask("x <finish:SPII>"))).json.candidates[0].finishReason, "SPII");
    assert.equal((await call(sim, GENERATE, ask("x <block:BLOCKLIST>"))).json.promptFeedback.blockReason, "BLOCKLIST");
    const other = await call(sim, GENERATE, ask("x <finish:OTHER>"));
    assert.equal(other.json.candidates[0].finishReason, "OTHER");
    assert.ok(other.json.candidates[0].content.parts[0].text.length > 0, "a reason that is not a filter keeps its text");
  });
});

test("generic faults answer in Google's error shape: 503, 500; a dead engine takes the whole process away", async () => {
  await withSim({}, async (sim) => {
    sim.setFaults({ errorRate: 1, errorKinds: [503] });
    assertGoogleError(await call(sim, GENERATE, ask("x")), 503, "UNAVAILABLE");
    sim.setFaults({ errorKinds: [500] });
    assertGoogleError(await call(sim, GENERATE, ask("x")), 500, "INTERNAL");
    // One process serves all three APIs: when vLLM's engine dies and its server exits, the Gemini stand-in goes too.
    await sim.setFaults({ errorRate: 0, engineDead: true });
    await assertRefused(() => call(sim, GENERATE, ask("x")));
  });
});

test("requests are recorded (url, X-Request-Id, body) for tests", async () => {
  await withSim({}, async (sim) => {
    await call(sim, GENERATE, ask("recorded"), { "x-goog-api-key": KEY, "x-request-id": "job-7" });
    const [last] = sim.geminiRequests().slice(-1);
    assert.deepEqual(last, { method: "POST", url: GENERATE, requestId: "job-7", body: ask("recorded") });
  });
});

test("a client that leaves has its sequence aborted in the engine", async () => {
  // The 8B profile at real speed: 400 tokens take seconds, long enough to leave mid-generation.
  await withSim({ profile: "llama-3.1-8b-h100", earlyStopRate: 0 }, async (sim) => {
    const ac = new AbortController();
    const pending = fetch(`${sim.url}${GENERATE}`, {
      method: "POST",
      headers: { "x-goog-api-key": KEY, "content-type": "application/json" },
      body: JSON.stringify(ask("long", { maxOutputTokens: 400 })),
      signal: ac.signal,
    }).catch((err: unknown) => err);
    await sim.engine.whenStats((s) => s.running === 1);
    ac.abort();
    await pending;
    const stats = await sim.engine.whenStats((s) => s.requestsAborted === 1 && s.running === 0);
    assert.equal(stats.requestsServed, 0);
  });
});

test("options: Gemini flags and env parse, bad values are ConfigErrors naming the option, help lists them", () => {
  const o = parseSimulatorOptions(
    ["--gemini-model", "gemini-x", "--gemini-retry-delay-seconds", "1.5", "--gemini-safety-rate=0.25", "--gemini-thinking-tokens", "8"],
    { VLLM_SIM_GEMINI_API_KEY: "k", VLLM_SIM_GEMINI_DAILY_QUOTA_RATE: "0.1" },
  );
  assert.equal(o.geminiModel, "gemini-x");
  assert.equal(o.geminiApiKey, "k");
  assert.equal(o.geminiThinkingTokens, 8);
  assert.equal(o.faults.geminiRetryDelaySeconds, 1.5);
  assert.equal(o.faults.geminiSafetyRate, 0.25);
  assert.equal(o.faults.geminiDailyQuotaRate, 0.1);
  assert.equal(o.faults.geminiRateLimitRate, 0);
  const issues = (f: () => unknown): string => {
    try {
      f();
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.issues.join("\n");
    }
    assert.fail("expected a ConfigError");
  };
  assert.match(issues(() => parseSimulatorOptions(["--gemini-prompt-block-rate", "2"], {})), /geminiPromptBlockRate/);
  assert.match(issues(() => parseSimulatorOptions(["--gemini-model", "a/b"], {})), /geminiModel/);
  assert.match(issues(() => parseSimulatorOptions(["--gemini-thinking-tokens", "-1"], {})), /geminiThinkingTokens/);
  assert.match(issues(() => parseSimulatorOptions(["--gemini-retry-delay-seconds", "-3"], {})), /geminiRetryDelaySeconds/);
  for (const flag of ["--gemini-model", "--gemini-api-key", "--gemini-rate-limit-rate", "--gemini-daily-quota-rate", "--gemini-safety-rate"]) {
    assert.ok(simulatorHelp().includes(flag), flag);
  }
});

test("setFaults validates Gemini faults like startup", async () => {
  await withSim({}, async (sim) => {
    assert.throws(() => sim.setFaults({ geminiRateLimitRate: 1.5 }), ConfigError);
    assert.equal(sim.options.faults.geminiRateLimitRate, 0);
  });
});
