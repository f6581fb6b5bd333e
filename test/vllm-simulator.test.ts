/**
 * The vLLM simulator over real HTTP: response shapes, determinism, vLLM's errors, queue cap, /metrics, scheduling
 * under load (saturation), failure injection and a clean close. Engine-timing assertions read simulated time from
 * the simulator's own metrics, so they hold however loaded this machine is.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { ConfigError } from "../shared/errors.ts";
import {
  PROFILES,
  parseSimulatorOptions,
  simulatorHelp,
  startVllmSimulator,
  type RunningSimulator,
  type SimulatorOptions,
} from "../scripts/simulators/vllm/server.ts";

const MODEL = "meta-llama/Llama-3.1-8B-Instruct";

async function withSim<T>(options: Partial<SimulatorOptions>, body: (sim: RunningSimulator) => Promise<T>): Promise<T> {
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.01, ...options });
  try {
    return await body(sim);
  } finally {
    await sim.close();
  }
}

async function post(sim: RunningSimulator, path: string, body: unknown): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(`${sim.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
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

const chat = (content: string, extra: object = {}) => ({ model: MODEL, messages: [{ role: "user", content }], ...extra });

/** vLLM's current error body: `{"error": {"message", "type", "param", "code"}}`. */
function assertVllmError(json: any, code: number, type: string): void {
  assert.deepEqual(Object.keys(json), ["error"]);
  assert.deepEqual(Object.keys(json.error).sort(), ["code", "message", "param", "type"]);
  assert.equal(json.error.code, code);
  assert.equal(json.error.type, type);
  assert.equal(json.error.param, null);
  assert.equal(typeof json.error.message, "string");
}

/** One metric sample (first line matching name and optional label text) from Prometheus text. */
function sample(text: string, name: string, labelPart = ""): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(labelPart));
  assert.ok(line, `metric ${name}${labelPart} present`);
  return Number(line.slice(line.lastIndexOf(" ") + 1));
}

const scrape = async (sim: RunningSimulator) => (await fetch(`${sim.url}/metrics`)).text();

test("chat completion, completions with a prompt list, models and health have vLLM's shapes", async () => {
  await withSim({}, async (sim) => {
    assert.match(sim.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const c = await post(sim, "/v1/chat/completions", chat("Summarise the queue design in one line.", { max_tokens: 12 }));
    assert.equal(c.status, 200);
    assert.match(c.json.id, /^chatcmpl-[0-9a-f]{32}$/);
    assert.equal(c.json.object, "chat.completion");
    assert.equal(c.json.model, MODEL);
    assert.ok(Number.isInteger(c.json.created));
    assert.equal(c.json.choices.length, 1);
    const [choice] = c.json.choices;
    assert.equal(choice.index, 0);
    assert.equal(choice.message.role, "assistant");
    assert.ok(choice.message.content.length > 0);
    assert.ok(["stop", "length"].includes(choice.finish_reason));
    const { prompt_tokens, completion_tokens, total_tokens } = c.json.usage;
    assert.ok(prompt_tokens > 0 && completion_tokens >= 1 && completion_tokens <= 12);
    assert.equal(total_tokens, prompt_tokens + completion_tokens);
    assert.equal(choice.message.content.split(" ").length, completion_tokens, "one word per output token");
    if (choice.finish_reason === "length") assert.equal(completion_tokens, 12);

    const prompts = ["first prompt", "second, longer prompt with more words in it", "third"];
    const p = await post(sim, "/v1/completions", { model: MODEL, prompt: prompts, max_tokens: 8, ignore_eos: true });
    assert.equal(p.status, 200);
    assert.match(p.json.id, /^cmpl-/);
    assert.equal(p.json.object, "text_completion");
    assert.deepEqual(p.json.choices.map((x: any) => x.index), [0, 1, 2]);
    for (const x of p.json.choices) {
      assert.equal(x.finish_reason, "length");
      assert.equal(typeof x.text, "string");
    }
    assert.equal(p.json.usage.completion_tokens, 24);
    assert.equal(p.json.usage.prompt_tokens, 3 + 11 + 2 + 3, "≈ 4 characters per token, per prompt, plus a BOS each");
    assert.equal(sim.engine.stats().requestsServed, 4, "each prompt of the list is its own engine request");

    const n = await post(sim, "/v1/completions", { prompt: "n choices", max_tokens: 4, n: 2 });
    assert.deepEqual(n.json.choices.map((x: any) => x.index), [0, 1]);

    const models = await (await fetch(`${sim.url}/v1/models`)).json();
    assert.equal(models.object, "list");
    assert.equal(models.data[0].id, MODEL);
    assert.equal(models.data[0].object, "model");
    assert.equal(models.data[0].owned_by, "vllm");
    assert.equal(models.data[0].max_model_len, sim.options.maxModelLen);

    const health = await fetch(`${sim.url}/health`);
    assert.equal(health.status, 200);
    await health.arrayBuffer();
    const missing = await fetch(`${sim.url}/v2/nothing`);
    assert.equal(missing.status, 404);
    await missing.arrayBuffer();
  });
});

test("same seed and prompt give the same output on any server; prompts and seeds change it", async () => {
  const ask = (sim: RunningSimulator, content: string) =>
    post(sim, "/v1/chat/completions", chat(content, { max_tokens: 40 })).then((r) => [r.json.choices[0].message.content, r.json.choices[0].finish_reason, r.json.usage]);
  const [a1, a2, b, otherSeed] = await withSim({ seed: 42 }, async (one) =>
    withSim({ seed: 42 }, async (two) =>
      withSim({ seed: 43 }, async (three) => [await ask(one, "hello"), await ask(two, "hello"), await ask(one, "goodbye"), await ask(three, "hello")]),
    ),
  );
  assert.deepEqual(a1, a2);
  assert.notDeepEqual(a1, b);
  assert.notDeepEqual(a1, otherSeed);
});

test("over-length requests get vLLM's 400, an unknown model 404, bad bodies 400", async () => {
  await withSim({ maxModelLen: 1000 }, async (sim) => {
    const long = await post(sim, "/v1/completions", { model: MODEL, prompt: "x".repeat(4000) });
    assert.equal(long.status, 400);
    assertVllmError(long.json, 400, "BadRequestError");
    assert.match(long.json.error.message, /maximum context length is 1000 tokens\. However, your request has 1001 input tokens/, "1,000 of text + BOS");

    const tooMany = await post(sim, "/v1/chat/completions", chat("x".repeat(400), { max_tokens: 900 }));
    assert.equal(tooMany.status, 400);
    assertVllmError(tooMany.json, 400, "BadRequestError");
    assert.match(tooMany.json.error.message, /'max_tokens' or 'max_completion_tokens' is too large: 900\. This model's maximum context length is 1000 tokens and your request has 135 input tokens/, "100 of text + the chat template's 35");

    const fits = await post(sim, "/v1/chat/completions", chat("x".repeat(400), { max_tokens: 800 }));
    assert.equal(fits.status, 200);

    const unknown = await post(sim, "/v1/chat/completions", { ...chat("hi"), model: "gpt-nothing" });
    assert.equal(unknown.status, 404);
    assertVllmError(unknown.json, 404, "NotFoundError");
    assert.equal(unknown.json.error.message, "The model `gpt-nothing` does not exist.");

    const noMessages = await post(sim, "/v1/chat/completions", { model: MODEL });
    assert.equal(noMessages.status, 400);
    assertVllmError(noMessages.json, 400, "BadRequestError");
    const zero = await post(sim, "/v1/completions", { prompt: "a", max_tokens: 0 });
    assert.equal(zero.status, 400);
  });
});

test("the waiting-queue cap answers 503; without a cap the queue is unbounded", async () => {
  await withSim({ maxNumSeqs: 1, maxNumQueuedReqs: 2, timeScale: 0.05 }, async (sim) => {
    // Three prompts in one request need three waiting slots at once: over the cap whatever the timing.
    const over = await post(sim, "/v1/completions", { prompt: ["a", "b", "c"], max_tokens: 4 });
    assert.equal(over.status, 503);
    assertVllmError(over.json, 503, "ServiceUnavailableError");
    const two = await post(sim, "/v1/completions", { prompt: ["a", "b"], max_tokens: 4 });
    assert.equal(two.status, 200);
    // A burst against one seat and two queue slots: some are refused, the rest are served.
    const burst = await Promise.all(Array.from({ length: 8 }, (_, i) => post(sim, "/v1/completions", { prompt: `p${i}`, max_tokens: 50, ignore_eos: true })));
    const statuses = burst.map((r) => r.status);
    assert.ok(statuses.includes(503) && statuses.includes(200), `statuses ${statuses}`);
    assert.ok(statuses.every((s) => s === 200 || s === 503));
    assert.ok(sim.engine.stats().peakWaiting <= 2);
  });
  await withSim({ maxNumSeqs: 1 }, async (sim) => {
    const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => post(sim, "/v1/completions", { prompt: `p${i}`, max_tokens: 5 })));
    assert.ok(burst.every((r) => r.status === 200));
    assert.ok(sim.engine.stats().peakWaiting > 1);
  });
});

test("/metrics has vLLM's names and its gauges follow a burst beyond max_num_seqs", async () => {
  // Real time (timeScale 1): 50 steps of ~7 ms per request, so the scrape sees a frozen batch.
  await withSim({ maxNumSeqs: 4, timeScale: 1 }, async (sim) => {
    const initial = await scrape(sim);
    for (const name of [
      "vllm:num_requests_running",
      "vllm:num_requests_waiting",
      "vllm:kv_cache_usage_perc",
      "vllm:prompt_tokens_total",
      "vllm:generation_tokens_total",
      "vllm:request_success_total",
      "vllm:num_preemptions_total",
      "vllm:time_to_first_token_seconds_bucket",
      "vllm:e2e_request_latency_seconds_sum",
      "vllm:request_queue_time_seconds_count",
      "vllm:inter_token_latency_seconds_bucket",
    ]) {
      assert.ok(sample(initial, name, `model_name="${MODEL}"`) >= 0, name);
    }
    const responses = Promise.all(Array.from({ length: 12 }, (_, i) => post(sim, "/v1/completions", { prompt: `burst ${i}`, max_tokens: 50, ignore_eos: true })));
    await sim.engine.whenStats((s) => s.running === 4 && s.waiting === 8);
    const during = await scrape(sim);
    assert.equal(sample(during, "vllm:num_requests_running"), 4);
    assert.equal(sample(during, "vllm:num_requests_waiting"), 8);
    const kv = sample(during, "vllm:kv_cache_usage_perc");
    assert.ok(kv > 0 && kv < 1, `kv usage ${kv}`);
    assert.ok((await responses).every((r) => r.status === 200));
    const after = await scrape(sim);
    assert.equal(sample(after, "vllm:num_requests_running"), 0);
    assert.equal(sample(after, "vllm:num_requests_waiting"), 0);
    assert.equal(sample(after, "vllm:generation_tokens_total"), 600);
    assert.equal(sample(after, "vllm:request_success_total", 'finished_reason="length"'), 12);
    assert.equal(sample(after, "vllm:inter_token_latency_seconds_count"), 12 * 49);
    assert.ok(sample(after, "vllm:request_queue_time_seconds_sum") > 0, "the last eight waited");
    assert.equal(sim.engine.stats().peakRunning, 4);
  });
});

test("saturation: batching raises throughput but it is bounded, and latency climbs with concurrency", async () => {
  await withSim({ timeScale: 0.02 }, async (sim) => {
    // One completions request with a list of prompts: every sequence arrives at the same simulated instant.
    const level = async (concurrency: number) => {
      const before = await scrape(sim);
      const prompt = Array.from({ length: concurrency }, (_, i) => `${concurrency}/${i} ${"lorem ipsum ".repeat(80)}`);
      const r = await post(sim, "/v1/completions", { prompt, max_tokens: 64, ignore_eos: true });
      assert.equal(r.status, 200);
      assert.equal(r.json.choices.length, concurrency);
      const after = await scrape(sim);
      const mean = (name: string) =>
        (sample(after, `${name}_sum`) - sample(before, `${name}_sum`)) / (sample(after, `${name}_count`) - sample(before, `${name}_count`));
      const itl = mean("vllm:inter_token_latency_seconds");
      return { itl, e2e: mean("vllm:e2e_request_latency_seconds"), tokensPerSecond: concurrency / itl };
    };
    const one = await level(1);
    const many = await level(256);
    // ITL alone ≈ overhead + weight read (7.6 ms); at 256 the token compute and KV reads dominate.
    assert.ok(one.itl > 0.006 && one.itl < 0.012, `ITL alone ${one.itl}`);
    assert.ok(many.itl > 2 * one.itl, `ITL ${one.itl} → ${many.itl}`);
    assert.ok(many.e2e > 2 * one.e2e, `e2e ${one.e2e} → ${many.e2e}`);
    assert.ok(many.tokensPerSecond > 20 * one.tokensPerSecond, "batching helps");
    assert.ok(many.tokensPerSecond < 0.5 * 256 * one.tokensPerSecond, "but throughput saturates");
    // Decode-only rate at 256 (NIM publishes ≈ 13k tok/s at 250; calibration.test.ts holds the closed-loop figures).
    assert.ok(many.tokensPerSecond > 9000 && many.tokensPerSecond < 15_000, `8B profile at 256 seqs: ${many.tokensPerSecond} tok/s`);
  });
});

test("KV cache pressure preempts the newest sequences and still completes every request", async () => {
  await withSim({ kvCapacityTokens: 1200, maxModelLen: 600, timeScale: 0.01 }, async (sim) => {
    const runs = Array.from({ length: 6 }, (_, i) => post(sim, "/v1/completions", { prompt: `${i} ${"y".repeat(400)}`, max_tokens: 300, ignore_eos: true }));
    const results = await Promise.all(runs);
    assert.ok(results.every((r) => r.status === 200 && r.json.usage.completion_tokens === 300));
    const stats = sim.engine.stats();
    assert.ok(stats.preemptions > 0, "decode growth overflowed the cache");
    assert.equal(sample(await scrape(sim), "vllm:num_preemptions_total"), stats.preemptions);
    assert.equal(stats.kvUsedTokens, 0);
  });
});

test("failure injection answers the configured statuses, resets, stalls, and a dead engine", async () => {
  await withSim({ faults: { errorRate: 1, errorKinds: [503], stallRate: 0, stallMs: 0, engineDead: false, nulAnswerRate: 0 } }, async (sim) => {
    const r503 = await post(sim, "/v1/completions", { prompt: "a", max_tokens: 2 });
    assert.equal(r503.status, 503);
    assertVllmError(r503.json, 503, "ServiceUnavailableError");

    sim.setFaults({ errorKinds: [429] });
    const r429 = await post(sim, "/v1/chat/completions", chat("a"));
    assert.equal(r429.status, 429);
    assert.equal(r429.headers.get("retry-after"), "1");

    sim.setFaults({ errorKinds: [500, 400] });
    const mixed = await Promise.all(Array.from({ length: 20 }, () => post(sim, "/v1/completions", { prompt: "a", max_tokens: 2 })));
    assert.deepEqual([...new Set(mixed.map((r) => r.status))].sort(), [400, 500]);

    sim.setFaults({ errorKinds: ["reset"] });
    await assert.rejects(post(sim, "/v1/completions", { prompt: "a", max_tokens: 2 }), /fetch failed|socket|other side closed/i);

    sim.setFaults({ errorRate: 0.5, errorKinds: [500] });
    const half = await Promise.all(Array.from({ length: 40 }, () => post(sim, "/v1/completions", { prompt: "a", max_tokens: 2 })));
    const failed = half.filter((r) => r.status === 500).length;
    assert.ok(failed > 5 && failed < 35, `${failed} of 40 failed at rate 0.5`);

    sim.setFaults({ errorRate: 0, stallRate: 1, stallMs: 300 });
    const started = performance.now();
    const stalled = await post(sim, "/v1/completions", { prompt: "a", max_tokens: 2 });
    assert.equal(stalled.status, 200);
    assert.ok(performance.now() - started >= 290, "response held back");

    sim.setFaults({ stallRate: 0 });
    assert.throws(() => sim.setFaults({ errorRate: 2 }), /errorRate/);
  });

  // vLLM's API server exits when its engine dies: in-flight requests get a bare 500, then connections are refused.
  await withSim({ timeScale: 1 }, async (sim) => {
    const inFlight = post(sim, "/v1/completions", { prompt: "long", max_tokens: 5000, ignore_eos: true });
    await sim.engine.whenStats((s) => s.running === 1);
    await sim.setFaults({ engineDead: true });
    const failed = await inFlight;
    assert.equal(failed.status, 500);
    assert.equal(failed.json, undefined, "vLLM's exception handler answers 500 with no body");
    await assertRefused(() => fetch(`${sim.url}/health`));
    await assertRefused(() => post(sim, "/v1/chat/completions", chat("a")));
    await sim.setFaults({ engineDead: false });
    assert.equal((await fetch(`${sim.url}/health`)).status, 200, "restarted on the same port");
    assert.equal((await post(sim, "/v1/chat/completions", chat("a", { max_tokens: 2 }))).status, 200);
  });
});

test("request log: off by default; when on, every generation request's id, interval and outcome, bounded, in-process and over HTTP", async () => {
  await withSim({ profile: "instant" }, async (sim) => {
    await post(sim, "/v1/completions", { prompt: "a", max_tokens: 2 });
    assert.deepEqual(sim.requestLog(), { capacity: 0, recorded: 0, dropped: 0, entries: [] });
    assert.equal((await fetch(`${sim.url}/debug/requests`)).status, 404);
  });
  await withSim({ profile: "instant", requestLog: 3 }, async (sim) => {
    const send = (path: string, body: unknown, id?: string) =>
      fetch(`${sim.url}${path}`, { method: "POST", headers: { "content-type": "application/json", ...(id ? { "x-request-id": id } : {}) }, body: JSON.stringify(body) }).then((r) => r.text());
    const before = performance.timeOrigin + performance.now();
    await send("/v1/completions", { prompt: "a", max_tokens: 2 }, "job-1");
    await send("/v1/chat/completions", chat("b", { max_tokens: 2 }), "job-2");
    await send("/v1/completions", { prompt: "c", max_tokens: 999_999 }, "job-3"); // 400: over max_model_len
    await send("/v1/completions", { prompt: "d", max_tokens: 2 });
    const after = performance.timeOrigin + performance.now();
    const log = sim.requestLog();
    assert.equal(log.capacity, 3);
    assert.equal(log.recorded, 4);
    assert.equal(log.dropped, 1, "the oldest fell out of the ring");
    assert.deepEqual(log.entries.map((e) => [e.requestId, e.outcome, e.status]), [["job-2", "served", 200], ["job-3", "error", 400], [undefined, "served", 200]]);
    for (const e of log.entries) assert.ok(before <= e.startedAt && e.startedAt <= e.endedAt && e.endedAt <= after, JSON.stringify(e));
    const overHttp = await fetch(`${sim.url}/debug/requests`);
    assert.equal(overHttp.status, 200);
    assert.deepEqual(await overHttp.json(), JSON.parse(JSON.stringify(sim.requestLog())));
  });
  await withSim({ timeScale: 1, requestLog: 10, faults: { errorRate: 1, errorKinds: ["reset"], stallRate: 0, stallMs: 0, engineDead: false, nulAnswerRate: 0 } }, async (sim) => {
    await assert.rejects(post(sim, "/v1/completions", { prompt: "a", max_tokens: 2 }));
    sim.setFaults({ errorRate: 0 });
    const controller = new AbortController();
    const leaving = fetch(`${sim.url}/v1/completions`, { method: "POST", headers: { "x-request-id": "job-left" }, body: JSON.stringify({ prompt: "long", max_tokens: 5000, ignore_eos: true }), signal: controller.signal });
    await sim.engine.whenStats((s) => s.running === 1);
    controller.abort();
    await assert.rejects(leaving);
    await sim.engine.whenStats((s) => s.requestsAborted === 1);
    assert.deepEqual(sim.requestLog().entries.map((e) => [e.requestId, e.outcome]), [[undefined, "reset"], ["job-left", "aborted"]]);
  });
});

test("NUL answers: a prompt with <nul> always gets U+0000 in its text, others never unless a rate asks for it", async () => {
  await withSim({ profile: "instant", seed: 3 }, async (sim) => {
    const marked = await post(sim, "/v1/chat/completions", chat("please answer <nul> now", { max_tokens: 8 }));
    const text: string = marked.json.choices[0].message.content;
    assert.equal(marked.status, 200);
    assert.ok(text.includes("\u0000"), JSON.stringify(text));
    assert.equal(text.replace("\u0000", "").split(" ").length, marked.json.usage.completion_tokens, "still one word per token around the byte token");
    assert.deepEqual(sim.expectedTexts("chat", chat("please answer <nul> now", { max_tokens: 8 })), [text]);
    const batch = await post(sim, "/v1/completions", { prompt: ["plain <nul>", "plain"], max_tokens: 8 });
    assert.deepEqual(batch.json.choices.map((c: { text: string }) => c.text.includes("\u0000")), [true, false]);
    const plain = await Promise.all(Array.from({ length: 30 }, (_, i) => post(sim, "/v1/completions", { prompt: `plain ${i}`, max_tokens: 4 })));
    assert.ok(plain.every((r) => r.status === 200 && !r.json.choices[0].text.includes("\u0000")));
    sim.setFaults({ nulAnswerRate: 1 });
    const forced = await post(sim, "/v1/completions", { prompt: "plain 0", max_tokens: 4 });
    assert.ok(forced.json.choices[0].text.includes("\u0000"));
    assert.throws(() => sim.setFaults({ nulAnswerRate: 1.5 }), /nulAnswerRate/);
  });
});

test("expectedTexts: the answer a body would get, without running it", async () => {
  await withSim({ profile: "instant", seed: 5 }, async (sim) => {
    const body = chat("whose answer is this?", { max_tokens: 20 });
    const expected = sim.expectedTexts("chat", body);
    assert.equal(sim.engine.stats().requestsSubmitted, 0);
    const served = await post(sim, "/v1/chat/completions", body);
    assert.deepEqual(expected, [served.json.choices[0].message.content]);
    assert.notDeepEqual(sim.expectedTexts("chat", chat("another question", { max_tokens: 20 })), expected);
    assert.throws(() => sim.expectedTexts("completion", { prompt: 12 }), /prompt/);
  });
});

test("a client that disconnects has its sequences aborted", async () => {
  await withSim({ timeScale: 1 }, async (sim) => {
    const controller = new AbortController();
    const request = fetch(`${sim.url}/v1/completions`, {
      method: "POST",
      body: JSON.stringify({ prompt: "leave early", max_tokens: 5000, ignore_eos: true }),
      signal: controller.signal,
    });
    await sim.engine.whenStats((s) => s.running === 1);
    controller.abort();
    await assert.rejects(request);
    const stats = await sim.engine.whenStats((s) => s.requestsAborted === 1);
    assert.equal(stats.running, 0);
    assert.match(await scrape(sim), /vllm:request_success_total\{[^}]*finished_reason="abort"\} 1/);
  });
});

test("the instant profile answers at once with the same shapes", async () => {
  await withSim({ profile: "instant" }, async (sim) => {
    const r = await post(sim, "/v1/completions", { prompt: ["a", "b"], max_tokens: 16, ignore_eos: true });
    assert.equal(r.status, 200);
    assert.equal(r.json.usage.completion_tokens, 32);
    assert.equal(sim.engine.stats().steps, 0, "no engine clock");
    assert.equal(sample(await scrape(sim), "vllm:generation_tokens_total"), 32);
  });
});

test("close() fails in-flight requests, stops the clock and leaves no handles (the process exits by itself)", async () => {
  const server = fileURLToPath(new URL("../scripts/simulators/vllm/server.ts", import.meta.url));
  const script = `
    const { startVllmSimulator } = await import(${JSON.stringify(server)});
    const sim = await startVllmSimulator({ port: 0, timeScale: 1 });
    const post = (body) => fetch(sim.url + "/v1/completions", { method: "POST", body: JSON.stringify(body) });
    await (await post({ prompt: "warm keep-alive socket", max_tokens: 2 })).text();
    const inFlight = post({ prompt: "never finishes", max_tokens: 100000, ignore_eos: true });
    await sim.engine.whenStats((s) => s.running === 1);
    await sim.close();
    const status = await inFlight.then((r) => r.status, () => "reset");
    const refused = await fetch(sim.url + "/health").then(() => false, () => true);
    console.log(JSON.stringify({ status, refused, stats: sim.engine.stats() }));
  `;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
  clearTimeout(killer);
  assert.equal(code, 0, "exited on its own, before the 20 s kill");
  const result = JSON.parse(out.trim());
  assert.ok(result.status === 500 || result.status === "reset", `in-flight request: ${result.status}`);
  assert.equal(result.refused, true);
  assert.equal(result.stats.running, 0);
  assert.equal(result.stats.requestsFailed, 1);
});

test("options: profile defaults, env under flags, every bad value named at once", () => {
  const o = parseSimulatorOptions(
    ["--profile", "llama-3.1-70b-8xh100", "--max-num-seqs=64", "--error-kinds", "500,reset", "--engine-dead", "--time-scale", "0.5"],
    { VLLM_SIM_MAX_NUM_SEQS: "8", VLLM_SIM_SEED: "9", VLLM_SIM_PORT: "0" },
  );
  assert.equal(o.profile, "llama-3.1-70b-8xh100");
  assert.equal(o.model, PROFILES["llama-3.1-70b-8xh100"].model);
  assert.equal(o.stepWeightsReadMs, PROFILES["llama-3.1-70b-8xh100"].stepWeightsReadMs);
  assert.equal(o.maxNumSeqs, 64, "the flag wins over the env");
  assert.equal(o.seed, 9);
  assert.equal(o.port, 0);
  assert.equal(o.host, "127.0.0.1");
  assert.equal(o.timeScale, 0.5);
  assert.deepEqual(o.faults.errorKinds, [500, "reset"]);
  assert.equal(o.faults.engineDead, true);
  assert.equal(o.requestLog, 0, "request log off by default");
  assert.equal(o.faults.nulAnswerRate, 0, "no random NUL answers by default");
  const logged = parseSimulatorOptions(["--request-log", "20000", "--nul-answer-rate", "0.01"], {});
  assert.equal(logged.requestLog, 20_000);
  assert.equal(logged.faults.nulAnswerRate, 0.01);
  assert.throws(() => parseSimulatorOptions(["--request-log", "-1"], {}), /requestLog/);
  assert.throws(
    () => parseSimulatorOptions(["--max-num-seqs", "many", "--bogus", "1", "--error-rate", "3"], { VLLM_SIM_TIME_SCALE: "fast" }),
    (err: unknown) =>
      err instanceof ConfigError && err.issues.some((i) => i.includes("--max-num-seqs")) && err.issues.some((i) => i.includes("--bogus")) && err.issues.some((i) => i.includes("VLLM_SIM_TIME_SCALE")) &&
      err.issues.some((i) => i.includes("errorRate")),
  );
  assert.throws(() => parseSimulatorOptions(["--max-model-len", "1000000"], {}), /kvCapacityTokens/);
  assert.throws(() => parseSimulatorOptions(["--profile", "gpt-9"], {}), /unknown/);
  for (const flag of ["--port", "--host", "--profile", "--model", "--max-num-seqs", "--kv-capacity-tokens", "--time-scale", "--stall-ms"]) {
    assert.ok(simulatorHelp().includes(flag), flag);
  }
});
