/**
 * The local fleet on embedded defaults, shared by `make demo` and `make serve`: Postgres at 127.0.0.1:5432 when
 * reachable, else embedded; Redis when reachable; the SQS emulator (in-process) with a queue and its DLQ unless
 * SQS_ENDPOINT / QUEUE_URLS point elsewhere; the vLLM simulator unless VLLM_URL is set; Ollama and Gemini stand-ins
 * unless OLLAMA_URL / GEMINI_API_KEY are set; then real worker processes (worker/main.ts).
 */
import { resolve } from "node:path";
import type pg from "pg";
import type { CleanupStep } from "../../shared/shutdown.ts";
import { SqsQueue } from "../../shared/queue/sqs.ts";
import { migrate } from "../../shared/store/migrate.ts";
import { createPool } from "../../shared/store/pool.ts";
import { startEmulator } from "./sqs-emulator.ts";
import { resolveDatabase } from "./database.ts";
import { startVllmSimulator } from "../simulators/vllm/server.ts";
import { redisReachable } from "../fleet/redis-probe.ts";
import { spawnWorker, type WorkerProcess } from "../fleet/worker-process.ts";

const ROOT = resolve(new URL(".", import.meta.url).pathname, "../..");

export interface LocalStackOptions {
  /** The environment the user gave (process.env): its settings win over the embedded defaults. */
  env: Record<string, string | undefined>;
  workers: number;
  /** Queue name prefix; a timestamp keeps runs apart on a shared emulator. */
  queuePrefix: string;
  /** Where worker logs go, one file a worker. */
  logDir: string;
  /** Progress lines for a person. */
  say(line: string): void;
  /** Extra worker settings (e.g. OPS_PORT). */
  workerEnv?: Record<string, string>;
}

export interface LocalStack {
  databaseUrl: string;
  storeKind: "embedded" | "external";
  pool: pg.Pool;
  redisUrl?: string;
  /** The emulator's endpoint; undefined against real AWS SQS. */
  endpoint?: string;
  region: string;
  queue: SqsQueue;
  queueUrl: string;
  dlqUrl?: string;
  realSqs: boolean;
  /** Every setting the workers run with (secrets included: never print it). */
  workerEnv: Record<string, string>;
  workers: WorkerProcess[];
  /** Each worker's ops server (health, metrics), in `workers` order. */
  opsUrls: (string | undefined)[];
}

/** Starts every piece, pushing each one's stop onto `cleanup` as it starts: after a failure part-way, run it. */
export async function startLocalStack(o: LocalStackOptions, cleanup: CleanupStep[]): Promise<LocalStack> {
  const { env, say } = o;
  const db = await resolveDatabase({ url: env.DATABASE_URL, dataDir: resolve(ROOT, ".data/pg"), log: (m) => say(`  postgres: ${m}`) });
  cleanup.push(() => db.stop());
  say(`store: ${db.kind === "embedded" ? "embedded PostgreSQL (none reachable at 127.0.0.1:5432)" : "PostgreSQL"} `);
  const pool = await createPool({ url: db.url, poolSize: 4 });
  cleanup.push(() => pool.end());
  await migrate(pool);

  const redisUrl = env.REDIS_URL ?? "redis://127.0.0.1:6379";
  const redisUp = await redisReachable(redisUrl);
  say(`redis: ${redisUp ? "reachable, results also go to the hot path" : "not reachable, running on Postgres alone"}`);

  const realSqs = env.SQS_ENDPOINT === undefined && env.QUEUE_URLS !== undefined;
  let endpoint = env.SQS_ENDPOINT;
  if (endpoint === undefined && !realSqs) {
    const emulator = await startEmulator({ port: 0 });
    cleanup.push(() => emulator.stop());
    endpoint = emulator.endpoint;
  }
  say(`queue: ${realSqs ? "AWS SQS" : `SQS emulator at ${endpoint}`}`);
  const region = env.AWS_REGION ?? "us-east-1";
  const queue = new SqsQueue({ region, endpoint });
  cleanup.push(() => queue.close());
  const given = env.QUEUE_URLS?.split(",")[0];
  const created = given === undefined ? await queue.ensureQueueWithDlq(`${o.queuePrefix}-${Date.now()}`, { visibilityTimeoutSeconds: 60, maxReceiveCount: 5, waitTimeSeconds: 20 }) : undefined;
  const queueUrl = given ?? created!.queueUrl;

  let vllmUrl = env.VLLM_URL;
  if (vllmUrl === undefined) {
    const sim = await startVllmSimulator({ port: 0 });
    cleanup.push(() => sim.close());
    vllmUrl = sim.url;
    say(`vllm: simulator (${sim.options.profile}) at ${vllmUrl}`);
  } else say(`vllm: ${vllmUrl}`);
  const fallbacks = await startFallbacks(env, say, cleanup);

  const workerEnv: Record<string, string> = {
    QUEUE_URLS: queueUrl,
    AWS_REGION: region,
    DATABASE_URL: db.url,
    VLLM_URL: vllmUrl,
    ...fallbacks,
    SQS_VISIBILITY_TIMEOUT_SECONDS: "60",
    HEARTBEAT_INTERVAL_MS: "10000",
    LOG_LEVEL: "info",
    // Every local worker runs its ops server (/health, /health/ready, /metrics) on a free loopback port.
    OPS_PORT: "0",
    OPS_HOST: "127.0.0.1",
    ...(endpoint ? { SQS_ENDPOINT: endpoint } : {}),
    ...(redisUp ? { REDIS_URL: redisUrl } : {}),
    ...(env.VLLM_MODEL ? { VLLM_MODEL: env.VLLM_MODEL } : {}),
    ...(env.AWS_ACCESS_KEY_ID ? { AWS_ACCESS_KEY_ID: env.AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: env.AWS_SECRET_ACCESS_KEY ?? "" } : { AWS_ACCESS_KEY_ID: "demo", AWS_SECRET_ACCESS_KEY: "demo" }),
    ...o.workerEnv,
  };
  const workers = Array.from({ length: o.workers }, (_, i) => spawnWorker(`worker-${i + 1}`, workerEnv, o.logDir));
  cleanup.push(async () => {
    for (const w of workers) w.kill("SIGTERM");
    await Promise.all(workers.map((w) => w.exited));
  });
  const ready = await Promise.all(workers.map((w) => w.ready));
  say(`workers: ${o.workers} processes started (logs in ${o.logDir.replace(`${ROOT}/`, "")}/)`);
  return {
    databaseUrl: db.url,
    storeKind: db.kind === "embedded" ? "embedded" : "external",
    pool,
    redisUrl: redisUp ? redisUrl : undefined,
    endpoint,
    region,
    queue,
    queueUrl,
    dlqUrl: created?.dlqUrl,
    realSqs,
    workerEnv,
    workers,
    opsUrls: ready.map((r) => r.opsUrl),
  };
}

/** Ollama and Gemini stand-ins for the chain's fallbacks; OLLAMA_URL / GEMINI_API_KEY in the environment win. */
async function startFallbacks(env: Record<string, string | undefined>, say: (line: string) => void, cleanup: CleanupStep[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  if (env.OLLAMA_URL === undefined) {
    const ollama = await startVllmSimulator({ port: 0, seed: 11 });
    cleanup.push(() => ollama.close());
    out.OLLAMA_URL = ollama.url;
    say(`ollama: simulator (native /api) at ${ollama.url}`);
  } else out.OLLAMA_URL = env.OLLAMA_URL;
  if (env.GEMINI_API_KEY === undefined) {
    const key = `demo-${Math.random().toString(36).slice(2)}`;
    const gemini = await startVllmSimulator({ port: 0, seed: 13, geminiApiKey: key });
    cleanup.push(() => gemini.close());
    Object.assign(out, { GEMINI_URL: gemini.url, GEMINI_API_KEY: key });
    say(`gemini: simulator (generateContent) at ${gemini.url}`);
  } else Object.assign(out, { GEMINI_API_KEY: env.GEMINI_API_KEY, ...(env.GEMINI_URL ? { GEMINI_URL: env.GEMINI_URL } : {}) });
  // A local run should show recovery within minutes, not after production's 60 s rest per provider.
  out.PROVIDER_BREAKER_COOLDOWN_MS = env.PROVIDER_BREAKER_COOLDOWN_MS ?? "5000";
  return out;
}
