/**
 * Store tests' isolation: a fresh, migrated schema per test, with as many independent pools ("workers") on it as
 * the test needs. `dropAll()` removes every schema made and ends every pool.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { buildJob, type Job } from "../../shared/contract.ts";
import type { StoreError } from "../../shared/errors.ts";
import { JobStore, type ClaimItem, type CompleteItem } from "../../shared/store/jobs.ts";
import { migrate } from "../../shared/store/migrate.ts";
import { createPool } from "../../shared/store/pool.ts";

export const PG_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

export interface StoreSchema {
  stores: JobStore[];
  pools: pg.Pool[];
  schema: string;
}

export class StoreSchemas {
  private readonly pools: pg.Pool[] = [];
  private readonly schemas: string[] = [];

  /** `n` pools of `poolSize` on a new migrated schema; `settings` are extra `-c` options for every connection. */
  async setup(n = 1, o: { poolSize?: number; settings?: Record<string, string> } = {}): Promise<StoreSchema> {
    const schema = `t_store_${randomBytes(5).toString("hex")}`;
    this.schemas.push(schema);
    const creator = await createPool({ url: PG_URL, poolSize: o.poolSize ?? 4, schema });
    this.pools.push(creator);
    await migrate(creator);
    const options = [`-c search_path=${schema}`, ...Object.entries(o.settings ?? {}).map(([k, v]) => `-c ${k}=${v}`)].join(" ");
    // With settings, the creator (plain search_path) only made the schema; every pool the test gets has them.
    const mine = o.settings ? [] : [creator];
    while (mine.length < n) {
      const pool = new pg.Pool({ connectionString: PG_URL, max: o.poolSize ?? 4, options });
      pool.on("error", () => undefined);
      this.pools.push(pool);
      mine.push(pool);
    }
    return { stores: mine.map((p) => new JobStore(p)), pools: mine, schema };
  }

  /** A pool the test made itself, ended with the rest. */
  track(pool: pg.Pool): void {
    this.pools.push(pool);
  }

  async dropAll(): Promise<void> {
    const admin = await createPool({ url: PG_URL, poolSize: 1 });
    for (const s of this.schemas) await admin.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
    await admin.end();
    await Promise.all(this.pools.map((p) => p.end()));
  }
}

export function job(id = `job-${randomBytes(6).toString("hex")}`, tenant = "acme", prompt = "hello"): Job {
  return buildJob({ id, tenant, prompt });
}

export function result(id: string, workerId: string, output = `out-${workerId}`): CompleteItem {
  return { id, workerId, output, finishReason: "stop", promptTokens: 3, completionTokens: 5, provider: "vllm", model: "m" };
}

export function claimItem(j: Job, workerId: string, leaseMs = 60_000, receiveCount = 1): ClaimItem {
  return { job: j, workerId, leaseMs, messageId: `msg-${workerId}`, receiveCount };
}

/** The outcomes, failing the test on any per-item error. */
export function ok<T>(results: (T | StoreError)[]): T[] {
  for (const r of results) if (r instanceof Error) throw r;
  return results as T[];
}
