/**
 * `make demo`: the whole fleet end to end on embedded defaults, from a fresh clone.
 * SQS emulator (in-process, 127.0.0.1) unless SQS_ENDPOINT / QUEUE_URLS point elsewhere; Postgres at 127.0.0.1:5432
 * when reachable, else embedded; Redis when reachable; the vLLM simulator unless VLLM_URL is set. Starts several
 * real worker processes, submits the sample batch, waits for every result by id, prints a summary and one JSON line.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { SingleBar, Presets } from "cli-progress";
import type { JobInput } from "../shared/contract.ts";
import { runCleanup, type CleanupStep } from "../shared/shutdown.ts";
import { SqsQueue } from "../shared/queue/sqs.ts";
import { startEmulator } from "./local/sqs-emulator.ts";
import { resolveDatabase } from "./local/database.ts";
import { JobStore } from "../shared/store/jobs.ts";
import { migrate } from "../shared/store/migrate.ts";
import { createPool } from "../shared/store/pool.ts";
import { ResultsCache } from "../shared/store/results-cache.ts";
import { Producer } from "../producer/producer.ts";
import { ResultReader } from "../producer/results.ts";
import { startVllmSimulator } from "./simulators/vllm/server.ts";
import { redisReachable } from "./fleet/redis-probe.ts";
import { percentile, round } from "./fleet/stats.ts";
import { spawnWorker } from "./fleet/worker-process.ts";

const ROOT = resolve(new URL(".", import.meta.url).pathname, "..");
const WORKERS = Number(process.env.DEMO_WORKERS ?? 3);
const say = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  const cleanup: CleanupStep[] = [];
  try {
    // --- embedded defaults ------------------------------------------------------------------------
    const db = await resolveDatabase({ url: process.env.DATABASE_URL, dataDir: resolve(ROOT, ".data/pg"), log: (m) => say(`  postgres: ${m}`) });
    cleanup.push(() => db.stop());
    say(`store: ${db.kind === "embedded" ? "embedded PostgreSQL (none reachable at 127.0.0.1:5432)" : "PostgreSQL"} `);
    const pool = await createPool({ url: db.url, poolSize: 4 });
    cleanup.push(() => pool.end());
    await migrate(pool);

    const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
    const redisUp = await redisReachable(redisUrl);
    say(`redis: ${redisUp ? "reachable, results also go to the hot path" : "not reachable, running on Postgres alone"}`);

    const realSqs = process.env.SQS_ENDPOINT === undefined && process.env.QUEUE_URLS !== undefined;
    let endpoint = process.env.SQS_ENDPOINT;
    if (endpoint === undefined && !realSqs) {
      const emulator = await startEmulator({ port: 0 });
      cleanup.push(() => emulator.stop());
      endpoint = emulator.endpoint;
    }
    say(`queue: ${realSqs ? "AWS SQS" : `SQS emulator at ${endpoint}`}`);
    const region = process.env.AWS_REGION ?? "us-east-1";
    const queue = new SqsQueue({ region, endpoint });
    cleanup.push(() => queue.close());
    const queueUrl =
      process.env.QUEUE_URLS?.split(",")[0] ??
      (await queue.ensureQueueWithDlq(`demo-${Date.now()}`, { visibilityTimeoutSeconds: 60, maxReceiveCount: 5, waitTimeSeconds: 20 })).queueUrl;

    let vllmUrl = process.env.VLLM_URL;
    if (vllmUrl === undefined) {
      const sim = await startVllmSimulator({ port: 0 });
      cleanup.push(() => sim.close());
      vllmUrl = sim.url;
      say(`vllm: simulator (${sim.options.profile}) at ${vllmUrl}`);
    } else say(`vllm: ${vllmUrl}`);
    // The fallbacks: an Ollama and a Gemini stand-in (the project's simulator speaking their APIs), each its own engine.
    const fallbacks = await startFallbacks(cleanup);

    // --- workers ----------------------------------------------------------------------------------
    const env: Record<string, string> = {
      QUEUE_URLS: queueUrl,
      AWS_REGION: region,
      DATABASE_URL: db.url,
      VLLM_URL: vllmUrl,
      ...fallbacks.env,
      SQS_VISIBILITY_TIMEOUT_SECONDS: "60",
      HEARTBEAT_INTERVAL_MS: "10000",
      LOG_LEVEL: "info",
      // Every demo worker runs its ops server (/health, /health/ready, /metrics) on a free loopback port.
      OPS_PORT: "0",
      OPS_HOST: "127.0.0.1",
      ...(endpoint ? { SQS_ENDPOINT: endpoint } : {}),
      ...(redisUp ? { REDIS_URL: redisUrl } : {}),
      ...(process.env.VLLM_MODEL ? { VLLM_MODEL: process.env.VLLM_MODEL } : {}),
      ...(process.env.AWS_ACCESS_KEY_ID ? { AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? "" } : { AWS_ACCESS_KEY_ID: "demo", AWS_SECRET_ACCESS_KEY: "demo" }),
    };
    const logDir = resolve(ROOT, "out/demo-logs");
    const workers = Array.from({ length: WORKERS }, (_, i) => spawnWorker(`worker-${i + 1}`, env, logDir));
    cleanup.push(async () => {
      for (const w of workers) w.kill("SIGTERM");
      await Promise.all(workers.map((w) => w.exited));
    });
    const ready = await Promise.all(workers.map((w) => w.ready));
    say(`workers: ${WORKERS} processes started (logs in out/demo-logs/)`);
    say(`ops: ${(await Promise.all(ready.map((r) => readiness(r.opsUrl)))).join(", ")}`);

    // --- submit and wait --------------------------------------------------------------------------
    const inputs = readFileSync(resolve(ROOT, "scripts/data/sample-prompts.jsonl"), "utf8")
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => JSON.parse(l) as JobInput);
    const started = Date.now();
    const submitted = await new Producer({ queue, queueUrl }).submitMany(inputs);
    if (submitted.failed.length > 0) throw new Error(`submit refused ${submitted.failed.length} jobs: ${submitted.failed[0]!.message}`);
    say(`submitted ${submitted.ids.length} jobs in ${Date.now() - started} ms`);

    const cache = redisUp ? new ResultsCache({ url: redisUrl, ttlSeconds: 3600 }) : undefined;
    if (cache) cleanup.push(() => cache.close());
    const store = new JobStore(pool);
    const bar = new SingleBar({ format: "results |{bar}| {value}/{total} jobs | {duration}s", hideCursor: true }, Presets.shades_classic);
    bar.start(submitted.ids.length, 0);
    const records = await new ResultReader(store, cache).waitFor(submitted.ids, {
      signal: AbortSignal.timeout(10 * 60_000),
      onProgress: (done) => bar.update(done),
    });
    bar.stop();

    // --- stop workers (drain) and count from the store -------------------------------------------
    for (const w of workers) w.kill("SIGTERM");
    const exits = await Promise.all(workers.map((w) => w.exited));
    const rows = await store.getMany(submitted.ids);
    const succeeded = rows.filter((r) => r.status === "succeeded");
    const failed = rows.filter((r) => r.status !== "succeeded" && r.status !== "queued" && r.status !== "running");
    const { rows: dupRows } = await pool.query<{ n: string }>(
      "SELECT count(*) AS n FROM jobs WHERE id = ANY($1::text[]) AND result_writes > 1",
      [submitted.ids],
    );
    // Ids are the primary key, so a duplicate can only show as a result written more than once.
    const duplicates = Number(dupRows[0]!.n);
    const latencies = succeeded.map((r) => r.finishedAt!.getTime() - r.createdAt.getTime());
    const lastFinish = Math.max(...succeeded.map((r) => r.finishedAt!.getTime()));
    const elapsedS = (lastFinish - started) / 1000;
    const tokens = succeeded.reduce((n, r) => n + (r.usage?.completionTokens ?? 0), 0);
    const providers: Record<string, number> = {};
    for (const r of succeeded) providers[r.provider ?? "unknown"] = (providers[r.provider ?? "unknown"] ?? 0) + 1;
    const costUsd = succeeded.reduce((n, r) => n + (r.costUsd ?? 0), 0);

    say("");
    say(`  ${submitted.ids.length} jobs through ${WORKERS} workers in ${round(elapsedS, 2)} s (${round(succeeded.length / elapsedS)} jobs/s, ${Math.round(tokens / elapsedS)} output tok/s)`);
    say(`  succeeded ${succeeded.length}, failed ${failed.length}, missing ${submitted.ids.length - records.size}, duplicates ${duplicates}`);
    say(`  providers: ${Object.entries(providers).map(([p, n]) => `${p} ${n}`).join(", ")}; cost $${costUsd.toFixed(6)}`);
    say(`  latency submit→result: p50 ${Math.round(percentile(latencies, 50))} ms, p95 ${Math.round(percentile(latencies, 95))} ms`);
    say(`  workers exited with ${exits.map((e) => e.code ?? e.signal).join(", ")} after SIGTERM`);
    say(`  look one up:  npx tsx producer/cli.ts get ${submitted.ids[0]}   (with DATABASE_URL set)`);
    say(
      JSON.stringify({
        submitted: submitted.ids.length,
        succeeded: succeeded.length,
        failed: failed.length,
        duplicates,
        jobs_per_s: round(succeeded.length / elapsedS, 1),
        p50_ms: Math.round(percentile(latencies, 50)),
        p95_ms: Math.round(percentile(latencies, 95)),
        providers,
        cost_usd: round(costUsd, 6),
        store: db.kind,
        queue: realSqs ? "sqs" : "emulator",
      }),
    );
    process.exitCode = succeeded.length === submitted.ids.length && duplicates === 0 ? 0 : 1;
  } finally {
    await runCleanup(cleanup, (err) => process.stderr.write(`cleanup: ${(err as Error).message}\n`));
  }
}

/** "<url>/health (ready)" — the worker's answer to a load balancer's probe. */
async function readiness(opsUrl: string | undefined): Promise<string> {
  if (opsUrl === undefined) return "no ops server";
  const status = await fetch(`${opsUrl}/health/ready`, { signal: AbortSignal.timeout(5_000) }).then(
    async (r) => {
      await r.text();
      return r.status;
    },
    () => undefined,
  );
  return `${opsUrl}/health (${status === undefined ? "no answer" : status === 200 ? "ready" : `not ready: ${status}`})`;
}

/** Ollama and Gemini stand-ins for the chain's fallbacks; OLLAMA_URL / GEMINI_API_KEY in the environment win. */
async function startFallbacks(cleanup: CleanupStep[]): Promise<{ env: Record<string, string> }> {
  const env: Record<string, string> = {};
  if (process.env.OLLAMA_URL === undefined) {
    const ollama = await startVllmSimulator({ port: 0, seed: 11 });
    cleanup.push(() => ollama.close());
    env.OLLAMA_URL = ollama.url;
    say(`ollama: simulator (native /api) at ${ollama.url}`);
  } else env.OLLAMA_URL = process.env.OLLAMA_URL;
  if (process.env.GEMINI_API_KEY === undefined) {
    const key = `demo-${Math.random().toString(36).slice(2)}`;
    const gemini = await startVllmSimulator({ port: 0, seed: 13, geminiApiKey: key });
    cleanup.push(() => gemini.close());
    Object.assign(env, { GEMINI_URL: gemini.url, GEMINI_API_KEY: key });
    say(`gemini: simulator (generateContent) at ${gemini.url}`);
  } else Object.assign(env, { GEMINI_API_KEY: process.env.GEMINI_API_KEY, ...(process.env.GEMINI_URL ? { GEMINI_URL: process.env.GEMINI_URL } : {}) });
  // A demo should show recovery within its run, not after production's 60 s rest.
  env.PROVIDER_BREAKER_COOLDOWN_MS = process.env.PROVIDER_BREAKER_COOLDOWN_MS ?? "5000";
  return { env };
}

main().catch((err: Error) => {
  process.stderr.write(`demo failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
