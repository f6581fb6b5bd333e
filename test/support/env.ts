/**
 * Per-test real services: a fresh queue + DLQ on the SQS emulator, a fresh Postgres schema (migrated), an
 * optional vLLM simulator. Everything is torn down by `close()`.
 */
import { randomBytes } from "node:crypto";
import type pg from "pg";
import { startEmulator, type RunningEmulator } from "../../scripts/local/sqs-emulator.ts";
import { SqsQueue } from "../../shared/queue/sqs.ts";
import { JobStore } from "../../shared/store/jobs.ts";
import { migrate } from "../../shared/store/migrate.ts";
import { createPool } from "../../shared/store/pool.ts";
import { createLogger } from "../../shared/logger.ts";

export const PG_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
export const silentLog = createLogger(process.env.TEST_LOG_LEVEL ?? "silent", "test");

let shared: Promise<RunningEmulator> | undefined;
/** One emulator per test process; each test gets its own queues on it. */
export function emulator(): Promise<RunningEmulator> {
  shared ??= startEmulator({ port: 0 });
  return shared;
}

export async function stopEmulator(): Promise<void> {
  if (shared) await (await shared).stop();
  shared = undefined;
}

export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`;
}

export interface QueueFixture {
  queue: SqsQueue;
  queueUrl: string;
  dlqUrl: string;
  endpoint: string;
}

export async function queueFixture(o: { visibilityTimeoutSeconds?: number; maxReceiveCount?: number } = {}): Promise<QueueFixture> {
  const emu = await emulator();
  const queue = new SqsQueue({ region: "us-east-1", endpoint: emu.endpoint });
  const { queueUrl, dlqUrl } = await queue.ensureQueueWithDlq(uniqueName("q").replace(/_/g, "-"), {
    visibilityTimeoutSeconds: o.visibilityTimeoutSeconds ?? 30,
    maxReceiveCount: o.maxReceiveCount ?? 5,
    waitTimeSeconds: 1,
  });
  return { queue, queueUrl, dlqUrl, endpoint: emu.endpoint };
}

export interface StoreFixture {
  pool: pg.Pool;
  store: JobStore;
  schema: string;
  url: string;
  close(): Promise<void>;
}

export async function storeFixture(url = PG_URL): Promise<StoreFixture> {
  const schema = uniqueName("t").toLowerCase();
  const pool = await createPool({ url, poolSize: 5, schema });
  await migrate(pool);
  return {
    pool,
    store: new JobStore(pool),
    schema,
    url,
    close: async () => {
      await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
      await pool.end();
    },
  };
}

/** Resolves when `check` returns true; polls on a short interval with a hard limit (event-free conditions only). */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  // Monotonic: a CI machine's wall clock can step (NTP) and end a wait early (seen: a 40 s wait ended after ~37 s).
  const end = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
