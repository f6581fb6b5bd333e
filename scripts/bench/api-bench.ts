/**
 * The Results API under load, one run, one JSON line (`node --import tsx scripts/bench/api-bench.ts`):
 *   get       GET /v1/jobs/:id of finished jobs (Redis hot path), autocannon at fixed concurrency
 *   get_pg    the same without Redis (Postgres reads)
 *   wait_hit  GET ?wait=30 of finished jobs: a long poll that finds its answer at once
 *   wake      long polls parked on unfinished jobs, then the jobs finished (100 per statement, as a worker's batch
 *             does): latency from the finishing commit to each answer, p50/p99
 * Local Postgres (its own schema), Redis, the SQS emulator; the API in this process (autocannon's workers share the
 * machine, so absolute figures are this machine's).
 */
import { createRequire } from "node:module";
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { randomBytes } from "node:crypto";
import { loadConfig } from "../../shared/config.ts";
import { buildJob } from "../../shared/contract.ts";
import { SqsQueue } from "../../shared/queue/sqs.ts";
import { JobStore } from "../../shared/store/jobs.ts";
import { migrate } from "../../shared/store/migrate.ts";
import { createPool } from "../../shared/store/pool.ts";
import { ResultsCache } from "../../shared/store/results-cache.ts";
import { createLogger } from "../../shared/logger.ts";
import { ApiKeyStore } from "../../producer/api/api-keys.ts";
import { openApiRuntime } from "../../producer/api/runtime.ts";
import { buildApi } from "../../producer/api/server.ts";
import { startEmulator } from "../local/sqs-emulator.ts";
import { percentile, round } from "../fleet/stats.ts";

interface CannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; average: number };
  non2xx: number;
  errors: number;
}
type Cannon = (o: Record<string, unknown>) => Promise<CannonResult>;
const autocannon = createRequire(import.meta.url)("autocannon") as Cannon;

const { values } = parseArgs({
  options: {
    jobs: { type: "string", default: "2000" },
    connections: { type: "string", default: "64" },
    seconds: { type: "string", default: "10" },
    waiters: { type: "string", default: "1000" },
  },
});
const JOBS = Number(values.jobs);
const CONNECTIONS = Number(values.connections);
const SECONDS = Number(values.seconds);
const WAITERS = Number(values.waiters);
const PG_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

async function main(): Promise<void> {
  const schema = `bench_api_${randomBytes(4).toString("hex")}`;
  const pool = await createPool({ url: PG_URL, poolSize: 10, schema });
  const emulator = await startEmulator({ port: 0 });
  const queue = new SqsQueue({ region: "us-east-1", endpoint: emulator.endpoint });
  const log = createLogger("warn", "api-bench", { format: "json" });
  const out: Record<string, unknown> = { connections: CONNECTIONS, seconds: SECONDS };
  try {
    await migrate(pool);
    const { queueUrl } = await queue.ensureQueueWithDlq(`bench-api-${Date.now()}`, { visibilityTimeoutSeconds: 60, maxReceiveCount: 5, waitTimeSeconds: 1 });
    const store = new JobStore(pool);
    const finished = await seed(store, JOBS, "done");
    const config = { ...loadConfig({}).api, rateLimit: undefined, keyCacheTtlMs: 10_000 };
    const { key } = await new ApiKeyStore(pool).create("bench");
    for (const redis of [true, false]) {
      const cache = redis ? new ResultsCache({ url: REDIS_URL, ttlSeconds: 600, keyPrefix: `${schema}:` }) : undefined;
      if (cache) await cache.putMany(await store.getMany(finished));
      const runtime = await openApiRuntime({ config, log, pool, queue, queueUrl, cache });
      const app = buildApi(runtime.deps);
      const url = await app.listen({ host: "127.0.0.1", port: 0 });
      const paths = (suffix: string) => finished.map((id) => ({ method: "GET", path: `/v1/jobs/${id}${suffix}` }));
      const headers = { authorization: `Bearer ${key}` };
      const run = (suffix: string) => autocannon({ url, connections: CONNECTIONS, duration: SECONDS, headers, requests: paths(suffix) });
      const summary = (r: CannonResult) => ({ req_per_s: round(r.requests.average, 0), p50_ms: r.latency.p50, p99_ms: r.latency.p99, non2xx: r.non2xx, errors: r.errors });
      if (redis) {
        out.get = summary(await run(""));
        out.wait_hit = summary(await run("?wait=30"));
        out.wake = await wakeUps(store, url, key);
      } else {
        out.get_pg = summary(await run(""));
      }
      await app.close();
      await runtime.close();
      await cache?.close();
    }
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } finally {
    await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await pool.end();
    queue.close();
    await emulator.stop();
    const r = new Redis(REDIS_URL);
    const keys = await r.keys(`${schema}:*`);
    if (keys.length > 0) await r.del(...keys);
    r.disconnect();
  }
}

/** `n` jobs claimed by a bench worker; `done`: also completed. Returns their ids. */
async function seed(store: JobStore, n: number, state: "done" | "running"): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 100) {
    const jobs = Array.from({ length: Math.min(100, n - i) }, (_, k) => buildJob({ id: `${state}-${randomBytes(6).toString("hex")}-${i + k}`, tenant: "bench", prompt: "a question" }));
    await store.claim(jobs.map((job) => ({ job, workerId: "bench", leaseMs: 600_000, messageId: `m-${job.id}`, receiveCount: 1 })));
    if (state === "done") await complete(store, jobs.map((j) => j.id));
    ids.push(...jobs.map((j) => j.id));
  }
  return ids;
}

function complete(store: JobStore, ids: string[]) {
  return store.complete(ids.map((id) => ({ id, workerId: "bench", output: "an answer", finishReason: "stop", promptTokens: 3, completionTokens: 2, provider: "vllm", model: "m" })));
}

/** WAITERS long polls on running jobs; each answer's time after the commit that finished its job. */
async function wakeUps(store: JobStore, url: string, key: string): Promise<Record<string, number>> {
  const ids = await seed(store, WAITERS, "running");
  const committedAt = new Map<string, number>();
  const answered = ids.map((id) =>
    fetch(`${url}/v1/jobs/${id}?wait=60`, { headers: { authorization: `Bearer ${key}` } }).then(async (r) => {
      const body = (await r.json()) as { status?: string };
      return { id, at: performance.now(), status: body.status };
    }),
  );
  // Let every request park before the first job ends.
  await new Promise((r) => setTimeout(r, 2_000));
  for (let i = 0; i < ids.length; i += 100) {
    const batch = ids.slice(i, i + 100);
    await complete(store, batch);
    const now = performance.now();
    for (const id of batch) committedAt.set(id, now);
  }
  const answers = await Promise.all(answered);
  const latencies = answers.filter((a) => a.status === "succeeded").map((a) => Math.max(0, a.at - committedAt.get(a.id)!));
  return { waiters: WAITERS, answered_succeeded: latencies.length, p50_ms: round(percentile(latencies, 50), 1), p99_ms: round(percentile(latencies, 99), 1) };
}

main().catch((err: Error) => {
  process.stderr.write(`api bench failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
