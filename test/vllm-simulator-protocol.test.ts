/**
 * The vLLM simulator where a client would see real vLLM's behaviour: SSE streaming, stop strings, prompt token counts
 * after the chat template, prefix caching and its counters, and the V1 metric families with the `engine` label.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { startVllmSimulator, type RunningSimulator, type SimulatorOptions } from "../scripts/simulators/vllm/server.ts";

const MODEL = "meta-llama/Llama-3.1-8B-Instruct";

async function withSim<T>(options: Partial<SimulatorOptions>, body: (sim: RunningSimulator) => Promise<T>): Promise<T> {
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.01, ...options });
  try {
    return await body(sim);
  } finally {
    await sim.close();
  }
}

async function post(sim: RunningSimulator, path: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${sim.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

/** The `data:` payloads of an SSE body, in order ("[DONE]" kept as is). */
async function events(res: Response): Promise<string[]> {
  const text = await res.text();
  assert.ok(text.endsWith("\n\n"), "every event ends with a blank line");
  return text
    .split("\n\n")
    .filter((e) => e !== "")
    .map((e) => {
      assert.ok(e.startsWith("data: "), e);
      return e.slice("data: ".length);
    });
}

/** The server is gone: a pooled keep-alive socket may first report "other side closed"; a new connection is refused. */
async function assertRefused(attempt: () => Promise<unknown>): Promise<void> {
  const codeOf = () => attempt().then(() => "answered", (err: { cause?: { code?: string } }) => err.cause?.code ?? "failed");
  const first = await codeOf();
  assert.ok(first === "ECONNREFUSED" || first === "UND_ERR_SOCKET", first);
  if (first !== "ECONNREFUSED") assert.equal(await codeOf(), "ECONNREFUSED");
}

const stream = (sim: RunningSimulator, path: string, body: object, signal?: AbortSignal) =>
  fetch(`${sim.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...body, stream: true }), signal });

const scrape = async (sim: RunningSimulator) => (await fetch(`${sim.url}/metrics`)).text();

function sample(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`));
  assert.ok(line, `metric ${name} present`);
  return Number(line.slice(line.lastIndexOf(" ") + 1));
}

test("chat stream: role first, one delta per token, finish on the last chunk, usage chunk, [DONE]; same text as stream:false", async () => {
  await withSim({ seed: 4 }, async (sim) => {
    const body = { model: MODEL, messages: [{ role: "user", content: "Tell me about queues." }], max_tokens: 20, seed: 1 };
    const res = await stream(sim, "/v1/chat/completions", { ...body, stream_options: { include_usage: true } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
    const data = await events(res);
    assert.equal(data.at(-1), "[DONE]");
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    const usageChunk = chunks.at(-1);
    assert.deepEqual(usageChunk.choices, [], "the usage chunk has no choices");
    const deltas = chunks.slice(0, -1);
    for (const c of chunks) {
      assert.equal(c.object, "chat.completion.chunk");
      assert.equal(c.model, MODEL);
      assert.equal(c.id, chunks[0].id, "one id for the whole stream");
      assert.match(c.id, /^chatcmpl-/);
    }
    assert.deepEqual(deltas[0].choices[0].delta, { role: "assistant", content: "" });
    const tokens = deltas.slice(1);
    assert.equal(tokens.length, usageChunk.usage.completion_tokens, "one chunk per generated token");
    for (const c of tokens.slice(0, -1)) assert.equal(c.choices[0].finish_reason, null);
    const last = tokens.at(-1).choices[0];
    assert.ok(["stop", "length"].includes(last.finish_reason));
    assert.ok("stop_reason" in last);
    const text = tokens.map((c) => c.choices[0].delta.content).join("");

    const whole = await post(sim, "/v1/chat/completions", body);
    assert.equal(whole.json.choices[0].message.content, text, "the stream carries the same answer");
    assert.equal(whole.json.choices[0].finish_reason, last.finish_reason);
    assert.deepEqual(usageChunk.usage.prompt_tokens, whole.json.usage.prompt_tokens);
    assert.equal(usageChunk.usage.total_tokens, usageChunk.usage.prompt_tokens + usageChunk.usage.completion_tokens);

    const noUsage = (await events(await stream(sim, "/v1/chat/completions", body))).slice(0, -1).map((d) => JSON.parse(d));
    assert.ok(noUsage.every((c) => c.choices.length === 1 && c.usage === undefined), "no usage chunk unless asked for");
    const options = await post(sim, "/v1/chat/completions", { ...body, stream_options: { include_usage: true } });
    assert.equal(options.status, 400, "stream_options without stream");
  });
});

test("completions stream: text pieces per choice index (prompt list × n), the same texts as stream:false", async () => {
  await withSim({ seed: 6 }, async (sim) => {
    const body = { model: MODEL, prompt: ["first", "second"], n: 2, max_tokens: 6, ignore_eos: true };
    const chunks = (await events(await stream(sim, "/v1/completions", body))).slice(0, -1).map((d) => JSON.parse(d));
    assert.ok(chunks.every((c) => c.object === "text_completion" && c.choices.length === 1));
    const texts = ["", "", "", ""];
    for (const c of chunks) texts[c.choices[0].index] += c.choices[0].text;
    assert.equal(chunks.length, 4 * 6);
    const finals = chunks.filter((c) => c.choices[0].finish_reason !== null);
    assert.deepEqual(finals.map((c) => c.choices[0].finish_reason), ["length", "length", "length", "length"]);
    const whole = await post(sim, "/v1/completions", body);
    assert.deepEqual(texts, whole.json.choices.map((c: { text: string }) => c.text));
  });
});

test("an engine death mid-stream is a data: {error} line inside the 200, then [DONE], and the server is gone", async () => {
  await withSim({ timeScale: 1 }, async (sim) => {
    const res = await stream(sim, "/v1/completions", { prompt: "long", max_tokens: 5000, ignore_eos: true });
    assert.equal(res.status, 200);
    const reading = events(res);
    await sim.engine.whenStats((s) => s.generationTokens > 3);
    await sim.setFaults({ engineDead: true });
    const data = await reading;
    assert.equal(data.at(-1), "[DONE]");
    const error = JSON.parse(data.at(-2)!);
    assert.deepEqual(Object.keys(error.error).sort(), ["code", "message", "param", "type"]);
    assert.equal(error.error.code, 500);
    assert.equal(error.error.type, "InternalServerError");
    assert.ok(data.length > 3, "tokens went out before the error");
    await assertRefused(() => fetch(`${sim.url}/health`));
  });
});

test("stop strings end the answer where the text would contain them, deterministically", async () => {
  await withSim({ seed: 9, profile: "instant" }, async (sim) => {
    const base = { model: MODEL, prompt: "tell a long story", max_tokens: 200, ignore_eos: true };
    const full: string = (await post(sim, "/v1/completions", base)).json.choices[0].text;
    const words = full.split(" ");
    const stopWord = words[10]!; // the stop string: the eleventh word (its first occurrence may be earlier)
    const first = full.indexOf(` ${stopWord}`);
    assert.ok(first >= 0);
    const r = await post(sim, "/v1/completions", { ...base, stop: [` ${stopWord}`, "never-generated"] });
    const choice = r.json.choices[0];
    assert.equal(choice.finish_reason, "stop");
    assert.equal(choice.stop_reason, ` ${stopWord}`);
    assert.equal(choice.text, full.slice(0, first), "the text stops before the stop string");
    const tokensThrough = full.slice(0, first + stopWord.length + 1).split(" ").length;
    assert.equal(r.json.usage.completion_tokens, tokensThrough, "the token that completed the stop string is counted");
    assert.deepEqual(await post(sim, "/v1/completions", { ...base, stop: ` ${stopWord}` }).then((x) => x.json.choices[0].text), choice.text, "a string works like a list of one");
    const none = await post(sim, "/v1/completions", { ...base, stop: ["never-generated"] });
    assert.equal(none.json.choices[0].finish_reason, "length");
    assert.equal(none.json.choices[0].stop_reason, null);
    assert.equal((await post(sim, "/v1/completions", { ...base, stop: 3 })).status, 400);
  });
});

test("prompt tokens: Llama 3.1's chat template (system block with dates, per-message headers) and a BOS for text prompts", async () => {
  await withSim({ profile: "instant" }, async (sim) => {
    const tokens = async (path: string, body: object) => (await post(sim, path, { model: MODEL, max_tokens: 1, ...body })).json.usage.prompt_tokens;
    // 26 (BOS, system header, date lines, eot) + 5 (user header, eot) + 2 ("Hello": ≈ 4 characters a token) + 4.
    assert.equal(await tokens("/v1/chat/completions", { messages: [{ role: "user", content: "Hello" }] }), 26 + 5 + 2 + 4);
    assert.equal(await tokens("/v1/chat/completions", { messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hello" }] }), 26 + 3 + 5 + 2 + 4, "the system text joins the system block");
    assert.equal(await tokens("/v1/completions", { prompt: "Hello" }), 1 + 2);
    assert.equal(await tokens("/v1/completions", { prompt: [1, 2, 3] }), 3, "token ids are counted as given");
  });
});

test("prefix caching: a repeated prompt skips prefill for its cached blocks; queries and hits are counted in tokens", async () => {
  await withSim({ timeScale: 0.05 }, async (sim) => {
    const prompt = `${"a shared system prompt about queues. ".repeat(200)}`;
    const ask = (suffix: string) => post(sim, "/v1/completions", { model: MODEL, prompt: prompt + suffix, max_tokens: 1 });
    const before = await scrape(sim);
    const cold = await ask("first question");
    const between = await scrape(sim);
    const warm = await ask("second question");
    const after = await scrape(sim);
    const delta = (a: string, b: string, name: string) => sample(b, name) - sample(a, name);
    const queries = delta(before, after, "vllm:prefix_cache_queries_total");
    const hits = delta(before, after, "vllm:prefix_cache_hits_total");
    assert.equal(queries, cold.json.usage.prompt_tokens + warm.json.usage.prompt_tokens);
    assert.equal(delta(before, between, "vllm:prefix_cache_hits_total"), 0, "the first one found nothing");
    assert.ok(hits > 0.9 * cold.json.usage.prompt_tokens && hits < warm.json.usage.prompt_tokens, `hits ${hits}`);
    assert.equal(hits % 16, 0, "whole blocks");
    // Simulated TTFT (one request each): the second skipped prefill for ~1,900 of its tokens.
    const ttftCold = delta(before, between, "vllm:time_to_first_token_seconds_sum");
    const ttftWarm = delta(between, after, "vllm:time_to_first_token_seconds_sum");
    assert.ok(ttftWarm < ttftCold / 3, `TTFT ${ttftCold} s cold, ${ttftWarm} s warm`);
  });
  await withSim({ timeScale: 0.05, enablePrefixCaching: false }, async (sim) => {
    await post(sim, "/v1/completions", { prompt: "same", max_tokens: 1 });
    await post(sim, "/v1/completions", { prompt: "same", max_tokens: 1 });
    assert.equal(sample(await scrape(sim), "vllm:prefix_cache_queries_total"), 0, "off: nothing is looked up");
  });
});

test("/metrics: V1 families with model_name and engine labels, fed by requests", async () => {
  await withSim({ timeScale: 0.01 }, async (sim) => {
    await post(sim, "/v1/completions", { model: MODEL, prompt: ["one", "two"], max_tokens: 8, ignore_eos: true });
    const text = await scrape(sim);
    for (const name of [
      "vllm:iteration_tokens_total_bucket",
      "vllm:request_prompt_tokens_bucket",
      "vllm:request_generation_tokens_bucket",
      "vllm:request_prefill_time_seconds_bucket",
      "vllm:request_decode_time_seconds_bucket",
      "vllm:request_inference_time_seconds_bucket",
      "vllm:prefix_cache_queries_total",
      "vllm:prefix_cache_hits_total",
      "vllm:num_requests_running",
    ]) {
      const line = text.split("\n").find((l) => l.startsWith(`${name}{`));
      assert.ok(line, name);
      assert.match(line, new RegExp(`model_name="${MODEL}"`));
      assert.match(line, /engine="0"/);
    }
    assert.equal(sample(text, "vllm:request_generation_tokens_sum"), 16);
    assert.equal(sample(text, "vllm:request_generation_tokens_count"), 2);
    assert.equal(sample(text, "vllm:iteration_tokens_total_sum"), 16 + sample(text, "vllm:request_prompt_tokens_sum") - 2, "every token computed once (the last prompt token's step also yields the first output token)");
    assert.ok(sample(text, "vllm:request_decode_time_seconds_sum") > 0);
  });
});
