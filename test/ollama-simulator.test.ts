/**
 * The simulator's Ollama API over real HTTP: Ollama's shapes (NDJSON and stream:false, nanosecond durations,
 * counts, done_reason), its errors, the busy 503 at OLLAMA_MAX_QUEUE on the engine vLLM's API shares, failure
 * injection and the options that drive it. Durations are simulated time, so assertions on them hold on a loaded
 * machine.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError } from "../shared/errors.ts";
import { DEFAULT_NUM_CTX, OLLAMA_BUSY_MESSAGE, OLLAMA_SIM_VERSION, OLLAMA_STREAM_CUT_MESSAGE } from "../scripts/simulators/vllm/ollama-api.ts";
import { PROFILES, parseSimulatorOptions, simulatorHelp, startVllmSimulator, type RunningSimulator, type SimulatorOptions } from "../scripts/simulators/vllm/server.ts";
import { estimateChatTokens } from "../scripts/simulators/vllm/tokens.ts";

const TAG = "llama3.1:8b";

async function withSim<T>(options: Partial<SimulatorOptions>, body: (sim: RunningSimulator) => Promise<T>): Promise<T> {
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.01, ...options });
  try {
    return await body(sim);
  } finally {
    await sim.close();
  }
}

interface Raw {
  status: number;
  contentType: string | null;
  text: string;
}

async function post(sim: RunningSimulator, path: string, body: unknown, init: RequestInit = {}): Promise<Raw> {
  const res = await fetch(`${sim.url}${path}`, { method: "POST", body: typeof body === "string" ? body : JSON.stringify(body), ...init });
  return { status: res.status, contentType: res.headers.get("content-type"), text: await res.text() };
}

const lines = (raw: Raw) => raw.text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
const chat = (content: string, extra: object = {}) => ({ model: TAG, messages: [{ role: "user", content }], ...extra });
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

function assertFinal(final: any): void {
  assert.equal(final.done, true);
  assert.ok(["stop", "length"].includes(final.done_reason), final.done_reason);
  for (const k of ["total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count", "eval_duration"]) {
    assert.ok(Number.isInteger(final[k]) && final[k] >= 0, `${k} = ${final[k]}`);
  }
  // The parts add up to the whole (each rounded to the nanosecond on its own).
  const parts = final.load_duration + final.prompt_eval_duration + final.eval_duration;
  assert.ok(Math.abs(parts - final.total_duration) <= 3, `${parts} vs ${final.total_duration}`);
}

test("/api/chat streams Ollama's NDJSON: one chunk per token, then the final chunk with counts and ns durations", async () => {
  await withSim({ seed: 5 }, async (sim) => {
    const raw = await post(sim, "/api/chat", chat("Summarise the queue design in one line.", { options: { num_predict: 12 } }));
    assert.equal(raw.status, 200);
    assert.equal(raw.contentType, "application/x-ndjson");
    const chunks = lines(raw);
    const final = chunks.at(-1);
    const tokens = chunks.slice(0, -1);
    for (const c of chunks) {
      assert.equal(c.model, TAG);
      assert.match(c.created_at, ISO);
      assert.equal(c.message.role, "assistant");
    }
    for (const c of tokens) {
      assert.deepEqual(Object.keys(c), ["model", "created_at", "message", "done"]);
      assert.equal(c.done, false);
    }
    assertFinal(final);
    assert.equal(final.message.content, "");
    assert.equal(final.eval_count, tokens.length);
    assert.ok(final.eval_count >= 1 && final.eval_count <= 12);
    if (final.done_reason === "length") assert.equal(final.eval_count, 12);
    assert.equal(final.prompt_eval_count, estimateChatTokens(["Summarise the queue design in one line."]));
    // Simulated time: every token after the first costs at least one step, and a step at least the weight read.
    const stepNs = PROFILES["llama-3.1-8b-h100"].stepWeightsReadMs * 1e6;
    assert.ok(final.eval_duration >= (final.eval_count - 1) * stepNs, `${final.eval_duration} ns for ${final.eval_count} tokens`);
    assert.ok(final.prompt_eval_duration >= stepNs, "prefill took a step");

    const whole = await post(sim, "/api/chat", chat("Summarise the queue design in one line.", { options: { num_predict: 12 }, stream: false }));
    assert.equal(whole.status, 200);
    const one = JSON.parse(whole.text);
    assertFinal(one);
    assert.equal(one.message.content, tokens.map((c: any) => c.message.content).join(""), "stream:false gives the same text as the stream");
    assert.equal(one.eval_count, final.eval_count);
  });
});

test("/api/generate: `response` pieces, stream:false, system prompt, load-only request, num_ctx truncation", async () => {
  await withSim({ profile: "instant", seed: 2 }, async (sim) => {
    const streamed = lines(await post(sim, "/api/generate", { model: TAG, prompt: "Once upon a time", options: { num_predict: 6, seed: 3 } }));
    const final = streamed.at(-1);
    assertFinal(final);
    assert.equal(final.response, "");
    assert.equal(final.eval_count, streamed.length - 1);
    const text = streamed.slice(0, -1).map((c) => c.response).join("");
    const whole = JSON.parse((await post(sim, "/api/generate", { model: "llama3.1:8b", prompt: "Once upon a time", stream: false, options: { num_predict: 6, seed: 3 } })).text);
    assert.equal(whole.response, text);
    assert.equal(whole.done_reason, final.done_reason);

    const withSystem = JSON.parse((await post(sim, "/api/generate", { model: TAG, system: "Be brief.", prompt: "Hi", stream: false })).text);
    assert.equal(withSystem.prompt_eval_count, estimateChatTokens(["Be brief.", "Hi"]));

    for (const [path, body] of [["/api/generate", { model: TAG }], ["/api/chat", { model: TAG, messages: [] }]] as const) {
      const load = JSON.parse((await post(sim, path, body)).text);
      assert.equal(load.done, true);
      assert.equal(load.done_reason, "load", path);
    }

    const long = "word ".repeat(20_000);
    const cut = JSON.parse((await post(sim, "/api/generate", { model: TAG, prompt: long, stream: false, options: { num_predict: 2 } })).text);
    assert.equal(cut.prompt_eval_count, DEFAULT_NUM_CTX - 1, "cut to the default context");
    const wider = JSON.parse((await post(sim, "/api/generate", { model: TAG, prompt: long, stream: false, options: { num_predict: 2, num_ctx: 65_536 } })).text);
    assert.equal(wider.prompt_eval_count, estimateChatTokens([long]), "num_ctx makes room for it");
  });
});

test("/api/tags, /api/version, unknown routes", async () => {
  await withSim({ profile: "instant", ollamaModel: "qwen2.5:7b" }, async (sim) => {
    const tags = await (await fetch(`${sim.url}/api/tags`)).json();
    assert.equal(tags.models.length, 1);
    const [m] = tags.models;
    assert.equal(m.name, "qwen2.5:7b");
    assert.equal(m.model, "qwen2.5:7b");
    assert.match(m.digest, /^[0-9a-f]{64}$/);
    assert.match(m.modified_at, ISO);
    assert.ok(Number.isInteger(m.size));
    assert.equal(m.details.format, "gguf");
    assert.deepEqual(await (await fetch(`${sim.url}/api/version`)).json(), { version: OLLAMA_SIM_VERSION });
    const missing = await fetch(`${sim.url}/api/nothing`);
    assert.equal(missing.status, 404);
    assert.equal(await missing.text(), "404 page not found");
    // vLLM's API is still there on the same port.
    const models = await (await fetch(`${sim.url}/v1/models`)).json();
    assert.equal(models.data[0].id, sim.options.model);
  });
});

test("errors are Ollama's {error}: unknown tag 404, no model / bad JSON / bad option 400", async () => {
  await withSim({ profile: "instant" }, async (sim) => {
    const cases: Array<[unknown, number, string]> = [
      [chat("x", { model: "mistral:7b" }), 404, 'model "mistral:7b" not found, try pulling it first'],
      [chat("x", { model: "llama3.1" }), 404, 'model "llama3.1" not found, try pulling it first'],
      [{ messages: [] }, 400, "model is required"],
      ["{not json", 400, ""],
      ["", 400, "missing request body"],
      [chat("x", { options: { num_predict: "many" } }), 400, 'option "num_predict" must be an integer'],
      [chat("x", { keep_alive: {} }), 400, "keep_alive"],
    ];
    for (const [body, status, message] of cases) {
      const raw = await post(sim, "/api/chat", body);
      assert.equal(raw.status, status, JSON.stringify(body));
      const json = JSON.parse(raw.text);
      assert.deepEqual(Object.keys(json), ["error"]);
      assert.ok(json.error.startsWith(message), json.error);
    }
    const ok = await post(sim, "/api/chat", chat("x", { model: "llama3.1:8b", keep_alive: -1, stream: false }));
    assert.equal(ok.status, 200);
  });
});

test("503 busy when more than ollamaMaxQueue requests wait, counting vLLM's waiting requests on the shared engine", async () => {
  await withSim({ timeScale: 1, maxNumSeqs: 1, ollamaMaxQueue: 1, requestLog: 10 }, async (sim) => {
    const ac = new AbortController();
    const signal = ac.signal;
    // The one seat goes to a vLLM request, the one waiting place to an Ollama request.
    const vllm = fetch(`${sim.url}/v1/completions`, { method: "POST", body: JSON.stringify({ prompt: "long", max_tokens: 100_000, ignore_eos: true }), signal }).catch(() => undefined);
    await sim.engine.whenStats((s) => s.running === 1);
    const ollama = fetch(`${sim.url}/api/chat`, { method: "POST", body: JSON.stringify(chat("wait", { options: { num_predict: 10 } })), signal }).catch(() => undefined);
    await sim.engine.whenStats((s) => s.waiting === 1);
    const busy = await post(sim, "/api/generate", { model: TAG, prompt: "one more" }, { headers: { "x-request-id": "job-busy" } });
    assert.equal(busy.status, 503);
    assert.deepEqual(JSON.parse(busy.text), { error: OLLAMA_BUSY_MESSAGE });
    assert.deepEqual(
      sim.requestLog().entries.filter((e) => e.requestId === "job-busy").map((e) => [e.status, e.outcome]),
      [[503, "error"]],
    );
    ac.abort();
    await Promise.all([vllm, ollama]);
    const stats = await sim.engine.whenStats((s) => s.requestsAborted === 2);
    assert.equal(stats.running + stats.waiting, 0, "the clients left: both sequences aborted");
  });
});

test("failure injection: mid-stream {error} line, stream:false 500, injected statuses and resets, stalls, dead runner", async () => {
  await withSim({ profile: "instant", requestLog: 10, faults: { ollamaStreamErrorRate: 1 } as SimulatorOptions["faults"] }, async (sim) => {
    const raw = await post(sim, "/api/chat", chat("cut", { options: { num_predict: 10 } }), { headers: { "x-request-id": "job-cut" } });
    assert.equal(raw.status, 200, "the stream had started");
    const chunks = lines(raw);
    assert.deepEqual(chunks.at(-1), { error: OLLAMA_STREAM_CUT_MESSAGE });
    assert.ok(chunks.length >= 2 && chunks.slice(0, -1).every((c) => c.done === false), "some tokens, then the error, never a final chunk");
    assert.deepEqual(sim.requestLog().entries.map((e) => [e.requestId, e.status, e.outcome]), [["job-cut", 200, "error"]]);

    const whole = await post(sim, "/api/chat", chat("cut", { stream: false }));
    assert.equal(whole.status, 500);
    assert.deepEqual(JSON.parse(whole.text), { error: OLLAMA_STREAM_CUT_MESSAGE });

    sim.setFaults({ ollamaStreamErrorRate: 0, errorRate: 1, errorKinds: [503] });
    const injected = await post(sim, "/api/chat", chat("x"));
    assert.equal(injected.status, 503);
    assert.deepEqual(JSON.parse(injected.text), { error: OLLAMA_BUSY_MESSAGE });
    sim.setFaults({ errorKinds: ["reset"] });
    await assert.rejects(post(sim, "/api/chat", chat("x")));
    assert.equal(sim.requestLog().entries.at(-1)?.outcome, "reset");

    sim.setFaults({ errorRate: 0, ollamaRunnerDead: true });
    const dead = await post(sim, "/api/generate", { model: TAG, prompt: "x" });
    assert.equal(dead.status, 500);
    assert.match(JSON.parse(dead.text).error, /llama runner process has terminated/);
    assert.equal((await fetch(`${sim.url}/api/tags`)).status, 200, "the server is up, only its runner is dead");
    assert.throws(() => sim.setFaults({ ollamaStreamErrorRate: 2 }), /ollamaStreamErrorRate/);
  });

  // A stall holds the stream halfway: headers and the first tokens are out, the rest comes stallMs later.
  await withSim({ profile: "instant", faults: { stallRate: 1, stallMs: 60_000 } as SimulatorOptions["faults"] }, async (sim) => {
    const ac = new AbortController();
    const res = await fetch(`${sim.url}/api/chat`, { method: "POST", body: JSON.stringify(chat("stall", { options: { num_predict: 10 } })), signal: ac.signal });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let received = "";
    while (!received.includes("\n")) received += decoder.decode((await reader.read()).value, { stream: true });
    const complete = received.slice(0, received.lastIndexOf("\n")).split("\n");
    assert.ok(complete.every((l) => JSON.parse(l).done === false), "only token chunks before the stall");
    ac.abort();
    await reader.read().catch(() => undefined);
  });
});

test("options: --ollama-model, --ollama-max-queue, --ollama-stream-error-rate; defaults; validation", () => {
  const defaults = parseSimulatorOptions([], {});
  assert.equal(defaults.ollamaModel, TAG);
  assert.equal(defaults.ollamaMaxQueue, 512, "OLLAMA_MAX_QUEUE's default");
  assert.equal(defaults.faults.ollamaStreamErrorRate, 0);
  const o = parseSimulatorOptions(["--ollama-model", "qwen2.5:7b", "--ollama-max-queue=4", "--ollama-stream-error-rate", "0.25"], { VLLM_SIM_PORT: "11434" });
  assert.equal(o.ollamaModel, "qwen2.5:7b");
  assert.equal(o.ollamaMaxQueue, 4);
  assert.equal(o.faults.ollamaStreamErrorRate, 0.25);
  assert.equal(o.port, 11434);
  assert.throws(
    () => parseSimulatorOptions(["--ollama-max-queue", "-1", "--ollama-stream-error-rate", "2"], {}),
    (err: unknown) => err instanceof ConfigError && err.issues.some((i) => i.includes("ollamaMaxQueue")) && err.issues.some((i) => i.includes("ollamaStreamErrorRate")),
  );
  for (const flag of ["--ollama-model", "--ollama-max-queue", "--ollama-stream-error-rate"]) assert.ok(simulatorHelp().includes(flag), flag);
});
