/**
 * A canary in every secret-bearing setting never reaches a worker's output. The real entry point (worker/main.ts)
 * runs at LOG_LEVEL=trace with LOG_BODIES on against the SQS emulator, Postgres, Redis and the vLLM simulator (vLLM
 * and Gemini APIs); jobs succeed, one fails with a provider error that quotes its request, one is poison, one starts
 * at a Gemini that refuses the key; then every byte of stdout and stderr is searched.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, test } from "node:test";
import { Producer } from "../producer/producer.ts";
import { startVllmSimulator } from "../scripts/simulators/vllm/server.ts";
import { startDatadogStandIn } from "../scripts/local/metrics-stand-ins.ts";
import { envSchema } from "../shared/config.ts";
import { schemaScopedUrl } from "../shared/store/pool.ts";
import { queueFixture, REDIS_URL, stopEmulator, storeFixture, until } from "./support/env.ts";

after(() => stopEmulator());

const WORKER_MAIN = new URL("../worker/main.ts", import.meta.url).pathname;
const CANARY = "canary-7f3a9c";
/** Settings whose value is a secret, and the value each gets here (every one carries the canary). */
const SECRET_SETTINGS: Record<string, (base: { pgUrl: string }) => string> = {
  // Postgres trusts local connections: any password works, so this one is really sent and never checked.
  DATABASE_URL: ({ pgUrl }) => pgUrl.replace("postgres://postgres@", `postgres://postgres:${CANARY}-pg@`),
  REDIS_URL: () => REDIS_URL.replace("redis://", `redis://:${CANARY}-redis@`),
  VLLM_API_KEY: () => `${CANARY}-vllm`,
  GEMINI_API_KEY: () => `${CANARY}-gemini`,
  DATADOG_API_KEY: () => `${CANARY}-datadog`,
  FLEET_API_KEY: () => `${CANARY}-fleet-api`,
};
/** Secret settings this test leaves out, and why. */
const NOT_HERE: Record<string, string> = {
  DATABASE_PASSWORD: "one place for the password: DATABASE_URL carries the canary here (test/secrets.test.ts covers this one)",
};

test("every secret-bearing setting in the config schema has a canary here", () => {
  const secretLike = Object.keys(envSchema.shape).filter((k) => /(_KEY|_PASSWORD|_SECRET|_TOKEN)$|^(DATABASE|REDIS)_URL$/.test(k));
  assert.ok(secretLike.length >= 5, secretLike.join());
  for (const k of secretLike) assert.ok(k in SECRET_SETTINGS || k in NOT_HERE, `${k}: give it a canary in this test`);
});

test("a canary in every secret setting appears in no line of a worker's stdout or stderr, through success, failure and poison", async () => {
  const q = await queueFixture();
  const s = await storeFixture();
  const sim = await startVllmSimulator({ port: 0, profile: "instant", seed: 11, apiKey: `${CANARY}-vllm`, geminiApiKey: "the-key-gemini-wants" });
  // Datadog's series go to a local stand-in (never the internet), which checks they carry the canary key.
  const datadog = await startDatadogStandIn({ apiKey: `${CANARY}-datadog` });
  const secrets = Object.fromEntries(
    Object.entries(SECRET_SETTINGS)
      .filter(([k]) => k in envSchema.shape)
      .map(([k, value]) => [k, value({ pgUrl: schemaScopedUrl(s.url, s.schema) })]),
  );
  const env = {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "",
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "1",
    SQS_ENDPOINT: q.endpoint,
    QUEUE_URLS: q.queueUrl,
    SQS_WAIT_TIME_SECONDS: "1",
    VLLM_URL: sim.url,
    GEMINI_URL: sim.url,
    PROVIDER_CHAIN: "vllm,gemini",
    ROUTER_ACCURATE_PROVIDER: "gemini",
    ADAPTIVE_CONCURRENCY: "false",
    LOG_LEVEL: "trace",
    LOG_FORMAT: "json",
    LOG_BODIES: "true",
    DATADOG_API_URL: datadog.endpoint,
    DATADOG_FLUSH_INTERVAL_MS: "1000",
    OPS_PORT: "0",
    OPS_HOST: "127.0.0.1",
    ...secrets,
  };
  const child = spawn(process.execPath, ["--import", "tsx", WORKER_MAIN], { env, stdio: ["ignore", "pipe", "pipe", "ipc"] });
  let output = "";
  child.stdout!.on("data", (b: Buffer) => (output += b.toString("utf8")));
  child.stderr!.on("data", (b: Buffer) => (output += b.toString("utf8")));
  const exited = new Promise<number | null>((res) => child.once("close", (code) => res(code)));
  const killer = setTimeout(() => child.kill("SIGKILL"), 120_000);
  let opsAnswers = "";
  try {
    const opsUrl = await new Promise<string>((res, rej) => {
      child.on("message", (m: { type?: string; opsUrl?: string }) => m.type === "ready" && res(m.opsUrl ?? ""));
      void exited.then((code) => rej(new Error(`worker exited (${code}) before ready:\n${output}`)));
    });
    const producer = new Producer({ queue: q.queue, queueUrl: q.queueUrl });
    const ok = await producer.submitMany([1, 2, 3].map((i) => ({ tenant: "acme", messages: [{ role: "user" as const, content: `hello ${i} from ann@example.com` }], params: { max_tokens: 8 } })));
    // Gemini first (risk high), which refuses the key: the router moves on to vLLM, which answers.
    const refused = await producer.submitMany([{ tenant: "acme", prompt: "hi", risk: "high", params: { max_tokens: 8 } }]);
    // vLLM answers 404 quoting the model name: a terminal failure whose message holds an email.
    const failing = await producer.submitMany([{ tenant: "acme", prompt: "hi", model: "no-such-model-for-bob@example.com", params: { max_tokens: 8 } }]);
    // Poison: not JSON (dead-lettered, its parse error quoting the body), and JSON that is no job (recorded failed).
    await q.queue.sendBatch(q.queueUrl, [
      { id: "p", body: '{"v":1,"id":"poison-0","tenant":"acme","prompt": oops' },
      { id: "q", body: '{"v":1,"id":"poison-1","tenant":"acme","prompt":""}' },
    ]);
    const ids = [...ok.ids, ...refused.ids, ...failing.ids, "poison-1"];
    await until(async () => (await s.store.getMany(ids)).filter((r) => r.status === "succeeded" || r.status === "failed").length === ids.length, "every job ended", 60_000);
    const records = new Map((await s.store.getMany(ids)).map((r) => [r.id, r]));
    assert.equal(records.get(failing.ids[0]!)?.error?.code, "PROVIDER_NOT_FOUND");
    assert.equal(records.get(refused.ids[0]!)?.status, "succeeded");
    assert.equal(records.get("poison-1")?.error?.code, "JOB_INVALID");
    // What an operator's tools read: health (components, last errors) and metrics (labels from error codes, models).
    for (const path of ["/health", "/health/ready", "/metrics"]) opsAnswers += await (await fetch(`${opsUrl}${path}`)).text();
    await until(() => datadog.received.length > 0, "a Datadog flush");
    child.kill("SIGTERM");
    assert.equal(await exited, 0, output);
  } finally {
    clearTimeout(killer);
    child.kill("SIGKILL");
    await sim.close();
    await datadog.close();
    q.queue.close();
    await s.close();
  }
  // The run said what happened (so the search below looked at real lines) ...
  assert.match(output, /"msg":"worker started"/);
  assert.match(output, /"msg":"job failed"/);
  assert.match(output, /"code":"JOB_NOT_JSON".*"msg":"poison message"/);
  assert.match(output, /"msg":"message moved to the DLQ"/);
  assert.match(output, /"msg":"job prompt"/);
  // ... and no secret, nor the personal data in prompts and errors, is in any of it.
  assert.doesNotMatch(output, new RegExp(CANARY), output.split("\n").filter((l) => l.includes(CANARY)).join("\n"));
  assert.doesNotMatch(output, /ann@example\.com|bob@example\.com/);
  assert.match(opsAnswers, /"components"/);
  assert.match(opsAnswers, /fleet_jobs_finished_total/);
  assert.doesNotMatch(opsAnswers, new RegExp(CANARY), "no secret in /health or /metrics");
});
